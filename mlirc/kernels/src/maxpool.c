/* mlirc's kernel library: max pooling and plane sums (global average
 * pooling), NCHW f32.
 *
 * out = the max over each window, or max(out, window) with `accumulate`
 * (when no -inf fill of the output came just before the pooling). NaN wins,
 * as in the arith.maximumf of linalg.pooling_nchw_max. The input comes
 * unpadded with pad_h/pad_w > 0 when the pool-offload pass folded the
 * -inf-filled padded copy into the call: taps outside the image are skipped.
 * Planes (image, channel) go to the pool's threads in blocks. */

#include "kernels.h"

static inline float max_nan(float a, float b) { return b > a || b != b ? b : a; }

/* out[x] = max(out[x], the row's taps j * dilation + x * stride), the row
 * padded with -inf (`wide`): a constant stride where inlined, so that the
 * loads vectorize. */
static inline __attribute__((always_inline)) void pool_row_across(
    float *out, const float *wide, int64_t ow, int64_t kw, int64_t dilation, int64_t stride) {
  for (int64_t j = 0; j < kw; ++j)
    for (int64_t x = 0; x < ow; ++x) out[x] = max_nan(out[x], wide[x * stride + j * dilation]);
}

/* One output row of the 2x2, stride-2 pooling without padding (little
 * CNNs' MaxPool2d(2)): 16 outputs from two vector pairs of input. */
static void maxpool_row_2x2(const float *top, const float *bottom, float *out, int64_t ow,
                            int accumulate) {
  int64_t x = 0;
  for (; x + 16 <= ow; x += 16) {
    v16 low = max_v16(LOAD(v16, top + 2 * x), LOAD(v16, bottom + 2 * x));
    v16 high = max_v16(LOAD(v16, top + 2 * x + 16), LOAD(v16, bottom + 2 * x + 16));
    v16 result = max_v16(even_lanes(low, high), odd_lanes(low, high));
    STORE(v16, out + x, accumulate ? max_v16(LOAD(v16, out + x), result) : result);
  }
  for (; x < ow; ++x) {
    float value = accumulate ? out[x] : -__builtin_inff();
    const float taps[4] = {top[2 * x], top[2 * x + 1], bottom[2 * x], bottom[2 * x + 1]};
    for (int k = 0; k < 4; ++k) value = max_nan(value, taps[k]);
    out[x] = value;
  }
}

#ifdef __AVX512F__
/* One output row of the 3x3, stride-2 pooling padded by one column each
 * side (ResNet's stem pool): out[x] = the max over input columns 2x - 1,
 * 2x and 2x + 1 of the max down the `count` input rows, 16 outputs from two
 * vectors of each row; the even and odd columns apart by shuffles, column
 * 2x - 1 the odd one before (from the previous block: `carry`). Columns
 * outside the row read as -inf. ResNet-50's pool (64 x 112 x 112): 171-188
 * -> 97 us against the separable path (kernel harness, 2026-12-01). */
INTERNAL void maxpool_row_3x3_stride2(const float *const rows[], int count, int64_t in_w,
                                    float *out, int64_t ow, int accumulate) {
  const __m512 padding = _mm512_set1_ps(-__builtin_inff());
  v16 carry = (v16)padding; /* lane 15: input column -1 */
  for (int64_t x0 = 0; x0 < ow; x0 += 16) {
    int64_t first = 2 * x0;
    __mmask16 low_lanes = lanes_inside(first, in_w), high_lanes = lanes_inside(first + 16, in_w);
    v16 low = (v16)padding, high = (v16)padding;
    for (int k = 0; k < count; ++k) {
      low = max_v16(low, (v16)_mm512_mask_loadu_ps(padding, low_lanes, rows[k] + first));
      high = max_v16(high, (v16)_mm512_mask_loadu_ps(padding, high_lanes, rows[k] + first + 16));
    }
    v16 even = even_lanes(low, high), odd = odd_lanes(low, high);
    v16 before = __builtin_shufflevector(carry, odd, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25,
                                         26, 27, 28, 29, 30);
    v16 result = max_v16(max_v16(before, even), odd);
    __mmask16 kept = lanes_inside(x0, ow);
    if (accumulate)
      result = max_v16((v16)_mm512_mask_loadu_ps(padding, kept, out + x0), result);
    _mm512_mask_storeu_ps(out + x0, kept, (__m512)result);
    carry = odd;
  }
}
#endif

static void maxpool_task(void *context, int64_t task) {
  const maxpool_job *job = context;
  int64_t ow = job->ow, end = (task + 1) * job->block < job->planes ? (task + 1) * job->block
                                                                     : job->planes;
  /* an input row with -inf padding, wide enough for every tap of the row */
  int64_t width = (ow - 1) * job->stride_w + (job->kw - 1) * job->dilation_w + 1;
  if (width < job->in_w + 2 * job->pad_w) width = job->in_w + 2 * job->pad_w;
  width += width % 2; /* whole pairs for the even/odd split below */
  int64_t half = width / 2;
  float row[ow], wide[width], even[half], odd[half];
  for (int64_t plane = task * job->block; plane < end; ++plane) {
    int64_t n = plane / job->channels, c = plane % job->channels;
    const float *image = job->input + n * job->in_image + c * job->in_channel;
    float *out = job->output + n * job->out_image + c * job->out_channel;
    if (job->kh == 2 && job->kw == 2 && job->stride_h == 2 && job->stride_w == 2 &&
        job->dilation_h == 1 && job->dilation_w == 1 && !job->pad_h && !job->pad_w) {
      for (int64_t y = 0; y < job->oh; ++y)
        maxpool_row_2x2(image + 2 * y * job->in_w, image + (2 * y + 1) * job->in_w, out + y * ow,
                        ow, job->accumulate);
      continue;
    }
#ifdef __AVX512F__
    if (job->kh == 3 && job->kw == 3 && job->stride_h == 2 && job->stride_w == 2 &&
        job->dilation_h == 1 && job->dilation_w == 1 && job->pad_w == 1) {
      for (int64_t y = 0; y < job->oh; ++y) {
        const float *rows[3];
        int count = 0;
        for (int64_t i = 0; i < 3; ++i) {
          int64_t source_y = 2 * y + i - job->pad_h;
          if (source_y >= 0 && source_y < job->in_h) rows[count++] = image + source_y * job->in_w;
        }
        maxpool_row_3x3_stride2(rows, count, job->in_w, out + y * ow, ow, job->accumulate);
      }
      continue;
    }
#endif
    /* Separable: per output row, the max down the window's rows over the
     * whole input row (contiguous), then across the window's columns. */
    for (int64_t y = 0; y < job->oh; ++y) {
      for (int64_t x = 0; x < width; ++x) wide[x] = -__builtin_inff();
      for (int64_t i = 0; i < job->kh; ++i) {
        int64_t source_y = y * job->stride_h + i * job->dilation_h - job->pad_h;
        if (source_y < 0 || source_y >= job->in_h) continue;
        const float *source = image + source_y * job->in_w;
        float *down = wide + job->pad_w;
        for (int64_t x = 0; x < job->in_w; ++x) down[x] = max_nan(down[x], source[x]);
      }
      for (int64_t x = 0; x < ow; ++x) row[x] = job->accumulate ? out[y * ow + x] : -__builtin_inff();
      if (job->stride_w == 2 && job->dilation_w == 1) {
        /* even and odd columns apart, so every tap is a contiguous run */
        for (int64_t x = 0; x < half; ++x) {
          even[x] = wide[2 * x];
          odd[x] = wide[2 * x + 1];
        }
        for (int64_t j = 0; j < job->kw; ++j) {
          const float *taps = (j % 2 ? odd : even) + j / 2;
          for (int64_t x = 0; x < ow; ++x) row[x] = max_nan(row[x], taps[x]);
        }
      } else if (job->stride_w == 1) {
        pool_row_across(row, wide, ow, job->kw, job->dilation_w, 1);
      } else {
        pool_row_across(row, wide, ow, job->kw, job->dilation_w, job->stride_w);
      }
      memcpy(out + y * ow, row, sizeof(float) * ow);
    }
  }
}

/* Runs a job whose operands and geometry are set, its planes (images x
 * `channels`) in blocks over the pool. */
INTERNAL void run_maxpool(maxpool_job *job, int64_t images) {
  job->planes = images * job->channels;
  job->block = task_block(job->planes);
  parallel_for(block_count(job->planes, job->block), maxpool_task, job);
}

/* Input and output are NCHW with unit W stride and rows of their own width
 * (the pass checks: identity layouts). */
void mlirc_maxpool2d_nchw_f32(MEMREF4(in), MEMREF4(out), int64_t kernel_h, int64_t kernel_w,
                              int64_t stride_h, int64_t stride_w, int64_t dilation_h,
                              int64_t dilation_w, int64_t pad_h, int64_t pad_w,
                              int64_t accumulate) {
  maxpool_job job = {(const float *)in_aligned + in_offset, (float *)out_aligned + out_offset,
                     in_s0, in_s1, out_s0, out_s1, in_c, in_h, in_w, out_h, out_w,
                     kernel_h, kernel_w, stride_h, stride_w, dilation_h, dilation_w,
                     pad_h, pad_w, 0, 0, (int)accumulate};
  run_maxpool(&job, in_n);
}

/* The sum over each plane (a global average pool's sum; the division by
 * the plane's size stays in MLIR): out[n][c] = [out +] sum of in[n][c][:][:].
 * The planes are contiguous (identity layouts: the pass checks). */
typedef struct {
  const float *input;
  float *output;
  int64_t plane, planes, block, out_stride;
  int accumulate;
} plane_sum_job;

static void plane_sum_task(void *context, int64_t task) {
  const plane_sum_job *job = context;
  int64_t end = (task + 1) * job->block < job->planes ? (task + 1) * job->block : job->planes;
  for (int64_t p = task * job->block; p < end; ++p) {
    const float *source = job->input + p * job->plane;
    v16 lanes = {};
    int64_t x = 0;
    for (; x + 16 <= job->plane; x += 16) lanes += LOAD(v16, source + x);
    float sum = 0.0f;
    for (int k = 0; k < 16; ++k) sum += lanes[k];
    for (; x < job->plane; ++x) sum += source[x];
    float *target = job->output + p * job->out_stride;
    *target = job->accumulate ? *target + sum : sum;
  }
}

void mlirc_sum_planes_f32(MEMREF4(in), MEMREF4(out), int64_t accumulate) {
  int64_t planes = in_n * in_c;
  /* few planes of a few floats: one task (waking the pool costs more) */
  int64_t block = planes * in_h * in_w < 1 << 14 ? planes : task_block(planes);
  plane_sum_job job = {(const float *)in_aligned + in_offset, (float *)out_aligned + out_offset,
                       in_h * in_w, planes, block, out_s1, (int)accumulate};
  parallel_for(block_count(planes, block), plane_sum_task, &job);
}

/* mlirc's kernel library: convolution. The direct kernel, im2col + GEMM,
 * the kernel dispatch (the compiler's choice) and the entry points; the
 * other kernels are in packed_conv.c, winograd.c, winograd4.c and
 * strided_conv.c. */

#include "kernels.h"

/* Convolution, NCHW input x FCHW filter, f32. Operands are contiguous (the
 * pass checks). The input comes padded, or unpadded with pad_h/pad_w > 0
 * when the pass folded the zero-filled padded copy into the call. Four
 * entry points:
 *   mlirc_conv2d_nchw_f32:      out += conv(in, filter)
 *   mlirc_conv2d_nchw_bias_f32: out = act(conv(in, filter) + bias[f]), act
 *     being ReLU or the identity: the pass folds the bias broadcast that
 *     initialised `out` and an in-place ReLU that followed into this call,
 *     so the output is written once instead of three times.
 *   mlirc_conv2d_nchw_bias_residual_f32: the same plus a residual (a
 *     ResNet shortcut) of the output's shape, added before the ReLU.
 *   mlirc_conv2d_nchw_bias_pool_f32: the bias form with a 2x2 max pool
 *     after it (the pool-offload pass folds one in), at the end of the file.
 * When the convolution pads, its input may be its output buffer itself (the
 * pass folds the padded copy of a buffer that the call then overwrites):
 * every path that pads reads an image's input (into a padded copy, im2col
 * columns, Winograd's V or the strided kernel's split rows) before it
 * writes any of that image's output; the direct 3x3 tile reads its input in
 * place only when the two buffers are apart (direct_reads_unpadded).
 * Each ends with `kernel` (enum mlirc_conv_kernel: the compiler's choice)
 * and the call site's slot for a constant filter's transformed or packed
 * copy. */

/* Direct convolution for stride 1 without dilation, when an output row is a
 * whole number of 16-float vectors: each output tile (generic kernel sizes:
 * 4 filters x 4 rows x one vector; 3x3 has its own tile below) stays in
 * registers while the loop runs over input channels and kernel taps, one
 * broadcast weight times one input row vector per FMA. For
 * the small channel counts of little CNNs it is as fast as im2col + GEMM
 * without the column copy (the cnn's 32x32 and 16x16 layers: 38/93 us
 * against 38/90 us, 2026-12-01, OpenBLAS SkylakeX kernels); for rows of 8
 * floats the grouped im2col + GEMM below is twice as fast (68 against 156
 * us), so those take it. The shim is built for the host (-march=native, like
 * the JIT's own code), so the vectors are AVX-512 registers here. */
#define TILE_ROWS 4

enum { TILE_FILTERS = 4 };

static inline __attribute__((always_inline)) void tile_16x4(
    int64_t channels, int64_t kh, int64_t kw, int64_t in_h, int64_t in_w, int64_t plane,
    int64_t ow, const float *image, const float *weights, float *out, const float *bias,
    const float *residual, int relu, int pool, int64_t f0, int64_t y0, int64_t x0) {
  int64_t taps = channels * kh * kw;
  v16 acc[TILE_FILTERS][TILE_ROWS];
  for (int fb = 0; fb < TILE_FILTERS; ++fb)
    for (int r = 0; r < TILE_ROWS; ++r)
      acc[fb][r] =
          !bias      ? LOAD(v16, out + (f0 + fb) * plane + (y0 + r) * ow + x0)
          : residual ? bias[f0 + fb] + LOAD(v16, residual + (f0 + fb) * plane + (y0 + r) * ow + x0)
                     : (v16){} + bias[f0 + fb];
  for (int64_t c = 0; c < channels; ++c)
    for (int64_t i = 0; i < kh; ++i)
      for (int64_t j = 0; j < kw; ++j) {
        const float *source = image + (c * in_h + y0 + i) * in_w + x0 + j;
        const float *tap = weights + f0 * taps + (c * kh + i) * kw + j;
        v16 rows[TILE_ROWS];
        for (int r = 0; r < TILE_ROWS; ++r) rows[r] = LOAD(v16, source + r * in_w);
        for (int fb = 0; fb < TILE_FILTERS; ++fb) {
          v16 weight = (v16){} + tap[fb * taps];
          for (int r = 0; r < TILE_ROWS; ++r) acc[fb][r] += weight * rows[r];
        }
      }
  for (int fb = 0; fb < TILE_FILTERS; ++fb)
    store_rows(acc[fb], TILE_ROWS, out + (f0 + fb) * plane, ow, y0, x0, relu, pool);
}

/* The 3x3 tile: one filter x 16 output vectors, as 16 rows of one vector
 * or 8 rows of two. Per input channel the filter's 9 weights are broadcast
 * once into registers, and each input row under the tile is loaded once per
 * horizontal tap and used for every kernel row that reaches it: 16
 * accumulators, 9 weights and the input fit the 32 vector registers, so
 * the FMAs read only registers (KEEP_IN_REGISTER: without it GCC folds the
 * loads back into the FMAs, one cache-line-split load per FMA, and the tile
 * is load-bound). Against the previous tile, 2 filters x 8 rows whose input
 * loads GCC folded that way, on the cnn's layers (two threads, 2026-12-01):
 * 16x16, 16->32 channels, pooled: 26.8 -> 22.5 us; 32x32, 3->16: 14.3 ->
 * 12.9 us. */
typedef struct {
  int rows, vectors; /* rows x vectors = 16 accumulators, or 8 on short planes */
} tile3x3_layout;

static tile3x3_layout tile3x3_shape(const conv_shape *shape) {
  if (shape->kh != 3 || shape->kw != 3) return (tile3x3_layout){0, 0};
  if (shape->oh % 8 == 0 && shape->ow % 32 == 0) return (tile3x3_layout){8, 2};
  if (shape->oh % 16 == 0) return (tile3x3_layout){16, 1};
  if (shape->oh % 8 == 0) return (tile3x3_layout){8, 1};
  return (tile3x3_layout){0, 0};
}

static inline __attribute__((always_inline)) void tile3x3(
    int rows, int vectors, const conv_shape *shape, int64_t plane, const float *image,
    const float *weights, float *out, const float *bias, const float *residual, int relu,
    int pool, int64_t f, int64_t y0, int64_t x0) {
  int64_t channels = shape->channels, in_h = shape->in_h, in_w = shape->in_w, ow = shape->ow;
  /* the tile's input window starts at (y0 - pad_h, x0 - pad_w); rows and
   * lanes outside the input are the zero padding */
  int64_t top = y0 - shape->pad_h, left = x0 - shape->pad_w;
  uint16_t lanes[2][3];
  for (int xv = 0; xv < vectors; ++xv)
    for (int j = 0; j < 3; ++j) lanes[xv][j] = lanes_inside(left + 16 * xv + j, in_w);
  v16 acc[16];
  for (int r = 0; r < rows; ++r)
    for (int xv = 0; xv < vectors; ++xv) {
      int64_t at = f * plane + (y0 + r) * ow + x0 + 16 * xv;
      acc[r * vectors + xv] = !bias      ? LOAD(v16, out + at)
                              : residual ? BROADCAST(bias[f]) + LOAD(v16, residual + at)
                                         : BROADCAST(bias[f]);
    }
  const float *filter = weights + f * channels * 9;
  for (int64_t c = 0; c < channels; ++c) {
    const float *source = image + (c * in_h + top) * in_w + left, *tap = filter + c * 9;
    v16 weight[9];
#pragma GCC unroll 9
    for (int k = 0; k < 9; ++k) {
      weight[k] = BROADCAST(tap[k]);
      KEEP_IN_REGISTER(weight[k]);
    }
#pragma GCC unroll 18
    for (int row = 0; row < rows + 2; ++row) {
      if (top + row < 0 || top + row >= in_h) continue;
#pragma GCC unroll 2
      for (int xv = 0; xv < vectors; ++xv)
#pragma GCC unroll 3
        for (int j = 0; j < 3; ++j) {
          v16 input = load_lanes(source + row * in_w + 16 * xv + j, lanes[xv][j]);
          KEEP_IN_REGISTER(input);
#pragma GCC unroll 3
          for (int i = 0; i < 3; ++i) {
            int r = row - i;
            if (r >= 0 && r < rows) acc[r * vectors + xv] += weight[i * 3 + j] * input;
          }
        }
    }
  }
  for (int xv = 0; xv < vectors; ++xv) {
    v16 column[16];
    for (int r = 0; r < rows; ++r) column[r] = acc[r * vectors + xv];
    store_rows(column, rows, out + f * plane, ow, y0, x0 + 16 * xv, relu, pool);
  }
}

/* Whether direct_conv handles this shape (rows of 16k floats, 4k rows).
 * Only in AVX-512 builds: on AVX2 the 16-float tiles split into twice the
 * registers there are, and im2col + BLAS was faster (the cnn 0.6 against
 * 1.5 ms, AMD EPYC without AVX-512); their full unrolling also made the
 * x86-64-v3 and x86-64 builds of the library take 47 and 81 s against
 * 10 s for x86-64-v4. Other builds leave the tiles out. */
static int direct_conv_fits(const conv_shape *shape) {
#ifndef __AVX512F__
  (void)shape;
  return 0;
#endif
  if (shape->kh * shape->kw == 1 || shape->stride_h != 1 || shape->stride_w != 1 ||
      shape->dilation_h != 1 || shape->dilation_w != 1 || shape->oh % TILE_ROWS)
    return 0;
  return shape->ow % 16 == 0 && shape->filters % TILE_FILTERS == 0;
}

/* Output rows per direct task: one tile's. */
static int64_t direct_rows(const conv_shape *shape) {
  tile3x3_layout layout = tile3x3_shape(shape);
  return layout.rows ? layout.rows : TILE_ROWS;
}

/* One block of output rows (direct_rows) of one image, all filters.
 * Inlined once per epilogue case, so the tiles see constants. */
static inline __attribute__((always_inline)) void direct_rows_case(
    const conv_shape *shape, const float *image, const float *weights, float *out,
    const float *bias, const float *residual, int relu, int pool, int64_t y0) {
  /* the plane the tiles store into: the pooled one with `pool` */
  int64_t plane = pool ? shape->oh / 2 * (shape->ow / 2) : shape->oh * shape->ow;
  tile3x3_layout layout = tile3x3_shape(shape);
  if (layout.rows) {
    /* constant layouts, so that each inlined tile unrolls fully */
    for (int64_t f = 0; f < shape->filters; ++f)
      for (int64_t x0 = 0; x0 < shape->ow; x0 += 16 * layout.vectors) {
#define TILE3X3(rows, vectors)                                                                \
  tile3x3(rows, vectors, shape, plane, image, weights, out, bias, residual, relu, pool, f, y0, x0)
        if (layout.vectors == 2) TILE3X3(8, 2);
        else if (layout.rows == 16) TILE3X3(16, 1);
        else TILE3X3(8, 1);
#undef TILE3X3
      }
    return;
  }
  for (int64_t f = 0; f < shape->filters; f += TILE_FILTERS)
    for (int64_t x0 = 0; x0 < shape->ow; x0 += 16)
      tile_16x4(shape->channels, shape->kh, shape->kw, shape->in_h, shape->in_w, plane,
                shape->ow, image, weights, out, bias, residual, relu, pool, f, y0, x0);
}

/* A direct convolution job: images cut into tasks of one tile's rows.
 * (Splitting the filters into groups too, for more tasks than the cnn's
 * 16x16 layer's four, made it slower: 23.3 against 22.3 us.) */
typedef struct {
  const conv_shape *shape;
  const float *input, *weights, *residual;
  float *output;
  int64_t image_stride, out_stride, blocks; /* row blocks per image */
} direct_job;

/* The ReLU and the residual only come with a bias (the entry points make sure). */
/* (unused, so not compiled, in builds without AVX-512) */
__attribute__((unused)) static void direct_task(void *context, int64_t task) {
  const direct_job *job = context;
  const conv_shape *shape = job->shape;
  int64_t n = task / job->blocks, y0 = task % job->blocks * direct_rows(shape);
  const float *image = job->input + n * job->image_stride, *bias = shape->bias;
  const float *residual = job->residual ? job->residual + n * job->out_stride : NULL;
  float *out = job->output + n * job->out_stride;
  const float *weights = job->weights;
#define ROWS_CASE(bias_, residual_, relu_, pool_) \
  direct_rows_case(shape, image, weights, out, bias_, residual_, relu_, pool_, y0)
  if (!bias) ROWS_CASE(NULL, NULL, 0, 0);
  else if (residual && shape->relu) ROWS_CASE(bias, residual, 1, 0);
  else if (residual) ROWS_CASE(bias, residual, 0, 0);
  else if (shape->pool && shape->relu) ROWS_CASE(bias, NULL, 1, 1);
  else if (shape->pool) ROWS_CASE(bias, NULL, 0, 1);
  else if (shape->relu) ROWS_CASE(bias, NULL, 1, 0);
  else ROWS_CASE(bias, NULL, 0, 0);
#undef ROWS_CASE
}

/* The input padded by the convolution's border, a task per plane (image n,
 * channel c at n * channels + c, in the input and in `padded` alike):
 * the direct kernel's generic tile (and the 3x3 one without AVX-512, or
 * when the input is the output buffer) and the packed GEMM reading taps in
 * place (packed_conv_at_taps, one image at a time) read it. */
typedef struct {
  const conv_shape *shape;
  const float *input;
  float *padded;
  int64_t image_stride, padded_h, padded_w;
} pad_job;

static void pad_task(void *context, int64_t task) {
  const pad_job *job = context;
  const conv_shape *shape = job->shape;
  int64_t pad_h = shape->pad_h, pad_w = shape->pad_w, width = job->padded_w;
  int64_t in_h = shape->in_h, in_w = shape->in_w;
  int64_t n = task / shape->channels, c = task % shape->channels;
  float *target = job->padded + task * job->padded_h * width;
  const float *source = job->input + n * job->image_stride + c * in_h * in_w;
  memset(target, 0, sizeof(float) * pad_h * width);
  for (int64_t y = 0; y < in_h; ++y) {
    float *row = target + (pad_h + y) * width;
    memset(row, 0, sizeof(float) * pad_w);
    memcpy(row + pad_w, source + y * in_w, sizeof(float) * in_w);
    memset(row + pad_w + in_w, 0, sizeof(float) * (width - pad_w - in_w));
  }
  memset(target + (pad_h + in_h) * width, 0,
         sizeof(float) * (job->padded_h - pad_h - in_h) * width);
}

/* Whether a call's input and output buffers do not overlap: the pass folds
 * the padded copy of a buffer that the call then overwrites, and a kernel
 * that reads the input in place must not read what its own tiles wrote. */
static int buffers_apart(const float *input, int64_t images, int64_t image_stride,
                         const float *output, int64_t out_stride) {
  const float *input_end = input + images * image_stride;
  const float *output_end = output + images * out_stride;
  return input_end <= output || output_end <= input;
}

/* Whether the 3x3 tile reads this convolution's input unpadded, the
 * padding being the lanes and rows it skips: no padded copy, and one
 * parallel job instead of two (the cnn's 32x32 layer 12.3 -> 10.1 us, its
 * 16x16 one 28.0 -> 21.9 us, reading rows 16 floats apart, not 18). It
 * cannot when the input is the output buffer (the pass folds such padded
 * copies): tiles of an image would overwrite input that others still read. */
__attribute__((unused)) static int direct_reads_unpadded(
    const conv_shape *shape, int64_t images, const float *input, int64_t image_stride,
    const float *output, int64_t out_stride) {
#ifdef __AVX512F__
  return tile3x3_shape(shape).rows &&
         buffers_apart(input, images, image_stride, output, out_stride);
#else
  (void)shape, (void)images, (void)input, (void)image_stride, (void)output, (void)out_stride;
  return 0;
#endif
}

static void direct_conv(const conv_shape *shape, int64_t images, const float *input,
                        int64_t image_stride, const float *weights, float *output,
                        int64_t out_stride, const float *residual) {
#ifndef __AVX512F__
  /* not reached: direct_conv_fits is 0 in this build, and both callers ask */
  (void)shape, (void)images, (void)input, (void)image_stride, (void)weights, (void)output;
  (void)out_stride, (void)residual;
  abort();
#else
  conv_shape padded = *shape;
  if ((shape->pad_h || shape->pad_w) &&
      !direct_reads_unpadded(shape, images, input, image_stride, output, out_stride)) {
    padded.in_h += 2 * shape->pad_h;
    padded.in_w += 2 * shape->pad_w;
    padded.pad_h = padded.pad_w = 0;
    float *padded_input =
        scratch(SCRATCH_INPUT, images * shape->channels * padded.in_h * padded.in_w);
    pad_job padding = {shape, input, padded_input, image_stride, padded.in_h, padded.in_w};
    parallel_for(images * shape->channels, pad_task, &padding);
    input = padded_input;
    image_stride = shape->channels * padded.in_h * padded.in_w;
  }
  direct_job job = {&padded, input, weights, residual, output, image_stride, out_stride,
                    shape->oh / direct_rows(shape)};
  parallel_for(images * job.blocks, direct_task, &job);
#endif
}

/* Row (c, i, j) of one image's im2col matrix holds, for every output pixel,
 * the input value under kernel tap (i, j) of channel c (zero in the
 * padding). Rows are `ld` floats apart, so several images can sit side by
 * side in one matrix. */
typedef struct {
  const conv_shape *shape;
  const float *input;
  float *columns;
  int64_t image_stride, ld;
} im2col_job;

/* A stride-2 run: constant, so that it vectorizes. */
static void copy_every_other(float *target, const float *source, int64_t count) {
  for (int64_t x = 0; x < count; ++x) target[x] = source[2 * x];
}

/* One task per (image, channel, kernel row): the ResNet stem's three
 * channels make 21 tasks, not 3 for two threads (with the stride-2 copy
 * vectorized, its convolution 1.31 -> 0.63 ms with the caches cold). */
static void im2col_task(void *context, int64_t task) {
  const im2col_job *job = context;
  const conv_shape *shape = job->shape;
  int64_t kh = shape->kh, kw = shape->kw, oh = shape->oh, ow = shape->ow;
  int64_t i = task % kh, c = task / kh % shape->channels, n = task / kh / shape->channels;
  const float *image = job->input + n * job->image_stride;
  for (int64_t j = 0; j < kw; ++j) {
    float *row = job->columns + ((c * kh + i) * kw + j) * job->ld + n * oh * ow;
    /* the output columns [first, last) read inside the image's width */
    int64_t offset = j * shape->dilation_w - shape->pad_w, first = 0, last = ow;
    while (first < ow && first * shape->stride_w + offset < 0) ++first;
    while (last > first && (last - 1) * shape->stride_w + offset >= shape->in_w) --last;
    for (int64_t y = 0; y < oh; ++y) {
      float *target = row + y * ow;
      int64_t source_y = y * shape->stride_h + i * shape->dilation_h - shape->pad_h;
      if (source_y < 0 || source_y >= shape->in_h) {
        memset(target, 0, sizeof(float) * ow);
        continue;
      }
      const float *source = image + (c * shape->in_h + source_y) * shape->in_w + offset;
      for (int64_t x = 0; x < first; ++x) target[x] = 0.0f;
      if (shape->stride_w == 1) /* a contiguous run: vectorized copy */
        memcpy(target + first, source + first, sizeof(float) * (last - first));
      else if (shape->stride_w == 2)
        copy_every_other(target + first, source + 2 * first, last - first);
      else
        for (int64_t x = first; x < last; ++x) target[x] = source[x * shape->stride_w];
      for (int64_t x = last; x < ow; ++x) target[x] = 0.0f;
    }
  }
}

/* The epilogue on the product's rows (filters) [row0, row1) and columns
 * [col0, col1), the columns being images' pixels side by side (`ld` floats
 * a row): out = act(product + bias [+ residual]), or out += product without
 * a bias. `product` may be the output itself (one image, bias case). */

INTERNAL void run_epilogue(const epilogue_job *job, int64_t row0, int64_t row1, int64_t col0,
                         int64_t col1) {
  const conv_shape *shape = job->shape;
  int64_t cols = shape->oh * shape->ow;
  int relu = shape->relu;
  for (int64_t f = row0; f < row1; ++f)
    for (int64_t column = col0; column < col1;) {
      int64_t n = column / cols, p0 = column % cols;
      int64_t p1 = p0 + (col1 - column) < cols ? p0 + (col1 - column) : cols;
      const float *source = job->product + f * job->ld + column;
      float *target = job->output + n * job->out_stride + f * cols;
      if (!shape->bias) {
        for (int64_t p = p0; p < p1; ++p) target[p] += source[p - p0];
      } else {
        float bias = shape->bias[f];
        const float *shortcut = job->residual ? job->residual + n * job->out_stride + f * cols
                                              : NULL;
        for (int64_t p = p0; p < p1; ++p) { /* GCC unswitches the loop-invariant tests */
          float value = source[p - p0] + bias;
          if (shortcut) value += shortcut[p];
          /* NaN stays NaN under the ReLU, as in the cmpf-ugt select it replaces */
          target[p] = relu && value <= 0 ? 0.0f : value;
        }
      }
      column += p1 - p0;
    }
}

/* im2col + GEMM: out (F x OH*OW) = [out +] filter (F x C*KH*KW) * columns
 * (C*KH*KW x OH*OW), the epilogue running on each GEMM slice as it is done;
 * a 1x1 unit-stride convolution reads the image itself as the columns.
 * Small images go in groups: their columns side by side make one wider
 * GEMM, which OpenBLAS runs much faster than several narrow ones (the cnn's
 * 8x8 layer, four images: 80 -> 35 us), into a scratch product that the
 * epilogue scatters back to NCHW. */
enum { GROUP_COLUMNS = 1024 };

/* The packed-filter GEMM reading the input in place (implicit im2col): tap
 * k = (c, i, j) of output pixel (oy, ox) is the input at channel c, row
 * oy * stride_h + i * dilation_h, column ox * stride_w + j * dilation_w of
 * the image padded once (a border copy, far smaller than the columns).
 * Against im2col + the packed GEMM (kernel harness, 2026-12-01): ResNet-50's
 * stride-2 3x3 layers 563 -> 499, 578 -> 514 and 658 -> 574 us, its 7x7
 * 3x3 layer 652 -> 544 us; the model 1.7% (A/B in one process). Strided
 * 1x1 layers keep im2col, whose copy is a contiguous subsample there: read
 * in place, 8 pixels 2 apart span a cache line (0.50 -> 0.57 ms). */
static void packed_conv_at_taps(const conv_shape *shape, int64_t images, const float *input,
                                int64_t image_stride, const float *panels, float *output,
                                int64_t out_stride, const float *residual) {
  int64_t padded_h = shape->in_h + 2 * shape->pad_h, padded_w = shape->in_w + 2 * shape->pad_w;
  int64_t plane = padded_h * padded_w, pixels = shape->oh * shape->ow;
  int64_t k = shape->channels * shape->kh * shape->kw;
  /* copied also without a border when the output overwrites the input */
  int padding = shape->pad_h || shape->pad_w ||
                !buffers_apart(input, images, image_stride, output, out_stride);
  float *padded = padding ? scratch(SCRATCH_INPUT, shape->channels * plane) : NULL;
  int32_t *taps = (int32_t *)scratch(SCRATCH_TAPS, k);
  for (int64_t c = 0; c < shape->channels; ++c)
    for (int64_t i = 0; i < shape->kh; ++i)
      for (int64_t j = 0; j < shape->kw; ++j)
        taps[(c * shape->kh + i) * shape->kw + j] =
            (int32_t)(c * plane + i * shape->dilation_h * padded_w + j * shape->dilation_w);
  for (int64_t n = 0; n < images; ++n) {
    const float *image = input + n * image_stride;
    if (padding) {
      pad_job border = {shape, image, padded, image_stride, padded_h, padded_w};
      parallel_for(shape->channels, pad_task, &border); /* this image's planes */
      image = padded;
    }
    packed_conv_job job = {shape, image, panels, residual ? residual + n * out_stride : NULL,
                           output + n * out_stride, k, pixels, 1, 0, pixels, 1, 0, 0, 0, 1,
                           taps, shape->ow, shape->stride_h * padded_w, shape->stride_w};
    run_packed_conv(&job);
  }
}

static void gemm_conv(const conv_shape *shape, int64_t images, const float *input,
                      int64_t image_stride, const float *weights, float *output,
                      int64_t out_stride, const float *residual, int64_t *slot) {
  int64_t rows = shape->channels * shape->kh * shape->kw, cols = shape->oh * shape->ow;
  int copy_free = shape->kh == 1 && shape->kw == 1 && shape->stride_h == 1 &&
                  shape->stride_w == 1 && shape->in_h == shape->oh && shape->in_w == shape->ow &&
                  !shape->pad_h && !shape->pad_w;
  int64_t group = cols >= GROUP_COLUMNS ? 1 : GROUP_COLUMNS / cols;
  if (group > images) group = images;
  if (slot && packed_conv_fits(shape, cols, group)) {
    /* W^T: row k of B is column k of the filter matrix */
    const float *panels = packed_panels(slot, weights, rows, shape->filters, 1, rows);
    if (shape->kh * shape->kw > 1) {
      packed_conv_at_taps(shape, images, input, image_stride, panels, output, out_stride,
                          residual);
      return;
    }
    float *columns = copy_free ? NULL : scratch(SCRATCH_COLUMNS, rows * cols);
    for (int64_t n = 0; n < images; ++n) {
      const float *matrix = input + n * image_stride;
      if (columns) {
        im2col_job gather = {shape, matrix, columns, image_stride, cols};
        parallel_for(shape->channels * shape->kh, im2col_task, &gather);
        matrix = columns;
      }
      packed_conv(shape, matrix, panels, output + n * out_stride,
                  residual ? residual + n * out_stride : NULL);
    }
    return;
  }
  float *columns = copy_free && group == 1 ? NULL : scratch(SCRATCH_COLUMNS, rows * group * cols);
  /* a scratch product also when the output is the residual's buffer
   * (mlirc-residual-in-place): the GEMM would overwrite the residual before
   * the epilogue reads it */
  float *product = group > 1 || (residual && residual == output)
                       ? scratch(SCRATCH_PRODUCT, shape->filters * group * cols)
                       : NULL;
  for (int64_t first = 0; first < images; first += group) {
    int64_t count = images - first < group ? images - first : group, ld = count * cols;
    const float *matrix = input + first * image_stride;
    if (columns) {
      im2col_job gather = {shape, matrix, columns, image_stride, ld};
      parallel_for(count * shape->channels * shape->kh, im2col_task, &gather);
      matrix = columns;
    }
    float *out = output + first * out_stride;
    epilogue_job epilogue = {shape, product ? product : out,
                             residual ? residual + first * out_stride : NULL, out, ld,
                             out_stride};
    /* Without a product scratch the GEMM writes the output: C = W*X with a
     * bias to follow, C += W*X without. */
    sgemm_parallel(NoTrans, NoTrans, shape->filters, ld, rows, weights, (int)rows, matrix,
                   (int)ld, product || shape->bias ? 0.0f : 1.0f, product ? product : out,
                   (int)ld, product || shape->bias ? &epilogue : NULL);
  }
}

/* Whether `kernel` takes this convolution in this build: the compiler asks
 * (mlirc_conv2d_kernel_fits) before it chooses, and conv2d checks again. */
static int conv_kernel_fits(int64_t kernel, const conv_shape *shape, int64_t images) {
  switch (kernel) {
  case MLIRC_CONV_IM2COL_BLAS: return 1;
  case MLIRC_CONV_DIRECT: return direct_conv_fits(shape);
  case MLIRC_CONV_STRIDED: return strided_conv_fits(shape);
  case MLIRC_CONV_WINOGRAD_F2X2: return winograd_fits(shape, images, 0);
  case MLIRC_CONV_WINOGRAD_F2X2_PACKED:
    return winograd_packed(shape, 1) && winograd_fits(shape, images, 1);
  case MLIRC_CONV_WINOGRAD_F4X4:
    return winograd_packed(shape, 1) && winograd_fits(shape, images, 1) &&
           winograd4_fits(shape, 1);
  case MLIRC_CONV_PACKED: {
    int64_t pixels = shape->oh * shape->ow;
    int64_t group = pixels >= GROUP_COLUMNS ? 1 : GROUP_COLUMNS / pixels;
    return packed_conv_fits(shape, pixels, group < images ? group : images);
  }
  default: return 0;
  }
}

/* Runs the kernel the compiler chose (`kernel`, enum mlirc_conv_kernel);
 * one that does not take the shape falls back to im2col + BLAS, with one
 * warning and a count (MLIRC_RUNS_CONV_FALLBACK). */
static void conv2d(const conv_shape *shape, int64_t images, const float *input,
                   int64_t image_stride, const float *weights, float *output,
                   int64_t out_stride, const float *residual, int64_t kernel,
                   int64_t *slot) {
  if (!conv_kernel_fits(kernel, shape, images)) {
    static int warned;
    if (!__atomic_exchange_n(&warned, 1, __ATOMIC_RELAXED))
      fprintf(stderr, "mlirc: convolution kernel %lld does not take a %lldx%lld %lldx%lld "
                      "convolution in this %s build; running im2col + BLAS\n",
              (long long)kernel, (long long)shape->kh, (long long)shape->kw,
              (long long)shape->oh, (long long)shape->ow, mlirc_kernels_isa());
    count_run(MLIRC_RUNS_CONV_FALLBACK);
    kernel = MLIRC_CONV_IM2COL_BLAS;
  }
  count_run((int)kernel);
  switch (kernel) {
  case MLIRC_CONV_DIRECT:
    direct_conv(shape, images, input, image_stride, weights, output, out_stride, residual);
    break;
  case MLIRC_CONV_STRIDED:
    strided_conv(shape, images, input, image_stride, weights, output, out_stride, residual);
    break;
  case MLIRC_CONV_WINOGRAD_F4X4:
    winograd4_conv(shape, images, input, image_stride, slot, weights, output, out_stride,
                   residual);
    break;
  case MLIRC_CONV_WINOGRAD_F2X2:
  case MLIRC_CONV_WINOGRAD_F2X2_PACKED: {
    int packed = kernel == MLIRC_CONV_WINOGRAD_F2X2_PACKED;
    winograd_conv(shape, images, input, image_stride,
                  winograd_weights(slot, weights, shape, packed), packed, output, out_stride,
                  residual);
    break;
  }
  case MLIRC_CONV_PACKED:
    gemm_conv(shape, images, input, image_stride, weights, output, out_stride, residual, slot);
    break;
  default:
    gemm_conv(shape, images, input, image_stride, weights, output, out_stride, residual, NULL);
  }
}

#define CONV_SHAPE(bias_, relu_)                                                            \
  {in_c, in_h, in_w, out_c, filter_h, filter_w, out_h, out_w,                               \
   stride_h, stride_w, dilation_h, dilation_w, pad_h, pad_w, bias_, relu_}

void mlirc_conv2d_nchw_f32(MEMREF4(in), MEMREF4(filter), MEMREF4(out), int64_t stride_h,
                           int64_t stride_w, int64_t dilation_h, int64_t dilation_w,
                           int64_t pad_h, int64_t pad_w, int64_t kernel, MEMREF1(slot)) {
  conv_shape shape = CONV_SHAPE(NULL, 0);
  conv2d(&shape, in_n, (const float *)in_aligned + in_offset, in_s0,
         (const float *)filter_aligned + filter_offset, (float *)out_aligned + out_offset, out_s0,
         NULL, kernel, (int64_t *)slot_aligned + slot_offset);
  release_call_scratch();
}

void mlirc_conv2d_nchw_bias_f32(MEMREF4(in), MEMREF4(filter), MEMREF4(out), MEMREF1(bias),
                                int64_t stride_h, int64_t stride_w, int64_t dilation_h,
                                int64_t dilation_w, int64_t pad_h, int64_t pad_w,
                                int64_t relu, int64_t kernel, MEMREF1(slot)) {
  conv_shape shape = CONV_SHAPE((const float *)bias_aligned + bias_offset, (int)relu);
  conv2d(&shape, in_n, (const float *)in_aligned + in_offset, in_s0,
         (const float *)filter_aligned + filter_offset, (float *)out_aligned + out_offset, out_s0,
         NULL, kernel, (int64_t *)slot_aligned + slot_offset);
  release_call_scratch();
}

void mlirc_conv2d_nchw_bias_residual_f32(MEMREF4(in), MEMREF4(filter), MEMREF4(out),
                                         MEMREF1(bias), MEMREF4(residual), int64_t stride_h,
                                         int64_t stride_w, int64_t dilation_h,
                                         int64_t dilation_w, int64_t pad_h, int64_t pad_w,
                                         int64_t relu, int64_t kernel, MEMREF1(slot)) {
  conv_shape shape = CONV_SHAPE((const float *)bias_aligned + bias_offset, (int)relu);
  conv2d(&shape, in_n, (const float *)in_aligned + in_offset, in_s0,
         (const float *)filter_aligned + filter_offset, (float *)out_aligned + out_offset, out_s0,
         (const float *)residual_aligned + residual_offset, kernel,
         (int64_t *)slot_aligned + slot_offset);
  release_call_scratch();
}

/* The output size of a convolution along one axis. */
static int64_t conv_output_size(int64_t in, int64_t pad, int64_t dilation, int64_t kernel,
                                int64_t stride) {
  return (in + 2 * pad - dilation * (kernel - 1) - 1) / stride + 1;
}

/* The pooled entry points' general path: the convolution (by `kernel`) into
 * a scratch buffer, then its max pool (window `window`, `stride` and `pad`
 * both ways)
 * into the output (image and plane strides out_image and out_plane). */
static void conv_then_pool(conv_shape *shape, int64_t images, const float *input,
                           int64_t image_stride, const float *weights, float *output,
                           int64_t out_image, int64_t out_plane, int64_t out_h, int64_t out_w,
                           int64_t kernel, int64_t *slot, int64_t window, int64_t stride,
                           int64_t pad) {
  shape->pool = 0;
  int64_t conv_image = shape->filters * shape->oh * shape->ow;
  float *full = scratch(SCRATCH_UNPOOLED, images * conv_image);
  conv2d(shape, images, input, image_stride, weights, full, conv_image, NULL, kernel, slot);
  maxpool_job job = {full, output, conv_image, shape->oh * shape->ow, out_image, out_plane,
                     shape->filters, shape->oh, shape->ow, out_h, out_w, window, window,
                     stride, stride, 1, 1, pad, pad, 0, 0, 0};
  run_maxpool(&job, images);
}

#define POOLED_CONV_SHAPE(pool_)                                                           \
  {in_c, in_h, in_w, out_c, filter_h, filter_w,                                            \
   conv_output_size(in_h, pad_h, dilation_h, filter_h, stride_h),                          \
   conv_output_size(in_w, pad_w, dilation_w, filter_w, stride_w), stride_h, stride_w,      \
   dilation_h, dilation_w, pad_h, pad_w, (const float *)bias_aligned + bias_offset,        \
   (int)relu, pool_}

/* out = maxpool2x2(act(conv(in, filter) + bias[f])): a MaxPool2d(2) after
 * the convolution folded into the call (the pool-offload pass), `out` the
 * pooled shape. The direct kernel pools its tiles as it stores them; other
 * paths pool a scratch copy of the convolution. */
void mlirc_conv2d_nchw_bias_pool_f32(MEMREF4(in), MEMREF4(filter), MEMREF4(out),
                                     MEMREF1(bias), int64_t stride_h, int64_t stride_w,
                                     int64_t dilation_h, int64_t dilation_w, int64_t pad_h,
                                     int64_t pad_w, int64_t relu, int64_t kernel,
                                     MEMREF1(slot)) {
  conv_shape shape = POOLED_CONV_SHAPE(1);
  const float *input = (const float *)in_aligned + in_offset;
  const float *weights = (const float *)filter_aligned + filter_offset;
  float *output = (float *)out_aligned + out_offset;
  if (kernel == MLIRC_CONV_DIRECT && direct_conv_fits(&shape)) { /* whole 2x2 windows */
    count_run(MLIRC_CONV_DIRECT);
    direct_conv(&shape, in_n, input, in_s0, weights, output, out_s0, NULL);
  } else
    conv_then_pool(&shape, in_n, input, in_s0, weights, output, out_s0, out_s1, out_h, out_w,
                   kernel, (int64_t *)slot_aligned + slot_offset, 2, 2, 0);
  release_call_scratch();
}

/* out = maxpool3x3(act(conv(in, filter) + bias[f])), the pool of stride 2
 * and padding 1 (ResNet's stem pool) folded into the call by the
 * pool-offload pass, `out` the pooled shape. The strided stem kernel pools
 * the rows each task computed (strided_conv_pooled); other paths pool a
 * scratch copy of the convolution. */
void mlirc_conv2d_nchw_bias_pool3x3s2_f32(MEMREF4(in), MEMREF4(filter), MEMREF4(out),
                                          MEMREF1(bias), int64_t stride_h, int64_t stride_w,
                                          int64_t dilation_h, int64_t dilation_w,
                                          int64_t pad_h, int64_t pad_w, int64_t relu,
                                          int64_t kernel, MEMREF1(slot)) {
  conv_shape shape = POOLED_CONV_SHAPE(0);
  const float *input = (const float *)in_aligned + in_offset;
  const float *weights = (const float *)filter_aligned + filter_offset;
  float *output = (float *)out_aligned + out_offset;
  if (kernel == MLIRC_CONV_STRIDED && strided_conv_pooled_fits(&shape)) {
    count_run(MLIRC_CONV_STRIDED);
    strided_conv_pooled(&shape, in_n, input, in_s0, weights, output, out_s0);
  } else
    conv_then_pool(&shape, in_n, input, in_s0, weights, output, out_s0, out_s1, out_h, out_w,
                   kernel, (int64_t *)slot_aligned + slot_offset, 3, 2, 1);
  release_call_scratch();
}

int64_t mlirc_conv2d_kernel_fits(int64_t kernel, int64_t images, int64_t channels,
                                 int64_t in_h, int64_t in_w, int64_t filters, int64_t kh,
                                 int64_t kw, int64_t stride_h, int64_t stride_w,
                                 int64_t dilation_h, int64_t dilation_w, int64_t pad_h,
                                 int64_t pad_w) {
  conv_shape shape = {channels, in_h, in_w, filters, kh, kw,
                      conv_output_size(in_h, pad_h, dilation_h, kh, stride_h),
                      conv_output_size(in_w, pad_w, dilation_w, kw, stride_w), stride_h,
                      stride_w, dilation_h, dilation_w, pad_h, pad_w, NULL, 0, 0};
  return conv_kernel_fits(kernel, &shape, images);
}

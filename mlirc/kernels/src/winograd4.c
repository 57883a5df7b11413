/* mlirc's kernel library: Winograd convolution, F(4x4, 3x3). It shares
 * winograd.c's job, scratch layout and packed point GEMMs.
 *
 * Each 4x4 block of output comes from a 6x6 block of input with 36
 * multiplications per (filter, channel) instead of 144: the point GEMMs do
 * 2.25 multiplications an output where F(2x2, 3x3) does 4 and the direct
 * convolution 9. With U = G g G^T (6x6), V = B^T d B, M[p] = U[p] V[p]
 * summed over channels and Y = A^T M A (4x4), the matrices of Lavin and
 * Gray (2015) at the points 0, +-1, +-2 and infinity:
 *   B^T = [4  0 -5  0 1 0;  0 -4 -4  1 1 0;  0 4 -4 -1 1 0;
 *          0 -2 -1  2 1 0;  0  2 -1 -2 1 0;  0 4  0 -5 0 1]
 *   G   = [1/4 0 0; -1/6 -1/6 -1/6; -1/6 1/6 -1/6;
 *          1/24 1/12 1/6; 1/24 -1/12 1/6; 0 0 1]
 *   A^T = [1 1 1 1 1 0; 0 1 -1 2 -2 0; 0 1 1 4 4 0; 0 1 -1 8 -8 1]
 * Its transforms scale by up to 8, so results differ from the direct sum
 * more than F(2x2, 3x3)'s do (about 3e-5 against outputs of magnitude 5 for
 * 64 channels of unit inputs, 20 times F(2x2, 3x3)'s error; oneDNN and
 * NNPACK use it too). It is taken only where it pays:
 * AVX-512 (the packed point GEMMs and the permutes below), planes whose
 * sides are multiples of 4 and at least 5 tiles wide (ResNet-50's 56x56
 * and 28x28 layers; its 14x14 ones would pad to 16x16 and read a
 * transformed filter 2.25 times F(2x2, 3x3)'s from memory). */

#include "kernels.h"
enum { WINOGRAD4_POINTS = 36 };

#ifdef __AVX512F__
/* U = G g G^T for every (filter, channel): u[(6i + j) * F * C + f * C + c]. */
static void winograd4_filters(const float *weights, int64_t filters, int64_t channels,
                              float *u) {
  static const float g_matrix[6][3] = {{0.25f, 0.0f, 0.0f},
                                       {-1.0f / 6, -1.0f / 6, -1.0f / 6},
                                       {-1.0f / 6, 1.0f / 6, -1.0f / 6},
                                       {1.0f / 24, 1.0f / 12, 1.0f / 6},
                                       {1.0f / 24, -1.0f / 12, 1.0f / 6},
                                       {0.0f, 0.0f, 1.0f}};
  int64_t plane = filters * channels;
  for (int64_t f = 0; f < filters; ++f)
    for (int64_t c = 0; c < channels; ++c) {
      const float *g = weights + (f * channels + c) * 9;
      float rows[6][3]; /* G g */
      for (int i = 0; i < 6; ++i)
        for (int j = 0; j < 3; ++j)
          rows[i][j] = g_matrix[i][0] * g[j] + g_matrix[i][1] * g[3 + j] +
                       g_matrix[i][2] * g[6 + j];
      for (int i = 0; i < 6; ++i)
        for (int j = 0; j < 6; ++j) {
          const float *r = g_matrix[j];
          u[(i * 6 + j) * plane + f * channels + c] =
              rows[i][0] * r[0] + rows[i][1] * r[1] + rows[i][2] * r[2];
        }
    }
}

/* B^T d for one column of 6 values (16 tiles at once), d[k] `step` apart. */
static inline void winograd4_b(const v16 *d, int step, v16 *out, int out_step) {
  v16 d0 = d[0], d1 = d[step], d2 = d[2 * step], d3 = d[3 * step], d4 = d[4 * step],
      d5 = d[5 * step];
  v16 four = BROADCAST(4.0f), five = BROADCAST(5.0f), two = BROADCAST(2.0f);
  v16 t0 = d4 - four * d2, t1 = d3 - four * d1;
  v16 t2 = d4 - d2, t3 = two * (d3 - d1);
  out[0] = four * d0 - five * d2 + d4;
  out[out_step] = t0 + t1;
  out[2 * out_step] = t0 - t1;
  out[3 * out_step] = t2 + t3;
  out[4 * out_step] = t2 - t3;
  out[5 * out_step] = four * d1 - five * d3 + d5;
}

/* A^T m for one column of 6 values, m[k] `step` apart, into 4. */
static inline void winograd4_a(const v16 *m, int step, v16 *out, int out_step) {
  v16 s1 = m[step] + m[2 * step], s2 = m[step] - m[2 * step];
  v16 s3 = m[3 * step] + m[4 * step], s4 = m[3 * step] - m[4 * step];
  out[0] = m[0] + s1 + s3;
  out[out_step] = s2 + BROADCAST(2.0f) * s4;
  out[2 * out_step] = s1 + BROADCAST(4.0f) * s3;
  out[3 * out_step] = s2 + BROADCAST(8.0f) * s4 + m[5 * step];
}

/* Lanes j, j + 4, ..., j + 60 of the 64 floats a, b, c, d: the tap j of
 * 16 tiles 4 columns apart. */
static inline v16 every_fourth(__m512 a, __m512 b, __m512 c, __m512 d, int j) {
  __m512i index = _mm512_add_epi32(_mm512_set_epi32(0, 0, 0, 0, 0, 0, 0, 0, 28, 24, 20, 16, 12,
                                                    8, 4, 0),
                                   _mm512_set1_epi32(j));
  __m512 low = _mm512_permutex2var_ps(a, index, b), high = _mm512_permutex2var_ps(c, index, d);
  return (v16)_mm512_shuffle_f32x4(low, high, 0x44);
}

/* The 6 taps of 16 tiles along an input row (NULL: a padding row), tile k
 * reading columns x0 + 4k .. x0 + 4k + 5, those outside [0, width) zero:
 * masked loads of the row in place, no padded copy. */
static inline void row_taps6(const float *row, int64_t x0, int64_t width, v16 taps[6]) {
  if (!row) {
    for (int j = 0; j < 6; ++j) taps[j] = (v16){};
    return;
  }
  __m512 part[4];
  for (int q = 0; q < 4; ++q)
    part[q] = _mm512_maskz_loadu_ps(lanes_inside(x0 + 16 * q, width), row + x0 + 16 * q);
  for (int j = 0; j < 4; ++j) taps[j] = every_fourth(part[0], part[1], part[2], part[3], j);
  /* columns 4k + 4 and 4k + 5 are taps 0 and 1 of tile k + 1; tile 15's
   * come from the two columns after the 64 loaded */
  float after[2] = {x0 + 64 < width ? row[x0 + 64] : 0.0f, x0 + 65 < width ? row[x0 + 65] : 0.0f};
  taps[4] = (v16)_mm512_alignr_epi32(_mm512_castps_si512(_mm512_set1_ps(after[0])),
                                     _mm512_castps_si512((__m512)taps[0]), 1);
  taps[5] = (v16)_mm512_alignr_epi32(_mm512_castps_si512(_mm512_set1_ps(after[1])),
                                     _mm512_castps_si512((__m512)taps[1]), 1);
}

/* V = B^T d B for 16 tiles of tile row ty from tile tx0, of one channel's
 * input plane: their 6x6 inputs taken from the 6 input rows by permutes. */
static inline void winograd4_input_tiles(const conv_shape *shape, const float *plane,
                                         int64_t ty, int64_t tx0, v16 out[36]) {
  v16 d[36], column[36];
  for (int r = 0; r < 6; ++r) {
    int64_t y = 4 * ty + r - shape->pad_h;
    row_taps6(y >= 0 && y < shape->in_h ? plane + y * shape->in_w : NULL,
              4 * tx0 - shape->pad_w, shape->in_w, d + 6 * r);
  }
  for (int j = 0; j < 6; ++j) winograd4_b(d + j, 6, column + j, 6);        /* B^T d */
  for (int i = 0; i < 6; ++i) winograd4_b(column + 6 * i, 1, out + 6 * i, 1); /* . B */
}

/* V for a block of channels, every image: 16 tiles of a tile row at a
 * time, their 6x6 inputs taken from the 6 input rows by permutes
 * (row_taps6), V = B^T d B, 36 rows of V written. */
static void winograd4_input_task(void *context, int64_t task) {
  const winograd_job *job = context;
  const conv_shape *shape = job->shape;
  int64_t tiles_w = job->tiles_w, in_h = shape->in_h, in_w = shape->in_w;
  int64_t c1 = (task + 1) * job->block < shape->channels ? (task + 1) * job->block
                                                          : shape->channels;
  for (int64_t c = task * job->block; c < c1; ++c)
    for (int64_t n = 0; n * job->tiles_h * tiles_w < job->tiles; ++n) {
      const float *plane = job->input + n * job->image_stride + c * in_h * in_w;
      for (int64_t ty = 0; ty < job->tiles_h; ++ty) {
        float *v = job->v + c * job->ld + n * job->tiles_h * tiles_w + ty * tiles_w;
        for (int64_t tx0 = 0; tx0 < tiles_w; tx0 += 16) {
          v16 out[36];
          winograd4_input_tiles(shape, plane, ty, tx0, out);
          int64_t count = tiles_w - tx0 < 16 ? tiles_w - tx0 : 16;
          __mmask16 lanes = (__mmask16)((1u << count) - 1);
          for (int p = 0; p < WINOGRAD4_POINTS; ++p)
            _mm512_mask_storeu_ps(v + p * job->v_stride + tx0, lanes, (__m512)out[p]);
        }
      }
    }
}

/* Output tiles k = 0..15 of one output row, y[j] holding column j of each:
 * interleaved into 64 consecutive floats (tile k's 4 at 4k). */
static inline void interleave4(const v16 y[4], v16 out[4]) {
  __m512 ab_low = _mm512_unpacklo_ps((__m512)y[0], (__m512)y[1]);
  __m512 ab_high = _mm512_unpackhi_ps((__m512)y[0], (__m512)y[1]);
  __m512 cd_low = _mm512_unpacklo_ps((__m512)y[2], (__m512)y[3]);
  __m512 cd_high = _mm512_unpackhi_ps((__m512)y[2], (__m512)y[3]);
  /* per 128-bit lane L: tile 4L + q's four outputs */
  __m512 q0 = _mm512_shuffle_ps(ab_low, cd_low, 0x44), q1 = _mm512_shuffle_ps(ab_low, cd_low, 0xEE);
  __m512 q2 = _mm512_shuffle_ps(ab_high, cd_high, 0x44);
  __m512 q3 = _mm512_shuffle_ps(ab_high, cd_high, 0xEE);
  __m512 r0 = _mm512_shuffle_f32x4(q0, q1, 0x44), r1 = _mm512_shuffle_f32x4(q2, q3, 0x44);
  __m512 r2 = _mm512_shuffle_f32x4(q0, q1, 0xEE), r3 = _mm512_shuffle_f32x4(q2, q3, 0xEE);
  out[0] = (v16)_mm512_shuffle_f32x4(r0, r1, 0x88);
  out[1] = (v16)_mm512_shuffle_f32x4(r0, r1, 0xDD);
  out[2] = (v16)_mm512_shuffle_f32x4(r2, r3, 0x88);
  out[3] = (v16)_mm512_shuffle_f32x4(r2, r3, 0xDD);
}

/* Y = A^T M A for 16 tiles of tile row ty from tile tx0 of one filter's
 * plane (p: their 36 points), each of the 4 output rows interleaved
 * (interleave4) and stored with the convolution's epilogue. */
static inline void winograd4_output_tiles(const conv_shape *shape, const v16 p[36], float *out,
                                          const float *shortcut, float bias, int64_t ty,
                                          int64_t tx0) {
  v16 column[24], y[16];
  for (int j = 0; j < 6; ++j) winograd4_a(p + j, 6, column + j, 6);        /* A^T M */
  for (int i = 0; i < 4; ++i) winograd4_a(column + 6 * i, 1, y + 4 * i, 1); /* . A */
  int64_t ow = shape->ow, x0 = 4 * tx0, columns = ow - x0 < 64 ? ow - x0 : 64;
  for (int r = 0; r < 4 && 4 * ty + r < shape->oh; ++r) {
    v16 row[4];
    interleave4(y + 4 * r, row);
    int64_t at = (4 * ty + r) * ow + x0;
    for (int q = 0; q < 4 && 16 * q < columns; ++q)
      store_output(shape, out + at + 16 * q, shortcut ? shortcut + at + 16 * q : NULL, bias,
                   row[q], lanes_inside(16 * q, columns));
  }
}

/* Y = A^T M A for a block of filters, every image, 16 tiles of a tile row
 * at a time, each of the 4 output rows interleaved (interleave4) and
 * stored with the convolution's epilogue (store_output). */
static void winograd4_output_task(void *context, int64_t task) {
  const winograd_job *job = context;
  const conv_shape *shape = job->shape;
  int64_t tiles_w = job->tiles_w, ow = shape->ow, plane = shape->oh * ow;
  int64_t f1 = (task + 1) * job->block < shape->filters ? (task + 1) * job->block
                                                         : shape->filters;
  for (int64_t f = task * job->block; f < f1; ++f)
    for (int64_t n = 0; n * job->tiles_h * tiles_w < job->tiles; ++n) {
      float *out = job->output + n * job->out_stride + f * plane;
      const float *shortcut = job->residual ? job->residual + n * job->out_stride + f * plane
                                            : NULL;
      float bias = shape->bias ? shape->bias[f] : 0.0f;
      const float *m = job->m + f * job->ld + n * job->tiles_h * tiles_w;
      for (int64_t ty = 0; ty < job->tiles_h; ++ty)
        for (int64_t tx0 = 0; tx0 < tiles_w; tx0 += 16) {
          /* lanes past the row's tiles read the next row's M (or the slack
           * after the last): unused */
          v16 p[36];
          for (int k = 0; k < WINOGRAD4_POINTS; ++k)
            p[k] = LOAD(v16, m + k * job->m_stride + ty * tiles_w + tx0);
          winograd4_output_tiles(shape, p, out, shortcut, bias, ty, tx0);
        }
    }
}

/* Whether F(4x4, 3x3) takes a convolution that Winograd takes
 * (winograd_fits) with packed point GEMMs: whole 4x4 tiles, rows of at
 * least WINOGRAD_ROW_TILES of them. Against F(2x2, 3x3) (kernel harness,
 * 2026-12-01): ResNet-50's 56x56 layer 333 -> 228 us, 28x28 295 -> 248;
 * in the model 1.12 -> 0.77 ms (x3) and 0.86 -> 0.69 ms (x3). */
INTERNAL int winograd4_fits(const conv_shape *shape, int packed) {
  return packed && shape->oh % 4 == 0 && shape->ow % 4 == 0 &&
         shape->ow / 4 >= WINOGRAD_ROW_TILES;
}

/* U for the packed point GEMMs: each U[p]^T in 32-filter panels. */
static float *transform_filters4(const void *args) {
  const filter_source *source = args;
  int64_t filters = source->filters, channels = source->channels;
  float *u = aligned_alloc(64, sizeof(float) * WINOGRAD4_POINTS * filters * channels);
  winograd4_filters(source->weights, filters, channels, u);
  return pack_points(u, WINOGRAD4_POINTS, filters, channels);
}

INTERNAL void winograd4_conv(const conv_shape *shape, int64_t images, const float *input,
                           int64_t image_stride, int64_t *slot, const float *weights,
                           float *output, int64_t out_stride, const float *residual) {
  filter_source source = {shape, weights, shape->filters, shape->channels, 1};
  const float *u = slot_data(slot, transform_filters4, &source);
  winograd_job job = winograd_setup(shape, images, input, image_stride, u, output, out_stride,
                                    residual, shape->oh / 4, shape->ow / 4, WINOGRAD4_POINTS);
  job.block = task_block(shape->channels);
  parallel_for(block_count(shape->channels, job.block), winograd4_input_task, &job);
  winograd_packed_gemms(&job, WINOGRAD4_POINTS);
  job.block = task_block(shape->filters);
  parallel_for(block_count(shape->filters, job.block), winograd4_output_task, &job);
}
#else
INTERNAL int winograd4_fits(const conv_shape *shape, int packed) {
  (void)shape, (void)packed;
  return 0;
}

INTERNAL void winograd4_conv(const conv_shape *shape, int64_t images, const float *input,
                           int64_t image_stride, int64_t *slot, const float *weights,
                           float *output, int64_t out_stride, const float *residual) {
  (void)shape, (void)images, (void)input, (void)image_stride, (void)slot, (void)weights;
  (void)output, (void)out_stride, (void)residual;
  abort(); /* winograd4_fits is 0 */
}
#endif

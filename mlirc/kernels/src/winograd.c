/* mlirc's kernel library: Winograd convolution, F(2x2, 3x3).
 *
 * A stride-1 3x3 convolution computes each 2x2 block of output from a 4x4
 * block of input with 16 multiplications per (filter, channel) instead of
 * 36 (Lavin and Gray, "Fast Algorithms for Convolutional Neural Networks",
 * 2015): with the filter transformed once, U = G g G^T (4x4), every 4x4
 * input tile d becomes V = B^T d B, the 16 points of U and V multiply
 * pointwise and sum over channels, which is 16 independent GEMMs
 *     M[p] (filters x tiles) = U[p] (filters x channels) * V[p] (channels x tiles),
 * and the output tile is Y = A^T M A (2x2). The transforms only add and
 * halve, so the result differs from the direct sum by a few float roundings
 * (F(2x2, 3x3) is the most accurate of the Winograd family).
 *
 * Layouts: U[p][f][c] (for the packed-weights kernel: each U[p]^T in
 * 32-filter panels, see transform_filters), V[p][c][t], M[p][f][t], t
 * running over every tile of every image (tile rows, then images), so the
 * GEMMs' N dimension holds the whole batch. */

#include "kernels.h"

/* U = G g G^T for every (filter, channel), G = [1 0 0; .5 .5 .5; .5 -.5 .5; 0 0 1]. */
static void winograd_filters(const float *weights, int64_t filters, int64_t channels,
                             float *u) {
  int64_t plane = filters * channels;
  for (int64_t f = 0; f < filters; ++f)
    for (int64_t c = 0; c < channels; ++c) {
      const float *g = weights + (f * channels + c) * 9;
      float rows[4][3]; /* G g */
      for (int j = 0; j < 3; ++j) {
        rows[0][j] = g[j];
        rows[1][j] = 0.5f * (g[j] + g[3 + j] + g[6 + j]);
        rows[2][j] = 0.5f * (g[j] - g[3 + j] + g[6 + j]);
        rows[3][j] = g[6 + j];
      }
      for (int i = 0; i < 4; ++i) {
        const float *r = rows[i];
        float point[4] = {r[0], 0.5f * (r[0] + r[1] + r[2]), 0.5f * (r[0] - r[1] + r[2]), r[2]};
        for (int j = 0; j < 4; ++j) u[(i * 4 + j) * plane + f * channels + c] = point[j];
      }
    }
}

/* Tiles a transform handles at once: whole rows of tiles, about this many,
 * so that its 16 scratch rows stay in the L1 cache. */
enum { WINOGRAD_CHUNK = 256 };

static int64_t winograd_chunk_rows(const winograd_job *job) {
  int64_t rows = job->tiles_w >= WINOGRAD_CHUNK ? 1 : WINOGRAD_CHUNK / job->tiles_w;
  return rows < job->tiles_h ? rows : job->tiles_h;
}

/* 16 floats of `base` at `index` (a gather). */
static inline v16 gather_v16(const float *base, const int32_t *index) {
#ifdef __AVX512F__
  return (v16)_mm512_i32gather_ps(_mm512_loadu_si512(index), base, 4);
#else
  v16 lanes;
  for (int k = 0; k < 16; ++k) lanes[k] = base[index[k]];
  return lanes;
#endif
}

/* V = B^T d B for 16 tiles at once, in[4a + b] holding d[a][b]: vertical
 * differences (B^T d), then horizontal ones (. B). */
static inline void input_transform(const v16 in[16], v16 out[16]) {
  v16 mid[16];
  for (int b = 0; b < 4; ++b) { /* B^T d: rows a of d mixed, per column b */
    mid[b] = in[b] - in[8 + b];
    mid[4 + b] = in[4 + b] + in[8 + b];
    mid[8 + b] = in[8 + b] - in[4 + b];
    mid[12 + b] = in[4 + b] - in[12 + b];
  }
  for (int i = 0; i < 4; ++i) { /* . B: columns mixed, per row i */
    const v16 *r = mid + 4 * i;
    out[4 * i] = r[0] - r[2];
    out[4 * i + 1] = r[1] + r[2];
    out[4 * i + 2] = r[2] - r[1];
    out[4 * i + 3] = r[1] - r[3];
  }
}

/* The 16 points of `count` tiles (the first lanes) into V, one row of V per
 * point. */
static inline void store_points(float *v, int64_t point_stride, const v16 out[16],
                                int64_t count) {
  if (count >= 16) {
    for (int k = 0; k < 16; ++k) STORE(v16, v + k * point_stride, out[k]);
    return;
  }
#ifdef __AVX512F__
  __mmask16 lanes = (__mmask16)((1u << count) - 1);
  for (int k = 0; k < 16; ++k) _mm512_mask_storeu_ps(v + k * point_stride, lanes, (__m512)out[k]);
#else
  float lanes[16];
  for (int k = 0; k < 16; ++k) {
    STORE(v16, lanes, out[k]);
    memcpy(v + k * point_stride, lanes, sizeof(float) * count);
  }
#endif
}

/* d[a][0..3] of 16 tiles side by side in one tile row, from the scratch
 * row under their row a starting at the first tile's left column: tile k
 * reads columns 2k .. 2k + 3, the even and odd columns apart by shuffles
 * (48 floats read; lanes past the row's tiles are not stored). */
static inline void row_taps(const float *row, v16 taps[4]) {
  v16 v0 = LOAD(v16, row), v1 = LOAD(v16, row + 16), v2 = LOAD(v16, row + 32);
  v16 even = even_lanes(v0, v1), odd = odd_lanes(v0, v1);
  taps[0] = even;
  taps[1] = odd;
  taps[2] = __builtin_shufflevector(even, v2, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15,
                                    16);
  taps[3] = __builtin_shufflevector(odd, v2, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15,
                                    17);
}

/* Tile rows at least this long go a vector of tiles along one tile row at a
 * time (the last one partial), in by row_taps and out by
 * winograd_output_rows, instead of 16 gathers and 4 scatters a vector of
 * tiles spanning rows: gathers and scatters are slow here (AMD Zen 5), so
 * that even ResNet's 14x14 layers, 7 tiles a row and 9 lanes of 16 empty,
 * gain (input 42 -> 26, output 34 -> 11 us; 56x56: 127 -> 53 and 55 -> 24;
 * 28x28: 68 -> 29 and 42 -> 15; kernel harness, 2026-12-01). Planes 8 wide
 * (4 tiles a row) have their own permutes. */

/* V for a block of channels, every image. A chunk of tile rows at a time:
 * the input rows under it are copied into a zero-bordered scratch plane,
 * from which the 16 input values of 16 tiles at once are taken, then
 * V = B^T d B for the 16 tiles (input_transform). Tile rows of
 * WINOGRAD_ROW_TILES or more take up to 16 tiles of one row by shuffles
 * (row_taps); planes 8 wide take 4 rows of 4 tiles by permutes; smaller
 * planes gather each value. A task writes whole rows of V, which start on
 * cache lines: no two threads share one. */
static void winograd_input_task(void *context, int64_t task) {
  const winograd_job *job = context;
  const conv_shape *shape = job->shape;
  int64_t tiles_w = job->tiles_w, width = 2 * tiles_w + 2;
  int64_t chunk_rows = winograd_chunk_rows(job), span = chunk_rows * tiles_w;
  int64_t point_stride = job->v_stride;
  int64_t first = shape->pad_w, last = shape->pad_w + shape->in_w < width
                                           ? shape->pad_w + shape->in_w : width;
  /* on the stack (a few KB: chunks are small), where tasks do not contend
   * for the heap */
  float scratch[(2 * chunk_rows + 2) * width + 48]; /* row_taps reads 48 floats */
  /* for the gathers of short tile rows: where tile t's top-left input lies
   * in the scratch plane; lanes past the chunk read its first value (their
   * results are not stored) */
  int32_t corner[span + 16];
  for (int64_t t = 0; t < span + 16 && tiles_w < WINOGRAD_ROW_TILES; ++t)
    corner[t] = t < span ? (int32_t)(2 * (t / tiles_w) * width + 2 * (t % tiles_w)) : 0;
  /* planes 8 wide padded by one (the cnn's 8x8 layer): each scratch row is
   * one masked load of the input row, lanes 0 and 9 the padding, so the
   * rows are not copied at all (AVX-512 only: load_lanes): 17.3 -> 15.9 us
   * for that layer */
#ifdef __AVX512F__
  int rows_in_place = tiles_w == 4 && shape->in_w == 8 && shape->pad_w == 1 &&
                      job->tiles_h % 4 == 0; /* whole vectors of tiles */
#else
  int rows_in_place = 0;
#endif
  int64_t c1 = (task + 1) * job->block < shape->channels ? (task + 1) * job->block
                                                          : shape->channels;
  for (int64_t c = task * job->block; c < c1; ++c)
    for (int64_t n = 0; n * job->tiles_h * tiles_w < job->tiles; ++n) {
      const float *plane = job->input + n * job->image_stride + c * shape->in_h * shape->in_w;
      for (int64_t ty0 = 0; ty0 < job->tiles_h; ty0 += chunk_rows) {
        int64_t rows = job->tiles_h - ty0 < chunk_rows ? job->tiles_h - ty0 : chunk_rows;
        int64_t count = rows * tiles_w;
        for (int64_t r = 0; r < 2 * rows + 2 && !rows_in_place; ++r) {
          float *line = scratch + r * width;
          int64_t y = 2 * ty0 + r - shape->pad_h;
          if (y < 0 || y >= shape->in_h) {
            memset(line, 0, sizeof(float) * width);
            continue;
          }
          for (int64_t x = 0; x < first; ++x) line[x] = 0.0f;
          memcpy(line + first, plane + y * shape->in_w, sizeof(float) * (last - first));
          for (int64_t x = last; x < width; ++x) line[x] = 0.0f;
        }
        float *v = job->v + c * job->ld + n * job->tiles_h * tiles_w + ty0 * tiles_w;
        if (tiles_w >= WINOGRAD_ROW_TILES) {
          for (int64_t ty = 0; ty < rows; ++ty)
            for (int64_t tx0 = 0; tx0 < tiles_w; tx0 += 16) {
              v16 in[16], out[16];
              for (int a = 0; a < 4; ++a)
                row_taps(scratch + (2 * ty + a) * width + 2 * tx0, in + 4 * a);
              input_transform(in, out);
              store_points(v + ty * tiles_w + tx0, point_stride, out,
                           tiles_w - tx0 < 16 ? tiles_w - tx0 : 16);
            }
          continue;
        }
        for (int64_t t = 0; t < count; t += 16) {
          v16 in[16], out[16];
          if (tiles_w == 4 && count - t >= 16) {
            /* planes 8 wide: 16 tiles are 4 tile rows over 10 scratch rows of
             * 10 floats; each value picked out of two rows at a time by a
             * permute instead of gathered */
            const float *rows = scratch + 2 * (t / 4) * width;
            v16 line[10];
            for (int r = 0; r < 10; ++r) {
              int64_t y = 2 * (ty0 + t / 4) + r - shape->pad_h;
              if (!rows_in_place) line[r] = LOAD(v16, rows + r * width);
              else if (y < 0 || y >= shape->in_h) line[r] = (v16){};
              else line[r] = load_lanes(plane + y * 8 - 1, 0x1FE);
            }
#define WIDTH8_PICK(u, v, b) __builtin_shufflevector(u, v, b, b + 2, b + 4, b + 6, 16 + b, 18 + b, \
                                                     20 + b, 22 + b, 0, 0, 0, 0, 0, 0, 0, 0)
#define WIDTH8_TAP(a, b)                                                                    \
  __builtin_shufflevector(WIDTH8_PICK(line[a], line[a + 2], b),                             \
                          WIDTH8_PICK(line[a + 4], line[a + 6], b), 0, 1, 2, 3, 4, 5, 6, 7, 16, \
                          17, 18, 19, 20, 21, 22, 23)
#pragma GCC unroll 4
            for (int a = 0; a < 4; ++a) {
              in[4 * a] = WIDTH8_TAP(a, 0);
              in[4 * a + 1] = WIDTH8_TAP(a, 1);
              in[4 * a + 2] = WIDTH8_TAP(a, 2);
              in[4 * a + 3] = WIDTH8_TAP(a, 3);
            }
#undef WIDTH8_TAP
#undef WIDTH8_PICK
          } else {
            for (int a = 0; a < 4; ++a)
              for (int b = 0; b < 4; ++b)
                in[4 * a + b] = gather_v16(scratch + a * width + b, corner + t);
          }
          input_transform(in, out);
          store_points(v + t, point_stride, out, count - t);
        }
      }
    }
}

/* M[p] = U[p] * V[p]: one GEMM per point, on one thread. (A register-
 * blocked kernel of the shim's own, 4 filters x 4 vectors of tiles, was no
 * faster on the cnn's 64 x 64 x 32 points: 15.9 against 16.0 us a layer.) */
static void winograd_gemm_task(void *context, int64_t point) {
  const winograd_job *job = context;
  const conv_shape *shape = job->shape;
  int64_t f = shape->filters, c = shape->channels, ld = job->ld;
  sgemm_blas()(RowMajor, NoTrans, NoTrans, (int)f, (int)job->tiles, (int)c, 1.0f,
               job->u + point * f * c, (int)c, job->v + point * job->v_stride, (int)ld, 0.0f,
               job->m + point * job->m_stride, (int)ld);
}

#ifdef __AVX512F__
/* The epilogue on one of a tile's four outputs for 16 tiles at once, where
 * output rows are narrower than a vector (the cnn's 8x8, ResNet's 14x14):
 * scattered to `spot` (the outputs' offsets in the plane) in the lanes of
 * `keep`. out = act(y + bias [+ residual]), or out += y without a bias. */
static inline void scatter_outputs(const conv_shape *shape, float *out, const float *shortcut,
                                   float bias, v16 y, __m512i spot, __mmask16 keep) {
  if (!shape->bias) {
    y += (v16)_mm512_mask_i32gather_ps(_mm512_setzero_ps(), keep, spot, out, 4);
  } else {
    y += BROADCAST(bias);
    if (shortcut) y += (v16)_mm512_mask_i32gather_ps(_mm512_setzero_ps(), keep, spot, shortcut, 4);
    if (shape->relu) y = relu_v16(y);
  }
  _mm512_mask_i32scatter_ps(out, keep, spot, (__m512)y, 4);
}
#endif

#ifdef __AVX512F__
/* Y = A^T M A for `rows` tile rows from tile row ty0 of one filter's plane,
 * 16 tiles of a row at a time: each tile's 2x2 outputs are interleaved into
 * the plane's two output rows by shuffles and stored as whole vectors, with
 * masks at the right edge (tile rows of WINOGRAD_ROW_TILES or more). */
static void winograd_output_rows(const winograd_job *job, const float *m, int64_t f,
                                 float *out, const float *shortcut, int64_t ty0, int64_t rows) {
  const conv_shape *shape = job->shape;
  int64_t tiles_w = job->tiles_w, ow = shape->ow, oh = shape->oh;
  float bias = shape->bias ? shape->bias[f] : 0.0f;
  for (int64_t ty = 0; ty < rows; ++ty)
    for (int64_t tx0 = 0; tx0 < tiles_w; tx0 += 16) {
      v16 p[16], top[4], bottom[4];
      /* lanes past the row's tiles read the next row's M (or the slack
       * after the last one): unused */
      for (int k = 0; k < 16; ++k) p[k] = LOAD(v16, m + k * job->m_stride + ty * tiles_w + tx0);
      for (int j = 0; j < 4; ++j) {
        top[j] = p[j] + p[4 + j] + p[8 + j];
        bottom[j] = p[4 + j] - p[8 + j] - p[12 + j];
      }
      v16 y[2][2] = {{top[0] + top[1] + top[2], top[1] - top[2] - top[3]},
                     {bottom[0] + bottom[1] + bottom[2], bottom[1] - bottom[2] - bottom[3]}};
      int64_t x0 = 2 * tx0, columns = ow - x0 < 32 ? ow - x0 : 32;
      __mmask16 low = lanes_inside(0, columns), high = lanes_inside(16, columns);
      for (int r = 0; r < 2; ++r) {
        int64_t oy = 2 * (ty0 + ty) + r;
        if (oy >= oh) break;
        v16 left = __builtin_shufflevector(y[r][0], y[r][1], 0, 16, 1, 17, 2, 18, 3, 19, 4, 20,
                                           5, 21, 6, 22, 7, 23);
        v16 right = __builtin_shufflevector(y[r][0], y[r][1], 8, 24, 9, 25, 10, 26, 11, 27, 12,
                                            28, 13, 29, 14, 30, 15, 31);
        int64_t at = oy * ow + x0;
        store_output(shape, out + at, shortcut ? shortcut + at : NULL, bias, left, low);
        if (high)
          store_output(shape, out + at + 16, shortcut ? shortcut + at + 16 : NULL, bias, right,
                       high);
      }
    }
}
#endif

/* Y = A^T M A for a block of filters, every image, A^T = [1 1 1 0; 0 1 -1 -1],
 * a chunk of tile rows at a time, then the convolution's epilogue on each
 * output row: out = act(Y + bias [+ residual]), or out += Y. Planes whose
 * rows are narrower than a vector scatter each vector of results instead. */
static void winograd_output_task(void *context, int64_t task) {
  const winograd_job *job = context;
  const conv_shape *shape = job->shape;
  int64_t tiles_w = job->tiles_w, point_stride = job->m_stride;
  int64_t chunk_rows = winograd_chunk_rows(job), span = chunk_rows * tiles_w;
  int64_t oh = shape->oh, ow = shape->ow, plane = oh * ow;
  float row[2 * tiles_w], y[4][span + 16];
  int64_t f1 = (task + 1) * job->block < shape->filters ? (task + 1) * job->block
                                                         : shape->filters;
#ifdef __AVX512F__
  /* one chunk a plane: where each tile's top-left output goes, and which
   * of its four outputs lie inside the plane (odd sizes) */
  int scatter = tiles_w < 16 && chunk_rows == job->tiles_h;
  int32_t spot[span + 16];
  uint8_t inside[span + 16];
  if (scatter)
    for (int64_t t = 0; t < span + 16; ++t) {
      int64_t ty = t / tiles_w, tx = t % tiles_w;
      spot[t] = t < span ? (int32_t)(2 * ty * ow + 2 * tx) : 0;
      inside[t] = t >= span ? 0 : 1 | (2 * tx + 1 < ow) << 1 | (2 * ty + 1 < oh) << 2;
    }
#endif
  for (int64_t f = task * job->block; f < f1; ++f)
    for (int64_t n = 0; n * job->tiles_h * tiles_w < job->tiles; ++n) {
      float *out = job->output + n * job->out_stride + f * plane;
      const float *shortcut = job->residual ? job->residual + n * job->out_stride + f * plane
                                            : NULL;
      for (int64_t ty0 = 0; ty0 < job->tiles_h; ty0 += chunk_rows) {
        int64_t rows = job->tiles_h - ty0 < chunk_rows ? job->tiles_h - ty0 : chunk_rows;
        int64_t count = rows * tiles_w;
        const float *m = job->m + f * job->ld + n * job->tiles_h * tiles_w + ty0 * tiles_w;
#ifdef __AVX512F__
        if (tiles_w >= WINOGRAD_ROW_TILES) {
          winograd_output_rows(job, m, f, out, shortcut, ty0, rows);
          continue;
        }
#endif
        /* tile rows the 8-wide path below stored (a leading part of the chunk) */
        int64_t rows_stored = 0;
        /* reads past `count` stay inside M's row (ld) or the next one: unused lanes */
        for (int64_t t = 0; t < count; t += 16) {
          v16 p[16], top[4], bottom[4];
          int64_t valid = count - t < 16 ? count - t : 16;
          for (int k = 0; k < 16; ++k) {
            if (valid == 16) p[k] = LOAD(v16, m + k * point_stride + t);
            else {
              float lanes[16] = {0};
              memcpy(lanes, m + k * point_stride + t, sizeof(float) * valid);
              p[k] = LOAD(v16, lanes);
            }
          }
          for (int j = 0; j < 4; ++j) {
            top[j] = p[j] + p[4 + j] + p[8 + j];
            bottom[j] = p[4 + j] - p[8 + j] - p[12 + j];
          }
          if (tiles_w == 4 && ow == 8 && count - t >= 16 && 2 * (ty0 + t / 4 + 4) <= oh) {
            /* planes 8 wide (the cnn's 8x8 layer): 16 tiles are 4 tile rows,
             * 8 output rows, interleaved in registers, whole vectors stored */
            v16 y00 = top[0] + top[1] + top[2], y01 = top[1] - top[2] - top[3];
            v16 y10 = bottom[0] + bottom[1] + bottom[2], y11 = bottom[1] - bottom[2] - bottom[3];
#define WIDTH8_ROW(a, b, k)                                                                    \
  __builtin_shufflevector(a, b, 4 * k, 16 + 4 * k, 4 * k + 1, 17 + 4 * k, 4 * k + 2, 18 + 4 * k, \
                          4 * k + 3, 19 + 4 * k, 0, 0, 0, 0, 0, 0, 0, 0)
#define WIDTH8_ROWS(k)                                                                    \
  __builtin_shufflevector(WIDTH8_ROW(y00, y01, k), WIDTH8_ROW(y10, y11, k), 0, 1, 2, 3, 4, 5, \
                          6, 7, 16, 17, 18, 19, 20, 21, 22, 23)
            v16 pairs[4] = {WIDTH8_ROWS(0), WIDTH8_ROWS(1), WIDTH8_ROWS(2), WIDTH8_ROWS(3)};
#undef WIDTH8_ROWS
#undef WIDTH8_ROW
            int64_t first_row = 2 * (ty0 + t / 4);
            for (int k = 0; k < 4; ++k) {
              int64_t at = (first_row + 2 * k) * 8;
              v16 value = pairs[k];
              if (!shape->bias) {
                value += LOAD(v16, out + at);
              } else {
                value += BROADCAST(shape->bias[f]);
                if (shortcut) value += LOAD(v16, shortcut + at);
                if (shape->relu) value = relu_v16(value);
              }
              STORE(v16, out + at, value);
            }
            rows_stored = t / 4 + 4;
            continue;
          }
#ifdef __AVX512F__
          if (scatter) {
            __m512i corner = _mm512_loadu_si512(spot + t);
            __mmask16 all = 0, right = 0, below = 0;
            for (int k = 0; k < 16; ++k) {
              all |= (__mmask16)((inside[t + k] & 1) && t + k < count) << k;
              right |= (__mmask16)((inside[t + k] & 2) && t + k < count) << k;
              below |= (__mmask16)((inside[t + k] & 4) && t + k < count) << k;
            }
            float bias = shape->bias ? shape->bias[f] : 0.0f;
            __m512i one = _mm512_set1_epi32(1), down = _mm512_set1_epi32((int)ow);
            scatter_outputs(shape, out, shortcut, bias, top[0] + top[1] + top[2], corner, all);
            scatter_outputs(shape, out, shortcut, bias, top[1] - top[2] - top[3],
                            _mm512_add_epi32(corner, one), right);
            scatter_outputs(shape, out, shortcut, bias, bottom[0] + bottom[1] + bottom[2],
                            _mm512_add_epi32(corner, down), below);
            scatter_outputs(shape, out, shortcut, bias, bottom[1] - bottom[2] - bottom[3],
                            _mm512_add_epi32(corner, _mm512_add_epi32(down, one)),
                            right & below);
            continue;
          }
#endif
          STORE(v16, y[0] + t, top[0] + top[1] + top[2]);
          STORE(v16, y[1] + t, top[1] - top[2] - top[3]);
          STORE(v16, y[2] + t, bottom[0] + bottom[1] + bottom[2]);
          STORE(v16, y[3] + t, bottom[1] - bottom[2] - bottom[3]);
        }
#ifdef __AVX512F__
        if (scatter) continue;
#endif
        for (int64_t ty = rows_stored; ty < rows; ++ty) /* the rest, from y */
          for (int r = 0; r < 2 && 2 * (ty0 + ty) + r < oh; ++r) {
            const float *left = y[2 * r] + ty * tiles_w, *right = y[2 * r + 1] + ty * tiles_w;
            for (int64_t tx = 0; tx < tiles_w; ++tx) {
              row[2 * tx] = left[tx];
              row[2 * tx + 1] = right[tx];
            }
            int64_t at = (2 * (ty0 + ty) + r) * ow;
            float *target = out + at;
            if (!shape->bias) {
              for (int64_t x = 0; x < ow; ++x) target[x] += row[x];
              continue;
            }
            float bias = shape->bias[f];
            const float *residual = shortcut ? shortcut + at : NULL;
            for (int64_t x = 0; x < ow; ++x) { /* GCC unswitches the invariant tests */
              float value = row[x] + bias;
              if (residual) value += residual[x];
              target[x] = shape->relu && value <= 0 ? 0.0f : value;
            }
          }
      }
    }
}

/* Whether the point GEMMs run on the packed-weights kernel (conv.c's
 * packed_conv, the 16 points as one batch) rather than BLAS: with AVX-512,
 * a panel's worth of filters and taps enough to pay for the transposing
 * stores. ResNet-50's 14x14 layers 405 -> 331 us, 28x28 361 -> 321 us; with
 * the cnn's 32 channels BLAS stays faster (23 against 26 us). */
INTERNAL int winograd_packed(const conv_shape *shape, int allowed) {
#ifdef __AVX512F__
  return allowed && shape->filters >= PACK_COLUMNS && shape->channels >= 2 * PACK_COLUMNS;
#else
  (void)shape, (void)allowed;
  return 0;
#endif
}

/* Whether the Winograd path takes this convolution: 3x3, stride 1, no
 * dilation, and enough channels, filters and tiles for the point GEMMs to
 * be worth their transforms (`packed`: on the packed kernel, winograd_packed).
 * With few tiles BLAS's GEMMs are as slow as im2col's: ResNet-50's 7x7
 * layers (16 tiles, 512 channels) took 0.91 ms either way; with 49 tiles
 * (14x14) Winograd took 0.41 ms against 0.64. The packed kernel runs 16
 * tiles as two whole 8-row tiles: the 7x7 layers 0.55 ms on packed
 * panels, faster on Winograd though its transformed filter is 16/9 as
 * large (ResNet-50 1.4%, A/B in one process, 2026-12-01). */

INTERNAL int winograd_fits(const conv_shape *shape, int64_t images, int packed) {
  int64_t tiles = images * ((shape->oh + 1) / 2) * ((shape->ow + 1) / 2);
  return shape->kh == 3 && shape->kw == 3 && shape->stride_h == 1 && shape->stride_w == 1 &&
         shape->dilation_h == 1 && shape->dilation_w == 1 &&
         shape->channels >= WINOGRAD_MIN_CHANNELS && shape->filters >= WINOGRAD_MIN_CHANNELS &&
         tiles >= (packed ? WINOGRAD_PACKED_MIN_TILES : WINOGRAD_MIN_TILES);
}

/* Each U[p] (`points` of them, U[p][f][c]) transposed into 32-filter
 * panels for the packed kernel (c rows of 32 filters, zero past the last
 * filter), in lasting memory; `u` is freed. */
INTERNAL float *pack_points(float *u, int64_t points, int64_t filters, int64_t channels) {
  int64_t panels = (filters + PACK_COLUMNS - 1) / PACK_COLUMNS;
  float *packed = lasting_alloc(sizeof(float) * points * panels * channels * PACK_COLUMNS);
  for (int64_t point = 0; point < points; ++point) /* B = U[p]^T: (c, f) at f*C + c */
    pack_panels_into(packed + point * panels * channels * PACK_COLUMNS,
                     u + point * filters * channels, channels, filters, 1, channels);
  free(u);
  return packed;
}

/* U as the point GEMMs read it: U[p][f][c] for BLAS, or for the packed
 * kernel pack_points'. */
static float *transform_filters(const void *args) {
  const filter_source *source = args;
  int64_t filters = source->filters, channels = source->channels;
  float *u = aligned_alloc(64, sizeof(float) * WINOGRAD_POINTS * filters * channels);
  winograd_filters(source->weights, filters, channels, u);
  return source->packed ? pack_points(u, WINOGRAD_POINTS, filters, channels) : u;
}

/* U for a call site's constant filter: transformed at its first call. */
INTERNAL const float *winograd_weights(int64_t *slot, const float *weights,
                                     const conv_shape *shape, int packed) {
  filter_source source = {shape, weights, shape->filters, shape->channels, packed};
  return slot_data(slot, transform_filters, &source);
}

/* The job of a Winograd convolution with `points` points and tiles_h x
 * tiles_w tiles an image, V and M in the call's scratch (rows of whole
 * cache lines, and a cache line between points: with strides of whole
 * pages, the rows a transform writes together would alias in the L1
 * cache). `block` is set per phase. */
INTERNAL winograd_job winograd_setup(const conv_shape *shape, int64_t images, const float *input,
                                   int64_t image_stride, const float *u, float *output,
                                   int64_t out_stride, const float *residual, int64_t tiles_h,
                                   int64_t tiles_w, int64_t points) {
  int64_t tiles = images * tiles_h * tiles_w, ld = (tiles + 15) / 16 * 16;
  int64_t v_stride = shape->channels * ld + 16, m_stride = shape->filters * ld + 16;
  float *v = scratch(SCRATCH_WINOGRAD_V, points * v_stride);
  float *m = scratch(SCRATCH_WINOGRAD_M, points * m_stride);
  winograd_job job = {shape, input, u, residual, v, m, output, image_stride, out_stride,
                      tiles_h, tiles_w, tiles, ld, v_stride, m_stride, 0};
  return job;
}

/* M[p] (F x T) = U[p] (F x C) * V[p] (C x T) on the packed-weights kernel,
 * the points one batch, U packed by transform_filters (or its F(4x4, 3x3)
 * twin). */
INTERNAL void winograd_packed_gemms(const winograd_job *job, int64_t points) {
  const conv_shape *shape = job->shape;
  conv_shape product = *shape;
  product.bias = NULL;
  product.relu = 0;
  int64_t panels = (shape->filters + PACK_COLUMNS - 1) / PACK_COLUMNS;
  packed_conv_job gemm = {&product, job->v, job->u, NULL, job->m, shape->channels, job->tiles,
                          1, job->ld, job->ld, points, job->v_stride,
                          panels * shape->channels * PACK_COLUMNS, job->m_stride, 0};
  run_packed_conv(&gemm);
}

/* The convolution with U ready (transform_filters; `packed` as it was
 * given there). */
INTERNAL void winograd_conv(const conv_shape *shape, int64_t images, const float *input,
                          int64_t image_stride, const float *u, int packed, float *output,
                          int64_t out_stride, const float *residual) {
  winograd_job job = winograd_setup(shape, images, input, image_stride, u, output, out_stride,
                                    residual, (shape->oh + 1) / 2, (shape->ow + 1) / 2,
                                    WINOGRAD_POINTS);
  blas_single_threaded();
  job.block = task_block(shape->channels);
  parallel_for(block_count(shape->channels, job.block), winograd_input_task, &job);
  if (packed)
    winograd_packed_gemms(&job, WINOGRAD_POINTS);
  else
    parallel_for(WINOGRAD_POINTS, winograd_gemm_task, &job);
  job.block = task_block(shape->filters);
  parallel_for(block_count(shape->filters, job.block), winograd_output_task, &job);
}

/* mlirc's kernel library: the packed-filter GEMM for convolutions, used by
 * the packed path (conv.c) and by Winograd's point GEMMs. */

#include "kernels.h"

/* The packed-weights GEMM for convolutions with a constant filter: out
 * (F x P, one image's NCHW planes) = W (F x K) * X (K x P), X being the
 * im2col columns or, for a 1x1 unit-stride convolution, the image itself.
 * It runs as out^T = X^T W^T on the packed-weights kernel's tile (8 pixels
 * x 32 filters, W^T packed once into 32-filter panels in the call site's
 * slot): the 8 pixels are 8 consecutive floats of each row of X, one
 * cache line, broadcast; the tile is transposed in registers as it is
 * stored, with the epilogue (bias, ReLU, residual) on the way. Against
 * OpenBLAS with the caches cold, as in a model (2026-12-01): ResNet-50's
 * 7x7 1x1 layers 1.3-1.6x, its 56x56 to 14x14 ones 1.1-1.3x, the stem's
 * GEMM 1.2x faster. 1x1 layers of few taps go the other way round
 * (pixel_row_tile, at the end), larger kernels read X in place (taps). */

/* Stores an 8 x 16 block of out^T (a[r]: pixel r, 16 filters) into 16
 * filters' planes, 8 pixels each: the epilogue before the transpose for
 * what is per filter (bias; the ReLU when no residual follows), after it
 * for what is per pixel. */
#ifdef __AVX512F__

static inline void store_transposed(const v16 a[8], float *out, int64_t plane,
                                    const float *residual, const float *bias, int relu,
                                    int accumulate) {
  __m512 r[8];
  for (int i = 0; i < 8; ++i) {
    v16 value = a[i];
    if (bias) value += LOAD(v16, bias);
    if (bias && relu && !residual) value = relu_v16(value);
    r[i] = (__m512)value;
  }
  __m512 t0 = _mm512_unpacklo_ps(r[0], r[1]), t1 = _mm512_unpackhi_ps(r[0], r[1]);
  __m512 t2 = _mm512_unpacklo_ps(r[2], r[3]), t3 = _mm512_unpackhi_ps(r[2], r[3]);
  __m512 t4 = _mm512_unpacklo_ps(r[4], r[5]), t5 = _mm512_unpackhi_ps(r[4], r[5]);
  __m512 t6 = _mm512_unpacklo_ps(r[6], r[7]), t7 = _mm512_unpackhi_ps(r[6], r[7]);
  /* per 128-bit lane L: low[j] holds pixels 0-3 of filter 4L + j, high[j] 4-7 */
  __m512 low[4] = {_mm512_shuffle_ps(t0, t2, 0x44), _mm512_shuffle_ps(t0, t2, 0xEE),
                   _mm512_shuffle_ps(t1, t3, 0x44), _mm512_shuffle_ps(t1, t3, 0xEE)};
  __m512 high[4] = {_mm512_shuffle_ps(t4, t6, 0x44), _mm512_shuffle_ps(t4, t6, 0xEE),
                    _mm512_shuffle_ps(t5, t7, 0x44), _mm512_shuffle_ps(t5, t7, 0xEE)};
  for (int j = 0; j < 4; ++j) {
    /* [low.L0 high.L0 low.L1 high.L1] and [low.L2 high.L2 low.L3 high.L3]:
     * filters j, 4 + j, 8 + j, 12 + j, 8 pixels each */
    __m512 first = _mm512_shuffle_f32x4(low[j], high[j], 0x44);
    __m512 second = _mm512_shuffle_f32x4(low[j], high[j], 0xEE);
    first = _mm512_shuffle_f32x4(first, first, 0xD8);
    second = _mm512_shuffle_f32x4(second, second, 0xD8);
    v8 pieces[4] = {(v8)_mm512_castps512_ps256(first), (v8)_mm512_extractf32x8_ps(first, 1),
                    (v8)_mm512_castps512_ps256(second), (v8)_mm512_extractf32x8_ps(second, 1)};
    for (int q = 0; q < 4; ++q) {
      int64_t filter = 4 * q + j;
      float *target = out + filter * plane;
      v8 value = pieces[q];
      if (!bias) {
        if (accumulate) value += LOAD(v8, target);
      } else if (residual) {
        value += LOAD(v8, residual + filter * plane);
        if (relu) {
          __typeof__(value <= 0) keep = ~(value <= 0);
          value = (v8)(keep & (__typeof__(keep))value);
        }
      }
      STORE(v8, target, value);
    }
  }
}
#endif

/* A task's last tile takes up to 4 leftover pixels with it (up to 12 rows,
 * 24 accumulators: the registers still hold them), where a tile of their
 * own cost about as much as a full one: 49 pixels (the 7x7 layers, and the
 * 14x14 and 28x28 Winograd layers' 7x7 tiles per point) ran as 7 tiles for
 * 6 1/8 tiles' work. */
enum { PACK_ROWS_MAX = 12 };

/* Rows of the tile at `left` pixels before the task's end: whole tiles,
 * the tail folded into the last one where it fits. */
static inline int packed_tile_rows(int64_t left) {
  return left <= PACK_ROWS_MAX ? (int)left : PACK_ROWS;
}

/* The finished tile of `rows` pixels x `filters` into the NCHW output, with
 * the epilogue: its first 8 rows transposed in registers when the tile is
 * 32 filters wide, the rest through a buffer. */
static inline __attribute__((always_inline)) void packed_conv_store(
    const packed_conv_job *job, float *output, v16 acc[][2], int rows, int64_t filters,
    int64_t f0, int64_t p0) {
  const conv_shape *shape = job->shape;
  int64_t plane = job->plane;
  const float *bias = shape->bias ? shape->bias + f0 : NULL;
  float *out = output + f0 * plane + p0;
  const float *residual = job->residual ? job->residual + f0 * plane + p0 : NULL;
  int stored = 0;
#ifdef __AVX512F__
  if (rows >= PACK_ROWS && filters == PACK_COLUMNS) {
    for (int half = 0; half < 2; ++half) {
      v16 block_rows[PACK_ROWS];
      for (int r = 0; r < PACK_ROWS; ++r) block_rows[r] = acc[r][half];
      store_transposed(block_rows, out + 16 * half * plane, plane,
                       residual ? residual + 16 * half * plane : NULL,
                       bias ? bias + 16 * half : NULL, shape->relu, job->accumulate);
    }
    stored = PACK_ROWS;
    if (rows == PACK_ROWS) return;
  }
#endif
  float tile[PACK_ROWS_MAX][PACK_COLUMNS];
  for (int r = stored; r < rows; ++r) {
    STORE(v16, tile[r], acc[r][0]);
    STORE(v16, tile[r] + 16, acc[r][1]);
  }
  for (int64_t f = 0; f < filters; ++f)
    for (int r = stored; r < rows; ++r) {
      float *target = out + f * plane + r;
      if (!bias) {
        *target = job->accumulate ? *target + tile[r][f] : tile[r][f];
        continue;
      }
      float value = tile[r][f] + bias[f];
      if (residual) value += residual[f * plane + r];
      *target = shape->relu && value <= 0 ? 0.0f : value;
    }
}

/* How far ahead of the tile being computed its task's output lines are
 * prefetched for writing, and its residual's for reading: the transposing
 * store touches 32 planes at once, too many streams for the hardware
 * prefetchers, so the lines came from L3 or memory one miss at a time.
 * Two tiles' lines ahead took ResNet-50 2% (A/B in one process; the 56x56
 * expansions with a residual, caches cold, 500 -> 425 us). */
enum { OUTPUT_PREFETCH_AHEAD = 32 };

static inline void prefetch_outputs(const packed_conv_job *job, float *output, int64_t f0,
                                    int64_t p0) {
  if (p0 % 16 || p0 + OUTPUT_PREFETCH_AHEAD >= job->pixels) return; /* a line per 16 pixels */
  int64_t at = f0 * job->plane + p0 + OUTPUT_PREFETCH_AHEAD;
  for (int f = 0; f < PACK_COLUMNS; ++f) __builtin_prefetch(output + at + f * job->plane, 1);
  if (job->residual)
    for (int f = 0; f < PACK_COLUMNS; ++f) __builtin_prefetch(job->residual + at + f * job->plane);
}

/* panel_steps with X read in place: pixel r's value of tap p at
 * pixel[r][taps[p]], a broadcast from the input image itself. */
static inline __attribute__((always_inline)) void panel_steps_at_taps(
    v16 acc[][2], int rows, const float *const pixel[], const int32_t *taps,
    const float *panel, int64_t k0, int64_t k1) {
  for (int64_t p = k0; p < k1; ++p) {
    prefetch_panel_step(panel, p, 1);
    v16 low = LOAD(v16, panel + p * PACK_COLUMNS), high = LOAD(v16, panel + p * PACK_COLUMNS + 16);
    int64_t tap = taps[p];
    for (int r = 0; r < rows; ++r) {
      v16 scalar = BROADCAST(pixel[r][tap]);
      acc[r][0] += scalar * low;
      acc[r][1] += scalar * high;
    }
  }
}

/* One tile: `rows` pixels from p0 (a constant where it is inlined, so that
 * the 16 accumulators stay in registers) x 32 filters, over taps [k0, k1):
 * starting from zero or from `partial`, ending in `partial` or, with the
 * last taps, in the output. */
static inline __attribute__((always_inline)) void packed_conv_tile(
    const packed_conv_job *job, const float *columns, float *output, int rows, int64_t p0,
    const float *panel, int64_t k0, int64_t k1, v16 (*partial)[2], int64_t filters,
    int64_t f0) {
  v16 acc[PACK_ROWS_MAX][2];
  for (int r = 0; r < rows; ++r) {
    acc[r][0] = k0 ? partial[r][0] : (v16){};
    acc[r][1] = k0 ? partial[r][1] : (v16){};
  }
  if (k1 == job->k) prefetch_outputs(job, output, f0, p0);
  if (job->taps) {
    const float *pixel[PACK_ROWS_MAX];
    for (int r = 0; r < rows; ++r)
      pixel[r] = columns + (p0 + r) / job->ow * job->row_step +
                 (p0 + r) % job->ow * job->column_step;
    panel_steps_at_taps(acc, rows, pixel, job->taps, panel, k0, k1);
  } else {
    panel_steps(acc, rows, columns + p0, 1, job->x_stride, panel, k0, k1, 1); /* X^T */
  }
  if (k1 == job->k) {
    packed_conv_store(job, output, acc, rows, filters, f0, p0);
    return;
  }
  for (int r = 0; r < rows; ++r) {
    partial[r][0] = acc[r][0];
    partial[r][1] = acc[r][1];
  }
}

/* Taps a pass over a task's pixels covers when there are many (a 3x3 layer
 * of 512 channels has 4608), so that the panel's part (16 KB) and the rows
 * of X under a tile stay in the L1 cache while every tile of the task uses
 * them; the tiles' partial sums wait in a scratch buffer between passes.
 * ResNet-50's 7x7 3x3 layer: 930 -> 680 us with 256 taps (512: 700, 1024:
 * 850); 128 taps then took its 7x7 layers another 10% (3x3 730 -> 664,
 * 512->2048 278 -> 249 us; kernel harness, caches cold) and the whole model
 * 1.2% (64 taps: 4% slower, 96: 1.4%; A/B in one process, 2026-12-01). */
enum { PACKED_TAP_BLOCK = 128 };

/* Pixels [first, last) of one panel: pixel p's column of X at columns + p,
 * rows job->x_stride apart. */
static void packed_conv_pixels(const packed_conv_job *job, const float *columns, float *output,
                               const float *panel_data, int64_t filters, int64_t f0,
                               int64_t first, int64_t last) {
  int64_t k = job->k, step = k <= PACKED_TAP_BLOCK ? k : PACKED_TAP_BLOCK;
  v16 (*partial)[PACK_ROWS][2] =
      step < k ? aligned_alloc(64, sizeof(v16) * 2 * (last - first + PACK_ROWS)) : NULL;
  for (int64_t k0 = 0; k0 < k; k0 += step) {
    int64_t k1 = k0 + step < k ? k0 + step : k;
    for (int64_t p0 = first; p0 < last;) {
      /* the tail tile's partial sums run on into the next slot: the buffer
       * has a tile's rows to spare */
      v16 (*sums)[2] = partial ? partial[(p0 - first) / PACK_ROWS] : NULL;
      int rows = packed_tile_rows(last - p0);
      switch (rows) { /* constant row counts: the accumulators stay in registers */
#define ROWS_CASE(R)                                                                    \
  case R:                                                                               \
    packed_conv_tile(job, columns, output, R, p0, panel_data, k0, k1, sums, filters, f0); \
    break;
        ROWS_CASE(1) ROWS_CASE(2) ROWS_CASE(3) ROWS_CASE(4) ROWS_CASE(5) ROWS_CASE(6)
        ROWS_CASE(7) ROWS_CASE(8) ROWS_CASE(9) ROWS_CASE(10) ROWS_CASE(11) ROWS_CASE(12)
#undef ROWS_CASE
      }
      p0 += rows;
    }
  }
  free(partial);
}

/* Unit (batch, panel, row block) of the job. */
static void packed_conv_unit(const packed_conv_job *job, int64_t unit) {
  const conv_shape *shape = job->shape;
  int64_t panels_count = (shape->filters + PACK_COLUMNS - 1) / PACK_COLUMNS;
  int64_t batch = unit / (panels_count * job->row_blocks);
  unit %= panels_count * job->row_blocks;
  int64_t panel = unit / job->row_blocks, block = unit % job->row_blocks;
  int64_t pixels = job->pixels, k = job->k;
  int64_t span = (pixels + job->row_blocks - 1) / job->row_blocks;
  span = (span + PACK_ROWS - 1) / PACK_ROWS * PACK_ROWS;
  int64_t first = block * span, last = first + span < pixels ? first + span : pixels;
  int64_t f0 = panel * PACK_COLUMNS;
  int64_t filters = shape->filters - f0 < PACK_COLUMNS ? shape->filters - f0 : PACK_COLUMNS;
  packed_conv_pixels(job, job->columns + batch * job->batch_x,
                     job->output + batch * job->batch_out,
                     job->panels + batch * job->batch_panels + panel * k * PACK_COLUMNS,
                     filters, f0, first, last);
}

static void packed_conv_task(void *context, int64_t task) {
  const packed_conv_job *job = context;
  int64_t units = job->batches * ((job->shape->filters + PACK_COLUMNS - 1) / PACK_COLUMNS) *
                  job->row_blocks;
  for (int64_t unit = task * job->units; unit < (task + 1) * job->units && unit < units; ++unit)
    packed_conv_unit(job, unit);
}

/* Whether a convolution's GEMM takes the packed kernel: a constant filter
 * (the pass says so), enough filters for a panel, and one image's pixels
 * in a row of the columns (grouped small images stay with BLAS). */
enum { PACKED_MIN_FILTERS = PACK_COLUMNS };

INTERNAL int packed_conv_fits(const conv_shape *shape, int64_t pixels, int64_t group) {
#ifndef __AVX512F__
  /* without AVX-512 the tile's 16-float vectors are split and its
   * transposing store is scalar: BLAS is faster */
  (void)shape, (void)pixels, (void)group;
  return 0;
#else
  return group == 1 && shape->filters >= PACKED_MIN_FILTERS && pixels >= PACK_ROWS;
#endif
}

/* Runs a job whose shape, operands and batch fields are set: about four
 * tasks a thread, rows of pixels within a panel when the panels are few,
 * else runs of consecutive panels. A run is one stream through the packed
 * weights, which lie panel after panel (and point after point): a task of
 * one panel each started a stream from memory where the thread's last one
 * had ended a panel or two back, the other thread having taken the panels
 * between. ResNet-50 4.2% faster (A/B in one process: its Winograd point
 * GEMMs, 128 panels a layer in stage 3, and its 7x7 layers'; 8 tasks as
 * good as 4, 16 0.9% slower). */
INTERNAL void run_packed_conv(packed_conv_job *job) {
  int64_t panels_count = (job->shape->filters + PACK_COLUMNS - 1) / PACK_COLUMNS;
  int64_t want = balanced_tasks(), tasks = job->batches * panels_count;
  job->row_blocks = 1;
  while (tasks * job->row_blocks < want &&
         job->pixels / (job->row_blocks * 2) >= 4 * PACK_ROWS)
    job->row_blocks *= 2;
  job->units = tasks > want ? (tasks + want - 1) / want : 1;
  parallel_for((tasks * job->row_blocks + job->units - 1) / job->units, packed_conv_task, job);
}

#ifdef __AVX512F__
/* The same GEMM the other way round, for 1x1 layers with few taps: out's
 * rows (each filter's plane) along the vectors. A tile is 8 filters x 32
 * pixels: per tap, two vectors of X's row times 8 weights broadcast from
 * the panel (8 of its 32 filters), and the finished rows are stored whole
 * with the epilogue, where the 8-pixel tile above transposes 256 outputs in
 * registers and stores them in pieces of 8, 32 planes at a time. */
enum { ROW_TILE_FILTERS = 8, ROW_TILE_PIXELS = 32 };

static inline __attribute__((always_inline)) void pixel_row_tile(
    const packed_conv_job *job, const float *weights, int64_t f0, int64_t filters, int64_t p0,
    int64_t count) {
  const conv_shape *shape = job->shape;
  int64_t plane = job->plane;
  __mmask16 low = lanes_inside(0, count), high = lanes_inside(16, count);
  v16 acc[ROW_TILE_FILTERS][2];
  for (int j = 0; j < ROW_TILE_FILTERS; ++j) acc[j][0] = acc[j][1] = (v16){};
  const float *row = job->columns + p0;
  for (int64_t c = 0; c < job->k; ++c, row += job->x_stride) {
    v16 left = (v16)_mm512_maskz_loadu_ps(low, row);
    v16 right = (v16)_mm512_maskz_loadu_ps(high, row + 16);
    const float *w = weights + c * PACK_COLUMNS;
    for (int j = 0; j < ROW_TILE_FILTERS; ++j) {
      v16 scalar = BROADCAST(w[j]);
      acc[j][0] += scalar * left;
      acc[j][1] += scalar * right;
    }
  }
#pragma GCC unroll 8 /* a loop GCC does not unroll keeps acc in memory */
  for (int j = 0; j < ROW_TILE_FILTERS; ++j) {
    if (j >= filters) break;
    int64_t at = (f0 + j) * plane + p0;
    const float *shortcut = job->residual ? job->residual + at : NULL;
    float bias = shape->bias ? shape->bias[f0 + j] : 0.0f;
    store_output(shape, job->output + at, shortcut, bias, acc[j][0], low);
    if (high)
      store_output(shape, job->output + at + 16, shortcut ? shortcut + 16 : NULL, bias,
                   acc[j][1], high);
  }
}

/* A block of pixels x a group of filters: 8 filters at a time over the
 * block's pixels, the block's rows of X staying in the L2 cache. */
static void pixel_rows_task(void *context, int64_t task) {
  const packed_conv_job *job = context;
  int64_t filters = job->shape->filters, groups = (filters + ROW_TILE_FILTERS - 1) /
                                                  ROW_TILE_FILTERS;
  int64_t filter_tasks = job->filter_tasks, block = task % job->row_blocks;
  int64_t group = task / job->row_blocks;
  int64_t span = (job->pixels + job->row_blocks - 1) / job->row_blocks;
  span = (span + ROW_TILE_PIXELS - 1) / ROW_TILE_PIXELS * ROW_TILE_PIXELS;
  int64_t first = block * span, last = first + span < job->pixels ? first + span : job->pixels;
  int64_t per_task = (groups + filter_tasks - 1) / filter_tasks;
  int64_t g0 = group * per_task, g1 = g0 + per_task < groups ? g0 + per_task : groups;
  for (int64_t g = g0; g < g1; ++g) {
    int64_t f0 = g * ROW_TILE_FILTERS;
    int64_t count = filters - f0 < ROW_TILE_FILTERS ? filters - f0 : ROW_TILE_FILTERS;
    const float *weights = job->panels + f0 / PACK_COLUMNS * job->k * PACK_COLUMNS +
                           f0 % PACK_COLUMNS;
    for (int64_t p0 = first; p0 < last; p0 += ROW_TILE_PIXELS)
      pixel_row_tile(job, weights, f0, count, p0,
                     last - p0 < ROW_TILE_PIXELS ? last - p0 : ROW_TILE_PIXELS);
  }
}

/* Blocks of pixels whose rows of X fit in about 256 KB, then groups of
 * filters for about four tasks a thread. */
enum { PIXEL_BLOCK_FLOATS = 1 << 16 };

static void run_pixel_rows(packed_conv_job *job) {
  int64_t want = balanced_tasks();
  int64_t groups = (job->shape->filters + ROW_TILE_FILTERS - 1) / ROW_TILE_FILTERS;
  int64_t span = PIXEL_BLOCK_FLOATS / job->k;
  job->row_blocks = (job->pixels + span - 1) / span;
  if (job->row_blocks > want) job->row_blocks = want;
  int64_t filter_tasks = (want + job->row_blocks - 1) / job->row_blocks;
  job->filter_tasks = filter_tasks < groups ? filter_tasks : groups;
  parallel_for(job->row_blocks * job->filter_tasks, pixel_rows_task, job);
}
#endif

/* Taps up to which a 1x1 layer takes the pixel-row tile: with 64 (ResNet-50's
 * 56x56 expansions) it took the model 2.2% (A/B in one process; the kernel
 * harness, caches warm, 8%); with 128 the model was even, with 256 3% slower
 * (its 14x14 rows waste 28 of 224 pixels, and X's rows stream from L2). */
enum { PIXEL_ROWS_MAX_TAPS = 64 };

INTERNAL void packed_conv(const conv_shape *shape, const float *columns, const float *panels,
                        float *output, const float *residual) {
  int64_t pixels = shape->oh * shape->ow, k = shape->channels * shape->kh * shape->kw;
  packed_conv_job job = {shape, columns, panels, residual, output, k, pixels, 1, pixels,
                         pixels, 1, 0, 0, 0, 1};
#ifdef __AVX512F__
  if (k <= PIXEL_ROWS_MAX_TAPS && pixels >= ROW_TILE_PIXELS) {
    run_pixel_rows(&job);
    return;
  }
#endif
  run_packed_conv(&job);
}

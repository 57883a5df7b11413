/* The kernel library's internal header: what its translation units share.
 *
 * The library is the .c files here, one a concern: pool.c (the thread pool),
 * buffers.c (the buffer cache, call scratch, lasting weight copies and call
 * sites' slots), gemm.c (GEMMs: BLAS slices, the packed-weights kernel,
 * run counters), maxpool.c, conv.c (direct and im2col convolutions, the
 * entry points and the kernel dispatch), packed_conv.c, winograd.c,
 * winograd4.c and strided_conv.c. Each compiles on its own against this
 * header; the build compiles mlirc_kernels.c, which includes them all as
 * one translation unit (MLIRC_AMALGAMATION), so that the register tiles
 * inline across files. INTERNAL functions are `static` there and hidden
 * symbols in a separate build: only the entry points of
 * ../include/mlirc_kernels.h are exported either way.
 *
 * Shared here: the vector type and its helpers, the register tiles that the
 * GEMM and the packed convolution both use (static inline), the job and
 * shape types, and the INTERNAL functions' declarations. */
#ifndef MLIRC_KERNELS_INTERNAL_H
#define MLIRC_KERNELS_INTERNAL_H

#define _GNU_SOURCE
#include <dlfcn.h>
#include <immintrin.h>
#include <linux/futex.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "../include/mlirc_kernels.h"

#ifdef MLIRC_AMALGAMATION
#define INTERNAL static
#else
#define INTERNAL __attribute__((visibility("hidden")))
#endif

#define MEMREF1 MLIRC_MEMREF1
#define MEMREF2 MLIRC_MEMREF2
#define MEMREF3 MLIRC_MEMREF3
#define MEMREF4 MLIRC_MEMREF4

enum { RowMajor = 101, NoTrans = 111, Trans = 112 };
typedef void (*sgemm_fn)(int, int, int, int, int, int, float, const float *, int,
                         const float *, int, float, float *, int);
typedef void (*dgemm_fn)(int, int, int, int, int, int, double, const double *, int,
                         const double *, int, double, double *, int);

typedef float f32;
typedef double f64;
typedef float v16 __attribute__((vector_size(64)));
#define LOAD(T, p) ({ T loaded_; __builtin_memcpy(&loaded_, (p), sizeof(T)); loaded_; })
#define STORE(T, p, v) do { T stored_ = (v); __builtin_memcpy((p), &stored_, sizeof(T)); } while (0)
#define BROADCAST(x) ({ float b_ = (x); (v16){b_, b_, b_, b_, b_, b_, b_, b_, b_, b_, b_, b_, b_, b_, b_, b_}; })
/* Makes `value` live in a vector register here: GCC otherwise folds a load
 * or broadcast into every instruction that uses it (one memory operand per
 * FMA), which starves the load ports of a register-blocked kernel. Without
 * AVX-512 a v16 spans two registers, and the hint is left out. */
#ifdef __AVX512F__
#define KEEP_IN_REGISTER(value) __asm__("" : "+v"(value))
#else
#define KEEP_IN_REGISTER(value) ((void)0)
#endif

/* 16 floats at `p`, the lanes outside `lanes` zero and not read: the
 * padding of a convolution whose input comes unpadded. Only with AVX-512;
 * elsewhere the input is always padded first and every lane is read. */
static inline v16 load_lanes(const float *p, uint16_t lanes) {
#ifdef __AVX512F__
  return (v16)_mm512_maskz_loadu_ps((__mmask16)lanes, p);
#else
  (void)lanes;
  return LOAD(v16, p);
#endif
}

/* The lanes of a vector of input starting at column x that lie inside a
 * row of `width` floats. */
static inline uint16_t lanes_inside(int64_t x, int64_t width) {
  int64_t first = x < 0 ? -x : 0, end = width - x < 16 ? width - x : 16;
  if (end <= first) return 0;
  return (uint16_t)(((1u << end) - 1) & ~((1u << first) - 1));
}

/* max(x, 0) like the ReLU it replaces (cmpf ugt + select): NaN stays NaN. */
static inline v16 relu_v16(v16 value) {
  __typeof__(value <= 0) keep = ~(value <= 0);
  return (v16)(keep & (__typeof__(keep))value);
}

/* max(a, b) with NaN winning, lane by lane (arith.maximumf) */
static inline v16 max_v16(v16 a, v16 b) {
  __typeof__(a < b) take = (b > a) | (b != b);
  return (v16)((take & (__typeof__(take))b) | (~take & (__typeof__(take))a));
}

/* The even (odd) lanes of a then of b: of 32 consecutive floats loaded as
 * a and b, the even (odd) ones, for stride-2 windows. */
static inline v16 even_lanes(v16 a, v16 b) {
  return __builtin_shufflevector(a, b, 0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
}

static inline v16 odd_lanes(v16 a, v16 b) {
  return __builtin_shufflevector(a, b, 1, 3, 5, 7, 9, 11, 13, 15, 17, 19, 21, 23, 25, 27, 29, 31);
}

/* Half an AVX-512 vector: one AVX2 register. */
typedef float v8 __attribute__((vector_size(32)));

/* GEMMs with a constant B (a model's weights) and few rows (a batch of
 * activations): C (M x N) [+]= A (M x K) * B (K x N). BLAS packs B into its
 * panel layout on every call, which for 32 rows costs about as much as the
 * arithmetic; here B is packed once, at the call site's first call, into
 * panels of 32 columns (K x 32, zero-padded). The packed copy hangs off a
 * slot that the blas-offload pass gives each call site (a zero-initialised
 * global of the compiled module), so it cannot be confused with another
 * model's weights at a reused address; it lives as long as the process.
 * The register tile is 8 rows x 32 columns: 16 zmm accumulators, two vector
 * loads of B and 8 broadcasts of A per step of K. Threads take whole panels. */
enum { PACK_COLUMNS = 32, PACK_ROWS = 8 };

/* Steps of K ahead that the packed kernels prefetch their panel: a GEMM's B
 * 48 (6 KB); a convolution's weights, streamed from memory in runs of
 * panels (run_packed_conv), 96 (0.4-1.6% on ResNet-50 against 48, A/B in
 * one process; 24: 1.9% slower, 160: 1% slower than 96). A convolution's
 * weights are prefetched non-temporal (locality 0, prefetchnta): read once
 * a call, ResNet-50's 100 MB had pushed the activations and scratch out of
 * the L3 cache by the next call (the model 1.5% faster, A/B in one
 * process, fast and slow phase alike). A GEMM's B, small and read again
 * each call in the mlp and transformer, stays cached. */
enum { PREFETCH_AHEAD = 48, CONV_PREFETCH_AHEAD = 96, CONV_PREFETCH_LOCALITY = 0 };

/* Scratch buffers of one convolution call (Winograd's V and M, im2col
 * columns and products, padded or split input, tap offsets, the unpooled
 * output) come from the buffer cache (buffers.c) and go back into it
 * when the call returns (release_call_scratch, at the end of every entry
 * point): a call then works in memory the model used just before, still in
 * the caches, where buffers kept per thread from call to call had been
 * pushed out to memory by the layers between (ResNet-50's first 56x56
 * Winograd layer: its transforms 84 and its point GEMMs 64 us slower than
 * the next two; the model 1% faster, A/B in one process). Freed each call
 * back to malloc, megabytes were trimmed and faulted in again page by page
 * (the 56x56 Winograd layer alone in a loop: 2.0 instead of 0.41 ms); the
 * cache keeps them. Kinds in use at the same time differ. */
enum {
  SCRATCH_WINOGRAD_V, SCRATCH_WINOGRAD_M, SCRATCH_COLUMNS, SCRATCH_PRODUCT, SCRATCH_INPUT,
  SCRATCH_UNPOOLED, SCRATCH_TAPS, SCRATCH_KINDS
};

/* ---- the thread pool (pool.c) ---- */

typedef void (*task_fn)(void *context, int64_t task);

/* Work cut into about four tasks a thread (a slow task then evens out):
 * how many of `count` items each task takes, and how many tasks that makes. */
enum { TASKS_PER_THREAD = 4 };

/* The threads of the pool (started at first use), the caller's included. */
INTERNAL int64_t pool_threads(void);
INTERNAL void pool_park(void);
INTERNAL void parallel_for(int64_t count, task_fn fn, void *context);
INTERNAL int64_t task_block(int64_t count);
INTERNAL int64_t block_count(int64_t count, int64_t block);
INTERNAL int64_t balanced_tasks(void);

/* ---- memory (buffers.c) ---- */

INTERNAL char *cached_alloc(size_t size);
INTERNAL void cached_free(char *pointer);
INTERNAL void *lasting_alloc(size_t bytes);
INTERNAL float *scratch(int kind, size_t floats);
INTERNAL void release_call_scratch(void);
INTERNAL const float *slot_data(int64_t *slot, float *(*make)(const void *args), const void *args);

/* ---- GEMMs (gemm.c) ---- */

INTERNAL void count_run(int counter);
INTERNAL void layout(int64_t rows, int64_t cols, const int64_t *strides, int *trans, int *ld);
INTERNAL int blas_single_threaded(void);
INTERNAL const float *packed_panels(int64_t *slot, const float *b, int64_t k, int64_t n,
                                  int64_t stride0, int64_t stride1);
INTERNAL void pack_panels_into(float *data, const float *b, int64_t k, int64_t n,
                             int64_t stride0, int64_t stride1);
/* C = A*B + beta*C, row-major, over the pool; then `epilogue`, if any, on
 * each slice (conv.c's run_epilogue). */
typedef struct epilogue_job epilogue_job;
/* The BLAS's cblas_sgemm, found at first use (the process or the linked
 * library provides it, or OpenBLAS's scipy_-prefixed build of it). */
INTERNAL sgemm_fn sgemm_blas(void);
INTERNAL void sgemm_parallel(int ta, int tb, int64_t m, int64_t n, int64_t k, const float *a,
                             int lda, const float *b, int ldb, float beta, float *c, int ldc,
                             const epilogue_job *epilogue);

/* ---- the register tiles of the packed kernels (gemm.c, packed_conv.c) ---- */

/* The prefetch for step p of a panel: a convolution's weights (`streamed`,
 * a constant where inlined) CONV_PREFETCH_AHEAD steps on and non-temporal,
 * a GEMM's B PREFETCH_AHEAD steps on. */
static inline __attribute__((always_inline)) void prefetch_panel_step(const float *panel,
                                                                      int64_t p, int streamed) {
  if (streamed) {
    __builtin_prefetch(panel + (p + CONV_PREFETCH_AHEAD) * PACK_COLUMNS, 0,
                       CONV_PREFETCH_LOCALITY);
    __builtin_prefetch(panel + (p + CONV_PREFETCH_AHEAD) * PACK_COLUMNS + 16, 0,
                       CONV_PREFETCH_LOCALITY);
  } else {
    __builtin_prefetch(panel + (p + PREFETCH_AHEAD) * PACK_COLUMNS);
    __builtin_prefetch(panel + (p + PREFETCH_AHEAD) * PACK_COLUMNS + 16);
  }
}

/* acc (rows x 32) += A's rows times one panel over steps [k0, k1): per
 * step two vector loads of the panel and one broadcast of A per row, A's
 * element (r, p) at a[r * a_row + p * a_col], the panel prefetched as
 * prefetch_panel_step says. The register tile of both packed kernels:
 * `rows` is a constant where it is inlined, so that the accumulators stay
 * in registers. */
static inline __attribute__((always_inline)) void panel_steps(
    v16 acc[][2], int rows, const float *a, int64_t a_row, int64_t a_col,
    const float *panel, int64_t k0, int64_t k1, int streamed) {
  for (int64_t p = k0; p < k1; ++p) {
    prefetch_panel_step(panel, p, streamed);
    v16 low = LOAD(v16, panel + p * PACK_COLUMNS), high = LOAD(v16, panel + p * PACK_COLUMNS + 16);
    for (int r = 0; r < rows; ++r) {
      v16 scalar = BROADCAST(a[r * a_row + p * a_col]);
      acc[r][0] += scalar * low;
      acc[r][1] += scalar * high;
    }
  }
}

/* ROWS x 32 of C from ROWS rows of A and one panel; `columns` of them kept.
 * C = A*B, C += A*B (accumulate), or C = act(A*B + bias) (bias, relu). */
static inline __attribute__((always_inline)) void packed_tile(
    int rows, int64_t k, const float *a, int64_t a_row, int64_t a_col, const float *panel,
    float *c, int64_t c_row, int64_t columns, int accumulate, const float *bias, int relu) {
  v16 acc[PACK_ROWS][2];
  for (int r = 0; r < rows; ++r) acc[r][0] = acc[r][1] = (v16){};
  panel_steps(acc, rows, a, a_row, a_col, panel, 0, k, 0);
  for (int r = 0; r < rows; ++r) {
    float *target = c + r * c_row;
    if (columns == PACK_COLUMNS) {
      if (accumulate) {
        acc[r][0] += LOAD(v16, target);
        acc[r][1] += LOAD(v16, target + 16);
      }
      if (bias) {
        for (int half = 0; half < 2; ++half) {
          v16 value = acc[r][half] + LOAD(v16, bias + 16 * half);
          acc[r][half] = relu ? relu_v16(value) : value;
        }
      }
      STORE(v16, target, acc[r][0]);
      STORE(v16, target + 16, acc[r][1]);
    } else {
      float lanes[PACK_COLUMNS];
      STORE(v16, lanes, acc[r][0]);
      STORE(v16, lanes + 16, acc[r][1]);
      for (int64_t j = 0; j < columns; ++j) {
        float value = (accumulate ? target[j] : 0.0f) + lanes[j];
        if (bias) value += bias[j];
        target[j] = bias && relu && value <= 0 ? 0.0f : value;
      }
    }
  }
}

/* ---- convolutions ---- */

typedef struct {
  int64_t channels, in_h, in_w, filters, kh, kw, oh, ow;
  int64_t stride_h, stride_w, dilation_h, dilation_w, pad_h, pad_w;
  const float *bias; /* NULL: accumulate into the output (and no ReLU, no residual) */
  int relu;
  int pool; /* the output is max-pooled 2x2, stride 2 (bias, no residual) */
} conv_shape;

/* What a convolution does to a block of its GEMM's product, right after the
 * slice that computed it (while it is in cache). */
struct epilogue_job {
  const conv_shape *shape;
  const float *product, *residual;
  float *output;
  int64_t ld, out_stride;
};

#ifdef __AVX512F__
/* The epilogue on `lanes` of one vector of an output row, stored there:
 * out = act(y + bias [+ residual]), or out += y without a bias. */
static inline void store_output(const conv_shape *shape, float *out, const float *shortcut,
                                float bias, v16 y, __mmask16 lanes) {
  if (!shape->bias) {
    y += (v16)_mm512_maskz_loadu_ps(lanes, out);
  } else {
    y += BROADCAST(bias);
    if (shortcut) y += (v16)_mm512_maskz_loadu_ps(lanes, shortcut);
    if (shape->relu) y = relu_v16(y);
  }
  _mm512_mask_storeu_ps(out, lanes, (__m512)y);
}
#endif

/* A tile's `rows` rows of one filter (16 pixels each from (y0, x0)) into
 * its output plane, after the ReLU; or with `pool` their 2x2 max pool,
 * rows/2 rows of 8 into the pooled plane (a MaxPool2d(2) folded into the
 * call: the conv's own output is never written). */
static inline __attribute__((always_inline)) void store_rows(const v16 *acc, int rows,
                                                            float *plane_out, int64_t ow,
                                                            int64_t y0, int64_t x0, int relu,
                                                            int pool) {
  if (!pool) {
    for (int r = 0; r < rows; ++r)
      STORE(v16, plane_out + (y0 + r) * ow + x0, relu ? relu_v16(acc[r]) : acc[r]);
    return;
  }
  for (int r = 0; r < rows; r += 2) {
    v16 down = max_v16(acc[r], acc[r + 1]);
    v16 pooled = max_v16(even_lanes(down, down), odd_lanes(down, down)); /* 8 lanes kept */
    float lanes[16];
    STORE(v16, lanes, relu ? relu_v16(pooled) : pooled);
    memcpy(plane_out + (y0 + r) / 2 * (ow / 2) + x0 / 2, lanes, 8 * sizeof(float));
  }
}

INTERNAL void run_epilogue(const epilogue_job *job, int64_t row0, int64_t row1, int64_t col0,
                         int64_t col1);

typedef struct {
  const float *input;
  float *output;
  int64_t in_image, in_channel, out_image, out_channel; /* strides */
  int64_t channels, in_h, in_w, oh, ow, kh, kw, stride_h, stride_w, dilation_h, dilation_w;
  int64_t pad_h, pad_w, planes, block;
  int accumulate;
} maxpool_job;

INTERNAL void run_maxpool(maxpool_job *job, int64_t images);
#ifdef __AVX512F__
INTERNAL void maxpool_row_3x3_stride2(const float *const rows[], int count, int64_t in_w,
                                    float *out, int64_t ow, int accumulate);
#endif

typedef struct {
  const conv_shape *shape; /* filters; bias, ReLU (no bias: out += or out =) */
  const float *columns, *panels, *residual;
  float *output;
  int64_t k, pixels, row_blocks; /* row_blocks: tasks per panel */
  int64_t x_stride, plane;       /* X's row stride; from one filter's plane to the next */
  /* independent GEMMs of the same shape (Winograd's 16 points): how many,
   * and the strides between their X, panels and outputs */
  int64_t batches, batch_x, batch_panels, batch_out;
  int accumulate; /* without a bias: out += X^T W^T (1) or out = (0) */
  /* X read in place (implicit im2col), when `taps` is set: X's row k for
   * pixel p = (oy, ox) lies at columns + oy * row_step + ox * column_step
   * + taps[k], `columns` being the (padded) input image */
  const int32_t *taps;
  int64_t ow, row_step, column_step;
  int64_t filter_tasks; /* pixel_rows_task: tasks across the filters */
  int64_t units;        /* consecutive (batch, panel, row block) units a task */
} packed_conv_job;

INTERNAL void run_packed_conv(packed_conv_job *job);
INTERNAL int packed_conv_fits(const conv_shape *shape, int64_t pixels, int64_t group);
INTERNAL void packed_conv(const conv_shape *shape, const float *columns, const float *panels,
                        float *output, const float *residual);

INTERNAL int strided_conv_fits(const conv_shape *shape);
INTERNAL void strided_conv(const conv_shape *shape, int64_t images, const float *input,
                         int64_t image_stride, const float *weights, float *output,
                         int64_t out_stride, const float *residual);
INTERNAL int strided_conv_pooled_fits(const conv_shape *shape);
INTERNAL void strided_conv_pooled(const conv_shape *shape, int64_t images, const float *input,
                                int64_t image_stride, const float *weights, float *pooled,
                                int64_t pooled_stride);

/* ---- Winograd (winograd.c, winograd4.c) ---- */

enum { WINOGRAD_POINTS = 16 };

enum { WINOGRAD_ROW_TILES = 5 };

enum { WINOGRAD_MIN_TILES = 32, WINOGRAD_PACKED_MIN_TILES = 16, WINOGRAD_MIN_CHANNELS = 16 };

typedef struct {
  const conv_shape *shape;
  const float *input, *u, *residual;
  float *v, *m, *output;
  int64_t image_stride, out_stride, tiles_h, tiles_w;
  int64_t tiles, ld; /* tiles of all images; ld: V's and M's row length, whole cache lines */
  int64_t v_stride, m_stride; /* from one point's V (M) to the next's */
  int64_t block; /* channels (input transform) or filters (output transform) per task */
} winograd_job;

typedef struct {
  const conv_shape *shape;
  const float *weights;
  int64_t filters, channels;
  int packed; /* panels for the packed kernel (winograd_packed) */
} filter_source;

INTERNAL int winograd_packed(const conv_shape *shape, int allowed);
INTERNAL int winograd_fits(const conv_shape *shape, int64_t images, int packed);
INTERNAL const float *winograd_weights(int64_t *slot, const float *weights,
                                     const conv_shape *shape, int packed);
INTERNAL void winograd_conv(const conv_shape *shape, int64_t images, const float *input,
                          int64_t image_stride, const float *u, int packed, float *output,
                          int64_t out_stride, const float *residual);
INTERNAL float *pack_points(float *u, int64_t points, int64_t filters, int64_t channels);
INTERNAL winograd_job winograd_setup(const conv_shape *shape, int64_t images, const float *input,
                                   int64_t image_stride, const float *u, float *output,
                                   int64_t out_stride, const float *residual, int64_t tiles_h,
                                   int64_t tiles_w, int64_t points);
INTERNAL void winograd_packed_gemms(const winograd_job *job, int64_t points);

INTERNAL int winograd4_fits(const conv_shape *shape, int packed);
INTERNAL void winograd4_conv(const conv_shape *shape, int64_t images, const float *input,
                           int64_t image_stride, int64_t *slot, const float *weights,
                           float *output, int64_t out_stride, const float *residual);

#endif

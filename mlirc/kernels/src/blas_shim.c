/* mlirc's BLAS shim: GEMM calls on MLIR memref descriptors.
 *
 * The blas-offload pass turns linalg.matmul / batch_matmul on memrefs into
 * calls to mlirc_gemm_{f32,f64}{,_batched} (C += A*B, or C = A*B when the
 * pass dropped a zero fill of C: the `accumulate` flag), passing each
 * strided memref the way MLIR's LLVM lowering expands it (allocated,
 * aligned, offset, sizes, strides: no C-interface wrappers, which an
 * object-file dump cannot link). A transposed operand arrives as a view with
 * unit row stride, so transposes become BLAS flags instead of copies. The cblas function is
 * found at first use with dlsym: the process (JIT) or the linked library
 * (AOT) provides cblas_sgemm, or OpenBLAS's scipy_-prefixed build of it.
 *
 * The entry points and their contracts: ../include/mlirc_kernels.h.
 *
 * One translation unit, several files: this one (GEMMs: BLAS slices and the
 * packed-weights kernel), shim_pool.h (the thread pool), shim_maxpool.h (max
 * pooling) and shim_conv.h (convolution: direct, im2col + GEMM), which
 * includes shim_packed_conv.h (the packed-filter GEMM), shim_winograd.h and
 * shim_winograd4.h (Winograd F(2x2, 3x3) and F(4x4, 3x3)); shim_buffers.h
 * (the buffer cache: the compiled code's allocations and the convolutions'
 * scratch). blas.SHIM_INCLUDES lists them all: they are part of the build's hash.
 */
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

#include "mlirc_kernels.h"

#define MEMREF1 MLIRC_MEMREF1
#define MEMREF2 MLIRC_MEMREF2
#define MEMREF3 MLIRC_MEMREF3
#define MEMREF4 MLIRC_MEMREF4

/* Run counters (mlirc_kernel_runs): which kernels ran, for tests. */
static int64_t kernel_run_counts[MLIRC_RUNS_COUNTERS];

static void count_run(int counter) {
  __atomic_fetch_add(&kernel_run_counts[counter], 1, __ATOMIC_RELAXED);
}

void mlirc_kernel_runs(int64_t *counts, int64_t n) {
  for (int64_t i = 0; i < n && i < MLIRC_RUNS_COUNTERS; ++i)
    counts[i] = __atomic_load_n(&kernel_run_counts[i], __ATOMIC_RELAXED);
}

void mlirc_kernel_runs_reset(void) {
  for (int i = 0; i < MLIRC_RUNS_COUNTERS; ++i)
    __atomic_store_n(&kernel_run_counts[i], 0, __ATOMIC_RELAXED);
}

const char *mlirc_kernels_isa(void) {
#if defined(__AVX512F__)
  return "avx512";
#elif defined(__AVX2__)
  return "avx2";
#else
  return "generic";
#endif
}

enum { RowMajor = 101, NoTrans = 111, Trans = 112 };
typedef void (*sgemm_fn)(int, int, int, int, int, int, float, const float *, int,
                         const float *, int, float, float *, int);
typedef void (*dgemm_fn)(int, int, int, int, int, int, double, const double *, int,
                         const double *, int, double, double *, int);

static void *find(const char *name) {
  char prefixed[64];
  void *symbol = dlsym(RTLD_DEFAULT, name);
  if (symbol) return symbol;
  snprintf(prefixed, sizeof prefixed, "scipy_%s", name);
  symbol = dlsym(RTLD_DEFAULT, prefixed);
  if (!symbol) {
    fprintf(stderr, "mlirc: no BLAS providing %s is loaded\n", name);
    abort();
  }
  return symbol;
}

/* Row-major layout of a 2-D view: (transpose flag, leading dimension). */
static void layout(int64_t rows, int64_t cols, const int64_t *strides, int *trans, int *ld) {
  if (strides[1] == 1 || cols == 1) { *trans = NoTrans; *ld = (int)(strides[0] > cols ? strides[0] : cols); }
  else { *trans = Trans; *ld = (int)(strides[1] > rows ? strides[1] : rows); }
}

#include "shim_pool.h"

/* What a convolution does to a block of its GEMM's product, right after the
 * slice that computed it (while it is in cache): defined with the
 * convolution below. */
typedef struct epilogue_job epilogue_job;
static void run_epilogue(const epilogue_job *job, int64_t row0, int64_t row1, int64_t col0,
                         int64_t col1);

/* The BLAS runs on one thread, so that the pool's threads are the only ones:
 * openblas_set_num_threads(1) (or MKL's) at first use. A BLAS that cannot be
 * told keeps its own threads, and the shim then gives it whole GEMMs and
 * sends its spinning workers to sleep first. */
static int blas_single_threaded(void) {
  static int state = -1;
  if (state < 0) {
    static const char *names[] = {"openblas_set_num_threads", "scipy_openblas_set_num_threads",
                                  "MKL_Set_Num_Threads"};
    state = 0;
    for (unsigned i = 0; i < sizeof names / sizeof *names && !state; ++i) {
      void (*set_threads)(int) = (void (*)(int))dlsym(RTLD_DEFAULT, names[i]);
      if (set_threads) {
        set_threads(1);
        state = 1;
      }
    }
  }
  return state;
}

/* How many slices a GEMM is cut into: one per thread while each keeps at
 * least 16 rows or columns and 2^20 flops, else one. */
static int64_t gemm_slices(int64_t m, int64_t n, int64_t k) {
  pthread_once(&pool.once, pool_start);
  int64_t threads = pool.workers + 1, size = m > n ? m : n;
  if (!blas_single_threaded()) {
    pool_park();
    return 1;
  }
  while (threads > 1 && (size / threads < 16 || 2 * m * n * k / threads < (1 << 20))) --threads;
  return threads;
}

/* The [first, last) part of `size` for slice `part` of `parts`, cut at
 * multiples of 16 (whole vectors of C's rows). */
static void slice_range(int64_t size, int64_t part, int64_t parts, int64_t *first,
                        int64_t *last) {
  *first = part == 0 ? 0 : (size * part / parts + 8) / 16 * 16;
  *last = part == parts - 1 ? size : (size * (part + 1) / parts + 8) / 16 * 16;
}

#define GEMM(NAME, T, FN, SYMBOL)                                                          \
  typedef struct {                                                                          \
    int ta, tb, lda, ldb, ldc, split_rows;                                                  \
    int64_t m, n, k, slices;                                                                \
    const T *a, *b;                                                                         \
    T *c, beta;                                                                             \
    const epilogue_job *epilogue;                                                           \
  } NAME##_job;                                                                             \
  static FN NAME##_blas(void) {                                                             \
    static FN gemm;                                                                         \
    if (!gemm) gemm = (FN)find(SYMBOL);                                                     \
    return gemm;                                                                            \
  }                                                                                         \
  static void NAME##_slice(void *context, int64_t part) {                                   \
    const NAME##_job *job = context;                                                        \
    int64_t first, last;                                                                    \
    slice_range(job->split_rows ? job->m : job->n, part, job->slices, &first, &last);       \
    if (last <= first) return;                                                              \
    if (job->split_rows) {                                                                  \
      NAME##_blas()(RowMajor, job->ta, job->tb, (int)(last - first), (int)job->n,           \
                    (int)job->k, 1, job->a + (job->ta == NoTrans ? first * job->lda : first), \
                    job->lda, job->b, job->ldb, job->beta, job->c + first * job->ldc,       \
                    job->ldc);                                                              \
      if (job->epilogue) run_epilogue(job->epilogue, first, last, 0, job->n);               \
    } else {                                                                                \
      NAME##_blas()(RowMajor, job->ta, job->tb, (int)job->m, (int)(last - first),           \
                    (int)job->k, 1, job->a, job->lda,                                       \
                    job->b + (job->tb == NoTrans ? first : first * job->ldb), job->ldb,     \
                    job->beta, job->c + first, job->ldc);                                   \
      if (job->epilogue) run_epilogue(job->epilogue, 0, job->m, first, last);               \
    }                                                                                       \
  }                                                                                         \
  /* C = A*B + beta*C, row-major, spread over the pool; then the epilogue, if any,      \
   * on each slice. */                                                                      \
  static void NAME##_parallel(int ta, int tb, int64_t m, int64_t n, int64_t k, const T *a,  \
                              int lda, const T *b, int ldb, T beta, T *c, int ldc,          \
                              const epilogue_job *epilogue) {                               \
    NAME##_job job = {ta, tb, lda, ldb, ldc, m > n, m, n, k, gemm_slices(m, n, k), a, b, c, \
                      beta, epilogue};                                                      \
    parallel_for(job.slices, NAME##_slice, &job);                                           \
  }                                                                                         \
  static void NAME##_one(int64_t m, int64_t n, int64_t k, const T *a, const int64_t *sa,    \
                         const T *b, const int64_t *sb, T *c, const int64_t *sc, T beta) { \
    int ta, tb, lda, ldb;                                                                   \
    layout(m, k, sa, &ta, &lda);                                                            \
    layout(k, n, sb, &tb, &ldb);                                                            \
    NAME##_parallel(ta, tb, m, n, k, a, lda, b, ldb, beta, c, (int)(sc[0] > n ? sc[0] : n),  \
                    NULL);                                                                  \
  }                                                                                         \
  /* accumulate: C += A*B; else C = A*B (the pass dropped a zero fill of C) */              \
  void mlirc_gemm_##T(MEMREF2(a), MEMREF2(b), MEMREF2(c), int64_t accumulate) {             \
    int64_t sa[2] = {a_stride0, a_stride1}, sb[2] = {b_stride0, b_stride1},                 \
            sc[2] = {c_stride0, c_stride1};                                                 \
    count_run(MLIRC_RUNS_GEMM_BLAS);                                                        \
    NAME##_one(a_size0, b_size1, a_size1, (T *)a_aligned + a_offset, sa,                    \
               (T *)b_aligned + b_offset, sb, (T *)c_aligned + c_offset, sc,                \
               accumulate ? 1 : 0);                                                         \
  }                                                                                         \
  void mlirc_gemm_##T##_batched(MEMREF3(a), MEMREF3(b), MEMREF3(c), int64_t accumulate) {   \
    int64_t sa[2] = {a_stride1, a_stride2}, sb[2] = {b_stride1, b_stride2},                 \
            sc[2] = {c_stride1, c_stride2};                                                 \
    count_run(MLIRC_RUNS_GEMM_BLAS);                                                        \
    for (int64_t i = 0; i < c_size0; ++i)                                                   \
      NAME##_one(a_size1, b_size2, a_size2, (T *)a_aligned + a_offset + i * a_stride0, sa,  \
                 (T *)b_aligned + b_offset + i * b_stride0, sb,                             \
                 (T *)c_aligned + c_offset + i * c_stride0, sc, accumulate ? 1 : 0);        \
  }

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
GEMM(sgemm, f32, sgemm_fn, "cblas_sgemm")
GEMM(dgemm, f64, dgemm_fn, "cblas_dgemm")

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

static pthread_mutex_t slot_lock = PTHREAD_MUTEX_INITIALIZER;

/* Packed and transformed weights live as long as the process. They are
 * carved out of chunks aligned to 2 MB that the kernel may back with huge
 * pages (MADV_HUGEPAGE; transparent huge pages are `madvise` here): the
 * weights stream from memory at every call, ResNet-50's 124 MB through
 * 62 TLB entries instead of 31,000, and the model ran 1% faster (A/B in
 * one process). A chunk's pages that no weights reach are never touched.
 * Called under slot_lock (by the slots' make functions). */
enum { HUGE_PAGE = 2 << 20, WEIGHT_CHUNK = 32 << 20 };

static struct {
  char *next, *end;
} weight_arena;

static void *lasting_alloc(size_t bytes) {
  bytes = (bytes + 63) / 64 * 64;
  if ((size_t)(weight_arena.end - weight_arena.next) < bytes) {
    size_t chunk = bytes > WEIGHT_CHUNK ? (bytes + HUGE_PAGE - 1) / HUGE_PAGE * HUGE_PAGE
                                        : WEIGHT_CHUNK;
    char *start = aligned_alloc(HUGE_PAGE, chunk);
    if (!start) return NULL;
    madvise(start, chunk, MADV_HUGEPAGE); /* advice: no harm where it is refused */
    weight_arena.next = start;
    weight_arena.end = start + chunk;
  }
  void *data = weight_arena.next;
  weight_arena.next += bytes;
  return data;
}

#include "shim_buffers.h"

/* Scratch buffers of one convolution call (Winograd's V and M, im2col
 * columns and products, padded or split input, tap offsets, the unpooled
 * output) come from the buffer cache (shim_buffers.h) and go back into it
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

static __thread char *call_scratch[SCRATCH_KINDS];

static void release_call_scratch(void) {
  for (int kind = SCRATCH_KINDS - 1; kind >= 0; --kind) {
    cached_free(call_scratch[kind]);
    call_scratch[kind] = NULL;
  }
}

/* At least `floats` floats, 64-byte aligned, of `kind` for this call. */
static float *scratch(int kind, size_t floats) {
  cached_free(call_scratch[kind]);
  call_scratch[kind] = cached_alloc(floats * sizeof(float));
  return (float *)call_scratch[kind];
}

/* The data a call site keeps in its slot (a zero-initialised i64 global that
 * the blas-offload pass adds for it): made by make(args) at the site's first
 * call, once even when threads race to it. */
static const float *slot_data(int64_t *slot, float *(*make)(const void *args), const void *args) {
  const float *ready = (const float *)__atomic_load_n(slot, __ATOMIC_ACQUIRE);
  if (ready) return ready;
  pthread_mutex_lock(&slot_lock);
  if (!*slot) __atomic_store_n(slot, (int64_t)(intptr_t)make(args), __ATOMIC_RELEASE);
  pthread_mutex_unlock(&slot_lock);
  return (const float *)(intptr_t)*slot;
}

typedef struct {
  const float *b;
  int64_t k, n, stride0, stride1;
} panel_source;

/* B (K x N, element (row, j) at b[row * stride0 + j * stride1]) into
 * `data` as panels of 32 columns, K x 32 each, zero past column N. */
static void pack_panels_into(float *data, const float *b, int64_t k, int64_t n,
                             int64_t stride0, int64_t stride1) {
  int64_t panels = (n + PACK_COLUMNS - 1) / PACK_COLUMNS;
  for (int64_t panel = 0; panel < panels; ++panel)
    for (int64_t row = 0; row < k; ++row)
      for (int64_t column = 0; column < PACK_COLUMNS; ++column) {
        int64_t j = panel * PACK_COLUMNS + column;
        data[(panel * k + row) * PACK_COLUMNS + column] =
            j < n ? b[row * stride0 + j * stride1] : 0.0f;
      }
}

static float *pack_panels(const void *args) {
  const panel_source *source = args;
  int64_t panels = (source->n + PACK_COLUMNS - 1) / PACK_COLUMNS;
  float *data = lasting_alloc(sizeof(float) * panels * source->k * PACK_COLUMNS);
  pack_panels_into(data, source->b, source->k, source->n, source->stride0, source->stride1);
  return data;
}

static const float *packed_panels(int64_t *slot, const float *b, int64_t k, int64_t n,
                                  int64_t stride0, int64_t stride1) {
  panel_source source = {b, k, n, stride0, stride1};
  return slot_data(slot, pack_panels, &source);
}

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

typedef struct {
  int64_t m, k, n, a_row, a_col, c_row;
  const float *a, *panels, *bias; /* bias: NULL, or C = act(A*B + bias) */
  float *c;
  int accumulate, relu;
} packed_job;

#ifdef __AVX512F__
static void packed_task(void *context, int64_t panel) {
  const packed_job *job = context;
  const float *panel_data = job->panels + panel * job->k * PACK_COLUMNS;
  int64_t first = panel * PACK_COLUMNS;
  int64_t columns = job->n - first < PACK_COLUMNS ? job->n - first : PACK_COLUMNS;
  for (int64_t i = 0; i < job->m; i += PACK_ROWS) {
    const float *a = job->a + i * job->a_row;
    float *c = job->c + i * job->c_row + first;
    switch (job->m - i < PACK_ROWS ? job->m - i : PACK_ROWS) { /* constant row counts */
#define ROWS_CASE(R) case R: packed_tile(R, job->k, a, job->a_row, job->a_col, panel_data, c, \
                                         job->c_row, columns, job->accumulate,                \
                                         job->bias ? job->bias + first : NULL, job->relu); break;
      ROWS_CASE(1) ROWS_CASE(2) ROWS_CASE(3) ROWS_CASE(4)
      ROWS_CASE(5) ROWS_CASE(6) ROWS_CASE(7) ROWS_CASE(8)
#undef ROWS_CASE
    }
  }
}
#else
/* Without AVX-512 (16 vector registers of 8 floats) the 8x32 tile above
 * spills (2.4 GFLOP/s): here the tile is 6 rows x 16 columns, half a panel,
 * 12 ymm accumulators, two loads of the panel and 6 broadcasts of A per
 * step of K, the classic AVX2 shape. Same panels, same results. */
typedef float v8 __attribute__((vector_size(32)));
enum { HALF_COLUMNS = PACK_COLUMNS / 2, AVX2_ROWS = 6 };

static inline __attribute__((always_inline)) void half_panel_tile(
    int rows, int64_t k, const float *a, int64_t a_row, int64_t a_col, const float *half,
    float *c, int64_t c_row, int64_t columns, int accumulate, const float *bias, int relu) {
  v8 acc[AVX2_ROWS][2];
  for (int r = 0; r < rows; ++r) acc[r][0] = acc[r][1] = (v8){};
  for (int64_t p = 0; p < k; ++p) {
    __builtin_prefetch(half + (p + PREFETCH_AHEAD) * PACK_COLUMNS);
    v8 low = LOAD(v8, half + p * PACK_COLUMNS), high = LOAD(v8, half + p * PACK_COLUMNS + 8);
    for (int r = 0; r < rows; ++r) {
      float x = a[r * a_row + p * a_col];
      v8 scalar = {x, x, x, x, x, x, x, x};
      acc[r][0] += scalar * low;
      acc[r][1] += scalar * high;
    }
  }
  for (int r = 0; r < rows; ++r) {
    float *target = c + r * c_row;
    float lanes[HALF_COLUMNS];
    STORE(v8, lanes, acc[r][0]);
    STORE(v8, lanes + 8, acc[r][1]);
    for (int64_t j = 0; j < columns; ++j) {
      float value = (accumulate ? target[j] : 0.0f) + lanes[j];
      if (bias) value += bias[j];
      target[j] = bias && relu && value <= 0 ? 0.0f : value;
    }
  }
}

static void packed_task(void *context, int64_t panel) {
  const packed_job *job = context;
  for (int64_t h = 0; h < 2; ++h) {
    int64_t first = panel * PACK_COLUMNS + h * HALF_COLUMNS;
    if (first >= job->n) return;
    const float *half = job->panels + panel * job->k * PACK_COLUMNS + h * HALF_COLUMNS;
    int64_t columns = job->n - first < HALF_COLUMNS ? job->n - first : HALF_COLUMNS;
    for (int64_t i = 0; i < job->m; i += AVX2_ROWS) {
      const float *a = job->a + i * job->a_row;
      float *c = job->c + i * job->c_row + first;
      switch (job->m - i < AVX2_ROWS ? job->m - i : AVX2_ROWS) { /* constant row counts */
#define ROWS_CASE(R) case R: half_panel_tile(R, job->k, a, job->a_row, job->a_col, half, c,   \
                                             job->c_row, columns, job->accumulate,            \
                                             job->bias ? job->bias + first : NULL, job->relu); \
                             break;
        ROWS_CASE(1) ROWS_CASE(2) ROWS_CASE(3) ROWS_CASE(4) ROWS_CASE(5) ROWS_CASE(6)
#undef ROWS_CASE
      }
    }
  }
}
#endif

/* C [+]= A * B with B constant; C row-major with unit column stride; `slot`
 * the call site's i64 that holds B's packed copy. */
void mlirc_gemm_f32_packed(MEMREF2(a), MEMREF2(b), MEMREF2(c), int64_t accumulate,
                           MEMREF1(slot)) {
  count_run(MLIRC_RUNS_GEMM_PACKED);
  const float *panels = packed_panels((int64_t *)slot_aligned + slot_offset,
                                      (const float *)b_aligned + b_offset, b_size0, b_size1,
                                      b_stride0, b_stride1);
  packed_job job = {a_size0, a_size1, b_size1, a_stride0, a_stride1, c_stride0,
                    (const float *)a_aligned + a_offset, panels, NULL,
                    (float *)c_aligned + c_offset, (int)accumulate, 0};
  parallel_for((b_size1 + PACK_COLUMNS - 1) / PACK_COLUMNS, packed_task, &job);
}

/* C = act(A * B + bias[column]), act ReLU or the identity: the pass folds
 * the bias add (and a ReLU) that followed a GEMM into a zeroed C. */
void mlirc_gemm_f32_packed_bias(MEMREF2(a), MEMREF2(b), MEMREF2(c), MEMREF1(bias),
                                int64_t relu, MEMREF1(slot)) {
  count_run(MLIRC_RUNS_GEMM_PACKED);
  const float *panels = packed_panels((int64_t *)slot_aligned + slot_offset,
                                      (const float *)b_aligned + b_offset, b_size0, b_size1,
                                      b_stride0, b_stride1);
  packed_job job = {a_size0, a_size1, b_size1, a_stride0, a_stride1, c_stride0,
                    (const float *)a_aligned + a_offset, panels,
                    (const float *)bias_aligned + bias_offset, (float *)c_aligned + c_offset,
                    0, (int)relu};
  parallel_for((b_size1 + PACK_COLUMNS - 1) / PACK_COLUMNS, packed_task, &job);
}

#include "shim_maxpool.h"
#include "shim_conv.h"

/* mlirc's kernel library: GEMM calls on MLIR memref descriptors.
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
 * Also the run counters (mlirc_kernel_runs) and the build's CPU level.
 */

#include "kernels.h"

/* Run counters (mlirc_kernel_runs): which kernels ran, for tests. */
static int64_t kernel_run_counts[MLIRC_RUNS_COUNTERS];

INTERNAL void count_run(int counter) {
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
INTERNAL void layout(int64_t rows, int64_t cols, const int64_t *strides, int *trans, int *ld) {
  if (strides[1] == 1 || cols == 1) { *trans = NoTrans; *ld = (int)(strides[0] > cols ? strides[0] : cols); }
  else { *trans = Trans; *ld = (int)(strides[1] > rows ? strides[1] : rows); }
}

/* The BLAS runs on one thread, so that the pool's threads are the only ones:
 * openblas_set_num_threads(1) (or MKL's) at first use. A BLAS that cannot be
 * told keeps its own threads, and the shim then gives it whole GEMMs and
 * sends its spinning workers to sleep first. */
INTERNAL int blas_single_threaded(void) {
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
  int64_t threads = pool_threads(), size = m > n ? m : n;
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
  INTERNAL FN NAME##_blas(void) {                                                             \
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
  INTERNAL void NAME##_parallel(int ta, int tb, int64_t m, int64_t n, int64_t k, const T *a,  \
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

GEMM(sgemm, f32, sgemm_fn, "cblas_sgemm")
GEMM(dgemm, f64, dgemm_fn, "cblas_dgemm")

typedef struct {
  const float *b;
  int64_t k, n, stride0, stride1;
} panel_source;

/* B (K x N, element (row, j) at b[row * stride0 + j * stride1]) into
 * `data` as panels of 32 columns, K x 32 each, zero past column N. */
INTERNAL void pack_panels_into(float *data, const float *b, int64_t k, int64_t n,
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

INTERNAL const float *packed_panels(int64_t *slot, const float *b, int64_t k, int64_t n,
                                  int64_t stride0, int64_t stride1) {
  panel_source source = {b, k, n, stride0, stride1};
  return slot_data(slot, pack_panels, &source);
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


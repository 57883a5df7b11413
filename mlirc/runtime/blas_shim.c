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
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <linux/futex.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#define MEMREF1(p) void *p##_allocated, void *p##_aligned, int64_t p##_offset, int64_t p##_size, \
  int64_t p##_stride
#define MEMREF2(p) void *p##_allocated, void *p##_aligned, int64_t p##_offset, int64_t p##_size0, \
  int64_t p##_size1, int64_t p##_stride0, int64_t p##_stride1
#define MEMREF3(p) void *p##_allocated, void *p##_aligned, int64_t p##_offset, int64_t p##_size0, \
  int64_t p##_size1, int64_t p##_size2, int64_t p##_stride0, int64_t p##_stride1, int64_t p##_stride2

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

/* A small pool of worker threads for all the shim's work: GEMMs (cut into
 * one slice per thread, the BLAS running single-threaded), the direct
 * convolution, im2col and epilogues. One pool, because two (OpenBLAS's and
 * ours) spinning in turn took each other's cores: the cnn's grouped GEMM
 * right after a direct convolution ran 3x slower.
 * Workers spin briefly for the next job, then sleep on a futex: a long spin
 * (libgomp's default, ONNX Runtime's pool) takes a core from whatever runs
 * next in the process, and an OpenMP runtime with a short spin made eager
 * PyTorch several times slower in the same process. MLIRC_NUM_THREADS sets
 * the thread count (default: the CPUs this process may run on); in a forked
 * child, or inside a task, jobs run on the calling thread. */
typedef void (*task_fn)(void *context, int64_t task);

/* Pause loops (about 23 ns each here): a worker spins about 0.5 ms for the
 * next job before it sleeps. */
enum { MAX_WORKERS = 63, SPIN_ROUNDS = 20000 };

static struct {
  pthread_once_t once;
  pthread_mutex_t busy; /* one job at a time; a second caller runs its own serially */
  int workers;
  pid_t owner;
  _Atomic uint32_t generation;
  _Atomic int sleeping, parked;
  _Atomic int64_t next, done;
  int64_t count;
  task_fn fn;
  void *context;
} pool = {PTHREAD_ONCE_INIT, PTHREAD_MUTEX_INITIALIZER};

static __thread int in_task;

static void run_tasks(void) {
  in_task = 1;
  for (int64_t task; (task = atomic_fetch_add(&pool.next, 1)) < pool.count;) {
    pool.fn(pool.context, task);
    atomic_fetch_add(&pool.done, 1);
  }
  in_task = 0;
}

static void *pool_worker(void *unused) {
  (void)unused;
  uint32_t seen = 0;
  for (;;) {
    uint32_t generation;
    int spins = 0;
    while ((generation = atomic_load(&pool.generation)) == seen) {
      if (++spins < SPIN_ROUNDS && !atomic_load(&pool.parked)) {
        __builtin_ia32_pause();
        continue;
      }
      atomic_fetch_add(&pool.sleeping, 1);
      syscall(SYS_futex, &pool.generation, FUTEX_WAIT_PRIVATE, seen, NULL, NULL, 0);
      atomic_fetch_sub(&pool.sleeping, 1);
      spins = 0;
    }
    seen = generation;
    run_tasks();
  }
  return NULL;
}

static void pool_start(void) {
  int threads = 0;
  const char *configured = getenv("MLIRC_NUM_THREADS");
  if (configured) threads = atoi(configured);
  if (threads <= 0) {
    cpu_set_t allowed;
    threads = sched_getaffinity(0, sizeof allowed, &allowed) == 0 ? CPU_COUNT(&allowed) : 1;
  }
  pool.workers = threads - 1 < MAX_WORKERS ? threads - 1 : MAX_WORKERS;
  pool.owner = getpid();
  atomic_store(&pool.next, 0);
  pool.count = 0;
  for (int i = 0; i < pool.workers; ++i) {
    pthread_t thread;
    if (pthread_create(&thread, NULL, pool_worker, NULL) != 0) {
      pool.workers = i;
      break;
    }
    pthread_detach(thread);
  }
}

/* Sends spinning workers to sleep now: called before a BLAS call, whose own
 * threads need the cores. */
static void pool_park(void) { atomic_store(&pool.parked, 1); }

/* Runs fn(context, task) for task in [0, count), spread over the pool. */
static void parallel_for(int64_t count, task_fn fn, void *context) {
  pthread_once(&pool.once, pool_start);
  if (count <= 1 || pool.workers == 0 || in_task || pool.owner != getpid() ||
      pthread_mutex_trylock(&pool.busy) != 0) {
    for (int64_t task = 0; task < count; ++task) fn(context, task);
    return;
  }
  /* Published before `next` is reset: a worker still leaving the previous
   * job that takes a task from this one runs it correctly. */
  pool.fn = fn;
  pool.context = context;
  pool.count = count;
  atomic_store(&pool.parked, 0);
  atomic_store(&pool.done, 0);
  atomic_store(&pool.next, 0);
  atomic_fetch_add(&pool.generation, 1);
  if (atomic_load(&pool.sleeping))
    syscall(SYS_futex, &pool.generation, FUTEX_WAKE_PRIVATE, pool.workers, NULL, NULL, 0);
  run_tasks();
  while (atomic_load(&pool.done) < count) __builtin_ia32_pause();
  pthread_mutex_unlock(&pool.busy);
}

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
    NAME##_one(a_size0, b_size1, a_size1, (T *)a_aligned + a_offset, sa,                    \
               (T *)b_aligned + b_offset, sb, (T *)c_aligned + c_offset, sc,                \
               accumulate ? 1 : 0);                                                         \
  }                                                                                         \
  void mlirc_gemm_##T##_batched(MEMREF3(a), MEMREF3(b), MEMREF3(c), int64_t accumulate) {   \
    int64_t sa[2] = {a_stride1, a_stride2}, sb[2] = {b_stride1, b_stride2},                 \
            sc[2] = {c_stride1, c_stride2};                                                 \
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

static pthread_mutex_t packing = PTHREAD_MUTEX_INITIALIZER;

static const float *packed_panels(int64_t *slot, const float *b, int64_t k, int64_t n,
                                  int64_t stride0, int64_t stride1) {
  const float *ready = (const float *)__atomic_load_n(slot, __ATOMIC_ACQUIRE);
  if (ready) return ready;
  pthread_mutex_lock(&packing);
  if (!*slot) {
    int64_t panels = (n + PACK_COLUMNS - 1) / PACK_COLUMNS;
    float *data = aligned_alloc(64, sizeof(float) * panels * k * PACK_COLUMNS);
    for (int64_t panel = 0; panel < panels; ++panel)
      for (int64_t row = 0; row < k; ++row)
        for (int64_t column = 0; column < PACK_COLUMNS; ++column) {
          int64_t j = panel * PACK_COLUMNS + column;
          data[(panel * k + row) * PACK_COLUMNS + column] =
              j < n ? b[row * stride0 + j * stride1] : 0.0f;
        }
    __atomic_store_n(slot, (int64_t)(intptr_t)data, __ATOMIC_RELEASE);
  }
  pthread_mutex_unlock(&packing);
  return (const float *)(intptr_t)*slot;
}

/* ROWS x 32 of C from ROWS rows of A and one panel; `columns` of them kept.
 * C = A*B, C += A*B (accumulate), or C = act(A*B + bias) (bias, relu). */
static inline __attribute__((always_inline)) void packed_tile(
    int rows, int64_t k, const float *a, int64_t a_row, int64_t a_col, const float *panel,
    float *c, int64_t c_row, int64_t columns, int accumulate, const float *bias, int relu) {
  v16 acc[PACK_ROWS][2];
  for (int r = 0; r < rows; ++r) acc[r][0] = acc[r][1] = (v16){};
  for (int64_t p = 0; p < k; ++p) {
    v16 low = LOAD(v16, panel + p * PACK_COLUMNS), high = LOAD(v16, panel + p * PACK_COLUMNS + 16);
    for (int r = 0; r < rows; ++r) {
      v16 scalar = BROADCAST(a[r * a_row + p * a_col]);
      acc[r][0] += scalar * low;
      acc[r][1] += scalar * high;
    }
  }
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
          if (relu) { /* like the ReLU it replaces (cmpf ugt): NaN stays NaN */
            __typeof__(value <= 0) keep = ~(value <= 0);
            value = (v16)(keep & (__typeof__(keep))value);
          }
          acc[r][half] = value;
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

/* C [+]= A * B with B constant; C row-major with unit column stride; `slot`
 * the call site's i64 that holds B's packed copy. */
void mlirc_gemm_f32_packed(MEMREF2(a), MEMREF2(b), MEMREF2(c), int64_t accumulate,
                           MEMREF1(slot)) {
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
  const float *panels = packed_panels((int64_t *)slot_aligned + slot_offset,
                                      (const float *)b_aligned + b_offset, b_size0, b_size1,
                                      b_stride0, b_stride1);
  packed_job job = {a_size0, a_size1, b_size1, a_stride0, a_stride1, c_stride0,
                    (const float *)a_aligned + a_offset, panels,
                    (const float *)bias_aligned + bias_offset, (float *)c_aligned + c_offset,
                    0, (int)relu};
  parallel_for((b_size1 + PACK_COLUMNS - 1) / PACK_COLUMNS, packed_task, &job);
}

/* Convolution, NCHW input x FCHW filter, f32. Operands are contiguous (the
 * pass checks). The input comes padded, or unpadded with pad_h/pad_w > 0
 * when the pass folded the zero-filled padded copy into the call. Three
 * entry points:
 *   mlirc_conv2d_nchw_f32:      out += conv(in, filter)
 *   mlirc_conv2d_nchw_bias_f32: out = act(conv(in, filter) + bias[f]), act
 *     being ReLU or the identity: the pass folds the bias broadcast that
 *     initialised `out` and an in-place ReLU that followed into this call,
 *     so the output is written once instead of three times.
 *   mlirc_conv2d_nchw_bias_residual_f32: the same plus a residual (a
 *     ResNet shortcut) of the output's shape, added before the ReLU. */
#define MEMREF4(p) void *p##_allocated, void *p##_aligned, int64_t p##_offset, int64_t p##_n, \
  int64_t p##_c, int64_t p##_h, int64_t p##_w, int64_t p##_s0, int64_t p##_s1, int64_t p##_s2, \
  int64_t p##_s3

typedef struct {
  int64_t channels, in_h, in_w, filters, kh, kw, oh, ow;
  int64_t stride_h, stride_w, dilation_h, dilation_w, pad_h, pad_w;
  const float *bias; /* NULL: accumulate into the output (and no ReLU, no residual) */
  int relu;
} conv_shape;

/* Direct convolution for stride 1 without dilation, when an output row is a
 * whole number of 16-float vectors: each output tile of 4 filters x 4 rows x
 * one vector stays in registers while the loop runs over input channels and
 * kernel taps, one broadcast weight times one input row vector per FMA. For
 * the small channel counts of little CNNs it is as fast as im2col + GEMM
 * without the column copy (the cnn's 32x32 and 16x16 layers: 38/93 us
 * against 38/90 us, 2026-12-01, OpenBLAS SkylakeX kernels); for rows of 8
 * floats the grouped im2col + GEMM below is twice as fast (68 against 156
 * us), so those take it. The shim is built for the host (-march=native, like
 * the JIT's own code), so the vectors are AVX-512 registers here. */
#define TILE_ROWS 4

#define DIRECT_TILE(NAME, T, FB)                                                             \
  static inline __attribute__((always_inline)) void NAME(                                   \
      int64_t channels, int64_t kh, int64_t kw, int64_t in_h, int64_t in_w, int64_t plane,  \
      int64_t ow, const float *image, const float *weights, float *out, const float *bias,  \
      const float *residual, int relu, int64_t f0, int64_t y0, int64_t x0) {                \
    int64_t taps = channels * kh * kw;                                                      \
    T acc[FB][TILE_ROWS];                                                                   \
    for (int fb = 0; fb < FB; ++fb)                                                         \
      for (int r = 0; r < TILE_ROWS; ++r)                                                   \
        acc[fb][r] =                                                                        \
            !bias      ? LOAD(T, out + (f0 + fb) * plane + (y0 + r) * ow + x0)              \
            : residual ? bias[f0 + fb] + LOAD(T, residual + (f0 + fb) * plane + (y0 + r) * ow + x0) \
                       : (T){} + bias[f0 + fb];                                             \
    for (int64_t c = 0; c < channels; ++c)                                                  \
      for (int64_t i = 0; i < kh; ++i)                                                      \
        for (int64_t j = 0; j < kw; ++j) {                                                  \
          const float *source = image + (c * in_h + y0 + i) * in_w + x0 + j;                \
          const float *tap = weights + f0 * taps + (c * kh + i) * kw + j;                   \
          T rows[TILE_ROWS];                                                                \
          for (int r = 0; r < TILE_ROWS; ++r) rows[r] = LOAD(T, source + r * in_w);         \
          for (int fb = 0; fb < FB; ++fb) {                                                 \
            T weight = (T){} + tap[fb * taps];                                              \
            for (int r = 0; r < TILE_ROWS; ++r) acc[fb][r] += weight * rows[r];             \
          }                                                                                 \
        }                                                                                   \
    for (int fb = 0; fb < FB; ++fb)                                                         \
      for (int r = 0; r < TILE_ROWS; ++r) {                                                 \
        T value = acc[fb][r];                                                               \
        if (relu) { /* like the ReLU it replaces (cmpf ugt): NaN stays NaN */               \
          __typeof__(value <= 0) keep = ~(value <= 0);                                      \
          value = (T)(keep & (__typeof__(keep))value);                                      \
        }                                                                                   \
        STORE(T, out + (f0 + fb) * plane + (y0 + r) * ow + x0, value);                      \
      }                                                                                     \
  }
DIRECT_TILE(tile_16x4, v16, 4)

/* The 3x3 tile: 2 filters x 8 rows x 16 pixels. Per input channel it loads
 * each of the 10 input rows under the tile once per horizontal tap and uses
 * it for every kernel row that reaches it; with the taps constant the loops
 * unroll and the weights are broadcast operands of the FMAs. Measured on one
 * core against the generic 4x4 tile: 200 against 107 GFLOP/s (16->32
 * channels at 16x16, four images), and better than 4x4, 3x8, 4x8 or 2x12
 * tiles of this shape. */
enum { TILE3_FILTERS = 2, TILE3_ROWS = 8 };

static inline __attribute__((always_inline)) void tile3x3_2x8(
    int64_t channels, int64_t in_h, int64_t in_w, int64_t plane, int64_t ow,
    const float *image, const float *weights, float *out, const float *bias,
    const float *residual, int relu, int64_t f0, int64_t y0, int64_t x0) {
  v16 acc[TILE3_FILTERS][TILE3_ROWS];
  for (int fb = 0; fb < TILE3_FILTERS; ++fb)
    for (int r = 0; r < TILE3_ROWS; ++r) {
      int64_t at = (f0 + fb) * plane + (y0 + r) * ow + x0;
      acc[fb][r] = !bias      ? LOAD(v16, out + at)
                   : residual ? BROADCAST(bias[f0 + fb]) + LOAD(v16, residual + at)
                              : BROADCAST(bias[f0 + fb]);
    }
  const float *filter = weights + f0 * channels * 9;
  for (int64_t c = 0; c < channels; ++c) {
    const float *source = image + (c * in_h + y0) * in_w + x0, *tap = filter + c * 9;
#pragma GCC unroll 10
    for (int row = 0; row < TILE3_ROWS + 2; ++row)
#pragma GCC unroll 3
      for (int j = 0; j < 3; ++j) {
        v16 input = LOAD(v16, source + row * in_w + j);
#pragma GCC unroll 3
        for (int i = 0; i < 3; ++i) {
          int r = row - i;
          if (r < 0 || r >= TILE3_ROWS) continue;
#pragma GCC unroll 2
          for (int fb = 0; fb < TILE3_FILTERS; ++fb)
            acc[fb][r] += BROADCAST(tap[fb * channels * 9 + i * 3 + j]) * input;
        }
      }
  }
  for (int fb = 0; fb < TILE3_FILTERS; ++fb)
    for (int r = 0; r < TILE3_ROWS; ++r) {
      v16 value = acc[fb][r];
      if (relu) { /* like the ReLU it replaces (cmpf ugt): NaN stays NaN */
        __typeof__(value <= 0) keep = ~(value <= 0);
        value = (v16)(keep & (__typeof__(keep))value);
      }
      STORE(v16, out + (f0 + fb) * plane + (y0 + r) * ow + x0, value);
    }
}

/* Whether the 3x3 tile fits (the caller checked direct_conv_fits). */
static int tile3x3_fits(const conv_shape *shape) {
  return shape->kh == 3 && shape->kw == 3 && shape->oh % TILE3_ROWS == 0 &&
         shape->filters % TILE3_FILTERS == 0;
}

/* Whether direct_conv handles this shape (rows of 16k floats, 4k rows). */
static int direct_conv_fits(const conv_shape *shape) {
  if (shape->kh * shape->kw == 1 || shape->stride_h != 1 || shape->stride_w != 1 ||
      shape->dilation_h != 1 || shape->dilation_w != 1 || shape->oh % TILE_ROWS)
    return 0;
  return shape->ow % 16 == 0 && shape->filters % 4 == 0;
}

/* One block of output rows (TILE3_ROWS or TILE_ROWS) of one image, all filters. Inlined once
 * per epilogue case, so the tiles see constants. */
static inline __attribute__((always_inline)) void direct_rows_case(
    const conv_shape *shape, const float *image, const float *weights, float *out,
    const float *bias, const float *residual, int relu, int64_t y0) {
  int64_t plane = shape->oh * shape->ow;
  if (tile3x3_fits(shape)) {
    for (int64_t f0 = 0; f0 < shape->filters; f0 += TILE3_FILTERS)
      for (int64_t x0 = 0; x0 < shape->ow; x0 += 16)
        tile3x3_2x8(shape->channels, shape->in_h, shape->in_w, plane, shape->ow, image, weights,
                    out, bias, residual, relu, f0, y0, x0);
    return;
  }
  for (int64_t f0 = 0; f0 < shape->filters; f0 += 4)
    for (int64_t x0 = 0; x0 < shape->ow; x0 += 16)
      tile_16x4(shape->channels, shape->kh, shape->kw, shape->in_h, shape->in_w, plane,
                shape->ow, image, weights, out, bias, residual, relu, f0, y0, x0);
}

/* A direct convolution job: images (padded ones when the convolution pads)
 * cut into tasks of one tile's rows. */
typedef struct {
  const conv_shape *shape;
  const float *input, *weights, *residual;
  float *output;
  int64_t image_stride, out_stride, blocks; /* row blocks per image */
} direct_job;

/* The ReLU and the residual only come with a bias (the entry points make sure). */
static void direct_task(void *context, int64_t task) {
  const direct_job *job = context;
  const conv_shape *shape = job->shape;
  int64_t rows = tile3x3_fits(shape) ? TILE3_ROWS : TILE_ROWS;
  int64_t n = task / job->blocks, y0 = task % job->blocks * rows;
  const float *image = job->input + n * job->image_stride, *bias = shape->bias;
  const float *residual = job->residual ? job->residual + n * job->out_stride : NULL;
  float *out = job->output + n * job->out_stride;
  if (!bias) direct_rows_case(shape, image, job->weights, out, NULL, NULL, 0, y0);
  else if (residual && shape->relu)
    direct_rows_case(shape, image, job->weights, out, bias, residual, 1, y0);
  else if (residual) direct_rows_case(shape, image, job->weights, out, bias, residual, 0, y0);
  else if (shape->relu) direct_rows_case(shape, image, job->weights, out, bias, NULL, 1, y0);
  else direct_rows_case(shape, image, job->weights, out, bias, NULL, 0, y0);
}

/* The padded copy of one image for the direct kernel, which reads no padding. */
typedef struct {
  const conv_shape *shape;
  const float *input;
  float *padded;
  int64_t image_stride, padded_h, padded_w;
} pad_job;

static void pad_task(void *context, int64_t n) {
  const pad_job *job = context;
  const conv_shape *shape = job->shape;
  int64_t plane = job->padded_h * job->padded_w;
  float *target = job->padded + n * shape->channels * plane;
  memset(target, 0, sizeof(float) * shape->channels * plane);
  for (int64_t c = 0; c < shape->channels; ++c)
    for (int64_t y = 0; y < shape->in_h; ++y)
      memcpy(target + c * plane + (y + shape->pad_h) * job->padded_w + shape->pad_w,
             job->input + n * job->image_stride + (c * shape->in_h + y) * shape->in_w,
             sizeof(float) * shape->in_w);
}

static void direct_conv(const conv_shape *shape, int64_t images, const float *input,
                        int64_t image_stride, const float *weights, float *output,
                        int64_t out_stride, const float *residual) {
  conv_shape padded = *shape;
  float *scratch = NULL;
  if (shape->pad_h || shape->pad_w) {
    padded.in_h += 2 * shape->pad_h;
    padded.in_w += 2 * shape->pad_w;
    padded.pad_h = padded.pad_w = 0;
    scratch = malloc(sizeof(float) * images * shape->channels * padded.in_h * padded.in_w);
    pad_job padding = {shape, input, scratch, image_stride, padded.in_h, padded.in_w};
    parallel_for(images, pad_task, &padding);
    input = scratch;
    image_stride = shape->channels * padded.in_h * padded.in_w;
  }
  direct_job job = {&padded, input, weights, residual, output, image_stride, out_stride,
                    shape->oh / (tile3x3_fits(shape) ? TILE3_ROWS : TILE_ROWS)};
  parallel_for(images * job.blocks, direct_task, &job);
  free(scratch);
}

/* Row (c, i, j) of one image's im2col matrix holds, for every output pixel,
 * the input value under kernel tap (i, j) of channel c (zero in the
 * padding). Rows are `ld` floats apart, so several images can sit side by
 * side in one matrix. One task per (image, channel). */
typedef struct {
  const conv_shape *shape;
  const float *input;
  float *columns;
  int64_t image_stride, ld, channels;
} im2col_job;

static void im2col_task(void *context, int64_t task) {
  const im2col_job *job = context;
  const conv_shape *shape = job->shape;
  int64_t n = task / shape->channels, c = task % shape->channels;
  int64_t kh = shape->kh, kw = shape->kw, oh = shape->oh, ow = shape->ow;
  const float *image = job->input + n * job->image_stride;
  for (int64_t i = 0; i < kh; ++i)
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
struct epilogue_job {
  const conv_shape *shape;
  const float *product, *residual;
  float *output;
  int64_t ld, out_stride;
};

static void run_epilogue(const epilogue_job *job, int64_t row0, int64_t row1, int64_t col0,
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

static void gemm_conv(const conv_shape *shape, int64_t images, const float *input,
                      int64_t image_stride, const float *weights, float *output,
                      int64_t out_stride, const float *residual) {
  int64_t rows = shape->channels * shape->kh * shape->kw, cols = shape->oh * shape->ow;
  int copy_free = shape->kh == 1 && shape->kw == 1 && shape->stride_h == 1 &&
                  shape->stride_w == 1 && shape->in_h == shape->oh && shape->in_w == shape->ow &&
                  !shape->pad_h && !shape->pad_w;
  int64_t group = cols >= GROUP_COLUMNS ? 1 : GROUP_COLUMNS / cols;
  if (group > images) group = images;
  float *columns = copy_free && group == 1 ? NULL : malloc(sizeof(float) * rows * group * cols);
  float *product = group > 1 ? malloc(sizeof(float) * shape->filters * group * cols) : NULL;
  for (int64_t first = 0; first < images; first += group) {
    int64_t count = images - first < group ? images - first : group, ld = count * cols;
    const float *matrix = input + first * image_stride;
    if (columns) {
      im2col_job gather = {shape, matrix, columns, image_stride, ld};
      parallel_for(count * shape->channels, im2col_task, &gather);
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
  free(columns);
  free(product);
}

static void conv2d(const conv_shape *shape, int64_t images, const float *input,
                   int64_t image_stride, const float *weights, float *output,
                   int64_t out_stride, const float *residual) {
  if (direct_conv_fits(shape))
    direct_conv(shape, images, input, image_stride, weights, output, out_stride, residual);
  else
    gemm_conv(shape, images, input, image_stride, weights, output, out_stride, residual);
}

#define CONV_SHAPE(bias_, relu_)                                                            \
  {in_c, in_h, in_w, out_c, filter_h, filter_w, out_h, out_w,                               \
   stride_h, stride_w, dilation_h, dilation_w, pad_h, pad_w, bias_, relu_}

void mlirc_conv2d_nchw_f32(MEMREF4(in), MEMREF4(filter), MEMREF4(out), int64_t stride_h,
                           int64_t stride_w, int64_t dilation_h, int64_t dilation_w,
                           int64_t pad_h, int64_t pad_w) {
  conv_shape shape = CONV_SHAPE(NULL, 0);
  conv2d(&shape, in_n, (const float *)in_aligned + in_offset, in_s0,
         (const float *)filter_aligned + filter_offset, (float *)out_aligned + out_offset, out_s0,
         NULL);
}

void mlirc_conv2d_nchw_bias_f32(MEMREF4(in), MEMREF4(filter), MEMREF4(out), MEMREF1(bias),
                                int64_t stride_h, int64_t stride_w, int64_t dilation_h,
                                int64_t dilation_w, int64_t pad_h, int64_t pad_w,
                                int64_t relu) {
  conv_shape shape = CONV_SHAPE((const float *)bias_aligned + bias_offset, (int)relu);
  conv2d(&shape, in_n, (const float *)in_aligned + in_offset, in_s0,
         (const float *)filter_aligned + filter_offset, (float *)out_aligned + out_offset, out_s0,
         NULL);
}

void mlirc_conv2d_nchw_bias_residual_f32(MEMREF4(in), MEMREF4(filter), MEMREF4(out),
                                         MEMREF1(bias), MEMREF4(residual), int64_t stride_h,
                                         int64_t stride_w, int64_t dilation_h,
                                         int64_t dilation_w, int64_t pad_h, int64_t pad_w,
                                         int64_t relu) {
  conv_shape shape = CONV_SHAPE((const float *)bias_aligned + bias_offset, (int)relu);
  conv2d(&shape, in_n, (const float *)in_aligned + in_offset, in_s0,
         (const float *)filter_aligned + filter_offset, (float *)out_aligned + out_offset, out_s0,
         (const float *)residual_aligned + residual_offset);
}

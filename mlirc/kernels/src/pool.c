/* mlirc's kernel library: the thread pool. */

#include "kernels.h"

/* A small pool of worker threads for all the shim's work: GEMMs (cut into
 * one slice per thread, the BLAS running single-threaded), the direct
 * convolution, im2col and epilogues. One pool, because two (OpenBLAS's and
 * ours) spinning in turn took each other's cores: the cnn's grouped GEMM
 * right after a direct convolution ran 3x slower.
 * Workers spin briefly for the next job, then sleep on a futex: a long spin
 * (libgomp's default, ONNX Runtime's pool) takes a core from whatever runs
 * next in the process, and an OpenMP runtime with a short spin made eager
 * PyTorch several times slower in the same process. MLIRC_NUM_THREADS sets
 * the thread count (default: the CPUs this process may run on, within its
 * cgroup's CPU quota); in a forked child, or inside a task, jobs run on the
 * calling thread. Jobs are cut into more tasks than threads (TASKS_PER_THREAD)
 * and taken one at a time, so a thread whose core is shared with another
 * process takes fewer of them instead of holding the others up. */

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

/* The CPUs a cgroup (v2) quota grants this process, rounded up; 0 when
 * there is no quota. A container limited to 2 CPUs on a 64-core host would
 * otherwise start 64 threads that take turns on 2 CPUs' worth of time. */
static int quota_cpus(void) {
  FILE *file = fopen("/sys/fs/cgroup/cpu.max", "r");
  if (!file) return 0;
  long long quota = 0, period = 0;
  char first[32] = {0};
  int read = fscanf(file, "%31s %lld", first, &period);
  fclose(file);
  if (read != 2 || strcmp(first, "max") == 0 || period <= 0) return 0;
  quota = atoll(first);
  return quota > 0 ? (int)((quota + period - 1) / period) : 0;
}

static void pool_start(void) {
  int threads = 0;
  const char *configured = getenv("MLIRC_NUM_THREADS");
  if (configured) threads = atoi(configured);
  if (threads <= 0) {
    cpu_set_t allowed;
    threads = sched_getaffinity(0, sizeof allowed, &allowed) == 0 ? CPU_COUNT(&allowed) : 1;
    int quota = quota_cpus();
    if (quota > 0 && quota < threads) threads = quota;
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
INTERNAL void pool_park(void) { atomic_store(&pool.parked, 1); }

INTERNAL int64_t pool_threads(void) {
  pthread_once(&pool.once, pool_start);
  return pool.workers + 1;
}

INTERNAL int64_t balanced_tasks(void) {
  return TASKS_PER_THREAD * pool_threads();
}

INTERNAL int64_t task_block(int64_t count) {
  int64_t tasks = balanced_tasks();
  return (count + tasks - 1) / tasks;
}

INTERNAL int64_t block_count(int64_t count, int64_t block) { return (count + block - 1) / block; }

/* Runs fn(context, task) for task in [0, count), spread over the pool. */
INTERNAL void parallel_for(int64_t count, task_fn fn, void *context) {
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
  /* The other threads' last tasks: spin briefly, then yield, in case one of
   * them waits for this core (more threads than the CPUs free to run them). */
  for (int spins = 0; atomic_load(&pool.done) < count;) {
    if (++spins < SPIN_ROUNDS)
      __builtin_ia32_pause();
    else
      sched_yield();
  }
  pthread_mutex_unlock(&pool.busy);
}

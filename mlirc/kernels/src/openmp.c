/* mlirc's kernel library: the OpenMP runtime calls of generated code.
 *
 * The loops stage turns a tiled op's parallel tile loop into an OpenMP
 * worksharing loop (scf.forall -> scf.parallel -> omp.parallel/omp.wsloop),
 * and LLVM's OpenMP lowering outlines its body and calls the libomp ABI
 * (__kmpc_fork_call and friends). Those calls land here, on the library's
 * own pool, so generated loops and kernels share one set of threads: two
 * pools spinning in turn took each other's cores (pool.c). The model's code
 * reaches these functions under their __kmpc_ names only inside mlirc (the
 * JIT binds the names to these addresses; `aot` renames the references in
 * the model's object), so a process that also loads a real OpenMP runtime
 * keeps it.
 *
 * Only what that lowering emits is here: one static (optionally chunked)
 * worksharing loop per parallel region, whose end needs no barrier (the
 * region's join waits for every thread). The team is TASKS_PER_THREAD
 * shares per pool thread; a region run inside a task, or while the pool is busy, runs its threads'
 * shares one after another on the caller, which gives the same results. */

#include <stdarg.h>

#include "kernels.h"

enum { MAX_CAPTURED = 24, SCHEDULE_STATIC_CHUNKED = 33 };

typedef void (*microtask_fn)(int32_t *global_tid, int32_t *bound_tid, ...);

struct parallel_region {
  microtask_fn body;
  int32_t count;
  int32_t team;
  void *captured[MAX_CAPTURED];
};

/* The calling thread's place in the region it runs a share of: LLVM's
 * lowering asks __kmpc_global_thread_num for the id it passes to the loop's
 * static init, rather than reading the outlined body's argument. */
static __thread int32_t region_team = 1, region_thread = 0;

static void invoke(struct parallel_region *region, int32_t *tid) {
  void **a = region->captured;
  int32_t bound = *tid;
  /* The outlined body takes its captured values as separate pointer
   * arguments; C calls a variadic-typed pointer with any count. */
  switch (region->count) {
  case 0: region->body(tid, &bound); break;
  case 1: region->body(tid, &bound, a[0]); break;
  case 2: region->body(tid, &bound, a[0], a[1]); break;
  case 3: region->body(tid, &bound, a[0], a[1], a[2]); break;
  case 4: region->body(tid, &bound, a[0], a[1], a[2], a[3]); break;
  case 5: region->body(tid, &bound, a[0], a[1], a[2], a[3], a[4]); break;
  case 6: region->body(tid, &bound, a[0], a[1], a[2], a[3], a[4], a[5]); break;
  case 7: region->body(tid, &bound, a[0], a[1], a[2], a[3], a[4], a[5], a[6]); break;
  case 8: region->body(tid, &bound, a[0], a[1], a[2], a[3], a[4], a[5], a[6], a[7]); break;
  default:
    region->body(tid, &bound, a[0], a[1], a[2], a[3], a[4], a[5], a[6], a[7], a[8], a[9],
                 a[10], a[11], a[12], a[13], a[14], a[15], a[16], a[17], a[18], a[19], a[20],
                 a[21], a[22], a[23]);
  }
}

static void run_share(void *context, int64_t task) {
  struct parallel_region *region = context;
  int32_t saved_team = region_team, saved_thread = region_thread, tid = (int32_t)task;
  region_team = region->team;
  region_thread = tid;
  invoke(region, &tid);
  region_team = saved_team;
  region_thread = saved_thread;
}

void mlirc_omp_fork_call(void *location, int32_t count, microtask_fn body, ...) {
  (void)location;
  /* More shares than threads, taken one at a time: a thread slowed down by
   * another process on its core takes fewer (the static schedule would
   * make every region wait for its one fixed share). */
  int32_t threads = (int32_t)pool_threads();
  struct parallel_region region = {body, count, threads > 1 ? threads * TASKS_PER_THREAD : 1,
                                   {0}};
  if (count < 0 || count > MAX_CAPTURED) {
    fprintf(stderr, "mlirc: a parallel region captures %d values (at most %d)\n", count,
            MAX_CAPTURED);
    abort();
  }
  va_list arguments;
  va_start(arguments, body);
  for (int32_t i = 0; i < count; ++i) region.captured[i] = va_arg(arguments, void *);
  va_end(arguments);
  parallel_for(region.team, run_share, &region);
}

int32_t mlirc_omp_global_thread_num(void *location) {
  (void)location;
  return region_thread;
}

/* One thread's share of [lower, upper] (inclusive, step `increment`), as
 * libomp's static schedules give it: unchunked, contiguous blocks differing
 * by at most one iteration; chunked, chunks dealt round-robin. */
#define STATIC_INIT(NAME, T)                                                                  \
  void NAME(void *location, int32_t tid, int32_t schedule, int32_t *last, T *lower, T *upper, \
            T *stride, T increment, T chunk) {                                                \
    (void)location;                                                                           \
    T team = (T)region_team;                                                                  \
    T step = increment < 0 ? (T)0 - increment : increment;                                    \
    T trips = (T)((*upper - *lower) / increment) + 1;                                         \
    if (schedule == SCHEDULE_STATIC_CHUNKED && chunk > 0) {                                   \
      *stride = chunk * team * increment;                                                     \
      *lower += (T)tid * chunk * increment;                                                   \
      *upper = *lower + chunk * increment - increment;                                        \
      if (last) *last = ((trips - 1) / chunk) % team == (T)tid;                               \
      return;                                                                                 \
    }                                                                                         \
    *stride = trips * increment;                                                              \
    if (trips < team) {                                                                       \
      if ((T)tid < trips) {                                                                   \
        *lower += (T)tid * increment;                                                         \
        *upper = *lower;                                                                      \
      } else {                                                                                \
        *lower = *upper + step;                                                               \
      }                                                                                       \
      if (last) *last = (T)tid == trips - 1;                                                  \
      return;                                                                                 \
    }                                                                                         \
    T share = trips / team, extra = trips % team, id = (T)tid;                                \
    *lower += increment * (id * share + (id < extra ? id : extra));                           \
    *upper = *lower + share * increment - (id < extra ? 0 : increment);                       \
    if (last) *last = id == team - 1;                                                         \
  }

STATIC_INIT(mlirc_omp_for_static_init_4, int32_t)
STATIC_INIT(mlirc_omp_for_static_init_4u, uint32_t)
STATIC_INIT(mlirc_omp_for_static_init_8, int64_t)
STATIC_INIT(mlirc_omp_for_static_init_8u, uint64_t)

void mlirc_omp_for_static_fini(void *location, int32_t tid) {
  (void)location, (void)tid;
}

/* Reached only at a worksharing loop's end, the last thing in the region:
 * the join that follows waits for every thread. */
void mlirc_omp_barrier(void *location, int32_t tid) {
  (void)location, (void)tid;
}

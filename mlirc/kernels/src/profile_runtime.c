/* Per-op timers for mlirc's profiling builds (passes/profile.py).
 *
 * The profiled entry function calls mlirc_profile_begin(id) and
 * mlirc_profile_end(id) around each top-level op; the time between them is
 * added to the op's counter. Python reads the counters with
 * mlirc_profile_read and clears them with mlirc_profile_reset.
 * Single-threaded callers only: the counters are plain statics. */

#include <stdint.h>
#include <string.h>
#include <time.h>

#define MLIRC_PROFILE_MAX_OPS 65536

static double total_seconds[MLIRC_PROFILE_MAX_OPS];
static int64_t calls[MLIRC_PROFILE_MAX_OPS];
static double started[MLIRC_PROFILE_MAX_OPS];

static double now(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

void mlirc_profile_begin(int64_t id) {
  if (id >= 0 && id < MLIRC_PROFILE_MAX_OPS) started[id] = now();
}

void mlirc_profile_end(int64_t id) {
  if (id < 0 || id >= MLIRC_PROFILE_MAX_OPS) return;
  total_seconds[id] += now() - started[id];
  calls[id] += 1;
}

/* Copies the first n counters: seconds[i] in total, count[i] calls. */
void mlirc_profile_read(double *seconds, int64_t *count, int64_t n) {
  if (n > MLIRC_PROFILE_MAX_OPS) n = MLIRC_PROFILE_MAX_OPS;
  memcpy(seconds, total_seconds, (size_t)n * sizeof(double));
  memcpy(count, calls, (size_t)n * sizeof(int64_t));
}

void mlirc_profile_reset(void) {
  memset(total_seconds, 0, sizeof(total_seconds));
  memset(calls, 0, sizeof(calls));
}

/* The portable kernel library's public entry points, for `aot` libraries
 * that must run on x86-64 machines other than the one that built them.
 *
 * buildspec.py compiles mlirc_kernels.c once per CPU level (generic:
 * x86-64, avx2: x86-64-v3, avx512: x86-64-v4), each copy's entry points
 * renamed <name>_<level> and hidden, and links them with this file. Each
 * public name here is a one-instruction trampoline that jumps through a
 * pointer, set when the library is loaded (a constructor) to the copy for
 * the best level this CPU runs; the jump leaves the arguments as they are,
 * whatever the entry point's signature. Every pointer is set to the same
 * level, so the copies' state (thread pool, buffer cache, packed weights)
 * is never shared between levels. (GNU indirect functions would do the
 * same at no cost, but the large-code-model objects that MLIR's
 * ExecutionEngine writes reach them through relocations GNU ld refuses.)
 *
 * MLIRC_TARGET_ISA=generic|avx2 asks for a lower level, e.g. to run the
 * AVX2 copy on an AVX-512 machine. */
#include <stdlib.h>

#include "../include/mlirc_kernels.h"
#include "entry_points.h"

enum { LEVEL_GENERIC, LEVEL_AVX2, LEVEL_AVX512 };

static int machine_level(void) {
  __builtin_cpu_init(); /* a constructor may run before libgcc's own */
  int avx2 = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") &&
             __builtin_cpu_supports("bmi2");
  if (avx2 && __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
      __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("avx512vl"))
    return LEVEL_AVX512;
  return avx2 ? LEVEL_AVX2 : LEVEL_GENERIC;
}

static int same_text(const char *a, const char *b) {
  while (*a && *a == *b) ++a, ++b;
  return *a == *b;
}

static int chosen_level(void) {
  int best = machine_level(), asked = best;
  const char *wanted = getenv("MLIRC_TARGET_ISA");
  if (wanted && same_text(wanted, "generic")) asked = LEVEL_GENERIC;
  if (wanted && same_text(wanted, "avx2")) asked = LEVEL_AVX2;
  return asked < best ? asked : best;
}

#define MLIRC_DISPATCH(name)                                                       \
  extern __typeof__(name) name##_generic __attribute__((visibility("hidden")));    \
  extern __typeof__(name) name##_avx2 __attribute__((visibility("hidden")));       \
  extern __typeof__(name) name##_avx512 __attribute__((visibility("hidden")));     \
  __attribute__((visibility("hidden"))) void *name##_target;                       \
  __asm__(".pushsection .text\n.globl " #name "\n.type " #name ", @function\n"     \
          #name ":\n\tjmp *" #name "_target(%rip)\n.size " #name ", .-" #name         \
          "\n.popsection\n");

MLIRC_ENTRY_POINTS(MLIRC_DISPATCH)

#define MLIRC_POINT(name) name##_target =                                           \
    level == LEVEL_AVX512 ? (void *)name##_avx512                                   \
    : level == LEVEL_AVX2 ? (void *)name##_avx2 : (void *)name##_generic;

__attribute__((constructor(101))) static void point_entries_at_level(void) {
  int level = chosen_level();
  MLIRC_ENTRY_POINTS(MLIRC_POINT)
}

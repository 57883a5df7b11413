/* The kernel library as it is built: every translation unit of src/ in
 * one, so that the register tiles and small helpers inline across files
 * (kernels.h explains). Each file also compiles on its own
 * (tests/test_kernel_sources.py checks). */
#define MLIRC_AMALGAMATION
#include "kernels.h"

#include "pool.c"
#include "buffers.c"
#include "gemm.c"
#include "maxpool.c"
#include "conv.c"
#include "packed_conv.c"
#include "winograd.c"
#include "winograd4.c"
#include "strided_conv.c"
#include "openmp.c"

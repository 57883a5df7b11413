/* The public entry points (include/mlirc_kernels.h), as an X-macro list:
 * the portable library (dispatch.c) defines each one, and buildspec.py
 * renames each in every CPU level's copy of the kernels. A test checks
 * that this list is the header's. */
#ifndef MLIRC_ENTRY_POINTS_H
#define MLIRC_ENTRY_POINTS_H

#define MLIRC_ENTRY_POINTS(X)               \
  X(mlirc_gemm_f32)                         \
  X(mlirc_gemm_f64)                         \
  X(mlirc_gemm_f32_batched)                 \
  X(mlirc_gemm_f64_batched)                 \
  X(mlirc_gemm_f32_packed)                  \
  X(mlirc_gemm_f32_packed_bias)             \
  X(mlirc_conv2d_nchw_f32)                  \
  X(mlirc_conv2d_nchw_bias_f32)             \
  X(mlirc_conv2d_nchw_bias_residual_f32)    \
  X(mlirc_conv2d_nchw_bias_pool_f32)        \
  X(mlirc_conv2d_nchw_bias_pool3x3s2_f32)   \
  X(mlirc_maxpool2d_nchw_f32)               \
  X(mlirc_sum_planes_f32)                   \
  X(_mlir_memref_to_llvm_alloc)             \
  X(_mlir_memref_to_llvm_free)              \
  X(mlirc_conv2d_kernel_fits)               \
  X(mlirc_kernel_runs)                      \
  X(mlirc_kernel_runs_reset)                \
  X(mlirc_kernels_isa)                       \
  X(mlirc_omp_fork_call)                     \
  X(mlirc_omp_global_thread_num)             \
  X(mlirc_omp_for_static_init_4)             \
  X(mlirc_omp_for_static_init_4u)            \
  X(mlirc_omp_for_static_init_8)             \
  X(mlirc_omp_for_static_init_8u)            \
  X(mlirc_omp_for_static_fini)               \
  X(mlirc_omp_barrier)

#endif

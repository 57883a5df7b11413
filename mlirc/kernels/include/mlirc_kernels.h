/* mlirc's kernel library: the entry points that compiled models call.
 *
 * Every operand is an MLIR memref passed expanded, the way MLIR's LLVM
 * lowering passes a strided memref to an external function: allocated
 * pointer, aligned pointer, offset, sizes, strides (MLIRC_MEMREF1..4
 * below). Tensors are row-major; a 2-D GEMM operand may arrive as a
 * transposed view (unit row stride), which becomes a BLAS transpose flag.
 *
 * Which kernel a convolution runs is decided by the compiler (the
 * blas-offload pass, mlirc/kernels/choice.py) and passed as `kernel`, one
 * of enum mlirc_conv_kernel; it is visible in the IR as the call's
 * `mlirc.kernel` attribute. The library runs exactly that kernel. A kernel
 * that does not take the shape (mlirc_conv2d_kernel_fits says 0; a
 * compiler bug, or an artifact built for another CPU level) falls back to
 * im2col + BLAS with one warning on stderr and is counted as such.
 *
 * `slot`: a zero-initialised i64 global of the calling module, one per call
 * site, in which the library keeps a constant operand's packed or
 * transformed copy (made once, at the site's first call).
 *
 * Every entry point is thread-safe and spreads its work over the library's
 * own thread pool (MLIRC_NUM_THREADS threads, default: the cores).
 */
#ifndef MLIRC_KERNELS_H
#define MLIRC_KERNELS_H

#include <stddef.h>
#include <stdint.h>

#define MLIRC_MEMREF1(p) void *p##_allocated, void *p##_aligned, int64_t p##_offset, \
  int64_t p##_size, int64_t p##_stride
#define MLIRC_MEMREF2(p) void *p##_allocated, void *p##_aligned, int64_t p##_offset, \
  int64_t p##_size0, int64_t p##_size1, int64_t p##_stride0, int64_t p##_stride1
#define MLIRC_MEMREF3(p) void *p##_allocated, void *p##_aligned, int64_t p##_offset, \
  int64_t p##_size0, int64_t p##_size1, int64_t p##_size2, int64_t p##_stride0,    \
  int64_t p##_stride1, int64_t p##_stride2
#define MLIRC_MEMREF4(p) void *p##_allocated, void *p##_aligned, int64_t p##_offset, \
  int64_t p##_n, int64_t p##_c, int64_t p##_h, int64_t p##_w, int64_t p##_s0,      \
  int64_t p##_s1, int64_t p##_s2, int64_t p##_s3

/* The convolution kernels; the numbers are part of the ABI (choice.py). */
enum mlirc_conv_kernel {
  MLIRC_CONV_IM2COL_BLAS = 0,      /* im2col (skipped for 1x1/1) + SGEMM: every shape */
  MLIRC_CONV_DIRECT = 1,           /* register-tiled 3x3/KxK, stride 1, rows of 16k */
  MLIRC_CONV_STRIDED = 2,          /* image stems: stride 2, <= 8 channels */
  MLIRC_CONV_WINOGRAD_F2X2 = 3,    /* F(2x2, 3x3), point GEMMs on BLAS */
  MLIRC_CONV_WINOGRAD_F2X2_PACKED = 4, /* F(2x2, 3x3), point GEMMs on packed panels */
  MLIRC_CONV_WINOGRAD_F4X4 = 5,    /* F(4x4, 3x3), packed panels (AVX-512 builds) */
  MLIRC_CONV_PACKED = 6,           /* packed-filter GEMM, taps read in place */
  MLIRC_CONV_KERNELS = 7
};

/* Counters of kernel runs, for tests that must prove a path ran. */
enum mlirc_kernel_counter {
  MLIRC_RUNS_GEMM_BLAS = MLIRC_CONV_KERNELS, /* mlirc_gemm_{f32,f64}{,_batched} */
  MLIRC_RUNS_GEMM_PACKED,                    /* mlirc_gemm_f32_packed{,_bias} */
  MLIRC_RUNS_CONV_FALLBACK,                  /* a chosen kernel did not fit */
  MLIRC_RUNS_COUNTERS
};

/* ---- GEMM: C (M x N) = A (M x K) * B (K x N) ---------------------------- */

/* C += A*B (accumulate != 0) or C = A*B, through cblas_{s,d}gemm, the GEMM
 * cut into slices over the thread pool. */
void mlirc_gemm_f32(MLIRC_MEMREF2(a), MLIRC_MEMREF2(b), MLIRC_MEMREF2(c), int64_t accumulate);
void mlirc_gemm_f64(MLIRC_MEMREF2(a), MLIRC_MEMREF2(b), MLIRC_MEMREF2(c), int64_t accumulate);
/* The same for each of a batch (dimension 0) of GEMMs. */
void mlirc_gemm_f32_batched(MLIRC_MEMREF3(a), MLIRC_MEMREF3(b), MLIRC_MEMREF3(c),
                            int64_t accumulate);
void mlirc_gemm_f64_batched(MLIRC_MEMREF3(a), MLIRC_MEMREF3(b), MLIRC_MEMREF3(c),
                            int64_t accumulate);
/* B constant (a model's weights): packed once into `slot` as 32-column
 * panels; C row-major with unit column stride. C [+]= A*B. */
void mlirc_gemm_f32_packed(MLIRC_MEMREF2(a), MLIRC_MEMREF2(b), MLIRC_MEMREF2(c),
                           int64_t accumulate, MLIRC_MEMREF1(slot));
/* C = act(A*B + bias[column]), act ReLU (relu != 0) or the identity. */
void mlirc_gemm_f32_packed_bias(MLIRC_MEMREF2(a), MLIRC_MEMREF2(b), MLIRC_MEMREF2(c),
                                MLIRC_MEMREF1(bias), int64_t relu, MLIRC_MEMREF1(slot));

/* ---- Convolution, NCHW input, FCHW filter, f32 -------------------------- */

/* out += conv(in, filter); `in` unpadded, the padding pad_h/pad_w zeros. */
void mlirc_conv2d_nchw_f32(MLIRC_MEMREF4(in), MLIRC_MEMREF4(filter), MLIRC_MEMREF4(out),
                           int64_t stride_h, int64_t stride_w, int64_t dilation_h,
                           int64_t dilation_w, int64_t pad_h, int64_t pad_w, int64_t kernel,
                           MLIRC_MEMREF1(slot));
/* out = act(conv(in, filter) + bias[f]), act ReLU (relu != 0) or identity. */
void mlirc_conv2d_nchw_bias_f32(MLIRC_MEMREF4(in), MLIRC_MEMREF4(filter), MLIRC_MEMREF4(out),
                                MLIRC_MEMREF1(bias), int64_t stride_h, int64_t stride_w,
                                int64_t dilation_h, int64_t dilation_w, int64_t pad_h,
                                int64_t pad_w, int64_t relu, int64_t kernel,
                                MLIRC_MEMREF1(slot));
/* out = act(conv(in, filter) + bias[f] + residual); `out` may be the
 * residual's own buffer (mlirc-residual-in-place) or `in`'s. */
void mlirc_conv2d_nchw_bias_residual_f32(MLIRC_MEMREF4(in), MLIRC_MEMREF4(filter),
                                         MLIRC_MEMREF4(out), MLIRC_MEMREF1(bias),
                                         MLIRC_MEMREF4(residual), int64_t stride_h,
                                         int64_t stride_w, int64_t dilation_h,
                                         int64_t dilation_w, int64_t pad_h, int64_t pad_w,
                                         int64_t relu, int64_t kernel, MLIRC_MEMREF1(slot));
/* out = maxpool2x2(act(conv + bias)): `out` has the pooled shape. */
void mlirc_conv2d_nchw_bias_pool_f32(MLIRC_MEMREF4(in), MLIRC_MEMREF4(filter),
                                     MLIRC_MEMREF4(out), MLIRC_MEMREF1(bias), int64_t stride_h,
                                     int64_t stride_w, int64_t dilation_h, int64_t dilation_w,
                                     int64_t pad_h, int64_t pad_w, int64_t relu, int64_t kernel,
                                     MLIRC_MEMREF1(slot));
/* out = maxpool3x3/2, padding 1 (act(conv + bias)): ResNet's stem. */
void mlirc_conv2d_nchw_bias_pool3x3s2_f32(MLIRC_MEMREF4(in), MLIRC_MEMREF4(filter),
                                          MLIRC_MEMREF4(out), MLIRC_MEMREF1(bias),
                                          int64_t stride_h, int64_t stride_w,
                                          int64_t dilation_h, int64_t dilation_w, int64_t pad_h,
                                          int64_t pad_w, int64_t relu, int64_t kernel,
                                          MLIRC_MEMREF1(slot));

/* ---- Pooling and reductions -------------------------------------------- */

/* out = max over windows of in (NCHW, -inf padding); accumulate: max with out. */
void mlirc_maxpool2d_nchw_f32(MLIRC_MEMREF4(in), MLIRC_MEMREF4(out), int64_t kernel_h,
                              int64_t kernel_w, int64_t stride_h, int64_t stride_w,
                              int64_t dilation_h, int64_t dilation_w, int64_t pad_h,
                              int64_t pad_w, int64_t accumulate);
/* out[n, c, 0, 0] (+)= sum of in[n, c, :, :] (global average pool's sum). */
void mlirc_sum_planes_f32(MLIRC_MEMREF4(in), MLIRC_MEMREF4(out), int64_t accumulate);

/* ---- Memory: what the llvm stage's allocations call with BLAS on -------- */

void *_mlir_memref_to_llvm_alloc(size_t size);
void _mlir_memref_to_llvm_free(void *pointer);

/* ---- Introspection ------------------------------------------------------ */

/* 1 when `kernel` takes this convolution in this build (its CPU level),
 * else 0. The compiler asks this before it chooses. */
int64_t mlirc_conv2d_kernel_fits(int64_t kernel, int64_t images, int64_t channels,
                                 int64_t in_h, int64_t in_w, int64_t filters, int64_t kh,
                                 int64_t kw, int64_t stride_h, int64_t stride_w,
                                 int64_t dilation_h, int64_t dilation_w, int64_t pad_h,
                                 int64_t pad_w);
/* Copies the first n run counters (indexes: enum mlirc_conv_kernel, then
 * enum mlirc_kernel_counter); reset sets them to zero. */
void mlirc_kernel_runs(int64_t *counts, int64_t n);
void mlirc_kernel_runs_reset(void);
/* The CPU level this build was compiled for: "avx512", "avx2" or "generic". */
const char *mlirc_kernels_isa(void);

/* ---- Threads for generated code ----------------------------------------- */

/* The subset of the OpenMP runtime ABI (libomp's __kmpc_* functions) that
 * generated parallel loops call, on this library's thread pool: mlirc
 * binds the model's __kmpc_<name> references to mlirc_omp_<name>. Only
 * one static worksharing loop per parallel region is supported. */
void mlirc_omp_fork_call(void *location, int32_t count,
                         void (*body)(int32_t *global_tid, int32_t *bound_tid, ...), ...);
int32_t mlirc_omp_global_thread_num(void *location);
void mlirc_omp_for_static_init_4(void *location, int32_t tid, int32_t schedule, int32_t *last,
                                 int32_t *lower, int32_t *upper, int32_t *stride,
                                 int32_t increment, int32_t chunk);
void mlirc_omp_for_static_init_4u(void *location, int32_t tid, int32_t schedule, int32_t *last,
                                  uint32_t *lower, uint32_t *upper, uint32_t *stride,
                                  uint32_t increment, uint32_t chunk);
void mlirc_omp_for_static_init_8(void *location, int32_t tid, int32_t schedule, int32_t *last,
                                 int64_t *lower, int64_t *upper, int64_t *stride,
                                 int64_t increment, int64_t chunk);
void mlirc_omp_for_static_init_8u(void *location, int32_t tid, int32_t schedule, int32_t *last,
                                  uint64_t *lower, uint64_t *upper, uint64_t *stride,
                                  uint64_t increment, uint64_t chunk);
void mlirc_omp_for_static_fini(void *location, int32_t tid);
void mlirc_omp_barrier(void *location, int32_t tid);

#endif

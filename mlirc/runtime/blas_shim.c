/* mlirc's BLAS shim: GEMM calls on MLIR memref descriptors.
 *
 * The blas-offload pass turns linalg.matmul / batch_matmul on memrefs into
 * calls to mlirc_gemm_{f32,f64}{,_batched}, passing each strided memref the
 * way MLIR's LLVM lowering expands it (allocated, aligned, offset, sizes,
 * strides: no C-interface wrappers, which an object-file dump cannot link). A transposed operand arrives as a view with unit row stride,
 * so transposes become BLAS flags instead of copies. The cblas function is
 * found at first use with dlsym: the process (JIT) or the linked library
 * (AOT) provides cblas_sgemm, or OpenBLAS's scipy_-prefixed build of it.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

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

#define GEMM(NAME, T, FN, SYMBOL)                                                          \
  static void NAME##_one(int64_t m, int64_t n, int64_t k, const T *a, const int64_t *sa,    \
                         const T *b, const int64_t *sb, T *c, const int64_t *sc) {         \
    static FN gemm;                                                                         \
    int ta, tb, lda, ldb;                                                                   \
    if (!gemm) gemm = (FN)find(SYMBOL);                                                     \
    layout(m, k, sa, &ta, &lda);                                                            \
    layout(k, n, sb, &tb, &ldb);                                                            \
    gemm(RowMajor, ta, tb, (int)m, (int)n, (int)k, 1, a, lda, b, ldb, 1, c,                 \
         (int)(sc[0] > n ? sc[0] : n));                                                     \
  }                                                                                         \
  void mlirc_gemm_##T(MEMREF2(a), MEMREF2(b), MEMREF2(c)) {                                 \
    int64_t sa[2] = {a_stride0, a_stride1}, sb[2] = {b_stride0, b_stride1},                 \
            sc[2] = {c_stride0, c_stride1};                                                 \
    NAME##_one(a_size0, b_size1, a_size1, (T *)a_aligned + a_offset, sa,                    \
               (T *)b_aligned + b_offset, sb, (T *)c_aligned + c_offset, sc);               \
  }                                                                                         \
  void mlirc_gemm_##T##_batched(MEMREF3(a), MEMREF3(b), MEMREF3(c)) {                       \
    int64_t sa[2] = {a_stride1, a_stride2}, sb[2] = {b_stride1, b_stride2},                 \
            sc[2] = {c_stride1, c_stride2};                                                 \
    for (int64_t i = 0; i < c_size0; ++i)                                                   \
      NAME##_one(a_size1, b_size2, a_size2, (T *)a_aligned + a_offset + i * a_stride0, sa,  \
                 (T *)b_aligned + b_offset + i * b_stride0, sb,                             \
                 (T *)c_aligned + c_offset + i * c_stride0, sc);                            \
  }

typedef float f32;
typedef double f64;
GEMM(sgemm, f32, sgemm_fn, "cblas_sgemm")
GEMM(dgemm, f64, dgemm_fn, "cblas_dgemm")

/* Convolution as im2col + GEMM, per image: out[n] (F x OH*OW) +=
 * filter (F x C*KH*KW) * columns (C*KH*KW x OH*OW). Operands are contiguous
 * NCHW / FCHW memrefs (the pass checks); padding was applied before. */
#define MEMREF4(p) void *p##_allocated, void *p##_aligned, int64_t p##_offset, int64_t p##_n, \
  int64_t p##_c, int64_t p##_h, int64_t p##_w, int64_t p##_s0, int64_t p##_s1, int64_t p##_s2, \
  int64_t p##_s3
void mlirc_conv2d_nchw_f32(MEMREF4(in), MEMREF4(filter), MEMREF4(out), int64_t stride_h,
                           int64_t stride_w, int64_t dilation_h, int64_t dilation_w) {
  static sgemm_fn gemm;
  if (!gemm) gemm = (sgemm_fn)find("cblas_sgemm");
  const float *input = (const float *)in_aligned + in_offset;
  const float *weights = (const float *)filter_aligned + filter_offset;
  float *output = (float *)out_aligned + out_offset;
  int64_t channels = in_c, kh = filter_h, kw = filter_w, oh = out_h, ow = out_w;
  int64_t rows = channels * kh * kw, cols = oh * ow;
  /* A 1x1 convolution with unit strides reads its columns straight from the
   * image (C x H*W, row-major): no im2col copy. */
  int direct = kh == 1 && kw == 1 && stride_h == 1 && stride_w == 1 &&
               in_h == oh && in_w == ow && in_s2 == in_w && in_s1 == in_h * in_w;
  float *columns = direct ? NULL : malloc(sizeof(float) * rows * cols);
  for (int64_t n = 0; n < in_n; ++n) {
    const float *image = input + n * in_s0;
    if (direct) {
      gemm(RowMajor, NoTrans, NoTrans, (int)out_c, (int)cols, (int)rows, 1.0f, weights,
           (int)rows, image, (int)cols, 1.0f, output + n * out_s0, (int)cols);
      continue;
    }
    for (int64_t c = 0; c < channels; ++c)
      for (int64_t i = 0; i < kh; ++i)
        for (int64_t j = 0; j < kw; ++j) {
          float *row = columns + ((c * kh + i) * kw + j) * cols;
          for (int64_t y = 0; y < oh; ++y) {
            const float *source = image + c * in_s1 + (y * stride_h + i * dilation_h) * in_s2 +
                                  j * dilation_w;
            for (int64_t x = 0; x < ow; ++x) row[y * ow + x] = source[x * stride_w];
          }
        }
    gemm(RowMajor, NoTrans, NoTrans, (int)out_c, (int)cols, (int)rows, 1.0f, weights,
         (int)rows, columns, (int)cols, 1.0f, output + n * out_s0, (int)cols);
  }
  free(columns);
}

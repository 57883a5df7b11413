/* Checks the BLAS shim's convolution, pooling and packed-GEMM paths against
 * naive loops, built with whatever -march the test gives:
 * tests/test_shim_portable.py builds it for the host and for x86-64-v3
 * (AVX2, no AVX-512), so that the shim's paths without AVX-512 (which this
 * project's machines never take in the model tests) are checked too.
 *
 *   shim_check BLAS_LIBRARY    prints one line per case; exit status: failures
 */
#include "../../mlirc/kernels/src/mlirc_kernels.c"

#include <math.h>

static float *random_floats(int64_t count) {
  float *data = aligned_alloc(64, sizeof(float) * (size_t)((count + 15) / 16 * 16));
  for (int64_t i = 0; i < count; ++i) data[i] = (float)rand() / (float)RAND_MAX - 0.5f;
  return data;
}

/* act(conv(x, w) + bias [+ *residual]) at one output, in double */
static double naive_conv(const conv_shape *s, const float *x, const float *w, int64_t n,
                         int64_t f, int64_t oy, int64_t ox, const float *residual) {
  double sum = (s->bias ? s->bias[f] : 0.0) + (residual ? *residual : 0.0);
  for (int64_t c = 0; c < s->channels; ++c)
    for (int64_t i = 0; i < s->kh; ++i)
      for (int64_t j = 0; j < s->kw; ++j) {
        int64_t iy = oy * s->stride_h + i * s->dilation_h - s->pad_h;
        int64_t ix = ox * s->stride_w + j * s->dilation_w - s->pad_w;
        if (iy < 0 || iy >= s->in_h || ix < 0 || ix >= s->in_w) continue;
        sum += (double)x[((n * s->channels + c) * s->in_h + iy) * s->in_w + ix] *
               w[((f * s->channels + c) * s->kh + i) * s->kw + j];
      }
  return s->relu && sum < 0 ? 0.0 : sum;
}

/* One convolution through conv2d with the kernel `kernel` (enum
 * mlirc_conv_kernel), or through the conv+pool entry's logic with `pool`. */
enum { RESIDUAL_IN_PLACE = 2 };

static const char *KERNEL_NAMES[] = {"im2col_blas", "direct", "strided", "winograd_f2x2",
                                     "winograd_f2x2_packed", "winograd_f4x4", "packed"};

static int check_conv_with(int64_t chosen, const char *name, int64_t images, int64_t channels, int64_t filters,
                      int64_t height, int64_t width, int64_t kernel, int64_t stride,
                      int64_t pad, int pool, int with_residual) {
  int64_t oh = (height + 2 * pad - kernel) / stride + 1;
  int64_t ow = (width + 2 * pad - kernel) / stride + 1;
  int64_t ph = pool ? oh / 2 : oh, pw = pool ? ow / 2 : ow;
  float *x = random_floats(images * channels * height * width);
  float *w = random_floats(filters * channels * kernel * kernel);
  float *bias = random_floats(filters);
  float *out = random_floats(images * filters * ph * pw);
  float *residual = with_residual ? random_floats(images * filters * oh * ow) : NULL;
  /* RESIDUAL_IN_PLACE: the output buffer holds the residual (as after
   * mlirc-residual-in-place); `residual` keeps a copy for the reference */
  float *shortcut = residual;
  if (with_residual == RESIDUAL_IN_PLACE) {
    memcpy(out, residual, sizeof(float) * images * filters * oh * ow);
    shortcut = out;
  }
  conv_shape shape = {channels, height, width, filters, kernel, kernel, oh, ow, stride, stride,
                      1, 1, pad, pad, bias, 1, pool};
  int64_t slot = 0;
  if (pool && chosen == MLIRC_CONV_DIRECT) {
    direct_conv(&shape, images, x, channels * height * width, w, out, filters * ph * pw, NULL);
  } else if (pool) {
    shape.pool = 0;
    float *full = random_floats(images * filters * oh * ow);
    conv2d(&shape, images, x, channels * height * width, w, full, filters * oh * ow, NULL,
           chosen, &slot);
    maxpool_job job = {full, out, filters * oh * ow, oh * ow, filters * ph * pw, ph * pw,
                       filters, oh, ow, ph, pw, 2, 2, 2, 2, 1, 1, 0, 0, 0, 0, 0};
    run_maxpool(&job, images);
    free(full);
    shape.pool = 1;
  } else {
    conv2d(&shape, images, x, channels * height * width, w, out, filters * oh * ow, shortcut,
           chosen, &slot);
  }
  int64_t bad = 0;
  double worst = 0.0;
  for (int64_t n = 0; n < images; ++n)
    for (int64_t f = 0; f < filters; ++f)
      for (int64_t y = 0; y < ph; ++y)
        for (int64_t xo = 0; xo < pw; ++xo) {
          double want = -INFINITY;
          for (int64_t dy = 0; dy < (pool ? 2 : 1); ++dy)
            for (int64_t dx = 0; dx < (pool ? 2 : 1); ++dx) {
              double value = naive_conv(&shape, x, w, n, f, (pool ? 2 : 1) * y + dy,
                                        (pool ? 2 : 1) * xo + dx,
                                        residual ? residual + ((n * filters + f) * oh + y) * ow + xo
                                                 : NULL);
              if (value > want) want = value;
            }
          double error = fabs(out[((n * filters + f) * ph + y) * pw + xo] - want);
          if (!(error <= 1e-4 + 1e-4 * fabs(want))) ++bad;
          if (error > worst) worst = error;
        }
  printf("%-28s %-20s %s (%lld wrong, max error %.1e)\n", name, KERNEL_NAMES[chosen],
         bad ? "FAIL" : "ok", (long long)bad, worst);
  free(x), free(w), free(bias), free(out), free(residual);
  return bad != 0;
}

/* The convolution on every kernel that takes it in this build; a case
 * that names a kernel (`expected`, -1 for none) fails when that one does
 * not take it, so a case named after a path proves the path ran. */
static int check_conv_expecting(int64_t expected, const char *name, int64_t images,
                                int64_t channels, int64_t filters, int64_t height, int64_t width,
                                int64_t kernel, int64_t stride, int64_t pad, int pool,
                                int with_residual) {
  int64_t oh = (height + 2 * pad - kernel) / stride + 1;
  int64_t ow = (width + 2 * pad - kernel) / stride + 1;
  conv_shape shape = {channels, height, width, filters, kernel, kernel, oh, ow, stride, stride,
                      1, 1, pad, pad, NULL, 1, 0};
  int failures = 0;
  for (int64_t chosen = 0; chosen < MLIRC_CONV_KERNELS; ++chosen) {
    if (!conv_kernel_fits(chosen, &shape, images)) {
      if (chosen == expected) {
        printf("%-28s %-20s FAIL (does not take the case it is named for)\n", name,
               KERNEL_NAMES[chosen]);
        ++failures;
      }
      continue;
    }
    mlirc_kernel_runs_reset();
    failures += check_conv_with(chosen, name, images, channels, filters, height, width, kernel,
                                stride, pad, pool, with_residual);
    int64_t runs[MLIRC_RUNS_COUNTERS];
    mlirc_kernel_runs(runs, MLIRC_RUNS_COUNTERS);
    if (!pool && (runs[chosen] != 1 || runs[MLIRC_RUNS_CONV_FALLBACK] != 0)) {
      printf("%-28s %-20s FAIL (ran %lld times, %lld fallbacks)\n", name, KERNEL_NAMES[chosen],
             (long long)runs[chosen], (long long)runs[MLIRC_RUNS_CONV_FALLBACK]);
      ++failures;
    }
  }
  return failures;
}

/* Kernels whose tiles need AVX-512: other builds never take them. */
#ifdef __AVX512F__
#define AVX512_ONLY(kernel) (kernel)
#else
#define AVX512_ONLY(kernel) (-1)
#endif

/* The stem's 3x3, stride-2, padding-1 max pool folded into the strided
 * convolution (strided_conv_pooled) against the convolution's own output,
 * pooled here. */
static int check_stem_pool(const char *name, int64_t images, int64_t channels, int64_t filters,
                           int64_t size) {
  int64_t conv = (size + 2 * 3 - 7) / 2 + 1, pooled = (conv + 2 - 3) / 2 + 1;
  float *x = random_floats(images * channels * size * size);
  float *w = random_floats(filters * channels * 49);
  float *bias = random_floats(filters);
  float *full = random_floats(images * filters * conv * conv);
  float *out = random_floats(images * filters * pooled * pooled);
  conv_shape shape = {channels, size, size, filters, 7, 7, conv, conv, 2, 2, 1, 1, 3, 3, bias,
                      1, 0};
  if (!strided_conv_pooled_fits(&shape)) {
    printf("%-28s skipped (no AVX-512)\n", name);
    free(x), free(w), free(bias), free(full), free(out);
    return 0;
  }
  strided_conv(&shape, images, x, channels * size * size, w, full, filters * conv * conv, NULL);
  strided_conv_pooled(&shape, images, x, channels * size * size, w, out,
                      filters * pooled * pooled);
  release_call_scratch();
  int64_t bad = 0;
  for (int64_t p = 0; p < images * filters; ++p)
    for (int64_t y = 0; y < pooled; ++y)
      for (int64_t xo = 0; xo < pooled; ++xo) {
        float want = -INFINITY;
        for (int64_t iy = 2 * y - 1; iy <= 2 * y + 1; ++iy)
          for (int64_t ix = 2 * xo - 1; ix <= 2 * xo + 1; ++ix)
            if (iy >= 0 && iy < conv && ix >= 0 && ix < conv &&
                full[(p * conv + iy) * conv + ix] > want)
              want = full[(p * conv + iy) * conv + ix];
        if (out[(p * pooled + y) * pooled + xo] != want) ++bad;
      }
  printf("%-28s %s (%lld wrong)\n", name, bad ? "FAIL" : "ok", (long long)bad);
  free(x), free(w), free(bias), free(full), free(out);
  return bad != 0;
}

static int check_maxpool(const char *name, int64_t planes, int64_t size, int64_t kernel,
                         int64_t stride, int64_t pad) {
  int64_t out_size = (size + 2 * pad - kernel) / stride + 1;
  float *x = random_floats(planes * size * size);
  float *out = random_floats(planes * out_size * out_size);
  maxpool_job job = {x, out, planes * size * size, size * size, planes * out_size * out_size,
                     out_size * out_size, planes, size, size, out_size, out_size, kernel, kernel,
                     stride, stride, 1, 1, pad, pad, 0, 0, 0};
  run_maxpool(&job, 1);
  int64_t bad = 0;
  for (int64_t p = 0; p < planes; ++p)
    for (int64_t y = 0; y < out_size; ++y)
      for (int64_t xo = 0; xo < out_size; ++xo) {
        float want = -INFINITY;
        for (int64_t i = 0; i < kernel; ++i)
          for (int64_t j = 0; j < kernel; ++j) {
            int64_t iy = y * stride + i - pad, ix = xo * stride + j - pad;
            if (iy < 0 || iy >= size || ix < 0 || ix >= size) continue;
            if (x[(p * size + iy) * size + ix] > want) want = x[(p * size + iy) * size + ix];
          }
        if (out[(p * out_size + y) * out_size + xo] != want) ++bad;
      }
  printf("%-28s %s (%lld wrong)\n", name, bad ? "FAIL" : "ok", (long long)bad);
  free(x), free(out);
  return bad != 0;
}

/* C = relu(A * B + bias) on the packed-weights GEMM (B packed into panels
 * once, as for a constant weight): the mlp's and transformer's kernel. */
static int check_packed_gemm(const char *name, int64_t m, int64_t k, int64_t n) {
  float *a = random_floats(m * k), *b = random_floats(k * n), *bias = random_floats(n);
  float *c = random_floats(m * n);
  int64_t slot = 0;
  const float *panels = packed_panels(&slot, b, k, n, n, 1);
  packed_job job = {m, k, n, k, 1, n, a, panels, bias, c, 0, 1};
  parallel_for((n + PACK_COLUMNS - 1) / PACK_COLUMNS, packed_task, &job);
  int64_t bad = 0;
  for (int64_t i = 0; i < m; ++i)
    for (int64_t j = 0; j < n; ++j) {
      double want = bias[j];
      for (int64_t p = 0; p < k; ++p) want += (double)a[i * k + p] * b[p * n + j];
      if (want < 0) want = 0;
      if (!(fabs(c[i * n + j] - want) <= 1e-4 + 1e-4 * fabs(want))) ++bad;
    }
  printf("%-28s %s (%lld wrong)\n", name, bad ? "FAIL" : "ok", (long long)bad);
  free(a), free(b), free(bias), free(c);
  return bad != 0;
}

/* The compiled code's allocations (buffers.c): aligned, writable,
 * and a large block freed last handed to the next allocation it fits. */
static int check_buffer_cache(void) {
  char *small = _mlir_memref_to_llvm_alloc(100);
  char *large = _mlir_memref_to_llvm_alloc(1 << 20);
  int bad = ((uintptr_t)small % 64) || ((uintptr_t)large % 64);
  memset(small, 1, 100);
  memset(large, 2, 1 << 20);
  _mlir_memref_to_llvm_free(small);
  _mlir_memref_to_llvm_free(large);
  char *other = _mlir_memref_to_llvm_alloc(100 << 10); /* 1 MB is too large for it */
  char *again = _mlir_memref_to_llvm_alloc(900 << 10); /* fits: 1 MB <= 2 x 900 KB */
  bad |= again != large || other == large;
  memset(again, 3, 900 << 10);
  memset(other, 4, 100 << 10);
  _mlir_memref_to_llvm_free(again);
  _mlir_memref_to_llvm_free(other);
  _mlir_memref_to_llvm_free(NULL);
  printf("%-28s %s\n", "buffer cache", bad ? "FAIL" : "ok");
  return bad;
}

int main(int argc, char **argv) {
  if (argc < 2 || !dlopen(argv[1], RTLD_NOW | RTLD_GLOBAL)) {
    fprintf(stderr, "usage: shim_check BLAS_LIBRARY (a loadable BLAS)\n");
    return 100;
  }
  srand(1);
  int failures = 0;
  /* name, images, channels, filters, height, width, kernel, stride, pad, pool, residual
   * (1, or RESIDUAL_IN_PLACE: the output buffer is the residual) */
  failures += check_conv_expecting(AVX512_ONLY(MLIRC_CONV_DIRECT), "direct 3x3 16 rows", 2, 5, 8, 16, 48, 3, 1, 1, 0, 0);
  failures += check_conv_expecting(AVX512_ONLY(MLIRC_CONV_DIRECT), "direct 3x3 8 rows x 2", 2, 5, 8, 8, 32, 3, 1, 1, 0, 0);
  failures += check_conv_expecting(AVX512_ONLY(MLIRC_CONV_DIRECT), "direct 3x3 8 rows", 2, 5, 8, 24, 16, 3, 1, 1, 0, 0);
  failures += check_conv_expecting(AVX512_ONLY(MLIRC_CONV_DIRECT), "direct 5x5", 1, 5, 4, 16, 16, 5, 1, 2, 0, 0);
  failures += check_conv_expecting(AVX512_ONLY(MLIRC_CONV_DIRECT), "direct 3x3 + pool", 4, 16, 32, 16, 16, 3, 1, 1, 1, 0);
  failures += check_conv_expecting(MLIRC_CONV_WINOGRAD_F2X2, "winograd 8x8", 4, 32, 64, 8, 8, 3, 1, 1, 0, 0);
  failures += check_conv_expecting(MLIRC_CONV_WINOGRAD_F2X2, "winograd 8x8 + pool", 4, 32, 64, 8, 8, 3, 1, 1, 1, 0);
  failures += check_conv_expecting(MLIRC_CONV_WINOGRAD_F2X2, "winograd 10x8", 2, 16, 16, 10, 8, 3, 1, 1, 0, 0);
  failures += check_conv_expecting(MLIRC_CONV_WINOGRAD_F2X2, "winograd 7x7", 4, 16, 16, 7, 7, 3, 1, 1, 0, 0);
  failures += check_conv_expecting(MLIRC_CONV_WINOGRAD_F2X2, "winograd 13x13", 2, 16, 16, 13, 13, 3, 1, 1, 0, 0);
  failures += check_conv_expecting(MLIRC_CONV_WINOGRAD_F2X2, "winograd 34x34", 1, 16, 16, 34, 34, 3, 1, 1, 0, 0);
  failures += check_conv_expecting(MLIRC_CONV_WINOGRAD_F2X2, "winograd 56x56 (tile rows)", 1, 16, 16, 56, 56, 3, 1, 1, 0, 0);
  failures += check_conv_expecting(MLIRC_CONV_WINOGRAD_F2X2, "winograd 24x26 (tile rows)", 2, 16, 16, 24, 26, 3, 1, 1, 0, 0);
  failures += check_conv_expecting(MLIRC_CONV_WINOGRAD_F2X2, "winograd 27x25 (tile rows)", 1, 16, 16, 27, 25, 3, 1, 1, 0, 0);
  failures += check_conv_expecting(AVX512_ONLY(MLIRC_CONV_WINOGRAD_F2X2_PACKED), "winograd packed 14x14", 1, 64, 40, 14, 14, 3, 1, 1, 0, 0);
  failures += check_conv_expecting(AVX512_ONLY(MLIRC_CONV_WINOGRAD_F4X4), "winograd4 20x20 + residual", 2, 64, 40, 20, 20, 3, 1, 1, 0, 1);
  failures += check_conv_expecting(AVX512_ONLY(MLIRC_CONV_WINOGRAD_F4X4), "winograd4 28x72", 1, 64, 32, 28, 72, 3, 1, 1, 0, 0);
  failures += check_conv_expecting(AVX512_ONLY(MLIRC_CONV_WINOGRAD_F4X4), "winograd4 unpadded 22x22", 1, 64, 32, 22, 22, 3, 1, 0, 0, 0);
  failures += check_conv_expecting(MLIRC_CONV_IM2COL_BLAS, "im2col stride 2", 2, 3, 8, 17, 17, 3, 2, 1, 0, 0);
  failures += check_conv_expecting(MLIRC_CONV_STRIDED, "strided 7x7 stem", 2, 3, 8, 64, 64, 7, 2, 3, 0, 0);
  failures += check_conv_expecting(MLIRC_CONV_STRIDED, "strided 3x3", 1, 5, 12, 32, 64, 3, 2, 1, 0, 0);
  /* the packed kernel takes a batch only at 1024 pixels an image or more
   * (smaller images are grouped into one im2col GEMM) */
  failures += check_conv_expecting(AVX512_ONLY(MLIRC_CONV_PACKED), "packed 1x1", 2, 24, 64, 32, 32, 1, 1, 0, 0, 0);
  failures += check_conv_expecting(AVX512_ONLY(MLIRC_CONV_PACKED), "packed 1x1 + residual", 2, 24, 64, 32, 32, 1, 1, 0, 0, 1);
  failures += check_conv_expecting(AVX512_ONLY(MLIRC_CONV_PACKED), "pixel rows 1x1, 40 filters", 1, 48, 40, 10, 10, 1, 1, 0, 0, 1);
  failures += check_conv_expecting(AVX512_ONLY(MLIRC_CONV_PACKED), "packed 1x1, 72 taps", 1, 72, 40, 10, 10, 1, 1, 0, 0, 1);
  failures += check_conv_expecting(MLIRC_CONV_WINOGRAD_F2X2, "winograd rows + residual", 1, 16, 16, 28, 28, 3, 1, 1, 0, 1);
  failures += check_conv_expecting(AVX512_ONLY(MLIRC_CONV_PACKED), "packed stride 2", 1, 8, 40, 15, 15, 3, 2, 1, 0, 0);
  failures += check_conv_expecting(AVX512_ONLY(MLIRC_CONV_PACKED), "packed 3x3 unpadded + residual", 2, 40, 48, 34, 34, 3, 1, 0, 0, 1);
  failures += check_conv_expecting(AVX512_ONLY(MLIRC_CONV_PACKED), "packed 5x5 taps in place", 1, 24, 32, 12, 12, 5, 2, 2, 0, 0);
  /* 49 and 100 pixels: tail tiles of 9 and 12 rows, 32 filters a panel */
  failures += check_conv_expecting(AVX512_ONLY(MLIRC_CONV_PACKED), "packed 1x1 7x7, 9-row tail", 1, 96, 64, 7, 7, 1, 1, 0, 0, 1);
  failures += check_conv_expecting(AVX512_ONLY(MLIRC_CONV_WINOGRAD_F2X2_PACKED), "winograd packed 7x7", 1, 64, 64, 7, 7, 3, 1, 1, 0, 1);
  failures += check_conv_expecting(AVX512_ONLY(MLIRC_CONV_PACKED), "packed 1x1, 12-row tail", 1, 96, 64, 10, 10, 1, 1, 0, 0, 1);
  failures += check_conv_expecting(AVX512_ONLY(MLIRC_CONV_PACKED), "pixel rows over residual", 1, 48, 40, 10, 10, 1, 1, 0, 0, 2);
  failures += check_conv_expecting(AVX512_ONLY(MLIRC_CONV_PACKED), "packed 1x1 over residual", 1, 72, 40, 10, 10, 1, 1, 0, 0, 2);
  failures += check_conv_expecting(AVX512_ONLY(MLIRC_CONV_WINOGRAD_F4X4), "winograd4 over residual", 2, 64, 40, 20, 20, 3, 1, 1, 0, 2);
  failures += check_conv_expecting(MLIRC_CONV_WINOGRAD_F2X2, "winograd rows over residual", 1, 16, 16, 28, 28, 3, 1, 1, 0, 2);
  failures += check_conv_expecting(AVX512_ONLY(MLIRC_CONV_DIRECT), "direct 3x3 over residual", 2, 5, 8, 16, 48, 3, 1, 1, 0, 2);
  failures += check_conv_expecting(MLIRC_CONV_IM2COL_BLAS, "BLAS 1x1 over residual", 1, 24, 16, 32, 40, 1, 1, 0, 0, 2);
  failures += check_conv_expecting(MLIRC_CONV_IM2COL_BLAS, "im2col stride 2 over residual", 2, 3, 8, 17, 17, 3, 2, 1, 0, 2);
  failures += check_stem_pool("stem 7x7/2 + pool 3x3/2", 2, 3, 8, 64);
  failures += check_stem_pool("stem, 4 channels, 48 rows", 1, 4, 12, 96);
  failures += check_buffer_cache();
  failures += check_packed_gemm("packed gemm", 32, 256, 512);
  failures += check_packed_gemm("packed gemm edges", 13, 70, 45);
  failures += check_maxpool("max pool 2x2", 3, 34, 2, 2, 0);
  failures += check_maxpool("max pool 3x3/2 padded", 3, 40, 3, 2, 1);
  failures += check_maxpool("max pool 3x3/1", 3, 9, 3, 1, 0);
  return failures;
}

/* mlirc's kernel library: direct convolution with stride 2 and few input
 * channels (an image model's stem: ResNet's 7x7, 3 -> 64 channels).
 *
 * im2col + GEMM spends much of such a stem copying: ResNet-50's columns are
 * 147 x 12544 floats (7.4 MB) written and read again for a GEMM of only 64
 * filters. Here each input row is instead split once into its even and odd
 * columns (zero-padded), after which the input under tap (i, j) of 16
 * consecutive outputs is one contiguous vector: output column x reads
 * padded column 2x + j, that is even[x + j/2] for even j and odd[x + j/2]
 * for odd j. The register tile is 4 filters x 4 output rows x 16 outputs:
 * per tap four input vectors and four broadcast weights feed 16 FMAs, the
 * loop over a kernel row's taps unrolled for 7 (j / 2 and j % 2 constant)
 * and the inputs held in registers (KEEP_IN_REGISTER; without it, 1090 us).
 * ResNet-50's stem, caches cold: 640 -> 520 us (kernel harness); in the
 * model 0.84-0.98 -> 0.56 ms (2026-12-01). */

#include "kernels.h"
enum { STRIDED_FILTERS = 4, STRIDED_ROWS = 4, STRIDED_MAX_CHANNELS = 8 };

/* Whether the strided kernel takes this convolution: stride 2 both ways,
 * no dilation, a few channels, whole tiles. */
INTERNAL int strided_conv_fits(const conv_shape *shape) {
  return shape->stride_h == 2 && shape->stride_w == 2 && shape->dilation_h == 1 &&
         shape->dilation_w == 1 && shape->channels <= STRIDED_MAX_CHANNELS &&
         shape->kh * shape->kw > 1 && shape->ow % 16 == 0 && shape->oh % STRIDED_ROWS == 0 &&
         shape->filters % STRIDED_FILTERS == 0;
}

/* The split input: per (image, channel, padded row) an even and an odd
 * half-row of `half` floats each, zero where the padding is. */
typedef struct {
  const conv_shape *shape;
  const float *input;
  float *halves;
  int64_t image_stride, rows, half; /* padded rows per plane, floats per half-row */
} split_job;

static float *half_row(const split_job *job, int64_t plane, int64_t row, int odd) {
  return job->halves + ((plane * job->rows + row) * 2 + odd) * job->half;
}

static void split_task(void *context, int64_t plane) {
  const split_job *job = context;
  const conv_shape *shape = job->shape;
  int64_t n = plane / shape->channels, c = plane % shape->channels;
  const float *image = job->input + n * job->image_stride + c * shape->in_h * shape->in_w;
  for (int64_t row = 0; row < job->rows; ++row) {
    float *even = half_row(job, plane, row, 0), *odd = half_row(job, plane, row, 1);
    int64_t y = row - shape->pad_h;
    if (y < 0 || y >= shape->in_h) {
      memset(even, 0, sizeof(float) * 2 * job->half); /* the odd half follows */
      continue;
    }
    const float *source = image + y * shape->in_w;
    for (int64_t k = 0; k < job->half; ++k) {
      int64_t x = 2 * k - shape->pad_w; /* padded column 2k */
      even[k] = x >= 0 && x < shape->in_w ? source[x] : 0.0f;
      odd[k] = x + 1 >= 0 && x + 1 < shape->in_w ? source[x + 1] : 0.0f;
    }
  }
}

typedef struct {
  const split_job *split;
  const float *weights, *residual;
  float *output; /* the convolution's, or with `tails` the pooled output */
  int64_t out_stride, blocks; /* row blocks per image */
  /* a 3x3, stride-2, padding-1 max pool folded in (strided_conv_pooled) */
  float *tails;
  int64_t pooled_h, pooled_w;
} strided_job;

/* The 4 x 4 x 16 tile at filter f0, row y0, column x0, stored with the
 * ReLU into `target` (filter f0's plane, the others `target_plane` apart)
 * from row `target_row`. */
static inline __attribute__((always_inline)) void strided_tile(
    const strided_job *job, int64_t kw, int64_t n, int64_t f0, int64_t y0, int64_t x0,
    float *target, int64_t target_plane, int64_t target_row, const float *residual, int relu) {
  const split_job *split = job->split;
  const conv_shape *shape = split->shape;
  int64_t plane = shape->oh * shape->ow, taps = shape->channels * shape->kh * shape->kw;
  const float *bias = shape->bias;
  v16 acc[STRIDED_FILTERS][STRIDED_ROWS];
  for (int f = 0; f < STRIDED_FILTERS; ++f)
    for (int r = 0; r < STRIDED_ROWS; ++r) {
      int64_t at = (f0 + f) * plane + (y0 + r) * shape->ow + x0;
      const float *stored = target + f * target_plane + (target_row + r) * shape->ow + x0;
      acc[f][r] = !bias      ? LOAD(v16, stored)
                  : residual ? BROADCAST(bias[f0 + f]) + LOAD(v16, residual + at)
                             : BROADCAST(bias[f0 + f]);
    }
  for (int64_t c = 0; c < shape->channels; ++c)
    for (int64_t i = 0; i < shape->kh; ++i) {
      const float *halves[2][STRIDED_ROWS]; /* even and odd half-rows under the tile */
      for (int r = 0; r < STRIDED_ROWS; ++r)
        for (int odd = 0; odd < 2; ++odd)
          halves[odd][r] = half_row(split, n * shape->channels + c, 2 * (y0 + r) + i, odd) + x0;
      const float *tap = job->weights + f0 * taps + (c * shape->kh + i) * kw;
#pragma GCC unroll 7
      for (int64_t j = 0; j < kw; ++j) {
        v16 weight[STRIDED_FILTERS], input[STRIDED_ROWS];
        for (int f = 0; f < STRIDED_FILTERS; ++f) {
          weight[f] = BROADCAST(tap[f * taps + j]);
          KEEP_IN_REGISTER(weight[f]);
        }
        for (int r = 0; r < STRIDED_ROWS; ++r) {
          input[r] = LOAD(v16, halves[j % 2][r] + j / 2);
          KEEP_IN_REGISTER(input[r]);
        }
        for (int f = 0; f < STRIDED_FILTERS; ++f)
          for (int r = 0; r < STRIDED_ROWS; ++r) acc[f][r] += weight[f] * input[r];
      }
    }
  for (int f = 0; f < STRIDED_FILTERS; ++f)
    store_rows(acc[f], STRIDED_ROWS, target + f * target_plane, shape->ow, target_row, x0, relu,
               0);
}

/* strided_tile with the kernel width a constant for the 7-wide stems (the
 * loop over a kernel row's taps unrolls), `kw` otherwise. */
static inline __attribute__((always_inline)) void strided_tile_any(
    const strided_job *job, int64_t n, int64_t f0, int64_t y0, int64_t x0, float *target,
    int64_t target_plane, int64_t target_row, const float *residual, int relu) {
  int64_t kw = job->split->shape->kw;
  if (kw == 7)
    strided_tile(job, 7, n, f0, y0, x0, target, target_plane, target_row, residual, relu);
  else
    strided_tile(job, kw, n, f0, y0, x0, target, target_plane, target_row, residual, relu);
}

/* One block of STRIDED_ROWS output rows of one image, every filter. */
static void strided_task(void *context, int64_t task) {
  const strided_job *job = context;
  const conv_shape *shape = job->split->shape;
  int64_t n = task / job->blocks, y0 = task % job->blocks * STRIDED_ROWS;
  int64_t plane = shape->oh * shape->ow;
  float *out = job->output + n * job->out_stride;
  const float *residual = job->residual ? job->residual + n * job->out_stride : NULL;
  int relu = shape->bias && shape->relu;
  for (int64_t f0 = 0; f0 < shape->filters; f0 += STRIDED_FILTERS)
    for (int64_t x0 = 0; x0 < shape->ow; x0 += 16)
      strided_tile_any(job, n, f0, y0, x0, out + f0 * plane, plane, y0, residual, relu);
}

/* The input split into even and odd half-rows for the strided tiles
 * (in the call's scratch). */
static split_job split_input(const conv_shape *shape, int64_t images, const float *input,
                             int64_t image_stride) {
  /* the padded rows and half-row columns that the taps reach */
  int64_t rows = 2 * (shape->oh - 1) + shape->kh;
  int64_t half = shape->ow + (shape->kw - 1) / 2;
  split_job split = {shape, input, NULL, image_stride, rows, half};
  split.halves = scratch(SCRATCH_INPUT, images * shape->channels * rows * 2 * half);
  parallel_for(images * shape->channels, split_task, &split);
  return split;
}

INTERNAL void strided_conv(const conv_shape *shape, int64_t images, const float *input,
                         int64_t image_stride, const float *weights, float *output,
                         int64_t out_stride, const float *residual) {
  split_job split = split_input(shape, images, input, image_stride);
  strided_job job = {&split, weights, residual, output, out_stride, shape->oh / STRIDED_ROWS,
                     NULL, 0, 0};
  parallel_for(images * job.blocks, strided_task, &job);
}

#ifdef __AVX512F__
/* The stem's MaxPool2d(3, stride 2, padding 1) folded into the strided
 * convolution (the pool-offload pass): each task pools the 4 rows it
 * computed while they are in its L1 cache, where the convolution's output
 * (ResNet-50's 3.2 MB) went to memory and the pool read it back from the
 * other core's cache. Pooled row q takes the convolution's rows 2q - 1 to
 * 2q + 1: block b (rows 4b .. 4b + 3) writes pooled row 2b + 1 whole and
 * row 2b without row 4b - 1, which the block before leaves in `tails`
 * (its last row pooled across); a second pass takes those in. */
static void strided_pooled_task(void *context, int64_t task) {
  const strided_job *job = context;
  const conv_shape *shape = job->split->shape;
  int64_t n = task / job->blocks, block = task % job->blocks, y0 = block * STRIDED_ROWS;
  int64_t ow = shape->ow, pooled_h = job->pooled_h, pooled_w = job->pooled_w;
  int64_t pooled_plane = pooled_h * pooled_w, q = y0 / 2;
  float *pooled = job->output + n * job->out_stride;
  float rows[STRIDED_FILTERS][STRIDED_ROWS * ow]; /* this block's rows, 4 filters at a time */
  int relu = shape->bias && shape->relu;
  for (int64_t f0 = 0; f0 < shape->filters; f0 += STRIDED_FILTERS) {
    for (int64_t x0 = 0; x0 < ow; x0 += 16)
      strided_tile_any(job, n, f0, y0, x0, rows[0], STRIDED_ROWS * ow, 0, NULL, relu);
    for (int f = 0; f < STRIDED_FILTERS; ++f) {
      const float *row[STRIDED_ROWS];
      for (int r = 0; r < STRIDED_ROWS; ++r) row[r] = rows[f] + r * ow;
      float *plane = pooled + (f0 + f) * pooled_plane;
      maxpool_row_3x3_stride2(row, 2, ow, plane + q * pooled_w, pooled_w, 0);
      if (q + 1 < pooled_h)
        maxpool_row_3x3_stride2(row + 1, 3, ow, plane + (q + 1) * pooled_w, pooled_w, 0);
      float *tail = job->tails + ((n * job->blocks + block) * shape->filters + f0 + f) * pooled_w;
      maxpool_row_3x3_stride2(row + 3, 1, ow, tail, pooled_w, 0);
    }
  }
}

/* Pooled row 2b takes in the tail of block b - 1, a plane (image, filter) a task. */
static void pooled_tails_task(void *context, int64_t task) {
  const strided_job *job = context;
  int64_t filters = job->split->shape->filters, n = task / filters, f = task % filters;
  int64_t pooled_w = job->pooled_w;
  float *plane = job->output + n * job->out_stride + f * job->pooled_h * pooled_w;
  for (int64_t block = 1; block < job->blocks; ++block) {
    const float *tail = job->tails + ((n * job->blocks + block - 1) * filters + f) * pooled_w;
    float *row = plane + 2 * block * pooled_w;
    for (int64_t x = 0; x < pooled_w; x += 16) {
      __mmask16 lanes = lanes_inside(x, pooled_w);
      v16 value = max_v16((v16)_mm512_maskz_loadu_ps(lanes, row + x),
                          (v16)_mm512_maskz_loadu_ps(lanes, tail + x));
      _mm512_mask_storeu_ps(row + x, lanes, (__m512)value);
    }
  }
}
#endif

/* Whether strided_conv_pooled takes a convolution with a 3x3, stride-2,
 * padding-1 max pool after it: the strided kernel's (rows in whole
 * blocks), pooled rows of half the width. */
INTERNAL int strided_conv_pooled_fits(const conv_shape *shape) {
#ifdef __AVX512F__
  return strided_conv_fits(shape) && shape->ow % 2 == 0;
#else
  (void)shape;
  return 0;
#endif
}

INTERNAL void strided_conv_pooled(const conv_shape *shape, int64_t images, const float *input,
                                int64_t image_stride, const float *weights, float *pooled,
                                int64_t pooled_stride) {
#ifdef __AVX512F__
  split_job split = split_input(shape, images, input, image_stride);
  strided_job job = {&split, weights, NULL, pooled, pooled_stride, shape->oh / STRIDED_ROWS,
                     NULL, shape->oh / 2, shape->ow / 2};
  job.tails = scratch(SCRATCH_UNPOOLED, images * job.blocks * shape->filters * job.pooled_w);
  parallel_for(images * job.blocks, strided_pooled_task, &job);
  parallel_for(images * shape->filters, pooled_tails_task, &job);
#else
  (void)shape, (void)images, (void)input, (void)image_stride, (void)weights, (void)pooled;
  (void)pooled_stride;
  abort(); /* strided_conv_pooled_fits is 0 */
#endif
}

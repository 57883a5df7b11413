// RUN: mlirc-opt --pass-pipeline='builtin.module(mlirc-pool-offload,func.func(canonicalize))' %s | filecheck %s

// CHECK: func.func private @mlirc_maxpool2d_nchw_f32(memref<?x?x?x?xf32, strided<[?, ?, ?, ?], offset: ?>>, memref<?x?x?x?xf32, strided<[?, ?, ?, ?], offset: ?>>, i64, i64, i64, i64, i64, i64, i64, i64, i64)

// torch-mlir's MaxPool2d(3, 2, padding=1): the output filled with -inf, the
// input copied into a -inf-filled padded buffer. Both fold: the call reads
// the unpadded input (pad 1) and overwrites the output (accumulate = 0).
// CHECK-LABEL: func.func @padded_pool
// CHECK-NOT: linalg.fill
// CHECK-NOT: memref.copy
// CHECK-DAG: %[[ZERO:.*]] = arith.constant 0 : i64
// CHECK-DAG: %[[ONE:.*]] = arith.constant 1 : i64
// CHECK-DAG: %[[TWO:.*]] = arith.constant 2 : i64
// CHECK-DAG: %[[THREE:.*]] = arith.constant 3 : i64
// CHECK: %[[INPUT:.*]] = memref.cast %arg0 : memref<1x4x8x8xf32> to
// CHECK: call @mlirc_maxpool2d_nchw_f32(%[[INPUT]], %{{.*}}, %[[THREE]], %[[THREE]], %[[TWO]], %[[TWO]], %[[ONE]], %[[ONE]], %[[ONE]], %[[ONE]], %[[ZERO]])
// CHECK-NOT: linalg.pooling_nchw_max
func.func @padded_pool(%in: memref<1x4x8x8xf32>, %out: memref<1x4x4x4xf32>) {
  %ninf = arith.constant 0xFF800000 : f32
  %padded = memref.alloc() {alignment = 64 : i64} : memref<1x4x10x10xf32>
  linalg.fill ins(%ninf : f32) outs(%padded : memref<1x4x10x10xf32>)
  %interior = memref.subview %padded[0, 0, 1, 1] [1, 4, 8, 8] [1, 1, 1, 1]
    : memref<1x4x10x10xf32> to memref<1x4x8x8xf32, strided<[400, 100, 10, 1], offset: 11>>
  memref.copy %in, %interior : memref<1x4x8x8xf32> to memref<1x4x8x8xf32, strided<[400, 100, 10, 1], offset: 11>>
  linalg.fill ins(%ninf : f32) outs(%out : memref<1x4x4x4xf32>)
  %window = memref.alloc() : memref<3x3xf32>
  linalg.pooling_nchw_max {dilations = dense<1> : vector<2xi64>, strides = dense<2> : vector<2xi64>}
    ins(%padded, %window : memref<1x4x10x10xf32>, memref<3x3xf32>) outs(%out : memref<1x4x4x4xf32>)
  memref.dealloc %window : memref<3x3xf32>
  memref.dealloc %padded : memref<1x4x10x10xf32>
  return
}

// No -inf fill before it: the call takes the max into the output's values
// (accumulate = 1).
// CHECK-LABEL: func.func @accumulating_pool
// CHECK: %[[ON:.*]] = arith.constant 1 : i64
// CHECK: call @mlirc_maxpool2d_nchw_f32({{.*}}, %[[ON]])
func.func @accumulating_pool(%in: memref<1x4x8x8xf32>, %out: memref<1x4x4x4xf32>) {
  %window = memref.alloc() : memref<2x2xf32>
  linalg.pooling_nchw_max {dilations = dense<1> : vector<2xi64>, strides = dense<2> : vector<2xi64>}
    ins(%in, %window : memref<1x4x8x8xf32>, memref<2x2xf32>) outs(%out : memref<1x4x4x4xf32>)
  memref.dealloc %window : memref<2x2xf32>
  return
}

// A zero-padded input is not a max pool's padding: the copy stays.
// CHECK-LABEL: func.func @zero_padded_pool
// CHECK: linalg.fill
// CHECK: memref.copy
// CHECK: call @mlirc_maxpool2d_nchw_f32(
func.func @zero_padded_pool(%in: memref<1x4x8x8xf32>, %out: memref<1x4x4x4xf32>) {
  %zero = arith.constant 0.0 : f32
  %padded = memref.alloc() {alignment = 64 : i64} : memref<1x4x10x10xf32>
  linalg.fill ins(%zero : f32) outs(%padded : memref<1x4x10x10xf32>)
  %interior = memref.subview %padded[0, 0, 1, 1] [1, 4, 8, 8] [1, 1, 1, 1]
    : memref<1x4x10x10xf32> to memref<1x4x8x8xf32, strided<[400, 100, 10, 1], offset: 11>>
  memref.copy %in, %interior : memref<1x4x8x8xf32> to memref<1x4x8x8xf32, strided<[400, 100, 10, 1], offset: 11>>
  %window = memref.alloc() : memref<3x3xf32>
  linalg.pooling_nchw_max {dilations = dense<1> : vector<2xi64>, strides = dense<2> : vector<2xi64>}
    ins(%padded, %window : memref<1x4x10x10xf32>, memref<3x3xf32>) outs(%out : memref<1x4x4x4xf32>)
  memref.dealloc %window : memref<3x3xf32>
  memref.dealloc %padded : memref<1x4x10x10xf32>
  return
}

// f64 stays in MLIR.
// CHECK-LABEL: func.func @f64_pool
// CHECK: linalg.pooling_nchw_max
func.func @f64_pool(%in: memref<1x4x8x8xf64>, %out: memref<1x4x4x4xf64>) {
  %window = memref.alloc() : memref<2x2xf64>
  linalg.pooling_nchw_max {dilations = dense<1> : vector<2xi64>, strides = dense<2> : vector<2xi64>}
    ins(%in, %window : memref<1x4x8x8xf64>, memref<2x2xf64>) outs(%out : memref<1x4x4x4xf64>)
  memref.dealloc %window : memref<2x2xf64>
  return
}

// blas-offload's conv call whose output only a 2x2 pool reads: the call
// writes the pooled output itself (its own buffer is never needed).
func.func private @mlirc_conv2d_nchw_bias_f32(memref<?x?x?x?xf32, strided<[?, ?, ?, ?], offset: ?>>, memref<?x?x?x?xf32, strided<[?, ?, ?, ?], offset: ?>>, memref<?x?x?x?xf32, strided<[?, ?, ?, ?], offset: ?>>, memref<?xf32, strided<[?], offset: ?>>, i64, i64, i64, i64, i64, i64, i64, i64, memref<?xi64, strided<[?], offset: ?>>)
// CHECK-LABEL: func.func @conv_then_pool
// CHECK-NOT: linalg.fill
// CHECK: %[[POOLED:.*]] = memref.cast %arg3 : memref<1x4x4x4xf32> to memref<?x?x?x?xf32, strided<[?, ?, ?, ?], offset: ?>>
// CHECK: call @mlirc_conv2d_nchw_bias_pool_f32(%{{.*}}, %{{.*}}, %[[POOLED]],
// CHECK-NOT: call @mlirc_conv2d_nchw_bias_f32
// CHECK-NOT: mlirc_maxpool2d
func.func @conv_then_pool(%in: memref<1x3x8x8xf32>, %f: memref<4x3x3x3xf32>, %bias: memref<4xf32>,
                          %pooled: memref<1x4x4x4xf32>, %slot: memref<1xi64>) {
  %ninf = arith.constant 0xFF800000 : f32
  %one = arith.constant 1 : i64
  %zero = arith.constant 0 : i64
  %out = memref.alloc() : memref<1x4x8x8xf32>
  %a = memref.cast %in : memref<1x3x8x8xf32> to memref<?x?x?x?xf32, strided<[?, ?, ?, ?], offset: ?>>
  %b = memref.cast %f : memref<4x3x3x3xf32> to memref<?x?x?x?xf32, strided<[?, ?, ?, ?], offset: ?>>
  %c = memref.cast %out : memref<1x4x8x8xf32> to memref<?x?x?x?xf32, strided<[?, ?, ?, ?], offset: ?>>
  %d = memref.cast %bias : memref<4xf32> to memref<?xf32, strided<[?], offset: ?>>
  %s = memref.cast %slot : memref<1xi64> to memref<?xi64, strided<[?], offset: ?>>
  call @mlirc_conv2d_nchw_bias_f32(%a, %b, %c, %d, %one, %one, %one, %one, %one, %one, %one, %zero, %s)
    : (memref<?x?x?x?xf32, strided<[?, ?, ?, ?], offset: ?>>, memref<?x?x?x?xf32, strided<[?, ?, ?, ?], offset: ?>>, memref<?x?x?x?xf32, strided<[?, ?, ?, ?], offset: ?>>, memref<?xf32, strided<[?], offset: ?>>, i64, i64, i64, i64, i64, i64, i64, i64, memref<?xi64, strided<[?], offset: ?>>) -> ()
  linalg.fill ins(%ninf : f32) outs(%pooled : memref<1x4x4x4xf32>)
  %window = memref.alloc() : memref<2x2xf32>
  linalg.pooling_nchw_max {dilations = dense<1> : vector<2xi64>, strides = dense<2> : vector<2xi64>}
    ins(%out, %window : memref<1x4x8x8xf32>, memref<2x2xf32>) outs(%pooled : memref<1x4x4x4xf32>)
  memref.dealloc %window : memref<2x2xf32>
  memref.dealloc %out : memref<1x4x8x8xf32>
  return
}

// The same with ResNet's stem pool, MaxPool2d(3, 2, padding=1): its -inf
// padded copy of the conv's output folds too, into
// mlirc_conv2d_nchw_bias_pool3x3s2_f32.
// CHECK-LABEL: func.func @conv_then_padded_pool
// CHECK-NOT: linalg.fill
// CHECK-NOT: memref.copy
// CHECK: %[[POOLED:.*]] = memref.cast %arg3 : memref<1x4x4x4xf32> to memref<?x?x?x?xf32, strided<[?, ?, ?, ?], offset: ?>>
// CHECK: call @mlirc_conv2d_nchw_bias_pool3x3s2_f32(%{{.*}}, %{{.*}}, %[[POOLED]],
// CHECK-NOT: call @mlirc_conv2d_nchw_bias_f32
// CHECK-NOT: mlirc_maxpool2d
// CHECK-NOT: linalg.pooling_nchw_max
func.func @conv_then_padded_pool(%in: memref<1x3x8x8xf32>, %f: memref<4x3x3x3xf32>, %bias: memref<4xf32>,
                                 %pooled: memref<1x4x4x4xf32>, %slot: memref<1xi64>) {
  %ninf = arith.constant 0xFF800000 : f32
  %one = arith.constant 1 : i64
  %zero = arith.constant 0 : i64
  %out = memref.alloc() : memref<1x4x8x8xf32>
  %a = memref.cast %in : memref<1x3x8x8xf32> to memref<?x?x?x?xf32, strided<[?, ?, ?, ?], offset: ?>>
  %b = memref.cast %f : memref<4x3x3x3xf32> to memref<?x?x?x?xf32, strided<[?, ?, ?, ?], offset: ?>>
  %c = memref.cast %out : memref<1x4x8x8xf32> to memref<?x?x?x?xf32, strided<[?, ?, ?, ?], offset: ?>>
  %d = memref.cast %bias : memref<4xf32> to memref<?xf32, strided<[?], offset: ?>>
  %s = memref.cast %slot : memref<1xi64> to memref<?xi64, strided<[?], offset: ?>>
  call @mlirc_conv2d_nchw_bias_f32(%a, %b, %c, %d, %one, %one, %one, %one, %one, %one, %one, %zero, %s)
    : (memref<?x?x?x?xf32, strided<[?, ?, ?, ?], offset: ?>>, memref<?x?x?x?xf32, strided<[?, ?, ?, ?], offset: ?>>, memref<?x?x?x?xf32, strided<[?, ?, ?, ?], offset: ?>>, memref<?xf32, strided<[?], offset: ?>>, i64, i64, i64, i64, i64, i64, i64, i64, memref<?xi64, strided<[?], offset: ?>>) -> ()
  %padded = memref.alloc() {alignment = 64 : i64} : memref<1x4x10x10xf32>
  linalg.fill ins(%ninf : f32) outs(%padded : memref<1x4x10x10xf32>)
  %interior = memref.subview %padded[0, 0, 1, 1] [1, 4, 8, 8] [1, 1, 1, 1]
    : memref<1x4x10x10xf32> to memref<1x4x8x8xf32, strided<[400, 100, 10, 1], offset: 11>>
  memref.copy %out, %interior : memref<1x4x8x8xf32> to memref<1x4x8x8xf32, strided<[400, 100, 10, 1], offset: 11>>
  linalg.fill ins(%ninf : f32) outs(%pooled : memref<1x4x4x4xf32>)
  %window = memref.alloc() : memref<3x3xf32>
  linalg.pooling_nchw_max {dilations = dense<1> : vector<2xi64>, strides = dense<2> : vector<2xi64>}
    ins(%padded, %window : memref<1x4x10x10xf32>, memref<3x3xf32>) outs(%pooled : memref<1x4x4x4xf32>)
  memref.dealloc %window : memref<3x3xf32>
  memref.dealloc %padded : memref<1x4x10x10xf32>
  memref.dealloc %out : memref<1x4x8x8xf32>
  return
}

// A global average pool's sum (into NxCx1x1, after a zero fill) becomes the
// shim's plane sum, the fill folded (accumulate = 0); the division stays.
// CHECK-LABEL: func.func @plane_sum
// CHECK-NOT: linalg.fill
// CHECK: %[[OFF:.*]] = arith.constant 0 : i64
// CHECK: call @mlirc_sum_planes_f32(%{{.*}}, %{{.*}}, %[[OFF]])
// CHECK-NOT: iterator_types = ["parallel", "parallel", "reduction", "reduction"]
func.func @plane_sum(%in: memref<2x4x8x8xf32>, %out: memref<2x4x1x1xf32>) {
  %zero = arith.constant 0.0 : f32
  linalg.fill ins(%zero : f32) outs(%out : memref<2x4x1x1xf32>)
  linalg.generic {indexing_maps = [affine_map<(n, c, h, w) -> (n, c, h, w)>, affine_map<(n, c, h, w) -> (n, c, 0, 0)>],
                  iterator_types = ["parallel", "parallel", "reduction", "reduction"]}
      ins(%in : memref<2x4x8x8xf32>) outs(%out : memref<2x4x1x1xf32>) {
  ^bb0(%x: f32, %acc: f32):
    %sum = arith.addf %x, %acc : f32
    linalg.yield %sum : f32
  }
  return
}

// A max reduction is not a sum: it stays.
// CHECK-LABEL: func.func @plane_max
// CHECK: linalg.generic
// CHECK-NOT: mlirc_sum_planes
func.func @plane_max(%in: memref<2x4x8x8xf32>, %out: memref<2x4x1x1xf32>) {
  linalg.generic {indexing_maps = [affine_map<(n, c, h, w) -> (n, c, h, w)>, affine_map<(n, c, h, w) -> (n, c, 0, 0)>],
                  iterator_types = ["parallel", "parallel", "reduction", "reduction"]}
      ins(%in : memref<2x4x8x8xf32>) outs(%out : memref<2x4x1x1xf32>) {
  ^bb0(%x: f32, %acc: f32):
    %m = arith.maximumf %x, %acc : f32
    linalg.yield %m : f32
  }
  return
}

// RUN: mlirc-opt --pass-pipeline='builtin.module(mlirc-generic-fill-copy)' %s | filecheck %s

// A dynamic-batch padding as bufferization leaves it: a generic broadcasting
// zero and a generic copying into the interior become linalg.fill and
// memref.copy, the forms the kernel offloads fold into a convolution.
#scalar = affine_map<(d0, d1, d2, d3) -> ()>
#identity = affine_map<(d0, d1, d2, d3) -> (d0, d1, d2, d3)>
// CHECK-LABEL: func.func @padding
// CHECK-NOT: linalg.generic
// CHECK: linalg.fill ins(%{{.*}} : f32) outs(%{{.*}} : memref<?x3x34x34xf32>)
// CHECK: memref.copy %{{.*}}, %{{.*}} : memref<?x3x32x32xf32> to memref<?x3x32x32xf32, strided<[3468, 1156, 34, 1], offset: 35>>
func.func @padding(%input: memref<?x3x32x32xf32>, %padded: memref<?x3x34x34xf32>) {
  %zero = arith.constant 0.0 : f32
  %c0 = arith.constant 0 : index
  %n = memref.dim %input, %c0 : memref<?x3x32x32xf32>
  linalg.generic {indexing_maps = [#scalar, #identity], iterator_types = ["parallel", "parallel", "parallel", "parallel"]}
      ins(%zero : f32) outs(%padded : memref<?x3x34x34xf32>) {
  ^bb0(%in: f32, %out: f32):
    linalg.yield %in : f32
  }
  %view = memref.subview %padded[0, 0, 1, 1] [%n, 3, 32, 32] [1, 1, 1, 1] : memref<?x3x34x34xf32> to memref<?x3x32x32xf32, strided<[3468, 1156, 34, 1], offset: 35>>
  linalg.generic {indexing_maps = [#identity, #identity], iterator_types = ["parallel", "parallel", "parallel", "parallel"]}
      ins(%input : memref<?x3x32x32xf32>) outs(%view : memref<?x3x32x32xf32, strided<[3468, 1156, 34, 1], offset: 35>>) {
  ^bb0(%in: f32, %out: f32):
    linalg.yield %in : f32
  }
  return
}

// A generic that computes is left alone.
// CHECK-LABEL: func.func @relu
// CHECK: linalg.generic
func.func @relu(%x: memref<?x8xf32>) {
  %zero = arith.constant 0.0 : f32
  linalg.generic {indexing_maps = [affine_map<(d0, d1) -> (d0, d1)>, affine_map<(d0, d1) -> (d0, d1)>], iterator_types = ["parallel", "parallel"]}
      ins(%x : memref<?x8xf32>) outs(%x : memref<?x8xf32>) {
  ^bb0(%in: f32, %out: f32):
    %m = arith.maximumf %in, %zero : f32
    linalg.yield %m : f32
  }
  return
}

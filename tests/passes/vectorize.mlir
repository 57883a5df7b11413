// RUN: mlirc-opt --pass-pipeline='builtin.module(mlirc-vectorize)' %s | filecheck %s

#map = affine_map<(d0, d1) -> (d0, d1)>
#row = affine_map<(d0, d1) -> (d1)>
#reduced = affine_map<(d0, d1) -> (d0)>

// A bias add: rows of 64 tiled by 16 lanes, one vector add per tile, the
// broadcast bias read as a plain vector.
// CHECK-LABEL: func.func @bias_add
// CHECK: scf.for
// CHECK: scf.for
// CHECK: vector.transfer_read {{.*}} vector<16xf32>
// CHECK: vector.transfer_read {{.*}} vector<16xf32>
// CHECK: arith.addf %{{.*}}, %{{.*}} : vector<16xf32>
// CHECK: vector.transfer_write
func.func @bias_add(%x: tensor<8x64xf32>, %bias: tensor<64xf32>) -> tensor<8x64xf32> {
  %empty = tensor.empty() : tensor<8x64xf32>
  %0 = linalg.generic {indexing_maps = [#map, #row, #map], iterator_types = ["parallel", "parallel"]}
      ins(%x, %bias : tensor<8x64xf32>, tensor<64xf32>) outs(%empty : tensor<8x64xf32>) {
  ^bb0(%in: f32, %b: f32, %out: f32):
    %sum = arith.addf %in, %b : f32
    linalg.yield %sum : f32
  } -> tensor<8x64xf32>
  return %0 : tensor<8x64xf32>
}

// A row sum: the whole row in one vector, reduced.
// CHECK-LABEL: func.func @row_sum
// CHECK: scf.for
// CHECK: vector.transfer_read {{.*}} vector<64xf32>
// CHECK: vector.{{multi_reduction|reduction}} <add>
func.func @row_sum(%x: tensor<8x64xf32>, %init: tensor<8xf32>) -> tensor<8xf32> {
  %0 = linalg.generic {indexing_maps = [#map, #reduced], iterator_types = ["parallel", "reduction"]}
      ins(%x : tensor<8x64xf32>) outs(%init : tensor<8xf32>) {
  ^bb0(%in: f32, %out: f32):
    %sum = arith.addf %in, %out : f32
    linalg.yield %sum : f32
  } -> tensor<8xf32>
  return %0 : tensor<8xf32>
}

// Contractions are BLAS's: untouched. So are dynamic shapes.
// CHECK-LABEL: func.func @matmul_and_dynamic
// CHECK: linalg.matmul
// CHECK: linalg.generic
// CHECK-NOT: vector.
func.func @matmul_and_dynamic(%a: tensor<8x8xf32>, %b: tensor<8x8xf32>, %c: tensor<8x8xf32>,
                              %d: tensor<?x64xf32>) -> (tensor<8x8xf32>, tensor<?x64xf32>) {
  %0 = linalg.matmul ins(%a, %b : tensor<8x8xf32>, tensor<8x8xf32>) outs(%c : tensor<8x8xf32>) -> tensor<8x8xf32>
  %1 = linalg.generic {indexing_maps = [#map, #map], iterator_types = ["parallel", "parallel"]}
      ins(%d : tensor<?x64xf32>) outs(%d : tensor<?x64xf32>) {
  ^bb0(%in: f32, %out: f32):
    %neg = arith.negf %in : f32
    linalg.yield %neg : f32
  } -> tensor<?x64xf32>
  return %0, %1 : tensor<8x8xf32>, tensor<?x64xf32>
}

// RUN: mlirc-opt --pass-pipeline='builtin.module(mlirc-reassociate-reductions)' %s | filecheck %s

// A row sum: its addition may be reassociated, so LLVM can vectorize it.
// CHECK-LABEL: func.func @row_sum
// CHECK: arith.addf %{{.*}}, %{{.*}} fastmath<reassoc> : f32
#in = affine_map<(d0, d1) -> (d0, d1)>
#row = affine_map<(d0, d1) -> (d0)>
func.func @row_sum(%x: tensor<4x8xf32>, %init: tensor<4xf32>) -> tensor<4xf32> {
  %0 = linalg.generic {indexing_maps = [#in, #row], iterator_types = ["parallel", "reduction"]}
      ins(%x : tensor<4x8xf32>) outs(%init : tensor<4xf32>) {
  ^bb0(%in: f32, %out: f32):
    %sum = arith.addf %in, %out : f32
    linalg.yield %sum : f32
  } -> tensor<4xf32>
  return %0 : tensor<4xf32>
}

// Elementwise ops keep the IEEE order (nothing to vectorize across).
// CHECK-LABEL: func.func @elementwise
// CHECK: arith.addf
// CHECK-NOT: fastmath
func.func @elementwise(%x: tensor<4xf32>, %init: tensor<4xf32>) -> tensor<4xf32> {
  %0 = linalg.generic {indexing_maps = [affine_map<(d0) -> (d0)>, affine_map<(d0) -> (d0)>],
                       iterator_types = ["parallel"]}
      ins(%x : tensor<4xf32>) outs(%init : tensor<4xf32>) {
  ^bb0(%in: f32, %out: f32):
    %sum = arith.addf %in, %in : f32
    linalg.yield %sum : f32
  } -> tensor<4xf32>
  return %0 : tensor<4xf32>
}

// RUN: mlirc-opt --stage bufferized %s | filecheck %s

// Results become out-parameters written in place: the calling convention the
// JIT and the C header rely on. No tensors are left.
// CHECK-LABEL: func.func @main
// CHECK-SAME: (%[[X:.*]]: memref<2x3xf32>, %[[OUT:.*]]: memref<2x3xf32>)
// CHECK-NOT: tensor<
// CHECK: linalg.generic
// CHECK-SAME: outs(%[[OUT]] : memref<2x3xf32>)
// CHECK: return
// CHECK-NEXT: }
#map = affine_map<(d0, d1) -> (d0, d1)>
func.func @main(%x: tensor<2x3xf32>) -> tensor<2x3xf32> {
  %empty = tensor.empty() : tensor<2x3xf32>
  %0 = linalg.generic {indexing_maps = [#map, #map], iterator_types = ["parallel", "parallel"]}
      ins(%x : tensor<2x3xf32>) outs(%empty : tensor<2x3xf32>) {
  ^bb0(%in: f32, %out: f32):
    %1 = arith.addf %in, %in : f32
    linalg.yield %1 : f32
  } -> tensor<2x3xf32>
  return %0 : tensor<2x3xf32>
}

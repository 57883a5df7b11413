// RUN: mlirc-opt --pass-pipeline='builtin.module(mlirc-drop-unused-results)' %s | filecheck %s

// torch-mlir's max(dim) is an argmax; when only the maximum is used, the
// index result, its accumulator and its bookkeeping go.
// CHECK-LABEL: func.func @max_without_index
// CHECK: linalg.generic
// CHECK-SAME: outs(%{{.*}} : tensor<4xf32>)
// CHECK-NEXT: ^bb0(%[[IN:.*]]: f32, %[[OUT:.*]]: f32):
// CHECK-NEXT: %[[MAX:.*]] = arith.maximumf %[[IN]], %[[OUT]] : f32
// CHECK-NEXT: linalg.yield %[[MAX]] : f32
// CHECK-NOT: linalg.index
// CHECK-NOT: arith.select
#in = affine_map<(d0, d1) -> (d0, d1)>
#out = affine_map<(d0, d1) -> (d0)>
func.func @max_without_index(%x: tensor<4x8xf32>, %init: tensor<4xf32>, %index_init: tensor<4xi64>) -> tensor<4xf32> {
  %0:2 = linalg.generic {indexing_maps = [#in, #out, #out], iterator_types = ["parallel", "reduction"]}
      ins(%x : tensor<4x8xf32>) outs(%init, %index_init : tensor<4xf32>, tensor<4xi64>) {
  ^bb0(%in: f32, %out: f32, %out_index: i64):
    %i = linalg.index 1 : index
    %i64 = arith.index_cast %i : index to i64
    %max = arith.maximumf %in, %out : f32
    %greater = arith.cmpf ogt, %in, %out : f32
    %index = arith.select %greater, %i64, %out_index : i64
    linalg.yield %max, %index : f32, i64
  } -> (tensor<4xf32>, tensor<4xi64>)
  return %0#0 : tensor<4xf32>
}

// Both results used: unchanged.
// CHECK-LABEL: func.func @both_used
// CHECK: %{{.*}}:2 = linalg.generic
func.func @both_used(%x: tensor<4x8xf32>, %init: tensor<4xf32>, %index_init: tensor<4xi64>) -> (tensor<4xf32>, tensor<4xi64>) {
  %0:2 = linalg.generic {indexing_maps = [#in, #out, #out], iterator_types = ["parallel", "reduction"]}
      ins(%x : tensor<4x8xf32>) outs(%init, %index_init : tensor<4xf32>, tensor<4xi64>) {
  ^bb0(%in: f32, %out: f32, %out_index: i64):
    %i = linalg.index 1 : index
    %i64 = arith.index_cast %i : index to i64
    %max = arith.maximumf %in, %out : f32
    %greater = arith.cmpf ogt, %in, %out : f32
    %index = arith.select %greater, %i64, %out_index : i64
    linalg.yield %max, %index : f32, i64
  } -> (tensor<4xf32>, tensor<4xi64>)
  return %0#0, %0#1 : tensor<4xf32>, tensor<4xi64>
}

// The kept result reads the dropped one's accumulator: unchanged.
#vector = affine_map<(d0) -> (d0)>
// CHECK-LABEL: func.func @kept_reads_dropped
// CHECK: %{{.*}}:2 = linalg.generic
func.func @kept_reads_dropped(%x: tensor<4xf32>, %a: tensor<4xf32>, %b: tensor<4xf32>) -> tensor<4xf32> {
  %0:2 = linalg.generic {indexing_maps = [#vector, #vector, #vector], iterator_types = ["parallel"]}
      ins(%x : tensor<4xf32>) outs(%a, %b : tensor<4xf32>, tensor<4xf32>) {
  ^bb0(%in: f32, %out_a: f32, %out_b: f32):
    %sum = arith.addf %in, %out_b : f32
    linalg.yield %sum, %in : f32, f32
  } -> (tensor<4xf32>, tensor<4xf32>)
  return %0#0 : tensor<4xf32>
}

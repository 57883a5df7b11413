// RUN: mlirc-opt --pass-pipeline='builtin.module(mlirc-distinct-results)' %s | filecheck %s

// A tensor returned twice (an input updated in place that is also the
// model's output): the second result becomes a copy, so bufferization gives
// each out-parameter its own buffer.
// CHECK-LABEL: func.func @main
// CHECK: %[[ADD:.*]] = arith.addf
// CHECK: %[[COPY:.*]] = bufferization.alloc_tensor() copy(%[[ADD]])
// CHECK: return %[[ADD]], %[[COPY]]
func.func @main(%x: tensor<4xf32>) -> (tensor<4xf32>, tensor<4xf32>) {
  %0 = arith.addf %x, %x : tensor<4xf32>
  return %0, %0 : tensor<4xf32>, tensor<4xf32>
}

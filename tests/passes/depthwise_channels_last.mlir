// RUN: mlirc-opt --pass-pipeline='builtin.module(mlirc-depthwise-channels-last)' %s | filecheck %s

// A static f32 NCHW depthwise convolution becomes an NHWC one between
// transposes, tiled (8 pixels x 16 channels) and vectorized over channels.
// CHECK-LABEL: func.func @depthwise
// CHECK-NOT: linalg.depthwise_conv_2d_nchw_chw
// CHECK: linalg.transpose {{.*}} permutation = [0, 2, 3, 1]
// CHECK: linalg.transpose {{.*}} permutation = [1, 2, 0]
// CHECK: scf.for
// CHECK: vector.transfer_read {{.*}} vector<1x10x16xf32>
// CHECK: vector.fma {{.*}} : vector<1x8x16xf32>
// CHECK: linalg.transpose {{.*}} permutation = [0, 3, 1, 2]
func.func @depthwise(%x: tensor<1x32x18x18xf32>, %w: tensor<32x3x3xf32>,
                     %o: tensor<1x32x16x16xf32>) -> tensor<1x32x16x16xf32> {
  %r = linalg.depthwise_conv_2d_nchw_chw
         {dilations = dense<1> : tensor<2xi64>, strides = dense<1> : tensor<2xi64>}
         ins(%x, %w : tensor<1x32x18x18xf32>, tensor<32x3x3xf32>)
         outs(%o : tensor<1x32x16x16xf32>) -> tensor<1x32x16x16xf32>
  return %r : tensor<1x32x16x16xf32>
}

// Two channels are too few for a vector: left as it is.
// CHECK-LABEL: func.func @narrow
// CHECK: linalg.depthwise_conv_2d_nchw_chw
// CHECK-NOT: linalg.transpose
func.func @narrow(%x: tensor<1x2x10x10xf32>, %w: tensor<2x3x3xf32>,
                  %o: tensor<1x2x8x8xf32>) -> tensor<1x2x8x8xf32> {
  %r = linalg.depthwise_conv_2d_nchw_chw
         {dilations = dense<1> : tensor<2xi64>, strides = dense<1> : tensor<2xi64>}
         ins(%x, %w : tensor<1x2x10x10xf32>, tensor<2x3x3xf32>)
         outs(%o : tensor<1x2x8x8xf32>) -> tensor<1x2x8x8xf32>
  return %r : tensor<1x2x8x8xf32>
}

// A bias broadcast as the initial output is built channels-last directly
// (no transpose of it; the NCHW broadcast goes).
// CHECK-LABEL: func.func @bias_init
// CHECK-NOT: dimensions = [0, 2, 3]
// CHECK: linalg.broadcast ins(%{{.*}} : tensor<32xf32>) outs(%{{.*}} : tensor<1x16x16x32xf32>) dimensions = [0, 1, 2]
// CHECK-NOT: linalg.transpose ins(%broadcasted
func.func @bias_init(%x: tensor<1x32x18x18xf32>, %w: tensor<32x3x3xf32>,
                     %b: tensor<32xf32>) -> tensor<1x32x16x16xf32> {
  %e = tensor.empty() : tensor<1x32x16x16xf32>
  %o = linalg.broadcast ins(%b : tensor<32xf32>) outs(%e : tensor<1x32x16x16xf32>) dimensions = [0, 2, 3]
  %r = linalg.depthwise_conv_2d_nchw_chw
         {dilations = dense<1> : tensor<2xi64>, strides = dense<1> : tensor<2xi64>}
         ins(%x, %w : tensor<1x32x18x18xf32>, tensor<32x3x3xf32>)
         outs(%o : tensor<1x32x16x16xf32>) -> tensor<1x32x16x16xf32>
  return %r : tensor<1x32x16x16xf32>
}

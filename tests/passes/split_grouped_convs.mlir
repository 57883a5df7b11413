// RUN: mlirc-opt --pass-pipeline='builtin.module(mlirc-split-grouped-convs)' %s | filecheck %s

// A grouped convolution as torch-mlir bufferizes it (expand_shape views that
// split the channels into 2 groups) becomes one NCHW convolution per group on
// subviews of the unsplit input, filter and output.
// CHECK-LABEL: func.func @two_groups
// CHECK-NOT: linalg.conv_2d_ngchw_gfchw
// CHECK: %[[IN0:.*]] = memref.subview %arg0[0, 0, 0, 0] [1, 4, 6, 6] [1, 1, 1, 1] : memref<1x8x6x6xf32> to memref<1x4x6x6xf32, strided<[288, 36, 6, 1]>>
// CHECK: %[[F0:.*]] = memref.subview %arg1[0, 0, 0, 0] [3, 4, 3, 3]
// CHECK: %[[OUT0:.*]] = memref.subview %arg2[0, 0, 0, 0] [1, 3, 4, 4]
// CHECK: linalg.conv_2d_nchw_fchw {dilations = dense<1> : tensor<2xi64>, strides = dense<1> : tensor<2xi64>} ins(%[[IN0]], %[[F0]] : {{.*}}) outs(%[[OUT0]] : {{.*}})
// CHECK: %[[IN1:.*]] = memref.subview %arg0[0, 4, 0, 0] [1, 4, 6, 6] [1, 1, 1, 1] : memref<1x8x6x6xf32> to memref<1x4x6x6xf32, strided<[288, 36, 6, 1], offset: 144>>
// CHECK: %[[F1:.*]] = memref.subview %arg1[3, 0, 0, 0] [3, 4, 3, 3]
// CHECK: %[[OUT1:.*]] = memref.subview %arg2[0, 3, 0, 0] [1, 3, 4, 4]
// CHECK: linalg.conv_2d_nchw_fchw {{.*}} ins(%[[IN1]], %[[F1]] : {{.*}}) outs(%[[OUT1]] : {{.*}})
func.func @two_groups(%in: memref<1x8x6x6xf32>, %f: memref<6x4x3x3xf32>, %out: memref<1x6x4x4xf32>) {
  %in5 = memref.expand_shape %in [[0], [1, 2], [3], [4]] output_shape [1, 2, 4, 6, 6]
    : memref<1x8x6x6xf32> into memref<1x2x4x6x6xf32>
  %f5 = memref.expand_shape %f [[0, 1], [2], [3], [4]] output_shape [2, 3, 4, 3, 3]
    : memref<6x4x3x3xf32> into memref<2x3x4x3x3xf32>
  %out5 = memref.expand_shape %out [[0], [1, 2], [3], [4]] output_shape [1, 2, 3, 4, 4]
    : memref<1x6x4x4xf32> into memref<1x2x3x4x4xf32>
  linalg.conv_2d_ngchw_gfchw {dilations = dense<1> : vector<2xi64>, strides = dense<1> : vector<2xi64>}
    ins(%in5, %f5 : memref<1x2x4x6x6xf32>, memref<2x3x4x3x3xf32>) outs(%out5 : memref<1x2x3x4x4xf32>)
  return
}

// Operands that are not views of NCHW buffers: left alone.
// CHECK-LABEL: func.func @not_views
// CHECK: linalg.conv_2d_ngchw_gfchw
func.func @not_views(%in: memref<1x2x4x6x6xf32>, %f: memref<2x3x4x3x3xf32>, %out: memref<1x2x3x4x4xf32>) {
  linalg.conv_2d_ngchw_gfchw {dilations = dense<1> : vector<2xi64>, strides = dense<1> : vector<2xi64>}
    ins(%in, %f : memref<1x2x4x6x6xf32>, memref<2x3x4x3x3xf32>) outs(%out : memref<1x2x3x4x4xf32>)
  return
}

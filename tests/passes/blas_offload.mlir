// RUN: mlirc-opt --pass-pipeline='builtin.module(mlirc-blas-offload{kernels=%S/blas_offload.kernels.json},func.func(canonicalize))' %s | filecheck %s
// The kernels file asks for the packed GEMM wherever it can run, which the
// compiler would not choose on a CPU without AVX-512: the checks below then
// read the same on every host.

// The shim's declarations, and the slots of the call sites that keep a packed
// copy of a constant (a GEMM's weights, a convolution's transformed filter):
// CHECK-DAG: func.func private @mlirc_gemm_f32_packed({{.*}}, i64, memref<?xi64, strided<[?], offset: ?>>)
// CHECK-DAG: memref.global "private" @__mlirc_packed_weights_0 : memref<1xi64> = dense<0>
// CHECK-DAG: func.func private @mlirc_conv2d_nchw_bias_residual_f32(
// CHECK-DAG: func.func private @mlirc_conv2d_nchw_bias_f32(memref<?x?x?x?xf32, strided<[?, ?, ?, ?], offset: ?>>, {{.*}}, memref<?xf32, strided<[?], offset: ?>>, i64, i64, i64, i64, i64, i64, i64, i64, memref<?xi64, strided<[?], offset: ?>>)
// CHECK-DAG: func.func private @mlirc_conv2d_nchw_f32
// CHECK-DAG: func.func private @mlirc_gemm_f32(memref<?x?xf32, strided<[?, ?], offset: ?>>

// A matmul whose right operand is a transposed copy of a weight: the copy is
// replaced by a transposed view and the matmul by a GEMM call.
// CHECK-LABEL: func.func @matmul_transposed
// CHECK-NOT: linalg.transpose
// CHECK-NOT: memref.alloc
// CHECK: %[[VIEW:.*]] = memref.transpose %{{.*}} (d0, d1) -> (d1, d0) : memref<16x8xf32> to memref<8x16xf32, strided<[1, 8]>>
// CHECK: %[[B:.*]] = memref.cast %[[VIEW]]
// CHECK: call @mlirc_gemm_f32(%{{.*}}, %[[B]], %{{.*}})
// CHECK-NOT: linalg.matmul
func.func @matmul_transposed(%a: memref<4x8xf32>, %w: memref<16x8xf32>, %c: memref<4x16xf32>) {
  %t = memref.alloc() : memref<8x16xf32>
  linalg.transpose ins(%w : memref<16x8xf32>) outs(%t : memref<8x16xf32>) permutation = [1, 0]
  linalg.matmul ins(%a, %t : memref<4x8xf32>, memref<8x16xf32>) outs(%c : memref<4x16xf32>)
  memref.dealloc %t : memref<8x16xf32>
  return
}

// One buffer reused for two layers' transposed weights (bufferization shares
// same-shaped temporaries): each GEMM reads its own weight through a view.
// A transpose that something else also reads stays.
// CHECK-LABEL: func.func @transposes_into_one_buffer
// CHECK: %[[V1:.*]] = memref.transpose %arg1
// CHECK: %[[B1:.*]] = memref.cast %[[V1]]
// CHECK: call @mlirc_gemm_f32(%{{.*}}, %[[B1]], %{{.*}})
// CHECK: %[[V2:.*]] = memref.transpose %arg2
// CHECK: %[[B2:.*]] = memref.cast %[[V2]]
// CHECK: call @mlirc_gemm_f32(%{{.*}}, %[[B2]], %{{.*}})
// CHECK: linalg.transpose ins(%arg1
// CHECK: call @mlirc_gemm_f32
// CHECK: memref.copy
func.func @transposes_into_one_buffer(%a: memref<4x8xf32>, %w1: memref<16x8xf32>,
                                      %w2: memref<16x8xf32>, %c1: memref<4x16xf32>,
                                      %c2: memref<4x16xf32>, %c3: memref<4x16xf32>,
                                      %keep: memref<8x16xf32>) {
  %t = memref.alloc() : memref<8x16xf32>
  linalg.transpose ins(%w1 : memref<16x8xf32>) outs(%t : memref<8x16xf32>) permutation = [1, 0]
  linalg.matmul ins(%a, %t : memref<4x8xf32>, memref<8x16xf32>) outs(%c1 : memref<4x16xf32>)
  linalg.transpose ins(%w2 : memref<16x8xf32>) outs(%t : memref<8x16xf32>) permutation = [1, 0]
  linalg.matmul ins(%a, %t : memref<4x8xf32>, memref<8x16xf32>) outs(%c2 : memref<4x16xf32>)
  linalg.transpose ins(%w1 : memref<16x8xf32>) outs(%t : memref<8x16xf32>) permutation = [1, 0]
  linalg.matmul ins(%a, %t : memref<4x8xf32>, memref<8x16xf32>) outs(%c3 : memref<4x16xf32>)
  memref.copy %t, %keep : memref<8x16xf32> to memref<8x16xf32>
  memref.dealloc %t : memref<8x16xf32>
  return
}

// CHECK-LABEL: func.func @batched
// CHECK: call @mlirc_gemm_f64_batched
func.func @batched(%a: memref<2x3x4xf64>, %b: memref<2x4x5xf64>, %c: memref<2x3x5xf64>) {
  linalg.batch_matmul ins(%a, %b : memref<2x3x4xf64>, memref<2x4x5xf64>) outs(%c : memref<2x3x5xf64>)
  return
}

// CHECK-LABEL: func.func @conv
// CHECK: %[[TWO:.*]] = arith.constant 2 : i64
// CHECK: call @mlirc_conv2d_nchw_f32({{.*}}, %[[TWO]], %[[TWO]], %{{.*}}, %{{.*}})
func.func @conv(%in: memref<1x3x9x9xf32>, %f: memref<4x3x3x3xf32>, %out: memref<1x4x4x4xf32>) {
  linalg.conv_2d_nchw_fchw {dilations = dense<1> : tensor<2xi64>, strides = dense<2> : tensor<2xi64>}
    ins(%in, %f : memref<1x3x9x9xf32>, memref<4x3x3x3xf32>) outs(%out : memref<1x4x4x4xf32>)
  return
}

// An input that is half the channels of another buffer (ShuffleNet's
// channel split): each image is row-major, so the kernel reads it through
// its descriptor (offset and image stride).
// CHECK-LABEL: func.func @conv_channel_split
// CHECK: %[[HALF:.*]] = memref.subview
// CHECK: %[[IN:.*]] = memref.cast %[[HALF]]
// CHECK: call @mlirc_conv2d_nchw_f32(%[[IN]]
// CHECK-NOT: linalg.conv_2d_nchw_fchw
func.func @conv_channel_split(%x: memref<2x8x5x5xf32>, %f: memref<4x4x1x1xf32>, %out: memref<2x4x5x5xf32>) {
  %half = memref.subview %x[0, 4, 0, 0] [2, 4, 5, 5] [1, 1, 1, 1]
    : memref<2x8x5x5xf32> to memref<2x4x5x5xf32, strided<[200, 25, 5, 1], offset: 100>>
  linalg.conv_2d_nchw_fchw {dilations = dense<1> : tensor<2xi64>, strides = dense<1> : tensor<2xi64>}
    ins(%half, %f : memref<2x4x5x5xf32, strided<[200, 25, 5, 1], offset: 100>>, memref<4x4x1x1xf32>)
    outs(%out : memref<2x4x5x5xf32>)
  return
}

// Rows that are not contiguous (a column slice) keep the convolution in MLIR.
// CHECK-LABEL: func.func @conv_column_slice
// CHECK: linalg.conv_2d_nchw_fchw
func.func @conv_column_slice(%x: memref<1x4x5x8xf32>, %f: memref<4x4x1x1xf32>, %out: memref<1x4x5x5xf32>) {
  %part = memref.subview %x[0, 0, 0, 0] [1, 4, 5, 5] [1, 1, 1, 1]
    : memref<1x4x5x8xf32> to memref<1x4x5x5xf32, strided<[160, 40, 8, 1]>>
  linalg.conv_2d_nchw_fchw {dilations = dense<1> : tensor<2xi64>, strides = dense<1> : tensor<2xi64>}
    ins(%part, %f : memref<1x4x5x5xf32, strided<[160, 40, 8, 1]>>, memref<4x4x1x1xf32>)
    outs(%out : memref<1x4x5x5xf32>)
  return
}

// Integer matmuls stay in MLIR.
// CHECK-LABEL: func.func @integer
// CHECK: linalg.matmul
func.func @integer(%a: memref<2x2xi32>, %b: memref<2x2xi32>, %c: memref<2x2xi32>) {
  linalg.matmul ins(%a, %b : memref<2x2xi32>, memref<2x2xi32>) outs(%c : memref<2x2xi32>)
  return
}

// An operand with another layout keeps the whole matmul in MLIR, and the
// transpose feeding it stays too (regression: it used to be folded away).
// CHECK-LABEL: func.func @strided
// CHECK: linalg.transpose
// CHECK: linalg.matmul
func.func @strided(%a: memref<4x8xf32, strided<[16, 1]>>, %w: memref<4x8xf32>, %c: memref<4x4xf32>) {
  %t = memref.alloc() : memref<8x4xf32>
  linalg.transpose ins(%w : memref<4x8xf32>) outs(%t : memref<8x4xf32>) permutation = [1, 0]
  linalg.matmul ins(%a, %t : memref<4x8xf32, strided<[16, 1]>>, memref<8x4xf32>) outs(%c : memref<4x4xf32>)
  memref.dealloc %t : memref<8x4xf32>
  return
}

// The bias broadcast that initialises a convolution's output and the in-place
// ReLU after it fold into one call: the output is written once.
memref.global "private" constant @bias4 : memref<4xf32> = dense<[1.0, 2.0, 3.0, 4.0]>
// CHECK-LABEL: func.func @conv_bias_relu
// CHECK-NOT: linalg.broadcast
// CHECK-DAG: %[[ONE:.*]] = arith.constant 1 : i64
// CHECK-DAG: %[[ZERO:.*]] = arith.constant 0 : i64
// CHECK: %[[BIAS:.*]] = memref.cast %{{.*}} : memref<4xf32> to memref<?xf32, strided<[?], offset: ?>>
// CHECK: call @mlirc_conv2d_nchw_bias_f32(%{{.*}}, %{{.*}}, %{{.*}}, %[[BIAS]], %[[ONE]], %[[ONE]], %[[ONE]], %[[ONE]], %[[ZERO]], %[[ZERO]], %[[ONE]], %[[ZERO]], %{{.*}})
// CHECK-NOT: linalg.generic
// CHECK: return
func.func @conv_bias_relu(%in: memref<1x3x6x6xf32>, %f: memref<4x3x3x3xf32>, %out: memref<1x4x4x4xf32>) {
  %zero = arith.constant 0.0 : f32
  %bias = memref.get_global @bias4 : memref<4xf32>
  linalg.broadcast ins(%bias : memref<4xf32>) outs(%out : memref<1x4x4x4xf32>) dimensions = [0, 2, 3]
  linalg.conv_2d_nchw_fchw {dilations = dense<1> : tensor<2xi64>, strides = dense<1> : tensor<2xi64>}
    ins(%in, %f : memref<1x3x6x6xf32>, memref<4x3x3x3xf32>) outs(%out : memref<1x4x4x4xf32>)
  linalg.generic {indexing_maps = [affine_map<(n, c, h, w) -> (n, c, h, w)>, affine_map<(n, c, h, w) -> (n, c, h, w)>],
                  iterator_types = ["parallel", "parallel", "parallel", "parallel"]}
      ins(%out : memref<1x4x4x4xf32>) outs(%out : memref<1x4x4x4xf32>) {
  ^bb0(%x: f32, %o: f32):
    %positive = arith.cmpf ugt, %x, %zero : f32
    %relu = arith.select %positive, %x, %zero : f32
    linalg.yield %relu : f32
  }
  return
}

// A residual add in place after the convolution folds too (ResNet's shortcut),
// and so does the ReLU after it.
// CHECK-LABEL: func.func @conv_bias_residual_relu
// CHECK: %[[ON:.*]] = arith.constant 1 : i64
// CHECK: %[[SHORTCUT:.*]] = memref.cast %arg3
// CHECK: call @mlirc_conv2d_nchw_bias_residual_f32({{.*}}, %[[SHORTCUT]], {{.*}}, %[[ON]], %{{.*}}, %{{.*}})
// CHECK-NOT: linalg.generic
// CHECK: return
func.func @conv_bias_residual_relu(%in: memref<1x3x6x6xf32>, %f: memref<4x3x3x3xf32>, %out: memref<1x4x4x4xf32>,
                                   %residual: memref<1x4x4x4xf32>) {
  %zero = arith.constant 0.0 : f32
  %bias = memref.get_global @bias4 : memref<4xf32>
  linalg.broadcast ins(%bias : memref<4xf32>) outs(%out : memref<1x4x4x4xf32>) dimensions = [0, 2, 3]
  linalg.conv_2d_nchw_fchw {dilations = dense<1> : tensor<2xi64>, strides = dense<1> : tensor<2xi64>}
    ins(%in, %f : memref<1x3x6x6xf32>, memref<4x3x3x3xf32>) outs(%out : memref<1x4x4x4xf32>)
  linalg.generic {indexing_maps = [affine_map<(n, c, h, w) -> (n, c, h, w)>, affine_map<(n, c, h, w) -> (n, c, h, w)>,
                                   affine_map<(n, c, h, w) -> (n, c, h, w)>],
                  iterator_types = ["parallel", "parallel", "parallel", "parallel"]}
      ins(%residual, %out : memref<1x4x4x4xf32>, memref<1x4x4x4xf32>) outs(%out : memref<1x4x4x4xf32>) {
  ^bb0(%r: f32, %x: f32, %o: f32):
    %sum = arith.addf %x, %r : f32
    linalg.yield %sum : f32
  }
  linalg.generic {indexing_maps = [affine_map<(n, c, h, w) -> (n, c, h, w)>, affine_map<(n, c, h, w) -> (n, c, h, w)>],
                  iterator_types = ["parallel", "parallel", "parallel", "parallel"]}
      ins(%out : memref<1x4x4x4xf32>) outs(%out : memref<1x4x4x4xf32>) {
  ^bb0(%x: f32, %o: f32):
    %positive = arith.cmpf ugt, %x, %zero : f32
    %relu = arith.select %positive, %x, %zero : f32
    linalg.yield %relu : f32
  }
  return
}

// The kernel the compiler chose is the scalar after the ReLU flag (enum
// mlirc_conv_kernel) and the call's mlirc.kernel attribute: too few
// channels and filters for Winograd or the packed GEMM, and rows too short
// for the direct kernel, so im2col + BLAS (0). The call site's slot would
// keep a constant filter transformed or packed.
memref.global "private" constant @filter4 : memref<4x3x3x3xf32> = dense<0.25>
// CHECK-LABEL: func.func @conv_constant_filter
// CHECK-DAG: %[[KERNEL:.*]] = arith.constant 0 : i64
// CHECK-DAG: %[[SLOT:.*]] = memref.get_global @__mlirc_packed_weights_{{[0-9]+}} : memref<1xi64>
// CHECK: %[[SLOT_CAST:.*]] = memref.cast %[[SLOT]]
// CHECK: call @mlirc_conv2d_nchw_bias_f32({{.*}}, %[[KERNEL]], %[[SLOT_CAST]]) {mlirc.kernel = "im2col_blas", mlirc.problem = "conv2d@1,3,6,6,4,3,3,1,1,1,1,0,0,1", mlirc.site = "conv2d:{{[0-9]+}}"}
func.func @conv_constant_filter(%in: memref<1x3x6x6xf32>, %out: memref<1x4x4x4xf32>) {
  %f = memref.get_global @filter4 : memref<4x3x3x3xf32>
  %bias = memref.get_global @bias4 : memref<4xf32>
  linalg.broadcast ins(%bias : memref<4xf32>) outs(%out : memref<1x4x4x4xf32>) dimensions = [0, 2, 3]
  linalg.conv_2d_nchw_fchw {dilations = dense<1> : tensor<2xi64>, strides = dense<1> : tensor<2xi64>}
    ins(%in, %f : memref<1x3x6x6xf32>, memref<4x3x3x3xf32>) outs(%out : memref<1x4x4x4xf32>)
  return
}

// The residual is written between the convolution and the add: the add stays
// (the shim would read the residual too early); the bias still folds, with
// the ReLU flag off.
// CHECK-LABEL: func.func @conv_bias_residual_written_between
// CHECK: %[[OFF:.*]] = arith.constant 0 : i64
// CHECK: call @mlirc_conv2d_nchw_bias_f32({{.*}}, %[[OFF]], %[[OFF]], %{{.*}})
// CHECK: linalg.fill
// CHECK: linalg.generic
func.func @conv_bias_residual_written_between(%in: memref<1x3x6x6xf32>, %f: memref<4x3x3x3xf32>,
                                              %out: memref<1x4x4x4xf32>, %residual: memref<1x4x4x4xf32>) {
  %one = arith.constant 1.0 : f32
  %bias = memref.get_global @bias4 : memref<4xf32>
  linalg.broadcast ins(%bias : memref<4xf32>) outs(%out : memref<1x4x4x4xf32>) dimensions = [0, 2, 3]
  linalg.conv_2d_nchw_fchw {dilations = dense<1> : tensor<2xi64>, strides = dense<1> : tensor<2xi64>}
    ins(%in, %f : memref<1x3x6x6xf32>, memref<4x3x3x3xf32>) outs(%out : memref<1x4x4x4xf32>)
  linalg.fill ins(%one : f32) outs(%residual : memref<1x4x4x4xf32>)
  linalg.generic {indexing_maps = [affine_map<(n, c, h, w) -> (n, c, h, w)>, affine_map<(n, c, h, w) -> (n, c, h, w)>,
                                   affine_map<(n, c, h, w) -> (n, c, h, w)>],
                  iterator_types = ["parallel", "parallel", "parallel", "parallel"]}
      ins(%out, %residual : memref<1x4x4x4xf32>, memref<1x4x4x4xf32>) outs(%out : memref<1x4x4x4xf32>) {
  ^bb0(%x: f32, %r: f32, %o: f32):
    %sum = arith.addf %x, %r : f32
    linalg.yield %sum : f32
  }
  return
}

// A read of the initialised output between the broadcast and the convolution
// keeps the broadcast (and the plain accumulating call).
// CHECK-LABEL: func.func @conv_bias_read_between
// CHECK: linalg.broadcast
// CHECK: memref.copy
// CHECK: call @mlirc_conv2d_nchw_f32(
func.func @conv_bias_read_between(%in: memref<1x3x6x6xf32>, %f: memref<4x3x3x3xf32>, %out: memref<1x4x4x4xf32>,
                                  %seen: memref<1x4x4x4xf32>) {
  %bias = memref.get_global @bias4 : memref<4xf32>
  linalg.broadcast ins(%bias : memref<4xf32>) outs(%out : memref<1x4x4x4xf32>) dimensions = [0, 2, 3]
  memref.copy %out, %seen : memref<1x4x4x4xf32> to memref<1x4x4x4xf32>
  linalg.conv_2d_nchw_fchw {dilations = dense<1> : tensor<2xi64>, strides = dense<1> : tensor<2xi64>}
    ins(%in, %f : memref<1x3x6x6xf32>, memref<4x3x3x3xf32>) outs(%out : memref<1x4x4x4xf32>)
  return
}

// The zero-filled padded copy of the input folds into the call: the shim
// reads the unpadded input with pad_h = pad_w = 1.
// CHECK-LABEL: func.func @conv_padded_input
// CHECK-NOT: memref.alloc
// CHECK-NOT: linalg.fill
// CHECK-NOT: memref.copy
// CHECK-DAG: %[[ONE:.*]] = arith.constant 1 : i64
// CHECK-DAG: %[[ZERO:.*]] = arith.constant 0 : i64
// CHECK: %[[INPUT:.*]] = memref.cast %arg0 : memref<1x3x4x4xf32> to
// CHECK: call @mlirc_conv2d_nchw_bias_f32(%[[INPUT]], {{.*}}, %[[ONE]], %[[ONE]], %[[ZERO]], %[[ZERO]], %{{.*}})
func.func @conv_padded_input(%in: memref<1x3x4x4xf32>, %f: memref<4x3x3x3xf32>, %out: memref<1x4x4x4xf32>) {
  %zero = arith.constant 0.0 : f32
  %bias = memref.get_global @bias4 : memref<4xf32>
  %padded = memref.alloc() {alignment = 64 : i64} : memref<1x3x6x6xf32>
  linalg.fill ins(%zero : f32) outs(%padded : memref<1x3x6x6xf32>)
  %interior = memref.subview %padded[0, 0, 1, 1] [1, 3, 4, 4] [1, 1, 1, 1]
    : memref<1x3x6x6xf32> to memref<1x3x4x4xf32, strided<[108, 36, 6, 1], offset: 7>>
  memref.copy %in, %interior : memref<1x3x4x4xf32> to memref<1x3x4x4xf32, strided<[108, 36, 6, 1], offset: 7>>
  linalg.broadcast ins(%bias : memref<4xf32>) outs(%out : memref<1x4x4x4xf32>) dimensions = [0, 2, 3]
  linalg.conv_2d_nchw_fchw {dilations = dense<1> : tensor<2xi64>, strides = dense<1> : tensor<2xi64>}
    ins(%padded, %f : memref<1x3x6x6xf32>, memref<4x3x3x3xf32>) outs(%out : memref<1x4x4x4xf32>)
  memref.dealloc %padded : memref<1x3x6x6xf32>
  return
}

// ResNet's buffer reuse: the padded copy's source is the convolution's own
// output, which the bias broadcast then overwrites. Both fold: the call
// reads and writes %out (the shim reads an image's input before it writes
// that image's output).
// CHECK-LABEL: func.func @conv_padded_input_is_output
// CHECK-NOT: memref.alloc
// CHECK-NOT: linalg.fill
// CHECK-NOT: memref.copy
// CHECK-NOT: linalg.broadcast
// CHECK: %[[OUT:.*]] = memref.cast %arg0 : memref<1x4x4x4xf32> to
// CHECK: %[[SAME:.*]] = memref.cast %arg0 : memref<1x4x4x4xf32> to
// CHECK: call @mlirc_conv2d_nchw_bias_f32(%[[OUT]], {{.*}}, %[[SAME]],
func.func @conv_padded_input_is_output(%out: memref<1x4x4x4xf32>, %f: memref<4x4x3x3xf32>) {
  %zero = arith.constant 0.0 : f32
  %bias = memref.get_global @bias4 : memref<4xf32>
  %padded = memref.alloc() {alignment = 64 : i64} : memref<1x4x6x6xf32>
  linalg.fill ins(%zero : f32) outs(%padded : memref<1x4x6x6xf32>)
  %interior = memref.subview %padded[0, 0, 1, 1] [1, 4, 4, 4] [1, 1, 1, 1]
    : memref<1x4x6x6xf32> to memref<1x4x4x4xf32, strided<[144, 36, 6, 1], offset: 7>>
  memref.copy %out, %interior : memref<1x4x4x4xf32> to memref<1x4x4x4xf32, strided<[144, 36, 6, 1], offset: 7>>
  linalg.broadcast ins(%bias : memref<4xf32>) outs(%out : memref<1x4x4x4xf32>) dimensions = [0, 2, 3]
  linalg.conv_2d_nchw_fchw {dilations = dense<1> : tensor<2xi64>, strides = dense<1> : tensor<2xi64>}
    ins(%padded, %f : memref<1x4x6x6xf32>, memref<4x4x3x3xf32>) outs(%out : memref<1x4x4x4xf32>)
  memref.dealloc %padded : memref<1x4x6x6xf32>
  return
}

// Without a bias to fold, the call would accumulate into the buffer it reads
// through the padding: the padded copy stays.
// CHECK-LABEL: func.func @conv_padded_input_is_output_accumulating
// CHECK: linalg.fill
// CHECK: memref.copy
// CHECK: call @mlirc_conv2d_nchw_f32(
func.func @conv_padded_input_is_output_accumulating(%out: memref<1x4x4x4xf32>, %f: memref<4x4x3x3xf32>) {
  %zero = arith.constant 0.0 : f32
  %padded = memref.alloc() {alignment = 64 : i64} : memref<1x4x6x6xf32>
  linalg.fill ins(%zero : f32) outs(%padded : memref<1x4x6x6xf32>)
  %interior = memref.subview %padded[0, 0, 1, 1] [1, 4, 4, 4] [1, 1, 1, 1]
    : memref<1x4x6x6xf32> to memref<1x4x4x4xf32, strided<[144, 36, 6, 1], offset: 7>>
  memref.copy %out, %interior : memref<1x4x4x4xf32> to memref<1x4x4x4xf32, strided<[144, 36, 6, 1], offset: 7>>
  linalg.conv_2d_nchw_fchw {dilations = dense<1> : tensor<2xi64>, strides = dense<1> : tensor<2xi64>}
    ins(%padded, %f : memref<1x4x6x6xf32>, memref<4x4x3x3xf32>) outs(%out : memref<1x4x4x4xf32>)
  memref.dealloc %padded : memref<1x4x6x6xf32>
  return
}

// A padded buffer that is read elsewhere too stays.
// CHECK-LABEL: func.func @conv_padded_input_shared
// CHECK: linalg.fill
// CHECK: memref.copy
// CHECK: call @mlirc_conv2d_nchw_f32(
func.func @conv_padded_input_shared(%in: memref<1x3x4x4xf32>, %f: memref<4x3x3x3xf32>, %out: memref<1x4x4x4xf32>,
                                    %seen: memref<1x3x6x6xf32>) {
  %zero = arith.constant 0.0 : f32
  %padded = memref.alloc() {alignment = 64 : i64} : memref<1x3x6x6xf32>
  linalg.fill ins(%zero : f32) outs(%padded : memref<1x3x6x6xf32>)
  %interior = memref.subview %padded[0, 0, 1, 1] [1, 3, 4, 4] [1, 1, 1, 1]
    : memref<1x3x6x6xf32> to memref<1x3x4x4xf32, strided<[108, 36, 6, 1], offset: 7>>
  memref.copy %in, %interior : memref<1x3x4x4xf32> to memref<1x3x4x4xf32, strided<[108, 36, 6, 1], offset: 7>>
  linalg.conv_2d_nchw_fchw {dilations = dense<1> : tensor<2xi64>, strides = dense<1> : tensor<2xi64>}
    ins(%padded, %f : memref<1x3x6x6xf32>, memref<4x3x3x3xf32>) outs(%out : memref<1x4x4x4xf32>)
  memref.copy %padded, %seen : memref<1x3x6x6xf32> to memref<1x3x6x6xf32>
  memref.dealloc %padded : memref<1x3x6x6xf32>
  return
}

// A ReLU into a fresh buffer, after which the convolution's own output is only
// overwritten: the call writes the ReLU's buffer directly (its allocation
// moves before the call) and the ReLU goes.
// CHECK-LABEL: func.func @conv_relu_into_fresh_buffer
// CHECK: %[[TARGET:.*]] = memref.cast %[[FRESH:alloc_[0-9]+]] : memref<1x4x4x4xf32>
// CHECK: call @mlirc_conv2d_nchw_bias_f32(%{{.*}}, %{{.*}}, %[[TARGET]], {{.*}}, %c1_i64, %c0_i64, %{{.*}})
// CHECK-NOT: linalg.generic
// CHECK: memref.copy %[[FRESH]], %arg2
func.func @conv_relu_into_fresh_buffer(%in: memref<1x3x6x6xf32>, %f: memref<4x3x3x3xf32>,
                                       %result: memref<1x4x4x4xf32>) {
  %zero = arith.constant 0.0 : f32
  %bias = memref.get_global @bias4 : memref<4xf32>
  %out = memref.alloc() : memref<1x4x4x4xf32>
  linalg.broadcast ins(%bias : memref<4xf32>) outs(%out : memref<1x4x4x4xf32>) dimensions = [0, 2, 3]
  linalg.conv_2d_nchw_fchw {dilations = dense<1> : tensor<2xi64>, strides = dense<1> : tensor<2xi64>}
    ins(%in, %f : memref<1x3x6x6xf32>, memref<4x3x3x3xf32>) outs(%out : memref<1x4x4x4xf32>)
  %fresh = memref.alloc() : memref<1x4x4x4xf32>
  linalg.generic {indexing_maps = [affine_map<(n, c, h, w) -> (n, c, h, w)>, affine_map<(n, c, h, w) -> (n, c, h, w)>],
                  iterator_types = ["parallel", "parallel", "parallel", "parallel"]}
      ins(%out : memref<1x4x4x4xf32>) outs(%fresh : memref<1x4x4x4xf32>) {
  ^bb0(%x: f32, %o: f32):
    %positive = arith.cmpf ugt, %x, %zero : f32
    %relu = arith.select %positive, %x, %zero : f32
    linalg.yield %relu : f32
  }
  linalg.fill ins(%zero : f32) outs(%out : memref<1x4x4x4xf32>)
  memref.copy %fresh, %result : memref<1x4x4x4xf32> to memref<1x4x4x4xf32>
  memref.dealloc %out : memref<1x4x4x4xf32>
  memref.dealloc %fresh : memref<1x4x4x4xf32>
  return
}

// The pre-ReLU values are read after the ReLU: the ReLU stays.
// CHECK-LABEL: func.func @conv_relu_output_read_later
// CHECK: call @mlirc_conv2d_nchw_bias_f32({{.*}}, %c0_i64, %c0_i64, %{{.*}})
// CHECK: linalg.generic
func.func @conv_relu_output_read_later(%in: memref<1x3x6x6xf32>, %f: memref<4x3x3x3xf32>,
                                       %result: memref<1x4x4x4xf32>, %seen: memref<1x4x4x4xf32>) {
  %zero = arith.constant 0.0 : f32
  %bias = memref.get_global @bias4 : memref<4xf32>
  %out = memref.alloc() : memref<1x4x4x4xf32>
  linalg.broadcast ins(%bias : memref<4xf32>) outs(%out : memref<1x4x4x4xf32>) dimensions = [0, 2, 3]
  linalg.conv_2d_nchw_fchw {dilations = dense<1> : tensor<2xi64>, strides = dense<1> : tensor<2xi64>}
    ins(%in, %f : memref<1x3x6x6xf32>, memref<4x3x3x3xf32>) outs(%out : memref<1x4x4x4xf32>)
  %fresh = memref.alloc() : memref<1x4x4x4xf32>
  linalg.generic {indexing_maps = [affine_map<(n, c, h, w) -> (n, c, h, w)>, affine_map<(n, c, h, w) -> (n, c, h, w)>],
                  iterator_types = ["parallel", "parallel", "parallel", "parallel"]}
      ins(%out : memref<1x4x4x4xf32>) outs(%fresh : memref<1x4x4x4xf32>) {
  ^bb0(%x: f32, %o: f32):
    %positive = arith.cmpf ugt, %x, %zero : f32
    %relu = arith.select %positive, %x, %zero : f32
    linalg.yield %relu : f32
  }
  memref.copy %out, %seen : memref<1x4x4x4xf32> to memref<1x4x4x4xf32>
  memref.copy %fresh, %result : memref<1x4x4x4xf32> to memref<1x4x4x4xf32>
  memref.dealloc %out : memref<1x4x4x4xf32>
  memref.dealloc %fresh : memref<1x4x4x4xf32>
  return
}

// A zero fill of the output right before the matmul becomes beta = 0 in the
// call (accumulate = 0) and goes; without it the call accumulates.
// CHECK-LABEL: func.func @matmul_after_zero_fill
// CHECK-NOT: linalg.fill
// CHECK-DAG: %[[ADD:.*]] = arith.constant 1 : i64
// CHECK-DAG: %[[SET:.*]] = arith.constant 0 : i64
// CHECK: call @mlirc_gemm_f32(%{{.*}}, %{{.*}}, %{{.*}}, %[[SET]])
// CHECK: call @mlirc_gemm_f32(%{{.*}}, %{{.*}}, %{{.*}}, %[[ADD]])
func.func @matmul_after_zero_fill(%a: memref<4x8xf32>, %b: memref<8x16xf32>, %c: memref<4x16xf32>) {
  %zero = arith.constant 0.0 : f32
  linalg.fill ins(%zero : f32) outs(%c : memref<4x16xf32>)
  linalg.matmul ins(%a, %b : memref<4x8xf32>, memref<8x16xf32>) outs(%c : memref<4x16xf32>)
  linalg.matmul ins(%a, %b : memref<4x8xf32>, memref<8x16xf32>) outs(%c : memref<4x16xf32>)
  return
}

// A matmul by a constant weight (through a transposed view) with at least 32
// columns calls the packed-weights kernel, with a zero-initialised slot of
// its own where the shim keeps the packed copy.
// CHECK-LABEL: func.func @matmul_constant_weight
// CHECK-DAG: %[[VIEW:.*]] = memref.transpose
// CHECK-DAG: %[[SLOT:.*]] = memref.get_global @__mlirc_packed_weights_{{[0-9]+}} : memref<1xi64>
// CHECK-DAG: %[[B:.*]] = memref.cast %[[VIEW]]
// CHECK-DAG: %[[SLOT_CAST:.*]] = memref.cast %[[SLOT]] : memref<1xi64> to memref<?xi64, strided<[?], offset: ?>>
// CHECK: call @mlirc_gemm_f32_packed(%{{.*}}, %[[B]], %{{.*}}, %{{.*}}, %[[SLOT_CAST]])
memref.global "private" constant @weight32x8 : memref<32x8xf32> = dense<0.5>
func.func @matmul_constant_weight(%a: memref<4x8xf32>, %c: memref<4x32xf32>) {
  %w = memref.get_global @weight32x8 : memref<32x8xf32>
  %t = memref.alloc() : memref<8x32xf32>
  linalg.transpose ins(%w : memref<32x8xf32>) outs(%t : memref<8x32xf32>) permutation = [1, 0]
  linalg.matmul ins(%a, %t : memref<4x8xf32>, memref<8x32xf32>) outs(%c : memref<4x32xf32>)
  memref.dealloc %t : memref<8x32xf32>
  return
}

// A constant weight with fewer than 32 columns stays with BLAS.
// CHECK-LABEL: func.func @matmul_narrow_constant_weight
// CHECK: call @mlirc_gemm_f32(
memref.global "private" constant @weight8x8 : memref<8x8xf32> = dense<0.5>
func.func @matmul_narrow_constant_weight(%a: memref<4x8xf32>, %c: memref<4x8xf32>) {
  %w = memref.get_global @weight8x8 : memref<8x8xf32>
  linalg.matmul ins(%a, %w : memref<4x8xf32>, memref<8x8xf32>) outs(%c : memref<4x8xf32>)
  return
}

// A packed GEMM into a zeroed C followed by a bias add and a ReLU: the call
// computes relu(A*B + bias) into the add's output; the fill, the add and the
// ReLU go.
// CHECK-LABEL: func.func @linear_bias_relu
// CHECK-NOT: linalg.fill
// CHECK: call @mlirc_gemm_f32_packed_bias(%{{.*}}, %{{.*}}, %[[OUT:.*]], %{{.*}}, %c1_i64, %{{.*}})
// CHECK-NOT: linalg.generic
// CHECK: return
memref.global "private" constant @bias32 : memref<32xf32> = dense<1.0>
#rows = affine_map<(d0, d1) -> (d0, d1)>
#columns = affine_map<(d0, d1) -> (d1)>
func.func @linear_bias_relu(%a: memref<4x8xf32>, %d: memref<4x32xf32>) {
  %zero = arith.constant 0.0 : f32
  %w = memref.get_global @weight32x8 : memref<32x8xf32>
  %bias = memref.get_global @bias32 : memref<32xf32>
  %t = memref.alloc() : memref<8x32xf32>
  linalg.transpose ins(%w : memref<32x8xf32>) outs(%t : memref<8x32xf32>) permutation = [1, 0]
  %c = memref.alloc() : memref<4x32xf32>
  linalg.fill ins(%zero : f32) outs(%c : memref<4x32xf32>)
  linalg.matmul ins(%a, %t : memref<4x8xf32>, memref<8x32xf32>) outs(%c : memref<4x32xf32>)
  linalg.generic {indexing_maps = [#rows, #columns, #rows], iterator_types = ["parallel", "parallel"]}
      ins(%c, %bias : memref<4x32xf32>, memref<32xf32>) outs(%d : memref<4x32xf32>) {
  ^bb0(%x: f32, %b: f32, %out: f32):
    %sum = arith.addf %x, %b : f32
    linalg.yield %sum : f32
  }
  linalg.generic {indexing_maps = [#rows, #rows], iterator_types = ["parallel", "parallel"]}
      ins(%d : memref<4x32xf32>) outs(%d : memref<4x32xf32>) {
  ^bb0(%x: f32, %out: f32):
    %positive = arith.cmpf ugt, %x, %zero : f32
    %relu = arith.select %positive, %x, %zero : f32
    linalg.yield %relu : f32
  }
  memref.dealloc %c : memref<4x32xf32>
  memref.dealloc %t : memref<8x32xf32>
  return
}

// The add's output is the matmul's own input (bufferization reused it): the
// call writes C, and the add becomes a copy of C.
// CHECK-LABEL: func.func @linear_bias_into_input
// CHECK: call @mlirc_gemm_f32_packed_bias(%{{.*}}, %{{.*}}, %[[C:.*]], %{{.*}}, %c0_i64, %{{.*}})
// CHECK: memref.copy
// CHECK-NOT: linalg.generic
// CHECK: return
func.func @linear_bias_into_input(%a: memref<4x32xf32>) {
  %zero = arith.constant 0.0 : f32
  %w = memref.get_global @weight32x32 : memref<32x32xf32>
  %bias = memref.get_global @bias32 : memref<32xf32>
  %c = memref.alloc() : memref<4x32xf32>
  linalg.fill ins(%zero : f32) outs(%c : memref<4x32xf32>)
  linalg.matmul ins(%a, %w : memref<4x32xf32>, memref<32x32xf32>) outs(%c : memref<4x32xf32>)
  linalg.generic {indexing_maps = [#rows, #columns, #rows], iterator_types = ["parallel", "parallel"]}
      ins(%c, %bias : memref<4x32xf32>, memref<32xf32>) outs(%a : memref<4x32xf32>) {
  ^bb0(%x: f32, %b: f32, %out: f32):
    %sum = arith.addf %x, %b : f32
    linalg.yield %sum : f32
  }
  memref.dealloc %c : memref<4x32xf32>
  return
}
memref.global "private" constant @weight32x32 : memref<32x32xf32> = dense<0.25>

// C is read after the add: nothing is folded beyond the packed call.
// CHECK-LABEL: func.func @linear_bias_output_read_later
// CHECK: call @mlirc_gemm_f32_packed(
// CHECK: linalg.generic
func.func @linear_bias_output_read_later(%a: memref<4x32xf32>, %d: memref<4x32xf32>, %e: memref<4x32xf32>) {
  %zero = arith.constant 0.0 : f32
  %w = memref.get_global @weight32x32 : memref<32x32xf32>
  %bias = memref.get_global @bias32 : memref<32xf32>
  %c = memref.alloc() : memref<4x32xf32>
  linalg.fill ins(%zero : f32) outs(%c : memref<4x32xf32>)
  linalg.matmul ins(%a, %w : memref<4x32xf32>, memref<32x32xf32>) outs(%c : memref<4x32xf32>)
  linalg.generic {indexing_maps = [#rows, #columns, #rows], iterator_types = ["parallel", "parallel"]}
      ins(%c, %bias : memref<4x32xf32>, memref<32xf32>) outs(%d : memref<4x32xf32>) {
  ^bb0(%x: f32, %b: f32, %out: f32):
    %sum = arith.addf %x, %b : f32
    linalg.yield %sum : f32
  }
  memref.copy %c, %e : memref<4x32xf32> to memref<4x32xf32>
  memref.dealloc %c : memref<4x32xf32>
  return
}

// The add's output is the matmul's input, a buffer of its own read after the
// add: the call writes C and the later reads take C; no copy.
// CHECK-LABEL: func.func @linear_bias_into_input_buffer
// CHECK: %[[A:.*]] = memref.alloc()
// CHECK: memref.copy %arg0, %[[A]]
// CHECK: %[[C:.*]] = memref.alloc()
// CHECK: call @mlirc_gemm_f32_packed_bias(
// CHECK-NEXT: memref.copy %[[C]], %arg1
// CHECK-NEXT: memref.dealloc %[[A]]
func.func @linear_bias_into_input_buffer(%x: memref<4x32xf32>, %result: memref<4x32xf32>) {
  %zero = arith.constant 0.0 : f32
  %w = memref.get_global @weight32x32 : memref<32x32xf32>
  %bias = memref.get_global @bias32 : memref<32xf32>
  %a = memref.alloc() : memref<4x32xf32>
  memref.copy %x, %a : memref<4x32xf32> to memref<4x32xf32>
  %c = memref.alloc() : memref<4x32xf32>
  linalg.fill ins(%zero : f32) outs(%c : memref<4x32xf32>)
  linalg.matmul ins(%a, %w : memref<4x32xf32>, memref<32x32xf32>) outs(%c : memref<4x32xf32>)
  linalg.generic {indexing_maps = [#rows, #columns, #rows], iterator_types = ["parallel", "parallel"]}
      ins(%c, %bias : memref<4x32xf32>, memref<32xf32>) outs(%a : memref<4x32xf32>) {
  ^bb0(%in: f32, %b: f32, %out: f32):
    %sum = arith.addf %in, %b : f32
    linalg.yield %sum : f32
  }
  memref.copy %a, %result : memref<4x32xf32> to memref<4x32xf32>
  memref.dealloc %a : memref<4x32xf32>
  memref.dealloc %c : memref<4x32xf32>
  return
}

// The add's output is allocated after the matmul (as BERT's attention
// projections bufferize): the allocation moves up so the call can write it.
// CHECK-LABEL: func.func @linear_bias_into_a_later_allocation
// CHECK: %[[OUT:.*]] = memref.alloc() : memref<4x32xf32>
// CHECK: %[[CAST:.*]] = memref.cast %[[OUT]]
// CHECK: call @mlirc_gemm_f32_packed_bias(%{{.*}}, %{{.*}}, %[[CAST]], %{{.*}}, %c0_i64, %{{.*}})
// CHECK-NOT: linalg.generic
// CHECK: return %[[OUT]]
func.func @linear_bias_into_a_later_allocation(%a: memref<4x8xf32>) -> memref<4x32xf32> {
  %zero = arith.constant 0.0 : f32
  %w = memref.get_global @weight32x8 : memref<32x8xf32>
  %bias = memref.get_global @bias32 : memref<32xf32>
  %t = memref.alloc() : memref<8x32xf32>
  linalg.transpose ins(%w : memref<32x8xf32>) outs(%t : memref<8x32xf32>) permutation = [1, 0]
  %c = memref.alloc() : memref<4x32xf32>
  linalg.fill ins(%zero : f32) outs(%c : memref<4x32xf32>)
  linalg.matmul ins(%a, %t : memref<4x8xf32>, memref<8x32xf32>) outs(%c : memref<4x32xf32>)
  %d = memref.alloc() : memref<4x32xf32>
  linalg.generic {indexing_maps = [#rows, #columns, #rows], iterator_types = ["parallel", "parallel"]}
      ins(%c, %bias : memref<4x32xf32>, memref<32xf32>) outs(%d : memref<4x32xf32>) {
  ^bb0(%x: f32, %b: f32, %out: f32):
    %sum = arith.addf %x, %b : f32
    linalg.yield %sum : f32
  }
  memref.dealloc %c : memref<4x32xf32>
  memref.dealloc %t : memref<8x32xf32>
  return %d : memref<4x32xf32>
}

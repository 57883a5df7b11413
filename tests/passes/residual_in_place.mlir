// RUN: mlirc-opt --pass-pipeline='builtin.module(mlirc-residual-in-place)' %s | filecheck %s

!t = memref<1x8x4x4xf32>
!view = memref<?x?x?x?xf32, strided<[?, ?, ?, ?], offset: ?>>
func.func private @mlirc_conv2d_nchw_bias_residual_f32(!view, !view, !view, memref<?xf32>, !view, i64, i64, i64, i64, i64, i64, i64, i64, memref<?xi64>)
func.func private @consume(!view)

// The shortcut is dead after the call (its dealloc follows): the call
// writes over it, the output's alloc and the shortcut's dealloc go, and
// later uses of the output read the shortcut's buffer.
// CHECK-LABEL: func.func @block
// CHECK-SAME: (%[[IN:.*]]: memref<1x8x4x4xf32>, %[[W:.*]]: memref<8x8x1x1xf32>
// CHECK: %[[SHORTCUT:.*]] = memref.alloc() : memref<1x8x4x4xf32>
// CHECK-NOT: memref.alloc
// CHECK: %[[OUT_VIEW:.*]] = memref.cast %[[SHORTCUT]]
// CHECK: %[[RES_VIEW:.*]] = memref.cast %[[SHORTCUT]]
// CHECK: call @mlirc_conv2d_nchw_bias_residual_f32({{.*}}, {{.*}}, %[[OUT_VIEW]], {{.*}}, %[[RES_VIEW]],
// CHECK-NEXT: %[[AFTER:.*]] = memref.cast %[[SHORTCUT]]
// CHECK-NEXT: call @consume(%[[AFTER]])
// CHECK-NEXT: memref.dealloc %[[SHORTCUT]]
// CHECK-NOT: memref.dealloc
func.func @block(%in: !t, %w: memref<8x8x1x1xf32>, %bias: memref<?xf32>, %slot: memref<?xi64>) {
  %c0 = arith.constant 0 : i64
  %c1 = arith.constant 1 : i64
  %shortcut = memref.alloc() : !t
  memref.copy %in, %shortcut : !t to !t
  %out = memref.alloc() : !t
  %x = memref.cast %in : !t to !view
  %f = memref.cast %w : memref<8x8x1x1xf32> to !view
  %o = memref.cast %out : !t to !view
  %r = memref.cast %shortcut : !t to !view
  call @mlirc_conv2d_nchw_bias_residual_f32(%x, %f, %o, %bias, %r, %c1, %c1, %c1, %c1, %c0, %c0, %c1, %c0, %slot) : (!view, !view, !view, memref<?xf32>, !view, i64, i64, i64, i64, i64, i64, i64, i64, memref<?xi64>) -> ()
  memref.dealloc %shortcut : !t
  %after = memref.cast %out : !t to !view
  call @consume(%after) : (!view) -> ()
  memref.dealloc %out : !t
  return
}

// The shortcut is used after the call: both buffers stay.
// CHECK-LABEL: func.func @live_shortcut
// CHECK: memref.alloc
// CHECK: memref.alloc
// CHECK: call @mlirc_conv2d_nchw_bias_residual_f32
// CHECK: memref.dealloc
// CHECK: memref.dealloc
func.func @live_shortcut(%in: !t, %w: memref<8x8x1x1xf32>, %bias: memref<?xf32>, %slot: memref<?xi64>) {
  %c0 = arith.constant 0 : i64
  %c1 = arith.constant 1 : i64
  %shortcut = memref.alloc() : !t
  memref.copy %in, %shortcut : !t to !t
  %out = memref.alloc() : !t
  %x = memref.cast %in : !t to !view
  %f = memref.cast %w : memref<8x8x1x1xf32> to !view
  %o = memref.cast %out : !t to !view
  %r = memref.cast %shortcut : !t to !view
  call @mlirc_conv2d_nchw_bias_residual_f32(%x, %f, %o, %bias, %r, %c1, %c1, %c1, %c1, %c0, %c0, %c1, %c0, %slot) : (!view, !view, !view, memref<?xf32>, !view, i64, i64, i64, i64, i64, i64, i64, i64, memref<?xi64>) -> ()
  call @consume(%r) : (!view) -> ()
  memref.dealloc %shortcut : !t
  call @consume(%o) : (!view) -> ()
  memref.dealloc %out : !t
  return
}

// The input is the shortcut (a 1x1 layer reads it while it writes), or the
// output is written before the call: nothing changes.
// CHECK-LABEL: func.func @input_is_shortcut
// CHECK: memref.alloc
// CHECK: memref.alloc
// CHECK-LABEL: func.func @output_written_before
// CHECK: memref.alloc
// CHECK: memref.alloc
// CHECK: memref.dealloc %{{.*}} : memref<1x8x4x4xf32>
// CHECK: memref.dealloc
func.func @input_is_shortcut(%in: !t, %w: memref<8x8x1x1xf32>, %bias: memref<?xf32>, %slot: memref<?xi64>) {
  %c0 = arith.constant 0 : i64
  %c1 = arith.constant 1 : i64
  %shortcut = memref.alloc() : !t
  memref.copy %in, %shortcut : !t to !t
  %out = memref.alloc() : !t
  %x = memref.cast %shortcut : !t to !view
  %f = memref.cast %w : memref<8x8x1x1xf32> to !view
  %o = memref.cast %out : !t to !view
  %r = memref.cast %shortcut : !t to !view
  call @mlirc_conv2d_nchw_bias_residual_f32(%x, %f, %o, %bias, %r, %c1, %c1, %c1, %c1, %c0, %c0, %c1, %c0, %slot) : (!view, !view, !view, memref<?xf32>, !view, i64, i64, i64, i64, i64, i64, i64, i64, memref<?xi64>) -> ()
  memref.dealloc %shortcut : !t
  call @consume(%o) : (!view) -> ()
  memref.dealloc %out : !t
  return
}
func.func @output_written_before(%in: !t, %w: memref<8x8x1x1xf32>, %bias: memref<?xf32>, %slot: memref<?xi64>) {
  %c0 = arith.constant 0 : i64
  %c1 = arith.constant 1 : i64
  %shortcut = memref.alloc() : !t
  memref.copy %in, %shortcut : !t to !t
  %out = memref.alloc() : !t
  memref.copy %in, %out : !t to !t
  %x = memref.cast %in : !t to !view
  %f = memref.cast %w : memref<8x8x1x1xf32> to !view
  %o = memref.cast %out : !t to !view
  %r = memref.cast %shortcut : !t to !view
  call @mlirc_conv2d_nchw_bias_residual_f32(%x, %f, %o, %bias, %r, %c1, %c1, %c1, %c1, %c0, %c0, %c1, %c0, %slot) : (!view, !view, !view, memref<?xf32>, !view, i64, i64, i64, i64, i64, i64, i64, i64, memref<?xi64>) -> ()
  memref.dealloc %shortcut : !t
  call @consume(%o) : (!view) -> ()
  memref.dealloc %out : !t
  return
}

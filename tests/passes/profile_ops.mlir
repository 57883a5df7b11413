// RUN: mlirc-opt --pass-pipeline='builtin.module(mlirc-profile-ops)' %s | filecheck %s

// Each op that does work gets a timer (its id) around it; allocations,
// views and the return do not. Labels go into a module attribute.
// CHECK: module attributes {mlirc.profile_ops = "[{\22op\22: \22linalg.fill\22
// CHECK: func.func private @mlirc_profile_begin(i64)
// CHECK: func.func private @mlirc_profile_end(i64)
// CHECK-LABEL: func.func @main
// CHECK: memref.alloc
// CHECK-NEXT: %[[ID0:.*]] = arith.constant 0 : i64
// CHECK-NEXT: call @mlirc_profile_begin(%[[ID0]])
// CHECK-NEXT: linalg.fill
// CHECK-NEXT: %[[END0:.*]] = arith.constant 0 : i64
// CHECK-NEXT: call @mlirc_profile_end(%[[END0]])
// CHECK: call @mlirc_profile_begin
// CHECK-NEXT: memref.copy
// CHECK-NEXT: arith.constant 1 : i64
// CHECK-NEXT: call @mlirc_profile_end
// CHECK-NEXT: memref.dealloc
// CHECK-NEXT: return
func.func @main(%out: memref<4xf32>) {
  %zero = arith.constant 0.0 : f32
  %tmp = memref.alloc() : memref<4xf32>
  linalg.fill ins(%zero : f32) outs(%tmp : memref<4xf32>)
  memref.copy %tmp, %out : memref<4xf32> to memref<4xf32>
  memref.dealloc %tmp : memref<4xf32>
  return
}

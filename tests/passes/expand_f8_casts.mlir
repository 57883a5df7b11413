// RUN: mlirc-opt --pass-pipeline='builtin.module(mlirc-expand-f8-casts)' %s | filecheck %s

// extf from and truncf to an 8-bit float become integer arithmetic on the
// bit pattern (LLVM has no f8 type); casts between standard types stay.
// CHECK-LABEL: func.func @decode
// CHECK-NOT: arith.extf
// CHECK: arith.bitcast %{{.*}} : f8E4M3FN to i8
// CHECK: arith.extui %{{.*}} : i8 to i32
// CHECK: arith.bitcast %{{.*}} : i32 to f32
func.func @decode(%x: f8E4M3FN) -> f32 {
  %0 = arith.extf %x : f8E4M3FN to f32
  return %0 : f32
}

// A f16 source is widened to f32 first (exactly), then encoded.
// CHECK-LABEL: func.func @encode
// CHECK: arith.extf %{{.*}} : f16 to f32
// CHECK-NOT: arith.truncf
// CHECK: arith.trunci %{{.*}} : i32 to i8
// CHECK: arith.bitcast %{{.*}} : i8 to f8E5M2
func.func @encode(%x: f16) -> f8E5M2 {
  %0 = arith.truncf %x : f16 to f8E5M2
  return %0 : f8E5M2
}

// CHECK-LABEL: func.func @standard
// CHECK: arith.truncf %{{.*}} : f32 to f16
func.func @standard(%x: f32) -> f16 {
  %0 = arith.truncf %x : f32 to f16
  return %0 : f16
}

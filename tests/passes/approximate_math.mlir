// RUN: mlirc-opt --pass-pipeline='builtin.module(mlirc-approximate-math)' %s | filecheck %s

// f32 exp becomes a polynomial and exponent-bit arithmetic, on vectors too.
// CHECK-LABEL: func.func @exp_vector
// CHECK-NOT: math.exp
// CHECK: math.floor %{{.*}} : vector<16xf32>
// CHECK: math.fma
// CHECK: arith.shli %{{.*}} : vector<16xi32>
// CHECK: arith.bitcast %{{.*}} : vector<16xi32> to vector<16xf32>
func.func @exp_vector(%x: vector<16xf32>) -> vector<16xf32> {
  %0 = math.exp %x : vector<16xf32>
  return %0 : vector<16xf32>
}

// erf: a Taylor series near 0, a polynomial times exp(-x^2) elsewhere.
// CHECK-LABEL: func.func @erf_scalar
// CHECK-NOT: math.erf
// CHECK-NOT: math.exp
// CHECK: math.copysign
// CHECK: arith.select
func.func @erf_scalar(%x: f32) -> f32 {
  %0 = math.erf %x : f32
  return %0 : f32
}

// f64 keeps libm's accuracy.
// CHECK-LABEL: func.func @exp_f64
// CHECK: math.exp %{{.*}} : f64
func.func @exp_f64(%x: f64) -> f64 {
  %0 = math.exp %x : f64
  return %0 : f64
}

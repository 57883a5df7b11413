// RUN: mlirc-opt --pass-pipeline='builtin.module(mlirc-onnx-cast-to-f8)' %s | filecheck %s

// ONNX Cast to f8 (saturate defaults to 1): clamp to +-448 keeping NaN, then
// torch's own dtype conversion (24 = torch.float8_e4m3fn).
// CHECK-LABEL: func.func @saturating
// CHECK-NOT: torch.operator
// CHECK: torch.vtensor.literal(dense<4.480000e+02> : tensor<f32>)
// CHECK: torch.aten.minimum
// CHECK: torch.vtensor.literal(dense<-4.480000e+02> : tensor<f32>)
// CHECK: torch.aten.maximum
// CHECK: torch.aten.isnan
// CHECK: torch.aten.where.self
// CHECK: torch.constant.int 24
// CHECK: torch.aten.to.dtype
func.func @saturating(%x: !torch.vtensor<[3],f32>) -> !torch.vtensor<[3],f8E4M3FN> {
  %0 = torch.operator "onnx.Cast"(%x) {torch.onnx.to = 17 : si64} : (!torch.vtensor<[3],f32>) -> !torch.vtensor<[3],f8E4M3FN>
  return %0 : !torch.vtensor<[3],f8E4M3FN>
}

// saturate=0: no clamp (overflow becomes Inf for E5M2).
// CHECK-LABEL: func.func @not_saturating
// CHECK-NOT: torch.aten.minimum
// CHECK: torch.constant.int 23
// CHECK: torch.aten.to.dtype
func.func @not_saturating(%x: !torch.vtensor<[3],f32>) -> !torch.vtensor<[3],f8E5M2> {
  %0 = torch.operator "onnx.Cast"(%x) {torch.onnx.saturate = 0 : si64, torch.onnx.to = 19 : si64} : (!torch.vtensor<[3],f32>) -> !torch.vtensor<[3],f8E5M2>
  return %0 : !torch.vtensor<[3],f8E5M2>
}

// Casts to other types are left to torch-mlir.
// CHECK-LABEL: func.func @other
// CHECK: torch.operator "onnx.Cast"
func.func @other(%x: !torch.vtensor<[3],f32>) -> !torch.vtensor<[3],f16> {
  %0 = torch.operator "onnx.Cast"(%x) {torch.onnx.to = 10 : si64} : (!torch.vtensor<[3],f32>) -> !torch.vtensor<[3],f16>
  return %0 : !torch.vtensor<[3],f16>
}

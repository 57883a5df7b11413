// RUN: mlirc-opt --pass-pipeline='builtin.module(mlirc-emit-c-interface)' %s | filecheck %s

// Public functions get the C interface; private helpers do not.
// CHECK-LABEL: func.func @main
// CHECK-SAME: attributes {llvm.emit_c_interface}
func.func @main(%arg0: memref<4xf32>) {
  call @helper(%arg0) : (memref<4xf32>) -> ()
  return
}

// CHECK-LABEL: func.func private @helper
// CHECK-NOT: llvm.emit_c_interface
func.func private @helper(%arg0: memref<4xf32>) {
  return
}

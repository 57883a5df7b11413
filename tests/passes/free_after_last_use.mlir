// RUN: mlirc-opt --pass-pipeline='builtin.module(mlirc-free-after-last-use)' %s | filecheck %s

// Deallocations at the end of the block move up to just after each buffer's
// last use, so that later allocations reuse memory still in the caches.
// CHECK-LABEL: func.func @chain
// CHECK: %[[A:.*]] = memref.alloc
// CHECK: %[[B:.*]] = memref.alloc
// CHECK: linalg.copy ins(%[[A]] : memref<4xf32>) outs(%[[B]] : memref<4xf32>)
// CHECK-NEXT: memref.dealloc %[[A]]
// CHECK: %[[C:.*]] = memref.alloc
// CHECK: linalg.copy ins(%[[B]] : memref<4xf32>) outs(%[[C]] : memref<4xf32>)
// CHECK-NEXT: memref.dealloc %[[B]]
// CHECK: linalg.copy ins(%[[C]] : memref<4xf32>) outs(%arg0 : memref<4xf32>)
// CHECK-NEXT: memref.dealloc %[[C]]
// CHECK-NEXT: return
func.func @chain(%out: memref<4xf32>) {
  %one = arith.constant 1.0 : f32
  %a = memref.alloc() : memref<4xf32>
  linalg.fill ins(%one : f32) outs(%a : memref<4xf32>)
  %b = memref.alloc() : memref<4xf32>
  linalg.copy ins(%a : memref<4xf32>) outs(%b : memref<4xf32>)
  %c = memref.alloc() : memref<4xf32>
  linalg.copy ins(%b : memref<4xf32>) outs(%c : memref<4xf32>)
  linalg.copy ins(%c : memref<4xf32>) outs(%out : memref<4xf32>)
  memref.dealloc %a : memref<4xf32>
  memref.dealloc %b : memref<4xf32>
  memref.dealloc %c : memref<4xf32>
  return
}

// A view's uses count as the buffer's (a cast passed to a call), and so do
// uses inside a loop: the dealloc goes after the call and after the loop.
// CHECK-LABEL: func.func @views_and_loops
// CHECK: %[[A:.*]] = memref.alloc
// CHECK: %[[VIEW:.*]] = memref.cast %[[A]]
// CHECK: call @consume(%[[VIEW]])
// CHECK-NEXT: memref.dealloc %[[A]]
// CHECK: %[[B:.*]] = memref.alloc
// CHECK: scf.for
// CHECK: memref.store {{.*}}, %[[B]]
// CHECK: }
// CHECK-NEXT: memref.dealloc %[[B]]
// CHECK: linalg.fill
// CHECK-NEXT: return
func.func private @consume(memref<?xf32>)
func.func @views_and_loops(%out: memref<4xf32>) {
  %zero = arith.constant 0.0 : f32
  %c0 = arith.constant 0 : index
  %c1 = arith.constant 1 : index
  %c4 = arith.constant 4 : index
  %a = memref.alloc() : memref<4xf32>
  %view = memref.cast %a : memref<4xf32> to memref<?xf32>
  call @consume(%view) : (memref<?xf32>) -> ()
  %b = memref.alloc() : memref<4xf32>
  scf.for %i = %c0 to %c4 step %c1 {
    memref.store %zero, %b[%i] : memref<4xf32>
  }
  linalg.fill ins(%zero : f32) outs(%out : memref<4xf32>)
  memref.dealloc %a : memref<4xf32>
  memref.dealloc %b : memref<4xf32>
  return
}

// A buffer that another block uses stays freed where it was.
// CHECK-LABEL: func.func @other_block
// CHECK: ^bb1:
// CHECK: linalg.fill
// CHECK-NEXT: memref.dealloc
func.func @other_block(%out: memref<4xf32>) {
  %zero = arith.constant 0.0 : f32
  %a = memref.alloc() : memref<4xf32>
  cf.br ^bb1
^bb1:
  linalg.copy ins(%a : memref<4xf32>) outs(%out : memref<4xf32>)
  linalg.fill ins(%zero : f32) outs(%out : memref<4xf32>)
  memref.dealloc %a : memref<4xf32>
  return
}

// RUN: mlirc-opt --pass-pipeline='builtin.module(mlirc-flatten-elementwise)' %s | filecheck %s

#id4 = affine_map<(d0, d1, d2, d3) -> (d0, d1, d2, d3)>
#scale = affine_map<(d0, d1, d2, d3) -> (d0, d1, 0, 0)>

// An elementwise op on contiguous NCHW buffers: one loop over all elements.
// CHECK-LABEL: func.func @silu
// CHECK: %[[A:.*]] = memref.collapse_shape %arg0 {{\[\[}}0, 1, 2, 3]] : memref<1x8x7x7xf32> into memref<392xf32>
// CHECK: %[[B:.*]] = memref.collapse_shape %arg1 {{\[\[}}0, 1, 2, 3]] : memref<1x8x7x7xf32> into memref<392xf32>
// CHECK: linalg.generic {{{.*}}iterator_types = ["parallel"]} ins(%[[A]] : memref<392xf32>) outs(%[[B]] : memref<392xf32>)
// CHECK: math.exp
func.func @silu(%a: memref<1x8x7x7xf32>, %b: memref<1x8x7x7xf32>) {
  linalg.generic {indexing_maps = [#id4, #id4], iterator_types = ["parallel", "parallel", "parallel", "parallel"]}
    ins(%a : memref<1x8x7x7xf32>) outs(%b : memref<1x8x7x7xf32>) {
  ^bb0(%x: f32, %y: f32):
    %e = math.exp %x : f32
    %s = arith.mulf %x, %e : f32
    linalg.yield %s : f32
  }
  return
}

// With a dynamic batch too; the op keeps its elements per image, by which
// the parallel stage sizes its tiles.
// CHECK-LABEL: func.func @dynamic_batch
// CHECK: memref.collapse_shape %arg0 {{\[\[}}0, 1, 2, 3]] : memref<?x8x7x7xf32> into memref<?xf32>
// CHECK: linalg.generic {{.*}} attrs = {mlirc.elements_per_image = 392 : i64}
func.func @dynamic_batch(%a: memref<?x8x7x7xf32>, %b: memref<?x8x7x7xf32>) {
  linalg.generic {indexing_maps = [#id4, #id4], iterator_types = ["parallel", "parallel", "parallel", "parallel"]}
    ins(%a : memref<?x8x7x7xf32>) outs(%b : memref<?x8x7x7xf32>) {
  ^bb0(%x: f32, %y: f32):
    %s = arith.addf %x, %x : f32
    linalg.yield %s : f32
  }
  return
}

// A broadcast operand (a squeeze-excite scale) or a strided view: left alone.
// CHECK-LABEL: func.func @left_alone
// CHECK-NOT: memref.collapse_shape
// CHECK: iterator_types = ["parallel", "parallel", "parallel", "parallel"]
// CHECK: iterator_types = ["parallel", "parallel", "parallel", "parallel"]
func.func @left_alone(%a: memref<1x8x7x7xf32>, %s: memref<1x8x1x1xf32>, %b: memref<1x8x7x7xf32>,
                      %v: memref<1x8x7x7xf32, strided<[784, 98, 14, 1]>>) {
  linalg.generic {indexing_maps = [#id4, #scale, #id4], iterator_types = ["parallel", "parallel", "parallel", "parallel"]}
    ins(%a, %s : memref<1x8x7x7xf32>, memref<1x8x1x1xf32>) outs(%b : memref<1x8x7x7xf32>) {
  ^bb0(%x: f32, %y: f32, %z: f32):
    %m = arith.mulf %x, %y : f32
    linalg.yield %m : f32
  }
  linalg.generic {indexing_maps = [#id4, #id4], iterator_types = ["parallel", "parallel", "parallel", "parallel"]}
    ins(%v : memref<1x8x7x7xf32, strided<[784, 98, 14, 1]>>) outs(%b : memref<1x8x7x7xf32>) {
  ^bb0(%x: f32, %z: f32):
    linalg.yield %x : f32
  }
  return
}

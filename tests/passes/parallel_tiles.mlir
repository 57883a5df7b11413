// RUN: mlirc-opt --pass-pipeline='builtin.module(mlirc-parallel-tiles)' %s | filecheck %s

#id4 = affine_map<(n, c, h, w) -> (n, c, h, w)>
#id2 = affine_map<(i, j) -> (i, j)>
#row = affine_map<(i, j) -> (i)>
#vec = affine_map<(j) -> (j)>

// An elementwise op: the batch loop has one iteration, so the channel loop
// becomes the scf.forall, one channel per tile; the decision stays on the op.
// CHECK-LABEL: func.func @elementwise
// CHECK: scf.forall (%[[C:.*]]) in (64)
// CHECK: memref.subview {{.*}}[0, %[[C]], 0, 0] [1, 1, 56, 56]
// CHECK: linalg.generic {{.*}}mlirc.parallel_tiles = array<i64: 0, 1, 0, 0>
func.func @elementwise(%x: memref<1x64x56x56xf32>, %y: memref<1x64x56x56xf32>) {
  linalg.generic {indexing_maps = [#id4, #id4],
                  iterator_types = ["parallel", "parallel", "parallel", "parallel"]}
      ins(%x : memref<1x64x56x56xf32>) outs(%y : memref<1x64x56x56xf32>) {
  ^bb0(%a: f32, %b: f32):
    %e = math.exp %a : f32
    linalg.yield %e : f32
  }
  return
}

// A row reduction: only the parallel row loop is split.
// CHECK-LABEL: func.func @row_sums
// CHECK: scf.forall ({{.*}}) in (512)
// CHECK: linalg.generic {{.*}}"parallel", "reduction"{{.*}}mlirc.parallel_tiles = array<i64: 1, 0>
func.func @row_sums(%x: memref<512x256xf32>, %y: memref<512xf32>) {
  linalg.generic {indexing_maps = [#id2, #row], iterator_types = ["parallel", "reduction"]}
      ins(%x : memref<512x256xf32>) outs(%y : memref<512xf32>) {
  ^bb0(%a: f32, %b: f32):
    %s = arith.addf %a, %b : f32
    linalg.yield %s : f32
  }
  return
}

// Only the innermost loop is parallel: tiles of a multiple of 16 iterations
// (100000 / 8 tasks = 12500 -> 12512), the last one partial.
// CHECK-LABEL: func.func @one_dimension
// CHECK: scf.forall ({{.*}}) in (8)
// CHECK: mlirc.parallel_tiles = array<i64: 12512>
func.func @one_dimension(%x: memref<100000xf32>, %y: memref<100000xf32>) {
  linalg.generic {indexing_maps = [#vec, #vec], iterator_types = ["parallel"]}
      ins(%x : memref<100000xf32>) outs(%y : memref<100000xf32>) {
  ^bb0(%a: f32, %b: f32):
    %n = arith.negf %a : f32
    linalg.yield %n : f32
  }
  return
}

// Too little work for a fork: left as it is.
// CHECK-LABEL: func.func @small
// CHECK-NOT: scf.forall
// CHECK-NOT: mlirc.parallel_tiles
// CHECK: return
func.func @small(%x: memref<8x64xf32>, %y: memref<8x64xf32>) {
  linalg.generic {indexing_maps = [#id2, #id2], iterator_types = ["parallel", "parallel"]}
      ins(%x : memref<8x64xf32>) outs(%y : memref<8x64xf32>) {
  ^bb0(%a: f32, %b: f32):
    %n = arith.negf %a : f32
    linalg.yield %n : f32
  }
  return
}

// Dynamic sizes: left as it is (the extents decide).
// CHECK-LABEL: func.func @dynamic
// CHECK-NOT: scf.forall
// CHECK: return
func.func @dynamic(%x: memref<?x4096xf32>, %y: memref<?x4096xf32>) {
  linalg.generic {indexing_maps = [#id2, #id2], iterator_types = ["parallel", "parallel"]}
      ins(%x : memref<?x4096xf32>) outs(%y : memref<?x4096xf32>) {
  ^bb0(%a: f32, %b: f32):
    %n = arith.negf %a : f32
    linalg.yield %n : f32
  }
  return
}

// NCHW -> NHWC (the depthwise pass's transposes): the input is read across
// the channel loop, so rows split (h, not the contiguous c), and channels
// go in blocks of 16 inside a row.
// CHECK-LABEL: func.func @to_channels_last
// CHECK: scf.forall ({{.*}}) in (56)
// CHECK: scf.for {{.*}} step %c16
// CHECK: linalg.generic {{.*}}mlirc.cache_tiles = array<i64: 0, 0, 0, 16>{{.*}}mlirc.parallel_tiles = array<i64: 0, 1, 0, 0>
#nchw_of_nhwc = affine_map<(n, h, w, c) -> (n, c, h, w)>
func.func @to_channels_last(%x: memref<1x96x56x56xf32>, %y: memref<1x56x56x96xf32>) {
  linalg.generic {indexing_maps = [#nchw_of_nhwc, #id4],
                  iterator_types = ["parallel", "parallel", "parallel", "parallel"]}
      ins(%x : memref<1x96x56x56xf32>) outs(%y : memref<1x56x56x96xf32>) {
  ^bb0(%a: f32, %b: f32):
    linalg.yield %a : f32
  }
  return
}

// NHWC -> NCHW: the channel loop indexes the input's contiguous dimension,
// so the rows split instead, and the width goes in blocks of 16.
// CHECK-LABEL: func.func @to_channels_first
// CHECK: scf.forall ({{.*}}) in (56)
// CHECK: scf.for {{.*}} step %c16
// CHECK: mlirc.cache_tiles = array<i64: 0, 0, 0, 16>{{.*}}mlirc.parallel_tiles = array<i64: 0, 0, 1, 0>
#nhwc_of_nchw = affine_map<(n, c, h, w) -> (n, h, w, c)>
func.func @to_channels_first(%x: memref<1x56x56x96xf32>, %y: memref<1x96x56x56xf32>) {
  linalg.generic {indexing_maps = [#nhwc_of_nchw, #id4],
                  iterator_types = ["parallel", "parallel", "parallel", "parallel"]}
      ins(%x : memref<1x56x56x96xf32>) outs(%y : memref<1x96x56x56xf32>) {
  ^bb0(%a: f32, %b: f32):
    linalg.yield %a : f32
  }
  return
}

// A dynamic batch outside the split loop is split too: the tiles cover
// batch x rows, as many at batch 1 as a static compile's and as many at
// batch 8 as one splitting the batch would make.
// CHECK-LABEL: func.func @dynamic_batch_to_channels_last
// CHECK: scf.forall ({{.*}}, {{.*}}) in (%{{.*}}, 56)
// CHECK: mlirc.parallel_tiles = array<i64: 1, 1, 0, 0>
func.func @dynamic_batch_to_channels_last(%x: memref<?x96x56x56xf32>,
                                          %y: memref<?x56x56x96xf32>) {
  linalg.generic {indexing_maps = [#nchw_of_nhwc, #id4],
                  iterator_types = ["parallel", "parallel", "parallel", "parallel"]}
      ins(%x : memref<?x96x56x56xf32>) outs(%y : memref<?x56x56x96xf32>) {
  ^bb0(%a: f32, %b: f32):
    linalg.yield %a : f32
  }
  return
}

// A flattened elementwise op on a dynamic batch: tiles sized as for one
// image (32768 elements: 8 tiles of 4096), over all the images.
// CHECK-LABEL: func.func @flattened_dynamic_batch
// CHECK: scf.forall
// CHECK: mlirc.parallel_tiles = array<i64: 4096>
func.func @flattened_dynamic_batch(%a: memref<?xf32>, %b: memref<?xf32>) {
  linalg.generic {indexing_maps = [affine_map<(d0) -> (d0)>, affine_map<(d0) -> (d0)>], iterator_types = ["parallel"]}
    ins(%a : memref<?xf32>) outs(%b : memref<?xf32>) attrs = {mlirc.elements_per_image = 32768 : i64} {
  ^bb0(%x: f32, %y: f32):
    %s = arith.addf %x, %x : f32
    linalg.yield %s : f32
  }
  return
}

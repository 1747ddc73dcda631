// RUN: posenc-opt %s -split-input-file -posenc-map-parallel-loops-to-gpu | FileCheck %s
// RUN: posenc-opt %s -split-input-file --pass-pipeline="builtin.module(func.func(posenc-map-parallel-loops-to-gpu, convert-parallel-loops-to-gpu), canonicalize)" | FileCheck %s --check-prefix=LAUNCH
// RUN: not posenc-opt %s -split-input-file -posenc-map-parallel-loops-to-gpu="threads=2048" 2>&1 | FileCheck %s --check-prefix=BAD

// BAD: posenc-map-parallel-loops-to-gpu needs 1 <= threads <= 1024, got threads=2048

// [4, 8, 100]: the dims collapsed into one of 3200 iterations in row-major
// order, 256 threads per block (a row of 100 is shorter than a block:
// threads run on into the next rows), ceil(3200 / 256) = 13 blocks, and a
// guard for the threads past the end. Each thread recovers (i, j, k) from
// its linear index.
// CHECK-LABEL: func @three
// CHECK: scf.parallel
// CHECK: scf.parallel
// CHECK: scf.if
// CHECK: arith.remsi %{{.*}}, %c100
// CHECK: memref.store
// CHECK: } {mapping = [#gpu.loop_dim_map<processor = thread_x{{.*}}>]}
// CHECK: } {mapping = [#gpu.loop_dim_map<processor = block_x{{.*}}>]}
// LAUNCH-LABEL: func @three
// LAUNCH: gpu.launch blocks({{.*}}) in ({{.*}} = %c13, {{.*}} = %c1, {{.*}} = %c1) threads({{.*}}) in ({{.*}} = %c256, {{.*}} = %c1, {{.*}} = %c1)
// LAUNCH: scf.if
// LAUNCH: memref.store
func.func @three(%a: memref<4x8x100xf32>) {
  %c0 = arith.constant 0 : index
  %c1 = arith.constant 1 : index
  %c4 = arith.constant 4 : index
  %c8 = arith.constant 8 : index
  %c100 = arith.constant 100 : index
  %cst = arith.constant 1.0 : f32
  scf.parallel (%i, %j, %k) = (%c0, %c0, %c0) to (%c4, %c8, %c100) step (%c1, %c1, %c1) {
    memref.store %cst, %a[%i, %j, %k] : memref<4x8x100xf32>
    scf.reduce
  }
  return
}

// -----

// Dynamic sizes: 256 threads, ceil(n·m / 256) blocks, and a guard for the
// threads past the end.
// LAUNCH-LABEL: func @dynamic
// LAUNCH: %[[N:.*]] = arith.muli %arg1, %arg2
// LAUNCH: %[[BLOCKS:.*]] = affine.apply #{{.*}}()[%[[N]]]
// LAUNCH: gpu.launch blocks({{.*}}) in ({{.*}} = %[[BLOCKS]], {{.*}} = %c1, {{.*}} = %c1) threads({{.*}}) in ({{.*}} = %c256, {{.*}} = %c1, {{.*}} = %c1)
// LAUNCH: arith.cmpi ult
// LAUNCH: scf.if
// LAUNCH: memref.store
func.func @dynamic(%a: memref<?x?xf32>, %n: index, %m: index) {
  %c0 = arith.constant 0 : index
  %c1 = arith.constant 1 : index
  %cst = arith.constant 1.0 : f32
  scf.parallel (%i, %j) = (%c0, %c0) to (%n, %m) step (%c1, %c1) {
    memref.store %cst, %a[%i, %j] : memref<?x?xf32>
    scf.reduce
  }
  return
}

// -----

// A parallel loop nested in another runs sequentially inside each thread,
// as scf.for.
// CHECK-LABEL: func @nested
// CHECK: scf.parallel
// CHECK: scf.parallel
// CHECK: scf.for %{{.*}} = %c0 to %c8 step %c1
// CHECK-NOT: scf.parallel
// CHECK: } {mapping = [#gpu.loop_dim_map<processor = thread_x{{.*}}>]}
// CHECK: } {mapping = [#gpu.loop_dim_map<processor = block_x{{.*}}>]}
func.func @nested(%a: memref<64x8xf32>) {
  %c0 = arith.constant 0 : index
  %c1 = arith.constant 1 : index
  %c8 = arith.constant 8 : index
  %c64 = arith.constant 64 : index
  %cst = arith.constant 1.0 : f32
  scf.parallel (%i) = (%c0) to (%c64) step (%c1) {
    scf.parallel (%j) = (%c0) to (%c8) step (%c1) {
      memref.store %cst, %a[%i, %j] : memref<64x8xf32>
      scf.reduce
    }
    scf.reduce
  }
  return
}

// -----

// A contraction with its reduction between parallel dims (MLA's absorbed
// query, h x d -> h x j): convert-linalg-to-parallel-loops nests a parallel
// loop under the reduction's scf.for. It becomes an scf.for too, so
// convert-parallel-loops-to-gpu maps the whole nest (it maps none of a nest
// with a parallel loop under a sequential one).
// CHECK-LABEL: func @parallel_under_for
// CHECK: scf.parallel
// CHECK: scf.parallel
// CHECK: scf.for %{{.*}} = %c0 to %c32
// CHECK-NEXT: scf.for %{{.*}} = %c0 to %c64
// CHECK-NOT: scf.parallel
// CHECK: } {mapping = [#gpu.loop_dim_map<processor = thread_x{{.*}}>]}
// LAUNCH-LABEL: func @parallel_under_for
// LAUNCH: gpu.launch
// LAUNCH: scf.for
// LAUNCH: scf.for
// LAUNCH: gpu.terminator
// LAUNCH-NOT: scf.parallel
func.func @parallel_under_for(%q: memref<4x32xf32>, %w: memref<4x32x64xf32>, %o: memref<4x64xf32>) {
  %c0 = arith.constant 0 : index
  %c1 = arith.constant 1 : index
  %c4 = arith.constant 4 : index
  %c32 = arith.constant 32 : index
  %c64 = arith.constant 64 : index
  scf.parallel (%h) = (%c0) to (%c4) step (%c1) {
    scf.for %d = %c0 to %c32 step %c1 {
      scf.parallel (%j) = (%c0) to (%c64) step (%c1) {
        %a = memref.load %q[%h, %d] : memref<4x32xf32>
        %b = memref.load %w[%h, %d, %j] : memref<4x32x64xf32>
        %c = memref.load %o[%h, %j] : memref<4x64xf32>
        %m = arith.mulf %a, %b : f32
        %s = arith.addf %c, %m : f32
        memref.store %s, %o[%h, %j] : memref<4x64xf32>
        scf.reduce
      }
    }
    scf.reduce
  }
  return
}

// -----

// A copy into a strided view (RoPE's rotated part of a partial rotary
// result) becomes a mapped loop of loads and stores: a device memcpy moves
// contiguous bytes only. Copies between contiguous buffers stay copies.
// CHECK-LABEL: func @strided_copy
// CHECK: scf.parallel
// CHECK: scf.parallel
// CHECK: %[[V:.*]] = memref.load %arg0
// CHECK: memref.store %[[V]], %subview
// CHECK: memref.copy %arg0, %arg2 : memref<48x32xf32> to memref<48x32xf32>
// LAUNCH-LABEL: func @strided_copy
// LAUNCH: gpu.launch
// LAUNCH: gpu.terminator
// LAUNCH-NEXT: }
// LAUNCH-NEXT: memref.copy %arg0, %arg2
func.func @strided_copy(%a: memref<48x32xf32>, %b: memref<48x64xf32>, %c: memref<48x32xf32>) {
  %v = memref.subview %b[0, 0] [48, 32] [1, 1] : memref<48x64xf32> to memref<48x32xf32, strided<[64, 1]>>
  memref.copy %a, %v : memref<48x32xf32> to memref<48x32xf32, strided<[64, 1]>>
  memref.copy %a, %c : memref<48x32xf32> to memref<48x32xf32>
  return
}

// -----

// A trip count beyond 64 bits (2^62 x 2^62) is unknown, not an overflow:
// 256 threads per block.
// CHECK-LABEL: func @huge_trip_count
// CHECK: } {mapping = [#gpu.loop_dim_map<processor = thread_x{{.*}}>]}
// CHECK: } {mapping = [#gpu.loop_dim_map<processor = block_x{{.*}}>]}
// LAUNCH-LABEL: func @huge_trip_count
// LAUNCH: threads({{.*}}) in ({{.*}} = %c256, {{.*}} = %c1, {{.*}} = %c1)
func.func @huge_trip_count(%a: memref<?xf32>) {
  %c0 = arith.constant 0 : index
  %c1 = arith.constant 1 : index
  %big = arith.constant 4611686018427387904 : index
  %cst = arith.constant 1.0 : f32
  scf.parallel (%i, %j) = (%c0, %c0) to (%big, %big) step (%c1, %c1) {
    memref.store %cst, %a[%i] : memref<?xf32>
    scf.reduce
  }
  return
}

// RUN: posenc-opt %s -split-input-file -posenc-map-parallel-loops-to-gpu | FileCheck %s
// RUN: posenc-opt %s -split-input-file --pass-pipeline="builtin.module(func.func(posenc-map-parallel-loops-to-gpu, convert-parallel-loops-to-gpu), canonicalize)" | FileCheck %s --check-prefix=LAUNCH
// RUN: not posenc-opt %s -split-input-file -posenc-map-parallel-loops-to-gpu="threads=2048" 2>&1 | FileCheck %s --check-prefix=BAD

// BAD: posenc-map-parallel-loops-to-gpu needs 1 <= threads <= 1024, got threads=2048

// [4, 8, 100]: 100 threads along the contiguous dim (fewer than 256, its
// static trip count); the two other dims collapsed into block x (32
// blocks), the tile index as block y.
// CHECK-LABEL: func @three
// CHECK: scf.parallel
// CHECK: scf.parallel
// CHECK: memref.store
// CHECK: } {mapping = [#gpu.loop_dim_map<processor = sequential{{.*}}>, #gpu.loop_dim_map<processor = sequential{{.*}}>, #gpu.loop_dim_map<processor = thread_x{{.*}}>]}
// CHECK: } {mapping = [#gpu.loop_dim_map<processor = block_x{{.*}}>, #gpu.loop_dim_map<processor = block_y{{.*}}>]}
// LAUNCH-LABEL: func @three
// LAUNCH: gpu.launch blocks({{.*}}) in ({{.*}} = %c32, {{.*}} = %c1, {{.*}} = %c1) threads({{.*}}) in ({{.*}} = %c100, {{.*}} = %c1, {{.*}} = %c1)
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

// Dynamic sizes: 256 threads, ceil(m / 256) blocks in y, and a guard for
// the threads past the end.
// LAUNCH-LABEL: func @dynamic
// LAUNCH: gpu.launch blocks({{.*}}) in ({{.*}} = %arg1, {{.*}}, {{.*}} = %c1) threads({{.*}}) in ({{.*}} = %c256, {{.*}} = %c1, {{.*}} = %c1)
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

// A parallel loop nested in another runs sequentially inside each thread.
// CHECK-LABEL: func @nested
// CHECK: scf.parallel
// CHECK: scf.parallel
// CHECK: scf.parallel
// CHECK: } {mapping = [#gpu.loop_dim_map<processor = sequential{{.*}}>]}
// CHECK: } {mapping = [#gpu.loop_dim_map<processor = thread_x{{.*}}>]}
// CHECK: } {mapping = [#gpu.loop_dim_map<processor = block_y{{.*}}>]}
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

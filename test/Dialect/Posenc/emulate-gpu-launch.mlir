// RUN: posenc-opt %s -split-input-file -posenc-emulate-gpu-launch -verify-diagnostics | FileCheck %s

// Grid then block, z outermost; ids and sizes bound to the loop values.
// CHECK-LABEL: func @scale
// CHECK-SAME: (%[[M:.+]]: memref<?xf32>, %[[N:.+]]: index)
// CHECK-NOT: gpu.
// CHECK: scf.for %[[BZ:.+]] = %{{.+}} to %c1
// CHECK: scf.for %[[BY:.+]] = %{{.+}} to %c1
// CHECK: scf.for %[[BX:.+]] = %{{.+}} to %[[N]]
// CHECK: scf.for %[[TZ:.+]] = %{{.+}} to %c1
// CHECK: scf.for %[[TY:.+]] = %{{.+}} to %c1
// CHECK: scf.for %[[TX:.+]] = %{{.+}} to %c32
// CHECK: %[[I:.+]] = arith.muli %[[BX]], %c32
// CHECK: %[[J:.+]] = arith.addi %[[I]], %[[TX]]
// CHECK: memref.load %[[M]][%[[J]]]
// CHECK-NOT: gpu.
func.func @scale(%m: memref<?xf32>, %n: index) {
  %c1 = arith.constant 1 : index
  %c32 = arith.constant 32 : index
  gpu.launch blocks(%bx, %by, %bz) in (%gx = %n, %gy = %c1, %gz = %c1)
             threads(%tx, %ty, %tz) in (%sx = %c32, %sy = %c1, %sz = %c1) {
    %i = arith.muli %bx, %sx : index
    %j = arith.addi %i, %tx : index
    %v = memref.load %m[%j] : memref<?xf32>
    %w = arith.addf %v, %v : f32
    memref.store %w, %m[%j] : memref<?xf32>
    gpu.terminator
  }
  return
}

// -----

func.func @shared(%m: memref<4xf32>) {
  %c1 = arith.constant 1 : index
  %c4 = arith.constant 4 : index
  %bytes = arith.constant 16 : i32
  // expected-error @+1 {{posenc-emulate-gpu-launch: threads cannot run one after another: it has shared or private memory}}
  gpu.launch blocks(%bx, %by, %bz) in (%gx = %c1, %gy = %c1, %gz = %c1)
             threads(%tx, %ty, %tz) in (%sx = %c4, %sy = %c1, %sz = %c1)
             dynamic_shared_memory_size %bytes {
    gpu.terminator
  }
  return
}

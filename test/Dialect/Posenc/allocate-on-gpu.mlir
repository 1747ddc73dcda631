// RUN: posenc-opt %s -split-input-file -posenc-allocate-on-gpu | FileCheck %s

memref.global "private" constant @table : memref<4xf32> = dense<[1.0, 2.0, 3.0, 4.0]>

// In a function that launches kernels: host allocations, frees and copies
// become their gpu forms; a constant table gets a device copy, freed before
// the return; an allocation inside a kernel body stays.
// CHECK-LABEL: func @launches
// CHECK: %[[G:.+]] = memref.get_global @table
// CHECK: %[[T:.+]] = gpu.alloc () : memref<4xf32>
// CHECK: gpu.memcpy %[[T]], %[[G]]
// CHECK: %[[A:.+]] = gpu.alloc (%{{.+}}) : memref<?xf32>
// CHECK: %[[R:.+]] = gpu.alloc (%{{.+}}) : memref<?xf32>
// CHECK: gpu.launch
// CHECK: memref.alloca
// CHECK: memref.load %[[T]]
// CHECK: gpu.terminator
// CHECK: gpu.memcpy %[[R]], %[[A]]
// CHECK: gpu.dealloc %[[A]]
// CHECK: gpu.dealloc %[[T]]
// CHECK-NEXT: return %[[R]]
// CHECK-NOT: memref.alloc(
// CHECK-NOT: memref.dealloc
func.func @launches(%n: index) -> memref<?xf32> {
  %c1 = arith.constant 1 : index
  %g = memref.get_global @table : memref<4xf32>
  %a = memref.alloc(%n) : memref<?xf32>
  %r = memref.alloc(%n) : memref<?xf32>
  gpu.launch blocks(%bx, %by, %bz) in (%x = %n, %y = %c1, %z = %c1) threads(%tx, %ty, %tz) in (%u = %c1, %v = %c1, %w = %c1) {
    %p = memref.alloca() : memref<1xf32>
    %c0 = arith.constant 0 : index
    %t = memref.load %g[%c0] : memref<4xf32>
    memref.store %t, %a[%bx] : memref<?xf32>
    gpu.terminator
  }
  memref.copy %a, %r : memref<?xf32> to memref<?xf32>
  memref.dealloc %a : memref<?xf32>
  return %r : memref<?xf32>
}

// -----

// Without kernels: host code, untouched.
// CHECK-LABEL: func @host_only
// CHECK: memref.alloc
// CHECK: memref.copy
// CHECK: memref.dealloc
// CHECK-NOT: gpu.
func.func @host_only(%a: memref<8xf32>) -> memref<8xf32> {
  %b = memref.alloc() : memref<8xf32>
  %c = memref.alloc() : memref<8xf32>
  memref.copy %a, %b : memref<8xf32> to memref<8xf32>
  memref.copy %b, %c : memref<8xf32> to memref<8xf32>
  memref.dealloc %b : memref<8xf32>
  return %c : memref<8xf32>
}

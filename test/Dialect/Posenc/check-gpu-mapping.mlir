// RUN: posenc-opt %s -split-input-file -posenc-check-gpu-mapping -verify-diagnostics | FileCheck %s
// RUN: not posenc-opt %s -split-input-file -posenc-check-gpu-mapping=emulated=true 2>&1 | FileCheck %s --check-prefix=EMU

// Emulated (host buffers), host loads and stores are allowed; unmapped
// parallel loops and strided copies are not.
// EMU-NOT: error: 'memref.store' op
// EMU: error: 'scf.parallel' op is a parallel loop nest that was not mapped
// EMU-NOT: error: 'memref.store' op
// EMU: error: 'memref.copy' op copies between strided buffers on the host

// Host code of a function with kernels allocates, copies contiguous
// buffers and launches; it reads and writes no elements.
// CHECK-LABEL: func @mapped
func.func @mapped(%a: memref<64xf32>) -> memref<64xf32> {
  %c1 = arith.constant 1 : index
  %c64 = arith.constant 64 : index
  %b = memref.alloc() : memref<64xf32>
  gpu.launch blocks(%bx, %by, %bz) in (%x = %c1, %y = %c1, %z = %c1)
             threads(%tx, %ty, %tz) in (%u = %c64, %v = %c1, %w = %c1) {
    %e = memref.load %a[%tx] : memref<64xf32>
    memref.store %e, %b[%tx] : memref<64xf32>
    gpu.terminator
  }
  %c = memref.alloc() : memref<64xf32>
  memref.copy %b, %c : memref<64xf32> to memref<64xf32>
  memref.dealloc %b : memref<64xf32>
  return %c : memref<64xf32>
}

// -----

// A function without kernels (the CPU part of a module) is not checked.
// CHECK-LABEL: func @host_only
func.func @host_only(%a: memref<4xf32>) -> f32 {
  %c0 = arith.constant 0 : index
  %e = memref.load %a[%c0] : memref<4xf32>
  return %e : f32
}

// -----

// A loop nest convert-parallel-loops-to-gpu did not map, next to a kernel:
// on a device it would run on the host against device pointers.
func.func @unmapped(%a: memref<64xf32>) {
  %c0 = arith.constant 0 : index
  %c1 = arith.constant 1 : index
  %c64 = arith.constant 64 : index
  %cst = arith.constant 0.0 : f32
  gpu.launch blocks(%bx, %by, %bz) in (%x = %c1, %y = %c1, %z = %c1)
             threads(%tx, %ty, %tz) in (%u = %c64, %v = %c1, %w = %c1) {
    gpu.terminator
  }
  // expected-error @+1 {{'scf.parallel' op is a parallel loop nest that was not mapped to a GPU kernel: the GPU pipeline leaves it outside every kernel, where buffers are device memory}}
  scf.parallel (%i) = (%c0) to (%c64) step (%c1) {
    memref.store %cst, %a[%i] : memref<64xf32>
    scf.reduce
  }
  return
}

// -----

func.func @host_store(%a: memref<64xf32>) {
  %c0 = arith.constant 0 : index
  %c1 = arith.constant 1 : index
  %cst = arith.constant 0.0 : f32
  gpu.launch blocks(%bx, %by, %bz) in (%x = %c1, %y = %c1, %z = %c1)
             threads(%tx, %ty, %tz) in (%u = %c1, %v = %c1, %w = %c1) {
    gpu.terminator
  }
  scf.for %i = %c0 to %c1 step %c1 {
    // expected-error @+1 {{'memref.store' op writes buffer elements on the host}}
    memref.store %cst, %a[%i] : memref<64xf32>
  }
  return
}

// -----

func.func @strided_copy(%a: memref<48x32xf32>, %b: memref<48x64xf32>) {
  %c1 = arith.constant 1 : index
  gpu.launch blocks(%bx, %by, %bz) in (%x = %c1, %y = %c1, %z = %c1)
             threads(%tx, %ty, %tz) in (%u = %c1, %v = %c1, %w = %c1) {
    gpu.terminator
  }
  %v = memref.subview %b[0, 0] [48, 32] [1, 1] : memref<48x64xf32> to memref<48x32xf32, strided<[64, 1]>>
  // expected-error @+1 {{'memref.copy' op copies between strided buffers on the host}}
  memref.copy %a, %v : memref<48x32xf32> to memref<48x32xf32, strided<[64, 1]>>
  return
}

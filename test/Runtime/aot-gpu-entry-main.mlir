// REQUIRES: cuda-runtime
// RUN: %posenc_aot %s -o %t.gpu --entry main | FileCheck %s --check-prefix=AOT
// RUN: %llvm_nm --defined-only %t.gpu | FileCheck %s

// A module whose entry is named @main (or anything libc defines): its
// functions are renamed in the object, so the executable's `main` is the
// harness's. Before, the model's @main was the process entry and ran on
// argc/argv as memref descriptors (an illegal address on every GPU).
// AOT: @main, 2 inputs, 1 results
// CHECK-DAG: T _mlir_ciface_main
// CHECK-DAG: T posenc_model_main
// CHECK-DAG: T posenc_model_free
// CHECK-DAG: T main

func.func @free(%x: tensor<64x4x32xf32>) -> tensor<64x4x32xf32> {
  return %x : tensor<64x4x32xf32>
}

func.func @main(%x: tensor<1x64x4x32xf32>, %p: tensor<64xi32>) -> tensor<1x64x4x32xf32> {
  %o = posenc.rope %x, %p layout half : tensor<1x64x4x32xf32>, tensor<64xi32>
  return %o : tensor<1x64x4x32xf32>
}

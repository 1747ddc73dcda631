// REQUIRES: cuda-runtime
// UNSUPPORTED: cuda-device
// RUN: %posenc_aot %s -o %t.gpu
// RUN: %t.gpu --help | FileCheck %s --check-prefix=HELP
// RUN: not %t.gpu --random 1 2>&1 | FileCheck %s

// On a machine without a GPU, an AOT executable still starts: --help works
// and a run stops at the first driver call with the runtime's message
// (without a driver: "cannot load the CUDA driver (libcuda.so.1 ...)"; with
// one but no device: the failed call by name), exit status 1.
// HELP: runs @rope on the GPU
// CHECK: posenc CUDA runtime: {{cannot load the CUDA driver \(libcuda.so.1|cu.* failed}}

func.func @rope(%x: tensor<1x64x4x32xf32>, %p: tensor<64xi32>) -> tensor<1x64x4x32xf32> {
  %o = posenc.rope %x, %p layout half : tensor<1x64x4x32xf32>, tensor<64xi32>
  return %o : tensor<1x64x4x32xf32>
}

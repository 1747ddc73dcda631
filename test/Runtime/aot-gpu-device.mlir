// REQUIRES: cuda-runtime, cuda-device
// RUN: %posenc_aot %s -o %t.gpu
// RUN: %t.gpu --random 3 --poison --warmup 1 --repeat 3 --outputs %t.npy | FileCheck %s
// RUN: %t.gpu --copy-bytes 1048576 --repeat 3 | FileCheck %s --check-prefix=COPY

// On a GPU: the fused attention kernel runs and is timed with CUDA
// events (correctness against float64 references is bench/gpu/
// device_check.sh, and the emulated kernel's tests on any machine).
// CHECK: posenc-gpu: attention median_ms={{[0-9.]+}} min_ms={{[0-9.]+}} runs=3
// COPY: posenc-gpu: copy bytes=1048576 median_ms={{[0-9.]+}}

func.func @attention(%q: tensor<2x70x8x64xbf16>, %k: tensor<2x90x2x64xbf16>, %v: tensor<2x90x2x64xbf16>) -> tensor<2x70x8x64xbf16> {
  %init_o = tensor.empty() : tensor<2x70x8x64xbf16>
  %o = posenc.attention %q, %k, %v causal outs(%init_o) : tensor<2x70x8x64xbf16>, tensor<2x90x2x64xbf16>, tensor<2x90x2x64xbf16>, tensor<2x70x8x64xbf16>
  return %o : tensor<2x70x8x64xbf16>
}

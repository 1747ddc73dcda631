// REQUIRES: cuda-runtime, cuda-stub
// RUN: %posenc_aot %s -o %t.gpu | FileCheck %s --check-prefix=AOT
// RUN: ldd %t.gpu | FileCheck %s --check-prefix=DEPS
// RUN: rm -rf %t.stub && mkdir -p %t.stub && ln -s %cuda_stub %t.stub/libcuda.so.1
// RUN: env LD_LIBRARY_PATH=%t.stub not %t.gpu --random 1 2>&1 | FileCheck %s --check-prefix=STUB
// RUN: env LD_LIBRARY_PATH=%t.stub %t.gpu --help | FileCheck %s --check-prefix=HELP
// RUN: env LD_LIBRARY_PATH=%t.stub not %t.gpu --input=@%t.none.npy 2>&1 | FileCheck %s --check-prefix=ARGS
// RUN: env LD_LIBRARY_PATH=%t.stub not %t.gpu --benchmark=abc 2>&1 | FileCheck %s --check-prefix=BAD

// An AOT executable: the lowered module (kernels embedded, registered by a
// module constructor, loaded at their first launch), the CUDA runtime and
// the harness, needing nothing but the driver's libcuda.so.1, which it
// opens at the first driver call (no MLIR, LLVM, CUDA toolkit or libstdc++
// where it runs, and not even the driver for --help or an argument error:
// the stub answers every call with an error, so neither may call it).
// Against the toolkit's stub libcuda, the first driver call fails and the
// runtime names it and exits 1.
// AOT: aot-gpu-executable.mlir.tmp.gpu: @alibi_attention, 4 inputs, 1 results, sm_90
// DEPS-NOT: libMLIR
// DEPS-NOT: libLLVM
// DEPS-NOT: libstdc++
// DEPS-NOT: libcuda
// STUB: posenc CUDA runtime: cuInit(0) failed: CUDA_ERROR_STUB_LIBRARY (34)
// HELP: runs @alibi_attention on the GPU
// HELP-NEXT: inputs: #0: 1x100x8x64xf32, #1: 1x100x8x64xf32, #2: 1x100x8x64xf32, #3: 100xi32
// HELP-NEXT: results: #0: 1x100x8x64xf32
// HELP: --input=@A.npy
// BAD: posenc-gpu: --benchmark: expected an integer in [1, 1000000], got 'abc'
// ARGS: @alibi_attention takes 4 inputs (#0: 1x100x8x64xf32, {{.*}}#3: 100xi32), got 1

func.func @alibi_attention(%q: tensor<1x100x8x64xf32>, %k: tensor<1x100x8x64xf32>, %v: tensor<1x100x8x64xf32>, %p: tensor<100xi32>) -> tensor<1x100x8x64xf32> {
  %b = posenc.alibi_bias %p, %p mode causal {num_heads = 8 : i64} : tensor<100xi32>, tensor<100xi32> -> tensor<8x100x100xf32>
  %init_o = tensor.empty() : tensor<1x100x8x64xf32>
  %o = posenc.attention %q, %k, %v bias(%b : tensor<8x100x100xf32>) causal outs(%init_o) : tensor<1x100x8x64xf32>, tensor<1x100x8x64xf32>, tensor<1x100x8x64xf32>, tensor<1x100x8x64xf32>
  return %o : tensor<1x100x8x64xf32>
}

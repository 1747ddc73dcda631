// REQUIRES: cuda-runtime, cuda-stub
// RUN: %posenc_aot %s -o %t.gpu | FileCheck %s --check-prefix=AOT
// RUN: ldd %t.gpu | FileCheck %s --check-prefix=DEPS
// RUN: rm -rf %t.stub && mkdir -p %t.stub && ln -s %cuda_stub %t.stub/libcuda.so.1
// RUN: env LD_LIBRARY_PATH=%t.stub not %t.gpu --random 1 2>&1 | FileCheck %s --check-prefix=STUB

// An AOT executable: the lowered module (kernels embedded, loaded by a
// module constructor), the CUDA runtime and the harness, needing nothing
// but the driver's libcuda.so.1 (no MLIR, LLVM, CUDA toolkit or
// libstdc++ where it runs). Against the toolkit's stub libcuda, the first
// driver call fails and the runtime names it and exits 1.
// AOT: aot-gpu-executable.mlir.tmp.gpu: @alibi_attention, 4 inputs, 1 results, sm_90
// DEPS-NOT: libMLIR
// DEPS-NOT: libLLVM
// DEPS-NOT: libstdc++
// DEPS: libcuda.so.1
// DEPS-NOT: libMLIR
// DEPS-NOT: libstdc++
// STUB: posenc CUDA runtime: cuInit(0) failed: CUDA_ERROR_STUB_LIBRARY (34)

func.func @alibi_attention(%q: tensor<1x100x8x64xf32>, %k: tensor<1x100x8x64xf32>, %v: tensor<1x100x8x64xf32>, %p: tensor<100xi32>) -> tensor<1x100x8x64xf32> {
  %b = posenc.alibi_bias %p, %p mode causal {num_heads = 8 : i64} : tensor<100xi32>, tensor<100xi32> -> tensor<8x100x100xf32>
  %init_o = tensor.empty() : tensor<1x100x8x64xf32>
  %o = posenc.attention %q, %k, %v bias(%b : tensor<8x100x100xf32>) causal outs(%init_o) : tensor<1x100x8x64xf32>, tensor<1x100x8x64xf32>, tensor<1x100x8x64xf32>, tensor<1x100x8x64xf32>
  return %o : tensor<1x100x8x64xf32>
}

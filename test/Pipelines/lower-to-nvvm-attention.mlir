// REQUIRES: cuda-toolkit
// RUN: posenc-opt %s -posenc-lower-to-nvvm="format=isa" | FileCheck %s --implicit-check-not=".extern .func"
// RUN: %nvvm_report %s --chip sm_80 | FileCheck %s --check-prefix=PTXAS
// RUN: %nvvm_report %s --chip sm_90 | FileCheck %s --check-prefix=PTXAS

// Attention is one fused kernel per call at the default tiles: a fused
// ALiBi bias (its slopes copied to the device), GQA, bf16 inputs with f32
// accumulation, and MLA through its decomposition (projections as their
// own kernels, then the attention kernel: one query against 1024 keys,
// split-K into 8 chunks whose partial states are merged by kernels of
// their own). ptxas assembles each for sm_80
// and sm_90 without spills; libdevice's expf is linked in.
// CHECK: llvm.func @alibi_prefill
// CHECK: llvm.call @mgpuStreamCreate
// CHECK: llvm.call @mgpuMemcpy
// CHECK: gpu.launch_func <%{{.+}} : !llvm.ptr> @alibi_prefill_kernel::@alibi_prefill_kernel blocks in (%{{.+}}, %{{.+}}, %{{.+}}) threads in (%{{.+}}, %{{.+}}, %{{.+}}) : i64 dynamic_shared_memory_size %{{.+}}
// CHECK-NOT: gpu.launch_func
// CHECK: llvm.call @mgpuStreamDestroy
// CHECK: gpu.binary @alibi_prefill_kernel
// CHECK-SAME: bar.sync
// CHECK-SAME: ex2.approx
// CHECK: llvm.func @gqa_bf16
// CHECK: gpu.launch_func
// CHECK-NOT: gpu.launch_func
// CHECK: llvm.func @mla_decode
// Dynamic shared memory per block: D = 128 gives 16-row tiles, 4·(16·129 +
// 32·129 + 16·33 + 16·128 + 3·16) bytes; D = 64, 32 rows; MLA (Dk = 576,
// Dv = 512, Sq = 1) 4 rows in ~90 KB, beyond the 48 KiB default.
// PTXAS: alibi_prefill_kernel{{.*}}registers {{[0-9]+}}, spill stores 0 B, spill loads 0 B{{.*}}35264 B dynamic, unresolved __nv_ externs: none
// PTXAS: gqa_bf16_kernel{{.*}}spill stores 0 B, spill loads 0 B{{.*}}29440 B dynamic
// PTXAS: mla_decode_kernel_{{[0-9]+}} {{.*}}spill stores 0 B, spill loads 0 B{{.*}}91856 B dynamic

func.func @alibi_prefill(%q: tensor<1x4096x32x128xf32>, %k: tensor<1x4096x32x128xf32>, %v: tensor<1x4096x32x128xf32>, %p: tensor<4096xi32>) -> tensor<1x4096x32x128xf32> {
  %b = posenc.alibi_bias %p, %p mode causal {num_heads = 32 : i64} : tensor<4096xi32>, tensor<4096xi32> -> tensor<32x4096x4096xf32>
  %init_o = tensor.empty() : tensor<1x4096x32x128xf32>
  %o = posenc.attention %q, %k, %v bias(%b : tensor<32x4096x4096xf32>) causal outs(%init_o) : tensor<1x4096x32x128xf32>, tensor<1x4096x32x128xf32>, tensor<1x4096x32x128xf32>, tensor<1x4096x32x128xf32>
  return %o : tensor<1x4096x32x128xf32>
}

func.func @gqa_bf16(%q: tensor<2x?x32x64xbf16>, %k: tensor<2x?x8x64xbf16>, %v: tensor<2x?x8x64xbf16>) -> tensor<2x?x32x64xbf16> {
  %init_o_c1 = arith.constant 1 : index
  %init_o_d1 = tensor.dim %q, %init_o_c1 : tensor<2x?x32x64xbf16>
  %init_o = tensor.empty(%init_o_d1) : tensor<2x?x32x64xbf16>
  %o = posenc.attention %q, %k, %v causal outs(%init_o) : tensor<2x?x32x64xbf16>, tensor<2x?x8x64xbf16>, tensor<2x?x8x64xbf16>, tensor<2x?x32x64xbf16>
  return %o : tensor<2x?x32x64xbf16>
}

func.func @mla_decode(%qn: tensor<1x1x16x128xf32>, %qr: tensor<1x1x16x64xf32>, %ckv: tensor<1x1024x512xf32>, %kr: tensor<1x1024x64xf32>, %wuk: tensor<16x128x512xf32>, %wuv: tensor<16x128x512xf32>) -> tensor<1x1x16x128xf32> {
  %o = posenc.mla_absorb %qn, %qr, %ckv, %kr, %wuk, %wuv causal : tensor<1x1x16x128xf32>, tensor<1x1x16x64xf32>, tensor<1x1024x512xf32>, tensor<1x1024x64xf32>, tensor<16x128x512xf32>, tensor<16x128x512xf32> -> tensor<1x1x16x128xf32>
  return %o : tensor<1x1x16x128xf32>
}

// REQUIRES: cuda-toolkit
// RUN: posenc-opt %s -posenc-lower-to-nvvm="format=isa attention-precision=tf32" | FileCheck %s --implicit-check-not=".extern .func"
// RUN: %nvvm_report %s --chip sm_80 --options "attention-precision=tf32" | FileCheck %s --check-prefix=PTXAS
// RUN: %nvvm_report %s --chip sm_90 --options "attention-precision=tf32" | FileCheck %s --check-prefix=PTXAS
// RUN: %nvvm_report %s --chip sm_90 --options "attention-precision=tf32 attention-threads=256" | FileCheck %s --check-prefix=PTXAS

// attention-precision=tf32: Q·Kᵀ and P·V of the attention kernel on
// tensor cores, f16 as m16n8k16 f16 mma.sync, f32 and bf16 as m16n8k8
// tf32, each warp's scores, weights and output in registers (row max and
// sum by shfl.sync), K and V tiles copied by 16-byte cp.async; ptxas
// assembles them for sm_80 and sm_90 without spills at 128 and 256
// threads per block.
// CHECK: gpu.binary @alibi_tf32_kernel{{.*}}cp.async.cg.shared.global{{.*}}cp.async.commit_group{{.*}}cp.async.wait_group{{.*}}mma.sync.aligned.m16n8k8.row.col.f32.tf32.tf32.f32{{.*}}shfl.sync
// CHECK: gpu.binary @gqa_bf16_kernel{{.*}}cp.async.cg.shared.global{{.*}}mma.sync.aligned.m16n8k8.row.col.f32.tf32.tf32.f32
// CHECK: gpu.binary @gqa_f16_kernel{{.*}}cp.async.cg.shared.global{{.*}}mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32
// PTXAS-NOT: spill stores {{[1-9]}}
// PTXAS: alibi_tf32_kernel{{.*}}spill stores 0 B, spill loads 0 B{{.*}}B dynamic
// PTXAS-NOT: spill stores {{[1-9]}}
// PTXAS: gqa_bf16_kernel{{.*}}spill stores 0 B, spill loads 0 B{{.*}}B dynamic
// PTXAS-NOT: spill stores {{[1-9]}}
// PTXAS: gqa_f16_kernel{{.*}}spill stores 0 B, spill loads 0 B{{.*}}B dynamic
// PTXAS-NOT: spill stores {{[1-9]}}

func.func @alibi_tf32(%q: tensor<1x4096x32x128xf32>, %k: tensor<1x4096x32x128xf32>, %v: tensor<1x4096x32x128xf32>, %p: tensor<4096xi32>) -> tensor<1x4096x32x128xf32> {
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

func.func @gqa_f16(%q: tensor<2x128x32x64xf16>, %k: tensor<2x128x8x64xf16>, %v: tensor<2x128x8x64xf16>) -> tensor<2x128x32x64xf16> {
  %init_o = tensor.empty() : tensor<2x128x32x64xf16>
  %o = posenc.attention %q, %k, %v causal outs(%init_o) : tensor<2x128x32x64xf16>, tensor<2x128x8x64xf16>, tensor<2x128x8x64xf16>, tensor<2x128x32x64xf16>
  return %o : tensor<2x128x32x64xf16>
}

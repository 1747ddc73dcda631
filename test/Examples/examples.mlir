// Every example model layer parses, verifies and survives canonicalization.
// RUN: posenc-opt %S/../../examples/llama3_attention.mlir --canonicalize | FileCheck %s --check-prefix=LLAMA
// RUN: posenc-opt %S/../../examples/bloom_alibi_attention.mlir --canonicalize | FileCheck %s --check-prefix=BLOOM
// RUN: posenc-opt %S/../../examples/t5_encoder_attention.mlir --canonicalize | FileCheck %s --check-prefix=T5
// RUN: posenc-opt %S/../../examples/deepseek_v3_mla.mlir --canonicalize | FileCheck %s --check-prefix=MLA

// LLAMA-LABEL: func @llama3_attention
// LLAMA-COUNT-2: posenc.rope {{.*}}#posenc.rope_scaling<llama3
// LLAMA: posenc.attention {{.*}} causal

// BLOOM-LABEL: func @bloom_alibi_attention
// BLOOM: posenc.alibi_bias {{.*}} mode causal {num_heads = 16 : i64}
// BLOOM: posenc.attention {{.*}} bias(

// T5-LABEL: func @t5_encoder_attention
// T5: posenc.rel_bias {{.*}} kind t5
// T5: posenc.attention {{.*}} bias(

// MLA-LABEL: func @prefill
// MLA-COUNT-2: posenc.rope {{.*}} layout interleaved
// MLA: posenc.mla_absorb
// MLA-LABEL: func @decode
// MLA: posenc.rope {{.*}} layout interleaved
// MLA: posenc.mla_absorb

// RUN: posenc-opt %s -posenc-decompose-mla=mode=naive -split-input-file | FileCheck %s --check-prefix=NAIVE
// RUN: posenc-opt %s -posenc-decompose-mla=mode=absorbed -split-input-file | FileCheck %s --check-prefix=ABS
// RUN: posenc-opt %s -posenc-decompose-mla -split-input-file | FileCheck %s --check-prefix=AUTO
// RUN: posenc-opt %s -posenc-decompose-mla="mode=auto absorb-threshold=0" -split-input-file | FileCheck %s --check-prefix=AUTO0

// Naive: multi-head attention over decompressed keys (Dn + Dr = 24 wide)
// and values. Absorbed: multi-query attention over the latent (C + Dr = 40
// wide keys, C = 32 wide values), then the w_uv projection.
// NAIVE-LABEL: func @decode
// NAIVE: posenc.attention {{.*}} causal outs(%{{.+}}) {scale = 2.500000e-01 : f64} : tensor<1x1x4x24xf32>, tensor<1x9x4x24xf32>, tensor<1x9x4x16xf32>, tensor<1x1x4x16xf32>
// NAIVE-NOT: posenc.mla_absorb
// ABS-LABEL: func @decode
// ABS: tensor.expand_shape %{{.+}} {{\[}}[0], [1], [2, 3]] output_shape [1, 9, 1, 32]
// ABS: posenc.attention {{.*}} causal outs(%{{.+}}) {scale = 2.500000e-01 : f64} : tensor<1x1x4x40xf32>, tensor<1x9x1x40xf32>, tensor<1x9x1x32xf32>, tensor<1x1x4x32xf32>
// ABS: linalg.generic
// ABS-SAME: iterator_types = ["parallel", "parallel", "parallel", "parallel", "reduction"]
// ABS-NOT: posenc.mla_absorb
// Sq = 1 <= 16: auto absorbs.
// AUTO-LABEL: func @decode
// AUTO: posenc.attention {{.*}} tensor<1x9x1x40xf32>
// AUTO0-LABEL: func @decode
// AUTO0: posenc.attention {{.*}} tensor<1x9x4x24xf32>
func.func @decode(%qn: tensor<1x1x4x16xf32>, %qr: tensor<1x1x4x8xf32>, %c: tensor<1x9x32xf32>, %kr: tensor<1x9x8xf32>, %wk: tensor<4x16x32xf32>, %wv: tensor<4x16x32xf32>) -> tensor<1x1x4x16xf32> {
  %o = posenc.mla_absorb %qn, %qr, %c, %kr, %wk, %wv causal {scale = 0.25 : f64} : tensor<1x1x4x16xf32>, tensor<1x1x4x8xf32>, tensor<1x9x32xf32>, tensor<1x9x8xf32>, tensor<4x16x32xf32>, tensor<4x16x32xf32> -> tensor<1x1x4x16xf32>
  return %o : tensor<1x1x4x16xf32>
}

// -----

// A dynamic query length is naive under auto; the default scale is
// 1/sqrt(Dn + Dr); bf16 results are truncated from f32 at the end.
// NAIVE-LABEL: func @prefill_dynamic
// ABS-LABEL: func @prefill_dynamic
// AUTO-LABEL: func @prefill_dynamic
// AUTO: posenc.attention {{.*}} outs(%{{.+}}) {scale = 0.20412414523193154 : f64} : tensor<2x?x4x24xf32>, tensor<2x9x4x24xf32>, tensor<2x9x4x16xf32>, tensor<2x?x4x16xf32>
// AUTO: arith.truncf %{{.+}} : f32 to bf16
func.func @prefill_dynamic(%qn: tensor<2x?x4x16xbf16>, %qr: tensor<2x?x4x8xbf16>, %c: tensor<2x9x32xbf16>, %kr: tensor<2x9x8xbf16>, %wk: tensor<4x16x32xbf16>, %wv: tensor<4x16x32xbf16>) -> tensor<2x?x4x16xbf16> {
  %o = posenc.mla_absorb %qn, %qr, %c, %kr, %wk, %wv : tensor<2x?x4x16xbf16>, tensor<2x?x4x8xbf16>, tensor<2x9x32xbf16>, tensor<2x9x8xbf16>, tensor<4x16x32xbf16>, tensor<4x16x32xbf16> -> tensor<2x?x4x16xbf16>
  return %o : tensor<2x?x4x16xbf16>
}

// -----

// negative_dynamic_latent: the latent width must be static to size the
// absorbed keys; the op is left for the lowering to report.
// NAIVE-LABEL: func @negative_dynamic_latent
// ABS-LABEL: func @negative_dynamic_latent
// AUTO-LABEL: func @negative_dynamic_latent
// AUTO: posenc.mla_absorb
func.func @negative_dynamic_latent(%qn: tensor<1x1x4x16xf32>, %qr: tensor<1x1x4x8xf32>, %c: tensor<1x9x?xf32>, %kr: tensor<1x9x8xf32>, %wk: tensor<4x16x?xf32>, %wv: tensor<4x16x?xf32>) -> tensor<1x1x4x16xf32> {
  %o = posenc.mla_absorb %qn, %qr, %c, %kr, %wk, %wv : tensor<1x1x4x16xf32>, tensor<1x1x4x8xf32>, tensor<1x9x?xf32>, tensor<1x9x8xf32>, tensor<4x16x?xf32>, tensor<4x16x?xf32> -> tensor<1x1x4x16xf32>
  return %o : tensor<1x1x4x16xf32>
}

// RUN: posenc-opt %s -split-input-file -convert-posenc-to-linalg -verify-diagnostics

// Shapes the CPU lowerings need static are named with the op, not left to
// "failed to legalize".

func.func @dynamic_heads(%q: tensor<1x4x?x8xf32>, %k: tensor<1x4x?x8xf32>) -> tensor<1x4x?x8xf32> {
  %init_o_c2 = arith.constant 2 : index
  %init_o_d2 = tensor.dim %q, %init_o_c2 : tensor<1x4x?x8xf32>
  %init_o = tensor.empty(%init_o_d2) : tensor<1x4x?x8xf32>
  // expected-error@+1 {{'posenc.attention' op cannot be lowered with a dynamic number of heads (q: 'tensor<1x4x?x8xf32>', k: 'tensor<1x4x?x8xf32>'): the GQA group size must be static}}
  %o = posenc.attention %q, %k, %k outs(%init_o) : tensor<1x4x?x8xf32>, tensor<1x4x?x8xf32>, tensor<1x4x?x8xf32>, tensor<1x4x?x8xf32>
  return %o : tensor<1x4x?x8xf32>
}

// -----

func.func @dynamic_head_dim_no_scale(%q: tensor<1x4x2x?xf32>) -> tensor<1x4x2x?xf32> {
  %init_o_c3 = arith.constant 3 : index
  %init_o_d3 = tensor.dim %q, %init_o_c3 : tensor<1x4x2x?xf32>
  %init_o = tensor.empty(%init_o_d3) : tensor<1x4x2x?xf32>
  // expected-error@+1 {{'posenc.attention' op cannot be lowered with a dynamic key head dim and no scale attribute}}
  %o = posenc.attention %q, %q, %q outs(%init_o) : tensor<1x4x2x?xf32>, tensor<1x4x2x?xf32>, tensor<1x4x2x?xf32>, tensor<1x4x2x?xf32>
  return %o : tensor<1x4x2x?xf32>
}

// -----

func.func @mla_dynamic_latent(%qn: tensor<1x4x2x16xf32>, %qr: tensor<1x4x2x8xf32>, %c: tensor<1x4x?xf32>, %kr: tensor<1x4x8xf32>, %wk: tensor<2x16x?xf32>, %wv: tensor<2x16x?xf32>) -> tensor<1x4x2x16xf32> {
  // expected-error@+1 {{'posenc.mla_absorb' op cannot be lowered with dynamic head or latent dims}}
  %o = posenc.mla_absorb %qn, %qr, %c, %kr, %wk, %wv : tensor<1x4x2x16xf32>, tensor<1x4x2x8xf32>, tensor<1x4x?xf32>, tensor<1x4x8xf32>, tensor<2x16x?xf32>, tensor<2x16x?xf32> -> tensor<1x4x2x16xf32>
  return %o : tensor<1x4x2x16xf32>
}

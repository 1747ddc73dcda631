// RUN: posenc-opt %s --posenc-decompose-attention -split-input-file -verify-diagnostics | FileCheck %s

// attention becomes online_attention from (0, -inf, 0) and acc / sum;
// online_attention, tiled into steps of one batch and one kv head (its
// G = 2 query heads and 8 queries: 16 rows), becomes one online-softmax
// step on linalg: scale·Qᵀ, Sᵀ = K·Qᵀ as a matmul, the causal mask, the row
// max and weights, and T = P·V as a matmul, kept (acc = α·acc + T) when
// it comes out finite, else replaced by a contraction that skips masked
// weights (V held a NaN or Inf), writing the new state into its outs.
// CHECK-LABEL: func @attention
// CHECK-NOT: posenc.
// CHECK: scf.for
// CHECK: scf.for
// CHECK: linalg.generic {{.*}} ins(%{{.+}} : tensor<1x8x2x16xf32>) outs(%{{.+}} : tensor<16x1x8x2xf32>)
// CHECK: arith.mulf
// CHECK: linalg.matmul ins(%{{.+}}, %{{.+}} : tensor<?x16xf32>, tensor<16x16xf32>)
// CHECK: arith.cmpi sgt
// CHECK: arith.maxnumf
// CHECK: math.exp
// CHECK: %[[T:.+]] = linalg.matmul indexing_maps
// CHECK: arith.mulf %in, %cst
// CHECK: %[[FIN:.+]] = arith.cmpf oeq
// CHECK: scf.if %[[FIN]]
// CHECK: ins(%{{.+}}, %[[T]] : tensor<16xf32>, tensor<16x16xf32>)
// CHECK: math.fma
// CHECK: } else {
// CHECK: math.fma
// CHECK: arith.bitcast
// CHECK: arith.divf
// CHECK-NOT: posenc.
func.func @attention(%q: tensor<1x8x4x16xf32>, %k: tensor<1x8x2x16xf32>) -> tensor<1x8x4x16xf32> {
  %init_o = tensor.empty() : tensor<1x8x4x16xf32>
  %o = posenc.attention %q, %k, %k causal outs(%init_o) : tensor<1x8x4x16xf32>, tensor<1x8x2x16xf32>, tensor<1x8x2x16xf32>, tensor<1x8x4x16xf32>
  return %o : tensor<1x8x4x16xf32>
}

// -----

// A score_mod is inlined with the indices shifted by the offsets. Eight
// rows take the row-major step: S[row, key].
// CHECK-LABEL: func @online_offsets
// CHECK: linalg.matmul
// CHECK: linalg.generic
// CHECK: %[[I:.+]] = linalg.index 0 : index
// CHECK: %[[J:.+]] = linalg.index 1 : index
// CHECK: arith.addi %[[I]], %{{.+}}
// CHECK: %[[JG:.+]] = arith.addi %[[J]], %{{.+}}
// CHECK: arith.index_cast %[[JG]]
func.func @online_offsets(%q: tensor<1x8x4x16xf32>, %acc: tensor<1x8x4x16xf32>, %m: tensor<1x8x4xf32>, %l: tensor<1x8x4xf32>, %o0: index, %o1: index) -> tensor<1x8x4x16xf32> {
  %a, %mx, %s = posenc.online_attention %q, %q, %q offsets(%o0, %o0, %o1, %o1) outs(%acc, %m, %l) : tensor<1x8x4x16xf32>, tensor<1x8x4x16xf32>, tensor<1x8x4x16xf32>, tensor<1x8x4x16xf32>, tensor<1x8x4xf32>, tensor<1x8x4xf32> score_mod {
  ^bb0(%sc: f32, %b: index, %h: index, %i: index, %j: index):
    %ji = arith.index_cast %j : index to i32
    %jf = arith.sitofp %ji : i32 to f32
    %r = arith.addf %sc, %jf : f32
    posenc.yield %r : f32
  }
  return %a : tensor<1x8x4x16xf32>
}

// -----

// Dynamic heads: the GQA group is not known.
func.func @negative_dynamic_heads(%q: tensor<1x8x?x16xf32>, %k: tensor<1x8x?x16xf32>) -> tensor<1x8x?x16xf32> {
  %init_o_c2 = arith.constant 2 : index
  %init_o_d2 = tensor.dim %q, %init_o_c2 : tensor<1x8x?x16xf32>
  %init_o = tensor.empty(%init_o_d2) : tensor<1x8x?x16xf32>
  // expected-error@+1 {{'posenc.attention' op cannot be decomposed: it needs a static number of heads, and a static key head dim or a scale}}
  %o = posenc.attention %q, %k, %k outs(%init_o) : tensor<1x8x?x16xf32>, tensor<1x8x?x16xf32>, tensor<1x8x?x16xf32>, tensor<1x8x?x16xf32>
  return %o : tensor<1x8x?x16xf32>
}

// -----

// bf16 queries and keys in the row-major step (decode): Q·Kᵀ multiplies
// them as stored (bf16 products are exact in f32; posenc-vectorize-matmul
// makes it vdpbf16ps where the host has AVX512-BF16) and the scale
// (1/sqrt(16)) multiplies the scores, instead of an f32 scale·Q.
// CHECK-LABEL: func @bf16_decode_step
// CHECK-NOT: ins(%{{.+}} : tensor<1x1x2x16xbf16>) outs(%{{.+}} : tensor<1x1x2x16xf32>)
// CHECK: linalg.matmul indexing_maps = [{{.+}}] ins(%{{.+}}, %{{.+}} : tensor<2x16xbf16>, tensor<8x16xbf16>) outs(%{{.+}} : tensor<2x8xf32>)
// CHECK-NEXT: linalg.generic
// CHECK-NEXT: ^bb0(%[[OUT:.+]]: f32):
// CHECK-NEXT: %[[SCALE:.+]] = arith.constant 2.500000e-01 : f32
// CHECK-NEXT: arith.mulf %[[OUT]], %[[SCALE]] : f32
// CHECK: arith.maxnumf
func.func @bf16_decode_step(%q: tensor<1x1x4x16xbf16>, %k: tensor<1x8x2x16xbf16>, %acc: tensor<1x1x4x16xf32>, %m: tensor<1x1x4xf32>, %l: tensor<1x1x4xf32>) -> tensor<1x1x4x16xf32> {
  %a, %mx, %s = posenc.online_attention %q, %k, %k outs(%acc, %m, %l) : tensor<1x1x4x16xbf16>, tensor<1x8x2x16xbf16>, tensor<1x8x2x16xbf16>, tensor<1x1x4x16xf32>, tensor<1x1x4xf32>, tensor<1x1x4xf32>
  return %a : tensor<1x1x4x16xf32>
}

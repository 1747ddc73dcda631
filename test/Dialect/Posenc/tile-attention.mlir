// RUN: posenc-opt %s --transform-interpreter --canonicalize -split-input-file -verify-diagnostics | FileCheck %s

// Upstream's transform dialect tiles posenc.attention through its
// TilingInterface: (batch, query heads, queries) by (1, 4, 3) with GQA
// group 4, so each tile reads one kv head (h0 floordiv 4); the causal
// diagonal moves with the tile's first query (Sk - Sq + i0 = 2 + i0), each
// tile reads only the keys its queries see (min(12, i0 + tq + 2)), and
// score_mod sees the untiled indices through offsets.
// CHECK: #[[$SEEN:.+]] = affine_map<()[s0, s1] -> (12, s0 + s1 + 2)>
// CHECK: #[[$DIAG:.+]] = affine_map<()[s0] -> (s0 + 2)>
// CHECK-LABEL: func @tile_gqa_causal
// CHECK: scf.for %[[B:.+]] = %c0 to %c2 step %c1
// CHECK: scf.for %[[H:.+]] = %c0 to %c8 step %c4
// CHECK: scf.for %[[I:.+]] = %c0 to %c10 step %c3
// CHECK: %[[TQ:.+]] = affine.min
// CHECK: %[[KV:.+]] = affine.apply #{{.+}}()[%[[H]]]
// CHECK: %[[SEEN:.+]] = affine.min #[[$SEEN]]()[%[[I]], %[[TQ]]]
// CHECK: %[[NK:.+]] = affine.max #{{.+}}()[%[[SEEN]]]
// CHECK: %[[Q:.+]] = tensor.extract_slice %arg0[%[[B]], %[[I]], %[[H]], 0] [1, %[[TQ]], 4, 16]
// CHECK: %[[K:.+]] = tensor.extract_slice %arg1[%[[B]], 0, %[[KV]], 0] [1, %[[NK]], 1, 16]
// CHECK: %[[V:.+]] = tensor.extract_slice %arg2[%[[B]], 0, %[[KV]], 0] [1, %[[NK]], 1, 8]
// CHECK: %[[D:.+]] = affine.apply #[[$DIAG]]()[%[[I]]]
// CHECK: %[[O:.+]] = posenc.attention %[[Q]], %[[K]], %[[V]] causal diagonal(%[[D]]) offsets(%[[B]], %[[H]], %[[I]]) outs(%{{.+}}) : tensor<1x?x4x16xf32>, tensor<1x?x1x16xf32>, tensor<1x?x1x8xf32>, tensor<1x?x4x8xf32> score_mod
// CHECK: tensor.insert_slice %[[O]] into %{{.+}}[%[[B]], %[[I]], %[[H]], 0] [1, %[[TQ]], 4, 8]
func.func @tile_gqa_causal(%q: tensor<2x10x8x16xf32>, %k: tensor<2x12x2x16xf32>, %v: tensor<2x12x2x8xf32>) -> tensor<2x10x8x8xf32> {
  %init_o = tensor.empty() : tensor<2x10x8x8xf32>
  %o = posenc.attention %q, %k, %v causal outs(%init_o) : tensor<2x10x8x16xf32>, tensor<2x12x2x16xf32>, tensor<2x12x2x8xf32>, tensor<2x10x8x8xf32> score_mod {
  ^bb0(%s: f32, %b: index, %h: index, %i: index, %j: index):
    posenc.yield %s : f32
  }
  return %o : tensor<2x10x8x8xf32>
}
module attributes {transform.with_named_sequence} {
  transform.named_sequence @__transform_main(%root: !transform.any_op {transform.readonly}) {
    %a = transform.structured.match ops{["posenc.attention"]} in %root : (!transform.any_op) -> !transform.any_op
    %t, %l:3 = transform.structured.tile_using_for %a tile_sizes [1, 4, 3, 0, 0, 0] : (!transform.any_op) -> (!transform.any_op, !transform.any_op, !transform.any_op, !transform.any_op)
    transform.yield
  }
}

// -----

// scf.forall over heads and the value head dim; a [Hq, Sq, Sk] bias is
// sliced along heads and queries, a broadcast (size-1) dim is not.
// CHECK-LABEL: func @tile_forall_bias
// CHECK: scf.forall (%[[H:.+]], %[[E:.+]]) in (4, 2)
// CHECK: tensor.extract_slice %arg3[%[[H]], 0, 0] [1, 6, 6]
// CHECK: posenc.attention {{.*}} bias(%{{.+}} : tensor<1x6x6xf32>) outs(%{{.+}}) : tensor<1x6x1x16xf32>, tensor<1x6x1x16xf32>, tensor<1x6x1x4xf32>, tensor<1x6x1x4xf32>
// CHECK: tensor.parallel_insert_slice
func.func @tile_forall_bias(%q: tensor<1x6x4x16xf32>, %k: tensor<1x6x4x16xf32>, %v: tensor<1x6x4x8xf32>, %bias: tensor<4x6x6xf32>) -> tensor<1x6x4x8xf32> {
  %init_o = tensor.empty() : tensor<1x6x4x8xf32>
  %o = posenc.attention %q, %k, %v bias(%bias : tensor<4x6x6xf32>) outs(%init_o) : tensor<1x6x4x16xf32>, tensor<1x6x4x16xf32>, tensor<1x6x4x8xf32>, tensor<1x6x4x8xf32>
  return %o : tensor<1x6x4x8xf32>
}
module attributes {transform.with_named_sequence} {
  transform.named_sequence @__transform_main(%root: !transform.any_op {transform.readonly}) {
    %a = transform.structured.match ops{["posenc.attention"]} in %root : (!transform.any_op) -> !transform.any_op
    %t, %l = transform.structured.tile_using_forall %a tile_sizes [0, 1, 0, 0, 0, 4] : (!transform.any_op) -> (!transform.any_op, !transform.any_op)
    transform.yield
  }
}

// -----

// Decomposed after tiling: each tile becomes online_attention from
// (0, -inf, 0) and the normalization (decompose_interface); the
// online_attention ops have three results, which decompose_interface does
// not take: tile-attention-decompose.mlir decomposes them.
// CHECK-LABEL: func @tile_then_decompose
// CHECK: scf.for
// CHECK-NOT: posenc.attention
// CHECK: %[[ACC:.+]], %{{.+}}, %[[SUM:.+]] = posenc.online_attention {{.*}} causal diagonal
// CHECK: linalg.generic {{.*}} ins(%[[ACC]], %[[SUM]] :
// CHECK: arith.divf
func.func @tile_then_decompose(%q: tensor<1x8x2x16xf32>, %k: tensor<1x8x2x16xf32>, %v: tensor<1x8x2x16xf32>) -> tensor<1x8x2x16xf32> {
  %init_o = tensor.empty() : tensor<1x8x2x16xf32>
  %o = posenc.attention %q, %k, %v causal outs(%init_o) : tensor<1x8x2x16xf32>, tensor<1x8x2x16xf32>, tensor<1x8x2x16xf32>, tensor<1x8x2x16xf32>
  return %o : tensor<1x8x2x16xf32>
}
module attributes {transform.with_named_sequence} {
  transform.named_sequence @__transform_main(%root: !transform.any_op {transform.readonly}) {
    %a = transform.structured.match ops{["posenc.attention"]} in %root : (!transform.any_op) -> !transform.any_op
    %t, %l = transform.structured.tile_using_for %a tile_sizes [0, 0, 4, 0, 0, 0] : (!transform.any_op) -> (!transform.any_op, !transform.any_op)
    %d = transform.structured.decompose_interface %t : (!transform.any_op) -> !transform.any_op
    transform.yield
  }
}

// -----

// The softmax spans every key: tiling keys is refused with a reason.
func.func @negative_tile_keys(%q: tensor<1x8x2x16xf32>) -> tensor<1x8x2x16xf32> {
  %init_o = tensor.empty() : tensor<1x8x2x16xf32>
  // expected-error@+3 {{to tile operation}}
  // expected-error@+2 {{failed to generate tiling loops}}
  // expected-error@+1 {{'posenc.attention' op cannot be tiled along keys or the key head dim: its softmax spans every key of a row}}
  %o = posenc.attention %q, %q, %q outs(%init_o) : tensor<1x8x2x16xf32>, tensor<1x8x2x16xf32>, tensor<1x8x2x16xf32>, tensor<1x8x2x16xf32>
  return %o : tensor<1x8x2x16xf32>
}
module attributes {transform.with_named_sequence} {
  transform.named_sequence @__transform_main(%root: !transform.any_op {transform.readonly}) {
    %a = transform.structured.match ops{["posenc.attention"]} in %root : (!transform.any_op) -> !transform.any_op
    %t, %l = transform.structured.tile_using_for %a tile_sizes [0, 0, 0, 4, 0, 0] : (!transform.any_op) -> (!transform.any_op, !transform.any_op)
    transform.yield
  }
}

// -----

// A head tile of 3 splits a GQA group of 4 across tiles: refused.
func.func @negative_tile_splits_group(%q: tensor<1x8x12x16xf32>, %k: tensor<1x8x3x16xf32>) -> tensor<1x8x12x16xf32> {
  %init_o = tensor.empty() : tensor<1x8x12x16xf32>
  // expected-error@+3 {{to tile operation}}
  // expected-error@+2 {{failed to generate tiling loops}}
  // expected-error@+1 {{'posenc.attention' op head tile must be static and divide or be a multiple of the GQA group (Hq / Hkv), with static head counts}}
  %o = posenc.attention %q, %k, %k outs(%init_o) : tensor<1x8x12x16xf32>, tensor<1x8x3x16xf32>, tensor<1x8x3x16xf32>, tensor<1x8x12x16xf32>
  return %o : tensor<1x8x12x16xf32>
}
module attributes {transform.with_named_sequence} {
  transform.named_sequence @__transform_main(%root: !transform.any_op {transform.readonly}) {
    %a = transform.structured.match ops{["posenc.attention"]} in %root : (!transform.any_op) -> !transform.any_op
    %t, %l = transform.structured.tile_using_for %a tile_sizes [0, 3, 0, 0, 0, 0] : (!transform.any_op) -> (!transform.any_op, !transform.any_op)
    transform.yield
  }
}

// -----

// The FlashAttention loop from upstream tiling alone: attention tiled by
// heads and decomposed into online_attention from (0, -inf, 0), whose keys
// are tiled by 5: an scf.for carrying (acc, max, sum), each block an
// online_attention on its keys with the diagonal moved by -j0.
// CHECK: #[[$KEYDIAG:.+]] = affine_map<()[s0] -> (-s0 + 2)>
// CHECK-LABEL: func @flash_loop
// CHECK: scf.for %[[H:.+]] = %c0 to %c4 step %c2
// CHECK: %[[ACC0:.+]] = linalg.fill
// CHECK: %[[MAX0:.+]] = linalg.fill ins(%cst
// CHECK: %[[SUM0:.+]] = linalg.fill
// CHECK: %[[STATE:.+]]:3 = scf.for %[[J:.+]] = %c0 to %c12 step %c5 iter_args(%[[A:.+]] = %[[ACC0]], %[[M:.+]] = %[[MAX0]], %[[L:.+]] = %[[SUM0]])
// CHECK: %[[TK:.+]] = affine.min
// CHECK: %[[K:.+]] = tensor.extract_slice %{{.+}}[0, %[[J]], 0, 0] [1, %[[TK]], 1, 16]
// CHECK: %[[D:.+]] = affine.apply #[[$KEYDIAG]]()[%[[J]]]
// CHECK: posenc.online_attention %{{.+}}, %[[K]], %{{.+}} causal diagonal(%[[D]]) outs(%[[A]], %[[M]], %[[L]])
// CHECK: scf.yield
// CHECK: linalg.generic {{.*}} ins(%[[STATE]]#0, %[[STATE]]#2 :
// CHECK: arith.divf
func.func @flash_loop(%q: tensor<1x10x4x16xf32>, %k: tensor<1x12x2x16xf32>, %v: tensor<1x12x2x8xf32>) -> tensor<1x10x4x8xf32> {
  %init_o = tensor.empty() : tensor<1x10x4x8xf32>
  %o = posenc.attention %q, %k, %v causal outs(%init_o) : tensor<1x10x4x16xf32>, tensor<1x12x2x16xf32>, tensor<1x12x2x8xf32>, tensor<1x10x4x8xf32>
  return %o : tensor<1x10x4x8xf32>
}
module attributes {transform.with_named_sequence} {
  transform.named_sequence @__transform_main(%root: !transform.any_op {transform.readonly}) {
    %a = transform.structured.match ops{["posenc.attention"]} in %root : (!transform.any_op) -> !transform.any_op
    %t, %l = transform.structured.tile_using_for %a tile_sizes [0, 2, 0, 0, 0, 0] : (!transform.any_op) -> (!transform.any_op, !transform.any_op)
    %d = transform.structured.decompose_interface %t : (!transform.any_op) -> !transform.any_op
    %o = transform.structured.match ops{["posenc.online_attention"]} in %root : (!transform.any_op) -> !transform.any_op
    %t2, %l2 = transform.structured.tile_using_for %o tile_sizes [0, 0, 0, 5, 0, 0] : (!transform.any_op) -> (!transform.any_op, !transform.any_op)
    transform.yield
  }
}

// -----

// online_attention's max and sum are shared by every value dim of a row.
func.func @negative_online_value_tiles(%q: tensor<1x8x2x16xf32>, %acc: tensor<1x8x2x16xf32>, %m: tensor<1x8x2xf32>) -> tensor<1x8x2x16xf32> {
  // expected-error@+3 {{to tile operation}}
  // expected-error@+2 {{failed to generate tiling loops}}
  // expected-error@+1 {{'posenc.online_attention' op cannot be tiled along the key or value head dims: a row's max and sum are shared by all of them}}
  %a, %mx, %s = posenc.online_attention %q, %q, %q outs(%acc, %m, %m) : tensor<1x8x2x16xf32>, tensor<1x8x2x16xf32>, tensor<1x8x2x16xf32>, tensor<1x8x2x16xf32>, tensor<1x8x2xf32>, tensor<1x8x2xf32>
  return %a : tensor<1x8x2x16xf32>
}
module attributes {transform.with_named_sequence} {
  transform.named_sequence @__transform_main(%root: !transform.any_op {transform.readonly}) {
    %a = transform.structured.match ops{["posenc.online_attention"]} in %root : (!transform.any_op) -> !transform.any_op
    %t, %l = transform.structured.tile_using_for %a tile_sizes [0, 0, 0, 0, 0, 4] : (!transform.any_op) -> (!transform.any_op, !transform.any_op)
    transform.yield
  }
}

// -----

// Split-K (flash-decoding) through PartialReductionOpInterface: 4 chunks of
// keys in an scf.forall, each an online_attention from (0, -inf, 0) into
// its slot of the partial states [4, ..] (chunk-major: each slot as
// contiguous as the op's state); then the merge: the common max,
// and sums and accumulators rescaled to it and added to the op's own state.
// CHECK-LABEL: func @split_k_decode
// CHECK: %[[PACC:.+]] = linalg.fill ins(%{{.+}} : f32) outs(%{{.+}} : tensor<4x1x1x8x8xf32>)
// CHECK: %[[PMAX:.+]] = linalg.fill ins(%{{.+}} : f32) outs(%{{.+}} : tensor<4x1x1x8xf32>)
// CHECK: %[[P:.+]]:3 = scf.forall (%[[C:.+]]) in (4) shared_outs(%[[A:.+]] = %[[PACC]], %[[M:.+]] = %[[PMAX]], %{{.+}} = %{{.+}})
// CHECK: %[[K:.+]] = tensor.extract_slice %arg1[0, %{{.+}}, 0, 0] [1, %{{.+}}, 2, 16]
// CHECK: %[[SLOT:.+]] = tensor.extract_slice %[[A]][%[[C]], 0, 0, 0, 0] [1, 1, 1, 8, 8]
// CHECK: %[[ACC:.+]] = tensor.collapse_shape %[[SLOT]] {{\[}}[0, 1], [2], [3], [4]]
// CHECK: posenc.online_attention %arg0, %[[K]], %{{.+}} causal diagonal(%{{.+}}) outs(%[[ACC]], %{{.+}}, %{{.+}})
// CHECK: tensor.parallel_insert_slice %{{.+}} into %[[A]][%[[C]], 0, 0, 0, 0] [1, 1, 1, 8, 8]
// CHECK: %[[MAX:.+]] = linalg.generic {{.*}} iterator_types = ["parallel", "parallel", "parallel", "reduction"]} ins(%[[P]]#1
// CHECK: arith.maxnumf
// CHECK: linalg.generic {{.*}} ins(%[[P]]#2, %[[P]]#1, %[[MAX]]
// CHECK: math.exp
// CHECK: math.fma
// CHECK: linalg.generic {{.*}} ins(%[[P]]#0, %[[P]]#1, %[[MAX]]
func.func @split_k_decode(%q: tensor<1x1x8x16xf32>, %k: tensor<1x37x2x16xf32>, %v: tensor<1x37x2x8xf32>) -> tensor<1x1x8x8xf32> {
  %init_o = tensor.empty() : tensor<1x1x8x8xf32>
  %o = posenc.attention %q, %k, %v causal outs(%init_o) : tensor<1x1x8x16xf32>, tensor<1x37x2x16xf32>, tensor<1x37x2x8xf32>, tensor<1x1x8x8xf32>
  return %o : tensor<1x1x8x8xf32>
}
module attributes {transform.with_named_sequence} {
  transform.named_sequence @__transform_main(%root: !transform.any_op {transform.readonly}) {
    %a = transform.structured.match ops{["posenc.attention"]} in %root : (!transform.any_op) -> !transform.any_op
    %d = transform.structured.decompose_interface %a : (!transform.any_op) -> !transform.any_op
    %o = transform.structured.match ops{["posenc.online_attention"]} in %root : (!transform.any_op) -> !transform.any_op
    %r:10 = transform.structured.tile_reduction_using_forall %o reduction_dims = [3] by num_threads = [0, 0, 0, 4, 0, 0] : (!transform.any_op) -> (!transform.any_op, !transform.any_op, !transform.any_op, !transform.any_op, !transform.any_op, !transform.any_op, !transform.any_op, !transform.any_op, !transform.any_op, !transform.any_op)
    transform.yield
  }
}

// -----

// posenc.rope is tileable too: (batch, positions, heads) by (1, 4, 2);
// the positions [B, S] are sliced with the tile, the head dim stays whole.
// CHECK-LABEL: func @tile_rope
// CHECK: scf.for %[[B:.+]] = %c0 to %c2 step %c1
// CHECK: scf.for %[[S:.+]] = %c0 to %c10 step %c4
// CHECK: scf.for %[[H:.+]] = %c0 to %c4 step %c2
// CHECK: %[[TS:.+]] = affine.min
// CHECK: %[[X:.+]] = tensor.extract_slice %arg0[%[[B]], %[[S]], %[[H]], 0] [1, %[[TS]], 2, 16]
// CHECK: %[[P:.+]] = tensor.extract_slice %arg1[%[[B]], %[[S]]] [1, %[[TS]]]
// CHECK: posenc.rope %[[X]], %[[P]] layout interleaved {base = 5.000000e+05 : f64, rotary_dim = 8 : i64} : tensor<1x?x2x16xf32>, tensor<1x?xi32>
func.func @tile_rope(%x: tensor<2x10x4x16xf32>, %pos: tensor<2x10xi32>) -> tensor<2x10x4x16xf32> {
  %y = posenc.rope %x, %pos layout interleaved {base = 500000.0 : f64, rotary_dim = 8 : i64} : tensor<2x10x4x16xf32>, tensor<2x10xi32>
  return %y : tensor<2x10x4x16xf32>
}
module attributes {transform.with_named_sequence} {
  transform.named_sequence @__transform_main(%root: !transform.any_op {transform.readonly}) {
    %r = transform.structured.match ops{["posenc.rope"]} in %root : (!transform.any_op) -> !transform.any_op
    %t, %l:3 = transform.structured.tile_using_for %r tile_sizes [1, 4, 2, 0] : (!transform.any_op) -> (!transform.any_op, !transform.any_op, !transform.any_op, !transform.any_op)
    transform.yield
  }
}

// -----

// M-RoPE positions [A, S]: every axis is kept, the positions sliced.
// CHECK-LABEL: func @tile_mrope
// CHECK: scf.for %[[S:.+]] = %c0 to %c8 step %c4
// CHECK: tensor.extract_slice %arg1[0, %[[S]]] [3, 4] [1, 1] : tensor<3x8xi64> to tensor<3x4xi64>
// CHECK: posenc.rope {{.*}}mrope_section = array<i64: 2, 1, 1>{{.*}} : tensor<1x4x2x8xf32>, tensor<3x4xi64>
func.func @tile_mrope(%x: tensor<1x8x2x8xf32>, %pos: tensor<3x8xi64>) -> tensor<1x8x2x8xf32> {
  %y = posenc.rope %x, %pos layout half {mrope_section = array<i64: 2, 1, 1>} : tensor<1x8x2x8xf32>, tensor<3x8xi64>
  return %y : tensor<1x8x2x8xf32>
}
module attributes {transform.with_named_sequence} {
  transform.named_sequence @__transform_main(%root: !transform.any_op {transform.readonly}) {
    %r = transform.structured.match ops{["posenc.rope"]} in %root : (!transform.any_op) -> !transform.any_op
    %t, %l = transform.structured.tile_using_for %r tile_sizes [0, 4, 0, 0] : (!transform.any_op) -> (!transform.any_op, !transform.any_op)
    transform.yield
  }
}

// -----

// Pairs span the head dim: a tile of it is refused.
func.func @negative_tile_rope_head_dim(%x: tensor<1x8x2x16xf32>, %pos: tensor<8xi64>) -> tensor<1x8x2x16xf32> {
  // expected-error@+3 {{to tile operation}}
  // expected-error@+2 {{failed to generate tiling loops}}
  // expected-error@+1 {{'posenc.rope' op cannot be tiled along the head dim: pairs span it}}
  %y = posenc.rope %x, %pos layout half : tensor<1x8x2x16xf32>, tensor<8xi64>
  return %y : tensor<1x8x2x16xf32>
}
module attributes {transform.with_named_sequence} {
  transform.named_sequence @__transform_main(%root: !transform.any_op {transform.readonly}) {
    %r = transform.structured.match ops{["posenc.rope"]} in %root : (!transform.any_op) -> !transform.any_op
    %t, %l = transform.structured.tile_using_for %r tile_sizes [0, 0, 0, 8] : (!transform.any_op) -> (!transform.any_op, !transform.any_op)
    transform.yield
  }
}

// -----

// Dynamic NTK scales by the largest position of the whole run: a tile of
// the positions is refused; a tile of the heads is not.
// CHECK-LABEL: func @tile_dynamic_ntk_heads
// CHECK: scf.for
// CHECK: posenc.rope {{.*}} : tensor<1x8x1x16xf32>, tensor<8xi64>
func.func @tile_dynamic_ntk_heads(%x: tensor<1x8x2x16xf32>, %pos: tensor<8xi64>) -> tensor<1x8x2x16xf32> {
  %y = posenc.rope %x, %pos layout half {scaling = #posenc.rope_scaling<dynamic, factor = 2.0, original = 4>} : tensor<1x8x2x16xf32>, tensor<8xi64>
  return %y : tensor<1x8x2x16xf32>
}
module attributes {transform.with_named_sequence} {
  transform.named_sequence @__transform_main(%root: !transform.any_op {transform.readonly}) {
    %r = transform.structured.match ops{["posenc.rope"]} in %root : (!transform.any_op) -> !transform.any_op
    %t, %l = transform.structured.tile_using_for %r tile_sizes [0, 0, 1, 0] : (!transform.any_op) -> (!transform.any_op, !transform.any_op)
    transform.yield
  }
}

// -----

func.func @negative_tile_dynamic_ntk_positions(%x: tensor<1x8x2x16xf32>, %pos: tensor<8xi64>) -> tensor<1x8x2x16xf32> {
  // expected-error@+3 {{to tile operation}}
  // expected-error@+2 {{failed to generate tiling loops}}
  // expected-error@+1 {{'posenc.rope' op cannot be tiled along batch or positions: its dynamic scaling reads the largest position of the whole run}}
  %y = posenc.rope %x, %pos layout half {scaling = #posenc.rope_scaling<dynamic, factor = 2.0, original = 4>} : tensor<1x8x2x16xf32>, tensor<8xi64>
  return %y : tensor<1x8x2x16xf32>
}
module attributes {transform.with_named_sequence} {
  transform.named_sequence @__transform_main(%root: !transform.any_op {transform.readonly}) {
    %r = transform.structured.match ops{["posenc.rope"]} in %root : (!transform.any_op) -> !transform.any_op
    %t, %l = transform.structured.tile_using_for %r tile_sizes [0, 4, 0, 0] : (!transform.any_op) -> (!transform.any_op, !transform.any_op)
    transform.yield
  }
}

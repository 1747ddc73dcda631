// RUN: posenc-opt %s --transform-interpreter --canonicalize -split-input-file -verify-diagnostics | FileCheck %s

// Upstream's transform dialect tiles posenc.attention through its
// TilingInterface: (batch, query heads, queries) by (1, 4, 3) with GQA
// group 4, so each tile reads one kv head (h0 floordiv 4); the causal
// diagonal moves with the tile's first query (Sk - Sq + i0 = 2 + i0), and
// score_mod sees the untiled indices through offsets.
// CHECK-LABEL: func @tile_gqa_causal
// CHECK: scf.for %[[B:.+]] = %c0 to %c2 step %c1
// CHECK: scf.for %[[H:.+]] = %c0 to %c8 step %c4
// CHECK: scf.for %[[I:.+]] = %c0 to %c10 step %c3
// CHECK: %[[TQ:.+]] = affine.min
// CHECK: %[[KV:.+]] = affine.apply #{{.+}}()[%[[H]]]
// CHECK: %[[Q:.+]] = tensor.extract_slice %arg0[%[[B]], %[[I]], %[[H]], 0] [1, %[[TQ]], 4, 16]
// CHECK: %[[K:.+]] = tensor.extract_slice %arg1[%[[B]], 0, %[[KV]], 0] [1, 12, 1, 16]
// CHECK: %[[V:.+]] = tensor.extract_slice %arg2[%[[B]], 0, %[[KV]], 0] [1, 12, 1, 8]
// CHECK: %[[D:.+]] = arith.addi %[[I]], %c2
// CHECK: %[[O:.+]] = posenc.attention %[[Q]], %[[K]], %[[V]] causal diagonal(%[[D]]) offsets(%[[B]], %[[H]], %[[I]]) : tensor<1x?x4x16xf32>, tensor<1x12x1x16xf32>, tensor<1x12x1x8xf32> -> tensor<1x?x4x8xf32> score_mod
// CHECK: tensor.insert_slice %[[O]] into %{{.+}}[%[[B]], %[[I]], %[[H]], 0] [1, %[[TQ]], 4, 8]
func.func @tile_gqa_causal(%q: tensor<2x10x8x16xf32>, %k: tensor<2x12x2x16xf32>, %v: tensor<2x12x2x8xf32>) -> tensor<2x10x8x8xf32> {
  %o = posenc.attention %q, %k, %v causal : tensor<2x10x8x16xf32>, tensor<2x12x2x16xf32>, tensor<2x12x2x8xf32> -> tensor<2x10x8x8xf32> score_mod {
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
// CHECK: posenc.attention {{.*}} bias(%{{.+}} : tensor<1x6x6xf32>) : tensor<1x6x1x16xf32>, tensor<1x6x1x16xf32>, tensor<1x6x1x4xf32> -> tensor<1x6x1x4xf32>
// CHECK: tensor.parallel_insert_slice
func.func @tile_forall_bias(%q: tensor<1x6x4x16xf32>, %k: tensor<1x6x4x16xf32>, %v: tensor<1x6x4x8xf32>, %bias: tensor<4x6x6xf32>) -> tensor<1x6x4x8xf32> {
  %o = posenc.attention %q, %k, %v bias(%bias : tensor<4x6x6xf32>) : tensor<1x6x4x16xf32>, tensor<1x6x4x16xf32>, tensor<1x6x4x8xf32> -> tensor<1x6x4x8xf32>
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

// Decomposed after tiling: each tile is the whole-tensor form on linalg.
// CHECK-LABEL: func @tile_then_decompose
// CHECK: scf.for
// CHECK-NOT: posenc.attention
// CHECK: linalg.generic
// CHECK: math.exp
func.func @tile_then_decompose(%q: tensor<1x8x2x16xf32>, %k: tensor<1x8x2x16xf32>, %v: tensor<1x8x2x16xf32>) -> tensor<1x8x2x16xf32> {
  %o = posenc.attention %q, %k, %v causal : tensor<1x8x2x16xf32>, tensor<1x8x2x16xf32>, tensor<1x8x2x16xf32> -> tensor<1x8x2x16xf32>
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
  // expected-error@+3 {{to tile operation}}
  // expected-error@+2 {{failed to generate tiling loops}}
  // expected-error@+1 {{'posenc.attention' op cannot be tiled along keys or the key head dim: its softmax spans every key of a row}}
  %o = posenc.attention %q, %q, %q : tensor<1x8x2x16xf32>, tensor<1x8x2x16xf32>, tensor<1x8x2x16xf32> -> tensor<1x8x2x16xf32>
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
  // expected-error@+3 {{to tile operation}}
  // expected-error@+2 {{failed to generate tiling loops}}
  // expected-error@+1 {{'posenc.attention' op head tile must be static and divide or be a multiple of the GQA group (Hq / Hkv), with static head counts}}
  %o = posenc.attention %q, %k, %k : tensor<1x8x12x16xf32>, tensor<1x8x3x16xf32>, tensor<1x8x3x16xf32> -> tensor<1x8x12x16xf32>
  return %o : tensor<1x8x12x16xf32>
}
module attributes {transform.with_named_sequence} {
  transform.named_sequence @__transform_main(%root: !transform.any_op {transform.readonly}) {
    %a = transform.structured.match ops{["posenc.attention"]} in %root : (!transform.any_op) -> !transform.any_op
    %t, %l = transform.structured.tile_using_for %a tile_sizes [0, 3, 0, 0, 0, 0] : (!transform.any_op) -> (!transform.any_op, !transform.any_op)
    transform.yield
  }
}

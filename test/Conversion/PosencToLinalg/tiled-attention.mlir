// RUN: posenc-opt %s -convert-posenc-to-linalg="attention-tile-q=8 attention-tile-k=4" -canonicalize -split-input-file | FileCheck %s
// RUN: posenc-opt %s -convert-posenc-to-linalg="materialize-attention" -split-input-file | FileCheck %s --check-prefix=WHOLE
// RUN: not posenc-opt %s -convert-posenc-to-linalg="attention-tile-q=0" -split-input-file 2>&1 | FileCheck %s --check-prefix=BADTILE

// BADTILE: attention tile sizes must be positive, got attention-tile-q=0 attention-tile-k=256

// Attention is tiled through its TilingInterface and decomposed: tile-q = 8
// rows of (query, head) pairs, so each tile takes one batch, the G = 4
// query heads of one kv head and 2 queries. K and V of each kv head are
// first copied into contiguous blocks, which the query tiles share; a
// causal tile reads only the keys its queries see (min(i0 + 2 + Sk - Sq,
// Sk)), and its loop over key blocks of 4 stops there. Each block is one
// online-softmax step on 2-D tiles: scale·Q, S = Q·Kᵀ (8 rows: row-major,
// dot products along the head dim), the causal mask, row max, weights and
// P·V as a matmul, or as a contraction that skips masked weights when V
// holds a NaN or Inf. Nothing of size Sq x Sk exists.
// CHECK-DAG: #[[LIMIT:.+]] = affine_map<()[s0] -> (6, s0 + 4)>
// CHECK-LABEL: func @attention_gqa
// CHECK-NOT: tensor<{{.*}}4x6{{.*}}>
// CHECK: scf.for %[[B:.+]] = %c0 to %c2 step %c1
// CHECK: scf.for %[[H:.+]] = %c0 to %c8 step %c4
// CHECK: %[[QH:.+]] = tensor.extract_slice %arg0[%[[B]], 0, %[[H]], 0] [1, 4, 4, 16]
// CHECK: %[[KH:.+]] = tensor.extract_slice %arg1[%[[B]], 0, %{{.+}}, 0] [1, 6, 1, 16]
// CHECK: %[[KC:.+]] = linalg.copy ins(%[[KH]] : tensor<1x6x1x16xf32>)
// CHECK: linalg.copy
// CHECK: scf.for %[[I0:.+]] = %c0 to %c4 step %c2
// CHECK: affine.min #[[LIMIT]]()[%[[I0]]]
// CHECK: tensor.extract_slice %[[QH]][0, %[[I0]], 0, 0] [1, 2, 4, 16]
// CHECK: tensor.extract_slice %[[KC]][0, 0, 0, 0] [1, %{{.+}}, 1, 16]
// CHECK: scf.for %[[J0:.+]] = %c0 to %{{.+}} step %c4 iter_args
// CHECK: arith.mulf %in, %{{.+}} : f32
// CHECK: linalg.matmul indexing_maps = {{.*}} ins(%{{.+}}, %{{.+}} : tensor<8x16xf32>, tensor<?x16xf32>) outs(%{{.+}} : tensor<8x?xf32>)
// CHECK: arith.cmpi sgt
// CHECK: arith.maxnumf
// CHECK: math.exp
// CHECK: arith.addf %{{.+}}, %{{.+}} fastmath<reassoc>
// CHECK: linalg.matmul ins(%{{.+}}, %{{.+}} : tensor<8x?xf32>, tensor<?x16xf32>)
// CHECK: scf.if
// CHECK: } else {
// CHECK: math.fma
// CHECK: arith.bitcast
// CHECK: scf.yield
// CHECK: arith.divf
// CHECK: tensor.insert_slice %{{.+}} into %{{.+}}[0, %[[I0]], 0, 0] [1, 2, 4, 16]
// materialize-attention: no query or key tiles, one step per batch and kv
// head over all 4 queries (16 rows: key-major, Sᵀ = K·Qᵀ) and 6 keys.
// WHOLE-LABEL: func @attention_gqa
// WHOLE: scf.for %{{.+}} = %c0 to %c2
// WHOLE: scf.for %{{.+}} = %c0{{.*}} to %c8 step %c4
// WHOLE: linalg.matmul ins(%{{.+}}, %{{.+}} : tensor<?x16xf32>, tensor<16x16xf32>)
func.func @attention_gqa(%q: tensor<2x4x8x16xf32>, %k: tensor<2x6x2x16xf32>, %v: tensor<2x6x2x16xf32>) -> tensor<2x4x8x16xf32> {
  %init_o = tensor.empty() : tensor<2x4x8x16xf32>
  %o = posenc.attention %q, %k, %v causal outs(%init_o) : tensor<2x4x8x16xf32>, tensor<2x6x2x16xf32>, tensor<2x6x2x16xf32>, tensor<2x4x8x16xf32>
  return %o : tensor<2x4x8x16xf32>
}

// -----

// score_mod is inlined into the score step with the global indices: the
// tile's first (b, h, i) and key block's first j added to the local ones
// (G = 1: row r is query i0 + r of head h).
// CHECK-LABEL: func @score_mod
// CHECK: scf.for %[[B:.+]] = %c0 to %c3
// CHECK: scf.for %[[H:.+]] = %c0 to %c2
// CHECK: scf.for %[[I0:.+]] = %c0 to %c16 step %c8
// CHECK: scf.for %[[J0:.+]] = %c0 to %c16 step %c4
// CHECK: linalg.matmul
// CHECK: linalg.generic
// CHECK: %[[R:.+]] = linalg.index 0
// CHECK: %[[JJ:.+]] = linalg.index 1
// CHECK: %[[I:.+]] = arith.addi %[[R]], %[[I0]]
// CHECK: %[[J:.+]] = arith.addi %[[JJ]], %[[J0]]
// CHECK: %[[D:.+]] = arith.subi %[[J]], %[[I]]
// CHECK: %[[HD:.+]] = arith.addi %[[D]], %[[H]]
// CHECK: %[[HF:.+]] = arith.index_cast %[[HD]]
// CHECK: %[[F:.+]] = arith.sitofp %[[HF]]
// CHECK: arith.addf %{{.+}}, %[[F]]
func.func @score_mod(%q: tensor<3x16x2x8xf32>) -> tensor<3x16x2x8xf32> {
  %init_o = tensor.empty() : tensor<3x16x2x8xf32>
  %o = posenc.attention %q, %q, %q outs(%init_o) : tensor<3x16x2x8xf32>, tensor<3x16x2x8xf32>, tensor<3x16x2x8xf32>, tensor<3x16x2x8xf32> score_mod {
  ^bb0(%s: f32, %b: index, %h: index, %i: index, %j: index):
    %d = arith.subi %j, %i : index
    %hd = arith.addi %d, %h : index
    %di = arith.index_cast %hd : index to i64
    %df = arith.sitofp %di : i64 to f32
    %r = arith.addf %s, %df : f32
    posenc.yield %r : f32
  }
  return %o : tensor<3x16x2x8xf32>
}

// -----

// Decode (Sq = 1 <= tile-q / G): no query loop; the loop over key blocks
// is outermost, so each block covers every kv head of its keys (a
// contiguous stretch of the cache), and each step loops over the 2 kv
// heads; K and V are read in place (slices, no packed copy).
// CHECK-LABEL: func @decode
// CHECK-NOT: linalg.copy
// CHECK: scf.for %{{.+}} = %c0 to %c9 step %c4
// CHECK: scf.for %{{.+}} = %c0 to %c4 step %c2
// CHECK: linalg.matmul indexing_maps = {{.*}} ins(%{{.+}}, %{{.+}} : tensor<2x16xf32>, tensor<?x16xf32>)
// CHECK: linalg.matmul ins(%{{.+}}, %{{.+}} : tensor<2x?xf32>, tensor<?x16xf32>)
func.func @decode(%q: tensor<1x1x4x16xf32>, %k: tensor<1x9x2x16xf32>) -> tensor<1x1x4x16xf32> {
  %init_o = tensor.empty() : tensor<1x1x4x16xf32>
  %o = posenc.attention %q, %k, %k outs(%init_o) : tensor<1x1x4x16xf32>, tensor<1x9x2x16xf32>, tensor<1x9x2x16xf32>, tensor<1x1x4x16xf32>
  return %o : tensor<1x1x4x16xf32>
}

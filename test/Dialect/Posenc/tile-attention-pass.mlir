// RUN: posenc-opt %s --posenc-tile-attention="tile-sizes=0,4 key-tile=16" --canonicalize -split-input-file | FileCheck %s
// RUN: posenc-opt %s --posenc-tile-attention="key-tile=16 max-queries=1" -split-input-file | FileCheck %s --check-prefix=DECODE
// RUN: posenc-opt %s --posenc-tile-attention="tile-rows=8 key-tile=4" --canonicalize -split-input-file | FileCheck %s --check-prefix=ROWS
// RUN: posenc-opt %s --posenc-tile-attention="tile-rows=8 key-tile=4 parallel=true" --canonicalize -split-input-file | FileCheck %s --check-prefix=PAR
// RUN: posenc-opt %s --posenc-tile-attention="tile-rows=8 key-tile=16 max-queries=1 key-chunk=8" -split-input-file | FileCheck %s --check-prefix=SPLIT
// RUN: not posenc-opt %s --posenc-tile-attention="key-tile=0" -split-input-file 2>&1 | FileCheck %s --check-prefix=BAD

// BAD: posenc-tile-attention: tile-sizes must be at most 3 sizes >= 0 (batch, query heads, queries), key-tile > 0 and max-queries >= 0, tile-rows >= 0, key-chunk >= 0; got tile-sizes=[] key-tile=0 key-chunk=0 max-queries=0 tile-rows=0

// Heads tiled by a GQA group of 4 (one kv head per tile), then the loop
// over key blocks of 16 carrying (acc, max, sum), normalized after it.
// CHECK-LABEL: func @decode
// CHECK: scf.for %[[H:.+]] = %c0 to %c8 step %c4
// CHECK: %[[S:.+]]:3 = scf.for %[[J:.+]] = %c0 to %c37 step %c16 iter_args
// CHECK: posenc.online_attention {{.*}} causal diagonal(%{{.+}}) outs(
// CHECK: scf.yield
// CHECK: linalg.generic {{.*}} ins(%[[S]]#0, %[[S]]#2 :
// CHECK: arith.divf
// CHECK: tensor.insert_slice
// DECODE-LABEL: func @decode
// DECODE: scf.for
// DECODE: posenc.online_attention
// key-chunk=8 (split-K): the keys (37, below the causal limit) in chunks
// of 8, an scf.forall with a partial state per chunk (slot j0 / 8), each a
// loop over key blocks of 16 from its own state, the partial states
// merged after it (max over chunks, then sum and acc rescaled) — when
// there are more keys than one chunk holds; otherwise (else branch) the
// unsplit loop over key blocks.
// SPLIT-LABEL: func @decode
// SPLIT: %[[LONG:.+]] = arith.cmpi ugt, %{{.+}}, %c8 : index
// SPLIT: scf.if %[[LONG]] -> (tensor<1x1x8x8xf32>, tensor<1x1x8xf32>, tensor<1x1x8xf32>)
// SPLIT: tensor.empty(%[[N:.+]]) : tensor<?x1x1x8x8xf32>
// SPLIT: scf.forall (%[[J:.+]]) = (0) to (%{{.+}}) step (8) shared_outs(%{{.+}}, %{{.+}}, %{{.+}}) -> (tensor<?x1x1x8x8xf32>, tensor<?x1x1x8xf32>, tensor<?x1x1x8xf32>)
// SPLIT: scf.for %{{.+}} step %c16 iter_args
// SPLIT: posenc.online_attention
// SPLIT: scf.forall.in_parallel
// SPLIT: arith.maxnumf
// SPLIT: math.exp
// SPLIT: } else {
// SPLIT-NOT: scf.forall
// SPLIT: scf.for %{{.+}} step %c16 iter_args
// SPLIT: posenc.online_attention
// SPLIT: arith.divf
func.func @decode(%q: tensor<1x1x8x16xf32>, %k: tensor<1x37x2x16xf32>, %v: tensor<1x37x2x8xf32>) -> tensor<1x1x8x8xf32> {
  %init_o = tensor.empty() : tensor<1x1x8x8xf32>
  %o = posenc.attention %q, %k, %v causal outs(%init_o) : tensor<1x1x8x16xf32>, tensor<1x37x2x16xf32>, tensor<1x37x2x8xf32>, tensor<1x1x8x8xf32>
  return %o : tensor<1x1x8x8xf32>
}

// -----

// With max-queries=1 a prefill (Sq = 8) is left to convert-posenc-to-linalg.
// tile-rows=8: tiles of one kv head (G = 4 query heads) and 8 / 4 = 2
// queries; each tile reads only the keys its queries can see (causal,
// bottom-right: query i sees keys j <= i + 29), and its key loop stops
// there.
// ROWS-DAG: #[[LIMIT:.+]] = affine_map<()[s0] -> (37, s0 + 31)>
// ROWS-LABEL: func @negative_prefill
// ROWS: scf.for %[[H:.+]] = %c0 to %c8 step %c4
// ROWS: scf.for %[[I:.+]] = %c0 to %c8 step %c2
// ROWS: affine.min #[[LIMIT]]()[%[[I]]]
// ROWS: scf.for %{{.+}} = %c0 to %{{.+}} step %c4 iter_args
// ROWS: posenc.online_attention {{.*}} : tensor<1x2x4x16xf32>, tensor<1x?x1x16xf32>
// parallel=true: the kv-head tiles form an scf.forall (each inserts its
// heads of the result in parallel), the query tiles and key blocks stay
// sequential inside.
// PAR-LABEL: func @negative_prefill
// PAR: scf.forall (%[[H:.+]]) = (0) to (8) step (4) shared_outs(%[[OUT:.+]] = %{{.+}})
// PAR: scf.for %{{.+}} = %c0 to %c8 step %c2
// PAR: scf.for %{{.+}} = %c0 to %{{.+}} step %c4 iter_args
// PAR: posenc.online_attention
// PAR: scf.forall.in_parallel
// PAR: tensor.parallel_insert_slice %{{.+}} into %[[OUT]][0, 0, %[[H]], 0] [1, 8, 4, 16]
// DECODE-LABEL: func @negative_prefill
// DECODE-NOT: online_attention
// DECODE: posenc.attention
func.func @negative_prefill(%q: tensor<1x8x8x16xf32>, %k: tensor<1x37x2x16xf32>) -> tensor<1x8x8x16xf32> {
  %init_o = tensor.empty() : tensor<1x8x8x16xf32>
  %o = posenc.attention %q, %k, %k causal outs(%init_o) : tensor<1x8x8x16xf32>, tensor<1x37x2x16xf32>, tensor<1x37x2x16xf32>, tensor<1x8x8x16xf32>
  return %o : tensor<1x8x8x16xf32>
}

// -----

// Dynamic head counts: the GQA group is unknown, the op stays for the
// lowering to report.
// CHECK-LABEL: func @negative_dynamic_heads
// CHECK-NOT: online_attention
// CHECK: posenc.attention
func.func @negative_dynamic_heads(%q: tensor<1x1x?x16xf32>, %k: tensor<1x37x?x16xf32>) -> tensor<1x1x?x16xf32> {
  %init_o_c2 = arith.constant 2 : index
  %init_o_d2 = tensor.dim %q, %init_o_c2 : tensor<1x1x?x16xf32>
  %init_o = tensor.empty(%init_o_d2) : tensor<1x1x?x16xf32>
  %o = posenc.attention %q, %k, %k causal outs(%init_o) : tensor<1x1x?x16xf32>, tensor<1x37x?x16xf32>, tensor<1x37x?x16xf32>, tensor<1x1x?x16xf32>
  return %o : tensor<1x1x?x16xf32>
}

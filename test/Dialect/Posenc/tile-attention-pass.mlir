// RUN: posenc-opt %s --posenc-tile-attention="tile-sizes=0,4 key-tile=16" --canonicalize -split-input-file | FileCheck %s
// RUN: posenc-opt %s --posenc-tile-attention="key-tile=16 max-queries=1" -split-input-file | FileCheck %s --check-prefix=DECODE
// RUN: posenc-opt %s --posenc-tile-attention="tile-rows=8 key-tile=4" --canonicalize -split-input-file | FileCheck %s --check-prefix=ROWS
// RUN: posenc-opt %s --posenc-tile-attention="tile-rows=8 key-tile=4 parallel=true" --canonicalize -split-input-file | FileCheck %s --check-prefix=PAR
// RUN: posenc-opt %s --posenc-tile-attention="tile-rows=8 key-tile=16 max-queries=1 key-chunk=8" -split-input-file | FileCheck %s --check-prefix=SPLIT
// RUN: posenc-opt %s --posenc-tile-attention="tile-rows=8 key-tile=16 max-queries=1" --canonicalize -split-input-file | FileCheck %s --check-prefix=FUSE
// RUN: posenc-opt %s --posenc-tile-attention="tile-rows=8 key-tile=16 max-queries=1 key-chunk=32" --canonicalize -split-input-file | FileCheck %s --check-prefix=FUSESPLIT
// RUN: posenc-opt %s --posenc-tile-attention="tile-rows=8 key-tile=16 max-queries=1 key-chunk=32" -split-input-file 2>&1 >/dev/null | FileCheck %s --check-prefix=QUIET --allow-empty
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

// -----

// Decode over a compressed cache (posenc-compress-kv's rotary form): keys
// rope(c·B_k) and values c·B_v from the latent c [n, 8]. Their producers
// are fused into the key loop: each block of 16 keys multiplies its 16
// latent rows, rotates them at its own positions and feeds the step; no
// [n, 32] product is left outside the loop.
// FUSE-LABEL: func @latent_decode
// FUSE-NOT: linalg.matmul
// FUSE-NOT: posenc.rope
// FUSE: scf.for %[[J:.+]] = %c0 to %{{.+}} step %c16 iter_args
// FUSE: %[[TK:.+]] = affine.min
// FUSE: %[[C:.+]] = tensor.extract_slice %arg1[%[[J]], 0] [%[[TK]], 8] [1, 1]
// FUSE: %[[E:.+]] = tensor.empty(%[[TK]]) : tensor<?x32xf32>
// FUSE: %[[Z:.+]] = linalg.fill ins(%{{.+}} : f32) outs(%[[E]] : tensor<?x32xf32>)
// FUSE: %[[KB:.+]] = linalg.matmul ins(%[[C]], %arg2 : tensor<?x8xf32>, tensor<8x32xf32>) outs(%[[Z]] :
// FUSE: %[[KE:.+]] = tensor.expand_shape %[[KB]] {{\[}}[0, 1], [2, 3]] output_shape [1, %[[TK]], 2, 16]
// FUSE: %[[P:.+]] = linalg.generic
// FUSE: linalg.index 0
// FUSE: affine.apply #{{.+}}(%[[J]])
// FUSE: %[[KR:.+]] = posenc.rope %[[KE]], %[[P]] layout half : tensor<1x?x2x16xf32>, tensor<?xi64>
// FUSE: %[[VB:.+]] = linalg.matmul ins(%{{.+}}, %arg3 :
// FUSE: %[[VE:.+]] = tensor.expand_shape %[[VB]]
// FUSE: posenc.online_attention %arg0, %[[KR]], %[[VE]] causal
// FUSE: scf.yield
// Split-K: the chunks' loops and the short cache's loop each rebuild
// their own key blocks.
// FUSESPLIT-LABEL: func @latent_decode
// FUSESPLIT-NOT: linalg.matmul
// FUSESPLIT: scf.if
// FUSESPLIT: scf.forall
// FUSESPLIT: scf.for
// FUSESPLIT: linalg.matmul
// FUSESPLIT: posenc.rope
// FUSESPLIT: posenc.online_attention
// FUSESPLIT: } else {
// FUSESPLIT: scf.for
// FUSESPLIT: linalg.matmul
// FUSESPLIT: posenc.rope
// FUSESPLIT: posenc.online_attention
func.func @latent_decode(%q: tensor<1x1x4x16xf32>, %c: tensor<?x8xf32>, %bk: tensor<8x32xf32>, %bv: tensor<8x32xf32>) -> tensor<1x1x4x16xf32> {
  %c0 = arith.constant 0 : index
  %zero = arith.constant 0.0 : f32
  %n = tensor.dim %c, %c0 : tensor<?x8xf32>
  %e = tensor.empty(%n) : tensor<?x32xf32>
  %z = linalg.fill ins(%zero : f32) outs(%e : tensor<?x32xf32>) -> tensor<?x32xf32>
  %kf = linalg.matmul ins(%c, %bk : tensor<?x8xf32>, tensor<8x32xf32>) outs(%z : tensor<?x32xf32>) -> tensor<?x32xf32>
  %vf = linalg.matmul ins(%c, %bv : tensor<?x8xf32>, tensor<8x32xf32>) outs(%z : tensor<?x32xf32>) -> tensor<?x32xf32>
  %k = tensor.expand_shape %kf [[0, 1], [2, 3]] output_shape [1, %n, 2, 16] : tensor<?x32xf32> into tensor<1x?x2x16xf32>
  %v = tensor.expand_shape %vf [[0, 1], [2, 3]] output_shape [1, %n, 2, 16] : tensor<?x32xf32> into tensor<1x?x2x16xf32>
  %pe = tensor.empty(%n) : tensor<?xi64>
  %pos = linalg.generic {indexing_maps = [affine_map<(s) -> (s)>], iterator_types = ["parallel"]} outs(%pe : tensor<?xi64>) {
  ^bb0(%o: i64):
    %i = linalg.index 0 : index
    %r = arith.index_cast %i : index to i64
    linalg.yield %r : i64
  } -> tensor<?xi64>
  %kr = posenc.rope %k, %pos layout half : tensor<1x?x2x16xf32>, tensor<?xi64>
  %init = tensor.empty() : tensor<1x1x4x16xf32>
  %o = posenc.attention %q, %kr, %v causal outs(%init) : tensor<1x1x4x16xf32>, tensor<1x?x2x16xf32>, tensor<1x?x2x16xf32>, tensor<1x1x4x16xf32>
  return %o : tensor<1x1x4x16xf32>
}

// -----

// Dynamic NTK reads the largest position of the whole run: its rope stays
// whole (the values' product is still fused), and no error is reported.
// FUSE-LABEL: func @negative_dynamic_ntk
// FUSE: %[[KR:.+]] = posenc.rope {{.*}}scaling = #posenc.rope_scaling<dynamic
// FUSE: scf.for
// FUSE-NOT: posenc.rope
// FUSE: tensor.extract_slice %[[KR]]
// FUSE: linalg.matmul
// FUSE: posenc.online_attention
func.func @negative_dynamic_ntk(%q: tensor<1x1x4x16xf32>, %c: tensor<?x8xf32>, %bk: tensor<8x32xf32>, %bv: tensor<8x32xf32>, %pos: tensor<?xi64>) -> tensor<1x1x4x16xf32> {
  %c0 = arith.constant 0 : index
  %zero = arith.constant 0.0 : f32
  %n = tensor.dim %c, %c0 : tensor<?x8xf32>
  %e = tensor.empty(%n) : tensor<?x32xf32>
  %z = linalg.fill ins(%zero : f32) outs(%e : tensor<?x32xf32>) -> tensor<?x32xf32>
  %kf = linalg.matmul ins(%c, %bk : tensor<?x8xf32>, tensor<8x32xf32>) outs(%z : tensor<?x32xf32>) -> tensor<?x32xf32>
  %vf = linalg.matmul ins(%c, %bv : tensor<?x8xf32>, tensor<8x32xf32>) outs(%z : tensor<?x32xf32>) -> tensor<?x32xf32>
  %k = tensor.expand_shape %kf [[0, 1], [2, 3]] output_shape [1, %n, 2, 16] : tensor<?x32xf32> into tensor<1x?x2x16xf32>
  %v = tensor.expand_shape %vf [[0, 1], [2, 3]] output_shape [1, %n, 2, 16] : tensor<?x32xf32> into tensor<1x?x2x16xf32>
  %kr = posenc.rope %k, %pos layout half {scaling = #posenc.rope_scaling<dynamic, factor = 2.0, original = 16>} : tensor<1x?x2x16xf32>, tensor<?xi64>
  %init = tensor.empty() : tensor<1x1x4x16xf32>
  %o = posenc.attention %q, %kr, %v causal outs(%init) : tensor<1x1x4x16xf32>, tensor<1x?x2x16xf32>, tensor<1x?x2x16xf32>, tensor<1x1x4x16xf32>
  return %o : tensor<1x1x4x16xf32>
}

// -----

// Keys that are also returned would be computed twice: left whole.
// FUSE-LABEL: func @negative_keys_also_returned
// FUSE: %[[KR:.+]] = posenc.rope
// FUSE: scf.for
// FUSE-NOT: posenc.rope
// FUSE: posenc.online_attention
func.func @negative_keys_also_returned(%q: tensor<1x1x4x16xf32>, %k: tensor<1x?x2x16xf32>, %pos: tensor<?xi64>) -> (tensor<1x1x4x16xf32>, tensor<1x?x2x16xf32>) {
  %kr = posenc.rope %k, %pos layout half : tensor<1x?x2x16xf32>, tensor<?xi64>
  %init = tensor.empty() : tensor<1x1x4x16xf32>
  %o = posenc.attention %q, %kr, %k causal outs(%init) : tensor<1x1x4x16xf32>, tensor<1x?x2x16xf32>, tensor<1x?x2x16xf32>, tensor<1x1x4x16xf32>
  return %o, %kr : tensor<1x1x4x16xf32>, tensor<1x?x2x16xf32>
}

// -----

// Decoupled partial rotary: keys are [cached rotated dims | non-rotary
// dims rebuilt from the latent], joined along the head dim. Each key block
// joins a block of the cache with a block rebuilt inside the loop.
// FUSE-LABEL: func @concat_keys
// FUSE-NOT: linalg.matmul
// FUSE: scf.for %[[J:.+]] = %c0 to %{{.+}} step %c16 iter_args
// FUSE: %[[TK:.+]] = affine.min
// FUSE: %[[ROT:.+]] = tensor.extract_slice %arg1[0, %[[J]], 0, 0] [1, %[[TK]], 2, 4]
// FUSE: %[[C:.+]] = tensor.extract_slice %arg2[%[[J]], 0] [%[[TK]], 8]
// FUSE: %[[NOPE:.+]] = linalg.matmul ins(%[[C]], %arg3
// FUSE: %[[NE:.+]] = tensor.expand_shape %[[NOPE]]
// FUSE: %[[K:.+]] = tensor.concat dim(3) %[[ROT]], %[[NE]] : (tensor<1x?x2x4xf32>, tensor<1x?x2x12xf32>) -> tensor<1x?x2x16xf32>
// FUSE: posenc.online_attention %arg0, %[[K]]
func.func @concat_keys(%q: tensor<1x1x4x16xf32>, %krot: tensor<1x?x2x4xf32>, %c: tensor<?x8xf32>, %bk: tensor<8x24xf32>) -> tensor<1x1x4x16xf32> {
  %c0 = arith.constant 0 : index
  %zero = arith.constant 0.0 : f32
  %n = tensor.dim %c, %c0 : tensor<?x8xf32>
  %e = tensor.empty(%n) : tensor<?x24xf32>
  %z = linalg.fill ins(%zero : f32) outs(%e : tensor<?x24xf32>) -> tensor<?x24xf32>
  %kf = linalg.matmul ins(%c, %bk : tensor<?x8xf32>, tensor<8x24xf32>) outs(%z : tensor<?x24xf32>) -> tensor<?x24xf32>
  %knope = tensor.expand_shape %kf [[0, 1], [2, 3]] output_shape [1, %n, 2, 12] : tensor<?x24xf32> into tensor<1x?x2x12xf32>
  %k = tensor.concat dim(3) %krot, %knope : (tensor<1x?x2x4xf32>, tensor<1x?x2x12xf32>) -> tensor<1x?x2x16xf32>
  %init = tensor.empty() : tensor<1x1x4x16xf32>
  %o = posenc.attention %q, %k, %k causal outs(%init) : tensor<1x1x4x16xf32>, tensor<1x?x2x16xf32>, tensor<1x?x2x16xf32>, tensor<1x1x4x16xf32>
  return %o : tensor<1x1x4x16xf32>
}

// -----

// Keys that are part of a rope's head dim: the rope cannot give that
// block (pairs span its head dim), so it stays whole, and no error is
// printed for the valid input.
// QUIET-NOT: error
// FUSE-LABEL: func @rope_head_dim_slice
// FUSE: %[[R:.+]] = posenc.rope
// FUSE: scf.for
// FUSE-NOT: posenc.rope
// FUSE: posenc.online_attention
func.func @rope_head_dim_slice(%q: tensor<1x1x4x12xf32>, %x: tensor<1x?x2x16xf32>, %v: tensor<1x?x2x12xf32>, %pos: tensor<?xi32>) -> tensor<1x1x4x12xf32> {
  %c1 = arith.constant 1 : index
  %n = tensor.dim %x, %c1 : tensor<1x?x2x16xf32>
  %r = posenc.rope %x, %pos layout half {rotary_dim = 8 : i64} : tensor<1x?x2x16xf32>, tensor<?xi32>
  %k = tensor.extract_slice %r[0, 0, 0, 0] [1, %n, 2, 12] [1, 1, 1, 1] : tensor<1x?x2x16xf32> to tensor<1x?x2x12xf32>
  %init = tensor.empty() : tensor<1x1x4x12xf32>
  %o = posenc.attention %q, %k, %v causal outs(%init) : tensor<1x1x4x12xf32>, tensor<1x?x2x12xf32>, tensor<1x?x2x12xf32>, tensor<1x1x4x12xf32>
  return %o : tensor<1x1x4x12xf32>
}

// -----

// K = V, and a latent that both the keys and the values are rebuilt from:
// each block computes the latent rows once, and rotates once.
// FUSE-LABEL: func @shared_latent
// FUSE: scf.for
// FUSE: %[[LAT:.+]] = linalg.matmul ins(%{{.+}}, %arg2 : tensor<?x6xf32>, tensor<6x3xf32>)
// FUSE-NOT: tensor<6x3xf32>
// FUSE: linalg.matmul ins(%[[LAT]], %arg3 :
// FUSE-NOT: tensor<6x3xf32>
// FUSE: linalg.matmul ins(%[[LAT]], %arg4 :
// FUSE-NOT: tensor<6x3xf32>
// FUSE: posenc.online_attention
func.func @shared_latent(%q: tensor<1x1x4x16xf32>, %x: tensor<?x6xf32>, %a: tensor<6x3xf32>, %bk: tensor<3x32xf32>, %bv: tensor<3x32xf32>) -> tensor<1x1x4x16xf32> {
  %c0 = arith.constant 0 : index
  %zero = arith.constant 0.0 : f32
  %n = tensor.dim %x, %c0 : tensor<?x6xf32>
  %e3 = tensor.empty(%n) : tensor<?x3xf32>
  %z3 = linalg.fill ins(%zero : f32) outs(%e3 : tensor<?x3xf32>) -> tensor<?x3xf32>
  %c = linalg.matmul ins(%x, %a : tensor<?x6xf32>, tensor<6x3xf32>) outs(%z3 : tensor<?x3xf32>) -> tensor<?x3xf32>
  %e = tensor.empty(%n) : tensor<?x32xf32>
  %z = linalg.fill ins(%zero : f32) outs(%e : tensor<?x32xf32>) -> tensor<?x32xf32>
  %kf = linalg.matmul ins(%c, %bk : tensor<?x3xf32>, tensor<3x32xf32>) outs(%z : tensor<?x32xf32>) -> tensor<?x32xf32>
  %vf = linalg.matmul ins(%c, %bv : tensor<?x3xf32>, tensor<3x32xf32>) outs(%z : tensor<?x32xf32>) -> tensor<?x32xf32>
  %k = tensor.expand_shape %kf [[0, 1], [2, 3]] output_shape [1, %n, 2, 16] : tensor<?x32xf32> into tensor<1x?x2x16xf32>
  %v = tensor.expand_shape %vf [[0, 1], [2, 3]] output_shape [1, %n, 2, 16] : tensor<?x32xf32> into tensor<1x?x2x16xf32>
  %init = tensor.empty() : tensor<1x1x4x16xf32>
  %o = posenc.attention %q, %k, %v causal outs(%init) : tensor<1x1x4x16xf32>, tensor<1x?x2x16xf32>, tensor<1x?x2x16xf32>, tensor<1x1x4x16xf32>
  return %o : tensor<1x1x4x16xf32>
}

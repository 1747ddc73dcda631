// RUN: posenc-opt %s -convert-posenc-to-linalg="attention-tile-q=8 attention-tile-k=4" -canonicalize -split-input-file | FileCheck %s
// RUN: posenc-opt %s -convert-posenc-to-linalg="materialize-attention" -split-input-file | FileCheck %s --check-prefix=WHOLE
// RUN: not posenc-opt %s -convert-posenc-to-linalg="attention-tile-q=0" -split-input-file 2>&1 | FileCheck %s --check-prefix=BADTILE

// BADTILE: attention tile sizes must be positive, got attention-tile-q=0 attention-tile-k=64

// tile-q = 8 rows of (query, head) pairs: 2 queries of the 4 heads of a
// kv head per query tile. Loops over batch, kv head and query tile. Per kv head, K is packed once
// as Kᵀ blocks [ceil(6/4) = 2, 16, 4] and V as [2, 4, 16], zero past key 6;
// the 4 query heads of a kv head share them: the tq·4 (query, head) pairs
// are the rows of 2-D tiles, so Q·Kᵀ and P·V are linalg.matmul. The key
// loop of a causal tile ends at min(i0 + tq + Sk - Sq, Sk), so tiles above
// the diagonal are never visited. Nothing of size Sq x Sk exists.
// CHECK-LABEL: func @attention_gqa
// CHECK-NOT: tensor<{{.*}}4x6{{.*}}>
// CHECK: scf.for %[[B:.+]] = %c0 to %c2 step %c1
// CHECK: scf.for %[[G:.+]] = %c0 to %c2 step %c1
// CHECK: %[[KT:.+]] = linalg.generic {{.*}} outs(%{{.+}} : tensor<2x16x4xf32>)
// CHECK: tensor.extract %arg1[%[[B]], %{{.+}}, %[[G]], %{{.+}}]
// CHECK: %[[VP:.+]] = linalg.generic {{.*}} outs(%{{.+}} : tensor<2x4x16xf32>)
// CHECK: tensor.extract %arg2[%[[B]], %{{.+}}, %[[G]], %{{.+}}]
// CHECK: math.absf
// CHECK: %[[FINITE:.+]] = tensor.extract %{{.+}}[] : tensor<i1>
// CHECK: scf.for %[[I0:.+]] = %c0 to %c4 step %c2
// CHECK: %[[TQ:.+]] = arith.minsi
// CHECK: %[[H0:.+]] = arith.muli %[[G]], %c4
// CHECK: tensor.extract_slice %arg0[%[[B]], %[[I0]], %[[H0]], 0] [1, %[[TQ]], 4, 16]
// CHECK: arith.mulf %in, %{{.+}} : f32
// CHECK: %[[QP:.+]] = tensor.collapse_shape %{{.+}} {{\[}}[0, 1], [2]] : tensor<?x4x16xf32> into tensor<?x16xf32>
// CHECK: %[[LAST:.+]] = arith.addi %[[I0]], %[[TQ]]
// CHECK: %[[LIM:.+]] = arith.addi %[[LAST]], %c2
// CHECK: %[[MIN:.+]] = arith.minsi %[[LIM]], %c6
// CHECK: %[[END:.+]] = arith.maxsi %[[MIN]], %c0
// CHECK: scf.for %[[J0:.+]] = %c0 to %[[END]] step %c4 iter_args
// CHECK: %[[T:.+]] = arith.divui %[[J0]], %c4
// CHECK: %[[KTT:.+]] = tensor.extract_slice %[[KT]][%[[T]], 0, 0] [1, 16, %{{.+}}]
// CHECK: %[[VT:.+]] = tensor.extract_slice %[[VP]][%[[T]], 0, 0] [1, %{{.+}}, 16]
// CHECK: linalg.matmul ins(%[[QP]], %[[KTT]] : tensor<?x16xf32>, tensor<16x?xf32>)
// CHECK: arith.maxnumf
// CHECK: math.exp
// CHECK: arith.addf %{{.+}}, %{{.+}} fastmath<reassoc>
// CHECK: scf.if %[[FINITE]] -> (tensor<?x16xf32>)
// CHECK: linalg.matmul ins(%{{.+}}, %[[VT]] : tensor<?x?xf32>, tensor<?x16xf32>)
// CHECK: } else {
// CHECK: linalg.generic {{.*}} ins(%{{.+}}, %[[VT]] : tensor<?x?xf32>, tensor<?x16xf32>)
// CHECK: math.fma
// CHECK: arith.bitcast
// CHECK: scf.yield
// CHECK: %[[OUT:.+]] = tensor.extract_slice %{{.+}}[%[[B]], %[[I0]], %[[H0]], 0] [1, %[[TQ]], 4, 16]
// CHECK: arith.divf
// CHECK: tensor.insert_slice %{{.+}} into %{{.+}}[%[[B]], %[[I0]], %[[H0]], 0] [1, %[[TQ]], 4, 16]
// CHECK-NOT: tensor<{{.*}}4x6{{.*}}>
// WHOLE-LABEL: func @attention_gqa
// WHOLE: tensor<2x8x4x6xf32>
func.func @attention_gqa(%q: tensor<2x4x8x16xf32>, %k: tensor<2x6x2x16xf32>, %v: tensor<2x6x2x16xf32>) -> tensor<2x4x8x16xf32> {
  %init_o = tensor.empty() : tensor<2x4x8x16xf32>
  %o = posenc.attention %q, %k, %v causal outs(%init_o) : tensor<2x4x8x16xf32>, tensor<2x6x2x16xf32>, tensor<2x6x2x16xf32>, tensor<2x4x8x16xf32>
  return %o : tensor<2x4x8x16xf32>
}

// -----

// score_mod is inlined into the score generic with the global indices
// (b, g·G + r mod G, i0 + r div G, j0 + jj) of row r; with G = 1 the head
// is g itself and the query i0 + r. The scale is folded into Q's tile.
// CHECK-LABEL: func @score_mod
// CHECK: scf.for %{{.+}} = %c0 to %c3
// CHECK: scf.for %[[G:.+]] = %c0 to %c2
// CHECK: scf.for %[[I0:.+]] = %c0 to %c16 step %c8
// CHECK: arith.mulf %{{.+}}, %cst
// CHECK: scf.for %[[J0:.+]] = %c0 to %c16 step %c4
// CHECK: linalg.matmul
// CHECK: linalg.generic
// CHECK: ^bb0(%[[S:[a-z0-9_]+]]: f32):
// CHECK: %[[R:.+]] = linalg.index 0
// CHECK: %[[I:.+]] = arith.addi %[[I0]], %[[R]]
// CHECK: %[[JJ:.+]] = linalg.index 1
// CHECK: %[[J:.+]] = arith.addi %[[J0]], %[[JJ]]
// CHECK: %[[D:.+]] = arith.subi %[[J]], %[[I]]
// CHECK: %[[HD:.+]] = arith.addi %[[D]], %[[G]]
// CHECK: %[[HF:.+]] = arith.index_cast %[[HD]]
// CHECK: %[[F:.+]] = arith.sitofp %[[HF]]
// CHECK: %[[RES:.+]] = arith.addf %[[S]], %[[F]]
// CHECK: linalg.yield %[[RES]]
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

// Decode (Sq = 1 <= tile-q: a single query tile): each key tile of K and V
// is packed inside the key loop, where it is used, instead of whole heads
// before the query loop.
// CHECK-LABEL: func @decode
// CHECK: scf.for %[[G:.+]] = %c0 to %c2
// CHECK-NOT: tensor<{{[0-9]+}}x16x4xf32>
// CHECK: scf.for %[[J0:.+]] = %c0 to %c9 step %c4
// CHECK: %[[T:.+]] = arith.divui %[[J0]], %c4
// CHECK: linalg.generic {{.*}} outs(%{{.+}} : tensor<1x16x4xf32>)
// CHECK: arith.muli %[[T]], %c4
// CHECK: linalg.generic {{.*}} outs(%{{.+}} : tensor<1x4x16xf32>)
// CHECK: linalg.matmul
// CHECK: linalg.matmul
func.func @decode(%q: tensor<1x1x4x16xf32>, %k: tensor<1x9x2x16xf32>) -> tensor<1x1x4x16xf32> {
  %init_o = tensor.empty() : tensor<1x1x4x16xf32>
  %o = posenc.attention %q, %k, %k outs(%init_o) : tensor<1x1x4x16xf32>, tensor<1x9x2x16xf32>, tensor<1x9x2x16xf32>, tensor<1x1x4x16xf32>
  return %o : tensor<1x1x4x16xf32>
}

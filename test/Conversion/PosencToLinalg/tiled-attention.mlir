// RUN: posenc-opt %s -convert-posenc-to-linalg="attention-tile-q=2 attention-tile-k=4" -canonicalize -split-input-file | FileCheck %s
// RUN: posenc-opt %s -convert-posenc-to-linalg="materialize-attention" -split-input-file | FileCheck %s --check-prefix=WHOLE
// RUN: not posenc-opt %s -convert-posenc-to-linalg="attention-tile-q=0" -split-input-file 2>&1 | FileCheck %s --check-prefix=BADTILE

// BADTILE: attention tile sizes must be positive, got attention-tile-q=0 attention-tile-k=64

// Loops over batch, kv head and query tile; the 4 query heads of a kv head
// share one K/V tile; the key loop of a causal tile ends at
// min(i0 + tq + Sk - Sq, Sk), so tiles above the diagonal are never
// visited. Nothing of size Sq x Sk exists: scores are [tq, G, tk] tiles.
// CHECK-LABEL: func @attention_gqa
// CHECK-NOT: tensor<{{.*}}4x6{{.*}}>
// CHECK: scf.for %[[B:.+]] = %c0 to %c2 step %c1
// CHECK: scf.for %[[G:.+]] = %c0 to %c2 step %c1
// CHECK: scf.for %[[I0:.+]] = %c0 to %c4 step %c2
// CHECK: %[[TQ:.+]] = arith.minsi
// CHECK: %[[H0:.+]] = arith.muli %[[G]], %c4
// CHECK: tensor.extract_slice %arg0[%[[B]], %[[I0]], %[[H0]], 0] [1, %[[TQ]], 4, 16]
// CHECK: %[[LAST:.+]] = arith.addi %[[I0]], %[[TQ]]
// CHECK: %[[LIM:.+]] = arith.addi %[[LAST]], %c2
// CHECK: %[[MIN:.+]] = arith.minsi %[[LIM]], %c6
// CHECK: %[[END:.+]] = arith.maxsi %[[MIN]], %c0
// CHECK: scf.for %[[J0:.+]] = %c0 to %[[END]] step %c4 iter_args
// CHECK: tensor.extract_slice %arg1[%[[B]], %[[J0]], %[[G]], 0]
// CHECK: tensor.extract_slice %arg2[%[[B]], %[[J0]], %[[G]], 0]
// CHECK: linalg.generic {{.*}} iterator_types = ["parallel", "parallel", "parallel", "reduction"]
// CHECK: } -> tensor<?x4x?xf32>
// CHECK: math.exp
// CHECK: scf.yield
// CHECK: arith.divf
// CHECK: tensor.insert_slice {{.*}} into %{{.+}}[%[[B]], %[[I0]], %[[H0]], 0] [1, %[[TQ]], 4, 16]
// CHECK-NOT: tensor<{{.*}}4x6{{.*}}>
// WHOLE-LABEL: func @attention_gqa
// WHOLE: tensor<2x8x4x6xf32>
func.func @attention_gqa(%q: tensor<2x4x8x16xf32>, %k: tensor<2x6x2x16xf32>, %v: tensor<2x6x2x16xf32>) -> tensor<2x4x8x16xf32> {
  %o = posenc.attention %q, %k, %v causal : tensor<2x4x8x16xf32>, tensor<2x6x2x16xf32>, tensor<2x6x2x16xf32> -> tensor<2x4x8x16xf32>
  return %o : tensor<2x4x8x16xf32>
}

// -----

// score_mod is inlined into the score generic with the global indices
// (b, g·G + hh, i0 + t, j0 + jj); with G = 1 the head is g itself.
// CHECK-LABEL: func @score_mod
// CHECK: scf.for %{{.+}} = %c0 to %c3
// CHECK: scf.for %[[G:.+]] = %c0 to %c2
// CHECK: scf.for %[[I0:.+]] = %c0 to %c8 step %c2
// CHECK: scf.for %[[J0:.+]] = %c0 to %c8 step %c4
// CHECK: linalg.generic
// CHECK: linalg.generic
// CHECK: ^bb0(%[[S:[a-z0-9_]+]]: f32, %{{[a-z0-9_]+}}: f32):
// CHECK: %[[SC:.+]] = arith.mulf %[[S]]
// CHECK: %[[T:.+]] = linalg.index 0
// CHECK: %[[I:.+]] = arith.addi %[[I0]], %[[T]]
// CHECK: %[[JJ:.+]] = linalg.index 2
// CHECK: %[[J:.+]] = arith.addi %[[J0]], %[[JJ]]
// CHECK: %[[D:.+]] = arith.subi %[[J]], %[[I]]
// CHECK: %[[HD:.+]] = arith.addi %[[D]], %[[G]]
// CHECK: %[[HF:.+]] = arith.index_cast %[[HD]]
// CHECK: %[[F:.+]] = arith.sitofp %[[HF]]
// CHECK: %[[R:.+]] = arith.addf %[[SC]], %[[F]]
// CHECK: linalg.yield %[[R]]
func.func @score_mod(%q: tensor<3x8x2x8xf32>) -> tensor<3x8x2x8xf32> {
  %o = posenc.attention %q, %q, %q : tensor<3x8x2x8xf32>, tensor<3x8x2x8xf32>, tensor<3x8x2x8xf32> -> tensor<3x8x2x8xf32> score_mod {
  ^bb0(%s: f32, %b: index, %h: index, %i: index, %j: index):
    %d = arith.subi %j, %i : index
    %hd = arith.addi %d, %h : index
    %di = arith.index_cast %hd : index to i64
    %df = arith.sitofp %di : i64 to f32
    %r = arith.addf %s, %df : f32
    posenc.yield %r : f32
  }
  return %o : tensor<3x8x2x8xf32>
}

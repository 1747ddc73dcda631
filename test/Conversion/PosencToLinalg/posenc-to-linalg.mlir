// RUN: posenc-opt %s -convert-posenc-to-linalg -split-input-file | FileCheck %s

// Frequencies are f64 constants; angles are formed and evaluated in f64
// once per (position, pair); x is viewed as pairs [B, S, H, 2, R/2] and
// rotated in one generic whose operands are all affine (partner side
// 1 - k), reading per-position cos and signed-sin tables.
// CHECK-DAG: #[[ID5:.+]] = affine_map<(d0, d1, d2, d3, d4) -> (d0, d1, d2, d3, d4)>
// CHECK-DAG: #[[PARTNER:.+]] = affine_map<(d0, d1, d2, d3, d4) -> (d0, d1, d2, -d3 + 1, d4)>
// CHECK-DAG: #[[TABLE:.+]] = affine_map<(d0, d1, d2, d3, d4) -> (d1, d3, d4)>
// CHECK-LABEL: func @rope_half
// CHECK: %[[W:.+]] = arith.constant dense<[1.000000e+00, 1.000000e-01, {{.+}}, 1.000000e-03]> : tensor<4xf64>
// CHECK: %[[T:.+]]:2 = linalg.generic
// CHECK-SAME: ins(%{{.+}}, %[[W]] : tensor<5xi32>, tensor<4xf64>)
// CHECK: arith.sitofp %{{.+}} : i64 to f64
// CHECK: math.cos %{{.+}} : f64
// CHECK: math.sin %{{.+}} : f64
// CHECK: -> (tensor<5x4xf32>, tensor<5x4xf32>)
// CHECK: %[[X:.+]] = tensor.expand_shape %arg0 {{\[}}[0], [1], [2], [3, 4]] output_shape [2, 5, 3, 2, 4]
// CHECK: %[[S:.+]]:2 = linalg.generic {{.*}} ins(%[[T]]#0, %[[T]]#1 : tensor<5x4xf32>, tensor<5x4xf32>) outs({{.*}} : tensor<5x2x4xf32>, tensor<5x2x4xf32>)
// CHECK: arith.negf
// CHECK: %[[R:.+]] = linalg.generic {indexing_maps = [#[[ID5]], #[[PARTNER]], #[[TABLE]], #[[TABLE]], #[[ID5]]]
// CHECK-SAME: ins(%[[X]], %[[X]], %[[S]]#0, %[[S]]#1
// CHECK: tensor.collapse_shape %[[R]] {{\[}}[0], [1], [2], [3, 4]]
// CHECK-NOT: posenc.
func.func @rope_half(%x: tensor<2x5x3x8xf32>, %p: tensor<5xi32>) -> tensor<2x5x3x8xf32> {
  %y = posenc.rope %x, %p layout half : tensor<2x5x3x8xf32>, tensor<5xi32>
  return %y : tensor<2x5x3x8xf32>
}

// -----

// rotary_dim 0 is the identity.
// CHECK-LABEL: func @rope_identity
// CHECK-SAME: (%[[X:[^:]+]]: tensor
// CHECK-NEXT: return %[[X]]
func.func @rope_identity(%x: tensor<2x5x3x8xf32>, %p: tensor<5xi32>) -> tensor<2x5x3x8xf32> {
  %y = posenc.rope %x, %p layout half {rotary_dim = 0 : i64} : tensor<2x5x3x8xf32>, tensor<5xi32>
  return %y : tensor<2x5x3x8xf32>
}

// -----

// Dynamic NTK derives the base from max(pos) at run time; longrope selects
// one of two constant tables.
// CHECK-LABEL: func @rope_position_dependent
// CHECK: arith.maxsi
// CHECK: math.log %{{.+}} : f64
// CHECK: math.exp %{{.+}} : f64
// CHECK: %[[SHORT:.+]] = arith.constant dense<{{.+}}> : tensor<2xf64>
// CHECK: %[[LONG:.+]] = arith.constant dense<{{.+}}> : tensor<2xf64>
// CHECK: %[[USE:.+]] = arith.cmpi sge
// CHECK: arith.select %[[USE]], %[[LONG]], %[[SHORT]] : tensor<2xf64>
func.func @rope_position_dependent(%x: tensor<1x5x1x4xf32>, %p: tensor<5xi64>) -> tensor<1x5x1x4xf32> {
  %y = posenc.rope %x, %p layout half {scaling = #posenc.rope_scaling<dynamic, factor = 2.0, original = 16>} : tensor<1x5x1x4xf32>, tensor<5xi64>
  %z = posenc.rope %y, %p layout half {scaling = #posenc.rope_scaling<longrope, short_factor = [1.0, 2.0], long_factor = [4.0, 8.0], original = 16, max_positions = 64>} : tensor<1x5x1x4xf32>, tensor<5xi64>
  return %z : tensor<1x5x1x4xf32>
}

// -----

// T5 buckets come from a compile-time table over distances 0..max_distance;
// the bias is first tabulated per head over the clamped distances
// [-16, 16] (2x33), then gathered through an i32 index per (i, j) that every
// head shares, with the loops ordered (i, h, j).
// CHECK-LABEL: func @t5
// CHECK: %[[B:.+]] = arith.constant dense<[0, 1, 2, 3, 4, 4, 5, 5, 6, 6, 6, 6, 7, 7, 7, 7, 7]> : tensor<17xi64>
// CHECK: %[[D:.+]] = linalg.generic
// CHECK: arith.minsi
// CHECK: arith.maxsi
// CHECK: math.absi
// CHECK: tensor.extract %[[B]]
// CHECK: -> tensor<2x33xf32>
// CHECK: %[[I:.+]] = linalg.generic
// CHECK: arith.minsi
// CHECK: arith.maxsi
// CHECK: arith.index_cast %{{.+}} : index to i32
// CHECK: -> tensor<6x6xi32>
// CHECK: linalg.generic {indexing_maps = [#{{.+}}, #[[OUT:.+]]], {{.*}}ins(%[[I]] :
// CHECK: tensor.extract %[[D]]
// CHECK: -> tensor<2x6x6xf32>
func.func @t5(%t: tensor<16x2xf32>, %q: tensor<6xi32>) -> tensor<2x6x6xf32> {
  %b = posenc.rel_bias %t, %q, %q kind t5 {num_buckets = 16 : i64, max_distance = 16 : i64} : tensor<16x2xf32>, tensor<6xi32>, tensor<6xi32> -> tensor<2x6x6xf32>
  return %b : tensor<2x6x6xf32>
}

// -----

// mla_absorb lowers through its naive form: decompressed keys/values, then
// attention, with nothing of posenc left.
// CHECK-LABEL: func @mla
// CHECK-COUNT-2: ["parallel", "parallel", "parallel", "parallel", "reduction"]
// CHECK-NOT: posenc.
func.func @mla(%qn: tensor<1x4x2x16xf32>, %qr: tensor<1x4x2x8xf32>, %c: tensor<1x4x32xf32>, %kr: tensor<1x4x8xf32>, %wk: tensor<2x16x32xf32>, %wv: tensor<2x16x32xf32>) -> tensor<1x4x2x16xf32> {
  %o = posenc.mla_absorb %qn, %qr, %c, %kr, %wk, %wv causal : tensor<1x4x2x16xf32>, tensor<1x4x2x8xf32>, tensor<1x4x32xf32>, tensor<1x4x8xf32>, tensor<2x16x32xf32>, tensor<2x16x32xf32> -> tensor<1x4x2x16xf32>
  return %o : tensor<1x4x2x16xf32>
}

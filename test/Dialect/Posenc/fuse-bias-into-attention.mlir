// RUN: posenc-opt %s -posenc-fuse-bias-into-attention -split-input-file | FileCheck %s

// ALiBi: slopes become a captured constant; the bias is m_h·(k_j − q_i)
// from the positions at (h, i, j). No [H, Sq, Sk] tensor remains.
// CHECK-LABEL: func @alibi
// CHECK-SAME: (%{{[^:]+}}: tensor<{{.+}}>, %{{[^:]+}}: tensor<{{.+}}>, %{{[^:]+}}: tensor<{{.+}}>, %[[P:[^:]+]]: tensor<8xi32>)
// CHECK: %[[SL:.+]] = arith.constant dense<[2.500000e-01, 6.250000e-02, 1.562500e-02, 3.906250e-03]> : tensor<4xf32>
// CHECK-NOT: posenc.alibi_bias
// CHECK: posenc.attention {{.*}} causal outs({{.*}}) : {{.*}} score_mod {
// CHECK-NEXT: ^bb0(%[[S:.+]]: f32, %{{.+}}: index, %[[H:.+]]: index, %[[I:.+]]: index, %[[J:.+]]: index):
// CHECK: tensor.extract %[[P]][%[[J]]]
// CHECK: tensor.extract %[[P]][%[[I]]]
// CHECK: tensor.extract %[[SL]][%[[H]]]
// CHECK: %[[R:.+]] = arith.addf %[[S]]
// CHECK: posenc.yield %[[R]] : f32
// CHECK-NOT: tensor<4x8x8xf32>
func.func @alibi(%q: tensor<1x8x4x16xf32>, %k: tensor<1x8x4x16xf32>, %v: tensor<1x8x4x16xf32>, %p: tensor<8xi32>) -> tensor<1x8x4x16xf32> {
  %b = posenc.alibi_bias %p, %p mode causal {num_heads = 4 : i64} : tensor<8xi32>, tensor<8xi32> -> tensor<4x8x8xf32>
  %init_o = tensor.empty() : tensor<1x8x4x16xf32>
  %o = posenc.attention %q, %k, %v bias(%b : tensor<4x8x8xf32>) causal outs(%init_o) : tensor<1x8x4x16xf32>, tensor<1x8x4x16xf32>, tensor<1x8x4x16xf32>, tensor<1x8x4x16xf32>
  return %o : tensor<1x8x4x16xf32>
}

// -----

// T5 through a unit-dim expand_shape and a cast; batched query positions
// read pos[b, i]. The bucket arithmetic runs once per (head, distance in
// [-128, 128]) into a [4, 257] table before the attention; each score then
// clamps its distance and loads one entry.
// CHECK-LABEL: func @t5_through_reshapes
// CHECK-NOT: posenc.rel_bias
// CHECK-NOT: tensor.expand_shape
// CHECK: %[[TABLE:.+]] = linalg.generic {{.*}} outs(%{{.+}} : tensor<4x257xf32>)
// CHECK: math.absi
// CHECK: tensor.extract %arg5[%{{.+}}, %{{.+}}] : tensor<32x4xf32>
// CHECK: posenc.attention {{.*}} score_mod {
// CHECK-NEXT: ^bb0(%{{.+}}: f32, %[[B:.+]]: index, %[[H:.+]]: index, %[[I:.+]]: index, %[[J:.+]]: index):
// CHECK: tensor.extract %arg4[%[[J]]]
// CHECK: tensor.extract %arg3[%[[B]], %[[I]]]
// CHECK: arith.minsi %{{.+}}, %c128_i64
// CHECK: arith.maxsi %{{.+}}, %c-128_i64
// CHECK-NOT: math.absi
// CHECK: tensor.extract %[[TABLE]][%[[H]], %{{.+}}] : tensor<4x257xf32>
func.func @t5_through_reshapes(%q: tensor<2x8x4x16xf32>, %k: tensor<2x8x4x16xf32>, %v: tensor<2x8x4x16xf32>,
                               %qp: tensor<2x8xi64>, %kp: tensor<8xi64>, %t: tensor<32x4xf32>) -> tensor<2x8x4x16xf32> {
  %b = posenc.rel_bias %t, %qp, %kp kind t5 {num_buckets = 32 : i64, max_distance = 128 : i64} : tensor<32x4xf32>, tensor<2x8xi64>, tensor<8xi64> -> tensor<2x4x8x8xf32>
  %c = tensor.cast %b : tensor<2x4x8x8xf32> to tensor<2x4x?x8xf32>
  %init_o = tensor.empty() : tensor<2x8x4x16xf32>
  %o = posenc.attention %q, %k, %v bias(%c : tensor<2x4x?x8xf32>) outs(%init_o) {scale = 1.0 : f64} : tensor<2x8x4x16xf32>, tensor<2x8x4x16xf32>, tensor<2x8x4x16xf32>, tensor<2x8x4x16xf32>
  return %o : tensor<2x8x4x16xf32>
}

// -----

// rel_key_bias keeps the small product q·embᵀ ([B, Sq, H, 2M+1]) and
// gathers from it by clamped distance; an existing score_mod runs after
// the bias.
// CHECK-LABEL: func @rel_key_then_score_mod
// CHECK: %[[QE:.+]] = linalg.generic
// CHECK: } -> tensor<1x8x4x9xf32>
// CHECK: posenc.attention {{.*}} score_mod {
// CHECK-NEXT: ^bb0(%[[S:.+]]: f32, %{{.+}}: index, %[[H:.+]]: index, %[[I:.+]]: index, %{{.+}}: index):
// CHECK: %[[BIAS:.+]] = tensor.extract %[[QE]][%{{.+}}, %[[I]], %[[H]], %{{.+}}] : tensor<1x8x4x9xf32>
// CHECK: %[[WITH:.+]] = arith.addf %[[S]], %[[BIAS]]
// CHECK: %[[MOD:.+]] = arith.mulf %[[WITH]], %[[WITH]]
// CHECK: posenc.yield %[[MOD]]
func.func @rel_key_then_score_mod(%q: tensor<1x8x4x16xf32>, %e: tensor<9x16xf32>, %p: tensor<8xi32>) -> tensor<1x8x4x16xf32> {
  %b = posenc.rel_key_bias %q, %e, %p, %p {max_distance = 4 : i64} : tensor<1x8x4x16xf32>, tensor<9x16xf32>, tensor<8xi32>, tensor<8xi32> -> tensor<1x4x8x8xf32>
  %init_o = tensor.empty() : tensor<1x8x4x16xf32>
  %o = posenc.attention %q, %q, %q bias(%b : tensor<1x4x8x8xf32>) outs(%init_o) : tensor<1x8x4x16xf32>, tensor<1x8x4x16xf32>, tensor<1x8x4x16xf32>, tensor<1x8x4x16xf32> score_mod {
  ^bb0(%s: f32, %bb: index, %h: index, %i: index, %j: index):
    %r = arith.mulf %s, %s : f32
    posenc.yield %r : f32
  }
  return %o : tensor<1x8x4x16xf32>
}

// -----

// One bias shared by two attention ops (the layers of an ALiBi model, one
// through a unit-dim expand_shape): each fuses its own copy and no
// [H, Sq, Sk] tensor remains.
// CHECK-LABEL: func @alibi_shared_by_layers
// CHECK-NOT: posenc.alibi_bias
// CHECK-NOT: tensor.expand_shape
// CHECK: posenc.attention {{.*}} causal outs({{.*}}) : {{.*}} score_mod {
// CHECK: posenc.attention {{.*}} causal outs({{.*}}) : {{.*}} score_mod {
// CHECK-NOT: tensor<4x8x8xf32>
func.func @alibi_shared_by_layers(%q: tensor<1x8x4x16xf32>, %p: tensor<8xi32>) -> tensor<1x8x4x16xf32> {
  %b = posenc.alibi_bias %p, %p mode causal {num_heads = 4 : i64} : tensor<8xi32>, tensor<8xi32> -> tensor<4x8x8xf32>
  %b4 = tensor.expand_shape %b [[0, 1], [2], [3]] output_shape [1, 4, 8, 8] : tensor<4x8x8xf32> into tensor<1x4x8x8xf32>
  %init_o = tensor.empty() : tensor<1x8x4x16xf32>
  %o1 = posenc.attention %q, %q, %q bias(%b : tensor<4x8x8xf32>) causal outs(%init_o) : tensor<1x8x4x16xf32>, tensor<1x8x4x16xf32>, tensor<1x8x4x16xf32>, tensor<1x8x4x16xf32>
  %o2 = posenc.attention %o1, %q, %q bias(%b4 : tensor<1x4x8x8xf32>) causal outs(%init_o) : tensor<1x8x4x16xf32>, tensor<1x8x4x16xf32>, tensor<1x8x4x16xf32>, tensor<1x8x4x16xf32>
  return %o2 : tensor<1x8x4x16xf32>
}

// -----

// negative_bias_reused: the bias is also returned, so it must be built
// anyway; fusing would compute it twice.
// CHECK-LABEL: func @negative_bias_reused
// CHECK: %[[B:.+]] = posenc.alibi_bias
// CHECK: posenc.attention {{.*}} bias(%[[B]] :
func.func @negative_bias_reused(%q: tensor<1x8x4x16xf32>, %p: tensor<8xi32>) -> (tensor<1x8x4x16xf32>, tensor<4x8x8xf32>) {
  %b = posenc.alibi_bias %p, %p mode causal {num_heads = 4 : i64} : tensor<8xi32>, tensor<8xi32> -> tensor<4x8x8xf32>
  %init_o = tensor.empty() : tensor<1x8x4x16xf32>
  %o = posenc.attention %q, %q, %q bias(%b : tensor<4x8x8xf32>) outs(%init_o) : tensor<1x8x4x16xf32>, tensor<1x8x4x16xf32>, tensor<1x8x4x16xf32>, tensor<1x8x4x16xf32>
  return %o, %b : tensor<1x8x4x16xf32>, tensor<4x8x8xf32>
}

// -----

// negative_unknown_producer: a bias computed by other ops (here a sum of
// two biases) cannot be analysed and stays an operand.
// CHECK-LABEL: func @negative_unknown_producer
// CHECK: posenc.attention {{.*}} bias(
func.func @negative_unknown_producer(%q: tensor<1x8x4x16xf32>, %p: tensor<8xi32>) -> tensor<1x8x4x16xf32> {
  %b = posenc.alibi_bias %p, %p mode causal {num_heads = 4 : i64} : tensor<8xi32>, tensor<8xi32> -> tensor<4x8x8xf32>
  %c = arith.addf %b, %b : tensor<4x8x8xf32>
  %init_o = tensor.empty() : tensor<1x8x4x16xf32>
  %o = posenc.attention %q, %q, %q bias(%c : tensor<4x8x8xf32>) outs(%init_o) : tensor<1x8x4x16xf32>, tensor<1x8x4x16xf32>, tensor<1x8x4x16xf32>, tensor<1x8x4x16xf32>
  return %o : tensor<1x8x4x16xf32>
}

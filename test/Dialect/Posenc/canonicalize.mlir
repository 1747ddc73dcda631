// RUN: posenc-opt %s -canonicalize -split-input-file | FileCheck %s

// CHECK-LABEL: func @rope_zero_rotary
// CHECK-SAME: (%[[X:[^:]+]]: tensor
// CHECK-NEXT: return %[[X]]
func.func @rope_zero_rotary(%x: tensor<1x4x2x8xf32>, %p: tensor<4xi32>) -> tensor<1x4x2x8xf32> {
  %y = posenc.rope %x, %p layout interleaved {rotary_dim = 0 : i64} : tensor<1x4x2x8xf32>, tensor<4xi32>
  return %y : tensor<1x4x2x8xf32>
}

// -----

// CHECK-LABEL: func @compose_ropes
// CHECK-SAME: (%[[X:[^:]+]]: tensor<1x4x2x8xf32>, %[[P:[^:]+]]: tensor<4xi32>, %[[Q:[^:]+]]: tensor<4xi32>)
// CHECK-DAG: %[[PW:.+]] = arith.extsi %[[P]] : tensor<4xi32> to tensor<4xi64>
// CHECK-DAG: %[[QW:.+]] = arith.extsi %[[Q]] : tensor<4xi32> to tensor<4xi64>
// CHECK: %[[S:.+]] = arith.addi %[[PW]], %[[QW]] : tensor<4xi64>
// CHECK: %[[Y:.+]] = posenc.rope %[[X]], %[[S]] layout half {base = 5.000000e+05 : f64, rotary_dim = 4 : i64, scaling = #posenc.rope_scaling<llama3
// CHECK-NOT: posenc.rope
// CHECK: return %[[Y]]
func.func @compose_ropes(%x: tensor<1x4x2x8xf32>, %p: tensor<4xi32>, %q: tensor<4xi32>) -> tensor<1x4x2x8xf32> {
  %y = posenc.rope %x, %p layout half {base = 500000.0 : f64, rotary_dim = 4 : i64, scaling = #posenc.rope_scaling<llama3, factor = 8.0, low_freq_factor = 1.0, high_freq_factor = 4.0, original = 8192>} : tensor<1x4x2x8xf32>, tensor<4xi32>
  %z = posenc.rope %y, %q layout half {base = 500000.0 : f64, rotary_dim = 4 : i64, scaling = #posenc.rope_scaling<llama3, factor = 8.0, low_freq_factor = 1.0, high_freq_factor = 4.0, original = 8192>} : tensor<1x4x2x8xf32>, tensor<4xi32>
  return %z : tensor<1x4x2x8xf32>
}

// -----

// An explicit attention_factor of 1 composes even under YaRN.
// CHECK-LABEL: func @compose_yarn_unit_factor
// CHECK: arith.addi
// CHECK-COUNT-1: posenc.rope
func.func @compose_yarn_unit_factor(%x: tensor<1x4x2x8xf32>, %p: tensor<4xi32>) -> tensor<1x4x2x8xf32> {
  %y = posenc.rope %x, %p layout interleaved {attention_factor = 1.0 : f64, scaling = #posenc.rope_scaling<yarn, factor = 4.0, original = 64>} : tensor<1x4x2x8xf32>, tensor<4xi32>
  %z = posenc.rope %y, %p layout interleaved {attention_factor = 1.0 : f64, scaling = #posenc.rope_scaling<yarn, factor = 4.0, original = 64>} : tensor<1x4x2x8xf32>, tensor<4xi32>
  return %z : tensor<1x4x2x8xf32>
}

// -----

// negative_layouts: the pairs differ, so the rotations do not commute into
// one.
// CHECK-LABEL: func @negative_layouts
// CHECK-COUNT-2: posenc.rope
func.func @negative_layouts(%x: tensor<1x4x2x8xf32>, %p: tensor<4xi32>) -> tensor<1x4x2x8xf32> {
  %y = posenc.rope %x, %p layout half : tensor<1x4x2x8xf32>, tensor<4xi32>
  %z = posenc.rope %y, %p layout interleaved : tensor<1x4x2x8xf32>, tensor<4xi32>
  return %z : tensor<1x4x2x8xf32>
}

// -----

// negative_yarn_default_factor: YaRN's default attention factor is not 1;
// two applications scale by its square.
// CHECK-LABEL: func @negative_yarn_default_factor
// CHECK-COUNT-2: posenc.rope
func.func @negative_yarn_default_factor(%x: tensor<1x4x2x8xf32>, %p: tensor<4xi32>) -> tensor<1x4x2x8xf32> {
  %y = posenc.rope %x, %p layout half {scaling = #posenc.rope_scaling<yarn, factor = 4.0, original = 64>} : tensor<1x4x2x8xf32>, tensor<4xi32>
  %z = posenc.rope %y, %p layout half {scaling = #posenc.rope_scaling<yarn, factor = 4.0, original = 64>} : tensor<1x4x2x8xf32>, tensor<4xi32>
  return %z : tensor<1x4x2x8xf32>
}

// -----

// negative_dynamic: dynamic NTK frequencies depend on max(pos), which
// differs between p, q and p + q.
// CHECK-LABEL: func @negative_dynamic
// CHECK-COUNT-2: posenc.rope
func.func @negative_dynamic(%x: tensor<1x4x2x8xf32>, %p: tensor<4xi32>, %q: tensor<4xi32>) -> tensor<1x4x2x8xf32> {
  %y = posenc.rope %x, %p layout half {scaling = #posenc.rope_scaling<dynamic, factor = 2.0, original = 16>} : tensor<1x4x2x8xf32>, tensor<4xi32>
  %z = posenc.rope %y, %q layout half {scaling = #posenc.rope_scaling<dynamic, factor = 2.0, original = 16>} : tensor<1x4x2x8xf32>, tensor<4xi32>
  return %z : tensor<1x4x2x8xf32>
}

// -----

// negative_bases: different frequencies.
// CHECK-LABEL: func @negative_bases
// CHECK-COUNT-2: posenc.rope
func.func @negative_bases(%x: tensor<1x4x2x8xf32>, %p: tensor<4xi32>) -> tensor<1x4x2x8xf32> {
  %y = posenc.rope %x, %p layout half : tensor<1x4x2x8xf32>, tensor<4xi32>
  %z = posenc.rope %y, %p layout half {base = 500000.0 : f64} : tensor<1x4x2x8xf32>, tensor<4xi32>
  return %z : tensor<1x4x2x8xf32>
}

// -----

// negative_position_shapes: [S] and [B, S] positions are not added here.
// CHECK-LABEL: func @negative_position_shapes
// CHECK-COUNT-2: posenc.rope
func.func @negative_position_shapes(%x: tensor<1x4x2x8xf32>, %p: tensor<4xi32>, %q: tensor<1x4xi32>) -> tensor<1x4x2x8xf32> {
  %y = posenc.rope %x, %p layout half : tensor<1x4x2x8xf32>, tensor<4xi32>
  %z = posenc.rope %y, %q layout half : tensor<1x4x2x8xf32>, tensor<1x4xi32>
  return %z : tensor<1x4x2x8xf32>
}

// -----

// A tensor.cast to a less static type folds into attention's operands (the
// result keeps its type through a cast back); with or without a score_mod.
// CHECK-LABEL: func @fold_cast_into_attention
// CHECK-SAME: (%[[Q:.+]]: tensor<1x4x2x8xf32>, %[[K:.+]]: tensor<1x6x2x8xf32>)
// CHECK: %[[I:.+]] = tensor.empty() : tensor<1x4x2x8xf32>
// CHECK: %[[O:.+]] = posenc.attention %[[Q]], %[[K]], %[[K]] causal outs(%[[I]]) : tensor<1x4x2x8xf32>, tensor<1x6x2x8xf32>, tensor<1x6x2x8xf32>, tensor<1x4x2x8xf32>
// CHECK: %[[C:.+]] = tensor.cast %[[O]] : tensor<1x4x2x8xf32> to tensor<1x?x2x8xf32>
// CHECK: posenc.attention %[[Q]], %[[K]], %[[K]] outs(%{{.+}}) : tensor<1x4x2x8xf32>, tensor<1x6x2x8xf32>, tensor<1x6x2x8xf32>, tensor<1x4x2x8xf32> score_mod
// CHECK: return %[[C]]
func.func @fold_cast_into_attention(%q: tensor<1x4x2x8xf32>, %k: tensor<1x6x2x8xf32>) -> (tensor<1x?x2x8xf32>, tensor<1x4x2x8xf32>) {
  %qc = tensor.cast %q : tensor<1x4x2x8xf32> to tensor<1x?x2x8xf32>
  %kc = tensor.cast %k : tensor<1x6x2x8xf32> to tensor<1x?x2x8xf32>
  %c1 = arith.constant 1 : index
  %n = tensor.dim %qc, %c1 : tensor<1x?x2x8xf32>
  %init = tensor.empty(%n) : tensor<1x?x2x8xf32>
  %o = posenc.attention %qc, %kc, %kc causal outs(%init) : tensor<1x?x2x8xf32>, tensor<1x?x2x8xf32>, tensor<1x?x2x8xf32>, tensor<1x?x2x8xf32>
  %init2 = tensor.empty() : tensor<1x4x2x8xf32>
  %o2 = posenc.attention %q, %kc, %kc outs(%init2) : tensor<1x4x2x8xf32>, tensor<1x?x2x8xf32>, tensor<1x?x2x8xf32>, tensor<1x4x2x8xf32> score_mod {
  ^bb0(%s: f32, %b: index, %h: index, %i: index, %j: index):
    posenc.yield %s : f32
  }
  return %o, %o2 : tensor<1x?x2x8xf32>, tensor<1x4x2x8xf32>
}

// -----

// CHECK-LABEL: func @fold_cast_into_online_attention
// CHECK: posenc.online_attention %{{.+}}, %{{.+}}, %{{.+}} outs(%{{.+}}, %{{.+}}, %{{.+}}) : tensor<1x4x2x8xf32>, tensor<1x6x2x8xf32>, tensor<1x6x2x8xf32>, tensor<1x4x2x8xf32>, tensor<1x4x2xf32>, tensor<1x4x2xf32>
func.func @fold_cast_into_online_attention(%q: tensor<1x4x2x8xf32>, %k: tensor<1x6x2x8xf32>, %acc: tensor<1x4x2x8xf32>, %m: tensor<1x4x2xf32>, %l: tensor<1x4x2xf32>) -> tensor<1x4x2x8xf32> {
  %kc = tensor.cast %k : tensor<1x6x2x8xf32> to tensor<1x?x2x8xf32>
  %a, %mx, %s = posenc.online_attention %q, %kc, %kc outs(%acc, %m, %l) : tensor<1x4x2x8xf32>, tensor<1x?x2x8xf32>, tensor<1x?x2x8xf32>, tensor<1x4x2x8xf32>, tensor<1x4x2xf32>, tensor<1x4x2xf32>
  return %a : tensor<1x4x2x8xf32>
}

// -----

// M-RoPE rotations compose too (positions add per axis); a plain rope and
// an M-RoPE do not.
// CHECK-LABEL: func @compose_mrope
// CHECK: arith.addi %{{.+}}, %{{.+}} : tensor<3x4xi64>
// CHECK-COUNT-1: posenc.rope
// CHECK-NOT: posenc.rope
// CHECK-LABEL: func @negative_mrope_sections
// CHECK-COUNT-2: posenc.rope
func.func @compose_mrope(%x: tensor<1x4x2x8xf32>, %p: tensor<3x4xi32>, %q: tensor<3x4xi32>) -> tensor<1x4x2x8xf32> {
  %y = posenc.rope %x, %p layout half {mrope_section = array<i64: 2, 1, 1>} : tensor<1x4x2x8xf32>, tensor<3x4xi32>
  %z = posenc.rope %y, %q layout half {mrope_section = array<i64: 2, 1, 1>} : tensor<1x4x2x8xf32>, tensor<3x4xi32>
  return %z : tensor<1x4x2x8xf32>
}
func.func @negative_mrope_sections(%x: tensor<1x4x2x8xf32>, %p: tensor<3x4xi64>) -> tensor<1x4x2x8xf32> {
  %y = posenc.rope %x, %p layout half {mrope_section = array<i64: 2, 1, 1>} : tensor<1x4x2x8xf32>, tensor<3x4xi64>
  %z = posenc.rope %y, %p layout half {mrope_section = array<i64: 1, 1, 2>} : tensor<1x4x2x8xf32>, tensor<3x4xi64>
  return %z : tensor<1x4x2x8xf32>
}

// -----

// The position sum never wraps: i32 positions at the type's limit add in
// i64; dynamic i64 positions do not compose, constant ones only when every
// sum fits.
// CHECK-LABEL: func @compose_i32_limit_widens
// CHECK: arith.constant dense<2147483648> : tensor<2xi64>
// CHECK-COUNT-1: posenc.rope
// CHECK-LABEL: func @negative_compose_dynamic_i64
// CHECK-COUNT-2: posenc.rope
// CHECK-LABEL: func @compose_constant_i64
// CHECK: arith.constant dense<[3, 5]> : tensor<2xi64>
// CHECK-COUNT-1: posenc.rope
// CHECK-LABEL: func @negative_compose_i64_overflow
// CHECK-COUNT-2: posenc.rope
func.func @compose_i32_limit_widens(%x: tensor<1x2x1x4xf32>) -> tensor<1x2x1x4xf32> {
  %p = arith.constant dense<2147483647> : tensor<2xi32>
  %q = arith.constant dense<1> : tensor<2xi32>
  %y = posenc.rope %x, %p layout half : tensor<1x2x1x4xf32>, tensor<2xi32>
  %z = posenc.rope %y, %q layout half : tensor<1x2x1x4xf32>, tensor<2xi32>
  return %z : tensor<1x2x1x4xf32>
}
func.func @negative_compose_dynamic_i64(%x: tensor<1x2x1x4xf32>, %p: tensor<2xi64>, %q: tensor<2xi64>) -> tensor<1x2x1x4xf32> {
  %y = posenc.rope %x, %p layout half : tensor<1x2x1x4xf32>, tensor<2xi64>
  %z = posenc.rope %y, %q layout half : tensor<1x2x1x4xf32>, tensor<2xi64>
  return %z : tensor<1x2x1x4xf32>
}
func.func @compose_constant_i64(%x: tensor<1x2x1x4xf32>) -> tensor<1x2x1x4xf32> {
  %p = arith.constant dense<[1, 2]> : tensor<2xi64>
  %q = arith.constant dense<[2, 3]> : tensor<2xi64>
  %y = posenc.rope %x, %p layout half : tensor<1x2x1x4xf32>, tensor<2xi64>
  %z = posenc.rope %y, %q layout half : tensor<1x2x1x4xf32>, tensor<2xi64>
  return %z : tensor<1x2x1x4xf32>
}
func.func @negative_compose_i64_overflow(%x: tensor<1x2x1x4xf32>) -> tensor<1x2x1x4xf32> {
  %p = arith.constant dense<9223372036854775807> : tensor<2xi64>
  %q = arith.constant dense<[0, 1]> : tensor<2xi64>
  %y = posenc.rope %x, %p layout half : tensor<1x2x1x4xf32>, tensor<2xi64>
  %z = posenc.rope %y, %q layout half : tensor<1x2x1x4xf32>, tensor<2xi64>
  return %z : tensor<1x2x1x4xf32>
}

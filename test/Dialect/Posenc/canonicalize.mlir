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
// CHECK: %[[S:.+]] = arith.addi %[[P]], %[[Q]] : tensor<4xi32>
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
func.func @compose_yarn_unit_factor(%x: tensor<1x4x2x8xf32>, %p: tensor<4xi64>) -> tensor<1x4x2x8xf32> {
  %y = posenc.rope %x, %p layout interleaved {attention_factor = 1.0 : f64, scaling = #posenc.rope_scaling<yarn, factor = 4.0, original = 64>} : tensor<1x4x2x8xf32>, tensor<4xi64>
  %z = posenc.rope %y, %p layout interleaved {attention_factor = 1.0 : f64, scaling = #posenc.rope_scaling<yarn, factor = 4.0, original = 64>} : tensor<1x4x2x8xf32>, tensor<4xi64>
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

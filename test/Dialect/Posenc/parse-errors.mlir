// Malformed posenc IR: every case gets a located diagnostic and a clean
// failure exit (`not` fails on a crash), never an assertion.
// RUN: posenc-opt %s -split-input-file -verify-diagnostics
// RUN: not posenc-opt %s -split-input-file 2>&1 | FileCheck %s

// CHECK: parse-errors.mlir:[[# @LINE + 3]]:{{[0-9]+}}: error: {{.*}}expected 'layout'
func.func @missing_layout(%x: tensor<1x4x2x8xf32>, %p: tensor<4xi32>) -> tensor<1x4x2x8xf32> {
  // expected-error@+1 {{expected 'layout'}}
  %y = posenc.rope %x, %p : tensor<1x4x2x8xf32>, tensor<4xi32>
  return %y : tensor<1x4x2x8xf32>
}

// -----

// CHECK: parse-errors.mlir:[[# @LINE + 4]]:{{[0-9]+}}: error: {{.*}}expected ::mlir::posenc::RopeLayout to be one of: half, interleaved
func.func @unknown_layout(%x: tensor<1x4x2x8xf32>, %p: tensor<4xi32>) -> tensor<1x4x2x8xf32> {
  // expected-error@+2 {{expected ::mlir::posenc::RopeLayout to be one of: half, interleaved}}
  // expected-error@+1 {{failed to parse Posenc_RopeLayoutAttr parameter 'value'}}
  %y = posenc.rope %x, %p layout diagonal : tensor<1x4x2x8xf32>, tensor<4xi32>
  return %y : tensor<1x4x2x8xf32>
}

// -----

func.func @base_string(%x: tensor<1x4x2x8xf32>, %p: tensor<4xi32>) -> tensor<1x4x2x8xf32> {
  // expected-error@+1 {{'posenc.rope' op attribute 'base' failed to satisfy constraint: 64-bit float attribute}}
  %y = posenc.rope %x, %p layout half {base = "large"} : tensor<1x4x2x8xf32>, tensor<4xi32>
  return %y : tensor<1x4x2x8xf32>
}

// -----

func.func @rotary_dim_float(%x: tensor<1x4x2x8xf32>, %p: tensor<4xi32>) -> tensor<1x4x2x8xf32> {
  // expected-error@+1 {{'posenc.rope' op attribute 'rotary_dim' failed to satisfy constraint: 64-bit signless integer attribute}}
  %y = posenc.rope %x, %p layout half {rotary_dim = 4.0 : f64} : tensor<1x4x2x8xf32>, tensor<4xi32>
  return %y : tensor<1x4x2x8xf32>
}

// -----

func.func @scaling_wrong_kind(%x: tensor<1x4x2x8xf32>, %p: tensor<4xi32>) -> tensor<1x4x2x8xf32> {
  // expected-error@+1 {{'posenc.rope' op attribute 'scaling' failed to satisfy constraint: Frequency scaling of a rotary embedding}}
  %y = posenc.rope %x, %p layout half {scaling = 4.0 : f64} : tensor<1x4x2x8xf32>, tensor<4xi32>
  return %y : tensor<1x4x2x8xf32>
}

// -----

func.func @scaling_unterminated(%x: tensor<1x4x2x8xf32>, %p: tensor<4xi32>) -> tensor<1x4x2x8xf32> {
  // expected-error@+1 {{unbalanced '<' character in pretty dialect name}}
  %y = posenc.rope %x, %p layout half {scaling = #posenc.rope_scaling<linear, factor = 2.0} : tensor<1x4x2x8xf32>, tensor<4xi32>
  return %y : tensor<1x4x2x8xf32>
}

// -----

func.func @scaling_not_a_number(%x: tensor<1x4x2x8xf32>, %p: tensor<4xi32>) -> tensor<1x4x2x8xf32> {
  // expected-error@+1 {{expected floating point literal}}
  %y = posenc.rope %x, %p layout half {scaling = #posenc.rope_scaling<linear, factor = fast>} : tensor<1x4x2x8xf32>, tensor<4xi32>
  return %y : tensor<1x4x2x8xf32>
}

// -----

func.func @heads_i32(%q: tensor<8xi32>) -> tensor<4x8x8xf32> {
  // expected-error@+1 {{'posenc.alibi_bias' op attribute 'num_heads' failed to satisfy constraint: 64-bit signless integer attribute}}
  %b = posenc.alibi_bias %q, %q mode causal {num_heads = 4 : i32} : tensor<8xi32>, tensor<8xi32> -> tensor<4x8x8xf32>
  return %b : tensor<4x8x8xf32>
}

// -----

func.func @missing_mode(%q: tensor<8xi32>) -> tensor<4x8x8xf32> {
  // expected-error@+1 {{expected 'mode'}}
  %b = posenc.alibi_bias %q, %q {num_heads = 4 : i64} : tensor<8xi32>, tensor<8xi32> -> tensor<4x8x8xf32>
  return %b : tensor<4x8x8xf32>
}

// -----

func.func @missing_required_attr(%q: tensor<8xi32>) -> tensor<8x16xf32> {
  // expected-error@+1 {{'posenc.sinusoidal' op requires attribute 'dim'}}
  %b = posenc.sinusoidal %q layout half : tensor<8xi32> -> tensor<8x16xf32>
  return %b : tensor<8x16xf32>
}

// -----

func.func @unranked(%x: tensor<*xf32>, %p: tensor<4xi32>) -> tensor<*xf32> {
  // expected-error@+1 {{invalid kind of type specified: expected builtin.tensor, but found 'tensor<*xf32>'}}
  %y = posenc.rope %x, %p layout half : tensor<*xf32>, tensor<4xi32>
  return %y : tensor<*xf32>
}

// -----

func.func @attention_two_blocks(%q: tensor<1x8x4x16xf32>) -> tensor<1x8x4x16xf32> {
  %init_o = tensor.empty() : tensor<1x8x4x16xf32>
  // expected-error@+1 {{'posenc.attention' op region #0 ('score_mod') failed to verify constraint: region with at most 1 blocks}}
  %o = posenc.attention %q, %q, %q outs(%init_o) : tensor<1x8x4x16xf32>, tensor<1x8x4x16xf32>, tensor<1x8x4x16xf32>, tensor<1x8x4x16xf32> score_mod {
  ^bb0(%s: f32, %b: index, %h: index, %i: index, %j: index):
    cf.br ^bb1
  ^bb1:
    posenc.yield %s : f32
  }
  return %o : tensor<1x8x4x16xf32>
}

// -----

// CHECK: parse-errors.mlir:[[# @LINE + 4]]:{{[0-9]+}}: error: expected ','
func.func @attention_missing_type(%q: tensor<1x8x4x16xf32>) -> tensor<1x8x4x16xf32> {
  %init_o = tensor.empty() : tensor<1x8x4x16xf32>
  // expected-error@+1 {{expected ','}}
  %o = posenc.attention %q, %q, %q outs(%init_o) : tensor<1x8x4x16xf32>, tensor<1x8x4x16xf32>
  return %o : tensor<1x8x4x16xf32>
}

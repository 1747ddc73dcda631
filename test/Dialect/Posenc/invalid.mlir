// RUN: posenc-opt %s -split-input-file -verify-diagnostics

//===----------------------------------------------------------------------===//
// #posenc.rope_scaling
//===----------------------------------------------------------------------===//

func.func @scaling_unknown_kind(%x: tensor<1x4x2x8xf32>, %p: tensor<4xi32>) -> tensor<1x4x2x8xf32> {
  // expected-error@+1 {{unknown rope scaling kind 'su'; expected one of none, linear, ntk, dynamic, yarn, llama3, longrope (did you mean 'longrope'?)}}
  %y = posenc.rope %x, %p layout half {scaling = #posenc.rope_scaling<su>} : tensor<1x4x2x8xf32>, tensor<4xi32>
  return %y : tensor<1x4x2x8xf32>
}

// -----

func.func @scaling_unknown_param(%x: tensor<1x4x2x8xf32>, %p: tensor<4xi32>) -> tensor<1x4x2x8xf32> {
  // expected-error@+1 {{unknown rope scaling parameter 'scale' (linear takes factor)}}
  %y = posenc.rope %x, %p layout half {scaling = #posenc.rope_scaling<linear, scale = 2.0>} : tensor<1x4x2x8xf32>, tensor<4xi32>
  return %y : tensor<1x4x2x8xf32>
}

// -----

func.func @scaling_hf_param_name(%x: tensor<1x4x2x8xf32>, %p: tensor<4xi32>) -> tensor<1x4x2x8xf32> {
  // expected-error@+1 {{unknown rope scaling parameter 'original_max_position_embeddings'; did you mean 'original'? (yarn takes factor, original, beta_fast, beta_slow, mscale, mscale_all_dim, truncate)}}
  %y = posenc.rope %x, %p layout half {scaling = #posenc.rope_scaling<yarn, factor = 4.0, original_max_position_embeddings = 4096>} : tensor<1x4x2x8xf32>, tensor<4xi32>
  return %y : tensor<1x4x2x8xf32>
}

// -----

func.func @scaling_misspelled(%x: tensor<1x4x2x8xf32>, %p: tensor<4xi32>) -> tensor<1x4x2x8xf32> {
  // expected-error@+1 {{unknown rope scaling parameter 'low_freq_facter'; did you mean 'low_freq_factor'?}}
  %y = posenc.rope %x, %p layout half {scaling = #posenc.rope_scaling<llama3, factor = 8.0, low_freq_facter = 1.0>} : tensor<1x4x2x8xf32>, tensor<4xi32>
  return %y : tensor<1x4x2x8xf32>
}

// -----

func.func @scaling_foreign_param(%x: tensor<1x4x2x8xf32>, %p: tensor<4xi32>) -> tensor<1x4x2x8xf32> {
  // expected-error@+1 {{rope scaling kind 'linear' has no parameter 'alpha' (it takes factor)}}
  %y = posenc.rope %x, %p layout half {scaling = #posenc.rope_scaling<linear, alpha = 2.0>} : tensor<1x4x2x8xf32>, tensor<4xi32>
  return %y : tensor<1x4x2x8xf32>
}

// -----

func.func @scaling_param_twice(%x: tensor<1x4x2x8xf32>, %p: tensor<4xi32>) -> tensor<1x4x2x8xf32> {
  // expected-error@+1 {{rope scaling parameter 'factor' given twice}}
  %y = posenc.rope %x, %p layout half {scaling = #posenc.rope_scaling<linear, factor = 2.0, factor = 3.0>} : tensor<1x4x2x8xf32>, tensor<4xi32>
  return %y : tensor<1x4x2x8xf32>
}

// -----

func.func @scaling_bad_truncate(%x: tensor<1x4x2x8xf32>, %p: tensor<4xi32>) -> tensor<1x4x2x8xf32> {
  // expected-error@+1 {{expected 'true' or 'false' for 'truncate'}}
  %y = posenc.rope %x, %p layout half {scaling = #posenc.rope_scaling<yarn, factor = 4.0, original = 4096, truncate = maybe>} : tensor<1x4x2x8xf32>, tensor<4xi32>
  return %y : tensor<1x4x2x8xf32>
}

// -----

func.func @scaling_missing_param(%x: tensor<1x4x2x8xf32>, %p: tensor<4xi32>) -> tensor<1x4x2x8xf32> {
  // expected-error@+1 {{rope scaling kind 'llama3' requires parameter 'high_freq_factor'}}
  %y = posenc.rope %x, %p layout half {scaling = #posenc.rope_scaling<llama3, factor = 8.0, low_freq_factor = 1.0, original = 8192>} : tensor<1x4x2x8xf32>, tensor<4xi32>
  return %y : tensor<1x4x2x8xf32>
}

// -----

func.func @scaling_zero_factor(%x: tensor<1x4x2x8xf32>, %p: tensor<4xi32>) -> tensor<1x4x2x8xf32> {
  // expected-error@+1 {{rope scaling 'linear': factor (0) must be positive and finite}}
  %y = posenc.rope %x, %p layout half {scaling = #posenc.rope_scaling<linear, factor = 0.0>} : tensor<1x4x2x8xf32>, tensor<4xi32>
  return %y : tensor<1x4x2x8xf32>
}

// -----

func.func @scaling_shrinking_factor(%x: tensor<1x4x2x8xf32>, %p: tensor<4xi32>) -> tensor<1x4x2x8xf32> {
  // expected-error@+1 {{rope scaling 'yarn': factor (0.5) must be >= 1}}
  %y = posenc.rope %x, %p layout half {scaling = #posenc.rope_scaling<yarn, factor = 0.5, original = 4096>} : tensor<1x4x2x8xf32>, tensor<4xi32>
  return %y : tensor<1x4x2x8xf32>
}

// -----

func.func @scaling_small_alpha(%x: tensor<1x4x2x8xf32>, %p: tensor<4xi32>) -> tensor<1x4x2x8xf32> {
  // expected-error@+1 {{rope scaling 'ntk': alpha (0.5) must be >= 1}}
  %y = posenc.rope %x, %p layout half {scaling = #posenc.rope_scaling<ntk, alpha = 0.5>} : tensor<1x4x2x8xf32>, tensor<4xi32>
  return %y : tensor<1x4x2x8xf32>
}

// -----

func.func @scaling_beta_order(%x: tensor<1x4x2x8xf32>, %p: tensor<4xi32>) -> tensor<1x4x2x8xf32> {
  // expected-error@+1 {{rope scaling 'yarn': beta_fast (1) must be greater than beta_slow (32)}}
  %y = posenc.rope %x, %p layout half {scaling = #posenc.rope_scaling<yarn, factor = 4.0, original = 4096, beta_fast = 1.0, beta_slow = 32.0>} : tensor<1x4x2x8xf32>, tensor<4xi32>
  return %y : tensor<1x4x2x8xf32>
}

// -----

func.func @scaling_negative_mscale(%x: tensor<1x4x2x8xf32>, %p: tensor<4xi32>) -> tensor<1x4x2x8xf32> {
  // expected-error@+1 {{rope scaling 'yarn': mscale (-1) must be finite and >= 0}}
  %y = posenc.rope %x, %p layout half {scaling = #posenc.rope_scaling<yarn, factor = 4.0, original = 4096, mscale = -1.0>} : tensor<1x4x2x8xf32>, tensor<4xi32>
  return %y : tensor<1x4x2x8xf32>
}

// -----

func.func @scaling_freq_factor_order(%x: tensor<1x4x2x8xf32>, %p: tensor<4xi32>) -> tensor<1x4x2x8xf32> {
  // expected-error@+1 {{rope scaling 'llama3': low_freq_factor (4) must be at most high_freq_factor (1)}}
  %y = posenc.rope %x, %p layout half {scaling = #posenc.rope_scaling<llama3, factor = 8.0, low_freq_factor = 4.0, high_freq_factor = 1.0, original = 8192>} : tensor<1x4x2x8xf32>, tensor<4xi32>
  return %y : tensor<1x4x2x8xf32>
}

// -----

func.func @scaling_longrope_lengths(%x: tensor<1x4x2x8xf32>, %p: tensor<4xi32>) -> tensor<1x4x2x8xf32> {
  // expected-error@+1 {{rope scaling 'longrope': short_factor and long_factor must have the same length (got 4 and 3)}}
  %y = posenc.rope %x, %p layout half {scaling = #posenc.rope_scaling<longrope, short_factor = [1.0, 1.0, 1.0, 1.0], long_factor = [2.0, 2.0, 2.0], original = 4096, max_positions = 131072>} : tensor<1x4x2x8xf32>, tensor<4xi32>
  return %y : tensor<1x4x2x8xf32>
}

// -----

func.func @scaling_longrope_entry(%x: tensor<1x4x2x8xf32>, %p: tensor<4xi32>) -> tensor<1x4x2x8xf32> {
  // expected-error@+1 {{rope scaling 'longrope': long_factor[2] (-2) must be positive and finite}}
  %y = posenc.rope %x, %p layout half {scaling = #posenc.rope_scaling<longrope, short_factor = [1.0, 1.0, 1.0, 1.0], long_factor = [2.0, 2.0, -2.0, 2.0], original = 4096, max_positions = 131072>} : tensor<1x4x2x8xf32>, tensor<4xi32>
  return %y : tensor<1x4x2x8xf32>
}

// -----

func.func @scaling_zero_original(%x: tensor<1x4x2x8xf32>, %p: tensor<4xi32>) -> tensor<1x4x2x8xf32> {
  // expected-error@+1 {{rope scaling 'dynamic': original (0) must be positive}}
  %y = posenc.rope %x, %p layout half {scaling = #posenc.rope_scaling<dynamic, factor = 2.0, original = 0>} : tensor<1x4x2x8xf32>, tensor<4xi32>
  return %y : tensor<1x4x2x8xf32>
}

// -----

func.func @scaling_longrope_max_positions(%x: tensor<1x4x2x8xf32>, %p: tensor<4xi32>) -> tensor<1x4x2x8xf32> {
  // expected-error@+1 {{rope scaling 'longrope': max_positions (2048) must be >= original (4096)}}
  %y = posenc.rope %x, %p layout half {scaling = #posenc.rope_scaling<longrope, short_factor = [1.0, 1.0, 1.0, 1.0], long_factor = [2.0, 2.0, 2.0, 2.0], original = 4096, max_positions = 2048>} : tensor<1x4x2x8xf32>, tensor<4xi32>
  return %y : tensor<1x4x2x8xf32>
}

//===----------------------------------------------------------------------===//
// posenc.rope
//===----------------------------------------------------------------------===//

// -----

func.func @rope_rank(%x: tensor<4x2x8xf32>, %p: tensor<4xi32>) -> tensor<4x2x8xf32> {
  // expected-error@+1 {{'posenc.rope' op x must have rank 4 ([B, S, H, D]), got 'tensor<4x2x8xf32>'}}
  %y = posenc.rope %x, %p layout half : tensor<4x2x8xf32>, tensor<4xi32>
  return %y : tensor<4x2x8xf32>
}

// -----

func.func @rope_pos_rank(%x: tensor<1x4x2x8xf32>, %p: tensor<1x4x1xi32>) -> tensor<1x4x2x8xf32> {
  // expected-error@+1 {{'posenc.rope' op pos must be [S] or [B, S], got 'tensor<1x4x1xi32>'}}
  %y = posenc.rope %x, %p layout half : tensor<1x4x2x8xf32>, tensor<1x4x1xi32>
  return %y : tensor<1x4x2x8xf32>
}

// -----

func.func @rope_seq_mismatch(%x: tensor<1x4x2x8xf32>, %p: tensor<5xi32>) -> tensor<1x4x2x8xf32> {
  // expected-error@+1 {{'posenc.rope' op sequence length of pos (5) must equal sequence length of x (4)}}
  %y = posenc.rope %x, %p layout half : tensor<1x4x2x8xf32>, tensor<5xi32>
  return %y : tensor<1x4x2x8xf32>
}

// -----

func.func @rope_batch_mismatch(%x: tensor<2x4x2x8xf32>, %p: tensor<3x4xi64>) -> tensor<2x4x2x8xf32> {
  // expected-error@+1 {{'posenc.rope' op batch size of pos (3) must equal batch size of x (2)}}
  %y = posenc.rope %x, %p layout half : tensor<2x4x2x8xf32>, tensor<3x4xi64>
  return %y : tensor<2x4x2x8xf32>
}

// -----

func.func @rope_odd_rotary(%x: tensor<1x4x2x8xf32>, %p: tensor<4xi32>) -> tensor<1x4x2x8xf32> {
  // expected-error@+1 {{'posenc.rope' op rotary_dim (3) must be even and non-negative}}
  %y = posenc.rope %x, %p layout half {rotary_dim = 3 : i64} : tensor<1x4x2x8xf32>, tensor<4xi32>
  return %y : tensor<1x4x2x8xf32>
}

// -----

func.func @rope_negative_rotary(%x: tensor<1x4x2x8xf32>, %p: tensor<4xi32>) -> tensor<1x4x2x8xf32> {
  // expected-error@+1 {{'posenc.rope' op rotary_dim (-2) must be even and non-negative}}
  %y = posenc.rope %x, %p layout half {rotary_dim = -2 : i64} : tensor<1x4x2x8xf32>, tensor<4xi32>
  return %y : tensor<1x4x2x8xf32>
}

// -----

func.func @rope_rotary_too_big(%x: tensor<1x4x2x64xf32>, %p: tensor<4xi32>) -> tensor<1x4x2x64xf32> {
  // expected-error@+1 {{'posenc.rope' op rotary_dim (96) must be <= head dim (64)}}
  %y = posenc.rope %x, %p layout half {rotary_dim = 96 : i64} : tensor<1x4x2x64xf32>, tensor<4xi32>
  return %y : tensor<1x4x2x64xf32>
}

// -----

func.func @rope_dynamic_head_dim(%x: tensor<1x4x2x?xf32>, %p: tensor<4xi32>) -> tensor<1x4x2x?xf32> {
  // expected-error@+1 {{'posenc.rope' op rotary_dim is required when the head dim of x is dynamic}}
  %y = posenc.rope %x, %p layout half : tensor<1x4x2x?xf32>, tensor<4xi32>
  return %y : tensor<1x4x2x?xf32>
}

// -----

func.func @rope_odd_head_dim(%x: tensor<1x4x2x63xf32>, %p: tensor<4xi32>) -> tensor<1x4x2x63xf32> {
  // expected-error@+1 {{'posenc.rope' op head dim (63) must be even when rotary_dim is absent}}
  %y = posenc.rope %x, %p layout half : tensor<1x4x2x63xf32>, tensor<4xi32>
  return %y : tensor<1x4x2x63xf32>
}

// -----

func.func @rope_bad_base(%x: tensor<1x4x2x8xf32>, %p: tensor<4xi32>) -> tensor<1x4x2x8xf32> {
  // expected-error@+1 {{'posenc.rope' op base (-10000) must be positive and finite}}
  %y = posenc.rope %x, %p layout half {base = -10000.0 : f64} : tensor<1x4x2x8xf32>, tensor<4xi32>
  return %y : tensor<1x4x2x8xf32>
}

// -----

func.func @rope_bad_attention_factor(%x: tensor<1x4x2x8xf32>, %p: tensor<4xi32>) -> tensor<1x4x2x8xf32> {
  // expected-error@+1 {{'posenc.rope' op attention_factor (0) must be positive and finite}}
  %y = posenc.rope %x, %p layout half {attention_factor = 0.0 : f64} : tensor<1x4x2x8xf32>, tensor<4xi32>
  return %y : tensor<1x4x2x8xf32>
}

// -----

func.func @rope_ntk_rotary_two(%x: tensor<1x4x2x8xf32>, %p: tensor<4xi32>) -> tensor<1x4x2x8xf32> {
  // expected-error@+1 {{'posenc.rope' op ntk scaling requires rotary_dim > 2 (got 2)}}
  %y = posenc.rope %x, %p layout half {rotary_dim = 2 : i64, scaling = #posenc.rope_scaling<ntk, alpha = 2.0>} : tensor<1x4x2x8xf32>, tensor<4xi32>
  return %y : tensor<1x4x2x8xf32>
}

// -----

func.func @rope_yarn_base_one(%x: tensor<1x4x2x8xf32>, %p: tensor<4xi32>) -> tensor<1x4x2x8xf32> {
  // expected-error@+1 {{'posenc.rope' op yarn scaling requires base > 1 (got 1)}}
  %y = posenc.rope %x, %p layout half {base = 1.0 : f64, scaling = #posenc.rope_scaling<yarn, factor = 4.0, original = 4096>} : tensor<1x4x2x8xf32>, tensor<4xi32>
  return %y : tensor<1x4x2x8xf32>
}

// -----

func.func @rope_longrope_length(%x: tensor<1x4x2x16xf32>, %p: tensor<4xi32>) -> tensor<1x4x2x16xf32> {
  // expected-error@+1 {{'posenc.rope' op longrope short_factor and long_factor have 4 entries but rotary_dim/2 is 8}}
  %y = posenc.rope %x, %p layout half {scaling = #posenc.rope_scaling<longrope, short_factor = [1.0, 1.0, 1.0, 1.0], long_factor = [2.0, 2.0, 2.0, 2.0], original = 4096, max_positions = 131072>} : tensor<1x4x2x16xf32>, tensor<4xi32>
  return %y : tensor<1x4x2x16xf32>
}

// -----

func.func @rope_int_x(%x: tensor<1x4x2x8xi32>, %p: tensor<4xi32>) -> tensor<1x4x2x8xi32> {
  // expected-error@+1 {{'posenc.rope' op operand #0 must be ranked tensor of 32-bit float or 16-bit float or bfloat16 type or 64-bit float values, but got 'tensor<1x4x2x8xi32>'}}
  %y = posenc.rope %x, %p layout half : tensor<1x4x2x8xi32>, tensor<4xi32>
  return %y : tensor<1x4x2x8xi32>
}

// -----

func.func @rope_float_pos(%x: tensor<1x4x2x8xf32>, %p: tensor<4xf32>) -> tensor<1x4x2x8xf32> {
  // expected-error@+1 {{'posenc.rope' op operand #1 must be ranked tensor of 32-bit signless integer or 64-bit signless integer values, but got 'tensor<4xf32>'}}
  %y = posenc.rope %x, %p layout half : tensor<1x4x2x8xf32>, tensor<4xf32>
  return %y : tensor<1x4x2x8xf32>
}

// -----

func.func @rope_result_type(%x: tensor<1x4x2x8xf32>, %p: tensor<4xi32>) -> tensor<1x4x2x8xf16> {
  // expected-error@+1 {{'posenc.rope' op failed to verify that all of {x, result} have same type}}
  %y = "posenc.rope"(%x, %p) <{layout = #posenc<layout half>, base = 10000.0 : f64}> : (tensor<1x4x2x8xf32>, tensor<4xi32>) -> tensor<1x4x2x8xf16>
  return %y : tensor<1x4x2x8xf16>
}

//===----------------------------------------------------------------------===//
// posenc.sinusoidal
//===----------------------------------------------------------------------===//

// -----

func.func @sinusoidal_result_rank(%p: tensor<16xi32>) -> tensor<16xf32> {
  // expected-error@+1 {{'posenc.sinusoidal' op result must have rank 2 ([..., S, D]: the rank of pos plus one), got 'tensor<16xf32>'}}
  %y = posenc.sinusoidal %p layout half {dim = 16 : i64} : tensor<16xi32> -> tensor<16xf32>
  return %y : tensor<16xf32>
}

// -----

func.func @sinusoidal_prefix(%p: tensor<2x16xi32>) -> tensor<2x8x16xf32> {
  // expected-error@+1 {{'posenc.sinusoidal' op dim 1 of result (8) must equal dim 1 of pos (16)}}
  %y = posenc.sinusoidal %p layout half {dim = 16 : i64} : tensor<2x16xi32> -> tensor<2x8x16xf32>
  return %y : tensor<2x8x16xf32>
}

// -----

func.func @sinusoidal_odd_dim(%p: tensor<16xi32>) -> tensor<16x7xf32> {
  // expected-error@+1 {{'posenc.sinusoidal' op dim (7) must be positive and even (convention vaswani; fairseq and marian take odd dims)}}
  %y = posenc.sinusoidal %p layout interleaved {dim = 7 : i64} : tensor<16xi32> -> tensor<16x7xf32>
  return %y : tensor<16x7xf32>
}

// -----

func.func @sinusoidal_fairseq_small(%p: tensor<16xi32>) -> tensor<16x3xf32> {
  // expected-error@+1 {{'posenc.sinusoidal' op dim (3) must be at least 4 with convention fairseq (its exponent divides by floor(dim/2) - 1)}}
  %y = posenc.sinusoidal %p layout half convention fairseq {dim = 3 : i64} : tensor<16xi32> -> tensor<16x3xf32>
  return %y : tensor<16x3xf32>
}

// -----

func.func @sinusoidal_marian_interleaved(%p: tensor<16xi32>) -> tensor<16x8xf32> {
  // expected-error@+1 {{'posenc.sinusoidal' op convention marian puts all sines before all cosines: layout must be half, got interleaved}}
  %y = posenc.sinusoidal %p layout interleaved convention marian {dim = 8 : i64} : tensor<16xi32> -> tensor<16x8xf32>
  return %y : tensor<16x8xf32>
}

// -----

func.func @sinusoidal_marian_zero(%p: tensor<16xi32>) -> tensor<16x0xf32> {
  // expected-error@+1 {{'posenc.sinusoidal' op dim (0) must be positive}}
  %y = posenc.sinusoidal %p layout half convention marian {dim = 0 : i64} : tensor<16xi32> -> tensor<16x0xf32>
  return %y : tensor<16x0xf32>
}

// -----

func.func @sinusoidal_unknown_convention(%p: tensor<16xi32>) -> tensor<16x8xf32> {
  // expected-error@+2 {{expected ::mlir::posenc::SinusoidalConvention to be one of: vaswani, fairseq, marian}}
  // expected-error@+1 {{failed to parse Posenc_SinusoidalConventionAttr parameter 'value'}}
  %y = posenc.sinusoidal %p layout half convention t2t {dim = 8 : i64} : tensor<16xi32> -> tensor<16x8xf32>
  return %y : tensor<16x8xf32>
}

// -----

func.func @sinusoidal_last_dim(%p: tensor<16xi32>) -> tensor<16x32xf32> {
  // expected-error@+1 {{'posenc.sinusoidal' op last dim of result (32) must equal dim (16)}}
  %y = posenc.sinusoidal %p layout interleaved {dim = 16 : i64} : tensor<16xi32> -> tensor<16x32xf32>
  return %y : tensor<16x32xf32>
}

// -----

func.func @sinusoidal_base(%p: tensor<16xi32>) -> tensor<16x16xf32> {
  // expected-error@+1 {{'posenc.sinusoidal' op base (0) must be positive and finite}}
  %y = posenc.sinusoidal %p layout interleaved {dim = 16 : i64, base = 0.0 : f64} : tensor<16xi32> -> tensor<16x16xf32>
  return %y : tensor<16x16xf32>
}

// -----

func.func @sinusoidal_scalar_pos(%p: tensor<i32>) -> tensor<16xf32> {
  // expected-error@+1 {{'posenc.sinusoidal' op pos must have rank >= 1 ([..., S]), got a scalar}}
  %y = posenc.sinusoidal %p layout interleaved {dim = 16 : i64} : tensor<i32> -> tensor<16xf32>
  return %y : tensor<16xf32>
}

//===----------------------------------------------------------------------===//
// posenc.alibi_bias
//===----------------------------------------------------------------------===//

// -----

func.func @alibi_zero_heads(%q: tensor<8xi32>, %k: tensor<8xi32>) -> tensor<0x8x8xf32> {
  // expected-error@+1 {{'posenc.alibi_bias' op num_heads (0) must be positive}}
  %b = posenc.alibi_bias %q, %k mode causal {num_heads = 0 : i64} : tensor<8xi32>, tensor<8xi32> -> tensor<0x8x8xf32>
  return %b : tensor<0x8x8xf32>
}

// -----

func.func @alibi_heads_unknown(%q: tensor<8xi32>, %k: tensor<8xi32>) -> tensor<?x8x8xf32> {
  // expected-error@+1 {{'posenc.alibi_bias' op needs num_heads when the result type ('tensor<?x8x8xf32>') has no static head dim}}
  %b = posenc.alibi_bias %q, %k mode causal : tensor<8xi32>, tensor<8xi32> -> tensor<?x8x8xf32>
  return %b : tensor<?x8x8xf32>
}

// -----

func.func @alibi_slopes_without_heads(%q: tensor<8xi32>, %k: tensor<8xi32>) -> tensor<2x8x8xf32> {
  // expected-error@+1 {{'posenc.alibi_bias' op slopes has 3 entries but num_heads is 2}}
  %b = posenc.alibi_bias %q, %k mode causal {slopes = array<f64: 0.5, 0.25, 0.125>} : tensor<8xi32>, tensor<8xi32> -> tensor<2x8x8xf32>
  return %b : tensor<2x8x8xf32>
}

// -----

func.func @alibi_max_bias(%q: tensor<8xi32>, %k: tensor<8xi32>) -> tensor<4x8x8xf32> {
  // expected-error@+1 {{'posenc.alibi_bias' op max_bias (-8) must be positive and finite}}
  %b = posenc.alibi_bias %q, %k mode causal {num_heads = 4 : i64, max_bias = -8.0 : f64} : tensor<8xi32>, tensor<8xi32> -> tensor<4x8x8xf32>
  return %b : tensor<4x8x8xf32>
}

// -----

func.func @alibi_slopes_count(%q: tensor<8xi32>, %k: tensor<8xi32>) -> tensor<4x8x8xf32> {
  // expected-error@+1 {{'posenc.alibi_bias' op slopes has 3 entries but num_heads is 4}}
  %b = posenc.alibi_bias %q, %k mode causal {num_heads = 4 : i64, slopes = array<f64: 0.5, 0.25, 0.125>} : tensor<8xi32>, tensor<8xi32> -> tensor<4x8x8xf32>
  return %b : tensor<4x8x8xf32>
}

// -----

func.func @alibi_slopes_nan(%q: tensor<8xi32>, %k: tensor<8xi32>) -> tensor<2x8x8xf32> {
  // expected-error@+1 {{'posenc.alibi_bias' op slopes[1] (nan) must be finite}}
  %b = posenc.alibi_bias %q, %k mode causal {num_heads = 2 : i64, slopes = array<f64: 0.5, 0x7FF8000000000000>} : tensor<8xi32>, tensor<8xi32> -> tensor<2x8x8xf32>
  return %b : tensor<2x8x8xf32>
}

// -----

func.func @alibi_batched_rank(%q: tensor<2x8xi32>, %k: tensor<8xi32>) -> tensor<4x8x8xf32> {
  // expected-error@+1 {{'posenc.alibi_bias' op result must have rank 4 ([B, H, Sq, Sk] since a position tensor is batched), got 'tensor<4x8x8xf32>'}}
  %b = posenc.alibi_bias %q, %k mode causal {num_heads = 4 : i64} : tensor<2x8xi32>, tensor<8xi32> -> tensor<4x8x8xf32>
  return %b : tensor<4x8x8xf32>
}

// -----

func.func @alibi_unbatched_rank(%q: tensor<8xi32>, %k: tensor<8xi32>) -> tensor<1x4x8x8xf32> {
  // expected-error@+1 {{'posenc.alibi_bias' op result must have rank 3 ([H, Sq, Sk]), got 'tensor<1x4x8x8xf32>'}}
  %b = posenc.alibi_bias %q, %k mode causal {num_heads = 4 : i64} : tensor<8xi32>, tensor<8xi32> -> tensor<1x4x8x8xf32>
  return %b : tensor<1x4x8x8xf32>
}

// -----

func.func @alibi_heads(%q: tensor<8xi32>, %k: tensor<8xi32>) -> tensor<8x8x8xf32> {
  // expected-error@+1 {{'posenc.alibi_bias' op number of heads of result (8) must equal num_heads (4)}}
  %b = posenc.alibi_bias %q, %k mode causal {num_heads = 4 : i64} : tensor<8xi32>, tensor<8xi32> -> tensor<8x8x8xf32>
  return %b : tensor<8x8x8xf32>
}

// -----

func.func @alibi_query_length(%q: tensor<8xi32>, %k: tensor<8xi32>) -> tensor<4x7x8xf32> {
  // expected-error@+1 {{'posenc.alibi_bias' op query length of result (7) must equal query length of q_pos (8)}}
  %b = posenc.alibi_bias %q, %k mode causal {num_heads = 4 : i64} : tensor<8xi32>, tensor<8xi32> -> tensor<4x7x8xf32>
  return %b : tensor<4x7x8xf32>
}

// -----

func.func @alibi_key_length(%q: tensor<8xi32>, %k: tensor<9xi32>) -> tensor<4x8x8xf32> {
  // expected-error@+1 {{'posenc.alibi_bias' op key length of result (8) must equal key length of k_pos (9)}}
  %b = posenc.alibi_bias %q, %k mode causal {num_heads = 4 : i64} : tensor<8xi32>, tensor<9xi32> -> tensor<4x8x8xf32>
  return %b : tensor<4x8x8xf32>
}

// -----

func.func @alibi_batch(%q: tensor<2x8xi32>, %k: tensor<3x8xi32>) -> tensor<2x4x8x8xf32> {
  // expected-error@+1 {{'posenc.alibi_bias' op batch size of k_pos (3) must equal batch size of result (2)}}
  %b = posenc.alibi_bias %q, %k mode causal {num_heads = 4 : i64} : tensor<2x8xi32>, tensor<3x8xi32> -> tensor<2x4x8x8xf32>
  return %b : tensor<2x4x8x8xf32>
}

// -----

func.func @alibi_pos_rank(%q: tensor<1x2x8xi32>, %k: tensor<8xi32>) -> tensor<4x8x8xf32> {
  // expected-error@+1 {{'posenc.alibi_bias' op q_pos must be [S] or [B, S], got 'tensor<1x2x8xi32>'}}
  %b = posenc.alibi_bias %q, %k mode causal {num_heads = 4 : i64} : tensor<1x2x8xi32>, tensor<8xi32> -> tensor<4x8x8xf32>
  return %b : tensor<4x8x8xf32>
}

//===----------------------------------------------------------------------===//
// posenc.rel_bias
//===----------------------------------------------------------------------===//

// -----

func.func @rel_bias_table_rank(%t: tensor<32xf32>, %q: tensor<8xi32>) -> tensor<4x8x8xf32> {
  // expected-error@+1 {{'posenc.rel_bias' op table must have rank 2 ([num_buckets, H]), got 'tensor<32xf32>'}}
  %b = posenc.rel_bias %t, %q, %q kind t5 {num_buckets = 32 : i64, max_distance = 128 : i64} : tensor<32xf32>, tensor<8xi32>, tensor<8xi32> -> tensor<4x8x8xf32>
  return %b : tensor<4x8x8xf32>
}

// -----

func.func @rel_bias_t5_needs_buckets(%t: tensor<32x4xf32>, %q: tensor<8xi32>) -> tensor<4x8x8xf32> {
  // expected-error@+1 {{'posenc.rel_bias' op kind t5 requires num_buckets}}
  %b = posenc.rel_bias %t, %q, %q kind t5 {max_distance = 128 : i64} : tensor<32x4xf32>, tensor<8xi32>, tensor<8xi32> -> tensor<4x8x8xf32>
  return %b : tensor<4x8x8xf32>
}

// -----

func.func @rel_bias_t5_odd_buckets(%t: tensor<31x4xf32>, %q: tensor<8xi32>) -> tensor<4x8x8xf32> {
  // expected-error@+1 {{'posenc.rel_bias' op num_buckets (31) must be even and >= 4 when bidirectional}}
  %b = posenc.rel_bias %t, %q, %q kind t5 {num_buckets = 31 : i64, max_distance = 128 : i64} : tensor<31x4xf32>, tensor<8xi32>, tensor<8xi32> -> tensor<4x8x8xf32>
  return %b : tensor<4x8x8xf32>
}

// -----

func.func @rel_bias_t5_one_bucket(%t: tensor<1x4xf32>, %q: tensor<8xi32>) -> tensor<4x8x8xf32> {
  // expected-error@+1 {{'posenc.rel_bias' op num_buckets (1) must be >= 2}}
  %b = posenc.rel_bias %t, %q, %q kind t5 {num_buckets = 1 : i64, max_distance = 128 : i64, bidirectional = false} : tensor<1x4xf32>, tensor<8xi32>, tensor<8xi32> -> tensor<4x8x8xf32>
  return %b : tensor<4x8x8xf32>
}

// -----

func.func @rel_bias_t5_short_distance(%t: tensor<32x4xf32>, %q: tensor<8xi32>) -> tensor<4x8x8xf32> {
  // expected-error@+1 {{'posenc.rel_bias' op max_distance (8) must exceed the exact-bucket range (8) of num_buckets (32)}}
  %b = posenc.rel_bias %t, %q, %q kind t5 {num_buckets = 32 : i64, max_distance = 8 : i64} : tensor<32x4xf32>, tensor<8xi32>, tensor<8xi32> -> tensor<4x8x8xf32>
  return %b : tensor<4x8x8xf32>
}

// -----

func.func @rel_bias_clip_buckets(%t: tensor<33x4xf32>, %q: tensor<8xi32>) -> tensor<4x8x8xf32> {
  // expected-error@+1 {{'posenc.rel_bias' op num_buckets is only used by kind t5; kind clip has 2*max_distance+1 buckets (max_distance+1 if unidirectional)}}
  %b = posenc.rel_bias %t, %q, %q kind clip {num_buckets = 33 : i64, max_distance = 16 : i64} : tensor<33x4xf32>, tensor<8xi32>, tensor<8xi32> -> tensor<4x8x8xf32>
  return %b : tensor<4x8x8xf32>
}

// -----

func.func @rel_bias_clip_negative(%t: tensor<1x4xf32>, %q: tensor<8xi32>) -> tensor<4x8x8xf32> {
  // expected-error@+1 {{'posenc.rel_bias' op max_distance (-1) must be non-negative}}
  %b = posenc.rel_bias %t, %q, %q kind clip {max_distance = -1 : i64} : tensor<1x4xf32>, tensor<8xi32>, tensor<8xi32> -> tensor<4x8x8xf32>
  return %b : tensor<4x8x8xf32>
}

// -----

func.func @rel_bias_t5_rows(%t: tensor<30x4xf32>, %q: tensor<8xi32>) -> tensor<4x8x8xf32> {
  // expected-error@+1 {{'posenc.rel_bias' op table has 30 rows but kind t5 (bidirectional) with max_distance 128 and num_buckets 32 needs 32}}
  %b = posenc.rel_bias %t, %q, %q kind t5 {num_buckets = 32 : i64, max_distance = 128 : i64} : tensor<30x4xf32>, tensor<8xi32>, tensor<8xi32> -> tensor<4x8x8xf32>
  return %b : tensor<4x8x8xf32>
}

// -----

func.func @rel_bias_clip_rows(%t: tensor<33x4xf32>, %q: tensor<8xi32>) -> tensor<4x8x8xf32> {
  // expected-error@+1 {{'posenc.rel_bias' op table has 33 rows but kind clip (unidirectional) with max_distance 16 needs 17}}
  %b = posenc.rel_bias %t, %q, %q kind clip {max_distance = 16 : i64, bidirectional = false} : tensor<33x4xf32>, tensor<8xi32>, tensor<8xi32> -> tensor<4x8x8xf32>
  return %b : tensor<4x8x8xf32>
}

// -----

func.func @rel_bias_heads(%t: tensor<32x4xf32>, %q: tensor<8xi32>) -> tensor<8x8x8xf32> {
  // expected-error@+1 {{'posenc.rel_bias' op number of heads of result (8) must equal number of heads of table (4)}}
  %b = posenc.rel_bias %t, %q, %q kind t5 {num_buckets = 32 : i64, max_distance = 128 : i64} : tensor<32x4xf32>, tensor<8xi32>, tensor<8xi32> -> tensor<8x8x8xf32>
  return %b : tensor<8x8x8xf32>
}

//===----------------------------------------------------------------------===//
// posenc.rel_key_bias
//===----------------------------------------------------------------------===//

// -----

func.func @rel_key_q_rank(%q: tensor<8x4x16xf32>, %e: tensor<9x16xf32>, %p: tensor<8xi32>) -> tensor<1x4x8x8xf32> {
  // expected-error@+1 {{'posenc.rel_key_bias' op q must have rank 4 ([B, Sq, H, D]), got 'tensor<8x4x16xf32>'}}
  %b = posenc.rel_key_bias %q, %e, %p, %p {max_distance = 4 : i64} : tensor<8x4x16xf32>, tensor<9x16xf32>, tensor<8xi32>, tensor<8xi32> -> tensor<1x4x8x8xf32>
  return %b : tensor<1x4x8x8xf32>
}

// -----

func.func @rel_key_emb_rank(%q: tensor<1x8x4x16xf32>, %e: tensor<9x4x16x1xf32>, %p: tensor<8xi32>) -> tensor<1x4x8x8xf32> {
  // expected-error@+1 {{'posenc.rel_key_bias' op emb must be [2*max_distance+1, D] or [2*max_distance+1, H, D], got 'tensor<9x4x16x1xf32>'}}
  %b = posenc.rel_key_bias %q, %e, %p, %p {max_distance = 4 : i64} : tensor<1x8x4x16xf32>, tensor<9x4x16x1xf32>, tensor<8xi32>, tensor<8xi32> -> tensor<1x4x8x8xf32>
  return %b : tensor<1x4x8x8xf32>
}

// -----

func.func @rel_key_emb_heads(%q: tensor<1x8x4x16xf32>, %e: tensor<9x3x16xf32>, %p: tensor<8xi32>) -> tensor<1x4x8x8xf32> {
  // expected-error@+1 {{'posenc.rel_key_bias' op number of heads of emb (3) must equal number of heads of q (4)}}
  %b = posenc.rel_key_bias %q, %e, %p, %p {max_distance = 4 : i64} : tensor<1x8x4x16xf32>, tensor<9x3x16xf32>, tensor<8xi32>, tensor<8xi32> -> tensor<1x4x8x8xf32>
  return %b : tensor<1x4x8x8xf32>
}

// -----

func.func @rel_key_types(%q: tensor<1x8x4x16xf32>, %e: tensor<9x16xbf16>, %p: tensor<8xi32>) -> tensor<1x4x8x8xf32> {
  // expected-error@+1 {{'posenc.rel_key_bias' op element type of emb ('bf16') must equal element type of q ('f32')}}
  %b = posenc.rel_key_bias %q, %e, %p, %p {max_distance = 4 : i64} : tensor<1x8x4x16xf32>, tensor<9x16xbf16>, tensor<8xi32>, tensor<8xi32> -> tensor<1x4x8x8xf32>
  return %b : tensor<1x4x8x8xf32>
}

// -----

func.func @rel_key_negative(%q: tensor<1x8x4x16xf32>, %e: tensor<9x16xf32>, %p: tensor<8xi32>) -> tensor<1x4x8x8xf32> {
  // expected-error@+1 {{'posenc.rel_key_bias' op max_distance (-4) must be non-negative}}
  %b = posenc.rel_key_bias %q, %e, %p, %p {max_distance = -4 : i64} : tensor<1x8x4x16xf32>, tensor<9x16xf32>, tensor<8xi32>, tensor<8xi32> -> tensor<1x4x8x8xf32>
  return %b : tensor<1x4x8x8xf32>
}

// -----

func.func @rel_key_rows(%q: tensor<1x8x4x16xf32>, %e: tensor<8x16xf32>, %p: tensor<8xi32>) -> tensor<1x4x8x8xf32> {
  // expected-error@+1 {{'posenc.rel_key_bias' op emb has 8 rows but max_distance 4 needs 9}}
  %b = posenc.rel_key_bias %q, %e, %p, %p {max_distance = 4 : i64} : tensor<1x8x4x16xf32>, tensor<8x16xf32>, tensor<8xi32>, tensor<8xi32> -> tensor<1x4x8x8xf32>
  return %b : tensor<1x4x8x8xf32>
}

// -----

func.func @rel_key_head_dim(%q: tensor<1x8x4x16xf32>, %e: tensor<9x32xf32>, %p: tensor<8xi32>) -> tensor<1x4x8x8xf32> {
  // expected-error@+1 {{'posenc.rel_key_bias' op head dim of emb (32) must equal head dim of q (16)}}
  %b = posenc.rel_key_bias %q, %e, %p, %p {max_distance = 4 : i64} : tensor<1x8x4x16xf32>, tensor<9x32xf32>, tensor<8xi32>, tensor<8xi32> -> tensor<1x4x8x8xf32>
  return %b : tensor<1x4x8x8xf32>
}

// -----

func.func @rel_key_result_rank(%q: tensor<1x8x4x16xf32>, %e: tensor<9x16xf32>, %p: tensor<8xi32>) -> tensor<4x8x8xf32> {
  // expected-error@+1 {{'posenc.rel_key_bias' op result must have rank 4 ([B, H, Sq, Sk]), got 'tensor<4x8x8xf32>'}}
  %b = posenc.rel_key_bias %q, %e, %p, %p {max_distance = 4 : i64} : tensor<1x8x4x16xf32>, tensor<9x16xf32>, tensor<8xi32>, tensor<8xi32> -> tensor<4x8x8xf32>
  return %b : tensor<4x8x8xf32>
}

// -----

func.func @rel_key_heads(%q: tensor<1x8x4x16xf32>, %e: tensor<9x16xf32>, %p: tensor<8xi32>) -> tensor<1x2x8x8xf32> {
  // expected-error@+1 {{'posenc.rel_key_bias' op number of heads of result (2) must equal number of heads of q (4)}}
  %b = posenc.rel_key_bias %q, %e, %p, %p {max_distance = 4 : i64} : tensor<1x8x4x16xf32>, tensor<9x16xf32>, tensor<8xi32>, tensor<8xi32> -> tensor<1x2x8x8xf32>
  return %b : tensor<1x2x8x8xf32>
}

// -----

func.func @rel_key_query_length(%q: tensor<1x8x4x16xf32>, %e: tensor<9x16xf32>, %p: tensor<6xi32>) -> tensor<1x4x8x6xf32> {
  // expected-error@+1 {{'posenc.rel_key_bias' op query length of q_pos (6) must equal query length of q (8)}}
  %b = posenc.rel_key_bias %q, %e, %p, %p {max_distance = 4 : i64} : tensor<1x8x4x16xf32>, tensor<9x16xf32>, tensor<6xi32>, tensor<6xi32> -> tensor<1x4x8x6xf32>
  return %b : tensor<1x4x8x6xf32>
}

//===----------------------------------------------------------------------===//
// posenc.attention
//===----------------------------------------------------------------------===//

// -----

func.func @attention_rank(%q: tensor<8x4x16xf32>, %k: tensor<1x8x4x16xf32>) -> tensor<1x8x4x16xf32> {
  %init_o = tensor.empty() : tensor<1x8x4x16xf32>
  // expected-error@+1 {{'posenc.attention' op q must have rank 4 ([B, Sq, Hq, Dk]), got 'tensor<8x4x16xf32>'}}
  %o = posenc.attention %q, %k, %k outs(%init_o) : tensor<8x4x16xf32>, tensor<1x8x4x16xf32>, tensor<1x8x4x16xf32>, tensor<1x8x4x16xf32>
  return %o : tensor<1x8x4x16xf32>
}

// -----

func.func @attention_types(%q: tensor<1x8x4x16xf32>, %k: tensor<1x8x4x16xf16>) -> tensor<1x8x4x16xf32> {
  %init_o = tensor.empty() : tensor<1x8x4x16xf32>
  // expected-error@+1 {{'posenc.attention' op element type of k ('f16') must equal element type of q ('f32')}}
  %o = posenc.attention %q, %k, %k outs(%init_o) : tensor<1x8x4x16xf32>, tensor<1x8x4x16xf16>, tensor<1x8x4x16xf16>, tensor<1x8x4x16xf32>
  return %o : tensor<1x8x4x16xf32>
}

// -----

func.func @attention_scale(%q: tensor<1x8x4x16xf32>) -> tensor<1x8x4x16xf32> {
  %init_o = tensor.empty() : tensor<1x8x4x16xf32>
  // expected-error@+1 {{'posenc.attention' op scale (0) must be positive and finite}}
  %o = posenc.attention %q, %q, %q outs(%init_o) {scale = 0.0 : f64} : tensor<1x8x4x16xf32>, tensor<1x8x4x16xf32>, tensor<1x8x4x16xf32>, tensor<1x8x4x16xf32>
  return %o : tensor<1x8x4x16xf32>
}

// -----

func.func @attention_batch(%q: tensor<1x8x4x16xf32>, %k: tensor<2x8x4x16xf32>) -> tensor<1x8x4x16xf32> {
  %init_o = tensor.empty() : tensor<1x8x4x16xf32>
  // expected-error@+1 {{'posenc.attention' op batch size of k (2) must equal batch size of q (1)}}
  %o = posenc.attention %q, %k, %k outs(%init_o) : tensor<1x8x4x16xf32>, tensor<2x8x4x16xf32>, tensor<2x8x4x16xf32>, tensor<1x8x4x16xf32>
  return %o : tensor<1x8x4x16xf32>
}

// -----

func.func @attention_key_dim(%q: tensor<1x8x4x16xf32>, %k: tensor<1x8x4x32xf32>, %v: tensor<1x8x4x16xf32>) -> tensor<1x8x4x16xf32> {
  %init_o = tensor.empty() : tensor<1x8x4x16xf32>
  // expected-error@+1 {{'posenc.attention' op key head dim of k (32) must equal key head dim of q (16)}}
  %o = posenc.attention %q, %k, %v outs(%init_o) : tensor<1x8x4x16xf32>, tensor<1x8x4x32xf32>, tensor<1x8x4x16xf32>, tensor<1x8x4x16xf32>
  return %o : tensor<1x8x4x16xf32>
}

// -----

func.func @attention_key_length(%q: tensor<1x8x4x16xf32>, %k: tensor<1x8x4x16xf32>, %v: tensor<1x9x4x16xf32>) -> tensor<1x8x4x16xf32> {
  %init_o = tensor.empty() : tensor<1x8x4x16xf32>
  // expected-error@+1 {{'posenc.attention' op key length of v (9) must equal key length of k (8)}}
  %o = posenc.attention %q, %k, %v outs(%init_o) : tensor<1x8x4x16xf32>, tensor<1x8x4x16xf32>, tensor<1x9x4x16xf32>, tensor<1x8x4x16xf32>
  return %o : tensor<1x8x4x16xf32>
}

// -----

func.func @attention_kv_heads(%q: tensor<1x8x4x16xf32>, %k: tensor<1x8x4x16xf32>, %v: tensor<1x8x2x16xf32>) -> tensor<1x8x4x16xf32> {
  %init_o = tensor.empty() : tensor<1x8x4x16xf32>
  // expected-error@+1 {{'posenc.attention' op number of kv heads of v (2) must equal number of kv heads of k (4)}}
  %o = posenc.attention %q, %k, %v outs(%init_o) : tensor<1x8x4x16xf32>, tensor<1x8x4x16xf32>, tensor<1x8x2x16xf32>, tensor<1x8x4x16xf32>
  return %o : tensor<1x8x4x16xf32>
}

// -----

func.func @attention_gqa(%q: tensor<1x8x6x16xf32>, %k: tensor<1x8x4x16xf32>) -> tensor<1x8x6x16xf32> {
  %init_o = tensor.empty() : tensor<1x8x6x16xf32>
  // expected-error@+1 {{'posenc.attention' op number of query heads (6) must be a multiple of the number of kv heads (4)}}
  %o = posenc.attention %q, %k, %k outs(%init_o) : tensor<1x8x6x16xf32>, tensor<1x8x4x16xf32>, tensor<1x8x4x16xf32>, tensor<1x8x6x16xf32>
  return %o : tensor<1x8x6x16xf32>
}

// -----

func.func @attention_empty_key_head_dim(%q: tensor<1x4x2x0xf32>, %k: tensor<1x5x2x0xf32>, %v: tensor<1x5x2x3xf32>) -> tensor<1x4x2x3xf32> {
  %init_o = tensor.empty() : tensor<1x4x2x3xf32>
  // expected-error@+1 {{'posenc.attention' op key head dim Dk must be >= 1 (q 'tensor<1x4x2x0xf32>', k 'tensor<1x5x2x0xf32>')}}
  %o = posenc.attention %q, %k, %v outs(%init_o) : tensor<1x4x2x0xf32>, tensor<1x5x2x0xf32>, tensor<1x5x2x3xf32>, tensor<1x4x2x3xf32>
  return %o : tensor<1x4x2x3xf32>
}

// -----

func.func @attention_bias_rank(%q: tensor<1x8x4x16xf32>, %b: tensor<1x1x4x8x8xf32>) -> tensor<1x8x4x16xf32> {
  %init_o = tensor.empty() : tensor<1x8x4x16xf32>
  // expected-error@+1 {{'posenc.attention' op bias must have rank <= 4 (broadcast to [B, Hq, Sq, Sk]), got rank 5}}
  %o = posenc.attention %q, %q, %q bias(%b : tensor<1x1x4x8x8xf32>) outs(%init_o) : tensor<1x8x4x16xf32>, tensor<1x8x4x16xf32>, tensor<1x8x4x16xf32>, tensor<1x8x4x16xf32>
  return %o : tensor<1x8x4x16xf32>
}

// -----

func.func @attention_bias_broadcast(%q: tensor<1x8x4x16xf32>, %b: tensor<3x8x8xf32>) -> tensor<1x8x4x16xf32> {
  %init_o = tensor.empty() : tensor<1x8x4x16xf32>
  // expected-error@+1 {{'posenc.attention' op bias 'tensor<3x8x8xf32>' does not broadcast to [B, Hq, Sq, Sk]: dim 0 (3) must be 1 or Hq (4)}}
  %o = posenc.attention %q, %q, %q bias(%b : tensor<3x8x8xf32>) outs(%init_o) : tensor<1x8x4x16xf32>, tensor<1x8x4x16xf32>, tensor<1x8x4x16xf32>, tensor<1x8x4x16xf32>
  return %o : tensor<1x8x4x16xf32>
}

// -----

func.func @attention_value_dim(%q: tensor<1x8x4x16xf32>, %v: tensor<1x8x4x32xf32>) -> tensor<1x8x4x16xf32> {
  %init_o = tensor.empty() : tensor<1x8x4x16xf32>
  // expected-error@+1 {{'posenc.attention' op value head dim of init (16) must equal value head dim of v (32)}}
  %o = posenc.attention %q, %q, %v outs(%init_o) : tensor<1x8x4x16xf32>, tensor<1x8x4x16xf32>, tensor<1x8x4x32xf32>, tensor<1x8x4x16xf32>
  return %o : tensor<1x8x4x16xf32>
}

// -----

func.func @attention_score_mod_args(%q: tensor<1x8x4x16xf32>) -> tensor<1x8x4x16xf32> {
  %init_o = tensor.empty() : tensor<1x8x4x16xf32>
  // expected-error@+1 {{'posenc.attention' op score_mod block must take (score: f32, b, h, i, j: index), got ('f32', 'index', 'index')}}
  %o = posenc.attention %q, %q, %q outs(%init_o) : tensor<1x8x4x16xf32>, tensor<1x8x4x16xf32>, tensor<1x8x4x16xf32>, tensor<1x8x4x16xf32> score_mod {
  ^bb0(%s: f32, %i: index, %j: index):
    posenc.yield %s : f32
  }
  return %o : tensor<1x8x4x16xf32>
}

// -----

func.func @attention_score_mod_yield(%q: tensor<1x8x4x16xf32>) -> tensor<1x8x4x16xf32> {
  %init_o = tensor.empty() : tensor<1x8x4x16xf32>
  // expected-error@+1 {{'posenc.attention' op score_mod must yield an f32 score, got 'f64'}}
  %o = posenc.attention %q, %q, %q outs(%init_o) : tensor<1x8x4x16xf32>, tensor<1x8x4x16xf32>, tensor<1x8x4x16xf32>, tensor<1x8x4x16xf32> score_mod {
  ^bb0(%s: f32, %b: index, %h: index, %i: index, %j: index):
    %d = arith.extf %s : f32 to f64
    posenc.yield %d : f64
  }
  return %o : tensor<1x8x4x16xf32>
}

// -----

func.func @attention_score_mod_terminator(%q: tensor<1x8x4x16xf32>) -> tensor<1x8x4x16xf32> {
  %init_o = tensor.empty() : tensor<1x8x4x16xf32>
  %o = posenc.attention %q, %q, %q outs(%init_o) : tensor<1x8x4x16xf32>, tensor<1x8x4x16xf32>, tensor<1x8x4x16xf32>, tensor<1x8x4x16xf32> score_mod {
  ^bb0(%s: f32, %b: index, %h: index, %i: index, %j: index):
    // expected-error@+1 {{block with no terminator}}
    %d = arith.addf %s, %s : f32
  }
  return %o : tensor<1x8x4x16xf32>
}

// -----

func.func @yield_outside_attention(%s: f32) {
  // expected-error@+1 {{'posenc.yield' op expects parent op to be one of 'posenc.attention, posenc.online_attention'}}
  posenc.yield %s : f32
}

//===----------------------------------------------------------------------===//
// posenc.mla_absorb
//===----------------------------------------------------------------------===//

// -----

func.func @mla_ckv_rank(%qn: tensor<1x4x2x16xf32>, %qr: tensor<1x4x2x8xf32>, %c: tensor<4x32xf32>, %kr: tensor<1x4x8xf32>, %wk: tensor<2x16x32xf32>, %wv: tensor<2x16x32xf32>) -> tensor<1x4x2x16xf32> {
  // expected-error@+1 {{'posenc.mla_absorb' op c_kv must have rank 3 ([B, Sk, C]), got 'tensor<4x32xf32>'}}
  %o = posenc.mla_absorb %qn, %qr, %c, %kr, %wk, %wv : tensor<1x4x2x16xf32>, tensor<1x4x2x8xf32>, tensor<4x32xf32>, tensor<1x4x8xf32>, tensor<2x16x32xf32>, tensor<2x16x32xf32> -> tensor<1x4x2x16xf32>
  return %o : tensor<1x4x2x16xf32>
}

// -----

func.func @mla_latent(%qn: tensor<1x4x2x16xf32>, %qr: tensor<1x4x2x8xf32>, %c: tensor<1x4x32xf32>, %kr: tensor<1x4x8xf32>, %wk: tensor<2x16x64xf32>, %wv: tensor<2x16x32xf32>) -> tensor<1x4x2x16xf32> {
  // expected-error@+1 {{'posenc.mla_absorb' op latent dim of w_uk (64) must equal latent dim of c_kv (32)}}
  %o = posenc.mla_absorb %qn, %qr, %c, %kr, %wk, %wv : tensor<1x4x2x16xf32>, tensor<1x4x2x8xf32>, tensor<1x4x32xf32>, tensor<1x4x8xf32>, tensor<2x16x64xf32>, tensor<2x16x32xf32> -> tensor<1x4x2x16xf32>
  return %o : tensor<1x4x2x16xf32>
}

// -----

func.func @mla_heads(%qn: tensor<1x4x2x16xf32>, %qr: tensor<1x4x2x8xf32>, %c: tensor<1x4x32xf32>, %kr: tensor<1x4x8xf32>, %wk: tensor<2x16x32xf32>, %wv: tensor<3x16x32xf32>) -> tensor<1x4x2x16xf32> {
  // expected-error@+1 {{'posenc.mla_absorb' op number of heads of w_uv (3) must equal number of heads of q_nope (2)}}
  %o = posenc.mla_absorb %qn, %qr, %c, %kr, %wk, %wv : tensor<1x4x2x16xf32>, tensor<1x4x2x8xf32>, tensor<1x4x32xf32>, tensor<1x4x8xf32>, tensor<2x16x32xf32>, tensor<3x16x32xf32> -> tensor<1x4x2x16xf32>
  return %o : tensor<1x4x2x16xf32>
}

// -----

func.func @mla_rope_dim(%qn: tensor<1x4x2x16xf32>, %qr: tensor<1x4x2x8xf32>, %c: tensor<1x4x32xf32>, %kr: tensor<1x4x4xf32>, %wk: tensor<2x16x32xf32>, %wv: tensor<2x16x32xf32>) -> tensor<1x4x2x16xf32> {
  // expected-error@+1 {{'posenc.mla_absorb' op rope head dim of k_pe (4) must equal rope head dim of q_pe (8)}}
  %o = posenc.mla_absorb %qn, %qr, %c, %kr, %wk, %wv : tensor<1x4x2x16xf32>, tensor<1x4x2x8xf32>, tensor<1x4x32xf32>, tensor<1x4x4xf32>, tensor<2x16x32xf32>, tensor<2x16x32xf32> -> tensor<1x4x2x16xf32>
  return %o : tensor<1x4x2x16xf32>
}

// -----

func.func @mla_nope_dim(%qn: tensor<1x4x2x16xf32>, %qr: tensor<1x4x2x8xf32>, %c: tensor<1x4x32xf32>, %kr: tensor<1x4x8xf32>, %wk: tensor<2x24x32xf32>, %wv: tensor<2x16x32xf32>) -> tensor<1x4x2x16xf32> {
  // expected-error@+1 {{'posenc.mla_absorb' op nope head dim of w_uk (24) must equal nope head dim of q_nope (16)}}
  %o = posenc.mla_absorb %qn, %qr, %c, %kr, %wk, %wv : tensor<1x4x2x16xf32>, tensor<1x4x2x8xf32>, tensor<1x4x32xf32>, tensor<1x4x8xf32>, tensor<2x24x32xf32>, tensor<2x16x32xf32> -> tensor<1x4x2x16xf32>
  return %o : tensor<1x4x2x16xf32>
}

// -----

func.func @mla_key_length(%qn: tensor<1x4x2x16xf32>, %qr: tensor<1x4x2x8xf32>, %c: tensor<1x4x32xf32>, %kr: tensor<1x5x8xf32>, %wk: tensor<2x16x32xf32>, %wv: tensor<2x16x32xf32>) -> tensor<1x4x2x16xf32> {
  // expected-error@+1 {{'posenc.mla_absorb' op key length of k_pe (5) must equal key length of c_kv (4)}}
  %o = posenc.mla_absorb %qn, %qr, %c, %kr, %wk, %wv : tensor<1x4x2x16xf32>, tensor<1x4x2x8xf32>, tensor<1x4x32xf32>, tensor<1x5x8xf32>, tensor<2x16x32xf32>, tensor<2x16x32xf32> -> tensor<1x4x2x16xf32>
  return %o : tensor<1x4x2x16xf32>
}

// -----

func.func @mla_types(%qn: tensor<1x4x2x16xf32>, %qr: tensor<1x4x2x8xbf16>, %c: tensor<1x4x32xf32>, %kr: tensor<1x4x8xf32>, %wk: tensor<2x16x32xf32>, %wv: tensor<2x16x32xf32>) -> tensor<1x4x2x16xf32> {
  // expected-error@+1 {{'posenc.mla_absorb' op element type of q_pe ('bf16') must equal element type of q_nope ('f32')}}
  %o = posenc.mla_absorb %qn, %qr, %c, %kr, %wk, %wv : tensor<1x4x2x16xf32>, tensor<1x4x2x8xbf16>, tensor<1x4x32xf32>, tensor<1x4x8xf32>, tensor<2x16x32xf32>, tensor<2x16x32xf32> -> tensor<1x4x2x16xf32>
  return %o : tensor<1x4x2x16xf32>
}

//===----------------------------------------------------------------------===//
// Sizes past what can exist: byte counts that overflow i64, and compile-time
// tables (frequencies, slopes, buckets, distance rows) past 2^20 entries.
//===----------------------------------------------------------------------===//

// -----

func.func @size_overflow(%x: tensor<4611686018427387904x4611686018427387904x2x64xf32>, %p: tensor<4611686018427387904xi32>) -> tensor<4611686018427387904x4611686018427387904x2x64xf32> {
  // expected-error@+1 {{'posenc.rope' op operand #0 has type 'tensor<4611686018427387904x4611686018427387904x2x64xf32>', whose size in bytes overflows 64-bit arithmetic}}
  %y = posenc.rope %x, %p layout half : tensor<4611686018427387904x4611686018427387904x2x64xf32>, tensor<4611686018427387904xi32>
  return %y : tensor<4611686018427387904x4611686018427387904x2x64xf32>
}

// -----

// 2^61 f32 elements: the element count fits, the byte count does not.
func.func @bytes_overflow(%k: tensor<1152921504606846976xi32>) -> tensor<1x2x1152921504606846976xf32> {
  %q = arith.constant dense<0> : tensor<2xi32>
  // expected-error@+1 {{'posenc.alibi_bias' op result #0 has type 'tensor<1x2x1152921504606846976xf32>', whose size in bytes overflows 64-bit arithmetic}}
  %b = posenc.alibi_bias %q, %k mode causal {num_heads = 1 : i64} : tensor<2xi32>, tensor<1152921504606846976xi32> -> tensor<1x2x1152921504606846976xf32>
  return %b : tensor<1x2x1152921504606846976xf32>
}

// -----

// A zero dim makes the tensor empty, whatever the other dims.
func.func @zero_dim_is_fine(%x: tensor<0x1024x4611686018427387904x64xf32>, %p: tensor<1024xi32>) -> tensor<0x1024x4611686018427387904x64xf32> {
  %y = posenc.rope %x, %p layout half : tensor<0x1024x4611686018427387904x64xf32>, tensor<1024xi32>
  return %y : tensor<0x1024x4611686018427387904x64xf32>
}

// -----

func.func @rotary_dim_table(%x: tensor<1x4x2x?xf32>, %p: tensor<4xi32>) -> tensor<1x4x2x?xf32> {
  // expected-error@+1 {{'posenc.rope' op rotary_dim (4194304) must be at most 1048576}}
  %y = posenc.rope %x, %p layout half {rotary_dim = 4194304 : i64} : tensor<1x4x2x?xf32>, tensor<4xi32>
  return %y : tensor<1x4x2x?xf32>
}

// -----

func.func @sinusoidal_dim_table(%p: tensor<8xi32>) -> tensor<8x?xf32> {
  // expected-error@+1 {{'posenc.sinusoidal' op dim (4611686018427387904) must be at most 1048576}}
  %b = posenc.sinusoidal %p layout half {dim = 4611686018427387904 : i64} : tensor<8xi32> -> tensor<8x?xf32>
  return %b : tensor<8x?xf32>
}

// -----

func.func @alibi_heads_table(%q: tensor<8xi32>) -> tensor<?x8x8xf32> {
  // expected-error@+1 {{'posenc.alibi_bias' op num_heads (1000000000000) must be at most 1048576}}
  %b = posenc.alibi_bias %q, %q mode causal {num_heads = 1000000000000 : i64} : tensor<8xi32>, tensor<8xi32> -> tensor<?x8x8xf32>
  return %b : tensor<?x8x8xf32>
}

// -----

func.func @rel_bias_distance_table(%t: tensor<?x4xf32>, %q: tensor<8xi32>) -> tensor<4x8x8xf32> {
  // expected-error@+1 {{'posenc.rel_bias' op max_distance (9223372036854775807) must be at most 1048576}}
  %b = posenc.rel_bias %t, %q, %q kind clip {max_distance = 9223372036854775807 : i64} : tensor<?x4xf32>, tensor<8xi32>, tensor<8xi32> -> tensor<4x8x8xf32>
  return %b : tensor<4x8x8xf32>
}

// -----

func.func @rel_bias_buckets_table(%t: tensor<?x4xf32>, %q: tensor<8xi32>) -> tensor<4x8x8xf32> {
  // expected-error@+1 {{'posenc.rel_bias' op num_buckets (4611686018427387904) must be at most 1048576}}
  %b = posenc.rel_bias %t, %q, %q kind t5 {num_buckets = 4611686018427387904 : i64, max_distance = 128 : i64} : tensor<?x4xf32>, tensor<8xi32>, tensor<8xi32> -> tensor<4x8x8xf32>
  return %b : tensor<4x8x8xf32>
}

// -----

func.func @rel_key_distance_table(%x: tensor<1x8x2x16xf32>, %e: tensor<?x16xf32>, %q: tensor<8xi32>) -> tensor<1x2x8x8xf32> {
  // expected-error@+1 {{'posenc.rel_key_bias' op max_distance (9223372036854775807) must be at most 1048576}}
  %b = posenc.rel_key_bias %x, %e, %q, %q {max_distance = 9223372036854775807 : i64} : tensor<1x8x2x16xf32>, tensor<?x16xf32>, tensor<8xi32>, tensor<8xi32> -> tensor<1x2x8x8xf32>
  return %b : tensor<1x2x8x8xf32>
}

// -----

func.func @attention_offsets_count(%q: tensor<1x8x4x16xf32>, %i: index) -> tensor<1x8x4x16xf32> {
  %init_o = tensor.empty() : tensor<1x8x4x16xf32>
  // expected-error@+1 {{'posenc.attention' op offsets must be (b0, h0, i0): 3 index values, got 2}}
  %o = posenc.attention %q, %q, %q offsets(%i, %i) outs(%init_o) : tensor<1x8x4x16xf32>, tensor<1x8x4x16xf32>, tensor<1x8x4x16xf32>, tensor<1x8x4x16xf32>
  return %o : tensor<1x8x4x16xf32>
}

// -----

func.func @attention_window_without_causal(%q: tensor<1x8x4x16xf32>) -> tensor<1x8x4x16xf32> {
  %init_o = tensor.empty() : tensor<1x8x4x16xf32>
  // expected-error@+1 {{'posenc.attention' op window(16) needs causal: the sliding window is the band of W keys ending at the causal diagonal}}
  %o = posenc.attention %q, %q, %q window(16) outs(%init_o) : tensor<1x8x4x16xf32>, tensor<1x8x4x16xf32>, tensor<1x8x4x16xf32>, tensor<1x8x4x16xf32>
  return %o : tensor<1x8x4x16xf32>
}

// -----

func.func @online_attention_window_zero(%q: tensor<1x8x4x16xf32>, %acc: tensor<1x8x4x16xf32>, %m: tensor<1x8x4xf32>) -> tensor<1x8x4x16xf32> {
  // expected-error@+1 {{'posenc.online_attention' op window must be at least 1 key, got 0}}
  %a, %mx, %sm = posenc.online_attention %q, %q, %q causal window(0) outs(%acc, %m, %m) : tensor<1x8x4x16xf32>, tensor<1x8x4x16xf32>, tensor<1x8x4x16xf32>, tensor<1x8x4x16xf32>, tensor<1x8x4xf32>, tensor<1x8x4xf32>
  return %a : tensor<1x8x4x16xf32>
}

// -----

func.func @attention_diagonal_without_causal(%q: tensor<1x8x4x16xf32>, %d: index) -> tensor<1x8x4x16xf32> {
  %init_o = tensor.empty() : tensor<1x8x4x16xf32>
  // expected-error@+1 {{'posenc.attention' op diagonal is only meaningful with causal}}
  %o = posenc.attention %q, %q, %q diagonal(%d) outs(%init_o) : tensor<1x8x4x16xf32>, tensor<1x8x4x16xf32>, tensor<1x8x4x16xf32>, tensor<1x8x4x16xf32>
  return %o : tensor<1x8x4x16xf32>
}

// -----

func.func @online_attention_state_shape(%q: tensor<1x8x4x16xf32>, %acc: tensor<1x8x4x16xf32>, %m: tensor<1x8x2xf32>) -> tensor<1x8x4x16xf32> {
  // expected-error@+1 {{'posenc.online_attention' op number of query heads of max (2) must equal number of query heads of q (4)}}
  %a, %mx, %s = posenc.online_attention %q, %q, %q outs(%acc, %m, %m) : tensor<1x8x4x16xf32>, tensor<1x8x4x16xf32>, tensor<1x8x4x16xf32>, tensor<1x8x4x16xf32>, tensor<1x8x2xf32>, tensor<1x8x2xf32>
  return %a : tensor<1x8x4x16xf32>
}

// -----

func.func @online_attention_offsets(%q: tensor<1x8x4x16xf32>, %acc: tensor<1x8x4x16xf32>, %m: tensor<1x8x4xf32>, %i: index) -> tensor<1x8x4x16xf32> {
  // expected-error@+1 {{'posenc.online_attention' op offsets must be (b0, h0, i0, j0): 4 index values, got 3}}
  %a, %mx, %s = posenc.online_attention %q, %q, %q offsets(%i, %i, %i) outs(%acc, %m, %m) : tensor<1x8x4x16xf32>, tensor<1x8x4x16xf32>, tensor<1x8x4x16xf32>, tensor<1x8x4x16xf32>, tensor<1x8x4xf32>, tensor<1x8x4xf32>
  return %a : tensor<1x8x4x16xf32>
}

// -----

func.func @online_attention_state_rank(%q: tensor<1x8x4x16xf32>, %acc: tensor<1x8x4x16xf32>, %m: tensor<1x8x4xf32>) -> tensor<1x8x4x16xf32> {
  // expected-error@+1 {{'posenc.online_attention' op max must have rank 3 ([B, Sq, Hq])}}
  %a, %mx, %s = posenc.online_attention %q, %q, %q outs(%acc, %acc, %m) : tensor<1x8x4x16xf32>, tensor<1x8x4x16xf32>, tensor<1x8x4x16xf32>, tensor<1x8x4x16xf32>, tensor<1x8x4x16xf32>, tensor<1x8x4xf32>
  return %a : tensor<1x8x4x16xf32>
}

// -----

func.func @mrope_sum(%x: tensor<1x4x2x8xf32>, %p: tensor<3x4xi64>) -> tensor<1x4x2x8xf32> {
  // expected-error@+1 {{mrope_section sums to 3 pairs but rotary_dim/2 is 4}}
  %y = posenc.rope %x, %p layout half {mrope_section = array<i64: 1, 1, 1>} : tensor<1x4x2x8xf32>, tensor<3x4xi64>
  return %y : tensor<1x4x2x8xf32>
}

// -----

func.func @mrope_axes(%x: tensor<1x4x2x8xf32>, %p: tensor<2x4xi64>) -> tensor<1x4x2x8xf32> {
  // expected-error@+1 {{pos has 2 position axes (dim 0) but mrope_section has 3 sections}}
  %y = posenc.rope %x, %p layout half {mrope_section = array<i64: 2, 1, 1>} : tensor<1x4x2x8xf32>, tensor<2x4xi64>
  return %y : tensor<1x4x2x8xf32>
}

// -----

func.func @mrope_dynamic_axes(%x: tensor<1x4x2x8xf32>, %p: tensor<?x4xi64>) -> tensor<1x4x2x8xf32> {
  // expected-error@+1 {{pos needs a static axis dim (dim 0) with mrope_section, got 'tensor<?x4xi64>'}}
  %y = posenc.rope %x, %p layout half {mrope_section = array<i64: 2, 1, 1>} : tensor<1x4x2x8xf32>, tensor<?x4xi64>
  return %y : tensor<1x4x2x8xf32>
}

// -----

func.func @mrope_flat_positions(%x: tensor<1x4x2x8xf32>, %p: tensor<4xi64>) -> tensor<1x4x2x8xf32> {
  // expected-error@+1 {{pos must be [A, S] or [A, B, S] with mrope_section, got 'tensor<4xi64>'}}
  %y = posenc.rope %x, %p layout half {mrope_section = array<i64: 4>} : tensor<1x4x2x8xf32>, tensor<4xi64>
  return %y : tensor<1x4x2x8xf32>
}

// -----

func.func @mrope_nonpositive(%x: tensor<1x4x2x8xf32>, %p: tensor<3x4xi64>) -> tensor<1x4x2x8xf32> {
  // expected-error@+1 {{mrope_section entries must be positive, got 0}}
  %y = posenc.rope %x, %p layout half {mrope_section = array<i64: 4, 0, 0>} : tensor<1x4x2x8xf32>, tensor<3x4xi64>
  return %y : tensor<1x4x2x8xf32>
}

// -----

func.func @mrope_interleaved_axes(%x: tensor<1x4x2x8xf32>, %p: tensor<2x4xi64>) -> tensor<1x4x2x8xf32> {
  // expected-error@+1 {{mrope_interleaved needs 3 sections (temporal, height, width), got 2}}
  %y = posenc.rope %x, %p layout half {mrope_section = array<i64: 2, 2>, mrope_interleaved} : tensor<1x4x2x8xf32>, tensor<2x4xi64>
  return %y : tensor<1x4x2x8xf32>
}

// -----

func.func @mrope_interleaved_alone(%x: tensor<1x4x2x8xf32>, %p: tensor<4xi64>) -> tensor<1x4x2x8xf32> {
  // expected-error@+1 {{mrope_interleaved requires mrope_section}}
  %y = posenc.rope %x, %p layout half {mrope_interleaved} : tensor<1x4x2x8xf32>, tensor<4xi64>
  return %y : tensor<1x4x2x8xf32>
}

// -----

func.func @mrope_batch(%x: tensor<2x4x2x8xf32>, %p: tensor<3x3x4xi64>) -> tensor<2x4x2x8xf32> {
  // expected-error@+1 {{batch size of pos (3) must equal batch size of x (2)}}
  %y = posenc.rope %x, %p layout half {mrope_section = array<i64: 2, 1, 1>} : tensor<2x4x2x8xf32>, tensor<3x3x4xi64>
  return %y : tensor<2x4x2x8xf32>
}

// -----

func.func @mrope_huge_entry(%x: tensor<1x4x2x8xf32>, %p: tensor<3x4xi64>) -> tensor<1x4x2x8xf32> {
  // expected-error@+1 {{mrope_section entry (4611686018427387904) exceeds rotary_dim/2 (4)}}
  %y = posenc.rope %x, %p layout half {mrope_section = array<i64: 4611686018427387904, 4611686018427387904, 4611686018427387904>} : tensor<1x4x2x8xf32>, tensor<3x4xi64>
  return %y : tensor<1x4x2x8xf32>
}

// -----

// Attribute values finite in f64 whose derived quantities are not: named.
func.func @rope_tiny_base(%x: tensor<1x4x2x64xf32>, %p: tensor<4xi32>) -> tensor<1x4x2x64xf32> {
  // expected-error@+1 {{frequency omega_29 = 1.00001e+290 (from base and scaling) makes angles p*omega overflow f64}}
  %y = posenc.rope %x, %p layout half {base = 1.0e-320 : f64} : tensor<1x4x2x64xf32>, tensor<4xi32>
  return %y : tensor<1x4x2x64xf32>
}

// -----

func.func @rope_tiny_linear_factor(%x: tensor<1x4x2x8xf32>, %p: tensor<4xi32>) -> tensor<1x4x2x8xf32> {
  // expected-error@+1 {{frequency omega_0 = inf (from base and scaling)}}
  %y = posenc.rope %x, %p layout half {scaling = #posenc.rope_scaling<linear, factor = 1.0e-320>} : tensor<1x4x2x8xf32>, tensor<4xi32>
  return %y : tensor<1x4x2x8xf32>
}

// -----

func.func @rope_tiny_attention_factor(%x: tensor<1x4x2x8xf32>, %p: tensor<4xi32>) -> tensor<1x4x2x8xf32> {
  // expected-error@+1 {{attention factor = 9.99989e-321 (from attention_factor) is not a finite, nonzero f32}}
  %y = posenc.rope %x, %p layout half {attention_factor = 1.0e-320 : f64} : tensor<1x4x2x8xf32>, tensor<4xi32>
  return %y : tensor<1x4x2x8xf32>
}

// -----

func.func @alibi_slope_overflows_at_distance(%p: tensor<4xi32>) -> tensor<1x4x4xf32> {
  // expected-error@+1 {{slope of head 0 = 1e+30 times the largest distance (2^31 - 1) overflows f32}}
  %b = posenc.alibi_bias %p, %p mode symmetric {num_heads = 1 : i64, slopes = array<f64: 1.0e+30>} : tensor<4xi32>, tensor<4xi32> -> tensor<1x4x4xf32>
  return %b : tensor<1x4x4xf32>
}

// -----

func.func @alibi_slope_underflows(%p: tensor<4xi32>) -> tensor<2x4x4xf32> {
  // expected-error@+1 {{slope of head 0 = 0 (from max_bias) is not a finite, nonzero f32}}
  %b = posenc.alibi_bias %p, %p mode symmetric {num_heads = 2 : i64, max_bias = 1.0e+300 : f64} : tensor<4xi32>, tensor<4xi32> -> tensor<2x4x4xf32>
  return %b : tensor<2x4x4xf32>
}

// -----

func.func @attention_scale_underflows(%q: tensor<1x4x2x8xf32>) -> tensor<1x4x2x8xf32> {
  %e = tensor.empty() : tensor<1x4x2x8xf32>
  // expected-error@+1 {{scale = 1e-300 (from scale) is not a finite, nonzero f32}}
  %o = posenc.attention %q, %q, %q outs(%e) {scale = 1.0e-300 : f64} : tensor<1x4x2x8xf32>, tensor<1x4x2x8xf32>, tensor<1x4x2x8xf32>, tensor<1x4x2x8xf32>
  return %o : tensor<1x4x2x8xf32>
}

// -----

func.func @attention_i32(%q: tensor<1x4x2x8xi32>) -> tensor<1x4x2x8xi32> {
  %o = tensor.empty() : tensor<1x4x2x8xi32>
  // expected-error@+1 {{'posenc.attention' op operand #0 must be ranked tensor or memref of f32, f16, bf16 or f64 values}}
  %r = posenc.attention %q, %q, %q outs(%o) : tensor<1x4x2x8xi32>, tensor<1x4x2x8xi32>, tensor<1x4x2x8xi32>, tensor<1x4x2x8xi32>
  return %r : tensor<1x4x2x8xi32>
}

// -----

// f64 attention computes in f64: sinks and score_mod speak the compute type.
func.func @attention_f64_sinks_f32(%q: tensor<1x4x2x8xf64>, %s: tensor<2xf32>) -> tensor<1x4x2x8xf64> {
  %o = tensor.empty() : tensor<1x4x2x8xf64>
  // expected-error@+1 {{'posenc.attention' op sinks must be [Hq] f64}}
  %r = posenc.attention %q, %q, %q sinks(%s : tensor<2xf32>) outs(%o) : tensor<1x4x2x8xf64>, tensor<1x4x2x8xf64>, tensor<1x4x2x8xf64>, tensor<1x4x2x8xf64>
  return %r : tensor<1x4x2x8xf64>
}

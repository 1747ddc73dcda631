// DeepSeek-V3 attention over the latent KV cache: kv_lora_rank 512,
// qk_nope 128, qk_rope 64 (interleaved RoPE with YaRN factor 40, original
// 4096, mscale 1, mscale_all_dim 1), v_head_dim 128. Weights are function
// arguments. Cut for a CPU run: 16 heads (the model has 128); prefill of 64
// tokens, and one decode step against a 64-token cache.
//
// The softmax scale is DeepSeek-V3's: mscale(40, 1)^2 / sqrt(128 + 64) with
// mscale(s, m) = 0.1·m·ln s + 1.

// Prefill: 64 new tokens at positions 0..63, causal.
func.func @prefill(%q_nope: tensor<1x64x16x128xf32>, %q_pe: tensor<1x64x16x64xf32>,
                   %c_kv: tensor<1x64x512xf32>, %k_pe: tensor<1x64x1x64xf32>,
                   %w_uk: tensor<16x128x512xf32>, %w_uv: tensor<16x128x512xf32>,
                   %pos: tensor<64xi32>) -> tensor<1x64x16x128xf32> {
  %qr = posenc.rope %q_pe, %pos layout interleaved {
          scaling = #posenc.rope_scaling<yarn, factor = 40.0, original = 4096,
                                         mscale = 1.0, mscale_all_dim = 1.0>}
        : tensor<1x64x16x64xf32>, tensor<64xi32>
  %kr = posenc.rope %k_pe, %pos layout interleaved {
          scaling = #posenc.rope_scaling<yarn, factor = 40.0, original = 4096,
                                         mscale = 1.0, mscale_all_dim = 1.0>}
        : tensor<1x64x1x64xf32>, tensor<64xi32>
  %kr3 = tensor.collapse_shape %kr [[0], [1], [2, 3]]
         : tensor<1x64x1x64xf32> into tensor<1x64x64xf32>
  %o = posenc.mla_absorb %q_nope, %qr, %c_kv, %kr3, %w_uk, %w_uv causal {scale = 0.13523378 : f64}
       : tensor<1x64x16x128xf32>, tensor<1x64x16x64xf32>, tensor<1x64x512xf32>,
         tensor<1x64x64xf32>, tensor<16x128x512xf32>, tensor<16x128x512xf32>
         -> tensor<1x64x16x128xf32>
  return %o : tensor<1x64x16x128xf32>
}

// One decode step: the new token's query at position %q_pos attends over
// the cache (whose rope'd k_pe is stored), which already holds the new
// token's latent. Sq = 1, so the pipeline absorbs W_UK/W_UV (mla=auto).
func.func @decode(%q_nope: tensor<1x1x16x128xf32>, %q_pe: tensor<1x1x16x64xf32>,
                  %c_kv: tensor<1x64x512xf32>, %k_pe_cache: tensor<1x64x64xf32>,
                  %w_uk: tensor<16x128x512xf32>, %w_uv: tensor<16x128x512xf32>,
                  %q_pos: tensor<1xi32>) -> tensor<1x1x16x128xf32> {
  %qr = posenc.rope %q_pe, %q_pos layout interleaved {
          scaling = #posenc.rope_scaling<yarn, factor = 40.0, original = 4096,
                                         mscale = 1.0, mscale_all_dim = 1.0>}
        : tensor<1x1x16x64xf32>, tensor<1xi32>
  %o = posenc.mla_absorb %q_nope, %qr, %c_kv, %k_pe_cache, %w_uk, %w_uv causal {scale = 0.13523378 : f64}
       : tensor<1x1x16x128xf32>, tensor<1x1x16x64xf32>, tensor<1x64x512xf32>,
         tensor<1x64x64xf32>, tensor<16x128x512xf32>, tensor<16x128x512xf32>
         -> tensor<1x1x16x128xf32>
  return %o : tensor<1x1x16x128xf32>
}

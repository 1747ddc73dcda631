// One DeepSeek-V3 attention layer over the latent KV cache: kv_lora_rank 512,
// qk_nope 128, qk_rope 64 (interleaved RoPE with YaRN factor 40, original
// 4096, mscale 1, mscale_all_dim 1), v_head_dim 128. Cut for a CPU run:
// 16 heads (the model has 128) and sequence length 64.
func.func @deepseek_v3_mla(%q_nope: tensor<1x64x16x128xf32>, %q_pe: tensor<1x64x16x64xf32>,
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
  // DeepSeek-V3's softmax scale: mscale(40, 1)^2 / sqrt(192).
  %o = posenc.mla_absorb %q_nope, %qr, %c_kv, %kr3, %w_uk, %w_uv causal {scale = 0.13523378 : f64}
       : tensor<1x64x16x128xf32>, tensor<1x64x16x64xf32>, tensor<1x64x512xf32>,
         tensor<1x64x64xf32>, tensor<16x128x512xf32>, tensor<16x128x512xf32>
         -> tensor<1x64x16x128xf32>
  return %o : tensor<1x64x16x128xf32>
}

// One attention layer of Llama-3.1-8B after the q/k/v projections:
// RoPE with llama3 frequency scaling (factor 8, original 8192, base 5e5),
// GQA with 32 query heads over 8 kv heads, causal.
// Cut for a CPU run: sequence length 128 (the model's heads and dims are kept).
func.func @llama3_attention(%q: tensor<1x128x32x128xf32>, %k: tensor<1x128x8x128xf32>,
                            %v: tensor<1x128x8x128xf32>, %pos: tensor<128xi32>)
    -> tensor<1x128x32x128xf32> {
  %qr = posenc.rope %q, %pos layout half {base = 500000.0 : f64,
          scaling = #posenc.rope_scaling<llama3, factor = 8.0, low_freq_factor = 1.0,
                                         high_freq_factor = 4.0, original = 8192>}
        : tensor<1x128x32x128xf32>, tensor<128xi32>
  %kr = posenc.rope %k, %pos layout half {base = 500000.0 : f64,
          scaling = #posenc.rope_scaling<llama3, factor = 8.0, low_freq_factor = 1.0,
                                         high_freq_factor = 4.0, original = 8192>}
        : tensor<1x128x8x128xf32>, tensor<128xi32>
  %init = tensor.empty() : tensor<1x128x32x128xf32>
  %o = posenc.attention %qr, %kr, %v causal outs(%init)
       : tensor<1x128x32x128xf32>, tensor<1x128x8x128xf32>, tensor<1x128x8x128xf32>,
         tensor<1x128x32x128xf32>
  return %o : tensor<1x128x32x128xf32>
}

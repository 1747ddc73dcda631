// One attention layer of BLOOM-560m: 16 heads of dim 64 with ALiBi
// (default slopes, max_bias 8), causal. Cut: sequence length 128.
func.func @bloom_alibi_attention(%q: tensor<1x128x16x64xf32>, %k: tensor<1x128x16x64xf32>,
                                 %v: tensor<1x128x16x64xf32>, %pos: tensor<128xi32>)
    -> tensor<1x128x16x64xf32> {
  %bias = posenc.alibi_bias %pos, %pos mode causal {num_heads = 16 : i64}
          : tensor<128xi32>, tensor<128xi32> -> tensor<16x128x128xf32>
  %init = tensor.empty() : tensor<1x128x16x64xf32>
  %o = posenc.attention %q, %k, %v bias(%bias : tensor<16x128x128xf32>) causal outs(%init)
       : tensor<1x128x16x64xf32>, tensor<1x128x16x64xf32>, tensor<1x128x16x64xf32>,
         tensor<1x128x16x64xf32>
  return %o : tensor<1x128x16x64xf32>
}

// One self-attention layer of the T5-base encoder: 12 heads of dim 64,
// bidirectional relative bias with 32 buckets and max distance 128, no
// score scaling (T5 folds 1/sqrt(d) into its weights, so scale = 1).
// Cut: sequence length 128.
func.func @t5_encoder_attention(%q: tensor<1x128x12x64xf32>, %k: tensor<1x128x12x64xf32>,
                                %v: tensor<1x128x12x64xf32>, %table: tensor<32x12xf32>,
                                %pos: tensor<128xi32>) -> tensor<1x128x12x64xf32> {
  %bias = posenc.rel_bias %table, %pos, %pos kind t5 {num_buckets = 32 : i64, max_distance = 128 : i64}
          : tensor<32x12xf32>, tensor<128xi32>, tensor<128xi32> -> tensor<12x128x128xf32>
  %init = tensor.empty() : tensor<1x128x12x64xf32>
  %o = posenc.attention %q, %k, %v bias(%bias : tensor<12x128x128xf32>) outs(%init) {scale = 1.0 : f64}
       : tensor<1x128x12x64xf32>, tensor<1x128x12x64xf32>, tensor<1x128x12x64xf32>,
         tensor<1x128x12x64xf32>
  return %o : tensor<1x128x12x64xf32>
}

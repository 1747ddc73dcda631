// The plugin's verifiers run inside upstream mlir-opt too.
// RUN: mlir-opt %s --load-dialect-plugin=%posenc_plugin -verify-diagnostics

func.func @bad(%x: tensor<1x4x2x64xf32>, %p: tensor<4xi32>) -> tensor<1x4x2x64xf32> {
  // expected-error@+1 {{'posenc.rope' op rotary_dim (96) must be <= head dim (64)}}
  %y = posenc.rope %x, %p layout half {rotary_dim = 96 : i64} : tensor<1x4x2x64xf32>, tensor<4xi32>
  return %y : tensor<1x4x2x64xf32>
}

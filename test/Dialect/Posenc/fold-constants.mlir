// RUN: posenc-opt %s -posenc-fold-constants -split-input-file | FileCheck %s
// RUN: posenc-opt %s -posenc-fold-constants=max-elements=0 -split-input-file | FileCheck %s --check-prefix=NONE

// ALiBi slopes of 2 heads with max_bias 8 are 2^-4 and 2^-8; causal bias is
// m_h·(k − q).
// CHECK-LABEL: func @alibi
// CHECK: %[[C:.+]] = arith.constant dense<{{\[\[\[}}0.000000e+00, 6.250000e-02], [-6.250000e-02, 0.000000e+00]], {{\[\[}}0.000000e+00, 3.906250e-03], [-3.906250e-03, 0.000000e+00]]]> : tensor<2x2x2xf32>
// CHECK-NEXT: return %[[C]]
// NONE-LABEL: func @alibi
// NONE: posenc.alibi_bias
func.func @alibi() -> tensor<2x2x2xf32> {
  %p = arith.constant dense<[0, 1]> : tensor<2xi32>
  %b = posenc.alibi_bias %p, %p mode causal {num_heads = 2 : i64} : tensor<2xi32>, tensor<2xi32> -> tensor<2x2x2xf32>
  return %b : tensor<2x2x2xf32>
}

// -----

// Position 0 leaves x unchanged; the sinusoid of position 0 is [0, 1, ...].
// CHECK-LABEL: func @rope_and_sinusoidal
// CHECK-DAG: arith.constant dense<{{\[\[\[\[}}1.000000e+00, 2.000000e+00, 3.000000e+00, 4.000000e+00]]]]> : tensor<1x1x1x4xf32>
// CHECK-DAG: arith.constant dense<{{\[\[}}0.000000e+00, 1.000000e+00, 0.000000e+00, 1.000000e+00]]> : tensor<1x4xbf16>
// CHECK-NOT: posenc.
func.func @rope_and_sinusoidal() -> (tensor<1x1x1x4xf32>, tensor<1x4xbf16>) {
  %x = arith.constant dense<[[[[1.0, 2.0, 3.0, 4.0]]]]> : tensor<1x1x1x4xf32>
  %p = arith.constant dense<[0]> : tensor<1xi64>
  %y = posenc.rope %x, %p layout half : tensor<1x1x1x4xf32>, tensor<1xi64>
  %s = posenc.sinusoidal %p layout interleaved {dim = 4 : i64} : tensor<1xi64> -> tensor<1x4xbf16>
  return %y, %s : tensor<1x1x1x4xf32>, tensor<1x4xbf16>
}

// -----

// negative_large_bias: 16x128x128 elements exceed the default limit; the
// bias stays an op (folding O(S²) tensors is what the limit prevents).
// CHECK-LABEL: func @negative_large_bias
// CHECK: posenc.alibi_bias
func.func @negative_large_bias() -> tensor<16x128x128xf32> {
  %p = arith.constant dense<7> : tensor<128xi32>
  %b = posenc.alibi_bias %p, %p mode causal {num_heads = 16 : i64} : tensor<128xi32>, tensor<128xi32> -> tensor<16x128x128xf32>
  return %b : tensor<16x128x128xf32>
}

// -----

// negative_runtime_positions: positions are an argument.
// CHECK-LABEL: func @negative_runtime_positions
// CHECK: posenc.rel_bias
func.func @negative_runtime_positions(%p: tensor<2xi32>) -> tensor<1x2x2xf32> {
  %t = arith.constant dense<[[1.0], [2.0], [3.0]]> : tensor<3x1xf32>
  %b = posenc.rel_bias %t, %p, %p kind clip {max_distance = 1 : i64} : tensor<3x1xf32>, tensor<2xi32>, tensor<2xi32> -> tensor<1x2x2xf32>
  return %b : tensor<1x2x2xf32>
}

// RUN: posenc-opt %s -posenc-fold-rope-layout=to=interleaved -split-input-file | FileCheck %s
// RUN: posenc-opt %s -posenc-fold-rope-layout=to=half -split-input-file | FileCheck %s --check-prefix=HALF

// Constant weights are permuted at compile time. One head of D = 4,
// R = 4: interleaved column 2i takes half column i, 2i+1 takes i + R/2,
// so columns [0, 1, 2, 3] become [0, 2, 1, 3].
// CHECK-LABEL: func @constant_weights
// CHECK: %[[WQ:.+]] = arith.constant dense<{{\[\[}}0.000000e+00, 2.000000e+00, 1.000000e+00, 3.000000e+00], [4.000000e+00, 6.000000e+00, 5.000000e+00, 7.000000e+00]]> : tensor<2x4xf32>
// CHECK: linalg.matmul ins(%{{.+}}, %[[WQ]] :
// CHECK: posenc.rope {{.*}} layout interleaved
// CHECK: %[[WK:.+]] = arith.constant dense<{{\[\[}}1.000000e+01, 1.200000e+01, 1.100000e+01, 1.300000e+01], [1.400000e+01, 1.600000e+01, 1.500000e+01, 1.700000e+01]]> : tensor<2x4xf32>
// CHECK: linalg.matmul ins(%{{.+}}, %[[WK]] :
// CHECK: posenc.rope {{.*}} layout interleaved
// HALF-LABEL: func @constant_weights
// HALF-NOT: arith.constant dense<{{\[\[}}0.000000e+00, 2.000000e+00
// HALF-COUNT-2: layout half
func.func @constant_weights(%x: tensor<3x2xf32>, %v: tensor<1x3x1x4xf32>, %p: tensor<3xi32>) -> tensor<1x3x1x4xf32> {
  %wq = arith.constant dense<[[0.0, 1.0, 2.0, 3.0], [4.0, 5.0, 6.0, 7.0]]> : tensor<2x4xf32>
  %wk = arith.constant dense<[[10.0, 11.0, 12.0, 13.0], [14.0, 15.0, 16.0, 17.0]]> : tensor<2x4xf32>
  %z = arith.constant dense<0.0> : tensor<3x4xf32>
  %q2 = linalg.matmul ins(%x, %wq : tensor<3x2xf32>, tensor<2x4xf32>) outs(%z : tensor<3x4xf32>) -> tensor<3x4xf32>
  %q4 = tensor.expand_shape %q2 [[0, 1], [2, 3]] output_shape [1, 3, 1, 4] : tensor<3x4xf32> into tensor<1x3x1x4xf32>
  %q = posenc.rope %q4, %p layout half : tensor<1x3x1x4xf32>, tensor<3xi32>
  %k2 = linalg.matmul ins(%x, %wk : tensor<3x2xf32>, tensor<2x4xf32>) outs(%z : tensor<3x4xf32>) -> tensor<3x4xf32>
  %k4 = tensor.expand_shape %k2 [[0, 1], [2, 3]] output_shape [1, 3, 1, 4] : tensor<3x4xf32> into tensor<1x3x1x4xf32>
  %k = posenc.rope %k4, %p layout half : tensor<1x3x1x4xf32>, tensor<3xi32>
  %init_o = tensor.empty() : tensor<1x3x1x4xf32>
  %o = posenc.attention %q, %k, %v causal outs(%init_o) : tensor<1x3x1x4xf32>, tensor<1x3x1x4xf32>, tensor<1x3x1x4xf32>, tensor<1x3x1x4xf32>
  return %o : tensor<1x3x1x4xf32>
}

// -----

// Runtime weights get an explicit gather of their columns.
// CHECK-LABEL: func @runtime_weights
// CHECK: %[[WQ:.+]] = linalg.generic
// CHECK: linalg.matmul ins(%{{.+}}, %[[WQ]] :
// CHECK: posenc.rope {{.*}} layout interleaved
// CHECK: %[[WK:.+]] = linalg.generic
// CHECK: linalg.matmul ins(%{{.+}}, %[[WK]] :
// CHECK: posenc.rope {{.*}} layout interleaved
func.func @runtime_weights(%x: tensor<8x16xf32>, %wq: tensor<16x64xf32>, %wk: tensor<16x32xf32>, %v: tensor<1x8x2x16xf32>, %p: tensor<8xi32>) -> tensor<1x8x4x16xf32> {
  %z = arith.constant 0.0 : f32
  %eq = tensor.empty() : tensor<8x64xf32>
  %fq = linalg.fill ins(%z : f32) outs(%eq : tensor<8x64xf32>) -> tensor<8x64xf32>
  %ek = tensor.empty() : tensor<8x32xf32>
  %fk = linalg.fill ins(%z : f32) outs(%ek : tensor<8x32xf32>) -> tensor<8x32xf32>
  %q2 = linalg.matmul ins(%x, %wq : tensor<8x16xf32>, tensor<16x64xf32>) outs(%fq : tensor<8x64xf32>) -> tensor<8x64xf32>
  %q4 = tensor.expand_shape %q2 [[0, 1], [2, 3]] output_shape [1, 8, 4, 16] : tensor<8x64xf32> into tensor<1x8x4x16xf32>
  %q = posenc.rope %q4, %p layout half {rotary_dim = 8 : i64} : tensor<1x8x4x16xf32>, tensor<8xi32>
  %k2 = linalg.matmul ins(%x, %wk : tensor<8x16xf32>, tensor<16x32xf32>) outs(%fk : tensor<8x32xf32>) -> tensor<8x32xf32>
  %k4 = tensor.expand_shape %k2 [[0, 1], [2, 3]] output_shape [1, 8, 2, 16] : tensor<8x32xf32> into tensor<1x8x2x16xf32>
  %k = posenc.rope %k4, %p layout half {rotary_dim = 8 : i64} : tensor<1x8x2x16xf32>, tensor<8xi32>
  %init_o = tensor.empty() : tensor<1x8x4x16xf32>
  %o = posenc.attention %q, %k, %v outs(%init_o) : tensor<1x8x4x16xf32>, tensor<1x8x2x16xf32>, tensor<1x8x2x16xf32>, tensor<1x8x4x16xf32>
  return %o : tensor<1x8x4x16xf32>
}

// -----

// negative_q_returned: q is also a result (e.g. written to a cache the
// caller owns); permuting its columns would change what the caller sees.
// CHECK-LABEL: func @negative_q_returned
// CHECK-COUNT-2: layout half
func.func @negative_q_returned(%x: tensor<3x2xf32>, %wq: tensor<2x4xf32>, %wk: tensor<2x4xf32>, %v: tensor<1x3x1x4xf32>, %p: tensor<3xi32>) -> (tensor<1x3x1x4xf32>, tensor<1x3x1x4xf32>) {
  %z = arith.constant dense<0.0> : tensor<3x4xf32>
  %q2 = linalg.matmul ins(%x, %wq : tensor<3x2xf32>, tensor<2x4xf32>) outs(%z : tensor<3x4xf32>) -> tensor<3x4xf32>
  %q4 = tensor.expand_shape %q2 [[0, 1], [2, 3]] output_shape [1, 3, 1, 4] : tensor<3x4xf32> into tensor<1x3x1x4xf32>
  %q = posenc.rope %q4, %p layout half : tensor<1x3x1x4xf32>, tensor<3xi32>
  %k2 = linalg.matmul ins(%x, %wk : tensor<3x2xf32>, tensor<2x4xf32>) outs(%z : tensor<3x4xf32>) -> tensor<3x4xf32>
  %k4 = tensor.expand_shape %k2 [[0, 1], [2, 3]] output_shape [1, 3, 1, 4] : tensor<3x4xf32> into tensor<1x3x1x4xf32>
  %k = posenc.rope %k4, %p layout half : tensor<1x3x1x4xf32>, tensor<3xi32>
  %init_o = tensor.empty() : tensor<1x3x1x4xf32>
  %o = posenc.attention %q, %k, %v outs(%init_o) : tensor<1x3x1x4xf32>, tensor<1x3x1x4xf32>, tensor<1x3x1x4xf32>, tensor<1x3x1x4xf32>
  return %o, %q : tensor<1x3x1x4xf32>, tensor<1x3x1x4xf32>
}

// -----

// negative_rotary_dims: q and k rotate different numbers of dims, so no
// single permutation serves both.
// CHECK-LABEL: func @negative_rotary_dims
// CHECK-COUNT-2: layout half
func.func @negative_rotary_dims(%x: tensor<3x2xf32>, %wq: tensor<2x8xf32>, %wk: tensor<2x8xf32>, %v: tensor<1x3x1x8xf32>, %p: tensor<3xi32>) -> tensor<1x3x1x8xf32> {
  %z = arith.constant dense<0.0> : tensor<3x8xf32>
  %q2 = linalg.matmul ins(%x, %wq : tensor<3x2xf32>, tensor<2x8xf32>) outs(%z : tensor<3x8xf32>) -> tensor<3x8xf32>
  %q4 = tensor.expand_shape %q2 [[0, 1], [2, 3]] output_shape [1, 3, 1, 8] : tensor<3x8xf32> into tensor<1x3x1x8xf32>
  %q = posenc.rope %q4, %p layout half {rotary_dim = 4 : i64} : tensor<1x3x1x8xf32>, tensor<3xi32>
  %k2 = linalg.matmul ins(%x, %wk : tensor<3x2xf32>, tensor<2x8xf32>) outs(%z : tensor<3x8xf32>) -> tensor<3x8xf32>
  %k4 = tensor.expand_shape %k2 [[0, 1], [2, 3]] output_shape [1, 3, 1, 8] : tensor<3x8xf32> into tensor<1x3x1x8xf32>
  %k = posenc.rope %k4, %p layout half : tensor<1x3x1x8xf32>, tensor<3xi32>
  %init_o = tensor.empty() : tensor<1x3x1x8xf32>
  %o = posenc.attention %q, %k, %v outs(%init_o) : tensor<1x3x1x8xf32>, tensor<1x3x1x8xf32>, tensor<1x3x1x8xf32>, tensor<1x3x1x8xf32>
  return %o : tensor<1x3x1x8xf32>
}

// -----

// negative_frequencies: q and k use different bases.
// CHECK-LABEL: func @negative_frequencies
// CHECK-COUNT-2: layout half
func.func @negative_frequencies(%x: tensor<3x2xf32>, %wq: tensor<2x4xf32>, %wk: tensor<2x4xf32>, %v: tensor<1x3x1x4xf32>, %p: tensor<3xi32>) -> tensor<1x3x1x4xf32> {
  %z = arith.constant dense<0.0> : tensor<3x4xf32>
  %q2 = linalg.matmul ins(%x, %wq : tensor<3x2xf32>, tensor<2x4xf32>) outs(%z : tensor<3x4xf32>) -> tensor<3x4xf32>
  %q4 = tensor.expand_shape %q2 [[0, 1], [2, 3]] output_shape [1, 3, 1, 4] : tensor<3x4xf32> into tensor<1x3x1x4xf32>
  %q = posenc.rope %q4, %p layout half {base = 500.0 : f64} : tensor<1x3x1x4xf32>, tensor<3xi32>
  %k2 = linalg.matmul ins(%x, %wk : tensor<3x2xf32>, tensor<2x4xf32>) outs(%z : tensor<3x4xf32>) -> tensor<3x4xf32>
  %k4 = tensor.expand_shape %k2 [[0, 1], [2, 3]] output_shape [1, 3, 1, 4] : tensor<3x4xf32> into tensor<1x3x1x4xf32>
  %k = posenc.rope %k4, %p layout half : tensor<1x3x1x4xf32>, tensor<3xi32>
  %init_o = tensor.empty() : tensor<1x3x1x4xf32>
  %o = posenc.attention %q, %k, %v outs(%init_o) : tensor<1x3x1x4xf32>, tensor<1x3x1x4xf32>, tensor<1x3x1x4xf32>, tensor<1x3x1x4xf32>
  return %o : tensor<1x3x1x4xf32>
}

// -----

// negative_no_projection: q comes straight from an argument; there is no
// weight to permute.
// CHECK-LABEL: func @negative_no_projection
// CHECK-COUNT-2: layout half
func.func @negative_no_projection(%q4: tensor<1x3x1x4xf32>, %k4: tensor<1x3x1x4xf32>, %p: tensor<3xi32>) -> tensor<1x3x1x4xf32> {
  %q = posenc.rope %q4, %p layout half : tensor<1x3x1x4xf32>, tensor<3xi32>
  %k = posenc.rope %k4, %p layout half : tensor<1x3x1x4xf32>, tensor<3xi32>
  %init_o = tensor.empty() : tensor<1x3x1x4xf32>
  %o = posenc.attention %q, %k, %k4 outs(%init_o) : tensor<1x3x1x4xf32>, tensor<1x3x1x4xf32>, tensor<1x3x1x4xf32>, tensor<1x3x1x4xf32>
  return %o : tensor<1x3x1x4xf32>
}

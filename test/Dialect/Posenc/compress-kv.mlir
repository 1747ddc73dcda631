// RUN: posenc-opt %s -posenc-compress-kv=rank=3 -split-input-file 2>/dev/null | FileCheck %s --check-prefix=JOINT
// RUN: posenc-opt %s -posenc-compress-kv="rank=4 factor=separate" -split-input-file 2>/dev/null | FileCheck %s --check-prefix=SEP
// RUN: posenc-opt %s -posenc-compress-kv="rank=2 rotary=decoupled" -split-input-file 2>/dev/null | FileCheck %s --check-prefix=DEC
// RUN: posenc-opt %s -posenc-compress-kv=energy=1.0 -split-input-file 2>&1 >/dev/null | FileCheck %s --check-prefix=REMARK
// RUN: mlir-opt %s --load-dialect-plugin=%posenc_plugin --load-pass-plugin=%posenc_plugin --pass-pipeline='builtin.module(posenc-compress-kv{rank=3})' -split-input-file 2>/dev/null | FileCheck %s --check-prefix=JOINT

// Non-rotary keys (x [N, 4] projected to 2 kv heads of 2 dims, 4 query
// heads). Joint: one latent of 3 floats per token; q absorbs B_k per head,
// multi-query attention over the latent with the original scale
// 1/sqrt(2), then B_v per head. Separate: latents of 2 (keys) and 2
// (values).
// JOINT-LABEL: func @plain
// JOINT-NOT: linalg.matmul ins(%{{.+}} : tensor<?x4xf32>, tensor<4x4xf32>)
// JOINT: %[[LAT:.+]] = linalg.matmul ins(%{{.+}}, %{{.+}} : tensor<?x4xf32>, tensor<4x3xf32>)
// JOINT: %[[QL:.+]] = linalg.generic {{.*}} ins(%{{.+}}, %{{.+}} : tensor<1x?x4x2xf32>, tensor<4x2x3xf32>)
// JOINT: %[[C:.+]] = tensor.expand_shape %[[LAT]] {{\[}}[0, 1], [2, 3]] output_shape [1, %{{.+}}, 1, 3]
// JOINT: %[[O:.+]] = posenc.attention %[[QL]], %[[C]], %[[C]] causal outs(%{{.+}}) {scale = 0.70710678118654746 : f64} : tensor<1x?x4x3xf32>, tensor<1x?x1x3xf32>, tensor<1x?x1x3xf32>, tensor<1x?x4x3xf32>
// JOINT: linalg.generic {{.*}} ins(%[[O]], %{{.+}} : tensor<1x?x4x3xf32>, tensor<4x3x2xf32>)
// SEP-LABEL: func @plain
// SEP-DAG: %[[LK:.+]] = linalg.matmul ins(%{{.+}}, %{{.+}} : tensor<?x4xf32>, tensor<4x2xf32>)
// SEP-DAG: %[[LV:.+]] = linalg.matmul ins(%{{.+}}, %{{.+}} : tensor<?x4xf32>, tensor<4x2xf32>)
// SEP: posenc.attention %{{.+}}, %{{.+}}, %{{.+}} causal outs(%{{.+}}) {scale = 0.70710678118654746 : f64} : tensor<1x?x4x2xf32>, tensor<1x?x1x2xf32>, tensor<1x?x1x2xf32>, tensor<1x?x4x2xf32>
// REMARK: remark: posenc-compress-kv: latent of 4 floats per token instead of 8 (rank 4), dropped energy 0.000000e+00
func.func @plain(%x: tensor<?x4xf32>, %q: tensor<1x?x4x2xf32>) -> tensor<1x?x4x2xf32> {
  %zero = arith.constant 0.0 : f32
  %c0 = arith.constant 0 : index
  %n = tensor.dim %x, %c0 : tensor<?x4xf32>
  %wk = arith.constant dense<[[1.0, 0.5, -1.0, 2.0], [0.0, 1.0, 0.25, -0.5], [2.0, -1.0, 0.0, 1.0], [0.5, 0.5, 1.5, 0.0]]> : tensor<4x4xf32>
  %wv = arith.constant dense<[[0.0, 1.0, 2.0, -1.0], [1.0, 0.0, -0.5, 0.5], [0.25, 2.0, 1.0, 0.0], [-1.0, 0.5, 0.0, 1.0]]> : tensor<4x4xf32>
  %e = tensor.empty(%n) : tensor<?x4xf32>
  %z = linalg.fill ins(%zero : f32) outs(%e : tensor<?x4xf32>) -> tensor<?x4xf32>
  %k2 = linalg.matmul ins(%x, %wk : tensor<?x4xf32>, tensor<4x4xf32>) outs(%z : tensor<?x4xf32>) -> tensor<?x4xf32>
  %v2 = linalg.matmul ins(%x, %wv : tensor<?x4xf32>, tensor<4x4xf32>) outs(%z : tensor<?x4xf32>) -> tensor<?x4xf32>
  %k = tensor.expand_shape %k2 [[0, 1], [2, 3]] output_shape [1, %n, 2, 2] : tensor<?x4xf32> into tensor<1x?x2x2xf32>
  %v = tensor.expand_shape %v2 [[0, 1], [2, 3]] output_shape [1, %n, 2, 2] : tensor<?x4xf32> into tensor<1x?x2x2xf32>
  %c1 = arith.constant 1 : index
  %sq = tensor.dim %q, %c1 : tensor<1x?x4x2xf32>
  %init = tensor.empty(%sq) : tensor<1x?x4x2xf32>
  %o = posenc.attention %q, %k, %v causal outs(%init) : tensor<1x?x4x2xf32>, tensor<1x?x2x2xf32>, tensor<1x?x2x2xf32>, tensor<1x?x4x2xf32>
  return %o : tensor<1x?x4x2xf32>
}

// -----

// Rotary keys. reconstruct: k = rope(c·B_k) with the rope's attributes and
// positions, v = c·B_v. decoupled: the keys stay, the values alone are
// compressed (rank 2 of W_v).
// JOINT-LABEL: func @rotary
// JOINT: %[[LAT:.+]] = linalg.matmul ins(%{{.+}}, %{{.+}} : tensor<8x4xf32>, tensor<4x3xf32>)
// JOINT: %[[KB:.+]] = linalg.matmul ins(%[[LAT]], %{{.+}} : tensor<8x3xf32>, tensor<3x4xf32>)
// JOINT: %[[K4:.+]] = tensor.expand_shape %[[KB]]
// JOINT: %[[KR:.+]] = posenc.rope %[[K4]], %{{.+}} layout interleaved {base = 5.000000e+05 : f64}
// JOINT: %[[VB:.+]] = linalg.matmul ins(%[[LAT]], %{{.+}} : tensor<8x3xf32>, tensor<3x4xf32>)
// JOINT: %[[V4:.+]] = tensor.expand_shape %[[VB]]
// JOINT: posenc.attention %{{.+}}, %[[KR]], %[[V4]] causal outs(
// DEC-LABEL: func @rotary
// DEC: %[[K:.+]] = linalg.matmul ins(%{{.+}}, %{{.+}} : tensor<8x4xf32>, tensor<4x4xf32>)
// DEC: %[[KR:.+]] = posenc.rope
// DEC: %[[LAT:.+]] = linalg.matmul ins(%{{.+}}, %{{.+}} : tensor<8x4xf32>, tensor<4x2xf32>)
// DEC: %[[VB:.+]] = linalg.matmul ins(%[[LAT]], %{{.+}} : tensor<8x2xf32>, tensor<2x4xf32>)
// DEC: %[[V4:.+]] = tensor.expand_shape %[[VB]]
// DEC: posenc.attention %{{.+}}, %[[KR]], %[[V4]] causal outs(
// REMARK: remark: posenc-compress-kv: latent of 4 floats per token instead of 8 (rank 4), dropped energy 0.000000e+00
func.func @rotary(%x: tensor<8x4xf32>, %q: tensor<1x8x4x2xf32>, %pos: tensor<8xi64>) -> tensor<1x8x4x2xf32> {
  %zero = arith.constant 0.0 : f32
  %wk = arith.constant dense<[[1.0, 0.5, -1.0, 2.0], [0.0, 1.0, 0.25, -0.5], [2.0, -1.0, 0.0, 1.0], [0.5, 0.5, 1.5, 0.0]]> : tensor<4x4xf32>
  %wv = arith.constant dense<[[0.0, 1.0, 2.0, -1.0], [1.0, 0.0, -0.5, 0.5], [0.25, 2.0, 1.0, 0.0], [-1.0, 0.5, 0.0, 1.0]]> : tensor<4x4xf32>
  %e = tensor.empty() : tensor<8x4xf32>
  %z = linalg.fill ins(%zero : f32) outs(%e : tensor<8x4xf32>) -> tensor<8x4xf32>
  %k2 = linalg.matmul ins(%x, %wk : tensor<8x4xf32>, tensor<4x4xf32>) outs(%z : tensor<8x4xf32>) -> tensor<8x4xf32>
  %v2 = linalg.matmul ins(%x, %wv : tensor<8x4xf32>, tensor<4x4xf32>) outs(%z : tensor<8x4xf32>) -> tensor<8x4xf32>
  %k = tensor.expand_shape %k2 [[0, 1], [2, 3]] output_shape [1, 8, 2, 2] : tensor<8x4xf32> into tensor<1x8x2x2xf32>
  %v = tensor.expand_shape %v2 [[0, 1], [2, 3]] output_shape [1, 8, 2, 2] : tensor<8x4xf32> into tensor<1x8x2x2xf32>
  %kr = posenc.rope %k, %pos layout interleaved {base = 500000.0 : f64} : tensor<1x8x2x2xf32>, tensor<8xi64>
  %init = tensor.empty() : tensor<1x8x4x2xf32>
  %o = posenc.attention %q, %kr, %v causal outs(%init) : tensor<1x8x4x2xf32>, tensor<1x8x2x2xf32>, tensor<1x8x2x2xf32>, tensor<1x8x4x2xf32>
  return %o : tensor<1x8x4x2xf32>
}

// -----

// Partial rotary (rotary_dim 2 of 4): decoupled keeps the rotated dims,
// rope(x·W_k[:, :2]); the other key dims join the values in one latent of
// rank 2 (of [W_k[:, 2:] | W_v]) and are joined after the rotated ones.
// DEC-LABEL: func @partial_rotary
// DEC: %[[LAT:.+]] = linalg.matmul ins(%{{.+}}, %{{.+}} : tensor<8x4xf32>, tensor<4x2xf32>)
// DEC: %[[WROT:.+]] = arith.constant dense<{{\[}}[1.000000e+00, 5.000000e-01], [0.000000e+00, 1.000000e+00], [2.000000e+00, -1.000000e+00], [5.000000e-01, 5.000000e-01]]> : tensor<4x2xf32>
// DEC: %[[KROT:.+]] = linalg.matmul ins(%{{.+}}, %[[WROT]] : tensor<8x4xf32>, tensor<4x2xf32>)
// DEC: %[[KROT4:.+]] = tensor.expand_shape %[[KROT]] {{.*}} into tensor<1x8x1x2xf32>
// DEC: %[[KR:.+]] = posenc.rope %[[KROT4]], %{{.+}} layout half {rotary_dim = 2 : i64} : tensor<1x8x1x2xf32>
// DEC: %[[KN:.+]] = linalg.matmul ins(%[[LAT]], %{{.+}} : tensor<8x2xf32>, tensor<2x2xf32>)
// DEC: %[[KN4:.+]] = tensor.expand_shape %[[KN]]
// DEC: %[[K:.+]] = tensor.concat dim(3) %[[KR]], %[[KN4]] : (tensor<1x8x1x2xf32>, tensor<1x8x1x2xf32>) -> tensor<1x8x1x4xf32>
// DEC: %[[VB:.+]] = linalg.matmul ins(%[[LAT]], %{{.+}} : tensor<8x2xf32>, tensor<2x4xf32>)
// DEC: %[[V4:.+]] = tensor.expand_shape %[[VB]]
// DEC: posenc.attention %{{.+}}, %[[K]], %[[V4]] causal outs(
func.func @partial_rotary(%x: tensor<8x4xf32>, %q: tensor<1x8x2x4xf32>, %pos: tensor<8xi64>) -> tensor<1x8x2x4xf32> {
  %zero = arith.constant 0.0 : f32
  %wk = arith.constant dense<[[1.0, 0.5, -1.0, 2.0], [0.0, 1.0, 0.25, -0.5], [2.0, -1.0, 0.0, 1.0], [0.5, 0.5, 1.5, 0.0]]> : tensor<4x4xf32>
  %wv = arith.constant dense<[[0.0, 1.0, 2.0, -1.0], [1.0, 0.0, -0.5, 0.5], [0.25, 2.0, 1.0, 0.0], [-1.0, 0.5, 0.0, 1.0]]> : tensor<4x4xf32>
  %e = tensor.empty() : tensor<8x4xf32>
  %z = linalg.fill ins(%zero : f32) outs(%e : tensor<8x4xf32>) -> tensor<8x4xf32>
  %k2 = linalg.matmul ins(%x, %wk : tensor<8x4xf32>, tensor<4x4xf32>) outs(%z : tensor<8x4xf32>) -> tensor<8x4xf32>
  %v2 = linalg.matmul ins(%x, %wv : tensor<8x4xf32>, tensor<4x4xf32>) outs(%z : tensor<8x4xf32>) -> tensor<8x4xf32>
  %k = tensor.expand_shape %k2 [[0, 1], [2, 3]] output_shape [1, 8, 1, 4] : tensor<8x4xf32> into tensor<1x8x1x4xf32>
  %v = tensor.expand_shape %v2 [[0, 1], [2, 3]] output_shape [1, 8, 1, 4] : tensor<8x4xf32> into tensor<1x8x1x4xf32>
  %kr = posenc.rope %k, %pos layout half {rotary_dim = 2 : i64} : tensor<1x8x1x4xf32>, tensor<8xi64>
  %init = tensor.empty() : tensor<1x8x2x4xf32>
  %o = posenc.attention %q, %kr, %v causal outs(%init) : tensor<1x8x2x4xf32>, tensor<1x8x1x4xf32>, tensor<1x8x1x4xf32>, tensor<1x8x2x4xf32>
  return %o : tensor<1x8x2x4xf32>
}

// -----

// rotary_dim 0 rotates nothing: decoupled keeps the keys whole (as
// posenc.compress_kv does) and compresses the values alone.
// DEC-LABEL: func @rotary_dim_zero
// DEC: %[[KR:.+]] = posenc.rope %{{.+}}, %{{.+}} layout half {rotary_dim = 0 : i64} : tensor<1x8x1x4xf32>
// DEC: posenc.attention %{{.+}}, %[[KR]], %{{.+}} causal outs(
func.func @rotary_dim_zero(%x: tensor<8x4xf32>, %q: tensor<1x8x2x4xf32>, %pos: tensor<8xi64>) -> tensor<1x8x2x4xf32> {
  %zero = arith.constant 0.0 : f32
  %wk = arith.constant dense<[[1.0, 0.5, -1.0, 2.0], [0.0, 1.0, 0.25, -0.5], [2.0, -1.0, 0.0, 1.0], [0.5, 0.5, 1.5, 0.0]]> : tensor<4x4xf32>
  %wv = arith.constant dense<[[0.0, 1.0, 2.0, -1.0], [1.0, 0.0, -0.5, 0.5], [0.25, 2.0, 1.0, 0.0], [-1.0, 0.5, 0.0, 1.0]]> : tensor<4x4xf32>
  %e = tensor.empty() : tensor<8x4xf32>
  %z = linalg.fill ins(%zero : f32) outs(%e : tensor<8x4xf32>) -> tensor<8x4xf32>
  %k2 = linalg.matmul ins(%x, %wk : tensor<8x4xf32>, tensor<4x4xf32>) outs(%z : tensor<8x4xf32>) -> tensor<8x4xf32>
  %v2 = linalg.matmul ins(%x, %wv : tensor<8x4xf32>, tensor<4x4xf32>) outs(%z : tensor<8x4xf32>) -> tensor<8x4xf32>
  %k = tensor.expand_shape %k2 [[0, 1], [2, 3]] output_shape [1, 8, 1, 4] : tensor<8x4xf32> into tensor<1x8x1x4xf32>
  %v = tensor.expand_shape %v2 [[0, 1], [2, 3]] output_shape [1, 8, 1, 4] : tensor<8x4xf32> into tensor<1x8x1x4xf32>
  %kr = posenc.rope %k, %pos layout half {rotary_dim = 0 : i64} : tensor<1x8x1x4xf32>, tensor<8xi64>
  %init = tensor.empty() : tensor<1x8x2x4xf32>
  %o = posenc.attention %q, %kr, %v causal outs(%init) : tensor<1x8x2x4xf32>, tensor<1x8x1x4xf32>, tensor<1x8x1x4xf32>, tensor<1x8x2x4xf32>
  return %o : tensor<1x8x2x4xf32>
}

// -----

// Not a projection of constants: left alone.
// JOINT-LABEL: func @weights_are_arguments
// JOINT: posenc.attention %{{.+}}, %{{.+}}, %{{.+}} outs(%{{.+}}) : tensor<1x8x4x2xf32>, tensor<1x8x2x2xf32>, tensor<1x8x2x2xf32>, tensor<1x8x4x2xf32>
func.func @weights_are_arguments(%x: tensor<8x4xf32>, %q: tensor<1x8x4x2xf32>, %wk: tensor<4x4xf32>, %wv: tensor<4x4xf32>) -> tensor<1x8x4x2xf32> {
  %zero = arith.constant 0.0 : f32
  %e = tensor.empty() : tensor<8x4xf32>
  %z = linalg.fill ins(%zero : f32) outs(%e : tensor<8x4xf32>) -> tensor<8x4xf32>
  %k2 = linalg.matmul ins(%x, %wk : tensor<8x4xf32>, tensor<4x4xf32>) outs(%z : tensor<8x4xf32>) -> tensor<8x4xf32>
  %v2 = linalg.matmul ins(%x, %wv : tensor<8x4xf32>, tensor<4x4xf32>) outs(%z : tensor<8x4xf32>) -> tensor<8x4xf32>
  %k = tensor.expand_shape %k2 [[0, 1], [2, 3]] output_shape [1, 8, 2, 2] : tensor<8x4xf32> into tensor<1x8x2x2xf32>
  %v = tensor.expand_shape %v2 [[0, 1], [2, 3]] output_shape [1, 8, 2, 2] : tensor<8x4xf32> into tensor<1x8x2x2xf32>
  %init = tensor.empty() : tensor<1x8x4x2xf32>
  %o = posenc.attention %q, %k, %v outs(%init) : tensor<1x8x4x2xf32>, tensor<1x8x2x2xf32>, tensor<1x8x2x2xf32>, tensor<1x8x4x2xf32>
  return %o : tensor<1x8x4x2xf32>
}

// -----

// Constant q and output projections absorb B_k and B_v, as MLA's weights
// absorb W_uk and W_uv: q_lat = x·W_q' with W_q' [4, 4·3] (4 query heads,
// rank 3), out = o_lat·W_o' with W_o' [4·3, 4]; no per-head contraction is
// left.
// JOINT-LABEL: func @absorbed_into_weights
// JOINT-NOT: linalg.generic
// JOINT-DAG: %[[LAT:.+]] = linalg.matmul ins(%{{.+}}, %{{.+}} : tensor<8x4xf32>, tensor<4x3xf32>)
// JOINT-DAG: %[[QL:.+]] = linalg.matmul ins(%{{.+}}, %{{.+}} : tensor<8x4xf32>, tensor<4x12xf32>)
// JOINT: %[[Q4:.+]] = tensor.expand_shape %[[QL]] {{\[}}[0, 1], [2, 3]] output_shape [1, 8, 4, 3]
// JOINT: %[[O:.+]] = posenc.attention %[[Q4]], %{{.+}}, %{{.+}} causal outs(%{{.+}}) {scale = 0.70710678118654746 : f64} : tensor<1x8x4x3xf32>, tensor<1x8x1x3xf32>, tensor<1x8x1x3xf32>, tensor<1x8x4x3xf32>
// JOINT: %[[F:.+]] = tensor.collapse_shape %[[O]] {{\[}}[0, 1], [2, 3]] : tensor<1x8x4x3xf32> into tensor<8x12xf32>
// JOINT: %[[OUT:.+]] = linalg.matmul ins(%[[F]], %{{.+}} : tensor<8x12xf32>, tensor<12x4xf32>)
// JOINT: return %[[OUT]]
func.func @absorbed_into_weights(%x: tensor<8x4xf32>) -> tensor<8x4xf32> {
  %zero = arith.constant 0.0 : f32
  %wq = arith.constant dense<[[1.0, 0.0, 0.5, -1.0, 0.25, 2.0, 0.0, 1.0], [0.0, 1.0, -0.5, 0.0, 1.0, 0.0, 0.5, 0.5], [2.0, 0.0, 0.0, 1.0, -1.0, 0.5, 1.0, 0.0], [0.5, -0.5, 1.0, 0.0, 0.0, 1.0, 0.0, -2.0]]> : tensor<4x8xf32>
  %wk = arith.constant dense<[[1.0, 0.5, -1.0, 2.0], [0.0, 1.0, 0.25, -0.5], [2.0, -1.0, 0.0, 1.0], [0.5, 0.5, 1.5, 0.0]]> : tensor<4x4xf32>
  %wv = arith.constant dense<[[0.0, 1.0, 2.0, -1.0], [1.0, 0.0, -0.5, 0.5], [0.25, 2.0, 1.0, 0.0], [-1.0, 0.5, 0.0, 1.0]]> : tensor<4x4xf32>
  %wo = arith.constant dense<0.125> : tensor<8x4xf32>
  %e8 = tensor.empty() : tensor<8x8xf32>
  %z8 = linalg.fill ins(%zero : f32) outs(%e8 : tensor<8x8xf32>) -> tensor<8x8xf32>
  %q2 = linalg.matmul ins(%x, %wq : tensor<8x4xf32>, tensor<4x8xf32>) outs(%z8 : tensor<8x8xf32>) -> tensor<8x8xf32>
  %q = tensor.expand_shape %q2 [[0, 1], [2, 3]] output_shape [1, 8, 4, 2] : tensor<8x8xf32> into tensor<1x8x4x2xf32>
  %e = tensor.empty() : tensor<8x4xf32>
  %z = linalg.fill ins(%zero : f32) outs(%e : tensor<8x4xf32>) -> tensor<8x4xf32>
  %k2 = linalg.matmul ins(%x, %wk : tensor<8x4xf32>, tensor<4x4xf32>) outs(%z : tensor<8x4xf32>) -> tensor<8x4xf32>
  %v2 = linalg.matmul ins(%x, %wv : tensor<8x4xf32>, tensor<4x4xf32>) outs(%z : tensor<8x4xf32>) -> tensor<8x4xf32>
  %k = tensor.expand_shape %k2 [[0, 1], [2, 3]] output_shape [1, 8, 2, 2] : tensor<8x4xf32> into tensor<1x8x2x2xf32>
  %v = tensor.expand_shape %v2 [[0, 1], [2, 3]] output_shape [1, 8, 2, 2] : tensor<8x4xf32> into tensor<1x8x2x2xf32>
  %init = tensor.empty() : tensor<1x8x4x2xf32>
  %o = posenc.attention %q, %k, %v causal outs(%init) : tensor<1x8x4x2xf32>, tensor<1x8x2x2xf32>, tensor<1x8x2x2xf32>, tensor<1x8x4x2xf32>
  %o2 = tensor.collapse_shape %o [[0, 1], [2, 3]] : tensor<1x8x4x2xf32> into tensor<8x8xf32>
  %eo = tensor.empty() : tensor<8x4xf32>
  %zo = linalg.fill ins(%zero : f32) outs(%eo : tensor<8x4xf32>) -> tensor<8x4xf32>
  %out = linalg.matmul ins(%o2, %wo : tensor<8x8xf32>, tensor<8x4xf32>) outs(%zo : tensor<8x4xf32>) -> tensor<8x4xf32>
  return %out : tensor<8x4xf32>
}

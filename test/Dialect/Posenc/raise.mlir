// RUN: posenc-opt %s -posenc-raise -split-input-file | FileCheck %s
// Through the plugin, as another MLIR compiler would run it:
// RUN: mlir-opt %s --load-dialect-plugin=%posenc_plugin --load-pass-plugin=%posenc_plugin --pass-pipeline='builtin.module(posenc-raise)' -split-input-file | FileCheck %s
// RUN: mlir-opt %s --load-dialect-plugin=%posenc_plugin --load-pass-plugin=%posenc_plugin --pass-pipeline='builtin.module(posenc-raise,posenc-lower-to-cpu)' -split-input-file | FileCheck %s --check-prefix=LOWER

// Programs as test/python/raise_programs.py writes them (one linalg op per
// importer op); test_raise.py runs them before and after against float64.
// LOWER-LABEL: llvm.func @batch_matmul_softmax
// LOWER-LABEL: llvm.func @torch_bhsd_decomposed

// 3-D [N, S, D] as linalg.batch_matmul with a transposed K, a splat
// divisor and linalg.softmax: N becomes posenc's batch (one head), so Q,
// K and V are reshaped, not transposed, and K's transpose folds away.
// CHECK-LABEL: func @batch_matmul_softmax
// CHECK: %[[Q:.+]] = tensor.expand_shape %arg0 {{\[\[}}0], [1, 2], [3]] output_shape [2, 5, 1, 8]
// CHECK: %[[K:.+]] = tensor.expand_shape %arg1 {{\[\[}}0], [1, 2], [3]] output_shape [2, 7, 1, 8]
// CHECK: posenc.attention %[[Q]], %[[K]], %{{.+}} outs(%{{.+}}) {scale = 0.35355339664408242 : f64} : tensor<2x5x1x8xf32>, tensor<2x7x1x8xf32>, tensor<2x7x1x6xf32>, tensor<2x5x1x6xf32>
// CHECK: tensor.collapse_shape %{{.+}} {{\[\[}}0], [1, 2], [3]] : tensor<2x5x1x6xf32> into tensor<2x5x6xf32>
// CHECK-NOT: linalg.softmax
// CHECK-NOT: linalg.batch_matmul
// CHECK-NOT: linalg.transpose
func.func @batch_matmul_softmax(%q: tensor<2x5x8xf32>, %k: tensor<2x7x8xf32>, %v: tensor<2x7x6xf32>) -> tensor<2x5x6xf32> {
  %v1 = tensor.empty() : tensor<2x8x7xf32>
  %v2 = linalg.transpose ins(%k : tensor<2x7x8xf32>) outs(%v1 : tensor<2x8x7xf32>) permutation = [0, 2, 1]
  %v3 = arith.constant 0.0 : f32
  %v5 = tensor.empty() : tensor<2x5x7xf32>
  %v4 = linalg.fill ins(%v3 : f32) outs(%v5 : tensor<2x5x7xf32>) -> tensor<2x5x7xf32>
  %v6 = linalg.batch_matmul ins(%q, %v2 : tensor<2x5x8xf32>, tensor<2x8x7xf32>) outs(%v4 : tensor<2x5x7xf32>) -> tensor<2x5x7xf32>
  %v8 = tensor.empty() : tensor<2x5x7xf32>
  %v7 = arith.constant dense<2.8284271247461903> : tensor<2x5x7xf32>
  %v9 = linalg.div ins(%v6, %v7 : tensor<2x5x7xf32>, tensor<2x5x7xf32>) outs(%v8 : tensor<2x5x7xf32>) -> tensor<2x5x7xf32>
  %v10 = tensor.empty() : tensor<2x5x7xf32>
  %v11 = linalg.softmax dimension(2) ins(%v9 : tensor<2x5x7xf32>) outs(%v10 : tensor<2x5x7xf32>) -> tensor<2x5x7xf32>
  %v12 = arith.constant 0.0 : f32
  %v14 = tensor.empty() : tensor<2x5x6xf32>
  %v13 = linalg.fill ins(%v12 : f32) outs(%v14 : tensor<2x5x6xf32>) -> tensor<2x5x6xf32>
  %v15 = linalg.batch_matmul ins(%v11, %v : tensor<2x5x7xf32>, tensor<2x7x6xf32>) outs(%v13 : tensor<2x5x6xf32>) -> tensor<2x5x6xf32>
  return %v15 : tensor<2x5x6xf32>
}

// -----

// torch's [B, H, S, D] on linalg.generic: K read transposed by the
// contraction's map, a scale, an ALiBi-like [H, Sq, Sk] bias broadcast over
// B, the softmax decomposed (max from -inf, exp(s - max), sum, divide).
// CHECK-LABEL: func @torch_bhsd_decomposed
// CHECK: posenc.attention %{{.+}}, %{{.+}}, %{{.+}} bias(%arg3 : tensor<3x5x7xf32>) outs(%{{.+}}) {scale = 0.34999999403953552 : f64} : tensor<2x5x3x8xf32>, tensor<2x7x3x8xf32>, tensor<2x7x3x6xf32>, tensor<2x5x3x6xf32>
// CHECK-NOT: math.exp
// CHECK-NOT: "reduction"
func.func @torch_bhsd_decomposed(%q: tensor<2x3x5x8xf32>, %k: tensor<2x3x7x8xf32>, %v: tensor<2x3x7x6xf32>, %bias: tensor<3x5x7xf32>) -> tensor<2x3x5x6xf32> {
  %v1 = arith.constant 0.0 : f32
  %v3 = tensor.empty() : tensor<2x3x5x7xf32>
  %v2 = linalg.fill ins(%v1 : f32) outs(%v3 : tensor<2x3x5x7xf32>) -> tensor<2x3x5x7xf32>
  %v4 = linalg.generic {indexing_maps = [affine_map<(d0, d1, d2, d3, d4) -> (d0, d1, d2, d4)>, affine_map<(d0, d1, d2, d3, d4) -> (d0, d1, d3, d4)>, affine_map<(d0, d1, d2, d3, d4) -> (d0, d1, d2, d3)>], iterator_types = ["parallel", "parallel", "parallel", "parallel", "reduction"]} ins(%q, %k : tensor<2x3x5x8xf32>, tensor<2x3x7x8xf32>) outs(%v2 : tensor<2x3x5x7xf32>) {
  ^bb0(%x: f32, %y: f32, %acc: f32):
    %m = arith.mulf %x, %y : f32
    %s = arith.addf %acc, %m : f32
    linalg.yield %s : f32
  } -> tensor<2x3x5x7xf32>
  %v5 = tensor.empty() : tensor<2x3x5x7xf32>
  %v6 = linalg.generic {indexing_maps = [affine_map<(d0, d1, d2, d3) -> (d0, d1, d2, d3)>, affine_map<(d0, d1, d2, d3) -> (d0, d1, d2, d3)>], iterator_types = ["parallel", "parallel", "parallel", "parallel"]} ins(%v4 : tensor<2x3x5x7xf32>) outs(%v5 : tensor<2x3x5x7xf32>) {
  ^bb0(%a0: f32, %acc: f32):
    %c = arith.constant 0.35 : f32
    %r = arith.mulf %a0, %c : f32
    linalg.yield %r : f32
  } -> tensor<2x3x5x7xf32>
  %v7 = tensor.empty() : tensor<2x3x5x7xf32>
  %v8 = linalg.generic {indexing_maps = [affine_map<(d0, d1, d2, d3) -> (d0, d1, d2, d3)>, affine_map<(d0, d1, d2, d3) -> (d1, d2, d3)>, affine_map<(d0, d1, d2, d3) -> (d0, d1, d2, d3)>], iterator_types = ["parallel", "parallel", "parallel", "parallel"]} ins(%v6, %bias : tensor<2x3x5x7xf32>, tensor<3x5x7xf32>) outs(%v7 : tensor<2x3x5x7xf32>) {
  ^bb0(%a0: f32, %a1: f32, %acc: f32):
    %r = arith.addf %a0, %a1 : f32
    linalg.yield %r : f32
  } -> tensor<2x3x5x7xf32>
  %v9 = arith.constant 0xFF800000 : f32
  %v11 = tensor.empty() : tensor<2x3x5xf32>
  %v10 = linalg.fill ins(%v9 : f32) outs(%v11 : tensor<2x3x5xf32>) -> tensor<2x3x5xf32>
  %v12 = linalg.generic {indexing_maps = [affine_map<(d0, d1, d2, d3) -> (d0, d1, d2, d3)>, affine_map<(d0, d1, d2, d3) -> (d0, d1, d2)>], iterator_types = ["parallel", "parallel", "parallel", "reduction"]} ins(%v8 : tensor<2x3x5x7xf32>) outs(%v10 : tensor<2x3x5xf32>) {
  ^bb0(%a0: f32, %acc: f32):
    %r = arith.maximumf %a0, %acc : f32
    linalg.yield %r : f32
  } -> tensor<2x3x5xf32>
  %v13 = tensor.empty() : tensor<2x3x5x7xf32>
  %v14 = linalg.generic {indexing_maps = [affine_map<(d0, d1, d2, d3) -> (d0, d1, d2, d3)>, affine_map<(d0, d1, d2, d3) -> (d0, d1, d2)>, affine_map<(d0, d1, d2, d3) -> (d0, d1, d2, d3)>], iterator_types = ["parallel", "parallel", "parallel", "parallel"]} ins(%v8, %v12 : tensor<2x3x5x7xf32>, tensor<2x3x5xf32>) outs(%v13 : tensor<2x3x5x7xf32>) {
  ^bb0(%a0: f32, %a1: f32, %acc: f32):
    %r = arith.subf %a0, %a1 : f32
    linalg.yield %r : f32
  } -> tensor<2x3x5x7xf32>
  %v15 = tensor.empty() : tensor<2x3x5x7xf32>
  %v16 = linalg.generic {indexing_maps = [affine_map<(d0, d1, d2, d3) -> (d0, d1, d2, d3)>, affine_map<(d0, d1, d2, d3) -> (d0, d1, d2, d3)>], iterator_types = ["parallel", "parallel", "parallel", "parallel"]} ins(%v14 : tensor<2x3x5x7xf32>) outs(%v15 : tensor<2x3x5x7xf32>) {
  ^bb0(%a0: f32, %acc: f32):
    %r = math.exp %a0 : f32
    linalg.yield %r : f32
  } -> tensor<2x3x5x7xf32>
  %v17 = arith.constant 0.0 : f32
  %v19 = tensor.empty() : tensor<2x3x5xf32>
  %v18 = linalg.fill ins(%v17 : f32) outs(%v19 : tensor<2x3x5xf32>) -> tensor<2x3x5xf32>
  %v20 = linalg.generic {indexing_maps = [affine_map<(d0, d1, d2, d3) -> (d0, d1, d2, d3)>, affine_map<(d0, d1, d2, d3) -> (d0, d1, d2)>], iterator_types = ["parallel", "parallel", "parallel", "reduction"]} ins(%v16 : tensor<2x3x5x7xf32>) outs(%v18 : tensor<2x3x5xf32>) {
  ^bb0(%a0: f32, %acc: f32):
    %r = arith.addf %a0, %acc : f32
    linalg.yield %r : f32
  } -> tensor<2x3x5xf32>
  %v21 = tensor.empty() : tensor<2x3x5x7xf32>
  %v22 = linalg.generic {indexing_maps = [affine_map<(d0, d1, d2, d3) -> (d0, d1, d2, d3)>, affine_map<(d0, d1, d2, d3) -> (d0, d1, d2)>, affine_map<(d0, d1, d2, d3) -> (d0, d1, d2, d3)>], iterator_types = ["parallel", "parallel", "parallel", "parallel"]} ins(%v16, %v20 : tensor<2x3x5x7xf32>, tensor<2x3x5xf32>) outs(%v21 : tensor<2x3x5x7xf32>) {
  ^bb0(%a0: f32, %a1: f32, %acc: f32):
    %r = arith.divf %a0, %a1 : f32
    linalg.yield %r : f32
  } -> tensor<2x3x5x7xf32>
  %v23 = arith.constant 0.0 : f32
  %v25 = tensor.empty() : tensor<2x3x5x6xf32>
  %v24 = linalg.fill ins(%v23 : f32) outs(%v25 : tensor<2x3x5x6xf32>) -> tensor<2x3x5x6xf32>
  %v26 = linalg.generic {indexing_maps = [affine_map<(d0, d1, d2, d3, d4) -> (d0, d1, d2, d4)>, affine_map<(d0, d1, d2, d3, d4) -> (d0, d1, d4, d3)>, affine_map<(d0, d1, d2, d3, d4) -> (d0, d1, d2, d3)>], iterator_types = ["parallel", "parallel", "parallel", "parallel", "reduction"]} ins(%v22, %v : tensor<2x3x5x7xf32>, tensor<2x3x7x6xf32>) outs(%v24 : tensor<2x3x5x6xf32>) {
  ^bb0(%x: f32, %y: f32, %acc: f32):
    %m = arith.mulf %x, %y : f32
    %s = arith.addf %acc, %m : f32
    linalg.yield %s : f32
  } -> tensor<2x3x5x6xf32>
  return %v26 : tensor<2x3x5x6xf32>
}

// -----

// The softmax normalizes over the queries, not the keys.
// CHECK-LABEL: func @negative_softmax_over_queries
// CHECK-NOT: posenc.attention
func.func @negative_softmax_over_queries(%q: tensor<2x5x8xf32>, %k: tensor<2x7x8xf32>, %v: tensor<2x7x6xf32>) -> tensor<2x5x6xf32> {
  %v1 = tensor.empty() : tensor<2x8x7xf32>
  %v2 = linalg.transpose ins(%k : tensor<2x7x8xf32>) outs(%v1 : tensor<2x8x7xf32>) permutation = [0, 2, 1]
  %v3 = arith.constant 0.0 : f32
  %v5 = tensor.empty() : tensor<2x5x7xf32>
  %v4 = linalg.fill ins(%v3 : f32) outs(%v5 : tensor<2x5x7xf32>) -> tensor<2x5x7xf32>
  %v6 = linalg.batch_matmul ins(%q, %v2 : tensor<2x5x8xf32>, tensor<2x8x7xf32>) outs(%v4 : tensor<2x5x7xf32>) -> tensor<2x5x7xf32>
  %v7 = tensor.empty() : tensor<2x5x7xf32>
  %v8 = linalg.softmax dimension(1) ins(%v6 : tensor<2x5x7xf32>) outs(%v7 : tensor<2x5x7xf32>) -> tensor<2x5x7xf32>
  %v9 = arith.constant 0.0 : f32
  %v11 = tensor.empty() : tensor<2x5x6xf32>
  %v10 = linalg.fill ins(%v9 : f32) outs(%v11 : tensor<2x5x6xf32>) -> tensor<2x5x6xf32>
  %v12 = linalg.batch_matmul ins(%v8, %v : tensor<2x5x7xf32>, tensor<2x7x6xf32>) outs(%v10 : tensor<2x5x6xf32>) -> tensor<2x5x6xf32>
  return %v12 : tensor<2x5x6xf32>
}

// -----

// The bias is read transposed ([.., Sk, Sq]): not numpy broadcasting, so
// not posenc.attention's bias.
// CHECK-LABEL: func @negative_bias_read_transposed
// CHECK-NOT: posenc.attention
func.func @negative_bias_read_transposed(%q: tensor<2x3x5x8xf32>, %k: tensor<2x3x7x8xf32>, %v: tensor<2x3x7x6xf32>, %bias: tensor<2x3x7x5xf32>) -> tensor<2x3x5x6xf32> {
  %v1 = arith.constant 0.0 : f32
  %v3 = tensor.empty() : tensor<2x3x5x7xf32>
  %v2 = linalg.fill ins(%v1 : f32) outs(%v3 : tensor<2x3x5x7xf32>) -> tensor<2x3x5x7xf32>
  %v4 = linalg.generic {indexing_maps = [affine_map<(d0, d1, d2, d3, d4) -> (d0, d1, d2, d4)>, affine_map<(d0, d1, d2, d3, d4) -> (d0, d1, d3, d4)>, affine_map<(d0, d1, d2, d3, d4) -> (d0, d1, d2, d3)>], iterator_types = ["parallel", "parallel", "parallel", "parallel", "reduction"]} ins(%q, %k : tensor<2x3x5x8xf32>, tensor<2x3x7x8xf32>) outs(%v2 : tensor<2x3x5x7xf32>) {
  ^bb0(%x: f32, %y: f32, %acc: f32):
    %m = arith.mulf %x, %y : f32
    %s = arith.addf %acc, %m : f32
    linalg.yield %s : f32
  } -> tensor<2x3x5x7xf32>
  %v5 = tensor.empty() : tensor<2x3x5x7xf32>
  %v6 = linalg.generic {indexing_maps = [affine_map<(d0, d1, d2, d3) -> (d0, d1, d2, d3)>, affine_map<(d0, d1, d2, d3) -> (d0, d1, d3, d2)>, affine_map<(d0, d1, d2, d3) -> (d0, d1, d2, d3)>], iterator_types = ["parallel", "parallel", "parallel", "parallel"]} ins(%v4, %bias : tensor<2x3x5x7xf32>, tensor<2x3x7x5xf32>) outs(%v5 : tensor<2x3x5x7xf32>) {
  ^bb0(%a0: f32, %a1: f32, %acc: f32):
    %r = arith.addf %a0, %a1 : f32
    linalg.yield %r : f32
  } -> tensor<2x3x5x7xf32>
  %v7 = arith.constant 0xFF800000 : f32
  %v9 = tensor.empty() : tensor<2x3x5xf32>
  %v8 = linalg.fill ins(%v7 : f32) outs(%v9 : tensor<2x3x5xf32>) -> tensor<2x3x5xf32>
  %v10 = linalg.generic {indexing_maps = [affine_map<(d0, d1, d2, d3) -> (d0, d1, d2, d3)>, affine_map<(d0, d1, d2, d3) -> (d0, d1, d2)>], iterator_types = ["parallel", "parallel", "parallel", "reduction"]} ins(%v6 : tensor<2x3x5x7xf32>) outs(%v8 : tensor<2x3x5xf32>) {
  ^bb0(%a0: f32, %acc: f32):
    %r = arith.maximumf %a0, %acc : f32
    linalg.yield %r : f32
  } -> tensor<2x3x5xf32>
  %v11 = tensor.empty() : tensor<2x3x5x7xf32>
  %v12 = linalg.generic {indexing_maps = [affine_map<(d0, d1, d2, d3) -> (d0, d1, d2, d3)>, affine_map<(d0, d1, d2, d3) -> (d0, d1, d2)>, affine_map<(d0, d1, d2, d3) -> (d0, d1, d2, d3)>], iterator_types = ["parallel", "parallel", "parallel", "parallel"]} ins(%v6, %v10 : tensor<2x3x5x7xf32>, tensor<2x3x5xf32>) outs(%v11 : tensor<2x3x5x7xf32>) {
  ^bb0(%a0: f32, %a1: f32, %acc: f32):
    %r = arith.subf %a0, %a1 : f32
    linalg.yield %r : f32
  } -> tensor<2x3x5x7xf32>
  %v13 = tensor.empty() : tensor<2x3x5x7xf32>
  %v14 = linalg.generic {indexing_maps = [affine_map<(d0, d1, d2, d3) -> (d0, d1, d2, d3)>, affine_map<(d0, d1, d2, d3) -> (d0, d1, d2, d3)>], iterator_types = ["parallel", "parallel", "parallel", "parallel"]} ins(%v12 : tensor<2x3x5x7xf32>) outs(%v13 : tensor<2x3x5x7xf32>) {
  ^bb0(%a0: f32, %acc: f32):
    %r = math.exp %a0 : f32
    linalg.yield %r : f32
  } -> tensor<2x3x5x7xf32>
  %v15 = arith.constant 0.0 : f32
  %v17 = tensor.empty() : tensor<2x3x5xf32>
  %v16 = linalg.fill ins(%v15 : f32) outs(%v17 : tensor<2x3x5xf32>) -> tensor<2x3x5xf32>
  %v18 = linalg.generic {indexing_maps = [affine_map<(d0, d1, d2, d3) -> (d0, d1, d2, d3)>, affine_map<(d0, d1, d2, d3) -> (d0, d1, d2)>], iterator_types = ["parallel", "parallel", "parallel", "reduction"]} ins(%v14 : tensor<2x3x5x7xf32>) outs(%v16 : tensor<2x3x5xf32>) {
  ^bb0(%a0: f32, %acc: f32):
    %r = arith.addf %a0, %acc : f32
    linalg.yield %r : f32
  } -> tensor<2x3x5xf32>
  %v19 = tensor.empty() : tensor<2x3x5x7xf32>
  %v20 = linalg.generic {indexing_maps = [affine_map<(d0, d1, d2, d3) -> (d0, d1, d2, d3)>, affine_map<(d0, d1, d2, d3) -> (d0, d1, d2)>, affine_map<(d0, d1, d2, d3) -> (d0, d1, d2, d3)>], iterator_types = ["parallel", "parallel", "parallel", "parallel"]} ins(%v14, %v18 : tensor<2x3x5x7xf32>, tensor<2x3x5xf32>) outs(%v19 : tensor<2x3x5x7xf32>) {
  ^bb0(%a0: f32, %a1: f32, %acc: f32):
    %r = arith.divf %a0, %a1 : f32
    linalg.yield %r : f32
  } -> tensor<2x3x5x7xf32>
  %v21 = arith.constant 0.0 : f32
  %v23 = tensor.empty() : tensor<2x3x5x6xf32>
  %v22 = linalg.fill ins(%v21 : f32) outs(%v23 : tensor<2x3x5x6xf32>) -> tensor<2x3x5x6xf32>
  %v24 = linalg.generic {indexing_maps = [affine_map<(d0, d1, d2, d3, d4) -> (d0, d1, d2, d4)>, affine_map<(d0, d1, d2, d3, d4) -> (d0, d1, d4, d3)>, affine_map<(d0, d1, d2, d3, d4) -> (d0, d1, d2, d3)>], iterator_types = ["parallel", "parallel", "parallel", "parallel", "reduction"]} ins(%v20, %v : tensor<2x3x5x7xf32>, tensor<2x3x7x6xf32>) outs(%v22 : tensor<2x3x5x6xf32>) {
  ^bb0(%x: f32, %y: f32, %acc: f32):
    %m = arith.mulf %x, %y : f32
    %s = arith.addf %acc, %m : f32
    linalg.yield %s : f32
  } -> tensor<2x3x5x6xf32>
  return %v24 : tensor<2x3x5x6xf32>
}

// -----

// exp(s - r) where r is a row sum, not the row max.
// CHECK-LABEL: func @negative_exp_minus_sum
// CHECK-NOT: posenc.attention
func.func @negative_exp_minus_sum(%q: tensor<2x5x8xf32>, %k: tensor<2x7x8xf32>, %v: tensor<2x7x6xf32>) -> tensor<2x5x6xf32> {
  %v1 = tensor.empty() : tensor<2x8x7xf32>
  %v2 = linalg.transpose ins(%k : tensor<2x7x8xf32>) outs(%v1 : tensor<2x8x7xf32>) permutation = [0, 2, 1]
  %v3 = arith.constant 0.0 : f32
  %v5 = tensor.empty() : tensor<2x5x7xf32>
  %v4 = linalg.fill ins(%v3 : f32) outs(%v5 : tensor<2x5x7xf32>) -> tensor<2x5x7xf32>
  %v6 = linalg.generic {indexing_maps = [affine_map<(d0, d1, d2, d3) -> (d0, d1, d3)>, affine_map<(d0, d1, d2, d3) -> (d0, d3, d2)>, affine_map<(d0, d1, d2, d3) -> (d0, d1, d2)>], iterator_types = ["parallel", "parallel", "parallel", "reduction"]} ins(%q, %v2 : tensor<2x5x8xf32>, tensor<2x8x7xf32>) outs(%v4 : tensor<2x5x7xf32>) {
  ^bb0(%x: f32, %y: f32, %acc: f32):
    %m = arith.mulf %x, %y : f32
    %s = arith.addf %acc, %m : f32
    linalg.yield %s : f32
  } -> tensor<2x5x7xf32>
  %v7 = arith.constant 0xFF800000 : f32
  %v9 = tensor.empty() : tensor<2x5xf32>
  %v8 = linalg.fill ins(%v7 : f32) outs(%v9 : tensor<2x5xf32>) -> tensor<2x5xf32>
  %v10 = linalg.generic {indexing_maps = [affine_map<(d0, d1, d2) -> (d0, d1, d2)>, affine_map<(d0, d1, d2) -> (d0, d1)>], iterator_types = ["parallel", "parallel", "reduction"]} ins(%v6 : tensor<2x5x7xf32>) outs(%v8 : tensor<2x5xf32>) {
  ^bb0(%a0: f32, %acc: f32):
    %r = arith.addf %a0, %acc : f32
    linalg.yield %r : f32
  } -> tensor<2x5xf32>
  %v11 = tensor.empty() : tensor<2x5x7xf32>
  %v12 = linalg.generic {indexing_maps = [affine_map<(d0, d1, d2) -> (d0, d1, d2)>, affine_map<(d0, d1, d2) -> (d0, d1)>, affine_map<(d0, d1, d2) -> (d0, d1, d2)>], iterator_types = ["parallel", "parallel", "parallel"]} ins(%v6, %v10 : tensor<2x5x7xf32>, tensor<2x5xf32>) outs(%v11 : tensor<2x5x7xf32>) {
  ^bb0(%a0: f32, %a1: f32, %acc: f32):
    %d = arith.subf %a0, %a1 : f32
    %r = math.exp %d : f32
    linalg.yield %r : f32
  } -> tensor<2x5x7xf32>
  %v13 = arith.constant 0.0 : f32
  %v15 = tensor.empty() : tensor<2x5xf32>
  %v14 = linalg.fill ins(%v13 : f32) outs(%v15 : tensor<2x5xf32>) -> tensor<2x5xf32>
  %v16 = linalg.generic {indexing_maps = [affine_map<(d0, d1, d2) -> (d0, d1, d2)>, affine_map<(d0, d1, d2) -> (d0, d1)>], iterator_types = ["parallel", "parallel", "reduction"]} ins(%v12 : tensor<2x5x7xf32>) outs(%v14 : tensor<2x5xf32>) {
  ^bb0(%a0: f32, %acc: f32):
    %r = arith.addf %a0, %acc : f32
    linalg.yield %r : f32
  } -> tensor<2x5xf32>
  %v17 = tensor.empty() : tensor<2x5x7xf32>
  %v18 = linalg.generic {indexing_maps = [affine_map<(d0, d1, d2) -> (d0, d1, d2)>, affine_map<(d0, d1, d2) -> (d0, d1)>, affine_map<(d0, d1, d2) -> (d0, d1, d2)>], iterator_types = ["parallel", "parallel", "parallel"]} ins(%v12, %v16 : tensor<2x5x7xf32>, tensor<2x5xf32>) outs(%v17 : tensor<2x5x7xf32>) {
  ^bb0(%a0: f32, %a1: f32, %acc: f32):
    %r = arith.divf %a0, %a1 : f32
    linalg.yield %r : f32
  } -> tensor<2x5x7xf32>
  %v19 = arith.constant 0.0 : f32
  %v21 = tensor.empty() : tensor<2x5x6xf32>
  %v20 = linalg.fill ins(%v19 : f32) outs(%v21 : tensor<2x5x6xf32>) -> tensor<2x5x6xf32>
  %v22 = linalg.generic {indexing_maps = [affine_map<(d0, d1, d2, d3) -> (d0, d1, d3)>, affine_map<(d0, d1, d2, d3) -> (d0, d3, d2)>, affine_map<(d0, d1, d2, d3) -> (d0, d1, d2)>], iterator_types = ["parallel", "parallel", "parallel", "reduction"]} ins(%v18, %v : tensor<2x5x7xf32>, tensor<2x7x6xf32>) outs(%v20 : tensor<2x5x6xf32>) {
  ^bb0(%x: f32, %y: f32, %acc: f32):
    %m = arith.mulf %x, %y : f32
    %s = arith.addf %acc, %m : f32
    linalg.yield %s : f32
  } -> tensor<2x5x6xf32>
  return %v22 : tensor<2x5x6xf32>
}

// -----

// P·V accumulates into ones.
// CHECK-LABEL: func @negative_nonzero_accumulator
// CHECK-NOT: posenc.attention
func.func @negative_nonzero_accumulator(%q: tensor<2x5x8xf32>, %k: tensor<2x7x8xf32>, %v: tensor<2x7x6xf32>) -> tensor<2x5x6xf32> {
  %v1 = tensor.empty() : tensor<2x8x7xf32>
  %v2 = linalg.transpose ins(%k : tensor<2x7x8xf32>) outs(%v1 : tensor<2x8x7xf32>) permutation = [0, 2, 1]
  %v3 = arith.constant 0.0 : f32
  %v5 = tensor.empty() : tensor<2x5x7xf32>
  %v4 = linalg.fill ins(%v3 : f32) outs(%v5 : tensor<2x5x7xf32>) -> tensor<2x5x7xf32>
  %v6 = linalg.generic {indexing_maps = [affine_map<(d0, d1, d2, d3) -> (d0, d1, d3)>, affine_map<(d0, d1, d2, d3) -> (d0, d3, d2)>, affine_map<(d0, d1, d2, d3) -> (d0, d1, d2)>], iterator_types = ["parallel", "parallel", "parallel", "reduction"]} ins(%q, %v2 : tensor<2x5x8xf32>, tensor<2x8x7xf32>) outs(%v4 : tensor<2x5x7xf32>) {
  ^bb0(%x: f32, %y: f32, %acc: f32):
    %m = arith.mulf %x, %y : f32
    %s = arith.addf %acc, %m : f32
    linalg.yield %s : f32
  } -> tensor<2x5x7xf32>
  %v7 = tensor.empty() : tensor<2x5x7xf32>
  %v8 = linalg.softmax dimension(2) ins(%v6 : tensor<2x5x7xf32>) outs(%v7 : tensor<2x5x7xf32>) -> tensor<2x5x7xf32>
  %v9 = arith.constant 1.0 : f32
  %v11 = tensor.empty() : tensor<2x5x6xf32>
  %v10 = linalg.fill ins(%v9 : f32) outs(%v11 : tensor<2x5x6xf32>) -> tensor<2x5x6xf32>
  %v12 = linalg.generic {indexing_maps = [affine_map<(d0, d1, d2, d3) -> (d0, d1, d3)>, affine_map<(d0, d1, d2, d3) -> (d0, d3, d2)>, affine_map<(d0, d1, d2, d3) -> (d0, d1, d2)>], iterator_types = ["parallel", "parallel", "parallel", "reduction"]} ins(%v8, %v : tensor<2x5x7xf32>, tensor<2x7x6xf32>) outs(%v10 : tensor<2x5x6xf32>) {
  ^bb0(%x: f32, %y: f32, %acc: f32):
    %m = arith.mulf %x, %y : f32
    %s = arith.addf %acc, %m : f32
    linalg.yield %s : f32
  } -> tensor<2x5x6xf32>
  return %v12 : tensor<2x5x6xf32>
}

// -----

// Hugging Face Llama's eager attention as an importer emits it: repeat_kv
// (expand_shape, a broadcasting generic, collapse_shape) on K and V, K
// transposed, a scale, the causal mask as a constant of the lowest f32,
// the decomposed softmax. One attention: GQA over the unrepeated K and V
// (2 kv heads for 4 query heads), `causal` instead of the mask tensor.
// CHECK-LABEL: func @hf_llama_gqa_causal
// CHECK: %[[K:.+]] = linalg.transpose ins(%arg1 : tensor<2x2x7x8xf32>) {{.*}} permutation = [0, 2, 1, 3]
// CHECK: posenc.attention %{{.+}}, %[[K]], %{{.+}} causal outs(%{{.+}}) {scale = 0.34999999403953552 : f64} : tensor<2x5x4x8xf32>, tensor<2x7x2x8xf32>, tensor<2x7x2x6xf32>, tensor<2x5x4x6xf32>
// CHECK-NOT: tensor.collapse_shape
// CHECK-NOT: arith.constant dense
func.func @hf_llama_gqa_causal(%q: tensor<2x4x5x8xf32>, %k: tensor<2x2x7x8xf32>, %v: tensor<2x2x7x6xf32>) -> tensor<2x4x5x6xf32> {
  %v1 = tensor.empty() : tensor<2x2x2x7x8xf32>
  %v3 = tensor.expand_shape %k [[0], [1, 2], [3], [4]] output_shape [2, 2, 1, 7, 8] : tensor<2x2x7x8xf32> into tensor<2x2x1x7x8xf32>
  %v4 = linalg.generic {indexing_maps = [affine_map<(d0, d1, d2, d3, d4) -> (d0, d1, 0, d3, d4)>, affine_map<(d0, d1, d2, d3, d4) -> (d0, d1, d2, d3, d4)>], iterator_types = ["parallel", "parallel", "parallel", "parallel", "parallel"]} ins(%v3 : tensor<2x2x1x7x8xf32>) outs(%v1 : tensor<2x2x2x7x8xf32>) {
  ^bb0(%a0: f32, %acc: f32):
    linalg.yield %a0 : f32
  } -> tensor<2x2x2x7x8xf32>
  %v5 = tensor.collapse_shape %v4 [[0], [1, 2], [3], [4]] : tensor<2x2x2x7x8xf32> into tensor<2x4x7x8xf32>
  %v6 = tensor.empty() : tensor<2x2x2x7x6xf32>
  %v8 = tensor.expand_shape %v [[0], [1, 2], [3], [4]] output_shape [2, 2, 1, 7, 6] : tensor<2x2x7x6xf32> into tensor<2x2x1x7x6xf32>
  %v9 = linalg.generic {indexing_maps = [affine_map<(d0, d1, d2, d3, d4) -> (d0, d1, 0, d3, d4)>, affine_map<(d0, d1, d2, d3, d4) -> (d0, d1, d2, d3, d4)>], iterator_types = ["parallel", "parallel", "parallel", "parallel", "parallel"]} ins(%v8 : tensor<2x2x1x7x6xf32>) outs(%v6 : tensor<2x2x2x7x6xf32>) {
  ^bb0(%a0: f32, %acc: f32):
    linalg.yield %a0 : f32
  } -> tensor<2x2x2x7x6xf32>
  %v10 = tensor.collapse_shape %v9 [[0], [1, 2], [3], [4]] : tensor<2x2x2x7x6xf32> into tensor<2x4x7x6xf32>
  %v11 = tensor.empty() : tensor<2x4x8x7xf32>
  %v12 = linalg.transpose ins(%v5 : tensor<2x4x7x8xf32>) outs(%v11 : tensor<2x4x8x7xf32>) permutation = [0, 1, 3, 2]
  %v13 = arith.constant 0.0 : f32
  %v15 = tensor.empty() : tensor<2x4x5x7xf32>
  %v14 = linalg.fill ins(%v13 : f32) outs(%v15 : tensor<2x4x5x7xf32>) -> tensor<2x4x5x7xf32>
  %v16 = linalg.generic {indexing_maps = [affine_map<(d0, d1, d2, d3, d4) -> (d0, d1, d2, d4)>, affine_map<(d0, d1, d2, d3, d4) -> (d0, d1, d4, d3)>, affine_map<(d0, d1, d2, d3, d4) -> (d0, d1, d2, d3)>], iterator_types = ["parallel", "parallel", "parallel", "parallel", "reduction"]} ins(%q, %v12 : tensor<2x4x5x8xf32>, tensor<2x4x8x7xf32>) outs(%v14 : tensor<2x4x5x7xf32>) {
  ^bb0(%x: f32, %y: f32, %acc: f32):
    %m = arith.mulf %x, %y : f32
    %s = arith.addf %acc, %m : f32
    linalg.yield %s : f32
  } -> tensor<2x4x5x7xf32>
  %v17 = tensor.empty() : tensor<2x4x5x7xf32>
  %v18 = linalg.generic {indexing_maps = [affine_map<(d0, d1, d2, d3) -> (d0, d1, d2, d3)>, affine_map<(d0, d1, d2, d3) -> (d0, d1, d2, d3)>], iterator_types = ["parallel", "parallel", "parallel", "parallel"]} ins(%v16 : tensor<2x4x5x7xf32>) outs(%v17 : tensor<2x4x5x7xf32>) {
  ^bb0(%a0: f32, %acc: f32):
    %c = arith.constant 0.35 : f32
    %r = arith.mulf %a0, %c : f32
    linalg.yield %r : f32
  } -> tensor<2x4x5x7xf32>
  %v19 = arith.constant dense<[[0.0, 0.0, 0.0, -3.40282347E+38, -3.40282347E+38, -3.40282347E+38, -3.40282347E+38], [0.0, 0.0, 0.0, 0.0, -3.40282347E+38, -3.40282347E+38, -3.40282347E+38], [0.0, 0.0, 0.0, 0.0, 0.0, -3.40282347E+38, -3.40282347E+38], [0.0, 0.0, 0.0, 0.0, 0.0, 0.0, -3.40282347E+38], [0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0]]> : tensor<5x7xf32>
  %v20 = tensor.empty() : tensor<2x4x5x7xf32>
  %v21 = linalg.generic {indexing_maps = [affine_map<(d0, d1, d2, d3) -> (d0, d1, d2, d3)>, affine_map<(d0, d1, d2, d3) -> (d2, d3)>, affine_map<(d0, d1, d2, d3) -> (d0, d1, d2, d3)>], iterator_types = ["parallel", "parallel", "parallel", "parallel"]} ins(%v18, %v19 : tensor<2x4x5x7xf32>, tensor<5x7xf32>) outs(%v20 : tensor<2x4x5x7xf32>) {
  ^bb0(%a0: f32, %a1: f32, %acc: f32):
    %r = arith.addf %a0, %a1 : f32
    linalg.yield %r : f32
  } -> tensor<2x4x5x7xf32>
  %v22 = arith.constant 0xFF800000 : f32
  %v24 = tensor.empty() : tensor<2x4x5xf32>
  %v23 = linalg.fill ins(%v22 : f32) outs(%v24 : tensor<2x4x5xf32>) -> tensor<2x4x5xf32>
  %v25 = linalg.generic {indexing_maps = [affine_map<(d0, d1, d2, d3) -> (d0, d1, d2, d3)>, affine_map<(d0, d1, d2, d3) -> (d0, d1, d2)>], iterator_types = ["parallel", "parallel", "parallel", "reduction"]} ins(%v21 : tensor<2x4x5x7xf32>) outs(%v23 : tensor<2x4x5xf32>) {
  ^bb0(%a0: f32, %acc: f32):
    %r = arith.maximumf %a0, %acc : f32
    linalg.yield %r : f32
  } -> tensor<2x4x5xf32>
  %v26 = tensor.empty() : tensor<2x4x5x7xf32>
  %v27 = linalg.generic {indexing_maps = [affine_map<(d0, d1, d2, d3) -> (d0, d1, d2, d3)>, affine_map<(d0, d1, d2, d3) -> (d0, d1, d2)>, affine_map<(d0, d1, d2, d3) -> (d0, d1, d2, d3)>], iterator_types = ["parallel", "parallel", "parallel", "parallel"]} ins(%v21, %v25 : tensor<2x4x5x7xf32>, tensor<2x4x5xf32>) outs(%v26 : tensor<2x4x5x7xf32>) {
  ^bb0(%a0: f32, %a1: f32, %acc: f32):
    %r = arith.subf %a0, %a1 : f32
    linalg.yield %r : f32
  } -> tensor<2x4x5x7xf32>
  %v28 = tensor.empty() : tensor<2x4x5x7xf32>
  %v29 = linalg.generic {indexing_maps = [affine_map<(d0, d1, d2, d3) -> (d0, d1, d2, d3)>, affine_map<(d0, d1, d2, d3) -> (d0, d1, d2, d3)>], iterator_types = ["parallel", "parallel", "parallel", "parallel"]} ins(%v27 : tensor<2x4x5x7xf32>) outs(%v28 : tensor<2x4x5x7xf32>) {
  ^bb0(%a0: f32, %acc: f32):
    %r = math.exp %a0 : f32
    linalg.yield %r : f32
  } -> tensor<2x4x5x7xf32>
  %v30 = arith.constant 0.0 : f32
  %v32 = tensor.empty() : tensor<2x4x5xf32>
  %v31 = linalg.fill ins(%v30 : f32) outs(%v32 : tensor<2x4x5xf32>) -> tensor<2x4x5xf32>
  %v33 = linalg.generic {indexing_maps = [affine_map<(d0, d1, d2, d3) -> (d0, d1, d2, d3)>, affine_map<(d0, d1, d2, d3) -> (d0, d1, d2)>], iterator_types = ["parallel", "parallel", "parallel", "reduction"]} ins(%v29 : tensor<2x4x5x7xf32>) outs(%v31 : tensor<2x4x5xf32>) {
  ^bb0(%a0: f32, %acc: f32):
    %r = arith.addf %a0, %acc : f32
    linalg.yield %r : f32
  } -> tensor<2x4x5xf32>
  %v34 = tensor.empty() : tensor<2x4x5x7xf32>
  %v35 = linalg.generic {indexing_maps = [affine_map<(d0, d1, d2, d3) -> (d0, d1, d2, d3)>, affine_map<(d0, d1, d2, d3) -> (d0, d1, d2)>, affine_map<(d0, d1, d2, d3) -> (d0, d1, d2, d3)>], iterator_types = ["parallel", "parallel", "parallel", "parallel"]} ins(%v29, %v33 : tensor<2x4x5x7xf32>, tensor<2x4x5xf32>) outs(%v34 : tensor<2x4x5x7xf32>) {
  ^bb0(%a0: f32, %a1: f32, %acc: f32):
    %r = arith.divf %a0, %a1 : f32
    linalg.yield %r : f32
  } -> tensor<2x4x5x7xf32>
  %v36 = arith.constant 0.0 : f32
  %v38 = tensor.empty() : tensor<2x4x5x6xf32>
  %v37 = linalg.fill ins(%v36 : f32) outs(%v38 : tensor<2x4x5x6xf32>) -> tensor<2x4x5x6xf32>
  %v39 = linalg.generic {indexing_maps = [affine_map<(d0, d1, d2, d3, d4) -> (d0, d1, d2, d4)>, affine_map<(d0, d1, d2, d3, d4) -> (d0, d1, d4, d3)>, affine_map<(d0, d1, d2, d3, d4) -> (d0, d1, d2, d3)>], iterator_types = ["parallel", "parallel", "parallel", "parallel", "reduction"]} ins(%v35, %v10 : tensor<2x4x5x7xf32>, tensor<2x4x7x6xf32>) outs(%v37 : tensor<2x4x5x6xf32>) {
  ^bb0(%x: f32, %y: f32, %acc: f32):
    %m = arith.mulf %x, %y : f32
    %s = arith.addf %acc, %m : f32
    linalg.yield %s : f32
  } -> tensor<2x4x5x6xf32>
  return %v39 : tensor<2x4x5x6xf32>
}

// -----

// A mask that also hides query 0's diagonal key is not causal: it stays a
// bias operand.
// CHECK-LABEL: func @mask_not_causal_stays_bias
// CHECK: posenc.attention %{{.+}}, %{{.+}}, %{{.+}} bias(%{{.+}} : tensor<5x7xf32>) outs(
func.func @mask_not_causal_stays_bias(%q: tensor<2x4x5x8xf32>, %k: tensor<2x2x7x8xf32>, %v: tensor<2x2x7x6xf32>) -> tensor<2x4x5x6xf32> {
  %v1 = tensor.empty() : tensor<2x2x2x7x8xf32>
  %v3 = tensor.expand_shape %k [[0], [1, 2], [3], [4]] output_shape [2, 2, 1, 7, 8] : tensor<2x2x7x8xf32> into tensor<2x2x1x7x8xf32>
  %v4 = linalg.generic {indexing_maps = [affine_map<(d0, d1, d2, d3, d4) -> (d0, d1, 0, d3, d4)>, affine_map<(d0, d1, d2, d3, d4) -> (d0, d1, d2, d3, d4)>], iterator_types = ["parallel", "parallel", "parallel", "parallel", "parallel"]} ins(%v3 : tensor<2x2x1x7x8xf32>) outs(%v1 : tensor<2x2x2x7x8xf32>) {
  ^bb0(%a0: f32, %acc: f32):
    linalg.yield %a0 : f32
  } -> tensor<2x2x2x7x8xf32>
  %v5 = tensor.collapse_shape %v4 [[0], [1, 2], [3], [4]] : tensor<2x2x2x7x8xf32> into tensor<2x4x7x8xf32>
  %v6 = tensor.empty() : tensor<2x2x2x7x6xf32>
  %v8 = tensor.expand_shape %v [[0], [1, 2], [3], [4]] output_shape [2, 2, 1, 7, 6] : tensor<2x2x7x6xf32> into tensor<2x2x1x7x6xf32>
  %v9 = linalg.generic {indexing_maps = [affine_map<(d0, d1, d2, d3, d4) -> (d0, d1, 0, d3, d4)>, affine_map<(d0, d1, d2, d3, d4) -> (d0, d1, d2, d3, d4)>], iterator_types = ["parallel", "parallel", "parallel", "parallel", "parallel"]} ins(%v8 : tensor<2x2x1x7x6xf32>) outs(%v6 : tensor<2x2x2x7x6xf32>) {
  ^bb0(%a0: f32, %acc: f32):
    linalg.yield %a0 : f32
  } -> tensor<2x2x2x7x6xf32>
  %v10 = tensor.collapse_shape %v9 [[0], [1, 2], [3], [4]] : tensor<2x2x2x7x6xf32> into tensor<2x4x7x6xf32>
  %v11 = tensor.empty() : tensor<2x4x8x7xf32>
  %v12 = linalg.transpose ins(%v5 : tensor<2x4x7x8xf32>) outs(%v11 : tensor<2x4x8x7xf32>) permutation = [0, 1, 3, 2]
  %v13 = arith.constant 0.0 : f32
  %v15 = tensor.empty() : tensor<2x4x5x7xf32>
  %v14 = linalg.fill ins(%v13 : f32) outs(%v15 : tensor<2x4x5x7xf32>) -> tensor<2x4x5x7xf32>
  %v16 = linalg.generic {indexing_maps = [affine_map<(d0, d1, d2, d3, d4) -> (d0, d1, d2, d4)>, affine_map<(d0, d1, d2, d3, d4) -> (d0, d1, d4, d3)>, affine_map<(d0, d1, d2, d3, d4) -> (d0, d1, d2, d3)>], iterator_types = ["parallel", "parallel", "parallel", "parallel", "reduction"]} ins(%q, %v12 : tensor<2x4x5x8xf32>, tensor<2x4x8x7xf32>) outs(%v14 : tensor<2x4x5x7xf32>) {
  ^bb0(%x: f32, %y: f32, %acc: f32):
    %m = arith.mulf %x, %y : f32
    %s = arith.addf %acc, %m : f32
    linalg.yield %s : f32
  } -> tensor<2x4x5x7xf32>
  %v17 = tensor.empty() : tensor<2x4x5x7xf32>
  %v18 = linalg.generic {indexing_maps = [affine_map<(d0, d1, d2, d3) -> (d0, d1, d2, d3)>, affine_map<(d0, d1, d2, d3) -> (d0, d1, d2, d3)>], iterator_types = ["parallel", "parallel", "parallel", "parallel"]} ins(%v16 : tensor<2x4x5x7xf32>) outs(%v17 : tensor<2x4x5x7xf32>) {
  ^bb0(%a0: f32, %acc: f32):
    %c = arith.constant 0.35 : f32
    %r = arith.mulf %a0, %c : f32
    linalg.yield %r : f32
  } -> tensor<2x4x5x7xf32>
  %v19 = arith.constant dense<[[0.0, 0.0, -3.40282347E+38, -3.40282347E+38, -3.40282347E+38, -3.40282347E+38, -3.40282347E+38], [0.0, 0.0, 0.0, 0.0, -3.40282347E+38, -3.40282347E+38, -3.40282347E+38], [0.0, 0.0, 0.0, 0.0, 0.0, -3.40282347E+38, -3.40282347E+38], [0.0, 0.0, 0.0, 0.0, 0.0, 0.0, -3.40282347E+38], [0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0]]> : tensor<5x7xf32>
  %v20 = tensor.empty() : tensor<2x4x5x7xf32>
  %v21 = linalg.generic {indexing_maps = [affine_map<(d0, d1, d2, d3) -> (d0, d1, d2, d3)>, affine_map<(d0, d1, d2, d3) -> (d2, d3)>, affine_map<(d0, d1, d2, d3) -> (d0, d1, d2, d3)>], iterator_types = ["parallel", "parallel", "parallel", "parallel"]} ins(%v18, %v19 : tensor<2x4x5x7xf32>, tensor<5x7xf32>) outs(%v20 : tensor<2x4x5x7xf32>) {
  ^bb0(%a0: f32, %a1: f32, %acc: f32):
    %r = arith.addf %a0, %a1 : f32
    linalg.yield %r : f32
  } -> tensor<2x4x5x7xf32>
  %v22 = arith.constant 0xFF800000 : f32
  %v24 = tensor.empty() : tensor<2x4x5xf32>
  %v23 = linalg.fill ins(%v22 : f32) outs(%v24 : tensor<2x4x5xf32>) -> tensor<2x4x5xf32>
  %v25 = linalg.generic {indexing_maps = [affine_map<(d0, d1, d2, d3) -> (d0, d1, d2, d3)>, affine_map<(d0, d1, d2, d3) -> (d0, d1, d2)>], iterator_types = ["parallel", "parallel", "parallel", "reduction"]} ins(%v21 : tensor<2x4x5x7xf32>) outs(%v23 : tensor<2x4x5xf32>) {
  ^bb0(%a0: f32, %acc: f32):
    %r = arith.maximumf %a0, %acc : f32
    linalg.yield %r : f32
  } -> tensor<2x4x5xf32>
  %v26 = tensor.empty() : tensor<2x4x5x7xf32>
  %v27 = linalg.generic {indexing_maps = [affine_map<(d0, d1, d2, d3) -> (d0, d1, d2, d3)>, affine_map<(d0, d1, d2, d3) -> (d0, d1, d2)>, affine_map<(d0, d1, d2, d3) -> (d0, d1, d2, d3)>], iterator_types = ["parallel", "parallel", "parallel", "parallel"]} ins(%v21, %v25 : tensor<2x4x5x7xf32>, tensor<2x4x5xf32>) outs(%v26 : tensor<2x4x5x7xf32>) {
  ^bb0(%a0: f32, %a1: f32, %acc: f32):
    %r = arith.subf %a0, %a1 : f32
    linalg.yield %r : f32
  } -> tensor<2x4x5x7xf32>
  %v28 = tensor.empty() : tensor<2x4x5x7xf32>
  %v29 = linalg.generic {indexing_maps = [affine_map<(d0, d1, d2, d3) -> (d0, d1, d2, d3)>, affine_map<(d0, d1, d2, d3) -> (d0, d1, d2, d3)>], iterator_types = ["parallel", "parallel", "parallel", "parallel"]} ins(%v27 : tensor<2x4x5x7xf32>) outs(%v28 : tensor<2x4x5x7xf32>) {
  ^bb0(%a0: f32, %acc: f32):
    %r = math.exp %a0 : f32
    linalg.yield %r : f32
  } -> tensor<2x4x5x7xf32>
  %v30 = arith.constant 0.0 : f32
  %v32 = tensor.empty() : tensor<2x4x5xf32>
  %v31 = linalg.fill ins(%v30 : f32) outs(%v32 : tensor<2x4x5xf32>) -> tensor<2x4x5xf32>
  %v33 = linalg.generic {indexing_maps = [affine_map<(d0, d1, d2, d3) -> (d0, d1, d2, d3)>, affine_map<(d0, d1, d2, d3) -> (d0, d1, d2)>], iterator_types = ["parallel", "parallel", "parallel", "reduction"]} ins(%v29 : tensor<2x4x5x7xf32>) outs(%v31 : tensor<2x4x5xf32>) {
  ^bb0(%a0: f32, %acc: f32):
    %r = arith.addf %a0, %acc : f32
    linalg.yield %r : f32
  } -> tensor<2x4x5xf32>
  %v34 = tensor.empty() : tensor<2x4x5x7xf32>
  %v35 = linalg.generic {indexing_maps = [affine_map<(d0, d1, d2, d3) -> (d0, d1, d2, d3)>, affine_map<(d0, d1, d2, d3) -> (d0, d1, d2)>, affine_map<(d0, d1, d2, d3) -> (d0, d1, d2, d3)>], iterator_types = ["parallel", "parallel", "parallel", "parallel"]} ins(%v29, %v33 : tensor<2x4x5x7xf32>, tensor<2x4x5xf32>) outs(%v34 : tensor<2x4x5x7xf32>) {
  ^bb0(%a0: f32, %a1: f32, %acc: f32):
    %r = arith.divf %a0, %a1 : f32
    linalg.yield %r : f32
  } -> tensor<2x4x5x7xf32>
  %v36 = arith.constant 0.0 : f32
  %v38 = tensor.empty() : tensor<2x4x5x6xf32>
  %v37 = linalg.fill ins(%v36 : f32) outs(%v38 : tensor<2x4x5x6xf32>) -> tensor<2x4x5x6xf32>
  %v39 = linalg.generic {indexing_maps = [affine_map<(d0, d1, d2, d3, d4) -> (d0, d1, d2, d4)>, affine_map<(d0, d1, d2, d3, d4) -> (d0, d1, d4, d3)>, affine_map<(d0, d1, d2, d3, d4) -> (d0, d1, d2, d3)>], iterator_types = ["parallel", "parallel", "parallel", "parallel", "reduction"]} ins(%v35, %v10 : tensor<2x4x5x7xf32>, tensor<2x4x7x6xf32>) outs(%v37 : tensor<2x4x5x6xf32>) {
  ^bb0(%x: f32, %y: f32, %acc: f32):
    %m = arith.mulf %x, %y : f32
    %s = arith.addf %acc, %m : f32
    linalg.yield %s : f32
  } -> tensor<2x4x5x6xf32>
  return %v39 : tensor<2x4x5x6xf32>
}

// -----

// Dynamic shapes: N, Sq and Sk unknown until run time.
// CHECK-LABEL: func @dynamic_batch_matmul_softmax
// CHECK: posenc.attention %{{.+}}, %{{.+}}, %{{.+}} outs(%{{.+}}) {scale = 1.000000e+00 : f64} : tensor<?x?x1x8xf32>, tensor<?x?x1x8xf32>, tensor<?x?x1x6xf32>, tensor<?x?x1x6xf32>
// LOWER-LABEL: llvm.func @dynamic_batch_matmul_softmax
func.func @dynamic_batch_matmul_softmax(%q: tensor<?x?x8xf32>, %k: tensor<?x?x8xf32>, %v: tensor<?x?x6xf32>) -> tensor<?x?x6xf32> {
  %c0 = arith.constant 0 : index
  %c1 = arith.constant 1 : index
  %n = tensor.dim %q, %c0 : tensor<?x?x8xf32>
  %sq = tensor.dim %q, %c1 : tensor<?x?x8xf32>
  %sk = tensor.dim %k, %c1 : tensor<?x?x8xf32>
  %zero = arith.constant 0.0 : f32
  %kt0 = tensor.empty(%n, %sk) : tensor<?x8x?xf32>
  %kt = linalg.transpose ins(%k : tensor<?x?x8xf32>) outs(%kt0 : tensor<?x8x?xf32>) permutation = [0, 2, 1]
  %s0 = tensor.empty(%n, %sq, %sk) : tensor<?x?x?xf32>
  %sz = linalg.fill ins(%zero : f32) outs(%s0 : tensor<?x?x?xf32>) -> tensor<?x?x?xf32>
  %s = linalg.batch_matmul ins(%q, %kt : tensor<?x?x8xf32>, tensor<?x8x?xf32>) outs(%sz : tensor<?x?x?xf32>) -> tensor<?x?x?xf32>
  %p0 = tensor.empty(%n, %sq, %sk) : tensor<?x?x?xf32>
  %p = linalg.softmax dimension(2) ins(%s : tensor<?x?x?xf32>) outs(%p0 : tensor<?x?x?xf32>) -> tensor<?x?x?xf32>
  %o0 = tensor.empty(%n, %sq) : tensor<?x?x6xf32>
  %oz = linalg.fill ins(%zero : f32) outs(%o0 : tensor<?x?x6xf32>) -> tensor<?x?x6xf32>
  %o = linalg.batch_matmul ins(%p, %v : tensor<?x?x?xf32>, tensor<?x?x6xf32>) outs(%oz : tensor<?x?x6xf32>) -> tensor<?x?x6xf32>
  return %o : tensor<?x?x6xf32>
}

// -----

// Hugging Face Llama's apply_rotary_pos_emb, cos/sin from
// LlamaRotaryEmbedding (inv_freq @ position_ids over a unit dim,
// transposed, cat(freqs, freqs)), inv_freq of base 10000 with linear
// factor 2: one posenc.rope on the i64 positions.
// CHECK-LABEL: func @hf_llama_rope
// CHECK: %[[X:.+]] = linalg.transpose ins(%arg0 : tensor<2x3x6x8xf32>) {{.*}} permutation = [0, 2, 1, 3]
// CHECK: posenc.rope %[[X]], %arg1 layout half {scaling = #posenc.rope_scaling<linear, factor = 2.000000e+00>} : tensor<2x6x3x8xf32>, tensor<2x6xi64>
// CHECK-NOT: math.cos
// CHECK-NOT: tensor.concat
// LOWER-LABEL: llvm.func @hf_llama_rope
func.func @hf_llama_rope(%x: tensor<2x3x6x8xf32>, %pos: tensor<2x6xi64>) -> tensor<2x3x6x8xf32> {
  %v1 = arith.constant dense<[0.5, 0.05000000074505806, 0.004999999888241291, 0.0005000000237487257]> : tensor<4xf32>
  %v2 = tensor.empty() : tensor<2x6xf32>
  %v3 = linalg.generic {indexing_maps = [affine_map<(d0, d1) -> (d0, d1)>, affine_map<(d0, d1) -> (d0, d1)>], iterator_types = ["parallel", "parallel"]} ins(%pos : tensor<2x6xi64>) outs(%v2 : tensor<2x6xf32>) {
  ^bb0(%p: i64, %o: f32):
    %f = arith.sitofp %p : i64 to f32
    linalg.yield %f : f32
  } -> tensor<2x6xf32>
  %v4 = tensor.expand_shape %v1 [[0, 1, 2]] output_shape [1, 4, 1] : tensor<4xf32> into tensor<1x4x1xf32>
  %v5 = tensor.empty() : tensor<2x4x1xf32>
  %v6 = linalg.generic {indexing_maps = [affine_map<(d0, d1, d2) -> (0, d1, d2)>, affine_map<(d0, d1, d2) -> (d0, d1, d2)>], iterator_types = ["parallel", "parallel", "parallel"]} ins(%v4 : tensor<1x4x1xf32>) outs(%v5 : tensor<2x4x1xf32>) {
  ^bb0(%a0: f32, %acc: f32):
    linalg.yield %a0 : f32
  } -> tensor<2x4x1xf32>
  %v7 = tensor.expand_shape %v3 [[0], [1, 2]] output_shape [2, 1, 6] : tensor<2x6xf32> into tensor<2x1x6xf32>
  %v8 = arith.constant 0.0 : f32
  %v10 = tensor.empty() : tensor<2x4x6xf32>
  %v9 = linalg.fill ins(%v8 : f32) outs(%v10 : tensor<2x4x6xf32>) -> tensor<2x4x6xf32>
  %v11 = linalg.batch_matmul ins(%v6, %v7 : tensor<2x4x1xf32>, tensor<2x1x6xf32>) outs(%v9 : tensor<2x4x6xf32>) -> tensor<2x4x6xf32>
  %v12 = tensor.empty() : tensor<2x6x4xf32>
  %v13 = linalg.transpose ins(%v11 : tensor<2x4x6xf32>) outs(%v12 : tensor<2x6x4xf32>) permutation = [0, 2, 1]
  %v14 = tensor.concat dim(2) %v13, %v13 : (tensor<2x6x4xf32>, tensor<2x6x4xf32>) -> tensor<2x6x8xf32>
  %v15 = tensor.empty() : tensor<2x6x8xf32>
  %v16 = linalg.generic {indexing_maps = [affine_map<(d0, d1, d2) -> (d0, d1, d2)>, affine_map<(d0, d1, d2) -> (d0, d1, d2)>], iterator_types = ["parallel", "parallel", "parallel"]} ins(%v14 : tensor<2x6x8xf32>) outs(%v15 : tensor<2x6x8xf32>) {
  ^bb0(%a0: f32, %acc: f32):
    %t = math.cos %a0 : f32
    linalg.yield %t : f32
  } -> tensor<2x6x8xf32>
  %v17 = tensor.expand_shape %v16 [[0, 1], [2], [3]] output_shape [2, 1, 6, 8] : tensor<2x6x8xf32> into tensor<2x1x6x8xf32>
  %v18 = tensor.empty() : tensor<2x6x8xf32>
  %v19 = linalg.generic {indexing_maps = [affine_map<(d0, d1, d2) -> (d0, d1, d2)>, affine_map<(d0, d1, d2) -> (d0, d1, d2)>], iterator_types = ["parallel", "parallel", "parallel"]} ins(%v14 : tensor<2x6x8xf32>) outs(%v18 : tensor<2x6x8xf32>) {
  ^bb0(%a0: f32, %acc: f32):
    %t = math.sin %a0 : f32
    linalg.yield %t : f32
  } -> tensor<2x6x8xf32>
  %v20 = tensor.expand_shape %v19 [[0, 1], [2], [3]] output_shape [2, 1, 6, 8] : tensor<2x6x8xf32> into tensor<2x1x6x8xf32>
  %v21 = tensor.extract_slice %x[0, 0, 0, 0] [2, 3, 6, 4] [1, 1, 1, 1] : tensor<2x3x6x8xf32> to tensor<2x3x6x4xf32>
  %v22 = tensor.extract_slice %x[0, 0, 0, 4] [2, 3, 6, 4] [1, 1, 1, 1] : tensor<2x3x6x8xf32> to tensor<2x3x6x4xf32>
  %v23 = tensor.empty() : tensor<2x3x6x4xf32>
  %v24 = linalg.generic {indexing_maps = [affine_map<(d0, d1, d2, d3) -> (d0, d1, d2, d3)>, affine_map<(d0, d1, d2, d3) -> (d0, d1, d2, d3)>], iterator_types = ["parallel", "parallel", "parallel", "parallel"]} ins(%v22 : tensor<2x3x6x4xf32>) outs(%v23 : tensor<2x3x6x4xf32>) {
  ^bb0(%a0: f32, %acc: f32):
    %r = arith.negf %a0 : f32
    linalg.yield %r : f32
  } -> tensor<2x3x6x4xf32>
  %v25 = tensor.concat dim(3) %v24, %v21 : (tensor<2x3x6x4xf32>, tensor<2x3x6x4xf32>) -> tensor<2x3x6x8xf32>
  %v26 = tensor.empty() : tensor<2x3x6x8xf32>
  %v27 = linalg.generic {indexing_maps = [affine_map<(d0, d1, d2, d3) -> (d0, d1, d2, d3)>, affine_map<(d0, d1, d2, d3) -> (d0, 0, d2, d3)>, affine_map<(d0, d1, d2, d3) -> (d0, d1, d2, d3)>], iterator_types = ["parallel", "parallel", "parallel", "parallel"]} ins(%x, %v17 : tensor<2x3x6x8xf32>, tensor<2x1x6x8xf32>) outs(%v26 : tensor<2x3x6x8xf32>) {
  ^bb0(%a0: f32, %a1: f32, %acc: f32):
    %r = arith.mulf %a0, %a1 : f32
    linalg.yield %r : f32
  } -> tensor<2x3x6x8xf32>
  %v28 = tensor.empty() : tensor<2x3x6x8xf32>
  %v29 = linalg.generic {indexing_maps = [affine_map<(d0, d1, d2, d3) -> (d0, d1, d2, d3)>, affine_map<(d0, d1, d2, d3) -> (d0, 0, d2, d3)>, affine_map<(d0, d1, d2, d3) -> (d0, d1, d2, d3)>], iterator_types = ["parallel", "parallel", "parallel", "parallel"]} ins(%v25, %v20 : tensor<2x3x6x8xf32>, tensor<2x1x6x8xf32>) outs(%v28 : tensor<2x3x6x8xf32>) {
  ^bb0(%a0: f32, %a1: f32, %acc: f32):
    %r = arith.mulf %a0, %a1 : f32
    linalg.yield %r : f32
  } -> tensor<2x3x6x8xf32>
  %v30 = tensor.empty() : tensor<2x3x6x8xf32>
  %v31 = linalg.generic {indexing_maps = [affine_map<(d0, d1, d2, d3) -> (d0, d1, d2, d3)>, affine_map<(d0, d1, d2, d3) -> (d0, d1, d2, d3)>, affine_map<(d0, d1, d2, d3) -> (d0, d1, d2, d3)>], iterator_types = ["parallel", "parallel", "parallel", "parallel"]} ins(%v27, %v29 : tensor<2x3x6x8xf32>, tensor<2x3x6x8xf32>) outs(%v30 : tensor<2x3x6x8xf32>) {
  ^bb0(%a0: f32, %a1: f32, %acc: f32):
    %r = arith.addf %a0, %a1 : f32
    linalg.yield %r : f32
  } -> tensor<2x3x6x8xf32>
  return %v31 : tensor<2x3x6x8xf32>
}

// -----

// rotate_half with its halves swapped (concat(x1, -x2)) rotates the other
// way round: not raised.
// CHECK-LABEL: func @negative_rope_halves_swapped
// CHECK-NOT: posenc.rope
func.func @negative_rope_halves_swapped(%x: tensor<2x3x6x8xf32>, %pos: tensor<2x6xi64>) -> tensor<2x3x6x8xf32> {
  %v1 = arith.constant dense<[0.5, 0.05000000074505806, 0.004999999888241291, 0.0005000000237487257]> : tensor<4xf32>
  %v2 = tensor.empty() : tensor<2x6xf32>
  %v3 = linalg.generic {indexing_maps = [affine_map<(d0, d1) -> (d0, d1)>, affine_map<(d0, d1) -> (d0, d1)>], iterator_types = ["parallel", "parallel"]} ins(%pos : tensor<2x6xi64>) outs(%v2 : tensor<2x6xf32>) {
  ^bb0(%p: i64, %o: f32):
    %f = arith.sitofp %p : i64 to f32
    linalg.yield %f : f32
  } -> tensor<2x6xf32>
  %v4 = tensor.expand_shape %v1 [[0, 1, 2]] output_shape [1, 4, 1] : tensor<4xf32> into tensor<1x4x1xf32>
  %v5 = tensor.empty() : tensor<2x4x1xf32>
  %v6 = linalg.generic {indexing_maps = [affine_map<(d0, d1, d2) -> (0, d1, d2)>, affine_map<(d0, d1, d2) -> (d0, d1, d2)>], iterator_types = ["parallel", "parallel", "parallel"]} ins(%v4 : tensor<1x4x1xf32>) outs(%v5 : tensor<2x4x1xf32>) {
  ^bb0(%a0: f32, %acc: f32):
    linalg.yield %a0 : f32
  } -> tensor<2x4x1xf32>
  %v7 = tensor.expand_shape %v3 [[0], [1, 2]] output_shape [2, 1, 6] : tensor<2x6xf32> into tensor<2x1x6xf32>
  %v8 = arith.constant 0.0 : f32
  %v10 = tensor.empty() : tensor<2x4x6xf32>
  %v9 = linalg.fill ins(%v8 : f32) outs(%v10 : tensor<2x4x6xf32>) -> tensor<2x4x6xf32>
  %v11 = linalg.batch_matmul ins(%v6, %v7 : tensor<2x4x1xf32>, tensor<2x1x6xf32>) outs(%v9 : tensor<2x4x6xf32>) -> tensor<2x4x6xf32>
  %v12 = tensor.empty() : tensor<2x6x4xf32>
  %v13 = linalg.transpose ins(%v11 : tensor<2x4x6xf32>) outs(%v12 : tensor<2x6x4xf32>) permutation = [0, 2, 1]
  %v14 = tensor.concat dim(2) %v13, %v13 : (tensor<2x6x4xf32>, tensor<2x6x4xf32>) -> tensor<2x6x8xf32>
  %v15 = tensor.empty() : tensor<2x6x8xf32>
  %v16 = linalg.generic {indexing_maps = [affine_map<(d0, d1, d2) -> (d0, d1, d2)>, affine_map<(d0, d1, d2) -> (d0, d1, d2)>], iterator_types = ["parallel", "parallel", "parallel"]} ins(%v14 : tensor<2x6x8xf32>) outs(%v15 : tensor<2x6x8xf32>) {
  ^bb0(%a0: f32, %acc: f32):
    %t = math.cos %a0 : f32
    linalg.yield %t : f32
  } -> tensor<2x6x8xf32>
  %v17 = tensor.expand_shape %v16 [[0, 1], [2], [3]] output_shape [2, 1, 6, 8] : tensor<2x6x8xf32> into tensor<2x1x6x8xf32>
  %v18 = tensor.empty() : tensor<2x6x8xf32>
  %v19 = linalg.generic {indexing_maps = [affine_map<(d0, d1, d2) -> (d0, d1, d2)>, affine_map<(d0, d1, d2) -> (d0, d1, d2)>], iterator_types = ["parallel", "parallel", "parallel"]} ins(%v14 : tensor<2x6x8xf32>) outs(%v18 : tensor<2x6x8xf32>) {
  ^bb0(%a0: f32, %acc: f32):
    %t = math.sin %a0 : f32
    linalg.yield %t : f32
  } -> tensor<2x6x8xf32>
  %v20 = tensor.expand_shape %v19 [[0, 1], [2], [3]] output_shape [2, 1, 6, 8] : tensor<2x6x8xf32> into tensor<2x1x6x8xf32>
  %v21 = tensor.extract_slice %x[0, 0, 0, 0] [2, 3, 6, 4] [1, 1, 1, 1] : tensor<2x3x6x8xf32> to tensor<2x3x6x4xf32>
  %v22 = tensor.extract_slice %x[0, 0, 0, 4] [2, 3, 6, 4] [1, 1, 1, 1] : tensor<2x3x6x8xf32> to tensor<2x3x6x4xf32>
  %v23 = tensor.empty() : tensor<2x3x6x4xf32>
  %v24 = linalg.generic {indexing_maps = [affine_map<(d0, d1, d2, d3) -> (d0, d1, d2, d3)>, affine_map<(d0, d1, d2, d3) -> (d0, d1, d2, d3)>], iterator_types = ["parallel", "parallel", "parallel", "parallel"]} ins(%v22 : tensor<2x3x6x4xf32>) outs(%v23 : tensor<2x3x6x4xf32>) {
  ^bb0(%a0: f32, %acc: f32):
    %r = arith.negf %a0 : f32
    linalg.yield %r : f32
  } -> tensor<2x3x6x4xf32>
  %v25 = tensor.concat dim(3) %v21, %v24 : (tensor<2x3x6x4xf32>, tensor<2x3x6x4xf32>) -> tensor<2x3x6x8xf32>
  %v26 = tensor.empty() : tensor<2x3x6x8xf32>
  %v27 = linalg.generic {indexing_maps = [affine_map<(d0, d1, d2, d3) -> (d0, d1, d2, d3)>, affine_map<(d0, d1, d2, d3) -> (d0, 0, d2, d3)>, affine_map<(d0, d1, d2, d3) -> (d0, d1, d2, d3)>], iterator_types = ["parallel", "parallel", "parallel", "parallel"]} ins(%x, %v17 : tensor<2x3x6x8xf32>, tensor<2x1x6x8xf32>) outs(%v26 : tensor<2x3x6x8xf32>) {
  ^bb0(%a0: f32, %a1: f32, %acc: f32):
    %r = arith.mulf %a0, %a1 : f32
    linalg.yield %r : f32
  } -> tensor<2x3x6x8xf32>
  %v28 = tensor.empty() : tensor<2x3x6x8xf32>
  %v29 = linalg.generic {indexing_maps = [affine_map<(d0, d1, d2, d3) -> (d0, d1, d2, d3)>, affine_map<(d0, d1, d2, d3) -> (d0, 0, d2, d3)>, affine_map<(d0, d1, d2, d3) -> (d0, d1, d2, d3)>], iterator_types = ["parallel", "parallel", "parallel", "parallel"]} ins(%v25, %v20 : tensor<2x3x6x8xf32>, tensor<2x1x6x8xf32>) outs(%v28 : tensor<2x3x6x8xf32>) {
  ^bb0(%a0: f32, %a1: f32, %acc: f32):
    %r = arith.mulf %a0, %a1 : f32
    linalg.yield %r : f32
  } -> tensor<2x3x6x8xf32>
  %v30 = tensor.empty() : tensor<2x3x6x8xf32>
  %v31 = linalg.generic {indexing_maps = [affine_map<(d0, d1, d2, d3) -> (d0, d1, d2, d3)>, affine_map<(d0, d1, d2, d3) -> (d0, d1, d2, d3)>, affine_map<(d0, d1, d2, d3) -> (d0, d1, d2, d3)>], iterator_types = ["parallel", "parallel", "parallel", "parallel"]} ins(%v27, %v29 : tensor<2x3x6x8xf32>, tensor<2x3x6x8xf32>) outs(%v30 : tensor<2x3x6x8xf32>) {
  ^bb0(%a0: f32, %a1: f32, %acc: f32):
    %r = arith.addf %a0, %a1 : f32
    linalg.yield %r : f32
  } -> tensor<2x3x6x8xf32>
  return %v31 : tensor<2x3x6x8xf32>
}

// -----

// GPT-J's apply_rotary_pos_emb on [B, S, H, D]: rotate_every_two
// (x[..., 1::2] negated and x[..., ::2] stacked, flattened) and the
// cos/sin tables repeat_interleave'd (unsqueeze, broadcast, flatten), as
// TorchToLinalg writes them: one posenc.rope layout interleaved on the
// i64 positions, in posenc's own layout (no transposes).
// CHECK-LABEL: func @gptj_rope
// CHECK: posenc.rope %arg0, %arg1 layout interleaved : tensor<2x6x3x8xf32>, tensor<2x6xi64>
// CHECK-NOT: math.cos
// CHECK-NOT: linalg.transpose
// CHECK-NOT: tensor.concat
// LOWER-LABEL: llvm.func @gptj_rope
func.func @gptj_rope(%x: tensor<2x6x3x8xf32>, %pos: tensor<2x6xi64>) -> tensor<2x6x3x8xf32> {
  %v1 = tensor.empty() : tensor<2x6xf32>
  %v2 = linalg.generic {indexing_maps = [affine_map<(d0, d1) -> (d0, d1)>, affine_map<(d0, d1) -> (d0, d1)>], iterator_types = ["parallel", "parallel"]} ins(%pos : tensor<2x6xi64>) outs(%v1 : tensor<2x6xf32>) {
  ^bb0(%p: i64, %o: f32):
    %f = arith.sitofp %p : i64 to f32
    linalg.yield %f : f32
  } -> tensor<2x6xf32>
  %v3 = arith.constant dense<[1.0, 0.10000000149011612, 0.009999999776482582, 0.0010000000474974513]> : tensor<4xf32>
  %v4 = tensor.empty() : tensor<2x6x4xf32>
  %v5 = linalg.generic {indexing_maps = [affine_map<(d0, d1, d2) -> (d0, d1)>, affine_map<(d0, d1, d2) -> (d2)>, affine_map<(d0, d1, d2) -> (d0, d1, d2)>], iterator_types = ["parallel", "parallel", "parallel"]} ins(%v2, %v3 : tensor<2x6xf32>, tensor<4xf32>) outs(%v4 : tensor<2x6x4xf32>) {
  ^bb0(%a0: f32, %a1: f32, %acc: f32):
    %r = arith.mulf %a0, %a1 : f32
    linalg.yield %r : f32
  } -> tensor<2x6x4xf32>
  %v6 = tensor.empty() : tensor<2x6x4xf32>
  %v7 = linalg.generic {indexing_maps = [affine_map<(d0, d1, d2) -> (d0, d1, d2)>, affine_map<(d0, d1, d2) -> (d0, d1, d2)>], iterator_types = ["parallel", "parallel", "parallel"]} ins(%v5 : tensor<2x6x4xf32>) outs(%v6 : tensor<2x6x4xf32>) {
  ^bb0(%a0: f32, %acc: f32):
    %t = math.cos %a0 : f32
    linalg.yield %t : f32
  } -> tensor<2x6x4xf32>
  %v8 = tensor.expand_shape %v7 [[0], [1, 2], [3]] output_shape [2, 6, 1, 4] : tensor<2x6x4xf32> into tensor<2x6x1x4xf32>
  %v9 = tensor.expand_shape %v8 [[0], [1], [2], [3, 4]] output_shape [2, 6, 1, 4, 1] : tensor<2x6x1x4xf32> into tensor<2x6x1x4x1xf32>
  %v10 = tensor.empty() : tensor<2x6x1x4x2xf32>
  %v11 = linalg.generic {indexing_maps = [affine_map<(d0, d1, d2, d3, d4) -> (d0, d1, d2, d3, 0)>, affine_map<(d0, d1, d2, d3, d4) -> (d0, d1, d2, d3, d4)>], iterator_types = ["parallel", "parallel", "parallel", "parallel", "parallel"]} ins(%v9 : tensor<2x6x1x4x1xf32>) outs(%v10 : tensor<2x6x1x4x2xf32>) {
  ^bb0(%a0: f32, %acc: f32):
    linalg.yield %a0 : f32
  } -> tensor<2x6x1x4x2xf32>
  %v12 = tensor.collapse_shape %v11 [[0], [1], [2], [3, 4]] : tensor<2x6x1x4x2xf32> into tensor<2x6x1x8xf32>
  %v13 = tensor.empty() : tensor<2x6x4xf32>
  %v14 = linalg.generic {indexing_maps = [affine_map<(d0, d1, d2) -> (d0, d1, d2)>, affine_map<(d0, d1, d2) -> (d0, d1, d2)>], iterator_types = ["parallel", "parallel", "parallel"]} ins(%v5 : tensor<2x6x4xf32>) outs(%v13 : tensor<2x6x4xf32>) {
  ^bb0(%a0: f32, %acc: f32):
    %t = math.sin %a0 : f32
    linalg.yield %t : f32
  } -> tensor<2x6x4xf32>
  %v15 = tensor.expand_shape %v14 [[0], [1, 2], [3]] output_shape [2, 6, 1, 4] : tensor<2x6x4xf32> into tensor<2x6x1x4xf32>
  %v16 = tensor.expand_shape %v15 [[0], [1], [2], [3, 4]] output_shape [2, 6, 1, 4, 1] : tensor<2x6x1x4xf32> into tensor<2x6x1x4x1xf32>
  %v17 = tensor.empty() : tensor<2x6x1x4x2xf32>
  %v18 = linalg.generic {indexing_maps = [affine_map<(d0, d1, d2, d3, d4) -> (d0, d1, d2, d3, 0)>, affine_map<(d0, d1, d2, d3, d4) -> (d0, d1, d2, d3, d4)>], iterator_types = ["parallel", "parallel", "parallel", "parallel", "parallel"]} ins(%v16 : tensor<2x6x1x4x1xf32>) outs(%v17 : tensor<2x6x1x4x2xf32>) {
  ^bb0(%a0: f32, %acc: f32):
    linalg.yield %a0 : f32
  } -> tensor<2x6x1x4x2xf32>
  %v19 = tensor.collapse_shape %v18 [[0], [1], [2], [3, 4]] : tensor<2x6x1x4x2xf32> into tensor<2x6x1x8xf32>
  %v20 = tensor.extract_slice %x[0, 0, 0, 0] [2, 6, 3, 4] [1, 1, 1, 2] : tensor<2x6x3x8xf32> to tensor<2x6x3x4xf32>
  %v21 = tensor.extract_slice %x[0, 0, 0, 1] [2, 6, 3, 4] [1, 1, 1, 2] : tensor<2x6x3x8xf32> to tensor<2x6x3x4xf32>
  %v22 = tensor.empty() : tensor<2x6x3x4xf32>
  %v23 = linalg.generic {indexing_maps = [affine_map<(d0, d1, d2, d3) -> (d0, d1, d2, d3)>, affine_map<(d0, d1, d2, d3) -> (d0, d1, d2, d3)>], iterator_types = ["parallel", "parallel", "parallel", "parallel"]} ins(%v21 : tensor<2x6x3x4xf32>) outs(%v22 : tensor<2x6x3x4xf32>) {
  ^bb0(%a0: f32, %acc: f32):
    %r = arith.negf %a0 : f32
    linalg.yield %r : f32
  } -> tensor<2x6x3x4xf32>
  %v24 = tensor.expand_shape %v23 [[0], [1], [2], [3, 4]] output_shape [2, 6, 3, 4, 1] : tensor<2x6x3x4xf32> into tensor<2x6x3x4x1xf32>
  %v25 = tensor.expand_shape %v20 [[0], [1], [2], [3, 4]] output_shape [2, 6, 3, 4, 1] : tensor<2x6x3x4xf32> into tensor<2x6x3x4x1xf32>
  %v26 = tensor.concat dim(4) %v24, %v25 : (tensor<2x6x3x4x1xf32>, tensor<2x6x3x4x1xf32>) -> tensor<2x6x3x4x2xf32>
  %v27 = tensor.collapse_shape %v26 [[0], [1], [2], [3, 4]] : tensor<2x6x3x4x2xf32> into tensor<2x6x3x8xf32>
  %v28 = tensor.empty() : tensor<2x6x3x8xf32>
  %v29 = linalg.generic {indexing_maps = [affine_map<(d0, d1, d2, d3) -> (d0, d1, d2, d3)>, affine_map<(d0, d1, d2, d3) -> (d0, d1, 0, d3)>, affine_map<(d0, d1, d2, d3) -> (d0, d1, d2, d3)>, affine_map<(d0, d1, d2, d3) -> (d0, d1, 0, d3)>, affine_map<(d0, d1, d2, d3) -> (d0, d1, d2, d3)>], iterator_types = ["parallel", "parallel", "parallel", "parallel"]} ins(%x, %v12, %v27, %v19 : tensor<2x6x3x8xf32>, tensor<2x6x1x8xf32>, tensor<2x6x3x8xf32>, tensor<2x6x1x8xf32>) outs(%v28 : tensor<2x6x3x8xf32>) {
  ^bb0(%a0: f32, %a1: f32, %a2: f32, %a3: f32, %acc: f32):
    %m = arith.mulf %a0, %a1 : f32
    %n = arith.mulf %a2, %a3 : f32
    %r = arith.addf %m, %n : f32
    linalg.yield %r : f32
  } -> tensor<2x6x3x8xf32>
  return %v29 : tensor<2x6x3x8xf32>
}

// -----

// Meta Llama's apply_rotary_emb in real arithmetic (x viewed as
// [..., D/2, 2] pairs, unbind, x_r·cos - x_i·sin and x_r·sin + x_i·cos
// stacked and flattened; ExecuTorch's form), cos/sin [1, S, 1, D/2]: one
// posenc.rope layout interleaved.
// CHECK-LABEL: func @meta_pairs_rope
// CHECK: %[[P:.+]] = tensor.collapse_shape %arg1 {{\[}}[0, 1]] : tensor<1x6xi64> into tensor<6xi64>
// CHECK: posenc.rope %arg0, %[[P]] layout interleaved : tensor<2x6x3x8xf32>, tensor<6xi64>
// CHECK-NOT: math.sin
// CHECK-NOT: tensor.concat
// LOWER-LABEL: llvm.func @meta_pairs_rope
func.func @meta_pairs_rope(%x: tensor<2x6x3x8xf32>, %pos: tensor<1x6xi64>) -> tensor<2x6x3x8xf32> {
  %v1 = tensor.empty() : tensor<1x6xf32>
  %v2 = linalg.generic {indexing_maps = [affine_map<(d0, d1) -> (d0, d1)>, affine_map<(d0, d1) -> (d0, d1)>], iterator_types = ["parallel", "parallel"]} ins(%pos : tensor<1x6xi64>) outs(%v1 : tensor<1x6xf32>) {
  ^bb0(%p: i64, %o: f32):
    %f = arith.sitofp %p : i64 to f32
    linalg.yield %f : f32
  } -> tensor<1x6xf32>
  %v3 = arith.constant dense<[1.0, 0.10000000149011612, 0.009999999776482582, 0.0010000000474974513]> : tensor<4xf32>
  %v4 = tensor.empty() : tensor<1x6x4xf32>
  %v5 = linalg.generic {indexing_maps = [affine_map<(d0, d1, d2) -> (d0, d1)>, affine_map<(d0, d1, d2) -> (d2)>, affine_map<(d0, d1, d2) -> (d0, d1, d2)>], iterator_types = ["parallel", "parallel", "parallel"]} ins(%v2, %v3 : tensor<1x6xf32>, tensor<4xf32>) outs(%v4 : tensor<1x6x4xf32>) {
  ^bb0(%a0: f32, %a1: f32, %acc: f32):
    %r = arith.mulf %a0, %a1 : f32
    linalg.yield %r : f32
  } -> tensor<1x6x4xf32>
  %v6 = tensor.empty() : tensor<1x6x4xf32>
  %v7 = linalg.generic {indexing_maps = [affine_map<(d0, d1, d2) -> (d0, d1, d2)>, affine_map<(d0, d1, d2) -> (d0, d1, d2)>], iterator_types = ["parallel", "parallel", "parallel"]} ins(%v5 : tensor<1x6x4xf32>) outs(%v6 : tensor<1x6x4xf32>) {
  ^bb0(%a0: f32, %acc: f32):
    %t = math.cos %a0 : f32
    linalg.yield %t : f32
  } -> tensor<1x6x4xf32>
  %v8 = tensor.expand_shape %v7 [[0], [1, 2], [3]] output_shape [1, 6, 1, 4] : tensor<1x6x4xf32> into tensor<1x6x1x4xf32>
  %v9 = tensor.empty() : tensor<1x6x4xf32>
  %v10 = linalg.generic {indexing_maps = [affine_map<(d0, d1, d2) -> (d0, d1, d2)>, affine_map<(d0, d1, d2) -> (d0, d1, d2)>], iterator_types = ["parallel", "parallel", "parallel"]} ins(%v5 : tensor<1x6x4xf32>) outs(%v9 : tensor<1x6x4xf32>) {
  ^bb0(%a0: f32, %acc: f32):
    %t = math.sin %a0 : f32
    linalg.yield %t : f32
  } -> tensor<1x6x4xf32>
  %v11 = tensor.expand_shape %v10 [[0], [1, 2], [3]] output_shape [1, 6, 1, 4] : tensor<1x6x4xf32> into tensor<1x6x1x4xf32>
  %v14 = tensor.expand_shape %x [[0], [1], [2], [3, 4]] output_shape [2, 6, 3, 4, 2] : tensor<2x6x3x8xf32> into tensor<2x6x3x4x2xf32>
  %v12 = tensor.extract_slice %v14[0, 0, 0, 0, 0] [2, 6, 3, 4, 1] [1, 1, 1, 1, 1] : tensor<2x6x3x4x2xf32> to tensor<2x6x3x4xf32>
  %v13 = tensor.extract_slice %v14[0, 0, 0, 0, 1] [2, 6, 3, 4, 1] [1, 1, 1, 1, 1] : tensor<2x6x3x4x2xf32> to tensor<2x6x3x4xf32>
  %v15 = tensor.empty() : tensor<2x6x3x4xf32>
  %v16 = linalg.generic {indexing_maps = [affine_map<(d0, d1, d2, d3) -> (d0, d1, d2, d3)>, affine_map<(d0, d1, d2, d3) -> (0, d1, 0, d3)>, affine_map<(d0, d1, d2, d3) -> (d0, d1, d2, d3)>, affine_map<(d0, d1, d2, d3) -> (0, d1, 0, d3)>, affine_map<(d0, d1, d2, d3) -> (d0, d1, d2, d3)>], iterator_types = ["parallel", "parallel", "parallel", "parallel"]} ins(%v12, %v8, %v13, %v11 : tensor<2x6x3x4xf32>, tensor<1x6x1x4xf32>, tensor<2x6x3x4xf32>, tensor<1x6x1x4xf32>) outs(%v15 : tensor<2x6x3x4xf32>) {
  ^bb0(%a0: f32, %a1: f32, %a2: f32, %a3: f32, %acc: f32):
    %m = arith.mulf %a0, %a1 : f32
    %n = arith.mulf %a2, %a3 : f32
    %r = arith.subf %m, %n : f32
    linalg.yield %r : f32
  } -> tensor<2x6x3x4xf32>
  %v17 = tensor.empty() : tensor<2x6x3x4xf32>
  %v18 = linalg.generic {indexing_maps = [affine_map<(d0, d1, d2, d3) -> (d0, d1, d2, d3)>, affine_map<(d0, d1, d2, d3) -> (0, d1, 0, d3)>, affine_map<(d0, d1, d2, d3) -> (d0, d1, d2, d3)>, affine_map<(d0, d1, d2, d3) -> (0, d1, 0, d3)>, affine_map<(d0, d1, d2, d3) -> (d0, d1, d2, d3)>], iterator_types = ["parallel", "parallel", "parallel", "parallel"]} ins(%v12, %v11, %v13, %v8 : tensor<2x6x3x4xf32>, tensor<1x6x1x4xf32>, tensor<2x6x3x4xf32>, tensor<1x6x1x4xf32>) outs(%v17 : tensor<2x6x3x4xf32>) {
  ^bb0(%a0: f32, %a1: f32, %a2: f32, %a3: f32, %acc: f32):
    %m = arith.mulf %a0, %a1 : f32
    %n = arith.mulf %a2, %a3 : f32
    %r = arith.addf %m, %n : f32
    linalg.yield %r : f32
  } -> tensor<2x6x3x4xf32>
  %v19 = tensor.expand_shape %v16 [[0], [1], [2], [3, 4]] output_shape [2, 6, 3, 4, 1] : tensor<2x6x3x4xf32> into tensor<2x6x3x4x1xf32>
  %v20 = tensor.expand_shape %v18 [[0], [1], [2], [3, 4]] output_shape [2, 6, 3, 4, 1] : tensor<2x6x3x4xf32> into tensor<2x6x3x4x1xf32>
  %v21 = tensor.concat dim(4) %v19, %v20 : (tensor<2x6x3x4x1xf32>, tensor<2x6x3x4x1xf32>) -> tensor<2x6x3x4x2xf32>
  %v22 = tensor.collapse_shape %v21 [[0], [1], [2], [3, 4]] : tensor<2x6x3x4x2xf32> into tensor<2x6x3x8xf32>
  return %v22 : tensor<2x6x3x8xf32>
}

// -----

// rotate_every_two with the stack's elements swapped (x[..., ::2] then
// -x[..., 1::2]) is not a rotation: not raised.
// CHECK-LABEL: func @negative_gptj_stack_swapped
// CHECK-NOT: posenc.rope
func.func @negative_gptj_stack_swapped(%x: tensor<2x6x3x8xf32>, %pos: tensor<2x6xi64>) -> tensor<2x6x3x8xf32> {
  %v1 = tensor.empty() : tensor<2x6xf32>
  %v2 = linalg.generic {indexing_maps = [affine_map<(d0, d1) -> (d0, d1)>, affine_map<(d0, d1) -> (d0, d1)>], iterator_types = ["parallel", "parallel"]} ins(%pos : tensor<2x6xi64>) outs(%v1 : tensor<2x6xf32>) {
  ^bb0(%p: i64, %o: f32):
    %f = arith.sitofp %p : i64 to f32
    linalg.yield %f : f32
  } -> tensor<2x6xf32>
  %v3 = arith.constant dense<[1.0, 0.10000000149011612, 0.009999999776482582, 0.0010000000474974513]> : tensor<4xf32>
  %v4 = tensor.empty() : tensor<2x6x4xf32>
  %v5 = linalg.generic {indexing_maps = [affine_map<(d0, d1, d2) -> (d0, d1)>, affine_map<(d0, d1, d2) -> (d2)>, affine_map<(d0, d1, d2) -> (d0, d1, d2)>], iterator_types = ["parallel", "parallel", "parallel"]} ins(%v2, %v3 : tensor<2x6xf32>, tensor<4xf32>) outs(%v4 : tensor<2x6x4xf32>) {
  ^bb0(%a0: f32, %a1: f32, %acc: f32):
    %r = arith.mulf %a0, %a1 : f32
    linalg.yield %r : f32
  } -> tensor<2x6x4xf32>
  %v6 = tensor.empty() : tensor<2x6x4xf32>
  %v7 = linalg.generic {indexing_maps = [affine_map<(d0, d1, d2) -> (d0, d1, d2)>, affine_map<(d0, d1, d2) -> (d0, d1, d2)>], iterator_types = ["parallel", "parallel", "parallel"]} ins(%v5 : tensor<2x6x4xf32>) outs(%v6 : tensor<2x6x4xf32>) {
  ^bb0(%a0: f32, %acc: f32):
    %t = math.cos %a0 : f32
    linalg.yield %t : f32
  } -> tensor<2x6x4xf32>
  %v8 = tensor.expand_shape %v7 [[0], [1, 2], [3]] output_shape [2, 6, 1, 4] : tensor<2x6x4xf32> into tensor<2x6x1x4xf32>
  %v9 = tensor.expand_shape %v8 [[0], [1], [2], [3, 4]] output_shape [2, 6, 1, 4, 1] : tensor<2x6x1x4xf32> into tensor<2x6x1x4x1xf32>
  %v10 = tensor.empty() : tensor<2x6x1x4x2xf32>
  %v11 = linalg.generic {indexing_maps = [affine_map<(d0, d1, d2, d3, d4) -> (d0, d1, d2, d3, 0)>, affine_map<(d0, d1, d2, d3, d4) -> (d0, d1, d2, d3, d4)>], iterator_types = ["parallel", "parallel", "parallel", "parallel", "parallel"]} ins(%v9 : tensor<2x6x1x4x1xf32>) outs(%v10 : tensor<2x6x1x4x2xf32>) {
  ^bb0(%a0: f32, %acc: f32):
    linalg.yield %a0 : f32
  } -> tensor<2x6x1x4x2xf32>
  %v12 = tensor.collapse_shape %v11 [[0], [1], [2], [3, 4]] : tensor<2x6x1x4x2xf32> into tensor<2x6x1x8xf32>
  %v13 = tensor.empty() : tensor<2x6x4xf32>
  %v14 = linalg.generic {indexing_maps = [affine_map<(d0, d1, d2) -> (d0, d1, d2)>, affine_map<(d0, d1, d2) -> (d0, d1, d2)>], iterator_types = ["parallel", "parallel", "parallel"]} ins(%v5 : tensor<2x6x4xf32>) outs(%v13 : tensor<2x6x4xf32>) {
  ^bb0(%a0: f32, %acc: f32):
    %t = math.sin %a0 : f32
    linalg.yield %t : f32
  } -> tensor<2x6x4xf32>
  %v15 = tensor.expand_shape %v14 [[0], [1, 2], [3]] output_shape [2, 6, 1, 4] : tensor<2x6x4xf32> into tensor<2x6x1x4xf32>
  %v16 = tensor.expand_shape %v15 [[0], [1], [2], [3, 4]] output_shape [2, 6, 1, 4, 1] : tensor<2x6x1x4xf32> into tensor<2x6x1x4x1xf32>
  %v17 = tensor.empty() : tensor<2x6x1x4x2xf32>
  %v18 = linalg.generic {indexing_maps = [affine_map<(d0, d1, d2, d3, d4) -> (d0, d1, d2, d3, 0)>, affine_map<(d0, d1, d2, d3, d4) -> (d0, d1, d2, d3, d4)>], iterator_types = ["parallel", "parallel", "parallel", "parallel", "parallel"]} ins(%v16 : tensor<2x6x1x4x1xf32>) outs(%v17 : tensor<2x6x1x4x2xf32>) {
  ^bb0(%a0: f32, %acc: f32):
    linalg.yield %a0 : f32
  } -> tensor<2x6x1x4x2xf32>
  %v19 = tensor.collapse_shape %v18 [[0], [1], [2], [3, 4]] : tensor<2x6x1x4x2xf32> into tensor<2x6x1x8xf32>
  %v20 = tensor.extract_slice %x[0, 0, 0, 0] [2, 6, 3, 4] [1, 1, 1, 2] : tensor<2x6x3x8xf32> to tensor<2x6x3x4xf32>
  %v21 = tensor.extract_slice %x[0, 0, 0, 1] [2, 6, 3, 4] [1, 1, 1, 2] : tensor<2x6x3x8xf32> to tensor<2x6x3x4xf32>
  %v22 = tensor.empty() : tensor<2x6x3x4xf32>
  %v23 = linalg.generic {indexing_maps = [affine_map<(d0, d1, d2, d3) -> (d0, d1, d2, d3)>, affine_map<(d0, d1, d2, d3) -> (d0, d1, d2, d3)>], iterator_types = ["parallel", "parallel", "parallel", "parallel"]} ins(%v21 : tensor<2x6x3x4xf32>) outs(%v22 : tensor<2x6x3x4xf32>) {
  ^bb0(%a0: f32, %acc: f32):
    %r = arith.negf %a0 : f32
    linalg.yield %r : f32
  } -> tensor<2x6x3x4xf32>
  %v24 = tensor.expand_shape %v20 [[0], [1], [2], [3, 4]] output_shape [2, 6, 3, 4, 1] : tensor<2x6x3x4xf32> into tensor<2x6x3x4x1xf32>
  %v25 = tensor.expand_shape %v23 [[0], [1], [2], [3, 4]] output_shape [2, 6, 3, 4, 1] : tensor<2x6x3x4xf32> into tensor<2x6x3x4x1xf32>
  %v26 = tensor.concat dim(4) %v24, %v25 : (tensor<2x6x3x4x1xf32>, tensor<2x6x3x4x1xf32>) -> tensor<2x6x3x4x2xf32>
  %v27 = tensor.collapse_shape %v26 [[0], [1], [2], [3, 4]] : tensor<2x6x3x4x2xf32> into tensor<2x6x3x8xf32>
  %v28 = tensor.empty() : tensor<2x6x3x8xf32>
  %v29 = linalg.generic {indexing_maps = [affine_map<(d0, d1, d2, d3) -> (d0, d1, d2, d3)>, affine_map<(d0, d1, d2, d3) -> (d0, d1, 0, d3)>, affine_map<(d0, d1, d2, d3) -> (d0, d1, d2, d3)>, affine_map<(d0, d1, d2, d3) -> (d0, d1, 0, d3)>, affine_map<(d0, d1, d2, d3) -> (d0, d1, d2, d3)>], iterator_types = ["parallel", "parallel", "parallel", "parallel"]} ins(%x, %v12, %v27, %v19 : tensor<2x6x3x8xf32>, tensor<2x6x1x8xf32>, tensor<2x6x3x8xf32>, tensor<2x6x1x8xf32>) outs(%v28 : tensor<2x6x3x8xf32>) {
  ^bb0(%a0: f32, %a1: f32, %a2: f32, %a3: f32, %acc: f32):
    %m = arith.mulf %a0, %a1 : f32
    %n = arith.mulf %a2, %a3 : f32
    %r = arith.addf %m, %n : f32
    linalg.yield %r : f32
  } -> tensor<2x6x3x8xf32>
  return %v29 : tensor<2x6x3x8xf32>
}

// -----

// The pairs rotated by -θ (x_r·cos + x_i·sin, x_i·cos - x_r·sin), the
// conjugate's multiply: not raised (posenc.rope turns by +θ).
// CHECK-LABEL: func @negative_pairs_conjugate
// CHECK-NOT: posenc.rope
func.func @negative_pairs_conjugate(%x: tensor<2x6x3x8xf32>, %pos: tensor<2x6xi64>) -> tensor<2x6x3x8xf32> {
  %v1 = tensor.empty() : tensor<2x6xf32>
  %v2 = linalg.generic {indexing_maps = [affine_map<(d0, d1) -> (d0, d1)>, affine_map<(d0, d1) -> (d0, d1)>], iterator_types = ["parallel", "parallel"]} ins(%pos : tensor<2x6xi64>) outs(%v1 : tensor<2x6xf32>) {
  ^bb0(%p: i64, %o: f32):
    %f = arith.sitofp %p : i64 to f32
    linalg.yield %f : f32
  } -> tensor<2x6xf32>
  %v3 = arith.constant dense<[1.0, 0.10000000149011612, 0.009999999776482582, 0.0010000000474974513]> : tensor<4xf32>
  %v4 = tensor.empty() : tensor<2x6x4xf32>
  %v5 = linalg.generic {indexing_maps = [affine_map<(d0, d1, d2) -> (d0, d1)>, affine_map<(d0, d1, d2) -> (d2)>, affine_map<(d0, d1, d2) -> (d0, d1, d2)>], iterator_types = ["parallel", "parallel", "parallel"]} ins(%v2, %v3 : tensor<2x6xf32>, tensor<4xf32>) outs(%v4 : tensor<2x6x4xf32>) {
  ^bb0(%a0: f32, %a1: f32, %acc: f32):
    %r = arith.mulf %a0, %a1 : f32
    linalg.yield %r : f32
  } -> tensor<2x6x4xf32>
  %v6 = tensor.empty() : tensor<2x6x4xf32>
  %v7 = linalg.generic {indexing_maps = [affine_map<(d0, d1, d2) -> (d0, d1, d2)>, affine_map<(d0, d1, d2) -> (d0, d1, d2)>], iterator_types = ["parallel", "parallel", "parallel"]} ins(%v5 : tensor<2x6x4xf32>) outs(%v6 : tensor<2x6x4xf32>) {
  ^bb0(%a0: f32, %acc: f32):
    %t = math.cos %a0 : f32
    linalg.yield %t : f32
  } -> tensor<2x6x4xf32>
  %v8 = tensor.expand_shape %v7 [[0], [1, 2], [3]] output_shape [2, 6, 1, 4] : tensor<2x6x4xf32> into tensor<2x6x1x4xf32>
  %v9 = tensor.empty() : tensor<2x6x4xf32>
  %v10 = linalg.generic {indexing_maps = [affine_map<(d0, d1, d2) -> (d0, d1, d2)>, affine_map<(d0, d1, d2) -> (d0, d1, d2)>], iterator_types = ["parallel", "parallel", "parallel"]} ins(%v5 : tensor<2x6x4xf32>) outs(%v9 : tensor<2x6x4xf32>) {
  ^bb0(%a0: f32, %acc: f32):
    %t = math.sin %a0 : f32
    linalg.yield %t : f32
  } -> tensor<2x6x4xf32>
  %v11 = tensor.expand_shape %v10 [[0], [1, 2], [3]] output_shape [2, 6, 1, 4] : tensor<2x6x4xf32> into tensor<2x6x1x4xf32>
  %v12 = tensor.extract_slice %x[0, 0, 0, 0] [2, 6, 3, 4] [1, 1, 1, 2] : tensor<2x6x3x8xf32> to tensor<2x6x3x4xf32>
  %v13 = tensor.extract_slice %x[0, 0, 0, 1] [2, 6, 3, 4] [1, 1, 1, 2] : tensor<2x6x3x8xf32> to tensor<2x6x3x4xf32>
  %v14 = tensor.empty() : tensor<2x6x3x4xf32>
  %v15 = linalg.generic {indexing_maps = [affine_map<(d0, d1, d2, d3) -> (d0, d1, d2, d3)>, affine_map<(d0, d1, d2, d3) -> (d0, d1, 0, d3)>, affine_map<(d0, d1, d2, d3) -> (d0, d1, d2, d3)>, affine_map<(d0, d1, d2, d3) -> (d0, d1, 0, d3)>, affine_map<(d0, d1, d2, d3) -> (d0, d1, d2, d3)>], iterator_types = ["parallel", "parallel", "parallel", "parallel"]} ins(%v12, %v8, %v13, %v11 : tensor<2x6x3x4xf32>, tensor<2x6x1x4xf32>, tensor<2x6x3x4xf32>, tensor<2x6x1x4xf32>) outs(%v14 : tensor<2x6x3x4xf32>) {
  ^bb0(%a0: f32, %a1: f32, %a2: f32, %a3: f32, %acc: f32):
    %m = arith.mulf %a0, %a1 : f32
    %n = arith.mulf %a2, %a3 : f32
    %r = arith.addf %m, %n : f32
    linalg.yield %r : f32
  } -> tensor<2x6x3x4xf32>
  %v16 = tensor.empty() : tensor<2x6x3x4xf32>
  %v17 = linalg.generic {indexing_maps = [affine_map<(d0, d1, d2, d3) -> (d0, d1, d2, d3)>, affine_map<(d0, d1, d2, d3) -> (d0, d1, 0, d3)>, affine_map<(d0, d1, d2, d3) -> (d0, d1, d2, d3)>, affine_map<(d0, d1, d2, d3) -> (d0, d1, 0, d3)>, affine_map<(d0, d1, d2, d3) -> (d0, d1, d2, d3)>], iterator_types = ["parallel", "parallel", "parallel", "parallel"]} ins(%v13, %v8, %v12, %v11 : tensor<2x6x3x4xf32>, tensor<2x6x1x4xf32>, tensor<2x6x3x4xf32>, tensor<2x6x1x4xf32>) outs(%v16 : tensor<2x6x3x4xf32>) {
  ^bb0(%a0: f32, %a1: f32, %a2: f32, %a3: f32, %acc: f32):
    %m = arith.mulf %a0, %a1 : f32
    %n = arith.mulf %a2, %a3 : f32
    %r = arith.subf %m, %n : f32
    linalg.yield %r : f32
  } -> tensor<2x6x3x4xf32>
  %v18 = tensor.expand_shape %v15 [[0], [1], [2], [3, 4]] output_shape [2, 6, 3, 4, 1] : tensor<2x6x3x4xf32> into tensor<2x6x3x4x1xf32>
  %v19 = tensor.expand_shape %v17 [[0], [1], [2], [3, 4]] output_shape [2, 6, 3, 4, 1] : tensor<2x6x3x4xf32> into tensor<2x6x3x4x1xf32>
  %v20 = tensor.concat dim(4) %v18, %v19 : (tensor<2x6x3x4x1xf32>, tensor<2x6x3x4x1xf32>) -> tensor<2x6x3x4x2xf32>
  %v21 = tensor.collapse_shape %v20 [[0], [1], [2], [3, 4]] : tensor<2x6x3x4x2xf32> into tensor<2x6x3x8xf32>
  return %v21 : tensor<2x6x3x8xf32>
}

// -----

// DeepSeek-V2's naive MLA as Hugging Face writes it (inlined): kv_b_proj
// as linalg.batch_matmul with W transposed and broadcast over the batch,
// viewed as [B, Sk, H, Dn + Dv], transposed and split into k_nope and v;
// queries and keys assembled by new_empty and slice assignments
// (tensor.insert_slice), k_pe expanded over the heads, a causal softmax:
// one posenc.mla_absorb on the latent, w_uk and w_uv the halves of W.
// CHECK-LABEL: func @deepseek_mla
// CHECK: %[[W:.+]] = tensor.expand_shape %arg4 {{\[}}[0, 1], [2]] output_shape [3, 14, 10] : tensor<42x10xf32> into tensor<3x14x10xf32>
// CHECK-DAG: %[[UK:.+]] = tensor.extract_slice %[[W]][0, 0, 0] [3, 8, 10] [1, 1, 1]
// CHECK-DAG: %[[UV:.+]] = tensor.extract_slice %[[W]][0, 8, 0] [3, 6, 10] [1, 1, 1]
// CHECK: posenc.mla_absorb %{{.+}}, %{{.+}}, %arg2, %{{.+}}, %[[UK]], %[[UV]] causal
// CHECK-NOT: posenc.attention
// CHECK-NOT: linalg.batch_matmul
// LOWER-LABEL: llvm.func @deepseek_mla
func.func @deepseek_mla(%arg0: tensor<2x3x5x8xf32>, %arg1: tensor<2x3x5x4xf32>, %arg2: tensor<2x7x10xf32>, %arg3: tensor<2x1x7x4xf32>, %arg4: tensor<42x10xf32>) -> tensor<2x3x5x6xf32> {
  %cst = arith.constant dense<3.46410155> : tensor<2x3x5x7xf32>
  %cst_0 = arith.constant dense<[[0.000000e+00, 0.000000e+00, 0.000000e+00, 0xFF800000, 0xFF800000, 0xFF800000, 0xFF800000], [0.000000e+00, 0.000000e+00, 0.000000e+00, 0.000000e+00, 0xFF800000, 0xFF800000, 0xFF800000], [0.000000e+00, 0.000000e+00, 0.000000e+00, 0.000000e+00, 0.000000e+00, 0xFF800000, 0xFF800000], [0.000000e+00, 0.000000e+00, 0.000000e+00, 0.000000e+00, 0.000000e+00, 0.000000e+00, 0xFF800000], [0.000000e+00, 0.000000e+00, 0.000000e+00, 0.000000e+00, 0.000000e+00, 0.000000e+00, 0.000000e+00]]> : tensor<5x7xf32>
  %cst_1 = arith.constant 0xFF800000 : f32
  %cst_2 = arith.constant 0.000000e+00 : f32
  %0 = tensor.empty() : tensor<10x42xf32>
  %transposed = linalg.transpose ins(%arg4 : tensor<42x10xf32>) outs(%0 : tensor<10x42xf32>) permutation = [1, 0] 
  %1 = tensor.empty() : tensor<2x10x42xf32>
  %broadcasted = linalg.broadcast ins(%transposed : tensor<10x42xf32>) outs(%1 : tensor<2x10x42xf32>) dimensions = [0] 
  %2 = tensor.empty() : tensor<2x7x42xf32>
  %3 = linalg.fill ins(%cst_2 : f32) outs(%2 : tensor<2x7x42xf32>) -> tensor<2x7x42xf32>
  %4 = linalg.batch_matmul ins(%arg2, %broadcasted : tensor<2x7x10xf32>, tensor<2x10x42xf32>) outs(%3 : tensor<2x7x42xf32>) -> tensor<2x7x42xf32>
  %5 = tensor.empty() : tensor<2x3x7x14xf32>
  %expanded = tensor.expand_shape %4 [[0], [1], [2, 3]] output_shape [2, 7, 3, 14] : tensor<2x7x42xf32> into tensor<2x7x3x14xf32>
  %transposed_3 = linalg.transpose ins(%expanded : tensor<2x7x3x14xf32>) outs(%5 : tensor<2x3x7x14xf32>) permutation = [0, 2, 1, 3] 
  %extracted_slice = tensor.extract_slice %transposed_3[0, 0, 0, 0] [2, 3, 7, 8] [1, 1, 1, 1] : tensor<2x3x7x14xf32> to tensor<2x3x7x8xf32>
  %extracted_slice_4 = tensor.extract_slice %transposed_3[0, 0, 0, 8] [2, 3, 7, 6] [1, 1, 1, 1] : tensor<2x3x7x14xf32> to tensor<2x3x7x6xf32>
  %6 = tensor.empty() : tensor<2x3x7x4xf32>
  %7 = linalg.generic {indexing_maps = [affine_map<(d0, d1, d2, d3) -> (d0, 0, d2, d3)>, affine_map<(d0, d1, d2, d3) -> (d0, d1, d2, d3)>], iterator_types = ["parallel", "parallel", "parallel", "parallel"]} ins(%arg3 : tensor<2x1x7x4xf32>) outs(%6 : tensor<2x3x7x4xf32>) {
  ^bb0(%in: f32, %out: f32):
    linalg.yield %in : f32
  } -> tensor<2x3x7x4xf32>
  %8 = tensor.empty() : tensor<2x3x5x12xf32>
  %inserted_slice = tensor.insert_slice %arg0 into %8[0, 0, 0, 0] [2, 3, 5, 8] [1, 1, 1, 1] : tensor<2x3x5x8xf32> into tensor<2x3x5x12xf32>
  %inserted_slice_5 = tensor.insert_slice %arg1 into %inserted_slice[0, 0, 0, 8] [2, 3, 5, 4] [1, 1, 1, 1] : tensor<2x3x5x4xf32> into tensor<2x3x5x12xf32>
  %9 = tensor.empty() : tensor<2x3x7x12xf32>
  %inserted_slice_6 = tensor.insert_slice %extracted_slice into %9[0, 0, 0, 0] [2, 3, 7, 8] [1, 1, 1, 1] : tensor<2x3x7x8xf32> into tensor<2x3x7x12xf32>
  %inserted_slice_7 = tensor.insert_slice %7 into %inserted_slice_6[0, 0, 0, 8] [2, 3, 7, 4] [1, 1, 1, 1] : tensor<2x3x7x4xf32> into tensor<2x3x7x12xf32>
  %10 = tensor.empty() : tensor<2x3x12x7xf32>
  %transposed_8 = linalg.transpose ins(%inserted_slice_7 : tensor<2x3x7x12xf32>) outs(%10 : tensor<2x3x12x7xf32>) permutation = [0, 1, 3, 2] 
  %11 = tensor.empty() : tensor<2x3x5x7xf32>
  %12 = linalg.fill ins(%cst_2 : f32) outs(%11 : tensor<2x3x5x7xf32>) -> tensor<2x3x5x7xf32>
  %13 = linalg.generic {indexing_maps = [affine_map<(d0, d1, d2, d3, d4) -> (d0, d1, d2, d4)>, affine_map<(d0, d1, d2, d3, d4) -> (d0, d1, d4, d3)>, affine_map<(d0, d1, d2, d3, d4) -> (d0, d1, d2, d3)>], iterator_types = ["parallel", "parallel", "parallel", "parallel", "reduction"]} ins(%inserted_slice_5, %transposed_8 : tensor<2x3x5x12xf32>, tensor<2x3x12x7xf32>) outs(%12 : tensor<2x3x5x7xf32>) {
  ^bb0(%in: f32, %in_9: f32, %out: f32):
    %33 = arith.mulf %in, %in_9 : f32
    %34 = arith.addf %out, %33 : f32
    linalg.yield %34 : f32
  } -> tensor<2x3x5x7xf32>
  %14 = tensor.empty() : tensor<2x3x5x7xf32>
  %15 = linalg.div ins(%13, %cst : tensor<2x3x5x7xf32>, tensor<2x3x5x7xf32>) outs(%14 : tensor<2x3x5x7xf32>) -> tensor<2x3x5x7xf32>
  %16 = tensor.empty() : tensor<2x3x5x7xf32>
  %17 = linalg.generic {indexing_maps = [affine_map<(d0, d1, d2, d3) -> (d0, d1, d2, d3)>, affine_map<(d0, d1, d2, d3) -> (d2, d3)>, affine_map<(d0, d1, d2, d3) -> (d0, d1, d2, d3)>], iterator_types = ["parallel", "parallel", "parallel", "parallel"]} ins(%15, %cst_0 : tensor<2x3x5x7xf32>, tensor<5x7xf32>) outs(%16 : tensor<2x3x5x7xf32>) {
  ^bb0(%in: f32, %in_9: f32, %out: f32):
    %33 = arith.addf %in, %in_9 : f32
    linalg.yield %33 : f32
  } -> tensor<2x3x5x7xf32>
  %18 = tensor.empty() : tensor<2x3x5xf32>
  %19 = linalg.fill ins(%cst_1 : f32) outs(%18 : tensor<2x3x5xf32>) -> tensor<2x3x5xf32>
  %20 = linalg.generic {indexing_maps = [affine_map<(d0, d1, d2, d3) -> (d0, d1, d2, d3)>, affine_map<(d0, d1, d2, d3) -> (d0, d1, d2)>], iterator_types = ["parallel", "parallel", "parallel", "reduction"]} ins(%17 : tensor<2x3x5x7xf32>) outs(%19 : tensor<2x3x5xf32>) {
  ^bb0(%in: f32, %out: f32):
    %33 = arith.maximumf %in, %out : f32
    linalg.yield %33 : f32
  } -> tensor<2x3x5xf32>
  %21 = tensor.empty() : tensor<2x3x5x7xf32>
  %22 = linalg.generic {indexing_maps = [affine_map<(d0, d1, d2, d3) -> (d0, d1, d2, d3)>, affine_map<(d0, d1, d2, d3) -> (d0, d1, d2)>, affine_map<(d0, d1, d2, d3) -> (d0, d1, d2, d3)>], iterator_types = ["parallel", "parallel", "parallel", "parallel"]} ins(%17, %20 : tensor<2x3x5x7xf32>, tensor<2x3x5xf32>) outs(%21 : tensor<2x3x5x7xf32>) {
  ^bb0(%in: f32, %in_9: f32, %out: f32):
    %33 = arith.subf %in, %in_9 : f32
    linalg.yield %33 : f32
  } -> tensor<2x3x5x7xf32>
  %23 = tensor.empty() : tensor<2x3x5x7xf32>
  %24 = linalg.generic {indexing_maps = [affine_map<(d0, d1, d2, d3) -> (d0, d1, d2, d3)>, affine_map<(d0, d1, d2, d3) -> (d0, d1, d2, d3)>], iterator_types = ["parallel", "parallel", "parallel", "parallel"]} ins(%22 : tensor<2x3x5x7xf32>) outs(%23 : tensor<2x3x5x7xf32>) {
  ^bb0(%in: f32, %out: f32):
    %33 = math.exp %in : f32
    linalg.yield %33 : f32
  } -> tensor<2x3x5x7xf32>
  %25 = tensor.empty() : tensor<2x3x5xf32>
  %26 = linalg.fill ins(%cst_2 : f32) outs(%25 : tensor<2x3x5xf32>) -> tensor<2x3x5xf32>
  %27 = linalg.generic {indexing_maps = [affine_map<(d0, d1, d2, d3) -> (d0, d1, d2, d3)>, affine_map<(d0, d1, d2, d3) -> (d0, d1, d2)>], iterator_types = ["parallel", "parallel", "parallel", "reduction"]} ins(%24 : tensor<2x3x5x7xf32>) outs(%26 : tensor<2x3x5xf32>) {
  ^bb0(%in: f32, %out: f32):
    %33 = arith.addf %in, %out : f32
    linalg.yield %33 : f32
  } -> tensor<2x3x5xf32>
  %28 = tensor.empty() : tensor<2x3x5x7xf32>
  %29 = linalg.generic {indexing_maps = [affine_map<(d0, d1, d2, d3) -> (d0, d1, d2, d3)>, affine_map<(d0, d1, d2, d3) -> (d0, d1, d2)>, affine_map<(d0, d1, d2, d3) -> (d0, d1, d2, d3)>], iterator_types = ["parallel", "parallel", "parallel", "parallel"]} ins(%24, %27 : tensor<2x3x5x7xf32>, tensor<2x3x5xf32>) outs(%28 : tensor<2x3x5x7xf32>) {
  ^bb0(%in: f32, %in_9: f32, %out: f32):
    %33 = arith.divf %in, %in_9 : f32
    linalg.yield %33 : f32
  } -> tensor<2x3x5x7xf32>
  %30 = tensor.empty() : tensor<2x3x5x6xf32>
  %31 = linalg.fill ins(%cst_2 : f32) outs(%30 : tensor<2x3x5x6xf32>) -> tensor<2x3x5x6xf32>
  %32 = linalg.generic {indexing_maps = [affine_map<(d0, d1, d2, d3, d4) -> (d0, d1, d2, d4)>, affine_map<(d0, d1, d2, d3, d4) -> (d0, d1, d4, d3)>, affine_map<(d0, d1, d2, d3, d4) -> (d0, d1, d2, d3)>], iterator_types = ["parallel", "parallel", "parallel", "parallel", "reduction"]} ins(%29, %extracted_slice_4 : tensor<2x3x5x7xf32>, tensor<2x3x7x6xf32>) outs(%31 : tensor<2x3x5x6xf32>) {
  ^bb0(%in: f32, %in_9: f32, %out: f32):
    %33 = arith.mulf %in, %in_9 : f32
    %34 = arith.addf %out, %33 : f32
    linalg.yield %34 : f32
  } -> tensor<2x3x5x6xf32>
  return %32 : tensor<2x3x5x6xf32>
}

// -----

// v = kv[..., Dn - 2:Dn - 2 + Dv] overlaps k_nope: not a split of W per
// head, so the attention is raised and the MLA is not.
// CHECK-LABEL: func @negative_mla_values_overlap
// CHECK-NOT: posenc.mla_absorb
// CHECK: posenc.attention
func.func @negative_mla_values_overlap(%arg0: tensor<2x3x5x8xf32>, %arg1: tensor<2x3x5x4xf32>, %arg2: tensor<2x7x10xf32>, %arg3: tensor<2x1x7x4xf32>, %arg4: tensor<42x10xf32>) -> tensor<2x3x5x6xf32> {
  %cst = arith.constant dense<3.46410155> : tensor<2x3x5x7xf32>
  %cst_0 = arith.constant dense<[[0.000000e+00, 0.000000e+00, 0.000000e+00, 0xFF800000, 0xFF800000, 0xFF800000, 0xFF800000], [0.000000e+00, 0.000000e+00, 0.000000e+00, 0.000000e+00, 0xFF800000, 0xFF800000, 0xFF800000], [0.000000e+00, 0.000000e+00, 0.000000e+00, 0.000000e+00, 0.000000e+00, 0xFF800000, 0xFF800000], [0.000000e+00, 0.000000e+00, 0.000000e+00, 0.000000e+00, 0.000000e+00, 0.000000e+00, 0xFF800000], [0.000000e+00, 0.000000e+00, 0.000000e+00, 0.000000e+00, 0.000000e+00, 0.000000e+00, 0.000000e+00]]> : tensor<5x7xf32>
  %cst_1 = arith.constant 0xFF800000 : f32
  %cst_2 = arith.constant 0.000000e+00 : f32
  %0 = tensor.empty() : tensor<10x42xf32>
  %transposed = linalg.transpose ins(%arg4 : tensor<42x10xf32>) outs(%0 : tensor<10x42xf32>) permutation = [1, 0] 
  %1 = tensor.empty() : tensor<2x10x42xf32>
  %broadcasted = linalg.broadcast ins(%transposed : tensor<10x42xf32>) outs(%1 : tensor<2x10x42xf32>) dimensions = [0] 
  %2 = tensor.empty() : tensor<2x7x42xf32>
  %3 = linalg.fill ins(%cst_2 : f32) outs(%2 : tensor<2x7x42xf32>) -> tensor<2x7x42xf32>
  %4 = linalg.batch_matmul ins(%arg2, %broadcasted : tensor<2x7x10xf32>, tensor<2x10x42xf32>) outs(%3 : tensor<2x7x42xf32>) -> tensor<2x7x42xf32>
  %5 = tensor.empty() : tensor<2x3x7x14xf32>
  %expanded = tensor.expand_shape %4 [[0], [1], [2, 3]] output_shape [2, 7, 3, 14] : tensor<2x7x42xf32> into tensor<2x7x3x14xf32>
  %transposed_3 = linalg.transpose ins(%expanded : tensor<2x7x3x14xf32>) outs(%5 : tensor<2x3x7x14xf32>) permutation = [0, 2, 1, 3] 
  %extracted_slice = tensor.extract_slice %transposed_3[0, 0, 0, 0] [2, 3, 7, 8] [1, 1, 1, 1] : tensor<2x3x7x14xf32> to tensor<2x3x7x8xf32>
  %extracted_slice_4 = tensor.extract_slice %transposed_3[0, 0, 0, 6] [2, 3, 7, 6] [1, 1, 1, 1] : tensor<2x3x7x14xf32> to tensor<2x3x7x6xf32>
  %6 = tensor.empty() : tensor<2x3x7x4xf32>
  %7 = linalg.generic {indexing_maps = [affine_map<(d0, d1, d2, d3) -> (d0, 0, d2, d3)>, affine_map<(d0, d1, d2, d3) -> (d0, d1, d2, d3)>], iterator_types = ["parallel", "parallel", "parallel", "parallel"]} ins(%arg3 : tensor<2x1x7x4xf32>) outs(%6 : tensor<2x3x7x4xf32>) {
  ^bb0(%in: f32, %out: f32):
    linalg.yield %in : f32
  } -> tensor<2x3x7x4xf32>
  %8 = tensor.empty() : tensor<2x3x5x12xf32>
  %inserted_slice = tensor.insert_slice %arg0 into %8[0, 0, 0, 0] [2, 3, 5, 8] [1, 1, 1, 1] : tensor<2x3x5x8xf32> into tensor<2x3x5x12xf32>
  %inserted_slice_5 = tensor.insert_slice %arg1 into %inserted_slice[0, 0, 0, 8] [2, 3, 5, 4] [1, 1, 1, 1] : tensor<2x3x5x4xf32> into tensor<2x3x5x12xf32>
  %9 = tensor.empty() : tensor<2x3x7x12xf32>
  %inserted_slice_6 = tensor.insert_slice %extracted_slice into %9[0, 0, 0, 0] [2, 3, 7, 8] [1, 1, 1, 1] : tensor<2x3x7x8xf32> into tensor<2x3x7x12xf32>
  %inserted_slice_7 = tensor.insert_slice %7 into %inserted_slice_6[0, 0, 0, 8] [2, 3, 7, 4] [1, 1, 1, 1] : tensor<2x3x7x4xf32> into tensor<2x3x7x12xf32>
  %10 = tensor.empty() : tensor<2x3x12x7xf32>
  %transposed_8 = linalg.transpose ins(%inserted_slice_7 : tensor<2x3x7x12xf32>) outs(%10 : tensor<2x3x12x7xf32>) permutation = [0, 1, 3, 2] 
  %11 = tensor.empty() : tensor<2x3x5x7xf32>
  %12 = linalg.fill ins(%cst_2 : f32) outs(%11 : tensor<2x3x5x7xf32>) -> tensor<2x3x5x7xf32>
  %13 = linalg.generic {indexing_maps = [affine_map<(d0, d1, d2, d3, d4) -> (d0, d1, d2, d4)>, affine_map<(d0, d1, d2, d3, d4) -> (d0, d1, d4, d3)>, affine_map<(d0, d1, d2, d3, d4) -> (d0, d1, d2, d3)>], iterator_types = ["parallel", "parallel", "parallel", "parallel", "reduction"]} ins(%inserted_slice_5, %transposed_8 : tensor<2x3x5x12xf32>, tensor<2x3x12x7xf32>) outs(%12 : tensor<2x3x5x7xf32>) {
  ^bb0(%in: f32, %in_9: f32, %out: f32):
    %33 = arith.mulf %in, %in_9 : f32
    %34 = arith.addf %out, %33 : f32
    linalg.yield %34 : f32
  } -> tensor<2x3x5x7xf32>
  %14 = tensor.empty() : tensor<2x3x5x7xf32>
  %15 = linalg.div ins(%13, %cst : tensor<2x3x5x7xf32>, tensor<2x3x5x7xf32>) outs(%14 : tensor<2x3x5x7xf32>) -> tensor<2x3x5x7xf32>
  %16 = tensor.empty() : tensor<2x3x5x7xf32>
  %17 = linalg.generic {indexing_maps = [affine_map<(d0, d1, d2, d3) -> (d0, d1, d2, d3)>, affine_map<(d0, d1, d2, d3) -> (d2, d3)>, affine_map<(d0, d1, d2, d3) -> (d0, d1, d2, d3)>], iterator_types = ["parallel", "parallel", "parallel", "parallel"]} ins(%15, %cst_0 : tensor<2x3x5x7xf32>, tensor<5x7xf32>) outs(%16 : tensor<2x3x5x7xf32>) {
  ^bb0(%in: f32, %in_9: f32, %out: f32):
    %33 = arith.addf %in, %in_9 : f32
    linalg.yield %33 : f32
  } -> tensor<2x3x5x7xf32>
  %18 = tensor.empty() : tensor<2x3x5xf32>
  %19 = linalg.fill ins(%cst_1 : f32) outs(%18 : tensor<2x3x5xf32>) -> tensor<2x3x5xf32>
  %20 = linalg.generic {indexing_maps = [affine_map<(d0, d1, d2, d3) -> (d0, d1, d2, d3)>, affine_map<(d0, d1, d2, d3) -> (d0, d1, d2)>], iterator_types = ["parallel", "parallel", "parallel", "reduction"]} ins(%17 : tensor<2x3x5x7xf32>) outs(%19 : tensor<2x3x5xf32>) {
  ^bb0(%in: f32, %out: f32):
    %33 = arith.maximumf %in, %out : f32
    linalg.yield %33 : f32
  } -> tensor<2x3x5xf32>
  %21 = tensor.empty() : tensor<2x3x5x7xf32>
  %22 = linalg.generic {indexing_maps = [affine_map<(d0, d1, d2, d3) -> (d0, d1, d2, d3)>, affine_map<(d0, d1, d2, d3) -> (d0, d1, d2)>, affine_map<(d0, d1, d2, d3) -> (d0, d1, d2, d3)>], iterator_types = ["parallel", "parallel", "parallel", "parallel"]} ins(%17, %20 : tensor<2x3x5x7xf32>, tensor<2x3x5xf32>) outs(%21 : tensor<2x3x5x7xf32>) {
  ^bb0(%in: f32, %in_9: f32, %out: f32):
    %33 = arith.subf %in, %in_9 : f32
    linalg.yield %33 : f32
  } -> tensor<2x3x5x7xf32>
  %23 = tensor.empty() : tensor<2x3x5x7xf32>
  %24 = linalg.generic {indexing_maps = [affine_map<(d0, d1, d2, d3) -> (d0, d1, d2, d3)>, affine_map<(d0, d1, d2, d3) -> (d0, d1, d2, d3)>], iterator_types = ["parallel", "parallel", "parallel", "parallel"]} ins(%22 : tensor<2x3x5x7xf32>) outs(%23 : tensor<2x3x5x7xf32>) {
  ^bb0(%in: f32, %out: f32):
    %33 = math.exp %in : f32
    linalg.yield %33 : f32
  } -> tensor<2x3x5x7xf32>
  %25 = tensor.empty() : tensor<2x3x5xf32>
  %26 = linalg.fill ins(%cst_2 : f32) outs(%25 : tensor<2x3x5xf32>) -> tensor<2x3x5xf32>
  %27 = linalg.generic {indexing_maps = [affine_map<(d0, d1, d2, d3) -> (d0, d1, d2, d3)>, affine_map<(d0, d1, d2, d3) -> (d0, d1, d2)>], iterator_types = ["parallel", "parallel", "parallel", "reduction"]} ins(%24 : tensor<2x3x5x7xf32>) outs(%26 : tensor<2x3x5xf32>) {
  ^bb0(%in: f32, %out: f32):
    %33 = arith.addf %in, %out : f32
    linalg.yield %33 : f32
  } -> tensor<2x3x5xf32>
  %28 = tensor.empty() : tensor<2x3x5x7xf32>
  %29 = linalg.generic {indexing_maps = [affine_map<(d0, d1, d2, d3) -> (d0, d1, d2, d3)>, affine_map<(d0, d1, d2, d3) -> (d0, d1, d2)>, affine_map<(d0, d1, d2, d3) -> (d0, d1, d2, d3)>], iterator_types = ["parallel", "parallel", "parallel", "parallel"]} ins(%24, %27 : tensor<2x3x5x7xf32>, tensor<2x3x5xf32>) outs(%28 : tensor<2x3x5x7xf32>) {
  ^bb0(%in: f32, %in_9: f32, %out: f32):
    %33 = arith.divf %in, %in_9 : f32
    linalg.yield %33 : f32
  } -> tensor<2x3x5x7xf32>
  %30 = tensor.empty() : tensor<2x3x5x6xf32>
  %31 = linalg.fill ins(%cst_2 : f32) outs(%30 : tensor<2x3x5x6xf32>) -> tensor<2x3x5x6xf32>
  %32 = linalg.generic {indexing_maps = [affine_map<(d0, d1, d2, d3, d4) -> (d0, d1, d2, d4)>, affine_map<(d0, d1, d2, d3, d4) -> (d0, d1, d4, d3)>, affine_map<(d0, d1, d2, d3, d4) -> (d0, d1, d2, d3)>], iterator_types = ["parallel", "parallel", "parallel", "parallel", "reduction"]} ins(%29, %extracted_slice_4 : tensor<2x3x5x7xf32>, tensor<2x3x7x6xf32>) outs(%31 : tensor<2x3x5x6xf32>) {
  ^bb0(%in: f32, %in_9: f32, %out: f32):
    %33 = arith.mulf %in, %in_9 : f32
    %34 = arith.addf %out, %33 : f32
    linalg.yield %34 : f32
  } -> tensor<2x3x5x6xf32>
  return %32 : tensor<2x3x5x6xf32>
}

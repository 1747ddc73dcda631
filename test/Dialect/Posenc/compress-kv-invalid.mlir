// RUN: not posenc-opt %s -posenc-compress-kv 2>&1 | FileCheck %s --check-prefix=NONE
// RUN: not posenc-opt %s -posenc-compress-kv="rank=2 energy=0.9" 2>&1 | FileCheck %s --check-prefix=NONE
// RUN: not posenc-opt %s -posenc-compress-kv=energy=1.5 2>&1 | FileCheck %s --check-prefix=NONE
// RUN: not posenc-opt %s -posenc-compress-kv=rank=-3 2>&1 | FileCheck %s --check-prefix=NONE
// RUN: not posenc-opt %s -posenc-compress-kv="rank=2 factor=both" 2>&1 | FileCheck %s --check-prefix=FACTOR
// RUN: not posenc-opt %s -posenc-compress-kv="rank=2 rotary=drop" 2>&1 | FileCheck %s --check-prefix=ROTARY
// RUN: not posenc-opt %s -posenc-compress-kv="rank=1 factor=separate" 2>&1 | FileCheck %s --check-prefix=SPLIT
// RUN: not posenc-opt %s -posenc-compress-kv="rank=2 layers=1" 2>&1 | FileCheck %s --check-prefix=RANGE
// RUN: not posenc-opt %s -posenc-compress-kv="rank=2 layers=0" 2>&1 | FileCheck %s --check-prefix=LISTED
// RUN: posenc-opt %s -posenc-compress-kv=rank=2 | FileCheck %s --check-prefix=SKIP

// NONE: error: posenc-compress-kv: set exactly one of rank=R (>= 1) or energy=E (in (0, 1]); got rank=
// FACTOR: error: posenc-compress-kv: factor must be joint or separate, got 'both'
// ROTARY: error: posenc-compress-kv: rotary must be reconstruct or decoupled, got 'drop'
// SPLIT: error: posenc-compress-kv: factor=separate splits the rank between keys and values: rank must be >= 2, got 1
// RANGE: error: posenc-compress-kv: layers lists attention #1 but the input has 1 posenc.attention ops (numbered from 0 in walk order)
// LISTED: error: posenc-compress-kv: attention #0 cannot be compressed: v is not x·W_v
// Unlisted attention that does not match is left as it is.
// SKIP: posenc.attention %arg1, %expanded, %expanded{{.*}} outs(
func.func @values_from_an_argument(%x: tensor<8x4xf32>, %q: tensor<1x8x4x2xf32>, %wv: tensor<4x4xf32>) -> tensor<1x8x4x2xf32> {
  %zero = arith.constant 0.0 : f32
  %wk = arith.constant dense<1.0> : tensor<4x4xf32>
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

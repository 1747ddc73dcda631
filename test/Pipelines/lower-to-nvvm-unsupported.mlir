// RUN: not posenc-opt %s -posenc-lower-to-nvvm -split-input-file 2>&1 | FileCheck %s

// Attention (and MLA, which becomes attention) has no GPU kernel yet: the
// pipeline says so before lowering anything.
// CHECK: error: 'posenc.attention' op is not lowered by posenc-lower-to-nvvm yet (no GPU attention kernel); posenc-lower-to-cpu lowers it
func.func @attention(%q: tensor<1x8x2x16xf32>) -> tensor<1x8x2x16xf32> {
  %o = posenc.attention %q, %q, %q causal : tensor<1x8x2x16xf32>, tensor<1x8x2x16xf32>, tensor<1x8x2x16xf32> -> tensor<1x8x2x16xf32>
  return %o : tensor<1x8x2x16xf32>
}

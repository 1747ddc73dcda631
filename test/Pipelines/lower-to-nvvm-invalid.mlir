// RUN: not posenc-opt %s -posenc-lower-to-nvvm -split-input-file 2>&1 | FileCheck %s --check-prefix=CHECK
// RUN: not posenc-opt %s -posenc-lower-to-nvvm="attention-tile-q=3" -split-input-file 2>&1 | FileCheck %s --check-prefix=TILE

// What the GPU pipeline cannot lower is named with its op and values
// before anything is compiled: the attention kernel unrolls a thread's
// accumulators, so head dims must be static.
// CHECK: error: 'posenc.attention' op convert-posenc-attention-to-gpu: head counts and head dims must be static (got Hq = 2, Hkv = 2, Dk = ?, Dv = ?; ? is dynamic)
func.func @dynamic_head_dim(%q: tensor<1x8x2x?xf32>) -> tensor<1x8x2x?xf32> {
  %init_o_c3 = arith.constant 3 : index
  %init_o_d3 = tensor.dim %q, %init_o_c3 : tensor<1x8x2x?xf32>
  %init_o = tensor.empty(%init_o_d3) : tensor<1x8x2x?xf32>
  %o = posenc.attention %q, %q, %q causal outs(%init_o) {scale = 0.125 : f64} : tensor<1x8x2x?xf32>, tensor<1x8x2x?xf32>, tensor<1x8x2x?xf32>, tensor<1x8x2x?xf32>
  return %o : tensor<1x8x2x?xf32>
}

// -----

// Options out of range are an error too.
// TILE: error: 'posenc.attention' op convert-posenc-attention-to-gpu: no kernel for Dk = 16, Dv = 16 with tile-k = 32, threads = 128, tile-q = 3
func.func @bad_tile(%q: tensor<1x8x2x16xf32>) -> tensor<1x8x2x16xf32> {
  %init_o = tensor.empty() : tensor<1x8x2x16xf32>
  %o = posenc.attention %q, %q, %q outs(%init_o) : tensor<1x8x2x16xf32>, tensor<1x8x2x16xf32>, tensor<1x8x2x16xf32>, tensor<1x8x2x16xf32>
  return %o : tensor<1x8x2x16xf32>
}

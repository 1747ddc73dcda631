// RUN: posenc-opt %s -split-input-file -verify-diagnostics -convert-posenc-attention-to-gpu

// The accumulators of a thread are unrolled: head dims must be static.
func.func @dynamic_head_dim(%q: tensor<1x8x2x?xf32>, %k: tensor<1x8x2x?xf32>, %v: tensor<1x8x2x16xf32>) -> tensor<1x8x2x16xf32> {
  %init_o = tensor.empty() : tensor<1x8x2x16xf32>
  // expected-error @+1 {{convert-posenc-attention-to-gpu: head counts and head dims must be static (got Hq = 2, Hkv = 2, Dk = ?, Dv = 16; ? is dynamic)}}
  %o = posenc.attention %q, %k, %v outs(%init_o) {scale = 0.25 : f64} : tensor<1x8x2x?xf32>, tensor<1x8x2x?xf32>, tensor<1x8x2x16xf32>, tensor<1x8x2x16xf32>
  return %o : tensor<1x8x2x16xf32>
}

// -----

// MLA-sized heads need more than the default 48 KiB.
func.func @too_large(%q: tensor<1x1x16x576xf32>, %k: tensor<1x64x1x576xf32>, %v: tensor<1x64x1x512xf32>) -> tensor<1x1x16x512xf32> {
  %init_o = tensor.empty() : tensor<1x1x16x512xf32>
  // expected-error @+1 {{no kernel for Dk = 576, Dv = 512 with tile-k = 32, threads = 128: tile-q and tile-k must divide threads, threads / tile-k must divide tile-q, and the tiles must fit in 49152 bytes of shared memory (91856 needed at tile-q = 4)}}
  %o = posenc.attention %q, %k, %v causal outs(%init_o) : tensor<1x1x16x576xf32>, tensor<1x64x1x576xf32>, tensor<1x64x1x512xf32>, tensor<1x1x16x512xf32>
  return %o : tensor<1x1x16x512xf32>
}

// Upstream mlir-opt loads posenc as a plugin and round-trips its ops.
// RUN: mlir-opt %s --load-dialect-plugin=%posenc_plugin | FileCheck %s
// RUN: mlir-opt %s --load-dialect-plugin=%posenc_plugin --mlir-print-op-generic | mlir-opt --load-dialect-plugin=%posenc_plugin | FileCheck %s
// RUN: mlir-opt %s --load-pass-plugin=%posenc_plugin --load-dialect-plugin=%posenc_plugin --canonicalize | FileCheck %s

// CHECK-LABEL: func @layer
func.func @layer(%x: tensor<1x16x8x64xf32>, %p: tensor<16xi32>) -> tensor<1x16x8x64xf32> {
  // CHECK: posenc.rope %{{.*}}, %{{.*}} layout interleaved {scaling = #posenc.rope_scaling<yarn, factor = 4.000000e+01, original = 4096, mscale_all_dim = 1.000000e+00>}
  %q = posenc.rope %x, %p layout interleaved {scaling = #posenc.rope_scaling<yarn, factor = 40.0, original = 4096, mscale_all_dim = 1.0>} : tensor<1x16x8x64xf32>, tensor<16xi32>
  // CHECK: posenc.attention %{{.*}} causal
  %init_o = tensor.empty() : tensor<1x16x8x64xf32>
  %o = posenc.attention %q, %q, %q causal outs(%init_o) : tensor<1x16x8x64xf32>, tensor<1x16x8x64xf32>, tensor<1x16x8x64xf32>, tensor<1x16x8x64xf32>
  return %o : tensor<1x16x8x64xf32>
}

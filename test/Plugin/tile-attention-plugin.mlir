// Upstream mlir-opt with the posenc plugin tiles posenc.attention through
// the transform dialect: the plugin registers attention's TilingInterface.
// RUN: mlir-opt %s --load-dialect-plugin=%posenc_plugin --transform-interpreter --canonicalize | FileCheck %s

// CHECK-LABEL: func @tile_queries
// CHECK: scf.for %[[I:.+]] = %c0 to %c16 step %c4
// CHECK: %[[D:.+]] = affine.apply #{{.+}}()[%[[I]]]
// CHECK: posenc.attention {{.*}} causal diagonal(%[[D]]) outs(%{{.+}}) : tensor<1x4x2x8xf32>, tensor<1x?x2x8xf32>, tensor<1x?x2x8xf32>, tensor<1x4x2x8xf32>
func.func @tile_queries(%q: tensor<1x16x2x8xf32>, %k: tensor<1x24x2x8xf32>) -> tensor<1x16x2x8xf32> {
  %init_o = tensor.empty() : tensor<1x16x2x8xf32>
  %o = posenc.attention %q, %k, %k causal outs(%init_o) : tensor<1x16x2x8xf32>, tensor<1x24x2x8xf32>, tensor<1x24x2x8xf32>, tensor<1x16x2x8xf32>
  return %o : tensor<1x16x2x8xf32>
}
module attributes {transform.with_named_sequence} {
  transform.named_sequence @__transform_main(%root: !transform.any_op {transform.readonly}) {
    %a = transform.structured.match ops{["posenc.attention"]} in %root : (!transform.any_op) -> !transform.any_op
    %t, %l = transform.structured.tile_using_for %a tile_sizes [0, 0, 4, 0, 0, 0] : (!transform.any_op) -> (!transform.any_op, !transform.any_op)
    transform.yield
  }
}

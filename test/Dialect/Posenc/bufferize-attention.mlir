// RUN: posenc-opt %s --one-shot-bufferize="bufferize-function-boundaries function-boundary-type-conversion=identity-layout-map" | FileCheck %s
// RUN: posenc-opt %s | posenc-opt | FileCheck %s --check-prefix=ROUNDTRIP

// One-shot bufferization turns the tensor form into the buffer form: the
// init's allocation is the output (init is never read, so nothing is
// copied into it), q, k, v and the bias are read in place.
// CHECK-LABEL: func @tensor_form
// CHECK-SAME: (%[[Q:.+]]: memref<1x6x4x8xf32>, %[[K:.+]]: memref<1x9x2x8xf32>, %[[V:.+]]: memref<1x9x2x8xf32>, %[[B:.+]]: memref<4x6x9xf32>)
// CHECK: %[[OUT:.+]] = memref.alloc()
// CHECK-NOT: memref.copy
// CHECK: posenc.attention %[[Q]], %[[K]], %[[V]] bias(%[[B]] : memref<4x6x9xf32>) causal outs(%[[OUT]]) {scale = 2.500000e-01 : f64} : memref<1x6x4x8xf32>, memref<1x9x2x8xf32>, memref<1x9x2x8xf32>, memref<1x6x4x8xf32> score_mod
// CHECK: return %[[OUT]]
func.func @tensor_form(%q: tensor<1x6x4x8xf32>, %k: tensor<1x9x2x8xf32>, %v: tensor<1x9x2x8xf32>, %b: tensor<4x6x9xf32>) -> tensor<1x6x4x8xf32> {
  %init = tensor.empty() : tensor<1x6x4x8xf32>
  %o = posenc.attention %q, %k, %v bias(%b : tensor<4x6x9xf32>) causal outs(%init) {scale = 0.25 : f64}
       : tensor<1x6x4x8xf32>, tensor<1x9x2x8xf32>, tensor<1x9x2x8xf32>, tensor<1x6x4x8xf32> score_mod {
  ^bb0(%s: f32, %bb: index, %h: index, %i: index, %j: index):
    posenc.yield %s : f32
  }
  return %o : tensor<1x6x4x8xf32>
}

// The buffer form round-trips; it has no result.
// ROUNDTRIP-LABEL: func @buffer_form
// ROUNDTRIP: posenc.attention %{{.+}}, %{{.+}}, %{{.+}} causal outs(%{{.+}}) : memref<1x?x4x8xf32>, memref<1x?x2x8xf32>, memref<1x?x2x8xf32>, memref<1x?x4x8xf32>
// ROUNDTRIP-NEXT: return
func.func @buffer_form(%q: memref<1x?x4x8xf32>, %k: memref<1x?x2x8xf32>, %v: memref<1x?x2x8xf32>, %out: memref<1x?x4x8xf32>) {
  posenc.attention %q, %k, %v causal outs(%out) : memref<1x?x4x8xf32>, memref<1x?x2x8xf32>, memref<1x?x2x8xf32>, memref<1x?x4x8xf32>
  return
}

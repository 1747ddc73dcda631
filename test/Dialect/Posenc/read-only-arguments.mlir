// RUN: posenc-opt %s -posenc-read-only-arguments | FileCheck %s
// RUN: posenc-opt %s -posenc-read-only-arguments -one-shot-bufferize="bufferize-function-boundaries function-boundary-type-conversion=identity-layout-map" | FileCheck %s --check-prefix=BUF

// Tensor arguments become read-only for bufferization; other arguments,
// declarations and arguments that already say are left alone.
// CHECK-LABEL: func.func @partial_rope
// CHECK-SAME: (%{{.*}}: tensor<48x64xf32> {bufferization.writable = false}, %{{.*}}: tensor<48x32xf32> {bufferization.writable = false}, %{{.*}}: index)
// CHECK-LABEL: func.func @said
// CHECK-SAME: {bufferization.writable = true}
// CHECK: func.func private @external(tensor<4xf32>)

// A result that overwrites part of an input: without the pass, one-shot
// bufferization writes it into the caller's buffer %arg0 and returns a
// copy; with it, into a new buffer.
// BUF-LABEL: func.func @partial_rope
// BUF: %[[NEW:.*]] = memref.alloc
// BUF: memref.copy %arg0, %[[NEW]]
// BUF: %[[VIEW:.*]] = memref.subview %[[NEW]]
// BUF: memref.copy %{{.*}}, %[[VIEW]]
// BUF: return %[[NEW]]
func.func @partial_rope(%x: tensor<48x64xf32>, %rot: tensor<48x32xf32>, %n: index) -> tensor<48x64xf32> {
  %r = tensor.insert_slice %rot into %x[0, 0] [48, 32] [1, 1] : tensor<48x32xf32> into tensor<48x64xf32>
  return %r : tensor<48x64xf32>
}

func.func @said(%x: tensor<4xf32> {bufferization.writable = true}) -> tensor<4xf32> {
  return %x : tensor<4xf32>
}

func.func private @external(tensor<4xf32>)

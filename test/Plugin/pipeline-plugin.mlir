// Upstream mlir-opt runs posenc's passes and pipelines from the plugin
// through --pass-pipeline (its --<pass> flags exist before plugins load).
// RUN: mlir-opt %s --load-dialect-plugin=%posenc_plugin --load-pass-plugin=%posenc_plugin --pass-pipeline='builtin.module(posenc-fold-rope-layout{to=interleaved})' | FileCheck %s --check-prefix=PASS
// RUN: mlir-opt %s --load-dialect-plugin=%posenc_plugin --load-pass-plugin=%posenc_plugin --pass-pipeline='builtin.module(posenc-lower-to-cpu)' | FileCheck %s --check-prefix=LOWER
// RUN: not mlir-opt %s --load-dialect-plugin=%posenc_plugin --load-pass-plugin=%posenc_plugin --pass-pipeline='builtin.module(posenc-lower-to-cpu{num-threads=-1})' 2>&1 | FileCheck %s --check-prefix=BAD

// PASS-LABEL: func @rotate
// PASS: posenc.rope
// LOWER: llvm.func @rotate
// LOWER-NOT: posenc.
// BAD: posenc-lower-to-cpu: num-threads = -1 must be in [0, 4096]

func.func @rotate(%x: tensor<1x4x2x8xf32>, %p: tensor<4xi32>) -> tensor<1x4x2x8xf32> {
  %y = posenc.rope %x, %p layout half : tensor<1x4x2x8xf32>, tensor<4xi32>
  return %y : tensor<1x4x2x8xf32>
}

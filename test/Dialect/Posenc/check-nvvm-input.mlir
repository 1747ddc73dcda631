// RUN: not posenc-opt %s -split-input-file -posenc-check-nvvm-input 2>&1 | FileCheck %s
// RUN: not posenc-opt %s -split-input-file -posenc-check-nvvm-input 2>&1 | FileCheck %s --check-prefix=OK

// CHECK: error: 'posenc.mla_absorb' op is not lowered by posenc-lower-to-nvvm yet (no GPU attention kernel); posenc-lower-to-cpu lowers it
func.func @mla(%qn: tensor<1x4x2x16xf32>, %qr: tensor<1x4x2x8xf32>, %ckv: tensor<1x4x32xf32>, %kr: tensor<1x4x8xf32>, %wuk: tensor<2x16x32xf32>, %wuv: tensor<2x16x32xf32>) -> tensor<1x4x2x16xf32> {
  %o = posenc.mla_absorb %qn, %qr, %ckv, %kr, %wuk, %wuv causal : tensor<1x4x2x16xf32>, tensor<1x4x2x8xf32>, tensor<1x4x32xf32>, tensor<1x4x8xf32>, tensor<2x16x32xf32>, tensor<2x16x32xf32> -> tensor<1x4x2x16xf32>
  return %o : tensor<1x4x2x16xf32>
}

// -----

// The table and elementwise ops pass.
// OK-LABEL: func @rope
// OK: posenc.rope
func.func @rope(%x: tensor<1x4x2x8xf32>, %p: tensor<4xi32>) -> tensor<1x4x2x8xf32> {
  %y = posenc.rope %x, %p layout half : tensor<1x4x2x8xf32>, tensor<4xi32>
  return %y : tensor<1x4x2x8xf32>
}

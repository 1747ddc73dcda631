// posenc-lower-to-cpu leaves only the LLVM dialect: every posenc op, every
// tensor and every intermediate dialect is gone.
// RUN: posenc-opt %s --posenc-lower-to-cpu | FileCheck %s
// RUN: posenc-opt %s --posenc-lower-to-cpu=fuse-elementwise=false | FileCheck %s
// RUN: posenc-opt %s --posenc-lower-to-cpu | FileCheck %s --check-prefix=NONE

// Rope angles are reduced in f64 and evaluated by f32 polynomials.
// CHECK: llvm.func @layer(
// CHECK-NOT: llvm.intr.cos
// CHECK: llvm.intr.roundeven({{.*}}) : (f64) -> f64
// CHECK: llvm.intr.fma({{.*}}) : (f32, f32, f32) -> f32

// A file of only -NOT checks scans the whole output.
// NONE-NOT: posenc.
// NONE-NOT: linalg.
// NONE-NOT: tensor.
// NONE-NOT: memref.
// NONE-NOT: scf.
// NONE-NOT: bufferization.
func.func @layer(%q: tensor<1x8x4x16xbf16>, %k: tensor<1x8x2x16xbf16>, %v: tensor<1x8x2x16xbf16>,
                 %p: tensor<8xi64>, %t: tensor<32x4xf32>) -> tensor<1x8x4x16xbf16> {
  %qr = posenc.rope %q, %p layout interleaved {scaling = #posenc.rope_scaling<yarn, factor = 4.0, original = 32>} : tensor<1x8x4x16xbf16>, tensor<8xi64>
  %kr = posenc.rope %k, %p layout interleaved {scaling = #posenc.rope_scaling<yarn, factor = 4.0, original = 32>} : tensor<1x8x2x16xbf16>, tensor<8xi64>
  %b = posenc.rel_bias %t, %p, %p kind t5 {num_buckets = 32 : i64, max_distance = 128 : i64} : tensor<32x4xf32>, tensor<8xi64>, tensor<8xi64> -> tensor<4x8x8xf32>
  %init_o = tensor.empty() : tensor<1x8x4x16xbf16>
  %o = posenc.attention %qr, %kr, %v bias(%b : tensor<4x8x8xf32>) causal outs(%init_o) : tensor<1x8x4x16xbf16>, tensor<1x8x2x16xbf16>, tensor<1x8x2x16xbf16>, tensor<1x8x4x16xbf16>
  return %o : tensor<1x8x4x16xbf16>
}

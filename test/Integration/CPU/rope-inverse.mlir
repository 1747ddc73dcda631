// Rotating by p and then by -p gives x back (R(θ) is orthogonal and
// R(-θ) = R(θ)^T), for both layouts, partial rotary and positions up to
// 2^24 - 1. Checked inside the IR: prints [1] when max|x - x'| <= 1e-5.
// RUN: posenc-opt %s --posenc-lower-to-cpu | %mlir_runner -e main -entry-point-result=void | FileCheck %s

func.func private @printMemrefI32(tensor<*xi32>)

func.func @within(%a: tensor<2x4x3x16xf32>, %b: tensor<2x4x3x16xf32>, %tol: f32) {
  %zero = arith.constant 0.0 : f32
  %init = tensor.empty() : tensor<f32>
  %acc = linalg.fill ins(%zero : f32) outs(%init : tensor<f32>) -> tensor<f32>
  %m = linalg.generic {
      indexing_maps = [affine_map<(d0, d1, d2, d3) -> (d0, d1, d2, d3)>,
                       affine_map<(d0, d1, d2, d3) -> (d0, d1, d2, d3)>,
                       affine_map<(d0, d1, d2, d3) -> ()>],
      iterator_types = ["reduction", "reduction", "reduction", "reduction"]}
      ins(%a, %b : tensor<2x4x3x16xf32>, tensor<2x4x3x16xf32>) outs(%acc : tensor<f32>) {
  ^bb0(%x: f32, %y: f32, %r: f32):
    %d = arith.subf %x, %y : f32
    %ad = math.absf %d : f32
    %mx = arith.maximumf %r, %ad : f32
    linalg.yield %mx : f32
  } -> tensor<f32>
  %err = tensor.extract %m[] : tensor<f32>
  %ok = arith.cmpf ole, %err, %tol : f32
  %oki = arith.extui %ok : i1 to i32
  %t = tensor.from_elements %oki : tensor<1xi32>
  %u = tensor.cast %t : tensor<1xi32> to tensor<*xi32>
  call @printMemrefI32(%u) : (tensor<*xi32>) -> ()
  return
}

func.func @data() -> tensor<2x4x3x16xf32> {
  %init = tensor.empty() : tensor<2x4x3x16xf32>
  %x = linalg.generic {
      indexing_maps = [affine_map<(d0, d1, d2, d3) -> (d0, d1, d2, d3)>],
      iterator_types = ["parallel", "parallel", "parallel", "parallel"]}
      outs(%init : tensor<2x4x3x16xf32>) {
  ^bb0(%o: f32):
    %i0 = linalg.index 0 : index
    %i1 = linalg.index 1 : index
    %i2 = linalg.index 2 : index
    %i3 = linalg.index 3 : index
    %s01 = arith.addi %i0, %i1 : index
    %s012 = arith.muli %s01, %i2 : index
    %s = arith.addi %s012, %i3 : index
    %si = arith.index_cast %s : index to i64
    %sf = arith.sitofp %si : i64 to f32
    %c = arith.constant 0.37 : f32
    %v = arith.mulf %sf, %c : f32
    %r = math.sin %v : f32
    linalg.yield %r : f32
  } -> tensor<2x4x3x16xf32>
  return %x : tensor<2x4x3x16xf32>
}

func.func @main() {
  %x = call @data() : () -> tensor<2x4x3x16xf32>
  %p = arith.constant dense<[0, 5, 1048576, 16777215]> : tensor<4xi32>
  %n = arith.constant dense<[0, -5, -1048576, -16777215]> : tensor<4xi32>
  %tol = arith.constant 1.0e-5 : f32

  // CHECK: data =
  // CHECK-NEXT: [1]
  %y0 = posenc.rope %x, %p layout half : tensor<2x4x3x16xf32>, tensor<4xi32>
  %z0 = posenc.rope %y0, %n layout half : tensor<2x4x3x16xf32>, tensor<4xi32>
  call @within(%x, %z0, %tol) : (tensor<2x4x3x16xf32>, tensor<2x4x3x16xf32>, f32) -> ()

  // CHECK: data =
  // CHECK-NEXT: [1]
  %y1 = posenc.rope %x, %p layout interleaved {rotary_dim = 10 : i64, base = 500000.0 : f64, scaling = #posenc.rope_scaling<llama3, factor = 8.0, low_freq_factor = 1.0, high_freq_factor = 4.0, original = 64>} : tensor<2x4x3x16xf32>, tensor<4xi32>
  %z1 = posenc.rope %y1, %n layout interleaved {rotary_dim = 10 : i64, base = 500000.0 : f64, scaling = #posenc.rope_scaling<llama3, factor = 8.0, low_freq_factor = 1.0, high_freq_factor = 4.0, original = 64>} : tensor<2x4x3x16xf32>, tensor<4xi32>
  call @within(%x, %z1, %tol) : (tensor<2x4x3x16xf32>, tensor<2x4x3x16xf32>, f32) -> ()

  // A non-inverse must fail the same check (the check can fail).
  // CHECK: data =
  // CHECK-NEXT: [0]
  call @within(%x, %y0, %tol) : (tensor<2x4x3x16xf32>, tensor<2x4x3x16xf32>, f32) -> ()
  return
}

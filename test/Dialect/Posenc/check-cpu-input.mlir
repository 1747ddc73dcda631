// RUN: posenc-opt %s -split-input-file -allow-unregistered-dialect -posenc-check-cpu-input -verify-diagnostics | FileCheck %s
// RUN: posenc-opt %s -split-input-file -allow-unregistered-dialect -posenc-lower-to-cpu -verify-diagnostics -o /dev/null

// Everything posenc-lower-to-cpu lowers passes through unchanged.
// CHECK-LABEL: func @lowerable
// CHECK: posenc.rope
// CHECK: linalg.generic
// CHECK: math.exp
func.func @lowerable(%x: tensor<1x4x2x8xf32>, %p: tensor<4xi32>) -> tensor<1x4x2x8xf32> {
  %y = posenc.rope %x, %p layout half : tensor<1x4x2x8xf32>, tensor<4xi32>
  %e = tensor.empty() : tensor<1x4x2x8xf32>
  %z = linalg.generic {indexing_maps = [affine_map<(a, b, c, d) -> (a, b, c, d)>, affine_map<(a, b, c, d) -> (a, b, c, d)>], iterator_types = ["parallel", "parallel", "parallel", "parallel"]} ins(%y : tensor<1x4x2x8xf32>) outs(%e : tensor<1x4x2x8xf32>) {
  ^bb0(%in: f32, %out: f32):
    %v = math.exp %in : f32
    linalg.yield %v : f32
  } -> tensor<1x4x2x8xf32>
  return %z : tensor<1x4x2x8xf32>
}

// -----

func.func @tosa(%x: tensor<4xf32>) -> tensor<4xf32> {
  // expected-error@+2 {{'tosa.abs' op cannot be lowered by posenc-lower-to-cpu: lower the 'tosa' dialect to linalg, tensor, arith and math first}}
  // expected-note@+1 {{posenc-lower-to-cpu lowers the builtin, func, arith, math}}
  %y = tosa.abs %x : (tensor<4xf32>) -> tensor<4xf32>
  return %y : tensor<4xf32>
}

// -----

// The outermost foreign op is named, even when it is dead.
func.func @async(%x: tensor<4xf32>) -> tensor<4xf32> {
  // expected-error@+2 {{'async.execute' op cannot be lowered by posenc-lower-to-cpu}}
  // expected-note@+1 {{posenc-lower-to-cpu lowers}}
  %t = async.execute { async.yield }
  return %x : tensor<4xf32>
}

// -----

func.func @unregistered(%x: tensor<4xf32>) -> tensor<4xf32> {
  // expected-error@+2 {{'mydialect.op' op cannot be lowered by posenc-lower-to-cpu (unregistered dialect 'mydialect')}}
  // expected-note@+1 {{posenc-lower-to-cpu lowers}}
  %y = "mydialect.op"(%x) : (tensor<4xf32>) -> tensor<4xf32>
  return %y : tensor<4xf32>
}

// -----

// Reassociation indices past 2^32 pass upstream's verifier (checked as
// 32-bit dims) and crashed the reshape folders (found by posenc-fuzz).
func.func @reassociation_out_of_range(%x: tensor<3x24xf32>) -> tensor<1x3x2x12xf32> {
  // expected-error@+1 {{reassociation index 4294967296 is outside the expanded rank 4}}
  %y = tensor.expand_shape %x [[4294967296, 1], [2, 3]] output_shape [1, 3, 2, 12] : tensor<3x24xf32> into tensor<1x3x2x12xf32>
  return %y : tensor<1x3x2x12xf32>
}

// -----

// A constant dim index outside the rank verifies upstream (it is a run-time
// index) but crashed tensor.dim's folders (found by posenc-fuzz).
func.func @dim_index_out_of_range(%q: tensor<1x8x2x?xf32>) -> index {
  %c = arith.constant -1 : index
  // expected-error@+1 {{dim index -1 is outside the rank 4 of its operand}}
  %d = tensor.dim %q, %c : tensor<1x8x2x?xf32>
  return %d : index
}

// -----

// A nested module: the pipeline lowers the top-level module's functions
// only, so the nested one would be left half lowered.
module {
  // expected-error@+1 {{'builtin.module' op is nested in the module posenc-lower-to-cpu lowers}}
  module @inner {
    func.func @nested(%x: tensor<1x4x2x8xf32>, %p: tensor<4xi32>) -> tensor<1x4x2x8xf32> {
      %y = posenc.rope %x, %p layout half : tensor<1x4x2x8xf32>, tensor<4xi32>
      return %y : tensor<1x4x2x8xf32>
    }
  }
}

// -----

// A tensor built inside a linalg body (bufferization would silently give
// it no buffer); reading a tensor from above with tensor.extract is fine.
#id = affine_map<(d0) -> (d0)>
func.func @tensor_in_linalg_body(%s: tensor<4xi64>, %p: tensor<8xi64>) -> tensor<4xi64> {
  %r = linalg.generic {indexing_maps = [#id], iterator_types = ["parallel"]} outs(%s : tensor<4xi64>) {
  ^bb0(%o: i64):
    %j = linalg.index 0 : index
    %a = tensor.extract %p[%j] : tensor<8xi64>
    // expected-error @+1 {{'tensor.empty' op builds a tensor inside the body of a linalg op}}
    %in = tensor.empty() : tensor<3xi64>
    %g = linalg.generic {indexing_maps = [#id], iterator_types = ["parallel"]} outs(%in : tensor<3xi64>) {
    ^bb1(%z: i64):
      linalg.yield %a : i64
    } -> tensor<3xi64>
    %c2 = arith.constant 2 : index
    %gv = tensor.extract %g[%c2] : tensor<3xi64>
    linalg.yield %gv : i64
  } -> tensor<4xi64>
  return %r : tensor<4xi64>
}

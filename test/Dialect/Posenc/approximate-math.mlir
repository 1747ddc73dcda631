// RUN: posenc-opt %s -posenc-approximate-math | FileCheck %s

// f32 exp (scalar and vector) becomes arithmetic the backend vectorizes;
// f64 exp and f32 cos keep their exact lowerings.
// CHECK-LABEL: func @exps
// CHECK-NOT: math.exp %{{.+}} : f32
// CHECK-NOT: math.exp %{{.+}} : vector<8xf32>
// CHECK: math.exp %{{.+}} : f64
// CHECK: math.cos %{{.+}} : f32
func.func @exps(%a: f32, %v: vector<8xf32>, %d: f64) -> (f32, vector<8xf32>, f64, f32) {
  %0 = math.exp %a : f32
  %1 = math.exp %v : vector<8xf32>
  %2 = math.exp %d : f64
  %3 = math.cos %a : f32
  return %0, %1, %2, %3 : f32, vector<8xf32>, f64, f32
}

// An f64 angle whose sin/cos is rounded to f32: reduced in f64 by
// k = roundeven(θ·2/π) and a two-part π/2, clamped to [-1, 1] (angles past
// 2^51 stay a bounded sin/cos pair), then f32 polynomials.
// CHECK-LABEL: func @narrowed_trig
// CHECK-NOT: math.sin
// CHECK-NOT: math.cos
// CHECK: %[[K:.+]] = math.roundeven %{{.+}} : f64
// CHECK: %[[R1:.+]] = math.fma %[[K]], %{{.+}}, %{{.+}} : f64
// CHECK: %[[R2:.+]] = math.fma %[[K]], %{{.+}}, %[[R1]] : f64
// CHECK: %[[LO:.+]] = arith.minimumf %[[R2]], %{{.+}} : f64
// CHECK: %[[R:.+]] = arith.maximumf %[[LO]], %{{.+}} : f64
// CHECK: arith.truncf %[[R]] : f64 to f32
// CHECK: math.floor
// CHECK: arith.select
// CHECK: arith.negf %{{.+}} : f32
// CHECK: arith.bitcast %{{.+}} : f32 to i32
// CHECK: arith.bitcast %{{.+}} : i16 to bf16
// CHECK: return
func.func @narrowed_trig(%t: f64) -> (f32, bf16) {
  %s = math.sin %t : f64
  %c = math.cos %t : f64
  %s32 = arith.truncf %s : f64 to f32
  %c16 = arith.truncf %c : f64 to bf16
  return %s32, %c16 : f32, bf16
}

// f32 -> bf16 rounds to nearest even in i32 arithmetic: bits + 0x7fff +
// lsb, with exponent and quiet bit OR-ed in for NaNs (vectorizes; a select
// of the 16-bit result does not).
// CHECK-LABEL: func @truncf_bf16
// CHECK-NOT: arith.truncf
// CHECK: %[[B:.+]] = arith.bitcast %{{.+}} : vector<8xf32> to vector<8xi32>
// CHECK: %[[LSB:.+]] = arith.andi %{{.+}}, %{{.+}} : vector<8xi32>
// CHECK: %[[R:.+]] = arith.addi %[[B]], %{{.+}} : vector<8xi32>
// CHECK: %[[NAN:.+]] = arith.cmpi ugt, %{{.+}}, %{{.+}} : vector<8xi32>
// CHECK: %[[Q:.+]] = arith.select %[[NAN]], %{{.+}}, %{{.+}} : vector<8xi1>, vector<8xi32>
// CHECK: %[[OR:.+]] = arith.ori %[[R]], %[[Q]] : vector<8xi32>
// CHECK: %[[HI:.+]] = arith.shrui %[[OR]], %{{.+}} : vector<8xi32>
// CHECK: %[[T:.+]] = arith.trunci %[[HI]] : vector<8xi32> to vector<8xi16>
// CHECK: arith.bitcast %[[T]] : vector<8xi16> to vector<8xbf16>
func.func @truncf_bf16(%x: vector<8xf32>) -> vector<8xbf16> {
  %y = arith.truncf %x : vector<8xf32> to vector<8xbf16>
  return %y : vector<8xbf16>
}

// Vectors take the same path with splat constants.
// CHECK-LABEL: func @narrowed_trig_vector
// CHECK-NOT: math.cos
// CHECK: math.roundeven %{{.+}} : vector<4xf64>
// CHECK: arith.truncf %{{.+}} : vector<4xf64> to vector<4xf32>
func.func @narrowed_trig_vector(%t: vector<4xf64>) -> vector<4xf32> {
  %c = math.cos %t : vector<4xf64>
  %c32 = arith.truncf %c : vector<4xf64> to vector<4xf32>
  return %c32 : vector<4xf32>
}

// A sin/cos kept in f64, or of an f32 angle, stays a libm call.
// CHECK-LABEL: func @negative_wide_trig
// CHECK: math.sin %{{.+}} : f64
// CHECK: math.cos %{{.+}} : f32
func.func @negative_wide_trig(%t: f64, %u: f32) -> (f64, f32) {
  %s = math.sin %t : f64
  %c = math.cos %u : f32
  return %s, %c : f64, f32
}

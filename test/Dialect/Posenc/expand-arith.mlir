// RUN: posenc-opt %s -posenc-expand-arith | FileCheck %s

// Division rounding and bf16 conversions are expanded like arith-expand;
// min/max stay single ops (LLVM intrinsics later, which vectorize as
// reductions).
// CHECK-LABEL: func @expand
// CHECK-NOT: arith.ceildivsi
// CHECK-NOT: arith.floordivsi
// CHECK-NOT: arith.truncf
// CHECK-NOT: arith.extf
// CHECK: arith.maxnumf
// CHECK: arith.maximumf
// CHECK: arith.minnumf
// CHECK: arith.minimumf
func.func @expand(%i: i64, %j: i64, %x: f32, %y: f32, %h: bf16) -> (i64, i64, bf16, f32, f32, f32, f32, f32) {
  %0 = arith.ceildivsi %i, %j : i64
  %1 = arith.floordivsi %i, %j : i64
  %2 = arith.truncf %x : f32 to bf16
  %3 = arith.extf %h : bf16 to f32
  %4 = arith.maxnumf %x, %y : f32
  %5 = arith.maximumf %x, %y : f32
  %6 = arith.minnumf %x, %y : f32
  %7 = arith.minimumf %x, %y : f32
  return %0, %1, %2, %3, %4, %5, %6, %7 : i64, i64, bf16, f32, f32, f32, f32, f32
}

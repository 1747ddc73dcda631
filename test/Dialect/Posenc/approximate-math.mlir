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

// RUN: posenc-opt %s --pass-pipeline='builtin.module(func.func(tosa-to-linalg-named,tosa-to-linalg,tosa-to-arith,tosa-to-tensor),posenc-raise)' | FileCheck %s

// Attention as TOSA writes it (TFLite and ONNX converters): upstream's
// tosa-to-linalg gives keep-dim reductions (linalg.reduce then
// tensor.expand_shape) and a reciprocal-multiply softmax, which
// posenc-raise takes; test_raise.py::test_raise_tosa runs it.
// CHECK-LABEL: func @tosa_attention
// CHECK: posenc.attention %{{.+}}, %{{.+}}, %{{.+}} outs(%{{.+}}) {scale = 0.35355338454246521 : f64} : tensor<2x5x1x8xf32>, tensor<2x7x1x8xf32>, tensor<2x7x1x6xf32>, tensor<2x5x1x6xf32>
// CHECK-NOT: linalg.reduce
// CHECK-NOT: linalg.batch_matmul
func.func @tosa_attention(%q: tensor<2x5x8xf32>, %k: tensor<2x7x8xf32>, %v: tensor<2x7x6xf32>) -> tensor<2x5x6xf32> {
  %zp = "tosa.const"() <{values = dense<0.0> : tensor<1xf32>}> : () -> tensor<1xf32>
  %perm_kt = tosa.transpose %k {perms = array<i32: 0, 2, 1>} : (tensor<2x7x8xf32>) -> tensor<2x8x7xf32>
  %s = tosa.matmul %q, %perm_kt, %zp, %zp : (tensor<2x5x8xf32>, tensor<2x8x7xf32>, tensor<1xf32>, tensor<1xf32>) -> tensor<2x5x7xf32>
  %c = "tosa.const"() <{values = dense<0.35355339> : tensor<1x1x1xf32>}> : () -> tensor<1x1x1xf32>
  %shift = "tosa.const"() <{values = dense<0> : tensor<1xi8>}> : () -> tensor<1xi8>
  %ss = tosa.mul %s, %c, %shift : (tensor<2x5x7xf32>, tensor<1x1x1xf32>, tensor<1xi8>) -> tensor<2x5x7xf32>
  %m = tosa.reduce_max %ss {axis = 2 : i32} : (tensor<2x5x7xf32>) -> tensor<2x5x1xf32>
  %d = tosa.sub %ss, %m : (tensor<2x5x7xf32>, tensor<2x5x1xf32>) -> tensor<2x5x7xf32>
  %e = tosa.exp %d : (tensor<2x5x7xf32>) -> tensor<2x5x7xf32>
  %z = tosa.reduce_sum %e {axis = 2 : i32} : (tensor<2x5x7xf32>) -> tensor<2x5x1xf32>
  %r = tosa.reciprocal %z : (tensor<2x5x1xf32>) -> tensor<2x5x1xf32>
  %p = tosa.mul %e, %r, %shift : (tensor<2x5x7xf32>, tensor<2x5x1xf32>, tensor<1xi8>) -> tensor<2x5x7xf32>
  %o = tosa.matmul %p, %v, %zp, %zp : (tensor<2x5x7xf32>, tensor<2x7x6xf32>, tensor<1xf32>, tensor<1xf32>) -> tensor<2x5x6xf32>
  return %o : tensor<2x5x6xf32>
}

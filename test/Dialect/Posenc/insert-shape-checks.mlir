// RUN: posenc-opt %s -split-input-file -posenc-insert-shape-checks | FileCheck %s

// Static shapes were checked by the verifier: nothing to do at run time.
// CHECK-LABEL: func @static
// CHECK-NOT: cf.assert
// CHECK: posenc.rope
func.func @static(%x: tensor<1x4x2x8xf32>, %p: tensor<4xi32>) -> tensor<1x4x2x8xf32> {
  %y = posenc.rope %x, %p layout half : tensor<1x4x2x8xf32>, tensor<4xi32>
  return %y : tensor<1x4x2x8xf32>
}

// -----

// Each relation with a dynamic side becomes one assert before the op, with
// the op's location and the relation in the message.
// CHECK-LABEL: func @rope
// CHECK-SAME: (%[[X:.+]]: tensor<?x?x2x?xf32>, %[[P:.+]]: tensor<?x?xi32>)
// CHECK-DAG: %[[XS:.+]] = tensor.dim %[[X]], %c1{{(_[0-9]+)?}}
// CHECK-DAG: %[[PS:.+]] = tensor.dim %[[P]], %c1{{(_[0-9]+)?}}
// CHECK: %[[EQ:.+]] = arith.cmpi eq, %[[PS]], %[[XS]]
// CHECK: cf.assert %[[EQ]], "{{.*}}insert-shape-checks.mlir:{{[0-9]+}}:8: 'posenc.rope' op sequence length of pos must equal sequence length of x (checked at run time)"
// CHECK: cf.assert %{{.+}}, "{{.*}}'posenc.rope' op batch size of pos must equal batch size of x
// CHECK: %[[D:.+]] = tensor.dim %[[X]], %c3{{(_[0-9]+)?}}
// CHECK: %[[GE:.+]] = arith.cmpi sge, %[[D]], %c16{{(_[0-9]+)?}}
// CHECK: cf.assert %[[GE]], "{{.*}}'posenc.rope' op head dim of x must be at least 16
// CHECK-NOT: cf.assert
// CHECK: posenc.rope
func.func @rope(%x: tensor<?x?x2x?xf32>, %p: tensor<?x?xi32>) -> tensor<?x?x2x?xf32> {
  %y = posenc.rope %x, %p layout half {rotary_dim = 16 : i64} : tensor<?x?x2x?xf32>, tensor<?x?xi32>
  return %y : tensor<?x?x2x?xf32>
}

// -----

// A dynamic side is compared with the static one; dims of the result are
// built from the operands and need no check.
// CHECK-LABEL: func @t5
// CHECK: %[[ROWS:.+]] = tensor.dim %{{.+}}, %c0{{(_[0-9]+)?}} : tensor<?x4xf32>
// CHECK: arith.cmpi eq, %[[ROWS]], %c32{{(_[0-9]+)?}}
// CHECK: cf.assert %{{.+}}, "{{.*}}'posenc.rel_bias' op number of rows of table must equal 32 (checked at run time)"
// CHECK: %[[QL:.+]] = tensor.dim %{{.+}}, %c0{{(_[0-9]+)?}} : tensor<?xi32>
// CHECK: arith.cmpi eq, %[[QL]], %c8{{(_[0-9]+)?}}
// CHECK: cf.assert %{{.+}}, "{{.*}}query length of q_pos must equal query length of result (8)
// CHECK-NOT: cf.assert
// CHECK: posenc.rel_bias
func.func @t5(%t: tensor<?x4xf32>, %q: tensor<?xi32>, %k: tensor<?xi32>) -> tensor<4x8x?xf32> {
  %b = posenc.rel_bias %t, %q, %k kind t5 {num_buckets = 32 : i64, max_distance = 128 : i64} : tensor<?x4xf32>, tensor<?xi32>, tensor<?xi32> -> tensor<4x8x?xf32>
  return %b : tensor<4x8x?xf32>
}

// -----

// GQA with dynamic heads: query heads must be a positive multiple of kv
// heads; a dynamic bias dim must equal the dim it stands for.
// CHECK-LABEL: func @attention
// CHECK: cf.assert %{{.+}}, "{{.*}}'posenc.attention' op key length of v must equal key length of k
// CHECK: cf.assert %{{.+}}, "{{.*}}number of query heads of init must equal number of query heads of q
// CHECK: %[[HQ:.+]] = tensor.dim %{{.+}}, %c2{{(_[0-9]+)?}} : tensor<1x8x?x16xf32>
// CHECK: %[[HK:.+]] = tensor.dim %{{.+}}, %c2{{(_[0-9]+)?}} : tensor<1x?x?x16xf32>
// CHECK: arith.cmpi sgt, %[[HK]], %c0{{(_[0-9]+)?}}
// CHECK: arith.remsi %[[HQ]]
// CHECK: cf.assert %{{.+}}, "{{.*}}number of heads of q must be a multiple of number of heads of k
// CHECK: cf.assert %{{.+}}, "{{.*}}Sk of k must equal Sk of bias
// CHECK: posenc.attention
func.func @attention(%q: tensor<1x8x?x16xf32>, %k: tensor<1x?x?x16xf32>, %v: tensor<1x?x?x16xf32>, %b: tensor<1x8x?xf32>) -> tensor<1x8x?x16xf32> {
  %init_o_c2 = arith.constant 2 : index
  %init_o_d2 = tensor.dim %q, %init_o_c2 : tensor<1x8x?x16xf32>
  %init_o = tensor.empty(%init_o_d2) : tensor<1x8x?x16xf32>
  %o = posenc.attention %q, %k, %v bias(%b : tensor<1x8x?xf32>) outs(%init_o) : tensor<1x8x?x16xf32>, tensor<1x?x?x16xf32>, tensor<1x?x?x16xf32>, tensor<1x8x?x16xf32>
  return %o : tensor<1x8x?x16xf32>
}

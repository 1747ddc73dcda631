// RUN: posenc-opt %s --posenc-expand-shape-to-reinterpret-cast --split-input-file | FileCheck %s
// Through the whole CPU pipeline (upstream expand-strided-metadata alone
// crashes on the first function).
// RUN: posenc-opt %s --posenc-lower-to-cpu --split-input-file | FileCheck %s --check-prefix=CPU

// Two dynamic sizes in one group: strides are the suffix products of the
// output_shape within the group, times the source's stride.
// CHECK-LABEL: func.func @two_dynamic
//  CHECK-SAME: (%[[M:.+]]: memref<?x8xf32>, %[[A:.+]]: index, %[[B:.+]]: index)
//       CHECK: %[[BASE:.+]], %[[OFF:.+]], %[[SZ:.+]]:2, %[[ST:.+]]:2 = memref.extract_strided_metadata %[[M]]
//       CHECK: %[[S0:.+]] = arith.muli %[[B]], %[[C8:.+]] : index
//       CHECK: memref.reinterpret_cast %[[BASE]] to offset: [0], sizes: [%[[A]], %[[B]], 1, 8], strides: [%[[S0]], 8, 8, 1]
//   CHECK-NOT: memref.expand_shape
// CPU-LABEL: llvm.func @two_dynamic
func.func @two_dynamic(%m: memref<?x8xf32>, %a: index, %b: index) -> memref<?x?x1x8xf32> {
  %e = memref.expand_shape %m [[0, 1], [2, 3]] output_shape [%a, %b, 1, 8] : memref<?x8xf32> into memref<?x?x1x8xf32>
  return %e : memref<?x?x1x8xf32>
}

// -----

// A strided source: the innermost expanded dim keeps its dynamic stride.
// CHECK-LABEL: func.func @strided_source
//       CHECK: %[[BASE:.+]], %[[OFF:.+]], %[[SZ:.+]]:2, %[[ST:.+]]:2 = memref.extract_strided_metadata
//       CHECK: %[[S1:.+]] = arith.muli %[[ST]]#0, %{{.+}} : index
//       CHECK: %[[S0:.+]] = arith.muli %[[S1]], %{{.+}} : index
//       CHECK: memref.reinterpret_cast %[[BASE]] to offset: [%[[OFF]]], sizes: [%{{.+}}, %{{.+}}, %{{.+}}, 4], strides: [%[[S0]], %[[S1]], %[[ST]]#0, %[[ST]]#1]
// CPU-LABEL: llvm.func @strided_source
func.func @strided_source(%m: memref<?x4xf32, strided<[?, ?], offset: ?>>, %a: index, %b: index, %c: index) -> memref<?x?x?x4xf32, strided<[?, ?, ?, ?], offset: ?>> {
  %e = memref.expand_shape %m [[0, 1, 2], [3]] output_shape [%a, %b, %c, 4] : memref<?x4xf32, strided<[?, ?], offset: ?>> into memref<?x?x?x4xf32, strided<[?, ?, ?, ?], offset: ?>>
  return %e : memref<?x?x?x4xf32, strided<[?, ?, ?, ?], offset: ?>>
}

// -----

// One dynamic size per group: left to upstream.
// CHECK-LABEL: func.func @one_dynamic
//       CHECK: memref.expand_shape
//   CHECK-NOT: memref.reinterpret_cast
func.func @one_dynamic(%m: memref<?x8xf32>, %a: index) -> memref<?x2x4xf32> {
  %e = memref.expand_shape %m [[0], [1, 2]] output_shape [%a, 2, 4] : memref<?x8xf32> into memref<?x2x4xf32>
  return %e : memref<?x2x4xf32>
}

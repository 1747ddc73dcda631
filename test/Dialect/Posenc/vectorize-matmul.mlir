// RUN: posenc-opt %s -posenc-vectorize-matmul="vector-width=8" -canonicalize -split-input-file | FileCheck %s
// RUN: posenc-opt %s -posenc-vectorize-matmul="rows=2 vectors=1 vector-width=4" -canonicalize -split-input-file | FileCheck %s --check-prefix=SMALL
// RUN: not posenc-opt %s -posenc-vectorize-matmul="rows=0" 2>&1 | FileCheck %s --check-prefix=BAD

// BAD: posenc-vectorize-matmul needs sizes rows and vectors in [1, 64] and vector-width in [0, 1024] (0: the host{{.*}}), got rows=0 vectors=2 vector-width=0

// An exact fit: 4 x 16 blocks of C stay in 8 vector registers over the
// whole reduction (one load of each B vector and one broadcast of A per
// row and k); no edge code is left.
// CHECK-LABEL: func @exact
// CHECK: scf.for %[[I:.+]] = %c0 to %c8 step %c4
// CHECK: scf.for %[[J:.+]] = %c0 to %c32 step %c16
// CHECK-COUNT-8: vector.load %arg2
// CHECK: scf.for %[[K:.+]] = %c0 to %c5 step %c1 iter_args({{.*}}) -> (vector<8xf32>, vector<8xf32>, vector<8xf32>, vector<8xf32>, vector<8xf32>, vector<8xf32>, vector<8xf32>, vector<8xf32>)
// CHECK: vector.load %arg1[%[[K]], %[[J]]]
// CHECK: vector.load %arg1[%[[K]], %{{.+}}]
// CHECK: memref.load %arg0[%[[I]], %[[K]]]
// CHECK: vector.broadcast
// CHECK-COUNT-2: vector.fma
// CHECK: memref.load %arg0
// CHECK: vector.broadcast
// CHECK-COUNT-2: vector.fma
// CHECK: scf.yield
// CHECK-COUNT-8: vector.store {{.*}}, %arg2
// CHECK-NOT: linalg.matmul
// CHECK: return
// SMALL-LABEL: func @exact
// SMALL: scf.for %{{.+}} = %c0 to %c8 step %c2
// SMALL: scf.for %{{.+}} = %c0 to %c32 step %c4
// SMALL: scf.for {{.*}} -> (vector<4xf32>, vector<4xf32>)
func.func @exact(%a: memref<8x5xf32>, %b: memref<5x32xf32>, %c: memref<8x32xf32>) {
  linalg.matmul ins(%a, %b : memref<8x5xf32>, memref<5x32xf32>) outs(%c : memref<8x32xf32>)
  return
}

// -----

// Four rows of C, 136 wide (decode's P·V of a query group): blocks of
// 2 x 64 (16 accumulators, each pass over B reads 64 columns of its rows),
// then the last vector of columns in 2 x 8 blocks.
// CHECK-LABEL: func @few_rows
// CHECK: scf.for %{{.+}} = %c0 to %c4 step %c2
// CHECK: scf.for %{{.+}} = %c0 to %c128 step %c64
// CHECK: scf.for {{.*}} -> (vector<8xf32>, vector<8xf32>, vector<8xf32>, vector<8xf32>, vector<8xf32>, vector<8xf32>, vector<8xf32>, vector<8xf32>, vector<8xf32>, vector<8xf32>, vector<8xf32>, vector<8xf32>, vector<8xf32>, vector<8xf32>, vector<8xf32>, vector<8xf32>)
// CHECK-COUNT-16: vector.fma
// CHECK: scf.for {{.*}} -> (vector<8xf32>, vector<8xf32>)
// CHECK-NOT: linalg.matmul
// CHECK: return
func.func @few_rows(%a: memref<4x9xf32>, %b: memref<9x136xf32, strided<[1024, 1], offset: ?>>, %c: memref<4x136xf32>) {
  linalg.matmul ins(%a, %b : memref<4x9xf32>, memref<9x136xf32, strided<[1024, 1], offset: ?>>) outs(%c : memref<4x136xf32>)
  return
}

// -----

// 7 x 27: rows 0-3 in 4 x 16 blocks (columns 0-15), then 4 x 8 (16-23),
// then a scalar matmul for columns 24-26; rows 4-6 the same with one row
// per block.
// CHECK-LABEL: func @edges
// CHECK: scf.for {{.*}} -> (vector<8xf32>, vector<8xf32>, vector<8xf32>, vector<8xf32>, vector<8xf32>, vector<8xf32>, vector<8xf32>, vector<8xf32>)
// CHECK: scf.for {{.*}} -> (vector<8xf32>, vector<8xf32>, vector<8xf32>, vector<8xf32>)
// CHECK: linalg.matmul ins(%{{.+}}, %{{.+}} : memref<4x5xf32, strided<[5, 1]>>, memref<5x3xf32, strided<[27, 1], offset: 24>>) outs(%{{.+}} : memref<4x3xf32, strided<[27, 1], offset: 24>>)
// CHECK: scf.for %{{.+}} = %c4 to %c7 step %c1
// CHECK: scf.for {{.*}} -> (vector<8xf32>, vector<8xf32>)
// CHECK: scf.for %{{.+}} = %c4 to %c7 step %c1
// CHECK: scf.for {{.*}} -> (vector<8xf32>)
// CHECK: linalg.matmul ins(%{{.+}}, %{{.+}} : memref<3x5xf32, strided<[5, 1], offset: 20>>, memref<5x3xf32, strided<[27, 1], offset: 24>>) outs(%{{.+}} : memref<3x3xf32, strided<[27, 1], offset: 132>>)
func.func @edges(%a: memref<7x5xf32>, %b: memref<5x27xf32>, %c: memref<7x27xf32>) {
  linalg.matmul ins(%a, %b : memref<7x5xf32>, memref<5x27xf32>) outs(%c : memref<7x27xf32>)
  return
}

// -----

// Dynamic sizes: block ends computed at run time (M - M mod 4, ...); A may
// be any strided view (its elements are loaded one by one).
// CHECK-LABEL: func @dynamic
// CHECK: %[[M:.+]] = memref.dim %arg2, %c0
// CHECK: %[[N:.+]] = memref.dim %arg2, %c1
// CHECK: %[[R:.+]] = arith.remui %[[M]], %c4
// CHECK: %[[MEND:.+]] = arith.subi %[[M]], %[[R]]
// CHECK: scf.for %{{.+}} = %c0 to %[[MEND]] step %c4
// CHECK: vector.fma
// CHECK: linalg.matmul
// CHECK: scf.for %{{.+}} = %[[MEND]] to %[[M]] step %c1
func.func @dynamic(%a: memref<?x?xf32, strided<[?, ?], offset: ?>>, %b: memref<?x?xf32>, %c: memref<?x?xf32>) {
  linalg.matmul ins(%a, %b : memref<?x?xf32, strided<[?, ?], offset: ?>>, memref<?x?xf32>) outs(%c : memref<?x?xf32>)
  return
}

// -----

// Left alone: tensors, other element types, B or C rows not contiguous,
// and matmuls with user-defined (transposing) maps.
// CHECK-LABEL: func @negative_
// CHECK-NOT: vector.
// CHECK-COUNT-5: linalg.matmul
// CHECK-NOT: vector.
func.func @negative_(%t: tensor<4x4xf32>, %h: memref<4x4xf16>, %hc: memref<4x4xf32>,
                     %s: memref<4x4xf32, strided<[1, 4]>>, %a: memref<4x4xf32>, %c: memref<4x4xf32>) -> tensor<4x4xf32> {
  %r = linalg.matmul ins(%t, %t : tensor<4x4xf32>, tensor<4x4xf32>) outs(%t : tensor<4x4xf32>) -> tensor<4x4xf32>
  linalg.matmul ins(%h, %h : memref<4x4xf16>, memref<4x4xf16>) outs(%hc : memref<4x4xf32>)
  linalg.matmul ins(%a, %s : memref<4x4xf32>, memref<4x4xf32, strided<[1, 4]>>) outs(%c : memref<4x4xf32>)
  linalg.matmul ins(%a, %a : memref<4x4xf32>, memref<4x4xf32>) outs(%s : memref<4x4xf32, strided<[1, 4]>>)
  linalg.matmul indexing_maps = [affine_map<(m, n, k) -> (k, m)>, affine_map<(m, n, k) -> (k, n)>, affine_map<(m, n, k) -> (m, n)>]
      ins(%a, %a : memref<4x4xf32>, memref<4x4xf32>) outs(%c : memref<4x4xf32>)
  return %r : tensor<4x4xf32>
}

// -----

// C += A·Bᵀ (B stored [N, K], a projection's [out, in] weights): blocks of
// 4 x 4 dot products whose accumulators are vectors along k, B's rows
// outermost (one row block: its loop folds away); a horizontal sum per
// element, then the scalar k tail (K = 20 = 2 vectors + 4), and the row
// and column edges.
// CHECK-LABEL: func @transposed_b
// CHECK-NOT: memref.prefetch
// CHECK: scf.for %[[J:.+]] = %c0 to %c8 step %c4
// CHECK: scf.for %[[K:.+]] = %c0 to %c16 step %c8 iter_args({{.*}}) -> (vector<8xf32>, vector<8xf32>, vector<8xf32>, vector<8xf32>, vector<8xf32>, vector<8xf32>, vector<8xf32>, vector<8xf32>, vector<8xf32>, vector<8xf32>, vector<8xf32>, vector<8xf32>, vector<8xf32>, vector<8xf32>, vector<8xf32>, vector<8xf32>)
// CHECK-COUNT-8: vector.load
// CHECK-COUNT-16: vector.fma
// CHECK: scf.yield
// CHECK-COUNT-16: vector.reduction <add>
// CHECK: scf.for %{{.+}} = %c16 to %c20 step %c1
// CHECK-COUNT-16: math.fma
// CHECK-COUNT-16: memref.store
// CHECK-NOT: linalg.matmul
// CHECK: return
// SMALL-LABEL: func @transposed_b
// SMALL: scf.for {{.*}} -> (vector<4xf32>, vector<4xf32>, vector<4xf32>, vector<4xf32>)
func.func @transposed_b(%a: memref<5x20xf32>, %b: memref<9x20xf32>, %c: memref<5x9xf32>) {
  linalg.matmul indexing_maps = [affine_map<(m, n, k) -> (m, k)>, affine_map<(m, n, k) -> (n, k)>, affine_map<(m, n, k) -> (m, n)>]
      ins(%a, %b : memref<5x20xf32>, memref<9x20xf32>) outs(%c : memref<5x9xf32>)
  return
}

// -----

// Rows of B a stride apart with a gap after each (one kv head's keys of a
// bf16 cache): each block of B rows first prefetches the rows 16 ahead,
// clamped to the last row, one prefetch per 64-byte line (128 bf16 = 4)
// and one of the last element (the fifth line of a row that does not start
// on a line).
// CHECK-LABEL: func @strided_cache_rows
// CHECK: scf.for %[[J:.+]] = %c0 to %c32 step %c4
// CHECK: %[[AHEAD:.+]] = arith.addi %[[J]], %c16
// CHECK: %[[ROW:.+]] = arith.minsi %[[AHEAD]], %c31
// CHECK: memref.prefetch %arg1[%[[ROW]], %c0], read, locality<3>, data
// CHECK: memref.prefetch %arg1[%[[ROW]], %c32], read, locality<3>, data
// CHECK: memref.prefetch %arg1[%[[ROW]], %c64], read, locality<3>, data
// CHECK: memref.prefetch %arg1[%[[ROW]], %c96], read, locality<3>, data
// CHECK: memref.prefetch %arg1[%[[ROW]], %c127], read, locality<3>, data
// CHECK-COUNT-15: memref.prefetch
// CHECK-NOT: memref.prefetch
// CHECK: scf.for
// CHECK: arith.extf %{{.+}} : vector<8xbf16> to vector<8xf32>
func.func @strided_cache_rows(%a: memref<4x128xf32>, %b: memref<32x128xbf16, strided<[1024, 1], offset: ?>>, %c: memref<4x32xf32>) {
  linalg.matmul indexing_maps = [affine_map<(m, n, k) -> (m, k)>, affine_map<(m, n, k) -> (n, k)>, affine_map<(m, n, k) -> (m, n)>]
      ins(%a, %b : memref<4x128xf32>, memref<32x128xbf16, strided<[1024, 1], offset: ?>>) outs(%c : memref<4x32xf32>)
  return
}

// -----

// Other maps (here Aᵀ·B) are left alone.
// CHECK-LABEL: func @transposed_a
// CHECK: linalg.matmul
func.func @transposed_a(%a: memref<20x5xf32>, %b: memref<20x9xf32>, %c: memref<5x9xf32>) {
  linalg.matmul indexing_maps = [affine_map<(m, n, k) -> (k, m)>, affine_map<(m, n, k) -> (k, n)>, affine_map<(m, n, k) -> (m, n)>]
      ins(%a, %b : memref<20x5xf32>, memref<20x9xf32>) outs(%c : memref<5x9xf32>)
  return
}

// -----

// One kv head's keys of a block of a [1, 64, 8, 128] cache (a view of a
// contiguous buffer): besides the rows 16 ahead (locality 3), each row j
// prefetches into L2 (locality 2) its share of the next block's stretch,
// first + j·128 with first = block start + 16·1024 + head·16·128, clamped
// to the buffer's last element, one prefetch per line.
// CHECK-LABEL: func @next_block
// CHECK: %[[FLAT:.+]] = memref.collapse_shape %arg1 {{\[\[}}0, 1, 2, 3]] : memref<1x64x8x128xbf16> into memref<65536xbf16>
// CHECK: %{{.+}}, %[[OFF:.+]], %{{.+}}:2, %{{.+}}:2 = memref.extract_strided_metadata %subview
// CHECK: %[[IN:.+]] = arith.remui %[[OFF]], %c1024
// CHECK: %[[SEG:.+]] = arith.divui %[[IN]], %c128
// CHECK: %[[SKIP:.+]] = arith.muli %[[SEG]], %c2048
// CHECK: %[[START:.+]] = arith.subi %[[OFF]], %[[IN]]
// CHECK: %[[AHEAD:.+]] = arith.addi %[[SKIP]], %c16384
// CHECK: %[[FIRST:.+]] = arith.addi %[[START]], %[[AHEAD]]
// CHECK: scf.for %[[J:.+]] = %c0 to %c16 step %c4
// CHECK-COUNT-5: memref.prefetch %subview[{{.+}}], read, locality<3>, data
// CHECK: %[[JD:.+]] = arith.muli %[[J]], %c128
// CHECK: %[[AT:.+]] = arith.addi %[[FIRST]], %[[JD]]
// CHECK: %[[I0:.+]] = arith.minsi %[[AT]], %c65535
// CHECK: memref.prefetch %[[FLAT]][%[[I0]]], read, locality<2>, data
// CHECK-COUNT-3: memref.prefetch %[[FLAT]][{{.+}}], read, locality<2>, data
// CHECK-COUNT-5: memref.prefetch %subview
// CHECK-COUNT-4: memref.prefetch %[[FLAT]]
// CHECK-COUNT-5: memref.prefetch %subview
// CHECK-COUNT-4: memref.prefetch %[[FLAT]]
// CHECK-COUNT-5: memref.prefetch %subview
// CHECK-COUNT-4: memref.prefetch %[[FLAT]]
// CHECK-NOT: memref.prefetch
// CHECK: return
func.func @next_block(%a: memref<4x128xf32>, %cache: memref<1x64x8x128xbf16>, %c: memref<4x16xf32>, %key0: index, %head: index) {
  %k = memref.subview %cache[0, %key0, %head, 0] [1, 16, 1, 128] [1, 1, 1, 1] : memref<1x64x8x128xbf16> to memref<16x128xbf16, strided<[1024, 1], offset: ?>>
  linalg.matmul indexing_maps = [affine_map<(m, n, k) -> (m, k)>, affine_map<(m, n, k) -> (n, k)>, affine_map<(m, n, k) -> (m, n)>]
      ins(%a, %k : memref<4x128xf32>, memref<16x128xbf16, strided<[1024, 1], offset: ?>>) outs(%c : memref<4x16xf32>)
  return
}

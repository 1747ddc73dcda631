// RUN: posenc-opt %s -posenc-vectorize-matmul="vector-width=16 bf16-dot=on" -canonicalize | FileCheck %s --check-prefix=DOT
// RUN: posenc-opt %s -posenc-vectorize-matmul="vector-width=16 bf16-dot=off" -canonicalize | FileCheck %s --check-prefix=FMA
// RUN: posenc-opt %s -posenc-vectorize-matmul="vector-width=8 bf16-dot=on" -canonicalize | FileCheck %s --check-prefix=FMA8
// RUN: not posenc-opt %s -posenc-vectorize-matmul="bf16-dot=yes" 2>&1 | FileCheck %s --check-prefix=BAD
// RUN: not posenc-opt %s -posenc-lower-to-cpu="bf16-dot=yes" 2>&1 | FileCheck %s --check-prefix=BADPIPE

// BAD: posenc-vectorize-matmul: bf16-dot must be host, on or off, got 'yes'
// BADPIPE: posenc-lower-to-cpu: bf16-dot = 'yes' must be host, on or off

// Decode's scores S = Q·Kᵀ of bf16 query rows and a bf16 key block read in
// place (rows 1024 elements apart). With the dot product, each step along
// k takes 32 elements of a row of Q and of K as stored, one
// x86vector.avx512.dot per accumulator (4 x 4 of them), no extension.
// DOT-LABEL: func @decode_scores
// DOT: scf.for %{{.+}} = %c0 to %c256 step %c4
// DOT: scf.for %[[K:.+]] = %c0 to %c128 step %c32 iter_args
// DOT-COUNT-4: vector.load %arg0[{{.*}}] : memref<4x128xbf16>, vector<32xbf16>
// DOT-COUNT-4: vector.load %arg1[{{.*}}] : memref<256x128xbf16, strided<[1024, 1]>>, vector<32xbf16>
// DOT-COUNT-16: x86vector.avx512.dot {{.*}} : vector<32xbf16> -> vector<16xf32>
// DOT-NOT: arith.extf
// DOT: return

// Without it, Q is extended once into a stack buffer hoisted to the
// function's start, and the FMA form extends each K vector as loaded.
// FMA-LABEL: func @decode_scores
// FMA: %[[Q32:.+]] = memref.alloca() : memref<4x128xf32>
// FMA: linalg.generic {{.*}} ins(%arg0 : memref<4x128xbf16>) outs(%[[Q32]] : memref<4x128xf32>)
// FMA: arith.extf
// FMA: scf.for %{{.+}} = %c0 to %c128 step %c16 iter_args
// FMA: vector.load %[[Q32]]{{.*}} : memref<4x128xf32>, vector<16xf32>
// FMA: arith.extf {{.*}} : vector<16xbf16> to vector<16xf32>
// FMA: vector.fma
// FMA-NOT: x86vector

// vdpbf16ps needs 16-lane vectors: other widths take the FMA form.
// FMA8-LABEL: func @decode_scores
// FMA8-NOT: x86vector
// FMA8: vector.fma {{.*}} : vector<8xf32>
func.func @decode_scores(%q: memref<4x128xbf16>, %k: memref<256x128xbf16, strided<[1024, 1]>>, %s: memref<4x256xf32>) {
  linalg.matmul indexing_maps = [affine_map<(m, n, k) -> (m, k)>, affine_map<(m, n, k) -> (n, k)>, affine_map<(m, n, k) -> (m, n)>]
    ins(%q, %k : memref<4x128xbf16>, memref<256x128xbf16, strided<[1024, 1]>>) outs(%s : memref<4x256xf32>)
  return
}

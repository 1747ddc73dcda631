// RUN: posenc-opt %s --posenc-tile-for-threads="chunks=4" -split-input-file | FileCheck %s
// RUN: not posenc-opt %s --posenc-tile-for-threads="chunks=0" -split-input-file 2>&1 | FileCheck %s --check-prefix=BAD

// The outermost non-unit parallel dim (here d1, 1024 rows) in 4 chunks:
// the operands indexed by it are sliced, the rotated partner (1 - d2)
// stays whole along d2, the maps are kept.
// CHECK-LABEL: func @pairs
// CHECK: scf.forall (%[[I:.+]]) = (0) to (1024) step (256) shared_outs(%[[OUT:.+]] = %{{.+}}) -> (tensor<1x1024x2x32xf32>)
// CHECK: %[[N:.+]] = affine.min
// CHECK: %[[X:.+]] = tensor.extract_slice %arg0[0, %[[I]], 0, 0] [1, %[[N]], 2, 32]
// CHECK: %[[P:.+]] = tensor.extract_slice %arg0[0, %[[I]], 0, 0] [1, %[[N]], 2, 32]
// CHECK: %[[C:.+]] = tensor.extract_slice %arg1[%[[I]], 0] [%[[N]], 32]
// CHECK: %[[O:.+]] = tensor.extract_slice %[[OUT]][0, %[[I]], 0, 0] [1, %[[N]], 2, 32]
// CHECK: linalg.generic {{.*}} ins(%[[X]], %[[P]], %[[C]] : {{.*}}) outs(%[[O]] : tensor<1x?x2x32xf32>)
// CHECK: scf.forall.in_parallel
// CHECK: tensor.parallel_insert_slice %{{.+}} into %[[OUT]][0, %[[I]], 0, 0] [1, %[[N]], 2, 32]
func.func @pairs(%x: tensor<1x1024x2x32xf32>, %c: tensor<1024x32xf32>) -> tensor<1x1024x2x32xf32> {
  %e = tensor.empty() : tensor<1x1024x2x32xf32>
  %y = linalg.generic {indexing_maps = [affine_map<(a, b, k, i) -> (a, b, k, i)>, affine_map<(a, b, k, i) -> (a, b, 1 - k, i)>, affine_map<(a, b, k, i) -> (b, i)>, affine_map<(a, b, k, i) -> (a, b, k, i)>], iterator_types = ["parallel", "parallel", "parallel", "parallel"]} ins(%x, %x, %c : tensor<1x1024x2x32xf32>, tensor<1x1024x2x32xf32>, tensor<1024x32xf32>) outs(%e : tensor<1x1024x2x32xf32>) {
  ^bb0(%u: f32, %w: f32, %s: f32, %o: f32):
    %m = arith.mulf %w, %s : f32
    %z = arith.addf %u, %m : f32
    linalg.yield %z : f32
  } -> tensor<1x1024x2x32xf32>
  return %y : tensor<1x1024x2x32xf32>
}

// -----

// Small results (under min-iterations), a dim read through linalg.index, and
// linalg inside loops stay as they are.
// CHECK-LABEL: func @left_alone
// CHECK-NOT: scf.forall
// BAD: posenc-tile-for-threads: chunks must be >= 1
func.func @left_alone(%s: tensor<4x4xf32>, %big: tensor<512x256xf32>) -> (tensor<4x4xf32>, tensor<512x256xf32>) {
  %e = tensor.empty() : tensor<4x4xf32>
  %t = linalg.generic {indexing_maps = [affine_map<(a, b) -> (a, b)>, affine_map<(a, b) -> (a, b)>], iterator_types = ["parallel", "parallel"]} ins(%s : tensor<4x4xf32>) outs(%e : tensor<4x4xf32>) {
  ^bb0(%i: f32, %o: f32):
    %z = arith.addf %i, %i : f32
    linalg.yield %z : f32
  } -> tensor<4x4xf32>
  %e2 = tensor.empty() : tensor<512x256xf32>
  %u = linalg.generic {indexing_maps = [affine_map<(a, b) -> (a, b)>], iterator_types = ["parallel", "parallel"]} outs(%e2 : tensor<512x256xf32>) {
  ^bb0(%o: f32):
    %i0 = linalg.index 0 : index
    %i1 = linalg.index 1 : index
    %s0 = arith.addi %i0, %i1 : index
    %c = arith.index_cast %s0 : index to i32
    %f = arith.sitofp %c : i32 to f32
    linalg.yield %f : f32
  } -> tensor<512x256xf32>
  return %t, %u : tensor<4x4xf32>, tensor<512x256xf32>
}

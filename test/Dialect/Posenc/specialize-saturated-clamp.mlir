// RUN: posenc-opt %s -posenc-specialize-saturated-clamp -split-input-file | FileCheck %s

// The fused T5 score step of a tile: keys along d0, queries along d1,
// table[h, clamp(kp[j] - qp[i], -6, 6) + 6].

// CHECK-LABEL: func.func @score_step
// CHECK-SAME: (%[[S:.*]]: tensor<?x64xf32>, %[[P:.*]]: tensor<512xi32>, %[[T:.*]]: tensor<13xf32>, %[[KO:.*]]: index, %[[QO:.*]]: index)
// The range of kp over the keys (d0), then of qp over the queries (d1).
// CHECK: %[[N:.*]] = tensor.dim %[[S]], %c0
// CHECK: %[[KR:.*]]:2 = scf.for %[[J:.*]] = %c0{{.*}} to %{{.*}} step %c1{{.*}} iter_args(%{{.*}} = %c9223372036854775807_i64, %{{.*}} = %c-9223372036854775808_i64) -> (i64, i64)
// CHECK:   %[[JJ:.*]] = arith.addi %[[J]], %[[KO]] : index
// CHECK:   tensor.extract %[[P]][%[[JJ]]]
// CHECK:   arith.minsi
// CHECK:   arith.maxsi
// CHECK: %[[QR:.*]]:2 = scf.for %[[I:.*]] = %c0{{.*}} to %{{.*}} step %c1{{.*}} iter_args
// CHECK:   %[[II:.*]] = arith.addi %[[I]], %[[QO]] : index
// CHECK:   tensor.extract %[[P]][%[[II]]]
// max kp - min qp <= -6: every score reads entry 0.
// CHECK: %[[HI:.*]] = arith.subi %[[KR]]#1, %[[QR]]#0 : i64
// CHECK: %[[LOW:.*]] = arith.cmpi sle, %[[HI]], %c-6_i64
// min kp - max qp >= 6: every score reads entry 12.
// CHECK: %[[LO:.*]] = arith.subi %[[KR]]#0, %[[QR]]#1 : i64
// CHECK: %[[HIGH:.*]] = arith.cmpi sge, %[[LO]], %c6_i64
// CHECK: %[[R:.*]] = scf.if %[[LOW]] -> (tensor<?x64xf32>) {
// CHECK:   linalg.generic
// CHECK:     %[[B0:.*]] = arith.constant -6 : i64
// CHECK:     arith.addi %[[B0]], %c6_i64
// CHECK: } else {
// CHECK:   scf.if %[[HIGH]] -> (tensor<?x64xf32>) {
// CHECK:     linalg.generic
// CHECK:       %[[B1:.*]] = arith.constant 6 : i64
// CHECK:       arith.addi %[[B1]], %c6_i64
// CHECK:   } else {
// CHECK:     %[[KEEP:.*]] = linalg.generic
// CHECK:       %[[C:.*]] = arith.maxsi %{{.*}}, %c-6_i64
// CHECK:       arith.addi %[[C]], %c6_i64
// CHECK:     scf.yield %[[KEEP]]
// CHECK: return %[[R]]
#id = affine_map<(d0, d1) -> (d0, d1)>
func.func @score_step(%s: tensor<?x64xf32>, %p: tensor<512xi32>,
                      %t: tensor<13xf32>, %ko: index, %qo: index)
    -> tensor<?x64xf32> {
  %c6 = arith.constant 6 : i64
  %cm6 = arith.constant -6 : i64
  %r = linalg.generic {indexing_maps = [#id],
                       iterator_types = ["parallel", "parallel"]}
      outs(%s : tensor<?x64xf32>) {
  ^bb0(%out: f32):
    %j = linalg.index 0 : index
    %i = linalg.index 1 : index
    %jj = arith.addi %j, %ko : index
    %ii = arith.addi %i, %qo : index
    %kp = tensor.extract %p[%jj] : tensor<512xi32>
    %qp = tensor.extract %p[%ii] : tensor<512xi32>
    %kp64 = arith.extsi %kp : i32 to i64
    %qp64 = arith.extsi %qp : i32 to i64
    %d = arith.subi %kp64, %qp64 : i64
    %d1 = arith.minsi %d, %c6 : i64
    %d2 = arith.maxsi %d1, %cm6 : i64
    %r0 = arith.addi %d2, %c6 : i64
    %x = arith.index_cast %r0 : i64 to index
    %b = tensor.extract %t[%x] : tensor<13xf32>
    %y = arith.addf %out, %b : f32
    linalg.yield %y : f32
  } -> tensor<?x64xf32>
  return %r : tensor<?x64xf32>
}

// -----

// The other nesting (max first, then min) and GQA rows (query = row / 4).

// CHECK-LABEL: func.func @max_then_min_gqa
// CHECK: scf.for
// CHECK: arith.divui
// CHECK: arith.cmpi sle, %{{.*}}, %c-3_i64
// CHECK: arith.cmpi sge, %{{.*}}, %c5_i64
// CHECK: scf.if
#id = affine_map<(d0, d1) -> (d0, d1)>
func.func @max_then_min_gqa(%s: tensor<8x16xf32>, %qp: tensor<2xi32>,
                            %kp: tensor<16xi32>, %t: tensor<9xf32>)
    -> tensor<8x16xf32> {
  %c5 = arith.constant 5 : i64
  %cm3 = arith.constant -3 : i64
  %c3 = arith.constant 3 : i64
  %c4 = arith.constant 4 : index
  %r = linalg.generic {indexing_maps = [#id],
                       iterator_types = ["parallel", "parallel"]}
      outs(%s : tensor<8x16xf32>) {
  ^bb0(%out: f32):
    %row = linalg.index 0 : index
    %j = linalg.index 1 : index
    %i = arith.divui %row, %c4 : index
    %k = tensor.extract %kp[%j] : tensor<16xi32>
    %q = tensor.extract %qp[%i] : tensor<2xi32>
    %k64 = arith.extsi %k : i32 to i64
    %q64 = arith.extsi %q : i32 to i64
    %d = arith.subi %k64, %q64 : i64
    %d1 = arith.maxsi %cm3, %d : i64
    %d2 = arith.minsi %d1, %c5 : i64
    %r0 = arith.addi %d2, %c3 : i64
    %x = arith.index_cast %r0 : i64 to index
    %b = tensor.extract %t[%x] : tensor<9xf32>
    %y = arith.addf %out, %b : f32
    linalg.yield %y : f32
  } -> tensor<8x16xf32>
  return %r : tensor<8x16xf32>
}

// -----

// Not versioned: both sides from the same dim; i64 positions (a - b may
// wrap); a bound that is not a constant; a side that reads the block's
// argument; buffers.

// CHECK-LABEL: func.func @negative
// CHECK-NOT: scf.if
// CHECK-NOT: scf.for
// CHECK: return
#id = affine_map<(d0, d1) -> (d0, d1)>
func.func @negative(%s: tensor<8x16xi64>, %p: tensor<16xi32>,
                    %p64: tensor<16xi64>, %hi: i64, %m: memref<8x16xi64>)
    -> (tensor<8x16xi64>, tensor<8x16xi64>, tensor<8x16xi64>,
        tensor<8x16xi64>) {
  %c5 = arith.constant 5 : i64
  %cm5 = arith.constant -5 : i64
  %same = linalg.generic {indexing_maps = [#id],
                          iterator_types = ["parallel", "parallel"]}
      outs(%s : tensor<8x16xi64>) {
  ^bb0(%out: i64):
    %j = linalg.index 1 : index
    %a = tensor.extract %p[%j] : tensor<16xi32>
    %b = tensor.extract %p[%j] : tensor<16xi32>
    %a64 = arith.extsi %a : i32 to i64
    %b64 = arith.extsi %b : i32 to i64
    %d = arith.subi %a64, %b64 : i64
    %d1 = arith.minsi %d, %c5 : i64
    %d2 = arith.maxsi %d1, %cm5 : i64
    linalg.yield %d2 : i64
  } -> tensor<8x16xi64>
  %wide = linalg.generic {indexing_maps = [#id],
                          iterator_types = ["parallel", "parallel"]}
      outs(%s : tensor<8x16xi64>) {
  ^bb0(%out: i64):
    %i = linalg.index 0 : index
    %j = linalg.index 1 : index
    %a = tensor.extract %p64[%j] : tensor<16xi64>
    %b = tensor.extract %p64[%i] : tensor<16xi64>
    %d = arith.subi %a, %b : i64
    %d1 = arith.minsi %d, %c5 : i64
    %d2 = arith.maxsi %d1, %cm5 : i64
    linalg.yield %d2 : i64
  } -> tensor<8x16xi64>
  %dynamic = linalg.generic {indexing_maps = [#id],
                             iterator_types = ["parallel", "parallel"]}
      outs(%s : tensor<8x16xi64>) {
  ^bb0(%out: i64):
    %i = linalg.index 0 : index
    %j = linalg.index 1 : index
    %a = tensor.extract %p[%j] : tensor<16xi32>
    %b = tensor.extract %p[%i] : tensor<16xi32>
    %a64 = arith.extsi %a : i32 to i64
    %b64 = arith.extsi %b : i32 to i64
    %d = arith.subi %a64, %b64 : i64
    %d1 = arith.minsi %d, %hi : i64
    %d2 = arith.maxsi %d1, %cm5 : i64
    linalg.yield %d2 : i64
  } -> tensor<8x16xi64>
  %reads_out = linalg.generic {indexing_maps = [#id],
                               iterator_types = ["parallel", "parallel"]}
      outs(%s : tensor<8x16xi64>) {
  ^bb0(%out: i64):
    %i = linalg.index 0 : index
    %a = tensor.extract %p[%i] : tensor<16xi32>
    %a64 = arith.extsi %a : i32 to i64
    %o32 = arith.trunci %out : i64 to i32
    %b64 = arith.extsi %o32 : i32 to i64
    %d = arith.subi %a64, %b64 : i64
    %d1 = arith.minsi %d, %c5 : i64
    %d2 = arith.maxsi %d1, %cm5 : i64
    linalg.yield %d2 : i64
  } -> tensor<8x16xi64>
  linalg.generic {indexing_maps = [#id],
                  iterator_types = ["parallel", "parallel"]}
      outs(%m : memref<8x16xi64>) {
  ^bb0(%out: i64):
    %i = linalg.index 0 : index
    %j = linalg.index 1 : index
    %a = tensor.extract %p[%j] : tensor<16xi32>
    %b = tensor.extract %p[%i] : tensor<16xi32>
    %a64 = arith.extsi %a : i32 to i64
    %b64 = arith.extsi %b : i32 to i64
    %d = arith.subi %a64, %b64 : i64
    %d1 = arith.minsi %d, %c5 : i64
    %d2 = arith.maxsi %d1, %cm5 : i64
    linalg.yield %d2 : i64
  }
  return %same, %wide, %dynamic, %reads_out
      : tensor<8x16xi64>, tensor<8x16xi64>, tensor<8x16xi64>, tensor<8x16xi64>
}

// -----

// Not versioned: a clamp of index values (no fixed width).

// CHECK-LABEL: func.func @negative_index
// CHECK-NOT: scf.if
// CHECK: return
#id = affine_map<(d0, d1) -> (d0, d1)>
func.func @negative_index(%s: tensor<8x16xf32>, %t: tensor<16xf32>)
    -> tensor<8x16xf32> {
  %c5 = arith.constant 5 : index
  %c0 = arith.constant 0 : index
  %r = linalg.generic {indexing_maps = [#id],
                       iterator_types = ["parallel", "parallel"]}
      outs(%s : tensor<8x16xf32>) {
  ^bb0(%out: f32):
    %i = linalg.index 0 : index
    %j = linalg.index 1 : index
    %d = arith.subi %j, %i : index
    %d1 = arith.minsi %d, %c5 : index
    %d2 = arith.maxsi %d1, %c0 : index
    %b = tensor.extract %t[%d2] : tensor<16xf32>
    %y = arith.addf %out, %b : f32
    linalg.yield %y : f32
  } -> tensor<8x16xf32>
  return %r : tensor<8x16xf32>
}

// Softmax rows sum to one: with v = 1 every row that sees a key outputs 1.
// Causal with Sk < Sq masks the first Sq - Sk rows entirely: they output 0,
// not NaN. And ALiBi as a bias operand equals ALiBi as score_mod arithmetic.
// Checked inside the IR; prints [1] per property that holds.
// RUN: posenc-opt %s --posenc-lower-to-cpu | %mlir_runner -e main -entry-point-result=void | FileCheck %s

func.func private @printMemrefI32(tensor<*xi32>)

func.func @report(%a: tensor<1x6x4x8xf32>, %b: tensor<1x6x4x8xf32>) {
  %zero = arith.constant 0.0 : f32
  %tol = arith.constant 1.0e-5 : f32
  %init = tensor.empty() : tensor<f32>
  %acc = linalg.fill ins(%zero : f32) outs(%init : tensor<f32>) -> tensor<f32>
  %m = linalg.generic {
      indexing_maps = [affine_map<(d0, d1, d2, d3) -> (d0, d1, d2, d3)>,
                       affine_map<(d0, d1, d2, d3) -> (d0, d1, d2, d3)>,
                       affine_map<(d0, d1, d2, d3) -> ()>],
      iterator_types = ["reduction", "reduction", "reduction", "reduction"]}
      ins(%a, %b : tensor<1x6x4x8xf32>, tensor<1x6x4x8xf32>) outs(%acc : tensor<f32>) {
  ^bb0(%x: f32, %y: f32, %r: f32):
    %d = arith.subf %x, %y : f32
    %ad = math.absf %d : f32
    // NaN anywhere makes the comparison below false.
    %mx = arith.maximumf %r, %ad : f32
    linalg.yield %mx : f32
  } -> tensor<f32>
  %err = tensor.extract %m[] : tensor<f32>
  %ok = arith.cmpf ole, %err, %tol : f32
  %oki = arith.extui %ok : i1 to i32
  %t = tensor.from_elements %oki : tensor<1xi32>
  %u = tensor.cast %t : tensor<1xi32> to tensor<*xi32>
  call @printMemrefI32(%u) : (tensor<*xi32>) -> ()
  return
}

func.func @main() {
  %q = arith.constant dense<[[[[0.1, -0.2, 0.3, 0.4, -0.5, 0.6, 0.7, -0.8]]]]> : tensor<1x1x1x8xf32>
  %qb = tensor.empty() : tensor<1x6x4x8xf32>
  %qs = linalg.generic {
      indexing_maps = [affine_map<(d0, d1, d2, d3) -> (0, 0, 0, d3)>,
                       affine_map<(d0, d1, d2, d3) -> (d0, d1, d2, d3)>],
      iterator_types = ["parallel", "parallel", "parallel", "parallel"]}
      ins(%q : tensor<1x1x1x8xf32>) outs(%qb : tensor<1x6x4x8xf32>) {
  ^bb0(%in: f32, %o: f32):
    %i = linalg.index 1 : index
    %ii = arith.index_cast %i : index to i64
    %f = arith.sitofp %ii : i64 to f32
    %v = arith.mulf %in, %f : f32
    linalg.yield %v : f32
  } -> tensor<1x6x4x8xf32>
  %k = tensor.extract_slice %qs[0, 0, 0, 0] [1, 4, 2, 8] [1, 1, 1, 1] : tensor<1x6x4x8xf32> to tensor<1x4x2x8xf32>
  %ones = arith.constant dense<1.0> : tensor<1x4x2x8xf32>

  // Rows 0 and 1 see no key (j > i + Sk - Sq = i - 2 for all j >= 0 when i < 2).
  %init_o = tensor.empty() : tensor<1x6x4x8xf32>
  %o = posenc.attention %qs, %k, %ones causal outs(%init_o) : tensor<1x6x4x8xf32>, tensor<1x4x2x8xf32>, tensor<1x4x2x8xf32>, tensor<1x6x4x8xf32>
  %eb = tensor.empty() : tensor<1x6x4x8xf32>
  %expected = linalg.generic {
      indexing_maps = [affine_map<(d0, d1, d2, d3) -> (d0, d1, d2, d3)>],
      iterator_types = ["parallel", "parallel", "parallel", "parallel"]}
      outs(%eb : tensor<1x6x4x8xf32>) {
  ^bb0(%out: f32):
    %i = linalg.index 1 : index
    %c2 = arith.constant 2 : index
    %seen = arith.cmpi uge, %i, %c2 : index
    %one = arith.constant 1.0 : f32
    %zero = arith.constant 0.0 : f32
    %v = arith.select %seen, %one, %zero : f32
    linalg.yield %v : f32
  } -> tensor<1x6x4x8xf32>
  // CHECK: data =
  // CHECK-NEXT: [1]
  call @report(%o, %expected) : (tensor<1x6x4x8xf32>, tensor<1x6x4x8xf32>) -> ()

  // ALiBi bias operand == ALiBi in score_mod (slopes of 4 heads, B = 8:
  // 2^-2, 2^-4, 2^-6, 2^-8).
  %v = arith.constant dense<0.5> : tensor<1x4x2x8xf32>
  %vv = arith.addf %v, %v : tensor<1x4x2x8xf32>
  %qp = arith.constant dense<[2, 3, 4, 5, 6, 7]> : tensor<6xi32>
  %kp = arith.constant dense<[0, 1, 2, 3]> : tensor<4xi32>
  %bias = posenc.alibi_bias %qp, %kp mode causal {num_heads = 4 : i64} : tensor<6xi32>, tensor<4xi32> -> tensor<4x6x4xf32>
  %kv = arith.mulf %k, %k : tensor<1x4x2x8xf32>
  %init_a1 = tensor.empty() : tensor<1x6x4x8xf32>
  %a1 = posenc.attention %qs, %k, %kv bias(%bias : tensor<4x6x4xf32>) outs(%init_a1) : tensor<1x6x4x8xf32>, tensor<1x4x2x8xf32>, tensor<1x4x2x8xf32>, tensor<1x6x4x8xf32>
  %init_a2 = tensor.empty() : tensor<1x6x4x8xf32>
  %a2 = posenc.attention %qs, %k, %kv outs(%init_a2) : tensor<1x6x4x8xf32>, tensor<1x4x2x8xf32>, tensor<1x4x2x8xf32>, tensor<1x6x4x8xf32> score_mod {
  ^bb0(%s: f32, %b: index, %h: index, %i: index, %j: index):
    %c2 = arith.constant 2 : index
    %qi = arith.addi %i, %c2 : index
    %d = arith.subi %j, %qi : index
    %di = arith.index_cast %d : index to i64
    %df = arith.sitofp %di : i64 to f32
    %h1 = arith.index_cast %h : index to i64
    %c1 = arith.constant 1 : i64
    %hp = arith.addi %h1, %c1 : i64
    %c2i = arith.constant 2 : i64
    %e = arith.muli %hp, %c2i : i64
    %ef = arith.sitofp %e : i64 to f32
    %ne = arith.negf %ef : f32
    %m = math.exp2 %ne : f32
    %t = arith.mulf %m, %df : f32
    %r = arith.addf %s, %t : f32
    posenc.yield %r : f32
  }
  // CHECK: data =
  // CHECK-NEXT: [1]
  call @report(%a1, %a2) : (tensor<1x6x4x8xf32>, tensor<1x6x4x8xf32>) -> ()
  return
}

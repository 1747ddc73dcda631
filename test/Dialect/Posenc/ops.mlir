// RUN: posenc-opt %s | posenc-opt | FileCheck %s
// RUN: posenc-opt %s --mlir-print-op-generic | posenc-opt | FileCheck %s
// RUN: posenc-opt %s -emit-bytecode | posenc-opt | FileCheck %s

// CHECK-LABEL: func @rope_defaults
func.func @rope_defaults(%x: tensor<2x16x8x64xf32>, %p: tensor<16xi32>) -> tensor<2x16x8x64xf32> {
  // CHECK: posenc.rope %{{.*}}, %{{.*}} layout half : tensor<2x16x8x64xf32>, tensor<16xi32>
  %y = posenc.rope %x, %p layout half : tensor<2x16x8x64xf32>, tensor<16xi32>
  return %y : tensor<2x16x8x64xf32>
}

// CHECK-LABEL: func @rope_interleaved_partial
func.func @rope_interleaved_partial(%x: tensor<1x8x4x128xbf16>, %p: tensor<1x8xi64>) -> tensor<1x8x4x128xbf16> {
  // CHECK: posenc.rope %{{.*}} layout interleaved {attention_factor = 1.250000e+00 : f64, base = 5.000000e+05 : f64, rotary_dim = 32 : i64}
  %y = posenc.rope %x, %p layout interleaved {base = 500000.0 : f64, rotary_dim = 32 : i64, attention_factor = 1.25 : f64} : tensor<1x8x4x128xbf16>, tensor<1x8xi64>
  return %y : tensor<1x8x4x128xbf16>
}

// CHECK-LABEL: func @rope_dynamic_shapes
func.func @rope_dynamic_shapes(%x: tensor<?x?x?x64xf16>, %p: tensor<?x?xi32>) -> tensor<?x?x?x64xf16> {
  // CHECK: posenc.rope {{.*}} : tensor<?x?x?x64xf16>, tensor<?x?xi32>
  %y = posenc.rope %x, %p layout half : tensor<?x?x?x64xf16>, tensor<?x?xi32>
  return %y : tensor<?x?x?x64xf16>
}

// CHECK-LABEL: func @rope_dynamic_head_dim
func.func @rope_dynamic_head_dim(%x: tensor<1x4x2x?xf32>, %p: tensor<4xi32>) -> tensor<1x4x2x?xf32> {
  // CHECK: rotary_dim = 16 : i64
  %y = posenc.rope %x, %p layout half {rotary_dim = 16 : i64} : tensor<1x4x2x?xf32>, tensor<4xi32>
  return %y : tensor<1x4x2x?xf32>
}

// CHECK-LABEL: func @rope_scalings
func.func @rope_scalings(%x: tensor<1x4x2x8xf32>, %p: tensor<4xi32>, %m: tensor<3x4xi64>, %mb: tensor<3x1x4xi64>) -> tensor<1x4x2x8xf32> {
  // CHECK: scaling = #posenc.rope_scaling<none>
  %0 = posenc.rope %x, %p layout half {scaling = #posenc.rope_scaling<none>} : tensor<1x4x2x8xf32>, tensor<4xi32>
  // CHECK: scaling = #posenc.rope_scaling<linear, factor = 4.000000e+00>
  %1 = posenc.rope %0, %p layout half {scaling = #posenc.rope_scaling<linear, factor = 4.0>} : tensor<1x4x2x8xf32>, tensor<4xi32>
  // CHECK: scaling = #posenc.rope_scaling<ntk, alpha = 2.000000e+00>
  %2 = posenc.rope %1, %p layout half {scaling = #posenc.rope_scaling<ntk, alpha = 2.0>} : tensor<1x4x2x8xf32>, tensor<4xi32>
  // CHECK: scaling = #posenc.rope_scaling<dynamic, factor = 2.000000e+00, original = 2048>
  %3 = posenc.rope %2, %p layout half {scaling = #posenc.rope_scaling<dynamic, factor = 2.0, original = 2048>} : tensor<1x4x2x8xf32>, tensor<4xi32>
  // Defaults of the optional YaRN parameters are not printed.
  // CHECK: scaling = #posenc.rope_scaling<yarn, factor = 4.000000e+00, original = 32768>
  %4 = posenc.rope %3, %p layout half {scaling = #posenc.rope_scaling<yarn, factor = 4.0, original = 32768, beta_fast = 32.0, beta_slow = 1.0, truncate = true>} : tensor<1x4x2x8xf32>, tensor<4xi32>
  // CHECK: scaling = #posenc.rope_scaling<yarn, factor = 4.000000e+01, original = 4096, beta_fast = 1.600000e+01, beta_slow = 2.000000e+00, mscale = 7.070000e-01, mscale_all_dim = 1.000000e+00, truncate = false>
  %5 = posenc.rope %4, %p layout interleaved {scaling = #posenc.rope_scaling<yarn, factor = 40.0, original = 4096, beta_fast = 16.0, beta_slow = 2.0, mscale = 0.707, mscale_all_dim = 1.0, truncate = false>} : tensor<1x4x2x8xf32>, tensor<4xi32>
  // CHECK: scaling = #posenc.rope_scaling<llama3, factor = 8.000000e+00, low_freq_factor = 1.000000e+00, high_freq_factor = 4.000000e+00, original = 8192>
  %6 = posenc.rope %5, %p layout half {base = 500000.0 : f64, scaling = #posenc.rope_scaling<llama3, factor = 8.0, low_freq_factor = 1.0, high_freq_factor = 4.0, original = 8192>} : tensor<1x4x2x8xf32>, tensor<4xi32>
  // CHECK: scaling = #posenc.rope_scaling<longrope, short_factor = [1.000000e+00, 1.500000e+00, 2.000000e+00, 2.500000e+00], long_factor = [2.000000e+00, 4.000000e+00, 8.000000e+00, 1.600000e+01], original = 4096, max_positions = 131072>
  %7 = posenc.rope %6, %p layout half {scaling = #posenc.rope_scaling<longrope, short_factor = [1.0, 1.5, 2.0, 2.5], long_factor = [2.0, 4.0, 8.0, 16.0], original = 4096, max_positions = 131072>} : tensor<1x4x2x8xf32>, tensor<4xi32>
  // CHECK: posenc.rope %{{.+}}, %{{.+}} layout half {mrope_section = array<i64: 1, 2, 1>} : tensor<1x4x2x8xf32>, tensor<3x4xi64>
  %8 = posenc.rope %7, %m layout half {mrope_section = array<i64: 1, 2, 1>} : tensor<1x4x2x8xf32>, tensor<3x4xi64>
  // CHECK: posenc.rope %{{.+}}, %{{.+}} layout interleaved {mrope_interleaved, mrope_section = array<i64: 2, 1, 1>} : tensor<1x4x2x8xf32>, tensor<3x1x4xi64>
  %9 = posenc.rope %8, %mb layout interleaved {mrope_section = array<i64: 2, 1, 1>, mrope_interleaved} : tensor<1x4x2x8xf32>, tensor<3x1x4xi64>
  return %9 : tensor<1x4x2x8xf32>
}

// CHECK-LABEL: func @sinusoidal
func.func @sinusoidal(%p: tensor<128xi64>, %bp: tensor<2x?xi32>) -> (tensor<128x512xf32>, tensor<2x?x64xbf16>) {
  // CHECK: posenc.sinusoidal %{{.*}} layout interleaved {dim = 512 : i64} : tensor<128xi64> -> tensor<128x512xf32>
  %0 = posenc.sinusoidal %p layout interleaved {dim = 512 : i64} : tensor<128xi64> -> tensor<128x512xf32>
  // CHECK: posenc.sinusoidal %{{.*}} layout half {base = 1.000000e+03 : f64, dim = 64 : i64} : tensor<2x?xi32> -> tensor<2x?x64xbf16>
  %1 = posenc.sinusoidal %bp layout half {dim = 64 : i64, base = 1000.0 : f64} : tensor<2x?xi32> -> tensor<2x?x64xbf16>
  return %0, %1 : tensor<128x512xf32>, tensor<2x?x64xbf16>
}

// CHECK-LABEL: func @sinusoidal_conventions
func.func @sinusoidal_conventions(%p: tensor<128xi64>) -> (tensor<128x65xf32>, tensor<128x63xf32>, tensor<128x64xf32>) {
  // CHECK: posenc.sinusoidal %{{.*}} layout half convention fairseq {dim = 65 : i64, padding_idx = 1 : i64}
  %0 = posenc.sinusoidal %p layout half convention fairseq {dim = 65 : i64, padding_idx = 1 : i64} : tensor<128xi64> -> tensor<128x65xf32>
  // CHECK: posenc.sinusoidal %{{.*}} layout half convention marian {dim = 63 : i64}
  %1 = posenc.sinusoidal %p layout half convention marian {dim = 63 : i64} : tensor<128xi64> -> tensor<128x63xf32>
  // The default convention is not printed.
  // CHECK: posenc.sinusoidal %{{.*}} layout half {dim = 64 : i64} :
  %2 = posenc.sinusoidal %p layout half convention vaswani {dim = 64 : i64} : tensor<128xi64> -> tensor<128x64xf32>
  return %0, %1, %2 : tensor<128x65xf32>, tensor<128x63xf32>, tensor<128x64xf32>
}

// CHECK-LABEL: func @alibi
func.func @alibi(%qp: tensor<128xi32>, %kp: tensor<256xi32>, %bq: tensor<2x1xi64>, %bk: tensor<2x?xi64>)
    -> (tensor<12x128x256xf32>, tensor<2x4x1x?xf16>, tensor<3x128x256xf32>) {
  // CHECK: posenc.alibi_bias %{{.*}}, %{{.*}} mode causal {num_heads = 12 : i64} : tensor<128xi32>, tensor<256xi32> -> tensor<12x128x256xf32>
  %0 = posenc.alibi_bias %qp, %kp mode causal {num_heads = 12 : i64} : tensor<128xi32>, tensor<256xi32> -> tensor<12x128x256xf32>
  // CHECK: posenc.alibi_bias {{.*}} mode symmetric {max_bias = 4.000000e+00 : f64, num_heads = 4 : i64}
  %1 = posenc.alibi_bias %bq, %bk mode symmetric {num_heads = 4 : i64, max_bias = 4.0 : f64} : tensor<2x1xi64>, tensor<2x?xi64> -> tensor<2x4x1x?xf16>
  // CHECK: slopes = array<f64: 5.000000e-01, 2.500000e-01, 1.250000e-01>
  %2 = posenc.alibi_bias %qp, %kp mode causal {num_heads = 3 : i64, slopes = array<f64: 0.5, 0.25, 0.125>} : tensor<128xi32>, tensor<256xi32> -> tensor<3x128x256xf32>
  return %0, %1, %2 : tensor<12x128x256xf32>, tensor<2x4x1x?xf16>, tensor<3x128x256xf32>
}

// Without num_heads, the heads are the result type's.
// CHECK-LABEL: func @alibi_heads_from_type
func.func @alibi_heads_from_type(%qp: tensor<128xi32>, %bq: tensor<2x1xi64>, %bk: tensor<2x?xi64>)
    -> (tensor<12x128x128xf32>, tensor<2x4x1x?xf32>) {
  // CHECK: posenc.alibi_bias %{{.*}}, %{{.*}} mode causal : tensor<128xi32>, tensor<128xi32> -> tensor<12x128x128xf32>
  %0 = posenc.alibi_bias %qp, %qp mode causal : tensor<128xi32>, tensor<128xi32> -> tensor<12x128x128xf32>
  // CHECK: posenc.alibi_bias {{.*}} mode symmetric {max_bias = 4.000000e+00 : f64} : tensor<2x1xi64>
  %1 = posenc.alibi_bias %bq, %bk mode symmetric {max_bias = 4.0 : f64} : tensor<2x1xi64>, tensor<2x?xi64> -> tensor<2x4x1x?xf32>
  return %0, %1 : tensor<12x128x128xf32>, tensor<2x4x1x?xf32>
}

// CHECK-LABEL: func @rel_bias
func.func @rel_bias(%t5: tensor<32x12xf32>, %t5u: tensor<32x8xf32>, %clip: tensor<33x4xbf16>, %clipu: tensor<17x4xf32>,
                    %qp: tensor<64xi32>, %kp: tensor<64xi32>, %bq: tensor<2x64xi32>)
    -> (tensor<12x64x64xf32>, tensor<8x64x64xf32>, tensor<2x4x64x64xbf16>, tensor<4x64x64xf32>) {
  // CHECK: posenc.rel_bias {{.*}} kind t5 {max_distance = 128 : i64, num_buckets = 32 : i64}
  %0 = posenc.rel_bias %t5, %qp, %kp kind t5 {num_buckets = 32 : i64, max_distance = 128 : i64} : tensor<32x12xf32>, tensor<64xi32>, tensor<64xi32> -> tensor<12x64x64xf32>
  // CHECK: posenc.rel_bias {{.*}} kind t5 {bidirectional = false, max_distance = 128 : i64, num_buckets = 32 : i64}
  %1 = posenc.rel_bias %t5u, %qp, %kp kind t5 {num_buckets = 32 : i64, max_distance = 128 : i64, bidirectional = false} : tensor<32x8xf32>, tensor<64xi32>, tensor<64xi32> -> tensor<8x64x64xf32>
  // CHECK: posenc.rel_bias {{.*}} kind clip {max_distance = 16 : i64}
  %2 = posenc.rel_bias %clip, %bq, %kp kind clip {max_distance = 16 : i64} : tensor<33x4xbf16>, tensor<2x64xi32>, tensor<64xi32> -> tensor<2x4x64x64xbf16>
  // CHECK: posenc.rel_bias {{.*}} kind clip {bidirectional = false, max_distance = 16 : i64}
  %3 = posenc.rel_bias %clipu, %qp, %kp kind clip {max_distance = 16 : i64, bidirectional = false} : tensor<17x4xf32>, tensor<64xi32>, tensor<64xi32> -> tensor<4x64x64xf32>
  return %0, %1, %2, %3 : tensor<12x64x64xf32>, tensor<8x64x64xf32>, tensor<2x4x64x64xbf16>, tensor<4x64x64xf32>
}

// CHECK-LABEL: func @rel_key_bias
func.func @rel_key_bias(%q: tensor<2x64x12x64xf32>, %emb: tensor<33x64xf32>, %qp: tensor<64xi32>, %kp: tensor<2x?xi64>) -> tensor<2x12x64x?xf32> {
  // CHECK: posenc.rel_key_bias {{.*}} {max_distance = 16 : i64} : tensor<2x64x12x64xf32>, tensor<33x64xf32>, tensor<64xi32>, tensor<2x?xi64> -> tensor<2x12x64x?xf32>
  %0 = posenc.rel_key_bias %q, %emb, %qp, %kp {max_distance = 16 : i64} : tensor<2x64x12x64xf32>, tensor<33x64xf32>, tensor<64xi32>, tensor<2x?xi64> -> tensor<2x12x64x?xf32>
  return %0 : tensor<2x12x64x?xf32>
}

// CHECK-LABEL: func @attention
func.func @attention(%q: tensor<1x128x32x64xf32>, %k: tensor<1x256x8x64xf32>, %v: tensor<1x256x8x32xf32>,
                     %bias: tensor<32x128x256xf32>, %row: tensor<1x1x1x256xf32>, %slope: f32)
    -> (tensor<1x128x32x32xf32>, tensor<1x128x32x32xf32>, tensor<1x128x32x32xf32>, tensor<1x128x32x32xf32>) {
  // CHECK: posenc.attention %{{.*}}, %{{.*}}, %{{.*}} causal outs(%{{.*}}) : tensor<1x128x32x64xf32>, tensor<1x256x8x64xf32>, tensor<1x256x8x32xf32>, tensor<1x128x32x32xf32>
  %init_0 = tensor.empty() : tensor<1x128x32x32xf32>
  %0 = posenc.attention %q, %k, %v causal outs(%init_0) : tensor<1x128x32x64xf32>, tensor<1x256x8x64xf32>, tensor<1x256x8x32xf32>, tensor<1x128x32x32xf32>
  // CHECK: posenc.attention {{.*}} bias(%{{.*}} : tensor<32x128x256xf32>) outs(%{{.*}}) {scale = 1.000000e-01 : f64}
  %init_1 = tensor.empty() : tensor<1x128x32x32xf32>
  %1 = posenc.attention %q, %k, %v bias(%bias : tensor<32x128x256xf32>) outs(%init_1) {scale = 0.1 : f64} : tensor<1x128x32x64xf32>, tensor<1x256x8x64xf32>, tensor<1x256x8x32xf32>, tensor<1x128x32x32xf32>
  // CHECK: posenc.attention %{{.*}}, %{{.*}}, %{{.*}} softcap(5.000000e+01) causal window(512) outs(%{{.*}}) :
  %init_w = tensor.empty() : tensor<1x128x32x32xf32>
  %w = posenc.attention %q, %k, %v softcap(50.0) causal window(512) outs(%init_w) : tensor<1x128x32x64xf32>, tensor<1x256x8x64xf32>, tensor<1x256x8x32xf32>, tensor<1x128x32x32xf32>
  // CHECK: posenc.attention %{{.*}}, %{{.*}}, %{{.*}} sinks(%{{.*}} : tensor<32xf32>) causal outs(
  %sinks = arith.constant dense<0.5> : tensor<32xf32>
  %init_s = tensor.empty() : tensor<1x128x32x32xf32>
  %with_sinks = posenc.attention %q, %k, %v sinks(%sinks : tensor<32xf32>) causal outs(%init_s) : tensor<1x128x32x64xf32>, tensor<1x256x8x64xf32>, tensor<1x256x8x32xf32>, tensor<1x128x32x32xf32>
  // CHECK: posenc.attention {{.*}} bias(%{{.*}} : tensor<1x1x1x256xf32>) causal
  %init_2 = tensor.empty() : tensor<1x128x32x32xf32>
  %2 = posenc.attention %q, %k, %v bias(%row : tensor<1x1x1x256xf32>) causal outs(%init_2) : tensor<1x128x32x64xf32>, tensor<1x256x8x64xf32>, tensor<1x256x8x32xf32>, tensor<1x128x32x32xf32>
  // CHECK: posenc.attention {{.*}}, tensor<1x128x32x32xf32> score_mod {
  // CHECK-NEXT: ^bb0(%[[S:.+]]: f32, %{{.+}}: index, %{{.+}}: index, %[[I:.+]]: index, %[[J:.+]]: index):
  // CHECK: posenc.yield %{{.*}} : f32
  %init_3 = tensor.empty() : tensor<1x128x32x32xf32>
  %3 = posenc.attention %q, %k, %v causal outs(%init_3) : tensor<1x128x32x64xf32>, tensor<1x256x8x64xf32>, tensor<1x256x8x32xf32>, tensor<1x128x32x32xf32> score_mod {
  ^bb0(%s: f32, %b: index, %h: index, %i: index, %j: index):
    %d = arith.subi %j, %i : index
    %di = arith.index_cast %d : index to i64
    %df = arith.sitofp %di : i64 to f32
    %m = arith.mulf %df, %slope : f32
    %r = arith.addf %s, %m : f32
    posenc.yield %r : f32
  }
  return %0, %1, %2, %3 : tensor<1x128x32x32xf32>, tensor<1x128x32x32xf32>, tensor<1x128x32x32xf32>, tensor<1x128x32x32xf32>
}

// CHECK-LABEL: func @attention_dynamic_bf16
func.func @attention_dynamic_bf16(%q: tensor<?x?x4x16xbf16>, %k: tensor<?x?x1x16xbf16>, %v: tensor<?x?x1x16xbf16>) -> tensor<?x?x4x16xbf16> {
  // CHECK: posenc.attention {{.*}} : tensor<?x?x4x16xbf16>, tensor<?x?x1x16xbf16>, tensor<?x?x1x16xbf16>, tensor<?x?x4x16xbf16>
  %init_0_c0 = arith.constant 0 : index
  %init_0_d0 = tensor.dim %q, %init_0_c0 : tensor<?x?x4x16xbf16>
  %init_0_c1 = arith.constant 1 : index
  %init_0_d1 = tensor.dim %q, %init_0_c1 : tensor<?x?x4x16xbf16>
  %init_0 = tensor.empty(%init_0_d0, %init_0_d1) : tensor<?x?x4x16xbf16>
  %0 = posenc.attention %q, %k, %v outs(%init_0) : tensor<?x?x4x16xbf16>, tensor<?x?x1x16xbf16>, tensor<?x?x1x16xbf16>, tensor<?x?x4x16xbf16>
  return %0 : tensor<?x?x4x16xbf16>
}

// CHECK-LABEL: func @mla_absorb
func.func @mla_absorb(%qn: tensor<1x16x16x128xf32>, %qr: tensor<1x16x16x64xf32>, %ckv: tensor<1x16x512xf32>,
                      %kr: tensor<1x16x64xf32>, %wuk: tensor<16x128x512xf32>, %wuv: tensor<16x128x512xf32>)
    -> (tensor<1x16x16x128xf32>, tensor<1x16x16x128xf32>) {
  // CHECK: posenc.mla_absorb %{{.*}}, %{{.*}}, %{{.*}}, %{{.*}}, %{{.*}}, %{{.*}} causal : tensor<1x16x16x128xf32>, tensor<1x16x16x64xf32>, tensor<1x16x512xf32>, tensor<1x16x64xf32>, tensor<16x128x512xf32>, tensor<16x128x512xf32> -> tensor<1x16x16x128xf32>
  %0 = posenc.mla_absorb %qn, %qr, %ckv, %kr, %wuk, %wuv causal : tensor<1x16x16x128xf32>, tensor<1x16x16x64xf32>, tensor<1x16x512xf32>, tensor<1x16x64xf32>, tensor<16x128x512xf32>, tensor<16x128x512xf32> -> tensor<1x16x16x128xf32>
  // CHECK: posenc.mla_absorb {{.*}} {scale = 1.250000e-01 : f64}
  %1 = posenc.mla_absorb %qn, %qr, %ckv, %kr, %wuk, %wuv {scale = 0.125 : f64} : tensor<1x16x16x128xf32>, tensor<1x16x16x64xf32>, tensor<1x16x512xf32>, tensor<1x16x64xf32>, tensor<16x128x512xf32>, tensor<16x128x512xf32> -> tensor<1x16x16x128xf32>
  return %0, %1 : tensor<1x16x16x128xf32>, tensor<1x16x16x128xf32>
}

// A tile of a larger attention: its causal diagonal and the offsets that
// score_mod's indices are shifted by.
// CHECK-LABEL: func @attention_tile
func.func @attention_tile(%q: tensor<1x?x4x16xf32>, %k: tensor<1x12x1x16xf32>, %v: tensor<1x12x1x8xf32>, %d: index, %b0: index, %h0: index, %i0: index) -> tensor<1x?x4x8xf32> {
  // CHECK: posenc.attention %{{.*}}, %{{.*}}, %{{.*}} causal diagonal(%{{.*}}) offsets(%{{.*}}, %{{.*}}, %{{.*}}) outs(%{{.*}}) : tensor<1x?x4x16xf32>
  %init_o_c1 = arith.constant 1 : index
  %init_o_d1 = tensor.dim %q, %init_o_c1 : tensor<1x?x4x16xf32>
  %init_o = tensor.empty(%init_o_d1) : tensor<1x?x4x8xf32>
  %o = posenc.attention %q, %k, %v causal diagonal(%d) offsets(%b0, %h0, %i0) outs(%init_o) : tensor<1x?x4x16xf32>, tensor<1x12x1x16xf32>, tensor<1x12x1x8xf32>, tensor<1x?x4x8xf32> score_mod {
  ^bb0(%s: f32, %b: index, %h: index, %i: index, %j: index):
    posenc.yield %s : f32
  }
  return %o : tensor<1x?x4x8xf32>
}

// CHECK-LABEL: func @online_attention
func.func @online_attention(%q: tensor<1x64x8x64xf32>, %k: tensor<1x32x2x64xbf16>, %v: tensor<1x32x2x64xbf16>,
                            %acc: tensor<1x64x8x64xf32>, %m: tensor<1x64x8xf32>, %l: tensor<1x64x8xf32>,
                            %d: index, %j0: index) -> tensor<1x64x8x64xf32> {
  // CHECK: posenc.online_attention %{{.*}}, %{{.*}}, %{{.*}} causal diagonal(%{{.*}}) offsets(%{{.*}}, %{{.*}}, %{{.*}}, %{{.*}}) outs(%{{.*}}, %{{.*}}, %{{.*}}) {scale = 1.250000e-01 : f64} : tensor<1x64x8x64xbf16>
  %qb = arith.truncf %q : tensor<1x64x8x64xf32> to tensor<1x64x8x64xbf16>
  %a, %mx, %s = posenc.online_attention %qb, %k, %v causal diagonal(%d) offsets(%j0, %j0, %j0, %j0) outs(%acc, %m, %l) {scale = 0.125 : f64} : tensor<1x64x8x64xbf16>, tensor<1x32x2x64xbf16>, tensor<1x32x2x64xbf16>, tensor<1x64x8x64xf32>, tensor<1x64x8xf32>, tensor<1x64x8xf32> score_mod {
  ^bb0(%sc: f32, %b: index, %h: index, %i: index, %j: index):
    posenc.yield %sc : f32
  }
  return %a : tensor<1x64x8x64xf32>
}

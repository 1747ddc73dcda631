// RUN: posenc-opt %s -split-input-file -convert-posenc-attention-to-gpu="max-shared-memory=232448" | FileCheck %s
// RUN: posenc-opt %s -split-input-file -convert-posenc-attention-to-gpu="emulate=true max-shared-memory=232448" | FileCheck %s --check-prefix=EMU
// RUN: posenc-opt %s -split-input-file -convert-posenc-attention-to-gpu="tile-q=8 tile-k=16 threads=64 max-shared-memory=232448" | FileCheck %s --check-prefix=SMALL

// One block per tile (1 batch row, 1 query head, 32 queries) of the op's
// iteration domain, 128 threads, the shared tiles in dynamic shared memory
// (D = 64: tile-q 32; Q and KV rows padded to 65 floats):
// 4·(32·65 + 32·65 + 32·33 + 32·64 + 3·32) = 29440 bytes. The block reads
// the slices TilingInterface gave its tile: GQA's kv head h / 4, the keys
// below the tile's causal limit. A barrier after the first phase, four per
// key tile, none after the last. A zero grid is never launched.
// CHECK-LABEL: func @gqa_bf16
// CHECK-DAG: %[[Q:.+]] = bufferization.to_buffer %arg0 read_only : tensor<2x?x8x64xbf16> to memref<2x?x8x64xbf16>
// CHECK-DAG: %[[OUT:.+]] = memref.alloc(%{{.+}}) : memref<2x?x8x64xbf16>
// CHECK: %[[TILES:.+]] = arith.ceildivui %{{.+}}, %c32
// CHECK: scf.if
// CHECK: gpu.launch blocks(%[[BX:.+]], %[[BY:.+]], %[[BZ:.+]]) in (%{{.+}} = %[[TILES]], %{{.+}} = %c8{{.*}}, %{{.+}} = %{{.+}}) threads(%[[TX:.+]], %{{.+}}, %{{.+}}) in (%{{.+}} = %c128{{.*}}, %{{.+}} = %c1{{.*}}, %{{.+}} = %c1{{.*}}) dynamic_shared_memory_size %c29440_i32
// CHECK: %[[SMEM:.+]] = gpu.dynamic_shared_memory : memref<?xi8, #gpu.address_space<workgroup>>
// CHECK: memref.view %[[SMEM]][%{{.+}}][] : memref<?xi8, #gpu.address_space<workgroup>> to memref<2080xf32, #gpu.address_space<workgroup>>
// CHECK-COUNT-6: memref.view %[[SMEM]]
// CHECK: %[[I0:.+]] = arith.muli %[[BX]], %c32
// CHECK: %[[KVH:.+]] = affine.apply #{{.+}}()[%[[BY]]]
// CHECK: %[[LIMIT:.+]] = affine.max
// CHECK: %[[QT:.+]] = memref.subview %[[Q]][%[[BZ]], %[[I0]], %[[BY]], 0] [1, %{{.+}}, 1, 64] [1, 1, 1, 1]
// CHECK: memref.subview %{{.+}}[%[[BZ]], 0, %[[KVH]], 0] [1, %[[LIMIT]], 1, 64] [1, 1, 1, 1] : memref<2x?x2x64xbf16>
// CHECK: memref.subview %{{.+}}[%[[BZ]], 0, %[[KVH]], 0] [1, %[[LIMIT]], 1, 64] [1, 1, 1, 1] : memref<2x?x2x64xbf16>
// CHECK: %[[OT:.+]] = memref.subview %[[OUT]][%[[BZ]], %[[I0]], %[[BY]], 0] [1, %{{.+}}, 1, 64] [1, 1, 1, 1]
// CHECK: memref.load %[[QT]]
// CHECK: arith.extf %{{.+}} : bf16 to f32
// CHECK: gpu.barrier
// CHECK: scf.for
// CHECK-COUNT-2: gpu.barrier
// CHECK: math.exp
// CHECK-COUNT-2: gpu.barrier
// CHECK-NEXT: }
// CHECK-NOT: gpu.barrier
// CHECK: arith.truncf %{{.+}} : f32 to bf16
// CHECK: memref.store %{{.+}}, %[[OT]]
// CHECK-NOT: gpu.barrier
// CHECK: gpu.terminator
// CHECK: bufferization.to_tensor %[[OUT]] restrict writable : memref<2x?x8x64xbf16> to tensor<2x?x8x64xbf16>
// EMU-LABEL: func @gqa_bf16
// EMU-NOT: gpu.
// EMU: %[[SHARED:.+]] = memref.alloc(%{{.+}}) {alignment = 64 : i64} : memref<?xi8>
// EMU: scf.for
// EMU-COUNT-7: memref.view %[[SHARED]][%{{.+}}][] : memref<?xi8> to memref<{{[0-9]+}}xf32>
// EMU-NOT: gpu.
// SMALL-LABEL: func @gqa_bf16
// SMALL: threads(%{{.+}}, %{{.+}}, %{{.+}}) in (%{{.+}} = %c64{{.*}}, %{{.+}} = %c1{{.*}}, %{{.+}} = %c1{{.*}}) dynamic_shared_memory_size %c8928_i32
func.func @gqa_bf16(%q: tensor<2x?x8x64xbf16>, %k: tensor<2x?x2x64xbf16>, %v: tensor<2x?x2x64xbf16>) -> tensor<2x?x8x64xbf16> {
  %init_o_c1 = arith.constant 1 : index
  %init_o_d1 = tensor.dim %q, %init_o_c1 : tensor<2x?x8x64xbf16>
  %init_o = tensor.empty(%init_o_d1) : tensor<2x?x8x64xbf16>
  %o = posenc.attention %q, %k, %v causal outs(%init_o) : tensor<2x?x8x64xbf16>, tensor<2x?x2x64xbf16>, tensor<2x?x2x64xbf16>, tensor<2x?x8x64xbf16>
  return %o : tensor<2x?x8x64xbf16>
}

// -----

// The bias (broadcast [Sq, Sk] here; the tile reads its rows) and the
// score_mod are evaluated per score inside the kernel, only for scores
// inside the tile's rows and the key tile.
// CHECK-LABEL: func @bias_and_score_mod
// CHECK: gpu.launch
// CHECK: %[[BT:.+]] = memref.subview %{{.+}}[%{{.+}}, 0] [%{{.+}}, 24] [1, 1] : memref<16x24xf32>
// CHECK: scf.if %{{.+}} -> (f32)
// CHECK: memref.load %[[BT]][%{{.+}}, %{{.+}}] : memref<?x24xf32, strided<[24, 1], offset: ?>>
// CHECK: math.tanh
// CHECK: } else {
// CHECK: scf.yield %cst{{.*}} : f32
func.func @bias_and_score_mod(%q: tensor<1x16x2x32xf32>, %k: tensor<1x24x2x32xf32>, %v: tensor<1x24x2x32xf32>, %b: tensor<16x24xf32>) -> tensor<1x16x2x32xf32> {
  %init_o = tensor.empty() : tensor<1x16x2x32xf32>
  %o = posenc.attention %q, %k, %v bias(%b : tensor<16x24xf32>) outs(%init_o) : tensor<1x16x2x32xf32>, tensor<1x24x2x32xf32>, tensor<1x24x2x32xf32>, tensor<1x16x2x32xf32> score_mod {
  ^bb0(%s: f32, %bi: index, %h: index, %i: index, %j: index):
    %t = math.tanh %s : f32
    posenc.yield %t : f32
  }
  return %o : tensor<1x16x2x32xf32>
}

// -----

// Heads too large for 48 KiB (MLA's absorbed Dk = 576, Dv = 512) use up to
// max-shared-memory; a static Sq = 1 keeps the tile at its smallest (4
// rows here: threads / tile-k).
// CHECK-LABEL: func @mla_sized
// CHECK: gpu.launch {{.*}} dynamic_shared_memory_size %c91856_i32
func.func @mla_sized(%q: tensor<1x1x16x576xf32>, %k: tensor<1x64x1x576xf32>, %v: tensor<1x64x1x512xf32>) -> tensor<1x1x16x512xf32> {
  %init_o = tensor.empty() : tensor<1x1x16x512xf32>
  %o = posenc.attention %q, %k, %v causal outs(%init_o) : tensor<1x1x16x576xf32>, tensor<1x64x1x576xf32>, tensor<1x64x1x512xf32>, tensor<1x1x16x512xf32>
  return %o : tensor<1x1x16x512xf32>
}

// -----

// Split-K decode (flash-decoding): one query row per head gives a grid of
// B·Hq·1 = 8 blocks, so each tile's 4096 keys (128 key tiles) are split
// into min(ceil(2048 / 8), 128 / 4) = 32 chunks, the grid's z dim is
// (batch row, chunk). The kernel writes each chunk's unnormalized state
// into partial states [32, B, Sq, Hq, Dv] and [32, B, Sq, Hq]; the op's
// decomposition's initial state (the sinks: max = sink, sum = 1) merges
// them (online_attention's mergeReductions: a max over chunks, rescaled
// sums of sum and acc), and its normalization acc / sum is the result.
// CHECK-LABEL: func @split_k_decode
// CHECK-DAG: %[[ACC:.*]] = memref.alloc() : memref<32x1x1x8x64xf32>
// CHECK-DAG: %[[MAX:.*]] = memref.alloc() : memref<32x1x1x8xf32>
// CHECK-DAG: %[[SUM:.*]] = memref.alloc() : memref<32x1x1x8xf32>
// CHECK: gpu.launch blocks({{.*}}) in ({{.*}}, {{.*}} = %c8, {{.*}} = %[[Z:.*]]) threads
// CHECK: memref.store {{.*}}, %[[ACC]]
// CHECK: memref.store {{.*}}, %[[MAX]]
// CHECK: memref.store {{.*}}, %[[SUM]]
// CHECK: gpu.terminator
// CHECK: %[[PMAX:.*]] = bufferization.to_tensor %[[MAX]]
// CHECK: linalg.generic {{.*}}iterator_types = ["parallel", "parallel", "parallel", "reduction"]{{.*}} ins(%[[PMAX]]
// CHECK: arith.maxnumf
// CHECK: math.exp
// CHECK: linalg.generic {{.*}}iterator_types = ["parallel", "parallel", "parallel", "parallel", "reduction"]
// CHECK: %[[OUT:.*]] = linalg.generic
// CHECK: arith.divf
// CHECK: return %[[OUT]]
// EMU-LABEL: func @split_k_decode
// EMU-NOT: gpu.launch
// EMU: %[[Z:.*]] = arith.muli %{{.*}}, %c32{{.*}} : index
// EMU: memref.alloc() : memref<32x1x1x8x64xf32>
// EMU: scf.for %{{.*}} = %{{.*}} to %[[Z]]
func.func @split_k_decode(%q: tensor<1x1x8x64xf32>, %k: tensor<1x4096x2x64xf32>, %v: tensor<1x4096x2x64xf32>, %s: tensor<8xf32>) -> tensor<1x1x8x64xf32> {
  %init_o = tensor.empty() : tensor<1x1x8x64xf32>
  %o = posenc.attention %q, %k, %v sinks(%s : tensor<8xf32>) causal outs(%init_o) : tensor<1x1x8x64xf32>, tensor<1x4096x2x64xf32>, tensor<1x4096x2x64xf32>, tensor<1x1x8x64xf32>
  return %o : tensor<1x1x8x64xf32>
}

//===- AttentionToGPU.cpp - posenc.attention as a fused GPU kernel --------===//
//
// The blocks are the tiles of the op's iteration domain (TilingInterface,
// TilingInterfaceImpl.cpp) of one batch row, one query head and tq
// queries: each block runs the tiled op, whose q, k, v and bias are the
// slices the interface chose (the GQA kv head, the keys below the causal
// limit, the bias broadcast) and whose diagonal and score_mod offsets keep
// the untiled op's mask and indices. What is GPU-specific is how T threads
// of a block run one tile:
//
//   Qs = scale·Q tile (f32)                       shared [tq, Dk + 1]
//   M = -inf, L = 0 per row; ACC = 0               shared [tq] / [tq·Dv]
//   for key tile [j0, j0 + tk) of the tile's keys:
//     KV = K tile                                  shared [tk, Dk + 1]
//     S = Qs·KVᵀ (+ bias) -> score_mod -> mask     shared [tq, tk + 1]
//     KV = V tile; per row: m' = max(M, rowmax S), S = exp(S - m'),
//       A = exp(M - m'), L = A·L + rowsum S, M = m'
//     ACC = A·ACC + S·KV
//   out = ACC / L (0 where L = 0)
//
// Each step is a phase that every thread runs on its part of the shared
// tiles, ended by a barrier. With precision=tf32 the kernel takes the
// FlashAttention-2 layout instead (blockTileOnTensorCores): each warp
// keeps its rows' Q, S, P, ACC, M and L in registers as mma.sync
// fragments, and only K and V go through shared memory. `emulate` runs
// this same kernel on the host (posenc-emulate-gpu-launch's emulation).
//
// Split-K (flash-decoding), when the grid would be small (decode: one
// query row per head): the op is its decomposition (AggregatedOpInterface:
// online_attention from the op's initial state, then acc / sum), and the
// online step's keys are split into K chunks, each run by its own blocks
// from (0, -inf, 0) into a partial state in the layout online_attention's
// PartialReductionOpInterface defines; its mergeReductions and the
// decomposition's normalization finish the op. The kernel computes the
// partial states only; merge and normalization are the op's own IR.
//
//===----------------------------------------------------------------------===//

#include "posenc/Conversion/PosencToGPU/PosencToGPU.h"

#include "posenc/Dialect/Posenc/IR/AttentionSemantics.h"
#include "posenc/Dialect/Posenc/IR/PosencOps.h"
#include "posenc/Dialect/Posenc/Transforms/BufferizableOpInterfaceImpl.h"
#include "posenc/Dialect/Posenc/Transforms/EmulateGpuLaunch.h"
#include "posenc/Dialect/Posenc/Transforms/TilingInterfaceImpl.h"
#include "posenc/Dialect/Posenc/Utils/BiasArithmetic.h"
#include "posenc/Dialect/Posenc/Utils/LinalgBuilder.h"

#include "mlir/Dialect/Affine/IR/AffineOps.h"
#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Bufferization/IR/Bufferization.h"
#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/Dialect/GPU/IR/GPUDialect.h"
#include "mlir/Dialect/Linalg/IR/Linalg.h"
#include "mlir/Dialect/Math/IR/Math.h"
#include "mlir/Dialect/MemRef/IR/MemRef.h"
#include "mlir/Dialect/NVGPU/IR/NVGPUDialect.h"
#include "mlir/Dialect/SCF/IR/SCF.h"
#include "mlir/Dialect/Tensor/IR/Tensor.h"
#include "mlir/Dialect/Vector/IR/VectorOps.h"
#include "mlir/Interfaces/TilingInterface.h"

#include <cmath>
#include <limits>

namespace mlir::posenc {
#define GEN_PASS_DEF_CONVERTPOSENCATTENTIONTOGPUPASS
#include "posenc/Conversion/Passes.h.inc"
} // namespace mlir::posenc

using namespace mlir;
using namespace mlir::posenc;

namespace {
const float kNegInf = -std::numeric_limits<float>::infinity();
// Shared memory of one block on every NVIDIA GPU since sm_50 without an
// opt-in; tiles go beyond it (up to max-shared-memory) only when nothing
// smaller fits.
constexpr int64_t kSharedBytes = 48 * 1024;

/// Tile sizes and the shared-memory layout they imply.
struct KernelShape {
  int64_t tileQ, tileK, threads, dk, dv;
  // precision=tf32: the k of the mma.sync chains (16 for f16 operands, 8
  // for tf32 ones; 0 for f32 FMAs), the bytes of an element of q, k and v
  // (K and V tiles are staged as they are stored), and the K/V tiles in
  // flight (2: the next one is copied while this one is used).
  int64_t mmaK = 0, elemBytes = 4, stages = 1;

  bool tensorCores() const { return mmaK != 0; }

  // FMAs. Threads per output row, each accumulating `accPerThread` dims
  // d = c + chunks·k (strided: the threads of a warp read one V element).
  int64_t chunks() const { return threads / tileQ; }
  int64_t accPerThread() const { return llvm::divideCeil(dv, chunks()); }
  // Rows padded by one float: lane j reading row j of a tile then hits
  // bank (j + d) mod 32, not one bank for all lanes.
  int64_t qStride() const { return dk + 1; }
  int64_t kvStride() const { return std::max(dk + 1, dv); }
  int64_t sStride() const { return tileK + 1; }
  int64_t qElems() const { return tileQ * qStride(); }
  int64_t kvElems() const { return tileK * kvStride(); }
  int64_t sElems() const { return tileQ * sStride(); }
  int64_t accElems() const { return accPerThread() * threads; }
  /// Scores of the QK phase per thread: thread t owns key t mod tile-k of
  /// rows t / tile-k + (threads / tile-k)·n.
  int64_t rowsPerPass() const { return threads / tileK; }
  int64_t scoresPerThread() const { return tileQ / rowsPerPass(); }

  // Tensor cores. Warp w owns the 16-row groups w, w + warps, ... of the
  // tile (a warp past the last group repeats it and writes nothing).
  int64_t warps() const { return threads / 32; }
  int64_t groups() const { return tileQ / 16; }
  int64_t groupsPerWarp() const { return llvm::divideCeil(groups(), warps()); }
  // K's depth padded to the mma's k, V's width to whole n8 tiles.
  int64_t dkPad() const { return llvm::alignTo(dk, mmaK); }
  int64_t dvTiles() const { return llvm::divideCeil(dv, 8); }
  // A score fragment per 8 keys, in whole k steps of P·V.
  int64_t sTiles() const { return llvm::alignTo(tileK, mmaK) / 8; }
  /// The smallest stride >= `cols` elements whose 32-bit words are `bank`
  /// mod 32: the 8 rows a fragment load reads (lane group g) then start in
  /// distinct banks. Rows stay 16-byte aligned for cp.async.
  int64_t strideFor(int64_t cols, int64_t bank) const {
    int64_t perWord = 4 / elemBytes, words = llvm::divideCeil(cols, perWord);
    return perWord * (words + (((bank - words) % 32) + 32) % 32);
  }
  // tf32 K rows are read one word per lane at (g, t), V rows at (t, g);
  // f16 K rows one word (two halves) at (g, t), 16-bit V rows at (2 t, g).
  int64_t kStride() const { return strideFor(dkPad(), 4); }
  int64_t vStride() const {
    return strideFor(8 * dvTiles(), elemBytes == 4 ? 8 : 4);
  }
  int64_t pStride() const { return 8 * sTiles() + 1; }

  /// Tensor cores' shared memory, in order: the K tiles and V tiles (each
  /// `stages` tiles in the operands' type), the weights of a V tile that
  /// holds NaN or Inf (f32; P·V then on FMAs), and the index of the last
  /// such tile (i32); each region 16-byte aligned. (elements, bytes each)
  SmallVector<std::pair<int64_t, int64_t>> tensorCoreRegions() const {
    return {{stages * tileK * kStride(), elemBytes},
            {stages * tileK * vStride(), elemBytes},
            {tileQ * pStride(), 4},
            {1, 4}};
  }

  int64_t bytes() const {
    if (!tensorCores())
      return 4 * (qElems() + kvElems() + sElems() + accElems() + 3 * tileQ);
    int64_t total = 0;
    for (auto [n, each] : tensorCoreRegions())
      total += llvm::alignTo(n * each, 16);
    return total;
  }

  /// The tiles divide the threads as the kernel needs (and so every size
  /// above is defined: no division by zero).
  bool divides() const {
    if (tensorCores())
      return tileQ > 0 && tileQ % 16 == 0 && tileK > 0 && tileK % 8 == 0;
    return tileQ > 0 && tileK > 0 && threads % tileQ == 0 &&
           threads % tileK == 0 && tileQ % rowsPerPass() == 0;
  }
  bool valid(int64_t maxBytes) const {
    return divides() && bytes() <= maxBytes;
  }
};

/// Small arithmetic helpers on index and f32 values.
struct Emitter {
  OpBuilder &b;
  Location loc;

  Value c(int64_t v) { return arith::ConstantIndexOp::create(b, loc, v); }
  Value f(float v) {
    return arith::ConstantOp::create(b, loc, b.getF32FloatAttr(v));
  }
  Value add(Value x, Value y) { return arith::AddIOp::create(b, loc, x, y); }
  Value sub(Value x, Value y) { return arith::SubIOp::create(b, loc, x, y); }
  Value mul(Value x, Value y) { return arith::MulIOp::create(b, loc, x, y); }
  Value div(Value x, Value y) { return arith::DivUIOp::create(b, loc, x, y); }
  Value rem(Value x, Value y) { return arith::RemUIOp::create(b, loc, x, y); }
  Value min(Value x, Value y) { return arith::MinSIOp::create(b, loc, x, y); }
  Value max(Value x, Value y) { return arith::MaxSIOp::create(b, loc, x, y); }
  Value lt(Value x, Value y) {
    return arith::CmpIOp::create(b, loc, arith::CmpIPredicate::slt, x, y);
  }
  Value andI(Value x, Value y) { return arith::AndIOp::create(b, loc, x, y); }
  Value select(Value c, Value t, Value f) {
    return arith::SelectOp::create(b, loc, c, t, f);
  }
  Value load(Value mem, ValueRange idx) {
    return memref::LoadOp::create(b, loc, mem, idx);
  }
  void store(Value v, Value mem, ValueRange idx) {
    memref::StoreOp::create(b, loc, v, mem, idx);
  }
  /// A scalar at `idx` of a 1-D shared tile: row·stride + col.
  Value at(Value row, int64_t stride, Value col) {
    return add(mul(row, c(stride)), col);
  }
  /// `then()` when `cond`, else `otherwise` (one f32 result): guards loads
  /// that would be out of bounds.
  Value ifElse(Value cond, function_ref<Value(Emitter &)> then,
               Value otherwise) {
    auto op = scf::IfOp::create(b, loc, TypeRange{b.getF32Type()}, cond,
                                /*withElseRegion=*/true);
    {
      OpBuilder::InsertionGuard guard(b);
      b.setInsertionPointToStart(op.thenBlock());
      Emitter inner{b, loc};
      scf::YieldOp::create(b, loc, then(inner));
      b.setInsertionPointToStart(op.elseBlock());
      scf::YieldOp::create(b, loc, otherwise);
    }
    return op.getResult(0);
  }
  /// Runs `body` only when `cond`.
  void when(Value cond, function_ref<void(Emitter &)> body) {
    auto op = scf::IfOp::create(b, loc, TypeRange{}, cond,
                                /*withElseRegion=*/false);
    OpBuilder::InsertionGuard guard(b);
    b.setInsertionPoint(op.thenBlock()->getTerminator());
    Emitter inner{b, loc};
    body(inner);
  }
  /// for iv in [lo, hi) carrying `init`; `body` returns the next values.
  ValueRange
  loop(Value lo, Value hi, ValueRange init,
       function_ref<SmallVector<Value>(Emitter &, Value iv, ValueRange carried)>
           body) {
    // The loop is in its block before its body is built: the body may
    // build affine ops, which look at the enclosing regions.
    auto op = scf::ForOp::create(b, loc, lo, hi, c(1), init);
    OpBuilder::InsertionGuard guard(b);
    Block *block = op.getBody();
    if (init.empty())
      b.setInsertionPoint(block->getTerminator());
    else
      b.setInsertionPointToEnd(block);
    Emitter inner{b, loc};
    SmallVector<Value> next =
        body(inner, op.getInductionVar(), op.getRegionIterArgs());
    if (!init.empty())
      scf::YieldOp::create(b, loc, next);
    return op.getResults();
  }
};

/// One block's tile: the op TilingInterface tiled for it, and its
/// operands as views of the kernel's buffers. Indices into the views are
/// the tile's: (0, i, 0, d) for queries, (0, j, 0, d) for keys.
struct BlockTile {
  AttentionOp op;
  Value q, k, v, bias, sinks, out;
  // Queries and keys of the tile; the causal diagonal in tile indices
  // (null when not causal).
  Value rows, keys, diagonal;
  // The block: batch row, query head, first query, and its key chunk
  // (null without split-K).
  Value batch, head, row0, chunk;
  // The tiled op and its tensor slices, erased once the kernel is built.
  SmallVector<Operation *> scaffold;
};

/// The kernel of one posenc.attention op.
struct AttentionKernel {
  AttentionOp op;
  KernelShape shape;
  // Tensor cores: the operand type of the mma.sync chains (f16, or f32
  // for tf32); null on FMAs.
  Type mmaType;
  double scale;
  // The op's tensors -> their buffers (init -> the result buffer).
  IRMapping buffers;
  // The whole op's Sq.
  Value sq;
  // Set when TilingInterface refused a tile (it reported why).
  bool tilingFailed = false;
  // Split-K: key chunks per tile, and the partial states [K, B, Sq, Hq,
  // Dv] and [K, B, Sq, Hq] (null when splits = 1).
  int64_t splits = 1;
  Value partAcc, partMax, partSum;
  // Shared tiles (views of dynamic shared memory, or host buffers when
  // emulating). FMAs: Q, K or V, scores, accumulators, row state.
  Value qs, kv, s, acc, rowMax, rowSum, rowScale;
  // Tensor cores: `stages` K and V tiles, the weights of a V tile holding
  // NaN or Inf, and the index of the last key tile whose V held one (i32,
  // -1 for none).
  Value kTile, vTile, pTile, nonFiniteTile;

  /// Runs `body` in every thread of the block, then synchronizes (unless
  /// it is the last phase).
  void phase(Emitter &e, Value tid, function_ref<void(Emitter &, Value)> body,
             bool sync = true) {
    body(e, tid);
    if (sync)
      gpu::BarrierOp::create(e.b, e.loc);
  }

  /// Thread `tid`'s share of rows [0, limit) of a [rows, cols] tile in
  /// row-major element order (coalesced global accesses): calls
  /// body(row, col) for elements tid, tid + T, ... Rows past `limit` are
  /// left as they are: no phase reads them (scores of such rows and keys
  /// are masked by select, P·V stops at the keys of the tile). A loop with
  /// a run-time bound, not an unrolled sequence: the backend hoisted one
  /// address register per unrolled element out of the key loop and ran out
  /// of registers.
  void forEachElement(Emitter &e, Value tid, Value limit, int64_t cols,
                      function_ref<void(Emitter &, Value, Value)> body) {
    int64_t threads = shape.threads;
    if (threads % cols == 0) {
      // Whole rows per pass: one column per thread.
      Value col = e.rem(tid, e.c(cols));
      auto loop = scf::ForOp::create(e.b, e.loc, e.div(tid, e.c(cols)), limit,
                                     e.c(threads / cols));
      OpBuilder::InsertionGuard guard(e.b);
      e.b.setInsertionPoint(loop.getBody()->getTerminator());
      body(e, loop.getInductionVar(), col);
      return;
    }
    auto loop = scf::ForOp::create(e.b, e.loc, tid, e.mul(limit, e.c(cols)),
                                   e.c(threads));
    OpBuilder::InsertionGuard guard(e.b);
    e.b.setInsertionPoint(loop.getBody()->getTerminator());
    Value elem = loop.getInductionVar();
    body(e, e.div(elem, e.c(cols)), e.rem(elem, e.c(cols)));
  }

  /// The score of (row i, key j) of tile `t` from its raw scale·q·k:
  /// the tiled op's score step (bias, score_mod at the untiled op's
  /// indices, causal mask); -inf outside the operands (rows past the
  /// tile's, keys past the key tile).
  Value score(Emitter &e, const BlockTile &t, Value raw, Value i, Value j,
              Value inside) {
    return e.ifElse(
        inside,
        [&](Emitter &n) {
          SmallVector<Value> idx = {n.c(0), n.c(0), i, j};
          Value biasAt;
          if (t.bias) {
            LinalgBuilder lb{n.b, n.loc};
            biasAt = lb.toF32(n.load(
                t.bias,
                biasIndices(lb, cast<MemRefType>(t.bias.getType()).getShape(),
                            idx)));
          }
          AttentionOp tiled = t.op;
          return tiled.buildScore(n.b, n.loc, raw, biasAt, idx, t.diagonal);
        },
        e.f(kNegInf));
  }

  /// The tile of block (bIdx, h, qTile): the op tiled through its
  /// TilingInterface at (bIdx, h, qTile·tq) with sizes (1, 1, ≤ tq), its
  /// slices turned into subviews of the buffers.
  FailureOr<BlockTile> tileAt(Emitter &e, Value bIdx, Value h, Value qTile) {
    OpBuilder &b = e.b;
    auto tiling = cast<TilingInterface>(op.getOperation());
    SmallVector<Range> domain = tiling.getIterationDomain(b);
    Value i0 = e.mul(qTile, e.c(shape.tileQ));
    OpFoldResult zero = b.getIndexAttr(0), one = b.getIndexAttr(1);
    SmallVector<OpFoldResult> offsets = {bIdx, h, i0, zero, zero, zero};
    SmallVector<OpFoldResult> sizes = {one,
                                       one,
                                       e.min(e.c(shape.tileQ), e.sub(sq, i0)),
                                       domain[3].size,
                                       domain[4].size,
                                       domain[5].size};
    FailureOr<TilingResult> tiled =
        tiling.getTiledImplementation(b, offsets, sizes);
    if (failed(tiled))
      return failure();
    BlockTile t;
    t.op = cast<AttentionOp>(tiled->tiledOps.front());
    IRMapping views;
    for (Operation *s : tiled->generatedSlices) {
      auto slice = cast<tensor::ExtractSliceOp>(s);
      views.map(slice.getResult(),
                memref::SubViewOp::create(
                    b, e.loc, buffers.lookup(slice.getSource()),
                    slice.getMixedOffsets(), slice.getMixedSizes(),
                    slice.getMixedStrides()));
    }
    t.q = views.lookup(t.op.getQ());
    t.k = views.lookup(t.op.getK());
    t.v = views.lookup(t.op.getV());
    t.bias = views.lookupOrNull(t.op.getBias());
    t.sinks = views.lookupOrNull(t.op.getSinks());
    t.out = views.lookup(t.op.getInit());
    t.rows = memref::DimOp::create(b, e.loc, t.q, 1);
    t.keys = memref::DimOp::create(b, e.loc, t.k, 1);
    t.diagonal = t.op.getDiagonal();
    t.scaffold.push_back(t.op);
    llvm::append_range(t.scaffold, llvm::reverse(tiled->generatedSlices));
    return t;
  }

  /// The block's work: the kernel body, or one iteration of the emulated
  /// grid. (qTile, h, z) are the block indices; z is the batch row, or
  /// with split-K batch row · splits + key chunk.
  void body(Emitter &e, Value tid, Value qTile, Value h, Value z) {
    Value bIdx = z, chunk;
    if (splits > 1) {
      bIdx = e.div(z, e.c(splits));
      chunk = e.rem(z, e.c(splits));
    }
    FailureOr<BlockTile> tile = tileAt(e, bIdx, h, qTile);
    if (failed(tile)) {
      tilingFailed = true;
      return;
    }
    tile->batch = bIdx;
    tile->head = h;
    tile->row0 = e.mul(qTile, e.c(shape.tileQ));
    tile->chunk = chunk;
    blockTile(e, tid, *tile);
    for (Operation *o : tile->scaffold)
      o->erase();
  }

  /// Tile `t` run by the block's threads.
  void blockTile(Emitter &e, Value tid, const BlockTile &tile) {
    if (shape.tensorCores())
      return blockTileOnTensorCores(e, tid, tile);
    const KernelShape &ks = shape;

    // Qs, and the row and accumulator state.
    phase(e, tid, [&](Emitter &n, Value t) {
      forEachElement(n, t, tile.rows, ks.dk, [&](Emitter &x, Value r, Value d) {
        LinalgBuilder xb{x.b, x.loc};
        Value qv = xb.toF32(x.load(tile.q, {x.c(0), r, x.c(0), d}));
        qv = arith::MulFOp::create(x.b, x.loc, qv, x.f(scale));
        x.store(qv, qs, x.at(r, ks.qStride(), d));
      });
      for (int64_t a = 0; a < ks.accPerThread(); ++a)
        n.store(n.f(0.0f), acc, n.add(n.mul(n.c(a), n.c(ks.threads)), t));
      n.when(n.lt(t, n.c(ks.tileQ)), [&](Emitter &x) {
        auto [m, l] = initialState(x, tile);
        x.store(m, rowMax, t);
        x.store(l, rowSum, t);
      });
    });

    forEachKeyTile(e, tile, {},
                   [&](Emitter &le, Value, Value j0, Value tk, ValueRange) {
                     keyTile(le, tid, tile, j0, tk);
                     return SmallVector<Value>{};
                   });

    if (tile.chunk) {
      writePartialState(e, tid, tile);
      return;
    }
    // out = ACC / L.
    phase(
        e, tid,
        [&](Emitter &n, Value t) {
          forEachAccumulator(n, t, tile,
                             [&](Emitter &y, Value r, Value d, Value a) {
                               storeOutput(y, tile, r, d, a, y.load(rowSum, r));
                             });
        },
        /*sync=*/false);
  }

  /// A row's initial (max, sum): a block has one head, whose sink starts
  /// every row's state. A key chunk's partial state starts from (-inf, 0);
  /// the sink is in the initial state the partials are merged into.
  std::pair<Value, Value> initialState(Emitter &x, const BlockTile &tile) {
    Value sinks = tile.chunk ? Value() : tile.sinks;
    Value sink = sinks ? x.load(sinks, x.c(0)) : x.f(kNegInf);
    return {sink, sinks ? attention::sinkSum(x.b, x.loc, sink) : x.f(0.0f)};
  }

  /// out[r, d] = acc / sum in the output's element type.
  static void storeOutput(Emitter &y, const BlockTile &tile, Value r, Value d,
                          Value acc, Value sum) {
    LinalgBuilder yb{y.b, y.loc};
    Value o = attention::normalize(y.b, y.loc, acc, sum);
    Type elemTy = cast<MemRefType>(tile.out.getType()).getElementType();
    y.store(yb.fromFloat(o, elemTy), tile.out, {y.c(0), r, y.c(0), d});
  }

  /// The key tiles [first, end) of tile `t`: those below its causal limit
  /// in blocks of tile-k; with split-K, the chunk's consecutive share.
  std::pair<Value, Value> keyTileRange(Emitter &e, const BlockTile &tile) {
    Value keyTiles =
        arith::CeilDivUIOp::create(e.b, e.loc, tile.keys, e.c(shape.tileK));
    if (!tile.chunk)
      return {e.c(0), keyTiles};
    Value perChunk =
        arith::CeilDivUIOp::create(e.b, e.loc, keyTiles, e.c(splits));
    Value first = e.min(e.mul(tile.chunk, perChunk), keyTiles);
    return {first, e.min(e.add(first, perChunk), keyTiles)};
  }

  /// body(kt, j0, tk, carried) for the key tiles of keyTileRange, each
  /// keys [j0, j0 + tk).
  ValueRange
  forEachKeyTile(Emitter &e, const BlockTile &tile, ValueRange init,
                 function_ref<SmallVector<Value>(Emitter &, Value, Value, Value,
                                                 ValueRange)>
                     body) {
    auto [first, end] = keyTileRange(e, tile);
    return e.loop(first, end, init,
                  [&](Emitter &le, Value kt, ValueRange carried) {
                    Value j0 = le.mul(kt, le.c(shape.tileK));
                    Value tk = le.min(le.c(shape.tileK), le.sub(tile.keys, j0));
                    return body(le, kt, j0, tk, carried);
                  });
  }

  /// body(r, d, ACC[r, d]) for thread `tid`'s share of the tile's rows ×
  /// Dv, coalesced along Dv; ACC of dim d lives with thread
  /// (d mod chunks)·tq + r at slot d / chunks.
  void
  forEachAccumulator(Emitter &e, Value tid, const BlockTile &tile,
                     function_ref<void(Emitter &, Value, Value, Value)> body) {
    const KernelShape &ks = shape;
    forEachElement(e, tid, tile.rows, ks.dv, [&](Emitter &y, Value r, Value d) {
      Value owner = y.add(y.mul(y.rem(d, y.c(ks.chunks())), y.c(ks.tileQ)), r);
      Value slot = y.div(d, y.c(ks.chunks()));
      body(y, r, d, y.load(acc, y.at(slot, ks.threads, owner)));
    });
  }

  /// Split-K: the chunk's state of row r of the tile (unnormalized acc of
  /// dim d; with `rowState`, also its max and sum) into slot
  /// [chunk, b, i, h] of the partial states.
  void writePartial(Emitter &y, const BlockTile &tile, Value r, Value d,
                    Value a) {
    y.store(a, partAcc,
            {tile.chunk, tile.batch, y.add(tile.row0, r), tile.head, d});
  }
  void writePartialRow(Emitter &x, const BlockTile &tile, Value r, Value m,
                       Value l) {
    SmallVector<Value> at = {tile.chunk, tile.batch, x.add(tile.row0, r),
                             tile.head};
    x.store(m, partMax, at);
    x.store(l, partSum, at);
  }

  void writePartialState(Emitter &e, Value tid, const BlockTile &tile) {
    phase(
        e, tid,
        [&](Emitter &n, Value t) {
          forEachAccumulator(n, t, tile,
                             [&](Emitter &y, Value r, Value d, Value a) {
                               writePartial(y, tile, r, d, a);
                             });
          n.when(n.lt(t, tile.rows), [&](Emitter &x) {
            writePartialRow(x, tile, t, x.load(rowMax, t), x.load(rowSum, t));
          });
        },
        /*sync=*/false);
  }

  /// One key tile [j0, j0 + tk) on FMAs: the four phases of the online
  /// softmax.
  void keyTile(Emitter &e, Value tid, const BlockTile &tile, Value j0,
               Value tk) {
    const KernelShape &ks = shape;
    // K tile, zero past the keys.
    phase(e, tid,
          [&](Emitter &n, Value t) { loadTile(n, t, tile.k, j0, tk, ks.dk); });
    scoresOnFMAs(e, tid, tile, j0, tk);
    // V tile over K; one thread per row updates the running max and sum.
    phase(e, tid, [&](Emitter &n, Value t) {
      loadTile(n, t, tile.v, j0, tk, ks.dv);
      n.when(n.lt(t, n.c(ks.tileQ)), [&](Emitter &x) { softmaxRow(x, t, tk); });
    });
    // ACC = A·ACC + P·V.
    phase(e, tid, [&](Emitter &n, Value t) { accumulateOnFMAs(n, t, tk); });
  }

  /// ACC = A·ACC + P·V on f32 FMAs for thread t's dims of its row; masked
  /// weights are skipped (attention::accumulateWeighted).
  void accumulateOnFMAs(Emitter &n, Value t, Value tk) {
    const KernelShape &ks = shape;
    Value r = n.rem(t, n.c(ks.tileQ));
    Value chunk = n.div(t, n.c(ks.tileQ));
    Value alpha = n.load(rowScale, r);
    SmallVector<Value> slots, cols, init;
    for (int64_t a = 0; a < ks.accPerThread(); ++a) {
      slots.push_back(n.at(n.c(a), ks.threads, t));
      // Dims past Dv (when chunks does not divide it) read a valid
      // column; their slots are never written out.
      Value d = n.add(chunk, n.c(a * ks.chunks()));
      if ((a + 1) * ks.chunks() > ks.dv)
        d = n.min(d, n.c(ks.dv - 1));
      cols.push_back(d);
      init.push_back(
          arith::MulFOp::create(n.b, n.loc, n.load(acc, slots.back()), alpha)
              .getResult());
    }
    ValueRange sums = dotLoop(
        n, tk, init,
        [&](Emitter &x, Value jj) {
          return x.load(s, x.at(r, ks.sStride(), jj));
        },
        [&](Emitter &x, Value jj, size_t col) {
          return x.load(kv, x.at(jj, ks.kvStride(), cols[col]));
        },
        attention::accumulateWeighted);
    for (auto [slot, sum] : llvm::zip(slots, sums))
      n.store(sum, acc, slot);
  }

  /// S = Qs·Kᵀ on f32 FMAs: thread t owns key jj = t mod tk of rows
  /// rb + rpp·n; the k element it loads serves all of its rows.
  void scoresOnFMAs(Emitter &e, Value tid, const BlockTile &tile, Value j0,
                    Value tk) {
    const KernelShape &ks = shape;
    phase(e, tid, [&](Emitter &n, Value t) {
      Value jj = n.rem(t, n.c(ks.tileK));
      Value rb = n.div(t, n.c(ks.tileK));
      int64_t count = ks.scoresPerThread();
      SmallVector<Value> rows;
      for (int64_t x = 0; x < count; ++x)
        rows.push_back(n.add(rb, n.c(x * ks.rowsPerPass())));
      SmallVector<Value> zeros(count, n.f(0.0f));
      ValueRange dots = dotLoop(
          n, n.c(ks.dk), zeros,
          [&](Emitter &x, Value d) {
            return x.load(kv, x.at(jj, ks.kvStride(), d));
          },
          [&](Emitter &x, Value d, size_t row) {
            return x.load(qs, x.at(rows[row], ks.qStride(), d));
          });
      Value j = n.add(j0, jj);
      Value keyInside = n.lt(jj, tk);
      for (auto [row, dot] : llvm::zip(rows, dots)) {
        Value sc = score(n, tile, dot, row, j,
                         n.andI(keyInside, n.lt(row, tile.rows)));
        n.store(sc, s, n.at(row, ks.sStride(), jj));
      }
    });
  }

  /// `v` rounded to tf32, to nearest with ties away from zero (as
  /// cvt.rna.tf32.f32): the tensor cores drop the low 13 mantissa bits, a
  /// truncation biased toward zero, so half of the last kept bit is added
  /// first. A NaN stays as it is (its payload may lie in those bits).
  /// Done once per staged element, not per fragment read.
  static Value roundToTf32(Emitter &x, Value v) {
    Type i32 = x.b.getI32Type();
    auto bits = [&](int32_t c) {
      return arith::ConstantOp::create(x.b, x.loc, x.b.getI32IntegerAttr(c));
    };
    Value w = arith::BitcastOp::create(x.b, x.loc, i32, v);
    w = arith::AddIOp::create(x.b, x.loc, w, bits(0x1000));
    w = arith::AndIOp::create(x.b, x.loc, w, bits(int32_t(0xffffe000u)));
    Value nan =
        arith::CmpFOp::create(x.b, x.loc, arith::CmpFPredicate::UNO, v, v);
    return x.select(nan, v,
                    arith::BitcastOp::create(x.b, x.loc, v.getType(), w));
  }

  /// The factor of the scale applied to q as it is staged; the scores
  /// take the rest. FMAs: all of it. Tensor cores: f16 q as it is (q·scale
  /// would be rounded to f16 again); tf32 q times the scale's power of two
  /// (exact), and the rest (in [0.5, 1)) after the mma, so q·k cannot
  /// overflow where scale·q·k does not.
  double qScale() const {
    if (!shape.tensorCores())
      return scale;
    if (mmaType.isF16())
      return 1.0;
    int exp;
    std::frexp(scale, &exp);
    return std::ldexp(1.0, exp);
  }

  /// sums[n] = step(shared(iv), each(iv, n), sums[n]) for iv in [0, end)
  /// (step: sum + shared·each by default): the shared factor is loaded
  /// once per iteration for all of the thread's sums (one k element for
  /// several rows of Q·Kᵀ, one weight for several dims of P·V).
  ValueRange
  dotLoop(Emitter &e, Value end, ValueRange init,
          function_ref<Value(Emitter &, Value)> shared,
          function_ref<Value(Emitter &, Value, size_t)> each,
          function_ref<Value(OpBuilder &, Location, Value, Value, Value)> step =
              fmaStep) {
    return e.loop(e.c(0), end, init,
                  [&](Emitter &x, Value iv, ValueRange carried) {
                    Value a = shared(x, iv);
                    SmallVector<Value> next;
                    for (auto [n, sum] : llvm::enumerate(carried))
                      next.push_back(step(x.b, x.loc, a, each(x, iv, n), sum));
                    return next;
                  });
  }

  static Value fmaStep(OpBuilder &b, Location loc, Value x, Value y,
                       Value sum) {
    return math::FmaOp::create(b, loc, x, y, sum);
  }

  /// Keys [j0, j0 + tk) of the tile's `src` ([1, keys, 1, D]) into the
  /// KV tile in f32.
  void loadTile(Emitter &e, Value tid, Value src, Value j0, Value tk,
                int64_t d) {
    forEachElement(e, tid, tk, d, [&](Emitter &x, Value jj, Value c) {
      LinalgBuilder xb{x.b, x.loc};
      Value val = xb.toF32(x.load(src, {x.c(0), x.add(j0, jj), x.c(0), c}));
      x.store(val, kv, x.at(jj, shape.kvStride(), c));
    });
  }

  /// Online softmax of row r over the tk scores of this tile: S becomes
  /// p = exp(s - m'), with M, L and the rescale A of the row updated.
  void softmaxRow(Emitter &e, Value r, Value tk) {
    const KernelShape &ks = shape;
    Value tileMax =
        e.loop(e.c(0), tk, {e.f(kNegInf)},
               [&](Emitter &x, Value jj, ValueRange m) -> SmallVector<Value> {
                 Value sc = x.load(s, x.at(r, ks.sStride(), jj));
                 return {attention::combineMax(x.b, x.loc, m[0], sc)};
               })[0];
    Value mOld = e.load(rowMax, r);
    Value mNew = attention::combineMax(e.b, e.loc, mOld, tileMax);
    Value shift = attention::softmaxShift(e.b, e.loc, mNew);
    Value alpha = attention::rescaleFactor(e.b, e.loc, mOld, mNew);
    Value sum = e.loop(
        e.c(0), tk, {e.f(0.0f)},
        [&](Emitter &x, Value jj, ValueRange l) -> SmallVector<Value> {
          Value idx = x.at(r, ks.sStride(), jj);
          Value p = attention::softmaxWeight(x.b, x.loc, x.load(s, idx), shift);
          x.store(p, s, idx);
          return {arith::AddFOp::create(x.b, x.loc, l[0], p)};
        })[0];
    Value lOld = e.load(rowSum, r);
    Value lNew = math::FmaOp::create(e.b, e.loc, alpha, lOld, sum);
    e.store(lNew, rowSum, r);
    e.store(mNew, rowMax, r);
    e.store(alpha, rowScale, r);
  }

  //===--------------------------------------------------------------------===//
  // Tensor cores (precision=tf32), the FlashAttention-2 layout: warp w
  // owns 16-row groups of the tile, and everything of a group lives in its
  // warp's registers as mma.sync fragments (PTX ISA, "Matrix Fragments for
  // mma.m16n8k*"; lane l, g = l / 4, t = l mod 4, e elements per 32-bit
  // register):
  //   A [16, k]: register r, element i at row g + 8 (r mod 2),
  //              col t·e + i + 4e (r / 2)
  //   B [k, 8]:  register r, element i at row t·e + i + 4e·r, col g
  //   C, D [16, 8]: element (r, i) at row g + 8 r, col 2 t + i
  // Q's A fragments are loaded once. K and V tiles are copied to shared
  // memory as they are stored (cp.async, nvgpu.device_async_copy), the
  // next tile while this one is used when two fit; each warp computes
  // S = Q·Kᵀ into C fragments, applies the score step to each element,
  // reduces the row max and sum over the 4 lanes of a row (t) with
  // shuffles, rescales its O fragments and adds P·V, P's A fragments taken
  // from S's C fragments (directly for m16n8k16, by shuffles within the
  // row's lanes for m16n8k8).
  //===--------------------------------------------------------------------===//

  /// A lane's place in its warp.
  struct Lane {
    Value warp, id, g, t;
  };

  /// The state of one 16-row group across key tiles: O's fragments (one
  /// vector<2x2xf32> per 8 dims of Dv) and the running max and sum of the
  /// lane's two rows (g and g + 8), the same in the row's 4 lanes.
  struct GroupState {
    SmallVector<Value> o;
    Value max[2], sum[2];
    static constexpr int64_t kRowValues = 4;
  };

  int64_t elemsPerReg() const { return mmaType.isF16() ? 2 : 1; }

  static VectorType fragmentType(Emitter &e) {
    return VectorType::get({2, 2}, e.b.getF32Type());
  }
  static Value zeroFragment(Emitter &e) {
    return arith::ConstantOp::create(
        e.b, e.loc, cast<TypedAttr>(e.b.getZeroAttr(fragmentType(e))));
  }

  /// A K or V element read from its shared tile, in f32 as the tensor
  /// cores see it: rounded to tf32 when the mma takes tf32 (bf16 is exact).
  Value asTf32(Emitter &x, Value raw) {
    LinalgBuilder xb{x.b, x.loc};
    Value v = xb.toF32(raw);
    return mmaType.isF32() && raw.getType().isF32() ? roundToTf32(x, v) : v;
  }
  /// `raw` (a shared K or V element) as an mma operand.
  Value operand(Emitter &x, Value raw) {
    return mmaType.isF16() ? raw : asTf32(x, raw);
  }

  Value shuffle(Emitter &x, Value v, Value offset, gpu::ShuffleMode mode) {
    Type i32 = x.b.getI32Type();
    Value off = arith::IndexCastOp::create(x.b, x.loc, i32, offset);
    Value width =
        arith::ConstantOp::create(x.b, x.loc, x.b.getI32IntegerAttr(32));
    return gpu::ShuffleOp::create(x.b, x.loc, v, off, width, mode)
        .getShuffleResult();
  }

  /// `v` combined over the 4 lanes of a row (xor butterfly: every lane
  /// gets the same value).
  Value rowReduce(Emitter &x, Value v,
                  function_ref<Value(Value, Value)> combine) {
    for (int64_t off : {1, 2})
      v = combine(v, shuffle(x, v, x.c(off), gpu::ShuffleMode::XOR));
    return v;
  }

  /// Element (r, i) of a [2, 2] fragment.
  static Value elem(Emitter &x, Value frag, int64_t r, int64_t i) {
    return vector::ExtractOp::create(x.b, x.loc, frag, ArrayRef<int64_t>{r, i});
  }
  Value fragment(Emitter &x, int64_t regs, ArrayRef<Value> values) {
    return vector::FromElementsOp::create(
        x.b, x.loc, VectorType::get({regs, elemsPerReg()}, mmaType), values);
  }

  Value mma(Emitter &x, Value a, Value b, Value c) {
    return nvgpu::MmaSyncOp::create(x.b, x.loc, a, b, c,
                                    ArrayRef<int64_t>{16, 8, shape.mmaK},
                                    /*tf32Enabled=*/shape.mmaK == 8)
        .getResult();
  }

  /// Q's A fragment of depth [k0, k0 + k) for the group at tile row
  /// `row0`: scale's power of two times q (qScale), rounded for the mma;
  /// 0 past the tile's rows and Dk.
  Value queryFragment(Emitter &e, const BlockTile &tile, const Lane &ln,
                      Value row0, int64_t k0) {
    const KernelShape &ks = shape;
    int64_t epr = elemsPerReg(), regs = 16 * ks.mmaK / (32 * epr);
    SmallVector<Value> values;
    for (int64_t r = 0; r < regs; ++r)
      for (int64_t i = 0; i < epr; ++i) {
        Value row = e.add(row0, e.add(ln.g, e.c(8 * (r % 2))));
        Value d = e.add(e.mul(ln.t, e.c(epr)), e.c(k0 + i + 4 * epr * (r / 2)));
        Value inside = e.andI(e.lt(row, tile.rows), e.lt(d, e.c(ks.dk)));
        Value v = e.ifElse(
            inside,
            [&](Emitter &x) {
              LinalgBuilder xb{x.b, x.loc};
              Value q = xb.toF32(x.load(tile.q, {x.c(0), row, x.c(0), d}));
              q = arith::MulFOp::create(x.b, x.loc, q, x.f(qScale()));
              return mmaType.isF32() ? roundToTf32(x, q) : q;
            },
            e.f(0.0f));
        if (mmaType.isF16())
          v = arith::TruncFOp::create(e.b, e.loc, mmaType, v);
        values.push_back(v);
      }
    return fragment(e, regs, values);
  }

  /// The elements a cp.async moves (16, 8 or 4 bytes, the most that
  /// divides a row of `d` elements), or 0 when none does (odd rows of 16-bit
  /// elements: then plain loads and stores).
  int64_t copyElems(int64_t d) const {
    for (int64_t bytes : {16, 8, 4})
      if ((d * shape.elemBytes) % bytes == 0)
        return bytes / shape.elemBytes;
    return 0;
  }

  /// body(row, col) for thread `tid`'s chunks of `n` elements of rows
  /// [0, tk) × [0, d) of a key tile, col the chunk's first element.
  void forEachChunk(Emitter &e, Value tid, Value tk, int64_t d, int64_t n,
                    function_ref<void(Emitter &, Value, Value)> body) {
    forEachElement(e, tid, tk, d / n, [&](Emitter &x, Value row, Value c) {
      body(x, row, x.mul(c, x.c(n)));
    });
  }

  /// Keys [j0, j0 + tk) of `src` ([1, keys, 1, d]) into stage `stage` of
  /// the shared tiles `dst` (row stride `stride`) as they are stored, in
  /// thread `tid`'s chunks (forEachChunk): cp.async where rows allow it
  /// (the caller commits the group), else loads and stores.
  void copyTile(Emitter &e, Value tid, Value src, Value dst, int64_t stride,
                int64_t d, Value stage, Value j0, Value tk) {
    Value base = e.mul(stage, e.c(shape.tileK * stride));
    int64_t n = copyElems(d);
    auto copyChunks = [&](Emitter &x, bool async) {
      forEachChunk(
          x, tid, tk, d, std::max<int64_t>(n, 1),
          [&](Emitter &y, Value jj, Value c) {
            Value at = y.add(base, y.at(jj, stride, c));
            SmallVector<Value> from = {y.c(0), y.add(j0, jj), y.c(0), c};
            if (!async) {
              for (int64_t i = 0; i < std::max<int64_t>(n, 1); ++i) {
                from.back() = y.add(c, y.c(i));
                y.store(y.load(src, from), dst, y.add(at, y.c(i)));
              }
              return;
            }
            nvgpu::DeviceAsyncCopyOp::create(
                y.b, y.loc, nvgpu::DeviceAsyncTokenType::get(y.b.getContext()),
                dst, ValueRange{at}, src, from, y.b.getIndexAttr(n),
                /*srcElements=*/Value(),
                /*bypassL1=*/n * shape.elemBytes == 16 ? y.b.getUnitAttr()
                                                       : UnitAttr());
          });
    };
    if (!n)
      return copyChunks(e, /*async=*/false);
    // cp.async faults on a source address that is not a multiple of its
    // size: a buffer that starts elsewhere (a view at an odd offset) is
    // read by loads instead. Rows are whole multiples of the size, so the
    // buffer's start decides for every chunk.
    auto meta = memref::ExtractStridedMetadataOp::create(e.b, e.loc, src);
    Value start =
        e.add(memref::ExtractAlignedPointerAsIndexOp::create(e.b, e.loc, src),
              e.mul(meta.getOffset(), e.c(shape.elemBytes)));
    Value aligned =
        arith::CmpIOp::create(e.b, e.loc, arith::CmpIPredicate::eq,
                              e.rem(start, e.c(n * shape.elemBytes)), e.c(0));
    auto branch = scf::IfOp::create(e.b, e.loc, TypeRange{}, aligned,
                                    /*withElseRegion=*/true);
    OpBuilder::InsertionGuard guard(e.b);
    e.b.setInsertionPoint(branch.thenBlock()->getTerminator());
    copyChunks(e, /*async=*/true);
    e.b.setInsertionPoint(branch.elseBlock()->getTerminator());
    copyChunks(e, /*async=*/false);
  }

  /// After the copies of a V tile completed: a NaN or Inf among the
  /// elements this thread copied (as the tensor cores would see them) sets
  /// the tile's index `kt` as the last one whose V holds one (every writer
  /// writes the same index).
  void checkFinite(Emitter &e, Value tid, Value stage, Value tk, Value kt) {
    const KernelShape &ks = shape;
    Value base = e.mul(stage, e.c(ks.tileK * ks.vStride()));
    int64_t n = std::max<int64_t>(copyElems(ks.dv), 1);
    forEachChunk(e, tid, tk, ks.dv, n, [&](Emitter &x, Value jj, Value c) {
      Value any;
      for (int64_t i = 0; i < n; ++i) {
        Value v = asTf32(x, x.load(vTile, x.add(base, x.at(jj, ks.vStride(),
                                                           x.add(c, x.c(i))))));
        // v - v is 0 exactly when v is finite.
        Value diff = arith::SubFOp::create(x.b, x.loc, v, v);
        Value bad = arith::CmpFOp::create(x.b, x.loc, arith::CmpFPredicate::UNE,
                                          diff, x.f(0.0f));
        any = any ? arith::OrIOp::create(x.b, x.loc, any, bad) : bad;
      }
      x.when(any, [&](Emitter &y) {
        y.store(arith::IndexCastOp::create(y.b, y.loc, y.b.getI32Type(), kt),
                nonFiniteTile, y.c(0));
      });
    });
  }

  /// Columns [from, to) of rows [0, tile-k) of every stage of a shared
  /// tile set to 0: the padding that the mma reads past Dk and Dv.
  void zeroColumns(Emitter &e, Value tid, Value dst, int64_t stride,
                   int64_t from, int64_t to) {
    if (to <= from)
      return;
    Type elemTy = cast<MemRefType>(dst.getType()).getElementType();
    Value zero = arith::ConstantOp::create(
        e.b, e.loc, cast<TypedAttr>(e.b.getZeroAttr(elemTy)));
    forEachElement(e, tid, e.c(shape.stages * shape.tileK), to - from,
                   [&](Emitter &x, Value row, Value col) {
                     x.store(zero, dst,
                             x.at(row, stride, x.add(col, x.c(from))));
                   });
  }

  void blockTileOnTensorCores(Emitter &e, Value tid, const BlockTile &tile) {
    const KernelShape &ks = shape;
    Lane ln;
    ln.warp = e.div(tid, e.c(32));
    ln.id = e.rem(tid, e.c(32));
    ln.g = e.div(ln.id, e.c(4));
    ln.t = e.rem(ln.id, e.c(4));

    // Padding of the K and V tiles, and no V tile with NaN or Inf yet; the
    // first key tile's barrier orders these writes before any read.
    zeroColumns(e, tid, kTile, ks.kStride(), ks.dk, ks.dkPad());
    zeroColumns(e, tid, vTile, ks.vStride(), ks.dv, 8 * ks.dvTiles());
    e.when(e.lt(tid, e.c(1)), [&](Emitter &x) {
      x.store(arith::ConstantOp::create(x.b, x.loc, x.b.getI32IntegerAttr(-1)),
              nonFiniteTile, x.c(0));
    });

    // The warp's groups: their first tile row, whether the warp owns them
    // (else it repeats the last group), Q's fragments, the initial state.
    int64_t gpw = ks.groupsPerWarp(), steps = ks.dkPad() / ks.mmaK;
    SmallVector<Value> row0(gpw), owned(gpw);
    SmallVector<SmallVector<Value>> qFrags(gpw);
    SmallVector<Value> init;
    auto [m0, l0] = initialState(e, tile);
    Value zeroFrag = zeroFragment(e);
    for (int64_t gi = 0; gi < gpw; ++gi) {
      Value group = e.add(ln.warp, e.c(gi * ks.warps()));
      owned[gi] = e.lt(group, e.c(ks.groups()));
      row0[gi] = e.mul(e.min(group, e.c(ks.groups() - 1)), e.c(16));
      for (int64_t s = 0; s < steps; ++s)
        qFrags[gi].push_back(queryFragment(e, tile, ln, row0[gi], s * ks.mmaK));
      init.append(ks.dvTiles(), zeroFrag);
      init.append({m0, m0, l0, l0});
    }
    auto unpack = [&](ValueRange flat) {
      SmallVector<GroupState> states(gpw);
      int64_t per = ks.dvTiles() + GroupState::kRowValues;
      for (int64_t gi = 0; gi < gpw; ++gi) {
        ValueRange part = flat.slice(gi * per, per);
        states[gi].o.assign(part.begin(), part.begin() + ks.dvTiles());
        for (int64_t r = 0; r < 2; ++r) {
          states[gi].max[r] = part[ks.dvTiles() + r];
          states[gi].sum[r] = part[ks.dvTiles() + 2 + r];
        }
      }
      return states;
    };
    auto pack = [&](ArrayRef<GroupState> states) {
      SmallVector<Value> flat;
      for (const GroupState &st : states) {
        llvm::append_range(flat, st.o);
        flat.append({st.max[0], st.max[1], st.sum[0], st.sum[1]});
      }
      return flat;
    };

    // Key tile `kt`'s K and V into stage kt mod stages, and the copies
    // committed as one group (empty past the last tile).
    Value firstTile, endTile;
    std::tie(firstTile, endTile) = keyTileRange(e, tile);
    auto copyKeyTile = [&](Emitter &x, Value kt) {
      x.when(x.lt(kt, endTile), [&](Emitter &y) {
        Value j0 = y.mul(kt, y.c(ks.tileK));
        Value tk = y.min(y.c(ks.tileK), y.sub(tile.keys, j0));
        Value stage = y.rem(kt, y.c(ks.stages));
        copyTile(y, tid, tile.k, kTile, ks.kStride(), ks.dk, stage, j0, tk);
        copyTile(y, tid, tile.v, vTile, ks.vStride(), ks.dv, stage, j0, tk);
      });
      return nvgpu::DeviceAsyncCreateGroupOp::create(
          x.b, x.loc, nvgpu::DeviceAsyncTokenType::get(x.b.getContext()),
          ValueRange{});
    };
    if (ks.stages > 1)
      copyKeyTile(e, firstTile);

    ValueRange final = forEachKeyTile(
        e, tile, init,
        [&](Emitter &le, Value kt, Value j0, Value tk, ValueRange carried) {
          // With two stages the next tile is copied while this one is used;
          // with one, this tile now (the previous one's readers are done).
          Value next = ks.stages > 1 ? le.add(kt, le.c(1)) : kt;
          Value group = copyKeyTile(le, next);
          nvgpu::DeviceAsyncWaitOp::create(
              le.b, le.loc, group, le.b.getI32IntegerAttr(ks.stages - 1));
          Value stage = le.rem(kt, le.c(ks.stages));
          checkFinite(le, tid, stage, tk, kt);
          gpu::BarrierOp::create(le.b, le.loc);
          TileView view{stage, le.mul(stage, le.c(ks.tileK)), tk};
          SmallVector<GroupState> states = unpack(carried);
          SmallVector<SmallVector<Value>> weights(gpw);
          for (int64_t gi = 0; gi < gpw; ++gi)
            weights[gi] = softmaxOnTensorCores(
                le, tile, ln, row0[gi], qFrags[gi], j0, view, states[gi]);
          // P·V on tensor cores unless this V tile holds NaN or Inf: a
          // masked key's weight 0 times NaN would reach rows that must not
          // see it.
          Value ktI32 =
              arith::IndexCastOp::create(le.b, le.loc, le.b.getI32Type(), kt);
          Value finite =
              arith::CmpIOp::create(le.b, le.loc, arith::CmpIPredicate::ne,
                                    le.load(nonFiniteTile, le.c(0)), ktI32);
          SmallVector<Value> oldO;
          for (const GroupState &st : states)
            llvm::append_range(oldO, st.o);
          auto branch =
              scf::IfOp::create(le.b, le.loc, ValueRange(oldO).getTypes(),
                                finite, /*withElseRegion=*/true);
          {
            OpBuilder::InsertionGuard guard(le.b);
            le.b.setInsertionPointToStart(branch.thenBlock());
            Emitter x{le.b, le.loc};
            SmallVector<Value> newO;
            for (int64_t gi = 0; gi < gpw; ++gi)
              llvm::append_range(newO, accumulateOnTensorCores(x, ln, view,
                                                               weights[gi],
                                                               states[gi].o));
            scf::YieldOp::create(x.b, x.loc, newO);
            le.b.setInsertionPointToStart(branch.elseBlock());
            scf::YieldOp::create(x.b, x.loc,
                                 accumulateFragmentsOnFMAs(x, ln, view, row0,
                                                           owned, weights,
                                                           states));
          }
          for (int64_t gi = 0; gi < gpw; ++gi)
            for (int64_t n = 0; n < ks.dvTiles(); ++n)
              states[gi].o[n] = branch.getResult(gi * ks.dvTiles() + n);
          // Every warp is done with this stage before it is copied into.
          gpu::BarrierOp::create(le.b, le.loc);
          return pack(states);
        });

    // Out (or the chunk's partial state), per fragment element of the
    // warp's own groups.
    SmallVector<GroupState> states = unpack(final);
    for (int64_t gi = 0; gi < gpw; ++gi) {
      const GroupState &st = states[gi];
      for (int64_t r = 0; r < 2; ++r) {
        Value row = e.add(row0[gi], e.add(ln.g, e.c(8 * r)));
        Value rowOwned = e.andI(owned[gi], e.lt(row, tile.rows));
        for (int64_t n = 0; n < ks.dvTiles(); ++n)
          for (int64_t i = 0; i < 2; ++i) {
            Value d = e.add(e.mul(ln.t, e.c(2)), e.c(8 * n + i));
            Value a = elem(e, st.o[n], r, i);
            e.when(e.andI(rowOwned, e.lt(d, e.c(ks.dv))), [&](Emitter &y) {
              if (tile.chunk)
                writePartial(y, tile, row, d, a);
              else
                storeOutput(y, tile, row, d, a, st.sum[r]);
            });
          }
        if (tile.chunk)
          e.when(e.andI(rowOwned, e.lt(ln.t, e.c(1))), [&](Emitter &y) {
            writePartialRow(y, tile, row, st.max[r], st.sum[r]);
          });
      }
    }
  }

  /// The staged key tile a warp reads: its stage, the stage's first row in
  /// the K and V tiles, and its keys.
  struct TileView {
    Value stage, row0, tk;
  };

  /// One group's scores of a key tile (keys from j0) on tensor cores, the
  /// score step per element, and the online softmax step: `st`'s max and
  /// sum updated and its O rescaled. Returns the weights P as C fragment
  /// elements [n][r][i] (key 8 n + 2 t + i of row g + 8 r).
  SmallVector<Value> softmaxOnTensorCores(Emitter &e, const BlockTile &tile,
                                          const Lane &ln, Value row0,
                                          ArrayRef<Value> qFrags, Value j0,
                                          const TileView &view,
                                          GroupState &st) {
    const KernelShape &ks = shape;
    int64_t epr = elemsPerReg(), regsB = 8 * ks.mmaK / (32 * epr);
    Value te = e.mul(ln.t, e.c(epr));
    SmallVector<Value> scores;
    for (int64_t n = 0; n < ks.sTiles(); ++n) {
      // Key row of the B fragments; one past the tile (P·V's k padding)
      // reads a valid row, its scores are masked below.
      Value key = e.add(ln.g, e.c(8 * n));
      if (8 * (n + 1) > ks.tileK)
        key = e.min(key, e.c(ks.tileK - 1));
      key = e.add(view.row0, key);
      Value s = zeroFragment(e);
      for (auto [step, a] : llvm::enumerate(qFrags)) {
        SmallVector<Value> bs;
        for (int64_t r = 0; r < regsB; ++r)
          for (int64_t i = 0; i < epr; ++i) {
            Value d = e.add(te, e.c(step * ks.mmaK + i + 4 * epr * r));
            bs.push_back(operand(e, e.load(kTile, e.at(key, ks.kStride(), d))));
          }
        s = mma(e, a, fragment(e, regsB, bs), s);
      }
      for (int64_t r = 0; r < 2; ++r)
        for (int64_t i = 0; i < 2; ++i) {
          Value raw = elem(e, s, r, i);
          if (double rest = scale / qScale(); rest != 1.0)
            raw = arith::MulFOp::create(e.b, e.loc, raw, e.f(rest));
          Value row = e.add(row0, e.add(ln.g, e.c(8 * r)));
          Value jj = e.add(e.mul(ln.t, e.c(2)), e.c(8 * n + i));
          Value inside = e.andI(e.lt(jj, view.tk), e.lt(row, tile.rows));
          scores.push_back(score(e, tile, raw, row, e.add(j0, jj), inside));
        }
    }
    auto at = [&](int64_t n, int64_t r, int64_t i) {
      return 4 * n + 2 * r + i;
    };
    SmallVector<Value> weights(scores.size());
    SmallVector<Value> alpha(2);
    for (int64_t r = 0; r < 2; ++r) {
      Value tileMax = e.f(kNegInf);
      for (int64_t n = 0; n < ks.sTiles(); ++n)
        for (int64_t i = 0; i < 2; ++i)
          tileMax =
              attention::combineMax(e.b, e.loc, tileMax, scores[at(n, r, i)]);
      tileMax = rowReduce(e, tileMax, [&](Value x, Value y) {
        return attention::combineMax(e.b, e.loc, x, y);
      });
      Value mNew = attention::combineMax(e.b, e.loc, st.max[r], tileMax);
      Value shift = attention::softmaxShift(e.b, e.loc, mNew);
      alpha[r] = attention::rescaleFactor(e.b, e.loc, st.max[r], mNew);
      Value sum = e.f(0.0f);
      for (int64_t n = 0; n < ks.sTiles(); ++n)
        for (int64_t i = 0; i < 2; ++i) {
          Value p =
              attention::softmaxWeight(e.b, e.loc, scores[at(n, r, i)], shift);
          // The row sum adds the weights the tensor cores multiply.
          if (mmaType.isF32())
            p = roundToTf32(e, p);
          weights[at(n, r, i)] = p;
          sum = arith::AddFOp::create(e.b, e.loc, sum, p);
        }
      sum = rowReduce(e, sum, [&](Value x, Value y) {
        return arith::AddFOp::create(e.b, e.loc, x, y).getResult();
      });
      st.sum[r] = math::FmaOp::create(e.b, e.loc, alpha[r], st.sum[r], sum);
      st.max[r] = mNew;
    }
    Value scaleRows = vector::FromElementsOp::create(
        e.b, e.loc, fragmentType(e),
        ValueRange{alpha[0], alpha[0], alpha[1], alpha[1]});
    for (Value &o : st.o)
      o = arith::MulFOp::create(e.b, e.loc, o, scaleRows);
    return weights;
  }

  /// O + P·V on tensor cores for one group: P's A fragments from its C
  /// fragment elements `p`, V's B fragments from the V tile (0 past tk).
  SmallVector<Value> accumulateOnTensorCores(Emitter &e, const Lane &ln,
                                             const TileView &view,
                                             ArrayRef<Value> p,
                                             ArrayRef<Value> o) {
    const KernelShape &ks = shape;
    int64_t k = ks.mmaK, epr = elemsPerReg();
    int64_t regsA = 16 * k / (32 * epr), regsB = 8 * k / (32 * epr);
    auto at = [&](int64_t n, int64_t r, int64_t i) {
      return 4 * n + 2 * r + i;
    };
    Value te = e.mul(ln.t, e.c(epr));
    Value quad = e.sub(ln.id, ln.t);
    Value odd = arith::CmpIOp::create(e.b, e.loc, arith::CmpIPredicate::ne,
                                      e.rem(ln.t, e.c(2)), e.c(0));
    Value zero = arith::ConstantOp::create(
        e.b, e.loc, cast<TypedAttr>(e.b.getZeroAttr(mmaType)));
    SmallVector<Value> result(o.begin(), o.end());
    for (int64_t kk = 0; kk < ks.sTiles() * 8 / k; ++kk) {
      SmallVector<Value> as;
      for (int64_t r = 0; r < regsA; ++r) {
        if (epr == 2) {
          // m16n8k16: register r is C fragment 2 kk + r / 2's row half
          // r mod 2, both elements, in this lane.
          for (int64_t i = 0; i < 2; ++i)
            as.push_back(arith::TruncFOp::create(
                e.b, e.loc, mmaType, p[at(2 * kk + r / 2, r % 2, i)]));
          continue;
        }
        // m16n8k8: register r holds key t + 4 (r / 2) of row half r mod 2,
        // which lane 4 g + 2 (r / 2) + t / 2 holds as element t mod 2.
        Value src = e.add(quad, e.add(e.c(2 * (r / 2)), e.div(ln.t, e.c(2))));
        Value even =
            shuffle(e, p[at(kk, r % 2, 0)], src, gpu::ShuffleMode::IDX);
        Value oddV =
            shuffle(e, p[at(kk, r % 2, 1)], src, gpu::ShuffleMode::IDX);
        as.push_back(e.select(odd, oddV, even));
      }
      Value a = fragment(e, regsA, as);
      for (int64_t n = 0; n < ks.dvTiles(); ++n) {
        SmallVector<Value> bs;
        for (int64_t r = 0; r < regsB; ++r)
          for (int64_t i = 0; i < epr; ++i) {
            Value jj = e.add(te, e.c(kk * k + i + 4 * epr * r));
            Value inside = e.lt(jj, view.tk);
            if ((kk + 1) * k > ks.tileK)
              jj = e.min(jj, e.c(ks.tileK - 1));
            Value v = operand(
                e, e.load(vTile, e.at(e.add(view.row0, jj), ks.vStride(),
                                      e.add(ln.g, e.c(8 * n)))));
            bs.push_back(e.select(inside, v, zero));
          }
        result[n] = mma(e, a, fragment(e, regsB, bs), result[n]);
      }
    }
    return result;
  }

  /// O + P·V on FMAs for a V tile that holds NaN or Inf: the groups'
  /// weights go through shared memory, and each lane sums its fragment
  /// elements over the tile's keys, skipping masked weights
  /// (attention::accumulateWeighted). Returns every group's O fragments.
  SmallVector<Value>
  accumulateFragmentsOnFMAs(Emitter &e, const Lane &ln, const TileView &view,
                            ArrayRef<Value> row0, ArrayRef<Value> owned,
                            ArrayRef<SmallVector<Value>> weights,
                            ArrayRef<GroupState> states) {
    const KernelShape &ks = shape;
    int64_t gpw = ks.groupsPerWarp();
    auto rowOf = [&](Emitter &x, int64_t gi, int64_t r) {
      return x.add(row0[gi], x.add(ln.g, x.c(8 * r)));
    };
    auto colOf = [&](Emitter &x, int64_t n, int64_t i) {
      return x.add(x.mul(ln.t, x.c(2)), x.c(8 * n + i));
    };
    for (int64_t gi = 0; gi < gpw; ++gi)
      e.when(owned[gi], [&](Emitter &x) {
        for (int64_t n = 0; n < ks.sTiles(); ++n)
          for (int64_t r = 0; r < 2; ++r)
            for (int64_t i = 0; i < 2; ++i)
              x.store(weights[gi][4 * n + 2 * r + i], pTile,
                      x.at(rowOf(x, gi, r), ks.pStride(), colOf(x, n, i)));
      });
    gpu::BarrierOp::create(e.b, e.loc);
    SmallVector<Value> init;
    for (const GroupState &st : states)
      for (Value o : st.o)
        for (int64_t r = 0; r < 2; ++r)
          for (int64_t i = 0; i < 2; ++i)
            init.push_back(elem(e, o, r, i));
    ValueRange sums = e.loop(
        e.c(0), view.tk, init,
        [&](Emitter &x, Value jj, ValueRange acc) -> SmallVector<Value> {
          SmallVector<Value> next;
          Value key = x.add(view.row0, jj);
          for (int64_t gi = 0; gi < gpw; ++gi) {
            Value p[2];
            for (int64_t r = 0; r < 2; ++r)
              p[r] = x.load(pTile, x.at(rowOf(x, gi, r), ks.pStride(), jj));
            for (int64_t n = 0; n < ks.dvTiles(); ++n)
              for (int64_t r = 0; r < 2; ++r)
                for (int64_t i = 0; i < 2; ++i) {
                  // Dims past Dv read the zero padding.
                  Value v = asTf32(x, x.load(vTile, x.at(key, ks.vStride(),
                                                         colOf(x, n, i))));
                  next.push_back(attention::accumulateWeighted(
                      x.b, x.loc, p[r], v, acc[next.size()]));
                }
          }
          return next;
        });
    SmallVector<Value> result;
    for (int64_t f = 0; f < int64_t(sums.size()); f += 4)
      result.push_back(vector::FromElementsOp::create(
          e.b, e.loc, fragmentType(e), sums.slice(f, 4)));
    return result;
  }
};

/// gpu.barrier and cp.async's commit and wait declare no memory effects
/// upstream, and ownership-based buffer deallocation (which runs after this
/// pass) rejects ops with unknown effects. Each orders memory accesses:
/// model it as reading and writing memory, which keeps it in place.
template <typename Op>
struct OrderingMemoryEffects
    : MemoryEffectOpInterface::ExternalModel<OrderingMemoryEffects<Op>, Op> {
  void
  getEffects(Operation *,
             SmallVectorImpl<SideEffects::EffectInstance<MemoryEffects::Effect>>
                 &effects) const {
    effects.emplace_back(MemoryEffects::Read::get());
    effects.emplace_back(MemoryEffects::Write::get());
  }
};

/// Tensor `t` as a buffer for reading. Identity layout: with static shapes
/// every address in the kernel is a base plus constant offsets (dynamic
/// strides made the backend hoist one 64-bit offset per tile element out
/// of the key loop, and spill). Bufferization copies an operand whose
/// buffer is not contiguous.
Value readBuffer(OpBuilder &b, Location loc, Value t) {
  auto ty = cast<RankedTensorType>(t.getType());
  auto memTy = MemRefType::get(ty.getShape(), ty.getElementType());
  return bufferization::ToBufferOp::create(b, loc, memTy, t,
                                           /*read_only=*/true);
}

struct ConvertPosencAttentionToGPUPass
    : posenc::impl::ConvertPosencAttentionToGPUPassBase<
          ConvertPosencAttentionToGPUPass> {
  using Base::Base;

  void getDependentDialects(DialectRegistry &registry) const override {
    Base::getDependentDialects(registry);
    // The blocks are the op's tiles.
    registerTilingInterfaceExternalModels(registry);
    // Split-K: the op's decomposition and online_attention's merge.
    registerAggregatedOpInterfaceExternalModels(registry);
    registry.addExtension(+[](MLIRContext *ctx, gpu::GPUDialect *) {
      gpu::BarrierOp::attachInterface<OrderingMemoryEffects<gpu::BarrierOp>>(
          *ctx);
    });
    registry.addExtension(+[](MLIRContext *ctx, nvgpu::NVGPUDialect *) {
      nvgpu::DeviceAsyncCreateGroupOp::attachInterface<
          OrderingMemoryEffects<nvgpu::DeviceAsyncCreateGroupOp>>(*ctx);
      nvgpu::DeviceAsyncWaitOp::attachInterface<
          OrderingMemoryEffects<nvgpu::DeviceAsyncWaitOp>>(*ctx);
    });
  }

  /// The tile sizes for `op`, or a diagnostic. With tile-q = 0: the
  /// largest tile of at most 64 rows (and, for a static Sq, not beyond
  /// Sq's power of two) within 48 KiB, else within max-shared-memory.
  FailureOr<KernelShape> chooseShape(AttentionOp op, int64_t dk, int64_t dv,
                                     int64_t mmaK, int64_t elemBytes) {
    int64_t threads = this->threads, tileQ = this->tileQ, tileK = this->tileK,
            budget = std::max<int64_t>(maxSharedMemory, 0);
    if (threads < 32 || threads > 1024 || threads % 32 != 0) {
      op.emitOpError() << "convert-posenc-attention-to-gpu: threads = "
                       << threads << " must be a multiple of 32 in [32, 1024]";
      return failure();
    }
    SmallVector<int64_t> candidates = {tileQ};
    if (tileQ == 0) {
      candidates.clear();
      int64_t sq = op.getQ().getType().getDimSize(1);
      int64_t rows =
          ShapedType::isDynamic(sq)
              ? std::numeric_limits<int64_t>::max()
              : int64_t(llvm::PowerOf2Ceil(std::max<int64_t>(sq, 1)));
      if (mmaK) {
        // One 16-row group per warp at most (a warp keeps a group's state
        // in registers), fewer for a short Sq.
        for (int64_t tq = 16 * (threads / 32); tq >= 16; tq /= 2)
          if (tq % 16 == 0 && (tq <= rows || tq == 16))
            candidates.push_back(tq);
      } else {
        int64_t cap = 64;
        if (tileK > 0)
          cap =
              std::min<int64_t>(cap, std::max<int64_t>(rows, threads / tileK));
        for (int64_t tq = 64; tq >= 1; tq /= 2)
          if (tq <= cap)
            candidates.push_back(tq);
      }
    }
    // Tensor cores: two K/V tiles in flight where they fit (the next one
    // is copied while this one is used), else one.
    SmallVector<int64_t> stageCounts = {1};
    if (mmaK)
      stageCounts = {2, 1};
    for (int64_t limit : {std::min(kSharedBytes, budget), budget})
      for (int64_t tq : candidates)
        for (int64_t stages : stageCounts) {
          KernelShape shape{tq, tileK, threads,   dk,
                            dv, mmaK,  elemBytes, stages};
          if (shape.valid(limit))
            return shape;
        }
    // Report the smallest tile that only lacks memory, if any.
    std::optional<KernelShape> last;
    for (int64_t tq : llvm::reverse(candidates)) {
      KernelShape shape{tq, tileK, threads, dk, dv, mmaK, elemBytes, 1};
      if (shape.divides()) {
        last = shape;
        break;
      }
    }
    InFlightDiagnostic diag =
        op.emitOpError() << "convert-posenc-attention-to-gpu: no "
                            "kernel for Dk = "
                         << dk << ", Dv = " << dv << " with tile-k = " << tileK
                         << ", threads = " << threads;
    if (tileQ != 0)
      diag << ", tile-q = " << tileQ;
    if (mmaK)
      diag << ": with precision = tf32 tile-q must be a multiple of 16 and "
              "tile-k of 8, ";
    else
      diag << ": tile-q and tile-k must divide threads, threads / tile-k "
              "must divide tile-q, ";
    diag << "and the tiles must fit in " << budget << " bytes of shared memory";
    if (last)
      diag << " (" << last->bytes() << " needed at tile-q = " << last->tileQ
           << ")";
    else
      diag << " (no tile-q divides as needed)";
    return failure();
  }

  LogicalResult lower(AttentionOp op) {
    auto qTy = op.getQ().getType(), kTy = op.getK().getType(),
         vTy = op.getV().getType();
    // The kernel keeps its tiles and softmax state in f32 shared memory.
    if (!op.getComputeType().isF32())
      return op.emitOpError()
             << "convert-posenc-attention-to-gpu: the GPU kernel computes in "
                "f32; f64 attention (computed in f64) runs on the CPU "
                "pipeline (posenc-lower-to-cpu)";
    // No keys at all (a static Sk of 0): every row sees none and is 0 (a
    // kernel would take zero-sized views at offset 0, which subview's
    // verifier refuses).
    if (kTy.getDimSize(1) == 0) {
      OpBuilder b(op);
      Value zero = arith::ConstantOp::create(
          b, op.getLoc(),
          b.getZeroAttr(op.getInit().getType().getElementType()));
      Value filled =
          linalg::FillOp::create(b, op.getLoc(), zero, op.getInit()).result();
      op.getResult().replaceAllUsesWith(filled);
      op.erase();
      return success();
    }
    int64_t dk = qTy.getDimSize(3), dv = vTy.getDimSize(3);
    int64_t hq = qTy.getDimSize(2), hkv = kTy.getDimSize(2);
    if (ShapedType::isDynamic(dk) || ShapedType::isDynamic(dv) ||
        ShapedType::isDynamic(hq) || ShapedType::isDynamic(hkv)) {
      auto dim = [](int64_t d) {
        return ShapedType::isDynamic(d) ? std::string("?") : std::to_string(d);
      };
      return op.emitOpError()
             << "convert-posenc-attention-to-gpu: head counts and head dims "
                "must be static (got Hq = "
             << dim(hq) << ", Hkv = " << dim(hkv) << ", Dk = " << dim(dk)
             << ", Dv = " << dim(dv) << "; ? is dynamic)";
    }
    // Tensor cores: f16 operands as they are (m16n8k16), others as tf32
    // (m16n8k8; q, k and v have one element type). bf16 values are exact
    // in tf32, so their products are the same; LLVM 22's nvgpu-to-nvvm
    // cannot yet deduce the PTX types of a bf16 mma.sync.
    int64_t mmaK = 0;
    Type mmaType, stagedType = qTy.getElementType();
    if (precision == "tf32") {
      mmaType = stagedType.isF16() ? stagedType
                                   : Type(Float32Type::get(op.getContext()));
      mmaK = mmaType.isF16() ? 16 : 8;
    }
    FailureOr<KernelShape> shape =
        chooseShape(op, dk, dv, mmaK, stagedType.getIntOrFloatBitWidth() / 8);
    if (failed(shape))
      return failure();

    OpBuilder b(op);
    Location loc = op.getLoc();
    Emitter e{b, loc};
    AttentionKernel kernel;
    kernel.op = op;
    kernel.shape = *shape;
    kernel.mmaType = mmaType;
    kernel.scale = *op.getScaleOrDefault();
    kernel.splits = chooseSplits(op, *shape);
    // Split-K: the op as online_attention + normalization, the online
    // step's partial states computed by the kernel and merged below.
    Value normalized;
    OnlineAttentionOp online;
    if (kernel.splits > 1) {
      FailureOr<SmallVector<Value>> parts =
          cast<linalg::AggregatedOpInterface>(op.getOperation())
              .decomposeOperation(b);
      if (failed(parts))
        return op.emitOpError()
               << "convert-posenc-attention-to-gpu: split-k needs the op's "
                  "decomposition (static head counts, a known scale)";
      normalized = parts->front();
      auto normalize = normalized.getDefiningOp<linalg::GenericOp>();
      online = normalize.getInputs()[0].getDefiningOp<OnlineAttentionOp>();
    }
    // Size reads made so far (the decomposition's included) stay on the
    // tensors; those tiling makes inside the kernel read the buffers.
    SmallPtrSet<Operation *, 8> sizeReads = tensorDims(op);
    Value qBuf = readBuffer(b, loc, op.getQ());
    for (Value t :
         {op.getQ(), op.getK(), op.getV(), op.getBias(), op.getSinks()})
      if (t && !kernel.buffers.contains(t))
        kernel.buffers.map(t, t == op.getQ() ? qBuf : readBuffer(b, loc, t));
    auto outTy = cast<RankedTensorType>(op.getInit().getType());
    SmallVector<Value> dynSizes;
    for (int64_t d = 0; d < outTy.getRank(); ++d)
      if (outTy.isDynamicDim(d))
        dynSizes.push_back(memref::DimOp::create(b, loc, qBuf, d));
    auto outMemTy = MemRefType::get(outTy.getShape(), outTy.getElementType());
    Value out = memref::AllocOp::create(b, loc, outMemTy, dynSizes);
    kernel.buffers.map(op.getInit(), out);
    // The grid: the iteration domain's (batch, query heads, queries) in
    // tiles of (1, 1, tq), with split-K (batch, key chunk) as one dim.
    Value batch = memref::DimOp::create(b, loc, qBuf, 0);
    kernel.sq = memref::DimOp::create(b, loc, qBuf, 1);
    Value qTiles =
        arith::CeilDivUIOp::create(b, loc, kernel.sq, e.c(shape->tileQ));
    Value zBlocks = batch;
    if (kernel.splits > 1) {
      zBlocks = e.mul(batch, e.c(kernel.splits));
      Type f32 = b.getF32Type();
      int64_t k = kernel.splits, bs = qTy.getDimSize(0),
              sqs = qTy.getDimSize(1);
      SmallVector<Value> rowSizes;
      for (auto [d, n] : llvm::enumerate(ArrayRef<int64_t>{bs, sqs}))
        if (ShapedType::isDynamic(n))
          rowSizes.push_back(memref::DimOp::create(b, loc, qBuf, d));
      kernel.partAcc = memref::AllocOp::create(
          b, loc, MemRefType::get({k, bs, sqs, hq, dv}, f32), rowSizes);
      kernel.partMax = memref::AllocOp::create(
          b, loc, MemRefType::get({k, bs, sqs, hq}, f32), rowSizes);
      kernel.partSum = memref::AllocOp::create(
          b, loc, MemRefType::get({k, bs, sqs, hq}, f32), rowSizes);
    }

    Type f32 = b.getF32Type(), i32 = b.getI32Type();
    SmallVector<std::pair<int64_t, Type>> sizes;
    if (shape->tensorCores()) {
      // Named: zip keeps references to its ranges.
      SmallVector<std::pair<int64_t, int64_t>> regions =
          shape->tensorCoreRegions();
      SmallVector<Type> types = {stagedType, stagedType, f32, i32};
      for (auto [region, ty] : llvm::zip(regions, types))
        sizes.push_back({region.first, ty});
    } else
      for (int64_t n :
           {shape->qElems(), shape->kvElems(), shape->sElems(),
            shape->accElems(), shape->tileQ, shape->tileQ, shape->tileQ})
        sizes.push_back({n, f32});
    // The tiles are views of the block's dynamic shared memory: workgroup
    // attributions are block arguments, which buffer deallocation (run
    // after this pass) would give ownership arguments.
    auto space = gpu::AddressSpaceAttr::get(b.getContext(),
                                            gpu::AddressSpace::Workgroup);
    Value bytes = arith::ConstantOp::create(
        b, loc, b.getI32IntegerAttr(int32_t(shape->bytes())));
    // No blocks to launch (Sq or B is 0): a zero grid is an error for
    // the driver.
    Value any = e.andI(arith::CmpIOp::create(b, loc, arith::CmpIPredicate::sgt,
                                             qTiles, e.c(0)),
                       arith::CmpIOp::create(b, loc, arith::CmpIPredicate::sgt,
                                             batch, e.c(0)));
    gpu::LaunchOp launch;
    e.when(any, [&](Emitter &x) {
      launch =
          gpu::LaunchOp::create(x.b, loc, qTiles, x.c(hq), zBlocks,
                                x.c(shape->threads), x.c(1), x.c(1), bytes);
      OpBuilder::InsertionGuard guard(x.b);
      x.b.setInsertionPointToStart(&launch.getBody().front());
      Emitter in{x.b, loc};
      auto raw = gpu::DynamicSharedMemoryOp::create(
          x.b, loc,
          MemRefType::get({ShapedType::kDynamic}, x.b.getI8Type(),
                          MemRefLayoutAttrInterface(), space));
      SmallVector<Value> tilesMem;
      int64_t offset = 0;
      for (auto [n, elemTy] : sizes) {
        auto ty =
            MemRefType::get({n}, elemTy, MemRefLayoutAttrInterface(), space);
        tilesMem.push_back(memref::ViewOp::create(x.b, loc, ty, raw,
                                                  in.c(offset), ValueRange{}));
        // Tensor cores: 16-byte aligned regions (cp.async), as bytes()
        // counts them.
        int64_t bytes = n * elemTy.getIntOrFloatBitWidth() / 8;
        offset += shape->tensorCores() ? llvm::alignTo(bytes, 16) : bytes;
      }
      assign(kernel, tilesMem);
      kernel.body(in, launch.getThreadIds().x, launch.getBlockIds().x,
                  launch.getBlockIds().y, launch.getBlockIds().z);
      gpu::TerminatorOp::create(x.b, loc);
    });
    if (kernel.tilingFailed)
      return failure();
    readSizesFromBuffers(b, op, kernel.buffers, sizeReads);
    // The same kernel, its threads run in lockstep on the host; buffer
    // deallocation, later in the pipeline, frees the emulation's buffers.
    if (emulate && failed(emulateGpuLaunch(launch, /*deallocate=*/false)))
      return failure();
    if (kernel.splits > 1)
      return mergePartialStates(b, op, online, normalized, kernel);
    Value result = bufferization::ToTensorOp::create(
        b, loc, outTy, out, /*restrict=*/true, /*writable=*/true);
    op.getResult().replaceAllUsesWith(result);
    op.erase();
    return success();
  }

  /// Split-K: the kernel's partial states merged by online_attention's
  /// PartialReductionOpInterface into the decomposition's initial state
  /// (sinks included), whose normalization is the op's result.
  static LogicalResult mergePartialStates(OpBuilder &b, AttentionOp op,
                                          OnlineAttentionOp online,
                                          Value normalized,
                                          const AttentionKernel &kernel) {
    Location loc = op.getLoc();
    SmallVector<Value> partial;
    for (Value mem : {kernel.partAcc, kernel.partMax, kernel.partSum}) {
      auto memTy = cast<MemRefType>(mem.getType());
      partial.push_back(bufferization::ToTensorOp::create(
          b, loc,
          RankedTensorType::get(memTy.getShape(), memTy.getElementType()), mem,
          /*restrict=*/true, /*writable=*/true));
    }
    SetVector<unsigned> keys;
    keys.insert(3); // the key dim of online_attention's iteration domain
    FailureOr<MergeResult> merged =
        cast<PartialReductionOpInterface>(online.getOperation())
            .mergeReductions(b, loc, partial, keys);
    if (failed(merged))
      return failure();
    // The normalization reads the merged state, which is computed after
    // the kernel: move it (and the op's uses) past the merge.
    Operation *normalize = normalized.getDefiningOp();
    normalize->moveAfter(merged->mergeOps.back());
    online->replaceAllUsesWith(merged->replacements);
    online->erase();
    op.getResult().replaceAllUsesWith(normalized);
    op.erase();
    return success();
  }

  /// Key chunks per (batch row, head, query tile): with split-k = 0, as
  /// many as bring the grid to about kSplitGridBlocks blocks of 128
  /// threads (fewer blocks of more threads), each chunk at least
  /// kMinTilesPerChunk key tiles; 1 (no split) when the grid is large
  /// enough already or a size is dynamic.
  int64_t chooseSplits(AttentionOp op, const KernelShape &shape) {
    if (splitK > 0)
      return splitK;
    constexpr int64_t kSplitGridBlocks = 2048, kMinTilesPerChunk = 4;
    auto qTy = op.getQ().getType();
    int64_t b = qTy.getDimSize(0), sq = qTy.getDimSize(1),
            hq = qTy.getDimSize(2), sk = op.getK().getType().getDimSize(1);
    if (ShapedType::isDynamic(b) || ShapedType::isDynamic(sq) ||
        ShapedType::isDynamic(sk) || b * sq == 0)
      return 1;
    int64_t blocks = llvm::divideCeil(
        b * hq * llvm::divideCeil(sq, shape.tileQ) * shape.threads, 128);
    if (blocks >= kSplitGridBlocks)
      return 1;
    int64_t byGrid = llvm::divideCeil(kSplitGridBlocks, blocks);
    int64_t byKeys = llvm::divideCeil(sk, shape.tileK) / kMinTilesPerChunk;
    return std::max<int64_t>(1, std::min(byGrid, byKeys));
  }

  /// The tensor.dim users of `op`'s operands.
  static SmallPtrSet<Operation *, 8> tensorDims(AttentionOp op) {
    SmallPtrSet<Operation *, 8> dims;
    for (Value t : op->getOperands())
      for (Operation *user : t.getUsers())
        if (isa<tensor::DimOp>(user))
          dims.insert(user);
    return dims;
  }

  /// Tiling read sizes of the op's tensors inside the kernel: read them
  /// from the buffers instead (a kernel takes no tensor). `before` are the
  /// reads that were there before the kernel.
  static void readSizesFromBuffers(OpBuilder &b, AttentionOp op,
                                   const IRMapping &buffers,
                                   const SmallPtrSet<Operation *, 8> &before) {
    for (Operation *dim : tensorDims(op)) {
      auto read = cast<tensor::DimOp>(dim);
      if (before.contains(dim) || !buffers.contains(read.getSource()))
        continue;
      OpBuilder::InsertionGuard guard(b);
      b.setInsertionPoint(read);
      read.replaceAllUsesWith(
          memref::DimOp::create(b, read.getLoc(),
                                buffers.lookup(read.getSource()),
                                read.getIndex())
              .getResult());
      read.erase();
    }
  }

  static void assign(AttentionKernel &kernel, ArrayRef<Value> tiles) {
    if (kernel.shape.tensorCores()) {
      kernel.kTile = tiles[0];
      kernel.vTile = tiles[1];
      kernel.pTile = tiles[2];
      kernel.nonFiniteTile = tiles[3];
      return;
    }
    kernel.qs = tiles[0];
    kernel.kv = tiles[1];
    kernel.s = tiles[2];
    kernel.acc = tiles[3];
    kernel.rowMax = tiles[4];
    kernel.rowSum = tiles[5];
    kernel.rowScale = tiles[6];
  }

  void runOnOperation() override {
    int64_t tq = tileQ, tk = tileK, shared = maxSharedMemory;
    int64_t split = splitK;
    if (precision != "ieee" && precision != "tf32") {
      getOperation().emitError()
          << "convert-posenc-attention-to-gpu: precision = '" << precision
          << "' must be 'ieee' (f32 FMAs) or 'tf32' (tensor cores)";
      return signalPassFailure();
    }
    if (tq < 0 || tk < 1 || shared < 0 || split < 0 || split > 4096) {
      getOperation().emitError()
          << "convert-posenc-attention-to-gpu: tile-q = " << tq
          << " must be >= 0, tile-k = " << tk
          << " >= 1, max-shared-memory = " << shared
          << " >= 0 and split-k = " << split << " in [0, 4096]";
      return signalPassFailure();
    }
    // The kernel runs whole attention ops (its own split-K included); a
    // lone online-softmax step would reach the host unlowered.
    WalkResult online = getOperation().walk([&](OnlineAttentionOp op) {
      op.emitOpError() << "convert-posenc-attention-to-gpu: the GPU kernel "
                          "runs whole posenc.attention ops; an "
                          "online_attention step has no GPU lowering (it "
                          "runs on the CPU pipeline, posenc-lower-to-cpu)";
      return WalkResult::interrupt();
    });
    if (online.wasInterrupted())
      return signalPassFailure();
    SmallVector<AttentionOp> ops;
    getOperation().walk([&](AttentionOp op) { ops.push_back(op); });
    IRRewriter rewriter(&getContext());
    for (AttentionOp op : ops)
      if (failed(lower(convertToTensorForm(rewriter, op))))
        return signalPassFailure();
  }
};
} // namespace

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
// tiles, ended by a barrier. With precision=tf32, S = Qs·KVᵀ and S·KV
// are mma.sync chains over m16n8 sub-tiles (mmaTiles). `emulate` runs this
// same kernel on the host (posenc-emulate-gpu-launch's emulation).
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
  // precision=tf32: the k of the mma.sync chains of Q·Kᵀ and P·V (16 for
  // f16 operands, 8 for tf32 ones), 0 for f32 FMAs.
  int64_t mmaK = 0;

  /// Threads per output row, each accumulating `accPerThread` dims
  /// d = c + chunks·k (strided: the threads of a warp read one V element).
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
  int64_t bytes() const {
    // With tensor cores, one more float: whether the V tile is finite.
    return 4 * (qElems() + kvElems() + sElems() + accElems() + 3 * tileQ +
                (mmaK ? 1 : 0));
  }
  /// Scores of the QK phase per thread: thread t owns key t mod tile-k of
  /// rows t / tile-k + (threads / tile-k)·n.
  int64_t rowsPerPass() const { return threads / tileK; }
  int64_t scoresPerThread() const { return tileQ / rowsPerPass(); }

  /// The tiles divide the threads as the kernel needs (and so every size
  /// above is defined: no division by zero).
  bool divides() const {
    return tileQ > 0 && tileK > 0 && threads % tileQ == 0 &&
           threads % tileK == 0 && tileQ % rowsPerPass() == 0 &&
           (!mmaK || (tileQ % 16 == 0 && tileK % 8 == 0));
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
  // The operand type of the mma.sync chains (null without tensor cores).
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
  // emulating).
  Value qs, kv, s, acc, rowMax, rowSum, rowScale;
  // Tensor cores: 1 while the V tile has no NaN or Inf (else 0).
  Value vFinite;

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
    const KernelShape &ks = shape;

    // Qs, and the row and accumulator state.
    phase(e, tid, [&](Emitter &n, Value t) {
      forEachElement(n, t, tile.rows, ks.dk, [&](Emitter &x, Value r, Value d) {
        LinalgBuilder xb{x.b, x.loc};
        Value qv = xb.toF32(x.load(tile.q, {x.c(0), r, x.c(0), d}));
        qv = arith::MulFOp::create(x.b, x.loc, qv, x.f(qScale()));
        if (roundsToTf32())
          qv = roundToTf32(x, qv);
        x.store(qv, qs, x.at(r, ks.qStride(), d));
      });
      for (int64_t a = 0; a < ks.accPerThread(); ++a)
        n.store(n.f(0.0f), acc, n.add(n.mul(n.c(a), n.c(ks.threads)), t));
      // A block has one head: its sink starts every row's state. A key
      // chunk's partial state starts from (0, -inf, 0); the sink is in the
      // initial state the partials are merged into.
      Value sinks = tile.chunk ? Value() : tile.sinks;
      n.when(n.lt(t, n.c(ks.tileQ)), [&](Emitter &x) {
        Value sink = sinks ? x.load(sinks, x.c(0)) : x.f(kNegInf);
        x.store(sink, rowMax, t);
        x.store(sinks ? attention::sinkSum(x.b, x.loc, sink) : x.f(0.0f),
                rowSum, t);
      });
    });

    // The tile's keys (those below its causal limit) in blocks of tk; with
    // split-K, the chunk's consecutive share of those blocks.
    Value keyTiles =
        arith::CeilDivUIOp::create(e.b, e.loc, tile.keys, e.c(ks.tileK));
    Value firstTile = e.c(0), endTile = keyTiles;
    if (tile.chunk) {
      Value perChunk =
          arith::CeilDivUIOp::create(e.b, e.loc, keyTiles, e.c(splits));
      firstTile = e.min(e.mul(tile.chunk, perChunk), keyTiles);
      endTile = e.min(e.add(firstTile, perChunk), keyTiles);
    }
    e.loop(firstTile, endTile, {}, [&](Emitter &le, Value kt, ValueRange) {
      Value j0 = le.mul(kt, le.c(ks.tileK));
      Value tk = le.min(le.c(ks.tileK), le.sub(tile.keys, j0));
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
          forEachAccumulator(
              n, t, tile, [&](Emitter &y, Value r, Value d, Value a) {
                LinalgBuilder yb{y.b, y.loc};
                Value o =
                    attention::normalize(y.b, y.loc, a, y.load(rowSum, r));
                Type elemTy =
                    cast<MemRefType>(tile.out.getType()).getElementType();
                y.store(yb.fromFloat(o, elemTy), tile.out,
                        {y.c(0), r, y.c(0), d});
              });
        },
        /*sync=*/false);
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

  /// Split-K: the chunk's state of each row of the tile, unnormalized, into
  /// its slot [chunk, b, i, h] of the partial states.
  void writePartialState(Emitter &e, Value tid, const BlockTile &tile) {
    phase(
        e, tid,
        [&](Emitter &n, Value t) {
          forEachAccumulator(n, t, tile,
                             [&](Emitter &y, Value r, Value d, Value a) {
                               y.store(a, partAcc,
                                       {tile.chunk, tile.batch,
                                        y.add(tile.row0, r), tile.head, d});
                             });
          n.when(n.lt(t, tile.rows), [&](Emitter &x) {
            SmallVector<Value> at = {tile.chunk, tile.batch,
                                     x.add(tile.row0, t), tile.head};
            x.store(x.load(rowMax, t), partMax, at);
            x.store(x.load(rowSum, t), partSum, at);
          });
        },
        /*sync=*/false);
  }

  /// One key tile [j0, j0 + tk): the four phases of the online softmax.
  void keyTile(Emitter &e, Value tid, const BlockTile &tile, Value j0,
               Value tk) {
    const KernelShape &ks = shape;
    // K tile, zero past the keys.
    phase(e, tid, [&](Emitter &n, Value t) {
      loadTile(n, t, tile.k, j0, tk, ks.dk);
      if (ks.mmaK)
        n.when(n.lt(t, n.c(1)),
               [&](Emitter &x) { x.store(x.f(1.0f), vFinite, x.c(0)); });
    });

    if (ks.mmaK) {
      phase(e, tid, [&](Emitter &n, Value t) {
        scoresOnTensorCores(n, t, tile, j0, tk);
      });
    } else {
      scoresOnFMAs(e, tid, tile, j0, tk);
    }

    // V tile over K; one thread per row updates the running max and sum.
    phase(e, tid, [&](Emitter &n, Value t) {
      loadTile(n, t, tile.v, j0, tk, ks.dv, /*checkFinite=*/ks.mmaK != 0);
      n.when(n.lt(t, n.c(ks.tileQ)), [&](Emitter &x) { softmaxRow(x, t, tk); });
    });

    // ACC = A·ACC + P·V. Tensor cores only when the V tile is finite.
    phase(e, tid, [&](Emitter &n, Value t) {
      if (!ks.mmaK)
        return accumulateOnFMAs(n, t, tk);
      Value finite =
          arith::CmpFOp::create(n.b, n.loc, arith::CmpFPredicate::OEQ,
                                n.load(vFinite, n.c(0)), n.f(1.0f));
      auto branch = scf::IfOp::create(n.b, n.loc, TypeRange{}, finite,
                                      /*withElseRegion=*/true);
      OpBuilder::InsertionGuard guard(n.b);
      n.b.setInsertionPoint(branch.thenBlock()->getTerminator());
      accumulateOnTensorCores(n, t, tk);
      n.b.setInsertionPoint(branch.elseBlock()->getTerminator());
      accumulateOnFMAs(n, t, tk);
    });
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

  /// D = A·B + C on tensor cores for a [rows, cols] tile (rows a multiple
  /// of 16; cols padded to 8, depth to the mma's k): m16n8 sub-tiles, warp
  /// w taking sub-tiles w, w + warps, ...; each an mma.sync chain over the
  /// depth whose fragments hold, per the PTX ISA (lane l, group g = l / 4,
  /// t = l mod 4, e elements per 32-bit register):
  ///   A [16, k]: register r, element i at row g + 8 (r mod 2),
  ///              col t·e + i + 4e (r / 2)
  ///   B [k, 8]:  register r, element i at row t·e + i + 4e·r, col g
  ///   C, D [16, 8]: register r, element i at row g + 8 r, col 2 t + i
  /// a(row, k), b(k, col) and c(row, col) give the f32 operands (zero
  /// where padded); d(row, col, value) takes the results of sub-tiles
  /// that exist. The loops have the same bounds in every thread (mma.sync
  /// is a warp collective): a warp past the last sub-tile repeats it and
  /// passes nothing to d.
  using Operand = function_ref<Value(Emitter &, Value, Value)>;
  void mmaTiles(Emitter &n, Value t, int64_t rows, int64_t cols, int64_t depth,
                Operand a, Operand b, Operand c,
                function_ref<void(Emitter &, Value, Value, Value)> d) {
    const KernelShape &ks = shape;
    int64_t k = ks.mmaK, epr = k == 16 ? 2 : 1;
    int64_t warps = ks.threads / 32, colTiles = llvm::divideCeil(cols, 8);
    int64_t subTiles = (rows / 16) * colTiles;
    int64_t regsA = 16 * k / (32 * epr), regsB = 8 * k / (32 * epr);
    Type f32 = n.b.getF32Type();
    auto aTy = VectorType::get({regsA, epr}, mmaType);
    auto bTy = VectorType::get({regsB, epr}, mmaType);
    auto cTy = VectorType::get({2, 2}, f32);
    Value warp = n.div(t, n.c(32)), lane = n.rem(t, n.c(32));
    Value g = n.div(lane, n.c(4)), tq = n.rem(lane, n.c(4));
    Value te = n.mul(tq, n.c(epr));
    // tf32 operands were rounded as they were staged (roundToTf32).
    auto operand = [&](Emitter &x, Value v) -> Value {
      if (mmaType == f32)
        return v;
      return arith::TruncFOp::create(x.b, x.loc, mmaType, v);
    };
    // (row, col) of element (r, i) of the C/D fragment.
    auto cAt = [&](Emitter &x, Value row0, Value col0, int64_t r, int64_t i) {
      return std::make_pair(x.add(row0, x.add(g, x.c(8 * r))),
                            x.add(col0, x.add(x.mul(tq, x.c(2)), x.c(i))));
    };
    n.loop(
        n.c(0), n.c(llvm::divideCeil(subTiles, warps)), {},
        [&](Emitter &x, Value i, ValueRange) -> SmallVector<Value> {
          Value sub = x.add(warp, x.mul(i, x.c(warps)));
          Value clamped = x.min(sub, x.c(subTiles - 1));
          Value row0 = x.mul(x.div(clamped, x.c(colTiles)), x.c(16));
          Value col0 = x.mul(x.rem(clamped, x.c(colTiles)), x.c(8));
          SmallVector<Value> init;
          for (int64_t r = 0; r < 2; ++r)
            for (int64_t el = 0; el < 2; ++el) {
              auto [row, col] = cAt(x, row0, col0, r, el);
              init.push_back(c(x, row, col));
            }
          Value acc = vector::FromElementsOp::create(x.b, x.loc, cTy, init);
          Value result = x.loop(
              x.c(0), x.c(llvm::divideCeil(depth, k)), {acc},
              [&](Emitter &y, Value step,
                  ValueRange carried) -> SmallVector<Value> {
                Value k0 = y.mul(step, y.c(k));
                SmallVector<Value> as, bs;
                for (int64_t r = 0; r < regsA; ++r)
                  for (int64_t el = 0; el < epr; ++el)
                    as.push_back(operand(
                        y,
                        a(y, y.add(row0, y.add(g, y.c(8 * (r % 2)))),
                          y.add(k0, y.add(te, y.c(el + 4 * epr * (r / 2)))))));
                for (int64_t r = 0; r < regsB; ++r)
                  for (int64_t el = 0; el < epr; ++el)
                    bs.push_back(operand(
                        y, b(y, y.add(k0, y.add(te, y.c(el + 4 * epr * r))),
                             y.add(col0, g))));
                Value av = vector::FromElementsOp::create(y.b, y.loc, aTy, as);
                Value bv = vector::FromElementsOp::create(y.b, y.loc, bTy, bs);
                auto mma = nvgpu::MmaSyncOp::create(
                    y.b, y.loc, av, bv, carried[0], ArrayRef<int64_t>{16, 8, k},
                    /*tf32Enabled=*/k == 8);
                return {mma.getResult()};
              })[0];
          x.when(x.lt(sub, x.c(subTiles)), [&](Emitter &y) {
            for (int64_t r = 0; r < 2; ++r)
              for (int64_t el = 0; el < 2; ++el) {
                auto [row, col] = cAt(y, row0, col0, r, el);
                d(y, row, col,
                  vector::ExtractOp::create(y.b, y.loc, result,
                                            ArrayRef<int64_t>{r, el}));
              }
          });
          return {};
        });
  }

  /// Whether staged values are rounded to tf32 for the tensor cores.
  bool roundsToTf32() const { return shape.mmaK && mmaType && mmaType.isF32(); }

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
    if (!shape.mmaK)
      return scale;
    if (mmaType.isF16())
      return 1.0;
    int exp;
    std::frexp(scale, &exp);
    return std::ldexp(1.0, exp);
  }

  /// `v` where `inside`, else 0 (`v` read at a clamped, valid address).
  static Value zeroUnless(Emitter &x, Value inside, Value v) {
    return x.select(inside, v, x.f(0.0f));
  }

  /// S = scale·(Qs·Kᵀ) on tensor cores, then the score step per element.
  void scoresOnTensorCores(Emitter &n, Value t, const BlockTile &tile, Value j0,
                           Value tk) {
    const KernelShape &ks = shape;
    Value lastD = n.c(ks.dk - 1);
    mmaTiles(
        n, t, ks.tileQ, ks.tileK, ks.dk,
        [&](Emitter &x, Value row, Value d) {
          return zeroUnless(
              x, x.lt(d, x.c(ks.dk)),
              x.load(qs, x.at(row, ks.qStride(), x.min(d, lastD))));
        },
        [&](Emitter &x, Value d, Value jj) {
          return zeroUnless(
              x, x.lt(d, x.c(ks.dk)),
              x.load(kv, x.at(jj, ks.kvStride(), x.min(d, lastD))));
        },
        [&](Emitter &x, Value, Value) { return x.f(0.0f); },
        [&](Emitter &y, Value row, Value jj, Value dot) {
          Value raw = dot;
          if (double rest = scale / qScale(); rest != 1.0)
            raw = arith::MulFOp::create(y.b, y.loc, dot, y.f(rest));
          Value inside = y.andI(y.lt(jj, tk), y.lt(row, tile.rows));
          Value sc = score(y, tile, raw, row, y.add(j0, jj), inside);
          y.store(sc, s, y.at(row, ks.sStride(), jj));
        });
  }

  /// ACC = A·ACC + P·V on tensor cores: P [tile-q, tk] from the score
  /// tile, V [tk, Dv] from the KV tile, ACC in its per-thread slots.
  /// Only for V tiles without NaN or Inf: P is 0 for masked keys, and
  /// 0·NaN would reach rows that must not see them.
  void accumulateOnTensorCores(Emitter &n, Value t, Value tk) {
    const KernelShape &ks = shape;
    Value lastKey = n.c(ks.tileK - 1), lastD = n.c(ks.dv - 1);
    auto accAt = [&](Emitter &x, Value row, Value d) {
      Value owner =
          x.add(x.mul(x.rem(d, x.c(ks.chunks())), x.c(ks.tileQ)), row);
      return x.at(x.div(d, x.c(ks.chunks())), ks.threads, owner);
    };
    mmaTiles(
        n, t, ks.tileQ, ks.dv, ks.tileK,
        [&](Emitter &x, Value row, Value jj) {
          return zeroUnless(
              x, x.lt(jj, tk),
              x.load(s, x.at(row, ks.sStride(), x.min(jj, lastKey))));
        },
        [&](Emitter &x, Value jj, Value d) {
          return zeroUnless(x, x.andI(x.lt(jj, tk), x.lt(d, x.c(ks.dv))),
                            x.load(kv, x.at(x.min(jj, lastKey), ks.kvStride(),
                                            x.min(d, lastD))));
        },
        [&](Emitter &x, Value row, Value d) {
          Value old = x.load(acc, accAt(x, row, x.min(d, lastD)));
          Value scaled =
              arith::MulFOp::create(x.b, x.loc, old, x.load(rowScale, row));
          return zeroUnless(x, x.lt(d, x.c(ks.dv)), scaled);
        },
        [&](Emitter &y, Value row, Value d, Value sum) {
          y.when(y.lt(d, y.c(ks.dv)),
                 [&](Emitter &z) { z.store(sum, acc, accAt(z, row, d)); });
        });
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
  /// With `checkFinite`, a NaN or Inf clears vFinite (every writer
  /// writes the same 0).
  void loadTile(Emitter &e, Value tid, Value src, Value j0, Value tk, int64_t d,
                bool checkFinite = false) {
    forEachElement(e, tid, tk, d, [&](Emitter &x, Value jj, Value c) {
      LinalgBuilder xb{x.b, x.loc};
      Value val = xb.toF32(x.load(src, {x.c(0), x.add(j0, jj), x.c(0), c}));
      if (roundsToTf32())
        val = roundToTf32(x, val);
      x.store(val, kv, x.at(jj, shape.kvStride(), c));
      if (!checkFinite)
        return;
      // x - x is 0 exactly when x is finite.
      Value diff = arith::SubFOp::create(x.b, x.loc, val, val);
      Value finite = arith::CmpFOp::create(
          x.b, x.loc, arith::CmpFPredicate::OEQ, diff, x.f(0.0f));
      x.when(arith::XOrIOp::create(
                 x.b, x.loc, finite,
                 arith::ConstantOp::create(x.b, x.loc, x.b.getBoolAttr(true))),
             [&](Emitter &y) { y.store(y.f(0.0f), vFinite, y.c(0)); });
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
          // The row sum adds the weights the tensor cores multiply.
          if (roundsToTf32())
            p = roundToTf32(x, p);
          x.store(p, s, idx);
          return {arith::AddFOp::create(x.b, x.loc, l[0], p)};
        })[0];
    Value lOld = e.load(rowSum, r);
    Value lNew = math::FmaOp::create(e.b, e.loc, alpha, lOld, sum);
    e.store(lNew, rowSum, r);
    e.store(mNew, rowMax, r);
    e.store(alpha, rowScale, r);
  }
};

/// gpu.barrier declares no memory effects upstream, and ownership-based
/// buffer deallocation (which runs after this pass) rejects ops with
/// unknown effects. A barrier orders the block's memory accesses: model it
/// as reading and writing memory, which keeps it in place.
struct BarrierMemoryEffects
    : MemoryEffectOpInterface::ExternalModel<BarrierMemoryEffects,
                                             gpu::BarrierOp> {
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
      gpu::BarrierOp::attachInterface<BarrierMemoryEffects>(*ctx);
    });
  }

  /// The tile sizes for `op`, or a diagnostic. With tile-q = 0: the
  /// largest tile of at most 64 rows (and, for a static Sq, not beyond
  /// Sq's power of two) within 48 KiB, else within max-shared-memory.
  FailureOr<KernelShape> chooseShape(AttentionOp op, int64_t dk, int64_t dv,
                                     int64_t mmaK) {
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
      int64_t cap = 64;
      if (!ShapedType::isDynamic(sq) && tileK > 0)
        cap = std::min<int64_t>(
            cap, std::max<int64_t>(llvm::PowerOf2Ceil(std::max<int64_t>(sq, 1)),
                                   threads / tileK));
      // An mma.sync computes 16 rows.
      if (mmaK)
        cap = std::max<int64_t>(cap, 16);
      for (int64_t tq = 64; tq >= 1; tq /= 2)
        if (tq <= cap)
          candidates.push_back(tq);
    }
    for (int64_t limit : {std::min(kSharedBytes, budget), budget})
      for (int64_t tq : candidates) {
        KernelShape shape{tq, tileK, threads, dk, dv, mmaK};
        if (shape.valid(limit))
          return shape;
      }
    // Report the smallest tile that only lacks memory, if any.
    std::optional<KernelShape> last;
    for (int64_t tq : llvm::reverse(candidates)) {
      KernelShape shape{tq, tileK, threads, dk, dv, mmaK};
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
    diag << ": tile-q and tile-k must divide threads, threads / tile-k must "
            "divide tile-q, ";
    if (mmaK)
      diag << "with precision = tf32 tile-q must be a multiple of 16 and "
              "tile-k of 8, ";
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
    // (m16n8k8). bf16 values are exact in tf32, so their products are the
    // same; LLVM 22's nvgpu-to-nvvm cannot yet deduce the PTX types of a
    // bf16 mma.sync.
    int64_t mmaK = 0;
    Type mmaType;
    if (precision == "tf32") {
      Type qe = qTy.getElementType(), ke = kTy.getElementType();
      bool half = qe == ke && qe.isF16();
      mmaK = half ? 16 : 8;
      mmaType = half ? qe : Type(Float32Type::get(op.getContext()));
    }
    FailureOr<KernelShape> shape = chooseShape(op, dk, dv, mmaK);
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

    Type f32 = b.getF32Type();
    SmallVector<int64_t> sizes = {
        shape->qElems(), shape->kvElems(), shape->sElems(), shape->accElems(),
        shape->tileQ,    shape->tileQ,     shape->tileQ};
    if (shape->mmaK)
      sizes.push_back(1);
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
      for (int64_t n : sizes) {
        auto ty = MemRefType::get({n}, f32, MemRefLayoutAttrInterface(), space);
        tilesMem.push_back(memref::ViewOp::create(x.b, loc, ty, raw,
                                                  in.c(offset), ValueRange{}));
        offset += 4 * n;
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
  /// many as bring the grid to about kSplitGridBlocks blocks, each chunk
  /// at least kMinTilesPerChunk key tiles; 1 (no split) when the grid is
  /// large enough already or a size is dynamic.
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
    int64_t blocks = b * hq * llvm::divideCeil(sq, shape.tileQ);
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
    kernel.qs = tiles[0];
    kernel.kv = tiles[1];
    kernel.s = tiles[2];
    kernel.acc = tiles[3];
    kernel.rowMax = tiles[4];
    kernel.rowSum = tiles[5];
    kernel.rowScale = tiles[6];
    if (tiles.size() > 7)
      kernel.vFinite = tiles[7];
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

//===- TilingInterfaceImpl.cpp - tiling posenc.attention and rope ---------===//
//
// The iteration domain of attention is (b, h, i, j, d, e): batch, query
// heads, queries, keys, key head dim, value head dim. b, h, i and e are
// parallel; j and d are reductions over which the softmax is not
// decomposable in this op (a tile must hold every key). A tile is the same
// op on slices of q, k, v and the bias, with `offsets` carrying the tile's
// first (b, h, i) so score_mod keeps seeing the untiled op's indices, and
// `diagonal` moved by the tile's first query so the causal mask stays
// where it was.
//
// posenc.rope is tileable too (all parallel, D kept whole), so attention
// can take its keys from a rope fused into the key loop.
//
//===----------------------------------------------------------------------===//

#include "posenc/Dialect/Posenc/Transforms/TilingInterfaceImpl.h"

#include "posenc/Dialect/Posenc/IR/AttentionSemantics.h"
#include "posenc/Dialect/Posenc/IR/PosencDialect.h"
#include "posenc/Dialect/Posenc/IR/PosencOps.h"
#include "posenc/Dialect/Posenc/Utils/LinalgBuilder.h"

#include "mlir/Dialect/Affine/IR/AffineOps.h"
#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Arith/Utils/Utils.h"
#include "mlir/Dialect/Math/IR/Math.h"
#include "mlir/Dialect/MemRef/IR/MemRef.h"
#include "mlir/Dialect/Tensor/IR/Tensor.h"
#include "mlir/Dialect/Utils/StaticValueUtils.h"
#include "mlir/Dialect/Utils/StructuredOpsUtils.h"
#include "mlir/Interfaces/InferTypeOpInterface.h"
#include "mlir/Interfaces/TilingInterface.h"

using namespace mlir;
using namespace mlir::posenc;

namespace {
using IT = utils::IteratorType;

enum Dim : unsigned { kB, kH, kI, kJ, kD, kE };

/// Whether `a` and `b` are the same size: equal constants or values, or
/// the same dim of the same tensor or buffer (getIterationDomain builds a
/// new dim op on each call).
bool sameSize(OpFoldResult a, OpFoldResult b) {
  if (isEqualConstantIntOrValue(a, b))
    return true;
  auto va = dyn_cast<Value>(a), vb = dyn_cast<Value>(b);
  if (!va || !vb)
    return false;
  if (auto da = va.getDefiningOp<tensor::DimOp>())
    if (auto db = vb.getDefiningOp<tensor::DimOp>())
      return da.getSource() == db.getSource() &&
             isEqualConstantIntOrValue(da.getDimension(), db.getDimension());
  if (auto da = va.getDefiningOp<memref::DimOp>())
    if (auto db = vb.getDefiningOp<memref::DimOp>())
      return da.getSource() == db.getSource() &&
             isEqualConstantIntOrValue(da.getDimension(), db.getDimension());
  return false;
}

/// Whether the tile [offset, offset + size) covers all of `full`.
bool coversAll(OpFoldResult offset, OpFoldResult size, OpFoldResult full) {
  return isZeroInteger(offset) && sameSize(size, full);
}

/// The kv-head slice that query heads [h0, h0 + size) read, when the tile
/// keeps the GQA mapping h -> h / (Hq / Hkv) inside it: the head tile
/// divides or is a multiple of the group.
FailureOr<std::pair<OpFoldResult, OpFoldResult>>
kvHeadSlice(OpBuilder &b, Location loc, int64_t hq, int64_t hkv,
            OpFoldResult fullHq, OpFoldResult fullHkv, OpFoldResult h0,
            OpFoldResult size) {
  if (coversAll(h0, size, fullHq))
    return std::make_pair(OpFoldResult(b.getIndexAttr(0)), fullHkv);
  if (ShapedType::isDynamic(hq) || ShapedType::isDynamic(hkv))
    return failure();
  int64_t group = hq / hkv;
  if (group == 1)
    return std::make_pair(h0, size);
  std::optional<int64_t> heads = getConstantIntValue(size);
  if (!heads || (*heads % group != 0 && group % *heads != 0))
    return failure();
  AffineExpr s0 = b.getAffineSymbolExpr(0);
  OpFoldResult first =
      affine::makeComposedFoldedAffineApply(b, loc, s0.floorDiv(group), {h0});
  int64_t count = *heads % group == 0 ? *heads / group : 1;
  return std::make_pair(first, OpFoldResult(b.getIndexAttr(count)));
}

/// The slices of one tile's operands, shared by both ops.
struct TileOperands {
  Value q, k, v, bias, sinks, diagonal;
  SmallVector<Value> offsets;
  SmallVector<Operation *> slices;
};

/// The keys that queries [i0, i0 + rows) of a causal op can see:
/// [0, max(0, min(Sk, i0 + rows + diagonal))).
template <typename OpT>
OpFoldResult causalKeyLimit(OpT op, OpBuilder &b, OpFoldResult i0,
                            OpFoldResult rows) {
  Location loc = op.getLoc();
  MLIRContext *ctx = b.getContext();
  OpFoldResult sk = isa<MemRefType>(op.getK().getType())
                        ? memref::getMixedSize(b, loc, op.getK(), 1)
                        : tensor::getMixedSize(b, loc, op.getK(), 1);
  AffineExpr s0, s1, s2;
  bindSymbols(ctx, s0, s1, s2);
  OpFoldResult last = affine::makeComposedFoldedAffineApply(
      b, loc, s0 + s1 + s2, {i0, rows, op.buildDiagonal(b, loc)});
  OpFoldResult seen = affine::makeComposedFoldedAffineMin(
      b, loc, AffineMap::get(0, 2, {s0, s1}, ctx), {last, sk});
  return affine::makeComposedFoldedAffineMax(
      b, loc, AffineMap::get(0, 1, {s0, getAffineConstantExpr(0, ctx)}, ctx),
      {seen});
}

/// The first key that queries [i0, ...) of an op with a sliding window of
/// W keys and/or chunks of C keys can see: the largest of 0, i0 +
/// diagonal - W + 1 and floor((i0 + diagonal) / C)·C, at most `end`.
template <typename OpT>
OpFoldResult bandKeyStart(OpT op, OpBuilder &b, OpFoldResult i0,
                          OpFoldResult end) {
  Location loc = op.getLoc();
  MLIRContext *ctx = b.getContext();
  AffineExpr s0, s1;
  bindSymbols(ctx, s0, s1);
  SmallVector<AffineExpr> starts = {getAffineConstantExpr(0, ctx)};
  if (std::optional<int64_t> window = op.getWindow())
    starts.push_back(s0 + s1 - (*window - 1));
  if (std::optional<int64_t> chunk = op.getChunk())
    starts.push_back((s0 + s1).floorDiv(*chunk) * *chunk);
  OpFoldResult first = affine::makeComposedFoldedAffineMax(
      b, loc, AffineMap::get(0, 2, starts, ctx),
      {i0, op.buildDiagonal(b, loc)});
  // A tile of attention has no key offset: with chunks it starts at a chunk
  // boundary, where its local key positions keep the chunks' phase.
  if (std::optional<int64_t> chunk = op.getChunk())
    first = affine::makeComposedFoldedAffineApply(
        b, loc, s0.floorDiv(*chunk) * *chunk, {first});
  return affine::makeComposedFoldedAffineMin(
      b, loc, AffineMap::get(0, 2, {s0, s1}, ctx), {first, end});
}

template <typename OpT>
SmallVector<Range> attentionDomain(OpT op, OpBuilder &b) {
  Location loc = op.getLoc();
  auto size = [&](Value t, int64_t d) -> OpFoldResult {
    if (isa<MemRefType>(t.getType()))
      return memref::getMixedSize(b, loc, t, d);
    return tensor::getMixedSize(b, loc, t, d);
  };
  OpFoldResult zero = b.getIndexAttr(0), one = b.getIndexAttr(1);
  SmallVector<OpFoldResult> sizes = {size(op.getQ(), 0), size(op.getQ(), 2),
                                     size(op.getQ(), 1), size(op.getK(), 1),
                                     size(op.getQ(), 3), size(op.getV(), 3)};
  // online_attention's keys past the causal limit of its last query are
  // masked for every row: by the mask rule they change nothing, so its
  // key loop stops there (FlashAttention's skip of blocks above the
  // diagonal).
  if (std::is_same_v<OpT, OnlineAttentionOp> && op.getCausal())
    sizes[kJ] = causalKeyLimit(op, b, b.getIndexAttr(0), sizes[kI]);
  return llvm::map_to_vector(sizes, [&](OpFoldResult s) {
    return Range{zero, s, one};
  });
}

/// Slices q, k, v and the bias for the tile (offsets, sizes) of the
/// iteration domain, with the tile's causal diagonal (moved by its first
/// query and key) and score_mod offsets (the untiled op's plus the tile's
/// first b, h, i and, for online_attention, j).
template <typename OpT>
FailureOr<TileOperands>
sliceOperands(OpT op, OpBuilder &b, ArrayRef<OpFoldResult> offsets,
              ArrayRef<OpFoldResult> sizes, bool keysTiled) {
  Location loc = op.getLoc();
  SmallVector<Range> domain = attentionDomain(op, b);
  FailureOr<std::pair<OpFoldResult, OpFoldResult>> kv = kvHeadSlice(
      b, loc, op.getQ().getType().getDimSize(2),
      op.getK().getType().getDimSize(2),
      tensor::getMixedSize(b, loc, op.getQ(), 2),
      tensor::getMixedSize(b, loc, op.getK(), 2), offsets[kH], sizes[kH]);
  if (failed(kv))
    return op->emitOpError()
           << "head tile must be static and divide or be a multiple of the "
              "GQA group (Hq / Hkv), with static head counts";
  TileOperands t;
  auto slice = [&](Value src, ArrayRef<OpFoldResult> offs,
                   ArrayRef<OpFoldResult> szs) -> Value {
    SmallVector<OpFoldResult> strides(offs.size(), b.getIndexAttr(1));
    auto s = tensor::ExtractSliceOp::create(b, loc, src, offs, szs, strides);
    t.slices.push_back(s);
    return s.getResult();
  };
  OpFoldResult zero = b.getIndexAttr(0);
  OpFoldResult j0 = keysTiled ? offsets[kJ] : zero;
  OpFoldResult js = keysTiled ? sizes[kJ] : domain[kJ].size;
  // A causal tile of queries reads only the keys they can see: up to the
  // causal limit of its last query and, with a sliding window or chunks,
  // from the band start of its first (the tile's keys then begin at j0;
  // attention passes score_mod no key offset, so a score_mod keeps j0 = 0).
  if (!keysTiled && op.getCausal()) {
    js = causalKeyLimit(op, b, offsets[kI], sizes[kI]);
    if ((op.getWindow() || op.getChunk()) && !op.getScoreModBlock()) {
      j0 = bandKeyStart(op, b, offsets[kI], js);
      AffineExpr s0, s1;
      bindSymbols(b.getContext(), s0, s1);
      js = affine::makeComposedFoldedAffineApply(b, loc, s0 - s1, {js, j0});
    }
  }
  t.q = slice(op.getQ(), {offsets[kB], offsets[kI], offsets[kH], zero},
              {sizes[kB], sizes[kI], sizes[kH], domain[kD].size});
  t.k = slice(op.getK(), {offsets[kB], j0, kv->first, zero},
              {sizes[kB], js, kv->second, domain[kD].size});
  t.v = slice(op.getV(), {offsets[kB], j0, kv->first, offsets[kE]},
              {sizes[kB], js, kv->second, sizes[kE]});
  if (Value full = op.getBias()) {
    // Right-aligned broadcast to (b, h, i, j); a static 1 stays 1.
    auto ty = cast<RankedTensorType>(full.getType());
    OpFoldResult tileOffsets[4] = {offsets[kB], offsets[kH], offsets[kI], j0};
    OpFoldResult tileSizes[4] = {sizes[kB], sizes[kH], sizes[kI], js};
    SmallVector<OpFoldResult> offs, szs;
    for (int64_t d = 0, r = ty.getRank(); d < r; ++d) {
      bool broadcast = ty.getDimSize(d) == 1;
      offs.push_back(broadcast ? zero : tileOffsets[4 - r + d]);
      szs.push_back(broadcast ? OpFoldResult(b.getIndexAttr(1))
                              : tileSizes[4 - r + d]);
    }
    t.bias = slice(full, offs, szs);
  }
  if constexpr (std::is_same_v<OpT, AttentionOp>)
    if (Value sinks = op.getSinks())
      t.sinks = slice(sinks, {offsets[kH]}, {sizes[kH]});
  // Key j of the tile is j0 + j: the diagonal moves by i0 - j0.
  if (op.getCausal()) {
    AffineExpr d0, s0, s1;
    bindDims(b.getContext(), d0);
    bindSymbols(b.getContext(), s0, s1);
    t.diagonal = getValueOrCreateConstantIndexOp(
        b, loc,
        affine::makeComposedFoldedAffineApply(
            b, loc, AffineMap::get(1, 2, d0 + s0 - s1),
            {op.buildDiagonal(b, loc), offsets[kI], j0}));
  }
  // score_mod's global indices, and the key position that keeps chunk
  // boundaries in place.
  if (op.getScoreModBlock() || op.getChunk()) {
    SmallVector<OpFoldResult> first = {offsets[kB], offsets[kH], offsets[kI]};
    if (keysTiled)
      first.push_back(j0);
    for (auto [n, o] : llvm::enumerate(first)) {
      Value v = getValueOrCreateConstantIndexOp(b, loc, o);
      if (!op.getOffsets().empty())
        v = arith::AddIOp::create(b, loc, op.getOffsets()[n], v);
      t.offsets.push_back(v);
    }
  }
  return t;
}

/// The tile's score_mod: a copy of the untiled op's.
void cloneScoreMod(OpBuilder &b, Region &from, Region &to) {
  // (cloneRegionBefore reads the first block when a listener is set.)
  if (!from.empty())
    b.cloneRegionBefore(from, to, to.end());
}

/// The iteration domain both ops share.
template <typename Model, typename OpT>
struct AttentionDomain : TilingInterface::ExternalModel<Model, OpT> {
  SmallVector<IT> getLoopIteratorTypes(Operation *) const {
    return {IT::parallel,  IT::parallel,  IT::parallel,
            IT::reduction, IT::reduction, IT::parallel};
  }

  SmallVector<Range> getIterationDomain(Operation *op, OpBuilder &b) const {
    return attentionDomain(cast<OpT>(op), b);
  }
};

struct AttentionTilingInterface
    : AttentionDomain<AttentionTilingInterface, AttentionOp> {
  FailureOr<TilingResult>
  getTiledImplementation(Operation *op, OpBuilder &b,
                         ArrayRef<OpFoldResult> offsets,
                         ArrayRef<OpFoldResult> sizes) const {
    auto attn = cast<AttentionOp>(op);
    if (attn.hasBufferSemantics())
      return op->emitOpError()
             << "tiling takes the tensor form (the buffer form has no result "
                "to tile)";
    SmallVector<Range> domain = getIterationDomain(op, b);
    if (!coversAll(offsets[kJ], sizes[kJ], domain[kJ].size) ||
        !coversAll(offsets[kD], sizes[kD], domain[kD].size))
      return op->emitOpError()
             << "cannot be tiled along keys or the key head dim: its softmax "
                "spans every key of a row (tile posenc.online_attention)";
    FailureOr<TileOperands> t =
        sliceOperands(attn, b, offsets, sizes, /*keysTiled=*/false);
    if (failed(t))
      return failure();
    SmallVector<OpFoldResult> outOffsets = {offsets[kB], offsets[kI],
                                            offsets[kH], offsets[kE]};
    SmallVector<OpFoldResult> outSizes = {sizes[kB], sizes[kI], sizes[kH],
                                          sizes[kE]};
    auto init = tensor::ExtractSliceOp::create(
        b, op->getLoc(), attn.getInit(), outOffsets, outSizes,
        SmallVector<OpFoldResult>(4, b.getIndexAttr(1)));
    t->slices.push_back(init);
    auto tiled = AttentionOp::create(
        b, op->getLoc(), t->q, t->k, t->v, t->bias, t->sinks, t->diagonal,
        t->offsets, init, attn.getScaleAttr(), attn.getCausalAttr(),
        attn.getWindowAttr(), attn.getChunkAttr(), attn.getSoftcapAttr());
    // An omitted scale defaults from Dk, which tiling never changes.
    cloneScoreMod(b, attn.getScoreMod(), tiled.getScoreMod());
    return TilingResult{{tiled}, {tiled.getResult()}, t->slices};
  }

  LogicalResult getResultTilePosition(
      Operation *, OpBuilder &, unsigned, ArrayRef<OpFoldResult> offsets,
      ArrayRef<OpFoldResult> sizes, SmallVector<OpFoldResult> &resultOffsets,
      SmallVector<OpFoldResult> &resultSizes) const {
    // The result is [B, Sq, Hq, Dv]: dims (b, i, h, e).
    resultOffsets = {offsets[kB], offsets[kI], offsets[kH], offsets[kE]};
    resultSizes = {sizes[kB], sizes[kI], sizes[kH], sizes[kE]};
    return success();
  }

  FailureOr<TilingResult>
  generateResultTileValue(Operation *op, OpBuilder &b, unsigned,
                          ArrayRef<OpFoldResult> offsets,
                          ArrayRef<OpFoldResult> sizes) const {
    SmallVector<Range> domain = getIterationDomain(op, b);
    OpFoldResult zero = b.getIndexAttr(0);
    return getTiledImplementation(
        op, b, {offsets[0], offsets[2], offsets[1], zero, zero, offsets[3]},
        {sizes[0], sizes[2], sizes[1], domain[kJ].size, domain[kD].size,
         sizes[3]});
  }
};

/// A block of online_attention: its operands sliced for the tile and its
/// state n (acc, max, sum) from `state(n, slices)`, which may add the slices
/// it makes. Key and value head dims are never tiled: every value dim of a
/// row shares its max and sum, and a tile of them would rescale the state
/// once per tile.
FailureOr<TilingResult> tileOnlineAttention(
    OnlineAttentionOp attn, OpBuilder &b, ArrayRef<OpFoldResult> offsets,
    ArrayRef<OpFoldResult> sizes,
    function_ref<Value(unsigned, SmallVectorImpl<Operation *> &)> state) {
  SmallVector<Range> domain = attentionDomain(attn, b);
  if (!coversAll(offsets[kD], sizes[kD], domain[kD].size) ||
      !coversAll(offsets[kE], sizes[kE], domain[kE].size))
    return attn.emitOpError()
           << "cannot be tiled along the key or value head dims: a row's "
              "max and sum are shared by all of them";
  FailureOr<TileOperands> t =
      sliceOperands(attn, b, offsets, sizes, /*keysTiled=*/true);
  if (failed(t))
    return failure();
  Value acc = state(0, t->slices), max = state(1, t->slices),
        sum = state(2, t->slices);
  auto tiled = OnlineAttentionOp::create(
      b, attn.getLoc(), TypeRange{acc.getType(), max.getType(), sum.getType()},
      t->q, t->k, t->v, t->bias, t->diagonal, t->offsets, acc, max, sum,
      attn.getScaleAttr(), attn.getCausalAttr(), attn.getWindowAttr(),
      attn.getChunkAttr(), attn.getSoftcapAttr());
  cloneScoreMod(b, attn.getScoreMod(), tiled.getScoreMod());
  return TilingResult{
      {tiled}, SmallVector<Value>(tiled->getResults()), t->slices};
}

/// online_attention: keys are a reduction that accumulates into outs, so
/// tiling them is the FlashAttention loop over key blocks.
struct OnlineAttentionTilingInterface
    : AttentionDomain<OnlineAttentionTilingInterface, OnlineAttentionOp> {
  FailureOr<TilingResult>
  getTiledImplementation(Operation *op, OpBuilder &b,
                         ArrayRef<OpFoldResult> offsets,
                         ArrayRef<OpFoldResult> sizes) const {
    auto attn = cast<OnlineAttentionOp>(op);
    Location loc = op->getLoc();
    OpFoldResult dv = tensor::getMixedSize(b, loc, attn.getAcc(), 3);
    Value inits[3] = {attn.getAcc(), attn.getMax(), attn.getSum()};
    return tileOnlineAttention(
        attn, b, offsets, sizes,
        [&](unsigned n, SmallVectorImpl<Operation *> &slices) -> Value {
          SmallVector<OpFoldResult> offs = {offsets[kB], offsets[kI],
                                            offsets[kH]};
          SmallVector<OpFoldResult> szs = {sizes[kB], sizes[kI], sizes[kH]};
          if (n == 0) {
            offs.push_back(b.getIndexAttr(0));
            szs.push_back(dv);
          }
          SmallVector<OpFoldResult> strides(offs.size(), b.getIndexAttr(1));
          auto s = tensor::ExtractSliceOp::create(b, loc, inits[n], offs, szs,
                                                  strides);
          slices.push_back(s);
          return s.getResult();
        });
  }

  LogicalResult
  getResultTilePosition(Operation *, OpBuilder &, unsigned resultNumber,
                        ArrayRef<OpFoldResult> offsets,
                        ArrayRef<OpFoldResult> sizes,
                        SmallVector<OpFoldResult> &resultOffsets,
                        SmallVector<OpFoldResult> &resultSizes) const {
    // acc is [B, Sq, Hq, Dv] (dims b, i, h, e); max and sum [B, Sq, Hq].
    resultOffsets = {offsets[kB], offsets[kI], offsets[kH]};
    resultSizes = {sizes[kB], sizes[kI], sizes[kH]};
    if (resultNumber == 0) {
      resultOffsets.push_back(offsets[kE]);
      resultSizes.push_back(sizes[kE]);
    }
    return success();
  }

  FailureOr<TilingResult>
  generateResultTileValue(Operation *op, OpBuilder &b, unsigned,
                          ArrayRef<OpFoldResult> offsets,
                          ArrayRef<OpFoldResult> sizes) const {
    SmallVector<Range> domain = getIterationDomain(op, b);
    OpFoldResult zero = b.getIndexAttr(0);
    return getTiledImplementation(
        op, b, {offsets[0], offsets[2], offsets[1], zero, zero, zero},
        {sizes[0], sizes[2], sizes[1], domain[kJ].size, domain[kD].size,
         domain[kE].size});
  }
};

/// Split-K (flash-decoding): the keys of online_attention split into K
/// chunks that run in parallel, each producing its own partial state
/// (acc, max, sum) from (0, -inf, 0); the partial states are then merged
/// with the op's outs, each rescaled to the common max. Only the
/// outer-parallel strategy (upstream tile_reduction_using_forall): a
/// partial state per key position, as the outer-reduction strategy would
/// need, is not a state online_attention keeps.
struct OnlineAttentionPartialReduction
    : PartialReductionOpInterface::ExternalModel<
          OnlineAttentionPartialReduction, OnlineAttentionOp> {
  /// (acc, max, sum) of every chunk: [K, B, Sq, Hq, Dv] and [K, B, Sq, Hq],
  /// chunk-major so each chunk's state is as contiguous as the op's (a
  /// chunk slot innermost would give the state a stride of K, and every
  /// key step a strided copy of it in and out).
  FailureOr<SmallVector<Value>> generateInitialTensorForPartialReduction(
      Operation *op, OpBuilder &b, Location loc, ArrayRef<OpFoldResult> sizes,
      const SetVector<unsigned> &reductionDims) const {
    if (!isKeysOnly(reductionDims))
      return op->emitOpError() << "splits only its keys into partial states";
    LinalgBuilder e{b, loc, cast<OnlineAttentionOp>(op).getComputeType()};
    SmallVector<OpFoldResult> rows = {sizes[kJ], sizes[kB], sizes[kI],
                                      sizes[kH]};
    SmallVector<OpFoldResult> accSizes = rows;
    accSizes.push_back(sizes[kE]);
    return SmallVector<Value>{
        e.filled(accSizes, e.cCompute(0.0)),
        e.filled(rows, e.cCompute(-std::numeric_limits<double>::infinity())),
        e.filled(rows, e.cCompute(0.0))};
  }

  FailureOr<TilingResult>
  tileToPartialReduction(Operation *op, OpBuilder &b, Location loc,
                         ReductionTilingStrategy strategy, ValueRange init,
                         ArrayRef<OpFoldResult> offsets,
                         ArrayRef<OpFoldResult> sizes,
                         const SetVector<unsigned> &reductionDims,
                         ArrayRef<OpFoldResult> splitReductionIvs) const {
    auto attn = cast<OnlineAttentionOp>(op);
    if (strategy != ReductionTilingStrategy::PartialReductionOuterParallel ||
        !isKeysOnly(reductionDims))
      return op->emitOpError() << "splits its keys only into parallel chunks "
                                  "(tile_reduction_using_forall)";
    // This chunk's state: its slot of the partial states, the chunk dim
    // collapsed into the batch dim. (Not a rank-reducing slice: with unit
    // batch or query dims, canonicalization may drop another unit dim than
    // the chunk's.)
    return tileOnlineAttention(
        attn, b, offsets, sizes,
        [&](unsigned n, SmallVectorImpl<Operation *> &slices) -> Value {
          SmallVector<OpFoldResult> offs, szs;
          positionInPartial(b, n, offsets, sizes, splitReductionIvs[0], offs,
                            szs);
          SmallVector<OpFoldResult> strides(offs.size(), b.getIndexAttr(1));
          auto slice = tensor::ExtractSliceOp::create(b, loc, init[n], offs,
                                                      szs, strides);
          slices.push_back(slice);
          int64_t rank = szs.size();
          SmallVector<ReassociationIndices> groups = {{0, 1}};
          for (int64_t d = 2; d < rank; ++d)
            groups.push_back({d});
          return tensor::CollapseShapeOp::create(b, loc, slice, groups);
        });
  }

  /// M = max(m, max_c m_c); every state rescaled to M and summed:
  /// sum = α·sum + Σ_c α_c·sum_c, acc = α·acc + Σ_c α_c·acc_c.
  FailureOr<MergeResult>
  mergeReductions(Operation *op, OpBuilder &b, Location loc, ValueRange partial,
                  const SetVector<unsigned> &reductionDims) const {
    auto attn = cast<OnlineAttentionOp>(op);
    LinalgBuilder e{b, loc};
    MLIRContext *ctx = b.getContext();
    auto d = [&](unsigned i) { return getAffineDimExpr(i, ctx); };
    AffineMap id3 = b.getMultiDimIdentityMap(3),
              id4 = b.getMultiDimIdentityMap(4);
    // Merge loops: the rows (and Dv) parallel, the chunk innermost.
    AffineMap rows4 = AffineMap::get(4, 0, {d(0), d(1), d(2)}, ctx);
    AffineMap state4 = AffineMap::get(4, 0, {d(3), d(0), d(1), d(2)}, ctx);
    AffineMap acc5 = AffineMap::get(5, 0, {d(0), d(1), d(2), d(3)}, ctx);
    AffineMap partialAcc5 =
        AffineMap::get(5, 0, {d(4), d(0), d(1), d(2), d(3)}, ctx);
    AffineMap chunk5 = AffineMap::get(5, 0, {d(4), d(0), d(1), d(2)}, ctx);
    AffineMap rows5 = AffineMap::get(5, 0, {d(0), d(1), d(2)}, ctx);
    SmallVector<IT> par3(3, IT::parallel), par4(4, IT::parallel);
    SmallVector<IT> red4 = {IT::parallel, IT::parallel, IT::parallel,
                            IT::reduction};
    SmallVector<IT> red5 = {IT::parallel, IT::parallel, IT::parallel,
                            IT::parallel, IT::reduction};
    SmallVector<Operation *> ops;
    auto track = [&](Value v) {
      ops.push_back(v.getDefiningOp());
      return v;
    };
    Type stateTy = attn.getMax().getType(), accTy = attn.getAcc().getType();
    Value max = track(e.generic(
        stateTy, partial[1], e.castTo(attn.getMax(), stateTy), {state4, rows4},
        red4, [&](OpBuilder &nb, Location nl, ValueRange args) {
          yieldValues(nb, nl, attention::combineMax(nb, nl, args[0], args[1]));
        }));
    // The op's own state, rescaled to the merged max.
    Value sum = track(e.generic(
        stateTy, {attn.getMax(), max}, attn.getSum(), {id3, id3, id3}, par3,
        [&](OpBuilder &nb, Location nl, ValueRange args) {
          Value alpha = attention::rescaleFactor(nb, nl, args[0], args[1]);
          yieldValues(nb, nl, arith::MulFOp::create(nb, nl, alpha, args[2]));
        }));
    sum = track(e.generic(
        stateTy, {partial[2], partial[1], max}, sum,
        {state4, state4, rows4, rows4}, red4,
        [&](OpBuilder &nb, Location nl, ValueRange args) {
          Value alpha = attention::rescaleFactor(nb, nl, args[1], args[2]);
          yieldValues(nb, nl,
                      math::FmaOp::create(nb, nl, alpha, args[0], args[3]));
        }));
    Value acc = track(e.generic(
        accTy, {attn.getMax(), max}, attn.getAcc(), {rows4, rows4, id4}, par4,
        [&](OpBuilder &nb, Location nl, ValueRange args) {
          Value alpha = attention::rescaleFactor(nb, nl, args[0], args[1]);
          yieldValues(nb, nl, arith::MulFOp::create(nb, nl, alpha, args[2]));
        }));
    acc = track(e.generic(
        accTy, {partial[0], partial[1], max}, acc,
        {partialAcc5, chunk5, rows5, acc5}, red5,
        [&](OpBuilder &nb, Location nl, ValueRange args) {
          Value alpha = attention::rescaleFactor(nb, nl, args[1], args[2]);
          yieldValues(nb, nl,
                      math::FmaOp::create(nb, nl, alpha, args[0], args[3]));
        }));
    return MergeResult{ops, {acc, max, sum}};
  }

  LogicalResult getPartialResultTilePosition(
      Operation *, OpBuilder &b, unsigned resultNumber,
      ReductionTilingStrategy strategy, ArrayRef<OpFoldResult> offsets,
      ArrayRef<OpFoldResult> sizes, const SetVector<unsigned> &reductionDims,
      ArrayRef<OpFoldResult> splitReductionIvs,
      SmallVector<OpFoldResult> &resultOffsets,
      SmallVector<OpFoldResult> &resultSizes) const {
    if (strategy != ReductionTilingStrategy::PartialReductionOuterParallel ||
        !isKeysOnly(reductionDims))
      return failure();
    positionInPartial(b, resultNumber, offsets, sizes, splitReductionIvs[0],
                      resultOffsets, resultSizes);
    return success();
  }

private:
  static bool isKeysOnly(const SetVector<unsigned> &reductionDims) {
    return reductionDims.size() == 1 && reductionDims.front() == kJ;
  }

  /// Where chunk `chunk`'s state `n` (acc, max, sum) sits in the partial
  /// states: the rows of the tile, all of Dv for acc, one chunk slot.
  static void positionInPartial(OpBuilder &b, unsigned n,
                                ArrayRef<OpFoldResult> offsets,
                                ArrayRef<OpFoldResult> sizes,
                                OpFoldResult chunk,
                                SmallVector<OpFoldResult> &offs,
                                SmallVector<OpFoldResult> &szs) {
    offs = {chunk, offsets[kB], offsets[kI], offsets[kH]};
    szs = {b.getIndexAttr(1), sizes[kB], sizes[kI], sizes[kH]};
    if (n == 0) {
      offs.push_back(offsets[kE]);
      szs.push_back(sizes[kE]);
    }
  }
};

/// posenc.rope: every element of x is rotated with its pair along D, so the
/// domain (b, s, h, d) is parallel and a tile keeps D whole. Positions are
/// sliced with the tile; a scaling that reads the largest position of the
/// run (dynamic NTK, longrope choosing its table) cannot be tiled along B
/// or S, which would take that maximum over the tile only.
struct RopeTilingInterface
    : TilingInterface::ExternalModel<RopeTilingInterface, RopeOp> {
  SmallVector<IT> getLoopIteratorTypes(Operation *) const {
    return SmallVector<IT>(4, IT::parallel);
  }

  SmallVector<Range> getIterationDomain(Operation *op, OpBuilder &b) const {
    Value x = cast<RopeOp>(op).getX();
    SmallVector<Range> domain;
    for (OpFoldResult size : tensor::getMixedSizes(b, op->getLoc(), x))
      domain.push_back({b.getIndexAttr(0), size, b.getIndexAttr(1)});
    return domain;
  }

  FailureOr<TilingResult>
  getTiledImplementation(Operation *op, OpBuilder &b,
                         ArrayRef<OpFoldResult> offsets,
                         ArrayRef<OpFoldResult> sizes) const {
    auto rope = cast<RopeOp>(op);
    Location loc = op->getLoc();
    SmallVector<Range> domain = getIterationDomain(op, b);
    if (!coversAll(offsets[3], sizes[3], domain[3].size))
      return op->emitOpError()
             << "cannot be tiled along the head dim: pairs span it";
    if (rope.getScalingOrNone().dependsOnPositions() &&
        (!coversAll(offsets[0], sizes[0], domain[0].size) ||
         !coversAll(offsets[1], sizes[1], domain[1].size)))
      return op->emitOpError()
             << "cannot be tiled along batch or positions: its "
             << stringifyRopeScalingKind(rope.getScalingOrNone().getKind())
             << " scaling reads the largest position of the whole run";
    OpFoldResult one = b.getIndexAttr(1);
    auto x = tensor::ExtractSliceOp::create(b, loc, rope.getX(), offsets, sizes,
                                            SmallVector<OpFoldResult>(4, one));
    // pos is [S] or [B, S], with M-RoPE's axis dim in front, kept whole.
    Value pos = rope.getPos();
    auto posTy = cast<RankedTensorType>(pos.getType());
    bool axes = rope.getMropeSection().has_value();
    SmallVector<OpFoldResult> posOffsets, posSizes;
    if (axes) {
      posOffsets.push_back(b.getIndexAttr(0));
      posSizes.push_back(b.getIndexAttr(posTy.getDimSize(0)));
    }
    if (posTy.getRank() == 2 + int64_t(axes)) {
      posOffsets.push_back(offsets[0]);
      posSizes.push_back(sizes[0]);
    }
    posOffsets.push_back(offsets[1]);
    posSizes.push_back(sizes[1]);
    auto posSlice = tensor::ExtractSliceOp::create(
        b, loc, pos, posOffsets, posSizes,
        SmallVector<OpFoldResult>(posOffsets.size(), one));
    Operation *tiled =
        mlir::clone(b, op, {x.getType()}, ValueRange{x.getResult(), posSlice});
    return TilingResult{
        {tiled}, {tiled->getResult(0)}, {x.getOperation(), posSlice}};
  }

  LogicalResult getResultTilePosition(
      Operation *, OpBuilder &, unsigned, ArrayRef<OpFoldResult> offsets,
      ArrayRef<OpFoldResult> sizes, SmallVector<OpFoldResult> &resultOffsets,
      SmallVector<OpFoldResult> &resultSizes) const {
    resultOffsets.assign(offsets.begin(), offsets.end());
    resultSizes.assign(sizes.begin(), sizes.end());
    return success();
  }

  FailureOr<TilingResult>
  generateResultTileValue(Operation *op, OpBuilder &b, unsigned,
                          ArrayRef<OpFoldResult> offsets,
                          ArrayRef<OpFoldResult> sizes) const {
    return getTiledImplementation(op, b, offsets, sizes);
  }
};

template <typename OpT>
struct ReifyAttentionShapes
    : ReifyRankedShapedTypeOpInterface::ExternalModel<ReifyAttentionShapes<OpT>,
                                                      OpT> {
  LogicalResult reifyResultShapes(Operation *op, OpBuilder &b,
                                  ReifiedRankedShapedTypeDims &shapes) const {
    // Destination-style: each result has the shape of its init.
    for (Value init : cast<DestinationStyleOpInterface>(op).getDpsInits())
      if (isa<RankedTensorType>(init.getType()))
        shapes.push_back(tensor::getMixedSizes(b, op->getLoc(), init));
    return success();
  }
};
/// posenc.rope's result has the shape of x.
struct ReifyRopeShape
    : ReifyRankedShapedTypeOpInterface::ExternalModel<ReifyRopeShape, RopeOp> {
  LogicalResult reifyResultShapes(Operation *op, OpBuilder &b,
                                  ReifiedRankedShapedTypeDims &shapes) const {
    shapes.push_back(
        tensor::getMixedSizes(b, op->getLoc(), cast<RopeOp>(op).getX()));
    return success();
  }
};
} // namespace

void mlir::posenc::registerTilingInterfaceExternalModels(
    DialectRegistry &registry) {
  registry.addExtension(+[](MLIRContext *ctx, PosencDialect *) {
    ctx->loadDialect<arith::ArithDialect, affine::AffineDialect,
                     linalg::LinalgDialect, math::MathDialect,
                     tensor::TensorDialect>();
    AttentionOp::attachInterface<AttentionTilingInterface>(*ctx);
    AttentionOp::attachInterface<ReifyAttentionShapes<AttentionOp>>(*ctx);
    OnlineAttentionOp::attachInterface<OnlineAttentionTilingInterface>(*ctx);
    OnlineAttentionOp::attachInterface<OnlineAttentionPartialReduction>(*ctx);
    OnlineAttentionOp::attachInterface<ReifyAttentionShapes<OnlineAttentionOp>>(
        *ctx);
    RopeOp::attachInterface<RopeTilingInterface, ReifyRopeShape>(*ctx);
  });
}

//===- TilingInterfaceImpl.cpp - tiling posenc.attention ------------------===//
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
//===----------------------------------------------------------------------===//

#include "posenc/Dialect/Posenc/Transforms/TilingInterfaceImpl.h"

#include "posenc/Dialect/Posenc/IR/PosencDialect.h"
#include "posenc/Dialect/Posenc/IR/PosencOps.h"

#include "mlir/Dialect/Affine/IR/AffineOps.h"
#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Arith/Utils/Utils.h"
#include "mlir/Dialect/Tensor/IR/Tensor.h"
#include "mlir/Dialect/Utils/StaticValueUtils.h"
#include "mlir/Interfaces/InferTypeOpInterface.h"
#include "mlir/Interfaces/TilingInterface.h"

using namespace mlir;
using namespace mlir::posenc;

namespace {
using IT = utils::IteratorType;

enum Dim : unsigned { kB, kH, kI, kJ, kD, kE };

/// Whether the tile [offset, offset + size) covers all of `full`.
bool coversAll(OpFoldResult offset, OpFoldResult size, OpFoldResult full) {
  return isZeroInteger(offset) && isEqualConstantIntOrValue(size, full);
}

/// The kv-head slice that query heads [h0, h0 + size) read, when the tile
/// keeps the GQA mapping h -> h / (Hq / Hkv) inside it: the head tile
/// divides or is a multiple of the group.
FailureOr<std::pair<OpFoldResult, OpFoldResult>>
kvHeadSlice(OpBuilder &b, Location loc, AttentionOp op, OpFoldResult h0,
            OpFoldResult size) {
  int64_t hq = op.getQ().getType().getDimSize(2);
  int64_t hkv = op.getK().getType().getDimSize(2);
  OpFoldResult fullHq = tensor::getMixedSize(b, loc, op.getQ(), 2);
  if (coversAll(h0, size, fullHq))
    return std::make_pair(OpFoldResult(b.getIndexAttr(0)),
                          tensor::getMixedSize(b, loc, op.getK(), 2));
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

struct AttentionTilingInterface
    : TilingInterface::ExternalModel<AttentionTilingInterface, AttentionOp> {
  SmallVector<IT> getLoopIteratorTypes(Operation *) const {
    return {IT::parallel,  IT::parallel,  IT::parallel,
            IT::reduction, IT::reduction, IT::parallel};
  }

  SmallVector<Range> getIterationDomain(Operation *op, OpBuilder &b) const {
    auto attn = cast<AttentionOp>(op);
    Location loc = op->getLoc();
    auto size = [&](Value t, int64_t d) {
      return tensor::getMixedSize(b, loc, t, d);
    };
    OpFoldResult zero = b.getIndexAttr(0), one = b.getIndexAttr(1);
    SmallVector<OpFoldResult> sizes = {
        size(attn.getQ(), 0), size(attn.getQ(), 2), size(attn.getQ(), 1),
        size(attn.getK(), 1), size(attn.getQ(), 3), size(attn.getV(), 3)};
    return llvm::map_to_vector(sizes, [&](OpFoldResult s) {
      return Range{zero, s, one};
    });
  }

  FailureOr<TilingResult>
  getTiledImplementation(Operation *op, OpBuilder &b,
                         ArrayRef<OpFoldResult> offsets,
                         ArrayRef<OpFoldResult> sizes) const {
    auto attn = cast<AttentionOp>(op);
    Location loc = op->getLoc();
    SmallVector<Range> domain = getIterationDomain(op, b);
    if (!coversAll(offsets[kJ], sizes[kJ], domain[kJ].size) ||
        !coversAll(offsets[kD], sizes[kD], domain[kD].size))
      return op->emitOpError()
             << "cannot be tiled along keys or the key head dim: its softmax "
                "spans every key of a row";
    FailureOr<std::pair<OpFoldResult, OpFoldResult>> kv =
        kvHeadSlice(b, loc, attn, offsets[kH], sizes[kH]);
    if (failed(kv))
      return op->emitOpError()
             << "head tile must be static and divide or be a multiple of the "
                "GQA group (Hq / Hkv), with static head counts";

    SmallVector<Operation *> slices;
    auto slice = [&](Value src, ArrayRef<OpFoldResult> offs,
                     ArrayRef<OpFoldResult> szs) -> Value {
      SmallVector<OpFoldResult> strides(offs.size(), b.getIndexAttr(1));
      auto s = tensor::ExtractSliceOp::create(b, loc, src, offs, szs, strides);
      slices.push_back(s);
      return s.getResult();
    };
    OpFoldResult zero = b.getIndexAttr(0);
    Value q = slice(attn.getQ(), {offsets[kB], offsets[kI], offsets[kH], zero},
                    {sizes[kB], sizes[kI], sizes[kH], domain[kD].size});
    Value k = slice(attn.getK(), {offsets[kB], zero, kv->first, zero},
                    {sizes[kB], domain[kJ].size, kv->second, domain[kD].size});
    Value v = slice(attn.getV(), {offsets[kB], zero, kv->first, offsets[kE]},
                    {sizes[kB], domain[kJ].size, kv->second, sizes[kE]});
    Value bias;
    if (Value full = attn.getBias()) {
      // Right-aligned broadcast to (b, h, i, j); a static 1 stays 1.
      auto ty = cast<RankedTensorType>(full.getType());
      unsigned scoreDims[4] = {kB, kH, kI, kJ};
      SmallVector<OpFoldResult> offs, szs;
      for (int64_t d = 0, r = ty.getRank(); d < r; ++d) {
        unsigned it = scoreDims[4 - r + d];
        bool broadcast = ty.getDimSize(d) == 1;
        offs.push_back(broadcast ? zero : offsets[it]);
        szs.push_back(broadcast ? OpFoldResult(b.getIndexAttr(1))
                                : (it == kJ ? domain[kJ].size : sizes[it]));
      }
      bias = slice(full, offs, szs);
    }

    // The tile's causal diagonal: the untiled one plus its first query.
    Value diagonal;
    if (attn.getCausal())
      diagonal = arith::AddIOp::create(
          b, loc, attn.buildDiagonal(b, loc),
          getValueOrCreateConstantIndexOp(b, loc, offsets[kI]));
    // score_mod's indices: the untiled op's offsets plus the tile's.
    SmallVector<Value> tileOffsets;
    if (attn.getScoreModBlock()) {
      const unsigned dims[3] = {kB, kH, kI};
      for (auto [n, dim] : llvm::enumerate(dims)) {
        Value o = getValueOrCreateConstantIndexOp(b, loc, offsets[dim]);
        if (!attn.getOffsets().empty())
          o = arith::AddIOp::create(b, loc, attn.getOffsets()[n], o);
        tileOffsets.push_back(o);
      }
    }

    SmallVector<int64_t> shape;
    SmallVector<Value> dynamic;
    dispatchIndexOpFoldResults({sizes[kB], sizes[kI], sizes[kH], sizes[kE]},
                               dynamic, shape);
    auto resultTy = RankedTensorType::get(
        shape, attn.getResult().getType().getElementType());
    auto tiled = AttentionOp::create(b, loc, resultTy, q, k, v, bias, diagonal,
                                     tileOffsets, attn.getScaleAttr(),
                                     attn.getCausalAttr());
    // An omitted scale defaults from Dk, which tiling never changes.
    // (cloneRegionBefore reads the first block when a listener is set.)
    if (!attn.getScoreMod().empty())
      b.cloneRegionBefore(attn.getScoreMod(), tiled.getScoreMod(),
                          tiled.getScoreMod().end());
    return TilingResult{{tiled}, {tiled.getResult()}, slices};
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

struct AttentionReifyShapes
    : ReifyRankedShapedTypeOpInterface::ExternalModel<AttentionReifyShapes,
                                                      AttentionOp> {
  LogicalResult reifyResultShapes(Operation *op, OpBuilder &b,
                                  ReifiedRankedShapedTypeDims &shapes) const {
    auto attn = cast<AttentionOp>(op);
    Location loc = op->getLoc();
    shapes.push_back({tensor::getMixedSize(b, loc, attn.getQ(), 0),
                      tensor::getMixedSize(b, loc, attn.getQ(), 1),
                      tensor::getMixedSize(b, loc, attn.getQ(), 2),
                      tensor::getMixedSize(b, loc, attn.getV(), 3)});
    return success();
  }
};
} // namespace

void mlir::posenc::registerTilingInterfaceExternalModels(
    DialectRegistry &registry) {
  registry.addExtension(+[](MLIRContext *ctx, PosencDialect *) {
    ctx->loadDialect<arith::ArithDialect, affine::AffineDialect,
                     tensor::TensorDialect>();
    AttentionOp::attachInterface<AttentionTilingInterface>(*ctx);
    AttentionOp::attachInterface<AttentionReifyShapes>(*ctx);
  });
}

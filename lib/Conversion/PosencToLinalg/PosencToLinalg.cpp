//===- PosencToLinalg.cpp - posenc to linalg conversion -------------------===//
//
// Every posenc op becomes linalg.generic ops on tensors. Position math is
// float64 (positions are exact in f64, and the accuracy contract of
// posenc.rope needs angles formed in f64); tensor data is computed in f32.
//
//===----------------------------------------------------------------------===//

#include "posenc/Conversion/PosencToLinalg/PosencToLinalg.h"

#include "posenc/Dialect/Posenc/IR/AttentionSemantics.h"
#include "posenc/Dialect/Posenc/IR/PosencOps.h"
#include "posenc/Dialect/Posenc/IR/RopeFrequencies.h"
#include "posenc/Dialect/Posenc/Transforms/BufferizableOpInterfaceImpl.h"
#include "posenc/Dialect/Posenc/Transforms/Passes.h"
#include "posenc/Dialect/Posenc/Utils/BiasArithmetic.h"
#include "posenc/Dialect/Posenc/Utils/LinalgBuilder.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Arith/Utils/Utils.h"
#include "mlir/Dialect/Bufferization/IR/Bufferization.h"
#include "mlir/Dialect/Linalg/IR/Linalg.h"
#include "mlir/Dialect/Math/IR/Math.h"
#include "mlir/Dialect/MemRef/IR/MemRef.h"
#include "mlir/Dialect/SCF/IR/SCF.h"
#include "mlir/Dialect/Tensor/IR/Tensor.h"
#include "mlir/Transforms/DialectConversion.h"

#include <cmath>
#include <limits>

namespace mlir::posenc {
#define GEN_PASS_DEF_CONVERTPOSENCTOLINALGPASS
#include "posenc/Conversion/Passes.h.inc"
} // namespace mlir::posenc

using namespace mlir;
using namespace mlir::posenc;

//===----------------------------------------------------------------------===//
// Helpers
//===----------------------------------------------------------------------===//

/// Replaces `op` by `value` cast to the op's declared result type: an op
/// may declare static dims that the lowering computes from dynamic operands
/// (posenc-insert-shape-checks makes them agree at run time).
static void replaceWithResult(ConversionPatternRewriter &rewriter,
                              Operation *op, Value value) {
  rewriter.replaceOp(op, LinalgBuilder{rewriter, op->getLoc()}.castTo(
                             value, op->getResult(0).getType()));
}

namespace {
/// Indexing map from the iteration space of a bias result ([H, Sq, Sk] or
/// [B, H, Sq, Sk]) to a position tensor ([S] or [B, S]); `seqDim` is the
/// iteration dim of this position's sequence (i or j).
AffineMap positionMap(MLIRContext *ctx, int64_t resultRank, int64_t posRank,
                      int64_t seqDim) {
  SmallVector<AffineExpr> exprs;
  if (posRank == 2)
    exprs.push_back(getAffineDimExpr(0, ctx));
  exprs.push_back(getAffineDimExpr(seqDim, ctx));
  return AffineMap::get(resultRank, 0, exprs, ctx);
}

/// The sizes of a bias result [B?, H, Sq, Sk] from the positions (B, Sq,
/// Sk) and `heads`.
SmallVector<OpFoldResult> biasSizes(LinalgBuilder &e, RankedTensorType resultTy,
                                    Value qPos, Value kPos,
                                    OpFoldResult heads) {
  SmallVector<OpFoldResult> sizes;
  auto qTy = cast<RankedTensorType>(qPos.getType());
  auto kTy = cast<RankedTensorType>(kPos.getType());
  if (resultTy.getRank() == 4)
    sizes.push_back(qTy.getRank() == 2 ? e.dim(qPos, 0) : e.dim(kPos, 0));
  sizes.push_back(heads);
  sizes.push_back(e.dim(qPos, qTy.getRank() - 1));
  sizes.push_back(e.dim(kPos, kTy.getRank() - 1));
  return sizes;
}

/// max(pos) over all positions as an i64 scalar (INT64_MIN when empty).
Value maxPosition(LinalgBuilder &e, Value pos) {
  auto ty = cast<RankedTensorType>(pos.getType());
  int64_t rank = ty.getRank();
  Value init = e.filled({}, e.cI64(std::numeric_limits<int64_t>::min()));
  SmallVector<utils::IteratorType> its(rank, utils::IteratorType::reduction);
  MLIRContext *ctx = e.b.getContext();
  Value red = e.generic(
      init.getType(), pos, init,
      {e.b.getMultiDimIdentityMap(rank), AffineMap::get(rank, 0, {}, ctx)}, its,
      [&](OpBuilder &nb, Location nl, ValueRange args) {
        LinalgBuilder n{nb, nl};
        Value m = arith::MaxSIOp::create(nb, nl, n.toI64(args[0]), args[1]);
        yieldValues(nb, nl, m);
      });
  return e.extract(red, {});
}

//===----------------------------------------------------------------------===//
// posenc.rope
//===----------------------------------------------------------------------===//

/// The frequency table tensor<R/2 x f64> of `op`, built at compile time
/// unless the scaling depends on the run's positions.
Value ropeFrequencies(LinalgBuilder &e, RopeOp op, Value pos, int64_t rotary) {
  RopeScalingAttr scaling = op.getScalingOrNone();
  double base = op.getBase().convertToDouble();
  switch (scaling.getKind()) {
  case RopeScalingKind::longrope: {
    Value shortT =
        e.constTensor(staticRopeFrequencies(scaling, base, rotary, false));
    Value longT =
        e.constTensor(staticRopeFrequencies(scaling, base, rotary, true));
    // ext = long_factor if max(pos) + 1 > original.
    Value useLong = e.cmpI(arith::CmpIPredicate::sge, maxPosition(e, pos),
                           e.cI64(scaling.getOriginal()));
    return e.select(useLong, longT, shortT);
  }
  case RopeScalingKind::dynamic: {
    // s = max(max(pos)+1, L0); base' = base·((f·s/L0) − (f−1))^(R/(R−2));
    // ω_i = exp(−(2i/R)·ln base').
    double f = scaling.getFactor().getValueAsDouble();
    double l0 = double(scaling.getOriginal());
    double r = double(rotary);
    OpBuilder &b = e.b;
    Location loc = e.loc;
    Value next = arith::AddIOp::create(b, loc, maxPosition(e, pos), e.cI64(1));
    Value s = arith::MaximumFOp::create(b, loc, e.i64ToF64(next), e.cF64(l0));
    Value ratio = arith::SubFOp::create(
        b, loc, arith::MulFOp::create(b, loc, s, e.cF64(f / l0)),
        e.cF64(f - 1.0));
    Value logBase = arith::AddFOp::create(
        b, loc, e.cF64(std::log(base)),
        arith::MulFOp::create(b, loc, e.cF64(r / (r - 2.0)),
                              math::LogOp::create(b, loc, ratio)));
    Value init = e.empty({b.getIndexAttr(rotary / 2)}, b.getF64Type());
    AffineMap id = b.getMultiDimIdentityMap(1);
    return e.generic(
        init.getType(), {}, init, {id}, {utils::IteratorType::parallel},
        [&](OpBuilder &nb, Location nl, ValueRange) {
          LinalgBuilder n{nb, nl};
          Value i =
              arith::IndexCastOp::create(nb, nl, nb.getI64Type(), n.index(0));
          Value expo =
              arith::MulFOp::create(nb, nl, n.i64ToF64(i), n.cF64(-2.0 / r));
          Value w = math::ExpOp::create(
              nb, nl, arith::MulFOp::create(nb, nl, expo, logBase));
          yieldValues(nb, nl, w);
        });
  }
  default:
    return e.constTensor(staticRopeFrequencies(scaling, base, rotary));
  }
}

/// M-RoPE: the position each pair reads, [B?, S, R/2] i64, from positions
/// [A, B?, S] and the axis of each pair.
Value pairPositions(LinalgBuilder &e, Value pos, ArrayRef<int64_t> axes) {
  int64_t rank = cast<RankedTensorType>(pos.getType()).getRank();
  SmallVector<OpFoldResult> sizes;
  for (int64_t i = 1; i < rank; ++i)
    sizes.push_back(e.dim(pos, i));
  sizes.push_back(e.b.getIndexAttr(axes.size()));
  Value init = e.empty(sizes, e.b.getI64Type());
  MLIRContext *ctx = e.b.getContext();
  AffineMap axisMap = AffineMap::get(rank, 0, getAffineDimExpr(rank - 1, ctx));
  return e.generic(
      init.getType(), e.constTensor(axes), init,
      {axisMap, e.b.getMultiDimIdentityMap(rank)},
      SmallVector<utils::IteratorType>(rank, utils::IteratorType::parallel),
      [&](OpBuilder &nb, Location nl, ValueRange args) {
        LinalgBuilder n{nb, nl};
        SmallVector<Value> idx = {
            arith::IndexCastOp::create(nb, nl, nb.getIndexType(), args[0])};
        for (int64_t i = 0; i + 1 < rank; ++i)
          idx.push_back(n.index(i));
        yieldValues(nb, nl, n.toI64(n.extract(pos, idx)));
      });
}

/// cos and sin tables [pos dims..., R/2] in the compute type (f32, or f64
/// for f64 ops), scaled by `factor`: the
/// angle p·ω is formed and evaluated in f64 once per (position, pair).
/// With `perPair`, `pos` already has the pair dim (M-RoPE).
std::pair<Value, Value> angleTables(LinalgBuilder &e, Value pos, Value omega,
                                    int64_t half, double factor, bool perPair) {
  auto posTy = cast<RankedTensorType>(pos.getType());
  int64_t rank = posTy.getRank() + (perPair ? 0 : 1);
  SmallVector<OpFoldResult> sizes;
  for (int64_t i = 0; i + 1 < rank; ++i)
    sizes.push_back(e.dim(pos, i));
  sizes.push_back(e.b.getIndexAttr(half));
  MLIRContext *ctx = e.b.getContext();
  Type ct = e.computeType();
  Value cosInit = e.empty(sizes, ct), sinInit = e.empty(sizes, ct);
  AffineMap id = e.b.getMultiDimIdentityMap(rank);
  AffineMap posMap = perPair ? id : id.getMajorSubMap(rank - 1);
  AffineMap omegaMap = AffineMap::get(rank, 0, getAffineDimExpr(rank - 1, ctx));
  SmallVector<utils::IteratorType> its(rank, utils::IteratorType::parallel);
  auto gen = linalg::GenericOp::create(
      e.b, e.loc, TypeRange{cosInit.getType(), sinInit.getType()},
      ValueRange{pos, omega}, ValueRange{cosInit, sinInit},
      ArrayRef<AffineMap>{posMap, omegaMap, id, id}, its,
      [&](OpBuilder &nb, Location nl, ValueRange args) {
        LinalgBuilder n = e.nested(nb, nl);
        Value p = n.i64ToF64(n.toI64(args[0]));
        Value theta = arith::MulFOp::create(nb, nl, p, args[1]);
        // Rounded to f32 right away (f64 ops keep f64):
        // posenc-approximate-math turns truncf(cos(f64)) into an f64 range
        // reduction and f32 polynomial.
        Value c = n.toCompute(math::CosOp::create(nb, nl, theta));
        Value s = n.toCompute(math::SinOp::create(nb, nl, theta));
        if (factor != 1.0) {
          c = arith::MulFOp::create(nb, nl, c, n.cCompute(factor));
          s = arith::MulFOp::create(nb, nl, s, n.cCompute(factor));
        }
        yieldValues(nb, nl, ValueRange{c, s});
      });
  return {gen.getResult(0), gen.getResult(1)};
}

struct RopeOpLowering : OpConversionPattern<RopeOp> {
  using OpConversionPattern::OpConversionPattern;

  LogicalResult
  matchAndRewrite(RopeOp op, OpAdaptor adaptor,
                  ConversionPatternRewriter &rewriter) const override {
    LinalgBuilder e{rewriter, op.getLoc(), floatComputeType(op)};
    Value x = adaptor.getX(), pos = adaptor.getPos();
    int64_t rotary = *op.getRotaryDimOrHeadDim();
    if (rotary == 0) {
      replaceWithResult(rewriter, op, x);
      return success();
    }
    int64_t half = rotary / 2;
    bool interleaved = op.getLayout() == RopeLayout::interleaved;
    double factor = op.getEffectiveAttentionFactor();
    Value omega = ropeFrequencies(e, op, pos, rotary);
    SmallVector<int64_t> pairAxes = op.getPairAxes();
    bool mrope = !pairAxes.empty();
    Value cosT, sinT;
    std::tie(cosT, sinT) =
        angleTables(e, mrope ? pairPositions(e, pos, pairAxes) : pos, omega,
                    half, factor, mrope);
    // The position dims of the tables: [B?, S] (M-RoPE's axis dim is gone).
    int64_t posRank =
        cast<RankedTensorType>(pos.getType()).getRank() - (mrope ? 1 : 0);
    MLIRContext *ctx = rewriter.getContext();
    Location loc = op.getLoc();
    auto xTy = cast<RankedTensorType>(x.getType());
    Type elemTy = xTy.getElementType();
    using IT = utils::IteratorType;

    // The rotated part of x viewed as pairs: [B, S, H, 2, R/2] for `half`
    // (pair i is (x[0, i], x[1, i])) or [B, S, H, R/2, 2] for `interleaved`.
    // Every operand of the rotation is then an affine map of the same
    // iteration space, and its innermost dim is contiguous: one vectorized
    // pass over x.
    int64_t headDim = xTy.getDimSize(3);
    bool partial = ShapedType::isDynamic(headDim) || rotary != headDim;
    SmallVector<OpFoldResult> xSizes = e.sizes(x);
    Value xr = x;
    if (partial) {
      SmallVector<OpFoldResult> sliceSizes(xSizes);
      sliceSizes[3] = rewriter.getIndexAttr(rotary);
      SmallVector<OpFoldResult> zeros(4, rewriter.getIndexAttr(0)),
          ones(4, rewriter.getIndexAttr(1));
      xr = tensor::ExtractSliceOp::create(rewriter, loc, x, zeros, sliceSizes,
                                          ones);
    }
    int64_t sideDim = interleaved ? 4 : 3, pairDim = interleaved ? 3 : 4;
    SmallVector<OpFoldResult> pairSizes(xSizes.begin(), xSizes.begin() + 3);
    pairSizes.resize(5);
    pairSizes[sideDim] = rewriter.getIndexAttr(2);
    pairSizes[pairDim] = rewriter.getIndexAttr(half);
    SmallVector<int64_t> pairShape;
    for (OpFoldResult ofr : pairSizes) {
      std::optional<int64_t> c = getConstantIntValue(ofr);
      pairShape.push_back(c ? *c : ShapedType::kDynamic);
    }
    auto pairTy = RankedTensorType::get(pairShape, elemTy);
    SmallVector<ReassociationIndices> reassoc = {{0}, {1}, {2}, {3, 4}};
    Value xe = tensor::ExpandShapeOp::create(rewriter, loc, pairTy, xr, reassoc,
                                             pairSizes);

    // Per-position tables [P..., side, pair] (or [P..., pair, side]):
    // cos, and sin with the sign of each side folded in (-sin for the first
    // element of a pair, +sin for the second).
    auto d = [&](unsigned i) { return getAffineDimExpr(i, ctx); };
    SmallVector<OpFoldResult> tableSizes;
    for (int64_t i = 0; i < posRank; ++i)
      tableSizes.push_back(e.dim(cosT, i));
    int64_t tSide = posRank + (interleaved ? 1 : 0);
    int64_t tPair = posRank + (interleaved ? 0 : 1);
    tableSizes.resize(posRank + 2);
    tableSizes[tSide] = rewriter.getIndexAttr(2);
    tableSizes[tPair] = rewriter.getIndexAttr(half);
    SmallVector<AffineExpr> fromTable;
    for (int64_t i = 0; i < posRank; ++i)
      fromTable.push_back(d(i));
    fromTable.push_back(d(tPair));
    AffineMap tableToAngles = AffineMap::get(posRank + 2, 0, fromTable, ctx);
    AffineMap tableId = rewriter.getMultiDimIdentityMap(posRank + 2);
    Value cosInit = e.empty(tableSizes, e.computeType()),
          sinInit = e.empty(tableSizes, e.computeType());
    auto sidedTables = linalg::GenericOp::create(
        rewriter, loc, TypeRange{cosInit.getType(), sinInit.getType()},
        ValueRange{cosT, sinT}, ValueRange{cosInit, sinInit},
        ArrayRef<AffineMap>{tableToAngles, tableToAngles, tableId, tableId},
        SmallVector<IT>(posRank + 2, IT::parallel),
        [&](OpBuilder &nb, Location nl, ValueRange args) {
          LinalgBuilder n{nb, nl};
          Value first =
              n.cmpI(arith::CmpIPredicate::eq, n.index(tSide), n.cIndex(0));
          Value sn =
              n.select(first, arith::NegFOp::create(nb, nl, args[1]), args[1]);
          yieldValues(nb, nl, ValueRange{args[0], sn});
        });
    Value cos2 = sidedTables.getResult(0), sin2 = sidedTables.getResult(1);

    // y[.., k, i] = x[.., k, i]·cos + x[.., 1-k, i]·(±sin).
    SmallVector<AffineExpr> partnerExprs = {d(0), d(1), d(2), d(3), d(4)};
    partnerExprs[sideDim] = 1 - d(sideDim);
    AffineMap partner = AffineMap::get(5, 0, partnerExprs, ctx);
    SmallVector<AffineExpr> tableExprs;
    if (posRank == 2)
      tableExprs.push_back(d(0));
    tableExprs.append({d(1), d(3), d(4)});
    AffineMap tableMap = AffineMap::get(5, 0, tableExprs, ctx);
    AffineMap id5 = rewriter.getMultiDimIdentityMap(5);
    Value rotated = e.generic(
        pairTy, {xe, xe, cos2, sin2}, e.empty(pairSizes, elemTy),
        {id5, partner, tableMap, tableMap, id5},
        SmallVector<IT>(5, IT::parallel),
        [&](OpBuilder &nb, Location nl, ValueRange args) {
          LinalgBuilder n = e.nested(nb, nl);
          Value y = arith::AddFOp::create(
              nb, nl,
              arith::MulFOp::create(nb, nl, n.toCompute(args[0]), args[2]),
              arith::MulFOp::create(nb, nl, n.toCompute(args[1]), args[3]));
          yieldValues(nb, nl, n.fromFloat(y, elemTy));
        });
    Value result = tensor::CollapseShapeOp::create(
        rewriter, loc, cast<RankedTensorType>(xr.getType()), rotated, reassoc);
    if (partial) {
      // Dims >= R are copied unchanged: the rotated block goes into x.
      SmallVector<OpFoldResult> zeros(4, rewriter.getIndexAttr(0)),
          ones(4, rewriter.getIndexAttr(1));
      SmallVector<OpFoldResult> sliceSizes(xSizes);
      sliceSizes[3] = rewriter.getIndexAttr(rotary);
      result = tensor::InsertSliceOp::create(rewriter, loc, result, x, zeros,
                                             sliceSizes, ones);
    }
    replaceWithResult(rewriter, op, result);
    return success();
  }
};

//===----------------------------------------------------------------------===//
// posenc.sinusoidal
//===----------------------------------------------------------------------===//

struct SinusoidalOpLowering : OpConversionPattern<SinusoidalOp> {
  using OpConversionPattern::OpConversionPattern;

  LogicalResult
  matchAndRewrite(SinusoidalOp op, OpAdaptor adaptor,
                  ConversionPatternRewriter &rewriter) const override {
    LinalgBuilder e{rewriter, op.getLoc(), floatComputeType(op)};
    Value pos = adaptor.getPos();
    RankedTensorType rTy = op.getResult().getType();
    int64_t rank = rTy.getRank();
    int64_t dim = op.getDim();
    // Per column, sin(p·ω + φ) (SinusoidalColumn): each element takes one
    // sine, and the conventions differ only in these tables. The shift
    // rounds θ + π/2 in f64: below 1e-8 for |θ| < 2^26, far inside the op's
    // 1e-6 contract.
    SmallVector<double> omegas, phases;
    for (const SinusoidalColumn &c :
         sinusoidalColumns(op.getConvention(), op.getLayout(), dim,
                           op.getBase().convertToDouble())) {
      omegas.push_back(c.omega);
      phases.push_back(c.phase);
    }
    Value omega = e.constTensor(ArrayRef<double>(omegas));
    Value phase = e.constTensor(ArrayRef<double>(phases));
    std::optional<int64_t> paddingIdx = op.getPaddingIdx();
    SmallVector<OpFoldResult> sizes;
    for (int64_t i = 0; i + 1 < rank; ++i)
      sizes.push_back(e.dim(pos, i));
    sizes.push_back(rewriter.getIndexAttr(dim));
    AffineMap id = rewriter.getMultiDimIdentityMap(rank);
    SmallVector<utils::IteratorType> its(rank, utils::IteratorType::parallel);
    Type elemTy = rTy.getElementType();
    Value result = e.generic(
        rTy, pos, e.empty(sizes, elemTy), {id.getMajorSubMap(rank - 1), id},
        its, [&](OpBuilder &nb, Location nl, ValueRange args) {
          LinalgBuilder n = e.nested(nb, nl);
          Value d = n.index(rank - 1);
          Value position = n.toI64(args[0]);
          Value theta = arith::AddFOp::create(
              nb, nl,
              arith::MulFOp::create(nb, nl, n.i64ToF64(position),
                                    n.extract(omega, {d})),
              n.extract(phase, {d}));
          Value v = n.toCompute(math::SinOp::create(nb, nl, theta));
          if (paddingIdx)
            v = n.select(
                n.cmpI(arith::CmpIPredicate::eq, position, n.cI64(*paddingIdx)),
                n.cCompute(0.0), v);
          yieldValues(nb, nl, n.fromFloat(v, elemTy));
        });
    replaceWithResult(rewriter, op, result);
    return success();
  }
};

//===----------------------------------------------------------------------===//
// posenc.alibi_bias and posenc.rel_bias
//===----------------------------------------------------------------------===//

/// Emits a generic over a bias result whose body gets (rel = k − q as i64,
/// the head index) and returns the f32/f64 value.
template <typename BiasFn>
Value emitBias(LinalgBuilder &e, RankedTensorType rTy, Value qPos, Value kPos,
               OpFoldResult heads, BiasFn fn) {
  int64_t rank = rTy.getRank();
  int64_t off = rank == 4 ? 1 : 0;
  MLIRContext *ctx = e.b.getContext();
  auto qRank = cast<RankedTensorType>(qPos.getType()).getRank();
  auto kRank = cast<RankedTensorType>(kPos.getType()).getRank();
  SmallVector<AffineMap> maps = {positionMap(ctx, rank, qRank, off + 1),
                                 positionMap(ctx, rank, kRank, off + 2),
                                 e.b.getMultiDimIdentityMap(rank)};
  SmallVector<utils::IteratorType> its(rank, utils::IteratorType::parallel);
  Type elemTy = rTy.getElementType();
  SmallVector<OpFoldResult> sizes = biasSizes(e, rTy, qPos, kPos, heads);
  return e.generic(rTy, {qPos, kPos}, e.empty(sizes, elemTy), maps, its,
                   [&](OpBuilder &nb, Location nl, ValueRange args) {
                     LinalgBuilder n = e.nested(nb, nl);
                     Value rel = arith::SubIOp::create(nb, nl, n.toI64(args[1]),
                                                       n.toI64(args[0]));
                     Value v = fn(n, rel, n.index(off));
                     yieldValues(nb, nl, n.fromFloat(v, elemTy));
                   });
}

struct AlibiBiasOpLowering : OpConversionPattern<AlibiBiasOp> {
  using OpConversionPattern::OpConversionPattern;

  LogicalResult
  matchAndRewrite(AlibiBiasOp op, OpAdaptor adaptor,
                  ConversionPatternRewriter &rewriter) const override {
    LinalgBuilder e{rewriter, op.getLoc(), floatComputeType(op)};
    AlibiArithmetic alibi = AlibiArithmetic::prepare(e, op);
    Value result =
        emitBias(e, op.getResult().getType(), adaptor.getQPos(),
                 adaptor.getKPos(), rewriter.getIndexAttr(op.getHeadCount()),
                 [&](LinalgBuilder &n, Value rel, Value h) {
                   return alibi.at(n, rel, h);
                 });
    replaceWithResult(rewriter, op, result);
    return success();
  }
};

struct RelBiasOpLowering : OpConversionPattern<RelBiasOp> {
  using OpConversionPattern::OpConversionPattern;

  LogicalResult
  matchAndRewrite(RelBiasOp op, OpAdaptor adaptor,
                  ConversionPatternRewriter &rewriter) const override {
    LinalgBuilder e{rewriter, op.getLoc(), floatComputeType(op)};
    Value table = adaptor.getTable();
    RelBiasArithmetic bias = RelBiasArithmetic::prepare(e, op, table);
    OpFoldResult heads = e.dim(table, 1);
    RankedTensorType rTy = op.getResult().getType();
    Value qPos = adaptor.getQPos(), kPos = adaptor.getKPos();
    if (!bias.hasDistanceTable()) {
      replaceWithResult(rewriter, op,
                        emitBias(e, rTy, qPos, kPos, heads,
                                 [&](LinalgBuilder &n, Value rel, Value h) {
                                   return bias.at(n, rel, h);
                                 }));
      return success();
    }
    replaceWithResult(rewriter, op,
                      distanceGather(e, rTy, qPos, kPos, heads,
                                     bias.distanceTable(e, heads),
                                     bias.maxDistance));
    return success();
  }

  /// result[b, h, i, j] = byDistance[h, clamp(k_j − q_i, ±M) + M], in two
  /// generics: the clamped index of each (b, i, j) as i32 (shared by all
  /// heads), then a pure gather whose loops run (b, i, h, j) so the index
  /// row of query i stays in L1 while every head reads it.
  static Value distanceGather(LinalgBuilder &e, RankedTensorType rTy,
                              Value qPos, Value kPos, OpFoldResult heads,
                              Value byDistance, int64_t maxDistance) {
    MLIRContext *ctx = e.b.getContext();
    int64_t rank = rTy.getRank(), off = rank == 4 ? 1 : 0;
    SmallVector<OpFoldResult> sizes = biasSizes(e, rTy, qPos, kPos, heads);
    SmallVector<OpFoldResult> idxSizes(sizes);
    idxSizes.erase(idxSizes.begin() + off);
    auto qRank = cast<RankedTensorType>(qPos.getType()).getRank();
    auto kRank = cast<RankedTensorType>(kPos.getType()).getRank();
    int64_t idxRank = rank - 1;
    using IT = utils::IteratorType;
    Type i32 = e.b.getI32Type();
    Value idxInit = e.empty(idxSizes, i32);
    Value idx = e.generic(
        idxInit.getType(), {qPos, kPos}, idxInit,
        {positionMap(ctx, idxRank, qRank, off),
         positionMap(ctx, idxRank, kRank, off + 1),
         e.b.getMultiDimIdentityMap(idxRank)},
        SmallVector<IT>(idxRank, IT::parallel),
        [&](OpBuilder &nb, Location nl, ValueRange args) {
          LinalgBuilder n{nb, nl};
          Value rel =
              arith::SubIOp::create(nb, nl, n.toI64(args[1]), n.toI64(args[0]));
          Value c = clampedDistanceIndex(n, rel, maxDistance);
          yieldValues(nb, nl, arith::IndexCastOp::create(nb, nl, i32, c));
        });
    // Iteration dims (b?, i, h, j); the result is laid out (b?, h, i, j).
    auto d = [&](int64_t i) { return getAffineDimExpr(i, ctx); };
    SmallVector<AffineExpr> outExprs, idxExprs;
    if (off)
      outExprs.push_back(d(0)), idxExprs.push_back(d(0));
    outExprs.append({d(off + 1), d(off), d(off + 2)});
    idxExprs.append({d(off), d(off + 2)});
    Type elemTy = rTy.getElementType();
    return e.generic(
        rTy, idx, e.empty(sizes, elemTy),
        {AffineMap::get(rank, 0, idxExprs, ctx),
         AffineMap::get(rank, 0, outExprs, ctx)},
        SmallVector<IT>(rank, IT::parallel),
        [&](OpBuilder &nb, Location nl, ValueRange args) {
          LinalgBuilder n{nb, nl};
          Value c =
              arith::IndexCastOp::create(nb, nl, nb.getIndexType(), args[0]);
          yieldValues(nb, nl,
                      n.fromFloat(n.extract(byDistance, {n.index(off + 1), c}),
                                  elemTy));
        });
  }
};

//===----------------------------------------------------------------------===//
// posenc.rel_key_bias
//===----------------------------------------------------------------------===//

struct RelKeyBiasOpLowering : OpConversionPattern<RelKeyBiasOp> {
  using OpConversionPattern::OpConversionPattern;

  LogicalResult
  matchAndRewrite(RelKeyBiasOp op, OpAdaptor adaptor,
                  ConversionPatternRewriter &rewriter) const override {
    LinalgBuilder e{rewriter, op.getLoc(), floatComputeType(op)};
    MLIRContext *ctx = rewriter.getContext();
    Value q = adaptor.getQ(), emb = adaptor.getEmb();
    Value qPos = adaptor.getQPos(), kPos = adaptor.getKPos();
    int64_t m = op.getMaxDistance();
    // qe[b, i, h, r] = q[b, i, h, :] · emb[r, :], once per query row, then
    // gathered by clamped distance: (2M+1)·D work per row instead of Sk·D.
    SmallVector<OpFoldResult> qeSizes = {e.dim(q, 0), e.dim(q, 1), e.dim(q, 2),
                                         e.dim(emb, 0)};
    auto d = [&](unsigned i) { return getAffineDimExpr(i, ctx); };
    using IT = utils::IteratorType;
    Value qe = e.contract(
        q, emb, AffineMap::get(5, 0, {d(0), d(1), d(2), d(4)}, ctx),
        relKeyEmbMap(ctx, emb),
        AffineMap::get(5, 0, {d(0), d(1), d(2), d(3)}, ctx), qeSizes);

    RankedTensorType rTy = op.getResult().getType();
    Type elemTy = rTy.getElementType();
    auto qpRank = cast<RankedTensorType>(qPos.getType()).getRank();
    auto kpRank = cast<RankedTensorType>(kPos.getType()).getRank();
    SmallVector<OpFoldResult> sizes = {e.dim(q, 0), e.dim(q, 2), e.dim(q, 1),
                                       e.dim(kPos, kpRank - 1)};
    Value result = e.generic(
        rTy, {qPos, kPos}, e.empty(sizes, elemTy),
        {positionMap(ctx, 4, qpRank, 2), positionMap(ctx, 4, kpRank, 3),
         rewriter.getMultiDimIdentityMap(4)},
        SmallVector<IT>(4, IT::parallel),
        [&](OpBuilder &nb, Location nl, ValueRange args) {
          LinalgBuilder n{nb, nl};
          Value rel =
              arith::SubIOp::create(nb, nl, n.toI64(args[1]), n.toI64(args[0]));
          Value r = clampedDistanceIndex(n, rel, m);
          Value v = n.extract(qe, {n.index(0), n.index(2), n.index(1), r});
          yieldValues(nb, nl, n.fromFloat(v, elemTy));
        });
    replaceWithResult(rewriter, op, result);
    return success();
  }
};

//===----------------------------------------------------------------------===//
// posenc.attention
//===----------------------------------------------------------------------===//

/// The whole-tensor form: the op's decomposition
/// (AggregatedOpInterfaceImpl.cpp); attention decomposes into
/// online_attention, which decomposes into linalg.
template <typename OpT> struct DecomposeLowering : OpConversionPattern<OpT> {
  using OpConversionPattern<OpT>::OpConversionPattern;

  LogicalResult
  matchAndRewrite(OpT op, typename OpT::Adaptor adaptor,
                  ConversionPatternRewriter &rewriter) const override {
    FailureOr<SmallVector<Value>> values =
        cast<linalg::AggregatedOpInterface>(op.getOperation())
            .decomposeOperation(rewriter);
    if (failed(values))
      return rewriter.notifyMatchFailure(op, "not decomposable");
    rewriter.replaceOp(op, *values);
    return success();
  }
};

/// online_attention decomposes with the conversion's rewriter: steps over
/// more than one batch or kv head are tiled into unit steps first.
struct OnlineAttentionLowering : OpConversionPattern<OnlineAttentionOp> {
  using OpConversionPattern::OpConversionPattern;

  LogicalResult
  matchAndRewrite(OnlineAttentionOp op, OpAdaptor,
                  ConversionPatternRewriter &rewriter) const override {
    FailureOr<SmallVector<Value>> values =
        decomposeOnlineAttention(rewriter, op);
    if (failed(values))
      return rewriter.notifyMatchFailure(op, "not decomposable");
    rewriter.replaceOp(op, *values);
    return success();
  }
};

/// The buffer form of attention is lowered as its tensor form, read from
/// and materialized into the buffers (bufferization then reuses them).
struct AttentionBufferFormLowering : OpConversionPattern<AttentionOp> {
  AttentionBufferFormLowering(MLIRContext *ctx)
      : OpConversionPattern(ctx, /*benefit=*/2) {}

  LogicalResult
  matchAndRewrite(AttentionOp op, OpAdaptor,
                  ConversionPatternRewriter &rewriter) const override {
    if (!op.hasBufferSemantics())
      return rewriter.notifyMatchFailure(op, "tensor form");
    convertToTensorForm(rewriter, op);
    return success();
  }
};

//===----------------------------------------------------------------------===//
// Pass
//===----------------------------------------------------------------------===//

struct ConvertPosencToLinalgPass
    : posenc::impl::ConvertPosencToLinalgPassBase<ConvertPosencToLinalgPass> {
  using Base::Base;

  void runOnOperation() override {
    MLIRContext *ctx = &getContext();
    ConversionTarget target(*ctx);
    target.addIllegalDialect<PosencDialect>();
    target.markUnknownOpDynamicallyLegal([](Operation *) { return true; });
    if (attentionTileQ <= 0 || attentionTileK <= 0) {
      getOperation()->emitError()
          << "attention tile sizes must be positive, got attention-tile-q="
          << int64_t(attentionTileQ)
          << " attention-tile-k=" << int64_t(attentionTileK);
      return signalPassFailure();
    }
    // Shapes the lowerings need static, named up front: a pattern that
    // declines would only say "failed to legalize".
    WalkResult unsupported = getOperation()->walk([&](Operation *op) {
      if (auto attn = dyn_cast<AttentionOp>(op)) {
        ShapedType q = attn.getQ().getType(), k = attn.getK().getType();
        if (q.isDynamicDim(2) || k.isDynamicDim(2)) {
          attn.emitOpError()
              << "cannot be lowered with a dynamic number of "
                 "heads (q: "
              << q << ", k: " << k << "): the GQA group size must be static";
          return WalkResult::interrupt();
        }
        if (!attn.getScaleOrDefault()) {
          attn.emitOpError() << "cannot be lowered with a dynamic key head dim "
                                "and no scale attribute";
          return WalkResult::interrupt();
        }
      }
      if (auto mla = dyn_cast<MlaAbsorbOp>(op)) {
        if (mla.getQNope().getType().isDynamicDim(3) ||
            mla.getQPe().getType().isDynamicDim(3) ||
            mla.getCKv().getType().isDynamicDim(2)) {
          mla.emitOpError() << "cannot be lowered with dynamic head or latent "
                               "dims (q_nope: "
                            << mla.getQNope().getType()
                            << ", q_pe: " << mla.getQPe().getType()
                            << ", c_kv: " << mla.getCKv().getType() << ")";
          return WalkResult::interrupt();
        }
      }
      return WalkResult::advance();
    });
    if (unsupported.wasInterrupted())
      return signalPassFailure();
    // linalg.softmax (importers' attention that posenc-raise left alone)
    // has no lowering of its own past linalg: its decomposition has.
    {
      IRRewriter rewriter(ctx);
      SmallVector<linalg::SoftmaxOp> softmaxes;
      getOperation()->walk(
          [&](linalg::SoftmaxOp op) { softmaxes.push_back(op); });
      for (linalg::SoftmaxOp op : softmaxes) {
        rewriter.setInsertionPoint(op);
        FailureOr<SmallVector<Value>> parts = op.decomposeOperation(rewriter);
        if (failed(parts))
          return signalPassFailure();
        rewriter.replaceOp(op, *parts);
      }
    }
    // Attention is tiled through its interfaces before the conversion
    // (one kv head and a block of queries per tile, online_attention over
    // key blocks inside; mla_absorb first becomes its attention); the
    // conversion then decomposes each step.
    if (!materializeAttention) {
      IRRewriter rewriter(ctx);
      SmallVector<MlaAbsorbOp> mlas;
      getOperation()->walk([&](MlaAbsorbOp op) { mlas.push_back(op); });
      for (MlaAbsorbOp op : mlas) {
        rewriter.setInsertionPoint(op);
        if (failed(decomposeMla(rewriter, op, MlaDecomposition::naive)))
          return signalPassFailure();
      }
      AttentionTiling tiling;
      tiling.rows = attentionTileQ;
      tiling.keys = attentionTileK;
      tiling.parallel = attentionParallel;
      SmallVector<AttentionOp> ops;
      getOperation()->walk([&](AttentionOp op) {
        if (isTileable(op))
          ops.push_back(op);
      });
      for (AttentionOp op : ops)
        if (failed(tileAttention(rewriter, op, tiling)))
          return signalPassFailure();
    }
    RewritePatternSet patterns(ctx);
    populatePosencToLinalgConversionPatterns(patterns);
    if (failed(applyPartialConversion(getOperation(), target,
                                      std::move(patterns))))
      signalPassFailure();
  }
};
} // namespace

void mlir::posenc::populatePosencToLinalgConversionPatterns(
    RewritePatternSet &patterns) {
  patterns.add<RopeOpLowering, SinusoidalOpLowering, AlibiBiasOpLowering,
               RelBiasOpLowering, RelKeyBiasOpLowering>(patterns.getContext());
  // Attention and mla_absorb lower as their decompositions (the whole-
  // tensor form; the pass tiles attention first to bound its memory), and
  // online_attention as its step on linalg.
  patterns.add<OnlineAttentionLowering, DecomposeLowering<AttentionOp>,
               DecomposeLowering<MlaAbsorbOp>, AttentionBufferFormLowering>(
      patterns.getContext());
}

//===- BiasArithmetic.cpp - per-element math of the bias ops --------------===//

#include "posenc/Dialect/Posenc/Utils/BiasArithmetic.h"

#include "mlir/Dialect/Math/IR/Math.h"

#include <algorithm>
#include <cmath>

using namespace mlir;
using namespace mlir::posenc;
using P = arith::CmpIPredicate;

AlibiArithmetic AlibiArithmetic::prepare(LinalgBuilder &e, AlibiBiasOp op) {
  SmallVector<double> slopes = op.getSlopesOrDefault();
  bool symmetric = op.getMode() == AlibiMode::symmetric;
  if (e.computeType().isF64())
    return {e.constTensor(ArrayRef<double>(slopes)), symmetric};
  SmallVector<float> f32Slopes(slopes.begin(), slopes.end());
  auto type =
      RankedTensorType::get({int64_t(f32Slopes.size())}, e.b.getF32Type());
  Value table = arith::ConstantOp::create(
      e.b, e.loc, DenseElementsAttr::get(type, ArrayRef<float>(f32Slopes)));
  return {table, symmetric};
}

Value AlibiArithmetic::at(LinalgBuilder &e, Value rel, Value h) const {
  // In f32 through i32: both convert with vector instructions (i64 -> float
  // has none on AVX2), and an f32 result keeps 24 bits of the distance
  // anyway. Clamping first keeps distances beyond ±2^31 saturated instead
  // of wrapped.
  OpBuilder &b = e.b;
  Location l = e.loc;
  Value lo = e.cI64(-(int64_t(1) << 31) + 1),
        hi = e.cI64((int64_t(1) << 31) - 1);
  Value clamped =
      arith::MinSIOp::create(b, l, arith::MaxSIOp::create(b, l, rel, lo), hi);
  Value r32 = arith::TruncIOp::create(b, l, b.getI32Type(), clamped);
  Value d = arith::SIToFPOp::create(b, l, e.computeType(), r32);
  Value m = e.extract(slopes, {h});
  if (symmetric)
    return arith::NegFOp::create(
        b, l, arith::MulFOp::create(b, l, m, math::AbsFOp::create(b, l, d)));
  return arith::MulFOp::create(b, l, m, d);
}

double AlibiArithmetic::value(double slope, int64_t rel, bool symmetric,
                              bool f64) {
  // As at(): the distance saturated to ±(2^31 − 1), then f32 (or f64)
  // arithmetic.
  constexpr int64_t limit = (int64_t(1) << 31) - 1;
  double d = double(int32_t(std::clamp<int64_t>(rel, -limit, limit)));
  if (f64)
    return symmetric ? -(slope * std::fabs(d)) : slope * d;
  float df = float(d), m = float(slope);
  return symmetric ? -(m * std::fabs(df)) : m * df;
}

RelBiasArithmetic RelBiasArithmetic::prepare(LinalgBuilder &e, RelBiasOp op,
                                             Value table) {
  RelBiasArithmetic r;
  r.table = table;
  r.maxDistance = op.getMaxDistance();
  r.bidirectional = op.getBidirectional();
  r.t5 = op.getKind() == RelBiasKind::t5;
  int64_t n = r.t5 ? *op.getNumBuckets() : 0;
  r.perSide = r.bidirectional ? n / 2 : n;
  if (r.t5)
    r.buckets = e.constTensor(op.getT5DistanceBuckets());
  return r;
}

Value RelBiasArithmetic::at(LinalgBuilder &e, Value rel, Value h) const {
  OpBuilder &b = e.b;
  Location l = e.loc;
  Value zero = e.cI64(0), maxD = e.cI64(maxDistance);
  Value bucket;
  if (t5) {
    // Every distance >= max_distance shares the last entry's bucket; clamp
    // before negating so that rel = -2^63 (wrapped i64 positions) stays
    // far, not zero or negative.
    rel = arith::MaxSIOp::create(b, l, arith::MinSIOp::create(b, l, rel, maxD),
                                 e.cI64(-maxDistance));
    Value b0 = zero, dist;
    if (bidirectional) {
      b0 = e.select(e.cmpI(P::sgt, rel, zero), e.cI64(perSide), zero);
      dist = math::AbsIOp::create(b, l, rel);
    } else {
      dist = arith::MaxSIOp::create(
          b, l, arith::SubIOp::create(b, l, zero, rel), zero);
    }
    Value idx = arith::IndexCastOp::create(b, l, b.getIndexType(), dist);
    bucket = arith::AddIOp::create(b, l, b0, e.extract(buckets, {idx}));
  } else if (bidirectional) {
    Value c = arith::MaxSIOp::create(
        b, l, arith::MinSIOp::create(b, l, rel, maxD), e.cI64(-maxDistance));
    bucket = arith::AddIOp::create(b, l, c, maxD);
  } else {
    Value c = arith::MaxSIOp::create(
        b, l, arith::MinSIOp::create(b, l, rel, zero), e.cI64(-maxDistance));
    bucket = arith::SubIOp::create(b, l, zero, c);
  }
  Value row = arith::IndexCastOp::create(b, l, b.getIndexType(), bucket);
  return e.toCompute(e.extract(table, {row, h}));
}

Value RelBiasArithmetic::distanceTable(LinalgBuilder &e,
                                       OpFoldResult heads) const {
  int64_t width = 2 * maxDistance + 1;
  Value init = e.empty({heads, e.b.getIndexAttr(width)}, e.computeType());
  AffineMap id = e.b.getMultiDimIdentityMap(2);
  return e.generic(
      init.getType(), {}, init, {id},
      {utils::IteratorType::parallel, utils::IteratorType::parallel},
      [&](OpBuilder &nb, Location nl, ValueRange) {
        LinalgBuilder n = e.nested(nb, nl);
        Value c =
            arith::IndexCastOp::create(nb, nl, nb.getI64Type(), n.index(1));
        Value rel = arith::SubIOp::create(nb, nl, c, n.cI64(maxDistance));
        yieldValues(nb, nl, at(n, rel, n.index(0)));
      });
}

AffineMap mlir::posenc::relKeyEmbMap(MLIRContext *ctx, Value emb) {
  auto d = [&](unsigned x) { return getAffineDimExpr(x, ctx); };
  if (cast<RankedTensorType>(emb.getType()).getRank() == 3)
    return AffineMap::get(5, 0, {d(3), d(2), d(4)}, ctx);
  return AffineMap::get(5, 0, {d(3), d(4)}, ctx);
}

Value mlir::posenc::clampedDistanceIndex(LinalgBuilder &e, Value rel,
                                         int64_t maxDistance) {
  Value c = arith::MaxSIOp::create(
      e.b, e.loc, arith::MinSIOp::create(e.b, e.loc, rel, e.cI64(maxDistance)),
      e.cI64(-maxDistance));
  return arith::IndexCastOp::create(
      e.b, e.loc, e.b.getIndexType(),
      arith::AddIOp::create(e.b, e.loc, c, e.cI64(maxDistance)));
}

SmallVector<Value> mlir::posenc::biasIndices(LinalgBuilder &e,
                                             ArrayRef<int64_t> biasShape,
                                             ValueRange bhij) {
  int64_t rank = biasShape.size();
  SmallVector<Value> idx;
  for (int64_t x = 0; x < rank; ++x)
    idx.push_back(biasShape[x] == 1 ? e.cIndex(0) : bhij[4 - rank + x]);
  return idx;
}

//===- AttentionSemantics.cpp - the scalar math of posenc.attention -------===//

#include "posenc/Dialect/Posenc/IR/AttentionSemantics.h"
#include "posenc/Dialect/Posenc/IR/PosencOps.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Math/IR/Math.h"
#include "mlir/Dialect/Tensor/IR/Tensor.h"

#include <limits>

using namespace mlir;
using namespace mlir::posenc;

static Value f32(OpBuilder &b, Location loc, float v) {
  return arith::ConstantOp::create(b, loc, b.getF32FloatAttr(v));
}

static Value negInf(OpBuilder &b, Location loc) {
  return f32(b, loc, -std::numeric_limits<float>::infinity());
}

static Value isNegInf(OpBuilder &b, Location loc, Value x) {
  return arith::CmpFOp::create(b, loc, arith::CmpFPredicate::OEQ, x,
                               negInf(b, loc));
}

Value attention::addBias(OpBuilder &b, Location loc, Value score, Value bias) {
  Value sum = arith::AddFOp::create(b, loc, score, bias);
  return applyMask(b, loc, isNegInf(b, loc, bias), sum);
}

Value attention::applyMask(OpBuilder &b, Location loc, Value masked,
                           Value score) {
  return arith::SelectOp::create(b, loc, masked, negInf(b, loc), score);
}

Value attention::isCausallyMasked(OpBuilder &b, Location loc, Value i, Value j,
                                  Value offset) {
  Value limit = arith::AddIOp::create(b, loc, i, offset);
  return arith::CmpIOp::create(b, loc, arith::CmpIPredicate::sgt, j, limit);
}

Value attention::combineMax(OpBuilder &b, Location loc, Value x, Value y) {
  return arith::MaxNumFOp::create(b, loc, x, y);
}

Value attention::softmaxShift(OpBuilder &b, Location loc, Value rowMax) {
  return arith::SelectOp::create(b, loc, isNegInf(b, loc, rowMax),
                                 f32(b, loc, 0.0f), rowMax);
}

Value attention::softmaxWeight(OpBuilder &b, Location loc, Value score,
                               Value shift) {
  Value p =
      math::ExpOp::create(b, loc, arith::SubFOp::create(b, loc, score, shift));
  return arith::SelectOp::create(b, loc, isNegInf(b, loc, score),
                                 f32(b, loc, -0.0f), p);
}

Value attention::isMaskedWeight(OpBuilder &b, Location loc, Value weight) {
  // -0.0 compares equal to +0.0: test the bits.
  Type i32 = b.getI32Type();
  Value bits = arith::BitcastOp::create(b, loc, i32, weight);
  Value minusZero = arith::ConstantOp::create(
      b, loc, b.getIntegerAttr(i32, int64_t(0x80000000u)));
  return arith::CmpIOp::create(b, loc, arith::CmpIPredicate::eq, bits,
                               minusZero);
}

Value attention::accumulateWeighted(OpBuilder &b, Location loc, Value weight,
                                    Value value, Value acc) {
  Value sum = math::FmaOp::create(b, loc, weight, value, acc);
  return arith::SelectOp::create(b, loc, isMaskedWeight(b, loc, weight), acc,
                                 sum);
}

Value attention::normalize(OpBuilder &b, Location loc, Value acc, Value sum) {
  Value zero = f32(b, loc, 0.0f);
  Value empty =
      arith::CmpFOp::create(b, loc, arith::CmpFPredicate::OEQ, sum, zero);
  return arith::SelectOp::create(b, loc, empty, zero,
                                 arith::DivFOp::create(b, loc, acc, sum));
}

Value AttentionOp::buildScore(OpBuilder &builder, Location loc, Value scaledDot,
                              Value bias, ValueRange indices,
                              Value causalOffset) {
  Value s = scaledDot;
  if (bias)
    s = attention::addBias(builder, loc, s, bias);
  s = inlineScoreMod(builder, s, buildGlobalIndices(builder, loc, indices));
  if (getCausal())
    s = attention::applyMask(builder, loc,
                             attention::isCausallyMasked(builder, loc,
                                                         indices[2], indices[3],
                                                         causalOffset),
                             s);
  return s;
}

Value AttentionOp::buildDiagonal(OpBuilder &builder, Location loc) {
  if (Value diagonal = getDiagonal())
    return diagonal;
  auto dim = [&](Value t, int64_t d) -> Value {
    int64_t size = cast<RankedTensorType>(t.getType()).getDimSize(d);
    if (!ShapedType::isDynamic(size))
      return arith::ConstantIndexOp::create(builder, loc, size);
    return tensor::DimOp::create(builder, loc, t, d);
  };
  return arith::SubIOp::create(builder, loc, dim(getK(), 1), dim(getQ(), 1));
}

SmallVector<Value> AttentionOp::buildGlobalIndices(OpBuilder &builder,
                                                   Location loc,
                                                   ValueRange indices) {
  SmallVector<Value> global(indices);
  // No score_mod: nothing reads them.
  if (getOffsets().empty() || !getScoreModBlock())
    return global;
  for (auto [index, offset] : llvm::zip(global, getOffsets()))
    index = arith::AddIOp::create(builder, loc, index, offset);
  return global;
}

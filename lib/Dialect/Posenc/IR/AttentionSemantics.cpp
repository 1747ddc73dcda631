//===- AttentionSemantics.cpp - the scalar math of posenc.attention -------===//

#include "posenc/Dialect/Posenc/IR/AttentionSemantics.h"
#include "posenc/Dialect/Posenc/IR/PosencOps.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Math/IR/Math.h"
#include "mlir/Dialect/MemRef/IR/MemRef.h"
#include "mlir/Dialect/Tensor/IR/Tensor.h"

#include "mlir/IR/IRMapping.h"

#include <cmath>
#include <limits>

using namespace mlir;
using namespace mlir::posenc;

/// A constant of `like`'s float type (f32 or f64: the compute type).
static Value constantLike(OpBuilder &b, Location loc, Value like, double v) {
  return arith::ConstantOp::create(b, loc, b.getFloatAttr(like.getType(), v));
}

static Value negInf(OpBuilder &b, Location loc, Value like) {
  return constantLike(b, loc, like, -std::numeric_limits<double>::infinity());
}

static Value isNegInf(OpBuilder &b, Location loc, Value x) {
  return arith::CmpFOp::create(b, loc, arith::CmpFPredicate::OEQ, x,
                               negInf(b, loc, x));
}

FloatType attention::computeTypeFor(Type elementType) {
  Builder b(elementType.getContext());
  return elementType.isF64() ? b.getF64Type() : b.getF32Type();
}

Value attention::addBias(OpBuilder &b, Location loc, Value score, Value bias) {
  Value sum = arith::AddFOp::create(b, loc, score, bias);
  return applyMask(b, loc, isNegInf(b, loc, bias), sum);
}

Value attention::applyMask(OpBuilder &b, Location loc, Value masked,
                           Value score) {
  return arith::SelectOp::create(b, loc, masked, negInf(b, loc, score), score);
}

Value attention::isCausallyMasked(OpBuilder &b, Location loc, Value i, Value j,
                                  Value offset) {
  Value limit = arith::AddIOp::create(b, loc, i, offset);
  return arith::CmpIOp::create(b, loc, arith::CmpIPredicate::sgt, j, limit);
}

Value attention::isOutsideWindow(OpBuilder &b, Location loc, Value i, Value j,
                                 Value offset, int64_t window) {
  Value diagonal = arith::AddIOp::create(b, loc, i, offset);
  Value first = arith::SubIOp::create(
      b, loc, diagonal, arith::ConstantIndexOp::create(b, loc, window - 1));
  return arith::CmpIOp::create(b, loc, arith::CmpIPredicate::slt, j, first);
}

Value attention::isOutsideChunk(OpBuilder &b, Location loc, Value i, Value j,
                                Value offset, Value keyShift, int64_t chunk) {
  Value size = arith::ConstantIndexOp::create(b, loc, chunk);
  Value position = arith::AddIOp::create(
      b, loc, arith::AddIOp::create(b, loc, i, offset), keyShift);
  Value first = arith::MulIOp::create(
      b, loc, arith::FloorDivSIOp::create(b, loc, position, size), size);
  return arith::CmpIOp::create(b, loc, arith::CmpIPredicate::slt,
                               arith::AddIOp::create(b, loc, j, keyShift),
                               first);
}

Value attention::sinkSum(OpBuilder &b, Location loc, Value sink) {
  return arith::SelectOp::create(b, loc, isNegInf(b, loc, sink),
                                 constantLike(b, loc, sink, 0.0),
                                 constantLike(b, loc, sink, 1.0));
}

Value attention::combineMax(OpBuilder &b, Location loc, Value x, Value y) {
  return arith::MaxNumFOp::create(b, loc, x, y);
}

Value attention::softmaxShift(OpBuilder &b, Location loc, Value rowMax) {
  return arith::SelectOp::create(b, loc, isNegInf(b, loc, rowMax),
                                 constantLike(b, loc, rowMax, 0.0), rowMax);
}

Value attention::rescaleFactor(OpBuilder &b, Location loc, Value oldMax,
                               Value newMax) {
  return math::ExpOp::create(
      b, loc,
      arith::SubFOp::create(b, loc, oldMax, softmaxShift(b, loc, newMax)));
}

Value attention::softmaxWeight(OpBuilder &b, Location loc, Value score,
                               Value shift) {
  Value p =
      math::ExpOp::create(b, loc, arith::SubFOp::create(b, loc, score, shift));
  return arith::SelectOp::create(b, loc, isNegInf(b, loc, score),
                                 constantLike(b, loc, score, -0.0), p);
}

Value attention::isMaskedWeight(OpBuilder &b, Location loc, Value weight) {
  // -0.0 compares equal to +0.0: test the bits (the sign bit alone).
  unsigned width = weight.getType().getIntOrFloatBitWidth();
  Type bitsTy = b.getIntegerType(width);
  Value bits = arith::BitcastOp::create(b, loc, bitsTy, weight);
  Value minusZero = arith::ConstantOp::create(
      b, loc, b.getIntegerAttr(bitsTy, APInt::getSignMask(width)));
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
  Value zero = constantLike(b, loc, sum, 0.0);
  Value empty =
      arith::CmpFOp::create(b, loc, arith::CmpFPredicate::OEQ, sum, zero);
  return arith::SelectOp::create(b, loc, empty, zero,
                                 arith::DivFOp::create(b, loc, acc, sum));
}

//===----------------------------------------------------------------------===//
// The score step of attention and online_attention
//===----------------------------------------------------------------------===//

namespace {
template <typename OpT> std::optional<double> scaleOrDefault(OpT op) {
  if (std::optional<APFloat> s = op.getScale())
    return s->convertToDouble();
  int64_t dk = op.getQ().getType().getDimSize(3);
  if (ShapedType::isDynamic(dk))
    return std::nullopt;
  return 1.0 / std::sqrt(double(dk));
}

template <typename OpT> Block *scoreModBlock(OpT op) {
  return op.getScoreMod().empty() ? nullptr : &op.getScoreMod().front();
}

template <typename OpT>
Value inlineScoreModImpl(OpT op, OpBuilder &builder, Value score,
                         ValueRange indices) {
  Block *block = scoreModBlock(op);
  if (!block)
    return score;
  IRMapping map;
  map.map(block->getArgument(0), score);
  for (auto [arg, index] :
       llvm::zip(block->getArguments().drop_front(), indices))
    map.map(arg, index);
  for (Operation &inner : block->without_terminator())
    builder.clone(inner, map);
  // The yielded value may be defined above the region (a captured value
  // or a hoisted constant): not in the map, it stands for itself.
  return map.lookupOrDefault(cast<YieldOp>(block->getTerminator()).getValue());
}

template <typename OpT>
SmallVector<Value> globalIndices(OpT op, OpBuilder &builder, Location loc,
                                 ValueRange indices) {
  SmallVector<Value> global(indices);
  // No score_mod: nothing reads them.
  if (op.getOffsets().empty() || !scoreModBlock(op))
    return global;
  for (auto [index, offset] : llvm::zip(global, op.getOffsets()))
    index = arith::AddIOp::create(builder, loc, index, offset);
  return global;
}

template <typename OpT>
Value buildScoreImpl(OpT op, OpBuilder &builder, Location loc, Value scaledDot,
                     Value bias, ValueRange indices, Value causalOffset) {
  Value s = scaledDot;
  if (FloatAttr cap = op.getSoftcapAttr()) {
    // c·tanh(s / c), in the compute type like the score.
    Value c = constantLike(builder, loc, s, cap.getValueAsDouble());
    Value t = math::TanhOp::create(builder, loc,
                                   arith::DivFOp::create(builder, loc, s, c));
    s = arith::MulFOp::create(builder, loc, c, t);
  }
  if (bias)
    s = attention::addBias(builder, loc, s, bias);
  s = inlineScoreModImpl(op, builder, s,
                         globalIndices(op, builder, loc, indices));
  if (op.getCausal()) {
    Value masked = attention::isCausallyMasked(builder, loc, indices[2],
                                               indices[3], causalOffset);
    if (std::optional<int64_t> window = op.getWindow())
      masked = arith::OrIOp::create(
          builder, loc, masked,
          attention::isOutsideWindow(builder, loc, indices[2], indices[3],
                                     causalOffset, *window));
    if (std::optional<int64_t> chunk = op.getChunk()) {
      // Chunk boundaries are absolute key positions: a block of keys that
      // starts at key j0 of a larger op sees its keys shifted by j0 (its
      // fourth offset; tiles of attention start at a chunk boundary).
      Value shift = op.getOffsets().size() == 4
                        ? op.getOffsets()[3]
                        : arith::ConstantIndexOp::create(builder, loc, 0);
      masked = arith::OrIOp::create(
          builder, loc, masked,
          attention::isOutsideChunk(builder, loc, indices[2], indices[3],
                                    causalOffset, shift, *chunk));
    }
    s = attention::applyMask(builder, loc, masked, s);
  }
  return s;
}

template <typename OpT>
Value diagonalImpl(OpT op, OpBuilder &builder, Location loc) {
  if (Value diagonal = op.getDiagonal())
    return diagonal;
  auto dim = [&](Value t, int64_t d) -> Value {
    int64_t size = cast<ShapedType>(t.getType()).getDimSize(d);
    if (!ShapedType::isDynamic(size))
      return arith::ConstantIndexOp::create(builder, loc, size);
    if (isa<MemRefType>(t.getType()))
      return memref::DimOp::create(builder, loc, t, d);
    return tensor::DimOp::create(builder, loc, t, d);
  };
  return arith::SubIOp::create(builder, loc, dim(op.getK(), 1),
                               dim(op.getQ(), 1));
}
} // namespace

#define POSENC_ATTENTION_SCORE_METHODS(OpT)                                    \
  FloatType OpT::getComputeType() {                                            \
    return attention::computeTypeFor(getQ().getType().getElementType());       \
  }                                                                            \
  std::optional<double> OpT::getScaleOrDefault() {                             \
    return scaleOrDefault(*this);                                              \
  }                                                                            \
  Block *OpT::getScoreModBlock() { return scoreModBlock(*this); }              \
  Value OpT::inlineScoreMod(OpBuilder &builder, Value score,                   \
                            ValueRange indices) {                              \
    return inlineScoreModImpl(*this, builder, score, indices);                 \
  }                                                                            \
  Value OpT::buildScore(OpBuilder &builder, Location loc, Value scaledDot,     \
                        Value bias, ValueRange indices, Value causalOffset) {  \
    return buildScoreImpl(*this, builder, loc, scaledDot, bias, indices,       \
                          causalOffset);                                       \
  }                                                                            \
  Value OpT::buildDiagonal(OpBuilder &builder, Location loc) {                 \
    return diagonalImpl(*this, builder, loc);                                  \
  }                                                                            \
  SmallVector<Value> OpT::buildGlobalIndices(OpBuilder &builder, Location loc, \
                                             ValueRange indices) {             \
    return globalIndices(*this, builder, loc, indices);                        \
  }

POSENC_ATTENTION_SCORE_METHODS(AttentionOp)
POSENC_ATTENTION_SCORE_METHODS(OnlineAttentionOp)

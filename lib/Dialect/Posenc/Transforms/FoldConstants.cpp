//===- FoldConstants.cpp - posenc-fold-constants --------------------------===//
//
// Evaluates posenc ops on constant operands at compile time, in float64,
// following the op semantics (the same math as the lowering, evaluated
// here on the host).
//
//===----------------------------------------------------------------------===//

#include "posenc/Dialect/Posenc/Transforms/Passes.h"

#include "posenc/Dialect/Posenc/IR/PosencOps.h"
#include "posenc/Dialect/Posenc/IR/RopeFrequencies.h"
#include "posenc/Dialect/Posenc/Utils/BiasArithmetic.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/IR/Matchers.h"
#include "mlir/IR/PatternMatch.h"

#include <cmath>

namespace mlir::posenc {
#define GEN_PASS_DEF_POSENCFOLDCONSTANTSPASS
#include "posenc/Dialect/Posenc/Transforms/Passes.h.inc"
} // namespace mlir::posenc

using namespace mlir;
using namespace mlir::posenc;

namespace {
/// A constant operand as flat int64 or double values with its shape.
struct Flat {
  SmallVector<int64_t> shape;
  SmallVector<int64_t> ints;
  SmallVector<double> reals;
};

std::optional<Flat> constantOf(Value v) {
  DenseElementsAttr attr;
  if (!matchPattern(v, m_Constant(&attr)))
    return std::nullopt;
  Flat f;
  f.shape.assign(attr.getType().getShape().begin(),
                 attr.getType().getShape().end());
  if (isa<IntegerType>(attr.getElementType())) {
    for (const APInt &i : attr.getValues<APInt>())
      f.ints.push_back(i.getSExtValue());
  } else {
    for (const APFloat &x : attr.getValues<APFloat>())
      f.reals.push_back(x.convertToDouble());
  }
  return f;
}

/// Rounds float64 values once to the result's element type.
DenseElementsAttr toAttr(RankedTensorType type, ArrayRef<double> values) {
  auto ft = cast<FloatType>(type.getElementType());
  SmallVector<APFloat> out;
  for (double v : values) {
    APFloat a(v);
    bool lost;
    a.convert(ft.getFloatSemantics(), APFloat::rmNearestTiesToEven, &lost);
    out.push_back(a);
  }
  return DenseElementsAttr::get(type, out);
}

/// Position of (batch b, sequence s) in positions of shape [S] or [B, S].
int64_t posAt(const Flat &p, int64_t b, int64_t s) {
  return p.shape.size() == 2 ? p.ints[b * p.shape[1] + s] : p.ints[s];
}

std::optional<SmallVector<double>> evalRope(RopeOp op) {
  auto x = constantOf(op.getX()), p = constantOf(op.getPos());
  if (!x || !p)
    return std::nullopt;
  int64_t B = x->shape[0], S = x->shape[1], H = x->shape[2], D = x->shape[3];
  int64_t R = *op.getRotaryDimOrHeadDim();
  int64_t maxPos = std::numeric_limits<int64_t>::min();
  for (int64_t v : p->ints)
    maxPos = std::max(maxPos, v);
  SmallVector<double> omega = ropeFrequenciesForRun(
      op.getScalingOrNone(), op.getBase().convertToDouble(), R, maxPos);
  double a = op.getEffectiveAttentionFactor();
  bool half = op.getLayout() == RopeLayout::half;
  // M-RoPE: pair i reads axis pairAxes[i] of positions [A, B?, S].
  SmallVector<int64_t> pairAxes = op.getPairAxes();
  auto positionOf = [&](int64_t b, int64_t s, int64_t i) {
    if (pairAxes.empty())
      return posAt(*p, b, s);
    int64_t perAxis = p->ints.size() / p->shape[0];
    int64_t at = p->shape.size() == 3 ? b * S + s : s;
    return p->ints[pairAxes[i] * perAxis + at];
  };
  SmallVector<double> y(x->reals);
  for (int64_t b = 0; b < B; ++b)
    for (int64_t s = 0; s < S; ++s)
      for (int64_t h = 0; h < H; ++h)
        for (int64_t i = 0; i < R / 2; ++i) {
          int64_t base = ((b * S + s) * H + h) * D;
          int64_t u = base + (half ? i : 2 * i);
          int64_t v = base + (half ? i + R / 2 : 2 * i + 1);
          double theta = double(positionOf(b, s, i)) * omega[i];
          double c = std::cos(theta), sn = std::sin(theta);
          y[u] = a * (x->reals[u] * c - x->reals[v] * sn);
          y[v] = a * (x->reals[v] * c + x->reals[u] * sn);
        }
  return y;
}

std::optional<SmallVector<double>> evalSinusoidal(SinusoidalOp op) {
  auto p = constantOf(op.getPos());
  if (!p)
    return std::nullopt;
  SmallVector<SinusoidalColumn> cols =
      sinusoidalColumns(op.getConvention(), op.getLayout(), op.getDim(),
                        op.getBase().convertToDouble());
  std::optional<int64_t> paddingIdx = op.getPaddingIdx();
  SmallVector<double> out;
  // sin(p·ω + φ), as the lowering computes it.
  for (int64_t pos : p->ints)
    for (const SinusoidalColumn &c : cols) {
      out.push_back(
          pos == paddingIdx ? 0.0 : std::sin(double(pos) * c.omega + c.phase));
    }
  return out;
}

/// Evaluates a bias [B?, H, Sq, Sk] from fn(h, rel = k − q).
template <typename Fn>
std::optional<SmallVector<double>> evalBias(Value qPos, Value kPos,
                                            RankedTensorType rTy, Fn fn) {
  auto q = constantOf(qPos), k = constantOf(kPos);
  if (!q || !k)
    return std::nullopt;
  bool batched = rTy.getRank() == 4;
  int64_t B = batched ? rTy.getDimSize(0) : 1;
  int64_t H = rTy.getDimSize(batched ? 1 : 0);
  int64_t Sq = q->shape.back(), Sk = k->shape.back();
  SmallVector<double> out;
  for (int64_t b = 0; b < B; ++b)
    for (int64_t h = 0; h < H; ++h)
      for (int64_t i = 0; i < Sq; ++i)
        for (int64_t j = 0; j < Sk; ++j)
          // k − q wraps like the lowering's i64 subtraction.
          out.push_back(fn(h, int64_t(uint64_t(posAt(*k, b, j)) -
                                      uint64_t(posAt(*q, b, i)))));
  return out;
}

std::optional<SmallVector<double>> evaluate(Operation *op) {
  if (auto rope = dyn_cast<RopeOp>(op))
    return evalRope(rope);
  if (auto sin = dyn_cast<SinusoidalOp>(op))
    return evalSinusoidal(sin);
  if (auto alibi = dyn_cast<AlibiBiasOp>(op)) {
    SmallVector<double> slopes = alibi.getSlopesOrDefault();
    bool symmetric = alibi.getMode() == AlibiMode::symmetric;
    bool f64 = alibi.getResult().getType().getElementType().isF64();
    return evalBias(alibi.getQPos(), alibi.getKPos(),
                    alibi.getResult().getType(), [&](int64_t h, int64_t rel) {
                      return AlibiArithmetic::value(slopes[h], rel, symmetric,
                                                    f64);
                    });
  }
  if (auto rel = dyn_cast<RelBiasOp>(op)) {
    auto table = constantOf(rel.getTable());
    if (!table)
      return std::nullopt;
    int64_t H = table->shape[1];
    return evalBias(rel.getQPos(), rel.getKPos(), rel.getResult().getType(),
                    [&](int64_t h, int64_t r) {
                      return table->reals[rel.getBucket(r) * H + h];
                    });
  }
  return std::nullopt;
}

struct PosencFoldConstantsPass
    : posenc::impl::PosencFoldConstantsPassBase<PosencFoldConstantsPass> {
  using Base::Base;

  void runOnOperation() override {
    SmallVector<Operation *> candidates;
    getOperation()->walk([&](Operation *op) {
      if (isa<RopeOp, SinusoidalOp, AlibiBiasOp, RelBiasOp>(op))
        candidates.push_back(op);
    });
    IRRewriter rewriter(&getContext());
    for (Operation *op : candidates) {
      auto rTy = cast<RankedTensorType>(op->getResult(0).getType());
      if (!rTy.hasStaticShape() || rTy.getNumElements() > maxElements)
        continue;
      std::optional<SmallVector<double>> values = evaluate(op);
      if (!values)
        continue;
      rewriter.setInsertionPoint(op);
      rewriter.replaceOpWithNewOp<arith::ConstantOp>(op, toAttr(rTy, *values));
    }
  }
};
} // namespace

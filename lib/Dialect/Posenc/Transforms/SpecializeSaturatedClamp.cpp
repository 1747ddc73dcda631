//===- SpecializeSaturatedClamp.cpp - posenc-specialize-saturated-clamp ---===//
//
// generic { ... clamp(a(d_p) - b(d_q), lo, hi) ... }
//   -> ranges of a over d_p and of b over d_q (two loops);
//      scf.if (max a - min b <= lo) { generic with lo }
//      else scf.if (min a - max b >= hi) { generic with hi }
//      else { generic }
//
// A clamped relative distance (T5 buckets, relative keys) is constant over
// the key tiles beyond max_distance: their score step then reads one table
// entry instead of gathering one per score.
//
//===----------------------------------------------------------------------===//

#include "posenc/Dialect/Posenc/Transforms/Passes.h"

#include "mlir/Analysis/SliceAnalysis.h"
#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Arith/Utils/Utils.h"
#include "mlir/Dialect/Linalg/IR/Linalg.h"
#include "mlir/Dialect/SCF/IR/SCF.h"
#include "mlir/IR/IRMapping.h"
#include "mlir/IR/Matchers.h"
#include "mlir/Interfaces/SideEffectInterfaces.h"

namespace mlir::posenc {
#define GEN_PASS_DEF_POSENCSPECIALIZESATURATEDCLAMPPASS
#include "posenc/Dialect/Posenc/Transforms/Passes.h.inc"
} // namespace mlir::posenc

using namespace mlir;

namespace {
/// A value of the body computed from one loop dim: the body ops it needs,
/// in block order.
struct DimSlice {
  unsigned dim = 0;
  SmallVector<Operation *> ops;
};

/// The body ops `v` depends on (upstream's backward slice, defs first), if
/// they are side-effect free, read no block argument and use `linalg.index`
/// of exactly one dim.
std::optional<DimSlice> sliceOfOneDim(Value v, Block *body) {
  BackwardSliceOptions options;
  options.inclusive = true;
  options.omitBlockArguments = true;
  options.filter = [&](Operation *op) { return op->getBlock() == body; };
  llvm::SetVector<Operation *> slice;
  if (failed(getBackwardSlice(v, &slice, options)) || slice.empty())
    return std::nullopt;
  std::optional<unsigned> dim;
  for (Operation *op : slice) {
    if (auto index = dyn_cast<linalg::IndexOp>(op)) {
      if (dim && *dim != index.getDim())
        return std::nullopt;
      dim = index.getDim();
      continue;
    }
    if (op->getNumRegions() != 0 || !isMemoryEffectFree(op) ||
        llvm::any_of(op->getOperands(), [&](Value x) {
          auto arg = dyn_cast<BlockArgument>(x);
          return arg && arg.getOwner() == body;
        }))
      return std::nullopt;
  }
  if (!dim)
    return std::nullopt;
  return DimSlice{*dim, slice.takeVector()};
}

/// `x` extended from a narrower signless integer.
bool isSignExtended(Value x) {
  auto ext = x.getDefiningOp<arith::ExtSIOp>();
  return ext && ext.getIn().getType().getIntOrFloatBitWidth() <
                    ext.getType().getIntOrFloatBitWidth();
}

struct Clamp {
  Operation *op; // the outer min/max: its result is the clamped value
  int64_t lo, hi;
  DimSlice a, b;
};

std::optional<int64_t> constantOf(Value v) {
  APInt value;
  if (!matchPattern(v, m_ConstantInt(&value)) || value.getBitWidth() > 64)
    return std::nullopt;
  return value.getSExtValue();
}

/// maxsi(minsi(x, hi), lo) or minsi(maxsi(x, lo), hi) with x = a - b.
std::optional<Clamp> matchClamp(Operation *outer, Block *body) {
  auto bound = [](Operation *op, Value &other) -> std::optional<int64_t> {
    for (int i = 0; i < 2; ++i)
      if (std::optional<int64_t> c = constantOf(op->getOperand(i))) {
        other = op->getOperand(1 - i);
        return c;
      }
    return std::nullopt;
  };
  bool outerMax = isa<arith::MaxSIOp>(outer);
  if (!outerMax && !isa<arith::MinSIOp>(outer))
    return std::nullopt;
  Value innerValue, x;
  std::optional<int64_t> outerBound = bound(outer, innerValue);
  if (!outerBound)
    return std::nullopt;
  Operation *inner = innerValue.getDefiningOp();
  if (!inner ||
      (outerMax ? !isa<arith::MinSIOp>(inner) : !isa<arith::MaxSIOp>(inner)))
    return std::nullopt;
  std::optional<int64_t> innerBound = bound(inner, x);
  // Scalar integers only (index and vectors have no fixed width here).
  if (!innerBound)
    return std::nullopt;
  auto intTy = dyn_cast<IntegerType>(x.getType());
  if (!intTy || intTy.getWidth() > 64)
    return std::nullopt;
  int64_t lo = outerMax ? *outerBound : *innerBound;
  int64_t hi = outerMax ? *innerBound : *outerBound;
  auto sub = x.getDefiningOp<arith::SubIOp>();
  if (lo > hi || !sub || sub->getBlock() != body ||
      !isSignExtended(sub.getLhs()) || !isSignExtended(sub.getRhs()))
    return std::nullopt;
  std::optional<DimSlice> a = sliceOfOneDim(sub.getLhs(), body);
  std::optional<DimSlice> b = sliceOfOneDim(sub.getRhs(), body);
  if (!a || !b || a->dim == b->dim)
    return std::nullopt;
  return Clamp{outer, lo, hi, std::move(*a), std::move(*b)};
}

/// min and max of the slice's value over [0, ub) of its dim.
std::pair<Value, Value> rangeOf(OpBuilder &b, Location loc,
                                const DimSlice &slice, Value ub) {
  Type ty = slice.ops.back()->getResult(0).getType();
  unsigned width = ty.getIntOrFloatBitWidth();
  Value top = arith::ConstantOp::create(
      b, loc, ty, b.getIntegerAttr(ty, APInt::getSignedMaxValue(width)));
  Value bottom = arith::ConstantOp::create(
      b, loc, ty, b.getIntegerAttr(ty, APInt::getSignedMinValue(width)));
  Value zero = arith::ConstantIndexOp::create(b, loc, 0);
  Value one = arith::ConstantIndexOp::create(b, loc, 1);
  auto loop = scf::ForOp::create(
      b, loc, zero, ub, one, ValueRange{top, bottom},
      [&](OpBuilder &nb, Location nl, Value iv, ValueRange acc) {
        IRMapping map;
        for (Operation *op : slice.ops) {
          if (isa<linalg::IndexOp>(op))
            map.map(op->getResult(0), iv);
          else
            nb.clone(*op, map);
        }
        Value v = map.lookup(slice.ops.back()->getResult(0));
        scf::YieldOp::create(
            nb, nl,
            ValueRange{arith::MinSIOp::create(nb, nl, acc[0], v),
                       arith::MaxSIOp::create(nb, nl, acc[1], v)});
      });
  return {loop.getResult(0), loop.getResult(1)};
}

/// A copy of `op` (built at `b`) whose clamp yields the constant `bound`.
linalg::GenericOp cloneWithBound(OpBuilder &b, linalg::GenericOp op,
                                 Operation *clamp, int64_t bound) {
  IRMapping map;
  auto copy = cast<linalg::GenericOp>(b.clone(*op, map));
  Operation *clamped = map.lookup(clamp);
  OpBuilder inBody = OpBuilder::atBlockBegin(copy.getBody());
  Type ty = clamped->getResult(0).getType();
  Value c = arith::ConstantOp::create(inBody, clamped->getLoc(), ty,
                                      inBody.getIntegerAttr(ty, bound));
  clamped->getResult(0).replaceAllUsesWith(c);
  return copy;
}

void specialize(linalg::GenericOp op, const Clamp &clamp) {
  OpBuilder b(op);
  Location loc = op.getLoc();
  SmallVector<Range, 4> ranges =
      cast<linalg::LinalgOp>(op.getOperation()).createLoopRanges(b, loc);
  // Bounds only over a non-empty space: an index the op never computes is
  // never read.
  Value zero = arith::ConstantIndexOp::create(b, loc, 0);
  SmallVector<Value> sizes;
  Value nonEmpty;
  for (Range r : ranges) {
    Value size = getValueOrCreateConstantIndexOp(b, loc, r.size);
    sizes.push_back(size);
    Value positive =
        arith::CmpIOp::create(b, loc, arith::CmpIPredicate::sgt, size, zero);
    nonEmpty =
        nonEmpty ? arith::AndIOp::create(b, loc, nonEmpty, positive) : positive;
  }
  auto bound = [&](unsigned dim) {
    return arith::SelectOp::create(b, loc, nonEmpty, sizes[dim], zero)
        .getResult();
  };
  auto [aMin, aMax] = rangeOf(b, loc, clamp.a, bound(clamp.a.dim));
  auto [bMin, bMax] = rangeOf(b, loc, clamp.b, bound(clamp.b.dim));
  Type ty = clamp.op->getResult(0).getType();
  auto constant = [&](int64_t v) {
    return arith::ConstantOp::create(b, loc, ty, b.getIntegerAttr(ty, v));
  };
  Value atLow = arith::CmpIOp::create(b, loc, arith::CmpIPredicate::sle,
                                      arith::SubIOp::create(b, loc, aMax, bMin),
                                      constant(clamp.lo));
  Value atHigh = arith::CmpIOp::create(
      b, loc, arith::CmpIPredicate::sge,
      arith::SubIOp::create(b, loc, aMin, bMax), constant(clamp.hi));

  TypeRange types = op->getResultTypes();
  auto low = scf::IfOp::create(b, loc, types, atLow, /*withElse=*/true);
  op->replaceAllUsesWith(low.getResults());
  b.setInsertionPointToStart(low.thenBlock());
  scf::YieldOp::create(b, loc,
                       cloneWithBound(b, op, clamp.op, clamp.lo)->getResults());
  b.setInsertionPointToStart(low.elseBlock());
  auto high = scf::IfOp::create(b, loc, types, atHigh, /*withElse=*/true);
  scf::YieldOp::create(b, loc, high.getResults());
  b.setInsertionPointToStart(high.thenBlock());
  scf::YieldOp::create(b, loc,
                       cloneWithBound(b, op, clamp.op, clamp.hi)->getResults());
  b.setInsertionPointToStart(high.elseBlock());
  auto keep = scf::YieldOp::create(b, loc, op->getResults());
  op->moveBefore(keep);
}

struct PosencSpecializeSaturatedClampPass
    : posenc::impl::PosencSpecializeSaturatedClampPassBase<
          PosencSpecializeSaturatedClampPass> {
  void runOnOperation() override {
    SmallVector<std::pair<linalg::GenericOp, Clamp>> found;
    getOperation()->walk([&](linalg::GenericOp op) {
      if (!op.hasPureTensorSemantics())
        return;
      Block *body = op.getBody();
      for (Operation &inner : *body)
        if (std::optional<Clamp> clamp = matchClamp(&inner, body)) {
          found.push_back({op, std::move(*clamp)});
          return; // one version per op
        }
    });
    for (auto &[op, clamp] : found)
      specialize(op, clamp);
  }
};
} // namespace

//===- PosencOps.cpp - posenc operations ----------------------------------===//

#include "posenc/Dialect/Posenc/IR/PosencOps.h"

#include "DiagnosticFormat.h"
#include "posenc/Dialect/Posenc/IR/RopeFrequencies.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Tensor/IR/Tensor.h"
#include "mlir/IR/PatternMatch.h"

#include "mlir/IR/Builders.h"
#include "mlir/IR/BuiltinTypes.h"
#include "mlir/IR/IRMapping.h"
#include "mlir/IR/Matchers.h"
#include "mlir/IR/OpImplementation.h"
#include "llvm/ADT/STLExtras.h"
#include "llvm/Support/MathExtras.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <string>

using namespace mlir;
using namespace mlir::posenc;

//===----------------------------------------------------------------------===//
// Shape checking helpers
//===----------------------------------------------------------------------===//

namespace {
/// One dimension of one operand or result, named for diagnostics.
struct DimRef {
  StringRef operand;
  Value value;
  unsigned index;

  ShapedType type() const { return cast<ShapedType>(value.getType()); }
  int64_t size() const { return type().getDimSize(index); }
};
} // namespace

LogicalResult mlir::posenc::detail::verifyBoundedTensorSizes(Operation *op) {
  auto check = [&](Type t, StringRef kind, unsigned i) -> LogicalResult {
    auto tensor = dyn_cast<RankedTensorType>(t);
    if (!tensor || !tensor.getElementType().isIntOrFloat() ||
        llvm::is_contained(tensor.getShape(), 0))
      return success();
    // Static dims only: dynamic ones are bounded by the arrays passed in.
    int64_t bytes = (tensor.getElementTypeBitWidth() + 7) / 8;
    for (int64_t d : tensor.getShape()) {
      if (ShapedType::isDynamic(d))
        continue;
      if (llvm::MulOverflow(bytes, d, bytes))
        return op->emitOpError()
               << kind << " #" << i << " has type " << t
               << ", whose size in bytes overflows 64-bit arithmetic";
    }
    return success();
  };
  for (auto [i, t] : llvm::enumerate(op->getOperandTypes()))
    if (failed(check(t, "operand", i)))
      return failure();
  for (auto [i, t] : llvm::enumerate(op->getResultTypes()))
    if (failed(check(t, "result", i)))
      return failure();
  return success();
}

/// Frequencies, slopes and T5 buckets are tables built at compile time, and
/// distance tables have 2*max_distance+1 rows: their sizes are bounded so
/// that no attribute value can exhaust the compiler's memory or overflow.
static constexpr int64_t kMaxTableEntries = int64_t(1) << 20;

static LogicalResult checkTableSize(Operation *op, StringRef name,
                                    int64_t value) {
  if (value <= kMaxTableEntries)
    return success();
  return op->emitOpError() << name << " (" << value << ") must be at most "
                           << kMaxTableEntries;
}

/// Checks that `type` has rank `rank`; `layout` names the dims for users.
static LogicalResult checkRank(Operation *op, StringRef name, ShapedType type,
                               int64_t rank, StringRef layout) {
  if (type.getRank() == rank)
    return success();
  return op->emitOpError() << name << " must have rank " << rank << " ("
                           << layout << "), got " << type;
}

/// Checks that positions are `[S]` or `[B, S]`.
static LogicalResult checkPositions(Operation *op, StringRef name,
                                    RankedTensorType type) {
  if (type.getRank() == 1 || type.getRank() == 2)
    return success();
  return op->emitOpError() << name << " must be [S] or [B, S], got " << type;
}

/// While getDimConstraints runs a verifier, the shape checks also record
/// their relations here: one list of relations serves the verifier (static
/// sizes) and the lowerings (dynamic sizes, at run time).
static thread_local SmallVectorImpl<DimConstraint> *constraintSink = nullptr;

static void record(DimConstraint::Kind kind, StringRef what,
                   ArrayRef<DimRef> refs,
                   std::optional<int64_t> constant = std::nullopt) {
  if (!constraintSink)
    return;
  DimConstraint c;
  c.kind = kind;
  c.what = what.str();
  for (const DimRef &r : refs)
    c.refs.push_back({r.operand, r.value, r.index});
  c.constant = constant;
  constraintSink->push_back(std::move(c));
}

SmallVector<DimConstraint> mlir::posenc::getDimConstraints(Operation *op) {
  SmallVector<DimConstraint> result;
  if (!isa<PosencDialect>(op->getDialect()))
    return result;
  constraintSink = &result;
  LogicalResult verified = op->getName().verifyInvariants(op);
  constraintSink = nullptr;
  // An invalid op has no meaningful relations (and never reaches a
  // lowering: the pass manager verifies first).
  if (failed(verified))
    result.clear();
  return result;
}

/// Checks that every static size among `refs` (which all denote the dim
/// `dimName`) agrees with the first static one. Dynamic sizes are accepted.
static LogicalResult checkSameDim(Operation *op, StringRef dimName,
                                  ArrayRef<DimRef> refs) {
  record(DimConstraint::Kind::equal, dimName, refs);
  const DimRef *first = nullptr;
  for (const DimRef &ref : refs) {
    if (ShapedType::isDynamic(ref.size()))
      continue;
    if (!first) {
      first = &ref;
      continue;
    }
    if (ref.size() != first->size())
      return op->emitOpError()
             << dimName << " of " << ref.operand << " (" << ref.size()
             << ") must equal " << dimName << " of " << first->operand << " ("
             << first->size() << ")";
  }
  return success();
}

static LogicalResult
checkSameElementType(Operation *op,
                     ArrayRef<std::pair<StringRef, Value>> values) {
  Type first =
      cast<ShapedType>(values.front().second.getType()).getElementType();
  for (auto [name, value] : values.drop_front()) {
    Type t = cast<ShapedType>(value.getType()).getElementType();
    if (t != first)
      return op->emitOpError() << "element type of " << name << " (" << t
                               << ") must equal element type of "
                               << values.front().first << " (" << first << ")";
  }
  return success();
}

static LogicalResult checkPositiveFinite(Operation *op, StringRef name,
                                         double value) {
  if (std::isfinite(value) && value > 0.0)
    return success();
  return op->emitOpError() << name << " (" << fmt(value)
                           << ") must be positive and finite";
}

/// A quantity derived from attributes that compiled code uses as an f32
/// (a scale, a slope, a cos/sin factor): it must stay a finite f32 and not
/// underflow to zero, or every output would be NaN, Inf or 0.
/// `zeroGiven`: the value is an attribute itself, where 0 is what was asked.
static LogicalResult checkDerivedF32(Operation *op, const Twine &name,
                                     double value, StringRef from,
                                     bool zeroGiven = false) {
  float f = float(value);
  if (std::isfinite(value) && std::isfinite(f) &&
      ((zeroGiven && value == 0.0) || f != 0.0))
    return success();
  return op->emitOpError() << name << " = " << fmt(value) << " (from " << from
                           << ") is not a finite, nonzero f32";
}

/// Frequencies ω_i (f64): every angle p·ω_i of a position |p| <= 2^63 must
/// be finite, or cos/sin of it are NaN (0·Inf at position 0).
static LogicalResult checkFrequencies(Operation *op, ArrayRef<double> omega,
                                      StringRef from) {
  for (auto [i, w] : llvm::enumerate(omega))
    if (!std::isfinite(w) || !std::isfinite(w * 0x1p63))
      return op->emitOpError()
             << "frequency omega_" << i << " = " << fmt(w) << " (from " << from
             << ") makes angles p*omega overflow f64; a frequency must be "
                "below 2^1024/2^63";
  return success();
}

static RankedTensorType rankedType(Value v) {
  return cast<RankedTensorType>(v.getType());
}

/// Shared by the bias ops: positions `[Sq]|[B, Sq]` and `[Sk]|[B, Sk]`
/// give a result `[H, Sq, Sk]` (both 1-D) or `[B, H, Sq, Sk]`. `heads`
/// lists the operands that also carry H.
static LogicalResult verifyBiasResult(Operation *op, Value qPos, Value kPos,
                                      Value result, ArrayRef<DimRef> heads) {
  RankedTensorType qTy = rankedType(qPos), kTy = rankedType(kPos),
                   rTy = rankedType(result);
  if (failed(checkPositions(op, "q_pos", qTy)) ||
      failed(checkPositions(op, "k_pos", kTy)))
    return failure();
  bool batched = qTy.getRank() == 2 || kTy.getRank() == 2;
  if (batched) {
    if (failed(checkRank(op, "result", rTy, 4,
                         "[B, H, Sq, Sk] since a position tensor is batched")))
      return failure();
  } else if (failed(checkRank(op, "result", rTy, 3, "[H, Sq, Sk]"))) {
    return failure();
  }
  unsigned off = batched ? 1 : 0;
  SmallVector<DimRef> batch;
  if (batched)
    batch.push_back({"result", result, 0});
  if (qTy.getRank() == 2)
    batch.push_back({"q_pos", qPos, 0});
  if (kTy.getRank() == 2)
    batch.push_back({"k_pos", kPos, 0});
  SmallVector<DimRef> headRefs(heads);
  headRefs.push_back({"result", result, off});
  return success(
      succeeded(checkSameDim(op, "batch size", batch)) &&
      succeeded(checkSameDim(op, "number of heads", headRefs)) &&
      succeeded(checkSameDim(op, "query length",
                             {{"q_pos", qPos, unsigned(qTy.getRank() - 1)},
                              {"result", result, off + 1}})) &&
      succeeded(checkSameDim(op, "key length",
                             {{"k_pos", kPos, unsigned(kTy.getRank() - 1)},
                              {"result", result, off + 2}})));
}

//===----------------------------------------------------------------------===//
// RopeOp
//===----------------------------------------------------------------------===//

std::optional<int64_t> RopeOp::getRotaryDimOrHeadDim() {
  if (std::optional<int64_t> r = getRotaryDim())
    return *r;
  int64_t d = getX().getType().getDimSize(3);
  if (ShapedType::isDynamic(d))
    return std::nullopt;
  return d;
}

double RopeOp::getEffectiveAttentionFactor() {
  if (std::optional<APFloat> a = getAttentionFactor())
    return a->convertToDouble();
  return defaultRopeAttentionFactor(getScalingOrNone());
}

OpFoldResult RopeOp::fold(FoldAdaptor) {
  // Rotating no dimensions is the identity.
  if (getRotaryDim() == 0)
    return getX();
  return {};
}

namespace {
/// rope(rope(x, p), p') -> rope(x, p + p'): rotations by p·ω and p'·ω
/// compose to (p + p')·ω when both use the same pairs and frequencies and
/// neither scales (a = 1). Frequencies that depend on the positions
/// (dynamic, longrope) do not compose. The sum is i64 (i32 positions are
/// widened) and never wraps.
struct ComposeRopes : OpRewritePattern<RopeOp> {
  using OpRewritePattern::OpRewritePattern;

  LogicalResult matchAndRewrite(RopeOp outer,
                                PatternRewriter &rewriter) const override {
    auto inner = outer.getX().getDefiningOp<RopeOp>();
    if (!inner)
      return failure();
    if (inner.getLayout() != outer.getLayout() ||
        inner.getPairAxes() != outer.getPairAxes() ||
        inner.getRotaryDimOrHeadDim() != outer.getRotaryDimOrHeadDim() ||
        inner.getBase() != outer.getBase() ||
        inner.getScalingOrNone() != outer.getScalingOrNone() ||
        outer.getScalingOrNone().dependsOnPositions() ||
        inner.getEffectiveAttentionFactor() != 1.0 ||
        outer.getEffectiveAttentionFactor() != 1.0 ||
        inner.getPos().getType() != outer.getPos().getType())
      return rewriter.notifyMatchFailure(outer, "ropes do not compose");
    // The sum must not wrap: i32 positions are added in i64; i64 ones only
    // when both are constants whose sums fit.
    Value p = inner.getPos(), q = outer.getPos();
    auto posType = cast<ShapedType>(p.getType());
    if (posType.getElementType().isInteger(32)) {
      auto wide = posType.clone(rewriter.getI64Type());
      p = arith::ExtSIOp::create(rewriter, outer.getLoc(), wide, p);
      q = arith::ExtSIOp::create(rewriter, outer.getLoc(), wide, q);
    } else {
      DenseIntElementsAttr pc, qc;
      if (!matchPattern(p, m_Constant(&pc)) ||
          !matchPattern(q, m_Constant(&qc)))
        return rewriter.notifyMatchFailure(outer, "i64 position sums may wrap");
      for (auto [a, b] :
           llvm::zip(pc.getValues<APInt>(), qc.getValues<APInt>())) {
        bool overflow = false;
        (void)a.sadd_ov(b, overflow);
        if (overflow)
          return rewriter.notifyMatchFailure(outer, "position sum wraps");
      }
    }
    Value sum = arith::AddIOp::create(rewriter, outer.getLoc(), p, q);
    rewriter.modifyOpInPlace(outer, [&] {
      outer.getXMutable().assign(inner.getX());
      outer.getPosMutable().assign(sum);
    });
    return success();
  }
};
} // namespace

void RopeOp::getCanonicalizationPatterns(RewritePatternSet &results,
                                         MLIRContext *ctx) {
  results.add<ComposeRopes>(ctx);
}

SmallVector<int64_t> RopeOp::getPairAxes() {
  SmallVector<int64_t> axes;
  std::optional<ArrayRef<int64_t>> section = getMropeSection();
  if (!section)
    return axes;
  if (getMropeInterleaved()) {
    int64_t pairs = 0;
    for (int64_t n : *section)
      pairs += n;
    for (int64_t i = 0; i < pairs; ++i) {
      int64_t axis = 0;
      if (i % 3 == 1 && i < 3 * (*section)[1])
        axis = 1;
      else if (i % 3 == 2 && i < 3 * (*section)[2])
        axis = 2;
      axes.push_back(axis);
    }
    return axes;
  }
  for (auto [axis, n] : llvm::enumerate(*section))
    axes.append(n, int64_t(axis));
  return axes;
}

RopeScalingAttr RopeOp::getScalingOrNone() {
  if (RopeScalingAttr s = getScalingAttr())
    return s;
  return RopeScalingAttr::getNone(getContext());
}

LogicalResult RopeOp::verify() {
  Operation *op = getOperation();
  RankedTensorType xTy = getX().getType(), posTy = getPos().getType();
  if (failed(checkRank(op, "x", xTy, 4, "[B, S, H, D]")))
    return failure();
  std::optional<ArrayRef<int64_t>> section = getMropeSection();
  if (getMropeInterleaved() && !section)
    return emitOpError() << "mrope_interleaved requires mrope_section";
  // M-RoPE positions carry a leading axis dim: [A, S] or [A, B, S].
  unsigned axisDims = section ? 1 : 0;
  if (section) {
    if (posTy.getRank() != 2 && posTy.getRank() != 3)
      return emitOpError() << "pos must be [A, S] or [A, B, S] with "
                              "mrope_section, got "
                           << posTy;
    int64_t axes = section->size();
    record(DimConstraint::Kind::equal, "number of position axes",
           {{"pos", getPos(), 0}}, axes);
    if (posTy.isDynamicDim(0))
      return emitOpError() << "pos needs a static axis dim (dim 0) with "
                              "mrope_section, got "
                           << posTy;
    if (posTy.getDimSize(0) != axes)
      return emitOpError() << "pos has " << posTy.getDimSize(0)
                           << " position axes (dim 0) but mrope_section has "
                           << axes << " sections";
    if (getMropeInterleaved() && axes != 3)
      return emitOpError() << "mrope_interleaved needs 3 sections (temporal, "
                              "height, width), got "
                           << axes;
  } else if (failed(checkPositions(op, "pos", posTy))) {
    return failure();
  }
  unsigned sIdx = posTy.getRank() - 1;
  if (failed(checkSameDim(op, "sequence length",
                          {{"x", getX(), 1}, {"pos", getPos(), sIdx}})))
    return failure();
  if (posTy.getRank() == 2 + axisDims &&
      failed(checkSameDim(op, "batch size",
                          {{"x", getX(), 0}, {"pos", getPos(), axisDims}})))
    return failure();

  int64_t headDim = xTy.getDimSize(3);
  int64_t rotary;
  if (std::optional<int64_t> r = getRotaryDim()) {
    rotary = *r;
    if (rotary < 0 || rotary % 2 != 0)
      return emitOpError() << "rotary_dim (" << rotary
                           << ") must be even and non-negative";
    record(DimConstraint::Kind::atLeast, "head dim", {{"x", getX(), 3}},
           rotary);
    if (!ShapedType::isDynamic(headDim) && rotary > headDim)
      return emitOpError() << "rotary_dim (" << rotary
                           << ") must be <= head dim (" << headDim << ")";
  } else {
    // Frequencies are compile-time constants, so R must be static.
    if (ShapedType::isDynamic(headDim))
      return emitOpError()
             << "rotary_dim is required when the head dim of x is dynamic";
    if (headDim % 2 != 0)
      return emitOpError() << "head dim (" << headDim
                           << ") must be even when rotary_dim is absent";
    rotary = headDim;
  }
  if (failed(checkTableSize(op, "rotary_dim", rotary)))
    return failure();
  if (section) {
    int64_t pairs = 0;
    for (int64_t n : *section) {
      if (n <= 0)
        return emitOpError()
               << "mrope_section entries must be positive, got " << n;
      // Bounded before summing: no overflow on hostile entries.
      if (n > rotary / 2)
        return emitOpError() << "mrope_section entry (" << n
                             << ") exceeds rotary_dim/2 (" << rotary / 2 << ")";
      pairs += n;
    }
    if (pairs != rotary / 2)
      return emitOpError() << "mrope_section sums to " << pairs
                           << " pairs but rotary_dim/2 is " << rotary / 2;
  }

  double base = getBase().convertToDouble();
  if (failed(checkPositiveFinite(op, "base", base)))
    return failure();
  if (std::optional<APFloat> a = getAttentionFactor())
    if (failed(
            checkPositiveFinite(op, "attention_factor", a->convertToDouble())))
      return failure();

  RopeScalingAttr scaling = getScalingOrNone();
  StringRef kindName = stringifyRopeScalingKind(scaling.getKind());
  switch (scaling.getKind()) {
  case RopeScalingKind::ntk:
  case RopeScalingKind::dynamic:
    // The base is rescaled by a power R/(R-2).
    if (rotary <= 2)
      return emitOpError() << kindName << " scaling requires rotary_dim > 2 "
                           << "(got " << rotary << ")";
    break;
  case RopeScalingKind::yarn:
    // The correction range divides by ln(base).
    if (base <= 1.0)
      return emitOpError() << "yarn scaling requires base > 1 (got "
                           << fmt(base) << ")";
    break;
  case RopeScalingKind::longrope: {
    size_t n = scaling.getShortFactor().size();
    if (static_cast<int64_t>(n) != rotary / 2)
      return emitOpError() << "longrope short_factor and long_factor have " << n
                           << " entries but rotary_dim/2 is " << rotary / 2;
    break;
  }
  default:
    break;
  }
  // What the attributes derive: frequencies (both LongRoPE tables; dynamic
  // NTK's at the largest position) and the cos/sin factor.
  std::string from = "base and scaling";
  if (scaling.getKind() == RopeScalingKind::dynamic) {
    double f = scaling.getFactor().getValueAsDouble();
    double ratio = f * (0x1p63 / double(scaling.getOriginal()));
    if (!std::isfinite(ratio))
      return emitOpError() << "dynamic scaling factor " << fmt(f)
                           << " makes the base's rescaling ratio overflow f64 "
                              "at large positions";
  }
  // Positions 0 and 2^62 take LongRoPE's short and long tables and dynamic
  // NTK's smallest and largest base.
  for (int64_t maxPosition : {int64_t(0), int64_t(1) << 62})
    if (failed(checkFrequencies(
            op, ropeFrequenciesForRun(scaling, base, rotary, maxPosition),
            from)))
      return failure();
  return checkDerivedF32(op, "attention factor", getEffectiveAttentionFactor(),
                         getAttentionFactor() ? "attention_factor"
                                              : "the scaling's default");
}

//===----------------------------------------------------------------------===//
// SinusoidalOp
//===----------------------------------------------------------------------===//

LogicalResult SinusoidalOp::verify() {
  Operation *op = getOperation();
  RankedTensorType posTy = getPos().getType(), rTy = getResult().getType();
  if (posTy.getRank() < 1)
    return emitOpError() << "pos must have rank >= 1 ([..., S]), got a scalar";
  if (failed(checkRank(op, "result", rTy, posTy.getRank() + 1,
                       "[..., S, D]: the rank of pos plus one")))
    return failure();
  for (unsigned i = 0, e = posTy.getRank(); i < e; ++i)
    if (failed(
            checkSameDim(op, "dim " + std::to_string(i),
                         {{"pos", getPos(), i}, {"result", getResult(), i}})))
      return failure();
  int64_t dim = getDim();
  SinusoidalConvention convention = getConvention();
  StringRef name = stringifySinusoidalConvention(convention);
  if (convention == SinusoidalConvention::vaswani && (dim <= 0 || dim % 2 != 0))
    return emitOpError() << "dim (" << dim
                         << ") must be positive and even (convention vaswani; "
                            "fairseq and marian take odd dims)";
  if (convention == SinusoidalConvention::fairseq && dim < 4)
    return emitOpError() << "dim (" << dim
                         << ") must be at least 4 with convention fairseq "
                            "(its exponent divides by floor(dim/2) - 1)";
  if (dim <= 0)
    return emitOpError() << "dim (" << dim << ") must be positive";
  if (convention != SinusoidalConvention::vaswani &&
      getLayout() != RopeLayout::half)
    return emitOpError() << "convention " << name
                         << " puts all sines before all cosines: layout must "
                            "be half, got interleaved";
  if (failed(checkTableSize(op, "dim", dim)))
    return failure();
  int64_t last = rTy.getDimSize(rTy.getRank() - 1);
  if (!ShapedType::isDynamic(last) && last != dim)
    return emitOpError() << "last dim of result (" << last
                         << ") must equal dim (" << dim << ")";
  double base = getBase().convertToDouble();
  if (failed(checkPositiveFinite(op, "base", base)))
    return failure();
  // The sine columns carry every frequency once (phase 0; a zero column's
  // omega is 0 and is no frequency).
  SmallVector<double> omega;
  for (const SinusoidalColumn &c :
       sinusoidalColumns(convention, getLayout(), dim, base))
    if (c.phase == 0.0 && c.omega != 0.0)
      omega.push_back(c.omega);
  return checkFrequencies(op, omega, "base");
}

//===----------------------------------------------------------------------===//
// AlibiBiasOp
//===----------------------------------------------------------------------===//

SmallVector<double> AlibiBiasOp::getSlopesOrDefault() {
  if (std::optional<ArrayRef<double>> s = getSlopes())
    return SmallVector<double>(*s);
  int64_t n = getHeadCount();
  double maxBias = getMaxBias().convertToDouble();
  int64_t p = int64_t(1) << llvm::Log2_64(n);
  SmallVector<double> slopes;
  for (int64_t h = 1; h <= p; ++h)
    slopes.push_back(std::exp2(-maxBias * double(h) / double(p)));
  for (int64_t k = 1; k <= n - p; ++k)
    slopes.push_back(std::exp2(-maxBias * double(2 * k - 1) / double(2 * p)));
  return slopes;
}

int64_t AlibiBiasOp::getHeadCount() {
  if (std::optional<uint64_t> n = getNumHeads())
    return int64_t(*n);
  RankedTensorType rTy = getResult().getType();
  return rTy.getDimSize(rTy.getRank() - 3);
}

LogicalResult AlibiBiasOp::verify() {
  Operation *op = getOperation();
  RankedTensorType resultTy = getResult().getType();
  if (!getNumHeads() &&
      (resultTy.getRank() < 3 || resultTy.isDynamicDim(resultTy.getRank() - 3)))
    return emitOpError() << "needs num_heads when the result type (" << resultTy
                         << ") has no static head dim";
  int64_t n = getHeadCount();
  if (n <= 0)
    return emitOpError() << "num_heads (" << n << ") must be positive";
  if (failed(checkTableSize(op, "num_heads", n)) ||
      failed(
          checkPositiveFinite(op, "max_bias", getMaxBias().convertToDouble())))
    return failure();
  if (std::optional<ArrayRef<double>> slopes = getSlopes()) {
    if (static_cast<int64_t>(slopes->size()) != n)
      return emitOpError() << "slopes has " << slopes->size()
                           << " entries but num_heads is " << n;
    for (auto [i, m] : llvm::enumerate(*slopes))
      if (!std::isfinite(m))
        return emitOpError()
               << "slopes[" << i << "] (" << fmt(m) << ") must be finite";
  }
  // Slopes are f32 in the computation: given ones must fit, derived ones
  // (2^(-max_bias·h/n)) must not underflow to zero.
  for (auto [i, m] : llvm::enumerate(getSlopesOrDefault())) {
    if (failed(checkDerivedF32(op, "slope of head " + Twine(i), m,
                               getSlopes() ? "slopes" : "max_bias",
                               /*zeroGiven=*/bool(getSlopes()))))
      return failure();
    // Distances saturate at 2^31 − 1: the bias there must be a finite f32.
    if (!std::isfinite(float(m) * 2147483647.0f))
      return emitOpError() << "slope of head " << i << " = " << fmt(m)
                           << " times the largest distance (2^31 - 1) "
                              "overflows f32";
  }
  if (failed(verifyBiasResult(op, getQPos(), getKPos(), getResult(), {})))
    return failure();
  RankedTensorType rTy = getResult().getType();
  int64_t h = rTy.getDimSize(rTy.getRank() - 3);
  if (!ShapedType::isDynamic(h) && h != n)
    return emitOpError() << "number of heads of result (" << h
                         << ") must equal num_heads (" << n << ")";
  return success();
}

//===----------------------------------------------------------------------===//
// RelBiasOp
//===----------------------------------------------------------------------===//

SmallVector<int64_t> RelBiasOp::getT5DistanceBuckets() {
  int64_t n = getNumBuckets().value_or(2);
  int64_t perSide = getBidirectional() ? n / 2 : n;
  int64_t maxExact = perSide / 2;
  int64_t m = getMaxDistance();
  SmallVector<int64_t> table;
  for (int64_t d = 0; d <= m; ++d) {
    if (d < maxExact) {
      table.push_back(d);
      continue;
    }
    double large =
        double(maxExact) + std::log(double(d) / double(maxExact)) /
                               std::log(double(m) / double(maxExact)) *
                               double(perSide - maxExact);
    table.push_back(std::min<int64_t>(int64_t(std::floor(large)), perSide - 1));
  }
  return table;
}

int64_t RelBiasOp::getBucket(int64_t rel) {
  int64_t m = getMaxDistance();
  // Every distance past m shares its side's last bucket; clamping first
  // also keeps -rel and |rel| defined for rel = -2^63.
  rel = std::clamp<int64_t>(rel, -m, m);
  if (getKind() == RelBiasKind::clip)
    return getBidirectional() ? std::clamp<int64_t>(rel, -m, m) + m
                              : std::clamp<int64_t>(-rel, 0, m);
  SmallVector<int64_t> table = getT5DistanceBuckets();
  int64_t perSide =
      getBidirectional() ? *getNumBuckets() / 2 : *getNumBuckets();
  int64_t b0 = getBidirectional() && rel > 0 ? perSide : 0;
  int64_t dist =
      getBidirectional() ? std::abs(rel) : std::max<int64_t>(-rel, 0);
  return b0 + table[std::min(dist, m)];
}

int64_t RelBiasOp::getExpectedTableRows() {
  int64_t m = getMaxDistance();
  if (getKind() == RelBiasKind::t5)
    return getNumBuckets().value_or(0);
  return getBidirectional() ? 2 * m + 1 : m + 1;
}

LogicalResult RelBiasOp::verify() {
  Operation *op = getOperation();
  RankedTensorType tableTy = getTable().getType();
  if (failed(checkRank(op, "table", tableTy, 2, "[num_buckets, H]")))
    return failure();
  int64_t m = getMaxDistance();
  if (failed(checkTableSize(op, "max_distance", m)))
    return failure();
  if (getKind() == RelBiasKind::t5) {
    std::optional<int64_t> nb = getNumBuckets();
    if (!nb)
      return emitOpError() << "kind t5 requires num_buckets";
    int64_t n = *nb;
    if (failed(checkTableSize(op, "num_buckets", n)))
      return failure();
    if (getBidirectional() && (n < 4 || n % 2 != 0))
      return emitOpError() << "num_buckets (" << n
                           << ") must be even and >= 4 when bidirectional";
    if (n < 2)
      return emitOpError() << "num_buckets (" << n << ") must be >= 2";
    // Distances below max_exact get their own bucket; the log-spaced
    // buckets divide by ln(max_distance / max_exact).
    int64_t maxExact = (getBidirectional() ? n / 2 : n) / 2;
    if (m <= maxExact)
      return emitOpError() << "max_distance (" << m
                           << ") must exceed the exact-bucket range ("
                           << maxExact << ") of num_buckets (" << n << ")";
  } else {
    if (getNumBuckets())
      return emitOpError()
             << "num_buckets is only used by kind t5; kind clip has "
                "2*max_distance+1 buckets (max_distance+1 if unidirectional)";
    if (m < 0)
      return emitOpError() << "max_distance (" << m << ") must be non-negative";
  }
  int64_t rows = tableTy.getDimSize(0);
  int64_t expected = getExpectedTableRows();
  record(DimConstraint::Kind::equal, "number of rows",
         {{"table", getTable(), 0}}, expected);
  if (!ShapedType::isDynamic(rows) && rows != expected)
    return emitOpError() << "table has " << rows << " rows but kind "
                         << stringifyRelBiasKind(getKind())
                         << (getBidirectional() ? " (bidirectional)"
                                                : " (unidirectional)")
                         << " with max_distance " << m
                         << (getNumBuckets() ? " and num_buckets " +
                                                   std::to_string(expected)
                                             : std::string())
                         << " needs " << expected;
  return verifyBiasResult(op, getQPos(), getKPos(), getResult(),
                          {{"table", getTable(), 1}});
}

//===----------------------------------------------------------------------===//
// RelKeyBiasOp
//===----------------------------------------------------------------------===//

LogicalResult RelKeyBiasOp::verify() {
  Operation *op = getOperation();
  RankedTensorType qTy = getQ().getType(), embTy = getEmb().getType(),
                   qpTy = getQPos().getType(), kpTy = getKPos().getType(),
                   rTy = getResult().getType();
  if (failed(checkRank(op, "q", qTy, 4, "[B, Sq, H, D]")) ||
      failed(checkPositions(op, "q_pos", qpTy)) ||
      failed(checkPositions(op, "k_pos", kpTy)) ||
      failed(checkRank(op, "result", rTy, 4, "[B, H, Sq, Sk]")) ||
      failed(checkSameElementType(op, {{"q", getQ()}, {"emb", getEmb()}})))
    return failure();
  if (embTy.getRank() != 2 && embTy.getRank() != 3)
    return emitOpError() << "emb must be [2*max_distance+1, D] or "
                            "[2*max_distance+1, H, D], got "
                         << embTy;
  unsigned embD = embTy.getRank() - 1;
  int64_t m = getMaxDistance();
  if (m < 0)
    return emitOpError() << "max_distance (" << m << ") must be non-negative";
  if (failed(checkTableSize(op, "max_distance", m)))
    return failure();
  int64_t rows = embTy.getDimSize(0);
  record(DimConstraint::Kind::equal, "number of rows", {{"emb", getEmb(), 0}},
         2 * m + 1);
  if (!ShapedType::isDynamic(rows) && rows != 2 * m + 1)
    return emitOpError() << "emb has " << rows << " rows but max_distance " << m
                         << " needs " << 2 * m + 1;
  SmallVector<DimRef> batch = {{"q", getQ(), 0}, {"result", getResult(), 0}};
  if (qpTy.getRank() == 2)
    batch.push_back({"q_pos", getQPos(), 0});
  if (kpTy.getRank() == 2)
    batch.push_back({"k_pos", getKPos(), 0});
  SmallVector<DimRef> heads = {{"q", getQ(), 2}, {"result", getResult(), 1}};
  if (embTy.getRank() == 3)
    heads.push_back({"emb", getEmb(), 1});
  return success(
      succeeded(checkSameDim(op, "head dim",
                             {{"q", getQ(), 3}, {"emb", getEmb(), embD}})) &&
      succeeded(checkSameDim(op, "batch size", batch)) &&
      succeeded(checkSameDim(op, "number of heads", heads)) &&
      succeeded(
          checkSameDim(op, "query length",
                       {{"q", getQ(), 1},
                        {"q_pos", getQPos(), unsigned(qpTy.getRank() - 1)},
                        {"result", getResult(), 2}})) &&
      succeeded(
          checkSameDim(op, "key length",
                       {{"k_pos", getKPos(), unsigned(kpTy.getRank() - 1)},
                        {"result", getResult(), 3}})));
}

//===----------------------------------------------------------------------===//
// AttentionOp
//===----------------------------------------------------------------------===//

/// "f32" or "f64" (a diagnostic would quote a streamed type).
static StringRef computeTypeName(FloatType type) {
  return type.isF64() ? "f64" : "f32";
}

/// checkDerivedF32 for an op computing in `computeType`: f64 ops keep
/// such values in f64.
static LogicalResult checkDerivedIn(Type computeType, Operation *op,
                                    const Twine &name, double value,
                                    StringRef from) {
  if (!computeType.isF64())
    return checkDerivedF32(op, name, value, from);
  if (std::isfinite(value) && value != 0.0)
    return success();
  return op->emitOpError() << name << " = " << fmt(value) << " (from " << from
                           << ") is not a finite, nonzero f64";
}

/// Checks that `scale`, when given, is usable in `computeType`.
static LogicalResult verifyScale(Operation *op, std::optional<APFloat> scale,
                                 Type computeType) {
  if (!scale)
    return success();
  if (failed(checkPositiveFinite(op, "scale", scale->convertToDouble())))
    return failure();
  return checkDerivedIn(computeType, op, "scale", scale->convertToDouble(),
                        "scale");
}

/// The checks attention and online_attention share: q, k, v (and bias)
/// against each other and against `outs`, the per-row outputs: the result
/// of attention, or (acc, max, sum) of online_attention, each given with
/// the q dims its leading dims must equal (batch, query length, heads) and
/// whether its last dim is Dv.
struct RowOutput {
  StringRef name;
  Value value;
  int64_t rank;
  StringRef layout;
  bool hasValueDim;
};

template <typename OpT>
static LogicalResult
verifyAttentionOperands(OpT op, ArrayRef<RowOutput> outputs, size_t numOffsets,
                        StringRef offsetNames) {
  Operation *o = op.getOperation();
  Value q = op.getQ(), k = op.getK(), v = op.getV();
  ShapedType qTy = op.getQ().getType(), kTy = op.getK().getType();
  if (failed(checkRank(o, "q", qTy, 4, "[B, Sq, Hq, Dk]")) ||
      failed(checkRank(o, "k", kTy, 4, "[B, Sk, Hkv, Dk]")) ||
      failed(checkRank(o, "v", op.getV().getType(), 4, "[B, Sk, Hkv, Dv]")) ||
      failed(checkSameElementType(o, {{"q", q}, {"k", k}, {"v", v}})) ||
      failed(verifyScale(o, op.getScale(), op.getComputeType())))
    return failure();
  SmallVector<DimRef> batch = {{"q", q, 0}, {"k", k, 0}, {"v", v, 0}};
  SmallVector<DimRef> queries = {{"q", q, 1}}, heads = {{"q", q, 2}};
  SmallVector<DimRef> valueDim = {{"v", v, 3}};
  for (const RowOutput &out : outputs) {
    if (failed(checkRank(o, out.name, cast<ShapedType>(out.value.getType()),
                         out.rank, out.layout)))
      return failure();
    batch.push_back({out.name, out.value, 0});
    queries.push_back({out.name, out.value, 1});
    heads.push_back({out.name, out.value, 2});
    if (out.hasValueDim)
      valueDim.push_back({out.name, out.value, 3});
  }
  if (failed(checkSameDim(o, "batch size", batch)) ||
      failed(checkSameDim(o, "query length", queries)) ||
      failed(checkSameDim(o, "key length", {{"k", k, 1}, {"v", v, 1}})) ||
      failed(checkSameDim(o, "number of query heads", heads)) ||
      failed(
          checkSameDim(o, "number of kv heads", {{"k", k, 2}, {"v", v, 2}})) ||
      failed(checkSameDim(o, "key head dim", {{"q", q, 3}, {"k", k, 3}})) ||
      failed(checkSameDim(o, "value head dim", valueDim)))
    return failure();
  // An empty dot product (Dk = 0) leaves every score 0; the tiled
  // lowerings slice the head dim, which upstream rejects when it is empty.
  record(DimConstraint::Kind::atLeast, "key head dim", {{"q", q, 3}}, 1);
  if (qTy.getDimSize(3) == 0)
    return op.emitOpError()
           << "key head dim Dk must be >= 1 (q " << qTy << ", k " << kTy << ")";
  record(DimConstraint::Kind::multiple, "number of heads",
         {{"q", q, 2}, {"k", k, 2}});
  int64_t hq = qTy.getDimSize(2), hkv = kTy.getDimSize(2);
  if (!ShapedType::isDynamic(hq) && !ShapedType::isDynamic(hkv) &&
      (hkv == 0 || hq % hkv != 0))
    return op.emitOpError()
           << "number of query heads (" << hq
           << ") must be a multiple of the number of kv heads (" << hkv << ")";

  if (Value bias = op.getBias()) {
    auto bTy = cast<ShapedType>(bias.getType());
    if (bTy.getRank() > 4)
      return op.emitOpError()
             << "bias must have rank <= 4 (broadcast to [B, Hq, Sq, Sk]), got "
                "rank "
             << bTy.getRank();
    // Numpy broadcasting, aligned on the right.
    int64_t full[4] = {qTy.getDimSize(0), qTy.getDimSize(2), qTy.getDimSize(1),
                       kTy.getDimSize(1)};
    static const char *names[4] = {"B", "Hq", "Sq", "Sk"};
    DimRef fullRefs[4] = {{"q", q, 0}, {"q", q, 2}, {"q", q, 1}, {"k", k, 1}};
    for (int64_t i = 0, r = bTy.getRank(); i < r; ++i) {
      int64_t b = bTy.getDimSize(i), f = full[4 - r + i];
      // A dynamic bias dim is read as the full dim (only a static 1
      // broadcasts).
      if (ShapedType::isDynamic(b))
        record(DimConstraint::Kind::equal, names[4 - r + i],
               {{"bias", bias, unsigned(i)}, fullRefs[4 - r + i]});
      if (ShapedType::isDynamic(b) || ShapedType::isDynamic(f) || b == 1 ||
          b == f)
        continue;
      return op.emitOpError()
             << "bias " << bTy << " does not broadcast to [B, Hq, Sq, Sk]: dim "
             << i << " (" << b << ") must be 1 or " << names[4 - r + i] << " ("
             << f << ")";
    }
  }
  if (!op.getOffsets().empty() && op.getOffsets().size() != numOffsets)
    return op.emitOpError()
           << "offsets must be " << offsetNames << ": " << numOffsets
           << " index values, got " << op.getOffsets().size();
  if (op.getDiagonal() && !op.getCausal())
    return op.emitOpError() << "diagonal is only meaningful with causal";
  if (FloatAttr cap = op.getSoftcapAttr()) {
    double c = cap.getValueAsDouble();
    if (!(c > 0.0 && std::isfinite(c)))
      return op.emitOpError()
             << "softcap must be a finite value > 0, got " << c;
    if (failed(
            checkDerivedIn(op.getComputeType(), op, "softcap", c, "softcap")))
      return failure();
  }
  // The key bands below the causal diagonal: a count of keys >= 1.
  auto checkBand = [&](StringRef name, std::optional<int64_t> keys,
                       StringRef why) -> LogicalResult {
    if (!keys)
      return success();
    if (!op.getCausal())
      return op.emitOpError()
             << name << "(" << *keys << ") needs causal: " << why;
    if (*keys < 1)
      return op.emitOpError()
             << name << " must be at least 1 key, got " << *keys;
    return success();
  };
  if (failed(checkBand("chunk", op.getChunk(),
                       "a query sees the keys of its chunk up to itself")) ||
      failed(checkBand("window", op.getWindow(),
                       "the sliding window is the band of W keys ending at "
                       "the causal diagonal")))
    return failure();
  return success();
}

LogicalResult AttentionOp::inferReturnTypes(MLIRContext *,
                                            std::optional<Location>,
                                            AttentionOp::Adaptor adaptor,
                                            SmallVectorImpl<Type> &inferred) {
  // Tensor form: the result has init's type; buffer form: no result.
  if (isa<RankedTensorType>(adaptor.getInit().getType()))
    inferred.push_back(adaptor.getInit().getType());
  return success();
}

LogicalResult AttentionOp::verify() {
  // Both forms, never a mix: a memref among tensors would be a buffer the
  // tensor form silently reads or (for init) never writes.
  bool buffer = hasBufferSemantics();
  std::pair<StringRef, Value> inputs[] = {{"q", getQ()},
                                          {"k", getK()},
                                          {"v", getV()},
                                          {"bias", getBias()},
                                          {"sinks", getSinks()}};
  for (auto [name, value] : inputs) {
    if (value && isa<MemRefType>(value.getType()) != buffer)
      return emitOpError()
             << name << " (" << value.getType() << ") must be a "
             << (buffer ? "memref" : "tensor") << " like init ("
             << getInit().getType()
             << "): all operands are tensors (tensor form) or all memrefs "
                "(buffer form)";
    if (buffer && value == getInit())
      return emitOpError() << "init must not be the same buffer as " << name
                           << ": the output would overwrite its input";
  }
  if (failed(checkSameElementType(getOperation(),
                                  {{"q", getQ()}, {"init", getInit()}})))
    return failure();
  if (Value sinks = getSinks()) {
    auto ty = cast<ShapedType>(sinks.getType());
    if (ty.getRank() != 1 || ty.getElementType() != getComputeType())
      return emitOpError() << "sinks must be [Hq] "
                           << computeTypeName(getComputeType())
                           << " (one logit per query head, in the compute "
                              "type: f32, or f64 for f64 q), got "
                           << ty;
    // A dynamic length is checked where the op runs (insert-shape-checks).
    record(DimConstraint::Kind::equal, "number of heads",
           {{"q", getQ(), 2}, {"sinks", sinks, 0}});
    int64_t hq = getQ().getType().getDimSize(2);
    if (!ty.isDynamicDim(0) && !ShapedType::isDynamic(hq) &&
        ty.getDimSize(0) != hq)
      return emitOpError() << "sinks has " << ty.getDimSize(0)
                           << " logits but q has " << hq << " heads";
  }
  return verifyAttentionOperands(
      *this, {{"init", getInit(), 4, "[B, Sq, Hq, Dv]", true}}, 3,
      "(b0, h0, i0)");
}

void AttentionOp::getEffects(
    SmallVectorImpl<SideEffects::EffectInstance<MemoryEffects::Effect>>
        &effects) {
  // The buffer form reads its inputs and writes init; score_mod's own
  // effects come from RecursiveMemoryEffects.
  for (OpOperand &operand : getOperation()->getOpOperands()) {
    if (!isa<MemRefType>(operand.get().getType()))
      continue;
    if (isDpsInit(&operand))
      effects.emplace_back(MemoryEffects::Write::get(), &operand,
                           SideEffects::DefaultResource::get());
    else
      effects.emplace_back(MemoryEffects::Read::get(), &operand,
                           SideEffects::DefaultResource::get());
  }
}

/// score_mod takes (score, b, h, i, j: index) and yields a score, scores
/// of the op's compute type `score`.
static LogicalResult verifyScoreModRegion(Operation *op, Block *block,
                                          FloatType score) {
  if (!block)
    return success();
  Builder b(op->getContext());
  SmallVector<Type> expected = {score, b.getIndexType(), b.getIndexType(),
                                b.getIndexType(), b.getIndexType()};
  if (block->getArgumentTypes() != ArrayRef<Type>(expected)) {
    InFlightDiagnostic diag = op->emitOpError()
                              << "score_mod block must take (score: "
                              << computeTypeName(score)
                              << ", b, h, i, j: index), got (";
    llvm::interleaveComma(block->getArgumentTypes(), diag);
    return diag << ")";
  }
  auto yield = dyn_cast<YieldOp>(block->getTerminator());
  if (!yield)
    return op->emitOpError() << "score_mod must end with posenc.yield";
  if (yield.getValue().getType() != score)
    return op->emitOpError()
           << "score_mod must yield an " << computeTypeName(score)
           << " score, got " << yield.getValue().getType();
  return success();
}

LogicalResult AttentionOp::verifyRegions() {
  return verifyScoreModRegion(getOperation(), getScoreModBlock(),
                              getComputeType());
}

namespace {
/// Folds a tensor.cast to a less static type into attention's operands
/// (the result keeps its type through a cast back). The tensor dialect's
/// generic FoldTensorCastProducerOp would do the same for these
/// destination-style ops, but it clones regions with a listener attached,
/// which dereferences the first block of an empty score_mod region: this
/// pattern runs first (higher benefit) and leaves it nothing to fold.
template <typename OpT>
struct FoldTensorCastIntoAttention : OpRewritePattern<OpT> {
  FoldTensorCastIntoAttention(MLIRContext *ctx)
      : OpRewritePattern<OpT>(ctx, /*benefit=*/2) {}

  LogicalResult matchAndRewrite(OpT op,
                                PatternRewriter &rewriter) const override {
    SmallVector<Value> operands;
    bool changed = false;
    for (Value v : op->getOperands()) {
      auto cast = v.getDefiningOp<tensor::CastOp>();
      bool fold = cast && tensor::canFoldIntoConsumerOp(cast);
      operands.push_back(fold ? cast.getSource() : v);
      changed |= fold;
    }
    if (!changed)
      return failure();
    OperationState state(op.getLoc(), op->getName());
    state.addOperands(operands);
    state.propertiesAttr = op->getPropertiesAsAttribute();
    state.addAttributes(llvm::to_vector(op->getDiscardableAttrs()));
    // Destination-style: each result has its init's (new) type.
    auto dps = cast<DestinationStyleOpInterface>(op.getOperation());
    for (OpOperand &init : dps.getDpsInitsMutable())
      if (isa<RankedTensorType>(init.get().getType()))
        state.addTypes(operands[init.getOperandNumber()].getType());
    state.addRegion();
    Operation *folded = rewriter.create(state);
    if (!op.getScoreMod().empty())
      rewriter.cloneRegionBefore(op.getScoreMod(), folded->getRegion(0),
                                 folded->getRegion(0).end());
    SmallVector<Value> results;
    for (auto [old, now] : llvm::zip(op->getResults(), folded->getResults()))
      results.push_back(old.getType() == now.getType()
                            ? Value(now)
                            : Value(tensor::CastOp::create(
                                  rewriter, op.getLoc(), old.getType(), now)));
    rewriter.replaceOp(op, results);
    return success();
  }
};
} // namespace

void AttentionOp::getCanonicalizationPatterns(RewritePatternSet &results,
                                              MLIRContext *ctx) {
  results.add<FoldTensorCastIntoAttention<AttentionOp>>(ctx);
}

//===----------------------------------------------------------------------===//
// OnlineAttentionOp
//===----------------------------------------------------------------------===//

LogicalResult
OnlineAttentionOp::inferReturnTypes(MLIRContext *, std::optional<Location>,
                                    OnlineAttentionOp::Adaptor adaptor,
                                    SmallVectorImpl<Type> &inferred) {
  // Destination-style: the results have the types of (acc, max, sum).
  inferred.append({adaptor.getAcc().getType(), adaptor.getMax().getType(),
                   adaptor.getSum().getType()});
  return success();
}

LogicalResult OnlineAttentionOp::verify() {
  // The state is kept in the compute type.
  for (auto [name, value] : {std::pair<StringRef, Value>{"acc", getAcc()},
                             {"max", getMax()},
                             {"sum", getSum()}}) {
    Type elem = cast<ShapedType>(value.getType()).getElementType();
    if (elem != getComputeType())
      return emitOpError() << name << " must be "
                           << computeTypeName(getComputeType())
                           << " (the compute type: f32, or f64 for f64 q), "
                              "got "
                           << value.getType();
  }
  return verifyAttentionOperands(*this,
                                 {{"acc", getAcc(), 4, "[B, Sq, Hq, Dv]", true},
                                  {"max", getMax(), 3, "[B, Sq, Hq]", false},
                                  {"sum", getSum(), 3, "[B, Sq, Hq]", false}},
                                 4, "(b0, h0, i0, j0)");
}

LogicalResult OnlineAttentionOp::verifyRegions() {
  return verifyScoreModRegion(getOperation(), getScoreModBlock(),
                              getComputeType());
}

void OnlineAttentionOp::getCanonicalizationPatterns(RewritePatternSet &results,
                                                    MLIRContext *ctx) {
  results.add<FoldTensorCastIntoAttention<OnlineAttentionOp>>(ctx);
}

//===----------------------------------------------------------------------===//
// MlaAbsorbOp
//===----------------------------------------------------------------------===//

LogicalResult MlaAbsorbOp::verify() {
  Operation *op = getOperation();
  RankedTensorType qn = getQNope().getType(), qr = getQPe().getType(),
                   ckv = getCKv().getType(), kr = getKPe().getType(),
                   wuk = getWUk().getType(), wuv = getWUv().getType(),
                   r = getResult().getType();
  if (failed(checkRank(op, "q_nope", qn, 4, "[B, Sq, H, Dn]")) ||
      failed(checkRank(op, "q_pe", qr, 4, "[B, Sq, H, Dr]")) ||
      failed(checkRank(op, "c_kv", ckv, 3, "[B, Sk, C]")) ||
      failed(checkRank(op, "k_pe", kr, 3, "[B, Sk, Dr]")) ||
      failed(checkRank(op, "w_uk", wuk, 3, "[H, Dn, C]")) ||
      failed(checkRank(op, "w_uv", wuv, 3, "[H, Dv, C]")) ||
      failed(checkRank(op, "result", r, 4, "[B, Sq, H, Dv]")) ||
      failed(checkSameElementType(op, {{"q_nope", getQNope()},
                                       {"q_pe", getQPe()},
                                       {"c_kv", getCKv()},
                                       {"k_pe", getKPe()},
                                       {"w_uk", getWUk()},
                                       {"w_uv", getWUv()},
                                       {"result", getResult()}})) ||
      failed(verifyScale(op, getScale(),
                         getQNope().getType().getElementType().isF64()
                             ? Type(Float64Type::get(getContext()))
                             : Type(Float32Type::get(getContext())))))
    return failure();
  return success(
      succeeded(checkSameDim(op, "batch size",
                             {{"q_nope", getQNope(), 0},
                              {"q_pe", getQPe(), 0},
                              {"c_kv", getCKv(), 0},
                              {"k_pe", getKPe(), 0},
                              {"result", getResult(), 0}})) &&
      succeeded(checkSameDim(op, "query length",
                             {{"q_nope", getQNope(), 1},
                              {"q_pe", getQPe(), 1},
                              {"result", getResult(), 1}})) &&
      succeeded(checkSameDim(op, "number of heads",
                             {{"q_nope", getQNope(), 2},
                              {"q_pe", getQPe(), 2},
                              {"w_uk", getWUk(), 0},
                              {"w_uv", getWUv(), 0},
                              {"result", getResult(), 2}})) &&
      succeeded(
          checkSameDim(op, "nope head dim",
                       {{"q_nope", getQNope(), 3}, {"w_uk", getWUk(), 1}})) &&
      succeeded(checkSameDim(op, "rope head dim",
                             {{"q_pe", getQPe(), 3}, {"k_pe", getKPe(), 2}})) &&
      succeeded(checkSameDim(op, "key length",
                             {{"c_kv", getCKv(), 1}, {"k_pe", getKPe(), 1}})) &&
      succeeded(checkSameDim(op, "latent dim",
                             {{"c_kv", getCKv(), 2},
                              {"w_uk", getWUk(), 2},
                              {"w_uv", getWUv(), 2}})) &&
      succeeded(
          checkSameDim(op, "value head dim",
                       {{"w_uv", getWUv(), 1}, {"result", getResult(), 3}})));
}

#define GET_OP_CLASSES
#include "posenc/Dialect/Posenc/IR/PosencOps.cpp.inc"

//===- ApproximateMath.cpp - posenc-approximate-math ----------------------===//

#include "posenc/Dialect/Posenc/Transforms/Passes.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Math/IR/Math.h"
#include "mlir/Dialect/Math/Transforms/Passes.h"
#include "mlir/Dialect/Vector/IR/VectorOps.h"
#include "mlir/IR/PatternMatch.h"
#include "mlir/Transforms/GreedyPatternRewriteDriver.h"

#include "mlir/IR/TypeUtilities.h"

namespace mlir::posenc {
#define GEN_PASS_DEF_POSENCAPPROXIMATEMATHPASS
#include "posenc/Dialect/Posenc/Transforms/Passes.h.inc"
} // namespace mlir::posenc

using namespace mlir;

namespace {

/// A float constant of `type` (scalar, or splat vector).
Value floatConst(PatternRewriter &b, Location loc, Type type, double v) {
  Type elem = getElementTypeOrSelf(type);
  auto attr = b.getFloatAttr(elem, v);
  if (auto vec = dyn_cast<VectorType>(type))
    return arith::ConstantOp::create(b, loc, type,
                                     SplatElementsAttr::get(vec, attr));
  return arith::ConstantOp::create(b, loc, type, attr);
}

/// Rewrites `truncf(sin(θ))` / `truncf(cos(θ))` with θ in f64 and a result
/// of at most 32 bits: θ is reduced in f64 to r ∈ [−π/4, π/4] and quadrant
/// k (θ = k·π/2 + r, Cody–Waite with a two-part π/2 and FMA), then sin/cos
/// of r are f32 Taylor polynomials (error < 2e-9 on that interval) and the
/// quadrant picks and signs one of them. The f64 reduction keeps RoPE's
/// accuracy contract for positions up to 2^24 (|error| ~1e-7, libm gives
/// the same after rounding to f32); the rest vectorizes, where a libm call
/// per angle does not. NaN and ±Inf angles give NaN, like libm; any finite
/// angle gives a finite sin/cos pair with sin² + cos² ≈ 1.
template <typename TrigOp>
struct NarrowedTrigOfF64 : OpRewritePattern<arith::TruncFOp> {
  using OpRewritePattern::OpRewritePattern;

  LogicalResult matchAndRewrite(arith::TruncFOp trunc,
                                PatternRewriter &b) const override {
    auto trig = trunc.getIn().getDefiningOp<TrigOp>();
    Type resultElem = getElementTypeOrSelf(trunc.getType());
    if (!trig || !getElementTypeOrSelf(trig.getType()).isF64() ||
        resultElem.getIntOrFloatBitWidth() > 32)
      return failure();
    constexpr bool isSin = std::is_same_v<TrigOp, math::SinOp>;
    Location loc = trunc.getLoc();
    Type f64Ty = trig.getType();
    Type f32Ty = f64Ty;
    if (auto vec = dyn_cast<VectorType>(f64Ty))
      f32Ty = vec.clone(b.getF32Type());
    else
      f32Ty = b.getF32Type();
    auto c64 = [&](double v) { return floatConst(b, loc, f64Ty, v); };
    auto c32 = [&](double v) { return floatConst(b, loc, f32Ty, v); };
    auto mul = [&](Value x, Value y) {
      return arith::MulFOp::create(b, loc, x, y).getResult();
    };
    auto fma = [&](Value x, Value y, Value z) {
      return math::FmaOp::create(b, loc, x, y, z).getResult();
    };
    auto cmp = [&](arith::CmpFPredicate p, Value x, double y) {
      return arith::CmpFOp::create(b, loc, p, x, c64(y)).getResult();
    };
    auto select = [&](Value c, Value t, Value f) {
      return arith::SelectOp::create(b, loc, c, t, f).getResult();
    };

    // θ = k·π/2 + r. π/2 = hi + lo: hi is π/2 rounded to f64, lo the rest.
    constexpr double piOver2Hi = llvm::numbers::pi / 2;
    constexpr double piOver2Lo = 6.123233995736766e-17;
    Value theta = trig.getOperand();
    Value k = math::RoundEvenOp::create(b, loc,
                                        mul(theta, c64(2 / llvm::numbers::pi)));
    Value r64 = fma(k, c64(-piOver2Hi), theta);
    r64 = fma(k, c64(-piOver2Lo), r64);
    // Past |θ| ~ 2^51 the f64 k is no longer the nearest quadrant and r
    // leaves [−π/4, π/4]; θ itself is then noise (its ulp exceeds π/2), but
    // the result must stay a sine/cosine pair: clamp r to where the
    // polynomials hold (NaN stays NaN).
    r64 = arith::MaximumFOp::create(
        b, loc, arith::MinimumFOp::create(b, loc, r64, c64(1.0)), c64(-1.0));
    Value r = arith::TruncFOp::create(b, loc, f32Ty, r64);

    // Quadrant m = k mod 4 in {0, 1, 2, 3}, exact in f64.
    Value quarter = math::FloorOp::create(b, loc, mul(k, c64(0.25)));
    Value m = fma(quarter, c64(-4.0), k);

    Value r2 = mul(r, r);
    auto horner = [&](ArrayRef<double> coeffs) {
      Value acc = c32(coeffs.back());
      for (double c : llvm::reverse(coeffs.drop_back()))
        acc = fma(acc, r2, c32(c));
      return acc;
    };
    // sin r = r + r³·P(r²), cos r = 1 + r²·Q(r²): Taylor to r^9 and r^10.
    Value sinR =
        fma(mul(r2, r),
            horner({-1.0 / 6, 1.0 / 120, -1.0 / 5040, 1.0 / 362880}), r);
    Value cosR = fma(
        r2,
        horner({-1.0 / 2, 1.0 / 24, -1.0 / 720, 1.0 / 40320, -1.0 / 3628800}),
        c32(1.0));

    using P = arith::CmpFPredicate;
    Value odd =
        arith::OrIOp::create(b, loc, cmp(P::OEQ, m, 1.0), cmp(P::OEQ, m, 3.0));
    Value v, negate;
    if (isSin) {
      // sin(kπ/2 + r) = sin r, cos r, −sin r, −cos r.
      v = select(odd, cosR, sinR);
      negate = cmp(P::OGE, m, 2.0);
    } else {
      // cos(kπ/2 + r) = cos r, −sin r, −cos r, sin r.
      v = select(odd, sinR, cosR);
      negate = arith::AndIOp::create(b, loc, cmp(P::OGE, m, 1.0),
                                     cmp(P::OLE, m, 2.0));
    }
    v = select(negate, arith::NegFOp::create(b, loc, v), v);
    if (!resultElem.isF32())
      v = arith::TruncFOp::create(b, loc, trunc.getType(), v);
    b.replaceOp(trunc, v);
    return success();
  }
};

/// f32 -> bf16 (round to nearest even; NaN stays a quiet NaN) in i32
/// arithmetic. arith-expand-ops tests NaN with a float
/// compare whose select LLVM's SLP vectorizer scalarizes into a compare and
/// cmov per element, leaving bf16 RoPE at a quarter of the copy bandwidth;
/// integer compares and selects vectorize.
struct TruncF32ToBF16 : OpRewritePattern<arith::TruncFOp> {
  using OpRewritePattern::OpRewritePattern;

  LogicalResult matchAndRewrite(arith::TruncFOp trunc,
                                PatternRewriter &b) const override {
    if (!getElementTypeOrSelf(trunc.getIn()).isF32() ||
        !getElementTypeOrSelf(trunc.getType()).isBF16() ||
        trunc.getRoundingmodeAttr())
      return failure();
    Location loc = trunc.getLoc();
    auto like = [&](Type elem) -> Type {
      if (auto vec = dyn_cast<VectorType>(trunc.getType()))
        return vec.clone(elem);
      return elem;
    };
    Type i32Ty = like(b.getI32Type()), i16Ty = like(b.getIntegerType(16));
    auto c = [&](int64_t v) -> Value {
      auto attr = b.getIntegerAttr(b.getI32Type(), v);
      if (auto vec = dyn_cast<VectorType>(i32Ty))
        return arith::ConstantOp::create(b, loc, i32Ty,
                                         SplatElementsAttr::get(vec, attr));
      return arith::ConstantOp::create(b, loc, i32Ty, attr);
    };
    Value bits = arith::BitcastOp::create(b, loc, i32Ty, trunc.getIn());
    Value lsb = arith::AndIOp::create(
        b, loc, arith::ShRUIOp::create(b, loc, bits, c(16)), c(1));
    Value rounded = arith::AddIOp::create(
        b, loc, bits, arith::AddIOp::create(b, loc, lsb, c(0x7fff)));
    Value magnitude = arith::AndIOp::create(b, loc, bits, c(0x7fffffff));
    Value isNan = arith::CmpIOp::create(b, loc, arith::CmpIPredicate::ugt,
                                        magnitude, c(0x7f800000));
    // OR-ing exponent and quiet bit in keeps any NaN a NaN even when the
    // rounding carried out of its mantissa; as an `or` (not a select of the
    // result) LLVM cannot sink the 16-bit truncation into a scalar select.
    Value r = arith::OrIOp::create(
        b, loc, rounded,
        arith::SelectOp::create(b, loc, isNan, c(0x7fc00000), c(0)));
    Value high = arith::TruncIOp::create(
        b, loc, i16Ty, arith::ShRUIOp::create(b, loc, r, c(16)));
    b.replaceOpWithNewOp<arith::BitcastOp>(trunc, trunc.getType(), high);
    return success();
  }
};

struct PosencApproximateMathPass
    : posenc::impl::PosencApproximateMathPassBase<PosencApproximateMathPass> {
  void runOnOperation() override {
    RewritePatternSet patterns(&getContext());
    // The upstream approximations match f32 only; f64 exp stays libm.
    populateMathPolynomialApproximationPatterns(patterns, [](StringRef name) {
      return name == "math.exp" || name == "math.erf" || name == "math.tanh";
    });
    patterns.add<NarrowedTrigOfF64<math::SinOp>, NarrowedTrigOfF64<math::CosOp>,
                 TruncF32ToBF16>(&getContext());
    if (failed(applyPatternsGreedily(getOperation(), std::move(patterns))))
      signalPassFailure();
  }
};
} // namespace

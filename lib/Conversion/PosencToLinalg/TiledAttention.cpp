//===- TiledAttention.cpp - posenc.attention as flash-style loops ---------===//
//
// Lowers posenc.attention to a tiled online-softmax loop nest on tensors:
//
//   for b, kv head g, query tile [i0, i0 + tq):
//     m = -inf, l = 0, acc = 0                          [tq, G] / [tq, G, Dv]
//     for key tile [j0, j0 + tk) up to the causal limit of the query tile:
//       s = scale·Q·Kᵀ (+ bias) -> score_mod -> causal mask     [tq, G, tk]
//       m' = max(m, rowmax s); p = exp(s - m'); α = exp(m - m')
//       l = α·l + rowsum p;  acc = α·acc + p·V;  m = m'
//     out = acc / l (0 where l = 0: a row that sees no key)
//
// The G = Hq/Hkv query heads that share a kv head are processed together,
// so each K/V tile is read once per group (GQA/MQA). Key tiles entirely
// above the causal diagonal are never visited. Extra memory is O(tile).
//
//===----------------------------------------------------------------------===//

#include "TiledAttention.h"

#include "posenc/Dialect/Posenc/IR/PosencOps.h"
#include "posenc/Dialect/Posenc/Utils/LinalgBuilder.h"

#include "mlir/Dialect/Arith/Utils/Utils.h"
#include "mlir/Dialect/Math/IR/Math.h"
#include "mlir/Dialect/SCF/IR/SCF.h"
#include "mlir/Dialect/Tensor/IR/Tensor.h"
#include "mlir/Transforms/DialectConversion.h"

#include <limits>

using namespace mlir;
using namespace mlir::posenc;

namespace {
using IT = utils::IteratorType;
const float kNegInf = -std::numeric_limits<float>::infinity();

/// A slice of `src` at `offsets` with `sizes` (unit strides), dropping the
/// dims in `drop` (which must have size 1).
Value slice(OpBuilder &b, Location loc, Value src,
            ArrayRef<OpFoldResult> offsets, ArrayRef<OpFoldResult> sizes,
            ArrayRef<int64_t> drop) {
  auto srcTy = cast<RankedTensorType>(src.getType());
  SmallVector<int64_t> shape;
  for (auto [d, size] : llvm::enumerate(sizes)) {
    if (llvm::is_contained(drop, int64_t(d)))
      continue;
    std::optional<int64_t> c = getConstantIntValue(size);
    shape.push_back(c ? *c : ShapedType::kDynamic);
  }
  auto type = RankedTensorType::get(shape, srcTy.getElementType());
  SmallVector<OpFoldResult> strides(sizes.size(), b.getIndexAttr(1));
  return tensor::ExtractSliceOp::create(b, loc, type, src, offsets, sizes,
                                        strides);
}

/// Everything one attention op's loop nest needs, built once.
struct TiledAttention {
  AttentionOp op;
  Value q, k, v, bias;
  int64_t group, tileQ, tileK;
  double scale;
  bool causal;
  Type elemTy;
  OpFoldResult dk, dv;
  Value sq, sk, offset;

  AffineMap map(MLIRContext *ctx, unsigned n, ArrayRef<unsigned> dims) const {
    SmallVector<AffineExpr> exprs;
    for (unsigned x : dims)
      exprs.push_back(getAffineDimExpr(x, ctx));
    return AffineMap::get(n, 0, exprs, ctx);
  }

  /// min(tile, end - start) as an index value.
  Value tileSize(LinalgBuilder &e, int64_t tile, Value start, Value end) const {
    Value rest = arith::SubIOp::create(e.b, e.loc, end, start);
    return arith::MinSIOp::create(e.b, e.loc, rest, e.cIndex(tile));
  }

  /// The scores of one tile after scale, bias, score_mod and the causal
  /// mask: [tq, G, tk] f32. (b, g, i0, j0) locate the tile.
  Value scores(LinalgBuilder &e, Value qt, Value kt, Value b, Value g, Value i0,
               Value j0, Value tq, Value tk) const {
    MLIRContext *ctx = e.b.getContext();
    OpFoldResult G = e.b.getIndexAttr(group);
    // s[t, hh, j] = Σ_d q[t, hh, d]·k[j, d]; d innermost (a dot product).
    Value raw = e.contract(qt, kt, map(ctx, 4, {0, 1, 3}), map(ctx, 4, {2, 3}),
                           map(ctx, 4, {0, 1, 2}), {tq, G, tk});
    AffineMap id = e.b.getMultiDimIdentityMap(3);
    return e.generic(
        raw.getType(), raw, e.empty({tq, G, tk}, e.b.getF32Type()), {id, id},
        {IT::parallel, IT::parallel, IT::parallel},
        [&](OpBuilder &nb, Location nl, ValueRange args) {
          LinalgBuilder n{nb, nl};
          Value s =
              arith::MulFOp::create(nb, nl, args[0], n.cF32(float(scale)));
          // Global indices of this score.
          Value h = arith::AddIOp::create(
              nb, nl, arith::MulIOp::create(nb, nl, g, n.cIndex(group)),
              n.index(1));
          Value i = arith::AddIOp::create(nb, nl, i0, n.index(0));
          Value j = arith::AddIOp::create(nb, nl, j0, n.index(2));
          SmallVector<Value> global = {b, h, i, j};
          if (bias) {
            // Right-aligned numpy broadcast of the bias to [B, Hq, Sq, Sk].
            auto biasTy = cast<RankedTensorType>(bias.getType());
            int64_t r = biasTy.getRank();
            SmallVector<Value> at;
            for (int64_t x = 0; x < r; ++x)
              at.push_back(biasTy.getDimSize(x) == 1 ? n.cIndex(0)
                                                     : global[4 - r + x]);
            s = arith::AddFOp::create(nb, nl, s, n.toF32(n.extract(bias, at)));
          }
          s = AttentionOp(op).inlineScoreMod(nb, s, global);
          if (causal) {
            Value limit = arith::AddIOp::create(nb, nl, i, offset);
            Value masked = n.cmpI(arith::CmpIPredicate::sgt, j, limit);
            s = n.select(masked, n.cF32(kNegInf), s);
          }
          yieldValues(nb, nl, s);
        });
  }

  /// One key tile of the online softmax: (m, l, acc) -> (m', l', acc').
  SmallVector<Value> keyTile(LinalgBuilder &e, Value qt, Value b, Value g,
                             Value i0, Value tq, Value j0, Value jEnd,
                             ValueRange state) const {
    MLIRContext *ctx = e.b.getContext();
    OpBuilder &rb = e.b;
    Location loc = e.loc;
    Value m = state[0], l = state[1], acc = state[2];
    Value tk = tileSize(e, tileK, j0, jEnd);
    OpFoldResult one = rb.getIndexAttr(1), zero = rb.getIndexAttr(0);
    OpFoldResult G = rb.getIndexAttr(group);
    Value kt = slice(rb, loc, k, {b, j0, g, zero}, {one, tk, one, dk}, {0, 2});
    Value vt = slice(rb, loc, v, {b, j0, g, zero}, {one, tk, one, dv}, {0, 2});
    Value s = scores(e, qt, kt, b, g, i0, j0, tq, tk);

    // Every update below writes into the buffer of the loop-carried value
    // it replaces (outs = that value), so bufferization keeps the loop
    // state in place instead of allocating per key tile.
    SmallVector<IT> rowIts = {IT::parallel, IT::parallel, IT::reduction};
    SmallVector<IT> par2 = {IT::parallel, IT::parallel};
    AffineMap id3 = rb.getMultiDimIdentityMap(3);
    AffineMap row = map(ctx, 3, {0, 1});
    AffineMap id2 = rb.getMultiDimIdentityMap(2);
    Type f32 = rb.getF32Type();
    // Rows still at -inf (nothing visible yet) shift by 0, so exp gives 0
    // instead of NaN.
    auto shiftOf = [&](LinalgBuilder &n, Value mx) {
      Value isInf = arith::CmpFOp::create(n.b, n.loc, arith::CmpFPredicate::OEQ,
                                          mx, n.cF32(kNegInf));
      return n.select(isInf, n.cF32(0.0f), mx);
    };
    Value tileMax = e.generic(
        m.getType(), s, e.filled({tq, G}, e.cF32(kNegInf)), {id3, row}, rowIts,
        [&](OpBuilder &nb, Location nl, ValueRange args) {
          yieldValues(nb, nl,
                      arith::MaximumFOp::create(nb, nl, args[0], args[1]));
        });
    // m' = max(m, tile max) written over m, and α = exp(m - m') from the
    // old m read in the same op.
    auto update = linalg::GenericOp::create(
        rb, loc, TypeRange{m.getType(), m.getType()}, ValueRange{tileMax},
        ValueRange{m, e.empty({tq, G}, f32)},
        ArrayRef<AffineMap>{id2, id2, id2}, par2,
        [&](OpBuilder &nb, Location nl, ValueRange args) {
          LinalgBuilder n{nb, nl};
          Value mOld = args[1];
          Value mNew = arith::MaximumFOp::create(nb, nl, mOld, args[0]);
          Value a = math::ExpOp::create(
              nb, nl, arith::SubFOp::create(nb, nl, mOld, shiftOf(n, mNew)));
          yieldValues(nb, nl, ValueRange{mNew, a});
        });
    Value mNew = update.getResult(0), alpha = update.getResult(1);
    Value p = e.generic(
        s.getType(), {s, mNew}, e.empty({tq, G, tk}, f32), {id3, row, id3},
        {IT::parallel, IT::parallel, IT::parallel},
        [&](OpBuilder &nb, Location nl, ValueRange args) {
          LinalgBuilder n{nb, nl};
          Value x = arith::SubFOp::create(nb, nl, args[0], shiftOf(n, args[1]));
          yieldValues(nb, nl, math::ExpOp::create(nb, nl, x));
        });
    // l' = α·l + rowsum p.
    Value lScaled = e.generic(
        l.getType(), alpha, l, {id2, id2}, par2,
        [&](OpBuilder &nb, Location nl, ValueRange args) {
          yieldValues(nb, nl, arith::MulFOp::create(nb, nl, args[1], args[0]));
        });
    Value lNew = e.generic(
        l.getType(), p, lScaled, {id3, row}, rowIts,
        [&](OpBuilder &nb, Location nl, ValueRange args) {
          yieldValues(nb, nl, arith::AddFOp::create(nb, nl, args[0], args[1]));
        });
    // acc' = α·acc + p·V, with the value dim innermost (an axpy).
    Value accScaled = e.generic(
        acc.getType(), alpha, acc, {row, id3},
        {IT::parallel, IT::parallel, IT::parallel},
        [&](OpBuilder &nb, Location nl, ValueRange args) {
          yieldValues(nb, nl, arith::MulFOp::create(nb, nl, args[1], args[0]));
        });
    Value accNew =
        e.contractInto(p, vt, map(ctx, 4, {0, 1, 2}), map(ctx, 4, {2, 3}),
                       map(ctx, 4, {0, 1, 3}), accScaled);
    return {mNew, lNew, accNew};
  }

  /// One query tile: the key loop and the normalized [tq, G, Dv] result,
  /// inserted into `out`.
  Value queryTile(LinalgBuilder &e, Value b, Value g, Value i0,
                  Value out) const {
    OpBuilder &rb = e.b;
    Location loc = e.loc;
    Value tq = tileSize(e, tileQ, i0, sq);
    OpFoldResult one = rb.getIndexAttr(1), zero = rb.getIndexAttr(0);
    OpFoldResult G = rb.getIndexAttr(group);
    Value h0 = arith::MulIOp::create(rb, loc, g, e.cIndex(group));
    Value qt = slice(rb, loc, q, {b, i0, h0, zero}, {one, tq, G, dk}, {0});

    // Causal: the last row of the tile sees keys j <= i0 + tq - 1 + offset.
    Value jEnd = sk;
    if (causal) {
      Value last = arith::AddIOp::create(
          rb, loc, arith::AddIOp::create(rb, loc, i0, tq), offset);
      jEnd = arith::MaxSIOp::create(
          rb, loc, arith::MinSIOp::create(rb, loc, last, sk), e.cIndex(0));
    }
    Value m0 = e.filled({tq, G}, e.cF32(kNegInf));
    Value l0 = e.filled({tq, G}, e.cF32(0.0f));
    Value acc0 = e.filled({tq, G, dv}, e.cF32(0.0f));
    auto keyLoop = scf::ForOp::create(
        rb, loc, e.cIndex(0), jEnd, e.cIndex(tileK), ValueRange{m0, l0, acc0},
        [&](OpBuilder &nb, Location nl, Value j0, ValueRange state) {
          LinalgBuilder n{nb, nl};
          scf::YieldOp::create(nb, nl,
                               keyTile(n, qt, b, g, i0, tq, j0, jEnd, state));
        });
    Value l = keyLoop.getResult(1), acc = keyLoop.getResult(2);

    // out = acc / l; a row that saw no key (l = 0) gives 0.
    AffineMap id3 = rb.getMultiDimIdentityMap(3);
    AffineMap row = map(rb.getContext(), 3, {0, 1});
    Value o = e.generic(
        RankedTensorType::get(cast<RankedTensorType>(acc.getType()).getShape(),
                              elemTy),
        {acc, l}, e.empty({tq, G, dv}, elemTy), {id3, row, id3},
        {IT::parallel, IT::parallel, IT::parallel},
        [&](OpBuilder &nb, Location nl, ValueRange args) {
          LinalgBuilder n{nb, nl};
          yieldValues(nb, nl,
                      n.fromFloat(n.divideOrZero(args[0], args[1]), elemTy));
        });
    SmallVector<OpFoldResult> strides(4, one);
    return tensor::InsertSliceOp::create(rb, loc, o, out, {b, i0, h0, zero},
                                         {one, tq, G, dv}, strides);
  }
};

struct TiledAttentionLowering : OpConversionPattern<AttentionOp> {
  TiledAttentionLowering(MLIRContext *ctx, int64_t tileQ, int64_t tileK)
      : OpConversionPattern(ctx), tileQ(tileQ), tileK(tileK) {}

  LogicalResult
  matchAndRewrite(AttentionOp op, OpAdaptor adaptor,
                  ConversionPatternRewriter &rewriter) const override {
    Location loc = op.getLoc();
    LinalgBuilder e{rewriter, loc};
    int64_t group;
    double scale;
    if (failed(getAttentionShape(rewriter, op, group, scale)))
      return failure();
    int64_t hq = op.getQ().getType().getDimSize(2);
    int64_t hkv = hq / group;

    TiledAttention t;
    t.op = op;
    t.q = adaptor.getQ();
    t.k = adaptor.getK();
    t.v = adaptor.getV();
    t.bias = adaptor.getBias();
    t.group = group;
    t.tileQ = tileQ;
    t.tileK = tileK;
    t.scale = scale;
    t.causal = op.getCausal();
    t.elemTy = op.getResult().getType().getElementType();
    t.dk = e.dim(t.q, 3);
    t.dv = e.dim(t.v, 3);
    auto idx = [&](OpFoldResult r) {
      return getValueOrCreateConstantIndexOp(rewriter, loc, r);
    };
    t.sq = idx(e.dim(t.q, 1));
    t.sk = idx(e.dim(t.k, 1));
    t.offset = arith::SubIOp::create(rewriter, loc, t.sk, t.sq);

    SmallVector<OpFoldResult> outSizes = {e.dim(t.q, 0), e.dim(t.q, 1),
                                          rewriter.getIndexAttr(hq), t.dv};
    Value out0 = e.empty(outSizes, t.elemTy);
    Value c0 = e.cIndex(0), c1 = e.cIndex(1);
    auto loops = scf::ForOp::create(
        rewriter, loc, c0, idx(outSizes[0]), c1, ValueRange{out0},
        [&](OpBuilder &b1, Location l1, Value b, ValueRange o1) {
          LinalgBuilder e1{b1, l1};
          auto heads = scf::ForOp::create(
              b1, l1, c0, e1.cIndex(hkv), c1, o1,
              [&](OpBuilder &b2, Location l2, Value g, ValueRange o2) {
                LinalgBuilder e2{b2, l2};
                auto rows = scf::ForOp::create(
                    b2, l2, c0, t.sq, e2.cIndex(tileQ), o2,
                    [&](OpBuilder &b3, Location l3, Value i0, ValueRange o3) {
                      LinalgBuilder e3{b3, l3};
                      scf::YieldOp::create(b3, l3,
                                           t.queryTile(e3, b, g, i0, o3[0]));
                    });
                scf::YieldOp::create(b2, l2, rows.getResult(0));
              });
          scf::YieldOp::create(b1, l1, heads.getResult(0));
        });
    rewriter.replaceOp(op, e.castTo(loops.getResult(0), op.getType()));
    return success();
  }

  int64_t tileQ, tileK;
};
} // namespace

LogicalResult mlir::posenc::getAttentionShape(RewriterBase &rewriter,
                                              AttentionOp op, int64_t &group,
                                              double &scale) {
  int64_t hq = op.getQ().getType().getDimSize(2);
  int64_t hkv = op.getK().getType().getDimSize(2);
  if (ShapedType::isDynamic(hq) || ShapedType::isDynamic(hkv))
    return rewriter.notifyMatchFailure(
        op, "lowering needs static head counts (GQA group size)");
  std::optional<double> s = op.getScaleOrDefault();
  if (!s)
    return rewriter.notifyMatchFailure(
        op, "lowering needs a static key head dim or an explicit scale");
  group = hq / hkv;
  scale = *s;
  return success();
}

void mlir::posenc::populateTiledAttentionLoweringPattern(
    RewritePatternSet &patterns, int64_t tileQ, int64_t tileK) {
  patterns.add<TiledAttentionLowering>(patterns.getContext(), tileQ, tileK);
}

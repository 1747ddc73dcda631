//===- TiledAttention.cpp - posenc.attention as flash-style loops ---------===//
//
// Lowers posenc.attention to a tiled online-softmax loop nest on tensors:
//
//   for b, kv head g:
//     Kᵀ = f32 transpose of K[b, :, g, :] in key tiles     [Sk/tk, Dk, tk]
//     V' = f32 copy of V[b, :, g, :] in key tiles          [Sk/tk, tk, Dv]
//     for query tile [i0, i0 + tq), rows R = tq·G:
//       Q' = scale·Q tile                                           [R, Dk]
//       m = -inf, l = 0, acc = 0                              [R] / [R, Dv]
//       for key tile [j0, j0 + tk) up to the causal limit of the query tile:
//         s = Q'·Kᵀ tile (+ bias) -> score_mod -> causal mask      [R, tk]
//         m' = max(m, rowmax s); p = exp(s - m'); α = exp(m - m')
//         l = α·l + rowsum p;  acc = α·acc + p·V;  m = m'
//       out = acc / l (0 where l = 0: a row that sees no key)
//
// The scalar steps (score, mask rule, weights, normalization) come from
// AttentionSemantics.h. P·V is a plain matmul when the value tile is all
// finite, and a contraction that skips masked weights when it is not.
//
// The G = Hq/Hkv query heads that share a kv head are processed together,
// so each K/V tile is read once per group (GQA/MQA). Key tiles entirely
// above the causal diagonal are never visited. Extra memory is O(tile)
// plus f32 copies of one kv head's K and V, never O(Sq·Sk).
//
//===----------------------------------------------------------------------===//

#include "TiledAttention.h"

#include "posenc/Dialect/Posenc/IR/AttentionSemantics.h"
#include "posenc/Dialect/Posenc/IR/PosencOps.h"
#include "posenc/Dialect/Posenc/Utils/BiasArithmetic.h"
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

/// `r` with a constant Value as an attribute.
SmallVector<OpFoldResult> foldConstants(ArrayRef<OpFoldResult> r) {
  return llvm::map_to_vector(r, [](OpFoldResult x) -> OpFoldResult {
    if (auto v = dyn_cast<Value>(x))
      return getAsOpFoldResult(v);
    return x;
  });
}

/// A slice of `src` at `offsets` with `sizes` (unit strides), dropping the
/// dims in `drop` (which must have size 1).
Value slice(OpBuilder &b, Location loc, Value src,
            ArrayRef<OpFoldResult> offsets, ArrayRef<OpFoldResult> sizes,
            ArrayRef<int64_t> drop) {
  auto srcTy = cast<RankedTensorType>(src.getType());
  // Constant sizes as attributes, so the op's static sizes match `shape`.
  SmallVector<OpFoldResult> folded = foldConstants(sizes);
  SmallVector<int64_t> shape;
  for (auto [d, size] : llvm::enumerate(folded)) {
    if (llvm::is_contained(drop, int64_t(d)))
      continue;
    std::optional<int64_t> c = getConstantIntValue(size);
    shape.push_back(c ? *c : ShapedType::kDynamic);
  }
  auto type = RankedTensorType::get(shape, srcTy.getElementType());
  SmallVector<OpFoldResult> strides(sizes.size(), b.getIndexAttr(1));
  return tensor::ExtractSliceOp::create(
      b, loc, type, src, foldConstants(offsets), folded, strides);
}

/// True (i1) when every element of the f32 tensor `t` is finite.
Value allFinite(LinalgBuilder &e, Value t) {
  auto ty = cast<RankedTensorType>(t.getType());
  MLIRContext *ctx = e.b.getContext();
  Value init = e.filled({}, arith::ConstantIntOp::create(e.b, e.loc, 1, 1));
  Value all = e.generic(
      init.getType(), t, init,
      {e.b.getMultiDimIdentityMap(ty.getRank()),
       AffineMap::get(ty.getRank(), 0, {}, ctx)},
      SmallVector<IT>(ty.getRank(), IT::reduction),
      [&](OpBuilder &nb, Location nl, ValueRange args) {
        Value mag = math::AbsFOp::create(nb, nl, args[0]);
        Value finite = arith::CmpFOp::create(
            nb, nl, arith::CmpFPredicate::OLT, mag,
            arith::ConstantOp::create(
                nb, nl,
                nb.getF32FloatAttr(std::numeric_limits<float>::infinity())));
        yieldValues(nb, nl, arith::AndIOp::create(nb, nl, finite, args[1]));
      });
  return tensor::ExtractOp::create(e.b, e.loc, all, ValueRange{});
}

/// Everything one attention op's loop nest needs, built once.
///
/// Inside a query tile, the tq·G (query, head) pairs of the tile are the
/// rows r = t·G + hh of 2-D tiles, so both products are plain matmuls:
/// S[R, tk] = (scale·Q)[R, D] · Kᵀ[D, tk] and acc[R, Dv] += P[R, tk] · V[tk,
/// Dv], which posenc-vectorize-matmul turns into register-blocked FMAs.
struct TiledAttention {
  AttentionOp op;
  Value q, k, v, bias;
  int64_t group, tileQ, tileK;
  double scale;
  bool causal;
  // One query tile (decode): packing a whole head would copy all of K and
  // V once for a single pass over them; pack each key tile where it is
  // used instead, so the copy stays in cache.
  bool packPerKeyTile;
  Type elemTy;
  OpFoldResult dk, dv;
  Value sq, sk, offset;

  /// min(tile, end - start) as an index value.
  Value tileSize(LinalgBuilder &e, int64_t tile, Value start, Value end) const {
    Value rest = arith::SubIOp::create(e.b, e.loc, end, start);
    return arith::MinSIOp::create(e.b, e.loc, rest, e.cIndex(tile));
  }

  Value matmul(LinalgBuilder &e, Value lhs, Value rhs, Value init) const {
    return linalg::MatmulOp::create(e.b, e.loc, TypeRange{init.getType()},
                                    ValueRange{lhs, rhs}, ValueRange{init})
        .getResult(0);
  }

  /// Key tiles [first, first + count) of kv head g of K or V in f32, one
  /// contiguous block per key tile, zero past Sk: Kᵀ as [count, Dk, tileK]
  /// (`transposed`) or V as [count, tileK, Dv]. Contiguous blocks matter:
  /// in the inputs, rows of one head are Hkv·D floats apart (4 KiB for 16
  /// heads of 64) and in a plain Kᵀ, Sk floats; either maps every row of a
  /// tile to the same L1 set.
  Value packTiles(LinalgBuilder &e, Value src, Value b, Value g,
                  bool transposed, Value first, OpFoldResult count) const {
    Type f32 = e.b.getF32Type();
    OpFoldResult d = e.dim(src, 3);
    OpFoldResult tile = e.b.getIndexAttr(tileK);
    SmallVector<OpFoldResult> sizes = {count, transposed ? d : tile,
                                       transposed ? tile : d};
    SmallVector<int64_t> shape;
    for (OpFoldResult size : sizes) {
      std::optional<int64_t> c = getConstantIntValue(size);
      shape.push_back(c ? *c : ShapedType::kDynamic);
    }
    AffineMap id = e.b.getMultiDimIdentityMap(3);
    // No input operand: the body gathers, so this is never folded away as
    // a copy of a strided view.
    return e.generic(
        RankedTensorType::get(shape, f32), ValueRange{}, e.empty(sizes, f32),
        {id}, {IT::parallel, IT::parallel, IT::parallel},
        [&](OpBuilder &nb, Location nl, ValueRange) {
          LinalgBuilder n{nb, nl};
          Value jj = n.index(transposed ? 2 : 1);
          Value t = arith::AddIOp::create(nb, nl, first, n.index(0));
          Value j = arith::AddIOp::create(
              nb, nl, arith::MulIOp::create(nb, nl, t, n.cIndex(tileK)), jj);
          Value inside = n.cmpI(arith::CmpIPredicate::slt, j, sk);
          Value at = n.select(inside, j, n.cIndex(0));
          Value x =
              n.toF32(n.extract(src, {b, at, g, n.index(transposed ? 1 : 2)}));
          yieldValues(nb, nl, n.select(inside, x, n.cF32(0.0f)));
        });
  }

  /// All key tiles of kv head g, packed once and shared by the query tiles
  /// (null when each key tile is packed where it is used).
  Value packHead(LinalgBuilder &e, Value src, Value b, Value g,
                 bool transposed) const {
    if (packPerKeyTile)
      return nullptr;
    Value tiles = arith::CeilDivUIOp::create(e.b, e.loc, sk, e.cIndex(tileK));
    return packTiles(e, src, b, g, transposed, e.cIndex(0), tiles);
  }

  /// acc + P·V for a [R, tk] weight tile and a [tk, Dv] value tile. A
  /// masked weight contributes nothing, not even 0·v (AttentionSemantics.h):
  /// when every value of the tile is finite (`finite`, i1) that is what a
  /// plain matmul computes, so only tiles holding a NaN or Inf take the
  /// masked contraction.
  Value weightedValues(LinalgBuilder &e, Value p, Value vt, Value acc,
                       Value finite) const {
    if (!finite)
      finite = allFinite(e, vt);
    auto branch = scf::IfOp::create(
        e.b, e.loc, finite,
        [&](OpBuilder &nb, Location nl) {
          LinalgBuilder n{nb, nl};
          scf::YieldOp::create(nb, nl, matmul(n, p, vt, acc));
        },
        [&](OpBuilder &nb, Location nl) {
          LinalgBuilder n{nb, nl};
          MLIRContext *ctx = nb.getContext();
          AffineExpr r = getAffineDimExpr(0, ctx), d = getAffineDimExpr(1, ctx),
                     j = getAffineDimExpr(2, ctx);
          Value sum =
              n.generic(acc.getType(), {p, vt}, acc,
                        {AffineMap::get(3, 0, {r, j}, ctx),
                         AffineMap::get(3, 0, {j, d}, ctx),
                         AffineMap::get(3, 0, {r, d}, ctx)},
                        {IT::parallel, IT::parallel, IT::reduction},
                        [&](OpBuilder &bb, Location bl, ValueRange args) {
                          yieldValues(bb, bl,
                                      attention::accumulateWeighted(
                                          bb, bl, args[0], args[1], args[2]));
                        });
          scf::YieldOp::create(nb, nl, sum);
        });
    return branch.getResult(0);
  }

  /// The scores of one tile after bias, score_mod and the causal mask:
  /// [R, tk] f32. `raw` is scale·Q·Kᵀ; (b, g, i0, j0) locate the tile.
  Value scores(LinalgBuilder &e, Value raw, Value b, Value g, Value i0,
               Value j0) const {
    AffineMap id = e.b.getMultiDimIdentityMap(2);
    return e.generic(
        raw.getType(), ValueRange{}, raw, {id}, {IT::parallel, IT::parallel},
        [&](OpBuilder &nb, Location nl, ValueRange args) {
          LinalgBuilder n{nb, nl};
          Value s = args[0];
          // Global indices of this score: row r = t·G + hh.
          Value r = n.index(0), t = r, hh = n.cIndex(0);
          if (group > 1) {
            t = arith::DivUIOp::create(nb, nl, r, n.cIndex(group));
            hh = arith::RemUIOp::create(nb, nl, r, n.cIndex(group));
          }
          Value h = arith::AddIOp::create(
              nb, nl, arith::MulIOp::create(nb, nl, g, n.cIndex(group)), hh);
          Value i = arith::AddIOp::create(nb, nl, i0, t);
          Value j = arith::AddIOp::create(nb, nl, j0, n.index(1));
          SmallVector<Value> global = {b, h, i, j};
          Value biasAt;
          if (bias)
            biasAt = n.toF32(n.extract(
                bias, biasIndices(
                          n, cast<RankedTensorType>(bias.getType()).getShape(),
                          global)));
          yieldValues(
              nb, nl,
              AttentionOp(op).buildScore(nb, nl, s, biasAt, global, offset));
        });
  }

  /// One key tile of the online softmax: (m, l, acc) -> (m', l', acc').
  SmallVector<Value> keyTile(LinalgBuilder &e, Value qp, Value kT, Value vh,
                             Value vFinite, Value b, Value g, Value i0,
                             Value rows, Value j0, Value jEnd,
                             ValueRange state) const {
    OpBuilder &rb = e.b;
    MLIRContext *ctx = rb.getContext();
    Value m = state[0], l = state[1], acc = state[2];
    Value tk = tileSize(e, tileK, j0, jEnd);
    OpFoldResult zero = rb.getIndexAttr(0);
    Type f32 = rb.getF32Type();
    Value tile = arith::DivUIOp::create(rb, e.loc, j0, e.cIndex(tileK));
    OpFoldResult one = rb.getIndexAttr(1);
    Value at = tile;
    if (packPerKeyTile) {
      kT = packTiles(e, k, b, g, /*transposed=*/true, tile, one);
      vh = packTiles(e, v, b, g, /*transposed=*/false, tile, one);
      at = e.cIndex(0);
    }
    Value kt = slice(rb, e.loc, kT, {at, zero, zero}, {one, dk, tk}, {0});
    Value vt = slice(rb, e.loc, vh, {at, zero, zero}, {one, tk, dv}, {0});
    Value raw = matmul(e, qp, kt, e.filled({rows, tk}, e.cF32(0.0f)));
    bool plain = !bias && !causal && AttentionOp(op).getScoreMod().empty();
    Value s = plain ? raw : scores(e, raw, b, g, i0, j0);

    // Every update below writes into the buffer of the loop-carried value
    // it replaces (outs = that value), so bufferization keeps the loop
    // state in place instead of allocating per key tile.
    SmallVector<IT> rowIts = {IT::parallel, IT::reduction};
    AffineMap id2 = rb.getMultiDimIdentityMap(2);
    AffineMap row = AffineMap::get(2, 0, {getAffineDimExpr(0, ctx)}, ctx);
    AffineMap id1 = rb.getMultiDimIdentityMap(1);
    Value tileMax = e.generic(
        m.getType(), s, e.filled({rows}, e.cF32(kNegInf)), {id2, row}, rowIts,
        [&](OpBuilder &nb, Location nl, ValueRange args) {
          yieldValues(nb, nl, attention::combineMax(nb, nl, args[0], args[1]));
        });
    // m' = max(m, tile max) written over m, and α = exp(m - m') from the
    // old m read in the same op.
    auto update = linalg::GenericOp::create(
        rb, e.loc, TypeRange{m.getType(), m.getType()}, ValueRange{tileMax},
        ValueRange{m, e.empty({rows}, f32)}, ArrayRef<AffineMap>{id1, id1, id1},
        IT::parallel, [&](OpBuilder &nb, Location nl, ValueRange args) {
          Value mOld = args[1];
          Value mNew = attention::combineMax(nb, nl, mOld, args[0]);
          Value a = attention::rescaleFactor(nb, nl, mOld, mNew);
          yieldValues(nb, nl, ValueRange{mNew, a});
        });
    Value mNew = update.getResult(0), alpha = update.getResult(1);
    // p = exp(s - m') over the scores' own buffer (-0.0 where masked).
    Value p = e.generic(
        s.getType(), mNew, s, {row, id2}, {IT::parallel, IT::parallel},
        [&](OpBuilder &nb, Location nl, ValueRange args) {
          Value shift = attention::softmaxShift(nb, nl, args[0]);
          yieldValues(nb, nl, attention::softmaxWeight(nb, nl, args[1], shift));
        });
    // l' = α·l + rowsum p, the sum in any order (a vector reduction).
    Value lScaled = e.generic(
        l.getType(), alpha, l, {id1, id1}, {IT::parallel},
        [&](OpBuilder &nb, Location nl, ValueRange args) {
          yieldValues(nb, nl, arith::MulFOp::create(nb, nl, args[1], args[0]));
        });
    Value lNew = e.generic(
        l.getType(), p, lScaled, {id2, row}, rowIts,
        [&](OpBuilder &nb, Location nl, ValueRange args) {
          yieldValues(nb, nl,
                      arith::AddFOp::create(nb, nl, args[0], args[1],
                                            arith::FastMathFlags::reassoc));
        });
    // acc' = α·acc + P·V.
    Value accScaled = e.generic(
        acc.getType(), alpha, acc, {row, id2}, {IT::parallel, IT::parallel},
        [&](OpBuilder &nb, Location nl, ValueRange args) {
          yieldValues(nb, nl, arith::MulFOp::create(nb, nl, args[1], args[0]));
        });
    return {mNew, lNew, weightedValues(e, p, vt, accScaled, vFinite)};
  }

  /// One query tile: the key loop and the normalized [tq, G, Dv] result,
  /// inserted into `out`.
  Value queryTile(LinalgBuilder &e, Value kT, Value vh, Value vFinite, Value b,
                  Value g, Value i0, Value out) const {
    OpBuilder &rb = e.b;
    Location loc = e.loc;
    Type f32 = rb.getF32Type();
    Value tq = tileSize(e, tileQ, i0, sq);
    OpFoldResult one = rb.getIndexAttr(1), zero = rb.getIndexAttr(0);
    OpFoldResult G = rb.getIndexAttr(group);
    Value h0 = arith::MulIOp::create(rb, loc, g, e.cIndex(group));
    Value qt = slice(rb, loc, q, {b, i0, h0, zero}, {one, tq, G, dk}, {0});
    // scale·Q in f32 with rows r = t·G + hh, contiguous.
    AffineMap id3 = rb.getMultiDimIdentityMap(3);
    Value qScaled =
        e.generic(RankedTensorType::get(
                      cast<RankedTensorType>(qt.getType()).getShape(), f32),
                  qt, e.empty({tq, G, dk}, f32), {id3, id3},
                  {IT::parallel, IT::parallel, IT::parallel},
                  [&](OpBuilder &nb, Location nl, ValueRange args) {
                    LinalgBuilder n{nb, nl};
                    yieldValues(nb, nl,
                                arith::MulFOp::create(nb, nl, n.toF32(args[0]),
                                                      n.cF32(float(scale))));
                  });
    SmallVector<ReassociationIndices> rowsOf3 = {{0, 1}, {2}};
    Value qp = tensor::CollapseShapeOp::create(rb, loc, qScaled, rowsOf3);
    Value rows = arith::MulIOp::create(rb, loc, tq, e.cIndex(group));

    // Causal: the last row of the tile sees keys j <= i0 + tq - 1 + offset.
    Value jEnd = sk;
    if (causal) {
      Value last = arith::AddIOp::create(
          rb, loc, arith::AddIOp::create(rb, loc, i0, tq), offset);
      jEnd = arith::MaxSIOp::create(
          rb, loc, arith::MinSIOp::create(rb, loc, last, sk), e.cIndex(0));
    }
    Value m0 = e.filled({rows}, e.cF32(kNegInf));
    Value l0 = e.filled({rows}, e.cF32(0.0f));
    Value acc0 = e.filled({rows, dv}, e.cF32(0.0f));
    auto keyLoop = scf::ForOp::create(
        rb, loc, e.cIndex(0), jEnd, e.cIndex(tileK), ValueRange{m0, l0, acc0},
        [&](OpBuilder &nb, Location nl, Value j0, ValueRange state) {
          LinalgBuilder n{nb, nl};
          scf::YieldOp::create(
              nb, nl,
              keyTile(n, qp, kT, vh, vFinite, b, g, i0, rows, j0, jEnd, state));
        });
    Value l = keyLoop.getResult(1), acc = keyLoop.getResult(2);

    // out = acc / l; a row that saw no key (l = 0) gives 0. Written into
    // the tile's slice of `out` itself (in place after bufferization; a
    // separate tile would be copied with a strided memref.copy).
    SmallVector<int64_t> tileShape = {ShapedType::kDynamic, group};
    if (auto c = getConstantIntValue(tq))
      tileShape[0] = *c;
    auto accTy = cast<RankedTensorType>(acc.getType());
    Value acc3 = tensor::ExpandShapeOp::create(
        rb, loc,
        RankedTensorType::get({tileShape[0], group, accTy.getDimSize(1)}, f32),
        acc, rowsOf3, ArrayRef<OpFoldResult>{tq, G, dv});
    Value l2 = tensor::ExpandShapeOp::create(
        rb, loc, RankedTensorType::get(tileShape, f32), l,
        ArrayRef<ReassociationIndices>{{0, 1}}, ArrayRef<OpFoldResult>{tq, G});
    Value outTile =
        slice(rb, loc, out, {b, i0, h0, zero}, {one, tq, G, dv}, {0});
    AffineMap row3 = AffineMap::get(3, 0,
                                    {getAffineDimExpr(0, rb.getContext()),
                                     getAffineDimExpr(1, rb.getContext())},
                                    rb.getContext());
    Value o3 = e.generic(
        outTile.getType(), {acc3, l2}, outTile, {id3, row3, id3},
        {IT::parallel, IT::parallel, IT::parallel},
        [&](OpBuilder &nb, Location nl, ValueRange args) {
          LinalgBuilder n{nb, nl};
          yieldValues(
              nb, nl,
              n.fromFloat(attention::normalize(nb, nl, args[0], args[1]),
                          elemTy));
        });
    SmallVector<OpFoldResult> strides(4, one);
    return tensor::InsertSliceOp::create(rb, loc, o3, out, {b, i0, h0, zero},
                                         {one, tq, G, dv}, strides);
  }
};

struct TiledAttentionLowering : OpConversionPattern<AttentionOp> {
  TiledAttentionLowering(MLIRContext *ctx, int64_t tileQ, int64_t tileK)
      : OpConversionPattern(ctx), tileQ(tileQ), tileK(tileK) {}

  LogicalResult
  matchAndRewrite(AttentionOp op, OpAdaptor adaptor,
                  ConversionPatternRewriter &rewriter) const override {
    if (op.hasBufferSemantics())
      return rewriter.notifyMatchFailure(op, "lowered as the tensor form");
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
    // tile-q counts rows of the 2-D tiles, (query, head) pairs: G heads
    // share a query, so a tile holds tile-q / G queries (at least one).
    // That keeps the tiles' cache footprint and the matmuls' shape the
    // same for MHA, GQA and MQA with many heads per kv head (MLA absorbed).
    t.tileQ = std::max<int64_t>(1, tileQ / group);
    t.tileK = tileK;
    t.scale = scale;
    t.causal = op.getCausal();
    int64_t sqStatic = op.getQ().getType().getDimSize(1);
    t.packPerKeyTile = !ShapedType::isDynamic(sqStatic) && sqStatic <= t.tileQ;
    t.elemTy = op.getInit().getType().getElementType();
    t.dk = e.dim(t.q, 3);
    t.dv = e.dim(t.v, 3);
    auto idx = [&](OpFoldResult r) {
      return getValueOrCreateConstantIndexOp(rewriter, loc, r);
    };
    t.sq = idx(e.dim(t.q, 1));
    t.sk = idx(e.dim(t.k, 1));
    t.offset = op.buildDiagonal(rewriter, loc);

    SmallVector<OpFoldResult> outSizes = {e.dim(t.q, 0), e.dim(t.q, 1),
                                          rewriter.getIndexAttr(hq), t.dv};
    // The nest writes its tiles into init (destination-style).
    Value out0 = adaptor.getInit();
    Value c0 = e.cIndex(0), c1 = e.cIndex(1);
    auto loops = scf::ForOp::create(
        rewriter, loc, c0, idx(outSizes[0]), c1, ValueRange{out0},
        [&](OpBuilder &b1, Location l1, Value b, ValueRange o1) {
          LinalgBuilder e1{b1, l1};
          auto heads = scf::ForOp::create(
              b1, l1, c0, e1.cIndex(hkv), c1, o1,
              [&](OpBuilder &b2, Location l2, Value g, ValueRange o2) {
                LinalgBuilder e2{b2, l2};
                Value kT = t.packHead(e2, t.k, b, g, /*transposed=*/true);
                Value vh = t.packHead(e2, t.v, b, g, /*transposed=*/false);
                // Whether the head's values are all finite, once per head
                // (per key tile when tiles are packed where they are used).
                Value vFinite = vh ? allFinite(e2, vh) : Value();
                auto rows = scf::ForOp::create(
                    b2, l2, c0, t.sq, e2.cIndex(t.tileQ), o2,
                    [&](OpBuilder &b3, Location l3, Value i0, ValueRange o3) {
                      LinalgBuilder e3{b3, l3};
                      scf::YieldOp::create(
                          b3, l3,
                          t.queryTile(e3, kT, vh, vFinite, b, g, i0, o3[0]));
                    });
                scf::YieldOp::create(b2, l2, rows.getResult(0));
              });
          scf::YieldOp::create(b1, l1, heads.getResult(0));
        });
    rewriter.replaceOp(op, loops.getResult(0));
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

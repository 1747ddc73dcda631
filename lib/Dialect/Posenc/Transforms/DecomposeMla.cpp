//===- DecomposeMla.cpp - posenc-decompose-mla ----------------------------===//
//
// posenc.mla_absorb -> posenc.attention over decompressed keys/values
// (naive) or over the latent cache (absorbed).
//
//===----------------------------------------------------------------------===//

#include "posenc/Dialect/Posenc/Transforms/Passes.h"

#include "posenc/Dialect/Posenc/IR/PosencOps.h"
#include "posenc/Dialect/Posenc/Utils/LinalgBuilder.h"

#include "mlir/Dialect/Tensor/IR/Tensor.h"
#include "mlir/IR/PatternMatch.h"

#include <cmath>

namespace mlir::posenc {
#define GEN_PASS_DEF_POSENCDECOMPOSEMLAPASS
#include "posenc/Dialect/Posenc/Transforms/Passes.h.inc"
} // namespace mlir::posenc

using namespace mlir;
using namespace mlir::posenc;

namespace {
AffineMap dims(MLIRContext *ctx, unsigned n, ArrayRef<unsigned> which) {
  SmallVector<AffineExpr> exprs;
  for (unsigned d : which)
    exprs.push_back(getAffineDimExpr(d, ctx));
  return AffineMap::get(n, 0, exprs, ctx);
}

/// [B, S, X] -> [B, S, 1, X] without a copy.
Value addHeadDim(LinalgBuilder &e, Value t) {
  auto ty = cast<RankedTensorType>(t.getType());
  auto outTy = RankedTensorType::get(
      {ty.getDimSize(0), ty.getDimSize(1), 1, ty.getDimSize(2)},
      ty.getElementType());
  SmallVector<OpFoldResult> shape = {e.dim(t, 0), e.dim(t, 1),
                                     e.b.getIndexAttr(1), e.dim(t, 2)};
  return tensor::ExpandShapeOp::create(e.b, e.loc, outTy, t, {{0}, {1}, {2, 3}},
                                       shape);
}
} // namespace

FailureOr<Value> mlir::posenc::buildMlaDecomposition(OpBuilder &rewriter,
                                                     MlaAbsorbOp op,
                                                     MlaDecomposition form) {
  assert(form != MlaDecomposition::automatic && "resolve auto first");
  RankedTensorType qnTy = op.getQNope().getType(), qrTy = op.getQPe().getType();
  int64_t dn = qnTy.getDimSize(3), dr = qrTy.getDimSize(3);
  int64_t c = op.getCKv().getType().getDimSize(2);
  if (ShapedType::isDynamic(dn) || ShapedType::isDynamic(dr) ||
      ShapedType::isDynamic(c))
    return failure();
  Type ct = floatComputeType(op);
  LinalgBuilder e{rewriter, op.getLoc(), ct};
  MLIRContext *ctx = rewriter.getContext();
  double scale = op.getScale() ? op.getScale()->convertToDouble()
                               : 1.0 / std::sqrt(double(dn + dr));
  Value qn = op.getQNope(), qr = op.getQPe(), ckv = op.getCKv(),
        kpe = op.getKPe(), wuk = op.getWUk(), wuv = op.getWUv();
  OpFoldResult B = e.dim(qn, 0), Sq = e.dim(qn, 1), H = e.dim(qn, 2),
               Sk = e.dim(ckv, 1), Dv = e.dim(wuv, 1);
  RankedTensorType rTy = op.getResult().getType();
  // Attention in the compute type over [B, Sq, H, dv] rows.
  auto attention = [&](Value q, Value k, Value v, OpFoldResult dv) {
    return AttentionOp::create(
               rewriter, op.getLoc(), q, k, v,
               /*bias=*/Value(), /*sinks=*/Value(), /*diagonal=*/Value(),
               /*offsets=*/ValueRange(), e.empty({B, Sq, H, dv}, ct),
               rewriter.getF64FloatAttr(scale), op.getCausalAttr(),
               /*window=*/IntegerAttr(), /*chunk=*/IntegerAttr(),
               /*softcap=*/FloatAttr())
        .getResult();
  };

  Value result;
  if (form == MlaDecomposition::naive) {
    // k_nope[b, j, h, n] = Σ_c w_uk[h, n, c]·c_kv[b, j, c]; same for v.
    Value kNope = e.contract(
        wuk, ckv, dims(ctx, 5, {2, 3, 4}), dims(ctx, 5, {0, 1, 4}),
        dims(ctx, 5, {0, 1, 2, 3}), {B, Sk, H, rewriter.getIndexAttr(dn)});
    Value vals =
        e.contract(wuv, ckv, dims(ctx, 5, {2, 3, 4}), dims(ctx, 5, {0, 1, 4}),
                   dims(ctx, 5, {0, 1, 2, 3}), {B, Sk, H, Dv});
    // k_pe is shared by the heads.
    Value kpeInit = e.empty({B, Sk, H, rewriter.getIndexAttr(dr)}, ct);
    Value kpeH = e.generic(
        kpeInit.getType(), kpe, kpeInit,
        {dims(ctx, 4, {0, 1, 3}), rewriter.getMultiDimIdentityMap(4)},
        SmallVector<utils::IteratorType>(4, utils::IteratorType::parallel),
        [&](OpBuilder &nb, Location nl, ValueRange args) {
          LinalgBuilder n = e.nested(nb, nl);
          yieldValues(nb, nl, n.toCompute(args[0]));
        });
    Value q = e.concatLastDim(qn, qr);
    Value k = e.concatLastDim(kNope, kpeH);
    result = attention(q, k, vals, Dv);
  } else {
    // q_lat[b, i, h, c] = Σ_n q_nope[b, i, h, n]·w_uk[h, n, c].
    // Dims (b, i, h, n, c): c innermost, contiguous in w_uk and q_lat.
    Value qLat = e.contract(qn, wuk, dims(ctx, 5, {0, 1, 2, 3}),
                            dims(ctx, 5, {2, 3, 4}), dims(ctx, 5, {0, 1, 2, 4}),
                            {B, Sq, H, rewriter.getIndexAttr(c)});
    Value q = e.concatLastDim(qLat, qr);
    // One kv head: keys [c_kv | k_pe], values c_kv.
    Value k = e.concatLastDim(addHeadDim(e, ckv), addHeadDim(e, kpe));
    Value v = e.castTensor(addHeadDim(e, ckv), ct);
    Value oLat = attention(q, k, v, rewriter.getIndexAttr(c));
    // out[b, i, h, e] = Σ_c o_lat[b, i, h, c]·w_uv[h, e, c].
    result = e.contract(oLat, wuv, dims(ctx, 5, {0, 1, 2, 4}),
                        dims(ctx, 5, {2, 3, 4}), dims(ctx, 5, {0, 1, 2, 3}),
                        {B, Sq, H, Dv});
  }
  return e.castTo(e.castTensor(result, rTy.getElementType()), rTy);
}

LogicalResult mlir::posenc::decomposeMla(RewriterBase &rewriter, MlaAbsorbOp op,
                                         MlaDecomposition form) {
  OpBuilder::InsertionGuard guard(rewriter);
  rewriter.setInsertionPoint(op);
  FailureOr<Value> result = buildMlaDecomposition(rewriter, op, form);
  if (failed(result))
    return rewriter.notifyMatchFailure(
        op, "decomposition needs static head and latent dims");
  rewriter.replaceOp(op, *result);
  return success();
}

namespace {
struct PosencDecomposeMlaPass
    : posenc::impl::PosencDecomposeMlaPassBase<PosencDecomposeMlaPass> {
  using Base::Base;

  void runOnOperation() override {
    SmallVector<MlaAbsorbOp> ops;
    getOperation()->walk([&](MlaAbsorbOp op) { ops.push_back(op); });
    IRRewriter rewriter(&getContext());
    for (MlaAbsorbOp op : ops) {
      MlaDecomposition form = mode;
      if (form == MlaDecomposition::automatic) {
        int64_t sq = op.getQNope().getType().getDimSize(1);
        form = !ShapedType::isDynamic(sq) && sq <= absorbThreshold
                   ? MlaDecomposition::absorbed
                   : MlaDecomposition::naive;
      }
      // Ops with dynamic head or latent dims stay; lowering reports them.
      (void)decomposeMla(rewriter, op, form);
    }
  }
};
} // namespace

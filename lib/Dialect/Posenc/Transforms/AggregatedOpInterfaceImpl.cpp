//===- AggregatedOpInterfaceImpl.cpp - attention decomposed ---------------===//
//
// posenc.attention's whole-tensor form on linalg, as the op's
// decomposeOperation: scores S = Q·Kᵀ [B, H, Sq, Sk], the score step
// (scale, bias, score_mod, causal), row max, weights, row sums, the masked
// P·V contraction and the normalization, each step the scalar math of
// AttentionSemantics.h. Simple and O(Sq·Sk) in memory: the reference form
// for other lowerings and for tiles small enough to hold their scores.
//
//===----------------------------------------------------------------------===//

#include "posenc/Dialect/Posenc/IR/AttentionSemantics.h"
#include "posenc/Dialect/Posenc/IR/PosencDialect.h"
#include "posenc/Dialect/Posenc/IR/PosencOps.h"
#include "posenc/Dialect/Posenc/Transforms/TilingInterfaceImpl.h"
#include "posenc/Dialect/Posenc/Utils/LinalgBuilder.h"

#include "mlir/Dialect/Linalg/IR/Linalg.h"
#include "mlir/Dialect/Math/IR/Math.h"
#include "mlir/Dialect/Tensor/IR/Tensor.h"

#include <limits>

using namespace mlir;
using namespace mlir::posenc;

namespace {
/// Indexing map of a bias broadcast (numpy rules, right-aligned) into the
/// score space (b, h, i, j).
AffineMap biasMap(MLIRContext *ctx, RankedTensorType biasTy, int64_t numDims,
                  ArrayRef<unsigned> scoreDims) {
  SmallVector<AffineExpr> exprs;
  int64_t r = biasTy.getRank();
  for (int64_t k = 0; k < r; ++k) {
    unsigned full = scoreDims[4 - r + k];
    if (biasTy.getDimSize(k) == 1)
      exprs.push_back(getAffineConstantExpr(0, ctx));
    else
      exprs.push_back(getAffineDimExpr(full, ctx));
  }
  return AffineMap::get(numDims, 0, exprs, ctx);
}

FailureOr<SmallVector<Value>> decomposeAttention(OpBuilder &b, AttentionOp op) {
  Location loc = op.getLoc();
  LinalgBuilder e{b, loc};
  MLIRContext *ctx = b.getContext();
  Value q = op.getQ(), k = op.getK(), v = op.getV();
  int64_t hq = op.getQ().getType().getDimSize(2);
  int64_t hkv = op.getK().getType().getDimSize(2);
  std::optional<double> scale = op.getScaleOrDefault();
  // The GQA group must be static (it is a constant of the maps), and so
  // must the default scale's Dk.
  if (ShapedType::isDynamic(hq) || ShapedType::isDynamic(hkv) || !scale)
    return failure();
  int64_t group = hq / hkv;

  auto d = [&](unsigned i) { return getAffineDimExpr(i, ctx); };
  using IT = utils::IteratorType;
  Type f32 = b.getF32Type();
  OpFoldResult B = e.dim(q, 0), Sq = e.dim(q, 1), H = e.dim(q, 2),
               Sk = e.dim(k, 1), Dv = e.dim(v, 3);

  // S[b, h, i, j] = Σ_d q[b, i, h, d]·k[b, j, h/G, d].
  Value scores = e.contract(
      q, k, AffineMap::get(5, 0, {d(0), d(2), d(1), d(4)}, ctx),
      AffineMap::get(5, 0, {d(0), d(3), d(1).floorDiv(group), d(4)}, ctx),
      AffineMap::get(5, 0, {d(0), d(1), d(2), d(3)}, ctx), {B, H, Sq, Sk});
  Type scoresTy = scores.getType();

  // T = scale·S + bias, then score_mod, then the causal mask.
  Value offset = op.getCausal() ? op.buildDiagonal(b, loc) : Value();
  SmallVector<Value> inputs = {scores};
  AffineMap id4 = b.getMultiDimIdentityMap(4);
  SmallVector<AffineMap> maps = {id4};
  if (Value bias = op.getBias()) {
    inputs.push_back(bias);
    maps.push_back(
        biasMap(ctx, cast<RankedTensorType>(bias.getType()), 4, {0, 1, 2, 3}));
  }
  maps.push_back(id4);
  float negInf = -std::numeric_limits<float>::infinity();
  Value modified = e.generic(
      scoresTy, inputs, e.empty({B, H, Sq, Sk}, f32), maps,
      SmallVector<IT>(4, IT::parallel),
      [&](OpBuilder &nb, Location nl, ValueRange args) {
        LinalgBuilder n{nb, nl};
        Value s = arith::MulFOp::create(nb, nl, args[0], n.cF32(float(*scale)));
        Value biasAt = inputs.size() == 2 ? n.toF32(args[1]) : Value();
        SmallVector<Value> idx = {n.index(0), n.index(1), n.index(2),
                                  n.index(3)};
        yieldValues(nb, nl, op.buildScore(nb, nl, s, biasAt, idx, offset));
      });

  // Row max, then weights exp(s - shift) (AttentionSemantics.h).
  AffineMap rowMap = AffineMap::get(4, 0, {d(0), d(1), d(2)}, ctx);
  SmallVector<IT> rowIts = {IT::parallel, IT::parallel, IT::parallel,
                            IT::reduction};
  Value mInit = e.filled({B, H, Sq}, e.cF32(negInf));
  Value rowMax = e.generic(
      mInit.getType(), modified, mInit, {id4, rowMap}, rowIts,
      [&](OpBuilder &nb, Location nl, ValueRange args) {
        yieldValues(nb, nl, attention::combineMax(nb, nl, args[0], args[1]));
      });
  Value probs = e.generic(
      scoresTy, {modified, rowMax}, e.empty({B, H, Sq, Sk}, f32),
      {id4, rowMap, id4}, SmallVector<IT>(4, IT::parallel),
      [&](OpBuilder &nb, Location nl, ValueRange args) {
        Value shift = attention::softmaxShift(nb, nl, args[1]);
        yieldValues(nb, nl, attention::softmaxWeight(nb, nl, args[0], shift));
      });
  Value lInit = e.filled({B, H, Sq}, e.cF32(0.0f));
  Value rowSum = e.generic(
      lInit.getType(), probs, lInit, {id4, rowMap}, rowIts,
      [&](OpBuilder &nb, Location nl, ValueRange args) {
        yieldValues(nb, nl, arith::AddFOp::create(nb, nl, args[0], args[1]));
      });

  // O[b, i, h, e] = Σ_j P[b, h, i, j]·v[b, j, h/G, e], masked weights
  // skipped. Dims (b, i, h, j, e): the value dim e innermost, so the loop
  // is an axpy over contiguous rows of v and of the output.
  Value accInit = e.filled({B, Sq, H, Dv}, e.cF32(0.0f));
  Value acc = e.generic(
      accInit.getType(), {probs, v}, accInit,
      {AffineMap::get(5, 0, {d(0), d(2), d(1), d(3)}, ctx),
       AffineMap::get(5, 0, {d(0), d(3), d(2).floorDiv(group), d(4)}, ctx),
       AffineMap::get(5, 0, {d(0), d(1), d(2), d(4)}, ctx)},
      {IT::parallel, IT::parallel, IT::parallel, IT::reduction, IT::parallel},
      [&](OpBuilder &nb, Location nl, ValueRange args) {
        LinalgBuilder n{nb, nl};
        yieldValues(nb, nl,
                    attention::accumulateWeighted(nb, nl, args[0],
                                                  n.toF32(args[1]), args[2]));
      });
  RankedTensorType rTy = op.getResult().getType();
  Type elemTy = rTy.getElementType();
  Value result = e.generic(
      rTy, {acc, rowSum}, e.empty({B, Sq, H, Dv}, elemTy),
      {id4, AffineMap::get(4, 0, {d(0), d(2), d(1)}, ctx), id4},
      SmallVector<IT>(4, IT::parallel),
      [&](OpBuilder &nb, Location nl, ValueRange args) {
        LinalgBuilder n{nb, nl};
        yieldValues(nb, nl,
                    n.fromFloat(attention::normalize(nb, nl, args[0], args[1]),
                                elemTy));
      });
  return SmallVector<Value>{e.castTo(result, op.getType())};
}

struct AttentionAggregatedOpInterface
    : linalg::AggregatedOpInterface::ExternalModel<
          AttentionAggregatedOpInterface, AttentionOp> {
  FailureOr<SmallVector<Value>> decomposeOperation(Operation *op,
                                                   OpBuilder &b) const {
    return decomposeAttention(b, cast<AttentionOp>(op));
  }
};
} // namespace

void mlir::posenc::registerAggregatedOpInterfaceExternalModels(
    DialectRegistry &registry) {
  registry.addExtension(+[](MLIRContext *ctx, PosencDialect *) {
    ctx->loadDialect<arith::ArithDialect, linalg::LinalgDialect,
                     math::MathDialect, tensor::TensorDialect>();
    AttentionOp::attachInterface<AttentionAggregatedOpInterface>(*ctx);
  });
}

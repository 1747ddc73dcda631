//===- AggregatedOpInterfaceImpl.cpp - attention decomposed ---------------===//
//
// decomposeOperation of the attention ops. posenc.attention becomes
// posenc.online_attention from the initial state (0, -inf, 0) followed by
// the normalization acc / sum; posenc.online_attention becomes one
// online-softmax step on linalg: scores S = Q·Kᵀ [B, H, Sq, Sk], the score
// step (scale, bias, score_mod, causal), the block's row max, the new max
// and rescale, weights, sums and the masked P·V contraction, each the
// scalar math of AttentionSemantics.h. O(Sq·Sk) memory per op: tile first
// (TilingInterfaceImpl.cpp) to bound it.
//
//===----------------------------------------------------------------------===//

#include "posenc/Dialect/Posenc/IR/AttentionSemantics.h"
#include "posenc/Dialect/Posenc/IR/PosencDialect.h"
#include "posenc/Dialect/Posenc/IR/PosencOps.h"
#include "posenc/Dialect/Posenc/Transforms/BufferizableOpInterfaceImpl.h"
#include "posenc/Dialect/Posenc/Transforms/Passes.h"
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

/// One online-softmax step on linalg (the op's description, step by step).
FailureOr<SmallVector<Value>> decomposeOnlineAttention(OpBuilder &b,
                                                       OnlineAttentionOp op) {
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
               Sk = e.dim(k, 1);
  float negInf = -std::numeric_limits<float>::infinity();

  // S[b, h, i, j] = Σ_d q[b, i, h, d]·k[b, j, h/G, d].
  Value scores = e.contract(
      q, k, AffineMap::get(5, 0, {d(0), d(2), d(1), d(4)}, ctx),
      AffineMap::get(5, 0, {d(0), d(3), d(1).floorDiv(group), d(4)}, ctx),
      AffineMap::get(5, 0, {d(0), d(1), d(2), d(3)}, ctx), {B, H, Sq, Sk});
  Type scoresTy = scores.getType();

  // The score step: scale·S + bias, score_mod, causal mask.
  Value diagonal = op.getCausal() ? op.buildDiagonal(b, loc) : Value();
  SmallVector<Value> inputs = {scores};
  AffineMap id4 = b.getMultiDimIdentityMap(4);
  SmallVector<AffineMap> maps = {id4};
  if (Value bias = op.getBias()) {
    inputs.push_back(bias);
    maps.push_back(
        biasMap(ctx, cast<RankedTensorType>(bias.getType()), 4, {0, 1, 2, 3}));
  }
  maps.push_back(id4);
  Value modified = e.generic(
      scoresTy, inputs, e.empty({B, H, Sq, Sk}, f32), maps,
      SmallVector<IT>(4, IT::parallel),
      [&](OpBuilder &nb, Location nl, ValueRange args) {
        LinalgBuilder n{nb, nl};
        Value s = arith::MulFOp::create(nb, nl, args[0], n.cF32(float(*scale)));
        Value biasAt = inputs.size() == 2 ? n.toF32(args[1]) : Value();
        SmallVector<Value> idx = {n.index(0), n.index(1), n.index(2),
                                  n.index(3)};
        yieldValues(nb, nl, op.buildScore(nb, nl, s, biasAt, idx, diagonal));
      });

  // Row state [B, Sq, H] from score space (b, h, i, j).
  AffineMap rowMap = AffineMap::get(4, 0, {d(0), d(2), d(1)}, ctx);
  SmallVector<IT> rowIts = {IT::parallel, IT::parallel, IT::parallel,
                            IT::reduction};
  Value mInit = e.filled({B, Sq, H}, e.cF32(negInf));
  Value blockMax = e.generic(
      mInit.getType(), modified, mInit, {id4, rowMap}, rowIts,
      [&](OpBuilder &nb, Location nl, ValueRange args) {
        yieldValues(nb, nl, attention::combineMax(nb, nl, args[0], args[1]));
      });
  // m' = max(m, block max) and α = exp(m - shift(m')). Every update of
  // the state writes into the outs it replaces, so that bufferization keeps
  // a loop over key blocks in place.
  AffineMap id3 = b.getMultiDimIdentityMap(3);
  auto stateTy = cast<RankedTensorType>(op.getMax().getType());
  auto update = linalg::GenericOp::create(
      b, loc, TypeRange{stateTy, blockMax.getType()}, ValueRange{blockMax},
      ValueRange{op.getMax(), e.empty(e.sizes(op.getMax()), f32)},
      ArrayRef<AffineMap>{id3, id3, id3}, SmallVector<IT>(3, IT::parallel),
      [&](OpBuilder &nb, Location nl, ValueRange args) {
        Value mNew = attention::combineMax(nb, nl, args[1], args[0]);
        Value alpha = attention::rescaleFactor(nb, nl, args[1], mNew);
        yieldValues(nb, nl, ValueRange{mNew, alpha});
      });
  Value mNew = update.getResult(0), alpha = update.getResult(1);
  Value probs = e.generic(
      scoresTy, {modified, mNew}, e.empty({B, H, Sq, Sk}, f32),
      {id4, rowMap, id4}, SmallVector<IT>(4, IT::parallel),
      [&](OpBuilder &nb, Location nl, ValueRange args) {
        Value shift = attention::softmaxShift(nb, nl, args[1]);
        yieldValues(nb, nl, attention::softmaxWeight(nb, nl, args[0], shift));
      });
  // sum' = α·sum + Σ_j p.
  Value sumScaled = e.generic(
      stateTy, alpha, op.getSum(), {id3, id3}, SmallVector<IT>(3, IT::parallel),
      [&](OpBuilder &nb, Location nl, ValueRange args) {
        yieldValues(nb, nl, arith::MulFOp::create(nb, nl, args[0], args[1]));
      });
  Value sumNew = e.generic(
      stateTy, probs, sumScaled, {id4, rowMap}, rowIts,
      [&](OpBuilder &nb, Location nl, ValueRange args) {
        yieldValues(nb, nl, arith::AddFOp::create(nb, nl, args[0], args[1]));
      });

  // acc' = α·acc + Σ_j P[b, h, i, j]·v[b, j, h/G, e], masked weights
  // skipped. Dims (b, i, h, j, e): the value dim e innermost, so the loop
  // is an axpy over contiguous rows of v and of the accumulator.
  auto accTy = cast<RankedTensorType>(op.getAcc().getType());
  AffineMap id4acc = b.getMultiDimIdentityMap(4);
  Value accScaled = e.generic(
      accTy, alpha, op.getAcc(),
      {AffineMap::get(4, 0, {d(0), d(1), d(2)}, ctx), id4acc},
      SmallVector<IT>(4, IT::parallel),
      [&](OpBuilder &nb, Location nl, ValueRange args) {
        yieldValues(nb, nl, arith::MulFOp::create(nb, nl, args[0], args[1]));
      });
  Value accNew = e.generic(
      accTy, {probs, v}, accScaled,
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
  return SmallVector<Value>{accNew, mNew, sumNew};
}

/// Whether the decomposition applies: static head counts (the GQA group is
/// an affine map constant) and a known scale.
bool decomposable(AttentionOp op) {
  return !op.getQ().getType().isDynamicDim(2) &&
         !op.getK().getType().isDynamicDim(2) && op.getScaleOrDefault();
}

/// attention = online_attention from (0, -inf, 0) over all keys, then
/// acc / sum (0 for a row that sees no key). `online` is set to the new
/// online_attention op.
FailureOr<SmallVector<Value>>
decomposeAttention(OpBuilder &b, AttentionOp op,
                   OnlineAttentionOp *online = nullptr) {
  if (!decomposable(op))
    return failure();
  Location loc = op.getLoc();
  LinalgBuilder e{b, loc};
  SmallVector<OpFoldResult> rows = {e.dim(op.getQ(), 0), e.dim(op.getQ(), 1),
                                    e.dim(op.getQ(), 2)};
  SmallVector<OpFoldResult> accSizes = rows;
  accSizes.push_back(e.dim(op.getV(), 3));
  Value acc = e.filled(accSizes, e.cF32(0.0f));
  Value max = e.filled(rows, e.cF32(-std::numeric_limits<float>::infinity()));
  Value sum = e.filled(rows, e.cF32(0.0f));
  SmallVector<Value> offsets(op.getOffsets());
  if (!offsets.empty())
    offsets.push_back(e.cIndex(0));
  auto step = OnlineAttentionOp::create(
      b, loc, TypeRange{acc.getType(), max.getType(), sum.getType()}, op.getQ(),
      op.getK(), op.getV(), op.getBias(), op.getDiagonal(), offsets, acc, max,
      sum, op.getScaleAttr(), op.getCausalAttr());
  if (!op.getScoreMod().empty())
    b.cloneRegionBefore(op.getScoreMod(), step.getScoreMod(),
                        step.getScoreMod().end());
  if (online)
    *online = step;
  auto rTy = cast<RankedTensorType>(op.getInit().getType());
  Type elemTy = rTy.getElementType();
  MLIRContext *ctx = b.getContext();
  AffineMap id4 = b.getMultiDimIdentityMap(4);
  AffineMap row =
      AffineMap::get(4, 0,
                     {getAffineDimExpr(0, ctx), getAffineDimExpr(1, ctx),
                      getAffineDimExpr(2, ctx)},
                     ctx);
  Value result = e.generic(
      rTy, {step.getResultAcc(), step.getResultSum()}, op.getInit(),
      {id4, row, id4},
      SmallVector<utils::IteratorType>(4, utils::IteratorType::parallel),
      [&](OpBuilder &nb, Location nl, ValueRange args) {
        LinalgBuilder n{nb, nl};
        yieldValues(nb, nl,
                    n.fromFloat(attention::normalize(nb, nl, args[0], args[1]),
                                elemTy));
      });
  return SmallVector<Value>{result};
}

struct AttentionAggregatedOpInterface
    : linalg::AggregatedOpInterface::ExternalModel<
          AttentionAggregatedOpInterface, AttentionOp> {
  FailureOr<SmallVector<Value>> decomposeOperation(Operation *op,
                                                   OpBuilder &b) const {
    auto attn = cast<AttentionOp>(op);
    if (attn.hasBufferSemantics()) {
      // Through the tensor form (a temporary op), whose result is
      // materialized into init; the caller erases `op`.
      if (!decomposable(attn))
        return failure();
      AttentionOp tensorOp =
          cloneWithOperands(b, attn, tensorFormOperands(b, attn));
      FailureOr<SmallVector<Value>> values = decomposeAttention(b, tensorOp);
      if (auto *listener =
              dyn_cast_if_present<RewriterBase::Listener>(b.getListener()))
        listener->notifyOperationErased(tensorOp);
      tensorOp->erase();
      materializeIntoInit(b, attn, values->front());
      return SmallVector<Value>{};
    }
    return decomposeAttention(b, attn);
  }
};

struct OnlineAttentionAggregatedOpInterface
    : linalg::AggregatedOpInterface::ExternalModel<
          OnlineAttentionAggregatedOpInterface, OnlineAttentionOp> {
  FailureOr<SmallVector<Value>> decomposeOperation(Operation *op,
                                                   OpBuilder &b) const {
    return decomposeOnlineAttention(b, cast<OnlineAttentionOp>(op));
  }
};
/// mla_absorb decomposes into its naive form (posenc.attention over the
/// decompressed keys and values); posenc-decompose-mla picks the absorbed
/// form where it pays.
struct MlaAbsorbAggregatedOpInterface
    : linalg::AggregatedOpInterface::ExternalModel<
          MlaAbsorbAggregatedOpInterface, MlaAbsorbOp> {
  FailureOr<SmallVector<Value>> decomposeOperation(Operation *op,
                                                   OpBuilder &b) const {
    FailureOr<Value> result = buildMlaDecomposition(b, cast<MlaAbsorbOp>(op),
                                                    MlaDecomposition::naive);
    if (failed(result))
      return failure();
    return SmallVector<Value>{*result};
  }
};
} // namespace

FailureOr<OnlineAttentionOp>
mlir::posenc::convertToOnlineAttention(RewriterBase &rewriter, AttentionOp op) {
  OpBuilder::InsertionGuard guard(rewriter);
  rewriter.setInsertionPoint(op);
  OnlineAttentionOp online;
  FailureOr<SmallVector<Value>> values =
      decomposeAttention(rewriter, op, &online);
  if (failed(values))
    return failure();
  rewriter.replaceOp(op, *values);
  return online;
}

void mlir::posenc::registerAggregatedOpInterfaceExternalModels(
    DialectRegistry &registry) {
  registry.addExtension(+[](MLIRContext *ctx, PosencDialect *) {
    ctx->loadDialect<arith::ArithDialect, linalg::LinalgDialect,
                     math::MathDialect, tensor::TensorDialect>();
    AttentionOp::attachInterface<AttentionAggregatedOpInterface>(*ctx);
    OnlineAttentionOp::attachInterface<OnlineAttentionAggregatedOpInterface>(
        *ctx);
    MlaAbsorbOp::attachInterface<MlaAbsorbAggregatedOpInterface>(*ctx);
  });
}

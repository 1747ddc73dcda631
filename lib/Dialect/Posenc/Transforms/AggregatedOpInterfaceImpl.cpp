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
#include "mlir/Dialect/SCF/IR/SCF.h"
#include "mlir/Dialect/SCF/Transforms/TileUsingInterface.h"
#include "mlir/Dialect/Tensor/IR/Tensor.h"

#include <limits>

using namespace mlir;
using namespace mlir::posenc;

namespace {
/// One online-softmax step of one kv head (B = Hkv = 1, static) on 2-D
/// tensors. The G query heads of the group and the queries make the
/// R = Sq·G rows r = i·G + hh (contiguous in q, acc, max and sum), so both
/// products are plain matmuls, which posenc-vectorize-matmul turns into
/// register-blocked FMAs:
///   key-major (many rows):  Sᵀ[n, R] = K[n, Dk]·(scale·Q)ᵀ[Dk, R],
///                           acc[R, Dv] += P[R, n]·V[n, Dv] read from Pᵀ;
///   row-major (few rows):   S[R, n] = (scale·Q)[R, Dk]·K[n, Dk]ᵀ
///                           (dot products along Dk: decode; bf16 Q and K
///                           as stored, then scale·S).
/// The row statistics then run along contiguous rows of the scores. The
/// scaled Q depends on no key, so a loop over key blocks hoists it.
struct UnitStep {
  OnlineAttentionOp op;
  int64_t group;
  double scale;
  bool keyMajor;

  using IT = utils::IteratorType;

  /// Dims of the score space: (key, row) key-major, (row, key) otherwise.
  unsigned keyDim() const { return keyMajor ? 0 : 1; }
  unsigned rowDim() const { return keyMajor ? 1 : 0; }

  /// Iterators of a reduction over keys into per-row values.
  SmallVector<IT> rowReduction() const {
    SmallVector<IT> its(2, IT::parallel);
    its[keyDim()] = IT::reduction;
    return its;
  }

  /// init + lhs·rhs as linalg.matmul, with `maps` when not the default.
  static Value matmul(OpBuilder &b, Location loc, Value lhs, Value rhs,
                      Value init, ArrayRef<AffineMap> maps) {
    SmallVector<NamedAttribute> attrs;
    if (!maps.empty())
      attrs.push_back(b.getNamedAttr(
          "indexing_maps",
          b.getAffineMapArrayAttr(SmallVector<AffineMap>(maps))));
    return linalg::MatmulOp::create(b, loc, TypeRange{init.getType()},
                                    ValueRange{lhs, rhs}, ValueRange{init},
                                    attrs)
        .getResult(0);
  }

  /// `t` [d0, ..., dn] with its leading dims merged as `groups` says.
  static Value collapse(OpBuilder &b, Location loc, Value t,
                        ArrayRef<ReassociationIndices> groups) {
    return tensor::CollapseShapeOp::create(b, loc, t, groups);
  }

  /// [1, n, 1, d] as [n, d].
  static Value dropUnitDims(OpBuilder &b, Location loc, Value t) {
    auto ty = cast<RankedTensorType>(t.getType());
    SmallVector<OpFoldResult> offsets(4, b.getIndexAttr(0)),
        strides(4, b.getIndexAttr(1));
    SmallVector<OpFoldResult> sizes = tensor::getMixedSizes(b, loc, t);
    auto type = RankedTensorType::get({ty.getDimSize(1), ty.getDimSize(3)},
                                      ty.getElementType());
    return tensor::ExtractSliceOp::create(b, loc, type, t, offsets, sizes,
                                          strides);
  }

  /// The broadcast map of the bias tile into the score space: b is 0,
  /// h = r mod G, i = r floordiv G, j the key.
  AffineMap biasMap(MLIRContext *ctx, RankedTensorType biasTy) const {
    AffineExpr r = getAffineDimExpr(rowDim(), ctx),
               j = getAffineDimExpr(keyDim(), ctx);
    AffineExpr full[4] = {getAffineConstantExpr(0, ctx), r % group,
                          r.floorDiv(group), j};
    SmallVector<AffineExpr> exprs;
    int64_t rank = biasTy.getRank();
    for (int64_t d = 0; d < rank; ++d)
      exprs.push_back(biasTy.getDimSize(d) == 1 ? getAffineConstantExpr(0, ctx)
                                                : full[4 - rank + d]);
    return AffineMap::get(2, 0, exprs, ctx);
  }

  /// True (i1) when every element of the tensor `t` is finite: the
  /// sum of t·0 is 0 then, and NaN otherwise (0·Inf = NaN). A float sum
  /// in any order is a vector reduction; an i1 "and" over the elements
  /// stays scalar.
  static Value allFinite(LinalgBuilder &e, Value t) {
    int64_t rank = cast<RankedTensorType>(t.getType()).getRank();
    Value init = e.filled({}, e.cCompute(0.0));
    Value sum = e.generic(
        init.getType(), t, init,
        {e.b.getMultiDimIdentityMap(rank),
         AffineMap::get(rank, 0, {}, e.b.getContext())},
        SmallVector<IT>(rank, IT::reduction),
        [&](OpBuilder &nb, Location nl, ValueRange args) {
          LinalgBuilder n = e.nested(nb, nl);
          Value zero = arith::MulFOp::create(nb, nl, n.toCompute(args[0]),
                                             n.cCompute(0.0));
          yieldValues(nb, nl,
                      arith::AddFOp::create(nb, nl, args[1], zero,
                                            arith::FastMathFlags::reassoc));
        });
    Value total = tensor::ExtractOp::create(e.b, e.loc, sum, ValueRange{});
    return arith::CmpFOp::create(e.b, e.loc, arith::CmpFPredicate::OEQ, total,
                                 e.cCompute(0.0));
  }

  FailureOr<SmallVector<Value>> build(OpBuilder &b) {
    Location loc = op.getLoc();
    Type ct = op.getComputeType();
    LinalgBuilder e{b, loc, ct};
    MLIRContext *ctx = b.getContext();
    auto d = [&](unsigned i) { return getAffineDimExpr(i, ctx); };
    AffineMap id2 = b.getMultiDimIdentityMap(2),
              id1 = b.getMultiDimIdentityMap(1);
    AffineMap row = AffineMap::get(2, 0, {d(rowDim())}, ctx);
    double negInf = -std::numeric_limits<double>::infinity();

    // Rows and keys as 2-D operands; unit dims merge whatever the strides.
    SmallVector<ReassociationIndices> rows4 = {{0, 1, 2}, {3}},
                                      rows3 = {{0, 1, 2}};
    // K and V: rank-reducing slices (strided views after bufferization;
    // a collapse of a dynamic strided view would be copied).
    Value k = dropUnitDims(b, loc, op.getK()),
          v = dropUnitDims(b, loc, op.getV());
    Value acc = collapse(b, loc, op.getAcc(), rows4);
    Value max = collapse(b, loc, op.getMax(), rows3);
    Value sum = collapse(b, loc, op.getSum(), rows3);
    OpFoldResult R = e.dim(acc, 0), n = e.dim(k, 0);

    // bf16 Q and K of a row-major step (decode) meet as stored: their
    // products are exact in f32, so Q·Kᵀ is a bf16 dot product with f32
    // sums (AVX512-BF16's vdpbf16ps, no extension of K) and the scale
    // multiplies the scores; otherwise scale·Q in the compute type, written
    // row-contiguous (row-major) or transposed (key-major) into a fresh
    // tensor, then seen as 2-D.
    Value q = op.getQ();
    bool bf16Dot = !keyMajor && ct.isF32() &&
                   getElementTypeOrSelf(q.getType()).isBF16() &&
                   getElementTypeOrSelf(k.getType()).isBF16();
    Value qs;
    if (bf16Dot) {
      qs = collapse(b, loc, q, rows4);
    } else {
      SmallVector<OpFoldResult> qSizes = e.sizes(q);
      AffineMap id4 = b.getMultiDimIdentityMap(4);
      AffineMap qOut =
          keyMajor ? AffineMap::get(4, 0, {d(3), d(0), d(1), d(2)}, ctx) : id4;
      SmallVector<OpFoldResult> qOutSizes =
          keyMajor ? SmallVector<OpFoldResult>{qSizes[3], qSizes[0], qSizes[1],
                                               qSizes[2]}
                   : qSizes;
      Value qInit = e.empty(qOutSizes, ct);
      Value qScaled = e.generic(
          qInit.getType(), q, qInit, {id4, qOut},
          SmallVector<IT>(4, IT::parallel),
          [&](OpBuilder &nb, Location nl, ValueRange args) {
            LinalgBuilder nn = e.nested(nb, nl);
            yieldValues(nb, nl,
                        arith::MulFOp::create(nb, nl, nn.toCompute(args[0]),
                                              nn.cCompute(scale)));
          });
      qs = collapse(b, loc, qScaled,
                    keyMajor ? SmallVector<ReassociationIndices>{{0}, {1, 2, 3}}
                             : rows4);
    }
    // K and V are read as stored: the matmuls extend 16-bit elements as
    // they load them. (posenc-tile-attention gives prefill tiles K and V
    // copied into contiguous blocks per kv head; decode reads them in
    // place.)

    // Scores: Sᵀ = K·Qᵀ or S = Q·Kᵀ.
    SmallVector<OpFoldResult> sSizes = keyMajor
                                           ? SmallVector<OpFoldResult>{n, R}
                                           : SmallVector<OpFoldResult>{R, n};
    Value zeros = e.filled(sSizes, e.cCompute(0.0));
    AffineExpr m, nn, kk;
    bindDims(ctx, m, nn, kk);
    Value s = keyMajor ? matmul(b, loc, k, qs, zeros, {})
                       : matmul(b, loc, qs, k, zeros,
                                {AffineMap::get(3, 0, {m, kk}, ctx),
                                 AffineMap::get(3, 0, {nn, kk}, ctx),
                                 AffineMap::get(3, 0, {m, nn}, ctx)});
    if (bf16Dot && scale != 1.0)
      s = e.generic(s.getType(), ValueRange{}, s, {id2},
                    SmallVector<IT>(2, IT::parallel),
                    [&](OpBuilder &nb, Location nl, ValueRange args) {
                      LinalgBuilder nn = e.nested(nb, nl);
                      yieldValues(nb, nl,
                                  arith::MulFOp::create(nb, nl, args[0],
                                                        nn.cCompute(scale)));
                    });
    Type sTy = s.getType();

    // The score step: softcap, bias, score_mod, causal and window mask
    // (local indices; the op adds its offsets for score_mod), over the
    // scores' own buffer.
    if (op.getBias() || op.getCausal() || op.getScoreModBlock() ||
        op.getSoftcapAttr()) {
      Value diagonal = op.getCausal() ? op.buildDiagonal(b, loc) : Value();
      SmallVector<Value> inputs;
      SmallVector<AffineMap> maps;
      if (Value bias = op.getBias()) {
        inputs.push_back(bias);
        maps.push_back(biasMap(ctx, cast<RankedTensorType>(bias.getType())));
      }
      maps.push_back(id2);
      s = e.generic(
          sTy, inputs, s, maps, SmallVector<IT>(2, IT::parallel),
          [&](OpBuilder &nb, Location nl, ValueRange args) {
            LinalgBuilder nn = e.nested(nb, nl);
            Value r = nn.index(rowDim()), h = nn.cIndex(0), i = r;
            if (group > 1) {
              h = arith::RemUIOp::create(nb, nl, r, nn.cIndex(group));
              i = arith::DivUIOp::create(nb, nl, r, nn.cIndex(group));
            }
            SmallVector<Value> idx = {nn.cIndex(0), h, i, nn.index(keyDim())};
            Value biasAt = inputs.empty() ? Value() : nn.toCompute(args[0]);
            yieldValues(
                nb, nl,
                op.buildScore(nb, nl, args.back(), biasAt, idx, diagonal));
          });
    }

    // m' = max(m, block max) and α = exp(m - shift(m')). Each update of
    // the state writes into the outs it replaces, so a loop over key
    // blocks keeps its state in place after bufferization.
    Value blockMax = e.generic(
        max.getType(), s, e.filled({R}, e.cCompute(negInf)), {id2, row},
        rowReduction(), [&](OpBuilder &nb, Location nl, ValueRange args) {
          yieldValues(nb, nl, attention::combineMax(nb, nl, args[0], args[1]));
        });
    auto update = linalg::GenericOp::create(
        b, loc, TypeRange{max.getType(), max.getType()}, ValueRange{blockMax},
        ValueRange{max, e.empty({R}, ct)}, ArrayRef<AffineMap>{id1, id1, id1},
        IT::parallel, [&](OpBuilder &nb, Location nl, ValueRange args) {
          Value mNew = attention::combineMax(nb, nl, args[1], args[0]);
          Value alpha = attention::rescaleFactor(nb, nl, args[1], mNew);
          yieldValues(nb, nl, ValueRange{mNew, alpha});
        });
    Value mNew = update.getResult(0), alpha = update.getResult(1);
    // p = exp(s - shift(m')), -0.0 where masked, over the scores.
    Value p = e.generic(
        sTy, mNew, s, {row, id2}, SmallVector<IT>(2, IT::parallel),
        [&](OpBuilder &nb, Location nl, ValueRange args) {
          Value shift = attention::softmaxShift(nb, nl, args[0]);
          yieldValues(nb, nl, attention::softmaxWeight(nb, nl, args[1], shift));
        });
    // sum' = α·sum + Σ_j p (in any order: a vector reduction).
    Value sumScaled = e.generic(
        sum.getType(), alpha, sum, {id1, id1}, IT::parallel,
        [&](OpBuilder &nb, Location nl, ValueRange args) {
          yieldValues(nb, nl, arith::MulFOp::create(nb, nl, args[0], args[1]));
        });
    Value sumNew = e.generic(
        sum.getType(), p, sumScaled, {id2, row}, rowReduction(),
        [&](OpBuilder &nb, Location nl, ValueRange args) {
          yieldValues(nb, nl,
                      arith::AddFOp::create(nb, nl, args[0], args[1],
                                            arith::FastMathFlags::reassoc));
        });

    // acc' = α·acc + P·V. A masked weight contributes nothing, not even
    // 0·v. The plain matmul T = P·V computes exactly that when T comes out
    // finite: a NaN or Inf of V, masked or not, makes T non-finite (0·Inf
    // is NaN), and only then does the masked contraction replace it.
    // Checking T reads rows × Dv values; checking V would read the block
    // of V once more (decode: 4 × 128 values instead of 256 × 128).
    // Dims (row, value dim, key) = (m, nn, kk).
    AffineMap pMap = keyMajor ? AffineMap::get(3, 0, {kk, m}, ctx)
                              : AffineMap::get(3, 0, {m, kk}, ctx);
    AffineMap vMap = AffineMap::get(3, 0, {kk, nn}, ctx),
              accMap = AffineMap::get(3, 0, {m, nn}, ctx);
    AffineMap rowOf2 = AffineMap::get(2, 0, {d(0)}, ctx);
    Value pv = matmul(b, loc, p, v, e.filled(e.sizes(acc), e.cCompute(0.0)),
                      keyMajor ? SmallVector<AffineMap>{pMap, vMap, accMap}
                               : SmallVector<AffineMap>{});
    auto branch = scf::IfOp::create(
        b, loc, allFinite(e, pv),
        [&](OpBuilder &nb, Location nl) {
          LinalgBuilder nn = e.nested(nb, nl);
          Value sumPV =
              nn.generic(acc.getType(), {alpha, pv}, acc, {rowOf2, id2, id2},
                         SmallVector<IT>(2, IT::parallel),
                         [&](OpBuilder &bb, Location bl, ValueRange args) {
                           yieldValues(bb, bl,
                                       math::FmaOp::create(bb, bl, args[0],
                                                           args[2], args[1]));
                         });
          scf::YieldOp::create(nb, nl, sumPV);
        },
        [&](OpBuilder &nb, Location nl) {
          LinalgBuilder nn = e.nested(nb, nl);
          Value accScaled = nn.generic(
              acc.getType(), alpha, acc, {rowOf2, id2},
              SmallVector<IT>(2, IT::parallel),
              [&](OpBuilder &bb, Location bl, ValueRange args) {
                yieldValues(bb, bl,
                            arith::MulFOp::create(bb, bl, args[0], args[1]));
              });
          Value sumPV = nn.generic(
              accScaled.getType(), {p, v}, accScaled, {pMap, vMap, accMap},
              {IT::parallel, IT::parallel, IT::reduction},
              [&](OpBuilder &bb, Location bl, ValueRange args) {
                LinalgBuilder nb2 = e.nested(bb, bl);
                yieldValues(
                    bb, bl,
                    attention::accumulateWeighted(
                        bb, bl, args[0], nb2.toCompute(args[1]), args[2]));
              });
          scf::YieldOp::create(nb, nl, sumPV);
        });
    Value accNew = branch.getResult(0);

    auto expand = [&](Value t, Value like,
                      ArrayRef<ReassociationIndices> groups) -> Value {
      return tensor::ExpandShapeOp::create(b, loc, like.getType(), t, groups,
                                           e.sizes(like));
    };
    return SmallVector<Value>{expand(accNew, op.getAcc(), rows4),
                              expand(mNew, op.getMax(), rows3),
                              expand(sumNew, op.getSum(), rows3)};
  }
};

/// Whether `op` holds one batch and one kv head, statically.
bool isUnitStep(OnlineAttentionOp op) {
  return op.getQ().getType().getDimSize(0) == 1 &&
         op.getK().getType().getDimSize(2) == 1;
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
  Type ct = op.getComputeType();
  LinalgBuilder e{b, loc, ct};
  SmallVector<OpFoldResult> rows = {e.dim(op.getQ(), 0), e.dim(op.getQ(), 1),
                                    e.dim(op.getQ(), 2)};
  SmallVector<OpFoldResult> accSizes = rows;
  accSizes.push_back(e.dim(op.getV(), 3));
  Value acc = e.filled(accSizes, e.cCompute(0.0));
  Value max, sum;
  if (Value sinks = op.getSinks()) {
    // Each head's sink starts its rows' state: max = sink_h, sum =
    // exp(sink_h - max) = 1 (a -inf sink: the usual -inf and 0).
    MLIRContext *ctx = b.getContext();
    Value maxInit = e.empty(rows, ct), sumInit = e.empty(rows, ct);
    auto init = linalg::GenericOp::create(
        b, loc, TypeRange{maxInit.getType(), sumInit.getType()},
        ValueRange{sinks}, ValueRange{maxInit, sumInit},
        ArrayRef<AffineMap>{
            AffineMap::get(3, 0, {getAffineDimExpr(2, ctx)}, ctx),
            b.getMultiDimIdentityMap(3), b.getMultiDimIdentityMap(3)},
        SmallVector<utils::IteratorType>(3, utils::IteratorType::parallel),
        [&](OpBuilder &nb, Location nl, ValueRange args) {
          yieldValues(nb, nl,
                      ValueRange{args[0], attention::sinkSum(nb, nl, args[0])});
        });
    max = init.getResult(0);
    sum = init.getResult(1);
  } else {
    max = e.filled(rows, e.cCompute(-std::numeric_limits<double>::infinity()));
    sum = e.filled(rows, e.cCompute(0.0));
  }
  SmallVector<Value> offsets(op.getOffsets());
  if (offsets.empty() && op.getChunk()) // key blocks shift the chunks' phase
    offsets.assign(3, e.cIndex(0));
  if (!offsets.empty())
    offsets.push_back(e.cIndex(0));
  auto step = OnlineAttentionOp::create(
      b, loc, TypeRange{acc.getType(), max.getType(), sum.getType()}, op.getQ(),
      op.getK(), op.getV(), op.getBias(), op.getDiagonal(), offsets, acc, max,
      sum, op.getScaleAttr(), op.getCausalAttr(), op.getWindowAttr(),
      op.getChunkAttr(), op.getSoftcapAttr());
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
    IRRewriter rewriter(b);
    return decomposeOnlineAttention(rewriter, cast<OnlineAttentionOp>(op));
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

/// A step over one batch and one kv head is UnitStep; any other is tiled
/// into such steps first (loops over batch and kv heads through the op's
/// TilingInterface), so there is one construction of the math.
FailureOr<SmallVector<Value>>
mlir::posenc::decomposeOnlineAttention(RewriterBase &rewriter,
                                       OnlineAttentionOp op) {
  int64_t hq = op.getQ().getType().getDimSize(2);
  int64_t hkv = op.getK().getType().getDimSize(2);
  std::optional<double> scale = op.getScaleOrDefault();
  // The GQA group must be static (it is a constant of the maps), and so
  // must the default scale's Dk.
  if (ShapedType::isDynamic(hq) || ShapedType::isDynamic(hkv) || !scale)
    return failure();
  // No rows or no keys: the state is unchanged (with no key, m' = m and
  // α = 1, or 0 for a state that has seen none, whose acc and sum are 0).
  ShapedType qTy = op.getQ().getType(), kTy = op.getK().getType(),
             vTy = op.getV().getType();
  if (qTy.getDimSize(0) == 0 || qTy.getDimSize(1) == 0 || hq == 0 || hkv == 0 ||
      kTy.getDimSize(1) == 0 || vTy.getDimSize(3) == 0)
    return SmallVector<Value>{op.getAcc(), op.getMax(), op.getSum()};
  int64_t group = hq / hkv;
  if (isUnitStep(op)) {
    // Key-major unless the rows fill less than a 512-bit vector.
    int64_t sq = op.getQ().getType().getDimSize(1);
    bool keyMajor = ShapedType::isDynamic(sq) || sq * group >= 16;
    return UnitStep{op, group, *scale, keyMajor}.build(rewriter);
  }
  OpBuilder::InsertionGuard guard(rewriter);
  scf::SCFTilingOptions options;
  options.setTileSizes(
      getAsIndexOpFoldResult(rewriter.getContext(), {1, group, 0, 0, 0, 0}));
  FailureOr<scf::SCFTilingResult> tiled = scf::tileUsingSCF(
      rewriter, cast<TilingInterface>(op.getOperation()), options);
  if (failed(tiled))
    return failure();
  for (Operation *t : tiled->tiledOps) {
    auto step = cast<OnlineAttentionOp>(t);
    // A dynamic batch gives tiles of dynamic size: 1 in fact.
    if (!isUnitStep(step))
      return op.emitOpError() << "decomposition needs a static batch of one "
                                 "per tile; tile the batch first";
    rewriter.setInsertionPoint(step);
    FailureOr<SmallVector<Value>> values =
        decomposeOnlineAttention(rewriter, step);
    if (failed(values))
      return failure();
    rewriter.replaceOp(step, *values);
  }
  return tiled->replacements;
}

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

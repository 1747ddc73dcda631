//===- FuseBiasIntoAttention.cpp - posenc-fuse-bias-into-attention --------===//
//
// Moves a position bias from a materialized [B?, H, Sq, Sk] operand into
// attention's score_mod, where it is computed from (b, h, i, j) on the fly.
//
//===----------------------------------------------------------------------===//

#include "posenc/Dialect/Posenc/Transforms/Passes.h"

#include "posenc/Dialect/Posenc/IR/PosencOps.h"
#include "posenc/Dialect/Posenc/Utils/BiasArithmetic.h"
#include "posenc/Dialect/Posenc/Utils/LinalgBuilder.h"

#include "mlir/Dialect/Math/IR/Math.h"
#include "mlir/Dialect/Tensor/IR/Tensor.h"
#include "mlir/IR/PatternMatch.h"

namespace mlir::posenc {
#define GEN_PASS_DEF_POSENCFUSEBIASINTOATTENTIONPASS
#include "posenc/Dialect/Posenc/Transforms/Passes.h.inc"
} // namespace mlir::posenc

using namespace mlir;
using namespace mlir::posenc;

namespace {
/// The producer of a bias operand and the meaning-preserving ops between.
struct BiasSource {
  Operation *producer = nullptr;
  SmallVector<Operation *> chain;
};

/// Whether every use of `v` ends as the bias operand of an attention op,
/// directly or through tensor.cast / expand_shape links: then every user can
/// fuse its own copy of the bias and none is left to materialize it (one
/// ALiBi bias shared by the layers of a model). Any other user needs the
/// tensor anyway, and fusing would compute it twice.
bool onlyAttentionBias(Value v) {
  for (OpOperand &use : v.getUses()) {
    Operation *user = use.getOwner();
    if (auto attn = dyn_cast<AttentionOp>(user)) {
      MutableOperandRange bias = attn.getBiasMutable();
      if (bias.empty() || &bias[0] != &use)
        return false;
      continue;
    }
    if (!isa<tensor::CastOp, tensor::ExpandShapeOp>(user) ||
        !onlyAttentionBias(user->getResult(0)))
      return false;
  }
  return true;
}

/// Follows tensor.cast and expand_shapes that only add unit dims; every link
/// must end only in attention bias operands.
std::optional<BiasSource> traceBias(Value bias) {
  BiasSource src;
  Value v = bias;
  while (true) {
    Operation *def = v.getDefiningOp();
    if (!def || def->getNumResults() != 1 ||
        !onlyAttentionBias(def->getResult(0)))
      return std::nullopt;
    if (isa<AlibiBiasOp, RelBiasOp, RelKeyBiasOp>(def)) {
      src.producer = def;
      return src;
    }
    if (auto cast = dyn_cast<tensor::CastOp>(def)) {
      src.chain.push_back(def);
      v = cast.getSource();
      continue;
    }
    if (auto expand = dyn_cast<tensor::ExpandShapeOp>(def)) {
      // Only [X] -> [1, ..., 1, X] groups: the values keep their places.
      RankedTensorType outTy = expand.getResultType();
      bool unitOnly = true;
      for (ReassociationIndices group : expand.getReassociationIndices()) {
        int nonUnit = 0;
        for (int64_t d : group)
          nonUnit += outTy.getDimSize(d) != 1;
        unitOnly &= nonUnit <= 1 &&
                    (nonUnit == 0 || outTy.getDimSize(group.back()) != 1);
      }
      if (!unitOnly)
        return std::nullopt;
      src.chain.push_back(def);
      v = expand.getSrc();
      continue;
    }
    return std::nullopt;
  }
}

/// Index into dim `d` of `t` for attention index `idx`: 0 where `t` has a
/// static unit dim (a broadcast), else `idx`.
Value broadcastIndex(LinalgBuilder &e, Value t, int64_t d, Value idx) {
  if (cast<RankedTensorType>(t.getType()).getDimSize(d) == 1)
    return e.cIndex(0);
  return idx;
}

/// pos[i] or pos[b, i] (unit dims broadcast).
Value positionAt(LinalgBuilder &e, Value pos, Value b, Value i) {
  if (cast<RankedTensorType>(pos.getType()).getRank() == 2)
    return e.toI64(e.extract(
        pos, {broadcastIndex(e, pos, 0, b), broadcastIndex(e, pos, 1, i)}));
  return e.toI64(e.extract(pos, {broadcastIndex(e, pos, 0, i)}));
}

/// Emits the code that computes the bias scalar inside the score_mod block,
/// after preparing captured values before the attention.
class BiasEmitter {
public:
  BiasEmitter(RewriterBase &rewriter, AttentionOp attn, Operation *producer)
      : producer(producer), compute(floatComputeType(producer)),
        scoreType(attn.getComputeType()) {
    rewriter.setInsertionPoint(attn);
    LinalgBuilder e{rewriter, producer->getLoc(), compute};
    if (auto alibi = dyn_cast<AlibiBiasOp>(producer)) {
      alibiMath = AlibiArithmetic::prepare(e, alibi);
      headsFrom = alibi.getResult();
    } else if (auto rel = dyn_cast<RelBiasOp>(producer)) {
      relMath = RelBiasArithmetic::prepare(e, rel, rel.getTable());
      headsFrom = rel.getResult();
      // One load per score from an L1-resident [H, 2M+1] row instead of
      // the bucket arithmetic and two dependent lookups.
      if (relMath->hasDistanceTable()) {
        distTable = relMath->distanceTable(e, e.dim(rel.getTable(), 1));
        maxDistance = rel.getMaxDistance();
      }
    } else {
      auto key = cast<RelKeyBiasOp>(producer);
      // qe[b, i, h, r] = q[b, i, h, :]·emb[r, :]: 2M+1 dot products per
      // query row, gathered by clamped distance below.
      MLIRContext *ctx = rewriter.getContext();
      auto d = [&](unsigned x) { return getAffineDimExpr(x, ctx); };
      Value q = key.getQ(), emb = key.getEmb();
      qe = e.contract(q, emb,
                      AffineMap::get(5, 0, {d(0), d(1), d(2), d(4)}, ctx),
                      relKeyEmbMap(ctx, emb),
                      AffineMap::get(5, 0, {d(0), d(1), d(2), d(3)}, ctx),
                      {e.dim(q, 0), e.dim(q, 1), e.dim(q, 2), e.dim(emb, 0)});
      headsFrom = key.getResult();
    }
  }

  /// The type the producer's math runs in (as when it is materialized).
  Type computeType() const { return compute; }

  /// The bias of score (b, h, i, j) in the attention's compute type.
  Value emit(LinalgBuilder &e, Value b, Value h, Value i, Value j) {
    auto positions = [&](Value qPos, Value kPos) {
      return arith::SubIOp::create(e.b, e.loc, positionAt(e, kPos, b, j),
                                   positionAt(e, qPos, b, i))
          .getResult();
    };
    // The bias result is [H, Sq, Sk] or [B, H, Sq, Sk]; its head dim may
    // broadcast.
    auto rTy = cast<RankedTensorType>(headsFrom.getType());
    Value hh = broadcastIndex(e, headsFrom, rTy.getRank() - 3, h);
    Value bias;
    if (auto alibi = dyn_cast<AlibiBiasOp>(producer)) {
      bias = alibiMath->at(e, positions(alibi.getQPos(), alibi.getKPos()), hh);
    } else if (auto rel = dyn_cast<RelBiasOp>(producer)) {
      Value d = positions(rel.getQPos(), rel.getKPos());
      bias = distTable
                 ? e.extract(distTable,
                             {hh, clampedDistanceIndex(e, d, maxDistance)})
                 : relMath->at(e, d, hh);
    } else {
      auto key = cast<RelKeyBiasOp>(producer);
      Value r = clampedDistanceIndex(e, positions(key.getQPos(), key.getKPos()),
                                     key.getMaxDistance());
      Value bb = broadcastIndex(e, qe, 0, b);
      bias = e.extract(qe, {bb, i, hh, r});
    }
    // Rounded to the bias tensor's element type first, as the
    // materialized bias would be.
    bias = e.fromFloat(bias, getElementTypeOrSelf(headsFrom));
    return e.fromFloat(bias, scoreType);
  }

private:
  Operation *producer;
  Type compute, scoreType;
  Value headsFrom;
  std::optional<AlibiArithmetic> alibiMath;
  std::optional<RelBiasArithmetic> relMath;
  Value distTable; // [H, 2M+1] in the compute type, or null
  int64_t maxDistance = 0;
  Value qe;
};

LogicalResult fuse(RewriterBase &rewriter, AttentionOp attn) {
  Value bias = attn.getBias();
  if (!bias)
    return failure();
  std::optional<BiasSource> src = traceBias(bias);
  if (!src)
    return failure();
  // The bias is broadcast to [B, Hq, Sq, Sk] right-aligned; a rank-3 bias
  // has no batch dim, a rank-4 one may have a unit batch dim.
  auto biasTy = cast<ShapedType>(bias.getType());
  if (biasTy.getRank() < 3)
    return failure();

  BiasEmitter emitter(rewriter, attn, src->producer);
  Location loc = attn.getLoc();
  Region &region = attn.getScoreMod();
  Block *old = region.empty() ? nullptr : &region.front();

  auto *block = new Block();
  Type index = rewriter.getIndexType();
  block->addArgument(attn.getComputeType(), loc);
  for (int k = 0; k < 4; ++k)
    block->addArgument(index, loc);
  OpBuilder::InsertionGuard guard(rewriter);
  rewriter.setInsertionPointToStart(block);
  LinalgBuilder e{rewriter, loc, emitter.computeType()};
  Value s = block->getArgument(0), b = block->getArgument(1),
        h = block->getArgument(2), i = block->getArgument(3),
        j = block->getArgument(4);
  Value withBias =
      arith::AddFOp::create(rewriter, loc, s, emitter.emit(e, b, h, i, j));
  // The op's own score_mod runs on the biased score.
  Value result = attn.inlineScoreMod(rewriter, withBias,
                                     block->getArguments().drop_front());
  YieldOp::create(rewriter, loc, result);

  rewriter.modifyOpInPlace(attn, [&] {
    if (old)
      rewriter.eraseBlock(old);
    region.push_back(block);
    attn.getBiasMutable().clear();
  });
  // Links and the producer go with their last fused user.
  for (Operation *op : src->chain)
    if (op->use_empty())
      rewriter.eraseOp(op);
  if (src->producer->use_empty())
    rewriter.eraseOp(src->producer);
  return success();
}

struct PosencFuseBiasIntoAttentionPass
    : posenc::impl::PosencFuseBiasIntoAttentionPassBase<
          PosencFuseBiasIntoAttentionPass> {
  void runOnOperation() override {
    SmallVector<AttentionOp> attns;
    getOperation()->walk([&](AttentionOp op) { attns.push_back(op); });
    IRRewriter rewriter(&getContext());
    for (AttentionOp attn : attns)
      (void)fuse(rewriter, attn);
  }
};
} // namespace

//===- FoldRopeLayout.cpp - posenc-fold-rope-layout -----------------------===//
//
// Switches the rope layout of q and k by permuting the output columns of
// their projection weights within each head. Scores q·k are invariant under
// a permutation applied to both, and the permutation maps pair i of one
// layout onto pair i of the other (same frequency), so the rotated scores
// are unchanged too.
//
//===----------------------------------------------------------------------===//

#include "posenc/Dialect/Posenc/Transforms/Passes.h"

#include "posenc/Dialect/Posenc/IR/PosencOps.h"
#include "posenc/Dialect/Posenc/Utils/LinalgBuilder.h"

#include "mlir/Dialect/Linalg/IR/Linalg.h"
#include "mlir/Dialect/Tensor/IR/Tensor.h"
#include "mlir/IR/Matchers.h"
#include "mlir/IR/PatternMatch.h"

namespace mlir::posenc {
#define GEN_PASS_DEF_POSENCFOLDROPELAYOUTPASS
#include "posenc/Dialect/Posenc/Transforms/Passes.h.inc"
} // namespace mlir::posenc

using namespace mlir;
using namespace mlir::posenc;

namespace {
/// q or k: rope(expand_shape(matmul(x, W))) with every link single-use.
struct Projection {
  RopeOp rope;
  linalg::MatmulOp matmul;
  int64_t headDim;
};

std::optional<Projection> matchProjection(Value v, AttentionOp attn) {
  auto rope = v.getDefiningOp<RopeOp>();
  if (!rope || !rope->hasOneUse() || *rope->getUsers().begin() != attn)
    return std::nullopt;
  auto expand = rope.getX().getDefiningOp<tensor::ExpandShapeOp>();
  if (!expand || !expand->hasOneUse())
    return std::nullopt;
  // [N, H·D] -> [B, S, H, D].
  SmallVector<ReassociationIndices> re = expand.getReassociationIndices();
  if (re.size() != 2 || re[0] != ReassociationIndices{0, 1} ||
      re[1] != ReassociationIndices{2, 3})
    return std::nullopt;
  auto matmul = expand.getSrc().getDefiningOp<linalg::MatmulOp>();
  // A plain [N, K] x [K, H·D] matmul: no transposed or broadcast operands.
  if (!matmul || !matmul->hasOneUse() || !matmul.hasPureTensorSemantics() ||
      matmul.getIndexingMapsArray() !=
          linalg::MatmulOp::getDefaultIndexingMaps(matmul.getContext()))
    return std::nullopt;
  int64_t d = rope.getX().getType().getDimSize(3);
  if (ShapedType::isDynamic(d))
    return std::nullopt;
  return Projection{rope, matmul, d};
}

/// Source head-dim index of destination index `d` when switching to `to`.
int64_t sourceIndex(int64_t d, int64_t rotary, RopeLayout to) {
  if (d >= rotary)
    return d;
  int64_t half = rotary / 2;
  if (to == RopeLayout::interleaved) // pair i: (i, i+R/2) -> (2i, 2i+1)
    return d % 2 == 0 ? d / 2 : d / 2 + half;
  return d < half ? 2 * d : 2 * (d - half) + 1; // back to (i, i+R/2)
}

/// W with its output columns permuted within each head of width `headDim`.
Value permuteColumns(RewriterBase &rewriter, Location loc, Value w,
                     int64_t headDim, int64_t rotary, RopeLayout to) {
  auto ty = cast<RankedTensorType>(w.getType());
  DenseElementsAttr attr;
  if (matchPattern(w, m_Constant(&attr)) && ty.hasStaticShape()) {
    int64_t rows = ty.getDimSize(0), cols = ty.getDimSize(1);
    SmallVector<Attribute> in(attr.getValues<Attribute>());
    SmallVector<Attribute> out(in.size());
    for (int64_t r = 0; r < rows; ++r)
      for (int64_t c = 0; c < cols; ++c) {
        int64_t head = c / headDim, d = c % headDim;
        out[r * cols + c] =
            in[r * cols + head * headDim + sourceIndex(d, rotary, to)];
      }
    return arith::ConstantOp::create(rewriter, loc,
                                     DenseElementsAttr::get(ty, out));
  }
  // Runtime weights: out[r, c] = W[r, head·D + src(c mod D)].
  LinalgBuilder e{rewriter, loc};
  AffineMap id = rewriter.getMultiDimIdentityMap(2);
  return e.generic(
      ty, {}, e.empty(e.sizes(w), ty.getElementType()), {id},
      {utils::IteratorType::parallel, utils::IteratorType::parallel},
      [&](OpBuilder &nb, Location nl, ValueRange) {
        LinalgBuilder n{nb, nl};
        using P = arith::CmpIPredicate;
        Value r = n.index(0), c = n.index(1);
        Value dd = arith::RemUIOp::create(nb, nl, c, n.cIndex(headDim));
        Value headStart = arith::SubIOp::create(nb, nl, c, dd);
        Value half = n.cIndex(rotary / 2);
        Value src;
        if (to == RopeLayout::interleaved) {
          Value pair = arith::ShRUIOp::create(nb, nl, dd, n.cIndex(1));
          Value odd = arith::AndIOp::create(nb, nl, dd, n.cIndex(1));
          src = n.select(n.cmpI(P::eq, odd, n.cIndex(0)), pair,
                         arith::AddIOp::create(nb, nl, pair, half));
        } else {
          Value twice = arith::ShLIOp::create(nb, nl, dd, n.cIndex(1));
          Value upper = arith::AddIOp::create(
              nb, nl,
              arith::ShLIOp::create(
                  nb, nl, arith::SubIOp::create(nb, nl, dd, half), n.cIndex(1)),
              n.cIndex(1));
          src = n.select(n.cmpI(P::ult, dd, half), twice, upper);
        }
        src = n.select(n.cmpI(P::ult, dd, n.cIndex(rotary)), src, dd);
        Value col = arith::AddIOp::create(nb, nl, headStart, src);
        yieldValues(nb, nl, n.extract(w, {r, col}));
      });
}

struct PosencFoldRopeLayoutPass
    : posenc::impl::PosencFoldRopeLayoutPassBase<PosencFoldRopeLayoutPass> {
  using Base::Base;

  void runOnOperation() override {
    SmallVector<AttentionOp> attns;
    getOperation()->walk([&](AttentionOp op) { attns.push_back(op); });
    IRRewriter rewriter(&getContext());
    for (AttentionOp attn : attns) {
      std::optional<Projection> q = matchProjection(attn.getQ(), attn);
      std::optional<Projection> k = matchProjection(attn.getK(), attn);
      if (!q || !k || q->rope == k->rope)
        continue;
      RopeOp qr = q->rope, kr = k->rope;
      if (qr.getLayout() == to || qr.getLayout() != kr.getLayout() ||
          q->headDim != k->headDim ||
          qr.getRotaryDimOrHeadDim() != kr.getRotaryDimOrHeadDim() ||
          qr.getBase() != kr.getBase() ||
          qr.getScalingOrNone() != kr.getScalingOrNone() ||
          qr.getEffectiveAttentionFactor() != kr.getEffectiveAttentionFactor())
        continue;
      int64_t rotary = *qr.getRotaryDimOrHeadDim();
      for (Projection *p : {&*q, &*k}) {
        rewriter.setInsertionPoint(p->matmul);
        Value w = p->matmul.getInputs()[1];
        Value permuted = permuteColumns(rewriter, p->matmul.getLoc(), w,
                                        p->headDim, rotary, to);
        rewriter.modifyOpInPlace(p->matmul, [&] {
          p->matmul.getInputsMutable()[1].assign(permuted);
        });
        rewriter.modifyOpInPlace(p->rope, [&] {
          p->rope.setLayoutAttr(RopeLayoutAttr::get(&getContext(), to));
        });
      }
    }
  }
};
} // namespace

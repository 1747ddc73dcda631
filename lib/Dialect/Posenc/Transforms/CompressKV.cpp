//===- CompressKV.cpp - posenc-compress-kv --------------------------------===//
//
// Low-rank KV-cache compression of attention whose key/value projections
// are constants: a latent c = x·A per token replaces k and v, with the
// up-projections absorbed (non-rotary keys) or applied to the latent
// (rotary keys). See Passes.td for the forms.
//
//===----------------------------------------------------------------------===//

#include "posenc/Dialect/Posenc/Transforms/Passes.h"

#include "posenc/Dialect/Posenc/IR/PosencOps.h"
#include "posenc/Dialect/Posenc/Utils/LinalgBuilder.h"
#include "posenc/Dialect/Posenc/Utils/LowRank.h"

#include "mlir/Dialect/Tensor/IR/Tensor.h"
#include "mlir/IR/Matchers.h"
#include "mlir/IR/PatternMatch.h"
#include "llvm/ADT/SetVector.h"

#include <cmath>
#include <limits>

namespace mlir::posenc {
#define GEN_PASS_DEF_POSENCCOMPRESSKVPASS
#include "posenc/Dialect/Posenc/Transforms/Passes.h.inc"
} // namespace mlir::posenc

using namespace mlir;
using namespace mlir::posenc;

namespace {
/// `value = expand_shape(matmul(x, W))`: x [N, d], W a constant [d, n],
/// value [B, S, heads, headDim] with n = heads·headDim.
struct Projection {
  Value x;
  tensor::ExpandShapeOp expand;
  linalg::MatmulOp matmul;
  int64_t d = 0, n = 0, heads = 0, headDim = 0;
  std::vector<double> w; // [d, n], row-major
};

std::optional<std::vector<double>> constantValues(Value v) {
  Attribute attr;
  if (!matchPattern(v, m_Constant(&attr)))
    return std::nullopt;
  if (auto dense = dyn_cast<DenseElementsAttr>(attr)) {
    if (!dense.getElementType().isF32())
      return std::nullopt;
    auto range = dense.getValues<float>();
    return std::vector<double>(range.begin(), range.end());
  }
  if (auto resource = dyn_cast<DenseF32ResourceElementsAttr>(attr))
    if (std::optional<ArrayRef<float>> data = resource.tryGetAsArrayRef())
      // A blob of another size than its type is left to the verifier of
      // whatever reads it (never read past it here).
      if (int64_t(data->size()) == resource.getType().getNumElements())
        return std::vector<double>(data->begin(), data->end());
  return std::nullopt;
}

bool isZeroFill(Value init) {
  auto fill = init.getDefiningOp<linalg::FillOp>();
  return fill && matchPattern(fill.getInputs()[0], m_AnyZeroFloat());
}

std::optional<Projection> matchProjection(Value value) {
  auto expand = value.getDefiningOp<tensor::ExpandShapeOp>();
  if (!expand || expand.getSrcType().getRank() != 2 ||
      expand.getResultType().getRank() != 4)
    return std::nullopt;
  SmallVector<ReassociationIndices> groups = expand.getReassociationIndices();
  if (groups != SmallVector<ReassociationIndices>{{0, 1}, {2, 3}})
    return std::nullopt;
  auto mm = expand.getSrc().getDefiningOp<linalg::MatmulOp>();
  if (!mm || mm.hasUserDefinedMaps() || !isZeroFill(mm.getOutputs()[0]))
    return std::nullopt;
  auto wTy = dyn_cast<RankedTensorType>(mm.getInputs()[1].getType());
  auto outTy = expand.getResultType();
  if (!wTy || !wTy.hasStaticShape() || !wTy.getElementType().isF32() ||
      !outTy.getElementType().isF32() ||
      !cast<ShapedType>(mm.getInputs()[0].getType()).getElementType().isF32())
    return std::nullopt;
  Projection p;
  p.x = mm.getInputs()[0];
  p.expand = expand;
  p.matmul = mm;
  p.d = wTy.getDimSize(0);
  p.n = wTy.getDimSize(1);
  p.heads = outTy.getDimSize(2);
  p.headDim = outTy.getDimSize(3);
  if (ShapedType::isDynamic(p.heads) || ShapedType::isDynamic(p.headDim) ||
      p.heads * p.headDim != p.n || p.d == 0 || p.n == 0)
    return std::nullopt;
  std::optional<std::vector<double>> w = constantValues(mm.getInputs()[1]);
  if (!w)
    return std::nullopt;
  p.w = std::move(*w);
  return p;
}

struct Match {
  Projection k, v;
  RopeOp rope; // null for non-rotary keys
};

/// The projections feeding `op`, or a reason why there are none.
FailureOr<Match> matchAttention(AttentionOp op, std::string &why) {
  if (!op.getResult()) {
    why = "it has buffer semantics (compress before bufferization)";
    return failure();
  }
  if (!op.getQ().getType().getElementType().isF32()) {
    why = "its operands are not f32";
    return failure();
  }
  Match m;
  Value k = op.getK();
  if ((m.rope = k.getDefiningOp<RopeOp>()))
    k = m.rope.getX();
  std::optional<Projection> kp = matchProjection(k), vp;
  if (!kp) {
    why = "k is not x·W_k (tensor.expand_shape [[0, 1], [2, 3]] of a "
          "linalg.matmul by a constant f32 W_k into a zero fill, optionally "
          "through posenc.rope)";
    return failure();
  }
  if (!(vp = matchProjection(op.getV()))) {
    why = "v is not x·W_v (tensor.expand_shape [[0, 1], [2, 3]] of a "
          "linalg.matmul by a constant f32 W_v into a zero fill)";
    return failure();
  }
  if (kp->x != vp->x) {
    why = "k and v project different inputs";
    return failure();
  }
  auto qTy = op.getQ().getType();
  if (qTy.getRank() != 4 || ShapedType::isDynamic(qTy.getDimSize(2))) {
    why = "the query head count is dynamic";
    return failure();
  }
  m.k = std::move(*kp);
  m.v = std::move(*vp);
  return m;
}

/// Columns [from, from + count) of the row-major [rows, cols] matrix.
std::vector<double> columns(ArrayRef<double> m, int64_t rows, int64_t cols,
                            int64_t from, int64_t count) {
  std::vector<double> out(rows * count);
  for (int64_t i = 0; i < rows; ++i)
    for (int64_t j = 0; j < count; ++j)
      out[i * count + j] = m[i * cols + from + j];
  return out;
}

/// [d, nk + nv] = [W_k | W_v], row-major.
std::vector<double> joinColumns(const Projection &k, const Projection &v) {
  int64_t n = k.n + v.n;
  std::vector<double> m(k.d * n);
  for (int64_t i = 0; i < k.d; ++i) {
    std::copy_n(&k.w[i * k.n], k.n, &m[i * n]);
    std::copy_n(&v.w[i * v.n], v.n, &m[i * n + k.n]);
  }
  return m;
}

/// Whether every value rounds to a finite f32.
bool fitsF32(ArrayRef<double> values) {
  for (double x : values)
    if (!(std::abs(x) <= double(std::numeric_limits<float>::max())))
      return false;
  return true;
}

Value constantMatrix(OpBuilder &b, Location loc, ArrayRef<int64_t> shape,
                     ArrayRef<double> values) {
  std::vector<float> f(values.begin(), values.end());
  auto type = RankedTensorType::get(shape, b.getF32Type());
  return arith::ConstantOp::create(
      b, loc, DenseElementsAttr::get(type, ArrayRef<float>(f)));
}

/// x [N, d] · constant [d, n] into a zero fill.
Value matmulByConstant(LinalgBuilder &e, Value x, ArrayRef<double> w, int64_t d,
                       int64_t n) {
  Value wc = constantMatrix(e.b, e.loc, {d, n}, w);
  Value init = e.filled({e.dim(x, 0), e.b.getIndexAttr(n)}, e.cF32(0));
  return linalg::MatmulOp::create(e.b, e.loc, ValueRange{x, wc},
                                  ValueRange{init})
      .getResult(0);
}

/// [N, heads·width] -> [B, S, heads, width] with `like`'s B and S.
Value toHeads(LinalgBuilder &e, Value t, tensor::ExpandShapeOp like,
              int64_t heads, int64_t width) {
  SmallVector<OpFoldResult> shape = like.getMixedOutputShape();
  shape[2] = e.b.getIndexAttr(heads);
  shape[3] = e.b.getIndexAttr(width);
  auto likeTy = like.getResultType();
  auto type = RankedTensorType::get(
      {likeTy.getDimSize(0), likeTy.getDimSize(1), heads, width},
      e.b.getF32Type());
  return tensor::ExpandShapeOp::create(e.b, e.loc, type, t, {{0, 1}, {2, 3}},
                                       shape);
}

AffineMap dims(MLIRContext *ctx, unsigned n, ArrayRef<unsigned> which) {
  SmallVector<AffineExpr> exprs;
  for (unsigned d : which)
    exprs.push_back(getAffineDimExpr(d, ctx));
  return AffineMap::get(n, 0, exprs, ctx);
}

/// Per query head h, the rows of `up` ([R, Hkv·D]) for kv head h / group,
/// as [Hq, D, R] (`transpose`) or [Hq, R, D].
std::vector<double> perQueryHead(ArrayRef<double> up, int64_t r, int64_t hkv,
                                 int64_t dh, int64_t hq, bool transpose) {
  std::vector<double> out(hq * r * dh);
  int64_t group = hq / hkv, n = hkv * dh;
  for (int64_t h = 0; h < hq; ++h)
    for (int64_t i = 0; i < r; ++i)
      for (int64_t e = 0; e < dh; ++e) {
        double x = up[i * n + (h / group) * dh + e];
        if (transpose)
          out[(h * dh + e) * r + i] = x;
        else
          out[(h * r + i) * dh + e] = x;
      }
  return out;
}

/// Query weights absorbing B_k: w [rows, hq·D] (query head h in columns
/// h·D..) times, per head, up's rows of kv head h / group transposed:
/// [rows, hq·R].
std::vector<double> absorbIntoColumns(ArrayRef<double> w, int64_t rows,
                                      ArrayRef<double> up, int64_t r,
                                      int64_t hkv, int64_t dh, int64_t hq) {
  std::vector<double> out(rows * hq * r, 0.0);
  int64_t group = hq / hkv, n = hkv * dh;
  for (int64_t i = 0; i < rows; ++i)
    for (int64_t h = 0; h < hq; ++h)
      for (int64_t j = 0; j < r; ++j) {
        double acc = 0;
        for (int64_t e = 0; e < dh; ++e)
          acc += w[i * hq * dh + h * dh + e] * up[j * n + (h / group) * dh + e];
        out[i * hq * r + h * r + j] = acc;
      }
  return out;
}

/// Output weights absorbing B_v: w [hq·Dv, cols] (query head h in rows
/// h·Dv..) -> [hq·R, cols], row h·R + j = Σ_e up[j, kv head·Dv + e]·w[h·Dv
/// + e].
std::vector<double> absorbIntoRows(ArrayRef<double> w, int64_t cols,
                                   ArrayRef<double> up, int64_t r, int64_t hkv,
                                   int64_t dv, int64_t hq) {
  std::vector<double> out(hq * r * cols, 0.0);
  int64_t group = hq / hkv, n = hkv * dv;
  for (int64_t h = 0; h < hq; ++h)
    for (int64_t j = 0; j < r; ++j)
      for (int64_t e = 0; e < dv; ++e) {
        double u = up[j * n + (h / group) * dv + e];
        for (int64_t c = 0; c < cols; ++c)
          out[(h * r + j) * cols + c] += u * w[(h * dv + e) * cols + c];
      }
  return out;
}

/// `result`'s only use, when it is collapse_shape [[0, 1], [2, 3]] into a
/// plain matmul by a constant f32 W_o from a zero fill: that matmul.
linalg::MatmulOp outputProjection(Value result, tensor::CollapseShapeOp &col,
                                  std::vector<double> &wo) {
  if (!result.hasOneUse())
    return {};
  col = dyn_cast<tensor::CollapseShapeOp>(*result.getUsers().begin());
  if (!col ||
      col.getReassociationIndices() !=
          SmallVector<ReassociationIndices>{{0, 1}, {2, 3}} ||
      !col.getResult().hasOneUse())
    return {};
  auto mm = dyn_cast<linalg::MatmulOp>(*col.getResult().getUsers().begin());
  if (!mm || mm.hasUserDefinedMaps() || mm.getInputs()[0] != col.getResult() ||
      !isZeroFill(mm.getOutputs()[0]))
    return {};
  auto wTy = dyn_cast<RankedTensorType>(mm.getInputs()[1].getType());
  if (!wTy || !wTy.hasStaticShape() ||
      !cast<ShapedType>(mm.getResult(0).getType()).getElementType().isF32())
    return {};
  std::optional<std::vector<double>> w = constantValues(mm.getInputs()[1]);
  if (!w)
    return {};
  wo = std::move(*w);
  return mm;
}

/// The latent of one side: c = x·down, [N, rank], and its up-projection
/// [rank, n].
struct Side {
  Value latent;
  int64_t rank = 0;
  std::vector<double> up;
};

struct Factored {
  Side k, v;
  bool keysKept = false; // rotary=decoupled
  // rotary=decoupled with partial rotary: the rotated dims per kv head
  // (kept, W_k's columns `rotaryColumns`); k holds the others' latent.
  int64_t rotary = 0;
  std::vector<double> rotaryColumns;
  int64_t latentWidth = 0, originalWidth = 0;
  double droppedEnergy = 0;
};

double dropped(const LowRankFactors &f) {
  double all = 0, kept = 0;
  for (size_t i = 0; i < f.singularValues.size(); ++i) {
    all += f.singularValues[i] * f.singularValues[i];
    if (int64_t(i) < f.rank)
      kept += f.singularValues[i] * f.singularValues[i];
  }
  return all > 0 ? (all - kept) / all : 0;
}

class CompressKV : public posenc::impl::PosencCompressKVPassBase<CompressKV> {
public:
  using Base::Base;

  void runOnOperation() override;

private:
  /// Factors `m`'s weights at the attention op's position; emits an error
  /// on `op` and fails when the SVD does.
  FailureOr<Factored> factorWeights(LinalgBuilder &e, AttentionOp op,
                                    const Match &m);
  LogicalResult compress(AttentionOp op, Match &m);
};

FailureOr<Factored> CompressKV::factorWeights(LinalgBuilder &e, AttentionOp op,
                                              const Match &m) {
  Factored f;
  f.originalWidth = m.k.n + m.v.n;
  std::string error;
  auto svd = [&](ArrayRef<double> w, int64_t cols,
                 int64_t r) -> std::optional<LowRankFactors> {
    std::optional<LowRankFactors> lr =
        lowRankFactor(w, m.k.d, cols, r, energy, error);
    if (!lr) {
      op.emitError("posenc-compress-kv: cannot factor the key/value "
                   "projection weights: ")
          << error;
      return lr;
    }
    // B = Σ·Vᵀ can exceed f32 where the weights are near its limit.
    if (!fitsF32(lr->down) || !fitsF32(lr->up)) {
      op.emitError("posenc-compress-kv: the factors of the key/value "
                   "projection weights exceed f32 (largest singular value ")
          << lr->singularValues.front() << ")";
      return std::nullopt;
    }
    return lr;
  };
  auto side = [&](const LowRankFactors &lr, int64_t from, int64_t count) {
    Side s;
    s.rank = lr.rank;
    s.up = columns(lr.up, lr.rank, lr.cols, from, count);
    return s;
  };
  const Projection &k = m.k, &v = m.v;
  RopeOp rope = m.rope;
  int64_t rotated =
      rope ? rope.getRotaryDimOrHeadDim().value_or(k.headDim) : k.headDim;
  // (rotary_dim 0 rotates nothing; its keys are kept whole, as
  // posenc.compress_kv keeps them.)
  if (rope && rotary == "decoupled" && rotated > 0 && rotated < k.headDim) {
    // Partial rotary: per kv head, dims >= R_rot are not rotated and join
    // the values in one latent; the rotated dims are kept.
    int64_t nope = k.heads * (k.headDim - rotated);
    std::vector<double> kept(k.d * k.heads * rotated),
        joined(k.d * (nope + v.n));
    for (int64_t i = 0; i < k.d; ++i) {
      for (int64_t h = 0; h < k.heads; ++h)
        for (int64_t j = 0; j < k.headDim; ++j) {
          double w = k.w[i * k.n + h * k.headDim + j];
          if (j < rotated)
            kept[(i * k.heads + h) * rotated + j] = w;
          else
            joined[i * (nope + v.n) + h * (k.headDim - rotated) + j - rotated] =
                w;
        }
      std::copy_n(&v.w[i * v.n], v.n, &joined[i * (nope + v.n) + nope]);
    }
    std::optional<LowRankFactors> lr = svd(joined, nope + v.n, rank);
    if (!lr)
      return failure();
    f.keysKept = true;
    f.rotary = rotated;
    f.rotaryColumns = std::move(kept);
    f.k = side(*lr, 0, nope);
    f.v = side(*lr, nope, v.n);
    f.k.latent = f.v.latent = matmulByConstant(e, k.x, lr->down, k.d, lr->rank);
    f.latentWidth = k.heads * rotated + lr->rank;
    f.droppedEnergy = dropped(*lr);
    return f;
  }
  if (m.rope && rotary == "decoupled") {
    std::optional<LowRankFactors> lv = svd(v.w, v.n, rank);
    if (!lv)
      return failure();
    f.keysKept = true;
    f.v = side(*lv, 0, v.n);
    f.v.latent = matmulByConstant(e, v.x, lv->down, v.d, lv->rank);
    f.latentWidth = k.n + lv->rank;
    f.droppedEnergy = dropped(*lv);
    return f;
  }
  if (factor == "joint") {
    std::optional<LowRankFactors> lr = svd(joinColumns(k, v), k.n + v.n, rank);
    if (!lr)
      return failure();
    f.k = side(*lr, 0, k.n);
    f.v = side(*lr, k.n, v.n);
    f.k.latent = f.v.latent = matmulByConstant(e, k.x, lr->down, k.d, lr->rank);
    f.latentWidth = lr->rank;
    f.droppedEnergy = dropped(*lr);
    return f;
  }
  // Separate: the latent is [c_k | c_v]; `rank` is split between them.
  std::optional<LowRankFactors> lk = svd(k.w, k.n, rank ? (rank + 1) / 2 : 0);
  if (!lk)
    return failure();
  std::optional<LowRankFactors> lv = svd(v.w, v.n, rank ? rank / 2 : 0);
  if (!lv)
    return failure();
  f.k = side(*lk, 0, k.n);
  f.v = side(*lv, 0, v.n);
  f.k.latent = matmulByConstant(e, k.x, lk->down, k.d, lk->rank);
  f.v.latent = matmulByConstant(e, v.x, lv->down, v.d, lv->rank);
  f.latentWidth = lk->rank + lv->rank;
  // Energy dropped from [W_k | W_v] as a whole.
  double ak = 0, av = 0;
  for (double s : lk->singularValues)
    ak += s * s;
  for (double s : lv->singularValues)
    av += s * s;
  f.droppedEnergy =
      ak + av > 0 ? (dropped(*lk) * ak + dropped(*lv) * av) / (ak + av) : 0;
  return f;
}

/// Erases `ops` in order where their results became unused; each once (k
/// and v may share a projection, a fill or a constant).
void eraseDead(ArrayRef<Operation *> ops) {
  llvm::SetVector<Operation *> unique;
  for (Operation *op : ops)
    if (op)
      unique.insert(op);
  SmallVector<Operation *> left(unique.begin(), unique.end());
  // Until nothing changes: a shared producer dies with its last user.
  for (bool changed = true; changed;) {
    changed = false;
    for (Operation *&op : left)
      if (op && op->use_empty()) {
        op->erase();
        op = nullptr;
        changed = true;
      }
  }
}

LogicalResult CompressKV::compress(AttentionOp op, Match &m) {
  MLIRContext *ctx = op.getContext();
  OpBuilder b(op);
  LinalgBuilder e{b, op.getLoc()};
  FailureOr<Factored> f = factorWeights(e, op, m);
  if (failed(f))
    return failure();
  const Projection &k = m.k, &v = m.v;
  std::optional<Projection> absorbedQuery;
  if (m.rope) {
    // Rotary keys: rope(c·B_k) rebuilt, or kept; values c·B_v.
    if (!f->keysKept) {
      Value kr =
          toHeads(e, matmulByConstant(e, f->k.latent, f->k.up, f->k.rank, k.n),
                  k.expand, k.heads, k.headDim);
      auto rope = cast<RopeOp>(b.clone(*m.rope));
      rope.getXMutable().assign(kr);
      op.getKMutable().assign(rope.getResult());
    } else if (f->rotary) {
      // [rope(x·W_k's rotated columns) | c·B_k] along the head dim.
      int64_t r = f->rotary, nope = k.headDim - f->rotary;
      Value kr = toHeads(
          e, matmulByConstant(e, k.x, f->rotaryColumns, k.d, k.heads * r),
          k.expand, k.heads, r);
      auto rope = cast<RopeOp>(b.clone(*m.rope));
      rope.getXMutable().assign(kr);
      rope.getResult().setType(cast<RankedTensorType>(kr.getType()));
      Value kn = toHeads(
          e,
          matmulByConstant(e, f->k.latent, f->k.up, f->k.rank, k.heads * nope),
          k.expand, k.heads, nope);
      op.getKMutable().assign(tensor::ConcatOp::create(
          b, op.getLoc(), /*dim=*/3, ValueRange{rope.getResult(), kn}));
    }
    Value vr =
        toHeads(e, matmulByConstant(e, f->v.latent, f->v.up, f->v.rank, v.n),
                v.expand, v.heads, v.headDim);
    op.getVMutable().assign(vr);
  } else {
    // Absorbed, as MLA absorbs: q_lat = q·B_kᵀ per head (folded into W_q
    // when q is a constant projection), multi-query attention over the
    // latent, out = o_lat·B_v per head (folded into W_o when the output
    // projection is a constant one).
    Value q = op.getQ();
    int64_t hq = cast<ShapedType>(q.getType()).getDimSize(2);
    int64_t rk = f->k.rank, rv = f->v.rank;
    Value qLat;
    std::optional<Projection> qp = matchProjection(q);
    // Folded weights only where they fit f32 (else per-head products).
    std::vector<double> wq;
    if (qp && qp->heads == hq && qp->headDim == k.headDim)
      wq = absorbIntoColumns(qp->w, qp->d, f->k.up, rk, k.heads, k.headDim, hq);
    if (!wq.empty() && fitsF32(wq)) {
      qLat = toHeads(e, matmulByConstant(e, qp->x, wq, qp->d, hq * rk),
                     qp->expand, hq, rk);
    } else {
      qp.reset();
      Value bk = constantMatrix(b, op.getLoc(), {hq, k.headDim, rk},
                                perQueryHead(f->k.up, rk, k.heads, k.headDim,
                                             hq, /*transpose=*/true));
      qLat = e.contract(
          q, bk, dims(ctx, 5, {0, 1, 2, 4}), dims(ctx, 5, {2, 4, 3}),
          dims(ctx, 5, {0, 1, 2, 3}),
          {e.dim(q, 0), e.dim(q, 1), b.getIndexAttr(hq), b.getIndexAttr(rk)});
    }
    Value keys = toHeads(e, f->k.latent, k.expand, 1, rk);
    Value values = f->v.latent == f->k.latent
                       ? keys
                       : toHeads(e, f->v.latent, v.expand, 1, rv);
    Value init = e.empty(
        {e.dim(q, 0), e.dim(q, 1), b.getIndexAttr(hq), b.getIndexAttr(rv)},
        b.getF32Type());
    auto lat = cast<AttentionOp>(b.clone(*op));
    lat.getQMutable().assign(qLat);
    lat.getKMutable().assign(keys);
    lat.getVMutable().assign(values);
    lat.getInitMutable().assign(init);
    lat.getResult().setType(cast<RankedTensorType>(init.getType()));
    // The scores are unchanged; their default scale was 1/sqrt(Dk).
    if (!lat.getScale())
      lat.setScaleAttr(b.getF64FloatAttr(1.0 / std::sqrt(double(k.headDim))));
    tensor::CollapseShapeOp col;
    std::vector<double> wo;
    linalg::MatmulOp mo = outputProjection(op.getResult(), col, wo);
    std::vector<double> woFolded;
    int64_t cols = 0;
    if (mo) {
      cols = cast<ShapedType>(mo.getInputs()[1].getType()).getDimSize(1);
      woFolded = absorbIntoRows(wo, cols, f->v.up, rv, v.heads, v.headDim, hq);
      if (!fitsF32(woFolded))
        mo = {};
    }
    if (mo) {
      OpBuilder ob(mo);
      Value flat = tensor::CollapseShapeOp::create(
          ob, mo.getLoc(), lat.getResult(), {{0, 1}, {2, 3}});
      Value w = constantMatrix(ob, mo.getLoc(), {hq * rv, cols}, woFolded);
      Value out = linalg::MatmulOp::create(ob, mo.getLoc(), ValueRange{flat, w},
                                           ValueRange{mo.getOutputs()[0]})
                      .getResult(0);
      mo.getResult(0).replaceAllUsesWith(out);
      Operation *woDef = mo.getInputs()[1].getDefiningOp();
      mo->erase();
      col->erase();
      op->erase();
      eraseDead({woDef});
    } else {
      Value bv = constantMatrix(b, op.getLoc(), {hq, rv, v.headDim},
                                perQueryHead(f->v.up, rv, v.heads, v.headDim,
                                             hq, /*transpose=*/false));
      Value out = e.contract(lat.getResult(), bv, dims(ctx, 5, {0, 1, 2, 4}),
                             dims(ctx, 5, {2, 4, 3}),
                             dims(ctx, 5, {0, 1, 2, 3}), e.sizes(op.getInit()));
      out = e.castTo(out, op.getResult().getType());
      op.getResult().replaceAllUsesWith(out);
      op->erase();
    }
    if (qp)
      absorbedQuery = std::move(qp);
  }
  op = nullptr;
  mlir::emitRemark(e.loc) << "posenc-compress-kv: latent of " << f->latentWidth
                          << " floats per token instead of " << f->originalWidth
                          << " ("
                          << (f->rotary     ? "rotated key dims kept, rank "
                              : f->keysKept ? "rotary keys kept, values rank "
                                            : "rank ")
                          << (f->keysKept ? f->v.rank : f->latentWidth)
                          << "), dropped energy " << f->droppedEnergy;
  // One call for all chains: q may be k's or v's own projection.
  SmallVector<Operation *> chain = {m.rope};
  SmallVector<const Projection *> projections = {&k, &v};
  if (absorbedQuery)
    projections.push_back(&*absorbedQuery);
  for (const Projection *p : projections) {
    linalg::MatmulOp mm = p->matmul;
    tensor::ExpandShapeOp expand = p->expand;
    chain.append({expand, mm, mm.getOutputs()[0].getDefiningOp(),
                  mm.getInputs()[1].getDefiningOp()});
  }
  eraseDead(chain);
  return success();
}

void CompressKV::runOnOperation() {
  Operation *root = getOperation();
  // `layers` first: its message names the listed index.
  SmallVector<AttentionOp> ops;
  root->walk([&](AttentionOp op) { ops.push_back(op); });
  SmallVector<bool> listed(ops.size(), layers.empty());
  for (int64_t i : layers) {
    if (i < 0 || i >= int64_t(ops.size())) {
      mlir::emitError(root->getLoc(),
                      "posenc-compress-kv: layers lists attention #")
          << i << " but the input has " << ops.size()
          << " posenc.attention ops (numbered from 0 in walk order)";
      return signalPassFailure();
    }
    listed[i] = true;
  }
  if ((rank > 0) == (energy != 0) || rank < 0 ||
      (energy != 0 && !(energy > 0 && energy <= 1))) {
    mlir::emitError(root->getLoc(),
                    "posenc-compress-kv: set exactly one of rank=R (>= 1) or "
                    "energy=E (in (0, 1]); got rank=")
        << int64_t(rank) << ", energy=" << double(energy);
    return signalPassFailure();
  }
  if (factor != "joint" && factor != "separate") {
    mlir::emitError(root->getLoc(),
                    "posenc-compress-kv: factor must be joint or separate, "
                    "got '")
        << std::string(factor) << "'";
    return signalPassFailure();
  }
  if (rotary != "reconstruct" && rotary != "decoupled") {
    mlir::emitError(root->getLoc(),
                    "posenc-compress-kv: rotary must be reconstruct or "
                    "decoupled, got '")
        << std::string(rotary) << "'";
    return signalPassFailure();
  }
  if (factor == "separate" && rank == 1) {
    mlir::emitError(root->getLoc(),
                    "posenc-compress-kv: factor=separate splits the rank "
                    "between keys and values: rank must be >= 2, got 1");
    return signalPassFailure();
  }
  for (auto [i, op] : llvm::enumerate(ops)) {
    if (!listed[i])
      continue;
    std::string why;
    FailureOr<Match> m = matchAttention(op, why);
    if (failed(m)) {
      if (layers.empty())
        continue;
      op.emitError("posenc-compress-kv: attention #")
          << i << " cannot be compressed: " << why;
      return signalPassFailure();
    }
    if (failed(compress(op, *m)))
      return signalPassFailure();
  }
}
} // namespace

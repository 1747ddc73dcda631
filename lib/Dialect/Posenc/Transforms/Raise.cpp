//===- Raise.cpp - posenc-raise -------------------------------------------===//
//
// Finds attention written in upstream dialects, as framework importers emit
// it (torch-mlir's TorchToLinalg, hand-written linalg): a contraction Q·Kᵀ,
// a scale, an added bias, a softmax over the keys (linalg.softmax or its
// max / exp / sum / div decomposition) and a contraction with V. Each link
// is checked structurally (indexing maps, payload, zero and -inf inits), so
// only that computation is raised; the result is posenc.attention, whose
// lowerings never build the [..., Sq, Sk] scores. RoPE in its three
// framework forms (rotate_half, GPT-J's rotate_every_two, Meta's pairs)
// becomes posenc.rope when its cos/sin tables are checked to be rope tables.
//
//===----------------------------------------------------------------------===//

#include "posenc/Dialect/Posenc/Transforms/Passes.h"

#include "posenc/Dialect/Posenc/IR/PosencOps.h"
#include "posenc/Dialect/Posenc/IR/RopeFrequencies.h"
#include "posenc/Dialect/Posenc/Utils/LinalgBuilder.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Linalg/IR/Linalg.h"
#include "mlir/Dialect/Math/IR/Math.h"
#include "mlir/Dialect/Tensor/IR/Tensor.h"
#include "mlir/Dialect/Utils/IndexingUtils.h"
#include "mlir/IR/Matchers.h"
#include "mlir/IR/PatternMatch.h"
#include "mlir/Transforms/GreedyPatternRewriteDriver.h"

#include <cmath>

namespace mlir::posenc {
#define GEN_PASS_DEF_POSENCRAISEPASS
#include "posenc/Dialect/Posenc/Transforms/Passes.h.inc"
} // namespace mlir::posenc

using namespace mlir;
using namespace mlir::posenc;

namespace {
/// A value of an elementwise chain: a tensor (`op` null), or a scalar of
/// the payload of the elementwise linalg op `op`.
struct Node {
  Value value;
  linalg::LinalgOp op;
};

/// An elementwise map on tensors: every loop parallel, one result written
/// through the identity map, no linalg.index. Its inputs may be broadcast
/// (linalg.broadcast and linalg.transpose are such maps too).
bool isElementwise(linalg::LinalgOp op) {
  return op && op.hasPureTensorSemantics() && op.getNumDpsInits() == 1 &&
         op->getNumResults() == 1 &&
         op.getNumParallelLoops() == op.getNumLoops() &&
         op.getMatchingIndexingMap(op.getDpsInitOperand(0)).isIdentity() &&
         !op.hasIndexSemantics();
}

/// The operand a payload argument of `n.op` reads, or null.
OpOperand *operandOf(Node n) {
  auto arg = dyn_cast<BlockArgument>(n.value);
  if (!n.op || !arg || arg.getOwner() != n.op.getBlock())
    return nullptr;
  return n.op.getMatchingOpOperand(arg);
}

/// Follows payload arguments read whole (identity map) to their tensors.
Node throughIdentityReads(Node n) {
  while (OpOperand *operand = operandOf(n)) {
    if (!n.op.getMatchingIndexingMap(operand).isIdentity())
      return n;
    n = {operand->get(), {}};
  }
  return n;
}

/// The tensor `n` stands for when it is one read whole, else null.
Value tensorOf(Node n) {
  n = throughIdentityReads(n);
  return n.op ? Value() : n.value;
}

/// Follows `n` to the operation computing it: into the payload of the
/// elementwise op producing a tensor, out through whole reads.
Node resolve(Node n) {
  while (true) {
    n = throughIdentityReads(n);
    if (n.op)
      return n;
    auto producer = n.value.getDefiningOp<linalg::LinalgOp>();
    if (!isElementwise(producer))
      return n;
    n = {producer.getBlock()->getTerminator()->getOperand(0), producer};
  }
}

/// The operands of `n` when it is computed by `OpTy` in a payload.
template <typename OpTy> std::optional<SmallVector<Node>> match(Node n) {
  n = resolve(n);
  if (!n.op)
    return std::nullopt;
  auto op = n.value.getDefiningOp<OpTy>();
  if (!op || op->getBlock() != n.op.getBlock())
    return std::nullopt;
  SmallVector<Node> operands;
  for (Value v : op->getOperands())
    operands.push_back({v, n.op});
  return operands;
}

/// A float splat: a scalar constant, or a tensor of one constant value
/// (arith.constant splat or linalg.fill), read in any way.
std::optional<double> constantOf(Value v) {
  FloatAttr scalar;
  if (matchPattern(v, m_Constant(&scalar)))
    return scalar.getValueAsDouble();
  SplatElementsAttr splat;
  if (matchPattern(v, m_Constant(&splat)) &&
      isa<FloatType>(splat.getElementType()))
    return splat.getSplatValue<APFloat>().convertToDouble();
  if (auto fill = v.getDefiningOp<linalg::FillOp>())
    return constantOf(fill.getInputs()[0]);
  return std::nullopt;
}

std::optional<double> constantOf(Node n) {
  if (OpOperand *operand = operandOf(n))
    return constantOf(operand->get());
  return constantOf(n.value);
}

/// Whether `map` over `rank` loops reads a row of the scores: every loop
/// but the last, in order, then nothing or a constant 0 (keepdim).
bool isRowMap(AffineMap map, int64_t rank) {
  if (map.getNumDims() != rank)
    return false;
  ArrayRef<AffineExpr> results = map.getResults();
  if (results.size() != size_t(rank) && results.size() != size_t(rank - 1))
    return false;
  for (int64_t d = 0; d < rank - 1; ++d) {
    auto dim = dyn_cast<AffineDimExpr>(results[d]);
    if (!dim || dim.getPosition() != d)
      return false;
  }
  if (results.size() == size_t(rank)) {
    auto zero = dyn_cast<AffineConstantExpr>(results.back());
    if (!zero || zero.getValue() != 0)
      return false;
  }
  return true;
}

/// The per-row tensor that `n` broadcasts along the keys, or null.
Value rowOperand(Node n, int64_t rank) {
  n = resolve(n);
  OpOperand *operand = operandOf(n);
  if (!operand || !n.op.isDpsInput(operand) ||
      !isRowMap(n.op.getMatchingIndexingMap(operand), rank))
    return {};
  return operand->get();
}

/// `v` through tensor.expand_shape / collapse_shape ops that only add or
/// drop unit dims.
Value throughUnitReshapes(Value v) {
  auto unitOnly = [](RankedTensorType a, RankedTensorType b) {
    auto nonUnit = [](RankedTensorType t) {
      SmallVector<int64_t> dims;
      for (int64_t d : t.getShape())
        if (d != 1)
          dims.push_back(d);
      return dims;
    };
    return nonUnit(a) == nonUnit(b);
  };
  while (true) {
    Operation *op = v.getDefiningOp();
    if (!isa_and_nonnull<tensor::ExpandShapeOp, tensor::CollapseShapeOp>(op))
      return v;
    Value src = op->getOperand(0);
    if (!unitOnly(cast<RankedTensorType>(src.getType()),
                  cast<RankedTensorType>(v.getType())))
      return v;
    v = src;
  }
}

/// Whether `v` fills masked scores of `type`: -inf, or the lowest finite
/// value (Hugging Face's masks), whose exp underflows to 0 alike.
bool isMaskFill(double v, Type type) {
  auto f = dyn_cast<FloatType>(type);
  return f &&
         ((std::isinf(v) && v < 0) ||
          v == -APFloat::getLargest(f.getFloatSemantics()).convertToDouble());
}

enum class Combiner { max, sum };

/// The input of `row` = max or sum over the last dim (the keys) of a
/// tensor: one input read whole, a row-map init filled with -inf (max; the
/// lowest finite value too) or 0 (sum), payload max(in, out) or in + out.
Value reductionInput(Value row, Combiner kind, int64_t rank) {
  // A kept reduced dim may come from a reshape (TOSA's reduce ops).
  row = throughUnitReshapes(row);
  auto op = row.getDefiningOp<linalg::LinalgOp>();
  if (!op || !op.hasPureTensorSemantics() || op.getNumDpsInputs() != 1 ||
      op.getNumDpsInits() != 1 || op->getNumResults() != 1 ||
      op.getNumLoops() != unsigned(rank) || op.hasIndexSemantics())
    return {};
  SmallVector<utils::IteratorType> iters = op.getIteratorTypesArray();
  for (int64_t d = 0; d < rank; ++d)
    if ((iters[d] == utils::IteratorType::reduction) != (d == rank - 1))
      return {};
  OpOperand *in = op.getDpsInputOperand(0), *out = op.getDpsInitOperand(0);
  if (!op.getMatchingIndexingMap(in).isIdentity() ||
      !isRowMap(op.getMatchingIndexingMap(out), rank))
    return {};
  std::optional<double> init = constantOf(out->get());
  if (!init ||
      (kind == Combiner::max ? !isMaskFill(*init, getElementTypeOrSelf(row))
                             : *init != 0.0))
    return {};
  Block *body = op.getBlock();
  Operation *combine = body->getTerminator()->getOperand(0).getDefiningOp();
  bool rightOp =
      combine && combine->getBlock() == body &&
      (kind == Combiner::max ? isa<arith::MaximumFOp, arith::MaxNumFOp>(combine)
                             : isa<arith::AddFOp>(combine));
  if (!rightOp)
    return {};
  Value a = body->getArgument(0), b = body->getArgument(1);
  if (!((combine->getOperand(0) == a && combine->getOperand(1) == b) ||
        (combine->getOperand(0) == b && combine->getOperand(1) == a)))
    return {};
  return in->get();
}

/// The scores softmax normalizes into `p`, over its last dim: a
/// linalg.softmax, or exp(s - max(s)) / sum(exp(s - max(s))).
Value softmaxInput(Value p, int64_t rank) {
  if (auto softmax = p.getDefiningOp<linalg::SoftmaxOp>())
    return softmax.getDimension() == uint64_t(rank - 1) ? softmax.getInput()
                                                        : Value();
  // e / sum(e), or e · (1 / sum(e)) (TOSA's reciprocal).
  Value e, sum;
  if (std::optional<SmallVector<Node>> div = match<arith::DivFOp>({p, {}})) {
    e = tensorOf((*div)[0]);
    sum = rowOperand((*div)[1], rank);
  } else if (std::optional<SmallVector<Node>> mul =
                 match<arith::MulFOp>({p, {}})) {
    for (int side : {0, 1}) {
      Value recip = rowOperand((*mul)[1 - side], rank);
      std::optional<SmallVector<Node>> inv =
          recip ? match<arith::DivFOp>({recip, {}}) : std::nullopt;
      if (!inv || constantOf((*inv)[0]) != std::optional<double>(1.0))
        continue;
      e = tensorOf((*mul)[side]);
      sum = tensorOf((*inv)[1]);
      break;
    }
  }
  if (!e || !sum || reductionInput(sum, Combiner::sum, rank) != e)
    return {};
  std::optional<SmallVector<Node>> exp = match<math::ExpOp>({e, {}});
  if (!exp)
    return {};
  std::optional<SmallVector<Node>> sub = match<arith::SubFOp>((*exp)[0]);
  if (!sub)
    return {};
  Value s = tensorOf((*sub)[0]);
  Value max = rowOperand((*sub)[1], rank);
  if (!s || !max || reductionInput(max, Combiner::max, rank) != s)
    return {};
  return s;
}

/// A contraction out[batch..., i, j] = sum_r lhs · rhs from zero: the
/// operands' element type is the result's, each read through a
/// permutation of its loops. `order[0]` and `order[1]` list, for the
/// operand holding loop i and for the other one, the loops of its dims in
/// the order (batch..., i, r) and (batch..., j, r).
struct Contraction {
  linalg::LinalgOp op;
  Value rowOperand, colOperand;
  SmallVector<int64_t> rowPerm, colPerm;
};

bool isZeroFill(Value init) {
  std::optional<double> c = constantOf(init);
  return c && *c == 0.0;
}

/// The permutation taking `map`'s dims into `order` (as loops), if `map`
/// reads exactly those loops.
std::optional<SmallVector<int64_t>> permutationTo(AffineMap map,
                                                  ArrayRef<unsigned> order) {
  if (map.getNumResults() != order.size())
    return std::nullopt;
  SmallVector<int64_t> perm;
  for (unsigned loop : order) {
    std::optional<unsigned> pos =
        map.getResultPosition(getAffineDimExpr(loop, map.getContext()));
    if (!pos)
      return std::nullopt;
    perm.push_back(*pos);
  }
  return perm;
}

std::optional<Contraction> matchContraction(Value t) {
  auto op = t.getDefiningOp<linalg::LinalgOp>();
  if (!op || !op.hasPureTensorSemantics() || op.getNumDpsInputs() != 2 ||
      op.getNumDpsInits() != 1 || op->getNumResults() != 1 ||
      op.getNumReductionLoops() != 1 || op.hasIndexSemantics())
    return std::nullopt;
  Type elem = getElementTypeOrSelf(t);
  for (Value v : op->getOperands())
    if (getElementTypeOrSelf(v) != elem)
      return std::nullopt;
  // Payload out + a·b, in the element type.
  Block *body = op.getBlock();
  auto add =
      body->getTerminator()->getOperand(0).getDefiningOp<arith::AddFOp>();
  if (!add || add->getBlock() != body)
    return std::nullopt;
  Value out = body->getArgument(2);
  Value prod = add.getLhs() == out   ? add.getRhs()
               : add.getRhs() == out ? add.getLhs()
                                     : Value();
  auto mul = prod ? prod.getDefiningOp<arith::MulFOp>() : nullptr;
  if (!mul || mul->getBlock() != body ||
      !((mul.getLhs() == body->getArgument(0) &&
         mul.getRhs() == body->getArgument(1)) ||
        (mul.getLhs() == body->getArgument(1) &&
         mul.getRhs() == body->getArgument(0))))
    return std::nullopt;
  if (!isZeroFill(op.getDpsInits()[0]))
    return std::nullopt;

  // The result's dims are the parallel loops in order: (batch..., i, j).
  AffineMap outMap = op.getMatchingIndexingMap(op.getDpsInitOperand(0));
  unsigned rank = outMap.getNumResults();
  if (rank < 2 || rank > 4 || rank + 1 != op.getNumLoops())
    return std::nullopt;
  SmallVector<unsigned> outLoops;
  for (AffineExpr e : outMap.getResults()) {
    auto d = dyn_cast<AffineDimExpr>(e);
    if (!d || (!outLoops.empty() && d.getPosition() <= outLoops.back()))
      return std::nullopt;
    outLoops.push_back(d.getPosition());
  }
  unsigned red = 0;
  while (llvm::is_contained(outLoops, red))
    ++red;
  if (op.getIteratorTypesArray()[red] != utils::IteratorType::reduction)
    return std::nullopt;
  unsigned i = outLoops[rank - 2], j = outLoops[rank - 1];
  SmallVector<unsigned> rowOrder(outLoops.begin(), outLoops.end() - 2);
  SmallVector<unsigned> colOrder = rowOrder;
  rowOrder.append({i, red});
  colOrder.append({j, red});

  OpOperand *a = op.getDpsInputOperand(0), *b = op.getDpsInputOperand(1);
  if (!op.getMatchingIndexingMap(a).isFunctionOfDim(i))
    std::swap(a, b);
  std::optional<SmallVector<int64_t>> rowPerm =
      permutationTo(op.getMatchingIndexingMap(a), rowOrder);
  std::optional<SmallVector<int64_t>> colPerm =
      permutationTo(op.getMatchingIndexingMap(b), colOrder);
  if (!rowPerm || !colPerm)
    return std::nullopt;
  return Contraction{op, a->get(), b->get(), *rowPerm, *colPerm};
}

/// The scores before the softmax: (scale·c + bias), c a contraction; the
/// scale from multiplications and divisions by constants, the bias from
/// one addition of a tensor read right-aligned (numpy broadcasting).
struct Scores {
  Contraction qk;
  double scale = 1.0;
  Value bias;
  /// A boolean mask selecting between the scores and `maskFill` (-inf or
  /// the lowest value): the scores where it is `maskKeeps`.
  Value mask;
  bool maskKeeps = true;
  double maskFill = 0.0;
};

/// Whether a `rank`-loop elementwise op's `map` reads its operand as
/// numpy broadcasting to the loops would: the trailing loops in order,
/// a constant 0 where the operand's dim is 1.
bool isRightAligned(AffineMap map, ShapedType type, int64_t rank) {
  int64_t n = map.getNumResults();
  if (map.getNumDims() != rank || n > rank || type.getRank() != n)
    return false;
  for (int64_t t = 0; t < n; ++t) {
    AffineExpr e = map.getResult(t);
    if (auto d = dyn_cast<AffineDimExpr>(e)) {
      if (d.getPosition() != rank - n + t)
        return false;
    } else if (auto c = dyn_cast<AffineConstantExpr>(e)) {
      if (c.getValue() != 0 || type.getDimSize(t) != 1)
        return false;
    } else {
      return false;
    }
  }
  return true;
}

/// The tensor `n` adds to the scores, when it broadcasts as numpy does.
Value biasOperand(Node n, int64_t rank) {
  n = throughIdentityReads(n);
  if (!n.op)
    return n.value;
  OpOperand *operand = operandOf(n);
  auto type =
      operand ? dyn_cast<RankedTensorType>(operand->get().getType()) : nullptr;
  if (!type || !n.op.isDpsInput(operand) ||
      !isRightAligned(n.op.getMatchingIndexingMap(operand), type, rank))
    return {};
  return operand->get();
}

/// scale·c: multiplications and divisions of a contraction c by constants.
std::optional<Scores> matchScaled(Node n) {
  Scores scores;
  while (true) {
    if (std::optional<SmallVector<Node>> mul = match<arith::MulFOp>(n)) {
      std::optional<double> c0 = constantOf((*mul)[0]),
                            c1 = constantOf((*mul)[1]);
      if (!c0 && !c1)
        return std::nullopt;
      scores.scale *= c1 ? *c1 : *c0;
      n = c1 ? (*mul)[0] : (*mul)[1];
      continue;
    }
    if (std::optional<SmallVector<Node>> div = match<arith::DivFOp>(n)) {
      std::optional<double> c = constantOf((*div)[1]);
      if (!c)
        return std::nullopt;
      scores.scale /= *c;
      n = (*div)[0];
      continue;
    }
    break;
  }
  Value c = tensorOf(resolve(n));
  std::optional<Contraction> qk = c ? matchContraction(c) : std::nullopt;
  if (!qk)
    return std::nullopt;
  scores.qk = *qk;
  return scores;
}

/// The scores `s`: scale·c, or scale·c + bias in either operand order.
std::optional<Scores> matchScores(Value s, int64_t rank) {
  std::optional<Scores> scores;
  Type elem = getElementTypeOrSelf(s);
  if (std::optional<SmallVector<Node>> sel = match<arith::SelectOp>({s, {}})) {
    // select(mask, scores, fill) or select(mask, fill, scores) (torch's
    // where and masked_fill), the mask a boolean tensor read as numpy
    // broadcasting would.
    Value mask = biasOperand((*sel)[0], rank);
    for (bool keeps : {true, false}) {
      Node kept = (*sel)[keeps ? 1 : 2], fill = (*sel)[keeps ? 2 : 1];
      std::optional<double> c = constantOf(fill);
      if (!mask || !getElementTypeOrSelf(mask).isInteger(1) || !c ||
          !isMaskFill(*c, elem))
        continue;
      if ((scores = matchScaled(kept))) {
        scores->mask = mask;
        scores->maskKeeps = keeps;
        scores->maskFill = *c;
        break;
      }
    }
  } else if (std::optional<SmallVector<Node>> add =
                 match<arith::AddFOp>({s, {}})) {
    for (int side : {0, 1}) {
      Value bias = biasOperand((*add)[1 - side], rank);
      if (bias && (scores = matchScaled((*add)[side]))) {
        scores->bias = bias;
        break;
      }
    }
  } else {
    scores = matchScaled({s, {}});
  }
  if (!scores || scores->qk.op->getResult(0).getType() != s.getType())
    return std::nullopt;
  return scores;
}

/// Reads `t` through `perm` from before the linalg.transposes producing it
/// (importers transpose K before Q·Kᵀ; the raised op transposes anyway).
void throughTransposes(Value &t, SmallVector<int64_t> &perm) {
  while (auto transpose = t.getDefiningOp<linalg::TransposeOp>()) {
    if (!transpose.hasPureTensorSemantics())
      return;
    ArrayRef<int64_t> p = transpose.getPermutation();
    for (int64_t &d : perm)
      d = p[d];
    t = transpose.getInput();
  }
}

/// linalg.transpose of `t` by `perm` (none for the identity).
Value transpose(LinalgBuilder &e, Value t, ArrayRef<int64_t> perm) {
  // Transposes of transposes are one (importers transpose to [B, H, S, D],
  // posenc's layout is [B, S, H, D]).
  SmallVector<int64_t> composed(perm);
  throughTransposes(t, composed);
  perm = composed;
  if (isIdentityPermutation(perm))
    return t;
  SmallVector<OpFoldResult> sizes = e.sizes(t), permuted;
  for (int64_t p : perm)
    permuted.push_back(sizes[p]);
  Value init = e.empty(permuted, getElementTypeOrSelf(t));
  return linalg::TransposeOp::create(e.b, e.loc, t, init, perm)->getResult(0);
}

/// Groups folding [batch..., S, D] with fewer than 2 batch dims into
/// posenc's [B, S, H, D]: [N, S, D] as [N, S, 1, D] (N the batch, so the
/// head count stays static), [S, D] as [1, S, 1, D]; and the unit dims.
SmallVector<ReassociationIndices> groupsToRank4(int64_t batch) {
  if (batch == 1)
    return {{0}, {1, 2}, {3}};
  return {{0, 1, 2}, {3}};
}
SmallVector<int64_t> unitDimsOfRank4(int64_t batch) {
  if (batch == 1)
    return {2};
  return {0, 2};
}

/// `t` with the unit dims `units` inserted (tensor.expand_shape by
/// `groups`).
Value expandUnitDims(LinalgBuilder &e, Value t,
                     ArrayRef<ReassociationIndices> groups,
                     ArrayRef<int64_t> units) {
  SmallVector<OpFoldResult> from = e.sizes(t), sizes;
  SmallVector<int64_t> shape;
  int64_t next = 0;
  for (int64_t d = 0, n = from.size() + units.size(); d < n; ++d) {
    OpFoldResult size = llvm::is_contained(units, d)
                            ? OpFoldResult(e.b.getIndexAttr(1))
                            : from[next++];
    sizes.push_back(size);
    std::optional<int64_t> c = getConstantIntValue(size);
    shape.push_back(c ? *c : ShapedType::kDynamic);
  }
  auto type = RankedTensorType::get(shape, getElementTypeOrSelf(t));
  return tensor::ExpandShapeOp::create(e.b, e.loc, type, t, groups, sizes);
}

/// [batch..., S, D] read through `perm` as posenc's [B, S, H, D].
Value toAttentionLayout(LinalgBuilder &e, Value t, ArrayRef<int64_t> perm,
                        int64_t batch) {
  if (batch == 2) {
    // [B, H, S, D] -> [B, S, H, D] in one transpose.
    SmallVector<int64_t> p = {perm[0], perm[2], perm[1], perm[3]};
    return transpose(e, t, p);
  }
  return expandUnitDims(e, transpose(e, t, perm), groupsToRank4(batch),
                        unitDimsOfRank4(batch));
}

/// Whether the constant `t` of [1..., Sq, Sk] (Sq, Sk those of `scores`)
/// marks exactly the keys after their query, bottom-right aligned
/// (j > i + Sk - Sq): `masked(n)` says whether element n marks one.
template <typename T>
bool isCausalPattern(Value t, ShapedType scores,
                     function_ref<std::optional<bool>(T)> masked) {
  ElementsAttr values;
  auto type = dyn_cast<RankedTensorType>(t.getType());
  if (!type || type.getRank() < 2 || !type.hasStaticShape() ||
      !matchPattern(t, m_Constant(&values)))
    return false;
  ArrayRef<int64_t> shape = type.getShape();
  for (int64_t d : shape.drop_back(2))
    if (d != 1)
      return false;
  int64_t sq = shape[shape.size() - 2], sk = shape.back();
  if (sq == 0 || sk == 0 ||
      scores.getShape().take_back(2) != ArrayRef<int64_t>{sq, sk})
    return false;
  auto range = values.tryGetValues<T>();
  if (!range)
    return false;
  int64_t n = 0;
  for (T x : *range) {
    int64_t i = n / sk, j = n % sk;
    if (masked(x) != std::optional<bool>(j > i + sk - sq))
      return false;
    ++n;
  }
  return true;
}

/// With Sq > Sk the first Sq - Sk rows see no key. A -inf fill makes them
/// NaN, which the raised op's mask rule turns to 0 (as documented); the
/// lowest finite value makes them a uniform average, which `causal` would
/// not be. So such a fill is causal only when no row is empty.
bool noEmptyRowsOrInfFill(Value fillSource, ShapedType scores,
                          std::optional<double> fill = std::nullopt) {
  int64_t sq = scores.getDimSize(scores.getRank() - 2),
          sk = scores.getDimSize(scores.getRank() - 1);
  if (!ShapedType::isDynamic(sq) && !ShapedType::isDynamic(sk) && sq <= sk)
    return true;
  if (fill)
    return std::isinf(*fill);
  // A float mask: every masked entry must be -inf.
  DenseFPElementsAttr values;
  if (!matchPattern(fillSource, m_Constant(&values)))
    return false;
  return llvm::all_of(values.getValues<APFloat>(), [](const APFloat &x) {
    return x.isZero() || (x.isInfinity() && x.isNegative());
  });
}

/// Whether `bias` is a constant causal mask: -inf (or the lowest finite
/// value, as Hugging Face masks are) where masked, 0 elsewhere. Such a
/// mask is posenc.attention's `causal`.
bool isCausalMask(Value bias, ShapedType scores) {
  Type elem = getElementTypeOrSelf(bias);
  if (!isa<FloatType>(elem) || !noEmptyRowsOrInfFill(bias, scores))
    return false;
  return isCausalPattern<APFloat>(bias, scores,
                                  [&](APFloat x) -> std::optional<bool> {
                                    double v = x.convertToDouble();
                                    if (v == 0.0)
                                      return false;
                                    if (isMaskFill(v, elem))
                                      return true;
                                    return std::nullopt;
                                  });
}

/// Whether the boolean `mask` is causal: false where masked when it
/// `keeps` the scores where true, true where masked otherwise.
bool isCausalBoolMask(Value mask, ShapedType scores, bool keeps) {
  return isCausalPattern<bool>(
      mask, scores, [&](bool x) { return std::optional<bool>(x != keeps); });
}

/// [B, Hkv, S, D] when `t` = [B, Hkv·G, S, D] repeats each kv head G times
/// in a row (Hugging Face's repeat_kv: unsqueeze, expand, reshape), with G.
std::optional<std::pair<Value, int64_t>> unrepeatedHeads(PatternRewriter &rw,
                                                         Value t) {
  auto collapse = t.getDefiningOp<tensor::CollapseShapeOp>();
  if (!collapse || collapse.getReassociationIndices() !=
                       SmallVector<ReassociationIndices>{{0}, {1, 2}, {3}, {4}})
    return std::nullopt;
  auto expand = collapse.getSrc().getDefiningOp<linalg::LinalgOp>();
  if (!isElementwise(expand) || expand.getNumDpsInputs() != 1)
    return std::nullopt;
  OpOperand *in = expand.getDpsInputOperand(0);
  if (expand.getBlock()->getTerminator()->getOperand(0) !=
      expand.getMatchingBlockArgument(in))
    return std::nullopt;
  auto xType = cast<RankedTensorType>(collapse.getSrc().getType());
  if (xType.isDynamicDim(2))
    return std::nullopt;
  // The input read without the repeat dim, or at 0 of a unit dim.
  MLIRContext *ctx = rw.getContext();
  auto d = [&](unsigned x) { return getAffineDimExpr(x, ctx); };
  AffineMap map = expand.getMatchingIndexingMap(in);
  Value y = in->get();
  if (map == AffineMap::get(5, 0, {d(0), d(1), d(3), d(4)}, ctx))
    return std::make_pair(y, xType.getDimSize(2));
  auto yType = cast<RankedTensorType>(y.getType());
  if (map != AffineMap::get(
                 5, 0, {d(0), d(1), getAffineConstantExpr(0, ctx), d(3), d(4)},
                 ctx) ||
      yType.getDimSize(2) != 1)
    return std::nullopt;
  if (auto unsqueeze = y.getDefiningOp<tensor::ExpandShapeOp>())
    if (unsqueeze.getReassociationIndices() ==
        SmallVector<ReassociationIndices>{{0}, {1, 2}, {3}, {4}})
      return std::make_pair(unsqueeze.getSrc(), xType.getDimSize(2));
  rw.setInsertionPoint(collapse);
  Value squeezed = tensor::CollapseShapeOp::create(
      rw, collapse.getLoc(), y,
      SmallVector<ReassociationIndices>{{0}, {1, 2}, {3}, {4}});
  return std::make_pair(squeezed, xType.getDimSize(2));
}

/// softmax(scale·Q·Kᵀ + bias)·V, rooted at the contraction with V.
struct RaiseAttention : OpInterfaceRewritePattern<linalg::LinalgOp> {
  using OpInterfaceRewritePattern::OpInterfaceRewritePattern;

  LogicalResult matchAndRewrite(linalg::LinalgOp root,
                                PatternRewriter &rewriter) const override {
    if (root->getNumResults() != 1)
      return failure();
    Value o = root->getResult(0);
    std::optional<Contraction> pv = matchContraction(o);
    if (!pv)
      return failure();
    auto oType = cast<RankedTensorType>(o.getType());
    Type elem = oType.getElementType();
    if (!elem.isF32() && !elem.isF64())
      return rewriter.notifyMatchFailure(root, "posenc-raise: scores in f32 "
                                               "or f64 only");
    int64_t rank = oType.getRank(), batch = rank - 2;

    // P is read as [batch..., i, r]: the softmax's own layout.
    if (!isIdentityPermutation(pv->rowPerm))
      return failure();
    Value s = softmaxInput(pv->rowOperand, rank);
    if (!s)
      return failure();
    std::optional<Scores> scores = matchScores(s, rank);
    if (!scores)
      return failure();
    // posenc.attention's lowerings do not take empty head dims (Dk or
    // Dv of 0); such a program runs as it is.
    auto qType = cast<ShapedType>(scores->qk.rowOperand.getType());
    if (oType.getDimSize(rank - 1) == 0 ||
        qType.getDimSize(scores->qk.rowPerm.back()) == 0)
      return failure();
    double scale = scores->scale;
    if (!std::isfinite(scale) || scale <= 0.0 ||
        (elem.isF32() && (!std::isfinite(float(scale)) || float(scale) == 0)))
      return rewriter.notifyMatchFailure(root, "posenc-raise: the scale is "
                                               "not positive and finite");

    Location loc = root.getLoc();
    // V is the column operand of P·V: [batch..., d, r] -> [batch..., r, d].
    SmallVector<int64_t> vPerm(pv->colPerm);
    std::swap(vPerm[batch], vPerm[batch + 1]);
    Value qIn = scores->qk.rowOperand, kIn = scores->qk.colOperand,
          vIn = pv->colOperand;
    SmallVector<int64_t> qPerm(scores->qk.rowPerm), kPerm(scores->qk.colPerm);
    throughTransposes(qIn, qPerm);
    throughTransposes(kIn, kPerm);
    throughTransposes(vIn, vPerm);
    // GQA: K and V repeated per query head are read unrepeated (posenc's
    // query head h reads kv head h / G, as repeat_kv lays them out).
    if (batch == 2 && kPerm[0] == 0 && kPerm[1] == 1 && vPerm[0] == 0 &&
        vPerm[1] == 1) {
      std::optional<std::pair<Value, int64_t>> k0 =
          unrepeatedHeads(rewriter, kIn);
      std::optional<std::pair<Value, int64_t>> v0 =
          unrepeatedHeads(rewriter, vIn);
      if (k0 && v0 && k0->second == v0->second) {
        kIn = k0->first;
        vIn = v0->first;
      }
    }
    auto sType = cast<ShapedType>(s.getType());
    Value bias = scores->bias;
    bool causal = bias && isCausalMask(bias, sType);
    if (causal)
      bias = Value();
    Value mask = scores->mask;
    if (mask && isCausalBoolMask(mask, sType, scores->maskKeeps) &&
        noEmptyRowsOrInfFill(mask, sType, scores->maskFill)) {
      causal = true;
      mask = Value();
    }
    rewriter.setInsertionPoint(root);
    LinalgBuilder e{rewriter, loc, elem};
    if (mask) {
      // The mask as an additive bias of its own (broadcast) shape: 0 where
      // the scores are kept, the fill elsewhere.
      auto maskType = cast<RankedTensorType>(mask.getType());
      AffineMap id = rewriter.getMultiDimIdentityMap(maskType.getRank());
      bool keeps = scores->maskKeeps;
      double fill = scores->maskFill;
      bias = e.generic(
          maskType.clone(elem), {mask}, e.empty(e.sizes(mask), elem), {id, id},
          SmallVector<utils::IteratorType>(maskType.getRank(),
                                           utils::IteratorType::parallel),
          [&](OpBuilder &b, Location l, ValueRange args) {
            LinalgBuilder n = e.nested(b, l);
            Value zero = n.cCompute(0.0), masked = n.cCompute(fill);
            linalg::YieldOp::create(b, l,
                                    n.select(args[0], keeps ? zero : masked,
                                             keeps ? masked : zero));
          });
    }
    // With one batch dim N (posenc's B), a [N, Sq, Sk] bias is
    // [N, 1, Sq, Sk] to posenc's right-aligned broadcasting.
    if (bias && batch == 1 && cast<ShapedType>(bias.getType()).getRank() == 3)
      bias = expandUnitDims(e, bias, {{0, 1}, {2}, {3}}, {1});
    Value q = toAttentionLayout(e, qIn, qPerm, batch);
    Value k = toAttentionLayout(e, kIn, kPerm, batch);
    Value v = toAttentionLayout(e, vIn, vPerm, batch);
    Value init =
        e.empty({e.dim(q, 0), e.dim(q, 1), e.dim(q, 2), e.dim(v, 3)}, elem);
    Value out =
        AttentionOp::create(rewriter, loc, q, k, v, bias, /*sinks=*/Value(),
                            /*diagonal=*/Value(), /*offsets=*/ValueRange(),
                            init, rewriter.getF64FloatAttr(scale),
                            causal ? rewriter.getUnitAttr() : UnitAttr(),
                            /*window=*/IntegerAttr(), /*chunk=*/IntegerAttr(),
                            /*softcap=*/FloatAttr())
            .getResult();
    // [B, Sq, H, Dv] -> [batch..., Sq, Dv].
    if (batch == 2)
      out = transpose(e, out, {0, 2, 1, 3});
    else
      out = tensor::CollapseShapeOp::create(rewriter, loc, out,
                                            groupsToRank4(batch));
    rewriter.replaceOp(root, e.castTo(out, oType));
    return success();
  }
};

//===----------------------------------------------------------------------===//
// RoPE: x·cos + rotate_half(x)·sin
//===----------------------------------------------------------------------===//

/// The input of `v`'s producer when it only copies one input (a broadcast,
/// linalg.broadcast, or a copy), else null.
Value copiedInput(Value v) {
  auto op = v.getDefiningOp<linalg::LinalgOp>();
  if (!isElementwise(op) || op.getNumDpsInputs() != 1)
    return {};
  OpOperand *in = op.getDpsInputOperand(0);
  if (op.getBlock()->getTerminator()->getOperand(0) !=
      op.getMatchingBlockArgument(in))
    return {};
  return in->get();
}

/// How a consumer reads a tensor: for each of its dims, an expression of
/// the consumer's loops.
using Reads = SmallVector<AffineExpr>;

Reads composeReads(AffineMap map, ArrayRef<AffineExpr> loopReads) {
  Reads out;
  for (AffineExpr e : map.getResults())
    out.push_back(e.replaceDimsAndSymbols(loopReads, {}));
  return out;
}

/// `t` read at `reads`, followed back through unit reshapes, transposes
/// and one-input copies (broadcasts; with `sitofp` also an arith.sitofp
/// payload, where it stops at the integer tensor), the reads composed:
/// the tensor reached and how it is read.
std::pair<Value, Reads> traceReads(Value t, Reads reads, bool sitofp) {
  while (true) {
    Operation *def = t.getDefiningOp();
    if (isa_and_nonnull<tensor::ExpandShapeOp, tensor::CollapseShapeOp>(def)) {
      Value src = def->getOperand(0);
      auto st = cast<RankedTensorType>(src.getType());
      auto tt = cast<RankedTensorType>(t.getType());
      if (throughUnitReshapes(t) == t || !st.hasStaticShape() ||
          !tt.hasStaticShape())
        break;
      // The non-unit dims pair up in order; unit source dims read 0.
      Reads srcReads;
      int64_t k = 0;
      for (int64_t j = 0; j < st.getRank(); ++j) {
        if (st.getDimSize(j) == 1) {
          srcReads.push_back(getAffineConstantExpr(0, t.getContext()));
          continue;
        }
        while (k < tt.getRank() && tt.getDimSize(k) == 1)
          ++k;
        if (k == tt.getRank())
          return {t, reads};
        srcReads.push_back(reads[k++]);
      }
      t = src;
      reads = srcReads;
      continue;
    }
    auto op = dyn_cast_or_null<linalg::LinalgOp>(def);
    if (!isElementwise(op) || op.getNumDpsInputs() != 1)
      break;
    OpOperand *in = op.getDpsInputOperand(0);
    Value y = op.getBlock()->getTerminator()->getOperand(0);
    BlockArgument arg = op.getMatchingBlockArgument(in);
    auto conv = y.getDefiningOp<arith::SIToFPOp>();
    bool converts = sitofp && conv && conv->getBlock() == op.getBlock() &&
                    conv.getIn() == arg;
    if (y != arg && !converts)
      break;
    reads = composeReads(op.getMatchingIndexingMap(in), reads);
    t = in->get();
    if (converts)
      break;
  }
  return {t, reads};
}

/// Whether the non-unit dims of `t`, in order, are read exactly along
/// `loops` (static shape; unit dims read anyhow).
bool readAlong(Value t, ArrayRef<AffineExpr> reads,
               ArrayRef<AffineExpr> loops) {
  auto type = cast<RankedTensorType>(t.getType());
  if (!type.hasStaticShape() || int64_t(reads.size()) != type.getRank())
    return false;
  size_t k = 0;
  for (int64_t j = 0; j < type.getRank(); ++j) {
    if (type.getDimSize(j) == 1)
      continue;
    if (k == loops.size() || reads[j] != loops[k])
      return false;
    ++k;
  }
  return k == loops.size();
}

/// Angles F[..., s, i] = pos[..., s]·ω_i: the positions and ω.
struct Angles {
  Value pos;
  SmallVector<double> omega;
};

/// ω and the positions of F = pos ⊗ ω from the two factors of its
/// product, each read at `reads` (in F's loops): ω a constant of `half`
/// values along F's last loop, the positions an integer tensor converted
/// by arith.sitofp, read along `posLoops`.
std::optional<Angles> anglesOf(Value w, Reads wReads, Value p, Reads pReads,
                               ArrayRef<AffineExpr> freqLoops,
                               ArrayRef<AffineExpr> posLoops, int64_t half) {
  auto [wSrc, wAt] = traceReads(w, wReads, false);
  auto [pSrc, pAt] = traceReads(p, pReads, true);
  DenseFPElementsAttr values;
  if (!matchPattern(wSrc, m_Constant(&values)) ||
      values.getNumElements() != half || !readAlong(wSrc, wAt, freqLoops))
    return std::nullopt;
  // The positions: what the sitofp converted (traceReads stops there).
  auto pType = dyn_cast<RankedTensorType>(pSrc.getType());
  if (!pType ||
      !(pType.getElementType().isInteger(32) ||
        pType.getElementType().isInteger(64)) ||
      !readAlong(pSrc, pAt, posLoops))
    return std::nullopt;
  Angles angles{pSrc, {}};
  for (APFloat x : values.getValues<APFloat>())
    angles.omega.push_back(x.convertToDouble());
  return angles;
}

/// F: [..., S, R/2] as importers build it: an outer product of positions
/// and a constant ω as a contraction over a unit dim (Hugging Face's
/// inv_freq @ position_ids, transposed after), or an elementwise product.
/// Each factor's reads are composed from F back to its source, so ω must
/// lie along F's last dim and the positions along its batch (dim 0, when
/// not unit) and sequence (dim rank - 2) dims.
std::optional<Angles> matchAngles(Value f, int64_t half) {
  auto fType = cast<RankedTensorType>(f.getType());
  int64_t rank = fType.getRank();
  if (rank < 2 || !fType.hasStaticShape())
    return std::nullopt;
  MLIRContext *ctx = f.getContext();
  SmallVector<AffineExpr> posLoops;
  for (int64_t d = 0; d + 2 < rank; ++d) {
    if (fType.getDimSize(d) == 1)
      continue;
    if (d != 0)
      return std::nullopt;
    posLoops.push_back(getAffineDimExpr(0, ctx));
  }
  // Dims of one element are read anyhow.
  if (fType.getDimSize(rank - 2) != 1)
    posLoops.push_back(getAffineDimExpr(rank - 2, ctx));
  SmallVector<AffineExpr> freqLoops;
  if (half != 1)
    freqLoops.push_back(getAffineDimExpr(rank - 1, ctx));
  Reads fReads;
  for (int64_t d = 0; d < rank; ++d)
    fReads.push_back(getAffineDimExpr(d, ctx));
  auto [g, gReads] = traceReads(f, fReads, false);
  auto tryBoth = [&](Value a, Reads aReads, Value b,
                     Reads bReads) -> std::optional<Angles> {
    if (auto angles = anglesOf(a, aReads, b, bReads, freqLoops, posLoops, half))
      return angles;
    return anglesOf(b, bReads, a, aReads, freqLoops, posLoops, half);
  };
  if (std::optional<Contraction> c = matchContraction(g)) {
    // The contraction's loops in F's: its result dims as g is read, its
    // reduction (of one element) at 0.
    linalg::LinalgOp op = c->op;
    SmallVector<int64_t> ranges = op.getStaticLoopRanges();
    Reads loopReads(op.getNumLoops(), getAffineConstantExpr(0, ctx));
    AffineMap outMap = op.getMatchingIndexingMap(op.getDpsInitOperand(0));
    for (auto [k, e] : llvm::enumerate(outMap.getResults()))
      loopReads[cast<AffineDimExpr>(e).getPosition()] = gReads[k];
    for (auto [loop, it] : llvm::enumerate(op.getIteratorTypesArray()))
      if (it == utils::IteratorType::reduction && ranges[loop] != 1)
        return std::nullopt;
    OpOperand *a = op.getDpsInputOperand(0), *b = op.getDpsInputOperand(1);
    return tryBoth(
        a->get(), composeReads(op.getMatchingIndexingMap(a), loopReads),
        b->get(), composeReads(op.getMatchingIndexingMap(b), loopReads));
  }
  // An elementwise product of two inputs (a generic or linalg.mul).
  auto op = g.getDefiningOp<linalg::LinalgOp>();
  if (!isElementwise(op) || op.getNumDpsInputs() != 2)
    return std::nullopt;
  auto mul = op.getBlock()
                 ->getTerminator()
                 ->getOperand(0)
                 .getDefiningOp<arith::MulFOp>();
  OpOperand *a = op.getDpsInputOperand(0), *b = op.getDpsInputOperand(1);
  Value argA = op.getMatchingBlockArgument(a),
        argB = op.getMatchingBlockArgument(b);
  if (!mul || mul->getBlock() != op.getBlock() ||
      !((mul.getLhs() == argA && mul.getRhs() == argB) ||
        (mul.getLhs() == argB && mul.getRhs() == argA)))
    return std::nullopt;
  return tryBoth(a->get(), composeReads(op.getMatchingIndexingMap(a), gReads),
                 b->get(), composeReads(op.getMatchingIndexingMap(b), gReads));
}

/// The table `t` = a·cos(E) or a·sin(E) (`Op`), E = concat(F, F) along
/// the last dim: E and a.
template <typename Op>
std::optional<std::pair<Value, double>> matchTable(Value t) {
  t = throughUnitReshapes(t);
  Node n{t, {}};
  double factor = 1.0;
  if (std::optional<SmallVector<Node>> mul = match<arith::MulFOp>(n)) {
    std::optional<double> c0 = constantOf((*mul)[0]),
                          c1 = constantOf((*mul)[1]);
    if (!c0 && !c1)
      return std::nullopt;
    factor = c1 ? *c1 : *c0;
    n = c1 ? (*mul)[0] : (*mul)[1];
  }
  std::optional<SmallVector<Node>> trig = match<Op>(n);
  if (!trig)
    return std::nullopt;
  Value e = tensorOf((*trig)[0]);
  if (!e)
    return std::nullopt;
  return std::make_pair(e, factor);
}

/// Whether the slice `slice` of (or into) `whole` covers [lo, lo + len)
/// of its last dim and the whole of the others (static, unit strides).
template <typename SliceOp>
bool coversLastDimRange(SliceOp slice, RankedTensorType whole, int64_t lo,
                        int64_t len) {
  if (!slice.hasUnitStride())
    return false;
  int64_t r = whole.getRank();
  for (int64_t d = 0; d < r; ++d) {
    std::optional<int64_t> off =
        getConstantIntValue(slice.getMixedOffsets()[d]);
    std::optional<int64_t> size = getConstantIntValue(slice.getMixedSizes()[d]);
    if (d == r - 1 ? (off != lo || size != len)
                   : (off != 0 || size != whole.getDimSize(d) ||
                      whole.isDynamicDim(d)))
      return false;
  }
  return true;
}

/// x[..., lo:lo+len] (static, unit strides, all of the other dims).
bool isLastDimSlice(Value v, Value x, int64_t lo, int64_t len) {
  auto slice = v.getDefiningOp<tensor::ExtractSliceOp>();
  return slice && slice.getSource() == x &&
         coversLastDimRange(slice, cast<RankedTensorType>(x.getType()), lo,
                            len);
}

/// Whether `r` = rotate_half(x) = concat(-x[..., h:], x[..., :h]).
bool isRotateHalf(Value r, Value x, int64_t h) {
  auto concat = r.getDefiningOp<tensor::ConcatOp>();
  auto xType = cast<RankedTensorType>(x.getType());
  if (!concat || concat.getDim() != uint64_t(xType.getRank() - 1) ||
      concat.getInputs().size() != 2 ||
      !isLastDimSlice(concat.getInputs()[1], x, 0, h))
    return false;
  std::optional<SmallVector<Node>> neg =
      match<arith::NegFOp>({concat.getInputs()[0], {}});
  Value upper = neg ? tensorOf((*neg)[0]) : Value();
  return upper && isLastDimSlice(upper, x, h, h);
}

/// Whether `groups` collapse (or expand) only the last two of `rank` dims.
bool mergesLastTwo(ArrayRef<ReassociationIndices> groups, int64_t rank) {
  if (rank < 2 || int64_t(groups.size()) != rank - 1 ||
      groups.back() != ReassociationIndices{rank - 2, rank - 1})
    return false;
  for (auto [i, g] : llvm::enumerate(groups.drop_back()))
    if (g != ReassociationIndices{int64_t(i)})
      return false;
  return true;
}

/// The x whose pair element `p` (0 even, 1 odd) `v` is: x[..., p::2] as a
/// strided slice (GPT-J), or x viewed as [..., D/2, 2] and sliced at p
/// along the pairs (Meta's reshape to pairs, unbind(-1)); through unit
/// reshapes. Null otherwise.
Value pairSource(Value v, int64_t p) {
  auto slice = throughUnitReshapes(v).getDefiningOp<tensor::ExtractSliceOp>();
  if (!slice)
    return {};
  RankedTensorType src = slice.getSourceType();
  int64_t r = src.getRank();
  if (r < 1 || !src.hasStaticShape())
    return {};
  auto at = [&](ArrayRef<OpFoldResult> v, int64_t d) {
    return getConstantIntValue(v[d]);
  };
  for (int64_t d = 0; d + 1 < r; ++d)
    if (at(slice.getMixedOffsets(), d) != 0 ||
        at(slice.getMixedSizes(), d) != src.getDimSize(d) ||
        at(slice.getMixedStrides(), d) != 1)
      return {};
  std::optional<int64_t> off = at(slice.getMixedOffsets(), r - 1),
                         size = at(slice.getMixedSizes(), r - 1),
                         stride = at(slice.getMixedStrides(), r - 1);
  int64_t last = src.getDimSize(r - 1);
  if (stride == 2 && off == p && size && 2 * *size == last)
    return slice.getSource();
  auto pairs = slice.getSource().getDefiningOp<tensor::ExpandShapeOp>();
  if (stride != 1 || off != p || size != 1 || last != 2 || !pairs ||
      !mergesLastTwo(pairs.getReassociationIndices(), r))
    return {};
  return pairs.getSrc();
}

/// (a, b) when `v` = stack((a, b), -1) flattened: [..., n] from the
/// [..., n/2, 2] concatenation of a and b unsqueezed (torch.stack as
/// TorchToLinalg writes it); a and b as [..., n/2, 1].
std::optional<std::pair<Value, Value>> stackedPair(Value v) {
  auto flat = v.getDefiningOp<tensor::CollapseShapeOp>();
  if (!flat || !mergesLastTwo(flat.getReassociationIndices(),
                              flat.getSrcType().getRank()))
    return std::nullopt;
  auto concat = flat.getSrc().getDefiningOp<tensor::ConcatOp>();
  int64_t r = flat.getSrcType().getRank();
  if (!concat || concat.getDim() != uint64_t(r - 1) ||
      concat.getInputs().size() != 2 ||
      cast<RankedTensorType>(concat.getInputs()[0].getType())
              .getDimSize(r - 1) != 1)
    return std::nullopt;
  return std::make_pair(concat.getInputs()[0], concat.getInputs()[1]);
}

/// -t's t, the negation before or after the unsqueeze, or null.
Value negated(Value v) {
  for (Value u : {v, throughUnitReshapes(v)})
    if (std::optional<SmallVector<Node>> neg = match<arith::NegFOp>({u, {}}))
      if (Value t = tensorOf((*neg)[0]))
        return t;
  return {};
}

/// Whether `r` = rotate_every_two(x) (GPT-J): stack((-x[..., 1::2],
/// x[..., ::2]), -1) flattened, so r[2i] = -x[2i+1] and r[2i+1] = x[2i].
bool isRotateEveryTwo(Value r, Value x) {
  std::optional<std::pair<Value, Value>> pair = stackedPair(r);
  if (!pair)
    return false;
  Value odd = negated(pair->first);
  return odd && pairSource(odd, 1) == x && pairSource(pair->second, 0) == x;
}

/// A cos or sin table as a rank-4 elementwise op over [B, S, H, D] or
/// [B, H, S, D] reads it: its last dim along the last loop, its rows along
/// `seqLoop` (1 or 2), its other dims broadcast (read at 0) or, before the
/// rows, the batch (loop 0, `batched`).
struct TableRead {
  Value table;
  int64_t seqLoop;
  bool batched;

  bool sameReadAs(const TableRead &o) const {
    return seqLoop == o.seqLoop && batched == o.batched;
  }
};

std::optional<TableRead> tableOperand(Node n) {
  n = throughIdentityReads(n);
  if (!n.op || n.op.getNumLoops() != 4)
    return std::nullopt;
  OpOperand *operand = operandOf(n);
  if (!operand || !n.op.isDpsInput(operand))
    return std::nullopt;
  AffineMap map = n.op.getMatchingIndexingMap(operand);
  int64_t m = map.getNumResults();
  if (m < 2 || map.getResult(m - 1) != getAffineDimExpr(3, map.getContext()))
    return std::nullopt;
  TableRead read{operand->get(), 0, false};
  for (int64_t t = 0; t + 1 < m; ++t) {
    AffineExpr e = map.getResult(t);
    if (auto c = dyn_cast<AffineConstantExpr>(e); c && c.getValue() == 0)
      continue;
    auto d = dyn_cast<AffineDimExpr>(e);
    if (!d)
      return std::nullopt;
    unsigned loop = d.getPosition();
    if (loop == 0 && !read.batched && !read.seqLoop) {
      read.batched = true;
    } else if ((loop == 1 || loop == 2) && !read.seqLoop) {
      read.seqLoop = loop;
    } else {
      return std::nullopt;
    }
  }
  if (!read.seqLoop)
    return std::nullopt;
  return read;
}

/// Which frequency the columns of a table follow: `half` repeats the R/2
/// frequencies once after the other (rotate_half's tables), `repeated`
/// repeats each twice in a row (GPT-J's repeat_interleave), `pairs` has
/// one column per frequency (Meta's complex multiply).
enum class Columns { half, repeated, pairs };

int64_t frequencyOf(Columns columns, int64_t column, int64_t h) {
  switch (columns) {
  case Columns::half:
    return column % h;
  case Columns::repeated:
    return column / 2;
  case Columns::pairs:
    return column;
  }
  llvm_unreachable("unknown column order");
}

/// V when `t` = repeat_interleave(V, 2) along the last dim as torch
/// decomposes it: V unsqueezed to [..., n, 1], broadcast to [..., n, 2]
/// (or linalg.broadcast of [..., n]) and flattened.
Value repeatedSource(Value t) {
  auto flat = t.getDefiningOp<tensor::CollapseShapeOp>();
  int64_t r = flat ? flat.getSrcType().getRank() : 0;
  if (!flat || !mergesLastTwo(flat.getReassociationIndices(), r) ||
      flat.getSrcType().getDimSize(r - 1) != 2)
    return {};
  Value in = copiedInput(flat.getSrc());
  if (!in)
    return {};
  auto op = flat.getSrc().getDefiningOp<linalg::LinalgOp>();
  AffineMap map = op.getMatchingIndexingMap(op.getDpsInputOperand(0));
  MLIRContext *ctx = map.getContext();
  for (int64_t d = 0; d + 1 < r; ++d)
    if (map.getNumResults() <= d ||
        map.getResult(d) != getAffineDimExpr(d, ctx))
      return {};
  if (map.getNumResults() == r - 1)
    return in;
  auto zero = dyn_cast<AffineConstantExpr>(map.getResult(r - 1));
  if (map.getNumResults() != r || !zero || zero.getValue() != 0)
    return {};
  return in;
}

/// Recovers (base, linear factor) from ω of `rotary` dims: ω_i =
/// base^(-2i/R)/f, checked against posenc's own frequencies to f32
/// rounding (importers compute ω in f32).
std::optional<std::pair<double, double>> ropeParameters(ArrayRef<double> w,
                                                        int64_t rotary) {
  if (w.size() < 2 || !(w[0] > 0.0) || !(w[1] > 0.0) || !(w[1] < w[0]) ||
      !(w[0] <= M_PI))
    return std::nullopt;
  // ω_0 = 1/f; the last ω gives the base with the least amplification of
  // its f32 rounding (exponent R / (R - 2) instead of R / 2).
  double factor = 1.0 / w[0];
  int64_t last = w.size() - 1;
  double base =
      std::pow(w[last] * factor, -double(rotary) / (2.0 * double(last)));
  if (!std::isfinite(base) || !(base > 1.0))
    return std::nullopt;
  // Configs give integer bases (10000, 500000): snap within f32 rounding.
  if (std::abs(base - std::round(base)) <= 1e-6 * base)
    base = std::round(base);
  SmallVector<double> expected = unscaledRopeFrequencies(base, rotary);
  // Negated so that a NaN entry fails too.
  for (auto [i, x] : llvm::enumerate(w))
    if (!(std::abs(x * factor - expected[i]) <= 4e-7 * expected[i]))
      return std::nullopt;
  if (std::abs(factor - 1.0) < 1e-6)
    factor = 1.0;
  return std::make_pair(base, factor);
}

/// posenc.rope's parameters of a pair of tables: the base and a linear
/// factor, or (`ext` not empty) per-frequency rescale factors.
struct RopeTables {
  double base, factor, attention;
  SmallVector<double> ext;
};

/// The `original` context length of the per-frequency form: any length
/// selects the same (equal) factors.
constexpr int64_t kPerFrequencyOriginal = 4096;

/// ω that no base and linear factor give (Llama 3's, YaRN's, any other
/// inv_freq) as rescale factors of base^(-2i/R): ext_i = base^(-2i/R)/ω_i,
/// the base from the two highest frequencies (which the published
/// scalings leave alone). posenc.rope's 1/(ext_i·base^(2i/R)) is ω_i.
std::optional<RopeTables> perFrequency(ArrayRef<double> w, int64_t rotary,
                                       double attention) {
  // Above π a frequency aliases at integer positions, and posenc.rope's
  // range reduction is exact for rope frequencies (<= 1), not for any.
  for (double x : w)
    if (!(x > 0.0) || !(x <= M_PI))
      return std::nullopt;
  double base = 10000.0;
  if (w.size() >= 2 && w[1] < w[0]) {
    double b = std::pow(w[0] / w[1], double(rotary) / 2.0);
    if (std::isfinite(b) && b > 1.0)
      base = std::abs(b - std::round(b)) <= 1e-4 * b ? std::round(b) : b;
  }
  SmallVector<double> unscaled = unscaledRopeFrequencies(base, rotary);
  RopeTables tables{base, 1.0, attention, {}};
  for (auto [i, x] : llvm::enumerate(w)) {
    double ext = unscaled[i] / x;
    if (!std::isfinite(ext) || !(ext > 0.0))
      return std::nullopt;
    tables.ext.push_back(ext);
  }
  return tables;
}

/// Constant tables a·cos(s·ω_i), a·sin(s·ω_i) (what an export with static
/// positions folds the rotary embedding into), row s being position s,
/// their non-unit dims [S, columns], the columns following ω as `columns`
/// says: ω estimated from the rows (unwrapped from row 1 on, so that large
/// rows refine small frequencies), (base, factor) from ω as for computed
/// tables, then every entry checked against posenc's own frequencies to
/// f32 rounding of the angle.
std::optional<RopeTables> ropeTablesOf(ArrayRef<double> c, ArrayRef<double> s,
                                       int64_t seq, int64_t h,
                                       Columns columns) {
  int64_t cols = columns == Columns::pairs ? h : 2 * h;
  if (seq < 2 || int64_t(c.size()) != seq * cols ||
      int64_t(s.size()) != seq * cols)
    return std::nullopt;
  double a = c[0];
  if (!std::isfinite(a) || !(a > 0.0))
    return std::nullopt;
  if (std::abs(a - 1.0) <= 1e-6)
    a = 1.0;
  // The column holding frequency i.
  auto column = [&](int64_t i) {
    return columns == Columns::repeated ? 2 * i : i;
  };
  SmallVector<double> omega(h);
  for (int64_t i = 0; i < h; ++i) {
    int64_t k = column(i);
    double w = std::atan2(s[cols + k], c[cols + k]);
    for (int64_t r = 2; r < seq; r *= 2) {
      double measured = std::atan2(s[r * cols + k], c[r * cols + k]);
      double turns = std::round((r * w - measured) / (2 * M_PI));
      w = (measured + 2 * M_PI * turns) / double(r);
    }
    omega[i] = w;
  }
  if (!(omega[0] > 0.0) || (h > 1 && !(omega[h - 1] > 0.0)))
    return std::nullopt;
  double factor = 1.0 / omega[0];
  if (std::abs(factor - std::round(factor * 1e4) / 1e4) <= 1e-6 * factor)
    factor = std::round(factor * 1e4) / 1e4;
  double base = 10000.0;
  if (h > 1) {
    base =
        std::pow(omega[h - 1] * factor, -double(2 * h) / (2.0 * double(h - 1)));
    if (std::abs(base - std::round(base)) <= 1e-5 * base)
      base = std::round(base);
  }
  // Whether every entry is a·cos(r·ω), a·sin(r·ω) of its frequency.
  auto tablesOf = [&](ArrayRef<double> w) {
    for (int64_t r = 0; r < seq; ++r)
      for (int64_t k = 0; k < cols; ++k) {
        double angle = double(r) * w[frequencyOf(columns, k, h)];
        // The exporter's f32 angle is off by a few of its half-ulps (its ω
        // and the product each round), its cos/sin by an ulp or two.
        double tol = a * (4e-7 + std::abs(angle) * 0x1p-22);
        if (!(std::abs(c[r * cols + k] - a * std::cos(angle)) <= tol) ||
            !(std::abs(s[r * cols + k] - a * std::sin(angle)) <= tol))
          return false;
      }
    return true;
  };
  if (std::isfinite(base) && base > 1.0) {
    SmallVector<double> w = unscaledRopeFrequencies(base, 2 * h);
    for (double &x : w)
      x /= factor;
    if (tablesOf(w))
      return RopeTables{base, factor, a, {}};
  }
  // Other frequencies: as measured, when they make the tables.
  if (!tablesOf(omega))
    return std::nullopt;
  return perFrequency(omega, 2 * h, a);
}

/// The values of the constant `t` whose non-unit dims are [seq, cols].
std::optional<SmallVector<double>> constantTable(Value t, int64_t seq,
                                                 int64_t cols) {
  auto nonUnit = [](ArrayRef<int64_t> shape) {
    SmallVector<int64_t> dims;
    for (int64_t d : shape)
      if (d != 1)
        dims.push_back(d);
    return dims;
  };
  DenseFPElementsAttr attr;
  if (nonUnit(cast<ShapedType>(t.getType()).getShape()) !=
          nonUnit({seq, cols}) ||
      !matchPattern(throughUnitReshapes(t), m_Constant(&attr)) ||
      attr.getNumElements() != seq * cols)
    return std::nullopt;
  SmallVector<double> out;
  for (APFloat v : attr.getValues<APFloat>())
    out.push_back(v.convertToDouble());
  return out;
}

std::optional<RopeTables> constantRopeTables(Value cosT, Value sinT,
                                             int64_t seq, int64_t h,
                                             Columns columns) {
  int64_t cols = columns == Columns::pairs ? h : 2 * h;
  std::optional<SmallVector<double>> c = constantTable(cosT, seq, cols);
  std::optional<SmallVector<double>> s = constantTable(sinT, seq, cols);
  if (!c || !s)
    return std::nullopt;
  return ropeTablesOf(*c, *s, seq, h, columns);
}

/// Rows of a constant table picked by integer positions: t[..., j] =
/// C[pos[...], lo + j] (torch's index, embedding or gather of a cached
/// cos/sin table, as TorchToLinalg writes them: a generic reading pos,
/// tensor.extract from a constant C [P, n] at the index_cast position and
/// linalg.index of the last loop; a last-dim slice of that for lo > 0).
struct GatheredTable {
  Value pos;
  SmallVector<double> rows; // C[:, lo:lo + len], row-major
  int64_t numRows;
};

std::optional<GatheredTable> gatheredTable(Value t) {
  t = throughUnitReshapes(t);
  auto tType = cast<RankedTensorType>(t.getType());
  if (tType.getRank() < 1)
    return std::nullopt;
  int64_t lo = 0, len = tType.getDimSize(tType.getRank() - 1);
  if (auto slice = t.getDefiningOp<tensor::ExtractSliceOp>()) {
    RankedTensorType src = slice.getSourceType();
    int64_t r = src.getRank();
    std::optional<int64_t> off =
        getConstantIntValue(slice.getMixedOffsets()[r - 1]);
    if (slice.getType().getRank() != r || !off ||
        !coversLastDimRange(slice, src, *off, len))
      return std::nullopt;
    lo = *off;
    t = slice.getSource();
  }
  auto op = t.getDefiningOp<linalg::GenericOp>();
  if (!op || !op.hasPureTensorSemantics() || op.getNumDpsInputs() != 1 ||
      op->getNumResults() != 1 ||
      op.getNumParallelLoops() != op.getNumLoops() ||
      !op.getMatchingIndexingMap(op.getDpsInitOperand(0)).isIdentity())
    return std::nullopt;
  unsigned last = op.getNumLoops() - 1;
  // pos is read along every loop but the last (the column).
  OpOperand *posOperand = op.getDpsInputOperand(0);
  AffineMap posMap = op.getMatchingIndexingMap(posOperand);
  SmallVector<AffineExpr> lead;
  for (unsigned d = 0; d < last; ++d)
    lead.push_back(getAffineDimExpr(d, op.getContext()));
  if (posMap != AffineMap::get(op.getNumLoops(), 0, lead, op.getContext()))
    return std::nullopt;
  auto extract = op.getBlock()
                     ->getTerminator()
                     ->getOperand(0)
                     .getDefiningOp<tensor::ExtractOp>();
  if (!extract || extract->getBlock() != op.getBlock() ||
      extract.getIndices().size() != 2)
    return std::nullopt;
  auto row = extract.getIndices()[0].getDefiningOp<arith::IndexCastOp>();
  auto column = extract.getIndices()[1].getDefiningOp<linalg::IndexOp>();
  if (!row || row.getIn() != op.getMatchingBlockArgument(posOperand) ||
      !column || column.getDim() != last)
    return std::nullopt;
  DenseFPElementsAttr attr;
  auto tableType = cast<RankedTensorType>(extract.getTensor().getType());
  if (!matchPattern(extract.getTensor(), m_Constant(&attr)) ||
      tableType.getDimSize(1) < lo + len)
    return std::nullopt;
  GatheredTable g{posOperand->get(), {}, tableType.getDimSize(0)};
  SmallVector<double> all;
  for (APFloat v : attr.getValues<APFloat>())
    all.push_back(v.convertToDouble());
  int64_t n = tableType.getDimSize(1);
  for (int64_t r = 0; r < g.numRows; ++r)
    for (int64_t j = 0; j < len; ++j)
      g.rows.push_back(all[r * n + lo + j]);
  return g;
}

/// With `repeated` columns: the tables before their repeat_interleave
/// (GPT-J repeats the cos/sin), one column per frequency, when both are
/// repeated.
void throughRepeats(Value &cosT, Value &sinT, Columns &columns) {
  if (columns != Columns::repeated)
    return;
  Value cs = repeatedSource(cosT), ss = repeatedSource(sinT);
  if (!cs || !ss)
    return;
  cosT = cs;
  sinT = ss;
  columns = Columns::pairs;
}

/// The integer positions `pos` as posenc.rope takes them for `b` rows of
/// `seq` positions: [B, S] when `batched` reads the batch, else [S]; unit
/// dims dropped by a collapse built at `root`. Null when they do not fit.
Value ropePositions(PatternRewriter &rewriter, Operation *root, Value pos,
                    int64_t b, int64_t seq, bool batched) {
  pos = throughUnitReshapes(pos);
  auto pt = cast<RankedTensorType>(pos.getType());
  if (!pt.hasStaticShape() ||
      !(pt.getElementType().isInteger(32) || pt.getElementType().isInteger(64)))
    return {};
  int64_t elems = pt.getNumElements();
  if (pt.getRank() < 1 || pt.getShape().back() != seq ||
      !(elems == seq || (batched && elems == b * seq)) ||
      (elems == b * seq && b > 1 && pt.getShape().front() != b))
    return {};
  SmallVector<int64_t> shape = {seq};
  if (elems != seq)
    shape = {b, seq};
  if (pt.getShape() == ArrayRef(shape))
    return pos;
  // Unit dims dropped: [S] from [1..., S], [B, S] from [B, 1..., S].
  SmallVector<ReassociationIndices> groups;
  ReassociationIndices lead;
  for (int64_t d = 0; d + 1 < pt.getRank(); ++d)
    lead.push_back(d);
  if (shape.size() == 1) {
    lead.push_back(pt.getRank() - 1);
    groups = {lead};
  } else {
    groups = {lead, {pt.getRank() - 1}};
  }
  rewriter.setInsertionPoint(root);
  return tensor::CollapseShapeOp::create(
      rewriter, root->getLoc(),
      RankedTensorType::get(shape, pt.getElementType()), pos, groups);
}

/// Tables gathered from constant tables by positions (a cached cos/sin
/// table indexed by the position ids): the rope parameters of the cached
/// tables (row p is position p), and the positions.
std::optional<RopeTables> gatheredRopeTables(PatternRewriter &rewriter,
                                             Operation *root, TableRead c,
                                             TableRead s, int64_t h, int64_t b,
                                             int64_t seq, Columns columns,
                                             Value &positions) {
  Value cosT = c.table, sinT = s.table;
  throughRepeats(cosT, sinT, columns);
  std::optional<GatheredTable> gc = gatheredTable(cosT),
                               gs = gatheredTable(sinT);
  if (!gc || !gs || gc->pos != gs->pos || gc->numRows != gs->numRows)
    return std::nullopt;
  std::optional<RopeTables> tables =
      ropeTablesOf(gc->rows, gs->rows, gc->numRows, h, columns);
  if (!tables)
    return std::nullopt;
  positions = ropePositions(rewriter, root, gc->pos, b, seq, c.batched);
  if (!positions)
    return std::nullopt;
  return tables;
}

/// Tables computed from positions: their rope parameters, and the
/// positions as posenc.rope takes them (built at `root`; only when the
/// match succeeds). `b` and `seq` are the batch and the rows of `root`.
std::optional<RopeTables> computedRopeTables(PatternRewriter &rewriter,
                                             Operation *root, TableRead c,
                                             TableRead s, int64_t h, int64_t b,
                                             int64_t seq, Columns columns,
                                             Value &positions) {
  Value cosT = c.table, sinT = s.table;
  // Repeated after the cos/sin (GPT-J), else the angles were.
  throughRepeats(cosT, sinT, columns);
  std::optional<std::pair<Value, double>> cm = matchTable<math::CosOp>(cosT);
  std::optional<std::pair<Value, double>> sm = matchTable<math::SinOp>(sinT);
  // The attention factor posenc.rope takes: positive and finite.
  if (!cm || !sm || cm->first != sm->first || cm->second != sm->second ||
      !(cm->second > 0.0) || !std::isfinite(cm->second))
    return std::nullopt;
  // The angles F of [..., S, R/2] the columns are made of.
  Value f = cm->first;
  if (columns == Columns::half) {
    // E = concat(F, F) along the last dim.
    auto concat = f.getDefiningOp<tensor::ConcatOp>();
    auto eType = cast<RankedTensorType>(f.getType());
    if (!concat || concat.getDim() != uint64_t(eType.getRank() - 1) ||
        concat.getInputs().size() != 2 ||
        concat.getInputs()[0] != concat.getInputs()[1])
      return std::nullopt;
    f = concat.getInputs()[0];
  } else if (columns == Columns::repeated) {
    f = repeatedSource(f);
    if (!f)
      return std::nullopt;
    f = throughUnitReshapes(f);
  }
  // matchAngles finds ω and the positions by their producers, not by the
  // dims they are read along; distinct extents make the dims certain (a
  // length-R/2 vector can only lie along the R/2 dim, the positions' S
  // only along S). Equal ones are left alone.
  if (seq == h || (b > 1 && (b == seq || b == h)))
    return std::nullopt;
  std::optional<Angles> angles = matchAngles(f, h);
  if (!angles)
    return std::nullopt;
  std::optional<RopeTables> tables;
  if (std::optional<std::pair<double, double>> params =
          ropeParameters(angles->omega, 2 * h))
    tables = RopeTables{params->first, params->second, cm->second, {}};
  else
    tables = perFrequency(angles->omega, 2 * h, cm->second);
  if (!tables)
    return std::nullopt;
  positions = ropePositions(rewriter, root, angles->pos, b, seq, c.batched);
  if (!positions)
    return std::nullopt;
  return tables;
}

/// Replaces `root`, a rotation of `x` (f32 [B, S, H, D], or [B, H, S, D]
/// when the tables' rows run along loop 2) by the cos and sin tables `c`
/// and `s`, with posenc.rope in `layout` when the tables are rope tables.
LogicalResult raiseRope(PatternRewriter &rewriter, Operation *root, Value x,
                        TableRead c, TableRead s, RopeLayout layout,
                        Columns columns) {
  if (!c.sameReadAs(s))
    return failure();
  auto yType = cast<RankedTensorType>(root->getResult(0).getType());
  int64_t h = yType.getDimSize(3) / 2, b = yType.getDimSize(0),
          seq = yType.getDimSize(c.seqLoop);
  Location loc = root->getLoc();
  std::optional<RopeTables> tables =
      constantRopeTables(c.table, s.table, seq, h, columns);
  if (!tables) {
    // Constant tables of one column per frequency, repeated in the IR.
    Value cs = c.table, ss = s.table;
    Columns unrepeated = columns;
    throughRepeats(cs, ss, unrepeated);
    if (unrepeated != columns)
      tables = constantRopeTables(cs, ss, seq, h, unrepeated);
  }
  Value positions;
  if (tables) {
    // Row s of a constant table is position s.
    rewriter.setInsertionPoint(root);
    SmallVector<int32_t> rows;
    for (int64_t r = 0; r < seq; ++r)
      rows.push_back(int32_t(r));
    auto type = RankedTensorType::get({seq}, rewriter.getI32Type());
    positions = arith::ConstantOp::create(
        rewriter, loc, DenseIntElementsAttr::get(type, ArrayRef(rows)));
  } else {
    tables =
        gatheredRopeTables(rewriter, root, c, s, h, b, seq, columns, positions);
    if (!tables)
      tables = computedRopeTables(rewriter, root, c, s, h, b, seq, columns,
                                  positions);
    if (!tables)
      return failure();
  }
  rewriter.setInsertionPoint(root);
  LinalgBuilder e{rewriter, loc};
  // Rows along loop 2: the [B, H, S, D] of Hugging Face's attention.
  bool swapped = c.seqLoop == 2;
  Value xs = swapped ? transpose(e, x, {0, 2, 1, 3}) : x;
  RopeScalingAttr scaling;
  if (!tables->ext.empty()) {
    // LongRoPE's per-frequency factors, short = long so that the positions
    // never select, max_positions = original so that they imply no
    // attention factor.
    auto ext = rewriter.getDenseF64ArrayAttr(tables->ext);
    scaling = RopeScalingAttr::get(
        rewriter.getContext(), RopeScalingKind::longrope, FloatAttr(),
        FloatAttr(), kPerFrequencyOriginal, FloatAttr(), FloatAttr(),
        FloatAttr(), FloatAttr(), false, FloatAttr(), FloatAttr(), ext, ext,
        kPerFrequencyOriginal);
  } else if (tables->factor != 1.0) {
    scaling = RopeScalingAttr::get(
        rewriter.getContext(), RopeScalingKind::linear,
        rewriter.getF64FloatAttr(tables->factor), FloatAttr(), 0, FloatAttr(),
        FloatAttr(), FloatAttr(), FloatAttr(), false, FloatAttr(), FloatAttr(),
        DenseF64ArrayAttr(), DenseF64ArrayAttr(), 0);
  }
  Value rotated = RopeOp::create(
      rewriter, loc, xs, positions,
      RopeLayoutAttr::get(rewriter.getContext(), layout),
      rewriter.getF64FloatAttr(tables->base), IntegerAttr(), scaling,
      tables->attention != 1.0 ? rewriter.getF64FloatAttr(tables->attention)
                               : FloatAttr(),
      DenseI64ArrayAttr(), UnitAttr());
  rewriter.replaceOp(root,
                     swapped ? transpose(e, rotated, {0, 2, 1, 3}) : rotated);
  return success();
}

/// x·cos + rot(x)·sin, rooted at the addition: Hugging Face's
/// apply_rotary_pos_emb (rot = rotate_half, tables of concat(F, F)) and
/// GPT-J's (rot = rotate_every_two, tables repeat_interleave'd), on
/// [B, H, S, D] or [B, S, H, D]; cos and sin constant, or computed from
/// positions and a constant inv_freq.
struct RaiseRope : OpInterfaceRewritePattern<linalg::LinalgOp> {
  using OpInterfaceRewritePattern::OpInterfaceRewritePattern;

  LogicalResult matchAndRewrite(linalg::LinalgOp root,
                                PatternRewriter &rewriter) const override {
    if (!isElementwise(root))
      return failure();
    Value y = root->getResult(0);
    auto yType = cast<RankedTensorType>(y.getType());
    // f32: tables computed in f16/bf16 round differently from
    // posenc.rope's f32 ones; f64 rope programs keep their f64 angles.
    if (yType.getRank() != 4 || !yType.hasStaticShape() ||
        !yType.getElementType().isF32())
      return failure();
    int64_t dim = yType.getDimSize(3), h = dim / 2;
    if (dim % 2 != 0 || dim < 2)
      return failure();
    std::optional<SmallVector<Node>> add = match<arith::AddFOp>({y, {}});
    if (!add)
      return failure();
    for (int side : {0, 1}) {
      std::optional<SmallVector<Node>> xc = match<arith::MulFOp>((*add)[side]);
      std::optional<SmallVector<Node>> rs =
          match<arith::MulFOp>((*add)[1 - side]);
      if (!xc || !rs)
        continue;
      for (int a : {0, 1})
        for (int b : {0, 1})
          if (succeeded(tryRaise(rewriter, root, (*xc)[a], (*xc)[1 - a],
                                 (*rs)[b], (*rs)[1 - b], h)))
            return success();
    }
    return failure();
  }

  LogicalResult tryRaise(PatternRewriter &rewriter, linalg::LinalgOp root,
                         Node xNode, Node cosNode, Node rotNode, Node sinNode,
                         int64_t h) const {
    Value x = tensorOf(xNode), rot = tensorOf(rotNode);
    if (!x || !rot || x.getType() != root->getResult(0).getType())
      return failure();
    bool half = isRotateHalf(rot, x, h);
    if (!half && !isRotateEveryTwo(rot, x))
      return failure();
    std::optional<TableRead> c = tableOperand(cosNode);
    std::optional<TableRead> s = tableOperand(sinNode);
    if (!c || !s)
      return failure();
    return raiseRope(rewriter, root, x, *c, *s,
                     half ? RopeLayout::half : RopeLayout::interleaved,
                     half ? Columns::half : Columns::repeated);
  }
};

/// x's pair element `p` times a table: the x, and the table's node.
struct PairProduct {
  Value x;
  Node table;
};

std::optional<PairProduct> pairProduct(Node n, int64_t p) {
  std::optional<SmallVector<Node>> mul = match<arith::MulFOp>(n);
  if (!mul)
    return std::nullopt;
  for (int side : {0, 1})
    if (Value t = tensorOf((*mul)[side]))
      if (Value x = pairSource(t, p))
        return PairProduct{x, (*mul)[1 - side]};
  return std::nullopt;
}

/// Meta's rotary embedding in real arithmetic on the pairs (x_r, x_i) =
/// (x[..., 0::2], x[..., 1::2]) (Llama's apply_rotary_emb without complex
/// numbers, as ExecuTorch writes it): stack((x_r·cos - x_i·sin,
/// x_r·sin + x_i·cos), -1) flattened, cos and sin of [..., S, D/2];
/// rooted at the flatten.
struct RaisePairRope : OpRewritePattern<tensor::CollapseShapeOp> {
  using OpRewritePattern::OpRewritePattern;

  LogicalResult matchAndRewrite(tensor::CollapseShapeOp root,
                                PatternRewriter &rewriter) const override {
    RankedTensorType type = root.getResultType();
    if (type.getRank() != 4 || !type.hasStaticShape() ||
        !type.getElementType().isF32())
      return failure();
    std::optional<std::pair<Value, Value>> pair = stackedPair(root);
    if (!pair)
      return failure();
    std::optional<SmallVector<Node>> re =
        match<arith::SubFOp>({throughUnitReshapes(pair->first), {}});
    std::optional<SmallVector<Node>> im =
        match<arith::AddFOp>({throughUnitReshapes(pair->second), {}});
    if (!re || !im)
      return failure();
    std::optional<PairProduct> rc = pairProduct((*re)[0], 0),
                               is = pairProduct((*re)[1], 1);
    if (!rc || !is || is->x != rc->x || rc->x.getType() != type)
      return failure();
    for (int side : {0, 1}) {
      std::optional<PairProduct> rs = pairProduct((*im)[side], 0),
                                 ic = pairProduct((*im)[1 - side], 1);
      if (!rs || !ic || rs->x != rc->x || ic->x != rc->x)
        continue;
      std::optional<TableRead> c = tableOperand(rc->table),
                               c2 = tableOperand(ic->table),
                               s = tableOperand(is->table),
                               s2 = tableOperand(rs->table);
      if (!c || !c2 || !s || !s2 || c->table != c2->table ||
          s->table != s2->table || !c->sameReadAs(*c2) || !s->sameReadAs(*s2))
        continue;
      return raiseRope(rewriter, root, rc->x, *c, *s, RopeLayout::interleaved,
                       Columns::pairs);
    }
    return failure();
  }
};

/// Partial rotary (GPT-NeoX's rotary_pct, Phi, GPT-J's rotary_dim):
/// concat(rope(x[..., :R]), x[..., R:]) along the last dim, the rope
/// raised on [B, S, H, D] or between the layout transposes of
/// [B, H, S, D], becomes one posenc.rope with rotary_dim = R.
struct RaisePartialRope : OpRewritePattern<tensor::ConcatOp> {
  using OpRewritePattern::OpRewritePattern;

  LogicalResult matchAndRewrite(tensor::ConcatOp concat,
                                PatternRewriter &rewriter) const override {
    auto type = cast<RankedTensorType>(concat.getType());
    if (type.getRank() != 4 || concat.getDim() != 3 ||
        concat.getInputs().size() != 2 || !type.hasStaticShape())
      return failure();
    auto layoutSwapInput = [](Value v) -> Value {
      auto t = v.getDefiningOp<linalg::TransposeOp>();
      if (t && t.hasPureTensorSemantics() &&
          t.getPermutation() == ArrayRef<int64_t>{0, 2, 1, 3})
        return t.getInput();
      return {};
    };
    Value first = concat.getInputs()[0];
    Value inner = layoutSwapInput(first);
    bool swapped = bool(inner);
    auto rope = (swapped ? inner : first).getDefiningOp<RopeOp>();
    if (!rope || rope.getRotaryDim() || rope.getMropeSection())
      return failure();
    Value in = swapped ? layoutSwapInput(rope.getX()) : rope.getX();
    auto slice = in ? in.getDefiningOp<tensor::ExtractSliceOp>()
                    : tensor::ExtractSliceOp();
    if (!slice)
      return failure();
    Value x = slice.getSource();
    int64_t d = type.getDimSize(3);
    int64_t r = cast<RankedTensorType>(slice.getType()).getDimSize(3);
    if (x.getType() != type || !isLastDimSlice(slice, x, 0, r) ||
        !isLastDimSlice(concat.getInputs()[1], x, r, d - r))
      return failure();
    LinalgBuilder e{rewriter, concat.getLoc()};
    Value xs = swapped ? transpose(e, x, {0, 2, 1, 3}) : x;
    Value rotated = RopeOp::create(
        rewriter, concat.getLoc(), xs, rope.getPos(), rope.getLayoutAttr(),
        rope.getBaseAttr(), rewriter.getI64IntegerAttr(r),
        rope.getScalingAttr(), rope.getAttentionFactorAttr(),
        DenseI64ArrayAttr(), UnitAttr());
    rewriter.replaceOp(concat,
                       swapped ? transpose(e, rotated, {0, 2, 1, 3}) : rotated);
    return success();
  }
};

//===----------------------------------------------------------------------===//
// MLA: attention over keys and values up-projected from a latent
//===----------------------------------------------------------------------===//

/// (a, b) when `v` is a joined with b along the last dim: tensor.concat,
/// or two tensor.insert_slice ops filling [0, Da) and [Da, D) (Hugging
/// Face DeepSeek's new_empty and slice assignments).
std::optional<std::pair<Value, Value>> lastDimParts(Value v) {
  auto type = cast<RankedTensorType>(v.getType());
  int64_t r = type.getRank();
  if (r < 1 || type.isDynamicDim(r - 1))
    return std::nullopt;
  if (auto concat = v.getDefiningOp<tensor::ConcatOp>()) {
    if (concat.getDim() != uint64_t(r - 1) || concat.getInputs().size() != 2)
      return std::nullopt;
    return std::make_pair(concat.getInputs()[0], concat.getInputs()[1]);
  }
  auto outer = v.getDefiningOp<tensor::InsertSliceOp>();
  auto inner = outer ? outer.getDest().getDefiningOp<tensor::InsertSliceOp>()
                     : tensor::InsertSliceOp();
  if (!inner)
    return std::nullopt;
  int64_t d = type.getDimSize(r - 1);
  for (auto [lo, hi] : {std::pair(inner, outer), std::pair(outer, inner)}) {
    if (lo.getSourceType().getRank() != r || hi.getSourceType().getRank() != r)
      return std::nullopt;
    int64_t da = lo.getSourceType().getDimSize(r - 1);
    if (coversLastDimRange(lo, type, 0, da) &&
        coversLastDimRange(hi, type, da, d - da))
      return std::make_pair(lo.getSource(), hi.getSource());
  }
  return std::nullopt;
}

/// The input of a one-input copy `v` (a broadcast, a transpose, a copy)
/// and how it is read: the input's dims as loops of `v` (constants for
/// dims read at 0). `v` itself, read whole, when it is no such copy.
std::pair<Value, SmallVector<AffineExpr>> copySource(Value v) {
  auto op = v.getDefiningOp<linalg::LinalgOp>();
  if (Value in = copiedInput(v))
    return {
        in,
        llvm::to_vector(
            op.getMatchingIndexingMap(op.getDpsInputOperand(0)).getResults())};
  SmallVector<AffineExpr> whole;
  for (int64_t d = 0, r = cast<ShapedType>(v.getType()).getRank(); d < r; ++d)
    whole.push_back(getAffineDimExpr(d, v.getContext()));
  return {v, whole};
}

/// The dims of `reads` (the dims of a copy's input as loops of its
/// result) that read `loops`, in that order, when every other dim is a
/// unit dim; else empty.
SmallVector<int64_t> dimsReading(Value in, ArrayRef<AffineExpr> reads,
                                 ArrayRef<int64_t> loops) {
  auto type = cast<RankedTensorType>(in.getType());
  SmallVector<int64_t> dims(loops.size(), -1);
  for (auto [pos, expr] : llvm::enumerate(reads)) {
    auto d = dyn_cast<AffineDimExpr>(expr);
    auto *it = d ? llvm::find(loops, int64_t(d.getPosition())) : loops.end();
    if (it != loops.end() && dims[it - loops.begin()] < 0) {
      dims[it - loops.begin()] = pos;
      continue;
    }
    auto c = dyn_cast<AffineConstantExpr>(expr);
    if (type.isDynamicDim(pos) || type.getDimSize(pos) != 1 ||
        !(d || (c && c.getValue() == 0)))
      return {};
  }
  if (llvm::is_contained(dims, -1))
    return {};
  return dims;
}

/// `v` with all dims but `keep` (unit dims) collapsed away, then
/// transposed so that the kept dims come in the order `keep` lists them.
Value keepDims(LinalgBuilder &e, Value v, ArrayRef<int64_t> keep) {
  auto type = cast<RankedTensorType>(v.getType());
  SmallVector<int64_t> sorted(keep);
  llvm::sort(sorted);
  if (type.getRank() != int64_t(keep.size())) {
    // Each unit dim joins the group of the kept dim before it (or, before
    // the first, the first).
    SmallVector<ReassociationIndices> groups(sorted.size());
    SmallVector<int64_t> shape;
    size_t g = 0;
    for (int64_t d = 0; d < type.getRank(); ++d) {
      if (g + 1 < sorted.size() && d == sorted[g + 1])
        ++g;
      groups[g].push_back(d);
    }
    for (int64_t d : sorted)
      shape.push_back(type.getDimSize(d));
    v = tensor::CollapseShapeOp::create(
        e.b, e.loc, RankedTensorType::get(shape, type.getElementType()), v,
        groups);
  }
  SmallVector<int64_t> perm;
  for (int64_t d : keep)
    perm.push_back(llvm::find(sorted, d) - sorted.begin());
  return transpose(e, v, perm);
}

/// DeepSeek-V2's multi-head latent attention in its naive form (Hugging
/// Face's DeepseekV2Attention): kv = c_kv·Wᵀ of [B, Sk, H·(Dn + Dv)]
/// viewed as [B, Sk, H, Dn + Dv] and split into k_nope and v, keys
/// [k_nope | k_pe broadcast over the heads], queries [q_nope | q_pe],
/// attention raised to posenc.attention (no bias, causal or not): one
/// posenc.mla_absorb, with w_uk and w_uv the halves of W per head. Its
/// lowering absorbs W into the queries and never builds the per-head keys.
struct RaiseMla : OpRewritePattern<AttentionOp> {
  using OpRewritePattern::OpRewritePattern;

  LogicalResult matchAndRewrite(AttentionOp attn,
                                PatternRewriter &rewriter) const override {
    if (attn.getBias() || attn.getSinks() || attn.getDiagonal() ||
        !attn.getOffsets().empty() || attn.getWindow() || attn.getChunk() ||
        attn.getSoftcap() || !attn.getScoreMod().empty() || !attn.getResult())
      return failure();
    for (Value t : {attn.getQ(), attn.getK(), attn.getV()}) {
      auto type = dyn_cast<RankedTensorType>(t.getType());
      if (!type || type.getRank() != 4 || !type.hasStaticShape())
        return failure();
    }
    // Queries [q_nope | q_pe] and keys [k_nope | k_rope], through the
    // layout transposes ([B, H, S, D] importers).
    SmallVector<int64_t> qPerm = {0, 1, 2, 3}, kPerm = qPerm, vPerm = qPerm;
    Value qc = attn.getQ(), kc = attn.getK(), vc = attn.getV();
    throughTransposes(qc, qPerm);
    throughTransposes(kc, kPerm);
    throughTransposes(vc, vPerm);
    std::optional<std::pair<Value, Value>> qParts = lastDimParts(qc),
                                           kParts = lastDimParts(kc);
    if (!qParts || !kParts || qPerm[3] != 3 || kPerm[3] != 3)
      return failure();
    // k_nope and v: [0, Dn) and [Dn, Dn + Dv) of one up-projection.
    auto knSlice = kParts->first.getDefiningOp<tensor::ExtractSliceOp>();
    auto vSlice = vc.getDefiningOp<tensor::ExtractSliceOp>();
    if (!knSlice || !vSlice || knSlice.getSource() != vSlice.getSource())
      return failure();
    Value kv = knSlice.getSource();
    auto kvType = cast<RankedTensorType>(kv.getType());
    int64_t dn = knSlice.getType().getDimSize(3),
            dv = vSlice.getType().getDimSize(3),
            dr = cast<RankedTensorType>(kParts->second.getType()).getDimSize(3);
    if (kvType.getRank() != 4 || dn < 1 || dv < 1 || dr < 1 ||
        kvType.getDimSize(3) != dn + dv ||
        cast<RankedTensorType>(qParts->first.getType()).getDimSize(3) != dn ||
        !coversLastDimRange(knSlice, kvType, 0, dn) ||
        !coversLastDimRange(vSlice, kvType, dn, dv))
      return failure();
    // Both read the projection as [B, Sk, H, Dn + Dv].
    SmallVector<int64_t> kvPermK(kPerm), kvPermV(vPerm);
    Value kvK = kv, kvV = kv;
    throughTransposes(kvK, kvPermK);
    throughTransposes(kvV, kvPermV);
    auto expand = kvK.getDefiningOp<tensor::ExpandShapeOp>();
    if (kvK != kvV || !isIdentityPermutation(kvPermK) ||
        !isIdentityPermutation(kvPermV) || !expand ||
        expand.getReassociationIndices() !=
            SmallVector<ReassociationIndices>{{0}, {1}, {2, 3}})
      return failure();
    int64_t heads = expand.getResultType().getDimSize(2);
    if (cast<RankedTensorType>(attn.getQ().getType()).getDimSize(2) != heads)
      return failure();
    // kv[b, s, n] = sum_c c_kv[b, s, c]·W[n, c], W the same for every b.
    std::optional<Contraction> proj = matchContraction(expand.getSrc());
    if (!proj || proj->rowPerm.size() != 3)
      return failure();
    auto [w, wReads] = copySource(proj->colOperand);
    SmallVector<int64_t> wDims =
        dimsReading(w, wReads, {proj->colPerm[1], proj->colPerm[2]});
    if (wDims.empty())
      return failure();
    // k_rope: k_pe [B, Sk, Dr] broadcast over the heads.
    auto [kpe, kpeReads] = copySource(kParts->second);
    SmallVector<int64_t> kpeDims =
        dimsReading(kpe, kpeReads, {kPerm[0], kPerm[1], kPerm[3]});
    if (kpe == kParts->second || kpeDims.empty())
      return failure();

    Location loc = attn.getLoc();
    LinalgBuilder e{rewriter, loc};
    Value qNope = transpose(e, qParts->first, qPerm);
    Value qPe = transpose(e, qParts->second, qPerm);
    Value cKv = transpose(e, proj->rowOperand, proj->rowPerm);
    Value kPe = keepDims(e, kpe, kpeDims);
    // W [H·(Dn + Dv), C] as [H, Dn + Dv, C], split per head.
    Value wNC = keepDims(e, w, wDims);
    int64_t c = cast<RankedTensorType>(wNC.getType()).getDimSize(1);
    Type elem = getElementTypeOrSelf(wNC);
    Value w3 = tensor::ExpandShapeOp::create(
        rewriter, loc, RankedTensorType::get({heads, dn + dv, c}, elem), wNC,
        SmallVector<ReassociationIndices>{{0, 1}, {2}});
    auto part = [&](int64_t lo, int64_t len) -> Value {
      return tensor::ExtractSliceOp::create(
          rewriter, loc, RankedTensorType::get({heads, len, c}, elem), w3,
          ValueRange{}, ValueRange{}, ValueRange{},
          rewriter.getDenseI64ArrayAttr({0, lo, 0}),
          rewriter.getDenseI64ArrayAttr({heads, len, c}),
          rewriter.getDenseI64ArrayAttr({1, 1, 1}));
    };
    Value mla = MlaAbsorbOp::create(
        rewriter, loc, attn.getResult().getType(), qNope, qPe, cKv, kPe,
        part(0, dn), part(dn, dv), attn.getScaleAttr(), attn.getCausalAttr());
    rewriter.replaceOp(attn, mla);
    return success();
  }
};

/// transpose(transpose(x)) as one transpose, or x: the raised ops'
/// layout transposes meet the importer's own.
struct FoldTransposeOfTranspose : OpRewritePattern<linalg::TransposeOp> {
  using OpRewritePattern::OpRewritePattern;

  LogicalResult matchAndRewrite(linalg::TransposeOp op,
                                PatternRewriter &rewriter) const override {
    auto prev = op.getInput().getDefiningOp<linalg::TransposeOp>();
    if (!op.hasPureTensorSemantics() || !prev || !prev.hasPureTensorSemantics())
      return failure();
    LinalgBuilder e{rewriter, op.getLoc()};
    Value folded = transpose(e, op.getInput(), op.getPermutation());
    rewriter.replaceOp(op, e.castTo(folded, op->getResult(0).getType()));
    return success();
  }
};

struct PosencRaisePass : posenc::impl::PosencRaisePassBase<PosencRaisePass> {
  void runOnOperation() override {
    RewritePatternSet patterns(&getContext());
    populatePosencRaisePatterns(patterns);
    if (failed(applyPatternsGreedily(getOperation(), std::move(patterns))))
      signalPassFailure();
  }
};
} // namespace

void mlir::posenc::populatePosencRaisePatterns(RewritePatternSet &patterns) {
  patterns.add<RaiseAttention, RaiseRope, RaisePairRope, RaisePartialRope,
               RaiseMla, FoldTransposeOfTranspose>(patterns.getContext());
}

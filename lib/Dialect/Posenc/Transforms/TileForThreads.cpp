//===- TileForThreads.cpp - top-level linalg ops as parallel chunks ------===//
//
// The ops outside attention (rope, the biases, a model's projections and
// elementwise math) run on threads as scf.forall chunks of one parallel
// loop dim. Only that dim is sliced: every operand indexed by it takes the
// chunk's slice, the others stay whole, and the op is cloned on the slices
// with its maps unchanged. (Upstream tiling slices every operand dim
// through its map, which goes wrong for maps such as rope's 1 - d, the
// partner of a rotated pair.)
//
//===----------------------------------------------------------------------===//

#include "posenc/Dialect/Posenc/Transforms/Passes.h"

#include "mlir/Dialect/Affine/IR/AffineOps.h"
#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/Dialect/Linalg/IR/Linalg.h"
#include "mlir/Dialect/SCF/IR/SCF.h"
#include "mlir/Dialect/Tensor/IR/Tensor.h"
#include "mlir/IR/PatternMatch.h"

namespace mlir::posenc {
#define GEN_PASS_DEF_POSENCTILEFORTHREADSPASS
#include "posenc/Dialect/Posenc/Transforms/Passes.h.inc"
} // namespace mlir::posenc

using namespace mlir;
using namespace mlir::posenc;

namespace {
constexpr int64_t kChunkAlign = 64;

/// Where loop dim `dim` is a whole result of `op`'s maps: (operand, result
/// position) pairs. Fails when `dim` appears inside a compound expression
/// or the body reads its index (a chunk would see local indices).
FailureOr<SmallVector<std::pair<OpOperand *, unsigned>>>
plainUses(linalg::LinalgOp op, unsigned dim) {
  SmallVector<std::pair<OpOperand *, unsigned>> uses;
  for (OpOperand &operand : op->getOpOperands()) {
    if (!isa<RankedTensorType>(operand.get().getType()))
      continue;
    AffineMap map = op.getMatchingIndexingMap(&operand);
    for (auto [pos, expr] : llvm::enumerate(map.getResults())) {
      if (!expr.isFunctionOfDim(dim))
        continue;
      auto d = dyn_cast<AffineDimExpr>(expr);
      if (!d)
        return failure();
      uses.push_back({&operand, unsigned(pos)});
    }
  }
  bool readsIndex = false;
  op->walk([&](linalg::IndexOp index) { readsIndex |= index.getDim() == dim; });
  if (readsIndex || uses.empty())
    return failure();
  // Every result must be chunked along `dim`.
  for (OpOperand &init : op.getDpsInitsMutable())
    if (!llvm::any_of(uses, [&](auto &u) { return u.first == &init; }))
      return failure();
  return uses;
}

using DimUses = SmallVector<std::pair<OpOperand *, unsigned>>;

/// The outermost parallel dim of `op` with a static size other than 1 that
/// every map uses plainly, and its uses.
std::optional<std::pair<unsigned, DimUses>> chunkedDim(linalg::LinalgOp op) {
  SmallVector<int64_t> ranges = op.getStaticLoopRanges();
  for (auto [d, type] : llvm::enumerate(op.getIteratorTypesArray())) {
    if (type != utils::IteratorType::parallel || ranges[d] == 1)
      continue;
    if (FailureOr<DimUses> uses = plainUses(op, d); succeeded(uses))
      return std::make_pair(unsigned(d), *uses);
  }
  return std::nullopt;
}

/// Whether `op` statically runs fewer than `minIterations` iterations (a
/// projection's count includes its reduction: one token's GEMV reads all
/// of W).
bool isSmall(linalg::LinalgOp op, int64_t minIterations) {
  int64_t count = 1;
  for (int64_t range : op.getStaticLoopRanges()) {
    if (ShapedType::isDynamic(range))
      return false;
    count *= range;
    if (count >= minIterations)
      return false;
  }
  return true;
}

/// `op` as an scf.forall over at most `chunks` chunks of the loop dim whose
/// plain uses are `uses`.
void chunk(RewriterBase &rewriter, linalg::LinalgOp op, const DimUses &uses,
           int64_t chunks) {
  Location loc = op.getLoc();
  rewriter.setInsertionPoint(op);
  OpFoldResult extent =
      tensor::getMixedSize(rewriter, loc, uses[0].first->get(), uses[0].second);
  AffineExpr s0 = rewriter.getAffineSymbolExpr(0),
             s1 = rewriter.getAffineSymbolExpr(1);
  // A multiple of kChunkAlign: the register blocks of the vectorized
  // matmuls (4 rows, 16 columns) and vector loops then cut each chunk where
  // they cut the whole op, so every element takes the same path, and the
  // same bits, as without chunks. At least kChunkAlign: an empty extent
  // would give a zero step, which the OpenMP lowering divides by.
  OpFoldResult step = affine::makeComposedFoldedAffineMax(
      rewriter, loc,
      AffineMap::get(0, 1,
                     {s0.ceilDiv(chunks).ceilDiv(kChunkAlign) * kChunkAlign,
                      rewriter.getAffineConstantExpr(kChunkAlign)},
                     rewriter.getContext()),
      {extent});
  SmallVector<Value> inits(op.getDpsInits());
  auto forall = scf::ForallOp::create(
      rewriter, loc, ArrayRef<OpFoldResult>{rewriter.getIndexAttr(0)},
      ArrayRef<OpFoldResult>{extent}, ArrayRef<OpFoldResult>{step}, inits,
      std::nullopt);
  rewriter.setInsertionPointToStart(forall.getBody());
  Value offset = forall.getInductionVars()[0];
  OpFoldResult size = affine::makeComposedFoldedAffineMin(
      rewriter, loc,
      AffineMap::get(0, 3, {s0, s1 - rewriter.getAffineSymbolExpr(2)},
                     rewriter.getContext()),
      {step, extent, offset});
  // The chunk of tensor `t` (or shared output) along its position `pos`.
  auto sliceParams = [&](Value t, unsigned pos,
                         SmallVector<OpFoldResult> &offsets,
                         SmallVector<OpFoldResult> &sizes) {
    auto ty = cast<RankedTensorType>(t.getType());
    offsets.assign(ty.getRank(), rewriter.getIndexAttr(0));
    sizes = tensor::getMixedSizes(rewriter, loc, t);
    offsets[pos] = offset;
    sizes[pos] = size;
  };
  SmallVector<Value> operands;
  for (OpOperand &operand : op->getOpOperands()) {
    Value v = operand.get();
    // Inits follow the inputs; each is the forall's shared output.
    if (op.isDpsInit(&operand))
      v = forall.getRegionIterArgs()[operand.getOperandNumber() -
                                     op.getNumDpsInputs()];
    auto use =
        llvm::find_if(uses, [&](auto &u) { return u.first == &operand; });
    if (use != uses.end()) {
      SmallVector<OpFoldResult> offsets, sizes;
      sliceParams(v, use->second, offsets, sizes);
      SmallVector<OpFoldResult> strides(offsets.size(),
                                        rewriter.getIndexAttr(1));
      v = tensor::ExtractSliceOp::create(rewriter, loc, v, offsets, sizes,
                                         strides);
    }
    operands.push_back(v);
  }
  SmallVector<Type> resultTypes;
  for (Value v : ArrayRef<Value>(operands).take_back(inits.size()))
    resultTypes.push_back(v.getType());
  Operation *tiled = clone(rewriter, op, resultTypes, operands);
  // Where each result goes, computed before the terminator (whose region
  // holds only the inserts).
  SmallVector<SmallVector<OpFoldResult>> insertOffsets, insertSizes;
  for (unsigned n = 0; n < tiled->getNumResults(); ++n) {
    OpOperand &init = op.getDpsInitsMutable()[n];
    auto use = llvm::find_if(uses, [&](auto &u) { return u.first == &init; });
    sliceParams(forall.getRegionIterArgs()[n], use->second,
                insertOffsets.emplace_back(), insertSizes.emplace_back());
  }
  rewriter.setInsertionPointToStart(forall.getTerminator().getBody());
  for (auto [n, result] : llvm::enumerate(tiled->getResults())) {
    SmallVector<OpFoldResult> strides(insertOffsets[n].size(),
                                      rewriter.getIndexAttr(1));
    tensor::ParallelInsertSliceOp::create(
        rewriter, loc, result, forall.getRegionIterArgs()[n], insertOffsets[n],
        insertSizes[n], strides);
  }
  rewriter.replaceOp(op, forall.getResults());
}

struct PosencTileForThreadsPass
    : posenc::impl::PosencTileForThreadsPassBase<PosencTileForThreadsPass> {
  using Base::Base;

  void runOnOperation() override {
    func::FuncOp fn = getOperation();
    if (chunks < 1 || minIterations < 0) {
      fn.emitError() << "posenc-tile-for-threads: chunks must be >= 1 and "
                        "min-iterations >= 0; got chunks="
                     << int64_t(chunks)
                     << " min-iterations=" << int64_t(minIterations);
      return signalPassFailure();
    }
    if (chunks == 1)
      return;
    SmallVector<std::pair<linalg::LinalgOp, DimUses>> ops;
    for (Block &block : fn.getBody())
      for (Operation &op : block)
        if (auto linalgOp = dyn_cast<linalg::LinalgOp>(&op))
          if (linalgOp.hasPureTensorSemantics() &&
              !isSmall(linalgOp, minIterations))
            if (auto dim = chunkedDim(linalgOp))
              ops.push_back({linalgOp, std::move(dim->second)});
    IRRewriter rewriter(&getContext());
    for (auto &[op, uses] : ops)
      chunk(rewriter, op, uses, chunks);
  }
};
} // namespace

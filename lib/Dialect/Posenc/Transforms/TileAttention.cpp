//===- TileAttention.cpp - the flash loop from attention's interfaces -----===//
//
// A driver over upstream tiling: attention tiled by scf::tileUsingSCF
// (TilingInterfaceImpl.cpp), each tile turned into online_attention
// (AggregatedOpInterfaceImpl.cpp), whose keys are tiled the same way. No
// attention math lives here.
//
//===----------------------------------------------------------------------===//

#include "posenc/Dialect/Posenc/IR/PosencOps.h"
#include "posenc/Dialect/Posenc/Transforms/BufferizableOpInterfaceImpl.h"
#include "posenc/Dialect/Posenc/Transforms/Passes.h"

#include "mlir/Dialect/Affine/IR/AffineOps.h"
#include "mlir/Dialect/Affine/ViewLikeInterfaceUtils.h"
#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Linalg/IR/Linalg.h"
#include "mlir/Dialect/Math/IR/Math.h"
#include "mlir/Dialect/MemRef/Transforms/Transforms.h"
#include "mlir/Dialect/SCF/IR/SCF.h"
#include "mlir/Dialect/SCF/Transforms/TileUsingInterface.h"
#include "mlir/Dialect/Tensor/IR/Tensor.h"
#include "mlir/Dialect/Tensor/Transforms/Transforms.h"
#include "mlir/IR/Dominance.h"
#include "mlir/IR/PatternMatch.h"
#include "mlir/Transforms/CSE.h"
#include "mlir/Transforms/GreedyPatternRewriteDriver.h"

namespace mlir::posenc {
#define GEN_PASS_DEF_POSENCTILEATTENTIONPASS
#include "posenc/Dialect/Posenc/Transforms/Passes.h.inc"
} // namespace mlir::posenc

using namespace mlir;
using namespace mlir::posenc;

namespace {
/// Tiles `op` with `sizes` (one per iteration dim) and replaces it; returns
/// the tiled ops (just `op` when every size is 0).
FailureOr<SmallVector<Operation *>> tile(RewriterBase &rewriter,
                                         TilingInterface op,
                                         ArrayRef<int64_t> sizes,
                                         bool parallel = false) {
  if (llvm::all_of(sizes, [](int64_t s) { return s == 0; }))
    return SmallVector<Operation *>{op};
  scf::SCFTilingOptions options;
  options.setTileSizes(getAsIndexOpFoldResult(rewriter.getContext(), sizes));
  if (parallel)
    options.setLoopType(scf::SCFTilingOptions::LoopType::ForallOp);
  rewriter.setInsertionPoint(op);
  FailureOr<scf::SCFTilingResult> tiled =
      scf::tileUsingSCF(rewriter, op, options);
  if (failed(tiled))
    return failure();
  rewriter.replaceOp(op, tiled->replacements);
  return tiled->tiledOps;
}

/// Split-K: `op`'s keys in chunks of `chunkKeys` keys, an scf.forall whose
/// iterations each keep their own partial state, merged after the loop (its
/// PartialReductionOpInterface through scf::tileUsingSCF); returns the
/// chunks' ops. A fixed chunk length (not count) keeps the merge, and so
/// the rounding, independent of the thread count, and short caches in one
/// chunk.
FailureOr<SmallVector<Operation *>>
splitKeys(RewriterBase &rewriter, OnlineAttentionOp op, int64_t chunkKeys) {
  SmallVector<OpFoldResult> sizes(6, rewriter.getIndexAttr(0));
  sizes[3] = rewriter.getIndexAttr(chunkKeys);
  scf::SCFTilingOptions options;
  options.setLoopType(scf::SCFTilingOptions::LoopType::ForallOp);
  options.setReductionTilingStrategy(
      ReductionTilingStrategy::PartialReductionOuterParallel);
  options.setReductionDims({3});
  options.setTileSizes(sizes);
  rewriter.setInsertionPoint(op);
  FailureOr<scf::SCFTilingResult> split = scf::tileUsingSCF(
      rewriter, cast<TilingInterface>(op.getOperation()), options);
  if (failed(split))
    return op.emitOpError()
           << "cannot split its keys into chunks of " << chunkKeys;
  rewriter.replaceOp(op, split->replacements);
  return split->tiledOps;
}

/// Split-K where the keys can fill more than one chunk: a static key count
/// of at most `chunkKeys` stays unsplit, and a dynamic one (a cache's used
/// length) is split under an scf.if on it, the unsplit op in the else
/// branch. A short cache then runs the one-thread code, with no parallel
/// region to start for a single chunk (a small model's every decode step
/// and layer), and the same bits as one thread. Returns the ops whose keys
/// remain to be tiled.
FailureOr<SmallVector<Operation *>>
splitLongKeys(RewriterBase &rewriter, OnlineAttentionOp op, int64_t chunkKeys) {
  Location loc = op.getLoc();
  rewriter.setInsertionPoint(op);
  OpFoldResult keys = cast<TilingInterface>(op.getOperation())
                          .getIterationDomain(rewriter)[3]
                          .size;
  std::optional<int64_t> staticKeys = getConstantIntValue(keys);
  if (staticKeys && *staticKeys <= chunkKeys)
    return SmallVector<Operation *>{op};
  if (staticKeys)
    return splitKeys(rewriter, op, chunkKeys);
  Value isLong = arith::CmpIOp::create(
      rewriter, loc, arith::CmpIPredicate::ugt,
      getValueOrCreateConstantIndexOp(rewriter, loc, keys),
      arith::ConstantIndexOp::create(rewriter, loc, chunkKeys));
  auto branch = scf::IfOp::create(rewriter, loc, op->getResultTypes(), isLong,
                                  /*withElseRegion=*/true);
  auto cloneInto = [&](Block *block) {
    rewriter.setInsertionPointToStart(block);
    Operation *copy = rewriter.clone(*op);
    scf::YieldOp::create(rewriter, loc, copy->getResults());
    return cast<OnlineAttentionOp>(copy);
  };
  OnlineAttentionOp split = cloneInto(branch.thenBlock());
  OnlineAttentionOp whole = cloneInto(branch.elseBlock());
  rewriter.replaceOp(op, branch.getResults());
  FailureOr<SmallVector<Operation *>> chunks =
      splitKeys(rewriter, split, chunkKeys);
  if (succeeded(chunks))
    chunks->push_back(whole);
  return chunks;
}

/// `slice` of a slice as one slice of the outer source (a key block of a
/// batch tile of K is a block of K), so that the producer of that source
/// can be fused; `slice` itself when its source is no slice.
tensor::ExtractSliceOp mergeWithOuterSlice(RewriterBase &rewriter,
                                           tensor::ExtractSliceOp slice) {
  while (auto outer =
             slice.getSource().getDefiningOp<tensor::ExtractSliceOp>()) {
    SmallVector<OpFoldResult> offsets, sizes, strides;
    rewriter.setInsertionPoint(slice);
    if (failed(affine::mergeOffsetsSizesAndStrides(
            rewriter, slice.getLoc(), outer, slice, outer.getDroppedDims(),
            offsets, sizes, strides)))
      break;
    slice = rewriter.replaceOpWithNewOp<tensor::ExtractSliceOp>(
        slice, slice.getType(), outer.getSource(), offsets, sizes, strides);
    // The outer slice would otherwise keep the whole producer alive.
    if (outer->use_empty())
      rewriter.eraseOp(outer);
  }
  return slice;
}

/// The slice of `reshape`'s source that `slice` of a tensor.expand_shape
/// reads, after upstream's bubble-up pattern moves the slice above the
/// reshape (a key block of [B, S, H, D] keys projected as [B·S, H·D]);
/// null when it does not apply.
tensor::ExtractSliceOp sliceAboveExpandShape(tensor::ExtractSliceOp slice) {
  if (!slice.getSource().getDefiningOp<tensor::ExpandShapeOp>() ||
      !slice->hasOneUse())
    return {};
  OpOperand &use = *slice->use_begin();
  RewritePatternSet patterns(slice.getContext());
  tensor::populateBubbleUpExtractSliceOpPatterns(patterns);
  GreedyRewriteConfig config;
  config.setStrictness(GreedyRewriteStrictness::ExistingOps);
  (void)applyOpPatternsGreedily({slice.getOperation()}, std::move(patterns),
                                config);
  auto expand = use.get().getDefiningOp<tensor::ExpandShapeOp>();
  return expand ? expand.getSrc().getDefiningOp<tensor::ExtractSliceOp>()
                : tensor::ExtractSliceOp();
}

/// The slices of `concat`'s inputs that `slice` of its result reads, when
/// the slice keeps the concatenated dim whole (a key block of keys joined
/// along the head dim, as [cached rotary dims | rebuilt others]): the
/// block is the concatenation of the inputs' blocks. Empty otherwise.
SmallVector<tensor::ExtractSliceOp>
sliceAboveConcat(RewriterBase &rewriter, tensor::ExtractSliceOp slice) {
  auto concat = slice.getSource().getDefiningOp<tensor::ConcatOp>();
  if (!concat || slice.getType().getRank() != concat.getType().getRank() ||
      !slice.hasUnitStride())
    return {};
  int64_t dim = concat.getDim();
  if (!isZeroInteger(slice.getMixedOffsets()[dim]) ||
      !isEqualConstantIntOrValue(
          slice.getMixedSizes()[dim],
          rewriter.getIndexAttr(concat.getType().getDimSize(dim))) ||
      concat.getType().isDynamicDim(dim))
    return {};
  rewriter.setInsertionPoint(slice);
  SmallVector<tensor::ExtractSliceOp> parts;
  SmallVector<Value> values;
  for (Value input : concat.getInputs()) {
    SmallVector<OpFoldResult> sizes = slice.getMixedSizes();
    sizes[dim] = rewriter.getIndexAttr(
        cast<RankedTensorType>(input.getType()).getDimSize(dim));
    auto part = tensor::ExtractSliceOp::create(rewriter, slice.getLoc(), input,
                                               slice.getMixedOffsets(), sizes,
                                               slice.getMixedStrides());
    parts.push_back(part);
    values.push_back(part);
  }
  rewriter.replaceOpWithNewOp<tensor::ConcatOp>(slice, slice.getType(), dim,
                                                values);
  return parts;
}

/// Decode reads each key block once, so K and V can be computed block by
/// block inside the key loop from their producers at no extra cost: keys
/// rebuilt from a compressed cache (posenc-compress-kv: rope(c·B_k), c·B_v)
/// are then expanded and rotated one block at a time and never stored
/// whole. Producers are fused through upstream tiling
/// (replaceExtractSliceWithTiledProducer) as long as they implement
/// TilingInterface (linalg, posenc.rope; through tensor.expand_shape and
/// tensor.concat along the head dim) and only slices read them; a
/// producer with another user is left alone, since fusing it would compute
/// it twice. Stops at anything else (the cache's insert_slice).
void fuseKeyValueProducers(RewriterBase &rewriter,
                           ArrayRef<OnlineAttentionOp> steps) {
  if (steps.empty())
    return;
  MLIRContext *ctx = steps.front()->getContext();
  // Sizes read from a whole producer (the loops' bounds) are taken from its
  // operands instead (ReifyRankedShapedTypeOpInterface), down to the
  // cache's length, so that they do not keep it alive.
  auto resolveDims = [&](Operation *producer) {
    SmallVector<Operation *> dims;
    for (Operation *user : producer->getUsers())
      if (isa<tensor::DimOp>(user))
        dims.push_back(user);
    RewritePatternSet patterns(ctx);
    memref::populateResolveRankedShapedTypeResultDimsPatterns(patterns);
    GreedyRewriteConfig config;
    config.setStrictness(GreedyRewriteStrictness::ExistingAndNewOps);
    (void)applyOpPatternsGreedily(dims, std::move(patterns), config);
  };
  // Erases `root` once nothing reads it, and then what only it read.
  auto eraseIfDead = [&](Operation *root) {
    // Nothing is created here, so an erased op's address is not reused.
    SmallVector<Operation *> dead = {root};
    llvm::DenseSet<Operation *> erased;
    while (!dead.empty()) {
      Operation *op = dead.pop_back_val();
      if (erased.contains(op) || !isOpTriviallyDead(op))
        continue;
      erased.insert(op);
      SmallVector<Value> operands(op->getOperands());
      rewriter.eraseOp(op);
      for (Value operand : operands)
        if (Operation *def = operand.getDefiningOp())
          dead.push_back(def);
    }
  };
  SmallVector<Operation *> loops;
  for (OnlineAttentionOp step : steps)
    loops.push_back(step->getParentOp());
  SmallVector<tensor::ExtractSliceOp> worklist, deferred;
  for (OnlineAttentionOp step : steps)
    for (Value t : {step.getK(), step.getV()})
      if (auto slice = t.getDefiningOp<tensor::ExtractSliceOp>())
        worklist.push_back(slice);
  for (bool progress = true; progress;) {
    progress = false;
    while (!worklist.empty()) {
      tensor::ExtractSliceOp slice =
          mergeWithOuterSlice(rewriter, worklist.pop_back_val());
      if (auto reshape =
              slice.getSource().getDefiningOp<tensor::ExpandShapeOp>()) {
        if (tensor::ExtractSliceOp above = sliceAboveExpandShape(slice)) {
          // (The bubbled slice's offsets read the reshape's sizes.)
          resolveDims(reshape);
          eraseIfDead(reshape);
          worklist.push_back(above);
          progress = true;
          continue;
        }
      }
      if (auto concat = slice.getSource().getDefiningOp<tensor::ConcatOp>()) {
        SmallVector<tensor::ExtractSliceOp> parts =
            sliceAboveConcat(rewriter, slice);
        if (!parts.empty()) {
          resolveDims(concat);
          eraseIfDead(concat);
          worklist.append(parts.begin(), parts.end());
          progress = true;
          continue;
        }
      }
      // A block of a fused producer's init: a block-sized buffer per key
      // block, not a slice of one as large as the whole K.
      if (auto empty = slice.getSource().getDefiningOp<tensor::EmptyOp>()) {
        if (slice.getType().getRank() == empty.getType().getRank()) {
          rewriter.setInsertionPoint(slice);
          rewriter.replaceOpWithNewOp<tensor::EmptyOp>(
              slice, slice.getMixedSizes(), slice.getType().getElementType());
          resolveDims(empty);
          eraseIfDead(empty);
        }
        continue;
      }
      auto result = dyn_cast<OpResult>(slice.getSource());
      if (!result || !isa<TilingInterface>(result.getOwner()) ||
          !isa<linalg::LinalgOp, RopeOp>(result.getOwner()))
        continue;
      Operation *producer = result.getOwner();
      // A rope whose scaling reads the largest position of the run stays
      // whole.
      if (auto rope = dyn_cast<RopeOp>(producer))
        if (rope.getScalingOrNone().dependsOnPositions())
          continue;
      resolveDims(producer);
      // Only what these key loops alone read: another reader (the other of
      // K and V, or the other branch of a split, not fused yet) may go away
      // later, retried when nothing else is left; a reader elsewhere (a
      // result, another attention) would have it computed twice.
      if (!llvm::all_of(producer->getUsers(), [&](Operation *user) {
            return isa<tensor::ExtractSliceOp>(user) &&
                   llvm::any_of(loops, [&](Operation *loop) {
                     return loop->isProperAncestor(user);
                   });
          })) {
        deferred.push_back(slice);
        continue;
      }
      rewriter.setInsertionPoint(slice);
      FailureOr<TilingResult> tiled;
      {
        // A producer that refuses this tile (a rope asked for part of its
        // head dim) stays whole; its reason is not an error of the input.
        ScopedDiagnosticHandler quiet(ctx,
                                      [](Diagnostic &) { return success(); });
        tiled = tensor::replaceExtractSliceWithTiledProducer(rewriter, slice,
                                                             result);
      }
      if (failed(tiled))
        continue;
      rewriter.replaceOp(slice, tiled->tiledValues[0]);
      eraseIfDead(producer);
      progress = true;
      for (Operation *generated : tiled->generatedSlices)
        if (auto next = dyn_cast<tensor::ExtractSliceOp>(generated))
          worklist.push_back(next);
    }
    std::swap(worklist, deferred);
  }
  // A block read twice in one loop body (K = V, or a latent both K and V
  // are rebuilt from) was fused at each read: computed once.
  DominanceInfo dominance;
  for (Operation *loop : loops)
    eliminateCommonSubExpressions(rewriter, dominance, loop);
}

struct PosencTileAttentionPass
    : posenc::impl::PosencTileAttentionPassBase<PosencTileAttentionPass> {
  using Base::Base;

  void runOnOperation() override {
    if (tileSizes.size() > 3 ||
        llvm::any_of(tileSizes, [](int64_t s) { return s < 0; }) ||
        keyTile <= 0 || maxQueries < 0 || tileRows < 0 || keyChunk < 0) {
      InFlightDiagnostic diag =
          getOperation()->emitError()
          << "posenc-tile-attention: tile-sizes must be at most 3 sizes >= 0 "
             "(batch, query heads, queries), key-tile > 0 and max-queries >= "
             "0, tile-rows >= 0, key-chunk >= 0; got tile-sizes=[";
      llvm::interleaveComma(tileSizes, diag);
      diag << "] key-tile=" << int64_t(keyTile)
           << " key-chunk=" << int64_t(keyChunk)
           << " max-queries=" << int64_t(maxQueries)
           << " tile-rows=" << int64_t(tileRows);
      return signalPassFailure();
    }
    AttentionTiling tiling;
    tiling.outer.assign(tileSizes.begin(), tileSizes.end());
    tiling.rows = tileRows;
    tiling.keys = keyTile;
    tiling.parallel = parallel;
    tiling.keyChunk = keyChunk;
    SmallVector<AttentionOp> ops;
    getOperation()->walk([&](AttentionOp op) {
      int64_t sq = op.getQ().getType().getDimSize(1);
      if (isTileable(op) &&
          (maxQueries == 0 || (!ShapedType::isDynamic(sq) && sq <= maxQueries)))
        ops.push_back(op);
    });
    IRRewriter rewriter(&getContext());
    for (AttentionOp op : ops)
      if (failed(tileAttention(rewriter, op, tiling)))
        return signalPassFailure();
  }
};
} // namespace

bool mlir::posenc::isTileable(AttentionOp op) {
  // Ops the decomposition cannot take (dynamic head counts, or a dynamic
  // Dk and no scale) stay: the lowering names them.
  if (op.getQ().getType().isDynamicDim(2) ||
      op.getK().getType().isDynamicDim(2) || !op.getScaleOrDefault())
    return false;
  // A static empty dim: slices of it do not verify (offset 0 of size 0);
  // the decomposition returns the empty or zero result directly.
  for (Value t : {op.getQ(), op.getK(), op.getV()})
    if (llvm::is_contained(cast<ShapedType>(t.getType()).getShape(), 0))
      return false;
  return true;
}

LogicalResult mlir::posenc::tileAttention(RewriterBase &rewriter,
                                          AttentionOp op,
                                          const AttentionTiling &tiling) {
  // The buffer form is tiled as its tensor form.
  op = convertToTensorForm(rewriter, op);
  SmallVector<int64_t> sizes = tiling.outer;
  sizes.resize(6, 0);
  FailureOr<SmallVector<Operation *>> tiles;
  bool decode = false;
  if (tiling.rows > 0) {
    int64_t group =
        op.getQ().getType().getDimSize(2) / op.getK().getType().getDimSize(2);
    int64_t queries = std::max<int64_t>(1, tiling.rows / group);
    // A query tile holding every query stays untiled: its size stays
    // static (decode's few rows take the row-major step), and K and V are
    // read in place. Heads are not tiled either: each key block then
    // covers every kv head of its keys, a contiguous stretch of the cache
    // (the step's decomposition loops over the kv heads inside it), where
    // a loop over heads outside would read each cache page in Hkv strided
    // pieces, one pass per head.
    int64_t sq = op.getQ().getType().getDimSize(1);
    if (!ShapedType::isDynamic(sq) && sq <= queries) {
      decode = true;
      tiles = tile(rewriter, cast<TilingInterface>(op.getOperation()),
                   {1, 0, 0, 0, 0, 0}, tiling.parallel && tiling.keyChunk == 0);
    } else {
      // Several query tiles read each kv head: first tiles of one batch
      // and kv head, whose K and V are copied into contiguous blocks
      // (rows of one head lie Hkv·D elements apart in the inputs: a page
      // per row for 16 heads of 64, and the same L1 sets), then query
      // tiles of those.
      FailureOr<SmallVector<Operation *>> heads =
          tile(rewriter, cast<TilingInterface>(op.getOperation()),
               {1, group, 0, 0, 0, 0}, tiling.parallel);
      if (failed(heads))
        return failure();
      tiles.emplace();
      for (Operation *h : *heads) {
        auto head = cast<AttentionOp>(h);
        rewriter.setInsertionPoint(head);
        auto copy = [&](Value t) -> Value {
          auto ty = cast<RankedTensorType>(t.getType());
          Value empty = tensor::EmptyOp::create(
              rewriter, head.getLoc(),
              tensor::getMixedSizes(rewriter, head.getLoc(), t),
              ty.getElementType());
          return linalg::CopyOp::create(rewriter, head.getLoc(), t, empty)
              .getResult(0);
        };
        Value k = copy(head.getK());
        Value v = head.getV() == head.getK() ? k : copy(head.getV());
        rewriter.modifyOpInPlace(head, [&] {
          head.getKMutable().assign(k);
          head.getVMutable().assign(v);
        });
        FailureOr<SmallVector<Operation *>> rows =
            tile(rewriter, cast<TilingInterface>(head.getOperation()),
                 {0, 0, queries, 0, 0, 0});
        if (failed(rows))
          return failure();
        tiles->append(rows->begin(), rows->end());
      }
    }
  } else {
    tiles = tile(rewriter, cast<TilingInterface>(op.getOperation()), sizes,
                 tiling.parallel);
  }
  if (failed(tiles))
    return failure();
  SmallVector<int64_t> keys = {0, 0, 0, tiling.keys, 0, 0};
  SmallVector<OnlineAttentionOp> blocks;
  for (Operation *t : *tiles) {
    FailureOr<OnlineAttentionOp> online =
        convertToOnlineAttention(rewriter, cast<AttentionOp>(t));
    if (failed(online))
      return t->emitOpError() << "cannot be tiled along keys: it needs a "
                                 "static number of heads, and a static key "
                                 "head dim or a scale";
    SmallVector<Operation *> steps = {*online};
    if (decode && tiling.keyChunk > 0) {
      FailureOr<SmallVector<Operation *>> chunks =
          splitLongKeys(rewriter, *online, tiling.keyChunk);
      if (failed(chunks))
        return failure();
      steps = *chunks;
    }
    for (Operation *step : steps) {
      FailureOr<SmallVector<Operation *>> tiled =
          tile(rewriter, cast<TilingInterface>(step), keys);
      if (failed(tiled))
        return failure();
      for (Operation *block : *tiled)
        blocks.push_back(cast<OnlineAttentionOp>(block));
    }
  }
  // All blocks at once: a producer is fused only when every loop that
  // reads it takes it (both branches of a split).
  if (decode)
    fuseKeyValueProducers(rewriter, blocks);
  return success();
}

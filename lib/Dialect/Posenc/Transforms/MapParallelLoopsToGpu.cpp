//===- MapParallelLoopsToGpu.cpp - posenc-map-parallel-loops-to-gpu -------===//
//
// scf.parallel (i0, ..., in) -> one dim (row-major), tiled by T:
//   outer (tile index) -> block x
//   inner (tile)       -> thread x
// Host copies between strided buffers become such loops first (a device
// memcpy moves contiguous bytes only), and parallel loops nested under a
// sequential loop become sequential loops (convert-parallel-loops-to-gpu
// maps none of them and would leave the whole nest on the host).
//
//===----------------------------------------------------------------------===//

#include "posenc/Dialect/Posenc/Transforms/Passes.h"

#include "mlir/Dialect/Affine/IR/AffineOps.h"
#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/Dialect/GPU/IR/GPUDialect.h"
#include "mlir/Dialect/GPU/Transforms/ParallelLoopMapper.h"
#include "mlir/Dialect/MemRef/IR/MemRef.h"
#include "mlir/Dialect/SCF/IR/SCF.h"
#include "mlir/Dialect/SCF/Transforms/Transforms.h"
#include "mlir/Dialect/SCF/Utils/Utils.h"
#include "mlir/IR/PatternMatch.h"
#include "llvm/Support/CheckedArithmetic.h"

#include <numeric>

namespace mlir::posenc {
#define GEN_PASS_DEF_POSENCMAPPARALLELLOOPSTOGPUPASS
#include "posenc/Dialect/Posenc/Transforms/Passes.h.inc"
} // namespace mlir::posenc

using namespace mlir;

namespace {
using gpu::Processor;

gpu::ParallelLoopDimMappingAttr dimMapping(MLIRContext *ctx, Processor p) {
  AffineMap id = AffineMap::getMultiDimIdentityMap(1, ctx);
  return gpu::ParallelLoopDimMappingAttr::get(ctx, p, id, id);
}

/// Marks every dim of `loop` and of the parallel loops nested in it as
/// sequential, but for `mapped` (dim -> processor) of `loop` itself.
LogicalResult mapLoop(scf::ParallelOp loop,
                      ArrayRef<std::pair<unsigned, Processor>> mapped) {
  MLIRContext *ctx = loop.getContext();
  SmallVector<gpu::ParallelLoopDimMappingAttr> attrs(
      loop.getNumLoops(), dimMapping(ctx, Processor::Sequential));
  for (auto [dim, p] : mapped)
    attrs[dim] = dimMapping(ctx, p);
  return gpu::setMappingAttr(loop, attrs);
}

/// memref.copy between buffers of which one is strided -> an scf.parallel
/// nest of loads and stores over the shape.
void expandStridedCopy(IRRewriter &rewriter, memref::CopyOp copy) {
  rewriter.setInsertionPoint(copy);
  Location loc = copy.getLoc();
  Value source = copy.getSource(), target = copy.getTarget();
  auto type = cast<MemRefType>(source.getType());
  Value zero = arith::ConstantIndexOp::create(rewriter, loc, 0);
  Value one = arith::ConstantIndexOp::create(rewriter, loc, 1);
  SmallVector<Value> lbs, ubs, steps;
  for (int64_t d = 0; d < type.getRank(); ++d) {
    lbs.push_back(zero);
    steps.push_back(one);
    ubs.push_back(memref::DimOp::create(rewriter, loc, source, d));
  }
  if (type.getRank() == 0) {
    Value v = memref::LoadOp::create(rewriter, loc, source, ValueRange{});
    memref::StoreOp::create(rewriter, loc, v, target, ValueRange{});
  } else {
    scf::ParallelOp::create(rewriter, loc, lbs, ubs, steps,
                            [&](OpBuilder &b, Location l, ValueRange ivs) {
                              Value v =
                                  memref::LoadOp::create(b, l, source, ivs);
                              memref::StoreOp::create(b, l, v, target, ivs);
                            });
  }
  rewriter.eraseOp(copy);
}

/// A parallel loop without reductions -> nested scf.for loops, the body
/// moved into the innermost.
void sequentialize(IRRewriter &rewriter, scf::ParallelOp loop) {
  rewriter.setInsertionPoint(loop);
  SmallVector<Value> ivs;
  Block *innermost = nullptr;
  for (unsigned d = 0; d < loop.getNumLoops(); ++d) {
    auto f =
        scf::ForOp::create(rewriter, loop.getLoc(), loop.getLowerBound()[d],
                           loop.getUpperBound()[d], loop.getStep()[d]);
    ivs.push_back(f.getInductionVar());
    innermost = f.getBody();
    rewriter.setInsertionPointToStart(innermost);
  }
  Block *body = loop.getBody();
  rewriter.eraseOp(body->getTerminator());
  rewriter.inlineBlockBefore(body, innermost->getTerminator(), ivs);
  rewriter.eraseOp(loop);
}

struct PosencMapParallelLoopsToGpuPass
    : posenc::impl::PosencMapParallelLoopsToGpuPassBase<
          PosencMapParallelLoopsToGpuPass> {
  using Base::Base;

  void runOnOperation() override {
    if (threads < 1 || threads > 1024) {
      getOperation()->emitError()
          << "posenc-map-parallel-loops-to-gpu needs 1 <= threads <= 1024, "
             "got threads="
          << int64_t(threads);
      return signalPassFailure();
    }
    IRRewriter rewriter(&getContext());
    SmallVector<memref::CopyOp> strided;
    getOperation()->walk([&](memref::CopyOp copy) {
      if (!copy->getParentOfType<gpu::LaunchOp>() &&
          !posenc::isContiguousCopy(copy.getSource(), copy.getTarget()))
        strided.push_back(copy);
    });
    for (memref::CopyOp copy : strided)
      expandStridedCopy(rewriter, copy);
    SmallVector<scf::ParallelOp> outermost;
    getOperation()->walk<WalkOrder::PreOrder>([&](scf::ParallelOp op) {
      if (op->getParentOfType<gpu::LaunchOp>())
        return WalkResult::skip();
      outermost.push_back(op);
      return WalkResult::skip();
    });
    for (scf::ParallelOp op : outermost)
      if (failed(map(rewriter, op)))
        return signalPassFailure();
  }

  LogicalResult map(IRRewriter &rewriter, scf::ParallelOp op) {
    // No more threads than the static trip count (unknown when a bound is
    // dynamic or the count does not fit in 64 bits).
    std::optional<int64_t> trips = 1;
    for (unsigned d = 0; d < op.getNumLoops() && trips; ++d) {
      std::optional<int64_t> lb = getConstantIntValue(op.getLowerBound()[d]),
                             ub = getConstantIntValue(op.getUpperBound()[d]),
                             step = getConstantIntValue(op.getStep()[d]);
      std::optional<int64_t> span = lb && ub && step && *step > 0
                                        ? llvm::checkedSub(*ub, *lb)
                                        : std::nullopt;
      if (!span) {
        trips = std::nullopt;
        break;
      }
      int64_t count = *span <= 0 ? 0 : (*span - 1) / *step + 1;
      trips = llvm::checkedMul(*trips, count);
    }
    int64_t tile = threads;
    if (trips)
      tile = std::max<int64_t>(1, std::min<int64_t>(tile, *trips));
    // All dims as one, in row-major order: consecutive threads take
    // consecutive iterations of the last (contiguous) dim and run on into
    // the next row, so a block is `threads` wide however short that dim is
    // (RoPE's halves of 64 gave 64-thread blocks, 2M of them).
    if (op.getNumLoops() > 1) {
      std::vector<unsigned> all(op.getNumLoops());
      std::iota(all.begin(), all.end(), 0);
      Operation *next = op->getNextNode();
      collapseParallelLoops(rewriter, op, {all});
      // The collapsed loop replaces `op` where it stood.
      op = dyn_cast_or_null<scf::ParallelOp>(next->getPrevNode());
      if (!op)
        return failure();
    }
    auto [outer, inner] =
        scf::tileParallelLoop(op, {tile}, /*noMinMaxBounds=*/true);
    if (failed(mapLoop(outer, {{0, Processor::BlockX}})) ||
        failed(mapLoop(inner, {{0, Processor::ThreadX}})))
      return failure();
    // Nested parallel loops run sequentially inside a thread: as scf.for
    // (innermost first, so each is rewritten once).
    SmallVector<scf::ParallelOp> nested;
    scf::ParallelOp tileLoop = inner;
    tileLoop.walk([&](scf::ParallelOp loop) {
      if (loop != tileLoop && loop.getInitVals().empty())
        nested.push_back(loop);
      else if (loop != tileLoop)
        (void)mapLoop(loop, {});
    });
    for (scf::ParallelOp loop : nested)
      sequentialize(rewriter, loop);
    return success();
  }
};
} // namespace

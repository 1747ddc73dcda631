//===- MapParallelLoopsToGpu.cpp - posenc-map-parallel-loops-to-gpu -------===//
//
// scf.parallel (i0, ..., in) -> tiled by T along in, then mapped:
//   outer (i0..in-1 collapsed, in / T) -> (block x, block y)
//   inner (tile of in)                 -> thread x
//
//===----------------------------------------------------------------------===//

#include "posenc/Dialect/Posenc/Transforms/Passes.h"

#include "mlir/Dialect/Affine/IR/AffineOps.h"
#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/Dialect/GPU/IR/GPUDialect.h"
#include "mlir/Dialect/GPU/Transforms/ParallelLoopMapper.h"
#include "mlir/Dialect/SCF/IR/SCF.h"
#include "mlir/Dialect/SCF/Transforms/Transforms.h"
#include "mlir/Dialect/SCF/Utils/Utils.h"
#include "mlir/IR/PatternMatch.h"

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
    SmallVector<scf::ParallelOp> outermost;
    getOperation()->walk<WalkOrder::PreOrder>([&](scf::ParallelOp op) {
      outermost.push_back(op);
      return WalkResult::skip();
    });
    IRRewriter rewriter(&getContext());
    for (scf::ParallelOp op : outermost)
      if (failed(map(rewriter, op)))
        return signalPassFailure();
  }

  LogicalResult map(IRRewriter &rewriter, scf::ParallelOp op) {
    unsigned n = op.getNumLoops();
    // Threads along the last dim: no more than its static trip count.
    int64_t tile = threads;
    std::optional<int64_t> lb = getConstantIntValue(op.getLowerBound()[n - 1]),
                           ub = getConstantIntValue(op.getUpperBound()[n - 1]),
                           step = getConstantIntValue(op.getStep()[n - 1]);
    if (lb && ub && step && *step > 0)
      tile = std::max<int64_t>(
          1, std::min<int64_t>(tile, (*ub - *lb + *step - 1) / *step));
    SmallVector<int64_t> sizes(n, 1);
    sizes[n - 1] = tile;
    auto [outer, inner] =
        scf::tileParallelLoop(op, sizes, /*noMinMaxBounds=*/true);
    // The other dims as one block dim: a grid has three, a loop any number.
    if (n > 2) {
      std::vector<unsigned> rest(n - 1);
      std::iota(rest.begin(), rest.end(), 0);
      collapseParallelLoops(rewriter, outer, {rest, {n - 1}});
      // Collapsing replaces the loop; find it again as the inner's parent.
      outer = inner->getParentOfType<scf::ParallelOp>();
    }
    unsigned outerDims = outer.getNumLoops();
    SmallVector<std::pair<unsigned, Processor>> outerMap = {
        {outerDims - 1, Processor::BlockY}};
    if (outerDims > 1)
      outerMap.push_back({0, Processor::BlockX});
    if (failed(mapLoop(outer, outerMap)) ||
        failed(mapLoop(inner, {{n - 1, Processor::ThreadX}})))
      return failure();
    scf::ParallelOp tileLoop = inner;
    tileLoop.walk([&](scf::ParallelOp nested) {
      if (nested != tileLoop)
        (void)mapLoop(nested, {});
    });
    return success();
  }
};
} // namespace

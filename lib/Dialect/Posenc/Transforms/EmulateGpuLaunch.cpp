//===- EmulateGpuLaunch.cpp - posenc-emulate-gpu-launch -------------------===//
//
// gpu.launch blocks(bx, by, bz) threads(tx, ty, tz) { body }
//   -> for bz, by, bx, tz, ty, tx: body
//
// Only for kernels whose threads never synchronize or share memory: then
// running the threads one after another computes what the GPU does.
//
//===----------------------------------------------------------------------===//

#include "posenc/Dialect/Posenc/Transforms/Passes.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/Dialect/GPU/IR/GPUDialect.h"
#include "mlir/Dialect/SCF/IR/SCF.h"
#include "mlir/IR/IRMapping.h"

namespace mlir::posenc {
#define GEN_PASS_DEF_POSENCEMULATEGPULAUNCHPASS
#include "posenc/Dialect/Posenc/Transforms/Passes.h.inc"
} // namespace mlir::posenc

using namespace mlir;

namespace {
/// Why `launch` cannot run thread by thread, or empty.
std::string unsupported(gpu::LaunchOp launch) {
  if (!launch.getBody().hasOneBlock())
    return "its body has more than one block";
  if (launch.getAsyncToken() || !launch.getAsyncDependencies().empty())
    return "it is asynchronous";
  if (!launch.getWorkgroupAttributions().empty() ||
      !launch.getPrivateAttributions().empty() ||
      launch.getDynamicSharedMemorySize())
    return "it has shared or private memory";
  std::string reason;
  launch.getBody().walk([&](Operation *op) {
    if (isa<gpu::BarrierOp, gpu::ShuffleOp, gpu::AllReduceOp,
            gpu::SubgroupReduceOp, gpu::DynamicSharedMemoryOp>(op)) {
      reason = "it uses " + op->getName().getStringRef().str();
      return WalkResult::interrupt();
    }
    return WalkResult::advance();
  });
  return reason;
}

struct PosencEmulateGpuLaunchPass
    : posenc::impl::PosencEmulateGpuLaunchPassBase<PosencEmulateGpuLaunchPass> {
  void runOnOperation() override {
    SmallVector<gpu::LaunchOp> launches;
    getOperation().walk([&](gpu::LaunchOp op) { launches.push_back(op); });
    for (gpu::LaunchOp launch : launches) {
      std::string reason = unsupported(launch);
      if (!reason.empty()) {
        launch.emitOpError() << "posenc-emulate-gpu-launch: threads cannot "
                                "run one after another: "
                             << reason;
        return signalPassFailure();
      }
      emulate(launch);
    }
  }

  /// Loops over the grid, then the block, in z, y, x order; the body is
  /// cloned innermost with the ids and sizes bound to loop values.
  static void emulate(gpu::LaunchOp launch) {
    OpBuilder b(launch);
    Location loc = launch.getLoc();
    Value zero = arith::ConstantIndexOp::create(b, loc, 0);
    Value one = arith::ConstantIndexOp::create(b, loc, 1);
    gpu::KernelDim3 grid = launch.getGridSizeOperandValues();
    gpu::KernelDim3 block = launch.getBlockSizeOperandValues();
    SmallVector<Value> bounds = {grid.z,  grid.y,  grid.x,
                                 block.z, block.y, block.x};
    SmallVector<Value> ivs;
    for (Value bound : bounds) {
      auto loop = scf::ForOp::create(b, loc, zero, bound, one);
      ivs.push_back(loop.getInductionVar());
      b.setInsertionPoint(loop.getBody()->getTerminator());
    }
    IRMapping map;
    gpu::KernelDim3 blockIds = launch.getBlockIds(),
                    threadIds = launch.getThreadIds(),
                    gridSizes = launch.getGridSize(),
                    blockSizes = launch.getBlockSize();
    map.map(blockIds.z, ivs[0]);
    map.map(blockIds.y, ivs[1]);
    map.map(blockIds.x, ivs[2]);
    map.map(threadIds.z, ivs[3]);
    map.map(threadIds.y, ivs[4]);
    map.map(threadIds.x, ivs[5]);
    map.map(gridSizes.x, grid.x);
    map.map(gridSizes.y, grid.y);
    map.map(gridSizes.z, grid.z);
    map.map(blockSizes.x, block.x);
    map.map(blockSizes.y, block.y);
    map.map(blockSizes.z, block.z);
    for (Operation &op : launch.getBody().front().without_terminator())
      b.clone(op, map);
    launch.erase();
  }
};
} // namespace

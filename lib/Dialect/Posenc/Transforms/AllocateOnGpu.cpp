//===- AllocateOnGpu.cpp - posenc-allocate-on-gpu -------------------------===//

#include "posenc/Dialect/Posenc/Transforms/Passes.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/Dialect/GPU/IR/GPUDialect.h"
#include "mlir/Dialect/MemRef/IR/MemRef.h"
#include "mlir/IR/PatternMatch.h"

namespace mlir::posenc {
#define GEN_PASS_DEF_POSENCALLOCATEONGPUPASS
#include "posenc/Dialect/Posenc/Transforms/Passes.h.inc"
} // namespace mlir::posenc

using namespace mlir;

namespace {
struct PosencAllocateOnGpuPass
    : posenc::impl::PosencAllocateOnGpuPassBase<PosencAllocateOnGpuPass> {
  void runOnOperation() override {
    func::FuncOp func = getOperation();
    bool launches = false;
    func.walk([&](Operation *op) {
      if (isa<gpu::LaunchOp, gpu::LaunchFuncOp>(op))
        launches = true;
    });
    if (!launches)
      return;
    // Host-side ops only: kernel bodies keep their own (private) memory.
    SmallVector<Operation *> ops;
    func.walk([&](Operation *op) {
      if (op->getParentOfType<gpu::LaunchOp>())
        return;
      if (isa<memref::AllocOp, memref::DeallocOp, memref::CopyOp,
              memref::GetGlobalOp>(op))
        ops.push_back(op);
    });
    IRRewriter rewriter(&getContext());
    for (Operation *op : ops) {
      rewriter.setInsertionPoint(op);
      Location loc = op->getLoc();
      if (auto alloc = dyn_cast<memref::AllocOp>(op)) {
        if (!alloc.getSymbolOperands().empty()) {
          alloc.emitOpError("posenc-allocate-on-gpu: symbol operands of an "
                            "allocation are not supported on the device");
          return signalPassFailure();
        }
        auto gpuAlloc = gpu::AllocOp::create(
            rewriter, loc, alloc.getType(), /*asyncToken=*/Type(),
            /*asyncDependencies=*/ValueRange{}, alloc.getDynamicSizes(),
            /*symbolOperands=*/ValueRange{}, /*hostShared=*/false);
        rewriter.replaceOp(alloc, gpuAlloc.getMemref());
      } else if (auto global = dyn_cast<memref::GetGlobalOp>(op)) {
        // A constant table in host memory: copy it to the device once per
        // call, free it before the function returns.
        rewriter.setInsertionPointAfter(global);
        auto copy = gpu::AllocOp::create(rewriter, loc, global.getType(),
                                         Type(), ValueRange{}, ValueRange{},
                                         ValueRange{}, /*hostShared=*/false);
        rewriter.replaceAllUsesExcept(global.getResult(), copy.getMemref(),
                                      copy);
        gpu::MemcpyOp::create(rewriter, loc, Type(), ValueRange{},
                              copy.getMemref(), global.getResult());
        for (Block &block : func.getBody())
          if (auto ret = dyn_cast<func::ReturnOp>(block.getTerminator())) {
            if (llvm::is_contained(ret.getOperands(), copy.getMemref()))
              continue;
            rewriter.setInsertionPoint(ret);
            gpu::DeallocOp::create(rewriter, loc, Type(), ValueRange{},
                                   copy.getMemref());
          }
      } else if (auto dealloc = dyn_cast<memref::DeallocOp>(op)) {
        gpu::DeallocOp::create(rewriter, loc, /*asyncToken=*/Type(),
                               ValueRange{}, dealloc.getMemref());
        rewriter.eraseOp(dealloc);
      } else {
        auto copy = cast<memref::CopyOp>(op);
        gpu::MemcpyOp::create(rewriter, loc, /*asyncToken=*/Type(),
                              ValueRange{}, copy.getTarget(), copy.getSource());
        rewriter.eraseOp(copy);
      }
    }
  }
};
} // namespace

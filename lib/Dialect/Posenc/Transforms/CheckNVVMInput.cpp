//===- CheckNVVMInput.cpp - posenc-check-nvvm-input -----------------------===//

#include "posenc/Dialect/Posenc/Transforms/Passes.h"

#include "posenc/Dialect/Posenc/IR/PosencOps.h"

#include "mlir/IR/BuiltinOps.h"

namespace mlir::posenc {
#define GEN_PASS_DEF_POSENCCHECKNVVMINPUTPASS
#include "posenc/Dialect/Posenc/Transforms/Passes.h.inc"
} // namespace mlir::posenc

using namespace mlir;
using namespace mlir::posenc;

namespace {
struct PosencCheckNVVMInputPass
    : posenc::impl::PosencCheckNVVMInputPassBase<PosencCheckNVVMInputPass> {
  void runOnOperation() override {
    WalkResult result =
        getOperation()->walk([&](Operation *op) {
          if (!isa<AttentionOp, MlaAbsorbOp>(op))
            return WalkResult::advance();
          op->emitOpError()
              << "is not lowered by posenc-lower-to-nvvm yet (no GPU attention "
                 "kernel); posenc-lower-to-cpu lowers it";
          return WalkResult::interrupt();
        });
    if (result.wasInterrupted())
      signalPassFailure();
  }
};
} // namespace

//===- CheckCPUInput.cpp - posenc-check-cpu-input
//--------------------------===//

#include "posenc/Dialect/Posenc/Transforms/Passes.h"

#include "mlir/IR/BuiltinOps.h"
#include "llvm/ADT/StringExtras.h"
#include "llvm/ADT/StringSet.h"

namespace mlir::posenc {
#define GEN_PASS_DEF_POSENCCHECKCPUINPUTPASS
#include "posenc/Dialect/Posenc/Transforms/Passes.h.inc"
} // namespace mlir::posenc

using namespace mlir;

namespace {
/// Dialects whose ops posenc's pipelines lower to LLVM (host or GPU).
constexpr llvm::StringLiteral kLowerable[] = {
    "builtin",       "func",    "arith", "math",   "tensor", "linalg",
    "bufferization", "memref",  "scf",   "cf",     "affine", "index",
    "vector",        "complex", "llvm",  "posenc", "ub",
};

struct PosencCheckCPUInputPass
    : posenc::impl::PosencCheckCPUInputPassBase<PosencCheckCPUInputPass> {
  using Base::Base;

  void runOnOperation() override {
    llvm::StringSet<> lowerable;
    for (StringRef name : kLowerable)
      lowerable.insert(name);
    WalkResult result =
        getOperation()->walk<WalkOrder::PreOrder>([&](Operation *op) {
          StringRef dialect = op->getName().getDialectNamespace();
          if (lowerable.contains(dialect))
            return WalkResult::advance();
          InFlightDiagnostic diag =
              op->emitOpError() << "cannot be lowered by " << pipeline;
          if (!op->getName().isRegistered())
            diag << " (unregistered dialect '" << dialect << "')";
          else
            diag << ": lower the '" << dialect
                 << "' dialect to linalg, tensor, arith and math first";
          diag.attachNote()
              << pipeline << " lowers the "
              << llvm::join(ArrayRef<llvm::StringLiteral>(kLowerable), ", ")
              << " dialects";
          return WalkResult::interrupt();
        });
    if (result.wasInterrupted())
      signalPassFailure();
  }
};
} // namespace

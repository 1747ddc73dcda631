//===- ReadOnlyArguments.cpp - posenc-read-only-arguments -----------------===//

#include "posenc/Dialect/Posenc/Transforms/Passes.h"

#include "mlir/Dialect/Bufferization/IR/Bufferization.h"
#include "mlir/Dialect/Func/IR/FuncOps.h"

namespace mlir::posenc {
#define GEN_PASS_DEF_POSENCREADONLYARGUMENTSPASS
#include "posenc/Dialect/Posenc/Transforms/Passes.h.inc"
} // namespace mlir::posenc

using namespace mlir;

namespace {
struct PosencReadOnlyArgumentsPass
    : posenc::impl::PosencReadOnlyArgumentsPassBase<
          PosencReadOnlyArgumentsPass> {
  void runOnOperation() override {
    StringRef name = bufferization::BufferizationDialect::kWritableAttrName;
    BoolAttr readOnly = BoolAttr::get(&getContext(), false);
    getOperation().walk([&](func::FuncOp func) {
      if (func.isExternal())
        return;
      for (unsigned i = 0, e = func.getNumArguments(); i < e; ++i)
        if (isa<TensorType>(func.getArgument(i).getType()) &&
            !func.getArgAttr(i, name))
          func.setArgAttr(i, name, readOnly);
    });
  }
};
} // namespace

//===- DecomposeAttention.cpp - attention ops through decomposeOperation --===//
//
// A driver over linalg::AggregatedOpInterface: the math lives in the ops'
// decompositions (AggregatedOpInterfaceImpl.cpp), not here.
//
//===----------------------------------------------------------------------===//

#include "posenc/Dialect/Posenc/IR/PosencOps.h"
#include "posenc/Dialect/Posenc/Transforms/Passes.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Linalg/IR/Linalg.h"
#include "mlir/Dialect/Math/IR/Math.h"
#include "mlir/Dialect/Tensor/IR/Tensor.h"
#include "mlir/IR/PatternMatch.h"

namespace mlir::posenc {
#define GEN_PASS_DEF_POSENCDECOMPOSEATTENTIONPASS
#include "posenc/Dialect/Posenc/Transforms/Passes.h.inc"
} // namespace mlir::posenc

using namespace mlir;
using namespace mlir::posenc;

namespace {
struct PosencDecomposeAttentionPass
    : posenc::impl::PosencDecomposeAttentionPassBase<
          PosencDecomposeAttentionPass> {
  void runOnOperation() override {
    IRRewriter rewriter(&getContext());
    // attention first: its decomposition creates online_attention ops.
    for (bool online : {false, true}) {
      SmallVector<Operation *> ops;
      getOperation()->walk([&](Operation *op) {
        if (online ? isa<OnlineAttentionOp>(op) : isa<AttentionOp>(op))
          ops.push_back(op);
      });
      for (Operation *op : ops) {
        rewriter.setInsertionPoint(op);
        FailureOr<SmallVector<Value>> values =
            cast<linalg::AggregatedOpInterface>(op).decomposeOperation(
                rewriter);
        if (failed(values)) {
          op->emitOpError() << "cannot be decomposed: it needs a static "
                               "number of heads, and a static key head dim "
                               "or a scale";
          return signalPassFailure();
        }
        rewriter.replaceOp(op, *values);
      }
    }
  }
};
} // namespace

//===- CheckCPUInput.cpp - posenc-check-cpu-input
//--------------------------===//

#include "posenc/Dialect/Posenc/Transforms/Passes.h"

#include "posenc/Dialect/Posenc/IR/PosencOps.h"

#include "mlir/Dialect/Linalg/IR/Linalg.h"
#include "mlir/Dialect/MemRef/IR/MemRef.h"
#include "mlir/Dialect/Tensor/IR/Tensor.h"
#include "mlir/IR/BuiltinOps.h"
#include "mlir/IR/TypeUtilities.h"
#include "llvm/ADT/StringExtras.h"
#include "llvm/ADT/StringSet.h"

namespace mlir::posenc {
#define GEN_PASS_DEF_POSENCCHECKCPUINPUTPASS
#include "posenc/Dialect/Posenc/Transforms/Passes.h.inc"
} // namespace mlir::posenc

using namespace mlir;

namespace {
/// Dialects whose ops posenc's pipelines lower to LLVM (host or GPU);
/// x86vector: the CPU pipeline's bf16 dot products (posenc-vectorize-matmul
/// run ahead of it).
constexpr llvm::StringLiteral kLowerable[] = {
    "builtin",       "func",    "arith", "math",   "tensor", "linalg",
    "bufferization", "memref",  "scf",   "cf",     "affine", "index",
    "vector",        "complex", "llvm",  "posenc", "ub",     "x86vector",
};

/// Reassociation indices of a reshape that lie outside its expanded rank.
/// Upstream's verifiers check them as 32-bit affine dims, so 2^32 passes as
/// 0 and later crashes the reshape folders that read them as 64-bit.
template <typename ReshapeOp>
static bool checkReassociation(ReshapeOp op, int64_t expandedRank) {
  for (const ReassociationIndices &group : op.getReassociationIndices())
    for (int64_t d : group)
      if (d < 0 || d >= expandedRank) {
        op.emitOpError() << "reassociation index " << d
                         << " is outside the expanded rank " << expandedRank;
        return false;
      }
  return true;
}

/// A constant dim index outside the operand's rank: upstream verifies it
/// (a run-time index) but its folders read the shape at it.
template <typename DimOp> static bool checkDimIndex(DimOp op) {
  std::optional<int64_t> index = op.getConstantIndex();
  auto type = dyn_cast<ShapedType>(op.getSource().getType());
  if (!index || !type || !type.hasRank() ||
      (*index >= 0 && *index < type.getRank()))
    return true;
  op.emitOpError() << "dim index " << *index << " is outside the rank "
                   << type.getRank() << " of its operand";
  return false;
}

static bool checkUpstreamOp(Operation *op) {
  if (auto d = dyn_cast<tensor::DimOp>(op))
    return checkDimIndex(d);
  if (auto d = dyn_cast<memref::DimOp>(op))
    return checkDimIndex(d);
  if (auto e = dyn_cast<tensor::ExpandShapeOp>(op))
    return checkReassociation(e, e.getResultType().getRank());
  if (auto c = dyn_cast<tensor::CollapseShapeOp>(op))
    return checkReassociation(c, c.getSrcType().getRank());
  if (auto e = dyn_cast<memref::ExpandShapeOp>(op))
    return checkReassociation(e, e.getResultType().getRank());
  if (auto c = dyn_cast<memref::CollapseShapeOp>(op))
    return checkReassociation(c, c.getSrcType().getRank());
  return true;
}

struct PosencCheckCPUInputPass
    : posenc::impl::PosencCheckCPUInputPassBase<PosencCheckCPUInputPass> {
  using Base::Base;

  void runOnOperation() override {
    llvm::StringSet<> lowerable;
    for (StringRef name : kLowerable)
      lowerable.insert(name);
    WalkResult result =
        getOperation()->walk<WalkOrder::PreOrder>([&](Operation *op) {
          // The pipeline's passes run on the top-level module's functions;
          // a nested module would be left half lowered.
          if (isa<ModuleOp>(op) && op != getOperation()) {
            op->emitOpError()
                << "is nested in the module " << pipeline
                << " lowers, which only lowers the top-level module's "
                   "functions: move them to the top level, or run it on the "
                   "nested module (--pass-pipeline='builtin.module("
                   "builtin.module("
                << pipeline << "))')";
            return WalkResult::interrupt();
          }
          if (f32Attention &&
              isa<posenc::AttentionOp, posenc::OnlineAttentionOp,
                  posenc::MlaAbsorbOp>(op) &&
              llvm::any_of(op->getOperandTypes(), [](Type t) {
                return mlir::getElementTypeOrSelf(t).isF64();
              })) {
            op->emitOpError()
                << "cannot be lowered by " << pipeline
                << ": its attention kernel computes in f32; f64 attention "
                   "(computed in f64) runs on the CPU pipeline "
                   "(posenc-lower-to-cpu)";
            return WalkResult::interrupt();
          }
          // One-shot bufferization gives a tensor built inside a linalg
          // body no buffer of its own: the result is silently wrong.
          if (llvm::any_of(op->getResultTypes(), llvm::IsaPred<TensorType>) &&
              op->getParentOfType<linalg::LinalgOp>()) {
            op->emitOpError()
                << "builds a tensor inside the body of a linalg op, which "
                << pipeline
                << " cannot bufferize: compute it before the linalg op (a "
                   "body may read tensors defined above it with "
                   "tensor.extract)";
            return WalkResult::interrupt();
          }
          StringRef dialect = op->getName().getDialectNamespace();
          if (lowerable.contains(dialect))
            return checkUpstreamOp(op) ? WalkResult::advance()
                                       : WalkResult::interrupt();
          InFlightDiagnostic diag = op->emitOpError()
                                    << "cannot be lowered by " << pipeline;
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

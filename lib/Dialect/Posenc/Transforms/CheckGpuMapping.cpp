//===- CheckGpuMapping.cpp - posenc-check-gpu-mapping ---------------------===//

#include "posenc/Dialect/Posenc/Transforms/Passes.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/Dialect/GPU/IR/GPUDialect.h"
#include "mlir/Dialect/MemRef/IR/MemRef.h"
#include "mlir/Dialect/MemRef/Utils/MemRefUtils.h"
#include "mlir/Dialect/SCF/IR/SCF.h"
#include "mlir/Interfaces/SideEffectInterfaces.h"

namespace mlir::posenc {
#define GEN_PASS_DEF_POSENCCHECKGPUMAPPINGPASS
#include "posenc/Dialect/Posenc/Transforms/Passes.h.inc"
} // namespace mlir::posenc

using namespace mlir;

static bool isContiguous(Value buffer) {
  auto type = cast<MemRefType>(buffer.getType());
  return type.getLayout().isIdentity() ||
         memref::isStaticShapeAndContiguousRowMajor(type);
}

bool mlir::posenc::isContiguousCopy(Value source, Value target) {
  return isContiguous(source) && isContiguous(target);
}

namespace {

/// Why `op`, in host code, cannot run there; empty when it can. With
/// `emulated`, host buffers are host memory: only what the device
/// pipeline would also leave on the host counts.
StringRef hostAccess(Operation *op, bool emulated) {
  if (isa<scf::ParallelOp>(op))
    return "is a parallel loop nest that was not mapped to a GPU kernel";
  if (auto copy = dyn_cast<memref::CopyOp>(op))
    return posenc::isContiguousCopy(copy.getSource(), copy.getTarget())
               ? StringRef()
               : "copies between strided buffers on the host";
  if (emulated || isa<gpu::GPUDialect>(op->getDialect()))
    return {};
  auto effects = dyn_cast<MemoryEffectOpInterface>(op);
  if (!effects)
    return {};
  SmallVector<MemoryEffects::EffectInstance> list;
  effects.getEffects(list);
  for (const MemoryEffects::EffectInstance &e : list) {
    Value v = e.getValue();
    if (!v || !isa<MemRefType>(v.getType()))
      continue;
    if (isa<MemoryEffects::Read>(e.getEffect()))
      return "reads buffer elements on the host";
    if (isa<MemoryEffects::Write>(e.getEffect()))
      return "writes buffer elements on the host";
  }
  return {};
}

struct PosencCheckGpuMappingPass
    : posenc::impl::PosencCheckGpuMappingPassBase<PosencCheckGpuMappingPass> {
  using Base::Base;

  void runOnOperation() override {
    func::FuncOp func = getOperation();
    bool launches = false;
    func.walk([&](gpu::LaunchOp) { launches = true; });
    if (!launches && !emulated)
      return;
    bool failed = false;
    func.walk<WalkOrder::PreOrder>([&](Operation *op) {
      if (isa<gpu::LaunchOp>(op))
        return WalkResult::skip();
      StringRef why = hostAccess(op, emulated);
      if (why.empty())
        return WalkResult::advance();
      op->emitOpError() << why
                        << ": the GPU pipeline leaves it outside every kernel, "
                           "where buffers are device memory";
      failed = true;
      return WalkResult::skip();
    });
    if (failed)
      signalPassFailure();
  }
};
} // namespace

//===- Pipelines.h - posenc lowering pipelines ------------------*- C++ -*-===//

#ifndef POSENC_PIPELINES_PIPELINES_H
#define POSENC_PIPELINES_PIPELINES_H

#include "mlir/Pass/PassOptions.h"

namespace mlir {
class OpPassManager;
namespace posenc {

/// Options of `posenc-lower-to-cpu`.
struct PosencToCPUPipelineOptions
    : public PassPipelineOptions<PosencToCPUPipelineOptions> {
  PassOptions::Option<bool> fuseElementwise{
      *this, "fuse-elementwise",
      llvm::cl::desc("Fuse producer/consumer elementwise linalg ops before "
                     "bufferization"),
      llvm::cl::init(true)};
};

/// posenc ops on tensors to the LLVM dialect for the host CPU: posenc to
/// linalg, bufferization with deallocation, loops, LLVM.
void buildPosencToCPUPipeline(OpPassManager &pm,
                              const PosencToCPUPipelineOptions &options);

/// Registers `posenc-lower-to-cpu`.
void registerPosencPipelines();

} // namespace posenc
} // namespace mlir

#endif // POSENC_PIPELINES_PIPELINES_H

//===- Stages.h - stages shared by posenc's pipelines -----------*- C++ -*-===//

#ifndef POSENC_LIB_PIPELINES_STAGES_H
#define POSENC_LIB_PIPELINES_STAGES_H

namespace mlir {
class OpPassManager;
namespace posenc::detail {

/// One-shot bufferization with identity-layout function boundaries,
/// ownership-based deallocation, clones as memref ops.
void addBufferStage(OpPassManager &pm);

} // namespace posenc::detail
} // namespace mlir

#endif // POSENC_LIB_PIPELINES_STAGES_H

//===- Stages.h - stages shared by posenc's pipelines -----------*- C++ -*-===//

#ifndef POSENC_LIB_PIPELINES_STAGES_H
#define POSENC_LIB_PIPELINES_STAGES_H

#include "posenc/Conversion/Passes.h"
#include "posenc/Pipelines/Pipelines.h"

#include <cstdint>

namespace mlir {
class OpPassManager;
namespace posenc::stages {

/// insert-shape-checks, canonicalize, fold-constants.
void addChecksAndFolds(OpPassManager &pm, int64_t foldMaxElements);

/// convert-posenc-to-linalg, elementwise-to-linalg, canonicalize, cse.
void addLinalgStage(OpPassManager &pm,
                    const ConvertPosencToLinalgPassOptions &lowering);

/// One-shot bufferization with identity-layout function boundaries,
/// ownership-based deallocation, clones as memref ops.
void addBufferStage(OpPassManager &pm);

/// Buffers -> loops -> LLVM for the host (the last stage of
/// posenc-lower-to-cpu; also what posenc-lower-to-nvvm{emulate=true} ends
/// with).
void addHostLLVMStage(OpPassManager &pm,
                      const PosencToCPUPipelineOptions &options);

} // namespace posenc::stages
} // namespace mlir

#endif // POSENC_LIB_PIPELINES_STAGES_H

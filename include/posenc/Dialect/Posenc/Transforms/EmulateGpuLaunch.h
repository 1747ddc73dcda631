//===- EmulateGpuLaunch.h - run a gpu.launch on the host --------*- C++ -*-===//
//
// The host emulation of GPU kernels that posenc-emulate-gpu-launch and the
// attention kernel's `emulate` option share (EmulateGpuLaunch.cpp).
//
//===----------------------------------------------------------------------===//

#ifndef POSENC_DIALECT_POSENC_TRANSFORMS_EMULATEGPULAUNCH_H
#define POSENC_DIALECT_POSENC_TRANSFORMS_EMULATEGPULAUNCH_H

#include "mlir/Dialect/GPU/IR/GPUDialect.h"

namespace mlir::posenc {

/// Replaces `launch` by host loops that compute what the GPU computes: the
/// grid's blocks one after another, and in each block the threads in
/// lockstep between barriers and warp collectives (gpu.barrier,
/// gpu.shuffle, nvgpu.mma.sync, nvgpu.ldmatrix), those computed for the 32
/// lanes of each warp as the PTX ISA specifies. Shared memory and the
/// per-thread values that live across a synchronization point are host
/// buffers allocated before the loops; with `deallocate` they are freed
/// after them (leave it false when buffer deallocation runs later).
/// Reports on `launch` and fails, leaving it in place, when it cannot be
/// emulated (see the pass description).
LogicalResult emulateGpuLaunch(gpu::LaunchOp launch, bool deallocate);

} // namespace mlir::posenc

#endif // POSENC_DIALECT_POSENC_TRANSFORMS_EMULATEGPULAUNCH_H

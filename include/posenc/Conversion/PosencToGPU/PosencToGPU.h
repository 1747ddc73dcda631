//===- PosencToGPU.h - posenc to GPU kernels --------------------*- C++ -*-===//

#ifndef POSENC_CONVERSION_POSENCTOGPU_POSENCTOGPU_H
#define POSENC_CONVERSION_POSENCTOGPU_POSENCTOGPU_H

#include "mlir/Pass/Pass.h"

namespace mlir {
namespace func {
class FuncOp;
} // namespace func
namespace posenc {

#define GEN_PASS_DECL_CONVERTPOSENCATTENTIONTOGPUPASS
#include "posenc/Conversion/Passes.h.inc"

} // namespace posenc
} // namespace mlir

#endif // POSENC_CONVERSION_POSENCTOGPU_POSENCTOGPU_H

//===- Passes.h - posenc conversion passes ----------------------*- C++ -*-===//

#ifndef POSENC_CONVERSION_PASSES_H
#define POSENC_CONVERSION_PASSES_H

#include "posenc/Conversion/PosencToGPU/PosencToGPU.h"
#include "posenc/Conversion/PosencToLinalg/PosencToLinalg.h"

namespace mlir::posenc {

#define GEN_PASS_REGISTRATION
#include "posenc/Conversion/Passes.h.inc"

} // namespace mlir::posenc

#endif // POSENC_CONVERSION_PASSES_H

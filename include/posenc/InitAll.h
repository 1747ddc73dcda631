//===- InitAll.h - register everything posenc provides ----------*- C++ -*-===//

#ifndef POSENC_INITALL_H
#define POSENC_INITALL_H

#include "mlir/IR/DialectRegistry.h"

namespace mlir::posenc {

/// Adds the posenc dialect to `registry`.
void registerPosencDialects(DialectRegistry &registry);

/// Registers every posenc pass and pipeline with the global registry.
void registerPosencPasses();

} // namespace mlir::posenc

#endif // POSENC_INITALL_H

//===- InitAll.h - register everything posenc provides ----------*- C++ -*-===//

#ifndef POSENC_INITALL_H
#define POSENC_INITALL_H

#include "mlir/IR/DialectRegistry.h"

namespace mlir::posenc {

/// Adds the posenc dialect to `registry`, with the external interface
/// models of its ops (tiling, decomposition, bufferization).
void registerPosencDialects(DialectRegistry &registry);

/// Adds every upstream dialect and extension the posenc pipelines produce or
/// need (func, arith, linalg, bufferization and its interface models, scf,
/// vector, LLVM, OpenMP, GPU, NVVM, ...) and the LLVM IR translations of the
/// JIT. A tool that parses posenc IR and runs posenc-lower-to-cpu or
/// posenc-lower-to-nvvm needs this and `registerPosencDialects`; without it
/// parsing fails with "Dialect `func' not found" or lowering with "op was
/// not bufferized".
void registerPosencPipelineDependencies(DialectRegistry &registry);

/// Both of the above: everything a posenc compiler's context needs.
void registerAllPosencDialects(DialectRegistry &registry);

/// Registers every posenc pass and pipeline with the global registry.
void registerPosencPasses();

} // namespace mlir::posenc

#endif // POSENC_INITALL_H

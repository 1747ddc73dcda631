//===- Passes.h - posenc dialect passes -------------------------*- C++ -*-===//

#ifndef POSENC_DIALECT_POSENC_TRANSFORMS_PASSES_H
#define POSENC_DIALECT_POSENC_TRANSFORMS_PASSES_H

#include "mlir/Pass/Pass.h"
#include "posenc/Dialect/Posenc/IR/PosencAttrs.h"

namespace mlir {
class RewriterBase;
namespace posenc {
class MlaAbsorbOp;

/// The forms of posenc-decompose-mla.
enum class MlaDecomposition { automatic, naive, absorbed };

#define GEN_PASS_DECL
#include "posenc/Dialect/Posenc/Transforms/Passes.h.inc"

/// Replaces `op` by its naive or absorbed form (`automatic` is resolved by
/// the caller). Fails when a needed dim is dynamic.
LogicalResult decomposeMla(RewriterBase &rewriter, MlaAbsorbOp op,
                           MlaDecomposition form);

#define GEN_PASS_REGISTRATION
#include "posenc/Dialect/Posenc/Transforms/Passes.h.inc"

} // namespace posenc
} // namespace mlir

#endif // POSENC_DIALECT_POSENC_TRANSFORMS_PASSES_H

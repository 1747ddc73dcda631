//===- Passes.h - posenc dialect passes -------------------------*- C++ -*-===//

#ifndef POSENC_DIALECT_POSENC_TRANSFORMS_PASSES_H
#define POSENC_DIALECT_POSENC_TRANSFORMS_PASSES_H

#include "mlir/Pass/Pass.h"
#include "posenc/Dialect/Posenc/IR/PosencAttrs.h"

namespace mlir {
class RewriterBase;
namespace posenc {
class AttentionOp;
class MlaAbsorbOp;
class OnlineAttentionOp;

/// The forms of posenc-decompose-mla.
enum class MlaDecomposition { automatic, naive, absorbed };

#define GEN_PASS_DECL
#include "posenc/Dialect/Posenc/Transforms/Passes.h.inc"

/// The naive or absorbed form of `op` (`automatic` is resolved by the
/// caller), built at `builder`'s insertion point; `op` stays. Fails when a
/// needed dim is dynamic. The naive form is MlaAbsorbOp's
/// `decomposeOperation`.
FailureOr<Value> buildMlaDecomposition(OpBuilder &builder, MlaAbsorbOp op,
                                       MlaDecomposition form);

/// Replaces `op` by buildMlaDecomposition's form.
LogicalResult decomposeMla(RewriterBase &rewriter, MlaAbsorbOp op,
                           MlaDecomposition form);

/// Replaces `op` by posenc.online_attention from the state (0, -inf, 0)
/// followed by acc / sum (its decomposition), and returns the
/// online_attention op. Fails when the op cannot be decomposed (dynamic
/// head counts, or a dynamic Dk and no scale).
FailureOr<OnlineAttentionOp> convertToOnlineAttention(RewriterBase &rewriter,
                                                      AttentionOp op);

#define GEN_PASS_REGISTRATION
#include "posenc/Dialect/Posenc/Transforms/Passes.h.inc"

} // namespace posenc
} // namespace mlir

#endif // POSENC_DIALECT_POSENC_TRANSFORMS_PASSES_H

//===- Passes.h - posenc dialect passes -------------------------*- C++ -*-===//

#ifndef POSENC_DIALECT_POSENC_TRANSFORMS_PASSES_H
#define POSENC_DIALECT_POSENC_TRANSFORMS_PASSES_H

#include "mlir/Pass/Pass.h"
#include "posenc/Dialect/Posenc/IR/PosencAttrs.h"

namespace mlir {
class RewriterBase;
class RewritePatternSet;
namespace posenc {
class AttentionOp;
class MlaAbsorbOp;
class OnlineAttentionOp;

/// Whether a device memcpy can copy `source` to `target`: both buffers
/// contiguous (posenc-map-parallel-loops-to-gpu turns other copies into
/// loops, posenc-check-gpu-mapping rejects any left on the host).
bool isContiguousCopy(Value source, Value target);

/// The forms of posenc-decompose-mla.
enum class MlaDecomposition { automatic, naive, absorbed };

#define GEN_PASS_DECL
#include "posenc/Dialect/Posenc/Transforms/Passes.h.inc"

/// posenc-raise's patterns: softmax(scale·Q·Kᵀ + bias)·V on linalg to
/// posenc.attention, Hugging Face-style RoPE to posenc.rope.
void populatePosencRaisePatterns(RewritePatternSet &patterns);

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

/// How attention is tiled into the FlashAttention loop: `outer` sizes of
/// (batch, query heads, queries) (0: untiled), or, when `rows` > 0, tiles
/// of one batch, the G query heads of one kv head and max(1, rows / G)
/// queries; each tile becomes online_attention tiled by `keys` keys.
/// With `parallel`, the outermost tiles (with `rows`: one per batch and kv
/// head, or per batch for decode) are an scf.forall, whose iterations
/// share nothing and may run on different threads; else an scf.for. With
/// `keyChunk` > 0, decode's keys (all queries in one tile) are split into
/// chunks of that many keys (split-K, flash-decoding): an scf.forall of
/// partial states (acc, max, sum) merged after it, each chunk a loop over
/// key blocks; the batch loop is then an scf.for.
struct AttentionTiling {
  SmallVector<int64_t> outer;
  int64_t rows = 0;
  int64_t keys = 64;
  bool parallel = false;
  int64_t keyChunk = 0;
};

/// Whether tileAttention takes `op`: static head counts, a static Dk or a
/// scale, and no static empty dim.
bool isTileable(AttentionOp op);

/// Replaces `op` (tensor or buffer form) by its tiles (TilingInterface),
/// each an online_attention loop over key blocks followed by acc / sum.
LogicalResult tileAttention(RewriterBase &rewriter, AttentionOp op,
                            const AttentionTiling &tiling);

/// One online-softmax step of `op` on linalg (its decomposition), built
/// at the rewriter's insertion point; the values replace `op`'s results.
/// A step over one batch and one kv head is built directly; any other is
/// first tiled into such steps through its TilingInterface, with
/// `rewriter`. Fails for dynamic head counts, or a dynamic Dk and no scale.
FailureOr<SmallVector<Value>> decomposeOnlineAttention(RewriterBase &rewriter,
                                                       OnlineAttentionOp op);

#define GEN_PASS_REGISTRATION
#include "posenc/Dialect/Posenc/Transforms/Passes.h.inc"

} // namespace posenc
} // namespace mlir

#endif // POSENC_DIALECT_POSENC_TRANSFORMS_PASSES_H

//===- TiledAttention.h - flash-style lowering of attention -----*- C++ -*-===//
//
// Internal to convert-posenc-to-linalg.
//
//===----------------------------------------------------------------------===//

#ifndef LIB_CONVERSION_POSENCTOLINALG_TILEDATTENTION_H
#define LIB_CONVERSION_POSENCTOLINALG_TILEDATTENTION_H

#include "mlir/Support/LLVM.h"

#include <cstdint>

namespace mlir {
class RewritePatternSet;
class RewriterBase;
namespace posenc {
class AttentionOp;

/// What both attention lowerings need to know statically: the GQA group
/// size Hq/Hkv and the score scale. Fails (with a match-failure reason)
/// when the head counts are dynamic, or Dk is and no scale is given.
LogicalResult getAttentionShape(RewriterBase &rewriter, AttentionOp op,
                                int64_t &group, double &scale);

/// posenc.attention -> tiled online-softmax loops (query tiles of `tileQ`
/// rows, key tiles of `tileK` keys).
void populateTiledAttentionLoweringPattern(RewritePatternSet &patterns,
                                           int64_t tileQ, int64_t tileK);

} // namespace posenc
} // namespace mlir

#endif // LIB_CONVERSION_POSENCTOLINALG_TILEDATTENTION_H

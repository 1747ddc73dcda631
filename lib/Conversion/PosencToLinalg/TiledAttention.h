//===- TiledAttention.h - flash-style lowering of attention -----*- C++ -*-===//
//
// Internal to convert-posenc-to-linalg.
//
//===----------------------------------------------------------------------===//

#ifndef LIB_CONVERSION_POSENCTOLINALG_TILEDATTENTION_H
#define LIB_CONVERSION_POSENCTOLINALG_TILEDATTENTION_H

#include <cstdint>

namespace mlir {
class RewritePatternSet;
namespace posenc {

/// posenc.attention -> tiled online-softmax loops (query tiles of `tileQ`
/// rows, key tiles of `tileK` keys).
void populateTiledAttentionLoweringPattern(RewritePatternSet &patterns,
                                           int64_t tileQ, int64_t tileK);

} // namespace posenc
} // namespace mlir

#endif // LIB_CONVERSION_POSENCTOLINALG_TILEDATTENTION_H

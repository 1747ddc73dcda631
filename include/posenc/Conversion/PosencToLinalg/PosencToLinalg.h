//===- PosencToLinalg.h - posenc to linalg conversion -----------*- C++ -*-===//

#ifndef POSENC_CONVERSION_POSENCTOLINALG_POSENCTOLINALG_H
#define POSENC_CONVERSION_POSENCTOLINALG_POSENCTOLINALG_H

#include "mlir/Pass/Pass.h"

namespace mlir {
class RewritePatternSet;
namespace posenc {

#define GEN_PASS_DECL_CONVERTPOSENCTOLINALGPASS
#include "posenc/Conversion/Passes.h.inc"

/// Adds the patterns that rewrite every posenc op into linalg, tensor,
/// arith, math and scf ops on tensors. Attention is tiled with the given
/// tile sizes unless `materializeAttention`.
void populatePosencToLinalgConversionPatterns(
    RewritePatternSet &patterns, int64_t attentionTileQ = 32,
    int64_t attentionTileK = 64, bool materializeAttention = false);

} // namespace posenc
} // namespace mlir

#endif // POSENC_CONVERSION_POSENCTOLINALG_POSENCTOLINALG_H

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
/// arith, math and scf ops on tensors. Attention and online_attention lower
/// as their decompositions (tile attention first, as
/// convert-posenc-to-linalg does, to bound its memory).
void populatePosencToLinalgConversionPatterns(RewritePatternSet &patterns);

} // namespace posenc
} // namespace mlir

#endif // POSENC_CONVERSION_POSENCTOLINALG_POSENCTOLINALG_H

//===- RopeFrequencies.h - rotary frequencies in float64 --------*- C++ -*-===//
//
// The frequency tables of posenc.rope, computed in float64 from the op's
// attributes. Shared by the lowerings and the folders so that every path
// agrees on ω to the last bit.
//
//===----------------------------------------------------------------------===//

#ifndef POSENC_DIALECT_POSENC_IR_ROPEFREQUENCIES_H
#define POSENC_DIALECT_POSENC_IR_ROPEFREQUENCIES_H

#include "posenc/Dialect/Posenc/IR/PosencAttrs.h"
#include "llvm/ADT/SmallVector.h"

namespace mlir::posenc {

/// ω_i = base^(-2i/R) for i < R/2.
llvm::SmallVector<double> unscaledRopeFrequencies(double base, int64_t rotary);

/// Column d of a posenc.sinusoidal table at position p: sin(p·omega +
/// phase), with phase = π/2 for a cosine and omega = phase = 0 for a zero
/// column, so every element is one sine.
struct SinusoidalColumn {
  double omega = 0.0;
  double phase = 0.0;
};

/// The D columns of posenc.sinusoidal under `convention` and `layout` (the
/// op's description gives the formulas). Callers verify D first.
llvm::SmallVector<SinusoidalColumn>
sinusoidalColumns(SinusoidalConvention convention, RopeLayout layout,
                  int64_t dim, double base);

/// The frequencies of `scaling` for the kinds that do not depend on the
/// positions of the run (none, linear, ntk, yarn, llama3). For `longrope`,
/// `useLong` selects the table; `dynamic` is rejected (use
/// dynamicNtkBase at run time).
llvm::SmallVector<double> staticRopeFrequencies(RopeScalingAttr scaling,
                                                double base, int64_t rotary,
                                                bool useLong = false);

/// The frequencies of any scaling kind for a run whose largest position is
/// `maxPosition` (which `dynamic` and `longrope` depend on).
llvm::SmallVector<double> ropeFrequenciesForRun(RopeScalingAttr scaling,
                                                double base, int64_t rotary,
                                                int64_t maxPosition);

/// The attention factor that `scaling` implies when the op gives none
/// (yarn's mscale ratio, longrope's sqrt term, else 1).
double defaultRopeAttentionFactor(RopeScalingAttr scaling);

} // namespace mlir::posenc

#endif // POSENC_DIALECT_POSENC_IR_ROPEFREQUENCIES_H

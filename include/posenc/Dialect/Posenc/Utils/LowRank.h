//===- LowRank.h - truncated SVD of a constant matrix -----------*- C++ -*-===//
//
// The best rank-R approximation of a matrix (Eckart–Young), computed by
// Eigen's divide-and-conquer SVD in float64. posenc-compress-kv factors
// key/value projection weights with it; the Python API exposes it so that
// posenc.models builds its compressed decoders from the same factors.
//
//===----------------------------------------------------------------------===//

#ifndef POSENC_DIALECT_POSENC_UTILS_LOWRANK_H
#define POSENC_DIALECT_POSENC_UTILS_LOWRANK_H

#include "mlir/Support/LLVM.h"
#include "llvm/ADT/ArrayRef.h"

#include <optional>

#include <string>
#include <vector>

namespace mlir::posenc {

/// m ≈ down · up with down = U_R ([rows, R], orthonormal columns) and up =
/// Σ_R·V_Rᵀ ([R, cols]), both row-major; `singularValues` holds all
/// min(rows, cols) of them, descending.
struct LowRankFactors {
  int64_t rows = 0, cols = 0, rank = 0;
  std::vector<double> down, up, singularValues;
};

/// The rank a request selects from descending `singularValues`: `rank` (≥ 1,
/// at most their count) when positive, else the smallest R whose retained
/// energy Σ_{i<R} σ_i² / Σ σ_i² reaches `energy` (in (0, 1]); at least 1.
int64_t selectRank(ArrayRef<double> singularValues, int64_t rank,
                   double energy);

/// Truncated SVD of the row-major [rows, cols] matrix `m`, rank chosen by
/// selectRank. Returns an empty optional and sets `error` when the request
/// is invalid (no positive size, non-finite entries, rank < 0 or energy
/// outside (0, 1] when rank is 0) or the SVD does not converge.
std::optional<LowRankFactors> lowRankFactor(ArrayRef<double> m, int64_t rows,
                                            int64_t cols, int64_t rank,
                                            double energy, std::string &error);

} // namespace mlir::posenc

#endif // POSENC_DIALECT_POSENC_UTILS_LOWRANK_H

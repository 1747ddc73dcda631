//===- LowRank.cpp - truncated SVD of a constant matrix -------------------===//
//
// The only file that includes Eigen (its headers are heavy).
//
//===----------------------------------------------------------------------===//

#include "posenc/Dialect/Posenc/Utils/LowRank.h"

#include <Eigen/SVD>

#include <cmath>

using namespace mlir;
using namespace mlir::posenc;

int64_t mlir::posenc::selectRank(ArrayRef<double> singularValues, int64_t rank,
                                 double energy) {
  int64_t n = singularValues.size();
  if (rank > 0)
    return std::min(rank, n);
  // Relative to σ_max, so that no σ² overflows or underflows.
  double top = n ? singularValues.front() : 0;
  if (!(top > 0))
    return 1;
  double total = 0;
  for (double s : singularValues)
    total += (s / top) * (s / top);
  double kept = 0;
  for (int64_t r = 0; r < n; ++r) {
    kept += (singularValues[r] / top) * (singularValues[r] / top);
    // A relative slack of 1e-12 so energy = 1 does not depend on the
    // rounding of the running sum.
    if (kept >= energy * total * (1 - 1e-12))
      return r + 1;
  }
  return n;
}

std::optional<LowRankFactors>
mlir::posenc::lowRankFactor(ArrayRef<double> m, int64_t rows, int64_t cols,
                            int64_t rank, double energy, std::string &error) {
  if (rows <= 0 || cols <= 0 || int64_t(m.size()) != rows * cols) {
    error = "the matrix must have a positive number of rows and columns (got " +
            std::to_string(rows) + " x " + std::to_string(cols) + ", " +
            std::to_string(m.size()) + " values)";
    return std::nullopt;
  }
  if (rank < 0) {
    error = "rank must be >= 1, got " + std::to_string(rank);
    return std::nullopt;
  }
  if (rank == 0 && !(energy > 0 && energy <= 1)) {
    error = "energy must be in (0, 1], got " + std::to_string(energy);
    return std::nullopt;
  }
  for (double x : m)
    if (!std::isfinite(x)) {
      error = "the matrix has a non-finite entry";
      return std::nullopt;
    }
  Eigen::Map<const Eigen::Matrix<double, Eigen::Dynamic, Eigen::Dynamic,
                                 Eigen::RowMajor>>
      a(m.data(), rows, cols);
  Eigen::BDCSVD<Eigen::MatrixXd> svd(a,
                                     Eigen::ComputeThinU | Eigen::ComputeThinV);
  if (svd.info() != Eigen::Success) {
    error = "the SVD did not converge";
    return std::nullopt;
  }
  const Eigen::VectorXd &sigma = svd.singularValues();
  if (!sigma.allFinite() || !svd.matrixU().allFinite() ||
      !svd.matrixV().allFinite()) {
    error = "the SVD overflowed float64 (entries near its limit)";
    return std::nullopt;
  }
  LowRankFactors f;
  f.rows = rows;
  f.cols = cols;
  f.singularValues.assign(sigma.data(), sigma.data() + sigma.size());
  f.rank = selectRank(f.singularValues, rank, energy);
  const Eigen::MatrixXd &u = svd.matrixU(), &v = svd.matrixV();
  f.down.resize(rows * f.rank);
  f.up.resize(f.rank * cols);
  for (int64_t i = 0; i < rows; ++i)
    for (int64_t r = 0; r < f.rank; ++r)
      f.down[i * f.rank + r] = u(i, r);
  for (int64_t r = 0; r < f.rank; ++r)
    for (int64_t j = 0; j < cols; ++j)
      f.up[r * cols + j] = sigma(r) * v(j, r);
  return f;
}

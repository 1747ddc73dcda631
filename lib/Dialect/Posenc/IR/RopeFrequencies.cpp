//===- RopeFrequencies.cpp - rotary frequencies in float64 ----------------===//

#include "posenc/Dialect/Posenc/IR/RopeFrequencies.h"

#include "llvm/Support/ErrorHandling.h"

#include <algorithm>
#include <cmath>

using namespace mlir;
using namespace mlir::posenc;

SmallVector<double> mlir::posenc::unscaledRopeFrequencies(double base,
                                                          int64_t rotary) {
  SmallVector<double> omega;
  for (int64_t i = 0; i < rotary / 2; ++i)
    omega.push_back(std::pow(base, -2.0 * double(i) / double(rotary)));
  return omega;
}

/// YaRN's ln-mscale: g(s, m) = 1 if s <= 1 else 0.1·m·ln s + 1.
static double yarnMscale(double s, double m) {
  return s <= 1.0 ? 1.0 : 0.1 * m * std::log(s) + 1.0;
}

SmallVector<double> mlir::posenc::staticRopeFrequencies(RopeScalingAttr scaling,
                                                        double base,
                                                        int64_t rotary,
                                                        bool useLong) {
  double r = double(rotary);
  switch (scaling.getKind()) {
  case RopeScalingKind::none:
    return unscaledRopeFrequencies(base, rotary);
  case RopeScalingKind::linear: {
    SmallVector<double> omega = unscaledRopeFrequencies(base, rotary);
    double f = scaling.getFactor().getValueAsDouble();
    for (double &w : omega)
      w /= f;
    return omega;
  }
  case RopeScalingKind::ntk: {
    double a = scaling.getAlpha().getValueAsDouble();
    return unscaledRopeFrequencies(base * std::pow(a, r / (r - 2.0)), rotary);
  }
  case RopeScalingKind::yarn: {
    SmallVector<double> omega = unscaledRopeFrequencies(base, rotary);
    double f = scaling.getFactor().getValueAsDouble();
    double l0 = double(scaling.getOriginal());
    auto correctionDim = [&](double rotations) {
      return r * std::log(l0 / (2.0 * M_PI * rotations)) /
             (2.0 * std::log(base));
    };
    double low = correctionDim(scaling.getBetaFast().getValueAsDouble());
    double high = correctionDim(scaling.getBetaSlow().getValueAsDouble());
    if (scaling.getTruncate()) {
      low = std::floor(low);
      high = std::ceil(high);
    }
    low = std::clamp(low, 0.0, r - 1.0);
    high = std::clamp(high, 0.0, r - 1.0);
    if (low == high)
      high += 0.001;
    for (auto [i, w] : llvm::enumerate(omega)) {
      double ramp = std::clamp((double(i) - low) / (high - low), 0.0, 1.0);
      w = w * (ramp / f + 1.0 - ramp);
    }
    return omega;
  }
  case RopeScalingKind::llama3: {
    SmallVector<double> omega = unscaledRopeFrequencies(base, rotary);
    double f = scaling.getFactor().getValueAsDouble();
    double low = scaling.getLowFreqFactor().getValueAsDouble();
    double high = scaling.getHighFreqFactor().getValueAsDouble();
    double l0 = double(scaling.getOriginal());
    for (double &w : omega) {
      double wavelen = 2.0 * M_PI / w;
      if (wavelen < l0 / high)
        continue;
      if (wavelen > l0 / low) {
        w /= f;
        continue;
      }
      // Equal factors (Llama 4 Scout) leave no band to blend across.
      if (high == low)
        continue;
      double t = (l0 / wavelen - low) / (high - low);
      w = (1.0 - t) * w / f + t * w;
    }
    return omega;
  }
  case RopeScalingKind::longrope: {
    ArrayRef<double> ext = useLong ? scaling.getLongFactor().asArrayRef()
                                   : scaling.getShortFactor().asArrayRef();
    SmallVector<double> omega;
    for (int64_t i = 0; i < rotary / 2; ++i)
      omega.push_back(1.0 / (ext[i] * std::pow(base, 2.0 * double(i) / r)));
    return omega;
  }
  case RopeScalingKind::dynamic:
    break;
  }
  llvm_unreachable("dynamic NTK frequencies depend on the positions");
}

SmallVector<double> mlir::posenc::ropeFrequenciesForRun(RopeScalingAttr scaling,
                                                        double base,
                                                        int64_t rotary,
                                                        int64_t maxPosition) {
  switch (scaling.getKind()) {
  case RopeScalingKind::dynamic: {
    double f = scaling.getFactor().getValueAsDouble();
    double l0 = double(scaling.getOriginal());
    double r = double(rotary);
    double s = std::max(double(maxPosition) + 1.0, l0);
    double ratio = f * s / l0 - (f - 1.0);
    return unscaledRopeFrequencies(base * std::pow(ratio, r / (r - 2.0)),
                                   rotary);
  }
  case RopeScalingKind::longrope:
    return staticRopeFrequencies(scaling, base, rotary,
                                 maxPosition + 1 > scaling.getOriginal());
  default:
    return staticRopeFrequencies(scaling, base, rotary);
  }
}

double mlir::posenc::defaultRopeAttentionFactor(RopeScalingAttr scaling) {
  switch (scaling.getKind()) {
  case RopeScalingKind::yarn: {
    double f = scaling.getFactor().getValueAsDouble();
    double m = scaling.getMscale().getValueAsDouble();
    double mAll = scaling.getMscaleAllDim().getValueAsDouble();
    if (m != 0.0 && mAll != 0.0)
      return yarnMscale(f, m) / yarnMscale(f, mAll);
    return yarnMscale(f, 1.0);
  }
  case RopeScalingKind::longrope: {
    double l0 = double(scaling.getOriginal());
    double s = double(scaling.getMaxPositions()) / l0;
    if (s <= 1.0)
      return 1.0;
    return std::sqrt(1.0 + std::log(s) / std::log(l0));
  }
  default:
    return 1.0;
  }
}

SmallVector<SinusoidalColumn>
mlir::posenc::sinusoidalColumns(SinusoidalConvention convention,
                                RopeLayout layout, int64_t dim, double base) {
  const double cosine = M_PI / 2;
  SmallVector<SinusoidalColumn> cols(dim);
  switch (convention) {
  case SinusoidalConvention::vaswani: {
    SmallVector<double> omega = unscaledRopeFrequencies(base, dim);
    bool half = layout == RopeLayout::half;
    for (int64_t i = 0; i < dim / 2; ++i) {
      cols[half ? i : 2 * i] = {omega[i], 0.0};
      cols[half ? dim / 2 + i : 2 * i + 1] = {omega[i], cosine};
    }
    break;
  }
  case SinusoidalConvention::fairseq: {
    // emb = log(base) / (h - 1); omega_i = exp(-i * emb), as fairseq. An
    // odd dim's last column stays zero.
    int64_t h = dim / 2;
    double step = std::log(base) / double(h - 1);
    for (int64_t i = 0; i < h; ++i) {
      double omega = std::exp(-double(i) * step);
      cols[i] = {omega, 0.0};
      cols[h + i] = {omega, cosine};
    }
    break;
  }
  case SinusoidalConvention::marian: {
    // Column j's angle is p / base^(2·floor(j/2)/D); sin of the even
    // columns first, then cos of the odd ones.
    int64_t sinCols = (dim + 1) / 2;
    for (int64_t j = 0; j < dim; ++j) {
      double omega = 1.0 / std::pow(base, 2.0 * double(j / 2) / double(dim));
      if (j % 2 == 0)
        cols[j / 2] = {omega, 0.0};
      else
        cols[sinCols + j / 2] = {omega, cosine};
    }
    break;
  }
  }
  return cols;
}

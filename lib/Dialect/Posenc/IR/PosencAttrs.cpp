//===- PosencAttrs.cpp - posenc enums and attributes ----------------------===//

#include "posenc/Dialect/Posenc/IR/PosencAttrs.h"
#include "posenc/Dialect/Posenc/IR/PosencDialect.h"

#include "DiagnosticFormat.h"

#include "mlir/IR/Builders.h"
#include "mlir/IR/DialectImplementation.h"
#include "llvm/ADT/StringSwitch.h"
#include "llvm/ADT/TypeSwitch.h"

#include <cmath>
#include <cstdio>
#include <string>

using namespace mlir;
using namespace mlir::posenc;

#include "posenc/Dialect/Posenc/IR/PosencEnums.cpp.inc"

#define GET_ATTRDEF_CLASSES
#include "posenc/Dialect/Posenc/IR/PosencAttrs.cpp.inc"

void PosencDialect::registerAttributes() {
  addAttributes<
#define GET_ATTRDEF_LIST
#include "posenc/Dialect/Posenc/IR/PosencAttrs.cpp.inc"
      >();
}

//===----------------------------------------------------------------------===//
// RopeScalingAttr
//===----------------------------------------------------------------------===//

namespace {
/// The parameters of RopeScalingAttr by their spelling in the assembly
/// format, in printing order.
enum class ScalingParam {
  factor,
  alpha,
  lowFreqFactor,
  highFreqFactor,
  shortFactor,
  longFactor,
  original,
  maxPositions,
  betaFast,
  betaSlow,
  mscale,
  mscaleAllDim,
  truncate,
};

constexpr ScalingParam kAllParams[] = {
    ScalingParam::factor,        ScalingParam::alpha,
    ScalingParam::lowFreqFactor, ScalingParam::highFreqFactor,
    ScalingParam::shortFactor,   ScalingParam::longFactor,
    ScalingParam::original,      ScalingParam::maxPositions,
    ScalingParam::betaFast,      ScalingParam::betaSlow,
    ScalingParam::mscale,        ScalingParam::mscaleAllDim,
    ScalingParam::truncate};

StringRef spelling(ScalingParam p) {
  switch (p) {
  case ScalingParam::factor:
    return "factor";
  case ScalingParam::alpha:
    return "alpha";
  case ScalingParam::lowFreqFactor:
    return "low_freq_factor";
  case ScalingParam::highFreqFactor:
    return "high_freq_factor";
  case ScalingParam::shortFactor:
    return "short_factor";
  case ScalingParam::longFactor:
    return "long_factor";
  case ScalingParam::original:
    return "original";
  case ScalingParam::maxPositions:
    return "max_positions";
  case ScalingParam::betaFast:
    return "beta_fast";
  case ScalingParam::betaSlow:
    return "beta_slow";
  case ScalingParam::mscale:
    return "mscale";
  case ScalingParam::mscaleAllDim:
    return "mscale_all_dim";
  case ScalingParam::truncate:
    return "truncate";
  }
  llvm_unreachable("unknown scaling parameter");
}

/// Whether `kind` uses parameter `p`, and whether it must be spelled out.
struct ParamUse {
  bool used = false;
  bool required = false;
};

ParamUse paramUse(RopeScalingKind kind, ScalingParam p) {
  using K = RopeScalingKind;
  using P = ScalingParam;
  auto req = ParamUse{true, true};
  auto opt = ParamUse{true, false};
  switch (kind) {
  case K::none:
    return {};
  case K::linear:
    return p == P::factor ? req : ParamUse{};
  case K::ntk:
    return p == P::alpha ? req : ParamUse{};
  case K::dynamic:
    return (p == P::factor || p == P::original) ? req : ParamUse{};
  case K::yarn:
    if (p == P::factor || p == P::original)
      return req;
    if (p == P::betaFast || p == P::betaSlow || p == P::mscale ||
        p == P::mscaleAllDim || p == P::truncate)
      return opt;
    return {};
  case K::llama3:
    return (p == P::factor || p == P::original || p == P::lowFreqFactor ||
            p == P::highFreqFactor)
               ? req
               : ParamUse{};
  case K::longrope:
    return (p == P::shortFactor || p == P::longFactor || p == P::original ||
            p == P::maxPositions)
               ? req
               : ParamUse{};
  }
  llvm_unreachable("unknown scaling kind");
}

// Published defaults of YaRN's optional parameters.
constexpr double kYarnBetaFast = 32.0;
constexpr double kYarnBetaSlow = 1.0;
constexpr double kYarnMscale = 1.0;
constexpr double kYarnMscaleAllDim = 0.0;

/// Parameter values while parsing, before they become an attribute.
struct ScalingParams {
  std::optional<double> factor, alpha, betaFast, betaSlow, mscale, mscaleAllDim,
      lowFreqFactor, highFreqFactor;
  std::optional<int64_t> original, maxPositions;
  std::optional<bool> truncate;
  std::optional<SmallVector<double>> shortFactor, longFactor;

  bool has(ScalingParam p) const {
    switch (p) {
    case ScalingParam::factor:
      return factor.has_value();
    case ScalingParam::alpha:
      return alpha.has_value();
    case ScalingParam::lowFreqFactor:
      return lowFreqFactor.has_value();
    case ScalingParam::highFreqFactor:
      return highFreqFactor.has_value();
    case ScalingParam::shortFactor:
      return shortFactor.has_value();
    case ScalingParam::longFactor:
      return longFactor.has_value();
    case ScalingParam::original:
      return original.has_value();
    case ScalingParam::maxPositions:
      return maxPositions.has_value();
    case ScalingParam::betaFast:
      return betaFast.has_value();
    case ScalingParam::betaSlow:
      return betaSlow.has_value();
    case ScalingParam::mscale:
      return mscale.has_value();
    case ScalingParam::mscaleAllDim:
      return mscaleAllDim.has_value();
    case ScalingParam::truncate:
      return truncate.has_value();
    }
    llvm_unreachable("unknown scaling parameter");
  }
};

FloatAttr f64OrNull(MLIRContext *ctx, std::optional<double> v) {
  if (!v)
    return {};
  return FloatAttr::get(Float64Type::get(ctx), *v);
}

DenseF64ArrayAttr arrayOrNull(MLIRContext *ctx,
                              const std::optional<SmallVector<double>> &v) {
  if (!v)
    return {};
  return DenseF64ArrayAttr::get(ctx, *v);
}
} // namespace

RopeScalingAttr RopeScalingAttr::getNone(MLIRContext *ctx) {
  return get(ctx, RopeScalingKind::none, {}, {}, 0, {}, {}, {}, {}, false, {},
             {}, {}, {}, 0);
}

bool RopeScalingAttr::dependsOnPositions() const {
  // longrope with equal tables (how posenc-raise keeps a model's own
  // frequencies) has nothing to choose.
  return getKind() == RopeScalingKind::dynamic ||
         (getKind() == RopeScalingKind::longrope &&
          getShortFactor() != getLongFactor());
}

/// The parameter of `kind` an unknown `key` most likely means: Hugging
/// Face's name for it, or a spelling at most a third of its length away.
static std::optional<StringRef> nearestParam(RopeScalingKind kind,
                                             StringRef key) {
  StringRef alias = llvm::StringSwitch<StringRef>(key)
                        .Case("original_max_position_embeddings", "original")
                        .Case("max_position_embeddings", "max_positions")
                        .Default("");
  std::optional<StringRef> best;
  unsigned bestDistance = ~0u;
  for (ScalingParam p : kAllParams) {
    if (!paramUse(kind, p).used)
      continue;
    if (spelling(p) == alias)
      return spelling(p);
    unsigned d = key.edit_distance(spelling(p));
    if (d < bestDistance && 3 * d <= spelling(p).size()) {
      bestDistance = d;
      best = spelling(p);
    }
  }
  return best;
}

/// "factor, original" -- the parameters `kind` takes.
static std::string paramList(RopeScalingKind kind) {
  std::string list;
  for (ScalingParam p : kAllParams)
    if (paramUse(kind, p).used)
      list += (list.empty() ? "" : ", ") + spelling(p).str();
  return list.empty() ? "no parameters" : list;
}

Attribute RopeScalingAttr::parse(AsmParser &parser, Type) {
  MLIRContext *ctx = parser.getContext();
  SMLoc kindLoc = parser.getCurrentLocation();
  StringRef kindName;
  if (parser.parseLess() || parser.parseKeyword(&kindName))
    return {};
  std::optional<RopeScalingKind> kind = symbolizeRopeScalingKind(kindName);
  if (!kind) {
    InFlightDiagnostic diag =
        parser.emitError(kindLoc, "unknown rope scaling kind '")
        << kindName
        << "'; expected one of none, linear, ntk, dynamic, yarn, llama3, "
           "longrope";
    // Hugging Face's rope_type names, and near misses.
    StringRef near = llvm::StringSwitch<StringRef>(kindName)
                         .Case("default", "none")
                         .Case("su", "longrope")
                         .Default("");
    for (StringRef k :
         {"none", "linear", "ntk", "dynamic", "yarn", "llama3", "longrope"})
      if (near.empty() && kindName.edit_distance(k) <= 2)
        near = k;
    if (!near.empty())
      diag << " (did you mean '" << near << "'?)";
    return {};
  }

  ScalingParams params;
  auto parseList = [&](std::optional<SmallVector<double>> &out) {
    SmallVector<double> values;
    if (parser.parseCommaSeparatedList(AsmParser::Delimiter::Square, [&] {
          return parser.parseFloat(values.emplace_back());
        }))
      return failure();
    out = std::move(values);
    return success();
  };
  auto parseF64 = [&](std::optional<double> &out) -> ParseResult {
    double v;
    if (parser.parseFloat(v))
      return failure();
    out = v;
    return success();
  };
  auto parseI64 = [&](std::optional<int64_t> &out) -> ParseResult {
    int64_t v;
    if (parser.parseInteger(v))
      return failure();
    out = v;
    return success();
  };

  while (succeeded(parser.parseOptionalComma())) {
    SMLoc keyLoc = parser.getCurrentLocation();
    StringRef key;
    if (parser.parseKeyword(&key) || parser.parseEqual())
      return {};
    std::optional<ScalingParam> param;
    for (ScalingParam p : kAllParams)
      if (spelling(p) == key)
        param = p;
    if (!param) {
      InFlightDiagnostic diag =
          parser.emitError(keyLoc, "unknown rope scaling parameter '")
          << key << "'";
      if (std::optional<StringRef> near = nearestParam(*kind, key))
        diag << "; did you mean '" << *near << "'?";
      diag << " (" << kindName << " takes " << paramList(*kind) << ")";
      return {};
    }
    if (!paramUse(*kind, *param).used) {
      parser.emitError(keyLoc, "rope scaling kind '")
          << kindName << "' has no parameter '" << key << "' (it takes "
          << paramList(*kind) << ")";
      return {};
    }
    if (params.has(*param)) {
      parser.emitError(keyLoc, "rope scaling parameter '")
          << key << "' given twice";
      return {};
    }
    ParseResult r = success();
    switch (*param) {
    case ScalingParam::factor:
      r = parseF64(params.factor);
      break;
    case ScalingParam::alpha:
      r = parseF64(params.alpha);
      break;
    case ScalingParam::lowFreqFactor:
      r = parseF64(params.lowFreqFactor);
      break;
    case ScalingParam::highFreqFactor:
      r = parseF64(params.highFreqFactor);
      break;
    case ScalingParam::shortFactor:
      r = parseList(params.shortFactor);
      break;
    case ScalingParam::longFactor:
      r = parseList(params.longFactor);
      break;
    case ScalingParam::original:
      r = parseI64(params.original);
      break;
    case ScalingParam::maxPositions:
      r = parseI64(params.maxPositions);
      break;
    case ScalingParam::betaFast:
      r = parseF64(params.betaFast);
      break;
    case ScalingParam::betaSlow:
      r = parseF64(params.betaSlow);
      break;
    case ScalingParam::mscale:
      r = parseF64(params.mscale);
      break;
    case ScalingParam::mscaleAllDim:
      r = parseF64(params.mscaleAllDim);
      break;
    case ScalingParam::truncate: {
      StringRef b;
      SMLoc bLoc = parser.getCurrentLocation();
      if (parser.parseKeyword(&b))
        return {};
      if (b != "true" && b != "false") {
        parser.emitError(bLoc, "expected 'true' or 'false' for 'truncate'");
        return {};
      }
      params.truncate = b == "true";
      break;
    }
    }
    if (failed(r))
      return {};
  }
  if (parser.parseGreater())
    return {};

  for (ScalingParam p : kAllParams) {
    if (paramUse(*kind, p).required && !params.has(p)) {
      parser.emitError(kindLoc, "rope scaling kind '")
          << kindName << "' requires parameter '" << spelling(p) << "'";
      return {};
    }
  }
  if (*kind == RopeScalingKind::yarn) {
    params.betaFast = params.betaFast.value_or(kYarnBetaFast);
    params.betaSlow = params.betaSlow.value_or(kYarnBetaSlow);
    params.mscale = params.mscale.value_or(kYarnMscale);
    params.mscaleAllDim = params.mscaleAllDim.value_or(kYarnMscaleAllDim);
    params.truncate = params.truncate.value_or(true);
  }

  return getChecked(
      [&] { return parser.emitError(kindLoc); }, ctx, *kind,
      f64OrNull(ctx, params.factor), f64OrNull(ctx, params.alpha),
      params.original.value_or(0), f64OrNull(ctx, params.betaFast),
      f64OrNull(ctx, params.betaSlow), f64OrNull(ctx, params.mscale),
      f64OrNull(ctx, params.mscaleAllDim), params.truncate.value_or(false),
      f64OrNull(ctx, params.lowFreqFactor),
      f64OrNull(ctx, params.highFreqFactor),
      arrayOrNull(ctx, params.shortFactor), arrayOrNull(ctx, params.longFactor),
      params.maxPositions.value_or(0));
}

void RopeScalingAttr::print(AsmPrinter &printer) const {
  printer << "<" << stringifyRopeScalingKind(getKind());
  auto printF64 = [&](ScalingParam p, FloatAttr v,
                      std::optional<double> dflt = std::nullopt) {
    if (!v || (dflt && v.getValueAsDouble() == *dflt))
      return;
    printer << ", " << spelling(p) << " = ";
    printer.printFloat(v.getValue());
  };
  auto printList = [&](ScalingParam p, DenseF64ArrayAttr v) {
    if (!v)
      return;
    printer << ", " << spelling(p) << " = [";
    llvm::interleaveComma(v.asArrayRef(), printer,
                          [&](double d) { printer.printFloat(APFloat(d)); });
    printer << "]";
  };
  auto printI64 = [&](ScalingParam p, int64_t v) {
    if (paramUse(getKind(), p).used)
      printer << ", " << spelling(p) << " = " << v;
  };
  printF64(ScalingParam::factor, getFactor());
  printF64(ScalingParam::alpha, getAlpha());
  printF64(ScalingParam::lowFreqFactor, getLowFreqFactor());
  printF64(ScalingParam::highFreqFactor, getHighFreqFactor());
  printList(ScalingParam::shortFactor, getShortFactor());
  printList(ScalingParam::longFactor, getLongFactor());
  printI64(ScalingParam::original, getOriginal());
  printI64(ScalingParam::maxPositions, getMaxPositions());
  printF64(ScalingParam::betaFast, getBetaFast(), kYarnBetaFast);
  printF64(ScalingParam::betaSlow, getBetaSlow(), kYarnBetaSlow);
  printF64(ScalingParam::mscale, getMscale(), kYarnMscale);
  printF64(ScalingParam::mscaleAllDim, getMscaleAllDim(), kYarnMscaleAllDim);
  if (getKind() == RopeScalingKind::yarn && !getTruncate())
    printer << ", truncate = false";
  printer << ">";
}

LogicalResult RopeScalingAttr::verify(
    function_ref<InFlightDiagnostic()> emitError, RopeScalingKind kind,
    FloatAttr factor, FloatAttr alpha, int64_t original, FloatAttr betaFast,
    FloatAttr betaSlow, FloatAttr mscale, FloatAttr mscaleAllDim, bool truncate,
    FloatAttr lowFreqFactor, FloatAttr highFreqFactor,
    DenseF64ArrayAttr shortFactor, DenseF64ArrayAttr longFactor,
    int64_t maxPositions) {
  StringRef kindName = stringifyRopeScalingKind(kind);
  auto fail = [&]() -> InFlightDiagnostic {
    return emitError() << "rope scaling '" << kindName << "': ";
  };
  // Presence must match the kind, so that builders cannot create attributes
  // that print differently from what they mean.
  auto checkPresence = [&](ScalingParam p, bool present) -> LogicalResult {
    if (paramUse(kind, p).used && !present)
      return fail() << "requires parameter '" << spelling(p) << "'";
    if (!paramUse(kind, p).used && present)
      return fail() << "has no parameter '" << spelling(p) << "'";
    return success();
  };
  if (failed(checkPresence(ScalingParam::factor, !!factor)) ||
      failed(checkPresence(ScalingParam::alpha, !!alpha)) ||
      failed(checkPresence(ScalingParam::betaFast, !!betaFast)) ||
      failed(checkPresence(ScalingParam::betaSlow, !!betaSlow)) ||
      failed(checkPresence(ScalingParam::mscale, !!mscale)) ||
      failed(checkPresence(ScalingParam::mscaleAllDim, !!mscaleAllDim)) ||
      failed(checkPresence(ScalingParam::lowFreqFactor, !!lowFreqFactor)) ||
      failed(checkPresence(ScalingParam::highFreqFactor, !!highFreqFactor)) ||
      failed(checkPresence(ScalingParam::shortFactor, !!shortFactor)) ||
      failed(checkPresence(ScalingParam::longFactor, !!longFactor)))
    return failure();
  if (kind != RopeScalingKind::yarn && truncate)
    return fail() << "has no parameter 'truncate'";

  auto checkPositive = [&](ScalingParam p, FloatAttr v) -> LogicalResult {
    if (!v)
      return success();
    double d = v.getValueAsDouble();
    if (!std::isfinite(d) || d <= 0.0)
      return fail() << spelling(p) << " (" << fmt(d)
                    << ") must be positive and finite";
    return success();
  };
  if (failed(checkPositive(ScalingParam::factor, factor)) ||
      failed(checkPositive(ScalingParam::alpha, alpha)) ||
      failed(checkPositive(ScalingParam::betaFast, betaFast)) ||
      failed(checkPositive(ScalingParam::betaSlow, betaSlow)) ||
      failed(checkPositive(ScalingParam::lowFreqFactor, lowFreqFactor)) ||
      failed(checkPositive(ScalingParam::highFreqFactor, highFreqFactor)))
    return failure();
  // Integer parameters use 0 for "absent".
  for (auto [p, v] : {std::pair{ScalingParam::original, original},
                      std::pair{ScalingParam::maxPositions, maxPositions}}) {
    if (paramUse(kind, p).used && v <= 0)
      return fail() << spelling(p) << " (" << v << ") must be positive";
    if (!paramUse(kind, p).used && v != 0)
      return fail() << "has no parameter '" << spelling(p) << "'";
  }

  // Factors below 1 would shrink the context; every published scheme
  // defines factor >= 1 (linear interpolation with factor < 1 is allowed
  // since it is a plain frequency multiplier).
  if (factor && kind != RopeScalingKind::linear &&
      factor.getValueAsDouble() < 1.0)
    return fail() << "factor (" << fmt(factor.getValueAsDouble())
                  << ") must be >= 1";
  if (alpha && alpha.getValueAsDouble() < 1.0)
    return fail() << "alpha (" << fmt(alpha.getValueAsDouble())
                  << ") must be >= 1";

  if (betaFast && betaSlow &&
      betaFast.getValueAsDouble() <= betaSlow.getValueAsDouble())
    return fail() << "beta_fast (" << fmt(betaFast.getValueAsDouble())
                  << ") must be greater than beta_slow ("
                  << fmt(betaSlow.getValueAsDouble()) << ")";
  for (auto [p, v] : {std::pair{ScalingParam::mscale, mscale},
                      std::pair{ScalingParam::mscaleAllDim, mscaleAllDim}}) {
    if (v &&
        (!std::isfinite(v.getValueAsDouble()) || v.getValueAsDouble() < 0.0))
      return fail() << spelling(p) << " (" << fmt(v.getValueAsDouble())
                    << ") must be finite and >= 0";
  }
  if (lowFreqFactor && highFreqFactor &&
      lowFreqFactor.getValueAsDouble() > highFreqFactor.getValueAsDouble())
    return fail() << "low_freq_factor ("
                  << fmt(lowFreqFactor.getValueAsDouble())
                  << ") must be at most high_freq_factor ("
                  << fmt(highFreqFactor.getValueAsDouble()) << ")";
  if (shortFactor && longFactor && shortFactor.size() != longFactor.size())
    return fail() << "short_factor and long_factor must have the same length "
                     "(got "
                  << shortFactor.size() << " and " << longFactor.size() << ")";
  for (auto [p, list] : {std::pair{ScalingParam::shortFactor, shortFactor},
                         std::pair{ScalingParam::longFactor, longFactor}}) {
    if (!list)
      continue;
    for (auto [i, d] : llvm::enumerate(list.asArrayRef()))
      if (!std::isfinite(d) || d <= 0.0)
        return fail() << spelling(p) << "[" << i << "] (" << fmt(d)
                      << ") must be positive and finite";
  }
  if (maxPositions && original && maxPositions < original)
    return fail() << "max_positions (" << maxPositions
                  << ") must be >= original (" << original << ")";
  return success();
}

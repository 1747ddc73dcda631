//===- DiagnosticFormat.h - numbers in verifier messages --------*- C++ -*-===//
//
// Internal to the posenc IR library.
//
//===----------------------------------------------------------------------===//

#ifndef LIB_DIALECT_POSENC_IR_DIAGNOSTICFORMAT_H
#define LIB_DIALECT_POSENC_IR_DIAGNOSTICFORMAT_H

#include <cstdio>
#include <string>

namespace mlir::posenc {

/// Formats a double for diagnostics in its shortest readable form (0.5, 32,
/// 1e+06) rather than MLIR's attribute printing (5.000000e-01).
inline std::string fmt(double d) {
  char buf[32];
  std::snprintf(buf, sizeof(buf), "%g", d);
  return buf;
}

} // namespace mlir::posenc

#endif // LIB_DIALECT_POSENC_IR_DIAGNOSTICFORMAT_H

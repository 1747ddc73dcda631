//===- ParserGuards.h - input upstream's parser crashes on ------*- C++ -*-===//
//
// Text that upstream MLIR's parser (LLVM 22) crashes on instead of
// diagnosing, checked before parsing so that posenc's entry points report
// it as an error.
//
//===----------------------------------------------------------------------===//

#ifndef POSENC_RUNTIME_PARSERGUARDS_H
#define POSENC_RUNTIME_PARSERGUARDS_H

#include "llvm/ADT/StringRef.h"

#include <optional>
#include <string>

namespace mlir::posenc {

/// A message when `text` holds a `permutation = ` or `dimensions = ` (the
/// custom syntax of linalg.transpose, linalg.broadcast and linalg.reduce)
/// that is not followed by a list of integers or an `array<...>`:
/// upstream's parser then stores the null attribute of its failed parse
/// and crashes. Lines that are comments are skipped. std::nullopt otherwise.
std::optional<std::string> upstreamParserCrash(llvm::StringRef text);

} // namespace mlir::posenc

#endif // POSENC_RUNTIME_PARSERGUARDS_H

//===- PosencDialect.cpp - posenc dialect ---------------------------------===//

#include "posenc/Dialect/Posenc/IR/PosencDialect.h"
#include "posenc/Dialect/Posenc/IR/PosencAttrs.h"
#include "posenc/Dialect/Posenc/IR/PosencOps.h"

using namespace mlir;
using namespace mlir::posenc;

#include "posenc/Dialect/Posenc/IR/PosencOpsDialect.cpp.inc"

void PosencDialect::initialize() {
  addOperations<
#define GET_OP_LIST
#include "posenc/Dialect/Posenc/IR/PosencOps.cpp.inc"
      >();
  registerAttributes();
}

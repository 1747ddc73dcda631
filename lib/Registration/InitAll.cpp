//===- InitAll.cpp - register everything posenc provides ------------------===//

#include "posenc/InitAll.h"

#include "posenc/Dialect/Posenc/IR/PosencDialect.h"

void mlir::posenc::registerPosencDialects(DialectRegistry &registry) {
  registry.insert<PosencDialect>();
}

void mlir::posenc::registerPosencPasses() {}

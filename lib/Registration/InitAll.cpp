//===- InitAll.cpp - register everything posenc provides ------------------===//

#include "posenc/InitAll.h"

#include "posenc/Conversion/Passes.h"
#include "posenc/Dialect/Posenc/IR/PosencDialect.h"
#include "posenc/Dialect/Posenc/Transforms/BufferizableOpInterfaceImpl.h"
#include "posenc/Dialect/Posenc/Transforms/Passes.h"
#include "posenc/Dialect/Posenc/Transforms/TilingInterfaceImpl.h"
#include "posenc/Pipelines/Pipelines.h"

#include "mlir/InitAllDialects.h"
#include "mlir/InitAllExtensions.h"
#include "mlir/Target/LLVMIR/Dialect/All.h"

void mlir::posenc::registerPosencDialects(DialectRegistry &registry) {
  registry.insert<PosencDialect>();
  // Attention as a structured op: tiling, shape reification, decomposition,
  // bufferization.
  registerTilingInterfaceExternalModels(registry);
  registerAggregatedOpInterfaceExternalModels(registry);
  registerBufferizableOpInterfaceExternalModels(registry);
}

void mlir::posenc::registerPosencPipelineDependencies(
    DialectRegistry &registry) {
  registerAllDialects(registry);
  registerAllExtensions(registry);
  registerAllToLLVMIRTranslations(registry);
}

void mlir::posenc::registerAllPosencDialects(DialectRegistry &registry) {
  registerPosencDialects(registry);
  registerPosencPipelineDependencies(registry);
}

void mlir::posenc::registerPosencPasses() {
  registerPosencConversionPasses();
  registerPosencTransformsPasses();
  registerPosencPipelines();
}

//===- posenc-plugin.cpp - posenc as an mlir-opt plugin -------------------===//
//
// Exports the entry points that mlir-opt's --load-dialect-plugin and
// --load-pass-plugin look up.
//
//===----------------------------------------------------------------------===//

#include "mlir/Tools/Plugins/DialectPlugin.h"
#include "mlir/Tools/Plugins/PassPlugin.h"
#include "posenc/InitAll.h"
#include "llvm/Config/llvm-config.h"

extern "C" LLVM_ATTRIBUTE_WEAK mlir::DialectPluginLibraryInfo
mlirGetDialectPluginInfo() {
  return {MLIR_PLUGIN_API_VERSION, "Posenc", LLVM_VERSION_STRING,
          [](mlir::DialectRegistry *registry) {
            mlir::posenc::registerPosencDialects(*registry);
          }};
}

extern "C" LLVM_ATTRIBUTE_WEAK mlir::PassPluginLibraryInfo
mlirGetPassPluginInfo() {
  return {MLIR_PLUGIN_API_VERSION, "Posenc", LLVM_VERSION_STRING,
          []() { mlir::posenc::registerPosencPasses(); }};
}

//===- posenc-opt.cpp - posenc optimizer driver ---------------------------===//
//
// mlir-opt with the posenc dialect, passes and pipelines added to every
// upstream dialect, pass and extension.
//
//===----------------------------------------------------------------------===//

#include "mlir/IR/DialectRegistry.h"
#include "mlir/InitAllDialects.h"
#include "mlir/InitAllExtensions.h"
#include "mlir/InitAllPasses.h"
#include "mlir/Target/LLVMIR/Dialect/Builtin/BuiltinToLLVMIRTranslation.h"
#include "mlir/Target/LLVMIR/Dialect/GPU/GPUToLLVMIRTranslation.h"
#include "mlir/Target/LLVMIR/Dialect/LLVMIR/LLVMToLLVMIRTranslation.h"
#include "mlir/Target/LLVMIR/Dialect/NVVM/NVVMToLLVMIRTranslation.h"
#include "mlir/Tools/mlir-opt/MlirOptMain.h"
#include "posenc/InitAll.h"

int main(int argc, char **argv) {
  mlir::registerAllPasses();
  mlir::posenc::registerPosencPasses();

  mlir::DialectRegistry registry;
  mlir::registerAllDialects(registry);
  // Without the extensions, convert-to-llvm silently converts nothing.
  mlir::registerAllExtensions(registry);
  mlir::posenc::registerPosencDialects(registry);
  // gpu-module-to-binary translates gpu.module bodies to LLVM IR.
  mlir::registerBuiltinDialectTranslation(registry);
  mlir::registerGPUDialectTranslation(registry);
  mlir::registerLLVMDialectTranslation(registry);
  mlir::registerNVVMDialectTranslation(registry);

  return mlir::asMainReturnCode(
      mlir::MlirOptMain(argc, argv, "posenc optimizer driver\n", registry));
}

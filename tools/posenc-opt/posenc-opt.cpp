//===- posenc-opt.cpp - posenc optimizer driver ---------------------------===//
//
// mlir-opt with the posenc dialect, passes and pipelines added to every
// upstream dialect, pass and extension.
//
//===----------------------------------------------------------------------===//

#include "mlir/IR/DialectRegistry.h"
#include "mlir/InitAllPasses.h"
#include "mlir/Tools/mlir-opt/MlirOptMain.h"
#include "posenc/InitAll.h"
#include "posenc/Version.h"
#include "llvm/Support/CommandLine.h"

int main(int argc, char **argv) {
  mlir::registerAllPasses();
  mlir::posenc::registerPosencPasses();

  // Every upstream dialect and extension (without the extensions,
  // convert-to-llvm silently converts nothing) and the LLVM IR translations
  // (gpu-module-to-binary translates gpu.module bodies).
  mlir::DialectRegistry registry;
  mlir::posenc::registerAllPosencDialects(registry);

  llvm::cl::SetVersionPrinter([](llvm::raw_ostream &os) {
    os << "posenc-opt (posenc " POSENC_VERSION
          ", built with LLVM " POSENC_LLVM_VERSION ")\n";
  });
  return mlir::asMainReturnCode(
      mlir::MlirOptMain(argc, argv, "posenc optimizer driver\n", registry));
}

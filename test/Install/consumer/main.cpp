// Parses posenc IR with the installed dialect, verifies it and lowers it
// with the installed posenc-lower-to-cpu pipeline; prints what it did.
#include "posenc/InitAll.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/IR/BuiltinOps.h"
#include "mlir/IR/MLIRContext.h"
#include "mlir/InitAllDialects.h"
#include "mlir/InitAllExtensions.h"
#include "mlir/Parser/Parser.h"
#include "mlir/Pass/PassManager.h"
#include "mlir/Pass/PassRegistry.h"
#include "llvm/Support/raw_ostream.h"

static const char *kSource = R"mlir(
func.func @rope(%x: tensor<1x4x2x8xf32>, %p: tensor<4xi32>) -> tensor<1x4x2x8xf32> {
  %y = posenc.rope %x, %p layout interleaved : tensor<1x4x2x8xf32>, tensor<4xi32>
  return %y : tensor<1x4x2x8xf32>
}
)mlir";

int main() {
  mlir::DialectRegistry registry;
  mlir::registerAllDialects(registry);
  mlir::registerAllExtensions(registry);
  mlir::posenc::registerPosencDialects(registry);
  mlir::posenc::registerPosencPasses();
  mlir::MLIRContext ctx(registry);
  auto module = mlir::parseSourceString<mlir::ModuleOp>(kSource, &ctx);
  if (!module)
    return 1;
  for (mlir::func::FuncOp fn : module->getOps<mlir::func::FuncOp>())
    llvm::outs() << "parsed: @" << fn.getName() << "\n";
  mlir::PassManager pm(&ctx, mlir::ModuleOp::getOperationName());
  if (mlir::failed(mlir::parsePassPipeline("posenc-lower-to-cpu", pm)) ||
      mlir::failed(pm.run(*module)))
    return 2;
  bool posencLeft = false;
  module->walk([&](mlir::Operation *op) {
    posencLeft |=
        op->getDialect() && op->getDialect()->getNamespace() == "posenc";
  });
  llvm::outs() << "lowered: " << (posencLeft ? "no" : "yes") << "\n";
  return posencLeft ? 3 : 0;
}

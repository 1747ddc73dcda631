// Uses an installed posenc as another C++ project would: parses posenc IR
// with the installed dialect, lowers it with the installed
// posenc-lower-to-cpu pipeline (Posenc::MLIRPosenc), then compiles and runs
// it through the installed runner (Posenc::PosencRuntime) and checks the
// result against RoPE computed here in double.
#include "posenc/InitAll.h"
#include "posenc/Runtime/Runner.h"
#include "posenc/Version.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/IR/BuiltinOps.h"
#include "mlir/IR/MLIRContext.h"
#include "mlir/Parser/Parser.h"
#include "mlir/Pass/PassManager.h"
#include "mlir/Pass/PassRegistry.h"
#include "llvm/Support/raw_ostream.h"

#include <cmath>
#include <cstring>

static const char *kSource = R"mlir(
func.func @rope(%x: tensor<1x4x2x8xf32>, %p: tensor<4xi32>) -> tensor<1x4x2x8xf32> {
  %y = posenc.rope %x, %p layout interleaved : tensor<1x4x2x8xf32>, tensor<4xi32>
  return %y : tensor<1x4x2x8xf32>
}
)mlir";

namespace rt = mlir::posenc::runtime;

// Interleaved RoPE, base 10000: pairs (2i, 2i+1) rotated by p * 10000^(-2i/8).
static double maxRopeError(const float *x, const float *y) {
  double err = 0;
  for (int s = 0; s < 4; ++s)
    for (int h = 0; h < 2; ++h)
      for (int i = 0; i < 4; ++i) {
        const float *in = x + (s * 2 + h) * 8 + 2 * i;
        const float *out = y + (s * 2 + h) * 8 + 2 * i;
        double angle = s * std::pow(10000.0, -2.0 * i / 8);
        double c = std::cos(angle), sn = std::sin(angle);
        err = std::max(err, std::abs(out[0] - (in[0] * c - in[1] * sn)));
        err = std::max(err, std::abs(out[1] - (in[1] * c + in[0] * sn)));
      }
  return err;
}

int main() {
  llvm::outs() << "posenc " << POSENC_VERSION << "\n";
  mlir::DialectRegistry registry;
  mlir::posenc::registerAllPosencDialects(registry);
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
  if (posencLeft)
    return 3;

  auto compiled = rt::CompiledModule::compile(kSource);
  if (!compiled) {
    llvm::errs() << llvm::toString(compiled.takeError()) << "\n";
    return 4;
  }
  std::vector<rt::HostArray> args(2);
  args[0].kind = rt::ElementKind::f32;
  args[0].shape = {1, 4, 2, 8};
  args[0].bytes.resize(64 * sizeof(float));
  float x[64];
  for (int i = 0; i < 64; ++i)
    x[i] = std::sin(0.7 * i + 0.3);
  std::memcpy(args[0].bytes.data(), x, sizeof(x));
  args[1].kind = rt::ElementKind::i32;
  args[1].shape = {4};
  args[1].bytes.resize(4 * sizeof(int32_t));
  for (int32_t s = 0; s < 4; ++s)
    std::memcpy(args[1].bytes.data() + s * sizeof(int32_t), &s, sizeof(s));
  auto results = (*compiled)->run("rope", args);
  if (!results) {
    llvm::errs() << llvm::toString(results.takeError()) << "\n";
    return 5;
  }
  double err =
      maxRopeError(x, reinterpret_cast<const float *>((*results)[0].data()));
  llvm::outs() << "ran: max error " << err << "\n";
  return err < 1e-5 ? 0 : 6;
}

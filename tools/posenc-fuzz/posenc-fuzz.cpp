//===- posenc-fuzz.cpp - libFuzzer target for posenc ----------------------===//
//
// Parses arbitrary bytes as MLIR with every dialect and the posenc dialect
// registered. A module that parses and verifies goes through each posenc
// pass alone, then through posenc-lower-to-cpu and the translation to LLVM
// IR. Besides crashes, sanitizer reports and hangs, the target treats as a
// finding a pass manager failure that emitted no error: posenc promises a
// diagnostic for every input it rejects.
//
// Pipeline options are chosen from a hash of the input, so a crashing input
// reproduces on its own.
//
//===----------------------------------------------------------------------===//

#include "posenc/InitAll.h"
#include "posenc/Pipelines/Pipelines.h"

#include "mlir/IR/BuiltinOps.h"
#include "mlir/IR/Diagnostics.h"
#include "mlir/IR/MLIRContext.h"
#include "mlir/InitAllDialects.h"
#include "mlir/InitAllExtensions.h"
#include "mlir/InitAllPasses.h"
#include "mlir/Parser/Parser.h"
#include "mlir/Pass/PassManager.h"
#include "mlir/Target/LLVMIR/Dialect/All.h"
#include "mlir/Target/LLVMIR/Export.h"
#include "llvm/ADT/Hashing.h"
#include "llvm/IR/LLVMContext.h"
#include "llvm/IR/Module.h"
#include "llvm/Support/MemoryBuffer.h"
#include "llvm/Support/SourceMgr.h"
#include "llvm/Support/raw_ostream.h"

#include <cstdint>
#include <cstdlib>

using namespace mlir;

static DialectRegistry *registry;
/// How deep inputs get, printed at exit: a corpus that never parses tests
/// nothing past the lexer.
static uint64_t numParsed, numLowered;

/// Runs `pipeline` on a clone of `module`; aborts when it fails silently.
static OwningOpRef<ModuleOp> runOnClone(ModuleOp module, StringRef pipeline,
                                        const int &errors) {
  OwningOpRef<ModuleOp> clone = module.clone();
  PassManager pm(module.getContext(), ModuleOp::getOperationName());
  if (failed(parsePassPipeline(pipeline, pm, llvm::errs()))) {
    llvm::errs() << "posenc-fuzz: bad pipeline " << pipeline << "\n";
    abort();
  }
  int before = errors;
  if (succeeded(pm.run(*clone)))
    return clone;
  if (errors == before) {
    llvm::errs() << "posenc-fuzz: '" << pipeline
                 << "' failed without an error diagnostic\n";
    abort();
  }
  return nullptr;
}

extern "C" int LLVMFuzzerInitialize(int *, char ***) {
  registerAllPasses();
  posenc::registerPosencPasses();
  registry = new DialectRegistry();
  registerAllDialects(*registry);
  registerAllExtensions(*registry);
  posenc::registerPosencDialects(*registry);
  registerAllToLLVMIRTranslations(*registry);
  atexit([] {
    llvm::errs() << "posenc-fuzz: " << numParsed << " inputs parsed and "
                 << "verified, " << numLowered
                 << " lowered to LLVM IR by posenc-lower-to-cpu\n";
  });
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  // Upstream verifiers and passes are not what this target tests; inputs
  // must mention posenc to get past parsing.
  StringRef text(reinterpret_cast<const char *>(data), size);
  if (!text.contains("posenc."))
    return 0;

  MLIRContext ctx(*registry, MLIRContext::Threading::DISABLED);
  int errors = 0;
  ScopedDiagnosticHandler handler(&ctx, [&](Diagnostic &diag) {
    if (diag.getSeverity() == DiagnosticSeverity::Error)
      ++errors;
    return success();
  });

  llvm::SourceMgr sourceMgr;
  sourceMgr.AddNewSourceBuffer(llvm::MemoryBuffer::getMemBufferCopy(text),
                               llvm::SMLoc());
  OwningOpRef<ModuleOp> module = parseSourceFile<ModuleOp>(sourceMgr, &ctx);
  if (!module)
    return 0;
  ++numParsed;

  static const char *const posencPasses[] = {
      "posenc-fold-constants",
      "posenc-fold-rope-layout{to=half}",
      "posenc-fold-rope-layout{to=interleaved}",
      "posenc-fuse-bias-into-attention",
      "posenc-decompose-mla{mode=naive}",
      "posenc-decompose-mla{mode=absorbed}",
      "posenc-approximate-math",
      "posenc-expand-arith",
      "func.func(posenc-vectorize-matmul)",
      "func.func(posenc-map-parallel-loops-to-gpu)",
      "func.func(posenc-allocate-on-gpu)",
      "convert-posenc-to-linalg",
      "func.func(convert-posenc-attention-to-gpu)",
      ("func.func(convert-posenc-attention-to-gpu{emulate=true tile-q=4 "
       "tile-k=8 threads=32})"),
  };
  for (const char *pass : posencPasses)
    (void)runOnClone(*module, pass, errors);

  // Pipeline options from the input's hash: every option value gets
  // exercised, and an input always takes the same path.
  uint64_t h = llvm::hash_value(text);
  static const char *const mla[] = {"auto", "naive", "absorbed"};
  static const int tiles[] = {1, 3, 8, 32, 64};
  std::string pipeline;
  llvm::raw_string_ostream os(pipeline);
  os << "posenc-lower-to-cpu{mla=" << mla[h % 3]
     << " fuse-bias=" << ((h >> 2) & 1 ? "false" : "true")
     << " fuse-elementwise=" << ((h >> 3) & 1 ? "true" : "false")
     << " attention-tile-q=" << tiles[(h >> 4) % 5]
     << " attention-tile-k=" << tiles[(h >> 8) % 5] << "}";
  OwningOpRef<ModuleOp> lowered = runOnClone(*module, pipeline, errors);
  if (!lowered)
    return 0;
  llvm::LLVMContext llvmContext;
  if (translateModuleToLLVMIR(*lowered, llvmContext))
    ++numLowered;
  return 0;
}

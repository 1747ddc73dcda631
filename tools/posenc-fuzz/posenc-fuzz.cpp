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
// Byte-level mutations of MLIR text rarely parse (0.6% of executions reached
// the passes with libFuzzer's mutators alone), so most mutations here keep
// the program well-formed: one number token becomes a boundary value (0, ±1,
// type limits, 2^24, 2^31, 2^63, subnormal and huge floats, a prime) or one
// keyword becomes another of its kind (half/interleaved, causal/symmetric,
// a rope scaling kind, ...); an element type or a dim changes in every type
// of the program at once. Up to 8 such mutations are tried for one that
// still parses and verifies. One mutation in 16 is libFuzzer's own.
//
//===----------------------------------------------------------------------===//

#include "posenc/InitAll.h"
#include "posenc/Pipelines/Pipelines.h"
#include "posenc/Runtime/ParserGuards.h"

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
#include "llvm/Support/Format.h"
#include "llvm/Support/MemoryBuffer.h"
#include "llvm/Support/SourceMgr.h"
#include "llvm/Support/raw_ostream.h"

#include <cctype>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <random>
#include <string>
#include <vector>

using namespace mlir;

static DialectRegistry *registry;
/// How deep inputs get, printed at exit: a corpus that never parses tests
/// nothing past the lexer.
static uint64_t numRun, numParsed, numLowered;

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
    auto pct = [](uint64_t n) {
      return numRun ? 100.0 * double(n) / double(numRun) : 0.0;
    };
    llvm::errs() << "posenc-fuzz: " << numRun << " inputs, " << numParsed
                 << " parsed and verified ("
                 << llvm::format("%.1f", pct(numParsed)) << "%), " << numLowered
                 << " lowered to LLVM IR by posenc-lower-to-cpu ("
                 << llvm::format("%.1f", pct(numLowered)) << "%)\n";
  });
  return 0;
}

extern "C" size_t LLVMFuzzerMutate(uint8_t *data, size_t size, size_t maxSize);

namespace {
/// Values a number token may become: where arithmetic overflows, rounds or
/// divides by zero.
const char *const kNumbers[] = {
    "0",          "1",          "2",          "3",
    "7",          "-1",         "16",         "64",
    "1000",       "16777216",   "2147483647", "-2147483648",
    "2147483648", "4294967296", "1073741824", "9223372036854775807",
    "0.0",        "1.0",        "0.5",        "-1.0",
    "1.0e-320",   "1.0e-45",    "1.0e+30",    "1.0e+39",
    "1.0e+300",   "3.4e+38",    "1.0e-07",    "65504.0"};

/// Keywords of one kind: each may become another of its group.
const std::vector<std::vector<const char *>> kKeywords = {
    {"half", "interleaved"},
    {"causal", "symmetric"},
    {"t5", "clip"},
    {"i32", "i64"},
    {"f32", "f16", "bf16", "f64"},
    {"linear", "ntk", "dynamic", "yarn", "llama3", "longrope"},
    {"auto", "naive", "absorbed"},
    {"true", "false"},
    // posenc-raise's look-alikes: a softmax of other arithmetic.
    {"maximumf", "minimumf", "maxnumf", "addf", "subf", "mulf", "divf"},
    {"parallel", "reduction"},
    // posenc-raise's RoPE look-alikes: tables exchanged.
    {"cos", "sin"},
};

/// 'x' separating the dims of a shape (4x8, ?x8), not a letter of a name.
bool shapeSeparator(const std::string &t, size_t i) {
  return i >= 1 && t[i] == 'x' &&
         (std::isdigit(static_cast<unsigned char>(t[i - 1])) ||
          t[i - 1] == '?');
}

bool isNumberStart(const std::string &t, size_t i) {
  return (std::isdigit(static_cast<unsigned char>(t[i])) ||
          (t[i] == '-' && i + 1 < t.size() &&
           std::isdigit(static_cast<unsigned char>(t[i + 1])))) &&
         (i == 0 || shapeSeparator(t, i - 1) ||
          !(std::isalnum(static_cast<unsigned char>(t[i - 1])) ||
            t[i - 1] == '_' || t[i - 1] == '%' || t[i - 1] == '#'));
}

/// Replaces one number or keyword of `t` (false when it has none).
bool mutateToken(std::string &t, std::mt19937_64 &rng) {
  struct Span {
    size_t at, len;
    int group;  // -1: a number
    bool shape; // a dim of a type (<4x8xf32>): changing it rarely verifies
  };
  std::vector<Span> spans;
  for (size_t i = 0; i < t.size();) {
    if (isNumberStart(t, i)) {
      size_t j = i + 1;
      while (j < t.size() && (std::isdigit(static_cast<unsigned char>(t[j])) ||
                              t[j] == '.' || t[j] == 'e' || t[j] == 'E' ||
                              ((t[j] == '+' || t[j] == '-') &&
                               (t[j - 1] == 'e' || t[j - 1] == 'E'))))
        ++j;
      bool shape = i > 0 && (t[i - 1] == '<' || t[i - 1] == 'x') &&
                   j < t.size() && t[j] == 'x';
      spans.push_back({i, j - i, -1, shape});
      i = j;
      continue;
    }
    // A word starts after a non-alphanumeric, or after the 'x' of a shape
    // (the element type of tensor<4x8xf32>).
    bool afterShape = i >= 1 && shapeSeparator(t, i - 1);
    if (std::isalpha(static_cast<unsigned char>(t[i])) &&
        (i == 0 || afterShape ||
         !std::isalnum(static_cast<unsigned char>(t[i - 1])))) {
      size_t j = i;
      while (j < t.size() &&
             (std::isalnum(static_cast<unsigned char>(t[j])) || t[j] == '_'))
        ++j;
      for (size_t g = 0; g < kKeywords.size(); ++g)
        for (const char *k : kKeywords[g])
          if (j - i == std::strlen(k) && t.compare(i, j - i, k) == 0)
            spans.push_back({i, j - i, int(g), false});
      i = j;
      continue;
    }
    ++i;
  }
  if (spans.empty())
    return false;
  const Span &s = spans[rng() % spans.size()];
  std::string from = t.substr(s.at, s.len), with;
  // Element types and dims change everywhere at once, so that operands and
  // results keep agreeing and the program still verifies; other numbers
  // and keywords change in one place.
  bool typeWord = s.group == 3 || s.group == 4;
  if (s.shape) {
    static const char *const dims[] = {"1", "2", "3",  "4",  "5",
                                       "7", "8", "16", "32", "64"};
    // Small dims only: upstream parsers abort (not diagnose) on some
    // static shapes of 2^32 elements (tensor.from_elements).
    with = dims[rng() % std::size(dims)];
  } else if (s.group < 0) {
    with = kNumbers[rng() % std::size(kNumbers)];
  } else {
    const auto &g = kKeywords[s.group];
    with = g[rng() % g.size()];
  }
  for (const Span &o : llvm::reverse(spans)) {
    bool same = o.group == s.group && o.shape == s.shape &&
                t.compare(o.at, o.len, from) == 0;
    if (&o == &s || (same && (typeWord || s.shape)))
      t.replace(o.at, o.len, with);
  }
  return true;
}
} // namespace

/// Whether `text` parses and verifies: the mutator keeps mutations that do,
/// so that most executions reach the passes (diagnostics are dropped).
static bool verifies(const std::string &text) {
  if (posenc::upstreamParserCrash(text))
    return false;
  MLIRContext ctx(*registry, MLIRContext::Threading::DISABLED);
  ScopedDiagnosticHandler quiet(&ctx, [](Diagnostic &) { return success(); });
  return bool(parseSourceString<ModuleOp>(text, &ctx));
}

extern "C" size_t LLVMFuzzerCustomMutator(uint8_t *data, size_t size,
                                          size_t maxSize, unsigned int seed) {
  std::mt19937_64 rng(seed);
  if (rng() % 16 != 0) {
    const std::string original(reinterpret_cast<char *>(data), size);
    std::string last;
    // One or two token changes, tried up to 8 times for a program that
    // still verifies.
    for (int attempt = 0; attempt < 8; ++attempt) {
      std::string text = original;
      bool changed = false;
      for (int n = 1 + int(rng() % 2); n > 0; --n)
        changed |= mutateToken(text, rng);
      if (!changed || text.size() > maxSize)
        break;
      last = std::move(text);
      if (verifies(last))
        break;
    }
    if (!last.empty()) {
      std::memcpy(data, last.data(), last.size());
      return last.size();
    }
  }
  return LLVMFuzzerMutate(data, size, maxSize);
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  ++numRun;
  // Upstream verifiers and passes are not what this target tests; inputs
  // must mention posenc, or hold a softmax or a cosine for posenc-raise, to
  // get past parsing.
  StringRef text(reinterpret_cast<const char *>(data), size);
  if (!text.contains("posenc.") && !text.contains("softmax") &&
      !text.contains("math.exp") && !text.contains("math.cos"))
    return 0;
  // Text upstream's parser crashes on (posenc's entry points refuse it).
  if (posenc::upstreamParserCrash(text))
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
      "posenc-raise",
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

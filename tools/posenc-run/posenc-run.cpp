//===- posenc-run.cpp - JIT runner for posenc IR --------------------------===//
//
// Compiles a posenc module for the host and runs one entry point on arrays
// from .npy files or random data, in the style of iree-run-module:
//
//   posenc-run layer.mlir --entry=attn --input=@q.npy --input=random:16xi32 \
//       --output=@out.npy --benchmark=20
//
//===----------------------------------------------------------------------===//

#include "posenc/Runtime/Runner.h"
#include "posenc/Version.h"

#include "llvm/Support/CommandLine.h"
#include "llvm/Support/InitLLVM.h"
#include "llvm/Support/MemoryBuffer.h"
#include "llvm/Support/raw_ostream.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstring>
#include <sys/mman.h>

using namespace llvm;
using namespace mlir::posenc::runtime;

// posenc-run's own options; --help shows only these (libLLVM registers
// hundreds of backend flags, which --help-hidden still lists).
static cl::OptionCategory runCategory("posenc-run options");

static cl::opt<std::string> inputFile(cl::Positional, cl::desc("<input.mlir>"),
                                      cl::Required, cl::cat(runCategory));
static cl::opt<std::string>
    entry("entry", cl::desc("Function to run (default: the only public one)"),
          cl::init(""), cl::cat(runCategory));
static cl::list<std::string>
    inputs("input", cl::desc("An input: @file.npy or random:2x16x4x64xf32"),
           cl::cat(runCategory));
static cl::list<std::string>
    outputs("output",
            cl::desc("Where result #i goes: @file.npy, or - to "
                     "print a summary (default)"),
            cl::cat(runCategory));
static cl::opt<std::string> pipeline("pipeline",
                                     cl::desc("Textual pass pipeline"),
                                     cl::init("posenc-lower-to-cpu"),
                                     cl::cat(runCategory));
// Registered as "posenc-threads" and renamed to "threads" in main():
// libLLVM registers an unrelated "threads" option of its own first.
static cl::opt<int> threads(
    "posenc-threads",
    cl::desc("Threads of the compiled code: sets num-threads=N on the "
             "pipeline's posenc-lower-to-cpu (0: POSENC_NUM_THREADS, else "
             "every core; default: the pipeline's, 1)"),
    cl::init(-1), cl::cat(runCategory));
static cl::opt<unsigned>
    benchmark("benchmark",
              cl::desc("Run N more times and print median and min time"),
              cl::init(0), cl::cat(runCategory));
static cl::opt<bool> printTiming("print-timing",
                                 cl::desc("Print the compile time"),
                                 cl::init(false), cl::cat(runCategory));
static cl::opt<unsigned long long> seed("seed",
                                        cl::desc("Seed of random inputs"),
                                        cl::init(0), cl::cat(runCategory));
static cl::opt<bool> retainBuffers(
    "retain-freed-buffers",
    cl::desc("With --benchmark: keep freed large blocks in malloc's heap so "
             "each run's result reuses the last one's pages (default on)"),
    cl::init(true), cl::cat(runCategory));

static int fail(const Twine &msg) {
  errs() << "posenc-run: " << msg << "\n";
  return 1;
}

static void summarize(raw_ostream &os, unsigned i, const HostArray &a) {
  os << "result #" << i << ": " << a.describe();
  double sum = 0, absMax = 0;
  size_t nans = 0;
  size_t n = a.numElements(), esz = elementSize(a.kind);
  auto at = [&](size_t e) -> double {
    const uint8_t *p = a.bytes.data() + e * esz;
    switch (a.kind) {
    case ElementKind::f32: {
      float v;
      std::memcpy(&v, p, 4);
      return v;
    }
    case ElementKind::f64: {
      double v;
      std::memcpy(&v, p, 8);
      return v;
    }
    case ElementKind::bf16: {
      uint32_t bits = uint32_t(p[0] | (p[1] << 8)) << 16;
      float v;
      std::memcpy(&v, &bits, 4);
      return v;
    }
    case ElementKind::i32: {
      int32_t v;
      std::memcpy(&v, p, 4);
      return v;
    }
    case ElementKind::i64: {
      int64_t v;
      std::memcpy(&v, p, 8);
      return double(v);
    }
    case ElementKind::f16: {
      uint16_t h = uint16_t(p[0] | (p[1] << 8));
      int exp = (h >> 10) & 0x1f, mant = h & 0x3ff;
      double mag = exp == 0    ? std::ldexp(mant, -24)
                   : exp == 31 ? (mant ? NAN : INFINITY)
                               : std::ldexp(mant + 1024, exp - 25);
      return (h & 0x8000) ? -mag : mag;
    }
    }
    return 0;
  };
  for (size_t e = 0; e < n; ++e) {
    double v = at(e);
    sum += v;
    if (std::isnan(v))
      ++nans;
    else
      absMax = std::max(absMax, std::abs(v));
  }
  os << " sum=" << sum << " max|x|=" << absMax;
  // max|x| is over the numbers; NaNs are counted apart.
  if (nans)
    os << " nan=" << nans;
  os << "\n";
}

int main(int argc, char **argv) {
  InitLLVM init(argc, argv);
  auto &registered = cl::getRegisteredOptions();
  if (cl::Option *other = registered.lookup("threads"))
    other->setArgStr("llvm-threads");
  threads.setArgStr("threads");
  // Hidden, not removed: --help-hidden and --help-list-hidden keep them.
  for (auto &entry : registered)
    if (!llvm::is_contained(entry.second->Categories, &runCategory) &&
        entry.second->getOptionHiddenFlag() == cl::NotHidden &&
        entry.first != "help" && entry.first != "version")
      entry.second->setHiddenFlag(cl::Hidden);
  cl::SetVersionPrinter([](raw_ostream &os) {
    os << "posenc-run (posenc " POSENC_VERSION
          ", built with LLVM " POSENC_LLVM_VERSION ")\n";
  });
  cl::ParseCommandLineOptions(argc, argv, "posenc JIT runner\n");

  auto file = MemoryBuffer::getFileOrSTDIN(inputFile);
  if (!file)
    return fail("cannot read '" + inputFile +
                "': " + file.getError().message());
  auto start = std::chrono::steady_clock::now();
  std::string passes = pipeline;
  if (threads.getNumOccurrences()) {
    llvm::Expected<std::string> threaded = withThreads(pipeline, threads);
    if (!threaded)
      return fail(toString(threaded.takeError()));
    passes = *threaded;
  }
  auto compiled = CompiledModule::compile(
      (*file)->getBuffer(), passes,
      inputFile == "-" ? StringRef("<stdin>") : StringRef(inputFile));
  if (!compiled)
    return fail(toString(compiled.takeError()));
  CompiledModule &module = **compiled;
  double compileMs = std::chrono::duration<double, std::milli>(
                         std::chrono::steady_clock::now() - start)
                         .count();
  Expected<std::string> name = module.resolve(entry);
  if (!name)
    return fail(toString(name.takeError()));
  const Signature &sig = cantFail(module.signature(*name));
  if (printTiming)
    outs() << "compile: " << format("%.1f", compileMs) << " ms\n";

  std::vector<HostArray> args;
  for (auto [i, spec] : llvm::enumerate(inputs)) {
    StringRef s = spec;
    std::optional<ElementKind> expected;
    if (i < sig.inputs.size())
      expected = sig.inputs[i].kind;
    Expected<HostArray> a = s.consume_front("@")
                                ? readNpy(s, expected)
                                : makeRandom(spec, seed.getValue() + i);
    if (!a)
      return fail("input #" + Twine(i) + ": " + toString(a.takeError()));
    args.push_back(std::move(*a));
  }
  if (Error err = module.checkInputs(*name, args))
    return fail(toString(std::move(err)));
  for (const std::string &target : outputs)
    if (target != "-" && (target.size() < 2 || target[0] != '@'))
      return fail("--output=" + target +
                  ": expected @file.npy (a file) or - (a summary)");
  if (outputs.size() > sig.results.size())
    return fail("got " + Twine(outputs.size()) + " --output for " +
                Twine(sig.results.size()) + " results of @" + *name);

  auto results = module.run(*name, args);
  if (!results)
    return fail(toString(results.takeError()));
  for (auto [i, r] : llvm::enumerate(*results)) {
    StringRef target = i < outputs.size() ? StringRef(outputs[i]) : "-";
    if (target.consume_front("@")) {
      if (Error err = writeNpy(target, r))
        return fail(toString(std::move(err)));
    } else {
      summarize(outs(), i, r);
    }
  }

  if (benchmark > 0) {
    // Times the compiled code alone, and two copies of the result bytes in
    // the same process: into a reused buffer (the bandwidth bound) and into
    // freshly mapped pages (what a result pays for page faults when malloc
    // maps every large block anew, the glibc default).
    bool retained = retainBuffers && retainFreedLargeBuffers();
    outs() << "large result buffers: "
           << (retained ? "reused across runs (--retain-freed-buffers)"
                        : "mapped anew per run (malloc default)")
           << "\n";
    std::vector<double> ms, copyMs, freshMs;
    size_t bytes = 0;
    for (const HostArray &r : *results)
      bytes += r.bytes.size();
    std::vector<uint8_t> src(bytes, 1), dst(bytes, 0);
    auto msSince = [](std::chrono::steady_clock::time_point t) {
      return std::chrono::duration<double, std::milli>(
                 std::chrono::steady_clock::now() - t)
          .count();
    };
    for (unsigned i = 0; i < benchmark; ++i) {
      auto again = module.run(*name, args);
      if (!again)
        return fail(toString(again.takeError()));
      ms.push_back(module.lastCallMs());
      auto start = std::chrono::steady_clock::now();
      std::memcpy(dst.data(), src.data(), bytes);
      copyMs.push_back(msSince(start));
      start = std::chrono::steady_clock::now();
      size_t mapped = std::max<size_t>(bytes, 1);
      void *fresh = mmap(nullptr, mapped, PROT_READ | PROT_WRITE,
                         MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
      if (fresh == MAP_FAILED)
        return fail("cannot map " + Twine(mapped) + " bytes");
      std::memcpy(fresh, src.data(), bytes);
      // Keeps the copy from being optimized away.
      src[i % mapped] ^= static_cast<uint8_t *>(fresh)[(i * 7) % mapped];
      munmap(fresh, mapped);
      freshMs.push_back(msSince(start));
    }
    auto median = [](std::vector<double> &v) {
      std::sort(v.begin(), v.end());
      return v[v.size() / 2];
    };
    double med = median(ms), copyMed = median(copyMs),
           freshMed = median(freshMs);
    outs() << "benchmark @" << *name << ": " << benchmark << " runs, median "
           << format("%.3f", med) << " ms, min " << format("%.3f", ms.front())
           << " ms\n";
    if (bytes > 0) {
      outs() << "memcpy of the result bytes (" << bytes << " B): median "
             << format("%.3f", copyMed) << " ms (reused buffer), "
             << format("%.3f", freshMed) << " ms (fresh pages)\n";
      outs() << "ratio to memcpy: " << format("%.2f", med / copyMed)
             << "x (reused), " << format("%.2f", med / freshMed)
             << "x (fresh pages)\n";
    }
  }
  return 0;
}

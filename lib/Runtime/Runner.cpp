//===- Runner.cpp - compile posenc IR and run it in-process ---------------===//
//
// The one file of the runtime that includes ExecutionEngine and InitAll*.
//
//===----------------------------------------------------------------------===//

#include "posenc/Runtime/Runner.h"
#include "posenc/Runtime/ParserGuards.h"

#include "posenc/Dialect/Posenc/IR/PosencDialect.h"
#include "posenc/Dialect/Posenc/IR/RopeFrequencies.h"
#include "posenc/Dialect/Posenc/Transforms/Passes.h"
#include "posenc/InitAll.h"
#include "posenc/Pipelines/Pipelines.h"

#include "mlir/AsmParser/AsmParser.h"
#include "mlir/Bytecode/BytecodeReader.h"
#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/Dialect/LLVMIR/LLVMDialect.h"
#include "mlir/ExecutionEngine/ExecutionEngine.h"
#include "mlir/ExecutionEngine/OptUtils.h"
#include "mlir/IR/BuiltinOps.h"
#include "mlir/IR/Diagnostics.h"
#include "mlir/IR/MLIRContext.h"
#include "mlir/IR/SymbolTable.h"
#include "mlir/IR/Verifier.h"
#include "mlir/InitAllPasses.h"
#include "mlir/Parser/Parser.h"
#include "mlir/Pass/PassManager.h"
#include "mlir/Pass/PassRegistry.h"
#include "mlir/Target/LLVMIR/LLVMTranslationInterface.h"
#include "llvm/ADT/DenseSet.h"
#include "llvm/ADT/StringMap.h"
#include "llvm/ExecutionEngine/Orc/JITTargetMachineBuilder.h"
#include "llvm/Support/DynamicLibrary.h"
#include "llvm/Support/FileSystem.h"
#include "llvm/Support/FormatVariadic.h"
#include "llvm/Support/SourceMgr.h"
#include "llvm/Support/TargetSelect.h"
#include "llvm/Target/TargetMachine.h"
#include "llvm/TargetParser/Host.h"

#include <atomic>
#include <chrono>
#include <climits>
#include <cmath>
#include <csetjmp>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <mutex>

#if defined(__GLIBC__)
#include <malloc.h>
#endif

using namespace mlir;
using namespace mlir::posenc;
using namespace mlir::posenc::runtime;

static llvm::Error makeError(const llvm::Twine &msg) {
  return llvm::createStringError(llvm::inconvertibleErrorCode(), msg);
}

//===----------------------------------------------------------------------===//
// Failed run-time checks and failed allocations
//===----------------------------------------------------------------------===//
//
// A failed cf.assert (posenc-insert-shape-checks) lowers to puts(message)
// and abort(). Compiled code resolves both to these hooks: during run() the
// message is kept and abort returns to run() with longjmp, which reports it
// as the call's error; the process survives. Compiled code holds no C++
// objects, so skipping its frames is safe.
//
// Compiled code allocates through posencAlloc (its aligned_alloc and malloc
// calls are renamed at compile time, with the allocating op as an extra
// argument): a failed allocation is the call's error like a failed check.
// Every buffer a call allocates is recorded with the call until compiled
// code frees it, so that a call that stops (or code that forgets a buffer)
// leaks nothing: run() frees what is left. Buffers allocated on OpenMP
// worker threads belong to the one call in flight (untracked while several
// calls run at once); a worker cannot unwind the caller's frames, so an
// allocation that fails there ends the process with a message.

namespace {
struct CheckTrap {
  std::jmp_buf env;
  std::string message;
};

/// Buffers of calls in flight -> their call.
struct AllocationTable {
  std::mutex mutex;
  llvm::DenseMap<void *, CheckTrap *> owner;
  int callsInFlight = 0;
  CheckTrap *soleCall = nullptr;
};
} // namespace

static AllocationTable &allocations() {
  static AllocationTable *table = new AllocationTable();
  return *table;
}

static thread_local CheckTrap *activeTrap = nullptr;

/// The loaded OpenMP runtime's omp_get_level, once threaded code was
/// compiled: the calling thread cannot unwind out of a parallel region.
static std::atomic<int (*)()> ompLevel{nullptr};

static std::string formatBytes(uint64_t bytes) {
  static const char *units[] = {"B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"};
  double v = double(bytes);
  int u = 0;
  while (v >= 1024 && u < 6) {
    v /= 1024;
    ++u;
  }
  char buf[64];
  std::snprintf(buf, sizeof(buf), "%llu bytes (%.3g %s)",
                (unsigned long long)bytes, v, units[u]);
  return buf;
}

extern "C" {
static int posencCheckPuts(const char *s) {
  if (!activeTrap)
    return std::puts(s);
  activeTrap->message += s;
  return 0;
}

[[noreturn]] static void posencCheckAbort() {
  if (activeTrap)
    std::longjmp(activeTrap->env, 1);
  std::abort();
}

static void *posencAlloc(uint64_t alignment, uint64_t bytes, const char *site) {
  // aligned_alloc wants a nonzero size that is a multiple of the alignment
  // (ASan enforces it): round up, and take one alignment unit for 0 bytes.
  uint64_t rounded =
      alignment ? (bytes + alignment - 1) / alignment * alignment : bytes;
  // Requests beyond the machine's memory fail here: an allocator may not
  // return null for them (ASan aborts), or Linux may grant them and kill
  // the process when the pages are touched.
  void *p = nullptr;
  if (rounded >= bytes && rounded <= physicalMemoryBytes())
    p = alignment ? std::aligned_alloc(alignment, rounded ? rounded : alignment)
                  : std::malloc(bytes ? bytes : 1);
  AllocationTable &table = allocations();
  if (p) {
    std::lock_guard<std::mutex> lock(table.mutex);
    CheckTrap *call = activeTrap ? activeTrap : table.soleCall;
    if (call)
      table.owner[p] = call;
    return p;
  }
  int (*level)() = ompLevel.load();
  if (!activeTrap || (level && level() > 0)) {
    std::fprintf(stderr,
                 "posenc: out of memory: %s asked for %s (in a parallel "
                 "region)\n",
                 site, formatBytes(bytes).c_str());
    std::abort();
  }
  // No object with a destructor may live in this frame at the longjmp.
  activeTrap->message += "out of memory: ";
  activeTrap->message += site;
  activeTrap->message += " asked for " + formatBytes(bytes);
  std::longjmp(activeTrap->env, 1);
}

static void *posencAlignedAlloc(uint64_t alignment, uint64_t bytes,
                                const char *site) {
  return posencAlloc(alignment, bytes, site);
}

static void *posencMalloc(uint64_t bytes, const char *site) {
  return posencAlloc(0, bytes, site);
}

static void posencFree(void *p) {
  if (!p)
    return;
  AllocationTable &table = allocations();
  {
    std::lock_guard<std::mutex> lock(table.mutex);
    table.owner.erase(p);
  }
  std::free(p);
}
}

/// Calls `fn(args)` with failed checks and allocations trapped; false (and
/// `message`) when one failed. No object with a destructor lives across the
/// setjmp.
static bool callTrapped(void (*fn)(void **), void **args, CheckTrap &trap) {
  AllocationTable &table = allocations();
  {
    std::lock_guard<std::mutex> lock(table.mutex);
    table.soleCall = ++table.callsInFlight == 1 ? &trap : nullptr;
  }
  activeTrap = &trap;
  bool completed = true;
  if (setjmp(trap.env) == 0)
    fn(args);
  else
    completed = false;
  activeTrap = nullptr;
  std::lock_guard<std::mutex> lock(table.mutex);
  --table.callsInFlight;
  table.soleCall = nullptr;
  return completed;
}

/// Frees every buffer still recorded for `trap`'s call; returns them.
static llvm::DenseSet<void *> releaseCall(CheckTrap &trap) {
  AllocationTable &table = allocations();
  llvm::DenseSet<void *> freed;
  std::lock_guard<std::mutex> lock(table.mutex);
  for (auto &[p, call] : table.owner)
    if (call == &trap)
      freed.insert(p);
  for (void *p : freed) {
    table.owner.erase(p);
    std::free(p);
  }
  return freed;
}

std::string TensorSpec::describe() const {
  std::string s;
  for (int64_t d : shape)
    s += (d < 0 ? std::string("?") : std::to_string(d)) + "x";
  s += elementName(kind).str();
  return byReference ? "memref<" + s + ">" : s;
}

static std::optional<ElementKind> kindOf(Type t) {
  if (t.isF32())
    return ElementKind::f32;
  if (t.isF16())
    return ElementKind::f16;
  if (t.isBF16())
    return ElementKind::bf16;
  if (t.isF64())
    return ElementKind::f64;
  if (t.isInteger(32))
    return ElementKind::i32;
  if (t.isInteger(64))
    return ElementKind::i64;
  return std::nullopt;
}

/// `argument`: memrefs with the identity layout are accepted (passed by
/// reference); results are tensors.
static llvm::Expected<TensorSpec> specOf(Type t, const llvm::Twine &what,
                                         bool argument) {
  auto shaped = dyn_cast<ShapedType>(t);
  auto memref = dyn_cast<MemRefType>(t);
  bool ok = isa<RankedTensorType>(t) ||
            (argument && memref && memref.getLayout().isIdentity() &&
             !memref.getMemorySpace());
  std::optional<ElementKind> kind =
      ok ? kindOf(shaped.getElementType()) : std::nullopt;
  if (!kind) {
    std::string s;
    llvm::raw_string_ostream os(s);
    os << t;
    return makeError(what + " has type " + s +
                     "; entry points take ranked tensors (or, by reference, "
                     "memrefs with the identity layout) and return ranked "
                     "tensors, of f32, f16, bf16, f64, i32 or i64");
  }
  TensorSpec spec{*kind, {}, /*byReference=*/bool(memref), /*name=*/""};
  for (int64_t d : shaped.getShape())
    spec.shape.push_back(ShapedType::isDynamic(d) ? -1 : d);
  return spec;
}

/// POSENC_NUM_THREADS, when set, as the OpenMP runtime's default thread
/// count (what code compiled with num-threads=0 uses), set at each compile
/// of threaded code.
static llvm::Error applyThreadCount() {
  const char *env = std::getenv("POSENC_NUM_THREADS");
  if (!env)
    return llvm::Error::success();
  char *end = nullptr;
  long n = std::strtol(env, &end, 10);
  if (*env == '\0' || *end != '\0' || n < 1 || n > 4096)
    return makeError("POSENC_NUM_THREADS='" + llvm::Twine(env) +
                     "' is not a thread count in [1, 4096]");
  auto *set = reinterpret_cast<void (*)(int)>(
      llvm::sys::DynamicLibrary::SearchForAddressOfSymbol(
          "omp_set_num_threads"));
  if (!set)
    return makeError("POSENC_NUM_THREADS: omp_set_num_threads not found in "
                     "the loaded OpenMP runtime");
  set(int(n));
  return llvm::Error::success();
}

llvm::Expected<std::string>
mlir::posenc::runtime::withThreads(StringRef pipeline, int64_t threads) {
  if (threads < 0)
    return makeError("threads = " + llvm::Twine(threads) +
                     " must be >= 0 (0: POSENC_NUM_THREADS, else every "
                     "core; 1: no threads)");
  StringRef name = "posenc-lower-to-cpu";
  std::string option = "num-threads=" + std::to_string(threads);
  std::string out;
  bool found = false;
  size_t pos = 0;
  while (true) {
    size_t at = pipeline.find(name, pos);
    if (at == StringRef::npos)
      break;
    size_t end = at + name.size();
    // A longer pass name that starts with this one is not it.
    if (end < pipeline.size() && pipeline[end] != '{' && pipeline[end] != ',' &&
        pipeline[end] != ')' && pipeline[end] != ' ') {
      out += pipeline.slice(pos, end);
      pos = end;
      continue;
    }
    found = true;
    out += pipeline.slice(pos, end);
    if (end < pipeline.size() && pipeline[end] == '{') {
      size_t close = pipeline.find('}', end);
      if (close == StringRef::npos)
        return makeError("pipeline '" + pipeline +
                         "': unterminated options of " + name);
      StringRef opts = pipeline.slice(end + 1, close);
      if (opts.contains("num-threads"))
        return makeError("pipeline '" + pipeline +
                         "' sets num-threads already; give the thread count "
                         "once");
      out += "{" + opts.str() + (opts.trim().empty() ? "" : " ") + option + "}";
      pos = close + 1;
    } else {
      out += "{" + option + "}";
      pos = end;
    }
  }
  if (!found)
    return makeError("a thread count applies to posenc-lower-to-cpu, which "
                     "pipeline '" +
                     pipeline + "' does not run");
  out += pipeline.drop_front(pos);
  return out;
}

/// The first file position inside `loc`, or null.
static FileLineColLoc fileLocOf(Location loc) {
  FileLineColLoc found;
  loc->walk([&](Location inner) {
    found = dyn_cast<FileLineColLoc>(inner);
    return found ? WalkResult::interrupt() : WalkResult::advance();
  });
  return found;
}

/// The source position of `loc` (the first file position inside it).
static std::optional<std::pair<unsigned, unsigned>> positionOf(Location loc) {
  if (FileLineColLoc file = fileLocOf(loc))
    return std::pair{file.getLine(), file.getColumn()};
  return std::nullopt;
}

/// The prefix of every function a module defines, once compiled (see
/// CompiledModule::compile).
constexpr const char *kJitPrefix = "__posenc_fn_";

/// The SSA name ("%x") at a block argument's location in the source: the
/// parser locates each argument at its name. Empty when the location is not
/// in `sourceMgr`'s buffer (an explicit loc(...)).
static std::string argumentName(llvm::SourceMgr &sourceMgr, Location loc) {
  auto pos = positionOf(loc);
  if (!pos || sourceMgr.getNumBuffers() != 1)
    return "";
  const llvm::MemoryBuffer *buffer = sourceMgr.getMemoryBuffer(1);
  llvm::SMLoc at =
      sourceMgr.FindLocForLineAndColumn(1, pos->first, pos->second);
  if (!at.isValid())
    return "";
  StringRef rest(at.getPointer(), buffer->getBufferEnd() - at.getPointer());
  if (!rest.starts_with("%"))
    return "";
  size_t end = rest.find_if_not([](char c) {
    return llvm::isAlnum(c) || c == '_' || c == '$' || c == '.' || c == '-' ||
           c == '%' || c == '#';
  });
  return rest.take_front(std::min<size_t>(end, 64)).str();
}

/// Routes compiled code's allocations through posencAlloc: each
/// aligned_alloc(a, n) becomes posenc_aligned_alloc(a, n, site) and each
/// malloc(n) posenc_malloc(n, site), where `site` names the op of the
/// input the buffer comes from (`opAt`: source position -> op name), or
/// the function allocating when its location was lost in lowering.
static void routeAllocations(
    ModuleOp module,
    const std::map<std::pair<unsigned, unsigned>, std::string> &opAt) {
  SmallVector<LLVM::CallOp> calls;
  module.walk([&](LLVM::CallOp call) {
    std::optional<StringRef> callee = call.getCallee();
    if (callee && (*callee == "aligned_alloc" || *callee == "malloc"))
      calls.push_back(call);
  });
  if (calls.empty())
    return;
  OpBuilder b(module.getBodyRegion());
  b.setInsertionPointToStart(module.getBody());
  MLIRContext *ctx = module.getContext();
  Type ptr = LLVM::LLVMPointerType::get(ctx);
  Type i64 = IntegerType::get(ctx, 64);
  // The result is a fresh block, as malloc's is: without `noalias` LLVM
  // must assume a buffer may overlap every other one, and it then cannot
  // vectorize a loop that reads one buffer at computed indices (a bias
  // table) and writes another (the scores).
  auto declare = [&](StringRef name, ArrayRef<Type> params) {
    if (module.lookupSymbol(name))
      return;
    auto fn = LLVM::LLVMFuncOp::create(
        b, module.getLoc(), name, LLVM::LLVMFunctionType::get(ptr, params));
    fn.setResultAttr(0, LLVM::LLVMDialect::getNoAliasAttrName(),
                     b.getUnitAttr());
  };
  declare("posenc_aligned_alloc", {i64, i64, ptr});
  declare("posenc_malloc", {i64, ptr});
  llvm::StringMap<std::string> globals;
  for (LLVM::CallOp call : calls) {
    std::string site;
    if (auto pos = positionOf(call.getLoc()); pos && opAt.count(*pos)) {
      site = opAt.at(*pos) + " at " +
             fileLocOf(call.getLoc()).getFilename().str() + ":" +
             std::to_string(pos->first) + ":" + std::to_string(pos->second);
    } else if (auto fn = call->getParentOfType<LLVM::LLVMFuncOp>()) {
      StringRef name = fn.getName();
      name.consume_front(kJitPrefix);
      site = "a buffer in @" + name.str();
    } else {
      site = "a buffer";
    }
    std::string &global = globals[site];
    if (global.empty()) {
      global = "__posenc_site_" + std::to_string(globals.size());
      b.setInsertionPointToStart(module.getBody());
      std::string bytes = site + '\0';
      LLVM::GlobalOp::create(
          b, module.getLoc(),
          LLVM::LLVMArrayType::get(IntegerType::get(ctx, 8), bytes.size()),
          /*isConstant=*/true, LLVM::Linkage::Internal, global,
          b.getStringAttr(bytes));
    }
    b.setInsertionPoint(call);
    Value text = LLVM::AddressOfOp::create(b, call.getLoc(), ptr, global);
    bool aligned = *call.getCallee() == "aligned_alloc";
    SmallVector<Value> operands(call.getArgOperands());
    operands.push_back(text);
    auto routed = LLVM::CallOp::create(
        b, call.getLoc(), TypeRange{ptr},
        aligned ? "posenc_aligned_alloc" : "posenc_malloc", operands);
    call.getResult().replaceAllUsesWith(routed.getResult());
    call.erase();
  }
}

/// Process-wide registration of passes and the native target, once.
static void initializeOnce() {
  static std::once_flag flag;
  std::call_once(flag, [] {
    registerAllPasses();
    registerPosencPasses();
    llvm::InitializeNativeTarget();
    llvm::InitializeNativeTargetAsmPrinter();
  });
}

struct CompiledModule::Impl {
  MLIRContext context;
  OwningOpRef<ModuleOp> module;
  std::unique_ptr<llvm::TargetMachine> targetMachine;
  std::unique_ptr<ExecutionEngine> engine;
  std::vector<std::string> names;
  llvm::StringMap<Signature> signatures;
  /// Why a public function cannot be called (non-tensor types).
  llvm::StringMap<std::string> unsupported;
  double lastCallMs = 0;

  explicit Impl(const DialectRegistry &registry) : context(registry) {}
};

CompiledModule::CompiledModule() = default;
CompiledModule::~CompiledModule() = default;

double CompiledModule::lastCallMs() const { return impl->lastCallMs; }

llvm::ArrayRef<std::string> CompiledModule::functions() const {
  return impl->names;
}

llvm::Expected<std::string>
CompiledModule::resolve(llvm::StringRef name) const {
  if (!name.empty()) {
    if (impl->signatures.count(name))
      return name.str();
    auto it = impl->unsupported.find(name);
    if (it != impl->unsupported.end())
      return makeError(it->second);
    return makeError("no public function '" + name + "' in the input");
  }
  size_t count = impl->names.size() + impl->unsupported.size();
  if (count == 1 && impl->names.size() == 1)
    return impl->names.front();
  if (count == 1)
    return makeError(impl->unsupported.begin()->second);
  if (count == 0)
    return makeError("the input has no public function to run");
  std::string list;
  for (const std::string &n : impl->names)
    list += (list.empty() ? "@" : ", @") + n;
  return makeError("the input has " + llvm::Twine(count) +
                   " public functions (" + list + "); name the entry point");
}

llvm::Expected<const Signature &>
CompiledModule::signature(llvm::StringRef name) const {
  llvm::Expected<std::string> resolved = resolve(name);
  if (!resolved)
    return resolved.takeError();
  return impl->signatures.find(*resolved)->second;
}

static DiagnosticRecord recordOf(const Diagnostic &diag) {
  DiagnosticRecord record;
  if (auto file = dyn_cast<FileLineColLoc>(diag.getLocation()))
    record.location =
        (file.getFilename().strref() + ":" + llvm::Twine(file.getLine()) + ":" +
         llvm::Twine(file.getColumn()))
            .str();
  else
    llvm::raw_string_ostream(record.location) << diag.getLocation();
  switch (diag.getSeverity()) {
  case DiagnosticSeverity::Error:
    record.severity = "error";
    break;
  case DiagnosticSeverity::Warning:
    record.severity = "warning";
    break;
  case DiagnosticSeverity::Note:
    record.severity = "note";
    break;
  case DiagnosticSeverity::Remark:
    record.severity = "remark";
    break;
  }
  record.message = diag.str();
  for (const Diagnostic &note : diag.getNotes())
    record.notes.push_back(recordOf(note));
  return record;
}

/// `options` printed ("{a=1 b=true}") as (name, value) pairs.
static std::vector<std::pair<std::string, std::string>>
optionPairs(const mlir::detail::PassOptions &options) {
  std::string text;
  llvm::raw_string_ostream os(text);
  options.print(os);
  StringRef rest = StringRef(text).trim().drop_front().drop_back();
  std::vector<std::pair<std::string, std::string>> pairs;
  while (!(rest = rest.ltrim()).empty()) {
    auto [item, tail] = rest.split(' ');
    auto [name, value] = item.split('=');
    pairs.emplace_back(name.str(), value.str());
    rest = tail;
  }
  return pairs;
}

llvm::Expected<std::vector<std::pair<std::string, std::string>>>
mlir::posenc::runtime::pipelineOptions(llvm::StringRef pipeline) {
  if (pipeline == "posenc-lower-to-cpu")
    return optionPairs(PosencToCPUPipelineOptions());
  if (pipeline == "posenc-lower-to-nvvm")
    return optionPairs(PosencToNVVMPipelineOptions());
  return makeError("no posenc pipeline named '" + pipeline +
                   "' (posenc-lower-to-cpu, posenc-lower-to-nvvm)");
}

llvm::Expected<RopeTable>
mlir::posenc::runtime::ropeTable(llvm::StringRef scaling, double base,
                                 int64_t rotary, int64_t seqLen) {
  if (!(base > 1.0) || !std::isfinite(base))
    return makeError("base must be a finite number > 1, got " +
                     std::to_string(base));
  if (rotary <= 0 || rotary % 2 || rotary > (int64_t(1) << 20))
    return makeError("rotary dims must be even, positive and at most 2^20 "
                     "(as posenc.rope's rotary_dim), got " +
                     llvm::Twine(rotary));
  if (seqLen < 0)
    return makeError("seq_len must be >= 0, got " + llvm::Twine(seqLen));
  MLIRContext ctx;
  ctx.loadDialect<PosencDialect>();
  std::string diagText;
  llvm::raw_string_ostream diagStream(diagText);
  ScopedDiagnosticHandler handler(&ctx, [&](Diagnostic &diag) {
    diagStream << (diagText.empty() ? "" : "; ") << diag.str();
    return success();
  });
  Attribute attr = parseAttribute(scaling.trim(), &ctx);
  auto scalingAttr = llvm::dyn_cast_if_present<RopeScalingAttr>(attr);
  // The attribute text is echoed, cut short: a LongRoPE list may be long.
  std::string shown = scaling.trim().str();
  if (shown.size() > 160)
    shown = shown.substr(0, 160) + "...";
  if (!scalingAttr)
    return makeError(
        "invalid rope scaling '" + shown + "': " +
        (diagText.empty() ? "not a #posenc.rope_scaling attribute" : diagText));
  if (scalingAttr.getKind() == RopeScalingKind::longrope) {
    std::pair<const char *, DenseF64ArrayAttr> lists[] = {
        {"short_factor", scalingAttr.getShortFactor()},
        {"long_factor", scalingAttr.getLongFactor()}};
    for (auto [name, list] : lists)
      if (!list || int64_t(list.size()) != rotary / 2)
        return makeError(std::string("longrope ") + name + " has " +
                         std::to_string(list ? list.size() : 0) +
                         " entries but rotary dims / 2 is " +
                         std::to_string(rotary / 2));
  }
  llvm::SmallVector<double> omega = ropeFrequenciesForRun(
      scalingAttr, base, rotary, std::max<int64_t>(seqLen - 1, 0));
  return RopeTable{std::vector<double>(omega.begin(), omega.end()),
                   defaultRopeAttentionFactor(scalingAttr)};
}

llvm::Expected<std::unique_ptr<CompiledModule>>
CompiledModule::compile(llvm::StringRef source, llvm::StringRef pipeline,
                        llvm::StringRef sourceName,
                        std::vector<DiagnosticRecord> *diagnostics) {
  initializeOnce();
  DialectRegistry registry;
  registerAllPosencDialects(registry);

  std::unique_ptr<CompiledModule> result(new CompiledModule());
  result->impl = std::make_unique<Impl>(registry);
  Impl &impl = *result->impl;
  MLIRContext &ctx = impl.context;

  // Collect every diagnostic, with its source line, into the error.
  std::string diagText;
  llvm::raw_string_ostream diagStream(diagText);
  llvm::SourceMgr sourceMgr;
  sourceMgr.AddNewSourceBuffer(
      llvm::MemoryBuffer::getMemBufferCopy(source, sourceName), llvm::SMLoc());
  SourceMgrDiagnosticHandler handler(sourceMgr, &ctx, diagStream);
  // Registered last, so called first: records the diagnostic, then lets the
  // text handler print it.
  std::optional<ScopedDiagnosticHandler> recorder;
  if (diagnostics)
    recorder.emplace(&ctx, [&](Diagnostic &diag) {
      diagnostics->push_back(recordOf(diag));
      return failure();
    });
  auto fail = [&](const llvm::Twine &msg) {
    return makeError(msg + (diagText.empty() ? "" : ":\n" + diagText));
  };

  // Binary data (bytecode aside) would be echoed by the parser as the
  // offending source line: name the first control byte instead.
  if (!isBytecode(llvm::MemoryBufferRef(source, sourceName))) {
    size_t bad = source.find_first_of(llvm::StringRef(
        "\x00\x01\x02\x03\x04\x05\x06\x07\x08\x0e\x0f\x10\x11\x12\x13"
        "\x14\x15\x16\x17\x18\x19\x1a\x1b\x1c\x1d\x1e\x1f\x7f",
        28));
    if (bad != llvm::StringRef::npos)
      return makeError(llvm::formatv("cannot parse the input: control byte "
                                     "{0:x2} at offset {1}; the input is "
                                     "neither MLIR text nor MLIR bytecode",
                                     static_cast<unsigned char>(source[bad]),
                                     bad)
                           .str());
  }
  if (std::optional<std::string> crash = upstreamParserCrash(source))
    return makeError("cannot parse the input: " + *crash);
  // Parsed, then verified: a verifier's error is not a syntax error.
  impl.module = parseSourceFile<ModuleOp>(
      sourceMgr, ParserConfig(&ctx, /*verifyAfterParse=*/false));
  if (!impl.module)
    return fail("cannot parse the input");
  if (failed(verify(*impl.module)))
    return fail("the input is not valid posenc/MLIR (the verifier rejects it)");

  for (auto fn : impl.module->getOps<func::FuncOp>()) {
    if (!fn.isPublic() || fn.isDeclaration())
      continue;
    std::string name = fn.getSymName().str();
    Signature sig;
    llvm::Error err = llvm::Error::success();
    for (auto [i, t] : llvm::enumerate(fn.getArgumentTypes())) {
      auto spec = specOf(t, "argument #" + llvm::Twine(i) + " of @" + name,
                         /*argument=*/true);
      if (!spec) {
        err = spec.takeError();
        break;
      }
      spec->name = argumentName(sourceMgr, fn.getArgument(i).getLoc());
      sig.inputs.push_back(*spec);
    }
    for (auto [i, t] : llvm::enumerate(fn.getResultTypes())) {
      if (err)
        break;
      auto spec = specOf(t, "result #" + llvm::Twine(i) + " of @" + name,
                         /*argument=*/false);
      if (!spec) {
        err = spec.takeError();
        break;
      }
      sig.results.push_back(*spec);
    }
    if (err) {
      impl.unsupported[name] = toString(std::move(err));
      continue;
    }
    impl.names.push_back(name);
    impl.signatures[name] = std::move(sig);
  }
  // Every function the module defines gets a name no library uses: the JIT
  // resolves the lowered code's calls to libm and libc (sin, exp, malloc,
  // puts, ...) by name, and a module function called `sin` would otherwise
  // be called by the f64 sines of its own body. Declarations keep theirs.
  for (auto fn : impl.module->getOps<func::FuncOp>())
    if (fn.getSymName().starts_with(kJitPrefix))
      return makeError("@" + fn.getSymName() +
                       ": function names beginning with " + kJitPrefix +
                       " are reserved for compiled functions");
  SymbolTable symbols(*impl.module);
  for (auto fn :
       llvm::make_early_inc_range(impl.module->getOps<func::FuncOp>()))
    if (!fn.isDeclaration() &&
        failed(symbols.rename(fn, (kJitPrefix + fn.getSymName()).str())))
      return fail("cannot rename @" + fn.getSymName().str());

  PassManager pm(&ctx);
  // Tensor arguments are never written, whatever the pipeline: run() then
  // passes the caller's arrays in place, without a copy.
  pm.addPass(createPosencReadOnlyArgumentsPass());
  std::string pipelineErrors;
  llvm::raw_string_ostream pipelineStream(pipelineErrors);
  // The module is the anchor: `builtin.module(p)` (as posenc-opt spells it)
  // and `p` are the same pipeline.
  StringRef passes = pipeline.trim();
  if (passes.starts_with("builtin.module(") && passes.ends_with(")"))
    passes = passes.drop_front(strlen("builtin.module(")).drop_back().trim();
  if (failed(parsePassPipeline(passes, pm, pipelineStream)))
    return makeError("invalid pipeline '" + pipeline + "': " + pipelineErrors);
  // Which op of the input sits at each source position, to name the op a
  // failed allocation was for.
  std::map<std::pair<unsigned, unsigned>, std::string> opAt;
  impl.module->walk([&](Operation *op) {
    if (auto pos = positionOf(op->getLoc()))
      opAt.emplace(*pos, op->getName().getStringRef().str());
  });
  if (failed(pm.run(*impl.module)))
    return fail("lowering with '" + pipeline + "' failed");
  // Compiled code is in dialects that translate to LLVM IR (LLVM, OpenMP):
  // name what the pipeline left.
  Operation *left = nullptr;
  impl.module->walk<WalkOrder::PreOrder>([&](Operation *op) {
    Dialect *dialect = op->getDialect();
    if (op == impl.module->getOperation() ||
        (dialect &&
         dialect->getRegisteredInterface<LLVMTranslationDialectInterface>()))
      return WalkResult::advance();
    left = op;
    return WalkResult::interrupt();
  });
  if (left) {
    std::string name = left->getName().getStringRef().str();
    return fail("pipeline '" + pipeline +
                "' does not lower the module to "
                "the LLVM dialect (" +
                name +
                " is left); run "
                "posenc-lower-to-cpu, or a pipeline ending in LLVM, "
                "before compiling");
  }
  // The JIT compiles for this host: an instruction it lacks would stop
  // LLVM's instruction selection with a fatal error (posenc's own bf16
  // dot products with bf16-dot=on, or user IR calling the intrinsic).
  if (!llvm::sys::getHostCPUFeatures().lookup("avx512bf16")) {
    std::string needs;
    impl.module->walk([&](LLVM::CallIntrinsicOp call) {
      if (call.getIntrin().starts_with("llvm.x86.avx512bf16."))
        needs = call.getIntrin().str();
      return needs.empty() ? WalkResult::advance() : WalkResult::interrupt();
    });
    if (!needs.empty())
      return fail("the code calls " + needs +
                  " (AVX512-BF16), which this host's CPU lacks; compile "
                  "with posenc-lower-to-cpu{bf16-dot=host} (the default) or "
                  "bf16-dot=off");
  }
  routeAllocations(*impl.module, opAt);

  // Optimize for this host's CPU: without a target machine the vectorizer
  // has no cost model for the host's vector units.
  auto tmBuilder = llvm::orc::JITTargetMachineBuilder::detectHost();
  if (!tmBuilder)
    return fail("cannot detect the host target: " +
                toString(tmBuilder.takeError()));
  // On AMD Zen a vector gather is slower than the scalar loads it replaces,
  // yet LLVM's cost model forms them (MLA's absorbed decode, whose key
  // concat selects between two buffers per element, ran ~25% slower once
  // buffers were known not to alias).
  if (StringRef(tmBuilder->getCPU()).starts_with("znver"))
    tmBuilder->getFeatures().AddFeature("prefer-no-gather");
  auto tm = tmBuilder->createTargetMachine();
  if (!tm)
    return fail("cannot create a target machine: " + toString(tm.takeError()));
  impl.targetMachine = std::move(*tm);
  auto transformer = makeOptimizingTransformer(3, 0, impl.targetMachine.get());
  ExecutionEngineOptions options;
  options.transformer = transformer;
  // Strided memref.copy in user IR calls memrefCopy from MLIR's C runner
  // utils; posenc's own lowerings need no runtime library.
  SmallVector<StringRef, 2> libs;
  if (llvm::sys::fs::exists(POSENC_MLIR_C_RUNNER_UTILS))
    libs.push_back(POSENC_MLIR_C_RUNNER_UTILS);
  // Code compiled for several threads (num-threads != 1) calls LLVM's
  // OpenMP runtime.
  bool threaded = false;
  impl.module->walk([&](Operation *op) {
    if (op->getName().getDialectNamespace() == "omp")
      threaded = true;
    return threaded ? WalkResult::interrupt() : WalkResult::advance();
  });
  if (threaded) {
    if (!llvm::sys::fs::exists(POSENC_OPENMP_RUNTIME))
      return fail("the code runs on OpenMP threads (num-threads != 1) but "
                  "LLVM's OpenMP runtime " POSENC_OPENMP_RUNTIME
                  " is missing (Debian: libomp-22-dev; scripts/setup.sh "
                  "installs it)");
    libs.push_back(POSENC_OPENMP_RUNTIME);
  }
  options.sharedLibPaths = libs;
  options.jitCodeGenOptLevel = llvm::CodeGenOptLevel::Aggressive;
  auto engine = ExecutionEngine::create(*impl.module, options);
  if (!engine)
    return fail("JIT compilation failed: " + toString(engine.takeError()));
  impl.engine = std::move(*engine);
  impl.engine->registerSymbols([](llvm::orc::MangleAndInterner interner) {
    llvm::orc::SymbolMap map;
    map[interner("puts")] = {llvm::orc::ExecutorAddr::fromPtr(&posencCheckPuts),
                             llvm::JITSymbolFlags::Exported};
    map[interner("abort")] = {
        llvm::orc::ExecutorAddr::fromPtr(&posencCheckAbort),
        llvm::JITSymbolFlags::Exported};
    map[interner("posenc_aligned_alloc")] = {
        llvm::orc::ExecutorAddr::fromPtr(&posencAlignedAlloc),
        llvm::JITSymbolFlags::Exported};
    map[interner("posenc_malloc")] = {
        llvm::orc::ExecutorAddr::fromPtr(&posencMalloc),
        llvm::JITSymbolFlags::Exported};
    map[interner("free")] = {llvm::orc::ExecutorAddr::fromPtr(&posencFree),
                             llvm::JITSymbolFlags::Exported};
    return map;
  });
  if (threaded) {
    if (llvm::Error err = applyThreadCount())
      return err;
    ompLevel = reinterpret_cast<int (*)()>(
        llvm::sys::DynamicLibrary::SearchForAddressOfSymbol("omp_get_level"));
  }
  // Materialize every entry point now: the JIT compiles lazily on first
  // lookup, which would otherwise land in the first call's time.
  for (const std::string &name : impl.names)
    if (auto fn = impl.engine->lookupPacked(kJitPrefix + name); !fn)
      return fail("JIT compilation of @" + name +
                  " failed: " + toString(fn.takeError()));
  return result;
}

llvm::Error CompiledModule::checkInputs(llvm::StringRef name,
                                        llvm::ArrayRef<HostArray> args) const {
  llvm::Expected<std::string> entry = resolve(name);
  if (!entry)
    return entry.takeError();
  const Signature &sig = impl->signatures.find(*entry)->second;
  if (args.size() != sig.inputs.size()) {
    std::string expected;
    for (auto [i, spec] : llvm::enumerate(sig.inputs))
      expected += (i ? ", " : "") +
                  (spec.name.empty() ? "#" + std::to_string(i) : spec.name) +
                  ": " + spec.describe();
    return makeError("@" + *entry + " takes " + llvm::Twine(sig.inputs.size()) +
                     (sig.inputs.size() == 1 ? " input (" : " inputs (") +
                     expected + "), got " + llvm::Twine(args.size()));
  }
  for (auto [i, pair] : llvm::enumerate(llvm::zip(args, sig.inputs))) {
    const HostArray &a = std::get<0>(pair);
    const TensorSpec &s = std::get<1>(pair);
    bool ok = a.kind == s.kind && a.shape.size() == s.shape.size();
    for (size_t d = 0; ok && d < s.shape.size(); ++d)
      ok = s.shape[d] < 0 || s.shape[d] == a.shape[d];
    if (!ok)
      return makeError("input #" + llvm::Twine(i) + " of @" + *entry +
                       ": expected " + s.describe() + ", got " + a.describe());
  }
  return llvm::Error::success();
}

/// The LLVM lowering of a memref: allocated and aligned pointers, offset,
/// sizes and strides, all 8-byte fields.
static size_t descriptorFields(size_t rank) { return 3 + 2 * rank; }

llvm::Expected<std::vector<HostArray>>
CompiledModule::run(llvm::StringRef name,
                    llvm::MutableArrayRef<HostArray> args) {
  if (llvm::Error err = checkInputs(name, args))
    return std::move(err);
  std::string entry = cantFail(resolve(name));
  const Signature &sig = impl->signatures.find(entry)->second;

  // Every argument is the caller's array itself: memrefs (by reference) so
  // that writes land in it, tensors because compiled code never writes them
  // (posenc-read-only-arguments ran before the pipeline). Only a tensor
  // whose elements are not aligned to their size gets an aligned copy.
  std::vector<AlignedBytes> scratch;
  std::vector<std::vector<int64_t>> descriptors;
  llvm::DenseSet<int64_t> owned;
  alignas(16) static uint8_t emptyArray[16];
  for (auto [a, spec] : llvm::zip(args, sig.inputs)) {
    uint8_t *data;
    if (spec.byReference || a.numElements() == 0 ||
        reinterpret_cast<uintptr_t>(a.data()) % elementSize(a.kind) == 0) {
      data = a.numElements() ? a.data() : emptyArray;
    } else {
      scratch.push_back(
          a.external
              ? AlignedBytes(a.external,
                             a.external + a.numElements() * elementSize(a.kind))
              : a.bytes);
      if (scratch.back().empty())
        scratch.back().resize(elementSize(a.kind));
      data = scratch.back().data();
    }
    owned.insert(reinterpret_cast<int64_t>(data));
    std::vector<int64_t> desc(descriptorFields(a.shape.size()));
    auto ptr = reinterpret_cast<int64_t>(data);
    desc[0] = desc[1] = ptr;
    desc[2] = 0;
    int64_t stride = 1;
    for (size_t d = a.shape.size(); d-- > 0;) {
      desc[3 + d] = a.shape[d];
      desc[3 + a.shape.size() + d] = stride;
      stride *= a.shape[d];
    }
    descriptors.push_back(std::move(desc));
  }
  SmallVector<void *> packed;
  for (auto &desc : descriptors)
    for (int64_t &field : desc)
      packed.push_back(&field);
  size_t resultFields = 0;
  for (const TensorSpec &s : sig.results)
    resultFields += descriptorFields(s.shape.size());
  std::vector<int64_t> resultStorage(std::max<size_t>(resultFields, 1));
  if (!sig.results.empty())
    packed.push_back(resultStorage.data());

  auto fn = impl->engine->lookupPacked(kJitPrefix + entry);
  if (!fn)
    return fn.takeError();
  CheckTrap trap;
  auto start = std::chrono::steady_clock::now();
  bool completed = callTrapped(*fn, packed.data(), trap);
  impl->lastCallMs = std::chrono::duration<double, std::milli>(
                         std::chrono::steady_clock::now() - start)
                         .count();
  if (!completed) {
    releaseCall(trap);
    return makeError("@" + entry + " stopped: " + trap.message);
  }

  std::vector<HostArray> outputs;
  // memref.get_global marks constant buffers with this allocated pointer.
  owned.insert(int64_t(0xdeadbeef));
  size_t at = 0;
  SmallVector<void *> toFree;
  for (const TensorSpec &s : sig.results) {
    size_t rank = s.shape.size();
    const int64_t *desc = resultStorage.data() + at;
    at += descriptorFields(rank);
    HostArray out;
    out.kind = s.kind;
    for (size_t d = 0; d < rank; ++d)
      out.shape.push_back(desc[3 + d]);
    size_t esz = elementSize(s.kind);
    out.bytes.resize(out.numElements() * esz);
    auto *base = reinterpret_cast<const uint8_t *>(desc[1]) + desc[2] * esz;
    int64_t n = out.numElements();
    bool contiguous = true;
    for (int64_t d = rank - 1, stride = 1; d >= 0; stride *= out.shape[d], --d)
      contiguous &= out.shape[d] == 1 || desc[3 + rank + d] == stride;
    if (contiguous) {
      if (n > 0)
        std::memcpy(out.bytes.data(), base, n * esz);
      n = 0;
    }
    // Strided copy into row-major order.
    SmallVector<int64_t> idx(rank, 0);
    for (int64_t e = 0; e < n; ++e) {
      int64_t off = 0;
      for (size_t d = 0; d < rank; ++d)
        off += idx[d] * desc[3 + rank + d];
      std::memcpy(out.bytes.data() + e * esz, base + off * esz, esz);
      for (size_t d = rank; d-- > 0;) {
        if (++idx[d] < out.shape[d])
          break;
        idx[d] = 0;
      }
    }
    if (owned.insert(desc[0]).second)
      toFree.push_back(reinterpret_cast<void *>(desc[0]));
    outputs.push_back(std::move(out));
  }
  // Results and any buffer compiled code did not free; results allocated
  // while another call ran on worker threads were not recorded.
  llvm::DenseSet<void *> released = releaseCall(trap);
  for (void *p : toFree)
    if (!released.contains(p))
      std::free(p);
  return outputs;
}

bool mlir::posenc::runtime::retainFreedLargeBuffers() {
#if defined(__GLIBC__)
  // No mmap'ed blocks at all (glibc caps M_MMAP_THRESHOLD at 32 MiB), and
  // no trimming of the heap top below 2 GiB.
  return mallopt(M_MMAP_MAX, 0) == 1 && mallopt(M_TRIM_THRESHOLD, INT_MAX) == 1;
#else
  return false;
#endif
}

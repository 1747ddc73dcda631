//===- Runner.h - compile posenc IR and run it in-process -------*- C++ -*-===//
//
// Parses posenc IR, lowers it with a registered pipeline and runs an entry
// point through MLIR's ExecutionEngine on host arrays. Used by posenc-run
// and the Python package; the heavy MLIR includes stay in Runner.cpp.
//
//===----------------------------------------------------------------------===//

#ifndef POSENC_RUNTIME_RUNNER_H
#define POSENC_RUNTIME_RUNNER_H

#include "posenc/Runtime/HostArray.h"

#include <memory>

namespace mlir::posenc::runtime {

/// One tensor argument or result of an entry point, before lowering.
struct TensorSpec {
  ElementKind kind;
  /// -1 for dynamic dims.
  llvm::SmallVector<int64_t> shape;
  /// An argument of memref type: the function may read and write the
  /// caller's array in place, e.g. a KV cache. Tensor arguments are passed
  /// without a copy too, but compiled code never writes them (CompiledModule
  /// runs posenc-read-only-arguments before any pipeline).
  bool byReference = false;
  /// The SSA name the source gives an argument ("%x"); empty for results
  /// and for arguments the source does not name.
  std::string name;
  std::string describe() const;
};

/// One MLIR diagnostic of a failed compile, as data.
struct DiagnosticRecord {
  /// "file:line:col" (the source name given to compile), or MLIR's
  /// printed location when it has no file position.
  std::string location;
  /// "error", "warning", "note" or "remark".
  std::string severity;
  std::string message;
  std::vector<DiagnosticRecord> notes;
};

/// The tensor signature of one function.
struct Signature {
  llvm::SmallVector<TensorSpec> inputs, results;
};

/// `pipeline` with `num-threads=threads` set on each posenc-lower-to-cpu
/// it runs (0: POSENC_NUM_THREADS, else every core; 1: no threads). An
/// error when it runs no posenc-lower-to-cpu, sets num-threads itself, or
/// `threads` is negative.
llvm::Expected<std::string> withThreads(llvm::StringRef pipeline,
                                        int64_t threads);

/// The options of a registered posenc pipeline ("posenc-lower-to-cpu" or
/// "posenc-lower-to-nvvm") and their defaults, in the pipeline's textual
/// form ("true", "64", "auto"), sorted by name. An error for other names.
llvm::Expected<std::vector<std::pair<std::string, std::string>>>
pipelineOptions(llvm::StringRef pipeline);

/// What posenc.rope computes for a configuration: the frequencies ω_i
/// (i < rotary/2, radians per position, float64) and the attention factor.
struct RopeTable {
  std::vector<double> omega;
  double attentionFactor;
};

/// The frequencies and attention factor of `scaling` (a
/// `#posenc.rope_scaling<...>` attribute in its textual form) with `base`
/// and `rotary` dims, for a run of `seqLen` positions (dynamic NTK and
/// LongRoPE depend on it) -- computed by the code the compiler uses. An
/// error names a bad attribute (its verifier's message) or value.
llvm::Expected<RopeTable> ropeTable(llvm::StringRef scaling, double base,
                                    int64_t rotary, int64_t seqLen);

/// A module compiled for the host and ready to run any of its public
/// functions.
class CompiledModule {
public:
  ~CompiledModule();

  /// Parses `source`, lowers it with `pipeline` (a textual pass pipeline,
  /// e.g. "posenc-lower-to-cpu") and JIT-compiles it. Errors carry the MLIR
  /// diagnostics as text, located in `sourceName` (a file name, or
  /// "<input>"); `diagnostics`, when given, receives them as data too.
  static llvm::Expected<std::unique_ptr<CompiledModule>>
  compile(llvm::StringRef source,
          llvm::StringRef pipeline = "posenc-lower-to-cpu",
          llvm::StringRef sourceName = "<input>",
          std::vector<DiagnosticRecord> *diagnostics = nullptr);

  /// Public functions whose arguments and results are all supported
  /// tensors, in module order.
  llvm::ArrayRef<std::string> functions() const;

  /// `name`, or the only public function when `name` is empty.
  llvm::Expected<std::string> resolve(llvm::StringRef name) const;

  /// The signature of `name` (before lowering).
  llvm::Expected<const Signature &> signature(llvm::StringRef name) const;

  /// Checks count, element types and static dims of `args`; a wrong count
  /// lists the inputs `name` takes (SSA name and type).
  llvm::Error checkInputs(llvm::StringRef name,
                          llvm::ArrayRef<HostArray> args) const;

  /// Runs `name` once and returns copies of its results. Every argument is
  /// passed in place (no copy; an array whose data is not aligned to its
  /// element size is copied); writes of the function land in those the
  /// signature takes by reference (memrefs).
  llvm::Expected<std::vector<HostArray>>
  run(llvm::StringRef name, llvm::MutableArrayRef<HostArray> args);

  /// Wall time of the compiled code alone in the last run(), in ms (no
  /// argument copies, no result copies).
  double lastCallMs() const;

private:
  CompiledModule();
  struct Impl;
  std::unique_ptr<Impl> impl;
};

/// Makes glibc's malloc serve large blocks from its heap and keep them when
/// freed, instead of an mmap/munmap per block: the result buffer a call
/// frees then backs the next call's result without first-touch page faults
/// (for a 64 MiB result, as long as the copy itself). Process-wide, for
/// benchmarks and serving loops; returns false where the C library offers
/// no such control.
bool retainFreedLargeBuffers();

} // namespace mlir::posenc::runtime

#endif // POSENC_RUNTIME_RUNNER_H

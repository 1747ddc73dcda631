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
  /// An argument of memref type: the caller's array itself is passed
  /// (no copy) and the function may read and write it in place, e.g. a
  /// KV cache or weights. Tensors are passed as copies.
  bool byReference = false;
  std::string describe() const;
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

/// A module compiled for the host and ready to run any of its public
/// functions.
class CompiledModule {
public:
  ~CompiledModule();

  /// Parses `source`, lowers it with `pipeline` (a textual pass pipeline,
  /// e.g. "posenc-lower-to-cpu") and JIT-compiles it. Errors carry the MLIR
  /// diagnostics.
  static llvm::Expected<std::unique_ptr<CompiledModule>>
  compile(llvm::StringRef source,
          llvm::StringRef pipeline = "posenc-lower-to-cpu");

  /// Public functions whose arguments and results are all supported
  /// tensors, in module order.
  llvm::ArrayRef<std::string> functions() const;

  /// `name`, or the only public function when `name` is empty.
  llvm::Expected<std::string> resolve(llvm::StringRef name) const;

  /// The signature of `name` (before lowering).
  llvm::Expected<const Signature &> signature(llvm::StringRef name) const;

  /// Checks count, element types and static dims of `args`.
  llvm::Error checkInputs(llvm::StringRef name,
                          llvm::ArrayRef<HostArray> args) const;

  /// Runs `name` once and returns copies of its results. Arguments the
  /// signature takes by reference (memrefs) are passed in place: writes of
  /// the function land in them.
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

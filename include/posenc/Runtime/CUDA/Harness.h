//===- Harness.h - AOT GPU executables: the entry they call -----*- C++ -*-===//
//
// An AOT executable (scripts/posenc_aot.py) is the lowered module's object
// file, the CUDA runtime, the harness (main: .npy in and out, CUDA-event
// timing) and a generated stub that defines `posencEntry`: the signature
// of the entry function and a call through its C interface.
//
//===----------------------------------------------------------------------===//

#ifndef POSENC_RUNTIME_CUDA_HARNESS_H
#define POSENC_RUNTIME_CUDA_HARNESS_H

#include <cstdint>

extern "C" {
/// One memref argument or result: rank, element type ("f32", "f16",
/// "bf16", "f64", "i32", "i64") and static sizes (-1: dynamic).
struct PosencEntryArg {
  int rank;
  const char *dtype;
  const int64_t *shape;
};

struct PosencEntry {
  const char *name;
  int numArgs;
  const PosencEntryArg *args;
  int numResults;
  const PosencEntryArg *results;
  /// Calls _mlir_ciface_<name>: `args[i]` points to the descriptor of
  /// argument i ({allocated, aligned, offset, sizes[rank], strides[rank]}),
  /// `results` to the results' descriptors, one after the other.
  void (*call)(void **args, void *results);
};

/// Defined by the generated stub.
extern const PosencEntry posencEntry;
}

#endif // POSENC_RUNTIME_CUDA_HARNESS_H

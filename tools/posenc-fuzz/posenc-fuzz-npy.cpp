//===- posenc-fuzz-npy.cpp - libFuzzer target for the .npy reader ---------===//
//
// posenc-run and the Python package read user arrays through parseNpy; any
// byte string must give an array whose byte count matches its shape, or an
// error.
//
//===----------------------------------------------------------------------===//

#include "posenc/Runtime/HostArray.h"

#include <cstdint>
#include <cstdlib>

using namespace mlir::posenc::runtime;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  llvm::StringRef bytes(reinterpret_cast<const char *>(data), size);
  for (std::optional<ElementKind> expected :
       {std::optional<ElementKind>(), std::optional(ElementKind::bf16),
        std::optional(ElementKind::f32)}) {
    llvm::Expected<HostArray> array = parseNpy(bytes, "<fuzz>", expected);
    if (!array) {
      llvm::consumeError(array.takeError());
      continue;
    }
    if (array->bytes.size() !=
        uint64_t(array->numElements()) * elementSize(array->kind))
      abort();
  }
  return 0;
}

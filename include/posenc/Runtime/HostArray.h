//===- HostArray.h - dense host arrays and .npy files -----------*- C++ -*-===//
//
// The arrays that posenc-run and the Python package hand to compiled
// functions, and their .npy encoding.
//
//===----------------------------------------------------------------------===//

#ifndef POSENC_RUNTIME_HOSTARRAY_H
#define POSENC_RUNTIME_HOSTARRAY_H

#include "llvm/ADT/SmallVector.h"
#include "llvm/ADT/StringRef.h"
#include "llvm/Support/Error.h"

#include <cstddef>
#include <cstdint>
#include <new>
#include <optional>
#include <string>
#include <vector>

namespace mlir::posenc::runtime {

/// Element types a compiled entry point can take or return.
enum class ElementKind { f32, f16, bf16, f64, i32, i64 };

/// Size in bytes of one element.
size_t elementSize(ElementKind kind);
/// MLIR spelling: "f32", "bf16", "i64", ...
llvm::StringRef elementName(ElementKind kind);
std::optional<ElementKind> parseElementName(llvm::StringRef name);

/// Allocates on 64-byte (cache line) boundaries. Large std::vector buffers
/// start 16 bytes into a page, so every row of a [keys, heads, D] cache
/// would straddle one line more than it fills (bf16 decode at 32K keys read
/// about 15% slower from such a cache).
template <typename T> struct CacheLineAllocator {
  using value_type = T;
  static constexpr std::align_val_t kAlign{64};
  CacheLineAllocator() = default;
  template <typename U> CacheLineAllocator(const CacheLineAllocator<U> &) {}
  T *allocate(size_t n) {
    return static_cast<T *>(::operator new(n * sizeof(T), kAlign));
  }
  void deallocate(T *p, size_t) { ::operator delete(p, kAlign); }
  template <typename U> bool operator==(const CacheLineAllocator<U> &) const {
    return true;
  }
};
using AlignedBytes = std::vector<uint8_t, CacheLineAllocator<uint8_t>>;

/// A dense, row-major array: owned by the host (`bytes`), or the caller's
/// buffer (`external`, for arguments passed by reference).
struct HostArray {
  ElementKind kind = ElementKind::f32;
  llvm::SmallVector<int64_t> shape;
  AlignedBytes bytes;
  /// When set, the elements live here (row-major, numElements() of them)
  /// and `bytes` is unused; the caller keeps the buffer alive.
  uint8_t *external = nullptr;

  uint8_t *data() { return external ? external : bytes.data(); }

  int64_t numElements() const;
  /// "2x16xf32"-style description.
  std::string describe() const;
};

/// Reads a little-endian, C-order .npy file (format 1.0-3.0). bf16 arrays
/// are stored as uint16 ('<u2'); `expected` decides how '<u2' is read.
llvm::Expected<HostArray> readNpy(llvm::StringRef path,
                                  std::optional<ElementKind> expected = {});
/// Parses the bytes of a .npy file; `name` goes into error messages.
llvm::Expected<HostArray> parseNpy(llvm::StringRef data, llvm::StringRef name,
                                   std::optional<ElementKind> expected = {});
/// Writes `array` as .npy (bf16 as '<u2').
llvm::Error writeNpy(llvm::StringRef path, const HostArray &array);

/// This machine's physical memory in bytes (UINT64_MAX when unknown).
uint64_t physicalMemoryBytes();

/// An error naming `what` when `bytes` exceed this machine's physical
/// memory: such a request would fail inside an allocator that cannot
/// report it (or be killed when touched).
llvm::Error checkHostMemory(uint64_t bytes, const llvm::Twine &what);

/// Parses "random:2x16x4x64xf32" into a shape and element kind and fills it
/// from `seed`: floats uniform in [-1, 1), integers uniform in [0, 4096).
llvm::Expected<HostArray> makeRandom(llvm::StringRef spec, uint64_t seed);

} // namespace mlir::posenc::runtime

#endif // POSENC_RUNTIME_HOSTARRAY_H

//===- HostArray.cpp - dense host arrays and .npy files -------------------===//

#include "posenc/Runtime/HostArray.h"

#include "llvm/ADT/StringExtras.h"
#include "llvm/Support/Format.h"
#include "llvm/Support/MemoryBuffer.h"
#include "llvm/Support/raw_ostream.h"

#include <cstring>
#include <random>
#include <unistd.h>

using namespace llvm;
using namespace mlir::posenc::runtime;

size_t mlir::posenc::runtime::elementSize(ElementKind kind) {
  switch (kind) {
  case ElementKind::f16:
  case ElementKind::bf16:
    return 2;
  case ElementKind::f32:
  case ElementKind::i32:
    return 4;
  case ElementKind::f64:
  case ElementKind::i64:
    return 8;
  }
  llvm_unreachable("unknown element kind");
}

StringRef mlir::posenc::runtime::elementName(ElementKind kind) {
  switch (kind) {
  case ElementKind::f32:
    return "f32";
  case ElementKind::f16:
    return "f16";
  case ElementKind::bf16:
    return "bf16";
  case ElementKind::f64:
    return "f64";
  case ElementKind::i32:
    return "i32";
  case ElementKind::i64:
    return "i64";
  }
  llvm_unreachable("unknown element kind");
}

std::optional<ElementKind>
mlir::posenc::runtime::parseElementName(StringRef name) {
  for (ElementKind k : {ElementKind::f32, ElementKind::f16, ElementKind::bf16,
                        ElementKind::f64, ElementKind::i32, ElementKind::i64})
    if (elementName(k) == name)
      return k;
  return std::nullopt;
}

int64_t HostArray::numElements() const {
  int64_t n = 1;
  for (int64_t d : shape)
    n *= d;
  return n;
}

std::string HostArray::describe() const {
  std::string s;
  for (int64_t d : shape)
    s += std::to_string(d) + "x";
  return s + elementName(kind).str();
}

/// numpy's descr for each kind; bf16 travels as uint16.
static StringRef npyDescr(ElementKind kind) {
  switch (kind) {
  case ElementKind::f32:
    return "<f4";
  case ElementKind::f16:
    return "<f2";
  case ElementKind::bf16:
    return "<u2";
  case ElementKind::f64:
    return "<f8";
  case ElementKind::i32:
    return "<i4";
  case ElementKind::i64:
    return "<i8";
  }
  llvm_unreachable("unknown element kind");
}

static Error npyError(StringRef path, const Twine &msg) {
  return createStringError(inconvertibleErrorCode(),
                           path + ": not a usable .npy file: " + msg);
}

/// Value of `key` in the header dict: the text after "'key':" up to the
/// next top-level ',' or '}'.
static std::optional<StringRef> headerField(StringRef header, StringRef key) {
  std::string quoted = ("'" + key + "'").str();
  size_t at = header.find(quoted);
  if (at == StringRef::npos)
    return std::nullopt;
  StringRef rest = header.drop_front(at + quoted.size()).ltrim();
  if (!rest.consume_front(":"))
    return std::nullopt;
  rest = rest.ltrim();
  int depth = 0;
  size_t end = 0;
  for (; end < rest.size(); ++end) {
    char c = rest[end];
    if (c == '(')
      ++depth;
    else if (c == ')')
      --depth;
    else if ((c == ',' || c == '}') && depth == 0)
      break;
  }
  return rest.take_front(end).trim();
}

Expected<HostArray>
mlir::posenc::runtime::readNpy(StringRef path,
                               std::optional<ElementKind> expected) {
  auto file = MemoryBuffer::getFile(path, /*IsText=*/false,
                                    /*RequiresNullTerminator=*/false);
  if (!file)
    return createStringError(file.getError(), "cannot read '" + path + "': " +
                                                  file.getError().message());
  return parseNpy((*file)->getBuffer(), path, expected);
}

Expected<HostArray>
mlir::posenc::runtime::parseNpy(StringRef data, StringRef path,
                                std::optional<ElementKind> expected) {
  if (data.size() < 10 || !data.starts_with("\x93NUMPY"))
    return npyError(path, "missing the \\x93NUMPY magic");
  uint8_t major = data[6];
  size_t headerLen, offset;
  if (major == 1) {
    headerLen = uint8_t(data[8]) | (size_t(uint8_t(data[9])) << 8);
    offset = 10;
  } else if (major == 2 || major == 3) {
    if (data.size() < 12)
      return npyError(path, "truncated header");
    headerLen = 0;
    for (int i = 0; i < 4; ++i)
      headerLen |= size_t(uint8_t(data[8 + i])) << (8 * i);
    offset = 12;
  } else {
    return npyError(path, "unsupported format version " + Twine(int(major)));
  }
  if (data.size() < offset + headerLen)
    return npyError(path, "truncated header");
  StringRef header = data.substr(offset, headerLen);

  std::optional<StringRef> descr = headerField(header, "descr");
  std::optional<StringRef> fortran = headerField(header, "fortran_order");
  std::optional<StringRef> shapeText = headerField(header, "shape");
  if (!descr || !fortran || !shapeText)
    return npyError(path, "header lacks descr, fortran_order or shape");
  if (*fortran != "False")
    return npyError(path, "Fortran-order arrays are not supported");
  StringRef d = descr->trim("'\"");
  if (d.size() == 3 && d[0] == '|')
    return npyError(path, "unsupported dtype '" + d + "'");
  if (d.starts_with(">"))
    return npyError(path, "big-endian dtype '" + d + "' is not supported");

  HostArray array;
  if (d == "<f4")
    array.kind = ElementKind::f32;
  else if (d == "<f2")
    array.kind = ElementKind::f16;
  else if (d == "<u2")
    array.kind = ElementKind::bf16;
  else if (d == "<f8")
    array.kind = ElementKind::f64;
  else if (d == "<i4")
    array.kind = ElementKind::i32;
  else if (d == "<i8")
    array.kind = ElementKind::i64;
  else
    return npyError(path, "unsupported dtype '" + d +
                              "' (expected <f4, <f2, <f8, <i4, <i8, or <u2 "
                              "for bf16)");
  if (array.kind == ElementKind::bf16 && expected &&
      *expected != ElementKind::bf16)
    return npyError(path, "uint16 data is only accepted as bf16");

  StringRef dims = shapeText->trim();
  if (!dims.consume_front("(") || !dims.consume_back(")"))
    return npyError(path, "malformed shape " + *shapeText);
  SmallVector<StringRef> parts;
  dims.split(parts, ',', -1, /*KeepEmpty=*/false);
  for (StringRef p : parts) {
    p = p.trim();
    if (p.empty())
      continue;
    int64_t v;
    if (p.getAsInteger(10, v) || v < 0)
      return npyError(path, "malformed shape " + *shapeText);
    array.shape.push_back(v);
  }
  // Guard the element count against overflow before allocating.
  uint64_t count = 1;
  for (int64_t v : array.shape) {
    if (v != 0 && count > (uint64_t(1) << 40) / uint64_t(v))
      return npyError(path, "shape " + *shapeText + " is too large");
    count *= uint64_t(v);
  }
  uint64_t need = count * elementSize(array.kind);
  uint64_t have = data.size() - offset - headerLen;
  if (have != need)
    return npyError(path, "expected " + Twine(need) + " data bytes for shape " +
                              *shapeText + ", found " + Twine(have));
  const uint8_t *begin =
      reinterpret_cast<const uint8_t *>(data.data() + offset + headerLen);
  array.bytes.assign(begin, begin + need);
  return array;
}

Error mlir::posenc::runtime::writeNpy(StringRef path, const HostArray &array) {
  std::string shape = "(";
  for (int64_t d : array.shape)
    shape += std::to_string(d) + ", ";
  if (array.shape.size() > 1)
    shape.erase(shape.size() - 2);
  else if (array.shape.size() == 1)
    shape.erase(shape.size() - 1);
  shape += ")";
  std::string header = "{'descr': '" + npyDescr(array.kind).str() +
                       "', 'fortran_order': False, 'shape': " + shape + ", }";
  // Pad so that the data starts on a 64-byte boundary, ending in '\n'.
  size_t total = 10 + header.size() + 1;
  header.append((64 - total % 64) % 64, ' ');
  header += '\n';
  std::error_code ec;
  raw_fd_ostream os(path, ec);
  if (ec)
    return createStringError(ec,
                             "cannot write '" + path + "': " + ec.message());
  os << "\x93NUMPY" << char(1) << char(0) << char(header.size() & 0xff)
     << char((header.size() >> 8) & 0xff) << header;
  os.write(reinterpret_cast<const char *>(array.bytes.data()),
           array.bytes.size());
  // A full disk or a closed pipe is the caller's error, not a fatal one in
  // raw_fd_ostream's destructor.
  os.close();
  if (os.has_error()) {
    std::error_code err = os.error();
    os.clear_error();
    return createStringError(err,
                             "cannot write '" + path + "': " + err.message());
  }
  return Error::success();
}

uint64_t mlir::posenc::runtime::physicalMemoryBytes() {
  static const uint64_t bytes = [] {
    long pages = sysconf(_SC_PHYS_PAGES), pageSize = sysconf(_SC_PAGE_SIZE);
    return pages > 0 && pageSize > 0 ? uint64_t(pages) * uint64_t(pageSize)
                                     : UINT64_MAX;
  }();
  return bytes;
}

Error mlir::posenc::runtime::checkHostMemory(uint64_t bytes,
                                             const Twine &what) {
  if (bytes <= physicalMemoryBytes())
    return Error::success();
  double memory = double(physicalMemoryBytes());
  std::string text;
  raw_string_ostream os(text);
  os << what << " needs " << bytes << " bytes ("
     << format("%.3g", double(bytes) / (1 << 30)) << " GiB); this machine has "
     << format("%.3g", memory / (1 << 30)) << " GiB of memory";
  return createStringError(inconvertibleErrorCode(), text);
}

Expected<HostArray> mlir::posenc::runtime::makeRandom(StringRef spec,
                                                      uint64_t seed) {
  StringRef body = spec;
  if (!body.consume_front("random:"))
    return createStringError(inconvertibleErrorCode(),
                             "expected random:<dims>x<type>, got '" + spec +
                                 "'");
  SmallVector<StringRef> parts;
  body.split(parts, 'x');
  HostArray array;
  std::optional<ElementKind> kind = parseElementName(parts.back());
  if (!kind)
    return createStringError(inconvertibleErrorCode(),
                             "unknown element type '" + parts.back() +
                                 "' in '" + spec +
                                 "' (f32, f16, bf16, f64, i32, i64)");
  array.kind = *kind;
  uint64_t count = 1;
  for (StringRef p : ArrayRef<StringRef>(parts).drop_back()) {
    int64_t v;
    if (p.getAsInteger(10, v) || v < 0)
      return createStringError(inconvertibleErrorCode(),
                               "bad dimension '" + p + "' in '" + spec + "'");
    if (v != 0 && count > (uint64_t(1) << 40) / uint64_t(v))
      return createStringError(inconvertibleErrorCode(),
                               "'" + spec + "' is too large");
    count *= uint64_t(v);
    array.shape.push_back(v);
  }
  if (Error err =
          checkHostMemory(count * elementSize(array.kind), "'" + spec + "'"))
    return err;
  array.bytes.resize(count * elementSize(array.kind));
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<double> real(-1.0, 1.0);
  std::uniform_int_distribution<int64_t> integer(0, 4095);
  for (uint64_t i = 0; i < count; ++i) {
    uint8_t *dst = array.bytes.data() + i * elementSize(array.kind);
    switch (array.kind) {
    case ElementKind::f32: {
      float v = float(real(rng));
      std::memcpy(dst, &v, 4);
      break;
    }
    case ElementKind::f64: {
      double v = real(rng);
      std::memcpy(dst, &v, 8);
      break;
    }
    case ElementKind::f16:
    case ElementKind::bf16: {
      // Truncate an f32 (bf16) or round through the f16 bit layout.
      float v = float(real(rng));
      uint32_t bits;
      std::memcpy(&bits, &v, 4);
      uint16_t h;
      if (array.kind == ElementKind::bf16) {
        h = uint16_t(bits >> 16);
      } else {
        // |v| < 1: normal or subnormal half without overflow handling.
        uint32_t sign = (bits >> 16) & 0x8000;
        int32_t exp = int32_t((bits >> 23) & 0xff) - 127 + 15;
        uint32_t mant = (bits >> 13) & 0x3ff;
        h = exp <= 0 ? uint16_t(sign) : uint16_t(sign | (exp << 10) | mant);
      }
      std::memcpy(dst, &h, 2);
      break;
    }
    case ElementKind::i32: {
      int32_t v = int32_t(integer(rng));
      std::memcpy(dst, &v, 4);
      break;
    }
    case ElementKind::i64: {
      int64_t v = integer(rng);
      std::memcpy(dst, &v, 8);
      break;
    }
    }
  }
  return array;
}

//===- Harness.cpp - main of AOT GPU executables --------------------------===//
//
//   model.gpu [--inputs a.npy b.npy ...] [--random SEED] [--poison]
//             [--outputs o.npy ...] [--warmup W] [--repeat N]
//             [--copy-bytes BYTES] [--expect ref.npy ... --tolerance T]
//   model.gpu --input=@a.npy --input=@b.npy --output=@o.npy --benchmark=N
//             (posenc-run's spelling of the same)
//
// Inputs come from .npy files (bf16 as uint16 bits) or, with --random,
// are generated here from the entry's static shapes (floats uniform in
// [-1, 1), integers 0, 1, 2, ... as positions), so benchmarks carry no
// data. Each call is bracketed by CUDA events on the legacy default
// stream (the runtime's streams are blocking, so the events order with
// the call's work); after W warm-up calls, N timed calls give the median.
// --copy-bytes times a device-to-device copy of that size the same way,
// the bandwidth peer of the memory-bound ops. --expect compares each
// result with a float64 reference (max |out - ref| / max |ref|, NaNs must
// agree) and exits 3 above the tolerance. Depends on nothing but the
// NVIDIA driver (libcuda.so.1), opened at the first driver call: --help and
// argument errors need no driver.
//
//===----------------------------------------------------------------------===//

#include "posenc/Runtime/CUDA/Harness.h"
#include "posenc/Runtime/CUDA/CudaRuntime.h"

#include <cuda.h>

#include <algorithm>
#include <cerrno>
#include <climits>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <random>
#include <sstream>
#include <string>
#include <vector>

namespace {
[[noreturn]] void fail(const std::string &message) {
  std::fprintf(stderr, "posenc-gpu: %s\n", message.c_str());
  std::fflush(nullptr);
  std::_Exit(2);
}

/// `text` as an integer in [lo, hi]; otherwise a message naming `what`
/// (std::stoll would throw, and the harness has no exceptions).
long long parseInteger(const std::string &what, const std::string &text,
                       long long lo, long long hi) {
  const char *begin = text.c_str();
  char *end = nullptr;
  errno = 0;
  long long v = std::strtoll(begin, &end, 10);
  while (*end == ' ')
    ++end;
  if (end == begin || *end != '\0' || errno == ERANGE || v < lo || v > hi)
    fail(what + ": expected an integer in [" + std::to_string(lo) + ", " +
         std::to_string(hi) + "], got '" + text + "'");
  return v;
}

/// `text` as a finite number >= 0, or a message naming `what`.
double parseNumber(const std::string &what, const std::string &text) {
  const char *begin = text.c_str();
  char *end = nullptr;
  double v = std::strtod(begin, &end);
  if (end == begin || *end != '\0' || !std::isfinite(v) || v < 0)
    fail(what + ": expected a finite number >= 0, got '" + text + "'");
  return v;
}

void check(CUresult result, const char *call) {
  if (result == CUDA_SUCCESS)
    return;
  const char *name = "unknown error";
  cuGetErrorName(result, &name);
  fail(std::string(call) + " failed: " + name);
}
#define HARNESS_CU(call) check((call), #call)

size_t elementBytes(const std::string &dtype) {
  if (dtype == "f32" || dtype == "i32")
    return 4;
  if (dtype == "f16" || dtype == "bf16")
    return 2;
  if (dtype == "f64" || dtype == "i64")
    return 8;
  fail("unsupported element type " + dtype);
}

/// The numpy descr of each element type (bf16 travels as uint16 bits).
std::string npyDescr(const std::string &dtype) {
  if (dtype == "f32")
    return "<f4";
  if (dtype == "f16")
    return "<f2";
  if (dtype == "bf16")
    return "<u2";
  if (dtype == "f64")
    return "<f8";
  if (dtype == "i32")
    return "<i4";
  return "<i8";
}

struct Array {
  std::string dtype;
  std::vector<int64_t> shape;
  std::vector<char> data;

  int64_t count() const {
    int64_t n = 1;
    for (int64_t d : shape)
      n *= d;
    return n;
  }
};

Array readNpy(const std::string &path, const PosencEntryArg &spec) {
  std::ifstream in(path, std::ios::binary);
  if (!in)
    fail("cannot open " + path);
  char magic[8];
  in.read(magic, 8);
  if (!in || std::memcmp(magic, "\x93NUMPY", 6) != 0)
    fail(path + ": not a .npy file");
  uint32_t headerLen = 0;
  if (magic[6] == 1) {
    unsigned char b[2];
    in.read(reinterpret_cast<char *>(b), 2);
    headerLen = b[0] | (b[1] << 8);
  } else {
    unsigned char b[4];
    in.read(reinterpret_cast<char *>(b), 4);
    headerLen = b[0] | (b[1] << 8) | (b[2] << 16) | (uint32_t(b[3]) << 24);
  }
  std::string header(headerLen, '\0');
  in.read(header.data(), headerLen);
  Array array;
  array.dtype = spec.dtype;
  std::string descr = "'descr': '" + npyDescr(spec.dtype) + "'";
  if (header.find(descr) == std::string::npos)
    fail(path + ": expected dtype " + npyDescr(spec.dtype) + " for " +
         spec.dtype + ", header " + header);
  if (header.find("'fortran_order': False") == std::string::npos)
    fail(path + ": Fortran-order arrays are not supported");
  size_t open = header.find('('), close = header.find(')');
  if (open == std::string::npos || close == std::string::npos || close < open)
    fail(path + ": no shape in the header " + header);
  std::stringstream dims(header.substr(open + 1, close - open - 1));
  std::string dim;
  while (std::getline(dims, dim, ','))
    if (dim.find_first_not_of(' ') != std::string::npos)
      array.shape.push_back(
          parseInteger(path + ": a dim of the shape", dim, 0, (1ll << 40)));
  if (int(array.shape.size()) != spec.rank)
    fail(path + ": rank " + std::to_string(array.shape.size()) +
         ", the entry expects " + std::to_string(spec.rank));
  for (int d = 0; d < spec.rank; ++d)
    if (spec.shape[d] >= 0 && spec.shape[d] != array.shape[d])
      fail(path + ": dim " + std::to_string(d) + " is " +
           std::to_string(array.shape[d]) + ", the entry expects " +
           std::to_string(spec.shape[d]));
  array.data.resize(array.count() * elementBytes(spec.dtype));
  in.read(array.data.data(), array.data.size());
  if (!in)
    fail(path + ": truncated data");
  return array;
}

void writeNpy(const std::string &path, const Array &array) {
  std::string shape = "(";
  for (int64_t d : array.shape)
    shape += std::to_string(d) + ", ";
  if (array.shape.size() > 1)
    shape.resize(shape.size() - 2);
  else if (array.shape.size() == 1)
    shape.resize(shape.size() - 1);
  shape += ")";
  std::string header = "{'descr': '" + npyDescr(array.dtype) +
                       "', 'fortran_order': False, 'shape': " + shape + ", }";
  while ((10 + header.size() + 1) % 64 != 0)
    header += ' ';
  header += '\n';
  std::ofstream out(path, std::ios::binary);
  out.write("\x93NUMPY\x01\x00", 8);
  uint16_t len = uint16_t(header.size());
  char lenBytes[2] = {char(len & 0xff), char(len >> 8)};
  out.write(lenBytes, 2);
  out.write(header.data(), header.size());
  out.write(array.data.data(), array.data.size());
  if (!out)
    fail("cannot write " + path);
}

Array randomArray(const PosencEntryArg &spec, std::mt19937_64 &rng) {
  Array array;
  array.dtype = spec.dtype;
  for (int d = 0; d < spec.rank; ++d) {
    if (spec.shape[d] < 0)
      fail("--random needs static shapes; pass --inputs for dynamic dims");
    array.shape.push_back(spec.shape[d]);
  }
  int64_t n = array.count();
  array.data.resize(n * elementBytes(spec.dtype));
  std::uniform_real_distribution<float> uniform(-1.0f, 1.0f);
  for (int64_t i = 0; i < n; ++i) {
    char *at = array.data.data() + i * elementBytes(spec.dtype);
    std::string t = spec.dtype;
    if (t == "i32") {
      int32_t v = int32_t(i % (int64_t(1) << 30));
      std::memcpy(at, &v, 4);
    } else if (t == "i64") {
      int64_t v = i;
      std::memcpy(at, &v, 8);
    } else if (t == "f64") {
      double v = uniform(rng);
      std::memcpy(at, &v, 8);
    } else {
      float v = uniform(rng);
      uint32_t bits;
      std::memcpy(&bits, &v, 4);
      if (t == "f32") {
        std::memcpy(at, &v, 4);
      } else if (t == "bf16") {
        uint16_t h = uint16_t((bits + 0x7FFF + ((bits >> 16) & 1)) >> 16);
        std::memcpy(at, &h, 2);
      } else { // f16: values in [-1, 1) are normal or subnormal-free here
        uint32_t sign = (bits >> 16) & 0x8000;
        int32_t exp = int32_t((bits >> 23) & 0xff) - 127 + 15;
        uint16_t h = uint16_t(sign);
        if (exp > 0)
          h = uint16_t(sign | (exp << 10) | ((bits >> 13) & 0x3ff));
        std::memcpy(at, &h, 2);
      }
    }
  }
  return array;
}

/// A memref descriptor {allocated, aligned, offset, sizes, strides}.
std::vector<int64_t> descriptor(void *ptr, const std::vector<int64_t> &shape) {
  std::vector<int64_t> desc = {int64_t(reinterpret_cast<intptr_t>(ptr)),
                               int64_t(reinterpret_cast<intptr_t>(ptr)), 0};
  desc.insert(desc.end(), shape.begin(), shape.end());
  std::vector<int64_t> strides(shape.size(), 1);
  for (int d = int(shape.size()) - 2; d >= 0; --d)
    strides[d] = strides[d + 1] * shape[d + 1];
  desc.insert(desc.end(), strides.begin(), strides.end());
  return desc;
}

/// Element i of `a` as a double.
double valueAt(const Array &a, int64_t i) {
  const char *at = a.data.data() + i * elementBytes(a.dtype);
  if (a.dtype == "f64") {
    double v;
    std::memcpy(&v, at, 8);
    return v;
  }
  if (a.dtype == "i32") {
    int32_t v;
    std::memcpy(&v, at, 4);
    return v;
  }
  if (a.dtype == "i64") {
    int64_t v;
    std::memcpy(&v, at, 8);
    return double(v);
  }
  uint32_t bits = 0;
  if (a.dtype == "f32") {
    std::memcpy(&bits, at, 4);
  } else {
    uint16_t h;
    std::memcpy(&h, at, 2);
    if (a.dtype == "bf16") {
      bits = uint32_t(h) << 16;
    } else { // f16
      uint32_t sign = uint32_t(h & 0x8000) << 16, exp = (h >> 10) & 0x1f,
               man = h & 0x3ff;
      if (exp == 0x1f)
        bits = sign | 0x7f800000 | (man << 13);
      else if (exp == 0)
        return (sign ? -1.0 : 1.0) * man * (1.0 / (1 << 24));
      else
        bits = sign | ((exp + 112) << 23) | (man << 13);
    }
  }
  float f;
  std::memcpy(&f, &bits, 4);
  return f;
}

/// max |out - ref| / max |ref| (inf when NaNs disagree).
double relativeError(const Array &out, const Array &ref) {
  double num = 0, den = 0;
  for (int64_t i = 0, n = out.count(); i < n; ++i) {
    double a = valueAt(out, i), e = valueAt(ref, i);
    if (std::isnan(a) || std::isnan(e)) {
      if (std::isnan(a) != std::isnan(e))
        return INFINITY;
      continue;
    }
    num = std::max(num, std::fabs(a - e));
    den = std::max(den, std::fabs(e));
  }
  return den > 0 ? num / den : num;
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v.empty() ? 0.0 : v[v.size() / 2];
}

/// Times `body` on the legacy default stream: W warm-up runs, then N runs
/// each between two events; returns the per-run milliseconds.
template <typename F>
std::vector<double> timeRuns(int warmup, int repeat, F body) {
  CUevent start, stop;
  HARNESS_CU(cuEventCreate(&start, CU_EVENT_DEFAULT));
  HARNESS_CU(cuEventCreate(&stop, CU_EVENT_DEFAULT));
  for (int i = 0; i < warmup; ++i)
    body(false);
  std::vector<double> ms;
  for (int i = 0; i < repeat; ++i) {
    HARNESS_CU(cuEventRecord(start, nullptr));
    body(i + 1 == repeat);
    HARNESS_CU(cuEventRecord(stop, nullptr));
    HARNESS_CU(cuEventSynchronize(stop));
    float elapsed = 0;
    HARNESS_CU(cuEventElapsedTime(&elapsed, start, stop));
    ms.push_back(elapsed);
  }
  HARNESS_CU(cuEventDestroy(start));
  HARNESS_CU(cuEventDestroy(stop));
  return ms;
}
/// "1x?x8xf32"-style.
std::string describe(const PosencEntryArg &arg) {
  std::string s;
  for (int d = 0; d < arg.rank; ++d)
    s += (arg.shape[d] < 0 ? std::string("?") : std::to_string(arg.shape[d])) +
         "x";
  return s + arg.dtype;
}

std::string describeAll(const PosencEntryArg *args, int n) {
  std::string s;
  for (int i = 0; i < n; ++i)
    s += (i ? ", " : "") + ("#" + std::to_string(i) + ": ") + describe(args[i]);
  return s;
}

void printHelp(const char *self, const PosencEntry &entry) {
  std::printf(
      "%s: runs @%s on the GPU (needs the NVIDIA driver, libcuda.so.1)\n"
      "  inputs:  %s\n  results: %s\n\n"
      "  --inputs A.npy B.npy ...   the inputs (or --input=@A.npy per input,\n"
      "                             as posenc-run takes them)\n"
      "  --random SEED              random inputs instead\n"
      "  --outputs R.npy ...        where the results go (or --output=@R.npy)\n"
      "  --expect REF.npy ...       compare each result with a reference\n"
      "  --tolerance T              ... max |out - ref| / max |ref| <= T\n"
      "  --warmup N --repeat N      timed runs (CUDA events; --benchmark=N is\n"
      "                             --repeat N)\n"
      "  --poison                   fill fresh device buffers with NaN\n"
      "  --copy-bytes N             time a device copy of N bytes instead\n",
      self, entry.name, describeAll(entry.args, entry.numArgs).c_str(),
      describeAll(entry.results, entry.numResults).c_str());
}
} // namespace

int main(int argc, char **argv) {
  const PosencEntry &entry = posencEntry;
  std::vector<std::string> inputs, outputs, expects;
  double tolerance = 1e-5;
  long seed = -1;
  int warmup = 0, repeat = 1;
  bool poison = false;
  int64_t copyBytes = 0;
  std::vector<std::string> *list = nullptr;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto value = [&]() -> std::string {
      if (i + 1 >= argc)
        fail(a + " needs a value");
      return argv[++i];
    };
    if (a == "--inputs") {
      list = &inputs;
    } else if (a == "--outputs") {
      list = &outputs;
    } else if (a == "--expect") {
      list = &expects;
    } else if (a == "--tolerance") {
      tolerance = parseNumber("--tolerance", value());
      list = nullptr;
    } else if (a == "--random") {
      seed = parseInteger("--random", value(), 0, LONG_MAX);
      list = nullptr;
    } else if (a == "--warmup") {
      warmup = int(parseInteger("--warmup", value(), 0, 1000000));
      list = nullptr;
    } else if (a == "--repeat") {
      repeat = int(parseInteger("--repeat", value(), 1, 1000000));
      list = nullptr;
    } else if (a == "--copy-bytes") {
      copyBytes = parseInteger("--copy-bytes", value(), 1, 1ll << 40);
      list = nullptr;
    } else if (a == "--poison") {
      poison = true;
      list = nullptr;
    } else if (a.rfind("--input=@", 0) == 0) {
      // posenc-run's spelling: one --input=@file.npy per argument.
      inputs.push_back(a.substr(strlen("--input=@")));
      list = nullptr;
    } else if (a.rfind("--output=@", 0) == 0) {
      outputs.push_back(a.substr(strlen("--output=@")));
      list = nullptr;
    } else if (a.rfind("--benchmark=", 0) == 0) {
      repeat = int(parseInteger("--benchmark", a.substr(strlen("--benchmark=")),
                                1, 1000000));
      list = nullptr;
    } else if (a == "--help" || a == "-h") {
      printHelp(argv[0], entry);
      return 0;
    } else if (list && a.rfind("--", 0) != 0) {
      list->push_back(a);
    } else {
      fail("unknown argument " + a);
    }
  }

  if (copyBytes > 0) {
    // The runtime initializes the context; a zero-byte alloc is a no-op.
    mgpuMemFree(mgpuMemAlloc(0, nullptr, false), nullptr);
    CUdeviceptr src, dst;
    HARNESS_CU(cuMemAlloc(&src, copyBytes));
    HARNESS_CU(cuMemAlloc(&dst, copyBytes));
    std::vector<double> ms = timeRuns(warmup, repeat, [&](bool) {
      HARNESS_CU(cuMemcpyDtoDAsync(dst, src, copyBytes, nullptr));
    });
    std::printf("posenc-gpu: copy bytes=%lld median_ms=%.4f min_ms=%.4f "
                "runs=%d\n",
                (long long)copyBytes, median(ms),
                *std::min_element(ms.begin(), ms.end()), repeat);
    HARNESS_CU(cuMemFree(src));
    HARNESS_CU(cuMemFree(dst));
    return 0;
  }

  std::vector<Array> host;
  std::mt19937_64 rng(seed < 0 ? 0 : seed);
  if (seed >= 0) {
    for (int i = 0; i < entry.numArgs; ++i)
      host.push_back(randomArray(entry.args[i], rng));
  } else {
    if (int(inputs.size()) != entry.numArgs)
      fail("@" + std::string(entry.name) + " takes " +
           std::to_string(entry.numArgs) + " inputs (" +
           describeAll(entry.args, entry.numArgs) + "), got " +
           std::to_string(inputs.size()) +
           " (--inputs, --input=@ or --random)");
    for (int i = 0; i < entry.numArgs; ++i)
      host.push_back(readNpy(inputs[i], entry.args[i]));
  }
  if (!outputs.empty() && int(outputs.size()) != entry.numResults)
    fail("@" + std::string(entry.name) + " has " +
         std::to_string(entry.numResults) + " results, got " +
         std::to_string(outputs.size()) + " --outputs");

  // Device copies of the inputs (through the runtime, which owns the
  // context), and their descriptors.
  if (poison)
    posencCudaSetPoison(0x7FC07FC0u);
  std::vector<void *> device;
  std::vector<std::vector<int64_t>> descs;
  for (Array &a : host) {
    void *ptr =
        mgpuMemAlloc(std::max<size_t>(a.data.size(), 4), nullptr, false);
    mgpuMemcpy(ptr, a.data.data(), a.data.size(), nullptr);
    device.push_back(ptr);
    descs.push_back(descriptor(ptr, a.shape));
  }
  mgpuStreamSynchronize(nullptr);
  std::vector<void *> argPtrs;
  for (auto &d : descs)
    argPtrs.push_back(d.data());
  size_t resultWords = 0;
  for (int r = 0; r < entry.numResults; ++r)
    resultWords += 3 + 2 * entry.results[r].rank;
  std::vector<int64_t> results(resultWords);

  auto freeResults = [&] {
    size_t at = 0;
    for (int r = 0; r < entry.numResults; ++r) {
      mgpuMemFree(reinterpret_cast<void *>(results[at]), nullptr);
      at += 3 + 2 * entry.results[r].rank;
    }
  };
  std::vector<int64_t> kept;
  std::vector<double> ms = timeRuns(warmup, repeat, [&](bool last) {
    entry.call(argPtrs.data(), results.data());
    if (last)
      kept = results;
    else
      freeResults();
  });
  std::printf("posenc-gpu: %s median_ms=%.4f min_ms=%.4f runs=%d\n", entry.name,
              median(ms), *std::min_element(ms.begin(), ms.end()), repeat);

  size_t at = 0;
  bool failed = false;
  for (int r = 0; r < entry.numResults; ++r) {
    const PosencEntryArg &spec = entry.results[r];
    Array out;
    out.dtype = spec.dtype;
    out.shape.assign(kept.begin() + at + 3, kept.begin() + at + 3 + spec.rank);
    std::vector<int64_t> expected = descriptor(nullptr, out.shape);
    for (int d = 0; d < spec.rank; ++d)
      if (out.shape[d] > 1 &&
          kept[at + 3 + spec.rank + d] != expected[3 + spec.rank + d])
        fail("result " + std::to_string(r) + " is not contiguous");
    out.data.resize(out.count() * elementBytes(spec.dtype));
    char *base = reinterpret_cast<char *>(kept[at + 1]) +
                 kept[at + 2] * elementBytes(spec.dtype);
    mgpuMemcpy(out.data.data(), base, out.data.size(), nullptr);
    mgpuStreamSynchronize(nullptr);
    if (r < int(outputs.size()))
      writeNpy(outputs[r], out);
    if (r < int(expects.size())) {
      PosencEntryArg refSpec = {spec.rank, "f64", out.shape.data()};
      double err = relativeError(out, readNpy(expects[r], refSpec));
      bool ok = err <= tolerance;
      std::printf("posenc-gpu: %s result %d max_rel_err=%.3e tolerance=%.1e "
                  "%s\n",
                  entry.name, r, err, tolerance, ok ? "ok" : "FAIL");
      failed |= !ok;
    }
    mgpuMemFree(reinterpret_cast<void *>(kept[at]), nullptr);
    at += 3 + 2 * spec.rank;
  }
  for (void *ptr : device)
    mgpuMemFree(ptr, nullptr);
  mgpuStreamSynchronize(nullptr);
  return failed ? 3 : 0;
}

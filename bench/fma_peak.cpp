//===- fma_peak.cpp - this CPU's single-core fp32 FMA throughput ----------===//
//
// Runs independent chains of fused multiply-adds on the widest f32 vectors
// the host has (16 lanes with AVX-512, as posenc-vectorize-matmul uses
// there; else 8) long enough to hide their latency and prints the achieved
// GFLOP/s (2 flops per lane per FMA): the ceiling the attention benchmark
// compares against.
//
//===----------------------------------------------------------------------===//

#include <chrono>
#include <cstdio>
#include <cstdlib>

#ifdef __AVX512F__
constexpr int kLanes = 16;
#else
constexpr int kLanes = 8;
#endif
typedef float vf __attribute__((vector_size(4 * kLanes)));

int main(int argc, char **argv) {
  long iters = argc > 1 ? std::atol(argv[1]) : 1500000000L;
  // Enough accumulators to cover FMA latency x throughput (4 x 2 on
  // current x86 cores, with margin).
  constexpr int kChains = 12;
  vf acc[kChains];
  vf a, b;
  for (int l = 0; l < kLanes; ++l) {
    a[l] = 0.999999f;
    b[l] = 1e-7f * float(l + 1);
  }
  for (int c = 0; c < kChains; ++c)
    for (int l = 0; l < kLanes; ++l)
      acc[c][l] = float(c + l);
  auto start = std::chrono::steady_clock::now();
  for (long i = 0; i < iters / kChains; ++i) {
#pragma GCC unroll 12
    for (int c = 0; c < kChains; ++c)
      acc[c] = acc[c] * a + b;
    // Keeps the chains live without touching memory.
    __asm__ volatile(""
                     : "+x"(acc[0]), "+x"(acc[1]), "+x"(acc[2]), "+x"(acc[3]),
                       "+x"(acc[4]), "+x"(acc[5]));
  }
  double secs =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start)
          .count();
  float sink = 0;
  for (int c = 0; c < kChains; ++c)
    for (int l = 0; l < kLanes; ++l)
      sink += acc[c][l];
  double flops = double(iters / kChains) * kChains * kLanes * 2;
  std::printf(
      "{\"gflops\": %.2f, \"seconds\": %.3f, \"lanes\": %d, \"check\": %g}\n",
      flops / secs / 1e9, secs, kLanes, double(sink));
  return 0;
}

#!/usr/bin/env python3
"""What a Python call costs beyond its compiled code: one decode-step
projection y = x·Wᵀ (x: [1, 4096], W: [n, 4096] f32, a tensor argument)
for weights of 16 MiB to 256 MiB. Columns: the wall time of `m.proj(x, w)`,
the compiled code alone (`m.last_call_ms`), their difference (the call
overhead: argument checks, descriptors, the result), and a copy of W's
bytes measured in the same run (np.copyto into a reused array), which is
what the overhead would be if arguments were copied. Tensor arguments are
passed in place, so the overhead should not grow with W. One thread; min
and median over --repeat calls after a warm-up. Usage:
bench/call_overhead.py [--repeat 9]. Writes bench/results/call_overhead.json."""

import argparse
import os
import sys
import time

os.environ["OPENBLAS_NUM_THREADS"] = "1"

import numpy as np  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import results_file  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BUILD = os.environ.get("POSENC_BUILD_DIR", os.path.join(ROOT, "build"))
sys.path.insert(0, os.path.join(BUILD, "python_packages"))
import posenc  # noqa: E402

D = 4096

IR = """func.func @proj(%x: tensor<1x{d}xf32>, %w: tensor<{n}x{d}xf32>) -> tensor<1x{n}xf32> {{
  %z = arith.constant 0.0 : f32
  %e = tensor.empty() : tensor<1x{n}xf32>
  %i = linalg.fill ins(%z : f32) outs(%e : tensor<1x{n}xf32>) -> tensor<1x{n}xf32>
  %y = linalg.matmul indexing_maps = [affine_map<(m, n, k) -> (m, k)>,
                                      affine_map<(m, n, k) -> (n, k)>,
                                      affine_map<(m, n, k) -> (m, n)>]
       ins(%x, %w : tensor<1x{d}xf32>, tensor<{n}x{d}xf32>) outs(%i : tensor<1x{n}xf32>) -> tensor<1x{n}xf32>
  return %y : tensor<1x{n}xf32>
}}
"""


def stats(values):
    values = sorted(values)
    return values[0], values[len(values) // 2]


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeat", type=int, default=9)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    rows = []
    print(f"{'MiB W':>6} {'call min':>9} {'call med':>9} {'code med':>9} {'overhead min':>12} "
          f"{'overhead med':>12} {'copy of W':>9} {'max err':>8}")
    for mib in (16, 64, 256):
        n = mib * 2**20 // (4 * D)
        m = posenc.compile(IR.format(n=n, d=D), threads=1)
        x = rng.standard_normal((1, D)).astype(np.float32)
        w = rng.standard_normal((n, D)).astype(np.float32)
        y = m.proj(x, w)
        err = float(np.abs(y - x.astype(np.float64) @ w.T.astype(np.float64)).max())
        dst = np.empty_like(w)
        calls, codes, copies = [], [], []
        for _ in range(args.repeat):
            t = time.perf_counter()
            m.proj(x, w)
            calls.append((time.perf_counter() - t) * 1e3)
            codes.append(m.last_call_ms)
            t = time.perf_counter()
            np.copyto(dst, w)
            copies.append((time.perf_counter() - t) * 1e3)
        over = [c - k for c, k in zip(calls, codes)]
        row = {"mib": mib, "call_ms": stats(calls), "code_ms": stats(codes),
               "overhead_ms": stats(over), "copy_ms": stats(copies), "max_err": err}
        rows.append(row)
        print(f"{mib:>6} {row['call_ms'][0]:>9.3f} {row['call_ms'][1]:>9.3f} {row['code_ms'][1]:>9.3f} "
              f"{row['overhead_ms'][0]:>12.3f} {row['overhead_ms'][1]:>12.3f} "
              f"{row['copy_ms'][1]:>9.3f} {err:>8.1e}")
    results_file.write("call_overhead", rows)


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""Thread scaling of compiled code: each case compiled with
posenc-lower-to-cpu{num-threads=N} for every N of --threads (default 1,2;
any counts work, so the table runs unchanged on a bigger machine), timed in
one process, with the speed-up over one thread and the parallel efficiency
(speed-up / N), and PyTorch eager on the same thread count, its OpenMP
and OpenBLAS pinned in its own process (median ms): BLOOM's attention
(bench/attention.py's) for alibi-2048, grouped-query decode
(bench/decode.py's) for decode-32k. Bandwidth-bound cases also print
what the same bytes take on N Python threads (numpy releases the GIL) and
the fraction of it reached (`bw ms`, `% bw`): rope and the bias, which
read and write, against numpy.copyto of the bytes (half read, half
written; column `bw` = copy); decode, which only reads K and V, against
bench/decode.py's read (numpy's sum or one-thread OpenBLAS sgemv per
thread, the faster; `bw` = read).

Cases:
  alibi-2048   causal ALiBi prefill attention, H = 16, D = 64, S = 2048,
               bias fused (bench/attention.py's IR)
  rope         rope f32 [1, 4096, 32, 128], half layout
  alibi-bias   the materialized causal ALiBi bias [16, 2048, 2048]
  decode-32k   one query, GQA 32/8, D = 128 against 32768 f32 cached keys
               (with threads: chunks of 2048 keys, split-K; `same` is then "no"
               against one thread by design, equal among counts > 1)

Min and median ms over --repeat calls after a warm-up, of the compiled code
alone (Module.last_call_ms). Results must be bit-identical to one thread;
the column `same` says so. Usage: bench/scaling.py [--threads 1,2]
[--repeat 5] [--cases alibi-2048,rope,alibi-bias,decode-32k]. Writes
bench/results/scaling.json."""

import argparse
import json
import os
import subprocess
import sys
import threading
import time

# Each reading thread runs a one-thread OpenBLAS (read when numpy loads).
os.environ["OPENBLAS_NUM_THREADS"] = "1"

import numpy as np  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import results_file  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BUILD = os.environ.get("POSENC_BUILD_DIR", os.path.join(ROOT, "build"))
sys.path.insert(0, os.path.join(BUILD, "python_packages"))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import posenc  # noqa: E402
import attention as attention_bench  # noqa: E402
import decode as decode_bench  # noqa: E402
import rope_bias as rope_bench  # noqa: E402


def case(name):
    """(IR, inputs, entry, bytes read + written or None when compute-bound)."""
    rng = np.random.default_rng(0)
    if name == "alibi-2048":
        q, k, v, pos, _ = attention_bench.inputs("alibi", 2048)
        return attention_bench.posenc_ir("alibi", 2048), [q, k, v, pos], "attn", None
    if name == "rope":
        shape = (1, 4096, 32, 128)
        x = rng.uniform(-1, 1, shape).astype(np.float32)
        pos = np.arange(4096, dtype=np.int64)
        return (rope_bench.rope_ir(shape, "f32", "half", pos.shape), [x, pos], "rope",
                ("copy", 2 * x.nbytes))
    if name == "alibi-bias":
        s, h = 2048, 16
        p = f"tensor<{s}xi32>"
        bt = f"tensor<{h}x{s}x{s}xf32>"
        ir = (f"func.func @bias(%p: {p}) -> {bt} {{\n"
              f"  %b = posenc.alibi_bias %p, %p mode causal {{num_heads = {h} : i64}} : {p}, {p} -> {bt}\n"
              f"  return %b : {bt}\n}}\n")
        return ir, [np.arange(s, dtype=np.int32)], "bias", ("copy", h * s * s * 4)
    if name == "decode-32k":
        sk = 32768
        q = rng.uniform(-1, 1, (1, 1, decode_bench.HQ, decode_bench.D)).astype(np.float32)
        k = rng.uniform(-1, 1, (1, sk, decode_bench.HKV, decode_bench.D)).astype(np.float32)
        v = rng.uniform(-1, 1, (1, sk, decode_bench.HKV, decode_bench.D)).astype(np.float32)
        return decode_bench.decode_ir(sk, "f32"), [q, k, v], "decode", ("read", (k, v))
    raise SystemExit(f"unknown case {name!r}")


def torch_ms(threads, repeat):
    """PyTorch eager BLOOM attention (bench/attention.py's) on `threads`
    threads, in its own process with its thread counts pinned."""
    n = str(threads)
    env = dict(os.environ, OMP_NUM_THREADS=n, OPENBLAS_NUM_THREADS=n, MKL_NUM_THREADS=n,
               POSENC_BENCH_THREADS=n)
    proc = subprocess.run([sys.executable, attention_bench.__file__, "--worker", "torch",
                           "alibi", "2048", str(repeat)], capture_output=True, text=True,
                          env=env)
    if proc.returncode != 0:
        return None
    return json.loads(proc.stdout.strip().splitlines()[-1])["ms"]


def copy_ms(nbytes, threads, repeat):
    """A copy of `nbytes` (half read, half written) by `threads` threads."""
    src = np.ones(nbytes // 8, dtype=np.float32)
    dst = np.empty_like(src)
    parts = np.array_split(np.arange(src.size), threads)
    bounds = [(p[0], p[-1] + 1) for p in parts if p.size]

    def one(lo, hi):
        np.copyto(dst[lo:hi], src[lo:hi])

    times = []
    for _ in range(repeat + 1):
        t0 = time.perf_counter()
        ts = [threading.Thread(target=one, args=b) for b in bounds]
        for t in ts:
            t.start()
        for t in ts:
            t.join()
        times.append((time.perf_counter() - t0) * 1e3)
    return min(times[1:])


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", default="1,2")
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--cases", default="alibi-2048,rope,alibi-bias,decode-32k")
    ap.add_argument("--no-torch", action="store_true",
                    help="skip PyTorch (Debian python3-torch) on alibi-2048 and decode-32k")
    opts = ap.parse_args()
    counts = [int(t) for t in opts.threads.split(",")]
    if 1 not in counts:
        counts = [1] + counts
    posenc.retain_freed_large_buffers()
    header = (f"{'case':<11} {'threads':>7} {'min ms':>8} {'med ms':>8} {'speed-up':>8} "
              f"{'effic.':>7} {'bw':>4} {'bw ms':>8} {'% bw':>7} {'torch ms':>9} {'same':>5}")
    print(header)
    print("-" * len(header))
    rows = []
    for name in opts.cases.split(","):
        ir, args, entry, limit = case(name)
        base, first = None, None
        for n in counts:
            m = posenc.compile(ir, threads=n)
            fn = getattr(m, entry)
            out = fn(*args)
            times = []
            for _ in range(opts.repeat):
                fn(*args)
                times.append(m.last_call_ms)
            tmin, tmed = min(times), float(np.median(times))
            if n == 1:
                base, first = tmin, out
            same = bool(np.array_equal(out, first))
            kind, what = limit or (None, None)
            if kind == "copy":
                cms = copy_ms(what, n, opts.repeat)
            elif kind == "read":
                cms = decode_bench.read_ms(what, opts.repeat, threads=n)
            else:
                cms = None
            tms = None
            if not opts.no_torch and name == "alibi-2048":
                tms = torch_ms(n, 2)
            elif not opts.no_torch and name == "decode-32k":
                tms = decode_bench.torch_ms(32768, "f32", n, opts.repeat)
            row = dict(case=name, threads=n, min_ms=tmin, median_ms=tmed,
                       speedup=base / tmin, efficiency=base / tmin / n,
                       bandwidth_reference=kind, bandwidth_ms=cms,
                       fraction_of_bandwidth=(cms / tmin if cms else None),
                       torch_median_ms=tms, bit_identical=same)
            rows.append(row)
            copy_col = (f"{kind:>4} {cms:>8.2f} {100 * cms / tmin:>6.1f}%" if cms
                        else f"{'':>4} {'':>8} {'':>7}")
            print(f"{name:<11} {n:>7} {tmin:>8.2f} {tmed:>8.2f} {base / tmin:>7.2f}x "
                  f"{100 * base / tmin / n:>6.1f}% {copy_col} "
                  f"{(f'{tms:.1f}' if tms else '-'):>9} {'yes' if same else 'NO':>5}",
                  flush=True)
    results_file.write("scaling", rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())

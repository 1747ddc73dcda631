#!/usr/bin/env python3
"""Causal prefill attention with a position bias on the CPU, measured in one
run: posenc with the bias fused into the tiled attention, posenc with the
bias materialized (unfused), and PyTorch eager in the BLOOM (ALiBi) and T5
formulations, against this core's measured fp32 FMA peak.

H = 16, D = 64, f32, causal, one thread for every contender. Each
measurement runs in its own process so that peak resident memory is
comparable; "extra MB" is the peak minus the process's size just before
the first call (inputs and compiled code included in the baseline). Each
worker's environment pins OpenMP, OpenBLAS and MKL to one thread, and
"cpu/wall" (fused/unfused/torch) is its process CPU time over wall time
across the timed calls: how many cores it really used. Every worker's
malloc keeps freed large blocks (posenc.retain_freed_large_buffers): no
contender pays first-touch page faults for a result the previous call
freed.

Usage: bench/attention.py [--sizes 512,2048,8192] [--repeat 2]
Prints a table and writes bench/results/attention.json."""

import argparse
import json
import math
import os
import resource
import subprocess
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import results_file  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BUILD = os.environ.get("POSENC_BUILD_DIR", os.path.join(ROOT, "build"))
H, D = 16, 64
BUCKETS, MAX_DISTANCE = 32, 128


def rss_mb():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def peak_mb():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def posenc_ir(kind, s):
    t = f"tensor<1x{s}x{H}x{D}xf32>"
    p = f"tensor<{s}xi32>"
    bt = f"tensor<{H}x{s}x{s}xf32>"
    if kind == "alibi":
        extra, bias = "", (f"%b = posenc.alibi_bias %p, %p mode causal {{num_heads = {H} : i64}} "
                           f": {p}, {p} -> {bt}")
    else:
        extra = f", %t: tensor<{BUCKETS}x{H}xf32>"
        bias = (f"%b = posenc.rel_bias %t, %p, %p kind t5 {{num_buckets = {BUCKETS} : i64, "
                f"max_distance = {MAX_DISTANCE} : i64, bidirectional = false}} : "
                f"tensor<{BUCKETS}x{H}xf32>, {p}, {p} -> {bt}")
    scale = "" if kind == "alibi" else " {scale = 1.0 : f64}"
    return (f"func.func @attn(%q: {t}, %k: {t}, %v: {t}, %p: {p}{extra}) -> {t} {{\n"
            f"  {bias}\n"
            f"  %init = tensor.empty() : {t}\n"
            f"  %o = posenc.attention %q, %k, %v bias(%b : {bt}) causal outs(%init){scale} : "
            f"{t}, {t}, {t}, {t}\n"
            f"  return %o : {t}\n}}\n")


def inputs(kind, s):
    rng = np.random.default_rng(0)
    q, k, v = (rng.standard_normal((1, s, H, D)).astype(np.float32) * 0.5 for _ in range(3))
    pos = np.arange(s, dtype=np.int32)
    table = rng.standard_normal((BUCKETS, H)).astype(np.float32)
    return q, k, v, pos, table


def worker_posenc(kind, s, fused, repeat):
    sys.path.insert(0, os.path.join(BUILD, "python_packages"))
    import posenc

    pipeline = "posenc-lower-to-cpu" + ("" if fused else "{fuse-bias=false}")
    m = posenc.compile(posenc_ir(kind, s), pipeline=pipeline)
    q, k, v, pos, table = inputs(kind, s)
    args = [q, k, v, pos] + ([table] if kind == "t5" else [])
    base = rss_mb()
    times = []
    cpu0, wall0 = time.process_time(), time.perf_counter()
    for _ in range(repeat + 1):
        out = m.attn(*args)
        times.append(m.last_call_ms)
    cpu = (time.process_time() - cpu0) / (time.perf_counter() - wall0)
    return dict(ms=float(np.median(times[1:])), peak_mb=peak_mb(), extra_mb=peak_mb() - base,
                cpu_per_wall=cpu, checksum=float(np.abs(out).sum()))


def worker_torch(kind, s, repeat):
    import torch

    # One thread unless bench/scaling.py asks for more (its environment
    # then pins OpenMP and OpenBLAS to the same count).
    torch.set_num_threads(int(os.environ.get("POSENC_BENCH_THREADS", "1")))
    q, k, v, pos, table = (torch.from_numpy(x) for x in inputs(kind, s))
    # [B·H, S, D] as BLOOM and T5 reshape them.
    qh, kh, vh = (x[0].permute(1, 0, 2).contiguous() for x in (q, k, v))
    causal = torch.triu(torch.ones(s, s, dtype=torch.bool), diagonal=1)

    def bloom():
        n = 2 ** math.floor(math.log2(H))
        slopes = torch.tensor([2.0 ** (-8.0 * h / n) for h in range(1, n + 1)])
        alibi = (slopes[:, None] * torch.arange(s)[None, :].float())[:, None, :]  # [H, 1, S]
        scores = alibi.baddbmm(qh, kh.transpose(1, 2), beta=1.0, alpha=1.0 / math.sqrt(D))
        scores = scores.masked_fill(causal, torch.finfo(torch.float32).min)
        probs = torch.softmax(scores, dim=-1, dtype=torch.float32)
        return torch.bmm(probs, vh)

    def t5():
        rel = torch.arange(s)[None, :] - torch.arange(s)[:, None]  # k - q
        n = -torch.minimum(rel, torch.zeros_like(rel))
        max_exact = BUCKETS // 2
        large = max_exact + (torch.log(n.float() / max_exact) / math.log(MAX_DISTANCE / max_exact)
                             * (BUCKETS - max_exact)).to(torch.long)
        large = torch.minimum(large, torch.full_like(large, BUCKETS - 1))
        buckets = torch.where(n < max_exact, n, large)
        bias = table[buckets].permute(2, 0, 1)  # [H, S, S]
        scores = torch.bmm(qh, kh.transpose(1, 2)) + bias
        scores = scores.masked_fill(causal, torch.finfo(torch.float32).min)
        probs = torch.softmax(scores, dim=-1, dtype=torch.float32)
        return torch.bmm(probs, vh)

    fn = bloom if kind == "alibi" else t5
    base = rss_mb()
    times = []
    cpu0, wall0 = time.process_time(), time.perf_counter()
    with torch.no_grad():
        for _ in range(repeat + 1):
            t0 = time.perf_counter()
            out = fn()
            times.append((time.perf_counter() - t0) * 1e3)
    cpu = (time.process_time() - cpu0) / (time.perf_counter() - wall0)
    return dict(ms=float(np.median(times[1:])), peak_mb=peak_mb(), extra_mb=peak_mb() - base,
                cpu_per_wall=cpu, checksum=float(out.abs().sum()))


# Every contender on one thread, pinned in its own process's environment:
# torch.set_num_threads(1) alone leaves Debian's OpenBLAS threaded.
ONE_THREAD = {"OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1",
              "POSENC_NUM_THREADS": "1"}


def measure(args):
    proc = subprocess.run([sys.executable, __file__, "--worker", *args],
                          capture_output=True, text=True, env=dict(os.environ, **ONE_THREAD))
    if proc.returncode != 0:
        return dict(error=proc.stderr.strip().splitlines()[-1] if proc.stderr else "failed")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", default="512,2048,8192")
    ap.add_argument("--repeat", type=int, default=2)
    ap.add_argument("--worker", nargs=4, metavar=("IMPL", "KIND", "S", "REPEAT"))
    opts = ap.parse_args()
    if opts.worker:
        impl, kind, s, repeat = opts.worker
        s, repeat = int(s), int(repeat)
        # Every contender's malloc keeps freed large blocks: no call pays
        # first-touch page faults for the result the previous one freed.
        sys.path.insert(0, os.path.join(BUILD, "python_packages"))
        import posenc

        posenc.retain_freed_large_buffers()
        if impl == "torch":
            result = worker_torch(kind, s, repeat)
        else:
            result = worker_posenc(kind, s, impl == "fused", repeat)
        print(json.dumps(result))
        return 0

    peak = json.loads(subprocess.run([os.path.join(BUILD, "bin", "posenc-fma-peak")],
                                     capture_output=True, text=True, check=True).stdout)["gflops"]
    print(f"fp32 FMA peak of one core (measured): {peak:.1f} GFLOP/s")
    header = (f"{'bias':<6} {'S':>5} {'fused ms':>9} {'unfused ms':>10} {'torch ms':>9} "
              f"{'vs torch':>8} {'vs unfused':>10} {'GFLOP/s':>8} {'% peak':>7} "
              f"{'fused MB':>9} {'unfused MB':>10} {'torch MB':>9} {'cpu/wall f/u/t':>15}")
    print(header)
    print("-" * len(header))
    rows = []
    for kind in ("alibi", "t5"):
        for s in (int(x) for x in opts.sizes.split(",")):
            r = {impl: measure([impl, kind, str(s), str(opts.repeat)])
                 for impl in ("fused", "unfused", "torch")}
            flops = 2.0 * H * D * s * s  # QKᵀ and PV over the causal half
            fused_ms = r["fused"].get("ms", float("nan"))
            gflops = flops / fused_ms / 1e6
            row = dict(bias=kind, S=s, heads=H, head_dim=D, flops=flops, fma_peak_gflops=peak,
                       fused=r["fused"], unfused=r["unfused"], torch=r["torch"],
                       fused_gflops=gflops, fraction_of_peak=gflops / peak)
            rows.append(row)
            ms = lambda x: f"{r[x]['ms']:.1f}" if "ms" in r[x] else "fail"  # noqa: E731
            mb = lambda x: f"{r[x]['extra_mb']:.0f}" if "extra_mb" in r[x] else "-"  # noqa: E731
            ratio = lambda x: (f"{r[x]['ms'] / fused_ms:.2f}x" if "ms" in r[x] else "-")  # noqa: E731
            cw = lambda x: f"{r[x]['cpu_per_wall']:.2f}" if "cpu_per_wall" in r[x] else "-"  # noqa: E731
            print(f"{kind:<6} {s:>5} {ms('fused'):>9} {ms('unfused'):>10} {ms('torch'):>9} "
                  f"{ratio('torch'):>8} {ratio('unfused'):>10} {gflops:>8.1f} {100 * gflops / peak:>6.1f}% "
                  f"{mb('fused'):>9} {mb('unfused'):>10} {mb('torch'):>9} "
                  f"{'/'.join(cw(x) for x in ('fused', 'unfused', 'torch')):>15}", flush=True)
    results_file.write("attention", rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())

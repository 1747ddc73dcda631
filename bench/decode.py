#!/usr/bin/env python3
"""One decode step of GQA attention on the CPU, one thread: a single query
of 32 heads against Sk cached keys of 8 kv heads, D = 128, K/V in f32 or
bf16. Decode is bound by reading K and V once, so the table prints the
bytes of K + V per second beside a read of the same bytes measured in the
same run: the faster of numpy's sum and OpenBLAS's sgemv (one thread) over
the bytes viewed as f32 rows of 1024 words (bf16 caches too: speed only).
numpy's sum alone is compute-bound on AVX-512 machines (about 60% of the
sgemv's rate here), which would flatter the fraction.

Contenders, each compiled by posenc from the same IR:
  default   posenc-lower-to-cpu: decode takes the loop over key blocks that
            posenc-tile-attention derives from the ops' interfaces
  prefill   posenc-lower-to-cpu{attention-decode-queries=0}: the tiling
            of prefill (attention-tile-k keys per block, 256 by default)
  split-K   attention decomposed into online_attention, keys split into 4
            chunks with upstream's tile_reduction_using_forall (partial
            states merged at the end), then posenc-lower-to-cpu; one thread
            runs the chunks one after another
  torch     PyTorch eager: the query heads grouped by kv head (no copy
            of K and V), Q·Kᵀ·scale, softmax in f32, ·V, in the cache's
            dtype; its own process, OpenMP and OpenBLAS pinned to the
            thread count (median ms only)

Min and median over --repeat calls after a warm-up, of the compiled code
alone. K and V are memref arguments, passed by reference: the cache is read
where it lies, as in posenc.decoder's models, 64-byte aligned as they
allocate it. Usage:
bench/decode.py [--contexts 4096,32768] [--repeat 5]. Writes
bench/results/decode.json."""

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time

# OpenBLAS reads its thread count when numpy loads: the reads below are one
# thread's (Python threads split them when asked for more).
os.environ["OPENBLAS_NUM_THREADS"] = "1"

import numpy as np  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import results_file  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BUILD = os.environ.get("POSENC_BUILD_DIR", os.path.join(ROOT, "build"))
sys.path.insert(0, os.path.join(BUILD, "python_packages"))
import posenc  # noqa: E402
from posenc.decoder import aligned_zeros  # noqa: E402

HQ, HKV, D = 32, 8, 128

SPLIT_K = """module attributes {transform.with_named_sequence} {
  transform.named_sequence @__transform_main(%root: !transform.any_op {transform.readonly}) {
    %a = transform.structured.match ops{["posenc.attention"]} in %root : (!transform.any_op) -> !transform.any_op
    %d = transform.structured.decompose_interface %a : (!transform.any_op) -> !transform.any_op
    %o = transform.structured.match ops{["posenc.online_attention"]} in %root : (!transform.any_op) -> !transform.any_op
    %r:10 = transform.structured.tile_reduction_using_forall %o reduction_dims = [3] by num_threads = [0, 0, 0, 4, 0, 0] : (!transform.any_op) -> (!transform.any_op, !transform.any_op, !transform.any_op, !transform.any_op, !transform.any_op, !transform.any_op, !transform.any_op, !transform.any_op, !transform.any_op, !transform.any_op)
    transform.yield
  }
}
"""


def decode_ir(sk, kv_elem):
    q = f"tensor<1x1x{HQ}x{D}xf32>"
    kv = f"tensor<1x{sk}x{HKV}x{D}x{kv_elem}>"
    conv = ""
    qn = "%q"
    if kv_elem != "f32":
        conv = f"  %qc = arith.truncf %q : {q} to tensor<1x1x{HQ}x{D}x{kv_elem}>\n"
        qn, q = "%qc", f"tensor<1x1x{HQ}x{D}x{kv_elem}>"
    r = f"tensor<1x1x{HQ}x{D}x{kv_elem}>"
    # The cache is passed by reference (memref arguments): read in place.
    kvm = kv.replace("tensor<", "memref<")
    return (f"func.func @decode(%q: tensor<1x1x{HQ}x{D}xf32>, %km: {kvm}, %vm: {kvm}) -> {r} {{\n"
            f"  %k = bufferization.to_tensor %km restrict : {kvm} to {kv}\n"
            f"  %v = bufferization.to_tensor %vm restrict : {kvm} to {kv}\n"
            f"{conv}"
            f"  %init = tensor.empty() : {r}\n"
            f"  %o = posenc.attention {qn}, %k, %v causal outs(%init) : {q}, {kv}, {kv}, {r}\n"
            f"  return %o : {r}\n}}\n")


def aligned(a):
    """`a` copied to a 64-byte boundary, as a cache is allocated
    (posenc.decoder's; numpy's large arrays start 16 bytes into a page)."""
    out = aligned_zeros(a.shape, a.dtype)
    out[...] = a
    return out


def time_calls(fn, repeat, last_ms=None):
    """min and median ms of `fn`: wall time, or `last_ms()` after each call
    (posenc's compiled code alone, without argument conversion)."""
    fn()
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(last_ms() if last_ms else (time.perf_counter() - t0) * 1e3)
    return min(times), float(np.median(times))


def read_ms(arrays, repeat, threads=1):
    """Min ms of the fastest read of `arrays`' bytes measured here: numpy's
    sum or OpenBLAS's sgemv of the bytes as f32 rows of 1024 words times a
    vector of ones, `threads` Python threads each reading 1/threads of every
    array (both release the GIL)."""
    words = [a.reshape(-1).view(np.float32) for a in arrays]
    ones = np.ones(1024, np.float32)
    parts = [np.array_split(w, threads) for w in words]
    rows = [[p[: p.size // 1024 * 1024].reshape(-1, 1024) for p in ps] for ps in parts]

    def run(one):
        ts = [threading.Thread(target=one, args=(i,)) for i in range(threads)]
        for t in ts:
            t.start()
        for t in ts:
            t.join()

    def summed(i):
        for ps in parts:
            np.add.reduce(ps[i])

    def gemv(i):
        for rs in rows:
            np.dot(rs[i], ones)

    return min(time_calls(lambda: run(f), repeat)[0] for f in (summed, gemv))


def worker_torch(sk, kv_elem, repeat):
    """Median ms of PyTorch eager decode (see the module docstring) on the
    thread count of POSENC_BENCH_THREADS (default 1)."""
    import torch

    torch.set_num_threads(int(os.environ.get("POSENC_BENCH_THREADS", "1")))
    rng = np.random.default_rng(0)
    dtype = torch.float32 if kv_elem == "f32" else torch.bfloat16
    q = torch.from_numpy(rng.uniform(-1, 1, (1, HQ, 1, D)).astype(np.float32)).to(dtype)
    k, v = (torch.from_numpy(rng.uniform(-1, 1, (1, HKV, sk, D)).astype(np.float32)).to(dtype)
            for _ in range(2))

    # The query heads grouped by kv head (as SDPA's enable_gqa): Hugging
    # Face's repeat_kv copy of K and V (expand + reshape) alone takes
    # ~190 ms at Sk = 4096 in Debian's torch 1.13.
    qg = q.reshape(1, HKV, HQ // HKV, D)

    def step():
        scores = torch.matmul(qg, k.transpose(2, 3)) / D ** 0.5
        probs = torch.softmax(scores, dim=-1, dtype=torch.float32).to(dtype)
        return torch.matmul(probs, v)

    times = []
    with torch.no_grad():
        for _ in range(repeat + 1):
            t0 = time.perf_counter()
            step()
            times.append((time.perf_counter() - t0) * 1e3)
    return float(np.median(times[1:]))


def torch_ms(sk, kv_elem, threads, repeat):
    """worker_torch in its own process with its thread counts pinned, or
    None when PyTorch is missing or fails."""
    n = str(threads)
    env = dict(os.environ, OMP_NUM_THREADS=n, OPENBLAS_NUM_THREADS=n, MKL_NUM_THREADS=n,
               POSENC_BENCH_THREADS=n)
    proc = subprocess.run([sys.executable, __file__, "--worker-torch", str(sk), kv_elem,
                           str(repeat)], capture_output=True, text=True, env=env)
    if proc.returncode != 0:
        return None
    return json.loads(proc.stdout.strip().splitlines()[-1])["ms"]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--contexts", default="4096,32768")
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--no-torch", action="store_true", help="skip PyTorch eager")
    ap.add_argument("--worker-torch", nargs=3, metavar=("SK", "KV", "REPEAT"),
                    help=argparse.SUPPRESS)
    opts = ap.parse_args()
    if opts.worker_torch:
        sk, kv_elem, repeat = opts.worker_torch
        print(json.dumps(dict(ms=worker_torch(int(sk), kv_elem, int(repeat)))))
        return 0
    # As bench/rope_bias.py: malloc keeps freed large blocks, so buffers
    # freed by one call back the next without first-touch page faults.
    posenc.retain_freed_large_buffers()
    rng = np.random.default_rng(0)
    header = (f"{'K/V':<5} {'Sk':>6} {'MB K+V':>7} {'read ms':>8} {'read GB/s':>9} "
              f"{'impl':<8} {'min ms':>8} {'med ms':>8} {'GB/s':>7} {'% read':>7} {'max err':>8}")
    print(header)
    print("-" * len(header))
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        lib = os.path.join(tmp, "split_k.mlir")
        with open(lib, "w") as f:
            f.write(SPLIT_K)
        pipelines = {
            "default": "posenc-lower-to-cpu",
            "prefill": "posenc-lower-to-cpu{attention-decode-queries=0}",
            "split-K": (f"transform-preload-library{{transform-library-paths={lib}}},"
                        "transform-interpreter,posenc-lower-to-cpu"),
        }
        for kv_elem in ("f32", "bf16"):
            for sk in (int(x) for x in opts.contexts.split(",")):
                q = rng.uniform(-1, 1, (1, 1, HQ, D)).astype(np.float32)
                k32 = rng.uniform(-1, 1, (1, sk, HKV, D)).astype(np.float32)
                v32 = rng.uniform(-1, 1, (1, sk, HKV, D)).astype(np.float32)
                if kv_elem == "bf16":
                    k, v = posenc.to_bf16(k32), posenc.to_bf16(v32)
                    k64, v64 = posenc.from_bf16(k), posenc.from_bf16(v)
                    q64 = posenc.from_bf16(posenc.to_bf16(q))
                else:
                    k, v, k64, v64, q64 = k32, v32, k32, v32, q
                k, v = aligned(k), aligned(v)
                nbytes = k.nbytes + v.nbytes
                read_min = read_ms((k, v), opts.repeat)
                expected = posenc.reference.attention(q64, k64, v64, causal=True)
                for name, pipeline in pipelines.items():
                    try:
                        m = posenc.compile(decode_ir(sk, kv_elem), pipeline=pipeline)
                    except posenc.Error as e:  # a build without that schedule
                        print(f"{kv_elem:<5} {sk:>6} {name:<8} failed: {str(e).splitlines()[0]}")
                        continue
                    out = m.decode(q, k, v)
                    if kv_elem == "bf16":
                        out = posenc.from_bf16(out)
                    err = float(np.max(np.abs(out - expected)))
                    tmin, tmed = time_calls(lambda: m.decode(q, k, v), opts.repeat,
                                            lambda: m.last_call_ms)
                    gbs = nbytes / tmin / 1e6
                    row = dict(kv=kv_elem, Sk=sk, impl=name, bytes=nbytes, read_ms=read_min,
                               min_ms=tmin, median_ms=tmed, gb_s=gbs,
                               fraction_of_read=read_min / tmin, max_abs_err=err)
                    rows.append(row)
                    print(f"{kv_elem:<5} {sk:>6} {nbytes / 2**20:>7.1f} {read_min:>8.2f} "
                          f"{nbytes / read_min / 1e6:>9.1f} {name:<8} {tmin:>8.2f} {tmed:>8.2f} "
                          f"{gbs:>7.1f} {100 * read_min / tmin:>6.1f}% {err:>8.1e}", flush=True)
                tmed = None if opts.no_torch else torch_ms(sk, kv_elem, 1, opts.repeat)
                if tmed is not None:
                    rows.append(dict(kv=kv_elem, Sk=sk, impl="torch", bytes=nbytes,
                                     read_ms=read_min, median_ms=tmed,
                                     fraction_of_read=read_min / tmed))
                    print(f"{kv_elem:<5} {sk:>6} {nbytes / 2**20:>7.1f} {read_min:>8.2f} "
                          f"{nbytes / read_min / 1e6:>9.1f} {'torch':<8} {'-':>8} {tmed:>8.2f} "
                          f"{nbytes / tmed / 1e6:>7.1f} {100 * read_min / tmed:>6.1f}% "
                          f"{'-':>8}", flush=True)
    results_file.write("decode", rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())

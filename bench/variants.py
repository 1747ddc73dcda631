#!/usr/bin/env python3
"""The attention variants of current models against plain causal attention,
measured in one run on one thread: sliding window (Mistral, Gemma, gpt-oss),
chunked attention (Llama 4), logit soft-capping (Gemma 2) and attention
sinks (gpt-oss), H = 16, D = 64, f32, prefill; the window and the chunk
are --window keys.

Each posenc row is `posenc.attention ... causal <variant>` compiled by
posenc-lower-to-cpu; `vs causal` is the plain causal time at the same S
over the variant's (> 1: faster; the window's ideal is about S / 2W, its
band's share of the causal triangle, the chunk's S / C). PyTorch eager runs the same math the
way Hugging Face's eager attention does (scores for every pair, the
variant's mask or cap, softmax, ·V), in its own process with OpenMP,
OpenBLAS and MKL pinned to one thread; in every worker malloc keeps
freed large blocks (posenc.retain_freed_large_buffers), so no contender
pays first-touch page faults for a result the previous call freed; `max err` is posenc's largest
absolute difference from PyTorch's output (float32 both).

Usage: bench/variants.py [--sizes 2048,8192] [--window 512] [--repeat 2]
[--torch-sizes 2048] (PyTorch only at these S: eager at S = 8192 takes
over a minute per call here) [--no-torch]. Writes
bench/results/variants.json."""

import argparse
import json
import os
import sys
import time

# Every contender on one thread (OpenBLAS reads this when numpy loads).
ONE_THREAD = {"OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1",
              "POSENC_NUM_THREADS": "1"}
os.environ.update(ONE_THREAD)

import numpy as np  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import results_file  # noqa: E402
import worker  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BUILD = os.environ.get("POSENC_BUILD_DIR", os.path.join(ROOT, "build"))
H, D = 16, 64
SOFTCAP = 50.0  # Gemma 2's attn_logit_softcapping


def variants(window):
    return ["causal", f"window {window}", f"chunk {window}", f"softcap {SOFTCAP:g}", "sinks"]


def posenc_ir(s, name, window):
    t = f"tensor<1x{s}x{H}x{D}xf32>"
    st = f"tensor<{H}xf32>"
    sinks = f" sinks(%s : {st})" if name == "sinks" else ""
    cap = f" softcap({SOFTCAP})" if name.startswith("softcap") else ""
    win = f" window({window})" if name.startswith("window") else ""
    win += f" chunk({window})" if name.startswith("chunk") else ""
    return (f"func.func @attn(%q: {t}, %k: {t}, %v: {t}, %s: {st}) -> {t} {{\n"
            f"  %init = tensor.empty() : {t}\n"
            f"  %o = posenc.attention %q, %k, %v{sinks}{cap} causal{win} outs(%init) : "
            f"{t}, {t}, {t}, {t}\n"
            f"  return %o : {t}\n}}\n")


def inputs(s):
    rng = np.random.default_rng(0)
    q, k, v = (rng.standard_normal((1, s, H, D)).astype(np.float32) for _ in range(3))
    sinks = rng.uniform(-1, 1, H).astype(np.float32)
    return q, k, v, sinks


def retain_freed_large_buffers():
    """Every contender's malloc keeps freed large blocks: no call pays
    first-touch page faults for the result buffer the previous one freed
    (S = 8192: 8192 faults of a 32 MB output per call)."""
    sys.path.insert(0, os.path.join(BUILD, "python_packages"))
    import posenc

    posenc.retain_freed_large_buffers()


def worker_posenc(s, name, window, repeat):
    sys.path.insert(0, os.path.join(BUILD, "python_packages"))
    import posenc

    m = posenc.compile(posenc_ir(s, name, window))
    args = inputs(s)
    times = []
    for _ in range(repeat + 1):
        out = m.attn(*args)
        times.append(m.last_call_ms)
    np.save(os.environ["POSENC_BENCH_OUT"], out)
    return dict(min_ms=min(times[1:]), median_ms=float(np.median(times[1:])))


def worker_torch(s, name, window, repeat):
    import torch

    torch.set_num_threads(1)
    q, k, v, sinks = (torch.from_numpy(x) for x in inputs(s))
    qh, kh, vh = (x[0].permute(1, 0, 2) for x in (q, k, v))  # [H, S, D]
    i = torch.arange(s)[:, None]
    j = torch.arange(s)[None, :]
    masked = j > i
    if name.startswith("window"):
        masked = masked | (j <= i - window)
    if name.startswith("chunk"):  # Llama 4: same chunk, causal inside
        masked = masked | (j < i // window * window)

    def step():
        scores = torch.matmul(qh, kh.transpose(1, 2)) / D ** 0.5
        if name.startswith("softcap"):
            scores = SOFTCAP * torch.tanh(scores / SOFTCAP)
        scores = scores.masked_fill(masked, float("-inf"))
        if name == "sinks":  # gpt-oss: a sink column, dropped after softmax
            col = sinks[:, None, None].expand(H, s, 1)
            probs = torch.softmax(torch.cat([scores, col], dim=-1), dim=-1)[..., :-1]
        else:
            probs = torch.softmax(scores, dim=-1)
        return torch.matmul(probs, vh)

    times = []
    with torch.no_grad():
        for _ in range(repeat + 1):
            t0 = time.perf_counter()
            out = step()
            times.append((time.perf_counter() - t0) * 1e3)
    np.save(os.environ["POSENC_BENCH_OUT"], out.permute(1, 0, 2)[None].numpy())
    return dict(min_ms=min(times[1:]), median_ms=float(np.median(times[1:])))


def measure(impl, s, name, window, repeat, out_path):
    return worker.measure(__file__, [impl, s, name, window, repeat], out_path, ONE_THREAD)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", default="2048,8192")
    ap.add_argument("--window", type=int, default=512)
    ap.add_argument("--repeat", type=int, default=2)
    ap.add_argument("--torch-sizes", default="2048")
    ap.add_argument("--no-torch", action="store_true")
    ap.add_argument("--worker", nargs=5, help=argparse.SUPPRESS)
    opts = ap.parse_args()
    if opts.worker:
        impl, s, name, window, repeat = opts.worker
        retain_freed_large_buffers()
        fn = worker_posenc if impl == "posenc" else worker_torch
        print(json.dumps(fn(int(s), name, int(window), int(repeat))))
        return 0
    import tempfile

    header = (f"{'variant':<13} {'S':>5} {'posenc min':>10} {'posenc med':>10} "
              f"{'vs causal':>9} {'torch med':>9} {'vs torch':>8} {'max err':>8}")
    worker.print_header(header)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for s in (int(x) for x in opts.sizes.split(",")):
            causal_ms = None
            for name in variants(opts.window):
                p_out, t_out = os.path.join(tmp, "p.npy"), os.path.join(tmp, "t.npy")
                p = measure("posenc", s, name, opts.window, opts.repeat, p_out)
                torch_here = str(s) in opts.torch_sizes.split(",") and not opts.no_torch
                t = measure("torch", s, name, opts.window, 1, t_out) if torch_here else {}
                if "error" in p:
                    print(f"{name:<13} {s:>5} posenc failed: {p['error']}")
                    continue
                causal_ms = causal_ms or p["min_ms"]
                err = (float(np.max(np.abs(np.load(p_out) - np.load(t_out))))
                       if "median_ms" in t else None)
                tmed = t.get("median_ms")
                vs_torch = f"{tmed / p['median_ms']:.2f}x" if tmed else "-"
                print(f"{name:<13} {s:>5} {p['min_ms']:>10.1f} {p['median_ms']:>10.1f} "
                      f"{causal_ms / p['min_ms']:>8.2f}x "
                      f"{(f'{tmed:.1f}' if tmed else '-'):>9} "
                      f"{vs_torch:>8} "
                      f"{(f'{err:.1e}' if err is not None else '-'):>8}", flush=True)
                rows.append(dict(variant=name, S=s, posenc_min_ms=p["min_ms"],
                                 posenc_median_ms=p["median_ms"],
                                 speedup_vs_causal=causal_ms / p["min_ms"],
                                 torch_median_ms=tmed, max_abs_diff_vs_torch=err))
    results_file.write("variants", rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())

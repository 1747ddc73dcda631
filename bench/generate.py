#!/usr/bin/env python3
"""Whole-model decode and the projections it is made of, one thread each.

Table 1, decode tok/s of the shared llama2.c checkpoints (../shared/models,
or $POSENC_MODELS_DIR; --checkpoint adds any other): greedy generation of
--steps positions after BOS,
  posenc   the compiled `decode` entry point (posenc.decoder), the KV cache
           updated in place; wall time per token including the Python call,
           and the compiled code alone (`last_call_ms`)
  torch    PyTorch eager, the same forward pass written from the
           architecture with a preallocated KV cache
  numpy    the same in numpy (OpenBLAS sgemv)
All three produce the same greedy ids (checked).

Table 2, projections y = x·Wᵀ with W [n, d] as stored, from the model
shapes and a 7B layer (d = 4096, n = 4096 and 14336), M = 1 (GEMV) and
M = 64: posenc (linalg.matmul through posenc-lower-to-cpu, W passed by
reference) against numpy/OpenBLAS in the same run, and GB/s of W read.

Min and median over --repeat runs. Threads: --threads N (default 1) for
every contender: OPENBLAS_NUM_THREADS, OMP_NUM_THREADS and MKL_NUM_THREADS
set to N before numpy loads, torch.set_num_threads(N), posenc compiled with
threads=N (posenc-lower-to-cpu{num-threads=N}). Writes
bench/results/generate.json.
"""

import os
import sys


def _threads_from_argv():
    """--threads N, read before numpy loads OpenBLAS (which fixes its
    thread count then); argparse checks it again."""
    for i, arg in enumerate(sys.argv):
        if arg == "--threads" and i + 1 < len(sys.argv):
            return sys.argv[i + 1]
        if arg.startswith("--threads="):
            return arg.split("=", 1)[1]
    return "1"


for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_var] = _threads_from_argv()

import argparse  # noqa: E402
import time  # noqa: E402

import numpy as np  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import results_file  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BUILD = os.environ.get("POSENC_BUILD_DIR", os.path.join(ROOT, "build"))
sys.path.insert(0, os.path.join(BUILD, "python_packages"))
import posenc  # noqa: E402
from posenc import decoder  # noqa: E402

MODELS = os.environ.get("POSENC_MODELS_DIR", os.path.join(ROOT, "..", "shared", "models"))


class Eager:
    """run.c's forward pass, one token at a time with a KV cache, in torch
    or numpy (`xp`)."""

    def __init__(self, cfg, weights, xp):
        self.c, self.xp = cfg, xp
        conv = (lambda a: xp.from_numpy(np.ascontiguousarray(a))) if xp is not np else \
            np.ascontiguousarray
        self.w = {k: conv(v) for k, v in weights.items()}
        hd = cfg.head_dim
        freq = 10000.0 ** (-np.arange(0, hd, 2) / hd)
        ang = np.arange(cfg.seq_len)[:, None] * freq[None, :]
        self.cos, self.sin = (conv(np.cos(ang).astype(np.float32)),
                              conv(np.sin(ang).astype(np.float32)))
        shape = (cfg.n_layers, cfg.seq_len, cfg.n_kv_heads, hd)
        self.kc = conv(np.zeros(shape, np.float32))
        self.vc = conv(np.zeros(shape, np.float32))

    def rms(self, x, g):
        xp = self.xp
        return g * (x / xp.sqrt((x * x).mean() + self.c.norm_eps))

    def rope(self, x, pos):
        x0, x1 = x[..., 0::2], x[..., 1::2]
        c, s = self.cos[pos], self.sin[pos]
        out = self.xp.empty_like(x) if self.xp is np else x.clone()
        out[..., 0::2] = x0 * c - x1 * s
        out[..., 1::2] = x0 * s + x1 * c
        return out

    def step(self, token, pos):
        c, w, xp = self.c, self.w, self.xp
        h, hkv, hd = c.n_heads, c.n_kv_heads, c.head_dim
        x = w["token_embedding"][token]
        for layer in range(c.n_layers):
            xb = self.rms(x, w["rms_att"][layer])
            q = self.rope((w["wq"][layer] @ xb).reshape(h, hd), pos)
            self.kc[layer, pos] = self.rope((w["wk"][layer] @ xb).reshape(hkv, hd), pos)
            self.vc[layer, pos] = (w["wv"][layer] @ xb).reshape(hkv, hd)
            k, v = self.kc[layer, :pos + 1], self.vc[layer, :pos + 1]  # [n, hkv, hd]
            qg = q.reshape(hkv, h // hkv, hd)
            if xp is np:
                s = np.einsum("agd,nad->agn", qg, k) / np.sqrt(hd)
                p = np.exp(s - s.max(-1, keepdims=True))
                p /= p.sum(-1, keepdims=True)
                att = np.einsum("agn,nad->agd", p, v).reshape(-1)
            else:
                s = xp.einsum("agd,nad->agn", qg, k) / hd ** 0.5
                att = xp.einsum("agn,nad->agd", xp.softmax(s, -1), v).reshape(-1)
            x = x + w["wo"][layer] @ att
            xb = self.rms(x, w["rms_ffn"][layer])
            g, u = w["w1"][layer] @ xb, w["w3"][layer] @ xb
            silu = g / (1 + xp.exp(-g))
            x = x + w["w2"][layer] @ (silu * u)
        return w["wcls"] @ self.rms(x, w["rms_final"])


def time_generation(step, steps, repeat):
    """(ids, min ms/token, median ms/token) of greedy decoding."""
    per_token = []
    for _ in range(repeat):
        ids, token = [1], 1
        t0 = time.perf_counter()
        for pos in range(steps - 1):
            token = int(step(token, pos).argmax())
            ids.append(token)
        per_token.append((time.perf_counter() - t0) * 1e3 / (steps - 1))
    return ids, min(per_token), float(np.median(per_token))


def decode_table(paths, steps, repeat, rows, threads):
    try:
        import torch
        torch.set_num_threads(threads)
    except ImportError:
        torch = None
    header = (f"{'checkpoint':<18} {'impl':<14} {'min ms/tok':>10} {'med ms/tok':>10} "
              f"{'tok/s':>8} {'vs torch':>8} {'ids':>9}")
    print(header)
    print("-" * len(header))
    for path in paths:
        cfg, weights = decoder.read_checkpoint(path)
        n = min(steps, cfg.seq_len)
        model = decoder.Model(cfg, decoder.layer_weights(weights, cfg.n_layers), source=path,
                              threads=threads)
        compiled = []

        def posenc_step(token, pos):
            out = model.module.call("decode", np.array([token], np.int32),
                                    np.array([pos], np.int64), *model._weights,
                                    model.k_cache, model.v_cache)
            compiled.append(model.module.last_call_ms)
            return out[0]

        results = {}
        ids, tmin, tmed = time_generation(posenc_step, n, repeat)
        results["posenc"] = (ids, tmin, tmed)
        kernel = sorted(compiled)
        results["posenc (code)"] = (ids, kernel[0], float(np.median(kernel)))
        if torch is not None:
            eager = Eager(cfg, weights, torch)
            with torch.no_grad():
                results["torch eager"] = time_generation(
                    lambda t, p: eager.step(t, p).numpy(), n, repeat)
        npy = Eager(cfg, weights, np)
        results["numpy"] = time_generation(npy.step, n, repeat)
        ref_ids = results["numpy"][0]
        torch_ms = results.get("torch eager", (None, None, None))[1]
        for impl, (ids, tmin, tmed) in results.items():
            same = "same" if ids == ref_ids else "DIFFERENT"
            vs = f"{torch_ms / tmin:.2f}x" if torch_ms else "-"
            print(f"{os.path.basename(path):<18} {impl:<14} {tmin:>10.3f} {tmed:>10.3f} "
                  f"{1e3 / tmin:>8.0f} {vs:>8} {same:>9}", flush=True)
            rows.append(dict(table="decode", threads=threads,
                             checkpoint=os.path.basename(path), impl=impl,
                             min_ms_per_token=tmin, median_ms_per_token=tmed,
                             ids_match_numpy=ids == ref_ids))


def projection_ir(m, n, d):
    x, w, y = f"tensor<{m}x{d}xf32>", f"memref<{n}x{d}xf32>", f"tensor<{m}x{n}xf32>"
    return (f"func.func @proj(%x: {x}, %wm: {w}) -> {y} {{\n"
            f"  %w = bufferization.to_tensor %wm restrict : {w} to tensor<{n}x{d}xf32>\n"
            f"  %z = arith.constant 0.0 : f32\n"
            f"  %e = tensor.empty() : {y}\n"
            f"  %f = linalg.fill ins(%z : f32) outs(%e : {y}) -> {y}\n"
            f"  %r = linalg.matmul indexing_maps = [affine_map<(m, n, k) -> (m, k)>, "
            f"affine_map<(m, n, k) -> (n, k)>, affine_map<(m, n, k) -> (m, n)>] "
            f"ins(%x, %w : {x}, tensor<{n}x{d}xf32>) outs(%f : {y}) -> {y}\n"
            f"  return %r : {y}\n}}\n")


def time_min_med(fn, repeat, last=None):
    fn()
    ts = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        ts.append(last() if last else (time.perf_counter() - t0) * 1e3)
    return min(ts), float(np.median(ts))


def projection_table(shapes, repeat, rows, threads):
    header = (f"{'M':>3} {'d':>5} {'n':>6} {'MB W':>6} {'numpy ms':>9} {'posenc ms':>10} "
              f"{'posenc med':>10} {'% numpy':>8} {'posenc GB/s':>11} {'max err':>8}")
    print(header)
    print("-" * len(header))
    rng = np.random.default_rng(0)
    for m, d, n in shapes:
        x = rng.uniform(-1, 1, (m, d)).astype(np.float32)
        w = rng.uniform(-1, 1, (n, d)).astype(np.float32)
        mod = posenc.compile(projection_ir(m, n, d), threads=threads)
        got = mod.proj(x, w)
        err = float(np.abs(got - x.astype(np.float64) @ w.T.astype(np.float64)).max()
                    / np.sqrt(d))
        np_min, _ = time_min_med(lambda: x @ w.T, repeat)
        pmin, pmed = time_min_med(lambda: mod.proj(x, w), repeat, lambda: mod.last_call_ms)
        print(f"{m:>3} {d:>5} {n:>6} {w.nbytes / 2**20:>6.1f} {np_min:>9.3f} {pmin:>10.3f} "
              f"{pmed:>10.3f} {100 * np_min / pmin:>7.1f}% {w.nbytes / pmin / 1e6:>11.1f} "
              f"{err:>8.1e}", flush=True)
        rows.append(dict(table="projection", threads=threads, M=m, d=d, n=n, numpy_ms=np_min, posenc_min_ms=pmin,
                         posenc_median_ms=pmed, fraction_of_numpy=np_min / pmin))


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--checkpoint", action="append", default=[])
    ap.add_argument("--steps", type=int, default=128)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--quick", action="store_true", help="skip the 7B-shaped projections")
    ap.add_argument("--threads", type=int, default=1,
                    help="threads of every contender (default 1)")
    opts = ap.parse_args()
    if opts.threads < 1:
        ap.error(f"--threads must be at least 1, got {opts.threads}")
    print(f"threads: {opts.threads} (posenc, PyTorch, OpenBLAS)")
    posenc.retain_freed_large_buffers()
    paths = [os.path.join(MODELS, f) for f in ("aidreams260K.bin", "stories260K.bin")
             if os.path.exists(os.path.join(MODELS, f))] + opts.checkpoint
    rows = []
    if paths:
        decode_table(paths, opts.steps, opts.repeat, rows, opts.threads)
    else:
        print(f"(no checkpoints: {MODELS} is absent and no --checkpoint given)")
    print()
    shapes = [(1, 64, 64), (1, 64, 172), (1, 64, 512), (64, 64, 172)]
    if not opts.quick:
        shapes += [(1, 4096, 4096), (1, 4096, 14336), (64, 4096, 4096), (64, 4096, 14336)]
    projection_table(shapes, opts.repeat, rows, opts.threads)
    results_file.write("generate", rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())

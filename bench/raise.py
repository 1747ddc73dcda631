#!/usr/bin/env python3
"""What posenc-raise buys a program that reaches posenc through an MLIR
importer: the attention core of a Hugging Face Llama layer, written in
upstream dialects the way torch-mlir's TorchToLinalg emits it, one linalg
op per aten op (test/python/raise_programs.py writes it): RoPE on q and k
(LlamaRotaryEmbedding's cos/sin from inv_freq @ position_ids, base 500000,
and apply_rotary_pos_emb's x·cos + rotate_half(x)·sin), then eager
attention (repeat_kv on K and V, K transposed, a scale, the causal mask as
a constant tensor of the lowest f32, the softmax as max / exp / sum /
divide, P·V). GQA 8/4 heads, D = 64, batch 1, f32, prefill, one thread.
The projections, norms and MLP of the layer are not in it.

`unraised` compiles it with posenc-lower-to-cpu as it is: every linalg op
runs, the [H, S, S] scores are built (`scores MB`). `raised` runs
posenc-raise first: two posenc.rope and one posenc.attention with `causal`
over the unrepeated K and V, tiled by the CPU pipeline, no scores tensor.
PyTorch eager runs the same math as Hugging Face's modules (the peer an
importer starts from), in its own process; every contender is pinned to
one thread. `max err`: largest absolute difference from PyTorch's output
(posenc.rope forms the angles exactly, PyTorch in f32).

Usage: bench/raise.py [--sizes 512,1024,2048] [--repeat 3]. Writes
bench/results/raise.json."""

import argparse
import json
import os
import sys
import time

ONE_THREAD = {"OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1",
              "POSENC_NUM_THREADS": "1"}
os.environ.update(ONE_THREAD)

import numpy as np  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import results_file  # noqa: E402
import worker  # noqa: E402

ROOT = os.path.dirname(HERE)
BUILD = os.environ.get("POSENC_BUILD_DIR", os.path.join(ROOT, "build"))
sys.path.insert(0, os.path.join(ROOT, "test", "python"))
H, HKV, D = 8, 4, 64
FORM = dict(batch=2, k="transpose", named=False, scale="mul", bias="causal_lowest",
            softmax="decomposed", elem="f32", gqa="expand")


ROPE_FORM = dict(angles="matmul", apply="fused", scaling="none", factor=1.0, batched_pos=True)
BASE = 500000.0  # Llama 3's rope_theta


def program(s):
    """The attention core of a Llama layer: RoPE on q and k, then eager
    attention, each function as an importer writes it, called from @attn."""
    from raise_programs import attention_program, rope_program

    rng = np.random.default_rng(0)
    attn, (q, k, v), _ = attention_program(rng, FORM, sizes=(s, s, D, D), batch=(1, H),
                                           expected=False, name="attn_core")
    rope_q, (q, pos), _ = rope_program(rng, ROPE_FORM, name="rope_q", b=1, h=H, s=s, d=D,
                                       base=BASE)
    rope_k, (k, _), _ = rope_program(rng, ROPE_FORM, name="rope_k", b=1, h=HKV, s=s, d=D,
                                     base=BASE)
    pos = np.arange(s, dtype=np.int64)[None]
    tq, tk = f"tensor<1x{H}x{s}x{D}xf32>", f"tensor<1x{HKV}x{s}x{D}xf32>"
    tp = f"tensor<1x{s}xi64>"
    block = (f"func.func @attn(%q: {tq}, %k: {tk}, %v: {tk}, %pos: {tp}) -> {tq} {{\n"
             f"  %qr = func.call @rope_q(%q, %pos) : ({tq}, {tp}) -> {tq}\n"
             f"  %kr = func.call @rope_k(%k, %pos) : ({tk}, {tp}) -> {tk}\n"
             f"  %o = func.call @attn_core(%qr, %kr, %v) : ({tq}, {tk}, {tk}) -> {tq}\n"
             f"  return %o : {tq}\n}}\n")
    return block + rope_q + rope_k + attn, [q, k, v, pos]


def worker_posenc(s, impl, repeat):
    sys.path.insert(0, os.path.join(BUILD, "python_packages"))
    import posenc

    posenc.retain_freed_large_buffers()
    ir, inputs = program(s)
    if impl == "raised":
        from harness import opt

        raised = opt(ir, "--posenc-raise")
        assert raised.count("posenc.attention") == 1 and " causal " in raised
        assert raised.count("posenc.rope") == 2
        m = posenc.compile(raised)
    else:
        m = posenc.compile(ir)
    times = []
    for _ in range(repeat + 1):
        out = m.attn(*inputs)
        times.append(m.last_call_ms)
    np.save(os.environ["POSENC_BENCH_OUT"], out)
    return dict(min_ms=min(times[1:]), median_ms=float(np.median(times[1:])))


def worker_torch(s, repeat):
    import torch

    torch.set_num_threads(1)
    _, inputs = program(s)
    q, k, v, pos = (torch.from_numpy(x) for x in inputs)
    mask = torch.triu(torch.full((s, s), torch.finfo(torch.float32).min), diagonal=1)
    inv_freq = 1.0 / (BASE ** (torch.arange(0, D, 2, dtype=torch.int64).float() / D))

    def rotate_half(x):
        return torch.cat((-x[..., D // 2:], x[..., :D // 2]), dim=-1)

    def step():  # LlamaRotaryEmbedding, apply_rotary_pos_emb, repeat_kv, eager attention
        freqs = (inv_freq[None, :, None] @ pos[:, None, :].float()).transpose(1, 2)
        emb = torch.cat((freqs, freqs), dim=-1)
        cos, sin = emb.cos()[:, None], emb.sin()[:, None]
        qr, kr0 = q * cos + rotate_half(q) * sin, k * cos + rotate_half(k) * sin
        kr = kr0[:, :, None].expand(1, HKV, H // HKV, s, D).reshape(1, H, s, D)
        vr = v[:, :, None].expand(1, HKV, H // HKV, s, D).reshape(1, H, s, D)
        scores = torch.matmul(qr, kr.transpose(2, 3)) * 0.35 + mask
        return torch.matmul(torch.softmax(scores, dim=-1), vr)

    times = []
    with torch.no_grad():
        for _ in range(repeat + 1):
            t0 = time.perf_counter()
            out = step()
            times.append((time.perf_counter() - t0) * 1e3)
    np.save(os.environ["POSENC_BENCH_OUT"], out.numpy())
    return dict(min_ms=min(times[1:]), median_ms=float(np.median(times[1:])))


def measure(impl, s, repeat, out_path):
    return worker.measure(__file__, [impl, s, repeat], out_path, ONE_THREAD)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", default="512,1024,2048")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--worker", nargs=3, help=argparse.SUPPRESS)
    opts = ap.parse_args()
    if opts.worker:
        impl, s, repeat = opts.worker
        os.environ.setdefault("POSENC_BUILD_DIR", BUILD)
        r = worker_torch(int(s), int(repeat)) if impl == "torch" else worker_posenc(
            int(s), impl, int(repeat))
        print(json.dumps(r))
        return 0
    import tempfile

    header = (f"{'S':>5} {'scores MB':>9} {'impl':<9} {'min ms':>9} {'med ms':>9} "
              f"{'vs unraised':>11} {'vs torch':>8} {'max err':>8}")
    worker.print_header(header)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for s in (int(x) for x in opts.sizes.split(",")):
            outs, res = {}, {}
            for impl in ("torch", "unraised", "raised"):
                outs[impl] = os.path.join(tmp, f"{impl}.npy")
                res[impl] = measure(impl, s, opts.repeat, outs[impl])
            scores_mb = H * s * s * 4 / 2**20
            for impl in ("unraised", "raised", "torch"):
                r = res[impl]
                if "error" in r:
                    print(f"{s:>5} {scores_mb:>9.0f} {impl:<9} failed: {r['error']}")
                    continue
                base, peer = res["unraised"].get("median_ms"), res["torch"].get("median_ms")
                err = (float(np.max(np.abs(np.load(outs[impl]) - np.load(outs["torch"]))))
                       if peer and impl != "torch" else None)
                vs_base = f"{base / r['median_ms']:.2f}x" if base else "-"
                vs_peer = f"{peer / r['median_ms']:.2f}x" if peer else "-"
                print(f"{s:>5} {scores_mb:>9.0f} {impl:<9} {r['min_ms']:>9.2f} "
                      f"{r['median_ms']:>9.2f} {vs_base:>11} {vs_peer:>8} "
                      f"{(f'{err:.1e}' if err is not None else '-'):>8}", flush=True)
                rows.append(dict(S=s, impl=impl, min_ms=r["min_ms"], median_ms=r["median_ms"],
                                 scores_mb=scores_mb, max_abs_diff_vs_torch=err))
    results_file.write("raise", rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())

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
Around it, the rest of the layer: RMSNorm, the q/k/v and output
projections, the residuals and the SwiGLU MLP (d_model 512, FFN 1024),
which posenc-raise leaves as they are.

`unraised` compiles it with posenc-lower-to-cpu as it is: every linalg op
runs, the [H, S, S] scores are built (`scores MB`; `peak MB` is the
worker's peak resident memory, weights, compiler and all). `raised` runs
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
import resource
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


DM, FFN, EPS = H * D, 1024, 1e-5


def _linalg_layer(s):
    """@layer: RMSNorm, the q/k/v projections, @attn (RoPE + attention),
    the output projection, the residual, RMSNorm and the SwiGLU MLP, in
    linalg as TorchToLinalg writes them (torch's Linear as linalg.matmul
    with the weight pre-transposed)."""
    t = lambda *sh: "tensor<" + "x".join(map(str, sh)) + "xf32>"  # noqa: E731
    lines, n = [], [0]

    def v():
        n[0] += 1
        return f"%l{n[0]}"

    def ew(ins, shape, body, maps=None):
        r, e = v(), v()
        lines.append(f"{e} = tensor.empty() : {t(*shape)}")
        dims = ", ".join(f"d{i}" for i in range(len(shape)))
        maps = maps or [dims] * len(ins)
        m = ", ".join(f"affine_map<({dims}) -> ({x})>" for x in maps + [dims])
        it = ", ".join(['"parallel"'] * len(shape))
        args = ", ".join(f"%a{i}: f32" for i in range(len(ins))) + ", %o: f32"
        lines.append(f"{r} = linalg.generic {{indexing_maps = [{m}], iterator_types = [{it}]}} "
                     f"ins({', '.join(x for x, _ in ins)} : {', '.join(ty for _, ty in ins)}) "
                     f"outs({e} : {t(*shape)}) {{\n^bb0({args}):")
        lines.extend("  " + b for b in body)
        lines.append(f"}} -> {t(*shape)}")
        return r

    def matmul(a, w, m, k, n_):
        z, f, r = v(), v(), v()
        lines.append(f"{z} = arith.constant 0.0 : f32")
        e = v()
        lines.append(f"{e} = tensor.empty() : {t(m, n_)}")
        lines.append(f"{f} = linalg.fill ins({z} : f32) outs({e} : {t(m, n_)}) -> {t(m, n_)}")
        lines.append(f"{r} = linalg.matmul ins({a}, {w} : {t(m, k)}, {t(k, n_)}) "
                     f"outs({f} : {t(m, n_)}) -> {t(m, n_)}")
        return r

    def rmsnorm(x, w):
        z, f, e, ss = v(), v(), v(), v()
        lines.append(f"{z} = arith.constant 0.0 : f32")
        lines.append(f"{e} = tensor.empty() : {t(s)}")
        lines.append(f"{f} = linalg.fill ins({z} : f32) outs({e} : {t(s)}) -> {t(s)}")
        lines.append(f"{ss} = linalg.generic {{indexing_maps = [affine_map<(d0, d1) -> (d0, d1)>, "
                     f"affine_map<(d0, d1) -> (d0)>], iterator_types = [\"parallel\", "
                     f"\"reduction\"]}} ins({x} : {t(s, DM)}) outs({f} : {t(s)}) {{\n"
                     f"^bb0(%a: f32, %o: f32):\n  %q = arith.mulf %a, %a : f32\n"
                     f"  %r = arith.addf %o, %q : f32\n  linalg.yield %r : f32\n}} -> {t(s)}")
        return ew([(x, t(s, DM)), (ss, t(s)), (w, t(DM))], [s, DM],
                  ["%m = arith.divf %a1, %cn : f32",
                   "%e = arith.addf %m, %ce : f32", "%r = math.rsqrt %e : f32",
                   "%y = arith.mulf %a0, %r : f32", "%z = arith.mulf %y, %a2 : f32",
                   "linalg.yield %z : f32"],
                  maps=["d0, d1", "d0", "d1"])

    def heads(x, nh):  # [S, nh·D] -> [1, nh, S, D]
        e4, t4, e = v(), v(), v()
        lines.append(f"{e4} = tensor.expand_shape {x} [[0, 1], [2, 3]] output_shape "
                     f"[1, {s}, {nh}, {D}] : {t(s, nh * D)} into {t(1, s, nh, D)}")
        lines.append(f"{e} = tensor.empty() : {t(1, nh, s, D)}")
        lines.append(f"{t4} = linalg.transpose ins({e4} : {t(1, s, nh, D)}) outs({e} : "
                     f"{t(1, nh, s, D)}) permutation = [0, 2, 1, 3]")
        return t4

    lines.append(f"%cn = arith.constant {float(DM)} : f32")
    lines.append(f"%ce = arith.constant {EPS:.6e} : f32")
    hx = rmsnorm("%x", "%wn1")
    q = heads(matmul(hx, "%wq", s, DM, H * D), H)
    k = heads(matmul(hx, "%wk", s, DM, HKV * D), HKV)
    vv = heads(matmul(hx, "%wv", s, DM, HKV * D), HKV)
    o = v()
    lines.append(f"{o} = func.call @attn({q}, {k}, {vv}, %pos) : ({t(1, H, s, D)}, "
                 f"{t(1, HKV, s, D)}, {t(1, HKV, s, D)}, tensor<1x{s}xi64>) -> {t(1, H, s, D)}")
    e, ot, oc = v(), v(), v()
    lines.append(f"{e} = tensor.empty() : {t(1, s, H, D)}")
    lines.append(f"{ot} = linalg.transpose ins({o} : {t(1, H, s, D)}) outs({e} : "
                 f"{t(1, s, H, D)}) permutation = [0, 2, 1, 3]")
    lines.append(f"{oc} = tensor.collapse_shape {ot} [[0, 1], [2, 3]] : {t(1, s, H, D)} "
                 f"into {t(s, H * D)}")
    a = matmul(oc, "%wo", s, H * D, DM)
    x2 = ew([("%x", t(s, DM)), (a, t(s, DM))], [s, DM],
            ["%r = arith.addf %a0, %a1 : f32", "linalg.yield %r : f32"])
    h2 = rmsnorm(x2, "%wn2")
    g, u = matmul(h2, "%wg", s, DM, FFN), matmul(h2, "%wu", s, DM, FFN)
    m = ew([(g, t(s, FFN)), (u, t(s, FFN))], [s, FFN],
           ["%n = arith.negf %a0 : f32", "%ex = math.exp %n : f32",
            "%one = arith.constant 1.0 : f32", "%d = arith.addf %one, %ex : f32",
            "%sg = arith.divf %a0, %d : f32", "%r = arith.mulf %sg, %a1 : f32",
            "linalg.yield %r : f32"])
    dn = matmul(m, "%wd", s, FFN, DM)
    y = ew([(x2, t(s, DM)), (dn, t(s, DM))], [s, DM],
           ["%r = arith.addf %a0, %a1 : f32", "linalg.yield %r : f32"])
    sig = (f"%x: {t(s, DM)}, %pos: tensor<1x{s}xi64>, %wn1: {t(DM)}, %wq: {t(DM, H * D)}, "
           f"%wk: {t(DM, HKV * D)}, %wv: {t(DM, HKV * D)}, %wo: {t(H * D, DM)}, "
           f"%wn2: {t(DM)}, %wg: {t(DM, FFN)}, %wu: {t(DM, FFN)}, %wd: {t(FFN, DM)}")
    return (f"func.func @layer({sig}) -> {t(s, DM)} {{\n  " + "\n  ".join(lines)
            + f"\n  return {y} : {t(s, DM)}\n}}\n")


def program(s):
    """A Llama layer (RMSNorm, projections, RoPE on q and k, eager GQA
    attention, output projection, residuals, SwiGLU MLP), each function as
    an importer writes it, @layer the entry: (IR, inputs)."""
    from raise_programs import attention_program, rope_program

    rng = np.random.default_rng(0)
    attn, _, _ = attention_program(rng, FORM, sizes=(s, s, D, D), batch=(1, H),
                                   expected=False, name="attn_core")
    rope_q, _, _ = rope_program(rng, ROPE_FORM, name="rope_q", b=1, h=H, s=s, d=D, base=BASE)
    rope_k, _, _ = rope_program(rng, ROPE_FORM, name="rope_k", b=1, h=HKV, s=s, d=D, base=BASE)
    tq, tk = f"tensor<1x{H}x{s}x{D}xf32>", f"tensor<1x{HKV}x{s}x{D}xf32>"
    tp = f"tensor<1x{s}xi64>"
    core = (f"func.func @attn(%q: {tq}, %k: {tk}, %v: {tk}, %pos: {tp}) -> {tq} {{\n"
            f"  %qr = func.call @rope_q(%q, %pos) : ({tq}, {tp}) -> {tq}\n"
            f"  %kr = func.call @rope_k(%k, %pos) : ({tk}, {tp}) -> {tk}\n"
            f"  %o = func.call @attn_core(%qr, %kr, %v) : ({tq}, {tk}, {tk}) -> {tq}\n"
            f"  return %o : {tq}\n}}\n")
    ir = _linalg_layer(s) + core + rope_q + rope_k + attn
    for name in ("attn", "rope_q", "rope_k", "attn_core"):
        ir = ir.replace(f"func.func @{name}(", f"func.func private @{name}(")
    w = lambda *sh: (rng.standard_normal(sh) / np.sqrt(sh[0])).astype(np.float32)  # noqa: E731
    inputs = [rng.standard_normal((s, DM)).astype(np.float32),
              np.arange(s, dtype=np.int64)[None],
              (1 + 0.1 * rng.standard_normal(DM)).astype(np.float32),
              w(DM, H * D), w(DM, HKV * D), w(DM, HKV * D), w(H * D, DM),
              (1 + 0.1 * rng.standard_normal(DM)).astype(np.float32),
              w(DM, FFN), w(DM, FFN), w(FFN, DM)]
    return ir, inputs


def worker_posenc(s, impl, repeat):
    sys.path.insert(0, os.path.join(BUILD, "python_packages"))
    import posenc

    posenc.retain_freed_large_buffers()
    ir, inputs = program(s)
    if impl == "raised":
        from harness import opt

        raised = opt(ir, "--inline", "--symbol-dce", "--posenc-raise")
        assert raised.count("posenc.attention") == 1 and " causal " in raised, raised
        assert raised.count("posenc.rope") == 2
        m = posenc.compile(raised)
    else:
        m = posenc.compile(ir)
    times = []
    for _ in range(repeat + 1):
        out = m.layer(*inputs)
        times.append(m.last_call_ms)
    np.save(os.environ["POSENC_BENCH_OUT"], out)
    return dict(min_ms=min(times[1:]), median_ms=float(np.median(times[1:])),
                peak_mb=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)


def worker_torch(s, repeat):
    import torch

    torch.set_num_threads(1)
    _, inputs = program(s)
    x, pos, wn1, wq, wk, wv, wo, wn2, wg, wu, wd = (torch.from_numpy(a) for a in inputs)
    mask = torch.triu(torch.full((s, s), torch.finfo(torch.float32).min), diagonal=1)
    inv_freq = 1.0 / (BASE ** (torch.arange(0, D, 2, dtype=torch.int64).float() / D))

    def rotate_half(t):
        return torch.cat((-t[..., D // 2:], t[..., :D // 2]), dim=-1)

    def rmsnorm(t, w):
        return t * torch.rsqrt(t.pow(2).mean(-1, keepdim=True) + EPS) * w

    def step():  # LlamaDecoderLayer's eager path, weights as [in, out]
        h = rmsnorm(x, wn1)
        q = (h @ wq).view(1, s, H, D).transpose(1, 2)
        k = (h @ wk).view(1, s, HKV, D).transpose(1, 2)
        v = (h @ wv).view(1, s, HKV, D).transpose(1, 2)
        freqs = (inv_freq[None, :, None] @ pos[:, None, :].float()).transpose(1, 2)
        emb = torch.cat((freqs, freqs), dim=-1)
        cos, sin = emb.cos()[:, None], emb.sin()[:, None]
        q, k = q * cos + rotate_half(q) * sin, k * cos + rotate_half(k) * sin
        k = k[:, :, None].expand(1, HKV, H // HKV, s, D).reshape(1, H, s, D)
        v = v[:, :, None].expand(1, HKV, H // HKV, s, D).reshape(1, H, s, D)
        scores = torch.matmul(q, k.transpose(2, 3)) * 0.35 + mask
        o = torch.matmul(torch.softmax(scores, dim=-1), v).transpose(1, 2).reshape(s, H * D)
        x2 = x + o @ wo
        h2 = rmsnorm(x2, wn2)
        return x2 + (torch.nn.functional.silu(h2 @ wg) * (h2 @ wu)) @ wd

    times = []
    with torch.no_grad():
        for _ in range(repeat + 1):
            t0 = time.perf_counter()
            out = step()
            times.append((time.perf_counter() - t0) * 1e3)
    np.save(os.environ["POSENC_BENCH_OUT"], out.numpy())
    return dict(min_ms=min(times[1:]), median_ms=float(np.median(times[1:])),
                peak_mb=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)


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

    os.environ.setdefault("POSENC_BUILD_DIR", BUILD)
    from harness import opt

    ir, _ = program(64)
    ir = opt(ir, "--inline", "--symbol-dce")
    raised = opt(ir, "--posenc-raise", "--canonicalize")
    count = lambda text, op: sum(ln.lstrip().split(" = ", 1)[-1].startswith(op)  # noqa: E731
                                 for ln in text.splitlines())
    print(f"posenc-raise on the layer: {count(ir, 'linalg.')} linalg ops -> "
          f"{count(raised, 'linalg.')} ({count(raised, 'linalg.transpose')} of them "
          f"transposes), {count(raised, 'posenc.rope')} posenc.rope, "
          f"{count(raised, 'posenc.attention')} posenc.attention")
    header = (f"{'S':>5} {'scores MB':>9} {'impl':<9} {'min ms':>9} {'med ms':>9} "
              f"{'vs unraised':>11} {'vs torch':>8} {'peak MB':>8} {'max err':>8}")
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
                      f"{r['peak_mb']:>8.0f} "
                      f"{(f'{err:.1e}' if err is not None else '-'):>8}", flush=True)
                rows.append(dict(S=s, impl=impl, min_ms=r["min_ms"], median_ms=r["median_ms"],
                                 peak_mb=r["peak_mb"], scores_mb=scores_mb,
                                 max_abs_diff_vs_torch=err))
    results_file.write("raise", rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())

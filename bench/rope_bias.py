#!/usr/bin/env python3
"""Memory-bound position encodings on the CPU, measured in one process:
posenc rope (f32 and bf16, both layouts) against a copy of the same bytes
and PyTorch eager (Hugging Face's rotate_half with precomputed cos/sin, and
Meta Llama's complex multiply), then alibi_bias and rel_bias (T5)
materialization against a fill of the same bytes and PyTorch eager.

One thread for every contender. Before anything runs, malloc is told to
keep freed large blocks (posenc.retain_freed_large_buffers), for posenc,
numpy and torch alike: no contender pays first-touch page faults for a
result buffer the previous call freed.

Usage: bench/rope_bias.py [--repeat 9] [--quick]
Prints two tables and writes bench/results/rope_bias.json."""

import argparse
import math
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import results_file  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BUILD = os.environ.get("POSENC_BUILD_DIR", os.path.join(ROOT, "build"))
sys.path.insert(0, os.path.join(BUILD, "python_packages"))
import posenc  # noqa: E402

try:
    import torch

    torch.set_num_threads(1)
except ImportError:  # the tables then show posenc and the limits only
    torch = None

BASE = 10000.0
ROPE_SHAPES = [(1, 4096, 32, 128), (8, 1024, 32, 128), (1, 32768, 8, 64), (64, 1, 32, 128)]
BIAS_H, BIAS_S = 32, 2048
BUCKETS, MAX_DISTANCE = 32, 128


def median_ms(fn, repeat):
    times = []
    for _ in range(repeat + 1):
        t0 = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t0) * 1e3)
    return float(np.median(times[1:]))


def posenc_ms(module, name, args, repeat):
    """Median time of the compiled code alone (no argument/result copies)."""
    times = []
    out = None
    for _ in range(repeat + 1):
        out = module.call(name, *args)
        times.append(module.last_call_ms)
    return float(np.median(times[1:])), out


def copy_ms(nbytes, repeat):
    src = np.ones(nbytes, np.uint8)
    dst = np.zeros(nbytes, np.uint8)
    return median_ms(lambda: np.copyto(dst, src), repeat)


def fill_ms(nbytes, repeat):
    dst = np.zeros(nbytes // 4, np.float32)
    return median_ms(lambda: dst.fill(0.5), repeat)


def rope_positions(b, s):
    """Prefill: one row of positions; decode ([B, 1]): one position per
    sequence, as with a batch of caches of different lengths."""
    rng = np.random.default_rng(1)
    if s == 1:
        return rng.integers(0, 4096, size=(b, 1)).astype(np.int64)
    return np.arange(s, dtype=np.int64)


def rope_ir(shape, dtype, layout, pos_shape):
    t = f"tensor<{'x'.join(map(str, shape))}x{dtype}>"
    p = f"tensor<{'x'.join(map(str, pos_shape))}xi64>"
    return (f"func.func @rope(%x: {t}, %p: {p}) -> {t} {{\n"
            f"  %y = posenc.rope %x, %p layout {layout} : {t}, {p}\n"
            f"  return %y : {t}\n}}\n")


def torch_rope(x, pos, layout):
    """The PyTorch eager formulations, cos/sin (or cis) precomputed outside
    the timed call as the models cache them."""
    d = x.shape[-1]
    inv = 1.0 / (BASE ** (torch.arange(0, d, 2, dtype=torch.float32) / d))
    freqs = torch.from_numpy(pos).float()[..., None] * inv  # [S, D/2] or [B, 1, D/2]
    if layout == "half":
        emb = torch.cat((freqs, freqs), dim=-1)
        cos = emb.cos().to(x.dtype).unsqueeze(-2)  # broadcast over heads
        sin = emb.sin().to(x.dtype).unsqueeze(-2)

        def rotate_half(t):
            t1, t2 = t[..., : d // 2], t[..., d // 2:]
            return torch.cat((-t2, t1), dim=-1)

        return lambda: (x * cos) + (rotate_half(x) * sin)
    cis = torch.polar(torch.ones_like(freqs), freqs).unsqueeze(-2)

    def complex_mul():
        xc = torch.view_as_complex(x.float().reshape(*x.shape[:-1], -1, 2))
        return torch.view_as_real(xc * cis).flatten(3).type_as(x)

    return complex_mul


def to_torch(a, dtype):
    if dtype == "bf16":  # numpy has no bfloat16: same bits through int16
        return torch.from_numpy(a.view(np.int16)).view(torch.bfloat16)
    return torch.from_numpy(a)


def bench_rope(opts):
    rows = []
    header = (f"{'shape':<18} {'dtype':<5} {'layout':<11} {'posenc ms':>9} {'GB/s':>6} "
              f"{'% copy':>7} {'torch ms':>9} {'torch form':<12} {'speed-up':>8} {'max err':>8}")
    print(header)
    print("-" * len(header))
    shapes = ROPE_SHAPES[:1] + ROPE_SHAPES[3:] if opts.quick else ROPE_SHAPES
    for shape in shapes:
        b, s, h, d = shape
        nbytes32 = int(np.prod(shape)) * 4
        for dtype in ("f32", "bf16"):
            esize = 4 if dtype == "f32" else 2
            nbytes = nbytes32 // 4 * esize
            cp = copy_ms(nbytes, opts.repeat)
            rng = np.random.default_rng(0)
            x32 = rng.uniform(-1, 1, size=shape).astype(np.float32)
            x = x32 if dtype == "f32" else posenc.to_bf16(x32)
            xref = x32 if dtype == "f32" else posenc.from_bf16(x)
            pos = rope_positions(b, s)
            for layout in ("half", "interleaved"):
                m = posenc.compile(rope_ir(shape, dtype, layout, pos.shape))
                ms, y = posenc_ms(m, "rope", [x, pos], opts.repeat)
                y = y if dtype == "f32" else posenc.from_bf16(y)
                # Spot check against the float64 reference on a few heads.
                hs = slice(0, 2)
                want = posenc.reference.rope(xref[:, :, hs], pos, layout=layout)
                err = float(np.max(np.abs(y[:, :, hs] - want)))
                gbs = 2 * nbytes / ms / 1e6
                row = dict(shape=list(shape), dtype=dtype, layout=layout, posenc_ms=ms,
                           gb_per_s=gbs, copy_ms=cp, fraction_of_copy=cp / ms, max_abs_err=err)
                form = "rotate_half" if layout == "half" else "complex"
                if torch is not None:
                    fn = torch_rope(to_torch(x, dtype), pos, layout)
                    with torch.no_grad():
                        tms = median_ms(fn, opts.repeat)
                    row.update(torch_form=form, torch_ms=tms, speedup=tms / ms)
                rows.append(row)
                tcol = f"{row['torch_ms']:>9.2f}" if "torch_ms" in row else f"{'-':>9}"
                scol = f"{row['speedup']:>7.2f}x" if "speedup" in row else f"{'-':>8}"
                print(f"{'x'.join(map(str, shape)):<18} {dtype:<5} {layout:<11} {ms:>9.2f} "
                      f"{gbs:>6.1f} {100 * cp / ms:>6.0f}% {tcol} {form:<12} {scol} "
                      f"{err:>8.1e}", flush=True)
    return rows


def t5_buckets_torch(rel):
    """T5's _relative_position_bucket, unidirectional, as in transformers."""
    n = -torch.minimum(rel, torch.zeros_like(rel))
    max_exact = BUCKETS // 2
    large = max_exact + (torch.log(n.float() / max_exact) / math.log(MAX_DISTANCE / max_exact)
                         * (BUCKETS - max_exact)).to(torch.long)
    large = torch.minimum(large, torch.full_like(large, BUCKETS - 1))
    return torch.where(n < max_exact, n, large)


def bench_bias(opts):
    h, s = BIAS_H, BIAS_S
    nbytes = h * s * s * 4
    fl = fill_ms(nbytes, opts.repeat)
    pos = np.arange(s, dtype=np.int32)
    p = f"tensor<{s}xi32>"
    bt = f"tensor<{h}x{s}x{s}xf32>"
    table = np.random.default_rng(0).standard_normal((BUCKETS, h)).astype(np.float32)
    tt = f"tensor<{BUCKETS}x{h}xf32>"
    cases = {
        "alibi": (f"func.func @bias(%p: {p}) -> {bt} {{\n"
                  f"  %b = posenc.alibi_bias %p, %p mode causal {{num_heads = {h} : i64}} "
                  f": {p}, {p} -> {bt}\n  return %b : {bt}\n}}\n", [pos]),
        "t5": (f"func.func @bias(%t: {tt}, %p: {p}) -> {bt} {{\n"
               f"  %b = posenc.rel_bias %t, %p, %p kind t5 {{num_buckets = {BUCKETS} : i64, "
               f"max_distance = {MAX_DISTANCE} : i64, bidirectional = false}} "
               f": {tt}, {p}, {p} -> {bt}\n  return %b : {bt}\n}}\n", [table, pos]),
    }
    header = (f"{'bias':<6} {'shape':<12} {'posenc ms':>9} {'GB/s':>6} {'% fill':>7} "
              f"{'torch ms':>9} {'speed-up':>8} {'max err':>8}")
    print(header)
    print("-" * len(header))
    rows = []
    for kind, (ir, args) in cases.items():
        m = posenc.compile(ir)
        ms, out = posenc_ms(m, "bias", args, opts.repeat)
        row = dict(bias=kind, shape=[h, s, s], posenc_ms=ms, gb_per_s=nbytes / ms / 1e6,
                   fill_ms=fl, fraction_of_fill=fl / ms)
        if torch is not None:
            tp = torch.from_numpy(pos).long()
            if kind == "alibi":
                # BLOOM's slope rule (build_alibi_tensor) times k − q,
                # materialized as the [H, Sq, Sk] bias attention adds.
                n = 2 ** math.floor(math.log2(h))
                slopes = torch.tensor([2.0 ** (-8.0 * i / n) for i in range(1, n + 1)])

                def fn():
                    rel = (tp[None, :] - tp[:, None]).float()
                    return slopes[:, None, None] * rel[None]
            else:
                tt_ = torch.from_numpy(table)

                # T5's compute_bias: buckets, embedding lookup, permute to
                # [H, Sq, Sk] (made contiguous, as the score addition reads it).
                def fn():
                    buckets = t5_buckets_torch(tp[None, :] - tp[:, None])
                    return tt_[buckets].permute(2, 0, 1).contiguous()

            with torch.no_grad():
                tms = median_ms(fn, opts.repeat)
                ref_t = fn().numpy()
            err = float(np.max(np.abs(out - ref_t)))
            row.update(torch_ms=tms, speedup=tms / ms, max_abs_diff_vs_torch=err)
        else:
            err = float("nan")
        rows.append(row)
        tcol = f"{row['torch_ms']:>9.1f}" if "torch_ms" in row else f"{'-':>9}"
        scol = f"{row['speedup']:>7.2f}x" if "speedup" in row else f"{'-':>8}"
        print(f"{kind:<6} {'x'.join(map(str, (h, s, s))):<12} {ms:>9.1f} "
              f"{row['gb_per_s']:>6.1f} {100 * fl / ms:>6.0f}% {tcol} {scol} {err:>8.1e}",
              flush=True)
    return rows, fl


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeat", type=int, default=9)
    ap.add_argument("--quick", action="store_true", help="first and decode rope shapes only")
    opts = ap.parse_args()
    retained = posenc.retain_freed_large_buffers()
    print(f"malloc keeps freed large blocks: {retained}; torch: "
          f"{torch.__version__ + ', 1 thread' if torch else 'not installed'}")
    cp = copy_ms(64 << 20, opts.repeat)
    fl = fill_ms(64 << 20, opts.repeat)
    print(f"copy bandwidth (64 MiB, read + write): {2 * 64 * 2**20 / cp / 1e6:.1f} GB/s; "
          f"fill bandwidth (64 MiB write): {64 * 2**20 / fl / 1e6:.1f} GB/s")
    print("\nrope: GB/s counts x read + y written; % copy = copy time of the same bytes / "
          "posenc time; speed-up = torch / posenc; max err vs float64 reference")
    rope = bench_rope(opts)
    print(f"\nbias materialization, f32: % fill = fill time of the same bytes / posenc time; "
          f"max err = |posenc - torch|")
    bias, bias_fill = bench_bias(opts)
    result = dict(copy_gb_per_s=2 * 64 * 2**20 / cp / 1e6, fill_gb_per_s=64 * 2**20 / fl / 1e6,
                  malloc_retains_large_blocks=retained,
                  torch=(torch.__version__ if torch else None), rope=rope, bias=bias)
    results_file.write("rope_bias", result)
    return 0


if __name__ == "__main__":
    sys.exit(main())

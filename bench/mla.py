#!/usr/bin/env python3
"""DeepSeek-V3 multi-head latent attention on the CPU: naive (decompress
K/V per head) vs absorbed (MQA over the latent cache), same run.

Decode: one query token against contexts of 1K/4K/16K tokens; prefill:
512 tokens. 16 heads, qk_nope 128, qk_rope 64, v 128, kv_lora_rank 512,
f32. Prints a table and writes bench/results/mla.json.

Usage: bench/mla.py [--contexts 1024,4096,16384] [--repeat 3]"""

import argparse
import json
import os
import sys

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(os.environ.get("POSENC_BUILD_DIR", os.path.join(ROOT, "build")),
                                "python_packages"))
import posenc  # noqa: E402

H, DN, DR, DV, C = 16, 128, 64, 128, 512


def ir(sq, sk):
    t = lambda *s: "tensor<" + "x".join(map(str, s)) + "xf32>"  # noqa: E731
    types = [t(1, sq, H, DN), t(1, sq, H, DR), t(1, sk, C), t(1, sk, DR), t(H, DN, C), t(H, DV, C)]
    args = ", ".join(f"%a{i}: {ty}" for i, ty in enumerate(types))
    rt = t(1, sq, H, DV)
    return (f"func.func @mla({args}) -> {rt} {{\n"
            f"  %o = posenc.mla_absorb %a0, %a1, %a2, %a3, %a4, %a5 causal : "
            f"{', '.join(types)} -> {rt}\n  return %o : {rt}\n}}\n")


def measure(sq, sk, mode, args, repeat):
    m = posenc.compile(ir(sq, sk), pipeline=f"posenc-lower-to-cpu{{mla={mode}}}")
    out = m.mla(*args)  # warm-up
    times = []
    for _ in range(repeat):
        m.mla(*args)
        times.append(m.last_call_ms)
    return float(np.median(times)), out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--contexts", default="1024,4096,16384")
    ap.add_argument("--prefill", type=int, default=512)
    ap.add_argument("--repeat", type=int, default=3)
    opts = ap.parse_args()
    rng = np.random.default_rng(0)
    rows = []
    cases = [("decode", 1, int(s)) for s in opts.contexts.split(",")]
    cases.append(("prefill", opts.prefill, opts.prefill))
    naive_kv = H * (DN + DR + DV)
    absorbed_kv = C + DR
    print(f"{'case':<8} {'Sq':>5} {'context':>8} {'naive ms':>10} {'absorbed ms':>12} "
          f"{'speed-up':>9} {'KV elems/token naive':>21} {'absorbed':>9} {'max rel diff':>13}")
    for kind, sq, sk in cases:
        args = [rng.standard_normal(s).astype(np.float32) * sc for s, sc in [
            ((1, sq, H, DN), 1), ((1, sq, H, DR), 1), ((1, sk, C), 1), ((1, sk, DR), 1),
            ((H, DN, C), 0.05), ((H, DV, C), 0.05)]]
        naive_ms, naive_out = measure(sq, sk, "naive", args, opts.repeat)
        abs_ms, abs_out = measure(sq, sk, "absorbed", args, opts.repeat)
        diff = float(np.max(np.abs(naive_out - abs_out)) / np.max(np.abs(naive_out)))
        row = dict(case=kind, sq=sq, context=sk, naive_ms=naive_ms, absorbed_ms=abs_ms,
                   speedup=naive_ms / abs_ms, kv_elements_per_token_naive=naive_kv,
                   kv_elements_per_token_absorbed=absorbed_kv,
                   kv_bytes_read_naive=naive_kv * 4 * sk, kv_bytes_read_absorbed=absorbed_kv * 4 * sk,
                   max_rel_diff=diff)
        rows.append(row)
        print(f"{kind:<8} {sq:>5} {sk:>8} {naive_ms:>10.2f} {abs_ms:>12.2f} {naive_ms / abs_ms:>8.1f}x "
              f"{naive_kv:>21} {absorbed_kv:>9} {diff:>13.2e}")
    os.makedirs(os.path.join(ROOT, "bench", "results"), exist_ok=True)
    path = os.path.join(ROOT, "bench", "results", "mla.json")
    with open(path, "w") as f:
        json.dump({"heads": H, "dims": dict(qk_nope=DN, qk_rope=DR, v=DV, kv_lora_rank=C),
                   "rows": rows}, f, indent=2)
    print(f"wrote {os.path.relpath(path, ROOT)}")


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""The main job: compile every example model layer with posenc-lower-to-cpu,
run it on random inputs and check it against posenc.reference.

Prints one table: example, position encoding, what was lowered, compile
time, median run time, max relative error (vs float64)."""

import math
import os
import re
import sys
import time

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BUILD = os.environ.get("POSENC_BUILD_DIR", os.path.join(ROOT, "build"))
sys.path.insert(0, os.path.join(BUILD, "python_packages"))

import posenc  # noqa: E402
from posenc import reference as ref  # noqa: E402

LLAMA3 = {"kind": "llama3", "factor": 8.0, "low_freq_factor": 1.0,
          "high_freq_factor": 4.0, "original": 8192}
DSV3_YARN = {"kind": "yarn", "factor": 40.0, "original": 4096, "mscale": 1.0,
             "mscale_all_dim": 1.0}


def llama3(a):
    q, k, v, pos = a
    qr = ref.rope(q, pos, base=500000.0, scaling=LLAMA3)
    kr = ref.rope(k, pos, base=500000.0, scaling=LLAMA3)
    return ref.attention(qr, kr, v, causal=True)


def bloom(a):
    q, k, v, pos = a
    return ref.attention(q, k, v, bias=ref.alibi_bias(pos, pos, 16), causal=True)


def t5(a):
    q, k, v, table, pos = a
    bias = ref.rel_bias(table, pos, pos, "t5", 32, 128)
    return ref.attention(q, k, v, bias=bias, scale=1.0)


def deepseek_prefill(a):
    qn, qp, ckv, kp, wuk, wuv, pos = a
    qr = ref.rope(qp, pos, layout="interleaved", scaling=DSV3_YARN)
    kr = ref.rope(kp, pos, layout="interleaved", scaling=DSV3_YARN)[:, :, 0, :]
    return ref.mla_absorb(qn, qr, ckv, kr, wuk, wuv, scale=0.13523378, causal=True)


def deepseek_decode(a):
    qn, qp, ckv, kr, wuk, wuv, qpos = a
    qr = ref.rope(qp, qpos, layout="interleaved", scaling=DSV3_YARN)
    return ref.mla_absorb(qn, qr, ckv, kr, wuk, wuv, scale=0.13523378, causal=True)


# (file, function, position encoding, reference)
EXAMPLES = [
    ("llama3_attention", "llama3_attention", "RoPE llama3 x8, GQA 32/8", llama3),
    ("bloom_alibi_attention", "bloom_alibi_attention", "ALiBi, 16 heads", bloom),
    ("t5_encoder_attention", "t5_encoder_attention", "T5 buckets 32/128", t5),
    ("deepseek_v3_mla", "prefill", "RoPE yarn x40 + MLA (naive)", deepseek_prefill),
    ("deepseek_v3_mla", "decode", "RoPE yarn x40 + MLA (absorbed)", deepseek_decode),
]


def inputs_for(sig, rng):
    out = []
    for shape, elem in sig["inputs"]:
        if elem.startswith("i"):
            n = shape[-1]
            # A single position is a decode step after a 63-token prefix.
            pos = np.arange(n) if n > 1 else np.array([63])
            out.append(pos.astype(np.int32 if elem == "i32" else np.int64))
        else:
            scale = 0.1 if len(shape) == 3 and shape[0] == 16 else 1.0  # MLA weights
            out.append((rng.standard_normal(shape) * scale).astype(np.float32))
    return out


def main():
    rng = np.random.default_rng(int.from_bytes(os.urandom(4), "little"))
    header = (f"{'example':<26} {'position encoding':<31} {'posenc ops':<22} "
              f"{'compile ms':>10} {'run ms':>8} {'max rel err':>12}")
    print(header)
    print("-" * len(header))
    worst = 0.0
    for name, fn, pe, reference in EXAMPLES:
        src = open(os.path.join(ROOT, "examples", name + ".mlir")).read()
        body = src[src.index(f"func.func @{fn}("):]
        body = body[: body.find("\nfunc.func", 1) if "\nfunc.func" in body else None]
        ops = sorted(set(re.findall(r"= (posenc\.[a-z_]+)", body)))
        t0 = time.perf_counter()
        module = posenc.compile(src)
        compile_ms = (time.perf_counter() - t0) * 1e3
        args = inputs_for(module.signature(fn), rng)
        times = []
        for _ in range(3):
            t0 = time.perf_counter()
            out = module.call(fn, *args)
            times.append((time.perf_counter() - t0) * 1e3)
        expected = reference(args)
        err = float(np.max(np.abs(out - expected)) / np.max(np.abs(expected)))
        worst = max(worst, err)
        lowered = ", ".join(o.split(".")[1] for o in ops)
        label = name if fn == name else f"{name}@{fn}"
        print(f"{label:<26} {pe:<31} {lowered:<22} {compile_ms:>10.1f} "
              f"{sorted(times)[1]:>8.1f} {err:>12.2e}")
    if worst > 1e-4:
        print(f"FAILED: max relative error {worst:.3g} > 1e-4")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

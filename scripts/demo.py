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


def deepseek(a):
    qn, qp, ckv, kp, wuk, wuv, pos = a
    qr = ref.rope(qp, pos, layout="interleaved", scaling=DSV3_YARN)
    kr = ref.rope(kp, pos, layout="interleaved", scaling=DSV3_YARN)[:, :, 0, :]
    return ref.mla_absorb(qn, qr, ckv, kr, wuk, wuv, scale=0.13523378, causal=True)


EXAMPLES = [
    ("llama3_attention", "RoPE llama3 x8, GQA 32/8", llama3),
    ("bloom_alibi_attention", "ALiBi, 16 heads", bloom),
    ("t5_encoder_attention", "T5 buckets 32/128", t5),
    ("deepseek_v3_mla", "RoPE yarn x40 + MLA", deepseek),
]


def inputs_for(sig, rng):
    out = []
    for shape, elem in sig["inputs"]:
        if elem.startswith("i"):
            out.append(np.arange(shape[-1], dtype=np.int32 if elem == "i32" else np.int64))
        else:
            scale = 0.1 if len(shape) == 3 and shape[0] == 16 else 1.0  # MLA weights
            out.append((rng.standard_normal(shape) * scale).astype(np.float32))
    return out


def main():
    rng = np.random.default_rng(int.from_bytes(os.urandom(4), "little"))
    header = f"{'example':<24} {'position encoding':<26} {'lowered':<34} {'compile ms':>10} {'run ms':>8} {'max rel err':>12}"
    print(header)
    print("-" * len(header))
    worst = 0.0
    for name, pe, reference in EXAMPLES:
        src = open(os.path.join(ROOT, "examples", name + ".mlir")).read()
        ops = sorted(set(re.findall(r"= (posenc\.[a-z_]+)", src)))
        t0 = time.perf_counter()
        module = posenc.compile(src)
        compile_ms = (time.perf_counter() - t0) * 1e3
        fn = module.functions[0]
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
        print(f"{name:<24} {pe:<26} {lowered:<34} {compile_ms:>10.1f} "
              f"{sorted(times)[1]:>8.1f} {err:>12.2e}")
    if worst > 1e-4:
        print(f"FAILED: max relative error {worst:.3g} > 1e-4")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

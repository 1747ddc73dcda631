#!/usr/bin/env python3
"""The main job: compile every example model layer with posenc-lower-to-cpu,
run it on random inputs and check it against posenc.reference.

The model layers come from published Hugging Face configs through
posenc.models (examples/models.json lists them and their cuts); four
hand-written examples follow. Prints one table: model, position encoding,
the posenc passes that changed the IR, compile time, median run time, max
relative error (vs float64)."""

import json
import os
import subprocess
import sys
import time

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BUILD = os.environ.get("POSENC_BUILD_DIR", os.path.join(ROOT, "build"))
sys.path.insert(0, os.path.join(BUILD, "python_packages"))

import posenc  # noqa: E402
from posenc import reference as ref  # noqa: E402

sys.path.insert(0, os.path.join(ROOT, "scripts"))
import gen_examples  # noqa: E402

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


def passes_fired(path):
    """The posenc passes of posenc-lower-to-cpu that change this file's IR
    (each run alone on the parsed input, through posenc-opt)."""
    opt = os.path.join(BUILD, "bin", "posenc-opt")

    def run(*flags):
        return subprocess.run([opt, path, *flags], capture_output=True, text=True,
                              check=True).stdout

    plain = run()
    fired = []
    for p in ("posenc-fold-constants", "posenc-fuse-bias-into-attention"):
        if run(f"--{p}") != plain:
            fired.append(p.removeprefix("posenc-"))
    mla = run("--posenc-decompose-mla")
    if mla != plain:
        # auto picks per op: say which form(s) this file got.
        forms = [m for m in ("naive", "absorbed")
                 if mla == run(f"--posenc-decompose-mla=mode={m}")]
        fired.append("decompose-mla(" + (forms[0] if forms else "naive+absorbed") + ")")
    return ", ".join(fired) or "-"


def measure(path, fn, args, reference):
    src = open(path).read()
    t0 = time.perf_counter()
    module = posenc.compile(src)
    compile_ms = (time.perf_counter() - t0) * 1e3
    args = args(module) if callable(args) else args
    times = []
    for _ in range(3):
        out = module.call(fn, *args)
        times.append(module.last_call_ms)
    expected = reference(args)
    err = float(np.max(np.abs(out - expected)) / np.max(np.abs(expected)))
    return compile_ms, sorted(times)[1], err


def main():
    rng = np.random.default_rng(int.from_bytes(os.urandom(4), "little"))
    header = (f"{'model':<30} {'position encoding':<38} {'passes fired':<34} "
              f"{'compile ms':>10} {'run ms':>8} {'max rel err':>11}")
    print(header)
    print("-" * len(header))
    worst = 0.0

    def row(label, pe, path, fn, args, reference):
        nonlocal worst
        compile_ms, run_ms, err = measure(path, fn, args, reference)
        worst = max(worst, err)
        print(f"{label:<30} {pe:<38} {passes_fired(path):<34} {compile_ms:>10.1f} "
              f"{run_ms:>8.1f} {err:>11.2e}", flush=True)

    for entry in gen_examples.manifest():
        layer = gen_examples.build(entry)
        path = os.path.join(ROOT, "examples", entry["name"] + ".mlir")
        if open(path).read() != gen_examples.text(entry, layer):
            print(f"{path} is stale: run scripts/gen_examples.py")
            return 1
        args = layer.random_inputs(rng, start=entry.get("start", 0))
        row(entry["name"], layer.pe, path, layer.entry, args, layer.reference)
    for name, fn, pe, reference in EXAMPLES:
        path = os.path.join(ROOT, "examples", name + ".mlir")
        label = name if fn == name else f"{name}@{fn}"
        row(label, pe, path, fn, lambda m, fn=fn: inputs_for(m.signature(fn), rng), reference)
    if worst > 1e-4:
        print(f"FAILED: max relative error {worst:.3g} > 1e-4")
        return 1
    print(f"all examples within 1e-4 of float64 (worst {worst:.2e})")
    return 0


if __name__ == "__main__":
    sys.exit(main())

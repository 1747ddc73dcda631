#!/usr/bin/env python3
"""The main job: compile every example model layer with posenc-lower-to-cpu,
run it on random inputs and check it against posenc.reference.

The model layers come from published Hugging Face configs through
posenc.models (examples/models.json lists them and their cuts); four
hand-written examples follow. Prints one table: model, position encoding,
the posenc passes that changed the IR, compile time, median run time, max
relative error (vs float64).

Then whole trained checkpoints: the llama2.c models in ../shared/models
(or $POSENC_MODELS_DIR) with their reference outputs, and any checkpoint
given as --checkpoint PATH [--tokenizer F] [--prompt TEXT]: compile time,
generated text, tok/s, and for the shared ones whether the greedy ids are
identical to the reference implementation's."""

import argparse

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


MODELS = os.environ.get("POSENC_MODELS_DIR", os.path.join(ROOT, "..", "shared", "models"))


def checkpoint_row(path, tokenizer, prompt, prompt_ids, steps, expected=None, text=None):
    """Compiles the checkpoint, generates greedily, prints one block; returns
    False when the ids (or text) differ from `expected`."""
    from posenc import decoder

    start = time.perf_counter()
    model = decoder.load(path, tokenizer)
    compile_s = time.perf_counter() - start
    tok = model.tokenizer
    ids = list(prompt_ids) if prompt_ids else (tok.encode(prompt) if tok else [1])
    start = time.perf_counter()
    gen = model.generate(ids, steps)
    first = next(gen, None)
    mid = time.perf_counter()
    out = ids + ([] if first is None else [first]) + list(gen)
    end = time.perf_counter()
    decoded = len(out) - len(ids) - 1
    shown = tok.decode(out) if tok else " ".join(map(str, out))
    if len(shown) > 160:
        shown = shown[:157] + "..."
    verdict = ""
    ok = True
    if expected is not None:
        ok = out == expected and (text is None or tok.decode(out) == text)
        verdict = ("ids identical to the reference" if ok else
                   "DIFFERENT from the reference")
    c = model.config
    print(f"{os.path.basename(path)}: dim {c.dim}, {c.n_layers} layers, {c.n_heads}/"
          f"{c.n_kv_heads} heads, vocab {c.vocab_size}; compiled in {compile_s:.1f} s")
    print(f"  {shown!r}")
    print(f"  {len(ids)} prompt tokens ({len(ids) / (mid - start):.0f} tok/s), "
          f"{len(out) - len(ids)} generated ({decoded / (end - mid) if decoded > 0 else 0:.0f} "
          f"tok/s decode){'; ' + verdict if verdict else ''}", flush=True)
    return ok


def checkpoints(args):
    ok = True
    print()
    print("Whole trained checkpoints (greedy generation)")
    ref_file = os.path.join(MODELS, "reference.json")
    if os.path.exists(ref_file):
        with open(ref_file) as f:
            cases = json.load(f)
        for name, case in cases.items():
            tok = case.get("tokenizer")
            ok &= checkpoint_row(os.path.join(MODELS, case["model"]),
                                 tok and os.path.join(MODELS, tok), case.get("prompt", ""),
                                 case.get("prompt_ids"), case["steps"], case["ids"],
                                 case.get("text"))
    elif not args.checkpoint:
        print(f"  (no shared checkpoints in {MODELS}; set POSENC_MODELS_DIR or pass "
              f"--checkpoint PATH)")
    if args.checkpoint:
        checkpoint_row(args.checkpoint, args.tokenizer, args.prompt, None, args.steps)
    if not ok:
        print("FAILED: a checkpoint's greedy ids differ from the reference")
    return ok


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--checkpoint", help="a llama2.c checkpoint to compile and run")
    ap.add_argument("--tokenizer", help="its tokenizer.bin")
    ap.add_argument("--prompt", default="", help="prompt text (needs --tokenizer)")
    ap.add_argument("-n", "--steps", type=int, default=128, help="positions to run")
    opts = ap.parse_args()
    rng = np.random.default_rng(int.from_bytes(os.urandom(4), "little"))
    header = (f"{'model':<26} {'position encoding':<62} {'passes fired':<34} "
              f"{'compile ms':>10} {'run ms':>8} {'max rel err':>11}")
    print(header)
    print("-" * len(header))
    worst = 0.0

    def row(label, pe, path, fn, args, reference):
        nonlocal worst
        compile_ms, run_ms, err = measure(path, fn, args, reference)
        worst = max(worst, err)
        print(f"{label:<26} {pe:<62} {passes_fired(path):<34} {compile_ms:>10.1f} "
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
    return 0 if checkpoints(opts) else 1


if __name__ == "__main__":
    sys.exit(main())

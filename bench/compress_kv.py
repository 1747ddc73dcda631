#!/usr/bin/env python3
"""Low-rank KV-cache compression on the shared trained checkpoints: cache
size against quality, and decode speed at the longest context.

For each llama2.c checkpoint in ../shared/models (or $POSENC_MODELS_DIR)
and each compression (posenc.compress_kv: joint / separate factors of
[W_k | W_v], or decoupled: rotated keys kept, values compressed; by rank R
or retained energy E), one row:

  cache       floats per token cached (all layers) and % of the original
              2·kv_dim·layers (energy: layers are padded to the largest rank)
  max dlogit  teacher-forced over every reference sequence (the reference
              ids as input): the largest |logit − uncompressed logit| at
              any position, and relative to the largest |logit|
  top-1       % of generated positions (after the prompt) whose argmax is
              the reference's next id
  greedy      greedy generation from each reference prompt: tokens equal
              to the reference continuation before the first difference,
              summed over the sequences, / their total
  decode ms   one decode step at the end of the longest context the model
              allows (its seq_len): the prefix prefilled, then --steps
              decode steps timed; min and median per token over --repeat
              runs, and the speed-up over the uncompressed model measured
              in the same run (1.00 = as fast)

All on one thread (the compiled code's default; OPENBLAS/OMP/MKL threads
pinned to 1). Writes bench/results/compress_kv.json.
"""

import os

for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_var] = "1"

import argparse  # noqa: E402
import json  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402

import numpy as np  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import results_file  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BUILD = os.environ.get("POSENC_BUILD_DIR", os.path.join(ROOT, "build"))
sys.path.insert(0, os.path.join(BUILD, "python_packages"))
from posenc import decoder  # noqa: E402

MODELS = os.environ.get("POSENC_MODELS_DIR", os.path.join(ROOT, "..", "shared", "models"))

SPECS = ["rank=64", "rank=48", "rank=32", "rank=16", "rank=8",
         "energy=0.999", "energy=0.99", "energy=0.9",
         "rank=64,factor=separate", "rank=32,factor=separate", "rank=16,factor=separate",
         "rank=32,rotary=decoupled", "rank=16,rotary=decoupled", "rank=8,rotary=decoupled"]
QUICK = ["rank=64", "rank=32", "energy=0.99", "rank=32,factor=separate",
         "rank=16,rotary=decoupled"]


def sequences(model_file):
    with open(os.path.join(MODELS, "reference.json")) as f:
        ref = json.load(f)
    out = []
    for case in ref.values():
        if case["model"] != model_file:
            continue
        n = case.get("prompt_tokens") or case.get("prompt_ids")
        n = n if isinstance(n, int) else len(n)
        out.append((case["ids"], n))
    return out


def quality(model, base_logits, seqs):
    worst = scale = 0.0
    agree = total = greedy = greedy_total = 0
    for (ids, prompt), base in zip(seqs, base_logits):
        logits = model.prefill(ids[:-1])
        worst = max(worst, float(np.abs(logits - base).max()))
        scale = max(scale, float(np.abs(base).max()))
        # Positions whose next id the model chose (not the prompt's).
        pred = np.argmax(logits, axis=1)[prompt - 1:]
        agree += int(np.sum(pred == np.asarray(ids[prompt:])))
        total += len(ids) - prompt
        got = list(model.generate(ids[:prompt], len(ids)))
        want = ids[prompt:]
        same = next((i for i, (a, b) in enumerate(zip(got, want)) if a != b),
                    min(len(got), len(want)))
        greedy += same
        greedy_total += len(want)
    return worst, worst / scale, agree / total, greedy, greedy_total


def decode_ms(model, steps, repeat):
    """min and median ms per decode step at the end of the cache."""
    prefix = [1] + [(7 * i) % (model.config.vocab_size - 2) + 2
                    for i in range(model.max_seq - steps - 1)]
    times = []
    for _ in range(repeat):
        model.prefill(prefix)
        t = time.perf_counter()
        for i in range(steps):
            model.decode(2 + i)
        times.append((time.perf_counter() - t) * 1e3 / steps)
    return min(times), float(np.median(times))


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="fewer compressions")
    ap.add_argument("--specs", help="';'-separated compress_kv specs instead of the list")
    ap.add_argument("--steps", type=int, default=16, help="decode steps timed per run")
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args()
    specs = args.specs.split(";") if args.specs else QUICK if args.quick else SPECS
    rows = []
    for model_file in ("stories260K.bin", "aidreams260K.bin"):
        path = os.path.join(MODELS, model_file)
        if not os.path.exists(path):
            print(f"{path}: missing, skipped")
            continue
        seqs = sequences(model_file)
        base = decoder.load(path)
        base_logits = [base.prefill(ids[:-1]) for ids, _ in seqs]
        c = base.config
        print(f"\n{model_file}: dim {c.dim}, {c.n_layers} layers, {c.n_heads} heads, "
              f"{c.n_kv_heads} kv heads of {c.head_dim}; cache 2·kv_dim·layers = "
              f"{2 * c.kv_dim * c.n_layers} floats per token; decode at position "
              f"{base.max_seq - 1} (seq_len {base.max_seq})")
        head = (f"{'compression':<26} {'ranks':>10} {'cache':>9} {'%':>5} {'max dlogit':>11} "
                f"{'rel':>8} {'top-1':>6} {'greedy':>9} {'ms min':>7} {'ms med':>7} "
                f"{'vs base':>7}")
        print(head)
        print("-" * len(head))
        b_min, b_med = decode_ms(base, args.steps, args.repeat)
        row = {"model": model_file, "spec": "none", "cache_floats": 2 * c.kv_dim * c.n_layers,
               "decode_ms_min": b_min, "decode_ms_median": b_med}
        q = quality(base, base_logits, seqs)
        print(f"{'none':<26} {'-':>10} {row['cache_floats']:>9} {100:>5.0f} {q[0]:>11.2e} "
              f"{q[1]:>8.1e} {100 * q[2]:>5.1f}% {q[3]:>4}/{q[4]:<4} {b_min:>7.3f} "
              f"{b_med:>7.3f} {1:>7.2f}")
        rows.append(dict(row, max_dlogit=q[0], rel_dlogit=q[1], top1=q[2], greedy=q[3],
                         greedy_total=q[4]))
        for spec in specs:
            model = decoder.load(path, compress_kv=spec)
            rep = model.compression
            ranks = sorted({"/".join(map(str, r)) for r in rep["layer_ranks"]})
            ranks = ranks[0] if len(ranks) == 1 else f"{ranks[0]}..{ranks[-1]}"
            q = quality(model, base_logits, seqs)
            m_min, m_med = decode_ms(model, args.steps, args.repeat)
            frac = rep["cache_floats_per_token"] / rep["original_floats_per_token"]
            print(f"{spec:<26} {ranks:>10} {rep['cache_floats_per_token']:>9} "
                  f"{100 * frac:>5.0f} {q[0]:>11.2e} {q[1]:>8.1e} {100 * q[2]:>5.1f}% "
                  f"{q[3]:>4}/{q[4]:<4} {m_min:>7.3f} {m_med:>7.3f} {b_med / m_med:>7.2f}")
            rows.append({"model": model_file, "spec": spec, "kind": rep["kind"],
                         "layer_ranks": rep["layer_ranks"],
                         "dropped_energy": rep["layer_dropped_energy"],
                         "cache_floats": rep["cache_floats_per_token"], "cache_fraction": frac,
                         "max_dlogit": q[0],
                         "rel_dlogit": q[1], "top1": q[2], "greedy": q[3],
                         "greedy_total": q[4], "decode_ms_min": m_min,
                         "decode_ms_median": m_med, "speedup_median": b_med / m_med})
    results_file.write("compress_kv", rows)


if __name__ == "__main__":
    main()

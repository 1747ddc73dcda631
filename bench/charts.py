#!/usr/bin/env python3
"""Charts of bench/results.json's ratio tables: one PNG per table in
bench/charts/ (ignored by git), each a bar chart of the ratios the tables
print (posenc against the peer measured in the same run; 1.0 marked).
bench/run runs it after merging the results. Needs matplotlib (Debian's
python3-matplotlib).

  bench/charts.py [RESULTS.json] [-o DIR]

Tables that a run did not produce are skipped; the script says which
charts it wrote."""

import argparse
import json
import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def rope_bias(r):
    rows = r.get("rope") or []
    yield ("rope_vs_copy", "rope: copy time of the same bytes / posenc time",
           [f"{'x'.join(map(str, x['shape']))} {x['dtype']} {x['layout']}" for x in rows],
           {"fraction of copy": [x["fraction_of_copy"] for x in rows],
            "speed-up over torch": [x.get("speedup", 0.0) for x in rows]}, "ratio")
    bias = r.get("bias") or []
    yield ("bias_vs_fill", "bias materialization: fill time / posenc time, torch / posenc",
           [x["bias"] for x in bias],
           {"fraction of fill": [x["fraction_of_fill"] for x in bias],
            "speed-up over torch": [x.get("speedup", 0.0) for x in bias]}, "ratio")


def attention(rows):
    labels = [f"{x['bias']} S={x['S']}" for x in rows]
    torch_ms = [x["torch"]["ms"] if isinstance(x.get("torch"), dict) and x["torch"].get("ms")
                else None for x in rows]
    yield ("attention", "causal prefill with a position bias (one thread)", labels,
           {"speed-up fused vs unfused": [x["unfused"]["ms"] / x["fused"]["ms"] for x in rows],
            "speed-up fused vs torch": [t / x["fused"]["ms"] if t else 0.0
                                        for t, x in zip(torch_ms, rows)],
            "fraction of FMA peak": [x["fraction_of_peak"] for x in rows]}, "ratio")


def mla(r):
    rows = r.get("rows") or []
    yield ("mla", "DeepSeek MLA: naive / absorbed time",
           [f"{x['case']} Sq={x['sq']} ctx={x['context']}" for x in rows],
           {"absorbed speed-up": [x["speedup"] for x in rows]}, "ratio")


def decode(rows):
    rows = [x for x in rows if "fraction_of_read" in x]
    yield ("decode", "one GQA decode step: GB/s of K+V / GB/s of a read of the same bytes",
           [f"{x['kv']} Sk={x['Sk']} {x['impl']}" for x in rows],
           {"fraction of read bandwidth": [x["fraction_of_read"] for x in rows]}, "ratio")


def generate(rows):
    dec = [x for x in rows if x.get("table") == "decode"]
    torch = {x["checkpoint"]: x["median_ms_per_token"] for x in dec if x["impl"] == "torch eager"}
    dec = [x for x in dec if x["impl"] != "torch eager" and x["checkpoint"] in torch]
    yield ("generate_decode", "whole-model decode: torch eager ms/token / contender ms/token",
           [f"{x['checkpoint']} {x['impl']}" for x in dec],
           {"speed-up over torch eager": [torch[x["checkpoint"]] / x["median_ms_per_token"]
                                          for x in dec]}, "ratio")
    proj = [x for x in rows if x.get("table") == "projection"]
    yield ("generate_projection", "projections y = x·Wᵀ: numpy/OpenBLAS time / posenc time",
           [f"M={x['M']} d={x['d']} n={x['n']}" for x in proj],
           {"fraction of OpenBLAS": [x["fraction_of_numpy"] for x in proj]}, "ratio")


def compress_kv(rows):
    rows = [x for x in rows if x["spec"] != "none"]
    yield ("compress_kv", "KV-cache compression: cache fraction and top-1 agreement",
           [f"{x['model'].split('260K')[0]} {x['spec']}" for x in rows],
           {"cache / original": [x["cache_floats"] / x.get("original", 1) if "original" in x
                                 else 0 for x in rows],
            "top-1 agreement": [x["top1"] for x in rows]}, "ratio")


def call_overhead(rows):
    yield ("call_overhead", "a Python call beyond its compiled code (median ms)",
           [f"W {x['mib']} MiB" for x in rows],
           {"call overhead": [x["overhead_ms"][1] for x in rows],
            "a copy of W": [x["copy_ms"][1] for x in rows]}, "ms")


def raise_(rows):
    by = {(x["S"], x["impl"]): x["median_ms"] for x in rows}
    sizes = sorted({x["S"] for x in rows})
    yield ("raise", "importer attention: unraised time / time (higher is faster)",
           [f"S {s}" for s in sizes],
           {impl: [by[s, "unraised"] / by[s, impl] if (s, impl) in by else 0 for s in sizes]
            for impl in ("raised", "torch")}, "ratio")


TABLES = {"rope_bias": rope_bias, "attention": attention, "mla": mla, "decode": decode,
          "generate": generate, "compress_kv": compress_kv, "raise": raise_,
          "call_overhead": call_overhead}


def draw(out_dir, name, title, labels, series, unit, machine):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    n = len(labels)
    fig, ax = plt.subplots(figsize=(max(6.0, 0.55 * n * len(series) + 3), 4.5))
    width = 0.8 / len(series)
    x = np.arange(n)
    for i, (label, values) in enumerate(series.items()):
        ax.bar(x + (i - (len(series) - 1) / 2) * width, values, width, label=label)
    if unit == "ratio":
        ax.axhline(1.0, color="black", lw=0.8)
    ax.set_xticks(x)
    ax.set_xticklabels(labels, rotation=35, ha="right", fontsize=8)
    ax.set_ylabel(unit)
    ax.set_title(f"{title}\n{machine}", fontsize=9)
    ax.legend(fontsize=8)
    fig.tight_layout()
    path = os.path.join(out_dir, name + ".png")
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("results", nargs="?", default=os.path.join(ROOT, "bench", "results.json"))
    ap.add_argument("-o", "--output", default=os.path.join(ROOT, "bench", "charts"))
    args = ap.parse_args(argv)
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        sys.exit("bench/charts.py needs matplotlib: apt-get install python3-matplotlib")
    with open(args.results, encoding="utf-8") as f:
        results = json.load(f)
    os.makedirs(args.output, exist_ok=True)
    machine = f"{results.get('machine', '?')}, {results.get('cpus', '?')} CPUs, {results.get('date', '')}"
    written = []
    for key, tables in TABLES.items():
        if key not in results:
            continue
        for name, title, labels, series, unit in tables(results[key]):
            if labels:
                written.append(draw(args.output, name, title, labels, series, unit, machine))
    for path in written:
        print(f"wrote {os.path.relpath(path, ROOT) if path.startswith(ROOT) else path}")
    return written


if __name__ == "__main__":
    main()

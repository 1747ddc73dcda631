"""Pictures of what a model config's position encoding does.

    python -m posenc.plot CONFIG.json -o out.png [--layer 0 --layer 5]
        [--seq-len 64]

Reads a Hugging Face config.json the way posenc.models does (the layer is
built, so every field is checked), takes the position-encoding ops of the
built layer and draws what posenc computes for them:

- RoPE (and MLA's decoupled RoPE): the wavelength 2π/ω_i of each frequency
  pair, in positions (log scale), under the config's scaling against the
  same base unscaled, with the pre-training context `original` and the
  attention factor; ω comes from posenc.rope_frequencies (the compiler's
  own C++), so YaRN's ramp and correction range, Llama 3's bands,
  LongRoPE's factors and NTK's base show as the compiler applies them;
- ALiBi: the bias over (query, key) for the first and last heads, computed
  by the compiled posenc.alibi_bias;
- T5 buckets: the bucket posenc.rel_bias gives each (query, key);
- sinusoidal tables (Transformer-XL): the table over (position, dim).

Needs matplotlib (Debian's python3-matplotlib). `figure(config, ...)`
returns the matplotlib Figure for use from Python.
"""

import argparse
import json
import os
import re
import sys

import numpy as np

from . import compile as _compile
from . import models, rope_frequencies

_ROPE = re.compile(r"posenc\.rope \S+, \S+ layout (\w+)(?: \{(.*)\})? : tensor<([0-9x]+)x\w+>")
_ALIBI = re.compile(r"posenc\.alibi_bias \S+, \S+ mode (\w+) (\{.*?\}) : tensor<(\d+)xi64>, "
                    r"tensor<\d+xi64> -> tensor<(\d+)x")
_REL = re.compile(r"posenc\.rel_bias \S+, \S+, \S+ kind (\w+) (\{.*?\}) : tensor<(\d+)x(\d+)xf32>")
_SIN = re.compile(r"posenc\.sinusoidal \S+ layout (\w+)(?: convention (\w+))? (\{.*?\})")


def _attr(attrs, name):
    """The text of attribute `name` in an attribute dict (balanced <...>)."""
    m = re.search(rf"\b{name} = ", attrs or "")
    if not m:
        return None
    i, depth = m.end(), 0
    for j in range(i, len(attrs)):
        c = attrs[j]
        depth += c in "<[("
        depth -= c in ">])"
        if depth == 0 and c in ",}":
            return attrs[i:j].strip()
        if depth < 0:
            return attrs[i:j].strip()
    return attrs[i:].strip()


def _number(text):
    return float(text.split(":")[0]) if text is not None else None


def _layer(config, layer, seq_len):
    """The built layer. A GQA config's query heads are cut to one per kv
    head so that it builds fast: RoPE does not depend on the head count.
    ALiBi, T5 and MHA configs (no num_key_value_heads) keep theirs, since
    their slopes and tables are per head."""
    cfg = config.get("text_config", config)
    q, kv = cfg.get("num_attention_heads"), cfg.get("num_key_value_heads")
    cut = None
    if isinstance(q, int) and isinstance(kv, int) and 0 < kv < q:
        cut = {"num_attention_heads": kv}
    try:
        return models.attention_layer(config, seq_len=seq_len, layer=layer, cut=cut)
    except models.ConfigError:
        if cut is None:
            raise
        return models.attention_layer(config, seq_len=seq_len, layer=layer)


def _plot_rope(ax, m, label, seq_len_max, ratio_ax=None):
    layout, attrs, shape = m.group(1), m.group(2), m.group(3)
    head_dim = int(shape.split("x")[-1])
    base = _number(_attr(attrs, "base")) or 10000.0
    rotary = int(_number(_attr(attrs, "rotary_dim")) or head_dim)
    scaling = _attr(attrs, "scaling")
    given_factor = _number(_attr(attrs, "attention_factor"))
    original = None
    if scaling:
        o = re.search(r"original = (\d+)", scaling)
        original = int(o.group(1)) if o else None
        mp = re.search(r"max_positions = (\d+)", scaling)
        seq_len_max = int(mp.group(1)) if mp else seq_len_max
    pairs = np.arange(rotary // 2)
    plain, _ = rope_frequencies(head_dim, base, None, rotary_dim=rotary)
    ax.plot(pairs, 2 * np.pi / plain, "--", color="gray", label=f"unscaled (base {base:g})")
    kind = "none"
    factor = 1.0
    if scaling:
        kind = re.match(r"#posenc\.rope_scaling<(\w+)", scaling).group(1)
        omega, factor = rope_frequencies(head_dim, base, scaling, rotary_dim=rotary,
                                         seq_len=seq_len_max)
        ax.plot(pairs, 2 * np.pi / omega, color="C0", label=f"{kind} (at {seq_len_max} positions)")
        if ratio_ax is not None:
            ratio_ax.plot(pairs, plain / omega, color="C0")
            ratio_ax.set_yscale("log")
            ratio_ax.set_xlabel("frequency pair i")
            ratio_ax.set_ylabel("ω unscaled / ω scaled (interpolation)")
            ratio_ax.set_title(f"{label}: how much {kind} stretches each pair", fontsize=9)
            ratio_ax.axhline(1.0, color="gray", lw=0.8)
    if given_factor is not None:
        factor = given_factor
    if original:
        ax.axhline(original, color="C3", lw=0.8, label=f"original context {original}")
    ax.set_yscale("log")
    ax.set_xlabel("frequency pair i")
    ax.set_ylabel("wavelength 2π/ω_i (positions)")
    ax.set_title(f"{label}: RoPE {layout}, {rotary}/{head_dim} dims rotated, {kind}; "
                 f"attention factor {factor:.4g}", fontsize=9)
    ax.legend(fontsize=8)


def _run_bias(op_text, result_type, s):
    m = _compile(f"""func.func @f(%p: tensor<{s}xi64>) -> {result_type} {{
  %r = {op_text} : tensor<{s}xi64>, tensor<{s}xi64> -> {result_type}
  return %r : {result_type}
}}""")
    return m.f(np.arange(s, dtype=np.int64))


def _plot_alibi(axes, m, label, s):
    mode, attrs, heads = m.group(1), m.group(2), int(m.group(4))
    bias = _run_bias(f"posenc.alibi_bias %p, %p mode {mode} {attrs}", f"tensor<{heads}x{s}x{s}xf32>", s)
    for ax, h in zip(axes, (0, heads - 1)):
        im = ax.imshow(bias[h], cmap="viridis")
        ax.set_title(f"{label}: ALiBi ({mode}) head {h} of {heads}", fontsize=9)
        ax.set_xlabel("key position")
        ax.set_ylabel("query position")
        ax.figure.colorbar(im, ax=ax, shrink=0.8)


def _plot_rel(ax, m, label, s, curve_ax=None):
    kind, attrs, buckets = m.group(1), m.group(2), int(m.group(3))
    if curve_ax is not None:
        reach = int(_number(_attr(attrs, "max_distance")) or s) * 2
        curve = _compile(f"""func.func @f(%t: tensor<{buckets}x1xf32>, %q: tensor<1xi64>, %k: tensor<{2 * reach + 1}xi64>) -> tensor<1x1x{2 * reach + 1}xf32> {{
  %r = posenc.rel_bias %t, %q, %k kind {kind} {attrs} : tensor<{buckets}x1xf32>, tensor<1xi64>, tensor<{2 * reach + 1}xi64> -> tensor<1x1x{2 * reach + 1}xf32>
  return %r : tensor<1x1x{2 * reach + 1}xf32>
}}""")
        dist = np.arange(-reach, reach + 1)
        got = curve.f(np.arange(buckets, dtype=np.float32)[:, None], np.array([reach], np.int64),
                      dist.astype(np.int64) + reach)
        curve_ax.step(dist, got[0, 0], where="mid")
        curve_ax.set_xlabel("key - query (positions)")
        curve_ax.set_ylabel("bucket")
        curve_ax.set_title(f"{label}: {kind} buckets by distance (exact near, log-spaced far)",
                           fontsize=9)
    # A table whose row b is b: the result is each (query, key)'s bucket.
    mod = _compile(f"""func.func @f(%t: tensor<{buckets}x1xf32>, %p: tensor<{s}xi64>) -> tensor<1x{s}x{s}xf32> {{
  %r = posenc.rel_bias %t, %p, %p kind {kind} {attrs} : tensor<{buckets}x1xf32>, tensor<{s}xi64>, tensor<{s}xi64> -> tensor<1x{s}x{s}xf32>
  return %r : tensor<1x{s}x{s}xf32>
}}""")
    table = np.arange(buckets, dtype=np.float32)[:, None]
    im = ax.imshow(mod.f(table, np.arange(s, dtype=np.int64))[0], cmap="viridis")
    ax.set_title(f"{label}: {kind} bucket of (query, key), {buckets} buckets", fontsize=9)
    ax.set_xlabel("key position")
    ax.set_ylabel("query position")
    ax.figure.colorbar(im, ax=ax, shrink=0.8, label="bucket")


def _plot_sinusoidal(ax, m, label, s):
    layout, convention, attrs = m.group(1), m.group(2), m.group(3)
    dim = int(_number(_attr(attrs, "dim")))
    conv = f" convention {convention}" if convention else ""
    mod = _compile(f"""func.func @f(%p: tensor<{s}xi64>) -> tensor<{s}x{dim}xf32> {{
  %r = posenc.sinusoidal %p layout {layout}{conv} {attrs} : tensor<{s}xi64> -> tensor<{s}x{dim}xf32>
  return %r : tensor<{s}x{dim}xf32>
}}""")
    im = ax.imshow(mod.f(np.arange(s, dtype=np.int64)), aspect="auto", cmap="RdBu")
    ax.set_title(f"{label}: sinusoidal table ({layout}{conv}), D = {dim}", fontsize=9)
    ax.set_xlabel("dim")
    ax.set_ylabel("position")
    ax.figure.colorbar(im, ax=ax, shrink=0.8)


def figure(config, layers=(0,), seq_len=64, title=None):
    """A matplotlib Figure of what `config`'s position encoding does at
    each of `layers` (one row of panels per layer); seq_len: the positions
    the bias heatmaps show."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    if not isinstance(config, dict):
        raise models.ConfigError("config", f"must be a JSON object, got {type(config).__name__}")
    cfg = config.get("text_config", config)
    if not isinstance(cfg, dict):
        raise models.ConfigError("text_config", f"must be an object, got {cfg!r}")
    seq_len_max = cfg.get("max_position_embeddings")
    if not isinstance(seq_len_max, int) or isinstance(seq_len_max, bool) or \
            not 0 < seq_len_max < 2**31:
        seq_len_max = 4 * seq_len
    rows = []
    for layer in layers:
        built = _layer(config, layer, 8)
        rows.append((layer, built))
    fig, axes = plt.subplots(len(rows), 2, figsize=(12, 4.2 * len(rows)), squeeze=False)
    for (layer, built), (a0, a1) in zip(rows, axes):
        label = f"layer {layer}"
        ir = built.ir
        drawn = 0
        if (m := _ROPE.search(ir)):
            _plot_rope(a0, m, label, seq_len_max, ratio_ax=a1 if "scaling = " in m.group(0) else None)
            drawn = 2 if "scaling = " in m.group(0) else 1
        elif (m := _ALIBI.search(ir)):
            _plot_alibi((a0, a1), m, label, seq_len)
            drawn = 2
        elif (m := _REL.search(ir)):
            _plot_rel(a0, m, label, seq_len, curve_ax=a1)
            drawn = 2
        if drawn < 2 and (m := _SIN.search(ir)):
            _plot_sinusoidal(a1 if drawn else a0, m, label, seq_len)
            drawn += 1
        if drawn == 0:
            a0.text(0.5, 0.5, f"{label}: no position encoding (NoPE)", ha="center", va="center")
            a0.set_axis_off()
        for ax in (a0, a1)[drawn if drawn else 1:]:
            ax.set_axis_off()
    fig.suptitle(title or cfg.get("model_type", "model"))
    fig.tight_layout()
    return fig


def main(argv=None):
    ap = argparse.ArgumentParser(prog="python -m posenc.plot", description=__doc__.split("\n")[0])
    ap.add_argument("config", help="a Hugging Face config.json")
    ap.add_argument("-o", "--output", required=True, help="the image to write (.png, .svg, .pdf)")
    ap.add_argument("--layer", type=int, action="append",
                    help="a layer to draw (repeatable; default 0)")
    ap.add_argument("--seq-len", type=int, default=64, help="positions of the bias heatmaps")
    args = ap.parse_args(argv)
    if not 1 <= args.seq_len <= 4096:
        ap.error(f"--seq-len must be in [1, 4096], got {args.seq_len}")
    try:
        with open(args.config, encoding="utf-8") as f:
            config = json.load(f)
    except (OSError, ValueError) as e:
        ap.error(f"cannot read {args.config}: {e}")
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        sys.exit("posenc.plot needs matplotlib: apt-get install python3-matplotlib")
    # The output is checked before any work: its format and its directory.
    ext = os.path.splitext(args.output)[1].lstrip(".").lower()
    formats = plt.figure().canvas.get_supported_filetypes()
    plt.close("all")
    if ext not in formats:
        ap.error(f"-o {args.output}: the extension names the format, one of "
                 f"{', '.join(sorted(formats))}")
    out_dir = os.path.dirname(os.path.abspath(args.output))
    if os.path.isdir(args.output) or not os.path.isdir(out_dir) or \
            not os.access(out_dir, os.W_OK):
        ap.error(f"-o {args.output}: not a file in a writable directory")
    try:
        fig = figure(config, args.layer or [0], args.seq_len,
                     title=f"{args.config}: what posenc computes")
    except (models.ConfigError, ValueError, TypeError) as e:
        sys.exit(f"posenc.plot: {args.config}: {e}")
    fig.savefig(args.output, dpi=110)
    print(f"wrote {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Low-rank KV-cache compression of a whole decoder (posenc.decoder), by
the same truncated SVD as the posenc-compress-kv pass (posenc.low_rank).

    model = posenc.models.load("stories260K.bin", compress_kv="rank=32")
    model.compression        # per layer: ranks, dropped energy; cache widths

Per layer, the key and value projections k = x·W_kᵀ, v = x·W_vᵀ ([kv_dim, d]
as stored) are factored at load time:
- `factor=joint` (default): [W_k; W_v]ᵀ = A·B, truncated; the cache stores
  the latent c = x·A (R floats per token and layer instead of 2·kv_dim);
- `factor=separate`: W_k and W_v alone, ⌈R/2⌉ and ⌊R/2⌋ (or each by
  energy); the caches store c_k and c_v;
- `rotary=decoupled`: the rotated keys are cached as they are and only the
  values are compressed (rank R of W_v). With partial rotary (rotary_dim
  R_rot < head_dim, as GPT-NeoX, Phi or StableLM) only the rotated dims
  of the keys are cached; the others are position-independent and join
  the values in one latent (rank R of [W_k's non-rotary rows | W_v]), the
  layout DeepSeek-V2 trains with (decoupled RoPE, arXiv 2405.04434 §2.1.3).
Keys are rebuilt from the cached latent and rotated at their positions
(RoPE does not commute with the up-projection), values likewise, for the
attention of each step. The rank is `rank=R` or the smallest R keeping a
fraction `energy=E` of Σσ², chosen per layer; layers of lower rank are
padded with zero columns to the largest (exact: a zero column adds
nothing), so the cache width is the largest layer's.
"""

import dataclasses

import numpy as np

FACTORS = ("joint", "separate")
ROTARY = ("reconstruct", "decoupled")


def parse(spec):
    """{"rank": R} or {"energy": E}, plus "factor" and "rotary", from
    "rank=R", "energy=E[,factor=separate][,rotary=decoupled]" or such a
    dict. A ValueError names what is wrong."""
    if isinstance(spec, str):
        items = {}
        for part in filter(None, (p.strip() for p in spec.split(","))):
            key, sep, value = part.partition("=")
            if not sep or not value:
                raise ValueError(f"compress_kv: expected key=value, got {part!r} (e.g. "
                                 "'rank=16' or 'energy=0.99,factor=separate')")
            if key.strip() in items:
                raise ValueError(f"compress_kv: {key.strip()!r} is given twice")
            items[key.strip()] = value.strip()
        spec = items
    if not isinstance(spec, dict):
        raise ValueError(f"compress_kv must be a string such as 'rank=16' or a dict, got "
                         f"{spec!r}")
    unknown = sorted(set(spec) - {"rank", "energy", "factor", "rotary"})
    if unknown:
        raise ValueError(f"compress_kv: unknown key {unknown[0]!r}; known: rank, energy, "
                         "factor, rotary")
    if ("rank" in spec) == ("energy" in spec):
        raise ValueError("compress_kv: give exactly one of rank=R or energy=E")
    out = {"factor": spec.get("factor", "joint"), "rotary": spec.get("rotary", "reconstruct")}
    if out["factor"] not in FACTORS:
        raise ValueError(f"compress_kv: factor must be one of {', '.join(FACTORS)}, got "
                         f"{out['factor']!r}")
    if out["rotary"] not in ROTARY:
        raise ValueError(f"compress_kv: rotary must be one of {', '.join(ROTARY)}, got "
                         f"{out['rotary']!r}")
    if "rank" in spec:
        r = spec["rank"]
        try:
            r = int(r) if isinstance(r, str) or (isinstance(r, (int, np.integer))
                                                 and not isinstance(r, bool)) else None
        except ValueError:
            r = None
        if r is None or r < 1 or (out["factor"] == "separate" and r < 2):
            raise ValueError(f"compress_kv: rank must be an integer >= "
                             f"{2 if out['factor'] == 'separate' else 1}, got {spec['rank']!r}")
        out["rank"] = r
    else:
        e = spec["energy"]
        try:
            e = float(e) if not isinstance(e, bool) else None
        except (TypeError, ValueError):
            e = None
        if e is None or not 0 < e <= 1:
            raise ValueError(f"compress_kv: energy must be a number in (0, 1], got "
                             f"{spec['energy']!r}")
        out["energy"] = e
    return out


def _factor(w, rank, energy):
    """(down [d, R], up [R, n], dropped energy) of w [d, n] (float64)."""
    import posenc

    if rank is not None:
        down, up, s = posenc.low_rank(w, rank=rank)
    else:
        down, up, s = posenc.low_rank(w, energy=energy)
    r = down.shape[1]
    total = float(np.sum(s**2))
    return down, up, (total - float(np.sum(s[:r] ** 2))) / total if total else 0.0


def _pad(m, width, axis):
    """m with zero rows/columns appended along `axis` up to `width`."""
    pad = [(0, 0), (0, 0)]
    pad[axis] = (0, width - m.shape[axis])
    return np.pad(m, pad)


def compress(config, layers, spec):
    """(config with kv_compress set, layers with the factored weights,
    report) for a llama2c.Config and its per-layer weight dicts. `report`
    is a dict: spec, per-layer ranks and dropped energy, cache floats per
    token (all layers) before and after."""
    spec = parse(spec)
    c = config
    if c.mla:
        raise ValueError("compress_kv: the model already caches a latent (MLA)")
    if c.qkv_bias:
        raise ValueError("compress_kv: key/value projections with biases are not supported")
    if c.schemes and any(s.qk_norm for s in c.schemes):
        raise ValueError("compress_kv: QK-norm between the projection and RoPE is not "
                         "supported")
    kv = c.kv_dim
    decoupled = spec["rotary"] == "decoupled"
    # Rebuilt keys are rotated with the frequencies of the current step;
    # where those depend on the length (dynamic NTK, LongRoPE's short/long
    # switch) the uncompressed cache keeps each key as its own step rotated
    # it, so the two would differ. Decoupled caches the rotated keys.
    scalings = [c.rope_scaling] + [s.scaling for s in c.schemes or () if s.rope]
    dynamic = sorted({sc["kind"] for sc in scalings
                      if sc and sc.get("kind") in ("dynamic", "longrope")})
    if dynamic and not decoupled:
        raise ValueError(f"compress_kv: RoPE scaling {dynamic[0]!r} depends on the sequence "
                         "length, so keys rebuilt from the latent would be rotated unlike the "
                         "cached ones; use rotary=decoupled (rotated keys cached, values "
                         "compressed)")
    kind = "decoupled" if decoupled else spec["factor"]
    rank, energy = spec.get("rank"), spec.get("energy")
    hd, hkv = c.head_dim, c.n_kv_heads
    rot = c.rotary_dim if decoupled and c.rotary_dim and c.rotary_dim < hd else None
    # Rows of W_k (columns of wk below) each kv head rotates and does not.
    rows = np.arange(kv).reshape(hkv, hd)
    kept, nope = (rows[:, :rot].ravel(), rows[:, rot:].ravel()) if rot else (None, None)
    per_layer = []
    for lw in layers:
        wk = np.asarray(lw["wk"], np.float64).T  # [d, kv]: k = x·wk
        wv = np.asarray(lw["wv"], np.float64).T
        if kind == "joint":
            down, up, drop = _factor(np.concatenate([wk, wv], axis=1), rank, energy)
            per_layer.append({"a": [down], "b": [up[:, :kv], up[:, kv:]], "ranks": [down.shape[1]],
                              "dropped": drop})
        elif kind == "separate":
            dk, uk, ek = _factor(wk, (rank + 1) // 2 if rank else None, energy)
            dv, uv, ev = _factor(wv, rank // 2 if rank else None, energy)
            ak, av = float(np.sum(wk**2)), float(np.sum(wv**2))
            per_layer.append({"a": [dk, dv], "b": [uk, uv], "ranks": [dk.shape[1], dv.shape[1]],
                              "dropped": (ek * ak + ev * av) / (ak + av) if ak + av else 0.0})
        elif rot:
            # Per kv head, dims >= R_rot are not rotated: they join v.
            down, up, drop = _factor(np.concatenate([wk[:, nope], wv], axis=1), rank, energy)
            n = len(nope)
            per_layer.append({"a": [down], "b": [up[:, n:], up[:, :n]],
                              "ranks": [down.shape[1]], "dropped": drop})
        else:
            dv, uv, ev = _factor(wv, rank, energy)
            per_layer.append({"a": [dv], "b": [uv], "ranks": [dv.shape[1]], "dropped": ev})
    widths = [max(p["ranks"][i] for p in per_layer) for i in range(len(per_layer[0]["ranks"]))]
    new_layers = []
    for lw, p in zip(layers, per_layer):
        out = {k: v for k, v in lw.items() if k not in ("wk", "wv")}
        f32 = lambda m: np.ascontiguousarray(m, dtype=np.float32)  # noqa: E731
        a = [f32(_pad(m, w, 1).T) for m, w in zip(p["a"], widths)]  # [R, d]
        if kind == "joint":
            out["kv_a"] = a[0]
            out["k_b"], out["v_b"] = (f32(_pad(m, widths[0], 0)) for m in p["b"])  # [R, kv]
        elif kind == "separate":
            out["k_a"], out["v_a"] = a
            out["k_b"], out["v_b"] = (f32(_pad(m, w, 0)) for m, w in zip(p["b"], widths))
        else:
            out["wk"] = f32(np.asarray(lw["wk"])[kept]) if rot else lw["wk"]
            out["v_a"] = a[0]
            out["v_b"] = f32(_pad(p["b"][0], widths[0], 0))
            if rot:
                out["k_b"] = f32(_pad(p["b"][1], widths[0], 0))  # [R, Hkv·(hd - R_rot)]
        new_layers.append(out)
    if kind == "joint":
        ranks = {"kv": widths[0]}
    elif kind == "separate":
        ranks = {"k": widths[0], "v": widths[1]}
    else:
        ranks = {"v": widths[0], "k_rot": rot}
    new_config = dataclasses.replace(c, kv_compress={"kind": kind, **ranks})
    per_token = {"joint": widths[0], "separate": sum(widths),
                 "decoupled": hkv * (rot or hd) + widths[0]}[kind]
    report = {"spec": spec, "kind": kind,
              "layer_ranks": [p["ranks"] for p in per_layer],
              "layer_dropped_energy": [p["dropped"] for p in per_layer],
              "cache_floats_per_token": per_token * c.n_layers,
              "original_floats_per_token": 2 * kv * c.n_layers}
    return new_config, new_layers, report


def weight_shapes(c):
    """{name: shape} of a compressed layer's new weights: the down
    projections *_a [R, d] as stored weights are ([out, in]), the up
    projections *_b [R, kv_dim] as they multiply the latent."""
    kc, kv, d = c.kv_compress, c.kv_dim, c.dim
    if kc["kind"] == "joint":
        r = kc["kv"]
        return {"kv_a": (r, d), "k_b": (r, kv), "v_b": (r, kv)}
    if kc["kind"] == "separate":
        return {"k_a": (kc["k"], d), "v_a": (kc["v"], d), "k_b": (kc["k"], kv),
                "v_b": (kc["v"], kv)}
    out = {"v_a": (kc["v"], d), "v_b": (kc["v"], kv)}
    if kc.get("k_rot"):
        hkv, rot = c.n_kv_heads, kc["k_rot"]
        out.update(wk=(hkv * rot, d), k_b=(kc["v"], hkv * (c.head_dim - rot)))
    return out


def cache_shapes(c, max_seq):
    """The caches of a compressed decoder: the latent(s) [L, max_seq, 1,
    R], after the rotated keys [L, max_seq, Hkv, hd] when decoupled
    ([L, max_seq, Hkv, R_rot] with partial rotary)."""
    kc, L = c.kv_compress, c.n_layers
    if kc["kind"] == "joint":
        return ((L, max_seq, 1, kc["kv"]),)
    if kc["kind"] == "separate":
        return ((L, max_seq, 1, kc["k"]), (L, max_seq, 1, kc["v"]))
    return ((L, max_seq, c.n_kv_heads, kc.get("k_rot") or c.head_dim), (L, max_seq, 1, kc["v"]))


def describe(report):
    """One line per model: the form, ranks and cache size."""
    ratio = report["cache_floats_per_token"] / report["original_floats_per_token"]
    ranks = sorted({tuple(r) for r in report["layer_ranks"]})
    return (f"KV cache compressed ({report['kind']}): layer ranks "
            f"{', '.join('/'.join(map(str, r)) for r in ranks)}; "
            f"{report['cache_floats_per_token']} floats per token instead of "
            f"{report['original_floats_per_token']} ({ratio:.0%}); dropped energy up to "
            f"{max(report['layer_dropped_energy']):.3g}"
            + ("; no smaller than the uncompressed cache for this model" if ratio >= 1 else ""))


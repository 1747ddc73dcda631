"""Float64 numpy reference of every posenc op.

Written from the semantics contract (the op descriptions, docs/reference), not
from the compiler: tests compare compiled code against these functions.
Layouts: q/k/v are [B, S, H, D]; positions are [S] or [B, S].

Rope scaling is a dict: {"kind": "none" | "linear" | "ntk" | "dynamic" |
"yarn" | "llama3" | "longrope", ...parameters as in #posenc.rope_scaling}.
"""

import math

import numpy as np

YARN_DEFAULTS = {
    "beta_fast": 32.0,
    "beta_slow": 1.0,
    "mscale": 1.0,
    "mscale_all_dim": 0.0,
    "truncate": True,
}


def _base_frequencies(base, rotary):
    i = np.arange(rotary // 2, dtype=np.float64)
    return base ** (-2.0 * i / rotary)


def _yarn_mscale(s, m):
    return 1.0 if s <= 1.0 else 0.1 * m * math.log(s) + 1.0


# The keys each RoPE scaling kind needs (YaRN's others have defaults).
SCALING_KEYS = {"none": (), "linear": ("factor",), "ntk": ("alpha",),
                "dynamic": ("factor", "original"), "yarn": ("factor", "original"),
                "llama3": ("factor", "original", "low_freq_factor", "high_freq_factor"),
                "longrope": ("original", "long_factor", "short_factor")}


def _scaling(scaling):
    """`scaling` as a dict with its kind and every key that kind needs; a
    ValueError names a missing kind or key."""
    sc = dict(scaling or {"kind": "none"})
    if "kind" not in sc:
        raise ValueError(f"rope scaling {sc!r} has no 'kind' (one of {', '.join(SCALING_KEYS)})")
    if sc["kind"] not in SCALING_KEYS:
        raise ValueError(f"unknown rope scaling kind {sc['kind']!r}")
    missing = [k for k in SCALING_KEYS[sc["kind"]] if k not in sc]
    if missing:
        raise ValueError(f"rope scaling {sc['kind']!r} needs {', '.join(map(repr, missing))}; "
                         f"given: {', '.join(map(repr, sorted(sc)))}")
    return sc


def rope_frequencies(base, rotary, scaling=None, positions=None):
    """ω_i for i < R/2 under `scaling`; `positions` feed dynamic/longrope."""
    sc = _scaling(scaling)
    kind = sc["kind"]
    r = float(rotary)
    if kind == "none":
        return _base_frequencies(base, rotary)
    if kind == "linear":
        return _base_frequencies(base, rotary) / sc["factor"]
    if kind == "ntk":
        return _base_frequencies(base * sc["alpha"] ** (r / (r - 2.0)), rotary)
    if kind == "dynamic":
        f, l0 = sc["factor"], sc["original"]
        s = max(int(np.max(positions)) + 1, l0)
        new_base = base * ((f * s / l0) - (f - 1.0)) ** (r / (r - 2.0))
        return _base_frequencies(new_base, rotary)
    if kind == "yarn":
        p = dict(YARN_DEFAULTS, **sc)
        f, l0 = p["factor"], p["original"]
        omega = _base_frequencies(base, rotary)

        def cd(rot):
            return r * math.log(l0 / (2.0 * math.pi * rot)) / (2.0 * math.log(base))

        low, high = cd(p["beta_fast"]), cd(p["beta_slow"])
        if p["truncate"]:
            low, high = math.floor(low), math.ceil(high)
        low = min(max(low, 0.0), r - 1.0)
        high = min(max(high, 0.0), r - 1.0)
        if low == high:
            high += 0.001
        i = np.arange(rotary // 2, dtype=np.float64)
        ramp = np.clip((i - low) / (high - low), 0.0, 1.0)
        return omega * (ramp / f + 1.0 - ramp)
    if kind == "llama3":
        f, l0 = sc["factor"], sc["original"]
        low, high = sc["low_freq_factor"], sc["high_freq_factor"]
        omega = _base_frequencies(base, rotary)
        out = np.empty_like(omega)
        for i, w in enumerate(omega):
            lam = 2.0 * math.pi / w
            if lam < l0 / high:
                out[i] = w
            elif lam > l0 / low:
                out[i] = w / f
            elif high == low:  # no band to blend across
                out[i] = w
            else:
                t = (l0 / lam - low) / (high - low)
                out[i] = (1.0 - t) * w / f + t * w
        return out
    if kind == "longrope":
        l0 = sc["original"]
        use_long = int(np.max(positions)) + 1 > l0
        ext = np.asarray(sc["long_factor"] if use_long else sc["short_factor"], np.float64)
        i = np.arange(rotary // 2, dtype=np.float64)
        return 1.0 / (ext * base ** (2.0 * i / r))
    raise ValueError(f"unknown rope scaling kind {kind!r}")


def rope_attention_factor(scaling=None):
    """Default attention factor implied by the scaling."""
    sc = _scaling(scaling)
    if sc["kind"] == "yarn":
        p = dict(YARN_DEFAULTS, **sc)
        f, m, m_all = p["factor"], p["mscale"], p["mscale_all_dim"]
        if m != 0 and m_all != 0:
            return _yarn_mscale(f, m) / _yarn_mscale(f, m_all)
        return _yarn_mscale(f, 1.0)
    if sc["kind"] == "longrope":
        l0 = sc["original"]
        if "max_positions" not in sc:
            raise ValueError("rope scaling 'longrope' needs 'max_positions' for its attention "
                             "factor (or pass attention_factor)")
        s = sc["max_positions"] / l0
        return 1.0 if s <= 1.0 else math.sqrt(1.0 + math.log(s) / math.log(l0))
    return 1.0


def mrope_pair_axes(section, interleaved=False):
    """The positions axis each frequency pair reads under M-RoPE: sections
    in order (Qwen2-VL), or Qwen3-VL's interleaving of 3 axes."""
    pairs = int(sum(section))
    if not interleaved:
        return np.repeat(np.arange(len(section)), section)
    axes = np.zeros(pairs, np.int64)
    for axis in (1, 2):
        axes[axis:3 * section[axis]:3] = axis
    return axes


def rope(x, pos, base=10000.0, rotary_dim=None, layout="half", scaling=None,
         attention_factor=None, mrope_section=None, mrope_interleaved=False):
    """posenc.rope in float64. x: [B, S, H, D]; pos: [S] or [B, S], or with
    mrope_section [A, S] or [A, B, S] (one position per axis)."""
    x = np.asarray(x, np.float64)
    pos = np.asarray(pos)
    d = x.shape[3]
    r = d if rotary_dim is None else rotary_dim
    if r == 0:
        return x.copy()
    a = rope_attention_factor(scaling) if attention_factor is None else attention_factor
    omega = rope_frequencies(base, r, scaling, pos)
    p = pos.astype(np.float64)
    if mrope_section is not None:  # [A, B?, S] -> per pair [B, S, R/2]
        if p.ndim == 2:
            p = np.broadcast_to(p[:, None, :], (p.shape[0], x.shape[0], p.shape[1]))
        p = np.moveaxis(p[mrope_pair_axes(mrope_section, mrope_interleaved)], 0, -1)
        theta = p[:, :, None, :] * omega[None, None, None, :]
    else:
        if p.ndim == 1:
            p = np.broadcast_to(p, (x.shape[0], p.shape[0]))
        theta = p[:, :, None, None] * omega[None, None, None, :]  # [B, S, 1, R/2]
    cos, sin = np.cos(theta), np.sin(theta)
    y = x.copy()
    if layout == "half":
        u, v = x[..., : r // 2], x[..., r // 2 : r]
        y[..., : r // 2] = a * (u * cos - v * sin)
        y[..., r // 2 : r] = a * (v * cos + u * sin)
    elif layout == "interleaved":
        u, v = x[..., 0:r:2], x[..., 1:r:2]
        y[..., 0:r:2] = a * (u * cos - v * sin)
        y[..., 1:r:2] = a * (v * cos + u * sin)
    else:
        raise ValueError(f"unknown layout {layout!r}")
    return y


def sinusoidal(pos, dim, base=10000.0, layout="interleaved", convention="vaswani",
               padding_idx=None):
    """posenc.sinusoidal: [..., S] -> [..., S, D] under `convention`
    ("vaswani", "fairseq", "marian"; the op description's formulas); rows
    whose position equals `padding_idx` are zero."""
    p = np.asarray(pos).astype(np.float64)[..., None]
    out = np.zeros(p.shape[:-1] + (dim,), np.float64)
    if convention == "vaswani":
        theta = p * _base_frequencies(base, dim)
        if layout == "interleaved":
            out[..., 0::2] = np.sin(theta)
            out[..., 1::2] = np.cos(theta)
        else:
            out[..., : dim // 2] = np.sin(theta)
            out[..., dim // 2 : 2 * (dim // 2)] = np.cos(theta)
    elif convention == "fairseq":
        h = dim // 2
        theta = p * base ** (-np.arange(h) / (h - 1))
        out[..., :h] = np.sin(theta)
        out[..., h : 2 * h] = np.cos(theta)
    elif convention == "marian":
        j = np.arange(dim)
        theta = p * base ** (-2.0 * (j // 2) / dim)
        n_sin = (dim + 1) // 2
        out[..., :n_sin] = np.sin(theta[..., 0::2])
        out[..., n_sin:] = np.cos(theta[..., 1::2])
    else:
        raise ValueError(f"unknown convention {convention!r}")
    if padding_idx is not None:
        out[np.asarray(pos) == padding_idx] = 0.0
    return out


def alibi_slopes(num_heads, max_bias=8.0):
    """The ALiBi paper / BLOOM rule."""
    p = 2 ** int(math.floor(math.log2(num_heads)))
    slopes = [2.0 ** (-max_bias * h / p) for h in range(1, p + 1)]
    slopes += [2.0 ** (-max_bias * (2 * k - 1) / (2 * p)) for k in range(1, num_heads - p + 1)]
    return np.array(slopes, np.float64)


def alibi_slopes_mpt(num_heads, max_bias=8.0):
    """MPT's formulation (interleaves the slopes of 2^ceil(log2 n) heads)."""
    n2 = 2 ** int(math.ceil(math.log2(num_heads)))
    m = np.arange(1, n2 + 1, dtype=np.float64) * (max_bias / n2)
    slopes = 1.0 / np.power(2.0, m)
    if n2 != num_heads:
        slopes = np.concatenate([slopes[1::2], slopes[::2]])[:num_heads]
    return slopes


def _relative(q_pos, k_pos):
    """rel[..., i, j] = k_j − q_i with a batch dim when either is [B, S]."""
    q = np.asarray(q_pos).astype(np.int64)
    k = np.asarray(k_pos).astype(np.int64)
    return k[..., None, :] - q[..., :, None]


def _with_heads(per_head):
    """[..., Sq, Sk, H] -> [..., H, Sq, Sk]."""
    return np.moveaxis(per_head, -1, -3)


def alibi_bias(q_pos, k_pos, num_heads, max_bias=8.0, mode="causal", slopes=None):
    m = alibi_slopes(num_heads, max_bias) if slopes is None else np.asarray(slopes, np.float64)
    # Distances saturate at ±(2^31 − 1): an f32 bias has 24 bits anyway.
    lim = 2**31 - 1
    rel = np.clip(_relative(q_pos, k_pos), -lim, lim).astype(np.float64)[..., None]
    if mode == "causal":
        out = m * rel
    else:
        out = -m * np.abs(rel)
    return _with_heads(out)


def t5_bucket(rel, num_buckets, max_distance, bidirectional=True):
    """T5's relative_position_bucket, evaluated elementwise in float64."""
    # Distances >= max_distance share the last bucket; clamping first keeps
    # |rel| defined for rel = -2^63.
    rel = np.clip(np.asarray(rel, np.int64), -max_distance, max_distance)
    n_b = num_buckets
    if bidirectional:
        n_b //= 2
        b0 = np.where(rel > 0, n_b, 0)
        n = np.abs(rel)
    else:
        b0 = np.zeros_like(rel)
        n = np.maximum(-rel, 0)
    e = n_b // 2
    out = np.empty_like(rel)
    flat_n, flat_out = n.reshape(-1), out.reshape(-1)
    for idx, v in enumerate(flat_n):
        if v < e:
            flat_out[idx] = v
        else:
            large = e + math.log(v / e) / math.log(max_distance / e) * (n_b - e)
            flat_out[idx] = min(int(math.floor(large)), n_b - 1)
    return b0 + out


def rel_bias(table, q_pos, k_pos, kind="t5", num_buckets=None, max_distance=128,
             bidirectional=True):
    table = np.asarray(table, np.float64)
    rel = _relative(q_pos, k_pos)
    if kind == "t5":
        bucket = t5_bucket(rel, num_buckets, max_distance, bidirectional)
    elif bidirectional:
        bucket = np.clip(rel, -max_distance, max_distance) + max_distance
    else:
        bucket = -np.clip(rel, -max_distance, 0)  # clamp first: −(−2^63) wraps
    return _with_heads(table[bucket])


def rel_key_bias(q, emb, q_pos, k_pos, max_distance):
    """bias[b, h, i, j] = q[b, i, h, :] · emb[clamp(k_j − q_i, −M, M) + M]
    (emb [2M+1, D], or [2M+1, H, D]: a table per head)."""
    q = np.asarray(q, np.float64)
    emb = np.asarray(emb, np.float64)
    idx = np.clip(_relative(q_pos, k_pos), -max_distance, max_distance) + max_distance
    qe = np.einsum("bihd,rd->bhir" if emb.ndim == 2 else "bihd,rhd->bhir", q, emb)
    b, h, sq, _ = qe.shape
    idx = np.broadcast_to(idx, (b, sq, idx.shape[-1]))
    return np.take_along_axis(qe, np.broadcast_to(idx[:, None], (b, h) + idx.shape[1:]), axis=-1)


def attention(q, k, v, bias=None, scale=None, causal=False, score_mod=None, window=None,
              softcap=None, sinks=None, chunk=None):
    """posenc.attention; score_mod(s, b, h, i, j) works on broadcast arrays.
    `window` (with causal): query i sees only the `window` keys
    i + Sk - Sq - window < j <= i + Sk - Sq (sliding-window attention).
    `softcap` c: the scaled product becomes c·tanh(s / c) before the bias.
    `chunk` C (with causal): query i sees only the keys of its own chunk,
    j >= floor((i + Sk - Sq) / C)·C (Llama 4's chunked attention).
    `sinks` [Hq]: a logit per query head in every row's softmax denominator
    with no value (gpt-oss's attention sinks).

    The mask rule: a key whose final score is -inf is masked (a -inf bias
    masks whatever q.k is) and contributes nothing to its row, so a NaN or
    Inf in its k or v stays out; a row that sees no key is 0.
    """
    q, k, v = (np.asarray(t, np.float64) for t in (q, k, v))
    b, sq, hq, dk = q.shape
    sk, hkv = k.shape[1], k.shape[2]
    g = hq // hkv
    k = np.repeat(k, g, axis=2)
    v = np.repeat(v, g, axis=2)
    with np.errstate(invalid="ignore", over="ignore"):
        s = np.einsum("bihd,bjhd->bhij", q, k) * (1.0 / math.sqrt(dk) if scale is None else scale)
        if softcap is not None:
            s = softcap * np.tanh(s / softcap)
        if bias is not None:
            bias = np.asarray(bias, np.float64)
            s = np.where(np.isneginf(bias), -np.inf, s + bias)
        if score_mod is not None:
            bi, hi, ii, ji = np.meshgrid(np.arange(b), np.arange(hq), np.arange(sq),
                                         np.arange(sk), indexing="ij")
            s = score_mod(s, bi, hi, ii, ji)
        if causal:
            i = np.arange(sq)[:, None]
            j = np.arange(sk)[None, :]
            s = np.where(j > i + sk - sq, -np.inf, s)
            if window is not None:
                s = np.where(j <= i + sk - sq - window, -np.inf, s)
            if chunk is not None:
                s = np.where(j < (i + sk - sq) // chunk * chunk, -np.inf, s)
        s = np.broadcast_to(s, (b, hq, sq, sk))
        masked = np.isneginf(s)
        # No keys (Sk = 0): every row sees none (max of nothing is -inf).
        m = np.max(s, axis=-1, keepdims=True, initial=-np.inf)
        if sinks is not None:
            sink = np.asarray(sinks, np.float64)[None, :, None, None]
            m = np.maximum(m, sink)
        m = np.where(np.isneginf(m), 0.0, m)
        p = np.where(masked, 0.0, np.exp(s - m))
        l = np.sum(p, axis=-1, keepdims=True)
        if sinks is not None:
            l = l + np.exp(sink - m)
        finite = np.isfinite(v)
        o = np.einsum("bhij,bjhd->bihd", p, np.where(finite, v, 0.0))
        # Non-finite values reach only the rows whose weight for them is
        # unmasked (0 * Inf would be NaN in a plain product).
        for bb, j, h, d in zip(*np.nonzero(~finite)):
            seen = ~masked[bb, h, :, j]
            o[bb, seen, h, d] += p[bb, h, seen, j] * v[bb, j, h, d]
        l = np.moveaxis(l, 1, 2)  # [B, Sq, H, 1]
        return np.where(l == 0, 0.0, o / np.where(l == 0, 1.0, l))


def mla_absorb(q_nope, q_pe, c_kv, k_pe, w_uk, w_uv, scale=None, causal=False):
    """Naive form: decompress per-head keys and values from the latent."""
    q_nope, q_pe, c_kv, k_pe, w_uk, w_uv = (
        np.asarray(t, np.float64) for t in (q_nope, q_pe, c_kv, k_pe, w_uk, w_uv))
    dn, dr = q_nope.shape[3], q_pe.shape[3]
    k_nope = np.einsum("hnc,bjc->bjhn", w_uk, c_kv)
    v = np.einsum("hec,bjc->bjhe", w_uv, c_kv)
    h = q_nope.shape[2]
    k_rope = np.broadcast_to(k_pe[:, :, None, :], k_pe.shape[:2] + (h, dr))
    q = np.concatenate([q_nope, q_pe], axis=-1)
    k = np.concatenate([k_nope, k_rope], axis=-1)
    return attention(q, k, v, scale=1.0 / math.sqrt(dn + dr) if scale is None else scale,
                     causal=causal)


def mla_absorb_latent(q_nope, q_pe, c_kv, k_pe, w_uk, w_uv, scale=None, causal=False):
    """Absorbed form: MQA over [c_kv | k_pe] with values c_kv."""
    q_nope, q_pe, c_kv, k_pe, w_uk, w_uv = (
        np.asarray(t, np.float64) for t in (q_nope, q_pe, c_kv, k_pe, w_uk, w_uv))
    dn, dr = q_nope.shape[3], q_pe.shape[3]
    q_lat = np.einsum("bihn,hnc->bihc", q_nope, w_uk)
    q = np.concatenate([q_lat, q_pe], axis=-1)
    k = np.concatenate([c_kv, k_pe], axis=-1)[:, :, None, :]
    o_lat = attention(q, k, c_kv[:, :, None, :],
                      scale=1.0 / math.sqrt(dn + dr) if scale is None else scale,
                      causal=causal)
    return np.einsum("bihc,hec->bihe", o_lat, w_uv)


def decoder_forward(config, weights, ids):
    """Logits [len(ids), vocab] of a Llama-architecture decoder on `ids` at
    positions 0..len(ids)-1, in float64, written from the architecture
    (llama2.c run.c's forward pass; Hugging Face LlamaForCausalLM and
    Qwen2ForCausalLM compute the same). `config`: dim, n_heads, n_kv_heads,
    head_dim, n_layers, norm_eps and the RoPE fields (rope_theta,
    rope_layout, rope_scaling, attention_factor, rotary_dim); `weights`:
    token_embedding, rms_final, wcls and `layers`, a list of {rms_att, wq,
    wk, wv, wo, rms_ffn, w1, w2, w3[, bq, bk, bv]} with [out, in]
    matrices."""
    s = len(ids)
    h, hkv, hd = config.n_heads, config.n_kv_heads, config.head_dim
    f64 = lambda a: np.asarray(a, np.float64)  # noqa: E731
    pos = np.arange(s)

    layer_norm = getattr(config, "norm", "rms") == "layer"

    def rmsnorm(x, g, b=None):
        if layer_norm:  # torch.nn.LayerNorm
            c = x - x.mean(axis=-1, keepdims=True)
            return c / np.sqrt(np.mean(c * c, axis=-1, keepdims=True) + config.norm_eps) \
                * f64(g) + f64(b)
        return f64(g) * (x / np.sqrt(np.mean(x * x, axis=-1, keepdims=True) + config.norm_eps))

    schemes = getattr(config, "schemes", None)

    alibi = getattr(config, "alibi", None)

    def rotate(x, heads, sch):
        x = x.reshape(1, s, heads, hd)
        if alibi:
            return x[0]
        if sch is None:
            return rope(x, pos, base=config.rope_theta, rotary_dim=config.rotary_dim,
                        layout=config.rope_layout, scaling=config.rope_scaling,
                        attention_factor=config.attention_factor)[0]
        if not sch.rope:
            return x[0]
        sc = dict(sch.scaling) if sch.scaling else None
        factor = sc.pop("attention_factor", None) if sc else None
        return rope(x, pos, base=sch.base, rotary_dim=config.rotary_dim, layout=sch.layout,
                    scaling=sc, attention_factor=factor)[0]

    def head_norm(x, heads, g, eps):  # QK-norm: RMSNorm over each head
        x = x.reshape(s, heads, hd)
        return f64(g) * (x / np.sqrt(np.mean(x * x, axis=-1, keepdims=True) + eps))

    def linear(x, lw, w, b=None):
        y = x @ f64(lw[w]).T
        return y + f64(lw[b]) if b and b in lw else y

    x = f64(weights["token_embedding"])[np.asarray(ids)]
    if getattr(config, "embed_scale", None):
        x = x * config.embed_scale
    if getattr(config, "embed_norm", False):  # BLOOM's LayerNorm on the embeddings
        x = rmsnorm(x, weights["emb_norm"], weights["emb_norm_b"])
    causal = np.triu(np.ones((s, s), bool), 1)
    windows = getattr(config, "sliding_window", None)
    erf = np.vectorize(math.erf)
    mlp = getattr(config, "mlp", "swiglu")
    sandwich = getattr(config, "sandwich_norm", False)
    for layer, lw in enumerate(weights["layers"]):
        sch = schemes[layer] if schemes else None
        window = sch.window if sch else windows[layer] if isinstance(windows, list) \
            else windows
        mask = causal.copy()
        if window:  # key j outside query i's last `window` positions
            mask |= np.tril(np.ones((s, s), bool), -window)
        xb = rmsnorm(x, lw["rms_att"], lw.get("rms_att_b"))
        mla = getattr(config, "mla", None)
        if mla:  # DeepSeek-V2's multi-head latent attention, decompressed
            dn, dr, dv, lat = mla["dn"], mla["dr"], mla["dv"], mla["kv_rank"]
            qin = rmsnorm(linear(xb, lw, "wq_a"), lw["q_norm_a"]) if mla["q_rank"] else xb
            qh = linear(qin, lw, "wq").reshape(s, h, dn + dr)
            kva = linear(xb, lw, "wkv_a")
            ckv = rmsnorm(kva[:, :lat], lw["kv_norm"])
            kvb = (ckv @ f64(lw["wkv_b"]).T).reshape(s, h, dn + dv)
            kw = dict(base=config.rope_theta, layout=config.rope_layout,
                      scaling=config.rope_scaling, attention_factor=config.attention_factor)
            q_pe = rope(qh[None, :, :, dn:], pos, **kw)[0]
            k_pe = rope(kva[None, :, None, lat:], pos, **kw)[0]
            k = np.concatenate([kvb[..., :dn], np.broadcast_to(k_pe, (s, h, dr))], -1)
            qq = np.concatenate([qh[..., :dn], q_pe], -1)
            scores = np.einsum("ihd,jhd->hij", qq, k) * mla["scale"]
            scores[:, causal] = -np.inf
            p = np.exp(scores - scores.max(axis=-1, keepdims=True))
            p /= p.sum(axis=-1, keepdims=True)
            att = np.einsum("hij,jhd->ihd", p, kvb[..., dn:]).reshape(s, h * dv)
            x_att = x + linear(att, lw, "wo")
            xb = rmsnorm(x_att, lw["rms_ffn"])
        else:
            q, k = linear(xb, lw, "wq", "bq"), linear(xb, lw, "wk", "bk")
            if sch and sch.qk_norm:
                q, k = head_norm(q, h, lw["q_norm"], sch.eps), head_norm(k, hkv, lw["k_norm"],
                                                                          sch.eps)
            q, k = rotate(q, h, sch), rotate(k, hkv, sch)
            v = linear(xb, lw, "wv", "bv").reshape(s, hkv, hd)
            k, v = np.repeat(k, h // hkv, axis=1), np.repeat(v, h // hkv, axis=1)
            scale = sch.scale if sch and sch.scale is not None else 1 / np.sqrt(hd)
            scores = np.einsum("ihd,jhd->hij", q, k) * scale
            if sch and sch.softcap is not None:
                scores = sch.softcap * np.tanh(scores / sch.softcap)
            if alibi:  # ALiBi: slope_h·(j - i)
                scores = scores + np.asarray(alibi)[:, None, None] * (pos[None, :] - pos[:, None])
            scores[:, mask] = -np.inf
            p = np.exp(scores - scores.max(axis=-1, keepdims=True))
            p /= p.sum(axis=-1, keepdims=True)
            att = np.einsum("hij,jhd->ihd", p, v).reshape(s, h * hd)
            o = linear(att, lw, "wo", "bo")
            x_att = x + (rmsnorm(o, lw["post_att"]) if sandwich else o)
            xb = rmsnorm(x if getattr(config, "parallel_residual", False) else x_att,
                         lw["rms_ffn"], lw.get("rms_ffn_b"))
        moe = getattr(config, "moe", None)
        if moe and moe["layers"][layer]:
            # Mixture of experts: softmax router, top_k per token (ties to
            # the lower index), optionally renormalized; shared expert
            # gated by a sigmoid.
            def swiglu(prefix):
                gt = linear(xb, lw, prefix + "w1")
                return linear(gt / (1 + np.exp(-gt)) * linear(xb, lw, prefix + "w3"), lw,
                              prefix + "w2")

            r = linear(xb, lw, "router")
            if moe.get("scoring") == "sigmoid":  # DeepSeek-V3
                p = 1 / (1 + np.exp(-r))
            else:
                p = np.exp(r - r.max(axis=-1, keepdims=True))
                p /= p.sum(axis=-1, keepdims=True)
            sel = p + f64(lw["router_bias"]) if moe.get("correction_bias") else p
            if moe.get("group"):  # DeepSeek's group-limited choice
                groups, keep, how = moe["group"]
                g3 = sel.reshape(s, groups, -1)
                score = g3.max(axis=-1) if how == "max" else \
                    -np.sort(-g3, axis=-1)[..., :2].sum(axis=-1)
                kept = np.argsort(-score, axis=-1, kind="stable")[:, :keep]
                gmask = np.zeros_like(score, bool)
                np.put_along_axis(gmask, kept, True, -1)
                sel = np.where(np.repeat(gmask, p.shape[1] // groups, axis=1), sel, 0.0)
            top = np.argsort(-sel, axis=-1, kind="stable")[:, :moe["top_k"]]
            chosen = p if moe.get("correction_bias") else sel
            gate = np.zeros_like(p)
            np.put_along_axis(gate, top, np.take_along_axis(chosen, top, -1), -1)
            normalized = moe["norm_topk"] and moe["top_k"] > 1
            if normalized:
                gate /= gate.sum(axis=-1, keepdims=True)
            if not normalized or moe.get("scale_always"):
                gate *= moe.get("scaling", 1.0)
            y = sum(gate[:, e:e + 1] * swiglu(f"e{e}_") for e in range(moe["experts"])
                    if gate[:, e].any())
            if moe["shared"] and not moe.get("shared_gated", True):
                y = y + swiglu("shared_")
            elif moe["shared"]:
                y = y + swiglu("shared_") / (1 + np.exp(-linear(xb, lw, "shared_gate")))
            x = x_att + (rmsnorm(y, lw["post_ffn"]) if sandwich else y)
            continue
        g = linear(xb, lw, "w1", "b1")
        if mlp == "swiglu":
            act = g / (1 + np.exp(-g)) * linear(xb, lw, "w3")
        elif mlp == "gelu_tanh":  # BLOOM: GELU's tanh form, not gated
            act = 0.5 * g * (1 + np.tanh(np.sqrt(2 / np.pi) * (g + 0.044715 * g ** 3)))
        elif mlp == "geglu_tanh":  # Gemma: gelu_pytorch_tanh(gate)·up
            act = 0.5 * g * (1 + np.tanh(np.sqrt(2 / np.pi) * (g + 0.044715 * g ** 3))) \
                * linear(xb, lw, "w3")
        else:  # exact GELU
            act = 0.5 * g * (1 + erf(g / np.sqrt(2.0)))
        y = linear(act, lw, "w2", "b2")
        x = x_att + (rmsnorm(y, lw["post_ffn"]) if sandwich else y)
    logits = rmsnorm(x, weights["rms_final"], weights.get("rms_final_b")) \
        @ f64(weights["wcls"]).T
    if getattr(config, "logit_scale", None) is not None:  # Cohere
        logits = logits * config.logit_scale
    cap = getattr(config, "final_softcap", None)
    return cap * np.tanh(logits / cap) if cap else logits


def t5_forward(config, weights, source_ids, target_ids):
    """Logits [T, vocab] of a T5 encoder-decoder (transformers'
    modeling_t5) teacher-forced on `target_ids` (decoder inputs, starting
    with decoder_start_token_id) for `source_ids`, in float64. `config`: a
    posenc.t5.T5Config; `weights`: posenc.t5.weights_from's form."""
    f64 = lambda a: np.asarray(a, np.float64)  # noqa: E731
    h, dk = config.n_heads, config.d_kv

    def norm(x, g):  # T5LayerNorm: no mean, no bias
        return f64(g) * (x / np.sqrt(np.mean(x * x, axis=-1, keepdims=True) + config.norm_eps))

    def attend(q, k, v, bias=None, causal=False):
        q, k, v = (t.reshape(t.shape[0], h, dk) for t in (q, k, v))
        s = np.einsum("ihd,jhd->hij", q, k)
        if bias is not None:
            s = s + bias
        if causal:
            s[:, np.triu(np.ones(s.shape[1:], bool), 1)] = -np.inf
        p = np.exp(s - s.max(axis=-1, keepdims=True))
        p /= p.sum(axis=-1, keepdims=True)
        return np.einsum("hij,jhd->ihd", p, v).reshape(q.shape[0], h * dk)

    def ffn(x, lw):
        a = x @ f64(lw["w1"]).T
        if config.mlp == "geglu_tanh":  # gelu_new(wi_0 x) * (wi_1 x)
            a = 0.5 * a * (1 + np.tanh(np.sqrt(2 / np.pi) * (a + 0.044715 * a ** 3)))
            a = a * (x @ f64(lw["w3"]).T)
        else:
            a = np.maximum(a, 0.0)
        return a @ f64(lw["w2"]).T

    def bias(table, n_q, n_k, bidirectional):
        b = rel_bias(table, np.arange(n_q), np.arange(n_k), "t5", config.buckets,
                     config.max_distance, bidirectional)
        return b.reshape(h, n_q, n_k)

    def self_attention(x, lw, b, causal):
        xb = norm(x, lw["ln_att"])
        return x + attend(xb @ f64(lw["wq"]).T, xb @ f64(lw["wk"]).T, xb @ f64(lw["wv"]).T,
                          b, causal) @ f64(lw["wo"]).T

    emb = f64(weights["shared"])
    x = emb[np.asarray(source_ids)]
    n = len(source_ids)
    eb = bias(weights["enc_rel"], n, n, True)
    for lw in weights["enc"]:
        x = self_attention(x, lw, eb, False)
        x = x + ffn(norm(x, lw["ln_ffn"]), lw)
    enc = norm(x, weights["enc_final"])
    y = emb[np.asarray(target_ids)]
    t = len(target_ids)
    db = bias(weights["dec_rel"], t, t, False)
    for lw in weights["dec"]:
        y = self_attention(y, lw, db, True)
        yb = norm(y, lw["ln_cross"])
        y = y + attend(yb @ f64(lw["xq"]).T, enc @ f64(lw["xk"]).T, enc @ f64(lw["xv"]).T) \
            @ f64(lw["xo"]).T
        y = y + ffn(norm(y, lw["ln_ffn"]), lw)
    out = norm(y, weights["dec_final"])
    if config.tied:
        return out * config.dim ** -0.5 @ emb.T
    return out @ f64(weights["lm_head"]).T

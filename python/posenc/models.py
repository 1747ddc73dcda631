"""One attention layer of a model, built from its Hugging Face-style config;
and whole models from checkpoints (`load`, see posenc.decoder).

    from posenc import models
    layer = models.attention_layer(json.load(open("config.json")), seq_len=64)
    layer.ir            # posenc IR: projections, position encoding, attention,
                        # output projection, as one function
    args = layer.random_inputs(np.random.default_rng(0))
    out = posenc.compile(layer.ir).call(layer.entry, *args)
    want = layer.reference(args)   # float64, from posenc.reference

Supported families (by `model_type`, or by the fields present):
RoPE decoders (llama, mistral, qwen2, phi3, gpt_neox, ...: `rope_theta`,
`rope_scaling` with rope_type default/linear/dynamic/yarn/llama3/longrope
(or the legacy "su"), `partial_rotary_factor` / `rotary_pct`, `head_dim`,
GQA through `num_key_value_heads`, `sliding_window` as attention
`causal window(W)`; Qwen2's `use_sliding_window` is a ConfigError), ALiBi (bloom; mpt with
`attn_config.alibi`), T5 relative buckets (encoder, or decoder
self-attention with `decoder=True`) and DeepSeek multi-head latent attention
(`kv_lora_rank`, `q_lora_rank`, `qk_nope_head_dim`, `qk_rope_head_dim`,
`v_head_dim`).

Layer norms, the MLP and the embedding are outside the layer built here.
Weights are [in, out] matrices (the transpose of torch's Linear.weight),
either function arguments (default) or `dense_resource` constants.
`cut` overrides config fields (head counts, hidden size) so that a layer
runs on a CPU in seconds; every cut is recorded in `Layer.cuts`.

An unsupported or inconsistent config raises ConfigError naming the field.
"""

import math
from dataclasses import dataclass, field

import numpy as np

from . import reference as ref


class ConfigError(ValueError):
    """A config field is missing, unsupported or inconsistent."""

    def __init__(self, fld, message):
        super().__init__(f"config field '{fld}': {message}")
        self.field = fld


@dataclass
class Layer:
    entry: str
    ir: str
    pe: str  # the position encoding, in words
    inputs: list  # [(name, shape, dtype)] in argument order
    weights: dict  # name -> np.ndarray (arguments or constants)
    cuts: dict  # field -> (published, used)
    family: str
    _reference: object = field(repr=False, default=None)
    weights_as_arguments: bool = True

    def random_inputs(self, rng, start=0):
        """Activations ~ N(0, 1), positions start..start+S-1, then the
        layer's weights (when they are arguments)."""
        out = []
        for name, shape, dtype in self.inputs:
            if name in self.weights:
                out.append(self.weights[name])
            elif dtype.startswith("i"):
                out.append(np.arange(start, start + shape[-1], dtype=np.int64))
            else:
                out.append(rng.standard_normal(shape).astype(np.float32))
        return out

    def reference(self, args):
        """The layer in float64 through posenc.reference."""
        named = {name: np.asarray(a) for (name, _, _), a in zip(self.inputs, args)}
        for name, w in self.weights.items():
            named.setdefault(name, w)
        return self._reference(named)


# --------------------------------------------------------------------------
# Config reading


def _get(cfg, *names, default=None, required=True):
    for n in names:
        if n in cfg and cfg[n] is not None:
            return cfg[n]
    if required and default is None:
        raise ConfigError(names[0], "missing")
    return default


def _positive_int(cfg, *names, default=None):
    v = _get(cfg, *names, default=default)
    if not isinstance(v, int) or isinstance(v, bool) or v <= 0:
        raise ConfigError(names[0], f"must be a positive integer, got {v!r}")
    return v


def _family(cfg):
    mt = cfg.get("model_type", "")
    if "kv_lora_rank" in cfg or mt.startswith("deepseek"):
        return "mla"
    if mt == "t5" or "relative_attention_num_buckets" in cfg:
        return "t5"
    if mt == "bloom":
        return "alibi"
    if mt == "mpt":
        if not (cfg.get("attn_config") or {}).get("alibi", False):
            raise ConfigError("attn_config.alibi", "MPT without ALiBi has no position "
                              "encoding posenc builds")
        return "alibi"
    if any(k in cfg for k in ("rope_theta", "rotary_emb_base", "rope_scaling",
                              "partial_rotary_factor", "rotary_pct")):
        return "rope"
    raise ConfigError("model_type", f"{mt!r} has no position encoding posenc knows "
                      "(no rope_theta/rope_scaling, ALiBi, T5 buckets or kv_lora_rank)")


def rope_scaling(cfg):
    """The posenc scaling dict ({"kind": ..., parameters}) of a config, or
    None for plain RoPE."""
    rs = cfg.get("rope_scaling")
    if not rs:
        return None
    if not isinstance(rs, dict):
        raise ConfigError("rope_scaling", f"must be an object, got {rs!r}")
    kind = rs.get("rope_type", rs.get("type"))
    max_pos = cfg.get("max_position_embeddings")
    orig = rs.get("original_max_position_embeddings",
                  cfg.get("original_max_position_embeddings"))

    def factor():
        f = rs.get("factor")
        if not isinstance(f, (int, float)) or isinstance(f, bool) or f <= 0:
            raise ConfigError("rope_scaling.factor", f"must be a positive number, got {f!r}")
        return float(f)

    def original(default=None):
        o = orig if orig is not None else default
        if not isinstance(o, int) or o <= 0:
            raise ConfigError("rope_scaling.original_max_position_embeddings",
                              f"must be a positive integer, got {o!r}")
        return o

    if kind in (None, "default"):
        return None
    if kind == "linear":
        return {"kind": "linear", "factor": factor()}
    if kind == "dynamic":
        return {"kind": "dynamic", "factor": factor(), "original": original(max_pos)}
    if kind == "yarn":
        sc = {"kind": "yarn", "factor": factor(), "original": original(max_pos)}
        for key in ("beta_fast", "beta_slow", "mscale", "mscale_all_dim", "attention_factor"):
            if rs.get(key) is not None:
                sc[key] = float(rs[key])
        if rs.get("truncate") is not None:
            sc["truncate"] = bool(rs["truncate"])
        return sc
    if kind == "llama3":
        sc = {"kind": "llama3", "factor": factor(), "original": original()}
        for key in ("low_freq_factor", "high_freq_factor"):
            if not isinstance(rs.get(key), (int, float)):
                raise ConfigError(f"rope_scaling.{key}", "missing")
            sc[key] = float(rs[key])
        if sc["high_freq_factor"] <= sc["low_freq_factor"]:
            raise ConfigError("rope_scaling.high_freq_factor",
                              f"({sc['high_freq_factor']}) must exceed low_freq_factor "
                              f"({sc['low_freq_factor']})")
        return sc
    if kind in ("longrope", "su"):
        sc = {"kind": "longrope", "original": original(),
              "max_positions": _positive_int(cfg, "max_position_embeddings")}
        for key in ("short_factor", "long_factor"):
            v = rs.get(key)
            if not isinstance(v, list) or not v:
                raise ConfigError(f"rope_scaling.{key}", "must be a non-empty list")
            sc[key] = [float(x) for x in v]
        if rs.get("attention_factor") is not None:
            sc["attention_factor"] = float(rs["attention_factor"])
        return sc
    raise ConfigError("rope_scaling.rope_type", f"{kind!r} is not supported "
                      "(default, linear, dynamic, yarn, llama3, longrope)")


def scaling_attribute(sc):
    """The `#posenc.rope_scaling<...>` text of a posenc scaling dict
    ({"kind": ..., parameters}), or None for plain RoPE."""
    if sc is None:
        return None
    parts = [sc["kind"]]
    for key, val in sc.items():
        if key == "kind":
            continue
        if isinstance(val, bool):
            parts.append(f"{key} = {'true' if val else 'false'}")
        elif isinstance(val, (list, tuple)):
            parts.append(f"{key} = [" + ", ".join(repr(float(v)) for v in val) + "]")
        elif key in ("original", "max_positions"):
            parts.append(f"{key} = {int(val)}")
        else:
            parts.append(f"{key} = {float(val)!r}")
    return "#posenc.rope_scaling<" + ", ".join(parts) + ">"


def _rope_attr_sc(sc):
    """Splits HF's explicit attention_factor (an op attribute in posenc)
    from the scaling parameters, as posenc.reference takes them."""
    if sc is None:
        return None, None
    sc = dict(sc)
    return sc, sc.pop("attention_factor", None)


def _rope_attr_text(base, rotary_dim, sc, attention_factor):
    """The attribute dictionary of a posenc.rope, with a leading space."""
    attrs = [f"base = {base!r} : f64"]
    if rotary_dim is not None:
        attrs.append(f"rotary_dim = {rotary_dim} : i64")
    if sc is not None:
        attrs.append("scaling = " + scaling_attribute(sc))
    if attention_factor is not None:
        attrs.append(f"attention_factor = {attention_factor!r} : f64")
    return " {" + ", ".join(attrs) + "}"


# --------------------------------------------------------------------------
# IR emission


def _t(shape, dtype="f32"):
    return "tensor<" + "x".join(str(d) for d in shape) + f"x{dtype}>"


class _Emitter:
    def __init__(self, weights_as_arguments, rng):
        self.lines = []
        self.args = []  # (name, shape, dtype)
        self.weights = {}
        self.resources = {}
        self.as_args = weights_as_arguments
        self.rng = rng
        self.n = 0

    def fresh(self, stem):
        self.n += 1
        return f"%{stem}{self.n}"

    def arg(self, name, shape, dtype="f32"):
        self.args.append((name, tuple(shape), dtype))
        return f"%{name}"

    def weight(self, name, shape, scale):
        w = (self.rng.standard_normal(shape) * scale).astype(np.float32)
        self.weights[name] = w
        if self.as_args:
            return self.arg(name, shape)
        self.resources[name] = w
        v = f"%{name}"
        self.lines.append(f"{v} = arith.constant dense_resource<{name}> : {_t(shape)}")
        return v

    def emit(self, text):
        self.lines.append(text)

    def matmul(self, a, a_shape, w, w_shape):
        m, n = a_shape[0], w_shape[1]
        e, z, y = self.fresh("e"), self.fresh("z"), self.fresh("mm")
        self.emit(f"{e} = tensor.empty() : {_t((m, n))}")
        self.emit(f"{z} = linalg.fill ins(%zero : f32) outs({e} : {_t((m, n))}) -> {_t((m, n))}")
        self.emit(f"{y} = linalg.matmul ins({a}, {w} : {_t(a_shape)}, {_t(w_shape)}) "
                  f"outs({z} : {_t((m, n))}) -> {_t((m, n))}")
        return y

    def add_bias(self, y, shape, b, n):
        e, bb, s = self.fresh("e"), self.fresh("bb"), self.fresh("biased")
        self.emit(f"{e} = tensor.empty() : {_t(shape)}")
        self.emit(f"{bb} = linalg.broadcast ins({b} : {_t((n,))}) outs({e} : {_t(shape)}) "
                  f"dimensions = [0]")
        self.emit(f"{s} = arith.addf {y}, {bb} : {_t(shape)}")
        return s

    def project(self, x2, x2_shape, name, out_dim, heads, head_dim, bias, b, s):
        """x2 [B·S, in] -> [B, S, heads, head_dim]."""
        w = self.weight(f"w_{name}", (x2_shape[1], out_dim), 1.0 / math.sqrt(x2_shape[1]))
        y = self.matmul(x2, x2_shape, w, (x2_shape[1], out_dim))
        if bias:
            bv = self.weight(f"b_{name}", (out_dim,), 0.1)
            y = self.add_bias(y, (x2_shape[0], out_dim), bv, out_dim)
        r = self.fresh(name)
        self.emit(f"{r} = tensor.expand_shape {y} [[0, 1], [2, 3]] output_shape "
                  f"[{b}, {s}, {heads}, {head_dim}] : {_t((b * s, out_dim))} into "
                  f"{_t((b, s, heads, head_dim))}")
        return r

    def module(self, entry, result, result_shape):
        sig = ", ".join(f"%{n}: {_t(s, d)}" for n, s, d in self.args)
        body = ["%zero = arith.constant 0.0 : f32"] + self.lines + [
            f"return {result} : {_t(result_shape)}"]
        text = (f"func.func @{entry}({sig}) -> {_t(result_shape)} {{\n  "
                + "\n  ".join(body) + "\n}\n")
        if self.resources:
            blobs = ",\n      ".join(
                f'{n}: "0x04000000{w.astype("<f4").tobytes().hex().upper()}"'
                for n, w in self.resources.items())
            text += ("\n{-#\n  dialect_resources: {\n    builtin: {\n      "
                     + blobs + "\n    }\n  }\n#-}\n")
        return text


def _cut(cfg, cut, cuts, *names):
    """Applies `cut` to the first present field of `names`."""
    for n in names:
        if n in cut:
            published = cfg.get(n)
            cfg[n] = cut[n]
            cuts[n] = (published, cut[n])
            return


def attention_layer(config, seq_len=16, batch=1, cut=None, weights="arguments",
                    decoder=False, entry="attention_layer", seed=0):
    """Builds one attention layer of `config` (a dict as in config.json).

    seq_len/batch: the static activation shape [batch, seq_len, hidden].
    cut: {field: value} overrides (e.g. fewer heads) recorded in Layer.cuts.
    weights: "arguments" or "constants" (dense_resource blobs in the IR).
    decoder: for T5, the decoder's causal self-attention (unidirectional
    buckets) instead of the encoder's bidirectional one."""
    if not isinstance(config, dict):
        raise ConfigError("<config>", "must be a dict (the parsed config.json)")
    if weights not in ("arguments", "constants"):
        raise ValueError(f"weights must be 'arguments' or 'constants', got {weights!r}")
    if seq_len <= 0 or batch <= 0:
        raise ValueError(f"seq_len ({seq_len}) and batch ({batch}) must be positive")
    cfg = dict(config)
    family = _family(cfg)
    # The head dim is pinned from the published config: a cut of the head
    # count keeps every head as the model has it (hidden size too).
    cfg["_head_dim"] = _published_head_dim(family, cfg)
    cut = dict(cut or {})
    cuts = {}
    for name in list(cut):
        if name not in cfg:
            raise ConfigError(name, "cut names a field the config does not have")
        _cut(cfg, cut, cuts, name)
    em = _Emitter(weights == "arguments", np.random.default_rng(seed))
    builder = {"rope": _rope_layer, "alibi": _alibi_layer, "t5": _t5_layer,
               "mla": _mla_layer}[family]
    pe, result, result_shape, reference = builder(cfg, em, batch, seq_len, decoder)
    return Layer(entry=entry, ir=em.module(entry, result, result_shape), pe=pe,
                 inputs=em.args, weights=em.weights, cuts=cuts, family=family,
                 _reference=reference, weights_as_arguments=weights == "arguments")


# --------------------------------------------------------------------------
# Families


def _published_head_dim(family, cfg):
    if family == "mla":
        return None
    if family == "t5":
        if "d_kv" in cfg:
            return _positive_int(cfg, "d_kv")
        names = ("d_model", "hidden_size"), ("num_heads", "num_attention_heads")
    elif family == "alibi":
        names = ("hidden_size", "n_embed", "d_model"), ("n_head", "num_attention_heads", "n_heads")
    else:
        if cfg.get("head_dim") is not None:
            d = cfg["head_dim"]
            if not isinstance(d, int) or d <= 0 or d % 2:
                raise ConfigError("head_dim", f"must be a positive even integer, got {d!r}")
            return d
        names = ("hidden_size", "n_embd", "d_model"), ("num_attention_heads", "n_head")
    hidden, h = _positive_int(cfg, *names[0]), _positive_int(cfg, *names[1])
    if hidden % h:
        raise ConfigError(names[0][0], f"({hidden}) is not a multiple of {names[1][0]} ({h})")
    d = hidden // h
    if family == "rope" and d % 2:
        raise ConfigError("head_dim", f"({d} = {names[0][0]} / {names[1][0]}) must be even")
    return d


def _heads(cfg, q_names, kv_names=None):
    h = _positive_int(cfg, *q_names)
    hkv = h
    if kv_names:
        hkv = _positive_int(cfg, *kv_names, default=h)
        if h % hkv:
            raise ConfigError(kv_names[0], f"({hkv}) must divide the number of query heads ({h})")
    return h, hkv


def _common_input(em, cfg, b, s, hidden):
    x = em.arg("x", (b, s, hidden))
    em.emit(f"%x2 = tensor.collapse_shape {x} [[0, 1], [2]] : {_t((b, s, hidden))} into "
            f"{_t((b * s, hidden))}")
    return "%x2", (b * s, hidden)


def _qkv(em, x2, x2s, h, hkv, d, bias, b, s):
    """The q ([B, S, h, d]), k and v ([B, S, hkv, d]) projections of x2."""
    return (em.project(x2, x2s, "q", h * d, h, d, bias, b, s),
            em.project(x2, x2s, "k", hkv * d, hkv, d, bias, b, s),
            em.project(x2, x2s, "v", hkv * d, hkv, d, bias, b, s))


def _output_projection(em, o, b, s, h, dv, hidden):
    em.emit(f"%o2 = tensor.collapse_shape {o} [[0, 1], [2, 3]] : {_t((b, s, h, dv))} into "
            f"{_t((b * s, h * dv))}")
    wo = em.weight("w_o", (h * dv, hidden), 1.0 / math.sqrt(h * dv))
    y = em.matmul("%o2", (b * s, h * dv), wo, (h * dv, hidden))
    em.emit(f"%out = tensor.expand_shape {y} [[0, 1], [2]] output_shape [{b}, {s}, {hidden}] "
            f": {_t((b * s, hidden))} into {_t((b, s, hidden))}")
    return "%out", (b, s, hidden)


def _project_ref(x, w, bias=None):
    y = np.einsum("bsi,io->bso", x, w.astype(np.float64))
    return y if bias is None else y + bias


def _rope_layer(cfg, em, b, s, _decoder):
    hidden = _positive_int(cfg, "hidden_size", "n_embd", "d_model")
    h, hkv = _heads(cfg, ("num_attention_heads", "n_head"), ("num_key_value_heads",))
    d = cfg["_head_dim"]
    frac = float(_get(cfg, "partial_rotary_factor", "rotary_pct", default=1.0))
    if not 0.0 < frac <= 1.0:
        raise ConfigError("partial_rotary_factor", f"must be in (0, 1], got {frac}")
    rotary = int(d * frac)
    rotary -= rotary % 2
    if rotary <= 0:
        raise ConfigError("partial_rotary_factor", f"rotates no pair of head_dim {d}")
    base = float(_get(cfg, "rope_theta", "rotary_emb_base", default=10000.0))
    if base <= 1.0:
        raise ConfigError("rope_theta", f"must exceed 1, got {base}")
    sc = rope_scaling(cfg)
    if sc is not None and sc["kind"] == "longrope":
        for key in ("short_factor", "long_factor"):
            if len(sc[key]) != rotary // 2:
                raise ConfigError(f"rope_scaling.{key}", f"has {len(sc[key])} entries; "
                                  f"the rotary dim {rotary} needs {rotary // 2}")
    ref_sc, attention_factor = _rope_attr_sc(sc)
    mt = cfg.get("model_type", "")
    bias = bool(cfg.get("attention_bias", mt in ("qwen2", "gpt_neox")))
    # Sliding windows: every layer of Mistral and Phi-3 (`sliding_window`,
    # keys seen, the query's own included); Qwen2's start at layer
    # max_window_layers, which a single layer cannot say.
    if mt == "qwen2":
        if cfg.get("use_sliding_window"):
            raise ConfigError("use_sliding_window", "Qwen2's per-layer sliding windows (from "
                              "max_window_layers) are not built yet")
        window = None
    else:
        window = cfg.get("sliding_window")
        if window is not None and (not isinstance(window, int) or isinstance(window, bool)
                                   or window < 1):
            raise ConfigError("sliding_window", f"must be a positive integer, got {window!r}")
    window_attr = f" window({window})" if window else ""

    x2, x2s = _common_input(em, cfg, b, s, hidden)
    pos = em.arg("pos", (s,), "i64")
    q, k, v = _qkv(em, x2, x2s, h, hkv, d, bias, b, s)
    attr_text = _rope_attr_text(base, rotary if rotary != d else None, ref_sc,
                                attention_factor)
    for name, t, n in (("qr", q, h), ("kr", k, hkv)):
        em.emit(f"%{name} = posenc.rope {t}, {pos} layout half{attr_text} : "
                f"{_t((b, s, n, d))}, {_t((s,), 'i64')}")
    em.emit(f"%attn_init = tensor.empty() : {_t((b, s, h, d))}")
    em.emit(f"%attn = posenc.attention %qr, %kr, {v} causal{window_attr} outs(%attn_init) : "
            f"{_t((b, s, h, d))}, {_t((b, s, hkv, d))}, {_t((b, s, hkv, d))}, "
            f"{_t((b, s, h, d))}")
    out, shape = _output_projection(em, "%attn", b, s, h, d, hidden)

    def reference(a):
        x = a["x"].astype(np.float64)
        proj = {n: _project_ref(x, a[f"w_{n}"], a.get(f"b_{n}")) for n in "qkv"}
        qh = proj["q"].reshape(b, s, h, d)
        kh = proj["k"].reshape(b, s, hkv, d)
        vh = proj["v"].reshape(b, s, hkv, d)
        kw = dict(base=base, rotary_dim=rotary, layout="half", scaling=ref_sc,
                  attention_factor=attention_factor)
        o = ref.attention(ref.rope(qh, a["pos"], **kw), ref.rope(kh, a["pos"], **kw), vh,
                          causal=True, window=window)
        return o.reshape(b, s, h * d) @ a["w_o"].astype(np.float64)

    kind = sc["kind"] if sc else "plain"
    pe = f"RoPE {kind}" + (f" x{sc['factor']:g}" if sc and "factor" in sc else "")
    if rotary != d:
        pe += f", rotary {rotary}/{d}"
    if hkv != h:
        pe += f", GQA {h}/{hkv}"
    if window:
        pe += f", window {window}"
    return pe, out, shape, reference


def _alibi_layer(cfg, em, b, s, _decoder):
    hidden = _positive_int(cfg, "hidden_size", "n_embed", "d_model")
    h, _ = _heads(cfg, ("n_head", "num_attention_heads", "n_heads"))
    d = cfg["_head_dim"]
    max_bias = float((cfg.get("attn_config") or {}).get("alibi_bias_max", 8.0))
    if max_bias <= 0:
        raise ConfigError("attn_config.alibi_bias_max", f"must be positive, got {max_bias}")
    bias = cfg.get("model_type") == "bloom"  # BLOOM's projections have biases
    x2, x2s = _common_input(em, cfg, b, s, hidden)
    pos = em.arg("pos", (s,), "i64")
    q, k, v = _qkv(em, x2, x2s, h, h, d, bias, b, s)
    bt = _t((h, s, s))
    em.emit(f"%bias = posenc.alibi_bias {pos}, {pos} mode causal {{num_heads = {h} : i64, "
            f"max_bias = {max_bias!r} : f64}} : {_t((s,), 'i64')}, {_t((s,), 'i64')} -> {bt}")
    em.emit(f"%attn_init = tensor.empty() : {_t((b, s, h, d))}")
    em.emit(f"%attn = posenc.attention {q}, {k}, {v} bias(%bias : {bt}) causal "
            f"outs(%attn_init) : {_t((b, s, h, d))}, {_t((b, s, h, d))}, "
            f"{_t((b, s, h, d))}, {_t((b, s, h, d))}")
    out, shape = _output_projection(em, "%attn", b, s, h, d, hidden)

    def reference(a):
        x = a["x"].astype(np.float64)
        qh, kh, vh = (_project_ref(x, a[f"w_{n}"], a.get(f"b_{n}")).reshape(b, s, h, d)
                      for n in "qkv")
        bias_t = ref.alibi_bias(a["pos"], a["pos"], h, max_bias=max_bias)
        o = ref.attention(qh, kh, vh, bias=bias_t, causal=True)
        return o.reshape(b, s, h * d) @ a["w_o"].astype(np.float64)

    return f"ALiBi, {h} heads, max_bias {max_bias:g}", out, shape, reference


def _t5_layer(cfg, em, b, s, decoder):
    hidden = _positive_int(cfg, "d_model", "hidden_size")
    h = _positive_int(cfg, "num_heads", "num_attention_heads")
    d = cfg["_head_dim"]
    nb = _positive_int(cfg, "relative_attention_num_buckets", default=32)
    md = _positive_int(cfg, "relative_attention_max_distance", default=128)
    bidirectional = not decoder
    if bidirectional and nb % 2:
        raise ConfigError("relative_attention_num_buckets",
                          f"({nb}) must be even for bidirectional buckets")
    if md < (nb // 2 if bidirectional else nb):
        raise ConfigError("relative_attention_max_distance",
                          f"({md}) must be at least the exact buckets per side")
    x2, x2s = _common_input(em, cfg, b, s, hidden)
    pos = em.arg("pos", (s,), "i64")
    q, k, v = _qkv(em, x2, x2s, h, h, d, False, b, s)
    table = em.weight("rel_table", (nb, h), 1.0)
    bt = _t((h, s, s))
    em.emit(f"%bias = posenc.rel_bias {table}, {pos}, {pos} kind t5 {{num_buckets = {nb} : i64, "
            f"max_distance = {md} : i64, bidirectional = {str(bidirectional).lower()}}} : "
            f"{_t((nb, h))}, {_t((s,), 'i64')}, {_t((s,), 'i64')} -> {bt}")
    causal = " causal" if decoder else ""
    # T5 folds 1/sqrt(d) into its weights: the softmax scale is 1.
    em.emit(f"%attn_init = tensor.empty() : {_t((b, s, h, d))}")
    em.emit(f"%attn = posenc.attention {q}, {k}, {v} bias(%bias : {bt}){causal} "
            f"outs(%attn_init) {{scale = 1.0 : f64}} : {_t((b, s, h, d))}, "
            f"{_t((b, s, h, d))}, {_t((b, s, h, d))}, {_t((b, s, h, d))}")
    out, shape = _output_projection(em, "%attn", b, s, h, d, hidden)

    def reference(a):
        x = a["x"].astype(np.float64)
        qh, kh, vh = (_project_ref(x, a[f"w_{n}"]).reshape(b, s, h, d) for n in "qkv")
        bias_t = ref.rel_bias(a["rel_table"], a["pos"], a["pos"], "t5", nb, md,
                              bidirectional=bidirectional)
        o = ref.attention(qh, kh, vh, bias=bias_t, scale=1.0, causal=decoder)
        return o.reshape(b, s, h * d) @ a["w_o"].astype(np.float64)

    which = "decoder, causal" if decoder else "encoder"
    return f"T5 buckets {nb}/{md} ({which})", out, shape, reference


def _mla_layer(cfg, em, b, s, _decoder):
    hidden = _positive_int(cfg, "hidden_size")
    h = _positive_int(cfg, "num_attention_heads")
    c = _positive_int(cfg, "kv_lora_rank")
    dn = _positive_int(cfg, "qk_nope_head_dim")
    dr = _positive_int(cfg, "qk_rope_head_dim")
    dv = _positive_int(cfg, "v_head_dim")
    if dr % 2:
        raise ConfigError("qk_rope_head_dim", f"({dr}) must be even")
    q_rank = cfg.get("q_lora_rank")
    base = float(_get(cfg, "rope_theta", default=10000.0))
    sc = rope_scaling(cfg)
    ref_sc, attention_factor = _rope_attr_sc(sc)
    # DeepSeek's softmax scale: 1/sqrt(Dn + Dr), times mscale(f, mscale_all_dim)^2
    # under YaRN.
    scale = 1.0 / math.sqrt(dn + dr)
    if sc and sc["kind"] == "yarn" and sc.get("mscale_all_dim"):
        m = 0.1 * sc["mscale_all_dim"] * math.log(sc["factor"]) + 1.0
        scale *= m * m

    x2, x2s = _common_input(em, cfg, b, s, hidden)
    pos = em.arg("pos", (s,), "i64")
    if q_rank:
        wdq = em.weight("w_dq", (hidden, q_rank), 1.0 / math.sqrt(hidden))
        cq = em.matmul(x2, x2s, wdq, (hidden, q_rank))
        q = em.project(cq, (b * s, q_rank), "q", h * (dn + dr), h, dn + dr, False, b, s)
    else:
        q = em.project(x2, x2s, "q", h * (dn + dr), h, dn + dr, False, b, s)
    kv = em.project(x2, x2s, "kv", c + dr, 1, c + dr, False, b, s)
    qt, kvt = _t((b, s, h, dn + dr)), _t((b, s, 1, c + dr))
    em.emit(f"%q_nope = tensor.extract_slice {q}[0, 0, 0, 0] [{b}, {s}, {h}, {dn}] [1, 1, 1, 1] "
            f": {qt} to {_t((b, s, h, dn))}")
    em.emit(f"%q_pe = tensor.extract_slice {q}[0, 0, 0, {dn}] [{b}, {s}, {h}, {dr}] [1, 1, 1, 1] "
            f": {qt} to {_t((b, s, h, dr))}")
    em.emit(f"%c_kv = tensor.extract_slice {kv}[0, 0, 0, 0] [{b}, {s}, 1, {c}] [1, 1, 1, 1] "
            f": {kvt} to {_t((b, s, c))}")
    em.emit(f"%k_pe = tensor.extract_slice {kv}[0, 0, 0, {c}] [{b}, {s}, 1, {dr}] [1, 1, 1, 1] "
            f": {kvt} to {_t((b, s, 1, dr))}")
    attr_text = _rope_attr_text(base, None, ref_sc, attention_factor)
    em.emit(f"%qr = posenc.rope %q_pe, {pos} layout interleaved{attr_text} : "
            f"{_t((b, s, h, dr))}, {_t((s,), 'i64')}")
    em.emit(f"%kr4 = posenc.rope %k_pe, {pos} layout interleaved{attr_text} : "
            f"{_t((b, s, 1, dr))}, {_t((s,), 'i64')}")
    em.emit(f"%kr = tensor.collapse_shape %kr4 [[0], [1], [2, 3]] : {_t((b, s, 1, dr))} into "
            f"{_t((b, s, dr))}")
    wuk = em.weight("w_uk", (h, dn, c), 1.0 / math.sqrt(c))
    wuv = em.weight("w_uv", (h, dv, c), 1.0 / math.sqrt(c))
    em.emit(f"%attn = posenc.mla_absorb %q_nope, %qr, %c_kv, %kr, {wuk}, {wuv} causal "
            f"{{scale = {scale!r} : f64}} : {_t((b, s, h, dn))}, {_t((b, s, h, dr))}, "
            f"{_t((b, s, c))}, {_t((b, s, dr))}, {_t((h, dn, c))}, {_t((h, dv, c))} -> "
            f"{_t((b, s, h, dv))}")
    out, shape = _output_projection(em, "%attn", b, s, h, dv, hidden)

    def reference(a):
        x = a["x"].astype(np.float64)
        xq = _project_ref(x, a["w_dq"]) if q_rank else x
        qh = _project_ref(xq, a["w_q"]).reshape(b, s, h, dn + dr)
        kvh = _project_ref(x, a["w_kv"]).reshape(b, s, c + dr)
        kw = dict(base=base, layout="interleaved", scaling=ref_sc,
                  attention_factor=attention_factor)
        qr = ref.rope(qh[..., dn:], a["pos"], **kw)
        kr = ref.rope(kvh[:, :, None, c:], a["pos"], **kw)[:, :, 0, :]
        o = ref.mla_absorb(qh[..., :dn], qr, kvh[..., :c], kr, a["w_uk"], a["w_uv"],
                           scale=scale, causal=True)
        return o.reshape(b, s, h * dv) @ a["w_o"].astype(np.float64)

    pe = f"MLA (latent {c}) + RoPE " + (f"{sc['kind']} x{sc['factor']:g}" if sc else "plain")
    return pe, out, shape, reference


def load(path, tokenizer=None, max_seq=None, threads=None):
    """A whole compiled decoder, with `.prefill`, `.decode` and `.generate`
    (posenc.decoder.Model), from a llama2.c checkpoint at `path` (with its
    tokenizer.bin) or a Hugging Face model directory (posenc.hf), run on
    `threads` OpenMP threads (None or 1: the calling thread)."""
    from . import decoder

    return decoder.load(path, tokenizer, max_seq, threads)

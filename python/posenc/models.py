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
RoPE decoders (llama, mistral, mixtral, qwen2, qwen3, phi3, gpt_neox, gemma,
gemma2, gemma3, gpt_oss, llama4, smollm3, cohere2: `rope_theta`,
`rope_scaling` with rope_type default/linear/dynamic/yarn/llama3/longrope
(or the legacy "su"), `partial_rotary_factor` / `rotary_pct`, `head_dim`,
GQA through `num_key_value_heads`), ALiBi (bloom; mpt with
`attn_config.alibi`), T5 relative buckets (encoder, or decoder
self-attention with `decoder=True`) and DeepSeek multi-head latent attention
(`kv_lora_rank`, `q_lora_rank`, `qk_nope_head_dim`, `qk_rope_head_dim`,
`v_head_dim`), and Transformer-XL's relative attention (transfo-xl:
`d_head`, `n_head`, `clamp_len`, `mem_len` as a memory input, `same_length`
as a window of mem_len keys). A multimodal config's `text_config` is what is read; the
text layers of Qwen2-VL, Qwen2.5-VL (`rope_scaling.mrope_section`) and
Qwen3-VL (interleaved) take M-RoPE positions [3, S] (temporal, height,
width) as the rope op's `mrope_section`.

Layers differ within a model; `layer=i` builds layer i as transformers does:
sliding windows (`sliding_window` as attention `causal window(W)`: every
layer of Mistral and Phi-3; Gemma 2's and gpt-oss's even layers; all but
every `sliding_window_pattern`-th of Gemma 3 and Command R7B; Qwen's from
`max_window_layers` on when `use_sliding_window`; or HF's `layer_types`),
Llama 4's chunked attention (`attention_chunk_size` as `causal chunk(C)` on
its RoPE layers), NoPE layers (`no_rope_layers` of SmolLM3 and Llama 4,
Command R7B's global layers), Gemma 3's local RoPE base
(`rope_local_base_freq`, no scaling, on sliding layers), Gemma's
`query_pre_attn_scalar` (the softmax scale) and `attn_logit_softcapping`
(`softcap(c)`), gpt-oss's attention sinks (a `sinks` weight per head),
QK-norm (Qwen3 and Gemma 3: RMSNorm of each head of q and k before RoPE,
Gemma's with 1 + w; Llama 4: weightless, after RoPE, on RoPE layers) and
Llama 4's attention temperature tuning on NoPE layers (q times
log(floor((pos + 1)/floor_scale) + 1)·attn_scale + 1).

No field is silently ignored: every field of the config is read by the
builder, known not to apply to this layer, or listed in UNAFFECTED (the
MLP, embeddings, norms outside attention, bookkeeping); any other raises
ConfigError naming it (`ignore=` accepts fields the caller vouches for).

Layer norms, the MLP and the embedding are outside the layer built here.
Weights are [in, out] matrices (the transpose of torch's Linear.weight),
either function arguments (default) or `dense_resource` constants.
`cut` overrides config fields (head counts, hidden size) so that a layer
runs on a CPU in seconds; every cut is recorded in `Layer.cuts`.

An unsupported or inconsistent config raises ConfigError naming the field.
"""

import math
import operator
import re
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
    fields: list = field(default_factory=list)  # the config fields the layer read

    def random_inputs(self, rng, start=0):
        """Activations ~ N(0, 1), positions start..start+S-1, then the
        layer's weights (when they are arguments). The positions feed the
        position encoding (RoPE angles, temperature tuning); causal masks,
        windows and chunks are over the layer's own S keys (key index 0 is
        the first token given), as for a prefill from position 0. M-RoPE positions [3, S]
        are those of image patches in rows of 4: temporal start + i, height
        start + i // 4, width start + i % 4."""
        out = []
        for name, shape, dtype in self.inputs:
            if name in self.weights:
                out.append(self.weights[name])
            elif dtype.startswith("i") and len(shape) == 2:
                i = np.arange(shape[1], dtype=np.int64)
                rows = ([i, i // 4, i % 4] + [i] * shape[0])[:shape[0]]
                out.append(start + np.stack(rows))
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

# Fields that never change one attention layer's output given its inputs:
# the embedding, the MLP and experts, norms outside the layer, the logits,
# training-only and bookkeeping fields. attention_layer accepts them unread;
# every other field of a config is either read by the builder or a
# ConfigError, so that no field that changes attention is silently ignored.
UNAFFECTED = frozenset("""
_name_or_path architectures auto_map transformers_version torch_dtype dtype use_cache
bos_token_id eos_token_id pad_token_id decoder_start_token_id sep_token_id vocab_size
intermediate_size intermediate_size_mlp d_ff ffn_dim hidden_act hidden_activation
activation_function feed_forward_proj mlp_bias initializer_range initializer_factor
init_std layer_norm_eps layer_norm_epsilon tie_word_embeddings num_hidden_layers
n_layer n_layers num_layers num_decoder_layers attention_dropout attn_pdrop
resid_pdrop embd_pdrop hidden_dropout hidden_dropout_prob dropout_rate emb_pdrop
final_logit_softcapping logit_scale use_parallel_residual is_encoder_decoder
num_local_experts num_experts num_experts_per_tok experts_per_token
router_aux_loss_coef output_router_logits router_jitter_noise swiglu_limit
moe_intermediate_size n_routed_experts n_shared_experts routed_scaling_factor
n_group topk_group topk_method norm_topk_prob scoring_func first_k_dense_replace
moe_layer_freq ep_size num_nextn_predict_layers interleave_moe_layer_step
moe_layers decoder_sparse_step mlp_only_layers shared_expert_intermediate_size
quantization_config cache_implementation pretraining_tp max_seq_len
vision_config boi_token_index eoi_token_index image_token_index mm_tokens_per_image
image_token_id video_token_id vision_start_token_id vision_end_token_id
vision_token_id initial_context_length use_embedding_sharing use_gated_activation
d_embed d_inner div_val cutoffs adaptive tie_projs tie_weight sample_softmax init
init_range proj_init_std dropout dropatt
""".split())


class _Config(dict):
    """A config (or a nested object of it, at `prefix`) that records which
    fields the builder reads, and which it knows do not apply to this layer."""

    def __init__(self, data, reads, known, prefix=""):
        super().__init__(data)
        self.reads, self.known, self.prefix = reads, known, prefix

    def _wrap(self, key, value):
        if isinstance(value, dict) and not isinstance(value, _Config):
            return _Config(value, self.reads, self.known, f"{self.prefix}{key}.")
        return value

    def __getitem__(self, key):
        self.reads.add(self.prefix + key)
        return self._wrap(key, super().__getitem__(key))

    def get(self, key, default=None):
        self.reads.add(self.prefix + key)
        return self._wrap(key, super().get(key, default))

    def __contains__(self, key):
        self.reads.add(self.prefix + key)
        return super().__contains__(key)

    def skip(self, *keys):
        """Fields this layer does not use (e.g. a window size while windows
        are off): accepted unread."""
        self.known.update(self.prefix + k for k in keys)

    def peek(self, key, default=None):
        """A value read for validation only (not as an input of the layer)."""
        return super().get(key, default)


def _read_config(config):
    """(the fields a layer is built from, reads, known, the recording view).
    A multimodal config's `text_config` is the text model; its other fields
    must be ones that leave attention unchanged."""
    if not isinstance(config, dict):
        raise ConfigError("<config>", "must be a dict (the parsed config.json)")
    text = config.get("text_config")
    if text is not None:
        if not isinstance(text, dict):
            raise ConfigError("text_config", f"must be an object, got {text!r}")
        outer = config.get("model_type")
        if outer is not None and not isinstance(outer, str):
            raise ConfigError("model_type", f"must be a string, got {outer!r}")
        for k in config:
            if k not in ("text_config", "model_type") and k not in UNAFFECTED \
                    and not k.startswith("_"):
                raise ConfigError(k, "is outside text_config and not known to leave "
                                  "attention unchanged")
        config = dict(text)
        if config.get("model_type") in ("gemma3", "llama4", "qwen3_vl"):
            config["model_type"] += "_text"
        elif config.get("model_type") is None and outer in ("gemma3", "llama4", "qwen3_vl"):
            config["model_type"] = outer + "_text"
    elif config.get("model_type") in ("gemma3", "llama4", "qwen3_vl"):
        config = dict(config, model_type=config["model_type"] + "_text")
    reads, known = set(), set()
    return config, reads, known, _Config(config, reads, known)


def _layer_count(cfg):
    n = next((cfg.peek(k) for k in ("num_hidden_layers", "n_layer", "n_layers", "num_layers")
              if cfg.peek(k) is not None), None)
    if n is not None and (not isinstance(n, int) or isinstance(n, bool) or not 0 < n <= 4096):
        raise ConfigError("num_hidden_layers", f"must be an integer in [1, 4096], got {n!r}")
    return n


def _unused_fields(config, reads, known, prefix=""):
    """Dotted names of the fields of `config` neither read, known not to
    apply, nor in UNAFFECTED."""
    out = []
    for key, value in config.items():
        name = prefix + key
        if value is None or name in known or key in UNAFFECTED or key.startswith("_"):
            continue
        if name not in reads:
            out.append(name)
        elif isinstance(value, dict):
            out += _unused_fields(value, reads, known, name + ".")
    return out



def _get(cfg, *names, default=None, required=True):
    for n in names:
        if n in cfg and cfg[n] is not None:
            return cfg[n]
    if required and default is None:
        raise ConfigError(names[0], "missing")
    return default


def _positive_int(cfg, *names, default=None):
    v = _get(cfg, *names, default=default)
    if not isinstance(v, int) or isinstance(v, bool) or not 0 < v < 2**31:
        raise ConfigError(names[0], f"must be a positive integer below 2^31, got {v!r}")
    return v


def _number(cfg, *names, default=None, low=0.0, low_open=True):
    """A finite number (not a bool) above `low` (or at least, low_open=False)."""
    v = _get(cfg, *names, default=default)
    if (not _is_number(v) or not math.isfinite(v)
            or (v <= low if low_open else v < low)):
        given = next((n for n in names if cfg.get(n) is not None), names[0])
        raise ConfigError(given, f"must be a finite number {'>' if low_open else '>='} "
                          f"{low:g}, got {v!r}")
    return float(v)


def _family(cfg):
    mt = cfg.get("model_type", "")
    if mt is None:
        mt = ""
    if not isinstance(mt, str):
        raise ConfigError("model_type", f"must be a string, got {mt!r}")
    if "kv_lora_rank" in cfg or mt.startswith("deepseek"):
        if mt and mt not in ("deepseek_v2", "deepseek_v3"):
            raise ConfigError("model_type", f"{mt!r} with kv_lora_rank: posenc builds "
                              "multi-head latent attention for deepseek_v2 and deepseek_v3")
        return "mla"
    if mt == "transfo-xl":
        return "txl"
    if mt == "t5" or "relative_attention_num_buckets" in cfg:
        if mt and mt not in ("t5", "mt5"):
            raise ConfigError("model_type", f"{mt!r} with relative_attention_num_buckets: "
                              "posenc builds T5's (t5, mt5) relative attention")
        return "t5"
    if mt == "bloom":
        return "alibi"
    if mt == "mpt":
        ac = cfg.get("attn_config")
        if ac is not None and not isinstance(ac, dict):
            raise ConfigError("attn_config", f"must be an object, got {ac!r}")
        if not _flag(ac or {}, "alibi", False, "attn_config.alibi"):
            raise ConfigError("attn_config.alibi", "MPT without ALiBi has no position "
                              "encoding posenc builds")
        return "alibi"
    if any(k in cfg for k in ("rope_theta", "rotary_emb_base", "rope_scaling",
                              "partial_rotary_factor", "rotary_pct")):
        if mt and mt not in _ROPE_TYPES:
            raise ConfigError("model_type", f"{mt!r} is not a RoPE model posenc builds ("
                              + ", ".join(sorted(_ROPE_TYPES)) + ")")
        return "rope"
    raise ConfigError("model_type", f"{mt!r} has no position encoding posenc knows "
                      "(no rope_theta/rope_scaling, ALiBi, T5 buckets or kv_lora_rank)")


def rope_scaling(cfg):
    """The posenc scaling dict ({"kind": ..., parameters}) of a config, or
    None for plain RoPE; values the rope op would reject raise ConfigError."""
    sc = _read_scaling(cfg)
    if sc is None:
        return None
    for key, v in sc.items():
        if key in ("kind", "truncate"):
            continue
        lists = key in ("short_factor", "long_factor")
        vals = v if lists and isinstance(v, list) else [v]
        if (isinstance(v, list) != lists
                or any(not _is_number(x) or not math.isfinite(x) for x in vals)):
            what = "a list of finite numbers" if lists else "a finite number"
            raise ConfigError(f"rope_scaling.{_SCALING_FIELDS.get(key, key)}",
                              f"must be {what}, got {v!r}")
    if not isinstance(sc.get("truncate", True), bool):
        raise ConfigError("rope_scaling.truncate", f"must be true or false, got "
                          f"{sc['truncate']!r}")
    if sc["kind"] == "longrope":
        if sc["original"] < 2 or sc["original"] > sc["max_positions"]:
            raise ConfigError("original_max_position_embeddings",
                              f"({sc['original']}) must be in [2, max_position_embeddings "
                              f"({sc['max_positions']})]")
    if sc["kind"] != "linear" and sc.get("factor", 1.0) < 1.0:
        raise ConfigError("rope_scaling.factor", f"({sc['factor']}) must be >= 1 for "
                          f"{sc['kind']} scaling")
    for key in ("beta_fast", "beta_slow", "attention_factor", "low_freq_factor"):
        if key in sc and sc[key] <= 0:
            raise ConfigError(f"rope_scaling.{key}", f"({sc[key]}) must be positive")
    for key in ("mscale", "mscale_all_dim"):
        if key in sc and sc[key] < 0:
            raise ConfigError(f"rope_scaling.{key}", f"({sc[key]}) must be >= 0")
    if sc.get("beta_fast", 32.0) <= sc.get("beta_slow", 1.0) and sc["kind"] == "yarn":
        raise ConfigError("rope_scaling.beta_fast", f"({sc.get('beta_fast', 32.0)}) must "
                          f"exceed beta_slow ({sc.get('beta_slow', 1.0)})")
    for key in ("short_factor", "long_factor"):
        if key in sc and min(sc[key]) <= 0:
            raise ConfigError(f"rope_scaling.{key}", "entries must be positive")
    return {k: (v if k in ("kind", "truncate", "original", "max_positions")
                else [float(x) for x in v] if isinstance(v, list) else float(v))
            for k, v in sc.items()}


# Names in the config of the posenc scaling parameters.
_SCALING_FIELDS = {"original": "original_max_position_embeddings",
                   "max_positions": "max_position_embeddings"}


def _read_scaling(cfg):
    rs = cfg.get("rope_scaling")
    if rs is None:
        return None
    if not isinstance(rs, dict):
        raise ConfigError("rope_scaling", f"must be an object or null, got {rs!r}")
    if not rs:
        return None
    kind = rs.get("rope_type") if "rope_type" in rs else rs.get("type")
    if "rope_type" in rs and "type" in rs and rs.get("type") != kind and \
            {kind, rs.get("type")} != {"default", "mrope"}:
        raise ConfigError("rope_scaling.type", f"({rs.get('type')!r}) differs from rope_type "
                          f"({kind!r})")

    def factor():
        f = rs.get("factor")
        if not isinstance(f, (int, float)) or isinstance(f, bool) or f <= 0:
            raise ConfigError("rope_scaling.factor", f"must be a positive number, got {f!r}")
        return float(f)

    def original(from_max_pos=False):
        # Fields are read only where they are used, for the unused-field check.
        o = rs.get("original_max_position_embeddings")
        top = cfg.get("original_max_position_embeddings")
        if o is not None and top is not None and o != top:
            raise ConfigError("original_max_position_embeddings", f"({top!r}) differs from "
                              f"rope_scaling.original_max_position_embeddings ({o!r})")
        if o is None:
            o = top
        if o is None and from_max_pos:
            o = cfg.get("max_position_embeddings")
        if not isinstance(o, int) or isinstance(o, bool) or not 0 < o < 2**31:
            raise ConfigError("rope_scaling.original_max_position_embeddings",
                              f"must be a positive integer, got {o!r}")
        return o

    if kind is None:
        # transformers would take it as "default" and drop every field.
        raise ConfigError("rope_scaling.rope_type", f"missing from {rs!r}: its fields "
                          f"would be ignored")
    if kind in ("default", "mrope"):  # M-RoPE's frequencies are plain
        return None
    if kind == "linear":
        return {"kind": "linear", "factor": factor()}
    if kind == "dynamic":
        return {"kind": "dynamic", "factor": factor(), "original": original(True)}
    if kind == "yarn":
        sc = {"kind": "yarn", "factor": factor(), "original": original(True)}
        for key in ("beta_fast", "beta_slow", "mscale", "mscale_all_dim", "attention_factor"):
            if rs.get(key) is not None:
                sc[key] = rs[key]
        if rs.get("truncate") is not None:
            sc["truncate"] = rs["truncate"]
        return sc
    if kind == "llama3":
        sc = {"kind": "llama3", "factor": factor(), "original": original()}
        for key in ("low_freq_factor", "high_freq_factor"):
            if rs.get(key) is None:
                raise ConfigError(f"rope_scaling.{key}", "missing")
            sc[key] = rs[key]
        if _is_number(sc["high_freq_factor"]) and _is_number(sc["low_freq_factor"]) and \
                sc["high_freq_factor"] < sc["low_freq_factor"]:
            raise ConfigError("rope_scaling.high_freq_factor",
                              f"({sc['high_freq_factor']}) must be at least low_freq_factor "
                              f"({sc['low_freq_factor']})")
        return sc
    if kind in ("longrope", "su"):
        sc = {"kind": "longrope", "original": original(),
              "max_positions": _positive_int(cfg, "max_position_embeddings")}
        for key in ("short_factor", "long_factor"):
            v = rs.get(key)
            if not isinstance(v, list) or not v:
                raise ConfigError(f"rope_scaling.{key}", "must be a non-empty list")
            sc[key] = list(v)
        if rs.get("attention_factor") is not None:
            sc["attention_factor"] = rs["attention_factor"]
        return sc
    raise ConfigError("rope_scaling.rope_type", f"{kind!r} is not supported "
                      "(default, linear, dynamic, yarn, llama3, longrope)")


def _is_number(x):
    return isinstance(x, (int, float)) and not isinstance(x, bool)


def _mlir_float(x, what="value"):
    """A float literal MLIR parses (it needs a '.': 1e-05 -> 1.0e-05);
    `what` names the value in the ValueError for one that is not finite or
    does not fit a float."""
    try:
        x = float(x)
    except OverflowError:
        raise ValueError(f"{what} ({x}) does not fit a float") from None
    if not math.isfinite(x):
        raise ValueError(f"{what} must be finite, got {x}")
    r = repr(x)
    mant, _, exp = r.partition("e")
    return r if "." in mant or not exp else f"{mant}.0e{exp}"


def scaling_attribute(sc):
    """The `#posenc.rope_scaling<...>` text of a posenc scaling dict
    ({"kind": ..., parameters}, as posenc.reference takes it), or None for
    plain RoPE. Values: bools, numbers (numpy's too), lists or arrays of
    numbers; `original` and `max_positions` are integers."""
    if sc is None:
        return None
    parts = [sc["kind"]]
    for key, val in sc.items():
        if key == "kind":
            continue
        what = f"scaling[{key!r}]"
        if isinstance(val, bool):
            parts.append(f"{key} = {'true' if val else 'false'}")
        elif isinstance(val, (list, tuple, np.ndarray)):
            parts.append(f"{key} = [" + ", ".join(_mlir_float(v, what) for v in val) + "]")
        elif not isinstance(val, (int, float, np.integer, np.floating)):
            raise TypeError(f"{what} must be a number, bool or list, got {val!r}")
        elif key in ("original", "max_positions") and isinstance(val, (int, np.integer)):
            parts.append(f"{key} = {int(val)}")
        else:
            parts.append(f"{key} = {_mlir_float(val, what)}")
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
    attrs = [f"base = {_mlir_float(base)} : f64"]
    if rotary_dim is not None:
        attrs.append(f"rotary_dim = {rotary_dim} : i64")
    if sc is not None:
        attrs.append("scaling = " + scaling_attribute(sc))
    if attention_factor is not None:
        attrs.append(f"attention_factor = {_mlir_float(attention_factor)} : f64")
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

    def _generic(self, ins, out, maps, iters, args, body):
        """linalg.generic over `ins` [(value, type)] into `out` (value,
        type); `args` names the block arguments, `body` ends with the value
        yielded."""
        r = self.fresh("g")
        maps_txt = ", ".join(f"affine_map<{m}>" for m in maps)
        iters_txt = ", ".join(f'"{i}"' for i in iters)
        self.emit(f"{r} = linalg.generic {{indexing_maps = [{maps_txt}], iterator_types = "
                  f"[{iters_txt}]}} ins({', '.join(v for v, _ in ins)} : "
                  f"{', '.join(t for _, t in ins)}) outs({out[0]} : {out[1]}) {{")
        self.emit(f"^bb0({args}):")
        *stmts, result = body
        self.lines += ["  " + st for st in stmts] + [f"  linalg.yield {result} : f32",
                                                     f"}} -> {out[1]}"]
        return r

    def head_rms_norm(self, x, shape, w, eps, offset=False):
        """Per-head RMSNorm of x [B, S, H, D] over D (QK-norm): x /
        sqrt(mean(x^2) + eps), times w [D] (1 + w with `offset`, Gemma's),
        or no weight when w is None (Llama 4's L2 norm)."""
        b, s, h, d = shape
        e, z = self.fresh("e"), self.fresh("z")
        self.emit(f"{e} = tensor.empty() : {_t((b, s, h))}")
        self.emit(f"{z} = linalg.fill ins(%zero : f32) outs({e} : {_t((b, s, h))}) -> "
                  f"{_t((b, s, h))}")
        x4, x3 = "(b, s, h, d) -> (b, s, h, d)", "(b, s, h, d) -> (b, s, h)"
        ss = self._generic([(x, _t(shape))], (z, _t((b, s, h))), [x4, x3],
                           ["parallel"] * 3 + ["reduction"], "%a: f32, %acc: f32",
                           ["%sq = arith.mulf %a, %a : f32", "%r = arith.addf %acc, %sq : f32",
                            "%r"])
        ins = [(x, _t(shape)), (ss, _t((b, s, h)))]
        maps = [x4, x3]
        body = [f"%dim = arith.constant {_mlir_float(d)} : f32",
                f"%eps = arith.constant {float(eps):.9e} : f32",
                "%one = arith.constant 1.0 : f32",
                "%mean = arith.divf %ss, %dim : f32", "%me = arith.addf %mean, %eps : f32",
                "%rt = math.sqrt %me : f32", "%inv = arith.divf %one, %rt : f32",
                "%y = arith.mulf %a, %inv : f32"]
        args = "%a: f32, %ss: f32"
        if w is not None:
            ins.append((w, _t((d,))))
            maps.append("(b, s, h, d) -> (d)")
            args += ", %w: f32"
            body += (["%w1 = arith.addf %w, %one : f32"] if offset else []) + [
                f"%r = arith.mulf %y, {'%w1' if offset else '%w'} : f32", "%r"]
        else:
            body.append("%y")
        e2 = self.fresh("e")
        self.emit(f"{e2} = tensor.empty() : {_t(shape)}")
        return self._generic(ins, (e2, _t(shape)), maps + [x4], ["parallel"] * 4,
                             args + ", %o: f32", body)

    def temperature_tuning(self, q, shape, pos, floor_scale, attn_scale):
        """q [B, S, H, D] times log(floor((pos + 1) / floor_scale) + 1) ·
        attn_scale + 1 at its position (Llama 4's NoPE layers, in f32 as
        transformers' Llama4TextAttention)."""
        s = shape[1]
        e = self.fresh("e")
        self.emit(f"{e} = tensor.empty() : {_t(shape)}")
        x4 = "(b, s, h, d) -> (b, s, h, d)"
        return self._generic([(q, _t(shape)), (pos, _t((s,), "i64"))], (e, _t(shape)),
                             [x4, "(b, s, h, d) -> (s)", x4], ["parallel"] * 4,
                             "%a: f32, %p: i64, %o: f32",
                             ["%one = arith.constant 1.0 : f32",
                              f"%fs = arith.constant {_mlir_float(floor_scale)} : f32",
                              f"%as = arith.constant {_mlir_float(attn_scale)} : f32",
                              "%pf = arith.sitofp %p : i64 to f32",
                              "%p1 = arith.addf %pf, %one : f32",
                              "%dv = arith.divf %p1, %fs : f32", "%fl = math.floor %dv : f32",
                              "%l1 = arith.addf %fl, %one : f32", "%lg = math.log %l1 : f32",
                              "%m = arith.mulf %lg, %as : f32", "%t = arith.addf %m, %one : f32",
                              "%r = arith.mulf %a, %t : f32", "%r"])

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
                    decoder=False, entry="attention_layer", seed=0, layer=0, ignore=()):
    """Builds attention layer `layer` of `config` (a dict as in config.json;
    a multimodal config's `text_config` is read).

    seq_len/batch: the static activation shape [batch, seq_len, hidden].
    cut: {field: value} overrides (e.g. fewer heads) recorded in Layer.cuts.
    weights: "arguments" or "constants" (dense_resource blobs in the IR).
    decoder: for T5, the decoder's causal self-attention (unidirectional
    buckets) instead of the encoder's bidirectional one.
    layer: the layer index, 0 <= layer < num_hidden_layers; models whose
    layers differ (sliding and global, RoPE and NoPE) build that layer's.
    ignore: fields the caller vouches do not change attention. Any other
    field that is neither read nor in UNAFFECTED raises ConfigError."""
    if weights not in ("arguments", "constants"):
        raise ValueError(f"weights must be 'arguments' or 'constants', got {weights!r}")
    for name, v in (("seq_len", seq_len), ("batch", batch)):
        if not isinstance(v, (int, np.integer)) or isinstance(v, bool) or not 0 < v < 2**31:
            raise ValueError(f"{name} must be a positive integer below 2^31, got {v!r}")
    seq_len, batch = int(seq_len), int(batch)
    if not isinstance(entry, str) or not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_$.]*", entry):
        raise ValueError(f"entry must be a function name ([A-Za-z_][A-Za-z0-9_$.]*), got "
                         f"{entry!r}")
    if cut is not None and not isinstance(cut, dict):
        raise ValueError(f"cut must be a dict of field -> value, got {cut!r}")
    if isinstance(ignore, str) or not all(isinstance(k, str) for k in ignore):
        raise ValueError(f"ignore must be a list of field names, got {ignore!r}")
    config, reads, known, cfg = _read_config(config)
    family = _family(cfg)
    n_layers = _layer_count(cfg)
    original_layer = layer
    try:
        layer = None if isinstance(layer, bool) else operator.index(layer)
    except TypeError:
        layer = None
    if layer is None or not 0 <= layer < (n_layers or 1):
        raise ValueError(f"layer must be in [0, {n_layers or 1}) (num_hidden_layers "
                         f"{'of the config' if n_layers else 'absent: one layer'}), got "
                         f"{original_layer!r}")
    # The head dim is pinned from the published config: a cut of the head
    # count keeps every head as the model has it (hidden size too).
    cfg["_head_dim"] = _published_head_dim(family, cfg)
    cut = dict(cut or {})
    cuts = {}
    for name in list(cut):
        if name.startswith("_") or name in ("head_dim", "d_kv", "d_head") or "." in name:
            raise ConfigError(name, "cannot be cut: head dims and nested fields stay as "
                              "published")
        if name not in cfg:
            raise ConfigError(name, "cut names a field the config does not have")
        _cut(cfg, cut, cuts, name)
    em = _Emitter(weights == "arguments", np.random.default_rng(seed))
    builder = {"rope": _rope_layer, "alibi": _alibi_layer, "t5": _t5_layer,
               "mla": _mla_layer, "txl": _txl_layer}[family]
    pe, result, result_shape, reference = builder(cfg, em, batch, seq_len, decoder, layer)
    unused = [f for f in _unused_fields(config, reads, known) if f not in ignore]
    if unused:
        raise ConfigError(unused[0], f"is not used by posenc's {family} layer and not known to "
                          "leave attention unchanged (pass ignore=[...] if it does not change "
                          "attention)" + (f"; also unused: {', '.join(unused[1:])}"
                                          if len(unused) > 1 else ""))
    if layer:
        pe = f"layer {layer}: {pe}"
    return Layer(entry=entry, ir=em.module(entry, result, result_shape), pe=pe,
                 inputs=em.args, weights=em.weights, cuts=cuts, family=family,
                 _reference=reference, weights_as_arguments=weights == "arguments",
                 fields=sorted(reads - UNAFFECTED - {"_head_dim"}))


# --------------------------------------------------------------------------
# Families


def _published_head_dim(family, cfg):
    if family == "mla":
        return None
    if family == "txl":
        return _positive_int(cfg, "d_head")
    if family == "t5":
        if "d_kv" in cfg:
            return _positive_int(cfg, "d_kv")
        names = ("d_model", "hidden_size"), ("num_heads", "num_attention_heads")
    elif family == "alibi":
        names = ("hidden_size", "n_embed", "d_model"), ("n_head", "num_attention_heads", "n_heads")
    else:
        if cfg.get("head_dim") is not None:
            d = cfg["head_dim"]
            if not isinstance(d, int) or isinstance(d, bool) or not 0 < d <= 2**20 or d % 2:
                raise ConfigError("head_dim", f"must be a positive even integer up to 2^20, "
                                  f"got {d!r}")
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


def _attention(em, q, k, v, qshape, kshape, clauses="", attrs=""):
    """%attn = posenc.attention of q [B, Sq, Hq, D] and k, v [B, Sk, Hkv, D]
    with `clauses` (" bias(...) causal ...") and an attribute dict text."""
    em.emit(f"%attn_init = tensor.empty() : {_t(qshape)}")
    em.emit(f"%attn = posenc.attention {q}, {k}, {v}{clauses} outs(%attn_init){attrs} : "
            f"{_t(qshape)}, {_t(kshape)}, {_t(kshape)}, {_t(qshape)}")
    return "%attn"


def _output_projection(em, o, b, s, h, dv, hidden, bias=False):
    em.emit(f"%o2 = tensor.collapse_shape {o} [[0, 1], [2, 3]] : {_t((b, s, h, dv))} into "
            f"{_t((b * s, h * dv))}")
    wo = em.weight("w_o", (h * dv, hidden), 1.0 / math.sqrt(h * dv))
    y = em.matmul("%o2", (b * s, h * dv), wo, (h * dv, hidden))
    if bias:
        y = em.add_bias(y, (b * s, hidden), em.weight("b_o", (hidden,), 0.1), hidden)
    em.emit(f"%out = tensor.expand_shape {y} [[0, 1], [2]] output_shape [{b}, {s}, {hidden}] "
            f": {_t((b * s, hidden))} into {_t((b, s, hidden))}")
    return "%out", (b, s, hidden)


def _project_ref(x, w, bias=None):
    y = np.einsum("bsi,io->bso", x, w.astype(np.float64))
    return y if bias is None else y + bias


# model_type -> how its layers differ (see _rope_scheme). A RoPE config
# without model_type is read as Llama's.
_ROPE_TYPES = frozenset("""
llama mistral mixtral qwen2 qwen2_moe qwen3 qwen3_moe phi3 gpt_neox gemma gemma2
gemma3_text gpt_oss llama4_text smollm3 cohere2 qwen2_vl qwen2_5_vl qwen3_vl_text
""".split())
_QWEN_WINDOWS = ("qwen2", "qwen2_moe", "qwen3", "qwen3_moe", "smollm3", "qwen2_vl",
                 "qwen2_5_vl")
# Multimodal RoPE: rope_scaling's mrope_section (and Qwen3-VL's interleaving).
_MROPE_TYPES = ("qwen2_vl", "qwen2_5_vl", "qwen3_vl_text")


@dataclass
class _Scheme:
    """What attention layer `layer` of a RoPE-family config computes."""
    rope: bool  # False: a NoPE layer (SmolLM3, Llama 4's global, Cohere 2's global)
    base: float
    scaling: object  # posenc scaling dict or None
    layout: str
    window: object = None
    chunk: object = None
    softcap: object = None
    scale: object = None  # None: 1/sqrt(head_dim)
    sinks: bool = False
    qk_norm: object = None  # None, "rms", "rms_offset" (Gemma: 1 + w) or "l2" (no weight)
    qk_norm_after_rope: bool = False
    eps: float = 1e-6
    temperature: object = None  # (floor_scale, attn_scale) on Llama 4's NoPE layers
    mrope: object = None  # (mrope_section, interleaved): positions [3, S]


def _rope_base(cfg):
    base = _get(cfg, "rope_theta", "rotary_emb_base", default=10000.0)
    if not _is_number(base) or not 1.0 < base < math.inf:
        raise ConfigError("rope_theta", f"must be a finite number above 1, got {base!r}")
    return float(base)


def _positive_field(cfg, key, default=None, kind=int):
    v = cfg.get(key, default)
    ok = (isinstance(v, (int, float)) if kind is float else isinstance(v, int))
    if not ok or isinstance(v, bool) or not 0 < v < (math.inf if kind is float else 2**31):
        raise ConfigError(key, f"must be a positive {'number' if kind is float else 'integer'}, "
                          f"got {v!r}")
    return kind(v)


def _flag(cfg, key, default=False, name=None):
    v = cfg.get(key, default)
    if v is None:
        return default
    if not isinstance(v, bool) and v not in (0, 1) or isinstance(v, float):
        raise ConfigError(name or key, f"must be true or false, got {v!r}")
    return bool(v)


# Families whose layers may slide, and the window transformers uses when the
# field is absent (an explicit null turns windows off).
_WINDOW_DEFAULTS = {"mistral": 4096, "mixtral": None, "phi3": None, "gemma2": 4096,
                    "gemma3_text": 4096, "gpt_oss": 128, "cohere2": 4096, "qwen2": 4096,
                    "qwen2_moe": 4096, "qwen3": 4096, "qwen3_moe": 4096, "smollm3": None,
                    "qwen2_vl": 4096, "qwen2_5_vl": 4096}


def _window_size(cfg, mt):
    if mt not in _WINDOW_DEFAULTS:
        return None
    w = cfg.get("sliding_window", _WINDOW_DEFAULTS.get(mt))
    if w is not None and (not isinstance(w, int) or isinstance(w, bool) or not 0 < w < 2**31):
        raise ConfigError("sliding_window", f"must be a positive integer below 2^31, got {w!r}")
    if mt == "gemma2":  # an older name of the same field
        alias = cfg.get("sliding_window_size")
        if alias is not None and alias != w:
            raise ConfigError("sliding_window_size", f"({alias!r}) differs from "
                              f"sliding_window ({w!r})")
    return w


def _layer_kind(cfg, mt, layer, n_layers):
    """'sliding', 'chunked' or 'full' for layer `layer`: HF's layer_types
    when the config has it, else each family's rule."""
    if mt in _QWEN_WINDOWS:
        # transformers drops Qwen's window unless use_sliding_window, whatever
        # layer_types says.
        if not _flag(cfg, "use_sliding_window"):
            cfg.skip("sliding_window", "max_window_layers", "layer_types")
            return "full"
        if _window_size(cfg, mt) is None:
            cfg.skip("max_window_layers", "layer_types")
            return "full"
    types = cfg.get("layer_types")
    if types is not None:
        # The per-family rules below are what layer_types spells out.
        cfg.skip("sliding_window_pattern", "max_window_layers", "no_rope_layer_interval")
        if not isinstance(types, list) or len(types) != n_layers:
            raise ConfigError("layer_types", f"must list one type per layer ({n_layers}), "
                              f"got {types!r}")
        kinds = {"sliding_attention": "sliding", "chunked_attention": "chunked",
                 "full_attention": "full"}
        bad = [t for t in types if not isinstance(t, str) or t not in kinds]
        if bad:
            raise ConfigError("layer_types", f"{bad[0]!r} is not one of " + ", ".join(kinds))
        return kinds[types[layer]]
    if mt in _QWEN_WINDOWS:  # windows from layer max_window_layers on
        first = cfg.get("max_window_layers", 28)
        if not isinstance(first, int) or isinstance(first, bool) or first < 0:
            raise ConfigError("max_window_layers", f"must be a non-negative integer, got {first!r}")
        return "sliding" if layer >= first else "full"
    if mt in _WINDOW_DEFAULTS:  # not Qwen's (above)
        if _window_size(cfg, mt) is None:
            return "full"
        if mt in ("gemma2", "gpt_oss"):  # even layers slide
            return "sliding" if layer % 2 == 0 else "full"
        if mt in ("gemma3_text", "cohere2"):  # every pattern-th layer is global
            pattern = _positive_field(cfg, "sliding_window_pattern",
                                      6 if mt == "gemma3_text" else 4)
            return "sliding" if (layer + 1) % pattern else "full"
        return "sliding"
    if mt == "llama4_text":  # RoPE layers are chunked, NoPE layers global
        return "chunked" if _rope_layer_flags(cfg, n_layers)[layer] else "full"
    return "full"


def sliding_windows(config):
    """The sliding window of every layer of a RoPE-family `config` (None:
    full attention), by the rules attention_layer(layer=i) builds with."""
    config, _, _, cfg = _read_config(config)
    if _family(cfg) != "rope":
        raise ConfigError("model_type", "sliding windows are read for RoPE models only")
    mt = cfg.get("model_type", "llama") or "llama"
    n = _layer_count(cfg)
    if n is None:
        raise ConfigError("num_hidden_layers", "missing")
    out = []
    for layer in range(n):
        if _layer_kind(cfg, mt, layer, n) != "sliding":
            out.append(None)
            continue
        w = _window_size(cfg, mt)
        if w is None:
            raise ConfigError("sliding_window", f"missing for sliding layer {layer}")
        out.append(w)
    return out


def _rope_layer_flags(cfg, n_layers):
    """Per layer, whether it applies RoPE (SmolLM3's and Llama 4's
    no_rope_layers: 1 = RoPE, 0 = NoPE; default every 4th layer NoPE)."""
    flags = cfg.get("no_rope_layers")
    if flags is not None and not isinstance(flags, list):
        raise ConfigError("no_rope_layers", f"must be a list, got {flags!r}")
    if flags or cfg.get("model_type") == "smollm3" and flags is not None:
        # (Llama 4 reads an empty list as the default; SmolLM3 indexes it.)
        if (len(flags) != n_layers
                or any(f not in (0, 1) or isinstance(f, float) for f in flags)):
            raise ConfigError("no_rope_layers", f"must list 0 or 1 for each of the {n_layers} "
                              f"layers, got {flags!r}")
        cfg.skip("no_rope_layer_interval")
        return [bool(f) for f in flags]
    interval = _positive_field(cfg, "no_rope_layer_interval", 4)
    return [(i + 1) % interval != 0 for i in range(n_layers)]


def _rope_scheme(cfg, layer):
    """The _Scheme of layer `layer`. Reads every field that any layer of the
    model uses, so that a field for another layer is still validated."""
    mt = cfg.get("model_type", "llama") or "llama"
    n_layers = cfg.peek("num_hidden_layers") or 1  # validated by attention_layer
    kind = _layer_kind(cfg, mt, layer, n_layers)
    window = chunk = None
    if cfg.prefix + "sliding_window" not in cfg.known:
        w = _window_size(cfg, mt)
        if kind == "sliding":
            if w is None:
                raise ConfigError("sliding_window", f"missing for sliding layer {layer}")
            window = w
    if mt == "llama4_text":
        c = _positive_field(cfg, "attention_chunk_size", 8192)
        chunk = c if kind == "chunked" else None
    elif kind == "chunked":
        raise ConfigError("layer_types", f"layer {layer} is chunked; posenc builds chunked "
                          "attention for Llama 4 (attention_chunk_size) only")

    if mt in ("llama4_text", "smollm3"):
        rope = _rope_layer_flags(cfg, n_layers)[layer]
    elif mt == "cohere2":  # Command R7B: RoPE on the sliding layers only
        rope = kind == "sliding"
    else:
        rope = True
    base = _rope_base(cfg)
    scaling = rope_scaling(cfg)
    if mt == "gemma3_text":  # local layers: their own base, no scaling
        local = _positive_field(cfg, "rope_local_base_freq", 10000.0, float)
        if kind == "sliding":
            base, scaling = local, None
    layout = "half"
    if mt in ("llama4_text", "cohere2"):  # complex / GPT-J pairs
        layout = "interleaved"
        if mt == "cohere2":
            for key, plain in (("position_embedding_type", "rope_gptj"),
                               ("order_of_interleaved_layers", "local_attn_first")):
                if cfg.get(key, plain) != plain:
                    raise ConfigError(key, f"{cfg.get(key)!r}: Cohere 2 layers are built "
                                      f"with {plain!r} only")
    s = _Scheme(rope=rope, base=base, scaling=scaling, layout=layout, window=window,
                chunk=chunk)
    if mt in _MROPE_TYPES:
        rs = cfg.get("rope_scaling") or {}
        section = rs.get("mrope_section")
        if (not isinstance(section, list) or not section
                or any(not isinstance(n, int) or isinstance(n, bool) or n <= 0
                       for n in section)):
            raise ConfigError("rope_scaling.mrope_section", f"{mt} needs a list of positive "
                              f"pair counts, got {section!r}")
        interleaved = _flag(rs, "mrope_interleaved", mt == "qwen3_vl_text",
                            "rope_scaling.mrope_interleaved")
        if len(section) != 3:  # transformers' positions are (t, h, w)
            raise ConfigError("rope_scaling.mrope_section", f"needs 3 sections (temporal, "
                              f"height, width), got {section!r}")
        s.mrope = (list(section), interleaved)

    if mt in ("gemma2", "gemma3_text"):
        s.scale = _positive_field(cfg, "query_pre_attn_scalar", 256, float) ** -0.5
    cap = None
    if mt in ("gemma2", "gemma3_text"):
        cap = cfg.get("attn_logit_softcapping", 50.0 if mt == "gemma2" else None)
    if cap is not None:
        if not isinstance(cap, (int, float)) or isinstance(cap, bool) or not 0 < cap < math.inf:
            raise ConfigError("attn_logit_softcapping", f"must be a positive number, got {cap!r}")
        s.softcap = float(cap)
    s.sinks = mt == "gpt_oss"
    if mt in ("qwen3", "qwen3_moe", "qwen3_vl_text"):
        s.qk_norm = "rms"
    elif mt == "gemma3_text":
        s.qk_norm = "rms_offset"
    elif mt == "llama4_text":
        if _flag(cfg, "use_qk_norm") and rope:  # after RoPE, on RoPE layers
            s.qk_norm, s.qk_norm_after_rope = "l2", True
        tuning = cfg.get("attn_temperature_tuning", True)  # a bool, or 4 in Scout's config
        if not isinstance(tuning, (bool, int)) or (not isinstance(tuning, bool) and tuning < 0):
            raise ConfigError("attn_temperature_tuning", f"must be true, false or a "
                              f"non-negative integer, got {tuning!r}")
        if tuning:
            fs = _positive_field(cfg, "floor_scale", 8192, float)
            a = cfg.get("attn_scale", 0.1)
            if not isinstance(a, (int, float)) or isinstance(a, bool) or not 0 <= a < math.inf:
                raise ConfigError("attn_scale", f"must be a non-negative number, got {a!r}")
            if not rope:  # temperature tuning is for the NoPE layers
                s.temperature = (fs, float(a))
        else:
            cfg.skip("floor_scale", "attn_scale")
    if s.qk_norm:
        s.eps = _positive_field(cfg, "rms_norm_eps", 1e-6, float)
    else:
        cfg.skip("rms_norm_eps")
    cfg.skip("max_position_embeddings", "original_max_position_embeddings")
    if not rope:
        cfg.skip("rope_theta", "rope_scaling", "partial_rotary_factor", "rotary_pct",
                 "rope_local_base_freq", "max_position_embeddings",
                 "original_max_position_embeddings")
    return s


def _rope_layer(cfg, em, b, s, _decoder, layer):
    hidden = _positive_int(cfg, "hidden_size", "n_embd", "d_model")
    h, hkv = _heads(cfg, ("num_attention_heads", "n_head"), ("num_key_value_heads",))
    d = cfg["_head_dim"]
    frac = _number(cfg, "partial_rotary_factor", "rotary_pct", default=1.0)
    if not 0.0 < frac <= 1.0:
        raise ConfigError("partial_rotary_factor", f"must be in (0, 1], got {frac}")
    rotary = int(d * frac)
    rotary -= rotary % 2
    if rotary <= 0:
        raise ConfigError("partial_rotary_factor", f"rotates no pair of head_dim {d}")
    sch = _rope_scheme(cfg, layer)
    if sch.mrope and sum(sch.mrope[0]) != rotary // 2:
        raise ConfigError("rope_scaling.mrope_section", f"sums to {sum(sch.mrope[0])} pairs; "
                          f"the rotary dim {rotary} has {rotary // 2}")
    sc = sch.scaling
    if sc is not None and sc["kind"] == "longrope":
        for key in ("short_factor", "long_factor"):
            if len(sc[key]) != rotary // 2:
                raise ConfigError(f"rope_scaling.{key}", f"has {len(sc[key])} entries; "
                                  f"the rotary dim {rotary} needs {rotary // 2}")
    ref_sc, attention_factor = _rope_attr_sc(sc)
    mt = cfg.get("model_type", "llama") or "llama"
    # q/k/v biases: Qwen2's and GPT-NeoX's by default; the output
    # projection's: GPT-NeoX's, and attention_bias's where the model applies
    # it to o_proj too (Llama, Gemma, gpt-oss, ...; not Qwen2 or Phi-3).
    # Qwen2's q/k/v biases and Mistral's and Phi-3's none are fixed in
    # transformers (attention_bias is not read there); the others follow
    # attention_bias (GPT-NeoX: default true), output projection included.
    qwen2_like = ("qwen2", "qwen2_moe", "qwen2_vl", "qwen2_5_vl")
    if mt in qwen2_like + ("mistral", "mixtral", "phi3"):
        cfg.skip("attention_bias")
        qkv_bias, o_bias = mt in qwen2_like, False
    else:
        qkv_bias = _flag(cfg, "attention_bias", mt == "gpt_neox")
        o_bias = qkv_bias

    x2, x2s = _common_input(em, cfg, b, s, hidden)
    pos_shape = (len(sch.mrope[0]), s) if sch.mrope else (s,)
    pos = em.arg("pos", pos_shape, "i64")
    q, k, v = _qkv(em, x2, x2s, h, hkv, d, qkv_bias, b, s)
    norm_w = {}
    if sch.qk_norm in ("rms", "rms_offset"):
        norm_w = {n: em.weight(f"{n}_norm", (d,), 0.5) for n in "qk"}

    def qk_norm(t, n, heads):
        return em.head_rms_norm(t, (b, s, heads, d), norm_w.get(n), sch.eps,
                                offset=sch.qk_norm == "rms_offset")

    if sch.qk_norm and not sch.qk_norm_after_rope:
        q, k = qk_norm(q, "q", h), qk_norm(k, "k", hkv)
    if sch.rope:
        attr_text = _rope_attr_text(sch.base, rotary if rotary != d else None, ref_sc,
                                    attention_factor)
        if sch.mrope:
            section, interleaved = sch.mrope
            attr_text = (attr_text[:-1] + ", mrope_section = array<i64: "
                         + ", ".join(map(str, section)) + ">"
                         + (", mrope_interleaved" if interleaved else "") + "}")
        rotated = []
        for name, t, n in (("qr", q, h), ("kr", k, hkv)):
            em.emit(f"%{name} = posenc.rope {t}, {pos} layout {sch.layout}{attr_text} : "
                    f"{_t((b, s, n, d))}, {_t(pos_shape, 'i64')}")
            rotated.append(f"%{name}")
        q, k = rotated
    if sch.qk_norm and sch.qk_norm_after_rope:
        q, k = qk_norm(q, "q", h), qk_norm(k, "k", hkv)
    if sch.temperature:
        q = em.temperature_tuning(q, (b, s, h, d), pos, *sch.temperature)
    sinks = em.weight("sinks", (h,), 1.0) if sch.sinks else None

    clauses = ""
    if sinks:
        clauses += f" sinks({sinks} : {_t((h,))})"
    if sch.softcap is not None:
        clauses += f" softcap({_mlir_float(sch.softcap)})"
    clauses += " causal"
    if sch.window:
        clauses += f" window({sch.window})"
    if sch.chunk:
        clauses += f" chunk({sch.chunk})"
    attrs = f" {{scale = {_mlir_float(sch.scale)} : f64}}" if sch.scale is not None else ""
    attn = _attention(em, q, k, v, (b, s, h, d), (b, s, hkv, d), clauses, attrs)
    out, shape = _output_projection(em, attn, b, s, h, d, hidden, o_bias)

    def reference(a):
        x = a["x"].astype(np.float64)
        proj = {n: _project_ref(x, a[f"w_{n}"], a.get(f"b_{n}")) for n in "qkv"}
        qh = proj["q"].reshape(b, s, h, d)
        kh = proj["k"].reshape(b, s, hkv, d)
        vh = proj["v"].reshape(b, s, hkv, d)

        def norm(t, n):
            y = t / np.sqrt(np.mean(t * t, axis=-1, keepdims=True) + sch.eps)
            w = a.get(f"{n}_norm")
            if w is None:
                return y
            w = w.astype(np.float64)
            return y * (1.0 + w if sch.qk_norm == "rms_offset" else w)

        if sch.qk_norm and not sch.qk_norm_after_rope:
            qh, kh = norm(qh, "q"), norm(kh, "k")
        if sch.rope:
            kw = dict(base=sch.base, rotary_dim=rotary, layout=sch.layout, scaling=ref_sc,
                      attention_factor=attention_factor)
            if sch.mrope:
                kw.update(mrope_section=sch.mrope[0], mrope_interleaved=sch.mrope[1])
            qh, kh = ref.rope(qh, a["pos"], **kw), ref.rope(kh, a["pos"], **kw)
        if sch.qk_norm and sch.qk_norm_after_rope:
            qh, kh = norm(qh, "q"), norm(kh, "k")
        if sch.temperature:
            fs, scale = sch.temperature
            p = np.asarray(a["pos"], np.float64)
            qh = qh * (np.log(np.floor((p + 1.0) / fs) + 1.0) * scale + 1.0)[None, :, None, None]
        o = ref.attention(qh, kh, vh, causal=True, window=sch.window, chunk=sch.chunk,
                          softcap=sch.softcap, scale=sch.scale, sinks=a.get("sinks"))
        y = o.reshape(b, s, h * d) @ a["w_o"].astype(np.float64)
        return y + a["b_o"] if o_bias else y

    if sch.rope:
        kind = sc["kind"] if sc else "plain"
        pe = f"RoPE {kind}" + (f" x{sc['factor']:g}" if sc and "factor" in sc else "")
        if sch.layout != "half":
            pe += f" ({sch.layout})"
        if sch.mrope:
            pe += f", M-RoPE {sch.mrope[0]}" + (" interleaved" if sch.mrope[1] else "")
        if rotary != d:
            pe += f", rotary {rotary}/{d}"
    else:
        pe = "NoPE"
    if hkv != h:
        pe += f", GQA {h}/{hkv}"
    extras = [f"window {sch.window}" if sch.window else None,
              f"chunk {sch.chunk}" if sch.chunk else None,
              f"softcap {sch.softcap:g}" if sch.softcap is not None else None,
              "sinks" if sch.sinks else None, "QK-norm" if sch.qk_norm else None,
              "temperature tuning" if sch.temperature else None,
              f"scale {sch.scale:.4g}" if sch.scale is not None else None]
    pe += "".join(f", {e}" for e in extras if e)
    return pe, out, shape, reference


def _alibi_layer(cfg, em, b, s, _decoder, _layer):
    hidden = _positive_int(cfg, "hidden_size", "n_embed", "d_model")
    h, _ = _heads(cfg, ("n_head", "num_attention_heads", "n_heads"))
    d = cfg["_head_dim"]
    ac = cfg.get("attn_config") or {}
    max_bias = ac.get("alibi_bias_max", 8.0)
    if not _is_number(max_bias) or not 0 < max_bias < math.inf:
        raise ConfigError("attn_config.alibi_bias_max", f"must be a positive finite number, "
                          f"got {max_bias!r}")
    max_bias = float(max_bias)
    if cfg.get("model_type") == "bloom":  # BLOOM's projections have biases
        bias = True
    else:  # MPT: biases unless no_bias; the variants posenc does not build are named
        bias = not _flag(cfg, "no_bias", True)
        checks = (("attn_type", "multihead_attention"), ("clip_qkv", None), ("qk_ln", False),
                  ("softmax_scale", None), ("prefix_lm", False))
        for key, plain in checks:
            if ac.get(key, plain) not in (plain, None if plain is False else plain):
                raise ConfigError(f"attn_config.{key}", f"{ac.get(key)!r}: MPT layers are "
                                  f"built with {key} {plain!r} only")
        ac.skip("attn_impl", "attn_pdrop", "attn_uses_sequence_id", "alibi")
    x2, x2s = _common_input(em, cfg, b, s, hidden)
    pos = em.arg("pos", (s,), "i64")
    q, k, v = _qkv(em, x2, x2s, h, h, d, bias, b, s)
    bt = _t((h, s, s))
    em.emit(f"%bias = posenc.alibi_bias {pos}, {pos} mode causal {{num_heads = {h} : i64, "
            f"max_bias = {_mlir_float(max_bias)} : f64}} : {_t((s,), 'i64')}, {_t((s,), 'i64')} -> {bt}")
    attn = _attention(em, q, k, v, (b, s, h, d), (b, s, h, d), f" bias(%bias : {bt}) causal")
    out, shape = _output_projection(em, attn, b, s, h, d, hidden, bias)

    def reference(a):
        x = a["x"].astype(np.float64)
        qh, kh, vh = (_project_ref(x, a[f"w_{n}"], a.get(f"b_{n}")).reshape(b, s, h, d)
                      for n in "qkv")
        bias_t = ref.alibi_bias(a["pos"], a["pos"], h, max_bias=max_bias)
        o = ref.attention(qh, kh, vh, bias=bias_t, causal=True)
        y = o.reshape(b, s, h * d) @ a["w_o"].astype(np.float64)
        return y + a["b_o"] if bias else y

    return f"ALiBi, {h} heads, max_bias {max_bias:g}", out, shape, reference


def _t5_layer(cfg, em, b, s, decoder, _layer):
    hidden = _positive_int(cfg, "d_model", "hidden_size")
    h = _positive_int(cfg, "num_heads", "num_attention_heads")
    d = cfg["_head_dim"]
    nb = _positive_int(cfg, "relative_attention_num_buckets", default=32)
    md = _positive_int(cfg, "relative_attention_max_distance", default=128)
    bidirectional = not decoder
    if nb < (4 if bidirectional else 2) or (bidirectional and nb % 2):
        raise ConfigError("relative_attention_num_buckets",
                          f"({nb}) must be {'even and >= 4 for bidirectional' if bidirectional else '>= 2 for unidirectional'} buckets")
    if md > 1 << 20:
        raise ConfigError("relative_attention_max_distance", f"({md}) must be at most 2^20")
    # The op's bound: distances below max_exact have a bucket each, the
    # log-spaced rest divide by ln(max_distance / max_exact).
    max_exact = (nb // 2 if bidirectional else nb) // 2
    if md <= max_exact:
        raise ConfigError("relative_attention_max_distance",
                          f"({md}) must exceed the exact-bucket range ({max_exact}) "
                          f"of relative_attention_num_buckets ({nb})")
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
    attn = _attention(em, q, k, v, (b, s, h, d), (b, s, h, d), f" bias(%bias : {bt}){causal}",
                      " {scale = 1.0 : f64}")
    out, shape = _output_projection(em, attn, b, s, h, d, hidden)

    def reference(a):
        x = a["x"].astype(np.float64)
        qh, kh, vh = (_project_ref(x, a[f"w_{n}"]).reshape(b, s, h, d) for n in "qkv")
        bias_t = ref.rel_bias(a["rel_table"], a["pos"], a["pos"], "t5", nb, md,
                              bidirectional=bidirectional)
        o = ref.attention(qh, kh, vh, bias=bias_t, scale=1.0, causal=decoder)
        return o.reshape(b, s, h * d) @ a["w_o"].astype(np.float64)

    which = "decoder, causal" if decoder else "encoder"
    return f"T5 buckets {nb}/{md} ({which})", out, shape, reference


def mla_softmax_scale(dn, dr, sc):
    """DeepSeek's softmax scale: 1/sqrt(Dn + Dr), times mscale(f,
    mscale_all_dim)^2 under YaRN (`sc`: posenc.models.rope_scaling's dict)."""
    scale = 1.0 / math.sqrt(dn + dr)
    if sc and sc["kind"] == "yarn" and sc.get("mscale_all_dim"):
        m = 0.1 * sc["mscale_all_dim"] * math.log(sc["factor"]) + 1.0
        scale *= m * m
    return scale


def _mla_layer(cfg, em, b, s, _decoder, _layer):
    hidden = _positive_int(cfg, "hidden_size")
    h = _positive_int(cfg, "num_attention_heads")
    c = _positive_int(cfg, "kv_lora_rank")
    dn = _positive_int(cfg, "qk_nope_head_dim")
    dr = _positive_int(cfg, "qk_rope_head_dim")
    dv = _positive_int(cfg, "v_head_dim")
    if dr % 2:
        raise ConfigError("qk_rope_head_dim", f"({dr}) must be even")
    q_rank = cfg.get("q_lora_rank")
    if q_rank is not None and (not isinstance(q_rank, int) or isinstance(q_rank, bool)
                               or not 0 <= q_rank < 2**31):
        raise ConfigError("q_lora_rank", f"must be null, 0 or a positive integer, got {q_rank!r}")
    cfg.skip("num_key_value_heads")  # the latent is shared by every head
    cfg.skip("max_position_embeddings", "original_max_position_embeddings")
    base = _rope_base(cfg)
    sc = rope_scaling(cfg)
    ref_sc, attention_factor = _rope_attr_sc(sc)
    scale = mla_softmax_scale(dn, dr, sc)

    # DeepSeek's q_a_layernorm (on the query latent) and kv_a_layernorm (on
    # the KV latent, not on the rope key): RMSNorm with weight.
    eps = _positive_field(cfg, "rms_norm_eps", 1e-6, float)
    x2, x2s = _common_input(em, cfg, b, s, hidden)
    pos = em.arg("pos", (s,), "i64")
    if q_rank:
        wdq = em.weight("w_dq", (hidden, q_rank), 1.0 / math.sqrt(hidden))
        cq = em.matmul(x2, x2s, wdq, (hidden, q_rank))
        em.emit(f"%cq4 = tensor.expand_shape {cq} [[0, 1, 2], [3]] output_shape "
                f"[{b}, {s}, 1, {q_rank}] : {_t((b * s, q_rank))} into {_t((b, s, 1, q_rank))}")
        qn = em.head_rms_norm("%cq4", (b, s, 1, q_rank), em.weight("q_norm", (q_rank,), 0.5), eps)
        em.emit(f"%cqn = tensor.collapse_shape {qn} [[0, 1, 2], [3]] : {_t((b, s, 1, q_rank))} "
                f"into {_t((b * s, q_rank))}")
        q = em.project("%cqn", (b * s, q_rank), "q", h * (dn + dr), h, dn + dr, False, b, s)
    else:
        q = em.project(x2, x2s, "q", h * (dn + dr), h, dn + dr, False, b, s)
    kv = em.project(x2, x2s, "kv", c + dr, 1, c + dr, False, b, s)
    qt, kvt = _t((b, s, h, dn + dr)), _t((b, s, 1, c + dr))
    em.emit(f"%q_nope = tensor.extract_slice {q}[0, 0, 0, 0] [{b}, {s}, {h}, {dn}] [1, 1, 1, 1] "
            f": {qt} to {_t((b, s, h, dn))}")
    em.emit(f"%q_pe = tensor.extract_slice {q}[0, 0, 0, {dn}] [{b}, {s}, {h}, {dr}] [1, 1, 1, 1] "
            f": {qt} to {_t((b, s, h, dr))}")
    em.emit(f"%c_kv4 = tensor.extract_slice {kv}[0, 0, 0, 0] [{b}, {s}, 1, {c}] [1, 1, 1, 1] "
            f": {kvt} to {_t((b, s, 1, c))}")
    kvn = em.head_rms_norm("%c_kv4", (b, s, 1, c), em.weight("kv_norm", (c,), 0.5), eps)
    em.emit(f"%c_kv = tensor.collapse_shape {kvn} [[0], [1], [2, 3]] : {_t((b, s, 1, c))} "
            f"into {_t((b, s, c))}")
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
            f"{{scale = {_mlir_float(scale)} : f64}} : {_t((b, s, h, dn))}, {_t((b, s, h, dr))}, "
            f"{_t((b, s, c))}, {_t((b, s, dr))}, {_t((h, dn, c))}, {_t((h, dv, c))} -> "
            f"{_t((b, s, h, dv))}")
    out, shape = _output_projection(em, "%attn", b, s, h, dv, hidden)

    def reference(a):
        def rms(t, w):
            return t / np.sqrt(np.mean(t * t, axis=-1, keepdims=True) + eps) * w.astype(np.float64)

        x = a["x"].astype(np.float64)
        xq = rms(_project_ref(x, a["w_dq"]), a["q_norm"]) if q_rank else x
        qh = _project_ref(xq, a["w_q"]).reshape(b, s, h, dn + dr)
        kvh = _project_ref(x, a["w_kv"]).reshape(b, s, c + dr)
        kvh = np.concatenate([rms(kvh[..., :c], a["kv_norm"]), kvh[..., c:]], axis=-1)
        kw = dict(base=base, layout="interleaved", scaling=ref_sc,
                  attention_factor=attention_factor)
        qr = ref.rope(qh[..., dn:], a["pos"], **kw)
        kr = ref.rope(kvh[:, :, None, c:], a["pos"], **kw)[:, :, 0, :]
        o = ref.mla_absorb(qh[..., :dn], qr, kvh[..., :c], kr, a["w_uk"], a["w_uv"],
                           scale=scale, causal=True)
        return o.reshape(b, s, h * dv) @ a["w_o"].astype(np.float64)

    pe = f"MLA (latent {c}) + RoPE " + (sc["kind"] if sc else "plain") + (
        f" x{sc['factor']:g}" if sc and "factor" in sc else "")
    return pe, out, shape, reference


def _iota(em, n, offset):
    """An i64 tensor [n] of offset, offset + 1, ..."""
    r, e = em.fresh("iota"), em.fresh("e")
    em.emit(f"{e} = tensor.empty() : {_t((n,), 'i64')}")
    em.emit(f"{r} = linalg.generic {{indexing_maps = [affine_map<(i) -> (i)>], iterator_types = "
            f"[\"parallel\"]}} outs({e} : {_t((n,), 'i64')}) {{")
    em.emit("^bb0(%o: i64):")
    em.lines += ["  %i = linalg.index 0 : index", "  %ii = arith.index_cast %i : index to i64",
                 f"  %off = arith.constant {int(offset)} : i64",
                 "  %r = arith.addi %ii, %off : i64", "  linalg.yield %r : i64",
                 f"}} -> {_t((n,), 'i64')}"]
    return r


def _add_head_bias(em, t, shape, bias, scale=None):
    """t [B, S, H, D] + bias [H, D], times `scale` when given."""
    e = em.fresh("e")
    em.emit(f"{e} = tensor.empty() : {_t(shape)}")
    body = ["%r = arith.addf %a, %w : f32"]
    if scale is not None:
        body += [f"%sc = arith.constant {_mlir_float(scale)} : f32",
                 "%r2 = arith.mulf %r, %sc : f32", "%r2"]
    else:
        body.append("%r")
    x4 = "(b, s, h, d) -> (b, s, h, d)"
    return em._generic([(t, _t(shape)), (bias, _t(shape[2:]))], (e, _t(shape)),
                       [x4, "(b, s, h, d) -> (h, d)", x4], ["parallel"] * 4,
                       "%a: f32, %w: f32, %o: f32", body)


def _txl_layer(cfg, em, b, s, _decoder, _layer):
    """Transformer-XL's relative attention (Dai et al. 2019, Sec. 3.3; the
    reference RelPartialLearnableMultiHeadAttn): with the segment x and the
    memory mem (mem_len cached states) as keys,
    score = scale·[(q + u)·k_j + (q + v)·(W_R·R_{i-j})], R the sinusoidal
    table of relative distances clamped at clamp_len, u and v learned per
    head; same_length: every query sees mem_len keys (a sliding window).
    Terms (a) + (c) are attention of q + u; (b) + (d) a fused rel_key_bias
    of q + v with the per-head table W_R·R."""
    dm = _positive_int(cfg, "d_model")
    h = _positive_int(cfg, "n_head")
    d = cfg["_head_dim"]
    attn_type = cfg.get("attn_type", 0)
    if not isinstance(attn_type, int) or isinstance(attn_type, bool) or attn_type != 0:
        raise ConfigError("attn_type", f"{attn_type!r}: posenc builds Transformer-XL's relative "
                          "attention (attn_type 0) only")
    if dm % 2:
        raise ConfigError("d_model", f"({dm}) must be even for the sinusoidal table")
    m = cfg.get("mem_len", 0)
    if not isinstance(m, int) or isinstance(m, bool) or m < 0:
        raise ConfigError("mem_len", f"must be a non-negative integer, got {m!r}")
    clamp = cfg.get("clamp_len", -1)
    if not isinstance(clamp, int) or isinstance(clamp, bool):
        raise ConfigError("clamp_len", f"must be an integer, got {clamp!r}")
    same_length = _flag(cfg, "same_length")
    cfg.skip("untie_r", "pre_lnorm", "tgt_len", "ext_len")  # one layer; norms outside
    klen = m + s
    mx = min(clamp, klen - 1) if clamp > 0 else klen - 1
    window = m if same_length and 0 < m < klen else None
    scale = 1.0 / math.sqrt(d)

    x = em.arg("x", (b, s, dm))
    xt, kt = _t((b, s, dm)), _t((b, klen, dm))
    em.emit(f"%x2 = tensor.collapse_shape {x} [[0, 1], [2]] : {xt} into {_t((b * s, dm))}")
    cat = x
    if m:
        mem = em.arg("mem", (b, m, dm))
        em.emit(f"%cat0 = tensor.empty() : {kt}")
        em.emit(f"%cat1 = tensor.insert_slice {mem} into %cat0[0, 0, 0] [{b}, {m}, {dm}] "
                f"[1, 1, 1] : {_t((b, m, dm))} into {kt}")
        em.emit(f"%cat = tensor.insert_slice {x} into %cat1[0, {m}, 0] [{b}, {s}, {dm}] "
                f"[1, 1, 1] : {xt} into {kt}")
        cat = "%cat"
    em.emit(f"%c2 = tensor.collapse_shape {cat} [[0, 1], [2]] : {kt} into {_t((b * klen, dm))}")
    q = em.project("%x2", (b * s, dm), "q", h * d, h, d, False, b, s)
    k = em.project("%c2", (b * klen, dm), "k", h * d, h, d, False, b, klen)
    v = em.project("%c2", (b * klen, dm), "v", h * d, h, d, False, b, klen)
    u = em.weight("r_w_bias", (h, d), 0.5)
    vb = em.weight("r_r_bias", (h, d), 0.5)
    qshape = (b, s, h, d)
    qu = _add_head_bias(em, q, qshape, u)
    qv = _add_head_bias(em, q, qshape, vb, scale)
    # Table row t is the distance i - j = mx - t (rel_key_bias's index is
    # clamp(j - i, -mx, mx) + mx), negative distances included.
    rows = 2 * mx + 1
    rel = em.fresh("rel")
    iota = _iota(em, rows, -mx)
    em.emit(f"%zi = arith.constant dense<0> : {_t((rows,), 'i64')}")
    em.emit(f"{rel} = arith.subi %zi, {iota} : {_t((rows,), 'i64')}")
    em.emit(f"%R = posenc.sinusoidal {rel} layout half {{dim = {dm} : i64}} : "
            f"{_t((rows,), 'i64')} -> {_t((rows, dm))}")
    wr = em.weight("w_r", (dm, h * d), 1.0 / math.sqrt(dm))
    r2 = em.matmul("%R", (rows, dm), wr, (dm, h * d))
    em.emit(f"%rtab = tensor.expand_shape {r2} [[0], [1, 2]] output_shape [{rows}, {h}, {d}] : "
            f"{_t((rows, h * d))} into {_t((rows, h, d))}")
    qpos, kpos = _iota(em, s, m), _iota(em, klen, 0)
    bt = _t((b, h, s, klen))
    em.emit(f"%bias = posenc.rel_key_bias {qv}, %rtab, {qpos}, {kpos} {{max_distance = {mx} : i64}} "
            f": {_t(qshape)}, {_t((rows, h, d))}, {_t((s,), 'i64')}, {_t((klen,), 'i64')} -> {bt}")
    win = f" window({window})" if window else ""
    attn = _attention(em, qu, k, v, qshape, (b, klen, h, d), f" bias(%bias : {bt}) causal{win}")
    out, shape = _output_projection(em, attn, b, s, h, d, dm)

    def reference(a):
        xx = a["x"].astype(np.float64)
        cc = np.concatenate([a["mem"].astype(np.float64), xx], axis=1) if m else xx
        qh = _project_ref(xx, a["w_q"]).reshape(qshape)
        kh = _project_ref(cc, a["w_k"]).reshape(b, klen, h, d)
        vh = _project_ref(cc, a["w_v"]).reshape(b, klen, h, d)
        table = ref.sinusoidal(mx - np.arange(rows), dm, layout="half") @ a["w_r"].astype(
            np.float64)
        bias = ref.rel_key_bias(scale * (qh + a["r_r_bias"]), table.reshape(rows, h, d),
                                np.arange(m, klen), np.arange(klen), mx)
        o = ref.attention(qh + a["r_w_bias"], kh, vh, bias=bias, causal=True, window=window)
        return o.reshape(b, s, h * d) @ a["w_o"].astype(np.float64)

    pe = f"Transformer-XL relative, clamp {clamp}, memory {m}" + (
        f", window {window}" if window else "")
    return pe, out, shape, reference


def load(path, tokenizer=None, max_seq=None, threads=None, compress_kv=None):
    """A whole compiled decoder, with `.prefill`, `.decode` and `.generate`
    (posenc.decoder.Model), from a llama2.c checkpoint at `path` (with its
    tokenizer.bin) or a Hugging Face model directory (posenc.hf), run on
    `threads` OpenMP threads (None or 1: the calling thread). compress_kv:
    low-rank KV-cache compression ("rank=R" or "energy=E", optionally
    ",factor=separate" or ",rotary=decoupled"; see posenc.compress_kv)."""
    from . import decoder

    return decoder.load(path, tokenizer, max_seq, threads, compress_kv)

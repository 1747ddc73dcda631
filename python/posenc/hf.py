"""Hugging Face model directories: config.json and safetensors weights.

    config, weights = read_model("Qwen2.5-0.5B/")   # for posenc.decoder.Model
    tensors = read_safetensors("model.safetensors")  # {name: memory-mapped array}

A directory holds `config.json` and either `model.safetensors` or a sharded
`model.safetensors.index.json` (its `weight_map` names the shard of every
tensor). Families read as whole decoders: `llama`, `mistral` (its
`sliding_window`: attention `causal window(W)` in every layer), `qwen2`
(q/k/v biases; with `use_sliding_window`, windows on the layers from
`max_window_layers` on) and `phi3` (fused `qkv_proj`
and `gate_up_proj`, used as row blocks without a copy; its
`sliding_window` as Mistral's), and `gpt_neox` (Pythia: LayerNorm, exact-GELU MLP,
biases everywhere, parallel residuals by `use_parallel_residual`,
`rotary_pct`; its per-head interleaved `query_key_value` is split into
q, k and v, a copy per layer), `qwen3` (QK-norm), `gemma` (embeddings
times sqrt(hidden_size), RMSNorm by 1 + w, GeGLU with tanh GELU, tied
classifier), `gemma2` (also norms after attention and MLP, soft-capped
scores and logits, query_pre_attn_scalar, windows on even layers) and
`gemma3_text` (also QK-norm, rope_local_base_freq on sliding layers) and
`smollm3` (NoPE layers by no_rope_layers / no_rope_layer_interval),
`cohere2` (Command R7B: one bias-free LayerNorm before parallel attention
and MLP, interleaved RoPE on sliding layers only, logit_scale); the
mixtures of experts `mixtral`, `qwen2_moe` (q/k/v biases, a shared expert,
dense layers by mlp_only_layers / decoder_sparse_step) and `qwen3_moe`
(QK-norm), each expert's weights used in place (posenc.decoder's moe); `deepseek_v2`
(multi-head latent attention with optional q LoRA, interleaved YaRN RoPE,
dense layers before first_k_dense_replace, softmax routing greedy or
group_limited_greedy, routed_scaling_factor, shared experts) and
`deepseek_v3` (the same with sigmoid noaux_tc routing and
e_score_correction_bias; its multi-token-prediction layers are not read). The
attention of every layer of Qwen3, SmolLM3, Cohere 2, Mixtral, Qwen2/3-MoE and the Gemmas is posenc.models' for
that layer (posenc.models._rope_scheme). ALiBi: `bloom` (LayerNorm on
the embeddings, per-head fused query_key_value, tanh GELU, biases, with or
without the "transformer." prefix) and `mpt` (fused Wqkv, LayerNorm
without biases, exact GELU; no_bias and attn_config.alibi only), with the
slopes of each reference implementation. LongRoPE (Phi-3's `su`/`longrope`) picks short or long
factors from the positions of each call, as Hugging Face's Phi-3 does: keys
cached before the sequence passes `original_max_position_embeddings` keep
the short factors. RoPE uses the half layout (DeepSeek and Cohere 2: interleaved),
`rope_theta`, `rope_scaling` (every kind posenc.models reads),
`partial_rotary_factor` and `head_dim`.

safetensors: an 8-byte little-endian header length, a JSON header
{name: {dtype, shape, data_offsets: [begin, end]}} and the data. Tensors
are read-only views of a memory map of the file; f32 weights are used in
place, f16 and bf16 ones are converted to f32 (a copy, tensor by tensor).
Every inconsistency — a truncated file, a header that does not parse, a
tensor out of the file, a missing tensor, a shape the config does not
allow, a config field missing or unsupported — raises HFError naming the
file, the tensor and the numbers.
"""

import json
import math
import os

import numpy as np

from .llama2c import Config
from .models import ConfigError, _rope_attr_sc, rope_scaling, sliding_windows

DTYPES = {"F32": np.dtype("<f4"), "F16": np.dtype("<f2"), "BF16": np.dtype("<u2"),
          "F64": np.dtype("<f8")}
FAMILIES = ("llama", "mistral", "qwen2", "qwen3", "phi3", "gpt_neox", "gemma", "gemma2",
            "gemma3_text", "smollm3", "mixtral", "qwen2_moe", "qwen3_moe", "deepseek_v2",
            "deepseek_v3", "cohere2", "bloom", "mpt")
DEEPSEEK = ("deepseek_v2", "deepseek_v3")
GEMMA = ("gemma", "gemma2", "gemma3_text")
MAX_LAYERS = 4096  # posenc.models' bound


# posenc.decoder's per-layer weight names -> the Llama-style names in a
# layer (model.layers.{i}.<name>).
LAYER_NAMES = {"rms_att": "input_layernorm.weight", "wq": "self_attn.q_proj.weight",
               "wk": "self_attn.k_proj.weight", "wv": "self_attn.v_proj.weight",
               "wo": "self_attn.o_proj.weight", "rms_ffn": "post_attention_layernorm.weight",
               "w1": "mlp.gate_proj.weight", "w2": "mlp.down_proj.weight",
               "w3": "mlp.up_proj.weight", "bq": "self_attn.q_proj.bias",
               "bk": "self_attn.k_proj.bias", "bv": "self_attn.v_proj.bias"}


def layer_tensor_names(family, experts=0):
    """posenc.decoder's per-layer weight names -> the tensor names in a
    layer (model.layers.{i}.<name>) of `family` (with `experts`: the
    mixture of experts' too)."""
    names = dict(LAYER_NAMES, bo="self_attn.o_proj.bias", q_norm="self_attn.q_norm.weight",
                 k_norm="self_attn.k_norm.weight")
    proj = {"w1": "gate_proj", "w3": "up_proj", "w2": "down_proj"}
    for e in range(experts):
        for w in ("w1", "w2", "w3"):
            names[f"e{e}_{w}"] = f"block_sparse_moe.experts.{e}.{w}.weight" \
                if family == "mixtral" else f"mlp.experts.{e}.{proj[w]}.weight"
    if experts:
        names["router"] = "block_sparse_moe.gate.weight" if family == "mixtral" \
            else "mlp.gate.weight"
        shared = "shared_experts" if family in DEEPSEEK else "shared_expert"
        names.update({f"shared_{w}": f"mlp.{shared}.{p}.weight" for w, p in proj.items()})
        names["shared_gate"] = "mlp.shared_expert_gate.weight"
        names["router_bias"] = "mlp.gate.e_score_correction_bias"
    if family in DEEPSEEK:  # multi-head latent attention
        names.update(wq_a="self_attn.q_a_proj.weight", q_norm_a="self_attn.q_a_layernorm.weight",
                     wkv_a="self_attn.kv_a_proj_with_mqa.weight",
                     kv_norm="self_attn.kv_a_layernorm.weight",
                     wkv_b="self_attn.kv_b_proj.weight")
    if family in ("gemma2", "gemma3_text"):
        # Four norms a layer: the Llama name of the pre-MLP norm is Gemma 2's
        # norm after attention.
        names.update(rms_ffn="pre_feedforward_layernorm.weight",
                     post_att="post_attention_layernorm.weight",
                     post_ffn="post_feedforward_layernorm.weight")
    return names


class HFError(ValueError):
    """A model directory, config or safetensors file that cannot be used."""


def read_safetensors(path):
    """{name: array} of the safetensors file at `path`: read-only memory-mapped
    views (bf16 as uint16 bit patterns)."""
    size = os.path.getsize(path)
    if size < 8:
        raise HFError(f"{path}: {size} bytes, shorter than the 8-byte safetensors header "
                      f"length")
    with open(path, "rb") as f:
        n = int(np.frombuffer(f.read(8), "<u8")[0])
        if n > size - 8:
            raise HFError(f"{path}: header of {n} bytes in a file of {size} (truncated?)")
        try:
            header = json.loads(f.read(n))
        except (ValueError, RecursionError) as e:  # JSON, Unicode, huge integers
            raise HFError(f"{path}: the safetensors header is not JSON "
                          f"({type(e).__name__}: {str(e)[:80]})") from None
    if not isinstance(header, dict):
        raise HFError(f"{path}: the safetensors header is not an object")
    data = np.memmap(path, dtype=np.uint8, mode="r", offset=8 + n, shape=(size - 8 - n,)) \
        if size > 8 + n else np.zeros(0, np.uint8)
    out, spans = {}, []
    for name, info in header.items():
        if name == "__metadata__":
            continue
        try:
            dtype, shape, (begin, end) = info["dtype"], info["shape"], info["data_offsets"]
        except (TypeError, KeyError, ValueError):
            raise HFError(f"{path}: tensor '{name}' has no dtype, shape and data_offsets") \
                from None
        if not isinstance(dtype, str):
            raise HFError(f"{path}: tensor '{name}' has dtype {dtype!r}")
        if dtype not in DTYPES:
            raise HFError(f"{path}: tensor '{name}' has dtype {dtype}; supported: "
                          f"{', '.join(DTYPES)}")
        if not (isinstance(shape, list) and len(shape) <= 16 and all(
                isinstance(d, int) and not isinstance(d, bool) and 0 <= d < 2**48
                for d in shape)):
            raise HFError(f"{path}: tensor '{name}' has shape {shape!r}")
        nbytes = DTYPES[dtype].itemsize * math.prod(shape)  # Python ints: no overflow
        if not (isinstance(begin, int) and isinstance(end, int) and 0 <= begin <= end
                and end - begin == nbytes):
            raise HFError(f"{path}: tensor '{name}' ({dtype} {shape}) spans bytes "
                          f"[{begin}, {end}), which is not {nbytes} bytes")
        if end > data.size:
            raise HFError(f"{path}: tensor '{name}' ends at byte {end} of a data section of "
                          f"{data.size} (truncated)")
        if begin % DTYPES[dtype].itemsize:
            raise HFError(f"{path}: tensor '{name}' starts at byte {begin}, not a multiple of "
                          f"its {dtype} element size")
        spans.append((begin, end, name))
        out[name] = data[begin:end].view(DTYPES[dtype]).reshape(shape)
    # Tensors are disjoint byte ranges: two names over the same bytes are a
    # corrupt header, not a model.
    spans.sort()
    for (b0, e0, n0), (b1, e1, n1) in zip(spans, spans[1:]):
        if b1 < e0:
            raise HFError(f"{path}: tensors '{n0}' [{b0}, {e0}) and '{n1}' [{b1}, {e1}) "
                          f"overlap")
    return out


def write_safetensors(path, tensors):
    """Writes {name: float32/float16 array, or (uint16 bits, "BF16")} as a
    safetensors file."""
    header, blobs, at = {}, [], 0
    for name, value in tensors.items():
        array, dtype = value if isinstance(value, tuple) else (value, None)
        array = np.ascontiguousarray(array)
        dtype = dtype or {np.dtype("float32"): "F32", np.dtype("float16"): "F16"}[array.dtype]
        blob = array.astype(DTYPES[dtype]).tobytes()
        header[name] = {"dtype": dtype, "shape": list(array.shape),
                        "data_offsets": [at, at + len(blob)]}
        blobs.append(blob)
        at += len(blob)
    text = json.dumps(header).encode()
    text += b" " * (-len(text) % 8)
    with open(path, "wb") as f:
        f.write(np.array([len(text)], "<u8").tobytes())
        f.write(text)
        for blob in blobs:
            f.write(blob)


def _as_f32(array):
    if array.dtype == np.dtype("<u2"):  # bf16 bits
        return (array.astype(np.uint32) << 16).view(np.float32)
    return array if array.dtype == np.float32 else array.astype(np.float32)


def raw_config(directory):
    """The parsed config.json of a model directory."""
    path = os.path.join(directory, "config.json")
    try:
        with open(path) as f:
            cfg = json.load(f)
    except OSError as e:
        raise HFError(f"{directory}: no readable config.json ({e.strerror})") from None
    except (ValueError, RecursionError) as e:  # JSON, Unicode, huge integers
        raise HFError(f"{path}: not JSON ({type(e).__name__}: {str(e)[:80]})") from None
    if not isinstance(cfg, dict):
        raise HFError(f"{path}: must hold a JSON object, got {type(cfg).__name__}")
    return cfg


def read_config(directory):
    """(Config, the raw config dict) of the model directory."""
    path = os.path.join(directory, "config.json")
    cfg = raw_config(directory)
    family = cfg.get("model_type")
    if family not in FAMILIES:
        raise HFError(f"{path}: model_type {family!r} is not read as a whole decoder "
                      f"(supported: {', '.join(FAMILIES)})")

    if family in ("bloom", "mpt"):
        return _alibi_config(path, cfg, family), cfg

    def positive(name, default=None):
        v = cfg.get(name, default)
        if v is None and default is not None:
            v = default
        if not isinstance(v, int) or isinstance(v, bool) or not 0 < v < 2**31:
            raise HFError(f"{path}: {name} must be a positive integer below 2^31, got {v!r}")
        return v

    def number(name, default, low=0.0, high=math.inf, closed_high=False):
        v = cfg.get(name, default)
        if v is None:
            v = default
        ok = isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) \
            and low < v and (v <= high if closed_high else v < high)
        if not ok:
            bounds = f"in ({low:g}, {high:g}{']' if closed_high else ')'}"
            raise HFError(f"{path}: {name} must be a number {bounds}, got {v!r}")
        return float(v)

    def flag(name):
        v = cfg.get(name, False)
        if v is None:
            v = False
        if not isinstance(v, bool):
            raise HFError(f"{path}: {name} must be true or false, got {v!r}")
        return v

    dim = positive("hidden_size")
    heads = positive("num_attention_heads")
    kv_heads = positive("num_key_value_heads", heads)
    if positive("num_hidden_layers") > MAX_LAYERS:
        raise HFError(f"{path}: num_hidden_layers {cfg['num_hidden_layers']} is above "
                      f"{MAX_LAYERS}")
    if cfg.get("head_dim") is None and dim < heads:
        raise HFError(f"{path}: hidden_size ({dim}) is smaller than num_attention_heads "
                      f"({heads}) and no head_dim is given")
    head_dim = positive("head_dim", dim // heads) if cfg.get("head_dim") is not None \
        else dim // heads
    if heads % kv_heads:
        raise HFError(f"{path}: num_attention_heads ({heads}) is not a multiple of "
                      f"num_key_value_heads ({kv_heads})")
    neox = family == "gpt_neox"
    gemma = family in GEMMA
    cohere = family == "cohere2"
    tied = gemma or family in ("smollm3", "cohere2")
    if gemma:
        # transformers' Gemma reads hidden_activation (Gemma 1 configs say
        # hidden_act "gelu" and get the tanh form all the same).
        act = cfg.get("hidden_activation") or "gelu_pytorch_tanh"
        if act not in ("gelu_pytorch_tanh", "gelu_tanh"):
            raise HFError(f"{path}: hidden_activation {act!r}; {family} is read with "
                          f"gelu_pytorch_tanh (GeGLU)")
    else:
        act = cfg.get("hidden_act", "gelu" if neox else "silu")
        if act != ("gelu" if neox else "silu"):
            raise HFError(f"{path}: hidden_act {act!r}; {family} is read with "
                          f"{'gelu (exact)' if neox else 'silu (SwiGLU)'}")
    partial = number("rotary_pct" if neox else "partial_rotary_factor", 1.0, high=1.0,
                     closed_high=True)
    rotary = int(head_dim * partial)
    if rotary % 2 or rotary <= 0:
        raise HFError(f"{path}: partial_rotary_factor {partial} gives {rotary} rotary dims "
                      f"of {head_dim}; it must be even and positive")
    try:
        sc, factor = _rope_attr_sc(rope_scaling(cfg))
    except ConfigError as e:
        raise HFError(f"{path}: {e}") from None
    max_pos = positive("max_position_embeddings", 4096)
    # Mistral and Phi-3 window every layer; Qwen2's windows start at layer
    # max_window_layers when use_sliding_window (posenc.models' rules).
    window = None
    if family in ("mistral", "phi3") and cfg.get("sliding_window") is not None:
        window = positive("sliding_window")
    if family == "qwen2" and flag("use_sliding_window"):
        try:
            windows = sliding_windows(cfg)
        except ConfigError as e:
            raise HFError(f"{path}: {e}") from None
        window = windows if len(set(windows)) > 1 else windows[0]
    # Per-layer attention (windows, soft-caps, scales, QK-norm, local RoPE
    # bases) by posenc.models' rules for the families it builds layer by layer.
    schemes = None
    if family in ("qwen3", "smollm3", "mixtral", "qwen2_moe", "qwen3_moe", "cohere2") + GEMMA:
        from .models import _read_config, _rope_scheme

        try:
            schemes = [_rope_scheme(_read_config(cfg)[3], i)
                       for i in range(positive("num_hidden_layers"))]
        except ConfigError as e:
            raise HFError(f"{path}: {e}") from None
    final_cap = cfg.get("final_logit_softcapping", 30.0 if family == "gemma2" else None) \
        if family in ("gemma2", "gemma3_text") else None
    if final_cap is not None:
        final_cap = number("final_logit_softcapping", final_cap)
    # Mistral, Qwen2 and Phi-3 ignore attention_bias (Qwen2: q/k/v biases
    # always); the others put biases on q/k/v and the output projection.
    fixed_bias = family in ("mistral", "mixtral", "qwen2", "qwen2_moe", "phi3")
    attention_bias = not fixed_bias and not neox and flag("attention_bias")
    config = Config(
        dim=dim, hidden_dim=positive("intermediate_size"),
        n_layers=positive("num_hidden_layers"), n_heads=heads, n_kv_heads=kv_heads,
        vocab_size=positive("vocab_size"), seq_len=max_pos,
        # transformers' defaults: Gemma and SmolLM3 tie the classifier.
        shared_classifier=flag_default(cfg, "tie_word_embeddings", tied, path)
        if cfg.get("tie_word_embeddings") is not None else tied,
        rope_theta=number("rotary_emb_base" if neox and "rope_theta" not in cfg
                          else "rope_theta", 10000.0),
        norm_eps=number("layer_norm_eps" if neox or cohere else "rms_norm_eps",
                        1e-5 if neox or cohere else 1e-6, high=1.0),
        logit_scale=number("logit_scale", 0.0625) if cohere else None,
        # DeepSeek rotates interleaved pairs (its apply_rotary_pos_emb
        # permutes them into halves first).
        rope_layout="interleaved" if family in DEEPSEEK else "half",
        mla=_mla(path, cfg, family, positive, sc),
        rope_scaling=sc, attention_factor=factor,
        rotary_dim=rotary if rotary != head_dim else None,
        qkv_bias=family in ("qwen2", "qwen2_moe") or neox or attention_bias,
        o_bias=attention_bias, moe=_moe(path, cfg, family, positive, flag),
        head_size=head_dim if head_dim != dim // heads else 0, family=family,
        norm="layer" if neox or cohere else "rms",
        mlp="gelu" if neox else "geglu_tanh" if gemma else "swiglu",
        dense_bias=neox,
        parallel_residual=cohere or neox and flag_default(cfg, "use_parallel_residual", True,
                                                          path),
        sliding_window=window, schemes=schemes,
        # transformers multiplies by sqrt(hidden_size) rounded to the
        # activations' dtype (f32 here).
        embed_scale=float(np.float32(math.sqrt(dim))) if gemma else None,
        sandwich_norm=family in ("gemma2", "gemma3_text"), final_softcap=final_cap)
    return config, cfg


def _mla(path, cfg, family, positive, sc):
    """DeepSeek-V2/V3's latent attention dims and softmax scale, or None."""
    if family not in DEEPSEEK:
        return None
    from .models import mla_softmax_scale

    q_rank = cfg.get("q_lora_rank")
    if q_rank is not None and (not isinstance(q_rank, int) or isinstance(q_rank, bool)
                               or not 0 <= q_rank < 2**31):
        raise HFError(f"{path}: q_lora_rank must be null or a non-negative integer, got "
                      f"{q_rank!r}")
    dn, dr = positive("qk_nope_head_dim"), positive("qk_rope_head_dim")
    if dr % 2:
        raise HFError(f"{path}: qk_rope_head_dim ({dr}) must be even")
    if cfg.get("attention_bias"):
        raise HFError(f"{path}: attention_bias true: DeepSeek is read without biases")
    return {"kv_rank": positive("kv_lora_rank"), "q_rank": q_rank or 0, "dn": dn, "dr": dr,
            "dv": positive("v_head_dim"), "scale": mla_softmax_scale(dn, dr, sc)}


def _moe(path, cfg, family, positive, flag):
    """The mixture of experts of Mixtral (every layer; top-k renormalized),
    Qwen2/3-MoE (layers (i + 1) % decoder_sparse_step == 0 outside
    mlp_only_layers; norm_topk_prob; Qwen2-MoE's gated shared expert) and
    DeepSeek-V2 (layers from first_k_dense_replace on, every
    moe_layer_freq-th; softmax router, greedy or group_limited_greedy
    top-k, routed_scaling_factor, ungated shared experts; V3: sigmoid
    router, noaux_tc choice with e_score_correction_bias), or None."""
    if family not in ("mixtral", "qwen2_moe", "qwen3_moe") + DEEPSEEK:
        return None
    layers = positive("num_hidden_layers")
    if family in DEEPSEEK:
        v3 = family == "deepseek_v3"
        experts, hidden = positive("n_routed_experts"), positive("moe_intermediate_size")
        first = cfg.get("first_k_dense_replace", 0)
        if not isinstance(first, int) or isinstance(first, bool) or first < 0:
            raise HFError(f"{path}: first_k_dense_replace must be a non-negative integer, "
                          f"got {first!r}")
        freq = positive("moe_layer_freq", 1)
        sparse = [i >= first and i % freq == 0 for i in range(layers)]
        shared = hidden * (cfg.get("n_shared_experts") or 0)
        if not isinstance(shared, int) or shared < 0:
            raise HFError(f"{path}: n_shared_experts must be a non-negative integer")
        # What each version's reference implementation routes with.
        routing = ("sigmoid", ("noaux_tc",)) if v3 else \
            ("softmax", ("greedy", "group_limited_greedy"))
        scoring = cfg.get("scoring_func", routing[0])
        if scoring != routing[0]:
            raise HFError(f"{path}: scoring_func {scoring!r}: {family} is read with "
                          f"{routing[0]} routing only")
        method = cfg.get("topk_method", routing[1][0])
        if method not in routing[1]:
            raise HFError(f"{path}: topk_method {method!r}: {family} is read with "
                          f"{' or '.join(routing[1])}")
        group = None
        if method != "greedy":
            groups, keep = positive("n_group"), positive("topk_group")
            if experts % groups or keep > groups or (v3 and experts // groups < 2):
                raise HFError(f"{path}: n_group {groups} must divide n_routed_experts "
                              f"{experts} and be at least topk_group {keep}"
                              + (" (noaux_tc: two experts a group at least)" if v3 else ""))
            group = (groups, keep, "top2" if v3 else "max")
        scaling = cfg.get("routed_scaling_factor", 1.0)
        if not isinstance(scaling, (int, float)) or isinstance(scaling, bool) or \
                not 0 < scaling < math.inf:
            raise HFError(f"{path}: routed_scaling_factor must be a positive number, got "
                          f"{scaling!r}")
        top_k = positive("num_experts_per_tok", 2)
        if top_k > experts or (group and top_k > experts // group[0] * group[1]):
            raise HFError(f"{path}: num_experts_per_tok ({top_k}) exceeds the experts it may "
                          f"choose from")
        return {"experts": experts, "top_k": top_k, "norm_topk": flag("norm_topk_prob"),
                "hidden": hidden, "shared": shared, "shared_gated": False, "layers": sparse,
                "group": group, "scaling": float(scaling), "scoring": scoring,
                "correction_bias": v3, "scale_always": v3}
    if family == "mixtral":
        experts, hidden = positive("num_local_experts", 8), positive("intermediate_size")
        sparse, norm, shared = [True] * layers, True, 0
    else:
        experts, hidden = positive("num_experts"), positive("moe_intermediate_size")
        step = positive("decoder_sparse_step", 1)
        dense = cfg.get("mlp_only_layers")
        dense = [] if dense is None else dense
        if not isinstance(dense, list) or not all(
                isinstance(i, int) and not isinstance(i, bool) and 0 <= i < layers
                for i in dense):
            raise HFError(f"{path}: mlp_only_layers must list layer indices below {layers}, "
                          f"got {dense!r}")
        sparse = [i not in dense and (i + 1) % step == 0 for i in range(layers)]
        norm = flag("norm_topk_prob")
        shared = positive("shared_expert_intermediate_size") if family == "qwen2_moe" else 0
    top_k = positive("num_experts_per_tok", 2)
    if top_k > experts:
        raise HFError(f"{path}: num_experts_per_tok ({top_k}) exceeds the {experts} experts")
    if experts > 1024:
        raise HFError(f"{path}: {experts} experts; posenc builds at most 1024 per layer")
    return {"experts": experts, "top_k": top_k, "norm_topk": norm, "hidden": hidden,
            "shared": shared, "layers": sparse}


def _alibi_config(path, cfg, family):
    """BLOOM and MPT: ALiBi, LayerNorm, GELU MLP, tied classifier."""
    from .reference import alibi_slopes, alibi_slopes_mpt

    def field(*names, default=None, kind=int):
        name = next((n for n in names if cfg.get(n) is not None), names[0])
        v = cfg.get(name, default)
        if v is None:
            v = default
        ok = isinstance(v, (int, float) if kind is float else int) and \
            not isinstance(v, bool) and 0 < v < (1.0 if name.endswith("epsilon") else 2**31)
        if not ok:
            raise HFError(f"{path}: {name} must be a positive "
                          f"{'number' if kind is float else 'integer'}, got {v!r}")
        return kind(v)

    def plain(key, value, where=cfg, prefix=""):
        if where.get(key, value) not in (value, None if value is False else value):
            raise HFError(f"{path}: {prefix}{key} {where.get(key)!r}: {family} is read with "
                          f"{value!r} only")

    if family == "bloom":
        dim = field("hidden_size", "n_embed")
        heads = field("n_head", "num_attention_heads")
        layers = field("n_layer", "num_hidden_layers")
        hidden, seq = 4 * dim, field("seq_length", default=2048)
        plain("apply_residual_connection_post_layernorm", False)
        slopes = alibi_slopes(heads)
        bias = True
    else:
        dim, heads, layers = field("d_model"), field("n_heads"), field("n_layers")
        hidden, seq = field("expansion_ratio", default=4) * dim, field("max_seq_len",
                                                                       default=2048)
        ac = cfg.get("attn_config")
        ac = {} if ac is None else ac
        if not isinstance(ac, dict):
            raise HFError(f"{path}: attn_config must be an object, got {ac!r}")
        plain("alibi", True, ac, "attn_config.")
        for key, value in (("qk_ln", False), ("clip_qkv", None), ("prefix_lm", False),
                           ("softmax_scale", None), ("attn_type", "multihead_attention")):
            plain(key, value, ac, "attn_config.")
        plain("no_bias", True)
        max_bias = ac.get("alibi_bias_max", 8)
        if not isinstance(max_bias, (int, float)) or isinstance(max_bias, bool) or \
                not 0 < max_bias < math.inf:
            raise HFError(f"{path}: attn_config.alibi_bias_max must be a positive number, "
                          f"got {max_bias!r}")
        with np.errstate(over="ignore", under="ignore"):
            slopes = alibi_slopes_mpt(heads, float(max_bias))
        if not np.all(np.isfinite(slopes.astype(np.float32))) or \
                slopes.min() < np.finfo(np.float32).tiny:
            raise HFError(f"{path}: attn_config.alibi_bias_max {max_bias!r} gives slopes "
                          f"down to {slopes.min():.3g}, below f32's normal range")
        bias = False
    if dim % heads:
        raise HFError(f"{path}: hidden size {dim} is not a multiple of {heads} heads")
    tie = cfg.get("tie_word_embeddings", True)
    if not isinstance(tie, bool):
        raise HFError(f"{path}: tie_word_embeddings must be true or false, got {tie!r}")
    return Config(
        dim=dim, hidden_dim=hidden, n_layers=layers, n_heads=heads, n_kv_heads=heads,
        vocab_size=field("vocab_size"), seq_len=seq, shared_classifier=tie,
        norm_eps=field("layer_norm_epsilon", default=1e-5, kind=float), family=family,
        norm="layer", mlp="gelu_tanh" if family == "bloom" else "gelu",
        qkv_bias=bias, dense_bias=bias, alibi=tuple(float(m) for m in slopes),
        embed_norm=family == "bloom")


def special_ids(directory):
    """(bos_token_id or None, [eos_token_id, ...]) of a model directory:
    config.json's, with generation_config.json's eos ids added (instruct
    models list their end-of-turn tokens there)."""
    bos, eos = None, []
    for name in ("config.json", "generation_config.json"):
        path = os.path.join(directory, name)
        if not os.path.exists(path):
            continue
        try:
            with open(path) as f:
                cfg = json.load(f)
        except (OSError, ValueError, RecursionError) as e:
            raise HFError(f"{path}: not readable JSON ({type(e).__name__}: "
                          f"{str(e)[:80]})") from None
        if not isinstance(cfg, dict):
            raise HFError(f"{path}: must hold a JSON object")
        for key in ("bos_token_id", "eos_token_id"):
            v = cfg.get(key)
            values = v if isinstance(v, list) else [] if v is None else [v]
            if not all(isinstance(i, int) and not isinstance(i, bool) and i >= 0
                       for i in values):
                raise HFError(f"{path}: {key} must be a token id or a list of them, "
                              f"got {v!r}")
            if key == "bos_token_id" and values and bos is None:
                bos = values[0]
            elif key == "eos_token_id":
                eos += [i for i in values if i not in eos]
    return bos, eos


def flag_default(cfg, name, default, path):
    v = cfg.get(name, default)
    if not isinstance(v, bool):
        raise HFError(f"{path}: {name} must be true or false, got {v!r}")
    return v


def _shards(directory):
    single = os.path.join(directory, "model.safetensors")
    index = os.path.join(directory, "model.safetensors.index.json")
    if os.path.exists(index):
        try:
            with open(index) as f:
                weight_map = json.load(f)["weight_map"]
        except (OSError, ValueError, RecursionError, KeyError,
                TypeError) as e:
            raise HFError(f"{index}: no weight_map ({type(e).__name__}: {str(e)[:80]})") \
                from None
        if not isinstance(weight_map, dict):
            raise HFError(f"{index}: weight_map must be an object, got "
                          f"{type(weight_map).__name__}")
        shards = {}
        for name, shard in weight_map.items():
            # A shard is a file of this directory: no paths out of it.
            if not isinstance(shard, str) or not shard or os.path.basename(shard) != shard \
                    or shard in (".", ".."):
                raise HFError(f"{index}: tensor '{name}' maps to {shard!r}, not a file name "
                              f"in the model directory")
            path = os.path.join(directory, shard)
            if not os.path.isfile(path):
                raise HFError(f"{index}: tensor '{name}' is in {shard}, which is missing")
            shards[name] = path
        return shards
    if os.path.exists(single):
        return None
    raise HFError(f"{directory}: neither model.safetensors nor model.safetensors.index.json")


def tensor_reader(directory):
    """(get(name, shape) -> f32 array, has(name)) over the directory's
    safetensors files (one, or the shards of its index), each memory-mapped
    when first used."""
    shards = _shards(directory)
    files = {}

    def tensors(path):
        if path not in files:
            files[path] = read_safetensors(path)
        return files[path]

    single = os.path.join(directory, "model.safetensors")

    def has(name):
        return name in shards if shards is not None else name in tensors(single)

    def get(name, shape):
        path = shards.get(name) if shards is not None else single
        t = tensors(path).get(name) if path else None
        if t is None:
            raise HFError(f"{directory}: tensor '{name}' is missing"
                          + (f" from {os.path.basename(path)}" if path else ""))
        if tuple(t.shape) != shape:
            raise HFError(f"{path}: tensor '{name}' has shape {tuple(t.shape)}; config.json "
                          f"needs {shape}")
        return _as_f32(t)

    return get, has


def read_model(directory):
    """(Config, weights) of a Hugging Face model directory, weights in
    posenc.decoder's per-layer form."""
    config, _ = read_config(directory)
    get, has = tensor_reader(directory)

    from .decoder import weight_shapes

    shapes = weight_shapes(config)
    if config.family == "gpt_neox":
        return config, _neox_weights(config, shapes, get)
    if config.family == "bloom":
        return config, _bloom_weights(config, shapes, get, has)
    if config.family == "mpt":
        return config, _mpt_weights(config, shapes, get, has)
    weights = {"token_embedding": get("model.embed_tokens.weight", shapes["token_embedding"]),
               "rms_final": get("model.norm.weight", shapes["rms_final"])}
    has_head = has("lm_head.weight")
    if config.shared_classifier and not has_head:
        weights["wcls"] = weights["token_embedding"]
    else:
        weights["wcls"] = get("lm_head.weight", shapes["wcls"])
    names = layer_tensor_names(config.family, config.moe["experts"] if config.moe else 0)
    if config.mla and config.mla["q_rank"]:
        names["wq"] = "self_attn.q_b_proj.weight"
    from .decoder import layer_names

    if config.family == "phi3":
        # Fused rows [q; k; v] and [gate; up]: contiguous row blocks.
        qd, kv, hid, d = config.q_dim, config.kv_dim, config.hidden_dim, config.dim
        layers = []
        for i in range(config.n_layers):
            p = f"model.layers.{i}."
            qkv = get(p + "self_attn.qkv_proj.weight", (qd + 2 * kv, d))
            gate_up = get(p + "mlp.gate_up_proj.weight", (2 * hid, d))
            layers.append({"rms_att": get(p + names["rms_att"], shapes["rms_att"]),
                           "wq": qkv[:qd], "wk": qkv[qd:qd + kv], "wv": qkv[qd + kv:],
                           "wo": get(p + names["wo"], shapes["wo"]),
                           "rms_ffn": get(p + names["rms_ffn"], shapes["rms_ffn"]),
                           "w1": gate_up[:hid], "w3": gate_up[hid:],
                           "w2": get(p + names["w2"], shapes["w2"])})
        weights["layers"] = layers
        return config, weights
    if config.family == "cohere2":
        # One LayerNorm without a bias before attention and MLP together
        # (the decoder's second norm reads the same weight).
        zero = np.zeros(config.dim, np.float32)
        weights["rms_final_b"] = zero
        weights["layers"] = []
        for i in range(config.n_layers):
            ln = get(f"model.layers.{i}.input_layernorm.weight", (config.dim,))
            lw = {n: get(f"model.layers.{i}.{names[n]}", shapes[n])
                  for n in layer_names(config, i)
                  if n not in ("rms_att", "rms_ffn", "rms_att_b", "rms_ffn_b")}
            lw.update(rms_att=ln, rms_ffn=ln, rms_att_b=zero, rms_ffn_b=zero)
            weights["layers"].append(lw)
        return config, weights
    weights["layers"] = [{n: get(f"model.layers.{i}.{names[n]}", shapes[n])
                          for n in layer_names(config, i)} for i in range(config.n_layers)]
    if config.family in GEMMA:
        # Gemma's RMSNorm scales by 1 + w (in f32): the decoder's weight is
        # that sum, computed once here. The classifier is the tied
        # embedding, not offset.
        norms = ("rms_att", "rms_ffn", "post_att", "post_ffn", "q_norm", "k_norm")
        weights["rms_final"] = weights["rms_final"] + np.float32(1)
        for lw in weights["layers"]:
            for n in norms:
                if n in lw:
                    lw[n] = lw[n] + np.float32(1)
    return config, weights


def _per_head_qkv(config, get, name):
    """q/k/v weights and biases from a fused `name` (.weight, .bias) whose
    rows are per head [q_h; k_h; v_h] (GPT-NeoX, BLOOM): a copy each."""
    h, hd, d = config.n_heads, config.head_dim, config.dim
    qkv = get(name + ".weight", (3 * h * hd, d)).reshape(h, 3, hd, d)
    qkv_b = get(name + ".bias", (3 * h * hd,)).reshape(h, 3, hd)
    lw = {n: np.ascontiguousarray(qkv[:, j].reshape(h * hd, d))
          for j, n in enumerate(("wq", "wk", "wv"))}
    lw.update({n: np.ascontiguousarray(qkv_b[:, j].reshape(h * hd))
               for j, n in enumerate(("bq", "bk", "bv"))})
    return lw


def _bloom_weights(config, shapes, get, has):
    """BLOOM names, with or without the "transformer." prefix (both are on
    the Hub); the classifier is the embedding unless lm_head is stored."""
    d, h, hid = config.dim, config.n_heads, config.hidden_dim
    t = "transformer." if has("transformer.word_embeddings.weight") else ""
    emb = get(t + "word_embeddings.weight", shapes["token_embedding"])
    weights = {"token_embedding": emb,
               "emb_norm": get(t + "word_embeddings_layernorm.weight", (d,)),
               "emb_norm_b": get(t + "word_embeddings_layernorm.bias", (d,)),
               "rms_final": get(t + "ln_f.weight", (d,)), "rms_final_b": get(t + "ln_f.bias", (d,)),
               "wcls": get("lm_head.weight", shapes["wcls"])
               if has("lm_head.weight") or not config.shared_classifier else emb,
               "layers": []}
    for i in range(config.n_layers):
        p = f"{t}h.{i}."
        lw = _per_head_qkv(config, get, p + "self_attention.query_key_value")
        lw.update({n: get(p + name, (d,)) for n, name in (
            ("rms_att", "input_layernorm.weight"), ("rms_att_b", "input_layernorm.bias"),
            ("rms_ffn", "post_attention_layernorm.weight"),
            ("rms_ffn_b", "post_attention_layernorm.bias"),
            ("bo", "self_attention.dense.bias"), ("b2", "mlp.dense_4h_to_h.bias"))})
        lw.update(wo=get(p + "self_attention.dense.weight", (d, h * config.head_dim)),
                  w1=get(p + "mlp.dense_h_to_4h.weight", (hid, d)),
                  b1=get(p + "mlp.dense_h_to_4h.bias", (hid,)),
                  w2=get(p + "mlp.dense_4h_to_h.weight", (d, hid)))
        weights["layers"].append(lw)
    return weights


def _mpt_weights(config, shapes, get, has):
    """MPT names: fused Wqkv rows [q; k; v] (row blocks, no copy), LayerNorms
    without biases (no_bias: zeros here)."""
    d, hid = config.dim, config.hidden_dim
    zero = np.zeros(d, np.float32)
    emb = get("transformer.wte.weight", shapes["token_embedding"])
    weights = {"token_embedding": emb, "rms_final": get("transformer.norm_f.weight", (d,)),
               "rms_final_b": zero,
               "wcls": get("lm_head.weight", shapes["wcls"])
               if has("lm_head.weight") or not config.shared_classifier else emb,
               "layers": []}
    for i in range(config.n_layers):
        p = f"transformer.blocks.{i}."
        qkv = get(p + "attn.Wqkv.weight", (3 * d, d))
        weights["layers"].append({
            "wq": qkv[:d], "wk": qkv[d:2 * d], "wv": qkv[2 * d:],
            "wo": get(p + "attn.out_proj.weight", (d, d)),
            "rms_att": get(p + "norm_1.weight", (d,)), "rms_att_b": zero,
            "rms_ffn": get(p + "norm_2.weight", (d,)), "rms_ffn_b": zero,
            "w1": get(p + "ffn.up_proj.weight", (hid, d)),
            "w2": get(p + "ffn.down_proj.weight", (d, hid))})
    return weights


def _neox_weights(config, shapes, get):
    """GPT-NeoX names; query_key_value rows are per head [q_h; k_h; v_h]."""
    d, hid = config.dim, config.hidden_dim
    weights = {"token_embedding": get("gpt_neox.embed_in.weight", shapes["token_embedding"]),
               "rms_final": get("gpt_neox.final_layer_norm.weight", (d,)),
               "rms_final_b": get("gpt_neox.final_layer_norm.bias", (d,)),
               "wcls": get("embed_out.weight", shapes["wcls"]), "layers": []}
    for i in range(config.n_layers):
        p = f"gpt_neox.layers.{i}."
        lw = _per_head_qkv(config, get, p + "attention.query_key_value")
        lw.update(rms_att=get(p + "input_layernorm.weight", (d,)),
                  rms_att_b=get(p + "input_layernorm.bias", (d,)),
                  rms_ffn=get(p + "post_attention_layernorm.weight", (d,)),
                  rms_ffn_b=get(p + "post_attention_layernorm.bias", (d,)),
                  wo=get(p + "attention.dense.weight", (d, config.q_dim)),
                  bo=get(p + "attention.dense.bias", (d,)),
                  w1=get(p + "mlp.dense_h_to_4h.weight", (hid, d)),
                  b1=get(p + "mlp.dense_h_to_4h.bias", (hid,)),
                  w2=get(p + "mlp.dense_4h_to_h.weight", (d, hid)),
                  b2=get(p + "mlp.dense_4h_to_h.bias", (d,)))
        weights["layers"].append(lw)
    return weights

"""posenc.models: every example config builds a layer that compiles and
matches its float64 reference; dense_resource weights; bad configs raise
ConfigError naming the field; the checked-in examples are up to date."""

import copy
import json
import math
import os
import subprocess
import sys

import numpy as np
import pytest

from harness import ROOT, opt, rel_err
import posenc
from posenc import models

CONFIGS = os.path.join(ROOT, "examples", "configs")


def config(name):
    with open(os.path.join(CONFIGS, name)) as f:
        return json.load(f)


# Small cuts so that each layer compiles and runs in about a second; head
# dims and every position-encoding parameter stay as published.
GQA = {"num_attention_heads": 4, "num_key_value_heads": 2, "hidden_size": 256}
SMALL = [
    ("llama-3.1-8b.json", {"num_attention_heads": 4, "num_key_value_heads": 1,
                           "hidden_size": 256}, {}, 0),
    ("qwen2.5-7b-instruct-yarn.json", {"num_attention_heads": 4, "num_key_value_heads": 2,
                                       "hidden_size": 256}, {}, 40000),
    ("phi-3.5-mini-instruct.json", {"num_attention_heads": 2, "num_key_value_heads": 2,
                                    "hidden_size": 192}, {}, 5000),
    ("phi-3.5-mini-instruct.json", {"num_attention_heads": 2, "num_key_value_heads": 2,
                                    "hidden_size": 192}, {}, 0),
    ("gpt-neox-20b.json", {"num_attention_heads": 2, "hidden_size": 192}, {}, 0),
    ("bloom-560m.json", {"n_head": 4, "hidden_size": 256}, {}, 0),
    ("mpt-7b.json", {"n_heads": 2, "d_model": 256}, {}, 0),
    ("t5-base.json", {"num_heads": 2, "d_model": 128}, {}, 0),
    ("t5-base.json", {"num_heads": 2, "d_model": 128}, {"decoder": True}, 0),
    # The smallest distances the op allows (above the exact-bucket range).
    ("t5-base.json", {"num_heads": 2, "d_model": 128, "relative_attention_max_distance": 9},
     {}, 0),
    ("t5-base.json", {"num_heads": 2, "d_model": 128, "relative_attention_max_distance": 17},
     {"decoder": True}, 0),
    ("deepseek-v3.json", {"num_attention_heads": 2, "num_key_value_heads": 2,
                          "hidden_size": 256, "q_lora_rank": 64}, {}, 0),
    # Layers of 2024-2025 models, windows and chunks cut below the sequence.
    ("gemma-2-9b.json", {**GQA, "sliding_window": 5, "sliding_window_size": 5}, {}, 0),
    ("gemma-2-9b.json", GQA, {"layer": 1}, 0),
    ("gemma-3-4b.json", {**GQA, "sliding_window": 5}, {}, 3000),
    ("gemma-3-4b.json", GQA, {"layer": 5}, 3000),
    ("gpt-oss-20b.json", {**GQA, "sliding_window": 5}, {}, 9000),
    ("gpt-oss-20b.json", GQA, {"layer": 1}, 9000),
    ("llama-4-scout-17b-16e.json", {**GQA, "attention_chunk_size": 5}, {}, 9000),
    ("llama-4-scout-17b-16e.json", GQA, {"layer": 3}, 9000),
    ("qwen3-8b.json", GQA, {}, 100),
    ("smollm3-3b.json", GQA, {"layer": 3}, 0),
    ("command-r7b-12-2024.json", {**GQA, "sliding_window": 5}, {}, 0),
    ("command-r7b-12-2024.json", GQA, {"layer": 3}, 0),
    ("qwen2.5-vl-7b-instruct.json", {**GQA, "num_key_value_heads": 1}, {}, 500),
]


def _id(case):
    name, _, kw, start = case
    return (f"{name[:-5]}{'-dec' if kw.get('decoder') else ''}"
            f"{'-L%d' % kw['layer'] if 'layer' in kw else ''}@{start}")


@pytest.mark.parametrize("name,cut,kw,start", SMALL, ids=[_id(c) for c in SMALL])
def test_example_configs_match_reference(rng, name, cut, kw, start):
    layer = models.attention_layer(config(name), seq_len=12, cut=cut, **kw)
    assert set(layer.cuts) == set(cut)
    args = layer.random_inputs(rng, start=start)
    out = posenc.compile(layer.ir).call(layer.entry, *args)
    err = rel_err(out, layer.reference(args))
    assert err <= 1e-4, f"{name}: relative error {err:.3g}"


@pytest.mark.parametrize("window", [None, 1, 5, 100])
def test_sliding_window_of_the_config_is_used(rng, window):
    # Mistral's sliding_window (4096 published) cut below the sequence: the
    # layer masks the keys before each query's window and so does its
    # reference; a window of 12 keys or more is plain causal attention.
    cfg = config("mistral-7b-v0.1.json")
    cfg["sliding_window"] = window
    cut = {"num_attention_heads": 4, "num_key_value_heads": 1, "hidden_size": 256}
    layer = models.attention_layer(cfg, seq_len=12, cut=cut)
    args = layer.random_inputs(rng)
    out = posenc.compile(layer.ir).call(layer.entry, *args)
    assert rel_err(out, layer.reference(args)) <= 1e-4
    assert ("window(" in layer.ir) == (window is not None)
    cfg["sliding_window"] = None
    plain = models.attention_layer(cfg, seq_len=12, cut=cut)
    changed = np.max(np.abs(plain.reference(args) - layer.reference(args))) > 1e-6
    assert changed == (window is not None and window < 12)


def test_weights_as_dense_resource_constants(rng):
    cut = {"num_attention_heads": 2, "num_key_value_heads": 1, "hidden_size": 64}
    layer = models.attention_layer(config("llama-3.1-8b.json"), seq_len=6, cut=cut,
                                   weights="constants")
    assert "dense_resource<w_q>" in layer.ir and "dialect_resources" in layer.ir
    assert [n for n, _, _ in layer.inputs] == ["x", "pos"]
    args = layer.random_inputs(rng)
    out = posenc.compile(layer.ir).call(layer.entry, *args)
    assert rel_err(out, layer.reference(args)) <= 1e-4


def test_scaling_translation():
    """HF rope_scaling -> posenc scaling parameters."""
    sc = models.rope_scaling(config("llama-3.1-8b.json"))
    assert sc == {"kind": "llama3", "factor": 8.0, "original": 8192,
                  "low_freq_factor": 1.0, "high_freq_factor": 4.0}
    sc = models.rope_scaling(config("deepseek-v3.json"))
    assert sc["kind"] == "yarn" and sc["original"] == 4096 and sc["mscale_all_dim"] == 1.0
    sc = models.rope_scaling(config("phi-3.5-mini-instruct.json"))
    assert sc["kind"] == "longrope" and sc["max_positions"] == 131072
    assert len(sc["long_factor"]) == 48
    assert models.rope_scaling({"rope_scaling": {"rope_type": "default"}}) is None
    sc = models.rope_scaling({"max_position_embeddings": 2048,
                              "rope_scaling": {"type": "dynamic", "factor": 2.0}})
    assert sc == {"kind": "dynamic", "factor": 2.0, "original": 2048}


def bad(base, path, value):
    """config(base) with `path` (dotted; inside text_config when the config
    has one, unless the path names it) set to `value`, or removed when value
    is KeyError."""
    cfg = copy.deepcopy(config(base))
    *parents, leaf = path.split(".")
    node = cfg.get("text_config", cfg) if parents[:1] != ["text_config"] else cfg
    for p in parents:
        node = node[p]
    if value is KeyError:
        del node[leaf]
    else:
        node[leaf] = value
    return cfg


BAD = [
    (bad("llama-3.1-8b.json", "num_key_value_heads", 3), "num_key_value_heads"),
    (bad("llama-3.1-8b.json", "num_attention_heads", KeyError), "num_attention_heads"),
    (bad("llama-3.1-8b.json", "head_dim", 127), "head_dim"),
    (bad("llama-3.1-8b.json", "rope_scaling.rope_type", "ntk-by-parts"),
     "rope_scaling.rope_type"),
    (bad("llama-3.1-8b.json", "rope_scaling.high_freq_factor", 0.5),
     "rope_scaling.high_freq_factor"),
    (bad("llama-3.1-8b.json", "rope_theta", 0.5), "rope_theta"),
    (bad("qwen2.5-7b-instruct-yarn.json", "rope_scaling.factor", -4.0), "rope_scaling.factor"),
    (bad("phi-3.5-mini-instruct.json", "rope_scaling.long_factor", [1.0] * 47),
     "rope_scaling.long_factor"),
    (bad("gpt-neox-20b.json", "rotary_pct", 1.5), "partial_rotary_factor"),
    (bad("mpt-7b.json", "attn_config.alibi", False), "attn_config.alibi"),
    (bad("t5-base.json", "relative_attention_num_buckets", 31),
     "relative_attention_num_buckets"),
    (bad("deepseek-v3.json", "qk_rope_head_dim", 63), "qk_rope_head_dim"),
    (bad("deepseek-v3.json", "kv_lora_rank", 0), "kv_lora_rank"),
    (bad("mistral-7b-v0.1.json", "sliding_window", 0), "sliding_window"),
    (bad("mistral-7b-v0.1.json", "sliding_window", 4096.5), "sliding_window"),
    (bad("qwen2.5-7b-instruct-yarn.json", "rope_scaling.type", "ntk"), "rope_scaling.rope_type"),
    (bad("gpt-oss-20b.json", "layer_types", ["sliding_attention"] * 23), "layer_types"),
    (bad("gpt-oss-20b.json", "layer_types", ["local"] * 24), "layer_types"),
    (bad("gemma-2-9b.json", "attn_logit_softcapping", -1.0), "attn_logit_softcapping"),
    (bad("gemma-2-9b.json", "sliding_window_size", 1024), "sliding_window_size"),
    (bad("gemma-2-9b.json", "query_pre_attn_scalar", 0), "query_pre_attn_scalar"),
    (bad("smollm3-3b.json", "no_rope_layers", [1] * 35), "no_rope_layers"),
    (bad("command-r7b-12-2024.json", "position_embedding_type", "rope"),
     "position_embedding_type"),
    (bad("llama-4-scout-17b-16e.json", "text_config.attn_scale", -0.1), "attn_scale"),
    (bad("mpt-7b.json", "attn_config.qk_ln", True), "attn_config.qk_ln"),
    (bad("mpt-7b.json", "attn_config.clip_qkv", 8.0), "attn_config.clip_qkv"),
    # A field posenc does not know is an error, not a layer built without it.
    (bad("llama-3.1-8b.json", "use_bidirectional_attention", True),
     "use_bidirectional_attention"),
    (bad("qwen3-8b.json", "rope_scaling", {"rope_type": "linear", "factor": 2.0,
                                           "mrope_section": [16, 24, 24]}),
     "rope_scaling.mrope_section"),
    (bad("llama-3.1-8b.json", "model_type", "llama5"), "model_type"),
    ({"model_type": "gpt2", "n_embd": 768, "n_head": 12}, "model_type"),
]


@pytest.mark.parametrize("cfg,fld", BAD, ids=[f for _, f in BAD])
def test_bad_configs_name_the_field(cfg, fld):
    with pytest.raises(models.ConfigError) as info:
        models.attention_layer(cfg, seq_len=4)
    assert info.value.field == fld
    assert f"'{fld}'" in str(info.value)


def test_cut_of_an_absent_field():
    with pytest.raises(models.ConfigError, match="n_heads"):
        models.attention_layer(config("llama-3.1-8b.json"), cut={"n_heads": 2})


def test_checked_in_examples_are_current():
    proc = subprocess.run([sys.executable, os.path.join(ROOT, "scripts", "gen_examples.py"),
                           "--check"], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_unknown_fields_may_be_vouched_for(rng):
    cfg = config("llama-3.1-8b.json")
    cfg["my_training_note"] = "lr 3e-4"
    with pytest.raises(models.ConfigError, match="my_training_note"):
        models.attention_layer(cfg, seq_len=4, cut=GQA)
    layer = models.attention_layer(cfg, seq_len=4, cut=GQA, ignore=["my_training_note"])
    assert "my_training_note" not in layer.fields


@pytest.mark.parametrize("layer", [-1, 32, True, 1.0])
def test_layer_index_out_of_range(layer):
    with pytest.raises(ValueError, match="layer must be in"):
        models.attention_layer(config("llama-3.1-8b.json"), seq_len=4, layer=layer)


# Cuts for the mutation test: head counts and widths only.
MUTATION_CUTS = {
    "bloom-560m.json": {"n_head": 2, "hidden_size": 128},
    "mpt-7b.json": {"n_heads": 2, "d_model": 256},
    "t5-base.json": {"num_heads": 2, "d_model": 128},
    "deepseek-v3.json": {"num_attention_heads": 2, "hidden_size": 256, "q_lora_rank": 64},
    "gpt-neox-20b.json": {"num_attention_heads": 2, "hidden_size": 192},
    "phi-3.5-mini-instruct.json": {"num_attention_heads": 2, "num_key_value_heads": 2,
                                   "hidden_size": 192},
    "transfo-xl-wt103.json": {"n_head": 2, "d_model": 128},
    # Its window (128) below the sequence, so that layer_types shows.
    "gpt-oss-20b.json": {**GQA, "sliding_window": 5},
}
# A field that changes no layer of this config whatever its value, and why.
NO_EFFECT_HERE = {
    ("qwen3-8b.json", "use_sliding_window"):
        "max_window_layers (36) = num_hidden_layers: no layer would slide",
    ("qwen2.5-vl-7b-instruct.json", "use_sliding_window"):
        "max_window_layers (28) = num_hidden_layers: no layer would slide",
    ("smollm3-3b.json", "use_sliding_window"):
        "sliding_window is null: transformers keeps every layer full",
}


# Integer fields that name a variant (an enum), not a quantity.
SWITCHES = {"attn_type"}
# Fields that are one value under two names: mutated together.
ALIASES = {"sliding_window": "sliding_window_size", "sliding_window_size": "sliding_window"}


def _mutations(value, layer):
    if isinstance(value, bool):
        return [not value]
    if isinstance(value, int):
        return [3 if value != 3 else 5, value + 1, value // 2, 0]
    if isinstance(value, float):
        return [value * 0.5, value * 2.0]
    if isinstance(value, str):
        return [value + "_other"]
    if isinstance(value, list) and value:
        if all(isinstance(v, str) for v in value):  # layer_types
            swap = {"sliding_attention": "full_attention", "full_attention": "sliding_attention"}
            return [[swap.get(v, v) if i == layer else v for i, v in enumerate(value)]]
        if all(v in (0, 1) and isinstance(v, int) for v in value):  # no_rope_layers
            return [[1 - v if i == layer else v for i, v in enumerate(value)]]
        if all(isinstance(v, int) for v in value):  # mrope_section
            return [value[::-1], value[1:] + value[:1]]
        return [[v * 0.5 for v in value]]
    return []


def _set(cfg, dotted, value):
    node = cfg.get("text_config", cfg) if "text_config" in cfg else cfg
    *parents, leaf = dotted.split(".")
    for p in parents:
        node = node[p]
    node[leaf] = value


def _get(cfg, dotted):
    node = cfg.get("text_config", cfg) if "text_config" in cfg else cfg
    for p in dotted.split("."):
        if not isinstance(node, dict) or p not in node:
            return None
        node = node[p]
    return node


def _outputs(cfg, cut, layer):
    """(IR, reference outputs at positions 0.. and 9000..) of one layer."""
    built = models.attention_layer(cfg, seq_len=24, cut=cut, layer=layer,
                                   decoder=cfg.get("model_type") == "t5")
    outs = []
    for start in (0, 9000):
        args = built.random_inputs(np.random.default_rng(1), start=start)
        outs.append((tuple(np.shape(a) for a in args), built.reference(args)))
    return built, outs


@pytest.mark.parametrize("name", sorted(os.listdir(CONFIGS)))
def test_every_attention_field_changes_the_layer(name):
    """Each field the builder reads, mutated, changes the IR and the float64
    output of layer 0, of the first layer built differently, or of the last
    layer. A switch (a flag, a name, a per-layer list) may instead make the
    config invalid; a number must change the output with a valid value. A
    field read but ignored would change neither."""
    base = config(name)
    cut = MUTATION_CUTS.get(name, GQA)
    text = base.get("text_config", base)
    n = next((text[k] for k in ("num_hidden_layers", "n_layer", "n_layers", "num_layers")
              if k in text), 1)
    first = models.attention_layer(base, seq_len=4, cut=cut)
    layers = [0]
    for i in range(1, n):
        if models.attention_layer(base, seq_len=4, cut=cut, layer=i).pe != f"layer {i}: {first.pe}":
            layers.append(i)
            break
    layers = sorted(set(layers + [n - 1]))
    baseline = {i: _outputs(base, cut, i) for i in layers}
    ignored = []
    for fld in first.fields:
        value = _get(base, fld)
        if fld in cut or value is None or isinstance(value, dict) or (name, fld) in NO_EFFECT_HERE:
            continue
        tried = valid = changed = 0
        for i in layers:
            for m in [c for c in _mutations(value, i) if c != value]:
                cfg = copy.deepcopy(base)
                _set(cfg, fld, m)
                if _get(base, ALIASES.get(fld, "")) is not None:
                    _set(cfg, ALIASES[fld], m)
                tried += 1
                try:
                    built, outs = _outputs(cfg, cut, i)
                except models.ConfigError:
                    changed += (not isinstance(value, (int, float)) or isinstance(value, bool)
                                or fld in SWITCHES)
                    continue
                valid += 1
                b_built, b_outs = baseline[i]
                differs = any(sa != sb or not np.array_equal(oa, ob)
                              for (sa, oa), (sb, ob) in zip(outs, b_outs))
                changed += differs and built.ir != b_built.ir
        if tried and not changed and (valid or isinstance(value, (int, float))):
            ignored.append(fld)
    assert not ignored, f"{name}: fields read but changing no output: {ignored}"


def test_mrope_layer_uses_three_axes(rng):
    # Qwen2.5-VL's text layer rotates by the temporal, height and width
    # positions of image patches; with equal axes (text tokens) it is the
    # plain RoPE layer of the same weights.
    cfg = config("qwen2.5-vl-7b-instruct.json")
    cut = {**GQA, "num_key_value_heads": 1}
    layer = models.attention_layer(cfg, seq_len=12, cut=cut)
    assert dict((n, s) for n, s, _ in layer.inputs)["pos"] == (3, 12)
    args = layer.random_inputs(rng, start=100)
    pos = args[[n for n, _, _ in layer.inputs].index("pos")]
    assert not np.array_equal(pos[0], pos[1])
    module = posenc.compile(layer.ir)
    out = module.call(layer.entry, *args)
    assert rel_err(out, layer.reference(args)) <= 1e-4
    text = [a if n != "pos" else np.stack([a[0]] * 3) for (n, _, _), a in zip(layer.inputs, args)]
    plain_cfg = dict(cfg, rope_scaling=None, model_type="qwen2")
    del plain_cfg["vision_config"]
    plain = models.attention_layer(plain_cfg, seq_len=12, cut=cut, ignore=[
        k for k in cfg if k.startswith("vision_") or k.endswith("_token_id")])
    plain_args = [a if n != "pos" else a[0] for (n, _, _), a in zip(layer.inputs, text)]
    assert rel_err(module.call(layer.entry, *text),
                   posenc.compile(plain.ir).call(plain.entry, *plain_args)) <= 1e-6


def test_qwen3_vl_text_layer(rng):
    # Qwen3-VL: QK-norm as Qwen3, M-RoPE with interleaved axes.
    cfg = {"model_type": "qwen3_vl", "text_config": {
        "model_type": "qwen3_vl_text", "hidden_size": 256, "num_attention_heads": 4,
        "num_key_value_heads": 2, "head_dim": 128, "num_hidden_layers": 36,
        "rms_norm_eps": 1e-06, "rope_theta": 5000000, "attention_bias": False,
        "rope_scaling": {"rope_type": "default", "mrope_section": [24, 20, 20],
                         "mrope_interleaved": True}}}
    layer = models.attention_layer(cfg, seq_len=10)
    assert "mrope_interleaved" in layer.ir and "QK-norm" in layer.pe
    args = layer.random_inputs(rng, start=7)
    out = posenc.compile(layer.ir).call(layer.entry, *args)
    assert rel_err(out, layer.reference(args)) <= 1e-4


def _txl_paper(a, s, m, h, d, dm, clamp, same_length):
    """Transformer-XL's score (Dai et al. 2019, Sec. 3.3) term by term, in
    float64: for query i (key index m + i) and key j at distance r = m + i - j
    (clamped at clamp_len), with R_r = [sin(r·ω), cos(r·ω)] and W_R = w_r,
    (a) q_i·k_j, (b) q_i·W_R R_r, (c) u·k_j, (d) v·W_R R_r, scaled by
    1/sqrt(d_head); keys after the query masked, and with same_length the
    keys more than mem_len back."""
    f = lambda n: np.asarray(a[n], np.float64)  # noqa: E731
    x = f("x")[0]
    c = np.concatenate([f("mem")[0], x]) if m else x
    q = (x @ f("w_q")).reshape(s, h, d)
    k = (c @ f("w_k")).reshape(m + s, h, d)
    v = (c @ f("w_v")).reshape(m + s, h, d)
    u, vb = f("r_w_bias"), f("r_r_bias")
    omega = 1.0 / 10000 ** (np.arange(0, dm, 2) / dm)
    out = np.zeros((s, h, d))
    for hh in range(h):
        for i in range(s):
            scores = np.full(m + s, -np.inf)
            for j in range(m + s):
                r = m + i - j
                if r < 0 or (same_length and r >= m > 0):
                    continue
                r = min(r, clamp) if clamp > 0 else r
                wr = (np.concatenate([np.sin(r * omega), np.cos(r * omega)]) @ f("w_r")) \
                    .reshape(h, d)[hh]
                term_a = q[i, hh] @ k[j, hh]
                term_b = q[i, hh] @ wr
                term_c = u[hh] @ k[j, hh]
                term_d = vb[hh] @ wr
                scores[j] = (term_a + term_b + term_c + term_d) / math.sqrt(d)
            p = np.exp(scores - scores.max())
            out[i, hh] = (p / p.sum()) @ v[:, hh]
    return (out.reshape(s, h * d) @ f("w_o"))[None]


@pytest.mark.parametrize("cut", [
    {"mem_len": 5, "clamp_len": 3},   # a memory, distances clamped, same_length window
    {"mem_len": 5},                   # clamp_len 1000 > every distance
    {"mem_len": 0, "clamp_len": 2},   # no memory
])
def test_transformer_xl_layer_is_the_papers_four_terms(rng, cut):
    cfg = config("transfo-xl-wt103.json")
    cut = {"n_head": 2, "d_model": 128, **cut}
    layer = models.attention_layer(cfg, seq_len=7, cut=cut)
    assert "posenc.rel_key_bias" in layer.ir
    args = layer.random_inputs(rng)
    named = {n: x for (n, _, _), x in zip(layer.inputs, args)}
    want = _txl_paper(named, 7, cut["mem_len"], 2, 64, 128, cfg["clamp_len"] if "clamp_len"
                      not in cut else cut["clamp_len"], cfg["same_length"])
    module = posenc.compile(layer.ir)
    assert rel_err(module.call(layer.entry, *args), want) <= 1e-4
    assert rel_err(layer.reference(args), want) <= 1e-9
    # Fused: the bias never becomes a [B, H, Sq, Sk] operand.
    fused = opt(layer.ir, "-posenc-fuse-bias-into-attention")
    assert "posenc.rel_key_bias" not in fused and "bias(" not in fused


# Hostile fields: each is a ConfigError naming the field, never a TypeError,
# a compile error or a layer built anyway.
HOSTILE = [
    ("llama-3.1-8b.json", "model_type", 5, "model_type"),
    ("mpt-7b.json", "attn_config", 5, "attn_config"),
    ("mpt-7b.json", "attn_config.alibi_bias_max", float("nan"), "attn_config.alibi_bias_max"),
    ("mpt-7b.json", "attn_config.alibi", "abc", "attn_config.alibi"),
    ("gpt-oss-20b.json", "rope_scaling.beta_fast", [1], "rope_scaling.beta_fast"),
    ("gpt-oss-20b.json", "rope_scaling.truncate", "false", "rope_scaling.truncate"),
    ("llama-3.1-8b.json", "rope_scaling.high_freq_factor", [1], "rope_scaling.high_freq_factor"),
    ("llama-3.1-8b.json", "rope_scaling", [], "rope_scaling"),
    ("llama-3.1-8b.json", "rope_scaling.original_max_position_embeddings", 2**63,
     "rope_scaling.original_max_position_embeddings"),
    ("gpt-neox-20b.json", "rotary_pct", [1], "rotary_pct"),
    ("gpt-neox-20b.json", "rotary_pct", "0.5", "rotary_pct"),
    ("deepseek-v3.json", "q_lora_rank", 1.5, "q_lora_rank"),
    ("gpt-oss-20b.json", "layer_types", [[1]] * 24, "layer_types"),
    ("mistral-7b-v0.1.json", "sliding_window", 2**63, "sliding_window"),
    ("llama-4-scout-17b-16e.json", "attention_chunk_size", 2**63, "attention_chunk_size"),
    ("llama-4-scout-17b-16e.json", "num_hidden_layers", 2**40, "num_hidden_layers"),
    ("smollm3-3b.json", "no_rope_layers", [], "no_rope_layers"),
    ("smollm3-3b.json", "no_rope_layers", False, "no_rope_layers"),
    ("phi-3.5-mini-instruct.json", "original_max_position_embeddings", 1,
     "original_max_position_embeddings"),
    ("phi-3.5-mini-instruct.json", "original_max_position_embeddings", 262144,
     "original_max_position_embeddings"),
    ("t5-base.json", "relative_attention_num_buckets", 2, "relative_attention_num_buckets"),
    ("t5-base.json", "relative_attention_max_distance", 2**40, "relative_attention_max_distance"),
    ("qwen2.5-vl-7b-instruct.json", "rope_scaling.mrope_section", [16, 24, 23],
     "rope_scaling.mrope_section"),
    ("qwen2.5-vl-7b-instruct.json", "rope_scaling.mrope_section", [32, 32],
     "rope_scaling.mrope_section"),
    ("transfo-xl-wt103.json", "attn_type", False, "attn_type"),
    ("qwen3-8b.json", "use_sliding_window", 2, "use_sliding_window"),
]


@pytest.mark.parametrize("name,path,value,fld", HOSTILE,
                         ids=[f"{h[0][:-5]}:{h[1]}={h[2]!r}"[:60] for h in HOSTILE])
def test_hostile_fields_name_the_field(name, path, value, fld):
    cfg = bad(name, path, value)
    cut = {k: v for k, v in MUTATION_CUTS.get(name, GQA).items() if k != path}
    with pytest.raises(models.ConfigError) as info:
        models.attention_layer(cfg, seq_len=4, cut=cut)
    assert info.value.field == fld, str(info.value)


@pytest.mark.parametrize("kw,message", [
    (dict(seq_len=8.5), "seq_len must be a positive integer"),
    (dict(batch=True), "batch must be a positive integer"),
    (dict(seq_len=2**63), "seq_len must be a positive integer"),
    (dict(entry="a b"), "entry must be a function name"),
    (dict(cut=5), "cut must be a dict"),
    (dict(ignore="x"), "ignore must be a list"),
])
def test_bad_arguments_are_value_errors(kw, message):
    with pytest.raises(ValueError, match=message):
        models.attention_layer(config("llama-3.1-8b.json"), **{"seq_len": 4, **kw})


def test_transformers_semantics_of_windows_and_biases():
    small = {**GQA}
    # Qwen's layer_types without use_sliding_window: transformers drops the
    # window; so does posenc.
    cfg = bad("qwen3-8b.json", "layer_types", ["sliding_attention"] * 36)
    cfg["sliding_window"] = 3
    assert "window(" not in models.attention_layer(cfg, seq_len=4, cut=small).ir
    assert models.sliding_windows(dict(cfg, model_type="qwen2")) == [None] * 36
    # A caller's ignore= never switches a window off.
    cfg = bad("gemma-2-9b.json", "sliding_window", 3)
    cfg["sliding_window_size"] = 3
    assert "window(3)" in models.attention_layer(cfg, seq_len=4, cut=small,
                                                 ignore=["sliding_window"]).ir
    # Mistral without the field: transformers' default window of 4096.
    cfg = bad("mistral-7b-v0.1.json", "sliding_window", KeyError)
    assert "window(4096)" in models.attention_layer(cfg, seq_len=4, cut=small).ir
    # Mistral has no biases and Qwen2 always has q/k/v biases, whatever
    # attention_bias says (transformers does not read it for them).
    cfg = bad("mistral-7b-v0.1.json", "attention_bias", True)
    assert "b_q" not in [n for n, _, _ in models.attention_layer(cfg, seq_len=4,
                                                                 cut=small).inputs]
    cfg = bad("qwen2.5-7b-instruct-yarn.json", "attention_bias", False)
    names = [n for n, _, _ in models.attention_layer(cfg, seq_len=4, cut=small).inputs]
    assert "b_q" in names and "b_o" not in names
    # Head dims cannot be cut; a field outside text_config must be known.
    with pytest.raises(models.ConfigError, match="head_dim"):
        models.attention_layer(config("gemma-2-9b.json"), seq_len=4, cut={"head_dim": 64})
    cfg = config("gemma-3-4b.json")
    cfg["query_pre_attn_scalar"] = 1
    with pytest.raises(models.ConfigError, match="outside text_config"):
        models.attention_layer(cfg, seq_len=4, cut=small)
    # Both original lengths of a LongRoPE config must agree.
    cfg = bad("phi-3.5-mini-instruct.json", "rope_scaling.original_max_position_embeddings",
                  8192)
    with pytest.raises(models.ConfigError, match="differs"):
        models.attention_layer(cfg, seq_len=4, cut=MUTATION_CUTS["phi-3.5-mini-instruct.json"])


def test_t5_max_distance_bound_is_the_ops():
    """At or below the exact-bucket range (8 encoder, 16 decoder with 32
    buckets) the op rejects the distance; models says so naming the field."""
    for md, kw in ((8, {}), (16, {"decoder": True})):
        cfg = dict(config("t5-base.json"), relative_attention_max_distance=md)
        with pytest.raises(models.ConfigError, match="exact-bucket range"):
            models.attention_layer(cfg, seq_len=12, **kw)


def test_floats_round_trip_through_mlir_exactly(rng):
    """Every double models writes into IR parses back bit-exactly (extremes,
    subnormals, integers, values repr prints as 1e-05 or 1e+16)."""
    from posenc.models import _mlir_float
    values = [1e-05, 1e16, 1e-320, 5e-324, 1.7976931348623157e308, 0.1, 3.0, -2.5e-7,
              123456789.0, 2.0**-1074, 1e22, 1 / 3]
    values += list(rng.standard_normal(50) * 10.0 ** rng.integers(-300, 300, 50))
    body = "\n".join(f"  %c{i} = arith.constant {_mlir_float(v)} : f64"
                     for i, v in enumerate(values))
    ir = ("func.func @f() -> tensor<%dxf64> {\n%s\n  %%t = tensor.from_elements %s : tensor<%dxf64>\n"
          "  return %%t : tensor<%dxf64>\n}\n") % (
              len(values), body, ", ".join(f"%c{i}" for i in range(len(values))), len(values),
              len(values))
    got = posenc.compile(ir).f()
    assert np.array_equal(got.view(np.uint64), np.array(values, np.float64).view(np.uint64))

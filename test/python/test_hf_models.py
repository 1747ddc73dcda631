"""Whole decoders from Hugging Face model directories (posenc.hf): small
random checkpoints of every family read (Llama, Mistral, Qwen2/3, Phi-3,
Gemma 1/2/3; GPT-NeoX below) written as real safetensors
files (single and sharded; f32, f16 and bf16) against the float64 model
posenc.reference.decoder_forward, and broken directories against clear
errors."""

import json

import numpy as np
import pytest

from posenc import decoder, hf, reference

HF_NAMES = hf.LAYER_NAMES


DEEPSEEK = {"kv_lora_rank": 16, "q_lora_rank": None, "qk_nope_head_dim": 8,
            "qk_rope_head_dim": 4, "v_head_dim": 8, "n_routed_experts": 8,
            "num_experts_per_tok": 2, "moe_intermediate_size": 16, "n_shared_experts": 1,
            "first_k_dense_replace": 1, "routed_scaling_factor": 2.5, "topk_method": "greedy",
            "norm_topk_prob": False, "num_key_value_heads": 4}


def base_config(model_type="llama", **extra):
    cfg = {"model_type": model_type, "hidden_size": 32, "intermediate_size": 40,
           "num_hidden_layers": 2, "num_attention_heads": 4, "num_key_value_heads": 2,
           "vocab_size": 48, "max_position_embeddings": 32, "rms_norm_eps": 1e-6,
           "rope_theta": 500000.0, "hidden_act": "silu", "tie_word_embeddings": False}
    cfg.update(extra)
    return cfg


def write_model(tmp_path, cfg, dtype="F32", shards=1, seed=0, drop=None, reshape=None):
    """Writes config.json and random weights; returns the float32 weights
    (after rounding to `dtype`) in posenc.decoder's per-layer form."""
    (tmp_path / "config.json").write_text(json.dumps(cfg))
    config, _ = hf.read_config(str(tmp_path))
    shapes = decoder.weight_shapes(config)
    tensor_names = hf.layer_tensor_names(cfg["model_type"],
                                         config.moe["experts"] if config.moe else 0)
    if config.mla and config.mla["q_rank"]:
        tensor_names["wq"] = "self_attn.q_b_proj.weight"
    rng = np.random.default_rng(seed)
    named, ours = {}, {"layers": [{} for _ in range(config.n_layers)]}

    def make(shape, scale):
        a = (rng.standard_normal(shape) * scale).astype(np.float32)
        if dtype == "F16":
            return a.astype(np.float16), a.astype(np.float16).astype(np.float32)
        if dtype == "BF16":
            bits = (a.view(np.uint32) >> 16).astype(np.uint16)
            return (bits, "BF16"), (bits.astype(np.uint32) << 16).view(np.float32)
        return a, a

    for key, hname, scale in (("token_embedding", "model.embed_tokens.weight", 1.0),
                              ("rms_final", "model.norm.weight", 1.0),
                              ("wcls", "lm_head.weight", 0.3)):
        if key == "wcls" and config.shared_classifier:
            ours["wcls"] = ours["token_embedding"]
            continue
        named[hname], ours[key] = make(shapes[key], scale)
    for i in range(config.n_layers):
        if cfg["model_type"] == "cohere2":  # one bias-free LayerNorm a layer
            ln, ln_w = make((config.dim,), 1.0)
            named[f"model.layers.{i}.input_layernorm.weight"] = ln
            zero = np.zeros(config.dim, np.float32)
            ours["layers"][i].update(rms_att=ln_w, rms_ffn=ln_w, rms_att_b=zero, rms_ffn_b=zero)
        for n in decoder.layer_names(config, i):
            if cfg["model_type"] == "cohere2" and n.startswith("rms"):
                continue
            named[f"model.layers.{i}.{tensor_names[n]}"], ours["layers"][i][n] = make(
                shapes[n], 1.0 if n.startswith(("rms", "post_", "q_norm", "k_norm", "router"))
                else 0.3)
            if n == "router_bias":  # e_score_correction_bias is stored in f32
                ours["layers"][i][n] = named[f"model.layers.{i}.{tensor_names[n]}"] = \
                    ours["layers"][i][n] * np.float32(0.1)
    if cfg["model_type"] == "phi3":
        for i in range(config.n_layers):
            p = f"model.layers.{i}."
            parts = [named.pop(p + tensor_names[n]) for n in ("wq", "wk", "wv")]
            named[p + "self_attn.qkv_proj.weight"] = np.concatenate(parts)
            gate, up = named.pop(p + tensor_names["w1"]), named.pop(p + tensor_names["w3"])
            named[p + "mlp.gate_up_proj.weight"] = np.concatenate([gate, up])
    if cfg["model_type"] == "cohere2":
        ours["rms_final_b"] = np.zeros(config.dim, np.float32)
    if cfg["model_type"] in hf.GEMMA:
        # Gemma's norms scale by 1 + w: the model's multipliers.
        for lw in ours["layers"]:
            for n in ("rms_att", "rms_ffn", "post_att", "post_ffn", "q_norm", "k_norm"):
                if n in lw:
                    lw[n] = lw[n] + np.float32(1)
        ours["rms_final"] = ours["rms_final"] + np.float32(1)
    if drop:
        del named[drop]
    if reshape:
        named[reshape] = named[reshape][:-1]
    names = list(named)
    if shards == 1:
        hf.write_safetensors(str(tmp_path / "model.safetensors"), named)
    else:
        weight_map = {}
        for s in range(shards):
            part = names[s::shards]
            fname = f"model-{s + 1:05d}-of-{shards:05d}.safetensors"
            hf.write_safetensors(str(tmp_path / fname), {n: named[n] for n in part})
            weight_map.update({n: fname for n in part})
        (tmp_path / "model.safetensors.index.json").write_text(
            json.dumps({"metadata": {}, "weight_map": weight_map}))
    return config, ours


@pytest.mark.parametrize("model_type,extra,dtype,shards", [
    ("llama", {}, "F32", 1),
    ("llama", {"rope_scaling": {"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0,
                                "high_freq_factor": 4.0,
                                "original_max_position_embeddings": 8}}, "BF16", 2),
    ("mistral", {"sliding_window": 4, "head_dim": 16}, "F16", 1),
    ("qwen2", {"tie_word_embeddings": True, "num_key_value_heads": 1}, "F32", 3),
    # Qwen2's windows from layer max_window_layers on: layer 0 full, layer 1
    # a window of 3 keys.
    ("qwen2", {"use_sliding_window": True, "sliding_window": 3, "max_window_layers": 1},
     "F32", 1),
    ("phi3", {"sliding_window": 5, "rope_scaling": {
        "type": "longrope", "short_factor": [1.0, 1.2, 1.5, 2.0],
        "long_factor": [1.5, 2.0, 3.0, 4.0], "original_max_position_embeddings": 8}},
     "F32", 1),
    # Qwen3: QK-norm, head_dim 16 != 32 / 4, windows from layer 1 on.
    ("qwen3", {"head_dim": 16, "use_sliding_window": True, "sliding_window": 4,
               "max_window_layers": 1}, "BF16", 1),
    ("llama", {"attention_bias": True}, "F32", 1),  # q/k/v and o_proj biases
    # Mixtral: 4 experts, top 2 renormalized, every layer.
    ("mixtral", {"num_local_experts": 4, "num_experts_per_tok": 2, "intermediate_size": 24},
     "F32", 1),
    # Qwen2-MoE: q/k/v biases, 6 experts (top 2, not renormalized), a
    # shared expert; layer 0 dense (mlp_only_layers).
    ("qwen2_moe", {"num_experts": 6, "num_experts_per_tok": 2, "moe_intermediate_size": 16,
                   "shared_expert_intermediate_size": 24, "mlp_only_layers": [0]}, "BF16", 2),
    # Qwen3-MoE: QK-norm, 8 experts top 3 renormalized.
    ("qwen3_moe", {"num_experts": 8, "num_experts_per_tok": 3, "moe_intermediate_size": 16,
                   "norm_topk_prob": True, "head_dim": 16}, "F32", 1),
    # DeepSeek-V2-Lite-like: latent attention (no q LoRA), interleaved
    # YaRN RoPE (mscale 0.707), layer 0 dense, layer 1 MoE with 8 experts,
    # greedy top 2 scaled by 2.5 and one ungated shared expert.
    ("deepseek_v2", dict(DEEPSEEK, rope_scaling={
        "type": "yarn", "factor": 4.0, "original_max_position_embeddings": 8,
        "mscale": 0.707, "mscale_all_dim": 0.707, "beta_fast": 32, "beta_slow": 1}),
     "F32", 1),
    # DeepSeek-V2-like: q LoRA with its RMSNorm, group_limited_greedy (4
    # groups, 2 kept), top 3 renormalized, both layers MoE.
    ("deepseek_v2", dict(DEEPSEEK, q_lora_rank=12, topk_method="group_limited_greedy",
                         n_group=4, topk_group=2, num_experts_per_tok=3, norm_topk_prob=True,
                         first_k_dense_replace=0, n_shared_experts=2), "BF16", 2),
    # DeepSeek-V3-like: sigmoid routing, choice by score + correction bias
    # over the 2 best groups (of 4) by their two best, top 3 renormalized
    # then scaled.
    ("deepseek_v3", dict(DEEPSEEK, q_lora_rank=12, topk_method="noaux_tc", n_group=4,
                         topk_group=2, num_experts_per_tok=3, norm_topk_prob=True,
                         scoring_func="sigmoid", first_k_dense_replace=0), "F32", 1),
    # SmolLM3: every 4th layer without RoPE by default; here layer 1 of 2.
    ("smollm3", {"no_rope_layers": [1, 0]}, "F32", 1),
    # Command R7B: one LayerNorm for parallel attention and MLP, RoPE
    # (interleaved) on the sliding layers only, logits scaled.
    ("cohere2", {"sliding_window": 4, "sliding_window_pattern": 2, "logit_scale": 0.25,
                 "layer_norm_eps": 1e-5}, "BF16", 1),
    # Gemma: sqrt(d)-scaled embeddings, 1 + w norms, GeGLU (tanh), tied.
    ("gemma", {"head_dim": 16, "hidden_act": "gelu", "num_key_value_heads": 1}, "F32", 1),
    # Gemma 2: sandwich norms, soft-capped scores (scale 1/sqrt(24)) and
    # logits, windows on even layers.
    ("gemma2", {"head_dim": 8, "sliding_window": 3, "query_pre_attn_scalar": 24,
                "attn_logit_softcapping": 2.0, "final_logit_softcapping": 3.0}, "BF16", 2),
    # Gemma 3: QK-norm (1 + w), a local RoPE base on sliding layers, the
    # global ones scaled (linear 2).
    ("gemma3_text", {"head_dim": 8, "sliding_window": 4, "sliding_window_pattern": 2,
                     "rope_local_base_freq": 100.0, "query_pre_attn_scalar": 8,
                     "rope_scaling": {"rope_type": "linear", "factor": 2.0},
                     "num_hidden_layers": 3}, "F32", 1),
])
def test_hf_decoder_vs_float64(tmp_path, model_type, extra, dtype, shards):
    config, weights = write_model(tmp_path, base_config(model_type, **extra), dtype, shards)
    m = decoder.load(str(tmp_path))
    assert m.config == config
    if model_type in ("mistral", "phi3"):
        # The window (4 or 5 keys) is shorter than the 10 tokens below: the
        # layers must mask the keys before it (the reference does).
        assert config.sliding_window == extra["sliding_window"] and m.max_seq == 32
        assert "causal window(" in m.ir
    if extra.get("use_sliding_window"):
        windows = [s.window for s in config.schemes] if config.schemes \
            else config.sliding_window
        w = extra["sliding_window"]
        assert windows == [None, w]
        assert m.ir.count(f"causal window({w})") == 2 and "causal outs" in m.ir
    if model_type in ("qwen3", "gemma3_text"):
        assert m.ir.count("= posenc.rope ") == 4 * config.n_layers  # q, k; prefill, decode
        assert config.schemes[0].qk_norm and "q_norm" in weights["layers"][0]
    if config.moe:  # experts skipped unless chosen: one scf.if per expert and entry
        assert config.moe["layers"] == [
            i >= extra.get("first_k_dense_replace", 0)
            and i not in extra.get("mlp_only_layers", []) for i in range(2)]
        n_moe = sum(config.moe["layers"])
        assert m.ir.count("scf.if") == 2 * n_moe * config.moe["experts"]
        assert ("shared_gate" in weights["layers"][1]) == (model_type == "qwen2_moe")
    if model_type == "cohere2":  # layer 0 slides with RoPE, layer 1 is global NoPE
        assert [(s.window, s.rope, s.layout) for s in config.schemes] == \
            [(4, True, "interleaved"), (None, False, "interleaved")]
        assert m.ir.count("= posenc.rope ") == 4 and config.parallel_residual
    if model_type == "smollm3":  # NoPE layer 1: q and k of layer 0 only rotate
        assert [s.rope for s in config.schemes] == [True, False]
        assert m.ir.count("= posenc.rope ") == 4
    if model_type == "gemma2":
        assert [s.window for s in config.schemes] == [3, None]
        assert m.ir.count("softcap(2.0)") == 2 * config.n_layers
    if model_type == "gemma3_text":  # layers 0 and 2 slide, 1 is global
        assert [(s.window, s.base) for s in config.schemes] == \
            [(4, 100.0), (None, 500000.0), (4, 100.0)]
    ids = [3, 17, 0, 47, 5, 5, 21, 9, 30, 2]
    expected = reference.decoder_forward(config, weights, ids)
    scale = np.abs(expected).max()
    assert np.abs(m.prefill(ids) - expected).max() / scale < 2e-5
    if model_type == "phi3":
        # LongRoPE picks its factors from the positions of each call (as
        # Hugging Face's Phi-3 does): keys cached before the sequence passes
        # the original length keep the short factors, so a split run is not
        # the one-call run. Within the original length they agree.
        ids = ids[:8]
        expected = reference.decoder_forward(config, weights, ids)
    got = np.concatenate([m.prefill(ids[:6]), [m.decode(t) for t in ids[6:]]])
    assert np.abs(got - expected).max() / scale < 2e-5


def test_f32_weights_are_not_copied(tmp_path):
    write_model(tmp_path, base_config())
    config, weights = hf.read_model(str(tmp_path))
    wq = weights["layers"][1]["wq"]
    assert isinstance(wq.base, np.memmap) or isinstance(wq, np.memmap)
    assert not wq.flags.writeable


@pytest.mark.parametrize("case,fragment", [
    ("missing", "tensor 'model.layers.1.mlp.up_proj.weight' is missing"),
    ("shape", "tensor 'model.layers.0.self_attn.k_proj.weight' has shape (15, 32); "
              "config.json needs (16, 32)"),
    ("truncated", "(truncated)"),
    ("model_type", "model_type 'gpt2' is not read as a whole decoder"),
    ("heads", "num_attention_heads (4) is not a multiple of num_key_value_heads (3)"),
    ("no_weights", "neither model.safetensors nor model.safetensors.index.json"),
    ("header", "the safetensors header is not JSON"),
])
def test_broken_directories(tmp_path, case, fragment):
    if case == "model_type":
        (tmp_path / "config.json").write_text(json.dumps(base_config("gpt2")))
    elif case == "heads":
        (tmp_path / "config.json").write_text(json.dumps(base_config(num_key_value_heads=3)))
    elif case == "no_weights":
        (tmp_path / "config.json").write_text(json.dumps(base_config()))
    else:
        write_model(tmp_path, base_config(),
                    drop="model.layers.1.mlp.up_proj.weight" if case == "missing" else None,
                    reshape="model.layers.0.self_attn.k_proj.weight" if case == "shape"
                    else None)
        path = tmp_path / "model.safetensors"
        data = path.read_bytes()
        if case == "truncated":
            path.write_bytes(data[:-10])
        elif case == "header":
            path.write_bytes(data[:8] + b"{not json" + data[17:])
    with pytest.raises(hf.HFError) as e:
        decoder.load(str(tmp_path))
    assert fragment in str(e.value)


@pytest.mark.parametrize("field,value,fragment", [
    (None, [1, 2], "must hold a JSON object, got list"),
    ("head_dim", "8", "head_dim must be a positive integer below 2^31, got '8'"),
    ("partial_rotary_factor", "half", "partial_rotary_factor must be a number in (0, 1]"),
    ("rope_theta", -5, "rope_theta must be a number in (0, inf), got -5"),
    ("rope_theta", "abc", "rope_theta must be a number"),
    ("rms_norm_eps", -1.0, "rms_norm_eps must be a number in (0, 1), got -1.0"),
    ("tie_word_embeddings", "false", "tie_word_embeddings must be true or false, got 'false'"),
    ("sliding_window", -4, "sliding_window must be a positive integer below 2^31, got -4"),
    ("mixtral:num_experts_per_tok", 9, "num_experts_per_tok (9) exceeds the 8 experts"),
    ("qwen3_moe:mlp_only_layers", [0, 5], "mlp_only_layers must list layer indices below 2"),
    ("qwen2_moe:shared_expert_intermediate_size", 0,
     "shared_expert_intermediate_size must be a positive integer"),
    ("gemma:hidden_activation", "relu", "hidden_activation 'relu'"),
    ("deepseek_v2:scoring_func", "sigmoid", "scoring_func 'sigmoid'"),
    ("deepseek_v2:topk_method", "noaux_tc", "topk_method 'noaux_tc'"),
    ("deepseek_v2:qk_rope_head_dim", 5, "qk_rope_head_dim (5) must be even"),
    ("deepseek_v2:n_group", 3, "n_group 3 must divide n_routed_experts 8"),
    ("deepseek_v2:q_lora_rank", -1, "q_lora_rank must be null or a non-negative integer"),
    ("gemma2:final_logit_softcapping", -1, "final_logit_softcapping must be a number"),
])
def test_config_fields_are_checked(tmp_path, field, value, fragment):
    family = "mistral"
    if field and ":" in field:
        family, field = field.split(":")
    moe = {"num_experts": 8, "moe_intermediate_size": 16, "shared_expert_intermediate_size": 8,
           "num_local_experts": 8}
    if family == "deepseek_v2":
        moe = dict(DEEPSEEK, topk_method="group_limited_greedy", n_group=4, topk_group=2)
    cfg = value if field is None else base_config(family, **dict(moe, **{field: value}))
    (tmp_path / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(hf.HFError) as e:
        hf.read_config(str(tmp_path))
    assert fragment in str(e.value) and "config.json" in str(e.value)


def _patch_header(path, edit):
    data = path.read_bytes()
    n = int(np.frombuffer(data[:8], "<u8")[0])
    header = json.loads(data[8:8 + n])
    edit(header)
    text = json.dumps(header).encode()
    text += b" " * (-len(text) % 8)
    path.write_bytes(np.array([len(text)], "<u8").tobytes() + text + data[8 + n:])


@pytest.mark.parametrize("case,fragment", [
    ("overflow", "which is not 0 bytes"),
    ("overlap", "overlap"),
    ("unaligned", "not a multiple of its F32 element size"),
    ("deep", "the safetensors header is not JSON (RecursionError"),
    ("bool-dim", "tensor 'a' has shape [True, 4]"),
    ("rank-40", "tensor 'a' has shape [1, 1,"),
    ("huge-int", "the safetensors header is not JSON (ValueError"),
])
def test_safetensors_headers_are_checked(tmp_path, case, fragment):
    path = tmp_path / "x.safetensors"
    hf.write_safetensors(str(path), {"a": np.ones((4, 4), np.float32),
                                     "b": np.ones((4,), np.float32)})
    if case == "overflow":
        _patch_header(path, lambda h: h["a"].update(shape=[2**32, 2**32], data_offsets=[0, 0]))
        fragment = "spans bytes [0, 0), which is not"
    elif case == "overlap":
        _patch_header(path, lambda h: h["b"].update(data_offsets=[0, 16]))
    elif case == "unaligned":
        _patch_header(path, lambda h: h["b"].update(data_offsets=[2, 18]))
        fragment = "not a multiple of its F32 element size"
    elif case == "bool-dim":
        _patch_header(path, lambda h: h["a"].update(shape=[True, 4]))
    elif case == "rank-40":
        _patch_header(path, lambda h: h["a"].update(shape=[1] * 38 + [4, 4]))
    elif case == "huge-int":
        text = b'{"a": {"dtype": "F32", "shape": [' + b"9" * 5000 + b'], "data_offsets": [0, 4]}}'
        path.write_bytes(np.array([len(text)], "<u8").tobytes() + text)
    else:
        deep = b"[" * 100000 + b"]" * 100000
        path.write_bytes(np.array([len(deep)], "<u8").tobytes() + deep)
    with pytest.raises(hf.HFError) as e:
        hf.read_safetensors(str(path))
    assert fragment in str(e.value)


@pytest.mark.parametrize("shard,fragment", [
    ("/etc/passwd", "not a file name in the model directory"),
    ("../model.safetensors", "not a file name in the model directory"),
    (5, "maps to 5"),
    ("gone.safetensors", "is in gone.safetensors, which is missing"),
])
def test_sharded_index_stays_in_the_directory(tmp_path, shard, fragment):
    write_model(tmp_path, base_config(), shards=2)
    index = tmp_path / "model.safetensors.index.json"
    data = json.loads(index.read_text())
    data["weight_map"]["model.norm.weight"] = shard
    index.write_text(json.dumps(data))
    with pytest.raises(hf.HFError) as e:
        hf.read_model(str(tmp_path))
    assert fragment in str(e.value)


@pytest.mark.parametrize("parallel", [True, False])
def test_gpt_neox_vs_float64(tmp_path, parallel):
    # Pythia's layout: LayerNorm, exact GELU, biases everywhere, partial
    # rotary, per-head interleaved query_key_value, parallel residuals.
    cfg = {"model_type": "gpt_neox", "hidden_size": 32, "intermediate_size": 64,
           "num_hidden_layers": 2, "num_attention_heads": 4, "vocab_size": 40,
           "max_position_embeddings": 32, "rotary_pct": 0.5, "rotary_emb_base": 10000,
           "layer_norm_eps": 1e-5, "hidden_act": "gelu", "use_parallel_residual": parallel}
    (tmp_path / "config.json").write_text(json.dumps(cfg))
    config, _ = hf.read_config(str(tmp_path))
    assert config.rotary_dim == 4 and config.parallel_residual == parallel
    shapes = decoder.weight_shapes(config)
    rng = np.random.default_rng(1)
    r = lambda shape, s=0.3: (rng.standard_normal(shape) * s).astype(np.float32)  # noqa: E731
    ours = {"token_embedding": r(shapes["token_embedding"], 1.0),
            "rms_final": 1 + r((32,), 0.1), "rms_final_b": r((32,), 0.1),
            "wcls": r(shapes["wcls"]), "layers": []}
    named = {"gpt_neox.embed_in.weight": ours["token_embedding"],
             "gpt_neox.final_layer_norm.weight": ours["rms_final"],
             "gpt_neox.final_layer_norm.bias": ours["rms_final_b"],
             "embed_out.weight": ours["wcls"]}
    hf_names = {"rms_att": "input_layernorm.weight", "rms_att_b": "input_layernorm.bias",
                "rms_ffn": "post_attention_layernorm.weight",
                "rms_ffn_b": "post_attention_layernorm.bias", "wo": "attention.dense.weight",
                "bo": "attention.dense.bias", "w1": "mlp.dense_h_to_4h.weight",
                "b1": "mlp.dense_h_to_4h.bias", "w2": "mlp.dense_4h_to_h.weight",
                "b2": "mlp.dense_4h_to_h.bias"}
    for i in range(config.n_layers):
        lw = {n: (1 + r(shapes[n], 0.1)) if n in ("rms_att", "rms_ffn") else r(shapes[n])
              for n in decoder.layer_names(config, i)}
        ours["layers"].append(lw)
        p = f"gpt_neox.layers.{i}."
        named.update({p + hf_names[n]: lw[n] for n in hf_names})
        # Rows per head: [q_h; k_h; v_h].
        named[p + "attention.query_key_value.weight"] = np.stack(
            [lw[n].reshape(4, 8, 32) for n in ("wq", "wk", "wv")], axis=1).reshape(96, 32)
        named[p + "attention.query_key_value.bias"] = np.stack(
            [lw[n].reshape(4, 8) for n in ("bq", "bk", "bv")], axis=1).reshape(96)
    hf.write_safetensors(str(tmp_path / "model.safetensors"), named)
    m = decoder.load(str(tmp_path))
    ids = [3, 17, 0, 39, 5, 5, 21, 9]
    expected = reference.decoder_forward(config, ours, ids)
    scale = np.abs(expected).max()
    assert np.abs(m.prefill(ids) - expected).max() / scale < 2e-5
    got = np.concatenate([m.prefill(ids[:5]), [m.decode(t) for t in ids[5:]]])
    assert np.abs(got - expected).max() / scale < 2e-5


def test_generate_with_the_directory_tokenizer(tmp_path):
    """A model directory's tokenizer.json is read: the CLI encodes the
    prompt with it, prints text, generates the reference's greedy ids and
    stops at the config's eos_token_id (not printed)."""
    import subprocess
    import sys

    pieces = ["<unk>", "<s>", "</s>", "▁", "a", "b", "▁a", "ab", "▁ab", "<0x21>"]
    tok = {"added_tokens": [{"id": 1, "content": "<s>", "special": True},
                            {"id": 2, "content": "</s>", "special": True}],
           "pre_tokenizer": {"type": "Metaspace", "replacement": "▁",
                             "prepend_scheme": "first", "split": False},
           "decoder": {"type": "Metaspace", "replacement": "▁", "prepend_scheme": "first"},
           "model": {"type": "BPE", "unk_token": "<unk>", "byte_fallback": True,
                     "vocab": {p: i for i, p in enumerate(pieces)},
                     "merges": ["▁ a", "a b", "▁a b"]}}
    (tmp_path / "tokenizer.json").write_text(json.dumps(tok))
    config, weights = write_model(tmp_path, base_config(bos_token_id=1))
    prompt = [8, 8]  # "ab ab"
    ids = list(prompt)
    for _ in range(6):
        ids.append(int(np.argmax(reference.decoder_forward(config, weights, ids)[-1])))
    m = decoder.load(str(tmp_path))
    assert m.tokenizer.encode("ab ab") == prompt and m.bos == 1 and m.eos == ()

    def run(*args):
        r = subprocess.run([sys.executable, "-m", "posenc.generate", str(tmp_path),
                            "--prompt", "ab ab", "--print-ids", *args],
                           capture_output=True, text=True, timeout=300)
        assert r.returncode == 0, r.stderr
        return r.stdout

    out = run("-n", "8")
    assert out.startswith("ab ab") and "prompt: 2 tokens" in out
    assert f"ids: {' '.join(map(str, ids))}" in out
    # The first generated id as EOS: generation stops before printing it.
    cfg = json.loads((tmp_path / "config.json").read_text())
    (tmp_path / "generation_config.json").write_text(json.dumps({"eos_token_id": [ids[2]]}))
    assert decoder.load(str(tmp_path)).eos == (ids[2],) and cfg.get("eos_token_id") is None
    assert f"ids: {' '.join(map(str, prompt))}\n" in run("-n", "8")


def write_alibi_model(tmp_path, family, prefix="transformer.", seed=1, **extra):
    """A random BLOOM or MPT directory; returns (config, weights in the
    decoder's form) built here from the tensors written."""
    rng = np.random.default_rng(seed)
    d, h, layers, vocab = 32, 4, 2, 48
    if family == "bloom":
        cfg = {"model_type": "bloom", "hidden_size": d, "n_head": h, "n_layer": layers,
               "vocab_size": vocab, "layer_norm_epsilon": 1e-5}
    else:
        cfg = {"model_type": "mpt", "d_model": d, "n_heads": h, "n_layers": layers,
               "vocab_size": vocab, "expansion_ratio": 4, "max_seq_len": 64, "no_bias": True,
               "attn_config": {"alibi": True, "alibi_bias_max": 8, "attn_impl": "torch"}}
    cfg.update(extra)
    (tmp_path / "config.json").write_text(json.dumps(cfg))
    h = cfg.get("n_head", cfg.get("n_heads"))
    hd, hid = d // h, 4 * d

    def w(*shape, scale=0.3):
        return (rng.standard_normal(shape) * scale).astype(np.float32)

    named, layers_out = {}, []
    emb = w(vocab, d, scale=1.0)
    ours = {"token_embedding": emb, "wcls": emb}
    if family == "bloom":
        named[prefix + "word_embeddings.weight"] = emb
        for n, key in (("emb_norm", "word_embeddings_layernorm"), ("rms_final", "ln_f")):
            ours[n], ours[n + "_b"] = 1 + w(d), w(d)
            named[f"{prefix}{key}.weight"], named[f"{prefix}{key}.bias"] = ours[n], ours[n + "_b"]
    else:
        named["transformer.wte.weight"] = emb
        ours["rms_final"], ours["rms_final_b"] = 1 + w(d), np.zeros(d, np.float32)
        named["transformer.norm_f.weight"] = ours["rms_final"]
    for i in range(layers):
        lw = {n: w(d, d) for n in ("wq", "wk", "wv", "wo")}
        lw.update(w1=w(hid, d), w2=w(d, hid), rms_att=1 + w(d), rms_ffn=1 + w(d))
        if family == "bloom":
            lw.update({n: w(k) for n, k in (("bq", d), ("bk", d), ("bv", d), ("bo", d),
                                             ("b1", hid), ("b2", d), ("rms_att_b", d),
                                             ("rms_ffn_b", d))})
            p = f"{prefix}h.{i}."
            fused = np.stack([lw[n].reshape(h, hd, d) for n in ("wq", "wk", "wv")], axis=1)
            fused_b = np.stack([lw[n].reshape(h, hd) for n in ("bq", "bk", "bv")], axis=1)
            named.update({p + "self_attention.query_key_value.weight": fused.reshape(3 * d, d),
                          p + "self_attention.query_key_value.bias": fused_b.reshape(3 * d),
                          p + "self_attention.dense.weight": lw["wo"],
                          p + "self_attention.dense.bias": lw["bo"],
                          p + "input_layernorm.weight": lw["rms_att"],
                          p + "input_layernorm.bias": lw["rms_att_b"],
                          p + "post_attention_layernorm.weight": lw["rms_ffn"],
                          p + "post_attention_layernorm.bias": lw["rms_ffn_b"],
                          p + "mlp.dense_h_to_4h.weight": lw["w1"],
                          p + "mlp.dense_h_to_4h.bias": lw["b1"],
                          p + "mlp.dense_4h_to_h.weight": lw["w2"],
                          p + "mlp.dense_4h_to_h.bias": lw["b2"]})
        else:
            lw.update(rms_att_b=np.zeros(d, np.float32), rms_ffn_b=np.zeros(d, np.float32))
            p = f"transformer.blocks.{i}."
            named.update({p + "attn.Wqkv.weight": np.concatenate([lw["wq"], lw["wk"], lw["wv"]]),
                          p + "attn.out_proj.weight": lw["wo"], p + "norm_1.weight": lw["rms_att"],
                          p + "norm_2.weight": lw["rms_ffn"], p + "ffn.up_proj.weight": lw["w1"],
                          p + "ffn.down_proj.weight": lw["w2"]})
        layers_out.append(lw)
    ours["layers"] = layers_out
    hf.write_safetensors(str(tmp_path / "model.safetensors"), named)
    config, _ = hf.read_config(str(tmp_path))
    return config, ours


@pytest.mark.parametrize("family,prefix,extra", [
    ("bloom", "transformer.", {}),
    ("bloom", "", {"n_head": 2}),  # bigscience's own files have no prefix
    ("mpt", "", {"n_heads": 8}),   # MPT's slopes for 8 heads
])
def test_alibi_models_vs_float64(tmp_path, family, prefix, extra):
    """BLOOM and MPT: ALiBi (fused into attention over the cache),
    LayerNorm, GELU MLPs; prefill, split prefill and decode against the
    float64 model."""
    config, weights = write_alibi_model(tmp_path, family, prefix, **extra)
    m = decoder.load(str(tmp_path))
    assert m.config == config and config.alibi and "posenc.alibi_bias" in m.ir
    assert "posenc.rope" not in m.ir
    h = config.n_heads
    expect = reference.alibi_slopes(h) if family == "bloom" else \
        reference.alibi_slopes_mpt(h, 8.0)
    np.testing.assert_allclose(config.alibi, expect)
    ids = [3, 17, 0, 47, 5, 5, 21, 9, 30, 2]
    expected = reference.decoder_forward(config, weights, ids)
    scale = np.abs(expected).max()
    assert np.abs(m.prefill(ids) - expected).max() / scale < 2e-5
    got = np.concatenate([m.prefill(ids[:6]), [m.decode(t) for t in ids[6:]]])
    assert np.abs(got - expected).max() / scale < 2e-5


@pytest.mark.parametrize("family,field,value,fragment", [
    ("bloom", "apply_residual_connection_post_layernorm", True, "read with False only"),
    ("mpt", "no_bias", False, "no_bias False"),
    ("mpt", "attn_config", {"alibi": False}, "attn_config.alibi False"),
    ("mpt", "attn_config", {"alibi": True, "qk_ln": True}, "attn_config.qk_ln True"),
    ("mpt", "attn_config", {"alibi": True, "clip_qkv": 8}, "attn_config.clip_qkv 8"),
    ("mpt", "n_heads", 5, "not a multiple of 5 heads"),
    ("bloom", "layer_norm_epsilon", 2.0, "layer_norm_epsilon must be"),
])
def test_alibi_configs_are_checked(tmp_path, family, field, value, fragment):
    write_alibi_model(tmp_path, family)
    expect_config_error(tmp_path, field, value, fragment)


def expect_config_error(tmp_path, field, value, fragment):
    """config.json of the model in tmp_path with `field` set to `value`
    loads to an HFError naming the file and `fragment`."""
    cfg = json.loads((tmp_path / "config.json").read_text())
    cfg[field] = value
    (tmp_path / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(hf.HFError) as e:
        decoder.load(str(tmp_path))
    assert fragment in str(e.value) and "config.json" in str(e.value)


def write_t5(tmp_path, **extra):
    """A random T5 directory; returns (T5Config, weights in posenc.t5's form)."""
    from posenc import t5

    cfg = {"model_type": "t5", "d_model": 32, "d_kv": 8, "d_ff": 48, "num_layers": 2,
           "num_decoder_layers": 3, "num_heads": 4, "vocab_size": 40,
           "relative_attention_num_buckets": 8, "relative_attention_max_distance": 20,
           "feed_forward_proj": "relu", "tie_word_embeddings": True,
           "decoder_start_token_id": 0, "eos_token_id": 1}
    cfg.update(extra)
    (tmp_path / "config.json").write_text(json.dumps(cfg))
    config = t5.read_config("config.json", cfg)
    rng = np.random.default_rng(5)
    named = {}

    def get(name, shape):
        if name not in named:
            scale = 1.0 if "layer_norm" in name or "relative" in name or name == "shared.weight" \
                else 0.3
            named[name] = (rng.standard_normal(shape) * scale).astype(np.float32)
        return named[name]

    weights = t5.weights_from(config, get)
    hf.write_safetensors(str(tmp_path / "model.safetensors"), named)
    return config, weights


@pytest.mark.parametrize("extra", [
    {},  # T5 v1.0: ReLU, tied classifier scaled by d_model^-0.5
    {"feed_forward_proj": "gated-gelu", "tie_word_embeddings": False,
     "model_type": "mt5"},  # mT5 / Flan-T5: GeGLU, separate lm_head
])
def test_t5_vs_float64(tmp_path, extra):
    """T5 encoder-decoder: bidirectional and causal relative position biases
    (fused), cross-attention over cached source keys/values; teacher-forced
    logits through one decode call and step by step, and greedy generation,
    against the float64 model."""
    config, weights = write_t5(tmp_path, **extra)
    m = decoder.load(str(tmp_path))
    assert getattr(m, "seq2seq", False) and m.config == config
    assert m.ir.count("posenc.rel_bias") == 2  # one table per stack, shared by its layers
    src, tgt = [5, 9, 33, 2, 17, 1], [0, 7, 22, 3, 38]
    expected = reference.t5_forward(config, weights, src, tgt)
    scale = np.abs(expected).max()
    enc = m.encode(src)
    assert enc.shape == (len(src), config.dim)
    assert np.abs(m.decode(tgt, 0) - expected).max() / scale < 2e-5
    m.encode(src)
    steps = np.concatenate([m.decode(tgt[:2], 0)] + [m.decode([t]) for t in tgt[2:]])
    assert np.abs(steps - expected).max() / scale < 2e-5
    # Greedy generation follows the float64 argmax.
    want, ids = [], [0]
    for _ in range(4):
        nxt = int(np.argmax(reference.t5_forward(config, weights, src, ids)[-1]))
        if nxt == 1:
            break
        want.append(nxt)
        ids.append(nxt)
    assert list(m.generate(src, 4)) == want
    # The CLI: the prompt is the encoder's input, the ids line the decoder's.
    import subprocess
    import sys

    r = subprocess.run([sys.executable, "-m", "posenc.generate", str(tmp_path), "--prompt-ids",
                        ",".join(map(str, src)), "-n", "4", "--print-ids"],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    assert f"ids: {' '.join(map(str, [0] + want))}\n" in r.stdout


@pytest.mark.parametrize("field,value,fragment", [
    ("feed_forward_proj", "gated-silu", "feed_forward_proj 'gated-silu'"),
    ("relative_attention_num_buckets", 7, "must be even and >= 4"),
    ("d_model", 0, "d_model must be a positive integer"),
    ("decoder_start_token_id", -1, "decoder_start_token_id must be a token id"),
])
def test_t5_configs_are_checked(tmp_path, field, value, fragment):
    write_t5(tmp_path)
    expect_config_error(tmp_path, field, value, fragment)


@pytest.mark.parametrize("family,patch,fragment", [
    ("qwen3", {"num_hidden_layers": 10**7}, "num_hidden_layers 10000000 is above 4096"),
    ("llama", {"hidden_size": 2}, "hidden_size (2) is smaller than num_attention_heads (4)"),
    ("llama", {"max_position_embeddings": 10**30}, "must be a positive integer below 2^31"),
    ("llama", {"rope_scaling": {"factor": 8.0}}, "rope_type"),
    ("qwen3_moe", {"mlp_only_layers": 0}, "mlp_only_layers must list layer indices"),
    ("llama", {"bos_token_id": 100}, "bos_token_id 100"),
    ("llama", {"eos_token_id": [2, 48]}, "eos_token_id 48"),
])
def test_hostile_configs(tmp_path, family, patch, fragment):
    """Configs found by trying the loaders as an attacker: each is an error
    naming the field, fast (no per-layer work for 10^7 layers)."""
    extra = {"num_experts": 8, "moe_intermediate_size": 16} if family == "qwen3_moe" else {}
    write_model(tmp_path, base_config(family, **extra))
    cfg = json.loads((tmp_path / "config.json").read_text())
    cfg.update(patch)
    (tmp_path / "config.json").write_text(json.dumps(cfg))
    with pytest.raises((hf.HFError, ValueError)) as e:
        decoder.load(str(tmp_path))
    assert fragment in str(e.value), str(e.value)


def test_extreme_float_fields_reach_valid_ir(tmp_path):
    """Floats print as MLIR literals (1e-05 is not one; 1.0e-05 is)."""
    config, weights = write_model(tmp_path, base_config(
        "gemma2", head_dim=8, final_logit_softcapping=1e-05, attn_logit_softcapping=1e16,
        query_pre_attn_scalar=3e-7))
    m = decoder.load(str(tmp_path))
    ids = [3, 17, 0]
    expected = reference.decoder_forward(config, weights, ids)
    assert np.abs(m.prefill(ids) - expected).max() <= 1e-5 * np.abs(expected).max() + 1e-10


def test_hostile_tokenizer_and_prompt(tmp_path):
    """A llama2.c tokenizer.bin with a Hugging Face directory, a tokenizer
    whose ids pass the model's vocabulary, and a prompt that encodes to no
    tokens: clear errors, never tracebacks."""
    import subprocess
    import sys

    write_model(tmp_path, base_config())
    pieces = {"a": 0, "b": 1, "ab": 2}
    tok = {"model": {"type": "BPE", "vocab": pieces, "merges": ["a b"]}}
    (tmp_path / "t.json").write_text(json.dumps(tok))
    r = subprocess.run([sys.executable, "-m", "posenc.generate", str(tmp_path), "--tokenizer",
                        str(tmp_path / "t.json"), "-n", "4"], capture_output=True, text=True,
                       timeout=300)
    assert r.returncode == 2 and "encodes to no tokens" in r.stderr, r.stderr
    assert "Traceback" not in r.stderr
    tok["model"]["vocab"]["zz"] = 99
    (tmp_path / "t.json").write_text(json.dumps(tok))
    with pytest.raises(ValueError, match="token id 99 is outside the model's vocabulary"):
        decoder.load(str(tmp_path), str(tmp_path / "t.json"))
    import os

    models = os.environ.get("POSENC_MODELS_DIR", os.path.join(
        os.path.dirname(__file__), "..", "..", "..", "shared", "models"))
    bin_tok = os.path.join(models, "aidreams_tok512.bin")
    if os.path.exists(bin_tok):  # llama2.c's tokenizer.bin reads the model's vocab size
        m = decoder.load(str(tmp_path), bin_tok)
        assert len(m.tokenizer.pieces) == 48

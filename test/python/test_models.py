"""posenc.models: every example config builds a layer that compiles and
matches its float64 reference; dense_resource weights; bad configs raise
ConfigError naming the field; the checked-in examples are up to date."""

import copy
import json
import os
import subprocess
import sys

import numpy as np
import pytest

from harness import ROOT, rel_err
import posenc
from posenc import models

CONFIGS = os.path.join(ROOT, "examples", "configs")


def config(name):
    with open(os.path.join(CONFIGS, name)) as f:
        return json.load(f)


# Small cuts so that each layer compiles and runs in about a second; head
# dims and every position-encoding parameter stay as published.
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
    ("deepseek-v3.json", {"num_attention_heads": 2, "num_key_value_heads": 2,
                          "hidden_size": 256, "q_lora_rank": 64}, {}, 0),
]


@pytest.mark.parametrize("name,cut,kw,start", SMALL,
                         ids=[f"{c[0][:-5]}{'-dec' if c[2] else ''}@{c[3]}" for c in SMALL])
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
    cfg = copy.deepcopy(config(base))
    *parents, leaf = path.split(".")
    node = cfg
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
    (bad("qwen2.5-7b-instruct-yarn.json", "use_sliding_window", True), "use_sliding_window"),
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

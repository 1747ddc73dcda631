"""posenc-compress-kv and posenc.low_rank: the truncated SVD of constant
key/value projections, checked against numpy's float64 SVD (Eckart–Young)
and compressed attention layers against the float64 layer references."""

import dataclasses
import json
import os
import subprocess
import sys

import numpy as np
import pytest

import posenc
from harness import RunError, opt
from posenc import decoder, models, reference
from posenc.llama2c import layer_weights
from test_llama2c import random_checkpoint

# Attention layers with constant, bias-free K/V projections: rotary keys
# (half layout with GQA; partial rotary), non-rotary keys (ALiBi; T5's
# relative bias, whose softmax scale is 1).
CONFIGS = {
    "llama_gqa": {"model_type": "llama", "hidden_size": 64, "num_attention_heads": 4,
                  "num_key_value_heads": 2, "rope_theta": 10000.0,
                  "max_position_embeddings": 128},
    "neox_partial": {"model_type": "gpt_neox", "hidden_size": 64, "num_attention_heads": 4,
                     "rotary_pct": 0.25, "rotary_emb_base": 10000,
                     "max_position_embeddings": 128, "attention_bias": False},
    "mpt_alibi": {"model_type": "mpt", "d_model": 64, "n_heads": 4, "no_bias": True,
                  "max_seq_len": 128, "attn_config": {"alibi": True}},
    "t5": {"model_type": "t5", "d_model": 64, "num_heads": 4, "d_kv": 16,
           "relative_attention_num_buckets": 32, "relative_attention_max_distance": 128},
}
ROTARY = {"llama_gqa", "neox_partial"}
# Partial rotary: (kv heads, head dim, rotated dims).
PARTIAL = {"neox_partial": (4, 16, 4)}


def best(m, r):
    """numpy's float64 best rank-r approximation of m and all its σ."""
    u, s, vt = np.linalg.svd(m, full_matrices=False)
    return (u[:, :r] * s[:r]) @ vt[:r], s


def energy_rank(s, e):
    kept = np.cumsum(s**2) / np.sum(s**2)
    return int(np.searchsorted(kept, e * (1 - 1e-12)) + 1)


# ---------------------------------------------------------------------------
# posenc.low_rank


@pytest.mark.parametrize("shape", [(64, 32), (32, 64), (17, 5), (1, 9), (9, 1)])
@pytest.mark.parametrize("rank", [1, 3, 100])
def test_low_rank_is_the_best_approximation(shape, rank, rng):
    m = rng.standard_normal(shape) * rng.uniform(0.1, 10)
    down, up, sigma = posenc.low_rank(m, rank=rank)
    r = min(rank, *shape)
    assert down.shape == (shape[0], r) and up.shape == (r, shape[1])
    ref, s = best(m, r)
    scale = s[0]
    np.testing.assert_allclose(sigma, s, rtol=1e-10, atol=1e-12 * scale)
    np.testing.assert_allclose(down @ up, ref, atol=1e-10 * scale)
    # Eckart–Young: the error is exactly the dropped singular values.
    err = m - down @ up
    assert abs(np.linalg.norm(err) - np.sqrt(np.sum(s[r:] ** 2))) < 1e-9 * scale
    if r < min(shape):
        assert abs(np.linalg.norm(err, 2) - s[r]) < 1e-9 * scale
    np.testing.assert_allclose(down.T @ down, np.eye(r), atol=1e-10)


@pytest.mark.parametrize("energy", [0.01, 0.5, 0.9, 0.99, 0.999999, 1.0])
def test_low_rank_energy_picks_the_smallest_rank(energy, rng):
    m = rng.standard_normal((48, 40)) * np.geomspace(1, 1e-3, 40)
    down, up, sigma = posenc.low_rank(m, energy=energy)
    r = down.shape[1]
    assert r == energy_rank(sigma, energy)
    kept = np.sum(sigma[:r] ** 2) / np.sum(sigma**2)
    assert kept >= energy * (1 - 1e-12)
    if r > 1:
        assert np.sum(sigma[:r - 1] ** 2) / np.sum(sigma**2) < energy


def test_low_rank_exact_rank(rng):
    m = rng.standard_normal((30, 3)) @ rng.standard_normal((3, 20))
    down, up, _ = posenc.low_rank(m, energy=1.0)
    assert down.shape[1] == 3
    np.testing.assert_allclose(down @ up, m, atol=1e-12 * np.abs(m).max())


@pytest.mark.parametrize("kwargs,message", [
    ({}, "exactly one"),
    ({"rank": 2, "energy": 0.5}, "exactly one"),
    ({"rank": 0}, "rank must be"),
    ({"rank": -1}, "rank must be"),
    ({"rank": True}, "rank must be"),
    ({"rank": 2.0}, "rank must be"),
    ({"energy": 0.0}, "energy must be"),
    ({"energy": 1.5}, "energy must be"),
    ({"energy": float("nan")}, "energy must be"),
    ({"energy": "0.9"}, "energy must be"),
])
def test_low_rank_bad_requests(kwargs, message):
    with pytest.raises(ValueError, match=message):
        posenc.low_rank(np.eye(3), **kwargs)


@pytest.mark.parametrize("matrix,message", [
    (np.ones(4), "2-D"), (np.ones((0, 3)), "2-D"), (np.ones((2, 2, 2)), "2-D"),
    (np.array([[1.0, np.inf]]), "non-finite"), (np.array([[np.nan]]), "non-finite"),
])
def test_low_rank_bad_matrices(matrix, message):
    with pytest.raises(ValueError, match=message):
        posenc.low_rank(matrix, rank=1)


# ---------------------------------------------------------------------------
# posenc-compress-kv on attention layers


def layer(name, seq_len=8):
    return models.attention_layer(CONFIGS[name], seq_len=seq_len, weights="constants",
                                  ignore=["attn_config"])


def layer_reference(lay, args, **weights):
    named = {n: np.asarray(a) for (n, _, _), a in zip(lay.inputs, args)}
    named.update(lay.weights)
    named.update(weights)
    return lay._reference(named)


def compressed(lay, options):
    """The layer through posenc-compress-kv{options}, compiled; checks that
    neither original projection is left."""
    ir = opt(lay.ir, f"--posenc-compress-kv={options}")
    assert "dense_resource<w_k>" not in ir.split("{-#")[0] or "rotary=decoupled" in options
    assert "dense_resource<w_v>" not in ir.split("{-#")[0]
    return getattr(posenc.compile(ir), lay.entry)


def truncated(lay, rank, factor, rotary, name=None):
    """The weights posenc-compress-kv should use, by numpy's SVD."""
    wk, wv = lay.weights["w_k"].astype(np.float64), lay.weights["w_v"].astype(np.float64)
    if rotary == "decoupled" and name in PARTIAL:
        # The rotated columns of W_k stay; the others join W_v.
        hkv, hd, rot = PARTIAL[name]
        nope = np.arange(hkv * hd).reshape(hkv, hd)[:, rot:].ravel()
        m = best(np.concatenate([wk[:, nope], wv], axis=1), rank)[0]
        wk = wk.copy()
        wk[:, nope] = m[:, :len(nope)]
        return {"w_k": wk, "w_v": m[:, len(nope):]}
    if rotary == "decoupled":
        return {"w_v": best(wv, rank)[0]}
    if factor == "separate":
        return {"w_k": best(wk, (rank + 1) // 2)[0], "w_v": best(wv, rank // 2)[0]}
    m = best(np.concatenate([wk, wv], axis=1), rank)[0]
    return {"w_k": m[:, :wk.shape[1]], "w_v": m[:, wk.shape[1]:]}


def forms(name):
    out = [("joint", "reconstruct"), ("separate", "reconstruct")]
    return out + [("joint", "decoupled")] if name in ROTARY else out


@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_full_rank_is_exact(name, rng):
    """Full rank loses nothing: [W_k | W_v] has rank <= d = 64, and
    separate factors of W_k and W_v (64 columns at most each) 64 each."""
    lay = layer(name)
    args = lay.random_inputs(rng)
    ref = layer_reference(lay, args)
    for factor, rotary in forms(name):
        out = compressed(lay, f"rank=128 factor={factor} rotary={rotary}")(*args)
        np.testing.assert_allclose(out, ref, atol=5e-6 * np.abs(ref).max(),
                                   err_msg=f"{factor} {rotary}")


@pytest.mark.parametrize("name", sorted(CONFIGS))
@pytest.mark.parametrize("rank", [2, 9, 24])
def test_rank_r_is_eckart_young(name, rank, rng):
    """At rank R the layer equals the float64 layer whose K/V weights are
    the best rank-R approximation (and differs from the original)."""
    lay = layer(name)
    args = lay.random_inputs(rng)
    original = layer_reference(lay, args)
    for factor, rotary in forms(name):
        want = layer_reference(lay, args, **truncated(lay, rank, factor, rotary, name))
        out = compressed(lay, f"rank={rank} factor={factor} rotary={rotary}")(*args)
        scale = np.abs(want).max()
        np.testing.assert_allclose(out, want, atol=2e-5 * scale, err_msg=f"{factor} {rotary}")
        assert np.abs(out - original).max() > 1e-3 * scale


@pytest.mark.parametrize("energy", [0.5, 0.9, 1.0])
def test_energy_rank_per_layer(energy, rng):
    lay = layer("llama_gqa")
    args = lay.random_inputs(rng)
    wk, wv = lay.weights["w_k"].astype(np.float64), lay.weights["w_v"].astype(np.float64)
    s = np.linalg.svd(np.concatenate([wk, wv], axis=1), compute_uv=False)
    r = energy_rank(s, energy)
    want = layer_reference(lay, args, **truncated(lay, r, "joint", "reconstruct"))
    out = compressed(lay, f"energy={energy}")(*args)
    np.testing.assert_allclose(out, want, atol=2e-5 * np.abs(want).max())


def test_dynamic_tokens_and_layers(rng):
    """Two attention ops over a dynamic token count; `layers=1` compresses
    the second only."""
    x = "tensor<?x8xf32>"
    wk = rng.standard_normal((8, 4)).astype(np.float32)
    wv = rng.standard_normal((8, 4)).astype(np.float32)

    def dense(w):
        rows = ", ".join("[" + ", ".join(repr(float(v)) for v in r) + "]" for r in w)
        return f"dense<[{rows}]> : tensor<8x4xf32>"

    lines = [f"func.func @f(%x: {x}, %q: tensor<1x?x4x2xf32>) -> "
             f"(tensor<1x?x4x2xf32>, tensor<1x?x4x2xf32>) {{",
             "%zero = arith.constant 0.0 : f32", "%c0 = arith.constant 0 : index",
             "%c1 = arith.constant 1 : index", f"%n = tensor.dim %x, %c0 : {x}",
             "%sq = tensor.dim %q, %c1 : tensor<1x?x4x2xf32>",
             f"%wk = arith.constant {dense(wk)}", f"%wv = arith.constant {dense(wv)}",
             "%e = tensor.empty(%n) : tensor<?x4xf32>",
             "%z = linalg.fill ins(%zero : f32) outs(%e : tensor<?x4xf32>) -> tensor<?x4xf32>"]
    for i in range(2):
        for nm in "kv":
            lines.append(f"%{nm}2_{i} = linalg.matmul ins(%x, %w{nm} : {x}, tensor<8x4xf32>) "
                         f"outs(%z : tensor<?x4xf32>) -> tensor<?x4xf32>")
            lines.append(f"%{nm}_{i} = tensor.expand_shape %{nm}2_{i} [[0, 1], [2, 3]] "
                         f"output_shape [1, %n, 2, 2] : tensor<?x4xf32> into tensor<1x?x2x2xf32>")
        lines.append(f"%i{i} = tensor.empty(%sq) : tensor<1x?x4x2xf32>")
        lines.append(f"%o{i} = posenc.attention %q, %k_{i}, %v_{i} outs(%i{i}) : "
                     "tensor<1x?x4x2xf32>, tensor<1x?x2x2xf32>, tensor<1x?x2x2xf32>, "
                     "tensor<1x?x4x2xf32>")
    lines.append("return %o0, %o1 : tensor<1x?x4x2xf32>, tensor<1x?x4x2xf32>\n}")
    ir = opt("\n".join(lines), "--posenc-compress-kv=rank=3 layers=1")
    assert ir.count("posenc.attention") == 2 and "tensor<1x?x1x3xf32>" in ir
    f = posenc.compile(ir).f
    for n in (1, 5, 13):
        xs = rng.standard_normal((n, 8)).astype(np.float32)
        q = rng.standard_normal((1, n, 4, 2)).astype(np.float32)
        kv = np.concatenate([wk, wv], axis=1).astype(np.float64)
        m3 = best(kv, 3)[0]
        for o, (k_w, v_w) in zip(f(xs, q), ((wk, wv), (m3[:, :4], m3[:, 4:]))):
            k = (xs @ k_w).reshape(1, n, 2, 2)
            v = (xs @ v_w).reshape(1, n, 2, 2)
            want = posenc.reference.attention(q.astype(np.float64), k, v)
            np.testing.assert_allclose(o, want, atol=2e-5 * np.abs(want).max())


def test_unmatched_listed_layer_is_an_error():
    lay = layer("llama_gqa")
    ir = lay.ir.replace("dense_resource<w_v>", "dense<0.5>")  # still constant: matches
    opt(ir, "--posenc-compress-kv=rank=4 layers=0")
    with pytest.raises(RunError, match="layers lists attention #3 but the input has 1"):
        opt(lay.ir, "--posenc-compress-kv=rank=4 layers=3")


# ---------------------------------------------------------------------------
# Whole decoders: posenc.models.load(compress_kv=...)

MODELS = os.environ.get("POSENC_MODELS_DIR",
                        os.path.join(os.path.dirname(__file__), "..", "..", "..", "shared",
                                     "models"))
shared = pytest.mark.skipif(not os.path.exists(os.path.join(MODELS, "reference.json")),
                            reason=f"no shared checkpoints in {MODELS} (set POSENC_MODELS_DIR)")


def truncated_layers(layers, spec):
    """The per-layer weights with W_k, W_v replaced by numpy's best
    approximations of the ranks `spec` asks for (float64)."""
    out = []
    for lw in layers:
        wk, wv = lw["wk"].astype(np.float64).T, lw["wv"].astype(np.float64).T  # [d, kv]
        kv = wk.shape[1]
        d = dict(lw)
        if spec.get("rotary") == "decoupled":
            r = spec.get("rank") or energy_rank(np.linalg.svd(wv, compute_uv=False),
                                                spec["energy"])
            d["wv"] = best(wv, r)[0].T
        elif spec.get("factor") == "separate":
            d["wk"] = best(wk, (spec["rank"] + 1) // 2)[0].T
            d["wv"] = best(wv, spec["rank"] // 2)[0].T
        else:
            m = np.concatenate([wk, wv], axis=1)
            r = spec.get("rank") or energy_rank(np.linalg.svd(m, compute_uv=False),
                                                spec["energy"])
            m = best(m, r)[0]
            d["wk"], d["wv"] = m[:, :kv].T, m[:, kv:].T
        out.append(d)
    return out


# (spec, (heads, kv heads)): every form meets GQA, MHA or MQA once (each
# case compiles a decoder).
@pytest.mark.parametrize("spec,heads", [
    ({"rank": 3}, (4, 2)), ({"rank": 32}, (4, 1)), ({"energy": 0.9}, (4, 4)),
    ({"rank": 6, "factor": "separate"}, (4, 2)), ({"rank": 5, "rotary": "decoupled"}, (4, 1)),
    ({"energy": 0.95, "rotary": "decoupled"}, (4, 4))])
def test_compressed_decoder_vs_float64(tmp_path, heads, spec):
    """Prefill, a second prefill from the cache and decode steps of a
    compressed random checkpoint equal the float64 decoder whose K/V
    weights are numpy's truncated ones; rank d (32) equals the original."""
    path, c, w = random_checkpoint(tmp_path, True, *heads)
    m = decoder.load(path, compress_kv=dict(spec))
    weights = layer_weights(w, c.n_layers)
    weights["layers"] = truncated_layers(weights["layers"], spec)
    ids = [1, 5, 9, 33, 2, 17, 39, 0, 12]
    expected = reference.decoder_forward(c, weights, ids)
    scale = np.abs(expected).max()
    got = np.concatenate([m.prefill(ids[:4]), m.prefill(ids[4:7], start=4),
                          [m.decode(ids[7]), m.decode(ids[8])]])
    assert np.abs(got - expected).max() / scale < 1e-5
    original = reference.decoder_forward(c, layer_weights(w, c.n_layers), ids)
    lossless = spec == {"rank": 32}
    assert (np.abs(original - expected).max() / scale < 1e-9) == lossless
    rep = m.compression
    assert rep["original_floats_per_token"] == 2 * c.kv_dim * c.n_layers
    widths = {"joint": lambda r: r[0], "separate": sum,
              "decoupled": lambda r: c.kv_dim + r[0]}[rep["kind"]]
    assert rep["cache_floats_per_token"] == c.n_layers * max(widths(r) for r in
                                                             rep["layer_ranks"])
    assert sum(cache.shape[2] * cache.shape[3] for cache in m.caches) * c.n_layers == \
        rep["cache_floats_per_token"]


def partial_truncated_layers(layers, rank, rot, hkv, hd):
    """Decoupled partial rotary by numpy: W_k's rows of the dims >= `rot`
    of each kv head and W_v replaced by the best rank-`rank` approximation
    of [those rows | W_v] (float64); the rotated rows stay."""
    out = []
    nope = np.arange(hkv * hd).reshape(hkv, hd)[:, rot:].ravel()
    for lw in layers:
        wk, wv = lw["wk"].astype(np.float64).T, lw["wv"].astype(np.float64).T
        m = best(np.concatenate([wk[:, nope], wv], axis=1), rank)[0]
        wk = wk.copy()
        wk[:, nope] = m[:, :len(nope)]
        out.append(dict(lw, wk=wk.T, wv=m[:, len(nope):].T))
    return out


@pytest.mark.parametrize("rank,heads,rot", [(3, (4, 2), 4), (7, (4, 1), 2), (5, (4, 4), 6),
                                            (24, (4, 2), 4)])
def test_decoupled_partial_rotary_decoder_vs_float64(tmp_path, rank, heads, rot):
    """Partial rotary (R_rot of hd = 8 dims rotated), rotary=decoupled: the
    cache holds the R_rot rotated dims of each kv head and one latent of
    [W_k's other rows | W_v]; prefill, a second prefill and decode steps
    equal the float64 decoder with numpy's truncated weights. Rank 24 (the
    most [8 or 12 key rows | 16 value rows] of d = 32 allows) is lossless."""
    path, c, w = random_checkpoint(tmp_path, True, *heads)
    c = dataclasses.replace(c, rotary_dim=rot)
    layers = layer_weights(w, c.n_layers)
    m = decoder.Model(c, layers, None, None, compress_kv=f"rank={rank},rotary=decoupled")
    hkv, hd = c.n_kv_heads, c.head_dim
    r = min(rank, c.dim, hkv * (hd - rot) + c.kv_dim)
    assert m.caches[0].shape == (c.n_layers, m.max_seq, hkv, rot)
    assert m.caches[1].shape == (c.n_layers, m.max_seq, 1, r)
    assert m.compression["cache_floats_per_token"] == c.n_layers * (hkv * rot + r)
    ids = [1, 5, 9, 33, 2, 17, 39, 0, 12]
    got = np.concatenate([m.prefill(ids[:4]), m.prefill(ids[4:7], start=4),
                          [m.decode(ids[7]), m.decode(ids[8])]])
    want = reference.decoder_forward(
        c, dict(layers, layers=partial_truncated_layers(layers["layers"], r, rot, hkv, hd)), ids)
    scale = np.abs(want).max()
    assert np.abs(got - want).max() / scale < 1e-5
    original = reference.decoder_forward(c, layers, ids)
    assert (np.abs(original - want).max() / scale < 1e-9) == (rank == 24)


def test_cache_holds_the_latent_only(tmp_path):
    """Rows past the used length may hold anything (NaN) without changing
    the result: each step reads the latent rows 0..n-1."""
    path, c, w = random_checkpoint(tmp_path, True)
    m = decoder.load(path, max_seq=20, compress_kv="rank=8")
    assert len(m.caches) == 1 and m.caches[0].shape == (c.n_layers, 20, 1, 8)
    ids = [1, 5, 9, 33]
    want = m.prefill(ids)
    m.caches[0][:, 4:] = np.nan
    assert np.array_equal(m.prefill(ids), want)
    assert np.isfinite(m.decode(3)).all()


@pytest.mark.parametrize("spec,message", [
    ("", "exactly one"), ("rank=2,energy=0.5", "exactly one"), ("rank=0", "rank must be"),
    ("rank=x", "rank must be"), ("rank=1.5", "rank must be"), ("energy=0", "energy must be"),
    ("energy=2", "energy must be"), ("energy=nan", "energy must be"),
    ("rank=1,factor=separate", "rank must be an integer >= 2"),
    ("rank=2,factor=both", "factor must be"), ("rank=2,rotary=no", "rotary must be"),
    ("rank=2,rank=3", "given twice"), ("size=3", "unknown key"), ("rank", "key=value"),
    ({"rank": True}, "rank must be"), ({"energy": "high"}, "energy must be"), (5, "string"),
])
def test_compress_kv_spec_errors(tmp_path, spec, message):
    path, _, _ = random_checkpoint(tmp_path, True)
    with pytest.raises(ValueError, match=message):
        decoder.load(path, compress_kv=spec)


@shared
def test_real_checkpoint_full_rank_is_lossless():
    """aidreams260K (4 heads × 16 = kv 64, d = 64): [W_k | W_v] has rank 64,
    so a 64-float latent keeps run.c's logits and greedy ids with half the
    cache."""
    with open(os.path.join(MODELS, "reference.json")) as f:
        refs = json.load(f)
    m = decoder.load(os.path.join(MODELS, "aidreams260K.bin"), compress_kv="rank=64")
    assert m.compression["cache_floats_per_token"] * 2 == \
        m.compression["original_floats_per_token"]
    for name in ("aidreams_bos", "aidreams_i_dreamed"):
        ref = refs[name]
        expected = np.load(os.path.join(MODELS, f"{name}_logits.npy"))
        got = m.prefill(ref["ids"][:16])
        assert np.abs(got - expected).max() / np.abs(expected).max() < 1e-4
        n = ref["prompt_tokens"]
        assert ref["ids"][:n] + list(m.generate(ref["ids"][:n], ref["steps"])) == ref["ids"]


@shared
def test_generate_cli_compress_kv():
    with open(os.path.join(MODELS, "reference.json")) as f:
        ref = json.load(f)["stories_prompt"]
    ids = ref["ids"][:ref["prompt_ids"]] if isinstance(ref["prompt_ids"], int) else \
        ref["prompt_ids"]
    proc = subprocess.run(
        [sys.executable, "-m", "posenc.generate", os.path.join(MODELS, "stories260K.bin"),
         "--prompt-ids", ",".join(map(str, ids)), "-n", str(ref["steps"]), "--print-ids",
         "--compress-kv", "rank=64,factor=separate"], capture_output=True, text=True,
        timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines()[-1] == "ids: " + " ".join(map(str, ref["ids"]))
    assert "KV cache compressed (separate): layer ranks 32/32; 320 floats per token instead " \
        "of 320" in proc.stderr
    bad = subprocess.run([sys.executable, "-m", "posenc.generate",
                          os.path.join(MODELS, "stories260K.bin"), "--compress-kv", "rank=-1"],
                         capture_output=True, text=True, timeout=300)
    assert bad.returncode == 2 and "compress_kv: rank must be an integer >= 1" in bad.stderr


def _two_projection_ir(wk, wv, shared_value=False, extra_result=False):
    """attention(q, x·wk, x·wv) on [1, 8, 2, 2] heads (x [8, 4]); with
    `shared_value` v is k's own projection; with `extra_result` the
    function also returns x·wk (so it must stay)."""
    def dense(w):
        rows = ", ".join("[" + ", ".join(repr(float(v)) for v in r) + "]" for r in w)
        return f"dense<[{rows}]> : tensor<4x4xf32>"

    res = "tensor<1x8x4x2xf32>" + (", tensor<8x4xf32>" if extra_result else "")
    v = "%k" if shared_value else "%v"
    return "\n".join([
        f"func.func @f(%x: tensor<8x4xf32>, %q: tensor<1x8x4x2xf32>) -> ({res}) {{",
        "%zero = arith.constant 0.0 : f32",
        f"%wk = arith.constant {dense(wk)}", f"%wv = arith.constant {dense(wv)}",
        "%e = tensor.empty() : tensor<8x4xf32>",
        "%z = linalg.fill ins(%zero : f32) outs(%e : tensor<8x4xf32>) -> tensor<8x4xf32>",
        "%k2 = linalg.matmul ins(%x, %wk : tensor<8x4xf32>, tensor<4x4xf32>) outs(%z : "
        "tensor<8x4xf32>) -> tensor<8x4xf32>",
        "%v2 = linalg.matmul ins(%x, %wv : tensor<8x4xf32>, tensor<4x4xf32>) outs(%z : "
        "tensor<8x4xf32>) -> tensor<8x4xf32>",
        "%k = tensor.expand_shape %k2 [[0, 1], [2, 3]] output_shape [1, 8, 2, 2] : "
        "tensor<8x4xf32> into tensor<1x8x2x2xf32>",
        "%v = tensor.expand_shape %v2 [[0, 1], [2, 3]] output_shape [1, 8, 2, 2] : "
        "tensor<8x4xf32> into tensor<1x8x2x2xf32>",
        "%i = tensor.empty() : tensor<1x8x4x2xf32>",
        f"%o = posenc.attention %q, %k, {v} causal outs(%i) : tensor<1x8x4x2xf32>, "
        "tensor<1x8x2x2xf32>, tensor<1x8x2x2xf32>, tensor<1x8x4x2xf32>",
        f"return %o{', %k2' if extra_result else ''} : {res}", "}"])


@pytest.mark.parametrize("shared_value,extra_result", [(True, False), (False, True),
                                                       (True, True)])
def test_shared_and_reused_projections(shared_value, extra_result, rng):
    """k and v from one projection (factored as [W | W]), or a projection
    that is also returned (kept): the result still matches float64."""
    wk = rng.standard_normal((4, 4)).astype(np.float32)
    wv = rng.standard_normal((4, 4)).astype(np.float32)
    ir = opt(_two_projection_ir(wk, wv, shared_value, extra_result), "--posenc-compress-kv=rank=2")
    assert ir.count("posenc.attention") == 1 and "tensor<1x8x1x2xf32>" in ir
    x = rng.standard_normal((8, 4)).astype(np.float32)
    q = rng.standard_normal((1, 8, 4, 2)).astype(np.float32)
    out = posenc.compile(ir).f(x, q)
    out = out if extra_result else (out,)
    wv_used = wk if shared_value else wv
    m = best(np.concatenate([wk, wv_used], axis=1).astype(np.float64), 2)[0]
    k = (x @ m[:, :4]).reshape(1, 8, 2, 2)
    v = (x @ m[:, 4:]).reshape(1, 8, 2, 2)
    want = posenc.reference.attention(q.astype(np.float64), k, v, causal=True)
    np.testing.assert_allclose(out[0], want, atol=2e-5 * np.abs(want).max())
    if extra_result:
        np.testing.assert_allclose(out[1], x.astype(np.float64) @ wk, atol=1e-5)


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_non_finite_weights_are_an_error(bad, rng):
    wk = rng.standard_normal((4, 4)).astype(np.float32)
    wv = wk.copy()
    wv[1, 2] = bad
    with pytest.raises(RunError, match="cannot factor the key/value projection weights: the matrix has a non-finite entry"):
        opt(_two_projection_ir(wk, wv).replace("inf", "0x7F800000").replace("nan", "0x7FC00000"),
            "--posenc-compress-kv=rank=2")


@pytest.mark.parametrize("query", ["%k", "%v"])
def test_query_is_the_key_or_value_projection(query, rng):
    """q may be k's or v's own projection value (found by a hostile round:
    the absorbed W_q and the k/v chains were erased twice)."""
    wk = rng.standard_normal((4, 4)).astype(np.float32)
    wv = rng.standard_normal((4, 4)).astype(np.float32)
    ir = _two_projection_ir(wk, wv)
    ir = ir.replace("%q: tensor<1x8x4x2xf32>", "%q: tensor<1x8x2x2xf32>")
    ir = ir.replace("posenc.attention %q,", f"posenc.attention {query},")
    ir = ir.replace("tensor<1x8x4x2xf32>", "tensor<1x8x2x2xf32>")
    out = posenc.compile(opt(ir, "--posenc-compress-kv=rank=3")).f
    x = rng.standard_normal((8, 4)).astype(np.float32)
    got = out(x, np.zeros((1, 8, 2, 2), np.float32))
    m = best(np.concatenate([wk, wv], axis=1).astype(np.float64), 3)[0]
    x64 = x.astype(np.float64)
    q = (x64 @ (wk if query == "%k" else wv)).reshape(1, 8, 2, 2)
    k = (x64 @ m[:, :4]).reshape(1, 8, 2, 2)
    v = (x64 @ m[:, 4:]).reshape(1, 8, 2, 2)
    want = posenc.reference.attention(q, k, v, causal=True)
    np.testing.assert_allclose(got, want, atol=2e-5 * np.abs(want).max())


def test_factors_beyond_f32_are_an_error():
    """Finite f32 weights whose factors B = Σ·Vᵀ exceed f32."""
    w = np.where(np.arange(16).reshape(4, 4) % 3 == 0, 3e38, -3e38).astype(np.float32)
    ir = _two_projection_ir(w, w / 2).replace("inf", "0x7F800000")
    with pytest.raises(RunError, match="factors of the key/value projection weights exceed f32"):
        opt(ir, "--posenc-compress-kv=rank=4")


@pytest.mark.parametrize("scale", [1e200, 1e-200])
def test_low_rank_energy_is_scale_invariant(scale):
    m = np.diag([scale, scale, scale * 1e-10])
    assert posenc.low_rank(m, energy=0.9)[0].shape[1] == 2
    assert posenc.low_rank(m, energy=0.4)[0].shape[1] == 1


def test_low_rank_refuses_overflow_and_complex():
    with pytest.raises(posenc.Error, match="overflowed float64"):
        posenc.low_rank(np.full((2, 2), 1.7e308), rank=1)
    with pytest.raises(ValueError, match="real"):
        posenc.low_rank(np.eye(2) * 1j, rank=1)


def test_zero_projections_and_length_dependent_rope(tmp_path):
    """All-zero K/V weights compress (nothing to drop); RoPE scalings that
    depend on the length refuse rebuilt keys but allow decoupled."""
    from posenc import compress_kv

    _, c, w = random_checkpoint(tmp_path, True)
    layers = layer_weights(w, c.n_layers)["layers"]
    zero = [dict(lw, wk=0 * lw["wk"], wv=0 * lw["wv"]) for lw in layers]
    for spec in ("rank=4,factor=separate", "energy=0.9,factor=separate", "rank=4"):
        assert max(compress_kv.compress(c, zero, spec)[2]["layer_dropped_energy"]) == 0
    for kind in ("dynamic", "longrope"):
        cd = dataclasses.replace(c, rope_scaling={"kind": kind, "factor": 2.0})
        with pytest.raises(ValueError, match="depends on the sequence length"):
            compress_kv.compress(cd, layers, "rank=4")
        compress_kv.compress(cd, layers, "rank=4,rotary=decoupled")

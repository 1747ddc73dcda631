"""posenc-compress-kv and posenc.low_rank: the truncated SVD of constant
key/value projections, checked against numpy's float64 SVD (Eckart–Young)
and compressed attention layers against the float64 layer references."""

import numpy as np
import pytest

import posenc
from harness import RunError, opt
from posenc import models

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


def reference(lay, args, **weights):
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


def truncated(lay, rank, factor, rotary):
    """The weights posenc-compress-kv should use, by numpy's SVD."""
    wk, wv = lay.weights["w_k"].astype(np.float64), lay.weights["w_v"].astype(np.float64)
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
    ref = reference(lay, args)
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
    original = reference(lay, args)
    for factor, rotary in forms(name):
        want = reference(lay, args, **truncated(lay, rank, factor, rotary))
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
    want = reference(lay, args, **truncated(lay, r, "joint", "reconstruct"))
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

"""posenc-fold-constants: results evaluated at compile time equal the
lowered code and the reference."""

import numpy as np
import pytest

from harness import func_ir, opt, rel_err, run, tensor_type, type_of
from posenc import reference as ref
from test_rope import DYNAMIC, LLAMA31, PHI3, scaling_attr


def const(name, a):
    """`%name = arith.constant dense<"0x..."> : type` with the exact bytes."""
    return f'%{name} = arith.constant dense<"0x{a.tobytes().hex().upper()}"> : {type_of(a)}'


def both_ways(body, rt):
    """Runs the zero-argument function folded and unfolded."""
    ir = func_ir([], body, [("%r", rt)])
    assert "posenc." not in opt(ir, "-posenc-fold-constants").split("{", 1)[1]
    (folded,) = run(ir, [])
    (lowered,) = run(ir, [], pipeline="posenc-lower-to-cpu{fold-max-elements=0}")
    return folded, lowered


@pytest.mark.parametrize("layout,scaling,base,hi", [
    ("half", LLAMA31, 500000.0, 100000), ("interleaved", DYNAMIC, 10000.0, 5000),
    ("half", PHI3, 10000.0, 9000)])
def test_rope(rng, layout, scaling, base, hi):
    d = 96 if scaling is PHI3 else 32
    x = rng.uniform(-1, 1, size=(1, 5, 2, d)).astype(np.float32)
    p = rng.integers(0, hi, size=5).astype(np.int32)
    xt, pt = type_of(x), type_of(p)
    body = [const("x", x), const("p", p),
            f"%r = posenc.rope %x, %p layout {layout} {{base = {base!r} : f64, "
            f"scaling = {scaling_attr(scaling)}}} : {xt}, {pt}"]
    folded, lowered = both_ways(body, xt)
    expected = ref.rope(x, p, layout=layout, base=base, scaling=scaling)
    assert rel_err(folded, expected) <= 1e-6
    assert rel_err(lowered, expected) <= 1e-5


@pytest.mark.parametrize("interleaved", [False, True])
def test_mrope(rng, interleaved):
    x = rng.uniform(-1, 1, size=(2, 5, 2, 24)).astype(np.float32)
    p = rng.integers(0, 30000, size=(3, 2, 5)).astype(np.int64)
    xt, pt = type_of(x), type_of(p)
    flag = ", mrope_interleaved" if interleaved else ""
    body = [const("x", x), const("p", p),
            f"%r = posenc.rope %x, %p layout half {{base = 1000000.0 : f64, "
            f"mrope_section = array<i64: 4, 4, 4>{flag}}} : {xt}, {pt}"]
    folded, lowered = both_ways(body, xt)
    expected = ref.rope(x, p, base=1e6, mrope_section=[4, 4, 4], mrope_interleaved=interleaved)
    assert rel_err(folded, expected) <= 1e-6
    assert rel_err(lowered, expected) <= 1e-5


def test_sinusoidal(rng):
    p = rng.integers(0, 1 << 20, size=(2, 7)).astype(np.int64)
    rt = tensor_type((2, 7, 16), "f32")
    body = [const("p", p), f"%r = posenc.sinusoidal %p layout half {{dim = 16 : i64}} : {type_of(p)} -> {rt}"]
    folded, lowered = both_ways(body, rt)
    expected = ref.sinusoidal(p, 16, layout="half")
    assert np.max(np.abs(folded - expected)) <= 1e-6
    assert np.max(np.abs(lowered - expected)) <= 1e-6


def test_alibi_symmetric_batched(rng):
    q = rng.integers(0, 100, size=(2, 4)).astype(np.int32)
    k = rng.integers(0, 100, size=6).astype(np.int32)
    rt = tensor_type((2, 5, 4, 6), "f32")
    body = [const("q", q), const("k", k),
            f"%r = posenc.alibi_bias %q, %k mode symmetric {{num_heads = 5 : i64}} : "
            f"{type_of(q)}, {type_of(k)} -> {rt}"]
    folded, lowered = both_ways(body, rt)
    expected = np.broadcast_to(ref.alibi_bias(q, k, 5, mode="symmetric"), (2, 5, 4, 6))
    assert rel_err(folded, expected) <= 1e-7 and rel_err(lowered, expected) <= 1e-6


@pytest.mark.parametrize("bidirectional", [True, False])
def test_t5(rng, bidirectional):
    table = rng.standard_normal((32, 3)).astype(np.float32)
    q = np.arange(0, 300, 20, dtype=np.int32)
    k = np.arange(0, 300, 13, dtype=np.int32)
    rt = tensor_type((3, q.size, k.size), "f32")
    flag = "" if bidirectional else ", bidirectional = false"
    body = [const("t", table), const("q", q), const("k", k),
            f"%r = posenc.rel_bias %t, %q, %k kind t5 {{num_buckets = 32 : i64, "
            f"max_distance = 128 : i64{flag}}} : {type_of(table)}, {type_of(q)}, {type_of(k)} -> {rt}"]
    folded, lowered = both_ways(body, rt)
    expected = ref.rel_bias(table, q, k, "t5", 32, 128, bidirectional)
    assert np.array_equal(folded, expected) and np.array_equal(lowered, expected)


# Extreme-value classes of each position type: the limits, 0, ±1, ±2^24,
# ±2^31 (and ±2^63 for i64), where folding and lowering diverged before
# (saturated vs wrapped distances).
EXTREME = {
    np.int32: [-2**31, -2**31 + 1, -2**24, -1, 0, 1, 2**24, 2**31 - 1],
    np.int64: [-2**63, -2**63 + 1, -2**31 - 1, -2**31, -2**24, -1, 0, 1, 2**24,
               2**31 - 1, 2**31, 2**63 - 1],
}


def bias_both_ways(op_text, dtype, extra=()):
    """A bias op over every pair of extreme positions, folded and lowered."""
    p = np.array(EXTREME[dtype], dtype)
    op_text = op_text.replace("{pt}", type_of(p)).replace("{n}", str(len(p)))
    body = [const("p", p), *extra, op_text]
    rt = op_text.split("-> ")[-1]
    return both_ways(body, rt)


@pytest.mark.parametrize("dtype", [np.int32, np.int64])
@pytest.mark.parametrize("mode", ["causal", "symmetric"])
def test_alibi_extreme_positions_fold_as_lowered(dtype, mode):
    folded, lowered = bias_both_ways(
        f"%r = posenc.alibi_bias %p, %p mode {mode} {{num_heads = 2 : i64, slopes = array<f64: 1.0, 0.00390625>}} "
        ": {pt}, {pt} -> tensor<2x{n}x{n}xf32>", dtype)
    np.testing.assert_array_equal(folded, lowered)
    # Saturated at ±(2^31 − 1), never wrapped to the other sign.
    assert np.abs(folded).max() <= 2.0**31


@pytest.mark.parametrize("dtype", [np.int32, np.int64])
@pytest.mark.parametrize("kind,attrs,rows,bidirectional", [
    ("t5", "num_buckets = 32 : i64, max_distance = 128 : i64", 32, True),
    ("t5", "num_buckets = 32 : i64, max_distance = 128 : i64", 32, False),
    ("clip", "max_distance = 4 : i64", 9, True),
    ("clip", "max_distance = 4 : i64", 5, False)])
def test_rel_bias_extreme_positions_fold_as_lowered(dtype, kind, attrs, rows, bidirectional, rng):
    table = rng.standard_normal((rows, 2)).astype(np.float32)
    flag = "" if bidirectional else ", bidirectional = false"
    folded, lowered = bias_both_ways(
        f"%r = posenc.rel_bias %t, %p, %p kind {kind} {{{attrs}{flag}}} "
        f": {type_of(table)}, {{pt}}, {{pt}} -> tensor<2x{{n}}x{{n}}xf32>", dtype,
        extra=[const("t", table)])
    np.testing.assert_array_equal(folded, lowered)


@pytest.mark.parametrize("dtype", [np.int32, np.int64])
def test_rope_and_sinusoidal_extreme_positions_fold_as_lowered(dtype, rng):
    """Rotations agree wherever the angle means anything (|p| <= 2^31); past
    that (i64 extremes) both stay finite rotations."""
    p = np.array(EXTREME[dtype], dtype)
    x = rng.uniform(-1, 1, size=(1, len(p), 1, 16)).astype(np.float32)
    xt, pt = type_of(x), type_of(p)
    folded, lowered = both_ways(
        [const("x", x), const("p", p), f"%r = posenc.rope %x, %p layout half : {xt}, {pt}"], xt)
    meaningful = np.abs(p.astype(np.float64)) <= 2.0**31
    np.testing.assert_allclose(folded[:, meaningful], lowered[:, meaningful], atol=2e-6)
    norms = lambda t: np.hypot(t[..., :8], t[..., 8:])
    for y in (folded, lowered):
        np.testing.assert_allclose(norms(y), norms(x), rtol=1e-5)
    rt = tensor_type((len(p), 16), "f32")
    folded, lowered = both_ways(
        [const("p", p), f"%r = posenc.sinusoidal %p layout half {{dim = 16 : i64}} : {pt} -> {rt}"], rt)
    np.testing.assert_allclose(folded[meaningful], lowered[meaningful], atol=2e-6)
    assert np.all(np.abs(folded) <= 1) and np.all(np.abs(lowered) <= 1)

"""posenc.rope compiled for the CPU against posenc.reference.rope."""

import numpy as np
import pytest

from harness import from_bf16, func_ir, rel_err, run, tensor_type, to_bf16, type_of
from posenc import reference as ref
from posenc.models import scaling_attribute as scaling_attr

TOL = {"f32": 1e-5, "f16": 2e-3, "bf16": 1e-2}


def rope_ir(x, pos, layout, base=None, rotary_dim=None, scaling=None, attention_factor=None,
            mrope_section=None, mrope_interleaved=False):
    attrs = []
    if mrope_section is not None:
        attrs.append("mrope_section = array<i64: " + ", ".join(map(str, mrope_section)) + ">")
    if mrope_interleaved:
        attrs.append("mrope_interleaved")
    if base is not None:
        attrs.append(f"base = {float(base)!r} : f64")
    if rotary_dim is not None:
        attrs.append(f"rotary_dim = {rotary_dim} : i64")
    if scaling is not None:
        attrs.append(f"scaling = {scaling_attr(scaling)}")
    if attention_factor is not None:
        attrs.append(f"attention_factor = {float(attention_factor)!r} : f64")
    attr_text = (" {" + ", ".join(attrs) + "}") if attrs else ""
    xt, pt = type_of(x), type_of(pos)
    body = [f"%y = posenc.rope %x, %p layout {layout}{attr_text} : {xt}, {pt}"]
    return func_ir([("x", xt), ("p", pt)], body, [("%y", xt)])


def check_rope(rng, shape, layout, dtype="f32", pos=None, pos_dtype=np.int32, batched_pos=False,
               **attrs):
    b, s, h, d = shape
    x64 = rng.uniform(-1, 1, size=shape)
    if pos is None:
        pos = rng.integers(0, 4096, size=(b, s) if batched_pos else (s,))
    pos = np.asarray(pos).astype(pos_dtype)
    if dtype == "bf16":
        x_in = to_bf16(x64)
        x_ref = from_bf16(x_in)
    else:
        x_in = x64.astype({"f32": np.float32, "f16": np.float16, "f64": np.float64}[dtype])
        x_ref = x_in
    (y,) = run(rope_ir(x_in, pos, layout, **attrs), [x_in, pos])
    y = from_bf16(y) if dtype == "bf16" else y
    expected = ref.rope(x_ref, pos, layout=layout, **attrs)
    err = rel_err(y, expected)
    # f64: the angle p·ω is exact to an ulp of itself, and ω may differ from
    # the reference's in its last bit: the error grows with the position.
    tol = 1e-12 + 8e-16 * float(np.max(np.abs(pos))) if dtype == "f64" else TOL[dtype]
    assert err <= tol, f"relative error {err:.3g} > {tol}"
    return err


@pytest.mark.parametrize("layout", ["half", "interleaved"])
@pytest.mark.parametrize("dtype", ["f32", "f16", "bf16", "f64"])
@pytest.mark.parametrize("rotary_dim", [None, 32, 0])
def test_layouts_dtypes_partial(rng, layout, dtype, rotary_dim):
    check_rope(rng, (2, 7, 3, 64), layout, dtype, rotary_dim=rotary_dim)


@pytest.mark.parametrize("pos_dtype", [np.int32, np.int64])
@pytest.mark.parametrize("batched_pos", [False, True])
def test_positions(rng, pos_dtype, batched_pos):
    check_rope(rng, (3, 5, 2, 16), "half", pos_dtype=pos_dtype, batched_pos=batched_pos)


def test_negative_positions(rng):
    check_rope(rng, (1, 6, 2, 8), "interleaved", pos=[-5, -1, 0, 1, 100, -4096])


def test_base_and_attention_factor(rng):
    check_rope(rng, (1, 9, 2, 32), "half", base=500000.0, attention_factor=0.75)


LLAMA31 = {"kind": "llama3", "factor": 8.0, "low_freq_factor": 1.0,
           "high_freq_factor": 4.0, "original": 8192}
# Llama 4 Scout: equal low and high factors leave no band to blend across.
LLAMA4 = {"kind": "llama3", "factor": 16.0, "low_freq_factor": 1.0,
          "high_freq_factor": 1.0, "original": 8192}
DEEPSEEK_V3 = {"kind": "yarn", "factor": 40.0, "original": 4096, "beta_fast": 32.0,
               "beta_slow": 1.0, "mscale": 1.0, "mscale_all_dim": 1.0}
QWEN2_YARN = {"kind": "yarn", "factor": 4.0, "original": 32768}
# Phi-3-mini-128k: head dim 96, base 10000; factors rise from ~1 to ~60.
PHI3_SHORT = [1.0 + 0.05 * i for i in range(48)]
PHI3_LONG = [1.0 + 1.25 * i for i in range(48)]
PHI3 = {"kind": "longrope", "short_factor": PHI3_SHORT, "long_factor": PHI3_LONG,
        "original": 4096, "max_positions": 131072}
CODELLAMA_LINEAR = {"kind": "linear", "factor": 4.0}
DYNAMIC = {"kind": "dynamic", "factor": 2.0, "original": 2048}
NTK = {"kind": "ntk", "alpha": 8.0}


@pytest.mark.parametrize("name,shape,layout,base,scaling,pos_hi", [
    ("llama3.1-8b", (1, 16, 4, 128), "half", 500000.0, LLAMA31, 131072),
    ("llama4-scout", (1, 16, 4, 128), "interleaved", 500000.0, LLAMA4, 10485760),
    ("deepseek-v3-yarn", (1, 16, 4, 64), "interleaved", 10000.0, DEEPSEEK_V3, 163840),
    ("qwen2-yarn", (1, 16, 4, 128), "half", 1000000.0, QWEN2_YARN, 131072),
    ("phi3-longrope-short", (1, 16, 2, 96), "half", 10000.0, PHI3, 4096),
    ("phi3-longrope-long", (1, 16, 2, 96), "half", 10000.0, PHI3, 131072),
    ("codellama-linear", (1, 16, 4, 128), "half", 1000000.0, CODELLAMA_LINEAR, 16384),
    ("dynamic-within", (1, 16, 2, 64), "half", 10000.0, DYNAMIC, 2048),
    ("dynamic-beyond", (1, 16, 2, 64), "half", 10000.0, DYNAMIC, 8192),
    ("ntk", (1, 16, 2, 64), "half", 10000.0, NTK, 16384),
])
@pytest.mark.parametrize("dtype", ["f32", "bf16", "f64"])
def test_scalings(rng, name, shape, layout, base, scaling, pos_hi, dtype):
    pos = rng.integers(0, pos_hi, size=shape[1])
    pos[-1] = pos_hi - 1  # pins max(pos) for the position-dependent kinds
    check_rope(rng, shape, layout, dtype, pos=pos, base=base, scaling=scaling)


def test_yarn_untruncated_and_partial(rng):
    sc = dict(QWEN2_YARN, truncate=False, beta_fast=16.0, beta_slow=2.0, mscale=0.8)
    check_rope(rng, (2, 8, 2, 64), "interleaved", rotary_dim=48, base=10000.0, scaling=sc)


@pytest.mark.parametrize("p0", [2**20 - 7, 2**24 - 16, "random"])
@pytest.mark.parametrize("layout", ["half", "interleaved"])
def test_accuracy_contract(rng, p0, layout):
    """|cos θ − cos_f64 θ| <= 1e-6 for positions up to 2^24 − 1 (either
    sign): every quadrant of the f64 range reduction is hit."""
    d = 128
    if p0 == "random":
        pos = rng.integers(-(2**24) + 1, 2**24, size=512).astype(np.int32)
    else:
        pos = np.arange(p0, p0 + 16, dtype=np.int32)
    x = np.zeros((1, len(pos), 1, d), np.float32)
    if layout == "half":
        x[..., : d // 2] = 1.0  # y_u = cos θ, y_v = sin θ
    else:
        x[..., 0::2] = 1.0
    (y,) = run(rope_ir(x, pos, layout), [x, pos])
    omega = ref.rope_frequencies(10000.0, d)
    theta = pos.astype(np.float64)[:, None] * omega[None, :]
    if layout == "half":
        c, s = y[0, :, 0, : d // 2], y[0, :, 0, d // 2 :]
    else:
        c, s = y[0, :, 0, 0::2], y[0, :, 0, 1::2]
    assert np.max(np.abs(c - np.cos(theta))) <= 1e-6
    assert np.max(np.abs(s - np.sin(theta))) <= 1e-6


def test_relative_position_property(rng):
    """rope(q, m)·rope(k, n) depends only on n − m."""
    d = 64
    q = rng.uniform(-1, 1, size=d).astype(np.float32)
    k = rng.uniform(-1, 1, size=d).astype(np.float32)
    m, n = rng.integers(0, 10000, size=8), rng.integers(0, 10000, size=8)
    shift = rng.integers(0, 100000)
    pos = np.concatenate([m, n, m + shift, n + shift]).astype(np.int32)
    x = np.stack([q] * 8 + [k] * 8 + [q] * 8 + [k] * 8)[None, :, None, :]
    (y,) = run(rope_ir(x, pos, "half", scaling=LLAMA31, base=500000.0), [x, pos])
    y = y[0, :, 0, :].astype(np.float64)
    before = np.sum(y[0:8] * y[8:16], axis=1)
    after = np.sum(y[16:24] * y[24:32], axis=1)
    scale = np.max(np.abs(before))
    assert np.max(np.abs(before - after)) / scale <= 1e-5


def test_rope_dynamic_shapes(rng):
    """Dynamic B/S/H dims take their sizes from the arguments."""
    x = rng.uniform(-1, 1, size=(2, 5, 3, 16)).astype(np.float32)
    pos = rng.integers(0, 1000, size=(2, 5)).astype(np.int64)
    xt = tensor_type((None, None, None, 16), "f32")
    pt = tensor_type((None, None), "i64")
    ir = func_ir([("x", xt), ("p", pt)],
                 [f"%y = posenc.rope %x, %p layout interleaved : {xt}, {pt}"], [("%y", xt)])
    (y,) = run(ir, [x, pos])
    assert rel_err(y, ref.rope(x, pos, layout="interleaved")) <= 1e-5


@pytest.mark.parametrize("layout,scaling,base", [
    ("half", LLAMA31, 500000.0), ("interleaved", None, 10000.0),
    ("half", CODELLAMA_LINEAR, 1000000.0)])
def test_composed_ropes_match_the_chain(rng, layout, scaling, base):
    """Canonicalization turns rope(rope(x, p), q) into rope(x, p + q); the
    result still equals the reference of the two rotations in sequence."""
    from harness import opt

    x = rng.uniform(-1, 1, size=(2, 6, 3, 32)).astype(np.float32)
    p = rng.integers(-50000, 50000, size=6).astype(np.int32)
    q = rng.integers(-50000, 50000, size=6).astype(np.int32)
    xt, pt = type_of(x), type_of(p)
    one = rope_ir(x, p, layout, base=base, scaling=scaling).split("\n")[1].strip()
    attrs = one[one.index("layout"):one.rindex(" : ")]
    ir = func_ir([("x", xt), ("p", pt), ("q", pt)], [
        f"%y = posenc.rope %x, %p {attrs} : {xt}, {pt}",
        f"%z = posenc.rope %y, %q {attrs} : {xt}, {pt}",
    ], [("%z", xt)])
    assert opt(ir, "-canonicalize").count("= posenc.rope ") == 1
    (z,) = run(ir, [x, p, q])
    kw = dict(layout=layout, base=base, scaling=scaling)
    expected = ref.rope(ref.rope(x, p, **kw), q, **kw)
    assert rel_err(z, expected) <= 1e-5


def test_composed_ropes_at_the_i32_limit(rng):
    """p + q past i32's range: the composed rope adds in i64, so the result
    is still the two rotations (a wrapped sum was 6.5 off at 2^31 - 1 + 1)."""
    from harness import opt

    x = rng.uniform(-1, 1, size=(1, 4, 2, 16)).astype(np.float32)
    p = np.array([2**31 - 1, -2**31, 2**31 - 1, 7], np.int32)
    q = np.array([1, -1, 2**31 - 1, -3], np.int32)
    xt, pt = type_of(x), type_of(p)
    ir = func_ir([("x", xt), ("p", pt), ("q", pt)], [
        f"%y = posenc.rope %x, %p layout half : {xt}, {pt}",
        f"%z = posenc.rope %y, %q layout half : {xt}, {pt}",
    ], [("%z", xt)])
    assert opt(ir, "-canonicalize").count("= posenc.rope ") == 1
    (z,) = run(ir, [x, p, q])
    expected = ref.rope(ref.rope(x, p, layout="half"), q, layout="half")
    np.testing.assert_allclose(z, expected, atol=1e-5)


# M-RoPE (Qwen2-VL / Qwen2.5-VL: head dim 128, sections [16, 24, 24] of the
# 64 pairs; Qwen3-VL interleaves [24, 20, 20]).
@pytest.mark.parametrize("layout", ["half", "interleaved"])
@pytest.mark.parametrize("section,interleaved", [([16, 24, 24], False), ([24, 20, 20], True),
                                                 ([40, 24], False)])
@pytest.mark.parametrize("batched", [False, True])
def test_mrope_distinct_axes(rng, layout, section, interleaved, batched):
    s = 9
    axes = len(section)
    pos = rng.integers(0, 40000, size=(axes, 2, s) if batched else (axes, s))
    check_rope(rng, (2, s, 3, 128), layout, pos=pos, pos_dtype=np.int64, base=1000000.0,
               mrope_section=section, mrope_interleaved=interleaved)


@pytest.mark.parametrize("interleaved", [False, True])
def test_mrope_with_equal_axes_is_rope(rng, interleaved):
    # Text tokens of Qwen2.5-VL carry the same position on every axis.
    s = 12
    p = rng.integers(0, 100000, size=(s,))
    x = rng.standard_normal((1, s, 2, 128)).astype(np.float32)
    kw = dict(base=1000000.0)
    (plain,) = run(rope_ir(x, p, "half", **kw), [x, p])
    p3 = np.stack([p, p, p])
    (m,) = run(rope_ir(x, p3, "half", mrope_section=[16, 24, 24], mrope_interleaved=interleaved,
                       **kw), [x, p3])
    np.testing.assert_array_equal(m, plain)
    assert rel_err(m, ref.rope(x, p, **kw)) <= TOL["f32"]


def test_mrope_axis_changes_only_its_pairs(rng):
    # Moving the height axis changes exactly the 24 pairs of its section.
    s = 5
    p3 = np.stack([np.arange(s)] * 3).astype(np.int64)
    x = rng.standard_normal((1, s, 1, 128)).astype(np.float32)
    ir = rope_ir(x, p3, "half", mrope_section=[16, 24, 24])
    (a,) = run(ir, [x, p3])
    p3b = p3.copy()
    p3b[1] += 1000
    (b,) = run(ir, [x, p3b])
    changed = np.nonzero(np.any(a != b, axis=(0, 1, 2)))[0]
    pairs = sorted(set(int(i) % 64 for i in changed))
    assert pairs == list(range(16, 40))


@pytest.mark.parametrize("scaling, message", [
    ({"factor": 2.0}, "has no 'kind'"),
    ({"kind": "ntk2"}, "unknown rope scaling kind 'ntk2'"),
    ({"kind": "llama3", "factor": 8.0, "original": 8192}, "needs 'low_freq_factor', 'high_freq_factor'"),
    ({"kind": "yarn", "factor": 4.0}, "needs 'original'"),
])
def test_reference_names_missing_scaling_keys(scaling, message):
    # A partial scaling dict is the common user mistake; the float64
    # reference says what is missing instead of raising KeyError.
    with pytest.raises(ValueError, match=message):
        ref.rope_frequencies(10000.0, 64, scaling)


def test_reference_longrope_attention_factor_needs_max_positions():
    sc = {"kind": "longrope", "original": 4096, "long_factor": [1.0] * 32,
          "short_factor": [1.0] * 32}
    with pytest.raises(ValueError, match="needs 'max_positions'"):
        ref.rope_attention_factor(sc)
    assert ref.rope_attention_factor(dict(sc, max_positions=131072)) == pytest.approx(
        np.sqrt(1 + np.log(32) / np.log(4096)))

"""Hostile inputs at run time: empty arrays, extreme positions, NaN and Inf,
and arrays whose dynamic dims disagree. Each either computes what the float64
reference computes or fails with a message naming the op and the relation;
none crashes. (Static shapes, attribute limits and malformed IR are verifier
tests in test/Dialect/Posenc/invalid.mlir; malformed .npy files are in
test_runner.py.)"""

import numpy as np
import pytest

import posenc
from posenc import reference as ref

from harness import RunError, attention, func_ir, run

I32, I64 = np.iinfo(np.int32), np.iinfo(np.int64)


def compile_one(body, args, result):
    body = body if isinstance(body, list) else [body]
    return posenc.compile(func_ir(args, body, [("%r", result)]))


ROPE = compile_one(
    "%r = posenc.rope %x, %p layout half {rotary_dim = 8 : i64} : tensor<?x?x?x?xf32>, tensor<?xi64>",
    [("x", "tensor<?x?x?x?xf32>"), ("p", "tensor<?xi64>")], "tensor<?x?x?x?xf32>")


def bias_module(op, attrs, pos_type="i64", table=None):
    table_arg = [("t", table)] if table else []
    operands = ("%t, " if table else "") + "%q, %k"
    types = (table + ", " if table else "") + f"tensor<?x{pos_type}>, tensor<?x{pos_type}>"
    return compile_one(
        f"%r = posenc.{op} {operands} {attrs} : {types} -> tensor<4x?x?xf32>",
        table_arg + [("q", f"tensor<?x{pos_type}>"), ("k", f"tensor<?x{pos_type}>")],
        "tensor<4x?x?xf32>")


# ----------------------------------------------------------------------------
# Empty arrays
# ----------------------------------------------------------------------------

@pytest.mark.parametrize("shape", [(0, 5, 2, 8), (1, 0, 2, 8), (1, 5, 0, 8)])
def test_rope_empty(shape):
    y = ROPE.f(np.zeros(shape, np.float32), np.zeros(shape[1], np.int64))
    assert y.shape == shape


@pytest.mark.parametrize("sq,sk", [(0, 5), (5, 0), (0, 0)])
def test_bias_empty(sq, sk):
    m = bias_module("alibi_bias", "mode causal {num_heads = 4 : i64}")
    b = m.f(np.arange(sq, dtype=np.int64), np.arange(sk, dtype=np.int64))
    assert b.shape == (4, sq, sk)


@pytest.mark.parametrize("rows", [0, 1, 37])
def test_threads_split_empty_and_short_dims(rows):
    """posenc-tile-for-threads' chunks of a dynamic dim: an empty one gave a
    zero step, which the OpenMP lowering divided by (SIGFPE)."""
    ir = func_ir([("x", "tensor<?x16xf32>"), ("y", "tensor<?x16xf32>")], [
        "%c0 = arith.constant 0 : index",
        "%n = tensor.dim %x, %c0 : tensor<?x16xf32>",
        "%e = tensor.empty(%n) : tensor<?x16xf32>",
        "%o = linalg.add ins(%x, %y : tensor<?x16xf32>, tensor<?x16xf32>) outs(%e : "
        "tensor<?x16xf32>) -> tensor<?x16xf32>"], [("%o", "tensor<?x16xf32>")])
    x, y = (np.random.default_rng(rows + i).standard_normal((rows, 16)).astype(np.float32)
            for i in range(2))
    (out,) = run(ir, [x, y], pipeline="posenc-lower-to-cpu{num-threads=2}")
    np.testing.assert_array_equal(out, x + y)


def test_attention_no_keys_yields_zeros():
    """An empty key set is a fully-masked row: 0, never NaN."""
    m = compile_one(
        attention("%r", "%q", "%k", "%v", "tensor<1x?x4x8xf32>", "tensor<1x?x2x8xf32>",
                  "tensor<1x?x2x8xf32>", "tensor<1x?x4x8xf32>"),
        [("q", "tensor<1x?x4x8xf32>"), ("k", "tensor<1x?x2x8xf32>"), ("v", "tensor<1x?x2x8xf32>")],
        "tensor<1x?x4x8xf32>")
    q = np.ones((1, 3, 4, 8), np.float32)
    kv = np.zeros((1, 0, 2, 8), np.float32)
    o = m.f(q, kv, kv)
    assert o.shape == (1, 3, 4, 8) and np.all(o == 0)
    assert m.f(np.zeros((1, 0, 4, 8), np.float32), np.ones((1, 5, 2, 8), np.float32),
               np.ones((1, 5, 2, 8), np.float32)).shape == (1, 0, 4, 8)


# ----------------------------------------------------------------------------
# Positions: any value of their type (docs/Reliability.md)
# ----------------------------------------------------------------------------

EXTREME_I64 = np.array([I64.min, I64.min + 1, -2**40, -1, 0, 1, 2**40, I64.max - 1, I64.max],
                       np.int64)
EXTREME_I32 = np.array([I32.min, I32.min + 1, -2**24, -1, 0, 1, 2**24, I32.max], np.int32)


@pytest.mark.parametrize("mode", ["causal", "symmetric"])
@pytest.mark.parametrize("pos", [EXTREME_I32, EXTREME_I64], ids=["i32", "i64"])
def test_alibi_extreme_positions(mode, pos):
    """Distances saturate at ±(2^31 − 1), like the reference."""
    m = bias_module("alibi_bias", f"mode {mode} {{num_heads = 4 : i64}}",
                    pos_type="i32" if pos.dtype == np.int32 else "i64")
    got = m.f(pos, pos)
    want = ref.alibi_bias(pos, pos, 4, mode=mode)
    np.testing.assert_allclose(got, want, rtol=1e-6)


@pytest.mark.parametrize("bidirectional", [True, False])
@pytest.mark.parametrize("kind,attrs,rows", [
    ("t5", "num_buckets = 32 : i64, max_distance = 128 : i64", lambda bi: 32),
    ("clip", "max_distance = 16 : i64", lambda bi: 33 if bi else 17),
])
def test_rel_bias_extreme_positions(kind, attrs, rows, bidirectional, rng):
    """Distances past ±2^63 wrap (int64, like the reference) and every
    distance lands in the table: no read outside it."""
    n = rows(bidirectional)
    table = rng.standard_normal((n, 4)).astype(np.float32)
    flag = "true" if bidirectional else "false"
    m = bias_module("rel_bias", f"kind {kind} {{{attrs}, bidirectional = {flag}}}",
                    table=f"tensor<{n}x4xf32>")
    got = m.f(table, EXTREME_I64, EXTREME_I64)
    want = ref.rel_bias(table, EXTREME_I64, EXTREME_I64, kind=kind,
                        num_buckets=32 if kind == "t5" else None,
                        max_distance=128 if kind == "t5" else 16, bidirectional=bidirectional)
    np.testing.assert_allclose(got, want, rtol=1e-6)
    assert set(np.unique(got)) <= set(table.ravel().tolist())


def test_rel_key_bias_extreme_positions(rng):
    m = compile_one(
        "%r = posenc.rel_key_bias %x, %e, %q, %q {max_distance = 4 : i64} : tensor<1x?x2x8xf32>, tensor<9x8xf32>, tensor<?xi64>, tensor<?xi64> -> tensor<1x2x?x?xf32>",
        [("x", "tensor<1x?x2x8xf32>"), ("e", "tensor<9x8xf32>"), ("q", "tensor<?xi64>")],
        "tensor<1x2x?x?xf32>")
    x = rng.standard_normal((1, len(EXTREME_I64), 2, 8)).astype(np.float32)
    e = rng.standard_normal((9, 8)).astype(np.float32)
    got = m.f(x, e, EXTREME_I64)
    np.testing.assert_allclose(got, ref.rel_key_bias(x, e, EXTREME_I64, EXTREME_I64, 4),
                               rtol=1e-5, atol=1e-5)


def test_rope_extreme_i32_positions_match_reference(rng):
    """Past the 2^24 contract the f64 reduction still holds for all i32."""
    m = compile_one(
        "%r = posenc.rope %x, %p layout interleaved : tensor<1x?x2x16xf32>, tensor<?xi32>",
        [("x", "tensor<1x?x2x16xf32>"), ("p", "tensor<?xi32>")], "tensor<1x?x2x16xf32>")
    x = rng.standard_normal((1, len(EXTREME_I32), 2, 16)).astype(np.float32)
    got = m.f(x, EXTREME_I32)
    np.testing.assert_allclose(got, ref.rope(x, EXTREME_I32, layout="interleaved"),
                               atol=2e-6)


def test_rope_extreme_i64_positions_stay_rotations(rng):
    """Angles past 2^51 rad are noise (their f64 ulp exceeds π/2), but each
    pair is still rotated: finite, norm kept."""
    x = rng.standard_normal((1, len(EXTREME_I64), 2, 8)).astype(np.float32)
    y = ROPE.f(x, EXTREME_I64)
    assert np.all(np.isfinite(y))
    pairs = lambda t: np.hypot(t[..., :4], t[..., 4:])
    np.testing.assert_allclose(pairs(y), pairs(x), rtol=1e-5)


# ----------------------------------------------------------------------------
# NaN and Inf propagate like the reference
# ----------------------------------------------------------------------------

@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_rope_nonfinite(bad, rng):
    x = rng.standard_normal((1, 4, 2, 8)).astype(np.float32)
    x[0, 1, 0, 2] = bad
    p = np.arange(4, dtype=np.int64) * 1000
    np.testing.assert_allclose(ROPE.f(x, p), ref.rope(x, p, rotary_dim=8), atol=1e-5,
                               equal_nan=True)


@pytest.mark.parametrize("where", ["q", "k", "v"])
@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_attention_nonfinite(where, bad, rng):
    m = compile_one(
        attention("%r", "%q", "%k", "%v", "tensor<1x6x4x8xf32>", "tensor<1x6x2x8xf32>",
                  "tensor<1x6x2x8xf32>", "tensor<1x6x4x8xf32>", attrs=" causal"),
        [("q", "tensor<1x6x4x8xf32>"), ("k", "tensor<1x6x2x8xf32>"), ("v", "tensor<1x6x2x8xf32>")],
        "tensor<1x6x4x8xf32>")
    t = {"q": rng.standard_normal((1, 6, 4, 8)).astype(np.float32),
         "k": rng.standard_normal((1, 6, 2, 8)).astype(np.float32),
         "v": rng.standard_normal((1, 6, 2, 8)).astype(np.float32)}
    t[where][0, 2, 1, 3] = bad
    with np.errstate(invalid="ignore"):
        want = ref.attention(t["q"], t["k"], t["v"], causal=True)
    got = m.f(t["q"], t["k"], t["v"])
    # Same positions are non-finite; the rest agree.
    assert np.array_equal(np.isnan(got), np.isnan(want))
    assert np.array_equal(np.isinf(got), np.isinf(want))
    finite = np.isfinite(want)
    np.testing.assert_allclose(got[finite], want[finite], rtol=1e-4, atol=1e-5)


# ----------------------------------------------------------------------------
# Dynamic dims that disagree at run time
# ----------------------------------------------------------------------------

def expect_check(fn, *args, fragment):
    with pytest.raises(posenc.Error, match="checked at run time") as info:
        fn(*args)
    assert fragment in str(info.value), str(info.value)


def test_rope_mismatched_positions():
    x = np.zeros((1, 5, 2, 8), np.float32)
    expect_check(ROPE.f, x, np.zeros(4, np.int64),
                 fragment="'posenc.rope' op sequence length of p")
    expect_check(ROPE.f, np.zeros((1, 5, 2, 6), np.float32), np.zeros(5, np.int64),
                 fragment="head dim of x must be at least 8")
    # The module is still usable after a failed check.
    assert ROPE.f(x, np.zeros(5, np.int64)).shape == x.shape


def test_rel_bias_table_rows_checked():
    m = bias_module("rel_bias", "kind t5 {num_buckets = 32 : i64, max_distance = 128 : i64}",
                    table="tensor<?x4xf32>")
    pos = np.arange(6, dtype=np.int64)
    expect_check(m.f, np.zeros((8, 4), np.float32), pos, pos,
                 fragment="number of rows of table must equal 32")
    assert m.f(np.zeros((32, 4), np.float32), pos, pos).shape == (4, 6, 6)


def test_attention_dynamic_lengths_checked():
    m = compile_one(
        attention("%r", "%q", "%k", "%v", "tensor<1x?x4x8xf32>", "tensor<1x?x2x8xf32>",
                  "tensor<1x?x2x8xf32>", "tensor<1x?x4x8xf32>",
                  attrs=" bias(%b : tensor<4x?x?xf32>)"),
        [("q", "tensor<1x?x4x8xf32>"), ("k", "tensor<1x?x2x8xf32>"), ("v", "tensor<1x?x2x8xf32>"),
         ("b", "tensor<4x?x?xf32>")],
        "tensor<1x?x4x8xf32>")
    z = lambda *s: np.zeros(s, np.float32)
    expect_check(m.f, z(1, 3, 4, 8), z(1, 5, 2, 8), z(1, 4, 2, 8), z(4, 3, 5),
                 fragment="key length of v must equal key length of k")
    expect_check(m.f, z(1, 3, 4, 8), z(1, 5, 2, 8), z(1, 5, 2, 8), z(4, 3, 7),
                 fragment="Sk of k must equal Sk of bias")
    expect_check(m.f, z(1, 3, 4, 8), z(1, 5, 2, 8), z(1, 5, 2, 8), z(4, 2, 5),
                 fragment="Sq of q must equal Sq of bias")
    assert m.f(z(1, 3, 4, 8), z(1, 5, 2, 8), z(1, 5, 2, 8), z(4, 3, 5)).shape == (1, 3, 4, 8)


def test_posenc_run_reports_failed_check():
    ir = ("func.func @f(%x: tensor<?x?x2x8xf32>, %p: tensor<?xi32>) -> tensor<?x?x2x8xf32> {\n"
          "  %y = posenc.rope %x, %p layout half : tensor<?x?x2x8xf32>, tensor<?xi32>\n"
          "  return %y : tensor<?x?x2x8xf32>\n}\n")
    with pytest.raises(RunError) as info:
        run(ir, [np.zeros((1, 5, 2, 8), np.float32), np.zeros(3, np.int32)])
    assert info.value.returncode == 1
    assert "sequence length of pos must equal sequence length of x" in info.value.stderr


def test_python_rejects_non_arrays():
    with pytest.raises((posenc.Error, TypeError)):
        ROPE.f("not an array", np.zeros(5, np.int64))
    with pytest.raises(posenc.Error, match="unsupported dtype"):
        ROPE.f(np.zeros((1, 5, 2, 8), object), np.zeros(5, np.int64))


def test_bf16_rounding_all_classes(rng):
    """f32 -> bf16 rounds to nearest even (posenc.to_bf16), keeps ±Inf and
    ±0, rounds the largest finite values to Inf, and keeps every NaN a NaN
    (payloads whose rounding carries out of the mantissa included)."""
    m = compile_one("%r = arith.truncf %x : tensor<?xf32> to tensor<?xbf16>",
                    [("x", "tensor<?xf32>")], "tensor<?xbf16>")
    bits = np.concatenate([
        rng.integers(0, 2**32, size=100000, dtype=np.uint64),
        [0x00000000, 0x80000000, 0x7F800000, 0xFF800000, 0x7F7FFFFF, 0xFF7FFFFF,
         0x7FC00000, 0x7F800001, 0x7FFFFFFF, 0xFFFFFFFF, 0x7F80FFFF, 0x00008000,
         0x00018000, 0x3F808000, 0x3F818000],
    ]).astype(np.uint32)
    x = bits.view(np.float32)
    got = posenc.from_bf16(m.f(x))
    nan = np.isnan(x)
    assert np.array_equal(np.isnan(got), nan)
    assert np.array_equal(got[~nan], posenc.from_bf16(posenc.to_bf16(x[~nan])))


def test_aligned_zeros_refuses_bad_shapes_and_alignments():
    # A negative dimension once sliced from the end and let reshape infer a
    # dimension: the shape depended on where the allocation landed.
    from posenc.decoder import aligned_zeros
    a = aligned_zeros((3, 5), np.uint16)
    assert a.shape == (3, 5) and a.ctypes.data % 64 == 0 and not a.any()
    assert aligned_zeros((0, 4)).shape == (0, 4)
    with pytest.raises(ValueError, match="negative dimension"):
        aligned_zeros((-1, 4))
    for align in (0, 48):
        with pytest.raises(ValueError, match="power of two"):
            aligned_zeros((2,), align=align)


def test_reference_attention_without_keys_is_zero():
    # Sk = 0: every row sees no key, so it is 0 (the compiled code's rule);
    # the reference once failed on the max of an empty axis.
    q = np.ones((1, 1, 2, 8))
    kv = np.ones((1, 0, 1, 8))
    for causal in (False, True):
        out = ref.attention(q, kv, kv, causal=causal)
        assert out.shape == (1, 1, 2, 8)
        np.testing.assert_array_equal(out, 0.0)

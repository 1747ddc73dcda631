"""sinusoidal, alibi_bias, rel_bias and rel_key_bias against the reference."""

import math

import numpy as np
import pytest

from harness import from_bf16, func_ir, rel_err, run, tensor_type, to_bf16, type_of
from posenc import reference as ref


def bias_ir(op, operands, attrs, result_type, kw=""):
    """`%r = posenc.<op> operands <kw> {attrs}` with its types."""
    args = [(f"a{i}", type_of(a)) for i, a in enumerate(operands)]
    names = ", ".join(f"%{n}" for n, _ in args)
    types = ", ".join(t for _, t in args)
    attr_text = (" {" + ", ".join(attrs) + "}") if attrs else ""
    body = [f"%r = posenc.{op} {names}{kw}{attr_text} : {types} -> {result_type}"]
    return func_ir(args, body, [("%r", result_type)])


# --- sinusoidal ---------------------------------------------------------------

@pytest.mark.parametrize("layout", ["interleaved", "half"])
@pytest.mark.parametrize("pos_shape", [(33,), (2, 17)])
@pytest.mark.parametrize("dtype", ["f32", "bf16"])
def test_sinusoidal(rng, layout, pos_shape, dtype):
    dim = 64
    pos = rng.integers(0, 100000, size=pos_shape).astype(np.int32)
    rt = tensor_type(pos_shape + (dim,), dtype)
    ir = bias_ir("sinusoidal", [pos], [f"dim = {dim} : i64"], rt, kw=f" layout {layout}")
    (y,) = run(ir, [pos])
    y = from_bf16(y) if dtype == "bf16" else y
    err = rel_err(y, ref.sinusoidal(pos, dim, layout=layout))
    assert err <= (1e-2 if dtype == "bf16" else 1e-6), err


def fairseq_table(num_embeddings, embedding_dim, padding_idx=None):
    """fairseq's SinusoidalPositionalEmbedding.get_embedding, in numpy
    (float64) line by line."""
    half_dim = embedding_dim // 2
    emb = math.log(10000) / (half_dim - 1)
    emb = np.exp(np.arange(half_dim, dtype=np.float64) * -emb)
    emb = np.arange(num_embeddings, dtype=np.float64)[:, None] * emb[None, :]
    emb = np.concatenate([np.sin(emb), np.cos(emb)], axis=1).reshape(num_embeddings, -1)
    if embedding_dim % 2 == 1:
        emb = np.concatenate([emb, np.zeros((num_embeddings, 1))], axis=1)
    if padding_idx is not None:
        emb[padding_idx, :] = 0
    return emb


def marian_table(n_pos, dim):
    """Hugging Face's MarianSinusoidalPositionalEmbedding._init_weight."""
    position_enc = np.array(
        [[pos / np.power(10000, 2 * (j // 2) / dim) for j in range(dim)] for pos in range(n_pos)])
    out = np.empty((n_pos, dim))
    sentinel = dim // 2 if dim % 2 == 0 else (dim // 2) + 1
    out[:, 0:sentinel] = np.sin(position_enc[:, 0::2])
    out[:, sentinel:] = np.cos(position_enc[:, 1::2])
    return out


@pytest.mark.parametrize("convention,dim,padding_idx", [
    ("fairseq", 64, 1), ("fairseq", 65, None), ("fairseq", 4, 0),
    ("marian", 64, None), ("marian", 63, None), ("marian", 1, None), ("vaswani", 64, 5)])
def test_sinusoidal_conventions_match_their_implementations(convention, dim, padding_idx):
    """Each convention equals the table its implementation builds (rows
    indexed by position), through posenc-run and in the reference."""
    n = 300
    pos = np.arange(n, dtype=np.int64)
    attrs = [f"dim = {dim} : i64"] + ([f"padding_idx = {padding_idx} : i64"] if padding_idx is not None else [])
    ir = bias_ir("sinusoidal", [pos], attrs, tensor_type((n, dim), "f32"),
                 kw=f" layout half convention {convention}")
    (y,) = run(ir, [pos])
    if convention == "fairseq":
        want = fairseq_table(n, dim, padding_idx)
    elif convention == "marian":
        want = marian_table(n, dim)
    else:
        want = ref.sinusoidal(pos, dim, layout="half")
        want[padding_idx] = 0
    np.testing.assert_allclose(ref.sinusoidal(pos, dim, layout="half", convention=convention,
                                              padding_idx=padding_idx), want, rtol=0, atol=1e-12)
    assert np.abs(y - want).max() <= 1e-6
    # Folded at compile time (constant positions): the same table.
    const = func_ir([], [f"%p = arith.constant dense<{list(map(int, pos[:8]))}> : tensor<8xi64>",
                         f"%r = posenc.sinusoidal %p layout half convention {convention} "
                         f"{{{', '.join(attrs)}}} : tensor<8xi64> -> tensor<8x{dim}xf32>"],
                    [("%r", f"tensor<8x{dim}xf32>")])
    (folded,) = run(const, [])
    assert np.abs(folded - want[:8]).max() <= 1e-6


@pytest.mark.parametrize("p0", [2**20 - 3, 2**24 - 8])
def test_sinusoidal_accuracy_contract(p0):
    pos = np.arange(p0, p0 + 8, dtype=np.int64)
    ir = bias_ir("sinusoidal", [pos], ["dim = 256 : i64", "base = 10000.0 : f64"],
                 tensor_type((8, 256), "f32"), kw=" layout interleaved")
    (y,) = run(ir, [pos])
    assert np.max(np.abs(y - ref.sinusoidal(pos, 256))) <= 1e-6


# --- alibi ---------------------------------------------------------------------

def test_alibi_slopes_match_mpt():
    """BLOOM's rule and MPT's ordering give the same set of slopes for B = 8."""
    for n in range(1, 97):
        bloom = np.sort(ref.alibi_slopes(n, 8.0))
        mpt = np.sort(ref.alibi_slopes_mpt(n, 8.0))
        assert np.allclose(bloom, mpt, rtol=0, atol=1e-15), n


@pytest.mark.parametrize("heads", [1, 2, 3, 5, 8, 12, 16, 20, 32, 40, 71, 96])
def test_alibi_default_slopes(rng, heads):
    sq, sk = 5, 9
    qp = rng.integers(0, 1000, size=sq).astype(np.int32)
    kp = rng.integers(0, 1000, size=sk).astype(np.int32)
    ir = bias_ir("alibi_bias", [qp, kp], [f"num_heads = {heads} : i64"],
                 tensor_type((heads, sq, sk), "f32"), kw=" mode causal")
    (y,) = run(ir, [qp, kp])
    assert rel_err(y, ref.alibi_bias(qp, kp, heads)) <= 1e-6


@pytest.mark.parametrize("mode", ["causal", "symmetric"])
@pytest.mark.parametrize("batched", [(False, False), (True, False), (False, True), (True, True)])
def test_alibi_modes_batched(rng, mode, batched):
    b, h, sq, sk = 2, 6, 4, 7
    qp = rng.integers(0, 500, size=(b, sq) if batched[0] else (sq,)).astype(np.int64)
    kp = rng.integers(0, 500, size=(b, sk) if batched[1] else (sk,)).astype(np.int32)
    shape = (b, h, sq, sk) if any(batched) else (h, sq, sk)
    ir = bias_ir("alibi_bias", [qp, kp], [f"num_heads = {h} : i64", "max_bias = 4.0 : f64"],
                 tensor_type(shape, "f32"), kw=f" mode {mode}")
    (y,) = run(ir, [qp, kp])
    expected = ref.alibi_bias(qp, kp, h, max_bias=4.0, mode=mode)
    assert rel_err(y, np.broadcast_to(expected, shape)) <= 1e-6


def test_alibi_explicit_slopes_bf16(rng):
    qp = np.arange(8, dtype=np.int32)
    slopes = [0.5, -0.25, 1.5]
    ir = bias_ir("alibi_bias", [qp, qp],
                 ["num_heads = 3 : i64", "slopes = array<f64: 0.5, -0.25, 1.5>"],
                 tensor_type((3, 8, 8), "bf16"), kw=" mode symmetric")
    (y,) = run(ir, [qp, qp])
    expected = ref.alibi_bias(qp, qp, 3, mode="symmetric", slopes=slopes)
    assert rel_err(from_bf16(y), expected) <= 1e-2


# --- rel_bias --------------------------------------------------------------------

@pytest.mark.parametrize("bidirectional", [True, False])
@pytest.mark.parametrize("buckets,max_distance", [(32, 128), (64, 256), (16, 20)])
def test_t5_buckets_all_distances(rng, bidirectional, buckets, max_distance):
    """Every relative distance in −300..300 lands in the reference bucket."""
    heads = 3
    table = rng.standard_normal((buckets, heads)).astype(np.float32)
    qp = np.array([300], np.int32)
    kp = np.arange(0, 601, dtype=np.int32)  # rel = −300..300
    attrs = [f"num_buckets = {buckets} : i64", f"max_distance = {max_distance} : i64"]
    if not bidirectional:
        attrs.append("bidirectional = false")
    ir = bias_ir("rel_bias", [table, qp, kp], attrs,
                 tensor_type((heads, 1, 601), "f32"), kw=" kind t5")
    (y,) = run(ir, [table, qp, kp])
    expected = ref.rel_bias(table, qp, kp, "t5", buckets, max_distance, bidirectional)
    assert np.array_equal(y, expected.astype(np.float32))


@pytest.mark.parametrize("bidirectional", [True, False])
@pytest.mark.parametrize("batched", [False, True])
def test_clip_bias(rng, bidirectional, batched):
    m, heads, sq, sk = 5, 4, 6, 9
    rows = 2 * m + 1 if bidirectional else m + 1
    table = rng.standard_normal((rows, heads)).astype(np.float32)
    qp = rng.integers(0, 20, size=(2, sq) if batched else (sq,)).astype(np.int32)
    kp = rng.integers(0, 20, size=sk).astype(np.int32)
    attrs = [f"max_distance = {m} : i64"]
    if not bidirectional:
        attrs.append("bidirectional = false")
    shape = (2, heads, sq, sk) if batched else (heads, sq, sk)
    ir = bias_ir("rel_bias", [table, qp, kp], attrs, tensor_type(shape, "f32"), kw=" kind clip")
    (y,) = run(ir, [table, qp, kp])
    expected = ref.rel_bias(table, qp, kp, "clip", max_distance=m, bidirectional=bidirectional)
    assert np.array_equal(y, expected.astype(np.float32))


def test_rel_bias_bf16_table(rng):
    table = to_bf16(rng.standard_normal((32, 2)))
    qp = np.arange(10, dtype=np.int64)
    ir = bias_ir("rel_bias", [table, qp, qp], ["num_buckets = 32 : i64", "max_distance = 128 : i64"],
                 tensor_type((2, 10, 10), "f32"), kw=" kind t5")
    (y,) = run(ir, [table, qp, qp])
    assert rel_err(y, ref.rel_bias(from_bf16(table), qp, qp, "t5", 32, 128)) == 0.0


# --- rel_key_bias -------------------------------------------------------------------

@pytest.mark.parametrize("batched_k", [False, True])
@pytest.mark.parametrize("dtype", ["f32", "bf16"])
@pytest.mark.parametrize("per_head", [False, True])
def test_rel_key_bias(rng, batched_k, dtype, per_head):
    b, sq, h, d, m, sk = 2, 5, 3, 16, 4, 7
    q = rng.uniform(-1, 1, size=(b, sq, h, d))
    emb = rng.uniform(-1, 1, size=(2 * m + 1, h, d) if per_head else (2 * m + 1, d))
    if dtype == "bf16":
        q_in, emb_in = to_bf16(q), to_bf16(emb)
        q, emb = from_bf16(q_in), from_bf16(emb_in)
    else:
        q_in, emb_in = q.astype(np.float32), emb.astype(np.float32)
    qp = rng.integers(0, 20, size=sq).astype(np.int32)
    kp = rng.integers(0, 20, size=(b, sk) if batched_k else (sk,)).astype(np.int32)
    ir = bias_ir("rel_key_bias", [q_in, emb_in, qp, kp], [f"max_distance = {m} : i64"],
                 tensor_type((b, h, sq, sk), dtype))
    (y,) = run(ir, [q_in, emb_in, qp, kp])
    y = from_bf16(y) if dtype == "bf16" else y
    err = rel_err(y, ref.rel_key_bias(q, emb, qp, kp, m))
    assert err <= (1e-2 if dtype == "bf16" else 1e-5), err


def test_alibi_default_slopes_every_head_count():
    """Default slopes for every head count 1..96 in one compiled module."""
    import posenc

    funcs = []
    for n in range(1, 97):
        rt = tensor_type((n, 3, 5), "f32")
        funcs.append(
            f"func.func @h{n}(%q: tensor<3xi32>, %k: tensor<5xi32>) -> {rt} {{\n"
            f"  %b = posenc.alibi_bias %q, %k mode causal {{num_heads = {n} : i64}} : "
            f"tensor<3xi32>, tensor<5xi32> -> {rt}\n  return %b : {rt}\n}}\n")
    module = posenc.compile("".join(funcs))
    q = np.array([0, 7, 100], np.int32)
    k = np.array([0, 3, 50, 99, 1000], np.int32)
    for n in range(1, 97):
        got = module.call(f"h{n}", q, k)
        assert rel_err(got, ref.alibi_bias(q, k, n)) <= 1e-6, n


def test_alibi_and_sinusoidal_f16(rng):
    qp = rng.integers(0, 300, size=6).astype(np.int32)
    ir = bias_ir("alibi_bias", [qp, qp], ["num_heads = 5 : i64"],
                 tensor_type((5, 6, 6), "f16"), kw=" mode symmetric")
    (y,) = run(ir, [qp, qp])
    assert y.dtype == np.float16
    assert rel_err(y, ref.alibi_bias(qp, qp, 5, mode="symmetric")) <= 1e-3
    ir = bias_ir("sinusoidal", [qp], ["dim = 32 : i64"], tensor_type((6, 32), "f16"),
                 kw=" layout interleaved")
    (s,) = run(ir, [qp])
    assert np.max(np.abs(s.astype(np.float64) - ref.sinusoidal(qp, 32))) <= 1e-3


def test_bert_relative_key_query(rng):
    """The rel_key_bias description's recipe for BERT's relative_key_query
    equals Hugging Face BertSelfAttention's einsums."""
    b, s, h, d, p_max = 1, 24, 3, 16, 30
    m = p_max - 1
    q = rng.standard_normal((b, s, h, d)).astype(np.float32)
    k = rng.standard_normal((b, s, h, d)).astype(np.float32)
    emb = rng.standard_normal((2 * m + 1, d)).astype(np.float32)
    pos = np.arange(s, dtype=np.int32)
    t4 = f"tensor<{b}x{s}x{h}x{d}xf32>"
    e_t, p_t, r_t = f"tensor<{2 * m + 1}x{d}xf32>", f"tensor<{s}xi32>", f"tensor<{b}x{h}x{s}x{s}xf32>"
    ir = func_ir([("q", t4), ("k", t4), ("emb", e_t), ("emb_rev", e_t), ("p", p_t)], [
        f"%tq = posenc.rel_key_bias %q, %emb_rev, %p, %p {{max_distance = {m} : i64}} : "
        f"{t4}, {e_t}, {p_t}, {p_t} -> {r_t}",
        f"%tk = posenc.rel_key_bias %k, %emb, %p, %p {{max_distance = {m} : i64}} : "
        f"{t4}, {e_t}, {p_t}, {p_t} -> {r_t}",
        f"%e = tensor.empty() : {r_t}",
        f"%tkt = linalg.transpose ins(%tk : {r_t}) outs(%e : {r_t}) permutation = [0, 1, 3, 2]",
        f"%bias = linalg.add ins(%tq, %tkt : {r_t}, {r_t}) outs(%e : {r_t}) -> {r_t}"],
        [("%bias", r_t)])
    (got,) = run(ir, [q, k, emb, emb[::-1].copy(), pos])
    # BertSelfAttention (position_embedding_type="relative_key_query"):
    # distance = l - r; positional_embedding = distance_embedding(distance + max_pos - 1)
    distance = pos[:, None].astype(np.int64) - pos[None, :]
    pe = emb.astype(np.float64)[distance + p_max - 1]                     # [l, r, d]
    ql = q.astype(np.float64).transpose(0, 2, 1, 3)                       # [b, h, l, d]
    kl = k.astype(np.float64).transpose(0, 2, 1, 3)
    want = np.einsum("bhld,lrd->bhlr", ql, pe) + np.einsum("bhrd,lrd->bhlr", kl, pe)
    assert rel_err(got, want) <= 1e-5


@pytest.mark.parametrize("op", ["sinusoidal", "alibi", "t5", "clip", "rel_key"])
def test_f64_results_are_computed_in_f64(rng, op):
    """f64 tensors: every table and bias op computes in f64, so the result
    equals the float64 reference to f64 rounding (f32 would be ~1e-7)."""
    s, h = 40, 4
    pos = np.arange(s, dtype=np.int64) * 37
    if op == "sinusoidal":
        ir = bias_ir("sinusoidal", [pos], ["dim = 64 : i64"], tensor_type((s, 64), "f64"),
                     kw=" layout interleaved")
        (y,) = run(ir, [pos])
        want = ref.sinusoidal(pos, 64, layout="interleaved")
    elif op == "alibi":
        ir = bias_ir("alibi_bias", [pos, pos], [f"num_heads = {h} : i64"],
                     tensor_type((h, s, s), "f64"), kw=" mode causal")
        (y,) = run(ir, [pos, pos])
        want = ref.alibi_bias(pos, pos, h)
    elif op in ("t5", "clip"):
        rows, attrs = (32, ["num_buckets = 32 : i64", "max_distance = 128 : i64"]) if op == "t5" \
            else (9, ["max_distance = 4 : i64"])
        table = rng.standard_normal((rows, h))
        ir = bias_ir("rel_bias", [table, pos, pos], attrs, tensor_type((h, s, s), "f64"),
                     kw=f" kind {op}")
        (y,) = run(ir, [table, pos, pos])
        want = ref.rel_bias(table, pos, pos, kind=op, num_buckets=32 if op == "t5" else None,
                            max_distance=128 if op == "t5" else 4)
    else:
        q = rng.standard_normal((1, s, h, 16))
        emb = rng.standard_normal((9, 16))
        ir = bias_ir("rel_key_bias", [q, emb, pos, pos], ["max_distance = 4 : i64"],
                     tensor_type((1, h, s, s), "f64"))
        (y,) = run(ir, [q, emb, pos, pos])
        want = ref.rel_key_bias(q, emb, pos, pos, 4)
    assert y.dtype == np.float64
    assert rel_err(y, want) <= 1e-13

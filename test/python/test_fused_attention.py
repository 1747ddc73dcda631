"""posenc-fuse-bias-into-attention + tiled attention: fused (bias computed
in score_mod) vs unfused (bias materialized) vs the float64 reference."""

import re

import numpy as np
import pytest

from harness import attention, from_bf16, func_ir, opt, rel_err, run, tensor_type, to_bf16, type_of
from posenc import reference as ref

UNFUSED = "posenc-lower-to-cpu{fuse-bias=false}"


def build(kind, b, sq, sk, hq, hkv, d, causal, elem, rng):
    f = {"f32": np.float32, "f64": np.float64}.get(elem)
    be = "f64" if elem == "f64" else "f32"  # the bias ops' element type
    def rand(*shape):
        x = rng.uniform(-1, 1, size=shape)
        return (to_bf16(x), from_bf16(to_bf16(x))) if elem == "bf16" else (x.astype(f), x.astype(f))
    (q, q64), (k, k64), (v, v64) = rand(b, sq, hq, d), rand(b, sk, hkv, d), rand(b, sk, hkv, d)
    # Positions of a cache of sk tokens whose last sq are the queries.
    kp = np.arange(sk, dtype=np.int32)
    qp = kp[sk - sq:].copy()
    args = [("q", type_of(q)), ("k", type_of(k)), ("v", type_of(v)), ("qp", type_of(qp)), ("kp", type_of(kp))]
    inputs = [q, k, v, qp, kp]
    bt = tensor_type((hq, sq, sk), be)
    if kind == "alibi":
        body = [f"%b = posenc.alibi_bias %qp, %kp mode causal {{num_heads = {hq} : i64}} : "
                f"{type_of(qp)}, {type_of(kp)} -> {bt}"]
        bias = ref.alibi_bias(qp, kp, hq)
    elif kind == "t5":
        table = rng.standard_normal((32, hq)).astype(f or np.float32)
        args.append(("t", type_of(table)))
        inputs.append(table)
        body = [f"%b = posenc.rel_bias %t, %qp, %kp kind t5 {{num_buckets = 32 : i64, "
                f"max_distance = 128 : i64, bidirectional = {'false' if causal else 'true'}}} : "
                f"{type_of(table)}, {type_of(qp)}, {type_of(kp)} -> {bt}"]
        bias = ref.rel_bias(table, qp, kp, "t5", 32, 128, not causal)
    else:  # Shaw relative keys; shaw_heads: a table per head (Transformer-XL)
        m = 6
        emb, emb64 = rand(2 * m + 1, hq, d) if kind == "shaw_heads" else rand(2 * m + 1, d)
        args.append(("e", type_of(emb)))
        inputs.append(emb)
        bt = tensor_type((b, hq, sq, sk), be)
        body = [f"%qf = arith.extf %q : {type_of(q)} to {tensor_type(q.shape, 'f32')}" if elem == "bf16" else "",
                f"%ef = arith.extf %e : {type_of(emb)} to {tensor_type(emb.shape, 'f32')}" if elem == "bf16" else ""]
        body = [x for x in body if x]
        qn, en = ("%qf", "%ef") if elem == "bf16" else ("%q", "%e")
        body.append(f"%b = posenc.rel_key_bias {qn}, {en}, %qp, %kp {{max_distance = {m} : i64}} : "
                    f"{tensor_type(q.shape, be)}, {tensor_type(emb.shape, be)}, {type_of(qp)}, "
                    f"{type_of(kp)} -> {bt}")
        bias = ref.rel_key_bias(q64, emb64, qp, kp, m)
    rt = tensor_type((b, sq, hq, d), elem)
    body += attention("%o", "%q", "%k", "%v", type_of(q), type_of(k), type_of(v), rt,
                      attrs=f" bias(%b : {bt})" + (" causal" if causal else ""))
    expected = ref.attention(q64, k64, v64, bias=bias, causal=causal)
    return func_ir(args, body, [("%o", rt)]), inputs, expected


@pytest.mark.parametrize("kind", ["alibi", "t5", "shaw", "shaw_heads"])
@pytest.mark.parametrize("b,sq,sk,hq,hkv", [
    (1, 64, 64, 8, 8),      # prefill
    (1, 1, 77, 32, 8),      # decode with a cache, GQA 32/8
    (2, 19, 50, 6, 1),      # chunked prefill, MQA
])
@pytest.mark.parametrize("causal", [True, False])
def test_fused_equals_unfused(rng, kind, b, sq, sk, hq, hkv, causal):
    ir, inputs, expected = build(kind, b, sq, sk, hq, hkv, 16, causal, "f32", rng)
    fused_ir = opt(ir, "-posenc-fuse-bias-into-attention")
    for op in ("bias(", "posenc.alibi_bias", "posenc.rel_bias", "posenc.rel_key_bias"):
        assert op not in fused_ir
    (fused,) = run(ir, inputs)
    (unfused,) = run(ir, inputs, pipeline=UNFUSED)
    assert rel_err(fused, expected) <= 1e-4
    assert rel_err(unfused, expected) <= 1e-4
    assert rel_err(fused, unfused) <= 1e-4


@pytest.mark.parametrize("kind", ["alibi", "t5", "shaw"])
def test_fused_bf16(rng, kind):
    ir, inputs, expected = build(kind, 1, 24, 40, 8, 2, 32, True, "bf16", rng)
    (fused,) = run(ir, inputs)
    (unfused,) = run(ir, inputs, pipeline=UNFUSED)
    assert rel_err(from_bf16(fused), expected) <= 1e-2
    assert rel_err(from_bf16(unfused), expected) <= 1e-2


@pytest.mark.parametrize("kind", ["alibi", "t5", "shaw", "shaw_heads"])
@pytest.mark.parametrize("b,sq,sk,hq,hkv", [(1, 24, 40, 8, 2), (1, 1, 77, 8, 8)])
def test_fused_f64(rng, kind, b, sq, sk, hq, hkv):
    """f64 bias ops and f64 attention compute in f64, fused or not: the
    float64 reference to 1e-12 (f32 arithmetic would stop near 1e-7)."""
    ir, inputs, expected = build(kind, b, sq, sk, hq, hkv, 16, True, "f64", rng)
    fused_ir = opt(ir, "-posenc-fuse-bias-into-attention")
    assert "bias(" not in fused_ir
    assert re.search(r"score_mod \{\s*\^bb0\(%\w+: f64", fused_ir)
    (fused,) = run(ir, inputs)
    (unfused,) = run(ir, inputs, pipeline=UNFUSED)
    assert fused.dtype == np.float64
    assert rel_err(fused, expected) <= 1e-12
    assert rel_err(unfused, expected) <= 1e-12


@pytest.mark.parametrize("tiles", [(1, 1), (7, 5), (64, 128)])
def test_tile_sizes(rng, tiles):
    """Results do not depend on the tile sizes (tails included)."""
    ir, inputs, expected = build("alibi", 1, 33, 45, 4, 2, 16, True, "f32", rng)
    tq, tk = tiles
    (o,) = run(ir, inputs, pipeline=f"posenc-lower-to-cpu{{attention-tile-q={tq} attention-tile-k={tk}}}")
    assert rel_err(o, expected) <= 1e-4


@pytest.mark.parametrize("max_distance", [128, 5000])
def test_fused_t5_distance_table_and_direct(rng, max_distance):
    """Fused T5 reads a [H, 2M+1] distance table for M <= 4096 and computes
    the buckets per score beyond; positions far apart reach every bucket."""
    hq, sq, d = 4, 24, 16
    q, k, v = (rng.uniform(-1, 1, (1, sq, hq, d)).astype(np.float32) for _ in range(3))
    pos = (np.arange(sq) * 377).astype(np.int64)
    table = rng.standard_normal((32, hq)).astype(np.float32)
    t, pt, tt = type_of(q), type_of(pos), type_of(table)
    bt = tensor_type((hq, sq, sq), "f32")
    body = [f"%b = posenc.rel_bias %t, %p, %p kind t5 {{num_buckets = 32 : i64, "
            f"max_distance = {max_distance} : i64}} : {tt}, {pt}, {pt} -> {bt}",
            *attention("%o", "%q", "%k", "%v", t, t, t, t, attrs=f" bias(%b : {bt})")]
    ir = func_ir([("q", t), ("k", t), ("v", t), ("p", pt), ("t", tt)], body, [("%o", t)])
    fused_ir = opt(ir, "-posenc-fuse-bias-into-attention")
    assert ("x" + str(2 * max_distance + 1) + "xf32>" in fused_ir) == (max_distance <= 4096)
    (o,) = run(ir, [q, k, v, pos, table])
    bias = ref.rel_bias(table, pos, pos, "t5", 32, max_distance, True)
    expected = ref.attention(q.astype(np.float64), k.astype(np.float64), v.astype(np.float64),
                             bias=bias)
    assert rel_err(o, expected) <= 1e-4


def clamp_positions(pattern, n, rng):
    """Positions whose key tiles lie beyond the clamp on either side, across
    it, or both (posenc-specialize-saturated-clamp versions each tile)."""
    if pattern == "arange":
        return np.arange(n)
    if pattern == "shuffled":
        return rng.permutation(n)
    if pattern == "gaps":  # runs of 3 far apart: tiles saturate below and above
        return (np.arange(n) // 3) * 50 + np.arange(n) % 3
    if pattern == "reversed":
        return np.arange(n)[::-1] * 4
    return np.where(np.arange(n) % 2 == 0, -2**31, 2**31 - 1 - np.arange(n))  # "extremes"


@pytest.mark.parametrize("kind", ["t5", "t5_bidirectional", "shaw"])
@pytest.mark.parametrize("pattern", ["arange", "shuffled", "gaps", "reversed", "extremes"])
@pytest.mark.parametrize("tiles", [(3, 5), (8, 16), None])
def test_fused_clamped_distance_saturated_tiles(rng, kind, pattern, tiles):
    """A bias read at clamp(k_pos - q_pos, -M, M) with M = 6: whole key
    tiles beyond the clamp take a copy of the score step with the clamp
    folded to its bound; tiles across it keep the gather. Against float64
    for positions that saturate below, above, across and at the i32
    limits, with tiles that do and do not divide the sequence."""
    hq, hkv, sq, sk, d, m = 4, 2, 29, 71, 8, 6
    q, k, v = (rng.uniform(-1, 1, (1, s, h, d)).astype(np.float32)
               for s, h in ((sq, hq), (sk, hkv), (sk, hkv)))
    kp = clamp_positions(pattern, sk, rng).astype(np.int32)
    qp = rng.choice(kp, sq).astype(np.int32) if pattern != "arange" else kp[sk - sq:].copy()
    t, kt, vt = type_of(q), type_of(k), type_of(v)
    qpt, kpt = type_of(qp), type_of(kp)
    bt = tensor_type((hq, sq, sk), "f32")
    if kind == "shaw":
        emb = rng.uniform(-1, 1, (2 * m + 1, d)).astype(np.float32)
        bt = tensor_type((1, hq, sq, sk), "f32")
        body = [f"%b = posenc.rel_key_bias %q, %e, %qp, %kp {{max_distance = {m} : i64}} : "
                f"{t}, {type_of(emb)}, {qpt}, {kpt} -> {bt}"]
        bias = ref.rel_key_bias(q, emb, qp, kp, m)
    else:
        emb = rng.standard_normal((8, hq)).astype(np.float32)
        bidirectional = kind == "t5_bidirectional"
        body = [f"%b = posenc.rel_bias %e, %qp, %kp kind t5 {{num_buckets = 8 : i64, "
                f"max_distance = {m} : i64, bidirectional = {str(bidirectional).lower()}}} : "
                f"{type_of(emb)}, {qpt}, {kpt} -> {bt}"]
        bias = ref.rel_bias(emb, qp, kp, "t5", 8, m, bidirectional)
    body += attention("%o", "%q", "%k", "%v", t, kt, vt, t, attrs=f" bias(%b : {bt})")
    ir = func_ir([("q", t), ("k", kt), ("v", vt), ("qp", qpt), ("kp", kpt), ("e", type_of(emb))],
                 body, [("%o", t)])
    pipeline = ("posenc-lower-to-cpu" if tiles is None else
                f"posenc-lower-to-cpu{{attention-tile-q={tiles[0]} attention-tile-k={tiles[1]}}}")
    (o,) = run(ir, [q, k, v, qp, kp, emb], pipeline=pipeline)
    expected = ref.attention(q.astype(np.float64), k.astype(np.float64), v.astype(np.float64),
                             bias=bias)
    assert rel_err(o, expected) <= 1e-5


@pytest.mark.parametrize("attn_elem,bias_elem", [("f32", "f16"), ("f32", "bf16"),
                                                 ("f64", "f16"), ("f64", "bf16")])
def test_fused_bias_rounds_to_its_type(attn_elem, bias_elem):
    """A 16-bit bias tensor holds rounded values; the fused bias rounds the
    same way (it used the unrounded slope·distance: 1e-3 off for bf16)."""
    t = tensor_type((1, 16, 6, 8), attn_elem)
    bt = tensor_type((6, 16, 16), bias_elem)
    body = [f"%b = posenc.alibi_bias %p, %p mode causal {{slopes = array<f64: 0.3, 0.1, 0.7, "
            f"0.013, 1.1, 0.00031>}} : tensor<16xi32>, tensor<16xi32> -> {bt}"]
    body += attention("%o", "%q", "%k", "%v", t, t, t, t, attrs=f" bias(%b : {bt}) causal")
    ir = func_ir([("q", t), ("k", t), ("v", t), ("p", "tensor<16xi32>")], body, [("%o", t)])
    assert "score_mod" in opt(ir, "--posenc-fuse-bias-into-attention")
    rng = np.random.default_rng(5)
    dt = np.float32 if attn_elem == "f32" else np.float64
    q, k, v = (rng.uniform(-1, 1, (1, 16, 6, 8)).astype(dt) for _ in range(3))
    pos = np.arange(16, dtype=np.int32) + 1000
    fused = run(ir, [q, k, v, pos])[0]
    unfused = run(ir, [q, k, v, pos], pipeline="posenc-lower-to-cpu{fuse-bias=false}")[0]
    bias = ref.alibi_bias(pos, pos, 6, mode="causal",
                          slopes=np.array([0.3, 0.1, 0.7, 0.013, 1.1, 0.00031]))
    rounded = bias.astype(np.float16) if bias_elem == "f16" else from_bf16(to_bf16(bias))
    expected = ref.attention(q.astype(np.float64), k, v, bias=rounded.astype(np.float64),
                             causal=True)
    tol = 2e-6 if attn_elem == "f32" else 1e-13
    assert rel_err(fused, expected) <= tol and rel_err(unfused, expected) <= tol

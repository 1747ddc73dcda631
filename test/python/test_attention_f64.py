"""f64 attention, online_attention and mla_absorb compute in f64 throughout
(scores, softmax state, sinks, score_mod), so their results agree with
the float64 reference to 1e-12, where f32 arithmetic stops near 1e-7:
every CPU tiling (default, 1x1, primes, decode key blocks, the whole-tensor
form, upstream transform-dialect tiling and split-K), and the diagnostics
that keep f32 and f64 pieces apart."""

import numpy as np
import pytest

from harness import RunError, attention, func_ir, opt, rel_err, run, tensor_type
from posenc import reference as ref
from test_attention import mla_ir
from test_tile_attention import (SCORE_MOD, run_schedule, score_mod_ref, split_k_schedule,
                                 transform)

TOL = 1e-12

PIPELINES = {
    "default": "posenc-lower-to-cpu",
    "1x1": "posenc-lower-to-cpu{attention-tile-q=1 attention-tile-k=1}",
    "7x13": "posenc-lower-to-cpu{attention-tile-q=7 attention-tile-k=13}",
    "decode-blocks": ("posenc-lower-to-cpu{attention-decode-queries=64 "
                      "attention-decode-key-tile=5}"),
    "threads": "posenc-lower-to-cpu{num-threads=2}",
    "whole-tensor": "convert-posenc-to-linalg{materialize-attention=true},posenc-lower-to-cpu",
}
SCORE_MOD_F64 = SCORE_MOD.replace("f32", "f64")


def problem(rng, b, sq, sk, hq, hkv, d, dv, attrs="", bias_shape=None, sinks=False,
            score_mod=False):
    """f64 attention IR, its inputs and the reference's keyword arguments."""
    q = rng.uniform(-1, 1, (b, sq, hq, d))
    k = rng.uniform(-1, 1, (b, sk, hkv, d))
    v = rng.uniform(-1, 1, (b, sk, hkv, dv))
    types = [tensor_type(x.shape, "f64") for x in (q, k, v)]
    args = [("q", types[0]), ("k", types[1]), ("v", types[2])]
    inputs, kw, pre = [q, k, v], {}, ""
    if bias_shape:
        bias = rng.uniform(-2, 2, bias_shape)
        bt = tensor_type(bias_shape, "f64")
        args.append(("m", bt))
        inputs.append(bias)
        kw["bias"] = bias
        pre += f" bias(%m : {bt})"
    if sinks:
        s = rng.uniform(-1, 2, (hq,))
        s[0] = -np.inf  # a -inf sink is no sink
        st = tensor_type(s.shape, "f64")
        args.append(("sink", st))
        inputs.append(s)
        kw["sinks"] = s
        pre += f" sinks(%sink : {st})"
    if score_mod:
        kw["score_mod"] = score_mod_ref
    rt = tensor_type((b, sq, hq, dv), "f64")
    body = attention("%o", "%q", "%k", "%v", *types, rt, attrs=pre + attrs,
                     tail=SCORE_MOD_F64 if score_mod else "")
    return func_ir(args, body, [("%o", rt)]), inputs, kw


@pytest.mark.parametrize("pipeline", PIPELINES)
@pytest.mark.parametrize("b,sq,sk,hq,hkv,d,dv,causal", [
    (1, 9, 9, 4, 4, 8, 8, True),        # MHA
    (2, 11, 13, 8, 2, 16, 9, True),     # GQA, Sq != Sk (bottom-right), Dv != Dk
    (1, 1, 37, 8, 1, 16, 16, True),     # MQA decode
    (1, 6, 6, 2, 2, 4, 4, False),
])
def test_f64_attention_matches_float64(pipeline, b, sq, sk, hq, hkv, d, dv, causal):
    rng = np.random.default_rng(sq * 100 + sk)
    ir, inputs, kw = problem(rng, b, sq, sk, hq, hkv, d, dv, " causal" if causal else "",
                             bias_shape=(hq, 1, sk) if not causal else None)
    (o,) = run(ir, inputs, pipeline=PIPELINES[pipeline])
    assert o.dtype == np.float64
    assert rel_err(o, ref.attention(*inputs[:3], causal=causal, **kw)) <= TOL


@pytest.mark.parametrize("pipeline", ["default", "1x1", "decode-blocks"])
@pytest.mark.parametrize("attrs,ref_kw,sinks,score_mod", [
    (" softcap(2.5) causal", {"softcap": 2.5, "causal": True}, False, False),
    (" causal window(4)", {"causal": True, "window": 4}, False, False),
    (" causal chunk(5)", {"causal": True, "chunk": 5}, False, False),
    (" causal", {"causal": True}, True, False),
    (" causal", {"causal": True}, False, True),
    (" softcap(3.0) causal window(6)", {"softcap": 3.0, "causal": True, "window": 6}, True,
     True),
])
def test_f64_variants(pipeline, attrs, ref_kw, sinks, score_mod):
    """Soft-capping, windows, chunks, f64 sinks and an f64 score_mod."""
    rng = np.random.default_rng(len(attrs) * 7 + sinks + 2 * score_mod)
    ir, inputs, kw = problem(rng, 2, 11, 17, 8, 2, 16, 9, attrs, sinks=sinks,
                             score_mod=score_mod)
    (o,) = run(ir, inputs, pipeline=PIPELINES[pipeline])
    expected = ref.attention(*inputs[:3], **ref_kw, **kw)
    assert rel_err(o, expected) <= TOL


def test_f64_mask_rule():
    """Masked keys holding NaN and Inf stay out of their rows in f64 too; a
    row that sees no key is 0."""
    rng = np.random.default_rng(5)
    ir, inputs, kw = problem(rng, 1, 6, 6, 2, 2, 8, 8, " causal", bias_shape=(6, 6))
    q, k, v, bias = inputs
    v[0, 5] = np.nan          # seen by the last query only
    bias[:, 2] = -np.inf      # key 2 masked for every row
    k[0, 2] = np.inf
    bias[3, :] = -np.inf      # row 3 sees no key
    for pipeline in ("default", "1x1", "whole-tensor"):
        (o,) = run(ir, inputs, pipeline=PIPELINES[pipeline])
        expected = ref.attention(q, k, v, causal=True, bias=bias)
        assert np.isnan(o[0, 5]).all() and not np.isnan(o[0, :5]).any()
        assert np.all(o[0, 3] == 0.0)
        assert rel_err(o, expected) <= TOL


@pytest.mark.parametrize("form", ["naive", "absorbed"])
@pytest.mark.parametrize("sq,sk,causal", [(6, 6, True), (1, 20, True), (4, 9, False)])
def test_f64_mla_absorb(form, sq, sk, causal):
    rng = np.random.default_rng(sq * 10 + sk)
    b, h, dn, dr, c, dv = 2, 4, 16, 8, 32, 16
    ops = [rng.uniform(-1, 1, s) for s in
           [(b, sq, h, dn), (b, sq, h, dr), (b, sk, c), (b, sk, dr), (h, dn, c), (h, dv, c)]]
    ops[4] *= 0.3
    ops[5] *= 0.3
    (o,) = run(mla_ir(ops, causal, None, "f64"), ops,
               pipeline=f"posenc-lower-to-cpu{{mla={form}}}")
    assert o.dtype == np.float64
    assert rel_err(o, ref.mla_absorb(*ops, causal=causal)) <= TOL


def online_ir(b, sq, sk, hq, hkv, d, split):
    """Two online_attention steps over keys [0, split) and [split, sk) from
    (0, -inf, 0), causal; returns (acc, max, sum)."""
    tq = tensor_type((b, sq, hq, d), "f64")
    t1 = tensor_type((b, split, hkv, d), "f64")
    t2 = tensor_type((b, sk - split, hkv, d), "f64")
    ts = tensor_type((b, sq, hq), "f64")
    body = ["%z = arith.constant 0.0 : f64",
            "%ninf = arith.constant 0xFFF0000000000000 : f64",
            f"%e4 = tensor.empty() : {tq}",
            f"%e3 = tensor.empty() : {ts}",
            f"%acc0 = linalg.fill ins(%z : f64) outs(%e4 : {tq}) -> {tq}",
            f"%max0 = linalg.fill ins(%ninf : f64) outs(%e3 : {ts}) -> {ts}",
            f"%sum0 = linalg.fill ins(%z : f64) outs(%e3 : {ts}) -> {ts}",
            "%c0 = arith.constant 0 : index",
            f"%c{split} = arith.constant {split} : index",
            f"%diag = arith.constant {sk - sq} : index"]
    steps = [("%q", "%k1", "%v1", t1, "%c0", "0"), ("%q", "%k2", "%v2", t2, f"%c{split}", "1")]
    for q, k, v, tk, j0, n in steps:
        prev = "0" if n == "0" else "1"
        # The second block's keys start at `split`: the causal diagonal of a
        # block is Sk_total - Sq - j0.
        diag = "%diag" if n == "0" else "%diag2"
        if n == "1":
            body.append(f"%diag2 = arith.subi %diag, %c{split} : index")
        body.append(
            f"%acc{int(n) + 1}, %max{int(n) + 1}, %sum{int(n) + 1} = posenc.online_attention "
            f"{q}, {k}, {v} causal diagonal({diag}) offsets(%c0, %c0, %c0, {j0}) "
            f"outs(%acc{prev if n == '1' else '0'}, %max{prev if n == '1' else '0'}, "
            f"%sum{prev if n == '1' else '0'}) : {tq}, {tk}, {tk}, {tq}, {ts}, {ts}")
    args = [("q", tq), ("k1", t1), ("v1", t1), ("k2", t2), ("v2", t2)]
    return func_ir(args, body, [("%acc2", tq), ("%max2", ts), ("%sum2", ts)])


def test_f64_online_attention_steps():
    """online_attention over two key blocks, state carried in f64, then
    acc / sum: attention over all keys."""
    rng = np.random.default_rng(11)
    b, sq, sk, hq, hkv, d, split = 1, 5, 12, 4, 2, 8, 7
    q = rng.uniform(-1, 1, (b, sq, hq, d))
    k = rng.uniform(-1, 1, (b, sk, hkv, d))
    v = rng.uniform(-1, 1, (b, sk, hkv, d))
    acc, mx, sm = run(online_ir(b, sq, sk, hq, hkv, d, split),
                      [q, k[:, :split], v[:, :split], k[:, split:], v[:, split:]],
                      num_results=3)
    assert acc.dtype == mx.dtype == sm.dtype == np.float64
    assert rel_err(acc / sm[..., None], ref.attention(q, k, v, causal=True)) <= TOL
    # The running max is the row's largest visible score, exactly.
    s = np.einsum("bihd,bjhd->bhij", q, np.repeat(k, hq // hkv, axis=2)) / np.sqrt(d)
    s[..., np.triu(np.ones((sq, sk), bool), k=sk - sq + 1)] = -np.inf
    assert rel_err(mx, s.max(axis=-1).transpose(0, 2, 1)) <= TOL


@pytest.mark.parametrize("schedule,loop", [
    (transform((1, 2, 5, 0, 0, 0), decompose=True, key_tile=4), "scf.for"),
    (transform((0, 4, 3, 0, 0, 0), forall=True), "scf.forall"),
    (split_k_schedule(3), "scf.forall"),
])
def test_f64_transform_dialect_tiling(schedule, loop):
    """Upstream tiling (TilingInterface, the flash loop over online_attention,
    split-K through PartialReductionOpInterface) keeps f64 states."""
    rng = np.random.default_rng(3)
    sq = 1 if "tile_reduction" in schedule else 11
    ir, inputs, kw = problem(rng, 1, sq, 29, 8, 2, 16, 16, " causal", score_mod=True)
    tiled, (o,) = run_schedule(ir, inputs, schedule)
    assert loop in tiled
    assert rel_err(o, ref.attention(*inputs[:3], causal=True, **kw)) <= TOL


def verify_error(ir):
    with pytest.raises(RunError) as err:
        opt(ir)
    return err.value.stderr


def test_f64_diagnostics():
    """Pieces of the wrong compute type are refused, naming both types."""
    t64 = tensor_type((1, 4, 2, 8), "f64")
    s32 = tensor_type((2,), "f32")
    body = attention("%o", "%q", "%q", "%q", t64, t64, t64, t64, attrs=f" sinks(%s : {s32})")
    msg = verify_error(func_ir([("q", t64), ("s", s32)], body, [("%o", t64)]))
    assert "sinks must be [Hq] f64" in msg and "tensor<2xf32>" in msg

    body = attention("%o", "%q", "%q", "%q", t64, t64, t64, t64, tail=SCORE_MOD)
    msg = verify_error(func_ir([("q", t64)], body, [("%o", t64)]))
    assert "score_mod block must take (score: f64, b, h, i, j: index), got ('f32'" in msg

    t32 = tensor_type((1, 4, 2, 8), "f32")
    st = tensor_type((1, 4, 2), "f32")
    body = [f"%a, %m, %s = posenc.online_attention %q, %q, %q outs(%acc, %mx, %sm) : "
            f"{t64}, {t64}, {t64}, {t32}, {st}, {st}"]
    msg = verify_error(func_ir([("q", t64), ("acc", t32), ("mx", st), ("sm", st)], body,
                               [("%a", t32)]))
    assert "acc must be f64 (the compute type" in msg

    # The GPU kernel computes in f32: f64 attention is a message there.
    body = attention("%o", "%q", "%q", "%q", t64, t64, t64, t64, attrs=" causal")
    with pytest.raises(RunError) as err:
        opt(func_ir([("q", t64)], body, [("%o", t64)]),
            "--pass-pipeline=builtin.module(func.func(convert-posenc-attention-to-gpu))")
    assert "GPU kernel computes in f32; f64 attention" in err.value.stderr
    # posenc-lower-to-nvvm refuses each f64 op by its own name (MLA was
    # refused after its decomposition, as posenc.attention).
    with pytest.raises(RunError) as err:
        opt(func_ir([("q", t64)], body, [("%o", t64)]), "--posenc-lower-to-nvvm")
    assert ("'posenc.attention' op cannot be lowered by posenc-lower-to-nvvm: its attention "
            "kernel computes in f32" in err.value.stderr)
    mla = ("%o = posenc.mla_absorb %qn, %qr, %c, %kr, %wuk, %wuv : tensor<1x4x2x8xf64>, "
           "tensor<1x4x2x4xf64>, tensor<1x5x6xf64>, tensor<1x5x4xf64>, tensor<2x8x6xf64>, "
           "tensor<2x3x6xf64> -> tensor<1x4x2x3xf64>")
    args = [("qn", "tensor<1x4x2x8xf64>"), ("qr", "tensor<1x4x2x4xf64>"),
            ("c", "tensor<1x5x6xf64>"), ("kr", "tensor<1x5x4xf64>"),
            ("wuk", "tensor<2x8x6xf64>"), ("wuv", "tensor<2x3x6xf64>")]
    with pytest.raises(RunError) as err:
        opt(func_ir(args, [mla], [("%o", "tensor<1x4x2x3xf64>")]), "--posenc-lower-to-nvvm")
    assert "'posenc.mla_absorb' op cannot be lowered by posenc-lower-to-nvvm" in err.value.stderr


def test_f64_hostile_round():
    """What a hostile-input round on f64 attention found, each fixed."""
    gpu = "--pass-pipeline=builtin.module(func.func(convert-posenc-attention-to-gpu))"
    m64 = tensor_type((4, 4), "f64")
    # An f64 bias on f32 or f16 attention: the GPU kernel narrows it to f32
    # (it emitted an invalid arith.extf).
    for elem in ("f32", "f16"):
        t = tensor_type((1, 4, 2, 8), elem)
        body = attention("%o", "%q", "%q", "%q", t, t, t, t, attrs=f" bias(%m : {m64}) causal")
        assert "gpu.launch" in opt(func_ir([("q", t), ("m", m64)], body, [("%o", t)]), gpu)

    # An f64 op keeps scale and softcap in f64: 1e300 is not an f32, but fine
    # here; f32 attention still refuses it.
    rng = np.random.default_rng(8)
    q = rng.uniform(-1, 1, (1, 4, 2, 8)) * 1e-300
    t = tensor_type(q.shape, "f64")
    body = attention("%o", "%q", "%q", "%q", t, t, t, t, attrs=" softcap(1.0e-300)",
                     attr_dict=" {scale = 1.0e300 : f64}")
    out = run(func_ir([("q", t)], body, [("%o", t)]), [q])[0]
    s = 1e300 * np.einsum("bihd,bjhd->bhij", q, q)
    w = np.exp(1e-300 * np.tanh(s / 1e-300))
    w /= w.sum(axis=-1, keepdims=True)
    expected = np.einsum("bhij,bjhd->bihd", w, q)
    assert rel_err(out, expected) <= TOL
    t32 = tensor_type(q.shape, "f32")
    body = attention("%o", "%q", "%q", "%q", t32, t32, t32, t32, attr_dict=" {scale = 1.0e300 : f64}")
    assert "is not a finite, nonzero f32" in verify_error(func_ir([("q", t32)], body, [("%o", t32)]))

    # online_attention has no GPU lowering: said so, not a host-access error.
    st = tensor_type((1, 4, 2), "f32")
    t32 = tensor_type((1, 4, 2, 8), "f32")
    body = [f"%a, %mx, %sm = posenc.online_attention %q, %q, %q outs(%acc, %m0, %s0) : "
            f"{t32}, {t32}, {t32}, {t32}, {st}, {st}"]
    with pytest.raises(RunError) as err:
        opt(func_ir([("q", t32), ("acc", t32), ("m0", st), ("s0", st)], body, [("%a", t32)]), gpu)
    assert "online_attention step has no GPU lowering" in err.value.stderr

"""posenc.attention (unfused lowering) and posenc.mla_absorb against the
reference."""

import numpy as np
import pytest

from harness import attention, from_bf16, func_ir, rel_err, run, tensor_type, to_bf16, type_of
from posenc import reference as ref


def attention_ir(q, k, v, bias=None, scale=None, causal=False, score_mod=None, captures=()):
    args = [("q", type_of(q)), ("k", type_of(k)), ("v", type_of(v))]
    if bias is not None:
        args.append(("bias", type_of(bias)))
    args += [(n, t) for n, t in captures]
    rt = tensor_type(q.shape[:3] + (v.shape[3],),
                     {np.float32: "f32", np.uint16: "bf16", np.float16: "f16"}[q.dtype.type])
    attrs = ""
    if bias is not None:
        attrs += f" bias(%bias : {type_of(bias)})"
    if causal:
        attrs += " causal"
    attr_dict = f" {{scale = {float(scale)!r} : f64}}" if scale is not None else ""
    body = attention("%o", "%q", "%k", "%v", type_of(q), type_of(k), type_of(v), rt,
                     attrs=attrs, attr_dict=attr_dict)
    if score_mod:
        body[-1] += " score_mod {"
        body += ["^bb0(%s: f32, %b: index, %h: index, %i: index, %j: index):"] + score_mod + ["}"]
    return func_ir(args, body, [("%o", rt)])


def rand(rng, *shape):
    return rng.uniform(-1, 1, size=shape).astype(np.float32)


@pytest.mark.parametrize("b,sq,sk,hq,hkv,d,dv", [
    (1, 8, 8, 4, 4, 16, 16),      # MHA
    (2, 16, 16, 8, 2, 32, 16),    # GQA 4:1, Dv != Dk
    (1, 12, 12, 6, 1, 16, 16),    # MQA
    (1, 32, 32, 32, 8, 16, 16),   # GQA 32/8
    (1, 1, 40, 4, 2, 16, 16),     # decode with a cache
    (2, 5, 13, 4, 4, 8, 8),       # chunked prefill
])
@pytest.mark.parametrize("causal", [False, True])
def test_attention_shapes(rng, b, sq, sk, hq, hkv, d, dv, causal):
    q, k, v = rand(rng, b, sq, hq, d), rand(rng, b, sk, hkv, d), rand(rng, b, sk, hkv, dv)
    (o,) = run(attention_ir(q, k, v, causal=causal), [q, k, v])
    assert rel_err(o, ref.attention(q, k, v, causal=causal)) <= 1e-4


@pytest.mark.parametrize("bias_shape", [(2, 4, 6, 9), (4, 6, 9), (1, 1, 1, 9), (6, 1), (9,)])
def test_attention_bias_broadcast(rng, bias_shape):
    q, k, v = rand(rng, 2, 6, 4, 8), rand(rng, 2, 9, 4, 8), rand(rng, 2, 9, 4, 8)
    bias = rand(rng, *bias_shape) * 3
    (o,) = run(attention_ir(q, k, v, bias=bias, scale=0.3), [q, k, v, bias])
    assert rel_err(o, ref.attention(q, k, v, bias=bias, scale=0.3)) <= 1e-4


def test_attention_score_mod_alibi(rng):
    """A score_mod that adds an ALiBi term from (h, i, j) and a captured slope."""
    q, k, v = rand(rng, 1, 7, 2, 8), rand(rng, 1, 7, 2, 8), rand(rng, 1, 7, 2, 8)
    slope = np.array(0.375, np.float32)
    mod = [
        "%d = arith.subi %j, %i : index",
        "%di = arith.index_cast %d : index to i64",
        "%df = arith.sitofp %di : i64 to f32",
        "%hi = arith.index_cast %h : index to i64",
        "%hf = arith.sitofp %hi : i64 to f32",
        "%one = arith.constant 1.0 : f32",
        "%hp = arith.addf %hf, %one : f32",
        "%m = tensor.extract %slope[] : tensor<f32>",
        "%ms = arith.mulf %m, %hp : f32",
        "%t = arith.mulf %df, %ms : f32",
        "%r = arith.addf %s, %t : f32",
        "posenc.yield %r : f32",
    ]
    ir = attention_ir(q, k, v, causal=True, score_mod=mod, captures=[("slope", "tensor<f32>")])
    (o,) = run(ir, [q, k, v, slope])
    expected = ref.attention(q, k, v, causal=True,
                             score_mod=lambda s, b, h, i, j: s + 0.375 * (h + 1) * (j - i))
    assert rel_err(o, expected) <= 1e-4


def test_fully_masked_rows_are_zero(rng):
    """Causal with Sk < Sq masks the first rows entirely: they give 0, not NaN."""
    q, k, v = rand(rng, 1, 6, 2, 8), rand(rng, 1, 3, 2, 8), rand(rng, 1, 3, 2, 8)
    (o,) = run(attention_ir(q, k, v, causal=True), [q, k, v])
    assert not np.isnan(o).any()
    assert np.all(o[:, :3] == 0.0)
    assert rel_err(o, ref.attention(q, k, v, causal=True)) <= 1e-4


def test_masked_by_bias_rows_are_zero(rng):
    q, k, v = rand(rng, 1, 4, 1, 8), rand(rng, 1, 4, 1, 8), rand(rng, 1, 4, 1, 8)
    bias = np.zeros((4, 4), np.float32)
    bias[1, :] = -np.inf
    (o,) = run(attention_ir(q, k, v, bias=bias), [q, k, v, bias])
    assert np.all(o[0, 1] == 0.0) and not np.isnan(o).any()


def test_attention_nan_input_propagates(rng):
    q, k, v = rand(rng, 1, 4, 1, 8), rand(rng, 1, 4, 1, 8), rand(rng, 1, 4, 1, 8)
    q[0, 2, 0, 3] = np.nan
    (o,) = run(attention_ir(q, k, v), [q, k, v])
    assert np.isnan(o[0, 2]).all() and not np.isnan(np.delete(o, 2, axis=1)).any()


def test_attention_bf16(rng):
    q, k, v = (rng.uniform(-1, 1, size=(1, 16, 4, 32)) for _ in range(3))
    qb, kb, vb = to_bf16(q), to_bf16(k), to_bf16(v)
    (o,) = run(attention_ir(qb, kb, vb, causal=True), [qb, kb, vb])
    expected = ref.attention(from_bf16(qb), from_bf16(kb), from_bf16(vb), causal=True)
    assert rel_err(from_bf16(o), expected) <= 1e-2


def mla_ir(ops, causal, scale, elem="f32"):
    names = ["qn", "qr", "ckv", "kr", "wuk", "wuv"]
    args = [(n, type_of(a)) for n, a in zip(names, ops)]
    b, sq, h, _ = ops[0].shape
    rt = tensor_type((b, sq, h, ops[5].shape[1]), elem)
    text = ("%o = posenc.mla_absorb " + ", ".join(f"%{n}" for n in names)
            + (" causal" if causal else "")
            + (f" {{scale = {scale!r} : f64}}" if scale else "")
            + " : " + ", ".join(t for _, t in args) + f" -> {rt}")
    return func_ir(args, [text], [("%o", rt)])


@pytest.mark.parametrize("sq,sk,causal", [(6, 6, True), (1, 20, True), (4, 9, False)])
def test_mla_absorb(rng, sq, sk, causal):
    b, h, dn, dr, c, dv = 2, 4, 16, 8, 32, 16
    ops = [rand(rng, b, sq, h, dn), rand(rng, b, sq, h, dr), rand(rng, b, sk, c),
           rand(rng, b, sk, dr), rand(rng, h, dn, c) * 0.3, rand(rng, h, dv, c) * 0.3]
    (o,) = run(mla_ir(ops, causal, None), ops)
    naive = ref.mla_absorb(*ops, causal=causal)
    assert rel_err(o, naive) <= 1e-4
    # The reference's two forms agree, which is what the absorption relies on.
    assert rel_err(ref.mla_absorb_latent(*ops, causal=causal), naive) <= 1e-12


def test_mla_absorb_bf16_scale(rng):
    b, sq, sk, h, dn, dr, c, dv = 1, 3, 5, 2, 8, 4, 16, 8
    ops64 = [rng.uniform(-1, 1, size=s) for s in
             [(b, sq, h, dn), (b, sq, h, dr), (b, sk, c), (b, sk, dr), (h, dn, c), (h, dv, c)]]
    ops = [to_bf16(a) for a in ops64]
    (o,) = run(mla_ir(ops, True, 0.125, "bf16"), ops)
    expected = ref.mla_absorb(*[from_bf16(a) for a in ops], scale=0.125, causal=True)
    assert rel_err(from_bf16(o), expected) <= 1e-2


def test_attention_f16_with_bias(rng):
    """f16 q/k/v and an f16 bias; arithmetic in f32, result rounded once."""
    q, k, v = (rng.uniform(-1, 1, size=(1, 12, 4, 16)).astype(np.float16) for _ in range(3))
    bias = rng.uniform(-2, 2, size=(4, 12, 12)).astype(np.float16)
    (o,) = run(attention_ir(q, k, v, bias=bias, causal=True), [q, k, v, bias])
    assert o.dtype == np.float16
    expected = ref.attention(q, k, v, bias=bias, causal=True)
    assert rel_err(o, expected) <= 2e-3


@pytest.mark.parametrize("pipeline", [None, "posenc-lower-to-cpu{num-threads=2}",
                                      "posenc-lower-to-nvvm{emulate=true chip=sm_90}"])
def test_keys_reshaped_with_dynamic_batch_and_length(rng, pipeline):
    """K and V as [%b, %n/%b, Hkv, D] views of flat [B·S, Hkv·D] projections,
    with B and S both dynamic: two dynamic sizes in one reassociation group,
    which LLVM 22's expand-strided-metadata cannot lower by itself
    (posenc-expand-shape-to-reinterpret-cast)."""
    b, s, hq, hkv, d = 3, 7, 4, 2, 8
    q = rng.standard_normal((b, s, hq, d)).astype(np.float32)
    k = rng.standard_normal((b * s, hkv * d)).astype(np.float32)
    v = rng.standard_normal((b * s, hkv * d)).astype(np.float32)
    qt, flat = tensor_type((None, None, hq, d), "f32"), tensor_type((None, hkv * d), "f32")
    kt = tensor_type((None, None, hkv, d), "f32")
    body = ["%c0 = arith.constant 0 : index",
            "%b = tensor.dim %q, %c0 : " + qt,
            "%rows = tensor.dim %k, %c0 : " + flat,
            "%s = arith.divui %rows, %b : index"]
    for name in ("k", "v"):
        body.append(f"%{name}4 = tensor.expand_shape %{name} [[0, 1], [2, 3]] output_shape "
                    f"[%b, %s, {hkv}, {d}] : {flat} into {kt}")
    body += attention("%o", "%q", "%k4", "%v4", qt, kt, kt, qt, attrs=" causal")
    ir = func_ir([("q", qt), ("k", flat), ("v", flat)], body, [("%o", qt)])
    out = run(ir, [q, k, v], pipeline=pipeline)[0]
    expected = ref.attention(q.astype(np.float64), k.reshape(b, s, hkv, d).astype(np.float64),
                             v.reshape(b, s, hkv, d).astype(np.float64), causal=True)
    assert rel_err(out, expected) < 1e-5

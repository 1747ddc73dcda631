"""The GPU attention kernel of convert-posenc-attention-to-gpu, checked
without a GPU: with `emulate`, the same kernel (same phases, shared tiles
and index arithmetic) runs as host loops, compared with the float64
reference. Covers tails of query and key tiles, GQA, causal masks, biases
fused into score_mod, bf16, and tile shapes."""

import numpy as np
import pytest

from harness import RunError, attention, func_ir, opt, rel_err, run, tensor_type
from posenc import reference as ref
from test_fused_attention import build


def emulated(options=""):
    opts = "emulate=true" + (f" {options}" if options else "")
    return ("posenc-fuse-bias-into-attention,"
            f"func.func(convert-posenc-attention-to-gpu{{{opts}}}),posenc-lower-to-cpu")


@pytest.mark.parametrize("kind", ["alibi", "t5", "shaw"])
@pytest.mark.parametrize("b,sq,sk,hq,hkv,d,causal", [
    (1, 64, 64, 8, 8, 16, True),     # whole tiles
    (2, 37, 45, 4, 2, 16, True),     # tails of both tiles, GQA
    (1, 1, 77, 4, 1, 32, True),      # decode, MQA
    (1, 50, 50, 2, 2, 64, False),    # bidirectional
])
def test_emulated_kernel_vs_reference(kind, b, sq, sk, hq, hkv, d, causal):
    rng = np.random.default_rng(hash((kind, b, sq, sk, hq, hkv, d)) % 2**32)
    ir, inputs, expected = build(kind, b, sq, sk, hq, hkv, d, causal, "f32", rng)
    (out,) = run(ir, inputs, pipeline=emulated())
    assert rel_err(out, expected) < 1e-5


def attention_ir(b, sq, sk, hq, hkv, dk, dv, elem="f32", causal=False, score_mod=None):
    qt = tensor_type((b, sq, hq, dk), elem)
    kt = tensor_type((b, sk, hkv, dk), elem)
    vt = tensor_type((b, sk, hkv, dv), elem)
    rt = tensor_type((b, sq, hq, dv), elem)
    body = attention("%o", "%q", "%k", "%v", qt, kt, vt, rt,
                     attrs=" causal" if causal else "")
    if score_mod:
        body[-1] += " score_mod {\n  ^bb0(%s: f32, %b: index, %h: index, %i: index, %j: index):\n" \
                   + score_mod + "\n  }"
    return func_ir([("q", qt), ("k", kt), ("v", vt)], body, [("%o", rt)])


def rand(rng, *shape):
    return rng.uniform(-1, 1, size=shape).astype(np.float32)


@pytest.mark.parametrize("options", [
    "tile-q=8 tile-k=16 threads=64",
    "tile-q=32 tile-k=32 threads=256",
    "tile-q=4 tile-k=32 threads=32",
    "tile-k=64",
])
@pytest.mark.parametrize("dk,dv", [(24, 12), (16, 40)])
def test_tile_shapes_and_head_dims(options, dk, dv):
    # Dv = 12 or 40 is not a multiple of threads / tile-q: the last
    # accumulator slot of some threads is past Dv.
    rng = np.random.default_rng(dk * 100 + dv)
    b, sq, sk, hq, hkv = 2, 29, 71, 6, 3
    q, k, v = rand(rng, b, sq, hq, dk), rand(rng, b, sk, hkv, dk), rand(rng, b, sk, hkv, dv)
    ir = attention_ir(b, sq, sk, hq, hkv, dk, dv, causal=True)
    (out,) = run(ir, [q, k, v], pipeline=emulated(options))
    expected = ref.attention(q.astype(np.float64), k.astype(np.float64), v.astype(np.float64),
                             causal=True)
    assert rel_err(out, expected) < 1e-5


def test_rows_that_see_no_key_are_zero_and_nan_propagates():
    # Causal with Sq > Sk: the first Sq - Sk queries see no key.
    rng = np.random.default_rng(7)
    b, sq, sk, h, d = 1, 40, 24, 2, 16
    q, k, v = rand(rng, b, sq, h, d), rand(rng, b, sk, h, d), rand(rng, b, sk, h, d)
    k[0, 5, 1, 3] = np.nan
    ir = attention_ir(b, sq, sk, h, h, d, d, causal=True)
    (out,) = run(ir, [q, k, v], pipeline=emulated())
    expected = ref.attention(q.astype(np.float64), k.astype(np.float64), v.astype(np.float64),
                             causal=True)
    assert np.all(out[0, :sq - sk] == 0)
    assert np.isnan(out[0, sq - sk + 5:, 1]).all() and not np.isnan(out[0, :, 0]).any()
    assert rel_err(out, expected) < 1e-5


def test_bf16_inputs_accumulate_in_f32():
    from harness import from_bf16, to_bf16
    rng = np.random.default_rng(11)
    b, sq, sk, h, d = 1, 33, 50, 4, 32
    q, k, v = (to_bf16(rand(rng, *s)) for s in [(b, sq, h, d), (b, sk, h, d), (b, sk, h, d)])
    ir = attention_ir(b, sq, sk, h, h, d, d, elem="bf16", causal=True)
    (out,) = run(ir, [q, k, v], pipeline=emulated())
    expected = ref.attention(*(from_bf16(x).astype(np.float64) for x in (q, k, v)), causal=True)
    assert rel_err(from_bf16(out), expected) < 1e-2


def test_score_mod_sees_global_indices():
    # A softcap-like mod plus a term in (b, h, i, j): wrong block or tile
    # offsets change the result.
    rng = np.random.default_rng(3)
    b, sq, sk, h, d = 2, 21, 35, 3, 16
    q, k, v = rand(rng, b, sq, h, d), rand(rng, b, sk, h, d), rand(rng, b, sk, h, d)
    mod = ("    %x = arith.addi %b, %h : index\n    %y = arith.subi %j, %i : index\n"
           "    %z = arith.addi %x, %y : index\n    %w = arith.index_cast %z : index to i64\n"
           "    %f = arith.sitofp %w : i64 to f32\n    %c = arith.constant 0.125 : f32\n"
           "    %t = arith.mulf %f, %c : f32\n    %u = math.tanh %s : f32\n"
           "    %r = arith.addf %u, %t : f32\n    posenc.yield %r : f32")
    ir = attention_ir(b, sq, sk, h, h, d, d, score_mod=mod)
    (out,) = run(ir, [q, k, v], pipeline=emulated())
    expected = ref.attention(q.astype(np.float64), k.astype(np.float64), v.astype(np.float64),
                             score_mod=lambda s, bb, hh, ii, jj: np.tanh(s) + 0.125 * (bb + hh + jj - ii))
    assert rel_err(out, expected) < 1e-5


@pytest.mark.parametrize("options,message", [
    ("threads=100", "threads = 100 must be a multiple of 32 in [32, 1024]"),
    ("tile-q=3", "no kernel for Dk = 16, Dv = 16 with tile-k = 32, threads = 128, tile-q = 3"),
    ("tile-k=48", "tile-q and tile-k must divide threads"),
])
def test_bad_options_are_diagnosed(options, message):
    ir = attention_ir(1, 8, 8, 2, 2, 16, 16)
    with pytest.raises(RunError) as err:
        opt(ir, f"--pass-pipeline=builtin.module(func.func(convert-posenc-attention-to-gpu{{{options}}}))")
    assert message in err.value.stderr


def test_mla_sized_heads_beyond_48k():
    # MLA's absorbed form: Dk = 576, Dv = 512, 16 query heads on one kv
    # head, decode. The tiles need ~90 KB of shared memory (4 rows).
    rng = np.random.default_rng(5)
    b, sq, sk, hq, dk, dv = 1, 1, 70, 16, 576, 512
    q, k, v = rand(rng, b, sq, hq, dk), rand(rng, b, sk, 1, dk), rand(rng, b, sk, 1, dv)
    ir = attention_ir(b, sq, sk, hq, 1, dk, dv, causal=True)
    (out,) = run(ir, [q, k, v], pipeline=emulated("max-shared-memory=232448"))
    expected = ref.attention(q.astype(np.float64), k.astype(np.float64), v.astype(np.float64),
                             causal=True)
    assert rel_err(out, expected) < 1e-5


@pytest.mark.parametrize("split", [0, 2, 5])
def test_split_k_with_dynamic_sizes(split):
    # Batch, Sq and Sk dynamic: split-k=0 does not split (the grid size is
    # unknown); a given split-k allocates the partial states from q's sizes.
    rng = np.random.default_rng(11 + split)
    b, sq, sk, hq, hkv, d = 2, 3, 150, 4, 2, 16
    q, k, v = rand(rng, b, sq, hq, d), rand(rng, b, sk, hkv, d), rand(rng, b, sk, hkv, d)
    qt, kt = tensor_type((None, None, hq, d), "f32"), tensor_type((None, None, hkv, d), "f32")
    body = attention("%o", "%q", "%k", "%v", qt, kt, kt, qt, attrs=" causal")
    ir = func_ir([("q", qt), ("k", kt), ("v", kt)], body, [("%o", qt)])
    (out,) = run(ir, [q, k, v], pipeline=emulated(f"tile-q=4 tile-k=8 threads=32 split-k={split}"))
    expected = ref.attention(q.astype(np.float64), k.astype(np.float64), v.astype(np.float64),
                             causal=True)
    assert rel_err(out, expected) < 1e-5


# precision=tf32: Q·Kᵀ and P·V on mma.sync (m16n8k16 on f16, m16n8k8 tf32
# on f32 and bf16), emulated with the PTX ISA's fragment layouts. P and an
# f32 V are rounded to tf32 (10 mantissa bits): errors near 2^-11.
def tf32(x):
    """Rounded to tf32, to nearest with ties away from zero (what the kernel
    does before the tensor cores drop the low 13 bits)."""
    bits = np.asarray(x, np.float32).view(np.uint32)
    return ((bits + np.uint32(0x1000)) & np.uint32(0xFFFFE000)).view(np.float32)


def as_elem(raw, elem):
    """f32 arrays as the kernel's inputs of type `elem`, and the values
    they hold in float64."""
    from harness import from_bf16, to_bf16
    if elem == "bf16":
        inputs = [to_bf16(x) for x in raw]
        return inputs, [from_bf16(x).astype(np.float64) for x in inputs]
    inputs = [x.astype(np.float16) for x in raw] if elem == "f16" else raw
    return inputs, [x.astype(np.float64) for x in inputs]


@pytest.mark.parametrize("elem", ["f32", "bf16", "f16"])
@pytest.mark.parametrize("b,sq,sk,hq,hkv,d,causal,options", [
    (1, 64, 64, 4, 4, 64, True, ""),                                # whole tiles
    (2, 37, 45, 4, 2, 24, True, "tile-q=16 tile-k=8 threads=32"),   # tails, GQA, Dk % 16 = 8
    (1, 1, 300, 8, 2, 40, True, "split-k=3"),                       # decode, split-K
    (1, 50, 50, 2, 2, 16, False, "tile-q=32 tile-k=16 threads=64"),
    (1, 70, 70, 2, 1, 8, True, "tile-q=64 tile-k=32 threads=128"),  # Dk below one k step
])
def test_tensor_core_scores(elem, b, sq, sk, hq, hkv, d, causal, options):
    from harness import from_bf16
    rng = np.random.default_rng(hash((elem, b, sq, sk, d)) % 2**32)
    shapes = [(b, sq, hq, d), (b, sk, hkv, d), (b, sk, hkv, d)]
    inputs, exact = as_elem([rand(rng, *s) for s in shapes], elem)
    ir = attention_ir(b, sq, sk, hq, hkv, d, d, elem=elem, causal=causal)
    (out,) = run(ir, inputs, pipeline=emulated(f"precision=tf32 {options}".strip()))
    out = from_bf16(out) if elem == "bf16" else out.astype(np.float64)
    # The kernel rounds f32 q and k to tf32 (q after a power-of-two part of
    # the scale, which is exact); the softmax stays f32, its weights are
    # rounded to the operand type for P·V.
    q, k, v = exact
    if elem == "f32":
        q, k = tf32(q).astype(np.float64), tf32(k).astype(np.float64)
    expected = ref.attention(q, k, v, causal=causal)
    tol = {"f32": 2e-3, "bf16": 1e-2, "f16": 2e-3}[elem]
    assert rel_err(out, expected) < tol
    if elem == "f32":
        # Not the f32 answer: the operands were rounded to tf32.
        full = ref.attention(*exact, causal=causal)
        assert rel_err(out, full) > 1e-5
    # Without tensor cores the same kernel is exact to f32 rounding.
    (fma,) = run(ir, inputs, pipeline=emulated(options))
    fma = from_bf16(fma) if elem == "bf16" else fma.astype(np.float64)
    assert rel_err(fma, ref.attention(*exact, causal=causal)) < (1e-5 if elem == "f32" else tol)


def test_tensor_core_scores_with_fused_bias():
    rng = np.random.default_rng(5)
    ir, inputs, expected = build("alibi", 1, 40, 40, 4, 4, 32, True, "f32", rng)
    (out,) = run(ir, inputs, pipeline=emulated("precision=tf32"))
    assert rel_err(out, expected) < 5e-3


def test_tensor_core_tiles_must_fit_the_mma():
    ir = attention_ir(1, 16, 16, 1, 1, 16, 16)
    with pytest.raises(RunError) as err:
        run(ir, [np.zeros((1, 16, 1, 16), np.float32)] * 3,
            pipeline=emulated("precision=tf32 tile-q=8 tile-k=8 threads=32"))
    assert "with precision = tf32 tile-q must be a multiple of 16 and tile-k of 8" in err.value.stderr
    with pytest.raises(RunError) as err:
        run(ir, [np.zeros((1, 16, 1, 16), np.float32)] * 3, pipeline=emulated("precision=fp8"))
    assert "precision = 'fp8' must be 'ieee' (f32 FMAs) or 'tf32' (tensor cores)" in err.value.stderr


@pytest.mark.parametrize("precision", ["ieee", "tf32"])
def test_no_keys_gives_zero_rows(precision):
    """A static Sk of 0: every row sees no key and is 0."""
    ir = attention_ir(1, 20, 0, 4, 2, 24, 24)
    q = rand(np.random.default_rng(1), 1, 20, 4, 24)
    kv = np.zeros((1, 0, 2, 24), np.float32)
    (out,) = run(ir, [q, kv, kv], pipeline=emulated(f"precision={precision}"))
    np.testing.assert_array_equal(out, np.zeros_like(q))


def test_tensor_core_scores_keep_the_range_of_scale_q_k():
    """scale = 1e-30 on q, k near 1e19: q·k overflows f32 but scale·q·k
    does not; the power of two of the scale goes into q before the mma."""
    rng = np.random.default_rng(2)
    b, s, h, d = 1, 9, 2, 16
    q, k = (rand(rng, b, s, h, d) * np.float32(1e19) for _ in range(2))
    v = rand(rng, b, s, h, d)
    qt, vt = tensor_type((b, s, h, d), "f32"), tensor_type((b, s, h, d), "f32")
    body = attention("%o", "%q", "%k", "%v", qt, qt, qt, vt, attr_dict=" {scale = 1.0e-30 : f64}")
    ir = func_ir([("q", qt), ("k", qt), ("v", qt)], body, [("%o", vt)])
    (out,) = run(ir, [q, k, v], pipeline=emulated("precision=tf32"))
    expected = ref.attention(tf32(q).astype(np.float64), tf32(k).astype(np.float64),
                             v.astype(np.float64), scale=1e-30)
    assert np.isfinite(out).all()
    assert rel_err(out, expected) < 2e-3


def test_tensor_core_rounding_is_unbiased():
    """v ≡ 1: every output is exactly the weights' sum, 1. Truncating the
    weights to tf32 pulls every output below 1 (by about 3e-4 here);
    rounding to nearest leaves errors of both signs."""
    rng = np.random.default_rng(3)
    b, sq, sk, h, d = 1, 64, 512, 2, 32
    q, k = rand(rng, b, sq, h, d), rand(rng, b, sk, h, d)
    v = np.ones((b, sk, h, d), np.float32)
    ir = attention_ir(b, sq, sk, h, h, d, d, causal=True)
    (out,) = run(ir, [q, k, v], pipeline=emulated("precision=tf32"))
    err = out.astype(np.float64) - 1.0
    assert np.abs(err).max() < 2.0 ** -10
    assert abs(err.mean()) < 2e-5, err.mean()


@pytest.mark.parametrize("elem", ["f32", "f16", "bf16"])
@pytest.mark.parametrize("options", [
    "tile-q=16 tile-k=8 threads=128",   # one group, three warps repeating it
    "tile-q=48 tile-k=16 threads=64",   # three groups on two warps
    "tile-q=64 tile-k=24 threads=32",   # four groups on one warp
    "",
])
def test_tensor_core_groups_and_padding(elem, options):
    """Warps own 16-row groups (a warp past the last repeats it and writes
    nothing); Dk = 12 pads the mma depth, Dv = 20 the last n8 tile. Key 5
    is masked for every row by score_mod and its v holds NaN: its V tile
    takes the FMA path, whose weights take the K tile's shared memory. Key
    6 holds NaN in k and is seen by rows 0-7 only: their weights are NaN,
    and the later tiles' scores (K's depth padding included) must not see
    them."""
    from harness import from_bf16
    b, sq, sk, hq, hkv, dk, dv = 1, 50, 61, 4, 2, 12, 20
    rng = np.random.default_rng(hash((elem, options)) % 2**32)
    q, k = rand(rng, b, sq, hq, dk), rand(rng, b, sk, hkv, dk)
    v = rand(rng, b, sk, hkv, dv)
    v[0, 5, 1, 3] = np.nan
    k[0, 6, 1, 2] = np.nan
    (q, k, v), (qe, ke, ve) = as_elem([q, k, v], elem)
    qt, kt = tensor_type(q.shape, elem), tensor_type(k.shape, elem)
    vt, rt = tensor_type(v.shape, elem), tensor_type((b, sq, hq, dv), elem)
    mask = """    %c5 = arith.constant 5 : index
    %c6 = arith.constant 6 : index
    %c8 = arith.constant 8 : index
    %ninf = arith.constant 0xFF800000 : f32
    %is5 = arith.cmpi eq, %j, %c5 : index
    %is6 = arith.cmpi eq, %j, %c6 : index
    %late = arith.cmpi uge, %i, %c8 : index
    %hide6 = arith.andi %is6, %late : i1
    %m = arith.ori %is5, %hide6 : i1
    %r = arith.select %m, %ninf, %s : f32
    posenc.yield %r : f32"""
    body = attention("%o", "%q", "%k", "%v", qt, kt, vt, rt, attrs=" causal")
    body[-1] += (" score_mod {\n  ^bb0(%s: f32, %b: index, %h: index, %i: index, %j: index):\n"
                 + mask + "\n  }")
    ir = func_ir([("q", qt), ("k", kt), ("v", vt)], body, [("%o", rt)])
    (out,) = run(ir, [q, k, v], pipeline=emulated(f"precision=tf32 {options}".strip()))
    out = from_bf16(out) if elem == "bf16" else out.astype(np.float64)
    if elem == "f32":
        qe, ke = tf32(qe).astype(np.float64), tf32(ke).astype(np.float64)
    expected = ref.attention(
        qe, ke, ve, causal=True,
        score_mod=lambda s, b, h, i, j: np.where((j == 5) | ((j == 6) & (i >= 8)), -np.inf, s))
    # NaN in rows 0-7 of the heads of kv head 1, nowhere else.
    assert np.isnan(expected[0, :8, 2:]).all()
    assert np.isfinite(expected[0, 8:]).all() and np.isfinite(expected[0, :, :2]).all()
    assert rel_err(out, expected) < (1e-2 if elem == "bf16" else 3e-3)


@pytest.mark.parametrize("elem,dk,dv", [
    ("f16", 7, 5),     # rows of 14 and 10 bytes: plain loads and stores
    ("bf16", 6, 10),   # 12 and 20 bytes: 4-byte cp.async
    ("f32", 5, 6),     # 20 and 24 bytes: 4- and 8-byte cp.async
    ("f16", 16, 24),   # 32 and 48 bytes: 16-byte cp.async
])
def test_tensor_core_key_tile_copies(elem, dk, dv):
    """K and V tiles are copied as they are stored, by cp.async in chunks
    of the most bytes (16, 8 or 4) that divide a row, else by loads and
    stores; the next tile while this one is used (several key tiles of 8
    here, the last one partial)."""
    from harness import from_bf16
    b, sq, sk, hq, hkv = 1, 21, 43, 2, 1
    rng = np.random.default_rng(dk * 100 + dv)
    raw = [rand(rng, b, sq, hq, dk), rand(rng, b, sk, hkv, dk), rand(rng, b, sk, hkv, dv)]
    inputs, exact = as_elem(raw, elem)
    if elem == "f32":
        exact[:2] = [tf32(x).astype(np.float64) for x in raw[:2]]
    ir = attention_ir(b, sq, sk, hq, hkv, dk, dv, elem=elem, causal=True)
    (out,) = run(ir, inputs, pipeline=emulated("precision=tf32 tile-q=32 tile-k=8 threads=64"))
    out = from_bf16(out) if elem == "bf16" else out.astype(np.float64)
    expected = ref.attention(*exact, causal=True)
    assert rel_err(out, expected) < (1e-2 if elem == "bf16" else 3e-3)

"""Compiled code on several threads (posenc-lower-to-cpu{num-threads=N},
LLVM's OpenMP runtime): attention's outermost tiles (per batch and kv
head) run as parallel loop iterations, decode's keys as chunks of 2048
(split-K), the other ops as chunks of their outer dim. Results must
be bit-for-bit those of one thread for every count (1, 2 and 3 > this
machine's cores; decode: the same for every count > 1, within rounding of
one thread) and match float64; one thread must emit no OpenMP at all.
The controls (posenc-run --threads, posenc.compile(threads=),
POSENC_NUM_THREADS) are checked with their errors."""

import os
import subprocess
import sys

import numpy as np
import pytest

from harness import (BUILD, POSENC_RUN, RunError, attention, func_ir, opt, rel_err, run,
                     tensor_type)
from posenc import reference as ref
from test_fused_attention import build

CPU = "posenc-lower-to-cpu"


def gqa_ir(b, sq, sk, hq, hkv, d, attrs=" causal"):
    types = [tensor_type((b, s, h, d), "f32") for s, h in ((sq, hq), (sk, hkv), (sk, hkv))]
    rt = tensor_type((b, sq, hq, d), "f32")
    return func_ir([("q", types[0]), ("k", types[1]), ("v", types[2])],
                   attention("%o", "%q", "%k", "%v", *types, rt, attrs=attrs),
                   [("%o", rt)])


@pytest.mark.parametrize("b,sq,sk,hq,hkv,d", [
    (2, 150, 150, 8, 2, 32),   # prefill: 2 batches x 2 kv heads of tiles
    (1, 97, 130, 4, 4, 16),    # Sq != Sk, bottom-right causal
    (3, 1, 300, 8, 2, 64),     # decode: one tile per batch
    (1, 1, 4500, 8, 2, 32),    # decode in three key chunks (split-K)
])
def test_attention_same_bits_for_every_thread_count(b, sq, sk, hq, hkv, d):
    rng = np.random.default_rng(b * 100 + sq)
    q = rng.uniform(-1, 1, (b, sq, hq, d)).astype(np.float32)
    k = rng.uniform(-1, 1, (b, sk, hkv, d)).astype(np.float32)
    v = rng.uniform(-1, 1, (b, sk, hkv, d)).astype(np.float32)
    ir = gqa_ir(b, sq, sk, hq, hkv, d)
    outs = {n: run(ir, [q, k, v], pipeline=f"{CPU}{{num-threads={n}}}")[0] for n in (1, 2, 3)}
    expected = ref.attention(q.astype(np.float64), k.astype(np.float64), v.astype(np.float64),
                             causal=True)
    assert rel_err(outs[1], expected) < 1e-5
    if sq > 4 or sk <= 2048:
        # Prefill, and decode whose keys fit one chunk (not split).
        for n in (2, 3):
            assert np.array_equal(outs[n], outs[1]), f"{n} threads differ from 1"
    else:
        # Decode splits its keys into chunks of a fixed length whenever it
        # has threads: the same bits for every count > 1, and within
        # rounding of the unsplit loop of one thread.
        assert np.array_equal(outs[3], outs[2])
        assert rel_err(outs[2], outs[1]) < 1e-6
        assert rel_err(outs[2], expected) < 1e-5


@pytest.mark.parametrize("sk", [1, 17, 2048, 2049, 5000])
def test_decode_split_keys(sk):
    """Split-K in chunks of 2048 keys: one short chunk, exactly one chunk,
    a chunk of one key after a full one, uneven chunks; causal with two
    queries (bottom-right: the first sees one key less)."""
    rng = np.random.default_rng(sk)
    b, sq, hq, hkv, d = 1, 2, 8, 2, 16
    q = rng.uniform(-1, 1, (b, sq, hq, d)).astype(np.float32)
    k = rng.uniform(-1, 1, (b, max(sk, sq), hkv, d)).astype(np.float32)
    v = rng.uniform(-1, 1, (b, max(sk, sq), hkv, d)).astype(np.float32)
    ir = gqa_ir(b, sq, k.shape[1], hq, hkv, d)
    two = run(ir, [q, k, v], pipeline=f"{CPU}{{num-threads=2}}")[0]
    expected = ref.attention(q.astype(np.float64), k.astype(np.float64), v.astype(np.float64),
                             causal=True)
    assert rel_err(two, expected) < 1e-5


@pytest.mark.parametrize("sk", [300, 2048, 2049, 4500])
def test_decode_dynamic_cache_length(sk):
    """A cache of dynamic length (a model's used length): split-K runs only
    when the keys fill more than one chunk of 2048 (scf.if on the count);
    a shorter cache takes one thread's unsplit loop, with its bits."""
    rng = np.random.default_rng(sk)
    b, hq, hkv, d = 1, 8, 2, 32
    q = rng.uniform(-1, 1, (b, 1, hq, d)).astype(np.float32)
    k = rng.uniform(-1, 1, (b, sk, hkv, d)).astype(np.float32)
    v = rng.uniform(-1, 1, (b, sk, hkv, d)).astype(np.float32)
    tq, tkv = tensor_type((b, 1, hq, d), "f32"), tensor_type((b, "?", hkv, d), "f32")
    ir = func_ir([("q", tq), ("k", tkv), ("v", tkv)],
                 attention("%o", "%q", "%k", "%v", tq, tkv, tkv, tq, attrs=" causal"),
                 [("%o", tq)])
    outs = {n: run(ir, [q, k, v], pipeline=f"{CPU}{{num-threads={n}}}")[0] for n in (1, 2, 3)}
    expected = ref.attention(q.astype(np.float64), k.astype(np.float64), v.astype(np.float64),
                             causal=True)
    assert rel_err(outs[2], expected) < 1e-5
    assert np.array_equal(outs[3], outs[2])
    if sk <= 2048:
        assert np.array_equal(outs[2], outs[1])
    else:
        assert not np.array_equal(outs[2], outs[1])  # the split merge ran
        assert rel_err(outs[2], outs[1]) < 1e-6


@pytest.mark.parametrize("kind", ["alibi", "t5"])
def test_fused_bias_on_threads(kind):
    rng = np.random.default_rng(5)
    ir, inputs, expected = build(kind, 2, 70, 70, 4, 2, 16, True, "f32", rng)
    one = run(ir, inputs, pipeline=CPU)[0]
    two = run(ir, inputs, extra=["--threads=2"])[0]
    assert rel_err(two, expected) < 1e-5
    assert np.array_equal(one, two)


def test_one_thread_emits_no_openmp_and_two_do():
    ir = gqa_ir(1, 64, 64, 4, 2, 16)
    one = opt(ir, f"--pass-pipeline=builtin.module({CPU})")
    assert "omp." not in one
    two = opt(ir, f"--pass-pipeline=builtin.module({CPU}{{num-threads=2}})")
    assert "omp.parallel" in two and "omp.wsloop" in two


def test_posenc_num_threads_environment():
    """num-threads=0 takes POSENC_NUM_THREADS; a bad value is an error
    naming the variable."""
    rng = np.random.default_rng(9)
    q = rng.uniform(-1, 1, (2, 40, 4, 16)).astype(np.float32)
    ir = gqa_ir(2, 40, 40, 4, 4, 16)
    base = run(ir, [q, q, q], pipeline=CPU)[0]
    env = dict(os.environ, POSENC_NUM_THREADS="2")
    old = os.environ.get("POSENC_NUM_THREADS")
    try:
        os.environ.update(env)
        out = run(ir, [q, q, q], extra=["--threads=0"])[0]
        assert np.array_equal(out, base)
        os.environ["POSENC_NUM_THREADS"] = "two"
        with pytest.raises(RunError) as e:
            run(ir, [q, q, q], extra=["--threads=0"])
        assert "POSENC_NUM_THREADS='two'" in e.value.stderr
    finally:
        if old is None:
            os.environ.pop("POSENC_NUM_THREADS", None)
        else:
            os.environ["POSENC_NUM_THREADS"] = old


@pytest.mark.parametrize("args,message", [
    (["--threads=-2"], "must be >= 0"),
    (["--threads=2", "--pipeline=canonicalize"], "does not run"),
    (["--threads=2", f"--pipeline={CPU}{{num-threads=3}}"], "sets num-threads already"),
])
def test_thread_count_errors(args, message, tmp_path):
    src = tmp_path / "in.mlir"
    src.write_text(gqa_ir(1, 4, 4, 2, 2, 8))
    proc = subprocess.run([POSENC_RUN, str(src), "--input=random:1x4x2x8xf32",
                           "--input=random:1x4x2x8xf32", "--input=random:1x4x2x8xf32", *args],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode != 0
    assert message in proc.stderr
    assert "Stack dump" not in proc.stderr


def test_python_threads_argument():
    sys.path.insert(0, os.path.join(BUILD, "python_packages"))
    import posenc
    rng = np.random.default_rng(3)
    q = rng.uniform(-1, 1, (2, 33, 4, 16)).astype(np.float32)
    ir = gqa_ir(2, 33, 33, 4, 2, 16)
    k = q[:, :, :2].copy()
    one = posenc.compile(ir).f(q, k, k)
    two = posenc.compile(ir, threads=2).f(q, k, k)
    assert np.array_equal(one, two)
    with pytest.raises(TypeError):
        posenc.compile(ir, threads="2")
    with pytest.raises(posenc.Error, match="must be >= 0"):
        posenc.compile(ir, threads=-1)


def _ops_on_threads(ir, inputs, expected, tol):
    outs = [run(ir, inputs, pipeline=f"{CPU}{{num-threads={n}}}")[0] for n in (1, 2, 3)]
    assert rel_err(outs[0].astype(np.float64), expected) < tol
    for n, out in zip((2, 3), outs[1:]):
        assert np.array_equal(out, outs[0]), f"{n} threads differ from 1"


@pytest.mark.parametrize("layout", ["half", "interleaved"])
@pytest.mark.parametrize("elem", ["f32", "bf16"])
def test_rope_in_chunks(layout, elem):
    """rope outside attention runs as chunks of its sequence dim (the
    rotated pair's 1 - k map stays whole)."""
    from harness import from_bf16, to_bf16
    rng = np.random.default_rng(17)
    x64 = rng.uniform(-1, 1, (2, 300, 4, 64))
    x = to_bf16(x64) if elem == "bf16" else x64.astype(np.float32)
    xin = from_bf16(x).astype(np.float64) if elem == "bf16" else x.astype(np.float64)
    pos = np.arange(300, dtype=np.int32)
    t, p = tensor_type(x.shape, elem), tensor_type(pos.shape, "i32")
    ir = func_ir([("x", t), ("p", p)],
                 [f"%y = posenc.rope %x, %p layout {layout} : {t}, {p}"], [("%y", t)])
    outs = [run(ir, [x, pos], pipeline=f"{CPU}{{num-threads={n}}}")[0] for n in (1, 2, 3)]
    y = from_bf16(outs[0]) if elem == "bf16" else outs[0]
    assert rel_err(y, ref.rope(xin, pos, layout=layout)) < (1e-2 if elem == "bf16" else 1e-5)
    for n, out in zip((2, 3), outs[1:]):
        assert np.array_equal(out, outs[0]), f"{n} threads differ from 1"


def test_biases_in_chunks():
    q = np.arange(200, dtype=np.int32)
    k = np.arange(260, dtype=np.int32)
    bt = tensor_type((8, 200, 260), "f32")
    ir = func_ir([("q", tensor_type(q.shape, "i32")), ("k", tensor_type(k.shape, "i32"))],
                 [f"%b = posenc.alibi_bias %q, %k mode causal {{num_heads = 8 : i64}} : "
                  f"{tensor_type(q.shape, 'i32')}, {tensor_type(k.shape, 'i32')} -> {bt}"],
                 [("%b", bt)])
    expected = ref.alibi_bias(q, k, 8)
    finite = np.isfinite(expected)
    outs = [run(ir, [q, k], pipeline=f"{CPU}{{num-threads={n}}}")[0] for n in (1, 2, 3)]
    assert np.array_equal(np.isfinite(outs[0]), finite)
    assert rel_err(np.where(finite, outs[0], 0), np.where(finite, expected, 0)) < 1e-5
    for out in outs[1:]:
        assert np.array_equal(out, outs[0])


def test_chunking_pass_on_ir():
    """posenc-tile-for-threads: a top-level op becomes an scf.forall of
    chunks along its outermost non-unit parallel dim; small ops and the
    ops inside loops stay."""
    ir = """func.func @f(%x: tensor<1x1024x64xf32>, %s: tensor<4x4xf32>) -> (tensor<1x1024x64xf32>, tensor<4x4xf32>) {
  %e = tensor.empty() : tensor<1x1024x64xf32>
  %y = linalg.generic {indexing_maps = [affine_map<(a, b, c) -> (a, b, c)>, affine_map<(a, b, c) -> (a, b, c)>], iterator_types = ["parallel", "parallel", "parallel"]} ins(%x : tensor<1x1024x64xf32>) outs(%e : tensor<1x1024x64xf32>) {
  ^bb0(%i: f32, %o: f32):
    %z = arith.addf %i, %i : f32
    linalg.yield %z : f32
  } -> tensor<1x1024x64xf32>
  %e2 = tensor.empty() : tensor<4x4xf32>
  %t = linalg.generic {indexing_maps = [affine_map<(a, b) -> (a, b)>, affine_map<(a, b) -> (a, b)>], iterator_types = ["parallel", "parallel"]} ins(%s : tensor<4x4xf32>) outs(%e2 : tensor<4x4xf32>) {
  ^bb0(%i: f32, %o: f32):
    %z = arith.addf %i, %i : f32
    linalg.yield %z : f32
  } -> tensor<4x4xf32>
  return %y, %t : tensor<1x1024x64xf32>, tensor<4x4xf32>
}
"""
    out = opt(ir, "--posenc-tile-for-threads=chunks=4")
    assert out.count("scf.forall (") == 1
    assert "scf.forall (%arg2) = (0) to (1024) step (256)" in out
    assert "tensor.extract_slice %arg0[0, %arg2, 0] [1, %" in out
    with pytest.raises(RunError) as e:
        opt(ir, "--posenc-tile-for-threads=chunks=0")
    assert "chunks must be >= 1" in e.value.stderr


def test_decode_split_keys_mask_rule():
    """A masked key never reaches its row through a chunk's partial state:
    NaN in v of the last key (query 0 of 2 cannot see it), alone in the
    last chunk of 2048 keys, stays out of query 0 and reaches query 1."""
    rng = np.random.default_rng(4)
    b, sq, sk, hq, hkv, d = 1, 2, 4097, 4, 2, 8
    q = rng.uniform(-1, 1, (b, sq, hq, d)).astype(np.float32)
    k = rng.uniform(-1, 1, (b, sk, hkv, d)).astype(np.float32)
    v = rng.uniform(-1, 1, (b, sk, hkv, d)).astype(np.float32)
    v[0, -1] = np.nan
    out = run(gqa_ir(b, sq, sk, hq, hkv, d), [q, k, v], pipeline=f"{CPU}{{num-threads=2}}")[0]
    assert np.isnan(out[0, 1]).all()
    expected = ref.attention(q[:, :1].astype(np.float64), k[:, :-1].astype(np.float64),
                             v[:, :-1].astype(np.float64), causal=True)
    assert rel_err(out[:, :1], expected) < 1e-5


@pytest.mark.parametrize("m", [1, 200])
def test_projection_in_chunks_same_bits(m):
    """y = x·Wᵀ as a model's projection (W [n, d] as stored): chunks of
    its rows (prefill) or of W's rows (one token) keep every element on
    the register-block path it takes unchunked: the same bits."""
    rng = np.random.default_rng(m)
    d, n = 256, 300
    x = rng.uniform(-1, 1, (m, d)).astype(np.float32)
    w = rng.uniform(-1, 1, (n, d)).astype(np.float32)
    xt, wt, yt = (tensor_type(s, "f32") for s in ((m, d), (n, d), (m, n)))
    ir = func_ir([("x", xt), ("w", wt)], [
        "%z = arith.constant 0.0 : f32",
        f"%e = tensor.empty() : {yt}",
        f"%f = linalg.fill ins(%z : f32) outs(%e : {yt}) -> {yt}",
        "%y = linalg.matmul indexing_maps = [affine_map<(i, j, k) -> (i, k)>, "
        "affine_map<(i, j, k) -> (j, k)>, affine_map<(i, j, k) -> (i, j)>] "
        f"ins(%x, %w : {xt}, {wt}) outs(%f : {yt}) -> {yt}"], [("%y", yt)])
    outs = [run(ir, [x, w], pipeline=f"{CPU}{{num-threads={t}}}")[0] for t in (1, 2, 3)]
    assert rel_err(outs[0], x.astype(np.float64) @ w.astype(np.float64).T) < 1e-5
    for t, out in zip((2, 3), outs[1:]):
        assert np.array_equal(out, outs[0]), f"{t} threads differ from 1"
    chunked = opt(ir, f"--pass-pipeline=builtin.module({CPU}{{num-threads=2}})")
    assert "omp.parallel" in chunked

"""Compiled code on several threads (posenc-lower-to-cpu{num-threads=N},
LLVM's OpenMP runtime): attention's outermost tiles (per batch and kv head;
per batch for decode) run as parallel loop iterations. Results must be
bit-for-bit those of one thread for every count (1, 2 and 3 > this
machine's cores) and match float64; one thread must emit no OpenMP at all.
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
    for n in (2, 3):
        assert np.array_equal(outs[n], outs[1]), f"{n} threads differ from 1"


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

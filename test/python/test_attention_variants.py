"""posenc.attention with `causal window(W)` (sliding-window attention),
`causal chunk(C)` (chunked attention), `softcap(c)` (logit soft-capping)
and `sinks(%s)` (attention sinks) against the float64 reference on every
target and tile shape (prefill, Sq != Sk, decode and split-K decode, GQA,
windows of 1 key, a prime, wider than the sequence), the tiles reading
only the keys of their band, and the verifier's diagnostics."""

import subprocess

import numpy as np
import pytest

from harness import POSENC_OPT, RunError, attention, func_ir, opt, rel_err, run, tensor_type
from posenc import reference as ref


def cpu(tile_q, tile_k):
    return f"posenc-lower-to-cpu{{attention-tile-q={tile_q} attention-tile-k={tile_k}}}"


TARGETS = {
    "cpu-default": "posenc-lower-to-cpu",
    "cpu-1x1": cpu(1, 1),
    "cpu-7x13": cpu(7, 13),
    "cpu-threads": "posenc-lower-to-cpu{num-threads=2}",
    "whole-tensor": "convert-posenc-to-linalg{materialize-attention=true},posenc-lower-to-cpu",
    "gpu-emulated": ("func.func(convert-posenc-attention-to-gpu{emulate=true "
                     "tile-q=4 tile-k=32 threads=32}),posenc-lower-to-cpu"),
    # Split-K: each tile's keys in 3 chunks of 8-key tiles, merged after.
    "gpu-emulated-split-k": ("func.func(convert-posenc-attention-to-gpu{emulate=true "
                             "tile-q=4 tile-k=8 threads=32 split-k=3}),posenc-lower-to-cpu"),
}


def variant_ir(b, sq, sk, hq, hkv, d, attrs, sinks=False):
    """posenc.attention q, k, v<attrs> (after `sinks(%s)` when `sinks`)."""
    tq, tk = tensor_type((b, sq, hq, d), "f32"), tensor_type((b, sk, hkv, d), "f32")
    ts = tensor_type((hq,), "f32")
    args = [("q", tq), ("k", tk), ("v", tk)] + ([("s", ts)] if sinks else [])
    pre = f" sinks(%s : {ts})" if sinks else ""
    return func_ir(args, attention("%o", "%q", "%k", "%v", tq, tk, tk, tq, attrs=pre + attrs),
                   [("%o", tq)])


def window_ir(b, sq, sk, hq, hkv, d, window):
    return variant_ir(b, sq, sk, hq, hkv, d, f" causal window({window})")


def check_diagnostic(ir, message, tmp_path):
    """posenc-opt rejects `ir` with `'posenc.attention' op <message>`."""
    path = tmp_path / "bad.mlir"
    path.write_text(ir)
    proc = subprocess.run([POSENC_OPT, str(path)], capture_output=True, text=True)
    assert proc.returncode != 0
    assert "'posenc.attention' op " + message in proc.stderr, proc.stderr


@pytest.mark.parametrize("target", TARGETS)
@pytest.mark.parametrize("b,sq,sk,hq,hkv,d,window", [
    (1, 70, 70, 4, 2, 16, 16),    # prefill, GQA
    (2, 33, 33, 2, 2, 8, 1),      # each query sees itself only
    (1, 29, 45, 4, 1, 8, 7),      # Sq != Sk (bottom-right), a prime window
    (1, 1, 300, 8, 2, 32, 64),    # decode: the last 64 keys
    (1, 20, 20, 2, 2, 8, 100),    # a window wider than the sequence: causal
])
def test_sliding_window_matches_reference(target, b, sq, sk, hq, hkv, d, window):
    rng = np.random.default_rng(sq * 1000 + sk + window)
    q = rng.uniform(-1, 1, (b, sq, hq, d)).astype(np.float32)
    k = rng.uniform(-1, 1, (b, sk, hkv, d)).astype(np.float32)
    v = rng.uniform(-1, 1, (b, sk, hkv, d)).astype(np.float32)
    (out,) = run(window_ir(b, sq, sk, hq, hkv, d, window), [q, k, v], pipeline=TARGETS[target])
    expected = ref.attention(q, k, v, causal=True, window=window)
    assert rel_err(out, expected) < 1e-5
    if window < sk:  # the window changes the answer (the test can fail)
        plain = ref.attention(q, k, v, causal=True)
        assert np.max(np.abs(expected - plain)) > 1e-3


@pytest.mark.parametrize("target", ["cpu-default", "cpu-7x13", "gpu-emulated", "gpu-emulated-split-k"])
def test_keys_outside_the_window_never_influence(target):
    # NaN in k and v of keys every row's window excludes: rows whose window
    # covers them get NaN, every other row stays finite.
    b, s, h, d, w = 1, 40, 2, 8, 5
    rng = np.random.default_rng(7)
    q, k, v = (rng.uniform(-1, 1, (b, s, h, d)).astype(np.float32) for _ in range(3))
    k[0, 3, 0, 1] = np.nan
    v[0, 10, 1, 2] = np.inf
    (out,) = run(window_ir(b, s, s, h, h, d, w), [q, k, v], pipeline=TARGETS[target])
    expected = ref.attention(q, k, v, causal=True, window=w)
    finite = np.isfinite(expected)
    assert np.array_equal(np.isfinite(out), finite)
    assert not finite.all()  # rows 3..7 of head 0 and 10..14 of head 1
    assert rel_err(out[finite], expected[finite]) < 1e-5


def test_tiles_read_only_their_band():
    # Query tiles of 16 rows with W = 32 at S = 256: each tile's keys are a
    # slice that starts at its window (max(0, i0 - 31)), not at 0.
    ir = window_ir(1, 256, 256, 2, 2, 16, 32)
    text = opt(ir, "--posenc-tile-attention=tile-rows=16 key-tile=16", "--canonicalize")
    assert "affine.max" in text and "s0 - 31" in text, text


@pytest.mark.parametrize("attrs,message", [
    (" window(4)", "window(4) needs causal"),
    (" causal window(0)", "window must be at least 1 key, got 0"),
    (" causal window(-3)", "window must be at least 1 key, got -3"),
])
def test_window_diagnostics(attrs, message, tmp_path):
    check_diagnostic(variant_ir(1, 4, 4, 1, 1, 4, attrs), message, tmp_path)


@pytest.mark.parametrize("target", TARGETS)
@pytest.mark.parametrize("attrs,kw", [
    (" softcap(5.0) causal", dict(softcap=5.0, causal=True)),
    (" softcap(2.5) causal window(6)", dict(softcap=2.5, causal=True, window=6)),
    (" softcap(50.0)", dict(softcap=50.0)),
])
def test_softcap_matches_reference(target, attrs, kw):
    # Gemma 2's logit soft-capping: c·tanh(s / c) of the scaled product. q
    # and k are large so that the cap changes the scores (the test fails
    # when it is ignored).
    b, sq, sk, h, d = 1, 37, 37, 2, 16
    rng = np.random.default_rng(3)
    q, k, v = (rng.uniform(-3, 3, (b, s, h, d)).astype(np.float32) for s in (sq, sk, sk))
    (out,) = run(variant_ir(b, sq, sk, h, h, d, attrs), [q, k, v], pipeline=TARGETS[target])
    expected = ref.attention(q, k, v, **kw)
    assert rel_err(out, expected) < 1e-5
    uncapped = ref.attention(q, k, v, **{n: x for n, x in kw.items() if n != "softcap"})
    assert np.max(np.abs(expected - uncapped)) > 1e-3


@pytest.mark.parametrize("cap", ["0.0", "-1.0", "0x7FF0000000000000"])
def test_softcap_diagnostics(cap, tmp_path):
    check_diagnostic(variant_ir(1, 4, 4, 1, 1, 4, f" softcap({cap})"),
                     "softcap must be a finite value > 0, got ", tmp_path)


@pytest.mark.parametrize("target", TARGETS)
@pytest.mark.parametrize("b,sq,sk,hq,hkv,d,attrs,kw", [
    (1, 45, 45, 4, 2, 16, " causal", dict(causal=True)),
    (1, 30, 30, 2, 2, 8, " causal window(4)", dict(causal=True, window=4)),
    (2, 9, 20, 2, 1, 8, "", {}),
    (1, 1, 300, 8, 2, 32, " causal", dict(causal=True)),     # decode
    (1, 1, 4500, 4, 2, 16, " causal", dict(causal=True)),    # split-K with threads
])
def test_sinks_match_reference(target, b, sq, sk, hq, hkv, d, attrs, kw):
    # gpt-oss's attention sinks: a logit per head in the denominator. One
    # head's sink is -inf (no sink), one is large (most weight goes to it).
    rng = np.random.default_rng(sq + sk)
    q = rng.uniform(-1, 1, (b, sq, hq, d)).astype(np.float32)
    k, v = (rng.uniform(-1, 1, (b, sk, hkv, d)).astype(np.float32) for _ in range(2))
    sinks = rng.uniform(-2, 2, hq).astype(np.float32)
    sinks[0], sinks[1] = -np.inf, 8.0
    (out,) = run(variant_ir(b, sq, sk, hq, hkv, d, attrs, sinks=True), [q, k, v, sinks],
                 pipeline=TARGETS[target])
    expected = ref.attention(q, k, v, sinks=sinks, **kw)
    assert rel_err(out, expected) < 1e-5
    plain = ref.attention(q, k, v, **kw)
    assert np.max(np.abs(expected - plain)) > 1e-3
    assert np.array_equal(expected[:, :, 0], plain[:, :, 0])  # a -inf sink is none


@pytest.mark.parametrize("sinks_type,message", [
    ("tensor<4xf32>", "sinks has 4 logits but q has 2 heads"),
    ("tensor<2x1xf32>", "sinks must be [Hq] f32 (one logit per query head, in the compute type: f32, or f64 for f64 q), got"),
    ("tensor<2xf16>", "sinks must be [Hq] f32"),
])
def test_sinks_diagnostics(sinks_type, message, tmp_path):
    t = tensor_type((1, 4, 2, 4), "f32")
    ir = func_ir([("q", t), ("s", sinks_type)],
                 attention("%o", "%q", "%q", "%q", t, t, t, t,
                           attrs=f" sinks(%s : {sinks_type})"), [("%o", t)])
    check_diagnostic(ir, message, tmp_path)


@pytest.mark.parametrize("target", TARGETS)
@pytest.mark.parametrize("b,sq,sk,hq,hkv,d,attrs,kw", [
    (1, 70, 70, 4, 2, 16, " causal chunk(16)", dict(chunk=16)),     # Llama 4: chunks
    (1, 29, 45, 2, 1, 8, " causal chunk(7)", dict(chunk=7)),        # Sq != Sk, prime
    (1, 1, 300, 8, 2, 32, " causal chunk(128)", dict(chunk=128)),   # decode: 300 mod 128
    (1, 1, 4500, 4, 2, 16, " causal chunk(1000)", dict(chunk=1000)),  # split-K (threads)
    (1, 40, 40, 2, 2, 8, " causal window(6) chunk(16)", dict(window=6, chunk=16)),
    (1, 12, 12, 2, 2, 8, " causal chunk(1)", dict(chunk=1)),        # itself only
])
def test_chunked_attention_matches_reference(target, b, sq, sk, hq, hkv, d, attrs, kw):
    rng = np.random.default_rng(sq * 7 + sk)
    q = rng.uniform(-1, 1, (b, sq, hq, d)).astype(np.float32)
    k, v = (rng.uniform(-1, 1, (b, sk, hkv, d)).astype(np.float32) for _ in range(2))
    (out,) = run(variant_ir(b, sq, sk, hq, hkv, d, attrs), [q, k, v], pipeline=TARGETS[target])
    expected = ref.attention(q, k, v, causal=True, **kw)
    assert rel_err(out, expected) < 1e-5
    plain = ref.attention(q, k, v, causal=True, window=kw.get("window"))
    assert np.max(np.abs(expected - plain)) > 1e-3


def test_chunk_tiles_skip_other_chunks():
    # Query tiles of 16 rows, chunks of 64 at S = 256: each tile's keys
    # start at its chunk (i0 floordiv 64 * 64).
    text = opt(variant_ir(1, 256, 256, 2, 2, 16, " causal chunk(64)"),
               "--posenc-tile-attention=tile-rows=16 key-tile=16", "--canonicalize")
    assert "floordiv 64" in text, text


@pytest.mark.parametrize("attrs,message", [
    (" chunk(8)", "chunk(8) needs causal"),
    (" causal chunk(0)", "chunk must be at least 1 key, got 0"),
])
def test_chunk_diagnostics(attrs, message, tmp_path):
    check_diagnostic(variant_ir(1, 4, 4, 1, 1, 4, attrs), message, tmp_path)


def test_dynamic_sinks_length_checked_at_run_time():
    # sinks of dynamic length: one logit per head is checked where the op
    # runs (a short array must not be read past its end).
    tq, tk, ts = (tensor_type(s, "f32") for s in ((1, 16, 4, 8), (1, 16, 2, 8), ("?",)))
    ir = func_ir([("q", tq), ("k", tk), ("v", tk), ("s", ts)],
                 attention("%o", "%q", "%k", "%v", tq, tk, tk, tq,
                           attrs=f" sinks(%s : {ts}) causal"), [("%o", tq)])
    rng = np.random.default_rng(5)
    q = rng.uniform(-1, 1, (1, 16, 4, 8)).astype(np.float32)
    k, v = (rng.uniform(-1, 1, (1, 16, 2, 8)).astype(np.float32) for _ in range(2))
    sinks = np.array([0.5, -1.0, 2.0, -np.inf], np.float32)
    (out,) = run(ir, [q, k, v, sinks])
    assert rel_err(out, ref.attention(q, k, v, causal=True, sinks=sinks)) < 1e-5
    for bad in (sinks[:2], np.concatenate([sinks, sinks])):
        with pytest.raises(RunError) as info:
            run(ir, [q, k, v, bad])
        assert "number of heads of sinks must equal number of heads of q (4)" in \
            info.value.stderr

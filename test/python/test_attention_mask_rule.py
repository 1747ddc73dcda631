"""The mask rule of posenc.attention, on every target and tile shape.

A masked key (causal, bias = -inf, score_mod returning -inf) never
influences its row, even when its k or v holds NaN or Inf; an unmasked NaN
or Inf reaches exactly the rows that see it; a row that sees no key is 0.
The answer is the float64 reference's for every tile shape (1x1, primes,
tiles larger than the sequence), on the CPU pipeline, the whole-tensor
form and the emulated GPU kernel.
"""

import numpy as np
import pytest

from harness import attention, func_ir, rel_err, run, tensor_type
from posenc import reference as ref

B, SQ, SK, H, D = 1, 23, 17, 6, 8


def cpu(tile_q, tile_k):
    return f"posenc-lower-to-cpu{{attention-tile-q={tile_q} attention-tile-k={tile_k}}}"


def gpu(options):
    return ("func.func(convert-posenc-attention-to-gpu{emulate=true " + options
            + "}),posenc-lower-to-cpu")


TARGETS = {
    "cpu-1x1": cpu(1, 1),
    "cpu-3x5": cpu(3, 5),
    "cpu-7x13": cpu(7, 13),
    "cpu-default": "posenc-lower-to-cpu",
    "cpu-larger-than-s": cpu(256, 512),
    "whole-tensor": "convert-posenc-to-linalg{materialize-attention=true},posenc-lower-to-cpu",
    "gpu-emulated": gpu(""),
    "gpu-emulated-4x32": gpu("tile-q=4 tile-k=32 threads=32"),
    # Split-K over 3 key tiles of 8: 3 chunks of one tile; 7 chunks, four
    # of them without keys (their partial state (0, -inf, 0) merges away).
    "gpu-emulated-split-3": gpu("tile-q=4 tile-k=8 threads=32 split-k=3"),
    "gpu-emulated-split-7": gpu("tile-q=4 tile-k=8 threads=32 split-k=7"),
}

# score_mod: a sliding window of 5 keys, a constant defined in the region.
WINDOW = """    %c5 = arith.constant 5 : index
    %ninf = arith.constant 0xFF800000 : f32
    %lo = arith.addi %j, %c5 : index
    %out = arith.cmpi ule, %lo, %i : index
    %r = arith.select %out, %ninf, %s : f32
    posenc.yield %r : f32"""


def case(kind, rng, qk=lambda x: x):
    """IR, inputs and the float64 reference for one way of masking, with
    NaN and Inf stored in k and v of several heads; `qk` maps q and k
    before anything else."""
    sq = SQ if kind == "causal" else SK
    q = qk(rng.uniform(-1, 1, (B, sq, H, D)).astype(np.float32))
    k = qk(rng.uniform(-1, 1, (B, SK, H, D)).astype(np.float32))
    v = rng.uniform(-1, 1, (B, SK, H, D)).astype(np.float32)
    # Head 0: NaN in v of the last key (masked for all but the last rows
    # when causal); head 1: Inf in k of key 10; head 2: NaN in k of key 3;
    # head 3: Inf in v of key 12; heads 4 and 5 clean.
    v[0, SK - 1, 0, 2] = np.nan
    k[0, 10, 1, 5] = np.inf
    k[0, 3, 2, 0] = np.nan
    v[0, 12, 3, 7] = np.inf
    qt, kt, vt = (tensor_type(x.shape, "f32") for x in (q, k, v))
    rt = tensor_type((B, sq, H, D), "f32")
    args, inputs = [("q", qt), ("k", kt), ("v", vt)], [q, k, v]
    attrs, tail, expected_kw = "", "", {}
    if kind == "causal":
        # Sq > Sk: the first Sq - Sk rows see no key.
        attrs, expected_kw = " causal", {"causal": True}
    elif kind == "bias":
        bias = np.where(rng.uniform(size=(H, sq, SK)) < 0.4, -np.inf,
                        rng.uniform(-1, 1, (H, sq, SK))).astype(np.float32)
        bias[:, 4, :] = -np.inf  # a row that sees no key
        bias[0, :, SK - 1] = -np.inf  # the NaN value of head 0 is masked
        bias[2, :-3, 3] = -np.inf  # the NaN key of head 2, for most rows
        bt = tensor_type(bias.shape, "f32")
        args.append(("m", bt))
        inputs.append(bias)
        attrs, expected_kw = f" bias(%m : {bt})", {"bias": bias}
    else:
        tail = (" score_mod {\n  ^bb0(%s: f32, %b: index, %h: index, %i: index, %j: index):\n"
                + WINDOW + "\n  }")
        expected_kw = {"score_mod": lambda s, b, h, i, j: np.where(j + 5 <= i, -np.inf, s)}
    body = attention("%o", "%q", "%k", "%v", qt, kt, vt, rt, attrs=attrs, tail=tail)
    expected = ref.attention(*(x.astype(np.float64) for x in (q, k, v)), **expected_kw)
    return func_ir(args, body, [("%o", rt)]), inputs, expected


@pytest.mark.parametrize("target", TARGETS)
@pytest.mark.parametrize("kind", ["causal", "bias", "score_mod"])
def test_mask_rule(kind, target):
    rng = np.random.default_rng(["causal", "bias", "score_mod"].index(kind))
    ir, inputs, expected = case(kind, rng)
    # The inputs must exercise the rule: some rows NaN or Inf, some finite,
    # some exactly 0 (no key seen) where the masking allows it.
    assert (~np.isfinite(expected)).any() and np.isfinite(expected).any()
    (out,) = run(ir, inputs, pipeline=TARGETS[target])
    assert rel_err(out, expected) < 1e-5


@pytest.mark.parametrize("options", ["", "tile-q=16 tile-k=8 threads=32 split-k=3"])
@pytest.mark.parametrize("kind", ["causal", "bias", "score_mod"])
def test_mask_rule_tensor_cores(kind, options):
    """precision=tf32 (Q·Kᵀ and P·V on mma.sync): q and k made exact in
    tf32 first; the weights are read as tf32 (errors near 2^-11). NaN and
    Inf in masked keys' k reach the mma and must still not reach their
    rows; V tiles holding NaN or Inf take the FMA path."""
    rng = np.random.default_rng(["causal", "bias", "score_mod"].index(kind))
    tf32 = lambda x: (x.view(np.uint32) & np.uint32(0xFFFFE000)).view(np.float32)  # noqa: E731
    ir, inputs, expected = case(kind, rng, qk=tf32)
    assert (~np.isfinite(expected)).any() and np.isfinite(expected).any()
    (out,) = run(ir, inputs, pipeline=gpu(f"precision=tf32 {options}".strip()))
    assert rel_err(out, expected) < 2e-3


def test_reference_mask_rule_by_hand():
    # The docstring's case: q = k = [1, 1], v = [1, NaN], causal: query 0
    # sees key 0 only, query 1 sees both.
    q = np.ones((1, 2, 1, 1))
    v = np.array([1.0, np.nan]).reshape(1, 2, 1, 1)
    out = ref.attention(q, q, v, causal=True)
    assert out[0, 0, 0, 0] == 1.0 and np.isnan(out[0, 1, 0, 0])


@pytest.mark.parametrize("target", ["cpu-1x1", "cpu-default", "whole-tensor", "gpu-emulated"])
def test_issue_case_first_nan_row(target):
    # S = 64, causal, NaN in v[40]: exactly rows 40.. are NaN on every target.
    rng = np.random.default_rng(64)
    s = 64
    q, k, v = (rng.uniform(-1, 1, (1, s, 1, 4)).astype(np.float32) for _ in range(3))
    v[0, 40, 0, 0] = np.nan
    t = tensor_type((1, s, 1, 4), "f32")
    ir = func_ir([("q", t), ("k", t), ("v", t)],
                 attention("%o", "%q", "%k", "%v", t, t, t, t, attrs=" causal"), [("%o", t)])
    (out,) = run(ir, [q, k, v], pipeline=TARGETS[target])
    nan_rows = np.nonzero(np.isnan(out[0, :, 0, 0]))[0]
    assert list(nan_rows) == list(range(40, s))


@pytest.mark.parametrize("target", ["cpu-default", "cpu-3x5", "whole-tensor", "gpu-emulated"])
@pytest.mark.parametrize("yield_outer", [False, True])
def test_score_mod_uses_values_from_above(target, yield_outer):
    # score_mod may use a value defined outside it, and even yield one
    # (every score equal: the mean of the visible values).
    rng = np.random.default_rng(5)
    q, k, v = (rng.uniform(-1, 1, (1, 9, 2, 4)).astype(np.float32) for _ in range(3))
    t = tensor_type((1, 9, 2, 4), "f32")
    inner = "posenc.yield %w : f32" if yield_outer else \
        "%r = arith.addf %s, %w : f32\n    posenc.yield %r : f32"
    ir = func_ir([("q", t), ("k", t), ("v", t)], [
        "%w = arith.constant 0.75 : f32",
        *attention("%o", "%q", "%k", "%v", t, t, t, t, attrs=" causal",
                   tail=" score_mod {\n"
                   "  ^bb0(%s: f32, %b: index, %h: index, %i: index, %j: index):\n    "
                   + inner + "\n  }")], [("%o", t)])
    mod = (lambda s, b, h, i, j: np.full(np.broadcast(s, j).shape, 0.75)) if yield_outer \
        else (lambda s, b, h, i, j: s + 0.75)
    expected = ref.attention(*(x.astype(np.float64) for x in (q, k, v)), causal=True,
                             score_mod=mod)
    (out,) = run(ir, [q, k, v], pipeline=TARGETS[target])
    assert rel_err(out, expected) < 1e-5

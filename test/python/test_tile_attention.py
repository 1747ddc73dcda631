"""posenc.attention tiled through upstream's transform dialect (its
TilingInterface), optionally decomposed (AggregatedOpInterface), then
lowered for the CPU and compared with the float64 reference: GQA head
tiles, causal with Sq != Sk, a score_mod that reads global indices,
broadcast biases, value-dim tiles, scf.for and scf.forall."""

import os
import tempfile

import numpy as np
import pytest

from harness import attention, func_ir, opt, rel_err, run, tensor_type
from posenc import reference as ref

SCORE_MOD = """ score_mod {
  ^bb0(%s: f32, %b: index, %h: index, %i: index, %j: index):
    %hi = arith.index_cast %h : index to i32
    %ii = arith.index_cast %i : index to i32
    %ji = arith.index_cast %j : index to i32
    %bi = arith.index_cast %b : index to i32
    %t0 = arith.muli %hi, %ii : i32
    %t1 = arith.subi %t0, %ji : i32
    %t2 = arith.addi %t1, %bi : i32
    %tf = arith.sitofp %t2 : i32 to f32
    %c = arith.constant 0.03 : f32
    %u = arith.mulf %tf, %c : f32
    %r = arith.addf %s, %u : f32
    posenc.yield %r : f32
  }"""


def score_mod_ref(s, b, h, i, j):
    return s + 0.03 * (h * i - j + b)


def transform(tile_sizes, forall=False, decompose=False, key_tile=0):
    sizes = ", ".join(map(str, tile_sizes))
    loops = sum(1 for t in tile_sizes if t)
    if forall:
        tile = (f"%t, %l = transform.structured.tile_using_forall %a tile_sizes [{sizes}] : "
                "(!transform.any_op) -> (!transform.any_op, !transform.any_op)")
    else:
        outs = ", ".join(["!transform.any_op"] * (loops + 1))
        handles = "%t" + (f", %l:{loops}" if loops > 1 else ", %l")
        tile = (f"{handles} = transform.structured.tile_using_for %a tile_sizes [{sizes}] : "
                f"(!transform.any_op) -> ({outs})")
    dec = ("\n    %d = transform.structured.decompose_interface %t : "
           "(!transform.any_op) -> !transform.any_op") if decompose else ""
    if key_tile:
        # The FlashAttention loop: online_attention tiled along keys.
        dec += ("\n    %o = transform.structured.match ops{[\"posenc.online_attention\"]} "
                "in %root : (!transform.any_op) -> !transform.any_op"
                "\n    %t2, %l2 = transform.structured.tile_using_for %o tile_sizes "
                f"[0, 0, 0, {key_tile}, 0, 0] : "
                "(!transform.any_op) -> (!transform.any_op, !transform.any_op)")
    return ("module attributes {transform.with_named_sequence} {\n"
            "  transform.named_sequence @__transform_main(%root: !transform.any_op "
            "{transform.readonly}) {\n"
            "    %a = transform.structured.match ops{[\"posenc.attention\"]} in %root : "
            "(!transform.any_op) -> !transform.any_op\n"
            f"    {tile}{dec}\n    transform.yield\n  }}\n}}\n")


def run_schedule(ir, inputs, schedule):
    """(the IR after the transform schedule, the result of running it)."""
    with tempfile.TemporaryDirectory() as tmp:
        lib = os.path.join(tmp, "schedule.mlir")
        with open(lib, "w") as f:
            f.write(schedule)
        tiling = (f"transform-preload-library{{transform-library-paths={lib}}},"
                  "transform-interpreter")
        tiled = opt(ir, f"--pass-pipeline=builtin.module({tiling})")
        return tiled, run(ir, inputs, pipeline=tiling + ",posenc-lower-to-cpu")


def run_tiled(ir, inputs, schedule, decompose, key_tile=0):
    tiled, out = run_schedule(ir, inputs, schedule)
    # The schedule did run: loops, and tiles or their decomposition.
    assert "scf.for" in tiled
    assert ("posenc.attention" in tiled) != decompose
    if key_tile:
        assert tiled.count("scf.for") >= 2 and "posenc.online_attention" in tiled
    return out


def problem(rng, causal, bias_shape, poison_masked=False):
    """GQA attention (B = 2, Sq = 11, Sk = 13, Hq = 8, Hkv = 2, Dk = 16,
    Dv = 9) with SCORE_MOD and an optional bias: IR, inputs and the float64
    reference. With `poison_masked`, keys that every row masks (the last one
    when causal, key 2 by a -inf bias column) hold NaN in v or Inf in k."""
    b, sq, sk, hq, hkv, dk, dv = 2, 11, 13, 8, 2, 16, 9
    q = rng.uniform(-1, 1, (b, sq, hq, dk)).astype(np.float32)
    k = rng.uniform(-1, 1, (b, sk, hkv, dk)).astype(np.float32)
    v = rng.uniform(-1, 1, (b, sk, hkv, dv)).astype(np.float32)
    if poison_masked and causal:
        v[:, sk - 1] = np.nan  # seen by the last query only
    types = [tensor_type(x.shape, "f32") for x in (q, k, v)]
    args = [("q", types[0]), ("k", types[1]), ("v", types[2])]
    inputs, kw, attrs = [q, k, v], {"causal": causal, "score_mod": score_mod_ref}, ""
    if bias_shape:
        bias = rng.uniform(-1, 1, bias_shape).astype(np.float32)
        if poison_masked:
            bias[..., 2] = -np.inf
            k[:, 2] = np.inf
        bt = tensor_type(bias_shape, "f32")
        args.append(("m", bt))
        inputs.append(bias)
        kw["bias"] = bias
        attrs = f" bias(%m : {bt})"
    rt = tensor_type((b, sq, hq, dv), "f32")
    body = attention("%o", "%q", "%k", "%v", *types, rt,
                     attrs=attrs + (" causal" if causal else ""), tail=SCORE_MOD)
    expected = ref.attention(*(x.astype(np.float64) for x in (q, k, v)), **kw)
    return func_ir(args, body, [("%o", rt)]), inputs, expected


@pytest.mark.parametrize("tiles,forall,decompose", [
    ((1, 1, 1, 0, 0, 0), False, False),   # one (b, h, i) per tile, inside a GQA group
    ((1, 2, 5, 0, 0, 0), False, True),    # head tile divides the group; prime query tile
    ((2, 8, 7, 0, 0, 3), False, False),   # two kv heads per tile; value-dim tiles
    ((0, 4, 3, 0, 0, 0), True, True),     # scf.forall, one group per tile
    ((1, 0, 64, 0, 0, 0), False, False),  # tile larger than Sq
])
@pytest.mark.parametrize("causal,bias_shape", [
    (True, None), (False, (8, 1, 13)), (True, (2, 1, 11, 13))])
def test_tiled_attention_vs_reference(tiles, forall, decompose, causal, bias_shape):
    rng = np.random.default_rng(hash((tiles, causal, bias_shape)) % 2**32)
    ir, inputs, expected = problem(rng, causal, bias_shape)
    (out,) = run_tiled(ir, inputs, transform(tiles, forall, decompose), decompose)
    assert rel_err(out, expected) < 1e-5


@pytest.mark.parametrize("tiles,key_tile", [
    ((1, 1, 1, 0, 0, 0), 1),      # 1x1 tiles
    ((1, 4, 3, 0, 0, 0), 5),      # a GQA group, primes
    ((0, 2, 4, 0, 0, 0), 64),     # key tile larger than Sk
    ((2, 8, 11, 0, 0, 0), 4),     # whole op per query tile, 4-key blocks
])
@pytest.mark.parametrize("causal,bias_shape", [
    (True, None), (False, (2, 8, 11, 13)), (True, (1, 13))])
def test_flash_loop_derived_from_online_attention(tiles, key_tile, causal, bias_shape):
    """attention tiled, decomposed into online_attention, whose keys are
    tiled: the flash loop, derived through upstream tiling only."""
    rng = np.random.default_rng(hash((tiles, key_tile, causal, bias_shape)) % 2**32)
    # Masked keys hold NaN and Inf: the mask rule through the derived loop.
    ir, inputs, expected = problem(rng, causal, bias_shape, poison_masked=True)
    (out,) = run_tiled(ir, inputs, transform(tiles, decompose=True, key_tile=key_tile),
                       True, key_tile)
    assert rel_err(out, expected) < 1e-5


def split_k_schedule(chunks):
    handles = ", ".join(["!transform.any_op"] * 10)
    return ("module attributes {transform.with_named_sequence} {\n"
            "  transform.named_sequence @__transform_main(%root: !transform.any_op "
            "{transform.readonly}) {\n"
            "    %a = transform.structured.match ops{[\"posenc.attention\"]} in %root : "
            "(!transform.any_op) -> !transform.any_op\n"
            "    %d = transform.structured.decompose_interface %a : "
            "(!transform.any_op) -> !transform.any_op\n"
            "    %o = transform.structured.match ops{[\"posenc.online_attention\"]} in %root : "
            "(!transform.any_op) -> !transform.any_op\n"
            "    %r:10 = transform.structured.tile_reduction_using_forall %o reduction_dims = [3] "
            f"by num_threads = [0, 0, 0, {chunks}, 0, 0] : (!transform.any_op) -> ({handles})\n"
            "    transform.yield\n  }\n}\n")


@pytest.mark.parametrize("chunks", [1, 2, 3, 7])
@pytest.mark.parametrize("sq,causal,masking", [
    (1, True, None),            # decode
    (1, False, "bias"),         # decode, -inf bias over a whole chunk of keys
    (9, True, "score_mod"),     # short prefill: chunks above the diagonal
])
def test_split_k(chunks, sq, causal, masking):
    """Flash-decoding through upstream's tile_reduction_using_forall and
    online_attention's PartialReductionOpInterface: partial states per key
    chunk, merged with the rescale to the common max."""
    rng = np.random.default_rng(chunks * 100 + sq)
    b, sk, hq, hkv, d = 1, 29, 8, 2, 16
    q = rng.uniform(-1, 1, (b, sq, hq, d)).astype(np.float32)
    k = rng.uniform(-1, 1, (b, sk, hkv, d)).astype(np.float32)
    v = rng.uniform(-1, 1, (b, sk, hkv, d)).astype(np.float32)
    types = [tensor_type(x.shape, "f32") for x in (q, k, v)]
    args = [("q", types[0]), ("k", types[1]), ("v", types[2])]
    inputs, kw, attrs, tail = [q, k, v], {"causal": causal}, "", ""
    if masking == "bias":
        bias = rng.uniform(-1, 1, (sk,)).astype(np.float32)
        bias[5:17] = -np.inf          # whole chunks see nothing
        v[0, 9, :, :] = np.nan        # ... and their NaN stays out
        bt = tensor_type(bias.shape, "f32")
        args.append(("m", bt))
        inputs.append(bias)
        kw["bias"] = bias
        attrs = f" bias(%m : {bt})"
    elif masking == "score_mod":
        tail, kw["score_mod"] = SCORE_MOD, score_mod_ref
    rt = tensor_type((b, sq, hq, d), "f32")
    body = attention("%o", "%q", "%k", "%v", *types, rt,
                     attrs=attrs + (" causal" if causal else ""), tail=tail)
    ir = func_ir(args, body, [("%o", rt)])
    with tempfile.TemporaryDirectory() as tmp:
        lib = os.path.join(tmp, "schedule.mlir")
        with open(lib, "w") as f:
            f.write(split_k_schedule(chunks))
        tiling = (f"transform-preload-library{{transform-library-paths={lib}}},"
                  "transform-interpreter")
        assert "scf.forall" in opt(ir, f"--pass-pipeline=builtin.module({tiling})")
        (out,) = run(ir, inputs, pipeline=tiling + ",posenc-lower-to-cpu")
    expected = ref.attention(*(x.astype(np.float64) for x in (q, k, v)), **kw)
    assert rel_err(out, expected) < 1e-5

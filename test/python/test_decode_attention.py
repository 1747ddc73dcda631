"""Decode through posenc-lower-to-cpu: attention with a few queries takes
the loop over key blocks that posenc-tile-attention derives from the ops'
interfaces (tiling, online_attention, decomposition). Checked against the
float64 reference for GQA/MQA, f32 and bf16 K/V, causal with Sq != Sk,
fused biases, score_mod, dynamic cache lengths, key blocks that do not
divide the cache, and against the prefill tiling (attention-decode-queries=0,
with 64 keys per block so that its blocks differ from decode's) on the same
inputs."""

import numpy as np
import pytest

from harness import attention, from_bf16, func_ir, rel_err, run, tensor_type, to_bf16
from posenc import reference as ref
from test_fused_attention import build


def decode(tile=256):
    return f"posenc-lower-to-cpu{{attention-decode-key-tile={tile}}}"


@pytest.mark.parametrize("sq,sk,hq,hkv,d,tile", [
    (1, 300, 32, 8, 64, 256),   # GQA, a partial last key block
    (1, 77, 8, 1, 32, 16),      # MQA
    (4, 129, 4, 4, 16, 7),      # a few queries, causal bottom-right
    (3, 3, 2, 2, 8, 1),         # one key per block
])
@pytest.mark.parametrize("elem", ["f32", "bf16"])
def test_decode_vs_reference(sq, sk, hq, hkv, d, tile, elem):
    rng = np.random.default_rng(sq * 1000 + sk + hq)
    q = rng.uniform(-1, 1, (1, sq, hq, d))
    k = rng.uniform(-1, 1, (1, sk, hkv, d))
    v = rng.uniform(-1, 1, (1, sk, hkv, d))
    if elem == "bf16":
        q, k, v = (to_bf16(x) for x in (q, k, v))
        q64, k64, v64 = (from_bf16(x).astype(np.float64) for x in (q, k, v))
    else:
        q, k, v = (x.astype(np.float32) for x in (q, k, v))
        q64, k64, v64 = (x.astype(np.float64) for x in (q, k, v))
    types = [tensor_type(x.shape, elem) for x in (q, k, v)]
    rt = tensor_type((1, sq, hq, d), elem)
    ir = func_ir([("q", types[0]), ("k", types[1]), ("v", types[2])],
                 attention("%o", "%q", "%k", "%v", *types, rt, attrs=" causal"),
                 [("%o", rt)])
    (out,) = run(ir, [q, k, v], pipeline=decode(tile))
    expected = ref.attention(q64, k64, v64, causal=True)
    out = from_bf16(out) if elem == "bf16" else out
    assert rel_err(out, expected) < (1e-2 if elem == "bf16" else 1e-5)
    # The same answer as the prefill tiling, to rounding.
    (prefill,) = run(ir, [q, k, v], pipeline="posenc-lower-to-cpu{attention-decode-queries=0 attention-tile-k=64}")
    prefill = from_bf16(prefill) if elem == "bf16" else prefill
    assert rel_err(out, prefill) < (1e-2 if elem == "bf16" else 1e-5)


@pytest.mark.parametrize("kind", ["alibi", "t5", "shaw"])
def test_decode_fused_biases(kind):
    rng = np.random.default_rng(11)
    ir, inputs, expected = build(kind, 1, 1, 200, 8, 2, 32, True, "f32", rng)
    (out,) = run(ir, inputs, pipeline=decode(64))
    assert rel_err(out, expected) < 1e-5


def test_decode_dynamic_cache_and_nan_outside_window():
    # A dynamic cache length, and a score_mod window: NaN in a value
    # outside the window never reaches the query.
    rng = np.random.default_rng(5)
    sk, h, d = 150, 4, 16
    q = rng.uniform(-1, 1, (1, 1, h, d)).astype(np.float32)
    k = rng.uniform(-1, 1, (1, sk, h, d)).astype(np.float32)
    v = rng.uniform(-1, 1, (1, sk, h, d)).astype(np.float32)
    v[0, 3] = np.nan
    qt, kt = tensor_type(q.shape, "f32"), tensor_type((1, None, h, d), "f32")
    body = attention("%o", "%q", "%k", "%v", qt, kt, kt, qt, attrs=" causal",
                     tail=" score_mod {\n"
            "  ^bb0(%s: f32, %b: index, %hh: index, %i: index, %j: index):\n"
            "    %c100 = arith.constant 100 : index\n"
            "    %ninf = arith.constant 0xFF800000 : f32\n"
            "    %far = arith.cmpi ult, %j, %c100 : index\n"
            "    %r = arith.select %far, %ninf, %s : f32\n"
            "    posenc.yield %r : f32\n  }")
    ir = func_ir([("q", qt), ("k", kt), ("v", kt)], body, [("%o", qt)])
    (out,) = run(ir, [q, k, v], pipeline=decode(32))
    expected = ref.attention(q.astype(np.float64), k.astype(np.float64), v.astype(np.float64),
                             causal=True,
                             score_mod=lambda s, b, hh, i, j: np.where(j < 100, -np.inf, s))
    assert np.isfinite(out).all()
    assert rel_err(out, expected) < 1e-5


@pytest.mark.parametrize("b,sk", [(0, 0), (0, 5), (1, 0)])
def test_decode_empty_dims(b, sk):
    # An empty batch or cache: an empty result, or 0 for rows that see no key.
    q = np.ones((b, 1, 2, 8), np.float32)
    k = np.ones((b, sk, 2, 8), np.float32)
    qt, kt = tensor_type(q.shape, "f32"), tensor_type(k.shape, "f32")
    ir = func_ir([("q", qt), ("k", kt)],
                 attention("%o", "%q", "%k", "%k", qt, kt, kt, qt, attrs=" causal"),
                 [("%o", qt)])
    (out,) = run(ir, [q, k], pipeline=decode())
    assert out.shape == q.shape and not out.any()


# (rope attributes, reference keyword arguments): plain, partial
# interleaved, YaRN (an attention factor), longrope with equal tables (no
# choice to make) and dynamic NTK (reads the largest position, so its keys
# stay whole outside the key loop).
LATENT_ROPES = [
    ("", {}),
    (" {base = 500000.0 : f64, rotary_dim = 8 : i64}", {"base": 5e5, "rotary_dim": 8,
                                                         "layout": "interleaved"}),
    (" {scaling = #posenc.rope_scaling<yarn, factor = 4.0, original = 32>}",
     {"scaling": {"kind": "yarn", "factor": 4.0, "original": 32}}),
    (" {scaling = #posenc.rope_scaling<longrope, short_factor = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0, "
     "7.0, 8.0], long_factor = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0], original = 32, "
     "max_positions = 64>}",
     {"scaling": {"kind": "longrope", "short_factor": [1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0],
                  "long_factor": [1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0], "original": 32,
                  "max_positions": 64}}),
    (" {scaling = #posenc.rope_scaling<dynamic, factor = 2.0, original = 32>}",
     {"scaling": {"kind": "dynamic", "factor": 2.0, "original": 32}}),
]


@pytest.mark.parametrize("rope_attrs,rope_kw", LATENT_ROPES,
                         ids=["plain", "interleaved", "yarn", "longrope", "dynamic"])
@pytest.mark.parametrize("n,pipeline", [
    (77, decode(16)),                                # one thread, 5 key blocks
    (2100, "posenc-lower-to-cpu{num-threads=2}"),    # split-K: 2 chunks of 2048
])
def test_decode_latent_cache(rope_attrs, rope_kw, n, pipeline):
    """Decode over a low-rank latent cache c [n, R] (posenc-compress-kv's
    rotary form: k = rope(c·B_k), v = c·B_v): the pipeline rebuilds and
    rotates the keys block by block inside the key loop. Against float64."""
    rng = np.random.default_rng(n)
    hq, hkv, d, r = 4, 2, 16, 6
    kv = hkv * d
    q = rng.uniform(-1, 1, (1, 1, hq, d)).astype(np.float32)
    c = rng.uniform(-1, 1, (n, r)).astype(np.float32)
    bk, bv = (rng.uniform(-1, 1, (r, kv)).astype(np.float32) for _ in range(2))
    qt, kt = tensor_type((1, 1, hq, d), "f32"), f"tensor<1x?x{hkv}x{d}xf32>"
    body = [
        "%c0 = arith.constant 0 : index",
        "%zero = arith.constant 0.0 : f32",
        f"%n = tensor.dim %c, %c0 : tensor<?x{r}xf32>",
        f"%e = tensor.empty(%n) : tensor<?x{kv}xf32>",
        f"%z = linalg.fill ins(%zero : f32) outs(%e : tensor<?x{kv}xf32>) -> tensor<?x{kv}xf32>",
    ]
    for name, b in (("k", "%bk"), ("v", "%bv")):
        body += [
            f"%{name}f = linalg.matmul ins(%c, {b} : tensor<?x{r}xf32>, tensor<{r}x{kv}xf32>) "
            f"outs(%z : tensor<?x{kv}xf32>) -> tensor<?x{kv}xf32>",
            f"%{name} = tensor.expand_shape %{name}f [[0, 1], [2, 3]] output_shape "
            f"[1, %n, {hkv}, {d}] : tensor<?x{kv}xf32> into {kt}"]
    layout = rope_kw.get("layout", "half")
    body += [
        "%pe = tensor.empty(%n) : tensor<?xi64>",
        "%pos = linalg.generic {indexing_maps = [affine_map<(s) -> (s)>], iterator_types = "
        "[\"parallel\"]} outs(%pe : tensor<?xi64>) {",
        "^bb0(%o: i64):",
        "  %i = linalg.index 0 : index",
        "  %p = arith.index_cast %i : index to i64",
        "  linalg.yield %p : i64",
        "} -> tensor<?xi64>",
        f"%kr = posenc.rope %k, %pos layout {layout}{rope_attrs} : {kt}, tensor<?xi64>",
    ] + attention("%o", "%q", "%kr", "%v", qt, kt, kt, qt, attrs=" causal")
    ir = func_ir([("q", qt), ("c", f"tensor<?x{r}xf32>"), ("bk", f"tensor<{r}x{kv}xf32>"),
                  ("bv", f"tensor<{r}x{kv}xf32>")], body, [("%o", qt)])
    (out,) = run(ir, [q, c, bk, bv], pipeline=pipeline)
    c64 = c.astype(np.float64)
    k64 = (c64 @ bk.astype(np.float64)).reshape(1, n, hkv, d)
    v64 = (c64 @ bv.astype(np.float64)).reshape(1, n, hkv, d)
    kw = dict(rope_kw, layout=layout)
    k64 = ref.rope(k64, np.arange(n), **kw)
    expected = ref.attention(q.astype(np.float64), k64, v64, causal=True)
    assert rel_err(out, expected) < 1e-5

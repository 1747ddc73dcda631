"""posenc-vectorize-matmul: register-blocked f32 matmuls on buffers agree
with float64 on exact fits, every kind of edge (rows, one-vector columns,
scalar columns) and dynamic sizes, for the default block shape and others;
the tiled attention built on them agrees with the scalar-loop lowering."""

import numpy as np
import pytest

from harness import RunError, attention, from_bf16, func_ir, rel_err, run, tensor_type, to_bf16
from posenc import reference as ref

# Bufferize first, so the pass (which works on buffers) can be run with
# non-default block shapes ahead of the rest of the pipeline.
BUFFERIZE = ("one-shot-bufferize{bufferize-function-boundaries "
             "function-boundary-type-conversion=identity-layout-map}")


def matmul_ir(m, k, n, dynamic=False):
    dims = (("?", "?"), ("?", "?"), ("?", "?")) if dynamic else ((m, k), (k, n), (m, n))
    ta, tb, tc = (tensor_type(d, "f32") for d in dims)
    body = [f"%r = linalg.matmul ins(%a, %b : {ta}, {tb}) outs(%c : {tc}) -> {tc}"]
    return func_ir([("a", ta), ("b", tb), ("c", tc)], body, [("%r", tc)])


# (4, 37, 136), (2, 9, 40), (1, 3, 128): few rows of C, wide blocks.
SHAPES = [(1, 1, 1), (4, 5, 16), (8, 5, 32), (7, 5, 27), (33, 64, 70), (32, 64, 64), (3, 0, 9),
          (4, 37, 136), (2, 9, 40), (1, 3, 128)]


@pytest.mark.parametrize("m,k,n", SHAPES)
@pytest.mark.parametrize("dynamic", [False, True])
def test_matmul(rng, m, k, n, dynamic):
    a, b, c = (rng.uniform(-1, 1, s).astype(np.float32) for s in ((m, k), (k, n), (m, n)))
    (r,) = run(matmul_ir(m, k, n, dynamic), [a, b, c])
    expected = a.astype(np.float64) @ b.astype(np.float64) + c
    # Relative to the size of the terms, not of the sum: a·b + c may
    # cancel (a 1x1x1 case with a result of 2e-3 from terms near 0.5 gave
    # 1.07e-6 relative to the result, one f32 rounding of the terms).
    scale = np.max(np.abs(a.astype(np.float64)) @ np.abs(b.astype(np.float64)) + np.abs(c))
    assert np.max(np.abs(r - expected)) <= 1e-6 * scale
    rel_err(r, expected)  # reported in the error summary


def matmul_tb_ir(m, k, n, dynamic=False):
    """C + A·Bᵀ with B [n, k], as a projection's weights."""
    dims = (("?", "?"), ("?", "?"), ("?", "?")) if dynamic else ((m, k), (n, k), (m, n))
    ta, tb, tc = (tensor_type(d, "f32") for d in dims)
    body = [f"%r = linalg.matmul indexing_maps = [affine_map<(m, n, k) -> (m, k)>, "
            f"affine_map<(m, n, k) -> (n, k)>, affine_map<(m, n, k) -> (m, n)>] "
            f"ins(%a, %b : {ta}, {tb}) outs(%c : {tc}) -> {tc}"]
    return func_ir([("a", ta), ("b", tb), ("c", tc)], body, [("%r", tc)])


@pytest.mark.parametrize("m,k,n", SHAPES + [(1, 4096, 37), (64, 172, 64), (5, 20, 9)])
@pytest.mark.parametrize("dynamic", [False, True])
@pytest.mark.parametrize("vectorize", [True, False])
def test_matmul_transposed_b(rng, m, k, n, dynamic, vectorize):
    # The dot-product form (every block shape and edge: rows, columns, the
    # k tail) against float64, and the same IR with the pass off.
    a, b, c = (rng.uniform(-1, 1, s).astype(np.float32) for s in ((m, k), (n, k), (m, n)))
    pipeline = None if vectorize else "posenc-lower-to-cpu{vectorize-matmul=false}"
    (r,) = run(matmul_tb_ir(m, k, n, dynamic), [a, b, c], pipeline=pipeline)
    expected = a.astype(np.float64) @ b.astype(np.float64).T + c
    scale = np.max(np.abs(a.astype(np.float64)) @ np.abs(b.astype(np.float64)).T + np.abs(c)) \
        if m * n else 1.0
    assert np.max(np.abs(r - expected), initial=0.0) <= 1e-6 * scale


@pytest.mark.parametrize("rows,vectors,width", [(1, 1, 8), (3, 3, 4), (6, 2, 8), (5, 1, 16)])
@pytest.mark.parametrize("transposed", [False, True])
def test_block_shapes(rng, rows, vectors, width, transposed):
    m, k, n = 29, 17, 53
    bshape = (n, k) if transposed else (k, n)
    a, b, c = (rng.uniform(-1, 1, s).astype(np.float32) for s in ((m, k), bshape, (m, n)))
    pipeline = (f"{BUFFERIZE}, func.func(posenc-vectorize-matmul{{rows={rows} "
                f"vectors={vectors} vector-width={width}}}), posenc-lower-to-cpu")
    ir = (matmul_tb_ir if transposed else matmul_ir)(m, k, n, dynamic=True)
    (r,) = run(ir, [a, b, c], pipeline=pipeline)
    expected = a.astype(np.float64) @ (b.T if transposed else b).astype(np.float64) + c
    assert rel_err(r, expected) <= 1e-6


@pytest.mark.parametrize("rows,vectors,width", [(4, 4, 16), (2, 1, 8), (3, 2, 4), (1, 4, 16)])
@pytest.mark.parametrize("m,k,n", [(4, 128, 256), (7, 64, 45), (1, 32, 9)])
def test_transposed_b_sums_reduced_together(rng, rows, vectors, width, m, k, n):
    # k a static multiple of the vector width: each row's dot-product
    # accumulators are summed together into one vector (shuffle tree), for
    # every block width the pass picks (2·vectors columns, then 1-column and
    # 1-row edges), against float64.
    a, b, c = (rng.uniform(-1, 1, s).astype(np.float32) for s in ((m, k), (n, k), (m, n)))
    pipeline = (f"{BUFFERIZE}, func.func(posenc-vectorize-matmul{{rows={rows} "
                f"vectors={vectors} vector-width={width}}}), posenc-lower-to-cpu")
    (r,) = run(matmul_tb_ir(m, k, n), [a, b, c], pipeline=pipeline)
    expected = a.astype(np.float64) @ b.astype(np.float64).T + c
    assert rel_err(r, expected) <= 1e-6


@pytest.mark.parametrize("sq,sk,hq,hkv,d,causal", [
    (70, 70, 4, 4, 64, True),   # prefill with tails of both tiles
    (5, 131, 8, 2, 24, False),  # decode-like, GQA, D not a multiple of 16
    (33, 40, 3, 1, 8, True),    # MQA, one vector per row
])
def test_attention_same_as_scalar_loops(rng, sq, sk, hq, hkv, d, causal):
    q = rng.uniform(-1, 1, (2, sq, hq, d)).astype(np.float32)
    k = rng.uniform(-1, 1, (2, sk, hkv, d)).astype(np.float32)
    v = rng.uniform(-1, 1, (2, sk, hkv, d)).astype(np.float32)
    tq, tk, to = (tensor_type(x.shape, "f32") for x in (q, k, q))
    body = attention("%o", "%q", "%k", "%v", tq, tk, tk, to,
                     attrs=" causal" if causal else "")
    ir = func_ir([("q", tq), ("k", tk), ("v", tk)], body, [("%o", to)])
    (vectorized,) = run(ir, [q, k, v])
    (scalar,) = run(ir, [q, k, v], pipeline="posenc-lower-to-cpu{vectorize-matmul=false}")
    expected = ref.attention(q.astype(np.float64), k.astype(np.float64), v.astype(np.float64),
                             causal=causal)
    assert rel_err(vectorized, expected) <= 1e-5
    assert rel_err(scalar, expected) <= 1e-5
    assert rel_err(vectorized, scalar) <= 1e-5


def host_has_avx512_bf16():
    try:
        with open("/proc/cpuinfo") as f:
            return "avx512_bf16" in f.read().split()
    except OSError:
        return False


def matmul_tb_bf16_ir(m, k, n, dynamic=False):
    """C + A·Bᵀ with A [m, k] and B [n, k] bf16, C f32 (decode's scores of
    bf16 queries and keys)."""
    dims = (("?", "?"), ("?", "?"), ("?", "?")) if dynamic else ((m, k), (n, k), (m, n))
    ta, tb = (tensor_type(d, "bf16") for d in dims[:2])
    tc = tensor_type(dims[2], "f32")
    body = [f"%r = linalg.matmul indexing_maps = [affine_map<(m, n, k) -> (m, k)>, "
            f"affine_map<(m, n, k) -> (n, k)>, affine_map<(m, n, k) -> (m, n)>] "
            f"ins(%a, %b : {ta}, {tb}) outs(%c : {tc}) -> {tc}"]
    return func_ir([("a", ta), ("b", tb), ("c", tc)], body, [("%r", tc)])


@pytest.mark.parametrize("m,k,n", [(4, 128, 256), (1, 40, 9), (5, 33, 17), (4, 7, 16), (3, 0, 5),
                                   (2, 96, 64)])
@pytest.mark.parametrize("dynamic", [False, True])
@pytest.mark.parametrize("dot", ["on", "off", "host"])
def test_bf16_transposed_b(rng, m, k, n, dynamic, dot):
    # bf16 A and B: vdpbf16ps pairs along k (whole steps of 32, a scalar
    # tail for the rest) or A extended once and FMAs, against float64 of
    # the same bf16 values: products are exact in f32, so only the order
    # of the f32 sums differs.
    if dot == "on" and not host_has_avx512_bf16():
        # Forced vdpbf16ps cannot execute here; on such a host
        # test_bf16_dot_on_a_host_without_it_is_an_error runs instead (each
        # host runs exactly one of the two), and "off"/"host" run everywhere.
        pytest.skip("the host has no AVX512-BF16")
    a, b = (to_bf16(rng.uniform(-1, 1, s).astype(np.float32)) for s in ((m, k), (n, k)))
    c = rng.uniform(-1, 1, (m, n)).astype(np.float32)
    pipeline = (f"{BUFFERIZE}, func.func(posenc-vectorize-matmul{{vector-width=16 "
                f"bf16-dot={dot}}}), posenc-lower-to-cpu")
    (r,) = run(matmul_tb_bf16_ir(m, k, n, dynamic), [a, b, c], pipeline=pipeline)
    a64, b64 = (from_bf16(x).astype(np.float64) for x in (a, b))
    expected = a64 @ b64.T + c
    scale = np.max(np.abs(a64) @ np.abs(b64).T + np.abs(c)) if m * n else 1.0
    assert np.max(np.abs(r - expected), initial=0.0) <= 1e-6 * scale
    rel_err(r, expected)


def test_bf16_dot_on_a_host_without_it_is_an_error(rng):
    # bf16-dot=on forces vdpbf16ps; on a host without AVX512-BF16 the JIT
    # would stop in LLVM's instruction selection (a fatal error killing the
    # process), so posenc-run refuses the code first and names the fix.
    if host_has_avx512_bf16():
        # No refusal exists to check where the instruction runs; there
        # test_bf16_transposed_b[on-...] runs the forced path against
        # float64 instead (each host runs exactly one of the two).
        pytest.skip("the host has AVX512-BF16 (the code runs; see test_bf16_transposed_b)")
    a, b = (to_bf16(rng.uniform(-1, 1, s).astype(np.float32)) for s in ((4, 64), (8, 64)))
    c = np.zeros((4, 8), np.float32)
    pipeline = (f"{BUFFERIZE}, func.func(posenc-vectorize-matmul{{vector-width=16 "
                f"bf16-dot=on}}), posenc-lower-to-cpu")
    with pytest.raises(RunError, match=r"AVX512-BF16.*bf16-dot=host"):
        run(matmul_tb_bf16_ir(4, 64, 8), [a, b, c], pipeline=pipeline)

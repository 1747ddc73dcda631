"""posenc-decompose-mla: naive and absorbed forms compute the same thing as
each other and as the float64 reference."""

import numpy as np
import pytest

from harness import func_ir, rel_err, run, tensor_type, type_of
from posenc import reference as ref

NAMES = ["qn", "qr", "ckv", "kr", "wuk", "wuv"]


def mla_ir(ops, causal):
    args = [(n, type_of(a)) for n, a in zip(NAMES, ops)]
    b, sq, h, _ = ops[0].shape
    rt = tensor_type((b, sq, h, ops[5].shape[1]), "f32")
    text = ("%o = posenc.mla_absorb " + ", ".join(f"%{n}" for n in NAMES)
            + (" causal" if causal else "") + " : "
            + ", ".join(t for _, t in args) + f" -> {rt}")
    return func_ir(args, [text], [("%o", rt)])


@pytest.mark.parametrize("sq,sk,causal", [(1, 64, True), (1, 300, False), (8, 8, True), (5, 17, True)])
def test_naive_vs_absorbed(rng, sq, sk, causal):
    b, h, dn, dr, c, dv = 2, 4, 32, 16, 64, 32
    ops = [rng.uniform(-1, 1, size=s).astype(np.float32) for s in
           [(b, sq, h, dn), (b, sq, h, dr), (b, sk, c), (b, sk, dr), (h, dn, c), (h, dv, c)]]
    ops[4] *= 0.2
    ops[5] *= 0.2
    ir = mla_ir(ops, causal)
    (naive,) = run(ir, ops, pipeline="posenc-lower-to-cpu{mla=naive}")
    (absorbed,) = run(ir, ops, pipeline="posenc-lower-to-cpu{mla=absorbed}")
    expected = ref.mla_absorb(*ops, causal=causal)
    assert rel_err(absorbed, naive) <= 1e-4
    assert rel_err(naive, expected) <= 1e-4
    assert rel_err(absorbed, expected) <= 1e-4

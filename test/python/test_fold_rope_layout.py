"""posenc-fold-rope-layout: permuting W_q/W_k and switching the rope layout
leaves attention unchanged (up to float reassociation)."""

import numpy as np
import pytest

from harness import attention, func_ir, opt, rel_err, run, tensor_type, type_of
from posenc import reference as ref
from test_fold_constants import const
from test_rope import LLAMA31, scaling_attr


def layer_ir(x, wq, wk, v, pos, layout, rotary, constant_weights):
    n, dm = x.shape
    b, s, hkv, d = v.shape
    hq = wq.shape[1] // d
    args = [("x", type_of(x)), ("v", type_of(v)), ("p", type_of(pos))]
    body = []
    if constant_weights:
        body += [const("wq", wq), const("wk", wk)]
    else:
        args += [("wq", type_of(wq)), ("wk", type_of(wk))]
    attrs = f"{{base = 500000.0 : f64, rotary_dim = {rotary} : i64, scaling = {scaling_attr(LLAMA31)}}}"
    for name, w, h in [("q", wq, hq), ("k", wk, hkv)]:
        t2 = tensor_type((n, w.shape[1]), "f32")
        t4 = tensor_type((b, s, h, d), "f32")
        body += [
            f"%z{name} = arith.constant dense<0.0> : {t2}",
            f"%{name}2 = linalg.matmul ins(%x, %w{name} : {type_of(x)}, {type_of(w)}) outs(%z{name} : {t2}) -> {t2}",
            f"%{name}4 = tensor.expand_shape %{name}2 [[0, 1], [2, 3]] output_shape [{b}, {s}, {h}, {d}] : {t2} into {t4}",
            f"%{name} = posenc.rope %{name}4, %p layout {layout} {attrs} : {t4}, {type_of(pos)}",
        ]
    rt = tensor_type((b, s, hq, d), "f32")
    body += attention("%o", "%q", "%k", "%v", tensor_type((b, s, hq, d), "f32"),
                      tensor_type((b, s, hkv, d), "f32"), type_of(v), rt, attrs=" causal")
    inputs = [x, v, pos] + ([] if constant_weights else [wq, wk])
    return func_ir(args, body, [("%o", rt)]), inputs


@pytest.mark.parametrize("layout,to", [("half", "interleaved"), ("interleaved", "half")])
@pytest.mark.parametrize("constant_weights", [False, True])
@pytest.mark.parametrize("rotary", [32, 16])
def test_fold_rope_layout(rng, layout, to, constant_weights, rotary):
    b, s, hq, hkv, d, dm = 1, 12, 4, 2, 32, 24
    x = rng.uniform(-1, 1, size=(b * s, dm)).astype(np.float32)
    wq = (rng.uniform(-1, 1, size=(dm, hq * d)) / np.sqrt(dm)).astype(np.float32)
    wk = (rng.uniform(-1, 1, size=(dm, hkv * d)) / np.sqrt(dm)).astype(np.float32)
    v = rng.uniform(-1, 1, size=(b, s, hkv, d)).astype(np.float32)
    pos = rng.integers(0, 100000, size=s).astype(np.int32)
    ir, inputs = layer_ir(x, wq, wk, v, pos, layout, rotary, constant_weights)
    folded_ir = opt(ir, f"-posenc-fold-rope-layout=to={to}")
    assert folded_ir.count(f"layout {to}") == 2
    (plain,) = run(ir, inputs)
    (folded,) = run(ir, inputs, pipeline=f"posenc-fold-rope-layout{{to={to}}},posenc-lower-to-cpu")
    kw = dict(layout=layout, base=500000.0, rotary_dim=rotary, scaling=LLAMA31)
    q = ref.rope((x.astype(np.float64) @ wq).reshape(b, s, hq, d), pos, **kw)
    k = ref.rope((x.astype(np.float64) @ wk).reshape(b, s, hkv, d), pos, **kw)
    expected = ref.attention(q, k, v, causal=True)
    assert rel_err(folded, plain) <= 1e-5
    assert rel_err(folded, expected) <= 1e-5

"""posenc.attention's buffer form (memref operands, writes its init) and
the bufferization of its tensor form, run on every target against float64.

The buffer form is what a compiler that bufferizes before posenc's
lowering hands over; one-shot bufferization turns the tensor form into it
(init's buffer becomes the output, init's values are never read).
"""

import numpy as np
import pytest

from harness import RunError, attention, func_ir, opt, rel_err, run, tensor_type
from posenc import reference as ref

TARGETS = {
    "cpu-default": "posenc-lower-to-cpu",
    "cpu-3x5": "posenc-lower-to-cpu{attention-tile-q=3 attention-tile-k=5}",
    "whole-tensor": "convert-posenc-to-linalg{materialize-attention=true},posenc-lower-to-cpu",
    "gpu-emulated": "func.func(convert-posenc-attention-to-gpu{emulate=true}),posenc-lower-to-cpu",
}

WINDOW = ("%c3 = arith.constant 3 : index\n"
          "    %ninf = arith.constant 0xFF800000 : f32\n"
          "    %i3 = arith.addi %j, %c3 : index\n"
          "    %far = arith.cmpi ule, %i3, %i : index\n"
          "    %r = arith.select %far, %ninf, %s : f32\n"
          "    posenc.yield %r : f32")


def memref_type(t):
    return t.replace("tensor<", "memref<")


def buffer_form_ir(b, sq, sk, hq, hkv, d, with_bias, with_score_mod, same_qk=False):
    """A function on tensors whose attention runs in the buffer form: its
    operands are buffers of the arguments, its output a fresh buffer."""
    qt = tensor_type((b, sq, hq, d), "f32")
    kt = tensor_type((b, sk, hkv, d), "f32")
    rt = qt
    args = [("q", qt), ("k", kt), ("v", kt)]
    body = [f"%qm = bufferization.to_buffer %q read_only : {qt} to {memref_type(qt)}",
            f"%km = bufferization.to_buffer %k read_only : {kt} to {memref_type(kt)}",
            f"%vm = bufferization.to_buffer %v read_only : {kt} to {memref_type(kt)}",
            f"%out = memref.alloc() : {memref_type(rt)}"]
    attrs = ""
    if with_bias:
        bt = tensor_type((hq, sq, sk), "f32")
        args.append(("m", bt))
        body.append(f"%mm = bufferization.to_buffer %m read_only : {bt} to {memref_type(bt)}")
        attrs += f" bias(%mm : {memref_type(bt)})"
    tail = ""
    if with_score_mod:
        tail = (" score_mod {\n  ^bb0(%s: f32, %b: index, %h: index, %i: index, %j: index):\n    "
                + WINDOW + "\n  }")
    k = "%qm" if same_qk else "%km"
    body.append(f"posenc.attention %qm, {k}, %vm{attrs} causal outs(%out) : {memref_type(qt)}, "
                f"{memref_type(kt)}, {memref_type(kt)}, {memref_type(rt)}{tail}")
    body.append(f"%o = bufferization.to_tensor %out restrict : {memref_type(rt)} to {rt}")
    return func_ir(args, body, [("%o", rt)])


@pytest.mark.parametrize("target", TARGETS)
@pytest.mark.parametrize("with_bias,with_score_mod", [(False, False), (True, False),
                                                      (False, True)])
def test_buffer_form_vs_reference(target, with_bias, with_score_mod):
    rng = np.random.default_rng(3)
    b, sq, sk, hq, hkv, d = 2, 7, 11, 4, 2, 8
    q = rng.uniform(-1, 1, (b, sq, hq, d)).astype(np.float32)
    k = rng.uniform(-1, 1, (b, sk, hkv, d)).astype(np.float32)
    v = rng.uniform(-1, 1, (b, sk, hkv, d)).astype(np.float32)
    inputs, kw = [q, k, v], {"causal": True}
    if with_bias:
        bias = rng.uniform(-1, 1, (hq, sq, sk)).astype(np.float32)
        bias[1, :, 2] = -np.inf
        inputs.append(bias)
        kw["bias"] = bias
    if with_score_mod:
        kw["score_mod"] = lambda s, bb, h, i, j: np.where(j + 3 <= i, -np.inf, s)
    ir = buffer_form_ir(b, sq, sk, hq, hkv, d, with_bias, with_score_mod)
    (out,) = run(ir, inputs, pipeline=TARGETS[target])
    expected = ref.attention(*(x.astype(np.float64) for x in (q, k, v)), **kw)
    assert rel_err(out, expected) < 1e-5


def test_buffer_form_reads_one_buffer_twice():
    # q and k the same buffer: one read of it, not two restrict tensors.
    rng = np.random.default_rng(4)
    x = rng.uniform(-1, 1, (1, 9, 2, 8)).astype(np.float32)
    v = rng.uniform(-1, 1, (1, 9, 2, 8)).astype(np.float32)
    ir = buffer_form_ir(1, 9, 9, 2, 2, 8, False, False, same_qk=True)
    (out,) = run(ir, [x, x, v])
    expected = ref.attention(x.astype(np.float64), x.astype(np.float64), v.astype(np.float64),
                             causal=True)
    assert rel_err(out, expected) < 1e-5


def test_one_shot_bufferization_writes_into_init():
    # The tensor form bufferizes to the buffer form; the init's allocation
    # is the output and nothing copies into it first.
    t = tensor_type((1, 6, 2, 8), "f32")
    ir = func_ir([("q", t), ("k", t), ("v", t)],
                 attention("%o", "%q", "%k", "%v", t, t, t, t, attrs=" causal"), [("%o", t)])
    out = opt(ir, "--one-shot-bufferize=bufferize-function-boundaries "
              "function-boundary-type-conversion=identity-layout-map")
    m = memref_type(t)
    assert f"posenc.attention %arg0, %arg1, %arg2 causal outs(%alloc) : {m}, {m}, {m}, {m}" in out
    assert "memref.copy" not in out


@pytest.mark.parametrize("case,fragment", [
    ("mixed", "k ('tensor<1x4x2x8xf32>') must be a memref like init"),
    ("alias", "init must not be the same buffer as q"),
    ("shape", "query length of init (5) must equal query length of q (4)"),
])
def test_buffer_form_invalid(case, fragment):
    m = "memref<1x4x2x8xf32>"
    operands, types = "%q, %q, %q", f"{m}, {m}, {m}"
    args, out = [("q", m), ("o", m)], "%o"
    if case == "mixed":
        args = [("q", m), ("k", "tensor<1x4x2x8xf32>"), ("o", m)]
        operands, types = "%q, %k, %q", f"{m}, tensor<1x4x2x8xf32>, {m}"
    elif case == "alias":
        out = "%q"
    elif case == "shape":
        args = [("q", m), ("o", "memref<1x5x2x8xf32>")]
    ot = dict(args)[out[1:]]
    ir = (f"func.func @f({', '.join(f'%{n}: {t}' for n, t in args)}) {{\n"
          f"  posenc.attention {operands} outs({out}) : {types}, {ot}\n  return\n}}\n")
    with pytest.raises(RunError) as e:
        opt(ir)
    assert fragment in e.value.stderr

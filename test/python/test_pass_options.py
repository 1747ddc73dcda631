"""Every numeric option of every posenc pass and pipeline, swept over 0, 1,
a prime, a size larger than the input's dims, 2^30 and -1: each value is
either accepted (and, for the runnable pipelines, computes what the
defaults compute) or rejected with a message naming the option — never a
crash. The option lists come from `posenc-opt --help`, so a new option is
swept without editing this file."""

import re
import subprocess

import numpy as np
import pytest

import posenc
from harness import POSENC_OPT

VALUES = [0, 1, 7, 1000, 2**30, -1]

IR = """func.func @f(%q: tensor<1x16x4x8xf32>, %k: tensor<1x16x2x8xf32>, %v: tensor<1x16x2x8xf32>,
             %p: tensor<16xi32>, %w: tensor<32x32xf32>, %x: tensor<5x32xf32>)
    -> (tensor<1x16x4x8xf32>, tensor<5x32xf32>) {
  %qr = posenc.rope %q, %p layout half : tensor<1x16x4x8xf32>, tensor<16xi32>
  %kr = posenc.rope %k, %p layout half : tensor<1x16x2x8xf32>, tensor<16xi32>
  %b = posenc.alibi_bias %p, %p mode causal {num_heads = 4} : tensor<16xi32>, tensor<16xi32> -> tensor<4x16x16xf32>
  %e = tensor.empty() : tensor<1x16x4x8xf32>
  %o = posenc.attention %qr, %kr, %v bias(%b : tensor<4x16x16xf32>) causal outs(%e)
       : tensor<1x16x4x8xf32>, tensor<1x16x2x8xf32>, tensor<1x16x2x8xf32>, tensor<1x16x4x8xf32>
  %z = arith.constant 0.0 : f32
  %ie = tensor.empty() : tensor<5x32xf32>
  %i = linalg.fill ins(%z : f32) outs(%ie : tensor<5x32xf32>) -> tensor<5x32xf32>
  %m = linalg.matmul ins(%x, %w : tensor<5x32xf32>, tensor<32x32xf32>) outs(%i : tensor<5x32xf32>) -> tensor<5x32xf32>
  return %o, %m : tensor<1x16x4x8xf32>, tensor<5x32xf32>
}
"""


def numeric_options():
    """[(pass or pipeline, option)] for posenc's passes and pipelines."""
    text = subprocess.run([POSENC_OPT, "--help"], capture_output=True, text=True,
                          check=True).stdout
    found, current = [], None
    for line in text.splitlines():
        m = re.match(r"^      --((?:convert-)?posenc-[\w-]+)\s", line)
        if m:
            current = m.group(1)
            continue
        if re.match(r"^      --", line):
            current = None
            continue
        o = re.match(r"^        --([\w-]+)=<(long|int|ulong|uint)>", line)
        if current and o:
            found.append((current, o.group(1)))
    return found


OPTIONS = numeric_options()


def test_the_sweep_sees_the_options():
    names = {f"{p}:{o}" for p, o in OPTIONS}
    for expected in ("posenc-lower-to-cpu:attention-tile-q", "posenc-lower-to-cpu:num-threads",
                     "posenc-lower-to-nvvm:attention-tile-q",
                     "convert-posenc-attention-to-gpu:tile-q", "posenc-tile-attention:key-tile",
                     "posenc-vectorize-matmul:rows"):
        assert expected in names, sorted(names)


def pipeline_text(pass_name, option, value, nested):
    extra = " emulate=true" if pass_name == "posenc-lower-to-nvvm" else ""
    inner = f"{pass_name}{{{option}={value}{extra}}}"
    return f"builtin.module(func.func({inner}))" if nested else f"builtin.module({inner})"


def run_opt(pass_name, option, value):
    for nested in (False, True):
        pipeline = pipeline_text(pass_name, option, value, nested)
        proc = subprocess.run([POSENC_OPT, "-", f"--pass-pipeline={pipeline}"], input=IR,
                              capture_output=True, text=True, timeout=300)
        if "restricted to 'func.func'" not in proc.stderr:
            return proc
    return proc


INPUTS = None


def inputs():
    global INPUTS
    if INPUTS is None:
        rng = np.random.default_rng(7)
        INPUTS = [rng.standard_normal(s).astype(np.float32)
                  for s in ((1, 16, 4, 8), (1, 16, 2, 8), (1, 16, 2, 8))]
        INPUTS += [np.arange(16, dtype=np.int32), rng.standard_normal((32, 32)).astype(np.float32),
                   rng.standard_normal((5, 32)).astype(np.float32)]
    return INPUTS


@pytest.mark.parametrize("pass_name,option", OPTIONS,
                         ids=[f"{p}:{o}" for p, o in OPTIONS])
def test_numeric_option_sweep(pass_name, option):
    runnable = pass_name in ("posenc-lower-to-cpu", "posenc-lower-to-nvvm")
    expected = None
    for value in VALUES:
        proc = run_opt(pass_name, option, value)
        where = f"{pass_name}{{{option}={value}}}"
        assert proc.returncode in (0, 1), f"{where}: exit {proc.returncode}\n{proc.stderr[-2000:]}"
        for crash in ("Stack dump", "LLVM ERROR", "Assertion", "UNREACHABLE"):
            assert crash not in proc.stderr, f"{where}:\n{proc.stderr[-2000:]}"
        if proc.returncode == 1:
            short = option.split("-", 1)[1] if option.startswith(("attention-", "matmul-")) else option
            assert short in proc.stderr or str(value) in proc.stderr, f"{where}:\n{proc.stderr}"
            continue
        if not runnable:
            continue
        # Accepted: the compiled code computes what the defaults compute.
        pipeline = pipeline_text(pass_name, option, value, False)
        if expected is None:
            base = pipeline_text(pass_name, "fold-max-elements", 4096, False)
            expected = posenc.compile(IR, pipeline=base).f(*inputs())
        got = posenc.compile(IR, pipeline=pipeline).f(*inputs())
        for g, e in zip(got, expected):
            np.testing.assert_allclose(g, e, rtol=1e-4, atol=1e-5, err_msg=where)

"""posenc-lower-to-nvvm{emulate=true}: the GPU pipeline's kernels, every
op (the device check's cases: rope in both layouts with partial rotary,
sinusoidal, ALiBi, T5 and Shaw biases, attention with GQA/MQA tails, bf16,
fused biases, MLA), with their tiling, bounds guards and thread index
arithmetic, run thread by thread on the host against float64."""

import os
import sys

import numpy as np
import pytest

from harness import ROOT, from_bf16, run

sys.path.insert(0, os.path.join(ROOT, "bench", "gpu"))
import prepare  # noqa: E402

CASES = prepare.correctness_cases(seed=20261129)


@pytest.mark.parametrize("name,ir,inputs,expected,tol", CASES, ids=[c[0] for c in CASES])
@pytest.mark.parametrize("options", ["", "threads=64 attention-tile-k=16 attention-threads=64"])
def test_gpu_pipeline_emulated(name, ir, inputs, expected, tol, options):
    options = f"{prepare.CASE_OPTIONS.get(name, '')} {options}".strip()
    pipeline = f"posenc-lower-to-nvvm{{emulate=true chip=sm_90 {options}}}".replace(" }", "}")
    (out,) = run(ir, inputs, pipeline=pipeline)
    out = from_bf16(out) if out.dtype == np.uint16 else out
    err = prepare.rel_err(out, expected)
    assert err <= tol, f"{name}: {err:.3e} > {tol}"


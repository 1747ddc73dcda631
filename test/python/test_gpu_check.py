"""bench/gpu/prepare.py: every device-check case (each op, fused biases,
bf16, GQA/MQA, MLA) compiles to an AOT GPU executable, and the same IR
run on the CPU matches the float64 reference the device check will use."""

import os
import subprocess
import sys

import pytest

from harness import BUILD, ROOT

RUNTIME = os.path.join(BUILD, "lib", "libposenc_cuda_runtime.a")


@pytest.mark.skipif(not os.path.exists(RUNTIME), reason="CUDA runtime not built (no CUDA toolkit)")
def test_prepare_builds_every_case_and_checks_it_on_cpu(tmp_path):
    out = tmp_path / "gpu-check"
    proc = subprocess.run([sys.executable, os.path.join(ROOT, "bench", "gpu", "prepare.py"), str(out),
                           "--check-on-cpu", "--seed", "123"],
                          capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    sys.path.insert(0, os.path.join(ROOT, "bench", "gpu"))
    import prepare

    expected = len(prepare.correctness_cases(seed=123))
    lines = [line for line in proc.stdout.splitlines() if line.startswith("cpu check")]
    assert len(lines) == expected >= 13, proc.stdout
    assert all(line.endswith(" ok") for line in lines), proc.stdout
    manifest = (out / "manifest.tsv").read_text().split("\n")
    cases = [line.split("\t") for line in manifest if line]
    assert len(cases) == expected
    for name, exe, inputs, refname, tol in cases:
        assert (out / exe).stat().st_size > 0
        assert all((out / p).exists() for p in inputs.split(","))
        # Tensor-core cases with f32 operands (rounded to tf32) have their own.
        assert (out / refname).exists() and float(tol) in (1e-5, 1e-2, prepare.TF32_TOL)
        assert (float(tol) == prepare.TF32_TOL) == (name in prepare.CASE_OPTIONS and "bf16" not in name)
    for exe in ("bench_rope_f32.gpu", "bench_alibi_attention_f32.gpu", "bench_alibi_attention_bf16.gpu",
                "bench_decode_gqa_f32.gpu", "bench_decode_gqa_bf16.gpu"):
        assert (out / exe).exists()
    # Every tile-shape variant is built from a timing case with options.
    variants = [line.split("\t") for line in (out / "variants.tsv").read_text().splitlines()]
    assert len(variants) == len(prepare.VARIANTS) > 0
    for name, base, options in variants:
        assert (out / f"{name}.gpu").stat().st_size > 0 and (out / f"{base}.gpu").exists()
        assert options.startswith("attention-")
    # Small enough to carry to the GPU machine (64 MiB with the source
    # tree); executables carry no debug info, so any build type gives the
    # same sizes.
    total = sum(p.stat().st_size for p in out.iterdir())
    assert total < 48 * 2**20

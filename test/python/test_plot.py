"""python -m posenc.plot: a picture for every example config, with
labelled axes and the values posenc computes."""

import glob
import json
import os
import subprocess
import sys

import numpy as np
import pytest

from harness import BUILD, ROOT

matplotlib = pytest.importorskip("matplotlib")
import posenc  # noqa: E402
from posenc import plot  # noqa: E402

CONFIGS = sorted(glob.glob(os.path.join(ROOT, "examples", "configs", "*.json")))


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: os.path.basename(p)[:-5])
def test_every_example_config_draws(path, tmp_path):
    fig = plot.figure(json.load(open(path)), layers=[0], seq_len=32)
    drawn = [ax for ax in fig.axes if ax.axison and ax.get_xlabel()]
    assert drawn, "no panel drawn"
    for ax in drawn:
        assert ax.get_xlabel() and ax.get_ylabel() and ax.get_title()
    out = tmp_path / "out.png"
    fig.savefig(out)
    assert out.stat().st_size > 10000


def test_rope_curve_is_the_compilers(tmp_path):
    """The plotted wavelengths are 2π/ω of posenc.rope_frequencies for the
    config's scaling: Llama 3.1's bands."""
    cfg = json.load(open(os.path.join(ROOT, "examples", "configs", "llama-3.1-8b.json")))
    fig = plot.figure(cfg, layers=[0])
    ax = fig.axes[0]
    lines = {ln.get_label(): ln for ln in ax.get_lines()}
    scaled = next(ln for name, ln in lines.items() if name.startswith("llama3"))
    omega, factor = posenc.rope_frequencies(128, 500000.0, {
        "kind": "llama3", "factor": 8.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0,
        "original": 8192}, seq_len=131072)
    np.testing.assert_allclose(scaled.get_ydata(), 2 * np.pi / omega, rtol=1e-12)
    assert "attention factor 1" in ax.get_title() and factor == 1.0


def test_layers_and_cli(tmp_path):
    out = tmp_path / "gemma.png"
    env = dict(os.environ, PYTHONPATH=os.path.join(BUILD, "python_packages"))
    proc = subprocess.run([sys.executable, "-m", "posenc.plot",
                           os.path.join(ROOT, "examples", "configs", "gemma-3-4b.json"),
                           "-o", str(out), "--layer", "0", "--layer", "5"],
                          capture_output=True, text=True, env=env)
    assert proc.returncode == 0, proc.stderr
    assert out.stat().st_size > 10000
    bad = subprocess.run([sys.executable, "-m", "posenc.plot",
                          os.path.join(ROOT, "examples", "configs", "gemma-3-4b.json"),
                          "-o", str(out), "--layer", "999"], capture_output=True, text=True, env=env)
    assert bad.returncode != 0 and "layer must be in [0, 34)" in bad.stderr


def test_bench_charts(tmp_path):
    """bench/charts.py draws a chart per ratio table from results in every
    schema the bench scripts write."""
    sys.path.insert(0, os.path.join(ROOT, "bench"))
    import charts
    run = {"ms": 2.0, "peak_mb": 1.0, "extra_mb": 0.0, "cpu_per_wall": 1.0, "checksum": 0.0}
    results = {
        "machine": "test", "cpus": 2, "date": "now",
        "rope_bias": {"rope": [dict(shape=[1, 8, 2, 4], dtype="f32", layout="half", fraction_of_copy=0.5,
                                    speedup=3.0)],
                      "bias": [dict(bias="alibi", fraction_of_fill=0.7, speedup=2.0)]},
        "attention": [dict(bias="alibi", S=512, fused=run, unfused=dict(run, ms=4.0),
                           torch=dict(run, ms=8.0), fraction_of_peak=0.5)],
        "mla": {"rows": [dict(case="decode", sq=1, context=1024, speedup=3.0)]},
        "decode": [dict(kv="f32", Sk=4096, impl="default", fraction_of_read=0.6)],
        "generate": [dict(table="decode", checkpoint="c", impl="torch eager", median_ms_per_token=1.0),
                     dict(table="decode", checkpoint="c", impl="posenc", median_ms_per_token=0.1),
                     dict(table="projection", M=1, d=64, n=64, fraction_of_numpy=1.2)],
        "call_overhead": [dict(mib=16, overhead_ms=[0.1, 0.1], copy_ms=[1.0, 1.0])],
        "raise": [dict(S=512, impl=impl, median_ms=ms) for impl, ms in
                  (("unraised", 50.0), ("raised", 2.0), ("torch", 5.0))],
    }
    path = tmp_path / "results.json"
    path.write_text(json.dumps(results))
    written = charts.main([str(path), "-o", str(tmp_path / "charts")])
    names = sorted(os.path.basename(p) for p in written)
    assert names == sorted(f"{n}.png" for n in (
        "rope_vs_copy", "bias_vs_fill", "attention", "mla", "decode", "generate_decode",
        "generate_projection", "call_overhead", "raise"))
    assert all(os.path.getsize(p) > 5000 for p in written)


def test_plot_refuses_bad_configs_and_outputs(tmp_path):
    env = dict(os.environ, PYTHONPATH=os.path.join(BUILD, "python_packages"))
    cfg = os.path.join(ROOT, "examples", "configs", "llama-3.1-8b.json")
    bad_cfg = tmp_path / "list.json"
    bad_cfg.write_text("[1, 2]")
    (tmp_path / "dir.png").mkdir()

    def run(*args):
        return subprocess.run([sys.executable, "-m", "posenc.plot", *args], capture_output=True,
                              text=True, env=env)

    for args, message in [((str(bad_cfg), "-o", str(tmp_path / "a.png")), "must be a JSON object"),
                          ((cfg, "-o", str(tmp_path / "noext")), "the extension names the format"),
                          ((cfg, "-o", str(tmp_path / "a.xyz")), "the extension names the format"),
                          ((cfg, "-o", str(tmp_path / "dir.png")), "not a file in a writable directory"),
                          ((cfg, "-o", str(tmp_path / "a.png"), "--layer", "-1"), "got -1")]:
        proc = run(*args)
        assert proc.returncode != 0 and message in proc.stderr, (args, proc.stderr)
        assert "Traceback" not in proc.stderr

"""Shared fixtures: a fresh random seed per test (printed, so a failure can
be replayed with POSENC_SEED=<seed>) and the path of the built tools."""

import os
import sys

import numpy as np
import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
BUILD = os.environ.get("POSENC_BUILD_DIR", os.path.join(ROOT, "build"))
# The built package (with the _posenc extension) wins over the sources.
sys.path.insert(0, os.path.join(ROOT, "python"))
sys.path.insert(0, os.path.join(BUILD, "python_packages"))
sys.path.insert(0, HERE)


@pytest.fixture
def rng():
    seed = int(os.environ.get("POSENC_SEED", "0")) or int.from_bytes(os.urandom(4), "little")
    print(f"seed={seed} (replay with POSENC_SEED={seed})")
    return np.random.default_rng(seed)


def pytest_terminal_summary(terminalreporter):
    """Largest relative error (vs float64) seen by each test function."""
    import harness

    if not harness.MAX_ERRORS:
        return
    terminalreporter.section("largest relative error vs float64 reference")
    for key in sorted(harness.MAX_ERRORS):
        terminalreporter.write_line(f"{harness.MAX_ERRORS[key]:10.2e}  {key}")

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

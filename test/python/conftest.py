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


# Under the sanitizers (scripts/test.sh --sanitize sets POSENC_SANITIZE=1)
# a parametrized sweep runs its first case and about one in
# POSENC_SANITIZE_STRIDE (default 4) of the others: the cases of a sweep
# repeat one code path over values, and the release run has them all. The
# choice hashes the test id, so it does not line up with one axis of a
# product (a whole dtype dropped). POSENC_SANITIZE_STRIDE=1 runs them all.
def pytest_collection_modifyitems(config, items):
    if os.environ.get("POSENC_SANITIZE") != "1":
        return
    stride = int(os.environ.get("POSENC_SANITIZE_STRIDE", "4"))
    if stride <= 1:
        return
    import zlib

    first = set()
    skip = pytest.mark.skip(reason=f"sanitizer run: one case in {stride} of this sweep "
                                   "(POSENC_SANITIZE_STRIDE=1 runs all)")
    for item in items:
        function, sep, _ = item.nodeid.partition("[")
        if not sep or function not in first:
            first.add(function)
            continue
        if zlib.crc32(item.nodeid.encode()) % stride:
            item.add_marker(skip)


@pytest.fixture
def rng():
    seed = int(os.environ.get("POSENC_SEED", "0")) or int.from_bytes(os.urandom(4), "little")
    print(f"seed={seed} (replay with POSENC_SEED={seed})")
    return np.random.default_rng(seed)


# The largest error of each test travels in its report, so that it reaches
# the summary from pytest-xdist's workers too.
_MAX_ERRORS = {}


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_call(item):
    yield
    import harness

    key = item.nodeid.split("[")[0]
    if key in harness.MAX_ERRORS:
        item.user_properties.append(("max_rel_err", harness.MAX_ERRORS[key]))


def pytest_runtest_logreport(report):
    for name, value in report.user_properties:
        if name == "max_rel_err":
            key = report.nodeid.split("[")[0]
            _MAX_ERRORS[key] = max(_MAX_ERRORS.get(key, 0.0), value)


def pytest_terminal_summary(terminalreporter):
    """Largest relative error (vs float64) seen by each test function."""
    if not _MAX_ERRORS:
        return
    terminalreporter.section("largest relative error vs float64 reference")
    for key in sorted(_MAX_ERRORS):
        terminalreporter.write_line(f"{_MAX_ERRORS[key]:10.2e}  {key}")

"""cmake --install into a fresh prefix, then use it as another project
would: find_package(Posenc) from test/Install/consumer (build and run),
the installed posenc-opt, plugin and Python package."""

import os
import shutil
import subprocess
import sys

import pytest

from harness import BUILD, ROOT

CONSUMER = os.path.join(ROOT, "test", "Install", "consumer")


def run(cmd, **kw):
    proc = subprocess.run(cmd, capture_output=True, text=True, **kw)
    assert proc.returncode == 0, f"{' '.join(cmd)}:\n{proc.stdout}\n{proc.stderr}"
    return proc.stdout


@pytest.fixture(scope="module")
def prefix(tmp_path_factory):
    prefix = tmp_path_factory.mktemp("install")
    run(["cmake", "--install", BUILD, "--prefix", str(prefix)])
    return prefix


def test_installed_tree(prefix):
    for rel in ("bin/posenc-opt", "bin/posenc-run", "lib/posenc-plugin.so",
                "lib/libMLIRPosencDialect.a", "lib/libPosencCAPI.a",
                "lib/cmake/posenc/PosencConfig.cmake", "include/posenc-c/Dialects.h",
                "include/posenc/Dialect/Posenc/IR/PosencOps.h.inc",
                "python_packages/posenc/models.py"):
        assert (prefix / rel).exists(), rel
    out = run([str(prefix / "bin" / "posenc-opt"),
               os.path.join(ROOT, "examples", "bloom_alibi_attention.mlir"),
               "--posenc-fuse-bias-into-attention"])
    assert "score_mod" in out and "posenc.alibi_bias" not in out


def test_find_package_consumer(prefix, tmp_path):
    build = tmp_path / "consumer"
    cmake = ["cmake", "-G", "Ninja", "-S", CONSUMER, "-B", str(build),
             f"-DCMAKE_PREFIX_PATH={prefix}"]
    if os.path.exists("/usr/bin/clang++-22"):
        cmake.append("-DCMAKE_CXX_COMPILER=/usr/bin/clang++-22")
    if shutil.which("ccache"):
        cmake.append("-DCMAKE_CXX_COMPILER_LAUNCHER=ccache")
    run(cmake)
    run(["ninja", "-C", str(build)])
    out = run([str(build / "posenc-consumer")])
    assert out.splitlines() == ["parsed: @rope", "lowered: yes"]


def test_installed_python_package(prefix):
    code = ("import numpy as np, posenc\n"
            "m = posenc.compile(open(r'%s').read())\n"
            "print(posenc.__file__)\n" %
            os.path.join(ROOT, "examples", "llama3_attention.mlir"))
    env = dict(os.environ, PYTHONPATH=str(prefix / "python_packages"))
    out = run([sys.executable, "-c", code], env=env, cwd=str(prefix))
    assert out.strip().startswith(str(prefix))

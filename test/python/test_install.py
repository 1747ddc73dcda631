"""cmake --install into a fresh prefix, then use it as other projects
would: find_package(Posenc) from test/Install/consumer (C++: passes,
pipeline, runner), test/Install/capi-consumer (C: one target) and the
C++ project of README.md, taken from its text (build and run each); the
installed posenc-opt, plugin and Python package."""

import os
import re
import shutil
import subprocess
import sys

import pytest

from harness import BUILD, ROOT

CONSUMER = os.path.join(ROOT, "test", "Install", "consumer")
CAPI_CONSUMER = os.path.join(ROOT, "test", "Install", "capi-consumer")


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
                "lib/cmake/posenc/PosencConfig.cmake",
                "lib/cmake/posenc/PosencConfigVersion.cmake", "lib/libMLIRPosencRuntime.a",
                "include/posenc/Version.h", "include/posenc/Runtime/Runner.h",
                "include/posenc-c/Dialects.h",
                "include/posenc/Dialect/Posenc/IR/PosencOps.h.inc",
                "python_packages/posenc/models.py"):
        assert (prefix / rel).exists(), rel
    out = run([str(prefix / "bin" / "posenc-opt"),
               os.path.join(ROOT, "examples", "bloom_alibi_attention.mlir"),
               "--posenc-fuse-bias-into-attention"])
    assert "score_mod" in out and "posenc.alibi_bias" not in out


def configure(source, build, prefix, check=True, lang="CXX"):
    """Configures and builds `source` against `prefix`; `lang`: the
    project's one language (setting another's compiler makes LLVMConfig
    probe it)."""
    cmake = ["cmake", "-G", "Ninja", "-S", str(source), "-B", str(build),
             f"-DCMAKE_PREFIX_PATH={prefix}"]
    compiler = {"CXX": "/usr/bin/clang++-22", "C": "/usr/bin/clang-22"}[lang]
    if os.path.exists(compiler):
        cmake.append(f"-DCMAKE_{lang}_COMPILER={compiler}")
    if shutil.which("ccache"):
        cmake.append(f"-DCMAKE_{lang}_COMPILER_LAUNCHER=ccache")
    if not check:
        return subprocess.run(cmake, capture_output=True, text=True)
    run(cmake)
    run(["ninja", "-C", str(build)])


def test_find_package_consumer(prefix, tmp_path):
    configure(CONSUMER, tmp_path / "consumer", prefix)
    out = run([str(tmp_path / "consumer" / "posenc-consumer")]).splitlines()
    assert out[:3] == ["posenc 0.1.0", "parsed: @rope", "lowered: yes"], out
    err = float(out[3].removeprefix("ran: max error "))
    assert err < 1e-5, out


def test_capi_consumer_links_with_one_target(prefix, tmp_path):
    configure(CAPI_CONSUMER, tmp_path / "capi", prefix, lang="C")
    out = run([str(tmp_path / "capi" / "posenc-capi-consumer")])
    for line in ("dialect: posenc", "verified: 1", "bad module rejected: 1",
                 "pipeline parsed: 1", "lowered: 1"):
        assert line in out.splitlines(), out
    assert "llvm.func @rope(" in out and "posenc.rope" not in out.split("lowered: 1")[1]


def readme_files():
    """The files README.md marks `<!-- snippet: file NAME -->`, by name."""
    text = open(os.path.join(ROOT, "README.md"), encoding="utf-8").read()
    return dict(re.findall(r"<!-- snippet: file (\S+) -->\n```[\w+]*\n(.*?)```", text, re.S))


def test_readme_cpp_project(prefix, tmp_path):
    files = readme_files()
    project = tmp_path / "readme"
    project.mkdir()
    for name in ("CMakeLists.txt", "main.cpp"):
        (project / name).write_text(files[name])
    configure(project, tmp_path / "readme-build", prefix)
    rotate = tmp_path / "rotate.mlir"
    rotate.write_text(files["rotate.mlir"])
    out = run([str(tmp_path / "readme-build" / "my-compiler"), str(rotate)])
    assert "llvm.func @rotate(" in out and "posenc." not in out


def test_version_is_checked(prefix, tmp_path):
    project = tmp_path / "wants-1.0"
    project.mkdir()
    (project / "CMakeLists.txt").write_text(
        "cmake_minimum_required(VERSION 3.20)\nproject(p LANGUAGES CXX)\n"
        "find_package(Posenc 1.0 REQUIRED CONFIG)\n")
    proc = configure(project, tmp_path / "wants-1.0-build", prefix, check=False)
    assert proc.returncode != 0
    assert "compatible" in proc.stderr and "version: 0.1.0" in proc.stderr, proc.stderr


def test_installed_python_package(prefix):
    code = ("import numpy as np, posenc\n"
            "m = posenc.compile(open(r'%s').read())\n"
            "print(posenc.__file__)\n" %
            os.path.join(ROOT, "examples", "llama3_attention.mlir"))
    env = dict(os.environ, PYTHONPATH=str(prefix / "python_packages"))
    out = run([sys.executable, "-c", code], env=env, cwd=str(prefix))
    assert out.strip().startswith(str(prefix))

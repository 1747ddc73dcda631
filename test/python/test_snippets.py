"""Every fenced block of README.md and docs/*.md works as written.

A block's language and the HTML comment on the line above it decide what
is checked:

- ```sh and ```python blocks run, in document order, in one working
  directory per document that looks like the repository root (build/,
  examples/, scripts/, ... and ../shared are links to the real ones), so
  that a later block sees the files an earlier one wrote;
- ```mlir blocks are parsed and verified by posenc-opt;
- `<!-- snippet: file NAME -->` writes the block to NAME first (then a
  later block can use it, as a reader would after saving it);
- `<!-- snippet: syntax-only REASON -->` checks syntax only (bash -n,
  Python's compile): blocks that need a GPU, run for a long time, or
  install system-wide, with the reason;
- `<!-- snippet: excerpt PATH -->` requires every code line of the block
  (comments dropped) to appear in PATH, a file that is built and tested
  (C and C++ fragments, CMake lines);
- blocks without a language are program output, not checked.

A C, C++ or CMake block with no marker is an error: each must be a file,
an excerpt or syntax-only. test_install.py builds the README's C++ project.
"""

import os
import re
import subprocess
import sys

import pytest

from harness import BUILD, POSENC_OPT, ROOT

DOCS = ["README.md"] + sorted(
    os.path.join("docs", f) for f in os.listdir(os.path.join(ROOT, "docs")) if f.endswith(".md"))
SHARED = os.path.realpath(os.path.join(ROOT, "..", "shared"))
MARKER = re.compile(r"<!--\s*snippet:\s*(file|syntax-only|excerpt)\s*(.*?)\s*-->")
FENCE = re.compile(r"^```([\w+-]*)\s*$")
PYTHON = "/usr/bin/python3" if os.path.exists("/usr/bin/python3") else sys.executable


class Block:
    def __init__(self, doc, line, lang, text, marker):
        self.doc, self.line, self.lang, self.text = doc, line, lang, text
        self.kind, self.arg = marker if marker else (None, None)

    def __repr__(self):
        return f"{self.doc}:{self.line} ({self.lang})"


def blocks(doc):
    """The fenced blocks of `doc` with a language, in order."""
    lines = open(os.path.join(ROOT, doc), encoding="utf-8").read().splitlines()
    out, i = [], 0
    while i < len(lines):
        m = FENCE.match(lines[i])
        if not m:
            i += 1
            continue
        start, lang = i, m.group(1)
        i += 1
        body = []
        while i < len(lines) and not lines[i].startswith("```"):
            body.append(lines[i])
            i += 1
        i += 1
        prev = lines[start - 1] if start else ""
        mm = MARKER.search(prev)
        if lang:
            out.append(Block(doc, start + 1, lang, "\n".join(body) + "\n",
                             (mm.group(1), mm.group(2)) if mm else None))
    return out


def code_lines(block):
    """The block's lines without comments and blank lines."""
    out = []
    for line in block.text.splitlines():
        if block.lang in ("c", "c++", "cpp"):
            line = re.sub(r"//.*|/\*.*?\*/", "", line)
        elif block.lang in ("cmake", "sh"):
            line = re.sub(r"(^|\s)#.*", "", line)
        line = line.strip()
        if line:
            out.append(line)
    return out


def workdir(tmp_path):
    """tmp/repo, shaped like the repository root, with tmp/shared beside."""
    repo = tmp_path / "repo"
    repo.mkdir()
    # Directories only, so that a block writing a file of the same name as
    # one of the repository's (CMakeLists.txt) writes its own copy.
    for name in os.listdir(ROOT):
        if name != ".git" and os.path.isdir(os.path.join(ROOT, name)):
            os.symlink(os.path.join(ROOT, name), repo / name)
    if os.path.realpath(BUILD) != os.path.realpath(os.path.join(ROOT, "build")):
        os.unlink(repo / "build")
        os.symlink(BUILD, repo / "build")
    if os.path.isdir(SHARED):
        os.symlink(SHARED, tmp_path / "shared")
    return repo


def check_syntax(block):
    if block.lang == "sh":
        proc = subprocess.run(["bash", "-n"], input=block.text, capture_output=True, text=True)
        assert proc.returncode == 0, f"{block}: {proc.stderr}"
    elif block.lang == "python":
        compile(block.text, str(block), "exec")
    elif block.lang == "mlir":
        check_mlir(block)


def check_mlir(block):
    proc = subprocess.run([POSENC_OPT, "-"], input=block.text, capture_output=True, text=True)
    assert proc.returncode == 0, f"{block}: posenc-opt rejects it:\n{proc.stderr}"


def run_block(block, cwd):
    env = dict(os.environ)
    env.pop("PYTHONPATH", None)  # blocks say where the package is
    if block.lang == "sh":
        cmd = ["bash", "-e", "-o", "pipefail", "-c", block.text]
    else:
        cmd = [PYTHON, "-c", block.text]
    proc = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, (f"{block} failed (exit {proc.returncode}):\n{block.text}\n"
                                  f"stdout:\n{proc.stdout[-3000:]}\nstderr:\n{proc.stderr[-3000:]}")


@pytest.mark.parametrize("doc", DOCS)
def test_snippets_work_as_written(doc, tmp_path):
    cwd = workdir(tmp_path)
    for block in blocks(doc):
        if block.lang in ("c", "c++", "cpp", "cmake") and block.kind is None:
            pytest.fail(f"{block}: mark it <!-- snippet: file NAME -->, excerpt PATH or syntax-only")
        if block.kind == "file":
            target = cwd / block.arg
            assert not target.is_symlink() and "/" not in block.arg, f"{block}: {block.arg}"
            target.write_text(block.text)
        if block.kind == "excerpt":
            source = open(os.path.join(ROOT, block.arg), encoding="utf-8").read()
            flat = re.sub(r"\s+", " ", source)
            for line in code_lines(block):
                assert re.sub(r"\s+", " ", line) in flat, f"{block}: '{line}' is not in {block.arg}"
        elif block.kind == "syntax-only":
            assert block.arg, f"{block}: syntax-only needs a reason"
            check_syntax(block)
        elif block.lang == "mlir":
            check_mlir(block)
        elif block.lang in ("sh", "python") and block.kind is None:
            if "../shared/" in block.text and not os.path.isdir(SHARED):
                continue  # the shared checkpoints are not beside this checkout
            run_block(block, cwd)


def test_markers_are_well_formed():
    """A misspelled marker would silently run (or skip) a block."""
    for doc in DOCS:
        text = open(os.path.join(ROOT, doc), encoding="utf-8").read()
        for m in re.finditer(r"<!--\s*snippet:(.*?)-->", text):
            assert MARKER.search(m.group(0)), f"{doc}: bad marker {m.group(0)!r}"

"""docs/reference is what mlir-tblgen generates from the current ODS."""

import filecmp
import os
import re
import subprocess
import sys

from harness import BUILD, ROOT

GENERATED = {
    "PosencOps.md": "Dialects/PosencOps.md",
    "PosencAttrs.md": "Dialects/PosencAttrs.md",
    "PosencPasses.md": "PosencPasses.md",
    "PosencConversionPasses.md": "PosencConversionPasses.md",
}


def test_reference_docs_are_current():
    subprocess.run(["ninja", "-C", BUILD, "mlir-doc"], check=True, capture_output=True)
    for name, built in GENERATED.items():
        checked_in = os.path.join(ROOT, "docs", "reference", name)
        assert os.path.exists(checked_in), f"docs/reference/{name} missing: run scripts/gen_docs.sh"
        assert filecmp.cmp(checked_in, os.path.join(BUILD, "docs", built), shallow=False), \
            f"docs/reference/{name} is stale: run scripts/gen_docs.sh"


def test_pipeline_reference_is_current(tmp_path):
    out = tmp_path / "PosencPipelines.md"
    subprocess.run(["/usr/bin/python3", os.path.join(ROOT, "scripts", "gen_pipeline_docs.py"), str(out)],
                   check=True, env=dict(os.environ, POSENC_BUILD_DIR=BUILD))
    checked_in = os.path.join(ROOT, "docs", "reference", "PosencPipelines.md")
    assert filecmp.cmp(checked_in, out, shallow=False), \
        "docs/reference/PosencPipelines.md is stale: run scripts/gen_docs.sh"


def test_readme_pass_table_lists_every_pass_and_option():
    """Each posenc pass and pipeline has a row of README's table naming
    all of its options."""
    sys.path.insert(0, os.path.join(ROOT, "scripts"))
    from gen_pipeline_docs import posenc_passes
    rows = {}
    for line in open(os.path.join(ROOT, "README.md"), encoding="utf-8"):
        m = re.match(r"^\| `([\w-]+)(?:\{([^}]*)\})?` \|", line)
        if m:
            rows[m.group(1)] = {o.split("=")[0] for o in (m.group(2) or "").split()}
    passes = posenc_passes()
    assert len(passes) > 20
    for name, (_, options) in passes.items():
        assert name in rows, f"README's pass table has no row for {name}"
        want = {o for o, *_ in options}
        assert rows[name] == want, f"{name}: README lists {sorted(rows[name])}, the pass has {sorted(want)}"


def test_docs_cite_what_exists():
    """Every repository path a doc cites in backquotes exists."""
    for doc in ["README.md", "bench/README.md"] + [
            os.path.join("docs", f) for f in os.listdir(os.path.join(ROOT, "docs")) if f.endswith(".md")]:
        text = open(os.path.join(ROOT, doc), encoding="utf-8").read()
        assert "DESIGN §" not in text, f"{doc} cites DESIGN, which is not in the repository"
        for path in re.findall(r"`((?:include|lib|test|tools|scripts|bench|docs|python|examples|cmake)/[\w./-]+)`", text):
            if "*" in path or "<" in path or path.endswith((".a", ".so", ".json")) or \
                    path.rstrip("/") in ("bench/charts", "bench/results"):
                continue  # patterns, and what the build or a run writes
            assert os.path.exists(os.path.join(ROOT, path.rstrip("/"))), f"{doc} cites {path}"

"""docs/reference is what mlir-tblgen generates from the current ODS."""

import filecmp
import os
import subprocess

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

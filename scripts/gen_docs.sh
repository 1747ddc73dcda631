#!/usr/bin/env bash
# Regenerates the dialect, op, attribute and pass reference in docs/reference
# from the ODS/TableGen sources (ninja target mlir-doc), and the pipelines'
# reference from the built tools (scripts/gen_pipeline_docs.py). test_docs.py fails
# when the checked-in copy is stale.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build=${POSENC_BUILD_DIR:-$root/build}
ninja -C "$build" mlir-doc >/dev/null
mkdir -p "$root/docs/reference"
for f in Dialects/PosencOps.md Dialects/PosencAttrs.md PosencPasses.md PosencConversionPasses.md; do
  cp "$build/docs/$f" "$root/docs/reference/$(basename "$f")"
done
/usr/bin/python3 "$root/scripts/gen_pipeline_docs.py"
echo "docs/reference updated"

#!/usr/bin/env bash
# The main job: set up, build if needed, then compile every example model
# layer through posenc-lower-to-cpu, run it on random inputs and check it
# against the float64 reference (scripts/demo.py prints the table); then
# compile whole trained checkpoints (../shared/models, or
# --checkpoint PATH [--tokenizer F]) and generate text with them, checked
# token for token against the reference implementation's output.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
"$root/scripts/setup.sh"
"$root/scripts/build.sh" >/dev/null
exec /usr/bin/python3 "$root/scripts/demo.py" "$@"

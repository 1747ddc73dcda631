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
# The build's progress as one status line (a few lines when not on a
# terminal) instead of minutes of silence; its whole log on failure.
build=${POSENC_BUILD_DIR:-$root/build}
mkdir -p "$build"
log="$build/demo-build.log"
echo "building posenc (scripts/build.sh; log in $log)"
tty=0
[[ -t 1 ]] && tty=1
if ! "$root/scripts/build.sh" 2>&1 | tee "$log" | awk -v tty="$tty" '
    match($0, /^\[([0-9]+)\/([0-9]+)\]/) {
      split(substr($0, 2, RLENGTH - 2), n, "/")
      if (tty) { printf "\r\033[K  %s", substr($0, 1, 100); fflush() }
      else if (int(10 * n[1] / n[2]) > shown) {
        shown = int(10 * n[1] / n[2]); printf "  %d%% (%d of %d steps)\n", 10 * shown, n[1], n[2]; fflush()
      }
    }
    END { if (tty) printf "\r\033[K" }'; then
  echo "build failed; the end of $log:" >&2
  tail -n 40 "$log" >&2
  exit 1
fi
echo "built"
exec /usr/bin/python3 "$root/scripts/demo.py" "$@"

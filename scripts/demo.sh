#!/usr/bin/env bash
# The main job: set up, build if needed, and take every example model layer
# through posenc-opt. Today this parses, verifies and canonicalizes each
# example and reports the posenc ops it contains; compiling and running them
# is added as the lowerings land.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build=${POSENC_BUILD_DIR:-$root/build}
"$root/scripts/setup.sh"
"$root/scripts/build.sh" >/dev/null

printf '%-28s %-8s %-10s %s\n' example status time_ms "posenc ops"
for f in "$root"/examples/*.mlir; do
  name=$(basename "$f" .mlir)
  start=$(date +%s%N)
  if out=$("$build/bin/posenc-opt" "$f" --canonicalize 2>&1); then
    status=ok
  else
    status=FAILED
  fi
  ms=$(( ($(date +%s%N) - start) / 1000000 ))
  ops=$(grep -oE ' posenc\.[a-z_]+' <<<"$out" | sort | uniq -c |
        awk '{printf "%s%s x%s", sep, $2, $1; sep=", "}')
  printf '%-28s %-8s %-10s %s\n' "$name" "$status" "$ms" "$ops"
  [[ $status == ok ]] || { echo "$out" >&2; exit 1; }
done

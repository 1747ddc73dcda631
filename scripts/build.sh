#!/usr/bin/env bash
# Configures (once) and builds posenc into ${POSENC_BUILD_DIR:-build}.
# Incremental: a second run rebuilds only what changed.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build=${POSENC_BUILD_DIR:-$root/build}
llvm=/usr/lib/llvm-22

# POSENC_CMAKE_ARGS: extra cmake arguments, one per line.
extra=()
if [[ -n "${POSENC_CMAKE_ARGS:-}" ]]; then
  mapfile -t extra <<<"$POSENC_CMAKE_ARGS"
fi
if [[ ! -f "$build/build.ninja" ]]; then
  cmake -G Ninja -S "$root" -B "$build" \
    -DCMAKE_BUILD_TYPE="${POSENC_BUILD_TYPE:-Release}" \
    -DMLIR_DIR="$llvm/lib/cmake/mlir" \
    -DLLVM_EXTERNAL_LIT="$llvm/bin/lit" \
    -DPython3_EXECUTABLE=/usr/bin/python3 \
    "${extra[@]}"
fi
# Two cores, and MLIR TUs need ~1 GB each: keep to the core count.
ninja -C "$build" -j "${POSENC_JOBS:-$(nproc)}" "$@"

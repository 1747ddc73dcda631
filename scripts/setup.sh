#!/usr/bin/env bash
# Installs the toolchain posenc builds with (Debian packages only).
# Idempotent and non-interactive: installs only what is missing.
set -euo pipefail

pkgs=(
  llvm-22-dev libmlir-22-dev mlir-22-tools llvm-22-tools clang-22
  cmake ninja-build ccache
  python3-dev pybind11-dev python3-numpy python3-pytest
  # pytest on every core (scripts/test.sh).
  python3-pytest-xdist
  # Hugging Face tokenizer.json patterns (\p{L}); SentencePiece is the
  # tests' reference for SentencePiece-converted tokenizers.
  python3-regex python3-sentencepiece
  # posenc.plot and bench charts.
  python3-matplotlib
  libomp-22-dev
  # The SVD of posenc-compress-kv.
  libeigen3-dev
)
# The sanitizer runtimes and libFuzzer: scripts/test.sh --sanitize, fuzz.sh.
if [[ "${POSENC_SETUP_SANITIZE:-0}" == 1 ]]; then
  pkgs+=(libclang-rt-22-dev)
fi
# The benchmark peer is large; only bench/ needs it.
if [[ "${POSENC_SETUP_BENCH:-0}" == 1 ]]; then
  # OpenBLAS: without it Debian's torch falls back to the reference BLAS.
  pkgs+=(python3-torch libopenblas0-pthread)
fi

missing=()
for p in "${pkgs[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed"; then
    missing+=("$p")
  fi
done

if ((${#missing[@]})); then
  echo "setup: installing ${missing[*]}"
  SUDO=""
  if [[ $(id -u) != 0 ]]; then SUDO=sudo; fi
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

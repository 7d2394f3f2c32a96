#!/usr/bin/env bash
# Creates .venv-reference/ with numpy and the gguf package, for the numpy fp32
# reference forward (scripts/reference/*.py). Never run in CI.
set -euo pipefail
cd "$(dirname "$0")/../.."
VENV=.venv-reference
if [ -x "$VENV/bin/python" ] && "$VENV/bin/python" -c "import gguf, numpy" 2>/dev/null; then
    echo "$VENV is ready"
    exit 0
fi
python3 -m venv "$VENV"
"$VENV/bin/pip" install --quiet --upgrade pip
"$VENV/bin/pip" install --quiet numpy gguf
"$VENV/bin/python" -c "import gguf, numpy; print('gguf and numpy', numpy.__version__)"

#!/usr/bin/env bash
# Creates .venv-reference/ with numpy, the gguf package and Hugging Face tokenizers, for
# the numpy fp32 reference forward and the tokenizer fixtures (scripts/reference/*.py).
# Never run in CI.
set -euo pipefail
cd "$(dirname "$0")/../.."
VENV=.venv-reference
if [ -x "$VENV/bin/python" ] && "$VENV/bin/python" -c "import gguf, numpy, tokenizers" 2>/dev/null; then
    echo "$VENV is ready"
    exit 0
fi
python3 -m venv "$VENV"
"$VENV/bin/pip" install --quiet --upgrade pip
"$VENV/bin/pip" install --quiet numpy gguf tokenizers
"$VENV/bin/python" -c "import gguf, numpy, tokenizers; print('gguf, numpy', numpy.__version__, 'tokenizers', tokenizers.__version__)"

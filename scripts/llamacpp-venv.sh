#!/usr/bin/env bash
# Creates .venv-llamacpp/ with llama-cpp-python (for scripts/bench_vs_llamacpp.py).
# llama-cpp-python builds llama.cpp from source: about 8 minutes on 2 cores.
# Never run in CI.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=.venv-llamacpp
VERSION=0.3.36
if [ -x "$VENV/bin/python" ] && "$VENV/bin/python" -c "import llama_cpp, numpy; assert llama_cpp.__version__ == '$VERSION'" 2>/dev/null; then
    echo "$VENV already has llama-cpp-python $VERSION"
    exit 0
fi
python3 -m venv "$VENV"
"$VENV/bin/pip" install --upgrade pip
# Two build jobs: the machine has two cores. Native CPU flags, as a local llama.cpp build would use.
CMAKE_BUILD_PARALLEL_LEVEL="${CMAKE_BUILD_PARALLEL_LEVEL:-2}" \
    "$VENV/bin/pip" install --no-cache-dir "numpy" "llama-cpp-python==$VERSION"
"$VENV/bin/python" -c "import llama_cpp; print('llama-cpp-python', llama_cpp.__version__)"

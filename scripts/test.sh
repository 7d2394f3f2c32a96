#!/usr/bin/env bash
# The test command: every Swift suite in release (numeric code is too slow in debug),
# then the official OpenAI Python client against a real `graft serve`.
set -euo pipefail
cd "$(dirname "$0")/.."
[ -f models/SmolLM2-135M-Instruct.Q4_1.gguf ] || scripts/setup.sh
swift test -c release "$@"

if [ ! -x .venv-test/bin/python ]; then
  python3 -m venv .venv-test
fi
.venv-test/bin/python -c "import openai" 2>/dev/null || .venv-test/bin/pip install --quiet openai
.venv-test/bin/python Tests/python/test_openai_client.py

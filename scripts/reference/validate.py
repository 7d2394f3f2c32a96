"""Checks the numpy fp32 forward against the PyTorch fp32 references in Tests/fixtures/:
the full logits of "The quick brown fox" (max abs difference) and greedy chat outputs.

    .venv-reference/bin/python scripts/reference/validate.py [--model PATH] [--greedy N]
"""

import argparse
import json
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from llama_numpy import NumpyLlama  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
FIXTURES = os.path.join(ROOT, "Tests", "fixtures")


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default=os.path.join(ROOT, "models", "SmolLM2-135M-Instruct.Q4_1.gguf"))
    parser.add_argument("--greedy", type=int, default=2, help="greedy fixtures to check (default 2)")
    args = parser.parse_args()

    started = time.time()
    model = NumpyLlama(args.model)
    print(f"loaded and dequantized in {time.time() - started:.1f} s", file=sys.stderr)

    reference = json.load(open(os.path.join(FIXTURES, "logits_fp32.json")))
    ids = reference["token_ids"]
    expected = np.fromfile(os.path.join(FIXTURES, "logits_fp32_all_positions_f32le.bin"), dtype="<f4")
    expected = expected.reshape(len(ids), -1)
    logits = model.forward(ids)
    max_abs = float(np.max(np.abs(logits - expected)))
    argmax_ok = [int(a) for a in logits.argmax(-1)] == reference["all_positions_argmax"]
    top10 = [int(i) for i in np.argsort(-logits[-1], kind="stable")[:10]]
    top10_ok = top10 == reference["last_position_top10"]["ids"]
    print(json.dumps({"check": "logits_fp32_all_positions", "positions": len(ids),
                      "max_abs_diff": max_abs, "argmax_equal": argmax_ok, "top10_equal": top10_ok}))

    failures = 0 if (max_abs < 1e-3 and argmax_ok and top10_ok) else 1
    lines = [json.loads(line) for line in open(os.path.join(FIXTURES, "greedy_fp32.jsonl"))]
    for case in lines[:args.greedy]:
        out = model.greedy(case["prompt_ids"], len(case["output_ids"]))
        equal = out == case["output_ids"]
        failures += 0 if equal else 1
        print(json.dumps({"check": "greedy", "prompt": case["prompt"], "tokens": len(out), "equal": equal}))
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()

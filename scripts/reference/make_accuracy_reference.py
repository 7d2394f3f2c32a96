"""Builds the accuracy corpus and its fp32 reference.

1. corpus: every bench/accuracy/texts/*.txt (original text written for this project)
   is tokenized by Graft's own tokenizer (`graft tokenize`, special tokens parsed, no
   BOS) into bench/accuracy/corpus.jsonl.
2. reference: the numpy fp32 forward (llama_numpy.py) runs each document as one
   sequence from position 0; for every position it records the top-1 next-token id
   and the margin between the top-1 and top-2 logits, in
   bench/accuracy/reference_fp32.json (no full logits, to keep it small).

    .venv-reference/bin/python scripts/reference/make_accuracy_reference.py [--graft .build/release/graft]
"""

import argparse
import glob
import hashlib
import json
import os
import subprocess
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from llama_numpy import NumpyLlama  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
ACCURACY = os.path.join(ROOT, "bench", "accuracy")


def tokenize(graft, model, text):
    out = subprocess.run([graft, "tokenize", "--model", model, text], check=True,
                         capture_output=True, text=True).stdout
    return json.loads(out)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default=os.path.join(ROOT, "models", "SmolLM2-135M-Instruct.Q4_1.gguf"))
    parser.add_argument("--graft", default=os.path.join(ROOT, ".build", "release", "graft"))
    parser.add_argument("--max-tokens", type=int, default=512, help="refuse longer documents")
    args = parser.parse_args()

    documents = []
    for path in sorted(glob.glob(os.path.join(ACCURACY, "texts", "*.txt"))):
        text = open(path, encoding="utf-8").read().rstrip("\n")
        ids = tokenize(args.graft, args.model, text)
        if len(ids) > args.max_tokens:
            sys.exit(f"{path}: {len(ids)} tokens, more than {args.max_tokens}")
        name = os.path.splitext(os.path.basename(path))[0]
        documents.append({"id": name, "text": text, "ids": ids})
        print(f"{name}: {len(ids)} tokens", file=sys.stderr)
    with open(os.path.join(ACCURACY, "corpus.jsonl"), "w", encoding="utf-8") as f:
        for d in documents:
            f.write(json.dumps(d, ensure_ascii=False) + "\n")

    started = time.time()
    model = NumpyLlama(args.model)
    print(f"loaded and dequantized in {time.time() - started:.1f} s", file=sys.stderr)
    with open(args.model, "rb") as f:
        digest = hashlib.sha256()
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    reference = {
        "model": os.path.basename(args.model),
        "model_sha256": digest.hexdigest(),
        "math": "numpy float32 forward on the gguf package's dequantized weights (scripts/reference/llama_numpy.py)",
        "positions": sum(len(d["ids"]) for d in documents),
        "documents": [],
    }
    for d in documents:
        logits = model.forward(d["ids"])
        top2 = np.argsort(-logits, axis=-1, kind="stable")[:, :2]
        rows = np.arange(len(d["ids"]))
        margin = logits[rows, top2[:, 0]] - logits[rows, top2[:, 1]]
        reference["documents"].append({
            "id": d["id"],
            "ids": d["ids"],
            "top1": [int(t) for t in top2[:, 0]],
            "margin": [round(float(m), 5) for m in margin],
        })
        print(f"{d['id']}: reference done", file=sys.stderr)
    with open(os.path.join(ACCURACY, "reference_fp32.json"), "w") as f:
        json.dump(reference, f, separators=(",", ":"))
        f.write("\n")
    print(json.dumps({"documents": len(documents), "positions": reference["positions"]}))


if __name__ == "__main__":
    main()

"""Graft against llama.cpp on the same GGUF file, on the same machine, in one run.

Rounds alternate the two systems (which one goes first swaps every round), so slow
drift and other load on a shared machine fall on both; the figures reported are
medians over rounds, and the ratios are Graft's median over llama.cpp's.

What is measured, the same way for both (2 threads each by default):
  prefill         a 512-token prompt in one forward pass, tokens/s
  decode          one greedy stream, 128 tokens after a 32-token prompt, tokens/s
  decode_batch_N  N greedy streams (24-31 token prompts, 64 tokens each) decoding
                  together, aggregate tokens/s; llama.cpp gets one llama_batch with N
                  sequence ids per step. Graft's decode_batch_32_distinct_adapters
                  (each stream with its own rank-16 LoRA) is compared with llama.cpp's
                  plain 32-stream figure.
With --accuracy, top-1 next-token agreement with the numpy fp32 reference over
bench/accuracy/reference_fp32.json, for llama.cpp (whole document as one batch) and for
Graft (`graft accuracy`); --accuracy-decode adds one token per call / `graft accuracy --decode`.

Needs .venv-llamacpp (scripts/llamacpp-venv.sh builds it, ~8 minutes) and a release
build of graft (swift build -c release --product graft). Never in CI.

    .venv-llamacpp/bin/python scripts/bench_vs_llamacpp.py [--rounds 3] [--variants default row-major int16]
        [--accuracy [--accuracy-decode]]
"""

import argparse
import ctypes
import json
import os
import statistics
import subprocess
import sys
import time

import numpy as np
import llama_cpp as L

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# Prompt text for the speed runs; any text does, only the lengths matter.
PARAGRAPH = ("The lighthouse stood at the edge of the cliff, its lamp turning slowly through the night "
             "while the sea below broke against the rocks. Ships far out on the water watched for its "
             "signal and steered away from the reef. ")


class LlamaCpp:
    """llama.cpp through llama-cpp-python's low-level (ctypes) API."""

    def __init__(self, path, threads, n_ctx, n_seq_max, n_batch=512):
        L.llama_backend_init()
        L.llama_log_set(_QUIET_LOG, ctypes.c_void_p(0))
        mparams = L.llama_model_default_params()
        self.model = L.llama_model_load_from_file(path.encode(), mparams)
        if not self.model:
            sys.exit(f"llama.cpp could not load {path}")
        self.vocab = L.llama_model_get_vocab(self.model)
        self.n_vocab = L.llama_vocab_n_tokens(self.vocab)
        cparams = L.llama_context_default_params()
        cparams.n_ctx = n_ctx
        cparams.n_batch = n_batch
        cparams.n_ubatch = n_batch
        cparams.n_seq_max = n_seq_max
        cparams.n_threads = threads
        cparams.n_threads_batch = threads
        cparams.kv_unified = True          # one cache shared by all sequences, sized n_ctx
        cparams.n_outputs_max = 0          # logits rows per ubatch: up to n_batch
        cparams.n_outputs_max_per_seq = 0  # ... for one sequence too (whole-document scoring)
        # Everything else stays llama.cpp's default (f16 KV cache, flash attention auto).
        self.ctx = L.llama_init_from_model(self.model, cparams)
        if not self.ctx:
            sys.exit("llama.cpp could not create a context")
        self.n_batch = n_batch
        self.batch = L.llama_batch_init(n_batch, 0, n_seq_max)

    def clear(self):
        L.llama_memory_clear(L.llama_get_memory(self.ctx), True)

    def tokenize(self, text):
        raw = text.encode()
        buf = (L.llama_token * (len(raw) + 8))()
        n = L.llama_tokenize(self.vocab, raw, len(raw), buf, len(buf), False, True)
        if n < 0:
            raise RuntimeError("tokenize buffer too small")
        return list(buf[:n])

    def decode(self, rows):
        """rows: (token, position, sequence id, wants logits) tuples, in one llama_batch."""
        b = self.batch
        for i, (token, pos, seq, logits) in enumerate(rows):
            b.token[i] = token
            b.pos[i] = pos
            b.n_seq_id[i] = 1
            b.seq_id[i][0] = seq
            b.logits[i] = logits
        b.n_tokens = len(rows)
        rc = L.llama_decode(self.ctx, b)
        if rc != 0:
            raise RuntimeError(f"llama_decode returned {rc}")

    def logits(self, i):
        """Logits of the i-th row of the last batch (a view valid until the next decode)."""
        return np.ctypeslib.as_array(L.llama_get_logits_ith(self.ctx, i), shape=(self.n_vocab,))

    def prompt_ids(self, tokens, variant):
        words = PARAGRAPH.split(" ")
        v = variant % len(words)
        text = " ".join(words[v:] + words[:v]) + " "
        ids = []
        while len(ids) < tokens:
            ids += self.tokenize(text)
        return ids[:tokens]

    def prefill(self, n):
        ids = self.prompt_ids(n, 0)
        self.clear()
        start = time.perf_counter()
        self.decode([(t, p, 0, p == n - 1) for p, t in enumerate(ids)])
        int(np.argmax(self.logits(n - 1)))
        return n / (time.perf_counter() - start)

    def decode_streams(self, streams, max_tokens):
        """Aggregate tokens/s of `streams` greedy sequences decoding together, from the
        first decode step after every prompt is in to the last token (as Graft counts)."""
        self.clear()
        prompts = [self.prompt_ids(24 + s % 8, s + 2) if streams > 1 else self.prompt_ids(32, 1)
                   for s in range(streams)]
        rows = [(t, p, s, p == len(ids) - 1) for s, ids in enumerate(prompts) for p, t in enumerate(ids)]
        next_tokens = [0] * streams
        for start in range(0, len(rows), self.n_batch):
            chunk = rows[start:start + self.n_batch]
            self.decode(chunk)
            for i, (_, _, s, wants_logits) in enumerate(chunk):
                if wants_logits:
                    next_tokens[s] = int(np.argmax(self.logits(i)))
        positions = [len(ids) for ids in prompts]
        start = time.perf_counter()
        for _ in range(max_tokens - 1):
            self.decode([(next_tokens[s], positions[s], s, True) for s in range(streams)])
            next_tokens = [int(np.argmax(self.logits(s))) for s in range(streams)]
            positions = [p + 1 for p in positions]
        return streams * (max_tokens - 1) / (time.perf_counter() - start)

    def top_tokens(self, ids, rows_per_call):
        """Top-1 id at every position of `ids`, run as one sequence from position 0."""
        self.clear()
        top = []
        for start in range(0, len(ids), rows_per_call):
            chunk = ids[start:start + rows_per_call]
            self.decode([(t, start + i, 0, True) for i, t in enumerate(chunk)])
            top += [int(np.argmax(self.logits(i))) for i in range(len(chunk))]
        return top


@ctypes.CFUNCTYPE(None, ctypes.c_int, ctypes.c_char_p, ctypes.c_void_p)
def _QUIET_LOG(level, text, user_data):
    if level == 4:  # GGML_LOG_LEVEL_ERROR; the rest is load chatter
        sys.stderr.write(text.decode(errors="replace"))


def llamacpp_round(llama, args):
    llama.prefill(args.prefill_tokens)            # warm-up
    result = {"prefill": statistics.median(llama.prefill(args.prefill_tokens) for _ in range(args.runs))}
    llama.decode_streams(1, 16)                   # warm-up
    result["decode"] = statistics.median(llama.decode_streams(1, args.decode_tokens) for _ in range(args.runs))
    if not args.skip_batched:
        for n in (8, 32):
            llama.decode_streams(n, 8)            # warm-up
            result[f"decode_batch_{n}"] = statistics.median(
                llama.decode_streams(n, args.decode_tokens // 2) for _ in range(args.runs))
    return result


# Graft's ways of running decode rows, each a row of the table: its command-line flags.
VARIANTS = {
    "default": [],
    "row-major": ["--layout", "row-major"],
    "int16": ["--activations", "int16"],
}


def graft_round(args, variant):
    command = [args.graft, "bench", "--model", args.model, "--threads", str(args.threads), *VARIANTS[variant],
               "--runs", str(args.runs), "--prefill-tokens", str(args.prefill_tokens),
               "--decode-tokens", str(args.decode_tokens)]
    if args.skip_batched:
        command.append("--skip-batched")
    out = subprocess.run(command, check=True, capture_output=True, text=True).stdout
    result = {}
    for line in out.splitlines():
        record = json.loads(line)
        if "tokens_per_second" in record and record["name"] != "tokenize":
            result[record["name"]] = record["tokens_per_second"]
    return result


def llamacpp_accuracy(llama, reference, near_tie, rows_per_call):
    positions = agreements = near = 0
    for d in reference["documents"]:
        top = llama.top_tokens(d["ids"], rows_per_call or len(d["ids"]))
        for got, want, margin in zip(top, d["top1"], d["margin"]):
            positions += 1
            if got == want:
                agreements += 1
            elif margin < near_tie:
                near += 1
    return {"name": "accuracy", "system": "llama.cpp", "path": "decode" if rows_per_call == 1 else "prompt",
            "positions": positions, "agreements": agreements, "agreement": agreements / positions,
            "disagreements": positions - agreements, "near_tie_margin": near_tie,
            "near_tie_disagreements": near, "other_disagreements": positions - agreements - near}


def graft_accuracy(args, decode, variant):
    command = [args.graft, "accuracy", "--model", args.model, "--threads", str(args.threads), *VARIANTS[variant],
               "--reference", args.reference, "--near-tie", str(args.near_tie)] + (["--decode"] if decode else [])
    record = json.loads(subprocess.run(command, check=True, capture_output=True, text=True).stdout)
    keep = ("name", "system", "variant", "path", "positions", "agreements", "agreement", "disagreements",
            "near_tie_margin", "near_tie_disagreements", "other_disagreements")
    record["variant"] = variant
    return {k: record[k] for k in keep}


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default=os.path.join(ROOT, "models", "SmolLM2-135M-Instruct.Q4_1.gguf"))
    parser.add_argument("--graft", default=os.path.join(ROOT, ".build", "release", "graft"))
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=3, help="alternating rounds (medians over these)")
    parser.add_argument("--runs", type=int, default=1, help="timed runs per measurement within a round")
    parser.add_argument("--prefill-tokens", type=int, default=512)
    parser.add_argument("--decode-tokens", type=int, default=128)
    parser.add_argument("--skip-batched", action="store_true", help="only prefill and single-stream decode")
    parser.add_argument("--accuracy", action="store_true", help="also top-1 agreement with the fp32 reference")
    parser.add_argument("--accuracy-only", action="store_true", help="only the accuracy figures")
    parser.add_argument("--accuracy-decode", action="store_true",
                        help="accuracy also with one token per forward pass (slow: one call per position)")
    parser.add_argument("--reference", default=os.path.join(ROOT, "bench", "accuracy", "reference_fp32.json"))
    parser.add_argument("--near-tie", type=float, default=0.01)
    parser.add_argument("--variants", nargs="+", choices=tuple(VARIANTS), default=["default"],
                        help="graft's ways of running decode rows to measure (each is a row of the table): default "
                             "(interleaved weights, f32), row-major (--layout row-major), int16 (--activations int16, "
                             "row-major weights)")
    args = parser.parse_args()
    for path in (args.model, args.graft):
        if not os.path.exists(path):
            sys.exit(f"{path} not found (models: scripts/setup.sh; graft: swift build -c release --product graft)")

    # One context for everything: 32 streams of at most 31 + 64 positions, or a
    # 512-token prompt, fit in 4096 cells.
    llama = LlamaCpp(args.model, args.threads, n_ctx=4096, n_seq_max=32, n_batch=max(512, args.prefill_tokens))
    print(f"llama-cpp-python {L.__version__}, {args.threads} threads; graft {args.graft}", file=sys.stderr)

    if not args.accuracy_only:
        graft_runs = {v: [] for v in args.variants}
        llama_runs = []
        systems = [f"graft {v}" for v in args.variants] + ["llama.cpp"]
        for r in range(args.rounds):
            order = systems if r % 2 == 0 else systems[::-1]
            for system in order:
                started = time.time()
                if system == "llama.cpp":
                    result = llamacpp_round(llama, args)
                    llama_runs.append(result)
                else:
                    variant = system.split()[-1]
                    result = graft_round(args, variant)
                    graft_runs[variant].append(result)
                print(json.dumps({"round": r + 1, "system": system, "seconds": round(time.time() - started, 1),
                                  **{k: round(v, 1) for k, v in result.items()}}), file=sys.stderr)

        def medians(runs):
            return {k: statistics.median(run[k] for run in runs) for k in runs[0]}

        m = medians(llama_runs)
        pairs = [("prefill", "prefill"), ("decode", "decode")]
        if not args.skip_batched:
            pairs += [("decode_batch_8", "decode_batch_8"), ("decode_batch_32", "decode_batch_32"),
                      ("decode_batch_32_distinct_adapters", "decode_batch_32")]
        print(f"{'measurement (tokens/s, median of ' + str(args.rounds) + ')':<62}{'graft':>10}{'llama.cpp':>11}{'ratio':>8}")
        for variant in args.variants:
            g = medians(graft_runs[variant])
            for graft_name, llama_name in pairs:
                label = graft_name if graft_name == llama_name else f"{graft_name} vs {llama_name}"
                label += f" [{variant}]"
                print(f"{label:<62}{g[graft_name]:>10.1f}{m[llama_name]:>11.1f}{g[graft_name] / m[llama_name]:>8.2f}")
        for variant in args.variants:
            g = medians(graft_runs[variant])
            for graft_name, llama_name in pairs:
                print(json.dumps({"name": graft_name, "variant": variant,
                                  "graft_tokens_per_second": round(g[graft_name], 2),
                                  "llamacpp_name": llama_name, "llamacpp_tokens_per_second": round(m[llama_name], 2),
                                  "ratio_graft_over_llamacpp": round(g[graft_name] / m[llama_name], 3),
                                  "rounds": args.rounds, "threads": args.threads}))

    if args.accuracy or args.accuracy_only:
        reference = json.load(open(args.reference))
        for decode in ((False, True) if args.accuracy_decode else (False,)):
            print(json.dumps(llamacpp_accuracy(llama, reference, args.near_tie, 1 if decode else None)))
            for variant in args.variants:
                print(json.dumps(graft_accuracy(args, decode, variant)))


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""Differential tokenizer fixtures from Hugging Face's `tokenizers` library: seeded random
texts and their ids (Tests/fixtures/tokenize_fuzz.jsonl), and seeded random id sequences
and their decoded text (Tests/fixtures/detokenize_fuzz.jsonl; byte tokens that cut UTF-8
sequences apart included, which decode to U+FFFD).

The HF tokenizer is built from the GGUF's own vocabulary, merges and control tokens,
with SmolLM2's tokenizer.json pipeline (no normalizer; pre-tokenizer Digits(individual)
then ByteLevel(add_prefix_space=False, use_regex=True); control tokens split out first).
Before writing anything it must reproduce every case of the shared reference fixture
(Tests/fixtures/tokenize.jsonl, made with SmolLM2's real tokenizer.json), so a
mis-built tokenizer cannot produce a fixture.

    scripts/reference/venv.sh
    .venv-reference/bin/python scripts/reference/make_tokenizer_reference.py \
        models/SmolLM2-135M-Instruct.Q4_1.gguf Tests/fixtures
"""
import json
import random
import sys

from gguf import GGUFReader
from tokenizers import AddedToken, Tokenizer, decoders, models, pre_tokenizers


def field_strings(reader, key):
    field = reader.fields[key]
    return [bytes(field.parts[i]).decode("utf-8") for i in field.data]


def build_tokenizer(gguf_path):
    reader = GGUFReader(gguf_path)
    tokens = field_strings(reader, "tokenizer.ggml.tokens")
    merges = [tuple(m.split(" ", 1)) for m in field_strings(reader, "tokenizer.ggml.merges")]
    types_field = reader.fields["tokenizer.ggml.token_type"]
    types = [int(types_field.parts[i][0]) for i in types_field.data]
    vocab = {t: i for i, t in enumerate(tokens)}
    tok = Tokenizer(models.BPE(vocab=vocab, merges=merges, fuse_unk=False, byte_fallback=False))
    tok.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Digits(individual_digits=True),
        pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True),
    ])
    tok.decoder = decoders.ByteLevel()
    control = [tokens[i] for i, t in enumerate(types) if t == 3]  # GGUF's CONTROL type
    tok.add_special_tokens([AddedToken(t, special=True, normalized=False) for t in control])
    return tok, control


# Pieces the texts are made of: each stresses one part of the pipeline (the split regex's
# letter, number, punctuation and whitespace classes and contractions; byte-level
# fallback for rare scalars; control-token splitting).
WORDS = ["hello", "world", "The", "quick", "brown", "fox", "Graft", "LoRA", "adapter", "tokenizer",
         "naïve", "café", "Straße", "ÉCOLE", "Ωmega", "данные", "東京", "서울", "مرحبا", "שלום", "हिन्दी", "ไทย"]
CONTRACTIONS = ["'s", "'t", "'re", "'ve", "'m", "'ll", "'d", "'S", "'T", "'RE", "'Ve", "'LL", "'D", "'x", "’s"]
SPACES = [" ", "  ", "   ", "\t", "\n", "\n\n", "\r\n", " \n", "\n ", "\u00a0", "\u3000", "\u2009", "\u200b", "\x0b", "\x0c"]
PUNCT = [".", ",", "!", "?", "...", "!!", "?!", "-", "--", "_", "__init__", "(", ")", "[]", "{}", "<", ">", "=>", "->",
         "::", ";", "\"", "'", "`", "```", "@", "#", "$", "%", "^", "&&", "||", "/", "\\", "~", "*", "**", "+="]
NUMBERS = ["0", "7", "42", "1234567", "3.14159", "1e-9", "2026-12-05", "٣٤٥", "१२३", "½", "²", "Ⅻ", "①", "0x1F"]
SYMBOLS = ["🤖", "🚀", "👍🏽", "👨‍👩‍👧‍👦", "🇫🇷", "❤️", "e\u0301", "a\u0308", "\u00e9", "™", "©", "€", "→", "∑", "𝔘𝔫𝔦", "🀄", "\ufeff"]


def random_scalar(rng):
    # Any scalar value but surrogates, weighted towards the planes text uses.
    plane = rng.choice([0x80, 0x800, 0x3000, 0x10000, 0x110000])
    while True:
        c = rng.randrange(1, plane)
        if not 0xD800 <= c <= 0xDFFF:
            return chr(c)


def random_text(rng, control):
    # (cumulative probability, piece maker)
    makers = [
        (0.25, lambda: rng.choice(WORDS)),
        (0.40, lambda: rng.choice(SPACES)),
        (0.50, lambda: rng.choice(PUNCT)),
        (0.58, lambda: rng.choice(NUMBERS)),
        (0.64, lambda: rng.choice(CONTRACTIONS)),
        (0.72, lambda: rng.choice(SYMBOLS)),
        (0.78, lambda: rng.choice(control) if rng.random() < 0.7 else rng.choice(control)[:-2]),
        (0.88, lambda: "".join(random_scalar(rng) for _ in range(rng.randrange(1, 5)))),
        (0.94, lambda: rng.choice(WORDS).upper() + rng.choice(CONTRACTIONS)),
        (1.00, lambda: rng.choice(SPACES) * rng.randrange(2, 40)),
    ]
    parts = []
    for _ in range(rng.randrange(1, 14)):
        kind = rng.random()
        parts.append(next(make for bound, make in makers if kind < bound)())
    return "".join(parts)


def random_ids(rng, vocab_size, byte_ids):
    # Mostly single-byte tokens (lead and continuation bytes in any order), some whole
    # tokens of the vocabulary, control tokens among them.
    return [rng.choice(byte_ids) if rng.random() < 0.6 else rng.randrange(vocab_size)
            for _ in range(rng.randrange(1, 12))]


def main():
    gguf_path, out_dir = sys.argv[1], sys.argv[2]
    count = int(sys.argv[3]) if len(sys.argv) > 3 else 2000
    tok, control = build_tokenizer(gguf_path)

    with open("Tests/fixtures/tokenize.jsonl") as f:
        reference = [json.loads(line) for line in f if line.strip()]
    wrong = [c for c in reference if tok.encode(c["text"], add_special_tokens=False).ids != c["ids"]]
    if wrong:
        sys.exit(f"the rebuilt tokenizer disagrees with the reference fixture on {len(wrong)} cases, e.g. {wrong[0]['text']!r}")
    print(f"rebuilt tokenizer reproduces all {len(reference)} reference cases")

    rng = random.Random(20261205)
    with open(f"{out_dir}/tokenize_fuzz.jsonl", "w") as f:
        for _ in range(count):
            text = random_text(rng, control)
            ids = tok.encode(text, add_special_tokens=False).ids
            f.write(json.dumps({"text": text, "ids": ids}, ensure_ascii=True) + "\n")
    vocab_size = tok.get_vocab_size()
    byte_ids = [i for i in range(vocab_size) if len(tok.id_to_token(i)) == 1]
    with open(f"{out_dir}/detokenize_fuzz.jsonl", "w") as f:
        for _ in range(count // 2):
            ids = random_ids(rng, vocab_size, byte_ids)
            text = tok.decode(ids, skip_special_tokens=False)
            f.write(json.dumps({"ids": ids, "text": text}, ensure_ascii=True) + "\n")
    print(f"wrote {count} texts and {count // 2} id sequences to {out_dir}")


if __name__ == "__main__":
    main()

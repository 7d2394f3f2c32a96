"""An independent fp32 llama forward pass in numpy, over a GGUF file.

Every tensor is dequantized to float32 with the `gguf` package's own dequantizer, and
the forward pass runs in float32 (or float64 with dtype=np.float64) with numpy's
matmul. Nothing is shared with Graft's Swift code: this is the yardstick Graft's
accuracy is measured against.

GGUF stores the Q and K projection rows permuted for llama.cpp's rotary layout, in
which each head's dimensions rotate in adjacent pairs (2i, 2i+1). The weights are used
as stored, with that pairing; un-permuting them and rotating halves (i, i + d/2), as
Hugging Face does, gives the same numbers.

Run with the reference venv: scripts/reference/venv.sh, then
.venv-reference/bin/python scripts/reference/validate.py
"""

import gguf
import numpy as np


def _field(reader, key):
    field = reader.fields.get(key)
    return None if field is None else field.contents()


class NumpyLlama:
    def __init__(self, path, dtype=np.float32):
        reader = gguf.GGUFReader(path)
        arch = _field(reader, "general.architecture")
        if arch != "llama":
            raise ValueError(f"architecture {arch!r} is not llama")

        def meta(name, default=None):
            value = _field(reader, f"{arch}.{name}")
            if value is None:
                if default is None:
                    raise ValueError(f"GGUF has no {arch}.{name}")
                return default
            return value

        self.dtype = dtype
        self.n_layers = int(meta("block_count"))
        self.dim = int(meta("embedding_length"))
        self.n_heads = int(meta("attention.head_count"))
        self.n_kv_heads = int(meta("attention.head_count_kv", self.n_heads))
        self.head_dim = self.dim // self.n_heads
        self.rope_dim = int(meta("rope.dimension_count", self.head_dim))
        self.rope_base = float(meta("rope.freq_base", 10000.0))
        self.eps = float(meta("attention.layer_norm_rms_epsilon"))

        tensors = {}
        for t in reader.tensors:
            # dequantize returns numpy shape (ne[1], ne[0]) = (out rows, in cols) for a matrix.
            values = gguf.quants.dequantize(t.data, t.tensor_type)
            tensors[t.name] = np.ascontiguousarray(values.reshape([int(n) for n in reversed(t.shape)]), dtype=dtype)
        self.embedding = tensors["token_embd.weight"]                     # (vocab, dim)
        self.output = tensors.get("output.weight", self.embedding)        # tied when absent
        self.output_norm = tensors["output_norm.weight"]
        self.vocab_size = self.embedding.shape[0]
        self.layers = []
        for l in range(self.n_layers):
            p = f"blk.{l}."
            self.layers.append({
                "attn_norm": tensors[p + "attn_norm.weight"],
                "q": tensors[p + "attn_q.weight"],
                "k": tensors[p + "attn_k.weight"],
                "v": tensors[p + "attn_v.weight"],
                "o": tensors[p + "attn_output.weight"],
                "ffn_norm": tensors[p + "ffn_norm.weight"],
                "gate": tensors[p + "ffn_gate.weight"],
                "up": tensors[p + "ffn_up.weight"],
                "down": tensors[p + "ffn_down.weight"],
            })

    def _rms_norm(self, x, w):
        # x: (T, dim); w: (dim)
        mean_square = np.mean(x * x, axis=-1, keepdims=True, dtype=self.dtype)
        return (x / np.sqrt(mean_square + self.dtype(self.eps))) * w

    def _rope(self, x, n_heads, positions):
        # x: (T, n_heads * head_dim); adjacent pairs (2i, 2i+1) of each head rotate by
        # positions * base^(-2i / rope_dim).
        T = x.shape[0]
        x = x.reshape(T, n_heads, self.head_dim).copy()
        half = self.rope_dim // 2
        inv_freq = 1.0 / (self.rope_base ** (np.arange(half, dtype=np.float64) * 2 / self.rope_dim))
        angles = np.outer(np.asarray(positions, dtype=np.float64), inv_freq)     # (T, half)
        cos = np.cos(angles).astype(self.dtype)[:, None, :]
        sin = np.sin(angles).astype(self.dtype)[:, None, :]
        even = x[:, :, 0:self.rope_dim:2].copy()
        odd = x[:, :, 1:self.rope_dim:2].copy()
        x[:, :, 0:self.rope_dim:2] = even * cos - odd * sin
        x[:, :, 1:self.rope_dim:2] = even * sin + odd * cos
        return x.reshape(T, n_heads * self.head_dim)

    def forward(self, ids):
        """Logits at every position of `ids`, run as one sequence from position 0. (T, vocab)"""
        T = len(ids)
        hd, nh, nkv = self.head_dim, self.n_heads, self.n_kv_heads
        group = nh // nkv
        positions = np.arange(T)
        scale = self.dtype(1.0 / np.sqrt(hd))
        causal = np.triu(np.ones((T, T), dtype=bool), k=1)
        x = self.embedding[np.asarray(ids)].copy()                          # (T, dim)
        for w in self.layers:
            n = self._rms_norm(x, w["attn_norm"])
            q = self._rope(n @ w["q"].T, nh, positions)                      # (T, nh*hd)
            k = self._rope(n @ w["k"].T, nkv, positions)                     # (T, nkv*hd)
            v = n @ w["v"].T
            q = q.reshape(T, nh, hd).transpose(1, 0, 2)                      # (nh, T, hd)
            k = k.reshape(T, nkv, hd).transpose(1, 0, 2)
            v = v.reshape(T, nkv, hd).transpose(1, 0, 2)
            k = np.repeat(k, group, axis=0)                                  # query head h reads kv head h // group
            v = np.repeat(v, group, axis=0)
            scores = (q @ k.transpose(0, 2, 1)) * scale                      # (nh, T, T)
            scores[:, causal] = -np.inf
            scores -= scores.max(axis=-1, keepdims=True)
            probs = np.exp(scores)
            probs /= probs.sum(axis=-1, keepdims=True)
            att = (probs @ v).transpose(1, 0, 2).reshape(T, nh * hd)
            x = x + att @ w["o"].T
            n = self._rms_norm(x, w["ffn_norm"])
            gate = n @ w["gate"].T
            up = n @ w["up"].T
            hidden = gate / (self.dtype(1) + np.exp(-gate)) * up            # silu(gate) * up
            x = x + hidden @ w["down"].T
        return self._rms_norm(x, self.output_norm) @ self.output.T

    def greedy(self, prompt_ids, max_tokens, stop_ids=(2,)):
        """Greedy continuation, recomputing the whole sequence each step (slow, simple)."""
        ids = list(prompt_ids)
        out = []
        for _ in range(max_tokens):
            token = int(np.argmax(self.forward(ids)[-1]))
            if token in stop_ids:
                break
            out.append(token)
            ids.append(token)
        return out

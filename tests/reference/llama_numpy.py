#!/usr/bin/env python3
"""Independent NumPy forward pass of a Llama-architecture checkpoint.

Written from the Llama papers and the Hugging Face `modeling_llama` semantics
(RMSNorm, rotate-half RoPE with rope_theta and Llama-3 frequency scaling,
grouped-query attention, SwiGLU MLP, tied or separate lm_head). It recomputes
the whole sequence every step (no KV cache), in float64, so it checks the
Rust model's cache as well as its arithmetic.

    python llama_numpy.py MODEL_DIR OUT.json --prompt "text" [--prompt ...] [--steps 8]

Writes {"cases": [{"prompt", "input_ids", "last_logits", "greedy"}]}.
"""
import argparse
import json
import math
import os
import struct

import numpy as np
from tokenizers import Tokenizer


def read_safetensors(path):
    """Parse a safetensors file by hand (8-byte header length, JSON, data)."""
    with open(path, "rb") as f:
        raw = f.read()
    (n,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8 : 8 + n])
    data = raw[8 + n :]
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        start, end = info["data_offsets"]
        buf = data[start:end]
        dt = info["dtype"]
        if dt == "F32":
            arr = np.frombuffer(buf, "<f4")
        elif dt == "F16":
            arr = np.frombuffer(buf, "<f2")
        elif dt == "BF16":
            arr = (np.frombuffer(buf, "<u2").astype(np.uint32) << 16).view("<f4")
        else:
            raise ValueError(f"{path}: {name}: unsupported dtype {dt}")
        out[name] = arr.astype(np.float64).reshape(info["shape"])
    return out


def load_weights(model_dir):
    index = os.path.join(model_dir, "model.safetensors.index.json")
    if os.path.exists(index):
        with open(index) as f:
            files = sorted(set(json.load(f)["weight_map"].values()))
    else:
        files = ["model.safetensors"]
    weights = {}
    for name in files:
        weights.update(read_safetensors(os.path.join(model_dir, name)))
    return weights


def inverse_frequencies(cfg, head_dim):
    base = cfg.get("rope_theta", 10000.0)
    inv = 1.0 / base ** (np.arange(0, head_dim, 2, dtype=np.float64) / head_dim)
    scaling = cfg.get("rope_scaling") or {}
    if scaling.get("rope_type", scaling.get("type")) != "llama3":
        return inv
    factor = scaling["factor"]
    low, high = scaling["low_freq_factor"], scaling["high_freq_factor"]
    old_ctx = scaling["original_max_position_embeddings"]
    low_wavelen, high_wavelen = old_ctx / low, old_ctx / high
    out = []
    for f in inv:
        wavelen = 2 * math.pi / f
        if wavelen < high_wavelen:
            out.append(f)  # high frequency: unchanged
        elif wavelen > low_wavelen:
            out.append(f / factor)  # low frequency: fully scaled
        else:
            smooth = (old_ctx / wavelen - low) / (high - low)
            out.append((1 - smooth) * f / factor + smooth * f)
    return np.array(out)


def rms_norm(x, w, eps):
    return x / np.sqrt(np.mean(x * x, axis=-1, keepdims=True) + eps) * w


def rotate_half(x):
    half = x.shape[-1] // 2
    return np.concatenate([-x[..., half:], x[..., :half]], axis=-1)


def forward(cfg, w, ids):
    """Logits [len(ids), vocab] for the full sequence, no cache."""
    head = w.get("lm_head.weight")
    if head is None or cfg.get("tie_word_embeddings", False):
        head = w["model.embed_tokens.weight"]
    return hidden_states(cfg, w, ids) @ head.T


def embedding(cfg, w, ids):
    """The mean of the final normalised hidden states, at unit length
    (llama.cpp's mean pooling)."""
    pooled = hidden_states(cfg, w, ids).mean(axis=0)
    return pooled / np.linalg.norm(pooled)


def hidden_states(cfg, w, ids):
    """The final normalised hidden states [len(ids), hidden], no cache."""
    hidden = cfg["hidden_size"]
    n_heads = cfg["num_attention_heads"]
    n_kv = cfg.get("num_key_value_heads", n_heads)
    head_dim = cfg.get("head_dim", hidden // n_heads)
    eps = cfg["rms_norm_eps"]
    t = len(ids)

    pos = np.arange(t, dtype=np.float64)
    freqs = np.outer(pos, inverse_frequencies(cfg, head_dim))
    emb = np.concatenate([freqs, freqs], axis=-1)  # [t, head_dim]
    cos, sin = np.cos(emb)[None], np.sin(emb)[None]  # broadcast over heads

    x = w["model.embed_tokens.weight"][ids]
    mask = np.triu(np.full((t, t), -np.inf), k=1)
    for i in range(cfg["num_hidden_layers"]):
        p = f"model.layers.{i}."
        h = rms_norm(x, w[p + "input_layernorm.weight"], eps)
        q = (h @ w[p + "self_attn.q_proj.weight"].T).reshape(t, n_heads, head_dim).transpose(1, 0, 2)
        k = (h @ w[p + "self_attn.k_proj.weight"].T).reshape(t, n_kv, head_dim).transpose(1, 0, 2)
        v = (h @ w[p + "self_attn.v_proj.weight"].T).reshape(t, n_kv, head_dim).transpose(1, 0, 2)
        q = q * cos + rotate_half(q) * sin
        k = k * cos + rotate_half(k) * sin
        group = n_heads // n_kv
        k = np.repeat(k, group, axis=0)
        v = np.repeat(v, group, axis=0)
        scores = q @ k.transpose(0, 2, 1) / math.sqrt(head_dim) + mask
        scores = scores - scores.max(axis=-1, keepdims=True)
        probs = np.exp(scores)
        probs /= probs.sum(axis=-1, keepdims=True)
        attn = (probs @ v).transpose(1, 0, 2).reshape(t, n_heads * head_dim)
        x = x + attn @ w[p + "self_attn.o_proj.weight"].T
        h = rms_norm(x, w[p + "post_attention_layernorm.weight"], eps)
        gate = h @ w[p + "mlp.gate_proj.weight"].T
        up = h @ w[p + "mlp.up_proj.weight"].T
        x = x + (gate / (1 + np.exp(-gate)) * up) @ w[p + "mlp.down_proj.weight"].T
    return rms_norm(x, w["model.norm.weight"], eps)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("model_dir")
    ap.add_argument("out")
    ap.add_argument("--prompt", action="append", required=True)
    ap.add_argument("--steps", type=int, default=8)
    args = ap.parse_args()

    with open(os.path.join(args.model_dir, "config.json")) as f:
        cfg = json.load(f)
    w = load_weights(args.model_dir)
    tok = Tokenizer.from_file(os.path.join(args.model_dir, "tokenizer.json"))
    bos = cfg.get("bos_token_id")
    cases = []
    for prompt in args.prompt:
        ids = tok.encode(prompt, add_special_tokens=False).ids
        if bos is not None:
            ids = [bos] + ids
        first = forward(cfg, w, ids)[-1]
        seq, greedy = list(ids), []
        for _ in range(args.steps):
            nxt = int(np.argmax(forward(cfg, w, seq)[-1]))
            greedy.append(nxt)
            seq.append(nxt)
        cases.append(
            {
                "prompt": prompt,
                "input_ids": ids,
                "last_logits": first.tolist(),
                "greedy": greedy,
                "embedding": embedding(cfg, w, ids).tolist(),
            }
        )
    with open(args.out, "w") as f:
        json.dump({"cases": cases}, f)


if __name__ == "__main__":
    main()

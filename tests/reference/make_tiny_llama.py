#!/usr/bin/env python3
"""Make tiny random-weight Llama checkpoints in the Hugging Face layout.

Each checkpoint is a directory with config.json, model.safetensors (or shards
plus model.safetensors.index.json), tokenizer.json and tokenizer_config.json
(with a chat template). The tokenizer is a real byte-level BPE trained here on
a small built-in corpus, so prompts tokenize like a real model's would.

With --gguf TYPE (F32, F16, Q8_0, Q4_0, Q4_1) it also writes OUT_DIR/model.gguf
through llama.cpp's own `gguf` package: matrices quantised to TYPE, Q/K rows
permuted as llama.cpp's converter does, tokenizer and chat template in the
metadata. The safetensors then hold the dequantised values, so both files
describe the same model.

With --tokenizer spm the tokenizer is SentencePiece-style BPE instead (space
mark, byte fallback; GGUF tokenizer model "llama" with scores), as Llama 2,
TinyLlama and Mistral ship.

Needs: numpy, safetensors, tokenizers (and gguf for --gguf) from PyPI.
Output is deterministic for a given --seed.

    python make_tiny_llama.py OUT_DIR [--variant gqa-llama3-tied] [--dtype f32] [--gguf Q4_0]
                              [--tokenizer bpe|spm]
"""
import argparse
import json
import math
import os

import numpy as np
from safetensors import TensorSpec, serialize_file
from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, trainers

CORPUS = [
    "The capital of France is Paris. The capital of Sweden is Stockholm.",
    "Garage AI is a community GPU network: a node in every garage.",
    "Once upon a time there was a small language model that liked to count: 1 2 3 4 5.",
    "The quick brown fox jumps over the lazy dog while the sun shines over Malmo.",
    "Hello, world! How are you today? I am fine, thank you.",
    "def add(a, b):\n    return a + b\n",
]

SPECIAL = ["<|begin_of_text|>", "<|end_of_text|>", "<|im_start|>", "<|im_end|>"]

CHAT_TEMPLATE = (
    "{{ bos_token }}{% for message in messages %}"
    "{{ '<|im_start|>' + message['role'] + '\n' + message['content'] | trim + '<|im_end|>\n' }}"
    "{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)

VARIANTS = {
    # GQA (4 heads, 2 KV heads), Llama-3 rope scaling, tied embeddings.
    "gqa-llama3-tied": dict(heads=4, kv_heads=2, tied=True, llama3=True, layers=2),
    # Plain multi-head attention, no rope scaling, separate lm_head.
    "mha-untied": dict(heads=4, kv_heads=4, tied=False, llama3=False, layers=2),
    # GQA and tied embeddings without rope scaling.
    "gqa-tied": dict(heads=4, kv_heads=2, tied=True, llama3=False, layers=2),
}


def train_tokenizer(vocab_size):
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=SPECIAL,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(CORPUS * 4, trainer=trainer)
    return tok


SPM_UNK = "<unk>"
SPM_BYTES = [f"<0x{b:02X}>" for b in range(256)]


def train_spm_tokenizer(vocab_size):
    """A SentencePiece-style BPE as Llama 2 ships it in tokenizer.json: a
    space mark prepended and spaces replaced by it, no pre-tokenizer at use,
    byte fallback to <0xXX> tokens, merges learnt within words."""
    tok = Tokenizer(models.BPE(unk_token=SPM_UNK, byte_fallback=True, fuse_unk=True))
    tok.normalizer = normalizers.Sequence(
        [normalizers.Prepend("\u2581"), normalizers.Replace(" ", "\u2581")]
    )
    tok.pre_tokenizer = pre_tokenizers.Metaspace(replacement="\u2581", prepend_scheme="never")
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=[SPM_UNK] + SPECIAL + SPM_BYTES,
        show_progress=False,
    )
    tok.train_from_iterator(CORPUS * 4, trainer=trainer)
    tok.pre_tokenizer = None
    tok.decoder = decoders.Sequence(
        [
            decoders.Replace("\u2581", " "),
            decoders.ByteFallback(),
            decoders.Fuse(),
            decoders.Strip(" ", 1, 0),
        ]
    )
    return tok


def encode(array, dtype):
    """Return (safetensors dtype name, contiguous little-endian array) of a float64 array."""
    if dtype == "f32":
        return "float32", np.ascontiguousarray(array, dtype="<f4")
    if dtype == "f16":
        return "float16", np.ascontiguousarray(array, dtype="<f2")
    if dtype == "bf16":
        bits = array.astype("<f4").view("<u4").astype(np.uint64)
        # round to nearest even on the 16 dropped bits
        rounded = (bits + 0x7FFF + ((bits >> 16) & 1)) >> 16
        return "bfloat16", np.ascontiguousarray(rounded, dtype="<u2")
    raise ValueError(dtype)


def permute_for_gguf(w, n_head):
    """llama.cpp's converter: interleave the two rotary halves of each head."""
    return (
        w.reshape(n_head, 2, w.shape[0] // n_head // 2, *w.shape[1:])
        .swapaxes(1, 2)
        .reshape(w.shape)
    )


def write_gguf(path, qtype_name, config, tensors, tok, chat_template):
    import gguf

    qtype = gguf.GGMLQuantizationType[qtype_name]
    w = gguf.GGUFWriter(path, "llama")
    w.add_block_count(config["num_hidden_layers"])
    w.add_context_length(config["max_position_embeddings"])
    w.add_embedding_length(config["hidden_size"])
    w.add_feed_forward_length(config["intermediate_size"])
    w.add_head_count(config["num_attention_heads"])
    w.add_head_count_kv(config["num_key_value_heads"])
    w.add_rope_dimension_count(config["head_dim"])
    w.add_rope_freq_base(config["rope_theta"])
    w.add_layer_norm_rms_eps(config["rms_norm_eps"])
    w.add_vocab_size(config["vocab_size"])
    vocab = tok.get_vocab()
    tokens = sorted(vocab, key=vocab.get)
    if SPM_UNK in vocab:
        # llama.cpp's "llama" vocabulary: no merges, a score per piece (BPE
        # learns pieces in merge order, so later ids score lower).
        w.add_tokenizer_model("llama")
        w.add_token_list(tokens)
        w.add_token_scores([-float(vocab[t]) for t in tokens])
        w.add_token_types(
            [2 if t == SPM_UNK else 3 if t in SPECIAL else 6 if t in SPM_BYTES else 1 for t in tokens]
        )
        w.add_add_space_prefix(True)
    else:
        merges = json.loads(tok.to_str())["model"]["merges"]
        merges = [m if isinstance(m, str) else " ".join(m) for m in merges]
        w.add_tokenizer_model("gpt2")
        w.add_tokenizer_pre("default")
        w.add_token_list(tokens)
        w.add_token_types([3 if t in SPECIAL else 1 for t in tokens])
        w.add_token_merges(merges)
    w.add_bos_token_id(config["bos_token_id"])
    w.add_eos_token_id(config["eos_token_id"])
    w.add_add_bos_token(True)
    w.add_chat_template(chat_template)
    names = {
        "model.embed_tokens.weight": "token_embd.weight",
        "model.norm.weight": "output_norm.weight",
        "lm_head.weight": "output.weight",
    }
    parts = {
        "input_layernorm": "attn_norm",
        "self_attn.q_proj": "attn_q",
        "self_attn.k_proj": "attn_k",
        "self_attn.v_proj": "attn_v",
        "self_attn.o_proj": "attn_output",
        "post_attention_layernorm": "ffn_norm",
        "mlp.gate_proj": "ffn_gate",
        "mlp.up_proj": "ffn_up",
        "mlp.down_proj": "ffn_down",
    }
    for name, value in tensors.items():
        if name in names:
            gname = names[name]
        else:
            layer, rest = name[len("model.layers.") :].split(".", 1)
            gname = f"blk.{layer}.{parts[rest[: -len('.weight')]]}.weight"
        value = value.astype(np.float32)
        if name.endswith("q_proj.weight"):
            value = permute_for_gguf(value, config["num_attention_heads"])
        elif name.endswith("k_proj.weight"):
            value = permute_for_gguf(value, config["num_key_value_heads"])
        if value.ndim == 2 and qtype_name != "F32":
            if qtype_name == "F16":
                w.add_tensor(gname, value.astype(np.float16))
            else:
                q = gguf.quants.quantize(value, qtype)
                w.add_tensor(gname, q, raw_shape=q.shape, raw_dtype=qtype)
        else:
            w.add_tensor(gname, value)
    scaling = config.get("rope_scaling")
    if scaling:
        w.add_tensor("rope_freqs.weight", llama3_freq_divisors(config, scaling))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


def llama3_freq_divisors(config, scaling):
    """Llama-3 rope scaling as llama.cpp stores it: one divisor per rotary
    frequency (`rope_freqs.weight`), so that freq / divisor equals the
    scaled frequency of the Llama 3 paper's schedule."""
    d = config["head_dim"]
    base = config["rope_theta"] ** (-np.arange(0, d, 2, dtype=np.float64) / d)
    factor = scaling["factor"]
    low, high = scaling["low_freq_factor"], scaling["high_freq_factor"]
    old = scaling["original_max_position_embeddings"]
    out = []
    for freq in base:
        wavelen = 2 * math.pi / freq
        if wavelen < old / high:
            out.append(1.0)
        elif wavelen > old / low:
            out.append(factor)
        else:
            smooth = (old / wavelen - low) / (high - low)
            out.append(1.0 / ((1 - smooth) / factor + smooth))
    return np.array(out, dtype=np.float32)


def round_trip(tensors, qtype_name):
    """The values a GGUF of this type stores, as float64."""
    import gguf

    qtype = gguf.GGMLQuantizationType[qtype_name]
    out = {}
    for name, value in tensors.items():
        value32 = value.astype(np.float32)
        if value.ndim == 2 and qtype_name == "F16":
            value32 = value32.astype(np.float16).astype(np.float32)
        elif value.ndim == 2 and qtype_name != "F32":
            value32 = gguf.quants.dequantize(gguf.quants.quantize(value32, qtype), qtype)
        out[name] = value32.astype(np.float64)
    return out


def make(out, variant, dtype, shards, seed, gguf_type=None, tokenizer="bpe"):
    spec = VARIANTS[variant]
    rng = np.random.default_rng(seed)
    os.makedirs(out, exist_ok=True)

    tok = train_spm_tokenizer(384 + 256) if tokenizer == "spm" else train_tokenizer(384)
    tok.save(os.path.join(out, "tokenizer.json"))
    vocab = tok.get_vocab_size()
    bos, eos = tok.token_to_id(SPECIAL[0]), tok.token_to_id(SPECIAL[3])
    with open(os.path.join(out, "tokenizer_config.json"), "w") as f:
        json.dump(
            {
                "bos_token": SPECIAL[0],
                "eos_token": SPECIAL[3],
                "add_bos_token": True,
                "chat_template": CHAT_TEMPLATE,
                "model_max_length": 256,
            },
            f,
            indent=2,
        )

    hidden, inter, head_dim = 64, 160, 16
    config = {
        "architectures": ["LlamaForCausalLM"],
        "model_type": "llama",
        "hidden_size": hidden,
        "intermediate_size": inter,
        "num_hidden_layers": spec["layers"],
        "num_attention_heads": spec["heads"],
        "num_key_value_heads": spec["kv_heads"],
        "head_dim": head_dim,
        "vocab_size": vocab,
        "max_position_embeddings": 256,
        "rms_norm_eps": 1e-5,
        "rope_theta": 500000.0 if spec["llama3"] else 10000.0,
        "tie_word_embeddings": spec["tied"],
        "bos_token_id": bos,
        "eos_token_id": eos,
        "hidden_act": "silu",
        "torch_dtype": {"f32": "float32", "f16": "float16", "bf16": "bfloat16"}[dtype],
    }
    if spec["llama3"]:
        config["rope_scaling"] = {
            "rope_type": "llama3",
            "factor": 8.0,
            "low_freq_factor": 1.0,
            "high_freq_factor": 4.0,
            "original_max_position_embeddings": 64,
        }
    with open(os.path.join(out, "config.json"), "w") as f:
        json.dump(config, f, indent=2)

    def normal(*shape, std=0.15):
        return rng.normal(0.0, std, size=shape)

    q_dim, kv_dim = spec["heads"] * head_dim, spec["kv_heads"] * head_dim
    tensors = {"model.embed_tokens.weight": normal(vocab, hidden, std=0.5)}
    for i in range(spec["layers"]):
        p = f"model.layers.{i}."
        tensors[p + "input_layernorm.weight"] = 1.0 + normal(hidden, std=0.1)
        tensors[p + "post_attention_layernorm.weight"] = 1.0 + normal(hidden, std=0.1)
        tensors[p + "self_attn.q_proj.weight"] = normal(q_dim, hidden)
        tensors[p + "self_attn.k_proj.weight"] = normal(kv_dim, hidden)
        tensors[p + "self_attn.v_proj.weight"] = normal(kv_dim, hidden)
        tensors[p + "self_attn.o_proj.weight"] = normal(hidden, q_dim)
        tensors[p + "mlp.gate_proj.weight"] = normal(inter, hidden)
        tensors[p + "mlp.up_proj.weight"] = normal(inter, hidden)
        tensors[p + "mlp.down_proj.weight"] = normal(hidden, inter)
    tensors["model.norm.weight"] = 1.0 + normal(hidden, std=0.1)
    if not spec["tied"]:
        tensors["lm_head.weight"] = normal(vocab, hidden, std=0.3)

    if gguf_type:
        tensors = round_trip(tensors, gguf_type)
        write_gguf(
            os.path.join(out, "model.gguf"), gguf_type, config, tensors, tok, CHAT_TEMPLATE
        )

    names = sorted(tensors)
    groups = [names[i::shards] for i in range(shards)]
    weight_map = {}
    for n, group in enumerate(groups):
        fname = (
            "model.safetensors"
            if shards == 1
            else f"model-{n + 1:05d}-of-{shards:05d}.safetensors"
        )
        flat, keep_alive = {}, []
        for name in group:
            dt, arr = encode(tensors[name], dtype)
            keep_alive.append(arr)
            flat[name] = TensorSpec(
                dtype=dt, shape=arr.shape, data_ptr=arr.ctypes.data, data_len=arr.nbytes
            )
            weight_map[name] = fname
        serialize_file(flat, os.path.join(out, fname), metadata={"format": "pt"})
    if shards > 1:
        with open(os.path.join(out, "model.safetensors.index.json"), "w") as f:
            json.dump({"metadata": {}, "weight_map": weight_map}, f, indent=2)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("out")
    ap.add_argument("--variant", choices=sorted(VARIANTS), default="gqa-llama3-tied")
    ap.add_argument("--dtype", choices=["f32", "f16", "bf16"], default="f32")
    ap.add_argument("--shards", type=int, default=1)
    ap.add_argument("--seed", type=int, default=1234)
    ap.add_argument("--gguf", choices=["F32", "F16", "Q8_0", "Q4_0", "Q4_1"])
    ap.add_argument(
        "--tokenizer",
        choices=["bpe", "spm"],
        default="bpe",
        help="byte-level BPE (GGUF 'gpt2') or SentencePiece-style BPE (GGUF 'llama')",
    )
    args = ap.parse_args()
    make(args.out, args.variant, args.dtype, args.shards, args.seed, args.gguf, args.tokenizer)


if __name__ == "__main__":
    main()

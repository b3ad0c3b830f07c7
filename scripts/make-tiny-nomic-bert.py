#!/usr/bin/env python3
"""Makes a tiny NomicBERT model directory with random weights (fixed seed), for the tests of
the nomic-bert import and embedding path: no real nomic-embed-text can be fetched here.

The weights are random but deterministic (numpy's PCG64, seed 7); the tokenizer is
all-MiniLM-L6-v2's WordPiece. tests/data/tiny-nomic-bert-llama-cpp.json holds the vectors
llama.cpp's `llama-server --embeddings` computed from the GGUF rollama wrote for this model
(see that file), so the test compares rollama's NomicBERT with llama.cpp's.

Usage: make-tiny-nomic-bert.py OUT_DIR MINILM_DIR
"""
import json
import os
import shutil
import struct
import sys

import numpy as np

EMBED, HEADS, LAYERS, INNER, VOCAB = 64, 4, 2, 128, 30528


def main() -> None:
    out, minilm = sys.argv[1], sys.argv[2]
    rng = np.random.default_rng(7)
    tensors = {}

    def normal(name, shape, scale):
        tensors[name] = (rng.standard_normal(shape) * scale).astype("<f4")

    def norm(name):
        tensors[name + ".weight"] = (1 + rng.standard_normal(EMBED) * 0.05).astype("<f4")
        tensors[name + ".bias"] = (rng.standard_normal(EMBED) * 0.05).astype("<f4")

    normal("embeddings.word_embeddings.weight", (VOCAB, EMBED), 0.5)
    normal("embeddings.token_type_embeddings.weight", (2, EMBED), 0.1)
    norm("emb_ln")
    for layer in range(LAYERS):
        p = f"encoder.layers.{layer}."
        normal(p + "attn.Wqkv.weight", (3 * EMBED, EMBED), 0.15)
        normal(p + "attn.out_proj.weight", (EMBED, EMBED), 0.15)
        normal(p + "mlp.fc11.weight", (INNER, EMBED), 0.15)
        normal(p + "mlp.fc12.weight", (INNER, EMBED), 0.15)
        normal(p + "mlp.fc2.weight", (EMBED, INNER), 0.15)
        norm(p + "norm1")
        norm(p + "norm2")

    os.makedirs(out, exist_ok=True)
    header, offset, blobs = {}, 0, []
    for name in sorted(tensors):
        data = np.ascontiguousarray(tensors[name]).tobytes()
        header[name] = {"dtype": "F32", "shape": list(tensors[name].shape),
                        "data_offsets": [offset, offset + len(data)]}
        offset += len(data)
        blobs.append(data)
    encoded = json.dumps(header).encode()
    encoded += b" " * (-len(encoded) % 8)
    with open(os.path.join(out, "model.safetensors"), "wb") as f:
        f.write(struct.pack("<Q", len(encoded)))
        f.write(encoded)
        for data in blobs:
            f.write(data)
    config = {
        "architectures": ["NomicBertModel"], "model_type": "nomic_bert", "n_embd": EMBED,
        "n_head": HEADS, "n_layer": LAYERS, "n_inner": INNER, "n_positions": 2048,
        "vocab_size": VOCAB, "type_vocab_size": 2, "layer_norm_epsilon": 1e-12,
        "rotary_emb_base": 1000, "rotary_emb_fraction": 1.0, "rotary_emb_interleaved": False,
        "rotary_emb_scale_base": None, "activation_function": "swiglu", "qkv_proj_bias": False,
        "mlp_fc1_bias": False, "mlp_fc2_bias": False, "prenorm": False, "causal": False,
    }
    with open(os.path.join(out, "config.json"), "w") as f:
        json.dump(config, f, indent=1)
    for name in ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json"):
        shutil.copy(os.path.join(minilm, name), os.path.join(out, name))


if __name__ == "__main__":
    main()

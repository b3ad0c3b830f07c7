#!/usr/bin/env python3
"""Writes a llama-architecture GGUF with 1B-class shapes for speed work.

SmolLM2-135M's small matrices exaggerate per-operation overheads, and no model hub is
reachable, so the benchmarks also run a model made here:
  - the shapes of a 1B model: hidden 2048, 16 layers, 32 query heads and 8 KV heads, FFN 8192
    (each can be changed, for a quick small run);
  - random F16 weights (normal, std 0.02; fixed seed), F32 norms;
  - the tokenizer and chat template of the SmolLM2 GGUF, so prompts tokenize as a real
    model's do (its 49152-token vocabulary sets the embedding's size);
  - optionally quantized with llama.cpp's `llama-quantize` (Q4_K_M by default), the way
    Ollama's models are shipped.
The weights are random, so the text is noise; the work per token is a real 1B model's.

Usage (with the PyPI `gguf` and `numpy` packages, e.g. the venv scripts/fetch-test-models.sh
makes in ~/.cache/rollama/data-venv):
  make-bench-model.py SMOLLM2_GGUF OUT.gguf [--quantize LLAMA_QUANTIZE [--type Q4_K_M]]
                      [--hidden 2048] [--layers 16] [--heads 32] [--kv-heads 8] [--ffn 8192]
With --quantize, OUT.gguf is the quantized model and the F16 one is removed.
"""
import argparse
import os
import subprocess
import sys

import numpy as np
from gguf import GGUFReader, GGUFValueType, GGUFWriter, LlamaFileType

# Metadata copied from the SmolLM2 GGUF as it is: the tokenizer and the chat template.
COPIED_PREFIXES = ("tokenizer.",)


def field_value(field):
    """A reader field as the Python value the writer takes."""
    kind = field.types[0]
    if kind == GGUFValueType.ARRAY:
        element = field.types[-1]
        if element == GGUFValueType.STRING:
            return [bytes(field.parts[i]).decode("utf-8") for i in field.data]
        return [field.parts[i].tolist()[0] for i in field.data]
    if kind == GGUFValueType.STRING:
        return bytes(field.parts[field.data[0]]).decode("utf-8")
    return field.parts[field.data[0]].tolist()[0]


def copy_tokenizer(reader: GGUFReader, writer: GGUFWriter) -> int:
    """Copies the tokenizer and chat template; returns the vocabulary size."""
    vocabulary = 0
    for name, field in reader.fields.items():
        if not name.startswith(COPIED_PREFIXES):
            continue
        value = field_value(field)
        kind = field.types[0]
        if kind == GGUFValueType.ARRAY:
            writer.add_array(name, value)
            if name == "tokenizer.ggml.tokens":
                vocabulary = len(value)
        elif kind == GGUFValueType.STRING:
            writer.add_string(name, value)
        elif kind == GGUFValueType.BOOL:
            writer.add_bool(name, bool(value))
        elif kind == GGUFValueType.UINT32:
            writer.add_uint32(name, int(value))
        elif kind == GGUFValueType.INT32:
            writer.add_int32(name, int(value))
        elif kind == GGUFValueType.FLOAT32:
            writer.add_float32(name, float(value))
        else:
            sys.exit(f"unexpected metadata type {kind} for {name}")
    if vocabulary == 0:
        sys.exit("the source GGUF has no tokenizer.ggml.tokens")
    return vocabulary


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("source", help="the SmolLM2 GGUF (tokenizer and chat template)")
    parser.add_argument("out", help="the GGUF to write")
    parser.add_argument("--hidden", type=int, default=2048)
    parser.add_argument("--layers", type=int, default=16)
    parser.add_argument("--heads", type=int, default=32)
    parser.add_argument("--kv-heads", type=int, default=8)
    parser.add_argument("--ffn", type=int, default=8192)
    parser.add_argument("--context", type=int, default=8192)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--quantize", help="llama-quantize binary: quantize the result")
    parser.add_argument("--type", default="Q4_K_M", help="llama-quantize's type name")
    args = parser.parse_args()
    if args.hidden % args.heads or args.heads % args.kv_heads:
        sys.exit("hidden must divide into heads, and heads into KV heads")
    head_dim = args.hidden // args.heads
    kv_width = head_dim * args.kv_heads

    reader = GGUFReader(args.source)
    f16_path = args.out + ".f16" if args.quantize else args.out
    writer = GGUFWriter(f16_path, "llama")
    writer.add_name(f"rollama-bench-{args.layers}x{args.hidden}")
    writer.add_file_type(LlamaFileType.MOSTLY_F16)
    writer.add_context_length(args.context)
    writer.add_embedding_length(args.hidden)
    writer.add_block_count(args.layers)
    writer.add_feed_forward_length(args.ffn)
    writer.add_head_count(args.heads)
    writer.add_head_count_kv(args.kv_heads)
    writer.add_rope_dimension_count(head_dim)
    writer.add_rope_freq_base(100000.0)
    writer.add_layer_norm_rms_eps(1e-5)
    vocabulary = copy_tokenizer(reader, writer)
    writer.add_vocab_size(vocabulary)

    rng = np.random.default_rng(args.seed)

    def matrix(rows: int, cols: int) -> np.ndarray:
        # GGUF's numpy shape is (rows, columns) = (outputs, inputs).
        return (rng.standard_normal((rows, cols), dtype=np.float32) * 0.02).astype(np.float16)

    def norm() -> np.ndarray:
        return np.ones(args.hidden, dtype=np.float32)

    # The output projection is tied to the embedding, as in SmolLM2 and Llama 3.2 1B.
    writer.add_tensor("token_embd.weight", matrix(vocabulary, args.hidden))
    for layer in range(args.layers):
        prefix = f"blk.{layer}."
        writer.add_tensor(prefix + "attn_norm.weight", norm())
        writer.add_tensor(prefix + "attn_q.weight", matrix(args.hidden, args.hidden))
        writer.add_tensor(prefix + "attn_k.weight", matrix(kv_width, args.hidden))
        writer.add_tensor(prefix + "attn_v.weight", matrix(kv_width, args.hidden))
        writer.add_tensor(prefix + "attn_output.weight", matrix(args.hidden, args.hidden))
        writer.add_tensor(prefix + "ffn_norm.weight", norm())
        writer.add_tensor(prefix + "ffn_gate.weight", matrix(args.ffn, args.hidden))
        writer.add_tensor(prefix + "ffn_up.weight", matrix(args.ffn, args.hidden))
        writer.add_tensor(prefix + "ffn_down.weight", matrix(args.hidden, args.ffn))
    writer.add_tensor("output_norm.weight", norm())

    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()

    if args.quantize:
        subprocess.run([args.quantize, f16_path, args.out, args.type], check=True,
                       stdout=subprocess.DEVNULL)
        os.remove(f16_path)
    size = os.path.getsize(args.out)
    print(f"wrote {args.out} ({size / 1e9:.2f} GB)", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env python3
"""Makes a vision projector (mmproj GGUF) with random weights for the image tests.

No vision model ships in a Python package, so the tests pair the real Gemma 3 270M text model
with a projector of llama.cpp's type `gemma3` (a SigLIP vision tower, then average pooling, an
RMS norm and a projection to the text model's embedding width), written in the layout
llama.cpp's converter gives mmproj files: `general.architecture = clip`, `clip.*` keys and
`v.*` / `mm.*` tensors (tools/mtmd/clip.cpp, clip-impl.h; graph in models/siglip.cpp).

The vision settings are small, so that encoding an image costs milliseconds on a CPU:
two blocks of width 64, and an image side of IMAGE pixels cut into PATCH-pixel patches. mtmd
scales every image to IMAGE x IMAGE, then pools 4x4 patches into one embedding (its default
for gemma3), so an image becomes ((IMAGE / PATCH) / 4)^2 positions: 64 with the defaults.
Answers are noise; the weights only have to make different images give different embeddings.

usage: make-test-projector.py OUT.gguf [--text-embd 640] [--image 256] [--patch 8] [--seed 7]
"""

import argparse

import numpy as np
from gguf import GGMLQuantizationType as QT
from gguf import GGUFWriter


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("out")
    parser.add_argument("--text-embd", type=int, default=640, help="the text model's width")
    parser.add_argument("--image", type=int, default=256)
    parser.add_argument("--patch", type=int, default=8)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    side = args.image // args.patch
    if args.image % args.patch or side % 4:
        parser.error("the image side must be a multiple of 4 patches")

    embd, ff, heads, blocks = 64, 128, 4, 2
    rng = np.random.default_rng(args.seed)

    def normal(shape, scale):
        # gguf-py takes numpy shapes, the reverse of ggml's ne order given here.
        return (rng.standard_normal(tuple(reversed(shape))) * scale).astype(np.float32)

    def ones(n, jitter=0.05):
        return (1.0 + rng.standard_normal(n) * jitter).astype(np.float32)

    w = GGUFWriter(args.out, "clip")
    w.add_string("general.name", "rollama test projector (gemma3, random weights)")
    w.add_string("clip.projector_type", "gemma3")
    w.add_bool("clip.has_vision_encoder", True)
    w.add_bool("clip.use_gelu", True)
    w.add_uint32("clip.vision.block_count", blocks)
    w.add_uint32("clip.vision.embedding_length", embd)
    w.add_uint32("clip.vision.feed_forward_length", ff)
    w.add_uint32("clip.vision.image_size", args.image)
    w.add_uint32("clip.vision.patch_size", args.patch)
    w.add_uint32("clip.vision.attention.head_count", heads)
    w.add_float32("clip.vision.attention.layer_norm_epsilon", 1e-6)
    w.add_uint32("clip.vision.projection_dim", args.text_embd)
    w.add_array("clip.vision.image_mean", [0.5, 0.5, 0.5])
    w.add_array("clip.vision.image_std", [0.5, 0.5, 0.5])

    def add(name, array, qtype=QT.F32):
        if qtype == QT.F16:
            array = array.astype(np.float16)
        w.add_tensor(name, array, raw_dtype=qtype)

    # Scales keep activations near unit size through the blocks, so that pooled embeddings
    # still differ from image to image after the final RMS norm.
    add("v.patch_embd.weight", normal([args.patch, args.patch, 3, embd], 0.2), QT.F16)
    add("v.patch_embd.bias", normal([embd], 0.02))
    # F32: an F16 position embedding aborts ggml's CPU add when an image is encoded.
    add("v.position_embd.weight", normal([embd, side * side], 0.1))
    for b in range(blocks):
        p = f"v.blk.{b}."
        add(p + "ln1.weight", ones(embd))
        add(p + "ln1.bias", normal([embd], 0.02))
        for t in ("attn_q", "attn_k", "attn_v", "attn_out"):
            add(p + t + ".weight", normal([embd, embd], embd ** -0.5), QT.F16)
            add(p + t + ".bias", normal([embd], 0.02))
        add(p + "ln2.weight", ones(embd))
        add(p + "ln2.bias", normal([embd], 0.02))
        # HF's fc1 (embd -> ff) is ffn_down on the clip side: clip.cpp swaps up and down back
        # for gemma3, whose ffn_down has ne[0] == embd.
        add(p + "ffn_down.weight", normal([embd, ff], embd ** -0.5), QT.F16)
        add(p + "ffn_down.bias", normal([ff], 0.02))
        add(p + "ffn_up.weight", normal([ff, embd], ff ** -0.5), QT.F16)
        add(p + "ffn_up.bias", normal([embd], 0.02))
    add("v.post_ln.weight", ones(embd))
    add("v.post_ln.bias", normal([embd], 0.02))
    # clip.cpp multiplies transpose(input_projection) with the pooled tokens: [text, embd].
    add("mm.input_projection.weight", normal([args.text_embd, embd], 0.25), QT.F16)
    add("mm.soft_emb_norm.weight", ones(embd))

    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


if __name__ == "__main__":
    main()

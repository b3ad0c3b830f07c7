#!/usr/bin/env python3
"""Makes the GGUF pairs for the tests of rollama's load-time translation of Ollama-layout files.

Ollama's registry serves GGUFs written by Ollama's own converter, whose key names, tensor names
and extra contents differ from what llama.cpp's converter writes ("llama.cpp layout").
rollama translates such a file back to the llama.cpp layout when it loads it; the tests load
each pair below and compare the greedy output (embeddinggemma: the embedding) of both files.

Every "-original" file is in the llama.cpp layout and loads in stock llama.cpp (the vendored
version). Every "-ollama" file is made FROM its original: the same tensor bytes and types, only
key names/values, tensor names and extra (hidden) tensors or rows (gemma3n's token_embd)
differ. The layouts follow Ollama's converters (ollama/ollama `convert/convert_*.go`) and the
inverse of the load-time fixes in Ollama's llama.cpp compatibility layer (ollama/ollama
`llama/compat/llama-ollama-compat.cpp`).

Files written to OUT_DIR:
- gemma3-1b-style.gguf: the real Gemma 3 270M, tensor for tensor (same bytes, same types),
  with the metadata of Ollama's Gemma 3 1B (convert_gemma3.go; compat `handle_gemma3`): no
  `gemma3.attention.layer_norm_rms_epsilon`, `gemma3.rope.freq_base` renamed
  `gemma3.rope.global.freq_base`, `gemma3.rope.local.freq_base` = 10000, no chat template.
- gemma3-4b-style.gguf: the same 270M in the layout of Ollama's Gemma 3 4B/12B/27B
  (convert_gemma3.go; compat `handle_gemma3` and `handle_gemma3_clip`): no rms-eps key, no
  `gemma3.rope.freq_base`, `tokenizer.ggml.add_padding_token`, 64 extra tokens in the
  tokenizer arrays (longer than token_embd's rows), and an embedded random SigLIP vision tower
  plus projector (`v.*`, `mm.*`, `gemma3.vision.*`, `gemma3.mm.tokens_per_image`) whose shapes
  are those llama.cpp's mtmd clip loader expects for projector type gemma3 after the compat
  renames.
- gemma3-mmproj-reference.txt: the clip-side tensor names, shapes and keys of that tower.
- llama3-{original,ollama}.gguf: llama arch with a 128256-token Llama 3 style vocabulary
  (SmolLM2's BPE plus reserved/special tokens). Ollama layout (convert_llama.go): no
  `tokenizer.ggml.pre`, `tokenizer.ggml.eos_token_id` = 128001 (<|end_of_text|>).
- gpt-oss-{original,ollama}.gguf: llama.cpp's `gpt-oss` (MXFP4 experts). Ollama layout
  (convert_gptoss.go; compat `handle_gptoss`): arch `gptoss` and `gptoss.*` keys, no
  `expert_feed_forward_length` and no `rope.scaling.type`, `tokenizer.ggml.pre` = "default",
  tensors `.attn_out`, `.attn_sinks` (no `.weight`) and `.ffn_norm` for the post-attention norm.
- qwen25vl-{original,ollama}.gguf: llama.cpp's `qwen2vl` text model. Ollama layout
  (convert_qwen25vl.go; compat `handle_qwen25vl`): arch `qwen25vl`, `qwen25vl.*` keys,
  `rope.mrope_section` (3 values) instead of `rope.dimension_sections` (4), plus the embedded
  vision tower of qwen25vl-mmproj-original.gguf (`v.*`, `qwen25vl.vision.*`).
- qwen3vl-{original,ollama}.gguf: llama.cpp's `qwen3vl` text model (mrope [24,20,20,0],
  head_dim 128, 3 deepstack layers). Ollama layout (convert_qwen3vl.go; compat
  `handle_qwen3vl`): no `rope.dimension_sections`, no `n_deepstack_layers`,
  `qwen3vl.vision.deepstack_visual_indexes` (3 entries), plus the embedded vision tower of
  qwen3vl-mmproj-original.gguf.
- mistral3-{original,ollama}.gguf: llama.cpp's `mistral3` with YaRN and attention temperature
  scaling at non-default values. Ollama layout (convert_mistral.go; compat `handle_mistral3`):
  `rope.scaling.beta_fast`/`beta_slow`/`mscale_all_dim` and `rope.scaling_beta`, no
  `tokenizer.ggml.pre`, plus the embedded Pixtral tower of mistral3-mmproj-original.gguf.
- llama4-{original,ollama}.gguf: llama.cpp's `llama4` (4 layers: chunked attention with rope
  on layers 0-2, no rope and the attention temperature on layer 3; dense FFN on layers 0 and
  2, MoE with a shared expert on 1 and 3), SmolLM2's tokenizer and a short Llama 4 style chat
  template. Ollama layout (convert_llama4.go; compat `handle_llama4`): the same text model
  plus the embedded tower of llama4-mmproj-original.gguf (`v.*`, `mm.*`, `llama4.vision.*`).
- {qwen25vl,qwen3vl,mistral3,llama4}-mmproj-original.gguf: tiny random projectors in
  llama.cpp's mmproj layout (`general.architecture` = clip; projector types qwen2.5vl_merger,
  qwen3vl_merger, pixtral, llama4) whose output width is the text model's input width. Each
  -ollama file embeds that same tower made by the exact inverse of Ollama's clip-side handler
  (`handle_qwen25vl_clip`, `handle_qwen3vl_clip`, `handle_mistral3_clip`,
  `handle_llama4_clip`): the handler's translation of the -ollama file gives the projector's
  tensors bit for bit and its clip keys (the original carries every clip key the handler
  writes, with the handler's values). Hence every F32 tensor the handler makes from an F16
  one (promoted patch/position embeddings, qwen3vl's merged QKV and split patch embedding)
  holds F16-exact values; mistral3's `v.token_embd.img_break` is zeros (the handler
  synthesizes it zero-filled; the -ollama file has no such tensor).
- vision-reference.txt: per family, the Ollama -> clip names, types and ne of every tower
  tensor, the keys, the byte transforms with their formulas and the handler's steps.
- gemma3n-{original,ollama}.gguf: llama.cpp's `gemma3n` text model (2 layers, altup, laurel,
  per-layer token embeddings [512, 262144] in TQ1_0) with Gemma 3 270M's tokenizer. Ollama
  layout (convert_gemma3n.go; compat `handle_gemma3n`): token_embd.weight and the tokenizer
  arrays hold 256 multimodal tokens more (262400; token_embd's first 262144 rows are the same
  bytes), `<unusedN>` tokens typed CONTROL (3) where the original has what the handler writes
  (NORMAL, 1; byte tokens are BYTE, 6, in both), `tokenizer.ggml.eos_token_ids` = [1, 106]
  in both, `tokenizer.ggml.model` = llama in both.
- embeddinggemma-{original,ollama}.gguf: llama.cpp's `gemma-embedding` (6 non-causal gemma3
  layers, mean pooling, sentence-transformers dense_2 64->128 and dense_3 128->64) with Gemma 3
  270M's tokenizer. Ollama layout (compat `handle_embeddinggemma`): arch `gemma3` and
  `gemma3.*` keys, no dense_*_feat_* and no rope.freq_base_swa keys, plus
  `gemma3.attention.sliding_window_pattern` and `gemma3.attention.causal` (removed by the
  handler); tensors `dense.0.weight`, `dense.1.weight` and `norm.weight`.
- text-reference.txt: for gemma3n and embeddinggemma, every key and tensor of the -ollama file
  against the original, the handler's steps and the llama-server checks below.

The random models are tiny (embedding 64, 2-6 layers): F16 matrices, F32 norms and biases,
Q8_0 token embeddings/output (to keep the big-vocabulary files small; gemma3n: a Q4_0 token
embedding and TQ1_0 per-layer embeddings, whose width 256 per layer is fixed in this llama.cpp)
and MXFP4 experts for gpt-oss. The weights are deterministic (numpy PCG64, one fixed seed per
family) and the writer's output depends only on its inputs, so a rerun writes identical bytes.
The tokenizer of the random models is SmolLM2's (gpt2-style BPE, 49152 tokens), except for
gemma3n and embeddinggemma (Gemma 3 270M's, 262144 tokens). Files are written as `NAME.tmp`
and renamed when all are done.

What a wrong translation changes, checked with the vendored llama-server (greedy, "-c 256"):
- pre-tokenizer ("llama-bpe", "gpt-4o", "tekken" vs "default"): "Hello" tokenizes the same
  under all of them; "I've got 12345 apples!!" does not (it splits "'ve" differently);
- gpt-oss: a missing `rope.scaling.type` means "linear" in llama.cpp, which changes the
  output of "Hello" from the 4th generated token on;
- mistral3: resetting any of yarn_beta_fast, yarn_beta_slow, yarn_log_multiplier or
  temperature_scale to llama.cpp's default changes the first 8 tokens generated after "Hello";
- qwen25vl/qwen3vl: for text alone the deepstack count does not change the output (the
  deepstack inputs are zero), nor should M-RoPE sections that cover all rotary pairs (a text
  token's position components are all equal); the loader refuses a file without
  `rope.dimension_sections`, and qwen25vl's arch name is unknown to it.
Note that this llama.cpp's qwen2vl loader does not read `attention.layer_norm_rms_epsilon`
(its RMS norm eps is 0).

The vision towers, checked with the vendored llama-server ("-c 1024 -np 1 -t 2 --jinja", a
32x32 24-bit BMP as a data: URL beside the text "What is in this picture?"): each original
plus its mmproj counts the image in `usage.prompt_tokens` and answers deterministically (greedy,
8 tokens); the image changes the answer when a translation leaves mistral3's vision Q/K in HF
order, merges qwen3vl's QKV in another order, packs its patch embedding as c_in*E + c_out,
keeps the deepstack adapters at their list positions instead of
`deepstack_visual_indexes[X]`, or gives mistral3 a non-zero img_break; swapping the two
temporal patch slices does not change anything (a still image feeds both). qwen25vl's
n_wa_pattern must leave a windowed block: n_wa_pattern 1 (fullatt_block_indexes [0]) aborts
the first image encode ("Failed to get tensor window_mask"), so the tower has 2 blocks and
fullatt_block_indexes [1]. This llama.cpp runs llama4 (without `attention.sliding_window`:
chunked attention, no rope on every 4th layer) only with 4 layers or more: with no no-rope
layer the unused temperature input aborts the first decode. Stock llama-server refuses every
-ollama file as a text model.

gemma3n and embeddinggemma, checked with the vendored llama-server ("-c 256 -np 1 -t 1"):
gemma3n-original answers "I've got 12345 apples!!" (/completion, n_predict 8, temperature 0)
deterministically; the prompt "I've got 12345 apples!! <unused5>" tokenizes and answers
differently when the `<unusedN>` types are left CONTROL, so the type rewrite is observable.
embeddinggemma-original ("--embedding --pooling mean") gives a deterministic /v1/embeddings
vector for "I've got 12345 apples!!" (first values in text-reference.txt), a different one
without the dense layers. This llama.cpp needs a full-attention layer in gemma-embedding (6
layers with the default pattern 6): with every layer sliding the first encode aborts. Stock
llama-server refuses both -ollama files (per_layer_token_embd "has wrong shape";
"tensor 'output_norm.weight' not found").

Usage: make-ollama-layout.py OUT_DIR SMOLLM2_GGUF GEMMA3_270M_GGUF
"""
import os
import sys

import numpy as np
import gguf
from gguf import GGMLQuantizationType as QT
from gguf import GGUFValueType as VT

# Token types (llama.cpp's llama_token_type).
TT_NORMAL, TT_CONTROL, TT_USER_DEFINED, TT_BYTE = 1, 3, 4, 6


class Model:
    """A GGUF in memory: ordered keys (name -> (type, value, array item type)) and ordered
    tensors (name -> (ggml type, ne, data)); `ne` is ggml's order (ne[0] is the row length)."""

    def __init__(self, arch):
        self.arch = arch
        self.kv = {}
        self.tensors = {}

    def copy(self):
        other = Model(self.arch)
        other.kv = dict(self.kv)
        other.tensors = dict(self.tensors)
        return other

    # keys
    def set(self, key, vtype, value, sub=None):
        self.kv[key] = (vtype, value, sub)

    def u32(self, key, value):
        self.set(key, VT.UINT32, int(value))

    def f32(self, key, value):
        self.set(key, VT.FLOAT32, float(value))

    def boolean(self, key, value):
        self.set(key, VT.BOOL, bool(value))

    def string(self, key, value):
        self.set(key, VT.STRING, value.encode() if isinstance(value, str) else value)

    def arr(self, key, sub, values):
        self.set(key, VT.ARRAY, list(values), sub)

    def drop(self, key):
        del self.kv[key]

    def rename(self, old, new):
        """Renames a key in place (same position)."""
        assert old in self.kv and new not in self.kv, (old, new)
        self.kv = {(new if k == old else k): v for k, v in self.kv.items()}

    def rename_prefix(self, old, new):
        self.kv = {(new + k[len(old):] if k.startswith(old) else k): v
                   for k, v in self.kv.items()}

    # tensors
    def add(self, name, qtype, ne, data):
        assert name not in self.tensors, name
        self.tensors[name] = (qtype, tuple(int(n) for n in ne), data)

    def rename_tensors(self, old, new):
        """Replaces the substring `old` by `new` in every tensor name."""
        self.tensors = {k.replace(old, new): v for k, v in self.tensors.items()}

    def rename_tensor(self, old, new):
        """Renames one tensor in place (same position)."""
        assert old in self.tensors and new not in self.tensors, (old, new)
        self.tensors = {(new if k == old else k): v for k, v in self.tensors.items()}


def load(path):
    """Reads a GGUF into a Model; tensor data stays memory-mapped."""
    reader = gguf.GGUFReader(path)
    arch = bytes(reader.fields["general.architecture"].parts[-1]).decode()
    model = Model(arch)
    for key, field in reader.fields.items():
        if key.startswith("GGUF.") or key == "general.architecture":
            continue
        vtype = field.types[0]
        if vtype == VT.ARRAY:
            assert len(field.types) == 2, f"nested array {key}"
            sub = field.types[1]
            if sub == VT.STRING:
                values = [bytes(field.parts[i]) for i in field.data]
            else:
                values = np.concatenate([field.parts[i] for i in field.data]).tolist()
            model.set(key, VT.ARRAY, values, sub)
        elif vtype == VT.STRING:
            model.set(key, VT.STRING, bytes(field.parts[field.data[0]]))
        else:
            model.set(key, vtype, field.parts[field.data[0]][0].item())
    for t in reader.tensors:
        model.add(t.name, QT(t.tensor_type), [int(n) for n in t.shape], t.data)
    return model


def write(path, model):
    writer = gguf.GGUFWriter(path, model.arch)
    for key, (vtype, value, sub) in model.kv.items():
        writer.add_key_value(key, value, vtype, sub_type=sub)
    for name, (qtype, ne, data) in model.tensors.items():
        block, type_size = gguf.GGML_QUANT_SIZES[qtype]
        raw = np.ascontiguousarray(data).view(np.uint8).reshape(-1)
        assert ne[0] % block == 0, name
        assert raw.nbytes == int(np.prod(ne)) // block * type_size, (name, ne, raw.nbytes)
        # the writer takes the numpy shape with the last axis in bytes for raw types
        writer.add_tensor(name, raw.reshape(*reversed(ne[1:]), -1), raw_dtype=qtype)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()


class Weights:
    """Seeded random tensors."""

    def __init__(self, seed):
        self.rng = np.random.default_rng(seed)

    def normal(self, ne, scale):
        return self.rng.standard_normal(tuple(reversed(ne)), dtype=np.float32) * np.float32(scale)

    def mat(self, ne, scale=None):
        """F16 matrix, by default with 1/sqrt(fan_in) scale (fan_in = ne[0])."""
        scale = 1.0 / np.sqrt(ne[0]) if scale is None else scale
        return QT.F16, ne, self.normal(ne, scale).astype(np.float16)

    def quantized(self, qtype, ne, scale, chunk_rows=1 << 14):
        """A `qtype` (Q4_0, TQ1_0, ...) matrix of normal values, quantized a chunk of rows at a
        time (the per-layer token embeddings have 262144 rows of 512)."""
        rows = int(np.prod(ne[1:]))
        parts = []
        for start in range(0, rows, chunk_rows):
            n = min(chunk_rows, rows - start)
            parts.append(gguf.quants.quantize(self.normal([ne[0], n], scale), qtype))
        return qtype, ne, np.concatenate(parts)

    def q8_0(self, ne, scale, zero_rows_from=None):
        """Q8_0 matrix (token embeddings and output: half the size of F16); rows from
        `zero_rows_from` on are zero."""
        data = self.normal(ne, scale)
        if zero_rows_from is not None:
            data[zero_rows_from:] = 0
        return QT.Q8_0, ne, gguf.quants.quantize(data, QT.Q8_0)

    def vec(self, ne, scale=0.05, center=0.0):
        """F32 tensor (norms, biases)."""
        return QT.F32, ne, self.normal(ne, scale) + np.float32(center)

    def norm(self, n):
        return self.vec([n], 0.1, 1.0)

    def mxfp4(self, ne):
        """MXFP4 (ggml type 39) tensor: per 32 values one E8M0 scale byte, then 16 bytes of
        4-bit E2M1 codes. Scale bytes 121..123 make the values (|v| <= 6 * 2^(e-127)) about
        the size of 1/sqrt(fan_in) weights for ne[0] = 64."""
        assert ne[0] % 32 == 0
        rows = int(np.prod(ne[1:]))
        blocks = ne[0] // 32
        data = np.empty((rows, blocks, 17), dtype=np.uint8)
        data[:, :, 0] = self.rng.integers(121, 124, size=(rows, blocks), dtype=np.uint8)
        data[:, :, 1:] = self.rng.integers(0, 256, size=(rows, blocks, 16), dtype=np.uint8)
        return QT.MXFP4, ne, data


def put(model, name, tensor):
    model.add(name, *tensor)


# --------------------------------------------------------------------------------------------
# tokenizers

def smollm2_tokenizer(smol, pre):
    """SmolLM2's tokenizer keys, with `tokenizer.ggml.pre` = pre (None: left out)."""
    out = {}
    for key in ("tokenizer.ggml.model", "tokenizer.ggml.pre", "tokenizer.ggml.tokens",
                "tokenizer.ggml.token_type", "tokenizer.ggml.merges",
                "tokenizer.ggml.bos_token_id", "tokenizer.ggml.eos_token_id",
                "tokenizer.ggml.unknown_token_id", "tokenizer.ggml.padding_token_id",
                "tokenizer.ggml.add_bos_token", "tokenizer.ggml.add_space_prefix",
                "tokenizer.chat_template"):
        if key == "tokenizer.ggml.pre":
            if pre is not None:
                out[key] = (VT.STRING, pre.encode(), None)
        else:
            out[key] = smol.kv[key]
    return out


LLAMA3_VOCAB = 128256
LLAMA3_SPECIAL = {
    128000: "<|begin_of_text|>",
    128001: "<|end_of_text|>",
    128006: "<|start_header_id|>",
    128007: "<|end_header_id|>",
    128009: "<|eot_id|>",
}
LLAMA3_TEMPLATE = (
    "{% set loop_messages = messages %}{% for message in loop_messages %}"
    "{% set content = '<|start_header_id|>' + message['role'] + '<|end_header_id|>\n\n'"
    " + message['content'] | trim + '<|eot_id|>' %}"
    "{% if loop.index0 == 0 %}{% set content = bos_token + content %}{% endif %}"
    "{{ content }}{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|start_header_id|>assistant<|end_header_id|>\n\n' }}"
    "{% endif %}"
)


def llama3_tokenizer(smol):
    """SmolLM2's 49152 tokens padded to Llama 3's 128256: reserved specials from 49152 on,
    the Llama 3 specials at their Llama 3 ids (all CONTROL)."""
    tokens = list(smol.kv["tokenizer.ggml.tokens"][1])
    types = list(smol.kv["tokenizer.ggml.token_type"][1])
    reserved = 0
    for i in range(len(tokens), LLAMA3_VOCAB):
        if i in LLAMA3_SPECIAL:
            tokens.append(LLAMA3_SPECIAL[i].encode())
        else:
            tokens.append(f"<|reserved_special_token_{reserved}|>".encode())
            reserved += 1
        types.append(TT_CONTROL)
    return {
        "tokenizer.ggml.model": smol.kv["tokenizer.ggml.model"],
        "tokenizer.ggml.pre": (VT.STRING, b"llama-bpe", None),
        "tokenizer.ggml.tokens": (VT.ARRAY, tokens, VT.STRING),
        "tokenizer.ggml.token_type": (VT.ARRAY, types, VT.INT32),
        "tokenizer.ggml.merges": smol.kv["tokenizer.ggml.merges"],
        "tokenizer.ggml.bos_token_id": (VT.UINT32, 128000, None),
        "tokenizer.ggml.eos_token_id": (VT.UINT32, 128009, None),
        "tokenizer.ggml.add_bos_token": (VT.BOOL, True, None),
        "tokenizer.chat_template": (VT.STRING, LLAMA3_TEMPLATE.encode(), None),
    }


# --------------------------------------------------------------------------------------------
# random text models (llama.cpp layout)

# With the output tied to a token embedding of scale 1, the residual stream stays close to the
# input token's row and greedy decoding just repeats the prompt's last token. A small embedding
# lets the blocks (attention, rope) decide the output instead.
TIED_EMBD_SCALE = 0.1


def dense_block(m, w, i, n_embd, n_head, n_kv, head_dim, n_ff, qkv_bias=False, qk_norm=False,
                qk_gain=1.0):
    """One pre-norm attention + SwiGLU block; qk_gain > 1 sharpens the attention pattern so
    that positions (rope) matter more."""
    p = f"blk.{i}."
    qk_scale = qk_gain / np.sqrt(n_embd)
    put(m, p + "attn_norm.weight", w.norm(n_embd))
    put(m, p + "attn_q.weight", w.mat([n_embd, n_head * head_dim], qk_scale))
    put(m, p + "attn_k.weight", w.mat([n_embd, n_kv * head_dim], qk_scale))
    put(m, p + "attn_v.weight", w.mat([n_embd, n_kv * head_dim]))
    if qkv_bias:
        put(m, p + "attn_q.bias", w.vec([n_head * head_dim]))
        put(m, p + "attn_k.bias", w.vec([n_kv * head_dim]))
        put(m, p + "attn_v.bias", w.vec([n_kv * head_dim]))
    if qk_norm:
        put(m, p + "attn_q_norm.weight", w.norm(head_dim))
        put(m, p + "attn_k_norm.weight", w.norm(head_dim))
    put(m, p + "attn_output.weight", w.mat([n_head * head_dim, n_embd]))
    put(m, p + "ffn_norm.weight", w.norm(n_embd))
    put(m, p + "ffn_gate.weight", w.mat([n_embd, n_ff]))
    put(m, p + "ffn_up.weight", w.mat([n_embd, n_ff]))
    put(m, p + "ffn_down.weight", w.mat([n_ff, n_embd]))


def base_model(arch, name, tokenizer, hparams):
    m = Model(arch)
    m.string("general.type", "model")
    m.string("general.name", name)
    m.u32("general.file_type", 1)  # mostly F16 (token_embd/output are Q8_0)
    for key, (kind, value) in hparams.items():
        key = f"{arch}.{key}"
        if kind == "u32":
            m.u32(key, value)
        elif kind == "f32":
            m.f32(key, value)
        elif kind == "str":
            m.string(key, value)
        elif kind == "i32s":
            m.arr(key, VT.INT32, value)
        elif kind == "f32s":
            m.arr(key, VT.FLOAT32, value)
        elif kind == "bools":
            m.arr(key, VT.BOOL, value)
        else:
            raise ValueError(kind)
    m.u32("general.quantization_version", 2)
    m.kv.update(tokenizer)
    return m


def make_llama3(smol):
    w = Weights(3001)
    n_embd, n_layer, n_head, n_kv, n_ff = 64, 2, 4, 2, 128
    m = base_model("llama", "tiny-random-llama3", llama3_tokenizer(smol), {
        "block_count": ("u32", n_layer),
        "context_length": ("u32", 8192),
        "embedding_length": ("u32", n_embd),
        "feed_forward_length": ("u32", n_ff),
        "attention.head_count": ("u32", n_head),
        "attention.head_count_kv": ("u32", n_kv),
        "rope.freq_base": ("f32", 500000.0),
        "attention.layer_norm_rms_epsilon": ("f32", 1e-5),
        "vocab_size": ("u32", LLAMA3_VOCAB),
        "rope.dimension_count": ("u32", n_embd // n_head),
    })
    put(m, "token_embd.weight", w.q8_0([n_embd, LLAMA3_VOCAB], 1.0))
    for i in range(n_layer):
        dense_block(m, w, i, n_embd, n_head, n_kv, n_embd // n_head, n_ff)
    put(m, "output_norm.weight", w.norm(n_embd))
    # The reserved/special rows of the output are zero (untrained, as in Llama 3), so greedy
    # decoding picks among SmolLM2's text tokens instead of invisible control tokens.
    put(m, "output.weight", w.q8_0([n_embd, LLAMA3_VOCAB], 2.0 / np.sqrt(n_embd),
                                   zero_rows_from=len(smol.kv["tokenizer.ggml.tokens"][1])))
    return m


def ollama_llama3(orig):
    m = orig.copy()
    m.drop("tokenizer.ggml.pre")
    m.u32("tokenizer.ggml.eos_token_id", 128001)
    return m


def make_gptoss(smol):
    w = Weights(3002)
    n_embd, n_layer, n_head, n_kv, head_dim = 64, 2, 4, 2, 32
    n_ff_exp, n_expert, n_used, vocab = 64, 4, 2, len(smol.kv["tokenizer.ggml.tokens"][1])
    m = base_model("gpt-oss", "tiny-random-gpt-oss", smollm2_tokenizer(smol, "gpt-4o"), {
        "block_count": ("u32", n_layer),
        "context_length": ("u32", 131072),
        "embedding_length": ("u32", n_embd),
        "feed_forward_length": ("u32", n_ff_exp),
        "attention.head_count": ("u32", n_head),
        "attention.head_count_kv": ("u32", n_kv),
        "attention.key_length": ("u32", head_dim),
        "attention.value_length": ("u32", head_dim),
        "rope.freq_base": ("f32", 150000.0),
        "attention.layer_norm_rms_epsilon": ("f32", 1e-5),
        "expert_count": ("u32", n_expert),
        "expert_used_count": ("u32", n_used),
        "expert_feed_forward_length": ("u32", n_ff_exp),
        "attention.sliding_window": ("u32", 16),
        "rope.scaling.type": ("str", "yarn"),
        "rope.scaling.factor": ("f32", 32.0),
        "rope.scaling.original_context_length": ("u32", 4096),
    })
    put(m, "token_embd.weight", w.q8_0([n_embd, vocab], 1.0))
    for i in range(n_layer):
        p = f"blk.{i}."
        put(m, p + "attn_norm.weight", w.norm(n_embd))
        put(m, p + "attn_q.weight", w.mat([n_embd, n_head * head_dim]))
        put(m, p + "attn_q.bias", w.vec([n_head * head_dim]))
        put(m, p + "attn_k.weight", w.mat([n_embd, n_kv * head_dim]))
        put(m, p + "attn_k.bias", w.vec([n_kv * head_dim]))
        put(m, p + "attn_v.weight", w.mat([n_embd, n_kv * head_dim]))
        put(m, p + "attn_v.bias", w.vec([n_kv * head_dim]))
        put(m, p + "attn_output.weight", w.mat([n_head * head_dim, n_embd]))
        put(m, p + "attn_output.bias", w.vec([n_embd]))
        put(m, p + "attn_sinks.weight", w.vec([n_head], 0.5))
        put(m, p + "post_attention_norm.weight", w.norm(n_embd))
        put(m, p + "ffn_gate_inp.weight", w.vec([n_embd, n_expert], 1.0 / np.sqrt(n_embd)))
        put(m, p + "ffn_gate_inp.bias", w.vec([n_expert]))
        put(m, p + "ffn_gate_exps.weight", w.mxfp4([n_embd, n_ff_exp, n_expert]))
        put(m, p + "ffn_gate_exps.bias", w.vec([n_ff_exp, n_expert]))
        put(m, p + "ffn_up_exps.weight", w.mxfp4([n_embd, n_ff_exp, n_expert]))
        put(m, p + "ffn_up_exps.bias", w.vec([n_ff_exp, n_expert]))
        put(m, p + "ffn_down_exps.weight", w.mxfp4([n_ff_exp, n_embd, n_expert]))
        put(m, p + "ffn_down_exps.bias", w.vec([n_embd, n_expert]))
    put(m, "output_norm.weight", w.norm(n_embd))
    put(m, "output.weight", w.q8_0([n_embd, vocab], 2.0 / np.sqrt(n_embd)))
    return m


def ollama_gptoss(orig):
    m = orig.copy()
    m.arch = "gptoss"
    m.rename_prefix("gpt-oss.", "gptoss.")
    m.drop("gptoss.expert_feed_forward_length")
    m.drop("gptoss.rope.scaling.type")
    m.string("tokenizer.ggml.pre", "default")
    m.rename_tensors(".attn_output", ".attn_out")
    m.rename_tensors(".attn_sinks.weight", ".attn_sinks")
    m.rename_tensors(".post_attention_norm", ".ffn_norm")
    return m


def make_qwen2vl(smol):
    w = Weights(3003)
    n_embd, n_layer, n_head, n_kv, n_ff = 64, 2, 4, 2, 128
    vocab = len(smol.kv["tokenizer.ggml.tokens"][1])
    m = base_model("qwen2vl", "tiny-random-qwen2.5-vl", smollm2_tokenizer(smol, "smollm"), {
        "block_count": ("u32", n_layer),
        "context_length": ("u32", 128000),
        "embedding_length": ("u32", n_embd),
        "feed_forward_length": ("u32", n_ff),
        "attention.head_count": ("u32", n_head),
        "attention.head_count_kv": ("u32", n_kv),
        "rope.freq_base": ("f32", 1000000.0),
        "attention.layer_norm_rms_epsilon": ("f32", 1e-6),
        # head_dim 16: the three M-RoPE sections cover its 8 rotary pairs
        "rope.dimension_sections": ("i32s", [2, 3, 3, 0]),
    })
    put(m, "token_embd.weight", w.q8_0([n_embd, vocab], TIED_EMBD_SCALE))  # output tied
    for i in range(n_layer):
        dense_block(m, w, i, n_embd, n_head, n_kv, n_embd // n_head, n_ff, qkv_bias=True)
    put(m, "output_norm.weight", w.norm(n_embd))
    return m




def make_qwen3vl(smol):
    w = Weights(3004)
    n_embd, n_layer, n_head, n_kv, head_dim, n_ff = 64, 4, 2, 1, 128, 128
    vocab = len(smol.kv["tokenizer.ggml.tokens"][1])
    m = base_model("qwen3vl", "tiny-random-qwen3-vl", smollm2_tokenizer(smol, "smollm"), {
        "block_count": ("u32", n_layer),
        "context_length": ("u32", 262144),
        "embedding_length": ("u32", n_embd),
        "feed_forward_length": ("u32", n_ff),
        "attention.head_count": ("u32", n_head),
        "attention.head_count_kv": ("u32", n_kv),
        "attention.key_length": ("u32", head_dim),
        "attention.value_length": ("u32", head_dim),
        "rope.freq_base": ("f32", 5000000.0),
        "attention.layer_norm_rms_epsilon": ("f32", 1e-6),
        "rope.dimension_sections": ("i32s", [24, 20, 20, 0]),
        # the input embedding grows to n_embd * (1 + 3); a text-only prompt fills the
        # deepstack part with zeros
        "n_deepstack_layers": ("u32", 3),
    })
    put(m, "token_embd.weight", w.q8_0([n_embd, vocab], TIED_EMBD_SCALE))  # output tied
    for i in range(n_layer):
        dense_block(m, w, i, n_embd, n_head, n_kv, head_dim, n_ff, qk_norm=True)
    put(m, "output_norm.weight", w.norm(n_embd))
    return m




def make_mistral3(smol):
    w = Weights(3005)
    n_embd, n_layer, n_head, n_kv, n_ff = 64, 2, 4, 2, 128
    head_dim = n_embd // n_head
    vocab = len(smol.kv["tokenizer.ggml.tokens"][1])
    # YaRN and the Llama 4 style attention temperature at values away from llama.cpp's defaults
    # (beta_fast 32, beta_slow 1, no log multiplier, no temperature), with a short original
    # context and a low rope base so that each of them changes the greedy output of "Hello"
    # within 8 tokens: the temperature grows from position 4 on, beta_fast/beta_slow put the
    # interpolation ramp on rotary pairs 1..4 of 8 (defaults: none), the log multiplier scales
    # q and k, and sharp attention (qk_gain 4) lets positions matter.
    m = base_model("mistral3", "tiny-random-ministral-3", smollm2_tokenizer(smol, "tekken"), {
        "block_count": ("u32", n_layer),
        "context_length": ("u32", 4096),
        "embedding_length": ("u32", n_embd),
        "feed_forward_length": ("u32", n_ff),
        "attention.head_count": ("u32", n_head),
        "attention.head_count_kv": ("u32", n_kv),
        "attention.key_length": ("u32", head_dim),
        "attention.value_length": ("u32", head_dim),
        "rope.dimension_count": ("u32", head_dim),
        "rope.freq_base": ("f32", 100.0),
        "attention.layer_norm_rms_epsilon": ("f32", 1e-5),
        "rope.scaling.type": ("str", "yarn"),
        "rope.scaling.factor": ("f32", 8.0),
        "rope.scaling.original_context_length": ("u32", 4),
        "rope.scaling.yarn_beta_fast": ("f32", 0.25),
        "rope.scaling.yarn_beta_slow": ("f32", 0.0625),
        "rope.scaling.yarn_log_multiplier": ("f32", 1.0),
        "attention.temperature_scale": ("f32", 2.0),
        "vocab_size": ("u32", vocab),
    })
    put(m, "token_embd.weight", w.q8_0([n_embd, vocab], TIED_EMBD_SCALE))  # output tied
    for i in range(n_layer):
        dense_block(m, w, i, n_embd, n_head, n_kv, head_dim, n_ff, qk_gain=4.0)
    put(m, "output_norm.weight", w.norm(n_embd))
    return m




def ollama_qwen25vl(orig, tower):
    m = orig.copy()
    m.arch = "qwen25vl"
    m.rename_prefix("qwen2vl.", "qwen25vl.")
    sections = m.kv["qwen25vl.rope.dimension_sections"][1]
    m.drop("qwen25vl.rope.dimension_sections")
    m.arr("qwen25vl.rope.mrope_section", VT.INT32, sections[:3])
    tower.embed(m)
    return m


def ollama_qwen3vl(orig, tower):
    m = orig.copy()
    m.drop("qwen3vl.rope.dimension_sections")
    m.drop("qwen3vl.n_deepstack_layers")
    tower.embed(m)
    return m


def ollama_mistral3(orig, tower):
    m = orig.copy()
    m.rename("mistral3.rope.scaling.yarn_beta_fast", "mistral3.rope.scaling.beta_fast")
    m.rename("mistral3.rope.scaling.yarn_beta_slow", "mistral3.rope.scaling.beta_slow")
    m.rename("mistral3.rope.scaling.yarn_log_multiplier", "mistral3.rope.scaling.mscale_all_dim")
    m.rename("mistral3.attention.temperature_scale", "mistral3.rope.scaling_beta")
    m.drop("tokenizer.ggml.pre")
    tower.embed(m)
    return m


# A short chat template in Llama 4's style (header/eot markers as plain text for SmolLM2's
# vocabulary); the image parts of a message reach it as mtmd's media marker in the content.
LLAMA4_TEMPLATE = (
    "{{ bos_token }}{% for message in messages %}"
    "{{ '<|header_start|>' + message['role'] + '<|header_end|>\n\n'"
    " + message['content'] | trim + '<|eot|>' }}{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|header_start|>assistant<|header_end|>\n\n' }}"
    "{% endif %}"
)


def make_llama4(smol):
    """llama.cpp's `llama4`: dense FFN on layers 0 and 2, MoE (sigmoid router, 1 of 4
    experts, plus the shared expert) on layers 1 and 3 (interleave_moe_layer_step 2). Without
    `attention.sliding_window` llama.cpp uses chunked attention (chunk 8192) on layers 0-2 and
    full attention without rope, with the attention temperature, on layer 3 (every 4th
    layer); rope layers get the unweighted L2 q/k norm (use_kq_norm: not the 128-expert
    model). Four layers are the fewest this llama.cpp runs: with no no-rope layer the
    temperature input is built but unused, and setting it aborts ("tensor buffer not set")."""
    w = Weights(3007)
    n_embd, n_layer, n_head, n_kv, n_ff = 64, 4, 4, 2, 128
    n_ff_exp, n_expert, head_dim = 64, 4, 16
    vocab = len(smol.kv["tokenizer.ggml.tokens"][1])
    tokenizer = smollm2_tokenizer(smol, "smollm")
    tokenizer["tokenizer.chat_template"] = (VT.STRING, LLAMA4_TEMPLATE.encode(), None)
    m = base_model("llama4", "tiny-random-llama4", tokenizer, {
        "block_count": ("u32", n_layer),
        "context_length": ("u32", 262144),
        "embedding_length": ("u32", n_embd),
        "feed_forward_length": ("u32", n_ff),
        "attention.head_count": ("u32", n_head),
        "attention.head_count_kv": ("u32", n_kv),
        "rope.freq_base": ("f32", 500000.0),
        "attention.layer_norm_rms_epsilon": ("f32", 1e-5),
        "expert_count": ("u32", n_expert),
        "expert_used_count": ("u32", 1),
        "vocab_size": ("u32", vocab),
        "rope.dimension_count": ("u32", head_dim),
        "interleave_moe_layer_step": ("u32", 2),
        "expert_feed_forward_length": ("u32", n_ff_exp),
    })
    put(m, "token_embd.weight", w.q8_0([n_embd, vocab], 1.0))
    for i in range(n_layer):
        p = f"blk.{i}."
        put(m, p + "attn_norm.weight", w.norm(n_embd))
        put(m, p + "attn_q.weight", w.mat([n_embd, n_head * head_dim]))
        put(m, p + "attn_k.weight", w.mat([n_embd, n_kv * head_dim]))
        put(m, p + "attn_v.weight", w.mat([n_embd, n_kv * head_dim]))
        put(m, p + "attn_output.weight", w.mat([n_head * head_dim, n_embd]))
        put(m, p + "ffn_norm.weight", w.norm(n_embd))
        if (i + 1) % 2 == 0:
            put(m, p + "ffn_gate_inp.weight", w.vec([n_embd, n_expert], 1.0 / np.sqrt(n_embd)))
            put(m, p + "ffn_gate_exps.weight", w.mat([n_embd, n_ff_exp, n_expert]))
            put(m, p + "ffn_up_exps.weight", w.mat([n_embd, n_ff_exp, n_expert]))
            put(m, p + "ffn_down_exps.weight", w.mat([n_ff_exp, n_embd, n_expert]))
            put(m, p + "ffn_gate_shexp.weight", w.mat([n_embd, n_ff_exp]))
            put(m, p + "ffn_up_shexp.weight", w.mat([n_embd, n_ff_exp]))
            put(m, p + "ffn_down_shexp.weight", w.mat([n_ff_exp, n_embd]))
        else:
            put(m, p + "ffn_gate.weight", w.mat([n_embd, n_ff]))
            put(m, p + "ffn_up.weight", w.mat([n_embd, n_ff]))
            put(m, p + "ffn_down.weight", w.mat([n_ff, n_embd]))
    put(m, "output_norm.weight", w.norm(n_embd))
    put(m, "output.weight", w.q8_0([n_embd, vocab], 2.0 / np.sqrt(n_embd)))
    return m


def ollama_llama4(orig, tower):
    """Ollama's llama4 text side matches llama.cpp's (handle_llama4 only hides v./mm.)."""
    m = orig.copy()
    tower.embed(m)
    return m


# --------------------------------------------------------------------------------------------
# embedded vision towers (qwen25vl, qwen3vl, mistral3, llama4)
#
# Each tower is made once in llama.cpp's mmproj layout (`<family>-mmproj-original.gguf`) and
# embedded in `<family>-ollama.gguf` through the exact inverse of Ollama's clip-side handler,
# so that the handler's translation of the Ollama file gives back the projector bit for bit.

# Image statistics the compat handlers inject (float literals as written there).
CLIP_MEAN = [0.48145466, 0.4578275, 0.40821073]      # handle_qwen25vl_clip
CLIP_STD = [0.26862954, 0.26130258, 0.27577711]
PIXTRAL_MEAN = [0.48145467, 0.45782750, 0.40821072]  # handle_mistral3_clip
PIXTRAL_STD = [0.26862955, 0.26130259, 0.27577710]
HALF3 = [0.5, 0.5, 0.5]


class Tower:
    """A vision tower in both layouts.

    `groups`: (clip tensors, Ollama tensors, note); each tensor is (name, type, ne, data) and
    the Ollama tensors are computed from the clip ones by the inverse of the handler's
    transform (the clip list is empty for tensors only Ollama has, the Ollama list for
    tensors the handler synthesizes). `keys`: the clip-side keys, (key, vtype, value, sub,
    where the handler takes the value from). `ollama_keys`: the Ollama file's vision keys."""

    def __init__(self, family, seed):
        self.family = family
        self.w = Weights(seed)
        self.keys = []
        self.ollama_keys = []
        self.groups = []

    # keys
    def key(self, key, vtype, value, source, sub=None):
        self.keys.append((key, vtype, value, sub, source))

    def okey(self, key, vtype, value, sub=None):
        self.ollama_keys.append((key, vtype, value, sub))

    def okeys_u32(self, prefix, **values):
        for name, value in values.items():
            self.okey(prefix + name, VT.UINT32, value)

    # clip-side random tensors
    def mat(self, ne, scale=None):
        """F16 matrix (1/sqrt(ne[0]) scale by default)."""
        return self.w.mat(ne, scale)

    def f16x(self, ne, scale):
        """F32 tensor whose values are exactly representable in F16."""
        data = self.w.normal(ne, scale).astype(np.float16).astype(np.float32)
        return QT.F32, ne, data

    def vec(self, ne, scale=0.05):
        return self.w.vec(ne, scale)

    def norm(self, n):
        return self.w.norm(n)

    # groups
    def group(self, clip, ollama, note=""):
        self.groups.append((clip, ollama, note))

    def same(self, clip_name, ollama_name, tensor, note=""):
        """Ollama stores the tensor as it is (same type and bytes), maybe under another name."""
        self.group([(clip_name, *tensor)], [(ollama_name, *tensor)], note)

    def promoted(self, clip_name, ollama_name, tensor, note=""):
        """The clip tensor is F32 with F16-exact values; Ollama stores it as F16 and the
        handler promotes it back (ggml_fp16_to_fp32 per element)."""
        qtype, ne, data = tensor
        assert qtype == QT.F32
        half = data.astype(np.float16)
        assert np.array_equal(half.astype(np.float32), data), clip_name
        self.group([(clip_name, *tensor)], [(ollama_name, QT.F16, ne, half)],
                   note or "F16 -> F32 promote (exact)")

    def mmproj(self, name):
        m = Model("clip")
        m.string("general.type", "mmproj")
        m.string("general.name", name)
        m.u32("general.file_type", 1)
        m.u32("general.quantization_version", 2)
        for key, vtype, value, sub, _ in self.keys:
            m.set(key, vtype, value.encode() if isinstance(value, str) else value, sub)
        for clip, _, _ in self.groups:
            for name_, qtype, ne, data in clip:
                m.add(name_, qtype, ne, data)
        return m

    def embed(self, m):
        """Adds the Ollama-side keys and tensors to the text model `m`."""
        for key, vtype, value, sub in self.ollama_keys:
            m.set(key, vtype, value.encode() if isinstance(value, str) else value, sub)
        for _, ollama, _ in self.groups:
            for name_, qtype, ne, data in ollama:
                m.add(name_, qtype, ne, data)


def common_clip_keys(t, proj_type, *, image, patch, embd, ff, blocks, heads, eps, text_embd,
                     mean, std, act, src):
    """The keys every tower has; `src` maps a clip key to the Ollama key (or the rule) the
    handler takes it from."""
    t.key("clip.projector_type", VT.STRING, proj_type, "set by the handler")
    t.key("clip.has_vision_encoder", VT.BOOL, True, "injected if missing")
    t.key(f"clip.use_{act}", VT.BOOL, True, "injected if missing")
    for key, value in (("image_size", image), ("patch_size", patch),
                       ("embedding_length", embd), ("feed_forward_length", ff),
                       ("block_count", blocks), ("attention.head_count", heads),
                       ("projection_dim", text_embd)):
        t.key("clip.vision." + key, VT.UINT32, value, src[key])
    t.key("clip.vision.attention.layer_norm_epsilon", VT.FLOAT32, eps,
          src["attention.layer_norm_epsilon"])
    t.key("clip.vision.image_mean", VT.ARRAY, mean, src["image_mean"], VT.FLOAT32)
    t.key("clip.vision.image_std", VT.ARRAY, std, src["image_std"], VT.FLOAT32)


def qwen25vl_tower(text_embd):
    t = Tower("qwen25vl", 5003)
    e, f, p, merge, blocks, heads, window = 32, 64, 14, 2, 2, 2, 112
    fullatt = [1]  # block 0 windowed, block 1 full attention: n_wa_pattern 2
    pre = "qwen25vl.vision."
    common_clip_keys(t, "qwen2.5vl_merger", image=560, patch=p, embd=e, ff=f, blocks=blocks,
                     heads=heads, eps=1e-6, text_embd=text_embd, mean=CLIP_MEAN, std=CLIP_STD,
                     act="silu", src={
                         "image_size": "injected if missing: 560",
                         "patch_size": pre + "patch_size",
                         "embedding_length": pre + "embedding_length",
                         "feed_forward_length": "if missing: ne[1] of v.blk.0.ffn_up.weight",
                         "block_count": pre + "block_count",
                         "attention.head_count": pre + "attention.head_count",
                         "projection_dim": "qwen25vl.embedding_length (text)",
                         "attention.layer_norm_epsilon": pre + "attention.layer_norm_epsilon",
                         "image_mean": "injected if missing (CLIP mean)",
                         "image_std": "injected if missing (CLIP std)",
                     })
    t.key("clip.vision.n_wa_pattern", VT.UINT32, fullatt[0] + 1,
          pre + "fullatt_block_indexes[0] + 1 (8 if absent)")
    t.key("clip.vision.spatial_merge_size", VT.UINT32, merge, pre + "spatial_merge_size")
    t.key("clip.vision.num_channels", VT.UINT32, 3, pre + "num_channels")
    t.key("clip.vision.window_size", VT.UINT32, window, pre + "window_size")
    # convert_qwen25vl.go's keys
    t.okeys_u32(pre, block_count=blocks, embedding_length=e)
    t.okey(pre + "attention.head_count", VT.UINT32, heads)
    t.okeys_u32(pre, num_channels=3, patch_size=p, spatial_merge_size=merge,
                spatial_patch_size=p, window_size=window)
    t.okey(pre + "attention.layer_norm_epsilon", VT.FLOAT32, 1e-6)
    t.okey(pre + "rope.freq_base", VT.FLOAT32, 10000.0)
    t.okey(pre + "fullatt_block_indexes", VT.ARRAY, fullatt, VT.INT32)
    t.okey(pre + "temporal_patch_size", VT.UINT32, 2)

    t.promoted("v.patch_embd.weight", "v.patch_embd_0.weight", t.f16x([p, p, 3, e], 0.05),
               "temporal slice 0 of the Conv3D; F16 -> F32 promote (exact)")
    t.promoted("v.patch_embd.weight.1", "v.patch_embd_1.weight", t.f16x([p, p, 3, e], 0.05),
               "temporal slice 1; F16 -> F32 promote (exact)")
    for b in range(blocks):
        x = f"v.blk.{b}."
        t.same(x + "ln1.weight", x + "ln1.weight", t.norm(e))
        for name in ("attn_q", "attn_k", "attn_v", "attn_out"):
            t.same(x + name + ".weight", x + name + ".weight", t.mat([e, e]))
            t.same(x + name + ".bias", x + name + ".bias", t.vec([e]))
        t.same(x + "ln2.weight", x + "ln2.weight", t.norm(e))
        for name, ne in (("ffn_gate", [e, f]), ("ffn_up", [e, f]), ("ffn_down", [f, e])):
            t.same(x + name + ".weight", x + name + ".weight", t.mat(ne))
            t.same(x + name + ".bias", x + name + ".bias", t.vec([ne[1]]))
    merged = e * merge * merge
    t.same("v.post_ln.weight", "v.merger.ln_q.weight", t.norm(e))
    t.same("mm.0.weight", "v.merger.mlp.0.weight", t.mat([merged, merged]))
    t.same("mm.0.bias", "v.merger.mlp.0.bias", t.vec([merged]))
    t.same("mm.2.weight", "v.merger.mlp.2.weight", t.mat([merged, text_embd]))
    t.same("mm.2.bias", "v.merger.mlp.2.bias", t.vec([text_embd]))
    return t


def qwen3vl_tower(text_embd, n_deepstack):
    t = Tower("qwen3vl", 5004)
    e, f, p, merge, blocks, heads, n_pos = 32, 64, 16, 2, 4, 2, 64
    # deepstack adapters after blocks 1, 2, 3: the handler's index remap is not the identity
    deepstack = list(range(blocks - n_deepstack, blocks))
    side = int(round(np.sqrt(n_pos)))
    pre = "qwen3vl.vision."
    common_clip_keys(t, "qwen3vl_merger", image=side * p, patch=p, embd=e, ff=f, blocks=blocks,
                     heads=heads, eps=1e-6, text_embd=text_embd, mean=HALF3, std=HALF3,
                     act="gelu", src={
                         "image_size": "if missing: sqrt(ne[1] of v.pos_embed.weight) * "
                                       + pre + "patch_size",
                         "patch_size": pre + "patch_size",
                         "embedding_length": pre + "embedding_length",
                         "feed_forward_length": "if missing: ne[1] of "
                                                "v.blk.0.mlp.linear_fc1.weight",
                         "block_count": pre + "block_count",
                         "attention.head_count": pre + "attention.head_count",
                         "projection_dim": "qwen3vl.embedding_length (text)",
                         "attention.layer_norm_epsilon": pre + "attention.layer_norm_epsilon",
                         "image_mean": pre + "image_mean ([0.5]*3 if missing)",
                         "image_std": pre + "image_std ([0.5]*3 if missing)",
                     })
    t.key("clip.vision.spatial_merge_size", VT.UINT32, merge, pre + "spatial_merge_size")
    t.key("clip.vision.num_channels", VT.UINT32, 3, pre + "num_channels (3 if missing)")
    t.key("clip.vision.temporal_patch_size", VT.UINT32, 2,
          pre + "temporal_patch_size (2 if missing)")
    t.key("clip.vision.rope.freq_base", VT.FLOAT32, 10000.0,
          pre + "rope.freq_base (10000 if missing)")
    t.key("clip.vision.image_min_pixels", VT.UINT32, 64 * 64,
          pre + "shortest_edge (65536 if missing)")
    t.key("clip.vision.image_max_pixels", VT.UINT32, 256 * 256,
          pre + "longest_edge (16777216 if missing)")
    t.key("clip.vision.is_deepstack_layers", VT.ARRAY, [b in deepstack for b in range(blocks)],
          "block_count bools, true at " + pre + "deepstack_visual_indexes", VT.BOOL)
    # convert_qwen3vl.go's keys (before the separate-projector converter)
    t.okeys_u32(pre, block_count=blocks, embedding_length=e)
    t.okey(pre + "attention.head_count", VT.UINT32, heads)
    t.okeys_u32(pre, num_channels=3, patch_size=p, spatial_merge_size=merge)
    t.okey(pre + "attention.layer_norm_epsilon", VT.FLOAT32, 1e-6)
    t.okey(pre + "rope.freq_base", VT.FLOAT32, 10000.0)
    t.okey(pre + "temporal_patch_size", VT.UINT32, 2)
    t.okey(pre + "deepstack_visual_indexes", VT.ARRAY, deepstack, VT.INT32)
    t.okeys_u32(pre, shortest_edge=64 * 64, longest_edge=256 * 256)
    t.okey(pre + "image_mean", VT.ARRAY, HALF3, VT.FLOAT32)
    t.okey(pre + "image_std", VT.ARRAY, HALF3, VT.FLOAT32)

    # Conv3D [out=e, in=3, t=2, h, w] split into its two temporal slices (ne [w, h, in, out]);
    # Ollama keeps it whole with out*in merged: ne [w, h, t, out*in], packed = c_out*3 + c_in
    s0 = t.f16x([p, p, 3, e], 0.05)
    s1 = t.f16x([p, p, 3, e], 0.05)
    packed = np.stack([s0[2], s1[2]], axis=2).reshape(e * 3, 2, p, p).astype(np.float16)
    t.group([("v.patch_embd.weight", *s0), ("v.patch_embd.weight.1", *s1)],
            [("v.patch_embed.weight", QT.F16, [p, p, 2, e * 3], packed)],
            "split + permute + F16 -> F32 (register_qwen3vl_patch_embed_split)")
    t.same("v.patch_embd.bias", "v.patch_embed.bias", t.vec([e]))
    t.promoted("v.position_embd.weight", "v.pos_embed.weight", t.f16x([e, n_pos], 0.1))
    for b in range(blocks):
        c, o = f"v.blk.{b}.", f"v.blk.{b}."
        for n in ("1", "2"):
            t.same(c + f"ln{n}.weight", o + f"norm{n}.weight", t.norm(e))
            t.same(c + f"ln{n}.bias", o + f"norm{n}.bias", t.vec([e]))
        qkv = t.f16x([e, 3 * e], 1.0 / np.sqrt(e))
        qkv_b = t.f16x([3 * e], 0.05)
        t.group([(c + "attn_qkv.weight", *qkv)],
                [(o + f"attn_{x}.weight", QT.F16, [e, e], qkv[2][i * e:(i + 1) * e]
                  .astype(np.float16)) for i, x in enumerate("qkv")],
                "rows (ne[1]) 0..E-1 = q, E..2E-1 = k, 2E..3E-1 = v; F16 -> F32 concat")
        t.group([(c + "attn_qkv.bias", *qkv_b)],
                [(o + f"attn_{x}.bias", QT.F32, [e], qkv_b[2][i * e:(i + 1) * e])
                 for i, x in enumerate("qkv")],
                "q | k | v concatenated (F32 stays F32)")
        t.same(c + "attn_out.weight", o + "attn_out.weight", t.mat([e, e]))
        t.same(c + "attn_out.bias", o + "attn_out.bias", t.vec([e]))
        t.same(c + "ffn_up.weight", o + "mlp.linear_fc1.weight", t.mat([e, f]))
        t.same(c + "ffn_up.bias", o + "mlp.linear_fc1.bias", t.vec([f]))
        t.same(c + "ffn_down.weight", o + "mlp.linear_fc2.weight", t.mat([f, e]))
        t.same(c + "ffn_down.bias", o + "mlp.linear_fc2.bias", t.vec([e]))
    merged = e * merge * merge
    t.same("v.post_ln.weight", "v.merger.norm.weight", t.norm(e))
    t.same("v.post_ln.bias", "v.merger.norm.bias", t.vec([e]))
    t.same("mm.0.weight", "v.merger.linear_fc1.weight", t.mat([merged, merged]))
    t.same("mm.0.bias", "v.merger.linear_fc1.bias", t.vec([merged]))
    t.same("mm.2.weight", "v.merger.linear_fc2.weight", t.mat([merged, text_embd]))
    t.same("mm.2.bias", "v.merger.linear_fc2.bias", t.vec([text_embd]))
    for x, b in enumerate(deepstack):
        c, o = f"v.deepstack.{b}.", f"v.deepstack_merger.{x}."
        t.same(c + "norm.weight", o + "norm.weight", t.norm(merged))
        t.same(c + "norm.bias", o + "norm.bias", t.vec([merged]))
        t.same(c + "fc1.weight", o + "linear_fc1.weight", t.mat([merged, merged]))
        t.same(c + "fc1.bias", o + "linear_fc1.bias", t.vec([merged]))
        t.same(c + "fc2.weight", o + "linear_fc2.weight", t.mat([merged, text_embd]))
        t.same(c + "fc2.bias", o + "linear_fc2.bias", t.vec([text_embd]))
    return t


def hf_order_rows(data, n_head):
    """Inverse of llama.cpp's (LlamaModel.permute) row order for rope'd Q/K: numpy rows
    (= ggml ne[1]) go from [head, pair, half] back to HF's [head, half, pair]."""
    rows, cols = data.shape
    head_dim = rows // n_head
    return (data.reshape(n_head, head_dim // 2, 2, cols).swapaxes(1, 2)
            .reshape(rows, cols).copy())


def mistral3_tower(text_embd):
    t = Tower("mistral3", 5005)
    e, f, p, merge, blocks, heads, image = 32, 64, 16, 2, 2, 2, 64
    pre = "mistral3.vision."
    common_clip_keys(t, "pixtral", image=image, patch=p, embd=e, ff=f, blocks=blocks,
                     heads=heads, eps=1e-5, text_embd=text_embd, mean=PIXTRAL_MEAN,
                     std=PIXTRAL_STD, act="silu", src={
                         "image_size": pre + "image_size",
                         "patch_size": pre + "patch_size",
                         "embedding_length": pre + "embedding_length",
                         "feed_forward_length": pre + "feed_forward_length",
                         "block_count": pre + "block_count",
                         "attention.head_count": pre + "attention.head_count",
                         "projection_dim": "mistral3.embedding_length (text)",
                         "attention.layer_norm_epsilon": "injected if missing: 1e-5",
                         "image_mean": "injected if missing (Pixtral mean)",
                         "image_std": "injected if missing (Pixtral std)",
                     })
    t.key("clip.vision.num_channels", VT.UINT32, 3, pre + "num_channels")
    t.key("clip.vision.spatial_merge_size", VT.UINT32, merge, "mistral3.spatial_merge_size")
    t.key("clip.rope.freq_base", VT.FLOAT32, 10000.0, pre + "rope.freq_base")
    # convert_mistral.go's keys
    t.okeys_u32(pre, block_count=blocks, embedding_length=e, feed_forward_length=f)
    t.okey(pre + "attention.head_count", VT.UINT32, heads)
    t.okey(pre + "attention.key_length", VT.UINT32, e // heads)
    t.okeys_u32(pre, image_size=image, patch_size=p, num_channels=3)
    t.okey(pre + "rope.freq_base", VT.FLOAT32, 10000.0)
    t.okey("mistral3.image_token_index", VT.UINT32, 10)
    t.okey("mistral3.spatial_merge_size", VT.UINT32, merge)
    t.okey("mistral3.mm.projector_bias", VT.BOOL, False)

    t.promoted("v.patch_embd.weight", "v.patch_conv.weight", t.f16x([p, p, 3, e], 0.05))
    t.same("v.pre_ln.weight", "v.encoder_norm.weight", t.norm(e))
    for b in range(blocks):
        x = f"v.blk.{b}."
        t.same(x + "ln1.weight", x + "attn_norm.weight", t.norm(e))
        for name in ("attn_q", "attn_k"):
            qtype, ne, data = t.mat([e, e])
            t.group([(x + name + ".weight", qtype, ne, data)],
                    [(x + name + ".weight", qtype, ne, hf_order_rows(data, heads))],
                    "rope row permutation (register_mistral3_vision_qk_permute)")
        t.same(x + "attn_v.weight", x + "attn_v.weight", t.mat([e, e]))
        t.same(x + "attn_out.weight", x + "attn_output.weight", t.mat([e, e]))
        t.same(x + "ln2.weight", x + "ffn_norm.weight", t.norm(e))
        t.same(x + "ffn_gate.weight", x + "ffn_gate.weight", t.mat([e, f]))
        t.same(x + "ffn_up.weight", x + "ffn_up.weight", t.mat([e, f]))
        t.same(x + "ffn_down.weight", x + "ffn_down.weight", t.mat([f, e]))
    t.same("mm.input_norm.weight", "mm.norm.weight", t.norm(e))
    t.same("mm.patch_merger.weight", "mm.patch_merger.merging_layer.weight",
           t.mat([e * merge * merge, e]))
    t.same("mm.1.weight", "mm.linear_1.weight", t.mat([e, text_embd]))
    t.same("mm.2.weight", "mm.linear_2.weight", t.mat([text_embd, text_embd]))
    t.group([("v.token_embd.img_break", QT.F32, [text_embd],
              np.zeros(text_embd, dtype=np.float32))], [],
            "synthesized: zeros, F32 [mistral3.embedding_length] (reclaims output_norm.weight)")
    return t


def llama4_tower(text_embd):
    t = Tower("llama4", 5007)
    e, p, blocks, heads, image, ratio = 32, 16, 2, 2, 64, 0.5
    scale = int(round(1 / ratio))
    f = e * scale * scale  # as in Llama 4: the block MLP width equals the shuffled width
    proj = 64              # vision_adapter width (projector_input/output_dim)
    n_pos = (image // p) ** 2 + 1  # patches plus [CLS]
    pre = "llama4.vision."
    common_clip_keys(t, "llama4", image=image, patch=p, embd=e, ff=f, blocks=blocks,
                     heads=heads, eps=1e-5, text_embd=text_embd, mean=HALF3, std=HALF3,
                     act="gelu", src={
                         "image_size": pre + "image_size",
                         "patch_size": pre + "patch_size",
                         "embedding_length": pre + "embedding_length",
                         "feed_forward_length": pre + "feed_forward_length",
                         "block_count": pre + "block_count",
                         "attention.head_count": pre + "attention.head_count",
                         "projection_dim": "llama4.embedding_length (text)",
                         "attention.layer_norm_epsilon": pre + "layer_norm_epsilon",
                         "image_mean": "injected if missing ([0.5]*3)",
                         "image_std": "injected if missing ([0.5]*3)",
                     })
    t.key("clip.vision.projector.scale_factor", VT.UINT32, scale,
          "round(1 / " + pre + "pixel_shuffle_ratio) (2 if missing or <= 0)")
    t.key("clip.vision.projector_type", VT.STRING, "llama4", "set by the handler")
    # convert_llama4.go's keys
    t.okeys_u32(pre, block_count=blocks, embedding_length=e, feed_forward_length=f)
    t.okey(pre + "attention.head_count", VT.UINT32, heads)
    t.okeys_u32(pre, image_size=image, patch_size=p)
    t.okey(pre + "rope.freq_base", VT.FLOAT32, 10000.0)
    t.okey(pre + "layer_norm_epsilon", VT.FLOAT32, 1e-5)
    t.okey(pre + "pixel_shuffle_ratio", VT.FLOAT32, ratio)

    # HF's unfold + Linear(3*p*p -> e): ne [3*p*p, e] on both sides (F16 as both converters
    # write a 2-D tensor; the handler does not promote it)
    t.same("v.patch_embd.weight", "v.patch_embedding.weight", t.mat([3 * p * p, e], 0.05))
    t.same("v.class_embd", "v.class_embedding", t.vec([e], 0.1))
    t.same("v.position_embd.weight", "v.positional_embedding_vlm", t.f16x([e, n_pos], 0.1),
           "exact-name rename (no .weight on the Ollama side); F32 on both sides")
    t.same("v.pre_ln.weight", "v.layernorm_pre.weight", t.norm(e))
    t.same("v.pre_ln.bias", "v.layernorm_pre.bias", t.vec([e]))
    for b in range(blocks):
        x = f"v.blk.{b}."
        t.same(x + "ln1.weight", x + "attn_norm.weight", t.norm(e))
        t.same(x + "ln1.bias", x + "attn_norm.bias", t.vec([e]))
        for c, o in (("attn_q", "attn_q"), ("attn_k", "attn_k"), ("attn_v", "attn_v"),
                     ("attn_out", "attn_output")):
            t.same(x + c + ".weight", x + o + ".weight", t.mat([e, e]))
            t.same(x + c + ".bias", x + o + ".bias", t.vec([e]))
        t.same(x + "ln2.weight", x + "ffn_norm.weight", t.norm(e))
        t.same(x + "ln2.bias", x + "ffn_norm.bias", t.vec([e]))
        t.same(x + "ffn_up.weight", x + "mlp.fc1.weight", t.mat([e, f]))
        t.same(x + "ffn_up.bias", x + "mlp.fc1.bias", t.vec([f]))
        t.same(x + "ffn_down.weight", x + "mlp.fc2.weight", t.mat([f, e]))
        t.same(x + "ffn_down.bias", x + "mlp.fc2.bias", t.vec([e]))
    t.same("v.post_ln.weight", "v.layernorm_post.weight", t.norm(e))
    t.same("v.post_ln.bias", "v.layernorm_post.bias", t.vec([e]))
    t.same("mm.model.mlp.1.weight", "v.vision_adapter.mlp.fc1.weight",
           t.mat([e * scale * scale, proj]))
    t.same("mm.model.mlp.2.weight", "v.vision_adapter.mlp.fc2.weight", t.mat([proj, proj]))
    t.same("mm.model.fc.weight", "mm.linear_1.weight", t.mat([proj, text_embd]))
    return t


VISION_REFERENCE_HEAD = """\
Embedded vision towers of the Ollama-layout fixtures qwen25vl, qwen3vl, mistral3 and llama4.

For each family F, F-mmproj-original.gguf is the projector in llama.cpp's layout (what
llama.cpp's HF converter writes: general.architecture = clip) and F-ollama.gguf embeds THE SAME
tower in the layout of Ollama's monolithic files (vision keys under F.vision.*, tensors under
v.* / mm.* next to the text model). The Ollama file was made from the mmproj by the exact
inverse of Ollama's clip-side compat handler (ollama/ollama llama/compat/
llama-ollama-compat.cpp), so running the handler's translation on F-ollama.gguf must give
F-mmproj-original.gguf's tensors bit for bit (same names, types, ne and bytes) and the same
values for every clip key llama.cpp reads. All values below are those of the fixtures.

Conventions
- ne is ggml order: ne[0] is the fastest-varying (row length); a PyTorch/numpy shape is ne
  reversed. "row r" of a matrix is the ne[0]-long run at element offset r*ne[0] (= ne[1]
  index r); a matrix [in, out] (ne) maps `in` inputs to `out` outputs.
- Floats are printed as the shortest decimal giving the same F32; the CLIP mean/std literals
  of handle_qwen25vl_clip and the Pixtral ones of handle_mistral3_clip differ in the last
  digit but give the same F32 bits (printed).
- Types: F16 matrices, F32 norms/biases. Every F32 tensor that comes from an Ollama F16 tensor
  holds F16-exact values, so F16 -> F32 (ggml_fp16_to_fp32 per element: exact widening) is
  lossless and bit-identical.
- "promote" = the handler changes the tensor's type F16 -> F32 in place (same ne) and loads
  it by widening every element.
- "injected if missing" = the handler sets the key only when the file does not have it.
- The handlers run on the whole monolithic file when Ollama passes it as --mmproj: they
  copy F.vision.* keys to clip.* keys, set general.architecture = clip, rename/transform the
  vision tensors and leave the text tensors and keys in place (the clip loader ignores them;
  the text-side handler hides v./mm. from the text loader). A translation that writes a
  separate projector GGUF should write only the clip keys below plus general.*, and only the
  v./mm. tensors listed (no orphans); llama.cpp's mtmd then loads it like the -mmproj-original.
- llama.cpp reads only some of the clip keys (see each family); the others are listed since
  the handler writes them and the fixture's original carries them with the same values.
- Stock llama-server (same llama.cpp) refuses every F-ollama.gguf as a text model (qwen25vl:
  unknown architecture; qwen3vl: no rope.dimension_sections; mistral3 and llama4: "wrong
  number of tensors", the v./mm. tensors are counted), and loads F-original.gguf with
  --mmproj F-mmproj-original.gguf.
"""

FAMILY_NOTES = {
    "qwen25vl": """\
qwen25vl  (projector qwen2.5vl_merger; llama.cpp tools/mtmd/models/qwen2vl.cpp;
           compat handle_qwen25vl_clip; Ollama converter convert_qwen25vl.go)
Text side (unchanged): arch qwen25vl -> qwen2vl, qwen25vl.* -> qwen2vl.*,
rope.mrope_section (3) -> rope.dimension_sections (4, padded with 0); v./mm. hidden.
Graph facts: RMS norms (no biases on ln1/ln2/post_ln), SiLU-gated FFN with biases, separate
q/k/v with biases, window attention on blocks where (il+1) % n_wa_pattern != 0 (block 0
here), full attention on block 1; the two patch_embd slices are two Conv2D summed for a still
image; merger = reshape 4 neighbouring patches into 4*E, mm.0 + GELU + mm.2.
Keys llama.cpp reads: projector_type, use_silu, embedding_length, feed_forward_length,
block_count, attention.head_count, projection_dim, attention.layer_norm_epsilon, image_size,
patch_size, image_mean/std, n_wa_pattern (required for qwen2.5vl), spatial_merge_size
(optional, default 2). num_channels and window_size are not read (window 112 is built in).
Byte transforms: none but the promotes: v.patch_embd_0.weight / v.patch_embd_1.weight are F16
[14, 14, 3, 32] in the Ollama file (convert_qwen25vl.go splits HF's Conv3D
[out, in, t=2, h, w] along t and drops the size-1 dim: the same element order as llama.cpp's
slices) and become F32 v.patch_embd.weight / v.patch_embd.weight.1 (same ne), each element
widened.
Handler, in order: copy keys (above); feed_forward_length = ne[1] of v.blk.0.ffn_up.weight if
missing; n_wa_pattern = fullatt_block_indexes[0] + 1 (inject 8 if still missing);
image_size 560, CLIP mean/std, has_vision_encoder, use_silu if missing; set projector_type and
general.architecture; rename exactly: v.merger.ln_q.weight -> v.post_ln.weight,
v.merger.mlp.0.{weight,bias} -> mm.0.*, v.merger.mlp.2.{weight,bias} -> mm.2.*,
v.patch_embd_0.weight -> v.patch_embd.weight, v.patch_embd_1.weight -> v.patch_embd.weight.1;
promote both patch_embd tensors F16 -> F32. All block tensors keep their names and bytes.
""",
    "qwen3vl": """\
qwen3vl  (projector qwen3vl_merger; llama.cpp tools/mtmd/models/qwen3vl.cpp;
          compat handle_qwen3vl_clip with register_qwen3vl_patch_embed_split; Ollama
          converter convert_qwen3vl.go before the separate-projector rewrite)
Text side (unchanged): rope.dimension_sections [24, 20, 20, 0] and n_deepstack_layers =
len(qwen3vl.vision.deepstack_visual_indexes) = 3 injected; v./mm. hidden. The text model's
input width is 64 * (1 + 3) = 256 = mm.2 width 64 * (1 + number of v.deepstack.N adapters),
which mtmd checks.
Graph facts: LayerNorm with biases, fused attn_qkv [E, 3E] + bias [3E] (Q = rows 0..E-1,
K = E..2E-1, V = 2E..3E-1), GELU FFN ffn_up [E, F] / ffn_down [F, E], learned position
embedding [E, 64] bilinearly resized from its 8x8 grid, patch bias; a deepstack adapter after
every block N that has v.deepstack.N.* (blocks 1, 2, 3 here: the deepstack indexes are
[1, 2, 3], so v.deepstack_merger.X maps to v.deepstack.{X+1}); their outputs are
concatenated after mm.2's output (width 64 + 3*64).
Keys llama.cpp reads: projector_type, use_gelu, embedding_length, feed_forward_length,
block_count, attention.head_count, projection_dim, attention.layer_norm_epsilon, image_size,
patch_size, image_mean/std, spatial_merge_size. The others (num_channels,
temporal_patch_size, vision.rope.freq_base, image_min/max_pixels, is_deepstack_layers) are not
read by this llama.cpp (the deepstack layers come from the v.deepstack.N tensors, the pixel
limits are built in: 8..4096 tokens).
Byte transforms (E = 32, P = 16, C = 3 channels, T = 2 frames, hw = P*P):
- Patch embedding. Ollama: v.patch_embed.weight F16 ne [P, P, T, E*C] = HF's Conv3D
  [out=E, in=C, t, h, w] with out*in merged (packed = c_out*C + c_in).
  llama.cpp: v.patch_embd.weight (slice t = 0) and v.patch_embd.weight.1 (slice t = 1),
  F32 ne [P, P, C, E] each. For slice s, every c_out < E, c_in < C, i < hw:
      dst_s[i + hw*(c_in + C*c_out)] = f32(src[i + hw*(s + T*(c_out*C + c_in))])
  (the handler: C from qwen3vl.vision.num_channels, default 3; requires ne[2] == 2 and
  ne[3] % C == 0, and src F16.) Inverse used to make the fixture (numpy, shapes = ne
  reversed): src = stack([slice0, slice1], axis=2).reshape(E*C, 2, P, P).
- QKV merge, per block b: v.blk.b.attn_qkv.weight F32 ne [E, 3E] = the bytes of attn_q,
  attn_k, attn_v (each F16 ne [E, E]) converted to F32 and concatenated in that order (q's E
  rows, then k's, then v's); v.blk.b.attn_qkv.bias F32 [3E] = attn_q.bias | attn_k.bias |
  attn_v.bias (F32 [E] each in the Ollama file, copied). The handler's concat converts any
  source type to F32 (ggml to_float), so F16 and F32 sources both work.
- v.pos_embed.weight F16 [E, 64] -> v.position_embd.weight F32 (promote).
Handler, in order: copy keys (above) and the defaults; feed_forward_length from ne[1] of
v.blk.0.mlp.linear_fc1.weight; image_size = floor(sqrt(ne[1] of v.pos_embed.weight)) *
patch_size (= 8 * 16 = 128); image_mean/std copied (0.5 defaults), image_min_pixels <-
shortest_edge, image_max_pixels <- longest_edge (defaults 65536 / 16777216);
is_deepstack_layers = block_count bools true at the deepstack indexes; has_vision_encoder,
use_gelu; projector_type, general.architecture; then
 1. per block: QKV merge (above) into v.blk.b.attn_qkv.weight/.bias (taking attn_q's and
    attn_q.bias's slots);
 2. patch embed split (above); slice 1 reclaims the orphan v.blk.0.attn_k.weight slot;
 3. exact renames: v.merger.norm.{weight,bias} -> v.post_ln.*, v.merger.linear_fc1.* -> mm.0.*,
    v.merger.linear_fc2.* -> mm.2.*, v.patch_embed.bias -> v.patch_embd.bias,
    v.pos_embed.weight -> v.position_embd.weight;
 4. v.deepstack_merger.X.{norm,linear_fc1,linear_fc2}.{weight,bias} ->
    v.deepstack.{deepstack_visual_indexes[X]}.{norm,fc1,fc2}.{weight,bias};
 5. substring renames in v.blk.*: .norm1 -> .ln1, .norm2 -> .ln2, .mlp.linear_fc1 -> .ffn_up,
    .mlp.linear_fc2 -> .ffn_down;
 6. promote v.position_embd.weight F16 -> F32.
The handler leaves the other attn_k/attn_v slots as orphans named v.blk.b.attn_k/v.weight
(and their biases) which llama.cpp loads but does not use; a separate projector should drop
them (the -mmproj-original has none).
""",
    "mistral3": """\
mistral3  (projector pixtral; llama.cpp tools/mtmd/models/pixtral.cpp;
           compat handle_mistral3_clip with register_mistral3_vision_qk_permute;
           Ollama converter convert_mistral.go)
Text side (unchanged): rope.scaling.beta_fast/beta_slow/mscale_all_dim and rope.scaling_beta
renamed to yarn_beta_fast/yarn_beta_slow/yarn_log_multiplier and
attention.temperature_scale; tokenizer.ggml.pre = tekken when missing; v./mm. hidden.
Graph facts: RMS norms without biases (pre_ln, ln1, ln2, mm.input_norm), 2D rope on q/k
(theta 10000 built in), SiLU-gated FFN without biases, no biases anywhere in the tower;
patch merger (mm.input_norm + 2x2 unfold + mm.patch_merger [4E, E]), then mm.1 + GELU + mm.2
(no biases: mistral3.mm.projector_bias false); [IMG_BREAK] = v.token_embd.img_break added
after every row of merged patches but the last.
Keys llama.cpp reads: projector_type, use_silu, embedding_length, feed_forward_length,
block_count, attention.head_count, projection_dim (not used for the width: mm.2 decides),
attention.layer_norm_epsilon, image_size, patch_size, image_mean/std, spatial_merge_size.
num_channels and clip.rope.freq_base are not read.
Byte transforms (E = 32, 2 heads, head_dim D = 16):
- Vision Q/K rows. Ollama keeps HF's row order (convert_mistral.go repacks only text q/k);
  llama.cpp's converter applies LlamaModel.permute with the vision head count. For
  v.blk.b.attn_q.weight and attn_k.weight (F16 ne [E, E]; rows = ne[1]; the handler only
  touches F16), with n_head = mistral3.vision.attention.head_count:
      for oa in 0..E-1:  h = oa / D, j = (oa % D) / 2, half = oa % 2,
                         ob = h*D + half*(D/2) + j;   dst row oa = src row ob
  (whole rows of ne[0] elements, bytes copied). Inverse used to make the fixture (numpy,
  rows x cols): hf = llama.reshape(n_head, D/2, 2, cols).swapaxes(1, 2).reshape(E, cols).
- v.patch_conv.weight F16 [16, 16, 3, E] -> v.patch_embd.weight F32 (promote).
- v.token_embd.img_break: F32 [mistral3.embedding_length = 64], all zeros, synthesized (the
  Ollama file has no such tensor; the handler renames the text model's output_norm.weight
  slot, F32 [64], and zero-fills it). The -mmproj-original carries the same zeros, so it is
  equivalent (a real Pixtral mmproj has token_embd row 12 there).
Handler, in order: copy keys (above); eps 1e-5, Pixtral mean/std, has_vision_encoder,
use_silu if missing; projector_type, general.architecture; img_break zero-fill; vision Q/K
permute for every block (by the pre-rename names v.blk.b.attn_q/k.weight); substring renames
in this order (first occurrence per name): v.patch_conv -> v.patch_embd,
v.encoder_norm -> v.pre_ln, .attn_output -> .attn_out, .attn_norm -> .ln1, .ffn_norm -> .ln2,
mm.linear_1 -> mm.1, mm.linear_2 -> mm.2, mm.patch_merger.merging_layer -> mm.patch_merger,
mm.norm -> mm.input_norm; promote v.patch_embd.weight F16 -> F32.
""",
    "llama4": """\
llama4  (projector llama4; llama.cpp tools/mtmd/models/llama4.cpp; compat handle_llama4_clip;
         Ollama converter convert_llama4.go)
Text side: identical in both files (llama.cpp's llama4 arch); handle_llama4 only hides v./mm.
from the text loader (detected by arch llama4 plus any v./mm. tensor). The text model:
4 layers, embedding 64, 4 heads / 2 kv heads, head_dim 16, layers 0 and 2 dense FFN 128,
layers 1 and 3 MoE (4 experts of 64, 1 used, sigmoid router, shared expert 64;
interleave_moe_layer_step 2), no attention.sliding_window key, so llama.cpp uses chunked
attention (chunk 8192) with rope and L2 q/k norm on layers 0-2 and full attention without
rope, with the attention temperature, on layer 3 (4 layers are the fewest this llama.cpp
runs: without a no-rope layer it aborts on the unused temperature input);
SmolLM2's tokenizer (pre smollm) with a short Llama 4 style chat template.
Real Ollama llama4 files also carry llama4.use_qk_norm and llama4.attention.chunk_size, which
llama.cpp does not read; the fixture has neither.
Graph facts: unfold + linear patch embedding (v.patch_embd.weight [3*P*P, E], no bias), a
[CLS] token (v.class_embd [E]) appended after the patches, learned position embedding
[E, n_patches + 1] added before pre_ln, LayerNorm with biases, separate q/k/v/out with biases,
2D rope (theta 10000 built in), GELU FFN with biases; drop [CLS], pixel shuffle by
scale_factor 2 (4x4 patches -> 2x2 tokens of width 4E), mm.model.mlp.1 + GELU + mm.model.mlp.2
+ GELU, then mm.model.fc (no biases in the adapter/projector). Images go through llava-uhd
tiles of image_size (64): a 32x32 picture is one 64x64 tile = 4 tokens.
Keys llama.cpp reads: projector_type (clip.projector_type first, else
clip.vision.projector_type), use_gelu, embedding_length, feed_forward_length, block_count,
attention.head_count, projection_dim, attention.layer_norm_epsilon, image_size, patch_size,
image_mean/std, projector.scale_factor.
Byte transforms: none. All tensors keep type and bytes (F16 matrices incl. the patch
embedding, F32 norms/biases, class embedding and v.positional_embedding_vlm).
Handler, in order: copy keys (above); projector.scale_factor = round(1 / pixel_shuffle_ratio)
(2 if missing/<= 0); mean/std 0.5, has_vision_encoder, use_gelu if missing; set
clip.projector_type AND clip.vision.projector_type = llama4, general.architecture = clip;
exact rename v.positional_embedding_vlm -> v.position_embd.weight; substring renames in this
order (first occurrence per name): v.vision_adapter.mlp.fc1 -> mm.model.mlp.1,
v.vision_adapter.mlp.fc2 -> mm.model.mlp.2, mm.linear_1 -> mm.model.fc,
v.class_embedding -> v.class_embd, v.layernorm_post -> v.post_ln, v.layernorm_pre -> v.pre_ln,
v.patch_embedding -> v.patch_embd, .attn_output -> .attn_out, .attn_norm -> .ln1,
.ffn_norm -> .ln2, .mlp.fc1 -> .ffn_up, .mlp.fc2 -> .ffn_down. (The adapter renames must run
before the generic .mlp.fc1/.mlp.fc2 ones.)
""",
}


def format_f32(value):
    """The shortest decimal that gives the same F32."""
    v = np.float32(value)
    if v != 0 and (abs(v) < 1e-3 or abs(v) >= 1e7):
        return np.format_float_scientific(v, unique=True, trim="-")
    return np.format_float_positional(v, unique=True, trim="-")


def format_value(vtype, value, sub):
    if vtype == VT.ARRAY:
        if sub == VT.FLOAT32:
            text = "[" + ", ".join(format_f32(v) for v in value) + "]"
            if any(np.float32(v) != np.float32(0.5) for v in value):
                bits = " ".join(f"{int(np.float32(v).view(np.uint32)):#010x}" for v in value)
                text += f" (F32 bits {bits})"
            return text
        if sub == VT.BOOL:
            return "[" + ", ".join("true" if v else "false" for v in value) + "]"
        return "[" + ", ".join(str(v) for v in value) + "]"
    if vtype == VT.BOOL:
        return "true" if value else "false"
    if vtype == VT.FLOAT32:
        return format_f32(value)
    if isinstance(value, bytes):
        return value.decode()
    return str(value)


def tensor_label(name, qtype, ne):
    return f"{name} {qtype.name} {list(ne)}"


def vision_reference(towers):
    lines = [VISION_REFERENCE_HEAD]
    for tower in towers:
        lines += ["=" * 94, FAMILY_NOTES[tower.family]]
        lines.append("clip-side keys (value <- where the handler takes it from):")
        for key, vtype, value, sub, source in tower.keys:
            lines.append(f"  {key} = {format_value(vtype, value, sub)}")
            lines.append(f"      <- {source}")
        lines.append("  (plus general.architecture = clip; the -mmproj-original also has"
                     " general.type = mmproj, general.name, general.file_type 1,"
                     " general.quantization_version 2)")
        lines += ["", f"vision keys in {tower.family}-ollama.gguf:"]
        for key, vtype, value, sub in tower.ollama_keys:
            lines.append(f"  {key} = {format_value(vtype, value, sub)}")
        lines += ["", "tensors (Ollama -> clip; type and ne; files in this order):"]
        for clip, ollama, note in tower.groups:
            left = [tensor_label(*t[:3]) for t in ollama] or ["(none)"]
            right = [tensor_label(*t[:3]) for t in clip] or ["(none: dropped)"]
            if len(left) == 1 and len(right) == 1 and not note:
                lines.append(f"  {left[0]}  ->  {right[0]}")
                continue
            for i, text in enumerate(left):
                lines.append(f"  {text}" + (" +" if i + 1 < len(left) else ""))
            for i, text in enumerate(right):
                lines.append(f"    -> {text}")
            if note:
                lines.append(f"       [{note}]")
        lines.append("")
    return "\n".join(lines)


# --------------------------------------------------------------------------------------------
# Gemma 3

# The embedded SigLIP tower of gemma3-4b-style.gguf. tokens_per_image 4 with llama.cpp's
# default gemma3 pooling (n_merge 4: avg-pool 4x4 patches into one token) needs 8x8 patches,
# hence image 128 with patch 16 (Ollama derives the same pooling from tokens_per_image).
G3V = dict(blocks=2, embd=64, ff=128, image=128, patch=16, heads=4, eps=1e-6, tokens=4)
G3V["patches"] = (G3V["image"] // G3V["patch"]) ** 2
G3_EXTRA_TOKENS = 64


def gemma3_1b_style(gemma):
    m = gemma.copy()
    m.drop("gemma3.attention.layer_norm_rms_epsilon")
    m.rename("gemma3.rope.freq_base", "gemma3.rope.global.freq_base")
    m.f32("gemma3.rope.local.freq_base", 10000.0)
    m.kv.pop("tokenizer.chat_template", None)
    return m


def gemma3_vision_tensors(text_embd):
    """(Ollama name, clip name, ggml type, ne) of the tower, in file order."""
    v = G3V
    e, f, p = v["embd"], v["ff"], v["patch"]
    out = [
        ("v.patch_embedding.weight", "v.patch_embd.weight", QT.F16, [p, p, 3, e]),
        ("v.patch_embedding.bias", "v.patch_embd.bias", QT.F32, [e]),
        ("v.position_embedding.weight", "v.position_embd.weight", QT.F16, [e, v["patches"]]),
    ]
    for b in range(v["blocks"]):
        o, c = f"v.blk.{b}.", f"v.blk.{b}."
        out += [
            (o + "layer_norm1.weight", c + "ln1.weight", QT.F32, [e]),
            (o + "layer_norm1.bias", c + "ln1.bias", QT.F32, [e]),
            (o + "attn_q.weight", c + "attn_q.weight", QT.F16, [e, e]),
            (o + "attn_q.bias", c + "attn_q.bias", QT.F32, [e]),
            (o + "attn_k.weight", c + "attn_k.weight", QT.F16, [e, e]),
            (o + "attn_k.bias", c + "attn_k.bias", QT.F32, [e]),
            (o + "attn_v.weight", c + "attn_v.weight", QT.F16, [e, e]),
            (o + "attn_v.bias", c + "attn_v.bias", QT.F32, [e]),
            (o + "attn_output.weight", c + "attn_out.weight", QT.F16, [e, e]),
            (o + "attn_output.bias", c + "attn_out.bias", QT.F32, [e]),
            (o + "layer_norm2.weight", c + "ln2.weight", QT.F32, [e]),
            (o + "layer_norm2.bias", c + "ln2.bias", QT.F32, [e]),
            # HF fc1 (embd -> ff) is named ffn_down on the clip side; clip.cpp swaps
            # up/down back for gemma3 because ffn_down's ne[0] equals n_embd
            (o + "mlp.fc1.weight", c + "ffn_down.weight", QT.F16, [e, f]),
            (o + "mlp.fc1.bias", c + "ffn_down.bias", QT.F32, [f]),
            (o + "mlp.fc2.weight", c + "ffn_up.weight", QT.F16, [f, e]),
            (o + "mlp.fc2.bias", c + "ffn_up.bias", QT.F32, [e]),
        ]
    out += [
        ("v.post_layernorm.weight", "v.post_ln.weight", QT.F32, [e]),
        ("v.post_layernorm.bias", "v.post_ln.bias", QT.F32, [e]),
        # clip.cpp multiplies transpose(input_projection) [e, text] with the pooled tokens
        ("mm.mm_input_projection.weight", "mm.input_projection.weight", QT.F16, [text_embd, e]),
        ("mm.mm_soft_emb_norm.weight", "mm.soft_emb_norm.weight", QT.F32, [e]),
    ]
    return out


def gemma3_4b_style(gemma):
    w = Weights(3006)
    m = gemma.copy()
    m.drop("gemma3.attention.layer_norm_rms_epsilon")
    m.drop("gemma3.rope.freq_base")
    m.kv.pop("tokenizer.chat_template", None)
    # Ollama's tokenizer arrays keep the multimodal tokens the text embedding lacks
    tokens = list(m.kv["tokenizer.ggml.tokens"][1])
    scores = list(m.kv["tokenizer.ggml.scores"][1])
    types = list(m.kv["tokenizer.ggml.token_type"][1])
    extra = [b"<image_soft_token>"] + [f"<unused_mm_{i}>".encode()
                                       for i in range(G3_EXTRA_TOKENS - 1)]
    assert not set(extra) & set(tokens)
    tokens += extra
    scores += [0.0] * G3_EXTRA_TOKENS
    types += [TT_CONTROL] + [TT_USER_DEFINED] * (G3_EXTRA_TOKENS - 1)
    m.kv["tokenizer.ggml.tokens"] = (VT.ARRAY, tokens, VT.STRING)
    m.kv["tokenizer.ggml.scores"] = (VT.ARRAY, scores, VT.FLOAT32)
    m.kv["tokenizer.ggml.token_type"] = (VT.ARRAY, types, VT.INT32)
    m.boolean("tokenizer.ggml.add_padding_token", False)
    v = G3V
    m.u32("gemma3.vision.block_count", v["blocks"])
    m.u32("gemma3.vision.embedding_length", v["embd"])
    m.u32("gemma3.vision.feed_forward_length", v["ff"])
    m.u32("gemma3.vision.image_size", v["image"])
    m.u32("gemma3.vision.patch_size", v["patch"])
    m.u32("gemma3.vision.num_channels", 3)
    m.u32("gemma3.vision.attention.head_count", v["heads"])
    m.f32("gemma3.vision.attention.layer_norm_epsilon", v["eps"])
    m.u32("gemma3.mm.tokens_per_image", v["tokens"])
    text_embd = gemma.kv["gemma3.embedding_length"][1]
    for name, _, qtype, ne in gemma3_vision_tensors(text_embd):
        if qtype == QT.F32:
            is_norm = "norm" in name and name.endswith(".weight")
            put(m, name, w.vec(ne, 0.1, 1.0) if is_norm else w.vec(ne))
        else:
            put(m, name, w.mat(ne, 0.05 if "embedding" in name else None))
    return m


def gemma3_reference(text_embd):
    v = G3V
    side = v["image"] // v["patch"]
    keys = [
        ("general.architecture", "clip", ""),
        ("clip.projector_type", "gemma3", ""),
        ("clip.has_vision_encoder", "true", ""),
        ("clip.use_gelu", "true", ""),
        ("clip.vision.block_count", v["blocks"], "gemma3.vision.block_count"),
        ("clip.vision.embedding_length", v["embd"], "gemma3.vision.embedding_length"),
        ("clip.vision.feed_forward_length", v["ff"], "gemma3.vision.feed_forward_length"),
        ("clip.vision.image_size", v["image"], "gemma3.vision.image_size"),
        ("clip.vision.patch_size", v["patch"], "gemma3.vision.patch_size"),
        ("clip.vision.attention.head_count", v["heads"], "gemma3.vision.attention.head_count"),
        ("clip.vision.attention.layer_norm_epsilon", f"{v['eps']:g}",
         "gemma3.vision.attention.layer_norm_epsilon"),
        ("clip.vision.projection_dim", text_embd, "gemma3.embedding_length (text model)"),
        ("clip.vision.image_mean", "[0.5, 0.5, 0.5]", ""),
        ("clip.vision.image_std", "[0.5, 0.5, 0.5]", ""),
    ]
    lines = [
        "Gemma 3 vision tower of gemma3-4b-style.gguf, as llama.cpp's mtmd clip loader",
        "(tools/mtmd/clip.cpp, clip-impl.h; projector type gemma3, graph in models/siglip.cpp)",
        "expects it once the Ollama names are renamed (as Ollama's compat handle_gemma3_clip",
        "does). Shapes are in ggml ne order (ne[0] first).",
        "",
        "clip-side keys (<- the Ollama key they come from):",
    ]
    for key, value, source in keys:
        line = f"  {key} = {value}"
        lines.append(f"{line:52s}<- {source}" if source else line)
    lines += [
        "  (no clip.vision.projector.scale_factor: llama.cpp's gemma3 default n_merge 4",
        f"   avg-pools the {side}x{side} patches 4x4 into gemma3.mm.tokens_per_image ="
        f" {v['tokens']} tokens)",
        "",
        "tensors (Ollama name -> clip name, type, ne):",
    ]
    for ollama, clip, qtype, ne in gemma3_vision_tensors(text_embd):
        lines.append(f"  {ollama:32s} -> {clip:28s} {qtype.name:4s} {ne}")
    lines += [
        "",
        "Notes:",
        "- patch_embd is the conv kernel [patch, patch, 3, embd]; position_embd is",
        "  [embd, n_patches] and is added to the patch embeddings.",
        "- mlp.fc1 (embd -> ff) becomes ffn_down and mlp.fc2 (ff -> embd) becomes ffn_up;",
        "  clip.cpp swaps them back for gemma3 since ffn_down.ne[0] == embd (it logs",
        "  'ffn up/down are swapped').",
        "- After the tower and post_ln: avg-pool, RMS norm times soft_emb_norm, then",
        "  mul_mat(transpose(input_projection), x): input_projection is [text_embd, embd].",
        "- v.position_embd.weight must be promoted to F32 (llama.cpp's converter writes it and",
        "  patch_embd as F32; Ollama's compat promotes both): with it F16 the clip graph's",
        "  add of the position embeddings aborts in ggml's CPU add when an image is encoded",
        "  (loading and warmup still pass). An F16 patch_embd works on the CPU.",
        "- Checked with the vendored llama-server: the 270M text model plus an mmproj made",
        "  from these tensors and keys (position_embd promoted) encodes a 128x128 image into",
        f"  {v['tokens']} tokens of width {text_embd}.",
        "",
    ]
    return "\n".join(lines)


# --------------------------------------------------------------------------------------------
# Gemma 3n and EmbeddingGemma (random bodies, Gemma 3 270M's tokenizer)

# Ollama's Gemma 3n files keep the multimodal vocabulary (262400 = 262144 + 256) in token_embd
# and the tokenizer arrays; per_layer_token_embd has only the text vocabulary.
GEMMA3N_MM_TOKENS = 256
GEMMA_END_OF_TURN = 106
# Fixed in this llama.cpp's gemma3n (llama-hparams.h), not read from the file: 4 altup inputs,
# laurel rank 64 and 256 per-layer input values per layer.
GEMMA3N_ALTUP, GEMMA3N_LAUREL_RANK, GEMMA3N_PER_LAYER = 4, 64, 256


def gemma_tokenizer(gemma):
    """Gemma 3 270M's tokenizer keys as llama.cpp's converter wrote them (SentencePiece
    `llama`, 262144 tokens; byte tokens BYTE, `<unusedN>` CONTROL)."""
    return {k: v for k, v in gemma.kv.items() if k.startswith("tokenizer.")}


def is_byte_token(token):
    return len(token) == 6 and token.startswith(b"<0x") and token.endswith(b">")


def gemma3n_handler_types(tokens, types):
    """The token types Ollama's handle_gemma3n leaves: `<0xXX>` BYTE, `<unused...>` NORMAL,
    the others unchanged."""
    return [TT_BYTE if is_byte_token(t) else TT_NORMAL if t.startswith(b"<unused") else k
            for t, k in zip(tokens, types)]


def make_gemma3n(gemma):
    """llama.cpp's `gemma3n` text model: 2 layers (both with their own KV: this llama.cpp
    shares KV only from layer 20 on), the first sliding-window, activation sparsity on both
    (llama.cpp applies it to the first 10 layers whatever the file says), per-layer token
    embeddings [256 * n_layer, vocab] in TQ1_0 (to keep the file small), the output tied to a
    Q4_0 token embedding. Norms are not shifted (gemma3n's RMS norm has no +1). The tokenizer
    holds what Ollama's handle_gemma3n produces (see ollama_gemma3n)."""
    w = Weights(3007)
    n_embd, n_layer, n_head, n_kv, head_dim, n_ff = 64, 2, 4, 2, 32, 128
    n_altup, rank, n_pl = GEMMA3N_ALTUP, GEMMA3N_LAUREL_RANK, GEMMA3N_PER_LAYER
    tok = gemma_tokenizer(gemma)
    tokens = tok["tokenizer.ggml.tokens"][1]
    vocab = len(tokens)
    tok["tokenizer.ggml.token_type"] = (
        VT.ARRAY, gemma3n_handler_types(tokens, tok["tokenizer.ggml.token_type"][1]), VT.INT32)
    tok["tokenizer.ggml.eos_token_ids"] = (VT.ARRAY, [1, GEMMA_END_OF_TURN], VT.INT32)
    m = base_model("gemma3n", "tiny-random-gemma-3n", tok, {
        "context_length": ("u32", 32768),
        "embedding_length": ("u32", n_embd),
        "block_count": ("u32", n_layer),
        "feed_forward_length": ("u32", n_ff),
        "attention.head_count": ("u32", n_head),
        "attention.layer_norm_rms_epsilon": ("f32", 1e-6),
        "attention.key_length": ("u32", head_dim),
        "attention.value_length": ("u32", head_dim),
        "rope.freq_base": ("f32", 1000000.0),
        "rope.freq_base_swa": ("f32", 10000.0),
        "final_logit_softcapping": ("f32", 30.0),
        "attention.sliding_window": ("u32", 512),
        "attention.head_count_kv": ("u32", n_kv),
        "altup.active_idx": ("u32", 0),
        "altup.num_inputs": ("u32", n_altup),
        "embedding_length_per_layer_input": ("u32", n_pl),
        "attention.shared_kv_layers": ("u32", 0),
        # normal icdf(0.95) per layer, as the converter computes it from the sparsity pattern
        "activation_sparsity_scale": ("f32s", [1.6448533535003662] * n_layer),
        "attention.sliding_window_pattern": ("bools", [True, False]),
    })
    put(m, "token_embd.weight", w.quantized(QT.Q4_0, [n_embd, vocab], TIED_EMBD_SCALE))
    put(m, "per_layer_token_embd.weight", w.quantized(QT.TQ1_0, [n_pl * n_layer, vocab], 1.0))
    put(m, "per_layer_model_proj.weight", w.mat([n_embd, n_pl * n_layer]))
    put(m, "per_layer_proj_norm.weight", w.norm(n_pl))
    put(m, "altup_proj.weight", w.mat([n_embd, n_embd, n_altup - 1]))
    put(m, "altup_unembd_proj.weight", w.mat([n_embd, n_embd, n_altup - 1]))
    for i in range(n_layer):
        p = f"blk.{i}."
        put(m, p + "attn_norm.weight", w.norm(n_embd))
        put(m, p + "attn_q.weight", w.mat([n_embd, n_head * head_dim]))
        put(m, p + "attn_k.weight", w.mat([n_embd, n_kv * head_dim]))
        put(m, p + "attn_v.weight", w.mat([n_embd, n_kv * head_dim]))
        put(m, p + "attn_q_norm.weight", w.norm(head_dim))
        put(m, p + "attn_k_norm.weight", w.norm(head_dim))
        put(m, p + "attn_output.weight", w.mat([n_head * head_dim, n_embd]))
        put(m, p + "post_attention_norm.weight", w.norm(n_embd))
        put(m, p + "ffn_norm.weight", w.norm(n_embd))
        put(m, p + "ffn_gate.weight", w.mat([n_embd, n_ff]))
        put(m, p + "ffn_up.weight", w.mat([n_embd, n_ff]))
        put(m, p + "ffn_down.weight", w.mat([n_ff, n_embd]))
        put(m, p + "post_ffw_norm.weight", w.norm(n_embd))
        put(m, p + "inp_gate.weight", w.mat([n_embd, n_pl]))
        put(m, p + "proj.weight", w.mat([n_pl, n_embd]))
        put(m, p + "post_norm.weight", w.norm(n_embd))
        put(m, p + "altup_correct_coef.weight", w.vec([n_altup, n_altup], 0.1))
        put(m, p + "altup_correct_scale.weight", w.norm(n_embd))
        put(m, p + "altup_predict_coef.weight", w.vec([n_altup, n_altup * n_altup], 0.1))
        put(m, p + "altup_router.weight", w.mat([n_embd, n_altup]))
        put(m, p + "altup_router_norm.weight", w.norm(n_embd))
        put(m, p + "laurel_l.weight", w.mat([n_embd, rank]))
        put(m, p + "laurel_r.weight", w.mat([rank, n_embd]))
        put(m, p + "laurel_post_norm.weight", w.norm(n_embd))
    put(m, "output_norm.weight", w.norm(n_embd))
    return m


def ollama_gemma3n(orig, gemma):
    """The inverse of Ollama's handle_gemma3n: token_embd and the tokenizer arrays get 256
    multimodal tokens more (rows/entries 262144..262399; per_layer_token_embd keeps 262144);
    token types as Ollama's SentencePiece converter writes them (the piece types: byte tokens
    BYTE, `<unusedN>` CONTROL, i.e. Gemma 3 270M's types); the added tokens are USER_DEFINED
    with score -1000 as Ollama gives entries of added_tokens.json. tokenizer.ggml.model stays
    `llama` (Ollama's SentencePiece converter writes it) and eos_token_ids stays [1, 106]
    (Ollama writes generation_config.json's eos_token_id list, which has 106)."""
    w = Weights(3009)
    m = orig.copy()
    tokens = list(m.kv["tokenizer.ggml.tokens"][1])
    scores = list(m.kv["tokenizer.ggml.scores"][1])
    types = list(gemma.kv["tokenizer.ggml.token_type"][1])
    assert gemma3n_handler_types(tokens, types) == m.kv["tokenizer.ggml.token_type"][1]
    assert types != m.kv["tokenizer.ggml.token_type"][1]
    extra = [b"<image_soft_token>", b"<audio_soft_token>"] + [
        f"<mm_reserved_{i}>".encode() for i in range(GEMMA3N_MM_TOKENS - 2)]
    assert not set(extra) & set(tokens)
    tokens += extra
    scores += [-1000.0] * GEMMA3N_MM_TOKENS
    types += [TT_USER_DEFINED] * GEMMA3N_MM_TOKENS
    m.kv["tokenizer.ggml.tokens"] = (VT.ARRAY, tokens, VT.STRING)
    m.kv["tokenizer.ggml.scores"] = (VT.ARRAY, scores, VT.FLOAT32)
    m.kv["tokenizer.ggml.token_type"] = (VT.ARRAY, types, VT.INT32)
    # the first 262144 rows stay byte for byte (Q4_0 rows are whole blocks)
    qtype, ne, data = m.tensors["token_embd.weight"]
    _, _, rows = w.quantized(qtype, [ne[0], GEMMA3N_MM_TOKENS], TIED_EMBD_SCALE)
    m.tensors["token_embd.weight"] = (
        qtype, (ne[0], ne[1] + GEMMA3N_MM_TOKENS),
        np.concatenate([np.asarray(data).reshape(ne[1], -1), rows]))
    assert m.tensors["per_layer_token_embd.weight"][1][1] == ne[1]
    return m


EMBEDDINGGEMMA_DENSE = 128
EMBEDDINGGEMMA_DENSE_KEYS = ("dense_2_feat_in", "dense_2_feat_out", "dense_3_feat_in",
                             "dense_3_feat_out")


def make_embeddinggemma(gemma):
    """llama.cpp's `gemma-embedding` (EmbeddingGemma converted with the sentence-transformers
    dense modules): a non-causal gemma3 body of 6 layers, mean pooling, then dense_2
    (64 -> 128) and dense_3 (128 -> 64). With llama.cpp's default pattern 6 (the file has no
    sliding_window_pattern) layers 0-4 use a symmetric sliding window (8 here, so that it
    matters for a short input) and layer 5 full attention; this llama.cpp needs a full
    layer: with every layer sliding (fewer than 6 layers) the unused full-attention mask is
    never allocated and the first encode aborts (GGML_ASSERT(buffer) in
    llm_graph_input_attn_no_cache::set_input). Norms are around 1 (gemma3's +1 baked in)."""
    w = Weights(3008)
    n_embd, n_layer, n_head, n_kv, head_dim, n_ff = 64, 6, 4, 1, 32, 128
    n_dense = EMBEDDINGGEMMA_DENSE
    vocab = len(gemma.kv["tokenizer.ggml.tokens"][1])
    m = base_model("gemma-embedding", "tiny-random-embeddinggemma", gemma_tokenizer(gemma), {
        "context_length": ("u32", 2048),
        "embedding_length": ("u32", n_embd),
        "block_count": ("u32", n_layer),
        "feed_forward_length": ("u32", n_ff),
        "attention.head_count": ("u32", n_head),
        "attention.layer_norm_rms_epsilon": ("f32", 1e-6),
        "attention.key_length": ("u32", head_dim),
        "attention.value_length": ("u32", head_dim),
        "rope.freq_base": ("f32", 1000000.0),
        "rope.freq_base_swa": ("f32", 10000.0),
        "attention.sliding_window": ("u32", 8),
        "attention.head_count_kv": ("u32", n_kv),
        "dense_2_feat_in": ("u32", n_embd),
        "dense_2_feat_out": ("u32", n_dense),
        "dense_3_feat_in": ("u32", n_dense),
        "dense_3_feat_out": ("u32", n_embd),
        "pooling_type": ("u32", 1),  # mean
    })
    put(m, "token_embd.weight", w.q8_0([n_embd, vocab], 1.0))
    for i in range(n_layer):
        p = f"blk.{i}."
        put(m, p + "attn_norm.weight", w.norm(n_embd))
        put(m, p + "attn_q.weight", w.mat([n_embd, n_head * head_dim], 2.0 / np.sqrt(n_embd)))
        put(m, p + "attn_k.weight", w.mat([n_embd, n_kv * head_dim], 2.0 / np.sqrt(n_embd)))
        put(m, p + "attn_v.weight", w.mat([n_embd, n_kv * head_dim]))
        put(m, p + "attn_q_norm.weight", w.norm(head_dim))
        put(m, p + "attn_k_norm.weight", w.norm(head_dim))
        put(m, p + "attn_output.weight", w.mat([n_head * head_dim, n_embd]))
        put(m, p + "post_attention_norm.weight", w.norm(n_embd))
        put(m, p + "ffn_norm.weight", w.norm(n_embd))
        put(m, p + "ffn_gate.weight", w.mat([n_embd, n_ff]))
        put(m, p + "ffn_up.weight", w.mat([n_embd, n_ff]))
        put(m, p + "ffn_down.weight", w.mat([n_ff, n_embd]))
        put(m, p + "post_ffw_norm.weight", w.norm(n_embd))
    put(m, "output_norm.weight", w.norm(n_embd))
    put(m, "dense_2.weight", w.mat([n_embd, n_dense]))
    put(m, "dense_3.weight", w.mat([n_dense, n_embd]))
    return m


def ollama_embeddinggemma(orig):
    """The inverse of Ollama's handle_embeddinggemma: architecture `gemma3` with every key
    under `gemma3.`, no dense_*_feat_* keys and no rope.freq_base_swa (the handler derives
    the first from the tensors and injects 10000 for the second), plus the keys the handler
    removes: `gemma3.attention.sliding_window_pattern` (bools per layer, as convert_gemma3.go
    writes it from the HF layer_types: 5 sliding, then 1 full, the same as llama.cpp's
    default pattern 6) and
    `gemma3.attention.causal` = false. Tensors `dense.0.weight`, `dense.1.weight` and
    `norm.weight` for dense_2, dense_3 and output_norm (same bytes, same positions)."""
    m = orig.copy()
    m.arch = "gemma3"
    m.rename_prefix("gemma-embedding.", "gemma3.")
    for key in EMBEDDINGGEMMA_DENSE_KEYS:
        m.drop("gemma3." + key)
    m.drop("gemma3.rope.freq_base_swa")
    n_layer = m.kv["gemma3.block_count"][1]
    m.kv = {**{k: v for k, v in m.kv.items() if not k.startswith("tokenizer.")},
            "gemma3.attention.sliding_window_pattern": (
                VT.ARRAY, [(i + 1) % 6 != 0 for i in range(n_layer)], VT.BOOL),
            "gemma3.attention.causal": (VT.BOOL, False, None),
            **{k: v for k, v in m.kv.items() if k.startswith("tokenizer.")}}
    m.rename_tensor("dense_2.weight", "dense.0.weight")
    m.rename_tensor("dense_3.weight", "dense.1.weight")
    m.rename_tensor("output_norm.weight", "norm.weight")
    return m


TEXT_REFERENCE_HEAD = """\
Text-model fixtures gemma3n and embeddinggemma: what rollama's translation of each F-ollama.gguf
must give, namely F-original.gguf. Each -ollama file is the exact inverse of Ollama's text-side
compat handler (ollama/ollama llama/compat/llama-ollama-compat.cpp: handle_gemma3n,
handle_embeddinggemma): running the handler's steps on it gives the original's keys (same
names, types and values) and tensors (same names, order, types, ne and bytes), except that
Ollama's handle_embeddinggemma COPIES the gemma3.* keys (rename_kv_prefix leaves the old ones,
which llama.cpp ignores) where the original has only gemma-embedding.* keys.
Shapes are ggml ne order (ne[0] first). Both use Gemma 3 270M's tokenizer (SentencePiece
`llama`, 262144 tokens, bos 2, eos 1, unk 3, pad 0).
"""

TEXT_NOTES = {
    "gemma3n": """\
gemma3n (gemma3n-original.gguf / gemma3n-ollama.gguf): llama.cpp's gemma3n text model, 2 layers,
embedding 64, 4 heads (2 KV) of 32, ffn 128, 4 altup inputs, laurel rank 64, per-layer inputs
256 per layer (the last three fixed in this llama.cpp), output tied to token_embd.
Detect: general.architecture = gemma3n and token_embd.weight ne[1] !=
per_layer_token_embd.weight ne[1] (here 262400 vs 262144).
Handler steps, in order: tokenizer.ggml.model = "llama" (already "llama" here: Ollama's
SentencePiece converter writes it); token_embd.weight ne[1] = per_layer_token_embd.weight
ne[1] (the data keeps its offset: the first rows are read, no bytes move); tokens, scores and
token_type cut to that many entries; then every token_type entry whose token is `<0x..>`
(exactly 6 bytes, "<0x" ... ">") becomes 6 (BYTE) and every one whose token starts with
"<unused" becomes 1 (NORMAL); tokenizer.ggml.eos_token_ids gets 106 appended when it lacks it
(same array type, INT32 or UINT32), or is set to INT32 [1, 106] when absent.
llama.cpp ignores tokenizer.ggml.eos_token_ids (it finds <end_of_turn> as EOT by its text).
Checked with the vendored llama-server ("-c 256 -np 1 -t 1", /completion, n_predict 8,
temperature 0, cache_prompt false):
- the original, prompt "I've got 12345 apples!!" (13 prompt tokens with BOS): content
  " گرفτισ UVJEN値下げ値下げ値下げ আবার", tokens [41321, 87376, 19296, 224987, 147205,
  147205, 147205, 22708], the same on a second run and after a restart;
- the -ollama file is refused: "check_tensor_dims: tensor 'per_layer_token_embd.weight' has
  wrong shape; expected 512, 262400, got 512, 262144";
- the token types matter for text containing "<unusedN>": with the original (NORMAL),
  /tokenize of "I've got 12345 apples!! <unused5>" ends [..., 4329, 655, 63634, 236810,
  236813] and /completion answers " Heater лучшийwehr পেয়ে mishap Lào CHARACTER CHARACTER";
  with the vocabulary cut but the types left as in the -ollama file (CONTROL) it ends
  [..., 4329, 236743, 11] (<unused5> is one special token) and the answer differs
  (" RoswellArtifact وايAlignmentAlignmentWATtrp📤"). The byte-token rule changes nothing
  in this fixture (Ollama's converter already writes BYTE for them).
The -ollama file's types are what Ollama's SentencePiece converter (convert/tokenizer_spm.go)
writes when the tokenizer.model marks `<unusedN>` CONTROL: it keeps the piece types UNKNOWN,
CONTROL, UNUSED and BYTE and makes every other piece NORMAL; here they are Gemma 3 270M's
types (llama.cpp's converter: CONTROL). Its 256 added tokens are USER_DEFINED with score
-1000, as Ollama appends added_tokens.json entries.""",
    "embeddinggemma": """\
embeddinggemma (embeddinggemma-original.gguf / embeddinggemma-ollama.gguf): llama.cpp's
gemma-embedding (non-causal gemma3 body), 6 layers, embedding 64, 4 heads (1 KV) of 32, ffn 128,
symmetric sliding window 8 on layers 0-4 (default pattern 6), mean pooling, dense_2 64 -> 128
and dense_3 128 -> 64 applied after pooling.
Detect: general.architecture = gemma3 and a tensor named dense.0.weight (plain Gemma 3 files
have none; rollama's gemma3 family must not claim these files).
Handler steps, in order: general.architecture = gemma-embedding; copy every gemma3.* key to
gemma-embedding.* (rollama renames them); remove gemma-embedding.attention.causal and
gemma-embedding.attention.sliding_window_pattern; set gemma-embedding.rope.freq_base_swa =
10000 (F32) if missing; set U32 gemma-embedding.dense_2_feat_in = dense.0.weight ne[0],
dense_2_feat_out = dense.0.weight ne[1], dense_3_feat_in = dense.1.weight ne[0],
dense_3_feat_out = dense.1.weight ne[1]; rename tensors dense.0.weight -> dense_2.weight,
dense.1.weight -> dense_3.weight, norm.weight -> output_norm.weight. No tokenizer change, no
tensor data change. llama.cpp requires dense_2_feat_in == dense_3_feat_out == n_embd.
Checked with the vendored llama-server ("-c 256 -np 1 -t 1 --embedding --pooling mean",
/v1/embeddings, input "I've got 12345 apples!!", 13 prompt tokens): the original gives a
64-value vector of L2 norm 1 (the server normalizes) starting [-0.14092904329299927,
-0.17603302001953125, 0.016438215970993042, -0.2486359179019928], the same on a second run
and after a restart; without dense_2/dense_3 (and their keys) it starts [-0.10269021987915039,
0.06341996788978577, 0.13403087854385376, 0.007292045745998621]. The -ollama file is refused:
"check_tensor_dims: tensor 'output_norm.weight' not found".""",
}


def summary_value(vtype, value, sub):
    if vtype == VT.ARRAY and len(value) > 8:
        return f"[{len(value)} x {sub.name}]"
    text = format_value(vtype, value, sub)
    return f'"{text}"' if vtype == VT.STRING else text


def value_type(vtype, sub):
    return f"{vtype.name}[{sub.name}]" if vtype == VT.ARRAY else vtype.name


def tensor_bytes(t):
    return np.ascontiguousarray(t[2]).view(np.uint8).reshape(-1)


def pair_reference(ollama, original, key_name, tensor_name):
    """Lists the keys and tensors of an -ollama file against its original. key_name and
    tensor_name map an Ollama name to the original's name (None: no counterpart)."""
    lines = [f"general.architecture: {ollama.arch} -> {original.arch}", "",
             "keys (-ollama -> -original; types as written):"]
    same, seen = [], set()
    for key, (vtype, value, sub) in ollama.kv.items():
        target = key_name(key)
        label = f"{key} {value_type(vtype, sub)} = {summary_value(vtype, value, sub)}"
        if target is None or target not in original.kv:
            lines.append(f"  {label}  ->  (removed)")
            continue
        seen.add(target)
        tv, tval, tsub = original.kv[target]
        if (tv, tval, tsub) == (vtype, value, sub):
            same.append(key if key == target else f"{key} -> {target}")
        else:
            lines.append(f"  {label}  ->  {target} {value_type(tv, tsub)} ="
                         f" {summary_value(tv, tval, tsub)}")
    for key, (vtype, value, sub) in original.kv.items():
        if key not in seen:
            lines.append(f"  (absent)  ->  {key} {value_type(vtype, sub)} ="
                         f" {summary_value(vtype, value, sub)}")
    lines.append(f"  same value ({len(same)} keys): " + ", ".join(same))
    lines += ["", "tensors (-ollama -> -original; same order):"]
    unchanged = 0
    assert len(ollama.tensors) == len(original.tensors)
    for (name, t), (oname, ot) in zip(ollama.tensors.items(), original.tensors.items()):
        assert tensor_name(name) == oname and t[0] == ot[0], (name, oname)
        a, b = tensor_bytes(t), tensor_bytes(ot)
        if t[1] == ot[1]:
            assert np.array_equal(a, b), name
            if name == oname:
                unchanged += 1
                continue
            lines.append(f"  {tensor_label(name, *t[:2])}  ->  {tensor_label(oname, *ot[:2])}"
                         " (same bytes)")
        else:
            assert np.array_equal(a[:b.size], b), name
            lines.append(f"  {tensor_label(name, *t[:2])}  ->  {tensor_label(oname, *ot[:2])}"
                         f" (its first {b.size} bytes, at the same file offset)")
    lines.append(f"  the other {unchanged} tensors: same name, type, ne and bytes")
    return lines


def text_reference(gemma3n, embeddinggemma):
    (g_oll, g_orig), (e_oll, e_orig) = gemma3n, embeddinggemma
    lines = [TEXT_REFERENCE_HEAD]
    lines += ["=" * 94, TEXT_NOTES["gemma3n"], ""]
    lines += pair_reference(g_oll, g_orig, lambda k: k, lambda n: n)
    tokens = g_orig.kv["tokenizer.ggml.tokens"][1]
    o_types = g_oll.kv["tokenizer.ggml.token_type"][1]
    r_types = g_orig.kv["tokenizer.ggml.token_type"][1]
    changed = sorted({(o_types[i], r_types[i]) for i in range(len(tokens))
                      if o_types[i] != r_types[i]})
    extra = g_oll.kv["tokenizer.ggml.tokens"][1][len(tokens):]
    unused = [i for i, t in enumerate(tokens) if t.startswith(b"<unused")]
    bytes_ = [i for i, t in enumerate(tokens) if is_byte_token(t)]
    assert {o_types[i] for i in bytes_} == {r_types[i] for i in bytes_} == {TT_BYTE}
    lines += [
        "",
        f"token types in the fixture: `<unusedN>` ({len(unused)} tokens, ids {unused[0]}.."
        f"{unused[-1]}): -ollama {sorted({o_types[i] for i in unused})} -> original"
        f" {sorted({r_types[i] for i in unused})}; `<0xXX>` ({len(bytes_)} tokens, ids"
        f" {bytes_[0]}..{bytes_[-1]}): 6 in both;"
        f" all changed pairs (-ollama, original): {changed}.",
        f"dropped tokens {len(tokens)}..{len(tokens) + len(extra) - 1}:"
        f" {extra[0].decode()}, {extra[1].decode()}, {extra[2].decode()} ..."
        f" {extra[-1].decode()} (USER_DEFINED, score -1000).",
        "",
    ]
    lines += ["=" * 94, TEXT_NOTES["embeddinggemma"], ""]
    renames = {"dense.0.weight": "dense_2.weight", "dense.1.weight": "dense_3.weight",
               "norm.weight": "output_norm.weight"}
    lines += pair_reference(
        e_oll, e_orig,
        lambda k: "gemma-embedding." + k[len("gemma3."):] if k.startswith("gemma3.") else k,
        lambda n: renames.get(n, n))
    lines.append("")
    return "\n".join(lines)


def main():
    if len(sys.argv) != 4:
        sys.exit("usage: make-ollama-layout.py OUT_DIR SMOLLM2_GGUF GEMMA3_270M_GGUF")
    out_dir, smol_path, gemma_path = sys.argv[1:4]
    os.makedirs(out_dir, exist_ok=True)
    smol = load(smol_path)
    gemma = load(gemma_path)
    assert gemma.arch == "gemma3" and smol.arch == "llama"

    written = []

    def emit(name, model):
        tmp = os.path.join(out_dir, name + ".tmp")
        write(tmp, model)
        written.append((tmp, os.path.join(out_dir, name)))
        print(f"wrote {name}", file=sys.stderr)

    def emit_text(name, text):
        tmp = os.path.join(out_dir, name + ".tmp")
        with open(tmp, "w") as f:
            f.write(text)
        written.append((tmp, os.path.join(out_dir, name)))
        print(f"wrote {name}", file=sys.stderr)

    for family, make, to_ollama in (
        ("llama3", make_llama3, ollama_llama3),
        ("gpt-oss", make_gptoss, ollama_gptoss),
    ):
        original = make(smol)
        emit(f"{family}-original.gguf", original)
        emit(f"{family}-ollama.gguf", to_ollama(original))

    towers = []
    for family, make, tower_of, to_ollama in (
        ("qwen25vl", make_qwen2vl,
         lambda m: qwen25vl_tower(m.kv["qwen2vl.embedding_length"][1]), ollama_qwen25vl),
        ("qwen3vl", make_qwen3vl,
         lambda m: qwen3vl_tower(m.kv["qwen3vl.embedding_length"][1],
                                 m.kv["qwen3vl.n_deepstack_layers"][1]), ollama_qwen3vl),
        ("mistral3", make_mistral3,
         lambda m: mistral3_tower(m.kv["mistral3.embedding_length"][1]), ollama_mistral3),
        ("llama4", make_llama4,
         lambda m: llama4_tower(m.kv["llama4.embedding_length"][1]), ollama_llama4),
    ):
        original = make(smol)
        tower = tower_of(original)
        towers.append(tower)
        emit(f"{family}-original.gguf", original)
        emit(f"{family}-mmproj-original.gguf",
             tower.mmproj(original.kv["general.name"][1].decode() + "-mmproj"))
        emit(f"{family}-ollama.gguf", to_ollama(original, tower))

    emit("gemma3-1b-style.gguf", gemma3_1b_style(gemma))
    emit("gemma3-4b-style.gguf", gemma3_4b_style(gemma))
    emit_text("gemma3-mmproj-reference.txt",
              gemma3_reference(gemma.kv["gemma3.embedding_length"][1]))
    emit_text("vision-reference.txt", vision_reference(towers))

    gemma3n = make_gemma3n(gemma)
    gemma3n_ollama = ollama_gemma3n(gemma3n, gemma)
    emit("gemma3n-original.gguf", gemma3n)
    emit("gemma3n-ollama.gguf", gemma3n_ollama)
    embeddinggemma = make_embeddinggemma(gemma)
    embeddinggemma_ollama = ollama_embeddinggemma(embeddinggemma)
    emit("embeddinggemma-original.gguf", embeddinggemma)
    emit("embeddinggemma-ollama.gguf", embeddinggemma_ollama)
    emit_text("text-reference.txt", text_reference((gemma3n_ollama, gemma3n),
                                                   (embeddinggemma_ollama, embeddinggemma)))

    for tmp, final in written:
        os.replace(tmp, final)


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""Makes the GGUF pairs for the tests of rollama's load-time translation of Ollama-layout files.

Ollama's registry serves GGUFs written by Ollama's own converter, whose key names, tensor names
and extra contents differ from what llama.cpp's converter writes ("llama.cpp layout").
rollama translates such a file back to the llama.cpp layout when it loads it; the tests load
each pair below and compare the greedy output of both files.

Every "-original" file is in the llama.cpp layout and loads in stock llama.cpp (the vendored
version). Every "-ollama" file is made FROM its original: the same tensor bytes and types, only
key names/values, tensor names and extra (hidden) tensors differ. The layouts follow Ollama's
converters (ollama/ollama `convert/convert_*.go`) and the inverse of the load-time fixes in
Ollama's llama.cpp compatibility layer (ollama/ollama `llama/compat/llama-ollama-compat.cpp`).

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
  `rope.mrope_section` (3 values) instead of `rope.dimension_sections` (4), plus an embedded
  random vision tower (`v.*`, `qwen25vl.vision.*`).
- qwen3vl-{original,ollama}.gguf: llama.cpp's `qwen3vl` text model (mrope [24,20,20,0],
  head_dim 128, 3 deepstack layers). Ollama layout (convert_qwen3vl.go; compat
  `handle_qwen3vl`): no `rope.dimension_sections`, no `n_deepstack_layers`,
  `qwen3vl.vision.deepstack_visual_indexes` (3 entries), plus an embedded random vision tower.
- mistral3-{original,ollama}.gguf: llama.cpp's `mistral3` with YaRN and attention temperature
  scaling at non-default values. Ollama layout (convert_mistral.go; compat `handle_mistral3`):
  `rope.scaling.beta_fast`/`beta_slow`/`mscale_all_dim` and `rope.scaling_beta`, no
  `tokenizer.ggml.pre`, plus embedded random Pixtral-like `v.*`/`mm.*` tensors.

The random models are tiny (embedding 64, 2-4 layers): F16 matrices, F32 norms and biases,
Q8_0 token embeddings/output (to keep the big-vocabulary files small) and MXFP4 experts for
gpt-oss. The weights are deterministic (numpy PCG64, one fixed seed per family) and the writer's
output depends only on its inputs, so a rerun writes identical bytes. The tokenizer of the
random models is SmolLM2's (gpt2-style BPE, 49152 tokens). Files are written as `NAME.tmp`
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

Usage: make-ollama-layout.py OUT_DIR SMOLLM2_GGUF GEMMA3_270M_GGUF
"""
import os
import sys

import numpy as np
import gguf
from gguf import GGMLQuantizationType as QT
from gguf import GGUFValueType as VT

# Token types (llama.cpp's llama_token_type).
TT_CONTROL, TT_USER_DEFINED = 3, 4


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


def ollama_qwen25vl(orig):
    w = Weights(4003)
    m = orig.copy()
    m.arch = "qwen25vl"
    m.rename_prefix("qwen2vl.", "qwen25vl.")
    sections = m.kv["qwen25vl.rope.dimension_sections"][1]
    m.drop("qwen25vl.rope.dimension_sections")
    m.arr("qwen25vl.rope.mrope_section", VT.INT32, sections[:3])
    n_embd = orig.kv["qwen2vl.embedding_length"][1]
    v_embd, v_ff, v_patch, merge = 32, 64, 14, 2
    m.u32("qwen25vl.vision.block_count", 1)
    m.u32("qwen25vl.vision.embedding_length", v_embd)
    m.u32("qwen25vl.vision.attention.head_count", 2)
    m.u32("qwen25vl.vision.num_channels", 3)
    m.u32("qwen25vl.vision.patch_size", v_patch)
    m.u32("qwen25vl.vision.spatial_merge_size", merge)
    m.u32("qwen25vl.vision.spatial_patch_size", v_patch)
    m.u32("qwen25vl.vision.window_size", 112)
    m.f32("qwen25vl.vision.attention.layer_norm_epsilon", 1e-6)
    m.f32("qwen25vl.vision.rope.freq_base", 10000.0)
    m.arr("qwen25vl.vision.fullatt_block_indexes", VT.INT32, [0])
    m.u32("qwen25vl.vision.temporal_patch_size", 2)
    put(m, "v.patch_embd_0.weight", w.mat([v_patch, v_patch, 3, v_embd], 0.05))
    put(m, "v.patch_embd_1.weight", w.mat([v_patch, v_patch, 3, v_embd], 0.05))
    p = "v.blk.0."
    put(m, p + "ln1.weight", w.norm(v_embd))
    put(m, p + "ln2.weight", w.norm(v_embd))
    for t in ("attn_q", "attn_k", "attn_v", "attn_out"):
        put(m, p + t + ".weight", w.mat([v_embd, v_embd]))
        put(m, p + t + ".bias", w.vec([v_embd]))
    put(m, p + "ffn_gate.weight", w.mat([v_embd, v_ff]))
    put(m, p + "ffn_gate.bias", w.vec([v_ff]))
    put(m, p + "ffn_up.weight", w.mat([v_embd, v_ff]))
    put(m, p + "ffn_up.bias", w.vec([v_ff]))
    put(m, p + "ffn_down.weight", w.mat([v_ff, v_embd]))
    put(m, p + "ffn_down.bias", w.vec([v_embd]))
    merged = v_embd * merge * merge
    put(m, "v.merger.ln_q.weight", w.norm(v_embd))
    put(m, "v.merger.mlp.0.weight", w.mat([merged, merged]))
    put(m, "v.merger.mlp.0.bias", w.vec([merged]))
    put(m, "v.merger.mlp.2.weight", w.mat([merged, n_embd]))
    put(m, "v.merger.mlp.2.bias", w.vec([n_embd]))
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


def ollama_qwen3vl(orig):
    w = Weights(4004)
    m = orig.copy()
    n_deepstack = m.kv["qwen3vl.n_deepstack_layers"][1]
    m.drop("qwen3vl.rope.dimension_sections")
    m.drop("qwen3vl.n_deepstack_layers")
    n_embd = orig.kv["qwen3vl.embedding_length"][1]
    v_embd, v_ff, v_patch, merge, v_blocks, n_pos = 32, 64, 16, 2, 3, 64
    m.u32("qwen3vl.vision.block_count", v_blocks)
    m.u32("qwen3vl.vision.embedding_length", v_embd)
    m.u32("qwen3vl.vision.attention.head_count", 2)
    m.u32("qwen3vl.vision.num_channels", 3)
    m.u32("qwen3vl.vision.patch_size", v_patch)
    m.u32("qwen3vl.vision.spatial_merge_size", merge)
    m.f32("qwen3vl.vision.attention.layer_norm_epsilon", 1e-6)
    m.f32("qwen3vl.vision.rope.freq_base", 10000.0)
    m.u32("qwen3vl.vision.temporal_patch_size", 2)
    m.arr("qwen3vl.vision.deepstack_visual_indexes", VT.INT32, list(range(n_deepstack)))
    m.u32("qwen3vl.vision.shortest_edge", 64 * 64)
    m.u32("qwen3vl.vision.longest_edge", 256 * 256)
    m.arr("qwen3vl.vision.image_mean", VT.FLOAT32, [0.5, 0.5, 0.5])
    m.arr("qwen3vl.vision.image_std", VT.FLOAT32, [0.5, 0.5, 0.5])
    # Ollama keeps HF's [out, in, t, h, w] patch embedding with out*in merged: ne [w, h, t, out*in]
    put(m, "v.patch_embed.weight", w.mat([v_patch, v_patch, 2, v_embd * 3], 0.05))
    put(m, "v.patch_embed.bias", w.vec([v_embd]))
    put(m, "v.pos_embed.weight", w.mat([v_embd, n_pos], 0.1))
    for b in range(v_blocks):
        p = f"v.blk.{b}."
        for t in ("norm1", "norm2"):
            put(m, p + t + ".weight", w.norm(v_embd))
            put(m, p + t + ".bias", w.vec([v_embd]))
        for t in ("attn_q", "attn_k", "attn_v", "attn_out"):
            put(m, p + t + ".weight", w.mat([v_embd, v_embd]))
            put(m, p + t + ".bias", w.vec([v_embd]))
        put(m, p + "mlp.linear_fc1.weight", w.mat([v_embd, v_ff]))
        put(m, p + "mlp.linear_fc1.bias", w.vec([v_ff]))
        put(m, p + "mlp.linear_fc2.weight", w.mat([v_ff, v_embd]))
        put(m, p + "mlp.linear_fc2.bias", w.vec([v_embd]))
    merged = v_embd * merge * merge
    put(m, "v.merger.norm.weight", w.norm(v_embd))
    put(m, "v.merger.norm.bias", w.vec([v_embd]))
    put(m, "v.merger.linear_fc1.weight", w.mat([merged, merged]))
    put(m, "v.merger.linear_fc1.bias", w.vec([merged]))
    put(m, "v.merger.linear_fc2.weight", w.mat([merged, n_embd]))
    put(m, "v.merger.linear_fc2.bias", w.vec([n_embd]))
    for d in range(n_deepstack):
        p = f"v.deepstack_merger.{d}."
        put(m, p + "norm.weight", w.norm(merged))
        put(m, p + "norm.bias", w.vec([merged]))
        put(m, p + "linear_fc1.weight", w.mat([merged, merged]))
        put(m, p + "linear_fc1.bias", w.vec([merged]))
        put(m, p + "linear_fc2.weight", w.mat([merged, n_embd]))
        put(m, p + "linear_fc2.bias", w.vec([n_embd]))
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


def ollama_mistral3(orig):
    w = Weights(4005)
    m = orig.copy()
    m.rename("mistral3.rope.scaling.yarn_beta_fast", "mistral3.rope.scaling.beta_fast")
    m.rename("mistral3.rope.scaling.yarn_beta_slow", "mistral3.rope.scaling.beta_slow")
    m.rename("mistral3.rope.scaling.yarn_log_multiplier", "mistral3.rope.scaling.mscale_all_dim")
    m.rename("mistral3.attention.temperature_scale", "mistral3.rope.scaling_beta")
    m.drop("tokenizer.ggml.pre")
    n_embd = orig.kv["mistral3.embedding_length"][1]
    v_embd, v_ff, v_patch, merge = 32, 64, 16, 2
    m.u32("mistral3.vision.block_count", 1)
    m.u32("mistral3.vision.embedding_length", v_embd)
    m.u32("mistral3.vision.feed_forward_length", v_ff)
    m.u32("mistral3.vision.attention.head_count", 2)
    m.u32("mistral3.vision.attention.key_length", v_embd // 2)
    m.u32("mistral3.vision.image_size", 64)
    m.u32("mistral3.vision.patch_size", v_patch)
    m.u32("mistral3.vision.num_channels", 3)
    m.f32("mistral3.vision.rope.freq_base", 10000.0)
    m.u32("mistral3.image_token_index", 10)
    m.u32("mistral3.spatial_merge_size", merge)
    m.boolean("mistral3.mm.projector_bias", False)
    put(m, "v.patch_conv.weight", w.mat([v_patch, v_patch, 3, v_embd], 0.05))
    put(m, "v.encoder_norm.weight", w.norm(v_embd))
    p = "v.blk.0."
    put(m, p + "attn_norm.weight", w.norm(v_embd))
    for t in ("attn_q", "attn_k", "attn_v", "attn_output"):
        put(m, p + t + ".weight", w.mat([v_embd, v_embd]))
    put(m, p + "ffn_norm.weight", w.norm(v_embd))
    put(m, p + "ffn_gate.weight", w.mat([v_embd, v_ff]))
    put(m, p + "ffn_up.weight", w.mat([v_embd, v_ff]))
    put(m, p + "ffn_down.weight", w.mat([v_ff, v_embd]))
    put(m, "mm.norm.weight", w.norm(v_embd))
    put(m, "mm.patch_merger.merging_layer.weight", w.mat([v_embd * merge * merge, v_embd]))
    put(m, "mm.linear_1.weight", w.mat([v_embd, n_embd]))
    put(m, "mm.linear_2.weight", w.mat([n_embd, n_embd]))
    return m


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

    for family, make, to_ollama in (
        ("llama3", make_llama3, ollama_llama3),
        ("gpt-oss", make_gptoss, ollama_gptoss),
        ("qwen25vl", make_qwen2vl, ollama_qwen25vl),
        ("qwen3vl", make_qwen3vl, ollama_qwen3vl),
        ("mistral3", make_mistral3, ollama_mistral3),
    ):
        original = make(smol)
        emit(f"{family}-original.gguf", original)
        emit(f"{family}-ollama.gguf", to_ollama(original))

    emit("gemma3-1b-style.gguf", gemma3_1b_style(gemma))
    emit("gemma3-4b-style.gguf", gemma3_4b_style(gemma))
    tmp = os.path.join(out_dir, "gemma3-mmproj-reference.txt.tmp")
    with open(tmp, "w") as f:
        f.write(gemma3_reference(gemma.kv["gemma3.embedding_length"][1]))
    written.append((tmp, tmp[:-len(".tmp")]))

    for tmp, final in written:
        os.replace(tmp, final)


if __name__ == "__main__":
    main()

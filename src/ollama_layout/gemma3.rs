//! Gemma 3, every size, as Ollama's converter wrote it (Ollama's `handle_gemma3`).
//!
//! - No `gemma3.attention.layer_norm_rms_epsilon`, and the 1B's RoPE bases under nested keys
//!   (`gemma3.rope.global.freq_base`, `gemma3.rope.local.freq_base`).
//! - No chat template in the GGUF (Ollama's manifests carry a Go template layer instead).
//! - The 4B and larger embed the SigLIP vision tower and projector (`v.*`, `mm.*`) and keep the
//!   multimodal tokens in the tokenizer arrays, which are then longer than `token_embd` has
//!   rows. The text loader must see neither.
//! - The RMSNorm weights already carry Gemma's +1, as llama.cpp's converter writes them.
//!
//! The embedded tower becomes a `gemma3` projector for llama.cpp's mtmd (Ollama's
//! `handle_gemma3_clip`): the vision keys under `clip.vision.*`, SigLIP's tensor names as
//! llama.cpp's converter writes them, and the patch and position embeddings as F32.

use super::{Draft, Family, HALF};
use crate::gguf::Value;

/// Gemma 3's chat template as llama.cpp's converter stores it (the one Ollama injects).
const CHAT_TEMPLATE: &str = "{{ bos_token }}{% if messages[0]['role'] == 'system' %}{{ raise_exception('System role not supported') }}{% endif %}{% for message in messages %}{% if (message['role'] == 'user') != (loop.index0 % 2 == 0) %}{{ raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') }}{% endif %}{% if (message['role'] == 'assistant') %}{% set role = 'model' %}{% else %}{% set role = message['role'] %}{% endif %}{{ '<start_of_turn>' + role + '\\n' + message['content'] | trim + '<end_of_turn>\\n' }}{% endfor %}{% if add_generation_prompt %}{{'<start_of_turn>model\\n'}}{% endif %}";

/// Ollama's vision tensor names (substrings) and llama.cpp's.
const PROJECTOR_RENAMES: &[(&str, &str)] = &[
    ("v.patch_embedding", "v.patch_embd"),
    ("v.position_embedding", "v.position_embd"),
    ("v.post_layernorm", "v.post_ln"),
    (".layer_norm1", ".ln1"),
    (".layer_norm2", ".ln2"),
    (".attn_output", ".attn_out"),
    (".mlp.fc1", ".ffn_down"),
    (".mlp.fc2", ".ffn_up"),
    ("mm.mm_input_projection", "mm.input_projection"),
    ("mm.mm_soft_emb_norm", "mm.soft_emb_norm"),
];

/// Vision keys: Ollama's, llama.cpp's.
const PROJECTOR_KEYS: &[(&str, &str)] = &[
    ("gemma3.vision.block_count", "clip.vision.block_count"),
    (
        "gemma3.vision.embedding_length",
        "clip.vision.embedding_length",
    ),
    (
        "gemma3.vision.feed_forward_length",
        "clip.vision.feed_forward_length",
    ),
    ("gemma3.vision.image_size", "clip.vision.image_size"),
    ("gemma3.vision.patch_size", "clip.vision.patch_size"),
    (
        "gemma3.vision.attention.head_count",
        "clip.vision.attention.head_count",
    ),
    // The projector's output feeds the text model.
    ("gemma3.embedding_length", "clip.vision.projection_dim"),
];

pub struct Gemma3;

impl Family for Gemma3 {
    fn name(&self) -> &'static str {
        "gemma3"
    }

    fn detect(&self, m: &Draft) -> bool {
        // EmbeddingGemma is also `gemma3` in Ollama's files, with dense projection tensors;
        // it is a family of its own.
        m.architecture() == "gemma3"
            && m.tensor_shape("dense.0.weight").is_none()
            && (m.has("gemma3.mm.tokens_per_image")
                || m.any_tensor_with_prefix("v.")
                || m.any_tensor_with_prefix("mm.")
                || m.has("gemma3.rope.global.freq_base")
                || m.has("gemma3.rope.local.freq_base")
                || m.has("tokenizer.ggml.add_padding_token")
                || m.has("tokenizer.ggml.add_unknown_token")
                || !m.has("gemma3.attention.layer_norm_rms_epsilon"))
    }

    fn translate(&self, m: &mut Draft) -> Result<(), String> {
        m.copy_if_missing("gemma3.rope.global.freq_base", "gemma3.rope.freq_base");
        m.copy_if_missing("gemma3.rope.local.freq_base", "gemma3.rope.freq_base_swa");
        m.set_if_missing("gemma3.attention.layer_norm_rms_epsilon", Value::F32(1e-6));
        m.set_if_missing("gemma3.rope.freq_base", Value::F32(1_000_000.0));
        m.set_if_missing("gemma3.rope.freq_base_swa", Value::F32(10_000.0));
        m.set_if_missing(
            "tokenizer.chat_template",
            Value::String(CHAT_TEMPLATE.to_owned()),
        );
        // The 4B and larger extend a 16k training context to 128k with linear scaling 8;
        // some files lack the keys. The 1B (32k) has no scaling.
        if m.unsigned("gemma3.context_length").unwrap_or(0) >= 131_072 {
            m.set_if_missing(
                "gemma3.rope.scaling.type",
                Value::String("linear".to_owned()),
            );
            m.set_if_missing("gemma3.rope.scaling.factor", Value::F32(8.0));
        }
        let rows = m
            .tensor_shape("token_embd.weight")
            .and_then(|shape| shape.get(1).copied())
            .ok_or("the file has no token_embd.weight tensor to size the vocabulary by")?;
        // Lossless on every platform rollama builds for (64-bit).
        let rows = rows as usize;
        for key in [
            "tokenizer.ggml.tokens",
            "tokenizer.ggml.scores",
            "tokenizer.ggml.token_type",
        ] {
            m.truncate_array(key, rows);
        }
        m.hide_vision_tower();
        Ok(())
    }

    fn projector(&self, m: &mut Draft) -> Option<Result<(), String>> {
        Some(projector(m))
    }
}

fn projector(m: &mut Draft) -> Result<(), String> {
    let required: Vec<&str> = PROJECTOR_KEYS.iter().map(|(from, _)| *from).collect();
    m.require(&required, "vision projector")?;
    m.copy_keys(PROJECTOR_KEYS);
    m.copy_keys(&[(
        "gemma3.vision.attention.layer_norm_epsilon",
        "clip.vision.attention.layer_norm_epsilon",
    )]);
    m.set_image_normalization(HALF, HALF);
    m.set_if_missing("clip.use_gelu", Value::Bool(true));
    m.make_projector("gemma3");
    for (from, to) in PROJECTOR_RENAMES {
        m.rename_tensors_containing(from, to);
    }
    m.promote_to_f32("v.patch_embd.weight");
    m.promote_to_f32("v.position_embd.weight");
    Ok(())
}

//! Llama 4 as Ollama published it (Ollama's `handle_llama4` and `handle_llama4_clip`): the
//! text model in llama.cpp's layout with the vision tower and projector embedded (`v.*`,
//! `mm.*`), which the text loader must not see; the tower becomes a `llama4` projector.

use super::{Draft, Family, HALF};
use crate::gguf::Value;

/// Vision keys: Ollama's, llama.cpp's.
const PROJECTOR_KEYS: &[(&str, &str)] = &[
    ("llama4.vision.block_count", "clip.vision.block_count"),
    (
        "llama4.vision.embedding_length",
        "clip.vision.embedding_length",
    ),
    (
        "llama4.vision.feed_forward_length",
        "clip.vision.feed_forward_length",
    ),
    (
        "llama4.vision.attention.head_count",
        "clip.vision.attention.head_count",
    ),
    ("llama4.vision.image_size", "clip.vision.image_size"),
    ("llama4.vision.patch_size", "clip.vision.patch_size"),
    (
        "llama4.vision.layer_norm_epsilon",
        "clip.vision.attention.layer_norm_epsilon",
    ),
    ("llama4.embedding_length", "clip.vision.projection_dim"),
];

/// Ollama's vision tensor names (substrings, in this order) and llama.cpp's. The adapter's
/// MLP goes first so that the generic `.mlp.fc1` rename does not take it.
const PROJECTOR_RENAMES: &[(&str, &str)] = &[
    ("v.vision_adapter.mlp.fc1", "mm.model.mlp.1"),
    ("v.vision_adapter.mlp.fc2", "mm.model.mlp.2"),
    ("mm.linear_1", "mm.model.fc"),
    ("v.class_embedding", "v.class_embd"),
    ("v.layernorm_post", "v.post_ln"),
    ("v.layernorm_pre", "v.pre_ln"),
    ("v.patch_embedding", "v.patch_embd"),
    (".attn_output", ".attn_out"),
    (".attn_norm", ".ln1"),
    (".ffn_norm", ".ln2"),
    (".mlp.fc1", ".ffn_up"),
    (".mlp.fc2", ".ffn_down"),
];

pub struct Llama4;

impl Family for Llama4 {
    fn name(&self) -> &'static str {
        "llama4"
    }

    fn detect(&self, m: &Draft) -> bool {
        m.architecture() == "llama4"
            && (m.any_tensor_with_prefix("v.") || m.any_tensor_with_prefix("mm."))
    }

    fn translate(&self, m: &mut Draft) -> Result<(), String> {
        m.hide_vision_tower();
        Ok(())
    }

    fn projector(&self, m: &mut Draft) -> Option<Result<(), String>> {
        Some(projector(m))
    }
}

fn projector(m: &mut Draft) -> Result<(), String> {
    m.require(
        &[
            "llama4.vision.block_count",
            "llama4.vision.embedding_length",
            "llama4.vision.attention.head_count",
            "llama4.embedding_length",
        ],
        "vision projector",
    )?;
    m.copy_keys(PROJECTOR_KEYS);
    let scale = match m.get("llama4.vision.pixel_shuffle_ratio") {
        Some(Value::F32(ratio)) if *ratio > 0.0 => (1.0 / ratio).round() as u32,
        _ => 0,
    };
    m.set_if_missing(
        "clip.vision.projector.scale_factor",
        Value::U32(if scale == 0 { 2 } else { scale }),
    );
    m.set_image_normalization(HALF, HALF);
    m.set_if_missing("clip.use_gelu", Value::Bool(true));
    m.set(
        "clip.vision.projector_type",
        Value::String("llama4".to_owned()),
    );
    m.make_projector("llama4");
    // Ollama's file names the position embedding without `.weight`.
    m.rename_tensor("v.positional_embedding_vlm", "v.position_embd.weight");
    for (from, to) in PROJECTOR_RENAMES {
        m.rename_tensors_containing(from, to);
    }
    Ok(())
}

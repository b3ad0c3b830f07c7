//! Qwen2.5-VL as Ollama's converter wrote it (Ollama's `handle_qwen25vl`): architecture
//! `qwen25vl`, which llama.cpp runs as `qwen2vl` (its M-RoPE text model); the M-RoPE sections
//! as three numbers under `rope.mrope_section` rather than four under
//! `rope.dimension_sections`; and the vision tower embedded (`v.*`, `mm.*`), which becomes a
//! `qwen2.5vl_merger` projector (Ollama's `handle_qwen25vl_clip`).

use super::{Draft, Family, CLIP_MEAN, CLIP_STD};
use crate::gguf::Value;

/// Vision keys: Ollama's, llama.cpp's.
const PROJECTOR_KEYS: &[(&str, &str)] = &[
    (
        "qwen25vl.vision.attention.head_count",
        "clip.vision.attention.head_count",
    ),
    (
        "qwen25vl.vision.attention.layer_norm_epsilon",
        "clip.vision.attention.layer_norm_epsilon",
    ),
    ("qwen25vl.vision.block_count", "clip.vision.block_count"),
    (
        "qwen25vl.vision.embedding_length",
        "clip.vision.embedding_length",
    ),
    ("qwen25vl.vision.num_channels", "clip.vision.num_channels"),
    ("qwen25vl.vision.patch_size", "clip.vision.patch_size"),
    (
        "qwen25vl.vision.spatial_merge_size",
        "clip.vision.spatial_merge_size",
    ),
    ("qwen25vl.vision.window_size", "clip.vision.window_size"),
    ("qwen25vl.embedding_length", "clip.vision.projection_dim"),
];

/// Ollama's tensor names and llama.cpp's (whole names).
const PROJECTOR_RENAMES: &[(&str, &str)] = &[
    ("v.merger.ln_q.weight", "v.post_ln.weight"),
    ("v.merger.mlp.0.weight", "mm.0.weight"),
    ("v.merger.mlp.0.bias", "mm.0.bias"),
    ("v.merger.mlp.2.weight", "mm.2.weight"),
    ("v.merger.mlp.2.bias", "mm.2.bias"),
    ("v.patch_embd_0.weight", "v.patch_embd.weight"),
    ("v.patch_embd_1.weight", "v.patch_embd.weight.1"),
];

pub struct Qwen25Vl;

impl Family for Qwen25Vl {
    fn name(&self) -> &'static str {
        "qwen25vl"
    }

    fn detect(&self, m: &Draft) -> bool {
        m.architecture() == "qwen25vl"
    }

    fn translate(&self, m: &mut Draft) -> Result<(), String> {
        m.set("general.architecture", Value::String("qwen2vl".to_owned()));
        m.rename_key_prefix("qwen25vl.", "qwen2vl.");
        if !m.has("qwen2vl.rope.dimension_sections") {
            let sections = match m.get("qwen2vl.rope.mrope_section") {
                Some(Value::Array(items)) if items.len() >= 3 => items[..3]
                    .iter()
                    .map(|v| v.as_u64().and_then(|n| i32::try_from(n).ok()))
                    .collect::<Option<Vec<i32>>>(),
                _ => None,
            }
            .ok_or("qwen25vl.rope.mrope_section (three M-RoPE section sizes) is missing")?;
            let padded = sections.into_iter().chain([0]).map(Value::I32).collect();
            m.set("qwen2vl.rope.dimension_sections", Value::Array(padded));
        }
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
            "qwen25vl.vision.block_count",
            "qwen25vl.vision.embedding_length",
            "qwen25vl.vision.attention.head_count",
            "qwen25vl.embedding_length",
        ],
        "vision projector",
    )?;
    m.copy_keys(PROJECTOR_KEYS);
    if let Some(up) = m.tensor_shape("v.blk.0.ffn_up.weight").map(<[u64]>::to_vec) {
        let rows = up.get(1).and_then(|&n| u32::try_from(n).ok()).unwrap_or(0);
        m.set_if_missing("clip.vision.feed_forward_length", Value::U32(rows));
    }
    // Windowed attention everywhere but the full-attention blocks: the pattern's period is
    // the first full-attention block's index plus one, as llama.cpp's converter derives it.
    let pattern = m
        .integers("qwen25vl.vision.fullatt_block_indexes")
        .first()
        .and_then(|&first| u32::try_from(first + 1).ok())
        .unwrap_or(8);
    m.set("clip.vision.n_wa_pattern", Value::U32(pattern));
    m.set_if_missing("clip.vision.image_size", Value::U32(560));
    m.set_image_normalization(CLIP_MEAN, CLIP_STD);
    m.set_if_missing("clip.use_silu", Value::Bool(true));
    m.make_projector("qwen2.5vl_merger");
    for (from, to) in PROJECTOR_RENAMES {
        m.rename_tensor(from, to);
    }
    m.promote_to_f32("v.patch_embd.weight");
    m.promote_to_f32("v.patch_embd.weight.1");
    Ok(())
}

//! Mistral Small 3.1 (`mistral3`) as Ollama's converter wrote it (Ollama's
//! `handle_mistral3`): YaRN parameters under other key names, the attention temperature scale
//! under `rope.scaling_beta`, no pre-tokenizer name, and the Pixtral vision tower and
//! projector embedded in the text model (`v.*`, `mm.*`), which the text loader must not see.
//!
//! The tower becomes a `pixtral` projector (Ollama's `handle_mistral3_clip`). Ollama's
//! converter left the vision Q/K rows in Hugging Face's order, while llama.cpp's RoPE wants
//! them in the order llama.cpp's converter writes (each head's two halves interleaved), so
//! F16 Q/K rows are reordered. Pixtral's `[IMG_BREAK]` embedding, which these files lack, is
//! zero (a no-op row separator), as Ollama makes it.

use super::data::{Data, F16, F32};
use super::{Draft, Family, CLIP_MEAN, CLIP_STD};
use crate::gguf::Value;

/// Vision keys: Ollama's, llama.cpp's.
const PROJECTOR_KEYS: &[(&str, &str)] = &[
    ("mistral3.vision.block_count", "clip.vision.block_count"),
    (
        "mistral3.vision.embedding_length",
        "clip.vision.embedding_length",
    ),
    (
        "mistral3.vision.feed_forward_length",
        "clip.vision.feed_forward_length",
    ),
    (
        "mistral3.vision.attention.head_count",
        "clip.vision.attention.head_count",
    ),
    ("mistral3.vision.image_size", "clip.vision.image_size"),
    ("mistral3.vision.patch_size", "clip.vision.patch_size"),
    ("mistral3.vision.num_channels", "clip.vision.num_channels"),
    (
        "mistral3.spatial_merge_size",
        "clip.vision.spatial_merge_size",
    ),
    ("mistral3.vision.rope.freq_base", "clip.rope.freq_base"),
    ("mistral3.embedding_length", "clip.vision.projection_dim"),
];

/// Ollama's tensor names (substrings, in this order) and llama.cpp's.
const PROJECTOR_RENAMES: &[(&str, &str)] = &[
    ("v.patch_conv", "v.patch_embd"),
    ("v.encoder_norm", "v.pre_ln"),
    (".attn_output", ".attn_out"),
    (".attn_norm", ".ln1"),
    (".ffn_norm", ".ln2"),
    ("mm.linear_1", "mm.1"),
    ("mm.linear_2", "mm.2"),
    ("mm.patch_merger.merging_layer", "mm.patch_merger"),
    ("mm.norm", "mm.input_norm"),
];

pub struct Mistral3;

impl Family for Mistral3 {
    fn name(&self) -> &'static str {
        "mistral3"
    }

    fn detect(&self, m: &Draft) -> bool {
        m.architecture() == "mistral3"
            && (m.any_tensor_with_prefix("v.")
                || m.any_tensor_with_prefix("mm.")
                || m.has("mistral3.rope.scaling.beta_fast")
                || m.has("mistral3.rope.scaling.mscale_all_dim")
                || m.has("mistral3.rope.scaling_beta"))
    }

    fn translate(&self, m: &mut Draft) -> Result<(), String> {
        for (from, to) in [
            (
                "mistral3.rope.scaling.beta_fast",
                "mistral3.rope.scaling.yarn_beta_fast",
            ),
            (
                "mistral3.rope.scaling.beta_slow",
                "mistral3.rope.scaling.yarn_beta_slow",
            ),
            (
                "mistral3.rope.scaling.mscale_all_dim",
                "mistral3.rope.scaling.yarn_log_multiplier",
            ),
            (
                "mistral3.rope.scaling_beta",
                "mistral3.attention.temperature_scale",
            ),
        ] {
            m.copy_if_missing(from, to);
        }
        if matches!(m.string("tokenizer.ggml.pre"), None | Some("" | "default")) {
            m.set("tokenizer.ggml.pre", Value::String("tekken".to_owned()));
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
            "mistral3.vision.block_count",
            "mistral3.vision.attention.head_count",
            "mistral3.embedding_length",
        ],
        "vision projector",
    )?;
    m.copy_keys(PROJECTOR_KEYS);
    m.set_if_missing("clip.vision.attention.layer_norm_epsilon", Value::F32(1e-5));
    m.set_image_normalization(CLIP_MEAN, CLIP_STD);
    m.set_if_missing("clip.use_silu", Value::Bool(true));
    let blocks = m.unsigned("mistral3.vision.block_count").unwrap_or(0);
    let heads = m
        .unsigned("mistral3.vision.attention.head_count")
        .unwrap_or(0);
    let text_width = m.unsigned("mistral3.embedding_length").unwrap_or(0);
    m.make_projector("pixtral");
    if text_width > 0 {
        m.add_tensor("v.token_embd.img_break", F32, vec![text_width], Data::Zeros);
    }
    for block in 0..blocks {
        for part in ["attn_q", "attn_k"] {
            permute_for_rope(m, &format!("v.blk.{block}.{part}.weight"), heads);
        }
    }
    for (from, to) in PROJECTOR_RENAMES {
        m.rename_tensors_containing(from, to);
    }
    m.promote_to_f32("v.patch_embd.weight");
    Ok(())
}

/// Reorders the output rows of the F16 projection `name` from Hugging Face's order (per head,
/// the first half of the rotary dimensions, then the second) to llama.cpp's (the two halves
/// interleaved): row `h*d + 2*i + j` of the result is row `h*d + j*d/2 + i` of the source,
/// for head dimension `d`.
pub(super) fn permute_for_rope(m: &mut Draft, name: &str, heads: u64) {
    let Some(tensor) = m.tensor(name) else {
        return;
    };
    let (Some(offset), [width, rows]) = (tensor.source_offset(), tensor.shape.as_slice()) else {
        return;
    };
    if tensor.kind != F16 || heads == 0 || rows % heads != 0 || (rows / heads) % 2 != 0 {
        return;
    }
    let head_dim = rows / heads;
    let order = (0..*rows)
        .map(|row| {
            let (head, within) = (row / head_dim, row % head_dim);
            head * head_dim + (within % 2) * (head_dim / 2) + within / 2
        })
        .collect();
    let row_bytes = width * 2;
    if let Some(tensor) = m.tensor_mut(name) {
        tensor.data = Data::Rows {
            offset,
            row_bytes,
            order,
        };
    }
}

//! Qwen3-VL (dense and MoE) as Ollama's converter wrote it (Ollama's `handle_qwen3vl`): no
//! `rope.dimension_sections` (the marker) and no `n_deepstack_layers`, and the vision tower
//! embedded (`v.*`, `mm.*`).
//!
//! The tower becomes a `qwen3vl_merger` projector (Ollama's `handle_qwen3vl_clip`): the
//! separate Q/K/V of each block merged into one QKV (as F32, since V may be quantized
//! differently), the Conv3D patch embedding split into llama.cpp's two Conv2D slices, the
//! deepstack mergers renamed after the blocks they follow, and the position embedding as F32.

use super::data::{Data, F16, F32};
use super::{Draft, Family, HALF};
use crate::gguf::Value;

/// The M-RoPE sections of every Qwen3-VL Ollama published (head dimension 128), which
/// Ollama's compat layer also supplies.
const SECTIONS: [i32; 4] = [24, 20, 20, 0];

pub struct Qwen3Vl;

fn architecture<'m>(m: &'m Draft<'_>) -> Option<&'m str> {
    Some(m.architecture()).filter(|a| matches!(*a, "qwen3vl" | "qwen3vlmoe"))
}

impl Family for Qwen3Vl {
    fn name(&self) -> &'static str {
        "qwen3vl"
    }

    fn detect(&self, m: &Draft) -> bool {
        architecture(m).is_some_and(|a| !m.has(&format!("{a}.rope.dimension_sections")))
    }

    fn translate(&self, m: &mut Draft) -> Result<(), String> {
        let arch = architecture(m).unwrap_or("qwen3vl").to_owned();
        let head_dim = m
            .unsigned(&format!("{arch}.attention.key_length"))
            .or_else(|| {
                let embd = m.unsigned(&format!("{arch}.embedding_length"))?;
                let heads = m.unsigned(&format!("{arch}.attention.head_count"))?;
                embd.checked_div(heads)
            });
        let sum: i32 = SECTIONS.iter().sum();
        if head_dim.is_some_and(|d| d != 2 * sum as u64) {
            return Err(format!(
                "{arch}.rope.dimension_sections is missing, and the sections Ollama supplies \
                 ({SECTIONS:?}) need a head dimension of {}, not {}",
                2 * sum,
                head_dim.unwrap_or_default()
            ));
        }
        m.set(
            &format!("{arch}.rope.dimension_sections"),
            Value::Array(SECTIONS.iter().copied().map(Value::I32).collect()),
        );
        let deepstack = match m.get(&format!("{arch}.vision.deepstack_visual_indexes")) {
            Some(Value::Array(items)) => items.len(),
            _ => 0,
        };
        m.set_if_missing(
            &format!("{arch}.n_deepstack_layers"),
            Value::U32(u32::try_from(deepstack).unwrap_or(0)),
        );
        m.hide_vision_tower();
        Ok(())
    }

    fn projector(&self, m: &mut Draft) -> Option<Result<(), String>> {
        Some(projector(m))
    }
}

fn projector(m: &mut Draft) -> Result<(), String> {
    let arch = architecture(m).unwrap_or("qwen3vl").to_owned();
    let key = |suffix: &str| format!("{arch}{suffix}");
    m.require(
        &[
            &key(".vision.block_count"),
            &key(".vision.embedding_length"),
            &key(".vision.attention.head_count"),
            &key(".embedding_length"),
        ],
        "vision projector",
    )?;
    let pairs: Vec<(String, &str)> = [
        (
            ".vision.attention.head_count",
            "clip.vision.attention.head_count",
        ),
        (
            ".vision.attention.layer_norm_epsilon",
            "clip.vision.attention.layer_norm_epsilon",
        ),
        (".vision.block_count", "clip.vision.block_count"),
        (".vision.embedding_length", "clip.vision.embedding_length"),
        (".vision.num_channels", "clip.vision.num_channels"),
        (".vision.patch_size", "clip.vision.patch_size"),
        (
            ".vision.spatial_merge_size",
            "clip.vision.spatial_merge_size",
        ),
        (
            ".vision.temporal_patch_size",
            "clip.vision.temporal_patch_size",
        ),
        (".vision.rope.freq_base", "clip.vision.rope.freq_base"),
        (".embedding_length", "clip.vision.projection_dim"),
        (".vision.image_mean", "clip.vision.image_mean"),
        (".vision.image_std", "clip.vision.image_std"),
        (".vision.shortest_edge", "clip.vision.image_min_pixels"),
        (".vision.longest_edge", "clip.vision.image_max_pixels"),
    ]
    .into_iter()
    .map(|(from, to)| (key(from), to))
    .collect();
    let pairs: Vec<(&str, &str)> = pairs.iter().map(|(f, t)| (f.as_str(), *t)).collect();
    m.copy_keys(&pairs);
    m.set_if_missing("clip.vision.num_channels", Value::U32(3));
    m.set_if_missing("clip.vision.temporal_patch_size", Value::U32(2));
    m.set_if_missing("clip.vision.rope.freq_base", Value::F32(10_000.0));
    if let Some(rows) = m
        .tensor_shape("v.blk.0.mlp.linear_fc1.weight")
        .and_then(|shape| shape.get(1).copied())
    {
        let rows = u32::try_from(rows).unwrap_or(0);
        m.set_if_missing("clip.vision.feed_forward_length", Value::U32(rows));
    }
    // The position embeddings cover a square of patches.
    let patch = m.unsigned(&key(".vision.patch_size"));
    let positions = m
        .tensor_shape("v.pos_embed.weight")
        .and_then(|shape| shape.get(1).copied());
    if let (Some(patch), Some(positions)) = (patch, positions) {
        let side = (positions as f64).sqrt() as u64;
        let size = u32::try_from(side * patch).unwrap_or(0);
        m.set_if_missing("clip.vision.image_size", Value::U32(size));
    }
    m.set_if_missing("clip.vision.image_min_pixels", Value::U32(65_536));
    m.set_if_missing("clip.vision.image_max_pixels", Value::U32(16_777_216));
    m.set_image_normalization(HALF, HALF);
    let blocks = m.unsigned("clip.vision.block_count").unwrap_or(0);
    let deepstack = m.integers(&key(".vision.deepstack_visual_indexes"));
    if !m.has("clip.vision.is_deepstack_layers") && blocks > 0 {
        let mask = (0..blocks)
            .map(|b| Value::Bool(deepstack.iter().any(|&i| u64::try_from(i) == Ok(b))))
            .collect();
        m.set("clip.vision.is_deepstack_layers", Value::Array(mask));
    }
    m.set_if_missing("clip.use_gelu", Value::Bool(true));
    m.make_projector("qwen3vl_merger");

    for block in 0..blocks {
        merge_qkv(m, block, "weight")?;
        merge_qkv(m, block, "bias")?;
    }
    split_patch_embedding(m, &key(".vision.num_channels"))?;
    for (from, to) in [
        ("v.merger.norm.weight", "v.post_ln.weight"),
        ("v.merger.norm.bias", "v.post_ln.bias"),
        ("v.merger.linear_fc1.weight", "mm.0.weight"),
        ("v.merger.linear_fc1.bias", "mm.0.bias"),
        ("v.merger.linear_fc2.weight", "mm.2.weight"),
        ("v.merger.linear_fc2.bias", "mm.2.bias"),
        ("v.patch_embed.bias", "v.patch_embd.bias"),
        ("v.pos_embed.weight", "v.position_embd.weight"),
    ] {
        m.rename_tensor(from, to);
    }
    // Deepstack mergers are named after the block whose output they take.
    for (i, block) in deepstack.iter().enumerate() {
        for (from, to) in [
            ("norm", "norm"),
            ("linear_fc1", "fc1"),
            ("linear_fc2", "fc2"),
        ] {
            for suffix in ["weight", "bias"] {
                m.rename_tensor(
                    &format!("v.deepstack_merger.{i}.{from}.{suffix}"),
                    &format!("v.deepstack.{block}.{to}.{suffix}"),
                );
            }
        }
    }
    for (from, to) in [
        (".norm1", ".ln1"),
        (".norm2", ".ln2"),
        (".mlp.linear_fc1", ".ffn_up"),
        (".mlp.linear_fc2", ".ffn_down"),
    ] {
        m.rename_tensors_containing(from, to);
    }
    m.promote_to_f32("v.position_embd.weight");
    Ok(())
}

/// Replaces block `block`'s separate Q, K and V `part` (`weight` or `bias`) with one F32
/// `attn_qkv`, their values one after the other (Q's rows, then K's, then V's).
fn merge_qkv(m: &mut Draft, block: u64, part: &str) -> Result<(), String> {
    let name = |p: &str| format!("v.blk.{block}.{p}.{part}");
    let Some(q) = m.tensor(&name("attn_q")).cloned() else {
        return Ok(());
    };
    let regions = ["attn_q", "attn_k", "attn_v"]
        .iter()
        .map(|p| m.region(&name(p)))
        .collect::<Option<Vec<_>>>()
        .ok_or(format!("{} has no matching K and V", name("attn_q")))?;
    let mut shape = q.shape.clone();
    match shape.last_mut() {
        Some(outputs) => *outputs *= 3,
        None => return Err(format!("{} has no dimensions", name("attn_q"))),
    }
    for p in ["attn_q", "attn_k", "attn_v"] {
        m.remove_tensor(&name(p));
    }
    m.add_tensor(&name("attn_qkv"), F32, shape, Data::ConcatF32(regions));
    Ok(())
}

/// Splits the F16 Conv3D patch embedding `[w, h, 2, cout*cin]` into llama.cpp's two F32
/// Conv2D `[w, h, cin, cout]`, one per temporal slice.
fn split_patch_embedding(m: &mut Draft, channels_key: &str) -> Result<(), String> {
    const SOURCE: &str = "v.patch_embed.weight";
    let Some(tensor) = m.tensor(SOURCE) else {
        return Ok(());
    };
    let cin = m.unsigned(channels_key).unwrap_or(3);
    let unsupported = || {
        format!(
            "{SOURCE} is {} of shape {:?}, not the F16 [w, h, 2, out*{cin}] Conv3D weight the              split handles",
            tensor.kind, tensor.shape
        )
    };
    let (Some(offset), [width, height, frames, packed]) =
        (tensor.source_offset(), tensor.shape.as_slice())
    else {
        return Err(unsupported());
    };
    if tensor.kind != F16 || *frames != 2 || cin == 0 || packed % cin != 0 {
        return Err(unsupported());
    }
    let (width, height, frames, cout) = (*width, *height, *frames, packed / cin);
    let shape = vec![width, height, cin, cout];
    m.remove_tensor(SOURCE);
    for (slice, name) in [(0, "v.patch_embd.weight"), (1, "v.patch_embd.weight.1")] {
        let data = Data::PatchSlice {
            offset,
            plane: width * height,
            cin,
            cout,
            frames,
            slice,
        };
        m.add_tensor(name, F32, shape.clone(), data);
    }
    Ok(())
}

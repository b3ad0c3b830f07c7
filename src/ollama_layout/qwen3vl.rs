//! Qwen3-VL (dense and MoE) as Ollama's converter wrote it (Ollama's `handle_qwen3vl`): no
//! `rope.dimension_sections` (the marker) and no `n_deepstack_layers`, and the vision tower
//! embedded (`v.*`, `mm.*`).

use super::{Draft, Family};
use crate::gguf::Value;

/// The M-RoPE sections of every Qwen3-VL Ollama published (head dimension 128), which
/// Ollama's compat layer also supplies.
const SECTIONS: [i32; 4] = [24, 20, 20, 0];

pub struct Qwen3Vl;

fn architecture(m: &Draft) -> Option<&str> {
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
        m.hide_tensors_with_prefix("v.");
        m.hide_tensors_with_prefix("mm.");
        Ok(())
    }
}

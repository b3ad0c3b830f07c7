//! Qwen2.5-VL as Ollama's converter wrote it (Ollama's `handle_qwen25vl`): architecture
//! `qwen25vl`, which llama.cpp runs as `qwen2vl` (its M-RoPE text model); the M-RoPE sections
//! as three numbers under `rope.mrope_section` rather than four under
//! `rope.dimension_sections`; and the vision tower embedded (`v.*`, `mm.*`).

use super::{Draft, Family};
use crate::gguf::Value;

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
        m.hide_tensors_with_prefix("v.");
        m.hide_tensors_with_prefix("mm.");
        Ok(())
    }
}

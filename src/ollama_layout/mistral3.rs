//! Mistral Small 3.1 (`mistral3`) as Ollama's converter wrote it (Ollama's
//! `handle_mistral3`): YaRN parameters under other key names, the attention temperature scale
//! under `rope.scaling_beta`, no pre-tokenizer name, and the Pixtral vision tower and
//! projector embedded in the text model (`v.*`, `mm.*`), which the text loader must not see.

use super::{Draft, Family};
use crate::gguf::Value;

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
        m.hide_tensors_with_prefix("v.");
        m.hide_tensors_with_prefix("mm.");
        Ok(())
    }
}

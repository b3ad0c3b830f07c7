//! gpt-oss as Ollama published it at launch (Ollama's `handle_gptoss`): architecture
//! `gptoss` rather than `gpt-oss` (so every hyperparameter key too), no
//! `expert_feed_forward_length`, no RoPE scaling type, the generic pre-tokenizer instead of
//! `gpt-4o`, and three tensor names of Ollama's own. The MXFP4 expert weights are in ggml's
//! block layout already (Ollama's converter repacks the nibbles when it writes them), so the
//! data is copied as it is.

use super::{Draft, Family};
use crate::gguf::Value;

pub struct GptOss;

impl Family for GptOss {
    fn name(&self) -> &'static str {
        "gptoss"
    }

    fn detect(&self, m: &Draft) -> bool {
        m.architecture() == "gptoss"
    }

    fn translate(&self, m: &mut Draft) -> Result<(), String> {
        m.set("general.architecture", Value::String("gpt-oss".to_owned()));
        m.rename_key_prefix("gptoss.", "gpt-oss.");
        if !m.has("gpt-oss.expert_feed_forward_length") {
            // ffn_gate_exps is {n_embd, n_ff_exp, n_expert}.
            let n_ff = m
                .tensor_shape("blk.0.ffn_gate_exps.weight")
                .and_then(|shape| shape.get(1).copied())
                .ok_or(
                    "gpt-oss.expert_feed_forward_length is missing and there is no \
                     blk.0.ffn_gate_exps.weight tensor to derive it from",
                )?;
            let n_ff = u32::try_from(n_ff).map_err(|_| "ffn_gate_exps is too large")?;
            m.set("gpt-oss.expert_feed_forward_length", Value::U32(n_ff));
        }
        m.set_if_missing(
            "gpt-oss.rope.scaling.type",
            Value::String("yarn".to_owned()),
        );
        // Without gpt-4o's pre-tokenizer prompts split differently and the Harmony headers
        // come out malformed.
        m.set("tokenizer.ggml.pre", Value::String("gpt-4o".to_owned()));
        m.rename_tensors_containing(".attn_out", ".attn_output");
        m.rename_tensors_containing(".attn_sinks", ".attn_sinks.weight");
        m.rename_tensors_containing(".ffn_norm", ".post_attention_norm");
        Ok(())
    }
}

//! EmbeddingGemma as Ollama's converter wrote it (Ollama's `handle_embeddinggemma`):
//! architecture `gemma3` with the sentence-transformers projection as `dense.0` and
//! `dense.1`, where llama.cpp has a `gemma-embedding` architecture (bidirectional attention)
//! that loads `dense_2` and `dense_3` with their sizes in metadata.

use super::{Draft, Family};
use crate::gguf::Value;

pub struct EmbeddingGemma;

impl Family for EmbeddingGemma {
    fn name(&self) -> &'static str {
        "embeddinggemma"
    }

    fn detect(&self, m: &Draft) -> bool {
        m.architecture() == "gemma3" && m.tensor_shape("dense.0.weight").is_some()
    }

    fn translate(&self, m: &mut Draft) -> Result<(), String> {
        let shape = |m: &Draft, name: &str| -> Result<(u32, u32), String> {
            match m.tensor_shape(name) {
                Some([input, output]) => Ok((
                    u32::try_from(*input).map_err(|e| e.to_string())?,
                    u32::try_from(*output).map_err(|e| e.to_string())?,
                )),
                _ => Err(format!("the file has no two-dimensional {name} tensor")),
            }
        };
        let (dense2_in, dense2_out) = shape(m, "dense.0.weight")?;
        let (dense3_in, dense3_out) = shape(m, "dense.1.weight")?;
        m.set(
            "general.architecture",
            Value::String("gemma-embedding".to_owned()),
        );
        m.rename_key_prefix("gemma3.", "gemma-embedding.");
        m.remove("gemma-embedding.attention.causal");
        m.remove("gemma-embedding.attention.sliding_window_pattern");
        m.set_if_missing("gemma-embedding.rope.freq_base_swa", Value::F32(10_000.0));
        for (key, value) in [
            ("dense_2_feat_in", dense2_in),
            ("dense_2_feat_out", dense2_out),
            ("dense_3_feat_in", dense3_in),
            ("dense_3_feat_out", dense3_out),
        ] {
            m.set(&format!("gemma-embedding.{key}"), Value::U32(value));
        }
        m.rename_tensor("dense.0.weight", "dense_2.weight");
        m.rename_tensor("dense.1.weight", "dense_3.weight");
        m.rename_tensor("norm.weight", "output_norm.weight");
        Ok(())
    }
}

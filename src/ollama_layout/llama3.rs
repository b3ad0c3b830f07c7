//! Llama 3.x files with Ollama's tokenizer metadata gap (Ollama's
//! `handle_llama3_metadata`): a Llama 3 vocabulary (`<|eot_id|>` at 128009, the header
//! tokens or a template using them) whose file has no pre-tokenizer name, or whose EOS is
//! `<|end_of_text|>` (128001), so that chat replies never end at `<|eot_id|>`.

use super::{Draft, Family};
use crate::gguf::Value;

const EOT_ID: u32 = 128_009;
const END_OF_TEXT: u64 = 128_001;

pub struct Llama3;

fn token_is(m: &Draft, index: usize, text: &str) -> bool {
    matches!(m.get("tokenizer.ggml.tokens"), Some(Value::Array(tokens))
        if tokens.get(index).and_then(Value::as_str) == Some(text))
}

fn pre_missing_or_default(m: &Draft) -> bool {
    match m.get("tokenizer.ggml.pre") {
        None => true,
        Some(value) => matches!(value.as_str(), Some("" | "default")),
    }
}

impl Family for Llama3 {
    fn name(&self) -> &'static str {
        "llama3"
    }

    fn detect(&self, m: &Draft) -> bool {
        if m.architecture() != "llama" || !token_is(m, EOT_ID as usize, "<|eot_id|>") {
            return false;
        }
        let template = m.string("tokenizer.chat_template").unwrap_or("");
        let chat_markers = token_is(m, 128_006, "<|start_header_id|>")
            || template.contains("<|start_header_id|>")
            || template.contains("<|eot_id|>");
        let eos_is_end_of_text = m.unsigned("tokenizer.ggml.eos_token_id") == Some(END_OF_TEXT);
        chat_markers && (pre_missing_or_default(m) || eos_is_end_of_text)
    }

    fn translate(&self, m: &mut Draft) -> Result<(), String> {
        if pre_missing_or_default(m) {
            m.set("tokenizer.ggml.pre", Value::String("llama-bpe".to_owned()));
        }
        for key in ["tokenizer.ggml.eos_token_id", "tokenizer.ggml.eot_token_id"] {
            if m.unsigned(key).is_none_or(|id| id == END_OF_TEXT) {
                m.set(key, Value::U32(EOT_ID));
            }
        }
        m.set(
            "tokenizer.ggml.eos_token_ids",
            Value::Array(vec![Value::I32(EOT_ID as i32)]),
        );
        Ok(())
    }
}

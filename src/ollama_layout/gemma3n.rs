//! Gemma 3n as Ollama's converter wrote it (Ollama's `handle_gemma3n`): the main token
//! embedding and the tokenizer arrays hold the multimodal vocabulary (256 more tokens than
//! the text model's), while the per-layer token embeddings hold only the text vocabulary;
//! llama.cpp sizes both by the tokenizer and refuses the file. The text model never uses the
//! extra tokens, so the vocabulary is cut to the per-layer embeddings' rows (the main
//! embedding keeps its first rows, read from the same place). Byte tokens and `<unused…>`
//! tokens get the types llama.cpp's converter gives them, and `<end_of_turn>` (106) ends
//! generation.

use super::{Draft, Family};
use crate::gguf::Value;

/// `<end_of_turn>`.
const END_OF_TURN: u32 = 106;
/// llama.cpp's token types.
const NORMAL: i32 = 1;
const BYTE: i32 = 6;

pub struct Gemma3n;

fn rows(m: &Draft, name: &str) -> Option<u64> {
    m.tensor_shape(name).and_then(|shape| shape.get(1).copied())
}

impl Family for Gemma3n {
    fn name(&self) -> &'static str {
        "gemma3n"
    }

    fn detect(&self, m: &Draft) -> bool {
        m.architecture() == "gemma3n"
            && matches!(
                (rows(m, "token_embd.weight"), rows(m, "per_layer_token_embd.weight")),
                (Some(main), Some(per_layer)) if main != per_layer
            )
    }

    fn translate(&self, m: &mut Draft) -> Result<(), String> {
        let vocabulary = rows(m, "per_layer_token_embd.weight")
            .ok_or("the file has no per_layer_token_embd.weight tensor")?;
        let main = rows(m, "token_embd.weight").unwrap_or(0);
        if main < vocabulary {
            return Err(format!(
                "token_embd.weight has {main} rows, fewer than per_layer_token_embd.weight's \
                 {vocabulary}"
            ));
        }
        m.set("tokenizer.ggml.model", Value::String("llama".to_owned()));
        if let Some(rows) = m
            .tensor_mut("token_embd.weight")
            .and_then(|t| t.shape.get_mut(1))
        {
            *rows = vocabulary;
        }
        let len = usize::try_from(vocabulary).map_err(|e| e.to_string())?;
        for key in [
            "tokenizer.ggml.tokens",
            "tokenizer.ggml.scores",
            "tokenizer.ggml.token_type",
        ] {
            m.truncate_array(key, len);
        }
        let tokens: Vec<String> = match m.get("tokenizer.ggml.tokens") {
            Some(Value::Array(items)) => items
                .iter()
                .map(|v| v.as_str().unwrap_or_default().to_owned())
                .collect(),
            _ => Vec::new(),
        };
        if let Some(Value::Array(types)) = m.get("tokenizer.ggml.token_type").cloned() {
            let types = types
                .into_iter()
                .zip(
                    tokens
                        .iter()
                        .map(String::as_str)
                        .chain(std::iter::repeat("")),
                )
                .map(|(kind, token)| match kind {
                    Value::I32(_) if is_byte_token(token) => Value::I32(BYTE),
                    Value::I32(_) if token.starts_with("<unused") => Value::I32(NORMAL),
                    other => other,
                })
                .collect();
            m.set("tokenizer.ggml.token_type", Value::Array(types));
        }
        let eos = match m.get("tokenizer.ggml.eos_token_ids") {
            Some(Value::Array(ids)) => {
                let mut ids = ids.clone();
                if !ids.iter().any(|id| id.as_u64() == Some(END_OF_TURN.into())) {
                    ids.push(match ids.first() {
                        Some(Value::U32(_)) => Value::U32(END_OF_TURN),
                        _ => Value::I32(END_OF_TURN as i32),
                    });
                }
                ids
            }
            _ => vec![Value::I32(1), Value::I32(END_OF_TURN as i32)],
        };
        m.set("tokenizer.ggml.eos_token_ids", Value::Array(eos));
        Ok(())
    }
}

/// `<0xAB>`: one of the 256 byte-fallback tokens.
fn is_byte_token(token: &str) -> bool {
    token.len() == 6 && token.starts_with("<0x") && token.ends_with('>')
}

//! The vocabulary of a Hugging Face `tokenizer.json`, as llama.cpp's GGUF keys hold it:
//! WordPiece (BERT) in llama.cpp's "phantom space" form, or byte-level BPE with its merges.

use candle_core::quantized::gguf_file::Value as V;
use serde_json::Value;

/// llama.cpp's token types.
const NORMAL: i32 = 1;
const CONTROL: i32 = 3;
const USER_DEFINED: i32 = 4;
const UNUSED: i32 = 5;

pub struct Vocabulary {
    word_piece: bool,
    tokens: Vec<String>,
    types: Vec<i32>,
    merges: Vec<String>,
    /// `(gguf key suffix, id)` of special tokens.
    special: Vec<(&'static str, u32)>,
    add_bos: bool,
    add_eos: bool,
    chat_template: Option<String>,
}

/// A special token's text in `tokenizer_config.json` (a string or `{"content": …}`).
fn special_text(config: &Value, key: &str) -> Option<String> {
    let entry = &config[key];
    entry
        .as_str()
        .or_else(|| entry["content"].as_str())
        .map(str::to_string)
}

impl Vocabulary {
    /// Reads the vocabulary, padded to `rows` entries (the embedding matrix may be larger).
    pub fn read(tokenizer: &Value, config: &Value, rows: usize) -> Result<Vocabulary, String> {
        let model = &tokenizer["model"];
        let kind = model["type"].as_str().unwrap_or("");
        let word_piece = match kind {
            "WordPiece" => true,
            "BPE" => false,
            other => {
                return Err(format!(
                    "unsupported tokenizer model {other:?} in tokenizer.json"
                ))
            }
        };
        let vocab = model["vocab"]
            .as_object()
            .ok_or("tokenizer.json has no vocabulary")?;
        let mut by_id: Vec<Option<(String, i32)>> = Vec::new();
        let mut place = |id: u64, text: &str, kind: i32| -> Result<(), String> {
            let id = usize::try_from(id)
                .ok()
                .filter(|id| *id < 10_000_000)
                .ok_or("token id out of range")?;
            if by_id.len() <= id {
                by_id.resize(id + 1, None);
            }
            by_id[id] = Some((text.to_string(), kind));
            Ok(())
        };
        for (text, id) in vocab {
            place(
                id.as_u64().ok_or("a vocabulary id is not a number")?,
                text,
                NORMAL,
            )?;
        }
        for added in tokenizer["added_tokens"].as_array().into_iter().flatten() {
            let (Some(id), Some(text)) = (added["id"].as_u64(), added["content"].as_str()) else {
                continue;
            };
            let kind = if added["special"].as_bool() == Some(true) {
                CONTROL
            } else {
                USER_DEFINED
            };
            place(id, text, kind)?;
        }
        if by_id.len() > rows {
            return Err(format!(
                "the tokenizer has {} tokens but the embeddings only {rows}",
                by_id.len()
            ));
        }
        by_id.resize(rows, None);
        let (tokens, types): (Vec<String>, Vec<i32>) = by_id
            .into_iter()
            .enumerate()
            .map(|(id, entry)| entry.unwrap_or_else(|| (format!("[PAD{id}]"), UNUSED)))
            .unzip();

        let merges = if word_piece {
            Vec::new()
        } else {
            model["merges"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|merge| match merge {
                    Value::String(pair) => Some(pair.clone()),
                    Value::Array(pair) => Some(format!(
                        "{} {}",
                        pair.first()?.as_str()?,
                        pair.get(1)?.as_str()?
                    )),
                    _ => None,
                })
                .collect()
        };

        let id_of = |text: &str| tokens.iter().position(|t| t == text).map(|i| i as u32);
        let mut special = Vec::new();
        // BERT has no BOS/EOS of its own: llama.cpp writes CLS and SEP there.
        let roles: &[(&'static str, &[&str])] = if word_piece {
            &[
                ("bos", &["cls_token", "bos_token"]),
                ("eos", &["sep_token", "eos_token"]),
                ("seperator", &["sep_token"]),
                ("unknown", &["unk_token"]),
                ("padding", &["pad_token"]),
                ("mask", &["mask_token"]),
            ]
        } else {
            &[
                ("bos", &["bos_token"]),
                ("eos", &["eos_token"]),
                ("unknown", &["unk_token"]),
                ("padding", &["pad_token"]),
            ]
        };
        for (role, keys) in roles {
            let text = keys.iter().find_map(|key| special_text(config, key));
            let fallback = match (*role, word_piece) {
                ("bos", true) => Some("[CLS]"),
                ("eos" | "seperator", true) => Some("[SEP]"),
                ("unknown", true) => Some("[UNK]"),
                ("padding", true) => Some("[PAD]"),
                ("mask", true) => Some("[MASK]"),
                _ => None,
            };
            if let Some(id) = text.as_deref().or(fallback).and_then(id_of) {
                special.push((*role, id));
            }
        }
        let flag = |key: &str| config[key].as_bool();
        Ok(Vocabulary {
            word_piece,
            add_bos: flag("add_bos_token").unwrap_or(word_piece),
            add_eos: flag("add_eos_token").unwrap_or(word_piece),
            chat_template: config["chat_template"].as_str().map(str::to_string),
            tokens,
            types,
            merges,
            special,
        })
    }

    /// The `tokenizer.*` keys.
    pub fn write(&self, _architecture: &str, put: &mut impl FnMut(&str, V)) {
        let tokens: Vec<V> = if self.word_piece {
            self.tokens
                .iter()
                .zip(&self.types)
                .map(|(token, kind)| V::String(phantom_space(token, *kind)))
                .collect()
        } else {
            self.tokens.iter().cloned().map(V::String).collect()
        };
        put(
            "tokenizer.ggml.model",
            V::String(if self.word_piece { "bert" } else { "gpt2" }.into()),
        );
        put("tokenizer.ggml.pre", V::String("default".into()));
        put("tokenizer.ggml.tokens", V::Array(tokens));
        put(
            "tokenizer.ggml.token_type",
            V::Array(self.types.iter().map(|t| V::I32(*t)).collect()),
        );
        if !self.merges.is_empty() {
            put(
                "tokenizer.ggml.merges",
                V::Array(self.merges.iter().cloned().map(V::String).collect()),
            );
        }
        for (role, id) in &self.special {
            put(&format!("tokenizer.ggml.{role}_token_id"), V::U32(*id));
        }
        put("tokenizer.ggml.add_bos_token", V::Bool(self.add_bos));
        put("tokenizer.ggml.add_eos_token", V::Bool(self.add_eos));
        if let Some(template) = &self.chat_template {
            put("tokenizer.chat_template", V::String(template.clone()));
        }
    }
}

/// llama.cpp's WordPiece spelling: control tokens as they are, `##piece` as `piece`, a
/// word-initial piece with `▁` in front.
fn phantom_space(token: &str, kind: i32) -> String {
    if kind == CONTROL {
        token.to_string()
    } else if let Some(piece) = token.strip_prefix("##") {
        piece.to_string()
    } else {
        format!("\u{2581}{token}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn word_piece_vocabularies_get_phantom_spaces_and_bert_specials() {
        let tokenizer = json!({
            "model": {"type": "WordPiece", "vocab": {"[PAD]": 0, "[CLS]": 1, "[SEP]": 2, "sky": 3, "##s": 4}},
            "added_tokens": [{"id": 0, "content": "[PAD]", "special": true},
                             {"id": 1, "content": "[CLS]", "special": true},
                             {"id": 2, "content": "[SEP]", "special": true}]
        });
        let vocabulary = Vocabulary::read(&tokenizer, &json!({"cls_token": "[CLS]"}), 6).unwrap();
        let mut written = std::collections::BTreeMap::new();
        vocabulary.write("bert", &mut |key: &str, value: V| {
            written.insert(key.to_string(), value);
        });
        let tokens: Vec<String> = written["tokenizer.ggml.tokens"]
            .to_vec()
            .unwrap()
            .iter()
            .map(|v| v.to_string().unwrap().clone())
            .collect();
        assert_eq!(tokens, ["[PAD]", "[CLS]", "[SEP]", "▁sky", "s", "▁[PAD5]"]);
        assert_eq!(written["tokenizer.ggml.bos_token_id"].to_u32().unwrap(), 1);
        assert_eq!(
            written["tokenizer.ggml.seperator_token_id"]
                .to_u32()
                .unwrap(),
            2
        );
        assert_eq!(written["tokenizer.ggml.model"].to_string().unwrap(), "bert");
    }

    #[test]
    fn bpe_merges_are_read_in_either_spelling() {
        let tokenizer = json!({
            "model": {"type": "BPE", "vocab": {"a": 0, "b": 1, "ab": 2},
                      "merges": ["a b", ["ab", "b"]]},
            "added_tokens": [{"id": 3, "content": "<|im_end|>", "special": true}]
        });
        let config = json!({"eos_token": {"content": "<|im_end|>"}, "chat_template": "{{x}}"});
        let vocabulary = Vocabulary::read(&tokenizer, &config, 4).unwrap();
        assert_eq!(vocabulary.merges, ["a b", "ab b"]);
        assert_eq!(vocabulary.special, [("eos", 3)]);
        assert_eq!(vocabulary.types, [NORMAL, NORMAL, NORMAL, CONTROL]);
        assert!(!vocabulary.add_bos);
    }

    #[test]
    fn a_tokenizer_larger_than_the_embeddings_is_refused() {
        let tokenizer = json!({"model": {"type": "BPE", "vocab": {"a": 0, "b": 5}}});
        assert!(Vocabulary::read(&tokenizer, &Value::Null, 4).is_err());
    }
}

//! Output constraints (Ollama's `format`: `"json"` or a JSON schema) as a mask over the
//! logits, applied before rollama's sampler chooses: llguidance's matcher over a token trie
//! built from the model's own vocabulary.

use llguidance::{api::TopLevelGrammar, Matcher, ParserFactory};
use std::sync::Arc;
use toktrie::{ApproximateTokEnv, TokRxInfo, TokTrie};

/// A model's vocabulary, ready to compile grammars against.
pub struct Vocabulary {
    factory: Result<Arc<ParserFactory>, String>,
    eog: Vec<u32>,
}

impl Vocabulary {
    /// `tokens[i]` is token `i`'s bytes and whether it is a special (control) token; `eog`
    /// lists the tokens that end a generation, which the grammar allows once it is complete.
    pub fn new(tokens: Vec<(Vec<u8>, bool)>, eog: Vec<u32>) -> Vocabulary {
        let words: Vec<Vec<u8>> = tokens
            .into_iter()
            .map(|(bytes, special)| {
                if special && !bytes.is_empty() {
                    let mut marked = vec![TokTrie::SPECIAL_TOKEN_MARKER];
                    marked.extend(bytes);
                    marked
                } else {
                    bytes
                }
            })
            .collect();
        Vocabulary::from_words(words, eog)
    }

    /// `words[i]` is token `i`'s bytes, special tokens marked with a leading 0xFF (the form
    /// `toktrie_hf_tokenizers` gives a Hugging Face tokenizer's vocabulary in).
    pub fn from_words(words: Vec<Vec<u8>>, eog: Vec<u32>) -> Vocabulary {
        let eos = eog.first().copied().unwrap_or(0);
        let info = TokRxInfo::new(words.len() as u32, eos);
        let trie = TokTrie::from(&info, &words).with_eos_tokens(&eog);
        let env: toktrie::TokEnv = Arc::new(ApproximateTokEnv::new(trie));
        Vocabulary {
            factory: ParserFactory::new_simple(&env)
                .map(Arc::new)
                .map_err(|e| e.to_string()),
            eog,
        }
    }

    /// A Hugging Face tokenizer's vocabulary; `eog` as for [`Vocabulary::new`].
    pub fn from_tokenizer(
        tokenizer: tokenizers::Tokenizer,
        eog: Vec<u32>,
    ) -> Result<Vocabulary, String> {
        let bytes = toktrie_hf_tokenizers::ByteTokenizer::from_tokenizer(tokenizer)
            .map_err(|e| e.to_string())?;
        Ok(Vocabulary::from_words(bytes.token_bytes(), eog))
    }
}

/// One request's constraint.
pub struct Grammar {
    matcher: Matcher,
    /// What may follow a complete value: only the end of the generation.
    eog: Vec<u32>,
}

impl Grammar {
    /// A grammar for JSON matching `schema` (`{}` for any JSON value). A schema the grammar
    /// cannot compile is the request's fault: the error says so.
    pub fn json_schema(
        vocabulary: &Vocabulary,
        schema: &serde_json::Value,
    ) -> Result<Grammar, String> {
        let factory = vocabulary
            .factory
            .as_ref()
            .map_err(|e| format!("this model's vocabulary cannot take a grammar: {e}"))?;
        let grammar = TopLevelGrammar::from_json_schema(compact_json(schema.clone()));
        let parser = factory.create_parser(grammar).map_err(|e| {
            format!("the format's JSON schema cannot be turned into a grammar: {e}")
        })?;
        let matcher = Matcher::new(Ok(parser));
        if let Some(error) = matcher.get_error() {
            return Err(format!(
                "the format's JSON schema cannot be turned into a grammar: {error}"
            ));
        }
        Ok(Grammar {
            matcher,
            eog: vocabulary.eog.clone(),
        })
    }

    /// Sets the logits of tokens the grammar does not allow next to minus infinity; once the
    /// value is complete, only the end-of-generation tokens remain.
    pub fn mask(&mut self, logits: &mut [f32]) {
        if self.matcher.is_stopped() {
            for (id, logit) in logits.iter_mut().enumerate() {
                if !self.eog.contains(&(id as u32)) {
                    *logit = f32::NEG_INFINITY;
                }
            }
            return;
        }
        if let Ok(mask) = self.matcher.compute_mask_or_eos() {
            for (id, logit) in logits.iter_mut().enumerate() {
                if !mask.is_allowed(id as u32) {
                    *logit = f32::NEG_INFINITY;
                }
            }
        }
    }

    /// Advances past the chosen token.
    pub fn accept(&mut self, token: u32) {
        if !self.matcher.is_stopped() {
            let _ = self.matcher.consume_token(token);
        }
    }

    /// Whether nothing more can follow (the value is complete, or the grammar failed).
    pub fn is_done(&self) -> bool {
        self.matcher.is_stopped()
    }
}

/// A JSON schema constraint that allows no free whitespace (`, ` and `: ` between items):
/// with flexible whitespace a small model can pad its answer with newlines until it runs out
/// of tokens. Keywords the grammar cannot enforce are skipped (`lenient`) rather than failing
/// the request. A schema with its own `x-guidance` options keeps them.
pub fn compact_json(mut schema: serde_json::Value) -> serde_json::Value {
    if let Some(object) = schema.as_object_mut() {
        object.entry("x-guidance").or_insert_with(|| {
            serde_json::json!({
                "whitespace_flexible": false,
                "item_separator": ", ",
                "key_separator": ": ",
                "lenient": true,
            })
        });
    }
    schema
}

impl super::sampler::Constraint for Grammar {
    fn mask(&mut self, logits: &mut [f32]) {
        Grammar::mask(self, logits);
    }

    fn accept(&mut self, token: u32) {
        Grammar::accept(self, token);
    }

    fn is_done(&self) -> bool {
        Grammar::is_done(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A byte-level vocabulary: every byte, `{"a":` pieces, and an end token.
    fn vocabulary() -> Vocabulary {
        let mut tokens: Vec<(Vec<u8>, bool)> = (0..=255u8).map(|b| (vec![b], false)).collect();
        tokens.push((b"<end>".to_vec(), true));
        Vocabulary::new(tokens, vec![256])
    }

    #[test]
    fn the_mask_allows_only_what_the_schema_can_start_with() {
        let vocabulary = vocabulary();
        let schema = serde_json::json!({"type": "object", "properties": {"a": {"type": "integer"}}, "required": ["a"]});
        let mut grammar = Grammar::json_schema(&vocabulary, &schema).unwrap();
        let mut logits = vec![0.0f32; 257];
        grammar.mask(&mut logits);
        let allowed: Vec<usize> = (0..257).filter(|i| logits[*i].is_finite()).collect();
        assert_eq!(allowed, vec![b'{' as usize]);
        for byte in br#"{"a": 1"# {
            grammar.accept(u32::from(*byte));
        }
        let mut logits = vec![0.0f32; 257];
        grammar.mask(&mut logits);
        assert!(logits[b'2' as usize].is_finite() && logits[b'}' as usize].is_finite());
        assert!(!logits[b'x' as usize].is_finite() && !logits[256].is_finite());
        assert!(!grammar.is_done());
        for byte in b"2}" {
            grammar.accept(u32::from(*byte));
        }
        // The object is complete: nothing but the end may follow.
        assert!(grammar.is_done());
        let mut logits = vec![0.0f32; 257];
        grammar.mask(&mut logits);
        let allowed: Vec<usize> = (0..257).filter(|i| logits[*i].is_finite()).collect();
        assert_eq!(allowed, vec![256]);
    }

    #[test]
    fn a_dangling_reference_is_an_error() {
        let schema = serde_json::json!({"type": "object", "properties": {"a": {"$ref": "#/$defs/missing"}}, "required": ["a"]});
        let error = Grammar::json_schema(&vocabulary(), &schema).err().unwrap();
        assert!(error.contains("grammar"), "{error}");
    }
}

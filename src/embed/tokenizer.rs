//! The WordPiece tokenizer of a BERT-family GGUF, as llama.cpp stores it.
//!
//! llama.cpp's converter writes the vocabulary in "phantom space" form: a word-initial piece
//! gets `▁` in front, a continuation piece loses its `##`, control tokens (`[CLS]`, `[SEP]`, …)
//! stay as they are. Undoing that gives back the original WordPiece vocabulary, which the
//! `tokenizers` crate runs with BERT's normaliser (clean text, split CJK characters, strip
//! accents, lower-case: what llama.cpp's WPM tokenizer does too) and pre-tokenizer.

use ahash::AHashMap;
use tokenizers::models::wordpiece::WordPiece;
use tokenizers::normalizers::BertNormalizer;
use tokenizers::pre_tokenizers::bert::BertPreTokenizer;
use tokenizers::Tokenizer;

/// llama.cpp's token type of control tokens.
const CONTROL: i32 = 3;

pub struct WordPieceTokenizer {
    inner: Tokenizer,
    cls: u32,
    sep: u32,
}

/// What the GGUF says about the vocabulary.
pub struct Vocabulary<'a> {
    pub tokens: &'a [String],
    pub token_types: &'a [i32],
    pub cls: Option<u32>,
    pub sep: Option<u32>,
    pub unknown: Option<u32>,
}

impl WordPieceTokenizer {
    pub fn new(vocabulary: Vocabulary<'_>) -> Result<WordPieceTokenizer, String> {
        let Vocabulary {
            tokens,
            token_types,
            ..
        } = vocabulary;
        if tokens.is_empty() {
            return Err("the model has no vocabulary".to_string());
        }
        let mut vocab: AHashMap<String, u32> = AHashMap::with_capacity(tokens.len());
        for (id, token) in tokens.iter().enumerate() {
            // Without token types, bracketed names (`[CLS]`) are taken for control tokens.
            let control = match token_types.get(id) {
                Some(kind) => *kind == CONTROL,
                None => token.starts_with('[') && token.ends_with(']'),
            };
            let piece = if control {
                token.clone()
            } else if let Some(word) = token.strip_prefix('\u{2581}') {
                word.to_string()
            } else {
                format!("##{token}")
            };
            // A duplicate keeps its first id, as a lookup in llama.cpp's map would.
            vocab.entry(piece).or_insert(id as u32);
        }
        let find = |wanted: Option<u32>, text: &str| -> Option<u32> {
            wanted
                .filter(|id| (*id as usize) < tokens.len())
                .or_else(|| vocab.get(text).copied())
        };
        let cls = find(vocabulary.cls, "[CLS]").ok_or("the vocabulary has no [CLS] token")?;
        let sep = find(vocabulary.sep, "[SEP]").ok_or("the vocabulary has no [SEP] token")?;
        let unknown = find(vocabulary.unknown, "[UNK]")
            .map(|id| tokens[id as usize].clone())
            .unwrap_or_else(|| "[UNK]".to_string());
        let model = WordPiece::builder()
            .vocab(vocab)
            .unk_token(unknown)
            .continuing_subword_prefix("##".to_string())
            .max_input_chars_per_word(100)
            .build()
            .map_err(|e| format!("building the tokenizer: {e}"))?;
        let mut inner = Tokenizer::new(model);
        inner.with_normalizer(Some(BertNormalizer::new(true, true, None, true)));
        inner.with_pre_tokenizer(Some(BertPreTokenizer));
        Ok(WordPieceTokenizer { inner, cls, sep })
    }

    /// `[CLS] text [SEP]`, cut to `limit` tokens (keeping `[SEP]` last) when `truncate`;
    /// `None` when it is longer and must not be cut.
    pub fn encode(
        &self,
        text: &str,
        limit: usize,
        truncate: bool,
    ) -> Result<Option<Vec<u32>>, String> {
        let encoding = self
            .inner
            .encode(text, false)
            .map_err(|e| format!("tokenizing: {e}"))?;
        let words = encoding.get_ids();
        let room = limit.saturating_sub(2);
        if words.len() > room && !truncate {
            return Ok(None);
        }
        let mut ids = Vec::with_capacity(words.len().min(room) + 2);
        ids.push(self.cls);
        ids.extend_from_slice(&words[..words.len().min(room)]);
        ids.push(self.sep);
        Ok(Some(ids))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tokenizer() -> WordPieceTokenizer {
        let tokens: Vec<String> = [
            "[PAD]",
            "[UNK]",
            "[CLS]",
            "[SEP]",
            "▁the",
            "▁sky",
            "▁is",
            "▁blue",
            "?",
            "▁?",
            "▁cafe",
            "▁emb",
            "ed",
            "dings",
            "▁[unused0]",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        let mut types = vec![1; tokens.len()];
        types[..4].copy_from_slice(&[CONTROL; 4]);
        WordPieceTokenizer::new(Vocabulary {
            tokens: &tokens,
            token_types: &types,
            cls: Some(2),
            sep: None,
            unknown: Some(1),
        })
        .unwrap()
    }

    #[test]
    fn text_is_lowercased_split_and_wrapped_in_cls_and_sep() {
        let ids = tokenizer().encode("The SKY is blue?", 512, true).unwrap();
        assert_eq!(ids, Some(vec![2, 4, 5, 6, 7, 9, 3]));
    }

    #[test]
    fn continuation_pieces_accents_and_unknown_words_follow_wordpiece() {
        let ids = tokenizer()
            .encode("Café embeddings zzz", 512, true)
            .unwrap();
        assert_eq!(ids, Some(vec![2, 10, 11, 12, 13, 1, 3]));
    }

    #[test]
    fn long_text_is_cut_or_refused() {
        let t = tokenizer();
        assert_eq!(
            t.encode("the sky is blue", 4, true).unwrap(),
            Some(vec![2, 4, 5, 3])
        );
        assert_eq!(t.encode("the sky is blue", 4, false).unwrap(), None);
        assert_eq!(
            t.encode("the sky", 4, false).unwrap(),
            Some(vec![2, 4, 5, 3])
        );
    }

    #[test]
    fn a_vocabulary_without_cls_is_refused() {
        let tokens = vec!["▁a".to_string()];
        let error = WordPieceTokenizer::new(Vocabulary {
            tokens: &tokens,
            token_types: &[1],
            cls: None,
            sep: None,
            unknown: None,
        })
        .err()
        .unwrap();
        assert!(error.contains("[CLS]"), "{error}");
    }
}

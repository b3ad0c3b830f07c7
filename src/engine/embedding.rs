//! Embedding and reranking models, on llama.cpp like the text models.
//!
//! A model that pools (a GGUF with `<arch>.pooling_type`, or a BERT-family encoder) is loaded
//! with embeddings on and its own pooling: mean, CLS, last token, or rank (a classification
//! head scoring a query and a document together). [`Embedder`] tokenizes, cuts inputs to the
//! context as Ollama does, and hands token sequences to the model's thread
//! ([`super::llama_embed`]), which packs many sequences into each llama.cpp batch. Vectors
//! come back as the model pools them: `/api/embed` normalises them, the legacy
//! `/api/embeddings` does not.

use super::{EngineError, LoadOptions};
use crate::gguf::{Gguf, Value};
use std::path::Path;

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum EmbedError {
    /// An input is longer than the context and was not to be cut (Ollama's message).
    #[error("the input length exceeds the context length")]
    TooLong,
    /// A rerank query that leaves no room for its document.
    #[error("the query ({0} tokens) leaves no room for a document in the context of {1} tokens")]
    QueryTooLong(usize, usize),
    #[error("{0}")]
    Failed(String),
}

/// How a model turns the states of a sequence's tokens into its output (llama.cpp's
/// `pooling_type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pooling {
    Mean,
    Cls,
    Last,
    /// A classification head over the pair (query, document): a relevance score.
    Rank,
}

impl Pooling {
    pub fn name(self) -> &'static str {
        match self {
            Pooling::Mean => "mean",
            Pooling::Cls => "CLS",
            Pooling::Last => "last-token",
            Pooling::Rank => "rank",
        }
    }
}

/// Encoder architectures llama.cpp runs as embedding models even when the file names no
/// pooling (it then pools by the mean, as rollama always did).
const ENCODERS: &[&str] = &[
    "bert",
    "nomic-bert",
    "nomic-bert-moe",
    "jina-bert-v2",
    "jina-bert-v3",
    "neo-bert",
    "modern-bert",
    "eurobert",
];

/// How `gguf` pools, or None for a model that does not (a text model). A file's own
/// `<arch>.pooling_type` decides; an encoder without one, or with `none`, pools by the mean,
/// unless it carries a classification head (`cls.output`, or `cls` alone as in
/// jina-reranker-v1), which llama.cpp's converter writes for rerankers without naming rank
/// pooling.
pub fn pooling_of(gguf: &Gguf) -> Option<Pooling> {
    let architecture = gguf.architecture().unwrap_or("");
    let declared = gguf
        .get(&format!("{architecture}.pooling_type"))
        .and_then(Value::as_u64);
    let has_head = || {
        gguf.tensors
            .iter()
            .any(|t| t.name == "cls.output.weight" || t.name == "cls.weight")
    };
    match declared {
        Some(1) => Some(Pooling::Mean),
        Some(2) => Some(Pooling::Cls),
        Some(3) => Some(Pooling::Last),
        Some(4) => Some(Pooling::Rank),
        Some(_) if has_head() => Some(Pooling::Rank),
        Some(_) => Some(Pooling::Mean),
        None if ENCODERS.contains(&architecture) => Some(if has_head() {
            Pooling::Rank
        } else {
            Pooling::Mean
        }),
        None => None,
    }
}

/// The vectors of a batch of inputs, in input order, and how many tokens they took.
pub struct Embeddings {
    pub vectors: Vec<Vec<f32>>,
    pub prompt_tokens: usize,
}

/// The relevance score of each document, in document order.
pub struct Ranking {
    pub scores: Vec<f32>,
    pub prompt_tokens: usize,
}

/// A loaded embedding or reranking model.
pub struct Embedder {
    #[cfg(feature = "llamacpp")]
    inner: super::llama_embed::LlamaEmbedder,
    #[cfg(not(feature = "llamacpp"))]
    inner: std::convert::Infallible,
    pub pooling: Pooling,
    /// Most tokens per input the model was trained for.
    pub context_length: usize,
    /// Length of each vector (of each score list, for rank pooling).
    pub dimensions: usize,
}

impl Embedder {
    /// Loads the GGUF at `path`. Blocking: call it off the async workers.
    pub fn load(path: &Path, options: &LoadOptions, gguf: &Gguf) -> Result<Embedder, EngineError> {
        let pooling = pooling_of(gguf).ok_or_else(|| {
            EngineError::Unsupported(format!(
                "{} is not an embedding model",
                gguf.architecture().unwrap_or("this model")
            ))
        })?;
        #[cfg(feature = "llamacpp")]
        {
            let path = super::weights::f32_token_types(
                path,
                &options.blob_digest,
                gguf,
                &options.derived_dir,
            )
            .map_err(|e| EngineError::Failed(format!("failed to load model: {e}")))?;
            let inner = super::llama_embed::LlamaEmbedder::load(&path, options, pooling)?;
            Ok(Embedder {
                pooling,
                context_length: inner.context_length,
                dimensions: inner.dimensions,
                inner,
            })
        }
        #[cfg(not(feature = "llamacpp"))]
        {
            let _ = (path, options, pooling);
            Err(EngineError::Unsupported(
                "embedding models run on llama.cpp, which this build leaves out".into(),
            ))
        }
    }

    /// Bytes the model takes: its weights and the context's buffers.
    pub fn memory_size(&self) -> u64 {
        #[cfg(feature = "llamacpp")]
        return self.inner.memory_size();
        #[cfg(not(feature = "llamacpp"))]
        match self.inner {}
    }

    /// What the model holds on GPUs.
    pub fn footprint(&self) -> super::gpu::Footprint {
        #[cfg(feature = "llamacpp")]
        return self.inner.footprint.clone();
        #[cfg(not(feature = "llamacpp"))]
        match self.inner {}
    }

    /// Token ids of each input, with the vocabulary's special tokens, each at most `limit`
    /// tokens (never more than the model's context). Over-long inputs are cut when
    /// `truncate`, else refused.
    pub fn tokenize(
        &self,
        inputs: &[String],
        limit: usize,
        truncate: bool,
    ) -> Result<Vec<Vec<u32>>, EmbedError> {
        let limit = self.limit(limit);
        inputs
            .iter()
            .map(|text| {
                #[cfg(feature = "llamacpp")]
                let full = self.inner.tokens(text, true);
                #[cfg(not(feature = "llamacpp"))]
                let full: Vec<u32> = match self.inner {};
                if full.len() <= limit {
                    return Ok(full);
                }
                // Only an input to cut needs its tokens without the special ones.
                #[cfg(feature = "llamacpp")]
                let inner = self.inner.tokens(text, false);
                #[cfg(not(feature = "llamacpp"))]
                let inner: Vec<u32> = match self.inner {};
                fit(full, &inner, limit, truncate)
            })
            .collect()
    }

    /// Each input's most tokens: `limit` (Ollama's `num_ctx`) within the trained context.
    fn limit(&self, limit: usize) -> usize {
        limit.clamp(3, self.context_length.max(3))
    }

    /// The pooled (not normalised) vector of each token sequence, in order. Blocking.
    pub fn embed_tokens(&self, sequences: Vec<Vec<u32>>) -> Result<Vec<Vec<f32>>, EmbedError> {
        if sequences.is_empty() {
            return Ok(Vec::new());
        }
        #[cfg(feature = "llamacpp")]
        return self.inner.run(sequences).map_err(EmbedError::Failed);
        #[cfg(not(feature = "llamacpp"))]
        match self.inner {}
    }

    /// Inputs to vectors: tokenized within `limit`, embedded in batches. Blocking.
    pub fn embed(
        &self,
        inputs: &[String],
        limit: usize,
        truncate: bool,
    ) -> Result<Embeddings, EmbedError> {
        if self.pooling == Pooling::Rank {
            return Err(EmbedError::Failed(
                "a reranking model scores documents; it has no embeddings".into(),
            ));
        }
        let sequences = self.tokenize(inputs, limit, truncate)?;
        let prompt_tokens = sequences.iter().map(Vec::len).sum();
        let vectors = self.embed_tokens(sequences)?;
        Ok(Embeddings {
            vectors,
            prompt_tokens,
        })
    }

    /// The relevance of each document to `query`: one sequence per pair, laid out as
    /// llama-server lays it out (the model's rerank template, else query and document between
    /// the vocabulary's separators), documents cut to fit `limit` when `truncate`. Blocking.
    pub fn rank(
        &self,
        query: &str,
        documents: &[String],
        limit: usize,
        truncate: bool,
    ) -> Result<Ranking, EmbedError> {
        if self.pooling != Pooling::Rank {
            return Err(EmbedError::Failed(format!(
                "the model pools by {}, not rank",
                self.pooling.name()
            )));
        }
        let limit = self.limit(limit);
        let sequences = documents
            .iter()
            .map(|document| {
                #[cfg(feature = "llamacpp")]
                let pair = self.inner.pair(query, document);
                #[cfg(not(feature = "llamacpp"))]
                let pair: Pair = match self.inner {};
                pair.fit(limit, truncate)
            })
            .collect::<Result<Vec<_>, _>>()?;
        let prompt_tokens = sequences.iter().map(Vec::len).sum();
        let scores = self
            .embed_tokens(sequences)?
            .into_iter()
            .map(|outputs| outputs.first().copied().unwrap_or(f32::NAN))
            .collect();
        Ok(Ranking {
            scores,
            prompt_tokens,
        })
    }
}

/// `full` (a text's tokens with the vocabulary's special tokens around them) within `limit`:
/// `inner` is the text's own tokens; those are cut, the special tokens in front and behind
/// kept (an embedding keeps its `[SEP]` or end token, as Ollama's truncation does).
pub(super) fn fit(
    full: Vec<u32>,
    inner: &[u32],
    limit: usize,
    truncate: bool,
) -> Result<Vec<u32>, EmbedError> {
    if full.len() <= limit {
        return Ok(full);
    }
    if !truncate {
        return Err(EmbedError::TooLong);
    }
    let front = (0..=full.len().saturating_sub(inner.len()))
        .find(|&start| full[start..].starts_with(inner))
        .unwrap_or(0);
    let back = full.len().saturating_sub(front + inner.len());
    let room = limit.saturating_sub(front + back);
    let mut cut = full[..front].to_vec();
    cut.extend_from_slice(&inner[..room.min(inner.len())]);
    cut.extend_from_slice(&full[full.len() - back..]);
    cut.truncate(limit);
    Ok(cut)
}

/// A (query, document) pair as tokens: `front` (up to the document), the document, `back`.
pub(super) struct Pair {
    pub front: Vec<u32>,
    pub document: Vec<u32>,
    pub back: Vec<u32>,
}

impl Pair {
    /// The pair's sequence within `limit`: the document is cut when `truncate`, else an
    /// over-long pair is refused.
    fn fit(self, limit: usize, truncate: bool) -> Result<Vec<u32>, EmbedError> {
        let fixed = self.front.len() + self.back.len();
        if fixed + self.document.len() > limit {
            if !truncate {
                return Err(EmbedError::TooLong);
            }
            if fixed >= limit {
                return Err(EmbedError::QueryTooLong(self.front.len(), limit));
            }
        }
        let room = limit - fixed.min(limit);
        let mut tokens = self.front;
        tokens.extend_from_slice(&self.document[..room.min(self.document.len())]);
        tokens.extend_from_slice(&self.back);
        Ok(tokens)
    }
}

/// `vector` scaled to unit length; an error for NaN or infinite values (Ollama's message).
pub fn normalize(vector: &mut [f32]) -> Result<(), EmbedError> {
    if vector.iter().any(|v| !v.is_finite()) {
        return Err(EmbedError::Failed(
            "embedding contains NaN or Inf values".to_string(),
        ));
    }
    let norm = vector.iter().map(|v| v * v).sum::<f32>().sqrt();
    if norm > 0.0 {
        vector.iter_mut().for_each(|v| *v /= norm);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gguf::TensorInfo;

    #[test]
    fn vectors_are_scaled_to_unit_length() {
        let mut v = vec![3.0, 4.0];
        normalize(&mut v).unwrap();
        assert_eq!(v, vec![0.6, 0.8]);
        let mut zero = vec![0.0, 0.0];
        normalize(&mut zero).unwrap();
        assert_eq!(zero, vec![0.0, 0.0]);
    }

    #[test]
    fn vectors_with_nan_are_refused_with_ollamas_message() {
        let error = normalize(&mut [1.0, f32::NAN]).unwrap_err();
        assert_eq!(error.to_string(), "embedding contains NaN or Inf values");
    }

    #[test]
    fn cutting_keeps_the_special_tokens_on_both_sides() {
        // [CLS]=1 text [SEP]=2
        let full = vec![1, 10, 11, 12, 13, 2];
        assert_eq!(
            fit(full.clone(), &[10, 11, 12, 13], 6, false),
            Ok(full.clone())
        );
        assert_eq!(
            fit(full.clone(), &[10, 11, 12, 13], 4, true),
            Ok(vec![1, 10, 11, 2])
        );
        assert_eq!(
            fit(full.clone(), &[10, 11, 12, 13], 4, false),
            Err(EmbedError::TooLong)
        );
        // A BOS-only vocabulary, and one that adds nothing.
        assert_eq!(
            fit(vec![1, 10, 11, 12], &[10, 11, 12], 2, true),
            Ok(vec![1, 10])
        );
        assert_eq!(
            fit(vec![10, 11, 12], &[10, 11, 12], 2, true),
            Ok(vec![10, 11])
        );
        // An end token only.
        assert_eq!(
            fit(vec![10, 11, 12, 9], &[10, 11, 12], 3, true),
            Ok(vec![10, 11, 9])
        );
    }

    #[test]
    fn a_pair_cuts_its_document_and_refuses_a_query_without_room() {
        let pair = || Pair {
            front: vec![1, 5, 5, 2],
            document: vec![7, 7, 7, 7],
            back: vec![3],
        };
        assert_eq!(pair().fit(9, false), Ok(vec![1, 5, 5, 2, 7, 7, 7, 7, 3]));
        assert_eq!(pair().fit(7, true), Ok(vec![1, 5, 5, 2, 7, 7, 3]));
        assert_eq!(pair().fit(7, false), Err(EmbedError::TooLong));
        assert_eq!(pair().fit(5, true), Err(EmbedError::QueryTooLong(4, 5)));
    }

    fn gguf(architecture: &str, pooling: Option<u64>, tensors: &[&str]) -> Gguf {
        let mut metadata = vec![(
            "general.architecture".to_string(),
            Value::String(architecture.into()),
        )];
        if let Some(p) = pooling {
            metadata.push((format!("{architecture}.pooling_type"), Value::U32(p as u32)));
        }
        Gguf {
            metadata,
            tensors: tensors
                .iter()
                .map(|name| TensorInfo {
                    name: name.to_string(),
                    kind: 0,
                    shape: vec![1],
                })
                .collect(),
            ..Gguf::default()
        }
    }

    #[test]
    fn pooling_comes_from_the_file_or_its_head() {
        assert_eq!(pooling_of(&gguf("bert", Some(1), &[])), Some(Pooling::Mean));
        assert_eq!(pooling_of(&gguf("bert", Some(2), &[])), Some(Pooling::Cls));
        assert_eq!(
            pooling_of(&gguf("qwen3", Some(3), &[])),
            Some(Pooling::Last)
        );
        assert_eq!(
            pooling_of(&gguf("qwen3", Some(4), &[])),
            Some(Pooling::Rank)
        );
        assert_eq!(pooling_of(&gguf("bert", None, &[])), Some(Pooling::Mean));
        assert_eq!(
            pooling_of(&gguf("bert", None, &["cls.output.weight"])),
            Some(Pooling::Rank)
        );
        assert_eq!(
            pooling_of(&gguf("jina-bert-v2", Some(0), &["cls.weight"])),
            Some(Pooling::Rank)
        );
        assert_eq!(pooling_of(&gguf("llama", None, &[])), None);
    }
}

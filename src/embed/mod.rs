//! The embedding engine: GGUF `bert` and `nomic-bert` models on candle-transformers.
//!
//! mistralrs 0.8.1 runs no GGUF embedding model, so these have their own path. The GGUF's
//! tensors (llama.cpp's names) are dequantized to F32 and handed to candle-transformers' BERT
//! or NomicBERT under Hugging Face's names (`convert::names`); the vocabulary becomes a
//! WordPiece tokenizer (`tokenizer.rs`). Inputs are tokenized, sorted by length and run in
//! padded batches; each is pooled as `<arch>.pooling_type` says (mean, CLS or last token).
//! Vectors come back raw: `/api/embed` normalises them, the legacy `/api/embeddings` does not.

mod tokenizer;

use crate::convert::names;
use candle_core::quantized::gguf_file;
use candle_core::{DType, Device, IndexOp, Tensor};
use candle_nn::VarBuilder;
use candle_transformers::models::{bert, nomic_bert};
use std::collections::HashMap;
use std::path::Path;
pub use tokenizer::WordPieceTokenizer;

/// GGUF architectures this engine runs.
pub const ARCHITECTURES: &[&str] = &["bert", "nomic-bert"];

/// Most sequences in one forward pass, and most padded tokens in one (bounds the memory of
/// the attention scores of a batch).
const BATCH_SEQUENCES: usize = 64;
const BATCH_TOKENS: usize = 8192;

#[derive(Debug, thiserror::Error)]
pub enum EmbedError {
    /// An input is longer than the context and was not to be cut.
    #[error("the input length exceeds the context length")]
    TooLong,
    #[error("{0}")]
    Failed(String),
}

impl From<candle_core::Error> for EmbedError {
    fn from(e: candle_core::Error) -> Self {
        EmbedError::Failed(e.to_string())
    }
}

/// llama.cpp's `pooling_type` values.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Pooling {
    Mean,
    Cls,
    Last,
}

enum Network {
    Bert(bert::BertModel),
    NomicBert(nomic_bert::NomicBertModel),
}

/// A loaded embedding model.
pub struct Embedder {
    network: Network,
    tokenizer: WordPieceTokenizer,
    pooling: Pooling,
    /// Most tokens per input, `[CLS]` and `[SEP]` included.
    pub context_length: usize,
    /// Length of each vector.
    pub dimensions: usize,
    vocabulary_size: usize,
}

/// The vectors of a batch of inputs, in input order, and how many tokens they took.
pub struct Embeddings {
    pub vectors: Vec<Vec<f32>>,
    pub prompt_tokens: usize,
}

/// Metadata readers that accept any integer or float width (writers differ).
fn as_usize(value: &gguf_file::Value) -> Option<usize> {
    use gguf_file::Value as V;
    match value {
        V::U8(v) => Some(*v as usize),
        V::U16(v) => Some(*v as usize),
        V::U32(v) => Some(*v as usize),
        V::U64(v) => usize::try_from(*v).ok(),
        V::I8(v) => usize::try_from(*v).ok(),
        V::I16(v) => usize::try_from(*v).ok(),
        V::I32(v) => usize::try_from(*v).ok(),
        V::I64(v) => usize::try_from(*v).ok(),
        _ => None,
    }
}

fn as_f64(value: &gguf_file::Value) -> Option<f64> {
    match value {
        gguf_file::Value::F32(v) => Some(*v as f64),
        gguf_file::Value::F64(v) => Some(*v),
        other => as_usize(other).map(|v| v as f64),
    }
}

struct Metadata<'a> {
    content: &'a gguf_file::Content,
    architecture: String,
}

impl Metadata<'_> {
    fn get(&self, key: &str) -> Option<&gguf_file::Value> {
        self.content.metadata.get(key)
    }

    fn usize_of(&self, key: &str) -> Option<usize> {
        self.get(&format!("{}.{key}", self.architecture))
            .and_then(as_usize)
    }

    fn required(&self, key: &str) -> Result<usize, EmbedError> {
        self.usize_of(key).filter(|v| *v > 0).ok_or_else(|| {
            EmbedError::Failed(format!("the model has no {}.{key}", self.architecture))
        })
    }

    fn f64_of(&self, key: &str) -> Option<f64> {
        self.get(&format!("{}.{key}", self.architecture))
            .and_then(as_f64)
    }

    fn token_id(&self, key: &str) -> Option<u32> {
        self.get(key).and_then(as_usize).map(|v| v as u32)
    }
}

pub fn supports_architecture(architecture: &str) -> bool {
    ARCHITECTURES.contains(&architecture)
}

impl Embedder {
    /// Loads the GGUF at `path`. Blocking: call it off the async workers.
    pub fn load(path: &Path) -> Result<Embedder, EmbedError> {
        let failed = |e: std::io::Error| EmbedError::Failed(format!("{}: {e}", path.display()));
        let mut file = std::io::BufReader::new(std::fs::File::open(path).map_err(failed)?);
        let content = gguf_file::Content::read(&mut file)?;
        let architecture = crate::quantize::architecture_of(&content);
        let table = names::table(&architecture)
            .filter(|_| supports_architecture(&architecture))
            .ok_or_else(|| {
                EmbedError::Failed(format!(
                    "architecture {architecture:?} is not an embedding model rollama runs ({})",
                    ARCHITECTURES.join(", ")
                ))
            })?;
        let meta = Metadata {
            content: &content,
            architecture: architecture.clone(),
        };

        let tokens: Vec<String> = meta
            .get("tokenizer.ggml.tokens")
            .and_then(|v| v.to_vec().ok())
            .map(|list| {
                list.iter()
                    .map(|t| t.to_string().cloned().unwrap_or_default())
                    .collect()
            })
            .unwrap_or_default();
        let token_types: Vec<i32> = meta
            .get("tokenizer.ggml.token_type")
            .and_then(|v| v.to_vec().ok())
            .map(|list| list.iter().map(|t| t.to_i32().unwrap_or(1)).collect())
            .unwrap_or_default();
        let tokenizer = WordPieceTokenizer::new(tokenizer::Vocabulary {
            tokens: &tokens,
            token_types: &token_types,
            cls: meta
                .token_id("tokenizer.ggml.cls_token_id")
                .or_else(|| meta.token_id("tokenizer.ggml.bos_token_id")),
            sep: meta
                .token_id("tokenizer.ggml.seperator_token_id")
                .or_else(|| meta.token_id("tokenizer.ggml.eos_token_id")),
            unknown: meta.token_id("tokenizer.ggml.unknown_token_id"),
        })
        .map_err(EmbedError::Failed)?;

        // The weights under Hugging Face's names, as F32.
        let mut tensors: HashMap<String, Tensor> = HashMap::new();
        for (name, info) in &content.tensor_infos {
            let Some(hf_name) = names::to_hugging_face(table, name) else {
                continue;
            };
            let mut tensor = info
                .read(&mut file, content.tensor_data_offset, &Device::Cpu)?
                .dequantize(&Device::Cpu)?;
            if tensor.rank() == 2 && !hf_name.starts_with("embeddings.") {
                // A linear layer multiplies by the transpose of its weight. Kept transposed in
                // memory (a transposed view of an `(in, out)` matrix), that product reads the
                // matrix row-major and the matmul need not repack the whole weight on every
                // call, which dominated short inputs (measured: 35% of the time).
                tensor = tensor.t()?.contiguous()?.t()?;
            }
            tensors.insert(hf_name, tensor);
        }
        let rows = |name: &str| tensors.get(name).and_then(|t| t.dims().first().copied());
        let vocabulary_size = rows("embeddings.word_embeddings.weight")
            .ok_or_else(|| EmbedError::Failed("the model has no token embeddings".into()))?;
        if vocabulary_size < tokens.len() {
            return Err(EmbedError::Failed(format!(
                "the vocabulary has {} tokens but the embeddings only {vocabulary_size}",
                tokens.len()
            )));
        }
        let type_vocabulary = rows("embeddings.token_type_embeddings.weight").unwrap_or(2);
        let hidden = meta.required("embedding_length")?;
        let heads = meta.required("attention.head_count")?;
        let layers = meta.required("block_count")?;
        let feed_forward = meta.required("feed_forward_length")?;
        let epsilon = meta.f64_of("attention.layer_norm_epsilon").unwrap_or(1e-12);
        if hidden % heads != 0 {
            return Err(EmbedError::Failed(format!(
                "embedding length {hidden} is not a multiple of the head count {heads}"
            )));
        }
        let vb = VarBuilder::from_tensors(tensors, DType::F32, &Device::Cpu);
        let positions = meta.required("context_length")?;
        let network = match architecture.as_str() {
            "bert" => {
                let config = bert::Config {
                    vocab_size: vocabulary_size,
                    hidden_size: hidden,
                    num_hidden_layers: layers,
                    num_attention_heads: heads,
                    intermediate_size: feed_forward,
                    hidden_act: bert::HiddenAct::Gelu,
                    max_position_embeddings: positions,
                    type_vocab_size: type_vocabulary,
                    layer_norm_eps: epsilon,
                    pad_token_id: meta
                        .token_id("tokenizer.ggml.padding_token_id")
                        .unwrap_or(0) as usize,
                    model_type: None,
                    ..bert::Config::default()
                };
                Network::Bert(bert::BertModel::load(vb, &config)?)
            }
            _ => {
                let config = nomic_bert::Config {
                    vocab_size: vocabulary_size,
                    n_embd: hidden,
                    n_head: heads,
                    n_layer: layers,
                    n_inner: feed_forward,
                    n_positions: positions,
                    type_vocab_size: type_vocabulary,
                    layer_norm_epsilon: epsilon,
                    rotary_emb_base: meta.f64_of("rope.freq_base").unwrap_or(1000.0),
                    model_type: None,
                    ..nomic_bert::Config::default()
                };
                Network::NomicBert(nomic_bert::NomicBertModel::load(vb, &config)?)
            }
        };
        let pooling = match meta.usize_of("pooling_type") {
            Some(2) => Pooling::Cls,
            Some(3) => Pooling::Last,
            // 1 is mean; none (0) and rank (4) have no single vector, so they get the mean too.
            _ => Pooling::Mean,
        };
        Ok(Embedder {
            network,
            tokenizer,
            pooling,
            context_length: positions,
            dimensions: hidden,
            vocabulary_size,
        })
    }

    /// Token ids of each input, each at most `limit` tokens (and never more than the model's
    /// context). Over-long inputs are cut when `truncate`, else refused.
    pub fn tokenize(
        &self,
        inputs: &[String],
        limit: usize,
        truncate: bool,
    ) -> Result<Vec<Vec<u32>>, EmbedError> {
        let limit = limit.clamp(3, self.context_length);
        inputs
            .iter()
            .map(|text| {
                self.tokenizer
                    .encode(text, limit, truncate)
                    .map_err(EmbedError::Failed)?
                    .ok_or(EmbedError::TooLong)
            })
            .collect()
    }

    /// The pooled (not normalised) vector of each token sequence, in order. Blocking.
    pub fn embed_tokens(&self, sequences: &[Vec<u32>]) -> Result<Vec<Vec<f32>>, EmbedError> {
        if let Some(bad) = sequences
            .iter()
            .flatten()
            .find(|id| **id as usize >= self.vocabulary_size)
        {
            return Err(EmbedError::Failed(format!(
                "token id {bad} is outside the vocabulary"
            )));
        }
        // Similar lengths together, so that little of each batch is padding.
        let mut order: Vec<usize> = (0..sequences.len()).collect();
        order.sort_by_key(|&i| sequences[i].len());
        let mut vectors: Vec<Vec<f32>> = vec![Vec::new(); sequences.len()];
        let mut start = 0;
        while start < order.len() {
            let mut end = start;
            while end < order.len() && end - start < BATCH_SEQUENCES {
                let longest = sequences[order[end]].len();
                if end > start && (end + 1 - start) * longest > BATCH_TOKENS {
                    break;
                }
                end += 1;
            }
            let batch: Vec<&Vec<u32>> = order[start..end].iter().map(|&i| &sequences[i]).collect();
            for (slot, vector) in order[start..end].iter().zip(self.run_batch(&batch)?) {
                vectors[*slot] = vector;
            }
            start = end;
        }
        Ok(vectors)
    }

    /// One padded forward pass and pooling.
    fn run_batch(&self, batch: &[&Vec<u32>]) -> Result<Vec<Vec<f32>>, EmbedError> {
        let width = batch.iter().map(|s| s.len()).max().unwrap_or(0).max(1);
        let mut ids = Vec::with_capacity(batch.len() * width);
        let mut mask = Vec::with_capacity(batch.len() * width);
        for sequence in batch {
            ids.extend_from_slice(sequence);
            ids.extend(std::iter::repeat_n(0u32, width - sequence.len()));
            mask.extend(std::iter::repeat_n(1u32, sequence.len()));
            mask.extend(std::iter::repeat_n(0u32, width - sequence.len()));
        }
        let shape = (batch.len(), width);
        let ids = Tensor::from_vec(ids, shape, &Device::Cpu)?;
        let mask = Tensor::from_vec(mask, shape, &Device::Cpu)?;
        let types = ids.zeros_like()?;
        let hidden = match &self.network {
            Network::Bert(model) => model.forward(&ids, &types, Some(&mask))?,
            Network::NomicBert(model) => model.forward(&ids, Some(&types), Some(&mask))?,
        };
        let pooled = match self.pooling {
            Pooling::Mean => nomic_bert::mean_pooling(&hidden, &mask)?,
            Pooling::Cls => hidden.i((.., 0))?,
            Pooling::Last => {
                let rows = batch
                    .iter()
                    .enumerate()
                    .map(|(row, s)| hidden.i((row, s.len().saturating_sub(1))))
                    .collect::<Result<Vec<_>, _>>()?;
                Tensor::stack(&rows, 0)?
            }
        };
        Ok(pooled.to_dtype(DType::F32)?.to_vec2::<f32>()?)
    }

    /// Inputs to vectors: tokenized within `limit`, embedded in batches.
    pub fn embed(
        &self,
        inputs: &[String],
        limit: usize,
        truncate: bool,
    ) -> Result<Embeddings, EmbedError> {
        let sequences = self.tokenize(inputs, limit, truncate)?;
        let prompt_tokens = sequences.iter().map(Vec::len).sum();
        let vectors = self.embed_tokens(&sequences)?;
        Ok(Embeddings {
            vectors,
            prompt_tokens,
        })
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
}

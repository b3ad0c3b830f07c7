//! Import: a Hugging Face model directory (`config.json`, `*.safetensors`, `tokenizer.json`)
//! converted to a GGUF that llama.cpp would load too (its metadata keys and tensor names).
//!
//! Supported: BERT and NomicBERT embedding models and llama-architecture chat models. Matrices
//! are written as F16 and vectors as F32 (what `ollama create` and llama.cpp's converter write
//! by default); `create --quantize` can then re-quantize the result (`crate::quantize`).

pub mod names;
mod vocabulary;

use candle_core::quantized::{gguf_file, GgmlDType, QTensor};
use candle_core::{DType, Device, Tensor};
use serde_json::Value;
use std::collections::{BTreeMap, HashMap};
use std::io::{Seek, Write};
use std::path::{Path, PathBuf};
use vocabulary::Vocabulary;

#[derive(Debug, thiserror::Error)]
pub enum ConvertError {
    /// The files do not describe a model this converter handles (Ollama answers 400).
    #[error("{0}")]
    Unsupported(String),
    #[error("{0}")]
    Failed(String),
}

impl From<candle_core::Error> for ConvertError {
    fn from(e: candle_core::Error) -> Self {
        ConvertError::Failed(e.to_string())
    }
}

impl From<std::io::Error> for ConvertError {
    fn from(e: std::io::Error) -> Self {
        ConvertError::Failed(e.to_string())
    }
}

/// llama.cpp's `LLAMA_FTYPE_MOSTLY_F16`.
const FILE_TYPE_F16: u32 = 1;

/// llama.cpp's `LLAMA_POOLING_TYPE_RANK`.
const POOLING_RANK: u32 = 4;

/// The model directory's files, by their relative names.
pub struct ModelFiles {
    files: BTreeMap<String, PathBuf>,
}

impl ModelFiles {
    pub fn new(files: BTreeMap<String, PathBuf>) -> ModelFiles {
        ModelFiles { files }
    }

    fn json(&self, name: &str) -> Result<Option<Value>, ConvertError> {
        let Some(path) = self.files.get(name) else {
            return Ok(None);
        };
        let text = std::fs::read(path)?;
        serde_json::from_slice(&text)
            .map(Some)
            .map_err(|e| ConvertError::Unsupported(format!("{name}: {e}")))
    }

    fn safetensors(&self) -> impl Iterator<Item = (&String, &PathBuf)> {
        self.files
            .iter()
            .filter(|(name, _)| name.ends_with(".safetensors"))
    }
}

/// The GGUF architecture of a Hugging Face `config.json`.
fn architecture_of(config: &Value) -> Option<&'static str> {
    let declared = config["architectures"][0].as_str().unwrap_or("");
    let model_type = config["model_type"].as_str().unwrap_or("");
    match (declared, model_type) {
        (
            "BertModel"
            | "BertForMaskedLM"
            | "BertForPreTraining"
            | "BertForSequenceClassification",
            _,
        )
        | ("", "bert") => Some("bert"),
        ("NomicBertModel", _) | ("", "nomic_bert") => Some("nomic-bert"),
        ("LlamaForCausalLM", _) | ("", "llama") => Some("llama"),
        _ => None,
    }
}

/// Whether `config.json` describes a cross-encoder: a BERT with a classification head, whose
/// output is a relevance score (a reranker).
fn is_classifier(config: &Value) -> bool {
    config["architectures"][0].as_str() == Some("BertForSequenceClassification")
}

/// A cross-encoder's head under llama.cpp's names: the pooler (dense and tanh over `[CLS]`)
/// is its `cls`, the classifier its `cls.output`, which its BERT graph runs for rank pooling.
/// (llama.cpp's own converter drops the pooler, so its scores skip a layer Hugging Face runs.)
fn classifier_name(name: &str) -> Option<&'static str> {
    Some(match name {
        "pooler.dense.weight" => "cls.weight",
        "pooler.dense.bias" => "cls.bias",
        "classifier.weight" => "cls.output.weight",
        "classifier.bias" => "cls.output.bias",
        _ => return None,
    })
}

/// The labels of a classifier's outputs, in output order (`id2label`).
fn classifier_labels(config: &Value) -> Vec<String> {
    let mut labels: Vec<(u64, String)> = config["id2label"]
        .as_object()
        .into_iter()
        .flatten()
        .filter_map(|(id, label)| Some((id.parse().ok()?, label.as_str()?.to_string())))
        .collect();
    labels.sort();
    let labels: Vec<String> = labels.into_iter().map(|(_, label)| label).collect();
    if labels.is_empty() {
        vec!["LABEL_0".to_string()]
    } else {
        labels
    }
}

/// Tensors a converter leaves out on purpose (llama.cpp drops the same).
fn is_dropped(name: &str) -> bool {
    name == "embeddings.position_ids"
        || name.starts_with("pooler.")
        || name.starts_with("cls.")
        || name.ends_with("rotary_emb.inv_freq")
}

/// Writes the converted GGUF into `out`; `progress(done, total)` after each tensor.
pub fn convert<W: Write + Seek>(
    files: &ModelFiles,
    out: &mut W,
    mut progress: impl FnMut(usize, usize),
) -> Result<(), ConvertError> {
    let config = files
        .json("config.json")?
        .ok_or_else(|| ConvertError::Unsupported("config.json is missing".into()))?;
    let architecture = architecture_of(&config).ok_or_else(|| {
        ConvertError::Unsupported(format!(
            "unsupported architecture {:?}; rollama imports BERT, NomicBERT and Llama models",
            config["architectures"][0]
                .as_str()
                .or(config["model_type"].as_str())
                .unwrap_or("unknown")
        ))
    })?;
    let table = names::table(architecture).unwrap_or(names::LLAMA);
    if files.safetensors().next().is_none() {
        return Err(ConvertError::Unsupported("no .safetensors files".into()));
    }
    let classifier = is_classifier(&config);
    let hp = Hyperparameters { config: &config };
    let heads = hp.usize("num_attention_heads", "n_head")?;
    let kv_heads = config["num_key_value_heads"]
        .as_u64()
        .map_or(heads, |v| v as usize);

    // Tensors under llama.cpp's names: matrices F16, vectors F32.
    let mut tensors: Vec<(String, QTensor)> = Vec::new();
    let sources: Vec<(&String, &PathBuf)> = files.safetensors().collect();
    let mut vocabulary_rows = None;
    for (done, (file, path)) in sources.iter().enumerate() {
        let loaded: HashMap<String, Tensor> = candle_core::safetensors::load(path, &Device::Cpu)
            .map_err(|e| ConvertError::Unsupported(format!("{file}: {e}")))?;
        let mut loaded: Vec<(String, Tensor)> = loaded.into_iter().collect();
        loaded.sort_by(|a, b| a.0.cmp(&b.0));
        for (name, tensor) in loaded {
            let name = canonical_name(architecture, &name);
            let head = classifier.then(|| classifier_name(&name)).flatten();
            if head.is_none() && is_dropped(&name) {
                continue;
            }
            let gguf_name = match head {
                Some(head) => head.to_string(),
                None => names::to_gguf(table, &name).ok_or_else(|| {
                    ConvertError::Unsupported(format!("unexpected tensor {name} in {file}"))
                })?,
            };
            let mut tensor = tensor.to_dtype(DType::F32)?;
            if architecture == "llama" {
                // llama.cpp's rotary layout: the halves of each head interleaved (`permute`).
                if gguf_name.ends_with("attn_q.weight") {
                    tensor = permute(&tensor, heads)?;
                } else if gguf_name.ends_with("attn_k.weight") {
                    tensor = permute(&tensor, kv_heads)?;
                }
            }
            if gguf_name == "token_embd.weight" {
                vocabulary_rows = tensor.dims().first().copied();
            }
            let kind = if tensor.rank() <= 1 || gguf_name.starts_with("token_types") {
                GgmlDType::F32
            } else {
                GgmlDType::F16
            };
            tensors.push((gguf_name, QTensor::quantize(&tensor, kind)?));
        }
        progress(done + 1, sources.len());
    }
    let vocabulary_rows = vocabulary_rows
        .ok_or_else(|| ConvertError::Unsupported("the model has no token embeddings".into()))?;

    let tokenizer = files
        .json("tokenizer.json")?
        .ok_or_else(|| ConvertError::Unsupported("tokenizer.json is missing".into()))?;
    let tokenizer_config = files.json("tokenizer_config.json")?.unwrap_or(Value::Null);
    let vocabulary = Vocabulary::read(&tokenizer, &tokenizer_config, vocabulary_rows)
        .map_err(ConvertError::Unsupported)?;

    let mut metadata: BTreeMap<String, gguf_file::Value> = BTreeMap::new();
    let mut put = |key: &str, value: gguf_file::Value| {
        metadata.insert(key.to_string(), value);
    };
    use gguf_file::Value as V;
    put("general.architecture", V::String(architecture.into()));
    put("general.name", V::String(model_name(&config)));
    put("general.file_type", V::U32(FILE_TYPE_F16));
    let arch = |key: &str| format!("{architecture}.{key}");
    match architecture {
        "bert" | "nomic-bert" => {
            let nomic = architecture == "nomic-bert";
            let pick = |bert: &'static str, nomic_key: &'static str| {
                if nomic {
                    nomic_key
                } else {
                    bert
                }
            };
            let context = if nomic {
                config["n_positions"].as_u64().unwrap_or(2048).min(2048) as usize
            } else {
                hp.usize("max_position_embeddings", "")?
            };
            put(&arch("context_length"), V::U32(context as u32));
            put(
                &arch("embedding_length"),
                V::U32(hp.usize(pick("hidden_size", "n_embd"), "")? as u32),
            );
            put(
                &arch("feed_forward_length"),
                V::U32(hp.usize(pick("intermediate_size", "n_inner"), "")? as u32),
            );
            put(
                &arch("block_count"),
                V::U32(hp.usize(pick("num_hidden_layers", "n_layer"), "")? as u32),
            );
            put(&arch("attention.head_count"), V::U32(heads as u32));
            let epsilon = config[pick("layer_norm_eps", "layer_norm_epsilon")]
                .as_f64()
                .unwrap_or(1e-12);
            put(
                &arch("attention.layer_norm_epsilon"),
                V::F32(epsilon as f32),
            );
            put(&arch("attention.causal"), V::Bool(false));
            if nomic {
                let base = config["rotary_emb_base"].as_f64().unwrap_or(1000.0);
                put(&arch("rope.freq_base"), V::F32(base as f32));
            }
            if classifier {
                put(&arch("pooling_type"), V::U32(POOLING_RANK));
                let labels = classifier_labels(&config);
                put(
                    &arch("classifier.output_labels"),
                    V::Array(labels.into_iter().map(V::String).collect()),
                );
            } else {
                put(&arch("pooling_type"), V::U32(pooling_type(files)?));
            }
            let types = config["type_vocab_size"].as_u64().unwrap_or(2);
            put("tokenizer.ggml.token_type_count", V::U32(types as u32));
        }
        _ => {
            let hidden = hp.usize("hidden_size", "")?;
            put(&arch("vocab_size"), V::U32(vocabulary_rows as u32));
            put(
                &arch("context_length"),
                V::U32(hp.usize("max_position_embeddings", "")? as u32),
            );
            put(&arch("embedding_length"), V::U32(hidden as u32));
            put(
                &arch("feed_forward_length"),
                V::U32(hp.usize("intermediate_size", "")? as u32),
            );
            put(
                &arch("block_count"),
                V::U32(hp.usize("num_hidden_layers", "")? as u32),
            );
            put(&arch("attention.head_count"), V::U32(heads as u32));
            put(&arch("attention.head_count_kv"), V::U32(kv_heads as u32));
            let head_dim = config["head_dim"]
                .as_u64()
                .map_or(hidden / heads, |v| v as usize);
            put(&arch("rope.dimension_count"), V::U32(head_dim as u32));
            let epsilon = config["rms_norm_eps"].as_f64().unwrap_or(1e-5);
            put(
                &arch("attention.layer_norm_rms_epsilon"),
                V::F32(epsilon as f32),
            );
            let theta = config["rope_theta"].as_f64().unwrap_or(10000.0);
            put(&arch("rope.freq_base"), V::F32(theta as f32));
        }
    }
    vocabulary.write(architecture, &mut put);
    if classifier {
        // A pair as Hugging Face's BERT lays it out, `[CLS] query [SEP] document [SEP]`:
        // llama.cpp puts BOS, the query, EOS (here `[SEP]`) and then SEP where the vocabulary
        // adds one, which would double the separator.
        put("tokenizer.ggml.add_sep_token", V::Bool(false));
    }

    tensors.sort_by(|a, b| a.0.cmp(&b.0));
    crate::quantize::write_gguf(out, &metadata, &tensors)
        .map_err(|e| ConvertError::Failed(e.to_string()))
}

/// Reads hyper-parameters by their Hugging Face name (or a second spelling).
struct Hyperparameters<'a> {
    config: &'a Value,
}

impl Hyperparameters<'_> {
    fn usize(&self, key: &str, alternative: &str) -> Result<usize, ConvertError> {
        self.config[key]
            .as_u64()
            .or_else(|| self.config[alternative].as_u64())
            .filter(|v| *v > 0 && *v < u32::MAX as u64)
            .map(|v| v as usize)
            .ok_or_else(|| ConvertError::Unsupported(format!("config.json has no valid {key}")))
    }
}

fn model_name(config: &Value) -> String {
    config["_name_or_path"]
        .as_str()
        .and_then(|path| path.rsplit('/').next())
        .filter(|name| !name.is_empty())
        .unwrap_or("model")
        .to_string()
}

/// The name as the tables spell it: BERT checkpoints may carry a `bert.` prefix and the old
/// `gamma`/`beta` names of the layer-norm parameters.
fn canonical_name(architecture: &str, name: &str) -> String {
    let mut name = name.to_string();
    if architecture == "bert" {
        if let Some(rest) = name.strip_prefix("bert.") {
            name = rest.to_string();
        }
        if let Some(stem) = name.strip_suffix(".gamma") {
            name = format!("{stem}.weight");
        } else if let Some(stem) = name.strip_suffix(".beta") {
            name = format!("{stem}.bias");
        }
    }
    name
}

/// llama.cpp's `permute` of a query/key projection for its rotary embedding layout.
fn permute(weight: &Tensor, heads: usize) -> Result<Tensor, ConvertError> {
    let (rows, columns) = weight.dims2()?;
    if heads == 0 || rows % (heads * 2) != 0 {
        return Err(ConvertError::Unsupported(format!(
            "a projection of {rows} rows does not split into {heads} heads"
        )));
    }
    Ok(weight
        .reshape((heads, 2, rows / heads / 2, columns))?
        .transpose(1, 2)?
        .contiguous()?
        .reshape((rows, columns))?)
}

/// llama.cpp's `pooling_type` from sentence-transformers' `modules.json` and pooling config
/// (1 mean, 2 CLS, 3 last token); mean when the directory does not say.
fn pooling_type(files: &ModelFiles) -> Result<u32, ConvertError> {
    let modules = files.json("modules.json")?.unwrap_or(Value::Null);
    let pooling_dir = modules
        .as_array()
        .into_iter()
        .flatten()
        .find(|m| m["type"] == "sentence_transformers.models.Pooling")
        .and_then(|m| m["path"].as_str())
        .unwrap_or("1_Pooling")
        .to_string();
    let pooling = files
        .json(&format!("{pooling_dir}/config.json"))?
        .unwrap_or(Value::Null);
    let mode = |key: &str| pooling[key].as_bool() == Some(true);
    Ok(if mode("pooling_mode_cls_token") {
        2
    } else if mode("pooling_mode_lasttoken") {
        3
    } else {
        1
    })
}

/// Files a model directory contributes to an import, relative to it (what `create` uploads).
pub fn directory_files(dir: &Path) -> std::io::Result<Vec<String>> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir(dir)?.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let is_file = entry.path().is_file();
        if is_file && (name.ends_with(".safetensors") || name.ends_with(".json")) {
            found.push(name);
        }
    }
    // sentence-transformers keeps its pooling settings in a module folder.
    for pooling in ["1_Pooling/config.json"] {
        if dir.join(pooling).is_file() {
            found.push(pooling.to_string());
        }
    }
    found.sort();
    Ok(found)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn permute_interleaves_the_halves_of_each_head() {
        // One head of 4 rows: [r0, r1 | r2, r3] becomes [r0, r2, r1, r3].
        let weight = Tensor::from_vec(vec![0f32, 1., 2., 3.], (4, 1), &Device::Cpu).unwrap();
        let permuted = permute(&weight, 1).unwrap();
        assert_eq!(
            permuted.flatten_all().unwrap().to_vec1::<f32>().unwrap(),
            vec![0., 2., 1., 3.]
        );
        assert!(permute(&weight, 3).is_err());
    }

    #[test]
    fn architectures_come_from_config_json() {
        assert_eq!(
            architecture_of(&serde_json::json!({"architectures": ["BertModel"]})),
            Some("bert")
        );
        assert_eq!(
            architecture_of(&serde_json::json!({"model_type": "llama"})),
            Some("llama")
        );
        assert_eq!(
            architecture_of(&serde_json::json!({"architectures": ["GPT2LMHeadModel"]})),
            None
        );
    }

    #[test]
    fn a_cross_encoder_keeps_its_head_under_llama_cpps_names() {
        let config = serde_json::json!({
            "architectures": ["BertForSequenceClassification"],
            "id2label": {"1": "yes", "0": "no"},
        });
        assert!(is_classifier(&config));
        assert_eq!(architecture_of(&config), Some("bert"));
        assert_eq!(classifier_labels(&config), ["no", "yes"]);
        assert_eq!(classifier_name("pooler.dense.weight"), Some("cls.weight"));
        assert_eq!(classifier_name("classifier.bias"), Some("cls.output.bias"));
        assert_eq!(classifier_name("embeddings.word_embeddings.weight"), None);
        assert!(!is_classifier(
            &serde_json::json!({"architectures": ["BertModel"]})
        ));
        assert_eq!(classifier_labels(&serde_json::json!({})), ["LABEL_0"]);
    }

    #[test]
    fn bert_checkpoint_names_are_made_canonical() {
        assert_eq!(
            canonical_name("bert", "bert.embeddings.LayerNorm.gamma"),
            "embeddings.LayerNorm.weight"
        );
        assert_eq!(canonical_name("llama", "bert.x.gamma"), "bert.x.gamma");
    }
}

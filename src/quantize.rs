//! Re-quantizing a GGUF model with candle's quantized tensors (`create --quantize`, and the
//! weight-format conversions of `engine`): every tensor is read, dequantized to F32 and
//! quantized to the type llama.cpp's rules give it, then a new GGUF is written with the same
//! metadata (and `general.file_type` updated), which llama.cpp and mistralrs both load.

use candle_core::quantized::{gguf_file, GgmlDType, QTensor};
use candle_core::Device;
use std::collections::BTreeMap;
use std::io::{Seek, Write};
use std::path::Path;

/// The types a model can be quantized to, named as Ollama names them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    F32,
    F16,
    BF16,
    Q8_0,
    Q4KS,
    Q4KM,
    /// Not offered by `create` (Ollama dropped it); used to make test and benchmark files.
    Q4_0,
}

impl Target {
    /// Ollama's name (upper case; `Q4_K` is `Q4_K_M`), or `None` for another type.
    pub fn parse(name: &str) -> Option<Target> {
        Some(match name.to_uppercase().as_str() {
            "F32" => Target::F32,
            "F16" => Target::F16,
            "BF16" => Target::BF16,
            "Q8_0" => Target::Q8_0,
            "Q4_K_S" => Target::Q4KS,
            "Q4_K_M" | "Q4_K" => Target::Q4KM,
            "Q4_0" => Target::Q4_0,
            _ => return None,
        })
    }

    pub fn name(self) -> &'static str {
        match self {
            Target::F32 => "F32",
            Target::F16 => "F16",
            Target::BF16 => "BF16",
            Target::Q8_0 => "Q8_0",
            Target::Q4KS => "Q4_K_S",
            Target::Q4KM => "Q4_K_M",
            Target::Q4_0 => "Q4_0",
        }
    }

    /// llama.cpp's `general.file_type` (`llama_ftype`).
    fn file_type(self) -> u32 {
        match self {
            Target::F32 => 0,
            Target::F16 => 1,
            Target::Q4_0 => 2,
            Target::Q8_0 => 7,
            Target::Q4KS => 14,
            Target::Q4KM => 15,
            Target::BF16 => 32,
        }
    }

    /// The type of most 2-D weights.
    fn base(self) -> GgmlDType {
        match self {
            Target::F32 => GgmlDType::F32,
            Target::F16 => GgmlDType::F16,
            Target::BF16 => GgmlDType::BF16,
            Target::Q8_0 => GgmlDType::Q8_0,
            Target::Q4KS | Target::Q4KM => GgmlDType::Q4K,
            Target::Q4_0 => GgmlDType::Q4_0,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum QuantizeError {
    #[error("{0}")]
    Candle(#[from] candle_core::Error),
    #[error(transparent)]
    Io(#[from] std::io::Error),
}

/// llama.cpp's `use_more_bits`: the first and last eighth of the layers, and every third one
/// between, get more bits in the `_M` mixes.
fn use_more_bits(layer: usize, layers: usize) -> bool {
    let eighth = layers / 8;
    layer < eighth || layer >= 7 * layers / 8 || (layer - eighth) % 3 == 2
}

/// The layer index of `blk.N.…`.
fn layer_of(name: &str) -> Option<usize> {
    name.strip_prefix("blk.")?.split('.').next()?.parse().ok()
}

/// The type llama.cpp's `llama_tensor_get_type` gives `name` (simplified to the rules that
/// matter for the targets offered): 1-D tensors stay F32; the output matrix (the token
/// embedding when it is tied) and, in the `_M` mix, `attn_v`/`ffn_down` of the layers
/// `use_more_bits` picks get Q6_K; `Q4_K_S` gives the first eighth of `ffn_down` Q5_K. A row
/// length the 256-element K-quant block does not divide falls back as in llama.cpp (Q4_K →
/// Q5_0, Q5_K → Q5_1, Q6_K → Q8_0), then to F16.
fn tensor_type(
    name: &str,
    dims: &[usize],
    target: Target,
    layers: usize,
    has_output: bool,
) -> GgmlDType {
    if dims.len() < 2 {
        return GgmlDType::F32;
    }
    let mut kind = target.base();
    let k_quant = matches!(target, Target::Q4KS | Target::Q4KM);
    if k_quant {
        let is_output = name == "output.weight" || (!has_output && name == "token_embd.weight");
        let layer = layer_of(name);
        let more_bits = target == Target::Q4KM
            && (name.ends_with("attn_v.weight") || name.ends_with("ffn_down.weight"))
            && layer.is_some_and(|i| use_more_bits(i, layers));
        if is_output || more_bits {
            kind = GgmlDType::Q6K;
        } else if target == Target::Q4KS
            && name.ends_with("ffn_down.weight")
            && layer.is_some_and(|i| i < layers / 8)
        {
            kind = GgmlDType::Q5K;
        }
    }
    // llama.cpp's fallbacks for rows that K-quant blocks (256) do not divide.
    let row = dims[dims.len() - 1];
    let fallback = match kind {
        GgmlDType::Q4K => GgmlDType::Q5_0,
        GgmlDType::Q5K => GgmlDType::Q5_1,
        GgmlDType::Q6K => GgmlDType::Q8_0,
        other => other,
    };
    [kind, fallback]
        .into_iter()
        .find(|candidate| row % candidate.block_size() == 0)
        .unwrap_or(GgmlDType::F16)
}

/// Tensors llama.cpp's quantizer leaves in their type: position and token-type embeddings
/// (looked up and added, not multiplied: ggml cannot add a quantized tensor), norms and MoE
/// routers.
fn kept_as_is(name: &str) -> bool {
    name == "position_embd.weight"
        || name == "token_types.weight"
        || name.contains("_norm.weight")
        || name.contains("ffn_gate_inp.weight")
}

/// Writes `source` re-quantized to `target` into `out`. `progress(done, total)` is called after
/// each tensor with counts of tensors.
pub fn requantize<W: Write + Seek>(
    source: &Path,
    target: Target,
    out: &mut W,
    progress: impl FnMut(usize, usize),
) -> Result<(), QuantizeError> {
    rewrite(
        source,
        out,
        |name, dims, current, layers, has_output| {
            if kept_as_is(name) {
                current
            } else {
                tensor_type(name, dims, target, layers, has_output)
            }
        },
        Some(target.file_type()),
        progress,
    )
}

/// Writes `source` with only the tensors of the types in `from` converted to `to` (rows the
/// new type's block does not divide are left as they are); the file type is left as it was.
pub fn convert_types<W: Write + Seek>(
    source: &Path,
    from: &[GgmlDType],
    to: GgmlDType,
    out: &mut W,
) -> Result<(), QuantizeError> {
    rewrite(
        source,
        out,
        |_, dims, dtype, _, _| {
            let row = dims.last().copied().unwrap_or(0);
            if from.contains(&dtype) && row % to.block_size() == 0 {
                to
            } else {
                dtype
            }
        },
        None,
        |_, _| {},
    )
}

/// Writes `source` with its token-type embeddings as F32 (llama.cpp adds them to F32 states,
/// which ggml cannot do from a quantized tensor: it aborts), everything else as it is. Older
/// rollama quantized them with the rest of a BERT.
pub fn f32_token_types<W: Write + Seek>(source: &Path, out: &mut W) -> Result<(), QuantizeError> {
    rewrite(
        source,
        out,
        |name, _, dtype, _, _| {
            if name == TOKEN_TYPES {
                GgmlDType::F32
            } else {
                dtype
            }
        },
        None,
        |_, _| {},
    )
}

/// The tensor of BERT's token-type embeddings.
pub const TOKEN_TYPES: &str = "token_types.weight";

/// The GGUF at `source` written to `out` with each tensor converted to the type `choose`
/// gives it (name, dims, current type, layer count, whether there is an `output.weight`).
fn rewrite<W: Write + Seek>(
    source: &Path,
    out: &mut W,
    choose: impl Fn(&str, &[usize], GgmlDType, usize, bool) -> GgmlDType,
    file_type: Option<u32>,
    mut progress: impl FnMut(usize, usize),
) -> Result<(), QuantizeError> {
    let mut file = std::io::BufReader::new(std::fs::File::open(source)?);
    let content = gguf_file::Content::read(&mut file)?;
    let architecture = architecture_of(&content);
    let layers = content
        .metadata
        .get(&format!("{architecture}.block_count"))
        .and_then(|v| v.to_u32().ok())
        .unwrap_or(0) as usize;
    let has_output = content.tensor_infos.contains_key("output.weight");

    let names: Vec<&String> = {
        let mut names: Vec<&String> = content.tensor_infos.keys().collect();
        names.sort();
        names
    };
    let mut tensors: Vec<(String, QTensor)> = Vec::with_capacity(names.len());
    for (done, name) in names.iter().enumerate() {
        let info = &content.tensor_infos[*name];
        let tensor = info.read(&mut file, content.tensor_data_offset, &Device::Cpu)?;
        let dims = tensor.shape().dims().to_vec();
        let kind = choose(name, &dims, tensor.dtype(), layers, has_output);
        let converted = if tensor.dtype() == kind {
            tensor
        } else {
            QTensor::quantize(&tensor.dequantize(&Device::Cpu)?, kind)?
        };
        tensors.push(((*name).clone(), converted));
        progress(done + 1, names.len());
    }

    // Metadata in a fixed (sorted) order, with the new file type; the writer aligns to 32.
    let mut metadata: BTreeMap<&str, gguf_file::Value> = content
        .metadata
        .iter()
        .filter(|(key, _)| key.as_str() != "general.alignment")
        .map(|(key, value)| (key.as_str(), value.clone()))
        .collect();
    if let Some(file_type) = file_type {
        metadata.insert("general.file_type", gguf_file::Value::U32(file_type));
        metadata.insert("general.quantization_version", gguf_file::Value::U32(2));
    }
    write_gguf(out, &metadata, &tensors)?;
    Ok(())
}

/// `general.architecture` of a GGUF read by candle (empty when absent).
pub fn architecture_of(content: &gguf_file::Content) -> String {
    content
        .metadata
        .get("general.architecture")
        .and_then(|v| v.to_string().ok())
        .cloned()
        .unwrap_or_default()
}

/// Writes a GGUF (version 2, 32-byte alignment) with `metadata` in key order and `tensors` in
/// the order given.
pub fn write_gguf<W: Write + Seek, K: AsRef<str>>(
    out: &mut W,
    metadata: &BTreeMap<K, gguf_file::Value>,
    tensors: &[(String, QTensor)],
) -> Result<(), QuantizeError> {
    let metadata: Vec<(&str, &gguf_file::Value)> = metadata
        .iter()
        .map(|(key, value)| (key.as_ref(), value))
        .collect();
    let tensors: Vec<(&str, &QTensor)> = tensors
        .iter()
        .map(|(name, tensor)| (name.as_str(), tensor))
        .collect();
    gguf_file::write(out, &metadata, &tensors)?;
    out.flush()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_are_ollamas_names() {
        assert_eq!(Target::parse("q4_k_m"), Some(Target::Q4KM));
        assert_eq!(Target::parse("Q4_K"), Some(Target::Q4KM));
        assert_eq!(Target::parse("q8_0").map(Target::name), Some("Q8_0"));
        assert_eq!(Target::parse("q5_k_m"), None);
    }

    #[test]
    fn tensor_types_follow_llama_cpp_mixes() {
        let dims = [576, 1536];
        // (candle's order: rows, then the row length.)
        // 30 layers: use_more_bits picks 0-2, 5, 8, … and 26-29.
        assert!(use_more_bits(0, 30) && use_more_bits(5, 30) && use_more_bits(29, 30));
        assert!(!use_more_bits(4, 30) && !use_more_bits(6, 30));
        let kind = |name: &str, target| tensor_type(name, &dims, target, 30, false);
        assert_eq!(kind("token_embd.weight", Target::Q4KM), GgmlDType::Q6K);
        assert_eq!(kind("blk.0.ffn_down.weight", Target::Q4KM), GgmlDType::Q6K);
        assert_eq!(kind("blk.4.ffn_down.weight", Target::Q4KM), GgmlDType::Q4K);
        assert_eq!(kind("blk.4.attn_q.weight", Target::Q4KM), GgmlDType::Q4K);
        assert_eq!(kind("blk.0.ffn_down.weight", Target::Q4KS), GgmlDType::Q5K);
        assert_eq!(kind("blk.9.ffn_down.weight", Target::Q4KS), GgmlDType::Q4K);
        assert_eq!(kind("blk.9.attn_k.weight", Target::Q8_0), GgmlDType::Q8_0);
        assert_eq!(
            tensor_type("blk.0.attn_norm.weight", &[576], Target::Q4KM, 30, false),
            GgmlDType::F32
        );
        // Rows of 576 are not a whole number of 256-blocks: llama.cpp's fallbacks.
        assert_eq!(
            tensor_type("blk.0.ffn_up.weight", &[1536, 576], Target::Q4KM, 30, false),
            GgmlDType::Q5_0
        );
        assert_eq!(
            tensor_type("token_embd.weight", &[49152, 576], Target::Q4KM, 30, false),
            GgmlDType::Q8_0
        );
        assert_eq!(
            tensor_type("blk.0.x.weight", &[8, 20], Target::Q4KM, 30, false),
            GgmlDType::F16
        );
        // What llama.cpp's quantizer never touches (BERT adds its token-type row).
        assert!(kept_as_is("token_types.weight") && kept_as_is("position_embd.weight"));
        assert!(kept_as_is("blk.0.ffn_gate_inp.weight"));
        assert!(!kept_as_is("blk.0.ffn_gate.weight") && !kept_as_is("token_embd.weight"));
    }
}

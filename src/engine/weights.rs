//! Conversion of the weight types the engine runs slowly (issue: CPU speed).
//!
//! candle 0.10.2, mistralrs 0.8.1's tensor library, has AVX2 dot products for Q4_0, Q8_0 and
//! the K-quants, but only scalar ones for Q4_1, Q5_0 and Q5_1. Once the engine thread stopped
//! handing every op to another thread (`threads.rs`), that scalar kernel became the largest
//! cost: the Q4_1 test model decodes at ~81 tok/s as it is and at ~116 from a Q8_0 copy, with
//! the same greedy text (BENCHMARKS.md). llama.cpp's Q4_K_M of the same model is mostly Q5_0
//! (its rows are too short for K-quant blocks) and gains as much.
//!
//! The conversion is not lossless, so it is opt-in, as the speed issue asks of a weight format
//! change whose loss is not nil: with `ROLLAMA_CONVERT_WEIGHTS=q8_0`, Q4_1, Q5_0 and Q5_1
//! tensors are requantized to Q8_0, once per blob, into a cache beside the store
//! (`$OLLAMA_MODELS/.rollama/converted`), and the engine loads that copy. Q8_0's step is 1/254
//! of each 32-value block's largest magnitude, against 1/15 of the block's range for Q4_1, so
//! the added error is about an eighth of the format's own; greedy answers agree on most
//! prompts and part after a few tokens on some (tests/weights.rs). The cost: the converted
//! tensors take 1.4–1.7× their bytes, in memory and on disk, and the first load converts
//! (about a second for the 135M test model). Q4_0 has an AVX2 kernel and runs as it is.

use crate::gguf::Gguf;
use crate::store::Digest;
use candle_core::quantized::GgmlDType;
use std::path::{Path, PathBuf};

/// `q8_0`: convert Q4_1, Q5_0 and Q5_1 tensors to Q8_0 before loading; unset or `none`: load
/// every model as it is.
pub const ROLLAMA_CONVERT_WEIGHTS: &str = "ROLLAMA_CONVERT_WEIGHTS";

/// The types candle has only scalar dot products for, by ggml type id.
const SCALAR_KERNEL: &[(u32, GgmlDType)] = &[
    (3, GgmlDType::Q4_1),
    (6, GgmlDType::Q5_0),
    (7, GgmlDType::Q5_1),
];

/// What `ROLLAMA_CONVERT_WEIGHTS` asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Policy {
    /// Load every model as it is (the default).
    None,
    /// Convert the types with only scalar kernels to Q8_0.
    Q8_0,
}

impl Policy {
    /// The policy `value` names; `Err` names the accepted values.
    pub fn parse(value: &str) -> Result<Policy, String> {
        match value.trim().to_ascii_lowercase().as_str() {
            "" | "none" | "off" | "0" | "false" => Ok(Policy::None),
            "q8_0" => Ok(Policy::Q8_0),
            other => Err(format!(
                "{ROLLAMA_CONVERT_WEIGHTS}={other:?} is neither q8_0 nor none"
            )),
        }
    }

    /// The policy of the environment; an unknown value warns once and converts nothing.
    pub fn from_env() -> Policy {
        static WARNED: std::sync::Once = std::sync::Once::new();
        Policy::parse(&crate::env::var(ROLLAMA_CONVERT_WEIGHTS)).unwrap_or_else(|e| {
            WARNED.call_once(|| eprintln!("warning: {e}; converting nothing"));
            Policy::None
        })
    }

    fn types(self) -> &'static [(u32, GgmlDType)] {
        match self {
            Policy::None => &[],
            Policy::Q8_0 => SCALAR_KERNEL,
        }
    }
}

/// Which tensor types of `gguf` to convert under the current policy.
pub fn types_to_convert(gguf: &Gguf, policy: Policy) -> Vec<GgmlDType> {
    let has = |kind: u32| {
        gguf.tensors
            .iter()
            .any(|t| t.kind == kind && t.shape.len() >= 2)
    };
    policy
        .types()
        .iter()
        .filter(|(id, _)| has(*id))
        .map(|&(_, kind)| kind)
        .collect()
}

/// The file the engine should load for the blob `digest` at `blob`: the blob itself, or its
/// converted copy in `dir`, the store's derived files (made now if it is not cached yet).
/// `blob`, or where its token-type embeddings are quantized (a BERT quantized whole by older
/// rollama, on which llama.cpp aborts), a copy in `dir` with them as F32, written once.
pub fn f32_token_types(
    blob: &Path,
    digest: &Digest,
    gguf: &Gguf,
    dir: &Path,
) -> Result<PathBuf, String> {
    const F32: u32 = 0;
    let quantized = gguf
        .tensors
        .iter()
        .any(|t| t.name == crate::quantize::TOKEN_TYPES && t.kind != F32);
    if !quantized {
        return Ok(blob.to_path_buf());
    }
    let path = dir.join(format!("{}-token-types-f32.gguf", digest.hex()));
    if path.is_file() {
        return Ok(path);
    }
    write_atomically(dir, &path, |out| {
        crate::quantize::f32_token_types(blob, out).map_err(|e| format!("converting: {e}"))
    })?;
    eprintln!("wrote a copy of {digest} with F32 token-type embeddings for llama.cpp");
    Ok(path)
}

/// Writes `path` (in `dir`) through a temporary file renamed into place once complete.
fn write_atomically(
    dir: &Path,
    path: &Path,
    write: impl FnOnce(&mut std::io::BufWriter<&std::fs::File>) -> Result<(), String>,
) -> Result<(), String> {
    std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let temp = tempfile::Builder::new()
        .prefix(".tmp-convert-")
        .tempfile_in(dir)
        .map_err(|e| e.to_string())?;
    {
        let mut out = std::io::BufWriter::with_capacity(1 << 20, temp.as_file());
        write(&mut out)?;
        std::io::Write::flush(&mut out).map_err(|e| e.to_string())?;
    }
    temp.as_file().sync_all().map_err(|e| e.to_string())?;
    temp.persist(path).map_err(|e| e.error.to_string())?;
    Ok(())
}

pub fn prepare(blob: &Path, digest: &Digest, gguf: &Gguf, dir: &Path) -> Result<PathBuf, String> {
    let types = types_to_convert(gguf, Policy::from_env());
    if types.is_empty() {
        return Ok(blob.to_path_buf());
    }
    let names: Vec<String> = types
        .iter()
        .map(|t| format!("{t:?}").to_lowercase())
        .collect();
    let path = dir.join(format!("{}-{}-q8_0.gguf", digest.hex(), names.join("-")));
    if path.is_file() {
        return Ok(path);
    }
    let started = std::time::Instant::now();
    write_atomically(dir, &path, |out| {
        crate::quantize::convert_types(blob, &types, GgmlDType::Q8_0, out)
            .map_err(|e| format!("converting weights: {e}"))
    })?;
    eprintln!(
        "converted the {} tensors of {digest} to Q8_0 in {:.1?} ({ROLLAMA_CONVERT_WEIGHTS})",
        names.join("/"),
        started.elapsed(),
    );
    Ok(path)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gguf::TensorInfo;

    fn model(kinds: &[u32]) -> Gguf {
        let mut tensors: Vec<TensorInfo> = kinds
            .iter()
            .enumerate()
            .map(|(i, &kind)| TensorInfo {
                name: format!("blk.{i}.ffn_up.weight"),
                kind,
                shape: vec![576, 1536],
            })
            .collect();
        // A 1-D tensor of a convertible type is left alone.
        tensors.push(TensorInfo {
            name: "output_norm.weight".into(),
            kind: 3,
            shape: vec![576],
        });
        Gguf {
            version: 3,
            tensors,
            ..Gguf::default()
        }
    }

    #[test]
    fn the_policy_is_read_from_its_documented_values() {
        for none in ["", " none ", "off", "0", "false"] {
            assert_eq!(Policy::parse(none), Ok(Policy::None));
        }
        assert_eq!(Policy::parse("Q8_0"), Ok(Policy::Q8_0));
        let error = Policy::parse("q4_k").unwrap_err();
        assert!(error.contains("neither q8_0 nor none"), "{error}");
    }

    #[test]
    fn only_the_types_with_scalar_kernels_are_converted() {
        // Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, Q4_K, Q6_K, F16.
        let mixed = model(&[2, 3, 6, 7, 8, 12, 14, 1]);
        assert_eq!(
            types_to_convert(&mixed, Policy::Q8_0),
            vec![GgmlDType::Q4_1, GgmlDType::Q5_0, GgmlDType::Q5_1]
        );
        assert!(types_to_convert(&mixed, Policy::None).is_empty());
        // Only what the model has.
        assert_eq!(
            types_to_convert(&model(&[12, 6]), Policy::Q8_0),
            vec![GgmlDType::Q5_0]
        );
        assert!(types_to_convert(&model(&[2, 12, 14]), Policy::Q8_0).is_empty());
    }
}

//! Opt-in conversion of 4-bit weights the engine may run slowly (issue: CPU speed).
//!
//! candle 0.10.2, mistralrs 0.8.1's tensor library, has AVX2 dot products for Q4_0, Q8_0 and
//! the K-quants but only a scalar one for Q4_1. On the Xeon the speed issue was measured on,
//! Q8_0 decoded 46 tok/s against Q4_1's 32; on the EPYC of 2026-11-29 all three ran at
//! 67–72 tok/s. So the conversion is a knob, not the default: with
//! `ROLLAMA_CONVERT_WEIGHTS=q8_0`, Q4_0 and Q4_1 tensors are converted to Q8_0 (nearly lossless
//! from a 4-bit source; about 1.7× the bytes of the converted tensors) into a cache beside the
//! store, once per blob, and the engine loads the converted file.

use crate::gguf::Gguf;
use crate::store::Digest;
use candle_core::quantized::GgmlDType;
use std::path::{Path, PathBuf};

/// `q8_0`: convert Q4_0 and Q4_1 tensors to Q8_0 before loading. Unset: load as they are.
pub const ROLLAMA_CONVERT_WEIGHTS: &str = "ROLLAMA_CONVERT_WEIGHTS";

/// ggml type ids.
const Q4_0: u32 = 2;
const Q4_1: u32 = 3;

/// The directory of converted weights for the store whose `blobs/` is `blobs`:
/// `$OLLAMA_MODELS/.rollama/converted`.
pub fn cache_dir(blobs: &Path) -> Option<PathBuf> {
    Some(blobs.parent()?.join(".rollama").join("converted"))
}

/// Which tensor types of `gguf` to convert under the current policy.
pub fn types_to_convert(gguf: &Gguf) -> Vec<GgmlDType> {
    if !crate::env::var(ROLLAMA_CONVERT_WEIGHTS).eq_ignore_ascii_case("q8_0") {
        return Vec::new();
    }
    let has = |kind: u32| {
        gguf.tensors
            .iter()
            .any(|t| t.kind == kind && t.shape.len() >= 2)
    };
    [(Q4_0, GgmlDType::Q4_0), (Q4_1, GgmlDType::Q4_1)]
        .into_iter()
        .filter(|(id, _)| has(*id))
        .map(|(_, kind)| kind)
        .collect()
}

/// The file the engine should load for the blob `digest` at `blob`: the blob itself, or its
/// converted copy (made now if it is not cached yet).
pub fn prepare(blob: &Path, digest: &Digest, gguf: &Gguf) -> Result<PathBuf, String> {
    let types = types_to_convert(gguf);
    if types.is_empty() {
        return Ok(blob.to_path_buf());
    }
    let dir = blob
        .parent()
        .and_then(cache_dir)
        .ok_or("model blob has no store around it")?;
    let names: Vec<String> = types
        .iter()
        .map(|t| format!("{t:?}").to_lowercase())
        .collect();
    let path = dir.join(format!("{}-{}-q8_0.gguf", digest.hex(), names.join("-")));
    if path.is_file() {
        return Ok(path);
    }
    let started = std::time::Instant::now();
    std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let temp = tempfile::Builder::new()
        .prefix(".tmp-convert-")
        .tempfile_in(&dir)
        .map_err(|e| e.to_string())?;
    {
        let mut out = std::io::BufWriter::with_capacity(1 << 20, temp.as_file());
        crate::quantize::convert_types(blob, &types, GgmlDType::Q8_0, &mut out)
            .map_err(|e| format!("converting weights: {e}"))?;
    }
    temp.as_file().sync_all().map_err(|e| e.to_string())?;
    temp.persist(&path).map_err(|e| e.error.to_string())?;
    eprintln!(
        "converted the {} tensors of {digest} to Q8_0 in {:.1?} ({ROLLAMA_CONVERT_WEIGHTS})",
        names.join("/"),
        started.elapsed(),
    );
    Ok(path)
}

/// Removes converted files whose source blob is gone.
pub fn remove_orphans(blobs: &Path) {
    let Some(dir) = cache_dir(blobs) else {
        return;
    };
    let Ok(entries) = std::fs::read_dir(&dir) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let source = name.split('-').next().unwrap_or_default();
        let orphan = Digest::parse(&format!("sha256:{source}"))
            .map(|d| !blobs.join(d.file_name()).is_file())
            .unwrap_or(true);
        if orphan {
            let _ = std::fs::remove_file(entry.path());
        }
    }
}

//! GGUF files in the layouts Ollama's own converter wrote, read through llama.cpp.
//!
//! Many blobs on Ollama's registry were written by Ollama's converter for Ollama's own engine:
//! other architecture names (`gptoss`, `qwen25vl`), other metadata keys (gemma3's nested RoPE
//! keys, mistral3's YaRN names), other tensor names, missing tokenizer facts, and vision towers
//! embedded in the text model. Stock llama.cpp refuses most of them. Ollama, which has run
//! llama.cpp underneath since 0.30, patches llama.cpp's loader to translate them in memory
//! (`llama/compat/` in ollama/ollama, one `detect_ollama_<arch>` / `handle_<arch>` pair per
//! family). rollama does not patch llama.cpp, so it translates the file instead: once per
//! blob, into a derived GGUF in llama.cpp's layout that the engine then loads
//! (ARCHITECTURE.md says why a copy and not metadata overrides).
//!
//! Each family keeps its facts in its own file (how to recognise the layout, which keys and
//! tensors to rename, add or hide), taken from Ollama's compat handlers and converters. This
//! module holds what they share: [`Draft`], an editable view of a GGUF's metadata and tensor
//! table whose tensor data stays in the source file, and the writing of the derived file.
//! Nothing outside this module knows which family needed what.
//!
//! The derived file is `<blob hex>-ollama-<family>-v<N>.gguf` in the store's derived
//! directory. It is written under a temporary name and renamed into place only when complete
//! and synced, so a crash never leaves a half-written file that a later load would use; the
//! store removes it with its blob, `push` never sees it (it is not a layer), and `cp` shares
//! it (same blob). `OLLAMA_LLAMA_CPP_COMPAT=0` turns the translation off, as it does Ollama's.

mod data;
mod embeddinggemma;
mod gemma3;
mod gemma3n;
mod gptoss;
mod llama3;
mod llama4;
mod mistral3;
mod qwen25vl;
mod qwen3vl;

use crate::gguf::{self, Gguf, Value};
use crate::store::Digest;
use data::{Data, Region, F16, F32};
use std::borrow::Cow;
use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::time::Instant;

/// Ollama's switch for its translation layer: `0` (or another false value) loads every file as
/// it is.
pub const OLLAMA_LLAMA_CPP_COMPAT: &str = "OLLAMA_LLAMA_CPP_COMPAT";

/// CLIP's image mean and standard deviation (Pixtral's and Qwen2.5-VL's preprocessing).
const CLIP_MEAN: [f32; 3] = [0.481_454_66, 0.457_827_5, 0.408_210_73];
const CLIP_STD: [f32; 3] = [0.268_629_54, 0.261_302_6, 0.275_777_1];
/// SigLIP's (Gemma 3's, Llama 4's, Qwen3-VL's): every channel from [0, 1] to [-1, 1].
const HALF: [f32; 3] = [0.5; 3];

/// Bumped whenever a family's rules change what it writes, so that an older derived file is
/// not used (its name no longer matches) and is removed with the blob as before.
const RULES_VERSION: u32 = 1;

/// One family of Ollama-layout files.
trait Family: Sync {
    /// The family's name in messages and file names: Ollama's architecture name for it.
    fn name(&self) -> &'static str;
    /// True for a file in this family's Ollama layout, by the markers Ollama's compat layer
    /// checks; a file of the same architecture in llama.cpp's layout is false.
    fn detect(&self, model: &Draft) -> bool;
    /// Rewrites `model` into llama.cpp's layout. `Err` names what the file lacks.
    fn translate(&self, model: &mut Draft) -> Result<(), String>;
    /// Rewrites `model`, a file of this family with an embedded vision tower, into the
    /// projector (mmproj) llama.cpp's mtmd loads beside the text model. `None` for a family
    /// whose projector is not translated.
    fn projector(&self, model: &mut Draft) -> Option<Result<(), String>> {
        let _ = model;
        None
    }
}

/// Every family, in the order Ollama's dispatch tries them (each checks its architecture).
const FAMILIES: &[&dyn Family] = &[
    &embeddinggemma::EmbeddingGemma,
    &gemma3::Gemma3,
    &gemma3n::Gemma3n,
    &gptoss::GptOss,
    &mistral3::Mistral3,
    &qwen25vl::Qwen25Vl,
    &qwen3vl::Qwen3Vl,
    &llama3::Llama3,
    &llama4::Llama4,
];

/// A GGUF being rewritten: its metadata and tensor table in memory, its tensor data still in
/// the source file. The metadata is borrowed from the source's header until the first edit, so
/// that recognising a file (on every load and `show`) does not copy its vocabulary.
#[derive(Debug, Clone)]
pub struct Draft<'a> {
    metadata: Cow<'a, [(String, Value)]>,
    tensors: Vec<DraftTensor>,
}

#[derive(Debug, Clone)]
struct DraftTensor {
    name: String,
    kind: u32,
    shape: Vec<u64>,
    data: Data,
    /// Left out of the translated file (an embedded vision tower the text loader must not see).
    hidden: bool,
}

impl DraftTensor {
    /// Where the source tensor's bytes start, for a tensor still copied as it is.
    fn source_offset(&self) -> Option<u64> {
        match self.data {
            Data::Copy { offset } => Some(offset),
            _ => None,
        }
    }

    fn elements(&self) -> u64 {
        self.shape.iter().product()
    }
}

impl<'a> Draft<'a> {
    fn new(gguf: &'a Gguf) -> Draft<'a> {
        let offsets = gguf
            .data_offsets
            .iter()
            .copied()
            .chain(std::iter::repeat(0));
        Draft {
            metadata: Cow::Borrowed(&gguf.metadata),
            tensors: gguf
                .tensors
                .iter()
                .zip(offsets)
                .map(|(t, offset)| DraftTensor {
                    name: t.name.clone(),
                    kind: t.kind,
                    shape: t.shape.clone(),
                    data: Data::Copy { offset },
                    hidden: false,
                })
                .collect(),
        }
    }

    fn get(&self, key: &str) -> Option<&Value> {
        self.metadata
            .iter()
            .rev()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v)
    }

    fn has(&self, key: &str) -> bool {
        self.get(key).is_some()
    }

    fn string(&self, key: &str) -> Option<&str> {
        self.get(key).and_then(Value::as_str)
    }

    fn unsigned(&self, key: &str) -> Option<u64> {
        self.get(key).and_then(Value::as_u64)
    }

    fn architecture(&self) -> &str {
        self.string("general.architecture").unwrap_or("")
    }

    /// Sets `key`, replacing every earlier value.
    fn set(&mut self, key: &str, value: Value) {
        self.remove(key);
        self.metadata.to_mut().push((key.to_owned(), value));
    }

    fn set_if_missing(&mut self, key: &str, value: Value) {
        if !self.has(key) {
            self.set(key, value);
        }
    }

    fn remove(&mut self, key: &str) -> Option<Value> {
        let value = self.get(key).cloned();
        if value.is_some() {
            self.metadata.to_mut().retain(|(k, _)| k != key);
        }
        value
    }

    /// Gives `to` the value of `from` unless `to` is already set (Ollama's `copy_kv`).
    fn copy_if_missing(&mut self, from: &str, to: &str) {
        if let Some(value) = self.get(from).cloned() {
            self.set_if_missing(to, value);
        }
    }

    /// Moves every key under `old` to the same key under `new`.
    fn rename_key_prefix(&mut self, old: &str, new: &str) {
        for (key, _) in self.metadata.to_mut() {
            if let Some(rest) = key.strip_prefix(old) {
                *key = format!("{new}{rest}");
            }
        }
    }

    /// Cuts the array `key` down to `len` elements, if it is longer.
    fn truncate_array(&mut self, key: &str, len: usize) {
        for (k, value) in self.metadata.to_mut() {
            if k == key {
                if let Value::Array(items) = value {
                    items.truncate(len);
                }
            }
        }
    }

    fn tensor_shape(&self, name: &str) -> Option<&[u64]> {
        self.tensor(name).map(|t| t.shape.as_slice())
    }

    fn any_tensor_with_prefix(&self, prefix: &str) -> bool {
        self.tensors.iter().any(|t| t.name.starts_with(prefix))
    }

    /// Replaces the first `needle` in every tensor name that has it.
    fn rename_tensors_containing(&mut self, needle: &str, replacement: &str) {
        for tensor in &mut self.tensors {
            if tensor.name.contains(needle) {
                tensor.name = tensor.name.replacen(needle, replacement, 1);
            }
        }
    }

    /// Leaves the tensors whose names start with `prefix` out of the translated file.
    fn hide_tensors_with_prefix(&mut self, prefix: &str) {
        for tensor in &mut self.tensors {
            if tensor.name.starts_with(prefix) {
                tensor.hidden = true;
            }
        }
    }

    /// Leaves every tensor out except those whose names start with one of `prefixes`.
    fn keep_only_tensors_with_prefixes(&mut self, prefixes: &[&str]) {
        for tensor in &mut self.tensors {
            tensor.hidden = !prefixes.iter().any(|p| tensor.name.starts_with(p));
        }
    }

    /// Has the F16 tensor `name` written as F32 (an F32 one stays as it is).
    fn promote_to_f32(&mut self, name: &str) {
        for tensor in &mut self.tensors {
            if tensor.name == name && tensor.kind == F16 {
                if let Some(offset) = tensor.source_offset() {
                    tensor.data = Data::ToF32(Region {
                        offset,
                        kind: F16,
                        elements: tensor.elements(),
                    });
                    tensor.kind = F32;
                }
            }
        }
    }

    fn tensor(&self, name: &str) -> Option<&DraftTensor> {
        self.tensors.iter().find(|t| t.name == name)
    }

    fn tensor_mut(&mut self, name: &str) -> Option<&mut DraftTensor> {
        self.tensors.iter_mut().find(|t| t.name == name)
    }

    /// The source region of tensor `name`, while it is still copied as it is.
    fn region(&self, name: &str) -> Option<Region> {
        let tensor = self.tensor(name)?;
        Some(Region {
            offset: tensor.source_offset()?,
            kind: tensor.kind,
            elements: tensor.elements(),
        })
    }

    fn remove_tensor(&mut self, name: &str) {
        self.tensors.retain(|t| t.name != name);
    }

    fn rename_tensor(&mut self, from: &str, to: &str) {
        if let Some(tensor) = self.tensor_mut(from) {
            to.clone_into(&mut tensor.name);
        }
    }

    fn add_tensor(&mut self, name: &str, kind: u32, shape: Vec<u64>, data: Data) {
        self.remove_tensor(name);
        self.tensors.push(DraftTensor {
            name: name.to_owned(),
            kind,
            shape,
            data,
            hidden: false,
        });
    }

    /// Copies each `(from, to)` key whose `from` is set (to's old value is replaced).
    fn copy_keys(&mut self, pairs: &[(&str, &str)]) {
        for (from, to) in pairs {
            if let Some(value) = self.get(from).cloned() {
                self.set(to, value);
            }
        }
    }

    /// `Err` naming the first of `keys` that is not set.
    fn require(&self, keys: &[&str], purpose: &str) -> Result<(), String> {
        match keys.iter().find(|key| !self.has(key)) {
            Some(key) => Err(format!("{key} is missing, which the {purpose} needs")),
            None => Ok(()),
        }
    }

    /// Makes this draft a projector file for llama.cpp's mtmd: architecture `clip` of
    /// `projector_type`, only the vision tensors (`v.*`, `mm.*`), no vocabulary.
    fn make_projector(&mut self, projector_type: &str) {
        self.metadata
            .to_mut()
            .retain(|(key, _)| !key.starts_with("tokenizer."));
        self.keep_only_tensors_with_prefixes(&["v.", "mm."]);
        self.set_if_missing("clip.has_vision_encoder", Value::Bool(true));
        self.set(
            "clip.projector_type",
            Value::String(projector_type.to_owned()),
        );
        self.set("general.architecture", Value::String("clip".to_owned()));
    }

    /// `key`'s array of integers (empty when it is not one).
    fn integers(&self, key: &str) -> Vec<i64> {
        match self.get(key) {
            Some(Value::Array(items)) => items
                .iter()
                .filter_map(|v| match v {
                    Value::I32(n) => Some(i64::from(*n)),
                    other => other.as_u64().and_then(|n| i64::try_from(n).ok()),
                })
                .collect(),
            _ => Vec::new(),
        }
    }

    /// Hides an embedded vision tower and projector (`v.*`, `mm.*`) from the text loader.
    fn hide_vision_tower(&mut self) {
        self.hide_tensors_with_prefix("v.");
        self.hide_tensors_with_prefix("mm.");
    }

    /// The projector's image normalisation, where the file does not give it.
    fn set_image_normalization(&mut self, mean: [f32; 3], std: [f32; 3]) {
        let floats = |values: [f32; 3]| Value::Array(values.into_iter().map(Value::F32).collect());
        self.set_if_missing("clip.vision.image_mean", floats(mean));
        self.set_if_missing("clip.vision.image_std", floats(std));
    }

    fn visible_tensors(&self) -> impl Iterator<Item = &DraftTensor> {
        self.tensors.iter().filter(|t| !t.hidden)
    }
}

/// The Ollama layout a file is in, by the name of its family (`gemma3`, `gptoss`…), or `None`
/// for a file llama.cpp reads as it is (or with the translation turned off).
pub fn family_of(gguf: &Gguf) -> Option<&'static str> {
    detect(&Draft::new(gguf)).map(|f| f.name())
}

/// Whether `gguf` is in an Ollama layout with a vision tower inside whose projector
/// [`projector`] translates (what makes such a model read images). Cheap: nothing is copied.
pub fn has_projector(gguf: &Gguf) -> bool {
    let draft = Draft::new(gguf);
    let Some(family) = detect(&draft) else {
        return false;
    };
    // A family that translates projectors answers for an empty file too (with what it
    // misses); the others answer `None`.
    let empty = Gguf::default();
    draft.any_tensor_with_prefix("v.") && family.projector(&mut Draft::new(&empty)).is_some()
}

fn detect(draft: &Draft) -> Option<&'static dyn Family> {
    if !enabled() {
        return None;
    }
    FAMILIES.iter().copied().find(|family| family.detect(draft))
}

fn enabled() -> bool {
    crate::env::bool_var(OLLAMA_LLAMA_CPP_COMPAT, true)
}

/// Why a model in an Ollama layout could not be made loadable.
#[derive(Debug, thiserror::Error)]
pub enum TranslateError {
    /// The file lacks something its family's translation needs: the request's fault (a 400).
    #[error("model is in Ollama's {family} layout, which could not be translated for llama.cpp: {missing}")]
    Incomplete {
        family: &'static str,
        missing: String,
    },
    /// Writing the translated copy failed (disk full, permissions).
    #[error("translating Ollama's {family} layout: {source}")]
    Io {
        family: &'static str,
        #[source]
        source: io::Error,
    },
}

/// A translated model: the derived file the engine loads instead of the blob.
#[derive(Debug, Clone)]
pub struct Translated {
    pub family: &'static str,
    pub path: PathBuf,
    /// The derived file's size on disk.
    pub bytes: u64,
    /// The derived file's own header (what the engine will see).
    pub gguf: Gguf,
}

/// Where the derived file of blob `digest` in `family`'s layout lives in `dir`.
pub fn derived_path(dir: &Path, digest: &Digest, family: &str) -> PathBuf {
    dir.join(format!(
        "{}-ollama-{family}-v{RULES_VERSION}.gguf",
        digest.hex()
    ))
}

/// Where the projector translated from blob `digest`'s embedded vision tower lives in `dir`.
pub fn projector_path(dir: &Path, digest: &Digest, family: &str) -> PathBuf {
    dir.join(format!(
        "{}-ollama-{family}-mmproj-v{RULES_VERSION}.gguf",
        digest.hex()
    ))
}

/// The size of blob `digest`'s translation in `family`'s layout in `dir`; 0 while it has not
/// been written.
pub fn derived_bytes(dir: &Path, digest: &Digest, family: &str) -> u64 {
    std::fs::metadata(derived_path(dir, digest, family)).map_or(0, |m| m.len())
}

/// Makes the blob `digest` at `blob` (whose header is `gguf`) loadable by llama.cpp: `None`
/// when it already is, else its translated copy in `dir`, written now if it is not there yet.
/// Progress and the cost are logged to stderr, the server log.
pub fn prepare(
    blob: &Path,
    digest: &Digest,
    gguf: &Gguf,
    dir: &Path,
) -> Result<Option<Translated>, TranslateError> {
    let mut draft = Draft::new(gguf);
    let Some(family) = detect(&draft) else {
        return Ok(None);
    };
    let path = derived_path(dir, digest, family.name());
    let translated = derive(&mut draft, family, blob, digest, &path, |f, d| {
        Some(f.translate(d))
    })?;
    if let Some(t) = &translated {
        eprintln!(
            "model {digest} is in Ollama's {} layout: loading its llama.cpp translation {} ({})",
            t.family,
            t.path.display(),
            crate::format::human_bytes(t.bytes as i64),
        );
    }
    Ok(translated)
}

/// The projector (mmproj) for llama.cpp's mtmd translated from the vision tower embedded in
/// the blob `digest` at `blob`, written into `dir` if it is not there yet: `None` when the
/// file is not in an Ollama layout, has no embedded tower, or its family's projector is not
/// translated. Ollama passes such a blob as the model and as the projector.
pub fn projector(
    blob: &Path,
    digest: &Digest,
    gguf: &Gguf,
    dir: &Path,
) -> Result<Option<Translated>, TranslateError> {
    let mut draft = Draft::new(gguf);
    let Some(family) = detect(&draft) else {
        return Ok(None);
    };
    if !draft.any_tensor_with_prefix("v.") {
        return Ok(None);
    }
    let path = projector_path(dir, digest, family.name());
    derive(&mut draft, family, blob, digest, &path, |f, d| {
        f.projector(d)
    })
}

/// The derived file at `path`, made from `draft` by `edit` (`None`: nothing to derive) and
/// written if it is not there yet.
fn derive(
    draft: &mut Draft,
    family: &'static dyn Family,
    blob: &Path,
    digest: &Digest,
    path: &Path,
    edit: impl FnOnce(&dyn Family, &mut Draft) -> Option<Result<(), String>>,
) -> Result<Option<Translated>, TranslateError> {
    let name = family.name();
    let io_error = |source| TranslateError::Io {
        family: name,
        source,
    };
    if !path.is_file() {
        match edit(family, draft) {
            None => return Ok(None),
            Some(Err(missing)) => {
                return Err(TranslateError::Incomplete {
                    family: name,
                    missing,
                })
            }
            Some(Ok(())) => {}
        }
        write(draft, blob, path, name, digest).map_err(io_error)?;
    }
    let gguf = Gguf::open(path).map_err(|e| io_error(io::Error::other(e.to_string())))?;
    let bytes = std::fs::metadata(path).map_err(io_error)?.len();
    Ok(Some(Translated {
        family: name,
        path: path.to_path_buf(),
        bytes,
        gguf,
    }))
}

/// Writes `draft` to `path`: header, then each visible tensor's data copied from `blob`,
/// under a temporary name beside `path` that is renamed into place once complete and synced.
fn write(draft: &Draft, blob: &Path, path: &Path, family: &str, digest: &Digest) -> io::Result<()> {
    let started = Instant::now();
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir)?;
    let temp = tempfile::Builder::new()
        .prefix(".tmp-ollama-")
        .tempfile_in(dir)?;
    let tensors: Vec<(&str, u32, Vec<u64>)> = draft
        .visible_tensors()
        .map(|t| (t.name.as_str(), t.kind, t.shape.clone()))
        .collect();
    let mut out = BufWriter::with_capacity(8 << 20, temp.as_file());
    let layout = gguf::write_header(&mut out, &draft.metadata, &tensors)?;
    let total: u64 = layout.tensors.iter().map(|(_, size)| size).sum();
    eprintln!(
        "translating model {digest} from Ollama's {family} layout to llama.cpp's: copying {} \
         of tensor data, once",
        crate::format::human_bytes(total as i64),
    );
    let mut source = File::open(blob)?;
    let mut position = 0u64;
    let mut copied = 0u64;
    let mut next_report = total / 10;
    for (tensor, (offset, size)) in draft.visible_tensors().zip(layout.tensors) {
        gguf::write_zeros(&mut out, offset - position)?;
        tensor.data.write(&mut source, &mut out, size)?;
        position = offset + size;
        copied += size;
        if copied >= next_report && total >= 256 << 20 {
            eprintln!(
                "translating model {digest}: {}% ({} of {})",
                copied * 100 / total.max(1),
                crate::format::human_bytes(copied as i64),
                crate::format::human_bytes(total as i64),
            );
            next_report = copied + total / 10;
        }
    }
    out.flush()?;
    drop(out);
    temp.as_file().sync_all()?;
    temp.persist(path).map_err(|e| e.error)?;
    eprintln!(
        "translated model {digest} ({family}) in {:.1?}: {} written to {}",
        started.elapsed(),
        crate::format::human_bytes(std::fs::metadata(path)?.len() as i64),
        path.display(),
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn draft(architecture: &str, keys: &[(&str, Value)], tensors: &[&str]) -> Draft<'static> {
        let mut metadata = vec![(
            "general.architecture".to_owned(),
            Value::String(architecture.to_owned()),
        )];
        metadata.extend(keys.iter().map(|(k, v)| ((*k).to_owned(), v.clone())));
        Draft {
            metadata: Cow::Owned(metadata),
            tensors: tensors
                .iter()
                .map(|name| DraftTensor {
                    name: (*name).to_owned(),
                    kind: 0,
                    shape: vec![4, 2],
                    data: Data::Copy { offset: 0 },
                    hidden: false,
                })
                .collect(),
        }
    }

    fn family(draft: &Draft) -> Option<&'static str> {
        FAMILIES.iter().find(|f| f.detect(draft)).map(|f| f.name())
    }

    #[test]
    fn llama_cpp_layouts_are_not_recognised() {
        let eps = ("gemma3.attention.layer_norm_rms_epsilon", Value::F32(1e-6));
        assert_eq!(
            family(&draft("gemma3", &[eps], &["token_embd.weight"])),
            None
        );
        assert_eq!(family(&draft("gpt-oss", &[], &[])), None);
        assert_eq!(family(&draft("llama", &[], &[])), None);
        assert_eq!(family(&draft("qwen2vl", &[], &[])), None);
        let sections = (
            "qwen3vl.rope.dimension_sections",
            Value::Array(vec![Value::I32(24)]),
        );
        assert_eq!(family(&draft("qwen3vl", &[sections], &[])), None);
        assert_eq!(
            family(&draft("mistral3", &[], &["blk.0.attn_q.weight"])),
            None
        );
    }

    #[test]
    fn ollamas_markers_are_recognised() {
        assert_eq!(family(&draft("gemma3", &[], &[])), Some("gemma3"));
        assert_eq!(family(&draft("gptoss", &[], &[])), Some("gptoss"));
        assert_eq!(family(&draft("qwen25vl", &[], &[])), Some("qwen25vl"));
        assert_eq!(family(&draft("qwen3vl", &[], &[])), Some("qwen3vl"));
        assert_eq!(family(&draft("qwen3vlmoe", &[], &[])), Some("qwen3vl"));
        assert_eq!(
            family(&draft("mistral3", &[], &["v.blk.0.attn_q.weight"])),
            Some("mistral3")
        );
    }

    #[test]
    fn llama4_is_an_ollama_layout_only_with_its_tower_embedded() {
        assert_eq!(
            family(&draft("llama4", &[], &["blk.0.attn_q.weight"])),
            None
        );
        assert_eq!(
            family(&draft("llama4", &[], &["v.patch_embedding.weight"])),
            Some("llama4")
        );
    }

    #[test]
    fn pixtral_q_and_k_rows_interleave_each_heads_halves() {
        let mut d = draft("mistral3", &[], &[]);
        d.add_tensor(
            "v.blk.0.attn_q.weight",
            F16,
            vec![2, 8],
            Data::Copy { offset: 0 },
        );
        d.tensors[0].data = Data::Copy { offset: 64 };
        mistral3::permute_for_rope(&mut d, "v.blk.0.attn_q.weight", 2);
        let Data::Rows {
            offset,
            row_bytes,
            order,
        } = &d.tensors[0].data
        else {
            panic!("{:?}", d.tensors[0].data);
        };
        assert_eq!((*offset, *row_bytes), (64, 4));
        // Head dimension 4: rows (0 1 | 2 3) become (0 2 1 3), per head.
        assert_eq!(order, &[0, 2, 1, 3, 4, 6, 5, 7]);
    }

    #[test]
    fn a_qwen3vl_head_dimension_other_than_128_is_refused_by_name() {
        let mut d = draft(
            "qwen3vl",
            &[("qwen3vl.attention.key_length", Value::U32(64))],
            &[],
        );
        let error = qwen3vl::Qwen3Vl.translate(&mut d).unwrap_err();
        assert!(
            error.contains("dimension_sections") && error.contains("64"),
            "{error}"
        );
    }

    #[test]
    fn gemma3n_cuts_the_vocabulary_to_the_per_layer_rows_and_retypes_tokens() {
        let strings = |items: &[&str]| {
            Value::Array(
                items
                    .iter()
                    .map(|s| Value::String((*s).to_owned()))
                    .collect(),
            )
        };
        let types = |items: &[i32]| Value::Array(items.iter().copied().map(Value::I32).collect());
        let mut d = draft(
            "gemma3n",
            &[
                (
                    "tokenizer.ggml.tokens",
                    strings(&["<pad>", "<0x0A>", "<unused0>", "hi", "<image_soft_token>"]),
                ),
                ("tokenizer.ggml.token_type", types(&[3, 3, 3, 1, 3])),
            ],
            &[],
        );
        d.add_tensor(
            "token_embd.weight",
            F16,
            vec![8, 5],
            Data::Copy { offset: 0 },
        );
        d.add_tensor(
            "per_layer_token_embd.weight",
            F16,
            vec![4, 4],
            Data::Copy { offset: 0 },
        );
        assert_eq!(family(&d), Some("gemma3n"));
        gemma3n::Gemma3n.translate(&mut d).unwrap();
        assert_eq!(d.tensor_shape("token_embd.weight"), Some(&[8u64, 4][..]));
        assert_eq!(
            d.get("tokenizer.ggml.token_type"),
            Some(&types(&[3, 6, 1, 1]))
        );
        assert_eq!(
            d.get("tokenizer.ggml.eos_token_ids"),
            Some(&types(&[1, 106]))
        );
        assert_eq!(
            family(&d),
            None,
            "a translated file is not translated again"
        );
    }

    #[test]
    fn embeddinggemma_without_its_dense_layers_names_the_missing_tensor() {
        let mut d = draft("gemma3", &[], &["dense.0.weight"]);
        assert_eq!(family(&d), Some("embeddinggemma"));
        let error = embeddinggemma::EmbeddingGemma
            .translate(&mut d)
            .unwrap_err();
        assert!(error.contains("dense.1.weight"), "{error}");
    }

    #[test]
    fn draft_edits_keep_one_value_per_key() {
        let mut d = draft("gptoss", &[("gptoss.block_count", Value::U32(2))], &[]);
        d.rename_key_prefix("gptoss.", "gpt-oss.");
        assert_eq!(d.unsigned("gpt-oss.block_count"), Some(2));
        assert!(!d.has("gptoss.block_count"));
        d.set("gpt-oss.block_count", Value::U32(3));
        d.set_if_missing("gpt-oss.block_count", Value::U32(4));
        assert_eq!(d.unsigned("gpt-oss.block_count"), Some(3));
        let count = d
            .metadata
            .iter()
            .filter(|(k, _)| k == "gpt-oss.block_count")
            .count();
        assert_eq!(count, 1);
    }

    #[test]
    fn renames_replace_the_first_occurrence_and_hidden_tensors_are_not_written() {
        let mut d = draft(
            "x",
            &[],
            &["blk.0.attn_out.weight", "v.blk.0.attn_out.weight"],
        );
        d.rename_tensors_containing(".attn_out", ".attn_output");
        d.hide_tensors_with_prefix("v.");
        let names: Vec<&str> = d.visible_tensors().map(|t| t.name.as_str()).collect();
        assert_eq!(names, ["blk.0.attn_output.weight"]);
    }
}

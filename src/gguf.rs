//! Reading the self-description of GGUF model files: the header, the metadata key/value pairs
//! and the tensor-info table (never the tensor data), and deriving from them what Ollama shows
//! (`details`, `model_info`, `tensors` of `/api/show`, `parameter_size`, `quantization_level`).
//!
//! The format is described in ggml's `docs/gguf.md`; the derived values follow Ollama's
//! `fs/ggml` package. Model files come from users and registries, so the reader treats every
//! length and count in the file as hostile: each one is checked against the bytes left in the
//! file (and against fixed caps) before anything is allocated, and every failure is a
//! [`GgufError`], never a panic.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{self, BufReader, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

/// The four bytes every GGUF file starts with.
const MAGIC: [u8; 4] = *b"GGUF";
/// What the magic looks like when a big-endian writer also swapped it (Ollama's
/// `FILE_MAGIC_GGUF_BE`).
const SWAPPED_MAGIC: [u8; 4] = *b"FUGG";
/// Tensor data alignment when `general.alignment` is absent (gguf.md).
const DEFAULT_ALIGNMENT: u64 = 32;
/// Longest string accepted, as Ollama's `fs/gguf.MaxStringLength`: a hostile length inside a
/// large model file could otherwise pass the remaining-bytes check and still be gigabytes.
const MAX_STRING_LENGTH: u64 = 16 << 20;
/// Most elements accepted in one array, as Ollama's `fs/gguf.MaxArraySize`.
const MAX_ARRAY_LENGTH: u64 = 64 << 20;
/// gguf.md allows 4 dimensions (Ollama enforces that); a few more are accepted so that a
/// future writer does not lock users out, while the allocation stays trivially bounded.
const MAX_TENSOR_DIMENSIONS: u32 = 8;
/// Arrays may hold arrays; the depth is capped so recursion stays bounded.
const MAX_ARRAY_NESTING: usize = 4;
/// Initial capacity for vectors whose final length comes from the file: larger vectors grow as
/// their elements are actually read, so memory follows the bytes present, not the claims.
const PREALLOCATION_LIMIT: u64 = 4096;

/// Smallest encoding of one metadata pair: an empty key (8), a type (4), a one-byte value (1).
const MIN_KV_BYTES: u64 = 8 + 4 + 1;
/// Smallest encoding of one tensor info: empty name (8), dimension count (4), type (4),
/// offset (8).
const MIN_TENSOR_INFO_BYTES: u64 = 8 + 4 + 4 + 8;

/// GGUF metadata value type ids (gguf.md `gguf_metadata_value_type`).
mod value_type {
    pub const U8: u32 = 0;
    pub const I8: u32 = 1;
    pub const U16: u32 = 2;
    pub const I16: u32 = 3;
    pub const U32: u32 = 4;
    pub const I32: u32 = 5;
    pub const F32: u32 = 6;
    pub const BOOL: u32 = 7;
    pub const STRING: u32 = 8;
    pub const ARRAY: u32 = 9;
    pub const U64: u32 = 10;
    pub const I64: u32 = 11;
    pub const F64: u32 = 12;
}

/// Why a GGUF file could not be read.
#[derive(Debug, thiserror::Error)]
pub enum GgufError {
    /// The file does not start with the GGUF magic (the message is Ollama's create error).
    #[error("supplied file was not in GGUF format")]
    NotGguf,
    /// The file is GGUF but was written big-endian; only little-endian files are read.
    #[error("big-endian GGUF files are not supported")]
    BigEndian,
    /// The header names a version other than 2 or 3.
    #[error("unsupported GGUF version {0}: only versions 2 and 3 are supported")]
    UnsupportedVersion(u32),
    /// The file is truncated or holds impossible lengths, counts or types.
    #[error("malformed GGUF file: {0}")]
    Malformed(String),
    /// The file could not be opened or measured.
    #[error("could not open `{path}`: {source}", path = path.display())]
    Open {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    /// Reading failed for a reason other than the file's content.
    #[error("could not read GGUF data: {0}")]
    Io(#[from] io::Error),
}

/// One metadata value, as typed in the file.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    U8(u8),
    I8(i8),
    U16(u16),
    I16(i16),
    U32(u32),
    I32(i32),
    U64(u64),
    I64(i64),
    F32(f32),
    F64(f64),
    Bool(bool),
    String(String),
    Array(Vec<Value>),
}

impl Value {
    /// The value as Ollama's JSON encoder writes it: numbers, booleans, strings, arrays.
    pub fn to_json(&self) -> serde_json::Value {
        use serde_json::Value as Json;
        match self {
            Value::U8(v) => Json::from(*v),
            Value::I8(v) => Json::from(*v),
            Value::U16(v) => Json::from(*v),
            Value::I16(v) => Json::from(*v),
            Value::U32(v) => Json::from(*v),
            Value::I32(v) => Json::from(*v),
            Value::U64(v) => Json::from(*v),
            Value::I64(v) => Json::from(*v),
            // Go encodes a float32 with its shortest decimal form (0.00001, not
            // 0.000009999999747378752); going through the f32's own shortest string gets the
            // same number.
            Value::F32(v) => float_json(v.to_string().parse().unwrap_or(f64::NAN)),
            Value::F64(v) => float_json(*v),
            Value::Bool(v) => Json::Bool(*v),
            Value::String(v) => Json::String(v.clone()),
            Value::Array(items) => Json::Array(items.iter().map(Value::to_json).collect()),
        }
    }

    /// The value as an unsigned integer, when it is an integer that is not negative.
    pub fn as_u64(&self) -> Option<u64> {
        match *self {
            Value::U8(v) => Some(v.into()),
            Value::U16(v) => Some(v.into()),
            Value::U32(v) => Some(v.into()),
            Value::U64(v) => Some(v),
            Value::I8(v) => u64::try_from(v).ok(),
            Value::I16(v) => u64::try_from(v).ok(),
            Value::I32(v) => u64::try_from(v).ok(),
            Value::I64(v) => u64::try_from(v).ok(),
            _ => None,
        }
    }

    /// The value as text, when it is a string.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::String(v) => Some(v),
            _ => None,
        }
    }

    /// The GGUF type id this value is written with.
    fn type_id(&self) -> u32 {
        match self {
            Value::U8(_) => value_type::U8,
            Value::I8(_) => value_type::I8,
            Value::U16(_) => value_type::U16,
            Value::I16(_) => value_type::I16,
            Value::U32(_) => value_type::U32,
            Value::I32(_) => value_type::I32,
            Value::U64(_) => value_type::U64,
            Value::I64(_) => value_type::I64,
            Value::F32(_) => value_type::F32,
            Value::F64(_) => value_type::F64,
            Value::Bool(_) => value_type::BOOL,
            Value::String(_) => value_type::STRING,
            Value::Array(_) => value_type::ARRAY,
        }
    }
}

/// A float as JSON, written the way Go writes it where that is cheap to match: integral values
/// without a fraction (`100000`, not `100000.0`). Non-finite values, which Go refuses to
/// encode, become null.
fn float_json(value: f64) -> serde_json::Value {
    // 2^63: every integral f64 below it is an exact i64.
    const I64_RANGE: f64 = 9_223_372_036_854_775_808.0;
    let integral = value.fract() == 0.0 && value.abs() < I64_RANGE;
    if integral && !(value == 0.0 && value.is_sign_negative()) {
        // Lossless: integral and within i64's range, checked above.
        serde_json::Value::from(value as i64)
    } else {
        serde_json::Value::from(value)
    }
}

/// One entry of the tensor-info table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TensorInfo {
    pub name: String,
    /// The ggml type id (`ggml_type`).
    pub kind: u32,
    /// Dimensions, innermost first, as stored in the file.
    pub shape: Vec<u64>,
}

impl TensorInfo {
    /// The type as Ollama prints it in `show` tensors (`TensorType.String()` in Ollama's
    /// `fs/ggml/type.go`), `"unknown"` for ids it does not name.
    pub fn type_name(&self) -> String {
        tensor_type_name(self.kind).to_owned()
    }

    /// Number of elements (product of the dimensions; 1 for a scalar), saturating at
    /// `u64::MAX` for shapes that could never be read from a file.
    pub fn element_count(&self) -> u64 {
        checked_element_count(&self.shape).unwrap_or(u64::MAX)
    }
}

/// The readable part of a GGUF file: header, metadata and tensor table.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Gguf {
    pub version: u32,
    /// Metadata pairs in file order (duplicates kept; [`Gguf::get`] sees the last one, as
    /// Ollama's map does).
    pub metadata: Vec<(String, Value)>,
    pub tensors: Vec<TensorInfo>,
    /// Where each tensor's data starts in the file, in bytes from the file's start, in the
    /// order of `tensors` (empty for a value not read from a file).
    pub data_offsets: Vec<u64>,
}

impl Gguf {
    /// Reads a GGUF file's header, metadata and tensor table from `reader`, which is rewound
    /// to its start. `file_len` is the total length of the file: every length in the file is
    /// checked against it, and every tensor's data must end within it.
    pub fn read<R: Read + Seek>(mut reader: R, file_len: u64) -> Result<Gguf, GgufError> {
        reader.seek(SeekFrom::Start(0))?;
        let mut source = Source {
            inner: BufReader::with_capacity(64 << 10, reader),
            position: 0,
            length: file_len,
        };

        if file_len < MAGIC.len() as u64 {
            return Err(GgufError::NotGguf);
        }
        let magic: [u8; 4] = source.array("magic")?;
        if magic == SWAPPED_MAGIC {
            return Err(GgufError::BigEndian);
        }
        if magic != MAGIC {
            return Err(GgufError::NotGguf);
        }

        let version = source.u32("version")?;
        // llama.cpp's test for a big-endian file: its small version number, read little-endian,
        // has only its high half set.
        if version != 0 && version & 0xFFFF == 0 && matches!(version.swap_bytes(), 2 | 3) {
            return Err(GgufError::BigEndian);
        }
        if !matches!(version, 2 | 3) {
            return Err(GgufError::UnsupportedVersion(version));
        }

        let tensor_count = source.u64("tensor count")?;
        let kv_count = source.u64("metadata count")?;
        source.check_count(kv_count, MIN_KV_BYTES, "metadata pairs")?;
        source.check_count(tensor_count, MIN_TENSOR_INFO_BYTES, "tensor infos")?;
        let claimed_bytes = kv_count
            .checked_mul(MIN_KV_BYTES)
            .zip(tensor_count.checked_mul(MIN_TENSOR_INFO_BYTES))
            .and_then(|(a, b)| a.checked_add(b));
        if claimed_bytes.is_none_or(|bytes| bytes > source.remaining()) {
            return Err(malformed(format!(
                "{kv_count} metadata pairs and {tensor_count} tensor infos cannot fit in the \
                 {} bytes left after the header",
                source.remaining()
            )));
        }

        let mut metadata = Vec::with_capacity(preallocation(kv_count));
        for index in 0..kv_count {
            let key = source
                .string()
                .map_err(|e| context(e, &format!("key of metadata pair #{index}")))?;
            let value = source
                .u32("value type")
                .and_then(|type_id| source.value(type_id, 0))
                .map_err(|e| context(e, &format!("metadata `{key}`")))?;
            metadata.push((key, value));
        }

        let mut tensors = Vec::with_capacity(preallocation(tensor_count));
        let mut offsets = Vec::with_capacity(preallocation(tensor_count));
        for index in 0..tensor_count {
            let name = source
                .string()
                .map_err(|e| context(e, &format!("name of tensor #{index}")))?;
            let (shape, kind, offset) = source
                .tensor_rest()
                .map_err(|e| context(e, &format!("tensor `{name}`")))?;
            tensors.push(TensorInfo { name, kind, shape });
            offsets.push(offset);
        }

        let mut gguf = Gguf {
            version,
            metadata,
            tensors,
            data_offsets: Vec::new(),
        };
        let data_start = gguf.check_tensor_extents(source.position, &offsets, file_len)?;
        // Cannot overflow: check_tensor_extents checked each start plus size.
        gguf.data_offsets = offsets.iter().map(|offset| data_start + offset).collect();
        Ok(gguf)
    }

    /// Opens and reads the GGUF file at `path`.
    pub fn open(path: &Path) -> Result<Gguf, GgufError> {
        let open_error = |source| GgufError::Open {
            path: path.to_owned(),
            source,
        };
        let file = File::open(path).map_err(open_error)?;
        let file_len = file.metadata().map_err(open_error)?.len();
        Gguf::read(file, file_len)
    }

    /// The value of metadata `key` (the last one, if the file repeats the key).
    pub fn get(&self, key: &str) -> Option<&Value> {
        self.metadata
            .iter()
            .rev()
            .find(|(name, _)| name == key)
            .map(|(_, value)| value)
    }

    /// `general.architecture`, e.g. `"llama"`.
    pub fn architecture(&self) -> Option<&str> {
        self.get("general.architecture").and_then(Value::as_str)
    }

    /// The parameter count Ollama reports: like Ollama's decoder, the sum of the tensors'
    /// element counts (its decoder overwrites `general.parameter_count` with that sum). Only a
    /// file without tensors, which Ollama would report as 0, falls back to
    /// `general.parameter_count`, so metadata-only fixtures still describe a size.
    pub fn parameter_count(&self) -> u64 {
        if self.tensors.is_empty() {
            return self
                .get("general.parameter_count")
                .and_then(Value::as_u64)
                .unwrap_or(0);
        }
        self.tensors.iter().fold(0u64, |sum, tensor| {
            sum.saturating_add(tensor.element_count())
        })
    }

    /// `general.file_type` named as Ollama's `KV.FileType().String()`: only a `u32` value
    /// greater than 0 counts, so an absent, differently typed, or 0 (all-F32) value is
    /// `"unknown"`, exactly as Ollama reports it.
    pub fn file_type_name(&self) -> String {
        match self.get("general.file_type") {
            Some(Value::U32(id)) if *id > 0 => file_type_string(*id).to_owned(),
            _ => "unknown".to_owned(),
        }
    }

    /// `<architecture>.context_length`.
    pub fn context_length(&self) -> Option<u64> {
        self.architecture_value("context_length")
    }

    /// `<architecture>.embedding_length`.
    pub fn embedding_length(&self) -> Option<u64> {
        self.architecture_value("embedding_length")
    }

    /// Ollama's `model_info` for `/api/show`: every metadata pair except `general.name` and
    /// `tokenizer.chat_template`, with `general.parameter_count` set to
    /// [`Gguf::parameter_count`] (Ollama's decoder always sets it).
    ///
    /// Without `verbose`, Ollama decodes arrays with a maximum kept size of 0, so every
    /// non-empty array encodes as `null` and only empty arrays as `[]`
    /// (`server/routes.go:getModelData`, `fs/ggml/gguf.go:newArray`; seen in the wild in
    /// ollama/ollama#10286). Keys are inserted in sorted order, which is how Go encodes a map.
    pub fn model_info(&self, verbose: bool) -> serde_json::Map<String, serde_json::Value> {
        let mut info: BTreeMap<&str, serde_json::Value> = BTreeMap::new();
        for (key, value) in &self.metadata {
            let json = match value {
                Value::Array(items) if !verbose && !items.is_empty() => serde_json::Value::Null,
                _ => value.to_json(),
            };
            info.insert(key, json);
        }
        info.insert(
            "general.parameter_count",
            serde_json::Value::from(self.parameter_count()),
        );
        info.remove("general.name");
        info.remove("tokenizer.chat_template");
        info.into_iter()
            .map(|(key, value)| (key.to_owned(), value))
            .collect()
    }

    /// `tokenizer.chat_template`, the model's Jinja chat template.
    pub fn chat_template(&self) -> Option<&str> {
        self.get("tokenizer.chat_template").and_then(Value::as_str)
    }

    fn architecture_value(&self, suffix: &str) -> Option<u64> {
        let architecture = self.architecture()?;
        self.get(&format!("{architecture}.{suffix}"))
            .and_then(Value::as_u64)
    }

    /// `general.alignment` when it is a `u32`, as Ollama reads it; 32 otherwise.
    pub fn alignment(&self) -> Result<u64, GgufError> {
        match self.get("general.alignment") {
            Some(Value::U32(0)) => Err(malformed("general.alignment is 0".to_owned())),
            Some(Value::U32(alignment)) => Ok(u64::from(*alignment)),
            _ => Ok(DEFAULT_ALIGNMENT),
        }
    }

    /// Checks that every tensor's data lies within the file, as Ollama's decoder does; this
    /// is what catches a file cut short inside its tensor data. Returns where the data
    /// section starts.
    fn check_tensor_extents(
        &self,
        header_end: u64,
        offsets: &[u64],
        file_len: u64,
    ) -> Result<u64, GgufError> {
        let alignment = self.alignment()?;
        let data_start = align_up(header_end, alignment)
            .ok_or_else(|| malformed("tensor data offset overflows".to_owned()))?;
        for (tensor, offset) in self.tensors.iter().zip(offsets) {
            let size = tensor_data_size(tensor.kind, &tensor.shape).ok_or_else(|| {
                malformed(format!(
                    "tensor `{}` of type {} with shape {:?} has no valid data size",
                    tensor.name, tensor.kind, tensor.shape
                ))
            })?;
            let end = data_start
                .checked_add(*offset)
                .and_then(|start| start.checked_add(size));
            match end {
                Some(end) if end <= file_len => {}
                _ => {
                    return Err(malformed(format!(
                        "data of tensor `{}` ({size} bytes at offset {offset} after byte \
                         {data_start}) runs past the end of the file ({file_len} bytes)",
                        tensor.name
                    )))
                }
            }
        }
        Ok(data_start)
    }
}

/// Ollama's `format.HumanNumber`: `"135M"`, `"22.57M"`, `"7.6B"`, `"1K"`, `"999"`.
pub fn human_number(n: u64) -> String {
    const THOUSAND: u64 = 1_000;
    const MILLION: u64 = 1_000_000;
    const BILLION: u64 = 1_000_000_000;
    // Go's %.Nf and Rust's {:.N} both round the exact binary value to nearest, ties to even.
    let scaled = |unit: u64| n as f64 / unit as f64;
    if n >= BILLION {
        let number = scaled(BILLION);
        if number == number.floor() {
            format!("{number:.0}B")
        } else {
            format!("{number:.1}B")
        }
    } else if n >= MILLION {
        let number = scaled(MILLION);
        if number == number.floor() {
            format!("{number:.0}M")
        } else {
            format!("{number:.2}M")
        }
    } else if n >= THOUSAND {
        format!("{:.0}K", scaled(THOUSAND))
    } else {
        n.to_string()
    }
}

/// Ollama's `FileType.String()` (`fs/ggml/type.go`) for a `general.file_type` id.
pub fn file_type_string(id: u32) -> &'static str {
    match id {
        0 => "F32",
        1 => "F16",
        2 => "Q4_0",
        3 => "Q4_1",
        7 => "Q8_0",
        8 => "Q5_0",
        9 => "Q5_1",
        10 => "Q2_K",
        11 => "Q3_K_S",
        12 => "Q3_K_M",
        13 => "Q3_K_L",
        14 => "Q4_K_S",
        15 => "Q4_K_M",
        16 => "Q5_K_S",
        17 => "Q5_K_M",
        18 => "Q6_K",
        19 => "IQ2_XXS",
        20 => "IQ2_XS",
        21 => "Q2_K_S",
        22 => "IQ3_XS",
        23 => "IQ3_XXS",
        24 => "IQ1_S",
        25 => "IQ4_NL",
        26 => "IQ3_S",
        27 => "IQ3_M",
        28 => "IQ2_S",
        29 => "IQ2_M",
        30 => "IQ4_XS",
        31 => "IQ1_M",
        32 => "BF16",
        36 => "TQ1_0",
        37 => "TQ2_0",
        38 => "MXFP4_MOE",
        39 => "NVFP4",
        40 => "Q1_0",
        _ => "unknown",
    }
}

/// Ollama's `TensorType.String()` (`fs/ggml/type.go`) for a ggml type id.
fn tensor_type_name(kind: u32) -> &'static str {
    match kind {
        0 => "F32",
        1 => "F16",
        2 => "Q4_0",
        3 => "Q4_1",
        6 => "Q5_0",
        7 => "Q5_1",
        8 => "Q8_0",
        9 => "Q8_1",
        10 => "Q2_K",
        11 => "Q3_K",
        12 => "Q4_K",
        13 => "Q5_K",
        14 => "Q6_K",
        15 => "Q8_K",
        16 => "IQ2_XXS",
        17 => "IQ2_XS",
        18 => "IQ3_XXS",
        19 => "IQ1_S",
        20 => "IQ4_NL",
        21 => "IQ3_S",
        22 => "IQ2_S",
        23 => "IQ4_XS",
        24 => "I8",
        25 => "I16",
        26 => "I32",
        27 => "I64",
        28 => "F64",
        29 => "IQ1_M",
        30 => "BF16",
        34 => "TQ1_0",
        35 => "TQ2_0",
        39 => "MXFP4",
        40 => "NVFP4",
        41 => "Q1_0",
        _ => "unknown",
    }
}

/// Elements per block and bytes per block of a ggml type (Ollama's `BlockSize`/`TypeSize`,
/// plus the ternary types from ggml's `ggml-common.h`); `None` for ids without a layout.
fn block_layout(kind: u32) -> Option<(u64, u64)> {
    let layout = match kind {
        0 => (1, 4),      // F32
        1 => (1, 2),      // F16
        2 => (32, 18),    // Q4_0
        3 => (32, 20),    // Q4_1
        6 => (32, 22),    // Q5_0
        7 => (32, 24),    // Q5_1
        8 => (32, 34),    // Q8_0
        9 => (32, 36),    // Q8_1
        10 => (256, 84),  // Q2_K
        11 => (256, 110), // Q3_K
        12 => (256, 144), // Q4_K
        13 => (256, 176), // Q5_K
        14 => (256, 210), // Q6_K
        15 => (256, 292), // Q8_K
        16 => (256, 66),  // IQ2_XXS
        17 => (256, 74),  // IQ2_XS
        18 => (256, 98),  // IQ3_XXS
        19 => (256, 50),  // IQ1_S
        20 => (32, 18),   // IQ4_NL
        21 => (256, 110), // IQ3_S
        22 => (256, 82),  // IQ2_S
        23 => (256, 136), // IQ4_XS
        24 => (1, 1),     // I8
        25 => (1, 2),     // I16
        26 => (1, 4),     // I32
        27 => (1, 8),     // I64
        28 => (1, 8),     // F64
        29 => (256, 56),  // IQ1_M
        30 => (1, 2),     // BF16
        34 => (256, 54),  // TQ1_0
        35 => (256, 66),  // TQ2_0
        39 => (32, 17),   // MXFP4
        40 => (64, 36),   // NVFP4
        41 => (128, 18),  // Q1_0
        _ => return None,
    };
    Some(layout)
}

/// Bytes of data a tensor occupies, following Ollama's checked `Tensor.size()`: the first
/// dimension must be a whole number of blocks. `None` for unknown types and overflows.
pub fn tensor_data_size(kind: u32, shape: &[u64]) -> Option<u64> {
    let (block_elements, block_bytes) = block_layout(kind)?;
    let elements = checked_element_count(shape)?;
    let row = shape.first().copied().unwrap_or(1);
    if row % block_elements != 0 {
        return None;
    }
    (elements / block_elements).checked_mul(block_bytes)
}

fn checked_element_count(shape: &[u64]) -> Option<u64> {
    shape
        .iter()
        .try_fold(1u64, |count, &dimension| count.checked_mul(dimension))
}

fn align_up(position: u64, alignment: u64) -> Option<u64> {
    let remainder = position % alignment;
    if remainder == 0 {
        Some(position)
    } else {
        position.checked_add(alignment - remainder)
    }
}

fn preallocation(count: u64) -> usize {
    // Lossless: the minimum is at most PREALLOCATION_LIMIT.
    count.min(PREALLOCATION_LIMIT) as usize
}

fn malformed(message: String) -> GgufError {
    GgufError::Malformed(message)
}

/// Prefixes a malformed-file message with where in the file it happened.
fn context(error: GgufError, place: &str) -> GgufError {
    match error {
        GgufError::Malformed(message) => GgufError::Malformed(format!("{place}: {message}")),
        other => other,
    }
}

/// A buffered reader that knows its position and the file's length, so that every claimed
/// length is checked before it is read or allocated.
struct Source<R> {
    inner: BufReader<R>,
    position: u64,
    length: u64,
}

impl<R: Read> Source<R> {
    fn remaining(&self) -> u64 {
        self.length.saturating_sub(self.position)
    }

    /// Fails unless `needed` more bytes lie within the file.
    fn ensure(&self, needed: u64, what: &str) -> Result<(), GgufError> {
        if needed > self.remaining() {
            return Err(malformed(format!(
                "{what} at byte {} needs {needed} bytes, but the file ends at byte {}",
                self.position, self.length
            )));
        }
        Ok(())
    }

    /// Fails unless `count` items of at least `min_bytes` each can fit in the rest of the file.
    fn check_count(&self, count: u64, min_bytes: u64, what: &str) -> Result<(), GgufError> {
        match count.checked_mul(min_bytes) {
            Some(bytes) if bytes <= self.remaining() => Ok(()),
            _ => Err(malformed(format!(
                "{count} {what} claimed at byte {} cannot fit in the {} bytes left",
                self.position,
                self.remaining()
            ))),
        }
    }

    fn fill(&mut self, buffer: &mut [u8], what: &str) -> Result<(), GgufError> {
        self.ensure(buffer.len() as u64, what)?;
        match self.inner.read_exact(buffer) {
            Ok(()) => {
                self.position += buffer.len() as u64;
                Ok(())
            }
            // The stated file length was longer than the data behind the reader.
            Err(error) if error.kind() == io::ErrorKind::UnexpectedEof => Err(malformed(format!(
                "{what} at byte {}: the data ends before the stated file length of {} bytes",
                self.position, self.length
            ))),
            Err(error) => Err(GgufError::Io(error)),
        }
    }

    fn array<const N: usize>(&mut self, what: &str) -> Result<[u8; N], GgufError> {
        let mut bytes = [0u8; N];
        self.fill(&mut bytes, what)?;
        Ok(bytes)
    }

    fn u32(&mut self, what: &str) -> Result<u32, GgufError> {
        self.array(what).map(u32::from_le_bytes)
    }

    fn u64(&mut self, what: &str) -> Result<u64, GgufError> {
        self.array(what).map(u64::from_le_bytes)
    }

    /// A length-prefixed string; invalid UTF-8 is replaced with U+FFFD, which is what Ollama's
    /// JSON encoder makes of it.
    fn string(&mut self) -> Result<String, GgufError> {
        let length = self.u64("string length")?;
        if length > MAX_STRING_LENGTH {
            return Err(malformed(format!(
                "string length {length} at byte {} exceeds the maximum of {MAX_STRING_LENGTH}",
                self.position
            )));
        }
        self.ensure(length, "string")?;
        // Lossless: the length is at most MAX_STRING_LENGTH.
        let mut bytes = vec![0u8; length as usize];
        self.fill(&mut bytes, "string")?;
        Ok(String::from_utf8(bytes)
            .unwrap_or_else(|error| String::from_utf8_lossy(error.as_bytes()).into_owned()))
    }

    fn value(&mut self, type_id: u32, depth: usize) -> Result<Value, GgufError> {
        let value = match type_id {
            value_type::U8 => Value::U8(u8::from_le_bytes(self.array("u8")?)),
            value_type::I8 => Value::I8(i8::from_le_bytes(self.array("i8")?)),
            value_type::U16 => Value::U16(u16::from_le_bytes(self.array("u16")?)),
            value_type::I16 => Value::I16(i16::from_le_bytes(self.array("i16")?)),
            value_type::U32 => Value::U32(self.u32("u32")?),
            value_type::I32 => Value::I32(i32::from_le_bytes(self.array("i32")?)),
            value_type::U64 => Value::U64(self.u64("u64")?),
            value_type::I64 => Value::I64(i64::from_le_bytes(self.array("i64")?)),
            value_type::F32 => Value::F32(f32::from_le_bytes(self.array("f32")?)),
            value_type::F64 => Value::F64(f64::from_le_bytes(self.array("f64")?)),
            value_type::BOOL => Value::Bool(self.array::<1>("bool")?[0] != 0),
            value_type::STRING => Value::String(self.string()?),
            value_type::ARRAY => self.array_value(depth)?,
            unknown => {
                return Err(malformed(format!(
                    "unknown value type {unknown} before byte {}",
                    self.position
                )))
            }
        };
        Ok(value)
    }

    fn array_value(&mut self, depth: usize) -> Result<Value, GgufError> {
        if depth >= MAX_ARRAY_NESTING {
            return Err(malformed(format!(
                "arrays nested deeper than {MAX_ARRAY_NESTING} levels at byte {}",
                self.position
            )));
        }
        let element_type = self.u32("array element type")?;
        let count = self.u64("array length")?;
        let min_element_bytes = match element_type {
            value_type::U8 | value_type::I8 | value_type::BOOL => 1,
            value_type::U16 | value_type::I16 => 2,
            value_type::U32 | value_type::I32 | value_type::F32 => 4,
            value_type::U64 | value_type::I64 | value_type::F64 | value_type::STRING => 8,
            value_type::ARRAY => 12,
            unknown => {
                return Err(malformed(format!(
                    "unknown array element type {unknown} before byte {}",
                    self.position
                )))
            }
        };
        if count > MAX_ARRAY_LENGTH {
            return Err(malformed(format!(
                "array length {count} at byte {} exceeds the maximum of {MAX_ARRAY_LENGTH}",
                self.position
            )));
        }
        self.check_count(count, min_element_bytes, "array elements")?;
        let mut items = Vec::with_capacity(preallocation(count));
        for _ in 0..count {
            items.push(self.value(element_type, depth + 1)?);
        }
        Ok(Value::Array(items))
    }

    /// The part of a tensor info after its name: shape, ggml type and data offset.
    fn tensor_rest(&mut self) -> Result<(Vec<u64>, u32, u64), GgufError> {
        let dimensions = self.u32("dimension count")?;
        if dimensions > MAX_TENSOR_DIMENSIONS {
            return Err(malformed(format!(
                "{dimensions} dimensions exceed the maximum of {MAX_TENSOR_DIMENSIONS}"
            )));
        }
        let mut shape = Vec::with_capacity(dimensions as usize);
        for _ in 0..dimensions {
            shape.push(self.u64("dimension")?);
        }
        let kind = self.u32("tensor type")?;
        let offset = self.u64("tensor data offset")?;
        if checked_element_count(&shape).is_none() {
            return Err(malformed(format!(
                "element count of shape {shape:?} overflows"
            )));
        }
        Ok((shape, kind, offset))
    }
}

/// Where [`write_header`] placed the tensor data: the data section starts right after the
/// header (which it pads to the alignment), and each tensor at its offset within it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DataLayout {
    /// Bytes written by [`write_header`], padding included: where the data section starts.
    pub data_start: u64,
    /// Each tensor's `(offset within the data section, size in bytes)`, in order.
    pub tensors: Vec<(u64, u64)>,
}

/// Writes a little-endian GGUF v3 header: `metadata` in order, then one tensor info per
/// `(name, ggml type id, shape)`, each tensor's data placed at the next multiple of
/// `general.alignment` (a `u32` in `metadata`) or 32, then padding up to the data section.
/// The caller writes the tensor data after it, as the returned layout says.
///
/// Fails with `InvalidInput` for an array whose elements differ in type, or a tensor whose
/// type has no known layout or whose first dimension is not a whole number of blocks.
pub fn write_header<W: Write, K: AsRef<str>, N: AsRef<str>>(
    w: &mut W,
    metadata: &[(K, Value)],
    tensors: &[(N, u32, Vec<u64>)],
) -> io::Result<DataLayout> {
    let invalid = |message: String| io::Error::new(io::ErrorKind::InvalidInput, message);
    let alignment = metadata
        .iter()
        .rev()
        .find(|(key, _)| key.as_ref() == "general.alignment")
        .and_then(|(_, value)| match value {
            Value::U32(alignment) if *alignment > 0 => Some(u64::from(*alignment)),
            _ => None,
        })
        .unwrap_or(DEFAULT_ALIGNMENT);

    let mut header = Vec::new();
    header.extend_from_slice(&MAGIC);
    header.extend_from_slice(&3u32.to_le_bytes());
    header.extend_from_slice(&(tensors.len() as u64).to_le_bytes());
    header.extend_from_slice(&(metadata.len() as u64).to_le_bytes());
    for (key, value) in metadata {
        put_string(&mut header, key.as_ref());
        header.extend_from_slice(&value.type_id().to_le_bytes());
        put_value(&mut header, value).map_err(invalid)?;
    }

    let overflow = || invalid("tensor data offsets overflow".to_owned());
    let mut placed = Vec::with_capacity(tensors.len());
    let mut next_offset = 0u64;
    for (name, kind, shape) in tensors {
        let name = name.as_ref();
        let size = tensor_data_size(*kind, shape).ok_or_else(|| {
            invalid(format!(
                "tensor `{name}` of type {kind} with shape {shape:?} has no valid data size"
            ))
        })?;
        let offset = align_up(next_offset, alignment).ok_or_else(overflow)?;
        next_offset = offset.checked_add(size).ok_or_else(overflow)?;
        placed.push((offset, size));

        put_string(&mut header, name);
        header.extend_from_slice(&(shape.len() as u32).to_le_bytes());
        for dimension in shape {
            header.extend_from_slice(&dimension.to_le_bytes());
        }
        header.extend_from_slice(&kind.to_le_bytes());
        header.extend_from_slice(&offset.to_le_bytes());
    }
    w.write_all(&header)?;
    let header_len = header.len() as u64;
    let data_start = if tensors.is_empty() {
        header_len
    } else {
        let start = align_up(header_len, alignment).ok_or_else(overflow)?;
        write_zeros(w, start - header_len)?;
        start
    };
    Ok(DataLayout {
        data_start,
        tensors: placed,
    })
}

/// Writes a minimal valid little-endian GGUF v3 file: [`write_header`], then zeroed tensor
/// data. Meant for test fixtures.
pub fn write_test_gguf<W: Write>(
    mut w: W,
    metadata: &[(&str, Value)],
    tensors: &[(&str, u32, Vec<u64>)],
) -> io::Result<()> {
    let layout = write_header(&mut w, metadata, tensors)?;
    let mut written = 0u64;
    for (offset, size) in layout.tensors {
        write_zeros(&mut w, offset - written)?;
        write_zeros(&mut w, size)?;
        written = offset + size;
    }
    w.flush()
}

fn put_string(out: &mut Vec<u8>, text: &str) {
    out.extend_from_slice(&(text.len() as u64).to_le_bytes());
    out.extend_from_slice(text.as_bytes());
}

fn put_value(out: &mut Vec<u8>, value: &Value) -> Result<(), String> {
    match value {
        Value::U8(v) => out.extend_from_slice(&v.to_le_bytes()),
        Value::I8(v) => out.extend_from_slice(&v.to_le_bytes()),
        Value::U16(v) => out.extend_from_slice(&v.to_le_bytes()),
        Value::I16(v) => out.extend_from_slice(&v.to_le_bytes()),
        Value::U32(v) => out.extend_from_slice(&v.to_le_bytes()),
        Value::I32(v) => out.extend_from_slice(&v.to_le_bytes()),
        Value::U64(v) => out.extend_from_slice(&v.to_le_bytes()),
        Value::I64(v) => out.extend_from_slice(&v.to_le_bytes()),
        Value::F32(v) => out.extend_from_slice(&v.to_le_bytes()),
        Value::F64(v) => out.extend_from_slice(&v.to_le_bytes()),
        Value::Bool(v) => out.push(u8::from(*v)),
        Value::String(v) => put_string(out, v),
        Value::Array(items) => {
            let element_type = items.first().map_or(value_type::U8, Value::type_id);
            if items.iter().any(|item| item.type_id() != element_type) {
                return Err("array elements must all have the same type".to_owned());
            }
            out.extend_from_slice(&element_type.to_le_bytes());
            out.extend_from_slice(&(items.len() as u64).to_le_bytes());
            for item in items {
                put_value(out, item)?;
            }
        }
    }
    Ok(())
}

pub fn write_zeros<W: Write>(w: &mut W, mut count: u64) -> io::Result<()> {
    const ZEROS: [u8; 8192] = [0; 8192];
    while count > 0 {
        // Lossless: the minimum is at most ZEROS.len().
        let chunk = count.min(ZEROS.len() as u64) as usize;
        w.write_all(&ZEROS[..chunk])?;
        count -= chunk as u64;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Cursor;

    const Q4_0: u32 = 2;
    const F32: u32 = 0;

    fn fixture_metadata() -> Vec<(&'static str, Value)> {
        vec![
            ("general.architecture", Value::String("llama".into())),
            ("general.name", Value::String("Tiny".into())),
            ("general.file_type", Value::U32(3)),
            ("llama.context_length", Value::U32(8192)),
            ("llama.embedding_length", Value::U64(576)),
            ("llama.rope.freq_base", Value::F32(100_000.0)),
            ("llama.attention.layer_norm_rms_epsilon", Value::F32(1e-5)),
            ("test.u8", Value::U8(200)),
            ("test.i8", Value::I8(-5)),
            ("test.u16", Value::U16(60_000)),
            ("test.i16", Value::I16(-30_000)),
            ("test.i32", Value::I32(-7)),
            ("test.i64", Value::I64(-9_000_000_000)),
            ("test.f64", Value::F64(0.25)),
            ("test.bool", Value::Bool(true)),
            (
                "tokenizer.ggml.tokens",
                Value::Array(
                    ["a", "b", "c", "d", "e", "f"]
                        .map(|t| Value::String(t.into()))
                        .into(),
                ),
            ),
            (
                "tokenizer.ggml.scores",
                Value::Array(vec![Value::F32(0.5), Value::F32(-1.0)]),
            ),
            ("test.empty", Value::Array(vec![])),
            (
                "test.nested",
                Value::Array(vec![
                    Value::Array(vec![Value::U8(1)]),
                    Value::Array(vec![Value::String("x".into())]),
                ]),
            ),
            (
                "tokenizer.chat_template",
                Value::String("{{ messages }}".into()),
            ),
        ]
    }

    fn fixture_tensors() -> Vec<(&'static str, u32, Vec<u64>)> {
        vec![
            ("token_embd.weight", Q4_0, vec![64, 10]),
            ("output_norm.weight", F32, vec![3]),
            ("blk.0.attn_q.weight", Q4_0, vec![32, 2]),
        ]
    }

    fn fixture_bytes() -> Vec<u8> {
        let mut bytes = Vec::new();
        write_test_gguf(&mut bytes, &fixture_metadata(), &fixture_tensors()).unwrap();
        bytes
    }

    fn read_bytes(bytes: &[u8]) -> Result<Gguf, GgufError> {
        Gguf::read(Cursor::new(bytes), bytes.len() as u64)
    }

    fn malformed_message(bytes: &[u8]) -> String {
        match read_bytes(bytes) {
            Err(GgufError::Malformed(message)) => message,
            other => panic!("expected a malformed-file error, got {other:?}"),
        }
    }

    /// Hand-built headers for the hostile cases.
    fn header(version: u32, tensor_count: u64, kv_count: u64) -> Vec<u8> {
        let mut bytes = b"GGUF".to_vec();
        bytes.extend_from_slice(&version.to_le_bytes());
        bytes.extend_from_slice(&tensor_count.to_le_bytes());
        bytes.extend_from_slice(&kv_count.to_le_bytes());
        bytes
    }

    fn pad(mut bytes: Vec<u8>, extra: usize) -> Vec<u8> {
        bytes.resize(bytes.len() + extra, 0);
        bytes
    }

    #[test]
    fn round_trips_metadata_and_tensors_written_by_the_test_writer() {
        let gguf = read_bytes(&fixture_bytes()).unwrap();
        assert_eq!(gguf.version, 3);
        let expected: Vec<(String, Value)> = fixture_metadata()
            .into_iter()
            .map(|(key, value)| (key.to_owned(), value))
            .collect();
        assert_eq!(gguf.metadata, expected);
        let tensors: Vec<TensorInfo> = fixture_tensors()
            .into_iter()
            .map(|(name, kind, shape)| TensorInfo {
                name: name.to_owned(),
                kind,
                shape,
            })
            .collect();
        assert_eq!(gguf.tensors, tensors);
    }

    #[test]
    fn derives_what_ollama_shows_from_the_metadata() {
        let gguf = read_bytes(&fixture_bytes()).unwrap();
        assert_eq!(gguf.architecture(), Some("llama"));
        assert_eq!(gguf.file_type_name(), "Q4_1");
        assert_eq!(gguf.context_length(), Some(8192));
        assert_eq!(gguf.embedding_length(), Some(576));
        assert_eq!(gguf.chat_template(), Some("{{ messages }}"));
        assert_eq!(gguf.parameter_count(), 640 + 3 + 64);
        assert_eq!(gguf.tensors[0].type_name(), "Q4_0");
        assert_eq!(gguf.tensors[1].type_name(), "F32");
        assert_eq!(gguf.tensors[0].element_count(), 640);
    }

    #[test]
    fn writes_tensor_data_aligned_and_ending_at_the_end_of_the_file() {
        let bytes = fixture_bytes();
        // Q4_0 [64,10]: 20 blocks of 18 bytes = 360; F32 [3] = 12 at offset 384; Q4_0 [32,2]:
        // 36 bytes at offset 416.
        let header_end = bytes.len() - (416 + 36);
        assert_eq!(header_end % 32, 0);
        let gguf = read_bytes(&bytes).unwrap();
        let mut longer = bytes.clone();
        longer.push(0);
        assert_eq!(read_bytes(&longer).unwrap(), gguf);
    }

    #[test]
    fn honours_general_alignment_when_writing_and_reading() {
        let metadata = [("general.alignment", Value::U32(64))];
        let tensors = [("a", F32, vec![3]), ("b", F32, vec![1])];
        let mut bytes = Vec::new();
        write_test_gguf(&mut bytes, &metadata, &tensors).unwrap();
        assert_eq!(bytes.len() % 64, 4);
        assert!(read_bytes(&bytes).is_ok());
        assert!(read_bytes(&bytes[..bytes.len() - 1]).is_err());
    }

    #[test]
    fn rejects_a_zero_alignment() {
        let mut bytes = Vec::new();
        write_test_gguf(&mut bytes, &[("general.alignment", Value::U32(0))], &[]).unwrap();
        assert!(malformed_message(&bytes).contains("alignment"));
    }

    #[test]
    fn rewinds_a_reader_that_is_not_at_the_start() {
        let bytes = fixture_bytes();
        let mut cursor = Cursor::new(bytes.as_slice());
        cursor.set_position(17);
        assert!(Gguf::read(cursor, bytes.len() as u64).is_ok());
    }

    #[test]
    fn get_sees_the_last_of_repeated_keys() {
        let mut bytes = Vec::new();
        let metadata = [("k", Value::U32(1)), ("k", Value::U32(2))];
        write_test_gguf(&mut bytes, &metadata, &[]).unwrap();
        let gguf = read_bytes(&bytes).unwrap();
        assert_eq!(gguf.get("k"), Some(&Value::U32(2)));
        assert_eq!(gguf.metadata.len(), 2);
        assert_eq!(gguf.get("missing"), None);
    }

    #[test]
    fn reads_version_2_files() {
        let mut bytes = fixture_bytes();
        bytes[4..8].copy_from_slice(&2u32.to_le_bytes());
        assert_eq!(read_bytes(&bytes).unwrap().version, 2);
    }

    #[test]
    fn rejects_an_empty_file_as_not_gguf() {
        assert!(matches!(read_bytes(&[]), Err(GgufError::NotGguf)));
        assert!(matches!(read_bytes(b"GGU"), Err(GgufError::NotGguf)));
    }

    #[test]
    fn rejects_a_wrong_magic_with_ollamas_message() {
        let mut bytes = fixture_bytes();
        bytes[0] = b'g';
        let error = read_bytes(&bytes).unwrap_err();
        assert!(matches!(error, GgufError::NotGguf));
        assert_eq!(error.to_string(), "supplied file was not in GGUF format");
        assert!(matches!(
            read_bytes(b"PK\x03\x04 not a model at all"),
            Err(GgufError::NotGguf)
        ));
    }

    #[test]
    fn rejects_big_endian_files() {
        let mut swapped_magic = b"FUGG".to_vec();
        swapped_magic.extend_from_slice(&3u32.to_be_bytes());
        assert!(matches!(
            read_bytes(&swapped_magic),
            Err(GgufError::BigEndian)
        ));
        let mut big_endian_version = b"GGUF".to_vec();
        big_endian_version.extend_from_slice(&3u32.to_be_bytes());
        big_endian_version.extend_from_slice(&[0; 16]);
        assert!(matches!(
            read_bytes(&big_endian_version),
            Err(GgufError::BigEndian)
        ));
    }

    #[test]
    fn rejects_versions_other_than_2_and_3() {
        for version in [0u32, 1, 4, 0xFFFF_FFFF] {
            let bytes = pad(header(version, 0, 0), 64);
            match read_bytes(&bytes) {
                Err(error @ GgufError::UnsupportedVersion(found)) => {
                    assert_eq!(found, version);
                    assert!(error.to_string().contains(&version.to_string()));
                }
                other => panic!("version {version}: expected an error, got {other:?}"),
            }
        }
    }

    #[test]
    fn rejects_every_truncated_prefix_of_a_valid_file() {
        let bytes = fixture_bytes();
        for length in 0..bytes.len() {
            assert!(
                read_bytes(&bytes[..length]).is_err(),
                "prefix of {length} bytes was accepted"
            );
        }
        assert!(read_bytes(&bytes).is_ok());
    }

    #[test]
    fn survives_random_corruption_without_panicking() {
        let original = fixture_bytes();
        // xorshift64: deterministic, no dependency.
        let mut state = 0x9E37_79B9_7F4A_7C15u64;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        for _ in 0..5_000 {
            let mut bytes = original.clone();
            for _ in 0..1 + next() % 4 {
                let index = (next() % bytes.len() as u64) as usize;
                bytes[index] = next() as u8;
            }
            let cut = bytes.len() - (next() % 8) as usize;
            let _ = read_bytes(&bytes[..cut]);
        }
    }

    #[test]
    fn reports_a_stated_length_longer_than_the_data_as_malformed() {
        let bytes = fixture_bytes();
        let cut = &bytes[..100];
        let error = Gguf::read(Cursor::new(cut), bytes.len() as u64).unwrap_err();
        assert!(matches!(error, GgufError::Malformed(_)), "{error:?}");
    }

    #[test]
    fn rejects_a_huge_string_length_without_allocating_it() {
        let mut bytes = header(3, 0, 1);
        bytes.extend_from_slice(&u64::MAX.to_le_bytes());
        let message = malformed_message(&pad(bytes, 32));
        assert!(message.contains("string length"), "{message}");

        // Within the cap but past the end of the file.
        let mut bytes = header(3, 0, 1);
        bytes.extend_from_slice(&1_000_000u64.to_le_bytes());
        let message = malformed_message(&pad(bytes, 32));
        assert!(message.contains("file ends"), "{message}");
    }

    #[test]
    fn rejects_a_huge_array_count_without_allocating_it() {
        for count in [u64::MAX, u64::MAX / 8, MAX_ARRAY_LENGTH, 1_000] {
            let mut bytes = header(3, 0, 1);
            put_string(&mut bytes, "tokenizer.ggml.tokens");
            bytes.extend_from_slice(&value_type::ARRAY.to_le_bytes());
            bytes.extend_from_slice(&value_type::STRING.to_le_bytes());
            bytes.extend_from_slice(&count.to_le_bytes());
            let message = malformed_message(&pad(bytes, 64));
            assert!(message.contains("tokenizer.ggml.tokens"), "{message}");
        }
    }

    #[test]
    fn rejects_huge_tensor_and_metadata_counts_without_allocating_them() {
        for (tensors, pairs) in [(u64::MAX, 0), (0, u64::MAX), (1 << 40, 1 << 40), (100, 0)] {
            let message = malformed_message(&pad(header(3, tensors, pairs), 256));
            assert!(message.contains("cannot fit"), "{message}");
        }
    }

    #[test]
    fn rejects_an_unknown_value_type() {
        let mut bytes = header(3, 0, 1);
        put_string(&mut bytes, "general.weird");
        bytes.extend_from_slice(&13u32.to_le_bytes());
        let message = malformed_message(&pad(bytes, 16));
        assert!(message.contains("unknown value type 13"), "{message}");
        assert!(message.contains("general.weird"), "{message}");
    }

    #[test]
    fn rejects_an_unknown_array_element_type() {
        let mut bytes = header(3, 0, 1);
        put_string(&mut bytes, "k");
        bytes.extend_from_slice(&value_type::ARRAY.to_le_bytes());
        bytes.extend_from_slice(&99u32.to_le_bytes());
        bytes.extend_from_slice(&1u64.to_le_bytes());
        let message = malformed_message(&pad(bytes, 16));
        assert!(
            message.contains("unknown array element type 99"),
            "{message}"
        );
    }

    #[test]
    fn rejects_arrays_nested_too_deeply() {
        let mut bytes = header(3, 0, 1);
        put_string(&mut bytes, "k");
        bytes.extend_from_slice(&value_type::ARRAY.to_le_bytes());
        for _ in 0..10 {
            bytes.extend_from_slice(&value_type::ARRAY.to_le_bytes());
            bytes.extend_from_slice(&1u64.to_le_bytes());
        }
        let message = malformed_message(&pad(bytes, 64));
        assert!(message.contains("nested"), "{message}");
    }

    #[test]
    fn replaces_invalid_utf8_instead_of_failing() {
        let mut bytes = header(3, 0, 1);
        bytes.extend_from_slice(&1u64.to_le_bytes());
        bytes.push(b'k');
        bytes.extend_from_slice(&value_type::STRING.to_le_bytes());
        bytes.extend_from_slice(&3u64.to_le_bytes());
        bytes.extend_from_slice(&[b'a', 0xFF, b'b']);
        let gguf = read_bytes(&bytes).unwrap();
        assert_eq!(gguf.get("k").and_then(Value::as_str), Some("a\u{FFFD}b"));
    }

    #[test]
    fn rejects_tensors_with_too_many_dimensions() {
        let mut bytes = header(3, 1, 0);
        put_string(&mut bytes, "t");
        bytes.extend_from_slice(&9u32.to_le_bytes());
        let message = malformed_message(&pad(bytes, 256));
        assert!(message.contains("9 dimensions"), "{message}");
    }

    #[test]
    fn rejects_tensor_shapes_whose_element_count_overflows() {
        let mut bytes = header(3, 1, 0);
        put_string(&mut bytes, "t");
        bytes.extend_from_slice(&2u32.to_le_bytes());
        bytes.extend_from_slice(&u64::MAX.to_le_bytes());
        bytes.extend_from_slice(&2u64.to_le_bytes());
        bytes.extend_from_slice(&F32.to_le_bytes());
        bytes.extend_from_slice(&0u64.to_le_bytes());
        let message = malformed_message(&pad(bytes, 64));
        assert!(message.contains("overflows"), "{message}");
    }

    #[test]
    fn rejects_tensors_whose_data_lies_past_the_end_of_the_file() {
        let mut bytes = header(3, 1, 0);
        put_string(&mut bytes, "t");
        bytes.extend_from_slice(&1u32.to_le_bytes());
        bytes.extend_from_slice(&4u64.to_le_bytes());
        bytes.extend_from_slice(&F32.to_le_bytes());
        bytes.extend_from_slice(&u64::MAX.to_le_bytes());
        let message = malformed_message(&pad(bytes, 64));
        assert!(message.contains("past the end"), "{message}");
    }

    #[test]
    fn rejects_tensors_of_unknown_type() {
        let mut bytes = header(3, 1, 0);
        put_string(&mut bytes, "t");
        bytes.extend_from_slice(&1u32.to_le_bytes());
        bytes.extend_from_slice(&4u64.to_le_bytes());
        bytes.extend_from_slice(&4u32.to_le_bytes());
        bytes.extend_from_slice(&0u64.to_le_bytes());
        let message = malformed_message(&pad(bytes, 64));
        assert!(message.contains("no valid data size"), "{message}");
    }

    #[test]
    fn writer_refuses_what_it_cannot_encode() {
        let mixed = [("k", Value::Array(vec![Value::U8(1), Value::I8(1)]))];
        assert!(write_test_gguf(Vec::new(), &mixed, &[]).is_err());
        assert!(write_test_gguf(Vec::new(), &[], &[("t", 99, vec![1])]).is_err());
        assert!(write_test_gguf(Vec::new(), &[], &[("t", Q4_0, vec![31])]).is_err());
    }

    #[test]
    fn names_file_types_as_ollama_does() {
        let cases = [
            (0, "F32"),
            (1, "F16"),
            (2, "Q4_0"),
            (3, "Q4_1"),
            (4, "unknown"),
            (7, "Q8_0"),
            (15, "Q4_K_M"),
            (14, "Q4_K_S"),
            (18, "Q6_K"),
            (32, "BF16"),
            (38, "MXFP4_MOE"),
            (40, "Q1_0"),
            (41, "unknown"),
            (1024, "unknown"),
        ];
        for (id, name) in cases {
            assert_eq!(file_type_string(id), name, "file type {id}");
        }
    }

    #[test]
    fn file_type_name_follows_ollamas_u32_and_nonzero_rule() {
        let name_for = |value: Option<Value>| {
            let mut metadata = vec![];
            if let Some(value) = value {
                metadata.push(("general.file_type".to_owned(), value));
            }
            Gguf {
                version: 3,
                metadata,
                ..Gguf::default()
            }
            .file_type_name()
        };
        assert_eq!(name_for(Some(Value::U32(15))), "Q4_K_M");
        assert_eq!(name_for(Some(Value::U32(1))), "F16");
        assert_eq!(name_for(Some(Value::U32(0))), "unknown");
        assert_eq!(name_for(Some(Value::U64(15))), "unknown");
        assert_eq!(name_for(None), "unknown");
    }

    #[test]
    fn names_tensor_types_as_ollama_does() {
        let name = |kind| {
            TensorInfo {
                name: String::new(),
                kind,
                shape: vec![],
            }
            .type_name()
        };
        let cases = [
            (0, "F32"),
            (1, "F16"),
            (2, "Q4_0"),
            (3, "Q4_1"),
            (4, "unknown"),
            (8, "Q8_0"),
            (12, "Q4_K"),
            (14, "Q6_K"),
            (28, "F64"),
            (30, "BF16"),
            (39, "MXFP4"),
            (41, "Q1_0"),
            (42, "unknown"),
        ];
        for (kind, expected) in cases {
            assert_eq!(name(kind), expected, "tensor type {kind}");
        }
    }

    #[test]
    fn human_number_matches_ollamas_format_tests() {
        let cases = [
            (0, "0"),
            (999, "999"),
            (1000, "1K"),
            (1001, "1K"),
            (1_000_000, "1M"),
            (125_000_000, "125M"),
            (500_500_000, "500.50M"),
            (500_550_000, "500.55M"),
            (1_000_000_000, "1B"),
            (2_800_000_000, "2.8B"),
            (2_850_000_000, "2.9B"),
            (1_000_000_000_000, "1000B"),
            (134_515_008, "134.52M"),
            (7_615_616_512, "7.6B"),
            (22_570_000, "22.57M"),
        ];
        for (n, expected) in cases {
            assert_eq!(human_number(n), expected, "human_number({n})");
        }
    }

    #[test]
    fn model_info_hides_non_empty_arrays_unless_verbose() {
        let gguf = read_bytes(&fixture_bytes()).unwrap();
        let info = gguf.model_info(false);
        assert_eq!(info["tokenizer.ggml.tokens"], serde_json::Value::Null);
        assert_eq!(info["tokenizer.ggml.scores"], serde_json::Value::Null);
        assert_eq!(info["test.empty"], serde_json::json!([]));
        assert_eq!(info["general.architecture"], "llama");
        assert_eq!(info["llama.context_length"], 8192);
        assert_eq!(info["general.file_type"], 3);

        let verbose = gguf.model_info(true);
        assert_eq!(
            verbose["tokenizer.ggml.tokens"],
            serde_json::json!(["a", "b", "c", "d", "e", "f"])
        );
        assert_eq!(
            verbose["tokenizer.ggml.scores"],
            serde_json::json!([0.5, -1])
        );
        assert_eq!(verbose["test.nested"], serde_json::json!([[1], ["x"]]));
    }

    #[test]
    fn model_info_leaves_out_the_name_and_chat_template_and_sets_the_parameter_count() {
        let gguf = read_bytes(&fixture_bytes()).unwrap();
        for verbose in [false, true] {
            let info = gguf.model_info(verbose);
            assert!(!info.contains_key("general.name"));
            assert!(!info.contains_key("tokenizer.chat_template"));
            assert_eq!(info["general.parameter_count"], 707);
            let keys: Vec<&String> = info.keys().collect();
            let mut sorted = keys.clone();
            sorted.sort();
            assert_eq!(keys, sorted);
        }
    }

    #[test]
    fn parameter_count_sums_tensors_and_falls_back_to_metadata_without_them() {
        let with_tensors = Gguf {
            version: 3,
            metadata: vec![("general.parameter_count".into(), Value::U64(5))],
            tensors: vec![TensorInfo {
                name: "t".into(),
                kind: F32,
                shape: vec![3, 4],
            }],
            ..Gguf::default()
        };
        assert_eq!(with_tensors.parameter_count(), 12);
        let without_tensors = Gguf {
            tensors: vec![],
            ..with_tensors.clone()
        };
        assert_eq!(without_tensors.parameter_count(), 5);
        let empty = Gguf {
            metadata: vec![],
            ..without_tensors
        };
        assert_eq!(empty.parameter_count(), 0);
    }

    #[test]
    fn converts_values_to_json_like_go() {
        assert_eq!(Value::F32(0.1).to_json(), serde_json::json!(0.1));
        assert_eq!(Value::F32(1e-5).to_json(), serde_json::json!(0.00001));
        assert_eq!(Value::F32(f32::NAN).to_json(), serde_json::Value::Null);
        assert_eq!(Value::F32(100_000.0).to_json().to_string(), "100000");
        assert_eq!(Value::F64(-2.0).to_json().to_string(), "-2");
        assert_eq!(Value::F64(2.5).to_json().to_string(), "2.5");
        assert_eq!(Value::I64(-3).to_json(), serde_json::json!(-3));
        assert_eq!(Value::U64(u64::MAX).to_json(), serde_json::json!(u64::MAX));
        assert_eq!(Value::Bool(false).to_json(), serde_json::json!(false));
        assert_eq!(Value::I32(-1).as_u64(), None);
        assert_eq!(Value::I32(7).as_u64(), Some(7));
        assert_eq!(Value::F32(7.0).as_u64(), None);
        assert_eq!(Value::U8(7).as_str(), None);
    }

    #[test]
    fn open_reads_a_file_and_names_the_path_when_it_cannot() {
        let directory = std::env::temp_dir().join(format!("gguf-test-{}", std::process::id()));
        std::fs::create_dir_all(&directory).unwrap();
        let path = directory.join("tiny.gguf");
        std::fs::write(&path, fixture_bytes()).unwrap();
        assert_eq!(Gguf::open(&path).unwrap().architecture(), Some("llama"));

        let missing = directory.join("missing.gguf");
        let error = Gguf::open(&missing).unwrap_err();
        assert!(error.to_string().contains("missing.gguf"), "{error}");
        std::fs::remove_dir_all(&directory).unwrap();
    }

    /// Reads a real model when `ROLLAMA_TEST_GGUF` names one (SmolLM2-135M-Instruct Q4_1 in
    /// development); skipped otherwise.
    #[test]
    fn reads_a_real_model_when_one_is_provided() {
        let Some(path) = std::env::var_os("ROLLAMA_TEST_GGUF") else {
            return;
        };
        let gguf = Gguf::open(Path::new(&path)).unwrap();
        assert!(gguf.architecture().is_some());
        assert!(!gguf.tensors.is_empty());
        assert!(gguf.parameter_count() > 0);
        assert_ne!(gguf.model_info(false).len(), 0);
    }
}

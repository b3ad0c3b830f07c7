//! `POST /api/create`: builds a model from uploaded GGUF blobs or an existing model, adds the
//! template/system/license/parameters/messages layers and the config blob, and writes the
//! manifest last. Progress is streamed as Ollama streams it.

use crate::gguf::{human_number, Gguf, GgufError};
use crate::server::error::{parse_json, ApiError};
use crate::server::progress::{self, Progress};
use crate::server::routes::models::parse_name;
use crate::server::AppState;
use crate::store::manifest::{
    go_json, CONFIG_MEDIA_TYPE, MEDIA_ADAPTER, MEDIA_DRAFT, MEDIA_LICENSE, MEDIA_MESSAGES,
    MEDIA_MODEL, MEDIA_PARAMS, MEDIA_PROJECTOR, MEDIA_SYSTEM, MEDIA_TEMPLATE,
};
use crate::store::{Digest, Layer, Manifest, ModelConfig, ModelName, Store, INVALID_DIGEST_FORMAT};
use actix_web::{web, HttpResponse};
use serde::Deserialize;
use serde_json::{Map, Value};
use std::collections::BTreeMap;

#[derive(Deserialize, Default)]
pub struct CreateRequest {
    #[serde(default)]
    model: String,
    /// Deprecated spelling of `model`.
    #[serde(default)]
    name: String,
    #[serde(default)]
    from: String,
    #[serde(default)]
    files: Option<BTreeMap<String, String>>,
    #[serde(default)]
    adapters: Option<BTreeMap<String, String>>,
    /// The draft model's files (Modelfile `DRAFT`), for speculative decoding.
    #[serde(default)]
    draft_files: Option<BTreeMap<String, String>>,
    #[serde(default)]
    template: String,
    #[serde(default)]
    system: String,
    #[serde(default)]
    license: Option<Value>,
    #[serde(default)]
    parameters: Option<Map<String, Value>>,
    #[serde(default)]
    messages: Vec<Value>,
    #[serde(default)]
    quantize: String,
    /// Deprecated spelling of `quantize`.
    #[serde(default)]
    quantization: String,
    #[serde(default)]
    renderer: String,
    #[serde(default)]
    parser: String,
    #[serde(default)]
    requires: String,
    #[serde(default)]
    stream: Option<bool>,
}

pub async fn create(
    state: web::Data<AppState>,
    body: web::Bytes,
) -> Result<HttpResponse, ApiError> {
    let request: CreateRequest = parse_json(&body)?;
    for files in [&request.files, &request.adapters, &request.draft_files]
        .into_iter()
        .flatten()
    {
        for (path, digest) in files {
            if !is_valid_relative_path(path) {
                return Err(ApiError::bad_request("file path must be relative"));
            }
            if digest.is_empty() {
                return Err(ApiError::bad_request(INVALID_DIGEST_FORMAT));
            }
        }
    }
    let raw_name = if request.model.is_empty() {
        &request.name
    } else {
        &request.model
    };
    let name = parse_name(raw_name)?;
    let store = state.store.clone();
    let name = store.existing_name(&name)?;
    let stream = request.stream.unwrap_or(true);
    Ok(progress::respond(stream, move |progress| {
        create_model(&store, &name, request, progress)
    })
    .await)
}

/// Go's `fs.ValidPath`: relative, slash-separated, no empty, `.` or `..` elements.
fn is_valid_relative_path(path: &str) -> bool {
    if path == "." {
        return true;
    }
    !path.is_empty()
        && !path.contains('\\')
        && path
            .split('/')
            .all(|part| !part.is_empty() && part != "." && part != "..")
}

/// A layer on its way into the new manifest, with the status line Ollama prints for it.
struct NewLayer {
    layer: Layer,
    created: bool,
}

fn create_model(
    store: &Store,
    name: &ModelName,
    request: CreateRequest,
    progress: &Progress,
) -> Result<(), ApiError> {
    let old = store.find(name)?;
    let mut config = ModelConfig::new();
    config.renderer = request.renderer.clone();
    config.parser = request.parser.clone();
    config.requires = request.requires.clone();

    let mut layers: Vec<NewLayer> = Vec::new();
    if !request.from.is_empty() {
        let from = ModelName::parse(&request.from)
            .map_err(|_| ApiError::bad_request("invalid model name"))?;
        let source = store.find(&from)?.ok_or_else(|| {
            ApiError::not_found(format!("model '{}' not found", from.display_shortest()))
        })?;
        let short = source.name.display_shortest();
        for layer in &source.manifest.layers {
            let mut layer = layer.clone();
            layer.from = short.clone();
            layers.push(NewLayer {
                layer,
                created: false,
            });
        }
        if let Ok(bytes) = store.read_blob(&source.manifest.config.digest) {
            if let Ok(base) = serde_json::from_slice::<ModelConfig>(&bytes) {
                inherit_config(&mut config, base);
            }
        }
    } else if let Some(files) = &request.files {
        layers.extend(gguf_layers(store, files, false, progress)?);
    } else {
        return Err(ApiError::bad_request(
            "neither 'from' or 'files' was specified",
        ));
    }
    if let Some(adapters) = &request.adapters {
        if adapters.len() > 1 {
            return Err(ApiError::bad_request(
                "only one adapter is currently supported",
            ));
        }
        layers.extend(gguf_layers(store, adapters, true, progress)?);
    }
    if let Some(drafts) = &request.draft_files {
        let mut draft = gguf_layers(store, drafts, false, progress)?;
        if draft.len() != 1 || draft[0].layer.media_type != MEDIA_MODEL {
            return Err(ApiError::bad_request(
                "DRAFT must name one GGUF model file (no projector or adapter)",
            ));
        }
        layers.retain(|l| l.layer.media_type != MEDIA_DRAFT);
        draft[0].layer.media_type = MEDIA_DRAFT.to_string();
        layers.extend(draft);
    }

    let quantize = if request.quantize.is_empty() {
        &request.quantization
    } else {
        &request.quantize
    };
    let quantize = parse_quantization(quantize)?;

    // Model metadata into the config, from the (first) model layer, quantized first if asked.
    if let Some(index) = layers
        .iter()
        .position(|l| l.layer.media_type == MEDIA_MODEL)
    {
        let mut gguf = read_gguf(store, &layers[index].layer.digest)?;
        let mut quantized = false;
        if let Some(want) = quantize {
            if let Some(new) = quantize_model(store, &layers[index].layer, &gguf, want, progress)? {
                layers[index] = new;
                gguf = read_gguf(store, &layers[index].layer.digest)?;
                quantized = true;
            }
        }
        if quantized || config.model_family.is_empty() || request.from.is_empty() {
            fill_config(&mut config, &gguf);
        }
    }

    let set_text = |layers: &mut Vec<NewLayer>, media: &str, text: &str| -> Result<(), ApiError> {
        layers.retain(|l| l.layer.media_type != media);
        layers.push(text_layer(store, media, text.as_bytes())?);
        Ok(())
    };
    if !request.template.is_empty() {
        crate::template::Template::parse(&request.template)
            .map_err(|e| ApiError::bad_request(format!("template error: {e}")))?;
        layers.retain(|l| l.layer.media_type != crate::store::manifest::MEDIA_PROMPT);
        set_text(&mut layers, MEDIA_TEMPLATE, &request.template)?;
    }
    if !request.system.is_empty() {
        set_text(&mut layers, MEDIA_SYSTEM, &request.system)?;
    }
    for license in licenses(request.license.as_ref())? {
        layers.push(text_layer(store, MEDIA_LICENSE, license.as_bytes())?);
    }

    // Parameters: the request's keys win, inherited ones fill in.
    let mut parameters = request.parameters.clone().unwrap_or_default();
    for existing in layers.iter().filter(|l| l.layer.media_type == MEDIA_PARAMS) {
        let bytes = store.read_blob(&existing.layer.digest)?;
        let inherited: Map<String, Value> = serde_json::from_slice(&bytes)
            .map_err(|e| ApiError::internal(format!("params layer: {e}")))?;
        for (key, value) in inherited {
            parameters.entry(key).or_insert(value);
        }
    }
    if !parameters.is_empty() {
        layers.retain(|l| l.layer.media_type != MEDIA_PARAMS);
        // Go's encoder sorts map keys; serde_json's map may keep insertion order instead.
        let sorted: BTreeMap<String, Value> = parameters
            .into_iter()
            .map(|(k, v)| (k, go_number(v)))
            .collect();
        layers.push(text_layer(store, MEDIA_PARAMS, &go_json(&sorted))?);
    }
    if !request.messages.is_empty() {
        let messages = normalise_messages(&request.messages)?;
        layers.retain(|l| l.layer.media_type != MEDIA_MESSAGES);
        layers.push(text_layer(store, MEDIA_MESSAGES, &go_json(&messages))?);
    }

    let (config_digest, _) = store.write_blob(&go_json(&config))?;
    let config_size = go_json(&config).len() as u64;
    for new in &layers {
        let verb = if new.created {
            "creating new layer"
        } else {
            "using existing layer"
        };
        progress.status(format!("{verb} {}", new.layer.digest));
    }
    progress.status("writing manifest");
    let manifest = Manifest::new(
        Layer::new(CONFIG_MEDIA_TYPE, config_digest, config_size),
        layers.into_iter().map(|l| l.layer).collect(),
    );
    store.write_manifest(name, &manifest)?;
    if let Some(old) = old {
        if !crate::env::bool_var(crate::env::OLLAMA_NOPRUNE, false) {
            store.remove_unreferenced(old.manifest.digests())?;
        }
    }
    progress.status("success");
    Ok(())
}

/// The quantization types Ollama accepts for `quantize` (`fs/ggml/type.go`), upper-cased;
/// `Q4_K` is an alias of `Q4_K_M`.
fn parse_quantization(raw: &str) -> Result<Option<&'static str>, ApiError> {
    if raw.is_empty() {
        return Ok(None);
    }
    let upper = raw.to_uppercase();
    let kind = match upper.as_str() {
        "F32" => "F32",
        "F16" => "F16",
        "BF16" => "BF16",
        "Q8_0" => "Q8_0",
        "Q4_K_S" => "Q4_K_S",
        "Q4_K_M" | "Q4_K" => "Q4_K_M",
        _ => {
            return Err(ApiError::bad_request(format!(
                "unsupported quantization type {upper} - supported types are F32, F16, Q4_K_S, Q4_K_M, Q8_0"
            )))
        }
    };
    Ok(Some(kind))
}

/// Ollama only quantizes F16/BF16/F32 sources; asking for the type the model already has
/// is a no-op (`None`). Otherwise the GGUF is re-quantized (`crate::quantize`) into a new
/// blob, reporting Ollama's `quantizing F16 model to Q4_K_M` progress, and the new model layer
/// is returned.
fn quantize_model(
    store: &Store,
    layer: &Layer,
    gguf: &Gguf,
    want: &str,
    progress: &Progress,
) -> Result<Option<NewLayer>, ApiError> {
    let have = gguf.file_type_name();
    if !matches!(have.as_str(), "F16" | "BF16" | "F32") {
        return Err(ApiError::bad_request(
            "quantization is only supported for F16, BF16 and F32 models",
        ));
    }
    if have == want {
        return Ok(None);
    }
    let target = crate::quantize::Target::parse(want)
        .ok_or_else(|| ApiError::bad_request(format!("unsupported quantization type {want}")))?;
    let status = format!("quantizing {have} model to {want}");
    progress.status(status.clone());
    let mut new = model_blob(store, "quantize", |out| {
        crate::quantize::requantize(
            &store.blob_path(&layer.digest),
            target,
            out,
            |done, total| {
                progress.send(serde_json::json!({
                    "status": status,
                    "digest": "0000000000000000000",
                    "total": layer.size,
                    "completed": layer.size * done as u64 / total.max(1) as u64,
                }));
            },
        )
        .map_err(|e| ApiError::internal(format!("quantizing: {e}")))
    })?;
    new.layer.from.clone_from(&layer.from);
    Ok(Some(new))
}

/// A new model layer whose GGUF `write` produces: written to a temp file in the store, then
/// adopted as the blob of its digest.
fn model_blob(
    store: &Store,
    purpose: &str,
    write: impl FnOnce(&mut std::io::BufWriter<&mut std::fs::File>) -> Result<(), ApiError>,
) -> Result<NewLayer, ApiError> {
    let mut temp = store.temp_file(purpose)?;
    write(&mut std::io::BufWriter::with_capacity(
        1 << 20,
        temp.as_file_mut(),
    ))?;
    let digest = store.adopt_temp_file(temp)?;
    let size = std::fs::metadata(store.blob_path(&digest))
        .map_err(ApiError::internal)?
        .len();
    Ok(NewLayer {
        layer: Layer::new(MEDIA_MODEL, digest, size),
        created: true,
    })
}

/// Go decodes JSON numbers into float64 and writes whole ones without a fraction
/// (`1.0` → `1`); doing the same keeps the params blob byte-identical to Ollama's.
fn go_number(value: Value) -> Value {
    match value {
        Value::Number(n) if n.is_f64() => match n.as_f64() {
            Some(f) if f.fract() == 0.0 && f.abs() < 1e15 => Value::from(f as i64),
            _ => Value::Number(n),
        },
        Value::Array(items) => Value::Array(items.into_iter().map(go_number).collect()),
        other => other,
    }
}

fn inherit_config(config: &mut ModelConfig, base: ModelConfig) {
    if config.renderer.is_empty() {
        config.renderer = base.renderer;
    }
    if config.parser.is_empty() {
        config.parser = base.parser;
    }
    if config.requires.is_empty() {
        config.requires = base.requires;
    }
    if config.capabilities.is_empty() {
        config.capabilities = base.capabilities;
    }
    config.model_format = base.model_format;
    config.model_family = base.model_family;
    config.model_families = base.model_families;
    config.model_type = base.model_type;
    config.file_type = base.file_type;
}

fn fill_config(config: &mut ModelConfig, gguf: &Gguf) {
    let arch = gguf.architecture().unwrap_or("").to_string();
    config.model_format = "gguf".to_string();
    config.model_family = arch.clone();
    config.model_families = Some(vec![arch]);
    config.model_type = human_number(gguf.parameter_count());
    config.file_type = gguf.file_type_name();
}

fn read_gguf(store: &Store, digest: &Digest) -> Result<Gguf, ApiError> {
    Gguf::open(&store.blob_path(digest)).map_err(|e| match e {
        GgufError::Io(e) => ApiError::internal(e),
        other => ApiError::bad_request(other.to_string()),
    })
}

/// The layers for uploaded GGUF files (`files` or `adapters`), with Ollama's checks: the
/// blob must exist, be a GGUF (by extension or magic), and parse.
fn gguf_layers(
    store: &Store,
    files: &BTreeMap<String, String>,
    adapter: bool,
    progress: &Progress,
) -> Result<Vec<NewLayer>, ApiError> {
    if files.is_empty() {
        return Err(ApiError::bad_request("no files provided to convert"));
    }
    if !adapter && files.keys().any(|f| f.ends_with(".safetensors")) {
        return Ok(vec![converted_layer(store, files, progress)?]);
    }
    let mut layers = Vec::new();
    for (file, raw_digest) in files {
        let digest = uploaded_blob(store, raw_digest)?;
        let is_gguf_name = file.ends_with(".gguf");
        if !is_gguf_name && !has_gguf_magic(store, &digest) {
            return Err(ApiError::bad_request("unknown type"));
        }
        progress.status("parsing GGUF");
        let gguf = read_gguf(store, &digest)?;
        let general_type = gguf.get("general.type").and_then(|v| v.as_str());
        let media_type = if adapter || general_type == Some("adapter") {
            MEDIA_ADAPTER
        } else if is_projector(&gguf) {
            MEDIA_PROJECTOR
        } else {
            MEDIA_MODEL
        };
        let size = std::fs::metadata(store.blob_path(&digest))
            .map_err(ApiError::internal)?
            .len();
        let mut layer = Layer::new(media_type, digest, size);
        layer.from = file.clone();
        layers.push(NewLayer {
            layer,
            created: false,
        });
    }
    Ok(layers)
}

/// The digest of an uploaded file, which must be in the store.
fn uploaded_blob(store: &Store, raw_digest: &str) -> Result<Digest, ApiError> {
    let digest =
        Digest::parse(raw_digest).map_err(|_| ApiError::bad_request(INVALID_DIGEST_FORMAT))?;
    if !store.has_blob(&digest) {
        return Err(ApiError::bad_request(format!(
            "blob \"{digest}\" not found; upload it with POST /api/blobs/{digest} first"
        )));
    }
    Ok(digest)
}

/// A Hugging Face model directory (safetensors, config and tokenizer files, uploaded as
/// blobs) converted into a GGUF model layer (`crate::convert`).
fn converted_layer(
    store: &Store,
    files: &BTreeMap<String, String>,
    progress: &Progress,
) -> Result<NewLayer, ApiError> {
    let mut paths = BTreeMap::new();
    for (file, raw_digest) in files {
        let digest = uploaded_blob(store, raw_digest)?;
        paths.insert(file.clone(), store.blob_path(&digest));
    }
    progress.status("converting model");
    let files = crate::convert::ModelFiles::new(paths);
    model_blob(store, "convert", |out| {
        crate::convert::convert(&files, out, |_, _| {}).map_err(|e| match e {
            crate::convert::ConvertError::Unsupported(m) => ApiError::bad_request(m),
            crate::convert::ConvertError::Failed(m) => {
                ApiError::internal(format!("converting model: {m}"))
            }
        })
    })
}

fn has_gguf_magic(store: &Store, digest: &Digest) -> bool {
    use std::io::Read;
    let mut magic = [0u8; 4];
    std::fs::File::open(store.blob_path(digest))
        .and_then(|mut f| f.read_exact(&mut magic))
        .is_ok()
        && &magic == b"GGUF"
}

/// Ollama's `isProjectorGGUF`.
fn is_projector(gguf: &Gguf) -> bool {
    let kind = gguf.get("general.type").and_then(|v| v.as_str());
    if matches!(kind, Some("projector" | "mmproj")) {
        return true;
    }
    let arch = gguf.architecture().unwrap_or("");
    let get_u64 = |key: &str| {
        gguf.get(&format!("{arch}.{key}"))
            .and_then(|v| v.as_u64())
            .unwrap_or(0)
    };
    get_u64("block_count") == 0 && get_u64("vision.block_count") > 0
}

fn text_layer(store: &Store, media_type: &str, bytes: &[u8]) -> Result<NewLayer, ApiError> {
    let (digest, created) = store.write_blob(bytes)?;
    Ok(NewLayer {
        layer: Layer::new(media_type, digest, bytes.len() as u64),
        created,
    })
}

fn licenses(value: Option<&Value>) -> Result<Vec<String>, ApiError> {
    super::string_list(value, "license must be a string or an array of strings")
}

/// A message as Ollama's `api.Message` encodes it: fields in Go's declaration order,
/// `role` and `content` always, the rest only when set.
#[derive(serde::Serialize)]
struct StoredMessage {
    role: String,
    content: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    thinking: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    images: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    tool_calls: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    tool_name: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    tool_call_id: Option<Value>,
}

fn normalise_messages(messages: &[Value]) -> Result<Vec<StoredMessage>, ApiError> {
    let invalid = || ApiError::bad_request("messages must be objects with a role and content");
    messages
        .iter()
        .map(|message| {
            let object = message.as_object().ok_or_else(invalid)?;
            let text = |key: &str| -> Result<String, ApiError> {
                match object.get(key) {
                    None | Some(Value::Null) => Ok(String::new()),
                    Some(Value::String(s)) => Ok(s.clone()),
                    Some(_) => Err(invalid()),
                }
            };
            let optional = |key: &str| {
                object
                    .get(key)
                    .filter(|v| !v.is_null() && *v != "" && *v != &Value::Array(Vec::new()))
                    .cloned()
            };
            Ok(StoredMessage {
                role: text("role")?.to_lowercase(),
                content: text("content")?,
                thinking: optional("thinking"),
                images: optional("images"),
                tool_calls: optional("tool_calls"),
                tool_name: optional("tool_name"),
                tool_call_id: optional("tool_call_id"),
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_paths_must_be_relative_and_clean() {
        for ok in ["model.gguf", "dir/model.gguf", "."] {
            assert!(is_valid_relative_path(ok), "{ok}");
        }
        for bad in ["", "/abs", "../x", "a/../b", "a//b", "a/", "./a", "a\\b"] {
            assert!(!is_valid_relative_path(bad), "{bad}");
        }
    }

    #[test]
    fn quantization_types_are_ollamas() {
        assert_eq!(parse_quantization("").unwrap(), None);
        assert_eq!(parse_quantization("q4_k_m").unwrap(), Some("Q4_K_M"));
        assert_eq!(parse_quantization("Q4_K").unwrap(), Some("Q4_K_M"));
        assert_eq!(parse_quantization("q8_0").unwrap(), Some("Q8_0"));
        assert_eq!(
            parse_quantization("q2_k").unwrap_err().message(),
            "unsupported quantization type Q2_K - supported types are F32, F16, Q4_K_S, Q4_K_M, Q8_0"
        );
    }

    #[test]
    fn licenses_accept_a_string_or_an_array() {
        assert_eq!(licenses(Some(&Value::from("MIT"))).unwrap(), vec!["MIT"]);
        assert_eq!(
            licenses(Some(&serde_json::json!(["a", "b"]))).unwrap(),
            vec!["a", "b"]
        );
        assert!(licenses(Some(&serde_json::json!(5))).is_err());
        assert!(licenses(None).unwrap().is_empty());
    }
}

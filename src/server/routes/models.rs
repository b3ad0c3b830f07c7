//! `/api/tags`, `/api/show`, `/api/copy`, `/api/delete` and `/api/ps`: what is in the store,
//! in the JSON shapes Ollama returns.

use crate::format::go_time;
use crate::gguf::Gguf;
use crate::modelfile::{Command, Modelfile};
use crate::server::error::{parse_json, ApiError};
use crate::server::prompt::ChatMode;
use crate::server::AppState;
use crate::store::manifest::{
    MEDIA_ADAPTER, MEDIA_LICENSE, MEDIA_MESSAGES, MEDIA_MODEL, MEDIA_PARAMS, MEDIA_PROJECTOR,
    MEDIA_PROMPT, MEDIA_SYSTEM, MEDIA_TEMPLATE,
};
use crate::store::{ModelConfig, ModelName, Store, StoredModel};
use actix_web::{web, HttpResponse};
use serde::Deserialize;
use serde_json::{json, Map, Value};

/// The template Ollama uses when a model has none.
pub const DEFAULT_TEMPLATE: &str = "{{ .Prompt }}";

/// Parses a model name from a request, answering Ollama's 400 when it is invalid.
pub fn parse_name(name: &str) -> Result<ModelName, ApiError> {
    ModelName::parse(name).map_err(|_| ApiError::bad_request("invalid model name"))
}

/// Everything `show` and the engine need to know about a stored model, read from its blobs.
pub struct ModelView {
    pub stored: StoredModel,
    pub config: ModelConfig,
    pub template: Option<String>,
    pub system: String,
    pub licenses: Vec<String>,
    pub parameters: Map<String, Value>,
    pub messages: Vec<Value>,
    /// The reasoning tags of the Go template, inferred once when the view is read (capability
    /// checks ask for them several times a request).
    template_thinking_tags: Option<(String, String)>,
    /// Whether the engine can read images with the model's projector layer (read once when
    /// the view is).
    projector_reads_images: bool,
}

impl ModelView {
    pub fn load(store: &Store, stored: StoredModel) -> Result<ModelView, ApiError> {
        let read_text = |digest| -> Result<String, ApiError> {
            let bytes = store.read_blob(digest)?;
            Ok(String::from_utf8_lossy(&bytes).into_owned())
        };
        let config: ModelConfig = store
            .read_blob(&stored.manifest.config.digest)
            .ok()
            .and_then(|bytes| serde_json::from_slice(&bytes).ok())
            .unwrap_or_default();
        let mut view = ModelView {
            config,
            template: None,
            system: String::new(),
            licenses: Vec::new(),
            parameters: Map::new(),
            messages: Vec::new(),
            template_thinking_tags: None,
            projector_reads_images: false,
            stored: stored.clone(),
        };
        for layer in &stored.manifest.layers {
            match layer.media_type.as_str() {
                MEDIA_TEMPLATE | MEDIA_PROMPT => view.template = Some(read_text(&layer.digest)?),
                MEDIA_SYSTEM => view.system = read_text(&layer.digest)?,
                MEDIA_LICENSE => view.licenses.push(read_text(&layer.digest)?),
                MEDIA_PARAMS => {
                    view.parameters = serde_json::from_slice(&store.read_blob(&layer.digest)?)
                        .map_err(|e| ApiError::internal(format!("params layer: {e}")))?;
                }
                MEDIA_MESSAGES => {
                    view.messages = serde_json::from_slice(&store.read_blob(&layer.digest)?)
                        .map_err(|e| ApiError::internal(format!("messages layer: {e}")))?;
                }
                _ => {}
            }
        }
        view.template_thinking_tags = view
            .template
            .as_deref()
            .filter(|t| !t.is_empty())
            .and_then(|text| crate::template::Template::parse(text).ok())
            .and_then(|template| template.thinking_tags());
        view.projector_reads_images = view.projector_layer().is_some_and(|layer| {
            Gguf::open(&store.blob_path(&layer.digest))
                .is_ok_and(|g| crate::engine::reads_projector(&g))
        });
        Ok(view)
    }

    pub fn model_layer(&self) -> Option<&crate::store::Layer> {
        self.stored.manifest.layers_of(MEDIA_MODEL).next()
    }

    /// The draft model for speculative decoding (Modelfile `DRAFT`), if any.
    pub fn draft_layer(&self) -> Option<&crate::store::Layer> {
        self.stored
            .manifest
            .layers_of(crate::store::manifest::MEDIA_DRAFT)
            .next()
    }

    /// The vision projector layer, if the model has one (Ollama uses the first).
    pub fn projector_layer(&self) -> Option<&crate::store::Layer> {
        self.stored.manifest.layers_of(MEDIA_PROJECTOR).next()
    }

    /// `details` as in `/api/tags` and `/api/show`.
    pub fn details(&self) -> Value {
        let parent = self.model_layer().map(|l| l.from.as_str()).unwrap_or("");
        json!({
            "parent_model": parent,
            "format": self.config.model_format,
            "family": self.config.model_family,
            "families": self.config.model_families,
            "parameter_size": self.config.model_type,
            "quantization_level": self.config.file_type,
        })
    }

    /// Ollama's capability detection, from the GGUF metadata and the template.
    pub fn capabilities(&self, gguf: Option<&Gguf>) -> Vec<&'static str> {
        let mut caps = Vec::new();
        // A model that pools embeds, or ranks (a classification head): llama.cpp's rule,
        // which covers Ollama's (a `pooling_type` key) and encoders that name none.
        caps.push(match gguf.and_then(crate::engine::embedding::pooling_of) {
            Some(crate::engine::embedding::Pooling::Rank) => "rerank",
            Some(_) => "embedding",
            None => "completion",
        });
        // The template the chat path uses gives `tools` (and `insert` for a Go template).
        let jinja = gguf.and_then(Gguf::chat_template).unwrap_or("");
        if self.chat_mode(gguf) == ChatMode::Native {
            caps.extend(
                crate::server::prompt::chat_template_capabilities(jinja)
                    .into_iter()
                    .filter(|c| *c == "tools"),
            );
        } else {
            let template = self.template.as_deref().unwrap_or("");
            if template.contains(".Tools") {
                caps.push("tools");
            }
            if template.contains(".Suffix") {
                caps.push("insert");
            }
        }
        // Unlike Ollama, `vision` only where images will really be read: a projector layer
        // mtmd can load, or a vision tower inside an Ollama-layout blob that rollama
        // translates into one, with llama.cpp as the engine.
        let embedded = self.projector_layer().is_none()
            && gguf.is_some_and(crate::ollama_layout::has_projector)
            && crate::engine::reads_images_here();
        if self.projector_reads_images || embedded {
            caps.push("vision");
        }
        if self.thinking_tags(gguf).is_some() {
            caps.push("thinking");
        }
        caps
    }

    /// The tags a thinking model's reasoning comes between: those its Go template puts around
    /// `.Thinking` (Ollama's inference), or `<think>`/`</think>` when a GGUF chat template
    /// (used when the model has no Go template) shows both, as Ollama decides for those.
    pub fn thinking_tags(&self, gguf: Option<&Gguf>) -> Option<(String, String)> {
        match self.chat_mode(gguf) {
            ChatMode::Rendered => self.template_thinking_tags.clone(),
            ChatMode::Native => gguf
                .and_then(Gguf::chat_template)
                .filter(|t| {
                    crate::server::prompt::chat_template_capabilities(t).contains(&"thinking")
                })
                .map(|_| ("<think>".to_string(), "</think>".to_string())),
        }
    }

    /// Ollama's chat path for this model: its Go TEMPLATE, or the GGUF's own template.
    pub fn chat_mode(&self, gguf: Option<&Gguf>) -> ChatMode {
        ChatMode::choose(
            self.template.as_deref().filter(|t| !t.is_empty()),
            gguf.and_then(Gguf::chat_template).filter(|t| !t.is_empty()),
        )
    }

    /// The `parameters` text: one `key<pad to 30> value` line per value, Go `%#v` quoting.
    pub fn parameters_text(&self) -> String {
        self.parameter_values()
            .map(|(key, v)| format!("{key:<30} {}", go_value(v)))
            .collect::<Vec<_>>()
            .join("\n")
    }

    /// Each parameter value, arrays (`stop`) flattened to one entry per element.
    fn parameter_values(&self) -> impl Iterator<Item = (&String, &Value)> {
        self.parameters.iter().flat_map(|(key, value)| {
            let values: Vec<&Value> = match value {
                Value::Array(items) => items.iter().collect(),
                other => vec![other],
            };
            values.into_iter().map(move |v| (key, v))
        })
    }

    /// The Modelfile `show --modelfile` prints (Ollama's `Model.String()` plus header).
    pub fn modelfile(&self, store: &Store, gguf_template: Option<&str>) -> String {
        let mut commands = Vec::new();
        let path_of = |layer: &crate::store::Layer| {
            store
                .blob_path(&layer.digest)
                .to_string_lossy()
                .into_owned()
        };
        let command = |name: &str, args: String| Command {
            name: name.to_string(),
            args,
        };
        if let Some(layer) = self.model_layer() {
            commands.push(command("model", path_of(layer)));
        }
        for layer in self.stored.manifest.layers_of(MEDIA_ADAPTER) {
            commands.push(command("adapter", path_of(layer)));
        }
        if let Some(layer) = self.draft_layer() {
            commands.push(command("draft", path_of(layer)));
        }
        for layer in self.stored.manifest.layers_of(MEDIA_PROJECTOR) {
            commands.push(command("model", path_of(layer)));
        }
        let template = self
            .template
            .as_deref()
            .or(gguf_template)
            .unwrap_or(DEFAULT_TEMPLATE);
        commands.push(command("template", template.to_string()));
        if !self.system.is_empty() {
            commands.push(command("system", self.system.clone()));
        }
        if !self.config.renderer.is_empty() {
            commands.push(command("renderer", self.config.renderer.clone()));
        }
        if !self.config.parser.is_empty() {
            commands.push(command("parser", self.config.parser.clone()));
        }
        for (key, v) in self.parameter_values() {
            let text = match v {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            commands.push(command(key, text));
        }
        for license in &self.licenses {
            commands.push(command("license", license.clone()));
        }
        for message in &self.messages {
            let role = message["role"].as_str().unwrap_or("");
            let content = message["content"].as_str().unwrap_or("");
            commands.push(command("message", format!("{role}: {content}")));
        }
        let body = Modelfile {
            commands,
            ..Modelfile::default()
        }
        .to_string();
        format!(
            "# Modelfile generated by \"ollama show\"\n\
             # To build a new Modelfile based on this, replace FROM with:\n\
             # FROM {}\n\n{body}",
            self.stored.name.display_shortest()
        )
    }
}

/// Go's `%#v` for JSON-decoded values: strings quoted, numbers bare.
fn go_value(value: &Value) -> String {
    match value {
        Value::String(s) => serde_json::to_string(s).unwrap_or_default(),
        other => other.to_string(),
    }
}

/// Finds `name` in the store or answers 404 with `message`.
fn find(store: &Store, name: &ModelName, message: String) -> Result<StoredModel, ApiError> {
    store.find(name)?.ok_or(ApiError::NotFound(message))
}

pub async fn tags(state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    let store = state.store.clone();
    let headers = state.clone();
    let (models, damaged) = web::block(move || -> Result<(Vec<Value>, Vec<Value>), ApiError> {
        let mut out = Vec::new();
        let (stored_models, damaged) = store.list_checked()?;
        let mut damaged: Vec<Value> = damaged
            .into_iter()
            .map(|d| json!({"name": d.name, "error": d.problem}))
            .collect();
        for stored in stored_models {
            let name = stored.name.display_shortest();
            let view = match ModelView::load(&store, stored) {
                Ok(view) => view,
                Err(e) => {
                    damaged.push(json!({"name": name, "error": e.message()}));
                    continue;
                }
            };
            let name = view.stored.name.display_shortest();
            // The GGUF header (read once per blob) gives the capabilities and the lengths
            // that UIs filter on; a model without readable weights lists without them.
            let gguf = view
                .model_layer()
                .and_then(|layer| headers.gguf(&layer.digest).ok());
            let mut details = view.details();
            if let Some(gguf) = &gguf {
                // Ollama's `omitempty`: absent rather than 0.
                for (key, value) in [
                    ("context_length", gguf.context_length()),
                    ("embedding_length", gguf.embedding_length()),
                ] {
                    if let Some(value) = value.filter(|v| *v > 0) {
                        details[key] = json!(value);
                    }
                }
            }
            out.push(json!({
                "name": name,
                "model": name,
                "modified_at": go_time(view.stored.modified),
                "size": view.stored.manifest.total_size(),
                "digest": view.stored.digest.hex(),
                "details": details,
                "capabilities": view.capabilities(gguf.as_deref()),
            }));
        }
        Ok((out, damaged))
    })
    .await
    .map_err(ApiError::internal)??;
    if damaged.is_empty() {
        return Ok(HttpResponse::Ok().json(json!({ "models": models })));
    }
    for d in &damaged {
        eprintln!("skipping damaged model {}: {}", d["name"], d["error"]);
    }
    // Beyond Ollama, which only logs them: the skipped models and why, for `list` to show.
    Ok(HttpResponse::Ok().json(json!({ "models": models, "damaged": damaged })))
}

#[derive(Deserialize)]
pub struct ShowRequest {
    #[serde(default)]
    model: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    verbose: bool,
    #[serde(default)]
    system: String,
    #[serde(default)]
    options: Map<String, Value>,
}

pub async fn show(state: web::Data<AppState>, body: web::Bytes) -> Result<HttpResponse, ApiError> {
    let request: ShowRequest = parse_json(&body)?;
    let raw = if request.model.is_empty() {
        request.name.clone()
    } else {
        request.model.clone()
    };
    if raw.is_empty() {
        return Err(ApiError::bad_request("model is required"));
    }
    let name = parse_name(&raw)?;
    let store = state.store.clone();
    let response = web::block(move || show_model(&store, &name, request))
        .await
        .map_err(ApiError::internal)??;
    Ok(HttpResponse::Ok().json(response))
}

/// The error for a model whose files are damaged.
fn damaged(name: &ModelName, problem: &str) -> ApiError {
    let shown = name.display_shortest();
    ApiError::internal(format!(
        "model '{shown}' is damaged ({problem}); remove it with `rollama rm {shown}` and pull or create it again"
    ))
}

fn show_model(store: &Store, name: &ModelName, request: ShowRequest) -> Result<Value, ApiError> {
    let stored = find(
        store,
        name,
        format!("model '{}' not found", name.display_shortest()),
    )?;
    store
        .check(&stored)
        .map_err(|problem| damaged(name, &problem))?;
    let mut view = ModelView::load(store, stored).map_err(|e| damaged(name, e.message()))?;
    if !request.system.is_empty() {
        view.system = request.system.clone();
    }
    let gguf = match view.model_layer() {
        Some(layer) => Some(
            Gguf::open(&store.blob_path(&layer.digest))
                .map_err(|e| damaged(name, &format!("reading model: {e}")))?,
        ),
        None => None,
    };
    let parameters = view.parameters_text();
    for (key, value) in request.options {
        view.parameters.insert(key, value);
    }
    let gguf_template = gguf.as_ref().and_then(Gguf::chat_template);
    let template = view
        .template
        .clone()
        .or_else(|| gguf_template.map(str::to_string))
        .unwrap_or_else(|| DEFAULT_TEMPLATE.to_string());
    let mut details = view.details();
    if let Some(g) = &gguf {
        if view.config.file_type.is_empty() || view.config.file_type == "unknown" {
            details["quantization_level"] = json!(g.file_type_name());
        }
    }
    let mut response = json!({
        "modelfile": view.modelfile(store, gguf_template),
        "parameters": parameters,
        "template": template,
        "details": details,
        "model_info": gguf.as_ref().map(|g| g.model_info(request.verbose)).unwrap_or_default(),
        "capabilities": view.capabilities(gguf.as_ref()),
        "modified_at": go_time(view.stored.modified),
    });
    if !view.licenses.is_empty() {
        response["license"] = json!(view.licenses.join("\n"));
    }
    if !view.system.is_empty() {
        response["system"] = json!(view.system);
    }
    if !view.messages.is_empty() {
        let messages: Vec<Value> = view
            .messages
            .iter()
            .map(|m| json!({"role": m["role"], "content": m["content"]}))
            .collect();
        response["messages"] = json!(messages);
    }
    if !view.config.requires.is_empty() {
        response["requires"] = json!(view.config.requires);
    }
    if let Some(g) = &gguf {
        let tensors: Vec<Value> = g
            .tensors
            .iter()
            .map(|t| json!({"name": t.name, "type": t.type_name(), "shape": t.shape}))
            .collect();
        response["tensors"] = json!(tensors);
    }
    if let (Some(g), Some(layer)) = (&gguf, view.model_layer()) {
        // rollama's own field: the model runs through a translation of Ollama's layout.
        if let Some(family) = crate::ollama_layout::family_of(g) {
            let derived =
                crate::ollama_layout::derived_bytes(&store.derived_dir(), &layer.digest, family);
            response["translation"] = json!({
                "layout": format!("ollama/{family}"),
                "derived_bytes": derived,
            });
        }
    }
    if let Some(layer) = view.stored.manifest.layers_of(MEDIA_PROJECTOR).next() {
        if let Ok(projector) = Gguf::open(&store.blob_path(&layer.digest)) {
            response["projector_info"] = json!(projector.model_info(request.verbose));
        }
    }
    Ok(response)
}

#[derive(Deserialize)]
pub struct CopyRequest {
    #[serde(default)]
    source: String,
    #[serde(default)]
    destination: String,
}

pub async fn copy(state: web::Data<AppState>, body: web::Bytes) -> Result<HttpResponse, ApiError> {
    let request: CopyRequest = parse_json(&body)?;
    let source = ModelName::parse(&request.source)
        .map_err(|_| ApiError::bad_request(format!("source \"{}\" is invalid", request.source)))?;
    let destination = ModelName::parse(&request.destination).map_err(|_| {
        ApiError::bad_request(format!(
            "destination \"{}\" is invalid",
            request.destination
        ))
    })?;
    let store = state.store.clone();
    web::block(move || -> Result<(), ApiError> {
        let stored = find(
            &store,
            &source,
            format!("model \"{}\" not found", request.source),
        )?;
        store.copy(&stored, &destination)?;
        Ok(())
    })
    .await
    .map_err(ApiError::internal)??;
    Ok(HttpResponse::Ok().finish())
}

#[derive(Deserialize)]
pub struct DeleteRequest {
    #[serde(default)]
    model: String,
    #[serde(default)]
    name: String,
}

pub async fn delete(
    state: web::Data<AppState>,
    body: web::Bytes,
) -> Result<HttpResponse, ApiError> {
    let request: DeleteRequest = parse_json(&body)?;
    let raw = if request.model.is_empty() {
        request.name
    } else {
        request.model
    };
    if raw.is_empty() {
        return Err(ApiError::bad_request("model is required"));
    }
    let name = ModelName::parse(&raw)
        .map_err(|_| ApiError::bad_request(format!("name \"{raw}\" is invalid")))?;
    let store = state.store.clone();
    web::block(move || -> Result<(), ApiError> {
        if store.delete_named(&name)? {
            Ok(())
        } else {
            Err(ApiError::NotFound(format!("model '{raw}' not found")))
        }
    })
    .await
    .map_err(ApiError::internal)??;
    Ok(HttpResponse::Ok().finish())
}

/// Loaded models, as Ollama lists them: `size_vram` is what llama.cpp allocated on GPUs.
pub async fn ps(state: web::Data<AppState>) -> HttpResponse {
    let models: Vec<Value> = state
        .scheduler
        .loaded()
        .iter()
        .map(|runner| {
            json!({
                "name": runner.name,
                "model": runner.name,
                "size": runner.size,
                "digest": runner.digest.hex(),
                "details": runner.details,
                "expires_at": go_time(runner.expires_at()),
                "size_vram": runner.footprint.vram(),
                "context_length": runner.num_ctx,
            })
        })
        .collect();
    HttpResponse::Ok().json(json!({ "models": models }))
}

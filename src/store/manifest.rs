//! The Docker distribution v2 manifest Ollama stores per model, its layer media types, the
//! config blob, and Go-compatible JSON encoding so that blobs rollama writes have the same
//! bytes (and so the same digests) as Ollama's.

use super::Digest;
use serde::{Deserialize, Serialize};

pub const MANIFEST_MEDIA_TYPE: &str = "application/vnd.docker.distribution.manifest.v2+json";
pub const CONFIG_MEDIA_TYPE: &str = "application/vnd.docker.container.image.v1+json";

pub const MEDIA_MODEL: &str = "application/vnd.ollama.image.model";
pub const MEDIA_ADAPTER: &str = "application/vnd.ollama.image.adapter";
pub const MEDIA_PROJECTOR: &str = "application/vnd.ollama.image.projector";
pub const MEDIA_DRAFT: &str = "application/vnd.ollama.image.draft";
pub const MEDIA_TEMPLATE: &str = "application/vnd.ollama.image.template";
/// Old name of the template layer, still found in old stores.
pub const MEDIA_PROMPT: &str = "application/vnd.ollama.image.prompt";
pub const MEDIA_SYSTEM: &str = "application/vnd.ollama.image.system";
pub const MEDIA_PARAMS: &str = "application/vnd.ollama.image.params";
pub const MEDIA_MESSAGES: &str = "application/vnd.ollama.image.messages";
pub const MEDIA_LICENSE: &str = "application/vnd.ollama.image.license";

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Layer {
    #[serde(rename = "mediaType")]
    pub media_type: String,
    pub digest: Digest,
    pub size: u64,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub from: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub name: String,
}

impl Layer {
    pub fn new(media_type: &str, digest: Digest, size: u64) -> Layer {
        Layer {
            media_type: media_type.to_string(),
            digest,
            size,
            from: String::new(),
            name: String::new(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    #[serde(rename = "schemaVersion")]
    pub schema_version: u32,
    #[serde(rename = "mediaType", default)]
    pub media_type: String,
    pub config: Layer,
    #[serde(default)]
    pub layers: Vec<Layer>,
}

impl Manifest {
    pub fn new(config: Layer, layers: Vec<Layer>) -> Manifest {
        Manifest {
            schema_version: 2,
            media_type: MANIFEST_MEDIA_TYPE.to_string(),
            config,
            layers,
        }
    }

    /// Σ layer sizes + config size, as `/api/tags` reports.
    pub fn total_size(&self) -> u64 {
        self.layers.iter().map(|l| l.size).sum::<u64>() + self.config.size
    }

    /// Every blob the manifest references: the layers, then the config.
    pub fn blobs(&self) -> impl Iterator<Item = &Layer> + '_ {
        self.layers.iter().chain(std::iter::once(&self.config))
    }

    /// Every digest the manifest references, config included.
    pub fn digests(&self) -> impl Iterator<Item = Digest> + '_ {
        self.blobs().map(|l| l.digest)
    }

    pub fn layers_of<'a>(&'a self, media_type: &'a str) -> impl Iterator<Item = &'a Layer> + 'a {
        self.layers
            .iter()
            .filter(move |l| l.media_type == media_type)
    }

    /// The manifest file as Ollama writes it (`json.Encoder`: compact, newline-terminated).
    pub fn to_go_json(&self) -> Vec<u8> {
        go_json(self)
    }
}

/// The config blob (`types/model/config.go` `ConfigV2`), fields in Go's declaration order.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ModelConfig {
    #[serde(default)]
    pub model_format: String,
    #[serde(default)]
    pub model_family: String,
    #[serde(default)]
    pub model_families: Option<Vec<String>>,
    #[serde(default)]
    pub model_type: String,
    #[serde(default)]
    pub file_type: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub renderer: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub parser: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub requires: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub remote_host: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub remote_model: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub capabilities: Vec<String>,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub context_length: u64,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub embedding_length: u64,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub base_name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub draft: Option<serde_json::Value>,
    #[serde(default)]
    pub architecture: String,
    #[serde(default)]
    pub os: String,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

impl ModelConfig {
    /// A fresh config as Ollama's create handler starts it.
    pub fn new() -> ModelConfig {
        ModelConfig {
            architecture: "amd64".to_string(),
            os: "linux".to_string(),
            ..ModelConfig::default()
        }
    }
}

/// Serialises like Go's `json.NewEncoder(w).Encode(v)`: compact, HTML-sensitive characters
/// escaped (`<` `>` `&` and U+2028/U+2029), newline-terminated. Those characters can only
/// occur inside JSON strings, so escaping them in the output is safe.
pub fn go_json<T: Serialize + ?Sized>(value: &T) -> Vec<u8> {
    let compact = serde_json::to_string(value).unwrap_or_else(|_| "null".to_string());
    let mut out = String::with_capacity(compact.len() + 16);
    for c in compact.chars() {
        match c {
            '<' => out.push_str("\\u003c"),
            '>' => out.push_str("\\u003e"),
            '&' => out.push_str("\\u0026"),
            '\u{2028}' => out.push_str("\\u2028"),
            '\u{2029}' => out.push_str("\\u2029"),
            c => out.push(c),
        }
    }
    out.push('\n');
    out.into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_json_escapes_html_characters_like_encoding_json() {
        let params = serde_json::json!({"stop": ["<|eot_id|>", "a&b"], "temperature": 0.7});
        assert_eq!(
            String::from_utf8(go_json(&params)).unwrap(),
            "{\"stop\":[\"\\u003c|eot_id|\\u003e\",\"a\\u0026b\"],\"temperature\":0.7}\n"
        );
    }

    #[test]
    fn config_serialises_in_go_field_order_with_omitempty() {
        let mut config = ModelConfig::new();
        config.model_format = "gguf".into();
        config.model_family = "llama".into();
        config.model_families = Some(vec!["llama".into()]);
        config.model_type = "134.52M".into();
        config.file_type = "Q4_1".into();
        assert_eq!(
            String::from_utf8(go_json(&config)).unwrap(),
            "{\"model_format\":\"gguf\",\"model_family\":\"llama\",\"model_families\":[\"llama\"],\
             \"model_type\":\"134.52M\",\"file_type\":\"Q4_1\",\"architecture\":\"amd64\",\"os\":\"linux\"}\n"
        );
    }

    #[test]
    fn manifest_round_trips_with_ollama_field_names() {
        let digest = Digest::of(b"x");
        let manifest = Manifest::new(
            Layer::new(CONFIG_MEDIA_TYPE, digest, 10),
            vec![Layer::new(MEDIA_MODEL, digest, 5)],
        );
        let bytes = manifest.to_go_json();
        let text = String::from_utf8(bytes.clone()).unwrap();
        assert!(text.starts_with(
            "{\"schemaVersion\":2,\"mediaType\":\"application/vnd.docker.distribution.manifest.v2+json\",\"config\":{\"mediaType\":"
        ));
        let back: Manifest = serde_json::from_slice(&bytes).unwrap();
        assert_eq!(back, manifest);
        assert_eq!(back.total_size(), 15);
    }
}

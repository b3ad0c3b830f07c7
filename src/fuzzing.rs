//! Entry points for the coverage-guided fuzz targets in `fuzz/` (and for the regression test
//! that replays their corpora in every `cargo test`). Each takes arbitrary bytes and must
//! return, whatever they are: an error is fine, a panic, a hang or a huge allocation is a bug.

use serde_json::{Map, Value};

/// The Modelfile parser, and the parsed file written back (as `show --modelfile` does) and
/// parsed again. The text need not parse back: Ollama's writer does not quote `FROM`, and
/// rollama writes what Ollama writes.
pub fn modelfile(data: &[u8]) {
    if let Ok(parsed) = crate::modelfile::parse_bytes(data) {
        let _ = parsed.typed_parameters();
        let _ = crate::modelfile::parse(&parsed.to_string());
    }
}

/// The model-name parser and the paths and spellings made from a parsed name.
pub fn model_name(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(name) = crate::store::ModelName::parse(text) {
        let rel = name.manifest_rel_path();
        if name.is_valid() {
            let back = crate::store::ModelName::from_manifest_rel_path(&rel)
                .expect("a valid name's manifest path must name it");
            assert!(back.eq_fold(&name), "{text:?} → {rel:?}");
        }
        let _ = name.display_shortest();
    }
}

/// The GGUF reader on a file of these bytes, and what `show` reads from a parsed header.
pub fn gguf_header(data: &[u8]) {
    let reader = std::io::Cursor::new(data);
    if let Ok(gguf) = crate::gguf::Gguf::read(reader, data.len() as u64) {
        let _ = gguf.architecture();
        let _ = gguf.parameter_count();
        let _ = gguf.file_type_name();
        let _ = gguf.context_length();
        let _ = gguf.embedding_length();
        let _ = gguf.model_info(true);
        let _ = gguf.chat_template();
    }
}

/// The template parser, and a parsed template rendered with a conversation that has a system
/// prompt, turns, a tool and a tool call.
pub fn template(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(template) = crate::template::Template::parse(text) else {
        return;
    };
    let call =
        serde_json::json!({"function": {"name": "get_weather", "arguments": {"city": "Paris"}}});
    let tool = serde_json::json!({"type": "function", "function": {"name": "get_weather",
        "description": "Weather", "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}}});
    let mut answer = crate::template::Message::new("assistant", "");
    answer.tool_calls = vec![call];
    let values = crate::template::Values {
        system: "Be brief.".into(),
        messages: vec![
            crate::template::Message::new("user", "Hello"),
            crate::template::Message::new("assistant", "Hi!"),
            crate::template::Message::new("user", "Weather in Paris?"),
            answer,
            crate::template::Message::new("tool", "18 C"),
        ],
        tools: vec![tool],
        ..Default::default()
    };
    let _ = template.execute(&values);
    let legacy = crate::template::Values {
        force_legacy: true,
        ..values
    };
    let _ = template.execute(&legacy);
}

/// Request bodies as each route decodes and checks them before it looks the model up: the
/// native chat and generate bodies, and the OpenAI, Anthropic and Responses bodies translated
/// to native ones and checked in turn.
pub fn request_body(data: &[u8]) {
    use crate::server::routes;
    routes::check_body("/api/chat", data);
    routes::check_body("/api/generate", data);
    let Ok(object) = serde_json::from_slice::<Map<String, Value>>(data) else {
        return;
    };
    for route in [
        "/v1/chat/completions",
        "/v1/completions",
        "/v1/messages",
        "/v1/responses",
    ] {
        routes::check_translated(route, &object);
    }
}

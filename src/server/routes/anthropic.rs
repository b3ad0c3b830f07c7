//! Anthropic's Messages API, `POST /v1/messages`: translated into a native `/api/chat`
//! request and back (see `server/compat.rs`), as Ollama does. Beyond Ollama: `tool_choice`
//! (`auto`, `any`, `tool`, `none`) and `disable_parallel_tool_use` are enforced, and `options` /
//! `keep_alive` may be sent as extra fields.

use super::chat;
use super::openai::async_stream_events;
use crate::server::compat::{
    json_response, json_type_name, native_body, options_with, random_hex, request_object,
    sse_event, sse_response, NativeReply,
};
use crate::server::AppState;
use actix_web::http::StatusCode;
use actix_web::{web, HttpResponse};
use serde_json::{json, Map, Value};

/// Anthropic's error body with the native status.
pub fn error(status: StatusCode, message: &str) -> HttpResponse {
    HttpResponse::build(status).json(error_body(status, message))
}

/// Anthropic's `{"type": "error", "error": {type, message}, request_id}`; the type follows
/// the status.
pub(crate) fn error_body(status: StatusCode, message: &str) -> Value {
    let kind = match status.as_u16() {
        400 => "invalid_request_error",
        401 => "authentication_error",
        403 => "permission_error",
        404 => "not_found_error",
        413 => "request_too_large",
        429 => "rate_limit_error",
        503 | 529 => "overloaded_error",
        _ => "api_error",
    };
    json!({
        "type": "error",
        "error": {"type": kind, "message": message},
        "request_id": format!("req_{}", random_hex(24)),
    })
}

fn bad_request(message: impl AsRef<str>) -> HttpResponse {
    error(StatusCode::BAD_REQUEST, message.as_ref())
}

/// The text of a `system` field or a `tool_result` content: a string or text blocks.
fn text_of(content: &Value) -> String {
    match content {
        Value::String(s) => s.clone(),
        Value::Array(blocks) => blocks
            .iter()
            .filter(|b| b["type"] == "text")
            .filter_map(|b| b["text"].as_str())
            .collect::<Vec<_>>()
            .join("\n"),
        _ => String::new(),
    }
}

/// Anthropic messages as native ones: tool results become `tool` messages (before the
/// user's own text), tool uses become the assistant's `tool_calls`.
fn native_messages(system: Option<&Value>, messages: &[Value]) -> Result<Vec<Value>, String> {
    let mut out = Vec::new();
    if let Some(system) = system.filter(|s| !s.is_null()) {
        let text = text_of(system);
        if !text.is_empty() {
            out.push(json!({"role": "system", "content": text}));
        }
    }
    let mut names: Map<String, Value> = Map::new();
    for message in messages {
        let role = message["role"].as_str().unwrap_or_default();
        let mut text = String::new();
        let mut images = Vec::new();
        let mut calls = Vec::new();
        let mut thinking = String::new();
        match &message["content"] {
            Value::String(s) => text.push_str(s),
            Value::Array(blocks) => {
                for block in blocks {
                    match block["type"].as_str().unwrap_or_default() {
                        "text" => {
                            if !text.is_empty() {
                                text.push('\n');
                            }
                            text.push_str(block["text"].as_str().unwrap_or_default());
                        }
                        "image" => {
                            let source = &block["source"];
                            match (source["type"].as_str(), source["data"].as_str()) {
                                (Some("base64"), Some(data)) => images.push(json!(data)),
                                _ => {
                                    return Err(
                                        "invalid image source: only base64 images are supported"
                                            .to_string(),
                                    )
                                }
                            }
                        }
                        "tool_use" => {
                            let id = block["id"]
                                .as_str()
                                .ok_or("tool_use block missing required 'id' field")?;
                            let name = block["name"]
                                .as_str()
                                .ok_or("tool_use block missing required 'name' field")?;
                            names.insert(id.to_string(), json!(name));
                            calls.push(json!({
                                "id": id,
                                "function": {"index": calls.len(), "name": name,
                                             "arguments": block.get("input").cloned().unwrap_or(json!({}))},
                            }));
                        }
                        "tool_result" => {
                            let id = block["tool_use_id"].as_str().unwrap_or_default();
                            out.push(json!({
                                "role": "tool",
                                "content": text_of(&block["content"]),
                                "tool_call_id": id,
                                "tool_name": names.get(id).cloned().unwrap_or(json!("")),
                            }));
                        }
                        "thinking" => {
                            thinking.push_str(block["thinking"].as_str().unwrap_or_default())
                        }
                        _ => {}
                    }
                }
            }
            Value::Null => {}
            other => {
                return Err(format!(
                    "invalid message content type: {}",
                    json_type_name(other)
                ))
            }
        }
        if text.is_empty() && images.is_empty() && calls.is_empty() && thinking.is_empty() {
            continue;
        }
        let mut native = json!({"role": role, "content": text});
        if !images.is_empty() {
            native["images"] = json!(images);
        }
        if !calls.is_empty() {
            native["tool_calls"] = json!(calls);
        }
        if !thinking.is_empty() {
            native["thinking"] = json!(thinking);
        }
        out.push(native);
    }
    Ok(out)
}

/// Anthropic's `tool_choice` as the native (OpenAI-form) one, and whether calls may be parallel.
fn tool_choice_of(choice: Option<&Value>) -> Result<(Option<Value>, Option<bool>), String> {
    let Some(choice) = choice.filter(|c| !c.is_null()) else {
        return Ok((None, None));
    };
    let parallel = choice["disable_parallel_tool_use"]
        .as_bool()
        .map(|disabled| !disabled);
    let native = match choice["type"].as_str() {
        Some("auto") => json!("auto"),
        Some("any") => json!("required"),
        Some("none") => json!("none"),
        Some("tool") => match choice["name"].as_str() {
            Some(name) => json!({"type": "function", "function": {"name": name}}),
            None => return Err("tool_choice of type 'tool' requires a 'name'".to_string()),
        },
        _ => return Err(format!("invalid tool_choice: {choice}")),
    };
    Ok((Some(native), parallel))
}

pub(crate) fn native_request(request: &Map<String, Value>) -> Result<Value, String> {
    let model = request
        .get("model")
        .and_then(Value::as_str)
        .unwrap_or_default();
    if model.is_empty() {
        return Err(String::from("model is required"));
    }
    let max_tokens = request
        .get("max_tokens")
        .and_then(Value::as_i64)
        .unwrap_or(0);
    if max_tokens <= 0 {
        return Err(String::from("max_tokens is required and must be positive"));
    }
    let messages = match request.get("messages").and_then(Value::as_array) {
        Some(m) if !m.is_empty() => m,
        _ => return Err(String::from("messages is required")),
    };
    let messages = native_messages(request.get("system"), messages)?;
    let number = |key: &str| request.get(key).filter(|v| v.is_number()).cloned();
    let stop = match request.get("stop_sequences") {
        Some(Value::Array(items)) if items.iter().all(Value::is_string) => {
            Some(Value::Array(items.clone()))
        }
        None | Some(Value::Null) => None,
        Some(_) => return Err(String::from("stop_sequences must be an array of strings")),
    };
    let options = options_with(
        request.get("options"),
        &[
            ("num_predict", Some(json!(max_tokens))),
            ("temperature", number("temperature")),
            ("top_p", number("top_p")),
            ("top_k", number("top_k")),
            ("stop", stop),
        ],
    );
    let mut native = json!({
        "model": model,
        "messages": messages,
        "stream": request.get("stream").and_then(Value::as_bool).unwrap_or(false),
        "options": options,
    });
    if let Some(tools) = request.get("tools").and_then(Value::as_array) {
        let tools: Vec<Value> = tools
            .iter()
            .map(|t| {
                json!({"type": "function", "function": {
                    "name": t["name"], "description": t["description"],
                    "parameters": t.get("input_schema").cloned().unwrap_or(json!({"type": "object"})),
                }})
            })
            .collect();
        native["tools"] = json!(tools);
    }
    let (choice, parallel) = tool_choice_of(request.get("tool_choice"))?;
    if let Some(choice) = choice {
        native["tool_choice"] = choice;
    }
    if let Some(parallel) = parallel {
        native["parallel_tool_calls"] = json!(parallel);
    }
    match request.get("thinking").and_then(|t| t["type"].as_str()) {
        Some("enabled") => native["think"] = json!(true),
        Some("disabled") => native["think"] = json!(false),
        _ => {}
    }
    if let Some(keep_alive) = request.get("keep_alive").filter(|v| !v.is_null()) {
        native["keep_alive"] = keep_alive.clone();
    }
    Ok(native)
}

fn stop_reason(done_reason: &Value, had_calls: bool) -> Value {
    match done_reason.as_str() {
        _ if had_calls => json!("tool_use"),
        Some("length") => json!("max_tokens"),
        Some("stop") => json!("end_turn"),
        Some("") | None => Value::Null,
        Some(_) => json!("stop_sequence"),
    }
}

fn tool_use_block(call: &Value) -> Value {
    json!({
        "type": "tool_use",
        "id": call["id"],
        "name": call["function"]["name"],
        "input": call["function"]["arguments"],
    })
}

pub async fn messages(state: web::Data<AppState>, body: web::Bytes) -> HttpResponse {
    let native = match request_object(&body).and_then(|request| native_request(&request)) {
        Ok(native) => native,
        Err(message) => return bad_request(message),
    };
    let model = native["model"].clone();
    let id = format!("msg_{}", random_hex(24));
    let reply = chat::chat_with(state, native_body(&native), chat::Thinking::Relaxed).await;
    match NativeReply::read(reply).await {
        NativeReply::Error(status, message) => error(status, &message),
        NativeReply::Object(done, meta) => {
            let message = &done["message"];
            let mut content = Vec::new();
            if let Some(thinking) = message["thinking"].as_str().filter(|t| !t.is_empty()) {
                content.push(json!({"type": "thinking", "thinking": thinking, "signature": ""}));
            }
            if let Some(text) = message["content"].as_str().filter(|t| !t.is_empty()) {
                content.push(json!({"type": "text", "text": text}));
            }
            let calls = message["tool_calls"]
                .as_array()
                .cloned()
                .unwrap_or_default();
            content.extend(calls.iter().map(tool_use_block));
            let mut usage = json!({
                "input_tokens": done["prompt_eval_count"],
                "output_tokens": done["eval_count"],
            });
            if meta.prompt_truncated {
                usage["prompt_truncated"] = json!(true);
            }
            json_response(
                &json!({
                    "id": id,
                    "type": "message",
                    "role": "assistant",
                    "model": model,
                    "content": content,
                    "stop_reason": stop_reason(&done["done_reason"], !calls.is_empty()),
                    "stop_sequence": null,
                    "usage": usage,
                }),
                meta.prompt_truncated,
            )
        }
        NativeReply::Chunks(chunks, meta) => {
            let truncated = meta.prompt_truncated;
            let events = async_stream_events(chunks, move |native, state: &mut MessageStream| {
                let mut out = Vec::new();
                let event = |out: &mut Vec<bytes::Bytes>, data: Value| {
                    let kind = data["type"].as_str().unwrap_or_default().to_string();
                    out.push(sse_event(Some(&kind), &data));
                };
                if !state.started {
                    state.started = true;
                    event(
                        &mut out,
                        json!({"type": "message_start", "message": {
                            "id": id, "type": "message", "role": "assistant", "model": model,
                            "content": [], "stop_reason": null, "stop_sequence": null,
                            "usage": {"input_tokens": 0, "output_tokens": 0},
                        }}),
                    );
                }
                if let Some(message) = native["error"].as_str() {
                    let mut body = error_body(StatusCode::INTERNAL_SERVER_ERROR, message);
                    body.as_object_mut().map(|b| b.remove("request_id"));
                    event(&mut out, body);
                    return out;
                }
                let message = &native["message"];
                // Reasoning streams as a thinking block, which closes when the answer (or the
                // end) comes.
                if let Some(thinking) = message["thinking"].as_str().filter(|t| !t.is_empty()) {
                    if !state.thinking_open {
                        state.thinking_open = true;
                        event(
                            &mut out,
                            json!({"type": "content_block_start", "index": state.index,
                            "content_block": {"type": "thinking", "thinking": "", "signature": ""}}),
                        );
                    }
                    event(
                        &mut out,
                        json!({"type": "content_block_delta", "index": state.index,
                        "delta": {"type": "thinking_delta", "thinking": thinking}}),
                    );
                }
                let answer_begins = crate::server::compat::answer_begins(&native);
                if state.thinking_open && answer_begins {
                    state.thinking_open = false;
                    event(
                        &mut out,
                        json!({"type": "content_block_stop", "index": state.index}),
                    );
                    state.index += 1;
                }
                if let Some(text) = message["content"].as_str().filter(|t| !t.is_empty()) {
                    if !state.text_open {
                        state.text_open = true;
                        event(
                            &mut out,
                            json!({"type": "content_block_start", "index": state.index,
                            "content_block": {"type": "text", "text": ""}}),
                        );
                    }
                    event(
                        &mut out,
                        json!({"type": "content_block_delta", "index": state.index,
                        "delta": {"type": "text_delta", "text": text}}),
                    );
                }
                for call in message["tool_calls"].as_array().into_iter().flatten() {
                    if state.text_open {
                        state.text_open = false;
                        event(
                            &mut out,
                            json!({"type": "content_block_stop", "index": state.index}),
                        );
                        state.index += 1;
                    }
                    let mut start = tool_use_block(call);
                    start["input"] = json!({});
                    event(
                        &mut out,
                        json!({"type": "content_block_start", "index": state.index,
                        "content_block": start}),
                    );
                    event(
                        &mut out,
                        json!({"type": "content_block_delta", "index": state.index,
                        "delta": {"type": "input_json_delta",
                                  "partial_json": call["function"]["arguments"].to_string()}}),
                    );
                    event(
                        &mut out,
                        json!({"type": "content_block_stop", "index": state.index}),
                    );
                    state.index += 1;
                    state.calls += 1;
                }
                if native["done"].as_bool().unwrap_or(false) {
                    if state.text_open {
                        event(
                            &mut out,
                            json!({"type": "content_block_stop", "index": state.index}),
                        );
                    }
                    let mut usage = json!({"input_tokens": native["prompt_eval_count"],
                                           "output_tokens": native["eval_count"]});
                    if truncated {
                        usage["prompt_truncated"] = json!(true);
                    }
                    event(
                        &mut out,
                        json!({"type": "message_delta",
                        "delta": {"stop_reason": stop_reason(&native["done_reason"], state.calls > 0),
                                  "stop_sequence": null},
                        "usage": usage}),
                    );
                    event(&mut out, json!({"type": "message_stop"}));
                }
                out
            });
            sse_response(events, truncated)
        }
    }
}

#[derive(Default)]
struct MessageStream {
    started: bool,
    thinking_open: bool,
    text_open: bool,
    index: usize,
    calls: usize,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tool_use_and_results_translate_to_native_messages() {
        let messages = json!([
            {"role": "user", "content": "Weather in Paris?"},
            {"role": "assistant", "content": [{"type": "text", "text": "Checking."},
                {"type": "tool_use", "id": "toolu_1", "name": "get_weather", "input": {"city": "Paris"}}]},
            {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_1", "content": "Sunny"},
                {"type": "text", "text": "Thanks"}]},
        ]);
        let native =
            native_messages(Some(&json!("Be brief.")), messages.as_array().unwrap()).unwrap();
        assert_eq!(native[0], json!({"role": "system", "content": "Be brief."}));
        assert_eq!(
            native[2]["tool_calls"][0]["function"]["arguments"],
            json!({"city": "Paris"})
        );
        assert_eq!(native[3]["role"], "tool");
        assert_eq!(native[3]["tool_name"], "get_weather");
        assert_eq!(native[4], json!({"role": "user", "content": "Thanks"}));
        let missing =
            json!([{"role": "assistant", "content": [{"type": "tool_use", "name": "f"}]}]);
        assert_eq!(
            native_messages(None, missing.as_array().unwrap()).unwrap_err(),
            "tool_use block missing required 'id' field"
        );
    }

    #[test]
    fn requests_are_validated_as_anthropic_does() {
        let check = |body: Value| native_request(body.as_object().unwrap()).unwrap_err();
        assert_eq!(
            check(json!({"max_tokens": 5, "messages": [{"role": "user", "content": "x"}]})),
            "model is required"
        );
        assert_eq!(
            check(json!({"model": "m", "messages": [{"role": "user", "content": "x"}]})),
            "max_tokens is required and must be positive"
        );
        assert_eq!(
            check(json!({"model": "m", "max_tokens": 5, "messages": []})),
            "messages is required"
        );
        let ok = native_request(
            json!({"model": "m", "max_tokens": 5, "stop_sequences": ["\n"],
                   "tool_choice": {"type": "any", "disable_parallel_tool_use": true},
                   "messages": [{"role": "user", "content": "x"}]})
            .as_object()
            .unwrap(),
        )
        .unwrap();
        assert_eq!(ok["options"], json!({"num_predict": 5, "stop": ["\n"]}));
        assert_eq!(ok["tool_choice"], "required");
        assert_eq!(ok["parallel_tool_calls"], false);
    }

    #[test]
    fn stop_reasons_follow_anthropic() {
        assert_eq!(stop_reason(&json!("stop"), false), json!("end_turn"));
        assert_eq!(stop_reason(&json!("length"), false), json!("max_tokens"));
        assert_eq!(stop_reason(&json!("stop"), true), json!("tool_use"));
    }
}

//! OpenAI's API: `/v1/chat/completions`, `/v1/completions`, `/v1/models`. Each request is
//! translated into a native `/api/chat` or `/api/generate` request, run through the native
//! handler, and its reply translated back (see `server/compat.rs`), as Ollama's middleware
//! does. Beyond Ollama: `tool_choice` and `parallel_tool_calls` are enforced,
//! `max_completion_tokens` is honoured, and `options` / `keep_alive` may be sent as extra fields.

use super::{chat, embed, generate, models};
use crate::server::compat::{
    json_response, json_type_name, native_body, options_with, random_digits, sse_done, sse_event,
    sse_response, stop_list, unix_now, NativeReply,
};
use crate::server::AppState;
use actix_web::http::StatusCode;
use actix_web::{web, HttpResponse};
use futures_util::StreamExt;
use serde_json::{json, Map, Value};

/// OpenAI's error body with the native status.
pub fn error(status: StatusCode, message: &str) -> HttpResponse {
    HttpResponse::build(status).json(error_body(status, message, None))
}

/// OpenAI's `{"error": {message, type, param, code}}`; the type follows the status.
pub(crate) fn error_body(status: StatusCode, message: &str, code: Option<&str>) -> Value {
    let kind = match status.as_u16() {
        400 | 401 | 413 => "invalid_request_error",
        404 => "not_found_error",
        _ => "api_error",
    };
    json!({"error": {"message": message, "type": kind, "param": null, "code": code}})
}

fn bad_request(message: impl AsRef<str>) -> HttpResponse {
    error(StatusCode::BAD_REQUEST, message.as_ref())
}

/// The request body as a JSON object, or OpenAI's 400.
fn parse_object(body: &[u8]) -> Result<Map<String, Value>, String> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err(String::from("missing request body"));
    }
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(map)) => Ok(crate::server::compat::without_nulls(map)),
        Ok(other) => Err(format!(
            "invalid request: expected a JSON object, got {}",
            json_type_name(&other)
        )),
        Err(e) => Err(e.to_string()),
    }
}

/// The `data:` of an error event inside an SSE stream.
fn stream_error(message: &str) -> Value {
    json!({"error": {"message": message, "type": "api_error", "param": null, "code": null}})
}

/// A number field, or a 400 naming it.
fn number(request: &Map<String, Value>, key: &str) -> Result<Option<Value>, String> {
    match request.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(v @ Value::Number(_)) => Ok(Some(v.clone())),
        Some(other) => Err(format!(
            "invalid type for '{key}': expected a number, got {}",
            json_type_name(other)
        )),
    }
}

/// `usage` from a native final chunk.
fn usage(done: &Value, truncated: bool) -> Value {
    let prompt = done["prompt_eval_count"].as_u64().unwrap_or(0);
    let completion = done["eval_count"].as_u64().unwrap_or(0);
    let mut usage = json!({
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
    });
    if truncated {
        usage["prompt_truncated"] = json!(true);
    }
    usage
}

/// OpenAI's `logprobs.content` entries from Ollama's `logprobs`.
fn openai_logprobs(native: &Value) -> Vec<Value> {
    native
        .as_array()
        .map(|list| {
            list.iter()
                .map(|entry| {
                    json!({
                        "token": entry["token"],
                        "logprob": entry["logprob"],
                        "bytes": entry["bytes"],
                        "top_logprobs": entry["top_logprobs"],
                    })
                })
                .collect()
        })
        .unwrap_or_default()
}

// ------------------------------------------------------------------ chat completions

/// Translates OpenAI chat messages into native ones.
fn native_messages(messages: &[Value]) -> Result<Vec<Value>, String> {
    let mut out = Vec::new();
    // Tool results name their call; the native message names the tool.
    let mut call_names: Map<String, Value> = Map::new();
    for message in messages {
        let role = message["role"].as_str().unwrap_or_default();
        let mut native = json!({"role": role});
        let mut text = String::new();
        let mut images = Vec::new();
        match &message["content"] {
            Value::Null => {}
            Value::String(s) => text.push_str(s),
            Value::Array(parts) => {
                for part in parts {
                    match part["type"].as_str() {
                        Some("text") | Some("input_text") => {
                            if !text.is_empty() {
                                text.push('\n');
                            }
                            text.push_str(part["text"].as_str().unwrap_or_default());
                        }
                        Some("image_url") => {
                            let url = part["image_url"]["url"]
                                .as_str()
                                .or_else(|| part["image_url"].as_str())
                                .unwrap_or_default();
                            images.push(image_data(url)?);
                        }
                        _ => return Err("invalid message format".to_string()),
                    }
                }
            }
            other if message.get("tool_calls").is_none() => {
                return Err(format!(
                    "invalid message content type: {}",
                    json_type_name(other)
                ))
            }
            _ => {}
        }
        native["content"] = json!(text);
        if !images.is_empty() {
            native["images"] = json!(images);
        }
        if let Some(reasoning) = message["reasoning"].as_str() {
            native["thinking"] = json!(reasoning);
        }
        if let Some(calls) = message["tool_calls"].as_array() {
            let mut native_calls = Vec::new();
            for call in calls {
                let function = &call["function"];
                let name = function["name"].as_str().unwrap_or_default();
                let arguments = match &function["arguments"] {
                    Value::String(s) if s.trim().is_empty() => json!({}),
                    Value::String(s) => serde_json::from_str::<Value>(s)
                        .map_err(|_| "invalid tool call arguments".to_string())?,
                    Value::Null => json!({}),
                    other => other.clone(),
                };
                if let Some(id) = call["id"].as_str() {
                    call_names.insert(id.to_string(), json!(name));
                }
                native_calls.push(json!({
                    "id": call["id"],
                    "function": {"index": native_calls.len(), "name": name, "arguments": arguments},
                }));
            }
            native["tool_calls"] = json!(native_calls);
        }
        if role == "tool" {
            let id = message["tool_call_id"].as_str().unwrap_or_default();
            let name = message["name"]
                .as_str()
                .map(|n| json!(n))
                .or_else(|| call_names.get(id).cloned())
                .unwrap_or(json!(""));
            native["tool_name"] = name;
            native["tool_call_id"] = json!(id);
        }
        out.push(native);
    }
    Ok(out)
}

/// The base64 data of an image part (Ollama takes only data URLs).
fn image_data(url: &str) -> Result<String, String> {
    if url.starts_with("http://") || url.starts_with("https://") {
        return Err(
            "image URLs are not currently supported, please use base64 encoded data instead"
                .to_string(),
        );
    }
    for prefix in [
        "data:image/jpeg;base64,",
        "data:image/jpg;base64,",
        "data:image/png;base64,",
        "data:image/webp;base64,",
        "data:;base64,",
    ] {
        if let Some(data) = url.strip_prefix(prefix) {
            // Ollama decodes the data here and answers a bad one as it answers a bad prefix.
            crate::server::images::decode_base64(data)
                .map_err(|_| "invalid image input".to_string())?;
            return Ok(data.to_string());
        }
    }
    Err("invalid image input".to_string())
}

/// OpenAI's `reasoning_effort` as Ollama's `think`.
fn think_of(effort: Option<&Value>) -> Result<Option<Value>, String> {
    let Some(effort) = effort.and_then(Value::as_str) else {
        return Ok(None);
    };
    Ok(match effort {
        "" => None,
        "none" => Some(json!(false)),
        "minimal" => Some(json!("low")),
        "low" | "medium" | "high" | "max" => Some(json!(effort)),
        "xhigh" | "ultra" => Some(json!("max")),
        other => {
            return Err(format!(
                "invalid reasoning value: \"{other}\" (must be \"minimal\", \"low\", \"medium\", \"high\", \"xhigh\", \"ultra\", \"max\", or \"none\")"
            ))
        }
    })
}

/// `response_format` as Ollama's `format`.
fn format_of(response_format: Option<&Value>) -> Option<Value> {
    let format = response_format?;
    match format["type"].as_str() {
        Some("json_object") => Some(json!("json")),
        Some("json_schema") => format["json_schema"]
            .get("schema")
            .cloned()
            .filter(Value::is_object),
        _ => None,
    }
}

/// OpenAI's `{id, type, function: {name, arguments: "<json>"}}` from a native call.
fn openai_tool_call(call: &Value, index: usize) -> Value {
    let function = &call["function"];
    let arguments = match &function["arguments"] {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    json!({
        "id": call["id"],
        "index": index,
        "type": "function",
        "function": {"name": function["name"], "arguments": arguments},
    })
}

fn finish_reason(done_reason: &Value, had_calls: bool) -> Value {
    match done_reason.as_str() {
        Some(_) if had_calls => json!("tool_calls"),
        Some("length") => json!("length"),
        Some("") | None => Value::Null,
        Some(_) => json!("stop"),
    }
}

/// The native `/api/chat` request for an OpenAI chat completion request.
pub(crate) fn native_chat_request(request: &Map<String, Value>) -> Result<Value, String> {
    let messages = match request.get("messages") {
        Some(Value::Array(m)) if !m.is_empty() => m,
        Some(Value::Array(_)) | None => return Err(String::from("[] is too short - 'messages'")),
        Some(other) => {
            return Err(format!(
                "invalid type for 'messages': {}",
                json_type_name(other)
            ))
        }
    };
    let messages = native_messages(messages)?;
    let stop = stop_list(request.get("stop"))?;
    let max_tokens = number(request, "max_completion_tokens")?.or(number(request, "max_tokens")?);
    let options = options_with(
        request.get("options"),
        &[
            ("num_predict", max_tokens),
            (
                "temperature",
                Some(number(request, "temperature")?.unwrap_or(json!(1.0))),
            ),
            (
                "top_p",
                Some(number(request, "top_p")?.unwrap_or(json!(1.0))),
            ),
            ("seed", number(request, "seed")?),
            ("frequency_penalty", number(request, "frequency_penalty")?),
            ("presence_penalty", number(request, "presence_penalty")?),
            ("stop", stop),
        ],
    );
    let effort = request
        .get("reasoning_effort")
        .or_else(|| request.get("reasoning").and_then(|r| r.get("effort")));
    let think = think_of(effort)?;
    let mut native = json!({
        "model": request.get("model").cloned().unwrap_or(json!("")),
        "messages": messages,
        "stream": request.get("stream").and_then(Value::as_bool).unwrap_or(false),
        "options": options,
    });
    let copy = |native: &mut Value, key: &str, value: Option<Value>| {
        if let Some(value) = value.filter(|v| !v.is_null()) {
            native[key] = value;
        }
    };
    copy(
        &mut native,
        "format",
        format_of(request.get("response_format")),
    );
    copy(&mut native, "think", think);
    copy(&mut native, "tools", request.get("tools").cloned());
    copy(
        &mut native,
        "tool_choice",
        request.get("tool_choice").cloned(),
    );
    copy(
        &mut native,
        "parallel_tool_calls",
        request.get("parallel_tool_calls").cloned(),
    );
    copy(
        &mut native,
        "keep_alive",
        request.get("keep_alive").cloned(),
    );
    if request.get("logprobs").and_then(Value::as_bool) == Some(true) {
        native["logprobs"] = json!(true);
        copy(
            &mut native,
            "top_logprobs",
            request.get("top_logprobs").cloned(),
        );
    }
    Ok(native)
}

/// The request's native translation, and whether the stream should end with usage.
fn translated(
    body: &[u8],
    translate: fn(&Map<String, Value>) -> Result<Value, String>,
) -> Result<(Value, bool), String> {
    let request = parse_object(body)?;
    let native = translate(&request)?;
    let include_usage = request
        .get("stream_options")
        .and_then(|o| o.get("include_usage"))
        .and_then(Value::as_bool)
        .unwrap_or(false);
    Ok((native, include_usage))
}

pub async fn chat_completions(state: web::Data<AppState>, body: web::Bytes) -> HttpResponse {
    let (native, include_usage) = match translated(&body, native_chat_request) {
        Ok(translated) => translated,
        Err(message) => return bad_request(message),
    };
    let model = native["model"].clone();
    let id = format!("chatcmpl-{}", random_digits());
    let reply = NativeReply::read(chat::chat(state, native_body(&native)).await).await;
    match reply {
        NativeReply::Error(status, message) => error(status, &message),
        NativeReply::Object(done, meta) => {
            let message = &done["message"];
            let calls: Vec<Value> = message["tool_calls"]
                .as_array()
                .map(|c| {
                    c.iter()
                        .enumerate()
                        .map(|(i, c)| openai_tool_call(c, i))
                        .collect()
                })
                .unwrap_or_default();
            let mut out_message = json!({"role": "assistant", "content": message["content"]});
            if !calls.is_empty() {
                out_message["tool_calls"] = json!(calls);
            }
            if let Some(thinking) = message["thinking"].as_str().filter(|t| !t.is_empty()) {
                out_message["reasoning"] = json!(thinking);
            }
            let mut choice = json!({
                "index": 0,
                "message": out_message,
                "finish_reason": finish_reason(&done["done_reason"], !calls.is_empty()),
            });
            if done.get("logprobs").is_some() {
                choice["logprobs"] = json!({"content": openai_logprobs(&done["logprobs"])});
            }
            json_response(
                &json!({
                    "id": id,
                    "object": "chat.completion",
                    "created": unix_now(),
                    "model": model,
                    "system_fingerprint": "fp_ollama",
                    "choices": [choice],
                    "usage": usage(&done, meta.prompt_truncated),
                }),
                meta.prompt_truncated,
            )
        }
        NativeReply::Chunks(chunks, meta) => {
            let created = unix_now();
            let chunk = move |choices: Value| {
                json!({
                    "id": id,
                    "object": "chat.completion.chunk",
                    "created": created,
                    "model": model,
                    "system_fingerprint": "fp_ollama",
                    "choices": choices,
                })
            };
            let truncated = meta.prompt_truncated;
            let events = async_stream_events(chunks, move |native, state: &mut ChatStream| {
                let mut out = Vec::new();
                if let Some(message) = native["error"].as_str() {
                    out.push(sse_event(None, &stream_error(message)));
                    out.push(sse_done());
                    return out;
                }
                let message = &native["message"];
                let content = message["content"].as_str().unwrap_or_default();
                let reasoning = message["thinking"].as_str().unwrap_or_default();
                let calls: Vec<Value> = message["tool_calls"]
                    .as_array()
                    .map(|c| {
                        c.iter()
                            .enumerate()
                            .map(|(i, c)| openai_tool_call(c, state.calls + i))
                            .collect()
                    })
                    .unwrap_or_default();
                state.calls += calls.len();
                let done = native["done"].as_bool().unwrap_or(false);
                if !content.is_empty()
                    || !calls.is_empty()
                    || !reasoning.is_empty()
                    || !state.sent_role
                {
                    let mut delta = json!({"content": content});
                    // The reasoning as Ollama's OpenAI layer streams it.
                    if !reasoning.is_empty() {
                        delta["reasoning"] = json!(reasoning);
                    }
                    if !state.sent_role {
                        delta["role"] = json!("assistant");
                        state.sent_role = true;
                    }
                    if !calls.is_empty() {
                        delta["tool_calls"] = json!(calls);
                    }
                    let mut choice = json!({"index": 0, "delta": delta, "finish_reason": null});
                    if native.get("logprobs").is_some() {
                        choice["logprobs"] =
                            json!({"content": openai_logprobs(&native["logprobs"])});
                    }
                    out.push(sse_event(None, &chunk(json!([choice]))));
                }
                if done {
                    let reason = finish_reason(&native["done_reason"], state.calls > 0);
                    out.push(sse_event(
                        None,
                        &chunk(json!([{"index": 0, "delta": {}, "finish_reason": reason}])),
                    ));
                    if include_usage {
                        let mut last = chunk(json!([]));
                        last["usage"] = usage(&native, truncated);
                        out.push(sse_event(None, &last));
                    }
                    out.push(sse_done());
                }
                out
            });
            sse_response(events, truncated)
        }
    }
}

#[derive(Default)]
struct ChatStream {
    sent_role: bool,
    calls: usize,
}

/// Maps native chunks to SSE events through `translate`, which keeps its own state. The
/// native stream's last chunk is the one that is `done` or carries an `error`; the SSE stream
/// ends after its events (or with an error event when the native stream stops early).
pub(crate) fn async_stream_events<S, F>(
    chunks: std::pin::Pin<Box<dyn futures_util::Stream<Item = Value>>>,
    translate: F,
) -> impl futures_util::Stream<Item = bytes::Bytes>
where
    S: Default + 'static,
    F: FnMut(Value, &mut S) -> Vec<bytes::Bytes> + 'static,
{
    futures_util::stream::unfold(
        (chunks, translate, S::default(), false),
        |(mut chunks, mut translate, mut state, ended)| async move {
            if ended {
                return None;
            }
            let native = chunks
                .next()
                .await
                .unwrap_or_else(|| json!({"error": crate::engine::RUNNER_STOPPED}));
            let last = native["done"].as_bool().unwrap_or(false) || native.get("error").is_some();
            let events = translate(native, &mut state);
            Some((
                futures_util::stream::iter(events),
                (chunks, translate, state, last),
            ))
        },
    )
    .flatten()
}

// ------------------------------------------------------------------ completions

pub(crate) fn native_generate_request(request: &Map<String, Value>) -> Result<Value, String> {
    let prompt = match request.get("prompt") {
        Some(Value::String(s)) => s.clone(),
        None | Some(Value::Null) => String::new(),
        Some(other) => {
            return Err(format!(
                "invalid type for 'prompt': only a string is supported, got {}",
                json_type_name(other)
            ))
        }
    };
    let stop = stop_list(request.get("stop"))?;
    let top_p = number(request, "top_p")?.filter(|v| v.as_f64() != Some(0.0));
    let options = options_with(
        request.get("options"),
        &[
            ("num_predict", number(request, "max_tokens")?),
            (
                "temperature",
                Some(number(request, "temperature")?.unwrap_or(json!(1.0))),
            ),
            ("top_p", Some(top_p.unwrap_or(json!(1.0)))),
            (
                "frequency_penalty",
                Some(number(request, "frequency_penalty")?.unwrap_or(json!(0.0))),
            ),
            (
                "presence_penalty",
                Some(number(request, "presence_penalty")?.unwrap_or(json!(0.0))),
            ),
            ("seed", number(request, "seed")?),
            ("stop", stop),
        ],
    );
    let mut native = json!({
        "model": request.get("model").cloned().unwrap_or(json!("")),
        "prompt": prompt,
        "stream": request.get("stream").and_then(Value::as_bool).unwrap_or(false),
        "options": options,
    });
    if let Some(suffix) = request.get("suffix").and_then(Value::as_str) {
        native["suffix"] = json!(suffix);
    }
    if let Some(keep_alive) = request.get("keep_alive").filter(|v| !v.is_null()) {
        native["keep_alive"] = keep_alive.clone();
    }
    if let Some(n) = request
        .get("logprobs")
        .and_then(Value::as_i64)
        .filter(|n| *n > 0)
    {
        native["logprobs"] = json!(true);
        native["top_logprobs"] = json!(n);
    }
    Ok(native)
}

/// OpenAI's legacy completions `logprobs` object from Ollama's entries.
/// A legacy completion (or one of its stream chunks) around `choices`.
fn completion_object(id: &str, model: &Value, choices: Value) -> Value {
    json!({
        "id": id,
        "object": "text_completion",
        "created": unix_now(),
        "model": model,
        "system_fingerprint": "fp_ollama",
        "choices": choices,
    })
}

/// The choice made of a native generate reply or chunk; `finished` gives it its finish reason.
fn completion_choice(native: &Value, finished: bool) -> Value {
    let mut choice = json!({
        "text": native["response"],
        "index": 0,
        "finish_reason": if finished { finish_reason(&native["done_reason"], false) } else { Value::Null },
    });
    if native.get("logprobs").is_some() {
        choice["logprobs"] = completion_logprobs(&native["logprobs"]);
    }
    choice
}

fn completion_logprobs(native: &Value) -> Value {
    let entries = native.as_array().cloned().unwrap_or_default();
    json!({
        "tokens": entries.iter().map(|e| e["token"].clone()).collect::<Vec<_>>(),
        "token_logprobs": entries.iter().map(|e| e["logprob"].clone()).collect::<Vec<_>>(),
        "top_logprobs": entries.iter().map(|e| {
            let mut top = Map::new();
            for alt in e["top_logprobs"].as_array().into_iter().flatten() {
                if let Some(token) = alt["token"].as_str() {
                    top.insert(token.to_string(), alt["logprob"].clone());
                }
            }
            Value::Object(top)
        }).collect::<Vec<_>>(),
    })
}

pub async fn completions(state: web::Data<AppState>, body: web::Bytes) -> HttpResponse {
    let (native, include_usage) = match translated(&body, native_generate_request) {
        Ok(translated) => translated,
        Err(message) => return bad_request(message),
    };
    let model = native["model"].clone();
    let id = format!("cmpl-{}", random_digits());
    let reply = NativeReply::read(generate::generate(state, native_body(&native)).await).await;
    match reply {
        NativeReply::Error(status, message) => error(status, &message),
        NativeReply::Object(done, meta) => {
            let mut object =
                completion_object(&id, &model, json!([completion_choice(&done, true)]));
            object["usage"] = usage(&done, meta.prompt_truncated);
            json_response(&object, meta.prompt_truncated)
        }
        NativeReply::Chunks(chunks, meta) => {
            let truncated = meta.prompt_truncated;
            let events = async_stream_events(chunks, move |native, _: &mut ()| {
                let mut out = Vec::new();
                if let Some(message) = native["error"].as_str() {
                    out.push(sse_event(None, &stream_error(message)));
                    out.push(sse_done());
                    return out;
                }
                let done = native["done"].as_bool().unwrap_or(false);
                let choice = completion_choice(&native, done);
                out.push(sse_event(
                    None,
                    &completion_object(&id, &model, json!([choice])),
                ));
                if done {
                    if include_usage {
                        let mut last = completion_object(&id, &model, json!([]));
                        last["usage"] = usage(&native, truncated);
                        out.push(sse_event(None, &last));
                    }
                    out.push(sse_done());
                }
                out
            });
            sse_response(events, truncated)
        }
    }
}

// ------------------------------------------------------------------ embeddings

/// The native `/api/embed` request for an OpenAI embeddings request (Ollama's checks: a
/// string or an array of strings, `""` meaning one empty input, no token arrays).
fn native_embed_request(request: &Map<String, Value>) -> Result<Value, String> {
    let input = match request.get("input") {
        Some(Value::String(text)) => json!([text]),
        Some(Value::Array(items)) if !items.is_empty() && items.iter().all(Value::is_string) => {
            json!(items)
        }
        _ => return Err("invalid input".to_string()),
    };
    let mut native = json!({
        "model": request.get("model").cloned().unwrap_or(json!("")),
        "input": input,
    });
    if let Some(dimensions) = number(request, "dimensions")? {
        native["dimensions"] = dimensions;
    }
    for key in ["options", "keep_alive"] {
        if let Some(value) = request.get(key) {
            native[key] = value.clone();
        }
    }
    Ok(native)
}

/// `POST /v1/embeddings`: vectors as floats or as base64 of little-endian `f32`s.
pub async fn embeddings(state: web::Data<AppState>, body: web::Bytes) -> HttpResponse {
    let request = match parse_object(&body) {
        Ok(request) => request,
        Err(message) => return bad_request(message),
    };
    let base64 = match request.get("encoding_format") {
        None | Some(Value::Null) => false,
        Some(Value::String(format)) if format == "float" => false,
        Some(Value::String(format)) if format == "base64" => true,
        Some(other) => {
            let shown = other
                .as_str()
                .map_or_else(|| other.to_string(), str::to_string);
            return bad_request(format!(
                "Invalid value for 'encoding_format' = {shown}. Supported values: ['float', 'base64']."
            ));
        }
    };
    let native = match native_embed_request(&request) {
        Ok(native) => native,
        Err(message) => return bad_request(message),
    };
    let model = native["model"].clone();
    let reply = NativeReply::read(embed::embed(state, native_body(&native)).await).await;
    let done = match reply {
        NativeReply::Error(status, message) => return error(status, &message),
        NativeReply::Object(done, _) => done,
        NativeReply::Chunks(..) => {
            return error(StatusCode::INTERNAL_SERVER_ERROR, "unexpected stream")
        }
    };
    let data: Vec<Value> = done["embeddings"]
        .as_array()
        .into_iter()
        .flatten()
        .enumerate()
        .map(|(index, vector)| {
            let embedding = if base64 {
                let bytes: Vec<u8> = vector
                    .as_array()
                    .into_iter()
                    .flatten()
                    .flat_map(|v| (v.as_f64().unwrap_or(0.0) as f32).to_le_bytes())
                    .collect();
                json!(base64::Engine::encode(
                    &base64::engine::general_purpose::STANDARD,
                    bytes
                ))
            } else {
                vector.clone()
            };
            json!({"object": "embedding", "embedding": embedding, "index": index})
        })
        .collect();
    let tokens = done["prompt_eval_count"].as_u64().unwrap_or(0);
    HttpResponse::Ok().json(json!({
        "object": "list",
        "data": data,
        "model": model,
        "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
    }))
}

// ------------------------------------------------------------------ models

/// `GET /v1/models`: the models `/api/tags` lists.
pub async fn list_models(state: web::Data<AppState>) -> HttpResponse {
    match NativeReply::read(models::tags(state).await).await {
        NativeReply::Object(tags, _) => {
            let data: Vec<Value> = tags["models"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|m| model_object(m["model"].as_str().unwrap_or_default(), m))
                .collect();
            HttpResponse::Ok().json(json!({"object": "list", "data": data}))
        }
        NativeReply::Error(status, message) => error(status, &message),
        NativeReply::Chunks(..) => error(StatusCode::INTERNAL_SERVER_ERROR, "unexpected reply"),
    }
}

/// `GET /v1/models/{model}`.
pub async fn retrieve_model(state: web::Data<AppState>, path: web::Path<String>) -> HttpResponse {
    let requested = path.into_inner();
    let wanted = match crate::store::ModelName::parse(&requested) {
        Ok(name) => name,
        Err(_) => {
            return error(
                StatusCode::NOT_FOUND,
                &format!("model '{requested}' not found"),
            )
        }
    };
    match NativeReply::read(models::tags(state).await).await {
        NativeReply::Object(tags, _) => {
            let found = tags["models"].as_array().into_iter().flatten().find(|m| {
                m["model"]
                    .as_str()
                    .and_then(|n| crate::store::ModelName::parse(n).ok())
                    .is_some_and(|n| n.eq_fold(&wanted))
            });
            match found {
                Some(entry) => HttpResponse::Ok().json(model_object(&requested, entry)),
                None => error(
                    StatusCode::NOT_FOUND,
                    &format!("model '{requested}' not found"),
                ),
            }
        }
        NativeReply::Error(status, message) => error(status, &message),
        NativeReply::Chunks(..) => error(StatusCode::INTERNAL_SERVER_ERROR, "unexpected reply"),
    }
}

/// `{id, object: "model", created, owned_by}`; `owned_by` is the name's namespace.
fn model_object(id: &str, entry: &Value) -> Value {
    let created = entry["modified_at"]
        .as_str()
        .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
        .map(|t| t.timestamp())
        .unwrap_or(0);
    let owned_by = crate::store::ModelName::parse(id)
        .map(|n| n.namespace)
        .unwrap_or_else(|_| "library".to_string());
    json!({"id": id, "object": "model", "created": created, "owned_by": owned_by})
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_parts_images_and_tool_messages_translate() {
        let messages = json!([
            {"role": "system", "content": [{"type": "text", "text": "Be brief."}]},
            {"role": "user", "content": [{"type": "text", "text": "Hi"}, {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}}]},
            {"role": "assistant", "content": null, "tool_calls": [{"id": "call_1", "type": "function", "function": {"name": "add", "arguments": "{\"a\":1}"}}]},
            {"role": "tool", "tool_call_id": "call_1", "content": "2"},
        ]);
        let native = native_messages(messages.as_array().unwrap()).unwrap();
        assert_eq!(native[0], json!({"role": "system", "content": "Be brief."}));
        assert_eq!(native[1]["images"], json!(["AAAA"]));
        assert_eq!(
            native[2]["tool_calls"][0]["function"]["arguments"],
            json!({"a": 1})
        );
        assert_eq!(native[3]["tool_name"], "add");
        assert_eq!(native[3]["tool_call_id"], "call_1");
    }

    #[test]
    fn bad_messages_get_ollamas_errors() {
        let bad = |m: Value| native_messages(&[m]).unwrap_err();
        assert_eq!(
            bad(json!({"role": "user", "content": 2})),
            "invalid message content type: float64"
        );
        assert_eq!(
            bad(
                json!({"role": "user", "content": [{"type": "image_url", "image_url": {"url": "https://x/y.png"}}]})
            ),
            "image URLs are not currently supported, please use base64 encoded data instead"
        );
        assert_eq!(
            bad(json!({"role": "user", "content": [{"type": "audio"}]})),
            "invalid message format"
        );
        assert_eq!(
            bad(
                json!({"role": "assistant", "tool_calls": [{"function": {"name": "f", "arguments": "{"}}]})
            ),
            "invalid tool call arguments"
        );
    }

    #[test]
    fn openai_defaults_and_extensions_reach_the_native_request() {
        let request = json!({"model": "m", "messages": [{"role": "user", "content": "Hi"}],
            "max_completion_tokens": 5, "stop": "x", "options": {"num_ctx": 512},
            "response_format": {"type": "json_schema", "json_schema": {"schema": {"type": "object"}}},
            "tool_choice": "none", "keep_alive": "1m", "reasoning_effort": "minimal"});
        let native = native_chat_request(request.as_object().unwrap()).unwrap();
        assert_eq!(
            native["options"],
            json!({"num_ctx": 512, "num_predict": 5, "temperature": 1.0, "top_p": 1.0, "stop": ["x"]})
        );
        assert_eq!(native["format"], json!({"type": "object"}));
        assert_eq!(native["tool_choice"], "none");
        assert_eq!(native["keep_alive"], "1m");
        assert_eq!(native["think"], "low");
        assert_eq!(native["stream"], false);
        let empty = json!({"model": "m", "messages": []});
        assert_eq!(
            native_chat_request(empty.as_object().unwrap()).unwrap_err(),
            "[] is too short - 'messages'"
        );
    }

    #[test]
    fn finish_reasons_follow_openai() {
        assert_eq!(finish_reason(&json!("stop"), false), json!("stop"));
        assert_eq!(finish_reason(&json!("stop"), true), json!("tool_calls"));
        assert_eq!(finish_reason(&json!("length"), false), json!("length"));
        assert_eq!(finish_reason(&Value::Null, false), Value::Null);
    }
}

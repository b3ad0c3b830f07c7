//! OpenAI's Responses API, `POST /v1/responses` (stateless, as in Ollama): string or item
//! input, `instructions`, function tools and `function_call_output` items, `text.format`
//! JSON schemas, and streaming events. Translated into a native `/api/chat` request and back
//! (see `server/compat.rs`). Beyond Ollama: `tool_choice` and `parallel_tool_calls` are enforced.

use super::chat;
use super::openai::{async_stream_events, error};
use crate::server::compat::{
    json_response, json_type_name, native_body, options_with, random_hex, request_object,
    sse_event, sse_response, unix_now, NativeReply,
};
use crate::server::AppState;
use actix_web::http::StatusCode;
use actix_web::{web, HttpResponse};
use serde_json::{json, Map, Value};

fn bad_request(message: impl AsRef<str>) -> HttpResponse {
    error(StatusCode::BAD_REQUEST, message.as_ref())
}

/// The text (and images) of a message item's content.
fn content_of(content: &Value) -> Result<(String, Vec<Value>), String> {
    match content {
        Value::String(s) => Ok((s.clone(), Vec::new())),
        Value::Array(parts) => {
            let mut text = String::new();
            let mut images = Vec::new();
            for part in parts {
                match part["type"].as_str().unwrap_or_default() {
                    "input_text" | "output_text" | "text" => {
                        if !text.is_empty() {
                            text.push('\n');
                        }
                        text.push_str(part["text"].as_str().unwrap_or_default());
                    }
                    "input_image" => {
                        let url = part["image_url"].as_str().unwrap_or_default();
                        match url.split_once(";base64,") {
                            Some((head, data)) if head.starts_with("data:") => {
                                images.push(json!(data))
                            }
                            _ => return Err("invalid image input".to_string()),
                        }
                    }
                    "input_file" => return Err("file inputs are not currently supported".into()),
                    other => return Err(format!("invalid content part type: {other}")),
                }
            }
            Ok((text, images))
        }
        Value::Null => Ok((String::new(), Vec::new())),
        other => Err(format!("invalid content type: {}", json_type_name(other))),
    }
}

/// Input items as native messages; consecutive `function_call` items become one assistant
/// message with several tool calls.
fn native_messages(instructions: Option<&str>, input: &Value) -> Result<Vec<Value>, String> {
    let mut out: Vec<Value> = Vec::new();
    if let Some(instructions) = instructions.filter(|i| !i.is_empty()) {
        out.push(json!({"role": "system", "content": instructions}));
    }
    let items = match input {
        Value::String(s) => return Ok([out, vec![json!({"role": "user", "content": s})]].concat()),
        Value::Array(items) => items,
        Value::Null => return Err("input is required".to_string()),
        other => return Err(format!("invalid input type: {}", json_type_name(other))),
    };
    let mut names: Map<String, Value> = Map::new();
    // A reasoning item goes back to the template with the assistant message after it, as
    // Ollama passes it.
    let mut reasoning = String::new();
    for item in items {
        let kind = item["type"].as_str().unwrap_or("message");
        match kind {
            "message" => {
                let (text, images) = content_of(&item["content"])?;
                let role = item["role"].as_str().unwrap_or("user");
                let mut message = json!({"role": role, "content": text});
                if !images.is_empty() {
                    message["images"] = json!(images);
                }
                if role == "assistant" && !reasoning.is_empty() {
                    message["thinking"] = json!(std::mem::take(&mut reasoning));
                }
                out.push(message);
            }
            "function_call" => {
                let call_id = item["call_id"].as_str().unwrap_or_default();
                let name = item["name"].as_str().unwrap_or_default();
                names.insert(call_id.to_string(), json!(name));
                let arguments = match &item["arguments"] {
                    Value::String(s) => serde_json::from_str::<Value>(s)
                        .map_err(|_| "invalid function call arguments".to_string())?,
                    other => other.clone(),
                };
                let merge = out.last().is_some_and(|m| {
                    m["role"] == "assistant"
                        && m.get("tool_calls").is_some()
                        && m["content"].as_str().unwrap_or_default().is_empty()
                });
                if !merge {
                    out.push(json!({"role": "assistant", "content": "", "tool_calls": []}));
                }
                if let Some(calls) = out.last_mut().and_then(|m| m["tool_calls"].as_array_mut()) {
                    let index = calls.len();
                    calls.push(json!({"id": call_id, "function": {"index": index, "name": name, "arguments": arguments}}));
                }
            }
            "function_call_output" => {
                let call_id = item["call_id"].as_str().unwrap_or_default();
                let (text, _) = content_of(&item["output"])?;
                out.push(json!({
                    "role": "tool", "content": text, "tool_call_id": call_id,
                    "tool_name": names.get(call_id).cloned().unwrap_or(json!("")),
                }));
            }
            "reasoning" => {
                reasoning = reasoning_text(item);
            }
            other => return Err(format!("unsupported input item type: {other}")),
        }
    }
    Ok(out)
}

pub(crate) fn native_request(request: &Map<String, Value>) -> Result<Value, String> {
    let instructions = request.get("instructions").and_then(Value::as_str);
    let messages = native_messages(instructions, request.get("input").unwrap_or(&Value::Null))?;
    let number = |key: &str| request.get(key).filter(|v| v.is_number()).cloned();
    let options = options_with(
        request.get("options"),
        &[
            ("num_predict", number("max_output_tokens")),
            (
                "temperature",
                Some(number("temperature").unwrap_or(json!(1.0))),
            ),
            ("top_p", Some(number("top_p").unwrap_or(json!(1.0)))),
        ],
    );
    let mut native = json!({
        "model": request.get("model").cloned().unwrap_or(json!("")),
        "messages": messages,
        "stream": request.get("stream").and_then(Value::as_bool).unwrap_or(false),
        "options": options,
    });
    let format = &request.get("text").unwrap_or(&Value::Null)["format"];
    match format["type"].as_str() {
        Some("json_schema") if format["schema"].is_object() => {
            native["format"] = format["schema"].clone()
        }
        Some("json_object") => native["format"] = json!("json"),
        _ => {}
    }
    if let Some(tools) = request.get("tools").and_then(Value::as_array) {
        let mut native_tools = Vec::new();
        for tool in tools {
            match tool["type"].as_str() {
                Some("function") => native_tools.push(json!({"type": "function", "function": {
                    "name": tool["name"], "description": tool["description"],
                    "parameters": tool.get("parameters").cloned().unwrap_or(json!({"type": "object"})),
                }})),
                other => {
                    return Err(format!(
                        "unsupported tool type: {}",
                        other.unwrap_or("none")
                    ))
                }
            }
        }
        native["tools"] = json!(native_tools);
    }
    for key in ["tool_choice", "parallel_tool_calls", "keep_alive"] {
        if let Some(value) = request.get(key).filter(|v| !v.is_null()) {
            native[key] = value.clone();
        }
    }
    if let Some(effort) = request
        .get("reasoning")
        .and_then(|r| r.get("effort"))
        .and_then(Value::as_str)
    {
        native["think"] = match effort {
            "none" => json!(false),
            "minimal" => json!("low"),
            "xhigh" | "ultra" => json!("max"),
            other => json!(other),
        };
    }
    Ok(native)
}

/// The text of a reasoning input item: its `encrypted_content` (which is the plain
/// reasoning in what rollama and Ollama send), else its summary texts.
fn reasoning_text(item: &Value) -> String {
    if let Some(text) = item["encrypted_content"].as_str().filter(|t| !t.is_empty()) {
        return text.to_string();
    }
    item["summary"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|part| part["text"].as_str())
        .collect::<Vec<_>>()
        .join("\n")
}

/// The reasoning output item, as Ollama writes it (the summary is the whole reasoning).
fn reasoning_item(response_id: &str, thinking: &str) -> Value {
    json!({
        "type": "reasoning",
        "id": format!("rs_{response_id}"),
        "summary": [{"type": "summary_text", "text": thinking}],
        "encrypted_content": thinking,
    })
}

/// The output items of a finished answer.
fn output_items(response_id: &str, message: &Value) -> Vec<Value> {
    let mut items = Vec::new();
    if let Some(thinking) = message["thinking"].as_str().filter(|t| !t.is_empty()) {
        items.push(reasoning_item(response_id, thinking));
    }
    for (i, call) in message["tool_calls"]
        .as_array()
        .into_iter()
        .flatten()
        .enumerate()
    {
        items.push(function_call_item(response_id, i, call));
    }
    let text = message["content"].as_str().unwrap_or_default();
    if !text.is_empty() || items.is_empty() {
        items.push(message_item(
            &format!("msg_{response_id}"),
            text,
            "completed",
        ));
    }
    items
}

fn function_call_item(response_id: &str, index: usize, call: &Value) -> Value {
    json!({
        "type": "function_call",
        "id": format!("fc_{response_id}_{index}"),
        "status": "completed",
        "call_id": call["id"],
        "name": call["function"]["name"],
        "arguments": call["function"]["arguments"].to_string(),
    })
}

fn message_item(id: &str, text: &str, status: &str) -> Value {
    json!({
        "type": "message", "id": id, "status": status, "role": "assistant",
        "content": if status == "completed" || !text.is_empty() {
            json!([{"type": "output_text", "text": text, "annotations": [], "logprobs": []}])
        } else {
            json!([])
        },
    })
}

/// The whole `response` object.
fn response_object(
    id: &str,
    request: &Map<String, Value>,
    created: i64,
    status: &str,
    output: Vec<Value>,
    done: Option<&Value>,
    truncated: bool,
) -> Value {
    let mut response = json!({
        "id": id,
        "object": "response",
        "created_at": created,
        "status": status,
        "model": request.get("model"),
        "output": output,
        "instructions": request.get("instructions"),
        "max_output_tokens": request.get("max_output_tokens"),
        "temperature": request.get("temperature").cloned().unwrap_or(json!(1.0)),
        "top_p": request.get("top_p").cloned().unwrap_or(json!(1.0)),
        "tools": request.get("tools").cloned().unwrap_or(json!([])),
        "tool_choice": request.get("tool_choice").cloned().unwrap_or(json!("auto")),
        "parallel_tool_calls": request.get("parallel_tool_calls").cloned().unwrap_or(json!(true)),
        "text": request.get("text").cloned().unwrap_or(json!({"format": {"type": "text"}})),
        "truncation": "disabled",
        "store": false,
        "service_tier": "default",
        "metadata": {},
        "error": null,
        "incomplete_details": null,
        "previous_response_id": null,
        "reasoning": request.get("reasoning"),
        "usage": null,
    });
    if let Some(done) = done {
        response["completed_at"] = json!(unix_now());
        let input = done["prompt_eval_count"].as_u64().unwrap_or(0);
        let output = done["eval_count"].as_u64().unwrap_or(0);
        response["usage"] = json!({
            "input_tokens": input, "output_tokens": output, "total_tokens": input + output,
            "input_tokens_details": {"cached_tokens": 0},
            "output_tokens_details": {"reasoning_tokens": 0},
        });
        if truncated {
            response["usage"]["prompt_truncated"] = json!(true);
        }
        if done["done_reason"] == "length" {
            response["status"] = json!("incomplete");
            response["incomplete_details"] = json!({"reason": "max_output_tokens"});
        }
    }
    response
}

pub async fn responses(state: web::Data<AppState>, body: web::Bytes) -> HttpResponse {
    let (request, native) = match request_object(&body)
        .and_then(|request| native_request(&request).map(|native| (request, native)))
    {
        Ok(translated) => translated,
        Err(message) => return bad_request(message),
    };
    let id = format!("resp_{}", random_hex(24));
    let created = unix_now();
    match NativeReply::read(chat::chat(state, native_body(&native)).await).await {
        NativeReply::Error(status, message) => error(status, &message),
        NativeReply::Object(done, meta) => {
            let output = output_items(&id, &done["message"]);
            let body = response_object(
                &id,
                &request,
                created,
                "completed",
                output,
                Some(&done),
                meta.prompt_truncated,
            );
            json_response(&body, meta.prompt_truncated)
        }
        NativeReply::Chunks(chunks, meta) => {
            let truncated = meta.prompt_truncated;
            let events = async_stream_events(chunks, move |native, state: &mut ResponseStream| {
                let mut out = Vec::new();
                let mut event = |data: Value| {
                    let mut data = data;
                    data["sequence_number"] = json!(state.sequence);
                    state.sequence += 1;
                    let kind = data["type"].as_str().unwrap_or_default().to_string();
                    out.push(sse_event(Some(&kind), &data));
                };
                if !state.started {
                    state.started = true;
                    let pending =
                        response_object(&id, &request, created, "in_progress", vec![], None, false);
                    event(json!({"type": "response.created", "response": pending}));
                    event(json!({"type": "response.in_progress", "response": pending}));
                }
                if let Some(message) = native["error"].as_str() {
                    let mut failed =
                        response_object(&id, &request, created, "failed", vec![], None, false);
                    failed["error"] = json!({"code": "server_error", "message": message});
                    event(json!({"type": "response.failed", "response": failed}));
                    return out;
                }
                let message_id = format!("msg_{id}");
                let message = &native["message"];
                // Reasoning streams as a reasoning item's summary, closed when the answer
                // (or the end) comes.
                let reasoning_id = format!("rs_{id}");
                if let Some(thinking) = message["thinking"].as_str().filter(|t| !t.is_empty()) {
                    if state.reasoning_index.is_none() {
                        let index = state.output.len();
                        state.reasoning_index = Some(index);
                        state.output.push(Value::Null);
                        event(
                            json!({"type": "response.output_item.added", "output_index": index,
                            "item": {"type": "reasoning", "id": reasoning_id, "summary": []}}),
                        );
                        event(json!({"type": "response.reasoning_summary_part.added",
                            "item_id": reasoning_id, "output_index": index, "summary_index": 0,
                            "part": {"type": "summary_text", "text": ""}}));
                    }
                    state.reasoning.push_str(thinking);
                    event(json!({"type": "response.reasoning_summary_text.delta",
                        "item_id": reasoning_id, "output_index": state.reasoning_index,
                        "summary_index": 0, "delta": thinking}));
                }
                let answer_begins = crate::server::compat::answer_begins(&native);
                if let Some(index) = state.reasoning_index.filter(|_| answer_begins) {
                    if !state.reasoning_closed {
                        state.reasoning_closed = true;
                        let item = reasoning_item(&id, &state.reasoning);
                        event(json!({"type": "response.reasoning_summary_text.done",
                            "item_id": reasoning_id, "output_index": index, "summary_index": 0,
                            "text": state.reasoning}));
                        event(json!({"type": "response.reasoning_summary_part.done",
                            "item_id": reasoning_id, "output_index": index, "summary_index": 0,
                            "part": item["summary"][0]}));
                        event(
                            json!({"type": "response.output_item.done", "output_index": index,
                            "item": item}),
                        );
                        state.output[index] = item;
                    }
                }
                if let Some(text) = message["content"].as_str().filter(|t| !t.is_empty()) {
                    if state.message_index.is_none() {
                        let index = state.output.len();
                        state.message_index = Some(index);
                        state.output.push(Value::Null);
                        event(
                            json!({"type": "response.output_item.added", "output_index": index,
                            "item": message_item(&message_id, "", "in_progress")}),
                        );
                        event(
                            json!({"type": "response.content_part.added", "item_id": message_id,
                            "output_index": index, "content_index": 0,
                            "part": {"type": "output_text", "text": "", "annotations": [], "logprobs": []}}),
                        );
                    }
                    state.text.push_str(text);
                    event(
                        json!({"type": "response.output_text.delta", "item_id": message_id,
                        "output_index": state.message_index, "content_index": 0, "delta": text,
                        "logprobs": []}),
                    );
                }
                for call in message["tool_calls"].as_array().into_iter().flatten() {
                    let index = state.output.len();
                    let item = function_call_item(&id, state.calls, call);
                    state.calls += 1;
                    let mut added = item.clone();
                    added["status"] = json!("in_progress");
                    added["arguments"] = json!("");
                    event(
                        json!({"type": "response.output_item.added", "output_index": index, "item": added}),
                    );
                    event(
                        json!({"type": "response.function_call_arguments.delta", "item_id": item["id"],
                        "output_index": index, "delta": item["arguments"]}),
                    );
                    event(
                        json!({"type": "response.function_call_arguments.done", "item_id": item["id"],
                        "output_index": index, "arguments": item["arguments"]}),
                    );
                    event(
                        json!({"type": "response.output_item.done", "output_index": index, "item": item}),
                    );
                    state.output.push(item);
                }
                if native["done"].as_bool().unwrap_or(false) {
                    if let Some(index) = state.message_index {
                        let item = message_item(&message_id, &state.text, "completed");
                        event(
                            json!({"type": "response.output_text.done", "item_id": message_id,
                            "output_index": index, "content_index": 0, "text": state.text, "logprobs": []}),
                        );
                        event(
                            json!({"type": "response.content_part.done", "item_id": message_id,
                            "output_index": index, "content_index": 0, "part": item["content"][0]}),
                        );
                        event(
                            json!({"type": "response.output_item.done", "output_index": index, "item": item}),
                        );
                        state.output[index] = item;
                    }
                    let output = std::mem::take(&mut state.output);
                    let complete = response_object(
                        &id,
                        &request,
                        created,
                        "completed",
                        output,
                        Some(&native),
                        truncated,
                    );
                    let kind = if complete["status"] == "incomplete" {
                        "response.incomplete"
                    } else {
                        "response.completed"
                    };
                    event(json!({"type": kind, "response": complete}));
                }
                out
            });
            sse_response(events, truncated)
        }
    }
}

#[derive(Default)]
struct ResponseStream {
    started: bool,
    sequence: u64,
    output: Vec<Value>,
    message_index: Option<usize>,
    text: String,
    calls: usize,
    reasoning_index: Option<usize>,
    reasoning: String,
    reasoning_closed: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn items_translate_to_native_messages() {
        let input = json!([
            {"role": "user", "content": [{"type": "input_text", "text": "Add 1 and 2"}]},
            {"type": "function_call", "call_id": "c1", "name": "add", "arguments": "{\"a\":1,\"b\":2}"},
            {"type": "function_call_output", "call_id": "c1", "output": "3"},
        ]);
        let native = native_messages(Some("Be brief."), &input).unwrap();
        assert_eq!(native[0], json!({"role": "system", "content": "Be brief."}));
        assert_eq!(native[1], json!({"role": "user", "content": "Add 1 and 2"}));
        assert_eq!(
            native[2]["tool_calls"][0]["function"]["arguments"],
            json!({"a": 1, "b": 2})
        );
        assert_eq!(native[3]["role"], "tool");
        assert_eq!(native[3]["tool_name"], "add");
        assert_eq!(
            native_messages(None, &json!("Hi")).unwrap(),
            vec![json!({"role": "user", "content": "Hi"})]
        );
        assert!(native_messages(
            None,
            &json!([{"role": "user", "content": [{"type": "input_file"}]}])
        )
        .is_err());
    }

    #[test]
    fn output_has_calls_then_the_message() {
        let message = json!({"content": "", "tool_calls": [{"id": "call_1", "function": {"name": "add", "arguments": {"a": 1}}}]});
        let items = output_items("resp_x", &message);
        assert_eq!(items.len(), 1);
        assert_eq!(items[0]["type"], "function_call");
        assert_eq!(items[0]["arguments"], "{\"a\":1}");
        let items = output_items("resp_x", &json!({"content": "Hi"}));
        assert_eq!(items[0]["content"][0]["text"], "Hi");
    }
}

//! What the compatibility APIs (OpenAI `/v1/*`, Anthropic `/v1/messages`) share. As in Ollama,
//! each compatibility route translates its request into a native one, runs the native handler
//! itself (so validation, scheduling and cancellation are the native ones), and translates the
//! native reply: one JSON object, or NDJSON chunks read as they come. The translated stream
//! owns the native body, so a client that hangs up drops the generation with it.

use super::error::ApiError;
use actix_web::body::{BoxBody, MessageBody};
use actix_web::http::StatusCode;
use actix_web::HttpResponse;
use bytes::{Bytes, BytesMut};
use futures_util::{Stream, StreamExt};
use serde_json::Value;
use std::pin::Pin;

/// Header set when the prompt had to be shortened to fit `num_ctx` (beyond Ollama, which
/// truncates silently).
pub const TRUNCATED_HEADER: &str = "x-rollama-prompt-truncated";

/// A native handler's reply, read back.
pub enum NativeReply {
    /// A non-200 reply: its status and the `error` message of its body.
    Error(StatusCode, String),
    /// A single JSON object (`"stream": false`, or a load-only request).
    Object(Value, Meta),
    /// NDJSON chunks; a chunk with an `error` field may end it.
    Chunks(Pin<Box<dyn Stream<Item = Value>>>, Meta),
}

/// Facts from the native reply's headers.
#[derive(Debug, Clone, Copy, Default)]
pub struct Meta {
    pub prompt_truncated: bool,
}

impl NativeReply {
    /// Reads what a native handler answered.
    pub async fn read(result: Result<HttpResponse, ApiError>) -> NativeReply {
        let response = match result {
            Ok(response) => response,
            Err(e) => {
                let status = actix_web::ResponseError::status_code(&e);
                return NativeReply::Error(status, e.message().to_string());
            }
        };
        let meta = Meta {
            prompt_truncated: response.headers().contains_key(TRUNCATED_HEADER),
        };
        let status = response.status();
        let ndjson = response
            .headers()
            .get(actix_web::http::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with("application/x-ndjson"));
        let body = response.into_body();
        if status != StatusCode::OK {
            let bytes = actix_web::body::to_bytes(body).await.unwrap_or_default();
            let message = serde_json::from_slice::<Value>(&bytes)
                .ok()
                .and_then(|v| v.get("error").and_then(Value::as_str).map(str::to_string))
                .unwrap_or_else(|| String::from_utf8_lossy(&bytes).into_owned());
            return NativeReply::Error(status, message);
        }
        if ndjson {
            return NativeReply::Chunks(Box::pin(ndjson_values(body)), meta);
        }
        match actix_web::body::to_bytes(body).await {
            Ok(bytes) => match serde_json::from_slice(&bytes) {
                Ok(value) => NativeReply::Object(value, meta),
                Err(e) => NativeReply::Error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
            },
            Err(e) => NativeReply::Error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
        }
    }
}

/// The JSON values of an NDJSON body, one per line, however the body is chunked.
fn ndjson_values(body: BoxBody) -> impl Stream<Item = Value> {
    let chunks = futures_util::stream::unfold(body, |mut body| async move {
        let next = std::future::poll_fn(|cx| Pin::new(&mut body).poll_next(cx)).await;
        match next {
            Some(Ok(bytes)) => Some((bytes, body)),
            _ => None,
        }
    });
    futures_util::stream::unfold(
        (Box::pin(chunks), BytesMut::new(), false),
        |(mut chunks, mut buffer, mut ended)| async move {
            loop {
                if let Some(at) = buffer.iter().position(|b| *b == b'\n') {
                    let line = buffer.split_to(at + 1);
                    let line = line.trim_ascii();
                    if line.is_empty() {
                        continue;
                    }
                    let value = serde_json::from_slice(line).unwrap_or_else(
                        |e| serde_json::json!({"error": format!("bad chunk from the server: {e}")}),
                    );
                    return Some((value, (chunks, buffer, ended)));
                }
                if ended {
                    let rest = buffer.split().freeze();
                    let rest = rest.trim_ascii();
                    if rest.is_empty() {
                        return None;
                    }
                    let value = serde_json::from_slice(rest).ok()?;
                    return Some((value, (chunks, buffer, ended)));
                }
                match chunks.next().await {
                    Some(bytes) => buffer.extend_from_slice(&bytes),
                    None => ended = true,
                }
            }
        },
    )
}

/// A compatibility request's body as a JSON object, or the message of a 400.
pub fn request_object(body: &[u8]) -> Result<serde_json::Map<String, Value>, String> {
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(map)) => Ok(without_nulls(map)),
        Ok(_) => Err("invalid request: expected a JSON object".to_string()),
        Err(e) => Err(e.to_string()),
    }
}

/// A request object with its `null` fields left out: Ollama's Go structs take `null` as the
/// zero value, the same as a field that is not there.
pub fn without_nulls(mut map: serde_json::Map<String, Value>) -> serde_json::Map<String, Value> {
    map.retain(|_, value| !value.is_null());
    map
}

/// Whether a native chat chunk carries the answer (text or tool calls) or ends the reply:
/// where a streamed reasoning block closes.
pub fn answer_begins(native: &Value) -> bool {
    let message = &native["message"];
    message["content"].as_str().is_some_and(|t| !t.is_empty())
        || message["tool_calls"]
            .as_array()
            .is_some_and(|c| !c.is_empty())
        || native["done"].as_bool().unwrap_or(false)
}

/// The body a native handler receives for a JSON request built by a compatibility route.
pub fn native_body(request: &Value) -> actix_web::web::Bytes {
    actix_web::web::Bytes::from(request.to_string())
}

/// One server-sent event: `data: <json>\n\n`, with an `event:` line when named.
pub fn sse_event(event: Option<&str>, data: &Value) -> Bytes {
    let mut out = String::new();
    if let Some(event) = event {
        out.push_str("event: ");
        out.push_str(event);
        out.push('\n');
    }
    out.push_str("data: ");
    out.push_str(&data.to_string());
    out.push_str("\n\n");
    Bytes::from(out)
}

/// The terminating `data: [DONE]` of OpenAI streams.
pub fn sse_done() -> Bytes {
    Bytes::from_static(b"data: [DONE]\n\n")
}

/// An SSE response whose events come from `events`.
pub fn sse_response(
    events: impl Stream<Item = Bytes> + 'static,
    prompt_truncated: bool,
) -> HttpResponse {
    let mut response = HttpResponse::Ok();
    response
        .content_type("text/event-stream")
        .insert_header(("Cache-Control", "no-cache"));
    if prompt_truncated {
        response.insert_header((TRUNCATED_HEADER, "true"));
    }
    response.streaming(events.map(Ok::<_, std::convert::Infallible>))
}

/// A JSON response, marked when the prompt was truncated.
pub fn json_response(body: &Value, prompt_truncated: bool) -> HttpResponse {
    let mut response = HttpResponse::Ok();
    if prompt_truncated {
        response.insert_header((TRUNCATED_HEADER, "true"));
    }
    response.json(body)
}

/// The options a compatibility request sets, layered over its own `options` field (an
/// extension: Ollama cannot set e.g. `num_ctx` through `/v1`). Absent values are skipped.
pub fn options_with(extra: Option<&Value>, fields: &[(&str, Option<Value>)]) -> Value {
    let mut options = match extra {
        Some(Value::Object(map)) => map.clone(),
        _ => serde_json::Map::new(),
    };
    for (key, value) in fields {
        if let Some(value) = value {
            if !value.is_null() {
                options.insert((*key).to_string(), value.clone());
            }
        }
    }
    Value::Object(options)
}

/// Seconds since the epoch.
pub fn unix_now() -> i64 {
    chrono::Utc::now().timestamp()
}

/// A short random decimal suffix for response ids.
pub fn random_digits() -> u32 {
    use rand::Rng;
    rand::rng().random_range(0..1_000_000_000)
}

/// A random hex string of `n` characters.
pub fn random_hex(n: usize) -> String {
    use rand::Rng;
    let mut rng = rand::rng();
    (0..n)
        .map(|_| char::from_digit(rng.random_range(0..16), 16).unwrap_or('0'))
        .collect()
}

/// `stop` as OpenAI sends it (a string or an array of strings) as a list.
pub fn stop_list(stop: Option<&Value>) -> Result<Option<Value>, String> {
    match stop {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(Value::Array(vec![Value::String(s.clone())]))),
        Some(Value::Array(items)) => {
            for item in items {
                if !item.is_string() {
                    return Err(format!(
                        "invalid type for 'stop' field: {}",
                        json_type_name(item)
                    ));
                }
            }
            Ok(Some(Value::Array(items.clone())))
        }
        Some(other) => Err(format!(
            "invalid type for 'stop' field: {}",
            json_type_name(other)
        )),
    }
}

/// A JSON value's type as Go's decoder names it (Ollama's messages quote these).
pub fn json_type_name(value: &Value) -> &'static str {
    match value {
        Value::Null => "nil",
        Value::Bool(_) => "bool",
        Value::Number(_) => "float64",
        Value::String(_) => "string",
        Value::Array(_) => "[]interface {}",
        Value::Object(_) => "map[string]interface {}",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[actix_web::test]
    async fn ndjson_lines_are_reassembled_across_chunks() {
        let parts: Vec<Result<Bytes, std::convert::Infallible>> = vec![
            Ok(Bytes::from_static(b"{\"a\":")),
            Ok(Bytes::from_static(b"1}\n{\"b\"")),
            Ok(Bytes::from_static(b":2}\n\n{\"c\":3}")),
        ];
        let body = BoxBody::new(actix_web::body::BodyStream::new(
            futures_util::stream::iter(parts),
        ));
        let values: Vec<Value> = ndjson_values(body).collect().await;
        assert_eq!(values, vec![json!({"a":1}), json!({"b":2}), json!({"c":3})]);
    }

    #[test]
    fn stop_accepts_a_string_or_strings() {
        assert_eq!(stop_list(Some(&json!("x"))).unwrap(), Some(json!(["x"])));
        assert_eq!(
            stop_list(Some(&json!(["a", "b"]))).unwrap(),
            Some(json!(["a", "b"]))
        );
        assert_eq!(
            stop_list(Some(&json!(["a", 1]))).unwrap_err(),
            "invalid type for 'stop' field: float64"
        );
    }

    #[test]
    fn request_fields_override_extra_options() {
        let options = options_with(
            Some(&json!({"num_ctx": 1024, "temperature": 0.2})),
            &[("temperature", Some(json!(0.5))), ("seed", None)],
        );
        assert_eq!(options, json!({"num_ctx": 1024, "temperature": 0.5}));
    }
}

//! The OpenAI (`/v1/chat/completions`, `/v1/completions`, `/v1/models`, `/v1/responses`) and
//! Anthropic (`/v1/messages`) APIs and `/api/tokenize`/`/api/detokenize`, with the real SmolLM2
//! model through the real server: shapes, SSE framing, errors in each API's own form,
//! enforced `tool_choice` and schemas, logprobs, truncation notices, and cancellation.

mod common;

use common::{create_model, post, Server, TOOLS_MODEL};
use futures_util::StreamExt;
use serde_json::{json, Value};
use std::time::Duration;

fn tools() -> Value {
    json!([
        {"type": "function", "function": {"name": "get_weather", "description": "Current weather in a city",
            "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}},
        {"type": "function", "function": {"name": "add", "description": "Add two numbers",
            "parameters": {"type": "object", "properties": {"a": {"type": "number"}, "b": {"type": "number"}}, "required": ["a", "b"]}}},
    ])
}

fn server_with_model() -> (Server, tempfile::TempDir) {
    let server = Server::start();
    let dir = create_model(&server, "smol", TOOLS_MODEL);
    (server, dir)
}

/// One server-sent event.
#[derive(Debug)]
struct Event {
    name: Option<String>,
    data: String,
}

/// The events of an SSE response, checked for framing: `text/event-stream`, every event
/// ends with a blank line.
async fn sse(server: &Server, path: &str, body: Value) -> Vec<Event> {
    let response = reqwest::Client::new()
        .post(server.url(path))
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], "text/event-stream");
    let text = response.text().await.unwrap();
    assert!(text.ends_with("\n\n"), "the stream ends with a whole event");
    text.trim_end()
        .split("\n\n")
        .map(|block| {
            let mut event = Event {
                name: None,
                data: String::new(),
            };
            for line in block.lines() {
                if let Some(name) = line.strip_prefix("event: ") {
                    event.name = Some(name.to_string());
                } else if let Some(data) = line.strip_prefix("data: ") {
                    event.data = data.to_string();
                } else {
                    panic!("unexpected SSE line {line:?}");
                }
            }
            event
        })
        .collect()
}

/// OpenAI streams: JSON chunks, then exactly one `[DONE]`, nothing after it.
fn openai_chunks(events: &[Event]) -> Vec<Value> {
    let done: Vec<usize> = events
        .iter()
        .enumerate()
        .filter(|(_, e)| e.data == "[DONE]")
        .map(|(i, _)| i)
        .collect();
    assert_eq!(done, vec![events.len() - 1], "one [DONE], last: {events:?}");
    events[..events.len() - 1]
        .iter()
        .map(|e| serde_json::from_str(&e.data).unwrap())
        .collect()
}

#[tokio::test]
async fn chat_completions_answer_in_openais_shape() {
    let (server, _dir) = server_with_model();
    let (status, body) = post(
        &server,
        "/v1/chat/completions",
        json!({"model": "smol", "max_tokens": 8, "seed": 1,
               "messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hello"}]}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert!(body["id"].as_str().unwrap().starts_with("chatcmpl-"));
    assert_eq!(body["object"], "chat.completion");
    assert_eq!(body["model"], "smol");
    assert!(body["created"].as_i64().unwrap() > 1_700_000_000);
    let choice = &body["choices"][0];
    assert_eq!(choice["message"]["role"], "assistant");
    assert!(!choice["message"]["content"].as_str().unwrap().is_empty());
    assert_eq!(choice["finish_reason"], "length");
    let usage = &body["usage"];
    assert_eq!(usage["completion_tokens"], 8);
    assert!(usage["prompt_tokens"].as_u64().unwrap() > 5);
    assert_eq!(
        usage["total_tokens"].as_u64().unwrap(),
        usage["prompt_tokens"].as_u64().unwrap() + 8
    );
    // The same seed gives the same text through /v1 too.
    let (_, again) = post(
        &server,
        "/v1/chat/completions",
        json!({"model": "smol", "max_tokens": 8, "seed": 1,
               "messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hello"}]}),
    )
    .await;
    assert_eq!(again["choices"][0]["message"], choice["message"]);
}

#[tokio::test]
async fn streamed_chat_completions_are_framed_as_openai_does() {
    let (server, _dir) = server_with_model();
    let events = sse(
        &server,
        "/v1/chat/completions",
        json!({"model": "smol", "max_tokens": 6, "stream": true, "stream_options": {"include_usage": true},
               "seed": 1, "messages": [{"role": "user", "content": "Count to three."}]}),
    )
    .await;
    let chunks = openai_chunks(&events);
    assert!(chunks.len() >= 4, "{chunks:?}");
    assert!(chunks
        .iter()
        .all(|c| c["object"] == "chat.completion.chunk" && c["id"] == chunks[0]["id"]));
    assert_eq!(chunks[0]["choices"][0]["delta"]["role"], "assistant");
    let finishes: Vec<&Value> = chunks
        .iter()
        .filter(|c| c["choices"][0]["finish_reason"].is_string())
        .collect();
    assert_eq!(finishes.len(), 1, "one finish chunk");
    assert_eq!(finishes[0]["choices"][0]["delta"], json!({}));
    let reason = finishes[0]["choices"][0]["finish_reason"].as_str().unwrap();
    let last = chunks.last().unwrap();
    assert_eq!(last["choices"], json!([]));
    let generated = last["usage"]["completion_tokens"].as_u64().unwrap();
    match reason {
        "length" => assert_eq!(generated, 6),
        "stop" => assert!(generated > 0 && generated <= 6),
        other => panic!("finish_reason {other}"),
    }
    // Without include_usage there is no usage chunk.
    let events = sse(
        &server,
        "/v1/chat/completions",
        json!({"model": "smol", "max_tokens": 3, "stream": true,
               "messages": [{"role": "user", "content": "Hi"}]}),
    )
    .await;
    let chunks = openai_chunks(&events);
    assert!(chunks.iter().all(|c| c.get("usage").is_none()));
    assert!(chunks.last().unwrap()["choices"][0]["finish_reason"].is_string());
}

#[tokio::test]
async fn json_schema_output_validates_in_20_of_20_trials() {
    let (server, _dir) = server_with_model();
    // As OpenAI's strict mode wants schemas: every property required, no others, and bounds
    // on what can grow (without them this 135M model can repeat one array item until the
    // context is full, which the grammar allows). The default temperature (1.0) and
    // different seeds give 20 different answers.
    let schema = json!({"type": "object",
        "properties": {"name": {"type": "string", "maxLength": 60}, "age": {"type": "integer"},
                       "likes": {"type": "array", "items": {"type": "string", "maxLength": 40}, "maxItems": 6}},
        "required": ["name", "age", "likes"], "additionalProperties": false});
    for trial in 0..20 {
        let (status, body) = post(
            &server,
            "/v1/chat/completions",
            json!({"model": "smol", "seed": trial,
                   "messages": [{"role": "user", "content": "Describe a person as JSON."}],
                   "response_format": {"type": "json_schema", "json_schema": {"name": "person", "strict": true, "schema": schema}}}),
        )
        .await;
        assert_eq!(status, 200, "{body}");
        let content = body["choices"][0]["message"]["content"].as_str().unwrap();
        let value: Value = serde_json::from_str(content)
            .unwrap_or_else(|e| panic!("trial {trial}: not JSON ({e}): {content}"));
        let object = value.as_object().unwrap();
        assert_eq!(object.len(), 3, "trial {trial}: {value}");
        assert!(value["name"].is_string(), "trial {trial}: {value}");
        assert!(value["age"].is_i64(), "trial {trial}: {value}");
        let likes = value["likes"].as_array().unwrap();
        assert!(likes.len() <= 6, "trial {trial}: {value}");
        assert!(likes
            .iter()
            .all(|l| l.as_str().unwrap().chars().count() <= 40));
        assert!(value["name"].as_str().unwrap().chars().count() <= 60);
        assert_eq!(body["choices"][0]["finish_reason"], "stop", "{body}");
    }
}

#[tokio::test]
async fn required_tool_choice_yields_a_valid_call_in_20_of_20_trials() {
    let (server, _dir) = server_with_model();
    let questions = [
        "What is the weather in Paris?",
        "Add 2 and 3.",
        "Tell me a joke.",
        "Hello!",
    ];
    for trial in 0..20 {
        let question = questions[trial % questions.len()];
        let (status, body) = post(
            &server,
            "/v1/chat/completions",
            json!({"model": "smol", "seed": trial, "tools": tools(), "tool_choice": "required",
                   "messages": [{"role": "user", "content": question}]}),
        )
        .await;
        assert_eq!(status, 200, "{body}");
        let choice = &body["choices"][0];
        assert_eq!(
            choice["finish_reason"], "tool_calls",
            "trial {trial}: {body}"
        );
        let calls = choice["message"]["tool_calls"].as_array().unwrap();
        assert_eq!(calls.len(), 1, "trial {trial}: {body}");
        let call = &calls[0];
        assert_eq!(call["type"], "function");
        assert!(call["id"].as_str().unwrap().starts_with("call_"));
        let arguments: Value =
            serde_json::from_str(call["function"]["arguments"].as_str().unwrap()).unwrap();
        match call["function"]["name"].as_str().unwrap() {
            "get_weather" => {
                assert!(arguments["city"].is_string(), "{arguments}");
                assert_eq!(arguments.as_object().unwrap().len(), 1, "{arguments}");
            }
            "add" => {
                assert!(
                    arguments["a"].is_number() && arguments["b"].is_number(),
                    "{arguments}"
                );
                assert_eq!(arguments.as_object().unwrap().len(), 2, "{arguments}");
            }
            other => panic!("trial {trial}: call to a tool that was not offered: {other}"),
        }
    }
}

#[tokio::test]
async fn named_and_none_tool_choices_are_enforced() {
    let (server, _dir) = server_with_model();
    let (status, body) = post(
        &server,
        "/v1/chat/completions",
        json!({"model": "smol", "tools": tools(), "seed": 1,
               "tool_choice": {"type": "function", "function": {"name": "add"}},
               "messages": [{"role": "user", "content": "What is the weather in Paris?"}]}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body["choices"][0]["message"]["tool_calls"][0]["function"]["name"],
        "add"
    );
    // `none`: the tools are not offered, so the answer is prose.
    let (status, body) = post(
        &server,
        "/v1/chat/completions",
        json!({"model": "smol", "tools": tools(), "tool_choice": "none", "max_tokens": 10,
               "messages": [{"role": "user", "content": "What is the weather in Paris?"}]}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert!(body["choices"][0]["message"].get("tool_calls").is_none());
    assert_ne!(body["choices"][0]["finish_reason"], "tool_calls");
    // A named tool that was not offered is the caller's mistake.
    let (status, body) = post(
        &server,
        "/v1/chat/completions",
        json!({"model": "smol", "tools": tools(),
               "tool_choice": {"type": "function", "function": {"name": "rm"}},
               "messages": [{"role": "user", "content": "Hi"}]}),
    )
    .await;
    assert_eq!(status, 400);
    assert_eq!(body["error"]["type"], "invalid_request_error");
    // The native API takes the same field.
    let (status, body) = post(
        &server,
        "/api/chat",
        json!({"model": "smol", "stream": false, "tools": tools(), "tool_choice": "required",
               "options": {"seed": 1},
               "messages": [{"role": "user", "content": "Add 1 and 2"}]}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["message"]["tool_calls"].as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn streamed_tool_calls_arrive_whole_with_a_tool_calls_finish() {
    let (server, _dir) = server_with_model();
    let events = sse(
        &server,
        "/v1/chat/completions",
        json!({"model": "smol", "stream": true, "tools": tools(), "tool_choice": "required", "seed": 1,
               "messages": [{"role": "user", "content": "What is the weather in Rome?"}]}),
    )
    .await;
    let chunks = openai_chunks(&events);
    let calls: Vec<&Value> = chunks
        .iter()
        .filter_map(|c| c["choices"][0]["delta"].get("tool_calls"))
        .collect();
    assert_eq!(calls.len(), 1, "{chunks:?}");
    let arguments = calls[0][0]["function"]["arguments"].as_str().unwrap();
    serde_json::from_str::<Value>(arguments).unwrap();
    assert_eq!(
        chunks.last().unwrap()["choices"][0]["finish_reason"],
        "tool_calls"
    );
}

#[tokio::test]
async fn a_tool_round_trip_is_accepted() {
    let (server, _dir) = server_with_model();
    let (status, body) = post(
        &server,
        "/v1/chat/completions",
        json!({"model": "smol", "max_tokens": 12, "tools": tools(), "messages": [
            {"role": "user", "content": "What is the weather in Paris?"},
            {"role": "assistant", "content": null, "tool_calls": [{"id": "call_1", "type": "function",
                "function": {"name": "get_weather", "arguments": "{\"city\": \"Paris\"}"}}]},
            {"role": "tool", "tool_call_id": "call_1", "content": "Sunny, 22 C"},
        ]}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert!(body["choices"][0]["message"]["content"].is_string());
}

#[tokio::test]
async fn logprobs_are_natural_logs_of_the_chosen_tokens() {
    let (server, _dir) = server_with_model();
    let (status, body) = post(
        &server,
        "/v1/chat/completions",
        json!({"model": "smol", "max_tokens": 4, "temperature": 0, "logprobs": true, "top_logprobs": 3,
               "messages": [{"role": "user", "content": "Write a long story about a dragon."}]}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["choices"][0]["finish_reason"], "length");
    let content = body["choices"][0]["message"]["content"].as_str().unwrap();
    let entries = body["choices"][0]["logprobs"]["content"]
        .as_array()
        .unwrap();
    assert_eq!(entries.len(), 4);
    let mut text = String::new();
    for entry in entries {
        let logprob = entry["logprob"].as_f64().unwrap();
        assert!(logprob <= 0.0 && logprob > -30.0, "{entry}");
        let top = entry["top_logprobs"].as_array().unwrap();
        assert_eq!(top.len(), 3);
        // Greedy: the chosen token is the most likely one.
        assert_eq!(top[0]["token"], entry["token"]);
        assert!((top[0]["logprob"].as_f64().unwrap() - logprob).abs() < 1e-6);
        let probability_mass: f64 = top
            .iter()
            .map(|t| t["logprob"].as_f64().unwrap().exp())
            .sum();
        assert!(probability_mass <= 1.0 + 1e-4);
        text.push_str(entry["token"].as_str().unwrap());
    }
    assert_eq!(text, content);
    // An answer that ends by itself: the end-of-turn token is counted but has no text, so it
    // has no entry.
    let (_, body) = post(
        &server,
        "/v1/chat/completions",
        json!({"model": "smol", "max_tokens": 30, "temperature": 0, "logprobs": true,
               "messages": [{"role": "user", "content": "Hello"}]}),
    )
    .await;
    assert_eq!(body["choices"][0]["finish_reason"], "stop", "{body}");
    let entries = body["choices"][0]["logprobs"]["content"]
        .as_array()
        .unwrap();
    let text: String = entries
        .iter()
        .map(|e| e["token"].as_str().unwrap())
        .collect();
    assert_eq!(text, body["choices"][0]["message"]["content"]);
    assert_eq!(
        entries.len() as u64 + 1,
        body["usage"]["completion_tokens"].as_u64().unwrap()
    );
}

#[tokio::test]
async fn completions_answer_streaming_and_not() {
    let (server, _dir) = server_with_model();
    let (status, body) = post(
        &server,
        "/v1/completions",
        json!({"model": "smol", "prompt": "The capital of France is", "max_tokens": 5, "stop": ["\n"]}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert!(body["id"].as_str().unwrap().starts_with("cmpl-"));
    assert_eq!(body["object"], "text_completion");
    assert!(body["choices"][0]["text"].is_string());
    assert!(body["usage"]["total_tokens"].as_u64().unwrap() > 0);
    let events = sse(
        &server,
        "/v1/completions",
        json!({"model": "smol", "prompt": "Once upon a time", "max_tokens": 5, "stream": true, "seed": 1,
               "stream_options": {"include_usage": true}}),
    )
    .await;
    let chunks = openai_chunks(&events);
    assert!(chunks.iter().all(|c| c["object"] == "text_completion"));
    let text: String = chunks
        .iter()
        .filter_map(|c| c["choices"][0]["text"].as_str())
        .collect();
    assert!(!text.is_empty());
    let generated = chunks.last().unwrap()["usage"]["completion_tokens"]
        .as_u64()
        .unwrap();
    assert!(generated > 0 && generated <= 5);
    let (status, body) = post(
        &server,
        "/v1/completions",
        json!({"model": "smol", "prompt": "x", "stop": ["a", 1]}),
    )
    .await;
    assert_eq!(status, 400);
    assert_eq!(
        body["error"]["message"],
        "invalid type for 'stop' field: float64"
    );
}

#[tokio::test]
async fn models_are_listed_and_retrieved() {
    let (server, _dir) = server_with_model();
    let (status, body) = reqwest::get(server.url("/v1/models"))
        .await
        .map(|r| (r.status().as_u16(), r))
        .unwrap();
    assert_eq!(status, 200);
    let body: Value = body.json().await.unwrap();
    assert_eq!(body["object"], "list");
    assert_eq!(body["data"][0]["id"], "smol:latest");
    assert_eq!(body["data"][0]["object"], "model");
    assert_eq!(body["data"][0]["owned_by"], "library");
    assert!(body["data"][0]["created"].as_i64().unwrap() > 1_700_000_000);
    let one: Value = reqwest::get(server.url("/v1/models/smol"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(one["id"], "smol");
    let missing = reqwest::get(server.url("/v1/models/nope")).await.unwrap();
    assert_eq!(missing.status(), 404);
    let missing: Value = missing.json().await.unwrap();
    assert_eq!(
        missing,
        json!({"error": {"message": "model 'nope' not found", "type": "not_found_error", "param": null, "code": null}})
    );
}

#[tokio::test]
async fn unknown_models_get_404_in_each_apis_own_form() {
    let (server, _dir) = server_with_model();
    let (status, body) = post(
        &server,
        "/v1/chat/completions",
        json!({"model": "nope", "messages": [{"role": "user", "content": "Hi"}]}),
    )
    .await;
    assert_eq!(status, 404);
    assert_eq!(
        body,
        json!({"error": {"message": "model 'nope' not found", "type": "not_found_error", "param": null, "code": null}})
    );
    let (status, body) = post(
        &server,
        "/v1/completions",
        json!({"model": "nope", "prompt": "Hi"}),
    )
    .await;
    assert_eq!(status, 404);
    assert_eq!(body["error"]["type"], "not_found_error");
    let (status, body) = post(
        &server,
        "/v1/responses",
        json!({"model": "nope", "input": "Hi"}),
    )
    .await;
    assert_eq!(status, 404);
    assert_eq!(body["error"]["type"], "not_found_error");
    let (status, body) = post(
        &server,
        "/v1/messages",
        json!({"model": "nope", "max_tokens": 5, "messages": [{"role": "user", "content": "Hi"}]}),
    )
    .await;
    assert_eq!(status, 404);
    assert_eq!(body["type"], "error");
    assert_eq!(body["error"]["type"], "not_found_error");
    assert_eq!(body["error"]["message"], "model 'nope' not found");
    assert!(body["request_id"].as_str().unwrap().starts_with("req_"));
    let (status, body) = post(
        &server,
        "/api/tokenize",
        json!({"model": "nope", "content": "x"}),
    )
    .await;
    assert_eq!(status, 404);
    assert_eq!(body, json!({"error": "model 'nope' not found"}));
    // Bad requests are 400s in the same forms.
    let (status, body) = post(
        &server,
        "/v1/chat/completions",
        json!({"model": "smol", "messages": [{"role": "user", "content": 2}]}),
    )
    .await;
    assert_eq!(status, 400);
    assert_eq!(
        body["error"],
        json!({"message": "invalid message content type: float64", "type": "invalid_request_error", "param": null, "code": null})
    );
    // Images go to the native check: this model has no vision.
    let (status, body) = post(
        &server,
        "/v1/chat/completions",
        json!({"model": "smol", "messages": [{"role": "user", "content": [
            {"type": "text", "text": "What is this?"},
            {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}}]}]}),
    )
    .await;
    assert_eq!(status, 400);
    assert_eq!(
        body["error"]["message"],
        "registry.ollama.ai/library/smol:latest does not support vision"
    );
    let (status, body) = post(
        &server,
        "/v1/messages",
        json!({"model": "smol", "messages": [{"role": "user", "content": "Hi"}]}),
    )
    .await;
    assert_eq!(status, 400);
    assert_eq!(body["error"]["type"], "invalid_request_error");
    assert_eq!(
        body["error"]["message"],
        "max_tokens is required and must be positive"
    );
}

#[tokio::test]
async fn anthropic_messages_answer_streaming_and_not() {
    let (server, _dir) = server_with_model();
    let (status, body) = post(
        &server,
        "/v1/messages",
        json!({"model": "smol", "max_tokens": 6, "system": "Be brief.", "stop_sequences": ["\n\n"], "options": {"seed": 1},
               "messages": [{"role": "user", "content": [{"type": "text", "text": "Hello"}]}]}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert!(body["id"].as_str().unwrap().starts_with("msg_"));
    assert_eq!(body["type"], "message");
    assert_eq!(body["role"], "assistant");
    assert_eq!(body["content"][0]["type"], "text");
    assert!(matches!(
        body["stop_reason"].as_str(),
        Some("max_tokens" | "end_turn")
    ));
    assert!(body["usage"]["input_tokens"].as_u64().unwrap() > 0);
    let events = sse(
        &server,
        "/v1/messages",
        json!({"model": "smol", "max_tokens": 5, "stream": true, "options": {"seed": 1},
               "messages": [{"role": "user", "content": "Hello"}]}),
    )
    .await;
    let names: Vec<&str> = events.iter().map(|e| e.name.as_deref().unwrap()).collect();
    assert_eq!(names[0], "message_start");
    assert_eq!(names[1], "content_block_start");
    assert_eq!(names[names.len() - 3], "content_block_stop");
    assert_eq!(names[names.len() - 2], "message_delta");
    assert_eq!(names[names.len() - 1], "message_stop");
    for event in &events {
        let data: Value = serde_json::from_str(&event.data).unwrap();
        assert_eq!(data["type"].as_str(), event.name.as_deref());
    }
    let delta: Value = serde_json::from_str(&events[events.len() - 2].data).unwrap();
    let generated = delta["usage"]["output_tokens"].as_u64().unwrap();
    match delta["delta"]["stop_reason"].as_str().unwrap() {
        "max_tokens" => assert_eq!(generated, 5),
        "end_turn" => assert!(generated > 0 && generated <= 5),
        other => panic!("stop_reason {other}"),
    }
}

#[tokio::test]
async fn anthropic_tool_use_is_enforced_and_round_trips() {
    let (server, _dir) = server_with_model();
    let tools = json!([{"name": "get_weather", "description": "Current weather in a city",
        "input_schema": {"type": "object", "properties": {"city": {"type": "string", "maxLength": 30}}, "required": ["city"]}}]);
    let (status, body) = post(
        &server,
        "/v1/messages",
        json!({"model": "smol", "max_tokens": 60, "tools": tools, "tool_choice": {"type": "any"},
               "options": {"seed": 1},
               "messages": [{"role": "user", "content": "Weather in Oslo?"}]}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["stop_reason"], "tool_use");
    let tool_use = body["content"]
        .as_array()
        .unwrap()
        .iter()
        .find(|b| b["type"] == "tool_use")
        .unwrap()
        .clone();
    assert_eq!(tool_use["name"], "get_weather");
    assert!(tool_use["input"]["city"].is_string());
    let (status, body) = post(
        &server,
        "/v1/messages",
        json!({"model": "smol", "max_tokens": 8, "tools": tools, "messages": [
            {"role": "user", "content": "Weather in Oslo?"},
            {"role": "assistant", "content": [tool_use]},
            {"role": "user", "content": [{"type": "tool_result", "tool_use_id": tool_use["id"], "content": "Snow"}]},
        ]}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
}

#[tokio::test]
async fn responses_answer_streaming_and_not() {
    let (server, _dir) = server_with_model();
    let (status, body) = post(
        &server,
        "/v1/responses",
        json!({"model": "smol", "input": "Hello", "instructions": "Be brief.", "max_output_tokens": 5,
               "options": {"seed": 7}}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["object"], "response");
    assert!(body["id"].as_str().unwrap().starts_with("resp_"));
    assert_eq!(body["status"], "incomplete");
    assert_eq!(body["incomplete_details"]["reason"], "max_output_tokens");
    assert_eq!(body["output"][0]["type"], "message");
    assert_eq!(body["output"][0]["content"][0]["type"], "output_text");
    assert_eq!(body["usage"]["output_tokens"], 5);
    let events = sse(
        &server,
        "/v1/responses",
        json!({"model": "smol", "input": [{"role": "user", "content": [{"type": "input_text", "text": "Hi"}]}],
               "max_output_tokens": 4, "stream": true, "options": {"seed": 7}}),
    )
    .await;
    let data: Vec<Value> = events
        .iter()
        .map(|e| serde_json::from_str(&e.data).unwrap())
        .collect();
    for (i, (event, data)) in events.iter().zip(&data).enumerate() {
        assert_eq!(data["type"].as_str(), event.name.as_deref());
        assert_eq!(data["sequence_number"], i);
    }
    let names: Vec<&str> = events.iter().map(|e| e.name.as_deref().unwrap()).collect();
    assert_eq!(&names[..2], &["response.created", "response.in_progress"]);
    assert!(names.contains(&"response.output_text.delta"));
    assert_eq!(*names.last().unwrap(), "response.incomplete");
    let deltas: String = data
        .iter()
        .filter(|d| d["type"] == "response.output_text.delta")
        .map(|d| d["delta"].as_str().unwrap())
        .collect();
    let done = data
        .iter()
        .find(|d| d["type"] == "response.output_text.done")
        .unwrap();
    assert_eq!(done["text"], deltas);
}

#[tokio::test]
async fn responses_function_calls_and_schemas_are_enforced() {
    let (server, _dir) = server_with_model();
    let tools = json!([{"type": "function", "name": "add", "description": "Add two numbers",
        "parameters": {"type": "object", "properties": {"a": {"type": "number"}, "b": {"type": "number"}}, "required": ["a", "b"]}}]);
    let (status, body) = post(
        &server,
        "/v1/responses",
        json!({"model": "smol", "input": "Add 2 and 3", "tools": tools, "tool_choice": "required",
               "options": {"seed": 1}}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let call = &body["output"][0];
    assert_eq!(call["type"], "function_call");
    assert_eq!(call["name"], "add");
    let arguments: Value = serde_json::from_str(call["arguments"].as_str().unwrap()).unwrap();
    assert!(arguments["a"].is_number());
    let (status, body) = post(
        &server,
        "/v1/responses",
        json!({"model": "smol", "tools": tools, "max_output_tokens": 8, "input": [
            {"role": "user", "content": "Add 2 and 3"},
            {"type": "function_call", "call_id": call["call_id"], "name": "add", "arguments": call["arguments"]},
            {"type": "function_call_output", "call_id": call["call_id"], "output": "5"},
        ]}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let (status, body) = post(
        &server,
        "/v1/responses",
        json!({"model": "smol", "input": "A color as JSON", "max_output_tokens": 60, "options": {"seed": 1},
               "text": {"format": {"type": "json_schema", "name": "color",
                        "schema": {"type": "object", "properties": {"color": {"type": "string", "maxLength": 20}}, "required": ["color"], "additionalProperties": false}}}}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let text = body["output"][0]["content"][0]["text"].as_str().unwrap();
    let value: Value = serde_json::from_str(text).unwrap();
    assert!(value["color"].is_string());
}

#[tokio::test]
async fn tokenize_and_detokenize_round_trip_unicode_exactly() {
    let (server, _dir) = server_with_model();
    for text in [
        "Hello, world!",
        "Héllo wörld — naïve café",
        "日本語のテキスト 🎉🚀 emoji",
        "  leading and trailing spaces \n\ttabs\r\n",
        "<|im_start|>user\nHi<|im_end|>",
        "",
    ] {
        let (status, body) = post(
            &server,
            "/api/tokenize",
            json!({"model": "smol", "content": text}),
        )
        .await;
        assert_eq!(status, 200, "{body}");
        let tokens = body["tokens"].clone();
        assert_eq!(tokens.as_array().unwrap().is_empty(), text.is_empty());
        let (status, body) = post(
            &server,
            "/api/detokenize",
            json!({"model": "smol", "tokens": tokens}),
        )
        .await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["content"], text);
    }
    // Special tokens are tokens of their own.
    let (_, body) = post(
        &server,
        "/api/tokenize",
        json!({"model": "smol", "content": "<|im_end|>"}),
    )
    .await;
    assert_eq!(body["tokens"], json!([2]));
    let (status, body) = post(
        &server,
        "/api/detokenize",
        json!({"model": "smol", "tokens": [1, 99_999_999]}),
    )
    .await;
    assert_eq!(status, 400);
    assert!(
        body["error"]
            .as_str()
            .unwrap()
            .contains("outside the vocabulary"),
        "{body}"
    );
    let (status, body) = post(
        &server,
        "/api/detokenize",
        json!({"model": "smol", "tokens": [-1]}),
    )
    .await;
    assert_eq!(status, 400, "{body}");
    let (status, body) = post(&server, "/api/tokenize", json!({"model": "smol"})).await;
    assert_eq!(status, 400);
    assert_eq!(body["error"], "content is required");
    // Tokenizing does not wait for the (single) generation slot.
    let url = server.url("/api/generate");
    let generation = tokio::spawn(async move {
        reqwest::Client::new()
            .post(url)
            .json(
                &json!({"model": "smol", "prompt": "Write a long story.", "stream": false,
                          "options": {"num_predict": 150, "temperature": 0}}),
            )
            .send()
            .await
            .unwrap()
            .status()
    });
    tokio::time::sleep(Duration::from_millis(500)).await;
    let started = std::time::Instant::now();
    let (status, _) = post(
        &server,
        "/api/tokenize",
        json!({"model": "smol", "content": "hi"}),
    )
    .await;
    assert_eq!(status, 200);
    assert!(!generation.is_finished(), "the generation should still run");
    assert!(
        started.elapsed() < Duration::from_millis(500),
        "tokenize waited {:?}",
        started.elapsed()
    );
    assert_eq!(generation.await.unwrap(), 200);
}

#[tokio::test]
async fn truncated_prompts_are_reported() {
    let (server, _dir) = server_with_model();
    let long = "word ".repeat(400);
    let (status, body) = post(
        &server,
        "/api/chat",
        json!({"model": "smol", "stream": false, "options": {"num_ctx": 128, "num_predict": 2},
               "messages": [{"role": "user", "content": long}]}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["prompt_truncated"], true);
    let response = reqwest::Client::new()
        .post(server.url("/v1/chat/completions"))
        .json(
            &json!({"model": "smol", "max_tokens": 2, "options": {"num_ctx": 128},
                      "messages": [{"role": "user", "content": long}]}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(response.headers()["x-rollama-prompt-truncated"], "true");
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["usage"]["prompt_truncated"], true);
    assert!(body["usage"]["prompt_tokens"].as_u64().unwrap() < 128);
    // A prompt that fits says nothing.
    let response = reqwest::Client::new()
        .post(server.url("/v1/chat/completions"))
        .json(&json!({"model": "smol", "max_tokens": 2, "messages": [{"role": "user", "content": "Hi"}]}))
        .send()
        .await
        .unwrap();
    assert!(response
        .headers()
        .get("x-rollama-prompt-truncated")
        .is_none());
    let body: Value = response.json().await.unwrap();
    assert!(body["usage"].get("prompt_truncated").is_none());
}

#[tokio::test]
async fn a_client_that_leaves_an_sse_stream_stops_generation() {
    let (server, _dir) = server_with_model();
    let response = reqwest::Client::new()
        .post(server.url("/v1/chat/completions"))
        .json(&json!({"model": "smol", "stream": true, "max_tokens": 2000,
                      "messages": [{"role": "user", "content": "Write a very long story."}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let mut stream = response.bytes_stream();
    let first = stream.next().await.unwrap().unwrap();
    assert!(first.starts_with(b"data: "));
    drop(stream);
    server.assert_goes_idle().await;
    let (status, _) = post(
        &server,
        "/v1/chat/completions",
        json!({"model": "smol", "max_tokens": 2, "messages": [{"role": "user", "content": "Hi"}]}),
    )
    .await;
    assert_eq!(status, 200);
}

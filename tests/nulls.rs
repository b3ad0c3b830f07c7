//! `null` for every optional field of every request type, on every route: Go's decoder takes
//! `null` as the field's zero value, so Ollama answers these as if the field were absent, and
//! clients send them (`"options": null`, `"content": null` beside tool calls, `"tools": null`).
//! Each request must get the answer it gets without the field, through the real server.

mod common;

use common::{create_model, import_dir, post, test_model_dir, Server, TOOLS_MODEL};
use serde_json::{json, Value};

/// A request that succeeds, and the fields that may each be `null` in it (`a.b` reaches into
/// an object, `a.0.b` into an array).
struct Case {
    path: &'static str,
    body: Value,
    fields: &'static [&'static str],
}

fn cases() -> Vec<Case> {
    let user = json!([{"role": "user", "content": "Hi"}]);
    vec![
        Case {
            path: "/api/generate",
            body: json!({"model": "smol", "prompt": "Hi", "stream": false,
                         "options": {"num_predict": 1}}),
            fields: &[
                "prompt",
                "suffix",
                "system",
                "template",
                "context",
                "raw",
                "format",
                "options",
                "stream",
                "keep_alive",
                "images",
                "think",
                "truncate",
                "shift",
                "logprobs",
                "top_logprobs",
                "options.num_predict",
                "options.temperature",
            ],
        },
        Case {
            path: "/api/chat",
            body: json!({"model": "tools", "messages": user, "stream": false,
                         "options": {"num_predict": 1}}),
            fields: &[
                "messages",
                "format",
                "options",
                "stream",
                "keep_alive",
                "think",
                "tools",
                "tool_choice",
                "logprobs",
                "top_logprobs",
                "truncate",
                "shift",
                "messages.0.content",
                "messages.0.images",
                "messages.0.tool_calls",
                "messages.0.tool_name",
                "messages.0.thinking",
                "messages.0.role",
            ],
        },
        Case {
            path: "/api/embed",
            body: json!({"model": "minilm", "input": "Hi"}),
            fields: &["input", "truncate", "dimensions", "options", "keep_alive"],
        },
        Case {
            path: "/api/embeddings",
            body: json!({"model": "minilm", "prompt": "Hi"}),
            fields: &["prompt", "options", "keep_alive"],
        },
        Case {
            path: "/api/show",
            body: json!({"model": "smol"}),
            fields: &["verbose", "system", "template", "options"],
        },
        Case {
            path: "/api/create",
            body: json!({"model": "copy", "from": "smol", "stream": false}),
            fields: &[
                "stream",
                "template",
                "system",
                "parameters",
                "messages",
                "license",
                "quantize",
                "files",
                "adapters",
            ],
        },
        Case {
            path: "/api/tokenize",
            body: json!({"model": "smol", "content": "Hi"}),
            fields: &["options", "keep_alive"],
        },
        Case {
            path: "/v1/chat/completions",
            body: json!({"model": "tools", "messages": user, "max_tokens": 1}),
            fields: &[
                "max_tokens",
                "temperature",
                "top_p",
                "stop",
                "stream",
                "stream_options",
                "seed",
                "frequency_penalty",
                "presence_penalty",
                "response_format",
                "tools",
                "tool_choice",
                "parallel_tool_calls",
                "user",
                "n",
                "logprobs",
                "top_logprobs",
                "reasoning_effort",
                "reasoning",
                "options",
                "keep_alive",
                "messages.0.content",
                "messages.0.name",
                "messages.0.tool_calls",
            ],
        },
        Case {
            path: "/v1/completions",
            body: json!({"model": "smol", "prompt": "Hi", "max_tokens": 1}),
            fields: &[
                "max_tokens",
                "temperature",
                "top_p",
                "stop",
                "stream",
                "stream_options",
                "seed",
                "suffix",
                "echo",
                "frequency_penalty",
                "presence_penalty",
                "user",
                "logprobs",
            ],
        },
        Case {
            path: "/v1/embeddings",
            body: json!({"model": "minilm", "input": "Hi"}),
            fields: &["encoding_format", "dimensions", "user"],
        },
        Case {
            path: "/v1/responses",
            body: json!({"model": "tools", "input": "Hi", "max_output_tokens": 16}),
            fields: &[
                "instructions",
                "temperature",
                "top_p",
                "max_output_tokens",
                "tools",
                "tool_choice",
                "text",
                "reasoning",
                "stream",
                "parallel_tool_calls",
                "previous_response_id",
                "metadata",
                "user",
                "store",
            ],
        },
        Case {
            path: "/v1/messages",
            body: json!({"model": "tools", "max_tokens": 1, "messages": user}),
            fields: &[
                "system",
                "temperature",
                "top_p",
                "top_k",
                "stop_sequences",
                "stream",
                "tools",
                "tool_choice",
                "thinking",
                "metadata",
            ],
        },
    ]
}

/// `body` with the field at `path` set to `null`.
fn with_null(body: &Value, path: &str) -> Value {
    let mut body = body.clone();
    let mut parts: Vec<&str> = path.split('.').collect();
    let last = parts.pop().unwrap();
    let mut target = &mut body;
    for part in parts {
        target = match part.parse::<usize>() {
            Ok(index) => &mut target[index],
            Err(_) => &mut target[part],
        };
    }
    target[last] = Value::Null;
    body
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn null_is_taken_as_absent_for_every_optional_field_of_every_request() {
    let server = Server::start();
    // The models bound every answer themselves: with `options` or `max_tokens` null, the
    // request's own bound is gone, and an unbounded answer can run for minutes.
    let bounded = "PARAMETER num_predict 8\n";
    let _smol = create_model(
        &server,
        "smol",
        &format!("FROM ./model.gguf\nPARAMETER stop <|im_end|>\n{bounded}"),
    );
    let _tools = create_model(&server, "tools", &format!("{TOOLS_MODEL}{bounded}"));
    import_dir(&server, "minilm", &test_model_dir("all-minilm-l6-v2"), &[]);
    let mut refused = Vec::new();
    for case in cases() {
        let (status, reply) = post(&server, case.path, case.body.clone()).await;
        assert_eq!(status, 200, "{} {}: {reply}", case.path, case.body);
        for field in case.fields {
            let body = with_null(&case.body, field);
            let (status, reply) = post(&server, case.path, body.clone()).await;
            if status != 200 {
                refused.push(format!("{} {field}: {status} {reply}", case.path));
            }
        }
    }
    // A `null` body is Go's zero request: the same errors as an empty object.
    for (path, message) in [
        ("/api/chat", "model is required"),
        ("/api/generate", "model '' not found"),
    ] {
        let response = reqwest::Client::new()
            .post(server.url(path))
            .body("null")
            .send()
            .await
            .unwrap();
        let reply: Value = response.json().await.unwrap();
        assert_eq!(reply["error"], message, "{path}");
    }
    assert!(
        refused.is_empty(),
        "null refused where Ollama takes it as absent:\n{}",
        refused.join("\n")
    );
}

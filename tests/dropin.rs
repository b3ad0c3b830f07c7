//! Details that real Ollama clients trip on, through the real server and model: `truncate`
//! and `shift` as Ollama honours them, and a JSON schema the grammar cannot compile answered
//! as the client's fault (400 in each API's shape), never a 500.

mod common;

use common::{create_model, post, Server, TOOLS_MODEL};
use serde_json::{json, Value};

const MODEL: &str = "FROM ./model.gguf\nPARAMETER stop <|im_end|>\n";

const TOO_LONG: &str = "the prompt is longer than the context length currently available to \
    the model; shorten the prompt, adjust the context length in settings, or use a model with a \
    longer context length";

fn long_text() -> String {
    "The quick brown fox jumps over the lazy dog. ".repeat(40)
}

fn server() -> (Server, tempfile::TempDir, tempfile::TempDir) {
    let server = Server::start();
    let smol = create_model(&server, "smol", MODEL);
    let tools = create_model(&server, "tools", TOOLS_MODEL);
    (server, smol, tools)
}

#[tokio::test]
async fn truncate_false_refuses_a_prompt_longer_than_the_window() {
    let (server, _smol, _tools) = server();
    let generate = json!({"model": "smol", "prompt": long_text(), "stream": false,
                          "options": {"num_ctx": 128, "num_predict": 4}});
    // By default the prompt is shortened, and the answer says so.
    let (status, body) = post(&server, "/api/generate", generate.clone()).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["prompt_truncated"], true, "{body}");
    let mut refused = generate.clone();
    refused["truncate"] = json!(false);
    let (status, body) = post(&server, "/api/generate", refused).await;
    assert_eq!((status, &body), (400, &json!({"error": TOO_LONG})));

    // A chat whose history does not fit: its oldest turns are dropped, unless truncate is off.
    let mut messages = Vec::new();
    for _ in 0..4 {
        messages.push(json!({"role": "user", "content": long_text()[..600]}));
        messages.push(json!({"role": "assistant", "content": "Noted."}));
    }
    messages.push(json!({"role": "user", "content": "Say hi."}));
    let chat = json!({"model": "smol", "messages": messages, "stream": false,
                      "options": {"num_ctx": 256, "num_predict": 4}});
    let (status, body) = post(&server, "/api/chat", chat.clone()).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["prompt_truncated"], true, "{body}");
    let mut refused = chat.clone();
    refused["truncate"] = json!(false);
    let (status, body) = post(&server, "/api/chat", refused.clone()).await;
    assert_eq!((status, &body), (400, &json!({"error": TOO_LONG})));
    // Streaming, the refusal comes before the first byte, with its status.
    refused["stream"] = json!(true);
    let (status, body) = post(&server, "/api/chat", refused).await;
    assert_eq!((status, &body), (400, &json!({"error": TOO_LONG})));
}

#[tokio::test]
async fn shift_false_refuses_to_shift_a_prompt_and_stops_at_the_window() {
    let (server, _smol, _tools) = server();
    // One message longer than the window: only shifting could fit it.
    let chat = |shift: Option<bool>| {
        let mut body = json!({"model": "smol", "stream": false,
                              "messages": [{"role": "user", "content": long_text()}],
                              "options": {"num_ctx": 128, "num_predict": 4}});
        if let Some(shift) = shift {
            body["shift"] = json!(shift);
        }
        body
    };
    let (status, body) = post(&server, "/api/chat", chat(None)).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["prompt_truncated"], true);
    let (status, body) = post(&server, "/api/chat", chat(Some(false))).await;
    assert_eq!((status, &body), (400, &json!({"error": TOO_LONG})));
    let (status, body) = post(
        &server,
        "/api/generate",
        json!({"model": "smol", "prompt": long_text(),
        "stream": false, "shift": false, "options": {"num_ctx": 128}}),
    )
    .await;
    assert_eq!((status, &body), (400, &json!({"error": TOO_LONG})));

    // A prompt that fits generates up to the window's end and stops there.
    let (status, body) = post(
        &server,
        "/api/generate",
        json!({"model": "smol",
        "prompt": "Count from 1 to 1000, separated by commas.", "stream": false, "shift": false,
        "options": {"num_ctx": 64, "num_predict": 500, "temperature": 0}}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["done_reason"], "length", "{body}");
    let used = body["prompt_eval_count"].as_u64().unwrap() + body["eval_count"].as_u64().unwrap();
    assert!(used <= 64, "{used} tokens in a 64-token window: {body}");
}

/// An object schema whose property points at a definition that does not exist.
fn dangling_schema() -> Value {
    json!({"type": "object", "properties": {"a": {"$ref": "#/$defs/missing"}}, "required": ["a"]})
}

#[tokio::test]
async fn a_schema_the_grammar_cannot_compile_is_a_400_in_each_apis_shape() {
    let (server, _smol, _tools) = server();
    let user = json!([{"role": "user", "content": "Hi"}]);
    let is_schema_error =
        |message: &str| message.contains("missing") || message.contains("grammar");

    for (path, body) in [
        (
            "/api/generate",
            json!({"model": "smol", "prompt": "Hi", "stream": false, "format": dangling_schema()}),
        ),
        (
            "/api/chat",
            json!({"model": "smol", "messages": user, "stream": false, "format": dangling_schema()}),
        ),
        (
            "/api/chat",
            json!({"model": "smol", "messages": user, "format": dangling_schema()}),
        ),
    ] {
        let (status, body) = post(&server, path, body).await;
        assert_eq!(status, 400, "{path} {body}");
        assert!(is_schema_error(body["error"].as_str().unwrap()), "{body}");
    }

    let tool = json!({"type": "function", "function": {"name": "lookup", "parameters": dangling_schema()}});
    for body in [
        json!({"model": "smol", "messages": user, "response_format": {"type": "json_schema",
               "json_schema": {"name": "x", "schema": dangling_schema()}}}),
        json!({"model": "tools", "messages": user, "tools": [tool], "tool_choice": "required"}),
    ] {
        let (status, reply) = post(&server, "/v1/chat/completions", body.clone()).await;
        assert_eq!(status, 400, "{body} {reply}");
        assert_eq!(reply["error"]["type"], "invalid_request_error", "{reply}");
        assert!(
            is_schema_error(reply["error"]["message"].as_str().unwrap()),
            "{reply}"
        );
    }

    let (status, reply) = post(
        &server,
        "/v1/messages",
        json!({"model": "tools", "max_tokens": 16,
        "messages": user, "tool_choice": {"type": "any"},
        "tools": [{"name": "lookup", "input_schema": dangling_schema()}]}),
    )
    .await;
    assert_eq!(status, 400, "{reply}");
    assert_eq!(reply["type"], "error", "{reply}");
    assert_eq!(reply["error"]["type"], "invalid_request_error", "{reply}");

    // And the server goes on answering.
    let (status, _) = post(
        &server,
        "/api/chat",
        json!({"model": "smol", "messages": user,
        "stream": false, "options": {"num_predict": 2}}),
    )
    .await;
    assert_eq!(status, 200);
}

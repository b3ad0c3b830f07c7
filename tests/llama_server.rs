//! Greedy output against llama.cpp's own server: SmolLM2 answers the same prompt with the same
//! text through rollama (default engine) as through `llama-server` on the same GGUF, for a raw
//! prompt and for a chat rendered with the GGUF's own template on both sides.
//!
//! `ROLLAMA_TEST_LLAMA_SERVER` names the binary (scripts/test.sh builds it with
//! scripts/bench/build-llama-server.sh); the default is where that script puts it.

mod common;

use common::llama_server::LlamaServer;
use common::{modelfile_dir, post, stderr, Server};
use serde_json::{json, Value};

const TOKENS: u64 = 48;

async fn llama_server() -> LlamaServer {
    let gguf = common::test_gguf();
    LlamaServer::start(&["-m", gguf.to_str().unwrap(), "-c", "4096", "--jinja"]).await
}

/// `smol` from the test GGUF with no TEMPLATE: rollama renders the GGUF's chat template, as
/// llama-server does.
fn create_smol(server: &Server) -> tempfile::TempDir {
    let dir = modelfile_dir("FROM ./model.gguf\n");
    let modelfile = dir.path().join("Modelfile");
    let output = server.run(&["create", "smol", "-f", modelfile.to_str().unwrap()]);
    assert!(output.status.success(), "{}", stderr(&output));
    dir
}

#[tokio::test]
async fn greedy_answers_match_llama_servers() {
    let reference = llama_server().await;
    let server = Server::start();
    let _dir = create_smol(&server);

    let prompt =
        "<|im_start|>user\nWrite a short poem about the sea.<|im_end|>\n<|im_start|>assistant\n";
    let theirs = reference
        .post(
            "/completion",
            json!({"prompt": prompt, "n_predict": TOKENS, "temperature": 0, "cache_prompt": false}),
        )
        .await;
    let (status, ours) = post(
        &server,
        "/api/generate",
        json!({"model": "smol", "prompt": prompt, "raw": true, "stream": false,
               "options": {"temperature": 0, "num_predict": TOKENS}}),
    )
    .await;
    assert_eq!(status, 200, "{ours}");
    assert_eq!(ours["response"], theirs["content"], "raw prompt");
    assert_eq!(
        ours["prompt_eval_count"], theirs["tokens_evaluated"],
        "the same prompt tokens"
    );

    let messages = json!([{"role": "user", "content": "What is the capital of France?"}]);
    let theirs = reference
        .post(
            "/v1/chat/completions",
            json!({"messages": messages, "max_tokens": TOKENS, "temperature": 0}),
        )
        .await;
    let (status, ours) = post(
        &server,
        "/api/chat",
        json!({"model": "smol", "messages": messages, "stream": false,
               "options": {"temperature": 0, "num_predict": TOKENS}}),
    )
    .await;
    assert_eq!(status, 200, "{ours}");
    assert_eq!(
        ours["message"]["content"], theirs["choices"][0]["message"]["content"],
        "chat with the GGUF's template"
    );
    assert_eq!(
        ours["prompt_eval_count"], theirs["usage"]["prompt_tokens"],
        "the same rendered prompt"
    );
}

#[tokio::test]
async fn structured_output_matches_llama_servers() {
    let reference = llama_server().await;
    let server = Server::start();
    let _dir = create_smol(&server);

    let cases = [
        (
            "extraction",
            "Extract the person's name and age from: Jason is 25 years old.",
            json!({"type": "object", "properties": {
                "name": {"type": "string"}, "age": {"type": "integer"}},
                "required": ["name", "age"]}),
        ),
        (
            "nested",
            "Anna lives at 5 Rue Lepic in Paris, postcode 75018. Give her details as JSON.",
            json!({"type": "object", "properties": {"person": {"type": "object", "properties": {
                "name": {"type": "string"},
                "address": {"type": "object", "properties": {
                    "city": {"type": "string"}, "zip": {"type": "string"}},
                    "required": ["city", "zip"]}},
                "required": ["name", "address"]}},
                "required": ["person"]}),
        ),
        (
            "enum",
            "What is the sentiment of: 'I love this phone, it is wonderful!'",
            json!({"type": "object", "properties": {
                "sentiment": {"type": "string", "enum": ["positive", "negative", "neutral"]}},
                "required": ["sentiment"]}),
        ),
    ];
    for (case, question, schema) in cases {
        let body = |model: Option<&str>| {
            let mut body = json!({
                "messages": [{"role": "user", "content": question}],
                "max_tokens": 96, "temperature": 0,
                "response_format": {"type": "json_schema",
                    "json_schema": {"name": case, "schema": schema}},
            });
            if let Some(model) = model {
                body["model"] = json!(model);
            }
            body
        };
        let theirs = reference.post("/v1/chat/completions", body(None)).await;
        let (status, ours) = post(&server, "/v1/chat/completions", body(Some("smol"))).await;
        assert_eq!(status, 200, "{case}: {ours}");
        let ours_text = ours["choices"][0]["message"]["content"].as_str().unwrap();
        let theirs_text = theirs["choices"][0]["message"]["content"].as_str().unwrap();
        assert_eq!(
            ours_text, theirs_text,
            "{case}: the same constrained answer"
        );
        let value: Value = serde_json::from_str(ours_text)
            .unwrap_or_else(|e| panic!("{case}: not JSON ({e}): {ours_text}"));
        for key in schema["required"].as_array().unwrap() {
            assert!(
                value.get(key.as_str().unwrap()).is_some(),
                "{case}: {value}"
            );
        }
    }
}

//! Thinking through the real server and model: a thinking model made from SmolLM2 with a
//! Modelfile TEMPLATE, its `thinking` capability, `think` reaching the template, reasoning
//! parsed out of replies into `thinking` (native), `reasoning` (OpenAI chat), reasoning items
//! (OpenAI responses) and thinking blocks (Anthropic), streaming and not, earlier reasoning
//! passed back to the template, and `rollama run --hidethinking`.

mod common;

use common::{create_model, get_json, post, post_text, stdout, Server, THINKING_MODEL};
use serde_json::{json, Value};

/// A thinker whose tags are JSON text, so that a JSON schema can force a reply that holds
/// both reasoning and answer: the JSON string `"Reason: <reasoning>. Answer: <answer>"` is the
/// reasoning between the tags `"Reason: ` and `. Answer: `, then the answer `…"`. (A string
/// with a pattern, because a grammar leaves the whitespace of an object to the model.)
const JSON_THINKER: &str = r#"FROM ./model.gguf
TEMPLATE """{{- range .Messages }}<|im_start|>{{ .Role }}
{{ if .Thinking }}"Reason: {{ .Thinking }}. Answer: {{ end }}{{ .Content }}<|im_end|>
{{ end }}<|im_start|>assistant
"""
PARAMETER stop <|im_end|>
PARAMETER temperature 0
"#;

fn schema() -> Value {
    json!({"type": "string", "pattern": "^Reason: [a-z ]{8,30}[.] Answer: [a-z ]{2,12}$"})
}

fn user(text: &str) -> Value {
    json!([{"role": "user", "content": text}])
}

fn server() -> (Server, Vec<tempfile::TempDir>) {
    let server = Server::start();
    let dirs = vec![
        create_model(&server, "thinker", THINKING_MODEL),
        create_model(&server, "jsonthinker", JSON_THINKER),
        create_model(
            &server,
            "plain",
            "FROM ./model.gguf\nPARAMETER stop <|im_end|>\n",
        ),
    ];
    (server, dirs)
}

/// The NDJSON lines of a streamed native answer.
async fn stream(server: &Server, path: &str, body: Value) -> Vec<Value> {
    let (status, text) = post_text(server, path, body).await;
    assert_eq!(status, 200, "{text}");
    text.lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// The `data:` payloads of an SSE answer (without the final `[DONE]`).
async fn sse(server: &Server, path: &str, body: Value) -> Vec<Value> {
    let (status, text) = post_text(server, path, body).await;
    assert_eq!(status, 200, "{text}");
    text.lines()
        .filter_map(|l| l.strip_prefix("data: "))
        .filter(|d| *d != "[DONE]")
        .map(|d| serde_json::from_str(d).unwrap())
        .collect()
}

#[tokio::test]
async fn a_template_that_shows_thinking_gives_the_capability() {
    let (server, _dirs) = server();
    for model in ["thinker", "jsonthinker"] {
        let (_, show) = post(&server, "/api/show", json!({"model": model})).await;
        assert_eq!(
            show["capabilities"],
            json!(["completion", "thinking"]),
            "{model}"
        );
    }
    let tags = get_json(&server, "/api/tags").await;
    for model in tags["models"].as_array().unwrap() {
        let thinks = model["capabilities"]
            .as_array()
            .unwrap()
            .contains(&json!("thinking"));
        assert_eq!(thinks, model["name"] != "plain:latest", "{model}");
    }
    // A model that cannot think refuses think:true, as Ollama does, and takes think:false.
    let (status, body) = post(
        &server,
        "/api/chat",
        json!({"model": "plain", "messages": user("Hi"),
        "think": true, "stream": false}),
    )
    .await;
    assert_eq!(
        (status, body),
        (400, json!({"error": "\"plain\" does not support thinking"}))
    );
    let (status, _) = post(
        &server,
        "/api/chat",
        json!({"model": "plain", "messages": user("Hi"),
        "think": false, "stream": false, "options": {"num_predict": 2}}),
    )
    .await;
    assert_eq!(status, 200);
    // Through the Anthropic API, thinking asked of a model that cannot think is dropped, as
    // Ollama does (Claude Code always asks).
    let (status, body) = post(
        &server,
        "/v1/messages",
        json!({"model": "plain", "max_tokens": 2, "messages": user("Hi"),
               "thinking": {"type": "enabled", "budget_tokens": 1024}}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
}

#[tokio::test]
async fn reasoning_is_parsed_out_of_the_reply_on_the_native_routes() {
    let (server, _dirs) = server();
    // Forced through the grammar: reasoning and answer, deterministic.
    let chat = json!({"model": "jsonthinker", "messages": user("Is the sky blue?"),
                      "format": schema(), "stream": false, "options": {"num_predict": 60}});
    let (status, body) = post(&server, "/api/chat", chat.clone()).await;
    assert_eq!(status, 200, "{body}");
    let thinking = body["message"]["thinking"].as_str().unwrap().to_string();
    let content = body["message"]["content"].as_str().unwrap().to_string();
    assert!(!thinking.is_empty(), "{body}");
    assert!(
        content.ends_with('"') && !content.starts_with('"'),
        "the answer is what follows the reasoning: {body}"
    );
    assert!(
        !content.contains("Reason") && !thinking.contains("Reason"),
        "{body}"
    );

    // Streamed: the same text, the reasoning first, in `message.thinking` chunks.
    let mut streamed = chat.clone();
    streamed["stream"] = json!(true);
    let lines = stream(&server, "/api/chat", streamed).await;
    let joined = |key: &str| -> String {
        lines
            .iter()
            .filter_map(|l| l["message"][key].as_str())
            .collect()
    };
    assert_eq!(joined("thinking"), thinking);
    assert_eq!(joined("content"), content);
    let first_content = lines
        .iter()
        .position(|l| {
            l["message"]["content"]
                .as_str()
                .is_some_and(|c| !c.is_empty())
        })
        .unwrap();
    let last_thinking = lines
        .iter()
        .rposition(|l| {
            l["message"]["thinking"]
                .as_str()
                .is_some_and(|t| !t.is_empty())
        })
        .unwrap();
    assert!(last_thinking < first_content, "{lines:?}");

    // Generate: `thinking` beside `response`.
    let (status, body) = post(
        &server,
        "/api/generate",
        json!({"model": "jsonthinker",
        "prompt": "Is the sky blue?", "format": schema(), "stream": false,
        "options": {"num_predict": 60}}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert!(!body["thinking"].as_str().unwrap().is_empty(), "{body}");
    assert!(body["response"].as_str().unwrap().ends_with('"'), "{body}");

    // think:false: no parsing (and the template was told, see below).
    let mut off = chat.clone();
    off["think"] = json!(false);
    let (_, body) = post(&server, "/api/chat", off).await;
    assert!(body["message"].get("thinking").is_none(), "{body}");
    assert!(
        body["message"]["content"]
            .as_str()
            .unwrap()
            .starts_with("\"Reason: "),
        "{body}"
    );
}

#[tokio::test]
async fn think_and_earlier_reasoning_reach_the_template() {
    let (server, _dirs) = server();
    let prompt_tokens = |think: Option<bool>, messages: Value| {
        let mut body = json!({"model": "thinker", "messages": messages, "stream": false,
                              "options": {"num_predict": 1}});
        if let Some(think) = think {
            body["think"] = json!(think);
        }
        let server = &server;
        async move {
            let (status, body) = post(server, "/api/chat", body).await;
            assert_eq!(status, 200, "{body}");
            body["prompt_eval_count"].as_u64().unwrap()
        }
    };
    // The template opens the reasoning ("<think>\n") when thinking, else asks for a direct
    // answer ("Answer directly.\n"); thinking is on unless the request turns it off.
    let on = prompt_tokens(Some(true), user("Hi")).await;
    assert_eq!(prompt_tokens(None, user("Hi")).await, on);
    let off = prompt_tokens(Some(false), user("Hi")).await;
    assert_ne!(on, off, "think:false must reach the template");
    // An assistant message's `thinking` is shown to the template again.
    let turn = |thinking: Option<&str>| {
        let mut assistant = json!({"role": "assistant", "content": "Hello!"});
        if let Some(thinking) = thinking {
            assistant["thinking"] = json!(thinking);
        }
        json!([{"role": "user", "content": "Hi"}, assistant, {"role": "user", "content": "Bye"}])
    };
    let without = prompt_tokens(None, turn(None)).await;
    let with = prompt_tokens(None, turn(Some("The user greets me; I greet back."))).await;
    assert!(with > without + 5, "{with} vs {without}");
}

#[tokio::test]
async fn reasoning_reaches_the_openai_and_anthropic_shapes() {
    let (server, _dirs) = server();
    // The thinker's reply is all reasoning (it never closes it in 8 tokens).
    let (status, body) = post(
        &server,
        "/v1/chat/completions",
        json!({"model": "thinker",
        "messages": user("Hi"), "max_tokens": 8, "temperature": 0}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let message = &body["choices"][0]["message"];
    assert!(!message["reasoning"].as_str().unwrap().is_empty(), "{body}");
    let events = sse(
        &server,
        "/v1/chat/completions",
        json!({"model": "thinker",
        "messages": user("Hi"), "max_tokens": 8, "temperature": 0, "stream": true}),
    )
    .await;
    let reasoning: String = events
        .iter()
        .filter_map(|e| e["choices"][0]["delta"]["reasoning"].as_str())
        .collect();
    assert_eq!(reasoning, message["reasoning"].as_str().unwrap());

    // Responses: a reasoning item first; streamed, its summary deltas.
    let request =
        json!({"model": "thinker", "input": "Hi", "max_output_tokens": 8, "temperature": 0});
    let (status, body) = post(&server, "/v1/responses", request.clone()).await;
    assert_eq!(status, 200, "{body}");
    let item = &body["output"][0];
    assert_eq!(item["type"], "reasoning", "{body}");
    let summary = item["summary"][0]["text"].as_str().unwrap().to_string();
    assert!(!summary.is_empty());
    let mut streamed = request.clone();
    streamed["stream"] = json!(true);
    let events = sse(&server, "/v1/responses", streamed).await;
    let deltas: String = events
        .iter()
        .filter(|e| e["type"] == "response.reasoning_summary_text.delta")
        .filter_map(|e| e["delta"].as_str())
        .collect();
    assert_eq!(deltas, summary);
    let done = events
        .iter()
        .find(|e| e["type"] == "response.completed" || e["type"] == "response.incomplete")
        .unwrap();
    assert_eq!(done["response"]["output"][0]["type"], "reasoning");
    // A reasoning item sent back goes to the template with the next assistant message.
    let (status, _) = post(&server, "/v1/responses", json!({"model": "thinker", "max_output_tokens": 1,
        "input": [{"role": "user", "content": "Hi"}, item, {"role": "assistant", "content": "Hello"},
                  {"role": "user", "content": "Bye"}]})).await;
    assert_eq!(status, 200);

    // Anthropic: a thinking block; streamed, thinking deltas in a block of its own.
    let request =
        json!({"model": "thinker", "max_tokens": 8, "temperature": 0, "messages": user("Hi")});
    let (status, body) = post(&server, "/v1/messages", request.clone()).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["content"][0]["type"], "thinking", "{body}");
    let thinking = body["content"][0]["thinking"].as_str().unwrap().to_string();
    let mut streamed = request.clone();
    streamed["stream"] = json!(true);
    let events = sse(&server, "/v1/messages", streamed).await;
    let start = events
        .iter()
        .find(|e| e["type"] == "content_block_start")
        .unwrap();
    assert_eq!(start["content_block"]["type"], "thinking", "{events:?}");
    let deltas: String = events
        .iter()
        .filter(|e| e["delta"]["type"] == "thinking_delta")
        .filter_map(|e| e["delta"]["thinking"].as_str())
        .collect();
    assert_eq!(deltas, thinking);
    assert!(events.iter().any(|e| e["type"] == "content_block_stop"));
}

#[test]
fn run_shows_thinking_unless_hidden() {
    let server = Server::start();
    let _dir = create_model(
        &server,
        "thinker",
        &format!("{THINKING_MODEL}PARAMETER temperature 0\nPARAMETER num_predict 8\n"),
    );
    let shown = server.run(&["run", "thinker", "Hi"]);
    assert!(shown.status.success());
    let shown = stdout(&shown);
    assert!(shown.starts_with("Thinking...\n"), "{shown:?}");
    let hidden = server.run(&["run", "thinker", "Hi", "--hidethinking"]);
    assert!(hidden.status.success());
    let hidden = stdout(&hidden);
    assert!(!hidden.contains("Thinking..."), "{hidden:?}");
    // The reasoning itself is what was hidden.
    // (All of this reply is reasoning: the closing line comes only before an answer.)
    let reasoning = shown["Thinking...".len()..].trim();
    assert!(!reasoning.is_empty(), "{shown:?}");
    assert!(!hidden.contains(reasoning), "{hidden:?}");
}

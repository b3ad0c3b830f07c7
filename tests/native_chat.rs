//! Ollama's native chat path through the real server: a GGUF whose own Jinja template has
//! tools, created with a bare `FROM`, reports `tools` and answers tool calls through the
//! official Ollama and OpenAI Python clients (`tests/clients/native_tools.py`); the choice
//! between a Go TEMPLATE and the GGUF's template follows `OLLAMA_GO_TEMPLATE`; and every final
//! response carries a positive `load_duration`.

mod common;

use common::{get_json, gguf_with_chat_template, modelfile_dir_for, post, stderr, stdout, Server};
use serde_json::json;
use std::path::Path;

const QWEN_STYLE: &str = include_str!("data/qwen-style-tools.jinja");

/// Creates `name` from the test model given the Qwen-style template, with `modelfile_rest`
/// after its bare `FROM`.
fn create_qwen_style(server: &Server, dir: &Path, name: &str, modelfile_rest: &str) {
    let gguf = gguf_with_chat_template(dir, QWEN_STYLE);
    let models = modelfile_dir_for(&gguf, &format!("FROM ./model.gguf\n{modelfile_rest}"));
    let modelfile = models.path().join("Modelfile");
    let output = server.run(&["create", name, "-f", modelfile.to_str().unwrap()]);
    assert!(output.status.success(), "{}", stderr(&output));
}

async fn capabilities(server: &Server, name: &str) -> Vec<String> {
    let (status, show) = post(server, "/api/show", json!({"model": name})).await;
    assert_eq!(status, 200, "{show}");
    serde_json::from_value(show["capabilities"].clone()).unwrap()
}

#[tokio::test]
async fn a_gguf_template_with_tools_answers_tool_calls_through_the_official_clients() {
    let server = Server::start();
    let dir = tempfile::tempdir().unwrap();
    create_qwen_style(&server, dir.path(), "qwenish", "");
    assert_eq!(
        capabilities(&server, "qwenish").await,
        ["completion", "tools"]
    );
    let tags = get_json(&server, "/api/tags").await;
    let listed = tags["models"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["name"] == "qwenish:latest")
        .cloned()
        .unwrap();
    assert_eq!(
        listed["capabilities"],
        json!(["completion", "tools"]),
        "{listed}"
    );

    let address = format!("http://{}", server.addr);
    let output = common::run_client_script("native_tools.py", &[&address, "qwenish"]);
    assert!(stdout(&output).contains("native tool calls: ok"));
}

#[tokio::test]
async fn the_native_path_parses_calls_streamed_and_not_without_leaking_tags() {
    let server = Server::start();
    let dir = tempfile::tempdir().unwrap();
    create_qwen_style(&server, dir.path(), "qwenish", "");
    let tool = json!({"type": "function", "function": {"name": "get_weather",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}});
    // Earlier calls, a tool result (`tool_name`) and an answer, so that even the tiny test
    // model answers with a call.
    let call = |city: &str| {
        json!({"role": "assistant", "content": "", "tool_calls": [
            {"function": {"name": "get_weather", "arguments": {"city": city}}}]})
    };
    let user =
        |city: &str| json!({"role": "user", "content": format!("What is the weather in {city}?")});
    let messages = json!([
        user("Berlin"), call("Berlin"),
        {"role": "tool", "tool_name": "get_weather", "content": "12 degrees"},
        {"role": "assistant", "content": "12 degrees in Berlin."},
        user("Rome"), call("Rome"), user("Madrid"), call("Madrid"), user("Paris"),
    ]);
    let body = |stream: bool| {
        json!({"model": "qwenish", "stream": stream, "tools": [tool], "messages": messages,
               "options": {"temperature": 0, "num_predict": 48}})
    };
    let (status, reply) = post(&server, "/api/chat", body(false)).await;
    assert_eq!(status, 200, "{reply}");
    let call = &reply["message"]["tool_calls"][0];
    assert_eq!(call["function"]["name"], "get_weather", "{reply}");
    assert_eq!(
        call["function"]["arguments"],
        json!({"city": "Paris"}),
        "{reply}"
    );
    assert!(call["id"].as_str().unwrap().starts_with("call_"), "{reply}");
    assert_eq!(reply["message"]["content"], "", "{reply}");
    assert!(reply["load_duration"].as_u64().unwrap() > 0, "{reply}");

    let (status, text) = common::post_text(&server, "/api/chat", body(true)).await;
    assert_eq!(status, 200, "{text}");
    let chunks: Vec<serde_json::Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let content: String = chunks
        .iter()
        .filter_map(|c| c["message"]["content"].as_str())
        .collect();
    assert!(
        !content.contains("<tool") && !content.contains("tool_call>"),
        "{text}"
    );
    let calls: Vec<&serde_json::Value> = chunks
        .iter()
        .filter_map(|c| c["message"]["tool_calls"].as_array())
        .flatten()
        .collect();
    assert_eq!(calls.len(), 1, "{text}");
    assert_eq!(
        calls[0]["function"], call["function"],
        "the same call streamed"
    );
    let last = chunks.last().unwrap();
    assert_eq!(last["done"], true);
    assert!(last["load_duration"].as_u64().unwrap() > 0, "{last}");
}

#[tokio::test]
async fn ollama_go_template_chooses_between_the_two_templates() {
    // A Go TEMPLATE without tools beside a GGUF template with them: Ollama renders with the
    // Go template unless the GGUF's can do more (it can: tools), or the variable says.
    let rest = "TEMPLATE \"\"\"{{ range .Messages }}<|im_start|>{{ .Role }}\n{{ .Content }}<|im_end|>\n{{ end }}<|im_start|>assistant\n\"\"\"\n";
    for (setting, expected) in [
        (None, vec!["completion", "tools"]),
        (Some("1"), vec!["completion"]),
        (Some("false"), vec!["completion", "tools"]),
    ] {
        let server = match setting {
            Some(value) => Server::start_with_env(&[("OLLAMA_GO_TEMPLATE", value)]),
            None => Server::start(),
        };
        let dir = tempfile::tempdir().unwrap();
        create_qwen_style(&server, dir.path(), "both", rest);
        assert_eq!(
            capabilities(&server, "both").await,
            expected,
            "OLLAMA_GO_TEMPLATE={setting:?}"
        );
    }
}

#[tokio::test]
async fn every_final_response_has_a_positive_load_duration() {
    let server = Server::start();
    let _dir = common::create_model(&server, "smol", "FROM ./model.gguf\n");
    let options = json!({"temperature": 0, "num_predict": 4});
    for round in 0..2 {
        // The first request loads the model; the second finds it loaded.
        let (status, reply) = post(
            &server,
            "/api/generate",
            json!({"model": "smol", "prompt": "Hi", "stream": false, "options": options}),
        )
        .await;
        assert_eq!(status, 200, "{reply}");
        assert!(
            reply["load_duration"].as_u64().unwrap() > 0,
            "round {round}: {reply}"
        );
        let (status, reply) = post(
            &server,
            "/api/chat",
            json!({"model": "smol", "stream": false, "options": options,
                   "messages": [{"role": "user", "content": "Hi"}]}),
        )
        .await;
        assert_eq!(status, 200, "{reply}");
        let load = reply["load_duration"].as_u64().unwrap();
        assert!(load > 0, "round {round}: {reply}");
        assert!(load <= reply["total_duration"].as_u64().unwrap(), "{reply}");
    }
}

#[tokio::test]
async fn a_gguf_template_that_thinks_puts_the_reasoning_in_thinking() {
    let server = Server::start();
    let dir = tempfile::tempdir().unwrap();
    let gguf = gguf_with_chat_template(dir.path(), include_str!("data/thinking-chatml.jinja"));
    let models = modelfile_dir_for(&gguf, "FROM ./model.gguf\n");
    let modelfile = models.path().join("Modelfile");
    let output = server.run(&["create", "thinker", "-f", modelfile.to_str().unwrap()]);
    assert!(output.status.success(), "{}", stderr(&output));
    assert_eq!(
        capabilities(&server, "thinker").await,
        ["completion", "thinking"]
    );

    let ask = |think: Option<bool>, stream: bool| {
        let mut body = json!({"model": "thinker", "stream": stream,
            "messages": [{"role": "user", "content": "Why is the sky blue?"}],
            "options": {"temperature": 0, "num_predict": 24}});
        if let Some(think) = think {
            body["think"] = json!(think);
        }
        body
    };
    // Thinking by default: the turn opens inside <think>, so the reply is reasoning until
    // the model closes it (24 tokens are not enough for this one to).
    let (status, reply) = post(&server, "/api/chat", ask(None, false)).await;
    assert_eq!(status, 200, "{reply}");
    let thinking = reply["message"]["thinking"].as_str().unwrap_or_default();
    assert!(!thinking.is_empty(), "{reply}");
    assert!(
        !reply["message"]["content"]
            .as_str()
            .unwrap()
            .contains("think>"),
        "{reply}"
    );
    // Streamed: the same reasoning, in `thinking` chunks.
    let (status, text) = common::post_text(&server, "/api/chat", ask(None, true)).await;
    assert_eq!(status, 200, "{text}");
    let streamed: String = text
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .filter_map(|c| c["message"]["thinking"].as_str().map(str::to_string))
        .collect();
    assert_eq!(streamed, thinking, "{text}");
    // `think: false` reaches the template as enable_thinking: an empty block, then the answer.
    let (status, reply) = post(&server, "/api/chat", ask(Some(false), false)).await;
    assert_eq!(status, 200, "{reply}");
    assert!(
        reply["message"].get("thinking").is_none_or(|t| t == ""),
        "{reply}"
    );
    assert!(
        !reply["message"]["content"].as_str().unwrap().is_empty(),
        "{reply}"
    );
}

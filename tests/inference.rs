//! Generation with the real SmolLM2 model through the real server: generate and chat,
//! streaming and not, options, determinism, stop sequences, context, load/unload, ps/stop,
//! concurrency, cancellation on disconnect, and the errors clients see.

mod common;

use common::{create_model, post, stderr, stdout, Server};
use serde_json::{json, Value};
use std::time::{Duration, Instant};

const MODEL: &str = "FROM ./model.gguf\nPARAMETER stop <|im_end|>\n";

fn client() -> reqwest::Client {
    reqwest::Client::new()
}

/// NDJSON lines of a streamed response, checked for framing.
async fn stream_lines(server: &Server, path: &str, body: Value) -> Vec<Value> {
    let response = client()
        .post(server.url(path))
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], "application/x-ndjson");
    let text = response.text().await.unwrap();
    assert!(text.ends_with('\n'), "every line ends with a newline");
    let lines: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let done: Vec<usize> = lines
        .iter()
        .enumerate()
        .filter(|(_, l)| l["done"] == true)
        .map(|(i, _)| i)
        .collect();
    assert_eq!(
        done,
        vec![lines.len() - 1],
        "exactly one final done chunk, last"
    );
    lines
}

fn server_with_model() -> (Server, tempfile::TempDir) {
    let server = Server::start();
    let dir = create_model(&server, "smol", MODEL);
    (server, dir)
}

fn assert_metrics(done: &Value) {
    for key in [
        "total_duration",
        "load_duration",
        "prompt_eval_duration",
        "eval_duration",
    ] {
        assert!(done[key].as_u64().is_some(), "{key} in {done}");
    }
    assert!(done["prompt_eval_count"].as_u64().unwrap() > 5);
    assert!(done["eval_count"].as_u64().unwrap() > 0);
    let total = done["total_duration"].as_u64().unwrap();
    let parts =
        done["prompt_eval_duration"].as_u64().unwrap() + done["eval_duration"].as_u64().unwrap();
    assert!(total >= parts, "total {total} < prompt+eval {parts}");
    assert!(total < 120_000_000_000, "plausible total: {total}");
}

#[tokio::test]
async fn generate_and_chat_answer_with_ollamas_shapes() {
    let (server, _dir) = server_with_model();
    let (status, done) = post(
        &server,
        "/api/generate",
        json!({"model": "smol", "prompt": "Name a color.", "stream": false, "options": {"num_predict": 12}}),
    )
    .await;
    assert_eq!(status, 200, "{done}");
    assert_eq!(done["model"], "smol");
    assert_eq!(done["done"], true);
    assert!(!done["response"].as_str().unwrap().is_empty());
    assert!(done["created_at"].as_str().unwrap().ends_with('Z'));
    assert!(done["context"].as_array().unwrap().len() > 10);
    assert_metrics(&done);

    let lines = stream_lines(
        &server,
        "/api/chat",
        json!({"model": "smol", "messages": [{"role": "user", "content": "Say hi."}], "options": {"num_predict": 12}}),
    )
    .await;
    assert!(lines.len() >= 2);
    for line in &lines[..lines.len() - 1] {
        assert_eq!(line["message"]["role"], "assistant");
        assert_eq!(line["done"], false);
    }
    let done = lines.last().unwrap();
    assert_eq!(done["message"]["content"], "");
    assert!(done.get("context").is_none());
    assert_metrics(done);
    let text: String = lines
        .iter()
        .map(|l| l["message"]["content"].as_str().unwrap())
        .collect();
    assert!(!text.is_empty());
}

#[tokio::test]
async fn num_predict_and_seed_are_honoured() {
    let (server, _dir) = server_with_model();
    let ask = |seed: u64| {
        json!({"model": "smol", "prompt": "Write a short poem about the sea.", "stream": false,
               "options": {"seed": seed, "temperature": 1.0, "num_predict": 24}})
    };
    let (_, a) = post(&server, "/api/generate", ask(42)).await;
    let (_, b) = post(&server, "/api/generate", ask(42)).await;
    let (_, c) = post(&server, "/api/generate", ask(7)).await;
    assert_eq!(a["response"], b["response"], "same seed, same text");
    assert_ne!(a["response"], c["response"], "another seed, another text");
    assert_eq!(a["eval_count"], 24);
    assert_eq!(a["done_reason"], "length");
}

#[tokio::test]
async fn stop_sequences_never_reach_the_output() {
    let (server, _dir) = server_with_model();
    let body = |stop: Option<&str>, stream: bool| {
        let mut options = json!({"temperature": 0, "num_predict": 40});
        if let Some(stop) = stop {
            options["stop"] = json!([stop]);
        }
        json!({"model": "smol", "prompt": "Write two sentences about dogs.", "stream": stream, "options": options})
    };
    let (_, free) = post(&server, "/api/generate", body(None, false)).await;
    let text = free["response"].as_str().unwrap().to_string();
    let words: Vec<&str> = text.split_whitespace().collect();
    assert!(words.len() > 6, "{text}");
    let stop = words[4];
    let expected = &text[..text.find(stop).unwrap()];

    let (_, stopped) = post(&server, "/api/generate", body(Some(stop), false)).await;
    assert_eq!(stopped["response"], expected);
    assert_eq!(stopped["done_reason"], "stop");
    let lines = stream_lines(&server, "/api/generate", body(Some(stop), true)).await;
    let streamed: String = lines
        .iter()
        .map(|l| l["response"].as_str().unwrap())
        .collect();
    assert_eq!(streamed, expected);
    assert!(!streamed.contains(stop));
}

#[tokio::test]
async fn json_format_and_schemas_constrain_the_output() {
    let (server, _dir) = server_with_model();
    let schema = json!({
        "type": "object",
        "properties": {"name": {"type": "string", "maxLength": 12}, "age": {"type": "integer"}},
        "required": ["name", "age"],
        "additionalProperties": false
    });
    let (status, done) = post(
        &server,
        "/api/generate",
        json!({"model": "smol", "prompt": "Describe a cat as JSON.", "stream": false, "format": schema,
               "options": {"temperature": 0, "num_predict": 200}}),
    )
    .await;
    assert_eq!(status, 200, "{done}");
    let parsed: Value = serde_json::from_str(done["response"].as_str().unwrap()).unwrap();
    assert!(
        parsed["name"].is_string() && parsed["age"].is_i64(),
        "{parsed}"
    );

    let (_, done) = post(
        &server,
        "/api/chat",
        json!({"model": "smol", "messages": [{"role": "user", "content": "Reply with an empty JSON object."}],
               "stream": false, "format": "json", "options": {"temperature": 0, "num_predict": 200}}),
    )
    .await;
    let content = done["message"]["content"].as_str().unwrap();
    if done["done_reason"] == "stop" {
        let parsed: Value = serde_json::from_str(content).unwrap();
        assert!(parsed.is_object(), "{content}");
    } else {
        assert!(content.trim_start().starts_with('{'), "{content}");
    }
}

#[tokio::test]
async fn context_carries_a_conversation_forward() {
    let (server, _dir) = server_with_model();
    let (_, first) = post(
        &server,
        "/api/generate",
        json!({"model": "smol", "prompt": "My name is Ada.", "stream": false, "options": {"num_predict": 8}}),
    )
    .await;
    let context = first["context"].as_array().unwrap().clone();
    let (status, second) = post(
        &server,
        "/api/generate",
        json!({"model": "smol", "prompt": "What is my name?", "context": context, "stream": false, "options": {"num_predict": 8}}),
    )
    .await;
    assert_eq!(status, 200);
    assert!(second["prompt_eval_count"].as_u64().unwrap() as usize > context.len());
    assert!(second["context"].as_array().unwrap().len() > context.len());
}

#[tokio::test]
async fn load_unload_keep_alive_ps_and_stop() {
    let (server, _dir) = server_with_model();
    let (status, loaded) = post(&server, "/api/generate", json!({"model": "smol"})).await;
    assert_eq!(status, 200);
    assert_eq!(loaded["done_reason"], "load");
    assert_eq!(loaded["response"], "");
    let ps: Value = client()
        .get(server.url("/api/ps"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let model = &ps["models"][0];
    assert_eq!(model["name"], "smol:latest");
    assert_eq!(model["size_vram"], 0);
    assert!(model["size"].as_u64().unwrap() > 90_000_000);
    assert_eq!(model["context_length"], 4096);
    assert!(model["expires_at"].as_str().is_some());
    let table = stdout(&server.run(&["ps"]));
    // Ollama's column layout: each column as wide as its widest cell.
    let header: Vec<&str> = table.lines().next().unwrap().split_whitespace().collect();
    assert_eq!(
        header,
        ["NAME", "ID", "SIZE", "PROCESSOR", "CONTEXT", "UNTIL"],
        "{table}"
    );
    assert!(
        table.starts_with("NAME           ID              SIZE "),
        "{table}"
    );
    assert!(
        table.contains("smol:latest") && table.contains("100% CPU") && table.contains("from now"),
        "{table}"
    );

    let (_, unloaded) = post(
        &server,
        "/api/chat",
        json!({"model": "smol", "messages": [], "keep_alive": 0}),
    )
    .await;
    assert_eq!(unloaded["done_reason"], "unload");
    assert_eq!(
        unloaded["message"],
        json!({"role": "assistant", "content": ""})
    );
    let ps: Value = client()
        .get(server.url("/api/ps"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(ps["models"], json!([]));

    // A short keep-alive expires on its own.
    let (_, _) = post(
        &server,
        "/api/generate",
        json!({"model": "smol", "keep_alive": "1s"}),
    )
    .await;
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let ps: Value = client()
            .get(server.url("/api/ps"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        if ps["models"] == json!([]) {
            break;
        }
        assert!(Instant::now() < deadline, "keep_alive 1s did not unload");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // `rollama stop` unloads; an unknown model is reported.
    post(
        &server,
        "/api/generate",
        json!({"model": "smol", "keep_alive": -1}),
    )
    .await;
    let ps: Value = client()
        .get(server.url("/api/ps"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(
        ps["models"][0]["expires_at"]
            .as_str()
            .unwrap()
            .starts_with("21"),
        "forever: {ps}"
    );
    let output = server.run(&["stop", "smol"]);
    assert!(output.status.success(), "{}", stderr(&output));
    let ps: Value = client()
        .get(server.url("/api/ps"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(ps["models"], json!([]));
    let output = server.run(&["stop", "nope"]);
    assert_eq!(
        stderr(&output),
        "Error: couldn't find model \"nope\" to stop\n"
    );
}

#[tokio::test]
async fn four_concurrent_chats_all_complete() {
    let server = Server::start_with_env(&[("OLLAMA_NUM_PARALLEL", "4")]);
    let _dir = create_model(&server, "smol", MODEL);
    let mut tasks = Vec::new();
    for i in 0..4 {
        let url = server.url("/api/chat");
        tasks.push(tokio::spawn(async move {
            let body = json!({"model": "smol", "stream": false,
                "messages": [{"role": "user", "content": format!("Give me fact number {i} about cats.")}],
                "options": {"num_predict": 16, "seed": i}});
            let response = reqwest::Client::new().post(url).json(&body).send().await.unwrap();
            assert_eq!(response.status(), 200);
            response.json::<Value>().await.unwrap()
        }));
    }
    for task in tasks {
        let done = task.await.unwrap();
        assert_eq!(done["done"], true, "{done}");
        assert!(
            !done["message"]["content"].as_str().unwrap().is_empty(),
            "{done}"
        );
        // Sampled, in a batch whose make-up depends on timing: a chat may end before its
        // 16 tokens, and then it says it stopped.
        let count = done["eval_count"].as_u64().unwrap();
        assert!((1..=16).contains(&count), "{done}");
        if count < 16 {
            assert_eq!(done["done_reason"], "stop", "{done}");
        }
    }
}

#[tokio::test]
async fn a_client_that_disconnects_stops_generation() {
    let (server, _dir) = server_with_model();
    post(&server, "/api/generate", json!({"model": "smol"})).await;
    let response = client()
        .post(server.url("/api/generate"))
        .json(&json!({"model": "smol", "prompt": "Tell me a very long story.", "options": {"num_predict": 3000, "temperature": 1.0}}))
        .send()
        .await
        .unwrap();
    let mut stream = response.bytes_stream();
    use futures_util::StreamExt;
    let first = stream.next().await.unwrap().unwrap();
    assert!(!first.is_empty());
    drop(stream);
    server.assert_goes_idle().await;
    // And it still serves.
    let (status, _) = post(
        &server,
        "/api/generate",
        json!({"model": "smol", "prompt": "Hi", "stream": false, "options": {"num_predict": 2}}),
    )
    .await;
    assert_eq!(status, 200);
}

#[tokio::test]
async fn bad_requests_get_ollamas_errors() {
    let (server, _dir) = server_with_model();
    let cases = [
        ("/api/generate", json!({"model": "nope", "prompt": "x"}), 404, "model 'nope' not found"),
        ("/api/generate", json!({"model": "", "prompt": "x"}), 404, "model '' not found"),
        ("/api/generate", json!({"model": "bad name!"}), 400, "invalid model name"),
        ("/api/chat", json!({}), 400, "model is required"),
        ("/api/chat", json!({"model": "nope", "messages": [{"role": "user", "content": "x"}]}), 404, "model 'nope' not found"),
        ("/api/generate", json!({"model": "smol", "prompt": "x", "raw": true, "system": "x"}), 400, "raw mode does not support template, system, or context"),
        ("/api/generate", json!({"model": "smol", "prompt": "x", "think": "extreme"}), 400, "invalid think value: \"extreme\" (must be \"high\", \"medium\", \"low\", \"max\", true, or false)"),
        ("/api/generate", json!({"model": "smol", "prompt": "x", "think": true}), 400, "\"smol\" does not support thinking"),
        ("/api/generate", json!({"model": "smol", "prompt": "x", "keep_alive": "300"}), 400, "time: missing unit in duration \"300\""),
        ("/api/generate", json!({"model": "smol", "prompt": "x", "top_logprobs": 21}), 400, "top_logprobs must be between 0 and 20"),
        ("/api/generate", json!({"model": "smol", "prompt": "x", "options": {"num_ctx": "big"}}), 400, "option \"num_ctx\" must be of type integer"),
        ("/api/generate", json!({"model": "smol", "prompt": "x", "suffix": "y"}), 400, "registry.ollama.ai/library/smol:latest does not support insert"),
        ("/api/chat", json!({"model": "smol", "messages": [{"role": "user", "content": "x", "images": ["aGk="]}]}), 400, "registry.ollama.ai/library/smol:latest does not support vision"),
        ("/api/chat", json!({"model": "smol", "messages": [{"role": "user", "content": "x"}], "tools": [{"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}]}), 400, "registry.ollama.ai/library/smol:latest does not support tools"),
    ];
    for (path, body, status, message) in cases {
        let (got, value) = post(&server, path, body.clone()).await;
        assert_eq!(
            (got, &value),
            (status, &json!({"error": message})),
            "{path} {body}"
        );
    }
}

#[tokio::test]
async fn an_unsupported_architecture_is_refused_and_the_server_keeps_serving() {
    let (mut server, _dir) = server_with_model();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("cosmic.gguf");
    let file = std::fs::File::create(&path).unwrap();
    rollama::gguf::write_test_gguf(
        file,
        &[
            (
                "general.architecture",
                rollama::gguf::Value::String("cosmicllm".into()),
            ),
            ("general.file_type", rollama::gguf::Value::U32(1)),
        ],
        &[("token_embd.weight", 1, vec![4, 4])],
    )
    .unwrap();
    std::fs::write(dir.path().join("Modelfile"), "FROM ./cosmic.gguf\n").unwrap();
    let output = server.run(&[
        "create",
        "gemma",
        "-f",
        dir.path().join("Modelfile").to_str().unwrap(),
    ]);
    assert!(output.status.success(), "{}", stderr(&output));
    let (status, body) = post(
        &server,
        "/api/generate",
        json!({"model": "gemma", "prompt": "hi"}),
    )
    .await;
    assert_eq!(status, 400, "{body}");
    assert!(
        body["error"]
            .as_str()
            .unwrap()
            .contains("architecture (cosmicllm) is not supported"),
        "{body}"
    );
    assert!(server.is_running());
    let (status, _) = post(
        &server,
        "/api/generate",
        json!({"model": "smol", "prompt": "Hi", "stream": false, "options": {"num_predict": 2}}),
    )
    .await;
    assert_eq!(status, 200);
}

/// A model whose weights and KV cache would not fit in GPU and host memory together is refused
/// with Ollama's words before anything is loaded, and the server goes on serving.
#[tokio::test]
async fn a_model_larger_than_memory_is_refused_and_the_server_keeps_serving() {
    use rollama::gguf::Value;
    let (mut server, _dir) = server_with_model();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("huge.gguf");
    // A llama shape whose f16 KV cache for 4,096 tokens alone is 2,000 GiB:
    // 2 (K, V) × 2,000 layers × 64 KV heads × 1,024 per head × 4,096 tokens × 2 bytes.
    let metadata = [
        ("general.architecture", Value::String("llama".into())),
        ("general.file_type", Value::U32(1)),
        ("llama.block_count", Value::U32(2000)),
        ("llama.context_length", Value::U32(4096)),
        ("llama.embedding_length", Value::U32(65536)),
        ("llama.attention.head_count", Value::U32(64)),
        ("llama.attention.head_count_kv", Value::U32(64)),
    ];
    rollama::gguf::write_test_gguf(
        std::fs::File::create(&path).unwrap(),
        &metadata,
        &[("token_embd.weight", 1, vec![4, 4])],
    )
    .unwrap();
    std::fs::write(dir.path().join("Modelfile"), "FROM ./huge.gguf\n").unwrap();
    let modelfile = dir.path().join("Modelfile");
    let output = server.run(&["create", "huge", "-f", modelfile.to_str().unwrap()]);
    assert!(output.status.success(), "{}", stderr(&output));
    for path in ["/api/generate", "/api/chat"] {
        let (status, body) = post(
            &server,
            path,
            json!({"model": "huge", "prompt": "hi", "messages": [{"role": "user", "content": "hi"}]}),
        )
        .await;
        assert_eq!(status, 400, "{body}");
        let error = body["error"].as_str().unwrap();
        assert!(
            error.starts_with("model requires more system memory (2000.0 GiB) than is available ("),
            "{error}"
        );
    }
    assert!(server.is_running());
    let (status, _) = post(
        &server,
        "/api/generate",
        json!({"model": "smol", "prompt": "Hi", "stream": false, "options": {"num_predict": 2}}),
    )
    .await;
    assert_eq!(status, 200);
}

#[tokio::test]
async fn a_default_model_serves_requests_without_one() {
    let server = Server::start_with_env(&[("ROLLAMA_DEFAULT_MODEL", "smol")]);
    let _dir = create_model(&server, "smol", MODEL);
    let (status, done) = post(
        &server,
        "/api/chat",
        json!({"messages": [{"role": "user", "content": "Hello"}], "stream": false, "options": {"num_predict": 4}}),
    )
    .await;
    assert_eq!(status, 200, "{done}");
    assert_eq!(done["model"], "smol");
}

#[test]
fn run_prints_a_one_shot_answer_and_piped_stdin_is_plain_text() {
    // Sampled answers (run's defaults) are bounded: now and then the model rambles on to the
    // end of its window, minutes on two cores, and this test is about the output's form.
    let server = Server::start();
    let _dir = create_model(
        &server,
        "smol",
        &format!("{MODEL}PARAMETER num_predict 64\n"),
    );
    let output = server.run(&["run", "smol", "Say hello."]);
    assert!(output.status.success(), "{}", stderr(&output));
    let text = stdout(&output);
    assert!(text.ends_with("\n\n"), "{text:?}");
    assert!(text.trim().len() > 1);
    assert!(
        !text.contains('\u{1b}'),
        "no escape codes when piped: {text:?}"
    );

    let mut child = server
        .rollama()
        .args(["run", "smol", "--verbose"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    child.stdin.take().unwrap().write_all(b"hi\n").unwrap();
    let output = child.wait_with_output().unwrap();
    assert!(output.status.success(), "{}", stderr(&output));
    assert!(!stdout(&output).contains('\u{1b}'));
    let err = stderr(&output);
    assert!(
        err.contains("total duration:") && err.contains("eval rate:"),
        "{err}"
    );
}

#[tokio::test]
async fn tool_calls_in_the_output_become_message_tool_calls() {
    let server = Server::start();
    let template = r#"TEMPLATE """{{ if .Tools }}<|im_start|>system
You can call these tools: {{ range .Tools }}{{ .Function.Name }} {{ end }}<|im_end|>
{{ end }}{{ range .Messages }}<|im_start|>{{ .Role }}
{{ .Content }}<|im_end|>
{{ end }}<|im_start|>assistant
""""#;
    let _dir = create_model(
        &server,
        "toolsmol",
        &format!("FROM ./model.gguf\n{template}\nPARAMETER stop <|im_end|>\n"),
    );
    let show: Value = client()
        .post(server.url("/api/show"))
        .json(&json!({"model": "toolsmol"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(show["capabilities"], json!(["completion", "tools"]));
    let tools = json!([{"type": "function", "function": {"name": "get_weather", "description": "Weather in a city",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}}]);
    // The grammar makes the small model answer with a call, so the parsing is what is tested.
    let schema = json!({"type": "object", "properties": {
        "name": {"const": "get_weather"},
        "arguments": {"type": "object", "properties": {"city": {"type": "string", "maxLength": 12}}, "required": ["city"], "additionalProperties": false}},
        "required": ["name", "arguments"], "additionalProperties": false});
    let body = |stream: bool| {
        json!({"model": "toolsmol", "stream": stream, "tools": tools, "format": schema,
        "messages": [{"role": "user", "content": "What is the weather in Paris?"}],
        "options": {"temperature": 0, "num_predict": 60}})
    };
    let (status, done) = post(&server, "/api/chat", body(false)).await;
    assert_eq!(status, 200, "{done}");
    let call = &done["message"]["tool_calls"][0];
    assert_eq!(call["function"]["name"], "get_weather", "{done}");
    assert!(call["function"]["arguments"]["city"].is_string(), "{done}");
    assert!(call["id"].as_str().unwrap().starts_with("call_"));
    assert_eq!(done["message"]["content"], "");

    let lines = stream_lines(&server, "/api/chat", body(true)).await;
    let with_calls: Vec<&Value> = lines
        .iter()
        .filter(|l| l["message"].get("tool_calls").is_some())
        .collect();
    assert_eq!(with_calls.len(), 1, "{lines:?}");
    assert_eq!(
        with_calls[0]["message"]["tool_calls"][0]["function"]["name"],
        "get_weather"
    );
    let text: String = lines
        .iter()
        .map(|l| l["message"]["content"].as_str().unwrap())
        .collect();
    assert_eq!(text, "", "no raw call text leaks into content");
}

#[tokio::test]
async fn the_first_chunk_arrives_before_generation_ends() {
    use futures_util::StreamExt;
    let (server, _dir) = server_with_model();
    post(&server, "/api/generate", json!({"model": "smol"})).await;
    // Timed from before the request: the response head may travel with the
    // first chunk, so `send` alone says nothing about when tokens flow. The
    // length is a token count, not a wall time, so a fast engine still has
    // most of its generation left when the first chunk arrives.
    let started = Instant::now();
    let response = client()
        .post(server.url("/api/generate"))
        .json(&json!({"model": "smol", "prompt": "Tell me about rivers.", "options": {"num_predict": 120, "temperature": 0}}))
        .send()
        .await
        .unwrap();
    let mut stream = response.bytes_stream();
    let mut first = None;
    let mut buffer = Vec::new();
    while let Some(chunk) = stream.next().await {
        first.get_or_insert_with(|| started.elapsed());
        buffer.extend_from_slice(&chunk.unwrap());
    }
    let total = started.elapsed();
    let first = first.unwrap();
    let lines = buffer.trim_ascii_end().split(|b| *b == b'\n').count();
    assert!(lines > 20, "{lines} chunks");
    assert!(
        first * 3 < total,
        "first chunk at {first:?}, end at {total:?}"
    );
    let last: Value = serde_json::from_slice(
        buffer
            .trim_ascii_end()
            .rsplit(|b| *b == b'\n')
            .next()
            .unwrap(),
    )
    .unwrap();
    assert_eq!(last["done"], true);
}

#[tokio::test]
async fn memory_does_not_grow_with_requests() {
    let (server, _dir) = server_with_model();
    let ask = |i: usize| {
        json!({"model": "smol", "stream": false, "options": {"num_predict": 12},
               "messages": [{"role": "user", "content": format!("Tell me fact {i} about space.")}]})
    };
    for i in 0..4 {
        post(&server, "/api/chat", ask(i)).await;
    }
    let warm = server.rss_bytes();
    for i in 4..16 {
        let (status, _) = post(&server, "/api/chat", ask(i)).await;
        assert_eq!(status, 200);
    }
    let after = server.rss_bytes();
    assert!(
        after < warm + 20_000_000,
        "RSS grew from {warm} to {after} over 12 requests (is the prefix cache on?)"
    );
}

#[tokio::test]
async fn unloading_returns_memory_and_reloads_do_not_accumulate() {
    let (server, _dir) = server_with_model();
    let mut unloaded = Vec::new();
    for _ in 0..3 {
        let (status, _) = post(
            &server,
            "/api/generate",
            json!({"model": "smol", "prompt": "Hi", "stream": false, "options": {"num_predict": 2}}),
        )
        .await;
        assert_eq!(status, 200);
        let loaded = server.rss_bytes();
        post(
            &server,
            "/api/generate",
            json!({"model": "smol", "keep_alive": 0}),
        )
        .await;
        // The engine winds down, then the server trims the heap as soon as the weights are
        // freed; wait for that (up to 10 s), then read the settled value over a second.
        let mut after = server.rss_bytes();
        for _ in 0..50 {
            if after + 150_000_000 < loaded {
                break;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
            after = server.rss_bytes();
        }
        for _ in 0..5 {
            tokio::time::sleep(Duration::from_millis(200)).await;
            after = after.min(server.rss_bytes());
        }
        assert!(
            after + 150_000_000 < loaded,
            "unload kept memory: loaded {loaded}, after {after} (cycle {}, earlier cycles {unloaded:?})",
            unloaded.len() + 1
        );
        unloaded.push(after);
    }
    // Before the arena cap and the trims each cycle kept 100-170 MB more. What remains is a
    // drift of up to ~25 MB per cycle on some runs (inside mistralrs, not found yet), so the
    // bound is 40 MB per cycle: it still catches a model's worth of memory kept per reload.
    assert!(
        unloaded[2] < unloaded[0] + 80_000_000,
        "memory accumulates across load/unload cycles: {unloaded:?}"
    );
}

#[tokio::test]
async fn a_full_queue_answers_503() {
    let server = Server::start_with_env(&[("OLLAMA_MAX_QUEUE", "1"), ("OLLAMA_NUM_PARALLEL", "1")]);
    let _dir = create_model(&server, "smol", MODEL);
    post(&server, "/api/generate", json!({"model": "smol"})).await;
    let long = json!({"model": "smol", "prompt": "Tell me a long story.", "stream": false,
                      "options": {"num_predict": 60}});
    let mut tasks = Vec::new();
    for _ in 0..3 {
        let url = server.url("/api/generate");
        let body = long.clone();
        tasks.push(tokio::spawn(async move {
            let response = reqwest::Client::new()
                .post(url)
                .json(&body)
                .send()
                .await
                .unwrap();
            let status = response.status().as_u16();
            let retry_after = response
                .headers()
                .get("retry-after")
                .map(|v| v.to_str().unwrap().to_string());
            (status, retry_after, response.json::<Value>().await.unwrap())
        }));
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let mut statuses = Vec::new();
    for task in tasks {
        let (status, retry_after, body) = task.await.unwrap();
        if status == 503 {
            assert_eq!(
                body,
                json!({"error": "server busy, please try again.  maximum pending requests exceeded"})
            );
            assert_eq!(retry_after.as_deref(), Some("1"));
        }
        statuses.push(status);
    }
    statuses.sort();
    assert_eq!(
        statuses,
        vec![200, 200, 503],
        "one running, one queued, one refused"
    );
}

#[tokio::test]
async fn a_sequence_the_engine_loses_is_continued_without_a_seam() {
    // mistralrs 0.8.1 sometimes drops a running sequence; a test hook makes every generation
    // lose its sequence once, after three chunks. The answer must be the one an undisturbed
    // server gives for the same seed: same text, same tokens, streamed or not.
    let body = |stream: bool| {
        json!({"model": "smol", "prompt": "Tell me about the moon.", "stream": stream,
               "options": {"seed": 5, "temperature": 0.9, "num_predict": 30, "repeat_penalty": 1.2}})
    };
    let mut answers = Vec::new();
    for env in [&[][..], &[("ROLLAMA_TEST_LOSE_SEQUENCE_AFTER", "3")][..]] {
        let server = Server::start_with_env(env);
        let _dir = create_model(&server, "smol", MODEL);
        let (status, whole) = post(&server, "/api/generate", body(false)).await;
        assert_eq!(status, 200, "{whole}");
        let lines = stream_lines(&server, "/api/generate", body(true)).await;
        let streamed: String = lines
            .iter()
            .map(|l| l["response"].as_str().unwrap())
            .collect();
        assert_eq!(streamed, whole["response"]);
        answers.push((whole["response"].clone(), whole["context"].clone()));
    }
    assert_eq!(answers[0], answers[1]);
}

#[tokio::test]
async fn a_recreated_model_is_served_as_it_now_is() {
    // The server keeps what it read of a model while its manifest is unchanged; re-creating
    // the model under the same name must take effect at once.
    let server = Server::start();
    let _one = create_model(
        &server,
        "smol",
        &format!("{MODEL}PARAMETER num_predict 2\n"),
    );
    let ask = json!({"model": "smol", "prompt": "Write a long story.", "stream": false,
                     "options": {"temperature": 0}});
    let (_, first) = post(&server, "/api/generate", ask.clone()).await;
    assert_eq!(first["eval_count"], 2, "{first}");
    let _two = create_model(
        &server,
        "smol",
        &format!("{MODEL}PARAMETER num_predict 5\n"),
    );
    let (_, second) = post(&server, "/api/generate", ask.clone()).await;
    assert_eq!(second["eval_count"], 5, "{second}");
    let output = server.run(&["rm", "smol"]);
    assert!(output.status.success());
    let (status, _) = post(&server, "/api/generate", ask).await;
    assert_eq!(status, 404);
}

#[tokio::test]
async fn metrics_count_requests_tokens_and_latencies() {
    let (server, _dir) = server_with_model();
    let (status, done) = post(
        &server,
        "/api/generate",
        json!({"model": "smol", "prompt": "Hi", "stream": false, "options": {"num_predict": 4, "temperature": 0}}),
    )
    .await;
    assert_eq!(status, 200);
    let (status, _) = post(
        &server,
        "/api/chat",
        json!({"model": "nope", "messages": []}),
    )
    .await;
    assert_eq!(status, 404);
    let _ = client()
        .get(server.url("/no/such/path"))
        .send()
        .await
        .unwrap();
    let response = client().get(server.url("/metrics")).send().await.unwrap();
    assert_eq!(response.status(), 200);
    assert!(response.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("application/openmetrics-text"));
    let text = response.text().await.unwrap();
    let value = |line_start: &str| -> f64 {
        text.lines()
            .find(|l| l.starts_with(line_start))
            .unwrap_or_else(|| panic!("no {line_start} in\n{text}"))
            .rsplit(' ')
            .next()
            .unwrap()
            .parse()
            .unwrap()
    };
    assert_eq!(
        value(
            "rollama_http_requests_total{method=\"POST\",route=\"/api/generate\",status=\"200\"}"
        ),
        1.0
    );
    assert_eq!(
        value("rollama_http_requests_total{method=\"POST\",route=\"/api/chat\",status=\"404\"}"),
        1.0
    );
    assert_eq!(
        value("rollama_http_requests_total{method=\"GET\",route=\"unmatched\",status=\"404\"}"),
        1.0
    );
    assert_eq!(
        value("rollama_prompt_tokens_total{model=\"smol\"}"),
        done["prompt_eval_count"].as_f64().unwrap()
    );
    assert_eq!(
        value("rollama_generated_tokens_total{model=\"smol\"}"),
        done["eval_count"].as_f64().unwrap()
    );
    assert_eq!(
        value("rollama_time_to_first_token_seconds_count{model=\"smol\"}"),
        1.0
    );
    let first = value("rollama_time_to_first_token_seconds_sum{model=\"smol\"}");
    assert!(first > 0.0 && first < 30.0, "{first}");
    assert_eq!(value("rollama_model_load_seconds_count"), 1.0);
    assert_eq!(value("rollama_loaded_models"), 1.0);
    assert_eq!(value("rollama_queued_requests"), 0.0);
}

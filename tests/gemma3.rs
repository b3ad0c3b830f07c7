//! Gemma 3 270M (Q4_K_M), a family the first engine could not load: created from its GGUF
//! with Gemma's chat format as its TEMPLATE (the GGUF, of the pretrained model, carries no
//! chat template; Ollama's `gemma3` models carry this one), then used on every API and
//! through `rollama run`.

mod common;

use common::{modelfile_dir_for, post, post_text, stderr, stdout, test_gguf, Server};
use serde_json::json;
use std::path::PathBuf;

/// Fetched beside SmolLM2 by scripts/fetch-test-models.sh.
fn gemma_gguf() -> PathBuf {
    let path = test_gguf().with_file_name("gemma-3-270m-q4_k_m.gguf");
    assert!(
        path.exists(),
        "{} is missing: run scripts/fetch-test-models.sh",
        path.display()
    );
    path
}

/// Gemma's turns (`<start_of_turn>user` … `<end_of_turn>`, the model's turn left open), as
/// Ollama's `gemma3` template writes them; system text goes in a user turn. The pretrained
/// model seldom ends its turn, so answers are bounded (`rollama run` has no option for it).
const MODELFILE: &str = r#"FROM ./model.gguf
TEMPLATE """{{- range $i, $_ := .Messages }}
{{- $last := eq (len (slice $.Messages $i)) 1 }}
{{- if or (eq .Role "user") (eq .Role "system") }}<start_of_turn>user
{{ .Content }}<end_of_turn>
{{ if $last }}<start_of_turn>model
{{ end }}
{{- else if eq .Role "assistant" }}<start_of_turn>model
{{ .Content }}{{ if not $last }}<end_of_turn>
{{ end }}
{{- end }}
{{- end }}"""
PARAMETER stop <end_of_turn>
PARAMETER num_predict 32
"#;

fn server() -> Server {
    server_with_env(&[])
}

fn server_with_env(env: &[(&str, &str)]) -> Server {
    let server = Server::start_with_env(env);
    let dir = modelfile_dir_for(&gemma_gguf(), MODELFILE);
    let modelfile = dir.path().join("Modelfile");
    let output = server.run(&["create", "gemma", "-f", modelfile.to_str().unwrap()]);
    assert!(output.status.success(), "{}", stderr(&output));
    server
}

#[tokio::test]
async fn show_reports_a_gemma3_model_of_268m_parameters() {
    let server = server();
    let (status, show) = post(&server, "/api/show", json!({"model": "gemma"})).await;
    assert_eq!(status, 200, "{show}");
    assert_eq!(show["details"]["family"], "gemma3", "{show}");
    assert_eq!(show["details"]["quantization_level"], "Q4_K_M", "{show}");
    let size = show["details"]["parameter_size"].as_str().unwrap();
    assert!(size.starts_with("268"), "{size}");
    assert_eq!(show["model_info"]["general.architecture"], "gemma3");
    let capabilities = show["capabilities"].as_array().unwrap();
    assert!(capabilities.contains(&json!("completion")), "{show}");
}

#[tokio::test]
async fn chat_uses_gemmas_turns_and_answers() {
    let server = server();
    // The prompt the template built, read back through the model's tokenizer.
    let (status, generated) = post(
        &server,
        "/api/generate",
        json!({"model": "gemma", "prompt": "What is the capital of France?", "stream": false,
               "options": {"temperature": 0, "num_predict": 16}}),
    )
    .await;
    assert_eq!(status, 200, "{generated}");
    assert!(!generated["response"].as_str().unwrap().is_empty());
    let context = generated["context"].as_array().unwrap().clone();
    let prompt_len = generated["prompt_eval_count"].as_u64().unwrap() as usize;
    let (status, text) = post(
        &server,
        "/api/detokenize",
        json!({"model": "gemma", "tokens": context[..prompt_len]}),
    )
    .await;
    assert_eq!(status, 200, "{text}");
    let prompt = text["content"].as_str().unwrap();
    assert!(
        prompt.starts_with("<bos><start_of_turn>user\nWhat is the capital of France?<end_of_turn>\n<start_of_turn>model\n"),
        "{prompt:?}"
    );

    let chat = json!({"model": "gemma", "options": {"temperature": 0, "num_predict": 24},
                      "messages": [{"role": "system", "content": "Answer in one word."},
                                   {"role": "user", "content": "What is the capital of France?"}]});
    let mut whole = chat.clone();
    whole["stream"] = json!(false);
    let (status, reply) = post(&server, "/api/chat", whole).await;
    assert_eq!(status, 200, "{reply}");
    let answer = reply["message"]["content"].as_str().unwrap();
    assert!(!answer.trim().is_empty(), "{reply}");
    assert!(!answer.contains("<end_of_turn>"), "{answer:?}");
    assert!(reply["prompt_eval_count"].as_u64().unwrap() > 20, "{reply}");

    // Streamed, the same greedy answer arrives in pieces.
    let (status, body) = post_text(&server, "/api/chat", chat).await;
    assert_eq!(status, 200, "{body}");
    let streamed: String = body
        .lines()
        .map(|line| serde_json::from_str::<serde_json::Value>(line).unwrap())
        .map(|chunk| {
            chunk["message"]["content"]
                .as_str()
                .unwrap_or("")
                .to_string()
        })
        .collect();
    assert_eq!(streamed, answer);
}

/// Gemma 3 mixes sliding-window and global attention layers, so its cache is two caches:
/// an idle conversation's keys and values leave the context when another starts (parking)
/// and come back, window and all, when it continues.
#[tokio::test]
async fn a_parked_conversation_continues_with_the_same_answer() {
    let server = server_with_env(&[("OLLAMA_NUM_PARALLEL", "2")]);
    let generate = |prompt: &'static str| {
        let server = &server;
        async move {
            let (status, body) = post(
                server,
                "/api/generate",
                json!({"model": "gemma", "prompt": prompt, "stream": false,
                       "options": {"temperature": 0, "num_predict": 16}}),
            )
            .await;
            assert_eq!(status, 200, "{body}");
            body
        }
    };
    let a = "Tell me about the old lighthouse keeper and his dog, who live by the sea.";
    let first = generate(a).await;
    generate("Give me a recipe for bread with seeds, step by step.").await;
    let before = common::metric(&server, "rollama_prompt_cached_tokens_total").await;
    let again = generate(a).await;
    let reused = common::metric(&server, "rollama_prompt_cached_tokens_total").await - before;
    let prompt_tokens = first["prompt_eval_count"].as_f64().unwrap();
    assert_eq!(
        reused,
        prompt_tokens - 1.0,
        "all but the last prompt token came back"
    );
    assert_eq!(again["response"], first["response"]);
}

#[tokio::test]
async fn openai_and_anthropic_routes_answer() {
    let server = server();
    let (status, reply) = post(
        &server,
        "/v1/chat/completions",
        json!({"model": "gemma", "max_tokens": 16, "temperature": 0,
               "messages": [{"role": "user", "content": "Say hello."}]}),
    )
    .await;
    assert_eq!(status, 200, "{reply}");
    assert!(!reply["choices"][0]["message"]["content"]
        .as_str()
        .unwrap()
        .is_empty());
    // `<bos><start_of_turn>user\nSay hello.<end_of_turn>\n<start_of_turn>model\n`
    assert!(
        reply["usage"]["prompt_tokens"].as_u64().unwrap() > 8,
        "{reply}"
    );

    let (status, reply) = post(
        &server,
        "/v1/completions",
        json!({"model": "gemma", "max_tokens": 12, "temperature": 0,
               "prompt": "The three primary colours are"}),
    )
    .await;
    assert_eq!(status, 200, "{reply}");
    assert!(
        !reply["choices"][0]["text"].as_str().unwrap().is_empty(),
        "{reply}"
    );

    let (status, reply) = post(
        &server,
        "/v1/responses",
        json!({"model": "gemma", "max_output_tokens": 16, "input": "Say hello."}),
    )
    .await;
    assert_eq!(status, 200, "{reply}");
    // `incomplete` when the 16 tokens ran out first.
    assert!(
        reply["status"] == "completed" || reply["status"] == "incomplete",
        "{reply}"
    );
    assert!(
        reply["output"][0]["content"][0]["text"].is_string(),
        "{reply}"
    );

    let (status, reply) = post(
        &server,
        "/v1/messages",
        json!({"model": "gemma", "max_tokens": 16,
               "messages": [{"role": "user", "content": "Say hello."}]}),
    )
    .await;
    assert_eq!(status, 200, "{reply}");
    assert_eq!(reply["content"][0]["type"], "text", "{reply}");
}

#[tokio::test]
async fn rollama_run_answers_a_one_shot_prompt() {
    let server = server();
    let output = server.run(&["run", "gemma", "What is the capital of France? One word."]);
    assert!(output.status.success(), "{}", stderr(&output));
    assert!(!stdout(&output).trim().is_empty(), "{}", stderr(&output));
}

//! The llama.cpp engine's scheduler through the real server and model: KV reuse (an exact
//! repeat evaluates one token, a chat's next turn only its new text, and each conversation
//! finds its own sequence among several), the hit rate in `/metrics`, context shift past
//! `num_ctx`, continuous batching (a running stream keeps flowing while another client's
//! long prompt is read), and `num_thread`.

mod common;

use common::{create_model, metric, post, Server};
use futures_util::StreamExt;
use serde_json::{json, Value};
use std::time::{Duration, Instant};

const MODEL: &str = "FROM ./model.gguf\nPARAMETER stop <|im_end|>\n";

fn server(env: &[(&str, &str)]) -> (Server, tempfile::TempDir) {
    let mut env = env.to_vec();
    env.push(("ROLLAMA_ENGINE", "llamacpp"));
    let server = Server::start_with_env(&env);
    let dir = create_model(&server, "smol", MODEL);
    (server, dir)
}

async fn generate(server: &Server, prompt: &str, tokens: u64) -> Value {
    let (status, body) = post(
        server,
        "/api/generate",
        json!({"model": "smol", "prompt": prompt, "stream": false,
               "options": {"temperature": 0, "num_predict": tokens}}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    body
}

async fn chat(server: &Server, messages: &[Value], tokens: u64) -> Value {
    let (status, body) = post(
        server,
        "/api/chat",
        json!({"model": "smol", "messages": messages, "stream": false,
               "options": {"temperature": 0, "num_predict": tokens}}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    body
}

async fn cached(server: &Server) -> f64 {
    metric(server, "rollama_prompt_cached_tokens_total").await
}

#[tokio::test]
async fn a_repeated_prompt_evaluates_one_token_and_a_chat_only_its_new_turn() {
    let (server, _dir) = server(&[]);
    let prompt = "Describe the harbour, the ferry and the lighthouse of a small town.";
    let first = generate(&server, prompt, 8).await;
    let prompt_tokens = first["prompt_eval_count"].as_u64().unwrap() as f64;
    assert_eq!(cached(&server).await, 0.0);

    let again = generate(&server, prompt, 8).await;
    assert_eq!(again["response"], first["response"], "greedy, same answer");
    assert_eq!(again["prompt_eval_count"], first["prompt_eval_count"]);
    assert_eq!(
        cached(&server).await,
        prompt_tokens - 1.0,
        "all but the last"
    );

    // A chat's second turn: the first turn's prompt and answer come from the cache.
    let mut messages = vec![json!({"role": "user", "content": "Name a colour."})];
    let turn1 = chat(&server, &messages, 12).await;
    let turn1_prompt = turn1["prompt_eval_count"].as_u64().unwrap() as f64;
    messages.push(turn1["message"].clone());
    messages.push(json!({"role": "user", "content": "And another one?"}));
    let before = cached(&server).await;
    let turn2 = chat(&server, &messages, 12).await;
    let reused = cached(&server).await - before;
    let turn2_prompt = turn2["prompt_eval_count"].as_u64().unwrap() as f64;
    assert!(
        reused >= turn1_prompt && reused < turn2_prompt,
        "turn 2 reused {reused} of {turn2_prompt} prompt tokens (turn 1's prompt: {turn1_prompt})"
    );
    // The reused prompt is fast: no evaluation of what the cache held.
    let full = first["prompt_eval_duration"].as_u64().unwrap();
    let repeat = again["prompt_eval_duration"].as_u64().unwrap();
    assert!(repeat < full, "repeat {repeat} ns, first {full} ns");
}

#[tokio::test]
async fn each_conversation_finds_its_own_sequence() {
    let (server, _dir) = server(&[("OLLAMA_NUM_PARALLEL", "2")]);
    let a = "Conversation A: tell me about the old lighthouse keeper and his dog.";
    let b = "Conversation B: a recipe for bread with seeds, step by step, please.";
    let first = generate(&server, a, 12).await;
    let a_tokens = first["prompt_eval_count"].as_u64().unwrap() as f64;
    // B's start moves A's keys and values out of the context into host memory (parking).
    generate(&server, b, 4).await;
    // A again: its sequence is not the most recently used one, but it shares A's prefix. Its
    // state is copied back, and the answer shows the copy is exact.
    let before = cached(&server).await;
    let again = generate(&server, a, 12).await;
    assert_eq!(cached(&server).await - before, a_tokens - 1.0);
    assert_eq!(again["response"], first["response"], "greedy, same answer");
    // B again, after A parked it in turn.
    let before = cached(&server).await;
    let b_again = generate(&server, b, 4).await;
    let b_tokens = b_again["prompt_eval_count"].as_u64().unwrap() as f64;
    assert_eq!(cached(&server).await - before, b_tokens - 1.0);
}

#[tokio::test]
async fn a_generation_past_num_ctx_shifts_the_context_and_goes_on() {
    let (server, _dir) = server(&[]);
    let (status, body) = post(
        &server,
        "/api/generate",
        json!({"model": "smol", "prompt": "Count from one to one thousand: one, two, three,",
               "stream": false, "raw": true,
               "options": {"temperature": 0, "num_ctx": 64, "num_predict": 150}}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    // 150 tokens from a 64-token window: the context was shifted, more than once.
    assert_eq!(body["eval_count"], 150, "{body}");
    assert_eq!(body["done_reason"], "length");
}

#[tokio::test]
async fn a_long_prompt_does_not_stall_a_running_stream() {
    let (server, _dir) = server(&[("OLLAMA_NUM_PARALLEL", "2")]);
    generate(&server, "Hi", 1).await;
    // A stream, with the arrival time of each chunk.
    let client = reqwest::Client::new();
    let response = client
        .post(server.url("/api/generate"))
        .json(
            &json!({"model": "smol", "prompt": "Tell me a very long story about the sea.",
                      "options": {"temperature": 0, "num_predict": 400}}),
        )
        .send()
        .await
        .unwrap();
    let reader = tokio::spawn(async move {
        let mut stream = response.bytes_stream();
        let mut arrivals = Vec::new();
        while let Some(chunk) = stream.next().await {
            let chunk = chunk.unwrap();
            arrivals.extend(std::iter::repeat_n(
                Instant::now(),
                chunk.iter().filter(|b| **b == b'\n').count(),
            ));
        }
        arrivals
    });
    tokio::time::sleep(Duration::from_millis(500)).await;
    // Meanwhile another client sends a ~2,000-token prompt.
    let long: String = (0..140)
        .map(|i| format!("Line {i}: the committee met to review the harbour report. "))
        .collect();
    let sent = Instant::now();
    let (status, other) = post(
        &server,
        "/api/generate",
        json!({"model": "smol", "prompt": long, "stream": false,
               "options": {"temperature": 0, "num_predict": 1}}),
    )
    .await;
    assert_eq!(status, 200, "{other}");
    let other_done = Instant::now();
    let prompt_tokens = other["prompt_eval_count"].as_u64().unwrap();
    assert!(prompt_tokens > 1500, "{prompt_tokens}");
    let prefill = Duration::from_nanos(other["prompt_eval_duration"].as_u64().unwrap());
    let arrivals = reader.await.unwrap();
    // The longest pause of the stream while the long prompt was read: a chunk of it
    // (`num_batch` tokens), not the whole prompt.
    let during: Vec<Instant> = arrivals
        .iter()
        .copied()
        .filter(|at| *at >= sent && *at <= other_done)
        .collect();
    assert!(
        during.len() >= 3,
        "the stream produced {} chunks meanwhile",
        during.len()
    );
    let longest = during
        .windows(2)
        .map(|pair| pair[1] - pair[0])
        .max()
        .unwrap();
    eprintln!(
        "long prompt: {prompt_tokens} tokens read in {prefill:?}; the stream's longest gap \
         meanwhile {longest:?} ({} chunks)",
        during.len()
    );
    assert!(
        longest * 2 < prefill,
        "the stream paused {longest:?} while a {prompt_tokens}-token prompt took {prefill:?}"
    );
}

/// `num_thread` is the number of threads llama.cpp computes with: with 1, a generation keeps
/// one core busy; by default (one thread per physical core) it keeps them all busy.
#[tokio::test]
async fn num_thread_sets_the_threads_a_generation_computes_with() {
    let (server, _dir) = server(&[]);
    let busy_cores = |options: Value| {
        let server = &server;
        async move {
            let body = json!({"model": "smol", "raw": true, "stream": false, "options": options,
                              "prompt": "Count from one to one thousand: one, two, three,"});
            // The first request loads the model with these options; the second is measured.
            let (status, reply) = post(server, "/api/generate", body.clone()).await;
            assert_eq!(status, 200, "{reply}");
            let (cpu, wall) = (server.cpu_time(), Instant::now());
            let (status, reply) = post(server, "/api/generate", body).await;
            assert_eq!(status, 200, "{reply}");
            (server.cpu_time() - cpu).as_secs_f64() / wall.elapsed().as_secs_f64()
        }
    };
    let one = busy_cores(json!({"temperature": 0, "num_predict": 200, "num_thread": 1})).await;
    assert!(one < 1.3, "num_thread 1 kept {one:.2} cores busy");
    let cores = rollama::engine::llama::physical_cores();
    if cores >= 2 {
        let default = busy_cores(json!({"temperature": 0, "num_predict": 200})).await;
        eprintln!("num_thread 1: {one:.2} cores busy; default ({cores} threads): {default:.2}");
        assert!(
            default > one + 0.4,
            "the default {cores} threads kept {default:.2} cores busy, num_thread 1 {one:.2}"
        );
    }
}

//! The llama.cpp engine's caches beyond llama-server's, with the real SmolLM2 model through
//! the real server: prefixes shared across concurrent requests, conversations saved to disk
//! when a model unloads (and refused when their files are damaged), and speculative
//! decoding that leaves greedy output unchanged.

mod common;

use common::{create_model, metric, post, Server};
use serde_json::{json, Value};
use std::path::Path;

const MODEL: &str = "FROM ./model.gguf\nPARAMETER stop <|im_end|>\n";

/// A system prompt of about a thousand tokens.
fn long_system() -> String {
    (0..50)
        .map(|i| {
            format!(
                "Rule {i}: the committee reviews the harbour report, the ferry timetable and \
                 the library budget."
            )
        })
        .collect::<Vec<_>>()
        .join(" ")
}

async fn chat(server: &Server, messages: &Value) -> String {
    let (status, body) = post(
        server,
        "/api/chat",
        json!({"model": "smol", "messages": messages, "stream": false,
               "options": {"temperature": 0, "num_predict": 16}}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    body["message"]["content"].as_str().unwrap().to_string()
}

async fn generate(server: &Server, prompt: &str, options: Value) -> Value {
    let (status, body) = post(
        server,
        "/api/generate",
        json!({"model": "smol", "prompt": prompt, "raw": true, "stream": false,
               "options": options}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    body
}

fn kv_files(dir: &Path) -> Vec<std::path::PathBuf> {
    std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .flatten()
                .map(|e| e.path())
                .filter(|p| p.extension().is_some_and(|e| e == "kv"))
                .collect()
        })
        .unwrap_or_default()
}

/// A server over `models` with its KV cache directory at `cache`, and the model created.
fn server_with_cache(models: &Path, cache: &Path, extra: &[(&str, &str)]) -> Server {
    let mut env = vec![("ROLLAMA_KV_CACHE_DIR", cache.to_str().unwrap())];
    env.extend_from_slice(extra);
    let server = Server::start_with_store_env(models, &env);
    create_model(&server, "smol", MODEL);
    server
}

/// The first turn, and the second turn's messages with the first answer in them.
async fn two_turns(server: &Server) -> Value {
    let first = json!([
        {"role": "system", "content": long_system()},
        {"role": "user", "content": "Which rule mentions the harbour first?"}
    ]);
    let answer = chat(server, &first).await;
    let mut second = first.as_array().unwrap().clone();
    second.push(json!({"role": "assistant", "content": answer}));
    second.push(json!({"role": "user", "content": "And which one mentions the library?"}));
    Value::Array(second)
}

#[tokio::test]
async fn concurrent_requests_share_a_prefix_and_each_gets_its_own_answer() {
    let server = Server::start_with_env(&[("OLLAMA_NUM_PARALLEL", "4")]);
    create_model(&server, "smol", MODEL);
    let system = long_system();
    let words = ["banana", "umbrella", "violin", "tractor"];
    let requests = words.iter().map(|word| {
        let prompt = format!("{system}\n\nThe password is {word}. Say it again: the password is");
        let server = &server;
        async move {
            generate(server, &prompt, json!({"temperature": 0, "num_predict": 4})).await["response"]
                .as_str()
                .unwrap()
                .to_string()
        }
    });
    let answers = futures_util::future::join_all(requests).await;
    for (word, answer) in words.iter().zip(&answers) {
        assert!(
            answer.to_lowercase().contains(word),
            "the request for {word} got {answer:?}"
        );
    }
    // The system prompt was computed once and copied into the other three sequences.
    let copied = metric(&server, "rollama_prompt_tokens_copied_total").await;
    let computed = metric(&server, "rollama_prompt_tokens_computed_total").await;
    assert!(copied > 2500.0, "copied {copied}, computed {computed}");
    assert!(computed < 1400.0, "copied {copied}, computed {computed}");
}

#[tokio::test]
async fn a_restored_conversation_answers_as_the_uninterrupted_one() {
    let cache = tempfile::tempdir().unwrap();
    // Uninterrupted: both turns on one loaded model.
    let store = tempfile::tempdir().unwrap();
    let server = server_with_cache(
        store.path(),
        cache.path(),
        &[("ROLLAMA_KV_CACHE_SIZE", "0")],
    );
    let second = two_turns(&server).await;
    let uninterrupted = chat(&server, &second).await;
    drop(server);
    assert!(kv_files(cache.path()).is_empty(), "saving is off at size 0");

    // Interrupted: the first turn, then the model unloads, then a restart.
    let store = tempfile::tempdir().unwrap();
    let server = server_with_cache(store.path(), cache.path(), &[]);
    two_turns(&server).await;
    let (status, _) = post(
        &server,
        "/api/generate",
        json!({"model": "smol", "keep_alive": 0}),
    )
    .await;
    assert_eq!(status, 200);
    server.terminate();
    assert_eq!(kv_files(cache.path()).len(), 1, "one conversation saved");

    let server = Server::start_with_store_env(
        store.path(),
        &[("ROLLAMA_KV_CACHE_DIR", cache.path().to_str().unwrap())],
    );
    let restored = chat(&server, &second).await;
    assert_eq!(restored, uninterrupted);
    assert_eq!(
        metric(&server, "rollama_kv_cache_files_restored_total").await,
        1.0
    );
    let from_disk = metric(&server, "rollama_prompt_tokens_copied_total").await;
    let computed = metric(&server, "rollama_prompt_tokens_computed_total").await;
    assert!(
        from_disk > 900.0 && computed < 100.0,
        "{from_disk} copied, {computed} computed"
    );
}

/// Saves the first turn's conversation (the server stops cleanly) and returns its file.
async fn save_one(store: &Path, cache: &Path) -> std::path::PathBuf {
    let server =
        Server::start_with_store_env(store, &[("ROLLAMA_KV_CACHE_DIR", cache.to_str().unwrap())]);
    two_turns(&server).await;
    server.terminate();
    let files = kv_files(cache);
    assert_eq!(files.len(), 1);
    files[0].clone()
}

/// The second turn's answer from a restarted server, with the files refused and restored.
async fn answer_after_restart(
    store: &Path,
    cache: &Path,
    second: &Value,
    env: &[(&str, &str)],
) -> (String, f64, f64) {
    let mut vars = vec![("ROLLAMA_KV_CACHE_DIR", cache.to_str().unwrap())];
    vars.extend_from_slice(env);
    let server = Server::start_with_store_env(store, &vars);
    let answer = chat(&server, second).await;
    let refused = metric(&server, "rollama_kv_cache_files_refused_total").await;
    let restored = metric(&server, "rollama_kv_cache_files_restored_total").await;
    (answer, refused, restored)
}

#[tokio::test]
async fn corrupt_truncated_or_mismatched_cache_files_are_refused() {
    let cache = tempfile::tempdir().unwrap();
    let store = tempfile::tempdir().unwrap();
    let server = server_with_cache(
        store.path(),
        cache.path(),
        &[("ROLLAMA_KV_CACHE_SIZE", "0")],
    );
    let second = two_turns(&server).await;
    let expected = chat(&server, &second).await;
    drop(server);

    let (store, cache) = (store.path(), cache.path());
    // One flipped byte in the keys and values.
    let file = save_one(store, cache).await;
    let mut bytes = std::fs::read(&file).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x55;
    std::fs::write(&file, &bytes).unwrap();
    let (answer, refused, restored) = answer_after_restart(store, cache, &second, &[]).await;
    assert_eq!((refused, restored), (1.0, 0.0));
    assert_eq!(answer, expected, "computed again instead");
    assert!(!file.exists(), "the corrupt file is removed");
    // The request's own conversation is saved again when the server stops: clear it.
    for file in kv_files(cache) {
        std::fs::remove_file(file).unwrap();
    }

    // Cut short, as by a crash mid-copy.
    let file = save_one(store, cache).await;
    let bytes = std::fs::read(&file).unwrap();
    std::fs::write(&file, &bytes[..bytes.len() * 2 / 3]).unwrap();
    let (answer, _, restored) = answer_after_restart(store, cache, &second, &[]).await;
    assert_eq!(restored, 0.0);
    assert_eq!(answer, expected);
    assert!(!file.exists(), "the truncated file is removed");
    for file in kv_files(cache) {
        std::fs::remove_file(file).unwrap();
    }

    // Saved with another context size: not this cache's shape, so never loaded (and kept for
    // the settings it belongs to).
    let file = save_one(store, cache).await;
    let (answer, refused, restored) =
        answer_after_restart(store, cache, &second, &[("OLLAMA_CONTEXT_LENGTH", "2048")]).await;
    assert_eq!((refused, restored), (0.0, 0.0));
    assert_eq!(answer, expected);
    assert!(file.exists());
}

#[tokio::test]
async fn the_cache_directory_stays_within_its_bound() {
    let cache = tempfile::tempdir().unwrap();
    let store = tempfile::tempdir().unwrap();
    // SmolLM2 holds about 23 KB of keys and values per token: each conversation here (about
    // a thousand tokens) takes some 25 MB, so two fit in 60 MB and three do not.
    let bound: u64 = 60_000_000;
    let server = server_with_cache(
        store.path(),
        cache.path(),
        &[("ROLLAMA_KV_CACHE_SIZE", "60MB")],
    );
    let system = long_system();
    for round in 0..4 {
        let messages = json!([
            {"role": "system", "content": format!("Meeting {round}. {system}")},
            {"role": "user", "content": "Which rule mentions the ferry?"}
        ]);
        chat(&server, &messages).await;
        let (status, _) = post(
            &server,
            "/api/generate",
            json!({"model": "smol", "keep_alive": 0}),
        )
        .await;
        assert_eq!(status, 200);
        // The file is written by the model's thread as it ends.
        for _ in 0..400 {
            let saved = metric(&server, "rollama_kv_cache_files_saved_total").await;
            if saved == (round + 1) as f64 {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        let files = kv_files(cache.path());
        let total: u64 = files
            .iter()
            .map(|f| std::fs::metadata(f).map(|m| m.len()).unwrap_or(0))
            .sum();
        assert!(total <= bound, "round {round}: {total} bytes > {bound}");
        assert_eq!(files.len(), (round + 1).min(2), "round {round}");
    }
    assert_eq!(
        metric(&server, "rollama_kv_cache_files_saved_total").await,
        4.0
    );
}

#[tokio::test]
async fn greedy_output_is_the_same_with_and_without_drafting() {
    let server = Server::start();
    create_model(&server, "smol", MODEL);
    let fruits = [
        "apple",
        "banana",
        "cherry",
        "date",
        "elderberry",
        "fig",
        "grape",
        "honeydew",
        "kiwi",
        "lemon",
        "mango",
        "nectarine",
        "orange",
        "papaya",
        "quince",
        "raspberry",
    ];
    let list: Vec<String> = fruits
        .iter()
        .enumerate()
        .map(|(i, f)| format!("{}. {f}", i + 1))
        .collect();
    let prompts = [
        format!(
            "Shopping list:\n{}\n\nThe same shopping list again:\n1. apple\n",
            list.join("\n")
        ),
        "<|im_start|>user\nRepeat the following text exactly: The quick brown fox jumps over \
         the lazy dog. The quick brown fox jumps over the lazy dog again and again.<|im_end|>\n\
         <|im_start|>assistant\n"
            .to_string(),
    ];
    let mut drafted = 0;
    let mut accepted = 0;
    for prompt in &prompts {
        let plain = generate(
            &server,
            prompt,
            json!({"temperature": 0, "num_predict": 80, "draft_num_predict": 0}),
        )
        .await;
        assert!(plain.get("draft_count").is_none());
        let speculative = generate(
            &server,
            prompt,
            json!({"temperature": 0, "num_predict": 80}),
        )
        .await;
        assert_eq!(speculative["response"], plain["response"]);
        assert_eq!(speculative["eval_count"], plain["eval_count"]);
        drafted += speculative["draft_count"].as_u64().unwrap_or(0);
        accepted += speculative["draft_accepted_count"].as_u64().unwrap_or(0);
    }
    assert!(
        accepted > 40 && accepted <= drafted,
        "{accepted} of {drafted}"
    );
    assert_eq!(
        metric(&server, "rollama_draft_accepted_tokens_total").await,
        accepted as f64
    );
}

#[tokio::test]
async fn a_draft_model_from_the_modelfile_drafts_and_greedy_output_is_unchanged() {
    let server = Server::start();
    // SmolLM2 as its own draft model, under another name (Ollama refuses a DRAFT that is the
    // FROM file itself).
    let dir =
        common::modelfile_dir("FROM ./model.gguf\nDRAFT ./draft.gguf\nPARAMETER stop <|im_end|>\n");
    std::os::unix::fs::symlink(common::test_gguf(), dir.path().join("draft.gguf")).unwrap();
    let modelfile = dir.path().join("Modelfile");
    let created = server.run(&["create", "smol", "-f", modelfile.to_str().unwrap()]);
    assert!(created.status.success(), "{}", common::stderr(&created));
    let shown = server.run(&["show", "smol", "--modelfile"]);
    assert!(
        common::stdout(&shown).contains("\nDRAFT "),
        "{}",
        common::stdout(&shown)
    );

    let prompt = "<|im_start|>user\nWrite three sentences about the sea.<|im_end|>\n\
                  <|im_start|>assistant\n";
    let plain = generate(
        &server,
        prompt,
        json!({"temperature": 0, "num_predict": 48, "draft_num_predict": 0}),
    )
    .await;
    let drafted = generate(
        &server,
        prompt,
        json!({"temperature": 0, "num_predict": 48}),
    )
    .await;
    assert_eq!(drafted["response"], plain["response"]);
    let count = drafted["draft_count"].as_u64().unwrap();
    let accepted = drafted["draft_accepted_count"].as_u64().unwrap();
    // Its own draft agrees with the model nearly always (the repeat penalty, which only the
    // model's sampler applies, can part them).
    assert!(accepted * 10 >= count * 7, "{accepted} of {count}");

    // A DRAFT path that does not exist is refused by create.
    let dir = common::modelfile_dir("FROM ./model.gguf\nDRAFT ./missing.gguf\n");
    let modelfile = dir.path().join("Modelfile");
    let refused = server.run(&["create", "other", "-f", modelfile.to_str().unwrap()]);
    assert!(!refused.status.success());
    assert!(common::stderr(&refused).contains("invalid draft path"));
}

/// Two sequences share a copied prefix and both run past `num_ctx`: before one shifts, the
/// other gets cells of its own (a shared cell would slide for both), and both requests run to
/// their length. (Their texts are not compared: they part within a few tokens anyway, by
/// llama.cpp's batch-size rounding, since one is a step behind the other.)
#[tokio::test]
async fn sequences_sharing_a_prefix_shift_their_contexts_apart() {
    let server = Server::start_with_env(&[("OLLAMA_NUM_PARALLEL", "2")]);
    create_model(&server, "smol", MODEL);
    let prompt = long_system()[..700].to_string();
    let request = || {
        let server = &server;
        let prompt = prompt.clone();
        async move {
            generate(
                server,
                &prompt,
                json!({"temperature": 0, "num_predict": 300, "num_ctx": 256,
                       "draft_num_predict": 0}),
            )
            .await
        }
    };
    let (first, second) = tokio::join!(request(), request());
    for body in [&first, &second] {
        assert_eq!(body["eval_count"], 300, "{body}");
        assert_eq!(body["done_reason"], "length");
    }

    assert!(metric(&server, "rollama_prompt_tokens_copied_total").await > 100.0);
}

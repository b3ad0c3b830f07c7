//! Models in the layouts Ollama's own converter wrote (what Ollama's registry serves for
//! gemma3, gpt-oss, qwen2.5-VL, qwen3-VL, mistral-small3.1, and Llama 3 files with its
//! tokenizer gap), which stock llama.cpp refuses or misreads. Each fixture pair comes from
//! scripts/make-ollama-layout.py: a model in llama.cpp's layout and the same weights rewritten
//! the way Ollama's converter writes them. rollama translates the second once, into a derived
//! file, and must answer exactly as from the first.

mod common;

use common::llama_server::LlamaServer;
use common::registry::Registry;
use common::{create_from_gguf, post, stderr, stdout, test_gguf, Server};
use rollama::gguf::{write_test_gguf, Value};
use serde_json::json;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// A fixture written by scripts/fetch-test-models.sh into `ollama-layout/` beside SmolLM2.
fn fixture(name: &str) -> PathBuf {
    let path = test_gguf()
        .with_file_name("ollama-layout")
        .join(format!("{name}.gguf"));
    assert!(
        path.is_file(),
        "{} is missing: run scripts/fetch-test-models.sh",
        path.display()
    );
    path
}

fn gemma3_original() -> PathBuf {
    test_gguf().with_file_name("gemma-3-270m-q4_k_m.gguf")
}

fn create(server: &Server, name: &str, gguf: &Path) {
    let output = create_from_gguf(server, name, gguf, &[]);
    assert!(
        output.status.success(),
        "create {name}: {}",
        stderr(&output)
    );
}

/// The prompt the pairs are compared on: "'ve", digits and punctuation split differently
/// under a wrong pre-tokenizer, and `<unused5>` is a special token whose type gemma3n's
/// translation changes.
const PROMPT: &str = "I've got 12345 apples!! <unused5> The capital of France is";

/// A greedy raw completion: the text and the number of tokens generated.
async fn complete(server: &Server, model: &str) -> (String, u64) {
    let (status, body) = post(
        server,
        "/api/generate",
        json!({"model": model, "prompt": PROMPT, "raw": true,
               "stream": false, "options": {"temperature": 0, "num_predict": 12}}),
    )
    .await;
    assert_eq!(status, 200, "{model}: {body}");
    (
        body["response"].as_str().unwrap_or_default().to_string(),
        body["eval_count"].as_u64().unwrap_or_default(),
    )
}

/// Files in the store's derived-file directory.
fn derived_files(models: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(models.join(".rollama/converted"))
        .map(|entries| {
            entries
                .flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

/// The original and the Ollama-layout file give the same greedy tokens; `show` reports the
/// blob's own architecture (as Ollama does) and the translation, and the derived file exists.
async fn answers_like_the_original(original: &Path, ollama: &Path, family: &str, arch: &str) {
    let server = Server::start();
    create(&server, "original", original);
    create(&server, "ollama", ollama);

    let (status, show) = post(&server, "/api/show", json!({"model": "ollama"})).await;
    assert_eq!(status, 200, "{show}");
    assert_eq!(show["details"]["family"], arch, "{show}");
    assert_eq!(show["model_info"]["general.architecture"], arch, "{show}");
    assert_eq!(show["translation"]["layout"], format!("ollama/{family}"));
    assert_eq!(
        show["translation"]["derived_bytes"], 0,
        "nothing loaded yet"
    );
    assert!(
        show["capabilities"]
            .as_array()
            .unwrap()
            .contains(&json!("completion")),
        "{show}"
    );
    let (_, plain) = post(&server, "/api/show", json!({"model": "original"})).await;
    assert!(plain.get("translation").is_none(), "{plain}");

    let expected = complete(&server, "original").await;
    let translated = complete(&server, "ollama").await;
    assert!(expected.1 > 0, "the original generated nothing");
    assert_eq!(
        translated, expected,
        "{family}: the translation answers differently"
    );

    // The text translation, and for a family with a vision tower inside the blob its
    // projector too (a model that reads images).
    let derived = derived_files(&server.models);
    let text_copies = derived.iter().filter(|n| !n.contains("-mmproj-")).count();
    assert_eq!(text_copies, 1, "{derived:?}");
    assert!(derived.len() <= 2, "{derived:?}");
    assert!(
        derived
            .iter()
            .all(|name| name.contains(&format!("-ollama-{family}-"))),
        "{derived:?}"
    );
    let (_, show) = post(&server, "/api/show", json!({"model": "ollama"})).await;
    assert!(show["translation"]["derived_bytes"].as_u64().unwrap() > 0);
    let cli = server.run(&["show", "ollama"]);
    let text = stdout(&cli);
    assert!(
        text.contains("Translation") && text.contains(&format!("Ollama's {family}")),
        "{text}"
    );
}

#[tokio::test]
async fn gemma3_with_1b_style_keys_answers_like_the_original() {
    let ollama = fixture("gemma3-1b-style");
    answers_like_the_original(&gemma3_original(), &ollama, "gemma3", "gemma3").await;
}

#[tokio::test]
async fn gemma3_with_an_embedded_vision_tower_and_extra_tokens_answers_like_the_original() {
    let ollama = fixture("gemma3-4b-style");
    answers_like_the_original(&gemma3_original(), &ollama, "gemma3", "gemma3").await;
}

#[tokio::test]
async fn llama3_with_the_tokenizer_gap_answers_like_the_original() {
    let (original, ollama) = (fixture("llama3-original"), fixture("llama3-ollama"));
    answers_like_the_original(&original, &ollama, "llama3", "llama").await;
}

#[tokio::test]
async fn gpt_oss_in_the_launch_layout_answers_like_the_original() {
    let (original, ollama) = (fixture("gpt-oss-original"), fixture("gpt-oss-ollama"));
    answers_like_the_original(&original, &ollama, "gptoss", "gptoss").await;
}

#[tokio::test]
async fn qwen25vl_answers_like_its_qwen2vl_original() {
    let (original, ollama) = (fixture("qwen25vl-original"), fixture("qwen25vl-ollama"));
    answers_like_the_original(&original, &ollama, "qwen25vl", "qwen25vl").await;
}

#[tokio::test]
async fn qwen3vl_answers_like_the_original() {
    let (original, ollama) = (fixture("qwen3vl-original"), fixture("qwen3vl-ollama"));
    answers_like_the_original(&original, &ollama, "qwen3vl", "qwen3vl").await;
}

#[tokio::test]
async fn mistral3_answers_like_the_original() {
    let (original, ollama) = (fixture("mistral3-original"), fixture("mistral3-ollama"));
    answers_like_the_original(&original, &ollama, "mistral3", "mistral3").await;
}

#[tokio::test]
async fn with_the_translation_turned_off_llama_cpp_refuses_the_file() {
    let server = Server::start_with_env(&[("OLLAMA_LLAMA_CPP_COMPAT", "0")]);
    create(&server, "ollama", &fixture("gpt-oss-ollama"));
    let (status, body) = post(
        &server,
        "/api/generate",
        json!({"model": "ollama", "prompt": "Hi", "stream": false}),
    )
    .await;
    assert_ne!(status, 200, "{body}");
    assert!(derived_files(&server.models).is_empty());
}

/// A GGUF of `architecture` with `keys` and zero-filled `tensors`, for files whose
/// translation must fail.
fn broken_model(dir: &Path, architecture: &str, keys: &[(&str, Value)]) -> PathBuf {
    let path = dir.join(format!("{architecture}.gguf"));
    let mut metadata = vec![
        (
            "general.architecture",
            Value::String(architecture.to_owned()),
        ),
        ("tokenizer.ggml.model", Value::String("gpt2".to_owned())),
    ];
    metadata.extend(keys.iter().cloned());
    let tensors = [("token_embd.weight", 0u32, vec![8u64, 4])];
    write_test_gguf(std::fs::File::create(&path).unwrap(), &metadata, &tensors).unwrap();
    path
}

#[tokio::test]
async fn a_file_whose_translation_fails_gets_a_400_naming_the_family_and_the_missing_piece() {
    let server = Server::start();
    let dir = tempfile::tempdir().unwrap();
    let cases = [
        (
            broken_model(
                dir.path(),
                "gptoss",
                &[("gptoss.block_count", Value::U32(1))],
            ),
            "gptoss",
            "ffn_gate_exps",
        ),
        (
            broken_model(
                dir.path(),
                "qwen25vl",
                &[("qwen25vl.block_count", Value::U32(1))],
            ),
            "qwen25vl",
            "mrope_section",
        ),
    ];
    for (path, family, missing) in cases {
        create(&server, family, &path);
        let (status, body) = post(
            &server,
            "/api/generate",
            json!({"model": family, "prompt": "Hi", "stream": false}),
        )
        .await;
        assert_eq!(status, 400, "{body}");
        let error = body["error"].as_str().unwrap_or_default();
        assert!(
            error.contains(&format!("Ollama's {family} layout")) && error.contains(missing),
            "{error}"
        );
        let chat = server.run(&["run", family, "Hi"]);
        assert!(!chat.status.success());
        assert!(stderr(&chat).contains(missing), "{}", stderr(&chat));
    }
    assert!(derived_files(&server.models).is_empty());
}

#[tokio::test]
async fn pull_run_push_cp_and_rm_keep_the_original_blob_and_clean_up_the_derived_file() {
    let registry = Registry::start();
    let publisher = Server::start();
    let ollama = fixture("gpt-oss-ollama");
    create(&publisher, "gptoss", &ollama);
    let remote = format!("{}/library/gptoss:test", registry.host());
    let cp = publisher.run(&["cp", "gptoss", &remote]);
    assert!(cp.status.success(), "{}", stderr(&cp));
    let push = publisher.run(&["push", "--insecure", &remote]);
    assert!(push.status.success(), "push: {}", stderr(&push));
    drop(publisher);

    let server = Server::start();
    let pull = server.run(&["pull", "--insecure", &remote]);
    assert!(pull.status.success(), "pull: {}", stderr(&pull));
    let run = server.run(&["run", "--insecure", &remote, "Hello"]);
    assert!(run.status.success(), "run: {}", stderr(&run));
    let derived = derived_files(&server.models);
    assert_eq!(derived.len(), 1, "{derived:?}");
    let blob_digest = format!(
        "sha256:{}",
        common::sha256_hex(&std::fs::read(&ollama).unwrap())
    );
    assert!(derived[0].starts_with(&blob_digest["sha256:".len()..]));

    // Pushing again uploads the original blob (the registry serves Ollama's bytes), never the
    // derived file.
    let again = format!("{}/library/gptoss:again", registry.host());
    assert!(server.run(&["cp", &remote, &again]).status.success());
    let push = server.run(&["push", "--insecure", &again]);
    assert!(push.status.success(), "push: {}", stderr(&push));
    let served = reqwest::get(format!(
        "http://{}/v2/library/gptoss/blobs/{blob_digest}",
        registry.host()
    ))
    .await
    .unwrap()
    .bytes()
    .await
    .unwrap();
    assert_eq!(served.as_ref(), std::fs::read(&ollama).unwrap().as_slice());

    // The derived file stays while any name uses the blob, and goes with the blob.
    assert!(server.run(&["rm", &again]).status.success());
    assert_eq!(derived_files(&server.models), derived);
    assert!(server.run(&["rm", &remote]).status.success());
    assert!(derived_files(&server.models).is_empty());
    assert!(server
        .blobs()
        .iter()
        .all(|b| !b.contains(&blob_digest[7..])));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_translation_killed_midway_leaves_no_file_that_a_later_load_uses() {
    let store = tempfile::tempdir().unwrap();
    let models = store.path().join("models");
    let ollama = fixture("gemma3-4b-style");
    let mut server = Server::start_with_store(&models);
    create(&server, "gemma", &ollama);
    let client = {
        let url = server.url("/api/generate");
        tokio::spawn(async move {
            let _ = reqwest::Client::new()
                .post(url)
                .json(&json!({"model": "gemma", "prompt": "Hi", "stream": false,
                              "options": {"num_predict": 1}}))
                .send()
                .await;
        })
    };
    let started = Instant::now();
    let temp = loop {
        let found = derived_files(&models)
            .into_iter()
            .find(|name| name.starts_with(".tmp-"));
        if let Some(name) = found {
            break name;
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "the translation never started"
        );
        std::thread::sleep(Duration::from_millis(1));
    };
    let killed = std::process::Command::new("kill")
        .args(["-9", &server.pid().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    while server.is_running() {
        std::thread::sleep(Duration::from_millis(10));
    }
    client.abort();
    // Only the temporary file is there: nothing under the derived name.
    assert_eq!(derived_files(&models), std::slice::from_ref(&temp));
    let partial = std::fs::metadata(models.join(".rollama/converted").join(&temp))
        .unwrap()
        .len();
    assert!(partial < std::fs::metadata(&ollama).unwrap().len());
    drop(server);

    // A restarted server removes the leftover and translates again, completely.
    let server = Server::start_with_store(&models);
    assert!(derived_files(&models).is_empty());
    let (text, count) = complete(&server, "gemma").await;
    assert!(count > 0, "{text}");
    // The text translation and the projector of its vision tower, both whole.
    let derived = derived_files(&models);
    assert_eq!(derived.len(), 2, "{derived:?}");
    assert!(derived.iter().all(|name| !name.starts_with(".tmp-")));
}

/// A 32×32 24-bit BMP (a format llama.cpp's image loader reads) of a colour gradient.
fn bmp_image() -> Vec<u8> {
    const SIDE: u32 = 32;
    let pixels = SIDE * SIDE * 3;
    let mut bmp = Vec::new();
    bmp.extend_from_slice(b"BM");
    for value in [54 + pixels, 0, 54, 40, SIDE, SIDE] {
        bmp.extend_from_slice(&value.to_le_bytes());
    }
    bmp.extend_from_slice(&1u16.to_le_bytes());
    bmp.extend_from_slice(&24u16.to_le_bytes());
    for value in [0, pixels, 2835, 2835, 0, 0] {
        bmp.extend_from_slice(&value.to_le_bytes());
    }
    for y in 0..SIDE {
        for x in 0..SIDE {
            // Lossless: both are below 256.
            bmp.extend_from_slice(&[(x * 8) as u8, (y * 8) as u8, 128]);
        }
    }
    bmp
}

/// llama-server with `model` and the projector `mmproj`.
async fn with_projector(model: &Path, mmproj: &Path) -> LlamaServer {
    LlamaServer::start(&[
        "-m",
        model.to_str().unwrap(),
        "--mmproj",
        mmproj.to_str().unwrap(),
        "-c",
        "1024",
        "--jinja",
    ])
    .await
}

/// A greedy chat turn, with the test image when `image`: the prompt's token count and the
/// answer.
async fn chat(server: &LlamaServer, image: bool) -> (u64, String) {
    use base64::Engine as _;
    let text = json!({"type": "text", "text": "What is in this picture?"});
    let content = if image {
        let url = format!(
            "data:image/bmp;base64,{}",
            base64::engine::general_purpose::STANDARD.encode(bmp_image())
        );
        json!([text, {"type": "image_url", "image_url": {"url": url}}])
    } else {
        json!([text])
    };
    let reply = server
        .post(
            "/v1/chat/completions",
            json!({"messages": [{"role": "user", "content": content}],
                   "max_tokens": 8, "temperature": 0}),
        )
        .await;
    let tokens = reply["usage"]["prompt_tokens"]
        .as_u64()
        .unwrap_or_else(|| panic!("{reply}"));
    let answer = reply["choices"][0]["message"]["content"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    (tokens, answer)
}

/// The text translation and the projector translated from the tower embedded in `ollama` (as
/// Ollama passes one blob as model and projector), written into `dir`.
fn translate_both(ollama: &Path, dir: &Path) -> (PathBuf, PathBuf) {
    use rollama::ollama_layout;
    let gguf = rollama::gguf::Gguf::open(ollama).unwrap();
    let digest = rollama::store::Digest::parse(&format!("sha256:{}", "ab".repeat(32))).unwrap();
    let text = ollama_layout::prepare(ollama, &digest, &gguf, dir)
        .unwrap()
        .expect("a file in Ollama's layout");
    let projector = ollama_layout::projector(ollama, &digest, &gguf, dir)
        .unwrap()
        .expect("an embedded vision tower");
    assert_eq!(projector.gguf.architecture(), Some("clip"));
    assert!(projector
        .gguf
        .tensors
        .iter()
        .all(|t| t.name.starts_with("v.") || t.name.starts_with("mm.")));
    assert!(text
        .gguf
        .tensors
        .iter()
        .all(|t| !t.name.starts_with("v.") && !t.name.starts_with("mm.")));
    (text.path, projector.path)
}

/// The embedded gemma3 tower becomes a projector llama.cpp's mtmd loads beside the translated
/// text model, and an image sent to llama-server is encoded into the prompt.
#[tokio::test]
async fn the_embedded_gemma3_vision_tower_becomes_a_projector_llama_cpp_encodes_images_with() {
    let dir = tempfile::tempdir().unwrap();
    let (text, projector) = translate_both(&fixture("gemma3-4b-style"), dir.path());
    let original = rollama::gguf::Gguf::open(&gemma3_original()).unwrap();
    let digest = rollama::store::Digest::parse(&format!("sha256:{}", "cd".repeat(32))).unwrap();
    let none =
        rollama::ollama_layout::projector(&gemma3_original(), &digest, &original, dir.path());
    assert!(
        none.unwrap().is_none(),
        "a llama.cpp-layout file has no tower to translate"
    );

    let server = with_projector(&text, &projector).await;
    let (without, _) = chat(&server, false).await;
    let (with, _) = chat(&server, true).await;
    // gemma3.mm.tokens_per_image is 4 in the fixture.
    assert!(
        with >= without + 4,
        "{with} prompt tokens with the image, {without} without"
    );
}

/// For the families with a llama.cpp-layout projector fixture: the translated text model and
/// projector answer an image exactly as the originals do.
async fn sees_images_like_the_original(family: &str) {
    let dir = tempfile::tempdir().unwrap();
    let (text, projector) = translate_both(&fixture(&format!("{family}-ollama")), dir.path());
    let original = with_projector(
        &fixture(&format!("{family}-original")),
        &fixture(&format!("{family}-mmproj-original")),
    )
    .await;
    let expected = chat(&original, true).await;
    let (without, _) = chat(&original, false).await;
    drop(original);
    assert!(expected.0 > without, "the image added no prompt tokens");
    let translated = with_projector(&text, &projector).await;
    assert_eq!(chat(&translated, true).await, expected, "{family}");
}

#[tokio::test]
async fn qwen25vl_sees_images_like_the_original() {
    sees_images_like_the_original("qwen25vl").await;
}

#[tokio::test]
async fn qwen3vl_sees_images_like_the_original() {
    sees_images_like_the_original("qwen3vl").await;
}

#[tokio::test]
async fn mistral3_sees_images_like_the_original() {
    sees_images_like_the_original("mistral3").await;
}

#[tokio::test]
async fn llama4_sees_images_like_the_original() {
    sees_images_like_the_original("llama4").await;
}

#[tokio::test]
async fn llama4_with_an_embedded_tower_answers_like_the_original() {
    let (original, ollama) = (fixture("llama4-original"), fixture("llama4-ollama"));
    answers_like_the_original(&original, &ollama, "llama4", "llama4").await;
}

#[tokio::test]
async fn gemma3n_with_the_multimodal_vocabulary_answers_like_the_original() {
    let (original, ollama) = (fixture("gemma3n-original"), fixture("gemma3n-ollama"));
    answers_like_the_original(&original, &ollama, "gemma3n", "gemma3n").await;
}

/// The embedding of `input` from a llama-server running `model` as an embedding model.
async fn llama_server_embedding(model: &Path, input: &str) -> Vec<f64> {
    let server = LlamaServer::start(&[
        "-m",
        model.to_str().unwrap(),
        "--embedding",
        "--pooling",
        "mean",
        "-c",
        "256",
    ])
    .await;
    let reply = server.post("/v1/embeddings", json!({"input": input})).await;
    reply["data"][0]["embedding"]
        .as_array()
        .unwrap_or_else(|| panic!("{reply}"))
        .iter()
        .map(|v| v.as_f64().unwrap())
        .collect()
}

/// EmbeddingGemma in Ollama's layout (architecture `gemma3` with `dense.0`/`dense.1`) is
/// translated to llama.cpp's `gemma-embedding`; llama-server then embeds exactly as with the
/// llama.cpp-layout original. (tests/embed.rs embeds it through rollama's endpoints.)
#[tokio::test]
async fn embeddinggemma_embeds_like_the_original_once_translated() {
    let ollama = fixture("embeddinggemma-ollama");
    let gguf = rollama::gguf::Gguf::open(&ollama).unwrap();
    assert_eq!(
        rollama::ollama_layout::family_of(&gguf),
        Some("embeddinggemma")
    );
    let digest = rollama::store::Digest::parse(&format!("sha256:{}", "ef".repeat(32))).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let translated = rollama::ollama_layout::prepare(&ollama, &digest, &gguf, dir.path())
        .unwrap()
        .expect("an Ollama-layout file");
    assert_eq!(translated.gguf.architecture(), Some("gemma-embedding"));
    let input = "I've got 12345 apples!!";
    let expected = llama_server_embedding(&fixture("embeddinggemma-original"), input).await;
    assert!(!expected.is_empty());
    assert_eq!(
        llama_server_embedding(&translated.path, input).await,
        expected
    );
}

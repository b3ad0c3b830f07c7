//! Images through llama.cpp's mtmd: a model made of a text GGUF and a projector GGUF (two
//! `FROM` lines, or both files in `/api/create`'s `files`), and Ollama-layout blobs with the
//! vision tower inside, read images on every API and in `rollama run`.
//!
//! No vision model ships in a package, so the projectors have random weights
//! (scripts/make-test-projector.py: llama.cpp's gemma3 type, 64 positions per image) and the
//! answers are noise. The tests check the plumbing: an image's positions in
//! `prompt_eval_count`, answers that follow the image, the KV cache keeping an image for the
//! next turn, each API's shape, and the refusals.

mod common;

use base64::Engine as _;
use common::{png, post, post_text, stderr, test_gguf, Server, BIN};
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Positions one image takes with the test projectors (8x8 pooled patches).
const IMAGE_POSITIONS: u64 = 64;

fn projector(name: &str) -> PathBuf {
    let path = test_gguf().with_file_name("projectors").join(name);
    assert!(
        path.exists(),
        "{} is missing: run scripts/fetch-test-models.sh",
        path.display()
    );
    path
}

fn gemma_gguf() -> PathBuf {
    test_gguf().with_file_name("gemma-3-270m-q4_k_m.gguf")
}

fn red_pixels(_: u32, _: u32) -> [u8; 3] {
    [230, 20, 20]
}

fn pattern_pixels(x: u32, y: u32) -> [u8; 3] {
    [
        (x * 4 % 256) as u8,
        (y * 4 % 256) as u8,
        ((x ^ y) * 8 % 256) as u8,
    ]
}

fn red() -> Vec<u8> {
    png(64, 64, red_pixels)
}

fn pattern() -> Vec<u8> {
    png(64, 64, pattern_pixels)
}

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// Symlinks of `files` (name, target) and a Modelfile in a fresh directory.
fn model_dir(files: &[(&str, &Path)], modelfile: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for (name, target) in files {
        std::os::unix::fs::symlink(target, dir.path().join(name)).unwrap();
    }
    std::fs::write(dir.path().join("Modelfile"), modelfile).unwrap();
    dir
}

fn create(server: &Server, name: &str, dir: &Path) {
    let modelfile = dir.join("Modelfile");
    let output = server.run(&["create", name, "-f", modelfile.to_str().unwrap()]);
    assert!(output.status.success(), "{}", stderr(&output));
}

/// SmolLM2 (its GGUF chat template: llama.cpp's chat code renders the prompt) with a
/// projector as wide as its embeddings: `smolv`; and SmolLM2 alone: `smol`.
fn vision_server_with_env(env: &[(&str, &str)]) -> (Server, tempfile::TempDir) {
    let server = Server::start_with_env(env);
    let mmproj = projector("gemma3-576.gguf");
    let dir = model_dir(
        &[("model.gguf", &test_gguf()), ("mmproj.gguf", &mmproj)],
        "FROM ./model.gguf\nFROM ./mmproj.gguf\nPARAMETER stop <|im_end|>\n",
    );
    create(&server, "smolv", dir.path());
    std::fs::write(
        dir.path().join("Modelfile"),
        "FROM ./model.gguf\nPARAMETER stop <|im_end|>\n",
    )
    .unwrap();
    create(&server, "smol", dir.path());
    (server, dir)
}

fn vision_server() -> (Server, tempfile::TempDir) {
    vision_server_with_env(&[])
}

/// A greedy `/api/chat` (8 tokens), asserting a 200.
async fn chat(server: &Server, model: &str, messages: Value) -> Value {
    let (status, body) = post(
        server,
        "/api/chat",
        json!({"model": model, "messages": messages, "stream": false,
               "options": {"temperature": 0, "num_predict": 8}}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    body
}

async fn ask(server: &Server, model: &str, image: &[u8]) -> Value {
    chat(
        server,
        model,
        json!([{"role": "user", "content": "What is in this picture?", "images": [b64(image)]}]),
    )
    .await
}

fn capabilities(tags: &Value, name: &str) -> Vec<String> {
    let model = tags["models"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["name"] == format!("{name}:latest"))
        .unwrap_or_else(|| panic!("{name} is not listed: {tags}"));
    model["capabilities"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap().to_string())
        .collect()
}

async fn upload(server: &Server, path: &Path) -> String {
    let bytes = std::fs::read(path).unwrap();
    let digest = format!("sha256:{}", common::sha256_hex(&bytes));
    let status = reqwest::Client::new()
        .post(server.url(&format!("/api/blobs/{digest}")))
        .body(bytes)
        .send()
        .await
        .unwrap()
        .status();
    assert!(status.is_success(), "{status}");
    digest
}

fn layers(server: &Server, name: &str) -> Vec<(String, String)> {
    let path = server
        .models
        .join("manifests/registry.ollama.ai/library")
        .join(name)
        .join("latest");
    let manifest: Value = serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap();
    manifest["layers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| {
            (
                l["mediaType"].as_str().unwrap().to_string(),
                l["digest"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

#[tokio::test]
async fn a_model_with_a_projector_has_vision_however_it_was_created() {
    let (server, _dir) = vision_server();
    let tags = common::get_json(&server, "/api/tags").await;
    assert!(capabilities(&tags, "smolv").contains(&"vision".to_string()));
    assert!(!capabilities(&tags, "smol").contains(&"vision".to_string()));
    let (status, show) = post(&server, "/api/show", json!({"model": "smolv"})).await;
    assert_eq!(status, 200, "{show}");
    assert_eq!(
        show["projector_info"]["general.architecture"], "clip",
        "{show}"
    );
    assert!(show["capabilities"]
        .as_array()
        .unwrap()
        .contains(&json!("vision")));

    // Both files in `/api/create`'s `files` make the same layers as the two FROM lines.
    let model = upload(&server, &test_gguf()).await;
    let mmproj = upload(&server, &projector("gemma3-576.gguf")).await;
    let (status, body) = post_text(
        &server,
        "/api/create",
        json!({"model": "smolv2", "files": {"model.gguf": model, "mmproj.gguf": mmproj},
               "parameters": {"stop": ["<|im_end|>"]}, "stream": false}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let projector_layer = (
        "application/vnd.ollama.image.projector".to_string(),
        mmproj.clone(),
    );
    assert!(layers(&server, "smolv2").contains(&projector_layer));
    assert!(layers(&server, "smolv").contains(&projector_layer));
    let tags = common::get_json(&server, "/api/tags").await;
    assert!(capabilities(&tags, "smolv2").contains(&"vision".to_string()));
}

#[tokio::test]
async fn an_image_adds_its_positions_and_the_answer_follows_the_image() {
    let (server, _dir) = vision_server();
    let text_only = chat(
        &server,
        "smolv",
        json!([{"role": "user", "content": "What is in this picture?"}]),
    )
    .await;
    let first_red = ask(&server, "smolv", &red()).await;
    let with_image = first_red["prompt_eval_count"].as_u64().unwrap();
    let without = text_only["prompt_eval_count"].as_u64().unwrap();
    // The image's pooled patches plus the projector's opening and closing text.
    assert!(
        with_image >= without + IMAGE_POSITIONS,
        "{with_image} vs {without}"
    );
    let other = ask(&server, "smolv", &pattern()).await;
    let again = ask(&server, "smolv", &red()).await;
    let answer = |reply: &Value| reply["message"]["content"].as_str().unwrap().to_string();
    assert_ne!(answer(&first_red), answer(&other), "{first_red} {other}");
    assert_eq!(answer(&first_red), answer(&again));
    assert_eq!(again["prompt_eval_count"], first_red["prompt_eval_count"]);
}

#[tokio::test]
async fn the_second_turn_of_a_chat_about_an_image_does_not_encode_it_again() {
    let (server, _dir) = vision_server();
    let mut messages =
        json!([{"role": "user", "content": "What is in this picture?", "images": [b64(&red())]}]);
    let cached_before = common::metric(&server, "rollama_prompt_cached_tokens_total").await;
    let first = chat(&server, "smolv", messages.clone()).await;
    let messages_list = messages.as_array_mut().unwrap();
    messages_list.push(first["message"].clone());
    messages_list.push(json!({"role": "user", "content": "And what colour is it?"}));
    let second = chat(&server, "smolv", messages).await;
    let cached =
        common::metric(&server, "rollama_prompt_cached_tokens_total").await - cached_before;
    let first_count = first["prompt_eval_count"].as_f64().unwrap();
    // Turn 2 found all of turn 1's prompt, image included, in the cache.
    assert!(cached >= first_count - 1.0, "{cached} of {first_count}");
    let duration = |reply: &Value| reply["prompt_eval_duration"].as_u64().unwrap();
    assert!(
        duration(&second) < duration(&first),
        "turn 2 {} ns, turn 1 {} ns",
        duration(&second),
        duration(&first)
    );
}

#[tokio::test]
async fn every_api_takes_images_in_its_own_shape() {
    let (server, _dir) = vision_server();
    let image = b64(&pattern());
    let data_url = format!("data:image/png;base64,{image}");
    // Each request with the image, and the same without it: the prompt counts differ by at
    // least the image's positions.
    let cases: Vec<(&str, Value, Value, &str)> = vec![
        (
            "/api/generate",
            json!({"model": "smolv", "prompt": "Describe it.", "images": [image], "stream": false,
                   "options": {"num_predict": 4}}),
            json!({"model": "smolv", "prompt": "Describe it.", "stream": false,
                   "options": {"num_predict": 4}}),
            "/prompt_eval_count",
        ),
        (
            "/api/generate",
            json!({"model": "smolv", "prompt": "[img-0] Describe it.", "raw": true,
                   "images": [image], "stream": false, "options": {"num_predict": 4}}),
            json!({"model": "smolv", "prompt": " Describe it.", "raw": true, "stream": false,
                   "options": {"num_predict": 4}}),
            "/prompt_eval_count",
        ),
        (
            "/v1/chat/completions",
            json!({"model": "smolv", "max_tokens": 4, "messages": [{"role": "user", "content": [
                {"type": "text", "text": "Describe it."},
                {"type": "image_url", "image_url": {"url": data_url}}]}]}),
            json!({"model": "smolv", "max_tokens": 4, "messages": [{"role": "user", "content": [
                {"type": "text", "text": "Describe it."}]}]}),
            "/usage/prompt_tokens",
        ),
        (
            "/v1/responses",
            json!({"model": "smolv", "max_output_tokens": 4, "input": [{"role": "user", "content": [
                {"type": "input_text", "text": "Describe it."},
                {"type": "input_image", "image_url": data_url}]}]}),
            json!({"model": "smolv", "max_output_tokens": 4, "input": [{"role": "user", "content": [
                {"type": "input_text", "text": "Describe it."}]}]}),
            "/usage/input_tokens",
        ),
        (
            "/v1/messages",
            json!({"model": "smolv", "max_tokens": 4, "messages": [{"role": "user", "content": [
                {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": image}},
                {"type": "text", "text": "Describe it."}]}]}),
            json!({"model": "smolv", "max_tokens": 4, "messages": [{"role": "user", "content": [
                {"type": "text", "text": "Describe it."}]}]}),
            "/usage/input_tokens",
        ),
    ];
    for (path, with, without, count) in cases {
        let (status, reply) = post(&server, path, with).await;
        assert_eq!(status, 200, "{path}: {reply}");
        let (status, plain) = post(&server, path, without).await;
        assert_eq!(status, 200, "{path}: {plain}");
        let (a, b) = (
            reply.pointer(count).and_then(Value::as_u64).unwrap(),
            plain.pointer(count).and_then(Value::as_u64).unwrap(),
        );
        assert!(a >= b + IMAGE_POSITIONS, "{path}: {a} vs {b}: {reply}");
    }
    // `context` carries the text only, so a follow-up request can send it back.
    let (status, reply) = post(
        &server,
        "/api/generate",
        json!({"model": "smolv", "prompt": "Describe it.", "images": [image], "stream": false,
               "options": {"num_predict": 2}}),
    )
    .await;
    assert_eq!(status, 200, "{reply}");
    let context = reply["context"].clone();
    let (status, reply) = post(
        &server,
        "/api/generate",
        json!({"model": "smolv", "prompt": "More.", "context": context, "stream": false,
               "options": {"num_predict": 2}}),
    )
    .await;
    assert_eq!(status, 200, "{reply}");
}

#[tokio::test]
async fn bad_images_are_refused_with_a_400_that_names_the_problem() {
    let (server, _dir) = vision_server();
    let chat_with = |image: String, model: &str| {
        json!({"model": model, "stream": false,
               "messages": [{"role": "user", "content": "What is it?", "images": [image]}]})
    };
    let mut damaged = red();
    damaged.truncate(60);
    let cases = [
        (
            chat_with("aGk".into(), "smolv"),
            "illegal base64 data at input byte 3",
        ),
        (
            chat_with(b64(b"just some text, not a picture"), "smolv"),
            "invalid image 1: text, not an image (PNG, JPEG, WebP, GIF and BMP are)",
        ),
        (
            chat_with(b64(b"II*\0\x08\0\0\0 a tiff"), "smolv"),
            "invalid image 1: a TIFF image, which is not supported (PNG, JPEG, WebP, GIF and BMP are)",
        ),
        (
            chat_with(b64(&damaged), "smolv"),
            "invalid image 1: the file is damaged or not an image",
        ),
        (
            chat_with(b64(&red()), "smol"),
            "registry.ollama.ai/library/smol:latest does not support vision",
        ),
    ];
    for (body, message) in cases {
        let (status, reply) = post(&server, "/api/chat", body).await;
        assert_eq!(
            (status, reply["error"].as_str()),
            (400, Some(message)),
            "{reply}"
        );
    }
    let openai = |url: &str, model: &str| {
        json!({"model": model, "messages": [{"role": "user", "content": [
            {"type": "image_url", "image_url": {"url": url}}]}]})
    };
    let png_url = format!("data:image/png;base64,{}", b64(&red()));
    for (body, message) in [
        (
            openai("https://example.com/cat.png", "smolv"),
            "image URLs are not currently supported, please use base64 encoded data instead",
        ),
        (
            openai("data:image/png;base64,%%%", "smolv"),
            "invalid image input",
        ),
        (
            openai("data:text/plain;base64,aGk=", "smolv"),
            "invalid image input",
        ),
        (
            openai(&png_url, "smol"),
            "registry.ollama.ai/library/smol:latest does not support vision",
        ),
    ] {
        let (status, reply) = post(&server, "/v1/chat/completions", body).await;
        assert_eq!(status, 400, "{reply}");
        assert_eq!(reply["error"]["message"], message, "{reply}");
    }
    // Nothing above hurt the server.
    ask(&server, "smolv", &red()).await;
}

#[tokio::test]
async fn webp_and_large_images_are_read() {
    let (server, _dir) = vision_server();
    let mut pixels = Vec::new();
    for y in 0..64 {
        for x in 0..64 {
            pixels.extend_from_slice(&pattern_pixels(x, y));
        }
    }
    let mut webp = Vec::new();
    image_webp::WebPEncoder::new(&mut webp)
        .encode(&pixels, 64, 64, image_webp::ColorType::Rgb8)
        .unwrap();
    let from_png = ask(&server, "smolv", &pattern()).await;
    let from_webp = ask(&server, "smolv", &webp).await;
    // Lossless WebP: the same pixels, so the same answer.
    assert_eq!(from_webp["message"], from_png["message"]);
    assert_eq!(
        from_webp["prompt_eval_count"],
        from_png["prompt_eval_count"]
    );
    // Far larger than the projector's 256 pixels: scaled down by the projector's rules.
    let large = ask(&server, "smolv", &png(1600, 1200, pattern_pixels)).await;
    assert_eq!(large["prompt_eval_count"], from_png["prompt_eval_count"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn images_in_flight_keep_batching_and_cancellation_working() {
    let (server, _dir) = vision_server_with_env(&[("OLLAMA_NUM_PARALLEL", "2")]);
    // Two image chats at once share the model's batches.
    let (red, pattern) = (red(), pattern());
    let (a, b) = tokio::join!(ask(&server, "smolv", &red), ask(&server, "smolv", &pattern));
    let alone = ask(&server, "smolv", &red).await;
    assert_eq!(a["message"], alone["message"]);
    assert_ne!(a["message"], b["message"]);
    // A client that leaves while its image is read frees its slot for the next request.
    for _ in 0..2 {
        let response = reqwest::Client::new()
            .post(server.url("/api/chat"))
            .json(
                &json!({"model": "smolv", "stream": true, "options": {"num_predict": 500},
                          "messages": [{"role": "user", "content": "Tell a long story.",
                                        "images": [b64(&pattern)]}]}),
            )
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        drop(response);
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let after = ask(&server, "smolv", &red).await;
    assert_eq!(after["message"], alone["message"]);
}

/// Ollama's own Gemma 3 (4B and up) carries its vision tower inside the blob: rollama writes
/// it out as a projector for mtmd, and the model reads images.
#[tokio::test]
async fn an_ollama_layout_blob_with_its_vision_tower_inside_reads_images() {
    let server = Server::start();
    let blob = test_gguf()
        .with_file_name("ollama-layout")
        .join("gemma3-4b-style.gguf");
    let dir = model_dir(&[("model.gguf", &blob)], "FROM ./model.gguf\n");
    create(&server, "gemma4b", dir.path());
    let tags = common::get_json(&server, "/api/tags").await;
    assert!(capabilities(&tags, "gemma4b").contains(&"vision".to_string()));
    let text = chat(
        &server,
        "gemma4b",
        json!([{"role": "user", "content": "Hello"}]),
    )
    .await;
    let red_reply = ask(&server, "gemma4b", &red()).await;
    let pattern_reply = ask(&server, "gemma4b", &pattern()).await;
    // Its tower pools an image into 4 positions, between <start_of_image> and <end_of_image>.
    assert!(
        red_reply["prompt_eval_count"].as_u64().unwrap()
            >= text["prompt_eval_count"].as_u64().unwrap() + 4,
        "{red_reply} {text}"
    );
    assert_eq!(
        red_reply["prompt_eval_count"],
        pattern_reply["prompt_eval_count"]
    );
    let converted = server.models.join(".rollama/converted");
    let projectors: Vec<String> = std::fs::read_dir(converted)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|name| name.contains("-ollama-gemma3-mmproj-"))
        .collect();
    assert_eq!(projectors.len(), 1, "{projectors:?}");
}

/// A Go TEMPLATE (Gemma's turns): each image goes in front of its message's text, as Ollama
/// places `[img-N]`.
#[tokio::test]
async fn a_go_template_model_reads_images_too() {
    let server = Server::start();
    let mmproj = projector("gemma3-640.gguf");
    let dir = model_dir(
        &[("model.gguf", &gemma_gguf()), ("mmproj.gguf", &mmproj)],
        "FROM ./model.gguf\nFROM ./mmproj.gguf\nTEMPLATE \"\"\"<start_of_turn>user\n{{ .Prompt }}<end_of_turn>\n<start_of_turn>model\n\"\"\"\nPARAMETER stop <end_of_turn>\n",
    );
    create(&server, "gemmav", dir.path());
    let generate = |images: Vec<String>| {
        json!({"model": "gemmav", "prompt": "Describe it.", "images": images, "stream": false,
               "options": {"temperature": 0, "num_predict": 6}})
    };
    let (status, plain) = post(&server, "/api/generate", generate(vec![])).await;
    assert_eq!(status, 200, "{plain}");
    let (status, red_reply) = post(&server, "/api/generate", generate(vec![b64(&red())])).await;
    assert_eq!(status, 200, "{red_reply}");
    let (status, both) = post(
        &server,
        "/api/generate",
        generate(vec![b64(&red()), b64(&pattern())]),
    )
    .await;
    assert_eq!(status, 200, "{both}");
    let count = |reply: &Value| reply["prompt_eval_count"].as_u64().unwrap();
    assert!(count(&red_reply) >= count(&plain) + IMAGE_POSITIONS);
    assert!(count(&both) >= count(&red_reply) + IMAGE_POSITIONS);
}

/// A projector of a type llama.cpp's mtmd does not know: no `vision`, and loading the model
/// fails with an error naming the type instead of running it text-only.
#[tokio::test]
async fn a_projector_mtmd_cannot_load_is_refused_by_name() {
    let server = Server::start();
    let scratch = tempfile::tempdir().unwrap();
    let mut bytes = std::fs::read(projector("gemma3-576.gguf")).unwrap();
    let key = b"clip.projector_type";
    let at = bytes
        .windows(key.len())
        .position(|w| w == key)
        .expect("the projector type key");
    // After the key: its value type (u32) and length (u64), then the 6 bytes "gemma3".
    let value = at + key.len() + 4 + 8;
    assert_eq!(&bytes[value..value + 6], b"gemma3");
    bytes[value..value + 6].copy_from_slice(b"nosuch");
    let odd = scratch.path().join("odd-mmproj.gguf");
    std::fs::write(&odd, bytes).unwrap();
    let dir = model_dir(
        &[("model.gguf", &test_gguf()), ("mmproj.gguf", &odd)],
        "FROM ./model.gguf\nFROM ./mmproj.gguf\n",
    );
    create(&server, "odd", dir.path());
    let tags = common::get_json(&server, "/api/tags").await;
    assert!(!capabilities(&tags, "odd").contains(&"vision".to_string()));
    let (status, reply) = post(
        &server,
        "/api/chat",
        json!({"model": "odd", "stream": false, "messages": [{"role": "user", "content": "Hi"}]}),
    )
    .await;
    assert_eq!(status, 400, "{reply}");
    let error = reply["error"].as_str().unwrap();
    assert!(error.contains("\"nosuch\""), "{error}");
    assert!(error.contains("projector"), "{error}");
}

/// mistralrs runs text only: with it as the engine nothing claims `vision`, and images are
/// refused with Ollama's 400.
#[tokio::test]
async fn the_mistralrs_engine_reports_no_vision() {
    let (server, _dir) = vision_server_with_env(&[("ROLLAMA_ENGINE", "mistralrs")]);
    let tags = common::get_json(&server, "/api/tags").await;
    assert!(!capabilities(&tags, "smolv").contains(&"vision".to_string()));
    let (status, reply) = post(
        &server,
        "/api/chat",
        json!({"model": "smolv", "stream": false,
               "messages": [{"role": "user", "content": "Hi", "images": [b64(&red())]}]}),
    )
    .await;
    assert_eq!(status, 400, "{reply}");
    assert_eq!(
        reply["error"],
        "registry.ollama.ai/library/smolv:latest does not support vision"
    );
}

#[test]
fn run_attaches_an_image_path_in_a_one_shot_prompt() {
    let (server, dir) = vision_server();
    let picture = dir.path().join("picture.png");
    std::fs::write(&picture, red()).unwrap();
    let prompt = format!("What is in {}?", picture.display());
    let output = server.run(&["run", "smolv", &prompt]);
    assert!(output.status.success(), "{}", stderr(&output));
    assert!(
        stderr(&output).contains(&format!("Added image '{}'", picture.display())),
        "{}",
        stderr(&output)
    );
    // A file that is not an image is Ollama's error.
    let notes = dir.path().join("notes.png");
    std::fs::write(&notes, "plain text").unwrap();
    let output = server.run(&["run", "smolv", &format!("read {}", notes.display())]);
    assert!(!output.status.success());
    assert!(
        stderr(&output)
            .contains("Couldn't process file: \"invalid file type: text/plain; charset=utf-8\""),
        "{}",
        stderr(&output)
    );
}

/// `rollama run` in a real terminal: a line starting with an image path is a message (not an
/// unknown command), the image is attached and reported, and it stays in the conversation:
/// the second turn's prompt holds it (its count includes the image's positions).
#[test]
fn the_repl_attaches_images_and_keeps_them_in_the_conversation() {
    use std::io::Write;
    let (server, dir) = vision_server();
    let picture = dir.path().join("picture.png");
    std::fs::write(&picture, pattern()).unwrap();
    let mut child = std::process::Command::new("script")
        .args(["-qfec", &format!("{BIN} run smolv --verbose"), "/dev/null"])
        .env("OLLAMA_HOST", &server.addr)
        .env("HOME", server.home.path())
        .env_remove("XDG_DATA_HOME")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("script(1) runs the REPL in a pseudo-terminal");
    let mut keys = child.stdin.take().unwrap();
    // The screen so far, read as it comes; each line is typed once the REPL shows what the
    // previous one led to.
    let screen = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
    let mut stdout = child.stdout.take().unwrap();
    let shared = screen.clone();
    std::thread::spawn(move || {
        use std::io::Read;
        let mut buffer = [0u8; 4096];
        while let Ok(n) = stdout.read(&mut buffer) {
            if n == 0 {
                break;
            }
            shared
                .lock()
                .unwrap()
                .push_str(&String::from_utf8_lossy(&buffer[..n]));
        }
    });
    let wait_for = |text: &str, times: usize| {
        let deadline = std::time::Instant::now() + Duration::from_secs(60);
        while screen.lock().unwrap().matches(text).count() < times {
            assert!(
                std::time::Instant::now() < deadline,
                "no {text:?} on the screen: {}",
                screen.lock().unwrap()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    };
    // Typed a moment after the prompt shows, once the line editor has the terminal, a key
    // at a time.
    let type_line = |keys: &mut std::process::ChildStdin, line: &str| {
        std::thread::sleep(Duration::from_millis(500));
        for key in line.bytes().chain([b'\r']) {
            keys.write_all(&[key]).unwrap();
            keys.flush().unwrap();
            std::thread::sleep(Duration::from_millis(5));
        }
    };
    wait_for("Send a message", 1);
    type_line(&mut keys, "/set parameter num_predict 4");
    wait_for("Set parameter", 1);
    type_line(&mut keys, &format!("{} what is this?", picture.display()));
    wait_for("eval rate:", 2);
    type_line(&mut keys, "And the colour?");
    wait_for("eval rate:", 4);
    type_line(&mut keys, "/bye");
    drop(keys);
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while child.try_wait().unwrap().is_none() && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
    }
    let _ = child.kill();
    let _ = child.wait();
    let screen = screen.lock().unwrap().replace('\r', "");
    assert!(
        screen.contains(&format!("Added image '{}'", picture.display())),
        "{screen}"
    );
    assert!(!screen.contains("Unknown command"), "{screen}");
    // `--verbose` prints each turn's prompt count: both turns hold the image.
    let counts: Vec<u64> = screen
        .lines()
        .filter_map(|l| l.trim().strip_prefix("prompt eval count:"))
        .filter_map(|rest| rest.split_whitespace().next()?.parse().ok())
        .collect();
    assert_eq!(counts.len(), 2, "{screen}");
    assert!(counts[0] >= IMAGE_POSITIONS, "{counts:?}");
    assert!(counts[1] > counts[0], "{counts:?}");
}

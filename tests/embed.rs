//! Embeddings through the real binary: all-MiniLM-L6-v2 imported from its safetensors
//! directory (`rollama create`), then `/api/embed`, `/api/embeddings` and `/v1/embeddings`
//! against sentence-transformers' own vectors (tests/data/all-minilm-reference.json, made by
//! scripts/embedding-reference.py), and Ollama's errors.

mod common;

use common::{post, stderr, Server};
use serde_json::{json, Value};

struct Reference {
    texts: Vec<String>,
    vectors: Vec<Vec<f32>>,
}

fn reference() -> Reference {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data/all-minilm-reference.json");
    let data: Value = serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap();
    let sentences = data["sentences"].as_array().unwrap();
    Reference {
        texts: sentences
            .iter()
            .map(|s| s["text"].as_str().unwrap().to_string())
            .collect(),
        vectors: sentences.iter().map(|s| floats(&s["vector"])).collect(),
    }
}

fn floats(value: &Value) -> Vec<f32> {
    value
        .as_array()
        .unwrap_or_else(|| panic!("not an array: {value}"))
        .iter()
        .map(|v| v.as_f64().unwrap() as f32)
        .collect()
}

fn norm(v: &[f32]) -> f32 {
    v.iter().map(|x| x * x).sum::<f32>().sqrt()
}

fn cosine(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    a.iter().zip(b).map(|(x, y)| x * y).sum::<f32>() / (norm(a) * norm(b))
}

/// A server with all-MiniLM-L6-v2 created as `minilm` from its directory.
fn server_with_minilm() -> Server {
    let server = Server::start();
    let log = common::import_dir(
        &server,
        "minilm",
        &common::test_model_dir("all-minilm-l6-v2"),
        &[],
    );
    assert!(log.contains("converting model"), "{log}");
    server
}

async fn embed(server: &Server, body: Value) -> Value {
    let (status, reply) = post(server, "/api/embed", body).await;
    assert_eq!(status, 200, "{reply}");
    reply
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn all_minilm_imported_from_its_directory_matches_sentence_transformers() {
    let server = server_with_minilm();
    let (status, show) = post(&server, "/api/show", json!({"model": "minilm"})).await;
    assert_eq!(status, 200, "{show}");
    assert_eq!(show["capabilities"], json!(["embedding"]), "{show}");
    assert_eq!(show["details"]["family"], "bert");
    assert_eq!(show["details"]["quantization_level"], "F16");
    assert_eq!(show["model_info"]["bert.embedding_length"], 384);
    // `/api/tags` says the same, for UIs that list embedding models apart.
    let tags = common::get_json(&server, "/api/tags").await;
    let listed = &tags["models"][0];
    assert_eq!(listed["capabilities"], json!(["embedding"]), "{listed}");
    assert_eq!(listed["details"]["embedding_length"], 384, "{listed}");
    assert_eq!(listed["details"]["context_length"], 512, "{listed}");
    assert_eq!(show["model_info"]["bert.pooling_type"], 1);

    // One input: Ollama's integration check (384 values, 8 tokens with [CLS] and [SEP]).
    let single = embed(
        &server,
        json!({"model": "minilm", "input": "why is the sky blue?"}),
    )
    .await;
    assert_eq!(single["model"], "minilm");
    assert_eq!(single["prompt_eval_count"], 8, "{single}");
    assert!(single["total_duration"].as_u64().unwrap() > 0);
    assert!(single["load_duration"].as_u64().is_some());
    let sky = floats(&single["embeddings"][0]);
    assert_eq!(sky.len(), 384);
    assert!(
        (norm(&sky) - 1.0).abs() < 1e-4,
        "not normalised: {}",
        norm(&sky)
    );

    // Every reference sentence, in one batch: each vector matches the reference library's.
    let reference = reference();
    assert!(reference.texts.len() >= 20);
    let batch = embed(
        &server,
        json!({"model": "minilm", "input": reference.texts}),
    )
    .await;
    let vectors: Vec<Vec<f32>> = batch["embeddings"]
        .as_array()
        .unwrap()
        .iter()
        .map(floats)
        .collect();
    assert_eq!(vectors.len(), reference.texts.len());
    for ((text, got), want) in reference.texts.iter().zip(&vectors).zip(&reference.vectors) {
        let similarity = cosine(got, want);
        assert!(similarity >= 0.999, "{text:?}: cosine {similarity}");
    }
    assert!(batch["prompt_eval_count"].as_u64().unwrap() > 8 * 20);
    // Batching (with padding) gives each input the vector it gets alone.
    assert!(cosine(&vectors[0], &sky) > 0.99999);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn embedding_endpoints_follow_ollama_and_openai() {
    let server = server_with_minilm();
    let reference = reference();

    // Empty input loads the model and answers an empty list.
    for input in [json!(""), json!([]), Value::Null] {
        let mut body = json!({"model": "minilm"});
        if !input.is_null() {
            body["input"] = input;
        }
        let reply = embed(&server, body).await;
        assert_eq!(reply, json!({"model": "minilm", "embeddings": []}));
    }
    let ps = common::get_json(&server, "/api/ps").await;
    assert_eq!(ps["models"][0]["name"], "minilm:latest", "{ps}");

    // Ollama's errors.
    let cases = [
        (
            "/api/embed",
            json!({"model": "minilm", "input": [1]}),
            400,
            "invalid input type",
        ),
        (
            "/api/embed",
            json!({"model": "", "input": "x"}),
            404,
            "model '' not found",
        ),
        (
            "/api/embed",
            json!({"model": "nope", "input": "x"}),
            404,
            "model 'nope' not found",
        ),
        (
            "/api/embeddings",
            json!({"model": "", "prompt": "x"}),
            400,
            "model is required",
        ),
        (
            "/api/chat",
            json!({"model": "minilm", "messages": [{"role": "user", "content": "hi"}]}),
            400,
            "\"minilm\" does not support chat",
        ),
    ];
    for (path, body, status, message) in cases {
        let (got, reply) = post(&server, path, body.clone()).await;
        assert_eq!(
            (got, reply["error"].as_str()),
            (status, Some(message)),
            "{body}"
        );
    }

    // Too long for the context: cut by default (to num_ctx), refused with truncate:false.
    let long = "word ".repeat(50);
    let cut = embed(
        &server,
        json!({"model": "minilm", "input": long, "options": {"num_ctx": 10}}),
    )
    .await;
    assert_eq!(cut["prompt_eval_count"], 10, "{cut}");
    let (status, reply) = post(
        &server,
        "/api/embed",
        json!({"model": "minilm", "input": long, "truncate": false, "options": {"num_ctx": 10}}),
    )
    .await;
    assert_eq!(status, 400);
    assert_eq!(
        reply["error"],
        "the input length exceeds the context length"
    );

    // `dimensions` cuts and normalises again.
    let short = embed(
        &server,
        json!({"model": "minilm", "input": reference.texts[0], "dimensions": 64}),
    )
    .await;
    let short = floats(&short["embeddings"][0]);
    assert_eq!(short.len(), 64);
    assert!((norm(&short) - 1.0).abs() < 1e-4);

    // The legacy endpoint answers the raw vector: same direction, not unit length.
    let (status, legacy) = post(
        &server,
        "/api/embeddings",
        json!({"model": "minilm", "prompt": reference.texts[0]}),
    )
    .await;
    assert_eq!(status, 200, "{legacy}");
    let raw = floats(&legacy["embedding"]);
    assert!(cosine(&raw, &reference.vectors[0]) > 0.999);
    assert!((norm(&raw) - 1.0).abs() > 0.01, "legacy vector normalised");
    let (_, empty) = post(
        &server,
        "/api/embeddings",
        json!({"model": "minilm", "prompt": ""}),
    )
    .await;
    assert_eq!(empty, json!({"embedding": []}));

    // OpenAI: floats, or base64 of little-endian f32.
    let (status, float) = post(
        &server,
        "/v1/embeddings",
        json!({"model": "minilm", "input": [reference.texts[1], reference.texts[2]]}),
    )
    .await;
    assert_eq!(status, 200, "{float}");
    assert_eq!(float["object"], "list");
    assert_eq!(float["model"], "minilm");
    assert_eq!(float["data"][1]["index"], 1);
    assert_eq!(float["data"][1]["object"], "embedding");
    assert!(float["usage"]["prompt_tokens"].as_u64().unwrap() > 0);
    let first = floats(&float["data"][0]["embedding"]);
    assert!(cosine(&first, &reference.vectors[1]) > 0.999);
    let (status, encoded) = post(
        &server,
        "/v1/embeddings",
        json!({"model": "minilm", "input": reference.texts[1], "encoding_format": "base64"}),
    )
    .await;
    assert_eq!(status, 200, "{encoded}");
    use base64::Engine as _;
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(encoded["data"][0]["embedding"].as_str().unwrap())
        .unwrap();
    let decoded: Vec<f32> = bytes
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect();
    assert_eq!(decoded, first);
    for (body, message) in [
        (json!({"model": "minilm", "input": []}), "invalid input"),
        (
            json!({"model": "minilm", "input": [[1, 2]]}),
            "invalid input",
        ),
        (
            json!({"model": "minilm", "input": "x", "encoding_format": "int8"}),
            "Invalid value for 'encoding_format' = int8. Supported values: ['float', 'base64'].",
        ),
    ] {
        let (status, reply) = post(&server, "/v1/embeddings", body).await;
        assert_eq!(status, 400);
        assert_eq!(reply["error"]["message"], message);
        assert_eq!(reply["error"]["type"], "invalid_request_error");
    }

    // `rollama run` on an embedding model prints the vector as one JSON array.
    let output = server.run(&["run", "minilm", "why is the sky blue?"]);
    assert!(output.status.success(), "{}", stderr(&output));
    let printed: Value = serde_json::from_str(common::stdout(&output).trim()).unwrap();
    assert_eq!(floats(&printed).len(), 384);
    let output = server.run(&["run", "minilm", "--dimensions", "8", "hello"]);
    let printed: Value = serde_json::from_str(common::stdout(&output).trim()).unwrap();
    assert_eq!(floats(&printed).len(), 8);
    let output = server.run(&["run", "minilm"]);
    assert!(!output.status.success());
    assert!(
        stderr(&output).contains("embedding models require input text"),
        "{}",
        stderr(&output)
    );

    // A chat model has no embeddings (Ollama's 400).
    common::create_model(&server, "smollm2", "FROM ./model.gguf\n");
    let (status, reply) = post(
        &server,
        "/api/embed",
        json!({"model": "smollm2", "input": "x"}),
    )
    .await;
    assert_eq!(status, 400);
    assert_eq!(
        reply["error"],
        "registry.ollama.ai/library/smollm2:latest does not support embedding"
    );

    // keep_alive 0 unloads the embedding model like any other.
    embed(&server, json!({"model": "minilm", "keep_alive": 0})).await;
    let ps = common::get_json(&server, "/api/ps").await;
    assert!(
        !ps["models"]
            .as_array()
            .unwrap()
            .iter()
            .any(|m| m["name"] == "minilm:latest"),
        "{ps}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn all_minilm_quantized_to_q8_0_stays_close_to_the_reference() {
    let server = server_with_minilm();
    common::import_dir(
        &server,
        "minilm-q8",
        &common::test_model_dir("all-minilm-l6-v2"),
        &["-q", "q8_0"],
    );
    let (level, size) = common::level_and_size(&server, "minilm-q8").await;
    let (f16_level, f16_size) = common::level_and_size(&server, "minilm").await;
    assert_eq!((level.as_str(), f16_level.as_str()), ("Q8_0", "F16"));
    assert!(size < f16_size, "{size} not below {f16_size}");
    let reference = reference();
    let reply = embed(
        &server,
        json!({"model": "minilm-q8", "input": reference.texts}),
    )
    .await;
    for (got, want) in reply["embeddings"]
        .as_array()
        .unwrap()
        .iter()
        .zip(&reference.vectors)
    {
        let similarity = cosine(&floats(got), want);
        assert!(similarity >= 0.99, "cosine {similarity}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_nomic_bert_directory_imports_and_embeds_as_llama_cpp_does() {
    // A tiny NomicBERT with random weights (scripts/make-tiny-nomic-bert.py); the expected
    // vectors are llama.cpp's for the GGUF rollama writes from it.
    let server = Server::start();
    common::import_dir(
        &server,
        "tiny-nomic",
        &common::test_model_dir("tiny-nomic-bert"),
        &[],
    );
    let (status, show) = post(&server, "/api/show", json!({"model": "tiny-nomic"})).await;
    assert_eq!(status, 200, "{show}");
    assert_eq!(show["details"]["family"], "nomic-bert");
    assert_eq!(show["capabilities"], json!(["embedding"]));

    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data/tiny-nomic-bert-llama-cpp.json");
    let expected: Value = serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap();
    let sentences = expected["sentences"].as_array().unwrap();
    let texts: Vec<&str> = sentences
        .iter()
        .map(|s| s["text"].as_str().unwrap())
        .collect();
    let reply = embed(&server, json!({"model": "tiny-nomic", "input": texts})).await;
    for (sentence, got) in sentences
        .iter()
        .zip(reply["embeddings"].as_array().unwrap())
    {
        let similarity = cosine(&floats(got), &floats(&sentence["vector"]));
        assert!(
            similarity >= 0.9999,
            "{}: cosine {similarity}",
            sentence["text"]
        );
    }
}

/// The GGUF `name` that scripts/make-ollama-layout.py wrote.
fn ollama_layout_fixture(name: &str) -> std::path::PathBuf {
    common::test_gguf()
        .with_file_name("ollama-layout")
        .join(format!("{name}.gguf"))
}

/// EmbeddingGemma (llama.cpp's `gemma-embedding`: Gemma 3's tokenizer, random weights in the
/// real tensor layout, from scripts/make-ollama-layout.py) embeds through every endpoint as
/// llama-server `--embedding` does on the same file, and the same weights in Ollama's own
/// layout (architecture `gemma3`, translated at load) embed the same.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn embeddinggemma_embeds_through_every_endpoint_as_llama_server_does() {
    let server = Server::start();
    let original = ollama_layout_fixture("embeddinggemma-original");
    for (name, file) in [
        ("embeddinggemma", original.clone()),
        (
            "embeddinggemma-ollama",
            ollama_layout_fixture("embeddinggemma-ollama"),
        ),
    ] {
        let output = common::create_from_gguf(&server, name, &file, &[]);
        assert!(output.status.success(), "{}", stderr(&output));
        let (status, show) = post(&server, "/api/show", json!({"model": name})).await;
        assert_eq!(status, 200, "{show}");
        assert_eq!(show["capabilities"], json!(["embedding"]), "{show}");
    }
    let input = "I've got 12345 apples!!";
    let native = embed(&server, json!({"model": "embeddinggemma", "input": [input, "a second, longer input about apples and pears"]})).await;
    let vector = floats(&native["embeddings"][0]);
    assert!((norm(&vector) - 1.0).abs() < 1e-4);
    assert!(native["prompt_eval_count"].as_u64().unwrap() > 5);

    let (status, legacy) = post(
        &server,
        "/api/embeddings",
        json!({"model": "embeddinggemma", "prompt": input}),
    )
    .await;
    assert_eq!(status, 200, "{legacy}");
    let raw = floats(&legacy["embedding"]);
    assert_eq!(raw.len(), vector.len());
    assert!(cosine(&raw, &vector) > 0.99999);

    let (status, openai) = post(
        &server,
        "/v1/embeddings",
        json!({"model": "embeddinggemma", "input": input}),
    )
    .await;
    assert_eq!(status, 200, "{openai}");
    assert!(cosine(&floats(&openai["data"][0]["embedding"]), &vector) > 0.99999);

    // llama.cpp's own server on the same file.
    let reference = common::llama_server::LlamaServer::start(&[
        "-m",
        original.to_str().unwrap(),
        "--embedding",
        "-c",
        "256",
    ])
    .await;
    let expected = reference
        .post("/v1/embeddings", json!({"input": input}))
        .await;
    let expected = floats(&expected["data"][0]["embedding"]);
    let similarity = cosine(&expected, &vector);
    assert!(similarity > 0.9999, "cosine with llama-server {similarity}");

    // Ollama's layout, translated at load.
    let translated = embed(
        &server,
        json!({"model": "embeddinggemma-ollama", "input": input}),
    )
    .await;
    let similarity = cosine(&floats(&translated["embeddings"][0]), &vector);
    assert!(similarity > 0.99999, "cosine {similarity}");
}

/// Requests that arrive together share the model's batches (each waiting request's inputs
/// are packed with the others'), and each still gets its own vectors; embeddings run on
/// llama.cpp whichever engine runs text (`ROLLAMA_ENGINE=mistralrs` here).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_requests_share_batches_and_get_their_own_vectors() {
    let server = Server::start_with_env(&[
        ("ROLLAMA_ENGINE", "mistralrs"),
        ("OLLAMA_NUM_PARALLEL", "4"),
    ]);
    common::import_dir(
        &server,
        "minilm",
        &common::test_model_dir("all-minilm-l6-v2"),
        &[],
    );
    let reference = reference();
    // Alone, one request each: what every concurrent request must get back.
    let mut alone = Vec::new();
    for text in &reference.texts[..8] {
        let reply = embed(&server, json!({"model": "minilm", "input": [text]})).await;
        alone.push(floats(&reply["embeddings"][0]));
    }
    let requests = (0..8).map(|i| {
        let server = &server;
        let text = reference.texts[i].clone();
        let other = reference.texts[(i + 9) % reference.texts.len()].clone();
        async move {
            // Each request's own input first, then a neighbour's.
            embed(server, json!({"model": "minilm", "input": [text, other]})).await
        }
    });
    let replies = futures_util::future::join_all(requests).await;
    for (i, reply) in replies.iter().enumerate() {
        let got = floats(&reply["embeddings"][0]);
        let similarity = cosine(&got, &alone[i]);
        assert!(similarity > 0.99999, "request {i}: cosine {similarity}");
        assert!(cosine(&got, &reference.vectors[i]) >= 0.999);
    }
}

/// A BERT whose token-type embeddings are quantized (as older rollama's `create -q q8_0`
/// wrote them) would make llama.cpp abort the whole server; it is loaded from a copy with
/// them as F32, written once beside the store, and embeds as the F16 model does.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bert_with_quantized_token_types_embeds_from_a_fixed_copy() {
    use candle_core::quantized::{gguf_file, GgmlDType, QTensor};
    let server = server_with_minilm();
    let blob = common::model_blob(&server.models, "minilm");
    // The same model with `token_types.weight` as Q8_0.
    let dir = tempfile::tempdir().unwrap();
    let broken = dir.path().join("minilm-q8-token-types.gguf");
    {
        let mut file = std::fs::File::open(&blob).unwrap();
        let content = gguf_file::Content::read(&mut file).unwrap();
        let mut tensors: Vec<(String, QTensor)> = Vec::new();
        for (name, info) in &content.tensor_infos {
            let tensor = info
                .read(
                    &mut file,
                    content.tensor_data_offset,
                    &candle_core::Device::Cpu,
                )
                .unwrap();
            let tensor = if name == "token_types.weight" {
                let values = tensor.dequantize(&candle_core::Device::Cpu).unwrap();
                QTensor::quantize(&values, GgmlDType::Q8_0).unwrap()
            } else {
                tensor
            };
            tensors.push((name.clone(), tensor));
        }
        tensors.sort_by(|a, b| a.0.cmp(&b.0));
        let metadata: std::collections::BTreeMap<&str, gguf_file::Value> = content
            .metadata
            .iter()
            .map(|(k, v)| (k.as_str(), v.clone()))
            .collect();
        let mut out = std::io::BufWriter::new(std::fs::File::create(&broken).unwrap());
        rollama::quantize::write_gguf(&mut out, &metadata, &tensors).unwrap();
    }
    let output = common::create_from_gguf(&server, "minilm-old-q8", &broken, &[]);
    assert!(output.status.success(), "{}", stderr(&output));
    let input = json!(["why is the sky blue?", "a second sentence"]);
    let fixed = embed(&server, json!({"model": "minilm-old-q8", "input": input})).await;
    let f16 = embed(&server, json!({"model": "minilm", "input": input})).await;
    for i in 0..2 {
        let similarity = cosine(
            &floats(&fixed["embeddings"][i]),
            &floats(&f16["embeddings"][i]),
        );
        assert!(similarity > 0.999, "cosine {similarity}");
    }
    // The server is still up, and the copy is kept for the next load.
    let converted: Vec<_> = std::fs::read_dir(server.models.join(".rollama/converted"))
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    assert!(
        converted
            .iter()
            .any(|n| n.ends_with("-token-types-f32.gguf")),
        "{converted:?}"
    );
}

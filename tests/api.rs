//! The HTTP API against a real server: status codes and bodies as Ollama sends them, blob
//! uploads that never leave partial files, and create/show/tags with the real model.

mod common;

use common::{sha256_hex, Server};
use serde_json::{json, Value};
use std::io::{Read, Write};

fn client() -> reqwest::Client {
    reqwest::Client::new()
}

async fn json_of(response: reqwest::Response) -> (u16, Value) {
    let status = response.status().as_u16();
    let text = response.text().await.unwrap();
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

async fn post(server: &Server, path: &str, body: &str) -> (u16, Value) {
    json_of(
        client()
            .post(server.url(path))
            .body(body.to_string())
            .send()
            .await
            .unwrap(),
    )
    .await
}

#[tokio::test]
async fn liveness_routes_answer_like_ollama() {
    let server = Server::start();
    let root = client().get(server.url("/")).send().await.unwrap();
    assert_eq!(root.status(), 200);
    assert_eq!(root.text().await.unwrap(), "Ollama is running");
    let head = client().head(server.url("/")).send().await.unwrap();
    assert_eq!(head.status(), 200);
    let (status, body) = json_of(
        client()
            .get(server.url("/api/version"))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(
        (status, body),
        (
            200,
            json!({"version": rollama::OLLAMA_VERSION, "rollama_version": env!("CARGO_PKG_VERSION")})
        )
    );
    let (status, body) = json_of(
        client()
            .get(server.url("/api/health"))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(body["status"], "ok");
    let (status, body) = json_of(client().get(server.url("/api/tags")).send().await.unwrap()).await;
    assert_eq!((status, body), (200, json!({"models": []})));
    let (status, body) = json_of(client().get(server.url("/api/ps")).send().await.unwrap()).await;
    assert_eq!((status, body), (200, json!({"models": []})));
}

#[tokio::test]
async fn unknown_paths_and_wrong_methods_get_404_and_405() {
    let server = Server::start();
    let missing = client()
        .get(server.url("/nonexistent"))
        .send()
        .await
        .unwrap();
    assert_eq!(missing.status(), 404);
    assert_eq!(missing.text().await.unwrap(), "404 page not found");
    let wrong = client().get(server.url("/api/show")).send().await.unwrap();
    assert_eq!(wrong.status(), 405);
    let wrong = client().post(server.url("/api/tags")).send().await.unwrap();
    assert_eq!(wrong.status(), 405);
}

#[tokio::test]
async fn bad_request_bodies_get_ollamas_errors() {
    let server = Server::start();
    let cases: &[(&str, &str, u16, &str)] = &[
        ("/api/show", "", 400, "missing request body"),
        ("/api/show", "{}", 400, "model is required"),
        (
            "/api/show",
            "{\"model\": \"nope\"}",
            404,
            "model 'nope:latest' not found",
        ),
        (
            "/api/show",
            "{\"model\": \"../x\"}",
            400,
            "invalid model name",
        ),
        (
            "/api/copy",
            "{\"source\":\"nope\",\"destination\":\"x\"}",
            404,
            "model \"nope\" not found",
        ),
        (
            "/api/copy",
            "{\"source\":\"a b\",\"destination\":\"x\"}",
            400,
            "source \"a b\" is invalid",
        ),
        (
            "/api/copy",
            "{\"source\":\"a\",\"destination\":\"\"}",
            400,
            "destination \"\" is invalid",
        ),
        (
            "/api/create",
            "{\"model\":\"x\",\"stream\":false}",
            400,
            "neither 'from' or 'files' was specified",
        ),
        (
            "/api/create",
            "{\"model\":\"\",\"from\":\"y\"}",
            400,
            "invalid model name",
        ),
        (
            "/api/create",
            "{\"model\":\"x\",\"files\":{\"../m.gguf\":\"sha256:00\"}}",
            400,
            "file path must be relative",
        ),
        (
            "/api/create",
            "{\"model\":\"x\",\"files\":{\"m.gguf\":\"\"}}",
            400,
            "invalid digest format",
        ),
        (
            "/api/create",
            "{\"model\":\"x\",\"from\":\"nope\",\"stream\":false}",
            404,
            "model 'nope:latest' not found",
        ),
    ];
    for (path, body, want_status, want_error) in cases {
        let (status, value) = post(&server, path, body).await;
        assert_eq!(status, *want_status, "{path} {body}: {value}");
        assert_eq!(value, json!({"error": want_error}), "{path} {body}");
    }
    // Malformed JSON and wrongly typed fields: 400 with a message naming the problem.
    for body in ["{\"model\": ", "[1,2]", "{\"model\": 5}", "not json"] {
        let (status, value) = post(&server, "/api/show", body).await;
        assert_eq!(status, 400, "{body}");
        assert!(
            value["error"].as_str().is_some_and(|e| !e.is_empty()),
            "{body}: {value}"
        );
    }
    let too_long = "m".repeat(81);
    let (status, _) = post(
        &server,
        "/api/show",
        &format!("{{\"model\":\"{too_long}\"}}"),
    )
    .await;
    assert_eq!(status, 400);
    let response = client()
        .delete(server.url("/api/delete"))
        .body("{\"model\":\"nope\"}")
        .send()
        .await
        .unwrap();
    assert_eq!(
        json_of(response).await,
        (404, json!({"error": "model 'nope' not found"}))
    );
    let response = client()
        .delete(server.url("/api/delete"))
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(
        json_of(response).await,
        (400, json!({"error": "model is required"}))
    );
    let response = client()
        .delete(server.url("/api/delete"))
        .body("{\"model\":\"a/../../b\"}")
        .send()
        .await
        .unwrap();
    assert_eq!(json_of(response).await.0, 400);
}

#[tokio::test]
async fn blob_uploads_are_verified_and_never_left_half_written() {
    let server = Server::start();
    let data = b"some blob content".to_vec();
    let digest = format!("sha256:{}", sha256_hex(&data));
    let blob_url = |d: &str| server.url(&format!("/api/blobs/{d}"));

    let head = client().head(blob_url("sha256:bad")).send().await.unwrap();
    assert_eq!(head.status(), 400);
    let (status, body) = post(&server, "/api/blobs/sha256:bad", "x").await;
    assert_eq!(
        (status, body),
        (400, json!({"error": "invalid digest format"}))
    );
    let (status, _) = post(&server, "/api/blobs/sha256-..%2F..%2Fetc", "x").await;
    assert_eq!(status, 400);
    let head = client().head(blob_url(&digest)).send().await.unwrap();
    assert_eq!(head.status(), 404);

    let wrong = format!("sha256:{}", sha256_hex(b"other"));
    let (status, body) = json_of(
        client()
            .post(blob_url(&wrong))
            .body(data.clone())
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 400);
    assert_eq!(
        body["error"],
        format!("digest mismatch, expected \"{wrong}\", got \"{digest}\"")
    );
    assert!(server.blobs().is_empty(), "{:?}", server.blobs());

    let created = client()
        .post(blob_url(&digest))
        .body(data.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), 201);
    let again = client()
        .post(blob_url(&digest.replace(':', "-")))
        .body(data.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), 200);
    assert_eq!(
        client()
            .head(blob_url(&digest))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    assert_eq!(server.blobs(), vec![digest.replace(':', "-")]);

    // A client that promises more bytes than it sends and hangs up leaves nothing behind.
    let other = vec![7u8; 100_000];
    let other_digest = format!("sha256:{}", sha256_hex(&other));
    let mut stream = std::net::TcpStream::connect(&server.addr).unwrap();
    write!(
        stream,
        "POST /api/blobs/{other_digest} HTTP/1.1\r\nHost: {}\r\nContent-Length: {}\r\n\r\n",
        server.addr,
        other.len()
    )
    .unwrap();
    stream.write_all(&other[..1000]).unwrap();
    drop(stream);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let blobs = server.blobs();
        if blobs == vec![digest.replace(':', "-")] {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "partial upload left {blobs:?}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn create_show_and_tags_with_the_real_model() {
    let server = Server::start();
    let gguf = std::fs::read(common::test_gguf()).unwrap();
    let digest = format!("sha256:{}", sha256_hex(&gguf));
    let upload = client()
        .post(server.url(&format!("/api/blobs/{digest}")))
        .body(gguf.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(upload.status(), 201);

    // Streaming create: NDJSON progress lines ending in success.
    let response = client()
        .post(server.url("/api/create"))
        .json(&json!({
            "model": "smol",
            "files": {"model.gguf": digest},
            "template": "{{ .Prompt }}",
            "system": "Be brief.",
            "parameters": {"temperature": 0.7, "stop": ["<|im_end|>"], "num_ctx": 1024},
            "license": ["MIT", "BSD"],
            "messages": [{"role": "user", "content": "hi"}],
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], "application/x-ndjson");
    let text = response.text().await.unwrap();
    assert!(text.ends_with('\n'));
    let lines: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let statuses: Vec<&str> = lines
        .iter()
        .map(|l| l["status"].as_str().unwrap())
        .collect();
    assert_eq!(statuses[0], "parsing GGUF");
    assert_eq!(statuses[1], format!("using existing layer {digest}"));
    assert!(statuses
        .iter()
        .any(|s| s.starts_with("creating new layer sha256:")));
    assert_eq!(
        &statuses[statuses.len() - 2..],
        ["writing manifest", "success"]
    );

    let (status, tags) = json_of(client().get(server.url("/api/tags")).send().await.unwrap()).await;
    assert_eq!(status, 200);
    let model = &tags["models"][0];
    assert_eq!(model["name"], "smol:latest");
    assert_eq!(model["model"], "smol:latest");
    assert_eq!(model["details"]["format"], "gguf");
    assert_eq!(model["details"]["family"], "llama");
    assert_eq!(model["details"]["families"], json!(["llama"]));
    assert_eq!(model["details"]["quantization_level"], "Q4_1");
    assert_eq!(model["details"]["parameter_size"], "134.52M");
    // Ollama's newer fields, which UIs filter models on.
    assert_eq!(model["details"]["context_length"], 8192);
    assert_eq!(model["details"]["embedding_length"], 576);
    assert_eq!(model["capabilities"], json!(["completion"]));
    assert!(model.get("expires_at").is_none());
    let manifest_path = server
        .models
        .join("manifests/registry.ollama.ai/library/smol/latest");
    let manifest_bytes = std::fs::read(&manifest_path).unwrap();
    assert_eq!(model["digest"], sha256_hex(&manifest_bytes));
    let manifest: Value = serde_json::from_slice(&manifest_bytes).unwrap();
    let size: u64 = manifest["layers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["size"].as_u64().unwrap())
        .sum::<u64>()
        + manifest["config"]["size"].as_u64().unwrap();
    assert_eq!(model["size"], size);

    let (status, show) = post(&server, "/api/show", "{\"model\":\"SMOL\"}").await;
    assert_eq!(status, 200, "{show}");
    assert_eq!(show["system"], "Be brief.");
    assert_eq!(show["template"], "{{ .Prompt }}");
    assert_eq!(show["license"], "MIT\nBSD");
    assert_eq!(show["messages"], json!([{"role": "user", "content": "hi"}]));
    assert_eq!(show["capabilities"], json!(["completion"]));
    assert_eq!(show["details"]["parent_model"], "model.gguf");
    assert_eq!(show["model_info"]["general.architecture"], "llama");
    assert_eq!(show["model_info"]["llama.context_length"], 8192);
    // Ollama decodes arrays with a maximum size of 0 unless verbose: they come back null.
    assert!(show["model_info"]
        .get("tokenizer.ggml.tokens")
        .is_some_and(Value::is_null));
    assert!(show["model_info"].get("general.name").is_none());
    assert!(show["model_info"].get("tokenizer.chat_template").is_none());
    assert!(show["tensors"].as_array().unwrap().len() > 10);
    let mut params: Vec<String> = show["parameters"]
        .as_str()
        .unwrap()
        .lines()
        .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
        .collect();
    params.sort();
    assert_eq!(
        params,
        ["num_ctx 1024", "stop \"<|im_end|>\"", "temperature 0.7"]
    );
    assert!(show["modified_at"].as_str().unwrap().contains('T'));

    let (_, verbose) = post(
        &server,
        "/api/show",
        "{\"model\":\"smol\",\"verbose\":true}",
    )
    .await;
    assert_eq!(
        verbose["model_info"]["tokenizer.ggml.tokens"]
            .as_array()
            .unwrap()
            .len(),
        49152
    );

    // stream:false create answers one JSON object.
    let (status, body) = post(
        &server,
        "/api/create",
        "{\"model\":\"smol2\",\"from\":\"smol\",\"system\":\"Other.\",\"stream\":false}",
    )
    .await;
    assert_eq!((status, body), (200, json!({"status": "success"})));
    let (_, show) = post(&server, "/api/show", "{\"model\":\"smol2\"}").await;
    assert_eq!(show["system"], "Other.");
    assert_eq!(show["details"]["parent_model"], "smol:latest");

    // copy and delete through the API.
    let (status, _) = post(
        &server,
        "/api/copy",
        "{\"source\":\"smol\",\"destination\":\"smol3\"}",
    )
    .await;
    assert_eq!(status, 200);
    let response = client()
        .delete(server.url("/api/delete"))
        .body("{\"model\":\"smol3\"}")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
}

#[tokio::test]
async fn create_rejects_blobs_that_are_missing_or_not_gguf() {
    let server = Server::start();
    let missing = format!("sha256:{}", sha256_hex(b"never uploaded"));
    let (status, body) = post(
        &server,
        "/api/create",
        &json!({"model": "x", "files": {"m.gguf": missing}, "stream": false}).to_string(),
    )
    .await;
    assert_eq!(status, 400, "{body}");

    for (name, content) in [
        ("m.gguf", &b"GGUF\x03\x00\x00\x00truncated"[..]),
        ("m.bin", b"plain text"),
    ] {
        let digest = format!("sha256:{}", sha256_hex(content));
        let upload = client()
            .post(server.url(&format!("/api/blobs/{digest}")))
            .body(content.to_vec())
            .send()
            .await
            .unwrap();
        assert!(upload.status().is_success());
        let (status, body) = post(
            &server,
            "/api/create",
            &json!({"model": "x", "files": {name: digest}, "stream": false}).to_string(),
        )
        .await;
        assert_eq!(status, 400, "{name}: {body}");
        assert!(body["error"].as_str().is_some_and(|e| !e.is_empty()));
        // Streaming: an error before the first line keeps its status; after progress lines
        // it arrives as a final {"error":…} line, as Ollama streams it.
        let response = client()
            .post(server.url("/api/create"))
            .body(json!({"model": "x", "files": {name: digest}}).to_string())
            .send()
            .await
            .unwrap();
        let status = response.status().as_u16();
        let text = response.text().await.unwrap();
        let last: Value = serde_json::from_str(text.lines().last().unwrap()).unwrap();
        assert!(
            last["error"].as_str().is_some_and(|e| !e.is_empty()),
            "{text}"
        );
        if name == "m.bin" {
            assert_eq!(status, 400, "{text}");
        } else {
            assert_eq!(status, 200, "{text}");
            assert_eq!(
                text.lines().next().unwrap(),
                "{\"status\":\"parsing GGUF\"}"
            );
        }
    }
    let (_, tags) = json_of(client().get(server.url("/api/tags")).send().await.unwrap()).await;
    assert_eq!(tags, json!({"models": []}));
    assert!(!server.models.join("manifests/registry.ollama.ai").exists());
}

#[tokio::test]
async fn server_stays_up_after_garbage() {
    let mut server = Server::start();
    for body in [
        "\u{0}\u{1}",
        "{\"model\": [[[[[[[[[[",
        "{\"model\":\"x\",\"files\":{\"a\":5}}",
    ] {
        for path in ["/api/show", "/api/create", "/api/copy"] {
            let (status, _) = post(&server, path, body).await;
            assert!(status == 400 || status == 404, "{path} {body:?} → {status}");
        }
    }
    let mut raw = std::net::TcpStream::connect(&server.addr).unwrap();
    raw.write_all(b"GARBAGE / HTTP/9.9\r\n\r\n").unwrap();
    let mut buf = Vec::new();
    let _ = raw.read_to_end(&mut buf);
    assert!(server.is_running());
    let root = client().get(server.url("/")).send().await.unwrap();
    assert_eq!(root.status(), 200);
}

/// A manifest that does not parse, one naming a missing blob, and one whose blob was cut short:
/// `/api/tags` and `list` leave them out and say why, `show` answers a clear error, `rm`
/// removes them, and the healthy model is untouched.
#[tokio::test]
async fn damaged_models_are_reported_and_skipped_never_fatal() {
    let server = Server::start();
    let _good = common::create_model(&server, "good", "FROM ./model.gguf\nSYSTEM good\n");
    let _short = common::create_model(&server, "short", "FROM ./model.gguf\nSYSTEM cut short\n");
    let library = server.models.join("manifests/registry.ollama.ai/library");
    let good_manifest = std::fs::read_to_string(library.join("good/latest")).unwrap();

    // Missing blob: the good manifest with its system layer pointing at a blob never written.
    let system_digest = format!("sha256:{}", sha256_hex(b"good"));
    assert!(good_manifest.contains(&system_digest), "{good_manifest}");
    let missing = good_manifest.replace(
        &system_digest,
        &format!("sha256:{}", sha256_hex(b"never stored")),
    );
    std::fs::create_dir_all(library.join("missing")).unwrap();
    std::fs::write(library.join("missing/latest"), missing).unwrap();
    // Garbled manifest.
    std::fs::create_dir_all(library.join("garbled")).unwrap();
    std::fs::write(library.join("garbled/latest"), "{\"layers\": [").unwrap();
    // A blob cut short (the system prompt only `short` uses).
    let short_blob = server
        .models
        .join(format!("blobs/sha256-{}", sha256_hex(b"cut short")));
    std::fs::write(&short_blob, "cut").unwrap();

    let (status, tags) = json_of(client().get(server.url("/api/tags")).send().await.unwrap()).await;
    assert_eq!(status, 200, "{tags}");
    let names: Vec<&str> = tags["models"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["good:latest"]);
    let mut damaged: Vec<(String, String)> = tags["damaged"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| {
            (
                d["name"].as_str().unwrap().to_string(),
                d["error"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    damaged.sort();
    assert_eq!(damaged.len(), 3, "{damaged:?}");
    assert_eq!(damaged[0].0, "garbled:latest");
    assert_eq!(damaged[1].0, "missing:latest");
    assert!(damaged[1].1.contains("is missing"), "{damaged:?}");
    assert_eq!(damaged[2].0, "short:latest");
    assert!(damaged[2].1.contains("3 bytes"), "{damaged:?}");

    let list = server.run(&["list"]);
    assert!(list.status.success());
    let (out, err) = (common::stdout(&list), common::stderr(&list));
    assert!(
        out.contains("good:latest") && !out.contains("missing"),
        "{out}"
    );
    for name in ["garbled:latest", "missing:latest", "short:latest"] {
        assert!(err.contains(&format!("model {name} is damaged")), "{err}");
    }

    for name in ["missing", "short", "garbled"] {
        let (status, body) = post(&server, "/api/show", &json!({"model": name}).to_string()).await;
        assert_eq!(status, 500, "{name}: {body}");
        let message = body["error"].as_str().unwrap();
        assert!(
            message.contains("damaged") || message.contains("manifest"),
            "{name}: {message}"
        );
    }
    let (status, _) = post(&server, "/api/show", &json!({"model": "good"}).to_string()).await;
    assert_eq!(status, 200);

    for name in ["garbled", "missing", "short"] {
        let rm = server.run(&["rm", name]);
        assert!(rm.status.success(), "rm {name}: {}", common::stderr(&rm));
    }
    let (_, tags) = json_of(client().get(server.url("/api/tags")).send().await.unwrap()).await;
    assert!(tags.get("damaged").is_none(), "{tags}");
    assert_eq!(tags["models"].as_array().unwrap().len(), 1);
}

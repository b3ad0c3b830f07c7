//! Who may talk to the server, through the real binary: Ollama's CORS allow-list and preflight
//! answers, its `Host` check against DNS rebinding, and API keys on native, OpenAI and
//! Anthropic routes (and from the CLI).

mod common;

use common::{stderr, Server, BIN};
use serde_json::Value;
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

fn client() -> reqwest::Client {
    reqwest::Client::new()
}

/// `GET /api/tags` with one extra header.
async fn tags_with(server: &Server, header: &str, value: &str) -> reqwest::Response {
    client()
        .get(server.url("/api/tags"))
        .header(header, value)
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn allowed_origins_get_cors_headers_and_others_403() {
    let server = Server::start_with_env(&[("OLLAMA_ORIGINS", "https://app.example.com")]);
    for origin in [
        "http://localhost:3000",
        "https://127.0.0.1",
        "app://obsidian.md",
        "https://app.example.com",
    ] {
        let response = tags_with(&server, "Origin", origin).await;
        assert_eq!(response.status(), 200, "{origin}");
        assert_eq!(response.headers()["access-control-allow-origin"], origin);
        assert_eq!(response.headers()["vary"], "Origin");
    }
    for origin in [
        "http://evil.example",
        "chrome-extension://abc",
        "https://app.example.com.evil",
    ] {
        let response = tags_with(&server, "Origin", origin).await;
        assert_eq!(response.status(), 403, "{origin}");
        assert!(response
            .headers()
            .get("access-control-allow-origin")
            .is_none());
        assert_eq!(response.text().await.unwrap(), "");
    }
    // No Origin: not a browser, not affected.
    let response = client().get(server.url("/api/tags")).send().await.unwrap();
    assert_eq!(response.status(), 200);
    assert!(response
        .headers()
        .get("access-control-allow-origin")
        .is_none());
}

#[tokio::test]
async fn preflights_are_answered_for_allowed_origins() {
    let server = Server::start();
    let response = client()
        .request(reqwest::Method::OPTIONS, server.url("/v1/chat/completions"))
        .header("Origin", "http://localhost:5173")
        .header("Access-Control-Request-Method", "POST")
        .header(
            "Access-Control-Request-Headers",
            "authorization, content-type",
        )
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 204);
    let headers = response.headers();
    assert_eq!(
        headers["access-control-allow-origin"],
        "http://localhost:5173"
    );
    let methods = headers["access-control-allow-methods"].to_str().unwrap();
    assert!(methods.contains("POST") && methods.contains("DELETE"));
    let allowed = headers["access-control-allow-headers"]
        .to_str()
        .unwrap()
        .to_lowercase();
    for header in [
        "authorization",
        "content-type",
        "x-stainless-os",
        "openai-beta",
    ] {
        assert!(allowed.contains(header), "{header} in {allowed}");
    }
    assert_eq!(headers["access-control-max-age"], "43200");
    let refused = client()
        .request(reqwest::Method::OPTIONS, server.url("/api/chat"))
        .header("Origin", "https://evil.example")
        .header("Access-Control-Request-Method", "POST")
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 403);
}

#[tokio::test]
async fn rebinding_host_headers_are_refused_on_loopback() {
    let server = Server::start();
    for host in ["evil.example", "evil.example:11434", "8.8.8.8"] {
        let response = tags_with(&server, "Host", host).await;
        assert_eq!(response.status(), 403, "{host}");
    }
    for host in [
        server.addr.as_str(),
        "localhost",
        "localhost:11434",
        "192.168.1.10",
        "box.local",
        "api.localhost",
    ] {
        let response = tags_with(&server, "Host", host).await;
        assert_eq!(response.status(), 200, "{host}");
    }
    let options = client()
        .request(reqwest::Method::OPTIONS, server.url("/api/tags"))
        .header("Host", "localhost")
        .send()
        .await
        .unwrap();
    assert_eq!(options.status(), 204);
}

#[tokio::test]
async fn an_api_key_guards_every_route_but_the_liveness_ones() {
    let server = Server::start_with_env(&[("ROLLAMA_API_KEY", "s3cret, second-key")]);
    for path in ["/", "/api/version"] {
        let response = client().get(server.url(path)).send().await.unwrap();
        assert_eq!(response.status(), 200, "{path}");
    }
    // Native routes: Ollama's error shape.
    let missing = client().get(server.url("/api/tags")).send().await.unwrap();
    assert_eq!(missing.status(), 401);
    assert_eq!(missing.headers()["www-authenticate"], "Bearer");
    let body: Value = missing.json().await.unwrap();
    assert_eq!(body["error"], "missing API key");
    let wrong = client()
        .get(server.url("/api/tags"))
        .bearer_auth("s3cre")
        .send()
        .await
        .unwrap();
    assert_eq!(wrong.status(), 401);
    let body: Value = wrong.json().await.unwrap();
    assert_eq!(body["error"], "invalid API key");
    for key in ["s3cret", "second-key"] {
        let right = client()
            .get(server.url("/api/tags"))
            .bearer_auth(key)
            .send()
            .await
            .unwrap();
        assert_eq!(right.status(), 200);
    }
    // OpenAI routes: OpenAI's shape.
    let response = client().get(server.url("/v1/models")).send().await.unwrap();
    assert_eq!(response.status(), 401);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"]["code"], "invalid_api_key");
    assert_eq!(body["error"]["type"], "invalid_request_error");
    let response = client()
        .get(server.url("/v1/models"))
        .bearer_auth("s3cret")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    // Anthropic: its shape, and its own header.
    let response = client()
        .post(server.url("/v1/messages"))
        .header("x-api-key", "nope")
        .json(&serde_json::json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 401);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["type"], "error");
    assert_eq!(body["error"]["type"], "authentication_error");
    let response = client()
        .post(server.url("/v1/messages"))
        .header("x-api-key", "s3cret")
        .json(&serde_json::json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(
        response.status(),
        400,
        "past the key, the request's own error"
    );
    // The CLI sends the key from its environment.
    let output = server
        .rollama()
        .arg("list")
        .env("ROLLAMA_API_KEY", "s3cret")
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", stderr(&output));
    let output = server
        .rollama()
        .arg("list")
        .env_remove("ROLLAMA_API_KEY")
        .output()
        .unwrap();
    assert!(!output.status.success());
    assert!(stderr(&output).contains("API key"), "{}", stderr(&output));
}

#[tokio::test]
async fn keys_can_come_from_a_file() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("keys");
    std::fs::write(&file, "# rollama keys\nfrom-file\n\n").unwrap();
    let server = Server::start_with_env(&[("ROLLAMA_API_KEY_FILE", file.to_str().unwrap())]);
    let response = client()
        .get(server.url("/api/ps"))
        .bearer_auth("from-file")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let response = client().get(server.url("/api/ps")).send().await.unwrap();
    assert_eq!(response.status(), 401);
}

#[test]
fn serving_beyond_loopback_without_a_key_warns() {
    let home = tempfile::tempdir().unwrap();
    let mut child = Command::new(BIN)
        .arg("serve")
        .env("OLLAMA_HOST", "0.0.0.0:0")
        .env("OLLAMA_MODELS", home.path().join("models"))
        .env("HOME", home.path())
        .env_remove("ROLLAMA_API_KEY")
        .env_remove("ROLLAMA_API_KEY_FILE")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let mut seen = Vec::new();
    for line in lines.by_ref() {
        let line = line.unwrap();
        let listening = line.starts_with("Listening on");
        seen.push(line);
        if listening {
            break;
        }
    }
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(
        seen.iter()
            .any(|l| l.starts_with("WARNING") && l.contains("without an API key")),
        "{seen:?}"
    );
}

#[tokio::test]
async fn json_bodies_are_capped_per_route_with_each_apis_error() {
    let server = Server::start();
    let big = vec![b' '; 3 * 1024 * 1024];
    // 2 MiB on routes without images.
    let response = client()
        .post(server.url("/api/show"))
        .body(big.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 413);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body, serde_json::json!({"error": "request body too large"}));
    let response = client()
        .post(server.url("/v1/completions"))
        .body(big.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 413);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"]["message"], "request body too large");
    // Routes that carry images take more: this one is read, and refused as empty JSON.
    let response = client()
        .post(server.url("/api/chat"))
        .body(big)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"], "missing request body");
}

/// Sends `head` (and optionally part of a body) on a raw connection and returns what the
/// server wrote back before it closed the connection, and how long that took.
fn raw_exchange(addr: &str, bytes: &[u8]) -> (String, std::time::Duration) {
    use std::io::{Read, Write};
    let started = std::time::Instant::now();
    let mut stream = std::net::TcpStream::connect(addr).unwrap();
    stream
        .set_read_timeout(Some(std::time::Duration::from_secs(20)))
        .unwrap();
    stream.write_all(bytes).unwrap();
    let mut reply = Vec::new();
    let _ = stream.read_to_end(&mut reply);
    (
        String::from_utf8_lossy(&reply).into_owned(),
        started.elapsed(),
    )
}

#[tokio::test]
async fn slow_clients_are_timed_out_and_the_server_keeps_answering() {
    let server = Server::start_with_env(&[("ROLLAMA_BODY_TIMEOUT", "1")]);
    let addr = server.addr.clone();
    // Headers that never finish: the connection is answered 408 and closed after 5 s.
    let (reply, took) = tokio::task::spawn_blocking(move || {
        raw_exchange(&addr, b"GET /api/version HTTP/1.1\r\nHost: 127.0.0.1\r\n")
    })
    .await
    .unwrap();
    assert!(reply.starts_with("HTTP/1.1 408"), "{reply:?}");
    assert!(took < std::time::Duration::from_secs(10), "{took:?}");
    // A body that stops arriving: dropped after the body time-out (1 s here).
    let addr = server.addr.clone();
    let (reply, took) = tokio::task::spawn_blocking(move || {
        raw_exchange(
            &addr,
            b"POST /api/show HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 100\r\n\r\n{\"model\":",
        )
    })
    .await
    .unwrap();
    assert!(reply.starts_with("HTTP/1.1 400"), "{reply:?}");
    assert!(took < std::time::Duration::from_secs(5), "{took:?}");
    let version = client()
        .get(server.url("/api/version"))
        .send()
        .await
        .unwrap();
    assert_eq!(version.status(), 200);
}

#[tokio::test]
async fn blob_uploads_are_capped_and_never_fill_the_disk() {
    let body = b"a blob to upload".to_vec();
    let digest = format!("sha256:{}", common::sha256_hex(&body));
    // One upload at a time: a second while the first is open gets 503 with Retry-After.
    let server = Server::start_with_env(&[("ROLLAMA_MAX_UPLOADS", "1")]);
    let mut held = std::net::TcpStream::connect(&server.addr).unwrap();
    std::io::Write::write_all(
        &mut held,
        format!(
            "POST /api/blobs/{digest} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 1000\r\n\r\nabc"
        )
        .as_bytes(),
    )
    .unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    let refused = client()
        .post(server.url(&format!("/api/blobs/{digest}")))
        .body(body.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 503);
    assert_eq!(refused.headers()["retry-after"], "1");
    let error: Value = refused.json().await.unwrap();
    assert!(error["error"]
        .as_str()
        .unwrap()
        .contains("too many blob uploads"));
    drop(held);
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    let accepted = client()
        .post(server.url(&format!("/api/blobs/{digest}")))
        .body(body.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(accepted.status(), 201);
    drop(server);

    // A floor of free space larger than the disk: refused with 507, nothing left behind.
    let server = Server::start_with_env(&[("ROLLAMA_MIN_FREE_SPACE", "1000000000000000000")]);
    let refused = client()
        .post(server.url(&format!("/api/blobs/{digest}")))
        .body(body.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 507);
    let error: Value = refused.json().await.unwrap();
    assert!(error["error"]
        .as_str()
        .unwrap()
        .contains("not enough disk space"));
    assert!(server.blobs().is_empty(), "{:?}", server.blobs());
}

//! Pull and push against a real registry: Debian's `docker-registry` (distribution 2.8) on a
//! loopback port with a temp storage dir, and, where a test needs to see or disturb the
//! traffic, a small HTTP proxy in front of it (counts blob bytes, throttles, stalls, corrupts a
//! blob, or demands a bearer token as registry.ollama.ai does).

mod common;

use actix_web::{web, HttpRequest, HttpResponse};
use common::registry::{raw_get, Registry};
use common::{create_model, stderr, stdout, Server};
use futures_util::StreamExt;
use serde_json::{json, Value};
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

const MODEL: &str = "FROM ./model.gguf\nPARAMETER stop <|im_end|>\nSYSTEM Be brief.\n";
/// Parts of 16 MB: the 98 MB test model downloads in seven, several at once.
const PART_SIZE: &str = "16000000";

/// What the proxy does to the traffic.
#[derive(Default)]
struct Faults {
    /// Bytes per second for blob bodies (0: unthrottled).
    rate: AtomicU64,
    /// Flip a byte in every blob body.
    corrupt: AtomicBool,
    /// The first blob response stops sending after this many bytes (0: never) and hangs.
    stall_after: AtomicU64,
    /// Demand `Authorization: Bearer test-token`, issued by `/token` for a signed request.
    auth: AtomicBool,
    /// Blob body bytes sent to clients.
    blob_bytes: AtomicU64,
    /// Valid signed token requests seen.
    tokens_issued: AtomicUsize,
}

struct ProxyState {
    upstream: String,
    own: String,
    faults: Arc<Faults>,
    http: reqwest::Client,
    stalled_once: AtomicBool,
}

/// An HTTP proxy in front of `upstream` (its own thread and actix system).
fn start_proxy(upstream: String, faults: Arc<Faults>) -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let own = listener.local_addr().unwrap().to_string();
    let state = web::Data::new(ProxyState {
        upstream,
        own: own.clone(),
        faults,
        http: reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap(),
        stalled_once: AtomicBool::new(false),
    });
    std::thread::spawn(move || {
        actix_web::rt::System::new().block_on(async move {
            actix_web::HttpServer::new(move || {
                actix_web::App::new()
                    .app_data(state.clone())
                    .app_data(web::PayloadConfig::new(512 << 20))
                    .default_service(web::to(forward))
            })
            .workers(2)
            .listen(listener)
            .unwrap()
            .run()
            .await
        })
    });
    own
}

/// Checks a token request's `<public key>:<signature>` header the way a registry would.
fn signed_correctly(request: &HttpRequest) -> bool {
    use base64::Engine as _;
    let engine = base64::engine::general_purpose::STANDARD;
    let Some(header) = request
        .headers()
        .get("authorization")
        .and_then(|v| v.to_str().ok())
    else {
        return false;
    };
    let Some((public, signature)) = header.split_once(':') else {
        return false;
    };
    let (Ok(public), Ok(signature)) = (engine.decode(public), engine.decode(signature)) else {
        return false;
    };
    // ssh wire format: string "ssh-ed25519", string key.
    let Some(key) = public.get(public.len().saturating_sub(32)..) else {
        return false;
    };
    let Ok(key) = ed25519_dalek::VerifyingKey::from_bytes(key.try_into().unwrap()) else {
        return false;
    };
    let Ok(signature) = ed25519_dalek::Signature::from_slice(&signature) else {
        return false;
    };
    let url = format!(
        "http://{}{}",
        request.connection_info().host(),
        request.uri()
    );
    let body_hash = hex::encode(<sha2::Sha256 as sha2::Digest>::digest(b""));
    let signed = format!("GET,{url},{}", engine.encode(body_hash));
    key.verify_strict(signed.as_bytes(), &signature).is_ok()
}

async fn forward(
    request: HttpRequest,
    body: web::Bytes,
    state: web::Data<ProxyState>,
) -> HttpResponse {
    let faults = &state.faults;
    let path_and_query = request
        .uri()
        .path_and_query()
        .map(|p| p.as_str())
        .unwrap_or("/");
    if faults.auth.load(Ordering::SeqCst) {
        if request.path() == "/token" {
            if !signed_correctly(&request) {
                return HttpResponse::Unauthorized().finish();
            }
            faults.tokens_issued.fetch_add(1, Ordering::SeqCst);
            return HttpResponse::Ok().json(json!({"token": "test-token"}));
        }
        let authorized = request
            .headers()
            .get("authorization")
            .is_some_and(|v| v == "Bearer test-token");
        if !authorized {
            return HttpResponse::Unauthorized()
                .insert_header((
                    "WWW-Authenticate",
                    format!(
                        "Bearer realm=\"http://{}/token\",service=\"test-registry\",scope=\"repository:library/smollm2:pull\"",
                        state.own
                    ),
                ))
                .json(json!({"errors": [{"code": "UNAUTHORIZED"}]}));
        }
    }
    let method = reqwest::Method::from_bytes(request.method().as_str().as_bytes()).unwrap();
    let mut upstream = state
        .http
        .request(method, format!("{}{path_and_query}", state.upstream))
        .body(body.to_vec());
    for (name, value) in request.headers() {
        if !["host", "content-length", "authorization", "connection"].contains(&name.as_str()) {
            upstream = upstream.header(name.as_str(), value.as_bytes());
        }
    }
    let response = match upstream.send().await {
        Ok(response) => response,
        Err(_) => return HttpResponse::BadGateway().finish(),
    };
    let status = actix_web::http::StatusCode::from_u16(response.status().as_u16()).unwrap();
    let mut reply = HttpResponse::build(status);
    for (name, value) in response.headers() {
        let skip = ["transfer-encoding", "connection", "content-length"];
        if skip.contains(&name.as_str()) {
            continue;
        }
        let value = value
            .to_str()
            .unwrap_or_default()
            .replace(&state.upstream, &format!("http://{}", state.own));
        reply.insert_header((name.as_str(), value));
    }
    let is_blob = request.method() == actix_web::http::Method::GET
        && request.path().contains("/blobs/sha256:");
    if !is_blob {
        let bytes = response.bytes().await.unwrap_or_default();
        return reply.body(bytes);
    }
    let faults = state.faults.clone();
    let stall = faults.stall_after.load(Ordering::SeqCst);
    let stall_here = stall > 0 && !state.stalled_once.swap(true, Ordering::SeqCst);
    let mut sent = 0u64;
    let mut first = true;
    let body = response.bytes_stream().then(move |chunk| {
        let faults = faults.clone();
        let mut chunk = chunk.map(|c| c.to_vec()).unwrap_or_default();
        if first && faults.corrupt.load(Ordering::SeqCst) && !chunk.is_empty() {
            chunk[0] ^= 0xff;
        }
        first = false;
        sent += chunk.len() as u64;
        let hang = stall_here && sent > stall;
        async move {
            if hang {
                tokio::time::sleep(Duration::from_secs(3600)).await;
            }
            let rate = faults.rate.load(Ordering::SeqCst);
            if rate > 0 {
                tokio::time::sleep(Duration::from_secs_f64(chunk.len() as f64 / rate as f64)).await;
            }
            faults
                .blob_bytes
                .fetch_add(chunk.len() as u64, Ordering::SeqCst);
            Ok::<_, std::io::Error>(web::Bytes::from(chunk))
        }
    });
    reply.streaming(body)
}

/// The test model created as `smollm2`, copied to `<host>/library/smollm2:test` and pushed.
fn push_test_model(server: &Server, host: &str) -> (String, tempfile::TempDir) {
    let dir = create_model(server, "smollm2", MODEL);
    let remote = format!("{host}/library/smollm2:test");
    let cp = server.run(&["cp", "smollm2", &remote]);
    assert!(cp.status.success(), "{}", stderr(&cp));
    let push = server.run(&["push", "--insecure", &remote]);
    assert!(push.status.success(), "push: {}", stderr(&push));
    let err = stderr(&push);
    for status in ["retrieving manifest", "pushing manifest", "success"] {
        assert!(err.contains(status), "push output lacks {status:?}: {err}");
    }
    (remote, dir)
}

/// Removes every local model.
fn remove_all(server: &Server) {
    let reply = raw_get(&server.addr, "/api/tags");
    let body = reply.split("\r\n\r\n").nth(1).unwrap_or_default();
    let tags: Value = serde_json::from_str(body).unwrap();
    for model in tags["models"].as_array().unwrap() {
        let rm = server.run(&["rm", model["name"].as_str().unwrap()]);
        assert!(rm.status.success(), "{}", stderr(&rm));
    }
}

fn blob_files(models: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(models.join("blobs"))
        .map(|e| {
            e.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

/// Bytes the part files say are on disk for partial downloads.
fn bytes_on_disk(models: &Path) -> u64 {
    blob_files(models)
        .iter()
        .filter(|name| name.contains("-partial-"))
        .filter_map(|name| std::fs::read(models.join("blobs").join(name)).ok())
        .filter_map(|bytes| serde_json::from_slice::<Value>(&bytes).ok())
        .map(|part| part["Completed"].as_u64().unwrap_or(0))
        .sum()
}

async fn chat_works(server: &Server, model: &str) {
    let text = common::greedy_answer(server, model, "Hi").await;
    assert!(!text.is_empty(), "{model}: empty answer");
}

/// Starts a throttled pull and returns its open progress stream once 30 MB have arrived (the
/// throttle stays on).
async fn pull_partly(
    server: &Server,
    model: &str,
    faults: &Faults,
) -> impl futures_util::Stream<Item = reqwest::Result<web::Bytes>> {
    faults.rate.store(15_000_000, Ordering::SeqCst);
    let response = reqwest::Client::new()
        .post(server.url("/api/pull"))
        .json(&json!({"model": model, "insecure": true}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let mut lines = Box::pin(response.bytes_stream());
    let mut seen = 0u64;
    while seen < 30_000_000 {
        let chunk = lines.next().await.expect("pull ended early").unwrap();
        for line in String::from_utf8_lossy(&chunk).lines() {
            if let Ok(value) = serde_json::from_str::<Value>(line) {
                seen = seen.max(value["completed"].as_u64().unwrap_or(0));
            }
        }
    }
    lines
}

/// The number of models `/api/tags` lists.
async fn model_count(server: &Server) -> usize {
    common::get_json(server, "/api/tags").await["models"]
        .as_array()
        .unwrap()
        .len()
}

/// A registry with the test model pushed, a proxy in front of it, and a server whose store
/// no longer has the model; returns the model's name through the proxy.
fn pushed_and_removed(
    registry: &Registry,
    server: &Server,
) -> (Arc<Faults>, String, tempfile::TempDir) {
    let faults = Arc::new(Faults::default());
    let proxy = start_proxy(format!("http://{}", registry.host()), faults.clone());
    let (_, dir) = push_test_model(server, &registry.host());
    remove_all(server);
    (faults, format!("{proxy}/library/smollm2:test"), dir)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn push_then_pull_round_trips_through_a_real_registry() {
    let registry = Registry::start();
    let server = Server::start_with_env(&[("ROLLAMA_PULL_PART_SIZE", PART_SIZE)]);
    let (remote, _dir) = push_test_model(&server, &registry.host());
    let local_manifest = std::fs::read(server.models.join(format!(
        "manifests/{}/library/smollm2/test",
        registry.host()
    )))
    .unwrap();
    remove_all(&server);
    assert!(blob_files(&server.models).is_empty());

    let pull = server.run(&["pull", "--insecure", &remote]);
    assert!(pull.status.success(), "pull: {}", stderr(&pull));
    let err = stderr(&pull);
    for status in [
        "pulling manifest",
        "verifying sha256 digest",
        "writing manifest",
        "success",
    ] {
        assert!(err.contains(status), "pull output lacks {status:?}: {err}");
    }
    assert!(err.contains("100%"), "{err}");
    // The same manifest bytes (so the same digest) as pushed, and as the registry serves.
    let pulled = std::fs::read(server.models.join(format!(
        "manifests/{}/library/smollm2/test",
        registry.host()
    )))
    .unwrap();
    assert_eq!(pulled, local_manifest);
    let served = reqwest::Client::new()
        .get(format!(
            "http://{}/v2/library/smollm2/manifests/test",
            registry.host()
        ))
        .header("Accept", rollama::registry::MANIFEST_MEDIA_TYPE)
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    assert_eq!(served.as_ref(), pulled.as_slice());
    // Every blob present under its digest, nothing partial left.
    let manifest: Value = serde_json::from_slice(&pulled).unwrap();
    let mut digests: Vec<String> = manifest["layers"]
        .as_array()
        .unwrap()
        .iter()
        .chain(std::iter::once(&manifest["config"]))
        .map(|l| l["digest"].as_str().unwrap().replace(':', "-"))
        .collect();
    digests.sort();
    assert_eq!(blob_files(&server.models), digests);
    let list = stdout(&server.run(&["list"]));
    assert!(list.contains(&remote), "{list}");
    chat_works(&server, &remote).await;

    // Pulling it again fetches nothing.
    let again = server.run(&["pull", "--insecure", &remote]);
    assert!(again.status.success(), "{}", stderr(&again));

    // `run` pulls a model that is not here first, then answers.
    remove_all(&server);
    let run = server.run(&["run", "--insecure", &remote, "Say hi"]);
    assert!(run.status.success(), "run: {}", stderr(&run));
    assert!(
        stderr(&run).contains("pulling manifest"),
        "{}",
        stderr(&run)
    );
    assert!(!stdout(&run).trim().is_empty());

    // A name the registry does not have: Ollama's error, streamed and not.
    let missing = format!("{}/library/nope:latest", registry.host());
    let output = server.run(&["pull", "--insecure", &missing]);
    assert!(!output.status.success());
    assert!(
        stderr(&output).contains("pull model manifest: file does not exist"),
        "{}",
        stderr(&output)
    );
    let (status, body) = common::post(
        &server,
        "/api/pull",
        json!({"model": missing, "insecure": true, "stream": false}),
    )
    .await;
    assert_eq!(status, 500);
    assert_eq!(body["error"], "pull model manifest: file does not exist");
    // An http:// name without --insecure is refused as Ollama refuses it.
    let (status, body) = common::post(
        &server,
        "/api/pull",
        json!({"model": format!("http://{}/library/smollm2:test", registry.host()), "stream": false}),
    )
    .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("insecure protocol http"))
    );
}

/// A vision model (SmolLM2 plus a random-weight projector) keeps its projector layer through
/// push and pull, and reads images after the pull.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn push_and_pull_carry_a_projector_layer() {
    let registry = Registry::start();
    let server = Server::start();
    let projector = common::test_gguf()
        .with_file_name("projectors")
        .join("gemma3-576.gguf");
    let dir = common::modelfile_dir("FROM ./model.gguf\nFROM ./mmproj.gguf\n");
    std::os::unix::fs::symlink(&projector, dir.path().join("mmproj.gguf")).unwrap();
    let remote = format!("{}/library/smolv:test", registry.host());
    let modelfile = dir.path().join("Modelfile");
    let created = server.run(&["create", &remote, "-f", modelfile.to_str().unwrap()]);
    assert!(created.status.success(), "{}", stderr(&created));
    let push = server.run(&["push", "--insecure", &remote]);
    assert!(push.status.success(), "push: {}", stderr(&push));
    remove_all(&server);
    assert!(blob_files(&server.models).is_empty());

    let pull = server.run(&["pull", "--insecure", &remote]);
    assert!(pull.status.success(), "pull: {}", stderr(&pull));
    let manifest: Value = serde_json::from_slice(
        &std::fs::read(
            server
                .models
                .join(format!("manifests/{}/library/smolv/test", registry.host())),
        )
        .unwrap(),
    )
    .unwrap();
    let projector_digest = format!(
        "sha256:{}",
        common::sha256_hex(&std::fs::read(&projector).unwrap())
    );
    assert!(
        manifest["layers"].as_array().unwrap().iter().any(|l| {
            l["mediaType"] == "application/vnd.ollama.image.projector"
                && l["digest"] == projector_digest.as_str()
        }),
        "{manifest}"
    );
    let (status, show) = common::post(&server, "/api/show", json!({"model": remote})).await;
    assert_eq!(status, 200, "{show}");
    assert!(show["capabilities"]
        .as_array()
        .unwrap()
        .contains(&json!("vision")));
    let image = base64::Engine::encode(
        &base64::engine::general_purpose::STANDARD,
        common::png(16, 16, |x, y| [(x * 16) as u8, (y * 16) as u8, 0]),
    );
    let (status, reply) = common::post(
        &server,
        "/api/chat",
        json!({"model": remote, "stream": false, "options": {"num_predict": 2},
               "messages": [{"role": "user", "content": "What is it?", "images": [image]}]}),
    )
    .await;
    assert_eq!(status, 200, "{reply}");
    assert!(
        reply["prompt_eval_count"].as_u64().unwrap() >= 64,
        "{reply}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_interrupted_pull_resumes_without_fetching_again_what_is_on_disk() {
    let mut registry = Registry::start();
    let server = Server::start_with_env(&[("ROLLAMA_PULL_PART_SIZE", PART_SIZE)]);
    let (faults, remote, _dir) = pushed_and_removed(&registry, &server);

    // 1. The registry is killed mid-pull; the client gives up.
    let lines = pull_partly(&server, &remote, &faults).await;
    registry.kill();
    drop(lines);
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let on_disk = bytes_on_disk(&server.models);
    assert!(on_disk >= 25_000_000, "only {on_disk} bytes kept");
    assert_eq!(model_count(&server).await, 0);

    // 2. The registry comes back; the next pull fetches only what is missing.
    registry.restart();
    faults.rate.store(0, Ordering::SeqCst);
    faults.blob_bytes.store(0, Ordering::SeqCst);
    let (status, body) = common::post(
        &server,
        "/api/pull",
        json!({"model": remote, "insecure": true, "stream": false}),
    )
    .await;
    assert_eq!((status, &body), (200, &json!({"status": "success"})));
    let total: u64 = std::fs::metadata(common::test_gguf()).unwrap().len();
    let fetched = faults.blob_bytes.load(Ordering::SeqCst);
    // The small blobs (template, params, system, config) come whole: a few KB at most.
    assert!(
        fetched <= total - on_disk + 64 * 1024,
        "fetched {fetched} bytes again; {on_disk} of {total} were on disk"
    );
    assert!(!blob_files(&server.models)
        .iter()
        .any(|n| n.contains("partial")));
    chat_works(&server, &remote).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_killed_mid_pull_shows_no_model_and_resumes_after_restart() {
    let registry = Registry::start();
    let store = tempfile::tempdir().unwrap();
    let models = store.path().join("models");
    let env = [("ROLLAMA_PULL_PART_SIZE", PART_SIZE)];
    let server = Server::start_with_store_env(&models, &env);
    let (faults, remote, _dir) = pushed_and_removed(&registry, &server);

    let lines = pull_partly(&server, &remote, &faults).await;
    drop(server); // SIGKILL
    drop(lines);
    let on_disk = bytes_on_disk(&models);
    assert!(on_disk >= 20_000_000, "only {on_disk} bytes kept");

    let server = Server::start_with_store_env(&models, &env);
    assert_eq!(model_count(&server).await, 0);
    faults.rate.store(0, Ordering::SeqCst);
    faults.blob_bytes.store(0, Ordering::SeqCst);
    let pull = server.run(&["pull", "--insecure", &remote]);
    assert!(pull.status.success(), "{}", stderr(&pull));
    let total: u64 = std::fs::metadata(common::test_gguf()).unwrap().len();
    let fetched = faults.blob_bytes.load(Ordering::SeqCst);
    // A part's state is saved every MB, so a kill loses at most a MB per running part.
    assert!(
        fetched <= total - on_disk + 8 * (1 << 20) + 64 * 1024,
        "fetched {fetched} bytes again; {on_disk} of {total} were on disk"
    );
    chat_works(&server, &remote).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_corrupted_blob_fails_the_pull_and_leaves_nothing() {
    let registry = Registry::start();
    let server = Server::start_with_env(&[("ROLLAMA_PULL_PART_SIZE", PART_SIZE)]);
    let (faults, remote, _dir) = pushed_and_removed(&registry, &server);
    faults.corrupt.store(true, Ordering::SeqCst);
    let pull = server.run(&["pull", "--insecure", &remote]);
    assert!(!pull.status.success());
    let err = stderr(&pull);
    assert!(
        err.contains("digest mismatch, file must be downloaded again: want sha256:"),
        "{err}"
    );
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(model_count(&server).await, 0);
    assert_eq!(blob_files(&server.models), Vec::<String>::new());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_auth_registry_is_pulled_with_a_signed_token_request() {
    let registry = Registry::start();
    let server = Server::start();
    let (faults, remote, _dir) = pushed_and_removed(&registry, &server);
    faults.auth.store(true, Ordering::SeqCst);
    let pull = server.run(&["pull", "--insecure", &remote]);
    assert!(pull.status.success(), "{}", stderr(&pull));
    assert!(faults.tokens_issued.load(Ordering::SeqCst) >= 1);
    // The key was made on first use, where Ollama keeps it.
    let key = server.home.path().join(".ollama/id_ed25519");
    assert!(key.exists(), "no key at {}", key.display());
    chat_works(&server, &remote).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_part_is_detected_and_retried() {
    let registry = Registry::start();
    let server = Server::start_with_env(&[
        ("ROLLAMA_PULL_PART_SIZE", PART_SIZE),
        ("ROLLAMA_PULL_STALL_TIMEOUT", "2"),
    ]);
    let (faults, remote, _dir) = pushed_and_removed(&registry, &server);
    faults.stall_after.store(4_000_000, Ordering::SeqCst);
    let started = std::time::Instant::now();
    let pull = server.run(&["pull", "--insecure", &remote]);
    assert!(pull.status.success(), "{}", stderr(&pull));
    assert!(started.elapsed() < Duration::from_secs(60));
    chat_works(&server, &remote).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_pulls_of_one_model_share_one_download() {
    let registry = Registry::start();
    let server = Server::start_with_env(&[("ROLLAMA_PULL_PART_SIZE", PART_SIZE)]);
    let (faults, remote, _dir) = pushed_and_removed(&registry, &server);
    faults.rate.store(60_000_000, Ordering::SeqCst);
    faults.blob_bytes.store(0, Ordering::SeqCst);
    let body = json!({"model": remote, "insecure": true, "stream": false});
    let (a, b) = tokio::join!(
        common::post(&server, "/api/pull", body.clone()),
        common::post(&server, "/api/pull", body.clone())
    );
    assert_eq!(a, (200, json!({"status": "success"})));
    assert_eq!(b, (200, json!({"status": "success"})));
    let total: u64 = std::fs::metadata(common::test_gguf()).unwrap().len();
    let fetched = faults.blob_bytes.load(Ordering::SeqCst);
    assert!(
        fetched <= total + 64 * 1024,
        "two pulls fetched {fetched} bytes for a {total}-byte model"
    );
}

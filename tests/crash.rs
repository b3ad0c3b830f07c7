//! Crash safety: the server is killed with SIGKILL at random moments while it creates, copies
//! and deletes models and receives blob uploads, 60 times over one store. After every restart
//! the store must be consistent: every listed model is whole (its manifest's blobs exist with
//! their sizes and digests), no temp file survives the restart, and at the end every listed
//! model loads.

mod common;

use common::{sha256_hex, test_gguf, Server};
use rand::{rngs::StdRng, Rng, SeedableRng};
use serde_json::{json, Value};
use std::path::Path;
use std::time::Duration;

const KILLS: usize = 60;

/// Temp files anywhere in the store.
fn temp_files(models: &Path) -> Vec<String> {
    let mut found = Vec::new();
    let mut dirs = vec![models.to_path_buf()];
    while let Some(dir) = dirs.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() {
                dirs.push(path);
            } else if entry.file_name().to_string_lossy().starts_with(".tmp-") {
                found.push(path.display().to_string());
            }
        }
    }
    found
}

/// Every listed model is whole; returns the listed names.
async fn check_store(server: &Server) -> Vec<String> {
    let client = reqwest::Client::new();
    let tags: Value = client
        .get(server.url("/api/tags"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let mut names = Vec::new();
    for model in tags["models"].as_array().unwrap() {
        let name = model["name"].as_str().unwrap().to_string();
        let show = client
            .post(server.url("/api/show"))
            .json(&json!({"model": name}))
            .send()
            .await
            .unwrap();
        assert_eq!(show.status(), 200, "{name} is listed but cannot be shown");
        names.push(name);
    }
    // The manifests themselves: every layer's blob is there, whole.
    let mut dirs = vec![server.models.join("manifests")];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).unwrap().flatten() {
            let path = entry.path();
            if path.is_dir() {
                dirs.push(path);
                continue;
            }
            let manifest: Value = serde_json::from_slice(&std::fs::read(&path).unwrap())
                .unwrap_or_else(|e| panic!("{}: not a manifest: {e}", path.display()));
            let mut layers = manifest["layers"].as_array().unwrap().clone();
            layers.push(manifest["config"].clone());
            for layer in layers {
                let digest = layer["digest"].as_str().unwrap();
                let blob = server.models.join("blobs").join(digest.replace(':', "-"));
                let size = std::fs::metadata(&blob)
                    .unwrap_or_else(|_| panic!("{}: blob {digest} missing", path.display()))
                    .len();
                assert_eq!(size, layer["size"].as_u64().unwrap(), "{digest}");
                if size < 1_000_000 {
                    let bytes = std::fs::read(&blob).unwrap();
                    assert_eq!(format!("sha256:{}", sha256_hex(&bytes)), digest);
                }
            }
        }
    }
    names
}

#[tokio::test]
async fn the_store_survives_kill_9_at_any_moment() {
    let dir = tempfile::tempdir().unwrap();
    let models = dir.path().join("models");
    let modelfile_dir = tempfile::tempdir().unwrap();
    std::os::unix::fs::symlink(test_gguf(), modelfile_dir.path().join("model.gguf")).unwrap();
    let mut rng = StdRng::seed_from_u64(20261129);
    let client = reqwest::Client::new();

    // A first model, so that copies and deletes have something to work on.
    let server = Server::start_with_store(&models);
    let base = modelfile_dir.path().join("Modelfile");
    std::fs::write(&base, "FROM ./model.gguf\nSYSTEM base\n").unwrap();
    let output = server
        .rollama()
        .args(["create", "base", "-f", base.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(output.status.success());
    drop(server);
    let weights = sha256_hex(&std::fs::read(test_gguf()).unwrap());

    let mut operations = [0usize; 4];
    let mut interrupted_writes = 0;
    for kill in 0..KILLS {
        let server = Server::start_with_store(&models);
        assert!(
            temp_files(&models).is_empty(),
            "temp files survived a restart: {:?}",
            temp_files(&models)
        );
        let listed = check_store(&server).await;
        let operation = rng.random_range(0..4);
        operations[operation] += 1;
        let existing = listed[rng.random_range(0..listed.len())].clone();
        let request = match operation {
            // Create a new model from the stored weights: new system and parameter layers,
            // a new config and manifest (the request the CLI sends after uploading).
            0 => Some(client.post(server.url("/api/create")).json(&json!({
                "model": format!("made{kill}"),
                "files": {"model.gguf": format!("sha256:{weights}")},
                "system": format!("You are number {kill}."),
                "parameters": {"num_ctx": 512 + kill},
            }))),
            1 => Some(
                client
                    .post(server.url("/api/copy"))
                    .json(&json!({"source": existing, "destination": format!("copy{kill}")})),
            ),
            // Delete, but keep the first model so there is always something to copy.
            2 if existing != "base:latest" => Some(
                client
                    .delete(server.url("/api/delete"))
                    .json(&json!({"model": existing})),
            ),
            2 => Some(client.get(server.url("/api/tags"))),
            // A 4 MB blob upload.
            _ => {
                let body: Vec<u8> = (0..4_000_000).map(|_| rng.random::<u8>()).collect();
                let digest = sha256_hex(&body);
                Some(
                    client
                        .post(server.url(&format!("/api/blobs/sha256:{digest}")))
                        .body(body),
                )
            }
        };
        let task = request.map(|r| tokio::spawn(async move { r.send().await }));
        // Half the kills within 2 ms of the request (copies and deletes take about that
        // long), half anywhere in 60 ms (creates and uploads).
        let delay = if rng.random_bool(0.5) {
            Duration::from_micros(rng.random_range(0..2_000))
        } else {
            Duration::from_micros(rng.random_range(0..60_000))
        };
        tokio::time::sleep(delay).await;
        drop(server); // SIGKILL
        if let Some(task) = task {
            let _ = task.await;
        }
        // What the kill left for the next start to clean up.
        interrupted_writes += temp_files(&models).len();
    }

    // After the last kill: consistent, no temp files, and every listed model loads.
    let server = Server::start_with_store(&models);
    assert!(temp_files(&models).is_empty());
    let listed = check_store(&server).await;
    assert!(listed.contains(&"base:latest".to_string()));
    for name in &listed {
        let response = client
            .post(server.url("/api/generate"))
            .json(&json!({"model": name}))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200, "{name} does not load");
    }
    eprintln!(
        "{KILLS} kills (create {}, copy {}, delete {}, upload {}); {interrupted_writes} temp \
         files of interrupted writes cleaned at restart; {} models at the end",
        operations[0],
        operations[1],
        operations[2],
        operations[3],
        listed.len()
    );
    for op in operations {
        assert!(
            op >= 5,
            "each operation was interrupted several times: {operations:?}"
        );
    }
}

//! Byte compatibility with Ollama's store: a store written exactly as Ollama writes it is
//! listed and shown unchanged, and what rollama writes has Ollama's exact bytes.

mod common;

use common::{sha256_hex, Server};
use serde_json::{json, Value};
use std::path::Path;

/// Writes `content` as a blob the way Ollama names it and returns `sha256:<hex>`.
fn put_blob(store: &Path, content: &[u8]) -> String {
    let hex = sha256_hex(content);
    std::fs::create_dir_all(store.join("blobs")).unwrap();
    std::fs::write(store.join(format!("blobs/sha256-{hex}")), content).unwrap();
    format!("sha256:{hex}")
}

/// An Ollama-written model: manifest and blobs exactly as `ollama create` leaves them.
fn write_ollama_model(store: &Path, manifest_rel: &str, gguf: &[u8]) -> Vec<u8> {
    let model = put_blob(store, gguf);
    let template = "{{ .Prompt }}";
    let template_digest = put_blob(store, template.as_bytes());
    let params = b"{\"stop\":[\"\\u003c|im_end|\\u003e\"],\"temperature\":0.6}\n";
    let params_digest = put_blob(store, params);
    let license = "Apache 2.0";
    let license_digest = put_blob(store, license.as_bytes());
    let config = b"{\"model_format\":\"gguf\",\"model_family\":\"llama\",\"model_families\":[\"llama\"],\"model_type\":\"134.52M\",\"file_type\":\"Q4_1\",\"architecture\":\"amd64\",\"os\":\"linux\"}\n";
    let config_digest = put_blob(store, config);
    let manifest = format!(
        "{{\"schemaVersion\":2,\"mediaType\":\"application/vnd.docker.distribution.manifest.v2+json\",\
         \"config\":{{\"mediaType\":\"application/vnd.docker.container.image.v1+json\",\"digest\":\"{config_digest}\",\"size\":{}}},\
         \"layers\":[{{\"mediaType\":\"application/vnd.ollama.image.model\",\"digest\":\"{model}\",\"size\":{}}},\
         {{\"mediaType\":\"application/vnd.ollama.image.template\",\"digest\":\"{template_digest}\",\"size\":{}}},\
         {{\"mediaType\":\"application/vnd.ollama.image.license\",\"digest\":\"{license_digest}\",\"size\":{}}},\
         {{\"mediaType\":\"application/vnd.ollama.image.params\",\"digest\":\"{params_digest}\",\"size\":{}}}]}}\n",
        config.len(),
        gguf.len(),
        template.len(),
        license.len(),
        params.len()
    );
    let path = store.join("manifests").join(manifest_rel);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(&path, manifest.as_bytes()).unwrap();
    manifest.into_bytes()
}

#[tokio::test]
async fn an_ollama_store_is_listed_and_shown_unchanged() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("models");
    let gguf = std::fs::read(common::test_gguf()).unwrap();
    let library = write_ollama_model(&store, "registry.ollama.ai/library/fixture/latest", &gguf);
    let hf = write_ollama_model(&store, "hf.co/someuser/Some-Repo-GGUF/Q4_K_M", &gguf);
    let snapshot = |p: &Path| -> Vec<(String, Vec<u8>)> {
        let mut files = Vec::new();
        for entry in walk(p) {
            files.push((entry.display().to_string(), std::fs::read(&entry).unwrap()));
        }
        files.sort();
        files
    };
    let before = snapshot(&store);

    let server = Server::start_with_store(&store);
    let tags = common::get_json(&server, "/api/tags").await;
    let mut names: Vec<&str> = tags["models"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["name"].as_str().unwrap())
        .collect();
    names.sort();
    assert_eq!(
        names,
        ["fixture:latest", "hf.co/someuser/Some-Repo-GGUF:Q4_K_M"]
    );
    for model in tags["models"].as_array().unwrap() {
        let expected = if model["name"] == "fixture:latest" {
            &library
        } else {
            &hf
        };
        assert_eq!(model["digest"], sha256_hex(expected));
        assert_eq!(model["details"]["quantization_level"], "Q4_1");
    }

    let list = common::stdout(&server.run(&["list"]));
    assert!(list.contains("fixture:latest"), "{list}");
    assert!(
        list.contains("hf.co/someuser/Some-Repo-GGUF:Q4_K_M"),
        "{list}"
    );
    let id = &sha256_hex(&library)[..12];
    assert!(list.contains(id), "{list}");

    let show = server.run(&["show", "fixture", "--parameters"]);
    let text = common::stdout(&show);
    assert!(
        text.contains("stop                           \"<|im_end|>\""),
        "{text}"
    );
    assert!(
        text.contains("temperature                    0.6"),
        "{text}"
    );
    let show = common::stdout(&server.run(&["show", "hf.co/someuser/Some-Repo-GGUF:Q4_K_M"]));
    assert!(show.contains("architecture        llama"), "{show}");
    assert!(show.contains("  License\n    Apache 2.0    \n"), "{show}");

    drop(server);
    assert_eq!(
        snapshot(&store),
        before,
        "listing and showing changed the store"
    );
}

#[tokio::test]
async fn what_rollama_writes_has_ollamas_bytes() {
    let server = Server::start();
    let gguf = std::fs::read(common::test_gguf()).unwrap();
    let model = format!("sha256:{}", sha256_hex(&gguf));
    let upload = reqwest::Client::new()
        .post(server.url(&format!("/api/blobs/{model}")))
        .body(gguf.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(upload.status(), 201);
    let response = reqwest::Client::new()
        .post(server.url("/api/create"))
        .json(&json!({
            "model": "written",
            "files": {"smol.gguf": model},
            "template": "{{ .Prompt }}",
            "parameters": {"stop": ["<|im_end|>"], "temperature": 1.0, "top_k": 20},
            "messages": [{"role": "User", "content": "a & b"}],
            "stream": false,
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);

    let manifest_bytes = std::fs::read(
        server
            .models
            .join("manifests/registry.ollama.ai/library/written/latest"),
    )
    .unwrap();
    let manifest: Value = serde_json::from_slice(&manifest_bytes).unwrap();
    let blob = |digest: &Value| -> Vec<u8> {
        let name = digest.as_str().unwrap().replace(':', "-");
        std::fs::read(server.models.join("blobs").join(name)).unwrap()
    };
    // Every referenced blob exists under the name of its own sha256.
    for layer in manifest["layers"]
        .as_array()
        .unwrap()
        .iter()
        .chain([&manifest["config"]])
    {
        let content = blob(&layer["digest"]);
        assert_eq!(layer["digest"], format!("sha256:{}", sha256_hex(&content)));
        assert_eq!(layer["size"], content.len());
    }
    let layers = manifest["layers"].as_array().unwrap();
    let media: Vec<&str> = layers
        .iter()
        .map(|l| l["mediaType"].as_str().unwrap())
        .collect();
    assert_eq!(
        media,
        [
            "application/vnd.ollama.image.model",
            "application/vnd.ollama.image.template",
            "application/vnd.ollama.image.params",
            "application/vnd.ollama.image.messages",
        ]
    );
    // Go's json.Encoder output, byte for byte.
    assert_eq!(
        String::from_utf8(blob(&layers[2]["digest"])).unwrap(),
        "{\"stop\":[\"\\u003c|im_end|\\u003e\"],\"temperature\":1,\"top_k\":20}\n"
    );
    assert_eq!(
        String::from_utf8(blob(&layers[3]["digest"])).unwrap(),
        "[{\"role\":\"user\",\"content\":\"a \\u0026 b\"}]\n"
    );
    assert_eq!(
        String::from_utf8(blob(&manifest["config"]["digest"])).unwrap(),
        "{\"model_format\":\"gguf\",\"model_family\":\"llama\",\"model_families\":[\"llama\"],\
         \"model_type\":\"134.52M\",\"file_type\":\"Q4_1\",\"architecture\":\"amd64\",\"os\":\"linux\"}\n"
    );
    let expected_manifest = format!(
        "{{\"schemaVersion\":2,\"mediaType\":\"application/vnd.docker.distribution.manifest.v2+json\",\
         \"config\":{{\"mediaType\":\"application/vnd.docker.container.image.v1+json\",\"digest\":{},\"size\":{}}},\
         \"layers\":[{{\"mediaType\":\"application/vnd.ollama.image.model\",\"digest\":\"{model}\",\"size\":{},\"from\":\"smol.gguf\"}},",
        manifest["config"]["digest"],
        manifest["config"]["size"],
        gguf.len()
    );
    let text = String::from_utf8(manifest_bytes).unwrap();
    assert!(text.starts_with(&expected_manifest), "{text}");
    assert!(text.ends_with("}]}\n"), "{text}");
}

fn walk(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            out.extend(walk(&path));
        } else {
            out.push(path);
        }
    }
    out
}

/// The names `/api/tags` lists.
async fn listed(server: &Server) -> Vec<String> {
    let tags: Value = reqwest::get(server.url("/api/tags"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    tags["models"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["name"].as_str().unwrap().to_string())
        .collect()
}

#[tokio::test]
async fn without_ollama_models_the_store_is_ollamas_own_place() {
    let home = tempfile::tempdir().unwrap();
    let ollama_store = home.path().join(".ollama/models");
    let gguf = std::fs::read(common::test_gguf()).unwrap();
    // Ollama's library, where Ollama keeps it: a rollama swapped in lists it.
    write_ollama_model(
        &ollama_store,
        "registry.ollama.ai/library/fixture/latest",
        &gguf,
    );
    let server = Server::start_in_home(home);
    assert_eq!(listed(&server).await, ["fixture:latest"]);
}

#[tokio::test]
async fn an_earlier_rollama_store_moves_to_ollamas_place_once() {
    let home = tempfile::tempdir().unwrap();
    let legacy = home.path().join(".local/share/rollama/models");
    let gguf = std::fs::read(common::test_gguf()).unwrap();
    write_ollama_model(&legacy, "registry.ollama.ai/library/old/latest", &gguf);
    let server = Server::start_in_home(home);
    assert_eq!(listed(&server).await, ["old:latest"]);
    let home = server.home.path().to_path_buf();
    assert!(home
        .join(".ollama/models/manifests/registry.ollama.ai/library/old/latest")
        .is_file());
    assert!(!home.join(".local/share/rollama/models").exists());
    drop(server);

    // When both places hold models, both stay where they are: the server uses Ollama's.
    let home = tempfile::tempdir().unwrap();
    write_ollama_model(
        &home.path().join(".local/share/rollama/models"),
        "registry.ollama.ai/library/old/latest",
        &gguf,
    );
    write_ollama_model(
        &home.path().join(".ollama/models"),
        "registry.ollama.ai/library/new/latest",
        &gguf,
    );
    let server = Server::start_in_home(home);
    assert_eq!(listed(&server).await, ["new:latest"]);
    assert!(server
        .home
        .path()
        .join(".local/share/rollama/models/manifests")
        .is_dir());
}

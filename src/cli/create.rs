//! `rollama create`: parse the Modelfile here, upload each local FROM/ADAPTER/DRAFT file as a blob
//! (skipping blobs the server already has), then `POST /api/create` and show its progress.
//! Paths are relative to the Modelfile's directory, as in Ollama.

use super::progress::StatusPrinter;
use crate::cli::CreateArgs;
use crate::client::Client;
use crate::modelfile::{self, Modelfile};
use anyhow::{bail, Context, Result};
use serde_json::{json, Map, Value};
use sha2::{Digest as _, Sha256};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

pub async fn create(client: &Client, args: CreateArgs) -> Result<()> {
    let path = args
        .file
        .clone()
        .unwrap_or_else(|| PathBuf::from("Modelfile"));
    let bytes = fs_err::read(&path).context("reading the Modelfile")?;
    let parsed = modelfile::parse_bytes(&bytes)?;
    for warning in &parsed.warnings {
        eprintln!("{warning}");
    }
    let dir = path
        .parent()
        .map(Path::to_path_buf)
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or_else(|| PathBuf::from("."));
    let mut printer = StatusPrinter::new();
    let mut request = build_request(&parsed, &dir)?;
    request.insert("model".into(), json!(args.model));
    if let Some(q) = args.quantize {
        request.insert("quantize".into(), json!(q));
    }

    printer.status("gathering model components");
    for key in ["files", "adapters", "draft_files"] {
        let Some(Value::Object(files)) = request.get(key).cloned() else {
            continue;
        };
        let mut uploaded = Map::new();
        for (file, local) in files {
            let local = PathBuf::from(local.as_str().unwrap_or_default());
            let digest = upload(client, &local, &mut printer).await?;
            uploaded.insert(file, json!(digest));
        }
        request.insert(key.into(), Value::Object(uploaded));
    }

    let body = Value::Object(request);
    client
        .stream("/api/create", &body, |line| {
            if let Some(status) = line["status"].as_str() {
                printer.status(status);
            }
        })
        .await?;
    printer.finish();
    Ok(())
}

/// Hashes `path` and uploads it unless the server has the blob already.
async fn upload(client: &Client, path: &Path, printer: &mut StatusPrinter) -> Result<String> {
    let hashing = path.to_path_buf();
    let digest = tokio::task::spawn_blocking(move || -> Result<String> {
        let mut file = fs_err::File::open(&hashing)?;
        let mut hasher = Sha256::new();
        std::io::copy(&mut file, &mut hasher)?;
        Ok(format!("sha256:{}", hex::encode(hasher.finalize())))
    })
    .await??;
    if client.has_blob(&digest).await? {
        return Ok(digest);
    }
    let total = fs_err::metadata(path)?.len().max(1);
    let status = format!("copying file {digest} 0%");
    printer.status(&status);
    let percent = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let seen = percent.clone();
    client
        .upload_blob(&digest, path, move |sent| {
            seen.store(sent * 100 / total, std::sync::atomic::Ordering::Relaxed);
        })
        .await?;
    let done = percent.load(std::sync::atomic::Ordering::Relaxed);
    printer.update(&format!("copying file {digest} {done}%"));
    Ok(digest)
}

/// Ollama's `Modelfile.CreateRequest`: the JSON body of `/api/create`, with local file paths
/// in `files`/`adapters` (replaced by digests once uploaded).
pub fn build_request(parsed: &Modelfile, dir: &Path) -> Result<Map<String, Value>> {
    let mut request = Map::new();
    let mut files: BTreeMap<String, PathBuf> = BTreeMap::new();
    let mut adapters: BTreeMap<String, PathBuf> = BTreeMap::new();
    let mut drafts: BTreeMap<String, PathBuf> = BTreeMap::new();
    let mut licenses = Vec::new();
    let mut messages = Vec::new();
    let mut saw_from = false;
    for command in &parsed.commands {
        match command.name.as_str() {
            "model" => {
                saw_from = true;
                let path = expand(&command.args, dir);
                if path.exists() {
                    files.extend(model_files(&path)?);
                } else {
                    request.insert("from".into(), json!(command.args));
                }
            }
            "adapter" => {
                let path = expand(&command.args, dir);
                if !path.exists() {
                    bail!("invalid adapter path: {}", command.args);
                }
                adapters.extend(model_files(&path)?);
            }
            "draft" => {
                let path = expand(&command.args, dir);
                if !path.exists() {
                    bail!("invalid draft path: {}", command.args);
                }
                drafts.extend(model_files(&path)?);
            }
            "template" | "system" | "renderer" | "parser" | "requires" => {
                request.insert(command.name.clone(), json!(command.args));
            }
            "license" => licenses.push(command.args.clone()),
            "message" => {
                let (role, content) = command
                    .args
                    .split_once(": ")
                    .unwrap_or((command.args.as_str(), ""));
                messages.push(json!({"role": role, "content": content}));
            }
            _ => {}
        }
    }
    if !saw_from {
        bail!("no FROM line");
    }
    let parameters = parsed.typed_parameters()?;
    if !parameters.is_empty() {
        request.insert("parameters".into(), Value::Object(parameters));
    }
    if !licenses.is_empty() {
        request.insert("license".into(), json!(licenses));
    }
    if !messages.is_empty() {
        request.insert("messages".into(), json!(messages));
    }
    let to_json = |map: BTreeMap<String, PathBuf>| {
        Value::Object(
            map.into_iter()
                .map(|(k, v)| (k, json!(v.to_string_lossy())))
                .collect(),
        )
    };
    if !files.is_empty() {
        request.insert("files".into(), to_json(files));
    }
    if !adapters.is_empty() {
        request.insert("adapters".into(), to_json(adapters));
    }
    if !drafts.is_empty() {
        request.insert("draft_files".into(), to_json(drafts));
    }
    Ok(request)
}

/// `~` and Modelfile-relative paths, as Ollama expands FROM/ADAPTER arguments.
fn expand(arg: &str, dir: &Path) -> PathBuf {
    let path = if let Some(rest) = arg.strip_prefix("~/") {
        directories::BaseDirs::new()
            .map(|d| d.home_dir().join(rest))
            .unwrap_or_else(|| PathBuf::from(arg))
    } else {
        PathBuf::from(arg)
    };
    if path.is_absolute() {
        path
    } else {
        dir.join(path)
    }
}

/// A file is used as is; a directory contributes its GGUF files or, failing those, the files
/// of a Hugging Face model (safetensors, JSON configs and tokenizer), each by its name
/// relative to the directory.
fn model_files(path: &Path) -> Result<Vec<(String, PathBuf)>> {
    if path.is_file() {
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        return Ok(vec![(name, path.to_path_buf())]);
    }
    let mut found: Vec<(String, PathBuf)> = fs_err::read_dir(path)?
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "gguf") && p.is_file())
        .map(|p| {
            (
                p.file_name()
                    .unwrap_or_default()
                    .to_string_lossy()
                    .into_owned(),
                p,
            )
        })
        .collect();
    if found.is_empty() {
        let names = crate::convert::directory_files(path)
            .with_context(|| format!("reading {}", path.display()))?;
        if names.iter().any(|n| n.ends_with(".safetensors")) {
            found = names
                .into_iter()
                .map(|n| (n.clone(), path.join(n)))
                .collect();
        }
    }
    found.sort();
    if found.is_empty() {
        bail!("no GGUF or safetensors files found in {}", path.display());
    }
    Ok(found)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn from_a_missing_path_is_a_model_name() {
        let parsed =
            modelfile::parse("FROM llama3.2\nSYSTEM hi\nPARAMETER temperature 0.5").unwrap();
        let request = build_request(&parsed, Path::new("/nonexistent-dir")).unwrap();
        assert_eq!(request["from"], json!("llama3.2"));
        assert_eq!(request["system"], json!("hi"));
        assert_eq!(request["parameters"], json!({"temperature": 0.5}));
        assert!(request.get("files").is_none());
    }

    #[test]
    fn from_a_relative_file_resolves_against_the_modelfile_directory() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("m.gguf"), b"GGUF").unwrap();
        let parsed = modelfile::parse("FROM ./m.gguf\nMESSAGE user hello there").unwrap();
        let request = build_request(&parsed, dir.path()).unwrap();
        assert_eq!(
            request["files"]["m.gguf"],
            json!(dir.path().join("./m.gguf").to_string_lossy())
        );
        assert_eq!(
            request["messages"],
            json!([{"role": "user", "content": "hello there"}])
        );
    }

    #[test]
    fn from_a_hugging_face_directory_uploads_its_model_files_by_relative_name() {
        let dir = tempfile::tempdir().unwrap();
        for name in [
            "model.safetensors",
            "config.json",
            "tokenizer.json",
            "README.md",
            "vocab.txt",
        ] {
            std::fs::write(dir.path().join(name), b"{}").unwrap();
        }
        std::fs::create_dir(dir.path().join("1_Pooling")).unwrap();
        std::fs::write(dir.path().join("1_Pooling/config.json"), b"{}").unwrap();
        let parsed = modelfile::parse("FROM .").unwrap();
        let request = build_request(&parsed, dir.path()).unwrap();
        let files: Vec<&String> = request["files"].as_object().unwrap().keys().collect();
        assert_eq!(
            files,
            [
                "1_Pooling/config.json",
                "config.json",
                "model.safetensors",
                "tokenizer.json"
            ]
        );
        let empty = tempfile::tempdir().unwrap();
        let error = build_request(&parsed, empty.path())
            .unwrap_err()
            .to_string();
        assert!(error.contains("no GGUF or safetensors files"), "{error}");
    }
}

//! `pull` and `push` as Ollama runs them, reporting Ollama's status lines. A pulled model
//! appears only when every blob is in the store and verified: the manifest is written last,
//! atomically, byte for byte as the registry sent it.

use super::download::Downloads;
use super::{Registry, RegistryError, Repo};
use crate::server::error::ApiError;
use crate::server::progress::Progress;
use crate::store::{Digest, Manifest, ModelName, Store};
use serde_json::json;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How often a running transfer reports (Ollama: 60 ms).
const REPORT_EVERY: Duration = Duration::from_millis(60);

/// `pulling 6a0746a1ec1a` for a digest.
fn short(digest: &Digest) -> String {
    digest.hex()[..12].to_string()
}

fn manifest_error(prefix: &str, e: RegistryError) -> ApiError {
    match e {
        RegistryError::Insecure => ApiError::bad_request(e.to_string()),
        e => ApiError::internal(format!("{prefix}: {e}")),
    }
}

/// Pulls `name` into `store`, reporting on `progress`.
pub async fn pull(
    registry: Arc<Registry>,
    downloads: Arc<Downloads>,
    store: Store,
    name: ModelName,
    insecure: bool,
    progress: Progress,
) -> Result<(), ApiError> {
    let repo = Repo::of(&name, insecure).map_err(|e| manifest_error("pull model manifest", e))?;
    progress.emit_status("pulling manifest").await;
    let bytes = registry
        .manifest(&repo)
        .await
        .map_err(|e| manifest_error("pull model manifest", e))?;
    let manifest: Manifest = serde_json::from_slice(&bytes)
        .map_err(|e| ApiError::internal(format!("pull model manifest: invalid manifest: {e}")))?;
    for layer in manifest.blobs() {
        let mut waiter = downloads.fetch(registry.clone(), &store, &repo, layer.digest, layer.size);
        let mut last_report: Option<Instant> = None;
        loop {
            let status = waiter.next().await;
            let due = last_report.is_none_or(|at| at.elapsed() >= REPORT_EVERY);
            if due || status.outcome.is_some() {
                last_report = Some(Instant::now());
                let line = json!({
                    "status": format!("pulling {}", short(&layer.digest)),
                    "digest": layer.digest.to_string(),
                    "total": status.total,
                    "completed": status.completed,
                });
                if !progress.emit(line).await {
                    // The client left: dropping the waiter stops the download if it was the
                    // last one; what is on disk stays for the next pull.
                    return Ok(());
                }
            }
            match status.outcome {
                None => {}
                Some(Ok(())) => break,
                Some(Err(message)) => return Err(ApiError::internal(message)),
            }
        }
    }
    progress.emit_status("verifying sha256 digest").await;
    // Each blob was hashed before it was moved into the store; check they are all still there.
    for layer in manifest.blobs() {
        if !store.has_blob(&layer.digest) {
            return Err(ApiError::internal(format!(
                "blob {} is missing after download",
                layer.digest
            )));
        }
    }
    progress.emit_status("writing manifest").await;
    // An existing model's spelling on disk wins (Ollama's `getExistingName`).
    let old = store.find(&name)?;
    let write_store = store.clone();
    let write_name = old
        .as_ref()
        .map_or_else(|| name.clone(), |m| m.name.clone());
    tokio::task::spawn_blocking(move || write_store.write_manifest_bytes(&write_name, &bytes))
        .await
        .map_err(ApiError::internal)??;
    if let Some(old) = old {
        if !crate::env::bool_var(crate::env::OLLAMA_NOPRUNE, false)
            && old
                .manifest
                .digests()
                .any(|d| !manifest.digests().any(|n| n == d))
        {
            progress.emit_status("removing unused layers").await;
            store.remove_unreferenced(old.manifest.digests())?;
        }
    }
    progress.emit_status("success").await;
    Ok(())
}

/// Pushes `name` from `store` to its registry, reporting on `progress`.
pub async fn push(
    registry: Arc<Registry>,
    store: Store,
    name: ModelName,
    insecure: bool,
    progress: Progress,
) -> Result<(), ApiError> {
    let repo = Repo::of(&name, insecure).map_err(|e| manifest_error("push", e))?;
    progress.emit_status("retrieving manifest").await;
    let Some(model) = store.find(&name)? else {
        progress.emit_status("couldn't retrieve manifest").await;
        return Err(ApiError::not_found(format!(
            "model '{}' not found",
            name.display_shortest()
        )));
    };
    store
        .check(&model)
        .map_err(|problem| ApiError::internal(format!("model is damaged: {problem}")))?;
    for layer in model.manifest.blobs() {
        let status = format!("pushing {}", short(&layer.digest));
        let sent = Arc::new(std::sync::atomic::AtomicU64::new(0));
        let from = ModelName::parse(&layer.from)
            .ok()
            .filter(|f| f.host.eq_ignore_ascii_case(&name.host))
            .map(|f| format!("{}/{}", f.namespace, f.model));
        let counter = sent.clone();
        let blob = store.blob_path(&layer.digest);
        let upload = registry.upload_blob(&repo, &layer.digest, &blob, from.as_deref(), move |n| {
            counter.fetch_add(n, std::sync::atomic::Ordering::Relaxed);
        });
        tokio::pin!(upload);
        let line = |completed: u64| {
            json!({"status": status, "digest": layer.digest.to_string(),
                   "total": layer.size, "completed": completed})
        };
        if !progress.emit(line(0)).await {
            return Ok(());
        }
        loop {
            tokio::select! {
                result = &mut upload => {
                    result.map_err(|e| ApiError::internal(format!("push: {e}")))?;
                    break;
                }
                () = tokio::time::sleep(REPORT_EVERY) => {
                    let completed = sent.load(std::sync::atomic::Ordering::Relaxed);
                    if !progress.emit(line(completed.min(layer.size))).await {
                        return Ok(());
                    }
                }
            }
        }
        progress.emit(line(layer.size)).await;
    }
    progress.emit_status("pushing manifest").await;
    let bytes = std::fs::read(&model.path).map_err(ApiError::internal)?;
    registry
        .put_manifest(&repo, &bytes)
        .await
        .map_err(|e| ApiError::internal(format!("push manifest: {e}")))?;
    progress.emit_status("success").await;
    Ok(())
}

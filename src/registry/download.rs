//! Blob downloads: parallel ranged parts written into `blobs/sha256-<hex>-partial` (never a
//! name the store lists), each part's progress kept in `…-partial-<N>` so an interrupted pull
//! — a dropped connection, a cancelled client, a killed server — resumes where it stopped;
//! stalled parts retried with backoff; the whole blob hashed before it is renamed into place.
//! Concurrent pulls of one blob share one download, which stops when its last waiter leaves.

use super::{Registry, RegistryError, Repo};
use crate::store::{Digest, Store};
use futures_util::StreamExt;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

/// Bytes per part: total/16, clamped to [100 MB, 1000 MB] (Ollama's sizing). Tests make parts
/// small so that a 98 MB model is fetched in several.
pub const ROLLAMA_PULL_PART_SIZE: &str = "ROLLAMA_PULL_PART_SIZE";
/// Seconds without a byte before a part counts as stalled and is retried. Default 30.
pub const ROLLAMA_PULL_STALL_TIMEOUT: &str = "ROLLAMA_PULL_STALL_TIMEOUT";

const MIN_PART: u64 = 100_000_000;
const MAX_PART: u64 = 1_000_000_000;
/// Parts fetched at once.
const PARALLEL_PARTS: usize = 8;
/// Retries of one part before the pull fails (waits 1, 2, 4, … 32 s between them).
const RETRIES: u32 = 6;
/// A part's state is saved after this many new bytes (and whenever it stops).
const SAVE_EVERY: u64 = 1 << 20;

/// Where a download stands, as its waiters see it.
#[derive(Debug, Clone, Default)]
pub struct Status {
    pub completed: u64,
    pub total: u64,
    /// Set once: `Ok` when the blob is in the store, verified.
    pub outcome: Option<Result<(), String>>,
}

/// One download, shared by everyone pulling that blob.
struct Shared {
    status: watch::Sender<Status>,
    waiters: AtomicUsize,
    cancel: CancellationToken,
}

impl Shared {
    /// A download in `status` with its first waiter, who sees the status at once.
    fn start(status: Status) -> (Waiter, Arc<Shared>) {
        let (sender, mut receiver) = watch::channel(status);
        receiver.mark_changed();
        let shared = Arc::new(Shared {
            status: sender,
            waiters: AtomicUsize::new(1),
            cancel: CancellationToken::new(),
        });
        (
            Waiter {
                shared: shared.clone(),
                receiver,
            },
            shared,
        )
    }
}

/// Every download in progress.
pub struct Downloads {
    active: Mutex<HashMap<Digest, Arc<Shared>>>,
    part_size: Option<u64>,
    stall: Duration,
}

/// A pull's handle on a download: progress as it changes; dropping the last handle of an
/// unfinished download cancels it (what is on disk stays, for the next pull to resume).
pub struct Waiter {
    shared: Arc<Shared>,
    receiver: watch::Receiver<Status>,
}

impl Waiter {
    /// The next change (the first call returns the current state at once).
    pub async fn next(&mut self) -> Status {
        let _ = self.receiver.changed().await;
        self.receiver.borrow_and_update().clone()
    }
}

impl Drop for Waiter {
    fn drop(&mut self) {
        if self.shared.waiters.fetch_sub(1, Ordering::SeqCst) == 1
            && self.shared.status.borrow().outcome.is_none()
        {
            self.shared.cancel.cancel();
        }
    }
}

/// A part of a blob, saved as Ollama's `{"N","Offset","Size","Completed"}`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
struct Part {
    #[serde(rename = "N")]
    n: usize,
    #[serde(rename = "Offset")]
    offset: u64,
    #[serde(rename = "Size")]
    size: u64,
    #[serde(rename = "Completed")]
    completed: u64,
}

/// What a blob download needs.
#[derive(Clone)]
struct Job {
    registry: Arc<Registry>,
    store: Store,
    repo: Repo,
    digest: Digest,
    total: u64,
    shared: Arc<Shared>,
    file: Arc<std::fs::File>,
    stall: Duration,
}

impl Default for Downloads {
    fn default() -> Self {
        Downloads::from_env()
    }
}

impl Downloads {
    pub fn from_env() -> Downloads {
        let number = |key: &str| crate::env::var(key).parse::<u64>().ok().filter(|n| *n > 0);
        Downloads {
            active: Mutex::new(HashMap::new()),
            part_size: number(ROLLAMA_PULL_PART_SIZE),
            stall: Duration::from_secs(number(ROLLAMA_PULL_STALL_TIMEOUT).unwrap_or(30)),
        }
    }

    /// Starts (or joins) the download of `digest` (`total` bytes) from `repo` into `store`.
    pub fn fetch(
        self: &Arc<Downloads>,
        registry: Arc<Registry>,
        store: &Store,
        repo: &Repo,
        digest: Digest,
        total: u64,
    ) -> Waiter {
        let mut active = self.active.lock().unwrap_or_else(|e| e.into_inner());
        if store.has_blob(&digest) {
            return Shared::start(Status {
                completed: total,
                total,
                outcome: Some(Ok(())),
            })
            .0;
        }
        if let Some(shared) = active.get(&digest) {
            if !shared.cancel.is_cancelled() {
                shared.waiters.fetch_add(1, Ordering::SeqCst);
                let mut receiver = shared.status.subscribe();
                receiver.mark_changed();
                return Waiter {
                    shared: shared.clone(),
                    receiver,
                };
            }
        }
        let (waiter, shared) = Shared::start(Status {
            completed: 0,
            total,
            outcome: None,
        });
        active.insert(digest, shared.clone());
        drop(active);
        let downloads = self.clone();
        let (store, repo, task_shared) = (store.clone(), repo.clone(), shared.clone());
        tokio::spawn(async move {
            let outcome = downloads
                .download(registry, store, repo, digest, total, task_shared.clone())
                .await;
            if let Err(message) = &outcome {
                eprintln!("pull {digest}: {message}");
            }
            // Leave the map first, so a pull that starts now begins a fresh download.
            let mut active = downloads.active.lock().unwrap_or_else(|e| e.into_inner());
            if active
                .get(&digest)
                .is_some_and(|s| Arc::ptr_eq(s, &task_shared))
            {
                active.remove(&digest);
            }
            drop(active);
            task_shared
                .status
                .send_modify(|status| status.outcome = Some(outcome));
        });
        waiter
    }

    fn part_size(&self, total: u64) -> u64 {
        self.part_size
            .unwrap_or_else(|| (total / 16).clamp(MIN_PART, MAX_PART))
            .max(1)
    }

    async fn download(
        &self,
        registry: Arc<Registry>,
        store: Store,
        repo: Repo,
        digest: Digest,
        total: u64,
        shared: Arc<Shared>,
    ) -> Result<(), String> {
        let partial = partial_path(&store, &digest);
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&partial)
            .map_err(|e| format!("{}: {e}", partial.display()))?;
        let existing = file.metadata().map(|m| m.len()).unwrap_or(0);
        if existing != total {
            file.set_len(total).map_err(|e| e.to_string())?;
        }
        let size = self.part_size(total);
        let count = job_parts(total, size);
        let parts: Vec<Part> = (0..count)
            .map(|n| {
                let offset = n as u64 * size;
                let mut part = Part {
                    n,
                    offset,
                    size: size.min(total - offset),
                    completed: 0,
                };
                // Resume only into a partial file that was already the right size.
                if existing == total {
                    if let Some(saved) = load_part(&partial, n) {
                        if saved.offset == part.offset && saved.size == part.size {
                            part.completed = saved.completed.min(part.size);
                        }
                    }
                }
                part
            })
            .collect();
        let resumed: u64 = parts.iter().map(|p| p.completed).sum();
        if resumed > 0 {
            eprintln!("pull {digest}: resuming with {resumed} of {total} bytes already on disk");
        }
        shared.status.send_modify(|s| s.completed = resumed);
        let job = Job {
            registry,
            store: store.clone(),
            repo,
            digest,
            total,
            shared: shared.clone(),
            file: Arc::new(file),
            stall: self.stall,
        };
        let results: Vec<Result<(), String>> = futures_util::stream::iter(parts)
            .map(|part| fetch_part(job.clone(), part))
            .buffer_unordered(PARALLEL_PARTS)
            .collect()
            .await;
        if shared.cancel.is_cancelled() {
            return Err("download cancelled".into());
        }
        if let Some(Err(message)) = results.into_iter().find(Result::is_err) {
            return Err(message);
        }
        // Every byte is there: verify, then move into place.
        let file = job.file.clone();
        let verified = tokio::task::spawn_blocking(move || -> Result<Digest, String> {
            file.sync_all().map_err(|e| e.to_string())?;
            let mut reader = std::io::BufReader::with_capacity(1 << 20, &*file);
            let mut hasher = <sha2::Sha256 as sha2::Digest>::new();
            std::io::copy(&mut reader, &mut hasher).map_err(|e| e.to_string())?;
            Ok(Digest::from_hasher(hasher))
        })
        .await
        .map_err(|e| e.to_string())??;
        if verified != digest {
            remove_partial(&partial, count);
            return Err(format!(
                "digest mismatch, file must be downloaded again: want {digest}, got {verified}"
            ));
        }
        std::fs::rename(&partial, store.blob_path(&digest)).map_err(|e| e.to_string())?;
        remove_partial(&partial, count);
        Ok(())
    }
}

fn job_parts(total: u64, size: u64) -> usize {
    total.div_ceil(size).max(1) as usize
}

/// `blobs/sha256-<hex>-partial`.
pub fn partial_path(store: &Store, digest: &Digest) -> PathBuf {
    let mut path = store.blob_path(digest).into_os_string();
    path.push("-partial");
    PathBuf::from(path)
}

fn part_path(partial: &Path, n: usize) -> PathBuf {
    let mut path = partial.as_os_str().to_owned();
    path.push(format!("-{n}"));
    PathBuf::from(path)
}

fn load_part(partial: &Path, n: usize) -> Option<Part> {
    let bytes = std::fs::read(part_path(partial, n)).ok()?;
    serde_json::from_slice::<Part>(&bytes)
        .ok()
        .filter(|p| p.n == n)
}

fn save_part(partial: &Path, part: &Part) {
    if let Ok(bytes) = serde_json::to_vec(part) {
        let _ = crate::store::atomic_write(&part_path(partial, part.n), &bytes);
    }
}

/// Removes the partial file and its part states.
fn remove_partial(partial: &Path, parts: usize) {
    let _ = std::fs::remove_file(partial);
    for n in 0..parts {
        let _ = std::fs::remove_file(part_path(partial, n));
    }
}

enum PartError {
    /// Worth another try (connection lost, stall, server error).
    Retry(String),
    /// Not (the blob is gone, access denied, the registry misbehaves).
    Fatal(String),
}

/// Fetches what is missing of `part`, retrying with backoff; saves its state as it goes.
async fn fetch_part(job: Job, mut part: Part) -> Result<(), String> {
    let partial = partial_path(&job.store, &job.digest);
    let mut tries = 0;
    loop {
        if part.completed >= part.size {
            save_part(&partial, &part);
            return Ok(());
        }
        let outcome = tokio::select! {
            outcome = fetch_part_once(&job, &partial, &mut part) => outcome,
            () = job.shared.cancel.cancelled() => Err(PartError::Fatal("download cancelled".into())),
        };
        save_part(&partial, &part);
        match outcome {
            Ok(()) => continue,
            Err(PartError::Fatal(message)) => return Err(message),
            Err(PartError::Retry(message)) => {
                tries += 1;
                let short = &job.digest.hex()[..12];
                if tries > RETRIES {
                    return Err(format!(
                        "{short} part {}: {message}; gave up after {RETRIES} retries",
                        part.n
                    ));
                }
                let wait = Duration::from_secs(1 << (tries - 1).min(5));
                eprintln!(
                    "{short} part {} {message}; retrying in {wait:?} (try {tries} of {RETRIES})",
                    part.n
                );
                tokio::select! {
                    () = tokio::time::sleep(wait) => {}
                    () = job.shared.cancel.cancelled() => return Err("download cancelled".into()),
                }
            }
        }
    }
}

async fn fetch_part_once(job: &Job, partial: &Path, part: &mut Part) -> Result<(), PartError> {
    let start = part.offset + part.completed;
    let end = part.offset + part.size;
    let request = job.registry.blob_range(&job.repo, &job.digest, start, end);
    let response = match tokio::time::timeout(job.stall, request).await {
        Err(_) => return Err(PartError::Retry("stalled".into())),
        Ok(Ok(response)) => response,
        Ok(Err(e @ (RegistryError::NotFound | RegistryError::Unauthorized))) => {
            return Err(PartError::Fatal(format!("pulling blob: {e}")))
        }
        Ok(Err(RegistryError::Status { status, body })) if status < 500 && status != 429 => {
            return Err(PartError::Fatal(format!("pulling blob: {status}: {body}")))
        }
        Ok(Err(e)) => return Err(PartError::Retry(e.to_string())),
    };
    if response.status() != reqwest::StatusCode::PARTIAL_CONTENT
        && !(start == 0 && end == job.total)
    {
        return Err(PartError::Fatal(format!(
            "the registry answered a range request with {}",
            response.status()
        )));
    }
    let mut body = response.bytes_stream();
    let mut position = start;
    let mut unsaved = 0;
    while position < end {
        let chunk = match tokio::time::timeout(job.stall, body.next()).await {
            Err(_) => {
                return Err(PartError::Retry(format!(
                    "stalled (no data for {} s)",
                    job.stall.as_secs()
                )))
            }
            Ok(None) => return Err(PartError::Retry("connection closed early".into())),
            Ok(Some(Err(e))) => return Err(PartError::Retry(RegistryError::from(e).to_string())),
            Ok(Some(Ok(chunk))) => chunk,
        };
        let take = chunk.len().min((end - position) as usize);
        job.file
            .write_all_at(&chunk[..take], position)
            .map_err(|e| PartError::Fatal(format!("writing {}: {e}", partial.display())))?;
        position += take as u64;
        part.completed += take as u64;
        unsaved += take as u64;
        job.shared
            .status
            .send_modify(|s| s.completed += take as u64);
        if unsaved >= SAVE_EVERY {
            save_part(partial, part);
            unsaved = 0;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parts_are_sized_like_ollamas_and_their_state_round_trips() {
        let downloads = Downloads {
            active: Mutex::new(HashMap::new()),
            part_size: None,
            stall: Duration::from_secs(30),
        };
        assert_eq!(downloads.part_size(98_000_000), MIN_PART);
        assert_eq!(downloads.part_size(4_000_000_000), 250_000_000);
        assert_eq!(downloads.part_size(40_000_000_000), MAX_PART);
        assert_eq!(job_parts(98_000_000, MIN_PART), 1);
        assert_eq!(job_parts(250, 100), 3);
        assert_eq!(job_parts(0, 100), 1);

        let dir = tempfile::tempdir().unwrap();
        let partial = dir.path().join("sha256-ab-partial");
        let part = Part {
            n: 2,
            offset: 200,
            size: 50,
            completed: 7,
        };
        save_part(&partial, &part);
        let text = std::fs::read_to_string(dir.path().join("sha256-ab-partial-2")).unwrap();
        assert_eq!(text, r#"{"N":2,"Offset":200,"Size":50,"Completed":7}"#);
        assert_eq!(load_part(&partial, 2), Some(part));
        assert_eq!(load_part(&partial, 1), None);
    }
}

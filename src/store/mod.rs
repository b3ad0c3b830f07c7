//! The content-addressed model store, byte-compatible with Ollama's:
//! `manifests/<host>/<namespace>/<model>/<tag>` and `blobs/sha256-<hex>`.
//!
//! Every write is atomic (temp file in the target directory, fsync, rename), a blob only
//! appears under its final name after its sha256 was checked, and blob paths are only ever
//! built from a [`Digest`].

mod digest;
pub mod manifest;
mod name;

pub use digest::{Digest, InvalidDigest, INVALID_DIGEST_FORMAT};
pub use manifest::{Layer, Manifest, ModelConfig};
pub use name::{ModelName, NameError};

use sha2::{Digest as _, Sha256};
use std::collections::HashSet;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

/// Files in `blobs/` younger than this are left alone by the start-up prune: they may be an
/// upload whose `create` has not arrived yet (Ollama's `layerPruneGracePeriod`).
pub const PRUNE_GRACE: Duration = Duration::from_secs(3600);
/// How long an interrupted download's files are kept for a later pull to resume (Ollama
/// prunes them after an hour, losing the resume; rollama keeps them a week).
pub const PARTIAL_GRACE: Duration = Duration::from_secs(7 * 24 * 3600);

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error(transparent)]
    Io(#[from] std::io::Error),
    #[error("digest mismatch, expected \"{expected}\", got \"{actual}\"")]
    DigestMismatch { expected: Digest, actual: Digest },
    #[error("manifest {path}: {source}")]
    BadManifest {
        path: PathBuf,
        source: serde_json::Error,
    },
}

/// A model found in the store.
#[derive(Debug, Clone)]
pub struct StoredModel {
    pub name: ModelName,
    pub manifest: Manifest,
    /// sha256 of the manifest file's bytes: the model's ID.
    pub digest: Digest,
    pub modified: SystemTime,
    pub path: PathBuf,
}

/// A model `list` skips, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Damaged {
    pub name: String,
    pub problem: String,
}

#[derive(Debug, Clone)]
pub struct Store {
    root: PathBuf,
}

impl Store {
    /// Opens (and creates) the store at `root`.
    pub fn open(root: impl Into<PathBuf>) -> Result<Store, StoreError> {
        let store = Store { root: root.into() };
        fs_err::create_dir_all(store.blobs_dir())?;
        fs_err::create_dir_all(store.manifests_dir())?;
        Ok(store)
    }

    pub fn blobs_dir(&self) -> PathBuf {
        self.root.join("blobs")
    }

    pub fn manifests_dir(&self) -> PathBuf {
        self.root.join("manifests")
    }

    /// Files rollama derives from blobs (a translated or converted copy of a model), named
    /// `<blob hex>-…`: `$OLLAMA_MODELS/.rollama/converted`. They go with their blob.
    pub fn derived_dir(&self) -> PathBuf {
        derived_dir_of(&self.blobs_dir())
    }

    /// Removes the files derived from blob `digest`; returns their total size.
    pub fn remove_derived(&self, digest: &Digest) -> u64 {
        let prefix = format!("{}-", digest.hex());
        let Ok(entries) = std::fs::read_dir(self.derived_dir()) else {
            return 0;
        };
        let mut freed = 0;
        for entry in entries.flatten() {
            if entry.file_name().to_string_lossy().starts_with(&prefix) {
                let size = entry.metadata().map(|m| m.len()).unwrap_or(0);
                if std::fs::remove_file(entry.path()).is_ok() {
                    freed += size;
                }
            }
        }
        freed
    }

    /// Removes derived files whose blob is gone (deleted by another program sharing the
    /// store, say), and leftovers whose names name no blob.
    pub fn remove_orphaned_derived(&self) {
        let Ok(entries) = std::fs::read_dir(self.derived_dir()) else {
            return;
        };
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            let source = name.split('-').next().unwrap_or_default();
            let orphan = Digest::parse(&format!("sha256:{source}"))
                .map(|d| !self.has_blob(&d))
                .unwrap_or(true);
            if orphan {
                let _ = std::fs::remove_file(entry.path());
            }
        }
    }

    pub fn blob_path(&self, digest: &Digest) -> PathBuf {
        self.blobs_dir().join(digest.file_name())
    }

    pub fn has_blob(&self, digest: &Digest) -> bool {
        self.blob_path(digest).is_file()
    }

    /// A writer for a new blob that must hash to `expected`; nothing is visible under the
    /// blob's name until [`BlobWriter::commit`] has verified it.
    pub fn blob_writer(&self, expected: Option<Digest>) -> Result<BlobWriter, StoreError> {
        let file = tempfile::Builder::new()
            .prefix(".tmp-upload-")
            .tempfile_in(self.blobs_dir())?;
        Ok(BlobWriter {
            store: self.clone(),
            file,
            hasher: Sha256::new(),
            expected,
        })
    }

    /// Stores small in-memory content (config, template, params…) and reports whether the
    /// blob was new.
    pub fn write_blob(&self, data: &[u8]) -> Result<(Digest, bool), StoreError> {
        let digest = Digest::of(data);
        if self.has_blob(&digest) {
            return Ok((digest, false));
        }
        let mut writer = self.blob_writer(Some(digest))?;
        writer.write_all(data)?;
        writer.commit()?;
        Ok((digest, true))
    }

    /// A temp file in `blobs/` for a blob that is written with seeks (a GGUF); pass it to
    /// [`Store::adopt_temp_file`] when it is complete.
    pub fn temp_file(&self, purpose: &str) -> Result<tempfile::NamedTempFile, StoreError> {
        Ok(tempfile::Builder::new()
            .prefix(&format!(".tmp-{purpose}-"))
            .tempfile_in(self.blobs_dir())?)
    }

    /// Hashes a finished temp file and moves it into place as the blob of that digest.
    pub fn adopt_temp_file(&self, file: tempfile::NamedTempFile) -> Result<Digest, StoreError> {
        let mut reader =
            std::io::BufReader::with_capacity(1 << 20, fs_err::File::open(file.path())?);
        let mut hasher = Sha256::new();
        std::io::copy(&mut reader, &mut hasher)?;
        let digest = Digest::from_hasher(hasher);
        file.as_file().sync_all()?;
        set_readable(file.path())?;
        file.persist(self.blob_path(&digest)).map_err(|e| e.error)?;
        sync_dir(&self.blobs_dir());
        Ok(digest)
    }

    pub fn read_blob(&self, digest: &Digest) -> Result<Vec<u8>, StoreError> {
        Ok(fs_err::read(self.blob_path(digest))?)
    }

    /// Finds the stored manifest for `name`, matching each part case-insensitively as Ollama
    /// does, and returns the name as it is spelled on disk.
    pub fn find(&self, name: &ModelName) -> Result<Option<StoredModel>, StoreError> {
        let exact = self.manifests_dir().join(name.manifest_rel_path());
        if exact.is_file() {
            return self.load(name.clone(), exact).map(Some);
        }
        for model in self.list_names()? {
            if model.0.eq_fold(name) {
                return self.load(model.0, model.1).map(Some);
            }
        }
        Ok(None)
    }

    /// The on-disk name a new model called `name` should use: an existing model's spelling
    /// when one matches case-insensitively (Ollama's `getExistingName`).
    pub fn existing_name(&self, name: &ModelName) -> Result<ModelName, StoreError> {
        Ok(self
            .find(name)?
            .map(|m| m.name)
            .unwrap_or_else(|| name.clone()))
    }

    fn load(&self, name: ModelName, path: PathBuf) -> Result<StoredModel, StoreError> {
        let bytes = fs_err::read(&path)?;
        let manifest: Manifest =
            serde_json::from_slice(&bytes).map_err(|source| StoreError::BadManifest {
                path: path.clone(),
                source,
            })?;
        let modified = fs_err::metadata(&path)?
            .modified()
            .unwrap_or(SystemTime::UNIX_EPOCH);
        Ok(StoredModel {
            name,
            manifest,
            digest: Digest::of(&bytes),
            modified,
            path,
        })
    }

    /// Every `manifests/*/*/*/*` file whose path is a valid model name.
    fn list_names(&self) -> Result<Vec<(ModelName, PathBuf)>, StoreError> {
        let root = self.manifests_dir();
        let mut found = Vec::new();
        for host in read_dirs(&root)? {
            for namespace in read_dirs(&host)? {
                for model in read_dirs(&namespace)? {
                    let Ok(entries) = std::fs::read_dir(&model) else {
                        continue;
                    };
                    for entry in entries.flatten() {
                        let path = entry.path();
                        if !path.is_file() {
                            continue;
                        }
                        let Ok(rel) = path.strip_prefix(&root) else {
                            continue;
                        };
                        if let Some(name) = ModelName::from_manifest_rel_path(rel) {
                            found.push((name, path));
                        }
                    }
                }
            }
        }
        Ok(found)
    }

    /// Every readable model, most recently modified first. Manifests that do not parse are
    /// skipped (Ollama logs and skips them too).
    pub fn list(&self) -> Result<Vec<StoredModel>, StoreError> {
        Ok(self.list_checked()?.0)
    }

    /// Every model whose manifest parses and whose blobs are all present with the sizes the
    /// manifest gives, most recently modified first; and, apart, each damaged model's name
    /// with what is wrong with it.
    pub fn list_checked(&self) -> Result<(Vec<StoredModel>, Vec<Damaged>), StoreError> {
        let mut models = Vec::new();
        let mut damaged = Vec::new();
        for (name, path) in self.list_names()? {
            let shown = name.display_shortest();
            match self.load(name, path) {
                Ok(model) => match self.check(&model) {
                    Ok(()) => models.push(model),
                    Err(problem) => damaged.push(Damaged {
                        name: shown,
                        problem,
                    }),
                },
                Err(e) => damaged.push(Damaged {
                    name: shown,
                    problem: e.to_string(),
                }),
            }
        }
        models.sort_by_key(|m| std::cmp::Reverse(m.modified));
        Ok((models, damaged))
    }

    /// Whether every blob `model` names (config and layers) is present with the size its
    /// manifest gives. A `stat` per blob: contents are verified when blobs are written.
    pub fn check(&self, model: &StoredModel) -> Result<(), String> {
        let manifest = &model.manifest;
        for layer in manifest.blobs() {
            match std::fs::metadata(self.blob_path(&layer.digest)) {
                Ok(meta) if meta.len() == layer.size => {}
                Ok(meta) => {
                    return Err(format!(
                        "blob {} is {} bytes, its manifest says {}",
                        layer.digest,
                        meta.len(),
                        layer.size
                    ))
                }
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                    return Err(format!("blob {} is missing", layer.digest))
                }
                Err(e) => return Err(format!("blob {}: {e}", layer.digest)),
            }
        }
        Ok(())
    }

    /// Writes the manifest for `name` atomically and returns its bytes' digest.
    pub fn write_manifest(
        &self,
        name: &ModelName,
        manifest: &Manifest,
    ) -> Result<Digest, StoreError> {
        self.write_manifest_bytes(name, &manifest.to_go_json())
    }

    /// Writes manifest bytes exactly as given (pulled manifests keep the registry's bytes).
    pub fn write_manifest_bytes(
        &self,
        name: &ModelName,
        bytes: &[u8],
    ) -> Result<Digest, StoreError> {
        let path = self.manifests_dir().join(name.manifest_rel_path());
        atomic_write(&path, bytes)?;
        Ok(Digest::of(bytes))
    }

    /// Copies `source`'s manifest to `destination` (blobs are shared).
    pub fn copy(&self, source: &StoredModel, destination: &ModelName) -> Result<(), StoreError> {
        let bytes = fs_err::read(&source.path)?;
        let destination = self.existing_name(destination)?;
        self.write_manifest_bytes(&destination, &bytes)?;
        Ok(())
    }

    /// Removes a model's manifest, the directories it leaves empty, and every blob of it that
    /// no other manifest references.
    /// Deletes the model called `name`, even one whose manifest no longer parses (its blobs
    /// then stay until `prune`: which of them it used cannot be read). False if there is none.
    pub fn delete_named(&self, name: &ModelName) -> Result<bool, StoreError> {
        match self.find(name) {
            Ok(Some(model)) => self.delete(&model).map(|()| true),
            Ok(None) => Ok(false),
            Err(StoreError::BadManifest { path, .. }) => {
                fs_err::remove_file(&path)?;
                self.prune_empty_dirs(path.parent());
                Ok(true)
            }
            Err(e) => Err(e),
        }
    }

    pub fn delete(&self, model: &StoredModel) -> Result<(), StoreError> {
        fs_err::remove_file(&model.path)?;
        self.prune_empty_dirs(model.path.parent());
        self.remove_unreferenced(model.manifest.digests())
    }

    /// Deletes those of `candidates` that no manifest references any more.
    pub fn remove_unreferenced(
        &self,
        candidates: impl Iterator<Item = Digest>,
    ) -> Result<(), StoreError> {
        let in_use = self.referenced_digests()?;
        for digest in candidates {
            if in_use.contains(&digest) {
                continue;
            }
            match std::fs::remove_file(self.blob_path(&digest)) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(e.into()),
            }
            self.remove_derived(&digest);
        }
        Ok(())
    }

    /// All digests referenced by any manifest. Fails if any manifest is unreadable, so that
    /// a corrupt manifest never causes its blobs to be collected.
    fn referenced_digests(&self) -> Result<HashSet<Digest>, StoreError> {
        let mut in_use = HashSet::new();
        for (name, path) in self.list_names()? {
            let model = self.load(name, path)?;
            in_use.extend(model.manifest.digests());
        }
        Ok(in_use)
    }

    fn prune_empty_dirs(&self, mut dir: Option<&Path>) {
        let root = self.manifests_dir();
        while let Some(d) = dir {
            if d == root || !d.starts_with(&root) {
                break;
            }
            if std::fs::remove_dir(d).is_err() {
                break;
            }
            dir = d.parent();
        }
    }

    /// Removes the temp files of writes that never finished (a crash or `kill -9` between
    /// creating a temp file and renaming it into place): `.tmp-*` in `blobs/` and anywhere
    /// under `manifests/`. Only rollama writes these names; called once at server start.
    /// Returns how many files were removed.
    pub fn remove_temp_files(&self) -> usize {
        let mut removed = 0;
        let mut dirs = vec![self.blobs_dir(), self.manifests_dir(), self.derived_dir()];
        while let Some(dir) = dirs.pop() {
            let Ok(entries) = std::fs::read_dir(&dir) else {
                continue;
            };
            for entry in entries.flatten() {
                let path = entry.path();
                let Ok(kind) = entry.file_type() else {
                    continue;
                };
                if kind.is_dir() {
                    dirs.push(path);
                } else if entry.file_name().to_string_lossy().starts_with(".tmp-")
                    && std::fs::remove_file(&path).is_ok()
                {
                    removed += 1;
                }
            }
        }
        removed
    }

    /// Ollama's start-up prune: files in `blobs/` older than [`PRUNE_GRACE`] that are not a
    /// referenced blob (stale temp files, orphaned blobs) are removed. Skipped entirely when a
    /// manifest cannot be read. Returns how many files were removed.
    pub fn prune(&self) -> Result<usize, StoreError> {
        let in_use = self.referenced_digests()?;
        let now = SystemTime::now();
        let mut removed = 0;
        for entry in fs_err::read_dir(self.blobs_dir())?.flatten() {
            let path = entry.path();
            let Ok(meta) = entry.metadata() else { continue };
            if !meta.is_file() {
                continue;
            }
            let age = meta
                .modified()
                .ok()
                .and_then(|m| now.duration_since(m).ok())
                .unwrap_or_default();
            let name = entry.file_name().to_string_lossy().into_owned();
            let partial = name.contains("-partial")
                && Digest::parse(name.split("-partial").next().unwrap_or_default()).is_ok();
            if age < PRUNE_GRACE || (partial && age < PARTIAL_GRACE) {
                continue;
            }
            let keep = Digest::parse(&name).is_ok_and(|d| in_use.contains(&d));
            if !keep && std::fs::remove_file(&path).is_ok() {
                removed += 1;
            }
        }
        Ok(removed)
    }
}

/// The store's directory of derived files ([`Store::derived_dir`]), from its `blobs/`.
pub fn derived_dir_of(blobs: &Path) -> PathBuf {
    let root = blobs.parent().unwrap_or(blobs);
    root.join(".rollama").join("converted")
}

fn read_dirs(dir: &Path) -> Result<Vec<PathBuf>, StoreError> {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e.into()),
    };
    Ok(entries
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.is_dir())
        .collect())
}

/// Writes `bytes` to `path` atomically: temp file in the same directory, fsync, rename,
/// then fsync of the directory so the rename survives a crash.
pub fn atomic_write(path: &Path, bytes: &[u8]) -> Result<(), StoreError> {
    let dir = path
        .parent()
        .ok_or_else(|| std::io::Error::other(format!("{} has no parent", path.display())))?;
    fs_err::create_dir_all(dir)?;
    let mut temp = tempfile::Builder::new().prefix(".tmp-").tempfile_in(dir)?;
    temp.write_all(bytes)?;
    temp.as_file().sync_all()?;
    set_readable(temp.path())?;
    temp.persist(path).map_err(|e| e.error)?;
    sync_dir(dir);
    Ok(())
}

fn set_readable(path: &Path) -> std::io::Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o644))?;
    }
    let _ = path;
    Ok(())
}

fn sync_dir(dir: &Path) {
    if let Ok(d) = std::fs::File::open(dir) {
        let _ = d.sync_all();
    }
}

/// A blob being written: hashed as it goes, renamed into place by [`BlobWriter::commit`]
/// only if the digest matches. Dropped without commit, the temp file is removed.
pub struct BlobWriter {
    store: Store,
    file: tempfile::NamedTempFile,
    hasher: Sha256,
    expected: Option<Digest>,
}

impl BlobWriter {
    /// Verifies the digest, fsyncs and renames the blob into place.
    pub fn commit(self) -> Result<Digest, StoreError> {
        let actual = Digest::from_hasher(self.hasher);
        if let Some(expected) = self.expected {
            if expected != actual {
                return Err(StoreError::DigestMismatch { expected, actual });
            }
        }
        self.file.as_file().sync_all()?;
        set_readable(self.file.path())?;
        let target = self.store.blob_path(&actual);
        self.file.persist(&target).map_err(|e| e.error)?;
        sync_dir(&self.store.blobs_dir());
        Ok(actual)
    }
}

impl Write for BlobWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.file.write(buf)?;
        self.hasher.update(&buf[..n]);
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.file.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp_store() -> (tempfile::TempDir, Store) {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path().join("models")).unwrap();
        (dir, store)
    }

    fn blob_files(store: &Store) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(store.blobs_dir())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }

    #[test]
    fn a_blob_with_the_wrong_digest_leaves_no_file_behind() {
        let (_dir, store) = temp_store();
        let mut writer = store.blob_writer(Some(Digest::of(b"other"))).unwrap();
        writer.write_all(b"content").unwrap();
        let err = writer.commit().unwrap_err();
        assert!(matches!(err, StoreError::DigestMismatch { .. }));
        assert!(blob_files(&store).is_empty());
    }

    #[test]
    fn an_abandoned_blob_writer_leaves_no_file_behind() {
        let (_dir, store) = temp_store();
        let mut writer = store.blob_writer(None).unwrap();
        writer.write_all(b"partial").unwrap();
        drop(writer);
        assert!(blob_files(&store).is_empty());
    }

    #[test]
    fn deleting_a_model_keeps_shared_blobs_and_removes_orphans() {
        let (_dir, store) = temp_store();
        let (shared, _) = store.write_blob(b"weights").unwrap();
        let (only_a, _) = store.write_blob(b"system a").unwrap();
        let (config, _) = store.write_blob(b"{}").unwrap();
        let a = ModelName::parse("a").unwrap();
        let b = ModelName::parse("b").unwrap();
        let layer = |d: Digest, m: &str| Layer::new(m, d, 1);
        let cfg = layer(config, manifest::CONFIG_MEDIA_TYPE);
        store
            .write_manifest(
                &a,
                &Manifest::new(
                    cfg.clone(),
                    vec![
                        layer(shared, manifest::MEDIA_MODEL),
                        layer(only_a, manifest::MEDIA_SYSTEM),
                    ],
                ),
            )
            .unwrap();
        store
            .write_manifest(
                &b,
                &Manifest::new(cfg, vec![layer(shared, manifest::MEDIA_MODEL)]),
            )
            .unwrap();
        let model_a = store.find(&a).unwrap().unwrap();
        store.delete(&model_a).unwrap();
        assert!(store.has_blob(&shared));
        assert!(store.has_blob(&config));
        assert!(!store.has_blob(&only_a));
        assert!(store.find(&a).unwrap().is_none());
        let model_b = store.find(&b).unwrap().unwrap();
        store.delete(&model_b).unwrap();
        assert!(blob_files(&store).is_empty());
        // Empty manifest directories are pruned up to manifests/.
        assert_eq!(std::fs::read_dir(store.manifests_dir()).unwrap().count(), 0);
    }

    #[test]
    fn finds_models_case_insensitively_and_keeps_disk_spelling() {
        let (_dir, store) = temp_store();
        let (d, _) = store.write_blob(b"x").unwrap();
        let name = ModelName::parse("MyModel:Tag").unwrap();
        store
            .write_manifest(
                &name,
                &Manifest::new(Layer::new(manifest::CONFIG_MEDIA_TYPE, d, 1), vec![]),
            )
            .unwrap();
        let found = store
            .find(&ModelName::parse("mymodel:tag").unwrap())
            .unwrap()
            .unwrap();
        assert_eq!(found.name.display_shortest(), "MyModel:Tag");
    }

    #[test]
    fn unfinished_writes_leave_temp_files_that_start_up_removes() {
        let (dir, store) = temp_store();
        std::fs::create_dir_all(store.blobs_dir()).unwrap();
        let nested = store.manifests_dir().join("registry.ollama.ai/library/m");
        std::fs::create_dir_all(&nested).unwrap();
        std::fs::write(store.blobs_dir().join(".tmp-upload-abc"), b"half").unwrap();
        std::fs::write(nested.join(".tmp-xyz"), b"{").unwrap();
        std::fs::write(nested.join("latest"), b"{}").unwrap();
        assert_eq!(store.remove_temp_files(), 2);
        assert!(nested.join("latest").exists());
        assert_eq!(store.remove_temp_files(), 0);
        drop(dir);
    }

    #[test]
    fn atomic_write_replaces_content_without_temp_files() {
        let (dir, _store) = temp_store();
        let path = dir.path().join("sub/file");
        atomic_write(&path, b"one").unwrap();
        atomic_write(&path, b"two").unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"two");
        assert_eq!(
            std::fs::read_dir(dir.path().join("sub")).unwrap().count(),
            1
        );
    }

    #[test]
    fn prune_spares_young_files_and_referenced_blobs() {
        let (_dir, store) = temp_store();
        let (young, _) = store.write_blob(b"young orphan").unwrap();
        assert_eq!(store.prune().unwrap(), 0);
        assert!(store.has_blob(&young));
    }

    #[test]
    fn prune_keeps_interrupted_downloads_for_a_week() {
        let (_dir, store) = temp_store();
        let digest = Digest::of(b"being downloaded");
        let age =
            |days: u64| std::time::SystemTime::now() - Duration::from_secs(days * 24 * 3600 + 60);
        let blobs = store.blobs_dir();
        let files = [
            (format!("{}-partial", digest.file_name()), 2, true),
            (format!("{}-partial-0", digest.file_name()), 2, true),
            (
                format!("{}-partial", Digest::of(b"old").file_name()),
                8,
                false,
            ),
            ("stray-partial".to_string(), 2, false),
        ];
        for (name, days, _) in &files {
            let file = std::fs::File::create(blobs.join(name)).unwrap();
            file.set_modified(age(*days)).unwrap();
        }
        assert_eq!(store.prune().unwrap(), 2);
        for (name, _, kept) in &files {
            assert_eq!(blobs.join(name).exists(), *kept, "{name}");
        }
    }
}

//! Conversations that survive an unload or a restart: sequences' KV state in files.
//!
//! When a model unloads, each sequence it holds is written with llama.cpp's sequence state
//! file (its tokens, then the keys and values), followed by rollama's trailer:
//!
//! ```text
//! [llama.cpp's file] [meta JSON] [meta length: u64 LE] [SHA-256 of all before it] ["RLKVv001"]
//! ```
//!
//! llama.cpp reads its own part and ignores what follows. The metadata names the cache's key
//! (the model file and the load settings that shape the cache: `num_ctx`, KV type, flash
//! attention), the tokens and the images among them. A file is written under a temporary name
//! and renamed, so a crash leaves no half file under a real name. Before a file is loaded its
//! digest is checked: llama.cpp's reader asserts (aborts the process) on some malformed
//! input, so nothing unverified reaches it. A corrupt, truncated or mismatched file is removed
//! and logged. The directory is bounded: least recently used files go first (a file's
//! modification time is its last use).

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::fs::File;
use std::io::{BufReader, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::time::SystemTime;

/// Where the files go; default `$OLLAMA_MODELS/.rollama/kvcache`.
pub const ROLLAMA_KV_CACHE_DIR: &str = "ROLLAMA_KV_CACHE_DIR";
/// The directory's bound (`4GB`, `512MiB`, bytes); `0` turns saving and restoring off.
pub const ROLLAMA_KV_CACHE_SIZE: &str = "ROLLAMA_KV_CACHE_SIZE";
/// The bound when unset: 4 GiB.
pub const DEFAULT_SIZE: u64 = 4 << 30;
/// Sequences shorter than this are not worth a file.
pub const MIN_TOKENS: usize = 32;

const MAGIC: &[u8; 8] = b"RLKVv001";
const TRAILER: u64 = 8 + 32 + 8;
const EXTENSION: &str = "kv";

/// An image among a saved sequence's tokens (its placeholder run and KV positions).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SavedImage {
    pub start: usize,
    pub len: usize,
    pub positions: i32,
    pub hash: String,
}

#[derive(Serialize, Deserialize)]
struct Meta {
    key: String,
    tokens: Vec<u32>,
    images: Vec<SavedImage>,
}

/// A saved sequence of this model's key.
#[derive(Debug, Clone)]
pub struct Entry {
    pub path: PathBuf,
    pub tokens: Vec<u32>,
    pub images: Vec<SavedImage>,
}

/// One loaded model's view of the directory.
pub struct KvDisk {
    dir: PathBuf,
    limit: u64,
    key: String,
    pub entries: Vec<Entry>,
}

/// `ROLLAMA_KV_CACHE_SIZE` in bytes; an unreadable value warns and keeps the default.
pub fn size_limit() -> u64 {
    let value = crate::env::var(ROLLAMA_KV_CACHE_SIZE);
    if value.trim().is_empty() {
        return DEFAULT_SIZE;
    }
    parse_size(&value).unwrap_or_else(|| {
        eprintln!("warning: {ROLLAMA_KV_CACHE_SIZE}={value} is not a size; using 4GiB");
        DEFAULT_SIZE
    })
}

/// `4GB`, `4 GiB`, `512M`, `1e9` or plain bytes (decimal and binary suffixes, as written).
pub fn parse_size(text: &str) -> Option<u64> {
    let text = text.trim();
    let split = text
        .find(|c: char| c.is_ascii_alphabetic() && c != 'e' && c != 'E')
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let number: f64 = number.trim().parse().ok()?;
    let unit = unit.trim().to_ascii_lowercase();
    let scale: f64 = match unit.as_str() {
        "" | "b" => 1.0,
        "k" | "kb" => 1e3,
        "m" | "mb" => 1e6,
        "g" | "gb" => 1e9,
        "t" | "tb" => 1e12,
        "kib" => 1024.0,
        "mib" => 1024f64.powi(2),
        "gib" => 1024f64.powi(3),
        "tib" => 1024f64.powi(4),
        _ => return None,
    };
    (number >= 0.0 && number.is_finite()).then_some((number * scale) as u64)
}

/// The directory: `ROLLAMA_KV_CACHE_DIR`, else beside the store's derived files.
pub fn directory() -> PathBuf {
    let value = crate::env::var(ROLLAMA_KV_CACHE_DIR);
    if value.trim().is_empty() {
        crate::env::models_dir().join(".rollama").join("kvcache")
    } else {
        PathBuf::from(value)
    }
}

impl KvDisk {
    /// The saved sequences of the cache `key` (None when saving is off). Files of other keys
    /// stay; unreadable ones are removed.
    pub fn open(key: &str) -> Option<KvDisk> {
        let limit = size_limit();
        if limit == 0 {
            return None;
        }
        Some(KvDisk::at(directory(), limit, key))
    }

    pub fn at(dir: PathBuf, limit: u64, key: &str) -> KvDisk {
        let mut disk = KvDisk {
            dir,
            limit,
            key: key.to_string(),
            entries: Vec::new(),
        };
        disk.scan();
        disk
    }

    fn files(&self) -> Vec<(PathBuf, u64, SystemTime)> {
        let Ok(listing) = std::fs::read_dir(&self.dir) else {
            return Vec::new();
        };
        listing
            .flatten()
            .filter_map(|entry| {
                let path = entry.path();
                if path.extension().and_then(|e| e.to_str()) != Some(EXTENSION) {
                    return None;
                }
                let meta = entry.metadata().ok()?;
                Some((path, meta.len(), meta.modified().ok()?))
            })
            .collect()
    }

    fn scan(&mut self) {
        for (path, _, _) in self.files() {
            match read_meta(&path) {
                Ok(meta) if meta.key == self.key => self.entries.push(Entry {
                    path,
                    tokens: meta.tokens,
                    images: meta.images,
                }),
                Ok(_) => {}
                Err(why) => discard(&path, &why),
            }
        }
    }

    /// The saved sequence sharing the longest prefix with `prompt`, and that length.
    pub fn best(&self, prompt: &[u32]) -> Option<(usize, usize)> {
        self.entries
            .iter()
            .enumerate()
            .map(|(index, entry)| (index, common_prefix(&entry.tokens, prompt)))
            .filter(|(_, shared)| *shared > 0)
            .max_by_key(|(_, shared)| *shared)
    }

    /// Checks entry `index`'s digest and marks it used; a file that fails is removed and
    /// forgotten. On success the file may be handed to llama.cpp.
    pub fn verify(&mut self, index: usize) -> Result<&Entry, String> {
        let path = self.entries[index].path.clone();
        let checked = verify_file(&path).and_then(|meta| {
            if meta.key != self.key || meta.tokens != self.entries[index].tokens {
                Err("its contents changed since it was listed".to_string())
            } else {
                Ok(())
            }
        });
        match checked {
            Ok(()) => {
                touch(&path);
                Ok(&self.entries[index])
            }
            Err(why) => {
                self.forget(index, &why);
                Err(why)
            }
        }
    }

    /// Removes entry `index` (llama.cpp refused it, or it failed its check), saying why.
    pub fn forget(&mut self, index: usize, why: &str) {
        let entry = self.entries.remove(index);
        discard(&entry.path, why);
    }

    /// Saves a sequence: `write` makes llama.cpp's file at the path it is given; the trailer
    /// is appended and the file renamed into place. Saved files that are a prefix of this one
    /// are removed (a conversation's earlier turn), then the directory is brought under its
    /// bound. `size` is the state's expected size: a sequence larger than the bound is not
    /// written.
    pub fn save(
        &mut self,
        tokens: &[u32],
        images: Vec<SavedImage>,
        size: u64,
        write: impl FnOnce(&Path) -> Result<(), String>,
    ) -> Result<(), String> {
        if size > self.limit {
            return Err(format!(
                "its state ({size} bytes) is larger than {ROLLAMA_KV_CACHE_SIZE} ({} bytes)",
                self.limit
            ));
        }
        std::fs::create_dir_all(&self.dir)
            .map_err(|e| format!("cannot create {}: {e}", self.dir.display()))?;
        let name = {
            let mut hasher = Sha256::new();
            hasher.update(self.key.as_bytes());
            for token in tokens {
                hasher.update(token.to_le_bytes());
            }
            hex::encode(hasher.finalize())
        };
        let path = self.dir.join(format!("{name}.{EXTENSION}"));
        if self.entries.iter().any(|e| e.path == path) {
            touch(&path);
            return Ok(());
        }
        let temporary = self
            .dir
            .join(format!(".{name}.{}.partial", std::process::id()));
        let written = write(&temporary).and_then(|()| {
            let meta = Meta {
                key: self.key.clone(),
                tokens: tokens.to_vec(),
                images: images.clone(),
            };
            append_trailer(&temporary, &meta).map_err(|e| e.to_string())
        });
        if let Err(e) = written.and_then(|()| {
            std::fs::rename(&temporary, &path).map_err(|e| format!("cannot rename: {e}"))
        }) {
            let _ = std::fs::remove_file(&temporary);
            return Err(e);
        }
        let superseded: Vec<usize> = (0..self.entries.len())
            .filter(|i| {
                let old = &self.entries[*i].tokens;
                old.len() < tokens.len() && tokens.starts_with(old)
            })
            .collect();
        for index in superseded.into_iter().rev() {
            let entry = self.entries.remove(index);
            let _ = std::fs::remove_file(&entry.path);
        }
        self.entries.push(Entry {
            path,
            tokens: tokens.to_vec(),
            images,
        });
        self.evict();
        Ok(())
    }

    /// Removes the least recently used files (of every key) until the directory fits.
    fn evict(&mut self) {
        let mut files = self.files();
        let mut total: u64 = files.iter().map(|(_, size, _)| size).sum();
        files.sort_by_key(|(_, _, modified)| *modified);
        for (path, size, _) in files {
            if total <= self.limit {
                break;
            }
            if std::fs::remove_file(&path).is_ok() {
                total -= size;
                self.entries.retain(|e| e.path != path);
            }
        }
    }
}

fn discard(path: &Path, why: &str) {
    eprintln!(
        "kv cache: removing {}: {why}; it is not loaded",
        path.display()
    );
    let _ = std::fs::remove_file(path);
}

fn touch(path: &Path) {
    if let Ok(file) = File::options().append(true).open(path) {
        let _ = file.set_modified(SystemTime::now());
    }
}

/// Length of the common prefix of two token lists.
pub fn common_prefix(a: &[u32], b: &[u32]) -> usize {
    a.iter().zip(b).take_while(|(x, y)| x == y).count()
}

fn append_trailer(path: &Path, meta: &Meta) -> std::io::Result<()> {
    let mut hasher = Sha256::new();
    let mut reader = BufReader::with_capacity(1 << 20, File::open(path)?);
    std::io::copy(&mut reader, &mut hasher)?;
    let json = serde_json::to_vec(meta).map_err(std::io::Error::other)?;
    hasher.update(&json);
    hasher.update((json.len() as u64).to_le_bytes());
    let digest = hasher.finalize();
    let mut file = File::options().append(true).open(path)?;
    file.write_all(&json)?;
    file.write_all(&(json.len() as u64).to_le_bytes())?;
    file.write_all(&digest)?;
    file.write_all(MAGIC)?;
    file.sync_all()
}

/// The trailer's metadata and where it starts, without checking the digest.
fn read_trailer(file: &mut File) -> Result<(Meta, u64, [u8; 32]), String> {
    let size = file.metadata().map_err(|e| e.to_string())?.len();
    if size < TRAILER + 12 {
        return Err("it is truncated".into());
    }
    let mut tail = [0u8; TRAILER as usize];
    file.seek(SeekFrom::Start(size - TRAILER))
        .and_then(|_| file.read_exact(&mut tail))
        .map_err(|e| e.to_string())?;
    if &tail[40..] != MAGIC {
        return Err("it has no rollama trailer (truncated or not a rollama KV file)".into());
    }
    let meta_len = u64::from_le_bytes(tail[..8].try_into().expect("8 bytes"));
    let digest: [u8; 32] = tail[8..40].try_into().expect("32 bytes");
    if meta_len > size - TRAILER - 12 {
        return Err("its trailer is damaged".into());
    }
    let meta_start = size - TRAILER - meta_len;
    let mut json = vec![0u8; meta_len as usize];
    file.seek(SeekFrom::Start(meta_start))
        .and_then(|_| file.read_exact(&mut json))
        .map_err(|e| e.to_string())?;
    let meta: Meta =
        serde_json::from_slice(&json).map_err(|e| format!("its metadata is damaged ({e})"))?;
    Ok((meta, meta_start, digest))
}

fn read_meta(path: &Path) -> Result<Meta, String> {
    let mut file = File::open(path).map_err(|e| e.to_string())?;
    read_trailer(&mut file).map(|(meta, _, _)| meta)
}

/// The file's metadata once its digest and its llama.cpp token header agree with it.
fn verify_file(path: &Path) -> Result<Meta, String> {
    let mut file = File::open(path).map_err(|e| e.to_string())?;
    let (meta, meta_start, digest) = read_trailer(&mut file)?;
    let size = file.metadata().map_err(|e| e.to_string())?.len();
    file.seek(SeekFrom::Start(0)).map_err(|e| e.to_string())?;
    let mut hasher = Sha256::new();
    let mut reader = BufReader::with_capacity(1 << 20, (&mut file).take(size - 40));
    std::io::copy(&mut reader, &mut hasher).map_err(|e| e.to_string())?;
    if hasher.finalize().as_slice() != digest {
        return Err("its digest does not match (the file is corrupt)".into());
    }
    // llama.cpp's header: magic, version, token count, tokens.
    let mut header = [0u8; 12];
    file.seek(SeekFrom::Start(0))
        .and_then(|_| file.read_exact(&mut header))
        .map_err(|e| e.to_string())?;
    let count = u32::from_le_bytes(header[8..12].try_into().expect("4 bytes")) as usize;
    if count != meta.tokens.len() || 12 + 4 * count as u64 > meta_start {
        return Err("its token list does not match its metadata".into());
    }
    let mut tokens = vec![0u8; 4 * count];
    file.read_exact(&mut tokens).map_err(|e| e.to_string())?;
    let same = tokens
        .chunks_exact(4)
        .zip(&meta.tokens)
        .all(|(bytes, token)| u32::from_le_bytes(bytes.try_into().expect("4")) == *token);
    if !same {
        return Err("its token list does not match its metadata".into());
    }
    Ok(meta)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A stand-in for llama.cpp's file: its header (magic, version, count, tokens) and a body.
    fn fake_state(path: &Path, tokens: &[u32], body: usize) -> Result<(), String> {
        let mut bytes = Vec::new();
        bytes.extend(0x6767_7371u32.to_le_bytes());
        bytes.extend(2u32.to_le_bytes());
        bytes.extend((tokens.len() as u32).to_le_bytes());
        for token in tokens {
            bytes.extend(token.to_le_bytes());
        }
        bytes.extend(std::iter::repeat_n(7u8, body));
        std::fs::write(path, bytes).map_err(|e| e.to_string())
    }

    fn tokens(n: u32) -> Vec<u32> {
        (0..n).collect()
    }

    #[test]
    fn sizes_read_as_people_write_them() {
        assert_eq!(parse_size("0"), Some(0));
        assert_eq!(parse_size("4GB"), Some(4_000_000_000));
        assert_eq!(parse_size("4 GiB"), Some(4 << 30));
        assert_eq!(parse_size("512MiB"), Some(512 << 20));
        assert_eq!(parse_size("1.5k"), Some(1500));
        assert_eq!(parse_size("12345"), Some(12345));
        assert_eq!(parse_size("lots"), None);
        assert_eq!(parse_size("-1"), None);
    }

    #[test]
    fn a_saved_sequence_is_found_by_prefix_and_verified() {
        let dir = tempfile::tempdir().unwrap();
        let mut disk = KvDisk::at(dir.path().into(), 1 << 20, "model-a");
        let saved = tokens(100);
        disk.save(&saved, Vec::new(), 1000, |p| fake_state(p, &saved, 1000))
            .unwrap();
        let reopened = KvDisk::at(dir.path().into(), 1 << 20, "model-a");
        let mut prompt = tokens(60);
        prompt.push(999);
        assert_eq!(reopened.best(&prompt), Some((0, 60)));
        let mut reopened = reopened;
        assert_eq!(reopened.verify(0).unwrap().tokens, saved);
        // Another key sees nothing, and leaves the file alone.
        let other = KvDisk::at(dir.path().into(), 1 << 20, "model-b");
        assert!(other.entries.is_empty());
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    #[test]
    fn a_corrupt_or_truncated_file_is_refused_and_removed() {
        let dir = tempfile::tempdir().unwrap();
        let mut disk = KvDisk::at(dir.path().into(), 1 << 20, "m");
        let saved = tokens(50);
        disk.save(&saved, Vec::new(), 500, |p| fake_state(p, &saved, 500))
            .unwrap();
        let path = disk.entries[0].path.clone();
        // One flipped byte in the state: listed (the trailer is intact), refused on use.
        let mut bytes = std::fs::read(&path).unwrap();
        bytes[300] ^= 0xff;
        std::fs::write(&path, &bytes).unwrap();
        let mut reopened = KvDisk::at(dir.path().into(), 1 << 20, "m");
        assert_eq!(reopened.entries.len(), 1);
        assert!(reopened.verify(0).unwrap_err().contains("digest"));
        assert!(!path.exists() && reopened.entries.is_empty());
        // A truncated file is removed when listed.
        disk.entries.clear();
        disk.save(&saved, Vec::new(), 500, |p| fake_state(p, &saved, 500))
            .unwrap();
        let bytes = std::fs::read(&path).unwrap();
        std::fs::write(&path, &bytes[..bytes.len() - 30]).unwrap();
        let reopened = KvDisk::at(dir.path().into(), 1 << 20, "m");
        assert!(reopened.entries.is_empty());
        assert!(!path.exists());
    }

    #[test]
    fn the_directory_keeps_under_its_bound_least_recently_used_first() {
        let dir = tempfile::tempdir().unwrap();
        // Files of about 10,500 bytes: three fit, four do not.
        let limit = 32_000;
        let mut disk = KvDisk::at(dir.path().into(), limit, "m");
        let mut paths = Vec::new();
        for first in 0..5u32 {
            let saved: Vec<u32> = (0..40).map(|t| t + 1000 * first).collect();
            disk.save(&saved, Vec::new(), 10_000, |p| {
                fake_state(p, &saved, 10_000)
            })
            .unwrap();
            paths.push(disk.entries.last().unwrap().path.clone());
            if first == 2 {
                // The first file is used again: the second and third become the oldest.
                std::thread::sleep(std::time::Duration::from_millis(20));
                assert!(disk.verify(0).is_ok());
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        let total: u64 = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().metadata().unwrap().len())
            .sum();
        assert!(total <= limit, "{total} > {limit}");
        assert!(paths[0].exists(), "used recently");
        assert!(!paths[1].exists() && !paths[2].exists());
        assert!(paths[3].exists() && paths[4].exists());
        // A state larger than the bound is not written at all.
        assert!(disk
            .save(&tokens(40), Vec::new(), limit + 1, |_| unreachable!())
            .is_err());
    }

    #[test]
    fn a_longer_turn_of_a_conversation_replaces_the_earlier_one() {
        let dir = tempfile::tempdir().unwrap();
        let mut disk = KvDisk::at(dir.path().into(), 1 << 20, "m");
        let first = tokens(40);
        disk.save(&first, Vec::new(), 10, |p| fake_state(p, &first, 10))
            .unwrap();
        let second = tokens(80);
        disk.save(&second, Vec::new(), 10, |p| fake_state(p, &second, 10))
            .unwrap();
        assert_eq!(disk.entries.len(), 1);
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    }
}

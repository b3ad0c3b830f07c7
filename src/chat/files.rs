//! Image paths in a prompt (`ollama run gemma3 "what is in ./photo.png"`): found as Ollama's
//! `extractFileNames` finds them, read, reported on stderr and taken out of the text
//! (`extractFileData`). Used by one-shot `run` and the REPL for models with `vision`.

use base64::Engine as _;
use std::io::{self, Read, Write};
use std::sync::OnceLock;

/// Largest file attached (Ollama's limit).
const MAX_FILE_BYTES: u64 = 100 * 1024 * 1024;

/// Paths starting with `/`, `./`, `\` or a drive letter and ending in an image extension,
/// spaces (escaped or not) allowed: Ollama's pattern. Mismatches are dropped later because
/// no such file exists.
fn pattern() -> &'static regex::Regex {
    static PATTERN: OnceLock<regex::Regex> = OnceLock::new();
    PATTERN.get_or_init(|| {
        regex::Regex::new(r"(?:[a-zA-Z]:)?(?:\./|/|\\)[\S\\ ]+?\.(?i:jpg|jpeg|png|webp)\b")
            .expect("a valid pattern")
    })
}

/// The candidate file paths in `input`, in order.
pub fn file_names(input: &str) -> Vec<&str> {
    pattern().find_iter(input).map(|m| m.as_str()).collect()
}

/// Shell escapes in a dragged-in path undone (`\ ` → ` `, `\(` → `(`…), as Ollama does.
fn normalize(path: &str) -> String {
    let mut out = String::with_capacity(path.len());
    let mut chars = path.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\\' {
            if let Some(&next) = chars.peek() {
                if " ()[]{}$&;'\\*?~".contains(next) {
                    out.push(next);
                    chars.next();
                    continue;
                }
            }
        }
        out.push(c);
    }
    out
}

/// The MIME type Go's `http.DetectContentType` gives the kinds of file Ollama attaches.
fn content_type(head: &[u8]) -> &'static str {
    if head.starts_with(b"\x89PNG\r\n\x1a\n") {
        "image/png"
    } else if head.starts_with(&[0xff, 0xd8, 0xff]) {
        "image/jpeg"
    } else if head.len() >= 12 && &head[..4] == b"RIFF" && &head[8..12] == b"WEBP" {
        "image/webp"
    } else if std::str::from_utf8(head).is_ok() {
        "text/plain; charset=utf-8"
    } else {
        "application/octet-stream"
    }
}

/// The file's bytes, if it is an image Ollama would attach; `Ok(None)` when there is no
/// such file (the text only looked like a path).
fn read_image(path: &str) -> Result<Option<Vec<u8>>, String> {
    let mut file = match std::fs::File::open(path) {
        Ok(file) => file,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e.to_string()),
    };
    let size = file.metadata().map_err(|e| e.to_string())?.len();
    if size > MAX_FILE_BYTES {
        return Err("file size exceeds maximum limit (100MB)".into());
    }
    let mut bytes = Vec::with_capacity(size as usize);
    file.read_to_end(&mut bytes).map_err(|e| e.to_string())?;
    let kind = content_type(&bytes[..bytes.len().min(512)]);
    if !kind.starts_with("image/") {
        return Err(format!("invalid file type: {kind}"));
    }
    Ok(Some(bytes))
}

/// `input` without the image paths it names, and those images as base64 (what the API's
/// `images` take). Each attached file is reported on `err` as Ollama does (`Added image
/// '…'`); a file that cannot be attached is reported and returned as the error.
pub fn extract_images(
    input: &str,
    err: &mut dyn Write,
) -> io::Result<Result<(String, Vec<String>), String>> {
    let mut text = input.to_string();
    let mut images = Vec::new();
    for found in file_names(input) {
        let path = normalize(found);
        match read_image(&path) {
            Ok(None) => continue,
            Ok(Some(bytes)) => {
                writeln!(err, "Added image '{path}'")?;
                text = text
                    .replace(&format!("'{path}'"), "")
                    .replace(&format!("'{found}'"), "")
                    .replace(found, "");
                images.push(base64::engine::general_purpose::STANDARD.encode(bytes));
            }
            Err(e) => {
                writeln!(err, "Couldn't process file: {e:?}")?;
                return Ok(Err(e));
            }
        }
    }
    Ok(Ok((text.trim().to_string(), images)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_are_found_as_ollama_finds_them() {
        assert_eq!(
            file_names("what is in ./photo.png and /tmp/My\\ Pics/a b.JPG? not x.png"),
            vec!["./photo.png", "/tmp/My\\ Pics/a b.JPG"]
        );
        assert!(file_names("no images here, just text.png").is_empty());
        assert_eq!(
            normalize("/tmp/My\\ Pics/a\\(1\\).png"),
            "/tmp/My Pics/a(1).png"
        );
    }

    #[test]
    fn images_are_attached_reported_and_taken_out_of_the_text() {
        let dir = tempfile::tempdir().unwrap();
        let png = dir.path().join("pic.png");
        std::fs::write(&png, b"\x89PNG\r\n\x1a\nrest").unwrap();
        let text_file = dir.path().join("notes.png");
        std::fs::write(&text_file, "just text").unwrap();
        let mut err = Vec::new();
        let input = format!("describe {} please", png.display());
        let (text, images) = extract_images(&input, &mut err).unwrap().unwrap();
        assert_eq!(text, "describe  please");
        assert_eq!(images.len(), 1);
        assert_eq!(
            String::from_utf8(err).unwrap(),
            format!("Added image '{}'\n", png.display())
        );

        let mut err = Vec::new();
        let missing = extract_images("look at /no/such/file.png", &mut err)
            .unwrap()
            .unwrap();
        assert_eq!(
            missing,
            ("look at /no/such/file.png".to_string(), Vec::new())
        );
        assert!(err.is_empty());

        let mut err = Vec::new();
        let refused = extract_images(&format!("see {}", text_file.display()), &mut err).unwrap();
        assert_eq!(
            refused,
            Err("invalid file type: text/plain; charset=utf-8".to_string())
        );
        assert_eq!(
            String::from_utf8(err).unwrap(),
            "Couldn't process file: \"invalid file type: text/plain; charset=utf-8\"\n"
        );
    }
}

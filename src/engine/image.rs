//! Images a request brings for a vision model: checked and identified here, encoded by the
//! engine's projector (llama.cpp's mtmd).
//!
//! In a prompt an image is a run of placeholder ids, one per position its embeddings take in
//! the KV cache, all equal to [`Image::token`]: a value above every vocabulary, derived from
//! the image's SHA-256. Two requests showing the same image therefore share a token prefix
//! and the engine's KV reuse keeps its embeddings (a chat's second turn does not encode the
//! image again), while a different image breaks the prefix where it starts. The engine
//! compares full hashes before it reuses a cached image.

use sha2::{Digest as _, Sha256};
use std::sync::OnceLock;

/// Placeholder ids are at least this (no vocabulary comes near 2^31 tokens).
pub const IMAGE_TOKEN_BASE: u32 = 0x8000_0000;

/// Whether `token` stands for part of an image rather than a vocabulary entry.
pub fn is_image_token(token: u32) -> bool {
    token >= IMAGE_TOKEN_BASE
}

/// The text that marks where an image goes in a rendered prompt: random per process, as
/// Ollama gives each llama-server its own, so that a message's text cannot place an image.
pub fn marker() -> &'static str {
    static MARKER: OnceLock<String> = OnceLock::new();
    MARKER.get_or_init(|| format!("<__rollama_media_{:032x}__>", rand::random::<u128>()))
}

/// Most pixels a WebP image may decode to (a 16383×16383 WebP would need a gigabyte).
const MAX_PIXELS: u64 = 64 << 20;

/// An image as the projector takes it.
#[derive(Debug, Clone, PartialEq)]
pub enum ImageData {
    /// A PNG, JPEG, GIF or BMP file, which llama.cpp's image loader decodes.
    Encoded(Vec<u8>),
    /// RGB pixels, row by row (a WebP decoded here).
    Rgb {
        width: u32,
        height: u32,
        pixels: Vec<u8>,
    },
}

/// One image of a request.
#[derive(Debug, Clone, PartialEq)]
pub struct Image {
    pub data: ImageData,
    /// SHA-256 of the bytes the client sent.
    pub hash: [u8; 32],
}

impl Image {
    /// The image in `bytes` (a file's contents). Formats llama.cpp's loader reads are kept as
    /// they are; WebP is decoded to pixels; anything else is refused with a message naming
    /// what the bytes are.
    pub fn from_bytes(bytes: Vec<u8>) -> Result<Image, String> {
        let hash: [u8; 32] = Sha256::digest(&bytes).into();
        let data = match format_of(&bytes) {
            Some("WebP") => decode_webp(&bytes)?,
            Some(_) => ImageData::Encoded(bytes),
            None if bytes.is_empty() => return Err("the image is empty".into()),
            None => {
                return Err(format!(
                    "{} (PNG, JPEG, WebP, GIF and BMP are)",
                    what_it_is(&bytes)
                ))
            }
        };
        Ok(Image { data, hash })
    }

    /// The id the image's positions take in a prompt.
    pub fn token(&self) -> u32 {
        token_of(&self.hash)
    }
}

/// The placeholder id of the image whose SHA-256 is `hash`: its first 31 bits, above every
/// vocabulary.
pub fn token_of(hash: &[u8; 32]) -> u32 {
    let word = u32::from_le_bytes([hash[0], hash[1], hash[2], hash[3]]);
    IMAGE_TOKEN_BASE | (word & !IMAGE_TOKEN_BASE)
}

/// The format of an image file by its signature, for those accepted.
fn format_of(bytes: &[u8]) -> Option<&'static str> {
    if bytes.starts_with(b"\x89PNG\r\n\x1a\n") {
        Some("PNG")
    } else if bytes.starts_with(&[0xff, 0xd8, 0xff]) {
        Some("JPEG")
    } else if bytes.starts_with(b"GIF87a") || bytes.starts_with(b"GIF89a") {
        Some("GIF")
    } else if bytes.starts_with(b"BM") && bytes.len() > 26 {
        Some("BMP")
    } else if bytes.len() > 12 && &bytes[..4] == b"RIFF" && &bytes[8..12] == b"WEBP" {
        Some("WebP")
    } else {
        None
    }
}

/// What bytes that are not an accepted image are, as far as a refusal needs to say.
fn what_it_is(bytes: &[u8]) -> String {
    let signatures: [(&[u8], &str); 6] = [
        (b"II*\0", "a TIFF image, which is not supported"),
        (b"MM\0*", "a TIFF image, which is not supported"),
        (b"%PDF", "a PDF document, not an image"),
        (b"<svg", "an SVG image, which is not supported"),
        (b"<?xml", "XML, not an image"),
        (b"\0\0\x01\0", "an ICO image, which is not supported"),
    ];
    if let Some((_, what)) = signatures.iter().find(|(sig, _)| bytes.starts_with(sig)) {
        return what.to_string();
    }
    if bytes.len() > 12 && &bytes[4..8] == b"ftyp" {
        let brand = String::from_utf8_lossy(&bytes[8..12]).to_string();
        return match brand.as_str() {
            "avif" | "avis" => "an AVIF image, which is not supported".into(),
            "heic" | "heix" | "mif1" | "msf1" => "a HEIC image, which is not supported".into(),
            _ => format!("an ISO media file ({brand}), not an image"),
        };
    }
    if std::str::from_utf8(bytes).is_ok() {
        "text, not an image".into()
    } else {
        "not an image format that can be read".into()
    }
}

fn decode_webp(bytes: &[u8]) -> Result<ImageData, String> {
    let broken = |e: image_webp::DecodingError| format!("the WebP image could not be decoded: {e}");
    let mut decoder = image_webp::WebPDecoder::new(std::io::Cursor::new(bytes)).map_err(broken)?;
    let (width, height) = decoder.dimensions();
    if u64::from(width) * u64::from(height) > MAX_PIXELS {
        return Err(format!(
            "the WebP image is {width}x{height} pixels, more than the {} megapixels accepted",
            MAX_PIXELS >> 20
        ));
    }
    let size = decoder
        .output_buffer_size()
        .ok_or_else(|| "the WebP image is too large".to_string())?;
    let mut buffer = vec![0u8; size];
    decoder.read_image(&mut buffer).map_err(broken)?;
    let pixels = if decoder.has_alpha() {
        buffer
            .chunks_exact(4)
            .flat_map(|p| [p[0], p[1], p[2]])
            .collect()
    } else {
        buffer
    };
    Ok(ImageData::Rgb {
        width,
        height,
        pixels,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A lossless WebP of the given RGB pixels (image-webp's own encoder).
    pub(crate) fn webp(width: u32, height: u32, rgb: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        image_webp::WebPEncoder::new(&mut out)
            .encode(rgb, width, height, image_webp::ColorType::Rgb8)
            .expect("encodes");
        out
    }

    #[test]
    fn accepted_formats_are_kept_and_others_named() {
        let png = b"\x89PNG\r\n\x1a\n rest".to_vec();
        assert_eq!(
            Image::from_bytes(png.clone()).unwrap().data,
            ImageData::Encoded(png)
        );
        let text = Image::from_bytes(b"hello, this is not an image".to_vec()).unwrap_err();
        assert!(text.contains("text, not an image"), "{text}");
        let tiff = Image::from_bytes(b"II*\0abcdef".to_vec()).unwrap_err();
        assert!(tiff.contains("TIFF"), "{tiff}");
        assert!(Image::from_bytes(Vec::new()).unwrap_err().contains("empty"));
    }

    #[test]
    fn tokens_are_outside_any_vocabulary_and_follow_the_content() {
        let a = Image::from_bytes(b"GIF89a one".to_vec()).unwrap();
        let b = Image::from_bytes(b"GIF89a two".to_vec()).unwrap();
        assert!(is_image_token(a.token()) && is_image_token(b.token()));
        assert_ne!(a.token(), b.token());
        assert_eq!(
            a.token(),
            Image::from_bytes(b"GIF89a one".to_vec()).unwrap().token()
        );
        assert!(!is_image_token(262_143));
    }

    #[test]
    fn a_webp_is_decoded_to_rgb_and_a_broken_one_refused() {
        let rgb = [255, 0, 0, 0, 0, 255];
        let file = webp(2, 1, &rgb);
        match Image::from_bytes(file.clone()) {
            Ok(Image {
                data:
                    ImageData::Rgb {
                        width,
                        height,
                        pixels,
                    },
                ..
            }) => {
                assert_eq!((width, height), (2, 1));
                assert_eq!(pixels, rgb);
            }
            other => panic!("{other:?}"),
        }
        let mut broken = file[..20].to_vec();
        broken.extend_from_slice(&[0u8; 8]);
        let error = Image::from_bytes(broken).unwrap_err();
        assert!(error.contains("WebP"), "{error}");
    }

    #[test]
    fn the_marker_is_stable_within_a_process() {
        assert_eq!(marker(), marker());
        assert!(marker().starts_with("<__rollama_media_"));
    }
}

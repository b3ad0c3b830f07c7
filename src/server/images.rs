//! The images of a request: base64 text in, checked [`Image`]s out, with Ollama's refusals
//! (its API decodes `images` as Go decodes a JSON `[]byte`: standard base64 with padding,
//! line breaks ignored).

use super::error::ApiError;
use crate::engine::Image;
use base64::Engine as _;
use std::sync::Arc;

/// The bytes of one base64 image, or Go's refusal of it.
pub fn decode_base64(text: &str) -> Result<Vec<u8>, ApiError> {
    let compact: String = text.chars().filter(|c| !matches!(c, '\r' | '\n')).collect();
    base64::engine::general_purpose::STANDARD
        .decode(compact.as_bytes())
        .map_err(|e| {
            let at = match e {
                base64::DecodeError::InvalidByte(at, _)
                | base64::DecodeError::InvalidLastSymbol(at, _) => at,
                base64::DecodeError::InvalidLength(_) | base64::DecodeError::InvalidPadding => {
                    compact.len()
                }
            };
            ApiError::bad_request(format!("illegal base64 data at input byte {at}"))
        })
}

/// Base64 images as bytes (checked before the model is looked up, as Ollama's JSON decoding
/// does).
pub fn decode_all(texts: &[String]) -> Result<Vec<Vec<u8>>, ApiError> {
    texts.iter().map(|text| decode_base64(text)).collect()
}

/// The images of a request, numbered from `first` (1 for the first image of the request) in
/// refusals: anything not a PNG, JPEG, WebP, GIF or BMP file is a 400 saying what it is.
pub fn check(files: Vec<Vec<u8>>, first: usize) -> Result<Vec<Arc<Image>>, ApiError> {
    files
        .into_iter()
        .enumerate()
        .map(|(index, bytes)| {
            Image::from_bytes(bytes).map(Arc::new).map_err(|why| {
                ApiError::bad_request(format!("invalid image {}: {why}", first + index))
            })
        })
        .collect()
}

/// Ollama's `imageTaggedMessages` for Go templates: each image takes the place of an `[img]`
/// in the text, or goes in front of it; here each becomes the media marker.
pub fn tagged(content: &str, images: usize) -> String {
    let marker = crate::engine::image::marker();
    let mut text = content.to_string();
    let mut prefix = String::new();
    for _ in 0..images {
        if text.contains("[img]") {
            text = text.replacen("[img]", marker, 1);
        } else {
            prefix.push_str(marker);
        }
    }
    prefix + &text
}

/// A raw prompt's images, as Ollama gives them to llama-server: `[img-N]` in the prompt marks
/// where image N goes; images it does not mark go in front. Returns the text with markers and
/// the images in the order of their markers.
pub fn placed_raw(prompt: &str, images: &[Arc<Image>]) -> (String, Vec<Arc<Image>>) {
    let marker = crate::engine::image::marker();
    let mut placed: Vec<(usize, usize)> = Vec::new();
    let mut front = Vec::new();
    let mut text = prompt.to_string();
    for index in 0..images.len() {
        let tag = format!("[img-{index}]");
        match text.find(&tag) {
            Some(at) => {
                text.replace_range(at..at + tag.len(), marker);
                // Positions of earlier placements after this one move with the edit.
                for (position, _) in placed.iter_mut() {
                    if *position > at {
                        *position = *position + marker.len() - tag.len();
                    }
                }
                placed.push((at, index));
            }
            None => front.push(index),
        }
    }
    placed.sort();
    let order = front
        .iter()
        .copied()
        .chain(placed.iter().map(|(_, index)| *index));
    let ordered = order.map(|index| images[index].clone()).collect();
    (marker.repeat(front.len()) + &text, ordered)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn image(tag: &[u8]) -> Arc<Image> {
        let mut bytes = b"GIF89a".to_vec();
        bytes.extend_from_slice(tag);
        Arc::new(Image::from_bytes(bytes).unwrap())
    }

    #[test]
    fn base64_is_gos_standard_encoding() {
        assert_eq!(decode_base64("aGk=").unwrap(), b"hi");
        assert_eq!(decode_base64("aG\r\nk=").unwrap(), b"hi");
        assert_eq!(
            decode_base64("aGk").unwrap_err(),
            ApiError::bad_request("illegal base64 data at input byte 3")
        );
        assert_eq!(
            decode_base64("a*k=").unwrap_err(),
            ApiError::bad_request("illegal base64 data at input byte 1")
        );
    }

    #[test]
    fn non_images_are_refused_by_number() {
        let error = check(vec![b"GIF89a".to_vec(), b"plain text".to_vec()], 1).unwrap_err();
        assert_eq!(
            error.message(),
            "invalid image 2: text, not an image (PNG, JPEG, WebP, GIF and BMP are)"
        );
    }

    #[test]
    fn go_template_content_takes_images_in_front_or_at_img() {
        let m = crate::engine::image::marker();
        assert_eq!(tagged("hi", 2), format!("{m}{m}hi"));
        assert_eq!(tagged("look [img] here", 1), format!("look {m} here"));
        assert_eq!(tagged("no images", 0), "no images");
    }

    #[test]
    fn raw_prompts_place_images_at_their_tags_in_text_order() {
        let m = crate::engine::image::marker();
        let (a, b, c) = (image(b"a"), image(b"b"), image(b"c"));
        let images = vec![a.clone(), b.clone(), c.clone()];
        let (text, ordered) = placed_raw("x [img-2] y [img-0] z", &images);
        assert_eq!(text, format!("{m}x {m} y {m} z"));
        assert_eq!(ordered, vec![b, c, a]);
    }
}

//! Images on the llama.cpp engine, through llama.cpp's multimodal library (mtmd): the
//! projector loaded beside the text model, and each image of a prompt made into a unit the
//! model's thread evaluates in one go.
//!
//! A unit is what mtmd makes of one media marker with its image: the projector's own opening
//! and closing tokens around the image (`<start_of_image>`… for Gemma 3), and the image's
//! patches, preprocessed to the projector's size. Units are kept by the image's hash, so a
//! chat that shows the same image again skips the preprocessing too; encoding (the vision
//! tower) happens only when the unit is evaluated, which KV reuse avoids for a cached prefix.

use super::image::{Image, ImageData};
use super::EngineError;
use llama_cpp_2::context::LlamaContext;
use llama_cpp_2::model::LlamaModel;
use llama_cpp_2::mtmd::{
    MtmdBitmap, MtmdContext, MtmdContextParams, MtmdInputChunkType, MtmdInputChunks, MtmdInputText,
};
use std::collections::{HashMap, VecDeque};
use std::ffi::CString;
use std::path::Path;
use std::sync::{Arc, Mutex, RwLock};

/// Units kept for images seen recently.
const KEPT_UNITS: usize = 32;

/// A projector loaded beside a text model.
pub struct Vision {
    /// Tokenizing (preprocessing) takes it shared; encoding, which mtmd does not allow
    /// concurrently, exclusively.
    mtmd: RwLock<MtmdContext>,
    /// Whether image embeddings must be decoded in one batch (bidirectional attention).
    non_causal: bool,
    recent: Mutex<Recent>,
}

#[derive(Default)]
struct Recent {
    units: HashMap<[u8; 32], Arc<ImageUnit>>,
    order: VecDeque<[u8; 32]>,
}

/// One image of a prompt, ready for the model's thread.
pub struct ImageUnit {
    chunks: MtmdInputChunks,
    /// KV positions the unit fills (its placeholder run in a prompt is this long).
    pub n_tokens: usize,
    /// The most embeddings one image chunk decodes at once.
    largest_image: usize,
    pub hash: [u8; 32],
}

impl ImageUnit {
    /// The id its positions take in a prompt.
    pub fn token(&self) -> u32 {
        super::image::token_of(&self.hash)
    }
}

impl Vision {
    /// Loads the projector at `path` for `model`, on the GPU when `use_gpu` (as Ollama, only
    /// beside a text model that went wholly to the GPU). A projector mtmd cannot load (an
    /// unknown projector type, a width that does not match the model's) is an error naming it.
    pub fn load(
        path: &Path,
        model: &LlamaModel,
        threads: i32,
        use_gpu: bool,
    ) -> Result<Vision, EngineError> {
        let projector_type = crate::gguf::Gguf::open(path)
            .ok()
            .and_then(|g| g.get("clip.projector_type")?.as_str().map(str::to_string))
            .unwrap_or_else(|| "unknown".into());
        let path_text = path.to_str().ok_or_else(|| {
            EngineError::Failed(format!(
                "the projector path {} is not UTF-8",
                path.display()
            ))
        })?;
        let params = MtmdContextParams {
            use_gpu,
            print_timings: false,
            n_threads: threads,
            media_marker: CString::new(super::image::marker()).expect("no NUL in the marker"),
            ..MtmdContextParams::default()
        };
        let mtmd = MtmdContext::init_from_file(path_text, model, &params).map_err(|e| {
            EngineError::Unsupported(format!(
                "failed to load model: llama.cpp's multimodal library could not load its vision \
                 projector (projector type {projector_type:?}): {e}"
            ))
        })?;
        if !mtmd.support_vision() {
            return Err(EngineError::Unsupported(format!(
                "failed to load model: its projector (projector type {projector_type:?}) has no \
                 vision encoder"
            )));
        }
        Ok(Vision {
            non_causal: mtmd.decode_use_non_causal(),
            mtmd: RwLock::new(mtmd),
            recent: Mutex::new(Recent::default()),
        })
    }

    /// The unit of `image` (the `number`th of the request, for messages), made now unless it
    /// was made recently.
    pub fn unit(&self, image: &Image, number: usize) -> Result<Arc<ImageUnit>, EngineError> {
        if let Some(unit) = self.lock_recent().units.get(&image.hash) {
            return Ok(unit.clone());
        }
        let unreadable =
            |what: String| EngineError::Unsupported(format!("invalid image {number}: {what}"));
        let chunks = {
            let mtmd = self.mtmd.read().unwrap_or_else(|e| e.into_inner());
            let bitmap = match &image.data {
                ImageData::Encoded(bytes) => MtmdBitmap::from_buffer(&mtmd, bytes, false)
                    .map_err(|_| unreadable("the file is damaged or not an image".into()))?,
                ImageData::Rgb {
                    width,
                    height,
                    pixels,
                } => MtmdBitmap::from_image_data(*width, *height, pixels)
                    .map_err(|e| unreadable(e.to_string()))?,
            };
            let text = MtmdInputText {
                text: super::image::marker().to_string(),
                add_special: false,
                parse_special: true,
            };
            mtmd.tokenize(text, &[&bitmap])
                .map_err(|e| unreadable(e.to_string()))?
        };
        let largest_image = (0..chunks.len())
            .filter_map(|i| chunks.get(i))
            .filter(|c| c.chunk_type() != MtmdInputChunkType::Text)
            .map(|c| c.n_tokens())
            .max()
            .unwrap_or(0);
        let unit = Arc::new(ImageUnit {
            n_tokens: chunks.total_tokens(),
            chunks,
            largest_image,
            hash: image.hash,
        });
        let mut recent = self.lock_recent();
        if recent.units.insert(image.hash, unit.clone()).is_none() {
            recent.order.push_back(image.hash);
        }
        while recent.order.len() > KEPT_UNITS {
            if let Some(old) = recent.order.pop_front() {
                recent.units.remove(&old);
            }
        }
        Ok(unit)
    }

    fn lock_recent(&self) -> std::sync::MutexGuard<'_, Recent> {
        self.recent.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Evaluates `unit` into sequence `seq` from position `n_past`, decoding at most
    /// `n_batch` embeddings at a time; `logits_last` keeps the logits of its last position.
    /// Returns the positions the unit took (fewer than its tokens with M-RoPE).
    pub fn evaluate(
        &self,
        unit: &ImageUnit,
        context: &mut LlamaContext,
        n_past: i32,
        seq: i32,
        n_batch: usize,
        logits_last: bool,
    ) -> Result<i32, String> {
        if self.non_causal && unit.largest_image > n_batch {
            return Err(format!(
                "an image of {} embeddings must be decoded in one batch, but num_batch is {n_batch}",
                unit.largest_image
            ));
        }
        let mut mtmd = self.mtmd.write().unwrap_or_else(|e| e.into_inner());
        let end = unit
            .chunks
            .eval_chunks(&mut mtmd, context, n_past, seq, n_batch as i32, logits_last)
            .map_err(|e| format!("llama.cpp could not evaluate the image: {e}"))?;
        Ok(end - n_past)
    }
}

/// Projector types llama.cpp's mtmd loads (`PROJECTOR_TYPE_NAMES` in its clip-impl.h, for
/// the llama.cpp this build links).
const PROJECTOR_TYPES: &[&str] = &[
    "mlp",
    "ldp",
    "ldpv2",
    "resampler",
    "adapter",
    "qwen2vl_merger",
    "qwen2.5vl_merger",
    "qwen3vl_merger",
    "ling3vl",
    "step3vl",
    "gemma3",
    "gemma3nv",
    "gemma3na",
    "gemma4v",
    "gemma4a",
    "gemma4uv",
    "gemma4ua",
    "phi4",
    "idefics3",
    "pixtral",
    "ultravox",
    "internvl",
    "llama4",
    "qwen2a",
    "qwen3a",
    "glma",
    "qwen2.5o",
    "voxtral",
    "meralion",
    "musicflamingo",
    "lfm2",
    "kimivl",
    "paddleocr",
    "lightonocr",
    "cogvlm",
    "janus_pro",
    "dots_ocr",
    "dots3note_v",
    "dots3note_a",
    "deepseekocr",
    "deepseekocr2",
    "deepseek4v",
    "lfm2a",
    "glm4v",
    "glm5v",
    "youtuvl",
    "yasa2",
    "kimik25",
    "nemotron_v2_vl",
    "exaone4_5",
    "hunyuanvl",
    "minicpmv4_6",
    "granite_speech",
    "mimovl",
    "minimax_m3",
    "granite4_vision",
    "mimo_audio",
    "parakeet",
    "qwen3tts_spkenc",
    "qwen3tts_gen",
    "pockettts_spkenc",
    "pockettts_gen",
    "muse-glimmer",
];

/// Whether mtmd can load the projector whose header is `gguf` and read images with it: a
/// `clip` file with a vision encoder of a projector type it knows (the vision type of a mixed
/// one, as mtmd reads it).
pub fn reads_projector(gguf: &crate::gguf::Gguf) -> bool {
    let text = |key: &str| {
        gguf.get(key)
            .and_then(|v| v.as_str())
            .filter(|t| !t.is_empty())
    };
    let vision_encoder = matches!(
        gguf.get("clip.has_vision_encoder"),
        Some(crate::gguf::Value::Bool(true))
    );
    let projector_type = text("clip.projector_type").or_else(|| text("clip.vision.projector_type"));
    gguf.architecture() == Some("clip")
        && vision_encoder
        && projector_type.is_some_and(|t| PROJECTOR_TYPES.contains(&t))
}

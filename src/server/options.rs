//! Ollama's `options`: typed from JSON exactly as `api.Options.FromMap` does, layered
//! defaults → Modelfile PARAMETERs → request, with Ollama's error messages for wrong types.
//! Removed and unknown options are ignored, as Ollama ignores them.

use super::error::ApiError;
use crate::engine::sampler::SamplingOptions;
use serde_json::{Map, Value};

/// The default context window on CPU (`OLLAMA_CONTEXT_LENGTH` overrides it).
pub const DEFAULT_NUM_CTX: usize = 4096;

#[derive(Debug, Clone, PartialEq)]
pub struct Options {
    pub num_ctx: usize,
    pub num_keep: usize,
    /// -1 = until a stop; -2 = fill the context.
    pub num_predict: i64,
    pub num_thread: i64,
    /// Layers to offload to GPUs; -1 (the default): as many as fit.
    pub num_gpu: i64,
    /// The GPU that takes the whole model, when set.
    pub main_gpu: Option<i64>,
    /// Prompt tokens evaluated per step (llama.cpp's batch size).
    pub num_batch: usize,
    /// Most tokens drafted per step for speculative decoding (Ollama's `draft_num_predict`);
    /// 0 turns drafting off, None keeps the engine's default.
    pub draft_num_predict: Option<usize>,
    pub stop: Vec<String>,
    pub sampling: SamplingOptions,
}

enum Kind {
    Int,
    Float,
    Bool,
    Strings,
}

/// Every option `api.Options`/`api.Runner` has, with its Go type.
fn kind_of(key: &str) -> Option<Kind> {
    Some(match key {
        "num_ctx" | "num_batch" | "num_gpu" | "main_gpu" | "num_thread" | "num_keep" | "seed"
        | "num_predict" | "top_k" | "repeat_last_n" | "draft_num_predict" => Kind::Int,
        "top_p" | "min_p" | "typical_p" | "temperature" | "repeat_penalty" | "presence_penalty"
        | "frequency_penalty" => Kind::Float,
        "use_mmap" => Kind::Bool,
        "stop" => Kind::Strings,
        _ => return None,
    })
}

impl Options {
    /// Ollama's defaults, with `OLLAMA_CONTEXT_LENGTH` for `num_ctx`.
    pub fn defaults() -> Options {
        let num_ctx = crate::env::var(crate::env::OLLAMA_CONTEXT_LENGTH)
            .parse::<usize>()
            .ok()
            .filter(|n| *n > 0)
            .unwrap_or(DEFAULT_NUM_CTX);
        Options {
            num_ctx,
            num_keep: 4,
            num_predict: -1,
            num_thread: 0,
            num_gpu: -1,
            main_gpu: None,
            num_batch: 512,
            draft_num_predict: None,
            stop: Vec::new(),
            sampling: SamplingOptions::default(),
        }
    }

    /// Defaults, then the model's parameters, then the request's options.
    pub fn resolve(
        model: &Map<String, Value>,
        request: Option<&Map<String, Value>>,
    ) -> Result<Options, ApiError> {
        let mut options = Options::defaults();
        options.apply(model)?;
        if let Some(request) = request {
            options.apply(request)?;
        }
        Ok(options)
    }

    fn apply(&mut self, map: &Map<String, Value>) -> Result<(), ApiError> {
        for (key, value) in map {
            if value.is_null() {
                continue;
            }
            let Some(kind) = kind_of(key) else {
                continue;
            };
            let error = |type_name: &str| {
                ApiError::bad_request(format!("option \"{key}\" must be of type {type_name}"))
            };
            match kind {
                Kind::Int => {
                    let n = value.as_f64().ok_or_else(|| error("integer"))?;
                    self.set_int(key, n as i64);
                }
                Kind::Float => {
                    let f = value.as_f64().ok_or_else(|| error("float32"))?;
                    self.set_float(key, f as f32);
                }
                Kind::Bool => {
                    value.as_bool().ok_or_else(|| error("boolean"))?;
                }
                Kind::Strings => {
                    let items = value.as_array().ok_or_else(|| error("array"))?;
                    self.stop = items
                        .iter()
                        .map(|v| v.as_str().map(str::to_string))
                        .collect::<Option<Vec<_>>>()
                        .ok_or_else(|| {
                            ApiError::bad_request(format!(
                                "option \"{key}\" must be of an array of strings"
                            ))
                        })?;
                }
            }
        }
        Ok(())
    }

    fn set_int(&mut self, key: &str, n: i64) {
        match key {
            "num_ctx" => self.num_ctx = n.max(4) as usize,
            "num_keep" => self.num_keep = n.max(0) as usize,
            "num_predict" => self.num_predict = n,
            "num_thread" => self.num_thread = n,
            "num_gpu" => self.num_gpu = n,
            "main_gpu" => self.main_gpu = Some(n),
            "num_batch" => self.num_batch = n.clamp(1, 1 << 16) as usize,
            "seed" => self.sampling.seed = (n >= 0).then_some(n as u64),
            "top_k" => self.sampling.top_k = n,
            "draft_num_predict" => self.draft_num_predict = Some(n.clamp(0, 64) as usize),
            "repeat_last_n" => self.sampling.repeat_last_n = n,
            _ => {}
        }
    }

    fn set_float(&mut self, key: &str, f: f32) {
        let s = &mut self.sampling;
        match key {
            "temperature" => s.temperature = f,
            "top_p" => s.top_p = f,
            "min_p" => s.min_p = f,
            "repeat_penalty" => s.repeat_penalty = f,
            "presence_penalty" => s.presence_penalty = f,
            "frequency_penalty" => s.frequency_penalty = f,
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn map(v: Value) -> Map<String, Value> {
        v.as_object().unwrap().clone()
    }

    #[test]
    fn request_options_override_model_parameters_which_override_defaults() {
        let model = map(json!({"temperature": 0.2, "top_k": 10, "stop": ["a"]}));
        let request = map(json!({"temperature": 0.9, "num_ctx": 1024}));
        let options = Options::resolve(&model, Some(&request)).unwrap();
        assert_eq!(options.sampling.temperature, 0.9);
        assert_eq!(options.sampling.top_k, 10);
        assert_eq!(options.num_ctx, 1024);
        assert_eq!(options.stop, vec!["a"]);
        assert_eq!(options.sampling.top_p, 0.9, "default");
        assert_eq!(options.num_predict, -1, "default");
    }

    #[test]
    fn wrong_types_get_ollamas_messages() {
        let cases = [
            (
                json!({"num_ctx": "big"}),
                "option \"num_ctx\" must be of type integer",
            ),
            (
                json!({"temperature": "hot"}),
                "option \"temperature\" must be of type float32",
            ),
            (
                json!({"stop": "x"}),
                "option \"stop\" must be of type array",
            ),
            (
                json!({"stop": [1]}),
                "option \"stop\" must be of an array of strings",
            ),
            (
                json!({"use_mmap": 1}),
                "option \"use_mmap\" must be of type boolean",
            ),
        ];
        for (value, message) in cases {
            let err = Options::resolve(&map(value), None).unwrap_err();
            assert_eq!(err.message(), message);
        }
    }

    #[test]
    fn unknown_and_removed_options_are_ignored() {
        let options = Options::resolve(
            &map(json!({"mirostat": 2, "tfs_z": 1.0, "whatever": "x", "seed": null})),
            None,
        )
        .unwrap();
        assert_eq!(options, Options::defaults());
    }

    #[test]
    fn integer_options_accept_floats_and_truncate() {
        let options =
            Options::resolve(&map(json!({"seed": 42.7, "num_predict": 5.0})), None).unwrap();
        assert_eq!(options.sampling.seed, Some(42));
        assert_eq!(options.num_predict, 5);
    }
}

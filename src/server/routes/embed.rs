//! `POST /api/embed` (normalised vectors, many inputs) and the legacy `POST /api/embeddings`
//! (one prompt, the raw vector), on llama.cpp with embeddings on (`crate::engine::embedding`).
//! All inputs of a request go through the model together, in multi-sequence batches.

use crate::engine::embedding::{normalize, EmbedError};
use crate::server::error::{parse_json, ApiError};
use crate::server::inference::{find_model, keep_alive};
use crate::server::AppState;
use actix_web::{web, HttpResponse};
use serde::Deserialize;
use serde_json::{json, Map, Value};
use std::time::{Duration, Instant};

#[derive(Deserialize, Default)]
struct EmbedBody {
    #[serde(default)]
    model: String,
    #[serde(default)]
    input: Option<Value>,
    #[serde(default)]
    truncate: Option<bool>,
    #[serde(default)]
    dimensions: Option<i64>,
    #[serde(default)]
    keep_alive: Option<Value>,
    #[serde(default)]
    options: Option<Map<String, Value>>,
}

#[derive(Deserialize, Default)]
struct EmbeddingsBody {
    #[serde(default)]
    model: String,
    #[serde(default)]
    prompt: String,
    #[serde(default)]
    keep_alive: Option<Value>,
    #[serde(default)]
    options: Option<Map<String, Value>>,
}

/// What one embedding request produced.
struct Embedded {
    vectors: Vec<Vec<f32>>,
    prompt_tokens: usize,
    load_duration: Duration,
}

/// Ollama's accepted `input`s: a string, an array of strings, or nothing; `""` and `[]` mean
/// no input.
fn inputs_of(input: Option<&Value>) -> Result<Vec<String>, ApiError> {
    super::string_list(input, "invalid input type")
}

/// Loads the model (an embedding model, else Ollama's 400) and embeds `inputs`, which may be
/// none (the model is then only loaded).
async fn run(
    state: &web::Data<AppState>,
    model: &str,
    missing: ApiError,
    inputs: Vec<String>,
    truncate: bool,
    keep_alive_value: Option<&Value>,
    options: Option<&Map<String, Value>>,
) -> Result<Embedded, ApiError> {
    let entered = Instant::now();
    let keep_alive = keep_alive(keep_alive_value)?;
    let target = find_model(state, model, missing).await?;
    target.require("embedding")?;
    let options = target.options(options)?;
    let load = target
        .load_request(&state.store, &options, keep_alive)
        .ok_or_else(|| ApiError::bad_request("model has no weights"))?;
    let (lease, ready) = state.scheduler.acquire(load).await?;
    let load_duration = ready.saturating_duration_since(entered);
    let embedder = lease.runner.embedder()?;
    if inputs.is_empty() {
        return Ok(Embedded {
            vectors: Vec::new(),
            prompt_tokens: 0,
            load_duration,
        });
    }
    let limit = options.num_ctx;
    let embedded = web::block(move || embedder.embed(&inputs, limit, truncate))
        .await
        .map_err(|_| ApiError::internal("the embedding model crashed"))?
        .map_err(|e| match e {
            EmbedError::Failed(message) => ApiError::internal(message),
            refused => ApiError::bad_request(refused.to_string()),
        })?;
    drop(lease);
    crate::memory::note_activity();
    Ok(Embedded {
        vectors: embedded.vectors,
        prompt_tokens: embedded.prompt_tokens,
        load_duration,
    })
}

/// `vector` normalised, cut to `dimensions` when that is smaller, and normalised again.
fn finish(mut vector: Vec<f32>, dimensions: Option<i64>) -> Result<Vec<f32>, ApiError> {
    let fail = |e: EmbedError| ApiError::internal(e.to_string());
    normalize(&mut vector).map_err(fail)?;
    if let Some(wanted) = dimensions.and_then(|d| usize::try_from(d).ok()) {
        if wanted > 0 && wanted < vector.len() {
            vector.truncate(wanted);
            normalize(&mut vector).map_err(fail)?;
        }
    }
    Ok(vector)
}

pub async fn embed(state: web::Data<AppState>, body: web::Bytes) -> Result<HttpResponse, ApiError> {
    let started = Instant::now();
    let request: EmbedBody = parse_json(&body)?;
    let inputs = inputs_of(request.input.as_ref())?;
    let missing = ApiError::not_found("model '' not found");
    let embedded = run(
        &state,
        &request.model,
        missing,
        inputs,
        request.truncate.unwrap_or(true),
        request.keep_alive.as_ref(),
        request.options.as_ref(),
    )
    .await?;
    let vectors = embedded
        .vectors
        .into_iter()
        .map(|v| finish(v, request.dimensions))
        .collect::<Result<Vec<_>, _>>()?;
    if vectors.is_empty() {
        return Ok(HttpResponse::Ok().json(json!({"model": request.model, "embeddings": []})));
    }
    Ok(HttpResponse::Ok().json(json!({
        "model": request.model,
        "embeddings": vectors,
        "total_duration": started.elapsed().as_nanos() as u64,
        "load_duration": embedded.load_duration.as_nanos() as u64,
        "prompt_eval_count": embedded.prompt_tokens,
    })))
}

/// The legacy endpoint: one prompt, the raw (not normalised) vector.
pub async fn embeddings(
    state: web::Data<AppState>,
    body: web::Bytes,
) -> Result<HttpResponse, ApiError> {
    let request: EmbeddingsBody = parse_json(&body)?;
    let inputs = if request.prompt.is_empty() {
        Vec::new()
    } else {
        vec![request.prompt.clone()]
    };
    let embedded = run(
        &state,
        &request.model,
        ApiError::bad_request("model is required"),
        inputs,
        true,
        request.keep_alive.as_ref(),
        request.options.as_ref(),
    )
    .await?;
    let vector: Vec<f64> = embedded
        .vectors
        .into_iter()
        .next()
        .unwrap_or_default()
        .into_iter()
        .map(f64::from)
        .collect();
    Ok(HttpResponse::Ok().json(json!({ "embedding": vector })))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inputs_follow_ollamas_types() {
        assert!(inputs_of(None).unwrap().is_empty());
        assert!(inputs_of(Some(&json!(""))).unwrap().is_empty());
        assert!(inputs_of(Some(&json!([]))).unwrap().is_empty());
        assert_eq!(inputs_of(Some(&json!("a"))).unwrap(), ["a"]);
        assert_eq!(inputs_of(Some(&json!(["a", ""]))).unwrap(), ["a", ""]);
        for bad in [json!([1]), json!(1), json!({"a": 1}), json!(["a", null])] {
            assert_eq!(
                inputs_of(Some(&bad)).unwrap_err().message(),
                "invalid input type"
            );
        }
    }

    #[test]
    fn dimensions_cut_and_renormalise() {
        let close = |got: Vec<f32>, want: &[f32]| {
            assert_eq!(got.len(), want.len(), "{got:?}");
            assert!(
                got.iter().zip(want).all(|(a, b)| (a - b).abs() < 1e-6),
                "{got:?}"
            );
        };
        close(finish(vec![3.0, 4.0, 12.0], Some(2)).unwrap(), &[0.6, 0.8]);
        close(finish(vec![0.0, 2.0], Some(5)).unwrap(), &[0.0, 1.0]);
        close(finish(vec![0.0, 2.0], Some(-1)).unwrap(), &[0.0, 1.0]);
    }
}

//! `POST /api/tokenize` and `POST /api/detokenize` (beyond Ollama): the model's own tokenizer,
//! loaded through the scheduler like any request. Tokenizing adds no special tokens and
//! detokenizing keeps them, so `detokenize(tokenize(text)) == text`.

use crate::server::error::{parse_json, ApiError};
use crate::server::inference::{find_model, keep_alive};
use crate::server::scheduler::Lease;
use crate::server::AppState;
use actix_web::{web, HttpResponse};
use serde::Deserialize;
use serde_json::{json, Value};

#[derive(Deserialize)]
pub struct TokenizeBody {
    #[serde(default)]
    model: String,
    content: Option<String>,
    #[serde(default)]
    keep_alive: Option<Value>,
}

#[derive(Deserialize)]
pub struct DetokenizeBody {
    #[serde(default)]
    model: String,
    tokens: Option<Vec<i64>>,
    #[serde(default)]
    keep_alive: Option<Value>,
}

async fn lease(
    state: &web::Data<AppState>,
    model: &str,
    keep_alive_value: Option<&Value>,
) -> Result<Lease, ApiError> {
    let keep_alive = keep_alive(keep_alive_value)?;
    let target = find_model(state, model, ApiError::bad_request("model is required")).await?;
    if !target.has_capability("completion") {
        return Err(ApiError::bad_request(format!(
            "\"{}\" does not support tokenize",
            target.requested
        )));
    }
    let options = target.options(None)?;
    let load = target
        .load_request(&state.store, &options, keep_alive)
        .ok_or_else(|| ApiError::bad_request("model has no weights"))?;
    // The tokenizer is not the engine: no need to wait for a generation slot.
    let (lease, _) = state.scheduler.acquire_without_slot(load).await?;
    Ok(lease)
}

pub async fn tokenize(
    state: web::Data<AppState>,
    body: web::Bytes,
) -> Result<HttpResponse, ApiError> {
    let request: TokenizeBody = parse_json(&body)?;
    let content = request
        .content
        .ok_or_else(|| ApiError::bad_request("content is required"))?;
    let lease = lease(&state, &request.model, request.keep_alive.as_ref()).await?;
    let tokens = lease
        .runner
        .engine()?
        .encode(&content)
        .map_err(|e| ApiError::internal(e.to_string()))?;
    Ok(HttpResponse::Ok().json(json!({ "model": request.model, "tokens": tokens })))
}

pub async fn detokenize(
    state: web::Data<AppState>,
    body: web::Bytes,
) -> Result<HttpResponse, ApiError> {
    let request: DetokenizeBody = parse_json(&body)?;
    let tokens = request
        .tokens
        .ok_or_else(|| ApiError::bad_request("tokens is required"))?;
    let ids: Vec<u32> = tokens
        .iter()
        .map(|t| u32::try_from(*t).map_err(|_| ApiError::bad_request(format!("invalid token {t}"))))
        .collect::<Result<_, _>>()?;
    let lease = lease(&state, &request.model, request.keep_alive.as_ref()).await?;
    let content = lease.runner.engine()?.decode(&ids).map_err(|e| match e {
        crate::engine::EngineError::Unsupported(message) => ApiError::BadRequest(message),
        other => ApiError::internal(other.to_string()),
    })?;
    Ok(HttpResponse::Ok().json(json!({ "model": request.model, "content": content })))
}

//! `POST /api/pull` and `POST /api/push`: Ollama's requests and status streams over
//! `registry::pull`.

use crate::registry::pull;
use crate::server::error::{parse_json, ApiError};
use crate::server::progress;
use crate::server::AppState;
use crate::store::ModelName;
use actix_web::{web, HttpResponse, ResponseError};
use serde::Deserialize;

#[derive(Deserialize)]
pub struct TransferRequest {
    #[serde(default)]
    model: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    insecure: bool,
    #[serde(default)]
    stream: Option<bool>,
}

impl TransferRequest {
    /// The request and the model name it asks for, or Ollama's 400.
    fn decode(body: &[u8]) -> Result<(TransferRequest, ModelName), ApiError> {
        let request: TransferRequest = parse_json(body)?;
        let raw = if request.model.is_empty() {
            &request.name
        } else {
            &request.model
        };
        if raw.is_empty() {
            return Err(ApiError::bad_request("model is required"));
        }
        let name =
            ModelName::parse(raw).map_err(|_| ApiError::bad_request("invalid model name"))?;
        Ok((request, name))
    }
}

pub async fn pull(state: web::Data<AppState>, body: web::Bytes) -> HttpResponse {
    let (request, name) = match TransferRequest::decode(&body) {
        Ok(decoded) => decoded,
        Err(e) => return e.error_response(),
    };
    let (registry, downloads, store) = (
        state.registry.clone(),
        state.downloads.clone(),
        state.store.clone(),
    );
    progress::respond_async(request.stream.unwrap_or(true), move |progress| {
        pull::pull(registry, downloads, store, name, request.insecure, progress)
    })
    .await
}

pub async fn push(state: web::Data<AppState>, body: web::Bytes) -> HttpResponse {
    let (request, name) = match TransferRequest::decode(&body) {
        Ok(decoded) => decoded,
        Err(e) => return e.error_response(),
    };
    let (registry, store) = (state.registry.clone(), state.store.clone());
    progress::respond_async(request.stream.unwrap_or(true), move |progress| {
        pull::push(registry, store, name, request.insecure, progress)
    })
    .await
}

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
    fn name(&self) -> Result<ModelName, ApiError> {
        let raw = if self.model.is_empty() {
            &self.name
        } else {
            &self.model
        };
        if raw.is_empty() {
            return Err(ApiError::bad_request("model is required"));
        }
        ModelName::parse(raw).map_err(|_| ApiError::bad_request("invalid model name"))
    }
}

pub async fn pull(state: web::Data<AppState>, body: web::Bytes) -> HttpResponse {
    let request: TransferRequest = match parse_json(&body) {
        Ok(request) => request,
        Err(e) => return e.error_response(),
    };
    let name = match request.name() {
        Ok(name) => name,
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
    let request: TransferRequest = match parse_json(&body) {
        Ok(request) => request,
        Err(e) => return e.error_response(),
    };
    let name = match request.name() {
        Ok(name) => name,
        Err(e) => return e.error_response(),
    };
    let (registry, store) = (state.registry.clone(), state.store.clone());
    progress::respond_async(request.stream.unwrap_or(true), move |progress| {
        pull::push(registry, store, name, request.insecure, progress)
    })
    .await
}

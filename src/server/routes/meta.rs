//! `/`, `/api/version` and `/api/health`: liveness and version, as Ollama answers them.

use crate::server::AppState;
use actix_web::{web, HttpResponse};

pub async fn root() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/plain; charset=utf-8")
        .body("Ollama is running")
}

/// Ollama's `{"version"}`, as the Ollama release whose API this is, and rollama's own
/// version beside it.
pub async fn version() -> HttpResponse {
    HttpResponse::Ok().json(serde_json::json!({
        "version": crate::OLLAMA_VERSION,
        "rollama_version": crate::VERSION,
    }))
}

/// Not in Ollama: a small status object for health checks and load balancers.
pub async fn health(state: web::Data<AppState>) -> HttpResponse {
    let models = state.store.list().map(|m| m.len()).unwrap_or(0);
    HttpResponse::Ok().json(serde_json::json!({
        "status": "ok",
        "version": crate::VERSION,
        "ollama_version": crate::OLLAMA_VERSION,
        "models": models,
    }))
}

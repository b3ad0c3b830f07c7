//! Route table: which handler serves which path and method.

pub(crate) mod anthropic;
mod blobs;
mod chat;
mod create;
mod embed;
mod generate;
mod meta;
pub mod models;
pub(crate) mod openai;
mod pull;
mod rerank;
pub(crate) mod responses;
mod tokenize;

use super::{head, resource};
use actix_web::{
    body::MessageBody,
    dev::{ServiceRequest, ServiceResponse},
    middleware::Next,
    web,
};

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(
        resource("/")
            .route(web::get().to(meta::root))
            .route(head().to(meta::root)),
    )
    .service(
        resource("/api/version")
            .route(web::get().to(meta::version))
            .route(head().to(meta::version)),
    )
    .service(resource("/api/health").route(web::get().to(meta::health)))
    .service(
        resource("/api/tags")
            .route(web::get().to(models::tags))
            .route(head().to(models::tags)),
    )
    .service(resource("/api/show").route(web::post().to(models::show)))
    .service(resource("/api/copy").route(web::post().to(models::copy)))
    .service(resource("/api/delete").route(web::delete().to(models::delete)))
    .service(resource("/api/ps").route(web::get().to(models::ps)))
    .service(
        resource("/api/blobs/{digest}")
            .route(head().to(blobs::head))
            .route(web::post().to(blobs::upload)),
    )
    .service(resource("/api/create").route(web::post().to(create::create)))
    .service(resource("/api/pull").route(web::post().to(pull::pull)))
    .service(resource("/api/push").route(web::post().to(pull::push)))
    .service(with_images(resource("/api/generate")).route(web::post().to(generate::generate)))
    .service(with_images(resource("/api/chat")).route(web::post().to(chat::chat)))
    .service(resource("/api/tokenize").route(web::post().to(tokenize::tokenize)))
    .service(resource("/api/detokenize").route(web::post().to(tokenize::detokenize)))
    .service(
        with_images(resource("/v1/chat/completions"))
            .route(web::post().to(openai::chat_completions)),
    )
    .service(resource("/v1/completions").route(web::post().to(openai::completions)))
    .service(with_images(resource("/v1/messages")).route(web::post().to(anthropic::messages)))
    .service(with_images(resource("/v1/responses")).route(web::post().to(responses::responses)))
    .service(resource("/metrics").route(web::get().to(crate::server::metrics::scrape)))
    .service(resource("/v1/models").route(web::get().to(openai::list_models)))
    .service(resource("/v1/models/{model:.+}").route(web::get().to(openai::retrieve_model)));
    cfg.service(resource("/api/embed").route(web::post().to(embed::embed)))
        .service(resource("/api/embeddings").route(web::post().to(embed::embeddings)))
        .service(resource("/v1/embeddings").route(web::post().to(openai::embeddings)))
        .service(resource("/api/rerank").route(web::post().to(rerank::rerank)))
        .service(resource("/v1/rerank").route(web::post().to(rerank::rerank_v1)));
}

/// Request bodies on routes that carry base64 images may be this large; other JSON bodies are
/// capped lower (`server::MAX_JSON_BODY`).
pub const MAX_BODY_WITH_IMAGES: usize = 64 * 1024 * 1024;

/// A JSON field that may be a string or an array of strings (Ollama's `license` and `input`):
/// missing, null and `""` give no strings; any other type, or a non-string item, gives a 400
/// with `error`.
fn string_list(
    value: Option<&serde_json::Value>,
    error: &str,
) -> Result<Vec<String>, crate::server::error::ApiError> {
    use serde_json::Value;
    let invalid = || crate::server::error::ApiError::bad_request(error);
    match value {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::String(text)) if text.is_empty() => Ok(Vec::new()),
        Some(Value::String(text)) => Ok(vec![text.clone()]),
        Some(Value::Array(items)) => items
            .iter()
            .map(|item| item.as_str().map(str::to_string).ok_or_else(invalid))
            .collect(),
        Some(_) => Err(invalid()),
    }
}

fn with_images(resource: actix_web::Resource) -> actix_web::Resource {
    resource.app_data(web::PayloadConfig::new(MAX_BODY_WITH_IMAGES))
}

/// One line per request on stderr, in the spirit of gin's logger:
/// `[rollama] 2025/03/07 - 12:07:24 | 200 |  6.66ms | 127.0.0.1 | POST "/api/chat"`.
pub async fn log_request(
    request: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let started = std::time::Instant::now();
    crate::memory::note_activity();
    let method = request.method().clone();
    let path = request.path().to_string();
    let peer = request
        .peer_addr()
        .map(|a| a.ip().to_string())
        .unwrap_or_default();
    let route = request.match_pattern();
    let response = next.call(request).await?;
    crate::server::metrics::metrics().request(
        method.as_str(),
        route.as_deref(),
        response.status().as_u16(),
    );
    eprintln!(
        "[rollama] {} | {} | {:>10.2?} | {:>15} | {:<7} {:?}",
        chrono::Local::now().format("%Y/%m/%d - %H:%M:%S"),
        response.status().as_u16(),
        started.elapsed(),
        peer,
        method.as_str(),
        path
    );
    Ok(response)
}

/// Decodes and checks `body` as `route` does before it looks the model up (for the fuzz
/// targets); the result is dropped: only a panic would matter.
pub(crate) fn check_body(route: &str, body: &[u8]) {
    let _ = match route {
        "/api/chat" => chat::check_body(body),
        _ => generate::check_body(body),
    };
}

/// Translates a compatible API's request to a native body as the route does, and checks that.
pub(crate) fn check_translated(route: &str, request: &serde_json::Map<String, serde_json::Value>) {
    let (native, native_route) = match route {
        "/v1/chat/completions" => (openai::native_chat_request(request), "/api/chat"),
        "/v1/completions" => (openai::native_generate_request(request), "/api/generate"),
        "/v1/messages" => (anthropic::native_request(request), "/api/chat"),
        _ => (responses::native_request(request), "/api/chat"),
    };
    if let Ok(native) = native {
        check_body(native_route, native.to_string().as_bytes());
    }
}

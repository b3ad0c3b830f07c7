//! The HTTP server: the app factory on a pre-bound listener, shared state, error encoding,
//! progress streams, and one route file per area under `routes/`.

pub mod compat;
pub mod error;
pub mod guard;
pub mod images;
pub mod inference;
pub mod keep_alive;
pub mod limits;
pub mod metrics;
pub mod options;
pub mod progress;
pub mod prompt;
pub mod routes;
pub mod scheduler;
pub mod thinking;
pub mod tools;

use crate::store::Store;
use actix_web::{dev::Server, http::Method, web, App, HttpResponse, HttpServer};
use std::net::TcpListener;

/// State shared by every worker, created once outside the `HttpServer::new` closure.
pub struct AppState {
    pub store: Store,
    pub scheduler: scheduler::Scheduler,
    /// Parsed GGUF headers by blob digest: reading one (vocabularies included) costs
    /// milliseconds, and blobs never change.
    gguf_headers: std::sync::Mutex<
        std::collections::HashMap<crate::store::Digest, std::sync::Arc<crate::gguf::Gguf>>,
    >,
    /// Models as requests name them, read from the store, kept while their manifest file is
    /// unchanged (a request then costs one `stat` instead of reading several files).
    pub(crate) models: std::sync::Mutex<std::collections::HashMap<String, CachedModel>>,
    /// The registry client (pull, push) and the blob downloads in progress.
    pub registry: std::sync::Arc<crate::registry::Registry>,
    pub downloads: std::sync::Arc<crate::registry::download::Downloads>,
}

/// A model read for a request, and the manifest file state it was read from.
#[derive(Clone)]
pub(crate) struct CachedModel {
    pub manifest: std::path::PathBuf,
    pub modified: std::time::SystemTime,
    pub len: u64,
    /// Store writes replace files by renaming, so a rewritten manifest is a new inode.
    pub inode: u64,
    pub view: std::sync::Arc<routes::models::ModelView>,
}

impl CachedModel {
    /// Whether the manifest file is still the one this was read from.
    pub fn is_current(&self) -> bool {
        std::fs::metadata(&self.manifest).is_ok_and(|m| {
            m.len() == self.len
                && std::os::unix::fs::MetadataExt::ino(&m) == self.inode
                && m.modified().is_ok_and(|t| t == self.modified)
        })
    }
}

impl AppState {
    pub fn new(store: Store) -> AppState {
        AppState {
            store,
            scheduler: scheduler::Scheduler::from_env(),
            gguf_headers: std::sync::Mutex::new(std::collections::HashMap::new()),
            models: std::sync::Mutex::new(std::collections::HashMap::new()),
            registry: std::sync::Arc::new(crate::registry::Registry::new(
                crate::registry::auth::Identity::default_path(),
            )),
            downloads: std::sync::Arc::new(crate::registry::download::Downloads::from_env()),
        }
    }

    /// The GGUF header of a blob, read once.
    pub fn gguf(
        &self,
        digest: &crate::store::Digest,
    ) -> Result<std::sync::Arc<crate::gguf::Gguf>, crate::gguf::GgufError> {
        if let Some(cached) = self
            .gguf_headers
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(digest)
        {
            return Ok(cached.clone());
        }
        let parsed = std::sync::Arc::new(crate::gguf::Gguf::open(&self.store.blob_path(digest))?);
        let mut cache = self.gguf_headers.lock().unwrap_or_else(|e| e.into_inner());
        // A store holds few models; a bound keeps a long-running server from growing anyway.
        if cache.len() >= 64 {
            cache.clear();
        }
        cache.insert(*digest, parsed.clone());
        Ok(parsed)
    }
}

/// JSON request bodies larger than this are refused with 413, except on the routes that carry
/// images (`routes::MAX_BODY_WITH_IMAGES`). Blob uploads stream and are not limited.
const MAX_JSON_BODY: usize = 2 * 1024 * 1024;

/// Builds the server on an already-bound listener (tests bind port 0).
pub fn start(listener: TcpListener, state: AppState) -> std::io::Result<Server> {
    let state = web::Data::new(state);
    let address = listener.local_addr()?;
    let guard = web::Data::new(guard::Guard::from_env(address)?);
    let limits = web::Data::new(limits::Limits::from_env());
    if !address.ip().is_loopback() && !guard.requires_key() {
        eprintln!(
            "WARNING: listening on {address}, which other machines can reach, without an API key: \
             anyone who can connect can use and change this server's models. Set {} (or {}) \
             to require one.",
            guard::ROLLAMA_API_KEY,
            guard::ROLLAMA_API_KEY_FILE
        );
    }
    // Unload models whose keep-alive ran out.
    let reaper = state.scheduler.clone();
    actix_web::rt::spawn(async move {
        loop {
            actix_web::rt::time::sleep(std::time::Duration::from_millis(250)).await;
            reaper.reap();
        }
    });
    let server = HttpServer::new(move || {
        App::new()
            .app_data(state.clone())
            .app_data(guard.clone())
            .app_data(limits.clone())
            .app_data(web::PayloadConfig::new(MAX_JSON_BODY))
            .wrap(actix_web::middleware::from_fn(limits::body_timeout))
            // Inside the request logger, so refused requests are logged too.
            .wrap(actix_web::middleware::from_fn(guard::guard))
            .wrap(actix_web::middleware::from_fn(routes::log_request))
            .configure(routes::configure)
            .default_service(web::to(|| async {
                HttpResponse::NotFound()
                    .content_type("text/plain")
                    .body("404 page not found")
            }))
    })
    .shutdown_timeout(5)
    // A client that closes its connection abandons its request, as with Ollama (Go's server
    // cancels a request's context when the peer hangs up). actix's dispatcher keeps reading
    // the socket while a handler runs; with half-closed connections refused, the EOF it reads
    // drops the handler's future. That one place cancels every route: a generation that has
    // not sent a byte yet (`stream: false`, the OpenAI and Anthropic routes, held-back tool
    // calls), an embedding, and a request still queued for its model or a slot.
    .h1_allow_half_closed(false)
    .client_request_timeout(limits::HEADER_TIMEOUT)
    // Streamed tokens must leave as soon as they are written, not wait for Nagle's algorithm.
    .tcp_nodelay(true)
    // Signals are handled by the caller (`cli/serve.rs`), installed before the address is
    // printed so that a signal sent right after start-up is never missed.
    .disable_signals()
    .listen(listener)?
    .run();
    Ok(server)
}

/// A resource whose other methods answer 405 as Ollama's router does.
pub(crate) fn resource(path: &str) -> actix_web::Resource {
    web::resource(path).default_service(web::to(|| async {
        HttpResponse::MethodNotAllowed()
            .content_type("text/plain")
            .body("405 method not allowed")
    }))
}

/// `HEAD` routed to the same handler as `GET`; actix strips the body.
pub(crate) fn head() -> actix_web::Route {
    web::route().method(Method::HEAD)
}

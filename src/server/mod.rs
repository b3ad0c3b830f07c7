//! The HTTP server: the app factory on a pre-bound listener, shared state, error encoding,
//! progress streams, and one route file per area under `routes/`.

pub mod error;
pub mod inference;
pub mod keep_alive;
pub mod options;
pub mod progress;
pub mod prompt;
pub mod routes;
pub mod scheduler;
pub mod tools;

use crate::store::Store;
use actix_web::{dev::Server, http::Method, web, App, HttpResponse, HttpServer};
use std::net::TcpListener;

/// State shared by every worker, created once outside the `HttpServer::new` closure.
pub struct AppState {
    pub store: Store,
    pub scheduler: scheduler::Scheduler,
}

impl AppState {
    pub fn new(store: Store) -> AppState {
        AppState {
            store,
            scheduler: scheduler::Scheduler::from_env(),
        }
    }
}

/// Request bodies larger than this are refused (blob uploads stream and are not limited).
const MAX_JSON_BODY: usize = 64 * 1024 * 1024;

/// Builds the server on an already-bound listener (tests bind port 0).
pub fn start(listener: TcpListener, state: AppState) -> std::io::Result<Server> {
    let state = web::Data::new(state);
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
            .app_data(web::PayloadConfig::new(MAX_JSON_BODY))
            .wrap(actix_web::middleware::from_fn(routes::log_request))
            .configure(routes::configure)
            .default_service(web::to(|| async {
                HttpResponse::NotFound()
                    .content_type("text/plain")
                    .body("404 page not found")
            }))
    })
    .shutdown_timeout(5)
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

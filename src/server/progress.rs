//! Progress streams for long operations (`create`, later `pull`/`push`): the work sends
//! events into a channel owned by the response. With `stream` (the default) each event is
//! one NDJSON line; with `"stream": false` the last event is returned as one JSON object, or
//! the error with its status. An error after the first line is sent as a final
//! `{"error":"…"}` line, as Ollama does.

use super::error::ApiError;
use actix_web::{HttpResponse, ResponseError};
use bytes::Bytes;
use futures_util::stream;
use tokio::sync::mpsc;

/// One message from the work to the response.
#[derive(Debug)]
pub enum Event {
    Progress(serde_json::Value),
    Failed(ApiError),
}

/// The work's end of the channel.
#[derive(Clone)]
pub struct Progress {
    sender: mpsc::Sender<Event>,
}

impl Progress {
    /// Sends a `{"status": …}` line. Returns false once the client has gone away, so the work
    /// can stop early.
    pub fn status(&self, status: impl Into<String>) -> bool {
        self.send(serde_json::json!({ "status": status.into() }))
    }

    pub fn send(&self, value: serde_json::Value) -> bool {
        self.sender.blocking_send(Event::Progress(value)).is_ok()
    }

    /// [`Progress::send`] from async work.
    pub async fn emit(&self, value: serde_json::Value) -> bool {
        self.sender.send(Event::Progress(value)).await.is_ok()
    }

    /// [`Progress::status`] from async work.
    pub async fn emit_status(&self, status: impl Into<String>) -> bool {
        self.emit(serde_json::json!({ "status": status.into() }))
            .await
    }

    /// Whether the client has gone away.
    pub fn is_closed(&self) -> bool {
        self.sender.is_closed()
    }

    pub fn fail(&self, error: ApiError) {
        let _ = self.sender.blocking_send(Event::Failed(error));
    }
}

/// Runs `work` on the blocking pool and turns what it reports into the response.
pub async fn respond<F>(stream_response: bool, work: F) -> HttpResponse
where
    F: FnOnce(&Progress) -> Result<(), ApiError> + Send + 'static,
{
    let (sender, receiver) = mpsc::channel::<Event>(64);
    let progress = Progress { sender };
    tokio::task::spawn_blocking(move || {
        if let Err(error) = work(&progress) {
            progress.fail(error);
        }
    });
    response(stream_response, receiver).await
}

/// Runs async `work` as a task of its own and turns what it reports into the response. The
/// task sees the client leave through [`Progress::emit`] returning false.
pub async fn respond_async<F, Fut>(stream_response: bool, work: F) -> HttpResponse
where
    F: FnOnce(Progress) -> Fut + 'static,
    Fut: std::future::Future<Output = Result<(), ApiError>> + 'static,
{
    let (sender, receiver) = mpsc::channel::<Event>(64);
    let progress = Progress { sender };
    actix_web::rt::spawn(async move {
        let reporter = progress.clone();
        if let Err(error) = work(progress).await {
            let _ = reporter.sender.send(Event::Failed(error)).await;
        }
    });
    response(stream_response, receiver).await
}

async fn response(stream_response: bool, mut receiver: mpsc::Receiver<Event>) -> HttpResponse {
    if !stream_response {
        let mut last = None;
        while let Some(event) = receiver.recv().await {
            match event {
                Event::Progress(value) => last = Some(value),
                Event::Failed(error) => return error.error_response(),
            }
        }
        return HttpResponse::Ok()
            .content_type("application/json; charset=utf-8")
            .body(last.unwrap_or(serde_json::Value::Null).to_string());
    }

    // Errors before the first line still get their real status.
    let first = match receiver.recv().await {
        Some(Event::Failed(error)) => return error.error_response(),
        Some(Event::Progress(value)) => value,
        None => {
            return HttpResponse::Ok()
                .content_type("application/x-ndjson")
                .finish()
        }
    };
    let body = stream::unfold(
        (Some(first), receiver),
        |(pending, mut receiver)| async move {
            let value = match pending {
                Some(value) => value,
                None => match receiver.recv().await? {
                    Event::Progress(value) => value,
                    Event::Failed(error) => error.to_json(),
                },
            };
            let mut line = value.to_string().into_bytes();
            line.push(b'\n');
            Some((
                Ok::<_, std::convert::Infallible>(Bytes::from(line)),
                (None, receiver),
            ))
        },
    );
    HttpResponse::Ok()
        .content_type("application/x-ndjson")
        .streaming(body)
}

//! Limits that keep one client from exhausting the server: a time-out on request bodies that
//! stop arriving, a cap on blob uploads running at once, and a floor of free disk space that
//! uploads may not write below. (JSON body sizes are capped per route in `routes/`; the request
//! queue is bounded by the scheduler.)

use crate::server::error::ApiError;
use actix_web::body::MessageBody;
use actix_web::dev::{Payload, ServiceRequest, ServiceResponse};
use actix_web::error::PayloadError;
use actix_web::middleware::Next;
use actix_web::HttpMessage as _;
use futures_util::StreamExt;
use std::path::Path;
use std::time::Duration;

/// Seconds a request body may go without a byte arriving before the request is dropped.
pub const ROLLAMA_BODY_TIMEOUT: &str = "ROLLAMA_BODY_TIMEOUT";
/// Free bytes on the store's file system below which uploads are refused (507).
pub const ROLLAMA_MIN_FREE_SPACE: &str = "ROLLAMA_MIN_FREE_SPACE";
/// Blob uploads that may run at once; more get 503 with `Retry-After`.
pub const ROLLAMA_MAX_UPLOADS: &str = "ROLLAMA_MAX_UPLOADS";

const DEFAULT_BODY_TIMEOUT: Duration = Duration::from_secs(30);
const DEFAULT_MIN_FREE_SPACE: u64 = 256 * 1024 * 1024;
const DEFAULT_MAX_UPLOADS: usize = 4;
/// The time a client has to send a request's line and headers (actix's own default, 5 s,
/// stated here so it is a decision, not an accident).
pub const HEADER_TIMEOUT: Duration = Duration::from_secs(5);

/// The limits, resolved once at start-up.
pub struct Limits {
    pub body_timeout: Duration,
    pub min_free_space: u64,
    pub uploads: tokio::sync::Semaphore,
}

impl Limits {
    pub fn from_env() -> Limits {
        let number = |key: &str| crate::env::var(key).parse::<u64>().ok();
        Limits {
            body_timeout: number(ROLLAMA_BODY_TIMEOUT)
                .filter(|s| *s > 0)
                .map(Duration::from_secs)
                .unwrap_or(DEFAULT_BODY_TIMEOUT),
            min_free_space: number(ROLLAMA_MIN_FREE_SPACE).unwrap_or(DEFAULT_MIN_FREE_SPACE),
            uploads: tokio::sync::Semaphore::new(
                number(ROLLAMA_MAX_UPLOADS)
                    .filter(|n| *n > 0)
                    .map_or(DEFAULT_MAX_UPLOADS, |n| n as usize),
            ),
        }
    }

    /// A slot for one blob upload, or 503 when all are taken.
    pub fn upload_slot(&self) -> Result<tokio::sync::SemaphorePermit<'_>, ApiError> {
        self.uploads.try_acquire().map_err(|_| {
            ApiError::ServiceUnavailable("too many blob uploads at once, try again".to_string())
        })
    }

    /// Refuses a write of `incoming` more bytes into `dir` that would leave less free space
    /// than the floor.
    pub fn check_space(&self, dir: &Path, incoming: u64) -> Result<(), ApiError> {
        let free =
            free_space(dir).map_err(|e| ApiError::internal(format!("checking free space: {e}")))?;
        let needed = incoming.saturating_add(self.min_free_space);
        if free < needed {
            return Err(ApiError::InsufficientStorage(format!(
                "not enough disk space: {} free, {} needed ({} to write and {} kept free)",
                crate::format::human_bytes(free as i64),
                crate::format::human_bytes(needed as i64),
                crate::format::human_bytes(incoming as i64),
                crate::format::human_bytes(self.min_free_space as i64),
            )));
        }
        Ok(())
    }
}

/// Bytes available to this user on the file system holding `dir`.
pub fn free_space(dir: &Path) -> std::io::Result<u64> {
    let stat = nix::sys::statvfs::statvfs(dir).map_err(std::io::Error::from)?;
    Ok(stat.blocks_available() as u64 * stat.fragment_size() as u64)
}

/// Middleware: a request body that stalls for longer than the time-out ends the request (the
/// extractor or the upload then fails, and the connection is closed), so a client that sends
/// a body a byte a minute cannot hold a worker and a buffer forever.
pub async fn body_timeout(
    mut request: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let timeout = request
        .app_data::<actix_web::web::Data<Limits>>()
        .map_or(DEFAULT_BODY_TIMEOUT, |l| l.body_timeout);
    let payload = request.take_payload();
    let stalling = futures_util::stream::unfold(payload, move |mut payload| async move {
        match tokio::time::timeout(timeout, payload.next()).await {
            Ok(Some(item)) => Some((item, payload)),
            Ok(None) => None,
            Err(_) => Some((
                Err(PayloadError::Io(std::io::Error::new(
                    std::io::ErrorKind::TimedOut,
                    format!("no request body received for {} s", timeout.as_secs()),
                ))),
                // Ends the stream after the error.
                Payload::None,
            )),
        }
    });
    request.set_payload(Payload::Stream {
        payload: Box::pin(stalling),
    });
    next.call(request).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn free_space_is_read_and_the_floor_is_enforced() {
        let dir = tempfile::tempdir().unwrap();
        let free = free_space(dir.path()).unwrap();
        assert!(free > 0);
        let limits = Limits {
            body_timeout: DEFAULT_BODY_TIMEOUT,
            min_free_space: 0,
            uploads: tokio::sync::Semaphore::new(1),
        };
        assert!(limits.check_space(dir.path(), 1).is_ok());
        let err = limits.check_space(dir.path(), free + 1).unwrap_err();
        assert!(matches!(err, ApiError::InsufficientStorage(_)), "{err:?}");
        assert!(err.message().contains("not enough disk space"), "{err}");
    }

    #[test]
    fn upload_slots_run_out_and_come_back() {
        let limits = Limits {
            body_timeout: DEFAULT_BODY_TIMEOUT,
            min_free_space: 0,
            uploads: tokio::sync::Semaphore::new(2),
        };
        let a = limits.upload_slot().unwrap();
        let _b = limits.upload_slot().unwrap();
        assert!(matches!(
            limits.upload_slot(),
            Err(ApiError::ServiceUnavailable(_))
        ));
        drop(a);
        assert!(limits.upload_slot().is_ok());
    }
}

//! `HEAD|POST /api/blobs/{digest}`: existence checks and streamed, verified uploads.

use crate::server::error::ApiError;
use crate::server::limits::Limits;
use crate::server::AppState;
use crate::store::{Digest, INVALID_DIGEST_FORMAT};
use actix_web::http::header;
use actix_web::{web, HttpRequest, HttpResponse};
use futures_util::StreamExt;
use std::io::Write;

/// How many bytes an upload writes between two checks of the free space.
const SPACE_CHECK_EVERY: u64 = 64 * 1024 * 1024;

fn parse_digest(raw: &str) -> Result<Digest, ApiError> {
    Digest::parse(raw).map_err(|_| ApiError::bad_request(INVALID_DIGEST_FORMAT))
}

pub async fn head(
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let digest = parse_digest(&path)?;
    if state.store.has_blob(&digest) {
        Ok(HttpResponse::Ok().finish())
    } else {
        Err(ApiError::not_found(format!("blob \"{digest}\" not found")))
    }
}

/// Streams the body to a temp file on the blocking pool while hashing it; the blob appears
/// under its name only if the whole body arrived and hashes to the digest in the path. A
/// client that hangs up mid-upload leaves nothing behind.
///
/// Uploads take one of a few slots (503 when none is free) and may not fill the disk: the
/// declared length is checked against the free space before the first byte is written, and
/// the free space again every `SPACE_CHECK_EVERY` bytes (507 when it runs out).
pub async fn upload(
    state: web::Data<AppState>,
    limits: web::Data<Limits>,
    request: HttpRequest,
    path: web::Path<String>,
    mut payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let digest = parse_digest(&path)?;
    if state.store.has_blob(&digest) {
        return Ok(HttpResponse::Ok().finish());
    }
    let _slot = limits.upload_slot()?;
    let declared = request
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok())
        .unwrap_or(0);
    let blobs = state.store.blobs_dir();
    limits.check_space(&blobs, declared)?;
    let mut writer = state.store.blob_writer(Some(digest))?;
    let (sender, mut receiver) = tokio::sync::mpsc::channel::<bytes::Bytes>(16);
    let limits_for_writer = limits.clone().into_inner();
    let writing = tokio::task::spawn_blocking(move || -> Result<(), ApiError> {
        let mut since_check = 0u64;
        while let Some(chunk) = receiver.blocking_recv() {
            since_check += chunk.len() as u64;
            if since_check >= SPACE_CHECK_EVERY {
                since_check = 0;
                limits_for_writer.check_space(&blobs, 0)?;
            }
            writer
                .write_all(&chunk)
                .map_err(|e| ApiError::internal(format!("writing blob: {e}")))?;
        }
        writer.commit()?;
        Ok(())
    });
    while let Some(chunk) = payload.next().await {
        let chunk = match chunk {
            Ok(chunk) => chunk,
            Err(e) => {
                // The writer is dropped with the channel's receiver: the temp file goes away.
                drop(sender);
                let _ = writing.await;
                return Err(ApiError::bad_request(format!("reading upload: {e}")));
            }
        };
        if sender.send(chunk).await.is_err() {
            break;
        }
    }
    drop(sender);
    writing.await.map_err(ApiError::internal)??;
    Ok(HttpResponse::Created().finish())
}

//! `pull` and `push`: the server's status stream drawn as Ollama draws it, a bar per blob.

use super::progress::StatusPrinter;
use super::TransferArgs;
use crate::client::Client;
use anyhow::Result;
use serde_json::{json, Value};

pub async fn pull(client: &Client, args: &TransferArgs) -> Result<()> {
    transfer(client, "/api/pull", &args.model, args.insecure).await
}

pub async fn push(client: &Client, args: &TransferArgs) -> Result<()> {
    transfer(client, "/api/push", &args.model, args.insecure).await
}

async fn transfer(client: &Client, path: &str, model: &str, insecure: bool) -> Result<()> {
    let mut printer = StatusPrinter::new();
    let body = json!({"model": model, "insecure": insecure});
    client
        .stream(path, &body, |line| show_line(&mut printer, line))
        .await?;
    printer.finish();
    Ok(())
}

/// A status with a digest and a size is a bar (Ollama skips its first, empty update); any
/// other status is a line of its own.
fn show_line(printer: &mut StatusPrinter, line: &Value) {
    let status = line["status"].as_str().unwrap_or_default();
    match (line["digest"].as_str(), line["total"].as_u64()) {
        (Some(digest), Some(total)) => {
            let completed = line["completed"].as_u64().unwrap_or(0);
            if completed == 0 && total > 0 {
                return;
            }
            let title = if status.is_empty() {
                format!("pulling {}...", digest.get(7..19).unwrap_or(digest))
            } else {
                status.to_string()
            };
            printer.transfer(digest, &title, completed, total);
        }
        _ => printer.status(status),
    }
}

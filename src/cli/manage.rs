//! `cp`, `rm` and `-v`: small commands that map one-to-one onto API calls.

use crate::client::{Client, ClientError};
use anyhow::Result;
use serde_json::json;

pub async fn copy(client: &Client, source: &str, destination: &str) -> Result<()> {
    client
        .send_empty(
            reqwest::Method::POST,
            "/api/copy",
            &json!({"source": source, "destination": destination}),
        )
        .await?;
    println!("copied '{source}' to '{destination}'");
    Ok(())
}

pub async fn remove(client: &Client, models: &[String]) -> Result<()> {
    for model in models {
        client
            .send_empty(
                reqwest::Method::DELETE,
                "/api/delete",
                &json!({ "model": model }),
            )
            .await?;
        println!("deleted '{model}'");
    }
    Ok(())
}

/// `rollama -v`: the server's version, and the client's when it differs.
pub async fn version(client: &Client) -> Result<()> {
    match client.version().await {
        Ok(server) => {
            println!("rollama version is {server}");
            if server != crate::VERSION {
                eprintln!("Warning: client version is {}", crate::VERSION);
            }
        }
        Err(ClientError::Connect) => {
            eprintln!("Warning: could not connect to a running rollama instance");
            eprintln!("Warning: client version is {}", crate::VERSION);
        }
        Err(e) => return Err(e.into()),
    }
    Ok(())
}

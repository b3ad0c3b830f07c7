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

/// `rollama -v`: the server's version (and the Ollama API version it answers as), and the
/// client's when it differs.
pub async fn version(client: &Client) -> Result<()> {
    match client.version().await {
        Ok((api, Some(server))) => {
            println!("rollama version is {server} (Ollama API {api})");
            if server != crate::VERSION {
                eprintln!("Warning: client version is {}", crate::VERSION);
            }
        }
        Ok((api, None)) => {
            println!("the server is Ollama, version {api}");
            eprintln!("Warning: client version is rollama {}", crate::VERSION);
        }
        Err(ClientError::Connect) => {
            eprintln!("Warning: could not connect to a running rollama instance");
            eprintln!("Warning: client version is {}", crate::VERSION);
        }
        Err(e) => return Err(e.into()),
    }
    // On stderr, like the warnings: scripts read the first line of stdout.
    eprintln!("rollama {} ({})", crate::VERSION, crate::BUILD_INFO);
    Ok(())
}

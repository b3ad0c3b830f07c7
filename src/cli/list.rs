//! `list` and `ps`: the tables Ollama prints, byte for byte.

use crate::client::Client;
use crate::format::{human_bytes, human_time, table};
use anyhow::Result;
use chrono::{DateTime, Utc};
use serde_json::Value;

fn parse_time(value: &Value) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(value.as_str()?)
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

fn short_id(digest: &str) -> String {
    digest.chars().take(12).collect()
}

pub async fn list(client: &Client, filter: Option<&str>) -> Result<()> {
    let response: Value = client.get_json("/api/tags").await?;
    print!("{}", render_list(&response, filter));
    // Models the server skipped because their files are damaged (a rollama extension).
    for damaged in response["damaged"].as_array().into_iter().flatten() {
        eprintln!(
            "warning: model {} is damaged and was skipped: {}",
            damaged["name"].as_str().unwrap_or_default(),
            damaged["error"].as_str().unwrap_or_default()
        );
    }
    Ok(())
}

pub fn render_list(response: &Value, filter: Option<&str>) -> String {
    let filter = filter.map(str::to_lowercase);
    let mut rows = Vec::new();
    for model in response["models"].as_array().into_iter().flatten() {
        let name = model["name"].as_str().unwrap_or_default();
        if let Some(prefix) = &filter {
            if !name.to_lowercase().starts_with(prefix) {
                continue;
            }
        }
        let size = if model["remote_model"]
            .as_str()
            .is_some_and(|s| !s.is_empty())
        {
            "-".to_string()
        } else {
            human_bytes(model["size"].as_i64().unwrap_or(0))
        };
        let modified = parse_time(&model["modified_at"])
            .map(human_time)
            .unwrap_or_else(|| "Never".to_string());
        rows.push(vec![
            name.to_string(),
            short_id(model["digest"].as_str().unwrap_or_default()),
            size,
            modified,
        ]);
    }
    table(Some(&["NAME", "ID", "SIZE", "MODIFIED"]), &rows)
}

pub async fn ps(client: &Client, filter: Option<&str>) -> Result<()> {
    let response: Value = client.get_json("/api/ps").await?;
    let mut rows = Vec::new();
    for model in response["models"].as_array().into_iter().flatten() {
        let name = model["name"].as_str().unwrap_or_default();
        if filter.is_some_and(|prefix| !name.starts_with(prefix)) {
            continue;
        }
        let size = model["size"].as_i64().unwrap_or(0);
        let vram = model["size_vram"].as_i64().unwrap_or(0);
        let processor = if vram == 0 {
            "100% CPU".to_string()
        } else if vram == size {
            "100% GPU".to_string()
        } else if vram > size || size == 0 {
            "Unknown".to_string()
        } else {
            let cpu = ((size - vram) as f64 / size as f64 * 100.0).round() as i64;
            format!("{cpu}%/{}% CPU/GPU", 100 - cpu)
        };
        let until = match parse_time(&model["expires_at"]) {
            Some(t) if t < Utc::now() => "Stopping...".to_string(),
            Some(t) => human_time(t),
            None => "Never".to_string(),
        };
        rows.push(vec![
            name.to_string(),
            short_id(model["digest"].as_str().unwrap_or_default()),
            human_bytes(size),
            processor,
            model["context_length"].as_i64().unwrap_or(0).to_string(),
            until,
        ]);
    }
    print!(
        "{}",
        table(
            Some(&["NAME", "ID", "SIZE", "PROCESSOR", "CONTEXT", "UNTIL"]),
            &rows
        )
    );
    Ok(())
}

//! HTTP client of a running rollama (or Ollama) server: typed calls, NDJSON progress
//! decoding, and Ollama's error mapping (`{"error":…}` bodies, error lines inside streams).

use crate::env::HostAddress;
use futures_util::StreamExt;
use serde::de::DeserializeOwned;
use serde_json::Value;
use std::path::Path;

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("could not connect to rollama server, run 'rollama serve' to start it")]
    Connect,
    /// A non-2xx answer; the message is the body's `error` field (or the raw body).
    #[error("{message}")]
    Status { status: u16, message: String },
    #[error("{0}")]
    Stream(String),
    #[error(transparent)]
    Http(reqwest::Error),
    #[error(transparent)]
    Io(#[from] std::io::Error),
}

impl From<reqwest::Error> for ClientError {
    fn from(e: reqwest::Error) -> ClientError {
        if e.is_connect() {
            ClientError::Connect
        } else {
            ClientError::Http(e)
        }
    }
}

impl ClientError {}

pub struct Client {
    base: String,
    http: reqwest::Client,
}

impl Client {
    /// A client for `OLLAMA_HOST`.
    pub fn from_env() -> Client {
        Client::new(&HostAddress::from_env().client_base_url())
    }

    pub fn new(base: &str) -> Client {
        // The server's API key, when it requires one: the first of `ROLLAMA_API_KEY`.
        let mut headers = reqwest::header::HeaderMap::new();
        let key = crate::env::var(crate::server::guard::ROLLAMA_API_KEY);
        if let Some(key) = key.split(',').map(str::trim).find(|k| !k.is_empty()) {
            if let Ok(mut value) = reqwest::header::HeaderValue::from_str(&format!("Bearer {key}"))
            {
                value.set_sensitive(true);
                headers.insert(reqwest::header::AUTHORIZATION, value);
            }
        }
        let http = reqwest::Client::builder()
            .user_agent(crate::user_agent())
            .default_headers(headers)
            .build()
            .unwrap_or_default();
        Client {
            base: base.trim_end_matches('/').to_string(),
            http,
        }
    }

    fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    /// `HEAD /`: is a server there?
    pub async fn heartbeat(&self) -> Result<(), ClientError> {
        let response = self.http.head(self.url("/")).send().await?;
        check(response).await.map(|_| ())
    }

    /// The server's `/api/version`: the Ollama API version it answers as, and rollama's
    /// version when the server is rollama (an Ollama server has none).
    pub async fn version(&self) -> Result<(String, Option<String>), ClientError> {
        let value: Value = self.get_json("/api/version").await?;
        let text = |key: &str| value[key].as_str().map(str::to_string);
        Ok((text("version").unwrap_or_default(), text("rollama_version")))
    }

    pub async fn get_json<T: DeserializeOwned>(&self, path: &str) -> Result<T, ClientError> {
        let response = self.http.get(self.url(path)).send().await?;
        Ok(check(response).await?.json().await?)
    }

    pub async fn post_json<T: DeserializeOwned>(
        &self,
        path: &str,
        body: &Value,
    ) -> Result<T, ClientError> {
        let response = self.http.post(self.url(path)).json(body).send().await?;
        Ok(check(response).await?.json().await?)
    }

    /// A request whose success has no body (`/api/copy`, `/api/delete`).
    pub async fn send_empty(
        &self,
        method: reqwest::Method,
        path: &str,
        body: &Value,
    ) -> Result<(), ClientError> {
        let response = self
            .http
            .request(method, self.url(path))
            .json(body)
            .send()
            .await?;
        check(response).await.map(|_| ())
    }

    /// POSTs `body` and calls `on_line` for each NDJSON object; an `{"error":…}` line ends
    /// the stream with that error, as Ollama's client does.
    pub async fn stream(
        &self,
        path: &str,
        body: &Value,
        mut on_line: impl FnMut(&Value),
    ) -> Result<(), ClientError> {
        let response = self
            .http
            .post(self.url(path))
            .header("Accept", "application/x-ndjson")
            .json(body)
            .send()
            .await?;
        let response = check(response).await?;
        let mut buffer: Vec<u8> = Vec::new();
        let mut chunks = response.bytes_stream();
        let mut handle = |line: &[u8]| -> Result<(), ClientError> {
            if line.iter().all(u8::is_ascii_whitespace) {
                return Ok(());
            }
            let value: Value = serde_json::from_slice(line)
                .map_err(|e| ClientError::Stream(format!("bad response line: {e}")))?;
            if let Some(error) = value.get("error").and_then(Value::as_str) {
                return Err(ClientError::Stream(error.to_string()));
            }
            on_line(&value);
            Ok(())
        };
        while let Some(chunk) = chunks.next().await {
            buffer.extend_from_slice(&chunk?);
            while let Some(end) = buffer.iter().position(|&b| b == b'\n') {
                let line: Vec<u8> = buffer.drain(..=end).collect();
                handle(&line)?;
            }
        }
        handle(&buffer)
    }

    /// `HEAD /api/blobs/<digest>`.
    pub async fn has_blob(&self, digest: &str) -> Result<bool, ClientError> {
        let response = self
            .http
            .head(self.url(&format!("/api/blobs/{digest}")))
            .send()
            .await?;
        match response.status().as_u16() {
            200 => Ok(true),
            404 => Ok(false),
            _ => check(response).await.map(|_| false),
        }
    }

    /// Streams a file to `POST /api/blobs/<digest>`, reporting bytes sent.
    pub async fn upload_blob(
        &self,
        digest: &str,
        path: &Path,
        on_progress: impl Fn(u64) + Send + Sync + 'static,
    ) -> Result<(), ClientError> {
        let file = tokio::fs::File::open(path).await?;
        let length = file.metadata().await?.len();
        let mut sent = 0u64;
        let stream = tokio_util::io::ReaderStream::new(file).map(move |chunk| {
            if let Ok(bytes) = &chunk {
                sent += bytes.len() as u64;
                on_progress(sent);
            }
            chunk
        });
        let response = self
            .http
            .post(self.url(&format!("/api/blobs/{digest}")))
            .header(reqwest::header::CONTENT_LENGTH, length)
            .body(reqwest::Body::wrap_stream(stream))
            .send()
            .await?;
        check(response).await.map(|_| ())
    }
}

async fn check(response: reqwest::Response) -> Result<reqwest::Response, ClientError> {
    let status = response.status();
    if status.is_success() {
        return Ok(response);
    }
    let text = response.text().await.unwrap_or_default();
    let message = serde_json::from_str::<Value>(&text)
        .ok()
        .and_then(|v| v.get("error").and_then(Value::as_str).map(str::to_string))
        .unwrap_or_else(|| {
            if text.trim().is_empty() {
                status.to_string()
            } else {
                text.trim().to_string()
            }
        });
    Err(ClientError::Status {
        status: status.as_u16(),
        message,
    })
}

//! A client of the OCI/Docker v2 distribution API that Ollama's registry (registry.ollama.ai),
//! Hugging Face (hf.co) and any `docker-registry` speak: manifests, blobs, uploads, and the
//! bearer-token authorization Ollama uses. `download` builds resumable, verified pulls on it.

pub mod auth;
pub mod download;
pub mod pull;

use crate::store::{Digest, ModelName};
use reqwest::{header, Method, StatusCode, Url};
use std::collections::HashMap;
use std::sync::Mutex;

/// What a manifest request accepts (Ollama's type).
pub const MANIFEST_MEDIA_TYPE: &str = "application/vnd.docker.distribution.manifest.v2+json";

#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    /// The name has no manifest upstream.
    #[error("file does not exist")]
    NotFound,
    #[error("unauthorized: access denied")]
    Unauthorized,
    #[error("insecure protocol http")]
    Insecure,
    #[error("{status}: {body}")]
    Status { status: u16, body: String },
    #[error("{0}")]
    Transport(String),
}

impl From<reqwest::Error> for RegistryError {
    fn from(e: reqwest::Error) -> RegistryError {
        // reqwest's Display leaves out the cause ("error sending request for url …").
        let mut message = e.to_string();
        let mut source = std::error::Error::source(&e);
        while let Some(cause) = source {
            message.push_str(": ");
            message.push_str(&cause.to_string());
            source = cause.source();
        }
        RegistryError::Transport(message)
    }
}

/// One repository of one registry, as a model name addresses it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Repo {
    /// `scheme://host` (host may carry a port).
    pub base: Url,
    /// `namespace/model`.
    pub path: String,
    pub tag: String,
}

impl Repo {
    /// Where `name` lives: `https://host/v2/ns/model`, or `http` when the name says so and
    /// `insecure` allows it (Ollama's rule), or when `insecure` is set.
    pub fn of(name: &ModelName, insecure: bool) -> Result<Repo, RegistryError> {
        let scheme = match name.scheme.as_deref() {
            Some("http") if !insecure => return Err(RegistryError::Insecure),
            _ if insecure => "http",
            _ => "https",
        };
        let base = Url::parse(&format!("{scheme}://{}", name.host))
            .map_err(|e| RegistryError::Transport(format!("registry {}: {e}", name.host)))?;
        Ok(Repo {
            base,
            path: format!("{}/{}", name.namespace, name.model),
            tag: name.tag.clone(),
        })
    }

    pub fn url(&self, rest: &str) -> Url {
        let mut url = self.base.clone();
        url.set_path(&format!("/v2/{}/{rest}", self.path));
        url
    }

    pub fn blob_url(&self, digest: &Digest) -> Url {
        self.url(&format!("blobs/{digest}"))
    }

    fn token_key(&self) -> String {
        format!("{}/{}", self.base, self.path)
    }
}

/// The client: one connection pool, the identity key, and tokens by repository.
pub struct Registry {
    http: reqwest::Client,
    identity: std::path::PathBuf,
    tokens: Mutex<HashMap<String, String>>,
}

impl Registry {
    pub fn new(identity: std::path::PathBuf) -> Registry {
        let http = reqwest::Client::builder()
            .user_agent(crate::user_agent())
            .connect_timeout(std::time::Duration::from_secs(10))
            .build()
            .unwrap_or_default();
        Registry {
            http,
            identity,
            tokens: Mutex::new(HashMap::new()),
        }
    }

    fn cached_token(&self, repo: &Repo) -> Option<String> {
        self.tokens
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&repo.token_key())
            .cloned()
    }

    /// Sends the request `build` makes, with the repository's token if there is one; on a 401
    /// with a bearer challenge, fetches a token and sends it once more. A second 401 is
    /// `unauthorized`.
    pub async fn send(
        &self,
        repo: &Repo,
        build: impl Fn(&reqwest::Client) -> reqwest::RequestBuilder,
    ) -> Result<reqwest::Response, RegistryError> {
        let token = self.cached_token(repo);
        let with_token = |token: &Option<String>| {
            let request = build(&self.http);
            match token {
                Some(token) => request.bearer_auth(token),
                None => request,
            }
        };
        let response = with_token(&token).send().await?;
        if response.status() != StatusCode::UNAUTHORIZED {
            return Ok(response);
        }
        let request_host = response.url().host_str().unwrap_or_default().to_string();
        let Some(challenge) = response
            .headers()
            .get(header::WWW_AUTHENTICATE)
            .and_then(|v| v.to_str().ok())
            .and_then(auth::Challenge::parse)
        else {
            return Err(RegistryError::Unauthorized);
        };
        let token = self.token(&challenge, &request_host).await?;
        let response = with_token(&Some(token.clone())).send().await?;
        if response.status() == StatusCode::UNAUTHORIZED {
            return Err(RegistryError::Unauthorized);
        }
        self.tokens
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(repo.token_key(), token);
        Ok(response)
    }

    /// A token from the challenge's realm, which must be on the host that challenged (Ollama's
    /// rule: a registry cannot send the signed request elsewhere).
    async fn token(
        &self,
        challenge: &auth::Challenge,
        request_host: &str,
    ) -> Result<String, RegistryError> {
        let url = challenge.token_url().map_err(RegistryError::Transport)?;
        let realm_host = url.host_str().unwrap_or_default();
        if realm_host != request_host {
            return Err(RegistryError::Transport(format!(
                "realm host \"{realm_host}\" does not match original host \"{request_host}\""
            )));
        }
        let identity =
            auth::Identity::load_or_create(&self.identity).map_err(RegistryError::Transport)?;
        let response = self
            .http
            .get(url.clone())
            .header(
                header::AUTHORIZATION,
                identity.authorization("GET", url.as_str()),
            )
            .send()
            .await?;
        if response.status() == StatusCode::UNAUTHORIZED {
            return Err(RegistryError::Unauthorized);
        }
        let response = check(response).await?;
        let body: serde_json::Value = response.json().await?;
        body["token"]
            .as_str()
            .or(body["access_token"].as_str())
            .map(str::to_string)
            .ok_or_else(|| RegistryError::Transport("token response without a token".into()))
    }

    /// The manifest of `repo:tag`, as the registry sent it (stored byte for byte, so its
    /// digest is the registry's).
    pub async fn manifest(&self, repo: &Repo) -> Result<Vec<u8>, RegistryError> {
        let url = repo.url(&format!("manifests/{}", repo.tag));
        let response = self
            .send(repo, |http| {
                http.get(url.clone())
                    .header(header::ACCEPT, MANIFEST_MEDIA_TYPE)
            })
            .await?;
        Ok(check(response).await?.bytes().await?.to_vec())
    }

    pub async fn put_manifest(&self, repo: &Repo, manifest: &[u8]) -> Result<(), RegistryError> {
        let url = repo.url(&format!("manifests/{}", repo.tag));
        let body = manifest.to_vec();
        let response = self
            .send(repo, |http| {
                http.put(url.clone())
                    .header(header::CONTENT_TYPE, MANIFEST_MEDIA_TYPE)
                    .body(body.clone())
            })
            .await?;
        check(response).await.map(drop)
    }

    /// Whether the registry has the blob (`HEAD`).
    pub async fn has_blob(&self, repo: &Repo, digest: &Digest) -> Result<bool, RegistryError> {
        let url = repo.blob_url(digest);
        let response = self.send(repo, |http| http.head(url.clone())).await?;
        match response.status() {
            StatusCode::NOT_FOUND => Ok(false),
            _ => check(response).await.map(|_| true),
        }
    }

    /// `GET` of bytes `start..end` of a blob (redirects followed; reqwest drops the token on
    /// a redirect to another host, as Ollama's direct CDN fetch does).
    pub async fn blob_range(
        &self,
        repo: &Repo,
        digest: &Digest,
        start: u64,
        end: u64,
    ) -> Result<reqwest::Response, RegistryError> {
        let url = repo.blob_url(digest);
        let range = format!("bytes={start}-{}", end - 1);
        let response = self
            .send(repo, |http| {
                http.get(url.clone()).header(header::RANGE, range.clone())
            })
            .await?;
        check(response).await
    }

    /// Uploads a blob from `path` unless the registry has it (or can mount it from `from`, a
    /// repository path on the same registry). `sent` is told of each chunk's size.
    pub async fn upload_blob(
        &self,
        repo: &Repo,
        digest: &Digest,
        path: &std::path::Path,
        from: Option<&str>,
        sent: impl Fn(u64) + Send + Sync + 'static,
    ) -> Result<(), RegistryError> {
        if self.has_blob(repo, digest).await? {
            return Ok(());
        }
        let mut start = repo.url("blobs/uploads/");
        if let Some(from) = from.filter(|f| *f != repo.path) {
            start
                .query_pairs_mut()
                .append_pair("mount", &digest.to_string())
                .append_pair("from", from);
        }
        let response = self.send(repo, |http| http.post(start.clone())).await?;
        if response.status() == StatusCode::CREATED {
            return Ok(()); // mounted from the other repository
        }
        let response = check(response).await?;
        let location = upload_location(repo, &response)?;
        let file = tokio::fs::File::open(path)
            .await
            .map_err(|e| RegistryError::Transport(format!("{}: {e}", path.display())))?;
        let length = file
            .metadata()
            .await
            .map_err(|e| RegistryError::Transport(e.to_string()))?
            .len();
        let sent = std::sync::Arc::new(sent);
        // The body is built once per attempt (a retry after a token challenge re-reads it).
        let body = |file: tokio::fs::File| {
            let sent = sent.clone();
            reqwest::Body::wrap_stream(futures_util::StreamExt::inspect(
                tokio_util::io::ReaderStream::with_capacity(file, 1 << 20),
                move |chunk| {
                    if let Ok(chunk) = chunk {
                        sent(chunk.len() as u64);
                    }
                },
            ))
        };
        let token = self.cached_token(repo);
        let mut patch = self
            .http
            .request(Method::PATCH, location.clone())
            .header(header::CONTENT_TYPE, "application/octet-stream")
            .header(header::CONTENT_LENGTH, length)
            .body(body(file));
        if let Some(token) = &token {
            patch = patch.bearer_auth(token);
        }
        let response = check(patch.send().await?).await?;
        let mut finish = upload_location(repo, &response)?;
        finish
            .query_pairs_mut()
            .append_pair("digest", &digest.to_string());
        let response = self
            .send(repo, |http| {
                http.put(finish.clone())
                    .header(header::CONTENT_LENGTH, 0)
                    .body(Vec::new())
            })
            .await?;
        check(response).await.map(drop)
    }
}

/// Where an upload continues: `Docker-Upload-Location` or `Location`, resolved against the
/// registry (distribution answers with a path).
fn upload_location(repo: &Repo, response: &reqwest::Response) -> Result<Url, RegistryError> {
    let headers = response.headers();
    let raw = headers
        .get("Docker-Upload-Location")
        .or_else(|| headers.get(header::LOCATION))
        .and_then(|v| v.to_str().ok())
        .ok_or_else(|| RegistryError::Transport("upload without a location".into()))?;
    repo.base
        .join(raw)
        .map_err(|e| RegistryError::Transport(format!("upload location {raw:?}: {e}")))
}

/// The response if it succeeded; 404 → `NotFound`; another error status → its code and body.
async fn check(response: reqwest::Response) -> Result<reqwest::Response, RegistryError> {
    let status = response.status();
    if status.is_success() || status.is_redirection() {
        return Ok(response);
    }
    if status == StatusCode::NOT_FOUND {
        return Err(RegistryError::NotFound);
    }
    if status == StatusCode::UNAUTHORIZED {
        return Err(RegistryError::Unauthorized);
    }
    let body = response.text().await.unwrap_or_default();
    Err(RegistryError::Status {
        status: status.as_u16(),
        body: body.trim().to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_map_to_registries_as_in_ollama() {
        let repo = |s: &str, insecure: bool| Repo::of(&ModelName::parse(s).unwrap(), insecure);
        let r = repo("llama3.2", false).unwrap();
        assert_eq!(
            r.url("manifests/latest").as_str(),
            "https://registry.ollama.ai/v2/library/llama3.2/manifests/latest"
        );
        let r = repo("127.0.0.1:5000/library/smollm2:test", true).unwrap();
        assert_eq!(
            r.url("manifests/test").as_str(),
            "http://127.0.0.1:5000/v2/library/smollm2/manifests/test"
        );
        let r = repo("hf.co/bartowski/Llama-3.2-1B-Instruct-GGUF:Q4_K_M", false).unwrap();
        assert_eq!(
            r.url(&format!("manifests/{}", r.tag)).as_str(),
            "https://hf.co/v2/bartowski/Llama-3.2-1B-Instruct-GGUF/manifests/Q4_K_M"
        );
        assert!(matches!(
            repo("http://h:1/ns/m", false),
            Err(RegistryError::Insecure)
        ));
        assert_eq!(
            repo("http://h:1/ns/m", true).unwrap().base.as_str(),
            "http://h:1/"
        );
    }
}

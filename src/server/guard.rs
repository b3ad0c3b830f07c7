//! Who may talk to the server. Ollama's defences, as Ollama applies them: a CORS origin
//! allow-list (its defaults plus `OLLAMA_ORIGINS`) and, on loopback listeners, a `Host` check
//! against DNS rebinding. Beyond Ollama: API keys (`ROLLAMA_API_KEY`, `ROLLAMA_API_KEY_FILE`),
//! compared in constant time, with a 401 in the error shape of the API that was called.

use actix_web::body::{EitherBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::{header, Method, StatusCode};
use actix_web::middleware::Next;
use actix_web::HttpResponse;
use serde_json::{json, Value};
use sha2::{Digest as _, Sha256};
use std::net::{IpAddr, SocketAddr};

/// API keys, comma-separated.
pub const ROLLAMA_API_KEY: &str = "ROLLAMA_API_KEY";
/// A file of API keys, one per line (`#` starts a comment).
pub const ROLLAMA_API_KEY_FILE: &str = "ROLLAMA_API_KEY_FILE";

/// Headers a browser may send cross-origin (gin-contrib/cors defaults plus Ollama's list).
const ALLOWED_HEADERS: &str = "Origin, Content-Length, Content-Type, Authorization, User-Agent, \
Accept, X-Requested-With, OpenAI-Beta, x-stainless-arch, x-stainless-async, \
x-stainless-custom-poll-interval, x-stainless-helper-method, x-stainless-lang, x-stainless-os, \
x-stainless-package-version, x-stainless-poll-helper, x-stainless-retry-count, \
x-stainless-runtime, x-stainless-runtime-version, x-stainless-timeout, x-api-key, \
anthropic-version";
const ALLOWED_METHODS: &str = "GET, POST, PUT, PATCH, DELETE, HEAD, OPTIONS";
/// gin-contrib/cors's default preflight cache: 12 hours.
const MAX_AGE: &str = "43200";

/// The settings every request is checked against, resolved once at start-up.
#[derive(Debug, Clone)]
pub struct Guard {
    origins: Vec<String>,
    /// The listener is on a loopback address, so the `Host` check applies.
    loopback: bool,
    /// SHA-256 of each accepted key (compared digest to digest, in constant time).
    keys: Vec<[u8; 32]>,
    hostname: String,
}

impl Guard {
    /// From the environment, for a server listening on `address`.
    pub fn from_env(address: SocketAddr) -> std::io::Result<Guard> {
        let mut keys: Vec<String> = crate::env::var(ROLLAMA_API_KEY)
            .split(',')
            .map(str::trim)
            .filter(|k| !k.is_empty())
            .map(str::to_string)
            .collect();
        let file = crate::env::var(ROLLAMA_API_KEY_FILE);
        if !file.is_empty() {
            let text = std::fs::read_to_string(&file).map_err(|e| {
                std::io::Error::new(e.kind(), format!("{ROLLAMA_API_KEY_FILE} {file}: {e}"))
            })?;
            keys.extend(
                text.lines()
                    .map(str::trim)
                    .filter(|l| !l.is_empty() && !l.starts_with('#'))
                    .map(str::to_string),
            );
        }
        Ok(Guard::new(
            address,
            &crate::env::var(crate::env::OLLAMA_ORIGINS),
            &keys,
        ))
    }

    pub fn new(address: SocketAddr, extra_origins: &str, keys: &[String]) -> Guard {
        let mut origins: Vec<String> = extra_origins
            .split(',')
            .map(str::trim)
            .filter(|o| !o.is_empty())
            .map(str::to_string)
            .collect();
        for host in ["localhost", "127.0.0.1", "0.0.0.0"] {
            for scheme in ["http", "https"] {
                origins.push(format!("{scheme}://{host}"));
                origins.push(format!("{scheme}://{host}:*"));
            }
        }
        for scheme in ["app", "file", "tauri", "vscode-webview", "vscode-file"] {
            origins.push(format!("{scheme}://*"));
        }
        Guard {
            origins,
            loopback: address.ip().is_loopback(),
            keys: keys
                .iter()
                .map(|k| Sha256::digest(k.as_bytes()).into())
                .collect(),
            hostname: hostname().to_lowercase(),
        }
    }

    /// Whether requests need a key.
    pub fn requires_key(&self) -> bool {
        !self.keys.is_empty()
    }

    /// Ollama's origin match: exact, or a pattern with one `*` standing for any text.
    pub fn origin_allowed(&self, origin: &str) -> bool {
        self.origins
            .iter()
            .any(|pattern| match pattern.split_once('*') {
                None => pattern == origin,
                Some((prefix, suffix)) => {
                    origin.len() >= prefix.len() + suffix.len()
                        && origin.starts_with(prefix)
                        && origin.ends_with(suffix)
                }
            })
    }

    /// Ollama's DNS-rebinding check of a `Host` header (only on loopback listeners).
    pub fn host_allowed(&self, host_header: &str) -> HostVerdict {
        if !self.loopback {
            return HostVerdict::Allowed;
        }
        let host = strip_port(host_header);
        if let Ok(ip) = host.parse::<IpAddr>() {
            return if is_local_ip(ip) {
                HostVerdict::Allowed
            } else {
                HostVerdict::Refused
            };
        }
        let host = host.to_lowercase();
        let named = host.is_empty()
            || host == "localhost"
            || (!self.hostname.is_empty() && host == self.hostname)
            || [".localhost", ".local", ".internal"]
                .iter()
                .any(|tld| host.ends_with(tld));
        if named {
            HostVerdict::AllowedName
        } else {
            HostVerdict::Refused
        }
    }

    /// Whether `presented` is one of the keys, compared in constant time.
    pub fn key_matches(&self, presented: &str) -> bool {
        let digest: [u8; 32] = Sha256::digest(presented.as_bytes()).into();
        let mut matched = false;
        for key in &self.keys {
            let difference = key
                .iter()
                .zip(digest.iter())
                .fold(0u8, |acc, (a, b)| acc | (a ^ b));
            matched |= difference == 0;
        }
        matched
    }
}

/// What the `Host` check decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HostVerdict {
    /// An allowed IP address (or not a loopback listener).
    Allowed,
    /// An allowed host name: Ollama also answers `OPTIONS` for these with 204.
    AllowedName,
    Refused,
}

/// The host part of a `Host` header (`[::1]:80` → `::1`, `a:1` → `a`).
fn strip_port(host: &str) -> &str {
    if let Some(rest) = host.strip_prefix('[') {
        return rest.split(']').next().unwrap_or(rest);
    }
    match host.rsplit_once(':') {
        Some((name, port)) if !name.contains(':') && port.chars().all(|c| c.is_ascii_digit()) => {
            name
        }
        _ => host,
    }
}

/// Loopback, private or unspecified (Ollama also accepts the addresses of local interfaces;
/// rollama does not enumerate them, so a public address of this machine is refused).
fn is_local_ip(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => v4.is_loopback() || v4.is_private() || v4.is_unspecified(),
        IpAddr::V6(v6) => {
            v6.is_loopback()
                || v6.is_unspecified()
                // fc00::/7, Go's IsPrivate for IPv6
                || (v6.segments()[0] & 0xfe00) == 0xfc00
                || v6.to_ipv4_mapped().is_some_and(|v4| is_local_ip(IpAddr::V4(v4)))
        }
    }
}

fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .or_else(|_| std::fs::read_to_string("/etc/hostname"))
        .map(|h| h.trim().to_string())
        .unwrap_or_default()
}

/// Routes anyone may call without a key: the liveness answer and the version.
fn is_public(method: &Method, path: &str) -> bool {
    (*method == Method::GET || *method == Method::HEAD) && (path == "/" || path == "/api/version")
}

/// The key a request presents: `Authorization: Bearer <key>` or Anthropic's `x-api-key`.
fn presented_key(request: &ServiceRequest) -> Option<String> {
    let headers = request.headers();
    if let Some(value) = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
    {
        let value = value.trim();
        if let Some((scheme, key)) = value.split_once(' ') {
            if scheme.eq_ignore_ascii_case("bearer") {
                return Some(key.trim().to_string());
            }
        }
    }
    headers
        .get("x-api-key")
        .and_then(|v| v.to_str().ok())
        .map(|v| v.trim().to_string())
}

/// An error body in the shape of the API the path belongs to.
fn error_body(path: &str, status: StatusCode, openai_code: Option<&str>, message: &str) -> Value {
    if path.starts_with("/v1/messages") {
        super::routes::anthropic::error_body(status, message)
    } else if path.starts_with("/v1/") {
        super::routes::openai::error_body(status, message, openai_code)
    } else {
        json!({ "error": message })
    }
}

/// 401 in the shape of the API the path belongs to.
fn unauthorized(path: &str, message: &str) -> HttpResponse {
    HttpResponse::Unauthorized()
        .insert_header((header::WWW_AUTHENTICATE, "Bearer"))
        .json(error_body(
            path,
            StatusCode::UNAUTHORIZED,
            Some("invalid_api_key"),
            message,
        ))
}

fn empty(status: StatusCode) -> HttpResponse {
    HttpResponse::build(status).finish()
}

/// The middleware: CORS, then the `Host` check, then the API key, as one pass.
pub async fn guard(
    request: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<EitherBody<impl MessageBody>>, actix_web::Error> {
    let Some(guard) = request.app_data::<actix_web::web::Data<Guard>>().cloned() else {
        return next.call(request).await.map(|r| r.map_into_left_body());
    };
    let respond = |request: ServiceRequest, response: HttpResponse| {
        Ok(request.into_response(response).map_into_right_body())
    };
    let host = request
        .headers()
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    let origin = request
        .headers()
        .get(header::ORIGIN)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    // An Origin equal to the request's own host is not a cross-origin request.
    let cross_origin = origin.as_ref().filter(|o| {
        !host.is_empty() && **o != format!("http://{host}") && **o != format!("https://{host}")
    });
    if let Some(origin) = cross_origin {
        if !guard.origin_allowed(origin) {
            return respond(request, empty(StatusCode::FORBIDDEN));
        }
        if request.method() == Method::OPTIONS {
            let response = HttpResponse::NoContent()
                .insert_header((header::ACCESS_CONTROL_ALLOW_ORIGIN, origin.as_str()))
                .insert_header((header::ACCESS_CONTROL_ALLOW_METHODS, ALLOWED_METHODS))
                .insert_header((header::ACCESS_CONTROL_ALLOW_HEADERS, ALLOWED_HEADERS))
                .insert_header((header::ACCESS_CONTROL_MAX_AGE, MAX_AGE))
                .insert_header((header::VARY, "Origin"))
                .finish();
            return respond(request, response);
        }
    }
    match guard.host_allowed(&host) {
        HostVerdict::Refused => return respond(request, empty(StatusCode::FORBIDDEN)),
        HostVerdict::AllowedName if request.method() == Method::OPTIONS => {
            return respond(request, empty(StatusCode::NO_CONTENT))
        }
        _ => {}
    }
    if guard.requires_key()
        && request.method() != Method::OPTIONS
        && !is_public(request.method(), request.path())
    {
        let path = request.path().to_string();
        match presented_key(&request) {
            None => return respond(request, unauthorized(&path, "missing API key")),
            Some(key) if !guard.key_matches(&key) => {
                return respond(request, unauthorized(&path, "invalid API key"))
            }
            Some(_) => {}
        }
    }
    let mut response = next.call(request).await?;
    // actix answers an over-long body in plain text; clients expect their API's JSON.
    if response.status() == StatusCode::PAYLOAD_TOO_LARGE {
        let path = response.request().path().to_string();
        let body = error_body(
            &path,
            StatusCode::PAYLOAD_TOO_LARGE,
            None,
            "request body too large",
        );
        let replaced = HttpResponse::PayloadTooLarge().json(body);
        return Ok(ServiceResponse::new(response.request().clone(), replaced).map_into_right_body());
    }
    if let Some(origin) = cross_origin {
        let headers = response.headers_mut();
        if let Ok(value) = header::HeaderValue::from_str(origin) {
            headers.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, value);
        }
        headers.insert(header::VARY, header::HeaderValue::from_static("Origin"));
    }
    Ok(response.map_into_left_body())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn guard(address: &str, origins: &str, keys: &[&str]) -> Guard {
        let keys: Vec<String> = keys.iter().map(|k| k.to_string()).collect();
        Guard::new(address.parse().unwrap(), origins, &keys)
    }

    #[test]
    fn origins_follow_ollamas_defaults_and_wildcards() {
        let g = guard(
            "127.0.0.1:11434",
            "https://example.com, http://*.corp.test",
            &[],
        );
        for allowed in [
            "http://localhost",
            "http://localhost:3000",
            "https://127.0.0.1:8443",
            "http://0.0.0.0:1",
            "app://obsidian.md",
            "file://",
            "tauri://localhost",
            "vscode-webview://abc",
            "https://example.com",
            "http://a.corp.test",
        ] {
            assert!(g.origin_allowed(allowed), "{allowed}");
        }
        for refused in [
            "http://evil.com",
            "https://localhost.evil.com",
            "chrome-extension://abcdef",
            "https://example.com.evil",
            "http://corp.test",
        ] {
            assert!(!g.origin_allowed(refused), "{refused}");
        }
        let listed = guard("127.0.0.1:11434", "chrome-extension://*", &[]);
        assert!(listed.origin_allowed("chrome-extension://abcdef"));
    }

    #[test]
    fn rebinding_hosts_are_refused_on_loopback_listeners_only() {
        let g = guard("127.0.0.1:11434", "", &[]);
        for allowed in [
            "127.0.0.1:11434",
            "localhost:11434",
            "localhost",
            "[::1]:11434",
            "10.1.2.3",
            "192.168.0.5:80",
            "0.0.0.0:11434",
            "box.local",
            "api.localhost:8080",
            "svc.internal",
            "",
        ] {
            assert_ne!(g.host_allowed(allowed), HostVerdict::Refused, "{allowed}");
        }
        for refused in [
            "evil.com",
            "evil.com:11434",
            "8.8.8.8",
            "localhost.evil.com",
        ] {
            assert_eq!(g.host_allowed(refused), HostVerdict::Refused, "{refused}");
        }
        let open = guard("0.0.0.0:11434", "", &[]);
        assert_eq!(open.host_allowed("evil.com"), HostVerdict::Allowed);
    }

    #[test]
    fn keys_match_exactly() {
        let g = guard("127.0.0.1:1", "", &["s3cret", "other"]);
        assert!(g.requires_key());
        assert!(g.key_matches("s3cret"));
        assert!(g.key_matches("other"));
        assert!(!g.key_matches("s3cre"));
        assert!(!g.key_matches("s3cret "));
        assert!(!g.key_matches(""));
        assert!(!guard("127.0.0.1:1", "", &[]).requires_key());
    }

    #[test]
    fn ports_are_stripped_from_host_headers() {
        assert_eq!(strip_port("a.b:80"), "a.b");
        assert_eq!(strip_port("[::1]:80"), "::1");
        assert_eq!(strip_port("::1"), "::1");
        assert_eq!(strip_port("host"), "host");
    }
}

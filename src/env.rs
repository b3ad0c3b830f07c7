//! Every `OLLAMA_*` environment variable rollama reads, parsed the way Ollama parses it
//! (`envconfig/config.go`): values are trimmed of surrounding whitespace and quotes, booleans
//! that are set but unparseable count as true, and bad values fall back to the default.

use std::path::PathBuf;

/// Where the server listens and clients connect. Default `http://127.0.0.1:11434`.
pub const OLLAMA_HOST: &str = "OLLAMA_HOST";
/// Root of the model store. Default: Ollama's, `~/.ollama/models`.
pub const OLLAMA_MODELS: &str = "OLLAMA_MODELS";
/// Keep blobs that no manifest references when the server starts. Default false.
pub const OLLAMA_NOPRUNE: &str = "OLLAMA_NOPRUNE";
/// How long a model stays loaded after a request. Default `5m`.
pub const OLLAMA_KEEP_ALIVE: &str = "OLLAMA_KEEP_ALIVE";
/// Default `num_ctx` for requests that do not set one. Default 4096 on CPU.
pub const OLLAMA_CONTEXT_LENGTH: &str = "OLLAMA_CONTEXT_LENGTH";
/// Log level: `1`/`true` for debug.
pub const OLLAMA_DEBUG: &str = "OLLAMA_DEBUG";
/// Extra CORS origins, comma separated.
pub const OLLAMA_ORIGINS: &str = "OLLAMA_ORIGINS";
/// Disable readline history in `run`.
pub const OLLAMA_NOHISTORY: &str = "OLLAMA_NOHISTORY";
/// The editor `run`'s Ctrl+G opens to compose a prompt. Default: `$VISUAL`, `$EDITOR`, `vi`.
pub const OLLAMA_EDITOR: &str = "OLLAMA_EDITOR";

/// The default port of an Ollama server.
pub const DEFAULT_PORT: u16 = 11434;

/// `Var()` in Ollama: the variable with surrounding whitespace and quotes removed.
pub fn var(key: &str) -> String {
    let raw = std::env::var(key).unwrap_or_default();
    raw.trim()
        .trim_matches(|c| c == '"' || c == '\'')
        .to_string()
}

/// A boolean variable: unset or empty → `default`; parseable → its value; anything else → true.
pub fn bool_var(key: &str, default: bool) -> bool {
    let value = var(key);
    if value.is_empty() {
        return default;
    }
    parse_go_bool(&value).unwrap_or(true)
}

/// Go's `strconv.ParseBool`.
fn parse_go_bool(s: &str) -> Option<bool> {
    match s {
        "1" | "t" | "T" | "TRUE" | "true" | "True" => Some(true),
        "0" | "f" | "F" | "FALSE" | "false" | "False" => Some(false),
        _ => None,
    }
}

/// The parsed form of `OLLAMA_HOST`: scheme, host (possibly empty, meaning "all interfaces"
/// for a server and loopback for a client), port and an optional path prefix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostAddress {
    pub scheme: String,
    pub host: String,
    pub port: u16,
    pub path: String,
}

impl HostAddress {
    /// Reads `OLLAMA_HOST`.
    pub fn from_env() -> HostAddress {
        HostAddress::parse(&var(OLLAMA_HOST))
    }

    /// Ollama's `envconfig.Host()`.
    pub fn parse(value: &str) -> HostAddress {
        let value = value.trim();
        let mut default_port = DEFAULT_PORT;
        let (scheme, rest) = match value.split_once("://") {
            None if value == "ollama.com" => ("https".to_string(), "ollama.com:443".to_string()),
            None => ("http".to_string(), value.to_string()),
            Some((scheme, rest)) => {
                match scheme {
                    "http" => default_port = 80,
                    "https" => default_port = 443,
                    _ => {}
                }
                (scheme.to_string(), rest.to_string())
            }
        };
        let (host_port, path) = match rest.split_once('/') {
            Some((host_port, path)) => (host_port.to_string(), path.to_string()),
            None => (rest, String::new()),
        };
        let (host, port) = match split_host_port(&host_port) {
            Some((host, port)) => (host, port),
            None => {
                let bare = host_port.trim_matches(|c| c == '[' || c == ']');
                let host = if let Ok(ip) = bare.parse::<std::net::IpAddr>() {
                    ip.to_string()
                } else if !host_port.is_empty() {
                    host_port.clone()
                } else {
                    "127.0.0.1".to_string()
                };
                (host, default_port.to_string())
            }
        };
        let port = match port.parse::<i64>() {
            Ok(n) if (0..=65535).contains(&n) => n as u16,
            _ => default_port,
        };
        HostAddress {
            scheme,
            host,
            port,
            path,
        }
    }

    /// `host:port` as Go's `net.JoinHostPort` writes it (IPv6 in brackets).
    pub fn host_port(&self) -> String {
        join_host_port(&self.host, self.port)
    }

    /// The address a server binds: an empty host means every interface, as in Go.
    pub fn bind_address(&self) -> String {
        if self.host.is_empty() {
            join_host_port("0.0.0.0", self.port)
        } else {
            self.host_port()
        }
    }

    /// The base URL a client uses: unspecified addresses become loopback
    /// (Ollama's `ConnectableHost`).
    pub fn client_base_url(&self) -> String {
        let host = match self.host.as_str() {
            "" | "0.0.0.0" => "127.0.0.1",
            "::" => "::1",
            other => other,
        };
        let mut url = format!("{}://{}", self.scheme, join_host_port(host, self.port));
        if !self.path.is_empty() {
            url.push('/');
            url.push_str(self.path.trim_end_matches('/'));
        }
        url
    }
}

impl std::fmt::Display for HostAddress {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}://{}", self.scheme, self.host_port())?;
        if !self.path.is_empty() {
            write!(f, "/{}", self.path)?;
        }
        Ok(())
    }
}

fn join_host_port(host: &str, port: u16) -> String {
    if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

/// Go's `net.SplitHostPort`: `host:port`, `[v6]:port`; `None` when there is no port part or
/// the host has more than one colon without brackets.
fn split_host_port(s: &str) -> Option<(String, String)> {
    if let Some(rest) = s.strip_prefix('[') {
        let (host, after) = rest.split_once(']')?;
        let port = after.strip_prefix(':')?;
        if port.contains(':') {
            return None;
        }
        return Some((host.to_string(), port.to_string()));
    }
    let (host, port) = s.rsplit_once(':')?;
    if host.contains(':') || host.contains('[') || host.contains(']') {
        return None;
    }
    Some((host.to_string(), port.to_string()))
}

/// The model store root: `OLLAMA_MODELS`, else Ollama's own default, `~/.ollama/models`, so
/// that rollama swapped in for Ollama finds the same library.
pub fn models_dir() -> PathBuf {
    let value = var(OLLAMA_MODELS);
    if !value.is_empty() {
        return PathBuf::from(value);
    }
    ollama_home().join("models")
}

/// Where earlier rollama builds kept their store when `OLLAMA_MODELS` was unset: the platform data
/// directory (`~/.local/share/rollama/models` on Linux). `serve` moves it to [`models_dir`].
pub fn legacy_models_dir() -> Option<PathBuf> {
    directories::ProjectDirs::from("", "", "rollama").map(|dirs| dirs.data_dir().join("models"))
}

/// `~/.ollama`, where history and keys live.
pub fn ollama_home() -> PathBuf {
    directories::BaseDirs::new()
        .map(|dirs| dirs.home_dir().join(".ollama"))
        .unwrap_or_else(|| PathBuf::from(".ollama"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_ollama_host_like_ollama() {
        let cases = [
            ("", "http://127.0.0.1:11434"),
            ("1.2.3.4", "http://1.2.3.4:11434"),
            (":1234", "http://:1234"),
            ("1.2.3.4:1234", "http://1.2.3.4:1234"),
            ("example.com", "http://example.com:11434"),
            ("example.com:1234", "http://example.com:1234"),
            ("0.0.0.0", "http://0.0.0.0:11434"),
            ("0.0.0.0:1234", "http://0.0.0.0:1234"),
            ("::1", "http://[::1]:11434"),
            ("[::1]", "http://[::1]:11434"),
            ("[::1]:1337", "http://[::1]:1337"),
            ("http://example.com", "http://example.com:80"),
            ("https://example.com", "https://example.com:443"),
            (
                "https://example.com/ollama",
                "https://example.com:443/ollama",
            ),
            ("http://127.0.0.1:99999", "http://127.0.0.1:80"),
            ("127.0.0.1:99999", "http://127.0.0.1:11434"),
            ("127.0.0.1:abc", "http://127.0.0.1:11434"),
            ("ollama.com", "https://ollama.com:443"),
        ];
        for (input, want) in cases {
            assert_eq!(
                HostAddress::parse(input).to_string(),
                want,
                "input {input:?}"
            );
        }
    }

    #[test]
    fn clients_connect_to_loopback_for_unspecified_hosts() {
        assert_eq!(
            HostAddress::parse("0.0.0.0:5000").client_base_url(),
            "http://127.0.0.1:5000"
        );
        assert_eq!(
            HostAddress::parse(":5000").client_base_url(),
            "http://127.0.0.1:5000"
        );
        assert_eq!(
            HostAddress::parse("https://example.com/ollama/").client_base_url(),
            "https://example.com:443/ollama"
        );
    }

    #[test]
    fn servers_bind_every_interface_for_an_empty_host() {
        assert_eq!(HostAddress::parse(":5000").bind_address(), "0.0.0.0:5000");
        assert_eq!(HostAddress::parse("").bind_address(), "127.0.0.1:11434");
        assert_eq!(HostAddress::parse("::1").bind_address(), "[::1]:11434");
    }

    #[test]
    fn go_bool_parsing_treats_garbage_as_true() {
        assert_eq!(parse_go_bool("false"), Some(false));
        assert_eq!(parse_go_bool("1"), Some(true));
        assert_eq!(parse_go_bool("yes"), None);
    }
}

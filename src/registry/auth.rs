//! Registry authorization as Ollama does it: the `WWW-Authenticate: Bearer realm,service,scope`
//! challenge, and the token request signed with the user's ed25519 key (`~/.ollama/id_ed25519`,
//! OpenSSH format, created on first use like Ollama's), which registry.ollama.ai and hf.co accept.

use base64::Engine as _;
use ed25519_dalek::{Signer as _, SigningKey};
use sha2::{Digest as _, Sha256};
use std::path::{Path, PathBuf};

/// A parsed `WWW-Authenticate: Bearer …` challenge.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Challenge {
    pub realm: String,
    pub service: String,
    pub scope: String,
}

impl Challenge {
    /// Parses `Bearer realm="…",service="…",scope="…"` (quoted values may hold commas).
    pub fn parse(header: &str) -> Option<Challenge> {
        let rest = header.trim();
        let (scheme, rest) = rest.split_once(' ').unwrap_or((rest, ""));
        if !scheme.eq_ignore_ascii_case("bearer") {
            return None;
        }
        let mut challenge = Challenge::default();
        let mut rest = rest.trim();
        while !rest.is_empty() {
            let (key, after) = rest.split_once('=')?;
            let key = key.trim().trim_start_matches(',').trim();
            let after = after.trim_start();
            let (value, tail) = if let Some(quoted) = after.strip_prefix('"') {
                let end = quoted.find('"')?;
                (&quoted[..end], &quoted[end + 1..])
            } else {
                let end = after.find(',').unwrap_or(after.len());
                (&after[..end], &after[end..])
            };
            match key.to_ascii_lowercase().as_str() {
                "realm" => challenge.realm = value.to_string(),
                "service" => challenge.service = value.to_string(),
                "scope" => challenge.scope = value.to_string(),
                _ => {}
            }
            rest = tail.trim_start_matches([',', ' ']);
        }
        (!challenge.realm.is_empty()).then_some(challenge)
    }

    /// The token URL: the realm with `service`, each space-separated `scope`, and Ollama's
    /// `ts` and `nonce`.
    pub fn token_url(&self) -> Result<reqwest::Url, String> {
        let mut url = reqwest::Url::parse(&self.realm)
            .map_err(|e| format!("invalid auth realm {:?}: {e}", self.realm))?;
        {
            let mut query = url.query_pairs_mut();
            if !self.service.is_empty() {
                query.append_pair("service", &self.service);
            }
            for scope in self.scope.split(' ').filter(|s| !s.is_empty()) {
                query.append_pair("scope", scope);
            }
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap_or_default()
                .as_secs();
            query.append_pair("ts", &now.to_string());
            let nonce: [u8; 16] = rand::random();
            query.append_pair(
                "nonce",
                &base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(nonce),
            );
        }
        Ok(url)
    }
}

/// The user's identity key.
pub struct Identity {
    key: SigningKey,
}

impl Identity {
    /// `~/.ollama/id_ed25519`, as Ollama keeps it.
    pub fn default_path() -> PathBuf {
        crate::env::ollama_home().join("id_ed25519")
    }

    /// Reads the key at `path`, or creates one there (and its `.pub`) when there is none.
    pub fn load_or_create(path: &Path) -> Result<Identity, String> {
        match std::fs::read_to_string(path) {
            Ok(text) => Identity::from_openssh(&text)
                .map_err(|e| format!("reading key {}: {e}", path.display())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let identity = Identity {
                    key: SigningKey::from_bytes(&rand::random()),
                };
                identity
                    .save(path)
                    .map_err(|e| format!("writing key {}: {e}", path.display()))?;
                Ok(identity)
            }
            Err(e) => Err(format!("reading key {}: {e}", path.display())),
        }
    }

    fn from_openssh(text: &str) -> Result<Identity, String> {
        let key = ssh_key::PrivateKey::from_openssh(text).map_err(|e| e.to_string())?;
        let pair = key
            .key_data()
            .ed25519()
            .ok_or("not an ed25519 key".to_string())?;
        Ok(Identity {
            key: SigningKey::from_bytes(&pair.private.to_bytes()),
        })
    }

    fn save(&self, path: &Path) -> Result<(), String> {
        let pair = ssh_key::private::Ed25519Keypair::from_seed(&self.key.to_bytes());
        let private = ssh_key::PrivateKey::from(pair);
        let text = private
            .to_openssh(ssh_key::LineEnding::LF)
            .map_err(|e| e.to_string())?;
        let public = private
            .public_key()
            .to_openssh()
            .map_err(|e| e.to_string())?;
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(|e| e.to_string())?;
        }
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create_new(true);
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        let mut file = options.open(path).map_err(|e| e.to_string())?;
        std::io::Write::write_all(&mut file, text.as_bytes()).map_err(|e| e.to_string())?;
        std::fs::write(path.with_extension("pub"), format!("{public}\n"))
            .map_err(|e| e.to_string())?;
        Ok(())
    }

    /// The public key as an OpenSSH wire blob, base64: the middle field of `id_ed25519.pub`.
    pub fn public_key_base64(&self) -> String {
        let mut blob = Vec::new();
        for part in [
            b"ssh-ed25519".as_slice(),
            self.key.verifying_key().as_bytes(),
        ] {
            blob.extend_from_slice(&(part.len() as u32).to_be_bytes());
            blob.extend_from_slice(part);
        }
        base64::engine::general_purpose::STANDARD.encode(blob)
    }

    /// Ollama's `Authorization` value for a token request: `<public key>:<signature>` over
    /// `GET,<token url>,<base64 of the hex sha256 of an empty body>`.
    pub fn authorization(&self, method: &str, url: &str) -> String {
        let body_hash = hex::encode(Sha256::digest(b""));
        let data = format!(
            "{method},{url},{}",
            base64::engine::general_purpose::STANDARD.encode(body_hash)
        );
        let signature = self.key.sign(data.as_bytes());
        format!(
            "{}:{}",
            self.public_key_base64(),
            base64::engine::general_purpose::STANDARD.encode(signature.to_bytes())
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_bearer_challenges() {
        let c = Challenge::parse(
            r#"Bearer realm="https://registry.ollama.ai/v2/token",service="registry.ollama.ai",scope="repository:library/llama3.2:pull""#,
        )
        .unwrap();
        assert_eq!(c.realm, "https://registry.ollama.ai/v2/token");
        assert_eq!(c.service, "registry.ollama.ai");
        assert_eq!(c.scope, "repository:library/llama3.2:pull");
        let c = Challenge::parse(r#"bearer realm="http://h/t", scope="repository:a/b:pull,push""#)
            .unwrap();
        assert_eq!(c.scope, "repository:a/b:pull,push");
        assert_eq!(c.service, "");
        assert!(Challenge::parse("Basic realm=\"x\"").is_none());
        assert!(Challenge::parse("Bearer service=\"x\"").is_none());
        let url = c.token_url().unwrap();
        let query: Vec<(String, String)> = url.query_pairs().into_owned().collect();
        assert_eq!(
            query[0],
            ("scope".into(), "repository:a/b:pull,push".into())
        );
        assert!(query.iter().any(|(k, _)| k == "nonce"));
    }

    #[test]
    fn keys_are_created_once_in_openssh_format_and_sign_verifiably() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("id_ed25519");
        let first = Identity::load_or_create(&path).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(
            text.starts_with("-----BEGIN OPENSSH PRIVATE KEY-----"),
            "{text}"
        );
        let public = std::fs::read_to_string(path.with_extension("pub")).unwrap();
        assert_eq!(
            public.split(' ').nth(1).unwrap().trim(),
            first.public_key_base64()
        );
        let again = Identity::load_or_create(&path).unwrap();
        assert_eq!(again.public_key_base64(), first.public_key_base64());

        let url = "http://127.0.0.1:5000/token?service=x";
        let header = again.authorization("GET", url);
        let (_, signature) = header.split_once(':').unwrap();
        let signature = base64::engine::general_purpose::STANDARD
            .decode(signature)
            .unwrap();
        let signed = format!(
            "GET,{url},{}",
            base64::engine::general_purpose::STANDARD.encode(hex::encode(Sha256::digest(b"")))
        );
        let signature = ed25519_dalek::Signature::from_slice(&signature).unwrap();
        first
            .key
            .verifying_key()
            .verify_strict(signed.as_bytes(), &signature)
            .unwrap();
    }
}

//! Model names: `[scheme://][host/][namespace/]model[:tag]`.
//!
//! A [`ModelName`] is parsed once, at the boundary, with Ollama's grammar and
//! defaults (`types/model/name.go`: `ParseName` = `ParseNameBare` merged with
//! `DefaultName`, then `IsValid`). Every part of a parsed name has passed the
//! per-part character and length rules, so a name can never hold `/`, `..`,
//! whitespace or anything else that would escape the manifest directory when
//! it becomes a path.
//!
//! Differences from Ollama, all on inputs Ollama accepts but cannot use:
//! - a `scheme://` prefix must be `http` or `https` (any case, stored in lower
//!   case); Ollama keeps any text before `://` as the scheme, even an empty one.
//! - [`ModelName::eq_fold`] folds ASCII case only; valid parts are ASCII, so
//!   this equals Go's `strings.EqualFold` on every name `parse` returns.
//!
//! Source suffixes (`:cloud`, `:local`) are not interpreted here: they are
//! ordinary tags.

use std::fmt;
use std::path::{Component, Path, PathBuf};
use std::str::FromStr;

/// Host used when a name gives none (Ollama's `defaultHost`).
pub const DEFAULT_HOST: &str = "registry.ollama.ai";
/// Namespace used when a name gives none (Ollama's `defaultNamespace`).
pub const DEFAULT_NAMESPACE: &str = "library";
/// Tag used when a name gives none (Ollama's `defaultTag`).
pub const DEFAULT_TAG: &str = "latest";
/// Scheme used to reach a registry when a name gives none.
pub const DEFAULT_SCHEME: &str = "https";

/// Longest host, in bytes (`isValidLen` in `name.go`).
const MAX_HOST_LEN: usize = 350;
/// Longest namespace, model or tag, in bytes.
const MAX_PART_LEN: usize = 80;

/// A fully qualified, validated model name.
///
/// Build one with [`ModelName::parse`] (or `str::parse`) or
/// [`ModelName::from_manifest_rel_path`]: the fields are public for reading,
/// and a value assembled by hand skips the validation the path helpers rely on.
/// Derived equality and hashing are exact (case-sensitive, scheme included);
/// use [`ModelName::eq_fold`] to find a stored model regardless of case.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ModelName {
    /// `"http"` or `"https"` when the input named one; `None` means the default.
    pub scheme: Option<String>,
    pub host: String,
    pub namespace: String,
    pub model: String,
    pub tag: String,
}

/// Why a string is not a model name.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum NameError {
    /// The text Ollama answers with (HTTP 400) for any malformed name.
    #[error("invalid model name")]
    Invalid,
}

/// The part a piece of text stands for; each has its own character rules.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum PartKind {
    Host,
    Namespace,
    Model,
    Tag,
}

impl ModelName {
    /// Parses `s` as Ollama does, filling in the default host
    /// (`registry.ollama.ai`), namespace (`library`) and tag (`latest`).
    ///
    /// Accepted forms include `model`, `ns/model`, `host/ns/model:tag`,
    /// `host:port/ns/model:tag`, `http://host:port/ns/model:tag` and
    /// `hf.co/user/repo:Q4_K_M`. A part that a separator promises but that is
    /// empty (`ns//m`, `m:`, `/m`) is invalid, as is `@digest`, any
    /// character outside the part's set, and any over-long part.
    pub fn parse(s: &str) -> Result<ModelName, NameError> {
        // The tag is cut first, and only when the last ':' comes after the
        // last '/': otherwise that ':' belongs to a `host:port`.
        let (rest, tag) = match s.rfind(':') {
            Some(colon) if s.rfind('/').is_none_or(|slash| colon > slash) => {
                (&s[..colon], Some(&s[colon + 1..]))
            }
            _ => (s, None),
        };

        let (rest, model) = match cut_last_slash(rest) {
            Some((before, after)) => (Some(before), after),
            None => (None, rest),
        };

        let mut namespace = None;
        let mut host_with_scheme = None;
        if let Some(rest) = rest {
            match cut_last_slash(rest) {
                Some((before, after)) => {
                    namespace = Some(after);
                    host_with_scheme = Some(before);
                }
                None => namespace = Some(rest),
            }
        }

        let (scheme, host) = match host_with_scheme {
            Some(text) => match text.split_once("://") {
                Some((scheme, host)) => (Some(parse_scheme(scheme)?), Some(host)),
                None => (None, Some(text)),
            },
            None => (None, None),
        };

        let name = ModelName {
            scheme,
            host: host.unwrap_or(DEFAULT_HOST).to_owned(),
            namespace: namespace.unwrap_or(DEFAULT_NAMESPACE).to_owned(),
            model: model.to_owned(),
            tag: tag.unwrap_or(DEFAULT_TAG).to_owned(),
        };
        if name.is_valid() {
            Ok(name)
        } else {
            Err(NameError::Invalid)
        }
    }

    /// Whether every part obeys Ollama's rules (`Name.IsFullyQualified`).
    /// Always true for a name from [`ModelName::parse`] or
    /// [`ModelName::from_manifest_rel_path`].
    pub fn is_valid(&self) -> bool {
        let scheme_ok = self
            .scheme
            .as_deref()
            .is_none_or(|scheme| scheme == "http" || scheme == "https");
        scheme_ok
            && is_valid_part(PartKind::Host, &self.host)
            && is_valid_part(PartKind::Namespace, &self.namespace)
            && is_valid_part(PartKind::Model, &self.model)
            && is_valid_part(PartKind::Tag, &self.tag)
    }

    /// The short form Ollama prints (`DisplayShortest`): the host is left out
    /// when it is the default one, and then the namespace too when it is
    /// `library`; a non-default host keeps its namespace, whatever it is. The
    /// tag is always shown: `llama3.2:latest`, `user/model:latest`,
    /// `hf.co/user/repo:Q4_K_M`, `127.0.0.1:5000/library/m:t`.
    pub fn display_shortest(&self) -> String {
        let mut out = String::new();
        if !self.host.eq_ignore_ascii_case(DEFAULT_HOST) {
            out.push_str(&self.host);
            out.push('/');
            out.push_str(&self.namespace);
            out.push('/');
        } else if !self.namespace.eq_ignore_ascii_case(DEFAULT_NAMESPACE) {
            out.push_str(&self.namespace);
            out.push('/');
        }
        out.push_str(&self.model);
        out.push(':');
        out.push_str(&self.tag);
        out
    }

    /// The manifest's path relative to `<models>/manifests`:
    /// `host/namespace/model/tag` (Ollama's `Name.Filepath`).
    ///
    /// Validated parts hold no separator and never start with '.', so the
    /// result stays inside the manifests directory.
    pub fn manifest_rel_path(&self) -> PathBuf {
        [&self.host, &self.namespace, &self.model, &self.tag]
            .iter()
            .collect()
    }

    /// Reads a name back from a manifest path relative to `manifests/`,
    /// which must be exactly `host/namespace/model/tag` (Ollama's
    /// `ParseNameFromFilepath`). Returns `None` for anything else, so a store
    /// listing can skip stray files.
    pub fn from_manifest_rel_path(path: &Path) -> Option<ModelName> {
        let mut parts = path.components().map(|component| match component {
            Component::Normal(part) => part.to_str(),
            _ => None,
        });
        let host = parts.next()??;
        let namespace = parts.next()??;
        let model = parts.next()??;
        let tag = parts.next()??;
        if parts.next().is_some() {
            return None;
        }
        let name = ModelName {
            scheme: None,
            host: host.to_owned(),
            namespace: namespace.to_owned(),
            model: model.to_owned(),
            tag: tag.to_owned(),
        };
        name.is_valid().then_some(name)
    }

    /// Whether both names denote the same model, ignoring case in every part
    /// (Ollama's `EqualFold`; the scheme is not compared, as there).
    pub fn eq_fold(&self, other: &ModelName) -> bool {
        self.host.eq_ignore_ascii_case(&other.host)
            && self.namespace.eq_ignore_ascii_case(&other.namespace)
            && self.model.eq_ignore_ascii_case(&other.model)
            && self.tag.eq_ignore_ascii_case(&other.tag)
    }

    /// The scheme to reach this name's registry with: the one given, else
    /// `https`. Together with [`ModelName::host`] it forms the base URL.
    pub fn scheme_or_default(&self) -> &str {
        self.scheme.as_deref().unwrap_or(DEFAULT_SCHEME)
    }
}

/// The fully qualified form, `host/namespace/model:tag` (no scheme).
impl fmt::Display for ModelName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}/{}/{}:{}",
            self.host, self.namespace, self.model, self.tag
        )
    }
}

impl FromStr for ModelName {
    type Err = NameError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        ModelName::parse(s)
    }
}

/// Splits at the last '/', like Go's `cutLast(s, "/")`.
fn cut_last_slash(s: &str) -> Option<(&str, &str)> {
    s.rfind('/').map(|slash| (&s[..slash], &s[slash + 1..]))
}

/// Only the schemes a registry can be reached with are kept; see the module
/// doc for how this differs from Ollama.
fn parse_scheme(scheme: &str) -> Result<String, NameError> {
    if scheme.eq_ignore_ascii_case("http") || scheme.eq_ignore_ascii_case("https") {
        Ok(scheme.to_ascii_lowercase())
    } else {
        Err(NameError::Invalid)
    }
}

/// Ollama's `isValidPart`: non-empty, not too long, first byte
/// `[A-Za-z0-9_]`, then `[A-Za-z0-9_-]` plus '.' (not in a namespace) and
/// ':' (only in a host). Lengths count bytes, as Go's `len` does.
fn is_valid_part(kind: PartKind, part: &str) -> bool {
    let max_len = match kind {
        PartKind::Host => MAX_HOST_LEN,
        PartKind::Namespace | PartKind::Model | PartKind::Tag => MAX_PART_LEN,
    };
    let Some((&first, rest)) = part.as_bytes().split_first() else {
        return false;
    };
    part.len() <= max_len
        && is_alphanumeric_or_underscore(first)
        && rest.iter().all(|&byte| match byte {
            b'_' | b'-' => true,
            b'.' => kind != PartKind::Namespace,
            b':' => kind == PartKind::Host,
            other => is_alphanumeric_or_underscore(other),
        })
}

fn is_alphanumeric_or_underscore(byte: u8) -> bool {
    byte.is_ascii_alphanumeric() || byte == b'_'
}

#[cfg(test)]
mod tests {
    use super::*;

    /// 80 and 350 bytes: the longest valid parts (`part80`/`part350` in
    /// Ollama's `name_test.go`).
    fn part80() -> String {
        "8".repeat(80)
    }

    fn part350() -> String {
        "3".repeat(350)
    }

    fn name(
        scheme: Option<&str>,
        host: &str,
        namespace: &str,
        model: &str,
        tag: &str,
    ) -> ModelName {
        ModelName {
            scheme: scheme.map(str::to_owned),
            host: host.to_owned(),
            namespace: namespace.to_owned(),
            model: model.to_owned(),
            tag: tag.to_owned(),
        }
    }

    #[test]
    fn parses_each_form_into_its_parts_with_defaults_filled_in() {
        // TestParseNameParts, with DefaultName merged in.
        let cases: Vec<(String, ModelName)> = vec![
            (
                "registry.ollama.ai/library/dolphin-mistral:7b-v2.6-dpo-laser-q6_K".into(),
                name(
                    None,
                    "registry.ollama.ai",
                    "library",
                    "dolphin-mistral",
                    "7b-v2.6-dpo-laser-q6_K",
                ),
            ),
            (
                "https://host:port/namespace/model:tag".into(),
                name(Some("https"), "host:port", "namespace", "model", "tag"),
            ),
            (
                "http://127.0.0.1:5000/ns/model:tag".into(),
                name(Some("http"), "127.0.0.1:5000", "ns", "model", "tag"),
            ),
            (
                "HTTP://localhost/ns/model".into(),
                name(Some("http"), "localhost", "ns", "model", "latest"),
            ),
            (
                "host/namespace/model:tag".into(),
                name(None, "host", "namespace", "model", "tag"),
            ),
            (
                "host:port/namespace/model:tag".into(),
                name(None, "host:port", "namespace", "model", "tag"),
            ),
            (
                "host/namespace/model".into(),
                name(None, "host", "namespace", "model", "latest"),
            ),
            (
                "host:port/namespace/model".into(),
                name(None, "host:port", "namespace", "model", "latest"),
            ),
            (
                "namespace/model".into(),
                name(None, DEFAULT_HOST, "namespace", "model", "latest"),
            ),
            (
                "model".into(),
                name(None, DEFAULT_HOST, "library", "model", "latest"),
            ),
            (
                "llama3.2".into(),
                name(None, DEFAULT_HOST, "library", "llama3.2", "latest"),
            ),
            (
                "model:tag".into(),
                name(None, DEFAULT_HOST, "library", "model", "tag"),
            ),
            ("h/nn/mm:t".into(), name(None, "h", "nn", "mm", "t")),
            (
                "hf.co/user/repo:Q4_K_M".into(),
                name(None, "hf.co", "user", "repo", "Q4_K_M"),
            ),
            (
                "hf.co/bartowski/Llama-3.2-1B-Instruct-GGUF:Q4_K_M".into(),
                name(
                    None,
                    "hf.co",
                    "bartowski",
                    "Llama-3.2-1B-Instruct-GGUF",
                    "Q4_K_M",
                ),
            ),
            (
                "_why/_the/_lucky:_stiff".into(),
                name(None, "_why", "_the", "_lucky", "_stiff"),
            ),
            (
                "host:https/namespace/model:tag".into(),
                name(None, "host:https", "namespace", "model", "tag"),
            ),
            (
                "gpt-oss:cloud".into(),
                name(None, DEFAULT_HOST, "library", "gpt-oss", "cloud"),
            ),
            (
                "Mistral:Latest".into(),
                name(None, DEFAULT_HOST, "library", "Mistral", "Latest"),
            ),
            (
                format!("{0}/{0}/{0}:{0}", part80()),
                name(None, &part80(), &part80(), &part80(), &part80()),
            ),
            (
                format!("{}/{1}/{1}:{1}", part350(), part80()),
                name(None, &part350(), &part80(), &part80(), &part80()),
            ),
        ];
        for (input, want) in cases {
            assert_eq!(ModelName::parse(&input), Ok(want), "input {input:?}");
        }
    }

    #[test]
    fn rejects_malformed_names() {
        let long_model = "m".repeat(81);
        let long_host = "h".repeat(351);
        let cases: Vec<String> = vec![
            // From TestNameIsValid's invalid entries that ParseName's
            // defaults cannot rescue.
            "".into(),
            "n/m:".into(),
            "@t".into(),
            "m@d".into(),
            "^".into(),
            "mm:".into(),
            "/nn/mm".into(),
            "//".into(),
            "//mm".into(),
            "hh//".into(),
            "//mm:@".into(),
            "00@".into(),
            "@".into(),
            "-hh/nn/mm:tt".into(),
            "hh/-nn/mm:tt".into(),
            "hh/nn/-mm:tt".into(),
            "hh/nn/mm:-tt".into(),
            "host/name:space/model:tag".into(),
            // Empty parts promised by a separator.
            "ns//m".into(),
            "ns/m:".into(),
            ":tag".into(),
            "/m".into(),
            "m/".into(),
            "h/n/m/".into(),
            // Too many parts, or traversal attempts.
            "a/b/c/d".into(),
            "../x".into(),
            "x/../y".into(),
            "..".into(),
            ".hidden".into(),
            "ns/.m".into(),
            "model:.tag".into(),
            "model:tag:extra".into(),
            "model:tag/x".into(),
            // Character rules per part.
            "user.name/repo".into(),
            "hf.co/user.name/repo:Q4_K_M".into(),
            "model@sha256-abc".into(),
            "model:tag@sha256-abc".into(),
            // Whitespace and non-ASCII.
            " model".into(),
            "model ".into(),
            "mo del".into(),
            "model\n".into(),
            "modèle".into(),
            "模型".into(),
            "ns/model:tág".into(),
            // Lengths.
            long_model.clone(),
            format!("ns/{long_model}:tag"),
            format!("model:{}", "t".repeat(81)),
            format!("{}/model", "n".repeat(81)),
            format!("{long_host}/ns/model:tag"),
            // Schemes: only http(s), and only in front of a host.
            "ftp://host/ns/model:tag".into(),
            "://host/ns/model:tag".into(),
            "http://model".into(),
            "http://ns/model".into(),
            "https://a://b/ns/m".into(),
        ];
        for input in cases {
            assert_eq!(
                ModelName::parse(&input),
                Err(NameError::Invalid),
                "input {input:?}"
            );
        }
    }

    #[test]
    fn accepts_parts_at_their_maximum_length() {
        let model = "m".repeat(80);
        assert_eq!(ModelName::parse(&model).map(|n| n.model), Ok(model));
        let host = "h".repeat(350);
        assert_eq!(
            ModelName::parse(&format!("{host}/ns/m")).map(|n| n.host),
            Ok(host)
        );
    }

    #[test]
    fn part_rules_match_ollama_is_valid_part() {
        // TestNameIsValidPart and TestIsValidNamespace.
        let cases = [
            (PartKind::Host, "", false),
            (PartKind::Host, "a", true),
            (PartKind::Host, "a.", true),
            (PartKind::Host, "a.b", true),
            (PartKind::Host, "a:123", true),
            (PartKind::Host, "a:123/aa/bb", false),
            (PartKind::Host, ":123", false),
            (PartKind::Namespace, "bb", true),
            (PartKind::Namespace, "a.", false),
            (PartKind::Namespace, "", false),
            (PartKind::Namespace, "a:b", false),
            (PartKind::Namespace, "a/b", false),
            (PartKind::Namespace, "a/b:c/d@e", false),
            (PartKind::Namespace, "himynameisjoe", true),
            (
                PartKind::Namespace,
                "himynameisreallyreallyreallyreallylongbutitshouldstillbevalid",
                true,
            ),
            (PartKind::Model, "-h", false),
            (PartKind::Model, "a.b-c_d", true),
            (PartKind::Model, "a:b", false),
            (PartKind::Tag, "Q4_K_M", true),
            (PartKind::Tag, "1.5b", true),
            (PartKind::Tag, "a:b", false),
        ];
        for (kind, part, want) in cases {
            assert_eq!(is_valid_part(kind, part), want, "{kind:?} {part:?}");
        }
    }

    #[test]
    fn displays_fully_qualified_without_the_scheme() {
        let cases = [
            ("xx", "registry.ollama.ai/library/xx:latest"),
            ("h/n/m:t", "h/n/m:t"),
            ("host/namespace/model:tag", "host/namespace/model:tag"),
            ("http://host:5000/ns/m:t", "host:5000/ns/m:t"),
            ("hf.co/user/repo:Q4_K_M", "hf.co/user/repo:Q4_K_M"),
        ];
        for (input, want) in cases {
            let parsed = ModelName::parse(input).map(|n| n.to_string());
            assert_eq!(parsed.as_deref(), Ok(want), "input {input:?}");
        }
    }

    #[test]
    fn fully_qualified_display_parses_back_to_the_same_name() {
        for input in [
            "model",
            "ns/model:tag",
            "http://h:1/n/m:t",
            "hf.co/user/repo:Q4_K_M",
        ] {
            let Ok(first) = ModelName::parse(input) else {
                panic!("{input:?} should parse");
            };
            let again = ModelName::parse(&first.to_string()).map(|n| ModelName {
                scheme: first.scheme.clone(),
                ..n
            });
            assert_eq!(again, Ok(first), "input {input:?}");
        }
    }

    #[test]
    fn display_shortest_omits_default_host_and_library_namespace() {
        // TestDisplayShortest, plus a few from the wider reference.
        let cases = [
            ("registry.ollama.ai/library/model:latest", "model:latest"),
            ("registry.ollama.ai/library/model:tag", "model:tag"),
            (
                "registry.ollama.ai/namespace/model:tag",
                "namespace/model:tag",
            ),
            ("host/namespace/model:tag", "host/namespace/model:tag"),
            ("host/library/model:tag", "host/library/model:tag"),
            ("llama3.2", "llama3.2:latest"),
            ("user/model", "user/model:latest"),
            ("hf.co/user/repo:Q4_K_M", "hf.co/user/repo:Q4_K_M"),
            ("127.0.0.1:5000/library/m:t", "127.0.0.1:5000/library/m:t"),
            ("REGISTRY.OLLAMA.AI/LIBRARY/Model:TAG", "Model:TAG"),
            ("https://registry.ollama.ai/library/m", "m:latest"),
        ];
        for (input, want) in cases {
            let shortest = ModelName::parse(input).map(|n| n.display_shortest());
            assert_eq!(shortest.as_deref(), Ok(want), "input {input:?}");
        }
    }

    #[test]
    fn manifest_path_has_one_directory_per_part() {
        // The Filepath column of TestParseNameParts.
        let p80 = part80();
        let p350 = part350();
        let cases: Vec<(String, [&str; 4])> = vec![
            (
                "registry.ollama.ai/library/dolphin-mistral:7b-v2.6-dpo-laser-q6_K".into(),
                [
                    "registry.ollama.ai",
                    "library",
                    "dolphin-mistral",
                    "7b-v2.6-dpo-laser-q6_K",
                ],
            ),
            (
                "https://host:port/namespace/model:tag".into(),
                ["host:port", "namespace", "model", "tag"],
            ),
            (
                "host/namespace/model:tag".into(),
                ["host", "namespace", "model", "tag"],
            ),
            (
                "host:port/namespace/model".into(),
                ["host:port", "namespace", "model", "latest"],
            ),
            (
                "namespace/model".into(),
                ["registry.ollama.ai", "namespace", "model", "latest"],
            ),
            (
                "model".into(),
                ["registry.ollama.ai", "library", "model", "latest"],
            ),
            ("h/nn/mm:t".into(), ["h", "nn", "mm", "t"]),
            (format!("{p80}/{p80}/{p80}:{p80}"), [&p80, &p80, &p80, &p80]),
            (
                format!("{p350}/{p80}/{p80}:{p80}"),
                [&p350, &p80, &p80, &p80],
            ),
        ];
        for (input, parts) in cases {
            let want: PathBuf = parts.iter().collect();
            let path = ModelName::parse(&input).map(|n| n.manifest_rel_path());
            assert_eq!(path, Ok(want), "input {input:?}");
        }
    }

    #[test]
    fn reads_names_back_from_manifest_paths() {
        // TestParseNameFromFilepath.
        let join = |parts: &[&str]| parts.iter().collect::<PathBuf>();
        let cases = [
            (
                join(&["host", "namespace", "model", "tag"]),
                Some(name(None, "host", "namespace", "model", "tag")),
            ),
            (
                join(&["host:port", "namespace", "model", "tag"]),
                Some(name(None, "host:port", "namespace", "model", "tag")),
            ),
            (
                join(&["hf.co", "User", "Repo-GGUF", "Q4_K_M"]),
                Some(name(None, "hf.co", "User", "Repo-GGUF", "Q4_K_M")),
            ),
            (join(&["namespace", "model", "tag"]), None),
            (join(&["model", "tag"]), None),
            (join(&["model"]), None),
            (join(&[]), None),
            (join(&["..", "..", "model", "tag"]), None),
            (join(&["", "namespace", ".", "tag"]), None),
            (join(&[".", ".", ".", "."]), None),
            (join(&["/", "path", "to", "random", "file"]), None),
            (join(&["/", "host", "ns", "model"]), None),
            (join(&["host", "ns", "model", "tag", "extra"]), None),
            (join(&["host", "ns.x", "model", "tag"]), None),
            (join(&["host", "ns", "model", "tag.json~"]), None),
        ];
        for (path, want) in cases {
            assert_eq!(
                ModelName::from_manifest_rel_path(&path),
                want,
                "path {path:?}"
            );
        }
    }

    #[test]
    fn manifest_path_round_trips_through_from_manifest_rel_path() {
        for input in [
            "model",
            "Ns/Model:Tag",
            "127.0.0.1:5000/library/m:t",
            "hf.co/user/repo:Q4_K_M",
        ] {
            let Ok(parsed) = ModelName::parse(input) else {
                panic!("{input:?} should parse");
            };
            let back = ModelName::from_manifest_rel_path(&parsed.manifest_rel_path());
            assert_eq!(back, Some(parsed), "input {input:?}");
        }
    }

    #[test]
    fn keeps_case_but_eq_fold_ignores_it() {
        let upper = ModelName::parse("HOST/NAMESPACE/MODEL:TAG");
        let lower = ModelName::parse("host/namespace/model:tag");
        let (Ok(upper), Ok(lower)) = (upper, lower) else {
            panic!("both should parse");
        };
        assert_eq!(upper.to_string(), "HOST/NAMESPACE/MODEL:TAG");
        assert_ne!(upper, lower);
        assert!(upper.eq_fold(&lower));
        assert!(lower.eq_fold(&upper));
    }

    #[test]
    fn eq_fold_compares_every_part_but_not_the_scheme() {
        let base = name(None, "h", "n", "m", "t");
        assert!(base.eq_fold(&name(Some("http"), "H", "N", "M", "T")));
        assert!(!base.eq_fold(&name(None, "h2", "n", "m", "t")));
        assert!(!base.eq_fold(&name(None, "h", "n2", "m", "t")));
        assert!(!base.eq_fold(&name(None, "h", "n", "m2", "t")));
        assert!(!base.eq_fold(&name(None, "h", "n", "m", "t2")));
    }

    #[test]
    fn scheme_defaults_to_https() {
        let scheme_of =
            |input: &str| ModelName::parse(input).map(|n| n.scheme_or_default().to_owned());
        assert_eq!(scheme_of("model").as_deref(), Ok("https"));
        assert_eq!(scheme_of("h/n/m").as_deref(), Ok("https"));
        assert_eq!(
            scheme_of("http://localhost:5000/n/m").as_deref(),
            Ok("http")
        );
        assert_eq!(scheme_of("https://h/n/m:t").as_deref(), Ok("https"));
    }

    #[test]
    fn parses_through_from_str() {
        let parsed: Result<ModelName, _> = "user/model:7b".parse();
        assert_eq!(parsed, Ok(name(None, DEFAULT_HOST, "user", "model", "7b")));
        assert_eq!("bad name".parse::<ModelName>(), Err(NameError::Invalid));
        assert_eq!(NameError::Invalid.to_string(), "invalid model name");
    }

    #[test]
    fn never_panics_on_awkward_input() {
        let inputs = [
            ":",
            "/",
            "::",
            "//",
            ":/",
            "/:",
            "://",
            "a:",
            "a/",
            "a:/b",
            "é:/",
            "/é",
            "é:",
            "\u{0}",
            "a\u{0}b",
            "http://",
            "https://:",
            "a:b:c/d",
            "@",
            "+",
            "x+y",
        ];
        for input in inputs {
            let _ = ModelName::parse(input);
        }
        let huge = "a/".repeat(10_000);
        assert_eq!(ModelName::parse(&huge), Err(NameError::Invalid));
    }

    #[test]
    fn hand_built_invalid_names_report_invalid() {
        assert!(!name(None, "h", "n/x", "m", "t").is_valid());
        assert!(!name(Some("ftp"), "h", "n", "m", "t").is_valid());
        assert!(name(Some("http"), "h", "n", "m", "t").is_valid());
    }
}

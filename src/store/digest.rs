//! `Digest`: a parsed `sha256:<64 hex>` content address. It is the only value that turns
//! into a blob path, so no user input can name a file outside `blobs/`.

use sha2::{Digest as _, Sha256};
use std::fmt;

/// Ollama's message for a digest that does not match `^sha256[:-][0-9a-fA-F]{64}$`.
pub const INVALID_DIGEST_FORMAT: &str = "invalid digest format";

#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Digest([u8; 32]);

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("invalid digest format")]
pub struct InvalidDigest;

impl Digest {
    /// Accepts `sha256:<hex>` and `sha256-<hex>` (the on-disk spelling), 64 hex digits of
    /// either case, as Ollama's blob routes do.
    pub fn parse(s: &str) -> Result<Digest, InvalidDigest> {
        let hex_part = s
            .strip_prefix("sha256:")
            .or_else(|| s.strip_prefix("sha256-"))
            .ok_or(InvalidDigest)?;
        if hex_part.len() != 64 || !hex_part.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(InvalidDigest);
        }
        let mut bytes = [0u8; 32];
        hex::decode_to_slice(hex_part, &mut bytes).map_err(|_| InvalidDigest)?;
        Ok(Digest(bytes))
    }

    /// The digest of `data`.
    pub fn of(data: &[u8]) -> Digest {
        Digest(Sha256::digest(data).into())
    }

    pub fn from_hasher(hasher: Sha256) -> Digest {
        Digest(hasher.finalize().into())
    }

    /// 64 lower-case hex digits.
    pub fn hex(&self) -> String {
        hex::encode(self.0)
    }

    /// The blob's file name: `sha256-<hex>`.
    pub fn file_name(&self) -> String {
        format!("sha256-{}", self.hex())
    }
}

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "sha256:{}", self.hex())
    }
}

impl fmt::Debug for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl serde::Serialize for Digest {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for Digest {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Digest, D::Error> {
        let s = String::deserialize(d)?;
        Digest::parse(&s).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEX: &str = "8aaa4ba0e7c3fa1a4e3a1d31ea7aae2a5d0d8fa0fbb2b1f9a1ed80b3ae9d0bb0";

    #[test]
    fn accepts_colon_and_dash_spellings() {
        let a = Digest::parse(&format!("sha256:{HEX}")).unwrap();
        let b = Digest::parse(&format!("sha256-{HEX}")).unwrap();
        assert_eq!(a, b);
        assert_eq!(a.to_string(), format!("sha256:{HEX}"));
        assert_eq!(a.file_name(), format!("sha256-{HEX}"));
    }

    #[test]
    fn normalises_upper_case_hex_to_lower_case() {
        let d = Digest::parse(&format!("sha256:{}", HEX.to_uppercase())).unwrap();
        assert_eq!(d.hex(), HEX);
    }

    #[test]
    fn rejects_anything_that_could_escape_the_blob_directory() {
        for bad in [
            "",
            "sha256:",
            "sha256:bad",
            "sha512:0000",
            &format!("sha256:{}", &HEX[..63]),
            &format!("sha256:{HEX}0"),
            &format!("sha256:../{}", &HEX[3..]),
            &format!("sha256:{}g", &HEX[..63]),
            &format!("SHA256:{HEX}"),
            &format!("sha256_{HEX}"),
        ] {
            assert_eq!(Digest::parse(bad), Err(InvalidDigest), "{bad:?}");
        }
    }

    #[test]
    fn digest_of_empty_input_is_the_well_known_value() {
        assert_eq!(
            Digest::of(b"").hex(),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
    }
}

//! Credentials by reference: a secret is named by an environment variable or a file, never inline.

use std::fmt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::TopologyError;

/// Where a secret lives. Written in TOML as `{ env = "VAR" }` or `{ file = "path" }`; a relative
/// file path is resolved against the topology's state directory.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "RawSecretRef")]
pub enum SecretRef {
    /// Read the secret from this environment variable.
    Env(String),
    /// Read the secret from this file (trailing newline stripped).
    File(PathBuf),
}

#[derive(Deserialize)]
#[serde(untagged)]
enum RawSecretRef {
    Table(TaggedRef),
    Inline(#[allow(dead_code)] String),
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TaggedRef {
    env: Option<String>,
    file: Option<PathBuf>,
}

impl TryFrom<RawSecretRef> for SecretRef {
    type Error = String;

    fn try_from(raw: RawSecretRef) -> Result<Self, Self::Error> {
        match raw {
            RawSecretRef::Inline(_) => Err("inline secrets are not allowed; write \
                 { env = \"VAR\" } or { file = \"path\" } instead"
                .to_owned()),
            RawSecretRef::Table(TaggedRef {
                env: Some(e),
                file: None,
            }) if !e.is_empty() => Ok(SecretRef::Env(e)),
            RawSecretRef::Table(TaggedRef {
                env: None,
                file: Some(f),
            }) => Ok(SecretRef::File(f)),
            RawSecretRef::Table(_) => {
                Err("a secret reference needs exactly one of `env` or `file`".to_owned())
            }
        }
    }
}

impl SecretRef {
    /// The file this reference points to, resolved against `base` when relative.
    pub fn file_path(&self, base: &Path) -> Option<PathBuf> {
        match self {
            SecretRef::File(p) if p.is_relative() => Some(base.join(p)),
            SecretRef::File(p) => Some(p.clone()),
            SecretRef::Env(_) => None,
        }
    }

    /// Reads the secret.
    ///
    /// # Errors
    /// [`TopologyError::Secret`] naming the variable or file when it is unset, unreadable or empty.
    pub fn resolve(&self, base: &Path) -> Result<Secret, TopologyError> {
        let (source, value) = match self {
            SecretRef::Env(var) => (
                format!("environment variable {var}"),
                std::env::var(var).ok(),
            ),
            SecretRef::File(_) => {
                let path = self.file_path(base).unwrap_or_default();
                let value = std::fs::read_to_string(&path).ok();
                (format!("file {}", path.display()), value)
            }
        };
        match value.map(|v| v.trim_end_matches(['\n', '\r']).to_owned()) {
            Some(v) if !v.is_empty() => Ok(Secret(v)),
            Some(_) => Err(TopologyError::Secret {
                source_name: source,
                reason: "is empty",
            }),
            None => Err(TopologyError::Secret {
                source_name: source,
                reason: "is not readable",
            }),
        }
    }
}

impl fmt::Display for SecretRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SecretRef::Env(v) => write!(f, "env:{v}"),
            SecretRef::File(p) => write!(f, "file:{}", p.display()),
        }
    }
}

/// A resolved secret. `Debug` and `Display` never show the value.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps a value (e.g. a freshly generated password).
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
    }

    /// The secret value; call only where it is sent to a server or hashed.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// Hex SHA-256 of the value, as ClickHouse's `password_sha256_hex` wants it.
    pub fn sha256_hex(&self) -> String {
        use sha2::Digest;
        hex::encode(sha2::Sha256::digest(self.0.as_bytes()))
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Deserialize)]
    struct Holder {
        password: SecretRef,
    }

    fn parse(s: &str) -> Result<SecretRef, toml::de::Error> {
        toml::from_str::<Holder>(s).map(|h| h.password)
    }

    #[test]
    fn env_and_file_refs_parse() {
        assert_eq!(
            parse("password = { env = \"X\" }").ok(),
            Some(SecretRef::Env("X".into()))
        );
        assert_eq!(
            parse("password = { file = \"a/b\" }").ok(),
            Some(SecretRef::File(PathBuf::from("a/b")))
        );
    }

    #[test]
    fn inline_secret_is_refused_with_a_hint() {
        let text = "[clickhouse]\npassword = \"hunter2\"\n";
        let err = crate::parse(text, Path::new("t.toml"))
            .expect_err("inline must fail")
            .to_string();
        assert!(err.contains("line 2"), "{err}");
        assert!(err.contains("inline secrets are not allowed"), "{err}");
        assert!(
            !err.contains("hunter2"),
            "error must not echo the secret: {err}"
        );
    }

    #[test]
    fn both_or_neither_is_refused() {
        assert!(parse("password = { env = \"X\", file = \"y\" }").is_err());
        assert!(parse("password = {}").is_err());
    }

    #[test]
    fn debug_redacts_and_file_resolves_relative_to_base() {
        let dir = std::env::temp_dir().join(format!("chgate-secret-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("tmp dir");
        std::fs::write(dir.join("pw"), "s3cret\n").expect("write");
        let s = SecretRef::File("pw".into())
            .resolve(&dir)
            .expect("resolves");
        assert_eq!(s.expose(), "s3cret");
        assert_eq!(format!("{s:?}"), "Secret(<redacted>)");
        let missing = SecretRef::File("nope".into())
            .resolve(&dir)
            .expect_err("missing");
        assert!(missing.to_string().contains("nope"), "{missing}");
        std::fs::remove_dir_all(&dir).ok();
    }
}

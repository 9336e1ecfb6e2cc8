//! Token format, generation, salted hashing and the credentials of a request.
//!
//! A token is `chg_<key_id>_<secret>`: `key_id` is 16 lowercase hex characters (64 random bits,
//! public, the lookup key), `secret` is 43 base64url characters (256 random bits). PostgreSQL
//! stores `key_id`, a random 16-byte salt and `SHA-256(salt || secret)`, never the secret.

use axum::http::{header, HeaderMap};
use base64::Engine as _;
use rand::RngCore as _;
use sha2::{Digest, Sha256};

const PREFIX: &str = "chg_";
const KEY_ID_LEN: usize = 16;
const SECRET_LEN: usize = 43;

/// A freshly generated token: the plain text (shown once) and what is stored.
pub struct NewToken {
    /// `chg_<key_id>_<secret>`; print once, never store or log.
    pub plain: String,
    /// The public lookup key.
    pub key_id: String,
    /// Random per-token salt.
    pub salt: [u8; 16],
    /// `SHA-256(salt || secret)`.
    pub secret_hash: [u8; 32],
}

impl std::fmt::Debug for NewToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NewToken")
            .field("key_id", &self.key_id)
            .finish_non_exhaustive()
    }
}

/// Generates a token from the OS random source.
pub fn generate() -> NewToken {
    let mut rng = rand::rngs::OsRng;
    let mut id = [0u8; KEY_ID_LEN / 2];
    let mut secret = [0u8; 32];
    let mut salt = [0u8; 16];
    rng.fill_bytes(&mut id);
    rng.fill_bytes(&mut secret);
    rng.fill_bytes(&mut salt);
    let key_id = hex::encode(id);
    let secret = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(secret);
    NewToken {
        plain: format!("{PREFIX}{key_id}_{secret}"),
        secret_hash: hash(&salt, &secret),
        key_id,
        salt,
    }
}

/// `SHA-256(salt || secret)`.
pub fn hash(salt: &[u8], secret: &str) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(salt);
    h.update(secret.as_bytes());
    h.finalize().into()
}

/// A presented token split into its parts (nothing verified yet).
#[derive(Clone, PartialEq, Eq)]
pub struct Presented {
    /// The public lookup key.
    pub key_id: String,
    /// The secret part.
    pub secret: String,
}

impl std::fmt::Debug for Presented {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Presented")
            .field("key_id", &self.key_id)
            .finish_non_exhaustive()
    }
}

/// Splits `chg_<key_id>_<secret>`; `None` for anything else.
pub fn parse(token: &str) -> Option<Presented> {
    let rest = token.strip_prefix(PREFIX)?;
    let (key_id, secret) = rest.split_at_checked(KEY_ID_LEN)?;
    let secret = secret.strip_prefix('_')?;
    let id_ok = key_id
        .bytes()
        .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
    let secret_ok = secret.len() == SECRET_LEN
        && secret
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    (id_ok && secret_ok).then(|| Presented {
        key_id: key_id.to_owned(),
        secret: secret.to_owned(),
    })
}

/// Whether `secret` hashes to `expected` with `salt` (constant-time comparison).
pub fn verify(salt: &[u8], secret: &str, expected: &[u8]) -> bool {
    let got = hash(salt, secret);
    got.len() == expected.len()
        && got
            .iter()
            .zip(expected)
            .fold(0u8, |acc, (a, b)| acc | (a ^ b))
            == 0
}

/// What a request presented in `Authorization`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Credentials {
    /// No `Authorization` header.
    Missing,
    /// A header that is not a token we could parse (wrong scheme, bad base64, bad format).
    Malformed,
    /// A well-formed token.
    Token(Presented),
}

/// Reads `Authorization: Bearer <t>`, `Token <t>` (InfluxDB 2 clients) or `Basic
/// base64(user:<t>)` (Prometheus `basic_auth`, InfluxDB 1 clients); the Basic user name is ignored.
pub fn credentials(headers: &HeaderMap) -> Credentials {
    let Some(value) = headers.get(header::AUTHORIZATION) else {
        return Credentials::Missing;
    };
    let Ok(value) = value.to_str() else {
        return Credentials::Malformed;
    };
    let (scheme, rest) = value.trim().split_once(' ').unwrap_or((value, ""));
    let rest = rest.trim();
    let token = match scheme.to_ascii_lowercase().as_str() {
        "bearer" | "token" => Some(rest.to_owned()),
        "basic" => base64::engine::general_purpose::STANDARD
            .decode(rest)
            .ok()
            .and_then(|b| String::from_utf8(b).ok())
            .and_then(|s| s.split_once(':').map(|(_, p)| p.to_owned())),
        _ => None,
    };
    match token.as_deref().and_then(parse) {
        Some(p) => Credentials::Token(p),
        None => Credentials::Malformed,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;
    use proptest::prelude::*;

    fn headers(v: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(
            header::AUTHORIZATION,
            HeaderValue::from_str(v).expect("ascii"),
        );
        h
    }

    #[test]
    fn generated_tokens_parse_and_verify_and_differ() {
        let a = generate();
        let b = generate();
        assert_ne!(a.plain, b.plain);
        assert_ne!(a.salt, b.salt);
        let p = parse(&a.plain).expect("parses");
        assert_eq!(p.key_id, a.key_id);
        assert!(verify(&a.salt, &p.secret, &a.secret_hash));
        assert!(!verify(&b.salt, &p.secret, &a.secret_hash), "salt matters");
        assert!(
            !format!("{a:?}").contains(&p.secret),
            "Debug hides the secret"
        );
    }

    #[test]
    fn every_supported_header_form_yields_the_token() {
        let t = generate();
        let basic = base64::engine::general_purpose::STANDARD.encode(format!("prom:{}", t.plain));
        for h in [
            format!("Bearer {}", t.plain),
            format!("Token {}", t.plain),
            format!("bearer  {}", t.plain),
            format!("Basic {basic}"),
        ] {
            match credentials(&headers(&h)) {
                Credentials::Token(p) => assert_eq!(p.key_id, t.key_id, "{h}"),
                other => panic!("{h}: {other:?}"),
            }
        }
        assert_eq!(credentials(&HeaderMap::new()), Credentials::Missing);
        for bad in [
            "Bearer",
            "Bearer chg_x",
            "Digest abc",
            "Basic !!!",
            "Basic Zm9v",
        ] {
            assert_eq!(credentials(&headers(bad)), Credentials::Malformed, "{bad}");
        }
    }

    proptest! {
        #[test]
        fn parse_never_panics_and_accepts_only_the_format(s in ".{0,80}") {
            if let Some(p) = parse(&s) {
                prop_assert_eq!(p.key_id.len(), KEY_ID_LEN);
                prop_assert_eq!(p.secret.len(), SECRET_LEN);
            }
        }
    }
}

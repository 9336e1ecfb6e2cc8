//! Grafana-compatible secret encryption: the legacy `aes-cfb` format Grafana decrypts with `[security] secret_key`.
//!
//! Layout of one encrypted value, as Grafana's `encryption.Service.Encrypt` writes it
//! (`pkg/services/encryption/service/service.go`, `provider/cipher_aescfb.go`):
//!
//! ```text
//! *YWVzLWNmYg*  salt(8 ASCII alphanumerics)  iv(16 bytes)  AES-256-CFB128(plaintext)
//! ^ '*' + base64-raw("aes-cfb") + '*'
//! key = PBKDF2-HMAC-SHA256(secret_key, salt, 10000 rounds, 32 bytes)
//! ```
//!
//! Grafana's secrets manager sends any payload that does not start with `#` (an envelope data-key
//! id) to this decryption with the `secret_key` itself, with or without envelope encryption
//! enabled (`pkg/services/secrets/manager/manager.go`), so this format is read by every Grafana
//! since 8.x. The two places it is stored use different base64 wrappings, see [`Wrapping`].

use std::collections::HashMap;
use std::fmt;

use aes::Aes256;
use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD};
use base64::Engine as _;
use cfb_mode::cipher::{AsyncStreamCipher, KeyIvInit};
use rand::Rng as _;
use sha2::Sha256;

/// `*` + base64-raw(`aes-cfb`) + `*`: the algorithm marker Grafana prefixes since 8.3.
pub const AES_CFB_PREFIX: &[u8] = b"*YWVzLWNmYg*";
/// Salt length Grafana uses (`encryption.SaltLength`).
pub const SALT_LEN: usize = 8;
/// AES block size, the IV length.
pub const IV_LEN: usize = 16;
/// PBKDF2 rounds Grafana uses.
pub const PBKDF2_ROUNDS: u32 = 10_000;

type CfbEnc = cfb_mode::Encryptor<Aes256>;
type CfbDec = cfb_mode::Decryptor<Aes256>;

/// How an encrypted value is turned into text for a column.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Wrapping {
    /// `data_source.secure_json_data` is Go's `map[string][]byte` marshalled to JSON: each value
    /// is standard base64 **with** padding.
    SecureJsonData,
    /// `secrets.value` is `base64.RawStdEncoding` (standard alphabet, **no** padding) of the
    /// encrypted JSON object (`pkg/services/secrets/kvstore/sql.go`).
    SecretsTable,
}

/// Why a stored value could not be decrypted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DecryptError {
    /// The text is not base64 in the expected wrapping.
    #[error("not base64")]
    Base64,
    /// Envelope-encrypted (`#keyid#...`): needs Grafana's `data_keys`, not the secret key alone.
    #[error("envelope-encrypted with a data key")]
    Envelope,
    /// An algorithm other than `aes-cfb` (e.g. `aes-gcm`), which chgate does not read.
    #[error("unsupported algorithm {0:?}")]
    Algorithm(String),
    /// Shorter than salt + IV.
    #[error("payload too short")]
    TooShort,
}

/// Derives the AES-256 key from Grafana's `secret_key` and a salt.
fn derive_key(secret: &[u8], salt: &[u8]) -> [u8; 32] {
    let mut key = [0u8; 32];
    pbkdf2::pbkdf2_hmac::<Sha256>(secret, salt, PBKDF2_ROUNDS, &mut key);
    key
}

/// Encrypts `plaintext` exactly as Grafana's `aes-cfb` cipher does (random salt and IV), with the
/// algorithm prefix. Returns raw bytes; see [`encrypt_to_text`] for the column text.
pub fn encrypt(plaintext: &[u8], secret_key: &str) -> Vec<u8> {
    let mut rng = rand::thread_rng();
    // Grafana's salt is `util.GetRandomString(8)`: alphanumerics, used as a string.
    let salt: Vec<u8> = (0..SALT_LEN)
        .map(|_| rng.sample(rand::distributions::Alphanumeric))
        .collect();
    let mut iv = [0u8; IV_LEN];
    rng.fill(&mut iv);
    encrypt_with(plaintext, secret_key, &salt, &iv)
}

/// [`encrypt`] with a given salt and IV (tests and known-answer vectors).
pub fn encrypt_with(plaintext: &[u8], secret_key: &str, salt: &[u8], iv: &[u8; IV_LEN]) -> Vec<u8> {
    encrypt_raw(plaintext, secret_key.as_bytes(), salt, iv)
}

/// The legacy format with any byte string as the PBKDF2 password (envelope data keys are raw
/// bytes, used by Grafana as a Go string).
pub(crate) fn encrypt_raw(
    plaintext: &[u8],
    secret: &[u8],
    salt: &[u8],
    iv: &[u8; IV_LEN],
) -> Vec<u8> {
    let key = derive_key(secret, salt);
    let mut body = plaintext.to_vec();
    CfbEnc::new(&key.into(), iv.into()).encrypt(&mut body);
    let mut out = Vec::with_capacity(AES_CFB_PREFIX.len() + salt.len() + IV_LEN + body.len());
    out.extend_from_slice(AES_CFB_PREFIX);
    out.extend_from_slice(salt);
    out.extend_from_slice(iv);
    out.extend_from_slice(&body);
    out
}

/// Decrypts a raw payload the way Grafana's legacy path does: optional `*alg*` prefix (absent or
/// empty means `aes-cfb`), then salt, IV and CFB ciphertext.
///
/// # Errors
/// [`DecryptError`] when the payload is envelope-encrypted, uses another algorithm or is too
/// short. A wrong `secret_key` is not detectable here (CFB has no tag): it yields garbage, which is
/// exactly what Grafana would show.
pub fn decrypt(payload: &[u8], secret_key: &str) -> Result<Vec<u8>, DecryptError> {
    if payload.first() == Some(&b'#') {
        return Err(DecryptError::Envelope);
    }
    decrypt_raw(payload, secret_key.as_bytes())
}

fn decrypt_raw(payload: &[u8], secret: &[u8]) -> Result<Vec<u8>, DecryptError> {
    let body = strip_algorithm(payload)?;
    if body.len() < SALT_LEN + IV_LEN {
        return Err(DecryptError::TooShort);
    }
    let (salt, rest) = body.split_at(SALT_LEN);
    let (iv, ciphertext) = rest.split_at(IV_LEN);
    let key = derive_key(secret, salt);
    let mut out = ciphertext.to_vec();
    let iv: [u8; IV_LEN] = iv.try_into().map_err(|_| DecryptError::TooShort)?;
    CfbDec::new(&key.into(), &iv.into()).decrypt(&mut out);
    Ok(out)
}

/// Splits an envelope payload `#base64raw(key id)#rest` (Grafana 9+ envelope encryption,
/// `pkg/services/secrets/manager/manager.go`) into the data key id and the rest, which is the
/// legacy format encrypted with the data key.
pub fn split_envelope(payload: &[u8]) -> Option<(String, &[u8])> {
    let rest = payload.strip_prefix(b"#")?;
    let end = rest.iter().position(|&b| b == b'#')?;
    let id = STANDARD_NO_PAD.decode(&rest[..end]).ok()?;
    Some((String::from_utf8(id).ok()?, &rest[end + 1..]))
}

/// The `secret_key` plus those of Grafana's envelope data keys that were decrypted with it: all
/// chgate needs to read what Grafana itself stored.
#[derive(Clone)]
pub struct Keyring {
    secret_key: String,
    data_keys: HashMap<String, Vec<u8>>,
}

impl fmt::Debug for Keyring {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Keyring")
            .field("data_keys", &self.data_keys.len())
            .finish_non_exhaustive()
    }
}

impl Keyring {
    /// A keyring holding only the `secret_key`.
    pub fn new(secret_key: &str) -> Self {
        Keyring {
            secret_key: secret_key.to_owned(),
            data_keys: HashMap::new(),
        }
    }

    /// The `secret_key` (what chgate encrypts with).
    pub fn secret_key(&self) -> &str {
        &self.secret_key
    }

    /// Adds a data key from Grafana's `data_keys` table by decrypting its `encrypted_data` with
    /// the `secret_key` (provider `secretKey.v1`, the default).
    ///
    /// # Errors
    /// As [`decrypt`].
    pub fn add_encrypted_data_key(
        &mut self,
        id: &str,
        encrypted: &[u8],
    ) -> Result<(), DecryptError> {
        let key = decrypt(encrypted, &self.secret_key)?;
        self.data_keys.insert(id.to_owned(), key);
        Ok(())
    }

    /// Decrypts a legacy or (with a known data key) envelope payload.
    ///
    /// # Errors
    /// [`DecryptError::Envelope`] for an unknown data key, else as [`decrypt`].
    pub fn decrypt(&self, payload: &[u8]) -> Result<Vec<u8>, DecryptError> {
        match split_envelope(payload) {
            Some((id, rest)) => match self.data_keys.get(&id) {
                Some(key) => decrypt_raw(rest, key),
                None => Err(DecryptError::Envelope),
            },
            None => decrypt(payload, &self.secret_key),
        }
    }

    /// Unwraps column text and decrypts it.
    ///
    /// # Errors
    /// As [`decrypt_text`].
    pub fn decrypt_text(&self, text: &str, wrapping: Wrapping) -> Result<Vec<u8>, DecryptError> {
        self.decrypt(&unwrap_text(text, wrapping)?)
    }
}

/// Removes a `*base64(alg)*` prefix, mirroring `deriveEncryptionAlgorithm`.
fn strip_algorithm(payload: &[u8]) -> Result<&[u8], DecryptError> {
    let Some(rest) = payload.strip_prefix(b"*") else {
        return Ok(payload);
    };
    let Some(end) = rest.iter().position(|&b| b == b'*') else {
        return Ok(rest);
    };
    let alg = STANDARD_NO_PAD
        .decode(&rest[..end])
        .map_err(|_| DecryptError::Base64)?;
    match alg.as_slice() {
        b"" | b"aes-cfb" => Ok(&rest[end + 1..]),
        other => Err(DecryptError::Algorithm(
            String::from_utf8_lossy(other).into_owned(),
        )),
    }
}

/// Encrypts and wraps for a column.
pub fn encrypt_to_text(plaintext: &[u8], secret_key: &str, wrapping: Wrapping) -> String {
    let raw = encrypt(plaintext, secret_key);
    match wrapping {
        Wrapping::SecureJsonData => STANDARD.encode(raw),
        Wrapping::SecretsTable => STANDARD_NO_PAD.encode(raw),
    }
}

/// Unwraps column text and decrypts it.
///
/// # Errors
/// [`DecryptError::Base64`] when the text is not in the wrapping's base64, else as [`decrypt`].
pub fn decrypt_text(
    text: &str,
    secret_key: &str,
    wrapping: Wrapping,
) -> Result<Vec<u8>, DecryptError> {
    decrypt(&unwrap_text(text, wrapping)?, secret_key)
}

/// Decodes column text to the raw payload (no decryption).
///
/// # Errors
/// [`DecryptError::Base64`].
pub fn unwrap_text(text: &str, wrapping: Wrapping) -> Result<Vec<u8>, DecryptError> {
    match wrapping {
        Wrapping::SecureJsonData => STANDARD.decode(text.trim()),
        // Be lenient about padding: Go's RawStdEncoding rejects it, but a value we wrote never has it.
        Wrapping::SecretsTable => STANDARD_NO_PAD.decode(text.trim().trim_end_matches('=')),
    }
    .map_err(|_| DecryptError::Base64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Known answer from Grafana's own `Test_aesDecipher` (`provider/decipher_aes_test.go`):
    /// these bytes (no prefix) decrypt to `grafana` with secret `1234`.
    const GRAFANA_VECTOR: [u8; 31] = [
        69, 84, 85, 120, 65, 82, 107, 88, 144, 188, 109, 229, 91, 88, 85, 113, 220, 35, 178, 190,
        208, 182, 209, 91, 252, 119, 138, 133, 198, 8, 1,
    ];

    #[test]
    fn decrypts_grafanas_own_test_vector() {
        assert_eq!(
            decrypt(&GRAFANA_VECTOR, "1234").expect("decrypts"),
            b"grafana"
        );
    }

    #[test]
    fn reencrypting_with_the_vectors_salt_and_iv_reproduces_it() {
        let salt = &GRAFANA_VECTOR[..SALT_LEN];
        let iv: [u8; IV_LEN] = GRAFANA_VECTOR[SALT_LEN..SALT_LEN + IV_LEN]
            .try_into()
            .expect("16 bytes");
        let ours = encrypt_with(b"grafana", "1234", salt, &iv);
        assert_eq!(&ours[..AES_CFB_PREFIX.len()], AES_CFB_PREFIX);
        assert_eq!(&ours[AES_CFB_PREFIX.len()..], &GRAFANA_VECTOR[..]);
    }

    #[test]
    fn envelope_and_other_algorithms_are_refused_not_garbled() {
        assert_eq!(decrypt(b"#a2V5#xxxx", "k"), Err(DecryptError::Envelope));
        // base64-raw("aes-gcm") = YWVzLWdjbQ
        let gcm = [b"*YWVzLWdjbQ*".as_slice(), &GRAFANA_VECTOR].concat();
        assert_eq!(
            decrypt(&gcm, "1234"),
            Err(DecryptError::Algorithm("aes-gcm".into()))
        );
        assert_eq!(decrypt(b"short", "k"), Err(DecryptError::TooShort));
    }

    #[test]
    fn wrappings_differ_only_in_padding() {
        let a = encrypt_to_text(b"pw", "key", Wrapping::SecureJsonData);
        let b = encrypt_to_text(b"pw", "key", Wrapping::SecretsTable);
        assert!(!b.ends_with('='));
        for (t, w) in [(a, Wrapping::SecureJsonData), (b, Wrapping::SecretsTable)] {
            assert_eq!(decrypt_text(&t, "key", w).expect("round trip"), b"pw");
        }
    }

    #[test]
    fn salt_is_alphanumeric_and_values_are_randomised() {
        let a = encrypt(b"same", "k");
        let b = encrypt(b"same", "k");
        assert_ne!(a, b, "salt and IV are random");
        let salt = &a[AES_CFB_PREFIX.len()..AES_CFB_PREFIX.len() + SALT_LEN];
        assert!(salt.iter().all(u8::is_ascii_alphanumeric));
    }

    #[test]
    fn keyring_reads_envelope_payloads_with_a_decrypted_data_key() {
        let data_key = [7u8, 200, 3, 0, 255, 42, 9, 9, 1, 2, 3, 4, 5, 6, 7, 8];
        let encrypted_dk = encrypt(&data_key, "root-secret");
        let inner = encrypt_raw(b"pw", &data_key, b"abcdEFGH", &[1; IV_LEN]);
        let payload = [
            b"#".as_slice(),
            STANDARD_NO_PAD.encode("kid1").as_bytes(),
            b"#",
            &inner,
        ]
        .concat();
        let mut ring = Keyring::new("root-secret");
        assert_eq!(
            ring.decrypt(&payload),
            Err(DecryptError::Envelope),
            "unknown key id"
        );
        ring.add_encrypted_data_key("kid1", &encrypted_dk)
            .expect("data key decrypts");
        assert_eq!(ring.decrypt(&payload).expect("envelope"), b"pw");
        assert_eq!(
            ring.decrypt(&encrypt(b"legacy", "root-secret"))
                .expect("legacy"),
            b"legacy"
        );
        assert!(!format!("{ring:?}").contains("root-secret"));
    }

    proptest! {
        // PBKDF2 runs 10000 rounds per case: keep the case count small.
        #![proptest_config(ProptestConfig::with_cases(32))]
        #[test]
        fn round_trips_any_plaintext(pt in proptest::collection::vec(any::<u8>(), 0..200),
                                     key in "[ -~]{1,40}") {
            let enc = encrypt(&pt, &key);
            prop_assert_eq!(decrypt(&enc, &key).expect("decrypts"), pt);
        }
    }
}

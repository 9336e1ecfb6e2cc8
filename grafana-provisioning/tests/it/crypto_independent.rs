//! Our encryption checked against an independent implementation of Grafana's algorithm (Python,
//! `cryptography` + `hashlib`), in both directions and both column wrappings.

use chgate_grafana::crypto::{decrypt_text, encrypt_to_text, Wrapping};

use crate::common::{py_decrypt, python};

const KEY: &str = "grafana-shared-secret-key-0123";

fn cases() -> Vec<String> {
    vec![
        "p".into(),
        "exactly16bytes!!".into(),
        "a much longer password that spans several AES blocks, 64+ bytes long".into(),
        "ünïcödé ✓ \"quotes\" and \\backslashes\\".into(),
    ]
}

#[test]
fn python_decrypts_what_we_encrypt_in_both_wrappings() {
    for pw in cases() {
        for (w, name) in [
            (Wrapping::SecureJsonData, "secure_json_data"),
            (Wrapping::SecretsTable, "secrets_table"),
        ] {
            let text = encrypt_to_text(pw.as_bytes(), KEY, w);
            assert!(
                pw.len() < 8 || !text.contains(&pw),
                "ciphertext contains the plaintext"
            );
            assert_eq!(py_decrypt(KEY, &text, name), pw, "{name}");
        }
    }
}

#[test]
fn we_decrypt_what_python_encrypts() {
    for pw in cases() {
        for (w, name) in [
            (Wrapping::SecureJsonData, "secure_json_data"),
            (Wrapping::SecretsTable, "secrets_table"),
        ] {
            let req = serde_json::json!({
                "op": "encrypt", "secret_key": KEY, "plaintext": pw, "wrapping": name
            });
            let text = python(&req).expect("python encrypts");
            let ours = decrypt_text(&text, KEY, w).expect("we decrypt");
            assert_eq!(String::from_utf8(ours).expect("utf8"), pw);
        }
    }
}

#[test]
fn wrong_wrapping_is_rejected_by_the_independent_side() {
    // Guards the base64 detail: secrets.value must be unpadded, secure_json_data padded.
    let padded = encrypt_to_text(b"pw", KEY, Wrapping::SecureJsonData);
    let unpadded = encrypt_to_text(b"pw", KEY, Wrapping::SecretsTable);
    if padded.ends_with('=') {
        let e = python(&serde_json::json!({
            "op": "decrypt", "secret_key": KEY, "text": padded, "wrapping": "secrets_table"
        }));
        assert!(e.is_err(), "padded text accepted as RawStdEncoding");
    }
    if matches!(unpadded.len() % 4, 1..=3) {
        let e = python(&serde_json::json!({
            "op": "decrypt", "secret_key": KEY, "text": unpadded, "wrapping": "secure_json_data"
        }));
        assert!(e.is_err(), "unpadded text accepted as StdEncoding");
    }
}

#[test]
fn a_wrong_secret_key_yields_garbage_not_the_password() {
    let text = encrypt_to_text(b"the-password", KEY, Wrapping::SecureJsonData);
    let other = py_decrypt("another-key", &text, "secure_json_data");
    assert_ne!(other, "the-password");
}

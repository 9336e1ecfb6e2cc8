#!/usr/bin/env python3
"""Independent implementation of Grafana's legacy secret format, used by chgate-grafana's tests.

Written from Grafana's Go sources (pkg/services/encryption/provider/cipher_aescfb.go,
decipher_aes.go, service/service.go), not from the Rust code under test:

    [ '*' base64raw(alg) '*' ] salt(8) iv(16) AES-256-CFB128(plaintext)
    key = PBKDF2-HMAC-SHA256(secret_key, salt, 10000, 32)

Column wrappings: data_source.secure_json_data values are padded standard base64 (Go's JSON
encoding of []byte); secrets.value is unpadded standard base64 (base64.RawStdEncoding).

Reads one JSON request on stdin (so no secret appears in a process listing) and prints the result:
  {"op": "decrypt", "secret_key": K, "text": T, "wrapping": "secure_json_data"|"secrets_table"}
  {"op": "encrypt", "secret_key": K, "plaintext": P, "wrapping": ...}
  {"op": "envelope_encrypt", "secret_key": K, "plaintext": P, "wrapping": ..., "key_id": I}
Needs the `cryptography` package (pip install cryptography).
"""
import base64
import binascii
import hashlib
import json
import os
import sys

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes


def unwrap(text: str, wrapping: str) -> bytes:
    if wrapping == "secure_json_data":
        if len(text) % 4 != 0:
            raise ValueError("secure_json_data value must be padded standard base64")
        return base64.b64decode(text, validate=True)
    if wrapping == "secrets_table":
        if "=" in text:
            raise ValueError("secrets.value must be unpadded (RawStdEncoding)")
        return base64.b64decode(text + "=" * (-len(text) % 4), validate=True)
    raise ValueError(f"unknown wrapping {wrapping}")


def wrap(raw: bytes, wrapping: str) -> str:
    text = base64.b64encode(raw).decode()
    return text.rstrip("=") if wrapping == "secrets_table" else text


def derive(secret_key, salt: bytes) -> bytes:
    # Grafana passes the secret as a Go string: the secret_key's UTF-8, or a data key's raw bytes.
    secret = secret_key.encode() if isinstance(secret_key, str) else secret_key
    return hashlib.pbkdf2_hmac("sha256", secret, salt, 10000, 32)


def decrypt(payload: bytes, secret_key) -> bytes:
    if payload[:1] == b"#":
        raise ValueError("envelope-encrypted payload")
    if payload[:1] == b"*":
        end = payload.index(b"*", 1)
        alg_b64 = payload[1:end]
        alg = base64.b64decode(alg_b64 + b"=" * (-len(alg_b64) % 4))
        if alg not in (b"", b"aes-cfb"):
            raise ValueError(f"algorithm {alg!r}")
        payload = payload[end + 1 :]
    salt, iv, body = payload[:8], payload[8:24], payload[24:]
    if len(iv) != 16:
        raise ValueError("payload too short")
    dec = Cipher(algorithms.AES(derive(secret_key, salt)), modes.CFB(iv)).decryptor()
    return dec.update(body) + dec.finalize()


def encrypt(plaintext: bytes, secret_key) -> bytes:
    alphabet = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
    salt = bytes(alphabet[b % len(alphabet)] for b in os.urandom(8))
    iv = os.urandom(16)
    enc = Cipher(algorithms.AES(derive(secret_key, salt)), modes.CFB(iv)).encryptor()
    return b"*YWVzLWNmYg*" + salt + iv + enc.update(plaintext) + enc.finalize()


def envelope_encrypt(plaintext: bytes, secret_key: str, key_id: str):
    """Grafana's envelope encryption with the default provider (secretKey.v1): a random 16-byte
    data key, stored in data_keys.encrypted_data encrypted with the secret_key; the value is
    '#' + base64raw(key id) + '#' + the legacy format keyed by the data key."""
    data_key = os.urandom(16)
    stored_key = encrypt(data_key, secret_key)
    prefix = b"#" + base64.b64encode(key_id.encode()).rstrip(b"=") + b"#"
    return stored_key, prefix + encrypt(plaintext, data_key)


def main() -> int:
    req = json.load(sys.stdin)
    try:
        if req["op"] == "decrypt":
            out = decrypt(unwrap(req["text"], req["wrapping"]), req["secret_key"])
            sys.stdout.write(out.decode("utf-8", errors="replace"))
        elif req["op"] == "envelope_encrypt":
            stored_key, raw = envelope_encrypt(
                req["plaintext"].encode(), req["secret_key"], req["key_id"]
            )
            out = {"data_key_b64": base64.b64encode(stored_key).decode(), "text": wrap(raw, req["wrapping"])}
            sys.stdout.write(json.dumps(out))
        else:
            raw = encrypt(req["plaintext"].encode(), req["secret_key"])
            sys.stdout.write(wrap(raw, req["wrapping"]))
    except (ValueError, binascii.Error) as e:
        sys.stderr.write(f"grafana_crypto: {e}\n")
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())

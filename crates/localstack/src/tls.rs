//! `[tls]` files for the local rig: when none of the CA, certificate and key exist, `up`
//! generates a local CA and a server certificate for `127.0.0.1`, `::1` and `localhost` signed by
//! it (rcgen). Existing files are used as they are (bring your own); a partial set is an error.

use std::fs;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::Path;

use chgate_topology::model::TlsSection;
use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair, KeyUsagePurpose};

use crate::StackError;

fn tls_error(reason: impl std::fmt::Display) -> StackError {
    StackError::Tls(reason.to_string())
}

/// Makes sure the `[tls]` files exist (generating a local CA and server certificate when all
/// are missing). Returns whether they were generated.
///
/// # Errors
/// [`StackError::Tls`] for a partial set or a generation failure; [`StackError::Io`].
pub fn ensure(tls: &TlsSection) -> Result<bool, StackError> {
    let files = [&tls.ca, &tls.cert, &tls.key];
    let present = files.iter().filter(|p| p.exists()).count();
    if present == files.len() {
        return Ok(false);
    }
    if present > 0 {
        let missing: Vec<String> = files
            .iter()
            .filter(|p| !p.exists())
            .map(|p| p.display().to_string())
            .collect();
        return Err(tls_error(format!(
            "[tls] files missing: {} (provide all of ca, cert, key, or none to have a local CA generated)",
            missing.join(", ")
        )));
    }
    let (ca_pem, cert_pem, key_pem) = generate().map_err(tls_error)?;
    write(&tls.ca, &ca_pem, 0o644)?;
    write(&tls.cert, &cert_pem, 0o644)?;
    write(&tls.key, &key_pem, 0o600)?;
    Ok(true)
}

/// Writes HAProxy's `crt` file (certificate then key, mode 0600) from `[tls]` cert and key.
///
/// # Errors
/// [`StackError::Io`].
pub fn write_haproxy_pem(tls: &TlsSection) -> Result<(), StackError> {
    let read = |p: &Path| {
        fs::read_to_string(p).map_err(|e| StackError::Io {
            path: p.to_owned(),
            source: e,
        })
    };
    let pem = format!("{}\n{}", read(&tls.cert)?.trim_end(), read(&tls.key)?);
    write(&tls.haproxy_pem(), &pem, 0o600)
}

/// Copies the certificate and key into `pg_dir/tls` owned by the `postgres` user (key 0600), where
/// the PostgreSQL started by the rig reads them (`ssl_cert_file`, `ssl_key_file`).
///
/// # Errors
/// [`StackError::Io`]; [`StackError::Tls`] when the `postgres` user is missing.
pub fn install_for_postgres(tls: &TlsSection, pg_dir: &Path) -> Result<(), StackError> {
    let user = nix::unistd::User::from_name("postgres")
        .ok()
        .flatten()
        .ok_or_else(|| tls_error("system user `postgres` does not exist"))?;
    let dir = pg_dir.join("tls");
    let copy = |from: &Path, name: &str, mode: u32| -> Result<(), StackError> {
        let contents = fs::read_to_string(from).map_err(|e| StackError::Io {
            path: from.to_owned(),
            source: e,
        })?;
        let to = dir.join(name);
        write(&to, &contents, mode)?;
        nix::unistd::chown(&to, Some(user.uid), Some(user.gid))
            .map_err(|e| tls_error(format!("chown {}: {e}", to.display())))
    };
    copy(&tls.cert, "server.crt", 0o644)?;
    copy(&tls.key, "server.key", 0o600)?;
    nix::unistd::chown(&dir, Some(user.uid), Some(user.gid))
        .map_err(|e| tls_error(format!("chown {}: {e}", dir.display())))
}

/// (CA certificate, server certificate, server key), all PEM.
pub fn generate() -> Result<(String, String, String), rcgen::Error> {
    let mut ca = CertificateParams::new(Vec::<String>::new())?;
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.distinguished_name
        .push(DnType::CommonName, "chgate local CA");
    ca.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    let ca_key = KeyPair::generate()?;
    let ca_cert = ca.self_signed(&ca_key)?;
    let mut server = CertificateParams::new(vec![
        "localhost".to_owned(),
        "127.0.0.1".to_owned(),
        "::1".to_owned(),
    ])?;
    server.distinguished_name.push(DnType::CommonName, "chgate");
    let key = KeyPair::generate()?;
    let cert = server.signed_by(&key, &ca_cert, &ca_key)?;
    Ok((ca_cert.pem(), cert.pem(), key.serialize_pem()))
}

fn write(path: &Path, contents: &str, mode: u32) -> Result<(), StackError> {
    let io = |e| StackError::Io {
        path: path.to_owned(),
        source: e,
    };
    if let Some(parent) = path.parent() {
        fs::create_dir_all(parent).map_err(io)?;
    }
    let mut f = fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(mode)
        .open(path)
        .map_err(io)?;
    std::io::Write::write_all(&mut f, contents.as_bytes()).map_err(io)?;
    fs::set_permissions(path, fs::Permissions::from_mode(mode)).map_err(io)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generates_all_three_once_and_refuses_a_partial_set() {
        let dir = tempfile::tempdir().expect("tmp");
        let tls = TlsSection {
            ca: dir.path().join("tls/ca.crt"),
            cert: dir.path().join("tls/server.crt"),
            key: dir.path().join("tls/server.key"),
            clickhouse_https_port: None,
            haproxy_gateway_port: None,
        };
        assert!(ensure(&tls).expect("generated"));
        let key = fs::read_to_string(&tls.key).expect("key");
        assert!(key.contains("PRIVATE KEY"));
        let mode = fs::metadata(&tls.key).expect("meta").permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        assert!(
            !ensure(&tls).expect("kept"),
            "existing files are used as they are"
        );
        write_haproxy_pem(&tls).expect("haproxy pem");
        let pem = fs::read_to_string(tls.haproxy_pem()).expect("pem");
        assert!(pem.contains("BEGIN CERTIFICATE") && pem.contains("PRIVATE KEY"));
        fs::remove_file(&tls.ca).expect("rm");
        let e = ensure(&tls).expect_err("partial");
        assert!(e.to_string().contains("ca.crt"), "{e}");
    }
}

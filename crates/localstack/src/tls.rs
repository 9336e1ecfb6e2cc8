//! `[tls]` files for the local rig: when none of the CA, certificate and key exist, `up`
//! generates a local CA and a server certificate for `127.0.0.1`, `::1` and `localhost` signed by
//! it (rcgen). Existing files are used as they are (bring your own); a partial set is an error.

use std::fs;
use std::path::{Path, PathBuf};

use chgate_topology::model::TlsSection;
use chgate_topology::Topology;
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
    let pem = haproxy_pem(&read(&tls.cert)?, &read(&tls.key)?);
    write(&tls.haproxy_pem(), &pem, 0o600)
}

/// HAProxy's `crt` file: the certificate (chain) followed by its key.
pub fn haproxy_pem(cert: &str, key: &str) -> String {
    format!("{}\n{}", cert.trim_end(), key)
}

/// Copies the certificate and key into `dir/tls` (`server.crt` 0644, `server.key` 0600) and
/// returns their paths: a service's own copy, which `up` then hands to the service's user, so no
/// two programs share one key file (PostgreSQL refuses a key it does not own; ClickHouse reads its
/// node's copy).
///
/// # Errors
/// [`StackError::Io`].
pub fn install_copy(tls: &TlsSection, dir: &Path) -> Result<(PathBuf, PathBuf), StackError> {
    let dir = dir.join("tls");
    let copy = |from: &Path, name: &str, mode: u32| -> Result<PathBuf, StackError> {
        let contents = fs::read_to_string(from).map_err(|e| StackError::Io {
            path: from.to_owned(),
            source: e,
        })?;
        let to = dir.join(name);
        write(&to, &contents, mode)?;
        Ok(to)
    };
    Ok((
        copy(&tls.cert, "server.crt", 0o644)?,
        copy(&tls.key, "server.key", 0o600)?,
    ))
}

/// The topology as the service in `dir` sees it: with `[tls]`, certificate and key are the
/// service's own copies under `dir/tls` (written now by [`install_copy`]); unchanged otherwise.
///
/// # Errors
/// [`StackError::Io`] when the files cannot be copied.
pub fn for_service(t: &Topology, dir: &Path) -> Result<Topology, StackError> {
    let mut view = t.clone();
    if let Some(tls) = &mut view.tls {
        let (cert, key) = install_copy(tls, dir)?;
        tls.cert = cert;
        tls.key = key;
    }
    Ok(view)
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
    crate::prepare::write_file(path, contents, mode)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

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

    #[test]
    fn each_service_reads_its_own_copy_of_the_pair() {
        let dir = tempfile::tempdir().expect("tmp");
        let t = Topology {
            tls: Some(TlsSection {
                ca: dir.path().join("tls/ca.crt"),
                cert: dir.path().join("tls/server.crt"),
                key: dir.path().join("tls/server.key"),
                clickhouse_https_port: None,
                haproxy_gateway_port: None,
            }),
            ..Topology::default()
        };
        let original = t.tls.clone().expect("tls");
        ensure(&original).expect("generated");
        let node = dir.path().join("ch-s1r1");
        let view = for_service(&t, &node).expect("copied");
        let tls = view.tls.expect("tls");
        assert_eq!(tls.cert, node.join("tls/server.crt"));
        assert_eq!(tls.key, node.join("tls/server.key"));
        assert_eq!(tls.ca, original.ca, "the CA stays the topology's");
        assert_eq!(
            fs::read_to_string(&tls.key).expect("copy"),
            fs::read_to_string(&original.key).expect("original")
        );
        let mode = fs::metadata(&tls.key).expect("meta").permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        // A link planted where the copy goes is replaced, not written through.
        let victim = dir.path().join("victim");
        fs::write(&victim, "keep").expect("write");
        fs::remove_file(&tls.key).expect("rm");
        std::os::unix::fs::symlink(&victim, &tls.key).expect("symlink");
        for_service(&t, &node).expect("copied again");
        assert_eq!(fs::read_to_string(&victim).expect("victim"), "keep");
        assert!(!fs::symlink_metadata(&tls.key).expect("meta").is_symlink());
        let plain = for_service(&Topology::default(), &node).expect("no tls");
        assert!(plain.tls.is_none());
    }
}

//! TLS helpers for live tests: [`TestCa`], a freshly generated CA with a server certificate for
//! `localhost`/`127.0.0.1`/`::1` signed by it, in files removed on drop. Tests use it to serve
//! TLS with a certificate their client trusts, and as "another CA" that no server of the rig
//! chains to, to check that a client trusting it refuses the connection (verification on, no
//! fallback to plain text).

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};

static DIRS: AtomicU32 = AtomicU32::new(0);

/// A generated CA (same name as the rig's, `chgate local CA`, so only the signature check tells
/// them apart) and a server certificate and key it signed, as PEM files `ca.crt`, `server.crt`,
/// `server.key` in a directory of their own under the system temp directory.
#[derive(Debug)]
pub struct TestCa {
    dir: PathBuf,
    ca_pem: String,
}

impl TestCa {
    /// Generates the CA and the server certificate and writes them. Panics when either fails
    /// (test setup).
    pub fn new() -> Self {
        let (ca, cert, key) = chgate_localstack::tls::generate().expect("generate a test CA");
        let dir = std::env::temp_dir().join(format!(
            "chgate-test-ca-{}-{}-{:04x}",
            std::process::id(),
            DIRS.fetch_add(1, Ordering::Relaxed),
            rand::random::<u16>()
        ));
        std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("mkdir {}: {e}", dir.display()));
        for (name, pem) in [("ca.crt", &ca), ("server.crt", &cert), ("server.key", &key)] {
            let path = dir.join(name);
            std::fs::write(&path, pem).unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
        }
        TestCa { dir, ca_pem: ca }
    }

    /// The CA certificate file.
    pub fn ca(&self) -> PathBuf {
        self.dir.join("ca.crt")
    }

    /// The CA certificate (PEM), e.g. for a client's root store.
    pub fn ca_pem(&self) -> &str {
        &self.ca_pem
    }

    /// The server certificate file (signed by [`TestCa::ca`]).
    pub fn cert(&self) -> PathBuf {
        self.dir.join("server.crt")
    }

    /// The server key file.
    pub fn key(&self) -> PathBuf {
        self.dir.join("server.key")
    }

    /// A path in the same directory that does not exist (`absent.crt`), for checks that a
    /// missing CA file is named.
    pub fn absent(&self) -> PathBuf {
        self.dir.join("absent.crt")
    }

    /// The directory holding the files.
    pub fn dir(&self) -> &Path {
        &self.dir
    }
}

impl Default for TestCa {
    fn default() -> Self {
        Self::new()
    }
}

impl Drop for TestCa {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn files_hold_one_certificate_each_and_go_with_the_value() {
        let ca = TestCa::new();
        for file in [ca.ca(), ca.cert()] {
            let pem = std::fs::read_to_string(&file).expect("read");
            assert_eq!(pem.matches("BEGIN CERTIFICATE").count(), 1, "{pem}");
        }
        assert_eq!(std::fs::read_to_string(ca.ca()).expect("ca"), ca.ca_pem());
        let key = std::fs::read_to_string(ca.key()).expect("key");
        assert!(key.contains("PRIVATE KEY"), "a key");
        assert!(!ca.absent().exists());
        assert_ne!(TestCa::new().dir(), ca.dir());
        let dir = ca.dir().to_owned();
        drop(ca);
        assert!(!dir.exists());
    }
}

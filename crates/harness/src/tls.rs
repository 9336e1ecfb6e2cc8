//! TLS helpers for live tests: [`UntrustedCa`], a CA certificate file that no server of the rig
//! chains to, for checks that a client trusting it refuses the connection (verification on, no
//! fallback to plain text).

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};

static FILES: AtomicU32 = AtomicU32::new(0);

/// A freshly generated CA's certificate (PEM) in a file of its own under the system temp
/// directory, removed on drop. Its name is `chgate local CA` like the rig's own CA, so only the
/// signature check tells them apart.
#[derive(Debug)]
pub struct UntrustedCa {
    path: PathBuf,
}

impl UntrustedCa {
    /// Generates the CA and writes its certificate. Panics when either fails (test setup).
    pub fn new() -> Self {
        let (ca, _, _) = chgate_localstack::tls::generate().expect("generate another CA");
        let path = std::env::temp_dir().join(format!(
            "chgate-untrusted-ca-{}-{}-{:04x}.crt",
            std::process::id(),
            FILES.fetch_add(1, Ordering::Relaxed),
            rand::random::<u16>()
        ));
        std::fs::write(&path, ca).unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
        UntrustedCa { path }
    }

    /// The certificate file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// A path next to the certificate that does not exist (`….absent.crt`), for checks that a
    /// missing CA file is named.
    pub fn absent_path(&self) -> PathBuf {
        self.path.with_extension("absent.crt")
    }
}

impl Default for UntrustedCa {
    fn default() -> Self {
        Self::new()
    }
}

impl Drop for UntrustedCa {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_file_holds_one_ca_certificate_and_goes_with_the_value() {
        let ca = UntrustedCa::new();
        let pem = std::fs::read_to_string(ca.path()).expect("read");
        assert!(pem.starts_with("-----BEGIN CERTIFICATE-----"), "{pem}");
        assert_eq!(pem.matches("BEGIN CERTIFICATE").count(), 1);
        assert!(!ca.absent_path().exists());
        assert_ne!(UntrustedCa::new().path(), ca.path());
        let path = ca.path().to_owned();
        drop(ca);
        assert!(!path.exists());
    }
}

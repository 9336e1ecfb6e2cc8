//! Installs the Debian packages the rig needs when their programs are missing.

use std::path::Path;
use std::process::Command;

use crate::plan::bin;
use crate::StackError;

/// A program the rig runs and the Debian package that provides it.
pub const REQUIRED: &[(&str, &str)] = &[
    (bin::CLICKHOUSE_SERVER, "clickhouse-server"),
    (bin::CLICKHOUSE_CLIENT, "clickhouse-client"),
    (bin::ZOOKEEPER_JAR, "zookeeper"),
    (bin::JAVA, "default-jre-headless"),
    ("/usr/lib/postgresql/15/bin/postgres", "postgresql-15"),
    (bin::HAPROXY, "haproxy"),
];

/// Packages whose programs are not on this machine (pure given the `exists` probe).
pub fn missing_packages(exists: impl Fn(&str) -> bool) -> Vec<&'static str> {
    let mut pkgs: Vec<&str> = REQUIRED
        .iter()
        .filter(|(p, _)| !exists(p))
        .map(|(_, pkg)| *pkg)
        .collect();
    pkgs.dedup();
    pkgs
}

/// Installs whatever is missing with `apt-get`; a no-op when everything is there.
/// Service auto-start is suppressed (`policy-rc.d`), since the rig runs its own processes.
///
/// # Errors
/// [`StackError::NotRoot`] when packages are missing and we cannot install them;
/// [`StackError::Install`] when apt-get fails.
pub fn ensure_packages(progress: &dyn Fn(&str)) -> Result<Vec<&'static str>, StackError> {
    let missing = missing_packages(|p| Path::new(p).exists());
    if missing.is_empty() {
        return Ok(missing);
    }
    if !nix::unistd::geteuid().is_root() {
        return Err(StackError::NotRoot {
            packages: missing.join(" "),
        });
    }
    progress(&format!(
        "installing Debian packages: {}",
        missing.join(" ")
    ));
    let policy = Path::new("/usr/sbin/policy-rc.d");
    let wrote_policy = !policy.exists() && std::fs::write(policy, "#!/bin/sh\nexit 101\n").is_ok();
    if wrote_policy {
        use std::os::unix::fs::PermissionsExt;
        let _ = std::fs::set_permissions(policy, std::fs::Permissions::from_mode(0o755));
    }
    let result = apt(&["update", "-qq"]).and_then(|()| {
        let mut args = vec!["install", "-y", "-qq", "--no-install-recommends"];
        args.extend(missing.iter().copied());
        apt(&args)
    });
    if wrote_policy {
        let _ = std::fs::remove_file(policy);
    }
    result.map(|()| missing)
}

fn apt(args: &[&str]) -> Result<(), StackError> {
    let out = Command::new("apt-get")
        .args(args)
        .env("DEBIAN_FRONTEND", "noninteractive")
        .output()
        .map_err(|e| StackError::Install {
            reason: format!("cannot run apt-get: {e}"),
        })?;
    if out.status.success() {
        return Ok(());
    }
    let stderr = String::from_utf8_lossy(&out.stderr);
    let tail: Vec<&str> = stderr.lines().rev().take(10).collect();
    Err(StackError::Install {
        reason: format!(
            "apt-get {} failed: {}",
            args.join(" "),
            tail.into_iter().rev().collect::<Vec<_>>().join("\n")
        ),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_packages_lists_only_absent_programs() {
        assert!(missing_packages(|_| true).is_empty());
        let all = missing_packages(|_| false);
        assert!(
            all.contains(&"clickhouse-server")
                && all.contains(&"zookeeper")
                && all.contains(&"haproxy")
        );
        let some = missing_packages(|p| p != bin::HAPROXY);
        assert_eq!(some, ["haproxy"]);
    }
}

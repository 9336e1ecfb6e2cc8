//! The podman commands `chgate deploy` runs, and the one-time host setup podman 4.3.1 needs as
//! root: packages, `/etc/containers/containers.conf` (`default_ulimits = []`, runtime `runc`,
//! netavark) and a pods network with DNS, so pods find each other by name.

use std::io::Write as _;
use std::path::Path;
use std::process::{Command, Stdio};

use serde_json::Value;

use crate::DeployError;

/// containers.conf podman reads as root.
pub const CONTAINERS_CONF: &str = "/etc/containers/containers.conf";

/// Debian packages podman deploys need (program checked, package installed when missing).
pub const PACKAGES: &[(&str, &str)] = &[
    ("/usr/bin/podman", "podman"),
    ("/usr/sbin/runc", "runc"),
    ("/usr/lib/podman/netavark", "netavark"),
    ("/usr/lib/podman/aardvark-dns", "aardvark-dns"),
    ("/usr/sbin/iptables", "iptables"),
    ("/usr/sbin/debootstrap", "debootstrap"),
];

/// Runs `podman args...`, optionally feeding `stdin`; returns stdout.
///
/// # Errors
/// [`DeployError::Podman`] with podman's stderr when it cannot run or exits non-zero.
pub fn podman(args: &[&str], stdin: Option<&[u8]>) -> Result<String, DeployError> {
    let fail = |message: String| DeployError::Podman {
        command: args.join(" "),
        message,
    };
    let mut child = Command::new("podman")
        .args(args)
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| {
            fail(format!(
                "cannot run podman: {e} (is it installed? `chgate deploy setup`)"
            ))
        })?;
    if let (Some(input), Some(mut pipe)) = (stdin, child.stdin.take()) {
        pipe.write_all(input).map_err(|e| fail(e.to_string()))?;
    }
    let out = child.wait_with_output().map_err(|e| fail(e.to_string()))?;
    if out.status.success() {
        return Ok(String::from_utf8_lossy(&out.stdout).into_owned());
    }
    let stderr = String::from_utf8_lossy(&out.stderr);
    let msg: Vec<&str> = stderr
        .lines()
        .filter(|l| !l.contains("failed to connect to syslog") && !l.contains("systemd connection"))
        .collect();
    Err(fail(msg.join("\n").trim().to_owned()))
}

/// Sets the keys podman 4.3.1 needs as root in containers.conf text; `None` when all are set.
///
/// # Errors
/// A message when the existing text is not TOML.
pub fn patch_containers_conf(text: &str) -> Result<Option<String>, String> {
    let mut doc: toml::Table =
        toml::from_str(text).map_err(|e| format!("{CONTAINERS_CONF}: {e}"))?;
    let mut changed = false;
    let mut set = |section: &str, key: &str, value: toml::Value| {
        let table = doc
            .entry(section)
            .or_insert_with(|| toml::Value::Table(toml::Table::new()));
        if let toml::Value::Table(t) = table {
            if t.get(key) != Some(&value) {
                t.insert(key.into(), value);
                changed = true;
            }
        }
    };
    // Without these, podman as root in this kind of VM fails to start containers (ulimits it
    // may not raise; crun missing).
    set(
        "containers",
        "default_ulimits",
        toml::Value::Array(Vec::new()),
    );
    set("engine", "runtime", toml::Value::from("runc"));
    set("network", "network_backend", toml::Value::from("netavark"));
    if !changed {
        return Ok(None);
    }
    let body = toml::to_string(&doc).map_err(|e| e.to_string())?;
    Ok(Some(format!(
        "# podman settings for chgate deploy (set by `chgate deploy setup`)\n{body}"
    )))
}

/// Installs missing packages, patches containers.conf, creates the pods network. Idempotent.
/// Returns what it changed.
///
/// # Errors
/// [`DeployError::Setup`] naming the failing step.
pub fn setup(network: &str) -> Result<Vec<String>, DeployError> {
    let mut done = Vec::new();
    let missing: Vec<&str> = PACKAGES
        .iter()
        .filter(|(p, _)| !Path::new(p).exists())
        .map(|(_, pkg)| *pkg)
        .collect();
    if !missing.is_empty() {
        apt_install(&missing)?;
        done.push(format!("installed {}", missing.join(" ")));
    }
    let path = Path::new(CONTAINERS_CONF);
    let text = std::fs::read_to_string(path).unwrap_or_default();
    if let Some(new) = patch_containers_conf(&text).map_err(DeployError::Setup)? {
        std::fs::create_dir_all("/etc/containers").map_err(|e| DeployError::Io {
            path: "/etc/containers".into(),
            source: e,
        })?;
        std::fs::write(path, new).map_err(|e| DeployError::Io {
            path: path.to_owned(),
            source: e,
        })?;
        done.push(format!("updated {CONTAINERS_CONF}"));
    }
    if podman(&["network", "exists", network], None).is_err() {
        podman(&["network", "create", network], None)?;
        done.push(format!("created podman network {network} (DNS on)"));
    }
    Ok(done)
}

fn apt_install(pkgs: &[&str]) -> Result<(), DeployError> {
    if !nix_is_root() {
        return Err(DeployError::Setup(format!(
            "missing Debian packages {}; run as root",
            pkgs.join(" ")
        )));
    }
    let run = |args: &[&str]| -> Result<(), DeployError> {
        let out = Command::new("apt-get")
            .args(args)
            .env("DEBIAN_FRONTEND", "noninteractive")
            .output()
            .map_err(|e| DeployError::Setup(format!("cannot run apt-get: {e}")))?;
        if out.status.success() {
            return Ok(());
        }
        Err(DeployError::Setup(format!(
            "apt-get {} failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        )))
    };
    run(&["update", "-qq"])?;
    let mut args = vec!["install", "-y", "-qq", "--no-install-recommends"];
    args.extend_from_slice(pkgs);
    run(&args)
}

fn nix_is_root() -> bool {
    std::fs::metadata("/proc/self")
        .map(|m| std::os::unix::fs::MetadataExt::uid(&m) == 0)
        .unwrap_or(false)
}

/// One pod as podman reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PodState {
    /// Pod name.
    pub name: String,
    /// `Running`, `Degraded`, `Exited`, ...
    pub status: String,
    /// (container name, state) of the non-infra containers.
    pub containers: Vec<(String, String)>,
}

/// Pods carrying every one of `labels` (`key=value`).
///
/// # Errors
/// [`DeployError::Podman`].
pub fn pods(labels: &[String]) -> Result<Vec<PodState>, DeployError> {
    let mut args = vec!["pod", "ps", "--format", "json"];
    let filters: Vec<String> = labels.iter().map(|l| format!("label={l}")).collect();
    for f in &filters {
        args.extend(["--filter", f.as_str()]);
    }
    let out = podman(&args, None)?;
    Ok(parse_pods(&out))
}

/// Parses `podman pod ps --format json`.
pub fn parse_pods(json: &str) -> Vec<PodState> {
    let v: Value = serde_json::from_str(json).unwrap_or(Value::Null);
    let mut out: Vec<PodState> = v
        .as_array()
        .into_iter()
        .flatten()
        .map(|p| PodState {
            name: p["Name"].as_str().unwrap_or_default().to_owned(),
            status: p["Status"].as_str().unwrap_or_default().to_owned(),
            containers: p["Containers"]
                .as_array()
                .into_iter()
                .flatten()
                .filter(|c| !c["Names"].as_str().unwrap_or_default().ends_with("-infra"))
                .map(|c| {
                    (
                        c["Names"].as_str().unwrap_or_default().to_owned(),
                        c["Status"].as_str().unwrap_or_default().to_owned(),
                    )
                })
                .collect(),
        })
        .collect();
    out.sort_by(|a, b| a.name.cmp(&b.name));
    out
}

/// The last `lines` log lines of a container, for error messages.
pub fn logs_tail(container: &str, lines: u32) -> String {
    let n = lines.to_string();
    let out = Command::new("podman")
        .args(["logs", "--tail", &n, container])
        .output();
    match out {
        Ok(o) => {
            let mut s = String::from_utf8_lossy(&o.stdout).into_owned();
            s.push_str(&String::from_utf8_lossy(&o.stderr));
            s.lines()
                .filter(|l| !l.contains("failed to connect to syslog"))
                .collect::<Vec<_>>()
                .join("\n")
        }
        Err(e) => format!("(no logs: {e})"),
    }
}

/// Whether an image is present locally.
pub fn image_exists(image: &str) -> bool {
    podman(&["image", "exists", image], None).is_ok()
}

/// Replaces the podman secret `name` with `payload` (through stdin, never argv or a file).
///
/// # Errors
/// [`DeployError::Podman`].
pub fn replace_secret(name: &str, payload: &str) -> Result<(), DeployError> {
    if podman(&["secret", "inspect", name], None).is_ok() {
        podman(&["secret", "rm", name], None)?;
    }
    podman(&["secret", "create", name, "-"], Some(payload.as_bytes())).map(|_| ())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn containers_conf_is_patched_once_and_keeps_other_keys() {
        let first = patch_containers_conf("[engine]\nevents_logger = \"file\"\n")
            .expect("toml")
            .expect("changed");
        assert!(first.contains("default_ulimits = []"), "{first}");
        assert!(first.contains("runtime = \"runc\"") && first.contains("events_logger"));
        assert_eq!(patch_containers_conf(&first).expect("toml"), None);
        assert!(patch_containers_conf("not toml [").is_err());
    }

    #[test]
    fn pod_list_skips_infra_containers() {
        let json = r#"[{"Name":"keeper-1","Status":"Running","Containers":[
            {"Names":"abc-infra","Status":"running"},{"Names":"keeper-1-keeper","Status":"running"}]}]"#;
        let p = parse_pods(json);
        assert_eq!(p.len(), 1);
        assert_eq!(
            p[0].containers,
            [("keeper-1-keeper".to_owned(), "running".to_owned())]
        );
        assert!(parse_pods("garbage").is_empty());
    }
}

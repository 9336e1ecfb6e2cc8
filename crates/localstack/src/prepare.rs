//! Writes everything a process needs before it starts: directories, generated secrets, rendered
//! configs (validated where the program can check them), PostgreSQL's data directory.

use std::fs;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::Command;

use chgate_topology::render::{clickhouse, haproxy, keeper, Addressing};
use chgate_topology::{Secret, SecretRef, Topology};
use rand::distributions::{Alphanumeric, DistString};

use crate::account::Account;
use crate::plan::{bin, Role, Service};
use crate::StackError;

fn io(what: &Path, e: std::io::Error) -> StackError {
    StackError::Io {
        path: what.to_owned(),
        source: e,
    }
}

/// Writes `contents` with mode 0600 (configs can name secrets' locations; keep them private).
fn write_private(path: &Path, contents: &str) -> Result<(), StackError> {
    write_file(path, contents, 0o600)
}

/// Writes a fresh file with `mode`: the old entry is removed first and the new one created
/// exclusively, so a symbolic link left in a service's directory (which its user owns) is
/// replaced, never followed by root.
///
/// # Errors
/// [`StackError::Io`] naming the path.
pub fn write_file(path: &Path, contents: &str, mode: u32) -> Result<(), StackError> {
    match fs::remove_file(path) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(io(path, e)),
    }
    let mut opts = fs::OpenOptions::new();
    opts.write(true).create_new(true).mode(mode);
    let mut f = opts.open(path).map_err(|e| io(path, e))?;
    std::io::Write::write_all(&mut f, contents.as_bytes()).map_err(|e| io(path, e))?;
    fs::set_permissions(path, fs::Permissions::from_mode(mode)).map_err(|e| io(path, e))
}

/// Resolves a secret; a `file` reference whose file is missing gets a fresh random value (0600),
/// so a new rig needs no manual step and no secret is ever written into a config.
///
/// # Errors
/// [`StackError::Topology`] for an unset env var; [`StackError::Io`] when the file can't be written.
pub fn ensure_secret(r: &SecretRef, state_dir: &Path) -> Result<Secret, StackError> {
    if let Some(path) = r.file_path(state_dir) {
        if !path.exists() {
            if let Some(parent) = path.parent() {
                fs::create_dir_all(parent).map_err(|e| io(parent, e))?;
                fs::set_permissions(parent, fs::Permissions::from_mode(0o700))
                    .map_err(|e| io(parent, e))?;
            }
            let value = Alphanumeric.sample_string(&mut rand::thread_rng(), 32);
            write_private(&path, &format!("{value}\n"))?;
        }
    }
    Ok(r.resolve(state_dir)?)
}

/// Creates the state directory layout.
///
/// # Errors
/// [`StackError::Io`].
pub fn dirs(state_dir: &Path, services: &[Service]) -> Result<(), StackError> {
    for d in ["run", "log"] {
        let p = state_dir.join(d);
        fs::create_dir_all(&p).map_err(|e| io(&p, e))?;
    }
    for s in services {
        fs::create_dir_all(&s.dir).map_err(|e| io(&s.dir, e))?;
        fs::set_permissions(&s.dir, fs::Permissions::from_mode(0o755))
            .map_err(|e| io(&s.dir, e))?;
    }
    Ok(())
}

/// Renders and writes the config files of one service.
///
/// # Errors
/// [`StackError::Io`], or [`StackError::Config`] when `haproxy -c` refuses the rendered file.
pub fn configs(t: &Topology, svc: &Service, ch_password_hash: &str) -> Result<(), StackError> {
    match svc.role {
        Role::Keeper => {
            let node = t.keeper_nodes().into_iter().find(|k| k.name == svc.name);
            let Some(node) = node else { return Ok(()) };
            let data = svc.dir.join("data");
            fs::create_dir_all(&data).map_err(|e| io(&data, e))?;
            write_file(&data.join("myid"), &format!("{}\n", node.id), 0o644)?;
            write_private(&svc.dir.join("zoo.cfg"), &keeper::zoo_cfg(t, &node, &data))
        }
        Role::ClickHouse => {
            let node = t
                .clickhouse_nodes()
                .into_iter()
                .find(|n| n.name == svc.name);
            let Some(node) = node else { return Ok(()) };
            // Each node reads its own copy of the `[tls]` pair, owned by its user.
            let t = &crate::tls::for_service(t, &svc.dir)?;
            let root = clickhouse::ConfigRoot::Yandex;
            let cx = clickhouse::NodeContext {
                dir: &svc.dir,
                addressing: Addressing::Local,
                root,
            };
            for sub in ["data", "tmp", "log", "user_files", "format_schemas"] {
                let p = svc.dir.join(sub);
                fs::create_dir_all(&p).map_err(|e| io(&p, e))?;
            }
            write_private(
                &svc.dir.join("config.xml"),
                &clickhouse::config_xml(t, &node, cx),
            )?;
            let users = clickhouse::users_xml(t, ch_password_hash, Addressing::Local, root);
            write_private(&svc.dir.join("users.xml"), &users)
        }
        Role::Haproxy => {
            let path = svc.dir.join("haproxy.cfg");
            write_private(&path, &haproxy::haproxy_cfg(t, Addressing::Local))?;
            check_haproxy(&path)
        }
        Role::Gateway => {
            // The gateway's own settings; cluster and credentials come from the topology.
            let port = svc.ports.first().map_or(0, |p| p.1);
            let text = format!(
                "# rendered by chgate from the topology; do not edit\nlisten = \"{}:{port}\"\n",
                t.network.listen
            );
            write_private(&svc.dir.join("gateway.toml"), &text)
        }
        Role::Postgres => Ok(()),
    }
}

/// Runs `haproxy -c -f path`.
///
/// # Errors
/// [`StackError::Config`] with HAProxy's message.
pub fn check_haproxy(path: &Path) -> Result<(), StackError> {
    let out = Command::new(bin::HAPROXY)
        .args(["-c", "-q", "-f"])
        .arg(path)
        .output()
        .map_err(|e| StackError::Config {
            file: path.to_owned(),
            reason: e.to_string(),
        })?;
    if out.status.success() {
        return Ok(());
    }
    Err(StackError::Config {
        file: path.to_owned(),
        reason: String::from_utf8_lossy(&out.stderr).trim().to_owned(),
    })
}

/// Creates PostgreSQL's data directory with `initdb` (once), run as `account` (the `postgres`
/// user when we are root; the caller when `None`): superuser role named after `postgres.user`
/// with SCRAM password auth, loopback only.
///
/// # Errors
/// [`StackError::Start`] naming `postgres` with initdb's output.
pub fn init_postgres(
    t: &Topology,
    svc: &Service,
    password: &Secret,
    account: Option<&Account>,
) -> Result<(), StackError> {
    let data = svc.dir.join("data");
    if data.join("PG_VERSION").exists() {
        return Ok(());
    }
    let fail = |reason: String| StackError::Start {
        service: svc.name.clone(),
        reason,
    };
    let give = |p: &Path| match account {
        Some(a) => crate::account::chown_one(p, a.uid, a.gid).map(drop),
        None => Ok(()),
    };
    for sub in ["data", "socket"] {
        let p = svc.dir.join(sub);
        fs::create_dir_all(&p).map_err(|e| io(&p, e))?;
        give(&p)?;
    }
    fs::set_permissions(&data, fs::Permissions::from_mode(0o700)).map_err(|e| io(&data, e))?;
    let pwfile = svc.dir.join("socket").join(".initdb-pw");
    write_private(&pwfile, password.expose())?;
    give(&pwfile)?;
    let mut initdb = Command::new(format!("{}/initdb", bin::PG_BIN));
    initdb
        .arg("-D")
        .arg(&data)
        .args([
            "--auth-local=scram-sha-256",
            "--auth-host=scram-sha-256",
            "-E",
            "UTF8",
            "--locale=C.UTF-8",
        ])
        .arg(format!("--username={}", t.postgres.user))
        .arg(format!("--pwfile={}", pwfile.display()))
        .current_dir(&svc.dir);
    if let Some(a) = account {
        initdb.uid(a.uid.as_raw()).gid(a.gid.as_raw());
    }
    let out = initdb.output();
    let _ = fs::remove_file(&pwfile);
    let out = out.map_err(|e| fail(format!("cannot run initdb: {e}")))?;
    if !out.status.success() {
        return Err(fail(format!(
            "initdb failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        )));
    }
    Ok(())
}

/// Removes PostgreSQL's lock files (`data/postmaster.pid`, `socket/.s.PGSQL.<port>.lock`) whose
/// postmaster is gone. PostgreSQL clears stale ones itself, except when the dead postmaster is
/// still an unreaped zombie (`kill(pid, 0)` succeeds on zombies): after a SIGKILL it then refuses
/// to start with "lock file ... already exists". A lock naming a live process is left alone.
///
/// # Errors
/// [`StackError::Io`] naming a lock file that could not be removed.
pub fn clear_stale_postgres_locks(
    svc: &Service,
    port: u16,
) -> Result<Vec<std::path::PathBuf>, StackError> {
    let locks = [
        svc.dir.join("data").join("postmaster.pid"),
        svc.dir.join("socket").join(format!(".s.PGSQL.{port}.lock")),
    ];
    let mut removed = Vec::new();
    for lock in locks {
        let Ok(text) = fs::read_to_string(&lock) else {
            continue;
        };
        let pid = text
            .lines()
            .next()
            .and_then(|l| l.trim().parse::<i32>().ok());
        if pid.is_some_and(crate::process::alive) {
            continue;
        }
        fs::remove_file(&lock).map_err(|e| io(&lock, e))?;
        removed.push(lock);
    }
    Ok(removed)
}

#[cfg(test)]
mod lock_tests {
    use super::*;
    use crate::plan::StopSignal;

    fn pg_service(dir: &Path) -> Service {
        Service {
            role: Role::Postgres,
            name: "postgres".into(),
            argv: vec![],
            ports: vec![],
            dir: dir.to_path_buf(),
            run_as: None,
            stop_signal: StopSignal::Int,
        }
    }

    #[test]
    fn stale_postgres_locks_are_removed_and_live_ones_kept() {
        let tmp = tempfile::tempdir().expect("tmp");
        let svc = pg_service(tmp.path());
        for d in ["data", "socket"] {
            fs::create_dir_all(tmp.path().join(d)).expect("mkdir");
        }
        let pid_file = tmp.path().join("data/postmaster.pid");
        let sock_lock = tmp.path().join("socket/.s.PGSQL.5999.lock");
        // A pid that cannot exist (above pid_max) stands for a dead postmaster.
        fs::write(&pid_file, "99999999\n/data\n").expect("write");
        fs::write(&sock_lock, format!("{}\n", std::process::id())).expect("write");
        let removed = clear_stale_postgres_locks(&svc, 5999).expect("clears");
        assert_eq!(removed, vec![pid_file.clone()]);
        assert!(!pid_file.exists());
        assert!(sock_lock.exists(), "a lock of a live process is kept");
    }
}

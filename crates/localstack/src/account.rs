//! Who each rig process runs as, and making its files belong to that account.
//!
//! When `chgate local` runs as root, no process of the rig keeps root: each runs as the system
//! user its Debian package's own service runs as (`zookeeper`, `clickhouse`, `postgres`,
//! `haproxy`; the pods run each image's equivalent user), and the gateways as the dedicated system
//! user `chgate` (created with `useradd --system` when missing, like the gateway image's user).
//! One user per program, not one shared user for everything: a compromised ClickHouse cannot read
//! PostgreSQL's data or the gateways' secrets, and every data directory looks as it would under
//! the packages' own units. When the caller is not root, every process runs as the caller, as
//! before.
//!
//! What root writes for a service (its directory: configs written 0600, data, logs; its copy of
//! the `[tls]` key; the gateways' password files) is handed to that service's account before the
//! process starts, on every start: a state directory left by an older root-run rig, a data
//! directory wiped by a recovery drill, or parts copied in by a restore all end up owned by the
//! service again. The walk never follows symbolic links (a service cannot make root hand it a
//! file outside its directory), and pid files stay the supervisor's, so a service cannot redirect
//! the signals `down` sends.

use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use nix::unistd::{Gid, Uid, User};

use crate::plan::{Role, Service};
use crate::StackError;

/// The dedicated system user of the gateways (no Debian package provides one).
pub const GATEWAY_USER: &str = "chgate";

/// The system user a role runs as when the rig is started by root.
pub fn user_of(role: Role) -> &'static str {
    match role {
        Role::Keeper => "zookeeper",
        Role::ClickHouse => "clickhouse",
        Role::Postgres => "postgres",
        Role::Gateway => GATEWAY_USER,
        Role::Haproxy => "haproxy",
    }
}

/// A resolved system account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Account {
    /// User name.
    pub name: String,
    /// User id.
    pub uid: Uid,
    /// Primary group id.
    pub gid: Gid,
    /// `HOME` for the process: the user's home when it exists, else the service's directory.
    pub home: PathBuf,
}

/// Whether this process runs as root (and so starts the rig's processes as their own users).
pub fn caller_is_root() -> bool {
    nix::unistd::geteuid().is_root()
}

fn lookup(name: &str) -> Option<User> {
    User::from_name(name).ok().flatten()
}

/// The account `svc` runs as: its `run_as` user when we are root, `None` (the caller) otherwise.
///
/// # Errors
/// [`StackError::Start`] naming the service when its user does not exist.
pub fn of(svc: &Service) -> Result<Option<Account>, StackError> {
    let Some(name) = svc.run_as.as_deref().filter(|_| caller_is_root()) else {
        return Ok(None);
    };
    let u = lookup(name).ok_or_else(|| StackError::Start {
        service: svc.name.clone(),
        reason: format!(
            "system user `{name}` does not exist (`chgate local up` creates it; or: \
             useradd --system --user-group --no-create-home --home-dir /nonexistent \
             --shell /usr/sbin/nologin {name})"
        ),
    })?;
    let home = if u.dir.is_dir() {
        u.dir
    } else {
        svc.dir.clone()
    };
    Ok(Some(Account {
        name: u.name,
        uid: u.uid,
        gid: u.gid,
        home,
    }))
}

/// Creates the system users the services run as that do not exist yet (the Debian packages
/// create theirs; `chgate` is ours). A no-op unless we are root. Returns the users created.
///
/// # Errors
/// [`StackError::Install`] when `useradd` fails.
pub fn ensure_users(services: &[Service]) -> Result<Vec<String>, StackError> {
    if !caller_is_root() {
        return Ok(Vec::new());
    }
    let mut names: Vec<&str> = services
        .iter()
        .filter_map(|s| s.run_as.as_deref())
        .collect();
    names.sort_unstable();
    names.dedup();
    let mut created = Vec::new();
    for name in names.into_iter().filter(|n| lookup(n).is_none()) {
        let out = Command::new("useradd")
            .args([
                "--system",
                "--user-group",
                "--no-create-home",
                "--home-dir",
                "/nonexistent",
                "--shell",
                "/usr/sbin/nologin",
                name,
            ])
            .output()
            .map_err(|e| StackError::Install {
                reason: format!("cannot run useradd for system user `{name}`: {e}"),
            })?;
        // Another `up` (of another rig) may have created it meanwhile: that is success too.
        if !out.status.success() && lookup(name).is_none() {
            return Err(StackError::Install {
                reason: format!(
                    "useradd {name} failed: {}",
                    String::from_utf8_lossy(&out.stderr).trim()
                ),
            });
        }
        created.push(name.to_owned());
    }
    Ok(created)
}

fn chown_err(path: &Path, e: impl std::fmt::Display) -> StackError {
    StackError::Io {
        path: path.to_owned(),
        source: std::io::Error::other(format!("chown: {e}")),
    }
}

/// Gives `path` (not following a symbolic link) to `uid:gid` when it belongs to someone else.
/// Returns whether it changed.
///
/// # Errors
/// [`StackError::Io`] naming the path.
pub fn chown_one(path: &Path, uid: Uid, gid: Gid) -> Result<bool, StackError> {
    let meta = fs::symlink_metadata(path).map_err(|e| chown_err(path, e))?;
    if meta.uid() == uid.as_raw() && meta.gid() == gid.as_raw() {
        return Ok(false);
    }
    std::os::unix::fs::lchown(path, Some(uid.as_raw()), Some(gid.as_raw()))
        .map_err(|e| chown_err(path, e))?;
    Ok(true)
}

/// Gives `root` and everything under it to `uid:gid`, never following symbolic links (a link is
/// re-owned itself; its target is left alone). Entries already owned right are only looked at,
/// so running it on every start costs a directory walk. Returns how many entries changed.
///
/// # Errors
/// [`StackError::Io`] naming the first path that could not be read or re-owned.
pub fn chown_tree(root: &Path, uid: Uid, gid: Gid) -> Result<usize, StackError> {
    let mut changed = 0;
    let mut stack = vec![root.to_path_buf()];
    while let Some(p) = stack.pop() {
        let meta = match fs::symlink_metadata(&p) {
            Ok(m) => m,
            // Gone meanwhile (or never there): nothing to hand over.
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(chown_err(&p, e)),
        };
        if meta.uid() != uid.as_raw() || meta.gid() != gid.as_raw() {
            std::os::unix::fs::lchown(&p, Some(uid.as_raw()), Some(gid.as_raw()))
                .map_err(|e| chown_err(&p, e))?;
            changed += 1;
        }
        if meta.is_dir() {
            for entry in fs::read_dir(&p).map_err(|e| chown_err(&p, e))? {
                stack.push(entry.map_err(|e| chown_err(&p, e))?.path());
            }
        }
    }
    Ok(changed)
}

/// Whether `account` can reach `path` with `test_flag` (`-x` search/execute, `-r` read), checked
/// by running `test` as that user: the kernel's own answer, every directory above included.
pub fn can_access(account: &Account, path: &Path, test_flag: &str) -> bool {
    Command::new("test")
        .arg(test_flag)
        .arg(path)
        .uid(account.uid.as_raw())
        .gid(account.gid.as_raw())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// Fails with a message naming the path and the user when `account` cannot reach `path`.
///
/// # Errors
/// [`StackError::Start`] naming the service.
pub fn require_access(
    svc: &Service,
    account: &Account,
    path: &Path,
    test_flag: &str,
    what: &str,
) -> Result<(), StackError> {
    if can_access(account, path, test_flag) {
        return Ok(());
    }
    let verb = if test_flag == "-r" { "read" } else { "reach" };
    Err(StackError::Start {
        service: svc.name.clone(),
        reason: format!(
            "it runs as system user `{}`, which cannot {verb} {what} {}: every directory above it \
             must be searchable by that user (chmod o+x), or move it (e.g. under /tmp or /var/tmp)",
            account.name,
            path.display()
        ),
    })
}

/// The uid of system user `name`, when it exists.
pub fn uid_of(name: &str) -> Option<u32> {
    lookup(name).map(|u| u.uid.as_raw())
}

/// The user a live process runs as: the name of its effective uid (the number when unnamed),
/// from `/proc/PID/status`.
pub fn process_user(pid: i32) -> Option<String> {
    let uid = process_uids(pid)?[1];
    Some(
        User::from_uid(Uid::from_raw(uid))
            .ok()
            .flatten()
            .map_or_else(|| uid.to_string(), |u| u.name),
    )
}

/// Real, effective, saved and filesystem uid of a live process (`Uid:` of `/proc/PID/status`).
pub fn process_uids(pid: i32) -> Option<[u32; 4]> {
    let status = fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find_map(|l| l.strip_prefix("Uid:"))?;
    let ids: Vec<u32> = line
        .split_whitespace()
        .filter_map(|v| v.parse().ok())
        .collect();
    ids.try_into().ok()
}

/// Secrets directory mode once handed over (from the 0700 `up` creates it with): owner root,
/// group of the reader, search only for that group (the files are named by the topology; listing
/// is not needed).
pub const SECRETS_DIR_MODE: u32 = 0o710;

/// Lets `account` read the secret files `files` that live inside `state_dir` (each becomes its,
/// mode 0600; a directory others cannot search becomes `root:<its group>` with group search
/// only, 0700 → 0710). A file outside the state directory (or reached through `..`) is the
/// operator's: it is only checked to be readable.
///
/// # Errors
/// [`StackError::Io`] for a failed chown/chmod; [`StackError::Start`] for an unreadable file
/// outside the state directory.
pub fn hand_over_secrets(
    svc: &Service,
    account: &Account,
    state_dir: &Path,
    files: &[PathBuf],
) -> Result<(), StackError> {
    for f in files {
        let inside = f.starts_with(state_dir)
            && !f.components().any(|c| c == std::path::Component::ParentDir);
        if !inside {
            require_access(svc, account, f, "-r", "the secret file")?;
            continue;
        }
        if !f.exists() {
            continue;
        }
        chown_one(f, account.uid, account.gid)?;
        fs::set_permissions(f, fs::Permissions::from_mode(0o600)).map_err(|e| StackError::Io {
            path: f.clone(),
            source: e,
        })?;
        let Some(dir) = f.parent().filter(|d| *d != state_dir) else {
            continue;
        };
        let mode = fs::metadata(dir)
            .map_err(|e| chown_err(dir, e))?
            .permissions()
            .mode();
        if mode & 0o001 != 0 {
            continue; // others may search it already (a directory shared with other files)
        }
        chown_one(dir, Uid::from_raw(0), account.gid)?;
        let mode = (mode & 0o7707) | 0o010;
        fs::set_permissions(dir, fs::Permissions::from_mode(mode)).map_err(|e| StackError::Io {
            path: dir.to_owned(),
            source: e,
        })?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_role_has_its_own_system_user() {
        let roles = [
            Role::Keeper,
            Role::ClickHouse,
            Role::Postgres,
            Role::Gateway,
            Role::Haproxy,
        ];
        let mut users: Vec<&str> = roles.iter().map(|r| user_of(*r)).collect();
        assert!(!users.contains(&"root"));
        users.sort_unstable();
        users.dedup();
        assert_eq!(users.len(), roles.len(), "{users:?}");
    }

    #[test]
    fn uids_of_this_process_come_from_proc() {
        let me = process_uids(std::process::id() as i32).expect("own status");
        assert_eq!(me[1], nix::unistd::geteuid().as_raw());
        assert!(process_user(std::process::id() as i32).is_some());
        assert_eq!(process_uids(i32::MAX), None, "no such process");
    }

    /// As root (CI), the tree goes to `nobody`; a symbolic link is re-owned itself and its
    /// target outside the tree is left alone. As another user, the tree is handed to the caller
    /// (the only chown allowed), which still walks every entry.
    #[test]
    fn chown_tree_reowns_everything_but_never_follows_a_link() {
        let tmp = tempfile::tempdir().expect("tmp");
        let outside = tmp.path().join("outside");
        fs::write(&outside, "not yours").expect("write");
        let root = tmp.path().join("svc");
        fs::create_dir_all(root.join("data/a/b")).expect("mkdir");
        fs::write(root.join("data/a/b/f"), "x").expect("write");
        fs::write(root.join("config.xml"), "x").expect("write");
        std::os::unix::fs::symlink(&outside, root.join("data/link")).expect("symlink");
        std::os::unix::fs::symlink(tmp.path(), root.join("dirlink")).expect("symlink");
        let (uid, gid) = if caller_is_root() {
            let nobody = lookup("nobody").expect("user nobody");
            (nobody.uid, nobody.gid)
        } else {
            (nix::unistd::geteuid(), nix::unistd::getegid())
        };
        let before = fs::metadata(&outside).expect("meta");
        let changed = chown_tree(&root, uid, gid).expect("chown");
        for p in [
            "",
            "data",
            "data/a",
            "data/a/b",
            "data/a/b/f",
            "config.xml",
            "data/link",
            "dirlink",
        ] {
            let m = fs::symlink_metadata(root.join(p)).expect("meta");
            assert_eq!((m.uid(), m.gid()), (uid.as_raw(), gid.as_raw()), "{p}");
        }
        let after = fs::metadata(&outside).expect("meta");
        assert_eq!(
            (after.uid(), after.gid()),
            (before.uid(), before.gid()),
            "link target untouched"
        );
        if caller_is_root() {
            assert_eq!(changed, 8);
        }
        assert_eq!(chown_tree(&root, uid, gid).expect("again"), 0, "idempotent");
    }

    fn nobody_account(dir: &Path) -> Account {
        let u = lookup("nobody").expect("user nobody");
        Account {
            name: u.name,
            uid: u.uid,
            gid: u.gid,
            home: dir.to_owned(),
        }
    }

    fn gateway_service(dir: &Path) -> Service {
        Service {
            role: Role::Gateway,
            name: "gateway-1".into(),
            dir: dir.join("gateway-1"),
            argv: vec![],
            ports: vec![],
            run_as: Some(GATEWAY_USER.into()),
            stop_signal: crate::plan::StopSignal::Term,
        }
    }

    /// The gateway's user gets its password files (0600) and may search, not list, their
    /// directory; a secret outside the state directory is checked, not re-owned. Needs root to
    /// hand files to another user, as CI runs.
    #[test]
    fn secrets_are_handed_to_the_reader_and_outside_ones_only_checked() {
        let tmp = tempfile::tempdir().expect("tmp");
        let st = tmp.path().join("state");
        fs::create_dir_all(st.join("secrets")).expect("mkdir");
        fs::set_permissions(&st, fs::Permissions::from_mode(0o755)).expect("chmod");
        fs::set_permissions(st.join("secrets"), fs::Permissions::from_mode(0o700)).expect("chmod");
        let pw = st.join("secrets/clickhouse_password");
        fs::write(&pw, "pw\n").expect("write");
        let a = nobody_account(&st);
        let svc = gateway_service(&st);
        if !caller_is_root() {
            // Only root can give files away; as another user the rig never calls this.
            assert!(hand_over_secrets(&svc, &a, &st, &[pw]).is_err());
            return;
        }
        hand_over_secrets(&svc, &a, &st, std::slice::from_ref(&pw)).expect("hand over");
        let m = fs::metadata(&pw).expect("meta");
        assert_eq!((m.uid(), m.mode() & 0o777), (a.uid.as_raw(), 0o600));
        let d = fs::metadata(st.join("secrets")).expect("meta");
        assert_eq!(
            (d.uid(), d.gid(), d.mode() & 0o777),
            (0, a.gid.as_raw(), SECRETS_DIR_MODE)
        );
        assert!(can_access(&a, &pw, "-r"), "nobody reads its password");
        assert!(
            !can_access(&a, &st.join("secrets"), "-r"),
            "but cannot list"
        );
        // Outside the state dir (here: a root-only directory): refused with a clear message.
        let private = tmp.path().join("private");
        fs::create_dir_all(&private).expect("mkdir");
        fs::set_permissions(&private, fs::Permissions::from_mode(0o700)).expect("chmod");
        let outside = private.join("pw");
        fs::write(&outside, "pw\n").expect("write");
        let e = hand_over_secrets(&svc, &a, &st, std::slice::from_ref(&outside))
            .expect_err("unreadable");
        assert!(
            e.to_string().contains("`nobody`") && e.to_string().contains("private/pw"),
            "{e}"
        );
        assert_eq!(
            fs::metadata(&outside).expect("meta").uid(),
            0,
            "not re-owned"
        );
        // Lexically under the state dir but reached through `..`: outside too.
        let sneaky = st.join("..").join("private").join("pw");
        assert!(hand_over_secrets(&svc, &a, &st, &[sneaky]).is_err());
        assert_eq!(fs::metadata(&outside).expect("meta").uid(), 0);
    }
}

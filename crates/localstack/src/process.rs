//! Starting and stopping rig processes through pid files; never by process name.

use std::fs::{self, OpenOptions};
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

use crate::plan::{Service, StopSignal};
use crate::StackError;

/// What the pid file says about a service.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PidState {
    /// No pid file.
    Absent,
    /// Pid file names a live process whose command line carries the service's marker.
    Running(i32),
    /// Pid file exists but its process is gone (or the pid now belongs to something else).
    Stale,
}

fn cmdline_has(pid: i32, marker: &str) -> bool {
    fs::read(format!("/proc/{pid}/cmdline"))
        .map(|raw| {
            let text: String = raw
                .iter()
                .map(|&b| if b == 0 { ' ' } else { char::from(b) })
                .collect();
            text.contains(marker)
        })
        .unwrap_or(false)
}

/// Reads the pid file and checks the process.
pub fn pid_state(svc: &Service, state_dir: &Path) -> PidState {
    let Ok(text) = fs::read_to_string(svc.pid_file(state_dir)) else {
        return PidState::Absent;
    };
    match text.trim().parse::<i32>() {
        Ok(pid) if pid > 0 && cmdline_has(pid, &svc.marker()) && !exited(pid) => {
            PidState::Running(pid)
        }
        _ => PidState::Stale,
    }
}

/// Whether `pid` has finished exiting: gone, or a zombie with no thread left. A thread-group
/// leader shows as a zombie as soon as its own thread exits while the other threads are still
/// tearing down and holding the process's files (HAProxy's listening sockets): that process is
/// not gone yet, and its ports are not free.
fn exited(pid: i32) -> bool {
    let Ok(status) = fs::read_to_string(format!("/proc/{pid}/status")) else {
        return true;
    };
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .map(str::trim)
            .unwrap_or_default()
            .to_owned()
    };
    field("State:").starts_with('Z') && field("Threads:").parse::<u32>().unwrap_or(0) <= 1
}

/// Starts `svc` detached (own process group, stdout/stderr to its log file) and writes its pid.
///
/// # Errors
/// [`StackError::Start`] naming the service when the program cannot be spawned.
pub fn spawn(svc: &Service, state_dir: &Path, env: &[(&str, &str)]) -> Result<i32, StackError> {
    let err = |reason: String| StackError::Start {
        service: svc.name.clone(),
        reason,
    };
    let account = crate::account::of(svc)?;
    let log_path = svc.log_file(state_dir);
    let log = OpenOptions::new()
        .create(true)
        .append(true)
        .open(&log_path)
        .map_err(|e| err(format!("cannot open log {}: {e}", log_path.display())))?;
    if let Some(a) = &account {
        // The process writes through the inherited descriptor; the file is its own too (the
        // `log` directory stays the supervisor's, so the entry cannot be swapped for a link).
        std::os::unix::fs::fchown(&log, Some(a.uid.as_raw()), Some(a.gid.as_raw()))
            .map_err(|e| err(format!("cannot chown log {}: {e}", log_path.display())))?;
    }
    let log2 = log.try_clone().map_err(|e| err(e.to_string()))?;
    let (program, args) = svc
        .argv
        .split_first()
        .ok_or_else(|| err("empty command".into()))?;
    let mut cmd = Command::new(program);
    cmd.args(args)
        .current_dir(&svc.dir)
        .stdin(Stdio::null())
        .stdout(log)
        .stderr(log2)
        .process_group(0);
    for (k, v) in env {
        cmd.env(k, v);
    }
    if let Some(a) = &account {
        // std drops the supplementary groups before setuid, so no group of root's is kept.
        cmd.uid(a.uid.as_raw())
            .gid(a.gid.as_raw())
            .env("HOME", &a.home)
            .env("USER", &a.name)
            .env("LOGNAME", &a.name);
    }
    let as_user = account
        .as_ref()
        .map(|a| format!(" as system user `{}`", a.name))
        .unwrap_or_default();
    let child = cmd
        .spawn()
        .map_err(|e| err(format!("cannot run {program}{as_user}: {e}")))?;
    let pid = i32::try_from(child.id()).map_err(|e| err(e.to_string()))?;
    // The child is reaped by init once we exit; we track it through the pid file, not the handle.
    drop(child);
    // Until exec completes, /proc/PID/cmdline is still ours: wait for the marker so the pid file
    // is never judged stale because it was read too early.
    let start = Instant::now();
    while !cmdline_has(pid, &svc.marker()) {
        if !alive(pid) {
            return Err(err(format!(
                "exited right after start; see {}",
                log_path.display()
            )));
        }
        if start.elapsed() > Duration::from_secs(5) {
            break;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    let pid_file = svc.pid_file(state_dir);
    fs::write(&pid_file, format!("{pid}\n"))
        .map_err(|e| err(format!("cannot write {}: {e}", pid_file.display())))?;
    Ok(pid)
}

/// Whether a process is still alive (and not a zombie).
pub fn alive(pid: i32) -> bool {
    kill(Pid::from_raw(pid), None).is_ok() && !exited(pid)
}

/// Stops `svc` if its pid file names a live process of ours: the clean signal, then SIGKILL after
/// `grace`. Removes the pid file. Returns whether a process was stopped.
///
/// # Errors
/// [`StackError::Stop`] when the process survives SIGKILL.
pub fn stop(svc: &Service, state_dir: &Path, grace: Duration) -> Result<bool, StackError> {
    let signal = match svc.stop_signal {
        StopSignal::Term => Signal::SIGTERM,
        StopSignal::Int => Signal::SIGINT,
    };
    end(svc, state_dir, Some((signal, grace)))
}

/// Kills `svc` with SIGKILL (its process group too), without a clean shutdown: a crash, for
/// recovery drills. Removes the pid file. Returns whether a process was killed.
///
/// # Errors
/// [`StackError::Stop`] when the process survives SIGKILL.
pub fn kill_now(svc: &Service, state_dir: &Path) -> Result<bool, StackError> {
    end(svc, state_dir, None)
}

/// Ends `svc`: the clean signal and up to `grace` for it when given, then SIGKILL.
fn end(
    svc: &Service,
    state_dir: &Path,
    clean: Option<(Signal, Duration)>,
) -> Result<bool, StackError> {
    let pid_file = svc.pid_file(state_dir);
    let PidState::Running(pid) = pid_state(svc, state_dir) else {
        let _ = fs::remove_file(&pid_file);
        return Ok(false);
    };
    let stopped = clean.is_some_and(|(signal, grace)| {
        let _ = kill(Pid::from_raw(pid), signal);
        wait_exit(pid, grace)
    });
    if !stopped {
        if clean.is_some() {
            tracing::warn!(service = %svc.name, pid, "did not stop in time, sending SIGKILL");
        }
        let _ = kill(Pid::from_raw(-pid), Signal::SIGKILL);
        let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
        if !wait_exit(pid, Duration::from_secs(5)) {
            return Err(StackError::Stop {
                service: svc.name.clone(),
                pid,
            });
        }
    }
    let _ = fs::remove_file(&pid_file);
    Ok(true)
}

fn wait_exit(pid: i32, limit: Duration) -> bool {
    let start = Instant::now();
    while start.elapsed() < limit {
        if !alive(pid) {
            return true;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    !alive(pid)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::Role;
    use nix::unistd::User;

    fn sleeper(dir: &Path) -> Service {
        Service {
            role: Role::Haproxy,
            name: "sleeper".into(),
            dir: dir.join("sleeper"),
            // The marker (its dir) must be in argv: pass it as a harmless extra argument.
            argv: vec![
                "/bin/sh".into(),
                "-c".into(),
                "sleep 30".into(),
                format!("{}/", dir.join("sleeper").display()),
            ],
            ports: vec![],
            run_as: None,
            stop_signal: StopSignal::Term,
        }
    }

    /// A state directory with `run/`, `log/` and the sleeper's directory.
    fn state_with_sleeper_dirs() -> tempfile::TempDir {
        let tmp = tempfile::tempdir().expect("tmp");
        for d in ["run", "log", "sleeper"] {
            fs::create_dir_all(tmp.path().join(d)).expect("mkdir");
        }
        tmp
    }

    /// As root (CI), a service with `run_as` runs as that user, with the user's groups only,
    /// and its log file is its own; as another user it runs as the caller.
    #[test]
    fn a_service_runs_as_its_system_user_when_started_by_root() {
        let tmp = state_with_sleeper_dirs();
        let st = tmp.path();
        let mut svc = sleeper(st);
        svc.run_as = Some("nobody".into());
        let nobody = User::from_name("nobody")
            .expect("getpwnam")
            .expect("nobody");
        let pid = spawn(&svc, st, &[]).expect("spawns");
        let uids = crate::account::process_uids(pid).expect("running");
        let status = fs::read_to_string(format!("/proc/{pid}/status")).expect("status");
        assert!(stop(&svc, st, Duration::from_secs(5)).expect("stops"));
        let log_owner =
            std::os::unix::fs::MetadataExt::uid(&fs::metadata(svc.log_file(st)).expect("log"));
        if crate::account::caller_is_root() {
            assert_eq!(
                uids,
                [nobody.uid.as_raw(); 4],
                "real, effective, saved, fs uid"
            );
            assert_eq!(log_owner, nobody.uid.as_raw());
            let groups = status
                .lines()
                .find_map(|l| l.strip_prefix("Groups:"))
                .expect("Groups line");
            assert!(
                !groups.split_whitespace().any(|g| g == "0"),
                "root's group dropped: {groups}"
            );
        } else {
            assert_eq!(
                uids[1],
                nix::unistd::geteuid().as_raw(),
                "runs as the caller"
            );
        }
    }

    #[test]
    fn kill_now_ends_the_process_without_waiting_for_a_clean_stop() {
        let tmp = state_with_sleeper_dirs();
        let st = tmp.path();
        let svc = sleeper(st);
        let pid = spawn(&svc, st, &[]).expect("spawns");
        let t = Instant::now();
        assert!(kill_now(&svc, st).expect("kills"));
        assert!(!alive(pid) && t.elapsed() < Duration::from_secs(5));
        assert_eq!(pid_state(&svc, st), PidState::Absent);
        assert!(!kill_now(&svc, st).expect("no-op"), "nothing left to kill");
    }

    #[test]
    fn spawn_stop_and_stale_pid_files() {
        let tmp = state_with_sleeper_dirs();
        let st = tmp.path();
        let svc = sleeper(st);
        assert_eq!(pid_state(&svc, st), PidState::Absent);
        let pid = spawn(&svc, st, &[]).expect("spawns");
        assert_eq!(pid_state(&svc, st), PidState::Running(pid));
        assert!(stop(&svc, st, Duration::from_secs(5)).expect("stops"));
        assert!(!alive(pid));
        assert_eq!(pid_state(&svc, st), PidState::Absent);
        // A pid file naming a process that is not ours (our own test process) is stale:
        // stop must not signal it.
        fs::write(svc.pid_file(st), format!("{}\n", std::process::id())).expect("write");
        assert_eq!(pid_state(&svc, st), PidState::Stale);
        assert!(!stop(&svc, st, Duration::from_secs(1)).expect("no-op"));
        assert!(!svc.pid_file(st).exists(), "stale pid file removed");
    }

    /// HAProxy's main thread exits before its other threads, which still hold the listening
    /// sockets; `stop` must wait for the whole process, so that the port is free when it returns
    /// (a restart right after a stop found it taken). Repeated because the window is short.
    #[test]
    fn stop_returns_only_once_a_threaded_process_has_released_its_port() {
        let tmp = tempfile::tempdir().expect("tmp");
        let st = tmp.path();
        let dir = st.join("hp");
        for d in [st.join("run"), st.join("log"), dir.clone()] {
            fs::create_dir_all(d).expect("mkdir");
        }
        for round in 0..8 {
            let port = std::net::TcpListener::bind("127.0.0.1:0")
                .and_then(|l| l.local_addr())
                .expect("a free port")
                .port();
            let cfg = dir.join("haproxy.cfg");
            fs::write(
                &cfg,
                format!(
                    "global\n    nbthread 4\ndefaults\n    mode http\n    timeout connect 1s\n    \
                     timeout client 5s\n    timeout server 5s\nfrontend f\n    bind 127.0.0.1:{port}\n    \
                     http-request return status 200\n"
                ),
            )
            .expect("write cfg");
            let svc = Service {
                role: Role::Haproxy,
                name: "hp".into(),
                dir: dir.clone(),
                argv: vec![
                    crate::plan::bin::HAPROXY.into(),
                    "-db".into(),
                    "-f".into(),
                    cfg.display().to_string(),
                ],
                ports: vec![("http".into(), port)],
                run_as: None,
                stop_signal: StopSignal::Term,
            };
            let pid = spawn(&svc, st, &[]).expect("spawn haproxy");
            let t = Instant::now();
            while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
                assert!(
                    t.elapsed() < Duration::from_secs(10),
                    "haproxy never listened"
                );
                std::thread::sleep(Duration::from_millis(20));
            }
            if round % 2 == 0 {
                // Through `stop`, as the rig does.
                assert!(stop(&svc, st, Duration::from_secs(10)).expect("stops"));
            } else {
                // The predicate itself, polled without sleeping: the first moment it says the
                // process is gone, the port must be free.
                kill(Pid::from_raw(pid), Signal::SIGTERM).expect("signal");
                while alive(pid) {
                    assert!(
                        t.elapsed() < Duration::from_secs(20),
                        "haproxy did not exit"
                    );
                }
            }
            let free = std::net::TcpListener::bind(("127.0.0.1", port));
            assert!(
                free.is_ok(),
                "round {round}: port {port} still taken once haproxy was judged gone"
            );
        }
    }
}

//! The rig's other parts and its process handling: PostgreSQL, status, idempotent up, stale pids.

use chgate_harness::rig;
use chgate_localstack::plan::Role;
use chgate_localstack::UpOptions;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_answers_with_the_configured_role() {
    let rig = rig().await;
    // Over TLS with the rig's [tls], as chgate connects (Rig::postgres panics with the log tail).
    let client = rig.postgres("postgres").await;
    let row = client
        .query_one("SELECT current_user::text, version()", &[])
        .await
        .expect("query");
    let user: String = row.get(0);
    let version: String = row.get(1);
    assert_eq!(user, rig.topology().postgres.user);
    assert!(version.starts_with("PostgreSQL 15"), "{version}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_lists_every_process_healthy_and_serialises_to_json() {
    let rig = rig().await;
    // Not while an exclusive test has a process stopped (the stale-pid test stops HAProxy).
    let _guard = rig.shared().await;
    let report = rig.stack().status().await;
    let count = |r: Role| report.services.iter().filter(|s| s.role == r).count();
    assert_eq!(
        (
            count(Role::ClickHouse),
            count(Role::Keeper),
            count(Role::Postgres),
            count(Role::Haproxy)
        ),
        (4, 3, 1, 1)
    );
    let sick: Vec<_> = report
        .services
        .iter()
        .filter(|s| !s.healthy && s.role != Role::Keeper)
        .collect();
    assert!(sick.is_empty(), "unhealthy: {sick:?}");
    let json = serde_json::to_value(&report).expect("json");
    assert_eq!(
        json["endpoints"]["clickhouse"].as_array().map(Vec::len),
        Some(4)
    );
    assert!(json["endpoints"]["postgres_dsn"]
        .as_str()
        .is_some_and(|d| !d.contains(rig.postgres_password().expose())));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn up_is_idempotent_and_a_stale_pid_file_does_not_break_it() {
    let rig = rig().await;
    let _guard = rig.exclusive().await;
    let stack = rig.stack();
    let haproxy = stack
        .services()
        .iter()
        .find(|s| s.role == Role::Haproxy)
        .expect("haproxy")
        .clone();
    // Replace HAProxy's pid file with a pid that is not ours (this test process): stale.
    stack.stop_service(&haproxy.name).expect("stop haproxy");
    std::fs::write(
        haproxy.pid_file(stack.state_dir()),
        format!("{}\n", std::process::id()),
    )
    .expect("write");
    let opts = UpOptions {
        install: false,
        ..UpOptions::default()
    };
    let report = stack
        .up(opts, &|_| {})
        .await
        .expect("up with a stale pid file");
    assert_eq!(
        report.started,
        vec![haproxy.name.clone()],
        "only the stale one restarts"
    );
    let again = stack.up(opts, &|_| {}).await.expect("second up");
    assert!(
        again.started.is_empty(),
        "second up is a no-op: {:?}",
        again.started
    );
    assert_eq!(again.already_running.len(), stack.services().len());
}

/// Security issue 10: started by root (as CI does), no process of the rig keeps root. Each one,
/// found through its pid file, runs as its own system user (all four uids), its directory tree
/// belongs to that user, and the rig is healthy that way.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_process_runs_as_its_own_non_root_user_and_stays_healthy() {
    use chgate_localstack::account;
    use std::os::unix::fs::MetadataExt;

    let rig = rig().await;
    let _guard = rig.exclusive().await;
    let stack = rig.stack();
    let root_caller = account::caller_is_root();
    for svc in stack.services() {
        let pid_file = svc.pid_file(stack.state_dir());
        let pid: i32 = std::fs::read_to_string(&pid_file)
            .unwrap_or_else(|e| panic!("{}: {e}", pid_file.display()))
            .trim()
            .parse()
            .expect("pid");
        let uids = account::process_uids(pid)
            .unwrap_or_else(|| panic!("{} (pid {pid}) is not running", svc.name));
        if !root_caller {
            let me = account::process_uids(std::process::id() as i32).expect("own uids");
            assert_eq!(uids[1], me[1], "{} runs as the caller", svc.name);
            continue;
        }
        let user = svc.run_as.as_deref().expect("every service names its user");
        let expected =
            account::uid_of(user).unwrap_or_else(|| panic!("system user {user} missing"));
        assert!(
            uids.iter().all(|u| *u != 0 && *u == expected),
            "{} (pid {pid}) runs with uids {uids:?}, expected {user} ({expected}); a process \
             started by an older chgate keeps root until restarted (chgate local down && up)",
            svc.name
        );
        // Everything in its directory is its user's (configs, data, logs, TLS copy), so a
        // restart as that user can read and write it all.
        let mut foreign = Vec::new();
        let mut todo = vec![svc.dir.clone()];
        while let Some(p) = todo.pop() {
            let Ok(m) = std::fs::symlink_metadata(&p) else {
                continue; // removed meanwhile (a temporary file of the server)
            };
            if m.uid() != expected {
                foreign.push(format!("{} (uid {})", p.display(), m.uid()));
            }
            if m.is_dir() {
                todo.extend(
                    std::fs::read_dir(&p)
                        .into_iter()
                        .flatten()
                        .flatten()
                        .map(|e| e.path()),
                );
            }
        }
        assert!(
            foreign.is_empty(),
            "{}: not owned by {user}: {foreign:?}",
            svc.name
        );
    }
    // Healthy as these users (a Keeper node restarted by a previous fault test may need a moment).
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    loop {
        let report = stack.status().await;
        let wrong: Vec<_> = report
            .services
            .iter()
            .filter(|s| {
                !s.healthy
                    || (root_caller
                        && s.user.as_deref()
                            != stack
                                .services()
                                .iter()
                                .find(|x| x.name == s.name)
                                .and_then(|x| x.run_as.as_deref()))
            })
            .collect();
        if wrong.is_empty() {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "unhealthy or wrong user in status: {wrong:?}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    }
}

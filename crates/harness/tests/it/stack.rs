//! The rig's other parts and its process handling: PostgreSQL, status, idempotent up, stale pids.

use chgate_harness::rig;
use chgate_localstack::plan::Role;
use chgate_localstack::UpOptions;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_answers_with_the_configured_role() {
    let rig = rig().await;
    let (client, conn) = tokio_postgres::connect(&rig.postgres_dsn(), tokio_postgres::NoTls)
        .await
        .unwrap_or_else(|e| panic!("connect: {e}\n{}", rig.log_tail("postgres")));
    tokio::spawn(conn);
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

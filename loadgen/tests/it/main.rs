//! Live tests of the load generator against the test rig: short bounded runs (a few thousand
//! rows, seconds) whose acked rows must all be found on every replica, and a gateway that acks
//! without writing, which verification must catch.

use std::time::Duration;

use chgate_gateway::writer::WriteMode;
use chgate_harness::Rig;
use chgate_loadgen::body::{DirectMode, Protocol};
use chgate_loadgen::data::DataConfig;
use chgate_loadgen::job::{self, Env, Job, Report, Target};
use chgate_loadgen::run::{LoadMode, RunSettings};

async fn env(prefix: &str) -> (&'static Rig, Env) {
    let rig = chgate_harness::rig().await;
    let db = rig.unique_name(prefix);
    rig.migrate(&db);
    let env = Env {
        topology: rig.topology().clone(),
        password: rig.clickhouse_password(),
        database: db,
        state_dir: rig.state_dir().to_path_buf(),
    };
    (rig, env)
}

fn job(rig: &Rig, target: Target, mode: LoadMode, rows: u64) -> Job {
    Job {
        label: "test".into(),
        data: DataConfig {
            hosts: 20,
            measurements: 3,
            prefix: format!("{}_", rig.unique_name("lg")),
            start_ms: 1_764_000_000_000,
            ..DataConfig::default()
        },
        target,
        run: RunSettings {
            mode,
            duration: Some(Duration::from_secs(20)),
            rows: Some(rows),
            batch_rows: 500,
            retries: 3,
            progress: false,
        },
        verify: true,
        allow_remote: false,
        request_timeout: Duration::from_secs(30),
    }
}

fn assert_verified(r: &Report, rows: u64) {
    let v = r.verification.as_ref().expect("verified");
    assert!(
        r.passed(),
        "{}\n{:?}",
        chgate_loadgen::report::summary(r),
        v.problems
    );
    assert_eq!(r.stats.rows, rows);
    assert_eq!(v.found, rows);
    assert_eq!(v.nodes.len(), 4);
    // Both shards got rows, and each shard's replicas agree.
    assert!(v.nodes.iter().all(|n| n.rows > 0), "{:?}", v.nodes);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn closed_loop_influx_through_an_in_process_gateway_verifies() {
    let (rig, env) = env("lg_influx").await;
    let closed = LoadMode::Closed { concurrency: 2 };
    let j = job(rig, Target::Direct(DirectMode::Distributed), closed, 4_000);
    let r = job::execute_in_process(&env, &j, WriteMode::Distributed, Protocol::Influx)
        .await
        .expect("run");
    assert_verified(&r, 4_000);
    assert!(r.stats.latency_ms.p50 > 0.0);
    assert!(!r.memory.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn open_loop_remote_write_shard_aware_verifies() {
    let (rig, env) = env("lg_rw").await;
    let open = LoadMode::Open {
        rate: 3_000.0,
        max_in_flight: 16,
    };
    let j = job(rig, Target::Direct(DirectMode::Distributed), open, 3_000);
    let r = job::execute_in_process(&env, &j, WriteMode::ShardAware, Protocol::RemoteWrite)
        .await
        .expect("run");
    assert_verified(&r, 3_000);
    // 3000 rows at 3000 rows/s in batches of 500: the schedule spans about a second.
    assert!(r.stats.elapsed_s >= 0.8, "{}", r.stats.elapsed_s);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn direct_baselines_verify() {
    let (rig, env) = env("lg_direct").await;
    for mode in [DirectMode::Distributed, DirectMode::ShardLocal] {
        let j = job(
            rig,
            Target::Direct(mode),
            LoadMode::Closed { concurrency: 2 },
            2_000,
        );
        let r = job::execute(&env, &j).await.expect("run");
        assert_verified(&r, 2_000);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ndjson_through_the_rig_haproxy_verifies_and_reports_gateway_memory() {
    let (rig, env) = env("lg_ndjson").await;
    let target = Target::Gateway {
        url: rig.haproxy_gateway_url(),
        protocol: Protocol::Ndjson,
    };
    let j = job(rig, target, LoadMode::Closed { concurrency: 2 }, 2_000);
    let r = job::execute(&env, &j).await.expect("run");
    assert_verified(&r, 2_000);
    assert!(
        r.memory
            .iter()
            .any(|m| m.name == "gateway-1" && m.hwm_kib > 0),
        "{:?}",
        r.memory
    );
}

/// Regression guard for the acceptance criterion "a gateway that drops rows is caught": a fake
/// gateway acks every request with 204 and writes nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gateway_that_acks_without_writing_fails_verification() {
    let (rig, env) = env("lg_drop").await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("addr"));
    let app = axum::Router::new().fallback(|| async { axum::http::StatusCode::NO_CONTENT });
    let server = tokio::spawn(async move { axum::serve(listener, app).await });
    let target = Target::Gateway {
        url,
        protocol: Protocol::Influx,
    };
    let j = job(rig, target, LoadMode::Closed { concurrency: 2 }, 1_000);
    let r = job::execute(&env, &j).await.expect("run");
    server.abort();
    let v = r.verification.as_ref().expect("verified");
    assert_eq!(r.stats.rows, 1_000);
    assert_eq!(v.found, 0);
    assert!(!r.passed());
    assert!(
        v.problems[0].contains("1000 acked rows are missing"),
        "{:?}",
        v.problems
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn otlp_and_arrow_through_an_in_process_gateway_verify() {
    let (rig, env) = env("lg_otlp").await;
    for protocol in [Protocol::Otlp, Protocol::Arrow] {
        let closed = LoadMode::Closed { concurrency: 2 };
        let j = job(rig, Target::Direct(DirectMode::Distributed), closed, 1_500);
        let r = job::execute_in_process(&env, &j, WriteMode::Distributed, protocol)
            .await
            .expect("run");
        assert_verified(&r, 1_500);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn non_loopback_targets_are_refused() {
    let rig = chgate_harness::rig().await;
    let env = Env {
        topology: rig.topology().clone(),
        password: rig.clickhouse_password(),
        database: "never_written".into(),
        state_dir: rig.state_dir().to_path_buf(),
    };
    let target = Target::Gateway {
        url: "http://192.0.2.1:8428".into(),
        protocol: Protocol::Influx,
    };
    let j = job(rig, target, LoadMode::Closed { concurrency: 1 }, 10);
    let e = job::execute(&env, &j).await.expect_err("refused");
    assert!(e.to_string().contains("non-loopback"), "{e}");
}

/// Open loop measures from the intended send time: against a server that takes 200 ms per
/// request and one request slot, requests scheduled every 100 ms queue up, and their latency must
/// show it (200, 300, ... 1100 ms) instead of the 200 ms service time a coordinated-omission
/// measurement would report. No ClickHouse involved.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn open_loop_latency_includes_queueing_no_coordinated_omission() {
    use chgate_loadgen::body::Encoder;
    use chgate_loadgen::data::Generator;
    use chgate_loadgen::target::Sender;

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("addr"));
    let app = axum::Router::new().fallback(|| async {
        tokio::time::sleep(Duration::from_millis(200)).await;
        axum::http::StatusCode::NO_CONTENT
    });
    let server = tokio::spawn(async move { axum::serve(listener, app).await });
    let run = |mode| {
        let url = url.clone();
        async move {
            let settings = RunSettings {
                mode,
                duration: None,
                rows: Some(100),
                batch_rows: 10,
                retries: 0,
                progress: false,
            };
            let gen = Generator::new(DataConfig::default()).expect("gen");
            let enc = Encoder::Gateway {
                protocol: Protocol::Influx,
                database: "db".into(),
            };
            let sender = Sender::gateway(&url, Duration::from_secs(10)).expect("client");
            chgate_loadgen::run::run(gen, enc, std::sync::Arc::new(sender), &settings)
                .await
                .expect("run")
        }
    };
    let open = run(LoadMode::Open {
        rate: 100.0,
        max_in_flight: 1,
    })
    .await;
    let closed = run(LoadMode::Closed { concurrency: 1 }).await;
    server.abort();
    assert_eq!((open.rows, open.requests), (100, 10));
    assert!(open.latency_ms.max > 900.0, "{:?}", open.latency_ms);
    assert!(open.latency_ms.p50 > 500.0, "{:?}", open.latency_ms);
    assert!(closed.latency_ms.max < 600.0, "{:?}", closed.latency_ms);
    assert!(closed.latency_ms.p50 >= 190.0, "{:?}", closed.latency_ms);
}

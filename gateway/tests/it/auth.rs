//! Tenants end to end: tokens from `chgate tenant`'s store in the rig's PostgreSQL, an in-process
//! gateway with `[auth] enabled`, rows counted on every replica.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use chgate_gateway::auth::store::{self, Grant, PgSettings, Quota};
use chgate_gateway::auth::{AuthConfig, Authenticator, PgSource};
use chgate_gateway::config::GatewayConfig;
use chgate_gateway::encode::{native, rowbinary, Column};
use chgate_gateway::value::Value;
use chgate_harness::{rig, Rig};
use tokio::sync::oneshot;

use crate::support::{http, migrated_db, per_shard_counts, samples_with};

/// The tenants' tables in a PostgreSQL database of this test alone, migrated by refinery.
async fn tenants_db(rig: &Rig) -> PgSettings {
    let t = rig.topology();
    let database = rig.unique_name("gw_tenants");
    let target = chgate_migrations::postgres::PgTarget {
        host: t.network.listen.to_string(),
        port: t.postgres_port(),
        user: t.postgres.user.clone(),
        password: rig.postgres_password(),
        database: database.clone(),
        grafana_database: database.clone(),
        // Over TLS when the rig has [tls] (the migrator requires it then).
        ca: t.tls.as_ref().map(|tls| tls.ca.clone()),
    };
    chgate_migrations::postgres::up(&target, false)
        .await
        .expect("PostgreSQL migrations");
    let pg = PgSettings {
        host: target.host,
        port: target.port,
        user: target.user,
        password: target.password,
        database,
        ca: target.ca,
    };
    if pg.ca.is_some() {
        // The gateway's token lookups (and `chgate tenant`) use this same connection path.
        let c = pg.connect().await.expect("connect over TLS");
        let row = c
            .query_one(
                "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()",
                &[],
            )
            .await
            .expect("pg_stat_ssl");
        assert!(
            row.get::<_, bool>(0),
            "the tenants' store connection is encrypted"
        );
    }
    pg
}

async fn tenant(pg: &PgSettings, name: &str, grants: &[&str], quota: Quota) -> String {
    let mut c = pg.connect().await.expect("connect");
    let grants: Vec<Grant> = grants
        .iter()
        .map(|g| Grant::parse(g).expect("grant"))
        .collect();
    store::create_tenant(&mut c, name, &grants, &quota)
        .await
        .expect("create tenant")
        .plain
}

struct AuthGateway {
    url: String,
    stop: oneshot::Sender<()>,
    task: tokio::task::JoinHandle<()>,
}

async fn gateway(rig: &Rig, db: &str, pg: PgSettings, ttl: Duration) -> AuthGateway {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("addr"));
    let mut cfg = GatewayConfig {
        database: Some(db.to_owned()),
        auth: AuthConfig {
            enabled: true,
            cache_ttl: ttl,
            stale_grace: Duration::from_secs(60),
            ..AuthConfig::default()
        },
        ..GatewayConfig::default()
    };
    cfg.batch.max_age = Duration::from_millis(50);
    let auth = Arc::new(Authenticator::new(
        cfg.auth.clone(),
        Arc::new(PgSource::new(pg)),
    ));
    let (stop, rx) = oneshot::channel::<()>();
    let (topology, password) = (rig.topology().clone(), rig.clickhouse_password());
    let task = tokio::spawn(async move {
        let shutdown = async {
            let _ = rx.await;
        };
        chgate_gateway::run::serve_on_with(
            listener,
            cfg,
            &topology,
            &password,
            Some(auth),
            shutdown,
        )
        .await
        .expect("gateway ran");
    });
    AuthGateway { url, stop, task }
}

impl AuthGateway {
    async fn influx(
        &self,
        auth: Option<(&str, &str)>,
        body: &str,
    ) -> (u16, String, Option<String>) {
        let mut req = http()
            .post(format!("{}/write?precision=s", self.url))
            .body(body.to_owned());
        if let Some((k, v)) = auth {
            req = req.header(k, v);
        }
        answer(req.send().await.expect("send")).await
    }

    /// A ClickHouse-compatible insert (`POST /?query=...`).
    async fn clickhouse(
        &self,
        auth: (&str, &str),
        query: &str,
        body: Vec<u8>,
    ) -> (u16, String, Option<String>) {
        let resp = http()
            .post(format!("{}/", self.url))
            .query(&[("query", query)])
            .header(auth.0, auth.1)
            .body(body)
            .send()
            .await
            .expect("send");
        answer(resp).await
    }

    async fn stop(self) {
        let _ = self.stop.send(());
        let _ = tokio::time::timeout(Duration::from_secs(30), self.task).await;
    }
}

/// Status, body and `Retry-After` of an answer.
async fn answer(resp: reqwest::Response) -> (u16, String, Option<String>) {
    let retry = resp
        .headers()
        .get("retry-after")
        .map(|v| v.to_str().unwrap_or("").to_owned());
    (
        resp.status().as_u16(),
        resp.text().await.unwrap_or_default(),
        retry,
    )
}

fn bearer(t: &str) -> (&'static str, String) {
    ("authorization", format!("Bearer {t}"))
}

async fn tenant_rows(rig: &Rig, db: &str, tenant: &str) -> u64 {
    samples_with(rig, db, "tenant", tenant).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unauthenticated_revoked_and_cross_tenant_writes_are_refused_and_write_nothing() {
    let rig = rig().await;
    let db = migrated_db(rig, "gw_auth");
    let pg = tenants_db(rig).await;
    let alice = tenant(&pg, "alice", &[&format!("{db}.*")], Quota::default()).await;
    let bob = tenant(&pg, "bob", &["elsewhere.*"], Quota::default()).await;
    let gw = gateway(rig, &db, pg.clone(), Duration::from_millis(200)).await;
    let line = "auth_probe,host=a value=1 1700000000\n";

    // No header, a malformed one, a well-formed unknown token: the same 401, no detail.
    let (s, body, _) = gw.influx(None, line).await;
    assert_eq!(s, 401, "{body}");
    assert!(!body.contains("alice") && !body.contains("bob"), "{body}");
    let unknown = chgate_gateway::auth::token::generate().plain;
    for h in ["Bearer nonsense".to_owned(), format!("Bearer {unknown}")] {
        let (s, b, _) = gw.influx(Some(("authorization", &h)), line).await;
        assert_eq!((s, b.as_str()), (401, body.as_str()));
    }
    // Bob may not write this database: 403 on every protocol path.
    let (k, v) = bearer(&bob);
    assert_eq!(gw.influx(Some((k, &v)), line).await.0, 403);
    let ndjson = http()
        .post(format!("{}/ingest/{db}/samples", gw.url))
        .header(k, &v)
        .header("content-type", "application/x-ndjson")
        .body("{\"metric\":\"m\",\"series_id\":1,\"timestamp\":1700000000,\"value\":1}\n")
        .send()
        .await
        .expect("send");
    assert_eq!(ndjson.status(), 403);
    let insert = http()
        .post(format!(
            "{}/?query=INSERT%20INTO%20{db}.samples%20FORMAT%20JSONEachRow",
            gw.url
        ))
        .header(k, &v)
        .body("{\"metric\":\"m\",\"series_id\":1,\"timestamp\":1700000000,\"value\":1}\n")
        .send()
        .await
        .expect("send");
    assert_eq!(insert.status(), 403);
    let ping = http()
        .get(format!("{}/", gw.url))
        .header(k, &v)
        .send()
        .await
        .expect("send");
    assert_eq!(
        ping.status(),
        200,
        "the ClickHouse client ping works for tenants"
    );
    let read = http()
        .get(format!("{}/?query=SELECT%201", gw.url))
        .header(k, &v)
        .send()
        .await
        .expect("send");
    assert_eq!(
        read.status(),
        403,
        "tenants may not read through the gateway"
    );

    // Alice writes (Bearer, InfluxDB 2's `Token`, Prometheus-style Basic), and cannot write in
    // bob's name or into a system table.
    let (k, v) = bearer(&alice);
    let (s, b, _) = gw.influx(Some((k, &v)), line).await;
    assert_eq!(s, 204, "{b}");
    let token_hdr = format!("Token {alice}");
    let (s, b, _) = gw
        .influx(
            Some(("authorization", &token_hdr)),
            "auth_probe,host=b value=2 1700000000\n",
        )
        .await;
    assert_eq!(s, 204, "{b}");
    let basic = http()
        .post(format!("{}/write?precision=s", gw.url))
        .basic_auth("prometheus", Some(&alice))
        .body("auth_probe,host=c value=3 1700000000\n")
        .send()
        .await
        .expect("send");
    assert_eq!(basic.status(), 204);
    let spoof = http()
        .post(format!("{}/ingest/{db}/samples", gw.url))
        .header(k, &v)
        .header("content-type", "application/x-ndjson")
        .body("{\"tenant\":\"bob\",\"metric\":\"m\",\"series_id\":1,\"timestamp\":1700000000,\"value\":1}\n")
        .send()
        .await
        .expect("send");
    assert_eq!(
        spoof.status(),
        200,
        "{}",
        spoof.text().await.unwrap_or_default()
    );
    let system = http()
        .post(format!("{}/ingest/system/tables", gw.url))
        .header(k, &v)
        .header("content-type", "application/x-ndjson")
        .body("{\"name\":\"x\"}\n")
        .send()
        .await
        .expect("send");
    assert_eq!(system.status(), 403);

    // Revoked: 401 once the cache entry expires.
    let key_id = chgate_gateway::auth::token::parse(&alice)
        .expect("format")
        .key_id;
    let c = pg.connect().await.expect("connect");
    assert_eq!(
        store::revoke(&c, "alice", Some(&key_id))
            .await
            .expect("revoke"),
        1
    );
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert_eq!(gw.influx(Some((k, &v)), line).await.0, 401);

    gw.stop().await;
    assert_eq!(
        tenant_rows(rig, &db, "alice").await,
        4,
        "3 Influx lines + 1 NDJSON row"
    );
    assert_eq!(
        tenant_rows(rig, &db, "bob").await,
        0,
        "nothing in bob's name"
    );
    assert_eq!(
        tenant_rows(rig, &db, "").await,
        0,
        "nothing unauthenticated"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn quota_exceeded_gets_429_with_retry_after_and_other_tenants_are_unaffected() {
    let rig = rig().await;
    let db = migrated_db(rig, "gw_quota");
    let pg = tenants_db(rig).await;
    let grant = format!("{db}.*");
    let quota = Quota {
        rows_per_second: Some(10),
        max_body_bytes: Some(4096),
    };
    let slow = tenant(&pg, "slow", &[&grant], quota).await;
    let fast = tenant(&pg, "fast", &[&grant], Quota::default()).await;
    let gw = gateway(rig, &db, pg, Duration::from_secs(10)).await;
    let lines = |n: usize, tag: &str| -> String {
        (0..n)
            .map(|i| format!("quota_probe,t={tag},i={i} value={i} 1700000000\n"))
            .collect()
    };
    let (ks, vs) = bearer(&slow);
    let (kf, vf) = bearer(&fast);
    // The first request overdraws the bucket (60 rows at 10 rows/s): accepted, then in debt.
    assert_eq!(gw.influx(Some((ks, &vs)), &lines(60, "s")).await.0, 204);
    let (s, body, retry) = gw.influx(Some((ks, &vs)), &lines(1, "s2")).await;
    assert_eq!(s, 429, "{body}");
    let retry: u64 = retry.expect("Retry-After").parse().expect("seconds");
    assert!((1..=6).contains(&retry), "Retry-After {retry}");
    // Another tenant is unaffected meanwhile.
    for i in 0..5 {
        let (s, b, _) = gw
            .influx(Some((kf, &vf)), &lines(50, &format!("f{i}")))
            .await;
        assert_eq!(s, 204, "{b}");
    }
    // The tenant's body limit: 413.
    let big = "x".repeat(5000);
    assert_eq!(
        gw.influx(Some((kf, &vf)), &big).await.0,
        400,
        "fast has no body quota"
    );
    assert_eq!(gw.influx(Some((ks, &vs)), &big).await.0, 413);
    gw.stop().await;
    assert_eq!(tenant_rows(rig, &db, "slow").await, 60);
    assert_eq!(tenant_rows(rig, &db, "fast").await, 250);
}

/// ClickHouse-format inserts the gateway forwards unparsed (CSV, RowBinary, Native) are counted
/// and charged to the tenant's row quota before they are sent: within quota they land, in debt
/// they get 429 and write nothing, and a truncated body gets 400 naming the byte offset.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clickhouse_format_inserts_are_counted_against_the_tenant_quota() {
    let rig = rig().await;
    let db = rig.unique_name("gw_chq");
    crate::chcompat::kv_table(rig, &db).await;
    let pg = tenants_db(rig).await;
    let grant = format!("{db}.*");
    let quota = Quota {
        rows_per_second: Some(20),
        max_body_bytes: None,
    };
    let token = tenant(&pg, "chq", &[&grant], quota).await;
    let gw = gateway(rig, &db, pg, Duration::from_secs(10)).await;
    let (k, v) = bearer(&token);
    let auth = (k, v.as_str());
    let cols = [
        Column::parse("k", "UInt64").expect("type"),
        Column::parse("v", "String").expect("type"),
    ];
    let rows = |keys: std::ops::Range<u64>| -> Vec<Vec<Value>> {
        keys.map(|i| vec![Value::UInt(i), Value::str(&format!("r{i}"))])
            .collect()
    };
    let insert_rb = format!("INSERT INTO {db}.kv (k, v) FORMAT RowBinary");
    let insert_csv = format!("INSERT INTO {db}.kv FORMAT CSV");

    // 60 CSV rows, every third with a quoted newline (one row, not two): admitted with a full
    // bucket of 20, leaving the tenant 40 rows (2 s) in debt.
    let csv: String = (0..60u64)
        .map(|i| {
            if i % 3 == 0 {
                format!("{i},\"line\nbreak\"\n")
            } else {
                format!("{i},c{i}\n")
            }
        })
        .collect();
    let (s, body, _) = gw.clickhouse(auth, &insert_csv, csv.into_bytes()).await;
    assert_eq!(s, 200, "{body}");
    // In debt: a RowBinary insert is refused before anything is sent.
    let rb = rowbinary::encode_rows(&cols, &rows(5000..5003)).to_vec();
    let (s, body, retry) = gw.clickhouse(auth, &insert_rb, rb).await;
    assert_eq!(s, 429, "{body}");
    let retry: u64 = retry.expect("Retry-After").parse().expect("seconds");
    assert!(
        (1..=3).contains(&retry),
        "40 rows of debt at 20 rows/s: {retry}"
    );
    // A truncated body is refused as such (counting comes first), naming where it ends.
    let mut cut = rowbinary::encode_rows(&cols, &rows(6000..6002)).to_vec();
    cut.pop();
    let (s, body, _) = gw.clickhouse(auth, &insert_rb, cut).await;
    assert_eq!(s, 400, "{body}");
    assert!(body.contains("byte offset"), "{body}");

    // Rows inline in the `query` parameter would escape the count: refused.
    let inline = format!("{insert_csv}\n6100,inline\n");
    let (s, body, _) = gw.clickhouse(auth, &inline, Vec::new()).await;
    assert_eq!(s, 400, "{body}");

    // Once the debt is repaid, 50 RowBinary rows land (and put the tenant in debt again) ...
    tokio::time::sleep(Duration::from_secs(retry)).await;
    let rb = rowbinary::encode_rows(&cols, &rows(1000..1050)).to_vec();
    let (s, body, _) = gw.clickhouse(auth, &insert_rb, rb).await;
    assert_eq!(s, 200, "{body}");
    // ... so the next CSV and Native inserts get 429.
    let (s, body, retry) = gw.clickhouse(auth, &insert_csv, b"7000,x\n".to_vec()).await;
    assert_eq!(s, 429, "{body}");
    assert!(retry.is_some(), "Retry-After on 429");
    let native = native::encode_rows(&cols, &rows(7001..7003)).to_vec();
    let insert_native = format!("INSERT INTO {db}.kv FORMAT Native");
    let (s, body, _) = gw.clickhouse(auth, &insert_native, native).await;
    assert_eq!(s, 429, "{body}");
    gw.stop().await;

    let landed: u64 = per_shard_counts(rig, &format!("{db}.kv_local"), "1")
        .await
        .iter()
        .sum();
    assert_eq!(
        landed, 110,
        "60 CSV rows and 50 RowBinary rows, nothing refused"
    );
    let refused: u64 = per_shard_counts(rig, &format!("{db}.kv_local"), "k >= 5000")
        .await
        .iter()
        .sum();
    assert_eq!(refused, 0, "refused inserts wrote nothing");
    let multiline: u64 = per_shard_counts(rig, &format!("{db}.kv_local"), "v = 'line\\nbreak'")
        .await
        .iter()
        .sum();
    assert_eq!(multiline, 20, "quoted newlines stayed inside their values");
}

/// A TCP proxy in front of PostgreSQL that the test can cut (failure injection on a real server).
struct Proxy {
    port: u16,
    down: Arc<AtomicBool>,
    task: tokio::task::JoinHandle<()>,
}

async fn proxy(target: String) -> Proxy {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let down = Arc::new(AtomicBool::new(false));
    let flag = down.clone();
    let task = tokio::spawn(async move {
        let mut conns = tokio::task::JoinSet::new();
        loop {
            let Ok((mut inbound, _)) = listener.accept().await else {
                break;
            };
            if flag.load(Ordering::SeqCst) {
                conns.abort_all();
                continue;
            }
            let target = target.clone();
            let flag = flag.clone();
            conns.spawn(async move {
                if let Ok(mut out) = tokio::net::TcpStream::connect(&target).await {
                    tokio::select! {
                        _ = tokio::io::copy_bidirectional(&mut inbound, &mut out) => {}
                        _ = async { while !flag.load(Ordering::SeqCst) {
                            tokio::time::sleep(Duration::from_millis(20)).await;
                        } } => {}
                    }
                }
            });
        }
    });
    Proxy { port, down, task }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn known_tokens_keep_working_while_postgres_is_unreachable() {
    let rig = rig().await;
    let db = migrated_db(rig, "gw_pgdown");
    let mut pg = tenants_db(rig).await;
    let token = tenant(&pg, "steady", &[&format!("{db}.*")], Quota::default()).await;
    let p = proxy(format!("{}:{}", pg.host, pg.port)).await;
    pg.port = p.port;
    let gw = gateway(rig, &db, pg, Duration::from_millis(100)).await;
    let (k, v) = bearer(&token);
    let line = "pgdown_probe,host=a value=1 1700000000\n";
    assert_eq!(gw.influx(Some((k, &v)), line).await.0, 204);
    p.down.store(true, Ordering::SeqCst);
    tokio::time::sleep(Duration::from_millis(300)).await;
    // Past the TTL with PostgreSQL unreachable: the known token is served from the stale cache.
    let (s, b, _) = gw
        .influx(Some((k, &v)), "pgdown_probe,host=b value=2 1700000000\n")
        .await;
    assert_eq!(s, 204, "{b}");
    // A token never seen cannot be checked: 503 (retry later), not 401.
    let unknown = format!("Bearer {}", chgate_gateway::auth::token::generate().plain);
    let (s, _, retry) = gw.influx(Some(("authorization", &unknown)), line).await;
    assert_eq!(s, 503);
    assert!(retry.is_some(), "503 carries Retry-After");
    gw.stop().await;
    p.task.abort();
    assert_eq!(tenant_rows(rig, &db, "steady").await, 2);
}

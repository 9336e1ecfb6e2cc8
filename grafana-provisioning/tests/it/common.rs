//! Shared helpers: a fresh PostgreSQL database per test with Grafana's table layout, the
//! independent Python implementation of Grafana's crypto, the spec and key of the rig.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex, OnceLock};

use chgate_grafana::{DatasourceSpec, PgTarget};
use chgate_harness::Rig;
use chgate_topology::render::Addressing;
use chgate_topology::Secret;
use tokio_postgres::Client;

/// Grafana's real `data_source` + `secrets` DDL.
pub const GRAFANA_SCHEMA: &str = include_str!("grafana_schema.sql");

/// Which of Grafana's tables a test database gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layout {
    /// None: Grafana never started.
    Empty,
    /// `data_source` only: Grafana before 8.5.
    DataSourceOnly,
    /// `data_source` and `secrets`: current Grafana.
    Full,
}

/// The crate directory.
pub fn crate_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// A database of its own for one test.
pub struct TestDb {
    /// Its name.
    pub name: String,
    /// Target for the code under test (from the topology: over TLS on the rig).
    pub target: PgTarget,
    /// A direct connection for assertions and fixtures (over TLS on the rig, [`Rig::postgres`]).
    pub client: Client,
}

#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let mut v = self.0.lock().map_err(|_| std::io::ErrorKind::Other)?;
        v.extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

static LOGS: OnceLock<Captured> = OnceLock::new();

/// Installs (once) a global subscriber capturing every log line of this test binary, and returns
/// what was captured so far. A global subscriber, not a scoped one: tests run concurrently and
/// tracing caches per-callsite interest process-wide, so scoped capture loses events.
pub fn captured_logs() -> String {
    let c = LOGS.get_or_init(|| {
        let c = Captured::default();
        let sink = c.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_max_level(tracing::Level::TRACE)
            .with_ansi(false)
            .with_writer(move || sink.clone())
            .finish();
        tracing::subscriber::set_global_default(subscriber).expect("first global subscriber");
        c
    });
    let bytes = c.0.lock().map(|v| v.clone()).unwrap_or_default();
    String::from_utf8_lossy(&bytes).into_owned()
}

/// Creates a fresh database with `layout` (and makes sure logs are captured).
pub async fn fresh_db(rig: &Rig, layout: Layout) -> TestDb {
    captured_logs();
    let name = rig.unique_name("grafana");
    let admin = rig.postgres("postgres").await;
    admin
        .batch_execute(&format!("CREATE DATABASE \"{name}\""))
        .await
        .unwrap_or_else(|e| panic!("create database {name}: {}", pg_err(&e)));
    let client = rig.postgres(&name).await;
    create_tables(&client, layout).await;
    TestDb {
        target: rig_target(rig).with_database(&name),
        name,
        client,
    }
}

/// The rig's Grafana database as `chgate grafana provision` reaches it: from the topology, over
/// TLS verified against `[tls] ca` when the rig has `[tls]` (it does).
pub fn rig_target(rig: &Rig) -> PgTarget {
    PgTarget::from_topology(rig.topology(), rig.state_dir()).expect("pg target from topology")
}

/// The server's message of a database error (the driver's `Display` says only "db error").
pub fn pg_err(e: &tokio_postgres::Error) -> String {
    e.as_db_error().map_or_else(
        || e.to_string(),
        |d| format!("{}: {}", d.code().code(), d.message()),
    )
}

/// Runs Grafana's DDL for `layout` on `client`.
pub async fn create_tables(client: &Client, layout: Layout) {
    let (data_source, secrets) = GRAFANA_SCHEMA
        .split_once("-- @secrets")
        .expect("marker in grafana_schema.sql");
    let ddl = match layout {
        Layout::Empty => String::new(),
        Layout::DataSourceOnly => data_source.to_owned(),
        // The rest of the marker line is a comment too.
        Layout::Full => format!("{data_source}--{secrets}"),
    };
    client
        .batch_execute(&ddl)
        .await
        .unwrap_or_else(|e| panic!("Grafana DDL: {}", pg_err(&e)));
}

impl TestDb {
    /// Drops the database (at the end of a passing test).
    pub async fn drop(self) {
        drop(self.client);
        let admin = chgate_harness::rig().await.postgres("postgres").await;
        let sql = format!("DROP DATABASE IF EXISTS \"{}\" WITH (FORCE)", self.name);
        admin.batch_execute(&sql).await.ok();
    }

    /// All `data_source` rows as JSON text, for "no plaintext" checks.
    pub async fn all_rows_text(&self) -> String {
        let mut out = String::new();
        for table in ["data_source", "secrets"] {
            let sql = format!(
                "SELECT coalesce(string_agg(row_to_json(t)::text, '\n'), '') FROM {table} t"
            );
            if let Ok(row) = self.client.query_one(&sql, &[]).await {
                out.push_str(&row.get::<_, String>(0));
            }
        }
        out
    }

    /// (id, uid, name, version) of every datasource row.
    pub async fn datasources(&self) -> Vec<(i32, String, String, i32)> {
        self.client
            .query(
                "SELECT id, uid, name, version FROM data_source ORDER BY id",
                &[],
            )
            .await
            .expect("select data_source")
            .iter()
            .map(|r| (r.get(0), r.get(1), r.get(2), r.get(3)))
            .collect()
    }

    /// (namespace, value) of every `secrets` row.
    pub async fn secrets(&self) -> Vec<(String, String)> {
        self.client
            .query("SELECT namespace, value FROM secrets ORDER BY id", &[])
            .await
            .expect("select secrets")
            .iter()
            .map(|r| (r.get(0), r.get(1)))
            .collect()
    }

    /// The stored `secure_json_data.password` text.
    pub async fn stored_password_text(&self) -> String {
        let row = self
            .client
            .query_one("SELECT secure_json_data FROM data_source", &[])
            .await
            .expect("one row");
        let sjd: String = row.get(0);
        let v: serde_json::Value = serde_json::from_str(&sjd).expect("secure_json_data is JSON");
        v["password"].as_str().expect("password key").to_owned()
    }
}

/// The rig's datasource spec (local addressing, the rig's ClickHouse password).
pub fn rig_spec(rig: &Rig) -> DatasourceSpec {
    DatasourceSpec::from_topology(rig.topology(), Addressing::Local, rig.clickhouse_password())
}

/// The rig's Grafana `secret_key`.
pub fn rig_secret_key(rig: &Rig) -> Secret {
    rig.topology()
        .grafana
        .secret_key
        .resolve(rig.state_dir())
        .expect("grafana secret key")
}

/// Runs the independent Python implementation; `Err(stderr)` when it refuses.
pub fn python(req: &serde_json::Value) -> Result<String, String> {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/it/grafana_crypto.py");
    let mut child = Command::new("python3")
        .arg(&script)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("python3 runs (the test needs python3 with the `cryptography` package)");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(req.to_string().as_bytes())
        .expect("write request");
    let out = child.wait_with_output().expect("python finishes");
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(
        !stderr.contains("ModuleNotFoundError"),
        "python3 lacks a module: {stderr}"
    );
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(stderr)
    }
}

/// Decrypts with the independent implementation; panics when it refuses.
pub fn py_decrypt(secret_key: &str, text: &str, wrapping: &str) -> String {
    python(&serde_json::json!({
        "op": "decrypt", "secret_key": secret_key, "text": text, "wrapping": wrapping
    }))
    .unwrap_or_else(|e| panic!("independent decryption refused {wrapping} value: {e}"))
}

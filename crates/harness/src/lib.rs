//! # chgate-harness
//!
//! Live tests call [`rig()`]: the first call in a test process brings the shared test rig up (or
//! attaches to it when `.ci/run` or another test process already did — `up` is idempotent and
//! serialised by a lock file), later calls reuse it. Each test takes its own database or table name
//! from [`Rig::unique_name`]; nothing else is shared. A failing check can attach server log tails
//! with [`Rig::log_tail`].
//!
//! The rig's topology is `crates/harness/rig.toml` (base port 28000, state in
//! `/tmp/chgate-test-rig`), overridable with `CHGATE_TEST_TOPOLOGY`.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};

use chgate_clickhouse_http::Client;
use chgate_localstack::plan::GatewayCommand;
use chgate_localstack::{probe, Stack, UpOptions};
use chgate_topology::{ClickHouseNode, Secret, Topology};
use tokio::sync::OnceCell;

pub mod tls;

/// The shared live rig of this test process.
#[derive(Debug)]
pub struct Rig {
    stack: Stack,
    ch_password: Secret,
    pg_password: Secret,
}

static RIG: OnceCell<Rig> = OnceCell::const_new();
static FAULT: tokio::sync::RwLock<()> = tokio::sync::RwLock::const_new(());
static COUNTER: AtomicU32 = AtomicU32::new(0);

/// The `chgate` binary that runs the rig's gateways: `CHGATE_BIN`, else the one cargo built next
/// to this test executable (`target/<profile>/chgate`).
pub fn chgate_bin() -> PathBuf {
    if let Some(p) = std::env::var_os("CHGATE_BIN") {
        return PathBuf::from(p);
    }
    let exe = std::env::current_exe().unwrap_or_default();
    // target/<profile>/deps/<test> -> target/<profile>/chgate
    let candidate = exe
        .parent()
        .and_then(Path::parent)
        .map(|d| d.join("chgate"))
        .unwrap_or_default();
    assert!(
        candidate.exists(),
        "no chgate binary at {} (build it with `cargo build -p chgate`, or set CHGATE_BIN)",
        candidate.display()
    );
    candidate
}

/// The topology file the harness uses.
pub fn topology_path() -> PathBuf {
    std::env::var_os("CHGATE_TEST_TOPOLOGY")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("rig.toml"))
}

/// Starts or attaches to the rig. Panics with the reason and log tails when it cannot be brought up:
/// a live test must fail loudly, never skip.
pub async fn rig() -> &'static Rig {
    RIG.get_or_init(|| async {
        let path = topology_path();
        let loaded = chgate_topology::load(&path)
            .unwrap_or_else(|e| panic!("test rig topology {}: {e}", path.display()));
        let stack = Stack::with_gateways(
            &loaded,
            &GatewayCommand {
                exe: chgate_bin(),
                topology: path.clone(),
            },
        );
        let progress = |m: &str| eprintln!("[test rig] {m}");
        if let Err(e) = stack.up(UpOptions::default(), &progress).await {
            let logs: String = ["clickhouse", "keeper", "postgres", "haproxy"]
                .iter()
                .map(|r| stack.log_tail(r, 15))
                .collect();
            panic!("cannot bring the test rig up: {e}\n{logs}");
        }
        let ch_password = stack.clickhouse_password().expect("clickhouse password");
        let pg_password = stack.postgres_password().expect("postgres password");
        Rig {
            stack,
            ch_password,
            pg_password,
        }
    })
    .await
}

impl Rig {
    /// The rig's topology.
    pub fn topology(&self) -> &Topology {
        self.stack.topology()
    }

    /// The rig's state directory.
    pub fn state_dir(&self) -> &Path {
        self.stack.state_dir()
    }

    /// The underlying stack (start/stop single services).
    pub fn stack(&self) -> &Stack {
        &self.stack
    }

    /// The ClickHouse password.
    pub fn clickhouse_password(&self) -> Secret {
        self.ch_password.clone()
    }

    /// The PostgreSQL password of the superuser role `postgres.user`.
    pub fn postgres_password(&self) -> Secret {
        self.pg_password.clone()
    }

    /// ClickHouse nodes, shard-major.
    pub fn nodes(&self) -> Vec<ClickHouseNode> {
        self.topology().clickhouse_nodes()
    }

    /// A client for node `i` (shard-major: 0 = ch-s1r1, 1 = ch-s1r2, ...).
    pub fn clickhouse(&self, i: usize) -> Client {
        let nodes = self.nodes();
        let node = nodes
            .get(i)
            .unwrap_or_else(|| panic!("no ClickHouse node {i}"));
        probe::clickhouse_client(self.topology(), node.http_port, &self.ch_password)
            .unwrap_or_else(|e| panic!("client for {}: {e}", node.name))
    }

    /// Keeper connect string, `host:port,host:port,...`.
    pub fn keeper_hosts(&self) -> String {
        self.stack.endpoints().keeper
    }

    /// DSN of the PostgreSQL superuser role with its password (for tests only).
    pub fn postgres_dsn(&self) -> String {
        let t = self.topology();
        format!(
            "host={} port={} user={} password={} dbname=postgres",
            t.network.listen,
            t.postgres_port(),
            t.postgres.user,
            self.pg_password.expose()
        )
    }

    /// A session of the PostgreSQL superuser role on database `db`, opened as chgate opens its
    /// own ([`probe::postgres_client`]: TLS verified against the topology CA when it has `[tls]`).
    /// Panics with the server's log tail when it cannot connect.
    pub async fn postgres(&self, db: &str) -> tokio_postgres::Client {
        probe::postgres_client(self.topology(), &self.pg_password, db)
            .await
            .unwrap_or_else(|e| panic!("connect to {db}: {e}\n{}", self.log_tail("postgres")))
    }

    /// A name no other test (in any process) uses: `prefix_<pid>_<n>_<random>`.
    pub fn unique_name(&self, prefix: &str) -> String {
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        format!(
            "{prefix}_{}_{n}_{:04x}",
            std::process::id(),
            rand::random::<u16>()
        )
    }

    /// For tests that stop or restart processes (or assert on the whole rig's process set):
    /// waits until no other test of this process holds [`Rig::shared`] or this guard.
    pub async fn exclusive(&self) -> tokio::sync::RwLockWriteGuard<'static, ()> {
        FAULT.write().await
    }

    /// For tests that need every server up while they run (ON CLUSTER DDL fails while a Keeper
    /// node is being stopped): no [`Rig::exclusive`] test runs meanwhile.
    pub async fn shared(&self) -> tokio::sync::RwLockReadGuard<'static, ()> {
        FAULT.read().await
    }

    /// Stops one service (`ch-s1r2`, `keeper-2`, ...) for a fault test.
    pub fn stop_node(&self, name: &str) {
        self.stack
            .stop_service(name)
            .unwrap_or_else(|e| panic!("stop {name}: {e}"));
    }

    /// Starts a stopped service again (no readiness wait).
    pub fn start_node(&self, name: &str) {
        self.stack
            .start_service(name)
            .unwrap_or_else(|e| panic!("start {name}: {e}"));
    }

    /// Applies the shipped ClickHouse migrations to database `db` with `chgate migrate up`
    /// (PostgreSQL side skipped). Panics with the migrator's output when it fails.
    pub fn migrate(&self, db: &str) {
        let out = std::process::Command::new(chgate_bin())
            .arg("--config")
            .arg(topology_path())
            .args(["migrate", "--database", db, "--skip-postgres", "up"])
            .output()
            .expect("run chgate migrate");
        assert!(
            out.status.success(),
            "chgate migrate --database {db} up failed:\n{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// Base URL of gateway `i` (0-based), e.g. `http://127.0.0.1:28441`.
    pub fn gateway_url(&self, i: usize) -> String {
        self.stack
            .endpoints()
            .gateways
            .get(i)
            .cloned()
            .unwrap_or_else(|| panic!("no gateway {i}"))
    }

    /// HAProxy's gateway front URL.
    pub fn haproxy_gateway_url(&self) -> String {
        self.stack.endpoints().gateway_url
    }

    /// The last lines of a service's logs, for assertion messages.
    pub fn log_tail(&self, name: &str) -> String {
        self.stack.log_tail(name, 40)
    }
}

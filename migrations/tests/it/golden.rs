//! Golden files: the exact DDL the shipped migrations and the ledger bootstrap send for the
//! default topology. A change to any of them shows up as a diff in review. Regenerate with
//! `UPDATE_GOLDEN=1 cargo test -p chgate-migrations --test it golden`.

use std::path::PathBuf;
use std::time::Duration;

use chgate_migrations::cluster::Cluster;
use chgate_migrations::ledger;
use chgate_migrations::source::MigrationSet;
use chgate_migrations::sql::Placeholders;
use chgate_topology::{LoadedTopology, SecretRef, Topology};

fn golden(name: &str, actual: &str) {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/golden")
        .join(name);
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        std::fs::write(&path, actual).expect("write golden");
        return;
    }
    let expected = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{}: {e} (run with UPDATE_GOLDEN=1)", path.display()));
    assert!(
        expected == actual,
        "{} differs from the generated DDL; if intended, rerun with UPDATE_GOLDEN=1\n--- generated ---\n{actual}",
        path.display()
    );
}

#[test]
fn shipped_ddl_for_the_default_topology() {
    let set = MigrationSet::embedded().expect("shipped set");
    let ph = Placeholders::default();
    let mut out = String::new();
    for (version, variant, file) in set.files() {
        out.push_str(&format!(
            "-- V{version} {} ({}, {})\n",
            file.file_name,
            variant.as_str(),
            file.checksum
        ));
        for st in &file.statements {
            out.push_str(&ph.apply(&st.sql).expect("placeholders"));
            out.push_str(";\n\n");
        }
    }
    golden("clickhouse_default.sql", &out);
}

#[test]
fn ledger_bootstrap_ddl_for_the_default_topology() {
    std::env::set_var("CHGATE_TEST_GOLDEN_PW", "unused");
    let mut topology = Topology::default();
    topology.clickhouse.password = SecretRef::Env("CHGATE_TEST_GOLDEN_PW".into());
    let loaded = LoadedTopology {
        topology,
        state_dir: std::env::temp_dir(),
    };
    let cluster = Cluster::from_topology(&loaded, None, Duration::from_secs(5)).expect("cluster");
    golden(
        "ledger_bootstrap.sql",
        &(ledger::bootstrap_sql(&cluster).join(";\n\n") + ";\n"),
    );
}

//! Starter dashboards: type-checked against `@grafana/schema`'s `Dashboard` type with `tsc`, and
//! every panel's SQL run on the rig against the shipped schema (fallback variant on 18.16).

use std::path::{Path, PathBuf};
use std::process::Command;

use chgate_grafana::render::{localize_dashboard, DASHBOARDS};
use chgate_grafana::DatasourceSpec;
use chgate_topology::render::Addressing;
use chgate_topology::Secret;
use serde_json::Value;

use crate::common::crate_dir;

fn schema_check_dir() -> PathBuf {
    crate_dir().join("schema-check")
}

/// Installs the locked npm packages when `node_modules` is absent (fresh clone / CI).
fn ensure_npm_packages(dir: &Path) -> PathBuf {
    let tsc = dir.join("node_modules/.bin/tsc");
    if !tsc.exists() {
        let out = Command::new("npm")
            .args(["ci", "--no-audit", "--no-fund"])
            .current_dir(dir)
            .output()
            .expect("npm is installed");
        assert!(
            out.status.success(),
            "npm ci: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    tsc
}

/// Type-checks each `(name, json)` as a `Dashboard`; returns tsc's output on failure.
fn typecheck(dashboards: &[(String, String)]) -> Result<(), String> {
    let dir = schema_check_dir();
    let tsc = ensure_npm_packages(&dir);
    // Inside schema-check/ so `@grafana/schema` resolves from its node_modules (gitignored).
    let work = tempfile::Builder::new()
        .prefix("tmp-")
        .tempdir_in(&dir)
        .expect("temp dir");
    let mut files = Vec::new();
    for (name, json) in dashboards {
        let ts = format!(
            "import type {{ Dashboard }} from '@grafana/schema';\n\
             export const dashboard: Dashboard = {json};\n"
        );
        let file = format!("{}.ts", name.trim_end_matches(".json"));
        std::fs::write(work.path().join(&file), ts).expect("write ts");
        files.push(file);
    }
    let tsconfig = serde_json::json!({
        "compilerOptions": {
            "strict": true, "noEmit": true, "skipLibCheck": true, "target": "es2022",
            "module": "esnext", "moduleResolution": "bundler", "types": []
        },
        "files": files
    });
    std::fs::write(work.path().join("tsconfig.json"), tsconfig.to_string()).expect("tsconfig");
    let out = Command::new(&tsc)
        .args(["-p", "tsconfig.json"])
        .current_dir(work.path())
        .output()
        .expect("tsc runs");
    if out.status.success() {
        Ok(())
    } else {
        Err(String::from_utf8_lossy(&out.stdout).into_owned())
    }
}

fn shipped() -> Vec<(String, String)> {
    DASHBOARDS
        .iter()
        .map(|(n, j)| ((*n).to_owned(), (*j).to_owned()))
        .collect()
}

#[test]
fn shipped_dashboards_typecheck_against_grafana_schema() {
    typecheck(&shipped())
        .unwrap_or_else(|e| panic!("dashboards do not match @grafana/schema:\n{e}"));
}

#[test]
fn a_broken_dashboard_fails_the_typecheck() {
    // The check must be able to fail: a misspelt key and a panel without `type`.
    let mut v: Value = serde_json::from_str(DASHBOARDS[0].1).expect("json");
    v["schemaVersoin"] = Value::from(39);
    if let Some(p) = v["panels"][0].as_object_mut() {
        p.remove("type");
    }
    let err = typecheck(&[("broken.json".into(), v.to_string())]).expect_err("must fail");
    assert!(
        err.contains("schemaVersoin") || err.contains("error TS"),
        "{err}"
    );
}

/// Expands the plugin's macros for a fixed time range, as grafana-clickhouse-datasource does.
fn expand(sql: &str, vars: &[(String, String)], from: i64, to: i64, step: i64) -> String {
    let mut s = sql.to_owned();
    for (name, value) in vars {
        s = s.replace(&format!("${{{name}}}"), value);
    }
    s = replace_macro(&s, "$__timeFilter(", |c| {
        format!("{c} >= toDateTime({from}) AND {c} <= toDateTime({to})")
    });
    s = replace_macro(&s, "$__timeInterval(", |c| {
        format!("toStartOfInterval(toDateTime({c}), INTERVAL {step} second)")
    });
    s.replace("$__interval_s", &step.to_string())
}

fn replace_macro(sql: &str, head: &str, f: impl Fn(&str) -> String) -> String {
    let mut out = String::new();
    let mut rest = sql;
    while let Some(i) = rest.find(head) {
        out.push_str(&rest[..i]);
        let after = &rest[i + head.len()..];
        let end = after.find(')').expect("macro closes");
        out.push_str(&f(after[..end].trim()));
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    out
}

/// The shipped schema's fallback DDL (the rig is ClickHouse 18.16) for `database`.
fn fallback_ddl(rig: &chgate_harness::Rig, database: &str) -> Vec<String> {
    let t = rig.topology();
    let dir = crate_dir().join("../migrations/clickhouse");
    let mut statements = vec![format!(
        "CREATE DATABASE IF NOT EXISTS {database} ON CLUSTER {}",
        t.cluster.name
    )];
    for file in ["V1__samples.fallback.sql", "V2__series.fallback.sql"] {
        let text = std::fs::read_to_string(dir.join(file)).expect("shipped schema file");
        let text = text
            .replace("${database}", database)
            .replace("${cluster}", &t.cluster.name)
            .replace("${keeper_root}", &t.clickhouse.keeper_root);
        let body: String = text
            .lines()
            .filter(|l| !l.trim_start().starts_with("--"))
            .collect::<Vec<_>>()
            .join("\n");
        statements.extend(
            body.split(';')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::to_owned),
        );
    }
    statements
}

/// Every panel query of the shipped dashboards, localized for `t` and macro-expanded for the hour
/// before `now`: (`dashboard / panel title`, SQL).
fn panel_queries(t: &chgate_topology::Topology, now: i64) -> Vec<(String, String)> {
    let spec = DatasourceSpec::from_topology(t, Addressing::Local, Secret::new("x"));
    let mut out = Vec::new();
    for (name, json) in DASHBOARDS {
        let v: Value = serde_json::from_str(&localize_dashboard(json, t, &spec)).expect("json");
        let vars: Vec<(String, String)> = v["templating"]["list"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|x| {
                let n = x["name"].as_str().unwrap_or_default().to_owned();
                (n, x["query"].as_str().unwrap_or_default().to_owned())
            })
            .collect();
        for panel in v["panels"].as_array().into_iter().flatten() {
            for target in panel["targets"].as_array().into_iter().flatten() {
                let raw = target["rawSql"].as_str().expect("rawSql");
                let title = panel["title"].as_str().unwrap_or_default();
                out.push((
                    format!("{name} / {title}"),
                    expand(raw, &vars, now - 3600, now + 60, 60),
                ));
            }
        }
    }
    out
}

/// The shipped modern schema as non-replicated twins (chdb has no Keeper and no cluster):
/// `ReplicatedX(path, replica, args)` → `X(args)`, `Distributed` → `Merge`, no `ON CLUSTER`.
fn modern_twin_ddl(database: &str) -> Vec<String> {
    let dir = crate_dir().join("../migrations/clickhouse");
    let mut out = vec![format!("CREATE DATABASE IF NOT EXISTS {database}")];
    for (file, local) in [
        ("V1__samples.sql", "samples_local"),
        ("V2__series.sql", "series_local"),
    ] {
        let text = std::fs::read_to_string(dir.join(file)).expect("shipped schema file");
        let body: String = text
            .lines()
            .filter(|l| !l.trim_start().starts_with("--"))
            .map(|l| twin_line(l, database, local))
            .collect::<Vec<_>>()
            .join("\n");
        out.extend(
            body.replace(" ON CLUSTER ${cluster}", "")
                .replace("${database}", database)
                .replace("${ttl_days}", "30")
                .split(';')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::to_owned),
        );
    }
    out
}

fn twin_line(line: &str, database: &str, local: &str) -> String {
    let Some(rest) = line.trim_start().strip_prefix("ENGINE = ") else {
        return line.to_owned();
    };
    if rest.starts_with("Distributed(") {
        return format!("ENGINE = Merge({database}, '^{local}$')");
    }
    let Some(engine) = rest.strip_prefix("Replicated") else {
        return line.to_owned();
    };
    let (name, args) = engine.split_once('(').unwrap_or((engine, ")"));
    // Drop the Keeper path and replica name: the first two arguments.
    let extra: Vec<&str> = args
        .trim_end_matches(')')
        .splitn(3, ',')
        .skip(2)
        .map(str::trim)
        .collect();
    format!("ENGINE = {name}({})", extra.join(", "))
}

#[test]
fn every_panel_query_runs_on_modern_clickhouse_via_chdb() {
    let mut t = chgate_topology::Topology::default();
    t.cluster.database = "dash_oracle".into();
    let now = 1_790_000_000_i64;
    let job = serde_json::json!({
        "ddl": modern_twin_ddl("dash_oracle"),
        "inserts": [format!(
            "INSERT INTO dash_oracle.samples_local VALUES ('', 'up', 1, toDateTime64({now}, 3), 1), \
             ('', 'up', 2, toDateTime64({now}, 3), 1)"
        )],
        "queries": panel_queries(&t, now)
            .into_iter()
            .map(|(name, sql)| serde_json::json!({ "name": name, "sql": sql }))
            .collect::<Vec<_>>(),
    });
    let dir = tempfile::tempdir().expect("tmp");
    let path = dir.path().join("job.json");
    std::fs::write(&path, job.to_string()).expect("write job");
    let out = Command::new("python3")
        .arg(crate_dir().join("tests/it/chdb_dashboards.py"))
        .arg(&path)
        .output()
        .expect("python3 runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "dashboard SQL fails on modern ClickHouse:\n{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains(" 0 failures"), "{stdout}");
    eprintln!("{stdout}");
}

#[tokio::test]
async fn every_panel_query_runs_on_the_rig_against_the_shipped_schema() {
    let rig = chgate_harness::rig().await;
    let ch = rig.clickhouse(0);
    let database = rig.unique_name("dash");
    for stmt in fallback_ddl(rig, &database) {
        ch.execute(&stmt)
            .await
            .unwrap_or_else(|e| panic!("{stmt}: {e}"));
    }
    let now = 1_790_000_000_i64; // fixed instant: 2026-09-21 UTC
    let insert = format!(
        "INSERT INTO {database}.samples (tenant, metric, series_id, timestamp, value) VALUES \
         ('', 'up', 1, toDateTime({now}), 1), ('', 'up', 2, toDateTime({now}), 1), \
         ('t1', 'chgate_rejected_rows_total', 3, toDateTime({now}), 5), \
         ('t1', 'chgate_rejected_rows_total', 3, toDateTime({now} + 10), 9), \
         ('t1', 'chgate_flush_seconds_sum', 4, toDateTime({now}), 1.0), \
         ('t1', 'chgate_flush_seconds_sum', 4, toDateTime({now} + 10), 1.5), \
         ('t1', 'chgate_flush_seconds_count', 5, toDateTime({now}), 10), \
         ('t1', 'chgate_flush_seconds_count', 5, toDateTime({now} + 10), 15)"
    );
    ch.query_with(&insert, &[("insert_distributed_sync", "1")])
        .await
        .unwrap_or_else(|e| panic!("insert: {e}"));

    let mut t = rig.topology().clone();
    t.cluster.database = database.clone();
    let queries = panel_queries(&t, now);
    for (name, sql) in &queries {
        let out = ch
            .query(sql)
            .await
            .unwrap_or_else(|e| panic!("{name}: {e}\n{sql}"));
        if name.ends_with("samples rows/s by shard") {
            assert!(out.contains("shard 1") && out.contains("shard 2"), "{out}");
        }
        if name.ends_with("gateway rejects, retries and failed flushes") {
            assert!(out.contains("chgate_rejected_rows_total\t4"), "{out}");
        }
        if name.ends_with("gateway flush latency (mean)") {
            assert!(
                out.trim_end().ends_with("\t0.1"),
                "0.5 s over 5 flushes: {out}"
            );
        }
    }
    let ran = queries.len();
    assert!(ran >= 12, "ran {ran} panel queries");
    let drop = format!(
        "DROP DATABASE IF EXISTS {database} ON CLUSTER {}",
        t.cluster.name
    );
    ch.execute(&drop).await.ok();
}

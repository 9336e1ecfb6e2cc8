//! Readiness: poll every probe until all pass or the deadline names what is not ready, then prove
//! replication end to end with a write to a `ReplicatedMergeTree` table on every shard.

use std::time::{Duration, Instant};

use chgate_clickhouse_http::{quote, Client};
use chgate_topology::Secret;

use crate::{probe, Stack, StackError};

/// Database the rig's own replication check lives in.
pub const CHECK_DB: &str = "chgate_rig";

/// Everything that is not ready right now, one line each (empty = ready).
pub async fn not_ready(stack: &Stack, ch: &Secret, pg: &Secret) -> Vec<String> {
    let t = stack.topology();
    let host = t.network.listen.to_string();
    let mut problems = Vec::new();
    let mut leaders = 0;
    for k in t.keeper_nodes() {
        match probe::keeper(&host, k.client_port).await {
            Ok((mode, _)) => leaders += usize::from(mode == "leader" || mode == "standalone"),
            Err(e) => problems.push(format!("{}: {e}", k.name)),
        }
    }
    if leaders == 0 {
        problems.push("keeper quorum: no leader elected yet".into());
    }
    for n in t.clickhouse_nodes() {
        let result = match probe::clickhouse_client(t, n.http_port, ch) {
            Ok(c) => probe::clickhouse(t, &c).await,
            Err(e) => Err(e),
        };
        if let Err(e) = result {
            problems.push(format!("{}: {e}", n.name));
        }
    }
    if let Err(e) = probe::postgres(t, pg).await {
        problems.push(e);
    }
    for svc in stack
        .services()
        .iter()
        .filter(|s| s.role == crate::plan::Role::Gateway)
    {
        let port = svc.ports.first().map_or(0, |p| p.1);
        if let Err(e) = probe::gateway(&host, port).await {
            problems.push(format!("{}: {e}", svc.name));
        }
    }
    match probe::haproxy(&host, t.haproxy_stats_port()).await {
        Err(e) => problems.push(e),
        // Ready means usable through HAProxy: its checks of the gateways' /readyz have passed
        // (until then it answers 503 "no server available").
        Ok(_)
            if stack
                .services()
                .iter()
                .any(|s| s.role == crate::plan::Role::Gateway) =>
        {
            if let Err(e) =
                probe::haproxy_backend_up(&host, t.haproxy_stats_port(), "gateways").await
            {
                problems.push(e);
            }
        }
        Ok(_) => {}
    }
    problems
}

/// Waits until the Keeper ensemble has a leader.
///
/// # Errors
/// [`StackError::NotReady`] naming the nodes that do not serve.
pub async fn wait_keeper(stack: &Stack, deadline: Instant) -> Result<(), StackError> {
    let start = Instant::now();
    let host = stack.topology().network.listen.to_string();
    loop {
        let mut problems = Vec::new();
        let mut leader = false;
        for k in stack.topology().keeper_nodes() {
            match probe::keeper(&host, k.client_port).await {
                Ok((mode, _)) => leader |= mode == "leader" || mode == "standalone",
                Err(e) => problems.push(format!("{}: {e}", k.name)),
            }
        }
        if leader {
            return Ok(());
        }
        problems.push("keeper quorum: no leader elected yet".into());
        if Instant::now() > deadline {
            return Err(StackError::NotReady {
                waited: start.elapsed(),
                not_ready: problems,
            });
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}

/// Processes that should run but do not; each is restarted (at most [`MAX_RESTARTS`] times per
/// `up`), since ClickHouse 18.16 may crash once while Keeper sessions settle.
fn revive(
    stack: &Stack,
    ch: &Secret,
    pg: &Secret,
    restarts: &mut Vec<String>,
    progress: &dyn Fn(&str),
) -> Vec<String> {
    let mut dead = Vec::new();
    for svc in stack.services() {
        if let crate::process::PidState::Running(_) =
            crate::process::pid_state(svc, stack.state_dir())
        {
            continue;
        }
        let tries = restarts.iter().filter(|n| **n == svc.name).count();
        if tries >= MAX_RESTARTS {
            dead.push(format!(
                "{}: exited and did not stay up; see `chgate local logs {}`",
                svc.name, svc.name
            ));
            continue;
        }
        restarts.push(svc.name.clone());
        progress(&format!(
            "{} exited; restarting it (see `chgate local logs {}`)",
            svc.name, svc.name
        ));
        if let Err(e) = stack.start_one(svc, ch, pg) {
            dead.push(e.to_string());
        }
    }
    dead
}

/// How often one `up` restarts a process that exited during startup.
pub const MAX_RESTARTS: usize = 2;

/// Waits until [`not_ready`] is empty and replication works.
///
/// # Errors
/// [`StackError::NotReady`] listing what is still not ready at the deadline.
pub async fn wait(
    stack: &Stack,
    ch: &Secret,
    pg: &Secret,
    deadline: Instant,
    progress: &dyn Fn(&str),
) -> Result<(), StackError> {
    let start = Instant::now();
    let mut last = Vec::new();
    let mut reported = start;
    let mut restarts = Vec::new();
    while Instant::now() < deadline {
        last = revive(stack, ch, pg, &mut restarts, progress);
        last.extend(not_ready(stack, ch, pg).await);
        if last.is_empty() {
            match replication_check(stack, ch).await {
                Ok(()) => return Ok(()),
                Err(e) => last = vec![e],
            }
        }
        if reported.elapsed() > Duration::from_secs(10) {
            progress(&format!("still waiting for: {}", last.join("; ")));
            reported = Instant::now();
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    Err(StackError::NotReady {
        waited: start.elapsed(),
        not_ready: last,
    })
}

fn client(stack: &Stack, http_port: u16, ch: &Secret) -> Result<Client, String> {
    probe::clickhouse_client(stack.topology(), http_port, ch)
}

/// Creates `chgate_rig.replication_check` ON CLUSTER, writes a fresh token to the first replica of
/// every shard and waits until every other replica of that shard has it.
///
/// # Errors
/// A message naming the shard/replica that did not get the row.
pub async fn replication_check(stack: &Stack, ch: &Secret) -> Result<(), String> {
    let t = stack.topology();
    let nodes = t.clickhouse_nodes();
    let first = nodes.first().ok_or("no ClickHouse nodes")?;
    let c = client(stack, first.http_port, ch)?;
    let cluster = &t.cluster.name;
    let ddl = [
        format!("CREATE DATABASE IF NOT EXISTS {CHECK_DB} ON CLUSTER {cluster}"),
        format!(
            "CREATE TABLE IF NOT EXISTS {CHECK_DB}.replication_check ON CLUSTER {cluster} \
             (token String, at DateTime DEFAULT now()) ENGINE = ReplicatedMergeTree(\
             '{root}/tables/{{shard}}/{CHECK_DB}/replication_check', '{{replica}}') ORDER BY token",
            root = t.clickhouse.keeper_root
        ),
    ];
    for sql in &ddl {
        c.execute(sql)
            .await
            .map_err(|e| format!("replication check DDL: {e}"))?;
    }
    let token = format!("{}-{}", std::process::id(), rand::random::<u64>());
    for shard in 1..=t.cluster.shards {
        let replicas: Vec<_> = nodes.iter().filter(|n| n.shard == shard).collect();
        let Some((head, rest)) = replicas.split_first() else {
            continue;
        };
        let writer = client(stack, head.http_port, ch)?;
        writer
            .execute(&format!(
                "INSERT INTO {CHECK_DB}.replication_check (token) VALUES ({})",
                quote(&token)
            ))
            .await
            .map_err(|e| format!("{}: replicated insert failed: {e}", head.name))?;
        for r in rest {
            wait_for_token(&client(stack, r.http_port, ch)?, &token, &r.name).await?;
        }
    }
    Ok(())
}

async fn wait_for_token(c: &Client, token: &str, name: &str) -> Result<(), String> {
    let sql = format!(
        "SELECT count() FROM {CHECK_DB}.replication_check WHERE token = {}",
        quote(token)
    );
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if c.query(&sql)
            .await
            .map(|s| s.trim() == "1")
            .unwrap_or(false)
        {
            return Ok(());
        }
        if Instant::now() > deadline {
            return Err(format!("{name}: replicated row did not arrive within 30s"));
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

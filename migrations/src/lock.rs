//! The migration lock in Keeper: so two releases never migrate at once.
//!
//! Recipe (ZooKeeper's lock recipe): create an ephemeral sequential znode `<path>/lock-N` holding
//! the holder's identity as JSON; the lowest `N` holds the lock; the others watch their predecessor
//! and wait up to `--lock-timeout`, then fail naming the holder. The sequence number `N` only grows,
//! so it is the **fencing token** written with every ledger row. The node is ephemeral: if the
//! migrator dies its session expires and the lock frees itself. [`KeeperLock::check`] runs before
//! every statement and stops the run when the session or the node is gone.

use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use zookeeper_client as zk;

use crate::error::{Error, Result};

/// Default lock path.
pub const DEFAULT_LOCK_PATH: &str = "/chgate/migrate/lock";

/// Who holds (or waits for) the lock.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Holder {
    /// Host name of the migrator.
    pub host: String,
    /// Its process id.
    pub pid: u32,
    /// chgate version.
    pub version: String,
    /// Unix seconds when it started.
    pub started_at: u64,
    /// What it is doing (`up`, ...), for humans.
    pub purpose: String,
}

impl Holder {
    /// This process.
    pub fn this_process(purpose: &str) -> Self {
        let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
            .map(|h| h.trim().to_owned())
            .or_else(|_| std::env::var("HOSTNAME"))
            .unwrap_or_else(|_| "unknown".into());
        Holder {
            host,
            pid: std::process::id(),
            version: env!("CARGO_PKG_VERSION").to_owned(),
            started_at: std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_secs()),
            purpose: purpose.to_owned(),
        }
    }
}

impl std::fmt::Display for Holder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} pid {} (chgate {}, {} since unix {})",
            self.host, self.pid, self.version, self.purpose, self.started_at
        )
    }
}

/// Where and how long.
#[derive(Debug, Clone)]
pub struct LockSettings {
    /// Keeper connect string `host:port,...`.
    pub keeper_hosts: String,
    /// Lock directory. Default [`DEFAULT_LOCK_PATH`].
    pub path: String,
    /// How long to wait for another holder. Default 60 s.
    pub timeout: Duration,
    /// Keeper session timeout: how fast a dead holder's lock frees. Default 10 s.
    pub session_timeout: Duration,
}

/// A held lock. Dropping it without [`KeeperLock::release`] frees it when the session closes.
pub struct KeeperLock {
    client: zk::Client,
    dir: String,
    node: String,
    token: u64,
}

impl std::fmt::Debug for KeeperLock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeeperLock")
            .field("node", &self.node)
            .field("token", &self.token)
            .finish()
    }
}

fn keeper(context: &str) -> impl FnOnce(zk::Error) -> Error + '_ {
    move |source| Error::Keeper {
        context: context.to_owned(),
        source,
    }
}

/// Connects to Keeper.
///
/// # Errors
/// [`Error::Keeper`] when no session can be established.
pub async fn connect(hosts: &str, session_timeout: Duration) -> Result<zk::Client> {
    zk::Client::connector()
        .with_session_timeout(session_timeout)
        .with_connection_timeout(Duration::from_secs(5))
        .connect(hosts)
        .await
        .map_err(keeper(hosts))
}

/// Sequence number of a `lock-N` child.
fn sequence(child: &str) -> Option<u64> {
    child.strip_prefix("lock-")?.parse().ok()
}

impl KeeperLock {
    /// Takes the lock, waiting up to `settings.timeout`.
    ///
    /// # Errors
    /// [`Error::LockTimeout`] naming the holder; [`Error::Keeper`].
    pub async fn acquire(settings: &LockSettings, me: &Holder) -> Result<Self> {
        let client = connect(&settings.keeper_hosts, settings.session_timeout).await?;
        let dir = settings.path.trim_end_matches('/').to_owned();
        let persistent = zk::CreateMode::Persistent.with_acls(zk::Acls::anyone_all());
        client
            .mkdir(&dir, &persistent)
            .await
            .map_err(keeper(&dir))?;
        let data = serde_json::to_vec(me).unwrap_or_default();
        let ephemeral = zk::CreateMode::EphemeralSequential.with_acls(zk::Acls::anyone_all());
        let prefix = format!("{dir}/lock-");
        let (_, seq) = client
            .create(&prefix, &data, &ephemeral)
            .await
            .map_err(keeper(&prefix))?;
        let token = u64::try_from(seq.into_i64()).unwrap_or(0);
        let lock = KeeperLock {
            node: format!("{prefix}{seq}"),
            client,
            dir,
            token,
        };
        let deadline = Instant::now() + settings.timeout;
        loop {
            let Some(pred) = lock.predecessor().await? else {
                tracing::info!(node = %lock.node, token, "migration lock acquired");
                return Ok(lock);
            };
            let left = deadline.saturating_duration_since(Instant::now());
            let (stat, watcher) = lock
                .client
                .check_and_watch_stat(&pred)
                .await
                .map_err(keeper(&pred))?;
            if stat.is_none() {
                continue;
            }
            if left.is_zero() || tokio::time::timeout(left, watcher.changed()).await.is_err() {
                return Err(lock.give_up(settings.timeout).await);
            }
        }
    }

    /// The child just below ours, or `None` when ours is the lowest.
    async fn predecessor(&self) -> Result<Option<String>> {
        let mut children: Vec<(u64, String)> = self
            .client
            .list_children(&self.dir)
            .await
            .map_err(keeper(&self.dir))?
            .into_iter()
            .filter_map(|c| sequence(&c).map(|s| (s, c)))
            .collect();
        children.sort();
        Ok(children
            .into_iter()
            .rfind(|(s, _)| *s < self.token)
            .map(|(_, c)| format!("{}/{c}", self.dir)))
    }

    async fn give_up(self, waited: Duration) -> Error {
        let holder = current_holder(&self.client, &self.dir)
            .await
            .ok()
            .flatten()
            .map_or_else(|| "an unknown holder".to_owned(), |(_, h)| h.to_string());
        let _ = self.client.delete(&self.node, None).await;
        Error::LockTimeout {
            path: self.dir,
            holder,
            waited_s: waited.as_secs(),
        }
    }

    /// The fencing token (the znode's sequence number; grows with every acquisition).
    pub fn fencing_token(&self) -> u64 {
        self.token
    }

    /// Fails if the session is gone or our node vanished: call before every statement.
    ///
    /// # Errors
    /// [`Error::LockLost`].
    pub async fn check(&self) -> Result<()> {
        let lost = |reason: String| Error::LockLost {
            path: self.dir.clone(),
            reason,
        };
        let state = self.client.state();
        if state.is_terminated() {
            return Err(lost(format!("Keeper session is {state:?}")));
        }
        match self.client.check_stat(&self.node).await {
            Ok(Some(stat)) if stat.ephemeral_owner == self.client.session_id().0 => Ok(()),
            Ok(_) => Err(lost(format!("lock node {} is gone", self.node))),
            Err(e) => Err(lost(format!("cannot check lock node: {e}"))),
        }
    }

    /// Deletes our node.
    ///
    /// # Errors
    /// [`Error::Keeper`].
    pub async fn release(self) -> Result<()> {
        match self.client.delete(&self.node, None).await {
            Ok(()) | Err(zk::Error::NoNode) => Ok(()),
            Err(e) => Err(keeper(&self.node)(e)),
        }
    }
}

/// The lowest lock node and its holder, if any.
///
/// # Errors
/// [`Error::Keeper`].
pub async fn current_holder(client: &zk::Client, dir: &str) -> Result<Option<(String, Holder)>> {
    let children = match client.list_children(dir).await {
        Ok(c) => c,
        Err(zk::Error::NoNode) => return Ok(None),
        Err(e) => return Err(keeper(dir)(e)),
    };
    let Some(lowest) = children
        .iter()
        .filter_map(|c| sequence(c).map(|s| (s, c)))
        .min()
        .map(|(_, c)| format!("{dir}/{c}"))
    else {
        return Ok(None);
    };
    match client.get_data(&lowest).await {
        Ok((data, _)) => Ok(serde_json::from_slice(&data).ok().map(|h| (lowest, h))),
        Err(zk::Error::NoNode) => Ok(None),
        Err(e) => Err(keeper(&lowest)(e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sequence_is_read_from_child_names() {
        assert_eq!(sequence("lock-0000000042"), Some(42));
        assert_eq!(sequence("other"), None);
    }

    #[test]
    fn holder_identity_round_trips_and_reads_well() {
        let h = Holder::this_process("up");
        let back: Holder =
            serde_json::from_slice(&serde_json::to_vec(&h).expect("json")).expect("parse");
        assert_eq!(back, h);
        assert!(h
            .to_string()
            .contains(&format!("pid {}", std::process::id())));
    }
}

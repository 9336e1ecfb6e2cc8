//! Sending payloads: HTTP POSTs to a gateway, or `INSERT`s straight into ClickHouse for the
//! `direct` baseline. One attempt per call; [`classify`] tells the runner whether to retry.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use chgate_clickhouse_http::Client;

use crate::body::{Insert, Payload, PayloadKind};

/// A failed attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SendError {
    /// Low-cardinality status: `429`, `502`, `transport`, `clickhouse 242`, ...
    pub status: String,
    /// Whether sending the same payload again is safe and may succeed.
    pub retryable: bool,
    /// The server's message (trimmed).
    pub message: String,
}

/// Whether a gateway HTTP status is worth retrying: 429 (admission: nothing was taken) and 503
/// (not ready / shutting down) are; anything else is final. A 5xx after a partial write could
/// duplicate rows if retried, so those are counted as failures instead.
pub fn classify(status: u16) -> bool {
    matches!(status, 429 | 503)
}

/// ClickHouse error codes after which a byte-identical retry is safe (replicated dedup drops a
/// block that did land) and may succeed: 242 table in readonly mode (Keeper quorum lost),
/// 252 too many parts, 999 Keeper exception, 319 unknown status of insert.
pub fn classify_clickhouse(code: Option<u32>) -> bool {
    matches!(code, Some(242 | 252 | 999 | 319))
}

/// Where payloads go.
#[derive(Debug)]
pub enum Sender {
    /// A gateway (or HAProxy in front of gateways).
    Gateway {
        /// HTTP client (keep-alive pool).
        http: reqwest::Client,
        /// Base URL without trailing slash.
        base: String,
    },
    /// ClickHouse nodes, by shard (shard-major, as in the topology).
    Direct {
        /// Replicas of each shard.
        shards: Vec<Vec<Client>>,
        /// Round-robin cursor.
        next: AtomicUsize,
    },
}

impl Sender {
    /// A gateway sender with a per-request `timeout`.
    ///
    /// # Errors
    /// [`reqwest::Error`] when the client cannot be built.
    pub fn gateway(base: &str, timeout: Duration) -> Result<Self, reqwest::Error> {
        let http = reqwest::Client::builder()
            .timeout(timeout)
            .pool_max_idle_per_host(1024)
            .build()?;
        Ok(Sender::Gateway {
            http,
            base: base.trim_end_matches('/').to_owned(),
        })
    }

    /// A direct sender over ClickHouse clients by shard.
    pub fn direct(shards: Vec<Vec<Client>>) -> Self {
        Sender::Direct {
            shards,
            next: AtomicUsize::new(0),
        }
    }

    /// Sends one payload once.
    ///
    /// # Errors
    /// [`SendError`] describing the failure.
    pub async fn send(&self, p: &Payload) -> Result<(), SendError> {
        match (self, &p.kind) {
            (Sender::Gateway { http, base }, PayloadKind::Http { .. }) => {
                send_http(http, base, &p.kind).await
            }
            (Sender::Direct { shards, next }, PayloadKind::Direct(inserts)) => {
                let n = next.fetch_add(1, Ordering::Relaxed);
                for i in inserts {
                    send_insert(shards, n, i).await?;
                }
                Ok(())
            }
            _ => Err(SendError {
                status: "internal".into(),
                retryable: false,
                message: "payload kind does not match the target".into(),
            }),
        }
    }
}

async fn send_http(
    http: &reqwest::Client,
    base: &str,
    kind: &PayloadKind,
) -> Result<(), SendError> {
    let PayloadKind::Http {
        path,
        content_type,
        encoding,
        body,
    } = kind
    else {
        return Ok(());
    };
    let mut req = http
        .post(format!("{base}{path}"))
        .header("Content-Type", *content_type)
        .body(body.clone());
    if let Some(e) = encoding {
        req = req.header("Content-Encoding", *e);
    }
    let resp = req.send().await.map_err(|e| SendError {
        status: if e.is_timeout() {
            "timeout"
        } else {
            "transport"
        }
        .into(),
        retryable: e.is_connect(),
        message: e.to_string(),
    })?;
    let status = resp.status();
    if status.is_success() {
        // Drain the body so the connection goes back to the pool.
        let _ = resp.bytes().await;
        return Ok(());
    }
    let text = resp.text().await.unwrap_or_default();
    Err(SendError {
        status: status.as_u16().to_string(),
        retryable: classify(status.as_u16()),
        message: text.trim().chars().take(300).collect(),
    })
}

async fn send_insert(shards: &[Vec<Client>], n: usize, ins: &Insert) -> Result<(), SendError> {
    let replicas: Vec<&Client> = match ins.shard {
        Some(s) => shards
            .get(s)
            .map(|r| r.iter().collect())
            .unwrap_or_default(),
        None => shards.iter().flatten().collect(),
    };
    if replicas.is_empty() {
        return Err(SendError {
            status: "internal".into(),
            retryable: false,
            message: format!("no ClickHouse node for shard {:?}", ins.shard),
        });
    }
    let sync = [("insert_distributed_sync", "1")];
    let settings: &[(&str, &str)] = if ins.shard.is_none() { &sync } else { &[] };
    let mut last = None;
    // Start at a rotating replica; fail over to the next only when one is unreachable.
    for k in 0..replicas.len() {
        let c = replicas[(n + k) % replicas.len()];
        match c.insert(&ins.sql, settings, ins.body.clone()).await {
            Ok(()) => return Ok(()),
            Err(e) if e.is_unreachable() => last = Some(e),
            Err(e) => {
                return Err(SendError {
                    status: e
                        .code()
                        .map_or_else(|| "clickhouse".into(), |c| format!("clickhouse {c}")),
                    retryable: classify_clickhouse(e.code()),
                    message: e.to_string(),
                })
            }
        }
    }
    Err(SendError {
        status: "transport".into(),
        retryable: true,
        message: last.map(|e| e.to_string()).unwrap_or_default(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_admission_and_unavailable_are_retried() {
        assert!(classify(429) && classify(503));
        assert!(!classify(400) && !classify(500) && !classify(502) && !classify(504));
        assert!(classify_clickhouse(Some(242)) && !classify_clickhouse(Some(60)));
        assert!(!classify_clickhouse(None));
    }
}

//! Gateway configuration: one serde struct with named defaults, validated into runtime settings.
//! Sources, later ones winning: the config file, `CHGATE_GATEWAY_*` environment, command-line flags.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::batcher::BatchConfig;
use crate::encode::Format;
use crate::writer::WriteMode;

/// `gateway.toml`. Cluster layout and credentials come from the topology file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct GatewayConfig {
    /// Address to listen on. Default `127.0.0.1:8428`.
    pub listen: SocketAddr,
    /// Database of the samples schema. Default: the topology's `cluster.database`.
    pub database: Option<String>,
    /// Distributed samples table. Default `samples`.
    pub samples_table: String,
    /// Distributed series table. Default `series`.
    pub series_table: String,
    /// `distributed` (default) or `shard-aware`.
    pub write_mode: WriteMode,
    /// `native` (default) or `rowbinary`.
    pub format: Format,
    /// Batching.
    pub batch: BatchConfig,
    /// Largest accepted request body (after decompression), bytes. Default 64 MiB.
    pub max_body_bytes: usize,
    /// Request bytes held in memory at once before new requests get 429. Default 256 MiB.
    pub memory_budget_bytes: usize,
    /// How long a table schema is cached. Default 30 s.
    #[serde(with = "humantime_serde")]
    pub schema_ttl: Duration,
    /// A series row is rewritten (its `last_seen` refreshed) at most this often. Default 10 min.
    #[serde(with = "humantime_serde")]
    pub series_refresh: Duration,
    /// Insert attempts per batch (first try included). Default 8.
    pub insert_attempts: u32,
    /// Per-insert HTTP timeout. Default 30 s.
    #[serde(with = "humantime_serde")]
    pub insert_timeout: Duration,
    /// How long shutdown waits for batches to flush. Default 30 s.
    #[serde(with = "humantime_serde")]
    pub shutdown_deadline: Duration,
    /// TLS for the listener (PEM files); plain HTTP when absent.
    pub tls: Option<TlsConfig>,
    /// When a request is acked: `inserted` (default, after ClickHouse accepted it) or `spooled`
    /// (after its blocks are fsynced in `[spool] dir`; delivered later, exactly once).
    pub ack: crate::delivery::AckMode,
    /// The durable spool (`ack = "spooled"`).
    pub spool: crate::spool::SpoolConfig,
    /// Per-shard circuit breakers.
    pub breaker: crate::backpressure::BreakerConfig,
    /// Tenant authentication, grants and quotas (`[auth]`); off by default.
    pub auth: crate::auth::AuthConfig,
}

/// Listener TLS.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsConfig {
    /// Certificate chain (PEM).
    pub cert: PathBuf,
    /// Private key (PEM).
    pub key: PathBuf,
}

impl Default for GatewayConfig {
    fn default() -> Self {
        GatewayConfig {
            listen: SocketAddr::from(([127, 0, 0, 1], 8428)),
            database: None,
            samples_table: "samples".into(),
            series_table: "series".into(),
            write_mode: WriteMode::Distributed,
            format: Format::Native,
            batch: BatchConfig::default(),
            max_body_bytes: 64 << 20,
            memory_budget_bytes: 256 << 20,
            schema_ttl: Duration::from_secs(30),
            series_refresh: Duration::from_secs(600),
            insert_attempts: 8,
            insert_timeout: Duration::from_secs(30),
            shutdown_deadline: Duration::from_secs(30),
            tls: None,
            ack: crate::delivery::AckMode::Inserted,
            spool: crate::spool::SpoolConfig::default(),
            breaker: crate::backpressure::BreakerConfig::default(),
            auth: crate::auth::AuthConfig::default(),
        }
    }
}

impl GatewayConfig {
    /// Parses TOML.
    ///
    /// # Errors
    /// The parser's message (unknown keys are named).
    pub fn parse(text: &str) -> Result<Self, String> {
        toml::from_str(text).map_err(|e| e.to_string())
    }

    /// Checks values (pure).
    ///
    /// # Errors
    /// A message naming the field.
    pub fn validate(&self) -> Result<(), String> {
        self.batch.validate()?;
        if !self.listen.ip().is_loopback() && self.tls.is_none() {
            return Err(format!(
                "listen: {} is not loopback; a non-loopback listener needs [tls]",
                self.listen
            ));
        }
        if !self.listen.ip().is_loopback() && !self.auth.enabled {
            return Err(format!(
                "listen: {} is not loopback; a non-loopback listener needs [auth] enabled = true",
                self.listen
            ));
        }
        if self.max_body_bytes == 0 || self.memory_budget_bytes < self.max_body_bytes {
            return Err("memory_budget_bytes must be at least max_body_bytes (> 0)".into());
        }
        if self.ack == crate::delivery::AckMode::Spooled && self.spool.dir.is_none() {
            return Err("ack = \"spooled\" needs [spool] dir (one directory per gateway)".into());
        }
        if self.breaker.failures == 0 {
            return Err("breaker.failures must be at least 1".into());
        }
        if self.insert_attempts == 0 {
            return Err("insert_attempts must be at least 1".into());
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn example_config_parses_validates_and_documents_defaults() {
        let text = include_str!("../gateway.example.toml");
        let c = GatewayConfig::parse(text).expect("example parses");
        c.validate().expect("example validates");
        assert_eq!(
            c,
            GatewayConfig {
                listen: c.listen,
                ..GatewayConfig::default()
            }
        );
    }

    #[test]
    fn production_example_has_auth_and_tls_and_validates() {
        let c = GatewayConfig::parse(include_str!("../gateway.production.toml"))
            .expect("production example parses");
        c.validate().expect("production example validates");
        assert!(c.auth.enabled && c.tls.is_some() && !c.listen.ip().is_loopback());
        let open = GatewayConfig {
            auth: crate::auth::AuthConfig::default(),
            ..c
        };
        let e = open.validate().expect_err("no auth on a public listener");
        assert!(e.contains("[auth]"), "{e}");
    }

    #[test]
    fn bad_values_name_the_field() {
        let e = GatewayConfig::parse("[batch]\nmax_rows = 0\n")
            .expect("parses")
            .validate()
            .expect_err("invalid");
        assert!(e.contains("batch.max_rows"), "{e}");
        let e = GatewayConfig::parse("colour = 1\n").expect_err("unknown key");
        assert!(e.contains("colour"), "{e}");
        let e = GatewayConfig::parse("listen = \"0.0.0.0:1\"\n")
            .expect("parses")
            .validate()
            .expect_err("needs tls");
        assert!(e.contains("tls"), "{e}");
    }

    #[test]
    fn spooled_acks_need_a_spool_dir() {
        let e = GatewayConfig::parse("ack = \"spooled\"\n")
            .expect("parses")
            .validate()
            .expect_err("no dir");
        assert!(e.contains("[spool] dir"), "{e}");
        let ok = GatewayConfig::parse(
            "ack = \"spooled\"\n[spool]\ndir = \"/tmp/s\"\n[breaker]\nopen_for = \"5s\"\n",
        )
        .expect("parses");
        ok.validate().expect("valid");
        assert_eq!(ok.breaker.open_for, Duration::from_secs(5));
        let e = GatewayConfig::parse("[spool]\nsize = 1\n").expect_err("unknown key");
        assert!(e.contains("size"), "{e}");
    }
}

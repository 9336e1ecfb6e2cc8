//! # chgate-topology
//!
//! The one topology file (`chgate.toml`) that describes a chgate deployment, and the renderers
//! that turn it into every server's config. Nothing is hand-copied twice: the local rig
//! (`chgate local`) and the pod manifests render from the same functions.
//!
//! Main types:
//! - [`Topology`]: the parsed file (serde, unknown keys rejected), with defaults for a 2x2 cluster,
//!   3 Keeper nodes, 2 gateways, 3 Grafana instances, PostgreSQL and HAProxy.
//! - [`validate`]: pure checks whose errors name the field (`cluster.replicas`, port clashes, ...).
//! - [`SecretRef`] / [`Secret`]: credentials by reference (`{ env = ".." }` / `{ file = ".." }`).
//! - [`render`]: ClickHouse XML, ZooKeeper / Keeper config, HAProxy config.
//!
//! Data flow: `load(path)` → [`Topology`] → `validate` → `render::*` → files written by the caller.

pub mod model;
pub mod render;
pub mod secret;
pub mod validate;

use std::path::{Path, PathBuf};

pub use model::{ClickHouseNode, Instance, KeeperNode, Topology};
pub use secret::{Secret, SecretRef};
pub use validate::validate;

/// What can go wrong reading or checking a topology.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TopologyError {
    /// The file could not be read.
    #[error("cannot read topology file {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The file is not valid TOML for a topology (unknown keys, wrong types).
    #[error("invalid topology file {path}: {message}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// The parser's message, with line and column.
        message: String,
    },
    /// A value is out of range or malformed.
    #[error("invalid topology: `{field}` {reason}")]
    Invalid {
        /// The dotted field name, e.g. `cluster.replicas`.
        field: String,
        /// What is wrong with it.
        reason: String,
    },
    /// Two roles would listen on the same port.
    #[error("invalid topology: port {port} is used by both `{first}` and `{second}`")]
    PortClash {
        /// The port.
        port: u32,
        /// The first field using it.
        first: String,
        /// The second field using it.
        second: String,
    },
    /// A referenced secret could not be read.
    #[error("secret from {source_name} {reason}")]
    Secret {
        /// `environment variable X` or `file P`.
        source_name: String,
        /// What went wrong.
        reason: &'static str,
    },
}

/// A topology together with the directory its relative paths are resolved against.
#[derive(Debug, Clone)]
pub struct LoadedTopology {
    /// The validated topology.
    pub topology: Topology,
    /// Absolute state directory.
    pub state_dir: PathBuf,
}

/// Parses topology TOML text (no I/O, no validation).
///
/// # Errors
/// [`TopologyError::Parse`] with the parser's line/column message; `path` is only used in it.
pub fn parse(text: &str, path: &Path) -> Result<Topology, TopologyError> {
    toml::from_str(text).map_err(|e| {
        // Build the message from the span, not `Display`: that quotes the offending source line,
        // which may be an inline secret.
        let at = e.span().map_or_else(String::new, |span| {
            let before = &text[..span.start.min(text.len())];
            let line = before.matches('\n').count() + 1;
            let col = before.len() - before.rfind('\n').map_or(0, |i| i + 1) + 1;
            format!("line {line}, column {col}: ")
        });
        TopologyError::Parse {
            path: path.to_owned(),
            message: format!("{at}{}", e.message()),
        }
    })
}

/// Reads, parses and validates a topology file; resolves `state_dir` against the file's directory.
///
/// # Errors
/// Any [`TopologyError`] from reading, parsing or validation.
pub fn load(path: &Path) -> Result<LoadedTopology, TopologyError> {
    let text = std::fs::read_to_string(path).map_err(|source| TopologyError::Read {
        path: path.to_owned(),
        source,
    })?;
    let topology = parse(&text, path)?;
    validate(&topology)?;
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let dir = std::path::absolute(dir).unwrap_or_else(|_| dir.to_owned());
    let state_dir = dir.join(&topology.state_dir);
    let mut topology = topology;
    // TLS files are used by several processes and renderers: make them absolute once.
    topology.tls = topology.tls.map(|tls| tls.resolved(&state_dir));
    Ok(LoadedTopology {
        topology,
        state_dir,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const EXAMPLE: &str = include_str!("../../../chgate.toml");

    #[test]
    fn shipped_example_parses_validates_and_equals_defaults() {
        let t = parse(EXAMPLE, Path::new("chgate.toml")).expect("example parses");
        validate(&t).expect("example validates");
        assert_eq!(t, Topology::default(), "the example documents the defaults");
    }

    #[test]
    fn unknown_key_is_rejected_with_its_name() {
        let err = parse("[cluster]\nreplicaz = 2\n", Path::new("t.toml")).expect_err("unknown key");
        assert!(err.to_string().contains("replicaz"), "{err}");
    }

    #[test]
    fn default_layout_is_the_documented_one() {
        let t = Topology::default();
        let ch = t.clickhouse_nodes();
        assert_eq!(ch.len(), 4);
        assert_eq!((ch[0].http_port, ch[3].http_port), (18121, 18124));
        assert_eq!((ch[0].tcp_port, ch[3].interserver_port), (19001, 19104));
        assert_eq!(ch[2].name, "ch-s2r1");
        assert_eq!(t.keeper_nodes()[2].client_port, 18183);
        assert_eq!(t.postgres_port(), 18432);
        assert_eq!(t.gateways()[1].port, 18442);
    }
}

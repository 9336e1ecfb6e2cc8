//! Server version parsing and feature detection: use a feature only where the server has it.

use std::fmt;

/// A ClickHouse server version, e.g. `18.16.1` or `26.9.1.1`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct ServerVersion {
    /// Year-based major (18, 24, 26, ...).
    pub major: u32,
    /// Minor.
    pub minor: u32,
    /// Patch.
    pub patch: u32,
}

/// Features whose presence depends on the server version.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Feature {
    /// `DateTime64(p)` columns (20.1).
    DateTime64,
    /// Column `CODEC(...)` (19.10).
    Codecs,
    /// `LowCardinality` without the experimental setting (19.1).
    LowCardinality,
    /// `Map(K, V)` columns (21.8 without the experimental flag).
    Map,
    /// `insert_deduplication_token` setting (22.2).
    InsertDeduplicationToken,
    /// `async_insert` (21.11).
    AsyncInsert,
    /// `system.distributed_ddl_queue` (20.12).
    DistributedDdlQueue,
    /// `<clickhouse>` config root (22.x).
    ClickHouseConfigRoot,
}

impl Feature {
    fn since(self) -> ServerVersion {
        let v = |major, minor| ServerVersion {
            major,
            minor,
            patch: 0,
        };
        match self {
            Feature::DateTime64 => v(20, 1),
            Feature::Codecs => v(19, 10),
            Feature::LowCardinality => v(19, 1),
            Feature::Map => v(21, 8),
            Feature::InsertDeduplicationToken => v(22, 2),
            Feature::AsyncInsert => v(21, 11),
            Feature::DistributedDdlQueue => v(20, 12),
            Feature::ClickHouseConfigRoot => v(22, 1),
        }
    }
}

impl ServerVersion {
    /// Parses `major.minor[.patch[.build]]`.
    pub fn parse(s: &str) -> Option<Self> {
        let mut it = s.trim().split('.').map(|p| p.parse::<u32>());
        let major = it.next()?.ok()?;
        let minor = it.next()?.ok()?;
        let patch = it.next().and_then(Result::ok).unwrap_or(0);
        Some(ServerVersion {
            major,
            minor,
            patch,
        })
    }

    /// Whether this server has `feature`.
    pub fn has(self, feature: Feature) -> bool {
        self >= feature.since()
    }
}

impl fmt::Display for ServerVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}.{}", self.major, self.minor, self.patch)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn old_rig_lacks_modern_features_and_modern_has_them() {
        let old = ServerVersion::parse("18.16.1").expect("parses");
        let new = ServerVersion::parse("26.9.1.1").expect("parses");
        for f in [
            Feature::DateTime64,
            Feature::Codecs,
            Feature::Map,
            Feature::InsertDeduplicationToken,
        ] {
            assert!(!old.has(f), "{f:?}");
            assert!(new.has(f), "{f:?}");
        }
        assert_eq!(old.to_string(), "18.16.1");
        assert!(ServerVersion::parse("x.1").is_none());
    }
}

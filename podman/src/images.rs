//! Which container images the manifests use: the official ones (default, for machines and
//! clusters that can pull) or the ones `podman/images/build.sh` builds offline from Debian.
//!
//! The flavour decides more than the names: the Keeper is ClickHouse Keeper (official) or
//! ZooKeeper 3.8 (local stand-in, same client protocol), and ClickHouse's config root is
//! `<clickhouse>` (modern) or `<yandex>` (18.16).

use std::collections::BTreeMap;

/// Where the images come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flavor {
    /// Official registry images: clickhouse/clickhouse-server and -keeper, postgres,
    /// grafana/grafana, haproxy, and chgate's own image (podman/Containerfile).
    Official,
    /// Images built on this machine by `podman/images/build.sh` (no registry access needed):
    /// ClickHouse 18.16, ZooKeeper 3.8, PostgreSQL 15, HAProxy 2.6 from Debian bookworm.
    Local,
}

/// The image of every role. Construct with [`Images::official`] / [`Images::local`], then
/// override single roles with [`Images::set`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Images {
    /// Official or local (decides Keeper kind and ClickHouse config root).
    pub flavor: Flavor,
    /// ClickHouse server.
    pub clickhouse: String,
    /// ClickHouse Keeper (official) or ZooKeeper (local).
    pub keeper: String,
    /// PostgreSQL.
    pub postgres: String,
    /// Grafana (no offline build exists: its pods are skipped by `up` with local images).
    pub grafana: String,
    /// HAProxy (also the gateway pods' ambassador).
    pub haproxy: String,
    /// chgate.
    pub gateway: String,
}

/// Roles whose image can be overridden (`--image ROLE=REF`).
pub const ROLES: [&str; 6] = [
    "clickhouse",
    "keeper",
    "postgres",
    "grafana",
    "haproxy",
    "gateway",
];

impl Images {
    /// Official images, pinned to versions chgate is tested against; the gateway image is the
    /// one `podman/Containerfile` builds, tagged with this release's version.
    pub fn official() -> Self {
        Images {
            flavor: Flavor::Official,
            clickhouse: "docker.io/clickhouse/clickhouse-server:24.8".into(),
            keeper: "docker.io/clickhouse/clickhouse-keeper:24.8".into(),
            postgres: "docker.io/library/postgres:15".into(),
            grafana: "docker.io/grafana/grafana:11.2.0".into(),
            haproxy: "docker.io/library/haproxy:2.6".into(),
            gateway: format!("ghcr.io/chgate/chgate:{}", env!("CARGO_PKG_VERSION")),
        }
    }

    /// The images `podman/images/build.sh` builds (`localhost/chgate/<role>:local`). Grafana
    /// keeps the official name: it cannot be built offline, so its pods are rendered but skipped.
    pub fn local() -> Self {
        let l = |role: &str| format!("localhost/chgate/{role}:local");
        Images {
            flavor: Flavor::Local,
            clickhouse: l("clickhouse"),
            keeper: l("keeper"),
            postgres: l("postgres"),
            grafana: Images::official().grafana,
            haproxy: l("haproxy"),
            gateway: l("gateway"),
        }
    }

    /// Replaces one role's image.
    ///
    /// # Errors
    /// A message naming the unknown role and the known ones.
    pub fn set(&mut self, role: &str, image: &str) -> Result<(), String> {
        let slot = match role {
            "clickhouse" => &mut self.clickhouse,
            "keeper" => &mut self.keeper,
            "postgres" => &mut self.postgres,
            "grafana" => &mut self.grafana,
            "haproxy" => &mut self.haproxy,
            "gateway" => &mut self.gateway,
            other => {
                return Err(format!(
                    "unknown image role `{other}`; roles: {}",
                    ROLES.join(", ")
                ))
            }
        };
        image.clone_into(slot);
        Ok(())
    }

    /// Every role with its image, for reports.
    pub fn by_role(&self) -> BTreeMap<&'static str, &str> {
        BTreeMap::from([
            ("clickhouse", self.clickhouse.as_str()),
            ("keeper", self.keeper.as_str()),
            ("postgres", self.postgres.as_str()),
            ("grafana", self.grafana.as_str()),
            ("haproxy", self.haproxy.as_str()),
            ("gateway", self.gateway.as_str()),
        ])
    }
}

/// Numeric user ids the containers run as: the official images' users, which the offline
/// recipes create with the same ids so one manifest fits both.
pub mod uid {
    /// clickhouse (server and keeper) — and zookeeper in the local keeper image.
    pub const CLICKHOUSE: i64 = 101;
    /// postgres.
    pub const POSTGRES: i64 = 999;
    /// haproxy.
    pub const HAPROXY: i64 = 99;
    /// grafana.
    pub const GRAFANA: i64 = 472;
    /// chgate (podman/Containerfile and podman/images/gateway.Containerfile).
    pub const CHGATE: i64 = 10001;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn set_overrides_one_role_and_names_bad_roles() {
        let mut i = Images::local();
        i.set("haproxy", "example/haproxy:3").expect("known role");
        assert_eq!(i.haproxy, "example/haproxy:3");
        let e = i.set("zk", "x").expect_err("unknown");
        assert!(e.contains("zk") && e.contains("clickhouse"), "{e}");
        assert_eq!(i.by_role().len(), ROLES.len());
    }
}

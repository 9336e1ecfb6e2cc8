//! The data generator: TSBS-like "devops" metrics, seeded and deterministic, rendered fast.
//!
//! A *host* carries the 10 TSBS tags (`hostname`, `region`, `datacenter`, `rack`, `os`, `arch`,
//! `team`, `service`, `service_version`, `service_environment`); every tick each host emits one
//! *point* per measurement (cpu, mem, disk, ...), each point carrying 10 fields. A field of a
//! point is one *sample* (one row of the `samples` table, metric `<prefix><measurement>_<field>`),
//! so cardinality = hosts x measurements x 10. Values are random walks in hundredths (two
//! decimals), so every protocol carries exactly the same numbers.
//!
//! The same [`DataConfig`] (seed included) always yields the same points in the same order:
//! that is what lets `compare` send identical data to the gateway and to ClickHouse directly.

use std::fmt::Write as _;

use chgate_gateway::protocol::series::series_id_of_key;
use chgate_gateway::protocol::Sample;

/// One measurement: its name and its 10 field names.
#[derive(Debug)]
pub struct Measurement {
    /// Measurement name (Influx), the metric name stem.
    pub name: &'static str,
    /// The 10 fields.
    pub fields: [&'static str; FIELDS],
}

/// Fields per measurement.
pub const FIELDS: usize = 10;

/// The TSBS devops measurements (field lists completed to 10 where TSBS has fewer).
pub const MEASUREMENTS: [Measurement; 9] = [
    Measurement {
        name: "cpu",
        fields: [
            "usage_user",
            "usage_system",
            "usage_idle",
            "usage_nice",
            "usage_iowait",
            "usage_irq",
            "usage_softirq",
            "usage_steal",
            "usage_guest",
            "usage_guest_nice",
        ],
    },
    Measurement {
        name: "mem",
        fields: [
            "total",
            "available",
            "used",
            "free",
            "cached",
            "buffered",
            "used_percent",
            "available_percent",
            "buffered_percent",
            "cached_percent",
        ],
    },
    Measurement {
        name: "disk",
        fields: [
            "total",
            "free",
            "used",
            "used_percent",
            "inodes_total",
            "inodes_free",
            "inodes_used",
            "io_time",
            "read_time",
            "write_time",
        ],
    },
    Measurement {
        name: "diskio",
        fields: [
            "reads",
            "writes",
            "read_bytes",
            "write_bytes",
            "read_time",
            "write_time",
            "io_time",
            "weighted_io_time",
            "iops_in_progress",
            "merged_reads",
        ],
    },
    Measurement {
        name: "net",
        fields: [
            "bytes_sent",
            "bytes_recv",
            "packets_sent",
            "packets_recv",
            "err_in",
            "err_out",
            "drop_in",
            "drop_out",
            "tcp_retrans",
            "udp_errors",
        ],
    },
    Measurement {
        name: "kernel",
        fields: [
            "boot_time",
            "interrupts",
            "context_switches",
            "processes_forked",
            "disk_pages_in",
            "disk_pages_out",
            "entropy_avail",
            "procs_running",
            "procs_blocked",
            "load1",
        ],
    },
    Measurement {
        name: "nginx",
        fields: [
            "accepts",
            "active",
            "handled",
            "reading",
            "requests",
            "waiting",
            "writing",
            "keepalive",
            "dropped",
            "ssl_handshakes",
        ],
    },
    Measurement {
        name: "postgresl",
        fields: [
            "numbackends",
            "xact_commit",
            "xact_rollback",
            "blks_read",
            "blks_hit",
            "tup_returned",
            "tup_fetched",
            "tup_inserted",
            "tup_updated",
            "tup_deleted",
        ],
    },
    Measurement {
        name: "redis",
        fields: [
            "connected_clients",
            "used_memory",
            "used_memory_rss",
            "used_memory_peak",
            "keyspace_hits",
            "keyspace_misses",
            "evicted_keys",
            "expired_keys",
            "instantaneous_ops_per_sec",
            "total_commands_processed",
        ],
    },
];

const REGIONS: [&str; 9] = [
    "us-east-1",
    "us-west-1",
    "us-west-2",
    "eu-west-1",
    "eu-central-1",
    "ap-southeast-1",
    "ap-southeast-2",
    "ap-northeast-1",
    "sa-east-1",
];
const OSES: [&str; 3] = ["Ubuntu16.10", "Ubuntu16.04LTS", "Ubuntu15.10"];
const ARCHES: [&str; 2] = ["x64", "x86"];
const TEAMS: [&str; 4] = ["SF", "NYC", "LON", "CHI"];
const ENVS: [&str; 3] = ["production", "staging", "test"];

/// What to generate. All times in milliseconds since the epoch.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct DataConfig {
    /// RNG seed; the same config yields the same data.
    pub seed: u64,
    /// Number of hosts (the TSBS "scale"). Default 100.
    pub hosts: u32,
    /// Measurements per host, 1..=9 (first N of [`MEASUREMENTS`]). Default 9.
    pub measurements: usize,
    /// Prefix of every metric name (make it run-unique to verify a run). Default empty.
    pub prefix: String,
    /// Timestamp of the first tick. Default 2026-01-01T00:00:00Z.
    pub start_ms: i64,
    /// Simulated time between two ticks of a host. Default 10 s.
    pub interval_ms: i64,
    /// Each point's timestamp is moved forward by up to this much (spread within a tick).
    /// Default 0.
    pub jitter_ms: i64,
    /// Fraction of hosts replaced by new ones (new series) each tick, 0..=1. Default 0.
    pub churn: f64,
    /// Fraction of points sent late (timestamp moved back), 0..=1. Default 0.
    pub out_of_order: f64,
    /// How far back a late point goes, at most. Default 60 s.
    pub late_ms: i64,
}

impl Default for DataConfig {
    fn default() -> Self {
        DataConfig {
            seed: 1,
            hosts: 100,
            measurements: MEASUREMENTS.len(),
            prefix: String::new(),
            start_ms: 1_767_225_600_000,
            interval_ms: 10_000,
            jitter_ms: 0,
            churn: 0.0,
            out_of_order: 0.0,
            late_ms: 60_000,
        }
    }
}

impl DataConfig {
    /// Checks ranges (pure).
    ///
    /// # Errors
    /// A message naming the field.
    pub fn validate(&self) -> Result<(), String> {
        if self.hosts == 0 {
            return Err("hosts must be at least 1".into());
        }
        if !(1..=MEASUREMENTS.len()).contains(&self.measurements) {
            return Err(format!("measurements must be 1..={}", MEASUREMENTS.len()));
        }
        if !(0.0..=1.0).contains(&self.churn) || !(0.0..=1.0).contains(&self.out_of_order) {
            return Err("churn and out_of_order are fractions in 0..=1".into());
        }
        if self.interval_ms <= 0 || self.jitter_ms < 0 || self.late_ms < 0 {
            return Err("interval must be > 0, jitter and late >= 0".into());
        }
        if !self
            .prefix
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_')
        {
            return Err("prefix may hold only [A-Za-z0-9_]".into());
        }
        Ok(())
    }

    /// Distinct series at any one time: hosts x measurements x 10.
    pub fn cardinality(&self) -> u64 {
        u64::from(self.hosts) * self.measurements as u64 * FIELDS as u64
    }
}

/// SplitMix64: tiny, fast, and the same on every platform and version (unlike `rand`'s
/// `SmallRng`), which keeps the data reproducible.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    /// A generator from a seed.
    pub fn new(seed: u64) -> Self {
        Rng(seed)
    }

    /// The next 64 random bits.
    #[inline]
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (n > 0; a tiny modulo bias is irrelevant here).
    #[inline]
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n.max(1)
    }

    /// Uniform in `[0, 1)`.
    #[inline]
    pub fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// One host slot's current identity and its cached renderings.
#[derive(Debug, Clone)]
pub struct Host {
    /// Host id (`hostname=host_<id>`); changes when the slot churns.
    pub id: u64,
    /// Tags, sorted by name.
    pub tags: Vec<(String, String)>,
    /// Per measurement: `<prefix><measurement>,<tags>` (the Influx series key) as bytes.
    line_keys: Vec<Vec<u8>>,
    /// Per measurement and field: the `series_id` of the resulting sample.
    series_ids: Vec<[u64; FIELDS]>,
}

fn host_tags(seed: u64, id: u64) -> Vec<(String, String)> {
    let mut r = Rng::new(seed ^ id.wrapping_mul(0xA24B_AED4_963E_E407));
    let region = REGIONS[r.below(REGIONS.len() as u64) as usize];
    let pick = |r: &mut Rng, a: &[&'static str]| a[r.below(a.len() as u64) as usize].to_owned();
    let dc = format!("{region}{}", ['a', 'b', 'c'][r.below(3) as usize]);
    // Sorted by tag name, as the gateway stores labels.
    vec![
        ("arch".into(), pick(&mut r, &ARCHES)),
        ("datacenter".into(), dc),
        ("hostname".into(), format!("host_{id}")),
        ("os".into(), pick(&mut r, &OSES)),
        ("rack".into(), r.below(100).to_string()),
        ("region".into(), region.to_owned()),
        ("service".into(), r.below(20).to_string()),
        ("service_environment".into(), pick(&mut r, &ENVS)),
        ("service_version".into(), r.below(2).to_string()),
        ("team".into(), pick(&mut r, &TEAMS)),
    ]
}

impl Host {
    fn new(cfg: &DataConfig, id: u64) -> Self {
        let tags = host_tags(cfg.seed, id);
        let mut line_keys = Vec::with_capacity(cfg.measurements);
        let mut series_ids = Vec::with_capacity(cfg.measurements);
        let mut key = String::new();
        for m in &MEASUREMENTS[..cfg.measurements] {
            let mut lk = format!("{}{}", cfg.prefix, m.name);
            for (k, v) in &tags {
                let _ = write!(lk, ",{k}={v}");
            }
            line_keys.push(lk.into_bytes());
            let mut ids = [0u64; FIELDS];
            for (i, f) in m.fields.iter().enumerate() {
                key.clear();
                let metric = format!("{}{}_{f}", cfg.prefix, m.name);
                chgate_gateway::protocol::series::write_series_key(&mut key, &metric, &tags);
                ids[i] = series_id_of_key(&key);
            }
            series_ids.push(ids);
        }
        Host {
            id,
            tags,
            line_keys,
            series_ids,
        }
    }
}

/// One point: a host's measurement at one time with its 10 values (in hundredths).
#[derive(Debug)]
pub struct Point<'a> {
    /// The host.
    pub host: &'a Host,
    /// Index into [`MEASUREMENTS`].
    pub measurement: usize,
    /// Timestamp, ms.
    pub timestamp_ms: i64,
    /// Values in hundredths (value = cents / 100).
    pub cents: &'a [i64; FIELDS],
}

impl Point<'_> {
    /// The measurement.
    pub fn measurement(&self) -> &'static Measurement {
        &MEASUREMENTS[self.measurement]
    }

    /// `series_id` of field `i`.
    pub fn series_id(&self, i: usize) -> u64 {
        self.host.series_ids[self.measurement][i]
    }

    /// The Influx series key `<prefix><measurement>,<tags>`.
    pub fn line_key(&self) -> &[u8] {
        &self.host.line_keys[self.measurement]
    }

    /// Value of field `i`.
    pub fn value(&self, i: usize) -> f64 {
        self.cents[i] as f64 / 100.0
    }

    /// Appends the point as 10 [`Sample`]s (allocates; the slow generic path).
    pub fn push_samples(&self, prefix: &str, out: &mut Vec<Sample>) {
        let m = self.measurement();
        for (i, f) in m.fields.iter().enumerate() {
            out.push(Sample {
                metric: format!("{prefix}{}_{f}", m.name),
                labels: self.host.tags.clone(),
                timestamp_ms: self.timestamp_ms,
                value: self.value(i),
            });
        }
    }
}

/// Appends `cents / 100` with two decimals (`-12.05`, `3.00`).
#[inline]
pub fn push_cents(out: &mut Vec<u8>, cents: i64) {
    let mut buf = itoa::Buffer::new();
    if cents < 0 {
        out.push(b'-');
    }
    let c = cents.unsigned_abs();
    out.extend_from_slice(buf.format(c / 100).as_bytes());
    let frac = (c % 100) as u8;
    out.extend_from_slice(&[b'.', b'0' + frac / 10, b'0' + frac % 10]);
}

/// The deterministic point stream.
#[derive(Debug, Clone)]
pub struct Generator {
    cfg: DataConfig,
    rng: Rng,
    hosts: Vec<Host>,
    /// Random-walk state per (host slot, measurement, field), in hundredths.
    walk: Vec<[i64; FIELDS]>,
    tick: i64,
    slot: usize,
    measurement: usize,
    next_id: u64,
    /// Field names with `=` appended, per measurement.
    field_eq: Vec<[Vec<u8>; FIELDS]>,
}

impl Generator {
    /// A generator at the start of the stream.
    ///
    /// # Errors
    /// The message of [`DataConfig::validate`].
    pub fn new(cfg: DataConfig) -> Result<Self, String> {
        cfg.validate()?;
        let hosts: Vec<Host> = (0..u64::from(cfg.hosts))
            .map(|id| Host::new(&cfg, id))
            .collect();
        let mut rng = Rng::new(cfg.seed);
        let walk = (0..hosts.len() * cfg.measurements)
            .map(|_| std::array::from_fn(|_| rng.below(10_000) as i64))
            .collect();
        let field_eq = MEASUREMENTS[..cfg.measurements]
            .iter()
            .map(|m| std::array::from_fn(|i| format!("{}=", m.fields[i]).into_bytes()))
            .collect();
        Ok(Generator {
            next_id: u64::from(cfg.hosts),
            rng,
            hosts,
            walk,
            tick: 0,
            slot: 0,
            measurement: 0,
            field_eq,
            cfg,
        })
    }

    /// The config.
    pub fn config(&self) -> &DataConfig {
        &self.cfg
    }

    /// Emits whole points, calling `f` for each, until at least `max_rows` samples were
    /// emitted (so up to 9 more). Returns the number of samples.
    pub fn next_points(&mut self, max_rows: usize, mut f: impl FnMut(&Point<'_>)) -> usize {
        let mut rows = 0;
        while rows < max_rows {
            if self.slot == 0 && self.measurement == 0 && self.tick > 0 {
                self.churn();
            }
            let w = self.slot * self.cfg.measurements + self.measurement;
            let ts = self.timestamp();
            let cents = &mut self.walk[w];
            for c in cents.iter_mut() {
                let step = (self.rng.next_u64() % 201) as i64 - 100;
                *c = (*c + step).clamp(0, 10_000);
            }
            f(&Point {
                host: &self.hosts[self.slot],
                measurement: self.measurement,
                timestamp_ms: ts,
                cents: &self.walk[w],
            });
            rows += FIELDS;
            self.advance();
        }
        rows
    }

    fn timestamp(&mut self) -> i64 {
        let mut ts = self.cfg.start_ms + self.tick * self.cfg.interval_ms;
        if self.cfg.jitter_ms > 0 {
            ts += self.rng.below(self.cfg.jitter_ms as u64) as i64;
        }
        if self.cfg.out_of_order > 0.0 && self.rng.unit() < self.cfg.out_of_order {
            ts -= 1 + self.rng.below(self.cfg.late_ms.max(1) as u64) as i64;
        }
        ts
    }

    fn advance(&mut self) {
        self.measurement += 1;
        if self.measurement == self.cfg.measurements {
            self.measurement = 0;
            self.slot += 1;
            if self.slot == self.hosts.len() {
                self.slot = 0;
                self.tick += 1;
            }
        }
    }

    fn churn(&mut self) {
        if self.cfg.churn <= 0.0 {
            return;
        }
        for slot in 0..self.hosts.len() {
            if self.rng.unit() < self.cfg.churn {
                self.hosts[slot] = Host::new(&self.cfg, self.next_id);
                self.next_id += 1;
            }
        }
    }

    /// Renders whole points as Influx line protocol (millisecond timestamps, `precision=ms`)
    /// into `out` until at least `max_rows` samples; returns the number of samples.
    pub fn render_lines(&mut self, max_rows: usize, out: &mut Vec<u8>) -> usize {
        let field_eq = std::mem::take(&mut self.field_eq);
        let rows = self.next_points(max_rows, |p| {
            out.extend_from_slice(p.line_key());
            let names = &field_eq[p.measurement];
            for (i, name) in names.iter().enumerate() {
                out.push(if i == 0 { b' ' } else { b',' });
                out.extend_from_slice(name);
                push_cents(out, p.cents[i]);
            }
            out.push(b' ');
            out.extend_from_slice(itoa::Buffer::new().format(p.timestamp_ms).as_bytes());
            out.push(b'\n');
        });
        self.field_eq = field_eq;
        rows
    }

    /// The next points as [`Sample`]s (the generic, allocating path).
    pub fn next_samples(&mut self, max_rows: usize) -> Vec<Sample> {
        let mut out = Vec::with_capacity(max_rows + FIELDS);
        let prefix = self.cfg.prefix.clone();
        self.next_points(max_rows, |p| p.push_samples(&prefix, &mut out));
        out
    }
}

#[cfg(test)]
mod tests {
    use chgate_gateway::protocol::influx::{self, Precision};
    use chgate_gateway::protocol::series::series_id;

    use super::*;

    fn gen(cfg: DataConfig) -> Generator {
        Generator::new(cfg).expect("valid")
    }

    #[test]
    fn same_seed_same_bytes_other_seed_other_bytes() {
        let render = |seed| {
            let mut g = gen(DataConfig {
                seed,
                ..DataConfig::default()
            });
            let mut out = Vec::new();
            g.render_lines(5_000, &mut out);
            out
        };
        assert_eq!(render(7), render(7));
        assert_ne!(render(7), render(8));
    }

    #[test]
    fn lines_decode_to_the_same_samples_as_the_generic_path() {
        let cfg = DataConfig {
            hosts: 3,
            prefix: "lg_t_".into(),
            jitter_ms: 500,
            out_of_order: 0.2,
            ..DataConfig::default()
        };
        let mut out = Vec::new();
        let rows = gen(cfg.clone()).render_lines(1_000, &mut out);
        let text = std::str::from_utf8(&out).expect("utf8");
        let batch = influx::decode(text, Precision::Milliseconds, 0);
        assert!(batch.errors.is_empty(), "{:?}", batch.errors.first());
        assert_eq!(batch.samples.len(), rows);
        assert_eq!(rows % FIELDS, 0);
        assert_eq!(batch.samples, gen(cfg).next_samples(1_000));
    }

    #[test]
    fn cached_series_ids_match_the_gateway() {
        let cfg = DataConfig {
            hosts: 2,
            prefix: "p_".into(),
            ..DataConfig::default()
        };
        let mut g = gen(cfg);
        let mut ids = Vec::new();
        g.next_points(40, |p| {
            let mut s = Vec::new();
            p.push_samples("p_", &mut s);
            for (i, sample) in s.iter().enumerate() {
                ids.push((p.series_id(i), series_id(&sample.metric, &sample.labels)));
            }
        });
        assert!(ids.iter().all(|(a, b)| a == b));
    }

    #[test]
    fn cardinality_and_churn() {
        let cfg = DataConfig {
            hosts: 10,
            measurements: 2,
            ..DataConfig::default()
        };
        assert_eq!(cfg.cardinality(), 200);
        let distinct = |churn| {
            let mut g = gen(DataConfig {
                churn,
                ..cfg.clone()
            });
            let mut set = std::collections::HashSet::new();
            g.next_points(200 * 20, |p| {
                set.insert(p.series_id(0));
            });
            set.len()
        };
        assert_eq!(distinct(0.0), 20);
        assert!(distinct(0.5) > 40);
    }

    #[test]
    fn out_of_order_moves_points_back_within_late() {
        let cfg = DataConfig {
            hosts: 1,
            measurements: 1,
            interval_ms: 1_000,
            out_of_order: 0.5,
            late_ms: 5_000,
            ..DataConfig::default()
        };
        let start = cfg.start_ms;
        let mut g = gen(cfg);
        let mut ts = Vec::new();
        g.next_points(1_000, |p| ts.push(p.timestamp_ms));
        let backwards = ts.windows(2).filter(|w| w[1] < w[0]).count();
        assert!(backwards > 10, "{backwards}");
        for (tick, t) in ts.iter().enumerate() {
            let nominal = start + tick as i64 * 1_000;
            assert!(*t <= nominal && *t >= nominal - 5_000, "{t} vs {nominal}");
        }
    }

    #[test]
    fn cents_render_with_two_decimals() {
        let r = |c| {
            let mut v = Vec::new();
            push_cents(&mut v, c);
            String::from_utf8(v).expect("utf8")
        };
        assert_eq!(r(0), "0.00");
        assert_eq!(r(5), "0.05");
        assert_eq!(r(12345), "123.45");
        assert_eq!(r(-105), "-1.05");
    }

    #[test]
    fn bad_configs_name_the_field() {
        let bad = |c: DataConfig| c.validate().expect_err("invalid");
        assert!(bad(DataConfig {
            hosts: 0,
            ..DataConfig::default()
        })
        .contains("hosts"));
        assert!(bad(DataConfig {
            prefix: "a-b".into(),
            ..DataConfig::default()
        })
        .contains("prefix"));
        assert!(bad(DataConfig {
            churn: 2.0,
            ..DataConfig::default()
        })
        .contains("churn"));
    }
}

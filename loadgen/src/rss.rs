//! Memory of gateway processes: `VmHWM` (peak RSS) and `VmRSS` from `/proc/PID/status`, found
//! through the rig's pid files (`<state_dir>/run/gateway-N.pid`) or for this process.

use std::path::Path;

use serde::Serialize;

/// Memory of one process.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ProcessMemory {
    /// Name (`gateway-1`, `self`).
    pub name: String,
    /// Process id.
    pub pid: u32,
    /// Peak resident set, KiB.
    pub hwm_kib: u64,
    /// Current resident set, KiB.
    pub rss_kib: u64,
}

/// Reads `VmHWM` and `VmRSS` (KiB) from the text of `/proc/PID/status` (pure).
pub fn parse_status(text: &str) -> Option<(u64, u64)> {
    let field = |name: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|rest| rest.split_whitespace().next())
            .and_then(|v| v.parse::<u64>().ok())
    };
    Some((field("VmHWM:")?, field("VmRSS:")?))
}

/// Memory of process `pid`, if it exists.
pub fn of_pid(name: &str, pid: u32) -> Option<ProcessMemory> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let (hwm_kib, rss_kib) = parse_status(&text)?;
    Some(ProcessMemory {
        name: name.to_owned(),
        pid,
        hwm_kib,
        rss_kib,
    })
}

/// Memory of every gateway with a pid file under `state_dir/run`.
pub fn gateways(state_dir: &Path) -> Vec<ProcessMemory> {
    let Ok(dir) = std::fs::read_dir(state_dir.join("run")) else {
        return Vec::new();
    };
    let mut out: Vec<ProcessMemory> = dir
        .flatten()
        .filter_map(|e| {
            let file = e.file_name().to_string_lossy().into_owned();
            let name = file.strip_suffix(".pid")?.to_owned();
            if !name.starts_with("gateway") {
                return None;
            }
            let pid = std::fs::read_to_string(e.path())
                .ok()?
                .trim()
                .parse()
                .ok()?;
            of_pid(&name, pid)
        })
        .collect();
    out.sort_by(|a, b| a.name.cmp(&b.name));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_fields_parse() {
        let t = "Name:\tchgate\nVmPeak:\t 1000 kB\nVmHWM:\t   51200 kB\nVmRSS:\t   40960 kB\n";
        assert_eq!(parse_status(t), Some((51_200, 40_960)));
        assert_eq!(parse_status("Name: x\n"), None);
        let me = of_pid("self", std::process::id()).expect("own status");
        assert!(me.hwm_kib >= me.rss_kib && me.rss_kib > 0);
    }
}

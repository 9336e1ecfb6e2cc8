//! Human output: the summary table after a run, the `compare` ratio table, and a standalone
//! HTML report with hand-written inline SVG charts (throughput and latency per second).

use std::fmt::Write as _;

use crate::job::{Report, Target};
use crate::stats::SecondSummary;

fn target_name(t: &Target) -> String {
    match t {
        Target::Gateway { url, protocol } => format!("gateway {url} ({protocol:?})"),
        Target::Direct(m) => format!("direct ClickHouse ({m:?})"),
    }
}

/// The summary table of one run.
pub fn summary(r: &Report) -> String {
    let s = &r.stats;
    let l = &s.latency_ms;
    let mut out = String::new();
    let mut line = |k: &str, v: String| {
        let _ = writeln!(out, "  {k:<22} {v}");
    };
    line("run", r.label.clone());
    line("target", target_name(&r.target));
    line("mode", format!("{:?}", r.settings.mode));
    line("elapsed", format!("{:.2} s", s.elapsed_s));
    line("rows acked", s.rows.to_string());
    line(
        "bytes acked",
        format!("{} ({:.1} MB)", s.bytes, s.bytes as f64 / 1e6),
    );
    line(
        "requests ok / failed",
        format!("{} / {}", s.requests, s.failed),
    );
    line("retries", s.retries.to_string());
    line(
        "throughput",
        format!("{:.0} rows/s, {:.2} MB/s", s.rows_per_s, s.mb_per_s),
    );
    line(
        "latency ms",
        format!(
            "p50 {:.1}  p90 {:.1}  p99 {:.1}  p99.9 {:.1}  max {:.1}",
            l.p50, l.p90, l.p99, l.p999, l.max
        ),
    );
    let errors = if s.errors.is_empty() {
        "none".to_owned()
    } else {
        s.errors
            .iter()
            .map(|(k, v)| format!("{k}: {v}"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    line("errors by status", errors);
    if let Some(e) = &s.last_error {
        line("last error", e.clone());
    }
    for m in &r.memory {
        line(
            &format!("memory {}", m.name),
            format!(
                "peak RSS {:.1} MiB, RSS {:.1} MiB (pid {})",
                m.hwm_kib as f64 / 1024.0,
                m.rss_kib as f64 / 1024.0,
                m.pid
            ),
        );
    }
    if let Some(v) = &r.verification {
        let per_node = v
            .nodes
            .iter()
            .map(|n| match &n.error {
                None => format!("{} {}", n.node, n.rows),
                Some(_) => format!("{} ?", n.node),
            })
            .collect::<Vec<_>>()
            .join(", ");
        line(
            "verified rows",
            format!("{} found / {} acked  [{per_node}]", v.found, v.acked),
        );
        line(
            "verification",
            if v.ok() {
                "OK: no loss, no duplicates, replicas agree".to_owned()
            } else {
                format!("FAILED: {}", v.problems.join("; "))
            },
        );
    }
    out
}

/// Compare table: every leg, and the gateway/direct ratios of rows/s.
pub fn compare_table(reports: &[Report]) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{:<22} {:>12} {:>10} {:>9} {:>9} {:>9} {:>8}  verified",
        "LEG", "rows", "rows/s", "MB/s", "p50 ms", "p99 ms", "errors"
    );
    for r in reports {
        let s = &r.stats;
        let verified = match &r.verification {
            Some(v) if v.ok() => "ok".to_owned(),
            Some(v) => format!("FAILED ({} found)", v.found),
            None => "-".to_owned(),
        };
        let _ = writeln!(
            out,
            "{:<22} {:>12} {:>10.0} {:>9.2} {:>9.1} {:>9.1} {:>8}  {verified}",
            r.label, s.rows, s.rows_per_s, s.mb_per_s, s.latency_ms.p50, s.latency_ms.p99, s.failed
        );
    }
    for pair in reports.chunks(2) {
        if let [direct, gateway] = pair {
            let ratio = gateway.stats.rows_per_s / direct.stats.rows_per_s.max(1e-9);
            let _ = writeln!(
                out,
                "ratio {} / {}: {ratio:.2}",
                gateway.label, direct.label
            );
        }
    }
    out
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// One line chart: `series` are (name, colour, values per second).
fn svg_chart(title: &str, unit: &str, series: &[(&str, &str, Vec<f64>)]) -> String {
    let (w, h, pad) = (640.0, 220.0, 40.0);
    let n = series.iter().map(|s| s.2.len()).max().unwrap_or(0).max(2);
    let top = series
        .iter()
        .flat_map(|s| s.2.iter().copied())
        .fold(0.0f64, f64::max)
        .max(1e-9)
        * 1.1;
    let x = |i: usize| pad + (w - 2.0 * pad) * i as f64 / (n - 1) as f64;
    let y = |v: f64| h - pad - (h - 2.0 * pad) * v / top;
    let mut out = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{w}\" height=\"{h}\" viewBox=\"0 0 {w} {h}\">\
<rect width=\"100%\" height=\"100%\" fill=\"white\" stroke=\"#ccc\"/>\
<text x=\"{pad}\" y=\"20\" font-size=\"14\" font-family=\"sans-serif\">{}</text>\
<line x1=\"{pad}\" y1=\"{}\" x2=\"{}\" y2=\"{}\" stroke=\"#888\"/>\
<line x1=\"{pad}\" y1=\"{pad}\" x2=\"{pad}\" y2=\"{}\" stroke=\"#888\"/>\
<text x=\"2\" y=\"{}\" font-size=\"10\" font-family=\"sans-serif\">{:.0} {}</text>\
<text x=\"{}\" y=\"{}\" font-size=\"10\" font-family=\"sans-serif\">{} s</text>",
        escape(title),
        h - pad,
        w - pad,
        h - pad,
        h - pad,
        pad - 4.0,
        top,
        escape(unit),
        w - pad - 20.0,
        h - pad + 14.0,
        n - 1
    );
    for (k, (name, colour, values)) in series.iter().enumerate() {
        let points: Vec<String> = values
            .iter()
            .enumerate()
            .map(|(i, v)| format!("{:.1},{:.1}", x(i), y(*v)))
            .collect();
        let _ = write!(
            out,
            "<polyline fill=\"none\" stroke=\"{colour}\" stroke-width=\"1.5\" points=\"{}\"/>\
<text x=\"{}\" y=\"20\" font-size=\"11\" fill=\"{colour}\" font-family=\"sans-serif\">{}</text>",
            points.join(" "),
            w - 200.0 + 90.0 * k as f64,
            escape(name)
        );
    }
    out.push_str("</svg>");
    out
}

fn charts(timeline: &[SecondSummary]) -> String {
    let rows: Vec<f64> = timeline.iter().map(|s| s.rows as f64).collect();
    let p50: Vec<f64> = timeline.iter().map(|s| s.p50_ms).collect();
    let p99: Vec<f64> = timeline.iter().map(|s| s.p99_ms).collect();
    format!(
        "{}\n{}",
        svg_chart(
            "throughput (rows acked per second)",
            "rows/s",
            &[("rows/s", "#1f77b4", rows)]
        ),
        svg_chart(
            "latency per second",
            "ms",
            &[("p50", "#2ca02c", p50), ("p99", "#d62728", p99)]
        )
    )
}

/// A standalone HTML page: for each report its summary table and two charts.
pub fn html(title: &str, reports: &[Report]) -> String {
    let mut out = format!(
        "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>{0}</title>\
<style>body{{font-family:sans-serif;margin:2em}}pre{{background:#f6f6f6;padding:1em}}</style>\
</head><body><h1>{0}</h1>\n",
        escape(title)
    );
    if reports.len() > 1 {
        let _ = writeln!(
            out,
            "<h2>comparison</h2><pre>{}</pre>",
            escape(&compare_table(reports))
        );
    }
    for r in reports {
        let _ = writeln!(
            out,
            "<h2>{}</h2><pre>{}</pre>\n{}",
            escape(&r.label),
            escape(&summary(r)),
            charts(&r.stats.timeline)
        );
    }
    out.push_str("</body></html>\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::body::DirectMode;
    use crate::data::DataConfig;
    use crate::run::RunSettings;
    use crate::stats::Stats;
    use crate::verify::{judge, NodeCount};

    fn report(label: &str, rows_per_s_scale: u64) -> Report {
        let stats = Stats::new();
        for _ in 0..rows_per_s_scale {
            stats.ok(std::time::Duration::from_millis(5), 100, 1000);
        }
        Report {
            label: label.into(),
            target: Target::Direct(DirectMode::Distributed),
            data: DataConfig::default(),
            settings: RunSettings::default(),
            stats: stats.snapshot(std::time::Duration::from_secs(1)),
            verification: Some(judge(
                100 * rows_per_s_scale,
                vec![NodeCount {
                    node: "ch-s1r1".into(),
                    shard: 1,
                    replica: 1,
                    rows: 100 * rows_per_s_scale,
                    error: None,
                }],
            )),
            memory: Vec::new(),
        }
    }

    #[test]
    fn summary_names_every_figure() {
        let s = summary(&report("a <b>", 3));
        for k in [
            "rows acked",
            "rows/s",
            "p99.9",
            "errors by status",
            "retries",
            "OK: no loss",
        ] {
            assert!(s.contains(k), "{k} missing in\n{s}");
        }
    }

    #[test]
    fn compare_prints_ratios_and_html_escapes_and_has_svg() {
        let r = [report("direct", 4), report("gateway", 2)];
        let t = compare_table(&r);
        assert!(t.contains("ratio gateway / direct: 0.50"), "{t}");
        let h = html("run <1>", &r);
        assert!(h.contains("run &lt;1&gt;") && h.matches("<svg").count() == 4);
        assert!(h.contains("<polyline"));
    }
}

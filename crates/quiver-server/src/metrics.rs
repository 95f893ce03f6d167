//! Prometheus metrics in the text exposition format (version 0.0.4), written by hand: request counters and
//! latency histograms by route and status, kept here; per-collection figures read from the engine at scrape
//! time, so they are never stale.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::time::Duration;

use parking_lot::Mutex;
use quiver_engine::Database;

/// Upper bounds of the latency histogram buckets, seconds.
const BUCKETS: [f64; 14] = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0];

#[derive(Debug, Default, Clone)]
struct Histogram {
    counts: [u64; BUCKETS.len()],
    sum: f64,
    count: u64,
}

/// The server's own metrics.
#[derive(Debug, Default)]
pub struct Metrics {
    requests: Mutex<BTreeMap<(String, String, u16), u64>>,
    latency: Mutex<BTreeMap<(String, String), Histogram>>,
    cluster_searches: std::sync::atomic::AtomicU64,
    cluster_shard_requests: std::sync::atomic::AtomicU64,
    cluster_writes: std::sync::atomic::AtomicU64,
}

impl Metrics {
    /// Records one finished request. `route` is the matched route template (`/collections/{name}/points`), never
    /// the raw path, so the label set stays small.
    pub fn observe(&self, method: &str, route: &str, status: u16, elapsed: Duration) {
        *self.requests.lock().entry((method.to_owned(), route.to_owned(), status)).or_default() += 1;
        let secs = elapsed.as_secs_f64();
        let mut lat = self.latency.lock();
        let h = lat.entry((method.to_owned(), route.to_owned())).or_default();
        for (i, b) in BUCKETS.iter().enumerate() {
            if secs <= *b {
                h.counts[i] += 1;
            }
        }
        h.sum += secs;
        h.count += 1;
    }

    /// Records one cluster search routed to `shards` shards.
    pub fn cluster_fanout(&self, shards: usize) {
        use std::sync::atomic::Ordering::Relaxed;
        self.cluster_searches.fetch_add(1, Relaxed);
        self.cluster_shard_requests.fetch_add(shards as u64, Relaxed);
    }

    /// Records one cluster write routed through this node.
    pub fn cluster_write(&self) {
        self.cluster_writes.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    }

    /// The cluster routing counters (zero outside cluster mode), in exposition text.
    pub fn render_cluster(&self, out: &mut String) {
        use std::sync::atomic::Ordering::Relaxed;
        for (name, help, v) in [
            ("quiver_cluster_searches_total", "Searches this node routed across shards.", &self.cluster_searches),
            (
                "quiver_cluster_shard_requests_total",
                "Shard requests those searches made (searches x shards probed).",
                &self.cluster_shard_requests,
            ),
            ("quiver_cluster_writes_total", "Writes this node routed to shard logs.", &self.cluster_writes),
        ] {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} counter\n{name} {}", v.load(Relaxed));
        }
    }

    /// The exposition text: the server's metrics, then each collection's (read now from `db`).
    pub fn render(&self, db: Option<&Database>) -> String {
        let mut out = String::with_capacity(4096);
        out.push_str("# HELP quiver_http_requests_total HTTP requests by method, route and status.\n");
        out.push_str("# TYPE quiver_http_requests_total counter\n");
        for ((m, r, s), n) in self.requests.lock().iter() {
            let _ = writeln!(
                out,
                "quiver_http_requests_total{{method=\"{m}\",route=\"{}\",status=\"{s}\"}} {n}",
                escape(r)
            );
        }
        out.push_str("# HELP quiver_http_request_duration_seconds HTTP request latency by method and route.\n");
        out.push_str("# TYPE quiver_http_request_duration_seconds histogram\n");
        for ((m, r), h) in self.latency.lock().iter() {
            let labels = format!("method=\"{m}\",route=\"{}\"", escape(r));
            for (b, c) in BUCKETS.iter().zip(h.counts) {
                let _ = writeln!(out, "quiver_http_request_duration_seconds_bucket{{{labels},le=\"{b}\"}} {c}");
            }
            let _ = writeln!(out, "quiver_http_request_duration_seconds_bucket{{{labels},le=\"+Inf\"}} {}", h.count);
            let _ = writeln!(out, "quiver_http_request_duration_seconds_sum{{{labels}}} {}", h.sum);
            let _ = writeln!(out, "quiver_http_request_duration_seconds_count{{{labels}}} {}", h.count);
        }
        let Some(db) = db else { return out };
        let mut rows: Vec<(String, String, u64)> = Vec::new();
        // Gauges with fractional values.
        let mut fractions: Vec<(&str, String, f64)> = Vec::new();
        let mut unavailable = 0u64;
        for status in db.list() {
            if status.unavailable.is_some() {
                unavailable += 1;
                continue;
            }
            let Ok(info) = db.collection(&status.name).and_then(|c| c.info()) else { continue };
            let c = escape(&info.name);
            let seg_disk: u64 = info.segments.iter().map(|s| s.disk_bytes).sum();
            rows.push(("quiver_collection_points".into(), format!("collection=\"{c}\""), info.points));
            rows.push(("quiver_collection_segments".into(), format!("collection=\"{c}\""), info.segments.len() as u64));
            rows.push(("quiver_collection_memory_bytes".into(), format!("collection=\"{c}\""), info.memory_bytes));
            rows.push(("quiver_collection_mapped_bytes".into(), format!("collection=\"{c}\""), info.mapped_bytes));
            rows.push(("quiver_collection_disk_bytes".into(), format!("collection=\"{c}\""), info.disk_bytes));
            rows.push((
                "quiver_collection_wal_bytes".into(),
                format!("collection=\"{c}\""),
                info.disk_bytes.saturating_sub(seg_disk),
            ));
            rows.push(("quiver_collection_applied_seq".into(), format!("collection=\"{c}\""), info.applied_seq));
            if let Some(r) = info.estimated_recall {
                fractions.push(("quiver_estimated_recall", format!("collection=\"{c}\""), r));
            }
            if let Some(q) = &info.query_cache {
                rows.push(("quiver_query_cache_hits_total".into(), format!("collection=\"{c}\""), q.hits));
                rows.push(("quiver_query_cache_misses_total".into(), format!("collection=\"{c}\""), q.misses));
            }
            let o = &info.optimizer;
            for (job, n) in [
                ("seal", o.sealed),
                ("merge", o.merged),
                ("vacuum", o.vacuumed),
                ("migrate", o.migrated),
                ("expire", o.expired_purged),
            ] {
                rows.push(("quiver_optimizer_jobs_total".into(), format!("collection=\"{c}\",job=\"{job}\""), n));
            }
            rows.push((
                "quiver_optimizer_failing".into(),
                format!("collection=\"{c}\""),
                u64::from(o.last_error.is_some()),
            ));
        }
        const HELP: [(&str, &str, &str); 13] = [
            ("quiver_collection_points", "gauge", "Live points per collection."),
            ("quiver_collection_segments", "gauge", "Segments per collection."),
            (
                "quiver_collection_memory_bytes",
                "gauge",
                "Heap bytes per collection (indexes, codes, payloads, growing vectors).",
            ),
            (
                "quiver_collection_mapped_bytes",
                "gauge",
                "Vector bytes per collection read in place from mapped segment files.",
            ),
            ("quiver_collection_disk_bytes", "gauge", "Bytes on disk per collection."),
            ("quiver_collection_wal_bytes", "gauge", "Bytes on disk outside segment files (WAL, manifest, config)."),
            ("quiver_collection_applied_seq", "gauge", "Highest applied operation sequence number."),
            ("quiver_optimizer_jobs_total", "counter", "Optimizer jobs done since the collection was opened."),
            ("quiver_query_cache_hits_total", "counter", "Searches answered from the result cache."),
            ("quiver_query_cache_misses_total", "counter", "Cacheable searches that had to search."),
            ("quiver_optimizer_failing", "gauge", "1 when the optimizer's last job failed."),
            ("quiver_collections_unavailable", "gauge", "Collections that could not be opened."),
            (
                "quiver_estimated_recall",
                "gauge",
                "Measured recall@10 of an unfiltered search (at the collection's target_recall, else the defaults).",
            ),
        ];
        for (name, ty, help) in HELP {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {ty}");
            if name == "quiver_collections_unavailable" {
                let _ = writeln!(out, "{name} {unavailable}");
            }
            for (n, labels, v) in rows.iter().filter(|r| r.0 == name) {
                let _ = writeln!(out, "{n}{{{labels}}} {v}");
            }
            for (n, labels, v) in fractions.iter().filter(|r| r.0 == name) {
                let _ = writeln!(out, "{n}{{{labels}}} {v:.4}");
            }
        }
        out
    }
}

/// `text` without the series labelled `collection="X"` for which `keep(X)` is false (a caller's view of the
/// metrics when it may read only some collections).
pub fn only_collections(text: &str, keep: impl Fn(&str) -> bool) -> String {
    let mut out = String::with_capacity(text.len());
    for line in text.split_inclusive('\n') {
        let hidden = !line.starts_with('#') && collection_label(line).is_some_and(|c| !keep(&c));
        if !hidden {
            out.push_str(line);
        }
    }
    out
}

/// The unescaped value of a sample line's `collection` label.
fn collection_label(line: &str) -> Option<String> {
    let labels = &line[line.find('{')? + 1..];
    let at = labels.find("collection=\"").filter(|&i| i == 0 || labels.as_bytes()[i - 1] == b',')?;
    let mut out = String::new();
    let mut chars = labels[at + "collection=\"".len()..].chars();
    while let Some(ch) = chars.next() {
        match ch {
            '"' => return Some(out),
            '\\' => match chars.next()? {
                'n' => out.push('\n'),
                c => out.push(c),
            },
            c => out.push(c),
        }
    }
    None
}

/// Escapes a label value (backslash, quote, newline).
pub(crate) fn escape(s: &str) -> String {
    s.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histogram_buckets_are_cumulative_and_counts_match() {
        let m = Metrics::default();
        m.observe("GET", "/a", 200, Duration::from_millis(3));
        m.observe("GET", "/a", 200, Duration::from_millis(30));
        m.observe("GET", "/a", 404, Duration::from_secs(20));
        let text = m.render(None);
        assert!(text.contains("quiver_http_requests_total{method=\"GET\",route=\"/a\",status=\"200\"} 2"));
        assert!(text.contains("quiver_http_requests_total{method=\"GET\",route=\"/a\",status=\"404\"} 1"));
        assert!(text.contains("le=\"0.005\"} 1\n"), "{text}");
        assert!(text.contains("le=\"0.05\"} 2\n"), "{text}");
        assert!(text.contains("le=\"10\"} 2\n"), "{text}");
        assert!(text.contains("le=\"+Inf\"} 3\n"), "{text}");
        assert!(text.contains("quiver_http_request_duration_seconds_count{method=\"GET\",route=\"/a\"} 3"));
    }

    #[test]
    fn series_of_hidden_collections_are_left_out() {
        let text =
            "# HELP x h\nx{collection=\"a\"} 1\nx{collection=\"b\\\"c\"} 2\ny{job=\"s\",collection=\"b\"} 3\nz 4\n";
        let kept = only_collections(text, |c| c == "a");
        assert_eq!(kept, "# HELP x h\nx{collection=\"a\"} 1\nz 4\n");
        let kept = only_collections(text, |c| c == "b\"c");
        assert_eq!(kept, "# HELP x h\nx{collection=\"b\\\"c\"} 2\nz 4\n");
    }

    #[test]
    fn label_values_are_escaped() {
        assert_eq!(escape("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
    }
}

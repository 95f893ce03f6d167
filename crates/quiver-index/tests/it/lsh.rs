//! LSH: recall at defaults on the real set for every metric, multi-probe, the shared checks.

use crate::common;
use quiver_index::{IndexKind, Metric, SearchParams};

#[test]
fn recall_at_default_parameters() {
    for (metric, min) in [(Metric::Cosine, 0.9), (Metric::Euclidean, 0.9), (Metric::Dot, 0.9)] {
        let r = common::real_recall(IndexKind::Lsh, metric, &[], &SearchParams::new());
        eprintln!("lsh {metric} recall@10 at defaults {r:.4}");
        assert!(r >= min, "{metric}: recall@10 {r:.4} < {min}");
    }
}

#[test]
fn multi_probe_buys_recall() {
    let one = common::real_recall(IndexKind::Lsh, Metric::Cosine, &[], &SearchParams::new().with_probes(1));
    let many = common::real_recall(IndexKind::Lsh, Metric::Cosine, &[], &SearchParams::new().with_probes(24));
    eprintln!("lsh probes 1: {one:.4}, probes 24: {many:.4}");
    assert!(many > one + 0.1, "probes 1: {one:.4}, probes 24: {many:.4}");
}

#[test]
fn filtered_search() {
    common::filtered_search(IndexKind::Lsh, 0.85);
}

#[test]
fn churn_never_returns_removed_ids() {
    common::churn(IndexKind::Lsh, 0.85);
}

#[test]
fn bytes_round_trip_and_damage_is_detected() {
    common::bytes(IndexKind::Lsh, Metric::Euclidean, &["tables=3", "bits=4"]);
    common::bytes(IndexKind::Lsh, Metric::Cosine, &[]);
}

#[test]
fn bad_input_and_edge_cases() {
    common::bad_input(IndexKind::Lsh, &["tables=0", "bits=65", "width=0", "probes=0"]);
}

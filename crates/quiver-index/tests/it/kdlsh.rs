//! KD-LSH: recall at defaults on the real set for every metric, the shared checks.

use crate::common;
use quiver_index::{IndexKind, Metric, SearchParams};

#[test]
fn recall_at_default_parameters() {
    for (metric, min) in [(Metric::Cosine, 0.9), (Metric::Euclidean, 0.9), (Metric::Dot, 0.9)] {
        let r = common::real_recall(IndexKind::KdLsh, metric, &[], &SearchParams::new());
        eprintln!("kd-lsh {metric} recall@10 at defaults {r:.4}");
        assert!(r >= min, "{metric}: recall@10 {r:.4} < {min}");
    }
}

#[test]
fn more_regions_buy_recall() {
    let extra = ["region_size=128"];
    let one = common::real_recall(IndexKind::KdLsh, Metric::Cosine, &extra, &SearchParams::new().with_nprobe(1));
    let many = common::real_recall(IndexKind::KdLsh, Metric::Cosine, &extra, &SearchParams::new().with_nprobe(16));
    eprintln!("kd-lsh nprobe 1: {one:.4}, nprobe 16: {many:.4}");
    assert!(many > one + 0.1, "nprobe 1: {one:.4}, nprobe 16: {many:.4}");
}

#[test]
fn filtered_search() {
    common::filtered_search(IndexKind::KdLsh, 0.85);
}

#[test]
fn churn_never_returns_removed_ids() {
    common::churn(IndexKind::KdLsh, 0.85);
}

#[test]
fn bytes_round_trip_and_damage_is_detected() {
    common::bytes(IndexKind::KdLsh, Metric::Euclidean, &["region_size=8", "tables=2", "bits=3"]);
    common::bytes(IndexKind::KdLsh, Metric::Cosine, &[]);
}

#[test]
fn bad_input_and_edge_cases() {
    common::bad_input(IndexKind::KdLsh, &["region_size=0", "probe_regions=0", "tables=0", "width=-1"]);
}

#[test]
#[ignore]
fn tune() {
    let kind = quiver_index::IndexKind::parse(&std::env::var("QV_KIND").unwrap()).unwrap();
    let metric = Metric::parse(&std::env::var("QV_METRIC").unwrap_or("cosine".into())).unwrap();
    let extra = std::env::var("QV_EXTRA").unwrap_or_default();
    let extra: Vec<&str> = extra.split_whitespace().collect();
    for sp in std::env::var("QV_SP").unwrap_or_default().split(';') {
        let p = quiver_index::Params::parse(sp.split_whitespace()).unwrap();
        let sp2 = SearchParams::from_params(p, "t", &SearchParams::NAMES).unwrap();
        let t = std::time::Instant::now();
        let r = common::real_recall(kind, metric, &extra, &sp2);
        eprintln!("{kind} {metric} {extra:?} [{sp}] recall {r:.4} {:?}", t.elapsed());
    }
}

#[test]
fn refined_regions_buy_recall_at_equal_probes() {
    // The Lloyd refinement puts every point in the region whose centroid is nearest, the rule queries rank
    // regions by, so the same number of probed regions finds more true neighbours than the tree's own cells.
    let sp = SearchParams::new().with_nprobe(2);
    let extra = ["region_size=128", "probes=64"];
    let plain = common::real_recall(IndexKind::KdLsh, Metric::Cosine, &[extra[0], extra[1], "refine=0"], &sp);
    let refined = common::real_recall(IndexKind::KdLsh, Metric::Cosine, &extra, &sp);
    eprintln!("kd-lsh nprobe 2: tree regions {plain:.4}, refined regions {refined:.4}");
    assert!(refined > plain + 0.03, "tree regions {plain:.4}, refined {refined:.4}");
}

//! `target_recall`: segments calibrated on recent queries pick a width that meets the target on other queries.

use std::path::PathBuf;

use quiver_engine::{Collection, Error, Filter, IndexConfig, PointId, PointInput, SearchRequest};
use quiver_index::dataset::Dataset;
use quiver_index::{IndexKind, Metric, SearchParams};
use serde_json::json;

use crate::common::{mem_collection, payload, random_vectors};

fn wordnet_3k() -> Dataset {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../testdata/wordnet-minilm-3k");
    Dataset::load(dir, None).expect("testdata/wordnet-minilm-3k is part of the repo")
}

/// A sparse graph (m 4, ef_construction 16) so that recall really depends on `ef`.
fn weak_hnsw() -> IndexConfig {
    IndexConfig {
        kind: IndexKind::Hnsw,
        params: [("m".to_owned(), json!(4)), ("ef_construction".to_owned(), json!(16))].into_iter().collect(),
    }
}

fn ids(c: &Collection, q: &[f32], params: SearchParams, filter: Option<&Filter>) -> (Vec<u64>, String) {
    let mut req = SearchRequest::new(q.to_vec(), 10);
    req.params = params;
    req.filter = filter.cloned();
    req.explain = true;
    let r = c.search(&req).unwrap();
    let ids = r.hits.iter().map(|h| match h.id {
        PointId::Num(n) => n,
        ref other => panic!("id {other:?}"),
    });
    (ids.collect(), r.explain.unwrap().segments.iter().map(|s| s.plan.clone()).collect::<Vec<_>>().join(" | "))
}

fn recall(got: &[u64], want: &[u64]) -> f64 {
    got.iter().filter(|i| want.contains(i)).count() as f64 / want.len() as f64
}

#[test]
fn a_target_recall_is_met_on_queries_the_calibration_never_saw() {
    let set = wordnet_3k();
    let f = mem_collection(set.base.dim(), Metric::Cosine, |c| {
        c.index = weak_hnsw();
        c.optimizer.seal_points = 1_000_000;
        c.optimizer.exact_below = 0;
    });
    let c = &f.c;
    let points: Vec<PointInput> =
        set.base.iter().enumerate().map(|(i, v)| PointInput::new(i as u64, v.to_vec())).collect();
    c.upsert(points).unwrap();
    c.seal().unwrap();
    let queries: Vec<&[f32]> = set.queries.iter().collect();
    let (seen, held_out) = queries.split_at(100);

    // Before any calibration a target searches wide and says so.
    let (_, plan) = ids(c, seen[0], SearchParams::new().with_target_recall(0.9), None);
    assert!(plan.contains("ef=256 (target_recall 0.9, not calibrated yet)"), "{plan}");
    // One recorded query is not enough to measure on: nothing is calibrated, searches stay wide.
    assert_eq!(c.calibrate().unwrap(), 0);
    assert!(c.info().unwrap().segments.iter().all(|s| s.recall.is_none()));
    assert_eq!(c.info().unwrap().estimated_recall, None);
    // Recent queries are recorded once a target was asked for; the calibration measures on them.
    for q in seen {
        ids(c, q, SearchParams::new(), None);
    }
    assert_eq!(c.calibrate().unwrap(), 1);
    let est = c.info().unwrap().segments.iter().find_map(|s| s.recall.clone()).unwrap();
    assert_eq!((est.param.as_str(), est.queries), ("ef", 101), "{est:?}");

    let mut widths = Vec::new();
    for target in [0.8f64, 0.9, 0.95, 0.99] {
        let mut total = 0.0;
        let mut plan = String::new();
        for (qi, q) in held_out.iter().enumerate() {
            let qi = qi + 100;
            let want: Vec<u64> = set.groundtruth.row(qi)[..10].iter().map(|&i| i as u64).collect();
            let (got, p) = ids(c, q, SearchParams::new().with_target_recall(target), None);
            total += recall(&got, &want);
            plan = p;
        }
        let measured = total / held_out.len() as f64;
        let ef: usize = plan.split("ef=").nth(1).and_then(|s| s.split(' ').next()).unwrap().parse().unwrap();
        eprintln!("target {target}: ef {ef}, recall {measured:.4} on held-out queries ({plan})");
        assert!(measured >= target - 0.02, "target {target}: recall {measured:.4} with ef {ef}");
        widths.push(ef);
    }
    assert!(widths.windows(2).all(|w| w[0] <= w[1]), "a higher target never searches narrower: {widths:?}");
    assert!(widths[0] < widths[3], "the targets pick different widths: {widths:?}");
    // Without a target the default width and its estimate are reported.
    let info = c.info().unwrap();
    let r = info.estimated_recall.expect("estimated");
    assert!((0.5..=1.0).contains(&r), "{r}");

    // A named width wins over a target; a target of 1 searches exactly.
    let (_, plan) = ids(c, held_out[0], SearchParams::new().with_target_recall(0.99).with_ef(12), None);
    assert_eq!(plan, "index:hnsw");
    let (exact, _) = ids(c, held_out[0], SearchParams::new().with_exact(true), None);
    let (full, _) = ids(c, held_out[0], SearchParams::new().with_target_recall(1.0), None);
    assert_eq!(full, exact);

    // Bad targets are named and change nothing.
    for bad in [0.0f64, -0.5, 1.5, f64::NAN] {
        let mut req = SearchRequest::new(held_out[0].to_vec(), 10);
        req.params = SearchParams::new().with_target_recall(bad);
        match c.search(&req) {
            Err(Error::InvalidArgument { field, .. }) => assert_eq!(field, "params.target_recall", "{bad}"),
            other => panic!("target {bad}: {other:?}"),
        }
    }
}

/// The collection's own target applies to every search that names no width, and filtered searches use the band
/// measured for their filter's share.
#[test]
fn a_collection_target_applies_to_filtered_searches_too() {
    let (n, dim) = (12_000, 12);
    let vectors = random_vectors(n, dim, 7);
    let f = mem_collection(dim, Metric::Euclidean, |c| {
        c.index = weak_hnsw();
        c.optimizer.seal_points = 1_000_000;
        c.target_recall = Some(0.95);
    });
    let c = &f.c;
    c.upsert(
        vectors
            .iter()
            .enumerate()
            .map(|(i, v)| PointInput::new(i as u64, v.clone()).with_payload(payload(json!({"half": i % 2}))))
            .collect(),
    )
    .unwrap();
    c.seal().unwrap();
    let half: Filter = serde_json::from_value(json!({"must": [{"key": "half", "match": {"value": 0}}]})).unwrap();
    // 250 queries to calibrate on (the sample holds 256) and 250 to measure: with 100 of each, a graph built on
    // several threads measured 0.924-0.973 over runs, too wide for the tolerance below.
    let queries = random_vectors(500, dim, 8);
    for q in &queries[..250] {
        ids(c, q, SearchParams::new(), None);
    }
    assert_eq!(c.calibrate().unwrap(), 1);
    let info = c.info().unwrap();
    let est = info.segments.iter().find_map(|s| s.recall.clone()).unwrap();
    assert!(est.estimated >= 0.95, "{est:?}");
    assert!(info.estimated_recall.unwrap() >= 0.95);
    for filter in [None, Some(&half)] {
        let mut total = 0.0;
        let mut plan = String::new();
        for q in &queries[250..] {
            let (got, p) = ids(c, q, SearchParams::new(), filter);
            let (want, _) = ids(c, q, SearchParams::new().with_exact(true), filter);
            total += recall(&got, &want);
            plan = p;
        }
        let measured = total / 250.0;
        eprintln!("filter {}: recall {measured:.4} ({plan})", filter.is_some());
        assert!(plan.contains("target_recall 0.95, estimated"), "{plan}");
        assert!(measured >= 0.93, "filter {}: recall {measured:.4} ({plan})", filter.is_some());
    }
}

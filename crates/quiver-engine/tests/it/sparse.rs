//! Sparse vectors beside a dense one: exact dot-product search through each segment's inverted index, checked
//! against brute force in the growing segment, sealed, reopened and merged, with filters and deletes; and the
//! bad-input standard.

use std::collections::BTreeMap;
use std::sync::Arc;

use quiver_engine::config::SparseVectorConfig;
use quiver_engine::{
    Collection, CollectionConfig, Error, Filter, ManualClock, PointId, PointInput, SearchRequest, Selector,
    SparseVector,
};
use quiver_index::Metric;
use quiver_storage::MemDirectory;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde_json::json;

use crate::common::payload;

const N: u64 = 400;

fn config() -> CollectionConfig {
    let mut cfg = CollectionConfig::new(2, Metric::Dot);
    cfg.sparse_vectors.insert("terms".into(), SparseVectorConfig::default());
    cfg.optimizer.interval_ms = 0;
    cfg.optimizer.seal_points = 1_000_000;
    cfg
}

/// A SPLADE-like vector: a few of 200 terms, Zipf-ish (low ids common), positive weights; every fifth point has
/// none.
fn sparse_of(i: u64) -> Option<SparseVector> {
    if i.is_multiple_of(5) {
        return None;
    }
    let mut rng = ChaCha8Rng::seed_from_u64(i);
    let mut m = BTreeMap::new();
    for _ in 0..rng.random_range(1..12) {
        let t = (rng.random_range(0.0f64..1.0).powi(2) * 200.0) as u32;
        m.insert(t, rng.random_range(0.1f32..3.0));
    }
    Some(SparseVector { indices: m.keys().copied().collect(), values: m.values().copied().collect() })
}

fn point(i: u64) -> PointInput {
    let mut p = PointInput::new(i, vec![1.0, i as f32]);
    if let Some(v) = sparse_of(i) {
        // Sent unsorted: the engine sorts.
        let mut pairs: Vec<(u32, f32)> = v.indices.into_iter().zip(v.values).collect();
        pairs.reverse();
        p.sparse.insert(
            "terms".into(),
            SparseVector { indices: pairs.iter().map(|p| p.0).collect(), values: pairs.iter().map(|p| p.1).collect() },
        );
    }
    p.payload = Some(payload(json!({"odd": i % 2 == 1})));
    p
}

fn brute(q: &SparseVector, k: usize, keep: impl Fn(u64) -> bool) -> Vec<(u64, f32)> {
    let mut all: Vec<(u64, f32)> = (0..N)
        .filter(|&i| keep(i))
        .filter_map(|i| sparse_of(i).map(|v| (i, v)))
        .filter(|(_, v)| v.indices.iter().any(|t| q.indices.contains(t)))
        .map(|(i, v)| (i, v.dot(q)))
        .collect();
    all.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
    all.truncate(k);
    all
}

fn check(c: &Collection, deleted: &[u64], what: &str) {
    let odd: Filter = serde_json::from_value(json!({"must": [{"key": "odd", "match": {"value": true}}]})).unwrap();
    for qi in 0..8 {
        let q = sparse_of(1001 + qi * 5).unwrap();
        for filtered in [false, true] {
            let mut req = SearchRequest::sparse("terms", q.clone(), 10);
            if filtered {
                req.filter = Some(odd.clone());
            }
            let got = c.search(&req).unwrap().hits;
            let want = brute(&q, 10, |i| !deleted.contains(&i) && (!filtered || i % 2 == 1));
            assert_eq!(got.len(), want.len(), "{what}: query {qi}, filtered {filtered}");
            for (g, (id, score)) in got.iter().zip(&want) {
                assert!((g.score - score).abs() < 1e-4, "{what}: {g:?} vs ({id}, {score})");
            }
            let ids = |v: &[(u64, f32)]| v.iter().map(|x| x.0).collect::<Vec<_>>();
            let got_ids: Vec<u64> = got.iter().map(|h| if let PointId::Num(n) = h.id { n } else { 0 }).collect();
            // Ties aside, the same points in the same order.
            if want.windows(2).all(|w| w[0].1 != w[1].1) {
                assert_eq!(got_ids, ids(&want), "{what}: query {qi}, filtered {filtered}");
            }
        }
    }
}

#[test]
fn sparse_search_is_exact_in_every_segment_state() {
    let dir = MemDirectory::new(3);
    let clock = Arc::new(ManualClock::new(1_700_000_000_000));
    let c = Collection::create("sparse", Arc::new(dir.clone()), config(), clock.clone()).unwrap();
    c.upsert((0..N / 2).map(point).collect()).unwrap();
    c.seal().unwrap();
    c.upsert((N / 2..N).map(point).collect()).unwrap();
    check(&c, &[], "one sealed, one growing");
    let deleted = [1, 2, 3, 201, 333];
    c.delete(Selector::Ids(deleted.iter().map(|&i| PointId::Num(i)).collect())).unwrap();
    check(&c, &deleted, "after deletes");
    c.seal().unwrap();
    drop(c);
    let c = Collection::open("sparse", Arc::new(dir.clone()), clock.clone()).unwrap();
    check(&c, &deleted, "reopened");
    c.optimize().unwrap();
    c.set_payload(Selector::Ids(vec![PointId::Num(7)]), payload(json!({"x": 1})), None).unwrap();
    check(&c, &deleted, "merged, one point rewritten");
    // Reads give the sparse vector sorted by index, and points without one have none.
    let got = c.get(&[PointId::Num(7), PointId::Num(10)], false, true).unwrap();
    assert_eq!(got[0].sparse.as_ref().unwrap()["terms"], sparse_of(7).unwrap());
    assert!(got[1].sparse.as_ref().unwrap().is_empty());
    assert_eq!(got[0].vector.as_deref(), Some(&[1.0, 7.0][..]));
    // The dense vector is searched as before. Exactly: the largest inner product over these collinear-ish
    // vectors is the extreme point, which a graph built in parallel does not always reach (seen once in CI).
    let mut req = SearchRequest::new(vec![0.0, 1.0], 1);
    req.params = quiver_index::SearchParams::default().with_exact(true);
    let hits = c.search(&req).unwrap().hits;
    assert_eq!(hits[0].id, PointId::Num(N - 1));
}

/// A collection of sparse vectors only: the same exact search through every segment state, reads without a
/// dense vector, and a dense query or a dense vector refused.
#[test]
fn a_collection_of_sparse_vectors_only_searches_them_in_every_segment_state() {
    let dir = MemDirectory::new(3);
    let clock = Arc::new(ManualClock::new(1_700_000_000_000));
    let mut terms = BTreeMap::new();
    terms.insert("terms".to_string(), SparseVectorConfig::default());
    let mut cfg = CollectionConfig::sparse_only(terms);
    cfg.optimizer.interval_ms = 0;
    cfg.optimizer.seal_points = 1_000_000;
    assert!(!cfg.has_dense());
    let c = Collection::create("only", Arc::new(dir.clone()), cfg, clock.clone()).unwrap();
    let sparse_point = |i: u64| {
        let mut p = point(i);
        p.vector = Vec::new();
        p
    };
    c.upsert((0..N / 2).map(sparse_point).collect()).unwrap();
    c.seal().unwrap();
    c.upsert((N / 2..N).map(sparse_point).collect()).unwrap();
    check(&c, &[], "sparse only: one sealed, one growing");
    let deleted = [4, 9, 250];
    c.delete(Selector::Ids(deleted.iter().map(|&i| PointId::Num(i)).collect())).unwrap();
    c.seal().unwrap();
    drop(c);
    let c = Collection::open("only", Arc::new(dir.clone()), clock.clone()).unwrap();
    assert!(!c.config().has_dense(), "the setting survives a reopen");
    check(&c, &deleted, "sparse only: reopened");
    c.optimize().unwrap();
    check(&c, &deleted, "sparse only: merged");
    assert_eq!(c.count(None).unwrap(), N - 3);
    let got = c.get(&[PointId::Num(7)], false, true).unwrap();
    assert_eq!(got[0].sparse.as_ref().unwrap()["terms"], sparse_of(7).unwrap());
    assert_eq!(got[0].vector, None, "no dense vector is returned");
    let page = c.scroll(None, None, 5, false, true).unwrap();
    assert!(page.points.iter().all(|r| r.vector.is_none()));
    // No dense vector to search or to write; nothing changes.
    let e = c.search(&SearchRequest::new(vec![0.0], 3)).unwrap_err().to_string();
    assert!(e.contains("using") && e.contains("no dense vector"), "{e}");
    let e = c.upsert(vec![PointInput::new(1000, vec![1.0])]).unwrap_err().to_string();
    assert!(e.contains("vector") && e.contains("no dense vector"), "{e}");
    assert_eq!(c.count(None).unwrap(), N - 3);
    // What such a collection cannot have.
    let mut bad = CollectionConfig::sparse_only(BTreeMap::new());
    assert!(bad.validate().unwrap_err().to_string().contains("sparse_vectors"));
    bad.sparse_vectors.insert("t".into(), SparseVectorConfig::default());
    bad.validate().unwrap();
    bad.index = quiver_engine::IndexConfig::hnsw();
    assert!(bad.validate().unwrap_err().to_string().contains("index"));
    let mut bad = CollectionConfig::sparse_only(BTreeMap::from([("t".to_string(), SparseVectorConfig::default())]));
    bad.dimension = 8;
    assert!(bad.validate().unwrap_err().to_string().contains("dimension"));
}

#[test]
fn bad_sparse_input_is_refused_and_changes_nothing() {
    let dir = MemDirectory::new(3);
    let clock = Arc::new(ManualClock::new(1_700_000_000_000));
    let c = Collection::create("sparse", Arc::new(dir), config(), clock).unwrap();
    let field = |e: Error| match e {
        Error::InvalidPoint { field, reason, .. } => format!("{field}: {reason}"),
        Error::InvalidArgument { field, expected, got } => format!("{field}: expected {expected}, got {got}"),
        other => panic!("{other}"),
    };
    let with = |name: &str, indices: Vec<u32>, values: Vec<f32>| {
        let mut p = PointInput::new(1u64, vec![1.0, 0.0]);
        p.sparse.insert(name.into(), SparseVector { indices, values });
        p
    };
    let e = field(c.upsert(vec![with("nope", vec![1], vec![1.0])]).unwrap_err());
    assert!(e.starts_with("vector.nope: one of the collection's sparse vectors"), "{e}");
    let e = field(c.upsert(vec![with("terms", vec![1, 2], vec![1.0])]).unwrap_err());
    assert!(e.starts_with("vector.terms: expected one value per index"), "{e}");
    let e = field(c.upsert(vec![with("terms", vec![4, 4], vec![1.0, 2.0])]).unwrap_err());
    assert_eq!(e, "vector.terms.indices: expected distinct indices, got 4 twice");
    let e = field(c.upsert(vec![with("terms", vec![4], vec![f32::INFINITY])]).unwrap_err());
    assert!(e.starts_with("vector.terms.values[0]"), "{e}");
    assert_eq!(c.count(None).unwrap(), 0);
    let q = SparseVector { indices: vec![1], values: vec![1.0] };
    let mut dense_on_sparse = SearchRequest::new(vec![1.0, 0.0], 1);
    dense_on_sparse.using = Some("terms".into());
    assert!(field(c.search(&dense_on_sparse).unwrap_err()).starts_with("query:"));
    let mut sparse_on_dense = SearchRequest::sparse("terms", q, 1);
    sparse_on_dense.using = None;
    assert!(field(c.search(&sparse_on_dense).unwrap_err()).starts_with("using:"));
    let mut bad_query = SearchRequest::sparse("terms", SparseVector { indices: vec![1, 1], values: vec![1.0, 1.0] }, 1);
    assert!(field(c.search(&bad_query).unwrap_err()).starts_with("query.indices"));
    bad_query.sparse = Some(SparseVector::default());
    assert!(c.search(&bad_query).unwrap().hits.is_empty(), "an empty query matches nothing");
    let mut cfg = config();
    cfg.more_vectors.clear();
    cfg.sparse_vectors.insert(String::new(), SparseVectorConfig::default());
    assert!(matches!(cfg.validate(), Err(Error::InvalidArgument { field, .. }) if field == "sparse_vectors."));
}

/// The idf modifier: query weights times BM25's IDF over the live points that have the vector, recomputed as
/// points are deleted; the stored values are untouched.
#[test]
fn the_idf_modifier_scales_query_weights_by_live_document_frequency() {
    let dir = MemDirectory::new(3);
    let clock = Arc::new(ManualClock::new(1_700_000_000_000));
    let mut cfg = config();
    cfg.sparse_vectors.get_mut("terms").unwrap().modifier = quiver_engine::config::SparseModifier::Idf;
    let c = Collection::create("idf", Arc::new(dir), cfg, clock).unwrap();
    c.upsert((0..N / 2).map(point).collect()).unwrap();
    c.seal().unwrap();
    c.upsert((N / 2..N).map(point).collect()).unwrap();
    let check = |deleted: &[u64]| {
        let live: Vec<SparseVector> = (0..N).filter(|i| !deleted.contains(i)).filter_map(sparse_of).collect();
        let docs = live.len() as u64;
        for qi in 0..6 {
            let q = sparse_of(1001 + qi * 5).unwrap();
            let scaled = SparseVector {
                indices: q.indices.clone(),
                values: q
                    .indices
                    .iter()
                    .zip(&q.values)
                    .map(|(t, v)| {
                        let n = live.iter().filter(|d| d.indices.contains(t)).count() as u64;
                        v * quiver_engine::sparse::idf(docs, n)
                    })
                    .collect(),
            };
            let want = brute(&scaled, 10, |i| !deleted.contains(&i));
            let got = c.search(&SearchRequest::sparse("terms", q.clone(), 10)).unwrap().hits;
            assert_eq!(got.len(), want.len());
            for (g, (id, score)) in got.iter().zip(&want) {
                assert!((g.score - score).abs() < 1e-3 * score.abs().max(1.0), "{g:?} vs ({id}, {score})");
            }
        }
    };
    check(&[]);
    let deleted: Vec<u64> = (0..N).filter(|i| i % 3 == 1).collect();
    c.delete(Selector::Ids(deleted.iter().map(|&i| PointId::Num(i)).collect())).unwrap();
    check(&deleted);
    // The stored vector is as written.
    let got = c.get(&[PointId::Num(6)], false, true).unwrap();
    assert_eq!(got[0].sparse.as_ref().unwrap()["terms"], sparse_of(6).unwrap());
}

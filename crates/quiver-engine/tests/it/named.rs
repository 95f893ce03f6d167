//! Named vectors: a collection with several vector spaces, each with its own dimension, metric and index; points
//! carrying any subset of them; searches naming the vector they use. Checked against brute force through every
//! state a segment can be in (growing, sealed with an index over all or only some rows, merged, reopened), and
//! for the bad-input standard.

use std::collections::BTreeMap;
use std::sync::Arc;

use quiver_engine::config::VectorSpace;
use quiver_engine::{
    Collection, CollectionConfig, Error, Filter, ManualClock, PointId, PointInput, SearchRequest, Selector,
};
use quiver_index::Metric;
use quiver_storage::MemDirectory;
use serde_json::json;

use crate::common::{payload, random_vectors};

const N: usize = 300;

fn config() -> CollectionConfig {
    let mut spaces = BTreeMap::new();
    spaces.insert("body".to_owned(), VectorSpace::new(8, Metric::Cosine));
    spaces.insert("title".to_owned(), VectorSpace::new(4, Metric::Euclidean));
    let mut cfg = CollectionConfig::with_named_vectors(spaces).unwrap();
    cfg.optimizer.interval_ms = 0;
    cfg.optimizer.seal_points = 1_000_000;
    cfg
}

/// Point `i`'s vectors: every point has a title but those divisible by 7 (which have neither); a body only
/// when `i % 3 != 0`.
fn vectors_of(i: usize, titles: &[Vec<f32>], bodies: &[Vec<f32>]) -> BTreeMap<String, Vec<f32>> {
    let mut m = BTreeMap::new();
    if i.is_multiple_of(7) {
        return m;
    }
    m.insert("title".to_owned(), titles[i].clone());
    if !i.is_multiple_of(3) {
        m.insert("body".to_owned(), bodies[i].clone());
    }
    m
}

struct Data {
    titles: Vec<Vec<f32>>,
    bodies: Vec<Vec<f32>>,
}

impl Data {
    fn new() -> Data {
        Data { titles: random_vectors(N, 4, 1), bodies: random_vectors(N, 8, 2) }
    }

    fn points(&self) -> Vec<PointInput> {
        (0..N)
            .map(|i| {
                let mut p = PointInput::named(i as u64, vectors_of(i, &self.titles, &self.bodies));
                p.payload = Some(payload(json!({"even": i % 2 == 0})));
                p
            })
            .collect()
    }

    /// The ids of the `k` nearest points having a vector in `space`, by brute force (ties by id), with `keep`.
    fn brute(&self, space: &str, q: &[f32], k: usize, keep: impl Fn(usize) -> bool) -> Vec<u64> {
        let mut scored: Vec<(f32, u64)> = (0..N)
            .filter(|&i| keep(i))
            .filter_map(|i| vectors_of(i, &self.titles, &self.bodies).remove(space).map(|v| (i, v)))
            .map(|(i, v)| {
                let d = match space {
                    "title" => v.iter().zip(q).map(|(a, b)| (a - b) * (a - b)).sum::<f32>(),
                    _ => {
                        let dot: f32 = v.iter().zip(q).map(|(a, b)| a * b).sum();
                        let n = |x: &[f32]| x.iter().map(|a| a * a).sum::<f32>().sqrt();
                        1.0 - dot / (n(&v) * n(q))
                    }
                };
                (d, i as u64)
            })
            .collect();
        scored.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
        scored.into_iter().take(k).map(|(_, i)| i).collect()
    }
}

fn ids(c: &Collection, req: &SearchRequest) -> Vec<u64> {
    c.search(req)
        .unwrap()
        .hits
        .iter()
        .map(|h| match h.id {
            PointId::Num(n) => n,
            PointId::Uuid(_) => panic!("uuid"),
        })
        .collect()
}

/// Exact searches of both vectors, filtered and not, equal brute force; index searches find most of it and
/// only points that have the vector searched.
fn check_searches(c: &Collection, data: &Data, what: &str) {
    let queries = random_vectors(5, 8, 9);
    for (qi, q8) in queries.iter().enumerate() {
        for (space, q) in [("title", &q8[..4]), ("body", &q8[..])] {
            let mut exact = SearchRequest::new(q.to_vec(), 10).using(space);
            exact.params.exact = true;
            assert_eq!(ids(c, &exact), data.brute(space, q, 10, |_| true), "{what}: exact {space}, query {qi}");
            let even: Filter =
                serde_json::from_value(json!({"must": [{"key": "even", "match": {"value": true}}]})).unwrap();
            let filtered = exact.clone().with_filter(even);
            assert_eq!(
                ids(c, &filtered),
                data.brute(space, q, 10, |i| i % 2 == 0),
                "{what}: exact filtered {space}, query {qi}"
            );
            let approx = ids(c, &SearchRequest::new(q.to_vec(), 10).using(space));
            let truth = data.brute(space, q, 10, |_| true);
            let found = approx.iter().filter(|i| truth.contains(i)).count();
            assert!(found >= 8, "{what}: index search of {space} found {found}/10 of the true neighbours");
            for i in approx {
                assert!(
                    vectors_of(i as usize, &data.titles, &data.bodies).contains_key(space),
                    "{what}: point {i} has no {space} vector but was returned"
                );
            }
        }
    }
}

#[test]
fn named_vectors_are_searched_by_name_in_every_segment_state() {
    let dir = MemDirectory::new(3);
    let clock = Arc::new(ManualClock::new(1_700_000_000_000));
    let c = Collection::create("named", Arc::new(dir.clone()), config(), clock.clone()).unwrap();
    let data = Data::new();
    c.upsert(data.points()).unwrap();
    check_searches(&c, &data, "growing");
    assert!(c.seal().unwrap());
    let info = c.info().unwrap();
    assert_eq!(info.segments.iter().filter(|s| s.index == "hnsw").count(), 1, "{:?}", info.segments);
    // Each vector's own index, by name: both built in the sealed segment (the body one over only the rows that
    // have a body), none in an empty growing one.
    let sealed = info.segments.iter().find(|s| s.index == "hnsw").unwrap();
    let kinds: Vec<(&str, &str)> = sealed.vectors.iter().map(|(n, v)| (n.as_str(), v.index.as_str())).collect();
    assert_eq!(kinds, [("body", "hnsw"), ("title", "hnsw")], "{:?}", sealed.vectors);
    for s in info.segments.iter().filter(|s| s.index != "hnsw") {
        assert!(s.vectors.values().all(|v| v.index == "exact"), "{:?}", s.vectors);
    }
    check_searches(&c, &data, "sealed");
    // Reads return the named vectors a point has, and no unnamed one.
    let got = c.get(&[PointId::Num(1), PointId::Num(3), PointId::Num(7)], false, true).unwrap();
    let names = |r: &quiver_engine::Record| r.vectors.as_ref().unwrap().keys().cloned().collect::<Vec<_>>();
    assert_eq!(names(&got[0]), ["body", "title"]);
    assert_eq!(names(&got[1]), ["title"]);
    assert!(names(&got[2]).is_empty());
    assert!(got.iter().all(|r| r.vector.is_none()));
    assert_eq!(got[1].vectors.as_ref().unwrap()["title"], data.titles[3], "euclidean vectors are kept as given");
    // A payload update keeps the vectors; the new row lands in the growing segment.
    c.set_payload(Selector::Ids(vec![PointId::Num(1)]), payload(json!({"tag": "x"})), None).unwrap();
    let again = c.get(&[PointId::Num(1)], true, true).unwrap();
    assert_eq!(again[0].vectors, got[0].vectors);
    // Reopen: the segment file's spaces and the WAL's named vectors come back.
    drop(c);
    let c = Collection::open("named", Arc::new(dir.clone()), clock.clone()).unwrap();
    let mut data2 = Data::new();
    check_searches(&c, &data2, "reopened");
    // More writes, a second seal and a merge of both segments.
    let extra = random_vectors(N, 4, 5);
    let mut pts = Vec::new();
    for (i, t) in extra.iter().enumerate().filter(|(i, _)| i % 4 == 1) {
        data2.titles[i] = t.clone();
        let mut p = PointInput::named(i as u64, vectors_of(i, &data2.titles, &data2.bodies));
        p.payload = Some(payload(json!({"even": i % 2 == 0})));
        pts.push(p);
    }
    c.upsert(pts).unwrap();
    check_searches(&c, &data2, "after overwrites");
    c.seal().unwrap();
    c.optimize().unwrap();
    check_searches(&c, &data2, "merged");
    drop(c);
    let c = Collection::open("named", Arc::new(dir), clock).unwrap();
    check_searches(&c, &data2, "merged and reopened");
}

#[test]
fn bad_named_vector_input_is_refused_and_changes_nothing() {
    let dir = MemDirectory::new(3);
    let clock = Arc::new(ManualClock::new(1_700_000_000_000));
    let c = Collection::create("named", Arc::new(dir), config(), clock).unwrap();
    let field = |e: Error| match e {
        Error::InvalidPoint { field, reason, .. } => format!("{field}: {reason}"),
        Error::InvalidArgument { field, expected, got } => format!("{field}: expected {expected}, got {got}"),
        other => panic!("{other}"),
    };
    let one = |name: &str, v: Vec<f32>| PointInput::named(1u64, [(name.to_owned(), v)]);
    let e = field(c.upsert(vec![PointInput::new(1u64, vec![1.0; 4])]).unwrap_err());
    assert!(e.starts_with("vector: named vectors [\"body\", \"title\"]"), "{e}");
    let e = field(c.upsert(vec![one("nope", vec![1.0])]).unwrap_err());
    assert!(e.starts_with("vector.nope: one of the collection's vectors"), "{e}");
    let e = field(c.upsert(vec![one("title", vec![1.0; 8])]).unwrap_err());
    assert_eq!(e, "vector.title: expected 4 numbers, got 8");
    let e = field(c.upsert(vec![one("body", vec![1.0, f32::NAN, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0])]).unwrap_err());
    assert_eq!(e, "vector.body[1]: expected a finite number, got NaN");
    assert_eq!(c.count(None).unwrap(), 0, "nothing was written");
    c.upsert(vec![one("title", vec![1.0; 4])]).unwrap();
    let e = field(c.search(&SearchRequest::new(vec![1.0; 4], 3)).unwrap_err());
    assert!(e.starts_with("using: expected one of the collection's vectors [\"body\", \"title\"], got \"\""), "{e}");
    let e = field(c.search(&SearchRequest::new(vec![1.0; 4], 3).using("nope")).unwrap_err());
    assert!(e.starts_with("using:"), "{e}");
    let e = field(c.search(&SearchRequest::new(vec![1.0; 4], 3).using("body")).unwrap_err());
    assert!(e.starts_with("vector: expected 8 numbers"), "{e}");
    // And the other way round: names in a collection with one unnamed vector.
    let plain = crate::common::mem_collection(4, Metric::Dot, |_| {});
    let e = field(plain.c.upsert(vec![one("title", vec![1.0; 4])]).unwrap_err());
    assert!(e.starts_with("vector.title: an unnamed vector"), "{e}");
    let e = field(plain.c.search(&SearchRequest::new(vec![1.0; 4], 3).using("title")).unwrap_err());
    assert!(e.starts_with("using: expected absent or \"\""), "{e}");
}

#[test]
fn named_vector_configurations_are_checked() {
    let invalid = |cfg: CollectionConfig| match cfg.validate().unwrap_err() {
        Error::InvalidArgument { field, .. } => field,
        other => panic!("{other}"),
    };
    // The cold index must fit every named vector (pq_m 3 divides neither 8 nor 4).
    let mut c = config();
    let mut cold = quiver_engine::IndexConfig::ivf_pq();
    cold.params.insert("pq_m".into(), json!(3));
    c.tiering = Some(quiver_engine::TieringConfig { hot_age_secs: 60, cold_index: cold });
    assert!(invalid(c).starts_with("tiering.cold_index"));
    let mut c = config();
    c.more_vectors.get_mut("title").unwrap().dimension = 0;
    assert_eq!(invalid(c), "more_vectors.title.dimension");
    let mut c = config();
    c.more_vectors.insert(String::new(), VectorSpace::new(3, Metric::Dot));
    assert_eq!(invalid(c), "more_vectors.");
    let mut c = CollectionConfig::new(3, Metric::Dot);
    c.more_vectors.insert("x".into(), VectorSpace::new(3, Metric::Dot));
    assert_eq!(invalid(c), "vector_name");
    assert!(CollectionConfig::with_named_vectors(BTreeMap::new()).is_err());
    // The configuration round-trips through its JSON form.
    let c = config();
    let back: CollectionConfig = serde_json::from_value(serde_json::to_value(&c).unwrap()).unwrap();
    assert_eq!(back, c);
    assert_eq!(c.vector_names(), ["body", "title"]);
}

#[test]
fn when_every_point_has_every_vector_the_indexes_read_the_mapped_vectors() {
    let dir = MemDirectory::new(3);
    let clock = Arc::new(ManualClock::new(1_700_000_000_000));
    let c = Collection::create("full", Arc::new(dir.clone()), config(), clock.clone()).unwrap();
    let (titles, bodies) = (random_vectors(N, 4, 1), random_vectors(N, 8, 2));
    let pts = (0..N).map(|i| {
        PointInput::named(i as u64, [("title".to_owned(), titles[i].clone()), ("body".to_owned(), bodies[i].clone())])
    });
    c.upsert(pts.collect()).unwrap();
    c.seal().unwrap();
    drop(c);
    let c = Collection::open("full", Arc::new(dir), clock).unwrap();
    let info = c.info().unwrap();
    // Both spaces' vectors are read in place (one copy, in the file), none on the heap.
    assert_eq!(info.mapped_bytes, (N * (4 + 8) * 4) as u64, "{info:?}");
    for i in [0, 17, 299] {
        let hits = c.search(&SearchRequest::new(titles[i].clone(), 1).using("title")).unwrap().hits;
        assert_eq!(hits[0].id, PointId::Num(i as u64));
        let hits = c.search(&SearchRequest::new(bodies[i].clone(), 1).using("body")).unwrap().hits;
        assert_eq!(hits[0].id, PointId::Num(i as u64));
    }
}

/// Tiering with named and sparse vectors: an aged segment is rebuilt cold with the cold index on every named
/// vector (sparse vectors keep their inverted index), and every vector finds its points in both tiers, also after
/// a reopen.
#[test]
fn tiering_moves_named_and_sparse_vectors_to_the_cold_index() {
    use quiver_engine::config::SparseVectorConfig;
    use quiver_engine::segment::Tier;
    use quiver_engine::{IndexConfig, SparseVector, TieringConfig};
    let dir = MemDirectory::new(5);
    let clock = Arc::new(ManualClock::new(1_700_000_000_000));
    let mut cfg = config();
    cfg.sparse_vectors.insert("terms".into(), SparseVectorConfig::default());
    let mut cold = IndexConfig::ivf_pq();
    cold.params.insert("pq_m".into(), json!(2));
    cold.params.insert("nlist".into(), json!(4));
    cfg.tiering = Some(TieringConfig { hot_age_secs: 60, cold_index: cold });
    let c = Collection::create("tiered", Arc::new(dir.clone()), cfg, clock.clone()).unwrap();
    let (titles, bodies) = (random_vectors(600, 4, 11), random_vectors(600, 8, 12));
    let point = |i: usize| {
        let mut v = BTreeMap::new();
        v.insert("title".to_owned(), titles[i].clone());
        v.insert("body".to_owned(), bodies[i].clone());
        let mut p = PointInput::named(i as u64, v);
        // A term only this point has, and one all share.
        p.sparse.insert("terms".into(), SparseVector { indices: vec![7, 1000 + i as u32], values: vec![0.5, 2.0] });
        p
    };
    c.upsert((0..300).map(point).collect()).unwrap();
    c.seal().unwrap();
    clock.advance(61_000);
    c.upsert((300..600).map(point).collect()).unwrap();
    c.seal().unwrap();
    c.optimize().unwrap();
    let check = |c: &Collection, what: &str| {
        let info = c.info().unwrap();
        let cold: Vec<_> = info.segments.iter().filter(|s| s.tier == Tier::Cold).collect();
        assert_eq!(cold.len(), 1, "{what}: {:?}", info.segments);
        assert_eq!(cold[0].live, 300, "{what}");
        for name in ["title", "body"] {
            assert_eq!(cold[0].vectors[name].index, "ivf", "{what}: {:?}", cold[0].vectors);
        }
        assert!(info.segments.iter().any(|s| s.tier == Tier::Hot && s.vectors["title"].index == "hnsw"), "{what}");
        for i in [5usize, 150, 299, 300, 451, 599] {
            for (name, v) in [("title", &titles[i]), ("body", &bodies[i])] {
                let mut req = SearchRequest::new(v.clone(), 3).using(name);
                req.params = quiver_index::SearchParams::default().with_nprobe(4);
                let hits = c.search(&req).unwrap().hits;
                assert_eq!(hits[0].id, PointId::Num(i as u64), "{what}: {name} of {i}");
            }
            let q = SparseVector { indices: vec![1000 + i as u32], values: vec![1.0] };
            let hits = c.search(&SearchRequest::sparse("terms", q, 3)).unwrap().hits;
            assert_eq!(hits.len(), 1, "{what}: sparse {i}");
            assert_eq!((hits[0].id, hits[0].score), (PointId::Num(i as u64), 2.0), "{what}: sparse {i}");
        }
    };
    check(&c, "migrated");
    drop(c);
    let c = Collection::open("tiered", Arc::new(dir.clone()), clock.clone()).unwrap();
    check(&c, "reopened");
}

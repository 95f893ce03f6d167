//! Seal, merge, vacuum, tiering, TTL purge.

use quiver_engine::segment::Tier;
use quiver_engine::{IndexConfig, PointId, PointInput, SearchRequest, Selector, TieringConfig};
use quiver_index::{IndexKind, Metric};
use serde_json::json;

use crate::common::{mem_collection, random_vectors};

fn ids(hits: &[quiver_engine::ScoredPoint]) -> Vec<PointId> {
    hits.iter().map(|h| h.id).collect()
}

#[test]
fn seal_merge_and_vacuum_keep_results_and_counts() {
    let f = mem_collection(8, Metric::Euclidean, |c| {
        c.index = IndexConfig { kind: IndexKind::Flat, params: Default::default() };
        c.optimizer.seal_points = 100;
        c.optimizer.merge_below_points = 150;
        c.optimizer.vacuum_deleted_ratio = 0.25;
        c.optimizer.max_segments = 100;
    });
    let c = &f.c;
    let vs = random_vectors(450, 8, 3);
    for (chunk_i, chunk) in vs.chunks(50).enumerate() {
        let base = chunk_i as u64 * 50;
        c.upsert(chunk.iter().enumerate().map(|(i, v)| PointInput::new(base + i as u64, v.clone())).collect()).unwrap();
        c.optimize().unwrap();
    }
    let q = vs[7].clone();
    let before = c.search(&SearchRequest::new(q.clone(), 10)).unwrap().hits;
    assert_eq!(before[0].id, PointId::Num(7));
    let info = c.info().unwrap();
    assert_eq!(info.points, 450);
    assert!(info.optimizer.sealed >= 4 && info.optimizer.merged >= 1, "{:?}", info.optimizer);
    // Merging kept every small segment below the threshold count: at most one small sealed segment.
    let small = info.segments.iter().filter(|s| s.tier == Tier::Hot && s.live < 150).count();
    assert!(small <= 1, "{:?}", info.segments);
    // Delete a third of the points: vacuum rewrites segments without them.
    c.delete(Selector::Ids((0..150u64).map(PointId::Num).collect())).unwrap();
    c.optimize().unwrap();
    let info = c.info().unwrap();
    assert_eq!(info.points, 300);
    assert!(info.optimizer.vacuumed >= 1, "{:?}", info.optimizer);
    for s in &info.segments {
        assert!((s.deleted as f64) < 0.25 * s.rows as f64 || s.tier == Tier::Growing, "{s:?}");
    }
    let after = c.search(&SearchRequest::new(q, 10)).unwrap().hits;
    let expected: Vec<PointId> = before.iter().map(|h| h.id).filter(|id| *id >= PointId::Num(150)).collect();
    assert_eq!(ids(&after)[..expected.len()], expected[..]);
    // The state survives a reopen identically.
    let again = f.reopen().unwrap();
    assert_eq!(again.count(None).unwrap(), 300);
}

#[test]
fn tiers_are_merged_down_to_max_segments() {
    let f = mem_collection(4, Metric::Euclidean, |c| {
        c.index = IndexConfig { kind: IndexKind::Flat, params: Default::default() };
        c.optimizer.seal_points = 50;
        c.optimizer.merge_below_points = 1;
        c.optimizer.max_segments = 3;
    });
    let vs = random_vectors(400, 4, 5);
    for (n, chunk) in vs.chunks(50).enumerate() {
        f.c.upsert(chunk.iter().enumerate().map(|(i, v)| PointInput::new((n * 50 + i) as u64, v.clone())).collect())
            .unwrap();
        f.c.optimize().unwrap();
    }
    let info = f.c.info().unwrap();
    assert_eq!(info.segments.iter().filter(|s| s.tier == Tier::Hot).count(), 3, "{:?}", info.segments);
    assert_eq!(info.points, 400);
    assert!(info.optimizer.merged >= 5);
}

#[test]
fn seal_by_age() {
    let f = mem_collection(2, Metric::Euclidean, |c| c.optimizer.seal_age_secs = 30);
    f.c.upsert(vec![PointInput::new(1, vec![1.0, 0.0])]).unwrap();
    assert_eq!(f.c.optimize().unwrap(), 0);
    f.clock.advance(30_000);
    assert_eq!(f.c.optimize().unwrap(), 1);
    let info = f.c.info().unwrap();
    assert_eq!(info.segments.iter().filter(|s| s.tier == Tier::Hot).count(), 1);
    assert_eq!(info.points, 1);
}

#[test]
fn seal_when_idle_indexes_the_tail_of_a_bulk_load() {
    let f = mem_collection(4, Metric::Euclidean, |c| {
        c.optimizer.exact_below = 10;
        c.optimizer.seal_idle_secs = 5;
    });
    let pts = |r: std::ops::Range<u64>| -> Vec<PointInput> {
        r.map(|i| PointInput::new(i, random_vectors(1, 4, i)[0].clone())).collect()
    };
    // At most `exact_below` points: never sealed for idleness, however long it waits.
    f.c.upsert(pts(0..10)).unwrap();
    f.clock.advance(60_000);
    assert_eq!(f.c.optimize().unwrap(), 0);
    // More than that: sealed once no write came for `seal_idle_secs`, not before.
    f.c.upsert(pts(10..20)).unwrap();
    f.clock.advance(4_000);
    assert_eq!(f.c.optimize().unwrap(), 0);
    f.c.upsert(pts(20..21)).unwrap(); // a write restarts the idle time
    f.clock.advance(4_000);
    assert_eq!(f.c.optimize().unwrap(), 0);
    f.clock.advance(1_000);
    assert_eq!(f.c.optimize().unwrap(), 1);
    let info = f.c.info().unwrap();
    assert_eq!(info.segments.iter().filter(|s| s.tier == Tier::Hot).map(|s| s.live).sum::<u64>(), 21);
    assert_eq!(info.points, 21);
}

#[test]
fn tiering_moves_old_segments_to_ivf_pq_and_search_covers_both_tiers() {
    let dim = 16;
    let f = mem_collection(dim, Metric::Cosine, |c| {
        c.optimizer.seal_points = 400;
        c.tiering = Some(TieringConfig {
            hot_age_secs: 60,
            cold_index: IndexConfig {
                kind: IndexKind::Ivf,
                params: [("quantization", json!("pq")), ("pq_m", json!(4)), ("nlist", json!(8))]
                    .into_iter()
                    .map(|(k, v)| (k.to_owned(), v))
                    .collect(),
            },
        });
    });
    let c = &f.c;
    let vs = random_vectors(900, dim, 9);
    c.upsert(vs[..400].iter().enumerate().map(|(i, v)| PointInput::new(i as u64, v.clone())).collect()).unwrap();
    c.optimize().unwrap();
    assert_eq!(c.info().unwrap().segments.iter().filter(|s| s.tier == Tier::Hot).count(), 1);
    f.clock.advance(61_000);
    c.upsert(vs[400..].iter().enumerate().map(|(i, v)| PointInput::new(400 + i as u64, v.clone())).collect()).unwrap();
    c.optimize().unwrap();
    let info = c.info().unwrap();
    assert_eq!(info.optimizer.migrated, 1, "{:?}", info.optimizer);
    let cold: Vec<_> = info.segments.iter().filter(|s| s.tier == Tier::Cold).collect();
    assert_eq!(cold.len(), 1);
    assert_eq!(cold[0].index, "ivf", "{:?}", cold[0]);
    assert_eq!(cold[0].live, 400);
    assert_eq!(info.points, 900);
    // Each point is found from both tiers.
    for i in [3usize, 150, 420, 899] {
        let mut req = SearchRequest::new(vs[i].clone(), 5);
        req.params = quiver_index::SearchParams::default().with_nprobe(8);
        let hits = c.search(&req).unwrap().hits;
        assert_eq!(hits[0].id, PointId::Num(i as u64), "query {i}");
    }
    // Migration is crash-safe like every job: the reopened collection has the same tiers.
    let again = f.reopen().unwrap();
    let info2 = again.info().unwrap();
    assert_eq!(info2.segments.iter().filter(|s| s.tier == Tier::Cold).count(), 1);
    assert_eq!(info2.points, 900);
}

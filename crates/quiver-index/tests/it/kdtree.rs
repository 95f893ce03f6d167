//! KD-tree: exact mode equals Flat for every metric; best-bin-first keeps its recall; the shared checks.

use crate::common;
use crate::support::{assert_exact, naive_distance, naive_top_k, random_vectors, small_set};
use proptest::prelude::*;
use quiver_index::{IdSet, IndexKind, KdTreeIndex, Metric, MutableIndex, Params, SearchParams, VectorIndex};
use std::collections::BTreeMap;

const EPS: f64 = 1e-5;

#[test]
fn exact_search_equals_brute_force_for_every_metric() {
    for (seed, metric) in [(1u64, Metric::Cosine), (2, Metric::Dot), (3, Metric::Euclidean)] {
        for dim in [1usize, 3, 8, 33] {
            let data = random_vectors(seed, 301, dim);
            let queries = random_vectors(seed + 100, 9, dim);
            for leaf in ["leaf_size=1", "leaf_size=16"] {
                let ids = (0..301).collect();
                let index = KdTreeIndex::build(metric, data.clone(), ids, Params::parse([leaf]).unwrap()).unwrap();
                for k in [1usize, 10, 301] {
                    for (qi, q) in queries.iter().enumerate() {
                        let want =
                            naive_top_k(metric, data.iter().enumerate().map(|(i, v)| (i as u64, v)), q, k, |_| true);
                        let got = index.search(q, k, &SearchParams::new(), None).unwrap();
                        let ctx = format!("{metric} dim {dim} {leaf} k {k} query {qi}");
                        assert_exact(&got, &want, |id| naive_distance(metric, q, data.get(id as usize)), EPS, &ctx);
                    }
                }
            }
        }
    }
}

#[test]
fn exact_search_equals_flat_on_the_real_set() {
    let set = small_set();
    for metric in Metric::ALL {
        let ids: Vec<u64> = (0..set.base.len() as u64).collect();
        let index = KdTreeIndex::build(metric, set.base.clone(), ids, Params::new()).unwrap();
        let tenth: IdSet = (0..set.base.len() as u64).filter(|id| id % 10 == 3).collect();
        for (qi, q) in set.queries.iter().enumerate().step_by(4) {
            for filter in [None, Some(&tenth)] {
                let f = filter.map(|f| f as &dyn quiver_index::IdFilter);
                let want = naive_top_k(metric, set.base.iter().enumerate().map(|(i, v)| (i as u64, v)), q, 10, |id| {
                    f.is_none_or(|f| f.allows(id))
                });
                let got = index.search(q, 10, &SearchParams::new(), f).unwrap();
                let truth = |id: u64| naive_distance(metric, q, set.base.get(id as usize));
                assert_exact(&got, &want, truth, EPS, &format!("{metric} query {qi} filter {}", filter.is_some()));
            }
        }
    }
}

#[test]
fn best_bin_first_recall_on_the_real_set() {
    // 384-d: the bounds prune little, so the leaf budget is what bounds the work.
    let r = common::real_recall(IndexKind::KdTree, Metric::Cosine, &[], &SearchParams::new().with_max_leaves(64));
    eprintln!("kdtree max_leaves=64 recall@10 {r:.4}");
    assert!(r >= 0.55, "max_leaves=64: recall@10 {r:.4}");
    let r = common::real_recall(IndexKind::KdTree, Metric::Cosine, &[], &SearchParams::new());
    assert!(r >= 0.9999, "exact mode: recall@10 {r:.4}");
}

#[test]
fn filtered_search() {
    common::filtered_search(IndexKind::KdTree, 0.9999);
}

#[test]
fn churn_never_returns_removed_ids() {
    common::churn(IndexKind::KdTree, 0.9999);
}

#[test]
fn bytes_round_trip_and_damage_is_detected() {
    common::bytes(IndexKind::KdTree, Metric::Euclidean, &["leaf_size=4"]);
}

#[test]
fn bad_input_and_edge_cases() {
    common::bad_input(IndexKind::KdTree, &["leaf_size=0", "leaf_size=x"]);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    /// Exact search equals brute force after any mix of inserts, upserts and removals: rows past a leaf's packed
    /// prefix (scored from the store), tombstones inside the packed buffer, rebuilds, and a decode (which
    /// re-derives the packed buffer); every metric, so both the incremental L2 bounds and the box bounds.
    #[test]
    fn exact_equals_brute_force_after_updates(
        seed in any::<u64>(),
        dim in 1usize..10,
        n in 1usize..200,
        ops in prop::collection::vec((0u64..300, any::<bool>()), 0..400),
        metric_at in 0usize..3,
        leaf in 1usize..20,
    ) {
        let metric = Metric::ALL[metric_at];
        let data = random_vectors(seed, n, dim);
        let extra = random_vectors(seed ^ 0x9e37_79b9, ops.len().max(1), dim);
        let params = Params::parse([format!("leaf_size={leaf}")]).unwrap();
        let mut index = KdTreeIndex::build(metric, data.clone(), (0..n as u64).collect(), params).unwrap();
        let mut live: BTreeMap<u64, Vec<f32>> = (0..n).map(|i| (i as u64, data.get(i).to_vec())).collect();
        for (i, &(id, insert)) in ops.iter().enumerate() {
            if insert {
                index.insert(id, extra.get(i)).unwrap();
                live.insert(id, extra.get(i).to_vec());
            } else {
                prop_assert_eq!(index.remove(id), live.remove(&id).is_some());
            }
        }
        let back = KdTreeIndex::from_bytes(&index.to_bytes()).unwrap();
        let queries = random_vectors(seed.wrapping_add(1), 4, dim);
        for (qi, q) in queries.iter().enumerate() {
            for k in [1usize, 10] {
                let want = naive_top_k(metric, live.iter().map(|(id, v)| (*id, v.as_slice())), q, k, |_| true);
                let truth = |id: u64| naive_distance(metric, q, &live[&id]);
                let got = index.search(q, k, &SearchParams::new(), None).unwrap();
                assert_exact(&got, &want, truth, EPS, &format!("{metric} dim {dim} leaf {leaf} k {k} query {qi}"));
                prop_assert_eq!(back.search(q, k, &SearchParams::new(), None).unwrap(), got);
            }
        }
    }
}

use crate::support::{assert_exact, naive_distance, naive_top_k, random_vectors, small_set};
use quiver_index::{
    AnyIndex, Error, FlatIndex, FnFilter, IdFilter, IdSet, IndexKind, Metric, MutableIndex, Params, SearchParams,
    VectorIndex, VectorSet,
};

const EPS: f64 = 1e-5;

fn build(metric: Metric, vectors: &VectorSet) -> FlatIndex {
    let ids = (0..vectors.len() as u64).collect();
    FlatIndex::build(metric, vectors.clone(), ids, Params::new()).unwrap()
}

#[test]
fn matches_the_ground_truth_of_the_real_set() {
    let set = small_set();
    let index = build(Metric::Cosine, &set.base);
    let sp = SearchParams::new();
    for qi in 0..set.queries.len() {
        let got = index.search(set.queries.get(qi), 10, &sp, None).unwrap();
        let gt_ids = &set.groundtruth.row(qi)[..10];
        let gt_dist = &set.groundtruth_dist.get(qi)[..10];
        for (pos, n) in got.iter().enumerate() {
            assert!(
                (n.distance - gt_dist[pos]).abs() < 1e-5,
                "query {qi} pos {pos}: {} vs {}",
                n.distance,
                gt_dist[pos]
            );
            if n.id != gt_ids[pos] as u64 {
                // Only a tie may swap places.
                assert!(
                    (gt_dist[pos] - n.distance).abs() < 1e-5,
                    "query {qi} pos {pos}: id {} vs {}",
                    n.id,
                    gt_ids[pos]
                );
            }
        }
    }
}

#[test]
fn every_metric_equals_naive_brute_force() {
    for (seed, metric) in [(1u64, Metric::Cosine), (2, Metric::Dot), (3, Metric::Euclidean)] {
        for dim in [1usize, 7, 16, 33] {
            let data = random_vectors(seed, 301, dim);
            let queries = random_vectors(seed + 100, 9, dim);
            let index = build(metric, &data);
            for k in [1usize, 10, 301, 500] {
                for qi in 0..queries.len() {
                    let q = queries.get(qi);
                    let want = naive_top_k(metric, data.iter().enumerate().map(|(i, v)| (i as u64, v)), q, k, |_| true);
                    let got = index.search(q, k, &SearchParams::new(), None).unwrap();
                    let ctx = format!("seed {seed} {metric} dim {dim} k {k} query {qi}");
                    let truth_q = |id: u64| naive_distance(metric, q, data.get(id as usize));
                    assert_exact(&got, &want, truth_q, EPS, &ctx);
                }
            }
        }
    }
}

#[test]
fn batch_search_equals_single_queries() {
    let set = small_set();
    for metric in Metric::ALL {
        let index = build(metric, &set.base);
        let sp = SearchParams::new();
        let batch = index.search_batch(set.queries.as_slice(), 10, &sp, None).unwrap();
        assert_eq!(batch.len(), set.queries.len());
        for (qi, got) in batch.iter().enumerate() {
            let single = index.search(set.queries.get(qi), 10, &sp, None).unwrap();
            assert_eq!(got.len(), single.len());
            for (a, b) in got.iter().zip(&single) {
                assert!((a.distance - b.distance).abs() < 1e-5, "{metric} query {qi}: {a:?} vs {b:?}");
            }
        }
    }
}

#[test]
fn filtered_batches_equal_filtered_single_queries() {
    // Many queries at once take the packed, tiled kernel and the top-k pass that skips runs without candidates.
    let set = small_set();
    let n = set.base.len() as u64;
    let third = FnFilter::new(|id| id % 3 == 1, Some(n / 3));
    for metric in Metric::ALL {
        let index = build(metric, &set.base);
        for k in [1usize, 10, 100] {
            let batch = index.search_batch(set.queries.as_slice(), k, &SearchParams::new(), Some(&third)).unwrap();
            for (qi, got) in batch.iter().enumerate() {
                let q = set.queries.get(qi);
                let want = naive_top_k(metric, set.base.iter().enumerate().map(|(i, v)| (i as u64, v)), q, k, |id| {
                    third.allows(id)
                });
                let truth = |id: u64| naive_distance(metric, q, set.base.get(id as usize));
                assert_exact(got, &want, truth, EPS, &format!("{metric} batch query {qi} k {k}"));
            }
        }
    }
}

#[test]
fn filtered_search_returns_min_k_matches_and_only_allowed_ids() {
    let set = small_set();
    let index = build(Metric::Cosine, &set.base);
    let n = set.base.len() as u64;
    // Dense predicate (10%), dense id set (50%), sparse id sets (1% and 3 ids), and an empty set.
    let every_tenth = FnFilter::new(|id| id % 10 == 3, Some(n / 10));
    let half: IdSet = (0..n).filter(|id| id % 2 == 0).collect();
    let one_percent: IdSet = (0..n).filter(|id| id % 100 == 7).collect();
    let three: IdSet = [5u64, 2999, 1234].into_iter().collect();
    let none = IdSet::new();
    let filters: [(&str, &dyn IdFilter); 5] =
        [("10%", &every_tenth), ("50%", &half), ("1%", &one_percent), ("3 ids", &three), ("empty", &none)];
    for (name, filter) in filters {
        for qi in (0..set.queries.len()).step_by(20) {
            let q = set.queries.get(qi);
            for k in [1usize, 10, 50] {
                let want =
                    naive_top_k(Metric::Cosine, set.base.iter().enumerate().map(|(i, v)| (i as u64, v)), q, k, |id| {
                        filter.allows(id)
                    });
                let got = index.search(q, k, &SearchParams::new(), Some(filter)).unwrap();
                assert!(got.iter().all(|n| filter.allows(n.id)), "{name}: a filtered-out id was returned");
                let truth = |id: u64| naive_distance(Metric::Cosine, q, set.base.get(id as usize));
                assert_exact(&got, &want, truth, EPS, &format!("filter {name} query {qi} k {k}"));
                let batch = index.search_batch(q, k, &SearchParams::new(), Some(filter)).unwrap();
                assert_exact(&batch[0], &want, truth, EPS, &format!("batch filter {name} query {qi} k {k}"));
            }
        }
    }
}

#[test]
fn removed_ids_are_never_returned_and_upsert_replaces() {
    let set = small_set();
    let mut index = build(Metric::Cosine, &set.base);
    let removed: Vec<u64> = (0..set.base.len() as u64).filter(|id| id % 10 < 3).collect();
    for &id in &removed {
        assert!(index.remove(id), "id {id} existed");
    }
    assert!(!index.remove(removed[0]), "second removal reports absence");
    assert_eq!(index.len(), set.base.len() - removed.len());
    // New points with fresh ids, then check against brute force over what is live.
    let extra = crate::support::random_vectors(9, 100, 384);
    for (i, v) in extra.iter().enumerate() {
        index.insert(10_000 + i as u64, v).unwrap();
    }
    let live = |id: u64| if id >= 10_000 { extra.get((id - 10_000) as usize) } else { set.base.get(id as usize) };
    let live_ids: Vec<u64> = (0..set.base.len() as u64).filter(|id| id % 10 >= 3).chain(10_000..10_100).collect();
    for qi in (0..set.queries.len()).step_by(10) {
        let q = set.queries.get(qi);
        let got = index.search(q, 20, &SearchParams::new(), None).unwrap();
        assert!(got.iter().all(|n| n.id >= 10_000 || n.id % 10 >= 3), "a removed id came back");
        let want = naive_top_k(Metric::Cosine, live_ids.iter().map(|&id| (id, live(id))), q, 20, |_| true);
        assert_exact(&got, &want, |id| naive_distance(Metric::Cosine, q, live(id)), EPS, &format!("query {qi}"));
    }
    // Upsert: the query itself becomes the vector of live id 14 → distance 0 at the top.
    let q = set.queries.get(0);
    index.insert(14, q).unwrap();
    let top = index.search(q, 1, &SearchParams::new(), None).unwrap();
    assert_eq!(top[0].id, 14);
    assert!(top[0].distance.abs() < 1e-5);
    assert_eq!(index.len(), set.base.len() - removed.len() + 100, "upsert of a live id does not add a point");
}

#[test]
fn bad_input_is_a_clear_error_and_changes_nothing() {
    let data = random_vectors(4, 50, 8);
    let mut index = build(Metric::Cosine, &data);
    let sp = SearchParams::new();
    assert!(matches!(index.search(&[0.0; 7], 5, &sp, None), Err(Error::DimensionMismatch { expected: 8, got: 7 })));
    let mut nan = [0.5f32; 8];
    nan[3] = f32::NAN;
    let err = index.search(&nan, 5, &sp, None).unwrap_err();
    assert!(matches!(err, Error::NonFinite { position: 3, .. }), "{err}");
    assert!(err.is_user_error());
    assert!(matches!(index.search(&[0.0; 8], 5, &sp, None), Err(Error::ZeroVector)));
    assert!(index.search_batch(&[0.1; 12], 5, &sp, None).is_err(), "batch of 1.5 queries");

    let before = index.to_bytes();
    assert!(index.insert(1, &[f32::INFINITY; 8]).is_err());
    assert!(index.insert(999, &[0.0; 8]).is_err(), "zero vector under cosine");
    assert!(index.insert(999, &[1.0; 9]).is_err());
    assert_eq!(index.to_bytes(), before, "failed inserts changed the index");
    assert!(index.search(data.get(0), 0, &sp, None).unwrap().is_empty(), "k = 0");

    let dup = FlatIndex::build(Metric::Dot, data.clone(), vec![1; 50], Params::new());
    assert!(matches!(dup, Err(Error::DuplicateId { id: 1 })));
    let short = FlatIndex::build(Metric::Dot, data.clone(), vec![1, 2], Params::new());
    assert!(matches!(short, Err(Error::IdCountMismatch { ids: 2, vectors: 50 })));
    let unknown = FlatIndex::build(Metric::Dot, data, (0..50).collect(), Params::parse(["m=16"]).unwrap());
    assert!(matches!(unknown, Err(Error::UnknownParameter { .. })));
    let empty = FlatIndex::new(Metric::Euclidean, 3).unwrap();
    assert!(empty.search(&[1.0, 2.0, 3.0], 10, &sp, None).unwrap().is_empty());
    assert!(matches!(FlatIndex::new(Metric::Euclidean, 0), Err(Error::InvalidDimension { .. })));
}

#[test]
fn bytes_round_trip_and_damage_is_detected() {
    let data = random_vectors(5, 40, 12);
    let index = build(Metric::Euclidean, &data);
    let bytes = index.to_bytes();
    assert_eq!(build(Metric::Euclidean, &data).to_bytes(), bytes, "same input, same bytes");
    let back = AnyIndex::from_bytes(&bytes).unwrap();
    let back = back.as_index();
    assert_eq!(back.kind(), IndexKind::Flat);
    assert_eq!(back.len(), 40);
    let sp = SearchParams::new();
    for q in random_vectors(6, 5, 12).iter() {
        assert_eq!(back.search(q, 7, &sp, None).unwrap(), index.search(q, 7, &sp, None).unwrap());
    }
    // Every truncation and every single-bit flip is an error, never a panic or a silently different index.
    for cut in 0..bytes.len() {
        assert!(AnyIndex::from_bytes(&bytes[..cut]).is_err(), "truncated to {cut} bytes");
    }
    for pos in 0..bytes.len() {
        let mut b = bytes.clone();
        b[pos] ^= 0x10;
        let err = AnyIndex::from_bytes(&b).unwrap_err();
        assert!(!err.is_user_error(), "byte {pos}: {err}");
    }
}

#[test]
fn any_index_dispatches_by_kind() {
    assert_eq!(IndexKind::parse("FLAT").unwrap(), IndexKind::Flat);
    let err = IndexKind::parse("hnsw2").unwrap_err().to_string();
    assert!(err.contains("hnsw2") && err.contains("flat"), "{err}");
    let mut any = AnyIndex::empty(IndexKind::Flat, Metric::Dot, 2, Params::new()).unwrap();
    any.as_mutable().insert(7, &[1.0, 0.0]).unwrap();
    any.as_mutable().insert(8, &[0.0, 1.0]).unwrap();
    let got = any.as_index().search(&[0.2, 0.9], 1, &SearchParams::new(), None).unwrap();
    assert_eq!(got[0].id, 8);
    assert!((Metric::Dot.score(got[0].distance) - 0.9).abs() < 1e-6);
}

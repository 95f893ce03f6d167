//! Checks every index kind of issue #4 (kdtree, lsh, kd-lsh) must pass, run through `AnyIndex` by kind.

use crate::support::{mean_recall, naive_distance, random_vectors, small_set};
use quiver_index::{
    AnyIndex, FlatIndex, FnFilter, IdFilter, IdSet, IndexKind, Metric, Params, SearchParams, VectorSet,
};

pub fn build(kind: IndexKind, metric: Metric, vectors: &VectorSet, ids: Vec<u64>, extra: &[&str]) -> AnyIndex {
    AnyIndex::build(kind, metric, vectors.clone(), ids, Params::parse(extra).unwrap()).unwrap()
}

pub fn oracle(metric: Metric, vectors: &VectorSet, ids: Vec<u64>) -> FlatIndex {
    FlatIndex::build(metric, vectors.clone(), ids, Params::new()).unwrap()
}

/// Recall@10 on the real 3k set against Flat.
pub fn real_recall(kind: IndexKind, metric: Metric, extra: &[&str], sp: &SearchParams) -> f64 {
    let set = small_set();
    let ids: Vec<u64> = (0..set.base.len() as u64).collect();
    let index = build(kind, metric, &set.base, ids.clone(), extra);
    mean_recall(index.as_index(), &oracle(metric, &set.base, ids), &set.queries, 10, sp, None)
}

/// Filters of every shape return `min(k, matches)` allowed ids with at least `min_recall`.
pub fn filtered_search(kind: IndexKind, min_recall: f64) {
    filtered_search_with(kind, &[], min_recall);
}

/// [`filtered_search`] of an index built with parameters `extra`.
pub fn filtered_search_with(kind: IndexKind, extra: &[&str], min_recall: f64) {
    let set = small_set();
    let ids: Vec<u64> = (0..set.base.len() as u64).collect();
    let index = build(kind, Metric::Cosine, &set.base, ids.clone(), extra);
    let flat = oracle(Metric::Cosine, &set.base, ids);
    let n = set.base.len() as u64;
    let half = FnFilter::new(|id| id % 2 == 0, None);
    let tenth: IdSet = (0..n).filter(|id| id % 10 == 3).collect();
    let few: IdSet = [5u64, 2999, 1234].into_iter().collect();
    let none = IdSet::new();
    let filters: [(&str, &dyn IdFilter); 4] = [("50%", &half), ("10%", &tenth), ("3 ids", &few), ("empty", &none)];
    for (name, f) in filters {
        for k in [1usize, 10, 50] {
            let r = mean_recall(index.as_index(), &flat, &set.queries, k, &SearchParams::new(), Some(f));
            eprintln!("{kind} filter {name} k {k}: recall {r:.4}");
            assert!(r >= min_recall, "{kind} filter {name} k {k}: recall {r:.4} < {min_recall}");
        }
    }
    // The approximate path with a filter, at the lowest effort: results still hold min(k, matches) allowed ids
    // (the exact fallback fills in when the structure comes up short).
    let most = FnFilter::new(|id| id % 10 != 0, None);
    let low = SearchParams::new().with_max_leaves(1).with_probes(1).with_nprobe(1);
    for k in [10usize, 200] {
        let r = mean_recall(index.as_index(), &flat, &set.queries, k, &low, Some(&most));
        eprintln!("{kind} filter 90% lowest effort k {k}: recall {r:.4}");
    }
}

/// Removes 30% and upserts 100 new points and 50 moved ones: removed ids never come back, moved ids are found
/// at their new place, results stay `min(k, live)`, and recall holds.
pub fn churn(kind: IndexKind, min_recall: f64) {
    churn_with(kind, &[], min_recall);
}

/// [`churn`] of an index built with parameters `extra`.
pub fn churn_with(kind: IndexKind, extra: &[&str], min_recall: f64) {
    let set = small_set();
    let ids: Vec<u64> = (0..set.base.len() as u64).collect();
    let mut index = build(kind, Metric::Cosine, &set.base, ids, extra);
    let m = index.as_mutable();
    for id in (0..set.base.len() as u64).filter(|id| id % 10 < 3) {
        assert!(m.remove(id));
    }
    assert!(!m.remove(0), "second removal reports absence");
    let extra = random_vectors(9, 100, 384);
    for (i, v) in extra.iter().enumerate() {
        m.insert(10_000 + i as u64, v).unwrap();
    }
    // Move 50 live points onto query vectors (upsert).
    for i in 0..50u64 {
        m.insert(3 + 10 * i, set.queries.get(i as usize)).unwrap();
    }
    let live = |id: u64| -> Option<&[f32]> {
        match id {
            10_000.. => Some(extra.get((id - 10_000) as usize)),
            _ if id % 10 < 3 => None,
            _ if id % 10 == 3 && id < 500 => Some(set.queries.get(((id - 3) / 10) as usize)),
            _ => Some(set.base.get(id as usize)),
        }
    };
    let live_ids: Vec<u64> =
        (0..set.base.len() as u64).chain(10_000..10_100).filter(|&id| live(id).is_some()).collect();
    assert_eq!(index.as_index().len(), live_ids.len());
    let mut rows = VectorSet::new(384).unwrap();
    for &id in &live_ids {
        rows.push(live(id).unwrap()).unwrap();
    }
    let flat = oracle(Metric::Cosine, &rows, live_ids.clone());
    let r = mean_recall(index.as_index(), &flat, &set.queries, 10, &SearchParams::new(), None);
    eprintln!("{kind} recall after churn {r:.4}");
    assert!(r >= min_recall, "{kind}: recall after churn {r:.4} < {min_recall}");
    for qi in 0..50 {
        let got = index.as_index().search(set.queries.get(qi), 1000, &SearchParams::new(), None).unwrap();
        assert!(got.iter().all(|n| live(n.id).is_some()), "{kind}: a removed id came back");
        assert_eq!(got[0].id, 3 + 10 * qi as u64, "{kind}: the moved point is found at its new place");
        assert!(got[0].distance.abs() < 1e-5);
        let truth = |id: u64| naive_distance(Metric::Cosine, set.queries.get(qi), live(id).unwrap());
        assert!(got.iter().all(|n| (n.distance as f64 - truth(n.id)).abs() < 1e-4), "{kind}: stale distance");
    }
    // Remove everything: empty results, then the index works again.
    let m = index.as_mutable();
    for &id in &live_ids {
        assert!(m.remove(id));
    }
    assert!(index.as_index().is_empty());
    assert!(index.as_index().search(set.queries.get(0), 5, &SearchParams::new(), None).unwrap().is_empty());
    index.as_mutable().insert(7, set.base.get(3)).unwrap();
    assert_eq!(index.as_index().search(set.base.get(3), 5, &SearchParams::new(), None).unwrap()[0].id, 7);
}

/// Round trip, same input → same bytes, every truncation and single-bit flip is an error.
pub fn bytes(kind: IndexKind, metric: Metric, extra: &[&str]) {
    let set = small_set();
    let ids: Vec<u64> = (0..set.base.len() as u64).collect();
    let mut index = build(kind, metric, &set.base, ids.clone(), extra);
    let again = build(kind, metric, &set.base, ids, extra);
    assert_eq!(index.as_index().to_bytes(), again.as_index().to_bytes(), "{kind}: same seed, same bytes");
    index.as_mutable().remove(17);
    index.as_mutable().insert(5_000, set.queries.get(0)).unwrap();
    let bytes = index.as_index().to_bytes();
    let back = AnyIndex::from_bytes(&bytes).unwrap();
    assert_eq!(back.as_index().kind(), kind);
    assert_eq!(back.as_index().to_bytes(), bytes, "{kind}: decode then encode gives the same bytes");
    assert_eq!(back.as_index().len(), index.as_index().len());
    let sp = SearchParams::new();
    for q in set.queries.iter().take(30) {
        assert_eq!(
            back.as_index().search(q, 10, &sp, None).unwrap(),
            index.as_index().search(q, 10, &sp, None).unwrap()
        );
    }

    let data = random_vectors(3, 40, 4);
    let mut small = build(kind, metric, &data, (0..40).collect(), extra);
    small.as_mutable().remove(3);
    small.as_mutable().insert(3, data.get(5)).unwrap();
    small.as_mutable().remove(9);
    let bytes = small.as_index().to_bytes();
    assert!(AnyIndex::from_bytes(&bytes).is_ok());
    for cut in 0..bytes.len() {
        assert!(AnyIndex::from_bytes(&bytes[..cut]).is_err(), "{kind}: truncated to {cut}");
    }
    for pos in 0..bytes.len() {
        for bit in [0x01u8, 0x10, 0x80] {
            let mut b = bytes.clone();
            b[pos] ^= bit;
            let err = AnyIndex::from_bytes(&b).unwrap_err();
            assert!(!err.is_user_error(), "{kind}: byte {pos}: {err}");
        }
    }
}

/// Bad input is a clear error and changes nothing; edge cases behave.
pub fn bad_input(kind: IndexKind, bad_params: &[&str]) {
    let data = random_vectors(11, 30, 6);
    let mut index = build(kind, Metric::Cosine, &data, (0..30).collect(), &[]);
    let sp = SearchParams::new();
    let i = index.as_index();
    assert!(matches!(i.search(&[0.0; 5], 3, &sp, None), Err(quiver_index::Error::DimensionMismatch { .. })));
    assert!(matches!(i.search(&[f32::NAN; 6], 3, &sp, None), Err(quiver_index::Error::NonFinite { .. })));
    assert!(matches!(i.search(&[0.0; 6], 3, &sp, None), Err(quiver_index::Error::ZeroVector)));
    assert!(i.search(data.get(0), 0, &sp, None).unwrap().is_empty());
    assert_eq!(i.search(data.get(0), 100, &sp, None).unwrap().len(), 30, "{kind}: k > n returns every point");
    let before = i.to_bytes();
    let m = index.as_mutable();
    assert!(m.insert(99, &[1.0; 7]).is_err());
    assert!(m.insert(99, &[0.0; 6]).is_err());
    assert!(m.insert(1, &[f32::INFINITY; 6]).is_err());
    assert_eq!(index.as_index().to_bytes(), before, "{kind}: failed inserts changed the index");
    for bad in bad_params.iter().chain(&["bogus=3"]) {
        let r = AnyIndex::build(kind, Metric::Dot, data.clone(), (0..30).collect(), Params::parse([bad]).unwrap());
        assert!(r.is_err(), "{kind}: {bad} accepted");
    }
    let dup = AnyIndex::build(kind, Metric::Dot, data.clone(), vec![1; 30], Params::new());
    assert!(matches!(dup, Err(quiver_index::Error::DuplicateId { id: 1 })));
    let unknown_search = SearchParams::from_params(Params::parse(["ef=3"]).unwrap(), "search", kind.search_params());
    assert!(unknown_search.is_err() || kind.search_params().contains(&"ef"));
    for metric in Metric::ALL {
        let empty = AnyIndex::empty(kind, metric, 4, Params::new()).unwrap();
        assert!(empty.as_index().search(&[1.0, 0.0, 0.0, 0.0], 3, &sp, None).unwrap().is_empty());
        assert!(AnyIndex::from_bytes(&empty.as_index().to_bytes()).is_ok());
    }
    assert_eq!(IndexKind::parse(kind.name()).unwrap(), kind);
}

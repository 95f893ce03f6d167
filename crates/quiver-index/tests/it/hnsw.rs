//! HNSW against the exact Flat oracle on the real 3k set. Failures print the seed.

use crate::support::{random_vectors, small_set};
use quiver_index::{
    AnyIndex, Error, FlatIndex, FloatSource, FnFilter, HnswIndex, IdFilter, IdSet, Metric, MutableIndex, Neighbor,
    Params, SearchParams, VectorIndex, VectorSet,
};

use std::sync::Arc;

const SEED: u64 = 0x005E_ED0F_0A11;

fn hnsw(vectors: &VectorSet, ids: Vec<u64>, extra: &[&str]) -> HnswIndex {
    HnswIndex::build(Metric::Cosine, vectors.clone(), ids, Params::parse(extra).unwrap()).unwrap()
}

fn one_thread<R: Send>(f: impl FnOnce() -> R + Send) -> R {
    rayon::ThreadPoolBuilder::new().num_threads(1).build().unwrap().install(f)
}

/// Tie-aware recall of `got` against the exact answer `want` (same k): a returned id counts if its distance is
/// no worse than the k-th exact distance.
fn recall(got: &[Neighbor], want: &[Neighbor]) -> f64 {
    let Some(limit) = want.last().map(|n| n.distance + 1e-5) else { return 1.0 };
    got.iter().filter(|n| n.distance <= limit).count().min(want.len()) as f64 / want.len() as f64
}

fn mean_recall(
    index: &dyn VectorIndex,
    oracle: &FlatIndex,
    queries: &VectorSet,
    k: usize,
    sp: &SearchParams,
    filter: Option<&dyn IdFilter>,
) -> f64 {
    let mut total = 0.0;
    for q in queries.iter() {
        let got = index.search(q, k, sp, filter).unwrap();
        let want = oracle.search(q, k, &SearchParams::new(), filter).unwrap();
        assert_eq!(got.len(), want.len(), "seed {SEED:#x}: must return min(k, matches) results");
        if let Some(f) = filter {
            assert!(got.iter().all(|n| f.allows(n.id)), "a filtered-out id was returned");
        }
        total += recall(&got, &want);
    }
    total / queries.len() as f64
}

fn oracle(vectors: &VectorSet, ids: Vec<u64>) -> FlatIndex {
    FlatIndex::build(Metric::Cosine, vectors.clone(), ids, Params::new()).unwrap()
}

#[test]
fn recall_at_default_parameters() {
    let set = small_set();
    let ids: Vec<u64> = (0..set.base.len() as u64).collect();
    let index = hnsw(&set.base, ids.clone(), &[]);
    let r = mean_recall(&index, &oracle(&set.base, ids), &set.queries, 10, &SearchParams::new(), None);
    eprintln!("recall@10 at defaults {r:.4}");
    assert!(r >= 0.95, "seed {SEED:#x}: recall@10 {r:.4} < 0.95");
    let stats = index.stats();
    assert_eq!(stats.live, 3000);
    assert_eq!(stats.tombstones, 0);
    assert!(stats.mean_degree0 > 4.0, "{stats:?}");
}

/// An inner-product graph over vectors of very different lengths: the selection heuristic never keeps a short
/// vector as anyone's neighbour, so without a repair many nodes have no in-link and no search can find them.
#[test]
fn every_point_is_reachable_after_a_build() {
    let base = random_vectors(SEED, 2000, 16);
    let mut flat = Vec::with_capacity(2000 * 16);
    for (i, v) in base.iter().enumerate() {
        let scale = 0.02 + (i % 50) as f32 * 0.1;
        flat.extend(v.iter().map(|x| x * scale));
    }
    let set = VectorSet::from_flat(16, flat).unwrap();
    let ids: Vec<u64> = (0..2000).collect();
    let build = |threads: usize, extra: &[&str]| {
        let params = Params::parse(extra).unwrap();
        rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .unwrap()
            .install(|| HnswIndex::build(Metric::Dot, set.clone(), ids.clone(), params).unwrap())
    };
    for threads in [1, 2] {
        for extra in [&["m=4"][..], &["m=8", "quantization=sq8"], &["m=8", "quantization=sq4"], &[]] {
            let index = build(threads, extra);
            let stats = index.stats();
            assert_eq!(stats.unreachable, 0, "{threads} threads, {extra:?}: {stats:?}");
        }
    }
}

#[test]
fn parallel_build_reaches_the_same_recall_and_one_thread_is_deterministic() {
    let set = small_set();
    let ids: Vec<u64> = (0..set.base.len() as u64).collect();
    let parallel =
        rayon::ThreadPoolBuilder::new().num_threads(2).build().unwrap().install(|| hnsw(&set.base, ids.clone(), &[]));
    let r = mean_recall(&parallel, &oracle(&set.base, ids.clone()), &set.queries, 10, &SearchParams::new(), None);
    assert!(r >= 0.95, "parallel build recall {r:.4}");
    let a = one_thread(|| hnsw(&set.base, ids.clone(), &["m=8", "ef_construction=40"]).to_bytes());
    let b = one_thread(|| hnsw(&set.base, ids.clone(), &["m=8", "ef_construction=40"]).to_bytes());
    assert!(a == b, "same seed, one thread: the graph must be identical");
    let c = one_thread(|| hnsw(&set.base, ids, &["m=8", "ef_construction=40", "seed=7"]).to_bytes());
    assert!(a != c, "another seed gives another graph");
}

#[test]
fn churn_keeps_recall_and_never_returns_deleted_ids() {
    let set = small_set();
    let n = set.base.len() as u64;
    let mut index = hnsw(&set.base, (0..n).collect(), &[]);
    // Delete 30% (a deterministic spread of ids), then insert as many new points (the same vectors, new ids).
    let gone: Vec<u64> = (0..n).filter(|id| (id * 7919) % 10 < 3).collect();
    for &id in &gone {
        assert!(index.remove(id));
    }
    assert_eq!(index.stats().tombstones, gone.len());
    for &id in &gone {
        index.insert(100_000 + id, set.base.get(id as usize)).unwrap();
    }
    let live_ids: Vec<u64> = (0..n).map(|id| if gone.binary_search(&id).is_ok() { 100_000 + id } else { id }).collect();
    let flat = oracle(&set.base, live_ids);
    let r = mean_recall(&index, &flat, &set.queries, 10, &SearchParams::new(), None);
    eprintln!("recall after churn {r:.4}");
    assert!(r >= 0.95, "seed {SEED:#x}: recall after churn {r:.4}");
    for q in set.queries.iter() {
        let got = index.search(q, 50, &SearchParams::new(), None).unwrap();
        assert!(got.iter().all(|nb| gone.binary_search(&nb.id).is_err()), "a deleted id came back");
    }
    assert_eq!(index.len(), n as usize);
}

#[test]
fn filtered_search_keeps_recall_and_returns_min_k_matches() {
    let set = small_set();
    let n = set.base.len() as u64;
    let ids: Vec<u64> = (0..n).collect();
    let index = hnsw(&set.base, ids.clone(), &[]);
    let flat = oracle(&set.base, ids);
    let half = FnFilter::new(|id| id % 2 == 0, None); // no estimate: the index samples
    let tenth: IdSet = (0..n).filter(|id| id % 10 == 1).collect();
    let one_pct = FnFilter::new(|id| id % 100 == 42, Some(n / 100));
    let tiny: IdSet = [3u64, 1500, 2999].into_iter().collect(); // 0.1%
    let filters: [(&str, &dyn IdFilter); 4] = [("50%", &half), ("10%", &tenth), ("1%", &one_pct), ("0.1%", &tiny)];
    for (name, f) in filters {
        for k in [10usize, 40] {
            let r = mean_recall(&index, &flat, &set.queries, k, &SearchParams::new(), Some(f));
            eprintln!("filter {name} k {k}: recall {r:.4}");
            assert!(r >= 0.95, "seed {SEED:#x}: filter {name} k {k}: recall {r:.4}");
        }
    }
    // A small ef moves the 10% filter onto the graph path (the exact-scan threshold is sqrt(ef * len)).
    let sp = SearchParams::new().with_ef(24);
    let r = mean_recall(&index, &flat, &set.queries, 10, &sp, Some(&tenth));
    eprintln!("filter 10% on the graph, ef 24: recall {r:.4}");
    assert!(r >= 0.95, "seed {SEED:#x}: graph path with a 10% filter: recall {r:.4}");
    let none = IdSet::new();
    assert!(index.search(set.queries.get(0), 10, &SearchParams::new(), Some(&none)).unwrap().is_empty());
}

#[test]
fn bytes_round_trip_and_damage_is_detected() {
    let set = small_set();
    let ids: Vec<u64> = (0..set.base.len() as u64).collect();
    let mut index = hnsw(&set.base, ids, &["m=8"]);
    index.remove(17);
    index.insert(5_000, set.queries.get(0)).unwrap();
    let bytes = index.to_bytes();
    let back = HnswIndex::from_bytes(&bytes).unwrap();
    assert_eq!(back.to_bytes(), bytes);
    let sp = SearchParams::new().with_ef(32);
    for q in set.queries.iter().take(20) {
        assert_eq!(back.search(q, 10, &sp, None).unwrap(), index.search(q, 10, &sp, None).unwrap());
    }
    assert!(matches!(AnyIndex::from_bytes(&bytes).unwrap(), AnyIndex::Hnsw(_)));

    let small = HnswIndex::build(
        Metric::Euclidean,
        random_vectors(3, 40, 4),
        (0..40).collect(),
        Params::parse(["m=4"]).unwrap(),
    )
    .unwrap();
    let bytes = small.to_bytes();
    for cut in 0..bytes.len() {
        assert!(HnswIndex::from_bytes(&bytes[..cut]).is_err(), "truncated to {cut}");
    }
    for pos in 0..bytes.len() {
        let mut b = bytes.clone();
        b[pos] ^= 0x04;
        assert!(HnswIndex::from_bytes(&b).is_err(), "flip at {pos}");
    }
}

/// Floats owned by the test, never changed while shared.
#[derive(Debug)]
struct Floats(Vec<f32>);

// SAFETY: the Vec is never mutated or dropped while an `Arc` to it exists, so `floats` returns the same slice.
#[allow(unsafe_code)]
unsafe impl FloatSource for Floats {
    fn floats(&self) -> &[f32] {
        &self.0
    }
}

#[test]
fn a_graph_written_without_its_vectors_reads_them_in_place() {
    let set = small_set();
    let ids: Vec<u64> = (0..set.base.len() as u64).collect();
    for extra in [&["m=8"][..], &["m=8", "quantization=sq8"], &["m=8", "quantization=sq4"]] {
        let index = hnsw(&set.base, ids.clone(), extra);
        let bytes = index.to_bytes_without_vectors();
        assert!(bytes.len() + index.vectors().as_slice().len() * 4 <= index.to_bytes().len() + 1, "{extra:?}");
        let source: Arc<dyn FloatSource> = Arc::new(Floats(index.vectors().as_slice().to_vec()));
        let shared = VectorSet::shared(index.dim(), source.clone()).unwrap();
        assert!(shared.is_shared() && shared.memory_bytes() == 0);
        let back = HnswIndex::from_bytes_with_vectors(&bytes, shared).unwrap();
        assert!(back.vectors().is_shared(), "no copy was made");
        assert_eq!(back.vectors().as_slice().as_ptr(), source.floats().as_ptr());
        let sp = SearchParams::new().with_ef(32);
        for q in set.queries.iter().take(20) {
            assert_eq!(back.search(q, 10, &sp, None).unwrap(), index.search(q, 10, &sp, None).unwrap(), "{extra:?}");
        }
        assert_eq!(back.to_bytes(), index.to_bytes());
        // Without vectors, or with the wrong number of rows, it is an error, not a panic.
        assert!(HnswIndex::from_bytes(&bytes).is_err());
        let short = VectorSet::from_flat(index.dim(), index.vectors().rows(0, 10).to_vec()).unwrap();
        let err = HnswIndex::from_bytes_with_vectors(&bytes, short).unwrap_err().to_string();
        assert!(err.contains("vectors") && err.contains("10 rows"), "{err}");
        // A graph written with its vectors ignores the ones given.
        let other = VectorSet::from_flat(index.dim(), vec![0.5; index.dim()]).unwrap();
        assert!(AnyIndex::from_bytes_with_vectors(&index.to_bytes(), other).is_ok());
    }
}

#[test]
fn a_build_over_prepared_shared_vectors_reads_them_in_place() {
    // What a segment build hands over: rows read in place from a file, already unit length under cosine.
    let data = random_vectors(21, 300, 16);
    let mut unit = Vec::new();
    for v in data.iter() {
        let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt();
        unit.extend(v.iter().map(|x| x / norm));
    }
    for metric in [Metric::Cosine, Metric::Dot, Metric::Euclidean] {
        let source: Arc<dyn FloatSource> = Arc::new(Floats(unit.clone()));
        let shared = VectorSet::shared(16, source.clone()).unwrap();
        let index = HnswIndex::build(metric, shared, (0..300).collect(), Params::new()).unwrap();
        assert!(index.vectors().is_shared(), "{metric:?}: the build copied the rows");
        assert_eq!(index.vectors().as_slice().as_ptr(), source.floats().as_ptr());
        let hits = index.search(&unit[16 * 7..16 * 8], 1, &SearchParams::new(), None).unwrap();
        assert_eq!(hits[0].id, 7, "{metric:?}");
    }
    // Rows that are not unit length are normalised under cosine: on a heap copy, never through the source.
    let source: Arc<dyn FloatSource> = Arc::new(Floats(data.as_slice().to_vec()));
    let index = HnswIndex::build(
        Metric::Cosine,
        VectorSet::shared(16, source.clone()).unwrap(),
        (0..300).collect(),
        Params::new(),
    )
    .unwrap();
    assert!(!index.vectors().is_shared());
    assert_eq!(source.floats(), data.as_slice(), "the source is never written");
    let norm = index.vectors().get(3).iter().map(|x| x * x).sum::<f32>().sqrt();
    assert!((norm - 1.0).abs() < 1e-5, "{norm}");
}

#[test]
fn a_shared_vector_set_is_copied_on_first_change() {
    let source: Arc<dyn FloatSource> = Arc::new(Floats(vec![1.0, 2.0, 3.0, 4.0]));
    let mut v = VectorSet::shared(2, source.clone()).unwrap();
    assert_eq!((v.len(), v.get(1)), (2, &[3.0, 4.0][..]));
    assert_eq!(v.shared_bytes(), 16);
    v.push(&[5.0, 6.0]).unwrap();
    assert!(!v.is_shared());
    assert_eq!(v.as_slice(), &[1.0, 2.0, 3.0, 4.0, 5.0, 6.0]);
    assert_eq!(source.floats(), &[1.0, 2.0, 3.0, 4.0], "the source is never written");
    assert!(VectorSet::shared(3, source).is_err(), "4 floats are not rows of 3");
}

#[test]
fn bad_input_and_edge_cases() {
    let data = random_vectors(11, 30, 6);
    let mut index = HnswIndex::build(Metric::Dot, data.clone(), (0..30).collect(), Params::new()).unwrap();
    let sp = SearchParams::new();
    assert!(matches!(index.search(&[0.0; 5], 3, &sp, None), Err(Error::DimensionMismatch { expected: 6, got: 5 })));
    assert!(matches!(index.search(&[f32::NAN; 6], 3, &sp, None), Err(Error::NonFinite { position: 0, .. })));
    assert!(index.insert(99, &[1.0; 7]).is_err());
    assert_eq!(index.len(), 30);
    assert!(index.search(data.get(0), 0, &sp, None).unwrap().is_empty());
    assert_eq!(index.search(data.get(0), 100, &sp, None).unwrap().len(), 30, "k > n returns every point");
    for id in 0..30 {
        assert!(index.remove(id));
    }
    assert!(index.is_empty());
    assert!(index.search(data.get(0), 5, &sp, None).unwrap().is_empty());
    index.insert(7, data.get(3)).unwrap();
    assert_eq!(index.search(data.get(3), 5, &sp, None).unwrap()[0].id, 7);
    for bad in [["m=1"], ["ef_construction=0"], ["bogus=3"]] {
        assert!(
            HnswIndex::build(Metric::Dot, data.clone(), (0..30).collect(), Params::parse(bad).unwrap()).is_err(),
            "{bad:?}"
        );
    }
    let empty = HnswIndex::build(Metric::Cosine, VectorSet::new(4).unwrap(), vec![], Params::new()).unwrap();
    assert!(empty.search(&[1.0, 0.0, 0.0, 0.0], 3, &sp, None).unwrap().is_empty());
    assert!(HnswIndex::from_bytes(&empty.to_bytes()).is_ok());
}

/// A graph over ids `0..n` in order keeps no id map; upserts and foreign ids switch to one without changing what
/// is found, and both forms survive a round trip.
#[test]
fn identity_ids_need_no_map_and_switch_to_one_on_other_ids() {
    let base = random_vectors(SEED, 300, 8);
    let ids: Vec<u64> = (0..300).collect();
    let mut index = HnswIndex::build(Metric::Euclidean, base.clone(), ids, Params::new()).unwrap();
    let with_map =
        HnswIndex::build(Metric::Euclidean, base.clone(), (0..300).map(|i| i + 1000).collect(), Params::new()).unwrap();
    assert!(index.memory_bytes() < with_map.memory_bytes(), "no id map for ids 0..n");
    let sp = SearchParams::new().with_exact(true);
    assert!(index.contains(299) && !index.contains(300));
    assert!(index.remove(7) && !index.remove(7) && !index.contains(7));
    // Appending id == node keeps the identity; re-inserting 7 and a foreign id switch to a map.
    index.insert(300, base.get(0)).unwrap();
    assert!(index.contains(300));
    index.insert(7, base.get(7)).unwrap();
    index.insert(5_000, base.get(9)).unwrap();
    for (id, row) in [(7u64, 7usize), (5_000, 9), (300, 0), (42, 42)] {
        assert!(index.contains(id), "{id}");
        let hits = index.search(base.get(row), 2, &sp, None).unwrap();
        assert!(hits.iter().any(|h| h.id == id && h.distance < 1e-6), "{id}: {hits:?}");
    }
    assert!(index.remove(0) && !index.contains(0) && index.contains(300));
    let back = HnswIndex::from_bytes(&index.to_bytes()).unwrap();
    assert!(back.contains(5_000) && back.contains(7) && !back.contains(0));
    assert_eq!(back.search(base.get(9), 3, &sp, None).unwrap(), index.search(base.get(9), 3, &sp, None).unwrap());
}

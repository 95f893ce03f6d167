//! IVF-Flat and IVF-PQ against the exact Flat oracle on the real 3k set.

use crate::support::{assert_exact, naive_distance, naive_top_k, random_vectors, small_set};
use quiver_index::{
    FlatIndex, FnFilter, IdFilter, IdSet, IvfIndex, Metric, MutableIndex, Neighbor, Params, SearchParams, VectorIndex,
    VectorSet,
};

fn ivf(vectors: &VectorSet, extra: &[&str]) -> IvfIndex {
    let ids = (0..vectors.len() as u64).collect();
    IvfIndex::build(Metric::Cosine, vectors.clone(), ids, Params::parse(extra).unwrap()).unwrap()
}

fn recall(
    index: &dyn VectorIndex,
    oracle: &FlatIndex,
    queries: &VectorSet,
    sp: &SearchParams,
    filter: Option<&dyn IdFilter>,
) -> f64 {
    let mut total = 0.0;
    for q in queries.iter() {
        let got: Vec<Neighbor> = index.search(q, 10, sp, filter).unwrap();
        let want = oracle.search(q, 10, &SearchParams::new(), filter).unwrap();
        assert_eq!(got.len(), want.len(), "min(k, matches) results");
        if let Some(f) = filter {
            assert!(got.iter().all(|n| f.allows(n.id)));
        }
        let limit = want.last().map_or(0.0, |n| n.distance) + 1e-5;
        total += got.iter().filter(|n| n.distance <= limit).count() as f64 / want.len().max(1) as f64;
    }
    total / queries.len() as f64
}

fn oracle(vectors: &VectorSet) -> FlatIndex {
    FlatIndex::build(Metric::Cosine, vectors.clone(), (0..vectors.len() as u64).collect(), Params::new()).unwrap()
}

#[test]
fn ivf_flat_recall_and_probing_every_cell_is_exact() {
    let set = small_set();
    let index = ivf(&set.base, &[]);
    assert_eq!(index.params().nlist, 55, "nlist defaults to round(sqrt(n))");
    let flat = oracle(&set.base);
    let r = recall(&index, &flat, &set.queries, &SearchParams::new(), None);
    eprintln!("ivf-flat defaults (nlist 55, nprobe 16): recall@10 {r:.4}");
    assert!(r >= 0.9, "recall at defaults {r:.4}");
    for nprobe in [8usize, 24, 32] {
        let r = recall(&index, &flat, &set.queries, &SearchParams::new().with_nprobe(nprobe), None);
        eprintln!("ivf-flat nprobe {nprobe}: recall@10 {r:.4}");
    }
    let all = SearchParams::new().with_nprobe(55);
    for (qi, q) in set.queries.iter().enumerate().step_by(10) {
        let want =
            naive_top_k(Metric::Cosine, set.base.iter().enumerate().map(|(i, v)| (i as u64, v)), q, 10, |_| true);
        let got = index.search(q, 10, &all, None).unwrap();
        assert_exact(
            &got,
            &want,
            |id| naive_distance(Metric::Cosine, q, set.base.get(id as usize)),
            1e-5,
            &format!("query {qi}"),
        );
    }
    let stats = index.stats();
    assert_eq!(stats.nlist, 55);
    assert!(stats.imbalance >= 1.0 && stats.imbalance < 3.0, "{stats:?}");
}

#[test]
fn same_seed_same_bytes_and_round_trip() {
    let set = small_set();
    let base = VectorSet::from_flat(384, set.base.rows(0, 800).to_vec()).unwrap();
    let a = ivf(&base, &["nlist=20"]).to_bytes();
    assert!(a == ivf(&base, &["nlist=20"]).to_bytes(), "deterministic build");
    assert!(a != ivf(&base, &["nlist=20", "seed=9"]).to_bytes());
    let back = IvfIndex::from_bytes(&a).unwrap();
    let orig = ivf(&base, &["nlist=20"]);
    for q in set.queries.iter().take(10) {
        assert_eq!(
            back.search(q, 10, &SearchParams::new(), None).unwrap(),
            orig.search(q, 10, &SearchParams::new(), None).unwrap()
        );
    }
    let small = IvfIndex::build(
        Metric::Euclidean,
        random_vectors(2, 30, 4),
        (0..30).collect(),
        Params::parse(["nlist=3", "quantization=pq", "pq_m=2"]).unwrap(),
    )
    .unwrap();
    let bytes = small.to_bytes();
    assert!(IvfIndex::from_bytes(&bytes).is_ok());
    for cut in 0..bytes.len() {
        assert!(IvfIndex::from_bytes(&bytes[..cut]).is_err(), "cut {cut}");
    }
    for pos in 0..bytes.len() {
        let mut b = bytes.clone();
        b[pos] ^= 0x20;
        assert!(IvfIndex::from_bytes(&b).is_err(), "flip {pos}");
    }
}

#[test]
fn updates_filters_rebalance_and_retrain() {
    let set = small_set();
    let mut index = ivf(&set.base, &[]);
    for id in (0..3000).step_by(3) {
        assert!(index.remove(id));
    }
    assert!(!index.remove(0));
    for q in set.queries.iter().take(30) {
        assert!(index.search(q, 20, &SearchParams::new(), None).unwrap().iter().all(|n| n.id % 3 != 0));
    }
    // Crowd one cell: 400 near-copies of one query.
    let q0 = set.queries.get(0).to_vec();
    for i in 0..400u64 {
        let mut v = q0.clone();
        v[(i % 384) as usize] += 0.01 * ((i % 7) as f32 + 1.0);
        index.insert(50_000 + i, &v).unwrap();
    }
    let skewed = index.stats();
    let after = index.rebalance(2.0, 4.0).unwrap();
    eprintln!("imbalance {:.2} -> {:.2}, cells {} -> {}", skewed.imbalance, after.imbalance, skewed.nlist, after.nlist);
    assert!(after.imbalance < skewed.imbalance, "{skewed:?} -> {after:?}");
    assert!(after.max_cell < skewed.max_cell);
    assert_eq!(index.len(), 2000 + 400);
    let got = index.search(&q0, 5, &SearchParams::new(), None).unwrap();
    assert!(got.iter().all(|n| n.id >= 50_000), "the near-copies are the nearest");
    index.retrain().unwrap();
    assert_eq!(index.len(), 2400);
    assert!(index.contains(50_123) && !index.contains(3));

    let fresh = ivf(&set.base, &[]);
    let flat = oracle(&set.base);
    let n = set.base.len() as u64;
    let half = FnFilter::new(|id| id % 2 == 1, Some(n / 2));
    let one_pct: IdSet = (0..n).filter(|id| id % 100 == 5).collect();
    let three: IdSet = [1u64, 77, 2500].into_iter().collect();
    for (name, f) in [("50%", &half as &dyn IdFilter), ("1%", &one_pct), ("3 ids", &three)] {
        let r = recall(&fresh, &flat, &set.queries, &SearchParams::new(), Some(f));
        eprintln!("filter {name}: recall {r:.4}");
        assert!(r >= 0.9, "filter {name}: recall {r:.4}");
    }
}

#[test]
fn ivf_pq_recall_with_and_without_rerank() {
    let set = small_set();
    let flat = oracle(&set.base);
    let with = ivf(&set.base, &["quantization=pq"]);
    let r = recall(&with, &flat, &set.queries, &SearchParams::new().with_rerank(8), None);
    eprintln!("ivf-pq (m 48) rerank 8: recall {r:.4}");
    let r_flat = recall(&ivf(&set.base, &[]), &flat, &set.queries, &SearchParams::new(), None);
    assert!(r >= r_flat - 0.01, "ivf-pq with rerank {r:.4} vs ivf-flat {r_flat:.4} at the same nprobe");
    let codes_only = ivf(&set.base, &["quantization=pq", "store_vectors=false"]);
    let r0 = recall(&codes_only, &flat, &set.queries, &SearchParams::new(), None);
    eprintln!("ivf-pq codes only: recall {r0:.4}");
    // 256 centroids per sub-space trained on only 3,000 residuals: coarse; the 100k figures are in docs/benchmarks.md.
    assert!(r0 >= 0.3, "ivf-pq without rerank recall {r0:.4}");
    assert!(codes_only.memory_bytes() * 4 < with.memory_bytes(), "codes only is much smaller");
    assert!(
        IvfIndex::build(
            Metric::Cosine,
            set.base.clone(),
            (0..3000).collect(),
            Params::parse(["quantization=sq8"]).unwrap()
        )
        .is_err()
    );
}

#[test]
fn prefilter_returns_exactly_what_the_plain_scan_returns() {
    // The SQ8 prefilter only skips vectors whose error bound proves they cannot enter the top k, so with it on
    // and off every search (any metric, filtered or not, after updates and a reload) gives identical results.
    let set = small_set();
    let mut scaled = VectorSet::with_capacity(384, set.base.len()).unwrap();
    for (i, v) in set.base.iter().enumerate() {
        let f = 0.5 + (i % 5) as f32 * 0.75;
        scaled.push(&v.iter().map(|x| x * f).collect::<Vec<_>>()).unwrap();
    }
    let n = scaled.len() as u64;
    let odd = FnFilter::new(|id| id % 2 == 1, Some(n / 2));
    for metric in [Metric::Cosine, Metric::Dot, Metric::Euclidean] {
        let build = |prefilter: bool| {
            let p = Params::parse(["nlist=40", &format!("prefilter={prefilter}")]).unwrap();
            IvfIndex::build(metric, scaled.clone(), (0..n).collect(), p).unwrap()
        };
        let (mut on, mut off) = (build(true), build(false));
        assert!(on.memory_bytes() > off.memory_bytes() + 384 * 3000, "{metric:?}: the codes are held");
        for id in (0..n).step_by(7) {
            assert!(on.remove(id) && off.remove(id));
        }
        for (i, q) in set.queries.iter().take(20).enumerate() {
            let v: Vec<f32> = q.iter().map(|x| x * 1.5).collect();
            on.insert(10_000 + i as u64, &v).unwrap();
            off.insert(10_000 + i as u64, &v).unwrap();
        }
        let on_loaded = IvfIndex::from_bytes(&on.to_bytes()).unwrap();
        let off_loaded = IvfIndex::from_bytes(&off.to_bytes()).unwrap();
        assert!(on_loaded.params().prefilter && !off_loaded.params().prefilter);
        for q in set.queries.iter().skip(20).take(40) {
            for (k, nprobe) in [(10, 8), (100, 3), (1, 40)] {
                let sp = SearchParams::new().with_nprobe(nprobe);
                for filter in [None, Some(&odd as &dyn IdFilter)] {
                    let want = off.search(q, k, &sp, filter).unwrap();
                    assert_eq!(on.search(q, k, &sp, filter).unwrap(), want, "{metric:?} k {k} nprobe {nprobe}");
                    assert_eq!(on_loaded.search(q, k, &sp, filter).unwrap(), want, "{metric:?} reloaded");
                    assert_eq!(off_loaded.search(q, k, &sp, filter).unwrap(), want, "{metric:?} reloaded, off");
                }
            }
        }
    }
}

#[test]
fn prefilter_bound_holds_for_vectors_on_the_quantization_grid() {
    // Integer-valued data sits exactly on the SQ8 grid (zero quantization error), and wide per-dimension ranges
    // make the codes' scores large sums that nearly cancel: the bound must cover their f32 rounding, not only the
    // quantization error, or a nearer vector is skipped.
    let dim = 256;
    let mut base = VectorSet::with_capacity(dim, 2 + 3 * dim).unwrap();
    base.push(&vec![-128.0; dim]).unwrap();
    base.push(&vec![127.0; dim]).unwrap();
    let one_hot = |i: usize, extra: f32| {
        let mut v = vec![0.0f32; dim];
        v[i % dim] = 1.0;
        v[(i + 1) % dim] += extra;
        v
    };
    for i in 0..dim {
        base.push(&one_hot(i, 0.005)).unwrap(); // near-duplicates first, so ties and near-ties are at stake
    }
    for i in 0..dim {
        base.push(&one_hot(i, 0.0)).unwrap();
    }
    for i in 0..dim {
        base.push(&one_hot(i, 2.0)).unwrap();
    }
    let n = base.len() as u64;
    for metric in [Metric::Euclidean, Metric::Dot] {
        let build = |prefilter: bool| {
            let p = Params::parse(["nlist=1", &format!("prefilter={prefilter}")]).unwrap();
            IvfIndex::build(metric, base.clone(), (0..n).collect(), p).unwrap()
        };
        let (on, off) = (build(true), build(false));
        let mut seed = 0x9E37_79B9_7F4A_7C15u64;
        for i in 0..dim {
            let mut q = one_hot(i, 0.0);
            for x in q.iter_mut() {
                seed = seed.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
                *x += ((seed >> 40) as f32 / (1u64 << 24) as f32 - 0.5) * 2e-3;
            }
            for k in [1, 10] {
                let want = off.search(&q, k, &SearchParams::new(), None).unwrap();
                assert_eq!(on.search(&q, k, &SearchParams::new(), None).unwrap(), want, "{metric:?} query {i} k {k}");
            }
        }
    }
}

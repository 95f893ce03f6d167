//! Shared fixtures: the real WordNet/MiniLM test set committed under `testdata/`, seeded random data and a
//! naive f64 brute force to check indexes against.

use quiver_index::dataset::Dataset;
use quiver_index::{Metric, Neighbor, VectorSet};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::path::PathBuf;
use std::sync::OnceLock;

pub fn testdata_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../testdata/wordnet-minilm-3k")
}

/// 3,000 base / 200 query real 384-d vectors with exact top-100 ground truth.
pub fn small_set() -> &'static Dataset {
    static SET: OnceLock<Dataset> = OnceLock::new();
    SET.get_or_init(|| Dataset::load(testdata_dir(), None).expect("testdata/wordnet-minilm-3k is part of the repo"))
}

pub fn random_vectors(seed: u64, n: usize, dim: usize) -> VectorSet {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let data: Vec<f32> = (0..n * dim).map(|_| rng.random_range(-1.0f32..1.0)).collect();
    VectorSet::from_flat(dim, data).unwrap()
}

/// Distance in f64, independent of the kernels.
pub fn naive_distance(metric: Metric, a: &[f32], b: &[f32]) -> f64 {
    let dot: f64 = a.iter().zip(b).map(|(x, y)| *x as f64 * *y as f64).sum();
    match metric {
        Metric::Cosine => {
            let na: f64 = a.iter().map(|x| (*x as f64).powi(2)).sum::<f64>().sqrt();
            let nb: f64 = b.iter().map(|x| (*x as f64).powi(2)).sum::<f64>().sqrt();
            1.0 - dot / (na * nb)
        }
        Metric::Dot => -dot,
        Metric::Euclidean => a.iter().zip(b).map(|(x, y)| (*x as f64 - *y as f64).powi(2)).sum(),
    }
}

/// Exact top-k by the naive distance over `(id, vector)` pairs that `allow` admits.
pub fn naive_top_k<'a>(
    metric: Metric,
    points: impl Iterator<Item = (u64, &'a [f32])>,
    query: &[f32],
    k: usize,
    allow: impl Fn(u64) -> bool,
) -> Vec<(u64, f64)> {
    let mut all: Vec<(u64, f64)> =
        points.filter(|(id, _)| allow(*id)).map(|(id, v)| (id, naive_distance(metric, query, v))).collect();
    all.sort_by(|a, b| a.1.total_cmp(&b.1).then(a.0.cmp(&b.0)));
    all.truncate(k);
    all
}

/// Asserts that `got` is a correct exact top-k: as many results as `want` (from [`naive_top_k`]), the same
/// distances position by position within `eps` (so ids may differ only between ties), each reported distance
/// the true distance of its id (`truth`), ids distinct, closest first.
pub fn assert_exact(got: &[Neighbor], want: &[(u64, f64)], truth: impl Fn(u64) -> f64, eps: f64, context: &str) {
    assert_eq!(got.len(), want.len(), "{context}: result count");
    let close = |a: f64, b: f64| (a - b).abs() <= eps * (1.0 + b.abs());
    for (pos, (g, w)) in got.iter().zip(want).enumerate() {
        assert!(
            close(g.distance as f64, w.1),
            "{context}: position {pos}: got id {} at {}, want id {} at {}",
            g.id,
            g.distance,
            w.0,
            w.1
        );
        assert!(
            close(g.distance as f64, truth(g.id)),
            "{context}: id {} reported at {} but is at {}",
            g.id,
            g.distance,
            truth(g.id)
        );
    }
    let ids: std::collections::HashSet<u64> = got.iter().map(|n| n.id).collect();
    assert_eq!(ids.len(), got.len(), "{context}: duplicate ids");
    assert!(got.windows(2).all(|w| w[0] <= w[1]), "{context}: results not sorted");
}

/// Tie-aware recall of `got` against the exact answer `want` (same k): a returned id counts if its distance is
/// no worse than the k-th exact distance.
pub fn recall(got: &[Neighbor], want: &[Neighbor]) -> f64 {
    let Some(limit) = want.last().map(|n| n.distance + 1e-5) else { return 1.0 };
    got.iter().filter(|n| n.distance <= limit).count().min(want.len()) as f64 / want.len() as f64
}

/// Mean recall@k of `index` against the exact `oracle` over `queries`; also checks that every search returns
/// `min(k, matches)` results and only ids the filter allows.
pub fn mean_recall(
    index: &dyn quiver_index::VectorIndex,
    oracle: &dyn quiver_index::VectorIndex,
    queries: &VectorSet,
    k: usize,
    sp: &quiver_index::SearchParams,
    filter: Option<&dyn quiver_index::IdFilter>,
) -> f64 {
    let mut total = 0.0;
    for q in queries.iter() {
        let got = index.search(q, k, sp, filter).unwrap();
        let want = oracle.search(q, k, &quiver_index::SearchParams::new(), filter).unwrap();
        assert_eq!(got.len(), want.len(), "must return min(k, matches) results");
        if let Some(f) = filter {
            assert!(got.iter().all(|n| f.allows(n.id)), "a filtered-out id was returned");
        }
        total += recall(&got, &want);
    }
    total / queries.len() as f64
}

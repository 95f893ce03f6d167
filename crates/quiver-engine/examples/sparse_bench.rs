//! Sparse vector search through the engine's inverted index against a brute-force scan of the same vectors, on a
//! SPLADE-like random set: a 30,522-term vocabulary (BERT's), term frequencies following Zipf's law, weights
//! growing with a term's rarity (as SPLADE's learned weights do), about 120 non-zero weights per document and 25 per
//! query (SPLADE's typical sizes). Both answer every query exactly; the
//! top-10 scores are checked equal.
//!
//! `cargo run --release -p quiver-engine --example sparse_bench -- [--docs 100000] [--queries 200]`

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Instant;

use quiver_engine::config::SparseVectorConfig;
use quiver_engine::{Collection, CollectionConfig, PointInput, SearchRequest, SparseVector, SystemClock};
use quiver_index::Metric;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

const VOCAB: usize = 30_522;

/// A term drawn from Zipf's law (s = 1) over the vocabulary, by inverting its CDF (≈ harmonic numbers).
fn zipf_term(rng: &mut ChaCha8Rng) -> u32 {
    let h = (VOCAB as f64).ln() + 0.5772;
    let u: f64 = rng.random_range(0.0..1.0);
    ((u * h - 0.5772).exp().floor() as usize).min(VOCAB - 1) as u32
}

fn vector(rng: &mut ChaCha8Rng, nnz: usize) -> SparseVector {
    let mut m = BTreeMap::new();
    while m.len() < nnz {
        // Weights like SPLADE's: positive, mostly small, a few large, and larger for rarer terms (SPLADE learns
        // weights that track a term's informativeness, much as IDF does).
        let t = zipf_term(rng);
        let idf = ((VOCAB as f32) / (t as f32 + 1.0)).ln() / (VOCAB as f32).ln();
        let w: f32 = (rng.random_range(0.0f32..1.0).powi(3) * 3.0 + 0.01) * (0.1 + idf);
        m.insert(t, w);
    }
    SparseVector { indices: m.keys().copied().collect(), values: m.values().copied().collect() }
}

fn arg(name: &str, default: usize) -> usize {
    let args: Vec<String> = std::env::args().collect();
    args.iter().position(|a| a == name).and_then(|i| args.get(i + 1)).and_then(|v| v.parse().ok()).unwrap_or(default)
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let (docs, queries) = (arg("--docs", 100_000), arg("--queries", 200));
    let mut rng = ChaCha8Rng::seed_from_u64(7);
    let vectors: Vec<SparseVector> = (0..docs)
        .map(|_| {
            let n = rng.random_range(80..160);
            vector(&mut rng, n)
        })
        .collect();
    let qs: Vec<SparseVector> = (0..queries)
        .map(|_| {
            let n = rng.random_range(15..35);
            vector(&mut rng, n)
        })
        .collect();
    let dir = tempfile::tempdir()?;
    let db = quiver_engine::Database::open_with_clock(dir.path(), Arc::new(SystemClock))?;
    let mut cfg = CollectionConfig::new(1, Metric::Dot);
    cfg.sparse_vectors.insert("splade".into(), SparseVectorConfig::default());
    cfg.optimizer.interval_ms = 0;
    cfg.optimizer.seal_points = docs + 1;
    let c: Collection = db.create_collection("sparse", cfg)?;
    let t = Instant::now();
    for (start, chunk) in vectors.chunks(5_000).enumerate() {
        let points = chunk.iter().enumerate().map(|(i, v)| {
            let mut p = PointInput::new((start * 5_000 + i) as u64, vec![1.0]);
            p.sparse.insert("splade".into(), v.clone());
            p
        });
        c.upsert(points.collect())?;
    }
    c.seal()?;
    let nnz: usize = vectors.iter().map(|v| v.indices.len()).sum();
    println!(
        "{docs} documents, {nnz} non-zeros ({:.0} per document), ingest + seal {:.1} s",
        nnz as f64 / docs as f64,
        t.elapsed().as_secs_f64()
    );

    let mut index_times = Vec::new();
    let mut brute_times = Vec::new();
    for q in &qs {
        let t = Instant::now();
        let hits = c.search(&SearchRequest::sparse("splade", q.clone(), 10))?.hits;
        index_times.push(t.elapsed().as_secs_f64());
        let t = Instant::now();
        let mut scored: Vec<(f32, usize)> = vectors.iter().enumerate().map(|(i, v)| (v.dot(q), i)).collect();
        scored.select_nth_unstable_by(9, |a, b| b.0.total_cmp(&a.0));
        scored.truncate(10);
        scored.sort_by(|a, b| b.0.total_cmp(&a.0));
        brute_times.push(t.elapsed().as_secs_f64());
        for (h, (s, _)) in hits.iter().zip(&scored) {
            assert!((h.score - s).abs() <= 1e-4 * s.abs().max(1.0), "index {} vs brute force {s}", h.score);
        }
    }
    let median = |v: &mut Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    let (mi, mb) = (median(&mut index_times), median(&mut brute_times));
    let p99 = |v: &Vec<f64>| v[(v.len() * 99 / 100).min(v.len() - 1)];
    println!(
        "inverted index: median {:.3} ms, p99 {:.3} ms, {:.0} QPS (one thread)",
        mi * 1e3,
        p99(&index_times) * 1e3,
        1.0 / mi
    );
    println!(
        "brute force:    median {:.3} ms, p99 {:.3} ms, {:.0} QPS (one thread)",
        mb * 1e3,
        p99(&brute_times) * 1e3,
        1.0 / mb
    );
    println!("speed-up (median): {:.1}x; top-10 scores equal on all {queries} queries", mb / mi);
    Ok(())
}

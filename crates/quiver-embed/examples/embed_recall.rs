//! The int8 accuracy gate on retrieval: embeds a WordNet set's base and query texts with a model in f32 and in int8
//! (`EmbedOptions::int8`), then finds each query's exact top 10 among the base vectors both ways and scores them
//! against the set's ground truth (computed from the reference f32 vectors when the set was made).
//!
//! ```sh
//! cargo run --release -p quiver-embed --example embed_recall -- ../shared/data/wordnet-minilm-10k
//! ```
//!
//! With `--labelled SET_DIR` it measures the task instead: the labelled WordNet retrieval set of
//! `scripts/hybrid_relevance.py build` (`docs.jsonl`: every synset's gloss; `queries.jsonl`: a usage example and
//! the one synset it belongs to). Each query's exact top 10 among the documents, embedded in f32 and in int8, gives
//! recall@10 (the relevant synset is among them), nDCG@10 and MRR@10 for each, so the two precisions are compared
//! on whether users find what they look for, not only on whether the neighbour lists are identical:
//!
//! ```sh
//! cargo run --release -p quiver-embed --example embed_recall -- --labelled /tmp/vdb-data/wordnet-hybrid
//! ```

use std::path::{Path, PathBuf};

use quiver_embed::{EmbedOptions, Embedder, SentenceEmbedder, find_model_dir};

fn texts(path: &Path) -> Result<Vec<String>, String> {
    let body = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    body.lines()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).map_err(|e| e.to_string())?;
            v["text"].as_str().map(str::to_string).ok_or_else(|| "a line without text".to_string())
        })
        .collect()
}

/// The first `k` ids of each row of an `.ivecs` file.
fn ground_truth(path: &Path, k: usize) -> Result<Vec<Vec<u32>>, String> {
    let bytes = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let mut out = Vec::new();
    let mut at = 0;
    while at + 4 <= bytes.len() {
        let n = u32::from_le_bytes(bytes[at..at + 4].try_into().map_err(|_| "ivecs")?) as usize;
        let row: Vec<u32> = (0..n)
            .map(|i| u32::from_le_bytes(bytes[at + 4 + 4 * i..at + 8 + 4 * i].try_into().unwrap_or([0; 4])))
            .collect();
        out.push(row.into_iter().take(k).collect());
        at += 4 + 4 * n;
    }
    Ok(out)
}

fn top10(base: &[Vec<f32>], q: &[f32]) -> Vec<u32> {
    let mut scored: Vec<(f32, u32)> =
        base.iter().enumerate().map(|(i, b)| (b.iter().zip(q).map(|(x, y)| x * y).sum(), i as u32)).collect();
    scored.sort_by(|a, b| b.0.total_cmp(&a.0));
    scored.into_iter().take(10).map(|(_, i)| i).collect()
}

/// One JSON object per line.
fn json_lines(path: &Path) -> Result<Vec<serde_json::Value>, String> {
    let body = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    body.lines().filter(|l| !l.trim().is_empty()).map(|l| serde_json::from_str(l).map_err(|e| e.to_string())).collect()
}

/// recall@10, nDCG@10 and MRR@10 of the labelled set, f32 beside int8.
fn labelled(set: &Path, model: &Path) -> Result<(), String> {
    let docs = json_lines(&set.join("docs.jsonl"))?;
    let queries = json_lines(&set.join("queries.jsonl"))?;
    let doc_ids: Vec<u64> =
        docs.iter().map(|d| d["id"].as_u64().ok_or("a document without an id")).collect::<Result<_, _>>()?;
    let doc_texts: Vec<&str> =
        docs.iter().map(|d| d["text"].as_str().ok_or("a document without text")).collect::<Result<_, _>>()?;
    let query_texts: Vec<&str> =
        queries.iter().map(|q| q["query"].as_str().ok_or("a query without text")).collect::<Result<_, _>>()?;
    let relevant: Vec<u64> = queries
        .iter()
        .map(|q| q["relevant"].as_u64().ok_or("a query without its relevant id"))
        .collect::<Result<_, _>>()?;
    println!("{} documents, {} queries from {}", docs.len(), queries.len(), set.display());
    let mut results = Vec::new();
    for int8 in [false, true] {
        let m = SentenceEmbedder::load(model, &EmbedOptions { int8, ..EmbedOptions::default() })
            .map_err(|e| e.to_string())?;
        let start = std::time::Instant::now();
        let dv = m.embed(&doc_texts).map_err(|e| e.to_string())?;
        let qv = m.embed(&query_texts).map_err(|e| e.to_string())?;
        let took = start.elapsed().as_secs_f64();
        let (mut hits, mut ndcg, mut mrr) = (0usize, 0f64, 0f64);
        for (q, &want) in qv.iter().zip(&relevant) {
            if let Some(rank) = top10(&dv, q).iter().position(|&i| doc_ids[i as usize] == want) {
                hits += 1;
                ndcg += 1.0 / ((rank + 2) as f64).log2();
                mrr += 1.0 / (rank + 1) as f64;
            }
        }
        let n = qv.len() as f64;
        let label = if int8 { "int8" } else { "f32 " };
        println!(
            "{label}: recall@10 {:.4}  nDCG@10 {:.4}  MRR@10 {:.4}  (embedded in {took:.0} s)",
            hits as f64 / n,
            ndcg / n,
            mrr / n
        );
        results.push(hits as f64 / n);
    }
    println!("recall@10 int8 − f32: {:+.4}", results[1] - results[0]);
    Ok(())
}

fn main() -> Result<(), String> {
    if std::env::args().nth(1).as_deref() == Some("--labelled") {
        let set =
            std::env::args().nth(2).map(PathBuf::from).ok_or("usage: embed_recall --labelled SET_DIR [MODEL_DIR]")?;
        let model = find_model_dir(std::env::args().nth(3).map(PathBuf::from).as_deref()).map_err(|e| e.to_string())?;
        return labelled(&set, &model);
    }
    let set = std::env::args().nth(1).map(PathBuf::from).ok_or("usage: embed_recall SET_DIR [MODEL_DIR]")?;
    let name = set.file_name().and_then(|n| n.to_str()).ok_or("set directory name")?.to_string();
    let model = find_model_dir(std::env::args().nth(2).map(PathBuf::from).as_deref()).map_err(|e| e.to_string())?;
    let base = texts(&set.join(format!("{name}_base_items.jsonl")))?;
    let queries = texts(&set.join(format!("{name}_query_items.jsonl")))?;
    let truth = ground_truth(&set.join(format!("{name}_groundtruth.ivecs")), 10)?;
    let mut f32_vectors = None;
    for int8 in [false, true] {
        let m = SentenceEmbedder::load(&model, &EmbedOptions { int8, ..EmbedOptions::default() })
            .map_err(|e| e.to_string())?;
        let b: Vec<&str> = base.iter().map(String::as_str).collect();
        let q: Vec<&str> = queries.iter().map(String::as_str).collect();
        let (bv, qv) = (m.embed(&b).map_err(|e| e.to_string())?, m.embed(&q).map_err(|e| e.to_string())?);
        let hits: usize =
            qv.iter().zip(&truth).map(|(q, t)| top10(&bv, q).iter().filter(|i| t.contains(i)).count()).sum();
        let recall = hits as f64 / (10 * qv.len()) as f64;
        let agreement = match &f32_vectors {
            Some((fb, fq)) => {
                let cos = |a: &[f32], b: &[f32]| a.iter().zip(b).map(|(x, y)| x * y).sum::<f32>();
                let all: Vec<f32> = bv
                    .iter()
                    .zip(fb as &Vec<Vec<f32>>)
                    .chain(qv.iter().zip(fq as &Vec<Vec<f32>>))
                    .map(|(a, b)| cos(a, b))
                    .collect();
                let min = all.iter().copied().fold(f32::INFINITY, f32::min);
                let mean = all.iter().sum::<f32>() / all.len() as f32;
                format!("   cosine to f32: mean {mean:.5}, min {min:.5}")
            }
            None => String::new(),
        };
        println!(
            "{}: recall@10 against the ground truth {recall:.4} ({} queries, {} base texts){agreement}",
            if int8 { "int8" } else { "f32 " },
            qv.len(),
            bv.len()
        );
        if !int8 {
            f32_vectors = Some((bv, qv));
        }
    }
    Ok(())
}

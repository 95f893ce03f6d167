//! The int8 accuracy gate on retrieval: embeds a WordNet set's base and query texts with a model in f32 and in int8
//! (`EmbedOptions::int8`), then finds each query's exact top 10 among the base vectors both ways and scores them
//! against the set's ground truth (computed from the reference f32 vectors when the set was made).
//!
//! ```sh
//! cargo run --release -p quiver-embed --example embed_recall -- ../shared/data/wordnet-minilm-10k
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

fn main() -> Result<(), String> {
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

//! Sentences per second of quiver-embed beside the Python sentence-transformers package, same texts, same run.
//!
//! ```sh
//! cargo run --release -p quiver-embed --example embed_bench -- \
//!     --texts ../shared/data/wordnet-minilm-10k/wordnet-minilm-10k_base_items.jsonl --n 2000 \
//!     --threads 1,2 --python /tmp/st/bin/python
//! ```
//!
//! Each thread count runs in a child process with `RAYON_NUM_THREADS` set (candle's GEMM and the tokenizer read
//! it), so the figures do not share a thread pool. `--python` names an interpreter with sentence-transformers; it is
//! run on the same texts with `torch.set_num_threads(t)` for each `t`. Texts come from a JSON-lines file with a
//! `text` field (the WordNet glosses) or a plain text file, one text per line. `--unsorted` feeds the texts
//! batch by batch in input order (no length sort), `--sequential` runs one batch at a time: both for comparison.
//! `--int8` loads the model with int8 projections (`EmbedOptions::int8`).

use std::path::PathBuf;
use std::process::Command;
use std::time::Instant;

use quiver_embed::{EmbedOptions, Embedder, SentenceEmbedder, find_model_dir};

struct Args {
    model: Option<PathBuf>,
    texts: PathBuf,
    n: usize,
    batch: usize,
    threads: Vec<usize>,
    python: Option<String>,
    runs: usize,
    child: bool,
    unsorted: bool,
    sequential: bool,
    int8: bool,
}

fn parse_args() -> Result<Args, String> {
    let mut a = Args {
        model: None,
        texts: PathBuf::from("../shared/data/wordnet-minilm-10k/wordnet-minilm-10k_base_items.jsonl"),
        n: 2000,
        batch: 32,
        threads: vec![1, 2],
        python: None,
        runs: 2,
        child: false,
        unsorted: false,
        sequential: false,
        int8: false,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().ok_or_else(|| format!("{flag} needs a value"));
        match flag.as_str() {
            "--model" => a.model = Some(PathBuf::from(value()?)),
            "--texts" => a.texts = PathBuf::from(value()?),
            "--n" => a.n = value()?.parse().map_err(|e| format!("--n: {e}"))?,
            "--batch" => a.batch = value()?.parse().map_err(|e| format!("--batch: {e}"))?,
            "--runs" => a.runs = value()?.parse().map_err(|e| format!("--runs: {e}"))?,
            "--threads" => {
                a.threads = value()?
                    .split(',')
                    .map(|t| t.trim().parse().map_err(|e| format!("--threads: {e}")))
                    .collect::<Result<_, _>>()?
            }
            "--python" => a.python = Some(value()?),
            "--child" => a.child = true,
            "--unsorted" => a.unsorted = true,
            "--sequential" => a.sequential = true,
            "--int8" => a.int8 = true,
            other => return Err(format!("unknown argument {other}")),
        }
    }
    Ok(a)
}

fn load_texts(path: &PathBuf, n: usize) -> Result<Vec<String>, String> {
    let body = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let mut out = Vec::new();
    for line in body.lines().filter(|l| !l.trim().is_empty()).take(n) {
        if line.starts_with('{') {
            let v: serde_json::Value = serde_json::from_str(line).map_err(|e| format!("{}: {e}", path.display()))?;
            out.push(v["text"].as_str().ok_or("a JSON line without a text field")?.to_string());
        } else {
            out.push(line.to_string());
        }
    }
    Ok(out)
}

/// The child: one thread count, prints `RESULT <sentences/s>`.
fn run_child(a: &Args, texts: &[String]) -> Result<(), String> {
    let dir = find_model_dir(a.model.as_deref()).map_err(|e| e.to_string())?;
    let options = EmbedOptions { batch_size: a.batch, parallel_batches: !a.sequential, ..EmbedOptions::default() };
    let model = SentenceEmbedder::load(&dir, &options).map_err(|e| e.to_string())?;
    let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
    // Warm-up on a few batches.
    model.embed_flat(&refs[..refs.len().min(64)]).map_err(|e| e.to_string())?;
    let mut best = 0f64;
    for _ in 0..a.runs.max(1) {
        let start = Instant::now();
        if a.unsorted {
            // Input order, batch by batch: what the length sort saves.
            for chunk in refs.chunks(a.batch) {
                model.embed_flat(chunk).map_err(|e| e.to_string())?;
            }
        } else {
            model.embed_flat(&refs).map_err(|e| e.to_string())?;
        }
        best = best.max(refs.len() as f64 / start.elapsed().as_secs_f64());
    }
    println!("RESULT {best:.1}");
    Ok(())
}

const PYTHON_BENCH: &str = r#"
import json, sys, time
import torch
from sentence_transformers import SentenceTransformer
model_dir, texts_path, batch, threads, runs = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
torch.set_num_threads(threads)
texts = json.load(open(texts_path))
model = SentenceTransformer(model_dir, device="cpu")
model.encode(texts[:64], batch_size=batch)
best = 0.0
for _ in range(runs):
    t = time.perf_counter()
    model.encode(texts, batch_size=batch)
    best = max(best, len(texts) / (time.perf_counter() - t))
print(f"RESULT {best:.1f}")
"#;

fn parse_result(out: &std::process::Output) -> Result<f64, String> {
    let stdout = String::from_utf8_lossy(&out.stdout);
    stdout
        .lines()
        .find_map(|l| l.strip_prefix("RESULT ").and_then(|v| v.trim().parse().ok()))
        .ok_or_else(|| format!("no result; stderr: {}", String::from_utf8_lossy(&out.stderr)))
}

fn main() -> Result<(), String> {
    let a = parse_args()?;
    let texts = load_texts(&a.texts, a.n)?;
    if texts.is_empty() {
        return Err(format!("no texts in {}", a.texts.display()));
    }
    if a.child {
        return run_child(&a, &texts);
    }
    let dir = find_model_dir(a.model.as_deref()).map_err(|e| e.to_string())?;
    let exe = std::env::current_exe().map_err(|e| e.to_string())?;
    println!(
        "{} texts from {} (mean {:.0} chars), batch {}, model {}, best of {} runs",
        texts.len(),
        a.texts.display(),
        texts.iter().map(|t| t.len()).sum::<usize>() as f64 / texts.len() as f64,
        a.batch,
        dir.display(),
        a.runs
    );
    let mut texts_json = None;
    for &t in &a.threads {
        let mut cmd = Command::new(&exe);
        cmd.env("RAYON_NUM_THREADS", t.to_string())
            .env(quiver_embed::INT8_ENV, if a.int8 { "1" } else { "0" })
            .args(["--child", "--texts"])
            .arg(&a.texts)
            .args(["--n", &a.n.to_string(), "--batch", &a.batch.to_string(), "--runs", &a.runs.to_string()])
            .arg("--model")
            .arg(&dir);
        if a.unsorted {
            cmd.arg("--unsorted");
        }
        if a.sequential {
            cmd.arg("--sequential");
        }
        let out = cmd.output().map_err(|e| e.to_string())?;
        let quiver = parse_result(&out)?;
        let mut line = format!("threads {t}: quiver-embed {quiver:>7.1} sentences/s");
        if let Some(py) = &a.python {
            let path = texts_json.get_or_insert_with(|| {
                let p = std::env::temp_dir().join(format!("embed_bench_texts_{}.json", std::process::id()));
                std::fs::write(&p, serde_json::to_vec(&texts).unwrap_or_default()).ok();
                p
            });
            let out = Command::new(py)
                .env("OMP_NUM_THREADS", t.to_string())
                .env("MKL_NUM_THREADS", t.to_string())
                .args(["-c", PYTHON_BENCH])
                .arg(&dir)
                .arg(&*path)
                .args([a.batch.to_string(), t.to_string(), a.runs.to_string()])
                .output()
                .map_err(|e| format!("{py}: {e}"))?;
            let python = parse_result(&out)?;
            line += &format!("   sentence-transformers {python:>7.1} sentences/s   ratio {:.2}x", quiver / python);
        }
        println!("{line}");
    }
    if let Some(p) = texts_json {
        std::fs::remove_file(p).ok();
    }
    Ok(())
}

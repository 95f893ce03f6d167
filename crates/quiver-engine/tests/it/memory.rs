//! A reopened collection keeps its sealed segments' vectors out of the heap: they are read in place from the
//! memory-mapped segment files. The check runs in a fresh process (this test binary re-run with
//! `QUIVER_MEMORY_CHILD` set), so nothing the writer allocated counts, and reads `RssAnon` (anonymous memory: the
//! heap) from `/proc/self/status`. Mapped file pages a search touches count in `RssFile` instead, which the kernel
//! can drop under pressure and read back.

use std::process::Command;

use quiver_engine::{CollectionConfig, Database, IndexConfig, PointInput, SearchRequest};
use quiver_index::{IndexKind, Metric};
use serde_json::json;

use crate::common::{random_vector_at, random_vectors};

const DIM: usize = 384;
/// (collection, points, index): 110k × 384 floats are 169 MB of raw vectors.
const SETS: [(&str, usize, IndexKind); 2] = [("flat", 100_000, IndexKind::Flat), ("hnsw", 10_000, IndexKind::Hnsw)];

fn status_kib(field: &str) -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let line = status.lines().find(|l| l.starts_with(field)).unwrap_or_else(|| panic!("no {field} in status"));
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

#[test]
fn memory_child_entry() {
    // Only does something when re-run by `a_reopened_collection_keeps_its_vectors_out_of_the_heap`.
    let Ok(dir) = std::env::var("QUIVER_MEMORY_CHILD") else { return };
    let db = Database::open(&dir).unwrap();
    let mut mapped = 0;
    for (name, n, _) in SETS {
        let c = db.collection(name).unwrap();
        let probe = random_vector_at(n / 2, DIM, name.len() as u64);
        for exact in [true, false] {
            let mut req = SearchRequest::new(probe.clone(), 3);
            req.params.exact = exact;
            let hits = c.search(&req).unwrap().hits;
            assert_eq!(hits[0].id, quiver_engine::PointId::Num((n / 2) as u64), "{name}, exact={exact}");
        }
        mapped += c.info().unwrap().mapped_bytes;
    }
    println!("RESULT anon_kib={} file_kib={} mapped_bytes={mapped}", status_kib("RssAnon:"), status_kib("RssFile:"));
}

#[test]
fn a_reopened_collection_keeps_its_vectors_out_of_the_heap() {
    if !std::path::Path::new("/proc/self/status").exists() {
        eprintln!("skipped: needs /proc/self/status (Linux)");
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let mut raw = 0u64;
    {
        let db = Database::open(tmp.path()).unwrap();
        for (name, n, kind) in SETS {
            let mut cfg = CollectionConfig::new(DIM, Metric::Cosine);
            cfg.optimizer.interval_ms = 0;
            cfg.optimizer.seal_points = n;
            let params = if kind == IndexKind::Hnsw { json!({"quantization": "sq8"}) } else { json!({}) };
            cfg.index = IndexConfig { kind, params: params.as_object().unwrap().clone().into_iter().collect() };
            let c = db.create_collection(name, cfg).unwrap();
            let vectors = random_vectors(n, DIM, name.len() as u64);
            for (b, chunk) in vectors.chunks(5_000).enumerate() {
                let base = (b * 5_000) as u64;
                c.upsert(chunk.iter().enumerate().map(|(i, v)| PointInput::new(base + i as u64, v.clone())).collect())
                    .unwrap();
            }
            assert!(c.seal().unwrap(), "{name}: sealed");
            c.flush().unwrap();
            raw += (n * DIM * 4) as u64;
        }
    }
    let out = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "memory::memory_child_entry", "--nocapture", "--test-threads=1"])
        .env("QUIVER_MEMORY_CHILD", tmp.path())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "child failed: {stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    let line =
        stdout.lines().find_map(|l| l.split_once("RESULT ").map(|(_, r)| r)).unwrap_or_else(|| panic!("{stdout}"));
    let field = |k: &str| -> u64 {
        line.split_whitespace().find_map(|kv| kv.strip_prefix(k)).and_then(|v| v.parse().ok()).unwrap()
    };
    let (anon, file, mapped) = (field("anon_kib=") * 1024, field("file_kib=") * 1024, field("mapped_bytes="));
    eprintln!("raw vectors {raw} B; reopened: anonymous RSS {anon} B, file RSS {file} B, mapped {mapped} B");
    assert_eq!(mapped, raw, "every sealed vector is read in place");
    assert!(anon < raw / 3, "anonymous RSS {anon} B holds a heap copy of the {raw} B of vectors");
}

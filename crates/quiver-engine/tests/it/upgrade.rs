//! Data directories written by older builds open in this one. `tests/fixtures/format-*` are data directories
//! written by the build named in each one's `WRITTEN_BY` file, with [`write_upgrade_fixture`] (run it with the
//! build whose format you are about to change, and commit its output as a new `format-*` directory).
//!
//! Each fixture holds the same four collections (HNSW, HNSW + SQ8, IVF, exact), 240 points each, three deleted,
//! sealed in two segments plus points only in the WAL, a keyword index on `tag`. The test checks every point's
//! vector and payload, exact answers, filters, and that the data is still right after this build rewrites it.

use std::path::{Path, PathBuf};

use quiver_engine::{
    CollectionConfig, Database, FieldType, Filter, IndexConfig, PointId, PointInput, SearchRequest, Selector,
};
use quiver_index::{IndexKind, Metric};
use serde_json::json;

use crate::common::{payload, random_vectors};

const DIM: usize = 16;
const POINTS: u64 = 240;
const DELETED: [u64; 3] = [5, 6, 7];

fn collections() -> Vec<(&'static str, Metric, IndexKind, serde_json::Value)> {
    vec![
        ("hnsw", Metric::Cosine, IndexKind::Hnsw, json!({"m": 8})),
        ("hnsw_sq8", Metric::Dot, IndexKind::Hnsw, json!({"m": 8, "quantization": "sq8"})),
        ("ivf", Metric::Euclidean, IndexKind::Ivf, json!({"nlist": 4})),
        ("flat", Metric::Euclidean, IndexKind::Flat, json!({})),
    ]
}

fn point(i: u64, vectors: &[Vec<f32>]) -> PointInput {
    let tag = if i.is_multiple_of(3) { "a" } else { "b" };
    PointInput::new(i, vectors[i as usize].clone()).with_payload(payload(json!({"n": i, "tag": tag})))
}

fn fixtures_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

/// Writes a fixture into `$QUIVER_FIXTURE_OUT` (a new directory). Ignored: run it by hand with the build that
/// writes the format being captured.
#[test]
#[ignore = "writes a fixture; run by hand (see the module docs)"]
fn write_upgrade_fixture() {
    let out = PathBuf::from(std::env::var("QUIVER_FIXTURE_OUT").expect("QUIVER_FIXTURE_OUT"));
    assert!(!out.exists(), "{} exists", out.display());
    let db = Database::open(&out).unwrap();
    let vectors = random_vectors(POINTS as usize, DIM, 42);
    for (name, metric, kind, params) in collections() {
        let mut cfg = CollectionConfig::new(DIM, metric);
        cfg.index = IndexConfig { kind, params: params.as_object().unwrap().clone().into_iter().collect() };
        cfg.optimizer.interval_ms = 0;
        cfg.optimizer.seal_points = 100;
        cfg.optimizer.merge_below_points = 10;
        let c = db.create_collection(name, cfg).unwrap();
        c.create_field_index("tag", FieldType::Keyword).unwrap();
        for chunk in (0..POINTS).collect::<Vec<_>>().chunks(100) {
            c.upsert(chunk.iter().map(|&i| point(i, &vectors)).collect()).unwrap();
            c.optimize().unwrap();
        }
        c.delete(Selector::Ids(DELETED.iter().map(|&i| PointId::Num(i)).collect())).unwrap();
        c.flush().unwrap();
        let info = c.info().unwrap();
        assert!(info.segments.len() >= 3, "{name}: sealed segments and the growing one: {:?}", info.segments);
    }
}

fn prepared(metric: Metric, v: &[f32]) -> Vec<f32> {
    let mut v = v.to_vec();
    metric.prepare(&mut v).unwrap();
    v
}

fn check(db: &Database, when: &str) {
    let vectors = random_vectors(POINTS as usize, DIM, 42);
    let tag_a: Filter = serde_json::from_value(json!({"must": [{"key": "tag", "match": {"value": "a"}}]})).unwrap();
    for (name, metric, kind, _) in collections() {
        let what = format!("{name} ({when})");
        let c = db.collection(name).unwrap();
        assert_eq!(c.count(None).unwrap(), POINTS - DELETED.len() as u64, "{what}");
        let ids: Vec<PointId> = (0..POINTS).map(PointId::Num).collect();
        let records = c.get(&ids, true, true).unwrap();
        assert_eq!(records.len(), ids.len() - DELETED.len(), "{what}");
        for r in &records {
            let PointId::Num(i) = r.id else { panic!("{what}: id {:?}", r.id) };
            let want = point(i, &vectors);
            assert_eq!(r.payload.as_ref(), want.payload.as_ref(), "{what}: payload of {i}");
            let (got, want) = (r.vector.as_ref().unwrap(), prepared(metric, &want.vector));
            let close = got.len() == want.len() && got.iter().zip(&want).all(|(a, b)| (a - b).abs() <= 1e-6);
            assert!(close, "{what}: vector of {i}: {got:?} vs {want:?}");
        }
        for q in [0usize, 50, 150, 239] {
            let mut req = SearchRequest::new(vectors[q].clone(), 5);
            req.params.exact = true;
            let exact = c.search(&req).unwrap().hits;
            assert_eq!(exact[0].id, PointId::Num(q as u64), "{what}: exact search for point {q}");
            req.params.exact = false;
            // Wide enough that the index answers exactly on 240 points: this checks the index was read and works,
            // not its recall (a rebuilt graph differs from run to run).
            match kind {
                IndexKind::Hnsw => req.params.ef = Some(256),
                IndexKind::Ivf => req.params.nprobe = Some(4),
                _ => {}
            }
            let approx = c.search(&req).unwrap().hits;
            assert_eq!(approx[0].id, PointId::Num(q as u64), "{what}: index search for point {q}");
            req.filter = Some(tag_a.clone());
            let filtered = c.search(&req).unwrap().hits;
            assert_eq!(filtered.len(), 5, "{what}");
            assert!(
                filtered.iter().all(|h| matches!(h.id, PointId::Num(i) if i.is_multiple_of(3))),
                "{what}: {filtered:?}"
            );
        }
        assert_eq!(c.count(Some(&tag_a)).unwrap(), 79, "{what}: 80 points tagged a, point 6 deleted");
    }
}

#[test]
fn data_written_by_older_builds_opens_and_survives_a_rewrite() {
    let mut found = 0;
    for e in std::fs::read_dir(fixtures_root()).unwrap() {
        let from = e.unwrap().path();
        if !from.file_name().unwrap().to_string_lossy().starts_with("format-") {
            continue;
        }
        found += 1;
        let label = from.display().to_string();
        let tmp = tempfile::tempdir().unwrap();
        crate::common::copy_dir(&from, tmp.path());
        check(&Database::open(tmp.path()).unwrap(), &format!("{label}, as written"));
        // This build rewrites every segment in its own format (merging everything into one), then reopens.
        for (name, ..) in collections() {
            let path = tmp.path().join("collections").join(name).join("config.json");
            let mut cfg: serde_json::Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
            cfg["optimizer"]["merge_below_points"] = json!(1_000_000);
            std::fs::write(&path, serde_json::to_vec(&cfg).unwrap()).unwrap();
        }
        {
            let db = Database::open(tmp.path()).unwrap();
            for (name, ..) in collections() {
                let c = db.collection(name).unwrap();
                let old_max = c.info().unwrap().segments.iter().map(|s| s.id).max().unwrap();
                c.seal().unwrap();
                c.optimize().unwrap();
                c.flush().unwrap();
                let info = c.info().unwrap();
                let sealed: Vec<_> = info.segments.iter().filter(|s| s.rows > 0).collect();
                assert_eq!(sealed.len(), 1, "{name}: {:?}", info.segments);
                assert!(sealed[0].id > old_max, "{name}: rewritten: {:?}", info.segments);
                assert_eq!(sealed[0].mapped_bytes, sealed[0].rows * DIM as u64 * 4, "{name}: vectors read in place");
            }
        }
        let db = Database::open(tmp.path()).unwrap();
        check(&db, &format!("{label}, rewritten and reopened"));
    }
    assert!(found >= 1, "no fixtures under {}", fixtures_root().display());
}

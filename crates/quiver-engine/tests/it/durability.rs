//! Recovery: WAL replay, crashes at every step of a scripted workload (optimizer jobs included), corrupt files.

use std::collections::BTreeMap;
use std::sync::Arc;

use quiver_engine::{
    Collection, CollectionConfig, Database, ManualClock, Payload, PointId, PointInput, SearchRequest, Selector,
};
use quiver_index::Metric;
use quiver_storage::{CrashMode, MemDirectory};
use serde_json::json;

use crate::common::{mem_collection, payload};

type Model = BTreeMap<PointId, (Vec<f32>, Payload)>;

/// Every live point with vector and payload.
fn dump(c: &Collection) -> Model {
    let mut out = Model::new();
    let mut offset = None;
    loop {
        let page = c.scroll(None, offset, 1000, true, true).unwrap();
        for r in page.points {
            out.insert(r.id, (r.vector.unwrap(), r.payload.unwrap()));
        }
        match page.next_offset {
            Some(o) => offset = Some(o),
            None => return out,
        }
    }
}

#[derive(Debug, Clone)]
enum Step {
    Upsert(Vec<(u64, Vec<f32>, Payload)>),
    Delete(Vec<u64>),
    SetPayload(u64, Payload),
    Seal,
    Optimize,
}

fn script() -> Vec<Step> {
    let mut steps = Vec::new();
    for round in 0..6u64 {
        let batch = (0..5u64)
            .map(|i| {
                let id = (round * 3 + i) % 17;
                (id, vec![id as f32, round as f32, i as f32], payload(json!({"round": round, "i": i})))
            })
            .collect();
        steps.push(Step::Upsert(batch));
        steps.push(Step::Delete(vec![(round * 5) % 17, 99]));
        steps.push(Step::SetPayload((round * 3 + 1) % 17, payload(json!({"tag": format!("r{round}")}))));
        if round % 2 == 1 {
            steps.push(Step::Seal);
        }
        steps.push(Step::Optimize);
    }
    steps
}

/// Applies a step to the model of acknowledged state.
fn model_apply(m: &mut Model, step: &Step) {
    match step {
        Step::Upsert(pts) => {
            for (id, v, p) in pts {
                m.insert(PointId::Num(*id), (v.clone(), p.clone()));
            }
        }
        Step::Delete(ids) => {
            for id in ids {
                m.remove(&PointId::Num(*id));
            }
        }
        Step::SetPayload(id, p) => {
            if let Some((_, old)) = m.get_mut(&PointId::Num(*id)) {
                for (k, v) in p {
                    old.insert(k.clone(), v.clone());
                }
            }
        }
        Step::Seal | Step::Optimize => {}
    }
}

fn run_step(c: &Collection, m: &Model, step: &Step) -> quiver_engine::Result<()> {
    match step {
        Step::Upsert(pts) => c
            .upsert(pts.iter().map(|(id, v, p)| PointInput::new(*id, v.clone()).with_payload(p.clone())).collect())
            .map(drop),
        Step::Delete(ids) => c.delete(Selector::Ids(ids.iter().map(|i| PointId::Num(*i)).collect())).map(drop),
        Step::SetPayload(id, p) => {
            if m.contains_key(&PointId::Num(*id)) {
                c.set_payload(Selector::Ids(vec![PointId::Num(*id)]), p.clone(), None).map(drop)
            } else {
                Ok(())
            }
        }
        Step::Seal => c.seal().map(drop),
        Step::Optimize => c.optimize().map(drop),
    }
}

fn tune(cfg: &mut CollectionConfig) {
    cfg.optimizer.seal_points = 12;
    cfg.optimizer.merge_below_points = 30;
    cfg.optimizer.vacuum_deleted_ratio = 0.3;
    cfg.index.params.insert("m".into(), json!(4));
}

#[test]
fn reopen_replays_the_wal_and_loads_segments() {
    let f = mem_collection(3, Metric::Euclidean, tune);
    let mut model = Model::new();
    for step in script() {
        run_step(&f.c, &model, &step).unwrap();
        model_apply(&mut model, &step);
    }
    assert_eq!(dump(&f.c), model);
    let info = f.c.info().unwrap();
    assert!(info.optimizer.sealed >= 3, "{info:?}");
    assert!(info.wal_checkpoint > 0);
    drop(f.c.clone());
    let again = f.reopen().unwrap();
    assert_eq!(dump(&again), model);
    assert_eq!(again.applied_seq(), f.c.applied_seq());
    // New writes continue the sequence.
    let next = again.upsert(vec![PointInput::new(500, vec![1.0, 1.0, 1.0])]).unwrap();
    assert_eq!(next, f.c.applied_seq() + 1);
}

/// The same script over HNSW graphs that traverse SQ4 codes (and SQ8): sealed, merged and vacuumed segments
/// write their codes, and a reopen reads them back beside the mapped vectors.
#[test]
fn reopen_loads_segments_whose_graphs_traverse_quantized_codes() {
    for quantization in ["sq4", "sq8"] {
        let f = mem_collection(3, Metric::Euclidean, |cfg| {
            tune(cfg);
            cfg.index.params.insert("quantization".into(), json!(quantization));
        });
        let mut model = Model::new();
        for step in script() {
            run_step(&f.c, &model, &step).unwrap();
            model_apply(&mut model, &step);
        }
        assert!(f.c.info().unwrap().optimizer.sealed >= 3, "{quantization}");
        let probe = [0.5f32, -0.25, 1.0];
        let before = f.c.search(&SearchRequest::new(probe.to_vec(), 5)).unwrap();
        assert!(!before.hits.is_empty(), "{quantization}");
        drop(f.c.clone());
        let again = f.reopen().unwrap();
        assert_eq!(dump(&again), model, "{quantization}");
        assert_eq!(again.search(&SearchRequest::new(probe.to_vec(), 5)).unwrap(), before, "{quantization}");
    }
}

/// Crash at every mutating disk operation of the script (every `stride`-th), in every crash mode: after reopen
/// the state is the model of acknowledged steps, or that plus the step in flight — never anything in between.
#[test]
fn crash_at_every_step_keeps_every_acknowledged_write() {
    let steps = script();
    // Count the disk operations of a full run.
    let total = {
        let f = mem_collection(3, Metric::Euclidean, tune);
        let start = f.dir.ops();
        let mut m = Model::new();
        for s in &steps {
            run_step(&f.c, &m, s).unwrap();
            model_apply(&mut m, s);
        }
        f.dir.ops() - start
    };
    let stride = (total / 120).max(1);
    let modes = [CrashMode::DropUnsynced, CrashMode::KeepRandomPrefix, CrashMode::TearLastSector];
    let (mut checked, mut interrupted, mut nonempty) = (0usize, 0usize, 0usize);
    for (n, halt) in (0..total).step_by(stride as usize).enumerate() {
        let mode = modes[n % modes.len()];
        let f = mem_collection(3, Metric::Euclidean, tune);
        f.dir.halt_after(halt);
        let mut acked = Model::new();
        let mut in_flight = None;
        for s in &steps {
            match run_step(&f.c, &acked, s) {
                Ok(()) => model_apply(&mut acked, s),
                Err(_) => {
                    in_flight = Some(s.clone());
                    break;
                }
            }
        }
        f.dir.crash(mode);
        let reopened = f.reopen().unwrap_or_else(|e| panic!("halt {halt} {mode:?}: reopen failed: {e}"));
        let got = dump(&reopened);
        let mut with_in_flight = acked.clone();
        if let Some(s) = &in_flight {
            model_apply(&mut with_in_flight, s);
        }
        assert!(
            got == acked || got == with_in_flight,
            "halt {halt} {mode:?}: state differs from the acknowledged model (in flight: {in_flight:?})\n got {got:?}\nwant {acked:?}"
        );
        // The recovered collection keeps working: optimize and write again.
        reopened.optimize().unwrap();
        reopened.upsert(vec![PointInput::new(1000, vec![0.0, 0.0, 0.0])]).unwrap();
        checked += 1;
        interrupted += usize::from(in_flight.is_some());
        nonempty += usize::from(!got.is_empty());
    }
    assert!(checked >= 30, "only {checked} crash points");
    assert!(interrupted * 10 >= checked * 9, "most runs must be cut short: {interrupted} of {checked}");
    assert!(nonempty * 2 >= checked, "most crash points must have data to lose: {nonempty} of {checked}");
}

#[test]
fn a_corrupt_segment_makes_only_its_collection_unavailable() {
    let tmp = tempfile::tempdir().unwrap();
    let clock = Arc::new(ManualClock::new(1_700_000_000_000));
    {
        let db = Database::open_with_clock(tmp.path(), clock.clone()).unwrap();
        for name in ["good", "bad"] {
            let mut cfg = CollectionConfig::new(2, Metric::Euclidean);
            cfg.optimizer.interval_ms = 0;
            let c = db.create_collection(name, cfg).unwrap();
            c.upsert((0..20u64).map(|i| PointInput::new(i, vec![i as f32, 1.0])).collect()).unwrap();
            assert!(c.seal().unwrap());
        }
        db.close().unwrap();
    }
    let seg_dir = tmp.path().join("collections/bad");
    let seg = std::fs::read_dir(&seg_dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.extension().is_some_and(|e| e == "qseg"))
        .unwrap();
    let mut bytes = std::fs::read(&seg).unwrap();
    bytes[100] ^= 0x40;
    std::fs::write(&seg, bytes).unwrap();
    let db = Database::open_with_clock(tmp.path(), clock).unwrap();
    let err = db.collection("bad").unwrap_err().to_string();
    assert!(err.contains("unavailable") && err.contains(".qseg"), "{err}");
    let list = db.list();
    assert!(list.iter().any(|s| s.name == "bad" && s.unavailable.is_some()));
    assert_eq!(db.collection("good").unwrap().count(None).unwrap(), 20);
    // The unavailable collection can still be dropped.
    db.drop_collection("bad").unwrap();
    assert!(matches!(db.collection("bad"), Err(quiver_engine::Error::CollectionNotFound { .. })));
}

#[test]
fn collections_survive_a_database_reopen_and_drop_removes_files() {
    let tmp = tempfile::tempdir().unwrap();
    let db = Database::open(tmp.path()).unwrap();
    let c = db.create_collection("a", CollectionConfig::new(2, Metric::Dot)).unwrap();
    c.upsert(vec![PointInput::new(1, vec![1.0, 2.0])]).unwrap();
    assert!(matches!(
        db.create_collection("a", CollectionConfig::new(2, Metric::Dot)),
        Err(quiver_engine::Error::CollectionExists { .. })
    ));
    for bad in ["", "../x", "a/b", ".hidden", "-x", &"n".repeat(65)] {
        assert!(db.create_collection(bad, CollectionConfig::new(2, Metric::Dot)).is_err(), "{bad:?}");
    }
    db.close().unwrap();
    drop(c);
    drop(db);
    let db = Database::open(tmp.path()).unwrap();
    assert_eq!(db.collection("a").unwrap().count(None).unwrap(), 1);
    db.drop_collection("a").unwrap();
    assert!(!tmp.path().join("collections/a").exists());
    assert!(db.list().is_empty());
}

#[test]
fn dropping_unsynced_writes_under_none_durability_loses_only_unacknowledged_tail() {
    // Under `fsync` durability a crash right after an acknowledged write keeps it.
    let f = mem_collection(2, Metric::Euclidean, |_| {});
    f.c.upsert(vec![PointInput::new(1, vec![1.0, 0.0])]).unwrap();
    f.dir.crash(CrashMode::DropUnsynced);
    assert_eq!(f.reopen().unwrap().count(None).unwrap(), 1);
    let _ = MemDirectory::new(0);
}

/// The replicated-log seam: operations sequenced elsewhere apply once, in order, survive a reopen, and the local
/// sequence continues after them.
#[test]
fn replicated_operations_apply_idempotently() {
    use quiver_engine::ops::{Operation, PointWrite};
    let f = mem_collection(2, Metric::Euclidean, |_| {});
    let up = |id: u64, x: f32| {
        Operation::Upsert(vec![PointWrite {
            id: PointId::Num(id),
            vector: vec![x, 0.0],
            more: Vec::new(),
            sparse: Vec::new(),
            payload: payload(json!({"x": x})),
            created_ms: 1,
            expires_ms: 0,
        }])
    };
    assert!(f.c.apply_replicated(10, &up(1, 1.0)).unwrap());
    assert!(f.c.apply_replicated(12, &up(2, 2.0)).unwrap());
    // A replay of the stream from an earlier position changes nothing.
    assert!(!f.c.apply_replicated(10, &up(1, 1.0)).unwrap());
    assert!(!f.c.apply_replicated(12, &up(2, 99.0)).unwrap());
    assert!(f.c.apply_replicated(13, &Operation::Delete(vec![PointId::Num(1)])).unwrap());
    assert_eq!(f.c.applied_seq(), 13);
    let bad = Operation::Upsert(vec![PointWrite {
        id: PointId::Num(3),
        vector: vec![f32::NAN, 0.0],
        more: Vec::new(),
        sparse: Vec::new(),
        payload: Payload::new(),
        created_ms: 1,
        expires_ms: 0,
    }]);
    assert!(matches!(f.c.apply_replicated(14, &bad), Err(quiver_engine::Error::InvalidPoint { .. })));
    let model: Model = [(PointId::Num(2), (vec![2.0, 0.0], payload(json!({"x": 2.0}))))].into_iter().collect();
    assert_eq!(dump(&f.c), model);
    f.dir.crash(CrashMode::DropUnsynced);
    let again = f.reopen().unwrap();
    assert_eq!(dump(&again), model);
    assert_eq!(again.applied_seq(), 13);
    assert_eq!(again.upsert(vec![PointInput::new(5, vec![0.0, 1.0])]).unwrap(), 14);
}

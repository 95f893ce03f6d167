//! Snapshots: consistency under concurrent writes and optimizer jobs, restore (new name, over an existing
//! collection), damaged archives, names, list/delete, uploads, crash recovery of the switch.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use quiver_engine::{
    CLOSED_SEQ, Collection, CollectionConfig, Database, DurabilityConfig, Error, FieldType, Filter, IndexConfig,
    Payload, PointId, PointInput, Selector,
};
use quiver_index::{IndexKind, Metric};
use serde_json::json;

use crate::common::payload;

type Model = BTreeMap<PointId, (Vec<f32>, Payload)>;

fn dump(c: &Collection) -> Model {
    let page = c.scroll(None, None, 100_000, true, true).unwrap();
    assert!(page.next_offset.is_none());
    page.points.into_iter().map(|r| (r.id, (r.vector.unwrap(), r.payload.unwrap()))).collect()
}

fn red() -> Filter {
    serde_json::from_value(json!({"must": [{"key": "color", "match": {"value": "red"}}]})).unwrap()
}

fn config() -> CollectionConfig {
    let mut c = CollectionConfig::new(4, Metric::Euclidean);
    c.index = IndexConfig { kind: IndexKind::Hnsw, params: [("m".to_owned(), json!(4))].into_iter().collect() };
    c.durability = DurabilityConfig::Batch { max_delay_ms: 0 };
    c.optimizer.seal_points = 40;
    c.optimizer.merge_below_points = 100;
    c.optimizer.max_segments = 3;
    c.optimizer.interval_ms = 1;
    c
}

#[derive(Debug, Clone)]
enum Step {
    Upsert(u64, Vec<f32>, Payload),
    Delete(u64),
    SetPayload(u64, Payload),
}

fn model_apply(m: &mut Model, step: &Step) {
    match step {
        Step::Upsert(id, v, p) => {
            m.insert(PointId::Num(*id), (v.clone(), p.clone()));
        }
        Step::Delete(id) => {
            m.remove(&PointId::Num(*id));
        }
        Step::SetPayload(id, p) => {
            if let Some((_, old)) = m.get_mut(&PointId::Num(*id)) {
                old.extend(p.clone());
            }
        }
    }
}

#[test]
fn snapshots_taken_under_writes_and_optimizer_jobs_restore_the_state_at_their_instant() {
    let tmp = tempfile::tempdir().unwrap();
    let db = Database::open(tmp.path()).unwrap();
    let c = db.create_collection("live", config()).unwrap();
    let first = c.create_field_index("color", FieldType::Keyword).unwrap();
    let log: Mutex<Vec<(u64, Step)>> = Mutex::new(Vec::new());
    let done = AtomicBool::new(false);
    let mut snaps = Vec::new();
    std::thread::scope(|s| {
        let writers: Vec<_> = (0..2u64)
            .map(|t| {
                let (c, log) = (c.clone(), &log);
                s.spawn(move || {
                    for i in 0..600u64 {
                        let id = t * 1000 + i % 60;
                        let color = if i % 2 == 0 { "red" } else { "blue" };
                        let v = vec![t as f32, i as f32, (i % 7) as f32, 1.0];
                        let p = payload(json!({"t": t, "i": i, "color": color}));
                        let seq = c.upsert(vec![PointInput::new(id, v.clone()).with_payload(p.clone())]).unwrap();
                        log.lock().unwrap().push((seq, Step::Upsert(id, v, p)));
                        if i % 5 == 0 {
                            let id = t * 1000 + (i * 7) % 60;
                            let seq = c.delete(Selector::Ids(vec![PointId::Num(id)])).unwrap();
                            log.lock().unwrap().push((seq, Step::Delete(id)));
                        }
                        if i % 7 == 0 {
                            let id = t * 1000 + (i * 3) % 60;
                            let p = payload(json!({"color": "red", "touched": i}));
                            // A payload update of a missing point is an error and logs nothing.
                            if let Ok(seq) = c.set_payload(Selector::Ids(vec![PointId::Num(id)]), p.clone(), None) {
                                log.lock().unwrap().push((seq, Step::SetPayload(id, p)));
                            }
                        }
                    }
                })
            })
            .collect();
        let snapper = s.spawn(|| {
            let mut out = Vec::new();
            while !done.load(Ordering::Acquire) || out.len() < 3 {
                out.push(db.create_snapshot("live").unwrap());
                std::thread::sleep(Duration::from_millis(3));
            }
            out
        });
        for w in writers {
            w.join().unwrap();
        }
        done.store(true, Ordering::Release);
        snaps = snapper.join().unwrap();
    });
    // Whether a snapshot above happened to catch sealed segments beside a WAL tail depends on thread timing; this
    // one surely does: seal everything, write a few points (fewer than a seal takes), snapshot.
    c.seal().unwrap();
    for i in 0..5u64 {
        let (id, v, p) = (5000 + i, vec![9.0, i as f32, 0.0, 1.0], payload(json!({"color": "red", "tail": i})));
        let seq = c.upsert(vec![PointInput::new(id, v.clone()).with_payload(p.clone())]).unwrap();
        log.lock().unwrap().push((seq, Step::Upsert(id, v, p)));
    }
    snaps.push(db.create_snapshot("live").unwrap());
    let last = c.applied_seq();
    let info = c.info().unwrap();
    assert!(info.optimizer.sealed >= 3 && info.optimizer.merged >= 1, "{:?}", info.optimizer);
    let mid: Vec<_> =
        snaps.iter().filter(|s| s.applied_seq.unwrap() > first && s.applied_seq.unwrap() < last).collect();
    assert!(!mid.is_empty(), "no snapshot was taken while writes went on: {snaps:?}");
    let mut log = log.into_inner().unwrap();
    log.sort_by_key(|(seq, _)| *seq);
    // Restore a few (the first, some taken mid-stream, the last) under new names.
    let step = mid.len().div_ceil(4);
    let mut picks = vec![snaps[0].clone()];
    picks.extend(mid.iter().step_by(step).map(|s| (*s).clone()));
    picks.push(snaps.last().unwrap().clone());
    picks.dedup();
    let mut sealed_and_tail = 0;
    for (k, snap) in picks.iter().enumerate() {
        let at = snap.applied_seq.unwrap();
        let mut model = Model::new();
        for (_, step) in log.iter().filter(|(seq, _)| *seq <= at) {
            model_apply(&mut model, step);
        }
        let name = format!("r{k}");
        let path = db.snapshot_path("live", &snap.name).unwrap();
        let r = db.restore_snapshot(&name, &path).unwrap();
        assert_eq!(r.name(), name);
        assert_eq!(r.applied_seq(), at, "{snap:?}");
        assert_eq!(dump(&r), model, "{snap:?}");
        assert_eq!(r.config(), c.config());
        let ri = r.info().unwrap();
        assert_eq!(ri.payload_indexes, vec![("color".to_owned(), FieldType::Keyword)]);
        // Sealed segments from the manifest and operations above its checkpoint from the WAL prefix.
        let sealed = ri.segments.iter().filter(|s| s.tier != quiver_engine::segment::Tier::Growing).count();
        sealed_and_tail += usize::from(sealed > 0 && ri.wal_checkpoint < at);
        let reds = model.values().filter(|(_, p)| p["color"] == json!("red")).count() as u64;
        assert_eq!(r.count(Some(&red())).unwrap(), reds);
        let mut req = quiver_engine::SearchRequest::new(vec![0.0; 4], 5).with_filter(red());
        req.explain = true;
        let explain = r.search(&req).unwrap().explain.unwrap();
        assert!(explain.unindexed_keys.is_empty(), "{explain:?}");
        // It takes writes, numbered after the snapshot's operations.
        assert_eq!(r.upsert(vec![PointInput::new(77_777, vec![1.0; 4])]).unwrap(), at + 1);
    }
    assert!(sealed_and_tail > 0, "no restored snapshot combined sealed segments with a WAL tail");
    // The source is untouched and the restored collections survive a reopen.
    assert_eq!(c.applied_seq(), last);
    let r0 = dump(&db.collection("r0").unwrap());
    drop(c);
    drop(db);
    let db = Database::open(tmp.path()).unwrap();
    assert_eq!(dump(&db.collection("r0").unwrap()), r0);
    assert!(db.list().iter().all(|s| s.unavailable.is_none()));
}

fn small_db() -> (tempfile::TempDir, Database, Collection) {
    let tmp = tempfile::tempdir().unwrap();
    let db = Database::open(tmp.path()).unwrap();
    let mut cfg = CollectionConfig::new(2, Metric::Euclidean);
    cfg.optimizer.interval_ms = 0;
    cfg.optimizer.seal_points = 10;
    let c = db.create_collection("c", cfg).unwrap();
    c.create_field_index("color", FieldType::Keyword).unwrap();
    c.upsert(
        (0..25u64)
            .map(|i| PointInput::new(i, vec![i as f32, 1.0]).with_payload(payload(json!({"color": "red"}))))
            .collect(),
    )
    .unwrap();
    c.optimize().unwrap();
    c.delete(Selector::Ids(vec![PointId::Num(3)])).unwrap();
    (tmp, db, c)
}

fn collection_dirs(root: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(root.join("collections"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

#[test]
fn restoring_over_an_existing_collection_replaces_it() {
    let (tmp, db, c) = small_db();
    let snap = db.create_snapshot("c").unwrap();
    let at_snapshot = dump(&c);
    assert_eq!(at_snapshot.len(), 24);
    let heard = Arc::new(Mutex::new(Vec::new()));
    let h = heard.clone();
    c.subscribe(Arc::new(move |seq| h.lock().unwrap().push(seq)));
    c.upsert(vec![PointInput::new(100, vec![0.0, 0.0])]).unwrap();
    c.delete(Selector::Ids(vec![PointId::Num(0), PointId::Num(1)])).unwrap();
    c.drop_field_index("color").unwrap();
    c.seal().unwrap();
    let path = db.snapshot_path("c", &snap.name).unwrap();
    let r = db.restore_snapshot("c", &path).unwrap();
    assert_eq!(dump(&r), at_snapshot);
    assert_eq!(r.applied_seq(), snap.applied_seq.unwrap());
    assert_eq!(r.info().unwrap().payload_indexes, vec![("color".to_owned(), FieldType::Keyword)]);
    // The old handle is closed and its listeners heard it; the database serves the restored one.
    assert!(matches!(c.upsert(vec![PointInput::new(5, vec![0.0, 0.0])]), Err(Error::Closed { .. })));
    assert_eq!(heard.lock().unwrap().last(), Some(&CLOSED_SEQ));
    // No job runs through the old handle either (its directory path now holds the restored collection).
    assert!(matches!(c.seal(), Err(Error::Closed { .. })));
    assert_eq!(c.optimize().unwrap(), 0);
    assert!(matches!(db.create_snapshot("c"), Ok(s) if s.applied_seq == snap.applied_seq));
    assert_eq!(dump(&db.collection("c").unwrap()), at_snapshot);
    assert_eq!(collection_dirs(tmp.path()), ["c"]);
    // The archive is still there and can be restored again; a reopen gives the restored state.
    assert_eq!(db.list_snapshots("c").unwrap().len(), 2);
    drop((c, r));
    drop(db);
    let db = Database::open(tmp.path()).unwrap();
    assert_eq!(dump(&db.collection("c").unwrap()), at_snapshot);
}

type Damage = Box<dyn FnOnce(&mut Vec<u8>)>;

/// Copies `src` to a fresh directory under a generated-looking name, changed by `damage`.
fn damaged_copy(src: &Path, damage: impl FnOnce(&mut Vec<u8>)) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let mut bytes = std::fs::read(src).unwrap();
    damage(&mut bytes);
    let path = dir.path().join("snap-0000000000000001-0000.qsnap");
    std::fs::write(&path, bytes).unwrap();
    (dir, path)
}

#[test]
fn damaged_archives_are_rejected_and_the_collection_keeps_serving() {
    let (tmp, db, c) = small_db();
    let snap = db.create_snapshot("c").unwrap();
    let path = db.snapshot_path("c", &snap.name).unwrap();
    let len = std::fs::metadata(&path).unwrap().len() as usize;
    assert_eq!(len as u64, snap.size_bytes);
    c.upsert(vec![PointInput::new(500, vec![5.0, 0.0])]).unwrap();
    let before = dump(&c);
    let damages: Vec<(&str, Damage)> = vec![
        ("flipped byte", Box::new(move |b: &mut Vec<u8>| b[len / 2] ^= 0x20)),
        ("flipped header", Box::new(|b: &mut Vec<u8>| b[1] ^= 0x01)),
        ("truncated", Box::new(move |b: &mut Vec<u8>| b.truncate(len - 100))),
        ("cut in half", Box::new(move |b: &mut Vec<u8>| b.truncate(len / 2))),
        ("empty", Box::new(|b: &mut Vec<u8>| b.clear())),
    ];
    for (what, damage) in damages {
        let (_keep, bad) = damaged_copy(&path, damage);
        let err = db.restore_snapshot("c", &bad).unwrap_err();
        assert!(matches!(err, Error::InvalidSnapshot { .. }), "{what}: {err}");
        assert!(err.is_user_error(), "{what}");
        // Untouched: the same handle still reads and writes.
        assert_eq!(dump(&c), before, "{what}");
        assert_eq!(collection_dirs(tmp.path()), ["c"], "{what}");
        // An upload of the same bytes is refused and leaves nothing behind.
        let bytes = std::fs::read(&bad).unwrap();
        let err = db.save_uploaded_snapshot("c", &mut bytes.as_slice()).unwrap_err();
        assert!(matches!(err, Error::InvalidSnapshot { .. }), "{what}: {err}");
        assert_eq!(db.list_snapshots("c").unwrap().len(), 1, "{what}");
    }
    // Damaged in place, in the snapshots directory.
    let mut bytes = std::fs::read(&path).unwrap();
    bytes[len - 30] ^= 0xff;
    std::fs::write(&path, &bytes).unwrap();
    assert!(matches!(db.restore_snapshot("c", &path), Err(Error::InvalidSnapshot { .. })));
    c.upsert(vec![PointInput::new(501, vec![5.0, 1.0])]).unwrap();
    assert_eq!(db.collection("c").unwrap().count(None).unwrap(), before.len() as u64 + 1);
    let snaps_dir = tmp.path().join("snapshots/c");
    let leftovers: Vec<_> = std::fs::read_dir(&snaps_dir).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert_eq!(leftovers.len(), 1, "{leftovers:?}");
}

#[test]
fn uploaded_archives_get_fresh_names_and_restore_under_any_name() {
    let (_tmp, db, c) = small_db();
    let snap = db.create_snapshot("c").unwrap();
    let bytes = std::fs::read(db.snapshot_path("c", &snap.name).unwrap()).unwrap();
    let up = db.save_uploaded_snapshot("other", &mut bytes.as_slice()).unwrap();
    assert_eq!(up.collection, "other");
    assert_eq!(up.size_bytes, bytes.len() as u64);
    assert!(up.applied_seq.is_none());
    let up2 = db.save_uploaded_snapshot("other", &mut bytes.as_slice()).unwrap();
    assert_ne!(up.name, up2.name);
    assert_eq!(db.list_snapshots("other").unwrap(), vec![up.clone(), up2]);
    let r = db.restore_snapshot("other", &db.snapshot_path("other", &up.name).unwrap()).unwrap();
    assert_eq!(dump(&r), dump(&c));
    assert!(db.list().iter().any(|s| s.name == "other"));
    // Something that is not an archive at all.
    let err = db.save_uploaded_snapshot("other", &mut &b"hello"[..]).unwrap_err();
    assert!(matches!(err, Error::InvalidSnapshot { .. }), "{err}");
}

#[test]
fn snapshot_names_are_checked_and_list_and_delete_work() {
    let (_tmp, db, _c) = small_db();
    assert!(db.list_snapshots("c").unwrap().is_empty());
    let a = db.create_snapshot("c").unwrap();
    let b = db.create_snapshot("c").unwrap();
    assert_ne!(a.name, b.name);
    assert!(a.created_unix_ms > 1_600_000_000_000);
    let list = db.list_snapshots("c").unwrap();
    assert_eq!(list.iter().map(|s| s.name.clone()).collect::<Vec<_>>(), [a.name.clone(), b.name.clone()]);
    assert_eq!(list[0].size_bytes, a.size_bytes);
    for bad in ["../x", "snap-1.qsnap/../../etc", "a/b", "", "snap-0001700000000000-0000.qsnap.tmp", "../../LOCK"] {
        for res in [db.snapshot_path("c", bad).map(|_| ()), db.delete_snapshot("c", bad)] {
            let err = res.unwrap_err();
            assert!(matches!(&err, Error::InvalidArgument { field, .. } if field == "snapshot name"), "{bad:?}: {err}");
        }
    }
    for bad in ["../c", "a/b", ""] {
        assert!(matches!(db.list_snapshots(bad), Err(Error::InvalidArgument { .. })), "{bad:?}");
        assert!(matches!(db.snapshot_path(bad, &a.name), Err(Error::InvalidArgument { .. })), "{bad:?}");
    }
    assert!(matches!(db.restore_snapshot("c", Path::new("/etc/passwd")), Err(Error::InvalidArgument { .. })));
    assert!(matches!(db.create_snapshot("nope"), Err(Error::CollectionNotFound { .. })));
    let missing = "snap-0000000000000042-0000.qsnap";
    assert!(matches!(db.snapshot_path("c", missing), Err(Error::SnapshotNotFound { .. })));
    let gone = db.snapshot_path("c", missing).unwrap_err();
    assert!(gone.is_user_error());
    db.delete_snapshot("c", &a.name).unwrap();
    assert!(matches!(db.delete_snapshot("c", &a.name), Err(Error::SnapshotNotFound { .. })));
    assert!(matches!(db.snapshot_path("c", &a.name), Err(Error::SnapshotNotFound { .. })));
    assert_eq!(db.list_snapshots("c").unwrap(), vec![db.list_snapshots("c").unwrap()[0].clone()]);
    assert_eq!(db.list_snapshots("c").unwrap()[0].name, b.name);
    // Archives outlive their collection, and restore re-creates it.
    let before = dump(&db.collection("c").unwrap());
    db.drop_collection("c").unwrap();
    assert_eq!(db.list_snapshots("c").unwrap().len(), 1);
    let r = db.restore_snapshot("c", &db.snapshot_path("c", &b.name).unwrap()).unwrap();
    assert_eq!(dump(&r), before);
}

#[test]
fn an_interrupted_switch_is_resolved_at_open() {
    let (tmp, db, c) = small_db();
    let state = dump(&c);
    drop(c);
    drop(db);
    let cdir = tmp.path().join("collections");
    // Crash after the old directory was moved away, before the new one was moved in: the old one comes back.
    std::fs::rename(cdir.join("c"), cdir.join(".replaced-c")).unwrap();
    std::fs::create_dir(cdir.join(".tmp-c.restore")).unwrap();
    let db = Database::open(tmp.path()).unwrap();
    assert_eq!(dump(&db.collection("c").unwrap()), state);
    assert_eq!(collection_dirs(tmp.path()), ["c"]);
    drop(db);
    // Crash after the switch, before the old one was removed: the new one stays, the old one goes.
    let copy = cdir.join(".replaced-c");
    std::fs::create_dir(&copy).unwrap();
    std::fs::write(copy.join("config.json"), b"{}").unwrap();
    let db = Database::open(tmp.path()).unwrap();
    assert_eq!(dump(&db.collection("c").unwrap()), state);
    assert_eq!(collection_dirs(tmp.path()), ["c"]);
}

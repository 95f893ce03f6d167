//! The data directory lock.

use std::process::Command;

use quiver_engine::{CollectionConfig, Database, Error, PointInput};
use quiver_index::Metric;

#[test]
fn a_second_open_of_the_same_root_fails_until_the_first_is_dropped() {
    let tmp = tempfile::tempdir().unwrap();
    let db = Database::open(tmp.path()).unwrap();
    let c = db.create_collection("a", CollectionConfig::new(2, Metric::Euclidean)).unwrap();
    c.upsert(vec![PointInput::new(1, vec![1.0, 0.0])]).unwrap();
    let err = Database::open(tmp.path()).unwrap_err();
    assert!(matches!(&err, Error::Locked { path } if path.ends_with("LOCK")), "{err}");
    assert!(!err.is_user_error());
    assert!(err.to_string().contains("in use"), "{err}");
    // Still locked after a failed attempt; another root is independent.
    assert!(matches!(Database::open(tmp.path()), Err(Error::Locked { .. })));
    let other = tempfile::tempdir().unwrap();
    drop(Database::open(other.path()).unwrap());
    drop(db);
    // Dropping the database closed its collections: a handle kept past it can no longer write.
    assert!(matches!(c.upsert(vec![PointInput::new(2, vec![0.0, 1.0])]), Err(Error::Closed { .. })));
    let db = Database::open(tmp.path()).unwrap();
    assert_eq!(db.collection("a").unwrap().count(None).unwrap(), 1);
}

#[test]
fn lock_child_entry() {
    // Only does something when re-run by `another_process_cannot_open_a_locked_root`.
    let Ok(dir) = std::env::var("QUIVER_LOCK_CHILD") else { return };
    match Database::open(&dir) {
        Ok(_) => println!("RESULT OPENED"),
        Err(Error::Locked { .. }) => println!("RESULT LOCKED"),
        Err(e) => println!("RESULT ERROR {e}"),
    }
}

#[test]
fn another_process_cannot_open_a_locked_root() {
    let tmp = tempfile::tempdir().unwrap();
    let exe = std::env::current_exe().unwrap();
    let child = || {
        let out = Command::new(&exe)
            .args(["--exact", "database::lock_child_entry", "--nocapture", "--test-threads=1"])
            .env("QUIVER_LOCK_CHILD", tmp.path())
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        stdout.lines().find_map(|l| l.find("RESULT ").map(|i| l[i + 7..].to_owned())).unwrap_or(stdout)
    };
    let db = Database::open(tmp.path()).unwrap();
    assert_eq!(child(), "LOCKED");
    drop(db);
    assert_eq!(child(), "OPENED");
}

#[test]
fn the_memory_budget_refuses_creates_and_upserts_that_would_not_fit() {
    use quiver_engine::PointId;
    let tmp = tempfile::tempdir().unwrap();
    let db = Database::open(tmp.path()).unwrap();
    let mut cfg = CollectionConfig::new(64, Metric::Cosine);
    cfg.optimizer.interval_ms = 0;
    let per_batch = quiver_engine::budget::estimate(&cfg, 100, 32).heap_bytes;
    db.set_memory_budget(Some(per_batch * 5 / 2));
    let c = db.create_collection("a", cfg.clone()).unwrap();
    let vectors = crate::common::random_vectors(400, 64, 3);
    let batch = |b: u64| -> Vec<PointInput> {
        (b * 100..(b + 1) * 100).map(|i| PointInput::new(i, vectors[i as usize].clone())).collect()
    };
    c.upsert(batch(0)).unwrap();
    c.upsert(batch(1)).unwrap();
    let err = c.upsert(batch(2)).unwrap_err();
    assert!(err.is_storage_full(), "a 507: {err}");
    let msg = err.to_string();
    assert!(msg.contains("memory budget") && msg.contains("upsert") && msg.contains("\"a\""), "{msg}");
    assert_eq!(c.count(None).unwrap(), 200, "the refused upsert changed nothing");
    assert!(c.get(&[PointId::Num(250)], false, false).unwrap().is_empty());
    let info = c.info().unwrap();
    assert_eq!(info.estimated_memory.points, 200);
    assert_eq!(info.estimated_memory.mapped_bytes, 200 * 64 * 4);
    // The budget is the database's: a second collection's create sees the first's estimate.
    db.set_memory_budget(Some(info.estimated_memory.heap_bytes));
    assert!(db.create_collection("b", cfg.clone()).is_ok(), "an empty collection costs nothing yet");
    let b = db.collection("b").unwrap();
    let err = b.upsert(batch(3)).unwrap_err();
    assert!(err.to_string().contains("other collections hold"), "{err}");
    // Dropping a collection frees its share; raising the budget lets writes go on.
    db.drop_collection("b").unwrap();
    db.set_memory_budget(None);
    c.upsert(batch(2)).unwrap();
    assert_eq!(c.count(None).unwrap(), 300);
    assert_eq!(db.memory_budget().1.keys().collect::<Vec<_>>(), ["a"]);
}

#[test]
fn a_merge_whose_build_would_pass_the_memory_budget_waits() {
    let tmp = tempfile::tempdir().unwrap();
    let db = Database::open(tmp.path()).unwrap();
    let mut cfg = CollectionConfig::new(64, Metric::Euclidean);
    cfg.optimizer.interval_ms = 0;
    cfg.optimizer.seal_points = 100;
    cfg.optimizer.merge_below_points = 1_000;
    let c = db.create_collection("m", cfg).unwrap();
    let vectors = crate::common::random_vectors(300, 64, 9);
    for b in 0..3u64 {
        c.upsert((b * 100..(b + 1) * 100).map(|i| PointInput::new(i, vectors[i as usize].clone())).collect()).unwrap();
        c.seal().unwrap();
    }
    let sealed = |c: &quiver_engine::Collection| c.info().unwrap().segments.iter().filter(|s| s.rows > 0).count();
    assert_eq!(sealed(&c), 3);
    // Room for what the collection holds, not for the index a merge builds.
    db.set_memory_budget(Some(c.memory_estimate().heap_bytes + 1_000));
    let err = c.optimize().unwrap_err();
    assert!(err.is_storage_full() && err.to_string().contains("merge of"), "{err}");
    assert_eq!(sealed(&c), 3, "nothing merged");
    assert!(c.info().unwrap().optimizer.last_error.unwrap_or_default().contains("memory budget"));
    db.set_memory_budget(None);
    c.optimize().unwrap();
    assert_eq!(sealed(&c), 1);
    assert_eq!(c.count(None).unwrap(), 300);
}

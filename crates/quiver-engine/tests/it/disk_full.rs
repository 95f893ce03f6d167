//! A full disk: a write is refused with a storage-full error and changes nothing, reads go on, and writes resume
//! without a reopen once space returns; nothing acknowledged is lost. On the in-memory directory with a capacity
//! (every byte boundary a write can stop at), and on a real file system: a 4 MiB tmpfs mounted in a private mount
//! namespace (`unshare -rm`), the child being this test binary re-run with `QUIVER_DISK_FULL_CHILD` set.

use std::process::Command;

use quiver_engine::{CollectionConfig, Database, IndexConfig, PointId, PointInput, SearchRequest};
use quiver_index::{IndexKind, Metric};
use quiver_storage::Directory;

use crate::common::{mem_collection, random_vectors};

fn points(ids: std::ops::Range<u64>, vectors: &[Vec<f32>]) -> Vec<PointInput> {
    ids.map(|i| PointInput::new(i, vectors[i as usize].clone())).collect()
}

#[test]
fn a_full_disk_refuses_writes_keeps_reads_and_resumes_when_space_returns() {
    let f = mem_collection(8, Metric::Euclidean, |c| {
        c.index = IndexConfig { kind: IndexKind::Hnsw, params: Default::default() };
        c.optimizer.seal_points = 60;
    });
    let c = &f.c;
    let vectors = random_vectors(400, 8, 17);
    c.upsert(points(0..100, &vectors)).unwrap();
    c.optimize().unwrap();
    let before = c.search(&SearchRequest::new(vectors[3].clone(), 5)).unwrap().hits;
    // Every capacity from "nothing fits" to "a little fits": the write is refused at every boundary.
    let used = f.dir.used_bytes();
    for spare in [0u64, 1, 19, 20, 21, 100, 500] {
        f.dir.set_capacity(Some(used + spare));
        let err = c.upsert(points(100..150, &vectors)).unwrap_err();
        assert!(err.is_storage_full(), "spare {spare}: {err}");
        assert_eq!(c.count(None).unwrap(), 100, "spare {spare}: nothing changed");
        assert!(c.get(&[PointId::Num(120)], false, false).unwrap().is_empty());
        assert_eq!(c.search(&SearchRequest::new(vectors[3].clone(), 5)).unwrap().hits, before, "reads go on");
        f.dir.set_capacity(Some(f.dir.used_bytes()));
    }
    // A seal on a full disk fails and changes nothing either; its temporary file is gone.
    f.dir.set_capacity(None);
    c.upsert(points(100..130, &vectors)).unwrap();
    f.dir.set_capacity(Some(f.dir.used_bytes() + 64));
    let seal = c.seal();
    assert!(seal.as_ref().is_err_and(|e| e.is_storage_full()), "{seal:?}");
    assert_eq!(c.count(None).unwrap(), 130);
    assert!(f.dir.list().unwrap().iter().all(|n| !n.ends_with(".tmp")), "{:?}", f.dir.list().unwrap());
    // Space returns: the same collection takes writes and seals again, no reopen.
    f.dir.set_capacity(None);
    c.upsert(points(130..200, &vectors)).unwrap();
    assert!(c.seal().unwrap());
    c.optimize().unwrap();
    assert_eq!(c.count(None).unwrap(), 200);
    let again = f.reopen().unwrap();
    assert_eq!(again.count(None).unwrap(), 200, "every acknowledged write survives a reopen");
    let hit = again.search(&SearchRequest::new(vectors[150].clone(), 1)).unwrap().hits;
    assert_eq!(hit[0].id, PointId::Num(150));
}

const CHILD: &str = "QUIVER_DISK_FULL_CHILD";

#[test]
fn disk_full_child_entry() {
    // Only does something when re-run by `a_full_tmpfs_refuses_writes_and_resumes_when_space_returns`, inside a
    // private mount namespace where `$QUIVER_DISK_FULL_CHILD` is a 4 MiB tmpfs.
    let Ok(root) = std::env::var(CHILD) else { return };
    let root = std::path::PathBuf::from(root);
    let vectors = random_vectors(2_000, 64, 5);
    let mut acked;
    {
        let db = Database::open(root.join("data")).unwrap();
        let mut cfg = CollectionConfig::new(64, Metric::Cosine);
        cfg.optimizer.interval_ms = 0;
        let c = db.create_collection("c", cfg).unwrap();
        c.upsert(points(0..200, &vectors)).unwrap();
        acked = 200;
        // Fill what is left of the file system.
        let filler = root.join("filler");
        let mut file = std::fs::File::create(&filler).unwrap();
        let chunk = vec![7u8; 64 * 1024];
        loop {
            use std::io::Write;
            match file.write_all(&chunk) {
                Ok(()) => {}
                Err(e) if e.raw_os_error() == Some(28) => break,
                Err(e) => panic!("filling the tmpfs: {e}"),
            }
        }
        file.sync_all().ok();
        drop(file);
        // Writes are refused (a small one may still fit in a page the WAL already has): at most a few succeed.
        let mut refused = 0;
        while acked < 400 {
            match c.upsert(points(acked..acked + 20, &vectors)) {
                Ok(_) => acked += 20,
                Err(e) => {
                    assert!(e.is_storage_full(), "{e}");
                    refused += 1;
                    break;
                }
            }
        }
        assert_eq!(refused, 1, "the disk filled up");
        assert_eq!(c.count(None).unwrap(), acked, "the refused write changed nothing");
        let hit = c.search(&SearchRequest::new(vectors[10].clone(), 1)).unwrap().hits;
        assert_eq!(hit[0].id, PointId::Num(10), "reads go on");
        // Space returns.
        std::fs::remove_file(&filler).unwrap();
        c.upsert(points(acked..acked + 100, &vectors)).unwrap();
        acked += 100;
        assert!(c.seal().unwrap());
    }
    let db = Database::open(root.join("data")).unwrap();
    assert_eq!(db.collection("c").unwrap().count(None).unwrap(), acked, "acknowledged writes survive a reopen");
    println!("DISK_FULL_CHILD_OK acked={acked}");
}

#[test]
fn a_full_tmpfs_refuses_writes_and_resumes_when_space_returns() {
    let probe = Command::new("unshare").args(["-rm", "true"]).output();
    if !probe.is_ok_and(|o| o.status.success()) {
        eprintln!("skipped: `unshare -rm` (a private user and mount namespace) is not available here");
        return;
    }
    let mount = tempfile::tempdir().unwrap();
    let exe = std::env::current_exe().unwrap();
    let script = r#"mount -t tmpfs -o size=4m tmpfs "$1" && exec "$2" --exact disk_full::disk_full_child_entry --nocapture --test-threads=1"#;
    let out = Command::new("unshare")
        .args(["-rm", "sh", "-c", script, "sh"])
        .arg(mount.path())
        .arg(&exe)
        .env(CHILD, mount.path())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.contains("DISK_FULL_CHILD_OK"),
        "child: {stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

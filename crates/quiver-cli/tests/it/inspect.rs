//! `quiver inspect` on a real data directory written by the engine: intact, then with one byte flipped in a
//! segment, a manifest, a middle WAL record and a snapshot, and with a torn WAL tail. Every run must leave the
//! directory byte for byte as it was.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Output;

use quiver_engine::{CollectionConfig, Database, Payload, PointInput};
use quiver_index::Metric;
use quiver_storage::{Directory, FsDirectory, segment, wal};
use serde_json::{Value, json};

use crate::quiver;

/// Every file under `dir` with its bytes.
fn tree(dir: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    let mut out = BTreeMap::new();
    let mut stack = vec![dir.to_owned()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let e = e.unwrap();
            if e.file_type().unwrap().is_dir() {
                out.insert(e.path().strip_prefix(dir).unwrap().join(""), Vec::new());
                stack.push(e.path());
            } else {
                out.insert(e.path().strip_prefix(dir).unwrap().to_owned(), std::fs::read(e.path()).unwrap());
            }
        }
    }
    out
}

fn copy_tree(from: &Path, to: &Path) {
    for (rel, bytes) in tree(from) {
        let dest = to.join(&rel);
        if rel.as_os_str().to_string_lossy().ends_with('/') {
            std::fs::create_dir_all(&dest).unwrap();
        } else {
            std::fs::create_dir_all(dest.parent().unwrap()).unwrap();
            std::fs::write(dest, bytes).unwrap();
        }
    }
}

struct Fixture {
    _tmp: tempfile::TempDir,
    root: PathBuf,
}

impl Fixture {
    fn col(&self) -> PathBuf {
        self.root.join("collections/docs")
    }

    fn only(&self, prefix: &str) -> PathBuf {
        let mut found: Vec<PathBuf> = std::fs::read_dir(self.col())
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.file_name().unwrap().to_string_lossy().starts_with(prefix))
            .collect();
        found.sort();
        found.pop().unwrap()
    }
}

/// A data directory with collection `docs` (a sealed segment, a manifest, six WAL records of which three are
/// above the checkpoint, a snapshot archive) and an empty collection `empty`.
fn fixture() -> Fixture {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("data");
    let db = Database::open(&root).unwrap();
    let mut cfg = CollectionConfig::new(8, Metric::Cosine);
    cfg.optimizer.interval_ms = 0;
    let c = db.create_collection("docs", cfg.clone()).unwrap();
    let point = |i: u64| {
        let v: Vec<f32> = (0..8).map(|j| ((i * 7 + j * 3) % 11) as f32 + 1.0).collect();
        let mut p = Payload::new();
        p.insert("n".into(), json!(i));
        PointInput::new(i, v).with_payload(p)
    };
    for b in 0..3u64 {
        c.upsert((b * 50..b * 50 + 50).map(point).collect()).unwrap();
    }
    assert!(c.seal().unwrap());
    for b in 3..6u64 {
        c.upsert((b * 50..b * 50 + 50).map(point).collect()).unwrap();
    }
    db.create_collection("empty", cfg).unwrap();
    // A snapshot archive of `docs`, where the engine keeps them (`snapshots/docs/`).
    db.create_snapshot("docs").unwrap();
    db.close().unwrap();
    drop(db);
    Fixture { _tmp: tmp, root }
}

/// Runs `quiver inspect --json` on a copy of the fixture changed by `damage`; checks nothing was written and
/// returns the exit code, the report and the copy's root.
fn inspect_damaged(fx: &Fixture, damage: impl FnOnce(&Fixture)) -> (i32, Value, Fixture) {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("data");
    copy_tree(&fx.root, &root);
    let copy = Fixture { _tmp: tmp, root };
    damage(&copy);
    let before = tree(&copy.root);
    let out = quiver(&["inspect", "--json", copy.root.to_str().unwrap()]);
    assert_eq!(tree(&copy.root), before, "inspect changed the data directory");
    let report: Value =
        serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stderr)));
    (out.status.code().unwrap(), report, copy)
}

fn flip(path: &Path, offset: usize) {
    let mut b = std::fs::read(path).unwrap();
    b[offset] ^= 0x20;
    std::fs::write(path, b).unwrap();
}

fn problems(report: &Value) -> Vec<Value> {
    let mut all: Vec<Value> = report["problems"].as_array().unwrap().clone();
    for c in report["collections"].as_array().unwrap() {
        all.extend(c["problems"].as_array().unwrap().iter().cloned());
    }
    all
}

fn errors(report: &Value) -> Vec<Value> {
    problems(report).into_iter().filter(|p| p["severity"] == "error").collect()
}

fn docs(report: &Value) -> &Value {
    report["collections"].as_array().unwrap().iter().find(|c| c["name"] == "docs").unwrap()
}

/// Offsets of the WAL records of `docs`, from a read-only scan.
fn wal_offsets(fx: &Fixture) -> Vec<u64> {
    let dir = FsDirectory::open(fx.col()).unwrap();
    let mut offsets = Vec::new();
    wal::scan(&dir, |r| offsets.push(r.offset)).unwrap();
    offsets
}

#[test]
fn intact_directory_verifies_and_is_not_changed() {
    let fx = fixture();
    let (code, report, _) = inspect_damaged(&fx, |_| {});
    assert_eq!(code, 0, "{report:#}");
    assert_eq!((report["ok"].clone(), report["errors"].clone()), (json!(true), json!(0)), "{report:#}");
    assert_eq!(report["warnings"], 0, "{report:#}");
    let d = docs(&report);
    assert_eq!(d["dimension"], 8);
    assert_eq!(d["metric"], "cosine");
    assert_eq!(d["manifest"]["segments"].as_array().unwrap().len(), 1);
    assert_eq!(d["segments"][0]["verified"], true);
    assert!(d["segments"][0]["blocks"].as_u64().unwrap() >= 3);
    assert_eq!(d["segments"][0]["layout"], json!(quiver_engine::segment::SEGMENT_LAYOUT));
    let formats = report["formats"].as_array().unwrap();
    assert!(formats.contains(&json!(["segment layout", quiver_engine::segment::SEGMENT_LAYOUT])), "{formats:?}");
    assert_eq!(d["wal"]["records"], 6);
    assert_eq!(d["manifest"]["wal_checkpoint"], 3);
    assert_eq!(d["snapshots"][0]["verified"], true);
    let empty = report["collections"].as_array().unwrap().iter().find(|c| c["name"] == "empty").unwrap();
    assert_eq!((empty["ok"].clone(), empty["manifest"].clone()), (json!(true), Value::Null));

    // The text report says the same.
    let out = quiver(&["inspect", fx.root.to_str().unwrap()]);
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(
        text.contains("collection docs: OK") && text.contains("6 records") && text.contains("OK: 0 errors"),
        "{text}"
    );
    assert!(text.contains("this build writes: wal 1, manifest 1, segment container 1, segment layout"), "{text}");
}

/// The data directory written by an older build (the engine's `tests/fixtures/format-1`): intact, its segments in
/// layout 1, which this build still reads.
#[test]
fn an_older_data_directory_reports_its_segment_layout() {
    let from = Path::new(env!("CARGO_MANIFEST_DIR")).join("../quiver-engine/tests/fixtures/format-1");
    let tmp = tempfile::tempdir().unwrap();
    copy_tree(&from, tmp.path());
    let out = quiver(&["inspect", "--json", tmp.path().to_str().unwrap()]);
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(out.status.success(), "{report:#}");
    for c in report["collections"].as_array().unwrap() {
        let segs = c["segments"].as_array().unwrap();
        assert!(!segs.is_empty() && segs.iter().all(|s| s["layout"] == 1 && s["verified"] == true), "{c:#}");
    }
    let text = String::from_utf8(quiver(&["inspect", tmp.path().to_str().unwrap()]).stdout).unwrap();
    assert!(text.contains("in an older layout (read as is, rewritten by the next merge)"), "{text}");
}

#[test]
fn flipped_segment_byte_is_reported_at_its_block() {
    let fx = fixture();
    let seg = fx.only("seg-");
    let bytes = std::fs::read(&seg).unwrap();
    let (_, blocks) = segment::decode_footer(&seg, &bytes).unwrap();
    let block = blocks[1];
    let (code, report, copy) =
        inspect_damaged(&fx, |c| flip(&c.only("seg-"), block.offset as usize + block.stored_len as usize / 2));
    assert_eq!(code, 1, "{report:#}");
    let errs = errors(&report);
    assert_eq!(errs.len(), 1, "{report:#}");
    assert_eq!(errs[0]["file"], json!(copy.only("seg-")));
    assert_eq!(errs[0]["offset"], block.offset);
    assert!(errs[0]["message"].as_str().unwrap().contains("checksum"), "{report:#}");
    assert_eq!(docs(&report)["ok"], false);
    assert_eq!(docs(&report)["segments"][0]["verified"], false);
    // The other collection is fine.
    let empty = report["collections"].as_array().unwrap().iter().find(|c| c["name"] == "empty").unwrap();
    assert_eq!(empty["ok"], true);
}

#[test]
fn flipped_manifest_byte_is_reported_at_its_checksum() {
    let fx = fixture();
    let len = std::fs::metadata(fx.only("MANIFEST-")).unwrap().len();
    let (code, report, copy) = inspect_damaged(&fx, |c| flip(&c.only("MANIFEST-"), 20));
    assert_eq!(code, 1, "{report:#}");
    let errs = errors(&report);
    assert_eq!(errs.len(), 1, "{report:#}");
    assert_eq!(errs[0]["file"], json!(copy.only("MANIFEST-")));
    // A checksum mismatch is reported at the checksum field, the last 4 bytes.
    assert_eq!(errs[0]["offset"], len - 4);
    assert!(errs[0]["message"].as_str().unwrap().contains("refuses to open"), "{report:#}");
}

#[test]
fn flipped_middle_wal_record_is_an_error_and_a_torn_tail_a_warning() {
    let fx = fixture();
    let offsets = wal_offsets(&fx);
    assert_eq!(offsets.len(), 6);
    // A byte inside the payload of record 3 (of 6): durable bytes damaged, the engine refuses to open.
    let (code, report, copy) = inspect_damaged(&fx, |c| flip(&c.only("wal-"), offsets[2] as usize + 40));
    assert_eq!(code, 1, "{report:#}");
    let errs = errors(&report);
    assert_eq!(errs.len(), 1, "{report:#}");
    assert_eq!(errs[0]["file"], json!(copy.only("wal-")));
    assert_eq!(errs[0]["offset"], offsets[2]);
    assert!(errs[0]["message"].as_str().unwrap().contains("2 valid records before it"), "{report:#}");
    assert_eq!(docs(&report)["wal"]["records"], 2);

    // The last record cut short: a torn tail that the next open truncates — a warning, exit 0.
    let wal_len = std::fs::metadata(fx.only("wal-")).unwrap().len();
    let (code, report, copy) = inspect_damaged(&fx, |c| {
        let w = c.only("wal-");
        let b = std::fs::read(&w).unwrap();
        std::fs::write(&w, &b[..b.len() - 10]).unwrap();
    });
    assert_eq!(code, 0, "{report:#}");
    assert_eq!((report["errors"].clone(), report["warnings"].clone()), (json!(0), json!(1)), "{report:#}");
    let w = &problems(&report)[0];
    assert_eq!(w["severity"], "warning");
    assert_eq!(w["file"], json!(copy.only("wal-")));
    assert_eq!(w["offset"], offsets[5]);
    let torn = wal_len - 10 - offsets[5];
    assert!(w["message"].as_str().unwrap().contains(&format!("torn tail of {torn} bytes")), "{report:#}");
    assert_eq!(docs(&report)["wal"]["records"], 5);
}

#[test]
fn damaged_snapshot_and_leftovers() {
    let fx = fixture();
    let (code, report, copy) = inspect_damaged(&fx, |c| {
        let dir = c.root.join("snapshots/docs");
        let snap = std::fs::read_dir(&dir).unwrap().next().unwrap().unwrap().path();
        flip(&snap, 100);
        // Leftovers the next open removes: warnings only.
        std::fs::write(c.col().join("seg-00000000000000000099.qseg.tmp"), b"partial").unwrap();
        std::fs::create_dir(c.root.join("collections/.tmp-new")).unwrap();
        std::fs::create_dir(c.root.join("collections/.replaced-old")).unwrap();
        std::fs::create_dir(c.root.join("snapshots/docs/.upload-1")).unwrap();
    });
    assert_eq!(code, 1, "{report:#}");
    let errs = errors(&report);
    assert_eq!(errs.len(), 1, "{report:#}");
    let snap_dir = copy.root.join("snapshots/docs");
    assert!(errs[0]["file"].as_str().unwrap().starts_with(snap_dir.to_str().unwrap()), "{report:#}");
    assert_eq!(docs(&report)["snapshots"][0]["verified"], false);
    assert_eq!(report["warnings"], 4, "{report:#}");
}

#[test]
fn not_a_data_directory_is_a_usage_error() {
    let tmp = tempfile::tempdir().unwrap();
    let out = quiver(&["inspect", tmp.path().join("missing").to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("is not a directory"));
    let out = quiver(&["inspect", tmp.path().to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no collections/ directory"));
    assert_eq!(tree(tmp.path()).len(), 0, "nothing created");
    let out = quiver(&["inspect"]);
    assert_eq!(out.status.code(), Some(2), "a missing argument is a usage error too");
}

/// The reported problems of a damaged copy keep the text form readable: file, offset, message on one line.
#[test]
fn text_report_names_file_and_offset() {
    let fx = fixture();
    let offsets = wal_offsets(&fx);
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("data");
    copy_tree(&fx.root, &root);
    let copy = Fixture { _tmp: tmp, root };
    flip(&copy.only("wal-"), offsets[1] as usize + 30);
    let out: Output = quiver(&["inspect", copy.root.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    let text = String::from_utf8(out.stdout).unwrap();
    let want = format!("ERROR: {} at offset {}:", copy.only("wal-").display(), offsets[1]);
    assert!(text.contains(&want) && text.contains("collection docs: CORRUPT"), "{text}");
    assert!(text.contains("CORRUPTION FOUND: 1 error"), "{text}");
}

#[test]
fn unreadable_operation_and_a_held_lock() {
    let fx = fixture();
    // A record whose checksum is fine but whose payload is not an operation (appended through the WAL itself).
    let (code, report, copy) = inspect_damaged(&fx, |c| {
        let dir: std::sync::Arc<dyn Directory> = std::sync::Arc::new(FsDirectory::open(c.col()).unwrap());
        let (w, _) = quiver_storage::Wal::open(dir, quiver_storage::WalOptions::default()).unwrap();
        w.append(7, b"not an operation").unwrap();
    });
    assert_eq!(code, 1, "{report:#}");
    let errs = errors(&report);
    assert_eq!(errs.len(), 1, "{report:#}");
    assert_eq!(errs[0]["file"], json!(copy.only("wal-")));
    assert!(
        errs[0]["message"].as_str().unwrap().contains("record 7 (checksum fine) does not hold a readable operation")
    );
    assert_eq!(docs(&report)["wal"]["records"], 7);

    // Another process holding the data directory's lock (a running server): a warning, and the lock is free
    // again afterwards.
    let lock_path = fx.root.join("LOCK");
    let lock = std::fs::File::create(&lock_path).unwrap();
    lock.lock().unwrap();
    let out = quiver(&["inspect", "--json", fx.root.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0));
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["warnings"], 1, "{report:#}");
    assert!(report["problems"][0]["message"].as_str().unwrap().contains("open in another process"), "{report:#}");
    lock.unlock().unwrap();
    let out = quiver(&["inspect", "--json", fx.root.to_str().unwrap()]);
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["warnings"], 0, "{report:#}");
}

/// The committed fixture data directories (`testdata/fixtures/format-*`, written by older builds; see
/// `testdata/fixtures/README.md`): each copy inspects clean, every collection, segment and snapshot verified, in the
/// segment layout its `expected.json` records, and the report names the format versions of every file kind.
#[test]
fn committed_fixture_directories_inspect_clean() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../testdata/fixtures");
    let mut found = 0;
    for e in std::fs::read_dir(&root).unwrap() {
        let from = e.unwrap().path();
        if !from.file_name().unwrap().to_string_lossy().starts_with("format-") || !from.join("expected.json").is_file()
        {
            continue;
        }
        found += 1;
        let want: Value = serde_json::from_slice(&std::fs::read(from.join("expected.json")).unwrap()).unwrap();
        let tmp = tempfile::tempdir().unwrap();
        copy_tree(&from, tmp.path());
        let before = tree(tmp.path());
        let out = quiver(&["inspect", "--json", tmp.path().to_str().unwrap()]);
        assert_eq!(tree(tmp.path()), before, "inspect changed the data directory");
        let report: Value = serde_json::from_slice(&out.stdout)
            .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stderr)));
        assert_eq!(out.status.code(), Some(0), "{}: {report:#}", from.display());
        assert_eq!((report["errors"].clone(), report["warnings"].clone()), (json!(0), json!(0)), "{report:#}");
        // This build reads every version the fixture was written in (it writes the same or newer ones).
        let formats: BTreeMap<String, u64> = report["formats"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| (f[0].as_str().unwrap().to_owned(), f[1].as_u64().unwrap()))
            .collect();
        for (kind, v) in want["formats"].as_object().unwrap() {
            assert!(formats.get(kind).is_some_and(|&now| now >= v.as_u64().unwrap()), "{kind} {v}: {formats:?}");
        }
        let layout = &want["formats"]["segment layout"];
        let names: Vec<&String> = want["collections"].as_object().unwrap().keys().collect();
        for name in names {
            let c = report["collections"].as_array().unwrap().iter().find(|c| &c["name"] == name).unwrap();
            assert_eq!(c["ok"], true, "{c:#}");
            assert_eq!(c["dimension"], want["collections"][name]["config"]["dimension"], "{c:#}");
            let segs = c["segments"].as_array().unwrap();
            assert!(!segs.is_empty(), "{c:#}");
            assert!(segs.iter().all(|s| s["verified"] == true && &s["layout"] == layout), "{c:#}");
            assert!(c["wal"]["records"].as_u64().unwrap() > 0, "{c:#}");
        }
        let snap = want["snapshot"]["collection"].as_str().unwrap();
        let c = report["collections"].as_array().unwrap().iter().find(|c| c["name"] == snap).unwrap();
        assert_eq!(c["snapshots"][0]["verified"], true, "{c:#}");
        // The text report names the versions too.
        let text = String::from_utf8(quiver(&["inspect", tmp.path().to_str().unwrap()]).stdout).unwrap();
        let line = format!(
            "this build writes: wal {}, manifest {}, segment container {}, segment layout {}, snapshot {}",
            formats["wal"],
            formats["manifest"],
            formats["segment container"],
            formats["segment layout"],
            formats["snapshot"]
        );
        assert!(text.contains(&line) && text.contains("OK: 0 errors, 0 warnings"), "{text}");
    }
    assert!(found >= 1, "no fixtures under {}", root.display());
}

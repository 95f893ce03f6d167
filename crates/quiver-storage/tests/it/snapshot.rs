//! Snapshots: consistent archive of WAL + manifest + segments, verified restore, hostile archives rejected.

use quiver_storage::manifest::{Manifest, ManifestStore};
use quiver_storage::segment::{BlockKind, Segment, SegmentWriter};
use quiver_storage::snapshot::{self, SnapshotFile};
use quiver_storage::{Directory, Durability, Error, MemDirectory, Wal, WalOptions};

use crate::support::{arc, mem_with, payload};
use crate::wal::open_all;

/// A store with 30 WAL records, one segment and a manifest; returns the snapshot's file list taken at record 20.
fn store(dir: &MemDirectory) -> (Wal, Vec<SnapshotFile>) {
    let opts =
        WalOptions { durability: Durability::Batch { max_delay: std::time::Duration::ZERO }, max_file_size: 2000 };
    let (w, _) = Wal::open(arc(dir), opts).unwrap();
    for s in 1..=20 {
        w.append(s, &payload(s)).unwrap();
    }
    let mut sw = SegmentWriter::create(arc(dir), 1).unwrap();
    sw.add_block(BlockKind::Vectors, 0, &[1u8; 256]).unwrap();
    let seg = sw.finish().unwrap();
    let (mut ms, _) = ManifestStore::open(arc(dir)).unwrap();
    let gen_ = ms.commit(&Manifest { wal_checkpoint: 10, segments: vec![1], user: b"u".to_vec() }).unwrap();
    let mut files: Vec<SnapshotFile> =
        w.durable_files().unwrap().into_iter().map(|(name, len)| SnapshotFile { name, len: Some(len) }).collect();
    files.push(SnapshotFile::whole(seg));
    files.push(SnapshotFile::whole(quiver_storage::manifest::file_name(gen_)));
    // Appends after the snapshot point are not part of it.
    for s in 21..=30 {
        w.append(s, &payload(s)).unwrap();
    }
    (w, files)
}

#[test]
fn snapshot_and_restore_round_trip() {
    let src = MemDirectory::new(1);
    let (_w, files) = store(&src);
    let archives = MemDirectory::new(2);
    let name = snapshot::create(&src, &files, &archives).unwrap();
    assert!(name.starts_with("snap-") && name.ends_with(".qsnap"), "{name}");
    let name2 = snapshot::create(&src, &files, &archives).unwrap();
    assert_ne!(name, name2, "generated names never collide");
    let entries = snapshot::verify(&archives, &name).unwrap();
    assert_eq!(entries.len(), files.len());

    let target = MemDirectory::new(3);
    let restored = snapshot::restore(&archives, &name, &target).unwrap();
    assert_eq!(restored.len(), files.len());
    let (_, m) = ManifestStore::open(arc(&target)).unwrap();
    assert_eq!(m.unwrap().wal_checkpoint, 10);
    Segment::open(&target, 1).unwrap().verify().unwrap();
    let (_, report, got) = open_all(arc(&target), WalOptions::default()).unwrap();
    assert_eq!(report.truncated, None);
    assert_eq!(got.iter().map(|r| r.0).collect::<Vec<_>>(), (1..=20).collect::<Vec<_>>());
    // A second restore into the now non-empty directory is refused and changes nothing.
    let e = snapshot::restore(&archives, &name, &target).unwrap_err();
    assert!(e.is_user_error(), "{e}");
    assert_eq!(target.list().unwrap().len(), files.len());
}

#[test]
fn a_damaged_archive_is_refused_before_anything_is_written() {
    let src = MemDirectory::new(4);
    let (_w, files) = store(&src);
    let archives = MemDirectory::new(5);
    let name = snapshot::create(&src, &files, &archives).unwrap();
    let bytes = archives.read(&name).unwrap();
    for at in (0..bytes.len()).step_by(bytes.len() / 40).chain([bytes.len() - 1]) {
        let mut bad = bytes.clone();
        bad[at] ^= 0x40;
        let d = mem_with(6, &[(&name, &bad)]);
        let target = MemDirectory::new(7);
        match snapshot::restore(&d, &name, &target) {
            Err(Error::Corrupt { file, .. }) => assert!(file.ends_with(&name)),
            other => panic!("flip at {at}: {other:?}"),
        }
        assert!(target.list().unwrap().is_empty(), "nothing written");
    }
    for cut in [0, 10, bytes.len() / 2, bytes.len() - 1] {
        let d = mem_with(8, &[(&name, &bytes[..cut])]);
        assert!(matches!(snapshot::verify(&d, &name), Err(Error::Corrupt { .. })), "cut {cut}");
    }
}

/// An archive built by hand, following docs/format.md, with a correct checksum.
fn archive(entries: &[(&str, &[u8])]) -> Vec<u8> {
    let mut out = Vec::new();
    out.extend_from_slice(b"QSNP");
    out.extend_from_slice(&1u16.to_le_bytes());
    out.extend_from_slice(&0u16.to_le_bytes());
    out.extend_from_slice(&(entries.len() as u32).to_le_bytes());
    out.extend_from_slice(&0u32.to_le_bytes());
    for (name, data) in entries {
        out.extend_from_slice(&(name.len() as u16).to_le_bytes());
        out.extend_from_slice(name.as_bytes());
        out.extend_from_slice(&(data.len() as u64).to_le_bytes());
        out.extend_from_slice(&crc32c::crc32c(data).to_le_bytes());
        out.extend_from_slice(data);
    }
    let body = out.len() as u64;
    let crc = crc32c::crc32c(&out);
    out.extend_from_slice(&body.to_le_bytes());
    out.extend_from_slice(&crc.to_le_bytes());
    out.extend_from_slice(b"QSNE");
    out
}

#[test]
fn entries_and_names_that_escape_are_rejected() {
    let name = "snap-1-1.qsnap";
    let good = archive(&[("a", b"x")]);
    let d = mem_with(9, &[(name, &good)]);
    let target = MemDirectory::new(10);
    assert_eq!(snapshot::restore(&d, name, &target).unwrap(), vec!["a".to_owned()]);

    for evil in ["../evil", "/etc/passwd", "sub/file", "..", "", "x.tmp", "a\\b"] {
        let d = mem_with(11, &[(name, &archive(&[("ok", b"1"), (evil, b"2")]))]);
        let target = MemDirectory::new(12);
        let e = snapshot::restore(&d, name, &target).unwrap_err();
        assert!(matches!(e, Error::Corrupt { .. }), "{evil:?}: {e}");
        assert!(target.list().unwrap().is_empty(), "{evil:?}: nothing written");
    }
    let d = mem_with(13, &[(name, &archive(&[("a", b"1"), ("a", b"2")]))]);
    assert!(snapshot::verify(&d, name).is_err(), "duplicate entries");

    for bad_name in ["../snap-1.qsnap", "snap-1.qsnap/../x", "other.qsnap", "snap-.qsnap"] {
        let e = snapshot::verify(&d, bad_name).unwrap_err();
        assert!(e.is_user_error(), "{bad_name}: {e}");
    }
    // Snapshot inputs are checked too.
    let src = MemDirectory::new(14);
    let e = snapshot::create(&src, &[SnapshotFile::whole("../x")], &MemDirectory::new(15)).unwrap_err();
    assert!(e.is_user_error());
}

#[test]
fn arbitrary_archives_never_panic() {
    use proptest::prelude::*;
    let mut runner = proptest::test_runner::TestRunner::new(proptest::test_runner::Config::with_cases(128));
    let name = "snap-2-2.qsnap";
    let base = archive(&[("MANIFEST-1", b"m"), ("seg-1", &[7u8; 100])]);
    runner
        .run(
            &(
                proptest::collection::vec(any::<u8>(), 0..200),
                proptest::collection::vec((any::<usize>(), any::<u8>()), 0..4),
            ),
            |(junk, flips)| {
                let d = mem_with(16, &[(name, &junk)]);
                let _ = snapshot::verify(&d, name);
                let mut b = base.clone();
                for (at, x) in flips {
                    let n = b.len();
                    b[at % n] ^= x;
                }
                let d = mem_with(17, &[(name, &b)]);
                let _ = snapshot::restore(&d, name, &MemDirectory::new(18));
                Ok(())
            },
        )
        .unwrap();
}

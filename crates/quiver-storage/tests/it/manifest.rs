//! Manifest: atomic replace, previous kept, corruption refused, crash sweep together with the WAL.

use quiver_storage::manifest::{self, Manifest, ManifestStore};
use quiver_storage::{CrashMode, Directory, Durability, Error, MemDirectory, Wal, WalOptions};

use crate::support::{arc, payload};
use crate::wal::open_all;

fn m(cp: u64) -> Manifest {
    Manifest { wal_checkpoint: cp, segments: vec![cp, cp + 10], user: format!("state {cp}").into_bytes() }
}

#[test]
fn commit_keeps_the_previous_generation_and_removes_older() {
    let dir = MemDirectory::new(1);
    let (mut store, cur) = ManifestStore::open(arc(&dir)).unwrap();
    assert_eq!(cur, None);
    for cp in 1..=4 {
        assert_eq!(store.commit(&m(cp)).unwrap(), cp);
    }
    assert_eq!(dir.list().unwrap(), vec![manifest::file_name(3), manifest::file_name(4)]);
    let (store2, cur) = ManifestStore::open(arc(&dir)).unwrap();
    assert_eq!(cur, Some(m(4)));
    assert_eq!(store2.generation(), 4);
    // A bad manifest is a user error and writes nothing.
    let bad = Manifest { segments: vec![5, 5], ..Manifest::default() };
    assert!(store.commit(&bad).unwrap_err().is_user_error());
    assert_eq!(dir.list().unwrap().len(), 2);
}

#[test]
fn stray_temp_files_are_ignored_and_removed() {
    let dir = MemDirectory::new(2);
    let (mut store, _) = ManifestStore::open(arc(&dir)).unwrap();
    store.commit(&m(7)).unwrap();
    let mut f = dir.create(&format!("{}.tmp", manifest::file_name(2))).unwrap();
    f.write_all(b"half a manif").unwrap();
    let (_, cur) = ManifestStore::open(arc(&dir)).unwrap();
    assert_eq!(cur, Some(m(7)));
    assert_eq!(dir.list().unwrap(), vec![manifest::file_name(1)]);
}

#[test]
fn any_flipped_bit_in_the_current_manifest_refuses_with_file_and_offset() {
    let dir = MemDirectory::new(3);
    let (mut store, _) = ManifestStore::open(arc(&dir)).unwrap();
    store.commit(&m(1)).unwrap();
    store.commit(&m(2)).unwrap();
    let name = manifest::file_name(2);
    let len = dir.file_len(&name).unwrap() as usize;
    for byte in 0..len {
        let dir2 =
            crate::support::mem_with(4, &[(&manifest::file_name(1), &dir.read(&manifest::file_name(1)).unwrap())]);
        let mut bytes = dir.read(&name).unwrap();
        bytes[byte] ^= 0x04;
        let mut f = dir2.create(&name).unwrap();
        f.write_all(&bytes).unwrap();
        match ManifestStore::open(arc(&dir2)) {
            Err(Error::Corrupt { file, offset, .. }) => {
                assert!(file.ends_with(&name));
                assert!((offset as usize) < len);
            }
            other => panic!("byte {byte}: expected Corrupt, got {other:?}"),
        }
    }
}

/// Crash at every I/O step of appends + manifest swaps + WAL truncation behind the checkpoint. After reopening,
/// the manifest is at least the last acknowledged commit, and every acknowledged record is either covered by the
/// checkpoint or replayed from the WAL.
#[test]
fn crash_sweep_with_manifest_swaps() {
    let opts = WalOptions { durability: Durability::Fsync, max_file_size: 500 };
    let script = |dir: &MemDirectory, acked: &mut u64, committed: &mut u64| -> quiver_storage::Result<()> {
        let (w, _) = Wal::open(arc(dir), opts)?;
        let (mut store, _) = ManifestStore::open(arc(dir))?;
        for s in 1..=15u64 {
            w.append(s, &payload(s))?;
            *acked = s;
            if s % 5 == 0 {
                store.commit(&m(s - 2))?;
                *committed = s - 2;
                w.truncate_through(s - 2)?;
            }
        }
        Ok(())
    };
    let dir = MemDirectory::new(0);
    script(&dir, &mut 0, &mut 0).unwrap();
    let total = dir.ops();
    assert!(total > 40);
    for halt in 0..=total {
        for mode in [CrashMode::DropUnsynced, CrashMode::KeepRandomPrefix, CrashMode::TearLastSector] {
            let dir = MemDirectory::new(halt);
            dir.halt_after(halt);
            let (mut acked, mut committed) = (0, 0);
            let _ = script(&dir, &mut acked, &mut committed);
            dir.crash(mode);
            let (_, cur) = ManifestStore::open(arc(&dir)).unwrap_or_else(|e| panic!("halt {halt} {mode:?}: {e}"));
            let cp = cur.as_ref().map_or(0, |c| c.wal_checkpoint);
            assert!(cp >= committed, "halt {halt} {mode:?}: manifest at {cp}, committed {committed}");
            if let Some(c) = &cur {
                assert_eq!(c, &m(cp), "a manifest is whole or absent");
            }
            let (_, _, got) = open_all(arc(&dir), opts).unwrap_or_else(|e| panic!("halt {halt} {mode:?}: {e}"));
            let replayed: Vec<u64> = got.iter().map(|r| r.0).filter(|&s| s > cp).collect();
            assert_eq!(replayed, (cp + 1..=cp + replayed.len() as u64).collect::<Vec<_>>(), "halt {halt}");
            assert!(cp + replayed.len() as u64 >= acked, "halt {halt} {mode:?}: acked {acked}, have {cp}+{replayed:?}");
        }
    }
}

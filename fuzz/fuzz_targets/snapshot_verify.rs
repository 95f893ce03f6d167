//! Snapshot archive reader on an arbitrary file: `snapshot::verify`, then `snapshot::restore` into a fresh
//! `MemDirectory` (never a real directory: a hostile archive must not be able to write anywhere else anyway, and
//! this target checks exactly that).
//!
//! Input: a flags byte (bit 0: repair the entry and archive checksums and the trailer's length), then the archive.
//! Nothing may panic. A refused archive restores nothing; an accepted one restores exactly its entries — plain,
//! unique names, each file holding its entry's bytes — and nothing else.

#![no_main]

use libfuzzer_sys::fuzz_target;
use quiver_fuzz::{FIX_CHECKSUMS, contents, fix_snapshot, put, split_flags};
use quiver_storage::dir::check_name;
use quiver_storage::snapshot;
use quiver_storage::{Directory, Error, MemDirectory};

const ARCHIVE: &str = "snap-0000000000000001-0000.qsnap";

fuzz_target!(|data: &[u8]| {
    let (flags, rest) = split_flags(data);
    let mut bytes = rest.to_vec();
    if flags & FIX_CHECKSUMS != 0 {
        fix_snapshot(&mut bytes);
    }
    let archives = MemDirectory::new(0);
    put(&archives, ARCHIVE, &bytes);

    let verified = snapshot::verify(&archives, ARCHIVE);
    let target = MemDirectory::new(1);
    let restored = snapshot::restore(&archives, ARCHIVE, &target);
    assert_eq!(contents(&archives), vec![(ARCHIVE.to_owned(), bytes.clone())], "the archive was modified");

    let entries = match verified {
        Ok(entries) => entries,
        Err(e) => {
            match &e {
                Error::Corrupt { file, offset, .. } => {
                    assert_eq!(file, &archives.file_path(ARCHIVE));
                    assert!(*offset <= bytes.len() as u64, "error offset {offset} past the end ({})", bytes.len());
                }
                Error::UnsupportedVersion { .. } => {}
                other => panic!("unexpected error: {other}"),
            }
            let r = restored.expect_err("restore accepted an archive that verify refused");
            assert_eq!(r.to_string(), e.to_string());
            assert!(target.list().expect("list").is_empty(), "a refused archive wrote files");
            return;
        }
    };

    let names: Vec<String> = entries.iter().map(|e| e.name.clone()).collect();
    for e in &entries {
        check_name(&e.name).expect("verify accepted an entry name that is not a plain file name");
        assert!(!e.name.ends_with(".tmp"));
        let data = bytes.get(e.offset as usize..(e.offset + e.len) as usize).expect("entry lies in the archive");
        assert_eq!(crc32c::crc32c(data), e.crc);
    }
    let restored = match restored {
        Ok(r) => r,
        Err(e) => panic!("restore into an empty MemDirectory failed for an archive that verify accepted: {e}"),
    };
    assert_eq!(restored, names);
    let mut expected: Vec<(String, Vec<u8>)> = entries
        .iter()
        .map(|e| (e.name.clone(), bytes[e.offset as usize..(e.offset + e.len) as usize].to_vec()))
        .collect();
    expected.sort();
    assert_eq!(contents(&target), expected, "restore wrote other files or other bytes");
});

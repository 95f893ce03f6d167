//! Manifest reader on arbitrary bytes: `manifest::decode`, and `ManifestStore::open` on the same file.
//!
//! Input: a flags byte (bit 0: repair the checksum), then the manifest file. Nothing may panic. A manifest that
//! decodes re-encodes to exactly the same bytes (the format has one encoding per value), decodes again to the same
//! value, and is what `ManifestStore::open` returns for a directory holding it under its generation's name.

#![no_main]

use std::sync::Arc;

use libfuzzer_sys::fuzz_target;
use quiver_fuzz::{FIX_CHECKSUMS, fix_manifest, put, split_flags, u64_at};
use quiver_storage::manifest::{self, ManifestStore};
use quiver_storage::{Directory, Error, MemDirectory};

fuzz_target!(|data: &[u8]| {
    let (flags, rest) = split_flags(data);
    let mut bytes = rest.to_vec();
    if flags & FIX_CHECKSUMS != 0 {
        fix_manifest(&mut bytes);
    }
    // Named for the generation the header claims, so `ManifestStore::open` below reads the same file.
    let generation = u64_at(&bytes, 8).unwrap_or(1);
    let dir = MemDirectory::new(0);
    let name = manifest::file_name(generation);
    put(&dir, &name, &bytes);
    let path = dir.file_path(&name);
    let decoded = manifest::decode(&path, &bytes);
    if let Err(e) = &decoded {
        assert!(matches!(e, Error::Corrupt { .. } | Error::UnsupportedVersion { .. }), "unexpected error: {e}");
        if let Error::Corrupt { offset, .. } = e {
            assert!(*offset <= bytes.len() as u64, "error offset {offset} past the end ({})", bytes.len());
        }
    }

    let stored = ManifestStore::open(Arc::new(dir));
    match (&decoded, stored) {
        (Ok((m, g)), Ok((store, Some(current)))) => {
            assert_eq!(&current, m);
            assert_eq!(store.generation(), *g);
        }
        (Err(e1), Err(e2)) => assert_eq!(e1.to_string(), e2.to_string()),
        (d, s) => panic!("decode and ManifestStore::open disagree: {d:?} / {s:?}"),
    }

    let Ok((m, generation)) = decoded else { return };
    let encoded = manifest::encode(&m, generation).expect("a decoded manifest encodes");
    assert_eq!(encoded, bytes, "re-encoding changed the bytes");
    let (again, g) = manifest::decode(&path, &encoded).expect("a re-encoded manifest decodes");
    assert_eq!((again, g), (m, generation));
});

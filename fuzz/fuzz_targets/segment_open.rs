//! Segment reader on an arbitrary file: `segment::decode_footer`, `Segment::open`, every block, `verify`.
//!
//! Input: a flags byte (bit 0: repair checksums, bit 1: open under an id other than the header's), then the
//! segment file. Nothing may panic; an open segment's footer must describe in-bounds, aligned, ordered blocks,
//! every block read must return exactly its recorded length, and `verify` must succeed exactly when every block
//! reads.

#![no_main]

use libfuzzer_sys::fuzz_target;
use quiver_fuzz::{FIX_CHECKSUMS, fix_segment, put, split_flags, u64_at};
use quiver_storage::segment::{self, Compression, Segment};
use quiver_storage::{Directory, Error, MemDirectory};

fuzz_target!(|data: &[u8]| {
    let (flags, rest) = split_flags(data);
    let mut bytes = rest.to_vec();
    if flags & FIX_CHECKSUMS != 0 {
        fix_segment(&mut bytes);
    }
    let header_id = u64_at(&bytes, 8).unwrap_or(0);
    let id = if flags & 2 != 0 { header_id ^ 1 } else { header_id };
    let dir = MemDirectory::new(0);
    let name = segment::file_name(id);
    put(&dir, &name, &bytes);
    let path = dir.file_path(&name);

    let footer = segment::decode_footer(&path, &bytes);
    let opened = Segment::open(&dir, id);
    let seg = match (footer, opened) {
        (Ok((stored_id, blocks)), Ok(seg)) => {
            assert_eq!(stored_id, id);
            assert_eq!(seg.id(), id);
            assert_eq!(seg.blocks(), &blocks[..]);
            seg
        }
        (Ok((stored_id, _)), Err(e)) => {
            assert_ne!(stored_id, id, "decode_footer accepted what open refused: {e}");
            assert!(matches!(e, Error::Corrupt { offset: 8, .. }), "{e}");
            return;
        }
        (Err(e), Ok(_)) => panic!("open accepted what decode_footer refused: {e}"),
        (Err(e1), Err(e2)) => {
            assert_eq!(e1.to_string(), e2.to_string(), "open and decode_footer disagree");
            match e1 {
                Error::Corrupt { file, offset, .. } => {
                    assert_eq!(file, path);
                    assert!(offset <= bytes.len() as u64, "error offset {offset} past the end ({})", bytes.len());
                }
                Error::UnsupportedVersion { .. } => {}
                other => panic!("unexpected error: {other}"),
            }
            return;
        }
    };

    // The footer index describes blocks that lie in order, 64-byte aligned, between the header and the footer.
    let mut prev_end = segment::HEADER_LEN as u64;
    let footer_start = (bytes.len() - segment::TRAILER_LEN - seg.blocks().len() * segment::ENTRY_LEN) as u64;
    for b in seg.blocks() {
        assert!(b.offset >= prev_end && b.offset % 64 == 0, "misplaced block {b:?}");
        prev_end = b.offset + b.stored_len;
        assert!(prev_end <= footer_start, "block {b:?} runs into the footer at {footer_start}");
        if b.compression == Compression::None {
            assert_eq!(b.raw_len, b.stored_len);
        }
        assert!(b.raw_len <= segment::MAX_RAW_BLOCK);
    }

    let mut all_read = true;
    for (i, b) in seg.blocks().iter().enumerate() {
        match seg.stored_bytes(i) {
            Ok(stored) => {
                let start = b.offset as usize;
                assert_eq!(stored, &bytes[start..start + b.stored_len as usize]);
                assert_eq!(stored.as_ptr() as usize % 64, 0, "block {i} is not 64-byte aligned in memory");
            }
            Err(e) => assert!(matches!(e, Error::Corrupt { offset, .. } if offset == b.offset), "{e}"),
        }
        match seg.block(i) {
            Ok(raw) => assert_eq!(raw.len() as u64, b.raw_len, "block {i} has the wrong length"),
            Err(e) => {
                assert!(matches!(e, Error::Corrupt { offset, .. } if offset == b.offset), "{e}");
                all_read = false;
            }
        }
    }
    assert_eq!(seg.verify().is_ok(), all_read, "verify disagrees with reading every block");
    assert!(seg.block(seg.blocks().len()).is_err_and(|e| e.is_user_error()));
});

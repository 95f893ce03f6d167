//! Segment container: round trips, alignment, corruption detection, crash while writing.

use std::sync::Arc;

use proptest::prelude::*;
use quiver_storage::dir::remove_temp_files;
use quiver_storage::segment::{self, BlockKind, Compression, Segment, SegmentWriter};
use quiver_storage::{CrashMode, Directory, Error, FsDirectory, MemDirectory};

use crate::support::{arc, mem_with};

fn vectors(n: usize) -> Vec<u8> {
    (0..n).flat_map(|i| (i as f32 * 0.5).to_le_bytes()).collect()
}

fn payload_text() -> Vec<u8> {
    b"{\"title\": \"a payload that compresses well\"} ".repeat(200)
}

fn try_write_sample(dir: Arc<dyn Directory>, id: u64) -> quiver_storage::Result<String> {
    let mut w = SegmentWriter::create(dir, id)?;
    assert_eq!(w.add_block(BlockKind::Metadata, 0, b"meta")?, 0);
    assert_eq!(w.add_block(BlockKind::Vectors, 7, &vectors(1000))?, 1);
    assert_eq!(w.add_compressed_block(BlockKind::Payload, 0, &payload_text(), 3)?, 2);
    assert_eq!(w.add_block(BlockKind::Index, 1, &[])?, 3);
    w.finish()
}

fn write_sample(dir: Arc<dyn Directory>, id: u64) -> String {
    try_write_sample(dir, id).unwrap()
}

#[test]
fn round_trip_on_a_real_file_system_with_aligned_vectors() {
    let tmp = tempfile::tempdir().unwrap();
    let dir: Arc<dyn Directory> = Arc::new(FsDirectory::open(tmp.path()).unwrap());
    let name = write_sample(dir.clone(), 42);
    assert_eq!(name, segment::file_name(42));
    assert_eq!(segment::parse_file_name(&name), Some(42));
    assert_eq!(segment::parse_file_name("seg-42.qseg"), None);
    assert_eq!(segment::parse_file_name(&format!("{name}.tmp")), None);
    assert_eq!(dir.list().unwrap(), vec![name.clone()], "no temporary file left");
    let seg = Segment::open(dir.as_ref(), 42).unwrap();
    seg.verify().unwrap();
    assert_eq!(seg.id(), 42);
    let kinds: Vec<BlockKind> = seg.blocks().iter().map(|b| b.kind).collect();
    assert_eq!(kinds, [BlockKind::Metadata, BlockKind::Vectors, BlockKind::Payload, BlockKind::Index]);
    assert_eq!(&*seg.block(0).unwrap(), b"meta");
    let v = seg.stored_bytes(1).unwrap();
    assert_eq!(v, &vectors(1000)[..]);
    assert_eq!(v.as_ptr() as usize % 64, 0, "vectors block is 64-byte aligned in memory");
    assert_eq!(seg.blocks()[1].tag, 7);
    let p = &seg.blocks()[2];
    assert_eq!(p.compression, Compression::Zstd);
    assert!(p.stored_len < p.raw_len / 5, "payload was compressed");
    assert_eq!(&*seg.block(2).unwrap(), &payload_text()[..]);
    assert!(seg.block(3).unwrap().is_empty());
    assert!(seg.block(4).unwrap_err().is_user_error());
    // Segments are immutable: the same id cannot be written again.
    assert!(SegmentWriter::create(dir, 42).unwrap_err().is_user_error());
}

#[test]
fn a_flipped_bit_anywhere_is_detected_with_file_and_offset() {
    let dir = MemDirectory::new(1);
    let name = write_sample(arc(&dir), 1);
    let bytes = dir.read(&name).unwrap();
    let seg = Segment::open(&dir, 1).unwrap();
    let blocks = seg.blocks().to_vec();
    drop(seg);
    // One bit in each block: opening stays cheap and succeeds, reading the block refuses, verify() refuses.
    for (i, b) in blocks.iter().enumerate().filter(|(_, b)| b.stored_len > 0) {
        let mut bad = bytes.clone();
        bad[(b.offset + b.stored_len / 2) as usize] ^= 0x20;
        let d = mem_with(2, &[(&name, &bad)]);
        let seg = Segment::open(&d, 1).unwrap();
        for e in [seg.block(i).unwrap_err(), seg.verify().unwrap_err()] {
            match e {
                Error::Corrupt { file, offset, .. } => {
                    assert!(file.ends_with(&name));
                    assert_eq!(offset, b.offset);
                }
                other => panic!("block {i}: {other}"),
            }
        }
        // Other blocks are still served.
        let other = (i + 1) % 3;
        if other != i {
            seg.block(other).unwrap();
        }
    }
    // Header, footer index and trailer bytes: open refuses.
    let footer = blocks.last().map_or(0, |b| (b.offset + b.stored_len) as usize);
    for at in [0, 9, 61, footer, footer + 17, bytes.len() - 30, bytes.len() - 1] {
        let mut bad = bytes.clone();
        bad[at] ^= 0x01;
        let d = mem_with(3, &[(&name, &bad)]);
        assert!(matches!(Segment::open(&d, 1), Err(Error::Corrupt { .. })), "flip at {at}");
    }
    // Any truncation: open refuses.
    for cut in (0..bytes.len()).step_by(97) {
        let d = mem_with(4, &[(&name, &bytes[..cut])]);
        assert!(matches!(Segment::open(&d, 1), Err(Error::Corrupt { .. })), "cut at {cut}");
    }
}

#[test]
fn crash_while_writing_leaves_no_half_segment() {
    let dir = MemDirectory::new(0);
    write_sample(arc(&dir), 5);
    let total = dir.ops();
    for halt in 0..=total {
        for mode in [CrashMode::DropUnsynced, CrashMode::KeepRandomPrefix, CrashMode::TearLastSector] {
            let dir = MemDirectory::new(halt);
            dir.halt_after(halt);
            let done = try_write_sample(arc(&dir), 5).is_ok();
            dir.crash(mode);
            remove_temp_files(&dir).unwrap();
            match Segment::open(&dir, 5) {
                Ok(seg) => seg.verify().unwrap(),
                Err(Error::NotFound { .. }) => assert!(!done, "halt {halt}: a finished segment vanished"),
                Err(e) => panic!("halt {halt} {mode:?}: {e}"),
            }
            assert!(dir.list().unwrap().iter().all(|n| !n.ends_with(".tmp")));
        }
    }
}

#[test]
fn dropping_an_unfinished_writer_removes_its_temp_file() {
    let dir = MemDirectory::new(6);
    let mut w = SegmentWriter::create(arc(&dir), 9).unwrap();
    w.add_block(BlockKind::Index, 0, b"x").unwrap();
    drop(w);
    assert!(dir.list().unwrap().is_empty());
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn blocks_round_trip(blocks in proptest::collection::vec(
        (0u8..4, any::<bool>(), any::<u32>(), proptest::collection::vec(any::<u8>(), 0..500)), 0..8)) {
        let dir = MemDirectory::new(7);
        let mut w = SegmentWriter::create(arc(&dir), 3).unwrap();
        let kinds = [BlockKind::Vectors, BlockKind::Index, BlockKind::Payload, BlockKind::Metadata];
        for (k, compress, tag, bytes) in &blocks {
            if *compress {
                w.add_compressed_block(kinds[*k as usize], *tag, bytes, 1).unwrap();
            } else {
                w.add_block(kinds[*k as usize], *tag, bytes).unwrap();
            }
        }
        w.finish().unwrap();
        let seg = Segment::open(&dir, 3).unwrap();
        seg.verify().unwrap();
        prop_assert_eq!(seg.blocks().len(), blocks.len());
        for (i, (k, _, tag, bytes)) in blocks.iter().enumerate() {
            prop_assert_eq!(seg.blocks()[i].kind, kinds[*k as usize]);
            prop_assert_eq!(seg.blocks()[i].tag, *tag);
            prop_assert_eq!(&*seg.block(i).unwrap(), &bytes[..]);
            prop_assert_eq!(seg.blocks()[i].offset % 64, 0);
        }
    }

    /// The stable-toolchain stand-in for a fuzz target: arbitrary bytes, and mutations of a valid segment, never
    /// panic the reader.
    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..400),
                                   flips in proptest::collection::vec((any::<usize>(), any::<u8>()), 1..4)) {
        let d = mem_with(8, &[(&segment::file_name(1), &bytes)]);
        if let Ok(seg) = Segment::open(&d, 1) {
            let _ = seg.verify();
        }
        let d = MemDirectory::new(9);
        write_sample(arc(&d), 1);
        let mut good = d.read(&segment::file_name(1)).unwrap();
        for (at, x) in flips {
            let n = good.len();
            good[at % n] ^= x;
        }
        let d2 = mem_with(10, &[(&segment::file_name(1), &good)]);
        if let Ok(seg) = Segment::open(&d2, 1) {
            let _ = seg.verify();
        }
    }
}

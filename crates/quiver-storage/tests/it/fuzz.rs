//! Inputs found by the cargo-fuzz targets in `fuzz/` (nightly only), kept here as regression tests that run on the
//! stable toolchain with the rest of the suite. Each names the target that found it.

use quiver_storage::segment::{self, BlockKind, Compression, Segment, SegmentWriter};
use quiver_storage::snapshot::{self, SnapshotFile};
use quiver_storage::{Directory, Error, MemDirectory};

use crate::support::{arc, mem_with};

/// `segment_open` (minimised, checksums repaired): segment 3 with one zstd block of 19 stored bytes (a frame whose
/// header says 300 bytes, its body damaged), while the footer (checksummed) says the block's raw length is
/// 2,147,483,948 bytes. Reading the block used to allocate that claimed length up front.
const SEGMENT_CLAIMING_2_GIB: &[&str] = &[
    "51534547010000000300000000000000011100000000000000000000000000000000000000000000000000ffffff2d00",
    "000000000000000000000000a39ef72228b52ffd602c00004d001005050100272ac00202010000090000004000000000",
    "00000013000000000000002c01008000000000148debca00000000530000000000000001000000ac1ce99e0100000000",
    "00000048a074f751534745",
];

/// The fuzzer's input had junk in the header's reserved bytes, which the reader (since) refuses before reaching
/// the block: zero them and repair the header checksum so the input still tests what it was found for.
fn with_zero_reserved(mut b: Vec<u8>) -> Vec<u8> {
    b[16..60].fill(0);
    let crc = crc32c::crc32c(&b[0..60]);
    put_u32(&mut b, 60, crc);
    b
}

/// Set (to anything) in the child process that reads the blocks under a memory limit.
const CHILD_ENV: &str = "QUIVER_STORAGE_FUZZ_ALLOC_CHILD";

fn hex(lines: &[&str]) -> Vec<u8> {
    let s: String = lines.concat();
    (0..s.len()).step_by(2).map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap()).collect()
}

fn put_u32(b: &mut [u8], at: usize, v: u32) {
    b[at..at + 4].copy_from_slice(&v.to_le_bytes());
}

/// Segment 4 made by the writer, one zstd block holding 3,000 bytes (about 20 stored), with the footer's raw
/// length replaced by `raw_len` and the footer and trailer checksums recomputed: a file only a crafted footer can
/// produce.
fn segment_claiming(raw_len: u64) -> Vec<u8> {
    let dir = MemDirectory::new(3);
    let mut w = SegmentWriter::create(arc(&dir), 4).unwrap();
    w.add_compressed_block(BlockKind::Index, 0, &[5u8; 3000], 1).unwrap();
    let mut b = dir.read(&w.finish().unwrap()).unwrap();
    let t = b.len() - segment::TRAILER_LEN;
    let footer = t - segment::ENTRY_LEN;
    b[footer + 24..footer + 32].copy_from_slice(&raw_len.to_le_bytes());
    let crc = crc32c::crc32c(&b[footer..t]);
    put_u32(&mut b, t + 12, crc);
    let crc = crc32c::crc32c(&b[t..t + 24]);
    put_u32(&mut b, t + 24, crc);
    b
}

/// Opens segment `id` from `bytes` (the footer must check out) and returns the error reading its block 0.
fn read_block_0(id: u64, bytes: &[u8], raw_len: u64) -> String {
    let name = segment::file_name(id);
    let dir = mem_with(1, &[(&name, bytes)]);
    let seg = Segment::open(&dir, id).unwrap();
    let b = seg.blocks()[0];
    assert_eq!((b.compression, b.offset, b.raw_len), (Compression::Zstd, 64, raw_len));
    let e = seg.block(0).unwrap_err();
    assert!(matches!(seg.verify(), Err(Error::Corrupt { offset: 64, .. })));
    match e {
        Error::Corrupt { file, offset, detail } => {
            assert!(file.ends_with(&name), "{}", file.display());
            assert_eq!(offset, 64);
            detail
        }
        other => panic!("expected Corrupt, got {other}"),
    }
}

fn read_claimed_blocks() {
    read_block_0(3, &with_zero_reserved(hex(SEGMENT_CLAIMING_2_GIB)), 2_147_483_948);
    let detail = read_block_0(4, &segment_claiming(segment::MAX_RAW_BLOCK), segment::MAX_RAW_BLOCK);
    assert_eq!(detail, "block 0: index says 4294967296 bytes, frame decodes to 3000");
}

#[test]
fn zstd_block_claiming_a_huge_raw_length_is_corrupt() {
    read_claimed_blocks();
    // Claiming less than the frame holds is caught too: past what the stored bytes back, after reading one byte
    // past the claim; within it, by the one-call decoder running out of room.
    let detail = read_block_0(4, &segment_claiming(2999), 2999);
    assert_eq!(detail, "block 0: index says 2999 bytes, frame decodes to more than that");
    let detail = read_block_0(4, &segment_claiming(100), 100);
    assert!(detail.starts_with("block 0: zstd frame does not decode"), "{detail}");
    // The unpatched segment reads back.
    let dir = mem_with(2, &[(&segment::file_name(4), &segment_claiming(3000))]);
    assert_eq!(&*Segment::open(&dir, 4).unwrap().block(0).unwrap(), &[5u8; 3000][..]);
}

/// Entry point of the child process. Does nothing unless `CHILD_ENV` is set (as in a normal test run).
#[test]
fn child_reads_the_claimed_blocks() {
    if std::env::var_os(CHILD_ENV).is_some() {
        read_claimed_blocks();
    }
}

/// The same reads in a child process limited to 1 GiB of address space: they must not even ask for the claimed
/// 2 and 4 GiB (which a test process would otherwise get as untouched virtual memory, hiding the bug).
#[cfg(target_os = "linux")]
#[test]
fn zstd_block_claiming_a_huge_raw_length_is_not_allocated() {
    let exe = std::env::current_exe().unwrap();
    let out = std::process::Command::new("sh")
        .arg("-c")
        .arg("ulimit -v 1048576 && exec \"$0\" --exact fuzz::child_reads_the_claimed_blocks --test-threads=1")
        .arg(&exe)
        .env(CHILD_ENV, "1")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.contains("1 passed"),
        "child failed ({}):\n{stdout}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
}

/// An archive with one entry named `name` holding `data`, checksums correct (layout in docs/format.md).
fn archive_with(name: &str, data: &[u8]) -> Vec<u8> {
    let mut out = b"QSNP".to_vec();
    out.extend_from_slice(&[1, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0]);
    out.extend_from_slice(&(name.len() as u16).to_le_bytes());
    out.extend_from_slice(name.as_bytes());
    out.extend_from_slice(&(data.len() as u64).to_le_bytes());
    out.extend_from_slice(&crc32c::crc32c(data).to_le_bytes());
    out.extend_from_slice(data);
    let (body, crc) = (out.len() as u64, crc32c::crc32c(&out));
    out.extend_from_slice(&body.to_le_bytes());
    out.extend_from_slice(&crc.to_le_bytes());
    out.extend_from_slice(b"QSNE");
    out
}

/// `snapshot_verify` (its "verify accepts ⇒ restore into an empty directory succeeds" check): an entry name of
/// 252 to 255 bytes is a valid file name, so verify accepted it, but restore writes `<name>.tmp` first, which is
/// too long; the restore failed after writing temporary files for the entries before it, and `create` wrote such
/// archives. Now verify refuses the entry (at its name's offset) before anything is written, and create refuses
/// the file.
#[test]
fn entry_names_too_long_for_the_restore_temp_name_are_refused() {
    let archive_name = "snap-1-1.qsnap";
    for len in [252, 255] {
        let long = "a".repeat(len);
        let d = mem_with(30, &[(archive_name, &archive_with(&long, b"hello"))]);
        match snapshot::verify(&d, archive_name).unwrap_err() {
            Error::Corrupt { file, offset, detail } => {
                assert!(file.ends_with(archive_name));
                assert_eq!(offset, 18, "the entry's name");
                assert!(detail.contains("longer than 251 bytes"), "{detail}");
            }
            other => panic!("{len}: expected Corrupt, got {other}"),
        }
        let target = MemDirectory::new(31);
        assert!(matches!(snapshot::restore(&d, archive_name, &target), Err(Error::Corrupt { .. })));
        assert!(target.list().unwrap().is_empty(), "{len}: nothing written");

        let src = mem_with(32, &[(&long, b"hello")]);
        let e = snapshot::create(&src, &[SnapshotFile::whole(long.clone())], &MemDirectory::new(33)).unwrap_err();
        assert!(e.is_user_error() && e.to_string().contains("longer than 251 bytes"), "{e}");
    }
    // The longest name that fits round-trips.
    let longest = "b".repeat(snapshot::MAX_ENTRY_NAME_LEN);
    let src = mem_with(34, &[(&longest, b"hello")]);
    let archives = MemDirectory::new(35);
    let name = snapshot::create(&src, &[SnapshotFile::whole(longest.clone())], &archives).unwrap();
    let target = MemDirectory::new(36);
    assert_eq!(snapshot::restore(&archives, &name, &target).unwrap(), vec![longest.clone()]);
    assert_eq!(target.read(&longest).unwrap(), b"hello");
}

/// A segment made by the writer with one byte of a flags or reserved field set and every checksum repaired: the
/// reader refuses it at that byte (docs/format.md: flags and reserved fields are zero; readers refuse others).
#[test]
fn non_zero_flags_and_reserved_bytes_are_refused_at_their_offset() {
    let dir = MemDirectory::new(40);
    let mut w = SegmentWriter::create(arc(&dir), 5).unwrap();
    w.add_block(BlockKind::Vectors, 0, &[1u8; 100]).unwrap();
    let good = dir.read(&w.finish().unwrap()).unwrap();
    let t = good.len() - segment::TRAILER_LEN;
    let footer = t - segment::ENTRY_LEN;
    let repair = |b: &mut Vec<u8>| {
        let crc = crc32c::crc32c(&b[0..60]);
        put_u32(b, 60, crc);
        let crc = crc32c::crc32c(&b[footer..t]);
        put_u32(b, t + 12, crc);
        let crc = crc32c::crc32c(&b[t..t + 24]);
        put_u32(b, t + 24, crc);
    };
    let name = segment::file_name(5);
    assert!(Segment::open(&mem_with(41, &[(&name, &good)]), 5).is_ok());
    for (at, what) in [
        (6, "flags"),
        (20, "reserved header"),
        (footer + 2, "reserved footer"),
        (footer + 37, "reserved footer"),
        (t + 18, "reserved trailer"),
        (t + 16, "trailer version"),
    ] {
        let mut b = good.clone();
        b[at] ^= 0x40;
        repair(&mut b);
        match Segment::open(&mem_with(42, &[(&name, &b)]), 5) {
            Err(Error::Corrupt { offset, detail, .. }) => {
                assert_eq!(offset, at as u64, "{what}: {detail}");
                assert!(detail.contains(what.split(' ').next_back().unwrap()), "{what}: {detail}");
            }
            other => panic!("{what} at {at}: expected Corrupt, got {:?}", other.map(|_| ())),
        }
    }

    let archive_name = "snap-1-2.qsnap";
    let good = archive_with("seg", b"data");
    assert!(snapshot::verify(&mem_with(43, &[(archive_name, &good)]), archive_name).is_ok());
    for (at, what) in [(6, "flags"), (13, "reserved")] {
        let mut b = good.clone();
        b[at] = 1;
        let body = b.len() - 16;
        let crc = crc32c::crc32c(&b[..body]);
        put_u32(&mut b, body + 8, crc);
        match snapshot::verify(&mem_with(44, &[(archive_name, &b)]), archive_name) {
            Err(Error::Corrupt { offset, detail, .. }) => {
                assert_eq!(offset, at as u64, "{what}: {detail}");
                assert!(detail.contains(what), "{what}: {detail}");
            }
            other => panic!("{what}: expected Corrupt, got {:?}", other.map(|_| ())),
        }
    }
}

//! Writes the seed corpora `corpus/<target>/seed-*`: small valid files made by the storage crate's own writers,
//! framed as each target reads its input (`src/lib.rs`). Run from anywhere with `fuzz/make-seeds.sh`, or
//! `cargo run --example make_seeds` in `fuzz/`. Deterministic except for the snapshot archive names, which are not
//! part of an archive's bytes.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use quiver_fuzz::{FIX_CHECKSUMS, NAME_FROM_HEADER, encode_wal_files};
use quiver_storage::manifest::{self, Manifest, ManifestStore};
use quiver_storage::segment::{BlockKind, SegmentWriter};
use quiver_storage::snapshot::{self, SnapshotFile};
use quiver_storage::{Directory, Durability, MemDirectory, Result, Wal, WalOptions};

fn main() -> Result<()> {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("corpus");
    wal_seeds(&root.join("wal_scan"))?;
    segment_seeds(&root.join("segment_open"))?;
    manifest_seeds(&root.join("manifest_decode"))?;
    snapshot_seeds(&root.join("snapshot_verify"))?;
    Ok(())
}

fn write_seed(dir: &Path, name: &str, bytes: &[u8]) {
    std::fs::create_dir_all(dir).expect("create the corpus directory");
    let path = dir.join(format!("seed-{name}"));
    std::fs::write(&path, bytes).expect("write a seed");
    println!("{} ({} bytes)", path.display(), bytes.len());
}

/// `flags` followed by `body`.
fn with_flags(flags: u8, body: &[u8]) -> Vec<u8> {
    let mut out = vec![flags];
    out.extend_from_slice(body);
    out
}

fn payload(seq: u64) -> Vec<u8> {
    (0..(seq % 7 + 1) * 3).map(|i| (seq + i) as u8).collect()
}

/// The WAL files of `dir`, oldest first, each framed to be named after its header.
fn framed_wal(dir: &MemDirectory) -> Result<Vec<u8>> {
    let files: Vec<Vec<u8>> = dir.list()?.iter().map(|n| dir.read(n)).collect::<Result<_>>()?;
    Ok(encode_wal_files(&files.iter().map(|b| (NAME_FROM_HEADER, &b[..])).collect::<Vec<_>>()))
}

/// A WAL written by the real writer under `durability`, rotating at `max_file_size`.
fn wal_dir(durability: Durability, max_file_size: u64, seqs: impl Iterator<Item = u64>) -> Result<MemDirectory> {
    let dir = MemDirectory::new(0);
    let (wal, _) = Wal::open(Arc::new(dir.clone()), WalOptions { durability, max_file_size })?;
    for seq in seqs {
        wal.append(seq, &payload(seq))?;
    }
    wal.sync()?;
    Ok(dir)
}

fn wal_seeds(out: &Path) -> Result<()> {
    // One file, each record fsynced on its own (`back` = 0).
    let fsync = wal_dir(Durability::Fsync, 64 << 20, 1..=6)?;
    write_seed(out, "fsync", &with_flags(0, &framed_wal(&fsync)?));
    // Three files by rotation, sequence numbers with gaps; replay after the middle.
    let rotated = wal_dir(Durability::Fsync, 120, (1..=8).map(|i| i * 3))?;
    write_seed(out, "rotated", &with_flags(FIX_CHECKSUMS | (2 << 1), &framed_wal(&rotated)?));
    // No fsync per record: `back` counts the bytes since the last sync.
    let unsynced = wal_dir(Durability::None, 64 << 20, 10..=14)?;
    write_seed(out, "none", &with_flags(0, &framed_wal(&unsynced)?));
    // Group commit (records written by one thread, so one batch each, but with the Batch framing).
    let batch = wal_dir(Durability::Batch { max_delay: Duration::ZERO }, 64 << 20, 1..=4)?;
    write_seed(out, "batch", &with_flags(FIX_CHECKSUMS, &framed_wal(&batch)?));
    // A torn tail: the last record cut short, which recovery truncates.
    let files: Vec<Vec<u8>> = fsync.list()?.iter().map(|n| fsync.read(n)).collect::<Result<_>>()?;
    let torn = &files[0][..files[0].len() - 5];
    write_seed(out, "torn-tail", &with_flags(0, &encode_wal_files(&[(NAME_FROM_HEADER, torn)])));
    // A torn header after a complete file: recovery removes the newest file.
    let header = &files[0][..12];
    let framed = encode_wal_files(&[(NAME_FROM_HEADER, &files[0]), (200, header)]);
    write_seed(out, "torn-header", &with_flags(0, &framed));
    Ok(())
}

fn segment_seeds(out: &Path) -> Result<()> {
    let dir = MemDirectory::new(0);
    let arc: Arc<dyn Directory> = Arc::new(dir.clone());
    let mut w = SegmentWriter::create(arc.clone(), 1)?;
    w.add_block(BlockKind::Metadata, 0, b"meta")?;
    let vectors: Vec<u8> = (0..24).flat_map(|i| (i as f32 * 0.25).to_le_bytes()).collect();
    w.add_block(BlockKind::Vectors, 7, &vectors)?;
    w.add_compressed_block(BlockKind::Payload, 0, &b"{\"k\": \"a compressible payload\"} ".repeat(20), 3)?;
    w.add_block(BlockKind::Index, 1, &[])?;
    let name = w.finish()?;
    write_seed(out, "four-blocks", &with_flags(0, &dir.read(&name)?));
    let name = SegmentWriter::create(arc.clone(), 2)?.finish()?;
    write_seed(out, "empty", &with_flags(FIX_CHECKSUMS, &dir.read(&name)?));
    let mut w = SegmentWriter::create(arc, 3)?;
    w.add_compressed_block(BlockKind::Index, 9, &[5u8; 300], 1)?;
    let name = w.finish()?;
    write_seed(out, "zstd", &with_flags(FIX_CHECKSUMS, &dir.read(&name)?));
    Ok(())
}

fn manifest_seeds(out: &Path) -> Result<()> {
    let empty = manifest::encode(&Manifest::default(), 1)?;
    write_seed(out, "empty", &with_flags(0, &empty));
    let m = Manifest { wal_checkpoint: 42, segments: vec![1, 5, 9], user: b"engine metadata".to_vec() };
    write_seed(out, "segments", &with_flags(FIX_CHECKSUMS, &manifest::encode(&m, 7)?));
    // One committed through the store, as the engine writes it.
    let dir = MemDirectory::new(0);
    let (mut store, _) = ManifestStore::open(Arc::new(dir.clone()))?;
    let g = store.commit(&Manifest { wal_checkpoint: 3, segments: vec![2], user: vec![] })?;
    write_seed(out, "committed", &with_flags(0, &dir.read(&manifest::file_name(g))?));
    Ok(())
}

fn snapshot_seeds(out: &Path) -> Result<()> {
    let src = MemDirectory::new(0);
    let wal = wal_dir(Durability::Fsync, 64 << 20, 1..=3)?;
    for name in wal.list()? {
        quiver_fuzz::put(&src, &name, &wal.read(&name)?);
    }
    let (mut store, _) = ManifestStore::open(Arc::new(src.clone()))?;
    let g = store.commit(&Manifest { wal_checkpoint: 1, segments: vec![], user: b"u".to_vec() })?;
    let mut files: Vec<SnapshotFile> = wal.list()?.into_iter().map(SnapshotFile::whole).collect();
    files.push(SnapshotFile::whole(manifest::file_name(g)));
    let archives = MemDirectory::new(1);
    let name = snapshot::create(&src, &files, &archives)?;
    write_seed(out, "wal-and-manifest", &with_flags(0, &archives.read(&name)?));
    // A prefix of a file (as for a WAL still being appended to), and an empty archive.
    let name = snapshot::create(&src, &[SnapshotFile { name: files[0].name.clone(), len: Some(30) }], &archives)?;
    write_seed(out, "prefix", &with_flags(FIX_CHECKSUMS, &archives.read(&name)?));
    let name = snapshot::create(&src, &[], &archives)?;
    write_seed(out, "empty", &with_flags(0, &archives.read(&name)?));
    Ok(())
}

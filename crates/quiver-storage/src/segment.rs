//! Segment container: an immutable file of typed, checksummed blocks with a footer index.
//!
//! [`SegmentWriter`] streams blocks into `seg-<id>.qseg.tmp`, each starting at a 64-byte-aligned offset (so a
//! vectors block read through a memory map is 64-byte aligned in memory), then writes the footer index and trailer,
//! fsyncs, renames to `seg-<id>.qseg` and syncs the directory. [`Segment::open`] maps the file and checks only the
//! header, trailer and footer index (cheap); each block's checksum is checked the first time it is read, and
//! [`Segment::verify`] checks every block (including decompression). Layout: `docs/format.md`.

use std::borrow::Cow;
use std::io::Read;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use crate::dir::{Directory, TEMP_SUFFIX, WritableFile};
use crate::error::{Error, Result};
use crate::mapped::{ALIGN, Mapped};
use crate::wal::record::{u32_at, u64_at};

/// Magic at the start of a segment.
pub const MAGIC: [u8; 4] = *b"QSEG";
/// Magic at the very end of a segment.
pub const END_MAGIC: [u8; 4] = *b"QSGE";
/// Segment format version written by this build.
pub const VERSION: u16 = 1;
/// Bytes in the header.
pub const HEADER_LEN: usize = 64;
/// Bytes in the trailer.
pub const TRAILER_LEN: usize = 32;
/// Bytes in one footer index entry.
pub const ENTRY_LEN: usize = 40;
/// Largest decompressed size of one block.
pub const MAX_RAW_BLOCK: u64 = 4 << 30;
/// Most blocks in one segment.
pub const MAX_BLOCKS: u32 = 1 << 20;
/// Reading a compressed block allocates up front at most this many times its stored length (beyond that the buffer
/// grows with the bytes actually decoded), so a footer claiming a huge raw length cannot make a read allocate it.
const PREALLOC_RATIO: u64 = 16;

/// What a block holds (the engine decides the bytes inside).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum BlockKind {
    /// Vector data, stored uncompressed and aligned for zero-copy reads.
    Vectors,
    /// Serialised index bytes.
    Index,
    /// Payloads (usually zstd-compressed).
    Payload,
    /// Metadata.
    Metadata,
}

impl BlockKind {
    fn code(self) -> u8 {
        match self {
            BlockKind::Vectors => 1,
            BlockKind::Index => 2,
            BlockKind::Payload => 3,
            BlockKind::Metadata => 4,
        }
    }

    fn from_code(c: u8) -> Option<BlockKind> {
        Some(match c {
            1 => BlockKind::Vectors,
            2 => BlockKind::Index,
            3 => BlockKind::Payload,
            4 => BlockKind::Metadata,
            _ => return None,
        })
    }
}

/// How a block's bytes are stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Compression {
    /// As given.
    None,
    /// A zstd frame.
    Zstd,
}

/// One footer index entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BlockInfo {
    /// What the block holds.
    pub kind: BlockKind,
    /// How it is stored.
    pub compression: Compression,
    /// Caller-defined tag (e.g. which index or field).
    pub tag: u32,
    /// File offset of the stored bytes (a multiple of 64).
    pub offset: u64,
    /// Stored length.
    pub stored_len: u64,
    /// Length after decompression.
    pub raw_len: u64,
    /// CRC32C of the stored bytes.
    pub crc: u32,
}

/// File name of segment `id`.
pub fn file_name(id: u64) -> String {
    format!("seg-{id:020}.qseg")
}

/// The segment id a file name stands for, or `None` if it is not a segment file name (`seg-<20 digits>.qseg`).
pub fn parse_file_name(name: &str) -> Option<u64> {
    let digits = name.strip_prefix("seg-")?.strip_suffix(".qseg")?;
    (digits.len() == 20 && digits.bytes().all(|b| b.is_ascii_digit())).then(|| digits.parse().ok())?
}

/// Builds one segment. Dropping it unfinished removes its temporary file (best effort; a leftover is ignored by
/// readers and removed by [`crate::dir::remove_temp_files`]).
#[derive(Debug)]
pub struct SegmentWriter {
    dir: Arc<dyn Directory>,
    id: u64,
    tmp: String,
    file: Option<Box<dyn WritableFile>>,
    blocks: Vec<BlockInfo>,
}

impl SegmentWriter {
    /// Starts segment `id` in `dir`. Fails if that segment already exists (segments are immutable).
    pub fn create(dir: Arc<dyn Directory>, id: u64) -> Result<SegmentWriter> {
        let name = file_name(id);
        if dir.exists(&name)? {
            return Err(Error::InvalidArgument { name: "id", detail: format!("segment {id} already exists ({name})") });
        }
        let tmp = format!("{name}{TEMP_SUFFIX}");
        let mut file = dir.create(&tmp)?;
        file.write_all(&encode_header(id))?;
        Ok(SegmentWriter { dir, id, tmp, file: Some(file), blocks: Vec::new() })
    }

    /// Adds an uncompressed block; returns its index.
    pub fn add_block(&mut self, kind: BlockKind, tag: u32, bytes: &[u8]) -> Result<usize> {
        self.push(kind, tag, Compression::None, bytes, bytes.len() as u64)
    }

    /// Adds a block stored as a zstd frame at `level`; returns its index.
    pub fn add_compressed_block(&mut self, kind: BlockKind, tag: u32, bytes: &[u8], level: i32) -> Result<usize> {
        if bytes.len() as u64 > MAX_RAW_BLOCK {
            return Err(Error::TooLarge { what: "segment block", len: bytes.len() as u64, max: MAX_RAW_BLOCK });
        }
        let stored = zstd::bulk::compress(bytes, level).map_err(|e| Error::io(self.dir.file_path(&self.tmp), e))?;
        self.push(kind, tag, Compression::Zstd, &stored, bytes.len() as u64)
    }

    fn push(
        &mut self,
        kind: BlockKind,
        tag: u32,
        compression: Compression,
        stored: &[u8],
        raw_len: u64,
    ) -> Result<usize> {
        if self.blocks.len() >= MAX_BLOCKS as usize {
            return Err(Error::TooLarge {
                what: "segment block count",
                len: self.blocks.len() as u64 + 1,
                max: MAX_BLOCKS.into(),
            });
        }
        let file = self.file.as_mut().ok_or_else(finished)?;
        let pad = (ALIGN - (file.size() as usize % ALIGN)) % ALIGN;
        file.write_all(&[0u8; ALIGN][..pad])?;
        let offset = file.size();
        file.write_all(stored)?;
        self.blocks.push(BlockInfo {
            kind,
            compression,
            tag,
            offset,
            stored_len: stored.len() as u64,
            raw_len,
            crc: crc32c::crc32c(stored),
        });
        Ok(self.blocks.len() - 1)
    }

    /// Writes the footer and trailer, fsyncs, renames into place and syncs the directory. Returns the file name.
    pub fn finish(mut self) -> Result<String> {
        let mut file = self.file.take().ok_or_else(finished)?;
        let footer_offset = file.size();
        let mut footer = Vec::with_capacity(self.blocks.len() * ENTRY_LEN + TRAILER_LEN);
        for b in &self.blocks {
            encode_entry(&mut footer, b);
        }
        let footer_crc = crc32c::crc32c(&footer);
        let mut trailer = [0u8; TRAILER_LEN];
        trailer[0..8].copy_from_slice(&footer_offset.to_le_bytes());
        trailer[8..12].copy_from_slice(&(self.blocks.len() as u32).to_le_bytes());
        trailer[12..16].copy_from_slice(&footer_crc.to_le_bytes());
        trailer[16..18].copy_from_slice(&VERSION.to_le_bytes());
        let crc = crc32c::crc32c(&trailer[0..24]);
        trailer[24..28].copy_from_slice(&crc.to_le_bytes());
        trailer[28..32].copy_from_slice(&END_MAGIC);
        footer.extend_from_slice(&trailer);
        file.write_all(&footer)?;
        file.sync()?;
        drop(file);
        let name = file_name(self.id);
        self.dir.rename(&self.tmp, &name)?;
        self.dir.sync_dir()?;
        Ok(name)
    }
}

impl Drop for SegmentWriter {
    fn drop(&mut self) {
        if self.file.take().is_some() {
            // Unfinished: the temporary file is garbage. Failure to remove it is harmless (see type docs).
            let _ = self.dir.remove(&self.tmp);
        }
    }
}

fn finished() -> Error {
    Error::InvalidArgument { name: "segment writer", detail: "already finished".into() }
}

fn encode_header(id: u64) -> [u8; HEADER_LEN] {
    let mut h = [0u8; HEADER_LEN];
    h[0..4].copy_from_slice(&MAGIC);
    h[4..6].copy_from_slice(&VERSION.to_le_bytes());
    h[8..16].copy_from_slice(&id.to_le_bytes());
    let crc = crc32c::crc32c(&h[0..60]);
    h[60..64].copy_from_slice(&crc.to_le_bytes());
    h
}

fn encode_entry(out: &mut Vec<u8>, b: &BlockInfo) {
    out.push(b.kind.code());
    out.push(match b.compression {
        Compression::None => 0,
        Compression::Zstd => 1,
    });
    out.extend_from_slice(&[0, 0]);
    out.extend_from_slice(&b.tag.to_le_bytes());
    out.extend_from_slice(&b.offset.to_le_bytes());
    out.extend_from_slice(&b.stored_len.to_le_bytes());
    out.extend_from_slice(&b.raw_len.to_le_bytes());
    out.extend_from_slice(&b.crc.to_le_bytes());
    out.extend_from_slice(&[0; 4]);
}

/// Checks header, trailer and footer index of a whole segment image; returns the segment id and its blocks.
/// Never panics, never allocates more than the footer's size.
pub fn decode_footer(path: &std::path::Path, b: &[u8]) -> Result<(u64, Vec<BlockInfo>)> {
    let bad = |offset: usize, detail: String| Error::corrupt(path, offset as u64, detail);
    if b.len() < HEADER_LEN + TRAILER_LEN {
        return Err(bad(0, format!("segment needs at least {} bytes, has {}", HEADER_LEN + TRAILER_LEN, b.len())));
    }
    let (stored, actual) = (u32_at(b, 60), crc32c::crc32c(&b[0..60]));
    if stored != actual {
        return Err(bad(60, format!("header checksum {stored:#010x}, computed {actual:#010x}")));
    }
    if b[0..4] != MAGIC {
        return Err(bad(0, "not a segment (bad magic)".into()));
    }
    let version = u16::from_le_bytes([b[4], b[5]]);
    if version != VERSION {
        return Err(Error::UnsupportedVersion {
            file: path.to_owned(),
            what: "segment",
            found: version,
            supported: VERSION,
        });
    }
    if b[6..8] != [0, 0] {
        return Err(bad(6, "unknown segment header flags".into()));
    }
    if let Some(i) = b[16..60].iter().position(|&x| x != 0) {
        return Err(bad(16 + i, "reserved header bytes are not zero".into()));
    }
    let id = u64_at(b, 8);
    let t = b.len() - TRAILER_LEN;
    if b[t + 28..] != END_MAGIC {
        return Err(bad(t + 28, "segment trailer magic missing (incomplete or not a segment)".into()));
    }
    let (stored, actual) = (u32_at(b, t + 24), crc32c::crc32c(&b[t..t + 24]));
    if stored != actual {
        return Err(bad(t + 24, format!("trailer checksum {stored:#010x}, computed {actual:#010x}")));
    }
    let trailer_version = u16::from_le_bytes([b[t + 16], b[t + 17]]);
    if trailer_version != VERSION {
        return Err(bad(t + 16, format!("trailer version {trailer_version} differs from the header's {VERSION}")));
    }
    if let Some(i) = b[t + 18..t + 24].iter().position(|&x| x != 0) {
        return Err(bad(t + 18 + i, "reserved trailer bytes are not zero".into()));
    }
    let footer_offset = u64_at(b, t);
    let count = u32_at(b, t + 8);
    let expected = (t as u64).checked_sub(u64::from(count) * ENTRY_LEN as u64);
    if count > MAX_BLOCKS || expected != Some(footer_offset) || footer_offset < HEADER_LEN as u64 {
        return Err(bad(
            t,
            format!("footer at {footer_offset} with {count} entries does not end at the trailer ({t})"),
        ));
    }
    let f = footer_offset as usize;
    let (stored, actual) = (u32_at(b, t + 12), crc32c::crc32c(&b[f..t]));
    if stored != actual {
        return Err(bad(f, format!("footer index checksum {stored:#010x}, computed {actual:#010x}")));
    }
    let mut blocks = Vec::with_capacity(count as usize);
    let mut prev_end = HEADER_LEN as u64;
    for i in 0..count as usize {
        let e = f + i * ENTRY_LEN;
        let kind = BlockKind::from_code(b[e]).ok_or_else(|| bad(e, format!("block {i}: unknown kind {}", b[e])))?;
        for r in (e + 2..e + 4).chain(e + 36..e + 40) {
            if b[r] != 0 {
                return Err(bad(r, format!("block {i}: reserved footer bytes are not zero")));
            }
        }
        let compression = match b[e + 1] {
            0 => Compression::None,
            1 => Compression::Zstd,
            c => return Err(bad(e + 1, format!("block {i}: unknown compression {c}"))),
        };
        let info = BlockInfo {
            kind,
            compression,
            tag: u32_at(b, e + 4),
            offset: u64_at(b, e + 8),
            stored_len: u64_at(b, e + 16),
            raw_len: u64_at(b, e + 24),
            crc: u32_at(b, e + 32),
        };
        let end = info.offset.checked_add(info.stored_len);
        if info.offset < prev_end
            || !info.offset.is_multiple_of(ALIGN as u64)
            || end.is_none_or(|end| end > footer_offset)
        {
            return Err(bad(e + 8, format!("block {i}: range {}+{} is misplaced", info.offset, info.stored_len)));
        }
        if (compression == Compression::None && info.raw_len != info.stored_len) || info.raw_len > MAX_RAW_BLOCK {
            return Err(bad(e + 24, format!("block {i}: raw length {} is impossible", info.raw_len)));
        }
        prev_end = end.unwrap_or(footer_offset);
        blocks.push(info);
    }
    Ok((id, blocks))
}

/// An open, read-only segment.
#[derive(Debug)]
pub struct Segment {
    path: PathBuf,
    id: u64,
    map: Mapped,
    blocks: Vec<BlockInfo>,
    verified: Vec<AtomicBool>,
}

impl Segment {
    /// Opens segment `id` in `dir`, checking header, trailer and footer index.
    pub fn open(dir: &dyn Directory, id: u64) -> Result<Segment> {
        let name = file_name(id);
        let path = dir.file_path(&name);
        let map = dir.map(&name)?;
        let (stored_id, blocks) = decode_footer(&path, &map)?;
        if stored_id != id {
            return Err(Error::corrupt(&path, 8, format!("holds segment {stored_id}, file name says {id}")));
        }
        let verified = blocks.iter().map(|_| AtomicBool::new(false)).collect();
        Ok(Segment { path, id, map, blocks, verified })
    }

    /// The segment id.
    pub fn id(&self) -> u64 {
        self.id
    }

    /// The file's path.
    pub fn path(&self) -> &std::path::Path {
        &self.path
    }

    /// The footer index.
    pub fn blocks(&self) -> &[BlockInfo] {
        &self.blocks
    }

    /// The stored bytes of block `i`, checksum-verified (on first access). Borrowed from the map, so an
    /// uncompressed block starts 64-byte aligned.
    pub fn stored_bytes(&self, i: usize) -> Result<&[u8]> {
        let info = self.blocks.get(i).ok_or_else(|| Error::InvalidArgument {
            name: "block",
            detail: format!("block {i} of {} in {}", self.blocks.len(), self.path.display()),
        })?;
        // Range checked against the file in `decode_footer`.
        let bytes = &self.map[info.offset as usize..(info.offset + info.stored_len) as usize];
        if !self.verified[i].load(Ordering::Acquire) {
            let actual = crc32c::crc32c(bytes);
            if actual != info.crc {
                return Err(Error::corrupt(
                    &self.path,
                    info.offset,
                    format!("block {i} checksum {:#010x}, computed {actual:#010x}", info.crc),
                ));
            }
            self.verified[i].store(true, Ordering::Release);
        }
        Ok(bytes)
    }

    /// Checks block `i`'s checksum (if not checked yet), then lets its pages leave the process's resident set
    /// (see [`Mapped::release`]): for a large block that is read in place, a few rows at a time, after opening.
    pub fn verify_and_release(&self, i: usize) -> Result<()> {
        let bytes = self.stored_bytes(i)?;
        let info = self.blocks[i];
        debug_assert_eq!(bytes.len() as u64, info.stored_len);
        self.map.release(info.offset as usize, info.stored_len as usize);
        Ok(())
    }

    /// The content of block `i` (decompressed when stored compressed), checksum-verified.
    pub fn block(&self, i: usize) -> Result<Cow<'_, [u8]>> {
        let bytes = self.stored_bytes(i)?;
        let info = self.blocks[i];
        match info.compression {
            Compression::None => Ok(Cow::Borrowed(bytes)),
            Compression::Zstd => {
                let bad = |detail: String| Error::corrupt(&self.path, info.offset, format!("block {i}: {detail}"));
                // The raw length is what the footer claims: checksummed, but a crafted file can claim up to
                // `MAX_RAW_BLOCK` for a few stored bytes. A claim the stored bytes back (at most `PREALLOC_RATIO`
                // times their length) is decoded in one call into a buffer of exactly that size; beyond that, memory
                // follows what the frame really decodes to, reading one byte past the claim to catch a longer frame.
                let backed = info.stored_len.saturating_mul(PREALLOC_RATIO);
                let decoded = if info.raw_len <= backed {
                    zstd::bulk::decompress(bytes, info.raw_len as usize)
                } else {
                    let mut raw = Vec::with_capacity(usize::try_from(backed).unwrap_or(0));
                    zstd::stream::read::Decoder::with_buffer(bytes)
                        .and_then(|d| d.take(info.raw_len + 1).read_to_end(&mut raw))
                        .map(|_| raw)
                };
                let raw = decoded.map_err(|e| bad(format!("zstd frame does not decode: {e}")))?;
                if raw.len() as u64 != info.raw_len {
                    let got =
                        if raw.len() as u64 > info.raw_len { "more than that".into() } else { raw.len().to_string() };
                    return Err(bad(format!("index says {} bytes, frame decodes to {got}", info.raw_len)));
                }
                Ok(Cow::Owned(raw))
            }
        }
    }

    /// Checks every block: checksum, and that compressed blocks decode to their recorded length.
    pub fn verify(&self) -> Result<()> {
        for i in 0..self.blocks.len() {
            self.block(i)?;
        }
        Ok(())
    }
}

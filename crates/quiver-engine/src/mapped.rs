//! Vectors read in place from a segment file: a sealed segment's vectors block, memory-mapped, becomes the rows
//! of a [`VectorSet`] without a copy, so a reopened collection holds its graphs, codes and ids on the heap and its
//! full-precision vectors in the page cache (read when a query reranks or scans exactly); and a segment being
//! written streams its vectors to a scratch file read back the same way ([`ScratchVectors`]), so building it holds
//! no heap copy of them. The engine's only `unsafe` is the two `unsafe impl`s below (allowed on this module alone
//! in `lib.rs`).

use std::sync::Arc;

use quiver_index::{FloatSource, VectorSet};
use quiver_storage::{Directory, WritableFile};

use crate::error::{Error, Result};

/// Block `block` of an open segment, read as little-endian `f32`s.
#[derive(Debug)]
struct SegmentFloats {
    segment: Arc<quiver_storage::Segment>,
    block: usize,
}

impl SegmentFloats {
    fn bytes(&self) -> &[u8] {
        // Verified by `vectors_in_place` before this value was shared; the checksum is not checked again.
        self.segment.stored_bytes(self.block).unwrap_or_default()
    }
}

// SAFETY: `floats` is a view of block `block` of the segment's read-only image: a memory map of a file that is
// never written again once renamed into place (see `quiver_storage::mapped`), or a heap copy that is never mutated.
// The `Arc` held here keeps that image alive and in place, and `stored_bytes` returns the same range of it on every
// call (the block table is fixed at open and the checksum outcome is cached), so the slice never changes.
unsafe impl FloatSource for SegmentFloats {
    fn floats(&self) -> &[f32] {
        bytemuck::try_cast_slice(self.bytes()).unwrap_or_default()
    }
}

/// A whole scratch file of little-endian `f32`s (see [`ScratchVectors`]), mapped.
#[derive(Debug)]
struct ScratchFloats(quiver_storage::Mapped);

// SAFETY: the map is a read-only view of a scratch file whose writer was closed before it was mapped; nothing
// writes, truncates or renames that file afterwards (it is only removed, which leaves a mapping intact), and the
// map lives as long as this value. Its start is page-aligned (or a 64-byte-aligned heap copy), so the cast below
// is the same slice on every call.
unsafe impl FloatSource for ScratchFloats {
    fn floats(&self) -> &[f32] {
        bytemuck::try_cast_slice(&self.0).unwrap_or_default()
    }
}

/// Bytes gathered before one write to a scratch file.
const SCRATCH_BUFFER: usize = 256 << 10;

/// The vectors of one space of a segment being written, streamed to a scratch file in the collection's directory
/// instead of a heap array, then read back in place for the index build ([`ScratchVectors::finish`]). So a merge
/// or a seal holds no heap copy of the rows it rewrites: their bytes sit in the page cache, which the kernel can
/// reclaim. The file ends in `.tmp`: removed when the value is dropped, and by the cleanup at open if a crash left
/// it.
#[derive(Debug)]
pub(crate) struct ScratchVectors {
    dir: Arc<dyn Directory>,
    name: String,
    file: Option<Box<dyn WritableFile>>,
    buf: Vec<u8>,
    dim: usize,
    rows: usize,
}

impl ScratchVectors {
    /// Starts scratch file `name` (which must end in `.tmp`) for `dim`-dimensional vectors.
    pub fn create(dir: Arc<dyn Directory>, name: String, dim: usize) -> Result<ScratchVectors> {
        debug_assert!(name.ends_with(quiver_storage::dir::TEMP_SUFFIX));
        quiver_index::validate_dim(dim)?;
        let file = dir.create(&name)?;
        Ok(ScratchVectors { dir, name, file: Some(file), buf: Vec::with_capacity(SCRATCH_BUFFER), dim, rows: 0 })
    }

    /// Appends one vector (validated: the right length, finite).
    pub fn push(&mut self, v: &[f32]) -> Result<()> {
        quiver_index::validate_vector(v, self.dim)?;
        self.buf.extend_from_slice(&vector_bytes(v));
        self.rows += 1;
        if self.buf.len() >= SCRATCH_BUFFER {
            self.flush()?;
        }
        Ok(())
    }

    /// Vector length.
    pub fn dim(&self) -> usize {
        self.dim
    }

    fn flush(&mut self) -> Result<()> {
        if let Some(f) = self.file.as_mut() {
            f.write_all(&self.buf)?;
        }
        self.buf.clear();
        Ok(())
    }

    /// Closes the file and reads it back in place as a [`VectorSet`] (a heap copy where the platform cannot map
    /// it as `f32`s). The file is removed when the returned guard is dropped: drop the set (and any index built
    /// over it) first.
    pub fn finish(mut self) -> Result<(VectorSet, ScratchFile)> {
        self.flush()?;
        drop(self.file.take());
        let guard = ScratchFile { dir: self.dir.clone(), name: std::mem::take(&mut self.name) };
        let map = guard.dir.map(&guard.name)?;
        let expected = self.rows * self.dim * 4;
        if map.len() != expected {
            return Err(Error::Corrupt {
                file: guard.dir.file_path(&guard.name),
                offset: 0,
                detail: format!("scratch vectors hold {} bytes, expected {} × {} × 4", map.len(), self.rows, self.dim),
            });
        }
        let set = if in_place(&map) {
            VectorSet::shared(self.dim, Arc::new(ScratchFloats(map)))
        } else {
            VectorSet::from_flat(self.dim, le_floats(&map))
        };
        Ok((set?, guard))
    }
}

impl Drop for ScratchVectors {
    fn drop(&mut self) {
        if !self.name.is_empty() {
            drop(self.file.take());
            // Best effort: a leftover `.tmp` file is removed at the next open.
            let _ = self.dir.remove(&self.name);
        }
    }
}

/// A finished scratch file; removed (best effort) when dropped.
#[derive(Debug)]
pub(crate) struct ScratchFile {
    dir: Arc<dyn Directory>,
    name: String,
}

impl Drop for ScratchFile {
    fn drop(&mut self) {
        let _ = self.dir.remove(&self.name);
    }
}

/// The `rows × dim` vectors of block `block` of `segment`, checksum-verified, then read in place where the platform
/// allows (little-endian and the block 4-byte aligned, which the segment format guarantees), else copied to the
/// heap. After the check the block's pages leave the process's resident set, so opening a collection does not
/// leave its vectors in RSS.
pub(crate) fn vectors_in_place(
    segment: &Arc<quiver_storage::Segment>,
    block: usize,
    rows: usize,
    dim: usize,
) -> Result<VectorSet> {
    let corrupt = |detail: String| Error::Corrupt {
        file: segment.path().to_owned(),
        offset: segment.blocks().get(block).map_or(0, |b| b.offset),
        detail,
    };
    let bytes = segment.stored_bytes(block)?;
    if Some(bytes.len()) != rows.checked_mul(dim).and_then(|n| n.checked_mul(4)) {
        return Err(corrupt(format!("vectors block holds {} bytes, expected {rows} × {dim} × 4", bytes.len())));
    }
    let set = if in_place(bytes) {
        let source = SegmentFloats { segment: segment.clone(), block };
        segment.verify_and_release(block)?;
        VectorSet::shared(dim, Arc::new(source))
    } else {
        VectorSet::from_flat(dim, le_floats(bytes))
    };
    set.map_err(|e| corrupt(format!("vectors block: {e}")))
}

/// Whether stored little-endian `f32` bytes can be read in place as `f32`s here (a little-endian platform and
/// 4-byte-aligned bytes, which the segment format and maps guarantee).
fn in_place(bytes: &[u8]) -> bool {
    cfg!(target_endian = "little") && bytemuck::try_cast_slice::<u8, f32>(bytes).is_ok()
}

/// Stored little-endian `f32` bytes, copied to the heap (where they cannot be read in place).
fn le_floats(bytes: &[u8]) -> Vec<f32> {
    bytes.chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect()
}

/// The bytes to store for `vectors` in a segment's vectors block: little-endian `f32`s, borrowed when the platform
/// is little-endian.
pub(crate) fn vector_bytes(vectors: &[f32]) -> std::borrow::Cow<'_, [u8]> {
    if cfg!(target_endian = "little") {
        std::borrow::Cow::Borrowed(bytemuck::cast_slice(vectors))
    } else {
        std::borrow::Cow::Owned(vectors.iter().flat_map(|x| x.to_le_bytes()).collect())
    }
}

//! Vectors read in place from a segment file: a sealed segment's vectors block, memory-mapped, becomes the rows
//! of a [`VectorSet`] without a copy, so a reopened collection holds its graphs, codes and ids on the heap and its
//! full-precision vectors in the page cache (read when a query reranks or scans exactly). The engine's only
//! `unsafe` is the one `unsafe impl` below (allowed on this module alone in `lib.rs`).

use std::sync::Arc;

use quiver_index::{FloatSource, VectorSet};

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
    let set = if cfg!(target_endian = "little") && bytemuck::try_cast_slice::<u8, f32>(bytes).is_ok() {
        let source = SegmentFloats { segment: segment.clone(), block };
        segment.verify_and_release(block)?;
        VectorSet::shared(dim, Arc::new(source))
    } else {
        let floats = bytes.chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect();
        VectorSet::from_flat(dim, floats)
    };
    set.map_err(|e| corrupt(format!("vectors block: {e}")))
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

//! Read-only views of whole files: a memory map on a real file system, or a 64-byte-aligned heap copy for the
//! in-memory twin. This is the crate's only module with `unsafe` code (allowed on this module alone in `lib.rs`).
//!
//! Both views start at an address aligned to [`ALIGN`] bytes (a memory map starts on a page), so a block stored at
//! a 64-byte-aligned file offset is 64-byte aligned in memory and can be reinterpreted as `f32`s without copying.

use std::fmt;
use std::fs::File;
use std::ops::Deref;

/// Alignment guaranteed for the first byte of every [`Mapped`].
pub const ALIGN: usize = 64;

#[repr(C, align(64))]
#[derive(Clone, Copy)]
struct Chunk([u8; ALIGN]);

enum Inner {
    Empty,
    Map(memmap2::Mmap),
    Heap { chunks: Vec<Chunk>, len: usize },
}

/// The bytes of one file, read-only. Dereferences to `[u8]`.
pub struct Mapped {
    inner: Inner,
}

impl fmt::Debug for Mapped {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kind = match self.inner {
            Inner::Empty => "empty",
            Inner::Map(_) => "mmap",
            Inner::Heap { .. } => "heap",
        };
        f.debug_struct("Mapped").field("kind", &kind).field("len", &self.len()).finish()
    }
}

impl Mapped {
    /// An aligned heap copy of `bytes`.
    pub fn copy_from(bytes: &[u8]) -> Mapped {
        if bytes.is_empty() {
            return Mapped { inner: Inner::Empty };
        }
        let mut chunks = vec![Chunk([0; ALIGN]); bytes.len().div_ceil(ALIGN)];
        for (chunk, src) in chunks.iter_mut().zip(bytes.chunks(ALIGN)) {
            chunk.0[..src.len()].copy_from_slice(src);
        }
        Mapped { inner: Inner::Heap { chunks, len: bytes.len() } }
    }
}

impl Mapped {
    /// Tells the kernel that bytes `offset..offset + len` are not needed soon: their pages leave this process's
    /// resident set (they stay in the page cache, and the next read faults them back in, unchanged). A no-op for a
    /// heap copy. Best effort: an error only means the pages stay resident.
    pub fn release(&self, offset: usize, len: usize) {
        #[cfg(unix)]
        if let Inner::Map(map) = &self.inner
            && offset.checked_add(len).is_some_and(|end| end <= map.len())
            && len > 0
        {
            // SAFETY: `MADV_DONTNEED` on a read-only shared file mapping drops the pages from this process; later
            // reads fault them in again from the file, which is never modified while mapped (see `map_file`), so
            // every outstanding borrow of these bytes keeps seeing the same values.
            let _ = unsafe { map.unchecked_advise_range(memmap2::UncheckedAdvice::DontNeed, offset, len) };
        }
        #[cfg(not(unix))]
        let _ = (offset, len);
    }
}

/// Maps `file` read-only.
pub(crate) fn map_file(file: &File) -> std::io::Result<Mapped> {
    if file.metadata()?.len() == 0 {
        return Ok(Mapped { inner: Inner::Empty });
    }
    // SAFETY: a mapped file must not be modified or truncated while the map lives, or reads could see changing
    // bytes or fault. Only files never written again are mapped: segments, which are written to a temporary name,
    // fsynced and renamed into place, and are immutable from then on (a segment is replaced by writing a new file
    // under a new name, never in place); and the engine's scratch files of a segment being built, whose writer is
    // closed before they are mapped and which are only removed afterwards. Another process writing into QuiverDB's data directory is outside the
    // contract, as documented on `Directory::map`.
    let map = unsafe { memmap2::Mmap::map(file)? };
    Ok(Mapped { inner: Inner::Map(map) })
}

impl Deref for Mapped {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        match &self.inner {
            Inner::Empty => &[],
            Inner::Map(map) => map,
            Inner::Heap { chunks, len } => {
                debug_assert!(*len <= chunks.len() * ALIGN);
                // SAFETY: `chunks` is a live, initialised allocation of `chunks.len() * ALIGN` bytes (`Chunk` is
                // `repr(C)` around `[u8; ALIGN]`, so it has no padding), `len` never exceeds it (set in
                // `copy_from`), `u8` has alignment 1, and the returned slice borrows `self`, so the allocation
                // outlives it and is not mutated meanwhile.
                unsafe { std::slice::from_raw_parts(chunks.as_ptr().cast::<u8>(), *len) }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn heap_copy_is_aligned_and_exact() {
        for n in [0usize, 1, 63, 64, 65, 1000] {
            let bytes: Vec<u8> = (0..n).map(|i| (i * 7) as u8).collect();
            let m = Mapped::copy_from(&bytes);
            assert_eq!(&m[..], &bytes[..]);
            if n > 0 {
                assert_eq!(m.as_ptr() as usize % ALIGN, 0);
            }
        }
    }
}

//! Floats owned by someone else — a memory-mapped segment file, in practice — that a [`crate::VectorSet`] reads
//! without copying. One of the crate's two modules with `unsafe` code (allowed on this module in `lib.rs`; the
//! other is `huge`, one `madvise` call): the address of the owner's slice is taken once and the slice is rebuilt from it on every read, so a row lookup
//! costs no virtual call.

use std::fmt;
use std::sync::Arc;

/// A read-only slice of `f32`s kept alive by its owner.
///
/// # Safety
///
/// [`FloatSource::floats`] must return the same slice — same address, same length, same contents — on every call
/// for as long as the value lives: the bytes behind it are never written, moved or unmapped while any `Arc` to the
/// source exists. (A memory map of an immutable file, held by the source, satisfies this.)
pub unsafe trait FloatSource: Send + Sync + fmt::Debug {
    /// The floats.
    fn floats(&self) -> &[f32];
}

/// A [`FloatSource`] and the slice it returned, cached.
#[derive(Clone)]
pub(crate) struct SharedFloats {
    owner: Arc<dyn FloatSource>,
    ptr: *const f32,
    len: usize,
}

// SAFETY: `SharedFloats` only hands out shared `&[f32]` borrows of memory that the `FloatSource` contract makes
// immutable for the owner's life; the owner itself is `Send + Sync` and kept alive by the `Arc` beside the pointer.
unsafe impl Send for SharedFloats {}
// SAFETY: as above: every access is a read of immutable memory.
unsafe impl Sync for SharedFloats {}

impl SharedFloats {
    pub(crate) fn new(owner: Arc<dyn FloatSource>) -> SharedFloats {
        let s = owner.floats();
        let (ptr, len) = (s.as_ptr(), s.len());
        SharedFloats { owner, ptr, len }
    }

    #[inline]
    pub(crate) fn as_slice(&self) -> &[f32] {
        // SAFETY: `ptr` and `len` came from `owner.floats()`, which the `FloatSource` contract keeps valid,
        // unchanged and immutable while `owner` lives; `self` holds `owner`, and the returned borrow cannot
        // outlive `self`.
        unsafe { std::slice::from_raw_parts(self.ptr, self.len) }
    }
}

impl fmt::Debug for SharedFloats {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SharedFloats").field("owner", &self.owner).field("len", &self.len).finish()
    }
}

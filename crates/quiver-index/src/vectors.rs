//! `VectorSet`: validated, contiguous, row-major storage of same-length f32 vectors.

use crate::error::{Error, Result};
use crate::metric::Metric;
use crate::shared::{FloatSource, SharedFloats};
use quiver_kernels::MAX_DIM;
use rayon::prelude::*;
use std::collections::HashMap;
use std::sync::Arc;

/// Checks that `dim` is usable.
pub fn validate_dim(dim: usize) -> Result<()> {
    if dim == 0 || dim > MAX_DIM { Err(Error::InvalidDimension { got: dim, max: MAX_DIM }) } else { Ok(()) }
}

/// Checks one vector: the right length and only finite components.
pub fn validate_vector(v: &[f32], dim: usize) -> Result<()> {
    if v.len() != dim {
        return Err(Error::DimensionMismatch { expected: dim, got: v.len() });
    }
    match v.iter().position(|x| !x.is_finite()) {
        Some(position) => Err(Error::NonFinite { position, value: v[position] }),
        None => Ok(()),
    }
}

/// How far from 1 the length of a vector may be for a normalising metric to take it as already prepared (a vector
/// normalised in f32 lands within a few ulps of 1).
const PREPARED_NORM_TOLERANCE: f32 = 1e-5;

/// The checks every index's `build` makes, in one place: as many ids as vectors, fewer than `max_rows` of them,
/// no id twice; then every vector is prepared for `metric` in parallel (normalised for cosine; a zero vector is
/// an error) unless every one already is (unit length within [`PREPARED_NORM_TOLERANCE`]: then `vectors` is not
/// touched, and a shared set stays shared). Returns the id → row map. On error the caller discards `vectors`, so
/// nothing half-built escapes.
pub(crate) fn prepare_build(
    metric: Metric,
    vectors: &mut VectorSet,
    ids: &[u64],
    max_rows: usize,
) -> Result<HashMap<u64, u32>> {
    if ids.len() != vectors.len() {
        return Err(Error::IdCountMismatch { ids: ids.len(), vectors: vectors.len() });
    }
    if ids.len() >= max_rows {
        return Err(Error::invalid("points", format!("fewer than {max_rows} points per index"), ids.len()));
    }
    let mut rows = HashMap::with_capacity(ids.len());
    for (row, &id) in ids.iter().enumerate() {
        if rows.insert(id, row as u32).is_some() {
            return Err(Error::DuplicateId { id });
        }
    }
    let dim = vectors.dim();
    // Vectors already prepared (what the engine stores: it normalises at write) are left as they are, so that a
    // shared set (rows read in place from a file) is not copied to the heap just to be rewritten with the same
    // values.
    let unprepared = |v: &[f32]| {
        let norm = quiver_kernels::norm(v);
        // NaN (a non-finite component) counts as unprepared: `prepare` reports it.
        let off = (norm - 1.0).abs();
        off.is_nan() || off > PREPARED_NORM_TOLERANCE
    };
    if metric.normalises()
        && vectors.as_slice().par_chunks_exact(dim).any(unprepared)
        && let Some(e) = vectors.as_mut_slice().par_chunks_exact_mut(dim).find_map_first(|v| metric.prepare(v).err())
    {
        return Err(e);
    }
    Ok(rows)
}

/// Same-length f32 vectors stored back to back (row `i` is `data[i*dim..(i+1)*dim]`), either in one heap
/// allocation or in memory someone else owns ([`VectorSet::shared`]: a memory-mapped segment file). A shared set is
/// read-only in place: the first change copies it to the heap.
///
/// Invariant: `dim` is in `1..=MAX_DIM`, `data.len()` is a multiple of `dim`, every value is finite.
#[derive(Clone, Debug)]
pub struct VectorSet {
    dim: usize,
    /// The rows when `shared` is `None`.
    owned: Vec<f32>,
    shared: Option<SharedFloats>,
}

impl PartialEq for VectorSet {
    fn eq(&self, other: &Self) -> bool {
        self.dim == other.dim && self.as_slice() == other.as_slice()
    }
}

impl VectorSet {
    /// An empty set of `dim`-dimensional vectors.
    pub fn new(dim: usize) -> Result<Self> {
        validate_dim(dim)?;
        Ok(Self { dim, owned: Vec::new(), shared: None })
    }

    /// An empty set with room for `rows` vectors.
    pub fn with_capacity(dim: usize, rows: usize) -> Result<Self> {
        validate_dim(dim)?;
        Ok(Self { dim, owned: Vec::with_capacity(rows.saturating_mul(dim)), shared: None })
    }

    /// Takes ownership of row-major `data`. Errors name the first bad row and component.
    pub fn from_flat(dim: usize, data: Vec<f32>) -> Result<Self> {
        validate_dim(dim)?;
        if !data.len().is_multiple_of(dim) {
            return Err(Error::invalid("data", format!("a multiple of the dimension {dim} of values"), data.len()));
        }
        if let Some(i) = data.iter().position(|x| !x.is_finite()) {
            return Err(Error::NonFinite { position: i % dim, value: data[i] });
        }
        Ok(Self { dim, owned: data, shared: None })
    }

    /// Reads the rows from `source` without copying them (a memory-mapped file block). The values are not
    /// scanned — that would read every page of a file that is mapped precisely so that it need not be in memory —
    /// so the caller vouches that they are finite (a checksummed block this build wrote from validated vectors).
    /// Only the length is checked.
    pub fn shared(dim: usize, source: Arc<dyn FloatSource>) -> Result<Self> {
        validate_dim(dim)?;
        let floats = SharedFloats::new(source);
        let len = floats.as_slice().len();
        if !len.is_multiple_of(dim) {
            return Err(Error::invalid("data", format!("a multiple of the dimension {dim} of values"), len));
        }
        Ok(Self { dim, owned: Vec::new(), shared: Some(floats) })
    }

    /// Builds a set from rows, validating each.
    pub fn from_rows<R: AsRef<[f32]>>(dim: usize, rows: impl IntoIterator<Item = R>) -> Result<Self> {
        let mut set = Self::new(dim)?;
        for r in rows {
            set.push(r.as_ref())?;
        }
        Ok(set)
    }

    /// Vector length.
    #[inline]
    pub fn dim(&self) -> usize {
        self.dim
    }

    /// Number of vectors.
    #[inline]
    pub fn len(&self) -> usize {
        self.as_slice().len() / self.dim
    }

    /// True when there are no vectors.
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.as_slice().is_empty()
    }

    /// Row `i`. # Panics: if `i >= len()`.
    #[inline]
    pub fn get(&self, i: usize) -> &[f32] {
        &self.as_slice()[i * self.dim..(i + 1) * self.dim]
    }

    /// Rows `start..end` as one contiguous slice.
    #[inline]
    pub fn rows(&self, start: usize, end: usize) -> &[f32] {
        &self.as_slice()[start * self.dim..end * self.dim]
    }

    /// All rows as one slice.
    #[inline]
    pub fn as_slice(&self) -> &[f32] {
        match &self.shared {
            Some(s) => s.as_slice(),
            None => &self.owned,
        }
    }

    /// True when the rows are read from memory the set does not own (see [`VectorSet::shared`]).
    pub fn is_shared(&self) -> bool {
        self.shared.is_some()
    }

    /// The heap copy, made first if the rows are shared.
    fn owned(&mut self) -> &mut Vec<f32> {
        if let Some(s) = self.shared.take() {
            self.owned = s.as_slice().to_vec();
        }
        &mut self.owned
    }

    /// Mutable access to every row at once, for in-place transforms that keep values finite (normalisation).
    pub(crate) fn as_mut_slice(&mut self) -> &mut [f32] {
        self.owned()
    }

    /// Iterates over rows.
    pub fn iter(&self) -> std::slice::ChunksExact<'_, f32> {
        self.as_slice().chunks_exact(self.dim)
    }

    /// Appends a validated vector; returns its row number.
    pub fn push(&mut self, v: &[f32]) -> Result<usize> {
        validate_vector(v, self.dim)?;
        self.owned().extend_from_slice(v);
        Ok(self.len() - 1)
    }

    /// Overwrites row `i` with a validated vector. # Panics: if `i >= len()`.
    pub fn set(&mut self, i: usize, v: &[f32]) -> Result<()> {
        validate_vector(v, self.dim)?;
        let dim = self.dim;
        self.owned()[i * dim..(i + 1) * dim].copy_from_slice(v);
        Ok(())
    }

    /// Removes row `i` by moving the last row into its place (O(dim)). # Panics: if `i >= len()`.
    pub fn swap_remove(&mut self, i: usize) {
        let (last, dim) = (self.len() - 1, self.dim);
        let data = self.owned();
        if i != last {
            let (head, tail) = data.split_at_mut(last * dim);
            head[i * dim..(i + 1) * dim].copy_from_slice(tail);
        }
        data.truncate(last * dim);
    }

    /// The first `n` rows (or all, if fewer).
    pub fn truncate(&mut self, n: usize) {
        let keep = n.min(self.len()) * self.dim;
        if keep < self.as_slice().len() {
            self.owned().truncate(keep);
        }
    }

    /// Heap bytes held (0 for a shared set: its rows live in the owner's memory).
    pub fn memory_bytes(&self) -> usize {
        if self.shared.is_some() { 0 } else { self.owned.capacity() * std::mem::size_of::<f32>() }
    }

    /// Bytes read from memory the set does not own (a shared set's rows; 0 for a heap set).
    pub fn shared_bytes(&self) -> usize {
        self.shared.as_ref().map_or(0, |s| std::mem::size_of_val(s.as_slice()))
    }

    /// Consumes the set, returning the row-major data.
    pub fn into_flat(self) -> Vec<f32> {
        match self.shared {
            Some(s) => s.as_slice().to_vec(),
            None => self.owned,
        }
    }
}

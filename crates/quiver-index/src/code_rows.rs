//! The array every quantized storage keeps: one fixed-length code per row, back to back, on huge pages where
//! possible (a graph walk reads them at random).

use rayon::prelude::*;

use crate::vectors::VectorSet;

/// Codes of `len` elements each, row `i` at `[i * len..]`.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct CodeRows<T> {
    len: usize,
    codes: Vec<T>,
}

impl<T: Copy + Default + Send + Sync> CodeRows<T> {
    /// The codes of every row of `vectors`, written by `encode` (into a zeroed code) in parallel.
    pub fn encode(len: usize, vectors: &VectorSet, encode: impl Fn(&[f32], &mut [T]) + Sync) -> Self {
        let mut codes = crate::huge::filled(vectors.len() * len, T::default());
        if len > 0 {
            codes
                .par_chunks_exact_mut(len)
                .zip(vectors.as_slice().par_chunks_exact(vectors.dim()))
                .for_each(|(c, v)| encode(v, c));
        }
        Self { len, codes }
    }

    /// Codes read back from a file: `codes` holds whole rows of `len` elements.
    pub fn from_vec(len: usize, codes: Vec<T>) -> Self {
        debug_assert!(len > 0 && codes.len().is_multiple_of(len));
        Self { len, codes }
    }

    /// Appends the code `encode` writes (into a zeroed code) for `v`; returns it.
    pub fn push(&mut self, v: &[f32], encode: impl FnOnce(&[f32], &mut [T])) -> &[T] {
        let start = self.codes.len();
        crate::huge::reserve(&mut self.codes, self.len);
        self.codes.resize(start + self.len, T::default());
        encode(v, &mut self.codes[start..]);
        &self.codes[start..]
    }

    /// Code of row `row`. # Panics: if `row >= rows()`.
    #[inline]
    pub fn get(&self, row: usize) -> &[T] {
        &self.codes[row * self.len..(row + 1) * self.len]
    }

    /// Every code, back to back.
    pub fn as_slice(&self) -> &[T] {
        &self.codes
    }

    /// Number of rows.
    pub fn rows(&self) -> usize {
        self.codes.len().checked_div(self.len).unwrap_or(0)
    }

    /// Heap bytes held.
    pub fn memory_bytes(&self) -> usize {
        self.codes.capacity() * size_of::<T>()
    }
}

//! `FlatIndex`: exact search by scanning every vector. The oracle every approximate index is tested against,
//! and the roofline for exact search.
//!
//! Single queries stream the vectors one row at a time in blocks (memory-bandwidth bound).
//! Batches are split into chunks of [`QUERY_CHUNK`] queries spread over the rayon pool; each chunk reads every
//! block of vectors once and scores it against all its queries with the tiled kernel, so each vector loaded from
//! memory feeds many products (compute bound, like a matrix multiply).

use crate::any::IndexKind;
use crate::codec::{Reader, Writer};
use crate::error::{Error, Result};
use crate::filter::IdFilter;
use crate::metric::Metric;
use crate::neighbor::{Neighbor, TopK};
use crate::params::{Params, SearchParams};
use crate::storage::RawStorage;
use crate::traits::{MutableIndex, VectorIndex, check_batch, prepare_query};
use crate::vectors::{VectorSet, prepare_build, validate_vector};
use rayon::prelude::*;
use std::collections::HashMap;

/// Vectors scored per kernel call: 512 rows (768 KiB at 384-d), read from memory once per chunk of queries; the
/// kernel packs the chunk's queries once per call and the rows 32 at a time, and scores each packed panel against
/// every query from L1/L2. 512 x 512 results are 1 MiB, which stays in L2 for the top-k pass (256 rows measured
/// slower: more packing of the queries; 1,024 queries a chunk too: the packed queries spill from L2).
const BLOCK_ROWS: usize = 512;
/// Most queries scored together in a batch chunk. Larger chunks amortise each block's trip from memory over more
/// arithmetic (512 measured about 6% faster than 256 on the 100k set); batches smaller than
/// `threads x QUERY_CHUNK` are split so every thread gets a chunk.
pub const QUERY_CHUNK: usize = 512;
/// Kernel results tested together for any candidate before they are looked at one by one.
const SKIP_RUN: usize = 32;
/// A filter listing fewer than `len / SPARSE_RATIO` ids is searched by visiting just those ids.
const SPARSE_RATIO: u64 = 16;
/// Format version of the Flat payload.
const VERSION: u16 = 1;

/// Exact (brute-force) index. See the module docs.
#[derive(Clone, Debug)]
pub struct FlatIndex {
    storage: RawStorage,
    ids: Vec<u64>,
    rows: HashMap<u64, u32>,
}

impl FlatIndex {
    /// Search parameters Flat accepts.
    pub const SEARCH_PARAMS: &'static [&'static str] = &[];
    /// Build parameters Flat accepts.
    pub const BUILD_PARAMS: &'static [&'static str] = &[];

    /// An empty index.
    pub fn new(metric: Metric, dim: usize) -> Result<Self> {
        Ok(Self { storage: RawStorage::new(metric, VectorSet::new(dim)?), ids: Vec::new(), rows: HashMap::new() })
    }

    /// Builds from vectors and their ids (which must be distinct). Cosine vectors are normalised in place,
    /// in parallel; a zero vector is an error naming its id.
    pub fn build(metric: Metric, mut vectors: VectorSet, ids: Vec<u64>, params: Params) -> Result<Self> {
        params.finish("flat index (build)", Self::BUILD_PARAMS)?;
        let rows = prepare_build(metric, &mut vectors, &ids, u32::MAX as usize)?;
        Ok(Self { storage: RawStorage::new(metric, vectors), ids, rows })
    }

    /// The stored (prepared) vector of `id`.
    pub fn vector(&self, id: u64) -> Option<&[f32]> {
        self.rows.get(&id).map(|&r| self.storage.vectors.get(r as usize))
    }

    /// Ids in row order.
    pub fn ids(&self) -> &[u64] {
        &self.ids
    }

    /// Decodes an index written by [`VectorIndex::to_bytes`].
    pub fn from_bytes(bytes: &[u8]) -> Result<Self> {
        let mut r = Reader::open(bytes, "flat index", IndexKind::Flat.tag(), VERSION)?;
        let at = r.offset();
        let metric = Metric::from_tag(r.u8()?).ok_or_else(|| r.corrupt(at, "unknown metric tag"))?;
        let _reserved = [r.u8()?, r.u8()?, r.u8()?];
        let at = r.offset();
        let dim = r.u32()? as usize;
        crate::vectors::validate_dim(dim).map_err(|e| r.corrupt(at, e.to_string()))?;
        let at = r.offset();
        let count = usize::try_from(r.u64()?).map_err(|_| r.corrupt(at, "count too large"))?;
        let ids = r.u64s(count)?;
        let at = r.offset();
        let data = r.f32s(count.checked_mul(dim).ok_or_else(|| r.corrupt(at, "count too large"))?)?;
        r.finish()?;
        let vectors = VectorSet::from_flat(dim, data).map_err(|e| Error::Corrupt {
            what: "flat index",
            offset: at as u64,
            detail: e.to_string(),
        })?;
        let mut rows = HashMap::with_capacity(count);
        for (row, &id) in ids.iter().enumerate() {
            if rows.insert(id, row as u32).is_some() {
                return Err(Error::Corrupt { what: "flat index", offset: 0, detail: format!("duplicate id {id}") });
            }
        }
        Ok(Self { storage: RawStorage::new(metric, vectors), ids, rows })
    }

    /// Scores prepared `queries` (row-major, one [`TopK`] each) against rows `0..len` and collects results.
    fn scan(&self, queries: &[f32], heaps: &mut [TopK], filter: Option<&dyn IdFilter>) {
        let n = self.ids.len();
        let nq = heaps.len();
        let metric = self.storage.metric;
        let (offset, sign) = metric.raw_to_distance();
        let mut buf = vec![0.0f32; nq * BLOCK_ROWS.min(n)];
        let mut start = 0;
        while start < n {
            let nr = BLOCK_ROWS.min(n - start);
            let out = &mut buf[..nq * nr];
            self.storage.raw_tile(queries, start, nr, out);
            let ids = &self.ids[start..start + nr];
            for (heap, raw) in heaps.iter_mut().zip(out.chunks_exact(nr)) {
                let mut threshold = heap.threshold();
                for (ids, raw) in ids.chunks(SKIP_RUN).zip(raw.chunks(SKIP_RUN)) {
                    // Once the heap is full almost no run holds a candidate: one vectorised test (the same
                    // comparison as below, computed the same way) skips the run.
                    if !raw.iter().fold(false, |any, &r| any | (offset + sign * r <= threshold)) {
                        continue;
                    }
                    for (&id, &r) in ids.iter().zip(raw) {
                        let d = metric.distance_from_raw(r);
                        // `<=` lets an equal distance with a smaller id in; `TopK::push` decides.
                        if d <= threshold && filter.is_none_or(|f| f.allows(id)) && heap.push(Neighbor::new(id, d)) {
                            threshold = heap.threshold();
                        }
                    }
                }
            }
            start += nr;
        }
    }

    /// Visits only the ids a sparse filter lists.
    fn scan_ids(&self, query: &[f32], heap: &mut TopK, allowed: &crate::filter::IdSet) {
        let metric = self.storage.metric;
        for id in allowed.iter() {
            if let Some(&row) = self.rows.get(&id) {
                heap.push(Neighbor::new(id, metric.distance(query, self.storage.vectors.get(row as usize))));
            }
        }
    }

    fn sparse_filter<'f>(&self, filter: Option<&'f dyn IdFilter>) -> Option<&'f crate::filter::IdSet> {
        let set = filter?.ids()?;
        (set.len().saturating_mul(SPARSE_RATIO) < self.ids.len() as u64).then_some(set)
    }
}

impl VectorIndex for FlatIndex {
    fn kind(&self) -> IndexKind {
        IndexKind::Flat
    }

    fn metric(&self) -> Metric {
        self.storage.metric
    }

    fn dim(&self) -> usize {
        self.storage.vectors.dim()
    }

    fn len(&self) -> usize {
        self.ids.len()
    }

    fn contains(&self, id: u64) -> bool {
        self.rows.contains_key(&id)
    }

    fn search(
        &self,
        query: &[f32],
        k: usize,
        _params: &SearchParams,
        filter: Option<&dyn IdFilter>,
    ) -> Result<Vec<Neighbor>> {
        let q = prepare_query(self.metric(), self.dim(), query)?;
        if k == 0 || self.ids.is_empty() {
            return Ok(Vec::new());
        }
        let mut heap = TopK::new(k);
        match self.sparse_filter(filter) {
            Some(set) => self.scan_ids(&q, &mut heap, set),
            None => self.scan(&q, std::slice::from_mut(&mut heap), filter),
        }
        Ok(heap.into_sorted_vec())
    }

    fn search_batch(
        &self,
        queries: &[f32],
        k: usize,
        _params: &SearchParams,
        filter: Option<&dyn IdFilter>,
    ) -> Result<Vec<Vec<Neighbor>>> {
        let dim = self.dim();
        check_batch(queries, dim)?;
        let mut prepared = Vec::with_capacity(queries.len());
        for q in queries.chunks_exact(dim) {
            prepared.extend_from_slice(&prepare_query(self.metric(), dim, q)?);
        }
        let nq = queries.len() / dim;
        if k == 0 || self.ids.is_empty() {
            return Ok(vec![Vec::new(); nq]);
        }
        let sparse = self.sparse_filter(filter);
        let chunk = nq.div_ceil(rayon::current_num_threads()).clamp(16, QUERY_CHUNK);
        let chunks: Vec<Vec<Vec<Neighbor>>> = prepared
            .par_chunks(chunk * dim)
            .map(|chunk| {
                let mut heaps = vec![TopK::new(k); chunk.len() / dim];
                match sparse {
                    Some(set) => {
                        for (q, heap) in chunk.chunks_exact(dim).zip(heaps.iter_mut()) {
                            self.scan_ids(q, heap, set);
                        }
                    }
                    None => self.scan(chunk, &mut heaps, filter),
                }
                heaps.into_iter().map(TopK::into_sorted_vec).collect()
            })
            .collect();
        Ok(chunks.into_iter().flatten().collect())
    }

    fn memory_bytes(&self) -> usize {
        // HashMap: key + value + one control byte per bucket, buckets ≈ capacity * 8 / 7.
        let map = self.rows.capacity() * (8 + 4 + 1) * 8 / 7;
        self.storage.vectors.memory_bytes() + self.ids.capacity() * 8 + map
    }

    /// Payload (version 1): metric tag u8, 3 zero bytes, dim u32, count u64, ids `count x u64`,
    /// vectors `count x dim x f32` (as stored: normalised for cosine). All little-endian.
    fn to_bytes(&self) -> Vec<u8> {
        let v = &self.storage.vectors;
        let mut w = Writer::new(IndexKind::Flat.tag(), VERSION, 16 + self.ids.len() * 8 + v.as_slice().len() * 4);
        w.u8(self.metric().tag());
        w.u8(0);
        w.u8(0);
        w.u8(0);
        w.u32(v.dim() as u32);
        w.u64(self.ids.len() as u64);
        w.u64s(&self.ids);
        w.f32s(v.as_slice());
        w.finish()
    }
}

impl MutableIndex for FlatIndex {
    fn insert(&mut self, id: u64, vector: &[f32]) -> Result<()> {
        validate_vector(vector, self.dim())?;
        let mut v = vector.to_vec();
        self.metric().prepare(&mut v)?;
        let vectors = &mut self.storage.vectors;
        match self.rows.get(&id) {
            Some(&row) => vectors.set(row as usize, &v)?,
            None => {
                if vectors.len() >= u32::MAX as usize {
                    return Err(Error::invalid("points", "fewer than 2^32 points per index", vectors.len()));
                }
                let row = vectors.push(&v)?;
                self.ids.push(id);
                self.rows.insert(id, row as u32);
            }
        }
        Ok(())
    }

    fn remove(&mut self, id: u64) -> bool {
        let Some(row) = self.rows.remove(&id) else { return false };
        let row = row as usize;
        self.storage.vectors.swap_remove(row);
        self.ids.swap_remove(row);
        if let Some(&moved) = self.ids.get(row) {
            self.rows.insert(moved, row as u32);
        }
        true
    }
}

//! Segments: the unit of storage and search. A collection holds one *growing* segment (appends, exact scan,
//! searchable at once) and any number of *sealed* ones (immutable rows with a built index; only their deletion
//! bitmap changes). Rows are addressed by their offset (`u32`) inside the segment; indexes are built over offsets.
//!
//! A sealed segment is one segment file (`quiver_storage::segment`): metadata, ids and times, prepared vectors,
//! zstd-compressed payloads and the serialised index, each block checksummed. Its deletions live in the manifest
//! (they change after the file is written).

use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use parking_lot::RwLock;
use quiver_index::{AnyIndex, IdFilter, IdSet, IndexKind, Metric, Neighbor, SearchParams, TopK, VectorSet};
use quiver_storage::{BlockKind, Directory, SegmentWriter};
use roaring::RoaringBitmap;

use crate::codec::{Reader, Writer};
use crate::error::Result;
use crate::filter::Filter;
use crate::id::PointId;
use crate::mapped::{ScratchFile, ScratchVectors};
use crate::ops::{PointWrite, read_payload};
use crate::payload::Payload;
use crate::payload_index::{Estimate, FieldType, PayloadIndex, RowSource};
use crate::payloads::{FilePayloads, PayloadRef, PayloadWriter, Payloads};
use crate::sparse::{SparseSpace, SparseVector};

/// Format version of the engine's segment metadata block.
pub const SEGMENT_META_VERSION: u8 = 1;
/// Tag of an empty vectors block meaning "the index block holds every row's vector, in row order" (tag 0: the
/// block holds the vectors itself).
pub const VECTORS_IN_INDEX_TAG: u32 = 1;

/// The engine's segment layout this build writes: 2 = the vectors block read in place (an HNSW index written
/// without its copy) and payloads as JSON plus row offsets, read in place; 1 = vectors inside the HNSW index and
/// payloads in one compressed block (still read; rewritten in layout 2 by the next optimizer job on the segment).
pub const SEGMENT_LAYOUT: u8 = 2;

/// The layout (see [`SEGMENT_LAYOUT`]) a segment file's blocks follow.
pub fn layout_of(blocks: &[quiver_storage::segment::BlockInfo]) -> u8 {
    let vectors_in_index = blocks.iter().any(|b| b.kind == BlockKind::Vectors && b.tag == VECTORS_IN_INDEX_TAG);
    let payloads_in_place = blocks.iter().any(|b| b.kind == BlockKind::Payload && b.tag == crate::payloads::DATA_TAG);
    if !vectors_in_index && payloads_in_place { 2 } else { 1 }
}

/// Tag of the metadata block that describes a segment's named vector spaces, and the base of the tags of the
/// vectors and index blocks of spaces 1, 2, … (`SPACES_TAG + space`). Files of collections with one unnamed vector
/// have none of these blocks.
pub const SPACES_TAG: u32 = 0x100;
/// Base of the tags of the blocks holding the sparse vectors (`SPARSE_TAG + i` for the `i`-th name).
pub const SPARSE_TAG: u32 = 0x200;
/// Format version of the spaces metadata block.
const SPACES_VERSION: u8 = 1;

/// The vector spaces a collection's segments hold: space 0 (the only vector, or the first named one) and the
/// other named vectors, with their names and dimensions.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Layout {
    /// `(name, dimension)` per space, space 0 first.
    pub spaces: Vec<(String, usize)>,
    /// Whether the vectors are named (then a point may lack any of them).
    pub named: bool,
    /// The sparse vectors' names, in order.
    pub sparse: Vec<String>,
    /// Whether space 0 is a real vector (not a collection of sparse vectors only's placeholder).
    pub dense: bool,
}

impl Layout {
    pub fn of(cfg: &crate::config::CollectionConfig) -> Arc<Layout> {
        Arc::new(Layout {
            spaces: cfg.spaces().iter().map(|s| (s.name.to_owned(), s.dimension)).collect(),
            named: cfg.is_named(),
            sparse: cfg.sparse_vectors.keys().cloned().collect(),
            dense: cfg.has_dense(),
        })
    }

    /// One unnamed vector of `dim`.
    #[cfg(test)]
    pub fn single(dim: usize) -> Arc<Layout> {
        Arc::new(Layout { spaces: vec![(String::new(), dim)], named: false, sparse: Vec::new(), dense: true })
    }
}

/// The vectors and index of one named space beyond space 0 in a segment. Rows without a vector there hold zeros
/// (and are listed in [`SegmentData::missing`]).
#[derive(Debug)]
pub(crate) struct Space {
    pub vectors: VectorSet,
    pub index: Option<AnyIndex>,
    pub index_note: Option<String>,
}

/// Which part of the collection a segment belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Tier {
    /// Takes writes; exact scan.
    Growing,
    /// Sealed with the collection's index.
    Hot,
    /// Sealed with the tiering policy's cold index.
    Cold,
}

impl Tier {
    pub(crate) fn code(self) -> u8 {
        match self {
            Tier::Growing => 0,
            Tier::Hot => 1,
            Tier::Cold => 2,
        }
    }

    pub(crate) fn from_code(c: u8) -> Option<Tier> {
        Some(match c {
            0 => Tier::Growing,
            1 => Tier::Hot,
            2 => Tier::Cold,
            _ => return None,
        })
    }
}

/// A segment: an id, a tier and its rows behind a lock (readers share it; writers append or mark deletions).
#[derive(Debug)]
pub(crate) struct Segment {
    pub id: u64,
    pub tier: Tier,
    pub data: RwLock<SegmentData>,
}

/// The rows of a segment.
#[derive(Debug)]
pub(crate) struct SegmentData {
    pub ids: Vec<PointId>,
    /// Newest row of each id in this segment (deleted rows included; callers check `deleted`), while the segment
    /// takes appends. A sealed segment drops it and finds an id by binary search over `id_order` (4 bytes a row
    /// instead of about 100 for the map's entry and control byte); read it through [`SegmentData::row_of_id`].
    row_of: HashMap<PointId, u32>,
    /// Whether rows are found through `id_order` instead of `row_of` (a sealed segment; see
    /// [`SegmentData::seal_ids`]).
    ids_sorted: bool,
    /// The rows' vectors — empty when `vectors_in_index` (read them through [`SegmentData::vector`]).
    pub vectors: VectorSet,
    /// The index keeps a full-precision copy of every row's vector in row order (HNSW), so the segment does not
    /// keep its own: one copy in memory and on disk instead of two.
    pub vectors_in_index: bool,
    pub payloads: Payloads,
    pub created: Vec<u64>,
    pub expires: Vec<u64>,
    /// Rows with an expiry, by expiry time.
    pub ttl: BTreeMap<u64, Vec<u32>>,
    pub deleted: RoaringBitmap,
    /// `None`: exact scan (growing segments, `flat` collections, or an index that could not be built).
    pub index: Option<AnyIndex>,
    pub index_note: Option<String>,
    pub payload_index: PayloadIndex,
    /// Bytes of the segment file (0 for the growing segment).
    pub file_bytes: u64,
    /// Rows in id order, computed on first use (scroll pages walk it); cleared by an append.
    pub id_order: std::sync::OnceLock<Vec<u32>>,
    /// The collection's vector spaces.
    pub layout: Arc<Layout>,
    /// Spaces 1, 2, … (named vectors beyond the first); empty with one vector space.
    pub more: Vec<Space>,
    /// Per space (space 0 first), the rows without a vector in it; empty unless the vectors are named.
    pub missing: Vec<RoaringBitmap>,
    /// The sparse vectors, one space per name of `layout.sparse`.
    pub sparse: Vec<SparseSpace>,
}

/// The planner's cost model: scoring `a` admitted rows exactly costs about `a` distance computations read from
/// memory, and a filtered graph search admitting a share `s = a / live` costs about `U / s`, where `U` (an
/// unfiltered search) is worth about this many exact row scores. Exact wins while `a·s < U`, i.e. while
/// `a < sqrt(U · live)`. `U ≈ 2000` was measured on the 100k WordNet set (HNSW, ef 64: 0.2–0.3 ms per segment vs
/// about 150 ns per exactly scored 384-d row); see `docs/benchmarks.md`.
pub const EXACT_COST_RATIO: f64 = 2000.0;

/// Rows per block of an exact filtered scan: each block's admitted rows form one `u64` mask.
const SCAN_BLOCK: u32 = 64;
/// A block with at least this many admitted rows (of [`SCAN_BLOCK`]) is scored whole, in row order, and the
/// distances of its other rows dropped. Reading rows in order streams them from memory at about 60 ns per 384-d
/// row, while picking out the admitted rows one by one (gaps between them defeat the hardware prefetcher) costs
/// about 150 ns per row: a filter admitting 70% of the rows took 1.6 times as long as no filter (100k WordNet set,
/// `flat`). The break-even share is about 60 / 150 = 40%; 24 of 64 is 37.5%.
const DENSE_BLOCK: u32 = 24;

/// Pushes every row of `admitted` into `top`, scored by `distance`, with the same result as scoring them one by
/// one in row order: the dense blocks of the bitmap (see [`DENSE_BLOCK`]) are scored row by row in order, the
/// sparse ones admitted row by admitted row.
fn score_admitted(admitted: &RoaringBitmap, distance: impl Fn(u32) -> f32, top: &mut TopK) {
    let mut scores = [0.0f32; SCAN_BLOCK as usize];
    let mut score_block = |block: u32, mask: u64, top: &mut TopK| {
        let base = block * SCAN_BLOCK;
        let dense = mask.count_ones() >= DENSE_BLOCK;
        if dense {
            // From the first admitted row to the last: rows of the segment, scored in order.
            for i in mask.trailing_zeros()..SCAN_BLOCK - mask.leading_zeros() {
                scores[i as usize] = distance(base + i);
            }
        }
        let mut m = mask;
        while m != 0 {
            let i = m.trailing_zeros();
            let d = if dense { scores[i as usize] } else { distance(base + i) };
            top.push(Neighbor::new(u64::from(base + i), d));
            m &= m - 1;
        }
    };
    let (mut block, mut mask) = (0u32, 0u64);
    for row in admitted {
        let b = row / SCAN_BLOCK;
        if b != block && mask != 0 {
            score_block(block, mask, top);
            mask = 0;
        }
        block = b;
        mask |= 1 << (row % SCAN_BLOCK);
    }
    if mask != 0 {
        score_block(block, mask, top);
    }
}

/// How one segment answered a query (for `explain`).
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct SegmentPlan {
    /// Segment id.
    pub segment: u64,
    /// Its tier.
    pub tier: Tier,
    /// `exact` (scored every admitted row) or `index:<kind>` (filtered index search).
    pub plan: String,
    /// Live rows in the segment.
    pub live_rows: u64,
    /// Estimated rows the filter admits, from the payload indexes (before evaluation).
    pub estimate: Option<(u64, u64, u64)>,
    /// Rows the filter admitted (live, unexpired).
    pub matched: Option<u64>,
    /// Filter keys answered by payload indexes.
    pub indexed_keys: Vec<String>,
    /// Filter keys evaluated by reading payloads (no index on them).
    pub unindexed_keys: Vec<String>,
}

/// Admits the rows of `allowed` (all rows when `None`) not in `excluded`; `count` is how many that is.
pub(crate) struct BitmapFilter<'a> {
    pub allowed: Option<&'a RoaringBitmap>,
    pub excluded: &'a RoaringBitmap,
    pub count: u64,
}

impl IdFilter for BitmapFilter<'_> {
    fn allows(&self, id: u64) -> bool {
        let Ok(row) = u32::try_from(id) else { return false };
        self.allowed.is_none_or(|a| a.contains(row)) && !self.excluded.contains(row)
    }
    fn cardinality(&self) -> Option<u64> {
        Some(self.count)
    }
    fn ids(&self) -> Option<&IdSet> {
        None
    }
}

impl RowSource for SegmentData {
    fn row_count(&self) -> u32 {
        self.ids.len() as u32
    }
    fn row_id(&self, row: u32) -> PointId {
        self.ids[row as usize]
    }
    fn row_payload(&self, row: u32) -> Option<PayloadRef<'_>> {
        self.payloads.get(row)
    }
    fn rows_of_ids(&self, ids: &[PointId]) -> RoaringBitmap {
        ids.iter().filter_map(|id| self.row_of_id(id)).collect()
    }
}

impl SegmentData {
    pub fn empty(layout: &Arc<Layout>, fields: &[(String, FieldType)]) -> Result<SegmentData> {
        let more = layout.spaces[1..]
            .iter()
            .map(|(_, dim)| Ok(Space { vectors: VectorSet::new(*dim)?, index: None, index_note: None }))
            .collect::<Result<Vec<_>>>()?;
        let missing = if layout.named { vec![RoaringBitmap::new(); layout.spaces.len()] } else { Vec::new() };
        let mut d = SegmentData {
            ids: Vec::new(),
            row_of: HashMap::new(),
            ids_sorted: false,
            vectors: VectorSet::new(layout.spaces[0].1)?,
            vectors_in_index: false,
            payloads: Payloads::default(),
            created: Vec::new(),
            expires: Vec::new(),
            ttl: BTreeMap::new(),
            deleted: RoaringBitmap::new(),
            index: None,
            index_note: None,
            payload_index: PayloadIndex::default(),
            file_bytes: 0,
            id_order: std::sync::OnceLock::new(),
            layout: layout.clone(),
            more,
            missing,
            sparse: layout.sparse.iter().map(|_| SparseSpace::new()).collect(),
        };
        for (k, t) in fields {
            d.add_field(k, *t);
        }
        Ok(d)
    }

    /// Every row's vector, in row order (prepared: unit length under cosine): the index's copy when
    /// `vectors_in_index`, else the segment's own.
    pub fn row_vectors(&self) -> &VectorSet {
        match self.index.as_ref().and_then(AnyIndex::row_vectors) {
            Some(v) if self.vectors_in_index => v,
            _ => &self.vectors,
        }
    }

    /// The vector of `row` in space 0.
    pub fn vector(&self, row: usize) -> &[f32] {
        self.row_vectors().get(row)
    }

    /// Every row's vector in `space`, in row order (zeros where a row has none).
    pub fn space_vectors(&self, space: usize) -> &VectorSet {
        match space {
            0 => self.row_vectors(),
            s => &self.more[s - 1].vectors,
        }
    }

    /// The index of `space`, if built.
    pub fn space_index(&self, space: usize) -> Option<&AnyIndex> {
        match space {
            0 => self.index.as_ref(),
            s => self.more[s - 1].index.as_ref(),
        }
    }

    /// The vector of `row` in `space`, `None` when the row has none there.
    pub fn vector_in(&self, space: usize, row: u32) -> Option<&[f32]> {
        if self.missing.get(space).is_some_and(|m| m.contains(row)) {
            return None;
        }
        Some(self.space_vectors(space).get(row as usize))
    }

    /// Every sparse vector `row` has, by name (`None` when the collection has no sparse vectors).
    pub fn sparse_vectors(&self, row: u32) -> Option<BTreeMap<String, SparseVector>> {
        if self.sparse.is_empty() {
            return None;
        }
        let named = self
            .sparse
            .iter()
            .zip(&self.layout.sparse)
            .filter_map(|(s, name)| s.get(row).map(|v| (name.clone(), v)))
            .collect();
        Some(named)
    }

    /// Every named vector of `row`, by name (`None` unless the vectors are named).
    pub fn named_vectors(&self, row: u32) -> Option<BTreeMap<String, Vec<f32>>> {
        if !self.layout.named {
            return None;
        }
        let named = (0..self.layout.spaces.len())
            .filter_map(|s| self.vector_in(s, row).map(|v| (self.layout.spaces[s].0.clone(), v.to_vec())))
            .collect();
        Some(named)
    }

    pub fn len(&self) -> u32 {
        self.ids.len() as u32
    }

    /// Rows neither deleted nor expired at `now_ms`.
    pub fn live_count(&self, now_ms: u64) -> u64 {
        u64::from(self.len()) - self.excluded(now_ms).len()
    }

    /// Deleted rows plus rows expired at `now_ms` (borrowed, no copy, when nothing has expired: every query
    /// asks this of every segment).
    pub fn excluded(&self, now_ms: u64) -> Cow<'_, RoaringBitmap> {
        let mut expired = self.ttl.range(..=now_ms).peekable();
        if expired.peek().is_none() {
            return Cow::Borrowed(&self.deleted);
        }
        let mut out = self.deleted.clone();
        for (_, rows) in expired {
            out.extend(rows.iter().copied());
        }
        Cow::Owned(out)
    }

    /// The newest row of `id` in this segment, deleted or not.
    pub fn row_of_id(&self, id: &PointId) -> Option<u32> {
        if !self.ids_sorted {
            return self.row_of.get(id).copied();
        }
        // Rows sorted by (id, row): the last row of `id` is the newest.
        let order = self.id_order();
        let end = order.partition_point(|&r| self.ids[r as usize] <= *id);
        let row = *order.get(end.checked_sub(1)?)?;
        (self.ids[row as usize] == *id).then_some(row)
    }

    /// Drops the id → row map of a segment that takes no more appends, for a binary search over its rows in id
    /// order; of rows sharing an id, all but the newest are marked deleted (what the map does on append).
    pub fn seal_ids(&mut self) {
        self.row_of = HashMap::new();
        self.ids_sorted = true;
        let order = self.id_order();
        let older: Vec<u32> =
            order.windows(2).filter(|w| self.ids[w[0] as usize] == self.ids[w[1] as usize]).map(|w| w[0]).collect();
        self.deleted.extend(older);
    }

    /// The live row of `id`, if any (not deleted, not expired).
    pub fn live_row(&self, id: &PointId, now_ms: u64) -> Option<u32> {
        let row = self.row_of_id(id)?;
        let alive = !self.deleted.contains(row) && !self.is_expired(row, now_ms);
        alive.then_some(row)
    }

    pub fn is_expired(&self, row: u32, now_ms: u64) -> bool {
        let e = self.expires[row as usize];
        e != 0 && e <= now_ms
    }

    /// Appends a row (growing segment). The caller has validated and prepared the vectors.
    pub fn append(&mut self, p: &PointWrite) -> Result<u32> {
        let row = self.len();
        if self.layout.named {
            for s in 0..self.layout.spaces.len() {
                let v = if s == 0 { &p.vector[..] } else { p.more.get(s - 1).map_or(&[][..], Vec::as_slice) };
                let set = if s == 0 { &mut self.vectors } else { &mut self.more[s - 1].vectors };
                if v.is_empty() {
                    set.push(&vec![0.0; set.dim()])?;
                    self.missing[s].insert(row);
                } else {
                    set.push(v)?;
                }
            }
        } else if !self.vectors_in_index {
            self.vectors.push(&p.vector)?;
        }
        let none = SparseVector::default();
        for (i, space) in self.sparse.iter_mut().enumerate() {
            space.push(p.sparse.get(i).unwrap_or(&none));
        }
        Ok(self.append_row(p.id, p.payload.clone(), p.created_ms, p.expires_ms))
    }

    /// Appends everything of a row but its vector.
    fn append_row(&mut self, id: PointId, payload: Payload, created_ms: u64, expires_ms: u64) -> u32 {
        let row = self.append_row_meta(id, &payload, created_ms, expires_ms);
        self.payloads.push(payload);
        row
    }

    /// Appends a row's id and times and indexes its payload, without storing the payload (the caller does).
    fn append_row_meta(&mut self, id: PointId, payload: &Payload, created_ms: u64, expires_ms: u64) -> u32 {
        self.id_order.take();
        let row = self.len();
        self.ids.push(id);
        // Without the map (a sealed segment being read), `seal_ids` marks the older rows of an id afterwards.
        if !self.ids_sorted
            && let Some(old) = self.row_of.insert(id, row)
        {
            self.deleted.insert(old);
        }
        self.payload_index.insert(row, payload);
        self.created.push(created_ms);
        self.expires.push(expires_ms);
        if expires_ms != 0 {
            self.ttl.entry(expires_ms).or_default().push(row);
        }
        row
    }

    pub fn add_field(&mut self, key: &str, ty: FieldType) {
        let mut idx = std::mem::take(&mut self.payload_index);
        idx.add_field(key, ty, self);
        self.payload_index = idx;
    }

    /// The full point at `row`.
    pub fn point(&self, row: u32) -> PointWrite {
        let r = row as usize;
        let vector_in = |s: usize| self.vector_in(s, row).map(<[f32]>::to_vec).unwrap_or_default();
        PointWrite {
            id: self.ids[r],
            vector: vector_in(0),
            more: (1..self.layout.spaces.len()).map(vector_in).collect(),
            sparse: self.sparse.iter().map(|s| s.get(row).unwrap_or_default()).collect(),
            payload: self.payloads.get(row).map(PayloadRef::into_owned).unwrap_or_default(),
            created_ms: self.created[r],
            expires_ms: self.expires[r],
        }
    }

    /// Heap bytes (an estimate for payloads); vectors read in place from the segment file are not counted
    /// (see [`SegmentData::mapped_bytes`]).
    pub fn memory_bytes(&self) -> usize {
        let payload_guess = self.payload_heap_bytes() as usize;
        self.vectors.memory_bytes()
            // ids, created and expiry times, and the id → row map (or the rows in id order once sealed)
            + self.ids.len() * (std::mem::size_of::<PointId>() + 8 + 8)
            + if self.ids_sorted { self.ids.len() * 4 } else { self.row_of.capacity() * 49 * 8 / 7 }
            + payload_guess
            + self.index.as_ref().map_or(0, |i| i.as_index().memory_bytes())
            + self.payload_index.memory_bytes()
            + self.deleted.serialized_size()
            + self
                .more
                .iter()
                .map(|s| s.vectors.memory_bytes() + s.index.as_ref().map_or(0, |i| i.as_index().memory_bytes()))
                .sum::<usize>()
            + self.missing.iter().map(RoaringBitmap::serialized_size).sum::<usize>()
            + self.sparse.iter().map(SparseSpace::memory_bytes).sum::<usize>()
    }

    /// The rows in id order (rows of one id, of which at most one is live, in row order). Sorted once per sealed
    /// segment; the growing segment's is sorted again after appends.
    pub fn id_order(&self) -> &[u32] {
        self.id_order.get_or_init(|| {
            let mut order: Vec<u32> = (0..self.len()).collect();
            order.sort_by_key(|&r| (self.ids[r as usize], r));
            order
        })
    }

    /// Estimated heap bytes of the payloads held now (a sealed segment's: its cached chunks).
    pub fn payload_heap_bytes(&self) -> u64 {
        self.payloads.heap_bytes()
    }

    /// What all its payloads would cost on the heap (the memory estimate's per-payload average).
    pub fn payload_total_guess(&self) -> u64 {
        self.payloads.total_guess()
    }

    /// Bytes of vectors read in place from the memory-mapped segment file (in the page cache, not the heap).
    pub fn mapped_bytes(&self) -> usize {
        self.row_vectors().shared_bytes() + self.more.iter().map(|s| s.vectors.shared_bytes()).sum::<usize>()
    }

    /// The `k` nearest live rows to the prepared `query` that `filter` admits: exact over the admitted rows when
    /// they are at most `max(exact_below, sqrt(EXACT_COST_RATIO · live))` (or the segment has no index), else a
    /// filtered index search.
    #[allow(clippy::too_many_arguments)]
    pub fn search(
        &self,
        seg: (u64, Tier),
        space: usize,
        metric: Metric,
        query: &[f32],
        k: usize,
        filter: Option<&Filter>,
        params: &SearchParams,
        exact_below: usize,
        now_ms: u64,
        target: Option<(f64, Option<&crate::recall::Calibration>)>,
    ) -> Result<(Vec<Neighbor>, SegmentPlan)> {
        let mut excluded = self.excluded(now_ms);
        // Rows without a vector in this space are not candidates.
        if let Some(m) = self.missing.get(space).filter(|m| !m.is_empty()) {
            excluded = Cow::Owned(&*excluded | m);
        }
        let live = u64::from(self.len()) - excluded.len();
        let mut plan = SegmentPlan {
            segment: seg.0,
            tier: seg.1,
            plan: String::new(),
            live_rows: live,
            estimate: None,
            matched: None,
            indexed_keys: Vec::new(),
            unindexed_keys: Vec::new(),
        };
        let allowed = filter.map(|f| {
            let Estimate { min, exp, max } = self.payload_index.estimate(f, self.len());
            plan.estimate = Some((min, exp, max));
            self.admitted_by(f, &excluded, &mut plan)
        });
        let admitted = allowed.as_ref().map_or(live, RoaringBitmap::len);
        if k == 0 || admitted == 0 {
            plan.plan = "none".into();
            return Ok((Vec::new(), plan));
        }
        let exact_limit = (exact_below as f64).max((EXACT_COST_RATIO * live as f64).sqrt());
        let use_index = self.space_index(space).filter(|_| allowed.is_none() || admitted as f64 > exact_limit);
        let hits = match use_index {
            Some(index) => {
                let kind = index.as_index().kind();
                plan.plan = format!("index:{kind}");
                // A target recall: this segment's width for it (see `crate::recall`).
                let tuned;
                let params = match target {
                    Some((t, Some(cal))) => {
                        let (p, w, est) = cal.params(params, t, admitted as f64 / live.max(1) as f64, k);
                        plan.plan = format!("index:{kind} {}={w} (target_recall {}, estimated {est:.3})", cal.param, t);
                        tuned = p;
                        &tuned
                    }
                    Some((t, None)) if kind == quiver_index::IndexKind::Hnsw => {
                        let ef = crate::recall::UNCALIBRATED_EF * k.div_ceil(crate::recall::CALIBRATION_K).max(1);
                        plan.plan = format!("index:{kind} ef={ef} (target_recall {}, not calibrated yet)", t);
                        let mut p = params.clone();
                        p.ef = Some(ef);
                        tuned = p;
                        &tuned
                    }
                    _ => params,
                };
                let f = BitmapFilter { allowed: allowed.as_ref(), excluded: &excluded, count: admitted };
                let needs_filter = allowed.is_some() || !excluded.is_empty();
                index.as_index().search(query, k, params, needs_filter.then_some(&f as &dyn IdFilter))?
            }
            None => {
                plan.plan = "exact".into();
                let mut top = TopK::new(k);
                let vectors = self.space_vectors(space);
                let distance = |row: u32| metric.distance(query, vectors.get(row as usize));
                match &allowed {
                    Some(rows) => score_admitted(rows, distance, &mut top),
                    None => (0..self.len()).filter(|r| !excluded.contains(*r)).for_each(|row| {
                        top.push(Neighbor::new(u64::from(row), distance(row)));
                    }),
                }
                top.into_sorted_vec()
            }
        };
        Ok((hits, plan))
    }

    /// The rows `filter` admits less `excluded`, with the keys and count noted in `plan`.
    fn admitted_by(&self, filter: &Filter, excluded: &RoaringBitmap, plan: &mut SegmentPlan) -> RoaringBitmap {
        let eval = self.payload_index.evaluate(filter, self);
        plan.indexed_keys = eval.indexed_keys;
        plan.unindexed_keys = eval.unindexed_keys;
        let mut rows = eval.rows;
        rows -= excluded;
        plan.matched = Some(rows.len());
        rows
    }

    /// The `k` live rows with the highest dot product with `query` in sparse space `space` that `filter` admits
    /// (exact, through the inverted index; rows sharing no term with the query are not returned).
    pub fn search_sparse(
        &self,
        seg: (u64, Tier),
        space: usize,
        query: &SparseVector,
        k: usize,
        filter: Option<&Filter>,
        now_ms: u64,
    ) -> (Vec<Neighbor>, SegmentPlan) {
        let excluded = self.excluded(now_ms);
        let mut plan = SegmentPlan {
            segment: seg.0,
            tier: seg.1,
            plan: "sparse".into(),
            live_rows: u64::from(self.len()) - excluded.len(),
            estimate: None,
            matched: None,
            indexed_keys: Vec::new(),
            unindexed_keys: Vec::new(),
        };
        let allowed = filter.map(|f| self.admitted_by(f, &excluded, &mut plan));
        let hits = if k == 0 { Vec::new() } else { self.sparse[space].search(query, k, allowed.as_ref(), &excluded) };
        (hits, plan)
    }

    /// Appends row `row` of this segment to `out` (the rows of a segment being written).
    pub fn copy_row(&self, row: u32, out: &mut SealedRows) -> Result<()> {
        let r = row as usize;
        let payload = self.payloads.get(row);
        let empty = Payload::new();
        let payload = payload.as_deref().unwrap_or(&empty);
        for (space, out_space) in self.sparse.iter().zip(&mut out.sparse) {
            out_space.push(&space.get(row).unwrap_or_default());
        }
        if self.layout.named {
            let vectors: Vec<Option<&[f32]>> = (0..self.layout.spaces.len()).map(|s| self.vector_in(s, row)).collect();
            out.push_named(&self.ids[r], &vectors, payload, self.created[r], self.expires[r])
        } else {
            out.push(&self.ids[r], self.vector(r), payload, self.created[r], self.expires[r])
        }
    }

    /// Reads segment file `id`, checking every block's checksum; `deleted` comes from the manifest. The file must
    /// hold the vector spaces of `layout`.
    pub fn read_file(
        dir: &dyn Directory,
        id: u64,
        deleted: RoaringBitmap,
        fields: &[(String, FieldType)],
        layout: &Arc<Layout>,
    ) -> Result<(SegmentData, Tier)> {
        let seg = Arc::new(quiver_storage::Segment::open(dir, id)?);
        let name = quiver_storage::segment::file_name(id);
        let path = dir.file_path(&name);
        let find_tag = |kind: BlockKind, tag: u32| seg.blocks().iter().position(|b| b.kind == kind && b.tag == tag);
        let find = |kind: BlockKind| find_tag(kind, 0);
        let corrupt = |detail: &str| crate::Error::Corrupt { file: path.clone(), offset: 0, detail: detail.into() };
        let meta_i = find(BlockKind::Metadata).ok_or_else(|| corrupt("no metadata block"))?;
        let meta = seg.block(meta_i)?;
        let mut r = Reader::new(&meta, &path, seg.blocks()[meta_i].offset);
        let v = r.u8("segment metadata version")?;
        if v != SEGMENT_META_VERSION {
            return Err(r.corrupt(format!("segment metadata version {v}, this build reads {SEGMENT_META_VERSION}")));
        }
        let tier = Tier::from_code(r.u8("tier")?).ok_or_else(|| r.corrupt("unknown tier"))?;
        let rows = r.len(9 + 16, "row count")?;
        let dim = r.u64("dimension")? as usize;
        if dim != layout.spaces[0].1 {
            return Err(r.corrupt(format!("dimension {dim}, the collection's is {}", layout.spaces[0].1)));
        }
        let mut d = SegmentData::empty(layout, &[])?;
        // Rows are found through `id_order` (see `seal_ids`), so no id → row map is built while reading.
        d.ids_sorted = true;
        let mut times = Vec::with_capacity(rows);
        for _ in 0..rows {
            let id = r.id("point id")?;
            let c = r.u64("created")?;
            let e = r.u64("expires")?;
            times.push((id, c, e));
        }
        let note = if r.u8("index note flag")? == 1 { Some(r.string("index note")?) } else { None };
        let spaces = match (find_tag(BlockKind::Metadata, SPACES_TAG), layout.named) {
            (None, false) => Vec::new(),
            (Some(i), true) => read_spaces(&seg.block(i)?, &path, seg.blocks()[i].offset, layout, rows)?,
            (None, true) => return Err(corrupt("no named vectors block in a collection with named vectors")),
            (Some(_), false) => return Err(corrupt("a named vectors block in a collection with one unnamed vector")),
        };
        let read_index = |ix: usize, vectors: Option<&VectorSet>| -> Result<AnyIndex> {
            let bytes = seg.block(ix)?;
            let index = match vectors {
                Some(v) => AnyIndex::from_bytes_with_vectors(&bytes, v.clone()),
                None => AnyIndex::from_bytes(&bytes),
            };
            index.map_err(|e| crate::Error::Corrupt {
                file: path.clone(),
                offset: seg.blocks()[ix].offset,
                detail: format!("index block: {e}"),
            })
        };
        let index_i = find(BlockKind::Index);
        let own_i = find(BlockKind::Vectors);
        let shared_i = seg.blocks().iter().position(|b| b.kind == BlockKind::Vectors && b.tag == VECTORS_IN_INDEX_TAG);
        // An index built over only the rows that have a vector holds its own copy of them.
        let compact = |space: usize| spaces.get(space).is_some_and(|s: &SpaceMeta| s.compact);
        match (own_i, shared_i) {
            // The rows' vectors, read in place; an index written without its copy reads them too.
            (Some(vec_i), _) => {
                d.vectors = crate::mapped::vectors_in_place(&seg, vec_i, rows, dim)?;
                if let Some(ix) = index_i {
                    d.index = Some(read_index(ix, (!compact(0)).then_some(&d.vectors))?);
                }
            }
            // An older file: the index holds the vectors. It must hold one per row, of this dimension.
            (None, Some(vec_i)) => {
                let ix = index_i.ok_or_else(|| corrupt("vectors are in the index, but no index block"))?;
                let index = read_index(ix, None)?;
                let held = index.row_vectors().map(|v| (v.len(), v.dim()));
                if held != Some((rows, dim)) {
                    return Err(crate::Error::Corrupt {
                        file: path.clone(),
                        offset: seg.blocks()[vec_i].offset,
                        detail: format!(
                            "vectors are in the index, which holds {held:?} (rows, dimension); expected ({rows}, {dim})"
                        ),
                    });
                }
                d.index = Some(index);
                d.vectors_in_index = true;
            }
            (None, None) => return Err(corrupt("no vectors block")),
        }
        for (s, meta) in spaces.into_iter().enumerate() {
            d.missing[s] = meta.missing;
            if s == 0 {
                continue;
            }
            let tag = SPACES_TAG + s as u32;
            let vec_i =
                find_tag(BlockKind::Vectors, tag).ok_or_else(|| corrupt("no vectors block of a named vector"))?;
            let space = &mut d.more[s - 1];
            space.vectors = crate::mapped::vectors_in_place(&seg, vec_i, rows, meta.dim)?;
            if let Some(ix) = find_tag(BlockKind::Index, tag) {
                space.index = Some(read_index(ix, (!meta.compact).then_some(&space.vectors))?);
            }
            space.index_note = meta.note;
        }
        for (i, name) in layout.sparse.iter().enumerate() {
            let b = find_tag(BlockKind::Vectors, SPARSE_TAG + i as u32)
                .ok_or_else(|| corrupt(&format!("no block of the sparse vector {name:?}")))?;
            d.sparse[i] = SparseSpace::from_bytes(&seg.block(b)?, rows, &path, seg.blocks()[b].offset)?;
        }
        if find_tag(BlockKind::Vectors, SPARSE_TAG + layout.sparse.len() as u32).is_some() {
            return Err(corrupt("more sparse vector blocks than the collection has sparse vectors"));
        }
        // Payload indexes are filled while the payloads are read, once.
        for (k, t) in fields {
            d.add_field(k, *t);
        }
        let payload_block = |tag: u32| seg.blocks().iter().position(|b| b.kind == BlockKind::Payload && b.tag == tag);
        match (payload_block(crate::payloads::DATA_TAG), payload_block(crate::payloads::OFFSETS_TAG)) {
            // Read in place: each payload parsed once here (indexing it), then per read.
            (Some(data), Some(offsets)) => {
                // `open` calls back once per row in `0..rows`, and `times` holds `rows` entries.
                let fp = FilePayloads::open(seg.clone(), data, offsets, rows as u32, &path, |row, p| {
                    let (id, c, e) = times[row as usize];
                    d.append_row_meta(id, p, c, e);
                })?;
                d.payloads = Payloads::File(fp);
            }
            // Written before payloads were read in place: one compressed block, decoded onto the heap.
            _ => {
                let pay_i = find(BlockKind::Payload).ok_or_else(|| corrupt("no payload block"))?;
                let pbytes = seg.block(pay_i)?;
                let mut pr = Reader::new(&pbytes, &path, seg.blocks()[pay_i].offset);
                for (id, c, e) in times {
                    let payload = read_payload(&mut pr)?;
                    d.append_row(id, payload, c, e);
                }
                if !pr.is_empty() {
                    return Err(pr.corrupt("trailing bytes after the payloads"));
                }
            }
        }
        d.index_note = note;
        d.deleted |= deleted;
        d.file_bytes = dir.file_len(&name)?;
        d.seal_ids();
        Ok((d, tier))
    }
}

/// What the spaces metadata block says of one vector space.
#[derive(Debug)]
struct SpaceMeta {
    dim: usize,
    /// The index was built over only the rows with a vector, and holds its own copy of them.
    compact: bool,
    note: Option<String>,
    missing: RoaringBitmap,
}

/// The spaces metadata block: version, space count, then per space its dimension, the compact flag, the index
/// note and the rows without a vector (a serialised roaring bitmap). It must describe `layout`'s spaces.
fn read_spaces(
    bytes: &[u8],
    path: &std::path::Path,
    offset: u64,
    layout: &Layout,
    rows: usize,
) -> Result<Vec<SpaceMeta>> {
    let mut r = Reader::new(bytes, path, offset);
    let v = r.u8("named vectors block version")?;
    if v != SPACES_VERSION {
        return Err(r.corrupt(format!("named vectors block version {v}, this build reads {SPACES_VERSION}")));
    }
    let n = r.len(8 + 1 + 1 + 8, "named vector count")?;
    if n != layout.spaces.len() {
        return Err(r.corrupt(format!("{n} named vectors, the collection has {}", layout.spaces.len())));
    }
    let mut out = Vec::with_capacity(n);
    for (name, want) in &layout.spaces {
        let dim = r.u64("named vector dimension")? as usize;
        if dim != *want {
            return Err(r.corrupt(format!("vector {name:?} has dimension {dim}, the collection's is {want}")));
        }
        let compact = r.u8("compact index flag")? == 1;
        let note = if r.u8("index note flag")? == 1 { Some(r.string("index note")?) } else { None };
        let missing = RoaringBitmap::deserialize_from(r.bytes("rows without a vector")?)
            .map_err(|e| r.corrupt(format!("rows without a vector: {e}")))?;
        if missing.max().is_some_and(|m| m as usize >= rows) {
            return Err(r.corrupt(format!("rows without a vector go past the segment's {rows} rows")));
        }
        out.push(SpaceMeta { dim, compact, note, missing });
    }
    if !r.is_empty() {
        return Err(r.corrupt("trailing bytes after the named vectors"));
    }
    Ok(out)
}

/// The rows of a segment being written, gathered once: ids and times and payloads encoded straight into the bytes
/// the file stores, vectors streamed to one scratch file per space ([`ScratchVectors`]) that the index build then
/// reads in place — no heap copy of the rows' vectors. See [`write_sealed`].
#[derive(Debug)]
pub(crate) struct SealedRows {
    rows: u64,
    meta_rows: Writer,
    payloads: PayloadWriter,
    /// Per space (space 0 first; zeros where a row has no vector).
    vectors: Vec<ScratchVectors>,
    /// Per space, rows without a vector; empty unless the vectors are named.
    missing: Vec<RoaringBitmap>,
    /// The sparse vectors, per name.
    sparse: Vec<SparseSpace>,
}

impl SealedRows {
    /// Rows for segment `id` of a collection of `layout`, their vectors streamed to scratch files in `dir`.
    pub fn new(dir: &Arc<dyn Directory>, id: u64, layout: &Layout) -> Result<SealedRows> {
        let file = quiver_storage::segment::file_name(id);
        let vectors = layout
            .spaces
            .iter()
            .enumerate()
            .map(|(s, (_, dim))| {
                ScratchVectors::create(dir.clone(), format!("{file}.v{s}{}", quiver_storage::dir::TEMP_SUFFIX), *dim)
            })
            .collect::<Result<_>>()?;
        Ok(SealedRows {
            rows: 0,
            meta_rows: Writer::default(),
            payloads: PayloadWriter::default(),
            vectors,
            missing: if layout.named { vec![RoaringBitmap::new(); layout.spaces.len()] } else { Vec::new() },
            sparse: layout.sparse.iter().map(|_| SparseSpace::new()).collect(),
        })
    }

    pub fn push(&mut self, id: &PointId, vector: &[f32], payload: &Payload, created: u64, expires: u64) -> Result<()> {
        self.vectors[0].push(vector)?;
        self.push_meta(id, payload, created, expires)
    }

    /// A row of a collection with named vectors: one entry per space, `None` where the row has no vector.
    pub fn push_named(
        &mut self,
        id: &PointId,
        vectors: &[Option<&[f32]>],
        payload: &Payload,
        created: u64,
        expires: u64,
    ) -> Result<()> {
        let row = self.rows as u32;
        for (s, v) in vectors.iter().enumerate() {
            let set = &mut self.vectors[s];
            match v {
                Some(v) => set.push(v)?,
                None => {
                    set.push(&vec![0.0; set.dim()])?;
                    self.missing[s].insert(row);
                }
            }
        }
        self.push_meta(id, payload, created, expires)
    }

    fn push_meta(&mut self, id: &PointId, payload: &Payload, created: u64, expires: u64) -> Result<()> {
        self.meta_rows.id(id);
        self.meta_rows.u64(created);
        self.meta_rows.u64(expires);
        self.payloads.push(payload)?;
        self.rows += 1;
        Ok(())
    }
}

/// How one vector space of a segment is indexed: its metric and the index kind with its parameters (`None`: scan).
pub(crate) type SpaceBuild = (Metric, Option<(IndexKind, quiver_index::Params)>);

/// An index of `kind` over the rows of `vectors` not in `missing`, as the bytes to store and whether it holds its
/// own copy of the vectors (built over only some rows); `Err` is the note saying why none was built.
fn build_index(
    (metric, index): &SpaceBuild,
    vectors: VectorSet,
    missing: Option<&RoaringBitmap>,
) -> std::result::Result<Option<(Vec<u8>, bool)>, String> {
    let Some((kind, params)) = index else { return Ok(None) };
    let rows = vectors.len() as u64;
    if *kind == IndexKind::Flat || rows == 0 {
        return Ok(None);
    }
    let result = match missing.filter(|m| !m.is_empty()) {
        None => AnyIndex::build(*kind, *metric, vectors, (0..rows).collect(), params.clone()).map(|index| {
            // The index keeps the vectors in row order (HNSW): store them once, in the vectors block.
            let bytes = index.to_bytes_without_vectors().unwrap_or_else(|| index.as_index().to_bytes());
            Some((bytes, false))
        }),
        Some(missing) if missing.len() == rows => return Ok(None),
        Some(missing) => {
            let build = || -> quiver_index::Result<AnyIndex> {
                let mut present = VectorSet::new(vectors.dim())?;
                let mut ids = Vec::new();
                for row in (0..rows as u32).filter(|r| !missing.contains(*r)) {
                    present.push(vectors.get(row as usize))?;
                    ids.push(u64::from(row));
                }
                AnyIndex::build(*kind, *metric, present, ids, params.clone())
            };
            build().map(|index| Some((index.as_index().to_bytes(), true)))
        }
    };
    result.map_err(|e| format!("{kind} index not built ({e}); rows are scanned exactly"))
}

/// Writes `rows` as segment file `id` of `tier` (temp file, fsync, rename, directory fsync) with an index per
/// vector space as `spaces` says (space 0 first) over row numbers (none for `flat`, or when the build fails: the
/// note says why, and the rows are scanned exactly). Returns the file's size. Memory: the index builds read the
/// vectors in place from the scratch files [`SealedRows`] streamed them to, so the heap holds the indexes being
/// built and the payload bytes, never a copy of the vectors; the caller reads the file back
/// ([`SegmentData::read_file`]) to serve it with the vectors mapped.
pub(crate) fn write_sealed(
    dir: Arc<dyn Directory>,
    id: u64,
    tier: Tier,
    rows: SealedRows,
    spaces: &[SpaceBuild],
) -> Result<u64> {
    let SealedRows { rows, meta_rows, payloads, vectors, missing, sparse } = rows;
    // Every space's vectors, read in place from its scratch file (removed when its guard drops, after the builds).
    let (vectors, _scratch): (Vec<VectorSet>, Vec<ScratchFile>) =
        vectors.into_iter().map(ScratchVectors::finish).collect::<Result<Vec<_>>>()?.into_iter().unzip();
    let dims: Vec<usize> = vectors.iter().map(VectorSet::dim).collect();
    let dim = dims[0];
    let mut w = SegmentWriter::create(dir.clone(), id)?;
    w.add_block(BlockKind::Vectors, 0, &crate::mapped::vector_bytes(vectors[0].as_slice()))?;
    let (data, offsets) = payloads.into_blocks();
    w.add_block(BlockKind::Payload, crate::payloads::DATA_TAG, &data)?;
    w.add_block(BlockKind::Payload, crate::payloads::OFFSETS_TAG, &offsets)?;
    drop((data, offsets));
    for (s, v) in vectors.iter().enumerate().skip(1) {
        w.add_block(BlockKind::Vectors, SPACES_TAG + s as u32, &crate::mapped::vector_bytes(v.as_slice()))?;
    }
    for (s, v) in sparse.iter().enumerate() {
        w.add_block(BlockKind::Vectors, SPARSE_TAG + s as u32, &v.to_bytes())?;
    }
    drop(sparse);
    let mut notes: Vec<Option<String>> = Vec::new();
    let mut compact: Vec<bool> = Vec::new();
    for (s, v) in vectors.into_iter().enumerate() {
        debug_assert!(s < spaces.len(), "index settings for every space");
        let build = spaces.get(s).cloned().unwrap_or((Metric::Cosine, None));
        let tag = if s == 0 { 0 } else { SPACES_TAG + s as u32 };
        match build_index(&build, v, missing.get(s)) {
            Ok(Some((bytes, own))) => {
                w.add_block(BlockKind::Index, tag, &bytes)?;
                notes.push(None);
                compact.push(own);
            }
            Ok(None) => {
                notes.push(None);
                compact.push(false);
            }
            Err(note) => {
                notes.push(Some(note));
                compact.push(false);
            }
        }
    }
    if !missing.is_empty() {
        let mut m = Writer::default();
        m.u8(SPACES_VERSION);
        m.u64(missing.len() as u64);
        for (s, rows_missing) in missing.iter().enumerate() {
            m.u64(dims[s] as u64);
            m.u8(u8::from(compact[s]));
            m.u8(u8::from(notes[s].is_some()));
            if let Some(n) = &notes[s] {
                m.str(n);
            }
            let mut b = Vec::with_capacity(rows_missing.serialized_size());
            rows_missing
                .serialize_into(&mut b)
                .map_err(|cause| crate::Error::Io { file: segment_path(dir.as_ref(), id), cause })?;
            m.bytes(&b);
        }
        w.add_block(BlockKind::Metadata, SPACES_TAG, &m.buf)?;
    }
    // The metadata block comes last, so that it can say whether the index was built (readers find blocks by kind).
    let note = notes.into_iter().next().flatten();
    let mut meta = Writer::default();
    meta.u8(SEGMENT_META_VERSION);
    meta.u8(tier.code());
    meta.u64(rows);
    meta.u64(dim as u64);
    meta.buf.extend_from_slice(&meta_rows.buf);
    drop(meta_rows);
    meta.u8(u8::from(note.is_some()));
    if let Some(n) = &note {
        meta.str(n);
    }
    w.add_block(BlockKind::Metadata, 0, &meta.buf)?;
    let name = w.finish()?;
    Ok(dir.file_len(&name)?)
}

/// Full path of segment file `id` in `dir`.
pub(crate) fn segment_path(dir: &dyn Directory, id: u64) -> std::path::PathBuf {
    dir.file_path(&quiver_storage::segment::file_name(id))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use quiver_storage::MemDirectory;

    fn points(n: u64, dim: usize) -> Vec<PointWrite> {
        (0..n)
            .map(|i| PointWrite {
                id: PointId::Num(i),
                vector: (0..dim).map(|j| ((i * 31 + j as u64 * 7) % 101) as f32 / 10.0 - 5.0).collect(),
                more: Vec::new(),
                sparse: Vec::new(),
                payload: Payload::new(),
                created_ms: 1,
                expires_ms: 0,
            })
            .collect()
    }

    fn hnsw() -> Option<(IndexKind, quiver_index::Params)> {
        Some((IndexKind::Hnsw, quiver_index::Params::default()))
    }

    fn write(
        dir: &Arc<MemDirectory>,
        id: u64,
        pts: &[PointWrite],
        index: Option<(IndexKind, quiver_index::Params)>,
    ) -> u64 {
        let scratch: Arc<dyn Directory> = dir.clone();
        let mut rows = SealedRows::new(&scratch, id, &Layout::single(pts[0].vector.len())).unwrap();
        for p in pts {
            rows.push(&p.id, &p.vector, &p.payload, p.created_ms, p.expires_ms).unwrap();
        }
        let size = write_sealed(dir.clone(), id, Tier::Hot, rows, &[(Metric::Euclidean, index)]).unwrap();
        let left: Vec<String> = dir.list().unwrap().into_iter().filter(|n| n.ends_with(".tmp")).collect();
        assert!(left.is_empty(), "scratch files left behind: {left:?}");
        size
    }

    /// The vectors of a segment being written go to a scratch file, not the heap: the index is built over them
    /// in place, and the file is gone once the segment is written — or once a write fails (a full disk), which
    /// leaves no segment either.
    #[test]
    fn vectors_stream_through_a_scratch_file_that_is_removed_after_success_or_failure() {
        let dir = Arc::new(MemDirectory::new(1));
        let scratch: Arc<dyn Directory> = dir.clone();
        let pts = points(300, 8);
        let mut rows = SealedRows::new(&scratch, 9, &Layout::single(8)).unwrap();
        for p in &pts {
            rows.push(&p.id, &p.vector, &p.payload, p.created_ms, p.expires_ms).unwrap();
        }
        let name = format!("{}.v0.tmp", quiver_storage::segment::file_name(9));
        assert!(dir.exists(&name).unwrap(), "the rows' vectors are in a scratch file");
        write_sealed(dir.clone(), 9, Tier::Hot, rows, &[(Metric::Euclidean, hnsw())]).unwrap();
        assert!(!dir.exists(&name).unwrap());
        let (d, _) = SegmentData::read_file(dir.as_ref(), 9, RoaringBitmap::new(), &[], &Layout::single(8)).unwrap();
        assert_eq!(d.len(), 300);
        assert_eq!(d.vector(123), &pts[123].vector[..]);
        // Out of space while streaming the vectors: the push fails, and dropping the rows removes the scratch.
        let before = dir.used_bytes();
        dir.set_capacity(Some(before + 4096));
        let mut rows = SealedRows::new(&scratch, 10, &Layout::single(8)).unwrap();
        let err = pts
            .iter()
            .cycle()
            .take(100_000)
            .try_for_each(|p| rows.push(&p.id, &p.vector, &p.payload, p.created_ms, p.expires_ms));
        assert!(err.is_err(), "3 MB of vectors do not fit in 4 KiB");
        drop(rows);
        dir.set_capacity(None);
        let left: Vec<String> = dir.list().unwrap().into_iter().filter(|n| n.ends_with(".tmp")).collect();
        assert!(left.is_empty(), "{left:?}");
        assert!(!dir.exists(&quiver_storage::segment::file_name(10)).unwrap());
    }

    /// A sealed segment keeps no id → row map: ids are found by binary search over the rows in id order, the
    /// newest row of a repeated id wins and the older ones are deleted, as in a growing segment.
    #[test]
    fn sealed_segments_find_ids_without_a_map() {
        let mut pts = points(200, 4);
        pts.reverse(); // rows in descending id order
        let mut again = points(3, 4).into_iter().nth(2).unwrap(); // id 2 once more, as the last row
        again.vector = vec![9.0; 4];
        pts.push(again);
        pts.push(PointWrite { id: PointId::Uuid(7), ..points(1, 4).pop().unwrap() });
        let dir = Arc::new(MemDirectory::new(3));
        write(&dir, 5, &pts, None);
        let (back, _) = SegmentData::read_file(dir.as_ref(), 5, RoaringBitmap::new(), &[], &Layout::single(4)).unwrap();
        assert!(back.row_of.is_empty() && back.ids_sorted);
        for i in [0u64, 1, 3, 100, 199] {
            assert_eq!(back.row_of_id(&PointId::Num(i)), Some(199 - i as u32), "{i}");
        }
        assert_eq!(back.row_of_id(&PointId::Num(2)), Some(200), "the newest row of id 2");
        assert!(back.deleted.contains(197) && !back.deleted.contains(200), "the older row of id 2 is deleted");
        assert_eq!(back.live_row(&PointId::Num(2), 0), Some(200));
        assert_eq!(back.vector(200), &[9.0; 4][..]);
        assert_eq!(back.row_of_id(&PointId::Uuid(7)), Some(201));
        assert_eq!(back.row_of_id(&PointId::Num(200)), None);
        assert_eq!(back.row_of_id(&PointId::Uuid(8)), None);
        assert_eq!(back.deleted.len(), 1);
    }

    #[test]
    fn hnsw_segments_keep_one_copy_of_the_vectors_on_disk_read_in_place() {
        let dim = 16;
        let pts = points(300, dim);
        let dir = Arc::new(MemDirectory::new(3));
        let bytes = write(&dir, 7, &pts, hnsw()) as usize;
        let (back, _) =
            SegmentData::read_file(dir.as_ref(), 7, RoaringBitmap::new(), &[], &Layout::single(dim)).unwrap();
        let graph_bytes = back.index.as_ref().unwrap().to_bytes_without_vectors().unwrap().len();
        let raw = 300 * dim * 4;
        let metadata = 300 * 40;
        assert!(bytes < raw + graph_bytes + metadata + 4096, "the vectors are written once: {bytes} bytes");
        // The segment and its graph read the same bytes of the file's image, and the heap holds neither.
        assert!(!back.vectors_in_index && back.vectors.is_shared());
        let graph_rows = back.index.as_ref().and_then(AnyIndex::row_vectors).unwrap();
        assert_eq!(graph_rows.as_slice().as_ptr(), back.vectors.as_slice().as_ptr());
        assert_eq!(back.mapped_bytes(), raw);
        assert_eq!((back.vectors.memory_bytes(), graph_rows.memory_bytes()), (0, 0), "no heap copy");
        for (r, p) in pts.iter().enumerate() {
            assert_eq!(back.vector(r), &p.vector[..], "row {r} after reading the file");
            assert_eq!(back.point(r as u32).vector, p.vector);
        }
        let q = &pts[42].vector;
        let sp = SearchParams::new();
        let (hits, plan) = back.search((7, Tier::Hot), 0, Metric::Euclidean, q, 3, None, &sp, 0, 0, None).unwrap();
        assert_eq!((hits[0].id, plan.plan.as_str()), (42, "index:hnsw"));
    }

    #[test]
    fn sealed_payloads_are_read_in_place_one_row_at_a_time() {
        let dim = 4;
        let rows = 1000;
        let mut pts = points(rows as u64, dim);
        for (i, p) in pts.iter_mut().enumerate() {
            p.payload.insert("n".into(), serde_json::json!(i));
            p.payload.insert("tag".into(), serde_json::json!(if i % 3 == 0 { "a" } else { "b" }));
        }
        pts[6].payload = Payload::new();
        let dir = Arc::new(MemDirectory::new(6));
        write(&dir, 5, &pts, None);
        let fields = [("tag".to_owned(), FieldType::Keyword)];
        let (d, _) =
            SegmentData::read_file(dir.as_ref(), 5, RoaringBitmap::new(), &fields, &Layout::single(dim)).unwrap();
        assert!(matches!(d.payloads, Payloads::File(_)));
        assert_eq!(d.payload_heap_bytes(), 0, "no payload on the heap");
        assert!(d.payload_total_guess() > 0);
        for (r, p) in pts.iter().enumerate() {
            assert_eq!(&d.point(r as u32).payload, &p.payload, "row {r}");
        }
        assert!(d.payloads.get(rows as u32).is_none());
        // The payload index was built while the payloads were read; an unindexed key is read row by row.
        let tag_a: Filter =
            serde_json::from_value(serde_json::json!({"must": [{"key": "tag", "match": {"value": "a"}}]})).unwrap();
        assert_eq!(d.payload_index.evaluate(&tag_a, &d).rows.len(), 333, "rows 0, 3, …, 999 but row 6 has none");
        let small: Filter =
            serde_json::from_value(serde_json::json!({"must": [{"key": "n", "range": {"lt": 10}}]})).unwrap();
        assert_eq!(d.payload_index.evaluate(&small, &d).rows.len(), 9);
        // A damaged byte in the payloads fails the open, naming the file.
        let name = quiver_storage::segment::file_name(5);
        let block = {
            let seg = quiver_storage::Segment::open(dir.as_ref(), 5).unwrap();
            *seg.blocks().iter().find(|b| b.kind == BlockKind::Payload && b.tag == crate::payloads::DATA_TAG).unwrap()
        };
        let mut image = dir.read(&name).unwrap();
        image[block.offset as usize + 3] ^= 0x40;
        dir.remove(&name).unwrap();
        let mut f = dir.create(&name).unwrap();
        f.write_all(&image).unwrap();
        f.sync().unwrap();
        let err =
            SegmentData::read_file(dir.as_ref(), 5, RoaringBitmap::new(), &fields, &Layout::single(dim)).unwrap_err();
        assert!(err.to_string().contains(&name), "a damaged payload block fails the open: {err}");
    }

    #[test]
    fn a_damaged_vectors_block_is_reported_not_served() {
        let dim = 8;
        let dir = Arc::new(MemDirectory::new(3));
        write(&dir, 9, &points(200, dim), hnsw());
        let name = quiver_storage::segment::file_name(9);
        let seg = quiver_storage::Segment::open(dir.as_ref(), 9).unwrap();
        let block = seg.blocks().iter().find(|b| b.kind == BlockKind::Vectors).copied().unwrap();
        drop(seg);
        let mut image = dir.read(&name).unwrap();
        image[block.offset as usize + 100] ^= 0x10;
        dir.remove(&name).unwrap();
        let mut f = dir.create(&name).unwrap();
        f.write_all(&image).unwrap();
        f.sync().unwrap();
        let err = SegmentData::read_file(dir.as_ref(), 9, RoaringBitmap::new(), &[], &Layout::single(dim)).unwrap_err();
        assert!(matches!(err, crate::Error::Corrupt { .. }) || err.to_string().contains("checksum"), "{err}");
        assert!(err.to_string().contains(&name), "names the file: {err}");
    }

    /// A segment of named and sparse vectors: every block (a named vector's vectors, the spaces' metadata, the
    /// sparse rows) damaged in turn is reported naming the file, never served; and a file opened with a layout
    /// other than the one it was written for is refused.
    #[test]
    fn damaged_named_and_sparse_blocks_are_reported_not_served() {
        let layout = Arc::new(Layout {
            spaces: vec![("a".into(), 4), ("b".into(), 3)],
            named: true,
            sparse: vec!["t".into()],
            dense: true,
        });
        let dir = Arc::new(MemDirectory::new(3));
        let scratch: Arc<dyn Directory> = dir.clone();
        let mut rows = SealedRows::new(&scratch, 4, &layout).unwrap();
        for i in 0..50u32 {
            let a: Vec<f32> = (0..4).map(|j| (i * 7 + j) as f32 % 5.0).collect();
            let b: Vec<f32> = (0..3).map(|j| (i + j) as f32 % 3.0 + 1.0).collect();
            let vectors = [Some(&a[..]), (i % 4 != 0).then_some(&b[..])];
            rows.sparse[0].push(&SparseVector { indices: vec![i % 7, 100 + i], values: vec![1.0, 0.5] });
            rows.push_named(&PointId::Num(u64::from(i)), &vectors, &Payload::new(), 1, 0).unwrap();
        }
        let builds = [(Metric::Euclidean, hnsw()), (Metric::Dot, hnsw())];
        write_sealed(dir.clone(), 4, Tier::Hot, rows, &builds).unwrap();
        let (d, _) = SegmentData::read_file(dir.as_ref(), 4, RoaringBitmap::new(), &[], &layout).unwrap();
        assert_eq!(d.missing[1].len(), 13, "rows 0, 4, … have no b");
        assert_eq!(d.sparse_vectors(3).unwrap()["t"], SparseVector { indices: vec![3, 103], values: vec![1.0, 0.5] });
        let wrong = Arc::new(Layout { spaces: vec![("a".into(), 4), ("b".into(), 5)], ..(*layout).clone() });
        let err = SegmentData::read_file(dir.as_ref(), 4, RoaringBitmap::new(), &[], &wrong).unwrap_err();
        assert!(err.to_string().contains("dimension 3"), "{err}");
        let unnamed = Layout::single(4);
        assert!(SegmentData::read_file(dir.as_ref(), 4, RoaringBitmap::new(), &[], &unnamed).is_err());
        let name = quiver_storage::segment::file_name(4);
        let pristine = dir.read(&name).unwrap();
        let seg = quiver_storage::Segment::open(dir.as_ref(), 4).unwrap();
        let targets: Vec<_> = seg
            .blocks()
            .iter()
            .filter(|b| {
                (b.kind == BlockKind::Vectors && b.tag >= SPACES_TAG)
                    || (b.kind == BlockKind::Metadata && b.tag == SPACES_TAG)
            })
            .copied()
            .collect();
        drop(seg);
        assert_eq!(targets.len(), 3, "b's vectors, the spaces' metadata, the sparse rows");
        for block in targets {
            let mut image = pristine.clone();
            image[block.offset as usize + 9] ^= 0x10;
            dir.remove(&name).unwrap();
            let mut f = dir.create(&name).unwrap();
            f.write_all(&image).unwrap();
            f.sync().unwrap();
            let err = SegmentData::read_file(dir.as_ref(), 4, RoaringBitmap::new(), &[], &layout).unwrap_err();
            assert!(err.to_string().contains(&name), "block {:?} tag {}: names the file: {err}", block.kind, block.tag);
        }
    }

    #[test]
    fn indexes_without_row_vectors_keep_their_own_copy_beside_the_mapped_one() {
        let dim = 8;
        let pts = points(600, dim);
        let dir = Arc::new(MemDirectory::new(4));
        write(&dir, 3, &pts, Some((IndexKind::Ivf, quiver_index::Params::default())));
        let (d, _) = SegmentData::read_file(dir.as_ref(), 3, RoaringBitmap::new(), &[], &Layout::single(dim)).unwrap();
        assert!(d.index.is_some() && !d.vectors_in_index && d.vectors.is_shared());
        assert_eq!(d.vector(5), &pts[5].vector[..]);
    }

    /// The old exact filtered scan: every admitted row scored one by one, in row order.
    fn one_by_one(admitted: &RoaringBitmap, distance: impl Fn(u32) -> f32, k: usize) -> Vec<Neighbor> {
        let mut top = TopK::new(k);
        for row in admitted {
            top.push(Neighbor::new(u64::from(row), distance(row)));
        }
        top.into_sorted_vec()
    }

    #[test]
    fn exact_filtered_scans_by_dense_and_sparse_blocks_match_scoring_every_admitted_row() {
        let rows = 1000u32;
        // Distances with ties (equal distances are ordered by row), and a row past the last one panics if scored.
        let distance = |row: u32| {
            assert!(row < rows, "row {row} scored");
            ((u64::from(row) * 7919) % 97) as f32
        };
        let mut seed = 0x9E37_79B9_7F4A_7C15u64;
        let mut next = move || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        let mut bitmaps: Vec<(String, RoaringBitmap)> = Vec::new();
        for per_mille in [1, 20, 100, 300, 375, 500, 700, 950, 1000] {
            bitmaps.push((format!("random {per_mille}‰"), (0..rows).filter(|_| next() % 1000 < per_mille).collect()));
        }
        // Whole dense and sparse blocks side by side, a block exactly at the threshold, a partial last block,
        // and admitted rows only at a block's edges.
        bitmaps.push(("alternating blocks".into(), (0..rows).filter(|r| (r / SCAN_BLOCK).is_multiple_of(2)).collect()));
        bitmaps.push(("threshold block".into(), (64..64 + DENSE_BLOCK).chain(128..128 + DENSE_BLOCK - 1).collect()));
        bitmaps.push(("tail".into(), (960..rows).collect()));
        bitmaps.push(("edges".into(), (0..rows).filter(|r| r % SCAN_BLOCK == 0 || r % SCAN_BLOCK == 63).collect()));
        bitmaps.push(("one row".into(), [rows - 1].into_iter().collect()));
        bitmaps.push(("empty".into(), RoaringBitmap::new()));
        for (name, admitted) in &bitmaps {
            for k in [1, 10, 100, 2000] {
                let mut top = TopK::new(k);
                score_admitted(admitted, distance, &mut top);
                let got = top.into_sorted_vec();
                assert_eq!(got, one_by_one(admitted, distance, k), "{name}, k {k}");
                assert_eq!(got.len(), k.min(admitted.len() as usize), "{name}, k {k}");
            }
        }
    }

    #[test]
    fn exact_filtered_search_returns_the_nearest_admitted_points_at_any_selectivity() {
        let dim = 8;
        let n = 700;
        let mut pts = points(n, dim);
        for (i, p) in pts.iter_mut().enumerate() {
            p.payload.insert("m".into(), serde_json::json!((i * 37 % 100).to_string()));
        }
        let dir = Arc::new(MemDirectory::new(8));
        write(&dir, 2, &pts, Some((IndexKind::Flat, quiver_index::Params::default())));
        let fields = [("m".to_owned(), FieldType::Keyword)];
        let (d, _) =
            SegmentData::read_file(dir.as_ref(), 2, RoaringBitmap::new(), &fields, &Layout::single(dim)).unwrap();
        assert!(d.index.is_none(), "flat segments are scanned exactly");
        let sp = SearchParams::new();
        for share in [1usize, 2, 10, 30, 50, 70, 90, 100] {
            let values: Vec<String> = (0..share).map(|v| v.to_string()).collect();
            let filter: Filter =
                serde_json::from_value(serde_json::json!({"must": [{"key": "m", "match": {"any": values}}]})).unwrap();
            for q in [3usize, 350, 699] {
                let query = &pts[q].vector;
                let (hits, plan) =
                    d.search((2, Tier::Hot), 0, Metric::Euclidean, query, 10, Some(&filter), &sp, 0, 0, None).unwrap();
                assert_eq!(plan.plan, "exact");
                let admitted: RoaringBitmap = (0..n as u32).filter(|&r| (r as usize * 37 % 100) < share).collect();
                let want = one_by_one(&admitted, |r| Metric::Euclidean.distance(query, &pts[r as usize].vector), 10);
                assert_eq!(hits, want, "{share}% admitted, query {q}");
            }
        }
    }

    #[test]
    fn a_failed_index_build_leaves_an_exact_segment_with_a_note() {
        let dim = 8;
        let pts = points(5, dim);
        let dir = Arc::new(MemDirectory::new(5));
        let bad = quiver_index::Params::parse(["m=1"]).unwrap();
        write(&dir, 4, &pts, Some((IndexKind::Hnsw, bad)));
        let (d, _) = SegmentData::read_file(dir.as_ref(), 4, RoaringBitmap::new(), &[], &Layout::single(dim)).unwrap();
        assert!(d.index.is_none());
        assert!(d.index_note.as_deref().is_some_and(|n| n.contains("hnsw index not built")), "{:?}", d.index_note);
        assert_eq!(d.vector(4), &pts[4].vector[..]);
    }
}

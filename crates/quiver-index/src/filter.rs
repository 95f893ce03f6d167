//! Id filters: which points a search may return. The engine turns payload filters and deletions into these.

use roaring::RoaringTreemap;

/// Decides, per id, whether a point may appear in results.
///
/// Indexes call [`IdFilter::allows`] only for candidates that are good enough to enter the results, and use
/// [`IdFilter::cardinality`] / [`IdFilter::ids`] to switch to a scan over just the allowed points when few are.
pub trait IdFilter: Send + Sync {
    /// Whether `id` may be returned.
    fn allows(&self, id: u64) -> bool;
    /// How many ids this filter allows, if known (exactly or as an estimate); `None` when it cannot tell.
    fn cardinality(&self) -> Option<u64>;
    /// The allowed ids, when the filter can list them cheaply; `None` otherwise.
    fn ids(&self) -> Option<&IdSet>;
}

/// Ids sampled when a filter cannot count its matches.
const ESTIMATE_SAMPLE: usize = 512;

/// How many of an index's `live` points `filter` admits: the filter's own count when it knows it, else the share
/// it admits among about [`ESTIMATE_SAMPLE`] evenly spaced slots `0..slots`, where `id_at(slot)` is the live id
/// in that slot (`None` for a removed point). Every index plans filtered searches with this one estimate.
pub(crate) fn estimate_matches(
    filter: &dyn IdFilter,
    live: usize,
    slots: usize,
    id_at: impl Fn(usize) -> Option<u64>,
) -> usize {
    if let Some(c) = filter.cardinality() {
        return (c as usize).min(live);
    }
    let step = (slots / ESTIMATE_SAMPLE).max(1);
    let (mut seen, mut hit) = (0usize, 0usize);
    for id in (0..slots).step_by(step).filter_map(id_at) {
        seen += 1;
        hit += usize::from(filter.allows(id));
    }
    if seen == 0 { 0 } else { (hit * live).div_ceil(seen) }
}

/// An explicit set of allowed ids (compressed bitmap).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct IdSet {
    set: RoaringTreemap,
}

impl IdSet {
    /// An empty set.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds an id; returns whether it was new.
    pub fn insert(&mut self, id: u64) -> bool {
        self.set.insert(id)
    }

    /// Removes an id; returns whether it was present.
    pub fn remove(&mut self, id: u64) -> bool {
        self.set.remove(id)
    }

    /// Whether `id` is in the set.
    pub fn contains(&self, id: u64) -> bool {
        self.set.contains(id)
    }

    /// Number of ids.
    pub fn len(&self) -> u64 {
        self.set.len()
    }

    /// True when empty.
    pub fn is_empty(&self) -> bool {
        self.set.is_empty()
    }

    /// Ids in increasing order.
    pub fn iter(&self) -> impl Iterator<Item = u64> + '_ {
        self.set.iter()
    }
}

impl FromIterator<u64> for IdSet {
    fn from_iter<T: IntoIterator<Item = u64>>(iter: T) -> Self {
        Self { set: iter.into_iter().collect() }
    }
}

impl IdFilter for IdSet {
    fn allows(&self, id: u64) -> bool {
        self.set.contains(id)
    }
    fn cardinality(&self) -> Option<u64> {
        Some(self.set.len())
    }
    fn ids(&self) -> Option<&IdSet> {
        Some(self)
    }
}

/// A filter from a predicate, with an optional estimate of how many ids it allows.
pub struct FnFilter<F> {
    predicate: F,
    estimate: Option<u64>,
}

impl<F: Fn(u64) -> bool + Send + Sync> FnFilter<F> {
    /// Wraps `predicate`; `estimate` is the expected number of allowed ids, if known.
    pub fn new(predicate: F, estimate: Option<u64>) -> Self {
        Self { predicate, estimate }
    }
}

impl<F> std::fmt::Debug for FnFilter<F> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FnFilter").field("estimate", &self.estimate).finish_non_exhaustive()
    }
}

impl<F: Fn(u64) -> bool + Send + Sync> IdFilter for FnFilter<F> {
    fn allows(&self, id: u64) -> bool {
        (self.predicate)(id)
    }
    fn cardinality(&self) -> Option<u64> {
        self.estimate
    }
    fn ids(&self) -> Option<&IdSet> {
        None
    }
}

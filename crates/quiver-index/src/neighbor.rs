//! Search results and the bounded top-k collector every index uses.

use std::cmp::Ordering;
use std::collections::BinaryHeap;

/// One search result: an id and its distance to the query (smaller is closer; see [`crate::Metric`]).
///
/// Ordering: by distance (IEEE total order), ties broken by the smaller id, so every exact search returns the
/// same list whatever order it visited the points in.
#[derive(Copy, Clone, Debug, PartialEq)]
pub struct Neighbor {
    /// The point's id.
    pub id: u64,
    /// Distance to the query.
    pub distance: f32,
}

impl Neighbor {
    /// A result.
    pub fn new(id: u64, distance: f32) -> Self {
        Self { id, distance }
    }
}

impl Eq for Neighbor {}

impl Ord for Neighbor {
    fn cmp(&self, other: &Self) -> Ordering {
        self.distance.total_cmp(&other.distance).then(self.id.cmp(&other.id))
    }
}

impl PartialOrd for Neighbor {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

/// Keeps the `k` smallest [`Neighbor`]s pushed into it (a max-heap of size `k`).
#[derive(Clone, Debug)]
pub struct TopK {
    k: usize,
    heap: BinaryHeap<Neighbor>,
}

impl TopK {
    /// A collector for the `k` closest.
    pub fn new(k: usize) -> Self {
        Self { k, heap: BinaryHeap::with_capacity(k.saturating_add(1).min(1 << 16)) }
    }

    /// The `k` it was made with.
    pub fn k(&self) -> usize {
        self.k
    }

    /// Number of results held (at most `k`).
    pub fn len(&self) -> usize {
        self.heap.len()
    }

    /// True when nothing is held.
    pub fn is_empty(&self) -> bool {
        self.heap.is_empty()
    }

    /// True once `k` results are held.
    #[inline]
    pub fn is_full(&self) -> bool {
        self.heap.len() >= self.k
    }

    /// Distance a candidate must beat (or tie with a smaller id) to enter: `+inf` until full.
    #[inline]
    pub fn threshold(&self) -> f32 {
        if self.is_full() { self.heap.peek().map_or(f32::NEG_INFINITY, |n| n.distance) } else { f32::INFINITY }
    }

    /// Offers a candidate; returns whether it was kept.
    #[inline]
    pub fn push(&mut self, n: Neighbor) -> bool {
        if self.heap.len() < self.k {
            self.heap.push(n);
            return true;
        }
        match self.heap.peek_mut() {
            Some(mut worst) if n < *worst => {
                *worst = n;
                true
            }
            _ => false,
        }
    }

    /// Empties the collector for reuse with the same `k`.
    pub fn clear(&mut self) {
        self.heap.clear();
    }

    /// The results, closest first.
    pub fn into_sorted_vec(self) -> Vec<Neighbor> {
        self.heap.into_sorted_vec()
    }
}

/// Merges several result lists (from segments, shards or nodes) into one top-`k`, closest first. A point that
/// appears in several lists is kept once, at its smallest distance.
pub fn merge_top_k<I>(lists: I, k: usize) -> Vec<Neighbor>
where
    I: IntoIterator,
    I::Item: IntoIterator<Item = Neighbor>,
{
    let mut all: Vec<Neighbor> = lists.into_iter().flatten().collect();
    all.sort_unstable();
    let mut seen = std::collections::HashSet::with_capacity(k.min(all.len()));
    let mut out = Vec::with_capacity(k.min(all.len()));
    for n in all {
        if out.len() == k {
            break;
        }
        if seen.insert(n.id) {
            out.push(n);
        }
    }
    out
}

//! The optional per-collection result cache (`query_cache_entries` in the configuration): repeated searches
//! answered without touching the segments.
//!
//! An entry is the exact request (its bytes: vector bits, limit, offset, filter, parameters, what to attach, the
//! threshold — equal bytes or no hit) and the answer, stamped with the collection's applied sequence number and
//! the moment its answer stops being true on its own: the earliest point expiry (TTL) still to come when it was
//! computed. A lookup hits only at the same applied sequence number and before that moment, so any write — and any
//! point reaching its TTL — makes older entries miss; nothing is invalidated explicitly. Requests with `explain`
//! are never cached. Eviction is first in, first out. Hits and misses are counted for `info()` and `/metrics`.

use std::collections::{HashMap, VecDeque};

use serde::Serialize;

use crate::types::{SearchRequest, SearchResponse};

/// Most entries a collection's cache may be configured with.
pub const MAX_QUERY_CACHE_ENTRIES: usize = 100_000;

/// The cache's figures.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct QueryCacheInfo {
    /// Entries it may hold.
    pub capacity: usize,
    /// Entries held.
    pub entries: usize,
    /// Lookups answered from it.
    pub hits: u64,
    /// Lookups that had to search.
    pub misses: u64,
}

struct Entry {
    seq: u64,
    valid_until_ms: u64,
    response: SearchResponse,
}

/// See the module docs.
pub(crate) struct QueryCache {
    capacity: usize,
    map: HashMap<Vec<u8>, Entry>,
    order: VecDeque<Vec<u8>>,
    hits: u64,
    misses: u64,
}

impl QueryCache {
    pub(crate) fn new(capacity: usize) -> Self {
        QueryCache { capacity, map: HashMap::new(), order: VecDeque::new(), hits: 0, misses: 0 }
    }

    /// The request's key, or `None` when it is not cached (`explain`). Needs no lock: callers build it before
    /// taking the cache's.
    pub(crate) fn key(req: &SearchRequest) -> Option<Vec<u8>> {
        if req.explain {
            return None;
        }
        let mut k = Vec::with_capacity(req.vector.len() * 4 + 64);
        k.extend(req.vector.iter().flat_map(|x| x.to_bits().to_le_bytes()));
        k.extend((req.limit as u64).to_le_bytes());
        k.extend((req.offset as u64).to_le_bytes());
        k.push(u8::from(req.with_payload) | u8::from(req.with_vector) << 1);
        k.extend(req.score_threshold.map_or(u64::MAX, |t| u64::from(t.to_bits())).to_le_bytes());
        // Every index parameter (a struct of plain fields: its Debug text is canonical).
        k.extend(format!("{:?}", req.params).bytes());
        // The vector searched: two named vectors of one length would otherwise share a key.
        k.extend(format!("{:?}", req.using).bytes());
        if let Some(q) = &req.sparse {
            k.extend(serde_json::to_vec(q).unwrap_or_default());
        }
        if let Some(f) = &req.filter {
            k.extend(serde_json::to_vec(f).unwrap_or_default());
        }
        Some(k)
    }

    /// The cached answer to `key` at applied sequence number `seq` and time `now_ms`, counting a hit or a miss.
    pub(crate) fn get(&mut self, key: &[u8], seq: u64, now_ms: u64) -> Option<SearchResponse> {
        match self.map.get(key) {
            Some(e) if e.seq == seq && now_ms < e.valid_until_ms => {
                self.hits += 1;
                Some(e.response.clone())
            }
            _ => {
                self.misses += 1;
                None
            }
        }
    }

    /// Keeps `response`, computed at `seq`, true until `valid_until_ms`.
    pub(crate) fn put(&mut self, key: Vec<u8>, seq: u64, valid_until_ms: u64, response: SearchResponse) {
        if self.capacity == 0 {
            return;
        }
        if !self.map.contains_key(&key) {
            while self.map.len() >= self.capacity {
                match self.order.pop_front() {
                    Some(old) => {
                        self.map.remove(&old);
                    }
                    None => break,
                }
            }
            self.order.push_back(key.clone());
        }
        self.map.insert(key, Entry { seq, valid_until_ms, response });
    }

    pub(crate) fn info(&self) -> QueryCacheInfo {
        QueryCacheInfo { capacity: self.capacity, entries: self.map.len(), hits: self.hits, misses: self.misses }
    }
}

impl std::fmt::Debug for QueryCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("QueryCache").field("info", &self.info()).finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn resp(n: usize) -> SearchResponse {
        SearchResponse { hits: Vec::with_capacity(n), explain: None }
    }

    #[test]
    fn hits_only_at_the_same_sequence_and_before_the_next_expiry() {
        let mut c = QueryCache::new(2);
        let req = SearchRequest::new(vec![1.0, 2.0], 3);
        // Capacity 0 keeps nothing.
        let mut off = QueryCache::new(0);
        off.put(vec![1], 1, u64::MAX, resp(0));
        assert_eq!(off.info().entries, 0);
        let k = QueryCache::key(&req).unwrap();
        assert!(c.get(&k, 5, 0).is_none());
        c.put(k.clone(), 5, 1_000, resp(0));
        assert!(c.get(&k, 5, 999).is_some());
        assert!(c.get(&k, 6, 999).is_none(), "a write happened");
        assert!(c.get(&k, 5, 1_000).is_none(), "a point expired");
        assert_eq!(c.info(), QueryCacheInfo { capacity: 2, entries: 1, hits: 1, misses: 3 });
        // Different requests, different keys; explain is never cached; capacity 0 caches nothing.
        let mut other = req.clone();
        other.limit = 4;
        assert_ne!(QueryCache::key(&other), Some(k.clone()));
        other.explain = true;
        assert!(QueryCache::key(&other).is_none());
    }

    #[test]
    fn evicts_the_oldest_entry_first() {
        let mut c = QueryCache::new(2);
        for i in 0..3u8 {
            c.put(vec![i], 1, u64::MAX, resp(0));
        }
        assert_eq!(c.info().entries, 2);
        assert!(c.get(&[0], 1, 0).is_none());
        assert!(c.get(&[1], 1, 0).is_some() && c.get(&[2], 1, 0).is_some());
    }
}

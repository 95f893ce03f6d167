//! HNSW: hierarchical navigable small-world graphs (Malkov & Yashunin, 2016/2018).
//!
//! Layout, chosen for cache behaviour and for lock-free reads:
//! - vectors contiguous in a [`RawStorage`], node `i` = row `i`;
//! - layer 0: one array of fixed-width lists, node `i` at `[i * (m0 + 1)]`, slot 0 = count, then up to `m0` ids;
//! - upper layers: one more array of `(m + 1)`-wide lists; a node of level `L ≥ 1` owns `L` consecutive lists
//!   starting at `upper_start[i]` (its level-1 list first);
//! - list slots are `AtomicU32` read with relaxed loads (plain loads on x86), written under a per-node lock, so
//!   parallel build needs no global lock and searches need none at all.
//!
//! After a build every live node is reachable on layer 0 from the entry point: the selection heuristic can leave
//! a node with no in-link (short vectors under inner product always, any node now and then in a parallel build),
//! and such a node is never found however wide the search, so the build ends with a repair pass that links each
//! one from its nearest reachable node (`HnswStats::unreachable` counts them; 7 of 107,659 on the WordNet set).
//!
//! Search uses a per-thread context (visited marks with a generation counter, two reused heaps), so no memory is
//! allocated per visited node. Removal marks a tombstone and repairs the neighbourhood: every live out-neighbour
//! that linked back to the removed node is re-linked among its remaining neighbours and the removed node's
//! neighbours with the same selection heuristic. A tombstone can still route a search (stale one-way links may
//! point at it) but is never returned.
//!
//! Filtered search estimates how many points the filter admits; when few do (fewer than `sqrt(ef * len)`, where
//! scanning them costs less than the graph would) it scans exactly the matching points, otherwise it traverses
//! the graph through every node but admits only matching ones into the results, which widens the search by
//! itself as the filter gets more selective. Either way it returns `min(k, matches)` results: a graph search
//! that finds fewer falls back to the exact scan.

use crate::any::IndexKind;
use crate::codec::{Reader, Writer};
use crate::error::{Error, Result};
use crate::filter::IdFilter;
use crate::metric::Metric;
use crate::neighbor::{Neighbor, TopK};
use crate::params::{Params, SearchParams};
use crate::points::Visited;
use crate::quant::{BitStorage, PqStorage, Quantization, Sq8Storage};
use crate::sq4::Sq4Storage;
use crate::storage::{QueryScorer, RawStorage, VectorStorage};
use crate::traits::{MutableIndex, VectorIndex, prepare_query};
use crate::vectors::{VectorSet, prepare_build, validate_vector};
use parking_lot::Mutex;
use rayon::prelude::*;
use std::cell::RefCell;
use std::cmp::{Ordering, Reverse};
use std::collections::{BinaryHeap, HashMap};
use std::sync::atomic::{AtomicU32, Ordering::Relaxed};

const VERSION: u16 = 2;
const NO_NODE: u32 = u32::MAX;
/// Highest level a node may get (with m ≥ 2 a level above 16 has probability < 2^-16 per node).
const MAX_LEVEL: usize = 16;

/// HNSW construction and default search settings.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HnswParams {
    /// Links per node on upper layers (layer 0 gets `2 * m`).
    pub m: usize,
    /// Candidate-list size while inserting.
    pub ef_construction: usize,
    /// Default candidate-list size while searching (a query's `ef` overrides it).
    pub ef_search: usize,
    /// Seed of the level generator: same seed, same data, one thread → same graph.
    pub seed: u64,
    /// What searches traverse: f32 vectors, or SQ8 / PQ codes rescored on f32 vectors.
    pub quantization: Quantization,
    /// PQ sub-spaces (bytes per code); 0 picks [`crate::Pq::default_m`].
    pub pq_m: usize,
}

impl Default for HnswParams {
    fn default() -> Self {
        Self {
            m: 16,
            ef_construction: 200,
            ef_search: 64,
            seed: 0x005E_ED0F_0A11,
            quantization: Quantization::None,
            pq_m: 0,
        }
    }
}

impl HnswParams {
    /// Build parameters accepted by [`HnswParams::from_params`].
    pub const NAMES: &'static [&'static str] = &["m", "ef_construction", "ef_search", "seed", "quantization", "pq_m"];

    /// Reads `m`, `ef_construction`, `ef_search`, `seed`; anything else is an error.
    pub fn from_params(mut p: Params) -> Result<Self> {
        let d = Self::default();
        let out = Self {
            m: p.take_usize("m", 2, 128)?.unwrap_or(d.m),
            ef_construction: p.take_usize("ef_construction", 1, 1 << 16)?.unwrap_or(d.ef_construction),
            ef_search: p.take_usize("ef_search", 1, 1 << 20)?.unwrap_or(d.ef_search),
            seed: p.take_u64("seed")?.unwrap_or(d.seed),
            quantization: p
                .take_str("quantization")
                .map(|q| Quantization::parse(&q))
                .transpose()?
                .unwrap_or(d.quantization),
            pq_m: p.take_usize("pq_m", 1, quiver_kernels::MAX_DIM)?.unwrap_or(d.pq_m),
        };
        p.finish("hnsw index (build)", Self::NAMES)?;
        Ok(out)
    }

    fn m0(&self) -> usize {
        2 * self.m
    }

    /// The level of node `i`: `floor(-ln(u) / ln(m))` for a uniform `u` drawn from the seed and `i` alone, so
    /// levels do not depend on insertion order or thread count.
    fn level_of(&self, i: u64) -> usize {
        let mut z = self.seed ^ i.wrapping_mul(0x9E37_79B9_7F4A_7C15);
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^= z >> 31;
        let u = ((z >> 11) as f64 + 1.0) / (1u64 << 53) as f64; // (0, 1]
        ((-u.ln() / (self.m as f64).ln()) as usize).min(MAX_LEVEL)
    }
}

/// A candidate during search: distance to the query, node.
#[derive(Copy, Clone, Debug, PartialEq)]
struct Cand {
    dist: f32,
    node: u32,
}

impl Eq for Cand {}
impl Ord for Cand {
    fn cmp(&self, o: &Self) -> Ordering {
        self.dist.total_cmp(&o.dist).then(self.node.cmp(&o.node))
    }
}
impl PartialOrd for Cand {
    fn partial_cmp(&self, o: &Self) -> Option<Ordering> {
        Some(self.cmp(o))
    }
}

/// Per-thread scratch reused by every search and insert on that thread.
#[derive(Debug, Default)]
struct Ctx {
    visited: Visited,
    candidates: BinaryHeap<Reverse<Cand>>,
    results: BinaryHeap<Cand>,
    links: Vec<u32>,
}

thread_local! {
    static CTX: RefCell<Ctx> = RefCell::new(Ctx::default());
}

fn with_ctx<R>(f: impl FnOnce(&mut Ctx) -> R) -> R {
    CTX.with(|c| match c.try_borrow_mut() {
        Ok(mut ctx) => f(&mut ctx),
        // Re-entrant use on one thread (not expected): fall back to a fresh context.
        Err(_) => f(&mut Ctx::default()),
    })
}

/// The graph index. See the module docs.
#[derive(Debug)]
pub struct HnswIndex {
    params: HnswParams,
    storage: RawStorage,
    ids: Vec<u64>,
    /// Live id → node (`None`: the identity, see [`HnswIndex::node_of`]).
    rows: Option<HashMap<u64, u32>>,
    deleted: Vec<bool>,
    n_deleted: usize,
    levels: Vec<u8>,
    upper_start: Vec<u32>,
    layer0: Vec<AtomicU32>,
    upper: Vec<AtomicU32>,
    locks: Vec<Mutex<()>>,
    /// Entry node and the top level, `None` while the graph is empty.
    entry: Mutex<Option<(u32, usize)>>,
    /// SQ8 codes of every node, when searches traverse codes.
    codes: Codes,
}

/// What a search traverses besides the f32 vectors (which always stay, for rescoring and for building).
#[derive(Debug)]
enum Codes {
    None,
    Sq8(Sq8Storage),
    Sq4(Sq4Storage),
    Pq(PqStorage),
    Bits(BitStorage),
}

/// Counters describing an HNSW graph.
#[derive(Clone, Debug, PartialEq)]
pub struct HnswStats {
    /// Live points.
    pub live: usize,
    /// Removed points whose nodes are still in the graph.
    pub tombstones: usize,
    /// Highest level.
    pub top_level: usize,
    /// Mean out-degree on layer 0 over live nodes.
    pub mean_degree0: f64,
    /// Live nodes a search cannot reach: not reachable on layer 0 from the entry point. A build repairs this to
    /// zero; removals may raise it again until the next build.
    pub unreachable: usize,
}

impl HnswIndex {
    /// Search parameters HNSW accepts.
    pub const SEARCH_PARAMS: &'static [&'static str] = &["ef", "rerank", "exact"];
    /// Default rerank factor for quantized traversal: the best `rerank * k` candidates are rescored exactly.
    pub const DEFAULT_RERANK: usize = 4;

    /// An empty graph.
    pub fn new(metric: Metric, dim: usize, params: HnswParams) -> Result<Self> {
        Ok(Self {
            params,
            storage: RawStorage::new(metric, VectorSet::new(dim)?),
            ids: Vec::new(),
            rows: None,
            deleted: Vec::new(),
            n_deleted: 0,
            levels: Vec::new(),
            upper_start: Vec::new(),
            layer0: Vec::new(),
            upper: Vec::new(),
            locks: Vec::new(),
            entry: Mutex::new(None),
            codes: Codes::None,
        })
    }

    /// Builds a graph over `vectors` with distinct `ids`, inserting in parallel on the current rayon pool
    /// (sequentially, in row order, on a one-thread pool — then the graph is a function of the inputs and seed).
    pub fn build(metric: Metric, mut vectors: VectorSet, ids: Vec<u64>, params: Params) -> Result<Self> {
        let hp = HnswParams::from_params(params)?;
        let rows = prepare_build(metric, &mut vectors, &ids, NO_NODE as usize)?;
        let dim = vectors.dim();
        let n = ids.len();
        let mut index = Self::new(metric, dim, hp)?;
        index.storage = RawStorage::new(metric, vectors);
        index.ids = ids;
        // Ids `0..n` in node order (a segment's rows, what the engine builds) need no map.
        index.rows = (!index.ids.iter().enumerate().all(|(i, &id)| id == i as u64)).then_some(rows);
        index.deleted = vec![false; n];
        index.layer0 = crate::huge::with_capacity(n * (hp.m0() + 1));
        for i in 0..n {
            index.push_node_slots(i);
        }
        index.codes = match hp.quantization {
            Quantization::None => Codes::None,
            Quantization::Sq8 => Codes::Sq8(Sq8Storage::train(metric, &index.storage.vectors)),
            Quantization::Sq4 => {
                Codes::Sq4(Sq4Storage::train(metric, &index.storage.vectors, crate::sq4::DEFAULT_CLIP))
            }
            Quantization::Pq => {
                let m = if hp.pq_m == 0 { crate::quant::Pq::default_m(dim) } else { hp.pq_m };
                if n == 0 {
                    return Err(Error::invalid(
                        "quantization",
                        "points to train the product quantizer on",
                        "pq on an empty build",
                    ));
                }
                Codes::Pq(PqStorage::train(metric, &index.storage.vectors, m, hp.seed)?)
            }
            Quantization::Bits => Codes::Bits(BitStorage::new(metric, &index.storage.vectors, hp.seed)),
        };
        if rayon::current_num_threads() <= 1 {
            with_ctx(|ctx| (0..n as u32).for_each(|i| index.link(i, ctx)));
        } else {
            // The first node alone, so every parallel insert has an entry point.
            if n > 0 {
                with_ctx(|ctx| index.link(0, ctx));
            }
            (1..n as u32).into_par_iter().for_each(|i| with_ctx(|ctx| index.link(i, ctx)));
        }
        index.repair_reachability();
        Ok(index)
    }

    /// The full-precision vectors, one per node in build order (prepared: unit length under cosine). Removed
    /// nodes keep theirs.
    pub fn vectors(&self) -> &VectorSet {
        &self.storage.vectors
    }

    /// The parameters the graph was built with.
    pub fn params(&self) -> HnswParams {
        self.params
    }

    /// Graph counters (tombstones, levels, degree).
    pub fn stats(&self) -> HnswStats {
        let live: Vec<usize> = (0..self.ids.len()).filter(|&i| !self.deleted[i]).collect();
        let degree: usize = live.iter().map(|&i| self.layer0[i * (self.params.m0() + 1)].load(Relaxed) as usize).sum();
        let unreachable = self.reach().iter().enumerate().filter(|&(i, &r)| !r && !self.deleted[i]).count();
        HnswStats {
            live: live.len(),
            tombstones: self.n_deleted,
            top_level: self.entry.lock().map_or(0, |(_, l)| l),
            mean_degree0: degree as f64 / live.len().max(1) as f64,
            unreachable,
        }
    }

    /// The live node of `id`. Without a map the ids are the identity: node `i` has id `i` (built over ids
    /// `0..n` in order, as the engine does with a segment's rows), which saves a hash map entry per node.
    fn node_of(&self, id: u64) -> Option<u32> {
        match &self.rows {
            Some(rows) => rows.get(&id).copied(),
            None => {
                let i = usize::try_from(id).ok().filter(|&i| i < self.ids.len() && !self.deleted[i])?;
                (self.ids[i] == id).then_some(i as u32)
            }
        }
    }

    /// Which nodes are reachable on layer 0 from the entry point (tombstones route, so they are walked too).
    fn reach(&self) -> Vec<bool> {
        let mut reached = vec![false; self.ids.len()];
        if let Some((entry, _)) = *self.entry.lock() {
            self.spread(entry, &mut reached, &mut Vec::new());
        }
        reached
    }

    /// Marks `from` and every node reachable from it on layer 0 in `reached` (depth-first, stopping at marked ones).
    fn spread(&self, from: u32, reached: &mut [bool], links: &mut Vec<u32>) {
        if std::mem::replace(&mut reached[from as usize], true) {
            return;
        }
        let mut stack = vec![from];
        while let Some(n) = stack.pop() {
            self.neighbors_into(n, 0, links);
            for &nb in links.iter() {
                if !std::mem::replace(&mut reached[nb as usize], true) {
                    stack.push(nb);
                }
            }
        }
    }

    /// Makes every live node reachable on layer 0 from the entry point.
    ///
    /// The selection heuristic can leave a node without in-links: an inner-product graph does it to short vectors
    /// (never the best neighbour of anything), and parallel inserts can prune a node's last in-link while it is
    /// being linked. Such a node is never found, however wide the search. Each one gets an in-link from the
    /// nearest reachable node found by a search for it: into a free slot of one of the closest few, else in place
    /// of the closest node's neighbour with the most in-links (which stays reachable through the others). A
    /// replacement can, rarely, strand a node in turn, so the pass repeats (a few rounds at most).
    fn repair_reachability(&self) {
        let n = self.ids.len();
        let Some((entry, top)) = *self.entry.lock() else { return };
        let mut links = Vec::new();
        let mut reached = vec![false; n];
        self.spread(entry, &mut reached, &mut links);
        let mut in_links = vec![0u32; n];
        for i in 0..n as u32 {
            self.neighbors_into(i, 0, &mut links);
            for &nb in &links {
                in_links[nb as usize] += 1;
            }
        }
        let m0 = self.params.m0();
        for _round in 0..4 {
            let stranded: Vec<u32> =
                (0..n as u32).filter(|&i| !reached[i as usize] && !self.deleted[i as usize]).collect();
            if stranded.is_empty() {
                break;
            }
            for u in stranded {
                if reached[u as usize] {
                    continue; // reached through a node linked earlier in this round
                }
                let q = self.vector(u).to_vec();
                let sc = self.storage.scorer(&q);
                let mut near: Vec<Cand> = with_ctx(|ctx| {
                    let start = self.descend(&sc, entry, top, 0, &mut ctx.links);
                    let admit = |c: u32| reached[c as usize] && c != u;
                    self.search_layer(&sc, &[start], self.params.ef_construction, 0, ctx, &admit);
                    ctx.results.drain().collect()
                });
                near.sort_unstable();
                // `near` holds reached nodes only, and the entry is reached: neither is `u`.
                let closest = near.first().map_or(entry, |c| c.node);
                let free = near.iter().take(4).map(|c| c.node).find(|&c| self.list(c, 0)[0].load(Relaxed) < m0 as u32);
                // Else the closest node with a neighbour that has another in-link: giving that link up does not
                // strand it (evicting a neighbour's only in-link passed the problem back and forth).
                let mut spare = || {
                    near.iter().map(|c| c.node).find(|&c| {
                        self.neighbors_into(c, 0, &mut links);
                        links.iter().any(|&l| in_links[l as usize] >= 2)
                    })
                };
                let host = free.or_else(&mut spare).unwrap_or(closest);
                self.neighbors_into(host, 0, &mut links);
                let most_linked = (0..links.len()).max_by_key(|&i| in_links[links[i] as usize]);
                match most_linked {
                    Some(slot) if links.len() >= m0 => {
                        in_links[links[slot] as usize] -= 1;
                        links[slot] = u;
                    }
                    _ => links.push(u),
                }
                in_links[u as usize] += 1;
                self.set_neighbors(host, 0, &links);
                self.spread(u, &mut reached, &mut links);
            }
            // A replaced link may have stranded a node marked reached earlier: recompute from the entry.
            reached.iter_mut().for_each(|r| *r = false);
            self.spread(entry, &mut reached, &mut links);
        }
    }

    /// Appends the (empty) link lists of node `i`, whose vector and id are already stored.
    fn push_node_slots(&mut self, i: usize) {
        let level = self.params.level_of(i as u64);
        self.levels.push(level as u8);
        if level > 0 {
            self.upper_start.push((self.upper.len() / (self.params.m + 1)) as u32);
            self.upper.extend((0..level * (self.params.m + 1)).map(|_| AtomicU32::new(0)));
        } else {
            self.upper_start.push(NO_NODE);
        }
        crate::huge::reserve(&mut self.layer0, self.params.m0() + 1);
        self.layer0.extend((0..self.params.m0() + 1).map(|_| AtomicU32::new(0)));
        self.locks.push(Mutex::new(()));
    }

    #[inline]
    fn list(&self, node: u32, level: usize) -> &[AtomicU32] {
        if level == 0 {
            let w = self.params.m0() + 1;
            &self.layer0[node as usize * w..(node as usize + 1) * w]
        } else {
            let w = self.params.m + 1;
            let start = (self.upper_start[node as usize] as usize + level - 1) * w;
            &self.upper[start..start + w]
        }
    }

    /// Copies the neighbours of `node` at `level` into `out`.
    #[inline]
    fn neighbors_into(&self, node: u32, level: usize, out: &mut Vec<u32>) {
        let list = self.list(node, level);
        let count = (list[0].load(Relaxed) as usize).min(list.len() - 1);
        out.clear();
        out.extend(list[1..=count].iter().map(|a| a.load(Relaxed)));
    }

    /// Replaces the neighbours of `node` at `level` (caller holds the node's lock).
    fn set_neighbors(&self, node: u32, level: usize, ns: &[u32]) {
        let list = self.list(node, level);
        debug_assert!(ns.len() < list.len());
        for (slot, &n) in list[1..].iter().zip(ns) {
            slot.store(n, Relaxed);
        }
        list[0].store(ns.len() as u32, Relaxed);
    }

    #[inline]
    fn vector(&self, node: u32) -> &[f32] {
        self.storage.vectors.get(node as usize)
    }

    #[inline]
    fn dist(&self, a: &[f32], node: u32) -> f32 {
        self.storage.metric.distance(a, self.vector(node))
    }

    fn max_links(&self, level: usize) -> usize {
        if level == 0 { self.params.m0() } else { self.params.m }
    }

    /// Greedy descent from the entry through the levels above `stop`; returns the closest node found.
    fn descend(&self, sc: &impl QueryScorer, entry: u32, top: usize, stop: usize, links: &mut Vec<u32>) -> Cand {
        let mut cur = Cand { dist: sc.distance(entry as usize), node: entry };
        for level in (stop + 1..=top).rev() {
            loop {
                let mut changed = false;
                self.neighbors_into(cur.node, level, links);
                for &nb in links.iter() {
                    let d = sc.distance(nb as usize);
                    if d < cur.dist {
                        cur = Cand { dist: d, node: nb };
                        changed = true;
                    }
                }
                if !changed {
                    break;
                }
            }
        }
        cur
    }

    /// Best-first search of one layer from `entries`; leaves up to `ef` admitted nodes in `ctx.results`.
    fn search_layer(
        &self,
        sc: &impl QueryScorer,
        entries: &[Cand],
        ef: usize,
        level: usize,
        ctx: &mut Ctx,
        admit: &dyn Fn(u32) -> bool,
    ) {
        let Ctx { visited, candidates, results, links } = ctx;
        visited.reset(self.ids.len());
        candidates.clear();
        results.clear();
        for &e in entries {
            if visited.first(e.node) {
                candidates.push(Reverse(e));
                if admit(e.node) {
                    results.push(e);
                }
            }
        }
        while results.len() > ef {
            results.pop();
        }
        while let Some(Reverse(c)) = candidates.pop() {
            if results.len() >= ef && results.peek().is_some_and(|w| c.dist > w.dist) {
                break;
            }
            self.neighbors_into(c.node, level, links);
            // Drop the visited neighbours first, then keep the loads of the next neighbours in flight while scoring
            // one, so each waits less on memory: all of them at once, or a few ahead (`prefetch_ahead`).
            links.retain(|&nb| visited.first(nb));
            let ahead = sc.prefetch_ahead().min(links.len());
            for &nb in &links[..ahead] {
                sc.prefetch(nb as usize);
            }
            for (j, &nb) in links.iter().enumerate() {
                if let Some(&next) = links.get(j + ahead) {
                    sc.prefetch(next as usize);
                }
                let d = sc.distance(nb as usize);
                let worst = results.peek().map_or(f32::INFINITY, |w| w.dist);
                if results.len() < ef || d < worst {
                    candidates.push(Reverse(Cand { dist: d, node: nb }));
                    if admit(nb) {
                        results.push(Cand { dist: d, node: nb });
                        if results.len() > ef {
                            results.pop();
                        }
                    }
                }
            }
        }
    }

    /// The selection heuristic of the HNSW paper: walk candidates closest first and keep one only if it is
    /// closer to the base than to every neighbour kept so far (so links spread in different directions).
    fn select(&self, sorted: &[Cand], max: usize, out: &mut Vec<u32>) {
        out.clear();
        for c in sorted {
            if out.len() >= max {
                break;
            }
            let v = self.vector(c.node);
            if out.iter().all(|&r| self.dist(v, r) > c.dist) {
                out.push(c.node);
            }
        }
    }

    /// Links node `node` (vector and slots already present) into the graph.
    fn link(&self, node: u32, ctx: &mut Ctx) {
        let level = self.levels[node as usize] as usize;
        let snapshot = *self.entry.lock();
        let Some((entry, top)) = snapshot else {
            let mut e = self.entry.lock();
            match *e {
                None => {
                    *e = Some((node, level));
                    return;
                }
                // Another thread won the race to be first: link under it.
                Some(_) => drop(e),
            }
            return self.link(node, ctx);
        };
        let q = self.vector(node).to_vec();
        let sc = self.storage.scorer(&q);
        let mut links = std::mem::take(&mut ctx.links);
        let start = self.descend(&sc, entry, top, level.min(top), &mut links);
        ctx.links = links;
        let mut entries = vec![start];
        let mut sorted: Vec<Cand> = Vec::new();
        let mut selected: Vec<u32> = Vec::new();
        let live = |n: u32| !self.deleted[n as usize] && n != node;
        for l in (0..=level.min(top)).rev() {
            self.search_layer(&sc, &entries, self.params.ef_construction, l, ctx, &live);
            sorted.clear();
            sorted.extend(ctx.results.drain());
            sorted.sort_unstable();
            self.select(&sorted, self.params.m, &mut selected);
            {
                let _g = self.locks[node as usize].lock();
                self.set_neighbors(node, l, &selected);
            }
            for &nb in &selected {
                self.add_link(nb, node, l, &mut ctx.links);
            }
            if !sorted.is_empty() {
                entries.clear();
                entries.extend_from_slice(&sorted);
            }
        }
        if level > top {
            let mut e = self.entry.lock();
            if e.is_none_or(|(_, t)| level > t) {
                *e = Some((node, level));
            }
        }
    }

    /// Adds `new` to `nb`'s list at `level`, re-selecting with the heuristic when the list is full.
    fn add_link(&self, nb: u32, new: u32, level: usize, scratch: &mut Vec<u32>) {
        let _g = self.locks[nb as usize].lock();
        self.neighbors_into(nb, level, scratch);
        if scratch.contains(&new) {
            return;
        }
        let max = self.max_links(level);
        if scratch.len() < max {
            scratch.push(new);
            self.set_neighbors(nb, level, scratch);
            return;
        }
        let base = self.vector(nb);
        let mut cands: Vec<Cand> =
            scratch.iter().chain(std::iter::once(&new)).map(|&c| Cand { dist: self.dist(base, c), node: c }).collect();
        cands.sort_unstable();
        let mut out = Vec::with_capacity(max);
        self.select(&cands, max, &mut out);
        self.set_neighbors(nb, level, &out);
    }

    /// Descends to layer 0 and searches it with scorer `sc`; returns the admitted candidates (unsorted).
    fn walk(
        &self,
        sc: &impl QueryScorer,
        entry: u32,
        top: usize,
        ef: usize,
        ctx: &mut Ctx,
        admit: &dyn Fn(u32) -> bool,
    ) -> Vec<Cand> {
        let start = self.descend(sc, entry, top, 0, &mut ctx.links);
        self.search_layer(sc, &[start], ef, 0, ctx, admit);
        ctx.results.drain().collect()
    }

    /// Keeps the best `keep` candidates found on codes and rescores them on the f32 vectors.
    fn rescore(&self, q: &[f32], mut approx: Vec<Cand>, keep: usize) -> Vec<Cand> {
        approx.sort_unstable();
        approx.truncate(keep);
        approx.iter().map(|c| Cand { dist: self.dist(q, c.node), node: c.node }).collect()
    }

    /// Exact top-k over live points the filter allows.
    fn exact(&self, q: &[f32], k: usize, filter: Option<&dyn IdFilter>) -> Vec<Neighbor> {
        let mut heap = TopK::new(k);
        match filter.and_then(|f| f.ids()) {
            Some(set) => {
                for id in set.iter() {
                    if let Some(node) = self.node_of(id) {
                        heap.push(Neighbor::new(id, self.dist(q, node)));
                    }
                }
            }
            None => {
                for (node, &id) in self.ids.iter().enumerate() {
                    if !self.deleted[node] && filter.is_none_or(|f| f.allows(id)) {
                        heap.push(Neighbor::new(id, self.dist(q, node as u32)));
                    }
                }
            }
        }
        heap.into_sorted_vec()
    }

    /// How many live points `filter` admits (see [`crate::filter::estimate_matches`]).
    fn estimate_matches(&self, filter: &dyn IdFilter) -> usize {
        let id_at = |i: usize| (!self.deleted[i]).then(|| self.ids[i]);
        crate::filter::estimate_matches(filter, self.len(), self.ids.len(), id_at)
    }

    /// Decodes a graph written by [`VectorIndex::to_bytes`].
    pub fn from_bytes(bytes: &[u8]) -> Result<Self> {
        Self::decode(bytes, None)
    }

    /// Decodes a graph written by [`HnswIndex::to_bytes_without_vectors`], reading node `i`'s vector from row `i`
    /// of `vectors` (prepared for the index's metric, as the index handed them out by [`HnswIndex::vectors`]). A
    /// graph written with its vectors ignores `vectors`.
    pub fn from_bytes_with_vectors(bytes: &[u8], vectors: VectorSet) -> Result<Self> {
        Self::decode(bytes, Some(vectors))
    }

    fn decode(bytes: &[u8], external: Option<VectorSet>) -> Result<Self> {
        let (mut r, version) = Reader::open_versions(bytes, "hnsw index", IndexKind::Hnsw.tag(), 1..=VERSION)?;
        let at = r.offset();
        let metric = Metric::from_tag(r.u8()?).ok_or_else(|| r.corrupt(at, "unknown metric tag"))?;
        let _reserved = [r.u8()?, r.u8()?, r.u8()?];
        let at = r.offset();
        let dim = r.u32()? as usize;
        crate::vectors::validate_dim(dim).map_err(|e| r.corrupt(at, e.to_string()))?;
        let at = r.offset();
        let mut p = Params::new();
        p.set("m", r.u32()?).set("ef_construction", r.u32()?).set("ef_search", r.u32()?).set("seed", r.u64()?);
        let mut hp = HnswParams::from_params(p).map_err(|e| r.corrupt(at, e.to_string()))?;
        let at = r.offset();
        hp.quantization = Quantization::from_tag(r.u8()?).ok_or_else(|| r.corrupt(at, "unknown quantization tag"))?;
        hp.pq_m = r.u32()? as usize;
        let at = r.offset();
        // Version 1 always holds the vectors.
        let inline = version < 2 || r.u8()? != 0;
        if !inline && external.is_none() {
            return Err(r.corrupt(at, "the vectors are stored outside this index, and none were given"));
        }
        let at = r.offset();
        let n = r.u32()? as usize;
        if n == NO_NODE as usize {
            return Err(r.corrupt(at, "node count out of range"));
        }
        let entry_node = r.u32()?;
        let at_top = r.offset();
        let top = r.u32()? as usize;
        let ids = r.u64s(n)?;
        let at_del = r.offset();
        let deleted: Vec<bool> = r.bytes(n)?.iter().map(|&b| b != 0).collect();
        let at_levels = r.offset();
        let levels = r.bytes(n)?.to_vec();
        let layer0 = r.u32s(n * (hp.m0() + 1))?;
        let at_upper = r.offset();
        let upper_lists = r.u32()? as usize;
        let upper = r.u32s(upper_lists.checked_mul(hp.m + 1).ok_or_else(|| r.corrupt(at_upper, "count overflows"))?)?;
        let at_vec = r.offset();
        let data = if inline {
            Some(r.f32s(n.checked_mul(dim).ok_or_else(|| r.corrupt(at_vec, "count overflows"))?)?)
        } else {
            None
        };
        let codes = match hp.quantization {
            Quantization::None => Codes::None,
            Quantization::Sq8 => Codes::Sq8(Sq8Storage::read(&mut r, metric, dim, n)?),
            Quantization::Sq4 => Codes::Sq4(Sq4Storage::read(&mut r, metric, dim, n)?),
            Quantization::Pq => Codes::Pq(PqStorage::read(&mut r, metric, dim, n)?),
            Quantization::Bits => Codes::Bits(BitStorage::read(&mut r, metric, dim, n)?),
        };
        r.finish()?;

        let corrupt =
            |offset: usize, detail: String| Error::Corrupt { what: "hnsw index", offset: offset as u64, detail };
        let vectors = match (data, external) {
            (Some(data), _) => VectorSet::from_flat(dim, data).map_err(|e| corrupt(at_vec, e.to_string()))?,
            (None, Some(v)) if v.len() == n && v.dim() == dim => v,
            (None, Some(v)) => {
                return Err(Error::invalid(
                    "vectors",
                    format!("{n} rows of dimension {dim} (the graph's nodes)"),
                    format!("{} rows of dimension {}", v.len(), v.dim()),
                ));
            }
            (None, None) => return Err(corrupt(at_vec, "no vectors".into())),
        };
        // Levels must match the seed (they are a function of it) and the upper lists must add up.
        let mut upper_start = Vec::with_capacity(n);
        let mut next = 0usize;
        for (i, &l) in levels.iter().enumerate() {
            if l as usize != hp.level_of(i as u64) {
                return Err(corrupt(at_levels + i, format!("level {l} of node {i} does not match the seed")));
            }
            if l == 0 {
                upper_start.push(NO_NODE);
            } else {
                upper_start.push(next as u32);
                next += l as usize;
            }
        }
        if next != upper_lists {
            return Err(corrupt(at_upper, format!("{upper_lists} upper lists, levels need {next}")));
        }
        for (lists, width, at) in [(&layer0, hp.m0() + 1, at_levels + n), (&upper, hp.m + 1, at_upper + 4)] {
            for (li, list) in lists.chunks_exact(width).enumerate() {
                let count = list[0] as usize;
                if count >= width || list[1..=count].iter().any(|&x| x as usize >= n) {
                    return Err(corrupt(at + li * width * 4, format!("link list {li} is malformed")));
                }
            }
        }
        let n_deleted = deleted.iter().filter(|&&d| d).count();
        let rows = if ids.iter().enumerate().all(|(i, &id)| id == i as u64) {
            None
        } else {
            let mut rows = HashMap::with_capacity(n - n_deleted);
            for (node, &id) in ids.iter().enumerate() {
                if !deleted[node] && rows.insert(id, node as u32).is_some() {
                    return Err(corrupt(at_del, format!("duplicate live id {id}")));
                }
            }
            Some(rows)
        };
        let entry = match entry_node {
            NO_NODE if n_deleted == n => None,
            e if (e as usize) < n && top == levels[e as usize] as usize => Some((e, top)),
            _ => return Err(corrupt(at_top, "entry point does not match the levels".to_owned())),
        };
        Ok(Self {
            params: hp,
            storage: RawStorage::new(metric, vectors),
            ids,
            rows,
            deleted,
            n_deleted,
            levels,
            upper_start,
            layer0: crate::huge::collected(layer0.len(), layer0.into_iter().map(AtomicU32::new)),
            upper: upper.into_iter().map(AtomicU32::new).collect(),
            locks: (0..n).map(|_| Mutex::new(())).collect(),
            entry: Mutex::new(entry),
            codes,
        })
    }

    /// Picks a new entry point after the old one was removed: the live node of the highest level.
    fn reelect_entry(&mut self) {
        let best =
            (0..self.ids.len()).filter(|&i| !self.deleted[i]).max_by_key(|&i| (self.levels[i], std::cmp::Reverse(i)));
        *self.entry.get_mut() = best.map(|i| (i as u32, self.levels[i] as usize));
    }
}

impl VectorIndex for HnswIndex {
    fn kind(&self) -> IndexKind {
        IndexKind::Hnsw
    }

    fn metric(&self) -> Metric {
        self.storage.metric
    }

    fn dim(&self) -> usize {
        self.storage.vectors.dim()
    }

    fn len(&self) -> usize {
        self.ids.len() - self.n_deleted
    }

    fn contains(&self, id: u64) -> bool {
        self.node_of(id).is_some()
    }

    fn search(
        &self,
        query: &[f32],
        k: usize,
        params: &SearchParams,
        filter: Option<&dyn IdFilter>,
    ) -> Result<Vec<Neighbor>> {
        let q = prepare_query(self.metric(), self.dim(), query)?;
        let live = self.len();
        if k == 0 || live == 0 {
            return Ok(Vec::new());
        }
        let ef = params.ef.unwrap_or(self.params.ef_search).max(k);
        if params.exact {
            return Ok(self.exact(&q, k, filter));
        }
        if let Some(f) = filter {
            let matches = self.estimate_matches(f);
            if matches == 0 && f.cardinality().is_some() {
                return Ok(Vec::new());
            }
            if (matches as f64) <= ((ef * live) as f64).sqrt() {
                return Ok(self.exact(&q, k, filter));
            }
        }
        let Some((entry, top)) = *self.entry.lock() else { return Ok(Vec::new()) };
        let admit = |n: u32| !self.deleted[n as usize] && filter.is_none_or(|f| f.allows(self.ids[n as usize]));
        let found = with_ctx(|ctx| {
            let rerank = k.saturating_mul(params.rerank.unwrap_or(Self::DEFAULT_RERANK)).max(k);
            let mut cands: Vec<Cand> = match &self.codes {
                Codes::None => self.walk(&self.storage.scorer(&q), entry, top, ef, ctx, &admit),
                Codes::Sq8(c) => self.rescore(&q, self.walk(&c.scorer(&q), entry, top, ef, ctx, &admit), rerank),
                Codes::Sq4(c) => self.rescore(&q, self.walk(&c.scorer(&q), entry, top, ef, ctx, &admit), rerank),
                Codes::Pq(c) => self.rescore(&q, self.walk(&c.scorer(&q), entry, top, ef, ctx, &admit), rerank),
                Codes::Bits(c) => self.rescore(&q, self.walk(&c.scorer(&q), entry, top, ef, ctx, &admit), rerank),
            };
            cands.sort_unstable();
            cands.truncate(k);
            cands.into_iter().map(|c| Neighbor::new(self.ids[c.node as usize], c.dist)).collect::<Vec<_>>()
        });
        // Fewer than k found while more exist (a very selective filter, or many tombstones): scan exactly.
        if found.len() < k && found.len() < live {
            let exact = self.exact(&q, k, filter);
            if exact.len() > found.len() {
                return Ok(exact);
            }
        }
        Ok(found)
    }

    fn memory_bytes(&self) -> usize {
        let map = self.rows.as_ref().map_or(0, |r| r.capacity() * (8 + 4 + 1) * 8 / 7);
        self.storage.vectors.memory_bytes()
            + self.ids.capacity() * 8
            + map
            + self.deleted.capacity()
            + self.levels.capacity()
            + self.upper_start.capacity() * 4
            + (self.layer0.capacity() + self.upper.capacity()) * 4
            + self.locks.capacity() * std::mem::size_of::<Mutex<()>>()
            + match &self.codes {
                Codes::None => 0,
                Codes::Sq8(c) => c.memory_bytes(),
                Codes::Sq4(c) => c.memory_bytes(),
                Codes::Pq(c) => c.memory_bytes(),
                Codes::Bits(c) => c.memory_bytes(),
            }
    }

    /// Payload (version 2), little-endian: metric tag u8, 3 zero bytes, dim u32, m u32, ef_construction u32,
    /// ef_search u32, seed u64, quantization tag u8 (0 none, 1 sq8, 2 pq, 3 bits), pq_m u32, vectors flag u8
    /// (1: held below, 0: stored by the caller; absent in version 1, which always holds them), node count n u32,
    /// entry node u32 (u32::MAX if none), top level u32,
    /// ids `n x u64`, tombstones `n x u8` (0/1), levels `n x u8`, layer-0 lists `n x (2m + 1) x u32`
    /// (count then ids), upper list count u32, upper lists `count x (m + 1) x u32`, vectors `n x dim x f32` (when
    /// the flag is 1);
    /// with sq8 then: quantizer (dim u32, lo `dim x f32`, step `dim x f32`), codes `n x dim x u8`, decoded
    /// squared norms `n x f32`; with pq: quantizer (dim u32, m u32, ksub u32, centroids `m x ksub x dim/m x f32`),
    /// codes `n x m x u8`; with bits: rotation (dim u32, `dim x dim x f32`), codes `n x ceil(dim/64) x u64`.
    fn to_bytes(&self) -> Vec<u8> {
        self.encode(true)
    }
}

impl HnswIndex {
    /// The graph, its codes and its parameters without the vectors, for a caller that stores the vectors itself
    /// (in row order, as [`HnswIndex::vectors`] gives them) and hands them back to
    /// [`HnswIndex::from_bytes_with_vectors`]: a segment file keeps them in their own aligned block, read in place.
    pub fn to_bytes_without_vectors(&self) -> Vec<u8> {
        self.encode(false)
    }

    fn encode(&self, inline_vectors: bool) -> Vec<u8> {
        let v = &self.storage.vectors;
        let n = self.ids.len();
        let mut w = Writer::new(
            IndexKind::Hnsw.tag(),
            VERSION,
            64 + n * 10 + (self.layer0.len() + self.upper.len()) * 4 + v.as_slice().len() * 4,
        );
        w.u8(self.metric().tag());
        w.u8(0);
        w.u8(0);
        w.u8(0);
        w.u32(v.dim() as u32);
        w.u32(self.params.m as u32);
        w.u32(self.params.ef_construction as u32);
        w.u32(self.params.ef_search as u32);
        w.u64(self.params.seed);
        w.u8(self.params.quantization.tag());
        w.u32(self.params.pq_m as u32);
        w.u8(u8::from(inline_vectors));
        w.u32(n as u32);
        let entry = *self.entry.lock();
        w.u32(entry.map_or(NO_NODE, |(e, _)| e));
        w.u32(entry.map_or(0, |(_, t)| t as u32));
        w.u64s(&self.ids);
        w.bytes(&self.deleted.iter().map(|&d| u8::from(d)).collect::<Vec<_>>());
        w.bytes(&self.levels);
        w.u32s(self.layer0.iter().map(|a| a.load(Relaxed)));
        w.u32((self.upper.len() / (self.params.m + 1)) as u32);
        w.u32s(self.upper.iter().map(|a| a.load(Relaxed)));
        if inline_vectors {
            w.f32s(v.as_slice());
        }
        match &self.codes {
            Codes::None => {}
            Codes::Sq8(c) => c.write(&mut w),
            Codes::Sq4(c) => c.write(&mut w),
            Codes::Pq(c) => c.write(&mut w),
            Codes::Bits(c) => c.write(&mut w),
        }
        w.finish()
    }
}

impl MutableIndex for HnswIndex {
    fn insert(&mut self, id: u64, vector: &[f32]) -> Result<()> {
        validate_vector(vector, self.dim())?;
        let mut v = vector.to_vec();
        self.metric().prepare(&mut v)?;
        if self.ids.len() >= NO_NODE as usize - 1 {
            return Err(Error::invalid("points", "fewer than 2^32 - 1 nodes per graph", self.ids.len()));
        }
        // Upsert: the old node becomes a tombstone (with repair), the new vector a new node.
        self.remove(id);
        let node = self.storage.vectors.push(&v)?;
        match &mut self.codes {
            Codes::None => {}
            Codes::Sq8(c) => c.push(&v),
            Codes::Sq4(c) => c.push(&v),
            Codes::Pq(c) => c.push(&v),
            Codes::Bits(c) => c.push(&v),
        }
        self.ids.push(id);
        self.deleted.push(false);
        match &mut self.rows {
            Some(rows) => {
                rows.insert(id, node as u32);
            }
            // Still the identity.
            None if id == node as u64 => {}
            None => {
                let mut rows: HashMap<u64, u32> =
                    (0..node).filter(|&i| !self.deleted[i]).map(|i| (self.ids[i], i as u32)).collect();
                rows.insert(id, node as u32);
                self.rows = Some(rows);
            }
        }
        self.push_node_slots(node);
        with_ctx(|ctx| self.link(node as u32, ctx));
        Ok(())
    }

    fn remove(&mut self, id: u64) -> bool {
        let node = match &mut self.rows {
            Some(rows) => rows.remove(&id),
            None => self.node_of(id),
        };
        let Some(node) = node else { return false };
        self.deleted[node as usize] = true;
        self.n_deleted += 1;
        let mut outs = Vec::new();
        let mut theirs = Vec::new();
        let mut selected = Vec::new();
        for level in 0..=self.levels[node as usize] as usize {
            self.neighbors_into(node, level, &mut outs);
            for &u in &outs {
                if self.deleted[u as usize] {
                    continue;
                }
                self.neighbors_into(u, level, &mut theirs);
                if !theirs.contains(&node) {
                    continue;
                }
                let base = self.vector(u);
                let mut cands: Vec<Cand> = theirs
                    .iter()
                    .chain(outs.iter())
                    .filter(|&&c| c != u && c != node && !self.deleted[c as usize])
                    .map(|&c| Cand { dist: self.dist(base, c), node: c })
                    .collect();
                cands.sort_unstable();
                cands.dedup_by_key(|c| c.node);
                self.select(&cands, self.max_links(level), &mut selected);
                self.set_neighbors(u, level, &selected);
            }
        }
        if self.entry.get_mut().is_some_and(|(e, _)| e == node) {
            self.reelect_entry();
        }
        true
    }
}

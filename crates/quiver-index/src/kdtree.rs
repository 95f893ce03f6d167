//! `KdTreeIndex`: a KD-tree with median splits on the dimension of highest spread, leaves of `leaf_size` points
//! and a tight bounding box per node.
//!
//! Search is branch and bound over a lower bound of the distance from the query to anything in a node:
//! - Euclidean, exact: incremental split-plane bounds ([`KdTree::depth_first_l2`], as SciPy's cKDTree): the
//!   root's tight box gives per-dimension terms; descending, the child on the query's side of the split keeps the
//!   parent's bound and the other child's bound changes only the split dimension's term, so a node costs O(1);
//! - box bounds (O(d) per child; the approximate mode and the other metrics):
//!   - Euclidean: `Σ max(loᵢ − qᵢ, 0, qᵢ − hiᵢ)²`;
//!   - Dot (maximum inner product): `−Σ max(qᵢ·loᵢ, qᵢ·hiᵢ)` (the largest `q·x` over the box; not an L2 bound);
//!   - Cosine (unit vectors): the larger of the dot bound `1 − Σ max(qᵢloᵢ, qᵢhiᵢ)` and half the squared L2 box
//!     distance (for unit vectors `1 − q·x = ‖q − x‖²/2`).
//!
//! Exact mode (the default) is depth first — the nearer child first, the other only if its bound still beats the
//! k-th distance found — so it returns exactly what Flat returns. Approximate mode (`max_leaves`) is
//! best-bin-first over a priority queue: it also stops after visiting that many leaves, which bounds the work in
//! high dimensions where the bounds prune little.
//!
//! Leaf storage: up to [`PACK_MAX_DIM`] dimensions the coordinates of every leaf's rows are also copied into one
//! contiguous buffer in leaf order ([`LeafPack`], derived: rebuilt at build, rebuild and load, never serialised),
//! so scoring a leaf streams memory instead of gathering rows; small Euclidean dimensions (2, 3, 4, 8) are scored
//! by unrolled loops. Rows inserted since are scored from the point store.
//!
//! Updates: inserts descend to a leaf and widen the boxes on the way (leaves may grow past `leaf_size`); removals
//! are tombstones; the tree is rebuilt from the live points once the changes since the last build exceed the
//! points at that build (see [`crate::points`]).

use crate::any::IndexKind;
use crate::codec::{Reader, Writer};
use crate::error::Result;
use crate::filter::IdFilter;
use crate::metric::Metric;
use crate::neighbor::{Neighbor, TopK};
use crate::params::{Params, SearchParams};
use crate::points::Points;
use crate::traits::{MutableIndex, VectorIndex, prepare_query};
use crate::vectors::VectorSet;
use std::cmp::{Ordering, Reverse};
use std::collections::BinaryHeap;

/// Format version of the KD-tree payload.
const VERSION: u16 = 1;
pub(crate) const NONE: u32 = u32::MAX;

/// One node: internal when `left != NONE` (then `rows` is empty), otherwise a leaf listing its rows.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Node {
    pub(crate) split_dim: u32,
    pub(crate) split: f32,
    pub(crate) left: u32,
    pub(crate) right: u32,
    pub(crate) rows: Vec<u32>,
}

impl Node {
    pub(crate) fn is_leaf(&self) -> bool {
        self.left == NONE
    }
}

#[derive(Copy, Clone, Debug)]
struct Entry {
    bound: f32,
    node: u32,
}

impl PartialEq for Entry {
    fn eq(&self, o: &Self) -> bool {
        self.cmp(o) == Ordering::Equal
    }
}
impl Eq for Entry {}
impl Ord for Entry {
    fn cmp(&self, o: &Self) -> Ordering {
        self.bound.total_cmp(&o.bound).then(self.node.cmp(&o.node))
    }
}
impl PartialOrd for Entry {
    fn partial_cmp(&self, o: &Self) -> Option<Ordering> {
        Some(self.cmp(o))
    }
}

/// The tree over some coordinates (the index's own vectors, or a projection of them): nodes in preorder of the
/// build, then appended by nothing (inserts never add nodes), and one box (`lo` then `hi`) per node.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct KdTree {
    pub(crate) dim: usize,
    pub(crate) nodes: Vec<Node>,
    pub(crate) boxes: Vec<f32>,
}

impl KdTree {
    /// Builds over `rows` of `coords` with leaves of at most `leaf_size` points (a leaf may hold more only when
    /// all its points coincide).
    /// `coords` holds rows of `dim` values back to back.
    pub(crate) fn build(coords: &[f32], dim: usize, mut rows: Vec<u32>, leaf_size: usize) -> Self {
        let mut t = Self { dim, nodes: Vec::new(), boxes: Vec::new() };
        t.build_node(coords, &mut rows, leaf_size.max(1));
        t
    }

    fn build_node(&mut self, coords: &[f32], rows: &mut [u32], leaf_size: usize) -> u32 {
        let id = self.nodes.len() as u32;
        let dim = self.dim;
        let get = |r: u32| &coords[r as usize * dim..(r as usize + 1) * dim];
        let mut lo = vec![f32::INFINITY; dim];
        let mut hi = vec![f32::NEG_INFINITY; dim];
        for &r in rows.iter() {
            for ((l, h), &x) in lo.iter_mut().zip(hi.iter_mut()).zip(get(r)) {
                *l = l.min(x);
                *h = h.max(x);
            }
        }
        self.boxes.extend_from_slice(&lo);
        self.boxes.extend_from_slice(&hi);
        self.nodes.push(Node { split_dim: 0, split: 0.0, left: NONE, right: NONE, rows: Vec::new() });
        let (split_dim, spread) = (0..dim)
            .map(|d| (d, hi[d] - lo[d]))
            .fold((0, f32::NEG_INFINITY), |best, cur| if cur.1 > best.1 { cur } else { best });
        if rows.len() <= leaf_size || spread.is_nan() || spread <= 0.0 {
            self.nodes[id as usize].rows = rows.to_vec();
            return id;
        }
        let mid = rows.len() / 2;
        let key = |r: &u32| get(*r)[split_dim];
        rows.select_nth_unstable_by(mid, |a, b| key(a).total_cmp(&key(b)).then(a.cmp(b)));
        let split = key(&rows[mid]);
        let (l, r) = rows.split_at_mut(mid);
        let left = self.build_node(coords, l, leaf_size);
        let right = self.build_node(coords, r, leaf_size);
        self.nodes[id as usize] = Node { split_dim: split_dim as u32, split, left, right, rows: Vec::new() };
        id
    }

    pub(crate) fn node_box(&self, node: u32) -> (&[f32], &[f32]) {
        let at = node as usize * 2 * self.dim;
        self.boxes[at..at + 2 * self.dim].split_at(self.dim)
    }

    /// Adds `row` (coordinates `x`) to the leaf it descends to, widening every box on the way; returns the leaf.
    pub(crate) fn insert(&mut self, x: &[f32], row: u32) -> u32 {
        let dim = self.dim;
        let mut node = 0u32;
        loop {
            let at = node as usize * 2 * dim;
            let (lo, hi) = self.boxes[at..at + 2 * dim].split_at_mut(dim);
            for ((l, h), &v) in lo.iter_mut().zip(hi.iter_mut()).zip(x) {
                *l = l.min(v);
                *h = h.max(v);
            }
            let n = &mut self.nodes[node as usize];
            if n.is_leaf() {
                n.rows.push(row);
                return node;
            }
            node = if x[n.split_dim as usize] < n.split { n.left } else { n.right };
        }
    }

    /// Best-first traversal: pops nodes by `bound(lo, hi)`, stops at the first bound above the threshold that
    /// `leaf` returns (initially +inf) or after `max_leaves` leaves.
    pub(crate) fn best_first(
        &self,
        bound: impl Fn(&[f32], &[f32]) -> f32,
        max_leaves: usize,
        mut leaf: impl FnMut(u32, &[u32]) -> f32,
    ) {
        if self.nodes.is_empty() || max_leaves == 0 {
            return;
        }
        let mut heap = BinaryHeap::with_capacity(64);
        let (lo, hi) = self.node_box(0);
        heap.push(Reverse(Entry { bound: bound(lo, hi), node: 0 }));
        let mut threshold = f32::INFINITY;
        let mut leaves = 0;
        while let Some(Reverse(e)) = heap.pop() {
            if e.bound > threshold {
                break;
            }
            let n = &self.nodes[e.node as usize];
            if n.is_leaf() {
                threshold = leaf(e.node, &n.rows);
                leaves += 1;
                if leaves >= max_leaves {
                    break;
                }
            } else {
                for child in [n.left, n.right] {
                    let (lo, hi) = self.node_box(child);
                    let b = bound(lo, hi).max(e.bound);
                    if b <= threshold {
                        heap.push(Reverse(Entry { bound: b, node: child }));
                    }
                }
            }
        }
    }

    /// Exact branch and bound, depth first: at each internal node the child with the smaller bound is visited
    /// first and the other only if its bound still beats the threshold `leaf` returns. No priority queue, so it
    /// costs less per node than [`KdTree::best_first`]; used when the leaf budget is unlimited.
    pub(crate) fn depth_first(&self, bound: impl Fn(&[f32], &[f32]) -> f32, mut leaf: impl FnMut(u32, &[u32]) -> f32) {
        if self.nodes.is_empty() {
            return;
        }
        let (lo, hi) = self.node_box(0);
        let root = bound(lo, hi);
        let mut threshold = f32::INFINITY;
        self.descend(0, root, &bound, &mut leaf, &mut threshold);
    }

    fn descend(
        &self,
        node: u32,
        node_bound: f32,
        bound: &impl Fn(&[f32], &[f32]) -> f32,
        leaf: &mut impl FnMut(u32, &[u32]) -> f32,
        threshold: &mut f32,
    ) {
        if node_bound > *threshold {
            return;
        }
        let n = &self.nodes[node as usize];
        if n.is_leaf() {
            *threshold = leaf(node, &n.rows);
            return;
        }
        let child_bound = |c: u32| {
            let (lo, hi) = self.node_box(c);
            bound(lo, hi).max(node_bound)
        };
        let (bl, br) = (child_bound(n.left), child_bound(n.right));
        let (first, b1, second, b2) = if bl <= br { (n.left, bl, n.right, br) } else { (n.right, br, n.left, bl) };
        self.descend(first, b1, bound, leaf, threshold);
        self.descend(second, b2, bound, leaf, threshold);
    }

    /// Exact branch and bound for the Euclidean metric with incremental split-plane bounds (as SciPy's cKDTree):
    /// `side[d]` holds the squared distance from `q` to the current node's cell along dimension `d` (the root's
    /// tight box intersected with the half-spaces of the splits above), and the bound is their sum. The child on
    /// `q`'s side of the split inherits the parent's bound unchanged; the other child's bound replaces only the
    /// split dimension's term by the squared distance to the split plane, so a node costs O(1) instead of the
    /// O(d) box distance. Valid because a build puts points `<= split` left and `>= split` right and an insert
    /// goes left only when `< split`. The bound is kept in f64 (it is exact to well within the slack of
    /// [`l2_prunes`]); `q` is the prepared query, `leaf` as in [`KdTree::depth_first`].
    pub(crate) fn depth_first_l2(&self, q: &[f32], mut leaf: impl FnMut(u32, &[u32]) -> f32) {
        if self.nodes.is_empty() {
            return;
        }
        let (lo, hi) = self.node_box(0);
        let mut small = [0f64; 16];
        let mut large = Vec::new();
        let side: &mut [f64] = if self.dim <= small.len() {
            &mut small[..self.dim]
        } else {
            large.resize(self.dim, 0.0);
            &mut large
        };
        let mut root = 0f64;
        for (s, (&x, (&l, &h))) in side.iter_mut().zip(q.iter().zip(lo.iter().zip(hi))) {
            let d = f64::from((l - x).max(x - h).max(0.0));
            *s = d * d;
            root += *s;
        }
        let mut threshold = f32::INFINITY;
        self.descend_l2(0, root, side, q, &mut leaf, &mut threshold);
    }

    fn descend_l2(
        &self,
        node: u32,
        bound: f64,
        side: &mut [f64],
        q: &[f32],
        leaf: &mut impl FnMut(u32, &[u32]) -> f32,
        threshold: &mut f32,
    ) {
        if l2_prunes(bound, *threshold) {
            return;
        }
        let n = &self.nodes[node as usize];
        if n.is_leaf() {
            *threshold = leaf(node, &n.rows);
            return;
        }
        let d = n.split_dim as usize;
        let diff = f64::from(q[d]) - f64::from(n.split);
        let (near, far) = if diff < 0.0 { (n.left, n.right) } else { (n.right, n.left) };
        self.descend_l2(near, bound, side, q, leaf, threshold);
        let old = side[d];
        let new = (diff * diff).max(old);
        let far_bound = bound - old + new;
        if !l2_prunes(far_bound, *threshold) {
            side[d] = new;
            self.descend_l2(far, far_bound, side, q, leaf, threshold);
            side[d] = old;
        }
    }

    /// Leaves in preorder.
    pub(crate) fn leaves(&self) -> impl Iterator<Item = (u32, &Node)> {
        self.nodes.iter().enumerate().filter(|(_, n)| n.is_leaf()).map(|(i, n)| (i as u32, n))
    }

    pub(crate) fn memory_bytes(&self) -> usize {
        self.nodes.capacity() * std::mem::size_of::<Node>()
            + self.nodes.iter().map(|n| n.rows.capacity() * 4).sum::<usize>()
            + self.boxes.capacity() * 4
    }

    pub(crate) fn byte_len(&self) -> usize {
        4 + self.nodes.iter().map(|n| 20 + n.rows.len() * 4).sum::<usize>() + self.boxes.len() * 4
    }

    /// Layout: node count u32; per node: left u32, right u32 (`0xFFFF_FFFF` for a leaf), split dimension u32,
    /// split value f32, row count u32, rows `count x u32` (empty for internal nodes); then the boxes
    /// `nodes x (lo: dim x f32, hi: dim x f32)`.
    pub(crate) fn write(&self, w: &mut Writer) {
        write_nodes(&self.nodes, w);
        w.f32s(&self.boxes);
    }

    /// Reads a tree over `n_rows` rows of `dim` coordinates (see [`read_nodes`]) and its boxes.
    pub(crate) fn read(r: &mut Reader<'_>, dim: usize, n_rows: usize) -> Result<Self> {
        let nodes = read_nodes(r, n_rows, |split_dim, split| (split_dim as usize) < dim && split.is_finite())?;
        let at = r.offset();
        let boxes = r.f32s(nodes.len().checked_mul(2 * dim).ok_or_else(|| r.corrupt(at, "count overflows"))?)?;
        if boxes.iter().any(|x| x.is_nan()) {
            return Err(r.corrupt(at, "NaN in a bounding box"));
        }
        Ok(Self { dim, nodes, boxes })
    }
}

/// Writes nodes as [`KdTree::write`] does (without the boxes).
pub(crate) fn write_nodes(nodes: &[Node], w: &mut Writer) {
    w.u32(nodes.len() as u32);
    for n in nodes {
        w.u32(n.left);
        w.u32(n.right);
        w.u32(n.split_dim);
        w.f32s(&[n.split]);
        w.u32(n.rows.len() as u32);
        w.u32s(n.rows.iter().copied());
    }
}

/// Reads nodes over `n_rows` rows, checking that they form one tree rooted at 0 (children after their parent,
/// each referenced once), that every row is in exactly one leaf, and `split_ok` for internal nodes.
pub(crate) fn read_nodes(r: &mut Reader<'_>, n_rows: usize, split_ok: impl Fn(u32, f32) -> bool) -> Result<Vec<Node>> {
    let at = r.offset();
    let count = r.u32()? as usize;
    if count == 0 || count > 2 * n_rows + 1 {
        return Err(r.corrupt(at, format!("{count} nodes for {n_rows} rows")));
    }
    let mut nodes = Vec::with_capacity(count);
    let mut parent_seen = vec![false; count];
    let mut row_seen = vec![false; n_rows];
    for i in 0..count {
        let at = r.offset();
        let (left, right, split_dim) = (r.u32()?, r.u32()?, r.u32()?);
        let split = f32::from_bits(r.u32()?);
        let nr = r.u32()? as usize;
        let rows = r.u32s(nr)?;
        let bad = |detail: &str| r.corrupt(at, format!("node {i}: {detail}"));
        if left == NONE {
            if right != NONE || split_dim != 0 || split.to_bits() != 0 {
                return Err(bad("malformed leaf"));
            }
            for &row in &rows {
                match row_seen.get_mut(row as usize) {
                    Some(seen @ false) => *seen = true,
                    _ => return Err(bad("row out of range or in two leaves")),
                }
            }
        } else {
            if !rows.is_empty() || !split_ok(split_dim, split) {
                return Err(bad("malformed internal node"));
            }
            for c in [left, right] {
                let c = c as usize;
                if c <= i || c >= count || parent_seen[c] {
                    return Err(bad("child out of order or shared"));
                }
                parent_seen[c] = true;
            }
        }
        nodes.push(Node { split_dim, split, left, right, rows });
    }
    if parent_seen.iter().skip(1).any(|&s| !s) {
        return Err(r.corrupt(at, "a node is not reachable from the root"));
    }
    if row_seen.iter().any(|&s| !s) {
        return Err(r.corrupt(at, "a row is in no leaf"));
    }
    Ok(nodes)
}

/// Whether a squared-L2 lower bound `bound` (exact, unslacked) lets the search skip a node at `threshold`: the
/// same slack as [`box_bound`], so float rounding in the kernels never prunes a point scored at the bound.
#[inline]
fn l2_prunes(bound: f64, threshold: f32) -> bool {
    let b = bound as f32;
    b - 1e-5 * (1.0 + b) > threshold
}

/// Dimensions up to which leaf points are also kept in a contiguous per-tree buffer (see [`LeafPack`]); above
/// it the tree prunes little, the distance kernel dominates and a second copy of the vectors would double the
/// memory.
const PACK_MAX_DIM: usize = 32;

/// The coordinates of every leaf's rows copied into one buffer in leaf (preorder) order, so scoring a leaf
/// streams memory instead of gathering rows. Derived, never serialised: rebuilt at build, rebuild and load.
/// Rows inserted after that go to their leaf's `rows` past the packed prefix (`count[leaf]`) and are scored
/// from the point store.
#[derive(Clone, Debug, Default)]
struct LeafPack {
    coords: Vec<f32>,
    /// Per node: first packed point (in points, not floats) and how many of `rows` are packed.
    start: Vec<u32>,
    count: Vec<u32>,
}

impl LeafPack {
    fn new(tree: &KdTree, vectors: &VectorSet) -> Self {
        let dim = tree.dim;
        let n = tree.nodes.len();
        if dim > PACK_MAX_DIM {
            return Self { coords: Vec::new(), start: vec![0; n], count: vec![0; n] };
        }
        let total: usize = tree.leaves().map(|(_, l)| l.rows.len()).sum();
        let mut coords = Vec::with_capacity(total * dim);
        let (mut start, mut count) = (vec![0u32; n], vec![0u32; n]);
        for (id, l) in tree.leaves() {
            start[id as usize] = (coords.len() / dim) as u32;
            count[id as usize] = l.rows.len() as u32;
            for &r in &l.rows {
                coords.extend_from_slice(vectors.get(r as usize));
            }
        }
        Self { coords, start, count }
    }

    fn memory_bytes(&self) -> usize {
        (self.coords.capacity() + self.start.capacity() + self.count.capacity()) * 4
    }
}

/// Scores a leaf: the packed prefix of `rows` from the contiguous buffer (specialised for small Euclidean
/// dimensions, same arithmetic as [`Points::distance`]), the rest (rows inserted since the pack) from the store.
#[inline]
fn score_leaf(
    pts: &Points,
    pack: &LeafPack,
    q: &[f32],
    node: u32,
    rows: &[u32],
    heap: &mut TopK,
    filter: Option<&dyn IdFilter>,
) {
    let dim = q.len();
    let count = pack.count[node as usize] as usize;
    if count > 0 {
        let start = pack.start[node as usize] as usize;
        let coords = &pack.coords[start * dim..(start + count) * dim];
        let packed = &rows[..count];
        match (pts.metric, dim) {
            (Metric::Euclidean, 2) => score_l2::<2>(pts, q, coords, packed, heap, filter),
            (Metric::Euclidean, 3) => score_l2::<3>(pts, q, coords, packed, heap, filter),
            (Metric::Euclidean, 4) => score_l2::<4>(pts, q, coords, packed, heap, filter),
            (Metric::Euclidean, 8) => score_l2::<8>(pts, q, coords, packed, heap, filter),
            _ => {
                for (x, &row) in coords.chunks_exact(dim).zip(packed) {
                    pts.offer_scored(row, pts.distance_to(q, x), heap, filter);
                }
            }
        }
    }
    for &row in &rows[count..] {
        pts.offer(q, row, heap, filter);
    }
}

#[inline]
fn score_l2<const D: usize>(
    pts: &Points,
    q: &[f32],
    coords: &[f32],
    rows: &[u32],
    heap: &mut TopK,
    filter: Option<&dyn IdFilter>,
) {
    let q: &[f32; D] = q.try_into().expect("query of the index's dimension");
    for (x, &row) in coords.chunks_exact(D).zip(rows) {
        let mut s = 0.0f32;
        for i in 0..D {
            let t = q[i] - x[i];
            s += t * t;
        }
        pts.offer_scored(row, s, heap, filter);
    }
}

/// Lower bound of `metric`'s distance from prepared `q` to any prepared point in the box, lowered by a small
/// slack so that float rounding never prunes a point the kernels would score at the bound.
#[inline]
pub(crate) fn box_bound(metric: Metric, q: &[f32], lo: &[f32], hi: &[f32]) -> f32 {
    let l2 = || {
        q.iter()
            .zip(lo.iter().zip(hi))
            .map(|(&x, (&l, &h))| {
                let d = (l - x).max(x - h).max(0.0);
                d * d
            })
            .sum::<f32>()
    };
    let max_dot = || q.iter().zip(lo.iter().zip(hi)).map(|(&x, (&l, &h))| (x * l).max(x * h)).sum::<f32>();
    let b = match metric {
        Metric::Euclidean => l2(),
        Metric::Dot => -max_dot(),
        Metric::Cosine => (1.0 - max_dot()).max(0.5 * l2()),
    };
    b - 1e-5 * (1.0 + b.abs())
}

/// KD-tree build settings.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct KdTreeParams {
    /// Most points per leaf at build.
    pub leaf_size: usize,
}

impl Default for KdTreeParams {
    fn default() -> Self {
        Self { leaf_size: 16 }
    }
}

impl KdTreeParams {
    /// Build parameters accepted by [`KdTreeParams::from_params`].
    pub const NAMES: &'static [&'static str] = &["leaf_size"];

    /// Reads `leaf_size` (1..=65536); anything else is an error.
    pub fn from_params(mut p: Params) -> Result<Self> {
        let out = Self { leaf_size: p.take_usize("leaf_size", 1, 1 << 16)?.unwrap_or(Self::default().leaf_size) };
        p.finish("kdtree index (build)", Self::NAMES)?;
        Ok(out)
    }
}

/// KD-tree index. See the module docs.
#[derive(Clone, Debug)]
pub struct KdTreeIndex {
    params: KdTreeParams,
    pts: Points,
    tree: KdTree,
    pack: LeafPack,
}

impl KdTreeIndex {
    /// Search parameters the KD-tree accepts: `max_leaves` (approximate best-bin-first) and `exact` (plain scan).
    pub const SEARCH_PARAMS: &'static [&'static str] = &["max_leaves", "exact"];

    /// Builds from vectors and distinct ids; `params`: `leaf_size`.
    pub fn build(metric: Metric, vectors: VectorSet, ids: Vec<u64>, params: Params) -> Result<Self> {
        let params = KdTreeParams::from_params(params)?;
        let pts = Points::build(metric, vectors, ids)?;
        Ok(Self::from_points(params, pts))
    }

    fn from_points(params: KdTreeParams, pts: Points) -> Self {
        let tree = KdTree::build(pts.vectors.as_slice(), pts.dim(), pts.live_rows(), params.leaf_size);
        let pack = LeafPack::new(&tree, &pts.vectors);
        Self { params, pts, tree, pack }
    }

    /// The build settings.
    pub fn params(&self) -> KdTreeParams {
        self.params
    }

    /// Number of nodes and of leaves.
    pub fn node_counts(&self) -> (usize, usize) {
        (self.tree.nodes.len(), self.tree.leaves().count())
    }

    /// Decodes an index written by [`VectorIndex::to_bytes`].
    pub fn from_bytes(bytes: &[u8]) -> Result<Self> {
        let mut r = Reader::open(bytes, "kdtree index", IndexKind::KdTree.tag(), VERSION)?;
        let at = r.offset();
        let metric = Metric::from_tag(r.u8()?).ok_or_else(|| r.corrupt(at, "unknown metric tag"))?;
        let at = r.offset();
        if [r.u8()?, r.u8()?, r.u8()?] != [0, 0, 0] {
            return Err(r.corrupt(at, "reserved bytes are not zero"));
        }
        let at = r.offset();
        let dim = r.u32()? as usize;
        crate::vectors::validate_dim(dim).map_err(|e| r.corrupt(at, e.to_string()))?;
        let at = r.offset();
        let mut p = Params::new();
        p.set("leaf_size", r.u32()?);
        let params = KdTreeParams::from_params(p).map_err(|e| r.corrupt(at, e.to_string()))?;
        let pts = Points::read(&mut r, metric, dim)?;
        let tree = KdTree::read(&mut r, dim, pts.n_rows())?;
        r.finish()?;
        let pack = LeafPack::new(&tree, &pts.vectors);
        Ok(Self { params, pts, tree, pack })
    }
}

impl VectorIndex for KdTreeIndex {
    fn kind(&self) -> IndexKind {
        IndexKind::KdTree
    }

    fn metric(&self) -> Metric {
        self.pts.metric
    }

    fn dim(&self) -> usize {
        self.pts.dim()
    }

    fn len(&self) -> usize {
        self.pts.live()
    }

    fn contains(&self, id: u64) -> bool {
        self.pts.rows.contains_key(&id)
    }

    fn search(
        &self,
        query: &[f32],
        k: usize,
        params: &SearchParams,
        filter: Option<&dyn IdFilter>,
    ) -> Result<Vec<Neighbor>> {
        let q = prepare_query(self.metric(), self.dim(), query)?;
        let max_leaves = params.max_leaves.unwrap_or(usize::MAX);
        let metric = self.metric();
        let cost = max_leaves.saturating_mul(self.params.leaf_size).min(self.pts.n_rows());
        Ok(self.pts.search(&q, k, params.exact, cost, filter, |heap| {
            let bound = |lo: &[f32], hi: &[f32]| box_bound(metric, &q, lo, hi);
            let mut visit = |node: u32, rows: &[u32]| {
                score_leaf(&self.pts, &self.pack, &q, node, rows, heap, filter);
                heap.threshold()
            };
            if max_leaves == usize::MAX && metric == Metric::Euclidean {
                self.tree.depth_first_l2(&q, visit)
            } else if max_leaves == usize::MAX {
                self.tree.depth_first(bound, visit)
            } else {
                self.tree.best_first(bound, max_leaves, &mut visit)
            }
        }))
    }

    fn memory_bytes(&self) -> usize {
        self.pts.memory_bytes() + self.tree.memory_bytes() + self.pack.memory_bytes()
    }

    /// Payload (version 1), little-endian: metric tag u8, 3 zero bytes, dim u32, leaf_size u32, the point block,
    /// the tree block (`docs/format.md`).
    fn to_bytes(&self) -> Vec<u8> {
        let mut w = Writer::new(IndexKind::KdTree.tag(), VERSION, 12 + self.pts.byte_len() + self.tree.byte_len());
        w.u8(self.metric().tag());
        w.bytes(&[0, 0, 0]);
        w.u32(self.dim() as u32);
        w.u32(self.params.leaf_size as u32);
        self.pts.write(&mut w);
        self.tree.write(&mut w);
        w.finish()
    }
}

impl MutableIndex for KdTreeIndex {
    fn insert(&mut self, id: u64, vector: &[f32]) -> Result<()> {
        let v = self.pts.prepare(vector)?;
        let row = self.pts.push(id, &v)?;
        self.tree.insert(&v, row);
        if self.pts.needs_rebuild() {
            *self = Self::from_points(self.params, self.pts.compacted());
        }
        Ok(())
    }

    fn remove(&mut self, id: u64) -> bool {
        if self.pts.remove(id).is_none() {
            return false;
        }
        if self.pts.needs_rebuild() {
            *self = Self::from_points(self.params, self.pts.compacted());
        }
        true
    }
}

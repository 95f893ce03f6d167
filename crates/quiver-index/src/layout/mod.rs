//! 2-D layouts of a set of vectors, for drawing a collection as a map.
//!
//! - [`LayoutMethod::Pca`]: the first two principal components — fast, linear, faithful to large-scale spread,
//!   blind to local structure.
//! - [`LayoutMethod::Umap`]: points are reduced to [`KNN_COMPONENTS`] principal components (when they have
//!   more), their k-nearest-neighbour graph is built ([`knn`]), and UMAP's optimisation lays that graph out in
//!   2-D starting from the PCA picture: neighbours in the full space end up neighbours on the map.
//!
//! Under [`Metric::Cosine`] and [`Metric::Dot`] rows are normalised first (a map shows directions; the dot
//! product has no distance to preserve). Same input, parameters and seed → the same coordinates, whatever the
//! thread count. [`knn_overlap`] measures how well a layout keeps neighbours.

pub mod knn;
mod pca;
pub mod umap;

pub use pca::Pca;

use rayon::prelude::*;

use crate::error::{Error, Result};
use crate::kmeans::SplitMix;
use crate::metric::Metric;

/// Principal components the neighbour graph is built in. On 50,000 MiniLM embeddings (384-d) the map keeps
/// about as many true neighbours as with all 384 (kNN overlap@10 0.094 against 0.097) in a third of the time;
/// 32 components lose half of them (0.052).
pub const KNN_COMPONENTS: usize = 96;
/// Most points a layout takes.
pub const MAX_POINTS: usize = 200_000;

/// How to lay points out.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LayoutMethod {
    /// The first two principal components.
    Pca,
    /// UMAP over the k-nearest-neighbour graph.
    Umap,
}

impl LayoutMethod {
    /// `pca` or `umap` (case-insensitive).
    pub fn parse(s: &str) -> Result<Self> {
        match s.trim().to_ascii_lowercase().as_str() {
            "pca" => Ok(Self::Pca),
            "umap" => Ok(Self::Umap),
            _ => Err(Error::UnknownName { what: "layout method", got: s.to_owned(), known: "pca, umap".into() }),
        }
    }

    /// The lower-case name.
    pub fn name(self) -> &'static str {
        match self {
            Self::Pca => "pca",
            Self::Umap => "umap",
        }
    }
}

/// Layout settings.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct LayoutParams {
    /// The method.
    pub method: LayoutMethod,
    /// Neighbours per point in UMAP's graph (2–100).
    pub neighbors: usize,
    /// UMAP optimisation passes; `None`: 500 up to 10,000 points, fewer above (200 at 20,000, 100 from 50,000).
    pub epochs: Option<usize>,
    /// Seed of every random draw.
    pub seed: u64,
}

impl Default for LayoutParams {
    fn default() -> Self {
        Self { method: LayoutMethod::Umap, neighbors: 15, epochs: None, seed: 42 }
    }
}

/// A layout: one `[x, y]` per input row, in input order.
#[derive(Clone, Debug, PartialEq)]
pub struct Layout {
    /// The coordinates.
    pub coords: Vec<[f32; 2]>,
    /// The share of the variance the first two principal components carry (how much a PCA map shows).
    pub explained: [f64; 2],
}

fn default_epochs(n: usize) -> usize {
    match n {
        0..=10_000 => 500,
        10_001..=20_000 => 200 + (20_000 - n) * 300 / 10_000,
        20_001..=50_000 => 100 + (50_000 - n) * 100 / 30_000,
        _ => 100,
    }
}

/// Checks and prepares rows: right length, finite, normalised under cosine and dot.
fn prepare(data: &[f32], dim: usize, metric: Metric) -> Result<Vec<f32>> {
    if dim == 0 {
        return Err(Error::invalid("dim", "at least 1", dim));
    }
    if !data.len().is_multiple_of(dim) {
        return Err(Error::invalid("data", format!("a multiple of dim {dim} values"), data.len()));
    }
    let n = data.len() / dim;
    if n > MAX_POINTS {
        return Err(Error::invalid("points", format!("at most {MAX_POINTS}"), n));
    }
    if let Some(at) = data.iter().position(|x| !x.is_finite()) {
        return Err(Error::invalid("data", "finite values", format!("{} in row {}", data[at], at / dim)));
    }
    let mut rows = data.to_vec();
    if matches!(metric, Metric::Cosine | Metric::Dot) {
        rows.par_chunks_mut(dim).for_each(|r| {
            let norm = quiver_kernels::norm(r);
            if norm > 0.0 {
                r.iter_mut().for_each(|x| *x /= norm);
            }
        });
    }
    Ok(rows)
}

/// Lays out the rows of `data` (`dim` values each) in 2-D.
pub fn layout(data: &[f32], dim: usize, metric: Metric, params: &LayoutParams) -> Result<Layout> {
    if !(2..=100).contains(&params.neighbors) {
        return Err(Error::invalid("neighbors", "between 2 and 100", params.neighbors));
    }
    if let Some(e) = params.epochs
        && !(1..=2000).contains(&e)
    {
        return Err(Error::invalid("epochs", "between 1 and 2000", e));
    }
    let rows = prepare(data, dim, metric)?;
    let n = rows.len() / dim;
    if n == 0 {
        return Ok(Layout { coords: Vec::new(), explained: [0.0, 0.0] });
    }
    let m = match params.method {
        LayoutMethod::Pca => 2,
        LayoutMethod::Umap => KNN_COMPONENTS,
    };
    let pca = Pca::fit(&rows, dim, m, params.seed);
    let projected = pca.project(&rows);
    let c = pca.components();
    let ex = pca.explained();
    let explained = [ex.first().copied().unwrap_or(0.0), ex.get(1).copied().unwrap_or(0.0)];
    let first_two: Vec<[f32; 2]> =
        projected.chunks_exact(c).map(|r| [r[0], r.get(1).copied().unwrap_or(0.0)]).collect();
    if params.method == LayoutMethod::Pca || n <= params.neighbors + 1 {
        return Ok(Layout { coords: first_two, explained });
    }
    let k = params.neighbors;
    let graph = knn::knn(&projected, c, k, params.seed);
    let epochs = params.epochs.unwrap_or_else(|| default_epochs(n));
    let coords = umap::layout(&graph, n, k, &first_two, epochs, params.seed);
    Ok(Layout { coords, explained })
}

/// How well `coords` keeps the neighbourhoods of `data`: for `queries` rows drawn with `seed`, the share of
/// each one's `k` nearest rows in the full space (by `metric`, exactly) that are also among its `k` nearest on
/// the map. 1.0 is perfect; a random layout scores about `k / n`.
pub fn knn_overlap(
    data: &[f32],
    dim: usize,
    metric: Metric,
    coords: &[[f32; 2]],
    k: usize,
    queries: usize,
    seed: u64,
) -> Result<f64> {
    let rows = prepare(data, dim, metric)?;
    let n = rows.len() / dim;
    if coords.len() != n {
        return Err(Error::invalid("coords", format!("{n} pairs (one per row)"), coords.len()));
    }
    if n < 2 || k == 0 {
        return Ok(1.0);
    }
    let k = k.min(n - 1);
    let mut rng = SplitMix::new(seed);
    let picks: Vec<usize> = (0..queries.min(n)).map(|_| (rng.next_u64() % n as u64) as usize).collect();
    let hits: usize = picks
        .par_iter()
        .map(|&q| {
            let row = |i: usize| &rows[i * dim..(i + 1) * dim];
            let full = nearest(n, q, k, |j| quiver_kernels::l2sq(row(q), row(j)));
            let flat = nearest(n, q, k, |j| {
                let (dx, dy) = (coords[q][0] - coords[j][0], coords[q][1] - coords[j][1]);
                dx * dx + dy * dy
            });
            full.iter().filter(|j| flat.contains(j)).count()
        })
        .sum();
    Ok(hits as f64 / (picks.len() * k) as f64)
}

fn nearest(n: usize, q: usize, k: usize, d: impl Fn(usize) -> f32) -> Vec<usize> {
    let mut all: Vec<(f32, usize)> = (0..n).filter(|&j| j != q).map(|j| (d(j), j)).collect();
    all.select_nth_unstable_by(k - 1, |a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
    all.truncate(k);
    all.into_iter().map(|p| p.1).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `groups` well-separated clusters in `dim` dimensions, `per` points each, interleaved.
    fn clusters(groups: usize, per: usize, dim: usize, seed: u64) -> Vec<f32> {
        let mut rng = SplitMix::new(seed);
        let centres: Vec<f32> = (0..groups * dim).map(|_| (rng.next_f64() * 2.0 - 1.0) as f32).collect();
        (0..groups * per)
            .flat_map(|i| {
                let g = i % groups;
                (0..dim).map(|d| centres[g * dim + d] + 0.05 * (rng.next_f64() - 0.5) as f32).collect::<Vec<_>>()
            })
            .collect()
    }

    #[test]
    fn bad_input_is_refused_with_the_field_named() {
        let p = LayoutParams::default();
        let e = layout(&[1.0, 2.0, 3.0], 2, Metric::Euclidean, &p).unwrap_err().to_string();
        assert!(e.contains("data"), "{e}");
        let e = layout(&[1.0, f32::NAN], 2, Metric::Euclidean, &p).unwrap_err().to_string();
        assert!(e.contains("finite"), "{e}");
        let e = layout(&[1.0, 2.0], 2, Metric::Euclidean, &LayoutParams { neighbors: 1, ..p }).unwrap_err().to_string();
        assert!(e.contains("neighbors"), "{e}");
        assert!(LayoutMethod::parse("tsne").is_err());
        assert_eq!(LayoutMethod::parse("UMAP").unwrap(), LayoutMethod::Umap);
        assert!(layout(&[], 4, Metric::Cosine, &p).unwrap().coords.is_empty());
    }

    #[test]
    fn tiny_sets_fall_back_to_pca() {
        let data = [1.0, 0.0, 0.0, 1.0, 1.0, 1.0];
        let l = layout(&data, 2, Metric::Euclidean, &LayoutParams::default()).unwrap();
        assert_eq!(l.coords.len(), 3);
        assert!(l.coords.iter().all(|c| c[0].is_finite() && c[1].is_finite()));
    }

    #[test]
    fn umap_keeps_neighbours_and_is_deterministic() {
        let dim = 24;
        let data = clusters(8, 150, dim, 11);
        let p = LayoutParams { epochs: Some(150), ..LayoutParams::default() };
        let l = layout(&data, dim, Metric::Cosine, &p).unwrap();
        assert_eq!(l.coords.len(), 1200);
        let overlap = knn_overlap(&data, dim, Metric::Cosine, &l.coords, 10, 200, 1).unwrap();
        // A random layout scores about 10 / 1200, one that only keeps the clusters 10 / 150 (inside a cluster the
        // neighbours are isotropic noise in 24-d, which no 2-D picture keeps well).
        assert!(overlap > 0.12, "overlap {overlap}");
        // Cluster membership is kept: a point's nearest on the map is from its own cluster.
        let same = (0..1200)
            .step_by(7)
            .filter(|&i| {
                let j = nearest(1200, i, 1, |j| {
                    (l.coords[i][0] - l.coords[j][0]).powi(2) + (l.coords[i][1] - l.coords[j][1]).powi(2)
                })[0];
                i % 8 == j % 8
            })
            .count();
        assert!(same as f64 > 0.95 * (1200 / 7 + 1) as f64, "{same}");
        assert_eq!(l, layout(&data, dim, Metric::Cosine, &p).unwrap(), "deterministic");
        let pca = layout(&data, dim, Metric::Cosine, &LayoutParams { method: LayoutMethod::Pca, ..p }).unwrap();
        assert!(pca.explained[0] >= pca.explained[1] && pca.explained[0] > 0.0);
    }
}

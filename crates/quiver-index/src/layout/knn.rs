//! Approximate k-nearest-neighbour graph of a point set (Euclidean), for layouts.
//!
//! Small sets are searched exhaustively. Larger ones are split into about √n cells by k-means; each point is
//! compared with the points of its [`PROBES`] nearest cells, then one round of neighbour-of-neighbour refinement
//! (the NN-descent step) fixes most of what the cell borders cut off. Parallel per point, deterministic.

use rayon::prelude::*;

use crate::kmeans::{KMeansParams, assign_all, kmeans};

/// Sets up to this size get exact neighbours.
const EXACT_UP_TO: usize = 3000;
/// Cells each point is compared against.
const PROBES: usize = 6;

/// The `k` nearest other points of every point: `(index, distance)` rows of `k`, nearest first (fewer when
/// there are fewer other points, padded with `(u32::MAX, inf)`).
pub fn knn(points: &[f32], dim: usize, k: usize, seed: u64) -> Vec<(u32, f32)> {
    let n = points.len() / dim;
    let row = |i: usize| &points[i * dim..(i + 1) * dim];
    if n <= EXACT_UP_TO {
        return (0..n)
            .into_par_iter()
            .flat_map_iter(|i| {
                let mut best = Best::new(k);
                for j in 0..n {
                    if j != i {
                        best.offer(j as u32, quiver_kernels::l2sq(row(i), row(j)));
                    }
                }
                best.finish()
            })
            .collect();
    }
    let cells = ((n as f64).sqrt() as usize).clamp(2, 1024);
    let params = KMeansParams { max_iters: 8, max_sample: 64 * cells, seed, ..KMeansParams::new(cells) };
    let centroids = kmeans(points, dim, &params).unwrap_or_else(|_| row(0).repeat(cells));
    let assigned = assign_all(points, &centroids, dim);
    let mut members: Vec<Vec<u32>> = vec![Vec::new(); cells];
    for (i, (c, _)) in assigned.iter().enumerate() {
        members[*c].push(i as u32);
    }
    let first: Vec<(u32, f32)> = (0..n)
        .into_par_iter()
        .flat_map_iter(|i| {
            let mut near: Vec<(f32, usize)> =
                centroids.chunks_exact(dim).enumerate().map(|(c, cv)| (quiver_kernels::l2sq(row(i), cv), c)).collect();
            near.select_nth_unstable_by(PROBES.min(cells) - 1, |a, b| a.0.total_cmp(&b.0));
            let mut best = Best::new(k);
            for &(_, c) in &near[..PROBES.min(cells)] {
                for &j in &members[c] {
                    if j as usize != i {
                        best.offer(j, quiver_kernels::l2sq(row(i), row(j as usize)));
                    }
                }
            }
            best.finish_squared()
        })
        .collect();
    // One refinement round: a neighbour's neighbours are candidates too.
    (0..n)
        .into_par_iter()
        .flat_map_iter(|i| {
            let mut best = Best::new(k);
            let mine = &first[i * k..(i + 1) * k];
            let mut seen: Vec<u32> = Vec::with_capacity(k * (k + 1));
            for &(j, _) in mine {
                if j == u32::MAX {
                    continue;
                }
                seen.push(j);
                seen.extend(first[j as usize * k..(j as usize + 1) * k].iter().map(|p| p.0));
            }
            seen.sort_unstable();
            seen.dedup();
            for j in seen {
                if j != u32::MAX && j as usize != i {
                    best.offer(j, quiver_kernels::l2sq(row(i), row(j as usize)));
                }
            }
            best.finish()
        })
        .collect()
}

/// The `k` smallest squared distances offered, ties broken by index (so the result does not depend on order).
struct Best {
    k: usize,
    items: Vec<(f32, u32)>,
}

impl Best {
    fn new(k: usize) -> Self {
        Best { k, items: Vec::with_capacity(k + 1) }
    }

    fn offer(&mut self, j: u32, d: f32) {
        if self.items.len() == self.k {
            let worst = self.items[self.k - 1];
            if (d, j) >= worst || d.is_nan() {
                return;
            }
            self.items.pop();
        }
        let at = self.items.partition_point(|&(e, i)| (e, i) < (d, j));
        self.items.insert(at, (d, j));
    }

    /// Squared distances kept (the refinement round compares them again).
    fn finish_squared(self) -> Vec<(u32, f32)> {
        let k = self.k;
        let mut out: Vec<(u32, f32)> = self.items.into_iter().map(|(d, j)| (j, d)).collect();
        out.resize(k, (u32::MAX, f32::INFINITY));
        out
    }

    /// Distances (square roots).
    fn finish(self) -> Vec<(u32, f32)> {
        let mut out = self.finish_squared();
        out.iter_mut().for_each(|p| p.1 = p.1.sqrt());
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kmeans::SplitMix;

    fn exact(points: &[f32], dim: usize, k: usize, i: usize) -> Vec<u32> {
        let n = points.len() / dim;
        {
            {
                let mut d: Vec<(f32, u32)> = (0..n)
                    .filter(|&j| j != i)
                    .map(|j| (quiver_kernels::l2sq(&points[i * dim..][..dim], &points[j * dim..][..dim]), j as u32))
                    .collect();
                d.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
                d.iter().take(k).map(|p| p.1).collect()
            }
        }
    }

    #[test]
    fn small_sets_are_exact_and_ordered() {
        let pts = [0.0, 0.0, 1.0, 0.0, 3.0, 0.0, 7.0, 0.0];
        let g = knn(&pts, 2, 2, 1);
        assert_eq!(g[0], (1, 1.0));
        assert_eq!(g[1], (2, 3.0));
        assert_eq!(g[6].0, 2); // point 3's nearest is point 2 (distance 4)
        // Fewer other points than k: padded.
        let g = knn(&pts[..4], 2, 2, 1);
        assert_eq!(g[1].0, u32::MAX);
    }

    #[test]
    fn large_sets_find_most_true_neighbours() {
        let (n, dim, k) = (6000, 8, 10);
        let mut rng = SplitMix::new(3);
        // Clustered data, like embeddings.
        let centres: Vec<f32> = (0..20 * dim).map(|_| (rng.next_f64() * 10.0) as f32).collect();
        let pts: Vec<f32> = (0..n)
            .flat_map(|i| {
                let c = (i * 7) % 20;
                (0..dim).map(|d| centres[c * dim + d] + (rng.next_f64() - 0.5) as f32).collect::<Vec<_>>()
            })
            .collect();
        let g = knn(&pts, dim, k, 5);
        let mut hit = 0;
        for i in (0..n).step_by(20) {
            let got: Vec<u32> = g[i * k..(i + 1) * k].iter().map(|p| p.0).collect();
            hit += exact(&pts, dim, k, i).iter().filter(|j| got.contains(j)).count();
        }
        let recall = hit as f64 / ((n / 20) * k) as f64;
        assert!(recall > 0.9, "recall {recall}");
        assert_eq!(g, knn(&pts, dim, k, 5), "deterministic");
    }
}

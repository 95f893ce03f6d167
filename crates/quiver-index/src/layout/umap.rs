//! UMAP's layout step (McInnes, Healy & Melville, 2018), from the paper's description: a fuzzy neighbour graph
//! from the k-nearest-neighbour distances, then stochastic gradient descent that pulls graph neighbours together
//! and pushes random pairs apart in 2-D.
//!
//! - Per point, `rho` is the distance to its nearest neighbour and `sigma` is found by bisection so that the
//!   memberships `exp(-(d - rho) / sigma)` sum to `log2(k)`; the two directions of an edge are combined as a
//!   fuzzy union `a + b - ab`.
//! - The low-dimensional similarity is `1 / (1 + a d^(2b))` with `a`, `b` fitted for `min_dist = 0.1`.
//! - Each edge is sampled in proportion to its weight; every sample moves both ends, then pushes the first end
//!   away from a few random points. Updates are applied in a fixed order from a seeded generator, one thread:
//!   the same input and seed give the same picture.

use crate::kmeans::SplitMix;

/// The curve parameters for `min_dist = 0.1`, `spread = 1` (the usual defaults).
const A: f32 = 1.576_943_5;
const B: f32 = 0.895_060_9;
/// Random points each positive sample is pushed away from.
const NEGATIVES: usize = 5;
/// Largest gradient step along one coordinate.
const CLIP: f32 = 4.0;

/// Lays out `n` points in 2-D from their neighbour graph (`knn`: `k` `(index, distance)` pairs per point,
/// `u32::MAX` for none), starting from `init` (one pair per point, for example the first two principal
/// components), over `epochs` passes.
pub fn layout(knn: &[(u32, f32)], n: usize, k: usize, init: &[[f32; 2]], epochs: usize, seed: u64) -> Vec<[f32; 2]> {
    let edges = fuzzy_graph(knn, n, k);
    let mut y = scale_init(init, seed);
    if edges.is_empty() || epochs == 0 {
        return y;
    }
    let max_w = edges.iter().map(|e| e.2).fold(0f32, f32::max);
    // Edges too weak to be sampled once over the run are dropped (as UMAP does).
    let edges: Vec<(u32, u32, f32)> = edges.into_iter().filter(|e| e.2 >= max_w / epochs as f32).collect();
    let per_sample: Vec<f32> = edges.iter().map(|e| max_w / e.2).collect();
    let per_negative: Vec<f32> = per_sample.iter().map(|p| p / NEGATIVES as f32).collect();
    let mut next_sample = per_sample.clone();
    let mut next_negative = per_negative.clone();
    let mut rng = SplitMix::new(seed ^ 0x554D_4150);
    for epoch in 0..epochs {
        let e = epoch as f32;
        let alpha = 1.0 - e / epochs as f32;
        for (idx, &(i, j, _)) in edges.iter().enumerate() {
            if next_sample[idx] > e {
                continue;
            }
            let (i, j) = (i as usize, j as usize);
            let (dx, dy) = (y[i][0] - y[j][0], y[i][1] - y[j][1]);
            let d2 = dx * dx + dy * dy;
            if d2 > 0.0 {
                // d^(2b) once; d^(2(b-1)) is that over d².
                let pb = d2.powf(B);
                let c = -2.0 * A * B * (pb / d2) / (A * pb + 1.0);
                let (gx, gy) = ((c * dx).clamp(-CLIP, CLIP) * alpha, (c * dy).clamp(-CLIP, CLIP) * alpha);
                y[i][0] += gx;
                y[i][1] += gy;
                y[j][0] -= gx;
                y[j][1] -= gy;
            }
            next_sample[idx] += per_sample[idx];
            let negatives = ((e - next_negative[idx]) / per_negative[idx]).max(0.0) as usize;
            for _ in 0..negatives {
                let m = (rng.next_u64() % n as u64) as usize;
                if m == i {
                    continue;
                }
                let (dx, dy) = (y[i][0] - y[m][0], y[i][1] - y[m][1]);
                let d2 = dx * dx + dy * dy;
                let (gx, gy) = if d2 > 0.0 {
                    let c = 2.0 * B / ((0.001 + d2) * (A * d2.powf(B) + 1.0));
                    ((c * dx).clamp(-CLIP, CLIP), (c * dy).clamp(-CLIP, CLIP))
                } else {
                    (CLIP, CLIP)
                };
                y[i][0] += gx * alpha;
                y[i][1] += gy * alpha;
            }
            next_negative[idx] += negatives as f32 * per_negative[idx];
        }
    }
    y
}

/// The symmetric fuzzy neighbour graph: `(i, j, weight)` with `i < j`, sorted.
fn fuzzy_graph(knn: &[(u32, f32)], n: usize, k: usize) -> Vec<(u32, u32, f32)> {
    let target = (k.max(2) as f32).log2();
    let mean_all = {
        let d: Vec<f32> = knn.iter().filter(|p| p.0 != u32::MAX).map(|p| p.1).collect();
        d.iter().sum::<f32>() / d.len().max(1) as f32
    };
    let mut directed: Vec<(u32, u32, f32)> = Vec::with_capacity(n * k);
    for i in 0..n {
        let row: Vec<(u32, f32)> = knn[i * k..(i + 1) * k].iter().copied().filter(|p| p.0 != u32::MAX).collect();
        if row.is_empty() {
            continue;
        }
        let rho = row.iter().map(|p| p.1).find(|&d| d > 0.0).unwrap_or(0.0);
        let (mut lo, mut hi, mut sigma) = (0f32, f32::INFINITY, 1f32);
        for _ in 0..64 {
            let sum: f32 = row.iter().map(|p| (-(p.1 - rho).max(0.0) / sigma).exp()).sum();
            if (sum - target).abs() < 1e-5 {
                break;
            }
            if sum > target {
                hi = sigma;
                sigma = (lo + hi) / 2.0;
            } else {
                lo = sigma;
                sigma = if hi.is_finite() { (lo + hi) / 2.0 } else { sigma * 2.0 };
            }
        }
        // Not below a thousandth of the mean neighbour distance (the point's or, failing that, everyone's).
        let mean = row.iter().map(|p| p.1).sum::<f32>() / row.len() as f32;
        let floor = 1e-3 * if rho > 0.0 { mean } else { mean_all };
        let sigma = sigma.max(floor).max(f32::MIN_POSITIVE);
        for &(j, d) in &row {
            if j as usize != i {
                directed.push((i as u32, j, (-(d - rho).max(0.0) / sigma).exp()));
            }
        }
    }
    // Both directions under one key, then the fuzzy union.
    let mut keyed: Vec<(u32, u32, f32)> =
        directed.into_iter().map(|(i, j, w)| if i < j { (i, j, w) } else { (j, i, w) }).collect();
    keyed.sort_by(|a, b| (a.0, a.1).cmp(&(b.0, b.1)).then(a.2.total_cmp(&b.2)));
    let mut out: Vec<(u32, u32, f32)> = Vec::with_capacity(keyed.len());
    for (i, j, w) in keyed {
        match out.last_mut() {
            Some(last) if last.0 == i && last.1 == j => last.2 = last.2 + w - last.2 * w,
            _ => out.push((i, j, w)),
        }
    }
    out.retain(|e| e.2 > 0.0);
    out
}

/// The starting layout scaled into `[-10, 10]` (the range UMAP's optimisation is tuned for), with a little
/// seeded jitter so that coincident points can separate.
fn scale_init(init: &[[f32; 2]], seed: u64) -> Vec<[f32; 2]> {
    let reach = init.iter().flat_map(|p| [p[0].abs(), p[1].abs()]).fold(0f32, f32::max);
    let s = if reach > 0.0 { 10.0 / reach } else { 1.0 };
    let mut rng = SplitMix::new(seed ^ 0x4A49_5454);
    init.iter()
        .map(|p| {
            let jx = (rng.next_f64() as f32 - 0.5) * 1e-4;
            let jy = (rng.next_f64() as f32 - 0.5) * 1e-4;
            [p[0] * s + jx, p[1] * s + jy]
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_graph_is_a_symmetric_fuzzy_union() {
        // Three points on a line, k = 2.
        let knn = [(1, 1.0), (2, 3.0), (0, 1.0), (2, 2.0), (1, 2.0), (0, 3.0)];
        let g = fuzzy_graph(&knn, 3, 2);
        assert_eq!(g.iter().map(|e| (e.0, e.1)).collect::<Vec<_>>(), [(0, 1), (0, 2), (1, 2)]);
        // Each point's nearest neighbour gets membership 1 from that side, so the union is 1.
        assert!((g[0].2 - 1.0).abs() < 1e-6);
        assert!(g.iter().all(|e| e.2 > 0.0 && e.2 <= 1.0));
    }

    #[test]
    fn two_separate_groups_stay_apart() {
        // Two groups of 30: each point's neighbours are in its own group.
        let (n, k) = (60, 5);
        let mut knn = Vec::new();
        for i in 0..n {
            let base = (i / 30) * 30;
            for step in 1..=k {
                knn.push(((base + (i - base + step) % 30) as u32, step as f32 * 0.1));
            }
        }
        let init: Vec<[f32; 2]> = (0..n).map(|i| [(i % 7) as f32, (i % 5) as f32]).collect();
        let y = layout(&knn, n, k, &init, 200, 9);
        let centre = |g: usize| {
            let pts = &y[g * 30..(g + 1) * 30];
            [pts.iter().map(|p| p[0]).sum::<f32>() / 30.0, pts.iter().map(|p| p[1]).sum::<f32>() / 30.0]
        };
        let spread = |g: usize| {
            let c = centre(g);
            y[g * 30..(g + 1) * 30].iter().map(|p| ((p[0] - c[0]).powi(2) + (p[1] - c[1]).powi(2)).sqrt()).sum::<f32>()
                / 30.0
        };
        let (a, b) = (centre(0), centre(1));
        let between = ((a[0] - b[0]).powi(2) + (a[1] - b[1]).powi(2)).sqrt();
        assert!(between > 2.0 * spread(0).max(spread(1)), "groups overlap: {between} vs {} {}", spread(0), spread(1));
        assert!(y.iter().all(|p| p[0].is_finite() && p[1].is_finite()));
        assert_eq!(y, layout(&knn, n, k, &init, 200, 9), "deterministic");
    }
}

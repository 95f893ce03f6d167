//! k-means (squared Euclidean): k-means++ seeding from a fixed seed, Lloyd iterations in parallel with an early
//! stop, training on an evenly spaced sample for large inputs. Deterministic: same data, parameters and seed →
//! the same centroids, whatever the thread count (assignments are independent per point; sums are reduced in a
//! fixed order).

use crate::error::{Error, Result};
use rayon::prelude::*;

/// k-means settings.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct KMeansParams {
    /// Number of centroids.
    pub k: usize,
    /// Most Lloyd iterations.
    pub max_iters: usize,
    /// Stop when the mean squared distance improves by less than this fraction.
    pub tolerance: f64,
    /// Train on at most this many points (an evenly spaced sample).
    pub max_sample: usize,
    /// Seed of the k-means++ draws.
    pub seed: u64,
}

impl KMeansParams {
    /// Sensible defaults for `k` centroids.
    pub fn new(k: usize) -> Self {
        Self { k, max_iters: 20, tolerance: 1e-4, max_sample: 256 * k.max(1), seed: 0x6B6D_6561_6E73 }
    }
}

/// A small deterministic generator (SplitMix64): enough for seeding draws, no dependency.
#[derive(Clone, Debug)]
pub(crate) struct SplitMix(u64);

impl SplitMix {
    pub(crate) fn new(seed: u64) -> Self {
        Self(seed)
    }
    pub(crate) fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    /// Uniform in [0, 1).
    pub(crate) fn next_f64(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }
}

fn l2(a: &[f32], b: &[f32]) -> f32 {
    quiver_kernels::l2sq(a, b)
}

/// Index and squared distance of the centroid nearest to `v`.
pub(crate) fn nearest(v: &[f32], centroids: &[f32], dim: usize) -> (usize, f32) {
    let mut best = (0usize, f32::INFINITY);
    for (c, cv) in centroids.chunks_exact(dim).enumerate() {
        let d = l2(v, cv);
        if d < best.1 {
            best = (c, d);
        }
    }
    best
}

/// The nearest centroid (by squared Euclidean distance) of every row of `points`, in parallel with the tiled
/// kernel: what a caller outside the crate uses to assign points to cells.
pub fn nearest_centroids(points: &[f32], centroids: &[f32], dim: usize) -> Vec<usize> {
    if dim == 0 || centroids.len() < dim {
        return vec![0; points.len() / dim.max(1)];
    }
    assign_all(points, centroids, dim).into_iter().map(|a| a.0).collect()
}

/// Nearest centroid (index, squared distance) of every row of `points`: blocks of 64 points are scored against
/// all centroids with the tiled kernel (a small matrix multiply), in parallel over blocks.
pub(crate) fn assign_all(points: &[f32], centroids: &[f32], dim: usize) -> Vec<(usize, f32)> {
    const BLOCK: usize = 64;
    let k = centroids.len() / dim;
    points
        .par_chunks(BLOCK * dim)
        .flat_map_iter(|block| {
            let nb = block.len() / dim;
            let mut out = vec![0f32; nb * k];
            quiver_kernels::active().l2sq_tile(block, centroids, dim, &mut out);
            out.chunks_exact(k)
                .map(|row| {
                    row.iter()
                        .enumerate()
                        .fold((0usize, f32::INFINITY), |best, (c, &d)| if d < best.1 { (c, d) } else { best })
                })
                .collect::<Vec<_>>()
        })
        .collect()
}

/// Trains `params.k` centroids on `data` (row-major, `dim` values per row); returns them row-major.
/// Fewer distinct points than `k` is an error.
pub fn kmeans(data: &[f32], dim: usize, params: &KMeansParams) -> Result<Vec<f32>> {
    let n = data.len() / dim.max(1);
    let k = params.k;
    if k == 0 || n < k {
        return Err(Error::invalid("k", format!("between 1 and the number of training points ({n})"), k));
    }
    // Evenly spaced sample.
    let sample: Vec<f32> = if n > params.max_sample {
        let step = n as f64 / params.max_sample as f64;
        (0..params.max_sample).flat_map(|i| data[(i as f64 * step) as usize * dim..][..dim].iter().copied()).collect()
    } else {
        data.to_vec()
    };
    let rows = sample.len() / dim;
    let point = |i: usize| &sample[i * dim..(i + 1) * dim];

    // k-means++ seeding.
    let mut rng = SplitMix::new(params.seed);
    let mut centroids = Vec::with_capacity(k * dim);
    centroids.extend_from_slice(point((rng.next_u64() % rows as u64) as usize));
    let mut d2: Vec<f32> = (0..rows).into_par_iter().map(|i| l2(point(i), &centroids[..dim])).collect();
    for _ in 1..k {
        let total: f64 = d2.iter().map(|&x| x as f64).sum();
        let pick = if total > 0.0 {
            let mut target = rng.next_f64() * total;
            let mut chosen = rows - 1;
            for (i, &x) in d2.iter().enumerate() {
                target -= x as f64;
                if target <= 0.0 {
                    chosen = i;
                    break;
                }
            }
            chosen
        } else {
            (rng.next_u64() % rows as u64) as usize
        };
        let start = centroids.len();
        centroids.extend_from_slice(point(pick));
        let newest = &centroids[start..];
        d2.par_iter_mut().enumerate().for_each(|(i, d)| *d = d.min(l2(point(i), newest)));
    }

    // Lloyd iterations.
    let mut previous = f64::INFINITY;
    for _ in 0..params.max_iters {
        let assign = assign_all(&sample, &centroids, dim);
        let inertia = assign.iter().map(|a| a.1 as f64).sum::<f64>() / rows as f64;
        let mut sums = vec![0f64; k * dim];
        let mut counts = vec![0usize; k];
        for (i, &(c, _)) in assign.iter().enumerate() {
            counts[c] += 1;
            for (s, &x) in sums[c * dim..(c + 1) * dim].iter_mut().zip(point(i)) {
                *s += x as f64;
            }
        }
        // An empty cluster takes the point farthest from its centroid.
        let mut taken = vec![false; rows];
        for c in 0..k {
            if counts[c] == 0 {
                let far = (0..rows)
                    .filter(|&i| !taken[i])
                    .max_by(|&a, &b| assign[a].1.total_cmp(&assign[b].1).then(b.cmp(&a)));
                if let Some(i) = far {
                    taken[i] = true;
                    centroids[c * dim..(c + 1) * dim].copy_from_slice(point(i));
                }
                continue;
            }
            for (dst, s) in centroids[c * dim..(c + 1) * dim].iter_mut().zip(&sums[c * dim..(c + 1) * dim]) {
                *dst = (s / counts[c] as f64) as f32;
            }
        }
        if previous.is_finite() && previous - inertia <= params.tolerance * previous {
            break;
        }
        previous = inertia;
    }
    Ok(centroids)
}

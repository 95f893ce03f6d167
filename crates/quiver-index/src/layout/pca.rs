//! Principal components by subspace iteration on the covariance of a sample (no linear-algebra dependency).
//!
//! The covariance is computed from at most [`FIT_SAMPLE`] evenly spaced rows (enough for the leading
//! directions of embeddings; a `dim × dim` matrix in f64). Its leading eigenvectors come from block power
//! iteration with a few extra vectors, orthonormalised by modified Gram–Schmidt and rotated by Rayleigh–Ritz
//! (a small Jacobi eigensolver) so they come out sorted by variance. Everything is deterministic for a seed.

use rayon::prelude::*;

use crate::kmeans::SplitMix;

/// Most rows the covariance is computed from.
pub const FIT_SAMPLE: usize = 4096;
/// Block power iterations.
const ITERS: usize = 40;
/// Extra vectors iterated beside the wanted ones (they speed up convergence of the last wanted ones).
const OVERSAMPLE: usize = 6;

/// A fitted projection onto the leading principal components.
#[derive(Clone, Debug)]
pub struct Pca {
    dim: usize,
    mean: Vec<f32>,
    /// `m` components of `dim` values, by decreasing variance.
    components: Vec<f32>,
    /// The variance along each component.
    variances: Vec<f64>,
    /// The total variance (trace of the covariance).
    total: f64,
}

impl Pca {
    /// Fits the `m` leading components of `data` (row-major, `dim` values per row, at least one row).
    pub fn fit(data: &[f32], dim: usize, m: usize, seed: u64) -> Pca {
        let n = data.len() / dim;
        let m = m.clamp(1, dim);
        let rows: Vec<usize> = if n > FIT_SAMPLE {
            (0..FIT_SAMPLE).map(|i| (i as f64 * n as f64 / FIT_SAMPLE as f64) as usize).collect()
        } else {
            (0..n).collect()
        };
        let s = rows.len();
        let mut mean = vec![0f64; dim];
        for &r in &rows {
            for (a, &x) in mean.iter_mut().zip(&data[r * dim..(r + 1) * dim]) {
                *a += x as f64;
            }
        }
        mean.iter_mut().for_each(|a| *a /= s as f64);
        // Centred sample, transposed: one row per coordinate, so each covariance entry is one dot product.
        let mut t = vec![0f32; dim * s];
        for (c, &r) in rows.iter().enumerate() {
            for (j, &x) in data[r * dim..(r + 1) * dim].iter().enumerate() {
                t[j * s + c] = (x as f64 - mean[j]) as f32;
            }
        }
        let cov_rows: Vec<Vec<f64>> = (0..dim)
            .into_par_iter()
            .map(|i| {
                let ti = &t[i * s..(i + 1) * s];
                (0..dim).map(|j| quiver_kernels::dot(ti, &t[j * s..(j + 1) * s]) as f64 / s as f64).collect()
            })
            .collect();
        let cov: Vec<f64> = cov_rows.into_iter().flatten().collect();
        let total: f64 = (0..dim).map(|i| cov[i * dim + i]).sum();

        let b = (m + OVERSAMPLE).min(dim);
        let mut rng = SplitMix::new(seed ^ 0x5043_4121);
        let mut q: Vec<Vec<f64>> = (0..b).map(|_| (0..dim).map(|_| rng.next_f64() - 0.5).collect()).collect();
        orthonormalize(&mut q);
        let mut values = vec![0f64; b];
        for it in 0..ITERS {
            let mut z: Vec<Vec<f64>> = q.par_iter().map(|v| mat_vec(&cov, dim, v)).collect();
            if it % 8 == 7 || it + 1 == ITERS {
                // Rayleigh–Ritz: rotate the block to the eigenvectors of its projection, sorted by value.
                orthonormalize(&mut z);
                let cz: Vec<Vec<f64>> = z.par_iter().map(|v| mat_vec(&cov, dim, v)).collect();
                let h: Vec<f64> =
                    (0..b).flat_map(|i| (0..b).map(|j| dot64(&z[i], &cz[j])).collect::<Vec<_>>()).collect();
                let (vals, vecs) = jacobi(h, b);
                let mut order: Vec<usize> = (0..b).collect();
                order.sort_by(|&x, &y| vals[y].total_cmp(&vals[x]));
                q = order
                    .iter()
                    .map(|&e| {
                        let mut v = vec![0f64; dim];
                        for (i, zi) in z.iter().enumerate() {
                            let w = vecs[i * b + e];
                            v.iter_mut().zip(zi).for_each(|(a, &x)| *a += w * x);
                        }
                        v
                    })
                    .collect();
                values = order.iter().map(|&e| vals[e]).collect();
            } else {
                orthonormalize(&mut z);
                q = z;
            }
        }
        // A sign convention, so the picture does not flip between equal runs on other thread counts.
        for v in &mut q {
            let big = v.iter().copied().fold(0f64, |a, x| if x.abs() > a.abs() { x } else { a });
            if big < 0.0 {
                v.iter_mut().for_each(|x| *x = -*x);
            }
        }
        let components = q.iter().take(m).flat_map(|v| v.iter().map(|&x| x as f32)).collect();
        Pca {
            dim,
            mean: mean.iter().map(|&x| x as f32).collect(),
            components,
            variances: values.into_iter().take(m).map(|v| v.max(0.0)).collect(),
            total,
        }
    }

    /// Number of components.
    pub fn components(&self) -> usize {
        self.variances.len()
    }

    /// The share of the total variance along each component.
    pub fn explained(&self) -> Vec<f64> {
        self.variances.iter().map(|v| if self.total > 0.0 { v / self.total } else { 0.0 }).collect()
    }

    /// Projects every row of `data` onto the components: `components()` values per row.
    pub fn project(&self, data: &[f32]) -> Vec<f32> {
        let (dim, m) = (self.dim, self.components());
        data.par_chunks(dim)
            .flat_map_iter(|row| {
                let centred: Vec<f32> = row.iter().zip(&self.mean).map(|(x, c)| x - c).collect();
                (0..m).map(move |c| quiver_kernels::dot(&centred, &self.components[c * dim..(c + 1) * dim]))
            })
            .collect()
    }
}

fn dot64(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

fn mat_vec(a: &[f64], dim: usize, v: &[f64]) -> Vec<f64> {
    a.chunks_exact(dim).map(|row| dot64(row, v)).collect()
}

/// Modified Gram–Schmidt; a vector that collapses (linearly dependent) is replaced by a unit basis vector
/// orthogonalised in turn, so the block always stays orthonormal.
fn orthonormalize(q: &mut [Vec<f64>]) {
    let dim = q.first().map_or(0, Vec::len);
    for i in 0..q.len() {
        for attempt in 0..=dim {
            for j in 0..i {
                let (done, rest) = q.split_at_mut(i);
                let p = dot64(&rest[0], &done[j]);
                rest[0].iter_mut().zip(&done[j]).for_each(|(a, &b)| *a -= p * b);
            }
            let norm = dot64(&q[i], &q[i]).sqrt();
            if norm > 1e-10 {
                q[i].iter_mut().for_each(|x| *x /= norm);
                break;
            }
            let e = (i + attempt) % dim;
            q[i] = (0..dim).map(|k| if k == e { 1.0 } else { 0.0 }).collect();
        }
    }
}

/// Eigenvalues and eigenvectors (column `e` of the row-major result holds vector `e`) of the symmetric `n × n`
/// matrix `a`, by cyclic Jacobi rotations.
fn jacobi(mut a: Vec<f64>, n: usize) -> (Vec<f64>, Vec<f64>) {
    let mut v: Vec<f64> = (0..n * n).map(|i| if i / n == i % n { 1.0 } else { 0.0 }).collect();
    for _sweep in 0..64 {
        let off: f64 = (0..n)
            .flat_map(|i| (0..n).filter(move |&j| j != i).map(move |j| (i, j)))
            .map(|(i, j)| a[i * n + j].powi(2))
            .sum();
        let scale: f64 = (0..n).map(|i| a[i * n + i].powi(2)).sum::<f64>().max(f64::MIN_POSITIVE);
        if off <= 1e-24 * scale {
            break;
        }
        for p in 0..n {
            for r in p + 1..n {
                let apr = a[p * n + r];
                if apr.abs() < 1e-300 {
                    continue;
                }
                let theta = (a[r * n + r] - a[p * n + p]) / (2.0 * apr);
                let t = theta.signum() / (theta.abs() + (theta * theta + 1.0).sqrt());
                let t = if theta == 0.0 { 1.0 } else { t };
                let c = 1.0 / (t * t + 1.0).sqrt();
                let s = t * c;
                for k in 0..n {
                    let akp = a[k * n + p];
                    let akr = a[k * n + r];
                    a[k * n + p] = c * akp - s * akr;
                    a[k * n + r] = s * akp + c * akr;
                }
                for k in 0..n {
                    let apk = a[p * n + k];
                    let ark = a[r * n + k];
                    a[p * n + k] = c * apk - s * ark;
                    a[r * n + k] = s * apk + c * ark;
                }
                for k in 0..n {
                    let vkp = v[k * n + p];
                    let vkr = v[k * n + r];
                    v[k * n + p] = c * vkp - s * vkr;
                    v[k * n + r] = s * vkp + c * vkr;
                }
            }
        }
    }
    ((0..n).map(|i| a[i * n + i]).collect(), v)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jacobi_diagonalises_a_symmetric_matrix() {
        let a = vec![4.0, 1.0, 0.5, 1.0, 3.0, 0.2, 0.5, 0.2, 1.0];
        let (vals, vecs) = jacobi(a.clone(), 3);
        for e in 0..3 {
            let v: Vec<f64> = (0..3).map(|k| vecs[k * 3 + e]).collect();
            let av = mat_vec(&a, 3, &v);
            for k in 0..3 {
                assert!((av[k] - vals[e] * v[k]).abs() < 1e-9, "A v = λ v for eigenpair {e}");
            }
        }
        let trace: f64 = vals.iter().sum();
        assert!((trace - 8.0).abs() < 1e-9);
    }

    #[test]
    fn finds_the_axis_of_most_variance() {
        // Points along (1, 2, 0) with small noise along the third axis.
        let mut rng = SplitMix::new(7);
        let mut data = Vec::new();
        for _ in 0..2000 {
            let t = (rng.next_f64() * 2.0 - 1.0) as f32 * 10.0;
            let e = (rng.next_f64() - 0.5) as f32 * 0.1;
            data.extend_from_slice(&[t, 2.0 * t, e]);
        }
        let pca = Pca::fit(&data, 3, 2, 1);
        let c0 = &pca.components[..3];
        let norm = 5f32.sqrt();
        assert!((c0[0].abs() - 1.0 / norm).abs() < 1e-3 && (c0[1].abs() - 2.0 / norm).abs() < 1e-3, "{c0:?}");
        let ex = pca.explained();
        assert!(ex[0] > 0.999 && ex[0] >= ex[1], "{ex:?}");
        // Projection: one coordinate per component, the first carrying the spread.
        let p = pca.project(&data[..6]);
        assert_eq!(p.len(), 4);
    }
}

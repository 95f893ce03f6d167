//! Times each stage of a UMAP map on a TEXMEX file and reports how faithful it is:
//! `cargo run --release -p quiver-index --example layout_stages -- FILE.fvecs N [PCA_DIMS] [EPOCHS]`.
//! Prints the PCA, neighbour-graph and optimisation times, the graph's recall against exact neighbours in the
//! full space, and the map's kNN overlap at 10.

use std::time::Instant;

use quiver_index::Metric;
use quiver_index::layout::{Pca, knn, knn_overlap, umap};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let path = args.get(1).ok_or("usage: layout_stages FILE.fvecs N [PCA_DIMS] [EPOCHS]")?;
    let n: usize = args.get(2).map_or(Ok(50_000), |s| s.parse())?;
    let m: usize = args.get(3).map_or(Ok(32), |s| s.parse())?;
    let epochs: usize = args.get(4).map_or(Ok(100), |s| s.parse())?;
    let set = quiver_index::dataset::read_fvecs_limit(path, Some(n))?;
    let dim = set.dim();
    let mut data = set.as_slice().to_vec();
    data.chunks_mut(dim).for_each(|r| {
        let norm = r.iter().map(|x| x * x).sum::<f32>().sqrt().max(1e-12);
        r.iter_mut().for_each(|x| *x /= norm);
    });
    let n = data.len() / dim;
    let t = Instant::now();
    let pca = Pca::fit(&data, dim, m, 42);
    let projected = pca.project(&data);
    let m = pca.components();
    println!(
        "pca to {m} dims: {:.2} s, explained {:.3}",
        t.elapsed().as_secs_f64(),
        pca.explained().iter().sum::<f64>()
    );
    let k = 15;
    let t = Instant::now();
    let graph = knn::knn(&projected, m, k, 42);
    println!("knn graph (k={k}): {:.2} s", t.elapsed().as_secs_f64());
    // Recall of the graph against exact neighbours in the full space, for 200 points.
    let mut hit = 0;
    for q in (0..n).step_by(n / 200) {
        let row = &data[q * dim..(q + 1) * dim];
        let mut all: Vec<(f32, usize)> =
            (0..n).filter(|&j| j != q).map(|j| (quiver_kernels::l2sq(row, &data[j * dim..(j + 1) * dim]), j)).collect();
        all.select_nth_unstable_by(k - 1, |a, b| a.0.total_cmp(&b.0));
        let truth: Vec<usize> = all[..k].iter().map(|p| p.1).collect();
        hit += graph[q * k..(q + 1) * k].iter().filter(|p| truth.contains(&(p.0 as usize))).count();
    }
    println!("graph recall vs the full space: {:.3}", hit as f64 / (200 * k) as f64);
    let init: Vec<[f32; 2]> = projected.chunks_exact(m).map(|r| [r[0], r[1]]).collect();
    let t = Instant::now();
    let coords = umap::layout(&graph, n, k, &init, epochs, 42);
    println!("umap {epochs} epochs: {:.2} s", t.elapsed().as_secs_f64());
    let o = knn_overlap(&data, dim, Metric::Cosine, &coords, 10, 1000, 7)?;
    println!("knn overlap@10: {o:.3}");
    Ok(())
}

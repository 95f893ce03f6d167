//! `quiver bench`: builds an index over a dataset's base vectors, runs its queries, and reports tie-aware
//! recall@k, QPS, latency percentiles, build time and memory — one row per parameter setting.

use anyhow::{Context, bail};
use clap::Args;
use quiver_index::dataset::Dataset;
use quiver_index::{AnyIndex, IndexKind, Metric, Neighbor, Params, SearchParams, VectorIndex};
use rayon::prelude::*;
use serde::Serialize;
use std::path::PathBuf;
use std::time::Instant;

/// Distances within this much of the k-th ground-truth distance count as hits (float32 rounding of 384-d dot
/// products is about 1e-6).
const RECALL_TOLERANCE: f32 = 1e-5;

#[derive(Args, Debug)]
pub struct BenchArgs {
    /// Dataset prefix DIR/NAME (files NAME_base.fvecs, NAME_query.fvecs, NAME_groundtruth.ivecs,
    /// NAME_groundtruth_dist.fvecs), or the set's directory.
    #[arg(long)]
    pub data: PathBuf,
    /// Index: flat, hnsw, ivf, or a preset (hnsw-f32, hnsw-sq8, hnsw-sq4, hnsw-pq, hnsw-bits, ivf-flat, ivf-pq).
    #[arg(long, default_value = "flat")]
    pub index: String,
    /// Metric the index uses.
    #[arg(long, default_value = "cosine")]
    pub metric: String,
    /// Metric the ground-truth distances are in (cosine for the WordNet sets).
    #[arg(long, default_value = "cosine")]
    pub gt_metric: String,
    /// A build or search parameter, key=value (repeatable).
    #[arg(long = "param", value_name = "KEY=VALUE")]
    pub params: Vec<String>,
    /// Sweep one parameter over values: key=v1,v2,... (a build parameter rebuilds the index per value).
    #[arg(long, value_name = "KEY=V1,V2,...")]
    pub sweep: Option<String>,
    /// Neighbours per query.
    #[arg(long, default_value_t = 10)]
    pub k: usize,
    /// Threads for build and search (queries are still issued one per call unless --batch).
    #[arg(long, default_value_t = 1)]
    pub threads: usize,
    /// Threads for the build only (default: --threads); e.g. build on 2 and search on 1 (`--threads 1`) to compare
    /// one-thread QPS without waiting for a one-thread build.
    #[arg(long)]
    pub build_threads: Option<usize>,
    /// Use only the first N queries.
    #[arg(long)]
    pub queries: Option<usize>,
    /// Issue all queries in one batch call (measures batch throughput; no per-query latency).
    #[arg(long)]
    pub batch: bool,
    /// After building, remove this fraction of the points and insert them again under new ids (a churn cycle),
    /// then measure: recall and QPS after heavy deletes should stay at the level of a fresh build.
    #[arg(long, value_name = "FRACTION")]
    pub churn: Option<f64>,
    /// Timed repetitions per setting; the median QPS run is reported.
    #[arg(long, default_value_t = 1)]
    pub runs: usize,
    /// Print one JSON object per line per setting instead of a table.
    #[arg(long)]
    pub json: bool,
    /// Draw recall-vs-QPS curves to this PNG.
    #[arg(long)]
    pub plot: Option<PathBuf>,
    /// Peers' results (JSON written by shared/data/peers_bench.py --out) to overlay on the plot.
    #[arg(long)]
    pub peers: Option<PathBuf>,
}

/// One result row (the `--json` line).
#[derive(Serialize, Debug, Clone)]
pub struct Row {
    pub index: String,
    pub build_params: String,
    pub search_params: String,
    pub metric: String,
    /// Fraction of points removed and re-inserted before measuring (`--churn`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub churn: Option<f64>,
    pub mode: &'static str,
    pub k: usize,
    pub threads: usize,
    /// Threads the build ran on (`--build-threads`, else `threads`).
    pub build_threads: usize,
    pub n: usize,
    pub dim: usize,
    pub nq: usize,
    pub recall: f64,
    pub qps: f64,
    pub p50_ms: Option<f64>,
    pub p99_ms: Option<f64>,
    pub build_s: f64,
    pub index_bytes: usize,
    pub rss_peak_bytes: Option<u64>,
    /// For exact scans: bytes of vectors read per second by the scan.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scan_gbps: Option<f64>,
    /// A plain streaming read of the same vectors in the same run, for comparison.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub memory_gbps: Option<f64>,
    pub kernels: &'static str,
}

/// Index names the harness accepts: every [`IndexKind`], plus presets such as `hnsw-sq8` (= `hnsw` with
/// `quantization=sq8`).
fn resolve_index(name: &str) -> anyhow::Result<(IndexKind, Vec<String>)> {
    match name.trim().to_ascii_lowercase().as_str() {
        "hnsw-sq8" => Ok((IndexKind::Hnsw, vec!["quantization=sq8".to_owned()])),
        "hnsw-sq4" => Ok((IndexKind::Hnsw, vec!["quantization=sq4".to_owned()])),
        "hnsw-f32" => Ok((IndexKind::Hnsw, vec!["quantization=none".to_owned()])),
        "hnsw-pq" => Ok((IndexKind::Hnsw, vec!["quantization=pq".to_owned()])),
        "hnsw-bits" => Ok((IndexKind::Hnsw, vec!["quantization=bits".to_owned()])),
        "ivf-flat" => Ok((IndexKind::Ivf, vec!["quantization=none".to_owned()])),
        "ivf-pq" => Ok((IndexKind::Ivf, vec!["quantization=pq".to_owned()])),
        _ => Ok((IndexKind::parse(name)?, Vec::new())),
    }
}

struct Sweep {
    key: String,
    values: Vec<String>,
}

fn parse_sweep(s: &str) -> anyhow::Result<Sweep> {
    let (key, vals) = s.split_once('=').with_context(|| format!("--sweep `{s}`: expected key=v1,v2,..."))?;
    let values: Vec<String> = vals.split(',').map(|v| v.trim().to_owned()).filter(|v| !v.is_empty()).collect();
    if key.trim().is_empty() || values.is_empty() {
        bail!("--sweep `{s}`: expected key=v1,v2,...");
    }
    Ok(Sweep { key: key.trim().to_owned(), values })
}

pub fn run(args: BenchArgs) -> anyhow::Result<()> {
    if args.k == 0 {
        bail!("--k must be at least 1");
    }
    if args.threads == 0 || args.runs == 0 || args.build_threads == Some(0) {
        bail!("--threads, --build-threads and --runs must be at least 1");
    }
    if args.churn.is_some_and(|f| !(0.0..=0.9).contains(&f)) {
        bail!("--churn must be a fraction between 0 and 0.9");
    }
    if args.peers.is_some() && args.plot.is_none() {
        bail!("--peers needs --plot");
    }
    let (kind, preset) = resolve_index(&args.index)?;
    let metric = Metric::parse(&args.metric)?;
    let gt_metric = Metric::parse(&args.gt_metric)?;
    let all = Params::parse(preset.iter().chain(&args.params))?;
    let known: Vec<&str> = kind.build_params().iter().chain(kind.search_params()).copied().collect();
    let sweep_key = args.sweep.as_deref().and_then(|s| s.split_once('=')).map(|(k, _)| k.trim());
    if let Some(key) = all.keys().chain(sweep_key).find(|key| !known.contains(key)) {
        let list = |l: &[&str]| if l.is_empty() { "(none)".to_owned() } else { l.join(", ") };
        bail!(
            "unknown parameter `{key}` for index {kind}: build parameters {}; search parameters {}",
            list(kind.build_params()),
            list(kind.search_params())
        );
    }
    let sweep = args.sweep.as_deref().map(parse_sweep).transpose()?;
    let pool = rayon::ThreadPoolBuilder::new().num_threads(args.threads).build()?;
    let build_threads = args.build_threads.unwrap_or(args.threads);
    let build_pool = rayon::ThreadPoolBuilder::new().num_threads(build_threads).build()?;

    let data = Dataset::load(&args.data, args.queries).with_context(|| "loading the dataset")?;
    if data.groundtruth.dim < args.k {
        bail!("--k {} exceeds the ground truth's {} neighbours per query", args.k, data.groundtruth.dim);
    }
    // Exact single-query scans are compared with a plain streaming read of the same vectors (the roofline).
    let with_memory = kind == IndexKind::Flat && !args.batch;

    // Settings: the base parameters with the sweep key set to each value.
    let settings: Vec<Params> = match &sweep {
        None => vec![all.clone()],
        Some(s) => s
            .values
            .iter()
            .map(|v| {
                let mut p = all.clone();
                p.set(&s.key, v);
                p
            })
            .collect(),
    };

    let mut rows = Vec::new();
    let mut built: Option<(String, AnyIndex, f64)> = None;
    for setting in settings {
        let mut build_params = setting.clone();
        let search_params = build_params.split_off(kind.search_params());
        let build_key = build_params.to_string();
        if built.as_ref().is_none_or(|(key, _, _)| *key != build_key) {
            drop(built.take()); // free the previous index before building the next
            let ids: Vec<u64> = (0..data.base.len() as u64).collect();
            let base = data.base.clone();
            let params = build_params.clone();
            let t0 = Instant::now();
            let mut index = build_pool.install(|| AnyIndex::build(kind, metric, base, ids, params))?;
            let build_s = t0.elapsed().as_secs_f64();
            if let Some(fraction) = args.churn {
                churn(&mut index, &data, fraction)?;
            }
            built = Some((build_key.clone(), index, build_s));
        }
        let Some((_, index, build_s)) = &built else { unreachable!("built above") };
        let sp =
            SearchParams::from_params(search_params.clone(), &format!("{kind} index (search)"), kind.search_params())?;
        let row = measure(&args, &pool, &data, index.as_index(), &sp, gt_metric, with_memory).map(|m| Row {
            index: kind.name().to_owned(),
            build_params: build_key.clone(),
            search_params: search_params.to_string(),
            metric: metric.name().to_owned(),
            churn: args.churn,
            mode: if args.batch { "batch" } else { "single" },
            k: args.k,
            threads: args.threads,
            build_threads,
            n: data.base.len(),
            dim: data.base.dim(),
            nq: data.queries.len(),
            recall: m.recall,
            qps: m.qps,
            p50_ms: m.p50_ms,
            p99_ms: m.p99_ms,
            build_s: *build_s,
            index_bytes: index.as_index().memory_bytes(),
            rss_peak_bytes: rss_peak_bytes(),
            scan_gbps: with_memory.then(|| m.qps * (data.base.as_slice().len() * 4) as f64 / 1e9),
            memory_gbps: m.memory_gbps,
            kernels: quiver_kernels::active().name(),
        })?;
        if args.json {
            println!("{}", serde_json::to_string(&row)?);
        } else {
            print_row(&row, rows.is_empty());
        }
        rows.push(row);
    }
    if let Some(path) = &args.plot {
        crate::plot::draw(path, &rows, args.peers.as_deref())?;
        eprintln!("plot written to {}", path.display());
    }
    Ok(())
}

struct Measured {
    /// Median plain-read bandwidth measured beside the runs (exact single-query scans only).
    memory_gbps: Option<f64>,
    recall: f64,
    qps: f64,
    p50_ms: Option<f64>,
    p99_ms: Option<f64>,
}

fn measure(
    args: &BenchArgs,
    pool: &rayon::ThreadPool,
    data: &Dataset,
    index: &dyn VectorIndex,
    sp: &SearchParams,
    gt_metric: Metric,
    with_memory: bool,
) -> anyhow::Result<Measured> {
    let nq = data.queries.len();
    let k = args.k;
    // Warm-up: caches, page faults, lazy kernel selection.
    for q in data.queries.iter().take(50) {
        index.search(q, k, sp, None)?;
    }
    let mut runs = Vec::with_capacity(args.runs);
    let mut memory = Vec::with_capacity(args.runs);
    for _ in 0..args.runs {
        // Bandwidth drifts on shared machines: measure the plain read right beside every timed run.
        if with_memory {
            memory.push(measure_memory_bandwidth(data.base.as_slice()));
        }
        let t0 = Instant::now();
        let (results, latencies): (Vec<Vec<Neighbor>>, Vec<f64>) = if args.batch {
            (pool.install(|| index.search_batch(data.queries.as_slice(), k, sp, None))?, Vec::new())
        } else {
            let timed: Vec<(Vec<Neighbor>, f64)> = pool.install(|| {
                (0..nq)
                    .into_par_iter()
                    .map(|qi| {
                        let t = Instant::now();
                        let r = index.search(data.queries.get(qi), k, sp, None);
                        r.map(|r| (r, t.elapsed().as_secs_f64() * 1e3))
                    })
                    .collect::<quiver_index::Result<_>>()
            })?;
            timed.into_iter().unzip()
        };
        let wall = t0.elapsed().as_secs_f64();
        runs.push((nq as f64 / wall, results, latencies));
    }
    runs.sort_by(|a, b| a.0.total_cmp(&b.0));
    memory.sort_by(f64::total_cmp);
    let memory_gbps = memory.get(memory.len() / 2).copied();
    let (qps, results, mut latencies) = runs.swap_remove(runs.len() / 2);
    let recall = tie_aware_recall(data, &results, k, gt_metric);
    latencies.sort_by(f64::total_cmp);
    let pct = |p: f64| (!latencies.is_empty()).then(|| latencies[((latencies.len() - 1) as f64 * p).round() as usize]);
    Ok(Measured { recall, qps, p50_ms: pct(0.50), p99_ms: pct(0.99), memory_gbps })
}

/// Fraction of returned ids (first `k`, distinct) whose true distance is within [`RECALL_TOLERANCE`] of the
/// k-th ground-truth distance or closer — so an index is not penalised for picking another point of a tie.
/// True distances are recomputed from the base vectors, not taken from the index.
pub fn tie_aware_recall(data: &Dataset, results: &[Vec<Neighbor>], k: usize, gt_metric: Metric) -> f64 {
    let mut hits = 0usize;
    for (qi, res) in results.iter().enumerate() {
        let q = data.queries.get(qi);
        let limit = data.groundtruth_dist.get(qi)[k - 1] + RECALL_TOLERANCE;
        let mut seen = std::collections::HashSet::new();
        for n in res.iter().take(k) {
            // Churned points come back under `id + n` (see `churn`).
            let base_len = data.base.len() as u64;
            let id = if n.id >= base_len { n.id - base_len } else { n.id };
            let Some(v) = usize::try_from(id).ok().filter(|&i| i < data.base.len()).map(|i| data.base.get(i)) else {
                continue;
            };
            let d = match gt_metric {
                Metric::Cosine => 1.0 - quiver_kernels::cosine(q, v),
                Metric::Dot => -quiver_kernels::dot(q, v),
                Metric::Euclidean => quiver_kernels::l2sq(q, v).sqrt(),
            };
            if d <= limit && seen.insert(id) {
                hits += 1;
            }
        }
    }
    hits as f64 / (results.len() * k).max(1) as f64
}

/// Removes every point whose id falls in a deterministic `fraction` of the id space, then inserts each removed
/// vector again under id `id + n` — the delete/insert cycle of a collection under churn.
fn churn(index: &mut AnyIndex, data: &Dataset, fraction: f64) -> anyhow::Result<()> {
    let n = data.base.len() as u64;
    let cut = (fraction * 10_000.0) as u64;
    let chosen: Vec<u64> = (0..n).filter(|id| id.wrapping_mul(2_654_435_761) % 10_000 < cut).collect();
    let t0 = Instant::now();
    let m = index.as_mutable();
    for &id in &chosen {
        m.remove(id);
    }
    for &id in &chosen {
        m.insert(id + n, data.base.get(id as usize))?;
    }
    eprintln!("churn: removed and re-inserted {} points in {:.1} s", chosen.len(), t0.elapsed().as_secs_f64());
    Ok(())
}

/// Streams `data` with the plain sum kernel five times; the median pass, in GB/s (a median, like the QPS it is
/// compared with).
fn measure_memory_bandwidth(data: &[f32]) -> f64 {
    let k = quiver_kernels::active();
    let mut passes: Vec<f64> = (0..5)
        .map(|_| {
            let t = Instant::now();
            std::hint::black_box(k.sum(std::hint::black_box(data)));
            (data.len() * 4) as f64 / t.elapsed().as_secs_f64() / 1e9
        })
        .collect();
    passes.sort_by(f64::total_cmp);
    passes[passes.len() / 2]
}

/// Peak resident set size (VmHWM) on Linux.
fn rss_peak_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

fn print_row(r: &Row, header: bool) {
    if header {
        println!(
            "data n={} dim={} queries={} k={} threads={} build_threads={} mode={} kernels={}",
            r.n, r.dim, r.nq, r.k, r.threads, r.build_threads, r.mode, r.kernels
        );
        println!(
            "{:<8} {:<24} {:<16} {:>8} {:>10} {:>8} {:>8} {:>9} {:>10}",
            "index", "build", "search", "recall", "qps", "p50 ms", "p99 ms", "build s", "index MB"
        );
    }
    let ms = |v: Option<f64>| v.map_or("-".to_owned(), |v| format!("{v:.3}"));
    println!(
        "{:<8} {:<24} {:<16} {:>8.4} {:>10.1} {:>8} {:>8} {:>9.2} {:>10.1}",
        r.index,
        if r.build_params.is_empty() { "-" } else { &r.build_params },
        if r.search_params.is_empty() { "-" } else { &r.search_params },
        r.recall,
        r.qps,
        ms(r.p50_ms),
        ms(r.p99_ms),
        r.build_s,
        r.index_bytes as f64 / 1e6
    );
    if let (Some(scan), Some(mem)) = (r.scan_gbps, r.memory_gbps) {
        println!("         scan {scan:.2} GB/s vs plain memory read {mem:.2} GB/s: ratio {:.2}", scan / mem);
    }
}

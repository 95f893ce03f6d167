//! End-to-end tests of the `quiver` binary.

#![allow(clippy::unwrap_used)] // test helpers panic on broken fixtures by design

use std::path::PathBuf;
use std::process::{Command, Output};

mod cluster;
mod cluster_place;
mod deploy;
#[cfg(feature = "embed")]
mod embed;
#[cfg(feature = "embed")]
mod embeddings;
mod fake;
mod import;
mod inspect;
mod mcp;
mod real_server;
mod remote;
mod serve;
mod tls;

/// Starts `quiver serve` on an ephemeral loopback port over `data` with `extra` flags (and no API key from the
/// environment); returns the child, the address it printed, and its stderr lines as they come.
fn spawn_serve(
    data: &std::path::Path,
    extra: &[&str],
) -> (std::process::Child, String, std::sync::mpsc::Receiver<String>) {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_quiver"));
    cmd.args(["serve", "--bind", "127.0.0.1:0"]).args(extra).arg("--data-dir").arg(data);
    spawn_serve_command(cmd)
}

/// Like [`spawn_serve`] for a prepared command that ends up running `quiver serve --bind 127.0.0.1:0` (e.g. inside
/// `unshare`).
fn spawn_serve_command(mut cmd: Command) -> (std::process::Child, String, std::sync::mpsc::Receiver<String>) {
    use std::io::{BufRead, BufReader};
    use std::process::Stdio;
    use std::time::{Duration, Instant};
    let mut child = cmd
        .env("RUST_LOG", "info")
        .env_remove("QUIVER_API_KEY")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let Ok(line) = rx.recv_timeout(deadline.saturating_duration_since(Instant::now())) else {
            let _ = child.kill();
            let _ = child.wait();
            panic!("the server did not say where it listens within 30 s");
        };
        if line.contains("listening")
            && let Some(a) = line.split_whitespace().find_map(|w| w.strip_prefix("addr="))
        {
            return (child, a.to_owned(), rx);
        }
    }
}

fn testdata() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../testdata/wordnet-minilm-3k/wordnet-minilm-3k")
}

fn quiver(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_quiver")).args(args).output().unwrap()
}

/// Runs `quiver` with the server settings of the environment removed and `env` set.
fn run_quiver(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_quiver"));
    cmd.args(args).env_remove("QUIVER_URL").env_remove("QUIVER_API_KEY");
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().unwrap()
}

fn json_rows(out: &Output) -> Vec<serde_json::Value> {
    assert!(out.status.success(), "quiver failed: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout.clone()).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect()
}

#[test]
fn bench_flat_reports_exact_recall_and_every_field() {
    let data = testdata();
    for extra in [&[][..], &["--batch"][..], &["--threads", "2"][..]] {
        let mut args = vec!["bench", "--data", data.to_str().unwrap(), "--index", "flat", "--json", "--queries", "50"];
        args.extend_from_slice(extra);
        let rows = json_rows(&quiver(&args));
        assert_eq!(rows.len(), 1, "{extra:?}");
        let r = &rows[0];
        assert_eq!(r["recall"], 1.0, "{extra:?}: {r}");
        for field in [
            "index",
            "build_params",
            "search_params",
            "k",
            "threads",
            "n",
            "dim",
            "recall",
            "qps",
            "p50_ms",
            "p99_ms",
            "build_s",
            "index_bytes",
            "rss_peak_bytes",
        ] {
            assert!(r.get(field).is_some(), "{extra:?}: missing {field} in {r}");
        }
        assert_eq!(r["n"], 3000);
        assert_eq!(r["dim"], 384);
        assert_eq!(r["nq"], 50);
        assert!(r["qps"].as_f64().unwrap() > 0.0);
        assert!(r["index_bytes"].as_u64().unwrap() >= 3000 * 384 * 4);
    }
}

#[test]
fn bench_table_and_errors() {
    let data = testdata();
    let d = data.to_str().unwrap();
    let out = quiver(&["bench", "--data", d, "--queries", "20"]);
    assert!(out.status.success());
    let table = String::from_utf8(out.stdout).unwrap();
    assert!(table.contains("recall") && table.contains("flat") && table.contains("1.0000"), "{table}");

    let cases: [(&[&str], &str); 5] = [
        (&["bench", "--data", d, "--param", "ef=4"], "unknown parameter `ef`"),
        (&["bench", "--data", d, "--sweep", "nprobe=1,2"], "unknown parameter `nprobe`"),
        (&["bench", "--data", d, "--index", "annoy"], "unknown index kind `annoy`"),
        (&["bench", "--data", "/nonexistent/set", "--index", "flat"], "/nonexistent/set_base.fvecs"),
        (&["bench", "--data", d, "--k", "101"], "exceeds the ground truth"),
    ];
    for (args, want) in cases {
        let out = quiver(args);
        assert!(!out.status.success(), "{args:?} should fail");
        let err = String::from_utf8(out.stderr).unwrap();
        assert!(err.contains(want), "{args:?}: stderr {err:?} lacks {want:?}");
        assert!(!err.contains("panicked"), "{args:?}: {err}");
    }
}

#[test]
fn bench_plots_recall_vs_qps_with_peers() {
    let dir = tempfile::tempdir().unwrap();
    let peers = dir.path().join("peers.json");
    std::fs::write(
        &peers,
        r#"{"rows": [
            {"peer": "hnswlib", "params": "M=16", "search": "ef=10", "qps": 9000.0, "recall10": 0.87},
            {"peer": "hnswlib", "params": "M=16", "search": "ef=40", "qps": 4000.0, "recall10": 0.97},
            {"peer": "faiss-flat", "params": "IndexFlatIP", "search": "-", "qps": 900.0, "recall10": 1.0}
        ]}"#,
    )
    .unwrap();
    let png = dir.path().join("curve.png");
    let data = testdata();
    let out = quiver(&[
        "bench",
        "--data",
        data.to_str().unwrap(),
        "--queries",
        "20",
        "--plot",
        png.to_str().unwrap(),
        "--peers",
        peers.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let bytes = std::fs::read(&png).unwrap();
    assert_eq!(&bytes[..8], b"\x89PNG\r\n\x1a\n", "not a PNG");
    assert!(bytes.len() > 10_000, "suspiciously small plot: {} bytes", bytes.len());

    std::fs::write(&peers, r#"{"rows": [{"peer": "x"}]}"#).unwrap();
    let out = quiver(&[
        "bench",
        "--data",
        data.to_str().unwrap(),
        "--queries",
        "5",
        "--plot",
        png.to_str().unwrap(),
        "--peers",
        peers.to_str().unwrap(),
    ]);
    assert!(!out.status.success());
    assert!(String::from_utf8(out.stderr).unwrap().contains("rows[0] has no `qps`"));
}

#[test]
fn bench_hnsw_presets_sweeps_and_churn() {
    let data = testdata();
    let d = data.to_str().unwrap();
    let rows = json_rows(&quiver(&[
        "bench",
        "--data",
        d,
        "--index",
        "hnsw-sq8",
        "--queries",
        "50",
        "--sweep",
        "ef=16,64",
        "--json",
    ]));
    assert_eq!(rows.len(), 2);
    assert_eq!(rows[0]["search_params"], "ef=16");
    assert!(rows[0]["build_params"].as_str().unwrap().contains("quantization=sq8"));
    assert!(rows[1]["recall"].as_f64().unwrap() >= 0.95, "{}", rows[1]);
    assert!(rows[1]["recall"].as_f64().unwrap() >= rows[0]["recall"].as_f64().unwrap() - 0.02);

    let rows =
        json_rows(&quiver(&["bench", "--data", d, "--index", "hnsw", "--queries", "50", "--churn", "0.3", "--json"]));
    assert_eq!(rows[0]["churn"], 0.3);
    assert!(rows[0]["recall"].as_f64().unwrap() >= 0.95, "recall after churn: {}", rows[0]);

    let out = quiver(&["bench", "--data", d, "--index", "hnsw", "--churn", "2"]);
    assert!(!out.status.success());
}

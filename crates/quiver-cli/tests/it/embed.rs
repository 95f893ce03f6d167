//! `quiver embed` (cargo feature `embed`): needs all-MiniLM-L6-v2 where `scripts/get-embed-model.sh` puts it (or
//! `QUIVER_MODEL_DIR`); `.ci/run` runs these with `--features embed`.

use std::io::Write;
use std::process::{Command, Output, Stdio};

fn embed(args: &[&str], stdin: &str) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_quiver"))
        .arg("embed")
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // A usage error exits before reading stdin, so the write may meet a closed pipe; the exit status tells.
    let _ = child.stdin.take().unwrap().write_all(stdin.as_bytes());
    child.wait_with_output().unwrap()
}

fn cos(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

#[test]
fn embeds_each_line_in_order_as_unit_vectors_that_rank_by_meaning() {
    let input = "A cat is sleeping on the mat.\r\nThe stock market fell sharply today.\nA kitten naps on a rug.\n";
    let out = embed(&["--vectors-only", "--batch", "2", "--chunk", "2"], input);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let vs: Vec<Vec<f32>> =
        String::from_utf8(out.stdout).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(vs.len(), 3);
    for v in &vs {
        assert_eq!(v.len(), 384);
        assert!((cos(v, v) - 1.0).abs() < 1e-4);
    }
    // The two sentences about a sleeping cat are closer to each other than to the market.
    assert!(cos(&vs[0], &vs[2]) > cos(&vs[0], &vs[1]) + 0.2, "{} vs {}", cos(&vs[0], &vs[2]), cos(&vs[0], &vs[1]));

    let out = embed(&[], "hello world\n");
    assert!(out.status.success());
    let row: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(row["text"], "hello world");
    assert_eq!(row["vector"].as_array().unwrap().len(), 384);
}

#[test]
fn bad_flags_and_missing_models_are_errors() {
    let out = embed(&["--batch", "0"], "x\n");
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--batch"));
    let out = embed(&["--model", "/nonexistent/model-dir"], "x\n");
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("/nonexistent/model-dir"));
    assert!(out.stdout.is_empty());
}

//! The real `quiver serve` binary on an ephemeral port: the qdrant-client compatibility script, SIGKILL in the
//! middle of an ingest (every acknowledged point is there after a restart), SIGTERM (clean exit, WAL synced).

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

pub struct Server {
    pub child: Child,
    pub addr: String,
    pub log: mpsc::Receiver<String>,
}

pub fn start(data: &Path) -> Server {
    start_with(data, &[])
}

/// [`start`] with extra `quiver serve` flags.
pub fn start_with(data: &Path, flags: &[&str]) -> Server {
    let (child, addr, rx) = crate::spawn_serve(data, flags);
    let s = Server { child, addr, log: rx };
    // Ready once recovery is done.
    let deadline = Instant::now() + Duration::from_secs(30);
    while http(&s.addr, "GET", "/readyz", None).0 != 200 {
        assert!(Instant::now() < deadline, "not ready in time");
        std::thread::sleep(Duration::from_millis(20));
    }
    s
}

/// One HTTP/1.1 request with `Connection: close`; returns the status and the body.
pub fn http(addr: &str, method: &str, path: &str, body: Option<&Value>) -> (u16, String) {
    let Ok(mut s) = TcpStream::connect(addr) else { return (0, String::new()) };
    s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
    let body = body.map(|b| serde_json::to_vec(b).unwrap()).unwrap_or_default();
    let head = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    if s.write_all(head.as_bytes()).and_then(|_| s.write_all(&body)).is_err() {
        return (0, String::new());
    }
    let mut out = String::new();
    if s.read_to_string(&mut out).is_err() {
        return (0, String::new());
    }
    let status = out.split_whitespace().nth(1).and_then(|c| c.parse().ok()).unwrap_or(0);
    let body = out.split_once("\r\n\r\n").map(|x| x.1.to_owned()).unwrap_or_default();
    // The server answers with Content-Length for JSON; chunked bodies only for streams (not used here).
    (status, body)
}

pub fn ok(addr: &str, method: &str, path: &str, body: Option<&Value>) -> Value {
    let (s, b) = http(addr, method, path, body);
    assert_eq!(s, 200, "{method} {path}: {b}");
    serde_json::from_str::<Value>(&b).unwrap()["result"].clone()
}

#[test]
fn qdrant_client_drives_the_real_server() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = start(dir.path());
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/compat/qdrant_client_compat.py");
    let out =
        Command::new("python3").arg(&script).arg(format!("http://{}", s.addr)).output().expect(
            "python3 is needed for the qdrant-client compatibility test (pip install -r requirements-test.txt)",
        );
    let _ = s.child.kill();
    assert!(
        out.status.success(),
        "qdrant-client compatibility failed (is it installed? pip install -r requirements-test.txt)\nstdout:\n{}\nstderr:\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The gRPC port the server logged (`grpc_addr=…`).
fn grpc_port(s: &Server) -> String {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let line =
            s.log.recv_timeout(deadline.saturating_duration_since(Instant::now())).expect("no gRPC address logged");
        if let Some(a) = line.split_whitespace().find_map(|w| w.strip_prefix("grpc_addr=")) {
            return a.rsplit(':').next().unwrap().to_owned();
        }
    }
}

#[test]
fn qdrant_client_over_grpc_drives_the_real_server() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = start_with(dir.path(), &["--grpc-port", "0"]);
    let grpc = grpc_port(&s);
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/compat/qdrant_client_compat.py");
    let out = Command::new("python3")
        .arg(&script)
        .args([format!("http://{}", s.addr), "--grpc-port".into(), grpc])
        .output()
        .expect("python3 is needed (pip install -r requirements-test.txt)");
    let _ = s.child.kill();
    assert!(
        out.status.success(),
        "qdrant-client over gRPC failed\nstdout:\n{}\nstderr:\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn signed_tokens_scope_qdrant_client_to_one_collection() {
    let dir = tempfile::tempdir().unwrap();
    let key = "jwt-compat-key-0123456789abcdef0123456789";
    let mut s = start_with(dir.path(), &["--api-key", key, "--jwt-rbac", "--grpc-port", "0"]);
    let grpc = grpc_port(&s);
    let out = Command::new(env!("CARGO_BIN_EXE_quiver"))
        .args(["token", "--write", "notes", "--expires-in", "10m"])
        .env("QUIVER_API_KEY", key)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let token = String::from_utf8(out.stdout).unwrap().trim().to_owned();
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/compat/jwt_access_compat.py");
    let out = Command::new("python3")
        .arg(&script)
        .args([format!("http://{}", s.addr), key.to_owned(), token, grpc])
        .output()
        .expect("python3 is needed (pip install -r requirements-test.txt)");
    let _ = s.child.kill();
    assert!(
        out.status.success(),
        "token access through qdrant-client failed\nstdout:\n{}\nstderr:\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    // Usage errors: no access asked for, a bad lifetime.
    for args in [&["token"][..], &["token", "--read", "a", "--expires-in", "5y"]] {
        let out = Command::new(env!("CARGO_BIN_EXE_quiver")).args(args).env("QUIVER_API_KEY", key).output().unwrap();
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", String::from_utf8_lossy(&out.stderr));
    }
}

#[cfg(unix)]
#[test]
fn sigkill_mid_ingest_loses_no_acknowledged_point_and_sigterm_exits_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = start(dir.path());
    ok(&s.addr, "PUT", "/collections/k", Some(&json!({"vectors": {"size": 8, "distance": "Euclid"}})));
    // Two writers ingest batches with wait=true; the server is killed while they run.
    let (tx, rx) = mpsc::channel::<Vec<u64>>();
    let mut writers = Vec::new();
    for w in 0..2u64 {
        let addr = s.addr.clone();
        let tx = tx.clone();
        writers.push(std::thread::spawn(move || {
            for b in 0..10_000u64 {
                let ids: Vec<u64> = (0..50).map(|i| (w << 40) | (b * 50 + i)).collect();
                let points: Vec<Value> = ids
                    .iter()
                    .map(|&id| json!({"id": id, "vector": [id as f32, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0, (id % 7) as f32], "payload": {"w": w, "b": b}}))
                    .collect();
                let (st, _) = http(&addr, "PUT", "/collections/k/points?wait=true", Some(&json!({"points": points})));
                if st != 200 {
                    return; // the server is gone
                }
                if tx.send(ids).is_err() {
                    return;
                }
            }
        }));
    }
    drop(tx);
    let mut acked: Vec<u64> = Vec::new();
    let t0 = Instant::now();
    while acked.len() < 3_000 && t0.elapsed() < Duration::from_secs(60) {
        if let Ok(ids) = rx.recv_timeout(Duration::from_secs(5)) {
            acked.extend(ids);
        }
    }
    assert!(acked.len() >= 3_000, "ingest too slow: {} acked", acked.len());
    s.child.kill().unwrap(); // SIGKILL
    s.child.wait().unwrap();
    for w in writers {
        w.join().unwrap();
    }
    acked.extend(rx.try_iter().flatten());

    let mut s = start(dir.path());
    let count = ok(&s.addr, "POST", "/collections/k/points/count", Some(&json!({})))["count"].as_u64().unwrap();
    assert!(count >= acked.len() as u64, "{count} points after restart, {} acknowledged", acked.len());
    for chunk in acked.chunks(5_000) {
        let recs = ok(&s.addr, "POST", "/collections/k/points", Some(&json!({"ids": chunk})));
        assert_eq!(recs.as_array().unwrap().len(), chunk.len(), "an acknowledged point is missing");
    }

    // SIGTERM: drains, syncs, exits 0.
    let pid = s.child.id().to_string();
    assert!(Command::new("kill").args(["-TERM", &pid]).status().unwrap().success());
    let deadline = Instant::now() + Duration::from_secs(30);
    let status = loop {
        if let Some(st) = s.child.try_wait().unwrap() {
            break st;
        }
        assert!(Instant::now() < deadline, "no exit after SIGTERM");
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(status.success(), "{status:?}");
    let log: Vec<String> = s.log.try_iter().collect();
    assert!(log.iter().any(|l| l.contains("every WAL synced")), "{log:?}");
}

/// `quiver serve` on a 6 MiB tmpfs (mounted in a private mount namespace by `unshare -rm`): once the disk is full
/// a write answers 507 and changes nothing, reads answer as before, and when space is freed (a collection dropped)
/// the same server takes writes again.
#[test]
fn a_full_disk_answers_507_and_writes_resume_when_space_returns() {
    if !Command::new("unshare").args(["-rm", "true"]).output().is_ok_and(|o| o.status.success()) {
        eprintln!("skipped: `unshare -rm` (a private user and mount namespace) is not available here");
        return;
    }
    let mount = tempfile::tempdir().unwrap();
    let mut cmd = Command::new("unshare");
    let script = r#"mount -t tmpfs -o size=6m tmpfs "$1" && exec "$2" serve --bind 127.0.0.1:0 --data-dir "$1/data""#;
    cmd.args(["-rm", "sh", "-c", script, "sh"]).arg(mount.path()).arg(env!("CARGO_BIN_EXE_quiver"));
    let (mut child, addr, _log) = crate::spawn_serve_command(cmd);
    let deadline = Instant::now() + Duration::from_secs(30);
    while http(&addr, "GET", "/readyz", None).0 != 200 {
        assert!(Instant::now() < deadline, "not ready in time");
        std::thread::sleep(Duration::from_millis(20));
    }
    let dim = 256;
    let batch = |from: u64, n: u64| {
        let points: Vec<Value> = (from..from + n)
            .map(|i| json!({"id": i, "vector": (0..dim).map(|j| ((i * 7 + j) % 13) as f32 - 6.0).collect::<Vec<_>>()}))
            .collect();
        json!({ "points": points })
    };
    let count = |c: &str| {
        ok(&addr, "POST", &format!("/collections/{c}/points/count"), Some(&json!({"exact": true})))["count"].clone()
    };
    for c in ["main", "filler"] {
        ok(&addr, "PUT", &format!("/collections/{c}"), Some(&json!({"vectors": {"size": dim, "distance": "Cosine"}})));
    }
    ok(&addr, "PUT", "/collections/main/points?wait=true", Some(&batch(0, 50)));
    // Fill the disk through the API.
    let mut full = None;
    for round in 0..300u64 {
        let (status, body) = http(&addr, "PUT", "/collections/filler/points?wait=true", Some(&batch(round * 200, 200)));
        match status {
            200 => {}
            507 => {
                full = Some(body);
                break;
            }
            other => panic!("round {round}: {other} {body}"),
        }
    }
    let body = full.expect("the 6 MiB disk filled up");
    assert!(body.contains("no space left"), "{body}");
    // A write to another collection is refused too and changes nothing; reads go on.
    let (status, body) = http(&addr, "PUT", "/collections/main/points?wait=true", Some(&batch(50, 200)));
    assert_eq!(status, 507, "{body}");
    assert_eq!(count("main"), json!(50));
    let q = json!({"vector": batch(3, 1)["points"][0]["vector"], "limit": 1});
    assert_eq!(ok(&addr, "POST", "/collections/main/points/search", Some(&q))[0]["id"], json!(3));
    // Space returns: drop the filler; the same server takes the write.
    ok(&addr, "DELETE", "/collections/filler", None);
    ok(&addr, "PUT", "/collections/main/points?wait=true", Some(&batch(50, 200)));
    assert_eq!(count("main"), json!(250));
    let _ = child.kill();
    let _ = child.wait();
}

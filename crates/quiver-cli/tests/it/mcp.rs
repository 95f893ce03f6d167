//! `quiver mcp` driven by the official MCP Python SDK (`mcp` from PyPI, in requirements-test.txt) over stdio:
//! tools listed with their schemas, collections created, texts and documents added and searched through the
//! built-in model, vectors upserted, errors for bad arguments, resources, and a read-only session. The model
//! comes from `scripts/get-embed-model.sh`, as for the other text tests.

use std::path::Path;
use std::process::Command;

#[test]
fn the_official_mcp_client_drives_quiver_mcp_over_stdio() {
    let dir = tempfile::tempdir().unwrap();
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/mcp/mcp_stdio_client.py");
    let out = Command::new("python3")
        .arg(&script)
        .arg(env!("CARGO_BIN_EXE_quiver"))
        .arg(dir.path().join("data"))
        .env_remove("QUIVER_URL")
        .output()
        .expect("python3 is needed for the MCP test (pip install -r requirements-test.txt)");
    assert!(
        out.status.success() && String::from_utf8_lossy(&out.stdout).contains("ok"),
        "the MCP client run failed (is `mcp` installed? pip install -r requirements-test.txt)\nstdout:\n{}\nstderr:\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn the_official_mcp_client_drives_the_servers_mcp_endpoint_with_keys() {
    let dir = tempfile::tempdir().unwrap();
    let (mut child, addr, _log) = crate::spawn_serve(
        &dir.path().join("data"),
        &["--api-key", "full-key-for-mcp", "--read-only-api-key", "read-only-key-for-mcp"],
    );
    // Ready once recovery is done (/readyz needs no key).
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while crate::serve::http(&addr, "GET", "/readyz", None).0 != 200 {
        assert!(std::time::Instant::now() < deadline, "not ready in time");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/mcp/mcp_http_client.py");
    let out = Command::new("python3")
        .arg(&script)
        .arg(format!("http://{addr}"))
        .args(["full-key-for-mcp", "read-only-key-for-mcp"])
        .output()
        .expect("python3 is needed for the MCP test (pip install -r requirements-test.txt)");
    let _ = child.kill();
    let _ = child.wait();
    assert!(
        out.status.success() && String::from_utf8_lossy(&out.stdout).contains("ok"),
        "the MCP HTTP client run failed\nstdout:\n{}\nstderr:\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

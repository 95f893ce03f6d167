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

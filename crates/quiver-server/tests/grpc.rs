//! The gRPC interface description against the one in the real `qdrant-client` package (field numbers, types, and
//! no request field left undeclared); the calls themselves are driven by qdrant-client in
//! `crates/quiver-cli/tests/it/serve.rs`.
#![allow(clippy::unwrap_used)]

use std::path::Path;
use std::process::Command;

#[test]
fn the_proto_agrees_with_qdrant_clients_interface() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("qdrant_descriptor.bin");
    std::fs::write(&file, quiver_server::grpc::DESCRIPTOR_SET).unwrap();
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/compat/grpc_proto_check.py");
    let out = Command::new("python3")
        .arg(&script)
        .arg(&file)
        .output()
        .expect("python3 is needed (pip install -r requirements-test.txt)");
    assert!(
        out.status.success(),
        "the proto disagrees with qdrant-client's:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

//! Compiles `proto/qdrant.proto` (Qdrant's gRPC interface, the part QuiverDB serves) with protox, a protobuf
//! compiler in pure Rust, and generates the prost messages and tonic server traits from it.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    println!("cargo:rerun-if-changed=proto/qdrant.proto");
    let fds = protox::compile(["proto/qdrant.proto"], ["proto"])?;
    let out = std::path::PathBuf::from(std::env::var("OUT_DIR")?);
    std::fs::write(out.join("qdrant_descriptor.bin"), prost::Message::encode_to_vec(&fds))?;
    tonic_prost_build::configure().build_client(false).build_server(true).compile_fds(fds)?;
    Ok(())
}

//! `quiver` — QuiverDB's command-line tool.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod bench;
mod client;
mod cluster;
mod demo;
mod embed;
mod engine_bench;
mod import;
mod inspect;
mod mcp;
mod plot;
mod remote;
mod serve;
mod token;

#[derive(Parser, Debug)]
#[command(name = "quiver", version, about = "QuiverDB: a vector database. `quiver help <command>` for details.")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

// Parsed once per process: the size of the largest variant (`serve`'s flags) does not matter.
#[allow(clippy::large_enum_variant)]
#[derive(Subcommand, Debug)]
enum Command {
    /// Run the HTTP server (Qdrant-shaped REST API) over a local data directory.
    Serve(serve::ServeArgs),
    /// Run a local cluster (`cluster up`) or show a cluster's shard map (`cluster status`).
    Cluster(cluster::ClusterArgs),
    /// Check a data directory offline, reading only: every checksum of every manifest, segment, WAL record and
    /// snapshot archive. Exit status 0 when everything verifies (warnings allowed), 1 on corruption, 2 on usage
    /// errors.
    Inspect(inspect::InspectArgs),
    /// List, describe, create or delete collections on a server.
    Collections(remote::CollectionsArgs),
    /// Nearest-neighbour query against a collection on a server.
    Query(remote::QueryArgs),
    /// Create, list, download or restore snapshots of a collection on a server.
    Snapshot(remote::SnapshotArgs),
    /// Bulk-load vectors (fvecs, JSONL or CSV) into a collection, on a server or straight into a local data
    /// directory; resumable.
    Import(import::ImportArgs),
    /// Benchmark an index on a TEXMEX dataset (recall, QPS, latency, memory), ann-benchmarks style.
    Bench(bench::BenchArgs),
    /// Benchmark the database end to end: ingest through the WAL, time to fully indexed, filtered search at
    /// several selectivities, multi- vs single-segment search.
    EngineBench(engine_bench::EngineBenchArgs),
    /// Embed lines of text from stdin with the built-in model (all-MiniLM-L6-v2 by default); prints one JSON line
    /// per text. Needs the cargo feature `embed` (on by default) and the model files (see docs/embed.md).
    Embed(embed::EmbedArgs),
    /// Serve the Model Context Protocol on stdio: QuiverDB's collections as tools an AI agent calls (over a data
    /// directory with `--data`, or in front of a server with `--url`). See docs/mcp.md.
    Mcp(mcp::McpArgs),
    /// Build a collection from 2,000 WordNet definitions shipped in the binary, embedded with the built-in model,
    /// and run semantic queries with and without a metadata filter (needs the model files, see docs/embed.md).
    Demo(demo::DemoArgs),
    /// Make a signed access token (JWT) for a server started with `--jwt-rbac`: read or read-write access to
    /// named collections, with an expiry. Prints the token; clients send it like an API key.
    Token(token::TokenArgs),
}

/// An error in how a command was called (a flag value that cannot be used, a path that is not there): exit
/// status 2, as for the argument errors clap reports itself.
#[derive(Debug)]
pub struct UsageError(pub String);

impl std::fmt::Display for UsageError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for UsageError {}

/// Shorthand: `Err(UsageError)` as an `anyhow::Error`.
pub fn usage<T>(msg: impl Into<String>) -> anyhow::Result<T> {
    Err(UsageError(msg.into()).into())
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let ok = |r: anyhow::Result<()>| r.map(|()| ExitCode::SUCCESS);
    let result = match cli.command {
        Command::Serve(args) => ok(serve::run(args)),
        Command::Cluster(args) => ok(cluster::run(args)),
        Command::Inspect(args) => inspect::run(args),
        Command::Collections(args) => remote::collections(args),
        Command::Query(args) => ok(remote::query(args)),
        Command::Snapshot(args) => ok(remote::snapshot(args)),
        Command::Import(args) => ok(import::run(args)),
        Command::Bench(args) => ok(bench::run(args)),
        Command::EngineBench(args) => ok(engine_bench::run(args)),
        Command::Embed(args) => ok(embed::run(args)),
        Command::Demo(args) => ok(demo::run(args)),
        Command::Mcp(args) => ok(mcp::run(args)),
        Command::Token(args) => ok(token::run(args)),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            // `{:#}` prints the whole context chain on one line: "loading the dataset: FILE: row 3: ...".
            eprintln!("error: {e:#}");
            if matches!(e.downcast_ref::<client::ClientError>(), Some(client::ClientError::Transport { .. })) {
                eprintln!("hint: {}", client::NO_REPLY_HINT);
            }
            let usage_error = e.downcast_ref::<UsageError>().is_some()
                || matches!(e.downcast_ref::<client::ClientError>(), Some(client::ClientError::Config(_)));
            if usage_error { ExitCode::from(2) } else { ExitCode::FAILURE }
        }
    }
}

//! `quiver` — QuiverDB's command-line tool.

use clap::{Parser, Subcommand};

mod bench;
mod engine_bench;
mod plot;
mod serve;

#[derive(Parser, Debug)]
#[command(name = "quiver", version, about = "QuiverDB: a vector database. `quiver help <command>` for details.")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Run the HTTP server (Qdrant-shaped REST API) over a local data directory.
    Serve(serve::ServeArgs),
    /// Benchmark an index on a TEXMEX dataset (recall, QPS, latency, memory), ann-benchmarks style.
    Bench(bench::BenchArgs),
    /// Benchmark the database end to end: ingest through the WAL, time to fully indexed, filtered search at
    /// several selectivities, multi- vs single-segment search.
    EngineBench(engine_bench::EngineBenchArgs),
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Serve(args) => serve::run(args),
        Command::Bench(args) => bench::run(args),
        Command::EngineBench(args) => engine_bench::run(args),
    };
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            // `{:#}` prints the whole context chain on one line: "loading the dataset: FILE: row 3: ...".
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

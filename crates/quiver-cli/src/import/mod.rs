//! `quiver import COLLECTION INPUT`: bulk-load vectors from fvecs, JSONL or CSV into a collection — on a server
//! (batches of `PUT /collections/{c}/points?wait=true`) or, with `--data DIR`, straight into a local data directory
//! through the embedded engine.
//!
//! A reader thread parses the input into batches while the main thread sends them, one at a time: a batch counts as
//! imported once the target acknowledged it (the server answered `completed`; the engine's upsert returned, i.e. it
//! is in the WAL). After each acknowledged batch the state file ([`state`]) records how many records are done, so an
//! interrupted import continues with `--resume`. Malformed input stops the import at the bad record, naming its line
//! or record number and field; every batch before it stays imported.

pub mod input;
pub mod state;

use std::path::{Path, PathBuf};
use std::sync::mpsc::sync_channel;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use quiver_engine::{Collection, CollectionConfig, Database, PointInput};
use serde_json::Value;

use crate::client::{Client, ClientError, Distance, PointRef, ServerArgs, encode_points};
use crate::usage;
use input::{Format, ReadOptions, Record};
use state::{Fingerprint, STATE_VERSION, Start, State};

/// Flags of `quiver import`.
#[derive(clap::Args, Debug)]
pub struct ImportArgs {
    /// The collection to import into.
    pub collection: String,
    /// The input file: `.fvecs`, `.jsonl` (or `.ndjson`) or `.csv`.
    pub input: PathBuf,
    /// The input format [default: from the file extension].
    #[arg(long, value_enum)]
    pub format: Option<Format>,
    /// Create the collection, with the input's dimension, if it does not exist.
    #[arg(long)]
    pub create: bool,
    /// Distance of a collection made by --create.
    #[arg(long, value_enum, default_value = "cosine")]
    pub distance: Distance,
    /// Points per batch (one request or one engine upsert each).
    #[arg(long, default_value_t = 512, value_name = "N")]
    pub batch: usize,
    /// Inputs without ids (fvecs, CSV without an `id` column): record i (from 0) gets id N + i [default: 0].
    #[arg(long, value_name = "N")]
    pub ids_from: Option<u64>,
    /// CSV: name prefix of the numbered vector columns (`v` for v0, v1, …) when several groups could be it.
    #[arg(long, value_name = "PREFIX")]
    pub vector_prefix: Option<String>,
    /// The progress (resume state) file [default: <INPUT>.quiver-import.json].
    #[arg(long, value_name = "FILE")]
    pub state: Option<PathBuf>,
    /// Skip the records an earlier run of this same import had imported (same input, size, modification time,
    /// target and collection, per the state file); without it, an import starts from the first record.
    #[arg(long)]
    pub resume: bool,
    /// Import into this local data directory through the embedded engine instead of a server (it must not be
    /// open in a running server); excludes --url.
    #[arg(long, value_name = "DIR")]
    pub data: Option<PathBuf>,
    /// Times a batch is retried after a transient failure (no reply; 408, 429, 502, 503 or 504).
    #[arg(long, default_value_t = 3, value_name = "N")]
    pub retries: u32,
    #[command(flatten)]
    pub server: ServerArgs,
}

/// Where batches go.
trait Sink {
    /// Makes sure the collection exists (creating it with `dim` when asked to) and takes vectors of `dim`.
    fn prepare(&mut self, dim: usize, progress: &ProgressBar) -> Result<()>;
    /// Imports one batch; returns once the target acknowledged it.
    fn upsert(&mut self, records: Vec<Record>, progress: &ProgressBar) -> Result<()>;
    /// Closes the target (the engine syncs its WAL).
    fn finish(self: Box<Self>) -> Result<()>;
}

/// A server, through the HTTP client.
struct HttpSink {
    client: Client,
    collection: String,
    create: Option<Distance>,
    retries: u32,
}

impl Sink for HttpSink {
    fn prepare(&mut self, dim: usize, progress: &ProgressBar) -> Result<()> {
        match self.client.collection_info(&self.collection) {
            Ok(info) => {
                let size = info.pointer("/config/params/vectors/size").and_then(Value::as_u64);
                if let Some(size) = size
                    && size != dim as u64
                {
                    bail!("collection {} has dimension {size}; the input's vectors have {dim}", self.collection);
                }
                Ok(())
            }
            Err(ClientError::Api { status: 404, .. }) => match self.create {
                Some(distance) => {
                    self.client.create_collection(&self.collection, dim, distance)?;
                    progress.suspend(|| {
                        eprintln!(
                            "created collection {} ({dim} dimensions, {}) on {}",
                            self.collection,
                            distance.api_name(),
                            self.client.url()
                        )
                    });
                    Ok(())
                }
                None => bail!(
                    "collection {} does not exist on {}; pass --create (and --distance) to create it",
                    self.collection,
                    self.client.url()
                ),
            },
            Err(e) => Err(e.into()),
        }
    }

    fn upsert(&mut self, records: Vec<Record>, progress: &ProgressBar) -> Result<()> {
        let points: Vec<PointRef<'_>> =
            records.iter().map(|r| PointRef { id: &r.id, vector: &r.vector, payload: r.payload.as_ref() }).collect();
        let body = encode_points(&points)?;
        let mut attempt = 0;
        loop {
            match self.client.upsert_encoded(&self.collection, body.clone()) {
                Ok(_) => return Ok(()),
                Err(e) if e.is_transient() && attempt < self.retries => {
                    let wait = Duration::from_millis(500 << attempt.min(6));
                    attempt += 1;
                    progress.suspend(|| {
                        eprintln!("warning: {e}; retry {attempt} of {} in {:.1} s", self.retries, wait.as_secs_f64())
                    });
                    std::thread::sleep(wait);
                }
                Err(e) => return Err(e.into()),
            }
        }
    }

    fn finish(self: Box<Self>) -> Result<()> {
        Ok(())
    }
}

/// A local data directory, through the embedded engine.
struct EmbeddedSink {
    db: Database,
    name: String,
    create: Option<Distance>,
    collection: Option<Collection>,
}

impl Sink for EmbeddedSink {
    fn prepare(&mut self, dim: usize, progress: &ProgressBar) -> Result<()> {
        let c = match self.db.collection(&self.name) {
            Ok(c) => c,
            Err(quiver_engine::Error::CollectionNotFound { .. }) => match self.create {
                Some(d) => {
                    let c = self.db.create_collection(&self.name, CollectionConfig::new(dim, d.metric()))?;
                    progress.suspend(|| {
                        eprintln!(
                            "created collection {} ({dim} dimensions, {}) in {}",
                            self.name,
                            d.api_name(),
                            self.db.root().display()
                        )
                    });
                    c
                }
                None => bail!(
                    "collection {} does not exist in {}; pass --create (and --distance) to create it",
                    self.name,
                    self.db.root().display()
                ),
            },
            Err(e) => return Err(e.into()),
        };
        let have = c.config().dimension;
        if have != dim {
            bail!("collection {} has dimension {have}; the input's vectors have {dim}", self.name);
        }
        self.collection = Some(c);
        Ok(())
    }

    fn upsert(&mut self, records: Vec<Record>, _progress: &ProgressBar) -> Result<()> {
        let c = self.collection.as_ref().ok_or_else(|| anyhow!("internal: upsert before prepare"))?;
        let points = records
            .into_iter()
            .map(|r| PointInput { id: r.id, vector: r.vector, payload: r.payload, ttl_secs: None })
            .collect();
        c.upsert(points)?;
        Ok(())
    }

    fn finish(self: Box<Self>) -> Result<()> {
        // Closing waits for an optimizer job in progress (sealing a segment can take a while): say so.
        if let Some(job) = self.collection.as_ref().and_then(|c| c.info().ok()).and_then(|i| i.optimizer.running) {
            eprintln!(
                "closing {}: waiting for the optimizer job in progress ({job}) to finish",
                self.db.root().display()
            );
        }
        self.db.close().context("closing the data directory")
    }
}

/// One batch from the reader thread: its records and the input bytes consumed through its last one.
struct Batch {
    records: Vec<Record>,
    bytes_end: u64,
}

fn progress_bar(total_bytes: u64, start_bytes: u64) -> ProgressBar {
    let pb = ProgressBar::with_draw_target(Some(total_bytes), ProgressDrawTarget::stderr());
    let style = ProgressStyle::with_template("{elapsed_precise} [{wide_bar}] {percent:>3}% ETA {eta}  {msg}")
        .map(|s| s.progress_chars("=> "))
        .unwrap_or_else(|_| ProgressStyle::default_bar());
    pb.set_style(style);
    pb.set_position(start_bytes);
    pb
}

/// Runs `quiver import`.
pub fn run(args: ImportArgs) -> Result<()> {
    if args.batch == 0 {
        return usage("--batch must be at least 1");
    }
    if !args.input.is_file() {
        return usage(format!("{} is not a file", args.input.display()));
    }
    let format = match args.format.or_else(|| Format::from_path(&args.input)) {
        Some(f) => f,
        None => {
            return usage(format!(
                "cannot tell the format of {} from its extension; pass --format fvecs, jsonl or csv",
                args.input.display()
            ));
        }
    };
    if args.vector_prefix.is_some() && format != Format::Csv {
        return usage("--vector-prefix applies to CSV input only");
    }
    if args.ids_from.is_some() && format == Format::Jsonl {
        return usage("--ids-from applies to fvecs and to CSV without an `id` column; JSONL lines carry their ids");
    }
    // `--url` names a server, `--data` a directory: both at once is a mistake (a URL from QUIVER_URL is fine).
    if args.data.is_some() && args.server.url.is_some() && std::env::var("QUIVER_URL").ok() != args.server.url {
        return usage("--url and --data exclude each other: import into a server or into a data directory");
    }
    let create = args.create.then_some(args.distance);
    let dest = match &args.data {
        Some(dir) => {
            quiver_engine::database::validate_name(&args.collection)
                .map_err(|e| crate::UsageError(format!("collection name: {e}")))?;
            // Created now so that its canonical path (part of the import's fingerprint) is the same on every run.
            std::fs::create_dir_all(dir).with_context(|| format!("creating the data directory {}", dir.display()))?;
            Dest::Data(std::fs::canonicalize(dir).with_context(|| format!("reading {}", dir.display()))?)
        }
        None => Dest::Server(Client::new(&args.server)?),
    };
    let target = match &dest {
        Dest::Data(dir) => format!("data:{}", dir.display()),
        Dest::Server(c) => c.url().to_owned(),
    };
    let fingerprint = Fingerprint::of(&args.input, target.clone(), &args.collection, format, args.ids_from)?;
    let state_path = args.state.clone().unwrap_or_else(|| state::default_path(&args.input));
    let existing = state::load(&state_path)?;
    let skip = match state::decide(&state_path, existing.as_ref(), &fingerprint, args.resume)? {
        Start::Done(n) => {
            println!(
                "nothing to do: {} says all {n} records of {} were imported into {}",
                state_path.display(),
                args.input.display(),
                args.collection
            );
            return Ok(());
        }
        Start::Resume(n) => n,
        Start::Fresh { note } => {
            if let Some(note) = note {
                eprintln!("note: {note}");
            }
            0
        }
    };
    let opts = ReadOptions { ids_from: args.ids_from, vector_prefix: args.vector_prefix.clone() };
    let src = input::open(&args.input, format, &opts).with_context(|| args.input.display().to_string())?;
    let sink: Box<dyn Sink> = match dest {
        Dest::Server(client) => {
            Box::new(HttpSink { client, collection: args.collection.clone(), create, retries: args.retries })
        }
        Dest::Data(dir) => {
            let db = Database::open(&dir).with_context(|| format!("opening the data directory {}", dir.display()))?;
            Box::new(EmbeddedSink { db, name: args.collection.clone(), create, collection: None })
        }
    };
    import(ImportJob { args: &args, src, sink, skip, state_path: &state_path, fingerprint, target: &target })
}

/// Where an import goes.
enum Dest {
    /// A server.
    Server(Client),
    /// A local data directory (canonical path).
    Data(PathBuf),
}

struct ImportJob<'a> {
    args: &'a ImportArgs,
    src: Box<dyn input::Source>,
    sink: Box<dyn Sink>,
    skip: u64,
    state_path: &'a Path,
    fingerprint: Fingerprint,
    target: &'a str,
}

fn import(job: ImportJob<'_>) -> Result<()> {
    let ImportJob { args, mut src, mut sink, skip, state_path, fingerprint, target } = job;
    let input_name = args.input.display().to_string();
    let skipped = src.skip(skip).with_context(|| input_name.clone())?;
    if skipped < skip {
        bail!(
            "{input_name} holds {skipped} records, but the state file says {skip} were imported; delete it to start over"
        );
    }
    let mut st = State { version: STATE_VERSION, fingerprint, acknowledged: skip, complete: false };
    // An unwritable state file stops the import before anything is sent (the file itself is written once the first
    // batch is acknowledged).
    state::check_writable(state_path)?;
    let total_bytes = std::fs::metadata(&args.input).map(|m| m.len()).unwrap_or(0);
    let pb = progress_bar(total_bytes, src.bytes_read());
    let batch = args.batch;
    let started = Instant::now();
    let mut sent = 0u64;
    let (tx, rx) = sync_channel::<Result<Batch>>(4);
    let outcome: Result<()> = std::thread::scope(|scope| {
        scope.spawn(move || {
            loop {
                let mut records = Vec::with_capacity(batch);
                let mut failed = None;
                while records.len() < batch {
                    match src.next_record() {
                        Ok(Some(r)) => records.push(r),
                        Ok(None) => break,
                        Err(e) => {
                            failed = Some(e);
                            break;
                        }
                    }
                }
                let last = records.len() < batch;
                if !records.is_empty() && failed.is_none() {
                    let b = Batch { records, bytes_end: src.bytes_read() };
                    if tx.send(Ok(b)).is_err() {
                        return;
                    }
                }
                if let Some(e) = failed {
                    let _ = tx.send(Err(e));
                    return;
                }
                if last {
                    return;
                }
            }
        });
        let mut prepared = false;
        for msg in rx {
            let b = match msg {
                Ok(b) => b,
                Err(e) => {
                    return Err(e.context(format!(
                        "{input_name}: malformed input; the first {} records are imported, none after them (fix the \
                         input and run again: upserts are idempotent)",
                        st.acknowledged
                    )));
                }
            };
            if !prepared {
                sink.prepare(b.records[0].vector.len(), &pb)?;
                prepared = true;
            }
            let n = b.records.len() as u64;
            let first = st.acknowledged;
            sink.upsert(b.records, &pb)
                .with_context(|| format!("importing records {first}..{} of {input_name}", first + n))?;
            st.acknowledged += n;
            sent += n;
            state::save(state_path, &st)?;
            pb.set_position(b.bytes_end);
            let secs = started.elapsed().as_secs_f64().max(1e-9);
            pb.set_message(format!("{} points, {:.0} points/s", st.acknowledged, sent as f64 / secs));
        }
        if !prepared && skip == 0 {
            bail!("{input_name} holds no records");
        }
        Ok(())
    });
    pb.finish_and_clear();
    outcome?;
    st.complete = true;
    state::save(state_path, &st)?;
    // The rate is the import's: until the last batch was acknowledged (closing may wait for an optimizer job).
    let secs = started.elapsed().as_secs_f64();
    sink.finish()?;
    let resumed = if skip > 0 { format!(" (resumed after {skip} records imported earlier)") } else { String::new() };
    println!(
        "imported {sent} points into {} ({target}) in {secs:.2} s: {:.0} points/s{resumed}",
        args.collection,
        sent as f64 / secs.max(1e-9)
    );
    Ok(())
}

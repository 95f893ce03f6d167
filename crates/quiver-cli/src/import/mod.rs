//! `quiver import COLLECTION INPUT`: bulk-load vectors from fvecs, JSONL or CSV into a collection — on a server
//! (batches of `PUT /collections/{c}/points?wait=true`) or, with `--data DIR`, straight into a local data directory
//! through the embedded engine.
//!
//! A reader thread parses the input into batches while the main thread sends them, one at a time: a batch counts as
//! imported once the target acknowledged it (the server answered `completed`; the engine's upsert returned, i.e. it
//! is in the WAL). After each acknowledged batch the state file ([`state`]) records how many records are done, so an
//! interrupted import continues with `--resume`. Malformed input stops the import at the bad record, naming its line
//! or record number and field; every batch before it stays imported.

pub mod documents;
pub mod images;
pub mod input;
pub mod state;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::mpsc::sync_channel;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use quiver_embed::Embedder;
use quiver_engine::{Collection, CollectionConfig, Database, PointInput};
use serde_json::Value;

use crate::client::{self, Client, ClientError, Distance, PointRef, ServerArgs, encode_points};
use crate::usage;
use input::{Format, ReadOptions, Record};
use state::{Fingerprint, STATE_VERSION, Start, State};

/// Flags of `quiver import`.
#[derive(clap::Args, Debug)]
pub struct ImportArgs {
    /// The collection to import into.
    pub collection: String,
    /// The input: a `.fvecs`, `.jsonl` (or `.ndjson`; lines with `vector` or with `text`) or `.csv` file, a
    /// folder of `.txt` / `.md` documents (split into chunks and embedded), or a folder of images (`.jpg`,
    /// `.png`, `.webp`, `.gif`, `.bmp`; embedded by an image model).
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
    /// Text or image input (JSONL lines with `text`, a folder of documents or of images): the embedding model a
    /// collection made by --create gets [default: all-MiniLM-L6-v2 for text, efficientnet-lite0 for images].
    /// With --data the model runs here (found in --models-dir, else where `quiver embed` finds the default
    /// model); with a server, the server runs it.
    #[arg(long, value_name = "NAME")]
    pub embedding_model: Option<String>,
    /// Directory of embedding models (one sentence-transformers directory per model name), for --data.
    #[arg(long, env = "QUIVER_MODELS_DIR", value_name = "DIR")]
    pub models_dir: Option<PathBuf>,
    /// A folder of documents: most tokens per chunk.
    #[arg(long, default_value_t = 200, value_name = "N")]
    pub chunk_tokens: usize,
    /// A folder of documents: tokens repeated from the end of one chunk at the start of the next [default: 32,
    /// or half of --chunk-tokens when that is smaller].
    #[arg(long, value_name = "N")]
    pub overlap_tokens: Option<usize>,
    #[command(flatten)]
    pub server: ServerArgs,
}

impl ImportArgs {
    /// The model a text collection made by --create gets.
    pub fn text_model(&self) -> String {
        self.embedding_model.clone().unwrap_or_else(|| "all-MiniLM-L6-v2".to_string())
    }
}

/// What the input holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shape {
    /// Vectors of this dimension.
    Vectors(usize),
    /// Texts, embedded with the collection's model.
    Texts,
}

/// Where batches go.
trait Sink {
    /// Makes sure the collection exists (creating it when asked to) and takes what the input holds: vectors of
    /// its dimension, or texts (it has an embedding model).
    fn prepare(&mut self, shape: Shape, progress: &ProgressBar) -> Result<()>;
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
    model: String,
}

impl Sink for HttpSink {
    fn prepare(&mut self, shape: Shape, progress: &ProgressBar) -> Result<()> {
        let dim = match shape {
            Shape::Vectors(d) => d,
            Shape::Texts => return self.prepare_texts(progress),
        };
        match client::collection_info(&self.client, &self.collection) {
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
                    client::create_collection(&self.client, &self.collection, dim, distance)?;
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
        let points: Vec<PointRef<'_>> = records
            .iter()
            .map(|r| PointRef { id: &r.id, vector: &r.vector, text: r.text.as_deref(), payload: r.payload.as_ref() })
            .collect();
        let body = encode_points(&points)?;
        let mut attempt = 0;
        loop {
            match self.client.upsert_encoded(&self.collection, body.clone(), true) {
                Ok(r) if matches!(r.status, client::wire::UpdateStatus::Completed) => return Ok(()),
                Ok(r) => {
                    bail!("the server answered status {:?} to a write with wait=true, expected completed", r.status)
                }
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

impl HttpSink {
    /// Sends one JSON request, retrying transient failures (`--retries`, growing pauses, a warning each time).
    fn send_retrying(&self, method: client::Method, path: &str, body: &Value, progress: &ProgressBar) -> Result<Value> {
        let mut attempt = 0;
        loop {
            match self.client.send_json::<Value>(method.clone(), path, body) {
                Ok(v) => return Ok(v),
                Err(e) if e.is_transient() && attempt < self.retries => {
                    let wait = Duration::from_millis(500 << attempt.min(6));
                    attempt += 1;
                    progress.suspend(|| eprintln!("warning: {e}; retry {attempt} of {}", self.retries));
                    std::thread::sleep(wait);
                }
                Err(e) => return Err(e.into()),
            }
        }
    }

    /// Texts: the collection must have an embedding model (or is created with `--embedding-model`).
    fn prepare_texts(&mut self, progress: &ProgressBar) -> Result<()> {
        match client::collection_info(&self.client, &self.collection) {
            Ok(info) => match info.pointer("/config/embedding/model").and_then(Value::as_str) {
                Some(_) => Ok(()),
                None => bail!(
                    "collection {} has no embedding model, so it cannot take texts or images; import vectors, or into a \
                     collection created with an embedding model (--create makes one)",
                    self.collection
                ),
            },
            Err(ClientError::Api { status: 404, .. }) if self.create.is_some() => {
                client::create_text_collection(&self.client, &self.collection, &self.model)?;
                progress.suspend(|| {
                    eprintln!(
                        "created collection {} (embedding model {}) on {}",
                        self.collection,
                        self.model,
                        self.client.url()
                    )
                });
                Ok(())
            }
            Err(ClientError::Api { status: 404, .. }) => bail!(
                "collection {} does not exist on {}; pass --create to create it with the embedding model {}",
                self.collection,
                self.client.url(),
                self.model
            ),
            Err(e) => Err(e.into()),
        }
    }
}

/// A local data directory, through the embedded engine.
struct EmbeddedSink {
    db: Database,
    name: String,
    create: Option<Distance>,
    collection: Option<Collection>,
    models: LocalModels,
    /// The collection's model, for texts.
    model: Option<Arc<dyn Embedder>>,
}

/// Embedding models run in this process (imports into a data directory).
pub struct LocalModels {
    embedders: quiver_text::Models,
    /// The model a collection created for texts gets.
    pub default_name: String,
}

impl std::fmt::Debug for LocalModels {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LocalModels").field("default_name", &self.default_name).finish_non_exhaustive()
    }
}

impl LocalModels {
    /// Models found in `models_dir` (then where `quiver embed` finds the default one).
    pub fn new(models_dir: Option<PathBuf>, default_name: String) -> Self {
        LocalModels { embedders: quiver_text::Models::new(models_dir), default_name }
    }

    /// Model `name`, loaded once.
    pub fn get(&self, name: &str) -> Result<Arc<dyn Embedder>> {
        Ok(self.embedders.get(name)?)
    }

    /// The collection's model (it must have one), checked against its dimension; creates the collection with
    /// the default model when `create` and it does not exist.
    pub fn open_text_collection(
        &self,
        db: &Database,
        name: &str,
        create: bool,
        progress: &ProgressBar,
    ) -> Result<(Collection, Arc<dyn Embedder>)> {
        let c = match db.collection(name) {
            Ok(c) => c,
            Err(quiver_engine::Error::CollectionNotFound { .. }) if create => {
                let model = self.get(&self.default_name)?;
                let mut cfg = CollectionConfig::new(model.dim(), quiver_index::Metric::Cosine);
                cfg.embedding =
                    Some(quiver_engine::EmbeddingConfig { model: self.default_name.clone(), ..Default::default() });
                let c = db.create_collection(name, cfg)?;
                progress.suspend(|| {
                    eprintln!(
                        "created collection {name} (embedding model {}, {} dimensions) in {}",
                        self.default_name,
                        model.dim(),
                        db.root().display()
                    )
                });
                c
            }
            Err(quiver_engine::Error::CollectionNotFound { .. }) => bail!(
                "collection {name} does not exist in {}; pass --create to create it with the embedding model {}",
                db.root().display(),
                self.default_name
            ),
            Err(e) => return Err(e.into()),
        };
        if c.config().embedding.is_none() {
            bail!(
                "collection {name} has no embedding model, so it cannot take texts or images; import vectors, or into a \
                 collection created with an embedding model (--create makes one)"
            );
        }
        // Built in or behind an OpenAI-compatible endpoint, as the collection says; checked against its dimension.
        let model = self.embedders.for_config(name, c.config())?;
        Ok((c, model))
    }
}

impl Sink for EmbeddedSink {
    fn prepare(&mut self, shape: Shape, progress: &ProgressBar) -> Result<()> {
        let dim = match shape {
            Shape::Vectors(d) => d,
            Shape::Texts => {
                let (c, model) =
                    self.models.open_text_collection(&self.db, &self.name, self.create.is_some(), progress)?;
                self.collection = Some(c);
                self.model = Some(model);
                return Ok(());
            }
        };
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
        let mut points: Vec<PointInput> = Vec::with_capacity(records.len());
        let mut texts: Vec<(usize, String)> = Vec::new();
        for r in records {
            if let Some(t) = r.text {
                texts.push((points.len(), t));
            }
            points.push(PointInput { payload: r.payload, ttl_secs: None, ..PointInput::new(r.id, r.vector) });
        }
        if !texts.is_empty() {
            let model = self.model.as_ref().ok_or_else(|| anyhow!("internal: texts without a model"))?;
            quiver_text::fill_texts(model.as_ref(), &mut points, texts)?;
        }
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

/// Refuses the flags that only apply to file inputs when INPUT is a folder of `what` (documents, images).
fn refuse_file_flags(args: &ImportArgs, what: &str) -> Result<()> {
    for (flag, set) in [
        ("--format", args.format.is_some()),
        ("--ids-from", args.ids_from.is_some()),
        ("--vector-prefix", args.vector_prefix.is_some()),
        ("--state", args.state.is_some()),
        ("--resume", args.resume),
    ] {
        if set {
            return usage(format!(
                "{flag} does not apply to a folder of {what} (importing a folder again replaces each item in \
                 place, so there is nothing to resume)"
            ));
        }
    }
    Ok(())
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
    if !args.input.is_file() && !args.input.is_dir() {
        return usage(format!("{} is not a file or a folder", args.input.display()));
    }
    // `--url` names a server, `--data` a directory: both at once is a mistake (a URL from QUIVER_URL is fine).
    if args.data.is_some() && args.server.url.is_some() && std::env::var("QUIVER_URL").ok() != args.server.url {
        return usage("--url and --data exclude each other: import into a server or into a data directory");
    }
    if args.input.is_dir() {
        let dest = dest(&args)?;
        // A folder of documents, or of images: whichever it holds (both at once is ambiguous).
        let docs = documents::find_files(&args.input, &documents::EXTENSIONS)?;
        let pictures = documents::find_files(&args.input, &images::EXTENSIONS)?;
        return match (docs.is_empty(), pictures.is_empty()) {
            (false, true) => documents::run(&args, dest),
            (true, false) => images::run(&args, dest, pictures),
            (false, false) => usage(format!(
                "{} holds both documents ({}) and images ({}): import them from separate folders, into collections \
                 with a text model and an image model",
                args.input.display(),
                docs.len(),
                pictures.len()
            )),
            (true, true) => usage(format!(
                "{} holds no documents ({}) and no images ({})",
                args.input.display(),
                documents::EXTENSIONS.map(|e| format!(".{e}")).join(", "),
                images::EXTENSIONS.map(|e| format!(".{e}")).join(", ")
            )),
        };
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
    let create = args.create.then_some(args.distance);
    let dest = dest(&args)?;
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
        Dest::Server(client) => Box::new(HttpSink {
            client: *client,
            collection: args.collection.clone(),
            create,
            retries: args.retries,
            model: args.text_model(),
        }),
        Dest::Data(dir) => {
            let db = Database::open(&dir).with_context(|| format!("opening the data directory {}", dir.display()))?;
            let models = LocalModels::new(args.models_dir.clone(), args.text_model());
            Box::new(EmbeddedSink { db, name: args.collection.clone(), create, collection: None, models, model: None })
        }
    };
    import(ImportJob { args: &args, src, sink, skip, state_path: &state_path, fingerprint, target: &target })
}

/// Where `args` send the import.
fn dest(args: &ImportArgs) -> Result<Dest> {
    Ok(match &args.data {
        Some(dir) => {
            quiver_engine::database::validate_name(&args.collection)
                .map_err(|e| crate::UsageError(format!("collection name: {e}")))?;
            // Created now so that its canonical path (part of the import's fingerprint) is the same on every run.
            std::fs::create_dir_all(dir).with_context(|| format!("creating the data directory {}", dir.display()))?;
            Dest::Data(std::fs::canonicalize(dir).with_context(|| format!("reading {}", dir.display()))?)
        }
        None => Dest::Server(Box::new(client::connect(&args.server)?)),
    })
}

/// Where an import goes.
enum Dest {
    /// A server (boxed: a client with its TLS setup is large).
    Server(Box<Client>),
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
                let shape = match b.records[0].text {
                    Some(_) => Shape::Texts,
                    None => Shape::Vectors(b.records[0].vector.len()),
                };
                sink.prepare(shape, &pb)?;
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

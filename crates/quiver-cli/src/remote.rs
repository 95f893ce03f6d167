//! Commands over the HTTP client: `quiver collections …`, `quiver query …`, `quiver snapshot …`.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::{Args, Subcommand};
use serde_json::Value;

use crate::client::{self, Client, Distance, ServerArgs, wire};
use crate::usage;

/// Flags of `quiver collections`.
#[derive(Args, Debug)]
pub struct CollectionsArgs {
    #[command(subcommand)]
    cmd: Option<CollectionsCmd>,
    #[command(flatten)]
    server: ServerArgs,
}

#[derive(Subcommand, Debug)]
enum CollectionsCmd {
    /// List the collections (the default).
    List {
        /// Print the names as a JSON array.
        #[arg(long)]
        json: bool,
    },
    /// Show a collection's size, configuration and state.
    Info {
        /// The collection.
        name: String,
        /// Print the server's whole description as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Create a collection.
    Create {
        /// The collection.
        name: String,
        /// Vector dimension.
        #[arg(long)]
        dim: usize,
        /// Distance.
        #[arg(long, value_enum, default_value = "cosine")]
        distance: Distance,
    },
    /// Delete a collection and all its points.
    Delete {
        /// The collection.
        name: String,
    },
}

/// Runs `quiver collections`.
pub fn collections(args: CollectionsArgs) -> Result<ExitCode> {
    let client = client::connect(&args.server)?;
    match args.cmd.unwrap_or(CollectionsCmd::List { json: false }) {
        CollectionsCmd::List { json } => {
            let names = client.list_collections()?;
            if json {
                println!("{}", serde_json::to_string(&names)?);
            } else {
                for n in &names {
                    println!("{n}");
                }
            }
        }
        CollectionsCmd::Info { name, json } => {
            let info = client::collection_info(&client, &name)?;
            if json {
                println!("{}", serde_json::to_string_pretty(&info)?);
            } else {
                print!("{}", render_info(&name, &info));
            }
        }
        CollectionsCmd::Create { name, dim, distance } => {
            if dim == 0 {
                return usage("--dim must be at least 1");
            }
            client::create_collection(&client, &name, dim, distance)?;
            println!("created collection {name} ({dim} dimensions, {})", distance.api_name());
        }
        CollectionsCmd::Delete { name } => {
            if client.delete_collection(&name)? {
                println!("deleted collection {name}");
            } else {
                eprintln!("error: collection {name} does not exist on {}", client.url());
                return Ok(ExitCode::FAILURE);
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// The text form of `GET /collections/{c}`'s result.
fn render_info(name: &str, info: &Value) -> String {
    use std::fmt::Write;
    let mut s = String::new();
    let get = |p: &str| info.pointer(p).filter(|v| !v.is_null());
    let show = |v: Option<&Value>| match v {
        Some(Value::String(s)) => s.clone(),
        Some(v) => v.to_string(),
        None => "?".into(),
    };
    let _ = writeln!(s, "collection {name}");
    let _ = writeln!(s, "  status      {}", show(get("/status")));
    let _ = writeln!(s, "  points      {}", show(get("/points_count")));
    let _ = writeln!(s, "  segments    {}", show(get("/segments_count")));
    let _ = writeln!(
        s,
        "  vectors     {} dimensions, {}",
        show(get("/config/params/vectors/size")),
        show(get("/config/params/vectors/distance"))
    );
    if let Some(q) = get("/quiver") {
        let qs = |p: &str| q.pointer(p).filter(|v| !v.is_null());
        if let Some(kind) = qs("/config/index/kind") {
            let _ = writeln!(s, "  index       {}", show(Some(kind)));
        }
        if let Some(b) = qs("/disk_bytes").and_then(Value::as_u64) {
            let _ = writeln!(s, "  disk        {}", crate::inspect::human_bytes(b));
        }
        if let Some(b) = qs("/memory_bytes").and_then(Value::as_u64) {
            let _ = writeln!(s, "  memory      {}", crate::inspect::human_bytes(b));
        }
        if let Some(a) = qs("/applied_seq") {
            let _ =
                writeln!(s, "  operations  {} applied, WAL checkpoint {}", show(Some(a)), show(qs("/wal_checkpoint")));
        }
        if let Some(idx) = qs("/payload_indexes").and_then(Value::as_array)
            && !idx.is_empty()
        {
            let list: Vec<String> = idx
                .iter()
                .map(|p| match p.as_array().map(Vec::as_slice) {
                    Some([k, t]) => format!("{} ({})", show(Some(k)), show(Some(t))),
                    _ => p.to_string(),
                })
                .collect();
            let _ = writeln!(s, "  indexed     {}", list.join(", "));
        }
        if let Some(e) = qs("/optimizer/last_error") {
            let _ = writeln!(s, "  optimizer   last error: {}", show(Some(e)));
        }
    }
    s
}

/// Flags of `quiver query`.
#[derive(Args, Debug)]
#[command(group(clap::ArgGroup::new("query").required(true).args(["vector", "vector_file", "text", "image"])))]
pub struct QueryArgs {
    /// The collection.
    collection: String,
    /// The query vector as a JSON array, e.g. '[0.1, 0.2, 0.3]'.
    #[arg(long)]
    vector: Option<String>,
    /// A file holding the query vector as one JSON array.
    #[arg(long, value_name = "FILE")]
    vector_file: Option<PathBuf>,
    /// A text, embedded by the server with the collection's model (a collection made with an embedding model).
    #[arg(long)]
    text: Option<String>,
    /// An image file (JPEG, PNG, WebP, GIF, BMP), embedded by the server with the collection's image model.
    #[arg(long, value_name = "FILE")]
    image: Option<PathBuf>,
    /// A Qdrant filter as JSON, e.g. '{"must":[{"key":"pos","match":{"value":"noun"}}]}'.
    #[arg(long)]
    filter: Option<String>,
    /// Results wanted.
    #[arg(long, default_value_t = 10)]
    limit: usize,
    /// Leave payloads out.
    #[arg(long, conflicts_with = "fields")]
    no_payload: bool,
    /// Only these payload keys, comma-separated, e.g. `doc_id,title`.
    #[arg(long, value_delimiter = ',')]
    fields: Vec<String>,
    /// Print the results as a JSON array of {id, score, payload}.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    server: ServerArgs,
}

/// Parses a JSON array of finite numbers; `what` names it in errors.
pub fn parse_vector(text: &str, what: &str) -> Result<Vec<f32>> {
    let v: Value = serde_json::from_str(text.trim())
        .map_err(|e| crate::UsageError(format!("{what}: not JSON ({e}); expected an array like [0.1, 0.2]")))?;
    let Value::Array(items) = v else {
        return usage(format!("{what}: expected a JSON array of numbers, got {}", kind(&v)));
    };
    if items.is_empty() {
        return usage(format!("{what}: the vector is empty"));
    }
    let mut out = Vec::with_capacity(items.len());
    for (i, x) in items.iter().enumerate() {
        match x.as_f64().map(|f| f as f32) {
            Some(f) if f.is_finite() => out.push(f),
            _ => return usage(format!("{what}: element {i} is {x}, not a finite number")),
        }
    }
    Ok(out)
}

/// A JSON value's kind, for messages (the wire crate's, so every front end words it alike).
pub use wire::json_kind as kind;

/// Runs `quiver query`.
pub fn query(args: QueryArgs) -> Result<()> {
    let query = match (&args.vector, &args.vector_file, &args.text) {
        (None, None, None) if args.image.is_some() => {
            use base64::Engine as _;
            let f = args.image.as_deref().unwrap_or(std::path::Path::new(""));
            let bytes = std::fs::read(f).map_err(|e| crate::UsageError(format!("--image {}: {e}", f.display())))?;
            let image = base64::engine::general_purpose::STANDARD.encode(bytes);
            wire::QueryInput::Image(wire::ImageInput { image, model: None, options: None })
        }
        (Some(v), None, None) => wire::QueryInput::Vector(parse_vector(v, "--vector")?),
        (None, Some(f), None) => {
            let text = std::fs::read_to_string(f)
                .map_err(|e| crate::UsageError(format!("--vector-file {}: {e}", f.display())))?;
            wire::QueryInput::Vector(parse_vector(&text, &format!("--vector-file {}", f.display()))?)
        }
        (None, None, Some(t)) if t.trim().is_empty() => return usage("--text: the text is empty"),
        (None, None, Some(t)) => {
            wire::QueryInput::Text(wire::TextInput { text: t.clone(), model: None, options: None })
        }
        _ => return usage("give the query with one of --vector, --vector-file, --text or --image"),
    };
    let filter = match &args.filter {
        Some(f) => {
            let v: Value =
                serde_json::from_str(f).map_err(|e| crate::UsageError(format!("--filter: not JSON: {e}")))?;
            if !v.is_object() {
                return usage(format!("--filter: expected a JSON object (a Qdrant filter), got {}", kind(&v)));
            }
            let parsed: wire::Filter =
                serde_json::from_value(v).map_err(|e| crate::UsageError(format!("--filter: {e}")))?;
            Some(parsed)
        }
        None => None,
    };
    if args.limit == 0 {
        return usage("--limit must be at least 1");
    }
    if args.fields.iter().any(|f| f.trim().is_empty()) {
        return usage(format!("--fields: expected payload keys separated by commas, got {:?}", args.fields.join(",")));
    }
    let client = client::connect(&args.server)?;
    let req = wire::QueryRequest {
        query: Some(query),
        limit: Some(args.limit),
        filter,
        with_payload: Some(match args.fields.is_empty() {
            true => wire::WithPayload::Bool(!args.no_payload),
            false => wire::WithPayload::Keys(args.fields.clone()),
        }),
        ..Default::default()
    };
    let points = client.query(&args.collection, &req)?.points;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&points)?);
        return Ok(());
    }
    let mut out = std::io::stdout().lock();
    if points.is_empty() {
        writeln!(out, "no results")?;
    }
    for (rank, p) in points.iter().enumerate() {
        let id = p.id.to_string();
        let payload = match &p.payload {
            Some(m) if !m.is_empty() => format!("  {}", Value::Object(m.clone())),
            _ => String::new(),
        };
        writeln!(out, "{:>4}  {id:<12} {:>10.6}{payload}", rank + 1, p.score)?;
    }
    Ok(())
}

/// Flags of `quiver snapshot`.
#[derive(Args, Debug)]
pub struct SnapshotArgs {
    #[command(subcommand)]
    cmd: SnapshotCmd,
    #[command(flatten)]
    server: ServerArgs,
}

#[derive(Subcommand, Debug)]
enum SnapshotCmd {
    /// Make a snapshot of a collection on the server (and optionally download it).
    Create {
        /// The collection.
        collection: String,
        /// Also download the archive to this file.
        #[arg(long, value_name = "FILE")]
        download: Option<PathBuf>,
    },
    /// List a collection's snapshots.
    List {
        /// The collection.
        collection: String,
        /// Print the list as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Download a snapshot archive.
    Download {
        /// The collection.
        collection: String,
        /// The snapshot's name (from `quiver snapshot list`).
        snapshot: String,
        /// Where to write it.
        file: PathBuf,
    },
    /// Delete a snapshot archive on the server.
    Delete {
        /// The collection.
        collection: String,
        /// The snapshot's name (from `quiver snapshot list`).
        snapshot: String,
    },
    /// Upload an archive and restore the collection from it (replacing its current content).
    Restore {
        /// The collection.
        collection: String,
        /// The `.qsnap` archive.
        file: PathBuf,
    },
}

/// Downloads into `file` through a temporary name, renamed once complete (no partial archive is left under the
/// final name).
fn download(client: &Client, collection: &str, snapshot: &str, file: &Path) -> Result<u64> {
    let tmp = {
        let mut s = file.as_os_str().to_owned();
        s.push(".part");
        PathBuf::from(s)
    };
    let mut out = std::fs::File::create(&tmp).with_context(|| format!("creating {}", tmp.display()))?;
    let res = client.download_snapshot(collection, snapshot, &mut out);
    let res = res.map_err(anyhow::Error::from).and_then(|n| {
        out.sync_all().with_context(|| format!("writing {}", tmp.display()))?;
        drop(out);
        std::fs::rename(&tmp, file).with_context(|| format!("renaming {} to {}", tmp.display(), file.display()))?;
        Ok(n)
    });
    if res.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    res
}

/// Runs `quiver snapshot`.
pub fn snapshot(args: SnapshotArgs) -> Result<()> {
    let client = client::connect(&args.server)?;
    match args.cmd {
        SnapshotCmd::Create { collection, download: to } => {
            let s = client.create_snapshot(&collection)?;
            let size = format!(", {}", crate::inspect::human_bytes(s.size));
            println!("created snapshot {}{size}", s.name);
            if let Some(file) = to {
                let n = download(&client, &collection, &s.name, &file)?;
                println!("downloaded {} to {}", crate::inspect::human_bytes(n), file.display());
            }
        }
        SnapshotCmd::List { collection, json } => {
            let list = client.list_snapshots(&collection)?;
            if json {
                println!("{}", serde_json::to_string_pretty(&list)?);
            } else if list.is_empty() {
                println!("no snapshots of {collection}");
            } else {
                for s in &list {
                    let size = crate::inspect::human_bytes(s.size);
                    println!("{}  {size:>10}  {}", s.name, s.creation_time);
                }
            }
        }
        SnapshotCmd::Download { collection, snapshot, file } => {
            let n = download(&client, &collection, &snapshot, &file)?;
            println!("downloaded {} to {}", crate::inspect::human_bytes(n), file.display());
        }
        SnapshotCmd::Restore { collection, file } => {
            if !file.is_file() {
                return usage(format!("{} is not a file", file.display()));
            }
            let stored = client.upload_snapshot(&collection, &file)?;
            let kept = stored.map(|s| format!(" (kept on the server as {})", s.name)).unwrap_or_default();
            println!("restored collection {collection} from {}{kept}", file.display());
        }
        SnapshotCmd::Delete { collection, snapshot } => {
            client.delete_snapshot(&collection, &snapshot)?;
            println!("deleted snapshot {snapshot} of {collection}");
        }
    }
    Ok(())
}

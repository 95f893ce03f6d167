//! `quiver serve`: the HTTP server over a local data directory.
//!
//! Configuration comes from flags, then environment variables (`QUIVER_*`), then an optional TOML file
//! (`--config`), then defaults — the first that sets a value wins. Logs go to stderr (`--log-format json` for
//! one JSON object per line; `RUST_LOG` or `--log-level` filters).

use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::{Args, ValueEnum};
use quiver_server::ServerConfig;

/// Log line format.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

/// Flags of `quiver serve`.
#[derive(Args, Debug)]
pub struct ServeArgs {
    /// TOML file with any of the settings below (snake_case names, e.g. `bind = "0.0.0.0:6333"`).
    #[arg(long, env = "QUIVER_CONFIG")]
    pub config: Option<PathBuf>,
    /// Address to listen on [default: 127.0.0.1:6333].
    #[arg(long, env = "QUIVER_BIND")]
    pub bind: Option<SocketAddr>,
    /// Data directory [default: ./quiver-data].
    #[arg(long, env = "QUIVER_DATA_DIR")]
    pub data_dir: Option<PathBuf>,
    /// API key for full access (clients send `api-key: KEY` or `Authorization: Bearer KEY`).
    #[arg(long, env = "QUIVER_API_KEY", hide_env_values = true)]
    pub api_key: Option<String>,
    /// API key for read-only access (search, retrieve, scroll, count, listings, downloads).
    #[arg(long, env = "QUIVER_READ_ONLY_API_KEY", hide_env_values = true)]
    pub read_only_api_key: Option<String>,
    /// Also accept signed tokens (JWT, HS256, signed with --api-key) with per-collection access and an expiry;
    /// `quiver token` makes them.
    #[arg(long, env = "QUIVER_JWT_RBAC")]
    pub jwt_rbac: bool,
    /// Largest request body in bytes [default: 64 MiB].
    #[arg(long, env = "QUIVER_MAX_BODY_BYTES")]
    pub max_body_bytes: Option<usize>,
    /// Largest snapshot upload in bytes [default: 64 GiB].
    #[arg(long, env = "QUIVER_MAX_SNAPSHOT_BYTES")]
    pub max_snapshot_bytes: Option<u64>,
    /// Most points per upsert, ids per retrieve or delete [default: 10000].
    #[arg(long, env = "QUIVER_MAX_BATCH_POINTS")]
    pub max_batch_points: Option<usize>,
    /// Largest `limit` of a search, query or scroll [default: 10000].
    #[arg(long, env = "QUIVER_MAX_LIMIT")]
    pub max_limit: Option<usize>,
    /// Most searches per batch request [default: 100].
    #[arg(long, env = "QUIVER_MAX_SEARCH_BATCH")]
    pub max_search_batch: Option<usize>,
    /// Seconds before a request is answered 408 [default: 60].
    #[arg(long, env = "QUIVER_REQUEST_TIMEOUT_SECS")]
    pub request_timeout_secs: Option<u64>,
    /// Seconds SIGTERM waits for in-flight requests [default: 30].
    #[arg(long, env = "QUIVER_SHUTDOWN_GRACE_SECS")]
    pub shutdown_grace_secs: Option<u64>,
    /// Directory of embedding models, one sentence-transformers directory per model, named as collections name
    /// it (the default model all-MiniLM-L6-v2 is also found where `quiver embed` finds it).
    #[arg(long, env = "QUIVER_MODELS_DIR")]
    pub models_dir: Option<PathBuf>,
    /// Heap bytes all collections may take together, by their memory estimates: a create or upsert past it is
    /// answered 507 with the estimate [default: no limit].
    #[arg(long, env = "QUIVER_MEMORY_BUDGET_BYTES")]
    pub memory_budget_bytes: Option<u64>,
    /// PEM certificate chain: serve HTTPS only (with --tls-key); reloaded, with the key, on SIGHUP.
    #[arg(long, env = "QUIVER_TLS_CERT", value_name = "FILE")]
    pub tls_cert: Option<PathBuf>,
    /// PEM private key of --tls-cert.
    #[arg(long, env = "QUIVER_TLS_KEY", value_name = "FILE")]
    pub tls_key: Option<PathBuf>,
    /// PEM CA certificates: require client certificates chaining to them (mutual TLS).
    #[arg(long, env = "QUIVER_TLS_CLIENT_CA", value_name = "FILE")]
    pub tls_client_ca: Option<PathBuf>,
    /// Also serve the gRPC API (Qdrant's interface; qdrant-client expects 6334) on this port of --bind's address;
    /// 0 picks a free port [default: off].
    #[arg(long, env = "QUIVER_GRPC_PORT")]
    pub grpc_port: Option<u16>,
    /// Log format.
    #[arg(long, env = "QUIVER_LOG_FORMAT", value_enum, default_value = "text")]
    pub log_format: LogFormat,
    /// Log filter when RUST_LOG is unset (e.g. `info`, `quiver_server=debug`).
    #[arg(long, env = "QUIVER_LOG_LEVEL", default_value = "info")]
    pub log_level: String,
    /// Server threads [default: one per core].
    #[arg(long, env = "QUIVER_THREADS")]
    pub threads: Option<usize>,
    /// Join a cluster on these NATS JetStream servers (`nats://host:port[,…]`); see docs/cluster.md.
    #[arg(long, env = "QUIVER_CLUSTER", value_name = "NATS_URLS")]
    pub cluster: Option<String>,
    /// This node's number in the cluster (unique; needed with --cluster).
    #[arg(long, env = "QUIVER_NODE_ID")]
    pub node_id: Option<u32>,
    /// The URL other nodes and clients reach this node at [default: http://<bind>].
    #[arg(long, env = "QUIVER_ADVERTISE_URL")]
    pub advertise_url: Option<String>,
    /// Monitoring URLs of the NATS servers (`http://host:8222[,…]`, one per server): each is checked for
    /// JetStream with `sync_interval: always` before the node starts.
    #[arg(long, env = "QUIVER_NATS_MONITOR", value_name = "URLS")]
    pub nats_monitor: Option<String>,
    /// Skip that check (accepting that NATS may lose acknowledged writes on power loss unless it fsyncs each).
    #[arg(long, env = "QUIVER_NATS_UNCHECKED_SYNC")]
    pub nats_unchecked_sync: bool,
    /// Seconds without a lease renewal after which a node counts as gone and its replicas are copied elsewhere
    /// (the first node to start decides it for the cluster).
    #[arg(long, env = "QUIVER_LEASE_TTL", value_name = "SECONDS", default_value_t = 5.0)]
    pub lease_ttl: f64,
    /// Seconds between snapshots of each shard into the NATS object store (a shard's log is truncated below its
    /// snapshot, and a new replica starts from it).
    #[arg(long, env = "QUIVER_SNAPSHOT_INTERVAL", value_name = "SECONDS", default_value_t = 300.0)]
    pub snapshot_interval: f64,
}

/// The cluster options of `args`, after checking the NATS servers' fsync policy (`None`: a single node).
pub fn cluster_options(args: &ServeArgs) -> Result<Option<quiver_server::cluster::ClusterOptions>> {
    let Some(urls) = &args.cluster else {
        if args.node_id.is_some() || args.nats_monitor.is_some() {
            return crate::usage("--node-id and --nats-monitor need --cluster");
        }
        return Ok(None);
    };
    let Some(node_id) = args.node_id else {
        return crate::usage("--cluster needs --node-id N (a number unique in the cluster)");
    };
    if !args.nats_unchecked_sync {
        let monitors: Vec<String> = args
            .nats_monitor
            .as_deref()
            .unwrap_or("")
            .split(',')
            .map(str::trim)
            .filter(|m| !m.is_empty())
            .map(str::to_owned)
            .collect();
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .timeout_global(Some(std::time::Duration::from_secs(5)))
            .proxy(None)
            .build()
            .into();
        quiver_cluster::nats::check_sync_always(&monitors, |url| {
            let mut r = agent.get(url).call().map_err(|e| e.to_string())?;
            r.body_mut().read_to_string().map_err(|e| e.to_string())
        })
        .map_err(|e| crate::UsageError(e.to_string()))?;
    }
    let advertise_url = args.advertise_url.clone();
    if !(args.lease_ttl.is_finite() && (1.0..=600.0).contains(&args.lease_ttl)) {
        return crate::usage(format!("--lease-ttl: expected 1 to 600 seconds, got {}", args.lease_ttl));
    }
    if !(args.snapshot_interval.is_finite() && (1.0..=86_400.0).contains(&args.snapshot_interval)) {
        return crate::usage(format!(
            "--snapshot-interval: expected 1 to 86400 seconds, got {}",
            args.snapshot_interval
        ));
    }
    Ok(Some(quiver_server::cluster::ClusterOptions {
        nats_urls: urls.clone(),
        node_id,
        advertise_url,
        lease_ttl: std::time::Duration::from_secs_f64(args.lease_ttl),
        snapshot_interval: std::time::Duration::from_secs_f64(args.snapshot_interval),
    }))
}

/// Resolves the configuration: flags/environment over the file over defaults.
pub fn resolve(args: &ServeArgs) -> Result<ServerConfig> {
    let mut cfg = match &args.config {
        Some(path) => {
            let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
            toml::from_str::<ServerConfig>(&text).with_context(|| format!("parsing {}", path.display()))?
        }
        None => ServerConfig::default(),
    };
    macro_rules! set {
        ($($f:ident),*) => { $( if let Some(v) = &args.$f { cfg.$f = v.clone().into(); } )* };
    }
    set!(bind, data_dir, max_body_bytes, max_snapshot_bytes, max_batch_points, max_limit, max_search_batch);
    set!(request_timeout_secs, shutdown_grace_secs);
    if let Some(d) = &args.models_dir {
        cfg.models_dir = Some(d.clone());
    }
    if let Some(b) = args.memory_budget_bytes {
        cfg.memory_budget_bytes = Some(b);
    }
    if let Some(k) = &args.api_key {
        cfg.api_key = Some(k.clone());
    }
    for (arg, field) in [
        (&args.tls_cert, &mut cfg.tls_cert),
        (&args.tls_key, &mut cfg.tls_key),
        (&args.tls_client_ca, &mut cfg.tls_client_ca),
    ] {
        if let Some(p) = arg {
            *field = Some(p.clone());
        }
    }
    if let Some(k) = &args.read_only_api_key {
        cfg.read_only_api_key = Some(k.clone());
    }
    if args.jwt_rbac {
        cfg.jwt_rbac = true;
    }
    if let Some(p) = args.grpc_port {
        cfg.grpc_port = Some(p);
    }
    cfg.validate().map_err(anyhow::Error::msg)?;
    Ok(cfg)
}

/// Runs the server until SIGTERM / Ctrl-C.
pub fn run(args: ServeArgs) -> Result<()> {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .or_else(|_| tracing_subscriber::EnvFilter::try_new(&args.log_level))
        .with_context(|| format!("invalid --log-level {:?}", args.log_level))?;
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()));
    let _ = match args.log_format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder.json().try_init(),
    };
    let cfg = resolve(&args)?;
    let cluster = cluster_options(&args)?;
    let mut rt = tokio::runtime::Builder::new_multi_thread();
    rt.enable_all();
    if let Some(n) = args.threads {
        rt.worker_threads(n.max(1));
    }
    let rt = rt.build().context("starting the async runtime")?;
    rt.block_on(async move {
        let listener =
            tokio::net::TcpListener::bind(cfg.bind).await.with_context(|| format!("binding {}", cfg.bind))?;
        quiver_server::serve_node(listener, cfg, cluster, quiver_server::shutdown_signal()).await.context("serving")
    })?;
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use clap::Parser;

    use super::*;

    #[derive(Parser, Debug)]
    struct Cli {
        #[command(flatten)]
        serve: ServeArgs,
    }

    #[test]
    fn flags_beat_the_file_and_the_file_beats_defaults() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("q.toml");
        std::fs::write(&file, "bind = \"127.0.0.1:7000\"\nmax_limit = 77\ndata_dir = \"/tmp/x\"\n").unwrap();
        let cli = Cli::parse_from(["t", "--config", file.to_str().unwrap(), "--max-limit", "5"]);
        let cfg = resolve(&cli.serve).unwrap();
        assert_eq!(cfg.bind.port(), 7000);
        assert_eq!(cfg.max_limit, 5);
        assert_eq!(cfg.data_dir, PathBuf::from("/tmp/x"));
        assert_eq!(cfg.max_batch_points, ServerConfig::default().max_batch_points);
    }

    #[test]
    fn bad_files_and_values_are_errors_naming_the_problem() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("q.toml");
        std::fs::write(&file, "colour = 3\n").unwrap();
        let cli = Cli::parse_from(["t", "--config", file.to_str().unwrap()]);
        let e = format!("{:#}", resolve(&cli.serve).unwrap_err());
        assert!(e.contains("colour"), "{e}");
        let cli = Cli::parse_from(["t", "--api-key", "short"]);
        let e = format!("{:#}", resolve(&cli.serve).unwrap_err());
        assert!(e.contains("api_key"), "{e}");
        let cli = Cli::parse_from(["t", "--max-limit", "0"]);
        assert!(format!("{:#}", resolve(&cli.serve).unwrap_err()).contains("max_limit"));
    }
}

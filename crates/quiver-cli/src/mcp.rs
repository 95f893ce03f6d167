//! `quiver mcp`: QuiverDB as an MCP server on stdio, for desktop agents and IDEs — over a data directory opened in
//! this process (`--data DIR`), or in front of a running server (`--url`). The protocol and the tools are
//! `quiver_server::mcp`; this file picks where the tools' REST calls go. stdout carries the protocol, so logs go to
//! stderr.

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{Context, Result};
use clap::Args;
use quiver_server::mcp::{Api, ApiFailure, ApiFuture, McpServer, RouterApi};
use serde_json::Value;

use crate::client;

/// Flags of `quiver mcp`.
#[derive(Args, Debug)]
pub struct McpArgs {
    /// Data directory to open in this process (created if missing). Without it, `--url` names a running server.
    #[arg(long, value_name = "DIR", conflicts_with = "url")]
    data: Option<PathBuf>,
    /// Hide and refuse the tools that write (create, add, upsert, delete).
    #[arg(long)]
    read_only: bool,
    /// Directory of embedding models, one sentence-transformers directory per model name (with `--data`).
    #[arg(long, value_name = "DIR")]
    models_dir: Option<PathBuf>,
    /// A running server to front (`http://HOST:PORT`) instead of `--data`.
    #[arg(long, env = "QUIVER_URL")]
    url: Option<String>,
    /// API key for `--url`, sent as the `api-key` header.
    #[arg(long, env = "QUIVER_API_KEY", hide_env_values = true)]
    api_key: Option<String>,
}

/// The REST calls of the tools, sent to a running server.
struct RemoteApi(quiver_client::Client);

impl Api for RemoteApi {
    fn call<'a>(&'a self, method: quiver_client::Method, path: String, body: Option<Value>) -> ApiFuture<'a> {
        Box::pin(async move {
            let r = match body {
                Some(b) => self.0.send_json::<Value>(method, &path, &b).await,
                None if method == quiver_client::Method::DELETE => self.0.delete::<Value>(&path).await,
                None => self.0.get::<Value>(&path).await,
            };
            r.map_err(|e| match e {
                quiver_client::Error::Api { status, message, .. } => ApiFailure { status, message },
                other => ApiFailure { status: 0, message: other.to_string() },
            })
        })
    }
}

/// Runs `quiver mcp`.
pub fn run(args: McpArgs) -> Result<()> {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_env("QUIVER_LOG").unwrap_or_else(|_| "warn".into()))
        .try_init()
        .ok();
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().context("starting the runtime")?;
    rt.block_on(async move {
        let stdin = tokio::io::BufReader::new(tokio::io::stdin());
        let stdout = tokio::io::stdout();
        match (&args.data, &args.url) {
            (Some(dir), _) => {
                let d = dir.clone();
                let db = tokio::task::spawn_blocking(move || quiver_engine::Database::open(d))
                    .await?
                    .with_context(|| format!("opening {}", dir.display()))?;
                let config = quiver_server::ServerConfig {
                    data_dir: dir.clone(),
                    models_dir: args.models_dir.clone(),
                    ..quiver_server::ServerConfig::default()
                };
                let db = Arc::new(db);
                let state = quiver_server::AppState::with_database(config, Arc::clone(&db));
                let server = McpServer::new(RouterApi::new(quiver_server::app(state), None), args.read_only);
                quiver_server::mcp::serve_lines(&server, stdin, stdout).await?;
                tokio::task::spawn_blocking(move || db.close()).await?.context("closing the database")?;
            }
            (None, _) => {
                let url = args.url.as_deref().unwrap_or(client::DEFAULT_URL);
                let c = quiver_client::Client::new(url)?
                    .with_api_key(args.api_key.as_deref())?
                    .with_timeout(Some(std::time::Duration::from_secs(300)));
                let server = McpServer::new(RemoteApi(c), args.read_only);
                quiver_server::mcp::serve_lines(&server, stdin, stdout).await?;
            }
        }
        Ok(())
    })
}

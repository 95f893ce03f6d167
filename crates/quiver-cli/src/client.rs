//! The server commands' connection: `quiver-client`'s blocking client, configured from the flags every such
//! command takes (`--url`, `--api-key`, `--timeout`). The requests and replies are `quiver-wire`'s types, the
//! server's own.

use std::time::Duration;

pub use quiver_client::blocking::Client;
pub use quiver_client::wire;
pub use quiver_client::{Error as ClientError, Method, PointRef, encode_points, segment};

/// Default server address.
pub const DEFAULT_URL: &str = quiver_client::DEFAULT_URL;

/// Result alias for the client.
pub type Result<T, E = ClientError> = std::result::Result<T, E>;

/// Flags of every command that talks to a server.
#[derive(clap::Args, Debug, Clone)]
pub struct ServerArgs {
    /// Base URL of the server [default: http://127.0.0.1:6333].
    #[arg(long, env = "QUIVER_URL", global = true)]
    pub url: Option<String>,
    /// API key, sent as the `api-key` header.
    #[arg(long, env = "QUIVER_API_KEY", hide_env_values = true, global = true)]
    pub api_key: Option<String>,
    /// Seconds to wait for each request to complete (0: no limit).
    #[arg(long, default_value_t = 300, value_name = "SECS", global = true)]
    pub timeout: u64,
}

/// A client for the server the flags name.
pub fn connect(args: &ServerArgs) -> Result<Client> {
    let url = args.url.as_deref().unwrap_or(DEFAULT_URL);
    let timeout = (args.timeout > 0).then(|| Duration::from_secs(args.timeout));
    Ok(Client::new(url)?.with_api_key(args.api_key.as_deref())?.with_timeout(timeout))
}

/// What to tell someone whose command got no reply at all.
pub const NO_REPLY_HINT: &str = "is `quiver serve` running there? set --url or QUIVER_URL";

/// Distance of a collection, as the flags spell it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Distance {
    /// Cosine similarity.
    Cosine,
    /// Inner product.
    Dot,
    /// Euclidean distance.
    #[value(alias = "euclidean", alias = "l2")]
    Euclid,
}

impl Distance {
    /// The API's value.
    pub fn wire(self) -> wire::Distance {
        match self {
            Distance::Cosine => wire::Distance::Cosine,
            Distance::Dot => wire::Distance::Dot,
            Distance::Euclid => wire::Distance::Euclid,
        }
    }

    /// The API's name: `Cosine`, `Dot`, `Euclid`.
    pub fn api_name(self) -> &'static str {
        match self {
            Distance::Cosine => "Cosine",
            Distance::Dot => "Dot",
            Distance::Euclid => "Euclid",
        }
    }

    /// The engine's metric.
    pub fn metric(self) -> quiver_index::Metric {
        match self {
            Distance::Cosine => quiver_index::Metric::Cosine,
            Distance::Dot => quiver_index::Metric::Dot,
            Distance::Euclid => quiver_index::Metric::Euclidean,
        }
    }
}

/// `PUT /collections/{name}` with `{"vectors": {"size": dim, "distance": …}}`.
pub fn create_collection(client: &Client, name: &str, dim: usize, distance: Distance) -> Result<()> {
    let config = wire::CreateCollection {
        vectors: Some(wire::VectorsConfig::Single(wire::VectorParams {
            size: dim,
            distance: distance.wire(),
            on_disk: None,
            embedding: None,
        })),
        ..Default::default()
    };
    client.create_collection(name, &config)
}

/// `PUT /collections/{name}` with an embedding model (the server sets the size; Cosine).
pub fn create_text_collection(client: &Client, name: &str, model: &str) -> Result<()> {
    let config =
        wire::CreateCollection { embedding: Some(serde_json::json!({ "model": model })), ..Default::default() };
    client.create_collection(name, &config)
}

/// `GET /collections/{name}` as the server sends it (the commands print fields a newer server may add).
pub fn collection_info(client: &Client, name: &str) -> Result<serde_json::Value> {
    client.get(&format!("/collections/{}", segment(name)))
}

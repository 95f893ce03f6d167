//! The JSON shapes of QuiverDB's REST API: Qdrant's for the operations it shares (so its clients and habits
//! carry over), QuiverDB's own beside them. One definition for both ends: the server reads requests and writes
//! replies with these types, `quiver-client` writes requests and reads replies with the same ones, so the two
//! cannot drift apart. Every type is `Serialize + Deserialize`; request types leave absent options out of the
//! JSON they write. Only the server's routes and the clients know these shapes; the engine has its own types.

pub use quiver_engine::{Filter, Payload, PointId};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

mod collections;
mod documents;
mod points;
mod search;

pub use collections::*;
pub use documents::*;
pub use points::*;
pub use search::*;

/// A point id: an unsigned integer or a UUID string.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(untagged)]
#[schema(as = ExtendedPointId)]
#[allow(dead_code)] // documentation only
pub enum PointIdSchema {
    /// `42`
    Num(u64),
    /// `"550e8400-e29b-41d4-a716-446655440000"`
    Uuid(String),
}

/// A point id inside an untagged enum (where a field attribute cannot name its schema).
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
#[serde(transparent)]
pub struct WireId(pub PointId);

impl utoipa::PartialSchema for WireId {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        <PointIdSchema as utoipa::PartialSchema>::schema()
    }
}

impl ToSchema for WireId {
    fn name() -> std::borrow::Cow<'static, str> {
        "ExtendedPointId".into()
    }
}

/// `GET /`: name and versions.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct VersionInfo {
    /// `quiverdb`.
    pub title: String,
    /// The Qdrant REST API version whose common operations this server speaks (clients check it).
    pub version: String,
    /// QuiverDB's own version.
    pub quiverdb_version: String,
}

/// Every successful reply: `{"result": …, "status": "ok", "time": <seconds>}`.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct Envelope<T> {
    /// The answer.
    pub result: T,
    /// `ok`.
    #[serde(default)]
    pub status: String,
    /// Seconds spent.
    #[serde(default)]
    pub time: f64,
}

/// `{"error": "<message>"}`.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ErrorStatus {
    /// What was wrong (4xx: the field, what was expected and what was given).
    pub error: String,
}

/// Every error reply: `{"status": {"error": "…"}, "time": …}`.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ErrorBody {
    /// The error.
    pub status: ErrorStatus,
    /// Seconds spent.
    #[serde(default)]
    pub time: f64,
}

/// Percent-encodes one path segment (everything but `A-Z a-z 0-9 - . _ ~`).
pub fn segment(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

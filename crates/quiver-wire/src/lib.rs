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
mod embeddings;
mod points;
mod search;

pub use collections::*;
pub use documents::*;
pub use embeddings::*;
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

/// A read token: how far each shard's log must be applied for a read to see a write (`"shard:seq,…"`, e.g.
/// `"0:17,2:40"`). Every write's reply carries one (`read_token`); a read given it through any node waits until
/// the replica it asks has applied that far on each shard. A single node is shard 0, so its tokens are `"0:seq"`
/// and work like `min_seq`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReadToken(pub std::collections::BTreeMap<u32, u64>);

impl ReadToken {
    /// Most shards a token may name.
    pub const MAX_SHARDS: usize = 4096;

    /// Parses `"shard:seq,…"` (an empty string is the empty token); the error says what was expected.
    pub fn parse(s: &str) -> Result<ReadToken, String> {
        let mut out = std::collections::BTreeMap::new();
        for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let parsed = part
                .split_once(':')
                .and_then(|(a, b)| Some((a.trim().parse::<u32>().ok()?, b.trim().parse::<u64>().ok()?)));
            let Some((shard, seq)) = parsed else {
                return Err(format!("\"shard:seq\" pairs separated by commas (like \"0:17,2:40\"), got {part:?}"));
            };
            let e = out.entry(shard).or_insert(0);
            *e = (*e).max(seq);
            if out.len() > Self::MAX_SHARDS {
                return Err(format!("at most {} shards", Self::MAX_SHARDS));
            }
        }
        Ok(ReadToken(out))
    }

    /// The token that is at least both (each shard's higher sequence): what reading after two writes needs.
    pub fn merge(&mut self, other: &ReadToken) {
        for (&s, &q) in &other.0 {
            let e = self.0.entry(s).or_insert(0);
            *e = (*e).max(q);
        }
    }
}

impl std::fmt::Display for ReadToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for (i, (s, q)) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            write!(f, "{s}:{q}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod read_token_tests {
    use super::ReadToken;

    #[test]
    fn parses_what_it_writes_and_keeps_the_highest_sequence_per_shard() {
        let t = ReadToken::parse("2:40, 0:17,2:3").unwrap();
        assert_eq!(t.to_string(), "0:17,2:40");
        assert_eq!(ReadToken::parse(&t.to_string()).unwrap(), t);
        assert_eq!(ReadToken::parse("").unwrap(), ReadToken::default());
        let mut a = ReadToken::parse("0:5,1:9").unwrap();
        a.merge(&ReadToken::parse("1:3,4:1").unwrap());
        assert_eq!(a.to_string(), "0:5,1:9,4:1");
    }

    #[test]
    fn refuses_what_is_not_a_token_naming_the_part() {
        for bad in ["17", "a:1", "0:-1", "0:1:2", "0:1;1:2"] {
            let e = ReadToken::parse(bad).unwrap_err();
            assert!(e.contains("shard:seq"), "{bad}: {e}");
        }
    }
}

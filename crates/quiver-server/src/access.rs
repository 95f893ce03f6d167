//! Who may call what. A request's credential (the full API key, the read-only key, or a signed token) becomes an
//! [`Access`]; [`RULES`] gives every route the access it needs; the auth middleware compares the two, and the
//! handlers that list collections (`GET /collections`, `/metrics`, `/telemetry`) show only what the access may read.
//!
//! Tokens are JWTs signed with HS256 using the full API key as the secret (as Qdrant does), accepted when the
//! server runs with `jwt_rbac`. Their claims:
//!
//! - `access`: `"m"` (manage: everything), `"r"` (read every collection), or a list of
//!   `{"collection": NAME, "access": "r" | "rw"}`;
//! - `exp` and `nbf` (seconds since the epoch), checked when present.
//!
//! A claim that would restrict a token in a way this server cannot enforce (Qdrant's `value_exists`, a collection
//! entry's `payload`) makes the token invalid rather than silently broader.

use std::collections::BTreeMap;

use axum::http::Method;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::Value;

/// What one collection entry of a token allows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    /// Search, retrieve, scroll, count, info, the change feed, snapshot listing and download.
    Read,
    /// Reads, plus upserts, deletes, payload and index changes, documents, snapshot creation.
    Write,
}

/// What a request's credential allows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Access {
    /// Everything: the full API key, a token with `"access": "m"`, or a server without keys.
    Manage,
    /// Reads of every collection: the read-only key, or a token with `"access": "r"`.
    ReadAll,
    /// The listed collections only, each read or read-write (a token with a list of collections).
    Collections(BTreeMap<String, Level>),
}

impl Access {
    /// Whether this access may read collection `name` (and so see that it exists).
    pub fn can_read(&self, name: &str) -> bool {
        match self {
            Access::Manage | Access::ReadAll => true,
            Access::Collections(m) => m.contains_key(name),
        }
    }

    /// Whether this access may change points, payloads or indexes of collection `name`.
    pub fn can_write(&self, name: &str) -> bool {
        match self {
            Access::Manage => true,
            Access::ReadAll => false,
            Access::Collections(m) => m.get(name) == Some(&Level::Write),
        }
    }

    /// Whether this access may change anything at all (an MCP session without it gets the read tools only).
    pub fn writes_anything(&self) -> bool {
        match self {
            Access::Manage => true,
            Access::ReadAll => false,
            Access::Collections(m) => m.values().any(|l| *l == Level::Write),
        }
    }

    /// Whether this access meets `rule` for the collection in the path (`None` when the route names none).
    pub fn allows(&self, rule: Rule, collection: Option<&str>) -> bool {
        match rule {
            Rule::Open | Rule::Any => true,
            Rule::ReadAll => matches!(self, Access::Manage | Access::ReadAll),
            Rule::Manage => *self == Access::Manage,
            Rule::Read => collection.is_some_and(|c| self.can_read(c)),
            Rule::Write => collection.is_some_and(|c| self.can_write(c)),
        }
    }

    /// How the access is named in a refusal.
    pub fn describe(&self) -> &'static str {
        match self {
            Access::Manage => "full access",
            Access::ReadAll => "the read-only API key (or a read-only token)",
            Access::Collections(_) => "this token",
        }
    }
}

/// What a route needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rule {
    /// Nothing: health probes and the console's static files.
    Open,
    /// Any valid credential; the handler shows only the collections the access may read.
    Any,
    /// Reads of every collection (the cluster's layout names them all).
    ReadAll,
    /// Full access: creating and deleting collections, restoring snapshots, cluster operations.
    Manage,
    /// Reading the collection named in the path (`{collection_name}`).
    Read,
    /// Writing the collection named in the path.
    Write,
}

/// Every route's rule: `(method, route template, rule)`. `HEAD` follows `GET`. A route missing here is refused
/// with 403 when keys are on, and fails the test that walks every route of the OpenAPI document.
pub const RULES: &[(&str, &str, Rule)] = &[
    // Service.
    ("GET", "/", Rule::Any),
    ("GET", "/healthz", Rule::Open),
    ("GET", "/readyz", Rule::Open),
    ("GET", "/metrics", Rule::Any),
    ("GET", "/telemetry", Rule::Any),
    ("GET", "/openapi.json", Rule::Any),
    ("GET", "/console", Rule::Open),
    ("GET", "/console/", Rule::Open),
    ("GET", "/console/{file}", Rule::Open),
    // MCP: the session's tool calls go back through this router with the caller's credential.
    ("POST", "/mcp", Rule::Any),
    ("GET", "/mcp", Rule::Any),
    ("DELETE", "/mcp", Rule::Any),
    // OpenAI-compatible embeddings: runs a model, reads and writes no data.
    ("POST", "/v1/embeddings", Rule::Any),
    ("GET", "/v1/models", Rule::Any),
    // Cluster.
    ("GET", "/cluster", Rule::ReadAll),
    ("POST", "/cluster/rebalance", Rule::Manage),
    ("POST", "/cluster/snapshot", Rule::Manage),
    ("POST", "/cluster/collections/{collection_name}/train", Rule::Manage),
    ("POST", "/cluster/collections/{collection_name}/copy", Rule::Manage),
    ("POST", "/cluster/nodes/{id}/drain", Rule::Manage),
    ("DELETE", "/cluster/nodes/{id}/drain", Rule::Manage),
    ("DELETE", "/cluster/nodes/{id}", Rule::Manage),
    // Collections.
    ("GET", "/collections", Rule::Any),
    ("PUT", "/collections/{collection_name}", Rule::Manage),
    ("DELETE", "/collections/{collection_name}", Rule::Manage),
    ("GET", "/collections/{collection_name}", Rule::Read),
    ("GET", "/collections/{collection_name}/exists", Rule::Read),
    ("GET", "/collections/{collection_name}/map", Rule::Read),
    ("PUT", "/collections/{collection_name}/index", Rule::Write),
    ("DELETE", "/collections/{collection_name}/index/{field_name}", Rule::Write),
    // Points.
    ("PUT", "/collections/{collection_name}/points", Rule::Write),
    ("POST", "/collections/{collection_name}/points", Rule::Read),
    ("GET", "/collections/{collection_name}/points/{id}", Rule::Read),
    ("POST", "/collections/{collection_name}/points/delete", Rule::Write),
    ("POST", "/collections/{collection_name}/points/payload", Rule::Write),
    ("PUT", "/collections/{collection_name}/points/payload", Rule::Write),
    ("POST", "/collections/{collection_name}/points/payload/delete", Rule::Write),
    ("POST", "/collections/{collection_name}/points/payload/clear", Rule::Write),
    ("POST", "/collections/{collection_name}/points/scroll", Rule::Read),
    ("POST", "/collections/{collection_name}/points/count", Rule::Read),
    // Search.
    ("POST", "/collections/{collection_name}/points/search", Rule::Read),
    ("POST", "/collections/{collection_name}/points/search/batch", Rule::Read),
    ("POST", "/collections/{collection_name}/points/search/groups", Rule::Read),
    ("POST", "/collections/{collection_name}/points/query", Rule::Read),
    ("POST", "/collections/{collection_name}/points/query/batch", Rule::Read),
    ("POST", "/collections/{collection_name}/points/query/groups", Rule::Read),
    // Documents.
    ("POST", "/collections/{collection_name}/documents", Rule::Write),
    ("DELETE", "/collections/{collection_name}/documents/{doc_id}", Rule::Write),
    // Change feed.
    ("GET", "/collections/{collection_name}/changes", Rule::Read),
    ("GET", "/collections/{collection_name}/changes/ws", Rule::Read),
    // Snapshots: a download holds every point, so listing and downloading need read access; making and deleting
    // files on the server need write access; replacing a collection from a snapshot needs full access.
    ("POST", "/collections/{collection_name}/snapshots", Rule::Write),
    ("GET", "/collections/{collection_name}/snapshots", Rule::Read),
    ("GET", "/collections/{collection_name}/snapshots/{snapshot_name}", Rule::Read),
    ("DELETE", "/collections/{collection_name}/snapshots/{snapshot_name}", Rule::Write),
    ("POST", "/collections/{collection_name}/snapshots/upload", Rule::Manage),
    ("PUT", "/collections/{collection_name}/snapshots/recover", Rule::Manage),
];

/// The rule of `method route` (`route` is the matched template), if the table has one.
pub fn rule(method: &Method, route: &str) -> Option<Rule> {
    let m = if *method == Method::HEAD { "GET" } else { method.as_str() };
    RULES.iter().find(|(rm, rr, _)| *rm == m && *rr == route).map(|r| r.2)
}

/// Whether `s` has the shape of a JWT (three base64url parts), so a refusal can say "token" rather than "key".
pub fn looks_like_token(s: &str) -> bool {
    let parts: Vec<&str> = s.split('.').collect();
    parts.len() == 3
        && parts[..2].iter().all(|p| !p.is_empty())
        && parts.iter().all(|p| p.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'))
}

/// Signs `claims` as an HS256 JWT with `secret` (what `quiver token` prints).
pub fn sign(claims: &Value, secret: &str) -> String {
    let header = URL_SAFE_NO_PAD.encode(br#"{"alg":"HS256","typ":"JWT"}"#);
    let payload = URL_SAFE_NO_PAD.encode(claims.to_string());
    let input = format!("{header}.{payload}");
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, secret.as_bytes());
    let sig = URL_SAFE_NO_PAD.encode(ring::hmac::sign(&key, input.as_bytes()).as_ref());
    format!("{input}.{sig}")
}

/// Checks `token`'s signature with `secret` and its claims at time `now` (seconds since the epoch), and returns
/// the access it grants. The error says what was wrong, for a 401.
pub fn verify(token: &str, secret: &str, now: f64) -> Result<Access, String> {
    let mut parts = token.split('.');
    let (Some(h), Some(p), Some(s), None) = (parts.next(), parts.next(), parts.next(), parts.next()) else {
        return Err("invalid token: expected three dot-separated base64url parts".into());
    };
    let decode = |what: &str, part: &str| {
        URL_SAFE_NO_PAD
            .decode(part.trim_end_matches('='))
            .map_err(|e| format!("invalid token: {what} is not base64url: {e}"))
    };
    let header: Value = serde_json::from_slice(&decode("the header", h)?)
        .map_err(|e| format!("invalid token: the header is not JSON: {e}"))?;
    match header.get("alg").and_then(Value::as_str) {
        Some("HS256") => {}
        other => return Err(format!("invalid token: expected alg HS256, got {}", other.unwrap_or("none"))),
    }
    let sig = decode("the signature", s)?;
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, secret.as_bytes());
    // Constant-time comparison inside ring.
    ring::hmac::verify(&key, format!("{h}.{p}").as_bytes(), &sig)
        .map_err(|_| "invalid token: the signature does not match this server's key".to_owned())?;
    let claims: Value = serde_json::from_slice(&decode("the payload", p)?)
        .map_err(|e| format!("invalid token: the payload is not JSON: {e}"))?;
    let Some(claims) = claims.as_object() else { return Err("invalid token: the payload is not a JSON object".into()) };
    let time = |name: &str| -> Result<Option<f64>, String> {
        match claims.get(name) {
            None | Some(Value::Null) => Ok(None),
            Some(v) => v
                .as_f64()
                .map(Some)
                .ok_or_else(|| format!("invalid token: claim {name}: expected seconds since the epoch, got {v}")),
        }
    };
    if let Some(exp) = time("exp")?
        && now >= exp
    {
        return Err(format!("token expired {} s ago", (now - exp).ceil() as i64));
    }
    if let Some(nbf) = time("nbf")?
        && now < nbf
    {
        return Err(format!("token not valid for another {} s (nbf)", (nbf - now).ceil() as i64));
    }
    if claims.contains_key("value_exists") {
        return Err("invalid token: claim value_exists is not supported by this server".into());
    }
    parse_access(claims.get("access"))
}

fn parse_access(v: Option<&Value>) -> Result<Access, String> {
    let expected = r#"expected "m", "r" or a list of {"collection": NAME, "access": "r" | "rw"}"#;
    match v {
        Some(Value::String(s)) if s == "m" => Ok(Access::Manage),
        Some(Value::String(s)) if s == "r" => Ok(Access::ReadAll),
        Some(Value::Array(entries)) => {
            let mut m = BTreeMap::new();
            for (i, e) in entries.iter().enumerate() {
                let Some(o) = e.as_object() else {
                    return Err(format!("invalid token: claim access[{i}]: {expected}, got {e}"));
                };
                if let Some(k) = o.keys().find(|k| *k != "collection" && *k != "access") {
                    return Err(format!("invalid token: claim access[{i}].{k} is not supported by this server"));
                }
                let name = o
                    .get("collection")
                    .and_then(Value::as_str)
                    .ok_or_else(|| format!("invalid token: claim access[{i}].collection: expected a name, got {e}"))?;
                let level = match o.get("access").and_then(Value::as_str) {
                    Some("r") => Level::Read,
                    Some("rw") => Level::Write,
                    _ => {
                        return Err(format!(
                            r#"invalid token: claim access[{i}].access: expected "r" or "rw", got {e}"#
                        ));
                    }
                };
                let l = m.entry(name.to_owned()).or_insert(level);
                *l = (*l).max(level);
            }
            Ok(Access::Collections(m))
        }
        Some(other) => Err(format!("invalid token: claim access: {expected}, got {other}")),
        None => Err(format!("invalid token: claim access is missing ({expected})")),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    const KEY: &str = "server-secret-key";

    #[test]
    fn signed_tokens_round_trip() {
        let t = sign(&json!({"access": "m"}), KEY);
        assert!(looks_like_token(&t));
        assert_eq!(verify(&t, KEY, 0.0), Ok(Access::Manage));
        let t = sign(&json!({"access": "r", "exp": 100}), KEY);
        assert_eq!(verify(&t, KEY, 99.0), Ok(Access::ReadAll));
        let t =
            sign(&json!({"access": [{"collection": "a", "access": "r"}, {"collection": "a", "access": "rw"}]}), KEY);
        let a = verify(&t, KEY, 0.0).unwrap();
        assert!(a.can_write("a") && a.can_read("a") && !a.can_read("b") && a.writes_anything());
    }

    #[test]
    fn bad_tokens_are_refused_with_the_reason() {
        let t = sign(&json!({"access": "m"}), KEY);
        assert!(verify(&t, "another-key", 0.0).unwrap_err().contains("signature"));
        let (hp, _) = t.rsplit_once('.').unwrap();
        let forged = format!("{hp}.{}", URL_SAFE_NO_PAD.encode([0u8; 32]));
        assert!(verify(&forged, KEY, 0.0).unwrap_err().contains("signature"));
        // alg none: never accepted, whatever the signature.
        let none = format!(
            "{}.{}.",
            URL_SAFE_NO_PAD.encode(br#"{"alg":"none"}"#),
            URL_SAFE_NO_PAD.encode(br#"{"access":"m"}"#)
        );
        assert!(verify(&none, KEY, 0.0).unwrap_err().contains("HS256"));
        let exp = sign(&json!({"access": "m", "exp": 100}), KEY);
        assert!(verify(&exp, KEY, 100.0).unwrap_err().contains("expired"));
        let nbf = sign(&json!({"access": "m", "nbf": 100}), KEY);
        assert!(verify(&nbf, KEY, 50.0).unwrap_err().contains("nbf"));
        for (claims, needle) in [
            (json!({}), "missing"),
            (json!({"access": "rw"}), "claim access"),
            (json!({"access": [{"collection": "a", "access": "w"}]}), "access[0].access"),
            (json!({"access": [{"access": "r"}]}), "access[0].collection"),
            (json!({"access": [{"collection": "a", "access": "r", "payload": {"x": 1}}]}), "payload"),
            (json!({"access": "m", "value_exists": {}}), "value_exists"),
            (json!({"access": "m", "exp": "tomorrow"}), "exp"),
        ] {
            let e = verify(&sign(&claims, KEY), KEY, 0.0).unwrap_err();
            assert!(e.contains(needle), "{claims}: {e}");
        }
        assert!(verify("a.b", KEY, 0.0).is_err());
        assert!(verify("!!.??.**", KEY, 0.0).is_err());
        assert!(!looks_like_token("plain-api-key"));
    }

    #[test]
    fn rules_and_access_agree() {
        let a = Access::Collections(BTreeMap::from([("a".to_owned(), Level::Write), ("b".to_owned(), Level::Read)]));
        assert!(a.allows(Rule::Write, Some("a")) && !a.allows(Rule::Write, Some("b")));
        assert!(a.allows(Rule::Read, Some("b")) && !a.allows(Rule::Read, Some("c")));
        assert!(!a.allows(Rule::ReadAll, None) && !a.allows(Rule::Manage, Some("a")));
        assert!(Access::ReadAll.allows(Rule::Read, Some("x")) && !Access::ReadAll.allows(Rule::Write, Some("x")));
        assert!(!Access::ReadAll.allows(Rule::Read, None), "a Read rule without a collection in the path");
        assert_eq!(rule(&Method::HEAD, "/collections"), Some(Rule::Any));
        assert_eq!(rule(&Method::PATCH, "/collections"), None);
        let mut seen = std::collections::HashSet::new();
        for (m, r, _) in RULES {
            assert!(seen.insert((m, r)), "{m} {r} is listed twice");
        }
    }
}

//! `quiver token`: makes a signed access token (JWT, HS256) for a server started with `--jwt-rbac`, carrying
//! per-collection read or read-write access and an expiry. The server checks it with the same full API key.

use anyhow::Result;
use clap::Args;
use serde_json::{Value, json};

/// Flags of `quiver token`.
#[derive(Args, Debug)]
pub struct TokenArgs {
    /// The server's full API key: the token is signed with it.
    #[arg(long, env = "QUIVER_API_KEY", hide_env_values = true)]
    pub api_key: String,
    /// Read access to this collection (search, retrieve, scroll, count, info, change feed, snapshot downloads).
    /// Repeat for more collections.
    #[arg(long = "read", value_name = "COLLECTION")]
    pub read: Vec<String>,
    /// Read and write access to this collection (also upserts, deletes, payloads, indexes, documents, snapshot
    /// creation). Repeat for more collections.
    #[arg(long = "write", value_name = "COLLECTION")]
    pub write: Vec<String>,
    /// Read access to every collection (like the read-only key).
    #[arg(long, conflicts_with_all = ["read", "write", "manage"])]
    pub read_all: bool,
    /// Full access (like the API key itself: also creating and deleting collections, restores, cluster changes).
    #[arg(long, conflicts_with_all = ["read", "write", "read_all"])]
    pub manage: bool,
    /// How long the token is valid: a number followed by s, m, h or d, or `never`.
    #[arg(long, default_value = "24h", value_name = "DURATION")]
    pub expires_in: String,
}

/// Seconds in `s` (`90s`, `15m`, `24h`, `30d`), or `None` for `never`.
fn lifetime(s: &str) -> Result<Option<u64>> {
    if s == "never" {
        return Ok(None);
    }
    let bad = || {
        crate::usage::<Option<u64>>(format!(
            "invalid --expires-in: expected a number followed by s, m, h or d (e.g. 24h), or `never`; got {s:?}"
        ))
    };
    let Some(unit) = s.chars().last() else { return bad() };
    let scale = match unit {
        's' => 1,
        'm' => 60,
        'h' => 3600,
        'd' => 86_400,
        _ => return bad(),
    };
    match s[..s.len() - 1].parse::<u64>() {
        Ok(n) if n > 0 => Ok(n.checked_mul(scale)),
        _ => bad(),
    }
}

/// The claims the flags ask for, at time `now` (seconds since the epoch).
pub fn claims(args: &TokenArgs, now: u64) -> Result<Value> {
    let access = if args.manage {
        json!("m")
    } else if args.read_all {
        json!("r")
    } else if args.read.is_empty() && args.write.is_empty() {
        return crate::usage("say what the token may do: --read C, --write C (repeatable), --read-all or --manage");
    } else {
        let mut entries: Vec<Value> = Vec::new();
        for (names, level) in [(&args.write, "rw"), (&args.read, "r")] {
            for n in names {
                if n.is_empty() {
                    return crate::usage("invalid --read/--write: expected a collection name, got an empty string");
                }
                entries.push(json!({"collection": n, "access": level}));
            }
        }
        Value::Array(entries)
    };
    let mut c = json!({"access": access, "iat": now});
    if let Some(secs) = lifetime(&args.expires_in)? {
        c["exp"] = json!(now.saturating_add(secs));
    }
    Ok(c)
}

/// Prints the token on stdout.
pub fn run(args: TokenArgs) -> Result<()> {
    if args.api_key.len() < 8 {
        return crate::usage(format!(
            "invalid --api-key: expected the server's key (at least 8 characters), got {} characters",
            args.api_key.len()
        ));
    }
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs());
    println!("{}", quiver_server::access::sign(&claims(&args, now)?, &args.api_key));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(read: &[&str], write: &[&str], expires: &str) -> TokenArgs {
        TokenArgs {
            api_key: "server-key-1".into(),
            read: read.iter().map(|s| (*s).to_owned()).collect(),
            write: write.iter().map(|s| (*s).to_owned()).collect(),
            read_all: false,
            manage: false,
            expires_in: expires.into(),
        }
    }

    #[test]
    fn claims_follow_the_flags() {
        let c = claims(&args(&["b"], &["a"], "2h"), 1000).unwrap();
        assert_eq!(c["access"], json!([{"collection": "a", "access": "rw"}, {"collection": "b", "access": "r"}]));
        assert_eq!(c["exp"], 1000 + 7200);
        let c = claims(&args(&["b"], &[], "never"), 1000).unwrap();
        assert!(c.get("exp").is_none());
        assert!(claims(&args(&[], &[], "1h"), 0).is_err());
        for bad in ["", "h", "0h", "1w", "-1h", "x"] {
            assert!(claims(&args(&["a"], &[], bad), 0).is_err(), "{bad}");
        }
    }
}

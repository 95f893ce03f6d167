//! The cluster's errors. Each says whether the caller ([`Error::is_user_error`]) or the system is at fault; the
//! server maps them to statuses in one place.

use std::fmt::Display;

/// Result alias.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What went wrong.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Bad input, naming the field.
    #[error("invalid {field}: expected {expected}, got {got}")]
    InvalidArgument {
        /// The field.
        field: String,
        /// What it should have been.
        expected: String,
        /// What it was.
        got: String,
    },
    /// A collection of that name exists in the cluster.
    #[error("collection {name:?} already exists")]
    AlreadyExists {
        /// Its name.
        name: String,
    },
    /// No collection of that name in the cluster.
    #[error("collection {name:?} does not exist")]
    NotFound {
        /// Its name.
        name: String,
    },
    /// A compare-and-set lost: the key or the log moved on since it was read.
    #[error("conflict on {key}: {detail}")]
    Conflict {
        /// The key or stream.
        key: String,
        /// What was found.
        detail: String,
    },
    /// A shard map entry that does not decode.
    #[error("corrupt {what}: {detail}")]
    Corrupt {
        /// Which entry.
        what: String,
        /// The decoder's complaint.
        detail: String,
    },
    /// NATS refused or failed a request.
    #[error("NATS: {what}: {detail}")]
    Nats {
        /// What was being done.
        what: String,
        /// The client's error.
        detail: String,
    },
    /// The NATS servers are not configured as the cluster mode requires.
    #[error("unsafe NATS configuration: {0}")]
    UnsafeNats(String),
    /// No replica answered in time.
    #[error("unavailable: {0}")]
    Unavailable(String),
    /// The local engine failed.
    #[error(transparent)]
    Engine(#[from] quiver_engine::Error),
}

impl Error {
    /// A bad argument.
    pub fn invalid(field: impl Display, expected: impl Display, got: impl Display) -> Error {
        Error::InvalidArgument { field: field.to_string(), expected: expected.to_string(), got: got.to_string() }
    }

    /// A NATS failure while doing `what`.
    pub fn nats(what: impl Display, e: impl Display) -> Error {
        Error::Nats { what: what.to_string(), detail: e.to_string() }
    }

    /// True when the caller is at fault.
    pub fn is_user_error(&self) -> bool {
        match self {
            Error::InvalidArgument { .. } | Error::AlreadyExists { .. } | Error::NotFound { .. } => true,
            Error::Engine(e) => e.is_user_error(),
            _ => false,
        }
    }
}

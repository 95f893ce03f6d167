//! The one error type of `quiver-engine`. Variants carry the offending field and values, and
//! [`Error::is_user_error`] says whose fault it is (the server maps that to 4xx vs 5xx in one place).

use std::path::PathBuf;

/// Result alias for this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong in `quiver-engine`.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A collection configuration or request argument that is not acceptable.
    #[error("invalid {field}: expected {expected}, got {got}")]
    InvalidArgument {
        /// The field at fault (`dimension`, `index.params.m`, `limit`, ...).
        field: String,
        /// What would have been accepted.
        expected: String,
        /// What was given.
        got: String,
    },
    /// One point of a write batch is invalid; the whole batch was rejected and nothing was written.
    #[error("point {point}: invalid {field}: {reason}")]
    InvalidPoint {
        /// The point's id as the user wrote it.
        point: String,
        /// The field at fault (`vector`, `vector[3]`, `payload`, `id`).
        field: String,
        /// What is wrong, with the numbers.
        reason: String,
    },
    /// A filter that cannot be evaluated (unknown operator, wrong value type, too deep).
    #[error("invalid filter at {path}: {reason}")]
    InvalidFilter {
        /// Where in the filter (`must[0].range.gte`).
        path: String,
        /// What is wrong.
        reason: String,
    },
    /// No collection of that name.
    #[error("collection {name:?} does not exist")]
    CollectionNotFound {
        /// The name asked for.
        name: String,
    },
    /// A collection of that name already exists.
    #[error("collection {name:?} already exists")]
    CollectionExists {
        /// The name.
        name: String,
    },
    /// A point that a write addresses does not exist.
    #[error("point {id} does not exist")]
    PointNotFound {
        /// The id.
        id: String,
    },
    /// The collection could not be opened (corrupt or unreadable files); other collections keep working.
    #[error("collection {name:?} is unavailable: {reason}")]
    Unavailable {
        /// The collection.
        name: String,
        /// Why (the error met while opening it).
        reason: String,
    },
    /// Engine-level bytes (operation records, segment metadata) that fail a structural check.
    #[error("corrupt {} at offset {offset}: {detail}", file.display())]
    Corrupt {
        /// The file holding the bad bytes.
        file: PathBuf,
        /// Offset of the bad structure.
        offset: u64,
        /// What failed.
        detail: String,
    },
    /// A read asked to see sequence `wanted`, which was not applied within the time allowed.
    #[error("operation {wanted} not applied within {waited_ms} ms (applied: {applied})")]
    NotYetApplied {
        /// The sequence number asked for.
        wanted: u64,
        /// The highest applied sequence number.
        applied: u64,
        /// How long the read waited.
        waited_ms: u64,
    },
    /// The collection was closed or dropped while the call was in progress.
    #[error("collection {name:?} is closed")]
    Closed {
        /// The collection.
        name: String,
    },
    /// The change feed no longer holds every operation after `requested`: the oldest were dropped to stay within
    /// `change_feed_bytes` (or the collection was reopened since). The reader must resynchronise (e.g. scroll
    /// the collection) and resume from a sequence number at or above `oldest - 1`.
    #[error(
        "changes after sequence {requested} are no longer retained (the change feed starts after {}); resynchronise and resume from there",
        oldest.saturating_sub(1)
    )]
    ChangesGone {
        /// The `after` asked for.
        requested: u64,
        /// The oldest sequence number the feed can still serve (`after` may be `oldest - 1` or more).
        oldest: u64,
    },
    /// No snapshot archive of that name for that collection.
    #[error("snapshot {name:?} of collection {collection:?} does not exist")]
    SnapshotNotFound {
        /// The collection.
        collection: String,
        /// The archive name asked for.
        name: String,
    },
    /// A snapshot archive that cannot be restored: damaged (a checksum or structure check failed), truncated, of
    /// an unknown version, not holding a collection, or holding one that does not open. Nothing was changed.
    #[error("snapshot {name:?} cannot be restored: {reason}")]
    InvalidSnapshot {
        /// The archive (`upload` for an upload being stored).
        name: String,
        /// What is wrong.
        reason: String,
    },
    /// The data directory is in use: another [`crate::Database`] (in this or another process) holds its lock.
    #[error("data directory is in use by another process (lock {} is held)", path.display())]
    Locked {
        /// The lock file.
        path: PathBuf,
    },
    /// The database's memory budget would be exceeded: the create or write was refused and changed nothing.
    #[error(
        "memory budget exceeded: {what} on collection {collection:?} needs an estimated {} of heap; the other collections hold {} of the {} budget",
        human_bytes(*needed), human_bytes(*others), human_bytes(*limit)
    )]
    MemoryBudget {
        /// The collection.
        collection: String,
        /// The refused call (`create`, `upsert`).
        what: String,
        /// The collection's estimated heap bytes after the call.
        needed: u64,
        /// What the other collections' estimates add up to.
        others: u64,
        /// The budget.
        limit: u64,
    },
    /// An error from the storage layer (I/O, corruption, a poisoned WAL writer).
    #[error(transparent)]
    Storage(#[from] quiver_storage::Error),
    /// An error from an index.
    #[error(transparent)]
    Index(#[from] quiver_index::Error),
    /// An I/O error outside the storage layer (the database catalog).
    #[error("I/O error on {}: {cause}", file.display())]
    Io {
        /// The file or directory.
        file: PathBuf,
        /// What the operating system said.
        #[source]
        cause: std::io::Error,
    },
}

/// `1536` → `1.5 KiB`; below 1 KiB in bytes.
pub(crate) fn human_bytes(b: u64) -> String {
    const UNITS: [&str; 4] = ["KiB", "MiB", "GiB", "TiB"];
    if b < 1024 {
        return format!("{b} B");
    }
    let mut v = b as f64 / 1024.0;
    let mut unit = 0;
    while v >= 1024.0 && unit + 1 < UNITS.len() {
        v /= 1024.0;
        unit += 1;
    }
    format!("{v:.1} {}", UNITS[unit])
}

impl Error {
    /// An invalid argument's field put under `prefix` (`embedding.model` → `more_vectors.body.embedding.model`);
    /// other errors unchanged.
    pub fn prefixed(self, prefix: &str) -> Error {
        match self {
            Error::InvalidArgument { field, expected, got } => {
                Error::InvalidArgument { field: format!("{prefix}.{field}"), expected, got }
            }
            other => other,
        }
    }

    /// True when the caller's input caused the error (a 4xx); false for a fault of the system (disk, corruption).
    pub fn is_user_error(&self) -> bool {
        match self {
            Error::InvalidArgument { .. }
            | Error::InvalidPoint { .. }
            | Error::InvalidFilter { .. }
            | Error::CollectionNotFound { .. }
            | Error::CollectionExists { .. }
            | Error::PointNotFound { .. }
            | Error::ChangesGone { .. }
            | Error::SnapshotNotFound { .. }
            | Error::InvalidSnapshot { .. } => true,
            Error::Unavailable { .. }
            | Error::Corrupt { .. }
            | Error::NotYetApplied { .. }
            | Error::Closed { .. }
            | Error::Locked { .. }
            | Error::MemoryBudget { .. }
            | Error::Io { .. } => false,
            Error::Storage(e) => e.is_user_error(),
            Error::Index(e) => e.is_user_error(),
        }
    }

    /// True when the device (or quota) is full, or the database's memory budget would be exceeded: the call was
    /// refused and changed nothing; it succeeds once space is freed (a 507 over HTTP).
    pub fn is_storage_full(&self) -> bool {
        use std::io::ErrorKind;
        match self {
            Error::MemoryBudget { .. } => true,
            Error::Storage(e) => e.is_storage_full(),
            Error::Io { cause, .. } => matches!(cause.kind(), ErrorKind::StorageFull | ErrorKind::QuotaExceeded),
            _ => false,
        }
    }

    /// True when stored bytes failed a checksum or structure check (a corrupt file, never served).
    pub fn is_corruption(&self) -> bool {
        match self {
            Error::Corrupt { .. } | Error::InvalidSnapshot { .. } => true,
            Error::Storage(e) => {
                matches!(e, quiver_storage::Error::Corrupt { .. } | quiver_storage::Error::UnsupportedVersion { .. })
            }
            Error::Index(e) => matches!(
                e,
                quiver_index::Error::Corrupt { .. }
                    | quiver_index::Error::ChecksumMismatch { .. }
                    | quiver_index::Error::UnsupportedVersion { .. }
            ),
            _ => false,
        }
    }

    pub(crate) fn invalid(field: impl Into<String>, expected: impl Into<String>, got: impl ToString) -> Error {
        Error::InvalidArgument { field: field.into(), expected: expected.into(), got: got.to_string() }
    }

    #[allow(dead_code)] // used by the filter module
    pub(crate) fn filter(path: impl Into<String>, reason: impl Into<String>) -> Error {
        Error::InvalidFilter { path: path.into(), reason: reason.into() }
    }
}

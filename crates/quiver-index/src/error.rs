//! The one error type of `quiver-index`. Variants carry the numbers, not sentences, and [`Error::is_user_error`]
//! says whose fault it is: a caller's bad input, or a corrupt file / failing disk.

use std::path::PathBuf;

/// Result alias for this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong in `quiver-index`.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A vector or query has the wrong number of components.
    #[error("dimension mismatch: expected {expected}, got {got}")]
    DimensionMismatch {
        /// The index's dimension.
        expected: usize,
        /// The offending vector's length.
        got: usize,
    },
    /// A dimension outside `1..=MAX_DIM`.
    #[error("invalid dimension {got}: expected 1..={max}")]
    InvalidDimension {
        /// The requested dimension.
        got: usize,
        /// The largest supported dimension.
        max: usize,
    },
    /// A NaN or infinite component.
    #[error("vector component {position} is {value}: expected a finite number")]
    NonFinite {
        /// Index of the first offending component.
        position: usize,
        /// Its value.
        value: f32,
    },
    /// A zero vector cannot be normalised for the cosine metric.
    #[error("vector has zero norm: cosine distance needs a non-zero vector")]
    ZeroVector,
    /// The same id twice where ids must be unique.
    #[error("duplicate id {id}")]
    DuplicateId {
        /// The repeated id.
        id: u64,
    },
    /// Ids and vectors given in different numbers.
    #[error("{ids} ids given for {vectors} vectors")]
    IdCountMismatch {
        /// Number of ids.
        ids: usize,
        /// Number of vectors.
        vectors: usize,
    },
    /// A parameter with a value of the wrong type or range.
    #[error("parameter `{name}`: expected {expected}, got `{got}`")]
    InvalidParameter {
        /// Parameter name.
        name: String,
        /// What would have been accepted.
        expected: String,
        /// What was given.
        got: String,
    },
    /// A parameter the index does not know.
    #[error("unknown parameter `{name}` for {context}; known: {known}")]
    UnknownParameter {
        /// Parameter name.
        name: String,
        /// The index (and build/search) it was given to.
        context: String,
        /// The parameters that are accepted there.
        known: String,
    },
    /// An index kind or metric name that does not exist.
    #[error("unknown {what} `{got}`; known: {known}")]
    UnknownName {
        /// `index kind` or `metric`.
        what: &'static str,
        /// What was given.
        got: String,
        /// The accepted names.
        known: String,
    },
    /// Bytes that do not decode: truncated, altered, or not what they claim to be.
    #[error("corrupt {what} at byte {offset}: {detail}")]
    Corrupt {
        /// What was being decoded.
        what: &'static str,
        /// Byte offset where decoding failed.
        offset: u64,
        /// What was wrong.
        detail: String,
    },
    /// Bytes whose checksum does not match.
    #[error("checksum mismatch in {what}: stored {stored:#010x}, computed {computed:#010x}")]
    ChecksumMismatch {
        /// What was being decoded.
        what: &'static str,
        /// Checksum written with the data.
        stored: u32,
        /// Checksum of the bytes read.
        computed: u32,
    },
    /// A format version this build cannot read.
    #[error("unsupported {what} format version {got}; this build reads version {supported}")]
    UnsupportedVersion {
        /// What was being decoded.
        what: &'static str,
        /// Version found.
        got: u16,
        /// Version this build reads.
        supported: u16,
    },
    /// A dataset file (fvecs / ivecs / bvecs) that is malformed at a given row.
    #[error("{}: row {row}: {detail}", file.display())]
    Dataset {
        /// The file.
        file: PathBuf,
        /// Zero-based row number.
        row: usize,
        /// What was wrong.
        detail: String,
    },
    /// An I/O failure on a file.
    #[error("{}: {cause}", file.display())]
    Io {
        /// The file.
        file: PathBuf,
        /// The underlying error (in the message, so not also chained as a source).
        cause: std::io::Error,
    },
}

impl Error {
    /// True when the caller's input is at fault (a 4xx in HTTP terms); false for corruption and I/O failures.
    pub fn is_user_error(&self) -> bool {
        match self {
            Error::DimensionMismatch { .. }
            | Error::InvalidDimension { .. }
            | Error::NonFinite { .. }
            | Error::ZeroVector
            | Error::DuplicateId { .. }
            | Error::IdCountMismatch { .. }
            | Error::InvalidParameter { .. }
            | Error::UnknownParameter { .. }
            | Error::UnknownName { .. } => true,
            Error::Corrupt { .. }
            | Error::ChecksumMismatch { .. }
            | Error::UnsupportedVersion { .. }
            | Error::Dataset { .. }
            | Error::Io { .. } => false,
        }
    }

    pub(crate) fn invalid(name: &str, expected: impl Into<String>, got: impl ToString) -> Self {
        Error::InvalidParameter { name: name.to_owned(), expected: expected.into(), got: got.to_string() }
    }
}

//! The one error type of `quiver-storage`. Variants carry data (file, offset, numbers), and
//! [`Error::is_user_error`] says whose fault it is: a caller's bad input, or a corrupt file / failing disk.

use std::path::PathBuf;

/// Result alias for this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong in `quiver-storage`.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The operating system failed an operation on a file or directory.
    #[error("I/O error on {}: {cause}", file.display())]
    Io {
        /// The file or directory the operation was on.
        file: PathBuf,
        /// What the operating system said.
        #[source]
        cause: std::io::Error,
    },
    /// Bytes on disk that fail a checksum or a structural check. Never served.
    #[error("corrupt {} at offset {offset}: {detail}", file.display())]
    Corrupt {
        /// The file holding the bad bytes.
        file: PathBuf,
        /// Byte offset of the first bad byte (or of the structure that failed its check).
        offset: u64,
        /// What check failed.
        detail: String,
    },
    /// A file written by a format version this build does not read.
    #[error("{} has {what} version {found}; this build reads version {supported}", file.display())]
    UnsupportedVersion {
        /// The file.
        file: PathBuf,
        /// Which structure (`WAL file header`, `segment`, ...).
        what: &'static str,
        /// Version found on disk.
        found: u16,
        /// Version this build reads.
        supported: u16,
    },
    /// A file that is expected to exist does not.
    #[error("{} does not exist", file.display())]
    NotFound {
        /// The missing file.
        file: PathBuf,
    },
    /// A file name that is not a plain name inside its directory (empty, `..`, a separator, a NUL, too long).
    #[error("invalid file name {name:?}: {reason}")]
    InvalidName {
        /// The rejected name.
        name: String,
        /// Why it was rejected.
        reason: &'static str,
    },
    /// A WAL sequence number that is not above the last one appended.
    #[error("sequence number {got} is not above the last appended sequence number {last}")]
    SequenceOrder {
        /// The highest sequence number already in the log.
        last: u64,
        /// The rejected sequence number.
        got: u64,
    },
    /// A record, block or entry larger than the format allows.
    #[error("{what} of {len} bytes exceeds the limit of {max} bytes")]
    TooLarge {
        /// What was too large.
        what: &'static str,
        /// Its length.
        len: u64,
        /// The limit.
        max: u64,
    },
    /// A caller-supplied argument outside its valid range.
    #[error("invalid argument `{name}`: {detail}")]
    InvalidArgument {
        /// The argument.
        name: &'static str,
        /// What was wrong with it.
        detail: String,
    },
    /// A WAL writer that failed a write or fsync earlier. It accepts nothing more: the failed records were never
    /// acknowledged, and an fsync that failed once is never retried as a success. Reopen the WAL to recover.
    #[error("WAL writer stopped after an earlier failure ({cause}); reopen the WAL to recover")]
    Poisoned {
        /// The first failure, as text.
        cause: String,
    },
    /// No space left on the device (or the disk quota is used up). Nothing the failed call wrote is acknowledged;
    /// a WAL append that fails this way is rolled back and the log goes on once space is freed.
    #[error("no space left on the device for {} ({cause}); the write was not applied — free space and retry", file.display())]
    StorageFull {
        /// The file being written.
        file: PathBuf,
        /// What the operating system said.
        #[source]
        cause: std::io::Error,
    },
    /// A simulated crash of a [`crate::MemDirectory`] invalidated this handle (test seam only).
    #[error("file handle for {} was invalidated by a simulated crash", file.display())]
    StaleHandle {
        /// The file the handle was for.
        file: PathBuf,
    },
}

impl Error {
    /// `true` when the caller's input was at fault (bad name, out-of-order sequence, oversized record, bad argument);
    /// `false` for a corrupt file, a failing disk or an unsupported format version.
    pub fn is_user_error(&self) -> bool {
        matches!(
            self,
            Error::InvalidName { .. }
                | Error::SequenceOrder { .. }
                | Error::TooLarge { .. }
                | Error::InvalidArgument { .. }
        )
    }

    /// `true` for [`Error::Corrupt`].
    pub fn is_corruption(&self) -> bool {
        matches!(self, Error::Corrupt { .. })
    }

    /// `true` for [`Error::StorageFull`]: the device or quota is full, and freeing space lets writes go on.
    pub fn is_storage_full(&self) -> bool {
        matches!(self, Error::StorageFull { .. })
    }

    /// The same error, never reported as [`Error::StorageFull`]: for a failure after which the written state is
    /// unknown (a failed fsync or rename, a write that could not be rolled back), so callers stop rather than go on
    /// once space is freed.
    pub(crate) fn fatal(self) -> Error {
        match self {
            Error::StorageFull { file, cause } => Error::Io { file, cause },
            e => e,
        }
    }

    /// Builds [`Error::Io`], or [`Error::StorageFull`] when the operating system said the device or quota is full.
    pub(crate) fn io(file: impl Into<PathBuf>, cause: std::io::Error) -> Error {
        use std::io::ErrorKind;
        if matches!(cause.kind(), ErrorKind::StorageFull | ErrorKind::QuotaExceeded) {
            Error::StorageFull { file: file.into(), cause }
        } else {
            Error::Io { file: file.into(), cause }
        }
    }

    /// Builds [`Error::Corrupt`].
    pub(crate) fn corrupt(file: impl Into<PathBuf>, offset: u64, detail: impl Into<String>) -> Error {
        Error::Corrupt { file: file.into(), offset, detail: detail.into() }
    }
}

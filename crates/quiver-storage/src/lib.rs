//! QuiverDB storage: bytes made durable. Knows nothing about vectors, collections or payloads.
//!
//! The engine above treats every write as an *operation* with a strictly increasing sequence number. It appends
//! the operation to the [`Wal`] (through the [`OperationLog`] trait, so a replicated log can replace it later),
//! acknowledges it once durable, periodically writes immutable [`segment`]s holding the effects up to some sequence
//! number, and commits "these segments + WAL checkpoint" in the [`manifest`]. On start it opens the manifest, then
//! replays the WAL above the checkpoint. Every on-disk byte is described in `docs/format.md`.
//!
//! # Code map
//!
//! | module | what |
//! |---|---|
//! | [`error`] | the crate's one error type; [`Error::is_user_error`] |
//! | [`dir`] | the disk seam: [`Directory`] / [`WritableFile`] and the real file system [`FsDirectory`] |
//! | [`mem`] | [`MemDirectory`], the in-memory twin with live vs durable bytes, simulated crashes and fault injection |
//! | [`mapped`] | read-only file views (mmap or aligned heap copy): the crate's only `unsafe` |
//! | [`wal`] | write-ahead log: record codec ([`wal::record`]), writer with durability modes and group commit, recovery, read-only [`wal::scan`] |
//! | [`manifest`] | the atomic commit point: live segments and the WAL checkpoint |
//! | [`segment`] | immutable files of typed, checksummed, 64-byte-aligned blocks with a footer index |
//! | [`snapshot`] | one-file archives of a consistent set of files, and verified restore |
//!
//! # Example
//!
//! ```
//! use std::sync::Arc;
//! use quiver_storage::{CrashMode, Error, Manifest, ManifestStore, MemDirectory, Wal, WalOptions};
//!
//! # fn main() -> quiver_storage::Result<()> {
//! let dir = MemDirectory::new(7);
//! let (wal, _) = Wal::open(Arc::new(dir.clone()), WalOptions::default())?;
//! wal.append(1, b"insert a")?; // durable (fsynced) when this returns
//! wal.append(2, b"insert b")?;
//! let (mut manifests, _) = ManifestStore::open(Arc::new(dir.clone()))?;
//! manifests.commit(&Manifest { wal_checkpoint: 1, segments: vec![], user: vec![] })?;
//!
//! dir.crash(CrashMode::TearLastSector); // power cut
//! let (_, manifest) = ManifestStore::open(Arc::new(dir.clone()))?;
//! let checkpoint = manifest.map_or(0, |m| m.wal_checkpoint);
//! let mut replayed = Vec::new();
//! Wal::open_and_replay(Arc::new(dir), WalOptions::default(), checkpoint, |seq, payload| {
//!     replayed.push((seq, payload.to_vec()));
//!     Ok::<(), Error>(())
//! })?;
//! assert_eq!(replayed, vec![(2, b"insert b".to_vec())]);
//! # Ok(())
//! # }
//! ```

pub mod dir;
pub mod error;
pub mod manifest;
#[allow(unsafe_code)]
pub mod mapped;
pub mod mem;
pub mod segment;
pub mod snapshot;
pub mod wal;

pub use dir::{Directory, FsDirectory, WritableFile};
pub use error::{Error, Result};
pub use manifest::{Manifest, ManifestStore};
pub use mapped::Mapped;
pub use mem::{CrashMode, MemDirectory};
pub use segment::{BlockKind, Segment, SegmentWriter};
pub use snapshot::SnapshotFile;
pub use wal::{Durability, OperationLog, RecoveryReport, Wal, WalOptions};

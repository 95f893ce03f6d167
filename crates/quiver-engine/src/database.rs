//! The database: a directory of collections. `<root>/collections/<name>/` holds one collection (its config, WAL,
//! manifest and segment files). Creating a collection prepares `.tmp-<name>` and renames it into place; dropping
//! renames it to `.dropped-<name>-<n>` before removing it — so a crash leaves either the whole collection or none,
//! and leftovers are cleaned at open. A collection that fails to open is reported unavailable with the reason;
//! the others work.
//!
//! `<root>/LOCK` is held with an exclusive advisory lock ([`std::fs::File::try_lock`]) for as long as the
//! [`Database`] lives: a second open of the same root, from this process or another, fails with
//! [`Error::Locked`] (after waiting up to a second for a lock that is being released). Dropping the
//! `Database` closes its collections, then releases the lock.
//!
//! `<root>/snapshots/<name>/` holds the snapshot archives of collection `<name>`; creating, listing, uploading and
//! restoring them is in [`crate::snapshot`].

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use parking_lot::{Mutex, RwLock};
use quiver_storage::{Directory, FsDirectory};
use serde::Serialize;

use crate::clock::{Clock, SystemClock};
use crate::collection::Collection;
use crate::config::CollectionConfig;
use crate::error::{Error, Result};

/// Longest collection name.
pub const MAX_NAME_LEN: usize = 64;

#[derive(Debug, Clone)]
pub(crate) enum Slot {
    Open(Collection),
    Unavailable(String),
}

/// A collection as listed by [`Database::list`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CollectionStatus {
    /// Name.
    pub name: String,
    /// `None` when open; the reason when unavailable.
    pub unavailable: Option<String>,
}

/// Name of the lock file in the data directory.
pub const LOCK_FILE: &str = "LOCK";

/// An open database. Cheap to share behind an `Arc`; every method is safe from many threads.
///
/// It holds the data directory's lock until it is dropped; dropping it also closes every collection it opened
/// (handles cloned from it then answer [`Error::Closed`]), so no writer outlives the lock.
#[derive(Debug)]
pub struct Database {
    pub(crate) root: PathBuf,
    pub(crate) collections: RwLock<BTreeMap<String, Slot>>,
    pub(crate) clock: Arc<dyn Clock>,
    /// The memory budget every collection of this database joins (no limit unless set).
    pub(crate) budget: Arc<crate::budget::MemoryBudget>,
    /// Per collection name: serialises snapshot naming (creation, uploads) and restores.
    pub(crate) admin: Mutex<BTreeMap<String, Arc<Mutex<()>>>>,
    /// The open `LOCK` file; its exclusive lock is released when the file is closed (after the collections).
    _lock: std::fs::File,
}

pub(crate) fn io(file: &Path) -> impl FnOnce(std::io::Error) -> Error + '_ {
    move |cause| Error::Io { file: file.to_owned(), cause }
}

pub(crate) fn sync_dir(path: &Path) -> Result<()> {
    std::fs::File::open(path).and_then(|f| f.sync_all()).map_err(io(path))
}

/// Checks a collection name: 1–64 characters of `A-Z a-z 0-9 _ -`, not starting with `.` or `-`.
pub fn validate_name(name: &str) -> Result<()> {
    let ok = !name.is_empty()
        && name.len() <= MAX_NAME_LEN
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
        && !name.starts_with('-');
    if ok {
        Ok(())
    } else {
        Err(Error::invalid(
            "collection name",
            "1-64 characters of A-Z a-z 0-9 _ - (not starting with -)",
            format!("{name:?}"),
        ))
    }
}

/// How long an open waits for `<root>/LOCK` before reporting [`Error::Locked`]. A lock can outlive its
/// `Database` by a moment: a child process forked by another thread (before its exec closes the inherited
/// descriptor) or a previous server still exiting.
const LOCK_WAIT: std::time::Duration = std::time::Duration::from_millis(1000);

/// Opens (creating) `<root>/LOCK` and takes its exclusive lock, waiting at most [`LOCK_WAIT`] for it.
fn lock_root(root: &Path) -> Result<std::fs::File> {
    let path = root.join(LOCK_FILE);
    let file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&path)
        .map_err(io(&path))?;
    let deadline = std::time::Instant::now() + LOCK_WAIT;
    loop {
        match file.try_lock() {
            Ok(()) => return Ok(file),
            Err(std::fs::TryLockError::WouldBlock) if std::time::Instant::now() < deadline => {
                std::thread::sleep(std::time::Duration::from_millis(10));
            }
            Err(std::fs::TryLockError::WouldBlock) => return Err(Error::Locked { path }),
            Err(std::fs::TryLockError::Error(cause)) => return Err(Error::Io { file: path, cause }),
        }
    }
}

impl Database {
    /// Opens (creating if needed) the database at `root` with the system clock.
    pub fn open(root: impl Into<PathBuf>) -> Result<Database> {
        Database::open_with_clock(root, Arc::new(SystemClock))
    }

    /// Opens the database at `root`, reading time from `clock` (tests move time for TTL and tiering).
    ///
    /// Fails with [`Error::Locked`] while another `Database` (in this or another process) has `root` open.
    pub fn open_with_clock(root: impl Into<PathBuf>, clock: Arc<dyn Clock>) -> Result<Database> {
        let root = root.into();
        std::fs::create_dir_all(&root).map_err(io(&root))?;
        let lock = lock_root(&root)?;
        let cdir = root.join("collections");
        std::fs::create_dir_all(&cdir).map_err(io(&cdir))?;
        crate::snapshot::recover_replaced(&cdir)?;
        crate::snapshot::clean_snapshot_dirs(&root)?;
        let mut collections = BTreeMap::new();
        let mut entries: Vec<_> = std::fs::read_dir(&cdir)
            .map_err(io(&cdir))?
            .filter_map(|e| e.ok())
            .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        entries.sort();
        for name in entries {
            let path = cdir.join(&name);
            if name.starts_with(".tmp-") || name.starts_with(".dropped-") {
                std::fs::remove_dir_all(&path).map_err(io(&path))?;
                continue;
            }
            if validate_name(&name).is_err() {
                continue;
            }
            let slot = match FsDirectory::open(&path)
                .map_err(Error::from)
                .and_then(|d| Collection::open(&name, Arc::new(d), clock.clone()))
            {
                Ok(c) => Slot::Open(c),
                Err(e) => Slot::Unavailable(e.to_string()),
            };
            collections.insert(name, slot);
        }
        let budget = Arc::new(crate::budget::MemoryBudget::default());
        for slot in collections.values() {
            if let Slot::Open(c) = slot {
                c.join_budget(budget.clone());
            }
        }
        Ok(Database {
            root,
            collections: RwLock::new(collections),
            clock,
            budget,
            admin: Mutex::new(BTreeMap::new()),
            _lock: lock,
        })
    }

    /// The data directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Sets the memory budget (heap bytes, `None`: no limit): a create or an upsert whose estimated memory would
    /// take the collections' total past it is refused with [`Error::MemoryBudget`] (see [`crate::budget`]).
    pub fn set_memory_budget(&self, bytes: Option<u64>) {
        self.budget.set_limit(bytes);
    }

    /// The memory budget and each collection's current estimate.
    pub fn memory_budget(&self) -> (Option<u64>, BTreeMap<String, u64>) {
        (self.budget.limit(), self.budget.usage())
    }

    /// Creates collection `name`.
    pub fn create_collection(&self, name: &str, config: CollectionConfig) -> Result<Collection> {
        validate_name(name)?;
        config.validate()?;
        let empty = crate::budget::estimate(&config, 0, 0);
        self.budget.admit(name, empty.heap_bytes, "create")?;
        let mut map = self.collections.write();
        if map.contains_key(name) {
            return Err(Error::CollectionExists { name: name.to_owned() });
        }
        let cdir = self.root.join("collections");
        let tmp = cdir.join(format!(".tmp-{name}"));
        if tmp.exists() {
            std::fs::remove_dir_all(&tmp).map_err(io(&tmp))?;
        }
        std::fs::create_dir(&tmp).map_err(io(&tmp))?;
        let d = FsDirectory::open(&tmp)?;
        Collection::init_dir(name, &d, &config)?;
        drop(d);
        let path = cdir.join(name);
        std::fs::rename(&tmp, &path).map_err(io(&path))?;
        sync_dir(&cdir)?;
        let c = Collection::open(name, Arc::new(FsDirectory::open(&path)?) as Arc<dyn Directory>, self.clock.clone())?;
        c.join_budget(self.budget.clone());
        map.insert(name.to_owned(), Slot::Open(c.clone()));
        Ok(c)
    }

    /// The open collection `name`.
    pub fn collection(&self, name: &str) -> Result<Collection> {
        match self.collections.read().get(name) {
            Some(Slot::Open(c)) => Ok(c.clone()),
            Some(Slot::Unavailable(reason)) => {
                Err(Error::Unavailable { name: name.to_owned(), reason: reason.clone() })
            }
            None => Err(Error::CollectionNotFound { name: name.to_owned() }),
        }
    }

    /// Every collection, with its status.
    pub fn list(&self) -> Vec<CollectionStatus> {
        self.collections
            .read()
            .iter()
            .map(|(name, slot)| CollectionStatus {
                name: name.clone(),
                unavailable: match slot {
                    Slot::Open(_) => None,
                    Slot::Unavailable(r) => Some(r.clone()),
                },
            })
            .collect()
    }

    /// Drops collection `name` and deletes its files (an unavailable one too).
    pub fn drop_collection(&self, name: &str) -> Result<()> {
        let mut map = self.collections.write();
        let Some(slot) = map.remove(name) else {
            return Err(Error::CollectionNotFound { name: name.to_owned() });
        };
        if let Slot::Open(c) = &slot {
            c.close()?;
        }
        self.budget.release(name);
        let cdir = self.root.join("collections");
        let path = cdir.join(name);
        let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos());
        let gone = cdir.join(format!(".dropped-{name}-{nanos}"));
        std::fs::rename(&path, &gone).map_err(io(&path))?;
        sync_dir(&cdir)?;
        std::fs::remove_dir_all(&gone).map_err(io(&gone))?;
        Ok(())
    }

    /// Syncs every collection's WAL and stops their background optimizers (every collection is closed even when
    /// one fails; the first error is returned). Closed collections answer [`Error::Closed`].
    pub fn close(&self) -> Result<()> {
        let mut first = Ok(());
        for slot in self.collections.read().values() {
            if let Slot::Open(c) = slot
                && let Err(e) = c.close()
                && first.is_ok()
            {
                first = Err(e);
            }
        }
        first
    }
}

impl Drop for Database {
    fn drop(&mut self) {
        // Errors here cannot be reported; `close` is the way to see them. The lock is released after this, when
        // the `LOCK` file is closed.
        let _ = self.close();
    }
}

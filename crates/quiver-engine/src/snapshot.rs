//! Snapshots: consistent point-in-time archives of one collection, and restoring them.
//!
//! **Layout.** Archives of collection `c` live in `<root>/snapshots/c/` (outside `collections/`, so they outlive a
//! dropped collection and are never opened as one), named `snap-<unix millis, 16 digits>-<n, 4 digits>.qsnap` like
//! every archive of `quiver_storage::snapshot`. An archive's entries are the collection directory's own file names
//! (`config.json`, the current `MANIFEST-…`, the `seg-….qseg` files it lists, the `wal-….log` files): the
//! collection directory is flat (the storage layer's `Directory`), so no name needs mapping.
//!
//! **Consistency.** [`Database::create_snapshot`] holds the collection's optimizer job lock for the whole archive
//! (no manifest commit, segment removal or WAL truncation can happen; writes go on), and under the writer lock
//! syncs the WAL and records its durable length per file. The archive then holds the newest manifest, the segment
//! files it lists, `config.json` and that WAL prefix: reopened, it is the collection as of the applied sequence
//! number at that instant (operations above the manifest's checkpoint are replayed from the WAL prefix).
//!
//! **Restore.** [`Database::restore_snapshot`] restores the archive (verified whole before anything is written)
//! into `collections/.tmp-<name>.restore`, opens it there once to make sure it opens, then switches: close the
//! collection of that name if any, rename its directory to `collections/.replaced-<name>`, rename the restored one
//! into place, fsync `collections/`, open it, remove the old one. A crash in between is resolved at the next open:
//! `.replaced-<name>` without `<name>` is renamed back (the old collection stays), with `<name>` it is removed (the
//! restore happened); `.tmp-*` directories are removed. If anything fails before the switch, the old collection
//! was never touched; if the restored one fails to open after it, the old one is put back.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use parking_lot::Mutex;
use quiver_storage::snapshot::SnapshotFile;
use quiver_storage::{Directory, FsDirectory};
use serde::Serialize;

use crate::collection::{CONFIG_FILE, Collection};
use crate::database::{Database, Slot, io, sync_dir, validate_name};
use crate::error::{Error, Result};

/// Directory (under the database root) holding one directory of archives per collection.
pub const SNAPSHOTS_DIR: &str = "snapshots";
/// Suffix of the directory a restore is staged in (`collections/.tmp-<name>.restore`).
const RESTORE_SUFFIX: &str = ".restore";
/// Prefix of a collection directory being replaced by a restore (`collections/.replaced-<name>`).
const REPLACED_PREFIX: &str = ".replaced-";
/// Prefix of the staging directory of an upload (`snapshots/<collection>/.upload-<n>`).
const UPLOAD_PREFIX: &str = ".upload-";
/// The name an upload is verified under inside its staging directory.
const STAGED_NAME: &str = "snap-0000000000000000-0000.qsnap";

/// One archive of a collection.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SnapshotInfo {
    /// The collection it belongs to (the directory it is listed under).
    pub collection: String,
    /// File name (`snap-<millis>-<n>.qsnap`); what [`Database::snapshot_path`] and
    /// [`Database::delete_snapshot`] take.
    pub name: String,
    /// Archive size in bytes.
    pub size_bytes: u64,
    /// When it was created or uploaded (unix ms, from its name).
    pub created_unix_ms: u64,
    /// The applied sequence number it holds: known only on the value [`Database::create_snapshot`] returns.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub applied_seq: Option<u64>,
}

/// Checks that `name` is exactly an archive name this engine generates (`snap-<16 digits>-<4 to 10 digits>.qsnap`,
/// nothing before or after: no path) and returns its unix millis.
pub fn parse_snapshot_name(name: &str) -> Result<u64> {
    let bad = || Error::invalid("snapshot name", "snap-<16 digits>-<4 to 10 digits>.qsnap", format!("{name:?}"));
    let mid = name.strip_prefix("snap-").and_then(|r| r.strip_suffix(".qsnap")).ok_or_else(bad)?;
    let (millis, n) = mid.split_once('-').ok_or_else(bad)?;
    let digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    if millis.len() != 16 || !digits(millis) || !(4..=10).contains(&n.len()) || !digits(n) {
        return Err(bad());
    }
    millis.parse().map_err(|_| bad())
}

/// A storage error met reading an archive: the archive's fault (a user error) when it is damaged or not an
/// archive, the system's otherwise.
fn archive_error(name: &str, e: quiver_storage::Error) -> Error {
    match e {
        quiver_storage::Error::Corrupt { .. }
        | quiver_storage::Error::UnsupportedVersion { .. }
        | quiver_storage::Error::InvalidName { .. }
        | quiver_storage::Error::TooLarge { .. } => {
            Error::InvalidSnapshot { name: name.to_owned(), reason: e.to_string() }
        }
        other => Error::Storage(other),
    }
}

fn has_digits(s: Option<&str>, n: usize) -> bool {
    s.is_some_and(|d| d.len() == n && d.bytes().all(|b| b.is_ascii_digit()))
}

/// Checks that an archive holds a collection: `config.json` and nothing but collection files.
fn check_entries(archive: &str, names: &[String]) -> Result<()> {
    let bad = |reason: String| Error::InvalidSnapshot { name: archive.to_owned(), reason };
    if !names.iter().any(|n| n == CONFIG_FILE) {
        return Err(bad(format!("holds no {CONFIG_FILE}: not a collection snapshot")));
    }
    for n in names {
        let known = n == CONFIG_FILE
            || has_digits(n.strip_prefix("MANIFEST-"), 20)
            || has_digits(n.strip_prefix("seg-").and_then(|r| r.strip_suffix(".qseg")), 20)
            || has_digits(n.strip_prefix("wal-").and_then(|r| r.strip_suffix(".log")), 20);
        if !known {
            return Err(bad(format!("holds {n:?}, which is not a collection file")));
        }
    }
    Ok(())
}

fn now_millis() -> u128 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis())
}

/// Resolves a restore interrupted by a crash: `.replaced-<name>` goes back to `<name>` when that is missing (the
/// switch had not happened), and is removed otherwise.
pub(crate) fn recover_replaced(cdir: &Path) -> Result<()> {
    let mut changed = false;
    for entry in std::fs::read_dir(cdir).map_err(io(cdir))? {
        let entry = entry.map_err(io(cdir))?;
        let fname = entry.file_name().to_string_lossy().into_owned();
        let Some(name) = fname.strip_prefix(REPLACED_PREFIX) else { continue };
        let path = entry.path();
        let target = cdir.join(name);
        if validate_name(name).is_ok() && !target.exists() {
            std::fs::rename(&path, &target).map_err(io(&path))?;
        } else {
            std::fs::remove_dir_all(&path).map_err(io(&path))?;
        }
        changed = true;
    }
    if changed {
        sync_dir(cdir)?;
    }
    Ok(())
}

/// Removes what interrupted snapshot writes and uploads left in `<root>/snapshots/*/`.
pub(crate) fn clean_snapshot_dirs(root: &Path) -> Result<()> {
    let sdir = root.join(SNAPSHOTS_DIR);
    let Ok(dirs) = std::fs::read_dir(&sdir) else { return Ok(()) };
    for d in dirs {
        let d = d.map_err(io(&sdir))?;
        if !d.file_type().is_ok_and(|t| t.is_dir()) {
            continue;
        }
        let dir = d.path();
        let mut changed = false;
        for e in std::fs::read_dir(&dir).map_err(io(&dir))? {
            let e = e.map_err(io(&dir))?;
            let name = e.file_name().to_string_lossy().into_owned();
            let path = e.path();
            if name.starts_with(UPLOAD_PREFIX) && e.file_type().is_ok_and(|t| t.is_dir()) {
                std::fs::remove_dir_all(&path).map_err(io(&path))?;
                changed = true;
            } else if name.ends_with(quiver_storage::dir::TEMP_SUFFIX) {
                std::fs::remove_file(&path).map_err(io(&path))?;
                changed = true;
            }
        }
        if changed {
            sync_dir(&dir)?;
        }
    }
    Ok(())
}

impl Collection {
    /// Writes a consistent archive of this collection into `dest` (see the module docs); returns its name and the
    /// applied sequence number it holds. Writes go on meanwhile; optimizer jobs wait until it is written.
    pub(crate) fn write_snapshot(&self, dest: &dyn Directory) -> Result<(String, u64)> {
        let inner = &self.inner;
        // While this is held no job commits a manifest, removes a segment file or truncates the WAL.
        let _jobs = inner.jobs.lock();
        if inner.closed.load(Ordering::Acquire) {
            return Err(Error::Closed { name: inner.name.clone() });
        }
        let (wal, applied) = {
            let _w = inner.writer.lock();
            (inner.wal.durable_files()?, *inner.applied.lock())
        };
        let mut files = vec![SnapshotFile::whole(CONFIG_FILE)];
        // The newest manifest on disk is the one a reopen reads.
        let manifest = inner.dir.list()?.into_iter().filter(|n| has_digits(n.strip_prefix("MANIFEST-"), 20)).max();
        if let Some(name) = manifest {
            let (m, _) = quiver_storage::manifest::decode(&inner.dir.file_path(&name), &inner.dir.read(&name)?)?;
            files.push(SnapshotFile::whole(name));
            files.extend(m.segments.iter().map(|id| SnapshotFile::whole(quiver_storage::segment::file_name(*id))));
        }
        files.extend(wal.into_iter().map(|(name, len)| SnapshotFile { name, len: Some(len) }));
        let name = quiver_storage::snapshot::create(inner.dir.as_ref(), &files, dest)?;
        Ok((name, applied))
    }
}

impl Database {
    fn admin_lock(&self, collection: &str) -> Arc<Mutex<()>> {
        self.admin.lock().entry(collection.to_owned()).or_default().clone()
    }

    fn snapshot_dir(&self, collection: &str) -> PathBuf {
        self.root.join(SNAPSHOTS_DIR).join(collection)
    }

    /// Creates `<root>/snapshots/<collection>/` if needed, durably.
    fn ensure_snapshot_dir(&self, collection: &str) -> Result<PathBuf> {
        let dir = self.snapshot_dir(collection);
        if !dir.is_dir() {
            std::fs::create_dir_all(&dir).map_err(io(&dir))?;
            sync_dir(&self.root)?;
            sync_dir(&self.root.join(SNAPSHOTS_DIR))?;
        }
        Ok(dir)
    }

    fn snapshot_info(&self, collection: &str, name: &str) -> Result<SnapshotInfo> {
        let created_unix_ms = parse_snapshot_name(name)?;
        let path = self.snapshot_dir(collection).join(name);
        let meta = std::fs::metadata(&path).map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => {
                Error::SnapshotNotFound { collection: collection.to_owned(), name: name.to_owned() }
            }
            _ => Error::Io { file: path.clone(), cause: e },
        })?;
        if !meta.is_file() {
            return Err(Error::SnapshotNotFound { collection: collection.to_owned(), name: name.to_owned() });
        }
        Ok(SnapshotInfo {
            collection: collection.to_owned(),
            name: name.to_owned(),
            size_bytes: meta.len(),
            created_unix_ms,
            applied_seq: None,
        })
    }

    /// Writes a consistent point-in-time archive of collection `collection` into
    /// `<root>/snapshots/<collection>/` and returns it (with the applied sequence number it holds). Writes to the
    /// collection go on meanwhile; its optimizer waits until the archive is written.
    pub fn create_snapshot(&self, collection: &str) -> Result<SnapshotInfo> {
        validate_name(collection)?;
        let c = self.collection(collection)?;
        let lock = self.admin_lock(collection);
        let _naming = lock.lock();
        let dir = self.ensure_snapshot_dir(collection)?;
        let dest = FsDirectory::open(&dir)?;
        let (name, applied) = c.write_snapshot(&dest)?;
        let mut info = self.snapshot_info(collection, &name)?;
        info.applied_seq = Some(applied);
        Ok(info)
    }

    /// The archives of `collection`, oldest first (also those of a collection since dropped: archives outlive
    /// it). Empty when there are none.
    pub fn list_snapshots(&self, collection: &str) -> Result<Vec<SnapshotInfo>> {
        validate_name(collection)?;
        let dir = self.snapshot_dir(collection);
        let entries = match std::fs::read_dir(&dir) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(Error::Io { file: dir, cause: e }),
        };
        let mut out = Vec::new();
        for e in entries {
            let e = e.map_err(io(&dir))?;
            let Ok(name) = e.file_name().into_string() else { continue };
            if parse_snapshot_name(&name).is_err() || !e.file_type().is_ok_and(|t| t.is_file()) {
                continue;
            }
            match self.snapshot_info(collection, &name) {
                Ok(info) => out.push(info),
                // Deleted meanwhile.
                Err(Error::SnapshotNotFound { .. }) => {}
                Err(other) => return Err(other),
            }
        }
        out.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(out)
    }

    /// The path of archive `name` of `collection` (to stream it, or to pass to [`Database::restore_snapshot`]).
    /// `name` must be exactly a generated archive name ([`Error::InvalidArgument`] naming `snapshot name`
    /// otherwise, so no path can escape the directory); a missing one is [`Error::SnapshotNotFound`].
    pub fn snapshot_path(&self, collection: &str, name: &str) -> Result<PathBuf> {
        validate_name(collection)?;
        self.snapshot_info(collection, name)?;
        Ok(self.snapshot_dir(collection).join(name))
    }

    /// Deletes archive `name` of `collection` (same name rules and errors as [`Database::snapshot_path`]).
    pub fn delete_snapshot(&self, collection: &str, name: &str) -> Result<()> {
        let path = self.snapshot_path(collection, name)?;
        let lock = self.admin_lock(collection);
        let _naming = lock.lock();
        std::fs::remove_file(&path).map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => {
                Error::SnapshotNotFound { collection: collection.to_owned(), name: name.to_owned() }
            }
            _ => Error::Io { file: path.clone(), cause: e },
        })?;
        sync_dir(&self.snapshot_dir(collection))
    }

    /// Stores an uploaded archive read from `reader` as a new archive of `collection` (which need not exist yet)
    /// under a freshly generated name, and returns it; [`Database::restore_snapshot`] can then restore it. The
    /// bytes are written into a staging directory, fsynced, verified whole (a damaged or foreign file is
    /// [`Error::InvalidSnapshot`] and is not kept), then renamed into place. The caller bounds the size (e.g. with
    /// [`std::io::Read::take`]); an error reading `reader` is an [`Error::Io`] and nothing is kept.
    pub fn save_uploaded_snapshot(&self, collection: &str, reader: &mut dyn std::io::Read) -> Result<SnapshotInfo> {
        static UPLOADS: AtomicU64 = AtomicU64::new(0);
        validate_name(collection)?;
        let dir = self.ensure_snapshot_dir(collection)?;
        let staging = dir.join(format!(
            "{UPLOAD_PREFIX}{}-{}-{}",
            now_millis(),
            std::process::id(),
            UPLOADS.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir(&staging).map_err(io(&staging))?;
        let res = self.stage_upload(collection, &dir, &staging, reader);
        // Best effort: a leftover staging directory is removed at the next open.
        let _ = std::fs::remove_dir_all(&staging);
        let name = res?;
        self.snapshot_info(collection, &name)
    }

    fn stage_upload(
        &self,
        collection: &str,
        dir: &Path,
        staging: &Path,
        reader: &mut dyn std::io::Read,
    ) -> Result<String> {
        let path = staging.join(STAGED_NAME);
        let mut file = std::io::BufWriter::new(std::fs::File::create(&path).map_err(io(&path))?);
        std::io::copy(reader, &mut file).map_err(io(&path))?;
        let file = file.into_inner().map_err(|e| Error::Io { file: path.clone(), cause: e.into_error() })?;
        file.sync_all().map_err(io(&path))?;
        drop(file);
        let sdir = FsDirectory::open(staging)?;
        let entries = quiver_storage::snapshot::verify(&sdir, STAGED_NAME).map_err(|e| archive_error("upload", e))?;
        check_entries("upload", &entries.into_iter().map(|e| e.name).collect::<Vec<_>>())?;
        let lock = self.admin_lock(collection);
        let _naming = lock.lock();
        let millis = now_millis();
        let name = (0u32..10_000)
            .map(|n| format!("snap-{millis:016}-{n:04}.qsnap"))
            .find(|n| !dir.join(n).exists() && !dir.join(format!("{n}{}", quiver_storage::dir::TEMP_SUFFIX)).exists())
            .ok_or_else(|| Error::invalid("snapshot name", "a free name", "10000 archives in one millisecond"))?;
        let target = dir.join(&name);
        std::fs::rename(&path, &target).map_err(io(&path))?;
        sync_dir(dir)?;
        Ok(name)
    }

    /// Restores the archive at `archive_path` as collection `collection`, replacing the collection of that name
    /// if there is one (its open handles then answer [`Error::Closed`] and its change-feed listeners hear
    /// [`crate::CLOSED_SEQ`]) or creating it; the restored collection takes this name whatever it was called when
    /// snapshotted. The archive's file name must be a generated one (`snap-<millis>-<n>.qsnap`, as
    /// [`Database::snapshot_path`] and [`Database::save_uploaded_snapshot`] give); it is verified whole and
    /// restored into a staging directory that is opened once before anything of the existing collection is
    /// touched, so a damaged, truncated or foreign archive is [`Error::InvalidSnapshot`] and leaves the existing
    /// collection serving. The switch itself is crash-safe (see the module docs).
    pub fn restore_snapshot(&self, collection: &str, archive_path: &Path) -> Result<Collection> {
        validate_name(collection)?;
        let Some(archive) = archive_path.file_name().and_then(|n| n.to_str()) else {
            return Err(Error::invalid(
                "snapshot name",
                "a path ending in snap-<16 digits>-<4 to 10 digits>.qsnap",
                archive_path.display(),
            ));
        };
        parse_snapshot_name(archive)?;
        if !archive_path.is_file() {
            return Err(Error::SnapshotNotFound { collection: collection.to_owned(), name: archive.to_owned() });
        }
        let parent = match archive_path.parent() {
            Some(p) if !p.as_os_str().is_empty() => p,
            _ => Path::new("."),
        };
        let adir = FsDirectory::open(parent)?;
        let lock = self.admin_lock(collection);
        let _restoring = lock.lock();
        let cdir = self.root.join("collections");
        let staging = cdir.join(format!(".tmp-{collection}{RESTORE_SUFFIX}"));
        if staging.exists() {
            std::fs::remove_dir_all(&staging).map_err(io(&staging))?;
        }
        std::fs::create_dir(&staging).map_err(io(&staging))?;
        if let Err(e) = self.stage_restore(collection, &adir, archive, &staging) {
            // Best effort: a leftover staging directory is removed at the next open.
            let _ = std::fs::remove_dir_all(&staging);
            return Err(e);
        }
        sync_dir(&cdir)?;
        self.switch_in(collection, &cdir, &staging)
    }

    /// Restores the archive into `staging` and opens it there once, to be sure it opens.
    fn stage_restore(&self, collection: &str, adir: &FsDirectory, archive: &str, staging: &Path) -> Result<()> {
        let target = FsDirectory::open(staging)?;
        let names = quiver_storage::snapshot::restore(adir, archive, &target).map_err(|e| archive_error(archive, e))?;
        check_entries(archive, &names)?;
        let c = Collection::open(collection, Arc::new(target), self.clock.clone()).map_err(|e| match e {
            Error::Io { .. } | Error::Storage(quiver_storage::Error::Io { .. }) => e,
            other => Error::InvalidSnapshot { name: archive.to_owned(), reason: format!("does not open: {other}") },
        })?;
        c.close()
    }

    /// Replaces (or creates) collection `name` with the prepared directory `staging`.
    fn switch_in(&self, name: &str, cdir: &Path, staging: &Path) -> Result<Collection> {
        let mut map = self.collections.write();
        if let Some(Slot::Open(old)) = map.get(name) {
            // Its WAL is synced by close; an error there does not matter any more: it is being replaced.
            let _ = old.close();
        }
        let path = cdir.join(name);
        let replaced = cdir.join(format!("{REPLACED_PREFIX}{name}"));
        let had_old = path.exists();
        let switched = (|| -> Result<()> {
            if had_old {
                if replaced.exists() {
                    std::fs::remove_dir_all(&replaced).map_err(io(&replaced))?;
                }
                std::fs::rename(&path, &replaced).map_err(io(&path))?;
                sync_dir(cdir)?;
            }
            std::fs::rename(staging, &path).map_err(io(staging))?;
            sync_dir(cdir)
        })();
        let opened = switched.and_then(|()| {
            let d = FsDirectory::open(&path)?;
            Collection::open(name, Arc::new(d), self.clock.clone())
        });
        match opened {
            Ok(c) => {
                c.join_budget(self.budget.clone());
                map.insert(name.to_owned(), Slot::Open(c.clone()));
                if had_old {
                    // Best effort: a leftover is removed at the next open (`<name>` exists, so it is not restored).
                    let _ = std::fs::remove_dir_all(&replaced);
                }
                Ok(c)
            }
            Err(e) => {
                // Put the old collection (or nothing) back.
                let rollback = (|| -> Result<()> {
                    if replaced.exists() {
                        if path.exists() {
                            let gone = cdir.join(format!(".dropped-{name}-restore-{}", now_millis()));
                            std::fs::rename(&path, &gone).map_err(io(&path))?;
                            sync_dir(cdir)?;
                            let _ = std::fs::remove_dir_all(&gone);
                        }
                        std::fs::rename(&replaced, &path).map_err(io(&replaced))?;
                    } else if !had_old && path.exists() {
                        std::fs::remove_dir_all(&path).map_err(io(&path))?;
                    }
                    sync_dir(cdir)
                })();
                let _ = std::fs::remove_dir_all(staging);
                if had_old {
                    let slot = match rollback.and_then(|()| {
                        let d = FsDirectory::open(&path)?;
                        Collection::open(name, Arc::new(d), self.clock.clone())
                    }) {
                        Ok(c) => {
                            c.join_budget(self.budget.clone());
                            Slot::Open(c)
                        }
                        Err(e2) => Slot::Unavailable(e2.to_string()),
                    };
                    map.insert(name.to_owned(), slot);
                }
                Err(e)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn only_generated_names_are_accepted() {
        assert_eq!(parse_snapshot_name("snap-0001700000000000-0000.qsnap").unwrap(), 1_700_000_000_000);
        parse_snapshot_name("snap-0001700000000000-0000012345.qsnap").unwrap();
        for bad in [
            "",
            "../x",
            "a/b",
            "snap-1.qsnap/../../etc",
            "snap-1-0000.qsnap",
            "snap-0001700000000000-000.qsnap",
            "snap-0001700000000000-0000.qsnap.tmp",
            "snap-0001700000000000-0000.qsnap/",
            "/snap-0001700000000000-0000.qsnap",
            "snap-000170000000000a-0000.qsnap",
            "snap-0001700000000000_0000.qsnap",
            "snap-0001700000000000-00000000000.qsnap",
        ] {
            let e = parse_snapshot_name(bad).unwrap_err();
            assert!(matches!(&e, Error::InvalidArgument { field, .. } if field == "snapshot name"), "{bad:?}: {e}");
            assert!(e.is_user_error());
        }
    }

    #[test]
    fn archives_must_hold_only_collection_files() {
        let ok = |names: &[&str]| check_entries("a", &names.iter().map(|s| s.to_string()).collect::<Vec<_>>());
        ok(&[
            "config.json",
            "MANIFEST-00000000000000000003",
            "seg-00000000000000000002.qseg",
            "wal-00000000000000000001.log",
        ])
        .unwrap();
        assert!(matches!(ok(&["wal-00000000000000000001.log"]), Err(Error::InvalidSnapshot { .. })));
        assert!(matches!(ok(&["config.json", "passwd"]), Err(Error::InvalidSnapshot { .. })));
        assert!(matches!(ok(&["config.json", "seg-1.qseg"]), Err(Error::InvalidSnapshot { .. })));
    }
}

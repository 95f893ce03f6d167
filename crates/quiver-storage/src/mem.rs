//! [`MemDirectory`]: the in-memory twin of [`crate::FsDirectory`] that keeps *live* bytes (what a running process
//! reads back) apart from *durable* bytes (what survives a power cut), for file contents and for the directory
//! entries themselves. [`MemDirectory::crash`] throws away what was not made durable — all of it, a random prefix,
//! or a random prefix whose last sector is torn — and leaves the directory as a restarted machine would see it.
//!
//! Model:
//! - each file is an inode with `live` and `durable` contents; [`WritableFile::sync`] copies live to durable;
//! - the name → inode table also exists twice; create/rename/remove change the live table and are queued;
//!   [`Directory::sync_dir`] makes the live table durable. A crash applies a (possibly empty, in random modes
//!   random-length) prefix of the queued operations to the durable table, in order;
//! - after a crash every handle opened before it fails with [`Error::StaleHandle`];
//! - faults can be injected: the next `n` file syncs fail ([`MemDirectory::fail_next_syncs`]), or the machine
//!   "stops" after `n` more mutating operations ([`MemDirectory::halt_after`]) so a test can crash between any two,
//!   or the "disk" holds at most so many bytes ([`MemDirectory::set_capacity`]): a write past it stores what fits
//!   and fails with [`Error::StorageFull`], like a full file system.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

use crate::dir::{Directory, WritableFile, check_name};
use crate::error::{Error, Result};
use crate::mapped::Mapped;

/// Sector size used by [`CrashMode::TearLastSector`].
pub const SECTOR: usize = 512;

/// What a simulated crash keeps of the bytes and directory operations that were not yet durable.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CrashMode {
    /// Nothing that was not synced survives.
    DropUnsynced,
    /// Each file keeps a random prefix of its unsynced appended bytes; a random prefix of the unsynced directory
    /// operations survives.
    KeepRandomPrefix,
    /// Like [`CrashMode::KeepRandomPrefix`], but the last sector of each kept unsynced range holds garbage.
    TearLastSector,
}

/// The in-memory twin of a directory. Cloning gives another handle to the same directory.
#[derive(Debug, Clone)]
pub struct MemDirectory {
    state: Arc<Mutex<State>>,
    root: PathBuf,
}

#[derive(Debug, Default)]
struct Inode {
    live: Vec<u8>,
    durable: Vec<u8>,
}

#[derive(Debug)]
enum DirOp {
    Link(String, u64),
    Unlink(String),
    Rename(String, String),
}

#[derive(Debug)]
struct State {
    inodes: HashMap<u64, Inode>,
    live: BTreeMap<String, u64>,
    durable: BTreeMap<String, u64>,
    pending: Vec<DirOp>,
    next_inode: u64,
    epoch: u64,
    rng: SplitMix64,
    fail_syncs: u32,
    file_syncs: u64,
    dir_syncs: u64,
    /// Mutating operations performed so far.
    ops: u64,
    /// When set, mutating operations number `halt_at` and later fail without effect (the machine "stopped").
    halt_at: Option<u64>,
    /// When set, the most bytes all live files may hold together.
    capacity: Option<u64>,
}

impl State {
    /// Bytes of the files that have a name (a removed file's space counts as freed at once).
    fn used_bytes(&self) -> u64 {
        let linked: std::collections::HashSet<u64> = self.live.values().copied().collect();
        linked.iter().filter_map(|ino| self.inodes.get(ino)).map(|i| i.live.len() as u64).sum()
    }

    /// Counts one mutating operation; fails it if the simulated machine has halted.
    fn step(&mut self, path: &Path) -> Result<()> {
        if self.halt_at.is_some_and(|h| self.ops >= h) {
            return Err(Error::io(path, std::io::Error::other("simulated power cut: the machine has stopped")));
        }
        self.ops += 1;
        Ok(())
    }
}

/// A small seeded generator (SplitMix64) so crash outcomes are reproducible from the directory's seed.
#[derive(Debug, Clone)]
struct SplitMix64(u64);

impl SplitMix64 {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `0..=n`.
    fn up_to(&mut self, n: usize) -> usize {
        (self.next() % (n as u64 + 1)) as usize
    }
}

impl MemDirectory {
    /// An empty directory whose crashes draw from a generator seeded with `seed`.
    pub fn new(seed: u64) -> MemDirectory {
        let state = State {
            inodes: HashMap::new(),
            live: BTreeMap::new(),
            durable: BTreeMap::new(),
            pending: Vec::new(),
            next_inode: 1,
            epoch: 0,
            rng: SplitMix64(seed),
            fail_syncs: 0,
            file_syncs: 0,
            dir_syncs: 0,
            ops: 0,
            halt_at: None,
            capacity: None,
        };
        MemDirectory { state: Arc::new(Mutex::new(state)), root: PathBuf::from(format!("mem:{seed}")) }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock cannot leave `State` half-updated in a way that matters for a test seam.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Simulates a power cut and restart: see [`CrashMode`]. Handles opened before now become stale.
    pub fn crash(&self, mode: CrashMode) {
        let mut st = self.lock();
        let st = &mut *st;
        // Directory entries: a prefix of the pending operations survives.
        let keep_ops = match mode {
            CrashMode::DropUnsynced => 0,
            _ => st.rng.up_to(st.pending.len()),
        };
        for op in st.pending.drain(..).take(keep_ops) {
            match op {
                DirOp::Link(name, ino) => {
                    st.durable.insert(name, ino);
                }
                DirOp::Unlink(name) => {
                    st.durable.remove(&name);
                }
                DirOp::Rename(from, to) => {
                    if let Some(ino) = st.durable.remove(&from) {
                        st.durable.insert(to, ino);
                    }
                }
            }
        }
        // File contents: durable bytes, plus maybe a prefix of what was appended since the last sync.
        let mut inos: Vec<u64> = st.inodes.keys().copied().collect();
        inos.sort_unstable();
        for ino in inos {
            let Some(inode) = st.inodes.get_mut(&ino) else { continue };
            let extends = inode.live.len() > inode.durable.len() && inode.live.starts_with(&inode.durable);
            if mode != CrashMode::DropUnsynced && extends {
                let start = inode.durable.len();
                let kept = st.rng.up_to(inode.live.len() - start);
                let end = start + kept;
                let mut bytes = inode.live[..end].to_vec();
                if mode == CrashMode::TearLastSector && kept > 0 {
                    let torn_from = ((end - 1) / SECTOR * SECTOR).max(start);
                    for b in &mut bytes[torn_from..end] {
                        *b = st.rng.next() as u8;
                    }
                }
                inode.durable = bytes;
            }
            inode.live.clone_from(&inode.durable);
        }
        st.live = st.durable.clone();
        let reachable: std::collections::HashSet<u64> = st.live.values().copied().collect();
        st.inodes.retain(|ino, _| reachable.contains(ino));
        st.epoch += 1;
        st.halt_at = None;
    }

    /// From now on, mutating operations (write, sync, create, rename, remove, truncate, sync_dir) fail without
    /// effect once `n` more have run, as if the machine stopped there. [`MemDirectory::crash`] clears it. A crash
    /// sweep runs a script once to count [`MemDirectory::ops`], then again halting after each count in turn.
    pub fn halt_after(&self, n: u64) {
        let mut st = self.lock();
        st.halt_at = Some(st.ops + n);
    }

    /// Mutating operations performed so far.
    pub fn ops(&self) -> u64 {
        self.lock().ops
    }

    /// Limits the bytes all named live files may hold together; `None` lifts the limit. A write
    /// that would pass it stores the bytes that fit, then fails with [`Error::StorageFull`].
    pub fn set_capacity(&self, bytes: Option<u64>) {
        self.lock().capacity = bytes;
    }

    /// Bytes all named live files hold together.
    pub fn used_bytes(&self) -> u64 {
        self.lock().used_bytes()
    }

    /// The next `n` file syncs fail with an I/O error (and make nothing durable).
    pub fn fail_next_syncs(&self, n: u32) {
        self.lock().fail_syncs = n;
    }

    /// Number of successful file syncs so far.
    pub fn file_syncs(&self) -> u64 {
        self.lock().file_syncs
    }

    /// Number of directory syncs so far.
    pub fn dir_syncs(&self) -> u64 {
        self.lock().dir_syncs
    }

    /// Overwrites bytes of `name` in place, live and durable (test helper: simulates media corruption).
    pub fn corrupt(&self, name: &str, offset: usize, f: impl FnOnce(&mut [u8])) -> Result<()> {
        let mut st = self.lock();
        let ino = *st.live.get(name).ok_or_else(|| Error::NotFound { file: self.file_path(name) })?;
        let inode = st.inodes.get_mut(&ino).ok_or_else(|| Error::NotFound { file: self.file_path(name) })?;
        let live_len = inode.live.len();
        if offset > live_len {
            return Err(Error::InvalidArgument {
                name: "offset",
                detail: format!("{offset} > file length {live_len}"),
            });
        }
        f(&mut inode.live[offset..]);
        inode.durable.clone_from(&inode.live);
        Ok(())
    }

    fn ino(&self, st: &State, name: &str) -> Result<u64> {
        check_name(name)?;
        st.live.get(name).copied().ok_or_else(|| Error::NotFound { file: self.file_path(name) })
    }

    fn handle(&self, st: &State, name: &str, ino: u64) -> MemFile {
        let len = st.inodes.get(&ino).map_or(0, |i| i.live.len() as u64);
        MemFile { dir: self.clone(), ino, epoch: st.epoch, path: self.file_path(name), len }
    }
}

impl Directory for MemDirectory {
    fn root(&self) -> &Path {
        &self.root
    }

    fn list(&self) -> Result<Vec<String>> {
        Ok(self.lock().live.keys().cloned().collect())
    }

    fn exists(&self, name: &str) -> Result<bool> {
        check_name(name)?;
        Ok(self.lock().live.contains_key(name))
    }

    fn file_len(&self, name: &str) -> Result<u64> {
        let st = self.lock();
        let ino = self.ino(&st, name)?;
        Ok(st.inodes.get(&ino).map_or(0, |i| i.live.len() as u64))
    }

    fn read(&self, name: &str) -> Result<Vec<u8>> {
        let st = self.lock();
        let ino = self.ino(&st, name)?;
        Ok(st.inodes.get(&ino).map(|i| i.live.clone()).unwrap_or_default())
    }

    fn read_range(&self, name: &str, offset: u64, len: usize) -> Result<Vec<u8>> {
        let st = self.lock();
        let ino = self.ino(&st, name)?;
        let bytes = st.inodes.get(&ino).map(|i| &i.live[..]).unwrap_or_default();
        let start = usize::try_from(offset).unwrap_or(usize::MAX).min(bytes.len());
        let end = start.saturating_add(len).min(bytes.len());
        Ok(bytes[start..end].to_vec())
    }

    fn create(&self, name: &str) -> Result<Box<dyn WritableFile>> {
        check_name(name)?;
        let mut st = self.lock();
        st.step(&self.file_path(name))?;
        let ino = st.next_inode;
        st.next_inode += 1;
        st.inodes.insert(ino, Inode::default());
        st.live.insert(name.to_owned(), ino);
        st.pending.push(DirOp::Link(name.to_owned(), ino));
        Ok(Box::new(self.handle(&st, name, ino)))
    }

    fn open_append(&self, name: &str) -> Result<Box<dyn WritableFile>> {
        let st = self.lock();
        let ino = self.ino(&st, name)?;
        Ok(Box::new(self.handle(&st, name, ino)))
    }

    fn rename(&self, from: &str, to: &str) -> Result<()> {
        check_name(to)?;
        let mut st = self.lock();
        let ino = self.ino(&st, from)?;
        st.step(&self.file_path(from))?;
        st.live.remove(from);
        st.live.insert(to.to_owned(), ino);
        st.pending.push(DirOp::Rename(from.to_owned(), to.to_owned()));
        Ok(())
    }

    fn remove(&self, name: &str) -> Result<()> {
        let mut st = self.lock();
        self.ino(&st, name)?;
        st.step(&self.file_path(name))?;
        st.live.remove(name);
        st.pending.push(DirOp::Unlink(name.to_owned()));
        Ok(())
    }

    fn truncate(&self, name: &str, len: u64) -> Result<()> {
        let mut st = self.lock();
        let ino = self.ino(&st, name)?;
        st.step(&self.file_path(name))?;
        if let Some(inode) = st.inodes.get_mut(&ino) {
            inode.live.truncate(usize::try_from(len).unwrap_or(usize::MAX));
            inode.durable.clone_from(&inode.live);
        }
        Ok(())
    }

    fn sync_dir(&self) -> Result<()> {
        let mut st = self.lock();
        st.step(&self.root)?;
        st.durable = st.live.clone();
        st.pending.clear();
        st.dir_syncs += 1;
        Ok(())
    }

    fn map(&self, name: &str) -> Result<Mapped> {
        let st = self.lock();
        let ino = self.ino(&st, name)?;
        Ok(Mapped::copy_from(st.inodes.get(&ino).map(|i| &i.live[..]).unwrap_or_default()))
    }
}

/// A handle on one inode of a [`MemDirectory`].
#[derive(Debug)]
struct MemFile {
    dir: MemDirectory,
    ino: u64,
    epoch: u64,
    path: PathBuf,
    len: u64,
}

impl MemFile {
    fn with_inode<T>(&self, f: impl FnOnce(&mut State) -> Result<T>) -> Result<T> {
        let mut st = self.dir.lock();
        if st.epoch != self.epoch {
            return Err(Error::StaleHandle { file: self.path.clone() });
        }
        f(&mut st)
    }
}

impl WritableFile for MemFile {
    fn write_all(&mut self, buf: &[u8]) -> Result<()> {
        let (ino, path) = (self.ino, self.path.clone());
        self.with_inode(|st| {
            st.step(&path)?;
            let used = st.used_bytes();
            let room = st.capacity.map_or(u64::MAX, |c| c.saturating_sub(used));
            let fits = usize::try_from(room).unwrap_or(usize::MAX).min(buf.len());
            // A removed-but-open file keeps its inode until the next crash, like on POSIX.
            st.inodes.entry(ino).or_default().live.extend_from_slice(&buf[..fits]);
            Ok(fits)
        })
        .and_then(|fits| {
            self.len += fits as u64;
            if fits < buf.len() {
                let full = std::io::Error::new(std::io::ErrorKind::StorageFull, "simulated full disk");
                return Err(Error::io(&self.path, full));
            }
            Ok(())
        })
    }

    fn truncate(&mut self, len: u64) -> Result<()> {
        let (ino, path) = (self.ino, self.path.clone());
        let len = len.min(self.len);
        self.with_inode(|st| {
            st.step(&path)?;
            st.inodes.entry(ino).or_default().live.truncate(len as usize);
            Ok(())
        })?;
        self.len = len;
        Ok(())
    }

    fn sync(&mut self) -> Result<()> {
        let (ino, path) = (self.ino, self.path.clone());
        self.with_inode(|st| {
            st.step(&path)?;
            if st.fail_syncs > 0 {
                st.fail_syncs -= 1;
                return Err(Error::io(path, std::io::Error::other("injected fsync failure")));
            }
            let inode = st.inodes.entry(ino).or_default();
            inode.durable.clone_from(&inode.live);
            st.file_syncs += 1;
            Ok(())
        })
    }

    fn size(&self) -> u64 {
        self.len
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &MemDirectory, name: &str, bytes: &[u8], sync: bool) {
        let mut f = dir.create(name).unwrap();
        f.write_all(bytes).unwrap();
        if sync {
            f.sync().unwrap();
        }
    }

    #[test]
    fn unsynced_file_and_entry_vanish() {
        let dir = MemDirectory::new(1);
        write(&dir, "a", b"abc", true);
        dir.crash(CrashMode::DropUnsynced);
        assert!(dir.list().unwrap().is_empty(), "create without sync_dir is not durable");

        write(&dir, "a", b"abc", false);
        dir.sync_dir().unwrap();
        dir.crash(CrashMode::DropUnsynced);
        assert_eq!(dir.read("a").unwrap(), b"", "data without file sync is not durable");
    }

    #[test]
    fn synced_survives_and_unsynced_tail_is_dropped() {
        let dir = MemDirectory::new(2);
        let mut f = dir.create("a").unwrap();
        dir.sync_dir().unwrap();
        f.write_all(b"durable").unwrap();
        f.sync().unwrap();
        f.write_all(b"-lost").unwrap();
        dir.crash(CrashMode::DropUnsynced);
        assert_eq!(dir.read("a").unwrap(), b"durable");
        assert!(matches!(f.write_all(b"x"), Err(Error::StaleHandle { .. })));
    }

    #[test]
    fn random_prefix_and_torn_sector() {
        let mut saw_partial = false;
        let mut saw_garbage = false;
        for seed in 0..50 {
            let dir = MemDirectory::new(seed);
            let mut f = dir.create("a").unwrap();
            dir.sync_dir().unwrap();
            f.write_all(&[1; 100]).unwrap();
            f.sync().unwrap();
            f.write_all(&[2; 1000]).unwrap();
            let mode = if seed % 2 == 0 { CrashMode::KeepRandomPrefix } else { CrashMode::TearLastSector };
            dir.crash(mode);
            let got = dir.read("a").unwrap();
            assert!(got.len() >= 100 && got.len() <= 1100);
            assert_eq!(&got[..100], &[1; 100], "synced bytes never change");
            saw_partial |= got.len() > 100 && got.len() < 1100;
            saw_garbage |= mode == CrashMode::TearLastSector && got[100..].iter().any(|&b| b != 2);
            if mode == CrashMode::KeepRandomPrefix {
                assert!(got[100..].iter().all(|&b| b == 2));
            }
        }
        assert!(saw_partial && saw_garbage);
    }

    #[test]
    fn rename_is_durable_only_after_sync_dir() {
        let dir = MemDirectory::new(3);
        write(&dir, "old", b"1", true);
        dir.sync_dir().unwrap();
        write(&dir, "new.tmp", b"2", true);
        dir.rename("new.tmp", "old").unwrap();
        assert_eq!(dir.read("old").unwrap(), b"2");
        dir.crash(CrashMode::DropUnsynced);
        assert_eq!(dir.read("old").unwrap(), b"1");
        assert_eq!(dir.list().unwrap(), vec!["old".to_owned()]);
    }

    #[test]
    fn halt_stops_every_later_mutation() {
        let dir = MemDirectory::new(5);
        let mut f = dir.create("a").unwrap();
        dir.halt_after(1);
        f.write_all(b"x").unwrap();
        assert!(f.sync().is_err());
        assert!(dir.create("b").is_err());
        assert_eq!(dir.read("a").unwrap(), b"x", "reads still work");
        dir.crash(CrashMode::DropUnsynced);
        assert!(dir.list().unwrap().is_empty());
        dir.create("c").unwrap();
    }

    #[test]
    fn injected_sync_failure() {
        let dir = MemDirectory::new(4);
        let mut f = dir.create("a").unwrap();
        f.write_all(b"x").unwrap();
        dir.fail_next_syncs(1);
        assert!(f.sync().is_err());
        f.sync().unwrap();
        assert_eq!(dir.file_syncs(), 1);
    }
}

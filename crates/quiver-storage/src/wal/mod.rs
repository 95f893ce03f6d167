//! Write-ahead log: append-only files of framed records `(sequence number, opaque payload)`.
//!
//! - Files are named `wal-<first sequence, 20 digits>.log` and rotated when the next write would pass
//!   [`WalOptions::max_file_size`]. A new file's header is fsynced and the directory synced before any record goes in.
//! - Sequence numbers are chosen by the caller (the engine's operation numbers), start at 1 and must strictly
//!   increase; the WAL checks that. [`Wal::truncate_through`] drops whole files whose records are all at or below
//!   a checkpoint (the highest sequence number durable elsewhere, recorded in the manifest).
//! - Durability is chosen per writer ([`Durability`]): `Fsync` acknowledges each record after its own fsync;
//!   `Batch` is group commit (concurrent appends share one fsync); `None` acknowledges once the bytes are handed
//!   to the operating system. A failed write or fsync stops the writer ([`Error::Poisoned`]): nothing in flight is
//!   acknowledged and nothing later is accepted, so a failed fsync is never followed by a success that would seem to
//!   cover it.
//! - [`Wal::open`] / [`Wal::open_and_replay`] recover: a torn tail of the newest file is truncated, any other bad
//!   byte refuses the open naming file and offset (rules in `recovery.rs` and `docs/format.md`).
//! - [`scan`] makes the same checks reading only (nothing truncated or removed) and reports every file: what an
//!   open would repair (a torn tail) and what would make it refuse (corruption, with file and offset).
//!
//! The [`OperationLog`] trait is the seam the engine uses, so a replicated log can later take the WAL's place.

pub mod record;
mod recovery;
mod scan;

use std::fmt;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::Thread;
use std::time::{Duration, Instant};

use crate::dir::{Directory, WritableFile};
use crate::error::{Error, Result};
use record::{BACK_UNKNOWN, FILE_HEADER_LEN, MAX_PAYLOAD, encode_file_header, encode_record};
pub use scan::{FileScan, ScanReport, ScannedRecord, scan};

/// Group commit: how many times a gathering leader yields its core between looks at the pending batch.
const GATHER_YIELDS: usize = 4;

/// The log of operations as the engine sees it: append with a caller-chosen, strictly increasing sequence
/// number; make durable; forget everything up to a checkpoint. Implemented by [`Wal`]; a replicated log can
/// implement it later.
pub trait OperationLog: Send + Sync + fmt::Debug {
    /// Appends one record; returns once it is as durable as the log promises (`submit` + `wait`).
    fn append(&self, seq: u64, payload: &[u8]) -> Result<()>;
    /// Queues one record in sequence order without waiting for durability.
    fn submit(&self, seq: u64, payload: &[u8]) -> Result<()>;
    /// Waits until the submitted record `seq` is durable as promised.
    fn wait(&self, seq: u64) -> Result<()>;
    /// Makes every record appended so far durable.
    fn sync(&self) -> Result<()>;
    /// Highest sequence number appended (0 when none).
    fn last_seq(&self) -> u64;
    /// Highest sequence number known durable (0 when none).
    fn durable_seq(&self) -> u64;
    /// Drops records at or below `checkpoint` where the log's granularity allows.
    fn truncate_through(&self, checkpoint: u64) -> Result<()>;
}

/// When [`Wal::append`] returns.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Durability {
    /// After the record is written and fsynced on its own. Concurrent appends are serialised.
    #[default]
    Fsync,
    /// Group commit: after an fsync that covers the record, shared with concurrent appends. Before writing, the
    /// fsync leader lets the other runnable threads go first and gathers their appends for as long as more keep
    /// arriving, up to `max_delay` (zero: it does not wait); every append is acknowledged within about one fsync of
    /// the previous group plus `max_delay` plus its own group's fsync.
    Batch {
        /// The most a leader waits for more appends before writing.
        max_delay: Duration,
    },
    /// After the record is handed to the operating system, with no fsync. A process crash loses nothing; a power
    /// cut or kernel crash loses records appended since the last [`Wal::sync`] or file rotation (the loss window).
    None,
}

/// Settings of a [`Wal`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WalOptions {
    /// Durability of appends.
    pub durability: Durability,
    /// A write that would take the current file past this size starts a new file (a single write may exceed it).
    pub max_file_size: u64,
}

impl Default for WalOptions {
    fn default() -> Self {
        WalOptions { durability: Durability::Fsync, max_file_size: 64 << 20 }
    }
}

/// A torn tail removed by recovery.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TruncatedTail {
    /// The file.
    pub file: PathBuf,
    /// Its new length (offset of the first bad byte).
    pub offset: u64,
    /// Bytes dropped.
    pub bytes_dropped: u64,
    /// What was wrong at `offset`.
    pub detail: String,
}

/// What [`Wal::open`] found and did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RecoveryReport {
    /// WAL files read.
    pub files: usize,
    /// Bytes read.
    pub bytes: u64,
    /// Valid records found.
    pub records: u64,
    /// Records handed to the replay callback (those above its `after` argument).
    pub replayed: u64,
    /// Highest sequence number found (0 when none).
    pub last_seq: u64,
    /// The torn tail cut off, if any.
    pub truncated: Option<TruncatedTail>,
    /// Files removed because their header was torn (a crash while starting a new file).
    pub removed: Vec<PathBuf>,
}

/// Name of the WAL file whose first record has sequence number `first_seq`.
pub fn file_name(first_seq: u64) -> String {
    format!("wal-{first_seq:020}.log")
}

/// The first sequence number a WAL file name stands for, or `None` if it is not a WAL file name.
pub fn parse_file_name(name: &str) -> Option<u64> {
    let digits = name.strip_prefix("wal-")?.strip_suffix(".log")?;
    if digits.len() != 20 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

#[derive(Debug)]
struct WalFile {
    first_seq: u64,
    name: String,
}

struct Active {
    file: Box<dyn WritableFile>,
    /// Length known durable.
    synced_len: u64,
}

impl fmt::Debug for Active {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Active").field("size", &self.file.size()).field("synced_len", &self.synced_len).finish()
    }
}

/// File-side state, owned by whoever writes (the lock holder or the group-commit leader).
#[derive(Debug)]
struct Io {
    files: Vec<WalFile>,
    active: Option<Active>,
    scratch: Vec<u8>,
}

/// Sequence-side state.
#[derive(Debug, Default)]
struct State {
    last_seq: u64,
    durable_seq: u64,
    /// Batch mode: encoded records not yet written, their `back` relative to the start of this buffer.
    pending: Vec<u8>,
    pending_first: u64,
    leader: bool,
    /// Batch mode: highest sequence number in the group being written, `u64::MAX` while its leader has not yet
    /// taken `pending` (during `max_delay`).
    in_flight_last: u64,
    /// Batch mode: parked waiters whose records are in the group being written (woken when it is done).
    waiting_in_flight: Vec<Thread>,
    /// Batch mode: parked waiters whose records are still pending (one is woken to lead the next group).
    waiting_pending: Vec<Thread>,
    failed: Option<String>,
}

/// A write-ahead log in one [`Directory`]. Share it between threads by reference or `Arc`.
#[derive(Debug)]
pub struct Wal {
    dir: Arc<dyn Directory>,
    opts: WalOptions,
    state: Mutex<State>,
    /// Batch mode: copy of `State::durable_seq` (written under the `state` lock) that a woken waiter reads
    /// without taking the lock.
    durable: AtomicU64,
    io: Mutex<Io>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // Nothing in this module panics while holding a lock; should it happen, the data is still consistent enough
    // to report the poisoning through `State::failed`.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Wal {
    /// Opens (recovering) the WAL in `dir` without replaying. See [`Wal::open_and_replay`].
    pub fn open(dir: Arc<dyn Directory>, opts: WalOptions) -> Result<(Wal, RecoveryReport)> {
        Wal::open_and_replay(dir, opts, u64::MAX, |_, _| Ok::<(), Error>(()))
    }

    /// Opens the WAL in `dir`, validating every record, and calls `f(seq, payload)` in order for each record with
    /// a sequence number above `after` (the manifest's checkpoint). A torn tail of the newest file is truncated
    /// (reported in [`RecoveryReport::truncated`]); any other bad byte fails the open with [`Error::Corrupt`] naming
    /// file and offset. If this returns an error, `f` may already have seen some records: discard their effects.
    pub fn open_and_replay<E, F>(
        dir: Arc<dyn Directory>,
        opts: WalOptions,
        after: u64,
        mut f: F,
    ) -> Result<(Wal, RecoveryReport), E>
    where
        E: From<Error>,
        F: FnMut(u64, &[u8]) -> Result<(), E>,
    {
        if opts.max_file_size < (FILE_HEADER_LEN + record::RECORD_HEADER_LEN) as u64 {
            return Err(Error::InvalidArgument {
                name: "max_file_size",
                detail: format!("{} is smaller than a file header plus one record header", opts.max_file_size),
            }
            .into());
        }
        let mut names: Vec<(u64, String)> =
            dir.list()?.into_iter().filter_map(|n| parse_file_name(&n).map(|s| (s, n))).collect();
        names.sort();
        let mut report = RecoveryReport::default();
        let mut files = Vec::new();
        let mut last = 0u64;
        let count = names.len();
        for (i, (first_seq, name)) in names.into_iter().enumerate() {
            let path = dir.file_path(&name);
            let bytes = dir.read(&name)?;
            report.files += 1;
            report.bytes += bytes.len() as u64;
            let scan = recovery::scan_file(&path, &bytes, first_seq, last, i + 1 == count)?;
            if scan.header_torn {
                dir.remove(&name)?;
                dir.sync_dir()?;
                report.removed.push(path);
                continue;
            }
            for found in &scan.records {
                report.records += 1;
                if found.seq > after {
                    report.replayed += 1;
                    f(found.seq, &bytes[found.payload_start..found.payload_start + found.payload_len])?;
                }
            }
            last = scan.records.last().map_or(first_seq - 1, |r| r.seq);
            if let Some(detail) = scan.torn {
                dir.truncate(&name, scan.valid_len as u64)?;
                report.truncated = Some(TruncatedTail {
                    file: path,
                    offset: scan.valid_len as u64,
                    bytes_dropped: (bytes.len() - scan.valid_len) as u64,
                    detail,
                });
            }
            files.push(WalFile { first_seq, name });
        }
        report.last_seq = last;
        let active = match files.last() {
            Some(wf) => {
                let mut file = dir.open_append(&wf.name)?;
                // What recovery read may have been only in the page cache (a process crash under `None`); make it
                // durable before anything is appended after it.
                file.sync()?;
                let synced_len = file.size();
                Some(Active { file, synced_len })
            }
            None => None,
        };
        let wal = Wal {
            dir,
            opts,
            state: Mutex::new(State { last_seq: last, durable_seq: last, ..State::default() }),
            durable: AtomicU64::new(last),
            io: Mutex::new(Io { files, active, scratch: Vec::new() }),
        };
        Ok((wal, report))
    }

    /// The options this WAL was opened with.
    pub fn options(&self) -> WalOptions {
        self.opts
    }

    /// Appends one record with sequence number `seq` (above every earlier one) and returns once it is as durable as
    /// [`WalOptions::durability`] promises: `submit` then `wait`. On `Err` the record is not acknowledged (it may
    /// or may not be found after a crash); after a write or fsync failure the WAL accepts nothing more
    /// ([`Error::Poisoned`]).
    pub fn append(&self, seq: u64, payload: &[u8]) -> Result<()> {
        self.submit(seq, payload)?;
        self.wait(seq)
    }

    /// Queues one record in sequence order without waiting for group commit. An engine that hands out sequence
    /// numbers under its own lock calls this under that lock (so records reach the log in order) and
    /// [`Wal::wait`] after releasing it (so concurrent writers share fsyncs). Under `Fsync` and `None` the
    /// record is written (and fsynced) before this returns; under `Batch` it is only queued.
    pub fn submit(&self, seq: u64, payload: &[u8]) -> Result<()> {
        if payload.len() > MAX_PAYLOAD {
            return Err(Error::TooLarge {
                what: "WAL record payload",
                len: payload.len() as u64,
                max: MAX_PAYLOAD as u64,
            });
        }
        let mut st = lock(&self.state);
        if let Some(cause) = &st.failed {
            return Err(Error::Poisoned { cause: cause.clone() });
        }
        if seq <= st.last_seq {
            return Err(Error::SequenceOrder { last: st.last_seq, got: seq });
        }
        match self.opts.durability {
            Durability::Batch { .. } => {
                if st.pending.is_empty() {
                    st.pending_first = seq;
                }
                let back = u32::try_from(st.pending.len()).unwrap_or(BACK_UNKNOWN);
                encode_record(&mut st.pending, seq, back, payload);
                st.last_seq = seq;
                Ok(())
            }
            Durability::Fsync | Durability::None => {
                let sync = self.opts.durability == Durability::Fsync;
                let mut io = lock(&self.io);
                let res = self.write_one(&mut io, seq, payload, sync);
                drop(io);
                match res {
                    Ok(()) => {
                        st.last_seq = seq;
                        if sync {
                            st.durable_seq = seq;
                        }
                        Ok(())
                    }
                    // A full disk: the record was rolled back, nothing changed; later appends may succeed.
                    Err(e) if e.is_storage_full() => Err(e),
                    Err(e) => {
                        st.failed = Some(e.to_string());
                        Err(e)
                    }
                }
            }
        }
    }

    /// Waits until the submitted record `seq` is as durable as the durability mode promises (under `Batch`, joins
    /// or leads a group commit). Errors if the WAL failed before that happened.
    pub fn wait(&self, seq: u64) -> Result<()> {
        let st = lock(&self.state);
        match self.opts.durability {
            Durability::Batch { .. } => {
                let target = seq.min(st.last_seq);
                self.wait_durable(st, target)
            }
            Durability::Fsync if st.durable_seq >= seq => Ok(()),
            Durability::None if st.last_seq >= seq => Ok(()),
            _ => match &st.failed {
                Some(cause) => Err(Error::Poisoned { cause: cause.clone() }),
                None => Err(Error::InvalidArgument {
                    name: "seq",
                    detail: format!("{seq} was never submitted (last submitted: {})", st.last_seq),
                }),
            },
        }
    }

    /// Makes every record appended so far durable (under `None`, closes the loss window).
    pub fn sync(&self) -> Result<()> {
        let mut st = lock(&self.state);
        if let Some(cause) = &st.failed {
            return Err(Error::Poisoned { cause: cause.clone() });
        }
        if let Durability::Batch { .. } = self.opts.durability {
            let target = st.last_seq;
            return self.wait_durable(st, target);
        }
        let mut io = lock(&self.io);
        let res = match io.active.as_mut() {
            Some(a) if a.synced_len < a.file.size() => a.file.sync().map(|()| a.synced_len = a.file.size()),
            _ => Ok(()),
        };
        drop(io);
        match res {
            Ok(()) => {
                st.durable_seq = st.last_seq;
                Ok(())
            }
            Err(e) => {
                st.failed = Some(e.to_string());
                Err(e)
            }
        }
    }

    /// Highest sequence number appended (0 when none).
    pub fn last_seq(&self) -> u64 {
        lock(&self.state).last_seq
    }

    /// Highest sequence number known durable (0 when none). Under `None` it moves only with [`Wal::sync`].
    pub fn durable_seq(&self) -> u64 {
        lock(&self.state).durable_seq
    }

    /// Removes every WAL file whose records all have sequence numbers at or below `checkpoint` (never the file
    /// being appended to), then syncs the directory. Returns how many files were removed.
    pub fn truncate_through(&self, checkpoint: u64) -> Result<usize> {
        let mut io = lock(&self.io);
        let mut removed = 0;
        while io.files.len() > 1 && io.files[1].first_seq <= checkpoint.saturating_add(1) {
            let wf = io.files.remove(0);
            self.dir.remove(&wf.name)?;
            removed += 1;
        }
        if removed > 0 {
            self.dir.sync_dir()?;
        }
        Ok(removed)
    }

    /// Syncs, then lists the WAL files with their durable lengths, oldest first: a consistent tail for a
    /// snapshot. Appends after this only add bytes past those lengths or new files; the caller must not call
    /// [`Wal::truncate_through`] until it has copied them.
    pub fn durable_files(&self) -> Result<Vec<(String, u64)>> {
        self.sync()?;
        let io = lock(&self.io);
        let n = io.files.len();
        let mut out = Vec::with_capacity(n);
        for (i, wf) in io.files.iter().enumerate() {
            let len = match (&io.active, i + 1 == n) {
                (Some(a), true) => a.synced_len,
                _ => self.dir.file_len(&wf.name)?,
            };
            out.push((wf.name.clone(), len));
        }
        Ok(out)
    }

    /// Group commit: waits until `target` is durable, becoming the leader that writes and fsyncs the pending
    /// batch when no other leader is at work.
    fn wait_durable<'a>(&'a self, mut st: MutexGuard<'a, State>, target: u64) -> Result<()> {
        let max_delay = match self.opts.durability {
            Durability::Batch { max_delay } => max_delay,
            _ => Duration::ZERO,
        };
        loop {
            if st.durable_seq >= target {
                return Ok(());
            }
            if let Some(cause) = &st.failed {
                return Err(Error::Poisoned { cause: cause.clone() });
            }
            if st.leader {
                // Park until woken by the leader of this record's group (or, for a pending record, to lead the
                // next group). Waking only those threads, which then need no lock to see their record durable,
                // avoids the herd that one shared condvar causes.
                if target <= st.in_flight_last {
                    st.waiting_in_flight.push(std::thread::current());
                } else {
                    st.waiting_pending.push(std::thread::current());
                }
                drop(st);
                std::thread::park();
                if self.durable.load(Ordering::Acquire) >= target {
                    return Ok(());
                }
                // Failed, asked to lead, or a spurious wake-up: look again under the lock (re-registering if
                // still needed; a stale duplicate registration only causes a spurious wake-up later).
                st = lock(&self.state);
                continue;
            }
            st.leader = true;
            st.in_flight_last = u64::MAX;
            if !max_delay.is_zero() {
                // Gather: let the runnable writers (often the ones the previous leader just woke) submit, and stop
                // as soon as a round adds nothing. A fixed sleep would cost its full length even with no writer left.
                // A delay too large for the clock means no deadline: gathering still ends when a round adds nothing.
                let end = Instant::now().checked_add(max_delay);
                let mut seen = st.pending.len();
                loop {
                    drop(st);
                    for _ in 0..GATHER_YIELDS {
                        std::thread::yield_now();
                    }
                    st = lock(&self.state);
                    if st.pending.len() == seen || end.is_some_and(|end| Instant::now() >= end) {
                        break;
                    }
                    seen = st.pending.len();
                }
            }
            let batch = std::mem::take(&mut st.pending);
            let (first, last) = (st.pending_first, st.last_seq);
            st.in_flight_last = last;
            // Waiters registered as pending have their records in this batch now.
            let mut pending_waiters = std::mem::take(&mut st.waiting_pending);
            st.waiting_in_flight.append(&mut pending_waiters);
            st.waiting_pending = pending_waiters;
            drop(st);
            // The batch's operations are already applied in memory (see `Durability::Batch`), so no failure here is
            // recoverable: even a full disk stops the writer.
            let res = {
                let mut io = lock(&self.io);
                self.write_batch(&mut io, first, &batch).map_err(Error::fatal)
            };
            st = lock(&self.state);
            st.leader = false;
            if st.pending.is_empty() {
                // Reuse the allocation for the next batch.
                let mut batch = batch;
                batch.clear();
                st.pending = batch;
            }
            let mut wake = std::mem::take(&mut st.waiting_in_flight);
            let mut next_leader = None;
            let outcome = match res {
                Ok(()) => {
                    st.durable_seq = last;
                    self.durable.store(last, Ordering::Release);
                    // One waiter of the next group (if any) leads it, woken first so that its gathering overlaps
                    // this group's wake-ups; the rest of that group stays parked.
                    if !st.pending.is_empty() {
                        next_leader = st.waiting_pending.pop();
                    }
                    Ok(())
                }
                Err(e) => {
                    st.failed = Some(e.to_string());
                    wake.append(&mut st.waiting_pending);
                    Err(e)
                }
            };
            drop(st);
            let me = std::thread::current().id();
            if let Some(t) = next_leader.filter(|t| t.id() != me) {
                t.unpark();
            }
            for t in wake.into_iter().filter(|t| t.id() != me) {
                t.unpark();
            }
            // `target` was neither durable nor in flight when this thread took the lead, so it was in this batch.
            return outcome;
        }
    }

    /// Writes one record (Fsync / None modes), rotating first if needed.
    fn write_one(&self, io: &mut Io, seq: u64, payload: &[u8], sync: bool) -> Result<()> {
        let encoded_len = (record::RECORD_HEADER_LEN + payload.len()) as u64;
        self.ensure_file(io, seq, encoded_len)?;
        let Io { active, scratch, .. } = io;
        let Some(a) = active.as_mut() else { return Err(no_active_file()) };
        let before = a.file.size();
        let back = u32::try_from(before - a.synced_len).unwrap_or(BACK_UNKNOWN);
        scratch.clear();
        encode_record(scratch, seq, back, payload);
        if let Err(e) = a.file.write_all(scratch) {
            return Err(roll_back(a.file.as_mut(), before, e));
        }
        if sync {
            a.file.sync().map_err(Error::fatal)?;
            a.synced_len = a.file.size();
        }
        Ok(())
    }

    /// Writes and fsyncs one group-commit batch (its `back` fields are relative to the batch start).
    fn write_batch(&self, io: &mut Io, first: u64, batch: &[u8]) -> Result<()> {
        self.ensure_file(io, first, batch.len() as u64)?;
        let Some(a) = io.active.as_mut() else { return Err(no_active_file()) };
        if a.synced_len < a.file.size() {
            // Cannot happen in batch mode (every write is followed by a sync), but `back` relies on it.
            a.file.sync()?;
            a.synced_len = a.file.size();
        }
        a.file.write_all(batch)?;
        a.file.sync()?;
        a.synced_len = a.file.size();
        Ok(())
    }

    /// Makes sure a file is open that can take `incoming` more bytes, rotating to a new file named for `first_seq`
    /// when the current one would pass the size limit.
    fn ensure_file(&self, io: &mut Io, first_seq: u64, incoming: u64) -> Result<()> {
        if let Some(a) = io.active.as_mut() {
            let size = a.file.size();
            if size <= FILE_HEADER_LEN as u64 || size + incoming <= self.opts.max_file_size {
                return Ok(());
            }
            if a.synced_len < size {
                a.file.sync().map_err(Error::fatal)?;
                a.synced_len = size;
            }
        }
        io.active = None;
        let name = file_name(first_seq);
        // A full disk before anything is durable leaves no new file behind (best effort: a leftover is replaced by
        // the next try, and recovery ignores an empty newest file); failures past that point are fatal.
        let mut file = self.dir.create(&name).inspect_err(|_| {
            let _ = self.dir.remove(&name);
        })?;
        if let Err(e) = file.write_all(&encode_file_header(first_seq)) {
            drop(file);
            return Err(match self.dir.remove(&name) {
                Ok(()) if e.is_storage_full() => e,
                _ => e.fatal(),
            });
        }
        file.sync().map_err(Error::fatal)?;
        self.dir.sync_dir().map_err(Error::fatal)?;
        let synced_len = file.size();
        io.files.push(WalFile { first_seq, name });
        io.active = Some(Active { file, synced_len });
        Ok(())
    }
}

/// After an append failed part-way: on a full disk, cuts the file back to `before` so the log is exactly as it was,
/// and returns the [`Error::StorageFull`] (the caller may go on once space is freed). Anything else, or a failed
/// cut, is [`Error::fatal`] (the writer stops).
fn roll_back(file: &mut dyn WritableFile, before: u64, e: Error) -> Error {
    let Error::StorageFull { file: path, cause } = e else { return e.fatal() };
    match file.truncate(before) {
        Ok(()) => Error::StorageFull { file: path, cause },
        Err(t) => Error::Io {
            file: path,
            cause: std::io::Error::other(format!("{cause}; rolling back the partial record failed: {t}")),
        },
    }
}

fn no_active_file() -> Error {
    Error::InvalidArgument { name: "wal", detail: "internal: no active WAL file after ensure_file".into() }
}

impl OperationLog for Wal {
    fn append(&self, seq: u64, payload: &[u8]) -> Result<()> {
        Wal::append(self, seq, payload)
    }

    fn submit(&self, seq: u64, payload: &[u8]) -> Result<()> {
        Wal::submit(self, seq, payload)
    }

    fn wait(&self, seq: u64) -> Result<()> {
        Wal::wait(self, seq)
    }

    fn sync(&self) -> Result<()> {
        Wal::sync(self)
    }

    fn last_seq(&self) -> u64 {
        Wal::last_seq(self)
    }

    fn durable_seq(&self) -> u64 {
        Wal::durable_seq(self)
    }

    fn truncate_through(&self, checkpoint: u64) -> Result<()> {
        Wal::truncate_through(self, checkpoint).map(|_| ())
    }
}

//! The change feed: every operation a collection applies, in sequence order, kept in a byte-bounded in-memory
//! ring so that a reader (the server's change stream, a follower) can ask for "everything after sequence number N".
//!
//! - **What goes in**: every applied operation — local writes, replicated ones
//!   ([`crate::Collection::apply_replicated`]) and the optimizer's own logged deletes (TTL purges) — appended under
//!   the writer lock, so the ring is in sequence order. Opening a collection fills the ring from the WAL replay
//!   (the operations above the manifest's checkpoint).
//! - **Retention**: `change_feed_bytes` of the collection's configuration (default 64 MiB; 0 disables the feed).
//!   Each operation counts its encoded size (the bytes of its WAL record's payload) plus
//!   [`CHANGE_OVERHEAD_BYTES`]; the oldest operations are dropped while the total is above the limit (an operation
//!   larger than the whole limit is dropped at once). The decoded operations in memory take more than their
//!   encoded size (payloads are JSON maps), so the limit bounds memory only to within a small factor.
//! - **Reading**: [`crate::Collection::changes_since`] answers the operations with a sequence number above `after`, oldest first. The
//!   feed knows every applied operation above its *floor* (the highest sequence number dropped, or the checkpoint
//!   the collection was opened at); asking for less is [`Error::ChangesGone`].
//! - **Listeners** are called with the sequence number after each operation is applied, and with [`CLOSED_SEQ`]
//!   when the collection closes; see [`crate::Collection::subscribe`].

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use parking_lot::Mutex;

use crate::error::{Error, Result};
use crate::ops::Operation;

/// Bytes each retained operation counts besides its encoded size (the ring entry and the `Arc`).
pub const CHANGE_OVERHEAD_BYTES: u64 = 64;

/// The sequence number listeners are called with when the collection closes (dropped, restored over, or its
/// database closed): no operation will follow.
pub const CLOSED_SEQ: u64 = u64::MAX;

/// Default `change_feed_bytes`: 64 MiB.
pub const DEFAULT_CHANGE_FEED_BYTES: u64 = 64 << 20;

/// Largest accepted `change_feed_bytes`: 4 GiB.
pub const MAX_CHANGE_FEED_BYTES: u64 = 4 << 30;

/// A change-feed listener: called with the sequence number of each applied operation (or [`CLOSED_SEQ`]). It runs
/// on the writer's thread after the writer lock is released, so it must be cheap and must not block (wake a task,
/// set a flag); calls from concurrent writers may arrive out of order.
pub type Listener = Arc<dyn Fn(u64) + Send + Sync>;

/// The listeners of one collection, by id.
#[derive(Default)]
pub(crate) struct Listeners {
    list: Mutex<Vec<(u64, Listener)>>,
    next: AtomicU64,
}

impl std::fmt::Debug for Listeners {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Listeners").field("count", &self.list.lock().len()).finish()
    }
}

impl Listeners {
    /// Registers `f`; returns its id (never 0).
    pub fn add(&self, f: Listener) -> u64 {
        let id = self.next.fetch_add(1, Ordering::Relaxed) + 1;
        self.list.lock().push((id, f));
        id
    }

    /// Removes listener `id`; whether it was registered.
    pub fn remove(&self, id: u64) -> bool {
        let mut l = self.list.lock();
        let before = l.len();
        l.retain(|(i, _)| *i != id);
        l.len() != before
    }

    /// Calls every listener with `seq`, with no lock held while they run (a listener may subscribe or
    /// unsubscribe).
    pub fn notify(&self, seq: u64) {
        let listeners: Vec<Listener> = {
            let l = self.list.lock();
            if l.is_empty() {
                return;
            }
            l.iter().map(|(_, f)| f.clone()).collect()
        };
        for f in listeners {
            f(seq);
        }
    }
}

/// One applied operation with its sequence number.
#[derive(Debug, Clone, PartialEq)]
pub struct Change {
    /// The operation's sequence number.
    pub seq: u64,
    /// The operation as logged (self-contained: a payload update is the full resulting point, a delete by filter
    /// the ids it resolved to).
    pub op: Arc<Operation>,
}

/// The ring of recent operations of one collection.
#[derive(Debug)]
pub(crate) struct Feed {
    ring: VecDeque<(Change, u64)>,
    bytes: u64,
    cap: u64,
    /// Every applied operation above this is in `ring`.
    floor: u64,
    /// The highest sequence number pushed (or the applied sequence number at open).
    last: u64,
}

impl Feed {
    /// An empty feed keeping `cap` bytes, knowing nothing at or below `base`.
    pub fn new(cap: u64, base: u64) -> Feed {
        Feed { ring: VecDeque::new(), bytes: 0, cap, floor: base, last: base }
    }

    /// Appends operation `seq` (above every earlier one) of `encoded_len` bytes; `op` is called only when the
    /// feed keeps it.
    pub fn push(&mut self, seq: u64, encoded_len: usize, op: impl FnOnce() -> Arc<Operation>) {
        self.last = self.last.max(seq);
        let size = encoded_len as u64 + CHANGE_OVERHEAD_BYTES;
        if size > self.cap {
            // Too big to keep (or the feed is disabled): everything up to it is gone.
            self.ring.clear();
            self.bytes = 0;
            self.floor = self.last;
            return;
        }
        self.ring.push_back((Change { seq, op: op() }, size));
        self.bytes += size;
        while self.bytes > self.cap {
            let Some((gone, size)) = self.ring.pop_front() else { break };
            self.bytes -= size;
            self.floor = gone.seq;
        }
    }

    /// Up to `max` operations with a sequence number above `after`, oldest first.
    pub fn since(&self, after: u64, max: usize) -> Result<Vec<Change>> {
        if max == 0 {
            return Err(Error::invalid("max", "at least 1", 0));
        }
        if after > self.last {
            return Err(Error::invalid("after", format!("at most the applied sequence number {}", self.last), after));
        }
        if after < self.floor {
            return Err(Error::ChangesGone { requested: after, oldest: self.floor + 1 });
        }
        let start = self.ring.partition_point(|(c, _)| c.seq <= after);
        Ok(self.ring.range(start..).take(max).map(|(c, _)| c.clone()).collect())
    }

    /// The oldest sequence number the feed can still serve from (`after` may be as low as this minus one).
    pub fn oldest(&self) -> u64 {
        self.floor + 1
    }

    /// Bytes counted for the retained operations.
    pub fn bytes(&self) -> u64 {
        self.bytes
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::id::PointId;

    fn del(id: u64) -> Arc<Operation> {
        Arc::new(Operation::Delete(vec![PointId::Num(id)]))
    }

    fn seqs(v: &[Change]) -> Vec<u64> {
        v.iter().map(|c| c.seq).collect()
    }

    #[test]
    fn ring_serves_after_and_drops_oldest_beyond_its_bytes() {
        let mut f = Feed::new(3 * (CHANGE_OVERHEAD_BYTES + 10), 4);
        for seq in [5, 6, 9] {
            f.push(seq, 10, || del(seq));
        }
        assert_eq!(seqs(&f.since(4, 10).unwrap()), [5, 6, 9]);
        assert_eq!(seqs(&f.since(5, 1).unwrap()), [6]);
        assert_eq!(seqs(&f.since(6, 10).unwrap()), [9]);
        // Sequence numbers that never existed (a replicated stream may skip some) are not a gap.
        assert_eq!(seqs(&f.since(7, 10).unwrap()), [9]);
        assert!(f.since(9, 10).unwrap().is_empty());
        assert!(matches!(f.since(10, 10), Err(Error::InvalidArgument { field, .. }) if field == "after"));
        assert!(matches!(f.since(3, 10), Err(Error::ChangesGone { requested: 3, oldest: 5 })));
        assert!(matches!(f.since(4, 0), Err(Error::InvalidArgument { field, .. }) if field == "max"));
        f.push(10, 10, || del(10));
        assert_eq!(f.bytes(), 3 * (CHANGE_OVERHEAD_BYTES + 10));
        assert!(matches!(f.since(4, 10), Err(Error::ChangesGone { requested: 4, oldest: 6 })));
        assert_eq!(seqs(&f.since(5, 10).unwrap()), [6, 9, 10]);
        // One operation larger than the whole ring empties it.
        f.push(11, 1 << 20, || del(11));
        assert_eq!(f.oldest(), 12);
        assert!(f.since(11, 10).unwrap().is_empty());
        assert!(matches!(f.since(10, 10), Err(Error::ChangesGone { requested: 10, oldest: 12 })));
    }

    #[test]
    fn a_disabled_feed_serves_only_the_present() {
        let mut f = Feed::new(0, 0);
        f.push(1, 0, || unreachable!("a disabled feed builds nothing"));
        assert!(f.since(1, 5).unwrap().is_empty());
        assert!(matches!(f.since(0, 5), Err(Error::ChangesGone { requested: 0, oldest: 2 })));
    }
}

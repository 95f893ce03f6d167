//! WAL: round trips, durability modes, crash sweep, truncation at every offset, bit flips.

use std::sync::Arc;
use std::time::Duration;

use quiver_storage::wal::{self, RecoveryReport, record};
use quiver_storage::{CrashMode, Directory, Durability, Error, FsDirectory, MemDirectory, Wal, WalOptions};

use crate::support::{arc, mem_with, payload};

type Records = Vec<(u64, Vec<u8>)>;

pub fn open_all(dir: Arc<dyn Directory>, opts: WalOptions) -> quiver_storage::Result<(Wal, RecoveryReport, Records)> {
    let mut got = Vec::new();
    let (wal, report) = Wal::open_and_replay(dir, opts, 0, |seq, p| {
        got.push((seq, p.to_vec()));
        Ok::<(), Error>(())
    })?;
    Ok((wal, report, got))
}

fn opts(durability: Durability, max_file_size: u64) -> WalOptions {
    WalOptions { durability, max_file_size }
}

#[test]
fn append_reopen_replay_and_rotate() {
    let dir = MemDirectory::new(1);
    let o = opts(Durability::Fsync, 1000);
    let (w, report, got) = open_all(arc(&dir), o).unwrap();
    assert!(got.is_empty());
    assert_eq!(report.files, 0);
    for seq in (1..=40).map(|i| i * 3) {
        w.append(seq, &payload(seq)).unwrap();
    }
    assert_eq!(w.last_seq(), 120);
    assert_eq!(w.durable_seq(), 120);
    drop(w);
    let files = dir.list().unwrap();
    assert!(files.len() > 3, "rotation by size: {files:?}");
    assert_eq!(files[0], wal::file_name(3));
    let (w, report, got) = open_all(arc(&dir), o).unwrap();
    assert_eq!(report.records, 40);
    assert_eq!(report.last_seq, 120);
    assert_eq!(report.truncated, None);
    let want: Records = (1..=40).map(|i| (i * 3, payload(i * 3))).collect();
    assert_eq!(got, want);

    // Replay after a checkpoint; then truncate behind it.
    let mut after = Vec::new();
    let (w2, _) = Wal::open_and_replay(arc(&dir), o, 60, |s, _| {
        after.push(s);
        Ok::<(), Error>(())
    })
    .unwrap();
    drop(w2);
    assert_eq!(after, (21..=40).map(|i| i * 3).collect::<Vec<_>>());
    let removed = w.truncate_through(60).unwrap();
    assert!(removed > 0);
    let files_after = dir.list().unwrap();
    assert_eq!(files_after.len(), files.len() - removed);
    // Everything above the checkpoint is still there.
    w.append(121, b"x").unwrap();
    drop(w);
    let (_, _, got) = open_all(arc(&dir), o).unwrap();
    assert!(got.first().unwrap().0 <= 63);
    assert_eq!(got.iter().filter(|(s, _)| *s > 60).count(), 21);
    // Truncating through everything keeps the active file.
    let (w, _, _) = open_all(arc(&dir), o).unwrap();
    w.truncate_through(u64::MAX).unwrap();
    assert_eq!(dir.list().unwrap().len(), 1);
}

#[test]
fn bad_appends_are_user_errors_and_change_nothing() {
    let dir = MemDirectory::new(2);
    let (w, _, _) = open_all(arc(&dir), WalOptions::default()).unwrap();
    w.append(5, b"a").unwrap();
    for bad in [0, 4, 5] {
        let e = w.append(bad, b"b").unwrap_err();
        assert!(matches!(e, Error::SequenceOrder { last: 5, got } if got == bad), "{e}");
        assert!(e.is_user_error());
    }
    let big = vec![0u8; record::MAX_PAYLOAD + 1];
    let e = w.append(6, &big).unwrap_err();
    assert!(matches!(e, Error::TooLarge { .. }) && e.is_user_error());
    w.append(6, b"c").unwrap();
    drop(w);
    let (_, _, got) = open_all(arc(&dir), WalOptions::default()).unwrap();
    assert_eq!(got, vec![(5, b"a".to_vec()), (6, b"c".to_vec())]);
    let e = Wal::open(arc(&dir), opts(Durability::Fsync, 3)).unwrap_err();
    assert!(e.is_user_error());
}

#[test]
fn durability_modes_survive_crashes_as_documented() {
    // Fsync: every acknowledged record survives the harshest crash.
    let dir = MemDirectory::new(3);
    let (w, _, _) = open_all(arc(&dir), opts(Durability::Fsync, 4096)).unwrap();
    for s in 1..=30 {
        w.append(s, &payload(s)).unwrap();
    }
    dir.crash(CrashMode::DropUnsynced);
    drop(w);
    let (_, _, got) = open_all(arc(&dir), WalOptions::default()).unwrap();
    assert_eq!(got.len(), 30);

    // None: records since the last sync are lost by a power cut; synced ones are not.
    let dir = MemDirectory::new(4);
    let (w, _, _) = open_all(arc(&dir), opts(Durability::None, 1 << 20)).unwrap();
    for s in 1..=10 {
        w.append(s, &payload(s)).unwrap();
    }
    assert_eq!(w.durable_seq(), 0);
    w.sync().unwrap();
    assert_eq!(w.durable_seq(), 10);
    let syncs = dir.file_syncs();
    for s in 11..=20 {
        w.append(s, &payload(s)).unwrap();
    }
    assert_eq!(dir.file_syncs(), syncs, "none mode does not fsync");
    dir.crash(CrashMode::DropUnsynced);
    drop(w);
    let (_, _, got) = open_all(arc(&dir), WalOptions::default()).unwrap();
    assert_eq!(got.iter().map(|r| r.0).collect::<Vec<_>>(), (1..=10).collect::<Vec<_>>());
}

#[test]
fn group_commit_shares_fsyncs_and_loses_nothing_acknowledged() {
    let dir = MemDirectory::new(5);
    let o = opts(Durability::Batch { max_delay: Duration::from_micros(200) }, 64 << 10);
    let (w, _, _) = open_all(arc(&dir), o).unwrap();
    let w = Arc::new(w);
    let next = Arc::new(std::sync::Mutex::new(0u64));
    let before = dir.file_syncs();
    std::thread::scope(|s| {
        for _ in 0..8 {
            let (w, next) = (w.clone(), next.clone());
            s.spawn(move || {
                for _ in 0..50 {
                    // The engine's pattern: take a sequence number and submit under its lock, wait outside it.
                    let seq = {
                        let mut n = next.lock().unwrap();
                        *n += 1;
                        w.submit(*n, &payload(*n)).unwrap();
                        *n
                    };
                    w.wait(seq).unwrap();
                }
            });
        }
    });
    let syncs = dir.file_syncs() - before;
    assert!(syncs < 400, "400 appends used {syncs} fsyncs");
    dir.crash(CrashMode::TearLastSector);
    let (_, _, got) = open_all(arc(&dir), o).unwrap();
    assert_eq!(got.len(), 400);
    assert!(got.iter().all(|(s, p)| *p == payload(*s)));
}

#[test]
fn group_commit_leader_stops_gathering_when_no_more_appends_arrive() {
    // `max_delay` bounds the gathering; a lone writer must not pay it on every append (a fixed sleep would make
    // these 20 appends take 10 s).
    let dir = MemDirectory::new(6);
    let o = opts(Durability::Batch { max_delay: Duration::from_millis(500) }, 64 << 10);
    let (w, _, _) = open_all(arc(&dir), o).unwrap();
    let start = std::time::Instant::now();
    for seq in 1..=20 {
        w.append(seq, &payload(seq)).unwrap();
    }
    let took = start.elapsed();
    assert!(took < Duration::from_secs(5), "20 lone appends took {took:?}");
    assert_eq!(w.durable_seq(), 20);
    drop(w);
    // A delay past what the clock can add is no deadline, not a panic.
    let o = opts(Durability::Batch { max_delay: Duration::MAX }, 64 << 10);
    let (w, _, _) = open_all(arc(&dir), o).unwrap();
    w.append(21, &payload(21)).unwrap();
    assert_eq!(w.durable_seq(), 21);
}

#[test]
fn failed_group_commit_fsync_wakes_every_waiter_with_an_error() {
    // Many writers parked on group commits while an fsync fails: none hangs, none is acknowledged after the
    // failure, and everything acknowledged survives a crash.
    let dir = MemDirectory::new(9);
    let o = opts(Durability::Batch { max_delay: Duration::ZERO }, 64 << 10);
    let (w, _, _) = open_all(arc(&dir), o).unwrap();
    let next = std::sync::Mutex::new(0u64);
    let acked = std::sync::Mutex::new(Vec::new());
    std::thread::scope(|s| {
        for t in 0..16 {
            let (w, next, acked, dir) = (&w, &next, &acked, &dir);
            s.spawn(move || {
                for i in 0..200 {
                    if t == 0 && i == 20 {
                        dir.fail_next_syncs(1);
                    }
                    let seq = {
                        let mut n = next.lock().unwrap();
                        *n += 1;
                        if w.submit(*n, &payload(*n)).is_err() {
                            return;
                        }
                        *n
                    };
                    match w.wait(seq) {
                        Ok(()) => acked.lock().unwrap().push(seq),
                        Err(_) => return,
                    }
                }
            });
        }
    });
    assert!(matches!(w.append(1 << 40, b"late"), Err(Error::Poisoned { .. })));
    dir.crash(CrashMode::DropUnsynced);
    drop(w);
    let (_, _, got) = open_all(arc(&dir), o).unwrap();
    let got: Vec<u64> = got.iter().map(|r| r.0).collect();
    let mut acked = acked.into_inner().unwrap();
    acked.sort_unstable();
    assert!(acked.len() < 3200);
    assert!(acked.iter().all(|s| got.binary_search(s).is_ok()), "an acknowledged record was lost");
}

#[test]
fn concurrent_group_commit_batches_on_a_real_file_system() {
    let tmp = tempfile::tempdir().unwrap();
    let dir: Arc<dyn Directory> = Arc::new(FsDirectory::open(tmp.path()).unwrap());
    let o = opts(Durability::Batch { max_delay: Duration::ZERO }, 1 << 20);
    let (w, _, _) = open_all(dir.clone(), o).unwrap();
    let next = std::sync::Mutex::new(0u64);
    std::thread::scope(|s| {
        for _ in 0..8 {
            s.spawn(|| {
                for _ in 0..25 {
                    let seq = {
                        let mut n = next.lock().unwrap();
                        *n += 1;
                        w.submit(*n, &payload(*n)).unwrap();
                        *n
                    };
                    w.wait(seq).unwrap();
                }
            });
        }
    });
    drop(w);
    let (_, report, got) = open_all(dir, o).unwrap();
    assert_eq!(report.records, 200);
    assert_eq!(got.iter().map(|r| r.0).collect::<Vec<_>>(), (1..=200).collect::<Vec<_>>());
}

#[test]
fn failed_fsync_poisons_and_is_never_reported_as_success() {
    for durability in [Durability::Fsync, Durability::Batch { max_delay: Duration::ZERO }, Durability::None] {
        let dir = MemDirectory::new(6);
        let (w, _, _) = open_all(arc(&dir), opts(durability, 1 << 20)).unwrap();
        w.append(1, b"one").unwrap();
        w.sync().unwrap();
        dir.fail_next_syncs(1);
        let r2 = w.append(2, b"two").and_then(|()| w.sync());
        assert!(r2.is_err(), "{durability:?}");
        // The next fsync would succeed, but the writer must not use it to cover the failed one.
        assert!(matches!(w.append(3, b"three"), Err(Error::Poisoned { .. })), "{durability:?}");
        assert!(matches!(w.sync(), Err(Error::Poisoned { .. })));
        dir.crash(CrashMode::DropUnsynced);
        drop(w);
        let (w, _, got) = open_all(arc(&dir), opts(durability, 1 << 20)).unwrap();
        assert_eq!(got, vec![(1, b"one".to_vec())], "{durability:?}");
        // After reopening, the writer works again.
        w.append(2, b"two again").unwrap();
    }
}

/// Bytes of a WAL file holding records 1..=n written with fsync durability, and each record's start offset.
fn fsync_file(n: u64) -> (Vec<u8>, Vec<usize>) {
    let dir = MemDirectory::new(7);
    let (w, _, _) = open_all(arc(&dir), opts(Durability::Fsync, 1 << 20)).unwrap();
    let mut starts = vec![record::FILE_HEADER_LEN];
    for s in 1..=n {
        w.append(s, &payload(s)).unwrap();
        starts.push(dir.file_len(&wal::file_name(1)).unwrap() as usize);
    }
    starts.pop();
    (dir.read(&wal::file_name(1)).unwrap(), starts)
}

#[test]
fn truncation_at_every_offset_of_the_last_three_records() {
    let (bytes, starts) = fsync_file(8);
    let name = wal::file_name(1);
    for cut in starts[5]..=bytes.len() {
        let dir = mem_with(8, &[(&name, &bytes[..cut])]);
        let (w, report, got) = open_all(arc(&dir), WalOptions::default()).unwrap();
        // Records wholly inside the cut survive; the partial one is truncated, with the bytes counted.
        let complete = (1..=8).filter(|&i| i == 8 && cut == bytes.len() || i < 8 && starts[i] <= cut).count();
        assert_eq!(got.len(), complete, "cut at {cut}");
        let valid = if complete == 8 { bytes.len() } else { starts[complete] };
        match &report.truncated {
            None => assert_eq!(cut, valid, "cut at {cut}"),
            Some(t) => {
                assert_eq!((t.offset as usize, t.bytes_dropped as usize), (valid, cut - valid), "cut at {cut}");
            }
        }
        assert_eq!(dir.file_len(&name).unwrap() as usize, valid);
        // Appending after recovery continues cleanly.
        w.append(100, b"after").unwrap();
        drop(w);
        let (_, r2, got2) = open_all(arc(&dir), WalOptions::default()).unwrap();
        assert_eq!(r2.truncated, None);
        assert_eq!(got2.last().unwrap().0, 100);
    }
}

#[test]
fn bit_flips_truncate_the_tail_and_refuse_elsewhere() {
    let (bytes, starts) = fsync_file(6);
    let name = wal::file_name(1);
    let last = starts[5];
    // Tail record: any flipped bit makes it a torn tail.
    for bit in [0, 40, 8 * (bytes.len() - last) - 1] {
        let mut b = bytes.clone();
        b[last + bit / 8] ^= 1 << (bit % 8);
        let dir = mem_with(9, &[(&name, &b)]);
        let (_, report, got) = open_all(arc(&dir), WalOptions::default()).unwrap();
        assert_eq!(got.len(), 5, "bit {bit}");
        assert_eq!(report.truncated.unwrap().offset as usize, last);
    }
    // Middle record: refuse, naming file and offset; nothing is changed on disk.
    for victim in [0, 2, 4] {
        for byte in [0, 5, 9, 17, 25] {
            let mut b = bytes.clone();
            b[starts[victim] + byte] ^= 0x10;
            let dir = mem_with(10, &[(&name, &b)]);
            let e = Wal::open(arc(&dir), WalOptions::default()).unwrap_err();
            match &e {
                Error::Corrupt { file, offset, .. } => {
                    assert!(file.ends_with(&name), "{e}");
                    assert_eq!(*offset as usize, starts[victim], "{e}");
                }
                other => panic!("expected Corrupt, got {other}"),
            }
            assert!(!e.is_user_error());
            assert_eq!(dir.read(&name).unwrap(), b, "refusing changes nothing");
        }
    }
    // File header: in the only (last) file with records behind it: refuse.
    let mut b = bytes.clone();
    b[9] ^= 1;
    let dir = mem_with(11, &[(&name, &b)]);
    assert!(matches!(Wal::open(arc(&dir), WalOptions::default()), Err(Error::Corrupt { offset: 16, .. })));
    // A torn header with nothing behind it (crash while starting a file): the file is removed.
    let dir = mem_with(12, &[(&name, &bytes[..13])]);
    let (_, report, got) = open_all(arc(&dir), WalOptions::default()).unwrap();
    assert!(got.is_empty());
    assert_eq!(report.removed.len(), 1);
    assert!(dir.list().unwrap().is_empty());
}

#[test]
fn corruption_in_an_older_file_refuses() {
    let dir = MemDirectory::new(13);
    let (w, _, _) = open_all(arc(&dir), opts(Durability::Fsync, 600)).unwrap();
    for s in 1..=20 {
        w.append(s, &payload(s)).unwrap();
    }
    drop(w);
    let files = dir.list().unwrap();
    assert!(files.len() >= 3);
    // Tail record of a non-last file.
    let len = dir.file_len(&files[0]).unwrap() as usize;
    dir.corrupt(&files[0], len - 1, |b| b[0] ^= 1).unwrap();
    let e = Wal::open(arc(&dir), WalOptions::default()).unwrap_err();
    assert!(matches!(&e, Error::Corrupt { file, .. } if file.ends_with(&files[0])), "{e}");
    // An unknown version is reported as such.
    let dir = MemDirectory::new(14);
    let mut h = record::encode_file_header(1);
    h[4] = 9;
    let crc = crc32c::crc32c(&h[..16]);
    h[16..].copy_from_slice(&crc.to_le_bytes());
    let dir2 = mem_with(15, &[(&wal::file_name(1), &h)]);
    drop(dir);
    assert!(matches!(Wal::open(arc(&dir2), WalOptions::default()), Err(Error::UnsupportedVersion { found: 9, .. })));
}

/// Crash at every I/O step of a scripted sequence of appends, syncs and rotations, in every durability mode and
/// crash mode; after reopening, every acknowledged record is present and the records form an intact prefix.
#[test]
fn crash_sweep_at_every_io_step() {
    let script = |w: &Wal, acked: &mut Vec<u64>| -> quiver_storage::Result<()> {
        for s in 1..=12u64 {
            w.append(s, &payload(s))?;
            acked.push(s);
            if s % 5 == 0 {
                w.sync()?;
            }
        }
        Ok(())
    };
    for durability in [Durability::Fsync, Durability::Batch { max_delay: Duration::ZERO }, Durability::None] {
        let o = opts(durability, 700);
        // Count the operations of a full run.
        let dir = MemDirectory::new(0);
        let (w, _, _) = open_all(arc(&dir), o).unwrap();
        script(&w, &mut Vec::new()).unwrap();
        let total = dir.ops();
        assert!(total > 30, "the script does real I/O: {total} operations");
        for halt in 0..=total {
            for (k, mode) in [CrashMode::DropUnsynced, CrashMode::KeepRandomPrefix, CrashMode::TearLastSector]
                .into_iter()
                .enumerate()
            {
                let dir = MemDirectory::new(halt * 3 + k as u64);
                let (w, _, _) = open_all(arc(&dir), o).unwrap();
                dir.halt_after(halt);
                let mut acked = Vec::new();
                let _ = script(&w, &mut acked);
                let durable = w.durable_seq();
                dir.crash(mode);
                drop(w);
                let (_, _, got) =
                    open_all(arc(&dir), o).unwrap_or_else(|e| panic!("{durability:?} {halt} {mode:?}: {e}"));
                let seqs: Vec<u64> = got.iter().map(|r| r.0).collect();
                // A prefix of what was attempted, each payload intact.
                assert_eq!(seqs, (1..=seqs.len() as u64).collect::<Vec<_>>(), "{durability:?} {halt} {mode:?}");
                assert!(got.iter().all(|(s, p)| *p == payload(*s)));
                let must = if durability == Durability::None { durable } else { acked.last().copied().unwrap_or(0) };
                assert!(
                    seqs.len() as u64 >= must,
                    "{durability:?} halt {halt} {mode:?}: lost acked {must}, got {seqs:?}"
                );
                assert!(seqs.len() <= acked.len() + 1, "nothing beyond the one in flight");
            }
        }
    }
}

/// `wal::scan` as `Wal::open` (without the repairs): a torn tail is reported where open would truncate it, a bad
/// middle record where open would refuse, and the bytes are never changed.
#[test]
fn scan_reports_what_open_would_do_and_writes_nothing() {
    let (bytes, starts) = fsync_file(6);
    let name = wal::file_name(1);
    let seqs = |dir: &MemDirectory| {
        let mut seen = Vec::new();
        let report = wal::scan(dir, |r| seen.push((r.seq, r.offset as usize, r.payload.to_vec()))).unwrap();
        (report, seen)
    };

    // Intact: every record, with its offset and payload.
    let dir = mem_with(20, &[(&name, &bytes)]);
    let (report, seen) = seqs(&dir);
    assert!(report.is_ok());
    assert_eq!((report.records(), report.bytes(), report.last_seq()), (6, bytes.len() as u64, 6));
    assert_eq!(seen, (1..=6).map(|s| (s, starts[s as usize - 1], payload(s))).collect::<Vec<_>>());

    // Torn tail: reported (offset + length), not an error, and not truncated.
    let cut = bytes.len() - 3;
    let dir = mem_with(21, &[(&name, &bytes[..cut])]);
    let (report, seen) = seqs(&dir);
    assert!(report.is_ok());
    let t = report.files[0].torn_tail.as_ref().unwrap();
    assert_eq!((t.offset as usize, t.bytes_dropped as usize), (starts[5], cut - starts[5]));
    assert_eq!(seen.len(), 5);
    assert_eq!(dir.read(&name).unwrap(), &bytes[..cut]);

    // Bad middle record: an error naming file and offset; the records before it are counted.
    let mut b = bytes.clone();
    b[starts[2] + 25] ^= 0x10;
    let dir = mem_with(22, &[(&name, &b)]);
    let (report, seen) = seqs(&dir);
    assert!(!report.is_ok());
    let f = &report.files[0];
    match f.error.as_ref().unwrap() {
        Error::Corrupt { file, offset, .. } => {
            assert!(file.ends_with(&name));
            assert_eq!(*offset as usize, starts[2]);
        }
        other => panic!("expected Corrupt, got {other}"),
    }
    assert_eq!((f.records, f.last_seq, seen.len()), (2, Some(2), 2));
    assert_eq!(dir.read(&name).unwrap(), b);

    // A torn header with nothing behind it: reported as removable, the file stays.
    let dir = mem_with(23, &[(&name, &bytes[..13])]);
    let (report, _) = seqs(&dir);
    assert!(report.is_ok() && report.files[0].header_torn);
    assert_eq!(dir.list().unwrap(), vec![name.clone()]);
}

#[test]
fn scan_goes_on_past_a_damaged_older_file() {
    let dir = MemDirectory::new(24);
    let (w, _, _) = open_all(arc(&dir), opts(Durability::Fsync, 600)).unwrap();
    for s in 1..=20 {
        w.append(s, &payload(s)).unwrap();
    }
    drop(w);
    let files = dir.list().unwrap();
    assert!(files.len() >= 3);
    let intact = wal::scan(&dir, |_| {}).unwrap();
    assert_eq!(intact.records(), 20);
    let len = dir.file_len(&files[0]).unwrap() as usize;
    dir.corrupt(&files[0], len - 1, |b| b[0] ^= 1).unwrap();
    let report = wal::scan(&dir, |_| {}).unwrap();
    assert_eq!(report.files.len(), files.len());
    assert!(report.files[0].error.is_some());
    assert!(report.files[1..].iter().all(|f| f.error.is_none()), "{report:?}");
    // Only the damaged record is missing from the count.
    assert_eq!(report.records(), 19);
}

#[test]
fn a_full_disk_refuses_the_append_rolls_it_back_and_writes_resume_when_space_returns() {
    for durability in [Durability::Fsync, Durability::None] {
        // Small files, so that some appends also need a new file (rotation) when the disk fills.
        for max_file in [300u64, 1 << 20] {
            let what = format!("{durability:?}, files of {max_file} bytes");
            let dir = MemDirectory::new(9);
            let (w, _, _) = open_all(arc(&dir), opts(durability, max_file)).unwrap();
            let mut acked = Vec::new();
            let mut seq = 0u64;
            for _ in 0..20 {
                seq += 1;
                w.append(seq, &payload(seq)).unwrap();
                acked.push(seq);
            }
            // Fill the disk to within a few bytes: every further append fails part-way.
            dir.set_capacity(Some(dir.used_bytes() + 7));
            let mut refused = 0;
            for _ in 0..30 {
                seq += 1;
                match w.append(seq, &payload(seq)) {
                    Ok(()) => acked.push(seq),
                    Err(e) => {
                        assert!(e.is_storage_full(), "{what}: {e}");
                        assert!(e.to_string().contains("no space left"), "{what}: {e}");
                        refused += 1;
                    }
                }
            }
            assert_eq!(refused, 30, "{what}: nothing fits in 7 bytes");
            // Space returns: the same writer goes on, no reopen.
            dir.set_capacity(None);
            for _ in 0..10 {
                seq += 1;
                w.append(seq, &payload(seq)).unwrap();
                acked.push(seq);
            }
            w.sync().unwrap();
            drop(w);
            let (_, report, got) = open_all(arc(&dir), opts(durability, max_file)).unwrap();
            assert!(report.truncated.is_none(), "{what}: no torn record was left behind: {report:?}");
            assert_eq!(got.iter().map(|r| r.0).collect::<Vec<_>>(), acked, "{what}");
            assert!(got.iter().all(|(s, p)| *p == payload(*s)), "{what}");
        }
    }
}

#[test]
fn a_full_disk_under_batch_durability_stops_the_writer() {
    // Batched records are applied before their group is written, so a failed group cannot be taken back.
    let dir = MemDirectory::new(10);
    let o = opts(Durability::Batch { max_delay: Duration::ZERO }, 1 << 20);
    let (w, _, _) = open_all(arc(&dir), o).unwrap();
    w.append(1, b"one").unwrap();
    dir.set_capacity(Some(dir.used_bytes() + 3));
    assert!(w.append(2, b"two").is_err());
    dir.set_capacity(None);
    assert!(matches!(w.append(3, b"three"), Err(Error::Poisoned { .. })));
}

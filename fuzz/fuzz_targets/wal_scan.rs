//! WAL readers on arbitrary files: `wal::scan` (read-only check) and `Wal::open_and_replay` (recovery).
//!
//! Input: a flags byte (bit 0: repair checksums, bits 1-2: which checkpoint to replay after), then up to four WAL
//! files framed as in `quiver_fuzz::wal_files`, written into a `MemDirectory`. Neither reader may panic, and
//! they must agree: the open succeeds exactly when the scan reports no error, replays the records the scan
//! visited, truncates the tail and removes the files the scan said it would, and leaves a WAL that takes a new
//! record and reopens cleanly.

#![no_main]

use std::path::PathBuf;
use std::sync::Arc;

use libfuzzer_sys::fuzz_target;
use quiver_fuzz::{FIX_CHECKSUMS, contents, fix_wal, put, split_flags, wal_files};
use quiver_storage::wal::{self, ScanReport};
use quiver_storage::{Directory, Error, MemDirectory, Wal, WalOptions};

/// One record the scan handed out: file, offset, sequence number, payload.
type Seen = (PathBuf, u64, u64, Vec<u8>);

fuzz_target!(|data: &[u8]| {
    let (flags, rest) = split_flags(data);
    let mut files = wal_files(rest);
    if flags & FIX_CHECKSUMS != 0 {
        for (_, bytes) in &mut files {
            fix_wal(bytes);
        }
    }
    let dir = MemDirectory::new(0);
    for (seq, bytes) in &files {
        put(&dir, &wal::file_name(*seq), bytes);
    }
    let before = contents(&dir);

    let mut seen: Vec<Seen> = Vec::new();
    let report = wal::scan(&dir, |r| seen.push((r.file.to_owned(), r.offset, r.seq, r.payload.to_vec())))
        .expect("listing a MemDirectory cannot fail");
    assert_eq!(contents(&dir), before, "scan wrote something");
    check_scan(&report, &seen, &before);

    let after = match (flags >> 1) & 3 {
        0 => 0,
        1 => u64::MAX,
        2 => report.last_seq() / 2,
        _ => report.last_seq().saturating_sub(1),
    };
    let mut replayed = Vec::new();
    let opened = Wal::open_and_replay(Arc::new(dir.clone()), WalOptions::default(), after, |seq, payload| {
        replayed.push((seq, payload.to_vec()));
        Ok::<(), Error>(())
    });
    let (wal, recovery) = match opened {
        Ok(ok) => ok,
        Err(e) => {
            assert!(!report.is_ok(), "open failed ({e}) where the scan found nothing wrong: {report:?}");
            assert!(matches!(e, Error::Corrupt { .. } | Error::UnsupportedVersion { .. }), "unexpected error: {e}");
            return;
        }
    };
    assert!(report.is_ok(), "open succeeded where the scan found an error: {report:?}");

    // The open replays what the scan visited above the checkpoint, and repairs what the scan said it would.
    let expected: Vec<(u64, Vec<u8>)> =
        seen.iter().filter(|s| s.2 > after).map(|(_, _, seq, p)| (*seq, p.clone())).collect();
    assert_eq!(replayed, expected);
    assert_eq!(recovery.records, report.records());
    assert_eq!(recovery.replayed, expected.len() as u64);
    assert_eq!(recovery.files, report.files.len());
    assert_eq!(recovery.bytes, report.bytes());
    let torn: Vec<_> = report.files.iter().filter_map(|f| f.torn_tail.clone()).collect();
    assert!(torn.len() <= 1, "more than one torn tail: {torn:?}");
    assert_eq!(recovery.truncated, torn.first().cloned());
    let removed: Vec<PathBuf> = report.files.iter().filter(|f| f.header_torn).map(|f| f.file.clone()).collect();
    assert_eq!(recovery.removed, removed);
    let kept_last = report
        .files
        .iter()
        .rfind(|f| !f.header_torn)
        .map_or(0, |f| f.last_seq.unwrap_or(f.first_seq.saturating_sub(1)));
    assert_eq!(recovery.last_seq, kept_last);
    assert_eq!(wal.last_seq(), kept_last);

    // On disk: removed files are gone, the torn tail is cut, everything else is untouched.
    let mut expected_files = Vec::new();
    for (name, bytes) in &before {
        let path = dir.file_path(name);
        if removed.contains(&path) {
            continue;
        }
        let keep = match torn.first() {
            Some(t) if t.file == path => t.offset as usize,
            _ => bytes.len(),
        };
        expected_files.push((name.clone(), bytes[..keep].to_vec()));
    }
    assert_eq!(contents(&dir), expected_files, "recovery changed more than it reported");

    // The recovered WAL takes the next record, and a reopen finds a clean log holding it.
    let Some(next) = kept_last.checked_add(1) else { return };
    wal.append(next, b"appended after recovery").expect("append after a successful recovery");
    drop(wal);
    let mut again = Vec::new();
    let (_, second) = Wal::open_and_replay(Arc::new(dir.clone()), WalOptions::default(), 0, |seq, payload| {
        again.push((seq, payload.to_vec()));
        Ok::<(), Error>(())
    })
    .expect("reopen after recovery and one append");
    assert_eq!(second.truncated, None);
    assert!(second.removed.is_empty());
    assert_eq!(second.last_seq, next);
    let mut want: Vec<(u64, Vec<u8>)> = seen.iter().map(|(_, _, seq, p)| (*seq, p.clone())).collect();
    want.push((next, b"appended after recovery".to_vec()));
    assert_eq!(again, want);
});

/// Internal consistency of a scan report against the records its callback received.
fn check_scan(report: &ScanReport, seen: &[Seen], before: &[(String, Vec<u8>)]) {
    assert_eq!(report.records(), seen.len() as u64, "records counted != records handed out");
    assert!(seen.windows(2).all(|w| w[0].2 < w[1].2), "sequence numbers not strictly increasing");
    assert_eq!(report.last_seq(), seen.last().map_or(0, |s| s.2));
    assert_eq!(report.files.len(), before.len(), "every WAL file is reported");
    let last = report.files.len().saturating_sub(1);
    for (i, f) in report.files.iter().enumerate() {
        let bytes = before.iter().find(|(n, _)| f.file.ends_with(n)).map(|(_, b)| b).expect("a reported file exists");
        assert_eq!(f.bytes, bytes.len() as u64);
        let mine: Vec<&Seen> = seen.iter().filter(|s| s.0 == f.file).collect();
        assert_eq!(f.records, mine.len() as u64, "{}: records counted != handed out", f.file.display());
        assert_eq!(f.last_seq, mine.last().map(|s| s.2));
        for (_, offset, _, payload) in mine {
            let start = *offset as usize + 20;
            assert_eq!(bytes.get(start..start + payload.len()), Some(&payload[..]), "payload is not where reported");
        }
        if let Some(t) = &f.torn_tail {
            assert_eq!(i, last, "a torn tail outside the newest file");
            assert_eq!(t.offset + t.bytes_dropped, f.bytes);
            assert!(t.bytes_dropped > 0);
        }
        if f.header_torn {
            assert_eq!(i, last, "a torn header outside the newest file");
            assert_eq!(f.records, 0);
        }
        match &f.error {
            None => {}
            Some(Error::Corrupt { file, offset, .. }) => {
                assert_eq!(file, &f.file, "error names another file");
                assert!(*offset <= f.bytes, "error offset {offset} past the end ({})", f.bytes);
            }
            Some(Error::UnsupportedVersion { file, .. }) => assert_eq!(file, &f.file),
            Some(other) => panic!("unexpected scan error: {other}"),
        }
    }
}

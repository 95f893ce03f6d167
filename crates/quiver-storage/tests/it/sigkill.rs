//! A real process appends with `fsync` durability and prints each acknowledged sequence number; the test kills it
//! with SIGKILL at random moments over several rounds and checks after each that every acknowledged record is
//! there and the log is an intact prefix. The child is this test binary itself, re-run with `CHILD_ENV` set.

use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use quiver_storage::{Directory, Durability, FsDirectory, Wal, WalOptions};

use crate::support::payload;
use crate::wal::open_all;

const CHILD_ENV: &str = "QUIVER_STORAGE_SIGKILL_CHILD_DIR";

fn opts() -> WalOptions {
    // Small files so rounds also cross rotations.
    WalOptions { durability: Durability::Fsync, max_file_size: 16 << 10 }
}

/// Entry point of the child process. Does nothing unless `CHILD_ENV` names a directory (as in a normal test run).
#[test]
fn child_entry_point() {
    let Ok(path) = std::env::var(CHILD_ENV) else { return };
    let dir: Arc<dyn Directory> = Arc::new(FsDirectory::open(path).unwrap());
    let (wal, _) = Wal::open(dir, opts()).unwrap();
    let mut out = std::io::stdout().lock();
    let mut seq = wal.last_seq();
    loop {
        seq += 1;
        wal.append(seq, &payload(seq)).unwrap();
        writeln!(out, "ack {seq}").unwrap();
        out.flush().unwrap();
    }
}

#[test]
fn sigkill_at_random_moments_never_loses_an_acknowledged_record() {
    let tmp = tempfile::tempdir().unwrap();
    let exe = std::env::current_exe().unwrap();
    let mut max_acked = 0u64;
    let mut rng = 0x5eed_u64;
    for round in 0..8 {
        let mut child = Command::new(&exe)
            .args(["--exact", "sigkill::child_entry_point", "--nocapture", "--test-threads=1"])
            .env(CHILD_ENV, tmp.path())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let reader = std::thread::spawn(move || {
            let mut last = None;
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if let Some(n) = line.strip_prefix("ack ") {
                    last = Some(n.trim().parse::<u64>().unwrap());
                }
            }
            last
        });
        rng = rng.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        std::thread::sleep(Duration::from_millis(40 + (rng >> 33) % 160));
        child.kill().unwrap(); // SIGKILL on Unix
        child.wait().unwrap();
        if let Some(last) = reader.join().unwrap() {
            assert!(last > max_acked, "round {round}: the child continues after the last acknowledged record");
            max_acked = last;
        }
        let dir: Arc<dyn Directory> = Arc::new(FsDirectory::open(tmp.path()).unwrap());
        let (_, report, got) = open_all(dir, opts()).unwrap_or_else(|e| panic!("round {round}: {e}"));
        let seqs: Vec<u64> = got.iter().map(|r| r.0).collect();
        assert_eq!(seqs, (1..=seqs.len() as u64).collect::<Vec<_>>(), "round {round}: an intact prefix");
        assert!(got.iter().all(|(s, p)| *p == payload(*s)), "round {round}: payloads intact");
        assert!(report.last_seq >= max_acked, "round {round}: acked {max_acked}, recovered {}", report.last_seq);
    }
    assert!(max_acked > 8, "the child made progress ({max_acked} acks)");
}

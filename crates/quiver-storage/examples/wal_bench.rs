//! WAL append throughput and recovery speed on the real file system.
//!
//! ```text
//! cargo run --release -p quiver-storage --example wal_bench -- [DIR] [SECONDS_PER_CASE] [RECOVERY_MB] [MAX_DELAY_US]
//! ```
//! DIR defaults to a temporary directory (use one on the disk you care about: /tmp may be tmpfs, where fsync is
//! free). Records are 1.5 KB. Prints records/s and MB/s per durability mode and writer count, then the replay
//! speed of a WAL of RECOVERY_MB megabytes (default 256). MAX_DELAY_US is the group-commit leader's wait (default 0).

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use quiver_storage::{Directory, Durability, Error, FsDirectory, Wal, WalOptions};

const RECORD: usize = 1536;

fn case(root: &std::path::Path, name: &str, durability: Durability, writers: usize, secs: f64) -> f64 {
    let path = root.join(name);
    let _ = std::fs::remove_dir_all(&path);
    let dir: Arc<dyn Directory> = Arc::new(FsDirectory::open(&path).expect("open dir"));
    let (wal, _) = Wal::open(dir, WalOptions { durability, ..WalOptions::default() }).expect("open wal");
    let next = Mutex::new(0u64);
    let payload = vec![0xA5u8; RECORD];
    let deadline = Instant::now() + Duration::from_secs_f64(secs);
    let start = Instant::now();
    std::thread::scope(|s| {
        for _ in 0..writers {
            s.spawn(|| {
                while Instant::now() < deadline {
                    let seq = {
                        let mut n = next.lock().expect("lock");
                        *n += 1;
                        wal.submit(*n, &payload).expect("submit");
                        *n
                    };
                    wal.wait(seq).expect("wait");
                }
            });
        }
    });
    let elapsed = start.elapsed().as_secs_f64();
    let n = *next.lock().expect("lock") as f64;
    let rate = n / elapsed;
    println!(
        "{name:<16} writers {writers:>3}: {rate:>10.0} records/s {:>8.1} MB/s ({n} records in {elapsed:.2} s)",
        rate * RECORD as f64 / 1e6
    );
    let _ = std::fs::remove_dir_all(&path);
    rate
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let tmp = tempfile::tempdir().expect("tempdir");
    let root = args.get(1).map_or_else(|| tmp.path().to_owned(), PathBuf::from);
    let secs: f64 = args.get(2).and_then(|s| s.parse().ok()).unwrap_or(2.0);
    let recovery_mb: u64 = args.get(3).and_then(|s| s.parse().ok()).unwrap_or(256);
    println!("WAL benchmark in {} ({RECORD}-byte records, {secs} s per case)", root.display());

    let single = case(&root, "fsync", Durability::Fsync, 1, secs);
    let delay_us: u64 = args.get(4).and_then(|s| s.parse().ok()).unwrap_or(0);
    let batch = Durability::Batch { max_delay: Duration::from_micros(delay_us) };
    for writers in [1, 8, 64] {
        let r = case(&root, &format!("batch-{writers}"), batch, writers, secs);
        println!("{:>40} {:.1}x the single-writer fsync rate", "", r / single);
    }
    case(&root, "none", Durability::None, 1, secs);

    // Recovery: write RECOVERY_MB of records without fsync, sync once, then time a full open + replay.
    let path = root.join("recovery");
    let _ = std::fs::remove_dir_all(&path);
    let dir: Arc<dyn Directory> = Arc::new(FsDirectory::open(&path).expect("open dir"));
    let opts = WalOptions { durability: Durability::None, ..WalOptions::default() };
    let (wal, _) = Wal::open(dir.clone(), opts).expect("open wal");
    let payload = vec![0x5Au8; RECORD];
    let records = recovery_mb * 1_000_000 / RECORD as u64;
    for seq in 1..=records {
        wal.append(seq, &payload).expect("append");
    }
    wal.sync().expect("sync");
    drop(wal);
    let start = Instant::now();
    let mut sum = 0u64;
    let (_, report) = Wal::open_and_replay(dir, opts, 0, |_, p| {
        sum += p.len() as u64;
        Ok::<(), Error>(())
    })
    .expect("replay");
    let secs = start.elapsed().as_secs_f64();
    println!(
        "recovery: {} records, {:.1} MB in {secs:.3} s = {:.0} MB/s ({:.2} s per GB; page cache warm)",
        report.records,
        report.bytes as f64 / 1e6,
        report.bytes as f64 / 1e6 / secs,
        secs * 1e9 / report.bytes as f64
    );
    assert_eq!(sum, records * RECORD as u64);
    let _ = std::fs::remove_dir_all(&path);
}

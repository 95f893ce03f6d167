//! A node's replica of one shard: a local engine collection that applies the shard's log in order.
//!
//! The applier reads the stream from the collection's applied sequence number + 1 (an ordered consumer: no acks,
//! gaps re-created by the client), decodes each entry into an [`Operation`] and hands batches of them to
//! [`Collection::apply_replicated`] on a blocking thread. The local WAL records each operation under its stream
//! sequence number, so the applied sequence survives a restart and is the checkpoint: a restarted node resumes
//! from it, and an entry seen twice is skipped.
//!
//! **Snapshots.** A shard's log is truncated below its latest snapshot (in the JetStream object store). A
//! replica whose next entry is gone from the log — or one starting empty while a snapshot exists — first
//! restores the snapshot (its digest checked by the object store, its archive verified whole by the engine
//! before it replaces anything), then replays the log from the snapshot's sequence number + 1. An entry arriving
//! out of order (the log was truncated while the consumer started) is detected by its sequence number and sends
//! the replica back through that check.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use futures_util::StreamExt;
use quiver_engine::ops::Operation;
use quiver_engine::{Collection, Database};
use tokio::sync::watch;

use crate::map::CollectionSpec;
use crate::nats::Nats;

/// How long a replica waits for its next log entry before checking the log has none (a stalled consumer).
const IDLE_CHECK: Duration = Duration::from_secs(2);
/// How long a snapshot download may make no progress before it is abandoned and tried again. A download whose
/// object was replaced under it (its chunks purged) never progresses again, and a joiner waits on it, so this is
/// short: one chunk is 128 KiB, and no working link takes seconds over that.
const DOWNLOAD_STALL: Duration = Duration::from_secs(5);
/// Most log entries applied in one blocking call.
const BATCH: usize = 512;

/// Progress of one replica, readable while it runs.
#[derive(Debug, Default)]
pub struct ReplicaProgress {
    /// Operations applied from the log (the collection's applied sequence number mirrors it).
    pub applied: AtomicU64,
    /// Failures so far (a replica that fails resumes from its checkpoint and keeps going).
    pub errors: AtomicU64,
    /// Snapshots restored.
    pub restores: AtomicU64,
}

/// A running replica: stop it with [`Replica::stop`] (or by dropping the sender side).
#[derive(Debug)]
pub struct Replica {
    stop: watch::Sender<bool>,
    /// Its progress.
    pub progress: Arc<ReplicaProgress>,
    task: tokio::task::JoinHandle<()>,
}

impl Replica {
    /// Starts applying shard `shard` of `spec` to `col`, the local collection of `db` named
    /// [`CollectionSpec::shard_collection`].
    pub fn start(nats: Nats, spec: Arc<CollectionSpec>, shard: u32, db: Arc<Database>, col: Collection) -> Replica {
        let (stop, rx) = watch::channel(false);
        let progress = Arc::new(ReplicaProgress::default());
        let p = Arc::clone(&progress);
        let task = tokio::spawn(run(nats, spec, shard, db, col, rx, p));
        Replica { stop, progress, task }
    }

    /// Stops the applier and waits for it to finish its current batch.
    pub async fn stop(self) {
        let _ = self.stop.send(true);
        let _ = self.task.await;
    }
}

/// Restores shard `shard`'s stored snapshot into the local collection (replacing it); `None` when there is none.
async fn restore(
    nats: &Nats,
    spec: &CollectionSpec,
    shard: u32,
    db: &Arc<Database>,
) -> Result<Option<Collection>, String> {
    let name = spec.shard_collection(shard);
    let dir = db.root().join("snapshots");
    tokio::fs::create_dir_all(&dir).await.map_err(|e| format!("creating {}: {e}", dir.display()))?;
    let tmp = dir.join(format!(".download-{name}"));
    let Some(snap) = watch_download(nats.get_snapshot(spec, shard, &tmp), &tmp).await? else {
        return Ok(None);
    };
    let db = Arc::clone(db);
    let t = tmp.clone();
    let restored = tokio::task::spawn_blocking(move || {
        let mut f = std::fs::File::open(&t).map_err(|e| format!("opening {}: {e}", t.display()))?;
        let saved = db.save_uploaded_snapshot(&name, &mut f).map_err(|e| e.to_string())?;
        let path = db.snapshot_path(&name, &saved.name).map_err(|e| e.to_string())?;
        let col = db.restore_snapshot(&name, &path).map_err(|e| e.to_string());
        let _ = db.delete_snapshot(&name, &saved.name);
        col
    })
    .await
    .map_err(|e| format!("the restore task failed: {e}"));
    let _ = tokio::fs::remove_file(&tmp).await;
    let col = restored??;
    tracing::info!(stream = %spec.stream_name(shard), applied = col.applied_seq(), expected = snap.applied_seq, from = %snap.node, "restored a shard from its snapshot");
    Ok(Some(col))
}

/// Runs a snapshot download, giving up when the file it writes has not grown for [`DOWNLOAD_STALL`] (a NATS
/// request that never answers would otherwise hold the replica — and anything waiting to stop it — forever).
async fn watch_download(
    download: impl std::future::Future<Output = crate::Result<Option<crate::nats::StoredSnapshot>>>,
    path: &Path,
) -> Result<Option<crate::nats::StoredSnapshot>, String> {
    tokio::pin!(download);
    let (mut size, mut since) = (0u64, tokio::time::Instant::now());
    loop {
        tokio::select! {
            r = &mut download => return r.map_err(|e| e.to_string()),
            () = tokio::time::sleep(Duration::from_secs(1)) => {
                let now = tokio::fs::metadata(path).await.map_or(0, |m| m.len());
                if now != size {
                    (size, since) = (now, tokio::time::Instant::now());
                } else if since.elapsed() >= DOWNLOAD_STALL {
                    return Err(format!(
                        "the snapshot download made no progress for {} s (at {size} bytes)",
                        DOWNLOAD_STALL.as_secs()
                    ));
                }
            }
        }
    }
}

async fn run(
    nats: Nats,
    spec: Arc<CollectionSpec>,
    shard: u32,
    db: Arc<Database>,
    mut col: Collection,
    mut stop: watch::Receiver<bool>,
    progress: Arc<ReplicaProgress>,
) {
    let stream = spec.stream_name(shard);
    let pause = |stop: &mut watch::Receiver<bool>| {
        let mut stop = stop.clone();
        async move {
            tokio::select! {
                () = tokio::time::sleep(Duration::from_millis(500)) => false,
                _ = stop.changed() => true,
            }
        }
    };
    loop {
        if *stop.borrow() {
            return;
        }
        // Entries this replica needs that the log no longer has (or an empty replica and a snapshot to start from).
        let applied = col.applied_seq();
        let must = match nats.log_bounds(&spec, shard).await {
            Ok((first, last)) => last >= first && first > applied + 1,
            Err(_) => false,
        };
        if must || applied == 0 {
            let restored = tokio::select! {
                r = restore(&nats, &spec, shard, &db) => r,
                _ = stop.changed() => return,
            };
            match restored {
                Ok(Some(c)) => {
                    col = c;
                    progress.restores.fetch_add(1, Ordering::Relaxed);
                }
                Ok(None) if must => {
                    progress.errors.fetch_add(1, Ordering::Relaxed);
                    tracing::error!(stream = %stream, applied, "the log was truncated past this replica and there is no snapshot; retrying");
                    if pause(&mut stop).await {
                        return;
                    }
                    continue;
                }
                Ok(None) => {}
                Err(e) => {
                    progress.errors.fetch_add(1, Ordering::Relaxed);
                    tracing::warn!(stream = %stream, error = %e, "could not restore the shard's snapshot; retrying");
                    if pause(&mut stop).await {
                        return;
                    }
                    continue;
                }
            }
        }
        let from = col.applied_seq() + 1;
        let messages = tokio::select! {
            r = nats.consume(&spec, shard, from) => r,
            _ = stop.changed() => return,
        };
        let messages = match messages {
            Ok(m) => m,
            Err(e) => {
                progress.errors.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(stream = %stream, error = %e, "replica cannot consume its log; retrying");
                if pause(&mut stop).await {
                    return;
                }
                continue;
            }
        };
        let mut expected = from;
        let mut chunks = messages.ready_chunks(BATCH);
        loop {
            let next = tokio::select! {
                n = chunks.next() => Some(n),
                _ = stop.changed() => return,
                () = tokio::time::sleep(IDLE_CHECK) => None,
            };
            let Some(next) = next else {
                // Nothing for a while: make sure the log has nothing either. A consumer whose NATS server went
                // away can stall without an error; it is re-created from the checkpoint.
                if let Ok((_, last)) = nats.log_bounds(&spec, shard).await
                    && last > col.applied_seq()
                {
                    progress.errors.fetch_add(1, Ordering::Relaxed);
                    tracing::warn!(stream = %stream, applied = col.applied_seq(), last, "replica's consumer stalled; re-creating it");
                    break;
                }
                continue;
            };
            let Some(batch) = next else { break };
            let mut ops = Vec::with_capacity(batch.len());
            let mut failed = None;
            let mut gap = false;
            for m in batch {
                match m {
                    Ok(m) => match m.info() {
                        Ok(info) => {
                            let seq = info.stream_sequence;
                            if seq > expected {
                                gap = true;
                                break;
                            }
                            expected = expected.max(seq + 1);
                            match Operation::decode(&m.payload, Path::new(&stream), seq) {
                                Ok(op) => ops.push((seq, op)),
                                Err(e) => {
                                    failed = Some(format!("entry {seq} does not decode: {e}"));
                                    break;
                                }
                            }
                        }
                        Err(e) => {
                            failed = Some(format!("a message without stream info: {e}"));
                            break;
                        }
                    },
                    Err(e) => {
                        failed = Some(e.to_string());
                        break;
                    }
                }
            }
            let c = col.clone();
            let n = ops.len() as u64;
            let applied = tokio::task::spawn_blocking(move || {
                for (seq, op) in &ops {
                    c.apply_replicated(*seq, op)?;
                }
                Ok::<_, quiver_engine::Error>(())
            })
            .await;
            match applied {
                Ok(Ok(())) => {
                    progress.applied.fetch_add(n, Ordering::Relaxed);
                }
                Ok(Err(e)) => failed = Some(format!("applying: {e}")),
                Err(e) => failed = Some(format!("the apply task failed: {e}")),
            }
            if let Some(why) = failed {
                progress.errors.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(stream = %stream, applied = col.applied_seq(), error = %why, "replica stopped; resuming from its checkpoint");
                if pause(&mut stop).await {
                    return;
                }
                break;
            }
            if gap {
                tracing::info!(stream = %stream, applied = col.applied_seq(), "the log skips ahead of this replica (truncated); restoring");
                break;
            }
        }
    }
}

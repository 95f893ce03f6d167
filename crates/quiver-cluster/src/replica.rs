//! A node's replica of one shard: a local engine collection that applies the shard's log in order.
//!
//! The applier reads the stream from the collection's applied sequence number + 1 (an ordered consumer: no acks,
//! gaps re-created by the client), decodes each entry into an [`Operation`] and hands batches of them to
//! [`Collection::apply_replicated`] on a blocking thread. The local WAL records each operation under its stream
//! sequence number, so the applied sequence survives a restart and is the checkpoint: a restarted node resumes
//! from it, and an entry seen twice is skipped.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use futures_util::StreamExt;
use quiver_engine::Collection;
use quiver_engine::ops::Operation;
use tokio::sync::watch;

use crate::map::CollectionSpec;
use crate::nats::Nats;

/// Most log entries applied in one blocking call.
const BATCH: usize = 512;

/// Progress of one replica, readable while it runs.
#[derive(Debug, Default)]
pub struct ReplicaProgress {
    /// Operations applied from the log (the collection's applied sequence number mirrors it).
    pub applied: AtomicU64,
    /// Failures so far (a replica that fails resumes from its checkpoint and keeps going).
    pub errors: AtomicU64,
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
    /// Starts applying shard `shard` of `spec` to `col`.
    pub fn start(nats: Nats, spec: Arc<CollectionSpec>, shard: u32, col: Collection) -> Replica {
        let (stop, rx) = watch::channel(false);
        let progress = Arc::new(ReplicaProgress::default());
        let p = Arc::clone(&progress);
        let task = tokio::spawn(run(nats, spec, shard, col, rx, p));
        Replica { stop, progress, task }
    }

    /// Stops the applier and waits for it to finish its current batch.
    pub async fn stop(self) {
        let _ = self.stop.send(true);
        let _ = self.task.await;
    }
}

async fn run(
    nats: Nats,
    spec: Arc<CollectionSpec>,
    shard: u32,
    col: Collection,
    mut stop: watch::Receiver<bool>,
    progress: Arc<ReplicaProgress>,
) {
    let stream = spec.stream_name(shard);
    loop {
        if *stop.borrow() {
            return;
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
                tokio::select! {
                    () = tokio::time::sleep(Duration::from_millis(500)) => continue,
                    _ = stop.changed() => return,
                }
            }
        };
        let mut chunks = messages.ready_chunks(BATCH);
        loop {
            let next = tokio::select! {
                n = chunks.next() => n,
                _ = stop.changed() => return,
            };
            let Some(batch) = next else { break };
            let mut ops = Vec::with_capacity(batch.len());
            let mut failed = None;
            for m in batch {
                match m {
                    Ok(m) => match m.info() {
                        Ok(info) => {
                            let seq = info.stream_sequence;
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
                tokio::select! {
                    () = tokio::time::sleep(Duration::from_millis(500)) => {},
                    _ = stop.changed() => return,
                }
                break;
            }
        }
    }
}

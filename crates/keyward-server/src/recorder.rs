//! Validation counts and history, written behind the answers every half second and flushed on
//! graceful shutdown. A crash loses at most that window of counters, never a change.

use keyward_store::{Store, StoreError, ValidationRecord};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc::{self, error::TryRecvError};
use tokio::task::JoinHandle;

const FLUSH_EVERY: Duration = Duration::from_millis(500);
/// Validations one transaction writes at most (a busy half second may take several).
const BATCH: usize = 5_000;
const QUEUE: usize = 200_000;
/// A failed batch is tried once more after this: a deadlock between nodes or a dropped
/// connection passes, and the failed transaction wrote nothing.
const RETRY_AFTER: Duration = Duration::from_millis(100);

#[derive(Clone)]
pub struct Recorder {
    queue: mpsc::Sender<ValidationRecord>,
    /// Records dropped because the queue was full, reported by the writer once per flush.
    dropped: Arc<AtomicU64>,
}

impl Recorder {
    /// Starts the writer; it ends, after a last flush, when every `Recorder` clone is dropped.
    pub fn start(store: Arc<dyn Store>) -> (Recorder, JoinHandle<()>) {
        let (queue, mut incoming) = mpsc::channel::<ValidationRecord>(QUEUE);
        let dropped = Arc::new(AtomicU64::new(0));
        let dropped_seen = dropped.clone();
        let writer = tokio::spawn(async move {
            let mut batch = Vec::with_capacity(BATCH);
            loop {
                // A timer, not a wait on the queue: validations queue up without waking the writer,
                // and a busy half second is one transaction, not one per wake-up.
                tokio::time::sleep(FLUSH_EVERY).await;
                let closed = loop {
                    match incoming.try_recv() {
                        Ok(record) => {
                            batch.push(record);
                            if batch.len() == BATCH {
                                flush(store.as_ref(), &mut batch).await;
                            }
                        }
                        Err(TryRecvError::Empty) => break false,
                        Err(TryRecvError::Disconnected) => break true,
                    }
                };
                flush(store.as_ref(), &mut batch).await;
                let lost = dropped_seen.swap(0, Ordering::Relaxed);
                if lost > 0 {
                    tracing::warn!(lost, "the validation queue was full; this many validations went unrecorded");
                }
                if closed {
                    break;
                }
            }
        });
        (Recorder { queue, dropped }, writer)
    }

    /// Queues one validation; never waits (a full queue drops the record and says so).
    pub fn record(&self, record: ValidationRecord) {
        if self.queue.try_send(record).is_err() {
            self.dropped.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// Writes the batch and empties it; a batch that fails twice is dropped and said so.
async fn flush(store: &dyn Store, batch: &mut Vec<ValidationRecord>) {
    if batch.is_empty() {
        return;
    }
    if let Err(err) = write(store, batch).await {
        tracing::warn!(error = %err, records = batch.len(), "could not record validations; dropping this batch");
    }
    batch.clear();
}

async fn write(store: &dyn Store, batch: &[ValidationRecord]) -> Result<(), StoreError> {
    if let Err(err) = store.record_validations(batch).await {
        tracing::debug!(error = %err, "could not record validations; trying once more");
        tokio::time::sleep(RETRY_AFTER).await;
        return store.record_validations(batch).await;
    }
    Ok(())
}

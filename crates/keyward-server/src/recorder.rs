//! Validation counts and history, written behind the answers every half second and flushed on
//! graceful shutdown. A crash loses at most that window of counters, never a change.

use chrono::{DateTime, Utc};
use keyward_store::{Store, StoreError, ValidationCount, ValidationRecord};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::mpsc::{self, error::TryRecvError, error::TrySendError};
use tokio::task::JoinHandle;

const FLUSH_EVERY: Duration = Duration::from_millis(500);
/// Validations one transaction writes at most (a busy half second may take several).
const BATCH: usize = 5_000;
const QUEUE: usize = 200_000;
/// A failed batch is tried once more after this: a deadlock between nodes or a dropped
/// connection passes, and the failed transaction wrote nothing.
const RETRY_AFTER: Duration = Duration::from_millis(100);

/// Validations that found the queue full, summed per (environment, license): counted, though
/// their history rows are gone.
type Overflow = Mutex<HashMap<(String, String), (i64, DateTime<Utc>)>>;

#[derive(Clone)]
pub struct Recorder {
    queue: mpsc::Sender<ValidationRecord>,
    overflow: Arc<Overflow>,
}

impl Recorder {
    /// Starts the writer; it ends, after a last flush, when every `Recorder` clone is dropped.
    pub fn start(store: Arc<dyn Store>) -> (Recorder, JoinHandle<()>) {
        Recorder::start_with_queue(store, QUEUE)
    }

    fn start_with_queue(store: Arc<dyn Store>, queue: usize) -> (Recorder, JoinHandle<()>) {
        let (queue, mut incoming) = mpsc::channel::<ValidationRecord>(queue);
        let overflow = Arc::new(Overflow::default());
        let overflowed = overflow.clone();
        let writer = tokio::spawn(async move {
            let mut batch = Vec::with_capacity(BATCH);
            let mut behind = false;
            loop {
                // A timer, not a wait on the queue: validations queue up without waking the writer,
                // and a busy half second is one transaction, not one per wake-up.
                if !behind {
                    tokio::time::sleep(FLUSH_EVERY).await;
                }
                // What waits now, and no more: the overflow is written each round even when
                // validations arrive faster than they are written.
                let idle = incoming.is_empty();
                let mut waiting = incoming.len().max(1);
                let closed = loop {
                    match incoming.try_recv() {
                        Ok(record) => {
                            batch.push(record);
                            if batch.len() == BATCH {
                                flush(store.as_ref(), &mut batch).await;
                            }
                            waiting -= 1;
                            if waiting == 0 {
                                break false;
                            }
                        }
                        Err(TryRecvError::Empty) => break false,
                        Err(TryRecvError::Disconnected) => break true,
                    }
                };
                flush(store.as_ref(), &mut batch).await;
                count_overflow(store.as_ref(), &overflowed).await;
                if closed {
                    break;
                }
                // A pause is the time to fold what SQLite journaled, not the next busy second.
                if idle {
                    if let Err(err) = store.fold_validations().await {
                        tracing::warn!(error = %err, "could not fold journaled validations; the next fold takes them");
                    }
                }
                behind = incoming.len() >= BATCH;
            }
        });
        (Recorder { queue, overflow }, writer)
    }

    /// Queues one validation; never waits. When the queue is full the validation is still
    /// counted, in memory until the next write, but its history row is dropped.
    pub fn record(&self, record: ValidationRecord) {
        if let Err(TrySendError::Full(record) | TrySendError::Closed(record)) = self.queue.try_send(record) {
            let mut overflow = self.overflow.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
            let (count, last) = overflow.entry((record.environment, record.license_id)).or_insert((0, record.at));
            *count += 1;
            *last = (*last).max(record.at);
        }
    }
}

/// Writes the counts of validations that found the queue full, and says how many lost their row.
async fn count_overflow(store: &dyn Store, overflow: &Overflow) {
    let counts: Vec<ValidationCount> = std::mem::take(&mut *overflow.lock().unwrap_or_else(|p| p.into_inner()))
        .into_iter()
        .map(|((environment, license_id), (count, last_at))| ValidationCount {
            environment,
            license_id,
            count,
            last_at,
        })
        .collect();
    if counts.is_empty() {
        return;
    }
    let validations: i64 = counts.iter().map(|c| c.count).sum();
    tracing::warn!(
        validations,
        licenses = counts.len(),
        "the validation queue was full: these validations are counted, without history rows"
    );
    if let Err(err) = twice(|| store.count_validations(&counts)).await {
        tracing::warn!(error = %err, validations, "could not count validations; dropping them");
    }
}

/// Writes the batch and empties it; a batch that fails twice is dropped and said so.
async fn flush(store: &dyn Store, batch: &mut Vec<ValidationRecord>) {
    if batch.is_empty() {
        return;
    }
    if let Err(err) = twice(|| store.record_validations(batch)).await {
        tracing::warn!(error = %err, records = batch.len(), "could not record validations; dropping this batch");
    }
    batch.clear();
}

/// Runs a write, and once more after `RETRY_AFTER` if it fails.
async fn twice<F, W>(write: W) -> Result<(), StoreError>
where
    W: Fn() -> F,
    F: std::future::Future<Output = Result<(), StoreError>>,
{
    if let Err(err) = write().await {
        tracing::debug!(error = %err, "could not record validations; trying once more");
        tokio::time::sleep(RETRY_AFTER).await;
        return write().await;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use keyward_core::ValidationCode;
    use keyward_store::testing;

    #[tokio::test]
    async fn a_full_queue_loses_history_rows_but_never_a_count() {
        let (store, _dir, license) = testing::sqlite_with_license("KEY-1").await;
        let store: Arc<dyn Store> = Arc::new(store);

        let (recorder, writer) = Recorder::start_with_queue(store.clone(), 10);
        let last = Utc::now();
        for i in 0..100 {
            recorder.record(ValidationRecord {
                environment: "production".into(),
                license_id: license.id.clone(),
                at: last - chrono::Duration::seconds(100 - i),
                code: ValidationCode::Valid,
                fingerprint: None,
                ip: None,
            });
        }
        drop(recorder);
        writer.await.unwrap();

        let after = store.license("production", &license.id).await.unwrap().unwrap();
        assert_eq!(after.validation_count, 100);
        assert_eq!(
            after.last_validated_at.map(|t| t.timestamp()),
            Some((last - chrono::Duration::seconds(1)).timestamp())
        );
        let history = store.validations("production", &license.id, &keyward_store::ListQuery::default()).await.unwrap();
        assert_eq!(history.total, 10, "the ten that fitted in the queue");
    }

    /// On SQLite, once validations pause the writer folds the journal into counts and history at
    /// once, without waiting for the next busy second to pass the fold's interval.
    #[tokio::test]
    async fn a_pause_folds_what_sqlite_journaled() {
        use sqlx::Connection;
        let (store, dir, license) = testing::sqlite_with_license("KEY-1").await;
        let store: Arc<dyn Store> = Arc::new(store);
        let (recorder, _writer) = Recorder::start(store.clone());
        recorder.record(ValidationRecord {
            environment: "production".into(),
            license_id: license.id.clone(),
            at: Utc::now(),
            code: ValidationCode::Valid,
            fingerprint: None,
            ip: None,
        });
        let url = format!("sqlite://{}", dir.path().join("keyward.db").display());
        let mut raw = sqlx::SqliteConnection::connect(&url).await.unwrap();
        let folded = "SELECT (SELECT COUNT(*) FROM validations) || '/' || (SELECT COUNT(*) FROM validation_journal)";
        let mut seen = String::new();
        // The batch is written after half a second, the fold half a second later.
        for _ in 0..40 {
            tokio::time::sleep(Duration::from_millis(100)).await;
            seen = sqlx::query_scalar(folded).fetch_one(&mut raw).await.unwrap();
            if seen == "1/0" {
                break;
            }
        }
        assert_eq!(seen, "1/0", "history rows / journal rows, within 4 s (the fold's own interval is 10 s)");
        assert_eq!(store.license("production", &license.id).await.unwrap().unwrap().validation_count, 1);
    }
}

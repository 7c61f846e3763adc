//! SQLite: validations are appended to `validation_journal` and folded into the licenses' counts
//! and the indexed history every `FOLD_EVERY` or when validations pause, not written into them
//! each half second. At a million licenses each batch used to dirty one random page of `licenses`
//! and one of the history index per validation; appending writes a few pages at the journal's end,
//! and a fold, sorted by license, dirties each page once for many validations. Until a fold, reads
//! add what the journal holds from memory, so a count is as current as the batch that wrote it.

use super::licenses::{validation_args, VALIDATION_INSERT_COLUMNS};
use super::rows::{insert_many, time};
use super::SqlStore;
use crate::*;
use chrono::{DateTime, Utc};
use sqlx::{AnyConnection, AnyPool, Connection, Row};
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};
use tokio::sync::{RwLock, RwLockReadGuard};

/// How long validations may wait in the journal: longer folds fewer pages per validation, and
/// leaves more for a read of their history to scan and for a stopping node to fold.
pub(crate) const FOLD_EVERY: Duration = Duration::from_secs(10);

/// Validations in the journal per license: how many and the latest.
pub(crate) type Pending = HashMap<String, (i64, DateTime<Utc>)>;

pub(crate) struct Journal {
    pending: Mutex<Pending>,
    /// Held to read a license and add its pending validations; taken whole to commit a fold and
    /// forget what it folded, so no read sees the fold twice or not at all.
    gate: RwLock<()>,
    /// Appends and folds one at a time; the time of the last fold.
    writing: tokio::sync::Mutex<Instant>,
}

impl Journal {
    /// The journal as the database holds it: what a crash left is read, not folded, so that
    /// opening stays quick; the first fold takes it.
    pub(crate) async fn open(pool: &AnyPool) -> Result<Journal> {
        past_history(pool).await?;
        let pending = journaled(&mut *pool.acquire().await?).await?;
        Ok(Journal {
            pending: Mutex::new(pending),
            gate: RwLock::new(()),
            writing: tokio::sync::Mutex::new(Instant::now()),
        })
    }

    fn remember(&self, batch: &[ValidationRecord]) {
        let mut pending = self.pending.lock().unwrap_or_else(|p| p.into_inner());
        for record in batch {
            let (count, latest) = pending.entry(record.license_id.clone()).or_insert((0, record.at));
            *count += 1;
            *latest = (*latest).max(record.at);
        }
    }
}

/// What the journal holds per license, as `conn` sees it.
pub(crate) async fn journaled(conn: &mut AnyConnection) -> Result<Pending> {
    let rows = sqlx::query(
        "SELECT license_id, COUNT(*) AS n, MAX(validated_at) AS latest FROM validation_journal GROUP BY license_id",
    )
    .fetch_all(conn)
    .await?;
    let mut pending = Pending::with_capacity(rows.len());
    for row in &rows {
        pending.insert(row.try_get("license_id")?, (row.try_get("n")?, time(row.try_get("latest")?)?));
    }
    Ok(pending)
}

/// Adds to each license the validations `pending` holds for it.
pub(crate) fn add_pending<'a>(pending: &Pending, licenses: impl IntoIterator<Item = &'a mut License>) {
    if pending.is_empty() {
        return;
    }
    for license in licenses {
        if let Some(&(count, latest)) = pending.get(&license.id) {
            license.validation_count += count;
            license.last_validated_at = license.last_validated_at.max(Some(latest));
        }
    }
}

/// Moves the journal's sequence past every history row's seq (those written before the journal,
/// or by an import), so that a row folded with its seq takes no other row's.
pub(crate) async fn past_history(pool: &AnyPool) -> Result<()> {
    sqlx::raw_sql(
        "INSERT INTO sqlite_sequence (name, seq) SELECT 'validation_journal', 0 \
         WHERE NOT EXISTS (SELECT 1 FROM sqlite_sequence WHERE name = 'validation_journal'); \
         UPDATE sqlite_sequence SET seq = MAX(seq, (SELECT COALESCE(MAX(seq), 0) FROM validations)) \
         WHERE name = 'validation_journal'",
    )
    .execute(pool)
    .await?;
    Ok(())
}

impl SqlStore {
    /// Held while reading licenses and adding what the journal holds for them: a fold commits
    /// and forgets its validations while no one holds it.
    pub(crate) async fn reading_journal(&self) -> Option<RwLockReadGuard<'_, ()>> {
        match &self.journal {
            Some(journal) => Some(journal.gate.read().await),
            None => None,
        }
    }

    /// Adds to each license the validations the journal holds for it (within `reading_journal`).
    pub(crate) fn add_journaled<'a>(&self, licenses: impl IntoIterator<Item = &'a mut License>) {
        let Some(journal) = &self.journal else { return };
        add_pending(&journal.pending.lock().unwrap_or_else(|p| p.into_inner()), licenses);
    }

    /// Appends the batch to the journal, and folds it when `FOLD_EVERY` has passed.
    pub(crate) async fn journal_validations(&self, journal: &Journal, batch: &[ValidationRecord]) -> Result<()> {
        let mut last_fold = journal.writing.lock().await;
        let mut tx = self.begin_write().await?;
        insert_many(&mut tx, self.backend, "validation_journal", &VALIDATION_INSERT_COLUMNS, batch, validation_args)
            .await?;
        tx.commit().await?;
        journal.remember(batch);
        if last_fold.elapsed() >= FOLD_EVERY {
            *last_fold = Instant::now();
            // The batch is written: a failed fold wrote nothing, and the next one takes its rows.
            if let Err(err) = self.fold(journal).await {
                tracing::warn!(error = %err, "could not fold journaled validations; the next fold takes them");
            }
        }
        Ok(())
    }

    /// Folds the whole journal now, unless nothing is journaled: when validations pause and when
    /// a node stops.
    pub(crate) async fn fold_journal(&self) -> Result<()> {
        let Some(journal) = &self.journal else { return Ok(()) };
        let mut last_fold = journal.writing.lock().await;
        if journal.pending.lock().unwrap_or_else(|p| p.into_inner()).is_empty() {
            return Ok(());
        }
        self.fold(journal).await?;
        *last_fold = Instant::now();
        Ok(())
    }

    /// One transaction: each license's count and latest time, its history rows in license order,
    /// the journal emptied. Rows of a license deleted since are left out by one sorted lookup
    /// each; the foreign key would look each up again, so it is off for the fold alone. Its sorts
    /// go to temporary files: in memory they left ~270 MB with glibc after a cold sweep at 1M.
    async fn fold(&self, journal: &Journal) -> Result<()> {
        let mut conn = self.writer.acquire().await?;
        let mut folded = Ok(());
        for pragma in ["PRAGMA foreign_keys = OFF", "PRAGMA temp_store = FILE"] {
            if let Err(err) = sqlx::query(pragma).execute(&mut *conn).await {
                folded = Err(err.into());
                break;
            }
        }
        if folded.is_ok() {
            folded = fold_into(&mut conn, journal).await;
        }
        for pragma in ["PRAGMA foreign_keys = ON", "PRAGMA temp_store = MEMORY"] {
            if sqlx::query(pragma).execute(&mut *conn).await.is_err() {
                // Never again lend a connection that writes without its foreign keys.
                conn.close_on_drop();
            }
        }
        folded
    }

    /// What a license's history is listed from: the history and, on SQLite, the journal.
    pub(crate) fn history_from(&self) -> &'static str {
        match self.journal {
            Some(_) => {
                "(SELECT seq, environment, license_id, validated_at, code, fingerprint, ip FROM validations \
                 UNION ALL SELECT seq, environment, license_id, validated_at, code, fingerprint, ip \
                 FROM validation_journal) AS validations"
            }
            None => "validations",
        }
    }
}

async fn fold_into(conn: &mut AnyConnection, journal: &Journal) -> Result<()> {
    let mut tx = conn.begin_with(Backend::Sqlite.begin_write()).await?;
    let upto: Option<i64> = sqlx::query_scalar("SELECT MAX(seq) FROM validation_journal").fetch_one(&mut *tx).await?;
    let Some(upto) = upto else { return Ok(()) };
    sqlx::query(
        "WITH v AS (SELECT license_id, environment, COUNT(*) AS n, MAX(validated_at) AS latest \
         FROM validation_journal WHERE seq <= $1 GROUP BY license_id, environment) \
         UPDATE licenses SET validation_count = validation_count + v.n, \
         last_validated_at = CASE WHEN last_validated_at IS NULL OR last_validated_at < v.latest \
         THEN v.latest ELSE last_validated_at END \
         FROM v WHERE licenses.id = v.license_id AND licenses.environment = v.environment",
    )
    .bind(upto)
    .execute(&mut *tx)
    .await?;
    let columns = VALIDATION_INSERT_COLUMNS.join(", ");
    // Sorted before the lookups, which then walk the licenses' index in order.
    sqlx::query(&format!(
        "WITH j AS MATERIALIZED (SELECT seq, {columns} FROM validation_journal WHERE seq <= $1 \
         ORDER BY license_id, validated_at, seq) \
         INSERT INTO validations (seq, {columns}) SELECT seq, {columns} FROM j \
         WHERE EXISTS (SELECT 1 FROM licenses l WHERE l.id = j.license_id)"
    ))
    .bind(upto)
    .execute(&mut *tx)
    .await?;
    sqlx::query("DELETE FROM validation_journal WHERE seq <= $1").bind(upto).execute(&mut *tx).await?;
    let _gate = journal.gate.write().await;
    tx.commit().await?;
    // Appends wait on `writing`, so the journal held nothing past `upto` of this process.
    journal.pending.lock().unwrap_or_else(|p| p.into_inner()).clear();
    Ok(())
}

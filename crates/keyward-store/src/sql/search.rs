//! SQLite's key search index, in a database file of its own beside the store's (`keyward.db`
//! has `keyward.search.db`), written by a connection of its own so that its trigram work runs
//! on another core than the writer's. Migration 0006 says how it stays exact; the file is
//! derived from the database alone: deleted, or not the database's, it is built anew on open.

use super::*;
use std::path::{Path, PathBuf};

/// The key trigram table, in the search file: attached as `search` on the readers and the
/// indexer, the name every statement here uses. It holds each key, lower-cased, less its first
/// character (`key`), and that character (`head`): a vendor's keys share their first characters,
/// whose trigrams would make every key a candidate of a search for the start of a key. Keys
/// starting with a search are found in `KEY_ROWS` instead.
pub(crate) const KEY_TABLE: &str = "search.license_key_search";

/// Each indexed license's key, lower-cased, with its environment, by its row in `KEY_TABLE`;
/// its index `license_key_starts` holds each key's first `STARTS_INDEXED` characters in order, a
/// range of which are the keys starting with a search.
pub(crate) const KEY_ROWS: &str = "search.license_key_rows";

/// How many of a key's first characters `license_key_starts` holds: the whole key made that
/// index three times as large, and 100,000 keys took 1.9 s instead of 0.4 s to add at a million.
pub(crate) const STARTS_INDEXED: usize = 8;

/// Pending licenses the indexer takes in one transaction: a large pass writes fewer, larger
/// FTS5 segments in a bulk load (against 20,000, within the machine's noise at a million).
const INDEX_BATCH: i64 = 100_000;

/// How often an idle indexer looks for pending licenses. A search never waits for it (pending
/// licenses are compared row by row), so this only bounds how many pile up between looks.
const IDLE: Duration = Duration::from_millis(200);

/// The search file of the database at `database`.
pub(crate) fn search_file(database: &Path) -> PathBuf {
    database.with_extension("search.db")
}

/// Where the readers and the indexer attach the search file: the file, or for an in-memory
/// database (one connection) an in-memory one.
#[derive(Debug, Clone)]
pub(crate) enum Attach {
    File(Arc<str>),
    Memory,
}

impl Attach {
    /// Attaches the search file to a new connection; the indexer's also gets its pragmas.
    pub(crate) async fn to(&self, conn: &mut AnyConnection, indexer: bool) -> std::result::Result<(), sqlx::Error> {
        let target = match self {
            Attach::File(path) => path.as_ref(),
            Attach::Memory => ":memory:",
        };
        sqlx::query("ATTACH DATABASE $1 AS search").bind(target).execute(&mut *conn).await?;
        if indexer {
            // The same durability as the database's writer; its own pages for the trigram merges.
            // (This connection writes only the search file: checkpoints every 32 MB, not 4.)
            for pragma in [
                "PRAGMA search.journal_mode = WAL",
                "PRAGMA search.journal_size_limit = 67108864",
                "PRAGMA search.synchronous = NORMAL",
                "PRAGMA search.cache_size = -16384",
                "PRAGMA wal_autocheckpoint = 8192",
            ] {
                conn.execute(pragma).await?;
            }
        }
        Ok(())
    }
}

/// The search file's tables. `license_key_rows` also finds a license's index row to replace or
/// delete it (the license's old key is gone by then); `state.next_row` numbers new rows.
const TABLES: &[&str] = &[
    "CREATE TABLE search.state (
        id INTEGER PRIMARY KEY CHECK (id = 1),
        token TEXT NOT NULL,
        next_row BIGINT NOT NULL
    )",
    "CREATE VIRTUAL TABLE search.license_key_search USING fts5(
        key, license_id UNINDEXED, environment UNINDEXED, head UNINDEXED,
        tokenize = 'trigram case_sensitive 1', columnsize = 0
    )",
    // Segments merged in runs of 16, not 4: eager merging was 40% of indexing a million keys.
    "INSERT INTO search.license_key_search (license_key_search, rank) VALUES ('automerge', 16)",
    "CREATE TABLE search.license_key_rows (
        row INTEGER PRIMARY KEY,
        license_id TEXT NOT NULL UNIQUE,
        environment TEXT NOT NULL,
        key TEXT NOT NULL
    )",
    "CREATE INDEX search.license_key_starts ON license_key_rows (environment, substr(key, 1, 8))",
];

/// Each pass of the indexer, in one transaction of the search file: the pending licenses up to
/// a sequence number (`$1`) taken, then each one's index row deleted.
const PASS_TAKE: &str = "INSERT OR IGNORE INTO temp.search_batch (license_id)
    SELECT license_id FROM main.license_search_pending WHERE seq <= $1";
const PASS_CLEAR: &[&str] = &[
    "DELETE FROM search.license_key_search WHERE rowid IN (
        SELECT r.row FROM temp.search_batch b JOIN search.license_key_rows r ON r.license_id = b.license_id
    )",
    "DELETE FROM search.license_key_rows WHERE license_id IN (SELECT license_id FROM temp.search_batch)",
];

/// Then the batch's licenses that still exist are numbered from `state.next_row` with their
/// current key, and indexed in row order: FTS5 writes out what it holds whenever a row goes back.
/// (CROSS JOIN: the batch first, each license looked up; for the window SQLite would rather
/// walk every license.)
const PASS_NUMBER: &str = "INSERT INTO search.license_key_rows (license_id, row, environment, key)
    SELECT b.license_id, (SELECT next_row FROM search.state) + ROW_NUMBER() OVER (ORDER BY b.license_id),
        l.environment, lower(l.key)
    FROM temp.search_batch b CROSS JOIN main.licenses l ON l.id = b.license_id";
const PASS_INDEX: &str = "INSERT INTO search.license_key_search (rowid, key, license_id, environment, head)
    SELECT r.row, substr(r.key, 2), r.license_id, r.environment, substr(r.key, 1, 1)
    FROM temp.search_batch b
    JOIN search.license_key_rows r ON r.license_id = b.license_id
    ORDER BY r.row";

/// The connections that keep the search file: the indexer's own (reading the database, writing
/// the search file) and the database's writer, which deletes the pending rows done.
#[derive(Clone)]
pub(crate) struct SearchIndexer {
    pub(crate) indexer: AnyPool,
    pub(crate) writer: AnyPool,
    /// One pass at a time in this process, pending rows deleted included: a pass begun before
    /// the last one deleted its rows would index those licenses again.
    pub(crate) pass: Arc<tokio::sync::Mutex<()>>,
}

impl SearchIndexer {
    pub(crate) fn new(indexer: AnyPool, writer: AnyPool) -> SearchIndexer {
        SearchIndexer { indexer, writer, pass: Arc::default() }
    }

    /// Makes the search file this database's index: when it is missing, holds another token
    /// than the database (a new or upgraded database, a restored backup), or is of an earlier
    /// form (keys indexed whole, without `license_key_starts`), it is emptied and every license
    /// is made pending. The search file is written first: a crash between the two leaves the
    /// tokens different, and the next open does it again.
    pub(crate) async fn open(&self) -> Result<()> {
        let wanted: Option<String> =
            sqlx::query_scalar("SELECT token FROM search_index WHERE id = 1").fetch_one(&self.writer).await?;
        // No such table (a new file) or an unreadable one: built anew either way.
        let held: Option<String> = sqlx::query_scalar(
            "SELECT token FROM search.state WHERE id = 1 \
             AND EXISTS (SELECT 1 FROM search.sqlite_master WHERE name = 'license_key_starts')",
        )
        .fetch_optional(&self.indexer)
        .await
        .ok()
        .flatten();
        if wanted.is_some() && wanted == held {
            return Ok(());
        }
        let token: String = sqlx::query_scalar("SELECT lower(hex(randomblob(16)))").fetch_one(&self.indexer).await?;
        let mut search = self.indexer.begin().await?;
        for table in ["license_key_search", "license_key_rows", "state"] {
            let drop = format!("DROP TABLE IF EXISTS search.{table}");
            sqlx::query(&drop).execute(&mut *search).await?;
        }
        for statement in TABLES {
            sqlx::query(statement).execute(&mut *search).await?;
        }
        sqlx::query("INSERT INTO search.state (id, token, next_row) VALUES (1, $1, 0)")
            .bind(&token)
            .execute(&mut *search)
            .await?;
        search.commit().await?;
        let mut database = self.writer.begin_with(Backend::Sqlite.begin_write()).await?;
        sqlx::query("DELETE FROM license_search_pending").execute(&mut *database).await?;
        sqlx::query("INSERT INTO license_search_pending (license_id) SELECT id FROM licenses ORDER BY id")
            .execute(&mut *database)
            .await?;
        sqlx::query("UPDATE search_index SET token = $1 WHERE id = 1").bind(&token).execute(&mut *database).await?;
        database.commit().await?;
        Ok(())
    }

    /// Indexes up to `INDEX_BATCH` pending licenses; how many pending rows it did (0: none).
    pub(crate) async fn index_pending(&self) -> Result<usize> {
        let _pass = self.pass.lock().await;
        let any: Option<i64> =
            sqlx::query_scalar("SELECT seq FROM license_search_pending LIMIT 1").fetch_optional(&self.indexer).await?;
        if any.is_none() {
            return Ok(0);
        }
        let mut pass = self.indexer.begin().await?;
        // The search file's write lock before the database's snapshot: what this pass reads is
        // never older than what another indexer (another process) wrote before it.
        sqlx::query("UPDATE search.state SET next_row = next_row").execute(&mut *pass).await?;
        sqlx::query(
            "CREATE TEMP TABLE IF NOT EXISTS search_batch (license_id TEXT PRIMARY KEY NOT NULL) WITHOUT ROWID",
        )
        .execute(&mut *pass)
        .await?;
        let (upto, done): (Option<i64>, i64) = sqlx::query_as(
            "SELECT MAX(seq), COUNT(*) FROM (SELECT seq FROM main.license_search_pending ORDER BY seq LIMIT $1)",
        )
        .bind(INDEX_BATCH)
        .fetch_one(&mut *pass)
        .await?;
        let Some(upto) = upto else {
            return Ok(0);
        };
        sqlx::query("DELETE FROM temp.search_batch").execute(&mut *pass).await?;
        sqlx::query(PASS_TAKE).bind(upto).execute(&mut *pass).await?;
        for statement in PASS_CLEAR {
            sqlx::query(statement).execute(&mut *pass).await?;
        }
        let numbered = sqlx::query(PASS_NUMBER).execute(&mut *pass).await?.rows_affected();
        sqlx::query(PASS_INDEX).execute(&mut *pass).await?;
        sqlx::query("UPDATE search.state SET next_row = next_row + $1")
            .bind(numbered as i64)
            .execute(&mut *pass)
            .await?;
        pass.commit().await?;
        sqlx::query("DELETE FROM license_search_pending WHERE seq <= $1").bind(upto).execute(&self.writer).await?;
        Ok(done as usize)
    }

    /// Indexes until nothing is pending.
    pub(crate) async fn catch_up(&self) -> Result<()> {
        while self.index_pending().await? > 0 {}
        Ok(())
    }

    /// Keeps the index caught up until the store closes.
    pub(crate) async fn keep_up(self) {
        loop {
            match self.index_pending().await {
                Ok(0) => tokio::time::sleep(IDLE).await,
                Ok(_) => {}
                Err(StoreError::Database(sqlx::Error::PoolClosed)) => return,
                Err(err) => {
                    tracing::warn!(error = %err, "indexing license keys for search failed; trying again");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
            }
        }
    }
}

/// Stops the indexer when the last handle of the store goes.
#[derive(Debug)]
pub(crate) struct IndexerTask(pub(crate) tokio::task::JoinHandle<()>);

impl Drop for IndexerTask {
    fn drop(&mut self) {
        self.0.abort();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_starts_index_holds_as_many_characters_as_statements_compare() {
        let indexed = format!("substr(key, 1, {STARTS_INDEXED})");
        assert!(TABLES.iter().any(|table| table.contains("license_key_starts") && table.contains(&indexed)));
    }
}

//! The store over SQL: one implementation for SQLite and PostgreSQL through sqlx's Any driver,
//! the dialects' differences kept in `dialect`.

mod audit;
mod catalog;
mod dialect;
mod dump;
mod journal;
mod licenses;
mod list;
mod notify;
mod rows;
mod search;

pub use dump::{Dump, DumpData, EnvironmentRow, SettingsRow, DUMP_FORMAT, DUMP_VERSION};
pub use notify::{CacheInvalidation, LicenseChanges};

use crate::*;
use async_trait::async_trait;
use sqlx::any::{AnyConnectOptions, AnyPoolOptions};
use sqlx::pool::PoolConnectionMetadata;
use sqlx::{Any, AnyConnection, AnyPool, Executor, Transaction};
use std::fmt;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

/// How long opening waits for the database before it says it cannot reach it.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// How long a request waits for a free connection once the store runs.
const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(30);
const POSTGRES_CONNECTIONS: u32 = 20;
const SQLITE_READERS: u32 = 8;

/// keyward's store on SQLite or PostgreSQL.
#[derive(Clone)]
pub struct SqlStore {
    backend: Backend,
    /// SQLite: exactly one connection, so writers queue here instead of failing busy.
    /// PostgreSQL: the one pool.
    writer: AnyPool,
    /// SQLite: readers beside the writer (WAL). PostgreSQL: the same pool as `writer`.
    reader: AnyPool,
    /// SQLite: the connections that keep the key search file (`search.rs`).
    search: Option<search::SearchIndexer>,
    /// SQLite: the task that keeps it caught up, stopped with the last handle of the store.
    _indexing: Option<Arc<search::IndexerTask>>,
    /// SQLite in a file: validations waiting to be folded into counts and history (`journal.rs`).
    journal: Option<Arc<journal::Journal>>,
    /// For the change listener; holds credentials, so never printed.
    url: Arc<str>,
}

impl fmt::Debug for SqlStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SqlStore").field("backend", &self.backend).finish_non_exhaustive()
    }
}

/// A connection string with its password hidden, for messages.
pub(crate) fn redact_url(url: &str) -> String {
    match url.split_once("://") {
        Some((scheme, rest)) => match rest.rsplit_once('@') {
            Some((_, host)) => format!("{scheme}://…@{host}"),
            None => url.to_owned(),
        },
        None => url.to_owned(),
    }
}

fn configuration(message: String) -> StoreError {
    StoreError::Database(sqlx::Error::Configuration(message.into()))
}

/// The SQLite URL with `mode=rwc` (create the file if missing) unless a mode is given, and
/// whether it names an in-memory database.
fn sqlite_url(url: &str) -> (String, bool) {
    let memory = url.contains(":memory:") || url.contains("mode=memory");
    if memory || url.contains("mode=") {
        return (url.to_owned(), memory);
    }
    let separator = if url.contains('?') { '&' } else { '?' };
    (format!("{url}{separator}mode=rwc"), memory)
}

/// The file an SQLite URL names, to create its folder.
fn sqlite_path(url: &str) -> Option<std::path::PathBuf> {
    let rest = url.strip_prefix("sqlite://").or_else(|| url.strip_prefix("sqlite:"))?;
    let path = rest.split('?').next()?;
    (!path.is_empty() && !path.contains(":memory:")).then(|| std::path::PathBuf::from(path))
}

/// What a pool's connections are for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Role {
    Writer,
    Reader,
    /// SQLite: writes the key search file, reads the database.
    Indexer,
}

/// A pool's options; `search`: SQLite, where its connections attach the key search file.
fn pool_options(backend: Backend, role: Role, search: Option<search::Attach>) -> AnyPoolOptions {
    let options = AnyPoolOptions::new().acquire_timeout(ACQUIRE_TIMEOUT).after_connect(
        move |conn: &mut AnyConnection, _meta: PoolConnectionMetadata| {
            let search = search.clone();
            Box::pin(async move {
                for pragma in backend.connection_pragmas(role == Role::Writer) {
                    conn.execute(*pragma).await?;
                }
                if let Some(search) = search {
                    search.to(conn, role != Role::Reader).await?;
                }
                Ok(())
            })
        },
    );
    match (backend, role) {
        (Backend::Sqlite, Role::Writer | Role::Indexer) => options.max_connections(1).min_connections(1),
        (Backend::Sqlite, Role::Reader) => options.max_connections(SQLITE_READERS),
        (Backend::Postgres, _) => options.max_connections(POSTGRES_CONNECTIONS),
    }
}

/// Opens a pool and proves it reaches the database within `CONNECT_TIMEOUT`.
async fn connect(options: AnyPoolOptions, url: &str) -> Result<AnyPool> {
    let connect_options = AnyConnectOptions::from_str(url)?;
    let pool = options.connect_lazy_with(connect_options);
    match tokio::time::timeout(CONNECT_TIMEOUT, pool.acquire()).await {
        Ok(Ok(conn)) => drop(conn),
        Ok(Err(e)) => return Err(configuration(format!("cannot connect to {}: {e}", redact_url(url)))),
        Err(_) => {
            return Err(configuration(format!(
                "cannot connect to {}: no answer within {} s",
                redact_url(url),
                CONNECT_TIMEOUT.as_secs()
            )))
        }
    }
    Ok(pool)
}

impl SqlStore {
    /// Opens `sqlite://…` (the file is created if missing) or `postgres://…`/`postgresql://…`,
    /// and brings its schema up to date; several nodes may open one PostgreSQL database at once.
    pub async fn open(database_url: &str) -> Result<SqlStore> {
        sqlx::any::install_default_drivers();
        let Some(backend) = Backend::of_url(database_url) else {
            return Err(configuration(format!(
                "unsupported database URL `{}`: keyward runs on sqlite://PATH or postgres://…",
                redact_url(database_url)
            )));
        };
        let (writer, reader, search, journaled) = match backend {
            Backend::Sqlite => {
                let (url, memory) = sqlite_url(database_url);
                let path = sqlite_path(database_url);
                if let Some(parent) = path.as_deref().and_then(std::path::Path::parent) {
                    if !parent.as_os_str().is_empty() {
                        std::fs::create_dir_all(parent).map_err(|e| {
                            configuration(format!("cannot create the folder {}: {e}", parent.display()))
                        })?;
                    }
                }
                if memory {
                    // An in-memory database lives in its one connection: read and index through it.
                    let pool = connect(pool_options(backend, Role::Writer, Some(search::Attach::Memory)), &url).await?;
                    // Nor a journal: a read holding its gate would wait on the fold's connection.
                    (pool.clone(), pool.clone(), Some(search::SearchIndexer::new(pool.clone(), pool)), false)
                } else {
                    let writer = connect(pool_options(backend, Role::Writer, None), &url).await?;
                    let file = path.as_deref().map(search::search_file).ok_or_else(|| {
                        configuration(format!("cannot tell the file of {}", redact_url(database_url)))
                    })?;
                    let file = search::Attach::File(file.to_string_lossy().as_ref().into());
                    let indexer = connect(pool_options(backend, Role::Indexer, Some(file.clone())), &url).await?;
                    let reader = connect(pool_options(backend, Role::Reader, Some(file)), &url).await?;
                    (writer.clone(), reader, Some(search::SearchIndexer::new(indexer, writer)), true)
                }
            }
            Backend::Postgres => {
                let pool = connect(pool_options(backend, Role::Writer, None), database_url).await?;
                (pool.clone(), pool, None, false)
            }
        };
        backend.migrations().run(&writer).await?;
        let journal = if journaled { Some(Arc::new(journal::Journal::open(&writer).await?)) } else { None };
        let indexing = match &search {
            Some(search) => {
                search.open().await?;
                Some(Arc::new(search::IndexerTask(tokio::spawn(search.clone().keep_up()))))
            }
            None => None,
        };
        Ok(SqlStore { backend, writer, reader, search, _indexing: indexing, journal, url: database_url.into() })
    }

    /// Closes every connection; the store is unusable after.
    pub async fn close(&self) {
        self.writer.close().await;
        self.reader.close().await;
        if let Some(search) = &self.search {
            search.indexer.close().await;
        }
    }

    /// A writing transaction (on SQLite it holds the database's write lock from its start).
    pub(crate) async fn begin_write(&self) -> Result<Transaction<'static, Any>> {
        Ok(self.writer.begin_with(self.backend.begin_write()).await?)
    }
}

pub(crate) fn is_unique_violation(e: &StoreError) -> bool {
    matches!(e, StoreError::Database(sqlx::Error::Database(db)) if db.is_unique_violation())
}

pub(crate) fn is_foreign_key_violation(e: &StoreError) -> bool {
    matches!(e, StoreError::Database(sqlx::Error::Database(db)) if db.is_foreign_key_violation())
}

/// A reference to a record that does not exist (a product, generator, customer or environment).
pub(crate) fn missing_reference(what: &str) -> StoreError {
    StoreError::Conflict { code: "REFERENCE_NOT_FOUND", message: format!("the {what} this refers to does not exist") }
}

#[async_trait]
impl Store for SqlStore {
    fn backend(&self) -> Backend {
        self.backend
    }

    async fn refresh_statistics(&self) -> Result<()> {
        for statement in self.backend.refresh_statistics() {
            sqlx::raw_sql(statement).execute(&self.writer).await?;
        }
        Ok(())
    }

    async fn catch_up_search_index(&self) -> Result<()> {
        match &self.search {
            Some(search) => search.catch_up().await,
            None => Ok(()),
        }
    }

    async fn fold_license_counts(&self) -> Result<()> {
        for statement in self.backend.fold_license_counts() {
            sqlx::raw_sql(statement).execute(&self.writer).await?;
        }
        Ok(())
    }

    async fn fold_validations(&self) -> Result<()> {
        self.fold_journal().await
    }

    async fn ping(&self) -> Result<()> {
        sqlx::query("SELECT 1 AS one").fetch_one(&self.reader).await?;
        Ok(())
    }

    async fn environments(&self) -> Result<Vec<String>> {
        self.environment_names().await
    }

    async fn settings(&self, environment: &str) -> Result<Settings> {
        self.read_settings(environment).await
    }

    async fn put_settings(&self, environment: &str, settings: &Settings, audit: &Audit) -> Result<()> {
        self.write_settings(environment, settings, audit).await
    }

    async fn create_token(&self, token: &ApiToken, audit: &Audit) -> Result<()> {
        self.insert_token(token, audit).await
    }

    async fn token_by_hash(&self, token_hash: &str) -> Result<Option<ApiToken>> {
        self.find_token(token_hash).await
    }

    async fn token_count(&self) -> Result<i64> {
        self.count_tokens().await
    }

    async fn create_product(&self, product: &Product, audit: &Audit) -> Result<()> {
        self.insert_product(product, audit).await
    }

    async fn product(&self, environment: &str, id: &str) -> Result<Option<Product>> {
        self.find_product(environment, id).await
    }

    async fn products(&self, environment: &str, query: &ListQuery) -> Result<Page<Product>> {
        self.list_products(environment, query).await
    }

    async fn update_product(&self, product: &Product, audit: &Audit) -> Result<()> {
        self.write_product(product, audit).await
    }

    async fn create_generator(&self, generator: &Generator, audit: &Audit) -> Result<()> {
        self.insert_generator(generator, audit).await
    }

    async fn generator(&self, environment: &str, id: &str) -> Result<Option<Generator>> {
        self.find_generator(environment, id).await
    }

    async fn generators(&self, environment: &str, query: &ListQuery) -> Result<Page<Generator>> {
        self.list_generators(environment, query).await
    }

    async fn update_generator(&self, generator: &Generator, audit: &Audit) -> Result<()> {
        self.write_generator(generator, audit).await
    }

    async fn create_customer(&self, customer: &Customer, audit: &Audit) -> Result<()> {
        self.insert_customer(customer, audit).await
    }

    async fn customer(&self, environment: &str, id: &str) -> Result<Option<Customer>> {
        self.find_customer(environment, id).await
    }

    async fn customers(&self, environment: &str, query: &ListQuery) -> Result<Page<Customer>> {
        self.list_customers(environment, query).await
    }

    async fn update_customer(&self, customer: &Customer, audit: &Audit) -> Result<()> {
        self.write_customer(customer, audit).await
    }

    async fn delete_customer(&self, environment: &str, id: &str, audit: &Audit) -> Result<()> {
        self.remove_customer(environment, id, audit).await
    }

    async fn insert_licenses(&self, licenses: &[License], audit: &Audit) -> Result<()> {
        self.add_licenses(licenses, audit).await
    }

    async fn license(&self, environment: &str, id_or_key: &str) -> Result<Option<License>> {
        let _reading = self.reading_journal().await;
        let mut license = self.find_license(environment, id_or_key).await?;
        self.add_journaled(license.iter_mut());
        Ok(license)
    }

    async fn license_snapshot(&self, environment: &str, key: &str) -> Result<Option<(License, Vec<Activation>)>> {
        let _reading = self.reading_journal().await;
        let mut snapshot = self.snapshot(environment, key).await?;
        self.add_journaled(snapshot.iter_mut().map(|(license, _)| license));
        Ok(snapshot)
    }

    async fn license_snapshots(
        &self,
        environment: &str,
        after_key: Option<&str>,
        limit: u32,
    ) -> Result<Vec<(License, Vec<Activation>)>> {
        let _reading = self.reading_journal().await;
        let mut snapshots = self.snapshots(environment, after_key, limit).await?;
        self.add_journaled(snapshots.iter_mut().map(|(license, _)| license));
        Ok(snapshots)
    }

    async fn licenses(&self, environment: &str, query: &LicenseQuery) -> Result<Page<License>> {
        let _reading = self.reading_journal().await;
        let mut page = self.list_licenses(environment, query).await?;
        self.add_journaled(page.data.iter_mut());
        Ok(page)
    }

    async fn change_license(
        &self,
        environment: &str,
        id_or_key: &str,
        edit: LicenseEdit,
        audit: &Audit,
    ) -> Result<LicenseChanged> {
        // The gate after the change, not around it: a fold holds the one writer while it waits.
        let mut changed = self.apply_license_change(environment, id_or_key, edit, audit).await?;
        let _reading = self.reading_journal().await;
        self.add_journaled([&mut changed.before, &mut changed.after]);
        Ok(changed)
    }

    async fn delete_license(
        &self,
        environment: &str,
        id_or_key: &str,
        check: LicenseDeleteCheck,
        audit: &Audit,
    ) -> Result<License> {
        self.remove_license(environment, id_or_key, check, audit).await
    }

    async fn activations(&self, environment: &str, license_id: &str) -> Result<Vec<Activation>> {
        self.list_activations(environment, license_id).await
    }

    async fn activation(&self, environment: &str, activation_id: &str) -> Result<Option<Activation>> {
        self.find_activation(environment, activation_id).await
    }

    async fn record_validations(&self, batch: &[ValidationRecord]) -> Result<()> {
        self.write_validations(batch).await
    }

    async fn count_validations(&self, counts: &[ValidationCount]) -> Result<()> {
        self.write_validation_counts(counts).await
    }

    async fn validations(
        &self,
        environment: &str,
        license_id: &str,
        query: &ListQuery,
    ) -> Result<Page<ValidationRecord>> {
        let _reading = self.reading_journal().await;
        self.list_validations(environment, license_id, query).await
    }

    async fn audit_events(&self, environment: &str, query: &AuditQuery) -> Result<Page<AuditEvent>> {
        self.list_audit_events(environment, query).await
    }

    async fn signing_keys(&self, environment: &str) -> Result<Vec<SigningKeyRecord>> {
        self.list_signing_keys(environment).await
    }

    async fn create_first_signing_key(&self, key: &SigningKeyRecord) -> Result<bool> {
        self.insert_first_signing_key(key).await
    }

    async fn rotate_signing_key(&self, key: &SigningKeyRecord, audit: &Audit) -> Result<()> {
        self.replace_signing_key(key, audit).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        assert_eq!(Backend::of_url("sqlite://data/k.db"), Some(Backend::Sqlite));
        assert_eq!(Backend::of_url("sqlite::memory:"), Some(Backend::Sqlite));
        assert_eq!(Backend::of_url("postgresql://x/y"), Some(Backend::Postgres));
        assert_eq!(Backend::of_url("POSTGRES://x/y"), Some(Backend::Postgres));
        assert_eq!(Backend::of_url("mysql://x/y"), None);
        assert_eq!(Backend::of_url("data/k.db"), None);
        assert_eq!(sqlite_url("sqlite://k.db"), ("sqlite://k.db?mode=rwc".into(), false));
        assert_eq!(sqlite_url("sqlite://k.db?cache=shared"), ("sqlite://k.db?cache=shared&mode=rwc".into(), false));
        assert!(sqlite_url("sqlite::memory:").1);
        assert_eq!(sqlite_path("sqlite://data/k.db?mode=rwc"), Some("data/k.db".into()));
        assert_eq!(sqlite_path("sqlite:///abs/k.db"), Some("/abs/k.db".into()));
        assert_eq!(sqlite_path("sqlite::memory:"), None);
        assert_eq!(redact_url("postgres://u:secret@db:5432/k"), "postgres://…@db:5432/k");
    }

    /// `.cargo/config.toml` builds SQLite without the global mutexes its connections contended on.
    #[tokio::test]
    async fn sqlite_is_built_without_shared_page_cache_or_memory_statistics() {
        let (store, _dir) = crate::testing::fresh_sqlite().await;
        let options: Vec<String> = sqlx::query_scalar("SELECT compile_options FROM pragma_compile_options")
            .fetch_all(&store.writer)
            .await
            .unwrap();
        assert!(options.iter().any(|o| o == "ENABLE_FTS5"), "{options:?}");
        assert!(!options.iter().any(|o| o == "ENABLE_MEMORY_MANAGEMENT"), "{options:?}");
        assert!(options.iter().any(|o| o == "DEFAULT_MEMSTATUS=0"), "{options:?}");
    }
}

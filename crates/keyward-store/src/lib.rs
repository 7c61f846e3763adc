//! keyward's persistence: the records, the `Store` trait, and its SQL implementation for SQLite
//! (embedded default) and PostgreSQL (many nodes). The store persists; it never decides a rule:
//! license changes arrive as closures built from keyward-core's decisions and run inside the
//! store's transaction, so a decision always sees the row it changes, locked.

mod records;
mod sql;
#[cfg(feature = "testing")]
pub mod testing;

pub use records::*;
pub use sql::{
    CacheInvalidation, Dump, DumpData, EnvironmentRow, LicenseChanges, SettingsRow, SqlStore, DUMP_FORMAT, DUMP_VERSION,
};

use async_trait::async_trait;
use keyward_core::Refusal;

pub type Result<T, E = StoreError> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("not found")]
    NotFound,
    /// A uniqueness or reference conflict the caller can explain (`code` is the API's code).
    #[error("{message}")]
    Conflict { code: &'static str, message: String },
    /// A generated key collided with an existing one; the caller draws new keys.
    #[error("a license with this key exists already")]
    DuplicateKey,
    /// The decision closure refused the change; nothing was written.
    #[error(transparent)]
    Refused(#[from] Refusal),
    #[error("the import is refused: {0}")]
    Import(String),
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    #[error("migration error: {0}")]
    Migration(#[from] sqlx::migrate::MigrateError),
    #[error("a stored record is unreadable: {0}")]
    Corrupt(String),
}

/// Which database is behind the store.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// Decides a license change from the locked current row and its activations.
pub type LicenseEdit = Box<dyn FnOnce(&License, &[Activation]) -> Result<LicenseChange, Refusal> + Send>;

/// Decides whether a license may be deleted, from the locked current row.
pub type LicenseDeleteCheck = Box<dyn FnOnce(&License) -> Result<(), Refusal> + Send>;

#[async_trait]
pub trait Store: Send + Sync + 'static {
    fn backend(&self) -> Backend;

    /// Succeeds when the database answers (for `/readyz`).
    async fn ping(&self) -> Result<()>;

    /// After a bulk load: brings the planner's statistics (and PostgreSQL's visibility map, which
    /// index-only counts need) up to the new rows, instead of waiting for autovacuum.
    async fn refresh_statistics(&self) -> Result<()>;

    /// SQLite: indexes every license still pending in the key search file (a background task
    /// keeps it caught up; searches are exact either way). For the end of a bulk load and tests.
    async fn catch_up_search_index(&self) -> Result<()>;

    /// Adds the changes PostgreSQL's license counts gather (a row a write, so that writers never
    /// wait on one row) into the counts' rows; nothing to do on SQLite. Every few seconds.
    async fn fold_license_counts(&self) -> Result<()>;

    /// Folds the validations SQLite journals into licenses' counts and history (they are read
    /// as if folded meanwhile); nothing to do on PostgreSQL, nor with nothing journaled. When
    /// validations pause and when a node stops.
    async fn fold_validations(&self) -> Result<()>;

    // Environments and their settings.
    async fn environments(&self) -> Result<Vec<String>>;
    async fn settings(&self, environment: &str) -> Result<Settings>;
    async fn put_settings(&self, environment: &str, settings: &Settings, audit: &Audit) -> Result<()>;

    // API tokens, stored hashed.
    async fn create_token(&self, token: &ApiToken, audit: &Audit) -> Result<()>;
    async fn token_by_hash(&self, token_hash: &str) -> Result<Option<ApiToken>>;
    async fn token_count(&self) -> Result<i64>;

    // Products.
    async fn create_product(&self, product: &Product, audit: &Audit) -> Result<()>;
    async fn product(&self, environment: &str, id: &str) -> Result<Option<Product>>;
    async fn products(&self, environment: &str, query: &ListQuery) -> Result<Page<Product>>;
    async fn update_product(&self, product: &Product, audit: &Audit) -> Result<()>;

    // Generators.
    async fn create_generator(&self, generator: &Generator, audit: &Audit) -> Result<()>;
    async fn generator(&self, environment: &str, id: &str) -> Result<Option<Generator>>;
    async fn generators(&self, environment: &str, query: &ListQuery) -> Result<Page<Generator>>;
    async fn update_generator(&self, generator: &Generator, audit: &Audit) -> Result<()>;

    // Customers; email is unique per environment (`Conflict { code: "EMAIL_TAKEN" }`).
    async fn create_customer(&self, customer: &Customer, audit: &Audit) -> Result<()>;
    async fn customer(&self, environment: &str, id: &str) -> Result<Option<Customer>>;
    async fn customers(&self, environment: &str, query: &ListQuery) -> Result<Page<Customer>>;
    async fn update_customer(&self, customer: &Customer, audit: &Audit) -> Result<()>;
    /// Refused with `Conflict { code: "CUSTOMER_HAS_LICENSES" }` while licenses point at it.
    async fn delete_customer(&self, environment: &str, id: &str, audit: &Audit) -> Result<()>;

    // Licenses.
    /// Inserts all or none; a key that exists already anywhere in the environment is `DuplicateKey`.
    async fn insert_licenses(&self, licenses: &[License], audit: &Audit) -> Result<()>;
    /// By id (`lic_…`) or by key; with the product name and customer joined in.
    async fn license(&self, environment: &str, id_or_key: &str) -> Result<Option<License>>;
    /// The license and its activations, as validation needs them.
    async fn license_snapshot(&self, environment: &str, key: &str) -> Result<Option<(License, Vec<Activation>)>>;
    /// Up to `limit` licenses with their activations, in key order after `after_key`: how a
    /// node loads every license into memory after start.
    async fn license_snapshots(
        &self,
        environment: &str,
        after_key: Option<&str>,
        limit: u32,
    ) -> Result<Vec<(License, Vec<Activation>)>>;
    async fn licenses(&self, environment: &str, query: &LicenseQuery) -> Result<Page<License>>;
    /// Locks the license, runs `edit` on it, writes what it returns with an audit event, in one
    /// transaction. Concurrent changes to one license are serialised, on every node.
    async fn change_license(
        &self,
        environment: &str,
        id_or_key: &str,
        edit: LicenseEdit,
        audit: &Audit,
    ) -> Result<LicenseChanged>;
    /// Deletes the license and its activations and validation history if `check` allows.
    async fn delete_license(
        &self,
        environment: &str,
        id_or_key: &str,
        check: LicenseDeleteCheck,
        audit: &Audit,
    ) -> Result<License>;
    async fn activations(&self, environment: &str, license_id: &str) -> Result<Vec<Activation>>;
    /// The license an activation belongs to, by activation id.
    async fn activation(&self, environment: &str, activation_id: &str) -> Result<Option<Activation>>;

    // Validation history, written behind the answers in batches.
    async fn record_validations(&self, batch: &[ValidationRecord]) -> Result<()>;
    /// Adds to licenses' validation counts and last validation times, with no history rows.
    async fn count_validations(&self, counts: &[ValidationCount]) -> Result<()>;
    async fn validations(
        &self,
        environment: &str,
        license_id: &str,
        query: &ListQuery,
    ) -> Result<Page<ValidationRecord>>;

    // Audit log, append-only.
    async fn audit_events(&self, environment: &str, query: &AuditQuery) -> Result<Page<AuditEvent>>;

    // Signing keys, the private half sealed by the server before it gets here.
    async fn signing_keys(&self, environment: &str) -> Result<Vec<SigningKeyRecord>>;
    /// Stores `key` as current if the environment has none yet; false when one exists.
    async fn create_first_signing_key(&self, key: &SigningKeyRecord) -> Result<bool>;
    /// Retires the current key and makes `key` current, in one transaction.
    async fn rotate_signing_key(&self, key: &SigningKeyRecord, audit: &Audit) -> Result<()>;
}

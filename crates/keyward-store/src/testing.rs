//! Fresh databases and sample records for tests, here and in other crates (feature `testing`).
//!
//! PostgreSQL is reached at `KEYWARD_TEST_POSTGRES_URL` (default
//! `postgres://postgres@127.0.0.1:5432/test`); every fresh database is created through it and
//! dropped afterwards. When it is unreachable the PostgreSQL half is skipped with a line on
//! stderr, unless `KEYWARD_REQUIRE_POSTGRES=1`, which makes that a failure.

use crate::{Audit, Customer, Generator, License, Product, ProductStatus, SqlStore, Store, ValidityRecord};
use chrono::{DateTime, Utc};
use keyward_core::ids::{new_id, IdKind};
use keyward_core::key::KeyFormat;
use keyward_core::values::{ActivationLimit, FeatureFlags, Metadata};
use keyward_core::LicenseStatus;
use sqlx::{Connection, Executor, PgConnection};
use std::future::Future;
use std::time::Duration;
use tempfile::TempDir;

pub const POSTGRES_URL_VAR: &str = "KEYWARD_TEST_POSTGRES_URL";
pub const DEFAULT_POSTGRES_URL: &str = "postgres://postgres@127.0.0.1:5432/test";
pub const REQUIRE_POSTGRES_VAR: &str = "KEYWARD_REQUIRE_POSTGRES";

/// The server that fresh PostgreSQL databases are created on.
pub fn postgres_url() -> String {
    std::env::var(POSTGRES_URL_VAR)
        .ok()
        .filter(|url| !url.trim().is_empty())
        .unwrap_or_else(|| DEFAULT_POSTGRES_URL.into())
}

/// True when an unreachable PostgreSQL must fail the test instead of skipping its half.
pub fn postgres_required() -> bool {
    std::env::var(REQUIRE_POSTGRES_VAR).is_ok_and(|v| v.trim() == "1")
}

/// A new SQLite database in a temporary folder, migrated; the folder goes with the guard.
pub async fn fresh_sqlite() -> (SqlStore, TempDir) {
    let dir = tempfile::tempdir().expect("a temporary folder");
    let store = open_sqlite(&dir.path().join("keyward.db")).await;
    (store, dir)
}

/// The SQLite database in this file, created when missing.
pub async fn open_sqlite(database: &std::path::Path) -> SqlStore {
    SqlStore::open(&format!("sqlite://{}", database.display())).await.expect("opening a SQLite database")
}

/// A fresh SQLite database holding one license, with this key, of a product and generator of its own.
pub async fn sqlite_with_license(key: &str) -> (SqlStore, TempDir, License) {
    let (store, dir) = fresh_sqlite().await;
    let product = product("production", "Acme");
    let generator = generator(&product);
    store.create_product(&product, &audit("product.created")).await.expect("a product");
    store.create_generator(&generator, &audit("generator.created")).await.expect("a generator");
    let license = license(&generator, &product, key);
    store.insert_licenses(std::slice::from_ref(&license), &audit("license.created")).await.expect("a license");
    (store, dir, license)
}

/// `url` naming the database `name` instead of its own.
fn with_database(url: &str, name: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((base, query)) => (base, Some(query)),
        None => (url, None),
    };
    let (scheme, rest) = base.split_once("://").unwrap_or(("postgres", base));
    let host = rest.split('/').next().unwrap_or(rest);
    match query {
        Some(query) => format!("{scheme}://{host}/{name}?{query}"),
        None => format!("{scheme}://{host}/{name}"),
    }
}

/// A database of its own on the test PostgreSQL server, dropped (connections and all) when
/// this is dropped.
#[derive(Debug)]
pub struct PostgresDatabase {
    pub name: String,
    /// The URL of this database, for `SqlStore::open`.
    pub url: String,
    server_url: String,
}

impl PostgresDatabase {
    /// Creates `kw_<random>`; `None` (after saying so on stderr) when PostgreSQL is unreachable
    /// and not required. Panics when it is required and unreachable.
    pub async fn create() -> Option<PostgresDatabase> {
        let server_url = postgres_url();
        let connecting = tokio::time::timeout(Duration::from_secs(5), PgConnection::connect(&server_url)).await;
        let mut admin = match connecting {
            Ok(Ok(conn)) => conn,
            Ok(Err(e)) => return unreachable(&server_url, &e.to_string()),
            Err(_) => return unreachable(&server_url, "no answer within 5 s"),
        };
        let name = format!("kw_{}", uuid::Uuid::new_v4().simple());
        admin.execute(format!("CREATE DATABASE {name}").as_str()).await.expect("creating a test database");
        admin.close().await.ok();
        Some(PostgresDatabase { url: with_database(&server_url, &name), name, server_url })
    }

    /// Opens a store on this database.
    pub async fn open(&self) -> SqlStore {
        SqlStore::open(&self.url).await.expect("opening a fresh PostgreSQL database")
    }
}

fn unreachable<T>(url: &str, error: &str) -> Option<T> {
    let shown = crate::sql::redact_url(url);
    if postgres_required() {
        panic!("postgres unreachable at {shown}: {error} ({REQUIRE_POSTGRES_VAR}=1 requires it)");
    }
    eprintln!("postgres unreachable at {shown}: {error}: skipping the PostgreSQL half");
    None
}

impl Drop for PostgresDatabase {
    fn drop(&mut self) {
        let server_url = self.server_url.clone();
        let statement = format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name);
        // Drop may run inside a runtime that cannot block on async work: use a thread of its own.
        let dropped = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
            runtime.block_on(async {
                let mut admin = PgConnection::connect(&server_url).await?;
                admin.execute(statement.as_str()).await?;
                admin.close().await
            })?;
            Ok::<_, Box<dyn std::error::Error + Send + Sync>>(())
        })
        .join();
        if let Ok(Err(e)) = dropped {
            eprintln!("could not drop the test database {}: {e}", self.name);
        }
    }
}

/// A store on a fresh PostgreSQL database, or `None` when PostgreSQL is unreachable and not
/// required. Keep the database guard as long as the store.
pub async fn fresh_postgres() -> Option<(SqlStore, PostgresDatabase)> {
    let database = PostgresDatabase::create().await?;
    let store = database.open().await;
    Some((store, database))
}

/// Runs `test` on a fresh SQLite store, then on a fresh PostgreSQL store (see the module's
/// words on an unreachable PostgreSQL).
pub async fn on_each_backend<F, Fut>(test: F)
where
    F: Fn(SqlStore) -> Fut,
    Fut: Future<Output = ()>,
{
    let (store, _dir) = fresh_sqlite().await;
    test(store.clone()).await;
    store.close().await;
    if let Some((store, _database)) = fresh_postgres().await {
        test(store.clone()).await;
        store.close().await;
    }
}

/// Now, to the microsecond a store keeps, so records read back equal.
pub fn now() -> DateTime<Utc> {
    DateTime::from_timestamp_micros(Utc::now().timestamp_micros()).expect("now is in range")
}

pub fn audit(action: &str) -> Audit {
    Audit { actor: "tok_test".into(), ip: Some("127.0.0.1".into()), action: action.into() }
}

pub fn product(environment: &str, name: &str) -> Product {
    let at = now();
    Product {
        id: new_id(IdKind::Product),
        environment: environment.into(),
        name: name.into(),
        status: ProductStatus::Active,
        created_at: at,
        updated_at: at,
    }
}

pub fn generator(product: &Product) -> Generator {
    let at = now();
    Generator {
        id: new_id(IdKind::Generator),
        environment: product.environment.clone(),
        product_id: product.id.clone(),
        name: format!("{} keys", product.name),
        format: KeyFormat::Uuid,
        activation_limit: ActivationLimit::parse(5).expect("5 is a limit"),
        validity: Some(ValidityRecord { days: 365, basis: keyward_core::activation::ValidityBasis::Creation }),
        feature_flags: FeatureFlags::default(),
        metadata: Metadata::default(),
        created_at: at,
        updated_at: at,
    }
}

pub fn customer(environment: &str, name: &str, email: &str) -> Customer {
    let at = now();
    Customer {
        id: new_id(IdKind::Customer),
        environment: environment.into(),
        name: name.into(),
        email: email.into(),
        metadata: Metadata::default(),
        created_at: at,
        updated_at: at,
    }
}

/// An available license of `generator` with `key`, as the store returns it after insert.
pub fn license(generator: &Generator, product: &Product, key: &str) -> License {
    let at = now();
    License {
        id: new_id(IdKind::License),
        environment: generator.environment.clone(),
        key: key.into(),
        product_id: generator.product_id.clone(),
        generator_id: generator.id.clone(),
        customer_id: None,
        status: LicenseStatus::Available,
        activation_limit: generator.activation_limit,
        activation_count: 0,
        expires_at: None,
        validity: generator.validity,
        feature_flags: generator.feature_flags.clone(),
        metadata: generator.metadata.clone(),
        suspension_reason: None,
        ever_activated: false,
        created_at: at,
        updated_at: at,
        assigned_at: None,
        first_activated_at: None,
        last_validated_at: None,
        validation_count: 0,
        product_name: product.name.clone(),
        customer: None,
    }
}

/// `license` assigned to `customer`, as the store returns it.
pub fn assigned(mut license: License, customer: &Customer) -> License {
    license.customer_id = Some(customer.id.clone());
    license.customer = Some(crate::CustomerRef {
        id: customer.id.clone(),
        name: customer.name.clone(),
        email: customer.email.clone(),
    });
    license.status = LicenseStatus::Assigned;
    license.assigned_at = Some(license.created_at);
    license
}

#[cfg(test)]
mod tests {
    #[test]
    fn database_urls() {
        use super::with_database;
        assert_eq!(
            with_database("postgres://postgres@127.0.0.1:5432/test", "kw_1"),
            "postgres://postgres@127.0.0.1:5432/kw_1"
        );
        assert_eq!(
            with_database("postgresql://u:p@h/db?sslmode=disable", "kw_1"),
            "postgresql://u:p@h/kw_1?sslmode=disable"
        );
        assert_eq!(with_database("postgres://h:5432", "kw_1"), "postgres://h:5432/kw_1");
    }
}

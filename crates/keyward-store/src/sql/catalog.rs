//! Everything but licenses: environments and settings, API tokens, products, generators,
//! customers and signing keys.

use super::audit::{self, snapshot, snapshot_without, Target};
use super::list::{Keyset, Kind, Listing};
use super::rows::{self, contains_pattern, json, micros, now, product_status_str, Sql};
use super::{is_foreign_key_violation, is_unique_violation, missing_reference, SqlStore};
use crate::{
    ApiToken, Audit, Customer, Generator, ListQuery, Order, Page, Product, Result, Settings, SigningKeyRecord,
    StoreError,
};

/// Newest first, the order of every list but licenses.
const NEWEST_FIRST: Keyset<'static> = Keyset {
    tag: "newest",
    sort: "created_at",
    sort_kind: Kind::Int,
    tie: "id",
    tie_kind: Kind::Text,
    order: Order::Desc,
};

fn email_taken() -> StoreError {
    StoreError::Conflict { code: "EMAIL_TAKEN", message: "a customer with this email exists already".into() }
}

/// Maps a failed insert or update: a unique violation to `unique`, a missing reference to a
/// `REFERENCE_NOT_FOUND` conflict naming `referenced`.
fn explain(e: StoreError, unique: impl FnOnce() -> StoreError, referenced: &str) -> StoreError {
    if is_unique_violation(&e) {
        unique()
    } else if is_foreign_key_violation(&e) {
        missing_reference(referenced)
    } else {
        e
    }
}

/// `WHERE environment = $1` and, with a search, any of `columns` containing it.
fn search_filter(environment: &str, q: Option<&str>, columns: &[&str]) -> Sql {
    let mut filter = Sql::new("WHERE environment = ");
    filter.bind(environment);
    if let Some(q) = q.map(str::trim).filter(|q| !q.is_empty()) {
        let pattern = filter.arg(contains_pattern(q));
        let any: Vec<String> = columns.iter().map(|c| format!("lower({c}) LIKE {pattern} ESCAPE '\\'")).collect();
        filter.push(&format!(" AND ({})", any.join(" OR ")));
    }
    filter
}

const TOKEN_SECRETS: &[&str] = &["token_hash"];
const SIGNING_KEY_SECRETS: &[&str] = &["sealed_private_key"];
const PRODUCT_COLUMNS: &str = "id, environment, name, status, created_at, updated_at";
const GENERATOR_COLUMNS: &str = "id, environment, product_id, name, key_format, activation_limit, validity_days, \
     validity_basis, feature_flags, metadata, created_at, updated_at";
const CUSTOMER_COLUMNS: &str = "id, environment, name, email, metadata, created_at, updated_at";
const TOKEN_COLUMNS: &str = "id, environment, name, role, token_hash, prefix, created_at";
const SIGNING_KEY_COLUMNS: &str = "kid, environment, status, public_key, sealed_private_key, created_at";

impl SqlStore {
    pub(crate) async fn environment_names(&self) -> Result<Vec<String>> {
        let rows = sqlx::query("SELECT name FROM environments ORDER BY name").fetch_all(&self.reader).await?;
        rows.iter().map(|row| Ok(sqlx::Row::try_get::<String, _>(row, "name")?)).collect()
    }

    pub(crate) async fn read_settings(&self, environment: &str) -> Result<Settings> {
        let row = sqlx::query("SELECT body FROM settings WHERE environment = $1")
            .bind(environment)
            .fetch_optional(&self.reader)
            .await?;
        match row {
            Some(row) => {
                let body: String = sqlx::Row::try_get(&row, "body")?;
                serde_json::from_str(&body).map_err(|e| StoreError::Corrupt(format!("settings of {environment}: {e}")))
            }
            None => Ok(Settings::default()),
        }
    }

    pub(crate) async fn write_settings(&self, environment: &str, settings: &Settings, audit: &Audit) -> Result<()> {
        let at = now();
        let mut tx = self.begin_write().await?;
        let before = sqlx::query("SELECT body FROM settings WHERE environment = $1")
            .bind(environment)
            .fetch_optional(&mut *tx)
            .await?
            .map(|row| sqlx::Row::try_get::<String, _>(&row, "body"))
            .transpose()?
            .and_then(|body| serde_json::from_str::<serde_json::Value>(&body).ok())
            .unwrap_or(snapshot(&Settings::default())?);
        sqlx::query(
            "INSERT INTO settings (environment, body, updated_at) VALUES ($1, $2, $3) \
             ON CONFLICT (environment) DO UPDATE SET body = excluded.body, updated_at = excluded.updated_at",
        )
        .bind(environment)
        .bind(json(settings)?)
        .bind(micros(at))
        .execute(&mut *tx)
        .await
        .map_err(|e| {
            // The only reference is the environment: an unknown one is not found.
            let e = StoreError::from(e);
            if is_foreign_key_violation(&e) {
                StoreError::NotFound
            } else {
                e
            }
        })?;
        let target = Target { environment, kind: "settings", id: environment };
        audit::record(&mut tx, audit, target, Some(before), Some(snapshot(settings)?), at).await?;
        tx.commit().await?;
        Ok(())
    }

    pub(crate) async fn insert_token(&self, token: &ApiToken, audit: &Audit) -> Result<()> {
        let mut tx = self.begin_write().await?;
        sqlx::query(&format!("INSERT INTO api_tokens ({TOKEN_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7)"))
            .bind(token.id.as_str())
            .bind(token.environment.as_str())
            .bind(token.name.as_str())
            .bind(token.role.as_str())
            .bind(token.token_hash.as_str())
            .bind(token.prefix.as_str())
            .bind(micros(token.created_at))
            .execute(&mut *tx)
            .await
            .map_err(|e| {
                let taken =
                    || StoreError::Conflict { code: "TOKEN_EXISTS", message: "this token exists already".into() };
                explain(e.into(), taken, "environment")
            })?;
        let target = Target { environment: &token.environment, kind: "token", id: &token.id };
        let after = snapshot_without(token, TOKEN_SECRETS)?;
        audit::record(&mut tx, audit, target, None, Some(after), now()).await?;
        tx.commit().await?;
        Ok(())
    }

    pub(crate) async fn find_token(&self, token_hash: &str) -> Result<Option<ApiToken>> {
        let row = sqlx::query(&format!("SELECT {TOKEN_COLUMNS} FROM api_tokens WHERE token_hash = $1"))
            .bind(token_hash)
            .fetch_optional(&self.reader)
            .await?;
        row.as_ref().map(rows::token).transpose()
    }

    pub(crate) async fn count_tokens(&self) -> Result<i64> {
        let row = sqlx::query("SELECT COUNT(*) AS n FROM api_tokens").fetch_one(&self.reader).await?;
        rows::int(&row, "n")
    }

    pub(crate) async fn insert_product(&self, product: &Product, audit: &Audit) -> Result<()> {
        let mut tx = self.begin_write().await?;
        sqlx::query(&format!("INSERT INTO products ({PRODUCT_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6)"))
            .bind(product.id.as_str())
            .bind(product.environment.as_str())
            .bind(product.name.as_str())
            .bind(product_status_str(product.status))
            .bind(micros(product.created_at))
            .bind(micros(product.updated_at))
            .execute(&mut *tx)
            .await
            .map_err(|e| explain(e.into(), id_taken, "environment"))?;
        let target = Target { environment: &product.environment, kind: "product", id: &product.id };
        audit::record(&mut tx, audit, target, None, Some(snapshot(product)?), now()).await?;
        tx.commit().await?;
        Ok(())
    }

    pub(crate) async fn find_product(&self, environment: &str, id: &str) -> Result<Option<Product>> {
        let row = sqlx::query(&format!("SELECT {PRODUCT_COLUMNS} FROM products WHERE environment = $1 AND id = $2"))
            .bind(environment)
            .bind(id)
            .fetch_optional(&self.reader)
            .await?;
        row.as_ref().map(rows::product).transpose()
    }

    pub(crate) async fn list_products(&self, environment: &str, query: &ListQuery) -> Result<Page<Product>> {
        Listing {
            pool: &self.reader,
            columns: PRODUCT_COLUMNS,
            from: "products",
            count_from: None,
            filter: search_filter(environment, query.q.as_deref(), &["name"]),
            keyset: NEWEST_FIRST,
            limit: query.limit,
            cursor: query.cursor.as_deref(),
            decode: rows::product,
        }
        .fetch()
        .await
    }

    pub(crate) async fn write_product(&self, product: &Product, audit: &Audit) -> Result<()> {
        let mut tx = self.begin_write().await?;
        let before = sqlx::query(&format!("SELECT {PRODUCT_COLUMNS} FROM products WHERE environment = $1 AND id = $2"))
            .bind(product.environment.as_str())
            .bind(product.id.as_str())
            .fetch_optional(&mut *tx)
            .await?;
        let Some(before) = before.as_ref().map(rows::product).transpose()? else {
            return Err(StoreError::NotFound);
        };
        sqlx::query("UPDATE products SET name = $1, status = $2, updated_at = $3 WHERE id = $4")
            .bind(product.name.as_str())
            .bind(product_status_str(product.status))
            .bind(micros(product.updated_at))
            .bind(product.id.as_str())
            .execute(&mut *tx)
            .await?;
        let after =
            Product { environment: before.environment.clone(), created_at: before.created_at, ..product.clone() };
        let target = Target { environment: &product.environment, kind: "product", id: &product.id };
        audit::record(&mut tx, audit, target, Some(snapshot(&before)?), Some(snapshot(&after)?), now()).await?;
        tx.commit().await?;
        Ok(())
    }

    pub(crate) async fn insert_generator(&self, generator: &Generator, audit: &Audit) -> Result<()> {
        let mut tx = self.begin_write().await?;
        // The product must be of the same environment.
        self.require_product(&mut tx, &generator.environment, &generator.product_id).await?;
        sqlx::query(&format!(
            "INSERT INTO generators ({GENERATOR_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)"
        ))
        .bind(generator.id.as_str())
        .bind(generator.environment.as_str())
        .bind(generator.product_id.as_str())
        .bind(generator.name.as_str())
        .bind(json(&generator.format)?)
        .bind(generator.activation_limit.get())
        .bind(generator.validity.map(|v| v.days))
        .bind(generator.validity.map(|v| v.basis.as_str()))
        .bind(json(&generator.feature_flags)?)
        .bind(json(&generator.metadata)?)
        .bind(micros(generator.created_at))
        .bind(micros(generator.updated_at))
        .execute(&mut *tx)
        .await
        .map_err(|e| explain(e.into(), id_taken, "product"))?;
        let target = Target { environment: &generator.environment, kind: "generator", id: &generator.id };
        audit::record(&mut tx, audit, target, None, Some(snapshot(generator)?), now()).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn require_product(&self, conn: &mut sqlx::AnyConnection, environment: &str, id: &str) -> Result<()> {
        let found = sqlx::query("SELECT id FROM products WHERE environment = $1 AND id = $2")
            .bind(environment)
            .bind(id)
            .fetch_optional(conn)
            .await?;
        found.map(|_| ()).ok_or_else(|| missing_reference("product"))
    }

    pub(crate) async fn find_generator(&self, environment: &str, id: &str) -> Result<Option<Generator>> {
        let row =
            sqlx::query(&format!("SELECT {GENERATOR_COLUMNS} FROM generators WHERE environment = $1 AND id = $2"))
                .bind(environment)
                .bind(id)
                .fetch_optional(&self.reader)
                .await?;
        row.as_ref().map(rows::generator).transpose()
    }

    pub(crate) async fn list_generators(&self, environment: &str, query: &ListQuery) -> Result<Page<Generator>> {
        Listing {
            pool: &self.reader,
            columns: GENERATOR_COLUMNS,
            from: "generators",
            count_from: None,
            filter: search_filter(environment, query.q.as_deref(), &["name"]),
            keyset: NEWEST_FIRST,
            limit: query.limit,
            cursor: query.cursor.as_deref(),
            decode: rows::generator,
        }
        .fetch()
        .await
    }

    /// Writes everything but the product, the environment and the creation time.
    pub(crate) async fn write_generator(&self, generator: &Generator, audit: &Audit) -> Result<()> {
        let mut tx = self.begin_write().await?;
        let before =
            sqlx::query(&format!("SELECT {GENERATOR_COLUMNS} FROM generators WHERE environment = $1 AND id = $2"))
                .bind(generator.environment.as_str())
                .bind(generator.id.as_str())
                .fetch_optional(&mut *tx)
                .await?;
        let Some(before) = before.as_ref().map(rows::generator).transpose()? else {
            return Err(StoreError::NotFound);
        };
        sqlx::query(
            "UPDATE generators SET name = $1, key_format = $2, activation_limit = $3, validity_days = $4, \
             validity_basis = $5, feature_flags = $6, metadata = $7, updated_at = $8 WHERE id = $9",
        )
        .bind(generator.name.as_str())
        .bind(json(&generator.format)?)
        .bind(generator.activation_limit.get())
        .bind(generator.validity.map(|v| v.days))
        .bind(generator.validity.map(|v| v.basis.as_str()))
        .bind(json(&generator.feature_flags)?)
        .bind(json(&generator.metadata)?)
        .bind(micros(generator.updated_at))
        .bind(generator.id.as_str())
        .execute(&mut *tx)
        .await?;
        let after = Generator {
            environment: before.environment.clone(),
            product_id: before.product_id.clone(),
            created_at: before.created_at,
            ..generator.clone()
        };
        let target = Target { environment: &generator.environment, kind: "generator", id: &generator.id };
        audit::record(&mut tx, audit, target, Some(snapshot(&before)?), Some(snapshot(&after)?), now()).await?;
        tx.commit().await?;
        Ok(())
    }

    pub(crate) async fn insert_customer(&self, customer: &Customer, audit: &Audit) -> Result<()> {
        let mut tx = self.begin_write().await?;
        sqlx::query(&format!("INSERT INTO customers ({CUSTOMER_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7)"))
            .bind(customer.id.as_str())
            .bind(customer.environment.as_str())
            .bind(customer.name.as_str())
            .bind(customer.email.as_str())
            .bind(json(&customer.metadata)?)
            .bind(micros(customer.created_at))
            .bind(micros(customer.updated_at))
            .execute(&mut *tx)
            .await
            .map_err(|e| explain(e.into(), email_taken, "environment"))?;
        let target = Target { environment: &customer.environment, kind: "customer", id: &customer.id };
        audit::record(&mut tx, audit, target, None, Some(snapshot(customer)?), now()).await?;
        tx.commit().await?;
        Ok(())
    }

    pub(crate) async fn find_customer(&self, environment: &str, id: &str) -> Result<Option<Customer>> {
        let row = sqlx::query(&format!("SELECT {CUSTOMER_COLUMNS} FROM customers WHERE environment = $1 AND id = $2"))
            .bind(environment)
            .bind(id)
            .fetch_optional(&self.reader)
            .await?;
        row.as_ref().map(rows::customer).transpose()
    }

    pub(crate) async fn list_customers(&self, environment: &str, query: &ListQuery) -> Result<Page<Customer>> {
        Listing {
            pool: &self.reader,
            columns: CUSTOMER_COLUMNS,
            from: "customers",
            count_from: None,
            filter: search_filter(environment, query.q.as_deref(), &["name", "email"]),
            keyset: NEWEST_FIRST,
            limit: query.limit,
            cursor: query.cursor.as_deref(),
            decode: rows::customer,
        }
        .fetch()
        .await
    }

    pub(crate) async fn write_customer(&self, customer: &Customer, audit: &Audit) -> Result<()> {
        let mut tx = self.begin_write().await?;
        let before =
            sqlx::query(&format!("SELECT {CUSTOMER_COLUMNS} FROM customers WHERE environment = $1 AND id = $2"))
                .bind(customer.environment.as_str())
                .bind(customer.id.as_str())
                .fetch_optional(&mut *tx)
                .await?;
        let Some(before) = before.as_ref().map(rows::customer).transpose()? else {
            return Err(StoreError::NotFound);
        };
        sqlx::query("UPDATE customers SET name = $1, email = $2, metadata = $3, updated_at = $4 WHERE id = $5")
            .bind(customer.name.as_str())
            .bind(customer.email.as_str())
            .bind(json(&customer.metadata)?)
            .bind(micros(customer.updated_at))
            .bind(customer.id.as_str())
            .execute(&mut *tx)
            .await
            .map_err(|e| explain(e.into(), email_taken, "environment"))?;
        let after =
            Customer { environment: before.environment.clone(), created_at: before.created_at, ..customer.clone() };
        let target = Target { environment: &customer.environment, kind: "customer", id: &customer.id };
        audit::record(&mut tx, audit, target, Some(snapshot(&before)?), Some(snapshot(&after)?), now()).await?;
        tx.commit().await?;
        Ok(())
    }

    pub(crate) async fn remove_customer(&self, environment: &str, id: &str, audit: &Audit) -> Result<()> {
        let has_licenses = || StoreError::Conflict {
            code: "CUSTOMER_HAS_LICENSES",
            message: "licenses are assigned to this customer; reassign or delete them first".into(),
        };
        let mut tx = self.begin_write().await?;
        let before =
            sqlx::query(&format!("SELECT {CUSTOMER_COLUMNS} FROM customers WHERE environment = $1 AND id = $2"))
                .bind(environment)
                .bind(id)
                .fetch_optional(&mut *tx)
                .await?;
        let Some(before) = before.as_ref().map(rows::customer).transpose()? else {
            return Err(StoreError::NotFound);
        };
        let licensed = sqlx::query("SELECT id FROM licenses WHERE customer_id = $1 LIMIT 1")
            .bind(id)
            .fetch_optional(&mut *tx)
            .await?;
        if licensed.is_some() {
            return Err(has_licenses());
        }
        // A license assigned meanwhile on another node still holds the reference: refused too.
        sqlx::query("DELETE FROM customers WHERE id = $1").bind(id).execute(&mut *tx).await.map_err(|e| {
            let e = StoreError::from(e);
            if is_foreign_key_violation(&e) {
                has_licenses()
            } else {
                e
            }
        })?;
        let target = Target { environment, kind: "customer", id };
        audit::record(&mut tx, audit, target, Some(snapshot(&before)?), None, now()).await?;
        tx.commit().await?;
        Ok(())
    }

    pub(crate) async fn list_signing_keys(&self, environment: &str) -> Result<Vec<SigningKeyRecord>> {
        let rows = sqlx::query(&format!(
            "SELECT {SIGNING_KEY_COLUMNS} FROM signing_keys WHERE environment = $1 \
             ORDER BY CASE WHEN status = 'current' THEN 0 ELSE 1 END, created_at DESC, kid"
        ))
        .bind(environment)
        .fetch_all(&self.reader)
        .await?;
        rows.iter().map(rows::signing_key).collect()
    }

    pub(crate) async fn insert_first_signing_key(&self, key: &SigningKeyRecord) -> Result<bool> {
        let mut tx = self.begin_write().await?;
        let inserted = sqlx::query(
            "INSERT INTO signing_keys (kid, environment, status, public_key, sealed_private_key, created_at) \
             SELECT $1, $2, 'current', $3, $4, $5 \
             WHERE NOT EXISTS (SELECT 1 FROM signing_keys WHERE environment = $2)",
        )
        .bind(key.kid.as_str())
        .bind(key.environment.as_str())
        .bind(key.public_key.as_str())
        .bind(key.sealed_private_key.as_str())
        .bind(micros(key.created_at))
        .execute(&mut *tx)
        .await;
        let inserted = match inserted.map_err(StoreError::from) {
            Ok(done) => done.rows_affected() == 1,
            // Another node's first key won the race (the one-current-key index).
            Err(e) if is_unique_violation(&e) => false,
            Err(e) => return Err(explain(e, || StoreError::NotFound, "environment")),
        };
        if inserted {
            let stored = SigningKeyRecord { status: "current".into(), ..key.clone() };
            let system = Audit { actor: "keyward".into(), ip: None, action: "signing_key.created".into() };
            let target = Target { environment: &key.environment, kind: "signing_key", id: &key.kid };
            let after = snapshot_without(&stored, SIGNING_KEY_SECRETS)?;
            audit::record(&mut tx, &system, target, None, Some(after), now()).await?;
            tx.commit().await?;
        } else {
            tx.rollback().await?;
        }
        Ok(inserted)
    }

    pub(crate) async fn replace_signing_key(&self, key: &SigningKeyRecord, audit: &Audit) -> Result<()> {
        let mut tx = self.begin_write().await?;
        let current = sqlx::query(&format!(
            "SELECT {SIGNING_KEY_COLUMNS} FROM signing_keys WHERE environment = $1 AND status = 'current'"
        ))
        .bind(key.environment.as_str())
        .fetch_optional(&mut *tx)
        .await?;
        let before = current.as_ref().map(rows::signing_key).transpose()?;
        sqlx::query("UPDATE signing_keys SET status = 'retired' WHERE environment = $1 AND status = 'current'")
            .bind(key.environment.as_str())
            .execute(&mut *tx)
            .await?;
        sqlx::query(
            "INSERT INTO signing_keys (kid, environment, status, public_key, sealed_private_key, created_at) \
             VALUES ($1, $2, 'current', $3, $4, $5)",
        )
        .bind(key.kid.as_str())
        .bind(key.environment.as_str())
        .bind(key.public_key.as_str())
        .bind(key.sealed_private_key.as_str())
        .bind(micros(key.created_at))
        .execute(&mut *tx)
        .await
        .map_err(|e| {
            let busy = || StoreError::Conflict {
                code: "SIGNING_KEY_CONFLICT",
                message: "another signing key was made current at the same time; try again".into(),
            };
            explain(e.into(), busy, "environment")
        })?;
        let stored = SigningKeyRecord { status: "current".into(), ..key.clone() };
        let before = before.map(|k| snapshot_without(&k, SIGNING_KEY_SECRETS)).transpose()?;
        let after = snapshot_without(&stored, SIGNING_KEY_SECRETS)?;
        let target = Target { environment: &key.environment, kind: "signing_key", id: &key.kid };
        audit::record(&mut tx, audit, target, before, Some(after), now()).await?;
        tx.commit().await?;
        Ok(())
    }
}

fn id_taken() -> StoreError {
    StoreError::Conflict { code: "ID_TAKEN", message: "a record with this id exists already".into() }
}

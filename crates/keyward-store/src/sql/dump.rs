//! A whole installation as one checksummed document (`keyward export` / `keyward import`, also
//! between backends), and SQLite's online backup.

use super::audit::AUDIT_COLUMNS;
use super::licenses::{
    activation_args, license_args, validation_args, ACTIVATION_INSERT_COLUMNS, LICENSE_INSERT_COLUMNS,
    VALIDATION_INSERT_COLUMNS,
};
use super::rows::{self, insert_many, json, micros, time, Arg, LICENSE_COLUMNS, LICENSE_FROM};
use super::SqlStore;
use crate::{
    Activation, ApiToken, AuditEvent, Backend, Customer, Generator, License, Product, Result, Settings,
    SigningKeyRecord, StoreError, ValidationRecord,
};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};
use sqlx::sqlite::SqliteConnectOptions;
use sqlx::{AnyConnection, ConnectOptions, Connection, Row};
use std::path::Path;

/// What `Dump::format` says of a keyward dump.
pub const DUMP_FORMAT: &str = "keyward-dump";
/// The layout of `DumpData`; an import refuses versions it does not know.
pub const DUMP_VERSION: u32 = 1;

/// An installation: every record, and a SHA-256 over the canonical JSON of `data`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Dump {
    pub format: String,
    pub version: u32,
    pub exported_at: DateTime<Utc>,
    /// Hex SHA-256 of `data` as canonical JSON (object keys sorted, no spaces).
    pub checksum: String,
    pub data: DumpData,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DumpData {
    pub environments: Vec<EnvironmentRow>,
    pub settings: Vec<SettingsRow>,
    pub tokens: Vec<ApiToken>,
    pub products: Vec<Product>,
    pub generators: Vec<Generator>,
    pub customers: Vec<Customer>,
    pub licenses: Vec<License>,
    pub activations: Vec<Activation>,
    /// Oldest first.
    pub validations: Vec<ValidationRecord>,
    /// In the order they were written.
    pub audit_events: Vec<AuditEvent>,
    pub signing_keys: Vec<SigningKeyRecord>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EnvironmentRow {
    pub name: String,
    pub created_at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SettingsRow {
    pub environment: String,
    pub settings: Settings,
    pub updated_at: DateTime<Utc>,
}

/// JSON with every object's keys sorted and no whitespace: one text for one value.
fn write_canonical(value: &Value, out: &mut String) {
    match value {
        Value::Object(map) => {
            let mut entries: Vec<_> = map.iter().collect();
            entries.sort_by(|a, b| a.0.cmp(b.0));
            out.push('{');
            for (i, (key, value)) in entries.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(&Value::String(key.clone()).to_string());
                out.push(':');
                write_canonical(value, out);
            }
            out.push('}');
        }
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_canonical(item, out);
            }
            out.push(']');
        }
        scalar => out.push_str(&scalar.to_string()),
    }
}

impl DumpData {
    pub fn checksum(&self) -> Result<String> {
        let value = serde_json::to_value(self).map_err(|e| StoreError::Import(format!("cannot serialise: {e}")))?;
        let mut canonical = String::new();
        write_canonical(&value, &mut canonical);
        Ok(hex::encode(Sha256::digest(canonical.as_bytes())))
    }
}

impl Dump {
    pub fn new(data: DumpData) -> Result<Dump> {
        Ok(Dump {
            format: DUMP_FORMAT.into(),
            version: DUMP_VERSION,
            exported_at: rows::now(),
            checksum: data.checksum()?,
            data,
        })
    }

    /// Refuses a dump of another format or version, or whose data does not match its checksum.
    pub fn verify(&self) -> Result<()> {
        if self.format != DUMP_FORMAT {
            return Err(StoreError::Import(format!("this is not a keyward dump (format `{}`)", self.format)));
        }
        if self.version != DUMP_VERSION {
            return Err(StoreError::Import(format!(
                "dump version {} is not supported (this keyward reads version {DUMP_VERSION})",
                self.version
            )));
        }
        if self.data.checksum()? != self.checksum {
            return Err(StoreError::Import("the checksum does not match: the file is damaged or was changed".into()));
        }
        Ok(())
    }

    pub fn to_json(&self) -> Result<Vec<u8>> {
        serde_json::to_vec(self).map_err(|e| StoreError::Import(format!("cannot serialise the dump: {e}")))
    }

    /// Reads and verifies a dump file's bytes.
    pub fn from_json(bytes: &[u8]) -> Result<Dump> {
        let dump: Dump = serde_json::from_slice(bytes)
            .map_err(|e| StoreError::Import(format!("the file is not a complete keyward dump: {e}")))?;
        dump.verify()?;
        Ok(dump)
    }
}

async fn all<T>(
    conn: &mut AnyConnection,
    sql: &str,
    decode: impl Fn(&sqlx::any::AnyRow) -> Result<T>,
) -> Result<Vec<T>> {
    let rows = sqlx::query(sql).fetch_all(conn).await?;
    rows.iter().map(decode).collect()
}

fn text_arg(s: &str) -> Arg {
    Arg::from(s)
}

impl SqlStore {
    /// Every record, read as one moment.
    pub async fn export(&self) -> Result<Dump> {
        let mut tx = self.reader.begin_with(self.backend.begin_snapshot()).await?;
        let conn: &mut AnyConnection = &mut tx;
        let environments = all(conn, "SELECT name, created_at FROM environments ORDER BY name", |row| {
            Ok(EnvironmentRow { name: row.try_get("name")?, created_at: time(row.try_get("created_at")?)? })
        })
        .await?;
        let settings = all(conn, "SELECT environment, body, updated_at FROM settings ORDER BY environment", |row| {
            let body: String = row.try_get("body")?;
            Ok(SettingsRow {
                environment: row.try_get("environment")?,
                settings: serde_json::from_str(&body).map_err(|e| StoreError::Corrupt(format!("settings: {e}")))?,
                updated_at: time(row.try_get("updated_at")?)?,
            })
        })
        .await?;
        let tokens = all(
            conn,
            "SELECT id, environment, name, role, token_hash, prefix, created_at FROM api_tokens ORDER BY created_at, id",
            rows::token,
        )
        .await?;
        let products = all(
            conn,
            "SELECT id, environment, name, status, created_at, updated_at FROM products ORDER BY created_at, id",
            rows::product,
        )
        .await?;
        let generators = all(
            conn,
            "SELECT id, environment, product_id, name, key_format, activation_limit, validity_days, validity_basis, \
             feature_flags, metadata, created_at, updated_at FROM generators ORDER BY created_at, id",
            rows::generator,
        )
        .await?;
        let customers = all(
            conn,
            "SELECT id, environment, name, email, metadata, created_at, updated_at FROM customers ORDER BY created_at, id",
            rows::customer,
        )
        .await?;
        let mut licenses = all(
            conn,
            &format!("SELECT {LICENSE_COLUMNS} FROM {LICENSE_FROM} ORDER BY l.created_at, l.id"),
            rows::license,
        )
        .await?;
        // Validations the SQLite journal holds, counted as their fold will count them.
        if self.journal.is_some() {
            super::journal::add_pending(&super::journal::journaled(conn).await?, &mut licenses);
        }
        let activations = all(
            conn,
            &format!("SELECT {} FROM activations ORDER BY created_at, id", rows::activation_columns("", "")),
            |row| rows::activation(row, ""),
        )
        .await?;
        let validations = match self.journal {
            // The journal's rows come after the history's, those of licenses deleted since left out.
            Some(_) => {
                "SELECT environment, license_id, validated_at, code, fingerprint, ip FROM ( \
                 SELECT 0 AS part, seq, environment, license_id, validated_at, code, fingerprint, ip FROM validations \
                 UNION ALL SELECT 1, j.seq, j.environment, j.license_id, j.validated_at, j.code, j.fingerprint, j.ip \
                 FROM validation_journal j JOIN licenses l ON l.id = j.license_id AND l.environment = j.environment \
                 ) ORDER BY part, seq"
            }
            None => "SELECT environment, license_id, validated_at, code, fingerprint, ip FROM validations ORDER BY seq",
        };
        let validations = all(conn, validations, rows::validation).await?;
        let audit_events =
            all(conn, &format!("SELECT {AUDIT_COLUMNS} FROM audit_events ORDER BY seq"), rows::audit_event).await?;
        let signing_keys = all(
            conn,
            "SELECT kid, environment, status, public_key, sealed_private_key, created_at FROM signing_keys \
             ORDER BY created_at, kid",
            rows::signing_key,
        )
        .await?;
        tx.commit().await?;
        Dump::new(DumpData {
            environments,
            settings,
            tokens,
            products,
            generators,
            customers,
            licenses,
            activations,
            validations,
            audit_events,
            signing_keys,
        })
    }

    /// Writes every record of `dump` into this installation, which must be empty (its seeded
    /// environments and settings aside), all or nothing. Signing keys of an empty installation
    /// signed nothing that matters; the dump's replace them.
    pub async fn import(&self, dump: &Dump) -> Result<()> {
        dump.verify()?;
        let mut tx = self.begin_write().await?;
        self.import_data(&mut tx, &dump.data).await.map_err(|e| match e {
            // The database refused a row: a reference to nothing, a repeated id.
            StoreError::Database(sqlx::Error::Database(db)) => {
                StoreError::Import(format!("the dump does not fit this installation: {db}"))
            }
            other => other,
        })?;
        tx.commit().await?;
        if self.journal.is_some() {
            super::journal::past_history(&self.writer).await?;
        }
        crate::Store::refresh_statistics(self).await
    }

    async fn import_data(&self, conn: &mut AnyConnection, data: &DumpData) -> Result<()> {
        for table in ["products", "generators", "customers", "licenses", "api_tokens"] {
            let row = sqlx::query(&format!("SELECT COUNT(*) AS n FROM {table}")).fetch_one(&mut *conn).await?;
            if rows::int(&row, "n")? > 0 {
                return Err(StoreError::Import("the installation is not empty".into()));
            }
        }
        let backend = self.backend;
        for environment in &data.environments {
            sqlx::query(
                "INSERT INTO environments (name, created_at) VALUES ($1, $2) \
                 ON CONFLICT (name) DO UPDATE SET created_at = excluded.created_at",
            )
            .bind(environment.name.as_str())
            .bind(micros(environment.created_at))
            .execute(&mut *conn)
            .await?;
        }
        for row in &data.settings {
            sqlx::query(
                "INSERT INTO settings (environment, body, updated_at) VALUES ($1, $2, $3) \
                 ON CONFLICT (environment) DO UPDATE SET body = excluded.body, updated_at = excluded.updated_at",
            )
            .bind(row.environment.as_str())
            .bind(json(&row.settings)?)
            .bind(micros(row.updated_at))
            .execute(&mut *conn)
            .await?;
        }
        if !data.signing_keys.is_empty() {
            sqlx::query("DELETE FROM signing_keys").execute(&mut *conn).await?;
        }
        let columns = ["kid", "environment", "status", "public_key", "sealed_private_key", "created_at"];
        insert_many(conn, backend, "signing_keys", &columns, &data.signing_keys, |k| {
            Ok(vec![
                text_arg(&k.kid),
                text_arg(&k.environment),
                text_arg(&k.status),
                text_arg(&k.public_key),
                text_arg(&k.sealed_private_key),
                micros(k.created_at).into(),
            ])
        })
        .await?;
        let columns = ["id", "environment", "name", "role", "token_hash", "prefix", "created_at"];
        insert_many(conn, backend, "api_tokens", &columns, &data.tokens, |t| {
            Ok(vec![
                text_arg(&t.id),
                text_arg(&t.environment),
                text_arg(&t.name),
                text_arg(t.role.as_str()),
                text_arg(&t.token_hash),
                text_arg(&t.prefix),
                micros(t.created_at).into(),
            ])
        })
        .await?;
        let columns = ["id", "environment", "name", "status", "created_at", "updated_at"];
        insert_many(conn, backend, "products", &columns, &data.products, |p| {
            Ok(vec![
                text_arg(&p.id),
                text_arg(&p.environment),
                text_arg(&p.name),
                text_arg(rows::product_status_str(p.status)),
                micros(p.created_at).into(),
                micros(p.updated_at).into(),
            ])
        })
        .await?;
        let columns = [
            "id",
            "environment",
            "product_id",
            "name",
            "key_format",
            "activation_limit",
            "validity_days",
            "validity_basis",
            "feature_flags",
            "metadata",
            "created_at",
            "updated_at",
        ];
        insert_many(conn, backend, "generators", &columns, &data.generators, |g| {
            Ok(vec![
                text_arg(&g.id),
                text_arg(&g.environment),
                text_arg(&g.product_id),
                text_arg(&g.name),
                json(&g.format)?.into(),
                g.activation_limit.get().into(),
                g.validity.map(|v| v.days).into(),
                g.validity.map(|v| v.basis.as_str()).into(),
                json(&g.feature_flags)?.into(),
                json(&g.metadata)?.into(),
                micros(g.created_at).into(),
                micros(g.updated_at).into(),
            ])
        })
        .await?;
        let columns = ["id", "environment", "name", "email", "metadata", "created_at", "updated_at"];
        insert_many(conn, backend, "customers", &columns, &data.customers, |c| {
            Ok(vec![
                text_arg(&c.id),
                text_arg(&c.environment),
                text_arg(&c.name),
                text_arg(&c.email),
                json(&c.metadata)?.into(),
                micros(c.created_at).into(),
                micros(c.updated_at).into(),
            ])
        })
        .await?;
        insert_many(conn, backend, "licenses", &LICENSE_INSERT_COLUMNS, &data.licenses, |l| {
            license_args(l, l.activation_count)
        })
        .await?;
        insert_many(conn, backend, "activations", &ACTIVATION_INSERT_COLUMNS, &data.activations, activation_args)
            .await?;
        insert_many(conn, backend, "validations", &VALIDATION_INSERT_COLUMNS, &data.validations, validation_args)
            .await?;
        let columns: Vec<&str> = AUDIT_COLUMNS.split(", ").collect();
        insert_many(conn, backend, "audit_events", &columns, &data.audit_events, |e| {
            let opt_json = |v: &Option<Value>| Arg::Text(v.as_ref().map(Value::to_string));
            Ok(vec![
                text_arg(&e.id),
                text_arg(&e.environment),
                text_arg(&e.actor),
                text_arg(&e.action),
                text_arg(&e.target_type),
                text_arg(&e.target_id),
                opt_json(&e.before),
                opt_json(&e.after),
                e.ip.clone().into(),
                micros(e.created_at).into(),
            ])
        })
        .await
    }

    /// A consistent copy of a running SQLite database in a new file at `path` (VACUUM INTO).
    pub async fn backup_sqlite(&self, path: &Path) -> Result<()> {
        if self.backend != Backend::Sqlite {
            return Err(StoreError::Database(sqlx::Error::Configuration(
                "backup copies an SQLite database; on PostgreSQL use `keyward export` or pg_dump".into(),
            )));
        }
        if path.exists() {
            return Err(StoreError::Database(sqlx::Error::Configuration(
                format!("{} exists already; a backup goes to a new file", path.display()).into(),
            )));
        }
        let target = path.to_str().ok_or_else(|| {
            StoreError::Database(sqlx::Error::Configuration("the backup path is not valid UTF-8".into()))
        })?;
        sqlx::query("VACUUM INTO $1").bind(target).execute(&self.reader).await?;
        // The key search file is not copied: whichever one sits beside the backup once it is
        // restored is not its index, and is built anew when the backup is opened.
        let mut copy = SqliteConnectOptions::new().filename(path).connect().await?;
        sqlx::raw_sql("UPDATE search_index SET token = NULL").execute(&mut copy).await?;
        copy.close().await?;
        Ok(())
    }
}

//! Between records and rows: times as unix microseconds, JSON as text, enums as their names,
//! and a small builder for statements whose text depends on the request.

use crate::{
    Activation, ApiToken, AuditEvent, Customer, CustomerRef, Generator, License, Product, ProductStatus,
    SigningKeyRecord, StoreError, ValidationRecord, ValidityRecord,
};
use chrono::{DateTime, Utc};
use keyward_core::activation::ValidityBasis;
use keyward_core::validation::{ActivationKind, ValidationCode};
use keyward_core::values::ActivationLimit;
use keyward_core::LicenseStatus;
use serde::de::DeserializeOwned;
use serde::Serialize;
use sqlx::any::{AnyArguments, AnyRow};
use sqlx::query::Query;
use sqlx::{Any, Row};

type Result<T, E = StoreError> = std::result::Result<T, E>;

pub(crate) fn micros(at: DateTime<Utc>) -> i64 {
    at.timestamp_micros()
}

pub(crate) fn opt_micros(at: Option<DateTime<Utc>>) -> Option<i64> {
    at.map(micros)
}

pub(crate) fn time(us: i64) -> Result<DateTime<Utc>> {
    DateTime::from_timestamp_micros(us).ok_or_else(|| StoreError::Corrupt(format!("time {us} is out of range")))
}

/// Now, to the microsecond the database keeps.
pub(crate) fn now() -> DateTime<Utc> {
    DateTime::from_timestamp_micros(Utc::now().timestamp_micros()).unwrap_or_else(Utc::now)
}

pub(crate) fn json<T: Serialize>(value: &T) -> Result<String> {
    serde_json::to_string(value).map_err(|e| StoreError::Corrupt(format!("cannot serialise a record: {e}")))
}

fn from_json<T: DeserializeOwned>(text: &str, what: &str) -> Result<T> {
    serde_json::from_str(text).map_err(|e| StoreError::Corrupt(format!("{what}: {e}")))
}

fn text(row: &AnyRow, column: &str) -> Result<String> {
    Ok(row.try_get::<String, _>(column)?)
}

fn opt_text(row: &AnyRow, column: &str) -> Result<Option<String>> {
    Ok(row.try_get::<Option<String>, _>(column)?)
}

pub(crate) fn int(row: &AnyRow, column: &str) -> Result<i64> {
    Ok(row.try_get::<i64, _>(column)?)
}

fn opt_int(row: &AnyRow, column: &str) -> Result<Option<i64>> {
    Ok(row.try_get::<Option<i64>, _>(column)?)
}

fn at(row: &AnyRow, column: &str) -> Result<DateTime<Utc>> {
    time(int(row, column)?)
}

fn opt_at(row: &AnyRow, column: &str) -> Result<Option<DateTime<Utc>>> {
    opt_int(row, column)?.map(time).transpose()
}

fn json_column<T: DeserializeOwned>(row: &AnyRow, column: &str) -> Result<T> {
    from_json(&text(row, column)?, column)
}

fn opt_json_column<T: DeserializeOwned>(row: &AnyRow, column: &str) -> Result<Option<T>> {
    opt_text(row, column)?.map(|t| from_json(&t, column)).transpose()
}

fn parsed<T>(row: &AnyRow, column: &str, parse: impl FnOnce(&str) -> Option<T>) -> Result<T> {
    let value = text(row, column)?;
    parse(&value).ok_or_else(|| StoreError::Corrupt(format!("{column} `{value}` is unknown")))
}

fn limit(row: &AnyRow, column: &str) -> Result<ActivationLimit> {
    let n = int(row, column)?;
    ActivationLimit::parse(n).map_err(|e| StoreError::Corrupt(format!("{column} {n}: {e}")))
}

pub(crate) fn product_status_str(status: ProductStatus) -> &'static str {
    match status {
        ProductStatus::Active => "active",
        ProductStatus::Archived => "archived",
    }
}

fn product_status(s: &str) -> Option<ProductStatus> {
    match s {
        "active" => Some(ProductStatus::Active),
        "archived" => Some(ProductStatus::Archived),
        _ => None,
    }
}

pub(crate) fn validation_code_str(code: ValidationCode) -> &'static str {
    code.as_str()
}

fn validation_code(s: &str) -> Option<ValidationCode> {
    serde_json::from_value(serde_json::Value::String(s.to_owned())).ok()
}

fn validity(row: &AnyRow) -> Result<Option<ValidityRecord>> {
    match (opt_int(row, "validity_days")?, opt_text(row, "validity_basis")?) {
        (Some(days), Some(basis)) => {
            let basis = ValidityBasis::parse(&basis)
                .ok_or_else(|| StoreError::Corrupt(format!("validity_basis `{basis}` is unknown")))?;
            Ok(Some(ValidityRecord { days, basis }))
        }
        _ => Ok(None),
    }
}

pub(crate) fn product(row: &AnyRow) -> Result<Product> {
    Ok(Product {
        id: text(row, "id")?,
        environment: text(row, "environment")?,
        name: text(row, "name")?,
        status: parsed(row, "status", product_status)?,
        created_at: at(row, "created_at")?,
        updated_at: at(row, "updated_at")?,
    })
}

pub(crate) fn generator(row: &AnyRow) -> Result<Generator> {
    Ok(Generator {
        id: text(row, "id")?,
        environment: text(row, "environment")?,
        product_id: text(row, "product_id")?,
        name: text(row, "name")?,
        format: json_column(row, "key_format")?,
        activation_limit: limit(row, "activation_limit")?,
        validity: validity(row)?,
        feature_flags: json_column(row, "feature_flags")?,
        metadata: json_column(row, "metadata")?,
        created_at: at(row, "created_at")?,
        updated_at: at(row, "updated_at")?,
    })
}

pub(crate) fn customer(row: &AnyRow) -> Result<Customer> {
    Ok(Customer {
        id: text(row, "id")?,
        environment: text(row, "environment")?,
        name: text(row, "name")?,
        email: text(row, "email")?,
        metadata: json_column(row, "metadata")?,
        created_at: at(row, "created_at")?,
        updated_at: at(row, "updated_at")?,
    })
}

pub(crate) fn token(row: &AnyRow) -> Result<ApiToken> {
    Ok(ApiToken {
        id: text(row, "id")?,
        name: text(row, "name")?,
        role: parsed(row, "role", |s| s.parse().ok())?,
        environment: text(row, "environment")?,
        token_hash: text(row, "token_hash")?,
        prefix: text(row, "prefix")?,
        created_at: at(row, "created_at")?,
    })
}

/// The columns `license` reads, from `LICENSE_FROM`.
pub(crate) const LICENSE_COLUMNS: &str = "l.id, l.environment, l.key, l.product_id, l.generator_id, l.customer_id, \
     l.status, l.activation_limit, l.activation_count, l.expires_at, l.validity_days, l.validity_basis, \
     l.feature_flags, l.metadata, l.suspension_reason, l.ever_activated, l.created_at, l.updated_at, \
     l.assigned_at, l.first_activated_at, l.last_validated_at, l.validation_count, \
     p.name AS product_name, c.name AS customer_name, c.email AS customer_email";

/// A license with its product's name and its customer joined in.
pub(crate) const LICENSE_FROM: &str =
    "licenses l JOIN products p ON p.id = l.product_id LEFT JOIN customers c ON c.id = l.customer_id";

pub(crate) fn license(row: &AnyRow) -> Result<License> {
    let customer_id = opt_text(row, "customer_id")?;
    let customer = match (&customer_id, opt_text(row, "customer_name")?, opt_text(row, "customer_email")?) {
        (Some(id), Some(name), Some(email)) => Some(CustomerRef { id: id.clone(), name, email }),
        _ => None,
    };
    Ok(License {
        id: text(row, "id")?,
        environment: text(row, "environment")?,
        key: text(row, "key")?,
        product_id: text(row, "product_id")?,
        generator_id: text(row, "generator_id")?,
        customer_id,
        status: parsed(row, "status", |s| s.parse::<LicenseStatus>().ok())?,
        activation_limit: limit(row, "activation_limit")?,
        activation_count: int(row, "activation_count")?,
        expires_at: opt_at(row, "expires_at")?,
        validity: validity(row)?,
        feature_flags: json_column(row, "feature_flags")?,
        metadata: json_column(row, "metadata")?,
        suspension_reason: opt_text(row, "suspension_reason")?,
        ever_activated: int(row, "ever_activated")? != 0,
        created_at: at(row, "created_at")?,
        updated_at: at(row, "updated_at")?,
        assigned_at: opt_at(row, "assigned_at")?,
        first_activated_at: opt_at(row, "first_activated_at")?,
        last_validated_at: opt_at(row, "last_validated_at")?,
        validation_count: int(row, "validation_count")?,
        product_name: text(row, "product_name")?,
        customer,
    })
}

/// The columns `activation` reads, with `prefix` naming the table (`a.`) or nothing.
pub(crate) fn activation_columns(prefix: &str, alias: &str) -> String {
    ["id", "license_id", "kind", "fingerprint", "name", "platform", "hostname", "ip", "created_at", "last_seen_at"]
        .iter()
        .map(|column| format!("{prefix}{column} AS {alias}{column}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// An activation from columns named `{alias}id`, `{alias}kind`, …
pub(crate) fn activation(row: &AnyRow, alias: &str) -> Result<Activation> {
    let col = |name: &str| format!("{alias}{name}");
    Ok(Activation {
        id: text(row, &col("id"))?,
        license_id: text(row, &col("license_id"))?,
        kind: parsed(row, &col("kind"), ActivationKind::parse)?,
        fingerprint: text(row, &col("fingerprint"))?,
        name: opt_text(row, &col("name"))?,
        platform: opt_text(row, &col("platform"))?,
        hostname: opt_text(row, &col("hostname"))?,
        ip: opt_text(row, &col("ip"))?,
        created_at: at(row, &col("created_at"))?,
        last_seen_at: at(row, &col("last_seen_at"))?,
    })
}

pub(crate) fn validation(row: &AnyRow) -> Result<ValidationRecord> {
    Ok(ValidationRecord {
        environment: text(row, "environment")?,
        license_id: text(row, "license_id")?,
        at: at(row, "validated_at")?,
        code: parsed(row, "code", validation_code)?,
        fingerprint: opt_text(row, "fingerprint")?,
        ip: opt_text(row, "ip")?,
    })
}

pub(crate) fn audit_event(row: &AnyRow) -> Result<AuditEvent> {
    Ok(AuditEvent {
        id: text(row, "id")?,
        environment: text(row, "environment")?,
        actor: text(row, "actor")?,
        action: text(row, "action")?,
        target_type: text(row, "target_type")?,
        target_id: text(row, "target_id")?,
        before: opt_json_column(row, "before_json")?,
        after: opt_json_column(row, "after_json")?,
        ip: opt_text(row, "ip")?,
        created_at: at(row, "created_at")?,
    })
}

pub(crate) fn signing_key(row: &AnyRow) -> Result<SigningKeyRecord> {
    Ok(SigningKeyRecord {
        kid: text(row, "kid")?,
        environment: text(row, "environment")?,
        status: text(row, "status")?,
        public_key: text(row, "public_key")?,
        sealed_private_key: text(row, "sealed_private_key")?,
        created_at: at(row, "created_at")?,
    })
}

/// One bind value of a statement built at run time: the Any driver's integer or text, maybe NULL
/// (typed, so PostgreSQL knows the parameter's type).
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Arg {
    Int(Option<i64>),
    Text(Option<String>),
}

impl From<i64> for Arg {
    fn from(v: i64) -> Self {
        Arg::Int(Some(v))
    }
}

impl From<Option<i64>> for Arg {
    fn from(v: Option<i64>) -> Self {
        Arg::Int(v)
    }
}

impl From<&str> for Arg {
    fn from(v: &str) -> Self {
        Arg::Text(Some(v.to_owned()))
    }
}

impl From<String> for Arg {
    fn from(v: String) -> Self {
        Arg::Text(Some(v))
    }
}

impl From<Option<String>> for Arg {
    fn from(v: Option<String>) -> Self {
        Arg::Text(v)
    }
}

impl From<Option<&str>> for Arg {
    fn from(v: Option<&str>) -> Self {
        Arg::Text(v.map(str::to_owned))
    }
}

/// SQL text and its binds, numbered `$1, $2, …` as they are added.
#[derive(Debug, Clone, Default)]
pub(crate) struct Sql {
    pub text: String,
    args: Vec<Arg>,
}

impl Sql {
    pub fn new(text: &str) -> Self {
        Sql { text: text.to_owned(), args: Vec::new() }
    }

    pub fn push(&mut self, text: &str) -> &mut Self {
        self.text.push_str(text);
        self
    }

    /// Adds a bind and returns its placeholder.
    pub fn arg(&mut self, arg: impl Into<Arg>) -> String {
        self.args.push(arg.into());
        format!("${}", self.args.len())
    }

    /// Adds a bind used once, in order, and returns its placeholder: cheaper than `arg` for
    /// statements with thousands of binds (see `Backend::sequential_placeholder`).
    pub fn next_arg(&mut self, backend: crate::Backend, arg: impl Into<Arg>) -> String {
        self.args.push(arg.into());
        backend.sequential_placeholder(self.args.len())
    }

    /// Adds a bind and writes its placeholder.
    pub fn bind(&mut self, arg: impl Into<Arg>) -> &mut Self {
        let placeholder = self.arg(arg);
        self.text.push_str(&placeholder);
        self
    }

    /// This statement with `prefix` before its text; the binds keep their numbers.
    pub fn prefixed(&self, prefix: &str) -> Sql {
        Sql { text: format!("{prefix}{}", self.text), args: self.args.clone() }
    }

    /// These binds under another text, which may use any of them.
    pub fn reworded(&self, text: String) -> Sql {
        Sql { text, args: self.args.clone() }
    }

    /// The statement, its binds moved into it (no copies: bulk inserts carry thousands).
    pub fn into_parts(self) -> (String, Vec<Arg>) {
        (self.text, self.args)
    }

    pub fn query(&self) -> Query<'_, Any, AnyArguments<'_>> {
        let mut query = sqlx::query(&self.text);
        for arg in &self.args {
            query = match arg {
                Arg::Int(v) => query.bind(*v),
                Arg::Text(v) => query.bind(v.clone()),
            };
        }
        query
    }
}

/// `s` as a LIKE pattern matching it anywhere, lower-cased as SQL's `lower()` does (ASCII only,
/// on both backends), with `%`, `_` and the escape character `\` taken literally.
pub(crate) fn contains_pattern(s: &str) -> String {
    let mut pattern = String::with_capacity(s.len() + 2);
    pattern.push('%');
    for c in s.to_ascii_lowercase().chars() {
        if matches!(c, '%' | '_' | '\\') {
            pattern.push('\\');
        }
        pattern.push(c);
    }
    pattern.push('%');
    pattern
}

/// Inserts `records` into `table` with multi-row statements, as many rows to a statement as the
/// backend's bind limit allows (at most 1,000).
pub(crate) async fn insert_many<T>(
    conn: &mut sqlx::AnyConnection,
    backend: crate::Backend,
    table: &str,
    columns: &[&str],
    records: &[T],
    args: impl Fn(&T) -> Result<Vec<Arg>>,
) -> Result<()> {
    let rows_per_statement = (backend.max_binds() / columns.len()).clamp(1, 1000);
    for chunk in records.chunks(rows_per_statement) {
        let mut sql = Sql::new(&format!("INSERT INTO {table} ({}) VALUES ", columns.join(", ")));
        sql.text.reserve(chunk.len() * columns.len() * 7);
        for (i, record) in chunk.iter().enumerate() {
            sql.push(if i == 0 { "(" } else { ", (" });
            for (j, arg) in args(record)?.into_iter().enumerate() {
                if j > 0 {
                    sql.push(", ");
                }
                let placeholder = sql.next_arg(backend, arg);
                sql.push(&placeholder);
            }
            sql.push(")");
        }
        let (text, args) = sql.into_parts();
        let mut query = sqlx::query(&text);
        for arg in args {
            query = match arg {
                Arg::Int(v) => query.bind(v),
                Arg::Text(v) => query.bind(v),
            };
        }
        query.execute(&mut *conn).await?;
    }
    Ok(())
}

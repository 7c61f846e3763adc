//! The audit log: one event per write, in the write's transaction; append-only.

use super::list::{Keyset, Kind, Listing};
use super::rows::{self, micros, Sql};
use super::SqlStore;
use crate::{Audit, AuditEvent, AuditQuery, Order, Page, Result, StoreError};
use chrono::{DateTime, Utc};
use keyward_core::ids::{new_id, IdKind};
use serde::Serialize;
use serde_json::Value;
use sqlx::AnyConnection;

/// What an audit event is about.
pub(crate) struct Target<'a> {
    pub environment: &'a str,
    pub kind: &'a str,
    pub id: &'a str,
}

/// A record as the audit log shows it.
pub(crate) fn snapshot<T: Serialize>(record: &T) -> Result<Value> {
    serde_json::to_value(record).map_err(|e| StoreError::Corrupt(format!("cannot serialise a record: {e}")))
}

/// A record as the audit log shows it, without the fields that must not be copied around.
pub(crate) fn snapshot_without<T: Serialize>(record: &T, secret_fields: &[&str]) -> Result<Value> {
    let mut value = snapshot(record)?;
    if let Value::Object(map) = &mut value {
        for field in secret_fields {
            map.remove(*field);
        }
    }
    Ok(value)
}

/// Writes one audit event on `conn`, which is inside the write's transaction.
pub(crate) async fn record(
    conn: &mut AnyConnection,
    audit: &Audit,
    target: Target<'_>,
    before: Option<Value>,
    after: Option<Value>,
    at: DateTime<Utc>,
) -> Result<()> {
    let before = before.map(|v| v.to_string());
    let after = after.map(|v| v.to_string());
    sqlx::query(
        "INSERT INTO audit_events (id, environment, actor, action, target_type, target_id, before_json, after_json, ip, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
    )
    .bind(new_id(IdKind::AuditEvent))
    .bind(target.environment)
    .bind(audit.actor.as_str())
    .bind(audit.action.as_str())
    .bind(target.kind)
    .bind(target.id)
    .bind(before)
    .bind(after)
    .bind(audit.ip.clone())
    .bind(micros(at))
    .execute(conn)
    .await?;
    Ok(())
}

pub(crate) const AUDIT_COLUMNS: &str =
    "id, environment, actor, action, target_type, target_id, before_json, after_json, ip, created_at";

impl SqlStore {
    pub(crate) async fn list_audit_events(&self, environment: &str, query: &AuditQuery) -> Result<Page<AuditEvent>> {
        let mut filter = Sql::new("WHERE environment = ");
        filter.bind(environment);
        if let Some(target_id) = &query.target_id {
            filter.push(" AND target_id = ").bind(target_id.as_str());
        }
        if let Some(action) = &query.action {
            filter.push(" AND action = ").bind(action.as_str());
        }
        Listing {
            pool: &self.reader,
            columns: AUDIT_COLUMNS,
            from: "audit_events",
            count_from: None,
            filter,
            // Append order: newest first.
            keyset: Keyset {
                tag: "audit",
                sort: "seq",
                sort_kind: Kind::Int,
                tie: "seq",
                tie_kind: Kind::Int,
                order: Order::Desc,
            },
            limit: query.limit,
            cursor: query.cursor.as_deref(),
            decode: rows::audit_event,
        }
        .fetch()
        .await
    }
}

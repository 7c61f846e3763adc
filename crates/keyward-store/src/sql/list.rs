//! Lists: keyset pagination behind an opaque cursor, and a total over the same filters.

use super::rows::{int, Arg, Sql};
use crate::{Order, Page, StoreError};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde_json::Value;
use sqlx::any::AnyRow;
use sqlx::{AnyPool, Row};

type Result<T, E = StoreError> = std::result::Result<T, E>;

/// The type of a sort column, for reading it back from a cursor.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    Int,
    Text,
}

/// How a list is ordered: a never-NULL sort expression, then a unique tie-breaker, so that
/// paging is stable and complete.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Keyset<'a> {
    /// Names the sort inside the cursor, so a cursor of another sort or list is refused.
    pub tag: &'a str,
    pub sort: &'a str,
    pub sort_kind: Kind,
    pub tie: &'a str,
    pub tie_kind: Kind,
    pub order: Order,
}

/// A page request on one list.
pub(crate) struct Listing<'a, T> {
    pub pool: &'a AnyPool,
    pub columns: &'a str,
    pub from: &'a str,
    /// What the total counts over, when the filter needs less than `from` (no joins).
    pub count_from: Option<&'a str>,
    /// `WHERE …` with its binds; the keyset condition is appended to it.
    pub filter: Sql,
    pub keyset: Keyset<'a>,
    pub limit: u32,
    pub cursor: Option<&'a str>,
    pub decode: fn(&AnyRow) -> Result<T>,
}

impl<T> Listing<'_, T> {
    pub async fn fetch(self) -> Result<Page<T>> {
        let Keyset { tag, sort, sort_kind, tie, tie_kind, order } = self.keyset;
        let limit = self.limit.clamp(1, 500);

        let count =
            self.filter.prefixed(&format!("SELECT COUNT(*) AS n FROM {} ", self.count_from.unwrap_or(self.from)));
        let total = int(&count.query().fetch_one(self.pool).await?, "n")?;

        let (cmp, dir) = match order {
            Order::Asc => (">", "ASC"),
            Order::Desc => ("<", "DESC"),
        };
        let mut page = self.filter;
        if let Some(cursor) = self.cursor {
            let (after_sort, after_tie) = decode_cursor(cursor, tag, sort_kind, tie_kind)?;
            let s = page.arg(after_sort);
            let t = page.arg(after_tie);
            page.push(&format!(" AND ({sort} {cmp} {s} OR ({sort} = {s} AND {tie} {cmp} {t}))"));
        }
        let mut query =
            page.prefixed(&format!("SELECT {}, {sort} AS k_sort, {tie} AS k_tie FROM {} ", self.columns, self.from));
        query.push(&format!(" ORDER BY {sort} {dir}, {tie} {dir} LIMIT {}", u64::from(limit) + 1));

        let rows = query.query().fetch_all(self.pool).await?;
        let more = rows.len() > limit as usize;
        let mut data = Vec::with_capacity(rows.len().min(limit as usize));
        let mut next_cursor = None;
        for (i, row) in rows.iter().take(limit as usize).enumerate() {
            data.push((self.decode)(row)?);
            if more && i + 1 == limit as usize {
                next_cursor =
                    Some(encode_cursor(tag, key_value(row, "k_sort", sort_kind)?, key_value(row, "k_tie", tie_kind)?));
            }
        }
        Ok(Page { data, next_cursor, total })
    }
}

fn key_value(row: &AnyRow, column: &str, kind: Kind) -> Result<Value> {
    Ok(match kind {
        Kind::Int => Value::from(row.try_get::<i64, _>(column)?),
        Kind::Text => Value::from(row.try_get::<String, _>(column)?),
    })
}

fn encode_cursor(tag: &str, sort: Value, tie: Value) -> String {
    URL_SAFE_NO_PAD.encode(Value::Array(vec![Value::from(tag), sort, tie]).to_string())
}

pub(crate) fn invalid_cursor() -> StoreError {
    StoreError::Conflict { code: "INVALID_CURSOR", message: "the cursor is not one this list gave out".into() }
}

fn decode_cursor(cursor: &str, tag: &str, sort_kind: Kind, tie_kind: Kind) -> Result<(Arg, Arg)> {
    let bytes = URL_SAFE_NO_PAD.decode(cursor.trim()).map_err(|_| invalid_cursor())?;
    let value: Value = serde_json::from_slice(&bytes).map_err(|_| invalid_cursor())?;
    let Value::Array(parts) = value else { return Err(invalid_cursor()) };
    let [Value::String(found_tag), sort, tie] = parts.as_slice() else { return Err(invalid_cursor()) };
    if found_tag != tag {
        return Err(invalid_cursor());
    }
    let arg = |value: &Value, kind: Kind| match (value, kind) {
        (Value::Number(n), Kind::Int) => n.as_i64().map(Arg::from).ok_or_else(invalid_cursor),
        (Value::String(s), Kind::Text) => Ok(Arg::from(s.as_str())),
        _ => Err(invalid_cursor()),
    };
    Ok((arg(sort, sort_kind)?, arg(tie, tie_kind)?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_refuse_strangers() {
        let cursor = encode_cursor("licenses.key", Value::from("ABC"), Value::from("lic_1"));
        let (sort, tie) = decode_cursor(&cursor, "licenses.key", Kind::Text, Kind::Text).unwrap();
        assert_eq!((sort, tie), (Arg::from("ABC"), Arg::from("lic_1")));
        assert!(decode_cursor(&cursor, "licenses.created_at", Kind::Int, Kind::Text).is_err());
        assert!(decode_cursor(&cursor, "licenses.key", Kind::Int, Kind::Text).is_err());
        for bad in ["", "%%%", "bm90IGpzb24", &URL_SAFE_NO_PAD.encode("[1,2]")] {
            assert!(matches!(
                decode_cursor(bad, "licenses.key", Kind::Text, Kind::Text),
                Err(StoreError::Conflict { code: "INVALID_CURSOR", .. })
            ));
        }
    }
}

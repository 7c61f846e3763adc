//! Lists: keyset pagination behind an opaque cursor, and a total over the same filters.

use super::rows::{int, Arg, Sql};
use crate::{Order, Page, StoreError};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde_json::Value;
use sqlx::any::AnyRow;
use sqlx::{AnyPool, Row};
use std::cmp::Ordering as Cmp;

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

/// A sort or tie-breaker value, as a row or a cursor carries it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Key {
    Int(i64),
    Text(String),
}

impl Key {
    fn read(row: &AnyRow, column: &str, kind: Kind) -> Result<Key> {
        Ok(match kind {
            Kind::Int => Key::Int(row.try_get::<i64, _>(column)?),
            Kind::Text => Key::Text(row.try_get::<String, _>(column)?),
        })
    }

    fn value(&self) -> Value {
        match self {
            Key::Int(n) => Value::from(*n),
            Key::Text(s) => Value::from(s.as_str()),
        }
    }
}

impl From<&Key> for Arg {
    fn from(key: &Key) -> Arg {
        match key {
            Key::Int(n) => Arg::from(*n),
            Key::Text(s) => Arg::from(s.as_str()),
        }
    }
}

/// Where a row stands in a list: its sort value, then its tie-breaker. Text compares byte-wise,
/// as both backends order it (COLLATE "C" on PostgreSQL).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct Position {
    pub sort: Key,
    pub tie: Key,
}

/// A keyset served by more than one statement: the rows of every slice are merged by their
/// positions (the sort is read back as `k_sort`, the tie-breaker as `k_tie`).
pub(crate) type Ordering<'a> = Keyset<'a>;

/// How a slice of a list reaches its rows in order.
#[derive(Debug, Clone)]
pub(crate) enum Walk {
    /// Ordered by this expression, equal for each of the slice's rows to the list's sort but
    /// written so that an index serves it; then by the tie-breaker.
    Ordered(String),
    /// Every row of the slice sorts at this value: ordered by the tie-breaker alone.
    Constant(Key),
}

/// Part of a list that one index walks in the list's order.
pub(crate) struct Slice {
    pub from: String,
    /// `WHERE …` with its binds.
    pub filter: Sql,
    pub walk: Walk,
}

impl Ordering<'_> {
    fn cmp_dir(&self) -> (&'static str, &'static str) {
        match self.order {
            Order::Asc => (">", "ASC"),
            Order::Desc => ("<", "DESC"),
        }
    }

    /// The position a cursor of this list carries.
    pub fn decode(&self, cursor: &str) -> Result<Position> {
        let (sort, tie) = decode_cursor(cursor, self.tag, self.sort_kind, self.tie_kind)?;
        let key = |arg: Arg| match arg {
            Arg::Int(Some(n)) => Ok(Key::Int(n)),
            Arg::Text(Some(s)) => Ok(Key::Text(s)),
            _ => Err(invalid_cursor()),
        };
        Ok(Position { sort: key(sort)?, tie: key(tie)? })
    }

    fn select(&self, columns: &str, from: &str, filter: &Sql) -> Sql {
        filter.prefixed(&format!("SELECT {columns}, {} AS k_sort, {} AS k_tie FROM {from} ", self.sort, self.tie))
    }

    fn position(&self, row: &AnyRow) -> Result<Position> {
        Ok(Position { sort: Key::read(row, "k_sort", self.sort_kind)?, tie: Key::read(row, "k_tie", self.tie_kind)? })
    }

    /// Runs `statement` planned for its binds' values (unnamed: PostgreSQL would otherwise settle
    /// on a generic plan after a few runs, blind to how rare a search is).
    async fn positioned(&self, pool: &AnyPool, statement: &Sql) -> Result<Vec<(Position, AnyRow)>> {
        let rows = statement.query().persistent(false).fetch_all(pool).await?;
        rows.into_iter().map(|row| Ok((self.position(&row)?, row))).collect()
    }

    /// The position and id (`id`, an expression) of every row of `from`/`filter`, in no order,
    /// if there are at most `up_to`: one pass over a small set that counts it and sorts it, the
    /// planner free to reach it through the filter's indexes (no order to tempt it elsewhere).
    pub async fn probe(
        &self,
        pool: &AnyPool,
        from: &str,
        filter: &Sql,
        id: &str,
        up_to: usize,
    ) -> Result<Option<Vec<(Position, String)>>> {
        let mut statement = filter
            .prefixed(&format!("SELECT {} AS k_sort, {} AS k_tie, {id} AS k_id FROM {from} ", self.sort, self.tie));
        statement.push(&format!(" LIMIT {}", up_to + 1));
        let rows = statement.query().persistent(false).fetch_all(pool).await?;
        if rows.len() > up_to {
            return Ok(None);
        }
        let rows = rows
            .iter()
            .map(|row| Ok((self.position(row)?, row.try_get::<String, _>("k_id")?)))
            .collect::<Result<_>>()?;
        Ok(Some(rows))
    }

    /// `filter` narrowed to the rows after `after` along `sort` (this list's sort, written as an
    /// index has it): those tying with `after` on it, to be ordered by the tie-breaker (none when
    /// the sort is its own tie-breaker, or without `after`), then those beyond it.
    fn after(&self, filter: &Sql, sort: &str, after: Option<&Position>) -> (Option<Sql>, Sql) {
        let (cmp, tie) = (self.cmp_dir().0, self.tie);
        let mut beyond = filter.clone();
        let Some(after) = after else { return (None, beyond) };
        let ties = (sort != tie).then(|| {
            let mut ties = filter.clone();
            let (s, t) = (ties.arg(&after.sort), ties.arg(&after.tie));
            ties.push(&format!(" AND {sort} = {s} AND {tie} {cmp} {t}"));
            ties
        });
        let s = beyond.arg(&after.sort);
        beyond.push(&format!(" AND {sort} {cmp} {s}"));
        (ties, beyond)
    }

    /// Walks the first `budget` rows of `from`/`filter` after `after`, in order (those tying with
    /// `after` first): the first `want` of them that `mine` (a condition on the same binds as
    /// `filter`) holds for, in order, each with its position and `id`, and whether the rows ran
    /// out before `budget`. Only those come back, and the walk stops at the `want`th: a row sent
    /// back costs more than one walked (at a million, a search matching one key in 32 walked
    /// 6,480 rows in 56 ms sending each back; its request now takes ~43 ms in all).
    pub async fn prefix(
        &self,
        pool: &AnyPool,
        from: &str,
        filter: &Sql,
        (id, mine): (&str, &str),
        after: Option<&Position>,
        (budget, want): (usize, usize),
    ) -> Result<(Vec<(Position, String)>, bool)> {
        let dir = self.cmp_dir().1;
        let (sort, tie) = (self.sort, self.tie);
        // The walk's rows stay in the subquery's order: no database reorders what it filters.
        let walk = |filter: &Sql, order: String, budget: usize, want: usize| {
            let mut statement = filter.prefixed(&format!(
                "SELECT k_sort, k_tie, k_id FROM (SELECT {sort} AS k_sort, {tie} AS k_tie, {id} AS k_id, \
                 CAST(CASE WHEN {mine} THEN 1 ELSE 0 END AS BIGINT) AS k_mine FROM {from} "
            ));
            statement.push(&format!(" ORDER BY {order} LIMIT {budget}) w WHERE k_mine = 1 LIMIT {want}"));
            async move {
                let rows = statement.query().persistent(false).fetch_all(pool).await?;
                rows.iter()
                    .map(|row| Ok((self.position(row)?, row.try_get::<String, _>("k_id")?)))
                    .collect::<Result<Vec<_>>>()
            }
        };
        // How many of `budget` rows there are to walk: counted from their index's entries alone.
        let there = |filter: &Sql, order: String, budget: usize| {
            let mut statement = filter.prefixed(&format!("SELECT COUNT(*) AS n FROM (SELECT 1 FROM {from} "));
            statement.push(&format!(" ORDER BY {order} LIMIT {budget}) w"));
            async move {
                let row = statement.query().persistent(false).fetch_one(pool).await?;
                Ok::<_, StoreError>(usize::try_from(int(&row, "n")?).unwrap_or(0))
            }
        };
        let mut found = Vec::new();
        let mut left = budget;
        let (ties, beyond) = self.after(filter, sort, after);
        if let Some(ties) = ties {
            let order = format!("{tie} {dir}");
            found = walk(&ties, order.clone(), budget, want).await?;
            if found.len() == want {
                return Ok((found, false));
            }
            left -= there(&ties, order, budget).await?;
            if left == 0 {
                return Ok((found, false));
            }
        }
        let order = format!("{sort} {dir}, {tie} {dir}");
        found.extend(walk(&beyond, order.clone(), left, want - found.len()).await?);
        if found.len() == want {
            return Ok((found, false));
        }
        Ok((found, there(&beyond, order, left).await? < left))
    }

    /// The first `want` rows of `from`/`filter` after `after`, in order, each with its `id`:
    /// the database sorts the whole of them, read first (materialized, so that no index of the
    /// sort leads it past rows of others) and sent back only as the `want`.
    pub async fn sorted_whole(
        &self,
        pool: &AnyPool,
        from: &str,
        filter: &Sql,
        id: &str,
        after: Option<&Position>,
        want: usize,
    ) -> Result<Vec<(Position, String)>> {
        let (cmp, dir) = self.cmp_dir();
        let mut statement = filter.prefixed(&format!(
            "WITH part AS MATERIALIZED (SELECT {} AS k_sort, {} AS k_tie, {id} AS k_id FROM {from} ",
            self.sort, self.tie
        ));
        statement.push(") SELECT k_sort, k_tie, k_id FROM part");
        if let Some(after) = after {
            let (s, t) = (statement.arg(&after.sort), statement.arg(&after.tie));
            statement.push(&format!(" WHERE k_sort {cmp} {s} OR (k_sort = {s} AND k_tie {cmp} {t})"));
        }
        statement.push(&format!(" ORDER BY k_sort {dir}, k_tie {dir} LIMIT {want}"));
        let rows = statement.query().persistent(false).fetch_all(pool).await?;
        rows.iter().map(|row| Ok((self.position(row)?, row.try_get::<String, _>("k_id")?))).collect()
    }

    /// Of `rows`, the first `want` after `after`, in order.
    pub fn first<T>(&self, mut rows: Vec<(Position, T)>, after: Option<&Position>, want: usize) -> Vec<(Position, T)> {
        if let Some(after) = after {
            rows.retain(|(position, _)| match self.order {
                Order::Asc => position > after,
                Order::Desc => position < after,
            });
        }
        self.sort_rows(&mut rows);
        rows.truncate(want);
        rows
    }

    fn sort_rows<T>(&self, rows: &mut [(Position, T)]) {
        rows.sort_by(|a, b| match self.order {
            Order::Asc => a.0.cmp(&b.0),
            Order::Desc => b.0.cmp(&a.0),
        });
    }

    /// The rows whose `id` (an expression) is one of `ids`, each with its position.
    pub async fn rows(
        &self,
        pool: &AnyPool,
        columns: &str,
        from: &str,
        id: &str,
        ids: &[String],
    ) -> Result<Vec<(Position, AnyRow)>> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let mut filter = Sql::default();
        let placeholders: Vec<String> = ids.iter().map(|i| filter.arg(i.as_str())).collect();
        filter.push(&format!("WHERE {id} IN ({})", placeholders.join(", ")));
        self.positioned(pool, &self.select(columns, from, &filter)).await
    }

    /// Up to `want` rows of `slice` after `after`, in order, each statement walking one index:
    /// the rows that tie with `after` first, then the rows beyond its sort value.
    pub async fn walk(
        &self,
        pool: &AnyPool,
        columns: &str,
        slice: &Slice,
        after: Option<&Position>,
        want: usize,
    ) -> Result<Vec<(Position, AnyRow)>> {
        let (cmp, dir) = self.cmp_dir();
        let tie = self.tie;
        let mut found = Vec::new();
        match &slice.walk {
            Walk::Constant(value) => {
                let mut filter = slice.filter.clone();
                if let Some(after) = after {
                    let beyond = match value.cmp(&after.sort) {
                        Cmp::Equal => None,
                        Cmp::Greater => Some(self.order == Order::Asc),
                        Cmp::Less => Some(self.order == Order::Desc),
                    };
                    match beyond {
                        Some(true) => {}
                        Some(false) => return Ok(found),
                        None => {
                            let t = filter.arg(&after.tie);
                            filter.push(&format!(" AND {tie} {cmp} {t}"));
                        }
                    }
                }
                let mut statement = self.select(columns, &slice.from, &filter);
                statement.push(&format!(" ORDER BY {tie} {dir} LIMIT {want}"));
                found = self.positioned(pool, &statement).await?;
            }
            Walk::Ordered(sort) => {
                let (ties, beyond) = self.after(&slice.filter, sort, after);
                if let Some(ties) = ties {
                    let mut statement = self.select(columns, &slice.from, &ties);
                    statement.push(&format!(" ORDER BY {tie} {dir} LIMIT {want}"));
                    found = self.positioned(pool, &statement).await?;
                    if found.len() >= want {
                        return Ok(found);
                    }
                }
                let mut statement = self.select(columns, &slice.from, &beyond);
                statement.push(&format!(" ORDER BY {sort} {dir}, {tie} {dir} LIMIT {}", want - found.len()));
                found.extend(self.positioned(pool, &statement).await?);
            }
        }
        Ok(found)
    }

    /// The page of `limit` from rows gathered by several statements (each in order, together at
    /// least `limit + 1` when there are that many).
    pub fn page<T>(
        &self,
        mut rows: Vec<(Position, AnyRow)>,
        limit: usize,
        total: i64,
        decode: fn(&AnyRow) -> Result<T>,
    ) -> Result<Page<T>> {
        self.sort_rows(&mut rows);
        let more = rows.len() > limit;
        rows.truncate(limit);
        let next_cursor = match rows.last() {
            Some((last, _)) if more => Some(encode_cursor(self.tag, last.sort.value(), last.tie.value())),
            _ => None,
        };
        let data = rows.iter().map(|(_, row)| decode(row)).collect::<Result<_>>()?;
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

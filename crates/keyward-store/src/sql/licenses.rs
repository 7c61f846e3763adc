//! Licenses, their activations and validation history: the store's busiest records.

use super::audit::{self, snapshot, Target};
use super::dialect::{SearchTerm, POSTGRES_BULK_SETTINGS, SQLITE_BULK_CACHE, SQLITE_BUSY_TIMEOUT, SQLITE_WRITER_CACHE};
use super::list::{Key, Keyset, Kind, Listing, Ordering, Position, Slice, Walk};
use super::rows::{
    self, contains_pattern, insert_many, json, micros, now, opt_micros, Arg, Sql, LICENSE_COLUMNS, LICENSE_FROM,
};
use super::{is_foreign_key_violation, is_unique_violation, missing_reference, SqlStore};
use crate::{
    Activation, ActivationChange, Audit, Backend, License, LicenseChanged, LicenseDeleteCheck, LicenseEdit,
    LicenseQuery, LicenseSort, ListQuery, Order, Page, Result, StoreError, ValidationCount, ValidationRecord,
};
use keyward_core::LicenseStatus;
use serde_json::json as json_value;
use sqlx::{Any, AnyConnection, Transaction};
use std::collections::{BTreeMap, HashMap, HashSet};

/// Licenses whose validation counts one statement updates: few enough that PostgreSQL's planner
/// looks each one up by its primary key rather than scanning the table.
const COUNTS_PER_STATEMENT: usize = 500;

/// Batches larger than this leave one summary audit event instead of one per license.
const AUDIT_EACH_UP_TO: usize = 100;

/// Batches this large (`keyward generate`; the API inserts at most 1,000) are written with the
/// writer's bulk page cache on SQLite, with `POSTGRES_BULK_SETTINGS` on PostgreSQL.
const BULK_FROM: usize = 10_000;

pub(crate) const LICENSE_INSERT_COLUMNS: [&str; 22] = [
    "id",
    "environment",
    "key",
    "product_id",
    "generator_id",
    "customer_id",
    "status",
    "activation_limit",
    "activation_count",
    "expires_at",
    "validity_days",
    "validity_basis",
    "feature_flags",
    "metadata",
    "suspension_reason",
    "ever_activated",
    "created_at",
    "updated_at",
    "assigned_at",
    "first_activated_at",
    "last_validated_at",
    "validation_count",
];

/// A license's row as inserted, with `activation_count` as given (0 for new licenses).
pub(crate) fn license_args(l: &License, activation_count: i64) -> Result<Vec<Arg>> {
    Ok(vec![
        l.id.as_str().into(),
        l.environment.as_str().into(),
        l.key.as_str().into(),
        l.product_id.as_str().into(),
        l.generator_id.as_str().into(),
        l.customer_id.clone().into(),
        l.status.as_str().into(),
        l.activation_limit.get().into(),
        activation_count.into(),
        opt_micros(l.expires_at).into(),
        l.validity.map(|v| v.days).into(),
        l.validity.map(|v| v.basis.as_str()).into(),
        json(&l.feature_flags)?.into(),
        json(&l.metadata)?.into(),
        l.suspension_reason.clone().into(),
        i64::from(l.ever_activated).into(),
        micros(l.created_at).into(),
        micros(l.updated_at).into(),
        opt_micros(l.assigned_at).into(),
        opt_micros(l.first_activated_at).into(),
        opt_micros(l.last_validated_at).into(),
        l.validation_count.into(),
    ])
}

pub(crate) const ACTIVATION_INSERT_COLUMNS: [&str; 10] =
    ["id", "license_id", "kind", "fingerprint", "name", "platform", "hostname", "ip", "created_at", "last_seen_at"];

pub(crate) fn activation_args(a: &Activation) -> Result<Vec<Arg>> {
    Ok(vec![
        a.id.as_str().into(),
        a.license_id.as_str().into(),
        a.kind.as_str().into(),
        a.fingerprint.as_str().into(),
        a.name.clone().into(),
        a.platform.clone().into(),
        a.hostname.clone().into(),
        a.ip.clone().into(),
        micros(a.created_at).into(),
        micros(a.last_seen_at).into(),
    ])
}

pub(crate) const VALIDATION_INSERT_COLUMNS: [&str; 6] =
    ["environment", "license_id", "validated_at", "code", "fingerprint", "ip"];

pub(crate) fn validation_args(v: &ValidationRecord) -> Result<Vec<Arg>> {
    Ok(vec![
        v.environment.as_str().into(),
        v.license_id.as_str().into(),
        micros(v.at).into(),
        rows::validation_code_str(v.code).into(),
        v.fingerprint.clone().into(),
        v.ip.clone().into(),
    ])
}

/// The most licenses a part of a list may hold to be sorted whole; a larger one is walked along
/// its sort's index. Sorting n rows costs about n row reads; walking finds a page of 50 among
/// n of N licenses after about 50·N/n index entries: at a million licenses the two meet near here.
const SORT_UP_TO: i64 = 5_000;

/// Most index entries a walk of the environment's sort index passes for a part before the part
/// is read whole instead: its licenses may sit far along the sort (one customer's, made together,
/// sorted by an expiry they share), where the walk would pass most of the environment.
const WALK_UP_TO: i64 = 10_000;

/// The most licenses a part is sorted whole when the walk finds too few; a larger part is walked
/// to the end (sorting one customer's 100,000 took ~0.1 s at a million).
const READ_WHOLE_UP_TO: i64 = 200_000;

/// A search whose key matches at least 1/`BROAD_SHARE` of the environment's licenses is counted
/// and walked row by row (see `key_matches_of`).
const BROAD_SHARE: i64 = 10;

/// Most licenses outside the environment whose keys a search's total compares row by row, to
/// take them from the key trigram table's count (`key_matches_of`).
const ELSEWHERE_UP_TO: i64 = 20_000;

/// A search part: what the key index tells of it before any match is read.
struct KeyMatches {
    /// Keys the search matches (`Backend::key_candidates`; on SQLite the trigram table's part
    /// is of any environment, each part counted up to more than a list sorts whole; None: a
    /// search too short for a trigram).
    candidates: Option<i64>,
    /// Matches a tenth of the environment or more: counted and walked row by row.
    broad: bool,
    /// The part's total, when the part is the matched ids alone and the count gives it.
    total: Option<i64>,
}

/// Most customers a search reads as ids; past this many, statements match them themselves.
const CUSTOMER_IDS_UP_TO: usize = 1_000;

/// Most matching customers whose licenses, too many to sort whole, are walked newest first one
/// customer at a time (a statement each, along `licenses_of_customer_newest`).
const CUSTOMER_WALKS_UP_TO: usize = 32;

/// One of the disjoint parts whose union a license list is.
struct LicensePart {
    /// `WHERE l.environment = … AND …` with its binds (a search's too).
    filter: Sql,
    /// A search's condition on each license `l`.
    condition: Option<String>,
    /// A search's statement yielding the ids that the condition holds for, through the key and
    /// customer indexes, so that reading a few matches starts from them.
    matched: Option<String>,
    /// A search's condition compared row by row (`Backend::key_compared`), which walks check and
    /// which counts a search most licenses match; and the search, whose key candidates tell
    /// which it is (`Backend::key_candidates`).
    compared: Option<(String, SearchTerm)>,
    /// The part is the matched ids and nothing else (a search of the whole environment that
    /// matched no product or customer): counted from them alone, without reading their rows.
    matched_alone: bool,
    /// The environment's placeholder in `filter`.
    env: String,
    /// Every license of the environment: counted the backend's fastest way.
    whole_environment: bool,
    /// A search's matching customers' licenses: one filter per customer, when they are few.
    per_customer: Vec<Sql>,
    /// When the part is every license of these customers and nothing else: their counts are
    /// kept (PostgreSQL, migration 0005), so its total is read, not counted.
    customer_totals: Vec<String>,
}

impl LicensePart {
    /// The filter with the search's condition: what a walk checks row by row.
    fn filtered(&self) -> Sql {
        self.with(self.condition.as_deref())
    }

    /// The filter with the search's condition compared row by row, where it can be.
    fn compared(&self) -> Sql {
        self.with(self.compared.as_ref().map(|(condition, _)| condition.as_str()))
    }

    /// The filter and `condition`.
    fn with(&self, condition: Option<&str>) -> Sql {
        let mut filter = self.filter.clone();
        if let Some(condition) = condition {
            filter.push(&format!(" AND {condition}"));
        }
        filter
    }

    /// `from` and the filter, led by the matched ids when there are some.
    fn joined(&self, from: &str) -> (String, Sql) {
        match &self.matched {
            Some(matched) => {
                let mut filter = self.filter.clone();
                filter.push(" AND l.id = m.id");
                // CROSS JOIN keeps SQLite from reordering: the matches lead, then their rows.
                (format!("({matched}) m CROSS JOIN {from}"), filter)
            }
            None => (from.to_owned(), self.filtered()),
        }
    }
}

/// The ORDER BY of a license list: a never-NULL expression, with its type.
fn license_sort(sort: LicenseSort) -> (&'static str, Kind) {
    match sort {
        LicenseSort::Key => ("l.key", Kind::Text),
        LicenseSort::Product => ("lower(p.name)", Kind::Text),
        // Unassigned licenses sort before every email.
        LicenseSort::Customer => ("COALESCE(c.email, '')", Kind::Text),
        // The order of a license's life, not the alphabet.
        LicenseSort::Status => (
            "CASE l.status WHEN 'available' THEN 0 WHEN 'assigned' THEN 1 WHEN 'active' THEN 2 \
             WHEN 'inactive' THEN 3 WHEN 'suspended' THEN 4 WHEN 'expired' THEN 5 ELSE 6 END",
            Kind::Int,
        ),
        // Unlimited is more than any limit.
        LicenseSort::ActivationLimit => {
            ("CASE WHEN l.activation_limit < 0 THEN 9223372036854775807 ELSE l.activation_limit END", Kind::Int)
        }
        // A lifetime license expires after every dated one.
        LicenseSort::ExpiresAt => ("COALESCE(l.expires_at, 9223372036854775807)", Kind::Int),
        LicenseSort::CreatedAt => ("l.created_at", Kind::Int),
    }
}

fn sort_tag(sort: LicenseSort, order: Order) -> &'static str {
    use LicenseSort as S;
    match (sort, order) {
        (S::Key, Order::Asc) => "licenses.key.asc",
        (S::Key, Order::Desc) => "licenses.key.desc",
        (S::Product, Order::Asc) => "licenses.product.asc",
        (S::Product, Order::Desc) => "licenses.product.desc",
        (S::Customer, Order::Asc) => "licenses.customer.asc",
        (S::Customer, Order::Desc) => "licenses.customer.desc",
        (S::Status, Order::Asc) => "licenses.status.asc",
        (S::Status, Order::Desc) => "licenses.status.desc",
        (S::ActivationLimit, Order::Asc) => "licenses.limit.asc",
        (S::ActivationLimit, Order::Desc) => "licenses.limit.desc",
        (S::ExpiresAt, Order::Asc) => "licenses.expires.asc",
        (S::ExpiresAt, Order::Desc) => "licenses.expires.desc",
        (S::CreatedAt, Order::Asc) => "licenses.created.asc",
        (S::CreatedAt, Order::Desc) => "licenses.created.desc",
    }
}

/// The states time moves to expired, as SQL text.
fn expirable_list() -> String {
    LicenseStatus::EXPIRABLE.iter().map(|s| format!("'{}'", s.as_str())).collect::<Vec<_>>().join(", ")
}

/// The filter for a license's effective status, as disjoint conditions to append: past expiry
/// plus grace, an expirable license reads as expired before the sweep writes it. Each condition
/// is one range of the (environment, status, expires_at) index.
fn status_filters(filter: &Sql, status: LicenseStatus, expired_before: i64) -> Vec<Sql> {
    let mut filter = filter.clone();
    let status_arg = filter.arg(status.as_str());
    if status == LicenseStatus::Expired {
        let mut unswept = filter.clone();
        filter.push(&format!(" AND l.status = {status_arg}"));
        let before = unswept.arg(expired_before);
        unswept.push(&format!(
            " AND l.status IN ({}) AND l.expires_at IS NOT NULL AND l.expires_at <= {before}",
            expirable_list()
        ));
        return vec![filter, unswept];
    }
    if status.is_expirable() {
        let before = filter.arg(expired_before);
        filter.push(&format!(" AND l.status = {status_arg} AND (l.expires_at IS NULL OR l.expires_at > {before})"));
    } else {
        filter.push(&format!(" AND l.status = {status_arg}"));
    }
    vec![filter]
}

/// One license's validations: `(license, environment)`, then `(count, latest time in micros)`.
type LicenseCount<'a> = ((&'a str, &'a str), (i64, i64));

/// Validations summed per license, in id order, so two batches on two nodes never wait for each
/// other in a circle.
fn per_license<'a>(
    validations: impl Iterator<Item = (&'a str, &'a str, i64, chrono::DateTime<chrono::Utc>)>,
) -> Vec<LicenseCount<'a>> {
    let mut per_license: BTreeMap<(&str, &str), (i64, i64)> = BTreeMap::new();
    for (license_id, environment, count, at) in validations {
        let entry = per_license.entry((license_id, environment)).or_insert((0, i64::MIN));
        entry.0 += count;
        entry.1 = entry.1.max(micros(at));
    }
    per_license.into_iter().collect()
}

/// Binds each id and returns their placeholders, comma-separated, for an `IN (…)`.
fn in_list(sql: &mut Sql, ids: &[String]) -> String {
    ids.iter().map(|id| sql.arg(id.as_str())).collect::<Vec<_>>().join(", ")
}

fn mismatched_activation() -> StoreError {
    StoreError::Conflict { code: "ACTIVATION_NOT_FOUND", message: "the activation is not on this license".into() }
}

impl SqlStore {
    /// Tells other nodes (on commit) that a license changed: `env:key`, or `env` for many new ones.
    async fn announce(&self, conn: &mut AnyConnection, payload: &str) -> Result<()> {
        if let Some(statement) = self.backend.announce_statement() {
            sqlx::query(statement).bind(payload).execute(conn).await?;
        }
        Ok(())
    }

    pub(crate) async fn add_licenses(&self, licenses: &[License], audit: &Audit) -> Result<()> {
        if licenses.len() < BULK_FROM {
            return self.insert_license_batch(licenses, audit, &[]).await;
        }
        if self.backend == Backend::Postgres {
            return self.insert_license_batch(licenses, audit, POSTGRES_BULK_SETTINGS).await;
        }
        // SQLite has one writer connection: the batch's transaction runs on the one resized here.
        sqlx::query(SQLITE_BULK_CACHE).execute(&self.writer).await?;
        let inserted = self.insert_license_batch(licenses, audit, &[]).await;
        // The batch's answer stands either way: a cache left large costs memory, not licenses.
        if let Err(err) = sqlx::query(SQLITE_WRITER_CACHE).execute(&self.writer).await {
            tracing::warn!(error = %err, "the SQLite writer's page cache was not set back after a bulk insert");
        }
        inserted
    }

    /// Inserts the licenses in one transaction, run with `settings` (statements scoped to it).
    async fn insert_license_batch(&self, licenses: &[License], audit: &Audit, settings: &[&str]) -> Result<()> {
        let Some(first) = licenses.first() else { return Ok(()) };
        let at = now();
        let mut tx = self.begin_write().await?;
        for setting in settings {
            sqlx::query(setting).execute(&mut *tx).await?;
        }
        insert_many(&mut tx, self.backend, "licenses", &LICENSE_INSERT_COLUMNS, licenses, |l| license_args(l, 0))
            .await
            .map_err(|e| {
                if is_unique_violation(&e) {
                    StoreError::DuplicateKey
                } else if is_foreign_key_violation(&e) {
                    missing_reference("product, generator or customer")
                } else {
                    e
                }
            })?;
        if licenses.len() <= AUDIT_EACH_UP_TO {
            for license in licenses {
                let stored = License { activation_count: 0, ..license.clone() };
                let target = Target { environment: &license.environment, kind: "license", id: &license.id };
                audit::record(&mut tx, audit, target, None, Some(snapshot(&stored)?), at).await?;
                self.announce(&mut tx, &format!("{}:{}", license.environment, license.key)).await?;
            }
        } else {
            let last = &licenses[licenses.len() - 1];
            let after = json_value!({"count": licenses.len(), "first_id": first.id, "last_id": last.id});
            let target = Target { environment: &first.environment, kind: "license_batch", id: &first.id };
            audit::record(&mut tx, audit, target, None, Some(after), at).await?;
            let mut environments: Vec<&str> = licenses.iter().map(|l| l.environment.as_str()).collect();
            environments.sort_unstable();
            environments.dedup();
            for environment in environments {
                self.announce(&mut tx, environment).await?;
            }
        }
        tx.commit().await?;
        Ok(())
    }

    /// The license by id or key, preferring the id should a key look like another's id.
    async fn read_license(
        &self,
        conn: &mut AnyConnection,
        environment: &str,
        id_or_key: &str,
    ) -> Result<Option<License>> {
        let row = sqlx::query(&format!(
            "SELECT {LICENSE_COLUMNS} FROM {LICENSE_FROM} WHERE l.environment = $1 AND (l.id = $2 OR l.key = $2) \
             ORDER BY CASE WHEN l.id = $2 THEN 0 ELSE 1 END LIMIT 1"
        ))
        .bind(environment)
        .bind(id_or_key)
        .fetch_optional(conn)
        .await?;
        row.as_ref().map(rows::license).transpose()
    }

    async fn read_activations(&self, conn: &mut AnyConnection, license_id: &str) -> Result<Vec<Activation>> {
        let rows = sqlx::query(&format!(
            "SELECT {} FROM activations WHERE license_id = $1 ORDER BY created_at, id",
            rows::activation_columns("", "")
        ))
        .bind(license_id)
        .fetch_all(conn)
        .await?;
        rows.iter().map(|row| rows::activation(row, "")).collect()
    }

    pub(crate) async fn find_license(&self, environment: &str, id_or_key: &str) -> Result<Option<License>> {
        let mut conn = self.reader.acquire().await?;
        self.read_license(&mut conn, environment, id_or_key).await
    }

    /// One indexed statement, so the license and its activations are one consistent picture.
    pub(crate) async fn snapshot(&self, environment: &str, key: &str) -> Result<Option<(License, Vec<Activation>)>> {
        let rows = sqlx::query(&format!(
            "SELECT {LICENSE_COLUMNS}, {} FROM {LICENSE_FROM} LEFT JOIN activations a ON a.license_id = l.id \
             WHERE l.environment = $1 AND l.key = $2 ORDER BY a.created_at, a.id",
            rows::activation_columns("a.", "a_")
        ))
        .bind(environment)
        .bind(key)
        .fetch_all(&self.reader)
        .await?;
        let Some(first) = rows.first() else { return Ok(None) };
        let license = rows::license(first)?;
        let mut activations = Vec::with_capacity(rows.len());
        for row in &rows {
            if sqlx::Row::try_get::<Option<String>, _>(row, "a_id")?.is_some() {
                activations.push(rows::activation(row, "a_")?);
            }
        }
        Ok(Some((license, activations)))
    }

    pub(crate) async fn snapshots(
        &self,
        environment: &str,
        after_key: Option<&str>,
        limit: u32,
    ) -> Result<Vec<(License, Vec<Activation>)>> {
        // Keys are compared byte-wise on both backends (COLLATE "C" on PostgreSQL).
        let after = after_key.unwrap_or("");
        let rows = sqlx::query(&format!(
            "SELECT {LICENSE_COLUMNS} FROM {LICENSE_FROM} WHERE l.environment = $1 AND l.key > $2 ORDER BY l.key LIMIT $3"
        ))
        .bind(environment)
        .bind(after)
        .bind(i64::from(limit))
        .fetch_all(&self.reader)
        .await?;
        let mut page: Vec<(License, Vec<Activation>)> =
            rows.iter().map(|row| Ok((rows::license(row)?, Vec::new()))).collect::<Result<_>>()?;
        let (Some((first, _)), Some((last, _))) = (page.first(), page.last()) else { return Ok(page) };
        let activations = sqlx::query(&format!(
            "SELECT {} FROM activations a JOIN licenses l ON l.id = a.license_id              WHERE l.environment = $1 AND l.key >= $2 AND l.key <= $3 ORDER BY a.created_at, a.id",
            rows::activation_columns("a.", "a_")
        ))
        .bind(environment)
        .bind(first.key.as_str())
        .bind(last.key.as_str())
        .fetch_all(&self.reader)
        .await?;
        let index: std::collections::HashMap<String, usize> =
            page.iter().enumerate().map(|(i, (license, _))| (license.id.clone(), i)).collect();
        for row in &activations {
            let activation = rows::activation(row, "a_")?;
            if let Some(&i) = index.get(&activation.license_id) {
                page[i].1.push(activation);
            }
        }
        Ok(page)
    }

    /// A page of licenses. Each part of the list (see `license_parts`) is read the cheaper of two
    /// ways: a part of at most `SORT_UP_TO` licenses is read whole in one pass through its
    /// filter's indexes (position and id only), which counts it, and sorted here; a larger one is
    /// counted, then walked in order along the sort's index, filtering as it goes, which finds a
    /// page after a few thousand index entries at most. The page's rows are read last, by id.
    pub(crate) async fn list_licenses(&self, environment: &str, query: &LicenseQuery) -> Result<Page<License>> {
        let limit = query.limit.clamp(1, 500) as usize;
        let (sort, sort_kind) = license_sort(query.sort);
        let ordering = Ordering {
            tag: sort_tag(query.sort, query.order),
            sort,
            sort_kind,
            // A key is unique in its environment: its own tie-breaker, so the key index serves.
            tie: if query.sort == LicenseSort::Key { "l.key" } else { "l.id" },
            tie_kind: Kind::Text,
            order: query.order,
        };
        let after = query.cursor.as_deref().map(|cursor| ordering.decode(cursor)).transpose()?;
        let after = after.as_ref();
        // Only the product and customer sorts read the product or the customer.
        let sort_from = match query.sort {
            LicenseSort::Product | LicenseSort::Customer => LICENSE_FROM,
            _ => "licenses l",
        };
        let mut total = 0;
        let mut sorted = Vec::new();
        let mut found = Vec::new();
        let by_product = query.sort == LicenseSort::Product;
        for part in self.license_parts(environment, query).await? {
            // A filter's count is an index's range, cheaper than a pass over rows: it comes first.
            // A search's matches are as dear to count as to read: they are read first.
            let counted = if part.whole_environment {
                Some((self.count_environment(environment).await?, None))
            } else if part.condition.is_none() {
                Some(self.count_part(environment, &part, by_product, false).await?)
            } else {
                None
            };
            let keys = match counted {
                Some(_) => None,
                None => self.key_matches_of(environment, &part).await?,
            };
            let few = match (&counted, &keys) {
                (Some((n, _)), _) => *n <= SORT_UP_TO,
                (None, Some(KeyMatches { candidates: Some(n), .. })) => *n <= SORT_UP_TO,
                (None, _) => true,
            };
            if few {
                let (from, filter) = part.joined(sort_from);
                if let Some(rows) = ordering.probe(&self.reader, &from, &filter, "l.id", SORT_UP_TO as usize).await? {
                    total += rows.len() as i64;
                    sorted.extend(ordering.first(rows, after, limit + 1));
                    continue;
                }
            }
            // A search most licenses match is counted and walked row by row, not through its ids.
            let broad = keys.as_ref().is_some_and(|keys| keys.broad);
            let (count, per_product) = match (counted, keys.and_then(|keys| keys.total)) {
                (Some(counted), _) => counted,
                (None, Some(total)) if !by_product => (total, None),
                // Counting a broad search per product would read every row: the product sort
                // walks each product's licenses instead, finding them at once.
                (None, _) => self.count_part(environment, &part, by_product && !broad, broad).await?,
            };
            total += count;
            let one_index = match query.sort {
                LicenseSort::Key | LicenseSort::Status | LicenseSort::ActivationLimit => true,
                // A customer's licenses, newest first and by expiry, have indexes of their own.
                LicenseSort::CreatedAt | LicenseSort::ExpiresAt => {
                    part.per_customer.is_empty() && query.customer.is_none()
                }
                LicenseSort::Product | LicenseSort::Customer => false,
            };
            if one_index && !part.whole_environment {
                if let Some(rows) = self.first_of_part(&ordering, environment, &part, after, limit + 1, count).await? {
                    sorted.extend(rows);
                    continue;
                }
            }
            let walked = if broad { part.compared() } else { part.filtered() };
            let slices = match query.sort {
                LicenseSort::Product => {
                    let mut slices = Vec::new();
                    for (name, ids) in self.product_groups(environment, query.order).await? {
                        if per_product.as_ref().is_some_and(|n| ids.iter().all(|id| !n.contains_key(id))) {
                            continue;
                        }
                        let mut filter = walked.clone();
                        let placeholders: Vec<String> = ids.iter().map(|id| filter.arg(id.as_str())).collect();
                        filter.push(&format!(" AND l.product_id IN ({})", placeholders.join(", ")));
                        slices.push(Slice {
                            from: LICENSE_FROM.to_owned(),
                            filter,
                            walk: Walk::Constant(Key::Text(name)),
                        });
                    }
                    slices
                }
                LicenseSort::Customer => {
                    let mut unassigned = walked.clone();
                    unassigned.push(" AND l.customer_id IS NULL");
                    let mut assigned = walked.clone();
                    assigned.push(&format!(" AND c.id = l.customer_id AND c.environment = {}", part.env));
                    vec![
                        Slice {
                            from: LICENSE_FROM.to_owned(),
                            filter: unassigned,
                            walk: Walk::Constant(Key::Text(String::new())),
                        },
                        // Customers in email order (unique in an environment), each one's
                        // licenses in id order; CROSS JOIN keeps SQLite from reordering.
                        Slice {
                            from: "customers c CROSS JOIN licenses l JOIN products p ON p.id = l.product_id".to_owned(),
                            filter: assigned,
                            walk: Walk::Ordered("c.email".to_owned()),
                        },
                    ]
                }
                // Newest first or by expiry, each matching customer's licenses along that
                // customer's index.
                LicenseSort::CreatedAt | LicenseSort::ExpiresAt if !part.per_customer.is_empty() => part
                    .per_customer
                    .iter()
                    .map(|filter| Slice {
                        from: LICENSE_FROM.to_owned(),
                        filter: filter.clone(),
                        walk: Walk::Ordered(sort.to_owned()),
                    })
                    .collect(),
                _ => {
                    vec![Slice { from: LICENSE_FROM.to_owned(), filter: walked, walk: Walk::Ordered(sort.to_owned()) }]
                }
            };
            // Product groups come in the list's order: once one fills the page, later ones cannot
            // place a row on it.
            let in_order = query.sort == LicenseSort::Product;
            let mut rows = Vec::new();
            for slice in &slices {
                let want = if in_order { limit + 1 - rows.len() } else { limit + 1 };
                rows.extend(ordering.walk(&self.reader, LICENSE_COLUMNS, slice, after, want).await?);
                if in_order && rows.len() > limit {
                    break;
                }
            }
            found.extend(rows);
        }
        let ids: Vec<String> = ordering.first(sorted, None, limit + 1).into_iter().map(|(_, id)| id).collect();
        found.extend(ordering.rows(&self.reader, LICENSE_COLUMNS, LICENSE_FROM, "l.id", &ids).await?);
        ordering.page(found, limit, total, rows::license)
    }

    /// The first `want` licenses of a filtered part of `count` licenses after `after`, in a sort
    /// that an index of the whole environment keeps. Walking it finds them after about
    /// want·N/count entries when the part is spread over the environment's N licenses, so the
    /// walk stops at four times that (at most `WALK_UP_TO`); when it found too few, the part's
    /// licenses sit far along the sort and the database sorts the whole part. None: the part is
    /// too large for that, to be walked to the end.
    async fn first_of_part(
        &self,
        ordering: &Ordering<'_>,
        environment: &str,
        part: &LicensePart,
        after: Option<&Position>,
        want: usize,
        count: i64,
    ) -> Result<Option<Vec<(Position, String)>>> {
        let everywhere = self.count_environment(environment).await?;
        let budget = (4 * want as i64).saturating_mul(everywhere) / count.max(1);
        let budget = budget.clamp(want as i64, WALK_UP_TO);
        if budget < count {
            // The walk filters on the environment alone; the part's filter marks what it passes.
            let filter = part.compared();
            let mine = filter.text.trim_start_matches("WHERE ");
            let walk = filter.reworded(format!("WHERE l.environment = {}", part.env));
            let (found, ran_out) = ordering
                .prefix(&self.reader, "licenses l", &walk, ("l.id", mine), after, (budget as usize, want))
                .await?;
            if found.len() == want || ran_out {
                return Ok(Some(found));
            }
        }
        if count > READ_WHOLE_UP_TO {
            return Ok(None);
        }
        // A search's part is read from its matched ids: SQLite would rather walk the sort's index
        // and look each license up among them (31,000 keys of a million by key: 1.7 s).
        let (from, filter) = part.joined("licenses l");
        Ok(Some(ordering.sorted_whole(&self.reader, &from, &filter, "l.id", after, want).await?))
    }

    /// The list a query asks for, as disjoint parts whose union it is. Without a search, one part:
    /// the filters. A search (`q`) matches a key, a customer's email or name, or a product's name.
    /// Products are few, so the matching ones are read first and their licenses are one part, a
    /// product filter. The matching customers are read first too: up to `CUSTOMER_IDS_UP_TO` of
    /// them, their other licenses are the next part, a customer filter that the customer index
    /// counts and walks; the licenses left whose key matches are the last part, found through the
    /// key's trigram index. More customers than that are matched inside that last part instead.
    async fn license_parts(&self, environment: &str, query: &LicenseQuery) -> Result<Vec<LicensePart>> {
        let mut filter = Sql::default();
        let env = filter.arg(environment);
        filter.push(&format!("WHERE l.environment = {env}"));
        if let Some(product) = &query.product {
            filter.push(" AND l.product_id = ").bind(product.as_str());
        }
        if let Some(customer) = &query.customer {
            filter.push(" AND l.customer_id = ").bind(customer.as_str());
        }
        let filters = match query.status {
            Some(status) => status_filters(&filter, status, micros(query.expired_before)),
            None => vec![filter],
        };
        let whole = query.product.is_none() && query.customer.is_none() && query.status.is_none();
        let Some(q) = query.q.as_deref().map(str::trim).filter(|q| !q.is_empty()) else {
            let part = |filter| LicensePart {
                filter,
                condition: None,
                matched: None,
                compared: None,
                matched_alone: false,
                env: env.clone(),
                whole_environment: whole,
                per_customer: Vec::new(),
                customer_totals: Vec::new(),
            };
            return Ok(filters.into_iter().map(part).collect());
        };
        let mut products = Sql::default();
        let (e, p) = (products.arg(environment), products.arg(contains_pattern(q)));
        products.push(&format!("SELECT id FROM products WHERE environment = {e} AND lower(name) LIKE {p} ESCAPE '\\'"));
        let products = self.ids(&products).await?;
        let search = self.backend.search_term(q);
        let mut customers = Sql::default();
        let (e, t) = (customers.arg(environment), search.bind(&mut customers));
        customers.push(&format!("{} LIMIT {}", self.backend.customer_matches(&e, &t), CUSTOMER_IDS_UP_TO + 1));
        let customers = self.ids(&customers).await?;
        let mut parts = Vec::new();
        let part_of = |filter: &Sql, column: &str, ids: &[String]| {
            let mut filter = filter.clone();
            let list = in_list(&mut filter, ids);
            filter.push(&format!(" AND {column} IN ({list})"));
            LicensePart {
                filter,
                condition: None,
                matched: None,
                compared: None,
                matched_alone: false,
                env: env.clone(),
                whole_environment: false,
                per_customer: Vec::new(),
                customer_totals: Vec::new(),
            }
        };
        // Up to CUSTOMER_IDS_UP_TO were read; one more says there are too many to list.
        let few_customers = !customers.is_empty() && customers.len() <= CUSTOMER_IDS_UP_TO;
        for mut filter in filters {
            if !products.is_empty() {
                parts.push(part_of(&filter, "l.product_id", &products));
                let list = in_list(&mut filter, &products);
                filter.push(&format!(" AND l.product_id NOT IN ({list})"));
            }
            // The matching customers' licenses, found and counted through the customer index.
            if few_customers {
                let mut part = part_of(&filter, "l.customer_id", &customers);
                if customers.len() <= CUSTOMER_WALKS_UP_TO {
                    part.per_customer = customers
                        .iter()
                        .map(|customer| {
                            let mut one = filter.clone();
                            one.push(" AND l.customer_id = ").bind(customer.as_str());
                            one
                        })
                        .collect();
                }
                if whole && products.is_empty() {
                    part.customer_totals = customers.clone();
                }
                parts.push(part);
                let list = in_list(&mut filter, &customers);
                filter.push(&format!(" AND (l.customer_id IS NULL OR l.customer_id NOT IN ({list}))"));
            }
            let term = search.bind(&mut filter);
            let many_customers =
                (customers.len() > CUSTOMER_IDS_UP_TO).then(|| self.backend.customer_matches(&env, &term));
            let key = self.backend.key_condition(&env, &term);
            let condition = match &many_customers {
                Some(customers) => format!("({key} OR l.customer_id IN ({customers}))"),
                None => key,
            };
            let keys = self.backend.key_matches(&env, &term);
            let matched = match &many_customers {
                Some(customers) => {
                    format!("{keys} UNION SELECT sl.id FROM licenses sl WHERE sl.customer_id IN ({customers})")
                }
                None => keys,
            };
            let key = self.backend.key_compared(&term);
            let compared = match &many_customers {
                Some(customers) => format!("({key} OR l.customer_id IN ({customers}))"),
                None => key,
            };
            let env = env.clone();
            parts.push(LicensePart {
                filter,
                condition: Some(condition),
                matched: Some(matched),
                compared: Some((compared, search.clone())),
                matched_alone: whole && products.is_empty() && customers.is_empty(),
                env,
                whole_environment: false,
                per_customer: Vec::new(),
                customer_totals: Vec::new(),
            });
        }
        Ok(parts)
    }

    /// The `id` column of the rows `statement` yields.
    async fn ids(&self, statement: &Sql) -> Result<Vec<String>> {
        let rows = statement.query().persistent(false).fetch_all(&self.reader).await?;
        rows.iter().map(|row| Ok(sqlx::Row::try_get::<String, _>(row, "id")?)).collect()
    }

    /// How many licenses the environment holds, as triggers keep it (SQLite migration 0005,
    /// PostgreSQL 0004, a row and its changes since 0006): counting a million took ~20 ms on SQLite,
    /// 130–480 ms on PostgreSQL while validations update the rows.
    async fn count_environment(&self, environment: &str) -> Result<i64> {
        let counts = self.backend.environment_license_counts();
        let row = sqlx::query(&format!(
            "SELECT CAST(COALESCE(SUM(n), 0) AS BIGINT) AS n FROM {counts} WHERE environment = $1"
        ))
        .bind(environment)
        .fetch_one(&self.reader)
        .await?;
        rows::int(&row, "n")
    }

    /// A search part: how many keys it matches, from the key index alone (SQLite: of the trigram
    /// table, counted up to a tenth of the environment or more than a list sorts whole).
    /// A search matching that tenth, or too short for a trigram (whose ids come from a pass over
    /// every key anyway), is cheaper counted and walked row by row than through its ids: ~5 µs a
    /// match (a million: 6 s) against ~0.5 µs a license. When the part is the matched ids alone
    /// and the count is whole (`Backend::key_candidates`), the count is its total, without
    /// reading every match (31,000 keys starting with the search, of a million: ~10 ms on SQLite,
    /// ~20 ms on PostgreSQL, against ~100 ms through their ids and ~290 ms through pg_trgm on
    /// the licenses).
    async fn key_matches_of(&self, environment: &str, part: &LicensePart) -> Result<Option<KeyMatches>> {
        let Some((_, search)) = &part.compared else { return Ok(None) };
        let broad_from = (self.count_environment(environment).await? / BROAD_SHARE).max(1);
        let up_to = broad_from.max(SORT_UP_TO + 1);
        let elsewhere_up_to = part.matched_alone.then_some(ELSEWHERE_UP_TO);
        let Some(candidates) = self.backend.key_candidates(environment, search, up_to, elsewhere_up_to) else {
            return Ok(Some(KeyMatches { candidates: None, broad: true, total: None }));
        };
        let row = candidates.query().persistent(false).fetch_one(&self.reader).await?;
        let n = rows::int(&row, "n")?;
        let waiting = rows::int(&row, "waiting")? != 0;
        let complete = rows::int(&row, "complete")? != 0;
        let matched_elsewhere = sqlx::Row::try_get::<Option<i64>, _>(&row, "elsewhere")?;
        let total = matched_elsewhere.filter(|_| complete && !waiting).map(|elsewhere| n - elsewhere);
        Ok(Some(KeyMatches { candidates: Some(n), broad: n >= broad_from, total }))
    }

    /// How many licenses a part holds and, when `by_product`, how many of each product that has any.
    async fn count_part(
        &self,
        environment: &str,
        part: &LicensePart,
        by_product: bool,
        broad: bool,
    ) -> Result<(i64, Option<HashMap<String, i64>>)> {
        let kept = self.backend.customer_license_count();
        if let Some(kept) = kept.filter(|_| !by_product && !part.customer_totals.is_empty()) {
            let mut statement = Sql::default();
            let env = statement.arg(environment);
            let list = in_list(&mut statement, &part.customer_totals);
            statement.push(&format!("{kept} WHERE environment = {env} AND customer_id IN ({list})"));
            let row = statement.query().fetch_one(&self.reader).await?;
            return Ok((rows::int(&row, "n")?, None));
        }
        let (from, filter) = match (broad, &part.matched) {
            (true, _) => ("licenses l".to_owned(), part.compared()),
            // Each matched id is a license of the environment already (31,000 keys of a million:
            // 0.2 s, against 0.35–0.7 s reading each one's row).
            (false, Some(matched)) if part.matched_alone && !by_product => {
                (format!("({matched}) m"), part.filter.reworded(String::new()))
            }
            (false, _) => part.joined("licenses l"),
        };
        if !by_product {
            let row =
                filter.prefixed(&format!("SELECT COUNT(*) AS n FROM {from} ")).query().fetch_one(&self.reader).await?;
            return Ok((rows::int(&row, "n")?, None));
        }
        let mut statement = filter.prefixed(&format!("SELECT l.product_id AS product_id, COUNT(*) AS n FROM {from} "));
        statement.push(" GROUP BY l.product_id");
        let mut total = 0;
        let mut per_product = HashMap::new();
        for row in statement.query().persistent(false).fetch_all(&self.reader).await? {
            let n = rows::int(&row, "n")?;
            total += n;
            per_product.insert(sqlx::Row::try_get::<String, _>(&row, "product_id")?, n);
        }
        Ok((total, Some(per_product)))
    }

    /// The environment's products grouped by lower-cased name, in the list's order: the product
    /// sort is by that name, then by license id, so each group is walked along the product index.
    async fn product_groups(&self, environment: &str, order: Order) -> Result<Vec<(String, Vec<String>)>> {
        let rows = sqlx::query("SELECT id, lower(name) AS sort_name FROM products WHERE environment = $1")
            .bind(environment)
            .fetch_all(&self.reader)
            .await?;
        let mut products = rows
            .iter()
            .map(|row| Ok((sqlx::Row::try_get::<String, _>(row, "sort_name")?, sqlx::Row::try_get(row, "id")?)))
            .collect::<Result<Vec<(String, String)>>>()?;
        // Byte order, as the list compares names.
        products.sort_unstable();
        let mut groups: Vec<(String, Vec<String>)> = Vec::new();
        for (name, id) in products {
            match groups.last_mut() {
                Some((last, ids)) if *last == name => ids.push(id),
                _ => groups.push((name, vec![id])),
            }
        }
        if order == Order::Desc {
            groups.reverse();
        }
        Ok(groups)
    }

    /// Takes the license's row lock with a write that changes nothing: concurrent changes of one
    /// license wait here, on every node. False when no such license exists.
    async fn lock_license(tx: &mut Transaction<'static, Any>, environment: &str, id_or_key: &str) -> Result<bool> {
        let locked =
            sqlx::query("UPDATE licenses SET updated_at = updated_at WHERE environment = $1 AND (id = $2 OR key = $2)")
                .bind(environment)
                .bind(id_or_key)
                .execute(&mut **tx)
                .await?;
        Ok(locked.rows_affected() > 0)
    }

    pub(crate) async fn apply_license_change(
        &self,
        environment: &str,
        id_or_key: &str,
        edit: LicenseEdit,
        audit: &Audit,
    ) -> Result<LicenseChanged> {
        let mut tx = self.begin_write().await?;
        if !Self::lock_license(&mut tx, environment, id_or_key).await? {
            return Err(StoreError::NotFound);
        }
        let Some(before) = self.read_license(&mut tx, environment, id_or_key).await? else {
            return Err(StoreError::NotFound);
        };
        let activations = self.read_activations(&mut tx, &before.id).await?;
        let change = match edit(&before, &activations) {
            Ok(change) => change,
            Err(refusal) => {
                tx.rollback().await?;
                return Err(StoreError::Refused(refusal));
            }
        };
        let id = before.id.as_str();
        match &change.activation {
            ActivationChange::None => {}
            ActivationChange::Add(activation) => {
                let activation = Activation { license_id: id.to_owned(), ..activation.clone() };
                insert_many(
                    &mut tx,
                    self.backend,
                    "activations",
                    &ACTIVATION_INSERT_COLUMNS,
                    &[activation],
                    activation_args,
                )
                .await
                .map_err(|e| {
                    if is_unique_violation(&e) {
                        StoreError::Conflict {
                            code: "ALREADY_ACTIVATED",
                            message: "this device or site is activated on the license already".into(),
                        }
                    } else {
                        e
                    }
                })?;
            }
            ActivationChange::Touch { id: activation_id, at } => {
                let touched = sqlx::query("UPDATE activations SET last_seen_at = $1 WHERE id = $2 AND license_id = $3")
                    .bind(micros(*at))
                    .bind(activation_id.as_str())
                    .bind(id)
                    .execute(&mut *tx)
                    .await?;
                if touched.rows_affected() == 0 {
                    return Err(mismatched_activation());
                }
            }
            ActivationChange::Remove { id: activation_id } => {
                let removed = sqlx::query("DELETE FROM activations WHERE id = $1 AND license_id = $2")
                    .bind(activation_id.as_str())
                    .bind(id)
                    .execute(&mut *tx)
                    .await?;
                if removed.rows_affected() == 0 {
                    return Err(mismatched_activation());
                }
            }
            ActivationChange::RemoveAll => {
                sqlx::query("DELETE FROM activations WHERE license_id = $1").bind(id).execute(&mut *tx).await?;
            }
        }
        let new = &change.license;
        sqlx::query(
            "UPDATE licenses SET customer_id = $1, status = $2, activation_limit = $3, expires_at = $4, \
             feature_flags = $5, metadata = $6, suspension_reason = $7, ever_activated = $8, updated_at = $9, \
             assigned_at = $10, first_activated_at = $11, \
             activation_count = (SELECT COUNT(*) FROM activations WHERE license_id = $12) \
             WHERE id = $12",
        )
        .bind(new.customer_id.clone())
        .bind(new.status.as_str())
        .bind(new.activation_limit.get())
        .bind(opt_micros(new.expires_at))
        .bind(json(&new.feature_flags)?)
        .bind(json(&new.metadata)?)
        .bind(new.suspension_reason.clone())
        .bind(i64::from(new.ever_activated))
        .bind(micros(new.updated_at))
        .bind(opt_micros(new.assigned_at))
        .bind(opt_micros(new.first_activated_at))
        .bind(id)
        .execute(&mut *tx)
        .await
        .map_err(|e| {
            let e = StoreError::from(e);
            if is_foreign_key_violation(&e) {
                missing_reference("customer")
            } else {
                e
            }
        })?;
        let after = self.read_license(&mut tx, environment, id).await?.ok_or(StoreError::NotFound)?;
        let activations = self.read_activations(&mut tx, id).await?;
        let target = Target { environment, kind: "license", id };
        audit::record(&mut tx, audit, target, Some(snapshot(&before)?), Some(snapshot(&after)?), now()).await?;
        self.announce(&mut tx, &format!("{environment}:{}", before.key)).await?;
        tx.commit().await?;
        Ok(LicenseChanged { before, after, activations, activation: change.activation })
    }

    pub(crate) async fn remove_license(
        &self,
        environment: &str,
        id_or_key: &str,
        check: LicenseDeleteCheck,
        audit: &Audit,
    ) -> Result<License> {
        let mut tx = self.begin_write().await?;
        if !Self::lock_license(&mut tx, environment, id_or_key).await? {
            return Err(StoreError::NotFound);
        }
        let Some(license) = self.read_license(&mut tx, environment, id_or_key).await? else {
            return Err(StoreError::NotFound);
        };
        if let Err(refusal) = check(&license) {
            tx.rollback().await?;
            return Err(StoreError::Refused(refusal));
        }
        for statement in [
            "DELETE FROM activations WHERE license_id = $1",
            "DELETE FROM validations WHERE license_id = $1",
            "DELETE FROM licenses WHERE id = $1",
        ] {
            sqlx::query(statement).bind(license.id.as_str()).execute(&mut *tx).await?;
        }
        let target = Target { environment, kind: "license", id: &license.id };
        audit::record(&mut tx, audit, target, Some(snapshot(&license)?), None, now()).await?;
        self.announce(&mut tx, &format!("{environment}:{}", license.key)).await?;
        tx.commit().await?;
        Ok(license)
    }

    pub(crate) async fn list_activations(&self, environment: &str, license_id: &str) -> Result<Vec<Activation>> {
        let rows = sqlx::query(&format!(
            "SELECT {} FROM activations a JOIN licenses l ON l.id = a.license_id \
             WHERE l.environment = $1 AND a.license_id = $2 ORDER BY a.created_at, a.id",
            rows::activation_columns("a.", "")
        ))
        .bind(environment)
        .bind(license_id)
        .fetch_all(&self.reader)
        .await?;
        rows.iter().map(|row| rows::activation(row, "")).collect()
    }

    pub(crate) async fn find_activation(&self, environment: &str, activation_id: &str) -> Result<Option<Activation>> {
        let row = sqlx::query(&format!(
            "SELECT {} FROM activations a JOIN licenses l ON l.id = a.license_id \
             WHERE l.environment = $1 AND a.id = $2",
            rows::activation_columns("a.", "")
        ))
        .bind(environment)
        .bind(activation_id)
        .fetch_optional(&self.reader)
        .await?;
        row.as_ref().map(|row| rows::activation(row, "")).transpose()
    }

    /// Counts and history of validations answered from memory. Leaves `updated_at` and the
    /// audit log alone; rows of a license deleted meanwhile are dropped.
    pub(crate) async fn write_validations(&self, batch: &[ValidationRecord]) -> Result<()> {
        if batch.is_empty() {
            return Ok(());
        }
        // The history is what matters here; a log left to grow is only disk.
        if self.backend == Backend::Sqlite {
            if let Err(err) = self.restart_log().await {
                tracing::warn!(error = %err, "could not start SQLite's write-ahead log over");
            }
        }
        if let Some(journal) = &self.journal {
            return self.journal_validations(journal, batch).await;
        }
        let per_license = per_license(batch.iter().map(|r| (r.license_id.as_str(), r.environment.as_str(), 1, r.at)));
        let mut tx = self.begin_write().await?;
        let counted = self.add_validation_counts(&mut tx, &per_license).await?;
        // A license deleted since the validation takes its history with it.
        let kept: Vec<&ValidationRecord> = batch.iter().filter(|r| counted.contains(&r.license_id)).collect();
        insert_many(&mut tx, self.backend, "validations", &VALIDATION_INSERT_COLUMNS, &kept, |r| validation_args(r))
            .await?;
        tx.commit().await?;
        Ok(())
    }

    /// SQLite: copies the write-ahead log into the database and starts it over, waiting a moment
    /// at most for readers to leave it. Under reads that never stop, the checkpoint SQLite makes
    /// after each commit always finds readers of before it, so the log would only grow (to a
    /// gigabyte in a minute and a half of cold validations at a million licenses).
    async fn restart_log(&self) -> Result<()> {
        let mut conn = self.writer.acquire().await?;
        sqlx::query("PRAGMA busy_timeout = 50").execute(&mut *conn).await?;
        // Answers `busy = 1`, not an error, when readers stayed: the next batch tries again.
        let restarted = sqlx::query("PRAGMA wal_checkpoint(RESTART)").execute(&mut *conn).await;
        sqlx::query(SQLITE_BUSY_TIMEOUT).execute(&mut *conn).await?;
        restarted?;
        Ok(())
    }

    /// Validation counts without history rows.
    pub(crate) async fn write_validation_counts(&self, counts: &[ValidationCount]) -> Result<()> {
        if counts.is_empty() {
            return Ok(());
        }
        let per_license =
            per_license(counts.iter().map(|c| (c.license_id.as_str(), c.environment.as_str(), c.count, c.last_at)));
        let mut tx = self.begin_write().await?;
        self.add_validation_counts(&mut tx, &per_license).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Adds each license's count and latest time; answers the ids of the licenses that exist.
    async fn add_validation_counts(
        &self,
        tx: &mut Transaction<'static, Any>,
        per_license: &[LicenseCount<'_>],
    ) -> Result<HashSet<String>> {
        let mut counted = HashSet::new();
        // One statement a chunk, not one a license: a busy second touches thousands of licenses.
        for chunk in per_license.chunks(COUNTS_PER_STATEMENT) {
            let mut sql = Sql::default();
            let mut values = Vec::with_capacity(chunk.len());
            for &((license_id, environment), (count, latest)) in chunk {
                let b = self.backend;
                let (id, env) = (sql.next_arg(b, license_id), sql.next_arg(b, environment));
                let (n, at) = (sql.next_arg(b, count), sql.next_arg(b, latest));
                values.push(format!("({id}, {env}, {n}, {at})"));
            }
            sql.push(&format!(
                "WITH v (license, env, n, latest) AS (VALUES {}) \
                 UPDATE licenses SET validation_count = validation_count + v.n, \
                 last_validated_at = CASE WHEN last_validated_at IS NULL OR last_validated_at < v.latest \
                 THEN v.latest ELSE last_validated_at END \
                 FROM v WHERE licenses.id = v.license AND licenses.environment = v.env RETURNING id",
                values.join(", ")
            ));
            for row in sql.query().persistent(false).fetch_all(&mut **tx).await? {
                counted.insert(sqlx::Row::try_get::<String, _>(&row, "id")?);
            }
        }
        Ok(counted)
    }

    pub(crate) async fn list_validations(
        &self,
        environment: &str,
        license_id: &str,
        query: &ListQuery,
    ) -> Result<Page<ValidationRecord>> {
        // The journal may hold rows of a license deleted since: they are not its history.
        if self.journal.is_some() {
            let exists = sqlx::query("SELECT 1 AS one FROM licenses WHERE id = $1 AND environment = $2")
                .bind(license_id)
                .bind(environment)
                .fetch_optional(&self.reader)
                .await?;
            if exists.is_none() {
                return Ok(Page { data: Vec::new(), total: 0, next_cursor: None });
            }
        }
        let mut filter = Sql::new("WHERE environment = ");
        filter.bind(environment).push(" AND license_id = ").bind(license_id);
        Listing {
            pool: &self.reader,
            columns: "environment, license_id, validated_at, code, fingerprint, ip",
            from: self.history_from(),
            count_from: None,
            filter,
            keyset: Keyset {
                tag: "validations",
                sort: "validated_at",
                sort_kind: Kind::Int,
                tie: "seq",
                tie_kind: Kind::Int,
                order: Order::Desc,
            },
            limit: query.limit,
            cursor: query.cursor.as_deref(),
            decode: rows::validation,
        }
        .fetch()
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing;
    use crate::Store;
    use sqlx::Connection;

    /// A bulk batch's PostgreSQL settings end with its transaction: the pooled connections that
    /// go on to serve requests keep the server's own.
    #[tokio::test]
    async fn bulk_settings_end_with_the_batch() {
        let Some((store, database)) = testing::fresh_postgres().await else { return };
        let product = testing::product("production", "Acme Studio");
        store.create_product(&product, &testing::audit("product.created")).await.unwrap();
        let generator = testing::generator(&product);
        store.create_generator(&generator, &testing::audit("generator.created")).await.unwrap();
        let licenses: Vec<License> =
            (0..BULK_FROM).map(|i| testing::license(&generator, &product, &format!("BULK-{i:06}"))).collect();
        store.add_licenses(&licenses, &testing::audit("license.created")).await.unwrap();

        let shown = "SELECT current_setting('work_mem') || ' ' || current_setting('gin_pending_list_limit')";
        let mut fresh = sqlx::PgConnection::connect(&database.url).await.unwrap();
        let server: String = sqlx::query_scalar(shown).fetch_one(&mut fresh).await.unwrap();
        // Every connection the pool holds, the batch's among them, at once.
        let mut held = Vec::new();
        for _ in 0..store.writer.size() {
            held.push(store.writer.acquire().await.unwrap());
        }
        for conn in &mut held {
            let setting: String = sqlx::query_scalar(shown).fetch_one(&mut **conn).await.unwrap();
            assert_eq!(setting, server);
        }
        drop(held);
        assert!(store.license("production", "BULK-000000").await.unwrap().is_some(), "the batch was written");
    }
}

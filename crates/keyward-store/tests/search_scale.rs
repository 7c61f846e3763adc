//! How fast license lists answer at scale: search, filters, sorts and a deep page over N licenses
//! in one environment, on each backend. A measurement, not part of the normal run:
//! `cargo test -p keyward-store --release --test search_scale -- --ignored --nocapture`.
//!
//! - `KEYWARD_SEARCH_COUNT`: licenses (1,000,000 by default); 1 in 5 belongs to one of count/20
//!   customers (50,000 at a million) whose emails are at 200 domains; 3 products.
//! - `KEYWARD_SEARCH_QUERIES`: timed queries per row (50 by default); p50 and p95 are reported.
//! - `KEYWARD_SEARCH_KEEP=1`: keep the filled databases and print their URLs.
//! - `KEYWARD_SEARCH_SQLITE_URL`, `KEYWARD_SEARCH_POSTGRES_URL`: measure a database kept before
//!   (same count) instead of filling a new one; opening it runs any newer migration, timed.
//! - `KEYWARD_SEARCH_BACKENDS` (`sqlite,postgres` by default) and `KEYWARD_SEARCH_CASES` (words
//!   any of which a row's name must contain; all rows by default) narrow the run.
//!
//! The data is drawn from a fixed seed, so every answer is checked against the same data in memory.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use chrono::{DateTime, Duration, Utc};
use futures::StreamExt;
use keyward_core::values::ActivationLimit;
use keyward_core::LicenseStatus;
use keyward_store::testing::{self, audit};
use keyward_store::{Customer, Generator, License, LicenseQuery, LicenseSort, Order, Product, SqlStore, Store};
use sqlx::{Connection, Executor, PgConnection};
use std::collections::HashSet;
use std::time::Instant;

const ENV: &str = "production";
const DOMAINS: usize = 200;
const BATCH: usize = 10_000;
const PAGE: u32 = 50;
const PRODUCT_NAMES: [&str; 3] = ["Acme Studio", "Beta Tool", "Gamma Suite"];
const FIRST: [&str; 16] = [
    "ana", "bo", "carla", "dev", "eli", "farah", "gus", "hana", "ivo", "jun", "kai", "lea", "max", "nia", "oto", "pia",
];
const LAST: [&str; 16] = [
    "lima", "berg", "costa", "dahl", "evans", "fox", "gray", "holm", "ito", "jensen", "kim", "lund", "moss", "nagy",
    "ortiz", "park",
];
const ORGS: [&str; 8] = ["northwind", "contoso", "initech", "globex", "umbrella", "hooli", "acmecorp", "vandelay"];
/// Statuses of an assigned license, weighted as a real installation might hold them.
const ASSIGNED: [LicenseStatus; 8] = [
    LicenseStatus::Assigned,
    LicenseStatus::Active,
    LicenseStatus::Active,
    LicenseStatus::Active,
    LicenseStatus::Inactive,
    LicenseStatus::Suspended,
    LicenseStatus::Expired,
    LicenseStatus::Revoked,
];

/// splitmix64: a fixed, dependency-free stream of numbers, so a kept database can be measured again.
struct Draw(u64);

impl Draw {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    fn hex(&mut self, digits: usize) -> String {
        let mut s = String::with_capacity(digits);
        while s.len() < digits {
            s.push_str(&format!("{:016x}", self.next()));
        }
        s.truncate(digits);
        s
    }
}

fn domain(d: usize) -> String {
    format!("{}-{d}.com", ORGS[d % ORGS.len()])
}

/// A customer's name and email, from its number alone.
fn customer_identity(i: usize) -> (String, String) {
    let (first, last) = (FIRST[i % FIRST.len()], LAST[(i / FIRST.len()) % LAST.len()]);
    let name = format!("{}{} {}{}", first[..1].to_uppercase(), &first[1..], last[..1].to_uppercase(), &last[1..]);
    (name, format!("{first}.{last}{i}@{}", domain((i * 7919) % DOMAINS)))
}

/// What the checks need of a license, small enough to hold a million.
struct Row {
    id: String,
    key: String,
    product: usize,
    customer: Option<usize>,
    status: LicenseStatus,
    limit: i64,
    expires_at: Option<i64>,
    created_at: i64,
}

struct Data {
    products: Vec<Product>,
    generators: Vec<Generator>,
    customers: Vec<Customer>,
    rows: Vec<Row>,
}

fn data(count: usize) -> Data {
    let base = DateTime::from_timestamp(1_700_000_000, 0).unwrap();
    let mut draw = Draw(0x006b_6579_7761_7264);
    let mut products = Vec::new();
    let mut generators = Vec::new();
    for name in PRODUCT_NAMES {
        let mut product = testing::product(ENV, name);
        product.id = format!("prod_{}", draw.hex(32));
        let mut generator = testing::generator(&product);
        generator.id = format!("gen_{}", draw.hex(32));
        products.push(product);
        generators.push(generator);
    }
    let customers: Vec<Customer> = (0..(count / 20).max(1))
        .map(|i| {
            let (name, email) = customer_identity(i);
            let mut customer = testing::customer(ENV, &name, &email);
            customer.id = format!("cus_{}", draw.hex(32));
            customer
        })
        .collect();
    let rows = (0..count)
        .map(|i| {
            let id = format!("lic_{}", draw.hex(32));
            let h = draw.hex(32);
            let key = format!("{}-{}-4{}-a{}-{}", &h[..8], &h[8..12], &h[13..16], &h[17..20], &h[20..32]);
            let customer = (draw.below(5) == 0).then(|| draw.below(customers.len()));
            let status =
                if customer.is_some() { ASSIGNED[draw.below(ASSIGNED.len())] } else { LicenseStatus::Available };
            let expires_at = (draw.below(4) != 0)
                .then(|| (base + Duration::days(draw.below(3 * 365) as i64 + 400)).timestamp_micros());
            Row {
                id,
                key,
                product: draw.below(PRODUCT_NAMES.len()),
                customer,
                status,
                limit: [1, 1, 3, 5, 10, -1][draw.below(6)],
                expires_at,
                created_at: (base + Duration::seconds(i as i64 * 20)).timestamp_micros(),
            }
        })
        .collect();
    Data { products, generators, customers, rows }
}

fn license(data: &Data, row: &Row) -> License {
    let mut license = testing::license(&data.generators[row.product], &data.products[row.product], &row.key);
    license.id = row.id.clone();
    if let Some(c) = row.customer {
        license = testing::assigned(license, &data.customers[c]);
    }
    license.status = row.status;
    license.activation_limit = ActivationLimit::parse(row.limit).unwrap();
    license.expires_at = row.expires_at.map(|us| DateTime::from_timestamp_micros(us).unwrap());
    license.created_at = DateTime::from_timestamp_micros(row.created_at).unwrap();
    license.updated_at = license.created_at;
    license.assigned_at = row.customer.map(|_| license.created_at);
    license
}

async fn fill(store: &SqlStore, data: &Data) {
    let started = Instant::now();
    for (product, generator) in data.products.iter().zip(&data.generators) {
        store.create_product(product, &audit("product.created")).await.unwrap();
        store.create_generator(generator, &audit("generator.created")).await.unwrap();
    }
    futures::stream::iter(&data.customers)
        .map(|customer| async move { store.create_customer(customer, &audit("customer.created")).await.unwrap() })
        .buffer_unordered(8)
        .collect::<Vec<()>>()
        .await;
    eprintln!("  {} customers in {:.1} s", data.customers.len(), started.elapsed().as_secs_f64());
    let started = Instant::now();
    for chunk in data.rows.chunks(BATCH) {
        let licenses: Vec<License> = chunk.iter().map(|row| license(data, row)).collect();
        store.insert_licenses(&licenses, &audit("license.generated")).await.unwrap();
    }
    eprintln!("  {} licenses in {:.1} s", data.rows.len(), started.elapsed().as_secs_f64());
}

/// One measured row: a query per repetition, and what it must answer.
struct Case<'a> {
    name: &'static str,
    query: Box<dyn Fn(usize) -> LicenseQuery + 'a>,
}

fn base_query(now: DateTime<Utc>) -> LicenseQuery {
    LicenseQuery {
        q: None,
        product: None,
        status: None,
        customer: None,
        sort: LicenseSort::CreatedAt,
        order: Order::Desc,
        limit: PAGE,
        cursor: None,
        expired_before: now,
    }
}

fn sort_tag(sort: LicenseSort, order: Order) -> String {
    let name = match sort {
        LicenseSort::Key => "key",
        LicenseSort::Product => "product",
        LicenseSort::Customer => "customer",
        LicenseSort::Status => "status",
        LicenseSort::ActivationLimit => "limit",
        LicenseSort::ExpiresAt => "expires",
        LicenseSort::CreatedAt => "created",
    };
    format!("licenses.{name}.{}", if order == Order::Asc { "asc" } else { "desc" })
}

/// What a license sorts by, as the store orders it, with the tie-breaker last.
fn sort_value(data: &Data, row: &Row, sort: LicenseSort) -> (i64, String, String) {
    let tie = if sort == LicenseSort::Key { row.key.clone() } else { row.id.clone() };
    match sort {
        LicenseSort::Key => (0, row.key.clone(), tie),
        LicenseSort::Product => (0, PRODUCT_NAMES[row.product].to_ascii_lowercase(), tie),
        LicenseSort::Customer => (0, row.customer.map(|c| data.customers[c].email.clone()).unwrap_or_default(), tie),
        LicenseSort::Status => {
            (LicenseStatus::ALL.iter().position(|s| *s == row.status).unwrap() as i64, "".into(), tie)
        }
        LicenseSort::ActivationLimit => (if row.limit < 0 { i64::MAX } else { row.limit }, "".into(), tie),
        LicenseSort::ExpiresAt => (row.expires_at.unwrap_or(i64::MAX), "".into(), tie),
        LicenseSort::CreatedAt => (row.created_at, "".into(), tie),
    }
}

/// The cursor the store gives out after a license with `value` (its own format, checked below
/// against one the store gave out).
fn cursor_after(sort: LicenseSort, order: Order, value: &(i64, String, String)) -> String {
    let sort_part = match sort {
        LicenseSort::Key | LicenseSort::Product | LicenseSort::Customer => serde_json::Value::from(value.1.clone()),
        _ => serde_json::Value::from(value.0),
    };
    URL_SAFE_NO_PAD.encode(serde_json::json!([sort_tag(sort, order), sort_part, value.2]).to_string())
}

fn matches(data: &Data, row: &Row, query: &LicenseQuery, now: DateTime<Utc>) -> bool {
    if query.product.as_ref().is_some_and(|p| *p != data.products[row.product].id) {
        return false;
    }
    if query.customer.as_ref().is_some_and(|c| row.customer.map(|i| &data.customers[i].id) != Some(c)) {
        return false;
    }
    if let Some(status) = query.status {
        let expires = row.expires_at.map(|us| DateTime::from_timestamp_micros(us).unwrap());
        if keyward_core::status::effective_status(row.status, expires, Duration::zero(), now).0 != status {
            return false;
        }
    }
    if let Some(q) = &query.q {
        let q = q.trim().to_ascii_lowercase();
        let customer = row.customer.map(|c| &data.customers[c]);
        return row.key.to_ascii_lowercase().contains(&q)
            || PRODUCT_NAMES[row.product].to_ascii_lowercase().contains(&q)
            || customer.is_some_and(|c| {
                c.email.to_ascii_lowercase().contains(&q) || c.name.to_ascii_lowercase().contains(&q)
            });
    }
    true
}

/// The page and total the store must answer, worked out in memory.
fn expected(data: &Data, query: &LicenseQuery, now: DateTime<Utc>) -> (Vec<String>, i64) {
    let after = query.cursor.as_ref().map(|c| {
        let text = String::from_utf8(URL_SAFE_NO_PAD.decode(c).unwrap()).unwrap();
        let parts: Vec<serde_json::Value> = serde_json::from_str(&text).unwrap();
        let tie = parts[2].as_str().unwrap().to_owned();
        match &parts[1] {
            serde_json::Value::String(s) => (0, s.clone(), tie),
            other => (other.as_i64().unwrap(), String::new(), tie),
        }
    });
    let mut total = 0;
    let mut page: Vec<((i64, String, String), &str)> = Vec::new();
    for row in &data.rows {
        if !matches(data, row, query, now) {
            continue;
        }
        total += 1;
        let value = sort_value(data, row, query.sort);
        let beyond = |a: &(i64, String, String), b: &(i64, String, String)| match query.order {
            Order::Asc => a > b,
            Order::Desc => a < b,
        };
        if after.as_ref().is_some_and(|after| !beyond(&value, after)) {
            continue;
        }
        page.push((value, &row.id));
        if page.len() > 4 * PAGE as usize {
            sort_page(&mut page, query.order);
            page.truncate(PAGE as usize);
        }
    }
    sort_page(&mut page, query.order);
    page.truncate(PAGE as usize);
    (page.into_iter().map(|(_, id)| id.to_owned()).collect(), total)
}

fn sort_page(page: &mut [((i64, String, String), &str)], order: Order) {
    page.sort_by(|a, b| if order == Order::Asc { a.0.cmp(&b.0) } else { b.0.cmp(&a.0) });
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    sorted[((sorted.len() as f64 * p).ceil() as usize).clamp(1, sorted.len()) - 1]
}

async fn measure(store: &SqlStore, data: &Data, backend: &str, reps: usize) {
    let now = Utc::now();
    let base = || base_query(now);
    let rows = &data.rows;
    let pick = |j: usize, salt: u64| Draw(j as u64 * 1_000_003 + salt).below(rows.len());
    let q = |text: String| LicenseQuery { q: Some(text), ..base() };
    let sorted = |sort, order| LicenseQuery { sort, order, ..base() };
    let deep = |sort: LicenseSort, order: Order, j: usize| {
        let row = &rows[pick(j, 11)];
        LicenseQuery { cursor: Some(cursor_after(sort, order, &sort_value(data, row, sort))), ..sorted(sort, order) }
    };
    let cases = vec![
        Case {
            name: "q: key substring (6 chars)",
            query: Box::new(|j| {
                let key = &rows[pick(j, 1)].key;
                let at = Draw(j as u64).below(key.len() - 6);
                q(key[at..at + 6].to_owned())
            }),
        },
        Case { name: "q: whole key", query: Box::new(|j| q(rows[pick(j, 2)].key.to_uppercase())) },
        Case {
            name: "q: customer email",
            query: Box::new(|j| q(data.customers[Draw(j as u64).below(data.customers.len())].email.clone())),
        },
        Case {
            name: "q: email domain (@org-N.com)",
            query: Box::new(|j| q(format!("@{}", domain(Draw(j as u64 + 5).below(DOMAINS))))),
        },
        Case {
            name: "q: customer name",
            query: Box::new(|j| q(data.customers[Draw(j as u64 + 9).below(data.customers.len())].name.clone())),
        },
        Case { name: "q: product name", query: Box::new(|j| q(PRODUCT_NAMES[j % PRODUCT_NAMES.len()].to_lowercase())) },
        Case { name: "q: 2 characters", query: Box::new(|j| q(rows[pick(j, 3)].key[..2].to_owned())) },
        Case { name: "q: matches nothing", query: Box::new(|j| q(format!("zz{j}qq"))) },
        Case {
            name: "filter: status (each of 7)",
            query: Box::new(|j| LicenseQuery { status: Some(LicenseStatus::ALL[j % 7]), ..base() }),
        },
        Case {
            name: "filter: status available",
            query: Box::new(|_| LicenseQuery { status: Some(LicenseStatus::Available), ..base() }),
        },
        Case {
            name: "filter: status expired (effective)",
            query: Box::new(|_| LicenseQuery { status: Some(LicenseStatus::Expired), ..base() }),
        },
        Case {
            name: "filter: status suspended",
            query: Box::new(|_| LicenseQuery { status: Some(LicenseStatus::Suspended), ..base() }),
        },
        Case {
            name: "filter: product",
            query: Box::new(|j| LicenseQuery { product: Some(data.products[j % 3].id.clone()), ..base() }),
        },
        Case {
            name: "filter: customer",
            query: Box::new(|j| LicenseQuery {
                customer: Some(data.customers[Draw(j as u64).below(data.customers.len())].id.clone()),
                ..base()
            }),
        },
        Case {
            name: "filter: product + status active",
            query: Box::new(|j| LicenseQuery {
                product: Some(data.products[j % 3].id.clone()),
                status: Some(LicenseStatus::Active),
                ..base()
            }),
        },
        Case { name: "unfiltered, first page (created_at desc)", query: Box::new(|_| base()) },
        Case {
            name: "unfiltered, deep page (created_at desc)",
            query: Box::new(|j| deep(LicenseSort::CreatedAt, Order::Desc, j)),
        },
        Case { name: "sort key asc", query: Box::new(|_| sorted(LicenseSort::Key, Order::Asc)) },
        Case { name: "sort key, deep page", query: Box::new(|j| deep(LicenseSort::Key, Order::Asc, j)) },
        Case { name: "sort expires_at asc", query: Box::new(|_| sorted(LicenseSort::ExpiresAt, Order::Asc)) },
        Case { name: "sort expires_at desc", query: Box::new(|_| sorted(LicenseSort::ExpiresAt, Order::Desc)) },
        Case {
            name: "sort expires_at asc, deep page",
            query: Box::new(|j| deep(LicenseSort::ExpiresAt, Order::Asc, j)),
        },
        Case { name: "sort created_at asc", query: Box::new(|_| sorted(LicenseSort::CreatedAt, Order::Asc)) },
        Case {
            name: "sort activation_limit desc",
            query: Box::new(|_| sorted(LicenseSort::ActivationLimit, Order::Desc)),
        },
        Case {
            name: "sort activation_limit, deep page",
            query: Box::new(|j| deep(LicenseSort::ActivationLimit, Order::Asc, j)),
        },
        Case { name: "sort status asc", query: Box::new(|_| sorted(LicenseSort::Status, Order::Asc)) },
        Case { name: "sort status, deep page", query: Box::new(|j| deep(LicenseSort::Status, Order::Desc, j)) },
        Case { name: "sort product asc", query: Box::new(|_| sorted(LicenseSort::Product, Order::Asc)) },
        Case { name: "sort product, deep page", query: Box::new(|j| deep(LicenseSort::Product, Order::Asc, j)) },
        Case { name: "sort customer asc", query: Box::new(|_| sorted(LicenseSort::Customer, Order::Asc)) },
        Case { name: "sort customer desc", query: Box::new(|_| sorted(LicenseSort::Customer, Order::Desc)) },
        Case { name: "sort customer, deep page", query: Box::new(|j| deep(LicenseSort::Customer, Order::Asc, j)) },
        Case {
            name: "q: email domain, sort expires_at",
            query: Box::new(|j| LicenseQuery {
                sort: LicenseSort::ExpiresAt,
                order: Order::Asc,
                ..q(format!("@{}", domain(Draw(j as u64 + 7).below(DOMAINS))))
            }),
        },
    ];

    // The cursors built here are the store's own: check one it gave out.
    let first = store.licenses(ENV, &sorted(LicenseSort::ExpiresAt, Order::Asc)).await.unwrap();
    let last = first.data.last().unwrap();
    let last_row = rows.iter().find(|r| r.id == last.id).unwrap();
    assert_eq!(
        first.next_cursor.as_deref(),
        Some(cursor_after(LicenseSort::ExpiresAt, Order::Asc, &sort_value(data, last_row, LicenseSort::ExpiresAt)))
            .as_deref(),
        "the store's cursor format changed: update cursor_after"
    );

    eprintln!("{backend}: {} licenses, {reps} queries a row, page of {PAGE}", rows.len());
    eprintln!("  {:<42} {:>9} {:>9} {:>9}  {:>8}", "query", "p50 ms", "p95 ms", "max ms", "total");
    let wanted: Vec<String> = std::env::var("KEYWARD_SEARCH_CASES")
        .map(|v| v.split(',').map(|w| w.trim().to_owned()).filter(|w| !w.is_empty()).collect())
        .unwrap_or_default();
    for case in cases.iter().filter(|c| wanted.is_empty() || wanted.iter().any(|w| c.name.contains(w.as_str()))) {
        let mut times = Vec::with_capacity(reps);
        let mut totals = HashSet::new();
        for j in 0..reps {
            let query = (case.query)(j);
            let started = Instant::now();
            let page = store.licenses(ENV, &query).await.unwrap();
            times.push(started.elapsed().as_secs_f64() * 1000.0);
            totals.insert(page.total);
            // Every answer of the first few is checked whole against the data in memory.
            if j < 3 {
                let (ids, total) = expected(data, &query, now);
                let got: Vec<String> = page.data.iter().map(|l| l.id.clone()).collect();
                assert_eq!(page.total, total, "{backend} {}: total of {query:?}", case.name);
                assert_eq!(got, ids, "{backend} {}: page of {query:?}", case.name);
            }
        }
        times.sort_by(f64::total_cmp);
        let total = if totals.len() == 1 { format!("{}", totals.iter().next().unwrap()) } else { "varies".into() };
        eprintln!(
            "  {:<42} {:>9.1} {:>9.1} {:>9.1}  {:>8}",
            case.name,
            percentile(&times, 0.5),
            percentile(&times, 0.95),
            times[times.len() - 1],
            total
        );
    }
}

fn env_number(name: &str, default: usize) -> usize {
    std::env::var(name).ok().and_then(|n| n.replace('_', "").parse().ok()).unwrap_or(default)
}

fn keep() -> bool {
    std::env::var("KEYWARD_SEARCH_KEEP").is_ok_and(|v| v.trim() == "1")
}

/// Opens a kept database, timing the migrations it may need.
async fn open_kept(url: &str) -> SqlStore {
    let started = Instant::now();
    let store = SqlStore::open(url).await.unwrap();
    eprintln!("  opened (with any new migrations) in {:.1} s", started.elapsed().as_secs_f64());
    store
}

#[tokio::test]
#[ignore = "a measurement; run it on purpose"]
async fn search_at_scale() {
    let count = env_number("KEYWARD_SEARCH_COUNT", 1_000_000);
    let reps = env_number("KEYWARD_SEARCH_QUERIES", 50).max(1);
    let started = Instant::now();
    let data = data(count);
    eprintln!("drew {count} licenses in {:.1} s", started.elapsed().as_secs_f64());

    let backends = std::env::var("KEYWARD_SEARCH_BACKENDS").unwrap_or_else(|_| "sqlite,postgres".into());
    if backends.contains("sqlite") {
        sqlite(&data, reps).await;
    }
    if backends.contains("postgres") {
        postgres(&data, reps).await;
    }
}

async fn sqlite(data: &Data, reps: usize) {
    eprintln!("sqlite:");
    let (store, dir) = match std::env::var("KEYWARD_SEARCH_SQLITE_URL") {
        Ok(url) => (open_kept(&url).await, None),
        Err(_) => {
            let (store, dir) = testing::fresh_sqlite().await;
            fill(&store, data).await;
            if keep() {
                eprintln!("  kept: sqlite://{}", dir.path().join("keyward.db").display());
            }
            (store, Some(dir))
        }
    };
    measure(&store, data, "sqlite", reps).await;
    store.close().await;
    if let Some(dir) = dir.filter(|_| keep()) {
        let _ = dir.keep();
    }
}

async fn postgres(data: &Data, reps: usize) {
    eprintln!("postgres:");
    let (store, database) = match std::env::var("KEYWARD_SEARCH_POSTGRES_URL") {
        Ok(url) => (open_kept(&url).await, None),
        Err(_) => {
            let Some((store, database)) = testing::fresh_postgres().await else { return };
            fill(&store, data).await;
            // What autovacuum does within a minute or so of a bulk load: statistics and the
            // visibility map (index-only scans), so the planner sees the table as it will run.
            let started = Instant::now();
            let mut admin = PgConnection::connect(&database.url).await.unwrap();
            admin.execute("VACUUM (ANALYZE)").await.unwrap();
            admin.close().await.unwrap();
            eprintln!("  VACUUM (ANALYZE) in {:.1} s", started.elapsed().as_secs_f64());
            if keep() {
                eprintln!("  kept: {}", database.url);
            }
            (store, Some(database))
        }
    };
    measure(&store, data, "postgres", reps).await;
    store.close().await;
    if let Some(database) = database.filter(|_| keep()) {
        std::mem::forget(database);
    }
}

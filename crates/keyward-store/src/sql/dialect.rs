//! Every place where SQLite and PostgreSQL differ, in one spot; all other SQL text is shared.

use super::rows::{contains_pattern, Sql};
use super::search;
use crate::Backend;
use sqlx::migrate::Migrator;

/// How long a SQLite connection waits for another writer (a one-shot subcommand, say).
pub(crate) const SQLITE_BUSY_TIMEOUT: &str = "PRAGMA busy_timeout = 10000";

/// The SQLite writer's page cache (see `Backend::connection_pragmas`).
pub(crate) const SQLITE_WRITER_CACHE: &str = "PRAGMA cache_size = -16384";

/// The SQLite writer's page cache while it inserts a bulk batch (`keyward generate`): 128 MB
/// holds every page the batch changes until its commit, the key index's (which a batch touches
/// all over) among them, instead of spilling them to the WAL and writing them again.
pub(crate) const SQLITE_BULK_CACHE: &str = "PRAGMA cache_size = -131072";

/// PostgreSQL's settings for a bulk batch's transaction (`keyward generate`): the key trigram
/// index gathers 64 MB of new entries before merging them into its tree (4 MB by default), and the
/// merge sorts them in memory. A million from nothing: 72–78 s with them, 96–97 s without; a
/// later insert into the index, or the VACUUM that ends `keyward generate`, merges what is left.
pub(crate) const POSTGRES_BULK_SETTINGS: &[&str] =
    &["SET LOCAL gin_pending_list_limit = '64MB'", "SET LOCAL work_mem = '64MB'"];

/// A search (`q`) as its backend looks it up: the values to bind (see `Backend::search_term`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum SearchTerm {
    /// SQLite: an FTS5 query of the trigram tables, the search's LIKE pattern, whether the query
    /// holds only the ends of a long search, whose candidates the pattern confirms whole, the
    /// search lower-cased, which keys starting with it start with, and the FTS5 query of keys
    /// holding it further in: a long search's last end alone (its first are, more often than
    /// not, the start every key shares, whose trigrams every key holds).
    Phrase { query: String, pattern: String, confirm: bool, start: String, further: String },
    /// PostgreSQL: a lower-cased LIKE pattern (`\` escapes), looked up through pg_trgm.
    Pattern(String),
    /// A search too short for a trigram, as a `Pattern`: compared row by row on both backends.
    Short(String),
    /// PostgreSQL, a long search: LIKE patterns of its two ends, which pg_trgm serves with a
    /// third of the trigrams of the whole, and the whole lower-cased, which `strpos` confirms.
    Ends { first: String, last: String, whole: String },
}

/// A `SearchTerm`'s placeholders in a statement.
#[derive(Debug, Clone)]
pub(crate) enum Term {
    /// An FTS5 query, the LIKE pattern of the whole search, whether the pattern must confirm
    /// the query's candidates (a long search), the search lower-cased, and the FTS5 query of
    /// keys holding it further in.
    Phrase {
        query: String,
        pattern: String,
        confirm: bool,
        start: String,
        further: String,
    },
    Compare(Comparison),
}

/// A search compared with text row by row (a pg_trgm index on the text serves it).
#[derive(Debug, Clone)]
pub(crate) enum Comparison {
    Pattern(String),
    Short(String),
    Ends { first: String, last: String, whole: String },
}

impl SearchTerm {
    /// Binds the term to `sql`: its placeholders there.
    pub(crate) fn bind(&self, sql: &mut Sql) -> Term {
        match self {
            SearchTerm::Phrase { query, pattern, confirm, start, further } => Term::Phrase {
                query: sql.arg(query.as_str()),
                pattern: sql.arg(pattern.as_str()),
                confirm: *confirm,
                start: sql.arg(start.as_str()),
                further: sql.arg(further.as_str()),
            },
            SearchTerm::Pattern(pattern) => Term::Compare(Comparison::Pattern(sql.arg(pattern.as_str()))),
            SearchTerm::Short(pattern) => Term::Compare(Comparison::Short(sql.arg(pattern.as_str()))),
            SearchTerm::Ends { first, last, whole } => Term::Compare(Comparison::Ends {
                first: sql.arg(first.as_str()),
                last: sql.arg(last.as_str()),
                whole: sql.arg(whole.as_str()),
            }),
        }
    }
}

impl Term {
    /// The search compared with text row by row: the pattern of a phrase, or the comparison.
    fn whole(&self) -> Comparison {
        match self {
            Term::Phrase { pattern, .. } => Comparison::Pattern(pattern.clone()),
            Term::Compare(compare) => compare.clone(),
        }
    }
}

impl Comparison {
    /// The condition that `text`, an expression lower-cased already, contains the search.
    fn in_text(&self, text: &str) -> String {
        let like = |pattern: &str| format!("{text} LIKE {pattern} ESCAPE '\\'");
        match self {
            Comparison::Pattern(pattern) | Comparison::Short(pattern) => like(pattern),
            Comparison::Ends { first, last, whole } => {
                format!("({} AND {} AND strpos({text}, {whole}) > 0)", like(first), like(last))
            }
        }
    }

    /// The condition that `text`, lower-cased already, contains the search, a long one looked up
    /// by its last characters alone: its first are, more often than not, the start every key
    /// shares (at the start of a key, `at_start` finds them), whose trigrams every key holds.
    fn in_rest(&self, text: &str) -> String {
        match self {
            Comparison::Pattern(_) | Comparison::Short(_) => self.in_text(text),
            Comparison::Ends { last, whole, .. } => {
                format!("({text} LIKE {last} ESCAPE '\\' AND strpos({text}, {whole}) > 0)")
            }
        }
    }

    /// The condition that `text`, lower-cased already and of collation "C", starts with the
    /// search: a LIKE pattern with a fixed start, which PostgreSQL reads as a range of an index.
    fn at_start(&self, text: &str) -> String {
        // A pattern less its leading `%`.
        let starts = |pattern: &str| format!("{text} LIKE substr({pattern}, 2) ESCAPE '\\'");
        match self {
            Comparison::Pattern(pattern) | Comparison::Short(pattern) => starts(pattern),
            Comparison::Ends { first, whole, .. } => format!("({} AND starts_with({text}, {whole}))", starts(first)),
        }
    }
}

/// A search longer than twice this many characters is looked up by its first and its last this
/// many (a third of the trigrams of a whole key or email), then confirmed whole.
const SEARCH_END: usize = 8;

/// `s` as an FTS5 string: quoted, its quotes doubled. In a trigram table, a substring.
fn fts5_phrase(s: &str) -> String {
    format!("\"{}\"", s.replace('"', "\"\""))
}

static SQLITE_MIGRATIONS: Migrator = sqlx::migrate!("./migrations/sqlite");
static POSTGRES_MIGRATIONS: Migrator = sqlx::migrate!("./migrations/postgres");

impl Backend {
    /// The backend a database URL names, if keyward supports it.
    pub(crate) fn of_url(url: &str) -> Option<Backend> {
        let scheme = url.split_once(':')?.0.to_ascii_lowercase();
        match scheme.as_str() {
            "sqlite" => Some(Backend::Sqlite),
            "postgres" | "postgresql" => Some(Backend::Postgres),
            _ => None,
        }
    }

    pub(crate) fn migrations(self) -> &'static Migrator {
        match self {
            Backend::Sqlite => &SQLITE_MIGRATIONS,
            Backend::Postgres => &POSTGRES_MIGRATIONS,
        }
    }

    /// How a writing transaction starts. SQLite takes the write lock at once, so a transaction
    /// that reads before it writes never fails with SQLITE_BUSY when another process writes;
    /// PostgreSQL locks rows as they are written.
    pub(crate) fn begin_write(self) -> &'static str {
        match self {
            Backend::Sqlite => "BEGIN IMMEDIATE",
            Backend::Postgres => "BEGIN",
        }
    }

    /// How a transaction that reads many tables as one moment starts (export).
    pub(crate) fn begin_snapshot(self) -> &'static str {
        match self {
            Backend::Sqlite => "BEGIN",
            Backend::Postgres => "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY",
        }
    }

    /// The statement that tells other nodes, once the transaction commits, that a license
    /// changed (its one bind is the payload); SQLite has no other nodes.
    pub(crate) fn announce_statement(self) -> Option<&'static str> {
        match self {
            Backend::Sqlite => None,
            Backend::Postgres => Some("SELECT pg_notify('keyward_license', $1)"),
        }
    }

    /// Pragmas for every SQLite connection (none on PostgreSQL). WAL lets readers run beside
    /// the writer; it is set by the writer, the first connection, and persists in the file.
    /// The writer's 16 MB of pages holds every index's upper levels at a million licenses; the
    /// leaves that validation counts touch at random would not fit in any size worth its memory.
    /// Readers keep 4 MB each: there are eight, a sweep of uncached keys filled 16 MB in every
    /// one, and the pages they miss are in the operating system's cache.
    pub(crate) fn connection_pragmas(self, writer: bool) -> &'static [&'static str] {
        match (self, writer) {
            (Backend::Sqlite, true) => &[
                "PRAGMA journal_mode = WAL",
                "PRAGMA journal_size_limit = 67108864",
                SQLITE_BUSY_TIMEOUT,
                "PRAGMA foreign_keys = ON",
                "PRAGMA synchronous = NORMAL",
                SQLITE_WRITER_CACHE,
                "PRAGMA temp_store = MEMORY",
            ],
            (Backend::Sqlite, false) => &[
                SQLITE_BUSY_TIMEOUT,
                "PRAGMA foreign_keys = ON",
                "PRAGMA synchronous = NORMAL",
                "PRAGMA cache_size = -4096",
            ],
            (Backend::Postgres, _) => &[],
        }
    }

    /// The `n`th (from 1) placeholder of a statement whose binds each appear once, in order.
    /// SQLite looks a numbered parameter's name up by a linear scan, so a statement with
    /// thousands of `$N` binds costs quadratic time there; plain `?` costs nothing.
    pub(crate) fn sequential_placeholder(self, n: usize) -> String {
        match self {
            Backend::Sqlite => "?".to_owned(),
            Backend::Postgres => format!("${n}"),
        }
    }

    /// The sum of some customers' license counts, to be followed by `WHERE environment = … AND
    /// customer_id IN (…)`: kept by triggers on PostgreSQL (migrations 0005 and 0006); SQLite
    /// counts a customer's licenses from an index alone, in milliseconds, and keeps none.
    pub(crate) fn customer_license_count(self) -> Option<&'static str> {
        match self {
            Backend::Sqlite => None,
            Backend::Postgres => Some(
                "SELECT COALESCE(SUM(n), 0)::BIGINT AS n FROM (SELECT customer_id, environment, n \
                 FROM customer_license_counts UNION ALL SELECT customer_id, environment, n \
                 FROM customer_license_count_changes) counts",
            ),
        }
    }

    /// How a search for `q` is put to the database. SQLite finds a substring of at least 3
    /// characters (a trigram) as an FTS5 phrase; shorter searches are LIKE patterns, compared
    /// row by row. PostgreSQL compares LIKE patterns, through pg_trgm where there are trigrams.
    /// A long search is looked up by its ends on both. Both lower-case ASCII only, as `lower()`.
    pub(crate) fn search_term(self, q: &str) -> SearchTerm {
        let lower = q.to_ascii_lowercase();
        let chars: Vec<char> = lower.chars().collect();
        let ends = (chars.len() > 2 * SEARCH_END).then(|| {
            let first: String = chars[..SEARCH_END].iter().collect();
            let last: String = chars[chars.len() - SEARCH_END..].iter().collect();
            (first, last)
        });
        match (self, ends) {
            (Backend::Sqlite, Some((first, last))) => SearchTerm::Phrase {
                query: format!("{} AND {}", fts5_phrase(&first), fts5_phrase(&last)),
                pattern: contains_pattern(q),
                confirm: true,
                start: lower,
                further: fts5_phrase(&last),
            },
            (Backend::Sqlite, None) if chars.len() >= 3 => SearchTerm::Phrase {
                query: fts5_phrase(&lower),
                pattern: contains_pattern(q),
                confirm: false,
                further: fts5_phrase(&lower),
                start: lower,
            },
            (Backend::Postgres, Some((first, last))) => {
                SearchTerm::Ends { first: contains_pattern(&first), last: contains_pattern(&last), whole: lower }
            }
            (Backend::Postgres, None) if chars.len() >= 3 => SearchTerm::Pattern(contains_pattern(q)),
            _ => SearchTerm::Short(contains_pattern(q)),
        }
    }

    /// A statement yielding the `id` of each customer of the environment whose email or name
    /// contains the search (`env` and `term` are placeholders). SQLite looks in its FTS5 trigram
    /// table, whose rows hold the lower-cased text; PostgreSQL through pg_trgm indexes on the
    /// same `lower(…)` expressions.
    pub(crate) fn customer_matches(self, env: &str, term: &Term) -> String {
        match (self, term) {
            (Backend::Sqlite, Term::Phrase { query, confirm, .. }) => {
                let whole = confirm.then(|| {
                    let whole = term.whole();
                    format!("({} OR {})", whole.in_text("email"), whole.in_text("name"))
                });
                trigram_matches("customer_id", "customer_search", query, env, whole)
            }
            (Backend::Sqlite, Term::Compare(compare)) => format!(
                "SELECT customer_id AS id FROM customer_search WHERE ({} OR {}) AND environment = {env}",
                compare.in_text("email"),
                compare.in_text("name")
            ),
            (Backend::Postgres, Term::Compare(compare)) => format!(
                "SELECT sc.id FROM customers sc WHERE sc.environment = {env} AND ({} OR {})",
                compare.in_text("lower(sc.email)"),
                compare.in_text("lower(sc.name)")
            ),
            // `search_term` makes no phrase for PostgreSQL; were it to, nothing would match.
            (Backend::Postgres, Term::Phrase { .. }) => "SELECT sc.id FROM customers sc WHERE 1 = 0".to_owned(),
        }
    }

    /// A statement yielding the `id` of each license of the environment whose key contains the
    /// search (placeholders as `customer_matches`).
    /// SQLite: from the search file (`search.rs`), less the licenses pending there, whose keys
    /// are compared row by row (a statement takes the database's snapshot before the search
    /// file's): the keys starting with the search, a range of its index of keys, and those
    /// holding it further in, from the trigram table. A search too short for a trigram compares
    /// the keys there row by row. (The pending licenses are looked up one by one: left to itself,
    /// SQLite would rather walk every license of the environment and look each up among them.)
    /// PostgreSQL: the keys starting with the search, then those holding it further in
    /// (`key_lookups`).
    pub(crate) fn key_matches(self, env: &str, term: &Term) -> String {
        let whole = term.whole();
        let indexed = match (self, term) {
            (Backend::Sqlite, Term::Phrase { further, confirm, start, .. }) => {
                let mut rest = format!("NOT {}", starting_with("(head || key)", start));
                if *confirm {
                    rest = format!("{rest} AND {}", whole.in_text("key"));
                }
                format!(
                    "SELECT license_id AS id FROM {} WHERE environment = {env} AND {} AND {NOT_PENDING} UNION ALL {}",
                    search::KEY_ROWS,
                    key_starting_with(start),
                    trigram_matches("license_id", search::KEY_TABLE, further, env, Some(rest))
                )
            }
            // Every key read in row order: through the starts index, each one would be looked up.
            (Backend::Sqlite, Term::Compare(_)) => format!(
                "SELECT license_id AS id FROM {} NOT INDEXED WHERE environment = {env} AND {}",
                search::KEY_ROWS,
                whole.in_text("key")
            ),
            (Backend::Postgres, _) => {
                let [(k, starting), (r, rest)] = key_lookups(&whole, env);
                return format!("SELECT {k} AS id {starting} UNION ALL SELECT {r} AS id {rest}");
            }
        };
        format!(
            "{indexed} AND {NOT_PENDING} \
             UNION ALL SELECT pl.id FROM license_search_pending p CROSS JOIN licenses pl ON pl.id = p.license_id \
             WHERE pl.environment = {env} AND {}",
            whole.in_text("lower(pl.key)")
        )
    }

    /// The condition on a license `l` that its key contains the search, compared row by row.
    /// Where a search matches a large share of the licenses this beats `key_condition`, whose
    /// ids are all read before the first row (`q=BENCH-`, every key of a million: 5.2 s for the
    /// first page on SQLite), and it is what a walk along a sort's index checks.
    pub(crate) fn key_compared(self, term: &Term) -> String {
        term.whole().in_text("lower(l.key)")
    }

    /// A statement counting the keys a search matches: `n`, and whether it counted every one
    /// (`complete`), whether any license waits to be indexed (`waiting`), and, given
    /// `elsewhere_up_to`, how many of `n` are licenses outside `environment` (`elsewhere`, else
    /// NULL). With `complete`, none waiting and `elsewhere`, the environment's count is
    /// `n - elsewhere`.
    /// SQLite: the environment's keys starting with the search, from their index, and the rows
    /// of the key trigram table, of any environment, that the FTS5 query matches, less the keys
    /// counted by both (read from those rows); each reading up to `up_to`. It tells a
    /// search most keys match from a narrow one. `elsewhere` is compared row by row, only when
    /// other environments hold `elsewhere_up_to` licenses or fewer and the query is the whole
    /// search (a long one's candidates are confirmed row by row). The database's snapshot is
    /// taken before the search file's (a statement opens its databases in order), so none
    /// waiting means every change before it is in the tables read. None for a search too short
    /// for a trigram.
    /// PostgreSQL: every match in the environment, as `key_matches` finds them: the keys starting
    /// with the search from their index alone (a million: ~95 ms; 31,000: ~8 ms), the others
    /// confirmed on their rows.
    pub(crate) fn key_candidates(
        self,
        environment: &str,
        term: &SearchTerm,
        up_to: i64,
        elsewhere_up_to: Option<i64>,
    ) -> Option<Sql> {
        let mut statement = Sql::default();
        let env = statement.arg(environment);
        let term = term.bind(&mut statement);
        if self == Backend::Postgres {
            let [(_, starting), (_, rest)] = key_lookups(&term.whole(), &env);
            let elsewhere = if elsewhere_up_to.is_some() { "0" } else { "NULL" };
            statement.push(&format!(
                "SELECT CAST(0 AS BIGINT) AS waiting, CAST({elsewhere} AS BIGINT) AS elsewhere, \
                 CAST(1 AS BIGINT) AS complete, (SELECT COUNT(*) {starting}) + (SELECT COUNT(*) {rest}) AS n"
            ));
            return Some(statement);
        }
        let Term::Phrase { further, confirm, start, .. } = &term else { return None };
        let up_to = statement.arg(up_to);
        let whole = term.whole();
        // The trigram table's rows hold each key less its first character.
        let elsewhere = match elsewhere_up_to.filter(|_| !confirm) {
            Some(most) => format!(
                "CASE WHEN (SELECT COALESCE(SUM(n), 0) FROM license_counts WHERE environment <> {env}) <= {} \
                 THEN (SELECT COUNT(*) FROM licenses l WHERE l.environment IN \
                 (SELECT environment FROM license_counts WHERE environment <> {env} AND n > 0) AND {}) END",
                statement.arg(most),
                whole.in_text("substr(lower(l.key), 2)")
            ),
            None => "NULL".to_owned(),
        };
        statement.push(&format!(
            "SELECT waiting, elsewhere, starting + rest - twice AS n, starting < {up_to} AND rest < {up_to} AS complete \
             FROM (SELECT EXISTS (SELECT 1 FROM license_search_pending) AS waiting, {elsewhere} AS elsewhere, \
             (SELECT COUNT(*) FROM (SELECT 1 FROM {} WHERE environment = {env} AND {} LIMIT {up_to})) AS starting, \
             further.rest, further.twice FROM (SELECT COUNT(*) AS rest, \
             COALESCE(SUM(CASE WHEN environment = {env} AND {} THEN 1 ELSE 0 END), 0) AS twice \
             FROM (SELECT environment, head, key FROM {} WHERE license_key_search MATCH {further} LIMIT {up_to})) further)",
            search::KEY_ROWS,
            key_starting_with(start),
            starting_with("(head || key)", start),
            search::KEY_TABLE
        ));
        Some(statement)
    }

    /// The condition on a license `l` that its key contains the search.
    pub(crate) fn key_condition(self, env: &str, term: &Term) -> String {
        format!("l.id IN ({})", self.key_matches(env, term))
    }

    /// Statements that refresh the planner's view of the license tables after a bulk load.
    /// PostgreSQL: right after a million inserts, with statistics of the empty tables the
    /// migration analysed and no visibility map, an unfiltered page took 140-190 ms instead of
    /// 45-55 ms (measured at 1M; VACUUM (ANALYZE) itself took 0.8 s). SQLite plans well without.
    pub(crate) fn refresh_statistics(self) -> &'static [&'static str] {
        match self {
            Backend::Sqlite => &[],
            Backend::Postgres => &["VACUUM (ANALYZE) licenses, customers, license_keys"],
        }
    }

    /// Where each environment's license count is kept, to be followed by `WHERE environment = …`
    /// and summed: SQLite's triggers update one row (migration 0005); PostgreSQL's append their
    /// changes beside the rows (0004, 0006).
    pub(crate) fn environment_license_counts(self) -> &'static str {
        match self {
            Backend::Sqlite => "license_counts",
            Backend::Postgres => {
                "(SELECT environment, n FROM license_counts \
                 UNION ALL SELECT environment, n FROM license_count_changes) counts"
            }
        }
    }

    /// PostgreSQL: adds the counts' changes (migration 0006) into their rows, one statement a
    /// table, rows taken in key order so that two nodes folding at once never wait in a circle.
    pub(crate) fn fold_license_counts(self) -> &'static [&'static str] {
        match self {
            Backend::Sqlite => &[],
            Backend::Postgres => &[
                "WITH gone AS (DELETE FROM license_count_changes RETURNING environment, n) \
                 INSERT INTO license_counts AS c (environment, n) \
                 SELECT environment, SUM(n) FROM gone GROUP BY environment ORDER BY environment \
                 ON CONFLICT (environment) DO UPDATE SET n = c.n + EXCLUDED.n",
                "WITH gone AS (DELETE FROM customer_license_count_changes RETURNING customer_id, environment, n) \
                 INSERT INTO customer_license_counts AS c (customer_id, environment, n) \
                 SELECT customer_id, environment, SUM(n) FROM gone GROUP BY customer_id, environment \
                 ORDER BY customer_id, environment \
                 ON CONFLICT (customer_id, environment) DO UPDATE SET n = c.n + EXCLUDED.n",
            ],
        }
    }

    /// The most bind parameters one statement may carry (SQLite 32766, PostgreSQL 65535).
    pub(crate) fn max_binds(self) -> usize {
        match self {
            Backend::Sqlite => 32_766,
            Backend::Postgres => 65_535,
        }
    }
}

/// PostgreSQL: where the keys of the environment that contain a search are (`FROM … WHERE …`,
/// migration 0008), each with its license id column, in two disjoint parts: those starting with
/// it, in `license_keys k` (a range of its key index); and the licenses `r` whose key holds it
/// after the first character and does not start with it, through pg_trgm. A search too short for
/// a trigram compares every key of the narrow table instead (a million: ~0.3 s, against 0.6 s
/// over the licenses).
fn key_lookups(whole: &Comparison, env: &str) -> [(&'static str, String); 2] {
    let starting = format!("FROM license_keys k WHERE k.environment = {env} AND {}", whole.at_start("k.key"));
    let rest = match whole {
        Comparison::Short(_) => (
            "r.license_id",
            format!(
                "FROM license_keys r WHERE r.environment = {env} AND {} AND NOT {}",
                whole.in_text("substr(r.key, 2)"),
                whole.at_start("r.key")
            ),
        ),
        _ => (
            "r.id",
            format!(
                "FROM licenses r WHERE r.environment = {env} AND {} AND NOT {}",
                whole.in_rest("substr(lower(r.key), 2)"),
                whole.at_start("lower(r.key)")
            ),
        ),
    };
    [("k.license_id", starting), rest]
}

/// SQLite: that no license is pending in the search file (`search.rs`), on a statement of its
/// tables yielding `license_id`.
const NOT_PENDING: &str = "license_id NOT IN (SELECT license_id FROM license_search_pending)";

/// SQLite: the condition that `text` starts with `start` (placeholders or expressions of text):
/// a range of an index on `text`, exactly (every byte of UTF-8 text sorts below 0xFF).
fn starting_with(text: &str, start: &str) -> String {
    format!("({text} >= {start} AND {text} < {start} || CAST(x'ff' AS TEXT))")
}

/// SQLite: the condition that a key of `search::KEY_ROWS` starts with `start` (a placeholder): a
/// range of `license_key_starts` by the start's first characters, the rest compared on the row
/// (which the short-circuit spares an index entry that is enough).
fn key_starting_with(start: &str) -> String {
    let indexed = format!("substr(key, 1, {})", search::STARTS_INDEXED);
    format!(
        "({} AND (length({start}) <= {} OR {}))",
        starting_with(&indexed, &format!("substr({start}, 1, {})", search::STARTS_INDEXED)),
        search::STARTS_INDEXED,
        starting_with("key", start)
    )
}

/// SQLite: the `id_column` of each row of the FTS5 trigram `table` (`schema.table` or not), in
/// the environment, whose text holds the phrase `query`; `whole`, when the search was looked up by
/// its ends, confirms the whole of it on that row's text.
fn trigram_matches(id_column: &str, table: &str, query: &str, env: &str, whole: Option<String>) -> String {
    // MATCH names the table itself, without the schema it may be in.
    let name = table.rsplit('.').next().unwrap_or(table);
    let mut statement =
        format!("SELECT {id_column} AS id FROM {table} WHERE {name} MATCH {query} AND environment = {env}");
    if let Some(whole) = whole {
        statement.push_str(&format!(" AND {whole}"));
    }
    statement
}

//! Every place where SQLite and PostgreSQL differ, in one spot; all other SQL text is shared.

use crate::Backend;
use sqlx::migrate::Migrator;

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
    pub(crate) fn connection_pragmas(self, writer: bool) -> &'static [&'static str] {
        match (self, writer) {
            (Backend::Sqlite, true) => &[
                "PRAGMA journal_mode = WAL",
                "PRAGMA busy_timeout = 10000",
                "PRAGMA foreign_keys = ON",
                "PRAGMA synchronous = NORMAL",
                "PRAGMA cache_size = -65536",
            ],
            (Backend::Sqlite, false) => &[
                "PRAGMA busy_timeout = 10000",
                "PRAGMA foreign_keys = ON",
                "PRAGMA synchronous = NORMAL",
                "PRAGMA cache_size = -16384",
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

    /// The most bind parameters one statement may carry (SQLite 32766, PostgreSQL 65535).
    pub(crate) fn max_binds(self) -> usize {
        match self {
            Backend::Sqlite => 32_766,
            Backend::Postgres => 65_535,
        }
    }
}

//! Store errors.

/// What went wrong in the store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database URL or path cannot be used.
    #[error("database {url:?}: {reason}")]
    BadUrl {
        /// The URL as given (passwords masked).
        url: String,
        /// Why it cannot be used.
        reason: String,
    },
    /// SQLite reported an error.
    #[error("SQLite: {0}")]
    Sqlite(#[from] rusqlite::Error),
    /// PostgreSQL reported an error.
    #[error("PostgreSQL: {0}")]
    Postgres(#[from] postgres::Error),
    /// The database holds a newer schema than this iocx knows.
    #[error(
        "the database has schema version {found}, newer than this iocx understands ({known}); upgrade iocx"
    )]
    SchemaTooNew {
        /// Version found in the database.
        found: i64,
        /// Newest version this build knows.
        known: i64,
    },
    /// A named thing does not exist.
    #[error("{what} {name:?} does not exist")]
    NotFound {
        /// What kind of thing (`source`, `run`, …).
        what: &'static str,
        /// Its name or id.
        name: String,
    },
    /// A request conflicts with what is stored.
    #[error("{0}")]
    Conflict(String),
    /// Stored data is not what this iocx wrote (a hand-edited or damaged database).
    #[error("corrupt data in {table}: {detail}")]
    Corrupt {
        /// The table.
        table: &'static str,
        /// What is wrong.
        detail: String,
    },
    /// A background task failed to run.
    #[error("store task failed: {0}")]
    Task(String),
    /// A file of the data directory could not be used.
    #[error("{path}: {source}")]
    Io {
        /// The path.
        path: String,
        /// The error.
        source: std::io::Error,
    },
}

/// Result with [`StoreError`].
pub type Result<T, E = StoreError> = std::result::Result<T, E>;

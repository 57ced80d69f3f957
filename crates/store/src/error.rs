//! Store errors. Messages describe this layer only; the service layer decides what a user sees.

/// Result alias of the store.
pub type StoreResult<T> = Result<T, StoreError>;

/// Why a store operation failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A unique constraint was violated; the name says which (e.g. `sessions_priority`).
    #[error("unique constraint {0} violated")]
    Unique(&'static str),
    /// A referenced row does not exist or a referenced row is still in use.
    #[error("foreign key constraint violated")]
    ForeignKey,
    /// The transaction lost a race with another one, or no pooled connection came free in
    /// time; the caller should run it again (later).
    #[error("transaction conflicted with a concurrent one")]
    Retry,
    /// The list marker names no resource of this list.
    #[error("marker {0:?} is not the id of a resource in this list")]
    UnknownMarker(String),
    /// The database URL or options are unusable.
    #[error("{0}")]
    Config(String),
    /// Migrations could not be applied.
    #[error("database migration failed: {0}")]
    Migrate(String),
    /// A credential's secret is sealed under a master key the store was not given.
    #[error("{0}")]
    MasterKey(String),
    /// A stored value does not decode.
    #[error("stored data is corrupt: {0}")]
    Corrupt(String),
    /// Any other database error.
    #[error("database error")]
    Database(#[source] sqlx::Error),
}

impl StoreError {
    /// Classifies a driver error: constraint violations and serialisation failures become their
    /// own variants so that callers can react to them.
    pub(crate) fn from_sqlx(e: sqlx::Error, unique_name: fn(&str) -> &'static str) -> StoreError {
        if let sqlx::Error::Database(db) = &e {
            match db.kind() {
                sqlx::error::ErrorKind::UniqueViolation => {
                    return StoreError::Unique(unique_name(db.message()))
                }
                sqlx::error::ErrorKind::ForeignKeyViolation => return StoreError::ForeignKey,
                _ => {}
            }
            // SQLITE_BUSY (5) / SQLITE_LOCKED (6); PostgreSQL serialization_failure,
            // deadlock_detected and lock_not_available (lock_timeout).
            if matches!(
                db.code().as_deref(),
                Some("5" | "6" | "517" | "40001" | "40P01" | "55P03")
            ) {
                return StoreError::Retry;
            }
        }
        // The connection itself failed: a database that restarted broke the others too.
        if matches!(
            e,
            sqlx::Error::Io(_)
                | sqlx::Error::Tls(_)
                | sqlx::Error::Protocol(_)
                | sqlx::Error::WorkerCrashed
        ) {
            crate::connections::note_trouble();
        }
        // Every pooled connection stayed busy for the pool's whole acquire time-out: the
        // server is overloaded for now, which the caller may retry (503), not a failure (500).
        if matches!(e, sqlx::Error::PoolTimedOut) {
            return StoreError::Retry;
        }
        StoreError::Database(e)
    }
}

//! The connections reads and bookkeeping run on, outside any transaction, for both back-ends.
//!
//! sqlx's pool pings every connection handed back to it (a command and its answer, to flush a
//! transaction's rollback left by a dropped future): on SQLite two more hand-offs to the
//! connection's worker thread for every read, about as many context switches as the read
//! itself; on PostgreSQL one more round trip to the server (docs/performance.md, "The pool's
//! ping on release"). These connections never hold a transaction — the writes' transactions
//! stay on sqlx's pool — and a statement abandoned half-way is finished before the next one
//! runs (SQLite's worker resets it; PostgreSQL's connection reads what is left of its
//! answer first), so there is nothing to flush: `deadpool` hands them back as they are.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use deadpool::managed::{self, Metrics, Object, PoolError, QueueMode, RecycleResult};
use deadpool::Runtime;
use sqlx::{ConnectOptions, Connection};

use crate::{StoreError, StoreResult};

/// How long a connect, a check or a wait for a free connection may take: then the caller is
/// told to retry (the database is unreachable or the server overloaded for now).
const PATIENCE: Duration = Duration::from_secs(10);

/// For how long after a connection failed (I/O, protocol) every connection is checked before
/// it is handed out: a database that restarted broke them all, and one in steady use would
/// otherwise never be idle long enough to be checked (sqlx's pool found it out on release).
const AFTER_TROUBLE: Duration = Duration::from_secs(2);

/// When (milliseconds after [`epoch`], plus one; 0: never) a connection last failed.
static LAST_TROUBLE: AtomicU64 = AtomicU64::new(0);

fn epoch() -> Instant {
    static EPOCH: OnceLock<Instant> = OnceLock::new();
    *EPOCH.get_or_init(Instant::now)
}

/// Notes that a connection failed (called by the back-ends' reading of driver errors).
pub(crate) fn note_trouble() {
    let now = epoch().elapsed().as_millis() as u64 + 1;
    LAST_TROUBLE.fetch_max(now, Ordering::Relaxed);
}

/// Whether a connection failed within [`AFTER_TROUBLE`].
fn troubled() -> bool {
    match LAST_TROUBLE.load(Ordering::Relaxed) {
        0 => false,
        at => {
            let now = epoch().elapsed().as_millis() as u64 + 1;
            now.saturating_sub(at) < AFTER_TROUBLE.as_millis() as u64
        }
    }
}

/// Opens connections with the store's options, and checks one before handing it out again if
/// it was last taken `check_idle` ago or more (if set), or a connection failed lately.
pub(crate) struct Opener<C: Connection> {
    options: C::Options,
    check_idle: Option<Duration>,
}

impl<C: Connection> managed::Manager for Opener<C> {
    type Type = C;
    type Error = sqlx::Error;

    async fn create(&self) -> Result<C, sqlx::Error> {
        self.options.connect().await
    }

    async fn recycle(&self, conn: &mut C, metrics: &Metrics) -> RecycleResult<sqlx::Error> {
        if self
            .check_idle
            .is_some_and(|after| metrics.last_used() >= after || troubled())
        {
            // No answer: the pool drops it and opens another for the caller.
            conn.ping().await?;
        }
        Ok(())
    }
}

/// A pool of up to `size` connections, opened as they are first needed.
pub(crate) struct Connections<C: Connection> {
    pool: managed::Pool<Opener<C>>,
    /// The back-end's reading of a driver error.
    db_err: fn(sqlx::Error) -> StoreError,
}

/// A connection taken from [`Connections`]; it goes back when dropped.
pub(crate) type Pooled<C> = Object<Opener<C>>;

impl<C: Connection> Connections<C> {
    /// `check_idle`: how long after it was last taken a connection is still handed out
    /// unchecked (None: always, also after trouble; a database file of this host cannot
    /// hang up).
    pub(crate) fn new(
        options: C::Options,
        size: usize,
        check_idle: Option<Duration>,
        db_err: fn(sqlx::Error) -> StoreError,
    ) -> StoreResult<Self> {
        let pool = managed::Pool::builder(Opener {
            options,
            check_idle,
        })
        .max_size(size)
        // The connection used last goes out first: fewer idle checks on PostgreSQL, warmer
        // page caches on SQLite.
        .queue_mode(QueueMode::Lifo)
        .runtime(Runtime::Tokio1)
        .wait_timeout(Some(PATIENCE))
        .create_timeout(Some(PATIENCE))
        // A check that does not answer in time discards the connection; the next is tried.
        .recycle_timeout(Some(PATIENCE))
        .build()
        .map_err(|e| StoreError::Config(format!("database connections: {e}")))?;
        Ok(Connections { pool, db_err })
    }

    pub(crate) async fn get(&self) -> StoreResult<Pooled<C>> {
        self.pool.get().await.map_err(|e| match e {
            PoolError::Backend(e) => (self.db_err)(e),
            PoolError::Timeout(_) => StoreError::Retry,
            PoolError::Closed => (self.db_err)(sqlx::Error::PoolClosed),
            other => StoreError::Config(format!("database connections: {other}")),
        })
    }

    /// Closes the idle connections and refuses new takers (a connection still in use closes
    /// when it is given back).
    pub(crate) async fn close(&self) {
        let idle = self.pool.retain(|_, _| false).removed;
        self.pool.close();
        for conn in idle {
            let _ = conn.close().await;
        }
    }
}

#[cfg(test)]
mod tests {
    use std::str::FromStr;

    use futures_util::TryStreamExt;
    use sqlx::sqlite::{SqliteConnectOptions, SqliteConnection};

    use super::*;

    /// What a connection handed back unpinged relies on: a read abandoned half-way (its
    /// request dropped) leaves nothing behind for the next taker.
    #[tokio::test]
    async fn a_read_dropped_half_way_leaves_the_connection_clean() {
        let dir = tempfile::tempdir().unwrap();
        let options = SqliteConnectOptions::from_str(&format!(
            "sqlite:{}",
            dir.path().join("t.db").display()
        ))
        .unwrap()
        .create_if_missing(true);
        let one =
            Connections::<SqliteConnection>::new(options, 1, None, crate::sqlite::db_err).unwrap();
        let numbers = "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n \
                       WHERE i < 100000) SELECT i FROM n";
        {
            let mut conn = one.get().await.unwrap();
            let mut rows = sqlx::query_scalar::<_, i64>(numbers).fetch(&mut *conn);
            assert_eq!(rows.try_next().await.unwrap(), Some(1));
        }
        let mut conn = one.get().await.unwrap();
        let sum: i64 = sqlx::query_scalar(&format!("SELECT sum(i) FROM ({numbers})"))
            .fetch_one(&mut *conn)
            .await
            .unwrap();
        assert_eq!(sum, 100000 * 100001 / 2);
        // Not inside a transaction the abandoned read left open: a write by another
        // connection commits and is seen.
        let mut other = SqliteConnection::connect_with(&one.pool.manager().options)
            .await
            .unwrap();
        sqlx::query("CREATE TABLE t (x)")
            .execute(&mut other)
            .await
            .unwrap();
        let n: i64 = sqlx::query_scalar("SELECT count(*) FROM t")
            .fetch_one(&mut *conn)
            .await
            .unwrap();
        assert_eq!(n, 0);
        drop(conn);
        one.close().await;
        assert!(matches!(one.get().await, Err(StoreError::Database(_))));
    }
}

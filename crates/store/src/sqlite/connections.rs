//! The connections reads and bookkeeping run on, outside any transaction.
//!
//! sqlx's pool pings every connection handed back to it (a command through the connection's
//! worker thread and back, to flush a transaction's rollback left by a dropped future): on
//! SQLite two thread hand-offs for every read, about as many context switches as the read
//! itself (docs/performance.md, "The pool's ping on release"). These connections never hold a
//! transaction — the writes' transactions stay on sqlx's pool — and a statement abandoned
//! half-way is reset by the connection's worker before it runs the next command, so there is
//! nothing to flush: `deadpool` hands them back as they are.

use std::time::Duration;

use deadpool::managed::{self, Metrics, Object, PoolError, RecycleResult};
use deadpool::Runtime;
use sqlx::sqlite::{SqliteConnectOptions, SqliteConnection};
use sqlx::ConnectOptions;

use super::db_err;
use crate::{StoreError, StoreResult};

/// Opens connections with the store's options.
pub(crate) struct Opener(SqliteConnectOptions);

impl managed::Manager for Opener {
    type Type = SqliteConnection;
    type Error = sqlx::Error;

    async fn create(&self) -> Result<SqliteConnection, sqlx::Error> {
        self.0.connect().await
    }

    async fn recycle(&self, _: &mut SqliteConnection, _: &Metrics) -> RecycleResult<sqlx::Error> {
        Ok(())
    }
}

/// A pool of up to `size` connections, opened as they are first needed.
pub(crate) struct Connections(managed::Pool<Opener>);

/// A connection taken from [`Connections`]; it goes back when dropped.
pub(crate) type Connection = Object<Opener>;

impl Connections {
    pub(crate) fn new(options: SqliteConnectOptions, size: usize) -> StoreResult<Self> {
        let pool = managed::Pool::builder(Opener(options))
            .max_size(size)
            .runtime(Runtime::Tokio1)
            // As sqlx's pool: a server whose every connection stays busy this long is
            // overloaded, which the caller may retry.
            .wait_timeout(Some(Duration::from_secs(30)))
            .build()
            .map_err(|e| StoreError::Config(format!("SQLite connections: {e}")))?;
        Ok(Connections(pool))
    }

    pub(crate) async fn get(&self) -> StoreResult<Connection> {
        self.0.get().await.map_err(|e| match e {
            PoolError::Backend(e) => db_err(e),
            PoolError::Timeout(_) => StoreError::Retry,
            PoolError::Closed => db_err(sqlx::Error::PoolClosed),
            other => StoreError::Config(format!("SQLite connections: {other}")),
        })
    }

    /// Closes the idle connections and refuses new takers (a connection still in use closes
    /// when it is given back).
    pub(crate) async fn close(&self) {
        let idle = self.0.retain(|_, _| false).removed;
        self.0.close();
        for conn in idle {
            let _ = sqlx::Connection::close(conn).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use std::str::FromStr;

    use futures_util::TryStreamExt;
    use sqlx::Connection as _;

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
        let one = Connections::new(options, 1).unwrap();
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
        let mut other = sqlx::SqliteConnection::connect_with(&one.0.manager().0)
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

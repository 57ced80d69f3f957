//! The embedded default back-end: one SQLite file in the data directory, WAL journal.
//!
//! Writers are serialised twice: an in-process async mutex keeps them from busy-waiting on
//! each other, and `BEGIN IMMEDIATE` takes SQLite's write lock at the start of the transaction,
//! so the business rules that run inside it see a stable database. `synchronous = NORMAL` in
//! WAL mode keeps every committed transaction across a crash of the process (`kill -9`); only
//! a power loss can drop the last transactions, and `synchronous = FULL` (option
//! `?synchronous=full` in the URL) closes that too.

mod dialect;

// The shared templates (see `crate::shared`), compiled for this back-end: loading one file as
// a module of each back-end is the point, not an accident.
#[allow(clippy::duplicate_mod)]
#[path = "../shared/agents.rs"]
mod agents;
#[allow(clippy::duplicate_mod)]
#[path = "../shared/aliyun.rs"]
mod aliyun;
#[allow(clippy::duplicate_mod)]
#[path = "../shared/eips.rs"]
mod eips;
#[allow(clippy::duplicate_mod)]
#[path = "../shared/load_balancers.rs"]
mod load_balancers;
#[allow(clippy::duplicate_mod)]
#[path = "../shared/reads.rs"]
mod reads;
#[allow(clippy::duplicate_mod)]
#[path = "../shared/tenancy.rs"]
mod tenancy;
#[allow(clippy::duplicate_mod)]
#[path = "../shared/writes.rs"]
mod writes;

use std::ops::DerefMut;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use sqlx::pool::PoolConnection;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteConnection, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous,
};
use sqlx::{Sqlite, SqlitePool, Transaction};
use tokio::sync::{watch, Mutex, OwnedMutexGuard};

use crate::shared::publish;
use crate::{AgentData, NonceUse, Reads, SecretSealer, Store, StoreError, StoreResult, WriteTx};
use dialect::D;

/// Where a session's source ports are captured, as the Alibaba session page reads it: for the
/// store suite's check of its plan.
#[doc(hidden)]
pub const SOURCE_CAPTURES_SQL: &str = <D as crate::shared::Dialect>::SOURCE_CAPTURES;

/// The database the shared templates run on.
type Db = Sqlite;

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");

/// The SQLite back-end.
pub struct SqliteStore {
    pool: SqlitePool,
    write_lock: Arc<Mutex<()>>,
    revision: Arc<watch::Sender<u64>>,
    sealer: Arc<SecretSealer>,
}

pub(crate) fn unique_name(message: &str) -> &'static str {
    // SQLite names the columns, not the constraint: "UNIQUE constraint failed: sessions.project_id, sessions.priority".
    if message.contains("sessions.priority") {
        "sessions_priority"
    } else if message.contains("rules.priority") {
        "rules_priority"
    } else if message.contains("session_sources") || message.contains("session_eip_sources") {
        "session_sources"
    } else if message.contains("eips.address") {
        "eips_address"
    } else if message.contains("port_addresses.network_id") {
        "port_address"
    } else {
        "id"
    }
}

pub(crate) fn db_err(e: sqlx::Error) -> StoreError {
    StoreError::from_sqlx(e, unique_name)
}

impl SqliteStore {
    /// Reads and bookkeeping on a pooled connection, outside any transaction.
    async fn ops(&self) -> StoreResult<Ops<PoolConnection<Sqlite>>> {
        Ok(Ops {
            conn: self.pool.acquire().await.map_err(db_err)?,
            sealer: self.sealer.clone(),
        })
    }

    /// Opens (creating if needed) the database `url` names (`sqlite:PATH`, or `sqlite::memory:`)
    /// and applies the migrations.
    pub async fn open(url: &str, sealer: SecretSealer) -> StoreResult<Self> {
        let mut synchronous = SqliteSynchronous::Normal;
        let mut base = url.to_owned();
        if let Some((path, query)) = url.split_once('?') {
            base = path.to_owned();
            for pair in query.split('&') {
                match pair {
                    "synchronous=full" => synchronous = SqliteSynchronous::Full,
                    "synchronous=normal" => synchronous = SqliteSynchronous::Normal,
                    other => {
                        return Err(StoreError::Config(format!(
                        "unknown SQLite URL option {other:?}; supported: synchronous=full|normal"
                    )))
                    }
                }
            }
        }
        let memory = base.contains(":memory:");
        let options = SqliteConnectOptions::from_str(&base)
            .map_err(|e| StoreError::Config(format!("invalid SQLite URL {url:?}: {e}")))?
            .create_if_missing(true)
            .journal_mode(if memory {
                SqliteJournalMode::Memory
            } else {
                SqliteJournalMode::Wal
            })
            .synchronous(synchronous)
            .foreign_keys(true)
            .busy_timeout(Duration::from_secs(10))
            .pragma("cache_size", "-32000");
        let pool = SqlitePoolOptions::new()
            // One connection for an in-memory database: each connection would have its own.
            .max_connections(if memory { 1 } else { 8 })
            .min_connections(1)
            // A database file of this host cannot hang up: sqlx's liveness ping (on by
            // default) was a round trip through the connection's worker thread before every
            // read, for nothing.
            .test_before_acquire(false)
            .connect_with(options)
            .await
            .map_err(db_err)?;
        MIGRATOR
            .run(&pool)
            .await
            .map_err(|e| StoreError::Migrate(e.to_string()))?;
        let sealer = Arc::new(sealer);
        let conn = pool.acquire().await.map_err(db_err)?;
        crate::secrets::resealed(
            Ops {
                conn,
                sealer: sealer.clone(),
            }
            .reseal_credentials()
            .await?,
            &sealer,
        );
        let current: i64 = sqlx::query_scalar("SELECT revision FROM meta WHERE id = 1")
            .fetch_one(&pool)
            .await
            .map_err(db_err)?;
        let (tx, _) = watch::channel(current as u64);
        Ok(SqliteStore {
            sealer,
            pool,
            write_lock: Arc::new(Mutex::new(())),
            revision: Arc::new(tx),
        })
    }
}

/// Reads and writes over any SQLite connection: a pooled one or a transaction.
pub(crate) struct Ops<C> {
    pub(crate) conn: C,
    /// What credentials' secrets are written and read through.
    pub(crate) sealer: Arc<SecretSealer>,
}

impl<C: DerefMut<Target = SqliteConnection> + Send> Ops<C> {
    pub(crate) fn conn(&mut self) -> &mut SqliteConnection {
        &mut self.conn
    }
}

/// The state of a write transaction; `Ops<TxState>` is the [`WriteTx`].
pub(crate) struct TxState {
    pub(crate) tx: Transaction<'static, Sqlite>,
    /// The revision this transaction writes at, taken at its first write.
    pub(crate) revision: Option<i64>,
    pub(crate) feed: Arc<watch::Sender<u64>>,
    pub(crate) _lock: OwnedMutexGuard<()>,
}

impl TxState {
    /// Commits and publishes the revision.
    pub(crate) async fn commit(self) -> StoreResult<u64> {
        self.tx.commit().await.map_err(db_err)?;
        Ok(publish(&self.feed, self.revision))
    }
}

impl std::ops::Deref for TxState {
    type Target = SqliteConnection;
    fn deref(&self) -> &SqliteConnection {
        &self.tx
    }
}

impl DerefMut for TxState {
    fn deref_mut(&mut self) -> &mut SqliteConnection {
        &mut self.tx
    }
}

#[async_trait]
impl Store for SqliteStore {
    async fn read(&self) -> StoreResult<Box<dyn Reads>> {
        Ok(Box::new(self.ops().await?))
    }

    async fn write(&self) -> StoreResult<Box<dyn WriteTx>> {
        let lock = self.write_lock.clone().lock_owned().await;
        let tx = self
            .pool
            .begin_with("BEGIN IMMEDIATE")
            .await
            .map_err(db_err)?;
        Ok(Box::new(Ops {
            sealer: self.sealer.clone(),
            conn: TxState {
                tx,
                revision: None,
                feed: self.revision.clone(),
                _lock: lock,
            },
        }))
    }

    fn revisions(&self) -> watch::Receiver<u64> {
        self.revision.subscribe()
    }

    fn backend(&self) -> &'static str {
        "sqlite"
    }

    async fn agent_data(&self) -> StoreResult<Box<dyn AgentData>> {
        Ok(Box::new(self.ops().await?))
    }

    async fn credential_used(&self, access_key: &str, at: i64) -> StoreResult<()> {
        self.ops().await?.credential_used(access_key, at).await
    }

    async fn use_nonces(&self, uses: &[NonceUse], now: i64) -> StoreResult<Vec<bool>> {
        // Behind the writers' lock, like a transaction: waiting on it costs less than SQLite's
        // busy handler polling for its own.
        let _lock = self.write_lock.lock().await;
        self.ops().await?.use_nonces(uses, now).await
    }

    async fn forget_nonces(&self, now: i64) -> StoreResult<u64> {
        let _lock = self.write_lock.lock().await;
        self.ops().await?.forget_nonces(now).await
    }

    async fn close(&self) {
        self.pool.close().await;
    }
}

#[cfg(test)]
mod tests {
    /// The shared SQL numbers its placeholders (`$N`, PostgreSQL's style): SQLite's driver binds
    /// them by number, also when one repeats or they come out of order.
    #[tokio::test]
    async fn numbered_placeholders_bind_by_number() {
        let store = super::SqliteStore::open(
            "sqlite::memory:",
            crate::SecretSealer::new(crate::MasterKey::generate(), vec![]),
        )
        .await
        .unwrap();
        let row: (String, i64, String, i64) = sqlx::query_as("SELECT $2, $1, $3 || $2, $1")
            .bind(7_i64)
            .bind("b")
            .bind("c")
            .fetch_one(&store.pool)
            .await
            .unwrap();
        assert_eq!(row, ("b".to_owned(), 7, "cb".to_owned(), 7));
    }
}

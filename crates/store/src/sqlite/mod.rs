//! The embedded default back-end: one SQLite file in the data directory, WAL journal.
//!
//! Writers are serialised twice: an in-process async mutex keeps them from busy-waiting on
//! each other, and `BEGIN IMMEDIATE` takes SQLite's write lock at the start of the transaction,
//! so the business rules that run inside it see a stable database. `synchronous = NORMAL` in
//! WAL mode keeps every committed transaction across a crash of the process (`kill -9`); only
//! a power loss can drop the last transactions, and `synchronous = FULL` (option
//! `?synchronous=full` in the URL) closes that too.
//!
//! The Alibaba signature nonces live in a second file beside the database, `<database>-nonces`
//! (see [`nonce_file`]): every signed Alibaba request writes one, and in WAL mode a write makes
//! every other connection to the same file drop its whole page cache at its next read — with
//! the nonces in the database, every describe read its pages again from the operating system.

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
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteConnection, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous,
};
use sqlx::{Sqlite, SqlitePool, Transaction};
use tokio::sync::{watch, Mutex, OwnedMutexGuard};

use crate::connections::Connections;
use crate::shared::publish;
use crate::{AgentData, NonceUse, Reads, SecretSealer, Store, StoreError, StoreResult, WriteTx};
use dialect::D;

/// A connection for reads and bookkeeping, outside any transaction.
pub(crate) type Pooled = crate::connections::Pooled<SqliteConnection>;

/// Where a session's source ports are captured, as the Alibaba session page reads it: for the
/// store suite's check of its plan.
#[doc(hidden)]
pub const SOURCE_CAPTURES_SQL: &str = <D as crate::shared::Dialect>::SOURCE_CAPTURES;

/// The database the shared templates run on.
type Db = Sqlite;

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");

static NONCE_MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite-nonces");

/// The file the Alibaba signature nonces of the database file `database` are kept in.
pub fn nonce_file(database: &str) -> String {
    format!("{database}-nonces")
}

/// The SQLite back-end.
pub struct SqliteStore {
    /// The write transactions' connections (and the migrations').
    pool: SqlitePool,
    /// The reads' and the bookkeeping's.
    reads: Connections<SqliteConnection>,
    /// The nonces' own file, one connection (their group commits come one at a time anyway).
    nonces: Connections<SqliteConnection>,
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
    async fn ops(&self) -> StoreResult<Ops<Pooled>> {
        Ok(Ops {
            conn: self.reads.get().await?,
            sealer: self.sealer.clone(),
        })
    }

    /// The nonces' file's one connection (waiting for it is waiting for the other writer of
    /// nonces on this server, as for a writers' lock).
    async fn nonce_ops(&self) -> StoreResult<Ops<Pooled>> {
        Ok(Ops {
            conn: self.nonces.get().await?,
            sealer: self.sealer.clone(),
        })
    }

    /// Opens (creating if needed) the database file `url` names (`sqlite:PATH`) and applies
    /// the migrations. An in-memory database is refused: it would lose every acknowledged
    /// change at a restart.
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
        if base.contains(":memory:") {
            return Err(StoreError::Config(format!(
                "{url:?} is an in-memory SQLite database, whose data a restart would lose; \
                 name a file (sqlite:PATH)"
            )));
        }
        let options = SqliteConnectOptions::from_str(&base)
            .map_err(|e| StoreError::Config(format!("invalid SQLite URL {url:?}: {e}")))?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(synchronous)
            .foreign_keys(true)
            .busy_timeout(Duration::from_secs(10))
            .pragma("cache_size", "-32000");
        let database = options.get_filename().to_string_lossy().into_owned();
        if database.is_empty() {
            // SQLite would open a private temporary database per connection.
            return Err(StoreError::Config(format!(
                "{url:?} names no database file; name one (sqlite:PATH)"
            )));
        }
        let nonce_options = options
            .clone()
            .filename(nonce_file(&database))
            .foreign_keys(false);
        // A database file of this host cannot hang up: its connections are never checked.
        let reads = Connections::new(options.clone(), 8, None, db_err)?;
        let pool = SqlitePoolOptions::new()
            // The writers take turns (`write_lock`): one connection for the transaction in
            // progress, one for a transaction being handed back meanwhile.
            .max_connections(2)
            .min_connections(1)
            // A database file of this host cannot hang up: sqlx's liveness ping (on by
            // default) was a round trip through the connection's worker thread before every
            // transaction, for nothing.
            .test_before_acquire(false)
            .connect_with(options)
            .await
            .map_err(db_err)?;
        // The nonces' file is brought up to date on a pool of its own for the while (sqlx's
        // migrator takes a pool), and used through `Connections` afterwards.
        let opening = SqlitePoolOptions::new()
            .max_connections(1)
            .connect_with(nonce_options.clone())
            .await
            .map_err(db_err)?;
        NONCE_MIGRATOR
            .run(&opening)
            .await
            .map_err(|e| StoreError::Migrate(e.to_string()))?;
        move_nonces(&pool, &opening).await?;
        opening.close().await;
        let nonces = Connections::new(nonce_options, 1, None, db_err)?;
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
            reads,
            nonces,
            write_lock: Arc::new(Mutex::new(())),
            revision: Arc::new(tx),
        })
    }
}

/// Copies the nonces a database from before the nonces' own file still holds, and that have
/// not expired, into that file (the migration that follows drops their table). Done again
/// from the start if interrupted: a nonce copied twice keeps its later expiry.
async fn move_nonces(database: &SqlitePool, nonces: &SqlitePool) -> StoreResult<()> {
    let left: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = 'aliyun_nonces'",
    )
    .fetch_one(database)
    .await
    .map_err(db_err)?;
    if left == 0 {
        return Ok(());
    }
    let mut after = 0_i64;
    loop {
        let rows: Vec<(i64, String, String, i64)> = sqlx::query_as(
            "SELECT rowid, access_key, nonce, expires_at FROM aliyun_nonces \
             WHERE rowid > $1 AND expires_at >= $2 ORDER BY rowid LIMIT 256",
        )
        .bind(after)
        .bind(tmirror_model::Timestamp::now().0)
        .fetch_all(database)
        .await
        .map_err(db_err)?;
        let Some(last) = rows.last() else {
            return Ok(());
        };
        after = last.0;
        let mut insert = sqlx::QueryBuilder::<Sqlite>::new(
            "INSERT INTO aliyun_nonces (access_key, nonce, expires_at) ",
        );
        insert.push_values(rows, |mut row, (_, key, nonce, expires_at)| {
            row.push_bind(key).push_bind(nonce).push_bind(expires_at);
        });
        insert.push(
            " ON CONFLICT (access_key, nonce) DO UPDATE \
             SET expires_at = max(expires_at, excluded.expires_at)",
        );
        insert.build().execute(nonces).await.map_err(db_err)?;
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
        self.nonce_ops().await?.use_nonces(uses, now).await
    }

    async fn forget_nonces(&self, now: i64) -> StoreResult<u64> {
        self.nonce_ops().await?.forget_nonces(now).await
    }

    async fn close(&self) {
        self.reads.close().await;
        self.nonces.close().await;
        self.pool.close().await;
    }
}

#[cfg(test)]
mod tests {
    /// The shared SQL numbers its placeholders (`$N`, PostgreSQL's style): SQLite's driver binds
    /// them by number, also when one repeats or they come out of order.
    #[tokio::test]
    async fn numbered_placeholders_bind_by_number() {
        let dir = tempfile::tempdir().unwrap();
        let store = super::SqliteStore::open(
            &format!("sqlite:{}", dir.path().join("t.db").display()),
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

    /// The bundled SQLite is built as `.cargo/config.toml` asks (docs/performance.md): no
    /// allocation statistics, whose global mutex every allocation took.
    #[tokio::test]
    async fn sqlite_is_built_without_allocation_statistics() {
        use sqlx::Connection;
        let mut conn = sqlx::SqliteConnection::connect("sqlite::memory:")
            .await
            .unwrap();
        let options: Vec<String> = sqlx::query_scalar("PRAGMA compile_options")
            .fetch_all(&mut conn)
            .await
            .unwrap();
        assert!(
            options.iter().any(|o| o == "DEFAULT_MEMSTATUS=0"),
            "LIBSQLITE3_FLAGS did not reach libsqlite3-sys's build: {options:?}"
        );
    }
}

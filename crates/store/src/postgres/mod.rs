//! The back-end for several servers: one PostgreSQL database shared by every `tmirror serve`.
//!
//! - **Writes.** A write transaction runs `SERIALIZABLE` and, as its first statement, takes
//!   `LOCK TABLE meta IN EXCLUSIVE MODE`. Every write transaction bumps the one global
//!   revision in `meta`, so any two of them conflict anyway; queueing them on the lock (in the
//!   database, so across servers) beats letting them run and then failing all but one with a
//!   serialisation error. `LOCK TABLE` takes no snapshot, so the snapshot of the transaction
//!   is taken after the lock is granted and sees every earlier commit: the business rules the
//!   service layer checks inside the transaction hold across servers exactly as on SQLite.
//!   Plain reads and the agents' bookkeeping do not take the lock. A transaction that still
//!   fails to serialise (SQLSTATE 40001) or deadlocks (40P01) gives [`StoreError::Retry`], which
//!   the service layer runs again.
//! - **Revision feed.** A committing write transaction sends `pg_notify('tmirror_revision',
//!   <revision>)`; PostgreSQL delivers it on commit, in commit order, to every server. A
//!   listener task per store follows the channel on its own connection; whenever it
//!   (re)subscribes it reads the current revision, so a change committed while it was
//!   disconnected is not missed. Local commits are published at once as well.
//! - **Migrations** (`migrations/postgres/`) run at open under sqlx's migrator, which holds
//!   `pg_advisory_lock` (keyed by the database name) for the whole run, on a connection of
//!   its own that is closed afterwards, so that servers starting together apply them once.

mod dialect;
mod feed;

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
use sqlx::postgres::{PgConnectOptions, PgConnection, PgPool, PgPoolOptions};
use sqlx::{ConnectOptions, Connection, Postgres, Transaction};
use tokio::sync::watch;

use crate::connections::Connections;
use crate::shared::publish;
use crate::{AgentData, NonceUse, Reads, SecretSealer, Store, StoreError, StoreResult, WriteTx};
use dialect::D;
use feed::{follow, read_revision, subscribe};

/// The database the shared templates run on.
type Db = Postgres;

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/postgres");

/// The channel write transactions notify their revision on.
pub const REVISION_CHANNEL: &str = "tmirror_revision";

/// Where a session's source ports are captured, as the Alibaba session page reads it: for the
/// store suite's check of its plan.
#[doc(hidden)]
pub const SOURCE_CAPTURES_SQL: &str = <D as crate::shared::Dialect>::SOURCE_CAPTURES;

/// How long a statement waits for a lock (the write lock above all) before it gives up.
const LOCK_TIMEOUT: &str = "2s";

/// Connections of one server for reads and bookkeeping.
const READERS: usize = 10;

/// Connections of one server for write transactions (they queue for the write lock anyway; the
/// listener has one more of its own).
const WRITERS: u32 = 4;

/// How long a pooled connection may have been idle and still be handed out unchecked.
const TRUSTED_IDLE: Duration = Duration::from_secs(1);

/// The PostgreSQL back-end.
pub struct PgStore {
    /// The write transactions' connections (and the revision feed's reads).
    pool: PgPool,
    /// The reads' and the bookkeeping's.
    reads: Connections<PgConnection>,
    revision: Arc<watch::Sender<u64>>,
    sealer: Arc<SecretSealer>,
    listener: tokio::task::JoinHandle<()>,
}

pub(crate) fn unique_name(message: &str) -> &'static str {
    // PostgreSQL names the constraint: `duplicate key value violates unique constraint "rules_priority"`.
    if message.contains("\"sessions_priority\"") {
        "sessions_priority"
    } else if message.contains("\"rules_priority\"") {
        "rules_priority"
    } else if message.contains("\"session_sources_pkey\"") {
        "session_sources"
    } else if message.contains("\"eips_address_key\"") {
        "eips_address"
    } else if message.contains("\"session_eip_sources_pkey\"") {
        "session_sources"
    } else if message.contains("\"port_addresses_network_address\"") {
        "port_address"
    } else {
        "id"
    }
}

pub(crate) fn db_err(e: sqlx::Error) -> StoreError {
    StoreError::from_sqlx(e, unique_name)
}

/// The URL without its password, for messages.
fn redacted(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            let userinfo = &url[scheme + 3..at];
            match userinfo.split_once(':') {
                Some((user, _)) => format!("{}{user}:***{}", &url[..scheme + 3], &url[at..]),
                None => url.to_owned(),
            }
        }
        _ => url.to_owned(),
    }
}

/// A connection for reads and bookkeeping, outside any transaction.
pub(crate) type Pooled = crate::connections::Pooled<PgConnection>;

impl PgStore {
    /// Reads and bookkeeping on a pooled connection, outside any transaction.
    async fn ops(&self) -> StoreResult<Ops<Pooled>> {
        Ok(Ops {
            conn: self.reads.get().await?,
            sealer: self.sealer.clone(),
        })
    }

    /// Connects to the database `url` names (`postgres://` or `postgresql://`), applies the
    /// migrations under the migration lock and starts following the revision channel.
    pub async fn open(url: &str, sealer: SecretSealer) -> StoreResult<Self> {
        let options = PgConnectOptions::from_str(url)
            .map_err(|e| {
                StoreError::Config(format!("invalid PostgreSQL URL {}: {e}", redacted(url)))
            })?
            // A server that stops answering in the middle of a write transaction (hung, not
            // killed: a killed one's connections close at once) must not hold the write lock
            // for ever.
            .options([
                ("idle_in_transaction_session_timeout", "60s"),
                // A write waits this long for the write lock, then gives up (SQLSTATE 55P03,
                // `StoreError::Retry`): the service tries again within its retry window and
                // otherwise answers "retry" rather than leaving the client hanging.
                ("lock_timeout", LOCK_TIMEOUT),
            ])
            .application_name("tmirror")
            .log_statements(tracing::log::LevelFilter::Trace);
        let unreachable = |e: sqlx::Error| {
            StoreError::Config(format!(
                "cannot connect to PostgreSQL at {}: {e}",
                redacted(url)
            ))
        };
        // One plain connection first: a pool would retry an unreachable server until its
        // acquire timeout, and the operator wants the reason now.
        let probe = options.connect().await.map_err(unreachable)?;
        let _ = probe.close().await;
        // Migrations on a connection of their own, closed afterwards: the advisory lock the
        // migrator holds goes with it, even if a migration fails half-way.
        let migrating = PgPoolOptions::new()
            .max_connections(1)
            .acquire_timeout(Duration::from_secs(10))
            .connect_with(options.clone())
            .await
            .map_err(unreachable)?;
        let migrated = MIGRATOR.run(&migrating).await;
        migrating.close().await;
        migrated.map_err(|e| StoreError::Migrate(e.to_string()))?;
        // Reads are not sqlx's: its pool pings every connection handed back to it, one more
        // round trip to the server per read (see `crate::connections`). A connection idle
        // for longer than TRUSTED_IDLE is pinged before it is handed out, as below.
        let reads = Connections::new(options.clone(), READERS, Some(TRUSTED_IDLE), db_err)?;
        let pool = PgPoolOptions::new()
            .max_connections(WRITERS)
            .acquire_timeout(Duration::from_secs(10))
            // sqlx pings every connection it hands out: a round trip to the server before each
            // write transaction. A connection that answered a moment ago is taken on trust; one idle longer
            // is pinged, and closed if it does not answer (the server restarted, a proxy
            // dropped it), so the caller gets another.
            .test_before_acquire(false)
            .before_acquire(|conn, meta| {
                Box::pin(async move {
                    if meta.idle_for >= TRUSTED_IDLE {
                        conn.ping().await?;
                    }
                    Ok(true)
                })
            })
            .connect_with(options.clone())
            .await
            .map_err(unreachable)?;
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
        let current = read_revision(&pool).await.map_err(db_err)?;
        let (tx, _) = watch::channel(current);
        let revision = Arc::new(tx);
        let listen_pool = PgPoolOptions::new()
            .max_connections(1)
            .acquire_timeout(Duration::from_secs(10))
            .connect_lazy_with(options);
        // Subscribed before `open` returns, so no commit after it is missed.
        let first = subscribe(&pool, &listen_pool, &revision)
            .await
            .map_err(unreachable)?;
        let listener = tokio::spawn(follow(pool.clone(), listen_pool, revision.clone(), first));
        Ok(PgStore {
            sealer,
            pool,
            reads,
            revision,
            listener,
        })
    }
}

impl Drop for PgStore {
    fn drop(&mut self) {
        self.listener.abort();
    }
}

/// Reads and writes over any PostgreSQL connection: a pooled one or a transaction.
pub(crate) struct Ops<C> {
    pub(crate) conn: C,
    /// What credentials' secrets are written and read through.
    pub(crate) sealer: Arc<SecretSealer>,
}

impl<C: DerefMut<Target = PgConnection> + Send> Ops<C> {
    pub(crate) fn conn(&mut self) -> &mut PgConnection {
        &mut self.conn
    }
}

/// The state of a write transaction; `Ops<TxState>` is the [`WriteTx`].
pub(crate) struct TxState {
    pub(crate) tx: Transaction<'static, Postgres>,
    /// The revision this transaction writes at, taken at its first write.
    pub(crate) revision: Option<i64>,
    pub(crate) feed: Arc<watch::Sender<u64>>,
}

impl TxState {
    /// Notifies the revision channel, commits and publishes the revision.
    pub(crate) async fn commit(mut self) -> StoreResult<u64> {
        if let Some(r) = self.revision {
            // Delivered to every listening server when (and only if) the transaction commits.
            sqlx::query("SELECT pg_notify($1, $2)")
                .bind(REVISION_CHANNEL)
                .bind(r.to_string())
                .execute(&mut *self.tx)
                .await
                .map_err(db_err)?;
        }
        self.tx.commit().await.map_err(db_err)?;
        Ok(publish(&self.feed, self.revision))
    }
}

impl std::ops::Deref for TxState {
    type Target = PgConnection;
    fn deref(&self) -> &PgConnection {
        &self.tx
    }
}

impl DerefMut for TxState {
    fn deref_mut(&mut self) -> &mut PgConnection {
        &mut self.tx
    }
}

#[async_trait]
impl Store for PgStore {
    async fn read(&self) -> StoreResult<Box<dyn Reads>> {
        Ok(Box::new(self.ops().await?))
    }

    async fn write(&self) -> StoreResult<Box<dyn WriteTx>> {
        let mut tx = self
            .pool
            .begin_with("BEGIN ISOLATION LEVEL SERIALIZABLE")
            .await
            .map_err(db_err)?;
        // Before any query: the snapshot is taken once the lock is ours (see the module docs).
        sqlx::query("LOCK TABLE meta IN EXCLUSIVE MODE")
            .execute(&mut *tx)
            .await
            .map_err(db_err)?;
        Ok(Box::new(Ops {
            sealer: self.sealer.clone(),
            conn: TxState {
                tx,
                revision: None,
                feed: self.revision.clone(),
            },
        }))
    }

    fn revisions(&self) -> watch::Receiver<u64> {
        self.revision.subscribe()
    }

    fn backend(&self) -> &'static str {
        "postgres"
    }

    async fn agent_data(&self) -> StoreResult<Box<dyn AgentData>> {
        Ok(Box::new(self.ops().await?))
    }

    async fn credential_used(&self, access_key: &str, at: i64) -> StoreResult<()> {
        self.ops().await?.credential_used(access_key, at).await
    }

    async fn use_nonces(&self, uses: &[NonceUse], now: i64) -> StoreResult<Vec<bool>> {
        // No meta lock: the unique key decides between servers inserting the same nonce.
        self.ops().await?.use_nonces(uses, now).await
    }

    async fn forget_nonces(&self, now: i64) -> StoreResult<u64> {
        self.ops().await?.forget_nonces(now).await
    }

    async fn close(&self) {
        self.listener.abort();
        self.reads.close().await;
        self.pool.close().await;
    }
}

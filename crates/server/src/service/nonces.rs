//! Alibaba signature nonces, recorded in group commits.
//!
//! Every HMAC-SHA1 or ACS3 request uses up its nonce in the database before it is answered
//! (replay protection that survives a restart and holds across servers sharing PostgreSQL).
//! The requests that arrive while a batch is being recorded wait for the next one, which
//! records all of their nonces in one statement, outside any write transaction: a nonce is
//! bookkeeping, not a change, and needs neither a revision nor PostgreSQL's writers' lock
//! (docs/performance.md, "Storage at scale"). Expired nonces are forgotten in the
//! background, at most every [`SWEEP_EVERY`] seconds per server and only those expired for
//! [`SWEEP_MARGIN`]; until then an expired use is simply taken over by a new one.
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::Instant;

use futures::FutureExt as _;

use tmirror_store::{NonceUse, Store, StoreError};
use tokio::sync::{mpsc, oneshot};

use super::{Service, ServiceError, ServiceResult};

/// At most this many nonces go into one batch, recorded by one statement (a bounded write; the
/// rest wait for the next one): a batch that fails recorded none of its nonces, so it can be
/// retried whole.
const BATCH: usize = tmirror_store::NONCES_PER_STATEMENT;

/// How often (seconds) a server forgets the expired nonces.
const SWEEP_EVERY: i64 = 60;

/// How long (seconds) past its expiry a nonce is kept. A request checked its timestamp against
/// its own clock and may wait seconds before its batch is recorded (a batch retrying, a busy
/// pool), and servers' clocks differ; a use swept before such a replay is recorded would let
/// the replay through. Five minutes covers both with room; the upsert takes over an expired
/// use meanwhile, so keeping it longer costs only table space.
const SWEEP_MARGIN: i64 = 300;

/// One request's nonce and where its answer goes.
struct Ask {
    access_key: String,
    nonce: String,
    expires_at: i64,
    now: i64,
    answer: oneshot::Sender<ServiceResult<bool>>,
}

/// The queue of the server's nonce committer: one task that records whatever nonces are
/// queued, in one statement, while the next ones queue up behind it. A task of its own, fed by
/// a channel, rather than a lock the waiting requests pass from one to the next: each request
/// is woken once, by its answer (docs/performance.md, "The nonce committer").
pub(super) struct NonceBatches {
    queue: mpsc::UnboundedSender<Ask>,
}

impl NonceBatches {
    /// Starts the committer over `store` (it ends when the service is dropped).
    pub fn start(store: Arc<dyn Store>) -> Self {
        let (queue, asks) = mpsc::unbounded_channel();
        tokio::spawn(commit_as_they_come(store, asks));
        NonceBatches { queue }
    }
}

impl Service {
    /// Records a signature nonce of `access_key` until `expires_at` (Unix seconds); false if
    /// the key used it already within its window. Answered once the statement that records
    /// it has committed.
    pub async fn use_nonce(
        &self,
        access_key: &str,
        nonce: &str,
        expires_at: i64,
        now: i64,
    ) -> ServiceResult<bool> {
        let (answer, answered) = oneshot::channel();
        let ask = Ask {
            access_key: access_key.to_owned(),
            nonce: nonce.to_owned(),
            expires_at,
            now,
            answer,
        };
        // A request dropped while it waits leaves its nonce queued: it is recorded all the
        // same (a correctly signed request spent it), and nobody waits for the answer.
        if self.nonces.queue.send(ask).is_err() {
            return Err(ServiceError::Busy);
        }
        answered.await.unwrap_or(Err(ServiceError::Busy))
    }
}

/// The committer: takes every nonce queued (up to [`BATCH`]), records them, answers them, and
/// forgets the expired ones when due.
async fn commit_as_they_come(store: Arc<dyn Store>, mut asks: mpsc::UnboundedReceiver<Ask>) {
    let mut next_sweep = 0;
    let mut batch = Vec::new();
    while asks.recv_many(&mut batch, BATCH).await > 0 {
        // The first ask woke the committer; the requests already running on this worker
        // thread would queue theirs a moment later. Letting them run first (one yield) made
        // the batches twice as large under load (5 -> 11 nonces at 32 clients), so fewer
        // commits (docs/performance.md); idle, it costs one more turn of the event loop.
        tokio::task::yield_now().await;
        while batch.len() < BATCH {
            match asks.try_recv() {
                Ok(ask) => batch.push(ask),
                Err(_) => break,
            }
        }
        // A panic must not end the committer: every later request would be refused until a
        // restart, with the health check none the wiser. The batch's asks are dropped with
        // it, so their requests are answered as retryable.
        let commit = AssertUnwindSafe(commit_nonces(&*store, std::mem::take(&mut batch)));
        if commit.catch_unwind().await.is_err() {
            tracing::error!("recording a batch of signature nonces panicked; its requests were answered as retryable");
        }
        let now = tmirror_model::Timestamp::now().0;
        if now >= next_sweep {
            next_sweep = now + SWEEP_EVERY;
            // Beside the commits, not in their way.
            tokio::spawn(forget_expired_nonces(store.clone(), now));
        }
    }
}

/// Records the nonces of `batch` in one statement (retried while the store is busy) and answers
/// each ask; a nonce asked twice in the batch is fresh for the first ask only.
async fn commit_nonces(store: &dyn Store, batch: Vec<Ask>) {
    let uses: Vec<NonceUse> = batch
        .iter()
        .map(|a| NonceUse {
            access_key: a.access_key.clone(),
            nonce: a.nonce.clone(),
            expires_at: a.expires_at,
        })
        .collect();
    // An expired use is taken over as of the earliest ask's clock (taking over less is
    // safe).
    let now = batch.iter().map(|a| a.now).min().unwrap_or_default();
    let started = Instant::now();
    let mut attempt = 0;
    let outcome = loop {
        attempt += 1;
        match store.use_nonces(&uses, now).await {
            Err(StoreError::Retry) if Service::retry_again(attempt, started) => continue,
            other => break other.map_err(ServiceError::from),
        }
    };
    match outcome {
        Ok(fresh) => {
            for (ask, fresh) in batch.into_iter().zip(fresh) {
                let _ = ask.answer.send(Ok(fresh));
            }
        }
        Err(e) => {
            // One error for the whole batch; the first ask gets it as it is, the others
            // as retryable (nothing of the batch was recorded).
            let mut e = Some(e);
            for ask in batch {
                let _ = ask.answer.send(Err(e.take().unwrap_or(ServiceError::Busy)));
            }
        }
    }
}

/// Forgets the nonces expired for [`SWEEP_MARGIN`] (at most every [`SWEEP_EVERY`] seconds per
/// server). A failure is only logged: the rows stay until the next sweep, and an expired use
/// never counts.
async fn forget_expired_nonces(store: Arc<dyn Store>, now: i64) {
    match store.forget_nonces(now - SWEEP_MARGIN).await {
        Ok(n) => tracing::debug!(forgotten = n, "expired Alibaba signature nonces forgotten"),
        Err(e) => tracing::warn!(error = %e, "could not forget expired signature nonces"),
    }
}

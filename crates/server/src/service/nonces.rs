//! Alibaba signature nonces, recorded in group commits.
//!
//! Every HMAC-SHA1 or ACS3 request uses up its nonce in the database before it is answered
//! (replay protection that survives a restart and holds across servers sharing PostgreSQL).
//! One write transaction per request put every Alibaba read behind the write lock once
//! (docs/performance.md, "Storage at scale"). Here the
//! requests that arrive while a commit is under way wait for the next one, which records all
//! of their nonces in one transaction: the same rows, committed before any of them is
//! answered, in a fraction of the transactions.

use std::sync::{Arc, Mutex as SyncMutex};

use tmirror_store::NonceUse;
use tokio::sync::{oneshot, Mutex};

use super::{Service, ServiceError, ServiceResult};

/// At most this many nonces go into one transaction (a bounded write; the rest wait for the
/// next one).
const BATCH: usize = 256;

/// One request's nonce and where its answer goes.
struct Ask {
    access_key: String,
    nonce: String,
    expires_at: i64,
    now: i64,
    answer: oneshot::Sender<ServiceResult<bool>>,
}

/// The nonces waiting for a commit, and the right to run one.
#[derive(Default)]
pub(super) struct NonceBatches {
    waiting: SyncMutex<Vec<Ask>>,
    committer: Arc<Mutex<()>>,
}

impl Service {
    /// Records a signature nonce of `access_key` until `expires_at` (Unix seconds) and forgets
    /// the expired ones; false if the key used it already within its window. Answered once
    /// the transaction that holds it has committed.
    pub async fn use_nonce(
        &self,
        access_key: &str,
        nonce: &str,
        expires_at: i64,
        now: i64,
    ) -> ServiceResult<bool> {
        let (answer, mut answered) = oneshot::channel();
        self.nonces.waiting.lock().expect("not poisoned").push(Ask {
            access_key: access_key.to_owned(),
            nonce: nonce.to_owned(),
            expires_at,
            now,
            answer,
        });
        // Whoever holds the committer's lock commits every nonce queued by then and answers
        // them before letting go; so once we hold it, ours is either answered or still queued.
        let held = self.nonces.committer.clone().lock_owned().await;
        if let Ok(done) = answered.try_recv() {
            return done;
        }
        let queued: Vec<Ask> =
            std::mem::take(&mut *self.nonces.waiting.lock().expect("not poisoned"));
        // In a task of its own: a request dropped half-way (its client gone) must not leave
        // the others of its batch unanswered, nor the lock held.
        let service = self.clone();
        tokio::spawn(async move {
            let mut queued = queued.into_iter().peekable();
            while queued.peek().is_some() {
                service
                    .commit_nonces(queued.by_ref().take(BATCH).collect())
                    .await;
            }
            drop(held);
        });
        // The task answers every ask it took, ours included.
        answered.await.unwrap_or(Err(ServiceError::Busy))
    }

    /// Records the nonces of `batch` in one transaction (retried like any write) and answers
    /// each ask; a nonce asked twice in the batch is fresh for the first ask only.
    async fn commit_nonces(&self, batch: Vec<Ask>) {
        let uses: Vec<NonceUse> = batch
            .iter()
            .map(|a| NonceUse {
                access_key: a.access_key.clone(),
                nonce: a.nonce.clone(),
                expires_at: a.expires_at,
            })
            .collect();
        // Expired nonces are forgotten as of the earliest ask's clock (forgetting less is safe).
        let now = batch.iter().map(|a| a.now).min().unwrap_or_default();
        let outcome = self
            .transact(|tx| {
                let uses = uses.clone();
                Box::pin(async move { Ok(tx.aliyun_use_nonces(&uses, now).await?) })
            })
            .await;
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
}

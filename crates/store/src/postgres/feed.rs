//! The revision feed across servers: a listener on the revision channel that raises the
//! store's feed to every revision committed on the database (see the module docs of
//! `crate::postgres`).

use std::sync::Arc;
use std::time::Duration;

use sqlx::postgres::{PgListener, PgPool};
use tokio::sync::watch;
use tracing::{debug, warn};

use super::REVISION_CHANNEL;
use crate::shared::advance;

pub(super) async fn read_revision(pool: &PgPool) -> Result<u64, sqlx::Error> {
    let r: i64 = sqlx::query_scalar("SELECT revision FROM meta WHERE id = 1")
        .fetch_one(pool)
        .await?;
    Ok(r as u64)
}

/// LISTENs on the revision channel, then reads the current revision (in that order, so a
/// commit is either notified or already counted).
pub(super) async fn subscribe(
    pool: &PgPool,
    listen_pool: &PgPool,
    feed: &watch::Sender<u64>,
) -> Result<PgListener, sqlx::Error> {
    let mut listener = PgListener::connect_with(listen_pool).await?;
    // Reconnection is ours (below), so that it is always followed by a re-read.
    listener.eager_reconnect(false);
    listener.ignore_pool_close_event(true);
    listener.listen(REVISION_CHANNEL).await?;
    advance(feed, read_revision(pool).await?);
    Ok(listener)
}

/// Follows the revision channel for the life of the store, re-subscribing whenever the
/// connection is lost.
pub(super) async fn follow(
    pool: PgPool,
    listen_pool: PgPool,
    feed: Arc<watch::Sender<u64>>,
    first: PgListener,
) {
    let mut listener = Some(first);
    let mut backoff = Duration::from_millis(100);
    loop {
        let mut l = match listener.take() {
            Some(l) => l,
            None => match subscribe(&pool, &listen_pool, &feed).await {
                Ok(l) => {
                    debug!("revision channel: subscribed again");
                    backoff = Duration::from_millis(100);
                    l
                }
                Err(e) => {
                    warn!(error = %e, "revision channel: cannot subscribe; retrying");
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(Duration::from_secs(5));
                    continue;
                }
            },
        };
        loop {
            match l.try_recv().await {
                Ok(Some(n)) => match n.payload().parse::<u64>() {
                    Ok(r) => advance(&feed, r),
                    Err(_) => warn!(payload = n.payload(), "revision channel: not a revision"),
                },
                Ok(None) => {
                    warn!("revision channel: connection lost; subscribing again");
                    break;
                }
                Err(e) => {
                    warn!(error = %e, "revision channel: receive failed; subscribing again");
                    break;
                }
            }
        }
    }
}

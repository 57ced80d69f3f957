//! Authentication of face requests with the clouds' AK/SK signatures, and of agents with
//! their hosts' tokens.
//!
//! A credential belongs to one project and has one role. Credentials and host tokens are
//! looked up in the store and cached; the cache follows the store's change feed and drops
//! everything it holds as soon as the auth revision moves (a credential or host created,
//! disabled, enabled or deleted on any server), so a revoked key stops working everywhere
//! within the feed's delay. A lookup made after the feed moved, before the follower caught up,
//! checks the auth revision itself first: a server answers its own writes at once (an enabled
//! key works, a disabled one is refused, on the next request). Unknown keys are not cached:
//! each costs one indexed read.

pub mod aliyun;
pub mod huawei;

use std::collections::HashMap;
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use sha2::{Digest, Sha256};
use tmirror_model::{Actor, Host, ProjectId, Role, Timestamp};
use tmirror_store::{Credential, Store, StoreResult};
use tracing::{debug, warn};

/// Who is calling: the project and role of the credential that signed the request.
#[derive(Clone, Debug)]
pub struct Caller {
    pub project: ProjectId,
    pub role: Role,
    pub access_key: String,
}

impl Caller {
    pub fn of(credential: &Credential) -> Caller {
        Caller {
            project: credential.project_id.clone(),
            role: credential.role,
            access_key: credential.access_key.clone(),
        }
    }

    /// The caller as the service sees it.
    pub fn actor(&self) -> Actor {
        Actor::new(self.project.clone(), self.role)
    }
}

/// How often at most a credential's last use is written.
const LAST_USE_INTERVAL: i64 = 60;

/// The hex SHA-256 of a host token: what the store keeps instead of the token.
pub fn token_hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

#[derive(Default)]
struct Known {
    /// The auth revision the entries were read at.
    revision: u64,
    /// The store revision (the feed's value) up to which `revision` is known to be current.
    checked: u64,
    credentials: HashMap<String, Credential>,
    /// Token hash → host.
    hosts: HashMap<String, Host>,
}

/// Access key → credential and host token → host, backed by the store.
pub struct CredentialCache {
    store: Arc<dyn Store>,
    /// The store's revision feed: moved by every commit, here or (PostgreSQL) on another server.
    feed: tokio::sync::watch::Receiver<u64>,
    known: RwLock<Known>,
    /// Access key → when its last use was written (Unix seconds).
    noted: Mutex<HashMap<String, i64>>,
}

impl CredentialCache {
    /// A cache that follows the store's change feed for as long as it lives.
    pub async fn start(store: Arc<dyn Store>) -> StoreResult<Arc<Self>> {
        let feed = store.revisions();
        let checked = *feed.borrow();
        let revision = store.read().await?.auth_revision().await?;
        let cache = Arc::new(CredentialCache {
            store: store.clone(),
            feed,
            known: RwLock::new(Known {
                revision,
                checked,
                ..Known::default()
            }),
            noted: Mutex::new(HashMap::new()),
        });
        tokio::spawn(follow(Arc::downgrade(&cache), store.revisions()));
        Ok(cache)
    }

    /// The enabled credential with this access key, if there is one.
    pub async fn get(&self, access_key: &str) -> StoreResult<Option<Credential>> {
        self.catch_up().await?;
        let cached = self.read().credentials.get(access_key).cloned();
        let found = match cached {
            Some(c) => Some(c),
            None => {
                let (found, revision) = self
                    .load(|r, key| Box::pin(r.credential(key)), access_key)
                    .await?;
                if let Some(c) = &found {
                    self.keep(revision, |k| {
                        k.credentials.insert(access_key.to_owned(), c.clone());
                    });
                }
                found
            }
        };
        Ok(found.filter(|c| c.enabled))
    }

    /// The enabled host whose token this is, if there is one.
    pub async fn host(&self, token: &str) -> StoreResult<Option<Host>> {
        self.catch_up().await?;
        let hash = token_hash(token);
        let cached = self.read().hosts.get(&hash).cloned();
        let found = match cached {
            Some(h) => Some(h),
            None => {
                let (found, revision) = self
                    .load(|r, key| Box::pin(r.host_by_token_hash(key)), &hash)
                    .await?;
                if let Some(h) = &found {
                    self.keep(revision, |k| {
                        k.hosts.insert(hash.clone(), h.clone());
                    });
                }
                found
            }
        };
        Ok(found.filter(|h| h.enabled))
    }

    /// Whether `host` (as authenticated earlier) is still enabled with the same token, read
    /// from the store past the cache: a long-poll asks this each time it wakes, so that a host
    /// disabled, rotated or deleted while its poll was open gets nothing more.
    pub async fn host_still_valid(&self, host: &Host) -> StoreResult<bool> {
        let now = self
            .store
            .read()
            .await?
            .host_by_token_hash(&host.token_hash)
            .await?;
        Ok(now.is_some_and(|h| h.enabled && h.host_id == host.host_id))
    }

    /// Notes that `credential` signed a request now; writes it to the store at most once a
    /// minute per key, in the background (bookkeeping must not slow the request).
    pub fn used(&self, credential: &Credential) {
        let now = Timestamp::now().0;
        {
            let mut noted = self.noted.lock().expect("last-use map poisoned");
            let last = noted
                .get(&credential.access_key)
                .copied()
                .or(credential.last_used_at);
            if last.is_some_and(|t| now - t < LAST_USE_INTERVAL) {
                return;
            }
            noted.insert(credential.access_key.clone(), now);
        }
        let store = self.store.clone();
        let key = credential.access_key.clone();
        tokio::spawn(async move {
            if let Err(e) = store.credential_used(&key, now).await {
                debug!(error = %e, "cannot record a credential's last use");
            }
        });
    }

    /// If a commit came since the auth revision was last checked (the follower has not caught
    /// up yet), checks it now, so that no entry older than that commit is used.
    async fn catch_up(&self) -> StoreResult<()> {
        let latest = *self.feed.borrow();
        if latest <= self.read().checked {
            return Ok(());
        }
        let revision = self.store.read().await?.auth_revision().await?;
        self.moved_to(revision, latest);
        Ok(())
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, Known> {
        self.known.read().expect("credential cache poisoned")
    }

    /// Reads one record and the auth revision in one read: an entry is kept only if no change
    /// came between (see [`CredentialCache::keep`]).
    async fn load<T>(
        &self,
        get: impl for<'a> FnOnce(
            &'a mut dyn tmirror_store::Reads,
            &'a str,
        ) -> futures::future::BoxFuture<'a, StoreResult<Option<T>>>,
        key: &str,
    ) -> StoreResult<(Option<T>, u64)> {
        let mut r = self.store.read().await?;
        let revision = r.auth_revision().await?;
        let found = get(r.as_mut(), key).await?;
        Ok((found, revision))
    }

    /// Keeps an entry read at `revision` unless the cache has moved past it.
    fn keep(&self, revision: u64, put: impl FnOnce(&mut Known)) {
        let mut known = self.known.write().expect("credential cache poisoned");
        if known.revision == revision {
            put(&mut known);
        }
    }

    /// Drops every entry if the auth revision moved forward; `revision` was read after the
    /// commit of store revision `checked`. Revisions only grow, so an older one is a late read
    /// (the follower's, overtaken by a lookup's catch-up) and must not take the cache back to
    /// a revision whose entries a slow lookup could still keep; `u64::MAX` (unknown, after a
    /// failed read) gives way to any revision read afterwards.
    fn moved_to(&self, revision: u64, checked: u64) {
        let mut known = self.known.write().expect("credential cache poisoned");
        let forward = revision > known.revision || known.revision == u64::MAX;
        if revision != known.revision && forward {
            debug!(revision, "credentials changed: cache cleared");
            *known = Known {
                revision,
                checked: known.checked,
                ..Known::default()
            };
        }
        known.checked = known.checked.max(checked);
    }
}

/// Follows the revision feed: after each commit (on any server) reads the auth revision.
async fn follow(
    cache: std::sync::Weak<CredentialCache>,
    mut feed: tokio::sync::watch::Receiver<u64>,
) {
    while feed.changed().await.is_ok() {
        let latest = *feed.borrow_and_update();
        let Some(cache) = cache.upgrade() else { return };
        let revision = async { cache.store.read().await?.auth_revision().await }.await;
        match revision {
            Ok(r) => cache.moved_to(r, latest),
            Err(e) => {
                // Unsure what changed: forget everything and look again on the next commit.
                warn!(error = %e, "cannot read the auth revision; credential cache cleared");
                cache.moved_to(u64::MAX, 0);
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
}

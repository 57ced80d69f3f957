//! The service layer: one set of operations and business rules for both faces.
//!
//! Faces parse their wire formats into the inputs defined here and render the resources they
//! get back. Every change runs inside one store write transaction, checks first, then writes,
//! so a refused request changes nothing and the rules hold under concurrency (see the store's
//! documentation); a transaction that loses a race is run again.

pub mod agents;
mod filters;
mod ports;
mod rules;
mod scope;
mod sessions;
pub mod states;

use std::sync::Arc;

use futures::future::BoxFuture;
use tmirror_model::{DomainError, Field, Quota};
use tmirror_store::{Store, StoreError, WriteTx};

pub use filters::{FilterCreate, FilterUpdate};
pub use ports::{PortCreate, PortUpdate};
pub use rules::{RuleCreate, RuleUpdate};
pub use scope::{Scope, ScopedTx};
pub use sessions::{SessionCreate, SessionUpdate};

/// Configurable limits, with the documented defaults.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    pub sources_per_session: u32,
    pub sessions_per_source: u32,
    pub rules_per_direction: u32,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            sources_per_session: 10,
            sessions_per_source: 3,
            rules_per_direction: 10,
        }
    }
}

/// Why an operation failed: the user's fault (a domain error) or ours.
#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    #[error(transparent)]
    Domain(#[from] DomainError),
    #[error("storage failure")]
    Store(StoreError),
}

impl From<StoreError> for ServiceError {
    fn from(e: StoreError) -> Self {
        match e {
            // A marker that names nothing is the caller's mistake, not a storage failure.
            StoreError::UnknownMarker(m) => ServiceError::Domain(DomainError::invalid(
                Field::Marker,
                format!(
                    "{m:?} is not the id of a resource in this list; start again without a marker"
                ),
            )),
            other => ServiceError::Store(other),
        }
    }
}

/// Result alias of the service layer.
pub type ServiceResult<T> = Result<T, ServiceError>;

/// How many times a transaction that lost a race is run again before giving up.
const RETRIES: usize = 8;

/// The operations.
#[derive(Clone)]
pub struct Service {
    store: Arc<dyn Store>,
    limits: Limits,
}

impl Service {
    pub fn new(store: Arc<dyn Store>, limits: Limits) -> Self {
        Service { store, limits }
    }

    /// Whether the database answers (`/healthz`).
    pub async fn ready(&self) -> Result<(), StoreError> {
        self.store.read().await.map(drop)
    }

    /// The store behind the service (for the agent API's revision feed).
    pub fn store(&self) -> &Arc<dyn Store> {
        &self.store
    }

    /// The configured limits.
    pub fn limits(&self) -> Limits {
        self.limits
    }

    /// Runs `f` in a write transaction and commits; runs it again when the transaction lost a
    /// race with a concurrent one. Constraint violations that the checks in `f` did not catch
    /// (because a concurrent writer got there first) become the matching domain error.
    pub(crate) async fn transact<T, F>(&self, mut f: F) -> ServiceResult<T>
    where
        T: Send,
        F: for<'a> FnMut(&'a mut dyn WriteTx) -> BoxFuture<'a, ServiceResult<T>> + Send,
    {
        let mut attempt = 0;
        loop {
            attempt += 1;
            let mut tx = self.store.write().await?;
            let outcome = match f(tx.as_mut()).await {
                Ok(value) => tx.commit().await.map(|_| value).map_err(ServiceError::from),
                Err(e) => Err(e),
            };
            match outcome {
                Err(ServiceError::Store(StoreError::Retry)) if attempt < RETRIES => continue,
                Err(ServiceError::Store(e)) => return Err(constraint_to_domain(e)),
                other => return other,
            }
        }
    }
}

/// A constraint the database enforced behind the service's own checks.
fn constraint_to_domain(e: StoreError) -> ServiceError {
    match e {
        StoreError::Unique("sessions_priority") => ServiceError::Domain(DomainError::Conflict(
            "the priority is already used by another traffic mirror session of this project".into(),
        )),
        StoreError::Unique("rules_priority") => ServiceError::Domain(DomainError::Conflict(
            "the priority is already used by another rule of this filter and direction".into(),
        )),
        StoreError::ForeignKey => ServiceError::Domain(DomainError::Conflict(
            "a referenced resource was deleted or is still in use by a concurrent request; retry"
                .into(),
        )),
        other => ServiceError::Store(other),
    }
}

/// A quota error.
pub(crate) fn quota(quota: Quota, limit: u32) -> ServiceError {
    DomainError::QuotaExceeded { quota, limit }.into()
}

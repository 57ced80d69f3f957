//! Authentication of face requests with the clouds' AK/SK signatures.
//!
//! A credential belongs to one project. Credentials are looked up in the store and cached:
//! they never change once created, so the cache only needs to learn new ones.

pub mod aliyun;
pub mod huawei;

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use tmirror_model::ProjectId;
use tmirror_store::{Credential, Store, StoreResult};

/// Who is calling: the project of the credential that signed the request.
#[derive(Clone, Debug)]
pub struct Caller {
    pub project: ProjectId,
    pub access_key: String,
}

/// Access key → credential, backed by the store.
pub struct CredentialCache {
    store: Arc<dyn Store>,
    known: RwLock<HashMap<String, Credential>>,
}

impl CredentialCache {
    pub fn new(store: Arc<dyn Store>) -> Self {
        CredentialCache {
            store,
            known: RwLock::new(HashMap::new()),
        }
    }

    /// The credential with this access key, if there is one.
    pub async fn get(&self, access_key: &str) -> StoreResult<Option<Credential>> {
        if let Some(c) = self
            .known
            .read()
            .expect("credential cache poisoned")
            .get(access_key)
        {
            return Ok(Some(c.clone()));
        }
        let found = self.store.read().await?.credential(access_key).await?;
        if let Some(c) = &found {
            self.known
                .write()
                .expect("credential cache poisoned")
                .insert(access_key.to_owned(), c.clone());
        }
        Ok(found)
    }
}

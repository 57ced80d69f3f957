//! Opening the store with what seals credentials' secrets at rest.

use std::sync::Arc;

use anyhow::Context;
use tmirror_store::{SecretSealer, Store};

use crate::ServeConfig;

/// Opens the database `config` names, creating the data directory (mode 0700) if needed, with
/// the sealer its credentials' secrets are stored through.
pub async fn open_store(config: &ServeConfig) -> anyhow::Result<Arc<dyn Store>> {
    std::fs::create_dir_all(&config.data_dir)
        .with_context(|| format!("cannot create data directory {}", config.data_dir.display()))?;
    // Secrets live here (the database, the admin credential, the agent token): only the
    // server's own user may enter it, before anything is created in it.
    crate::set_mode(&config.data_dir, 0o700)?;
    let url = config.database_url();
    let store = tmirror_store::open(&url, SecretSealer::plaintext())
        .await
        .with_context(|| {
            format!(
                "cannot open the database {}",
                config.redacted_database_url()
            )
        })?;
    for file in crate::sqlite_files(&url) {
        if file.exists() {
            crate::set_mode(&file, 0o600)?;
        }
    }
    Ok(store)
}

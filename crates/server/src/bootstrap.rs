//! First start: an empty database gets a project and an admin credential, written to
//! `<data-dir>/admin-credentials.json` (mode 0600). Later starts reuse them and rewrite the file
//! only if it is missing.

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use anyhow::Context;
use rand::distributions::Alphanumeric;
use rand::Rng;
use serde::Serialize;
use tmirror_model::{Project, ProjectId, Role, Timestamp};
use tmirror_store::{Credential, Store, StoreError, StoreResult};
use tracing::info;

/// The file name of the admin credential.
pub const ADMIN_CREDENTIALS_FILE: &str = "admin-credentials.json";

/// What `admin-credentials.json` holds.
#[derive(Serialize)]
struct CredentialFile<'a> {
    access_key: &'a str,
    secret_key: &'a str,
    project_id: &'a str,
    endpoint: String,
}

pub(crate) fn random_text(len: usize, upper: bool) -> String {
    let s: String = rand::thread_rng()
        .sample_iter(&Alphanumeric)
        .take(len)
        .map(char::from)
        .collect();
    if upper {
        s.to_ascii_uppercase()
    } else {
        s
    }
}

/// Makes sure an admin credential exists and its file is in the data directory.
pub async fn ensure_admin(
    store: &dyn Store,
    data_dir: &Path,
    endpoint: &str,
) -> anyhow::Result<Credential> {
    let existing = store.read().await?.operator_credential().await?;
    let credential = match existing {
        Some(c) => c,
        None => create_admin(store).await?,
    };
    let path = data_dir.join(ADMIN_CREDENTIALS_FILE);
    // Rewritten when missing, and when the endpoint changed (TLS turned on, another
    // address), so the file always works as it is.
    let current = std::fs::read(&path)
        .ok()
        .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok());
    let stale = current.as_ref().is_none_or(|v| {
        v["endpoint"] != endpoint || v["access_key"] != credential.access_key.as_str()
    });
    if stale {
        write_credentials(&path, &credential, endpoint)?;
    }
    info!(path = %path.display(), "admin credential");
    Ok(credential)
}

/// The name of the project the first-start (operator) credential belongs to.
pub const OPERATOR_PROJECT: &str = "operator";

/// A fresh enabled credential of `project` with `role`: a 20-character upper-case access key
/// and a 40-character secret, as the clouds issue them.
pub fn new_credential(project: ProjectId, role: Role, now: i64) -> Credential {
    Credential {
        access_key: random_text(20, true),
        secret_key: random_text(40, false),
        project_id: project,
        role,
        enabled: true,
        created_at: now,
        last_used_at: None,
    }
}

/// Creates the admin credential unless a server sharing the database just did. Checked again
/// inside the write transaction: servers starting together on one empty database create one
/// admin between them.
async fn create_admin(store: &dyn Store) -> anyhow::Result<Credential> {
    let mut attempt = 0;
    loop {
        attempt += 1;
        let outcome: StoreResult<Credential> = async {
            let mut tx = store.write().await?;
            if let Some(c) = tx.operator_credential().await? {
                return Ok(c);
            }
            let now = Timestamp::now().0;
            let c = new_credential(ProjectId::new(), Role::Operator, now);
            tx.put_project(&Project {
                id: c.project_id.clone(),
                name: OPERATOR_PROJECT.to_owned(),
                created_at: now,
                quotas: Default::default(),
            })
            .await?;
            tx.put_credential(&c).await?;
            tx.commit().await?;
            info!(project_id = %c.project_id, "first start: created a project and its admin credential");
            Ok(c)
        }
        .await;
        match outcome {
            Err(StoreError::Retry) if attempt < 8 => continue,
            other => return Ok(other?),
        }
    }
}

/// Where servers before per-host credentials wrote the shared agent token.
const OLD_AGENT_TOKEN_FILE: &str = "agent-token";

/// Removes the shared agent token a server before per-host credentials left in `data_dir`:
/// nothing accepts it any more, and a secret nobody uses should not lie around.
pub fn remove_old_agent_token(data_dir: &Path) {
    let path = data_dir.join(OLD_AGENT_TOKEN_FILE);
    match std::fs::remove_file(&path) {
        Ok(()) => tracing::warn!(
            path = %path.display(),
            "removed the old shared agent token: agents now use per-host credentials \
             (POST /admin/v1/hosts, then tmirror agent --credential-file; docs/agent-protocol.md)"
        ),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => {
            tracing::warn!(path = %path.display(), error = %e, "cannot remove the old agent token")
        }
    }
}

/// Writes a file readable only by its owner: a temporary file with mode 0600 from the start,
/// then a rename, so the secret is never readable by others or half-written.
pub(crate) fn write_private(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    let tmp = path.with_extension("tmp");
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp)
        .with_context(|| format!("cannot write {}", tmp.display()))?;
    f.write_all(bytes)?;
    f.sync_all()?;
    std::fs::rename(&tmp, path).with_context(|| format!("cannot write {}", path.display()))?;
    Ok(())
}

fn write_credentials(path: &Path, c: &Credential, endpoint: &str) -> anyhow::Result<()> {
    let body = CredentialFile {
        access_key: &c.access_key,
        secret_key: &c.secret_key,
        project_id: c.project_id.as_str(),
        endpoint: endpoint.to_owned(),
    };
    let mut text = serde_json::to_string_pretty(&body)?;
    text.push('\n');
    write_private(path, text.as_bytes())
}

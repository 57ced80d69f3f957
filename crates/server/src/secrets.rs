//! The master key that encrypts credentials' secrets at rest, and opening the store with it.
//!
//! The key comes from `TMIRROR_MASTER_KEY` (base64), else from `--master-key-file`, else from
//! `<data-dir>/master.key`, which the first start creates (mode 0600). Servers sharing one
//! PostgreSQL database must have the same key. Keys listed with `--accept-master-key-file`
//! decrypt but never encrypt: they carry a rotation (see `docs/security.md`). The key itself is
//! never logged; its id (a hash) is.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{bail, Context};
use tmirror_store::{MasterKey, SecretSealer, Store, StoreError};
use tracing::{info, warn};

use crate::ServeConfig;

/// The file name of the master key in the data directory.
pub const MASTER_KEY_FILE: &str = "master.key";

/// Where a server's master key came from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum KeySource {
    /// `TMIRROR_MASTER_KEY`.
    Environment,
    /// `--master-key-file`.
    File(PathBuf),
    /// `<data-dir>/master.key`; `created` if this start made it.
    DataDir { path: PathBuf, created: bool },
}

impl std::fmt::Display for KeySource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            KeySource::Environment => write!(f, "TMIRROR_MASTER_KEY"),
            KeySource::File(p) => write!(f, "--master-key-file {}", p.display()),
            KeySource::DataDir { path, .. } => write!(f, "{}", path.display()),
        }
    }
}

/// Reads a master key file: base64 of 32 random bytes, white space ignored.
pub fn read_key_file(path: &Path) -> anyhow::Result<MasterKey> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read the master key file {}", path.display()))?;
    let key = MasterKey::from_base64(&text)
        .with_context(|| format!("{} does not hold a master key", path.display()))?;
    if let Ok(meta) = std::fs::metadata(path) {
        if meta.permissions().mode() & 0o077 != 0 {
            warn!(path = %path.display(), "the master key file is readable by other users: chmod 600 it");
        }
    }
    Ok(key)
}

/// Writes `key` to a new file `path` with mode 0600; refuses to replace an existing file.
pub fn write_new_key_file(path: &Path, key: &MasterKey) -> anyhow::Result<()> {
    if path.exists() {
        bail!(
            "{} exists: a key file is never overwritten (a lost key is a lost database)",
            path.display()
        );
    }
    crate::bootstrap::write_private(path, format!("{}\n", key.to_base64()).as_bytes())
}

/// The master key of `config` and where it came from. Creates `<data-dir>/master.key` when no
/// key is configured and the file does not exist yet, unless `create` is false.
fn master_key(config: &ServeConfig, create: bool) -> anyhow::Result<(MasterKey, KeySource)> {
    match (&config.master_key, &config.master_key_file) {
        (Some(_), Some(_)) => bail!(
            "the master key is given twice (TMIRROR_MASTER_KEY and --master-key-file): give one"
        ),
        (Some(key), None) => Ok((key.clone(), KeySource::Environment)),
        (None, Some(path)) => Ok((read_key_file(path)?, KeySource::File(path.clone()))),
        (None, None) => {
            let path = config.data_dir.join(MASTER_KEY_FILE);
            if path.exists() {
                crate::set_mode(&path, 0o600)?;
                let key = read_key_file(&path)?;
                return Ok((
                    key,
                    KeySource::DataDir {
                        path,
                        created: false,
                    },
                ));
            }
            if !create {
                bail!(
                    "no master key: {} does not exist and neither --master-key-file nor \
                     TMIRROR_MASTER_KEY is set",
                    path.display()
                );
            }
            let key = MasterKey::generate();
            // On disk before anything is encrypted with it.
            write_new_key_file(&path, &key)?;
            info!(path = %path.display(), master_key = key.id(), "first start: created the master key");
            Ok((
                key,
                KeySource::DataDir {
                    path,
                    created: true,
                },
            ))
        }
    }
}

/// The keys `--accept-master-key-file` lists.
fn accepted_keys(config: &ServeConfig) -> anyhow::Result<Vec<MasterKey>> {
    config
        .accept_master_key_files
        .iter()
        .map(|p| read_key_file(p))
        .collect()
}

/// Creates the data directory (mode 0700) if needed.
fn data_dir(config: &ServeConfig) -> anyhow::Result<()> {
    std::fs::create_dir_all(&config.data_dir)
        .with_context(|| format!("cannot create data directory {}", config.data_dir.display()))?;
    // Secrets live here (the database, the master key, the admin credential, the agent token):
    // only the server's own user may enter it, before anything is created in it.
    crate::set_mode(&config.data_dir, 0o700)
}

/// Opens the database `config` names, creating the data directory (mode 0700) and the master
/// key if needed, with the sealer its credentials' secrets are stored through. Secrets not yet
/// under the master key (a database from before encryption, a rotation) are re-encrypted.
pub async fn open_store(config: &ServeConfig) -> anyhow::Result<Arc<dyn Store>> {
    data_dir(config)?;
    let (key, source) = master_key(config, true)?;
    info!(master_key = key.id(), from = %source, "master key");
    let sealer = SecretSealer::new(key, accepted_keys(config)?);
    open_sealed(config, sealer, &source).await
}

async fn open_sealed(
    config: &ServeConfig,
    sealer: SecretSealer,
    source: &KeySource,
) -> anyhow::Result<Arc<dyn Store>> {
    let url = config.database_url();
    let opened = tmirror_store::open(&url, sealer).await;
    for file in crate::sqlite_files(&url) {
        crate::set_mode_if_present(&file, 0o600)?;
    }
    match opened {
        Ok(store) => Ok(store),
        Err(StoreError::MasterKey(why)) => Err(wrong_key(config, &why, source)),
        Err(e) => Err(e).with_context(|| {
            format!(
                "cannot open the database {}",
                config.redacted_database_url()
            )
        }),
    }
}

/// The error of a start with a key that did not encrypt the database: what to do about it.
fn wrong_key(config: &ServeConfig, why: &str, source: &KeySource) -> anyhow::Error {
    let db = config.redacted_database_url();
    if let KeySource::DataDir {
        path,
        created: true,
    } = source
    {
        // Nothing was encrypted with it (the store checks every secret before writing any).
        let _ = std::fs::remove_file(path);
        return anyhow::anyhow!(
            "wrong master key for {db}: {why}. No master key was configured and {} did not \
             exist, so this start made a new key; it is not the one the database was encrypted \
             with, and it was removed again. Give this server the master key of the servers \
             that use this database: copy their master.key to {} (mode 0600), or set \
             --master-key-file or TMIRROR_MASTER_KEY to the same key (docs/security.md)",
            path.display(),
            path.display()
        );
    }
    anyhow::anyhow!(
        "wrong master key for {db}: {why}. The key came from {source}. Start the server with \
         the master key that encrypted this database (the same master.key, --master-key-file \
         or TMIRROR_MASTER_KEY as the other servers that use it); during a key rotation, also \
         give the previous key with --accept-master-key-file (docs/security.md)"
    )
}

/// What a rotation did.
#[derive(Debug)]
pub struct Rotation {
    /// The id of the key the secrets were under.
    pub old_key: String,
    /// The id of the key they are under now.
    pub new_key: String,
    /// Where the current key came from; a `<data-dir>/master.key` now holds the new key.
    pub source: KeySource,
}

impl std::fmt::Display for Rotation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "every credential secret is now encrypted with master key {} (was {})",
            self.new_key, self.old_key
        )?;
        match &self.source {
            KeySource::DataDir { path, .. } => write!(
                f,
                "; {} now holds the new key, and the old key is no longer needed",
                path.display()
            ),
            KeySource::File(p) => write!(
                f,
                "; start the servers with the new key file instead of {} (the old key is no \
                 longer needed)",
                p.display()
            ),
            KeySource::Environment => write!(
                f,
                "; set TMIRROR_MASTER_KEY to the new key before the servers start again (the \
                 old key is no longer needed)"
            ),
        }
    }
}

/// Rotates the master key offline (no server running on the database): re-encrypts every
/// secret with the key in `new_key_file` and, when the current key is `<data-dir>/master.key`,
/// replaces that file with the new key. Keys `config` accepts still decrypt, so an interrupted
/// rotation is finished by running it again with the same new key file.
pub async fn rotate_master_key(
    config: &ServeConfig,
    new_key_file: &Path,
) -> anyhow::Result<Rotation> {
    let (current, source) = master_key(config, false)?;
    let new = read_key_file(new_key_file)?;
    let mut accepted = vec![current.clone()];
    accepted.extend(accepted_keys(config)?);
    let store = open_sealed(config, SecretSealer::new(new.clone(), accepted), &source).await?;
    store.close().await;
    if let KeySource::DataDir { path, .. } = &source {
        if current != new {
            crate::bootstrap::write_private(path, format!("{}\n", new.to_base64()).as_bytes())?;
        }
    }
    info!(from = current.id(), to = new.id(), "master key rotated");
    Ok(Rotation {
        old_key: current.id().to_owned(),
        new_key: new.id().to_owned(),
        source,
    })
}

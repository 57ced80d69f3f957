//! The last applied desired state on disk, so the agent mirrors at start-up even when no
//! control-plane server answers. Written atomically: a crash leaves the old or the new file,
//! never half of one.

use std::io::Write;
use std::path::{Path, PathBuf};

use tmirror_model::agent::DesiredState;

/// File name of the saved state inside the state directory.
pub const STATE_FILE: &str = "desired-state.json";

/// Where the saved state lives.
pub fn path(state_dir: &Path) -> PathBuf {
    state_dir.join(STATE_FILE)
}

/// The saved state, if there is a readable one. A corrupt file is reported and ignored: the
/// server will send a fresh state.
pub fn load(state_dir: &Path) -> Option<DesiredState> {
    let bytes = std::fs::read(path(state_dir)).ok()?;
    match serde_json::from_slice(&bytes) {
        Ok(s) => Some(s),
        Err(e) => {
            tracing::warn!(error = %e, file = %path(state_dir).display(), "ignoring an unreadable saved state");
            None
        }
    }
}

/// Saves `state`: a temporary file, fsync, rename over the old one, fsync of the directory.
pub fn save(state_dir: &Path, state: &DesiredState) -> std::io::Result<()> {
    std::fs::create_dir_all(state_dir)?;
    let tmp = state_dir.join(format!("{STATE_FILE}.tmp"));
    let mut f = std::fs::File::create(&tmp)?;
    f.write_all(&serde_json::to_vec_pretty(state).expect("a desired state serialises"))?;
    f.sync_all()?;
    std::fs::rename(&tmp, path(state_dir))?;
    std::fs::File::open(state_dir)?.sync_all()
}

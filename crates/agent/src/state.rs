//! The last applied desired state on disk, so the agent mirrors at start-up even when no
//! control-plane server answers. Written atomically: a crash leaves the old or the new file,
//! never half of one.

use std::io::{Read, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use tmirror_model::agent::DesiredState;

/// File name of the saved state inside the state directory.
pub const STATE_FILE: &str = "desired-state.json";

/// Where the saved state lives.
pub fn path(state_dir: &Path) -> PathBuf {
    state_dir.join(STATE_FILE)
}

/// The saved state of `host_id`, if there is a readable one. A corrupt file, or one another
/// host saved (a state directory copied, or shared), is reported and ignored: the server will
/// send a fresh state.
pub fn load(state_dir: &Path, host_id: &str) -> Option<DesiredState> {
    let mut file = std::fs::File::open(path(state_dir)).ok()?;
    // One an older agent saved readable by others is made the agent's alone now, not at the
    // next change (on the file opened: fchmod, not by a path that could be swapped).
    if file
        .metadata()
        .is_ok_and(|m| m.permissions().mode() & 0o077 != 0)
    {
        if let Err(e) = file.set_permissions(std::fs::Permissions::from_mode(0o600)) {
            tracing::warn!(error = %e, file = %path(state_dir).display(), "cannot make the saved state readable by the agent only");
        }
    }
    let mut bytes = Vec::new();
    file.read_to_end(&mut bytes).ok()?;
    match serde_json::from_slice::<DesiredState>(&bytes) {
        Ok(s) if s.host_id != host_id => {
            tracing::warn!(
                file = %path(state_dir).display(),
                saved_for = %s.host_id,
                host_id,
                "ignoring a saved state of another host"
            );
            None
        }
        Ok(s) => Some(s),
        Err(e) => {
            tracing::warn!(error = %e, file = %path(state_dir).display(), "ignoring an unreadable saved state");
            None
        }
    }
}

/// Saves `state`: a temporary file, fsync, rename over the old one, fsync of the directory.
/// The file is the agent's alone (mode 0600): it holds the tenants' addresses and rules.
pub fn save(state_dir: &Path, state: &DesiredState) -> std::io::Result<()> {
    std::fs::create_dir_all(state_dir)?;
    let tmp = state_dir.join(format!("{STATE_FILE}.tmp"));
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp)?;
    // A temporary file left by an older agent keeps its mode through `open`.
    f.set_permissions(std::fs::Permissions::from_mode(0o600))?;
    f.write_all(&serde_json::to_vec_pretty(state).expect("a desired state serialises"))?;
    f.sync_all()?;
    std::fs::rename(&tmp, path(state_dir))?;
    std::fs::File::open(state_dir)?.sync_all()
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use tmirror_model::agent::DesiredState;

    fn state(host_id: &str) -> DesiredState {
        DesiredState {
            protocol_version: 1,
            host_id: host_id.into(),
            generation: 7,
            content_hash: "h".into(),
            interfaces: Vec::new(),
            addresses: Vec::new(),
        }
    }

    #[test]
    fn the_saved_state_is_the_agents_alone_and_its_hosts_only() {
        let dir = tempfile::tempdir().unwrap();
        // A temporary file an older agent left, readable by all.
        let tmp = dir.path().join(format!("{}.tmp", super::STATE_FILE));
        std::fs::write(&tmp, b"{}").unwrap();
        std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o644)).unwrap();
        super::save(dir.path(), &state("hv1")).unwrap();
        let mode = std::fs::metadata(super::path(dir.path()))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600, "mode {mode:o}");
        assert_eq!(super::load(dir.path(), "hv1"), Some(state("hv1")));
        assert_eq!(super::load(dir.path(), "hv2"), None, "another host's state");
        // One an older agent saved readable by all is the agent's alone once read.
        let file = super::path(dir.path());
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o644)).unwrap();
        super::load(dir.path(), "hv1").unwrap();
        let mode = std::fs::metadata(&file).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600, "mode {mode:o} after loading");
    }
}

//! The data directory holds every secret (the database with the secret keys, the master key
//! that encrypts them, the admin credential, the audit trail): only the server's own user may
//! read any of it.

mod common;

use std::os::unix::fs::PermissionsExt;

use common::TestServer;

fn mode(path: &std::path::Path) -> u32 {
    std::fs::metadata(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .permissions()
        .mode()
        & 0o777
}

#[tokio::test]
async fn the_data_directory_and_its_files_are_private() {
    let server = TestServer::start().await;
    // A write, so that the WAL exists.
    server.client().filter("private").await;
    let dir = server.data_path();
    assert_eq!(mode(&dir), 0o700, "data directory");
    for name in [
        "tmirror.db",
        "tmirror.db-wal",
        "tmirror.db-shm",
        "tmirror.db-nonces",
        "admin-credentials.json",
        "master.key",
    ] {
        assert_eq!(mode(&dir.join(name)), 0o600, "{name}");
    }
    // A directory an operator made world-readable is closed again at the next start.
    let dir = server.stop().await;
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::set_permissions(
        dir.path().join("tmirror.db"),
        std::fs::Permissions::from_mode(0o644),
    )
    .unwrap();
    let again = TestServer::start_in(dir, |_| {}).await;
    assert_eq!(mode(&again.data_path()), 0o700);
    assert_eq!(mode(&again.data_path().join("tmirror.db")), 0o600);
}

//! Credentials' secret keys at rest: encrypted in the database under the master key
//! (`<data-dir>/master.key`, 0600, or one given by file or environment); a restart with the
//! same key still verifies signatures, a wrong key refuses to start, and a rotation
//! re-encrypts every secret (see docs/security.md).

mod common;

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use common::{Api, Creds, TestServer};
use tmirror_server::{ServeConfig, Server};
use tmirror_store::MasterKey;

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

/// The bytes of the database files (the database and its WAL).
fn database_bytes(dir: &Path) -> Vec<u8> {
    let mut bytes = Vec::new();
    for name in ["tmirror.db", "tmirror.db-wal"] {
        if let Ok(b) = std::fs::read(dir.join(name)) {
            bytes.extend(b);
        }
    }
    bytes
}

fn contains(haystack: &[u8], needle: &str) -> bool {
    haystack
        .windows(needle.len())
        .any(|w| w == needle.as_bytes())
}

/// `(access key, stored secret)` of every credential, read from the database file itself.
async fn stored_secrets(dir: &Path) -> Vec<(String, String)> {
    use sqlx::Connection;
    let url = format!("sqlite:{}", dir.join("tmirror.db").display());
    let mut conn = sqlx::SqliteConnection::connect(&url).await.unwrap();
    let rows = sqlx::query_as("SELECT access_key, secret_key FROM credentials ORDER BY access_key")
        .fetch_all(&mut conn)
        .await
        .unwrap();
    conn.close().await.unwrap();
    rows
}

/// A signed read by `creds` on the server at `server`: whether its signature verified.
async fn verifies(server: &TestServer, creds: &Creds) -> bool {
    let api = Api::new(server.addr, creds.clone());
    api.get(&api.v3("traffic-mirror-filters")).await.status == 200
}

fn key_file(dir: &Path, name: &str) -> (std::path::PathBuf, MasterKey) {
    let path = dir.join(name);
    let key = MasterKey::generate();
    tmirror_server::secrets::write_new_key_file(&path, &key).unwrap();
    (path, key)
}

/// Why `config` does not start.
async fn refusal(config: ServeConfig) -> String {
    match Server::bind(&config).await {
        Ok(_) => panic!("the server started"),
        Err(e) => format!("{e:#}"),
    }
}

fn config_in(dir: &Path) -> ServeConfig {
    ServeConfig {
        listen: "127.0.0.1:0".parse().unwrap(),
        data_dir: dir.to_path_buf(),
        ..Default::default()
    }
}

#[tokio::test]
async fn no_secret_is_in_the_database_in_clear_and_the_master_key_is_private() {
    let server = TestServer::start().await;
    let member = server.client().tenant("tenant", "member").await;
    // A write by the member too, so that the WAL holds recent pages.
    member.filter("f").await;
    let dir = server.data_path();
    assert_eq!(mode(&dir.join("master.key")), 0o600);
    let bytes = database_bytes(&dir);
    assert!(!bytes.is_empty());
    for secret in [&server.creds.secret_key, &member.creds.secret_key] {
        assert!(
            !contains(&bytes, secret),
            "a secret is in the database in clear"
        );
    }
    let key = std::fs::read_to_string(dir.join("master.key")).unwrap();
    let id = MasterKey::from_base64(&key).unwrap().id().to_owned();
    for (access_key, stored) in stored_secrets(&dir).await {
        assert!(
            stored.starts_with(&format!("enc:v1:{id}:")),
            "{access_key}: {stored}"
        );
    }
    // Nor is the key anywhere but in its file.
    assert!(!contains(&bytes, key.trim()));
    assert!(!contains(
        &std::fs::read(dir.join("audit.log")).unwrap_or_default(),
        key.trim()
    ));
}

#[tokio::test]
async fn a_restart_with_the_same_key_still_verifies_signatures() {
    let server = TestServer::start().await;
    let member = server.client().tenant("tenant", "member").await.creds;
    let admin = server.creds.clone();
    let dir = server.stop().await;
    let again = TestServer::start_in(dir, |_| {}).await;
    assert!(verifies(&again, &admin).await);
    assert!(verifies(&again, &member).await);
    // The master key given by environment (here: the config) works the same.
    let key = std::fs::read_to_string(again.data_path().join("master.key")).unwrap();
    let dir = again.stop().await;
    std::fs::rename(dir.path().join("master.key"), dir.path().join("elsewhere")).unwrap();
    let from_env = TestServer::start_in(dir, |c| {
        c.master_key = Some(MasterKey::from_base64(&key).unwrap());
    })
    .await;
    assert!(verifies(&from_env, &member).await);
    assert!(!from_env.data_path().join("master.key").exists());
}

#[tokio::test]
async fn a_server_with_a_wrong_or_missing_key_refuses_to_start() {
    let server = TestServer::start().await;
    let dir = server.stop().await;
    let path = dir.path();
    let right = std::fs::read(path.join("master.key")).unwrap();

    // Another key in master.key.
    std::fs::remove_file(path.join("master.key")).unwrap();
    key_file(path, "master.key");
    let why = refusal(config_in(path)).await;
    assert!(why.contains("wrong master key"), "{why}");
    assert!(why.contains("master.key"), "{why}");
    assert!(why.contains("--accept-master-key-file"), "{why}");

    // No key at all: a new one is not silently made for a database that has secrets.
    std::fs::remove_file(path.join("master.key")).unwrap();
    let why = refusal(config_in(path)).await;
    assert!(why.contains("did not exist"), "{why}");
    assert!(why.contains("copy their master.key"), "{why}");
    assert!(
        !path.join("master.key").exists(),
        "the new key was left behind"
    );

    // A wrong key from the environment, and a file that holds no key.
    let mut c = config_in(path);
    c.master_key = Some(MasterKey::generate());
    let why = refusal(c).await;
    assert!(why.contains("TMIRROR_MASTER_KEY"), "{why}");
    std::fs::write(path.join("bad.key"), "not a key").unwrap();
    let mut c = config_in(path);
    c.master_key_file = Some(path.join("bad.key"));
    let why = refusal(c).await;
    assert!(why.contains("does not hold a master key"), "{why}");

    // The right key starts it again.
    std::fs::write(path.join("master.key"), right).unwrap();
    std::fs::set_permissions(
        path.join("master.key"),
        std::fs::Permissions::from_mode(0o600),
    )
    .unwrap();
    TestServer::start_in(dir, |_| {}).await;
}

#[tokio::test]
async fn a_rotation_re_encrypts_every_secret_and_the_old_key_is_no_longer_needed() {
    let server = TestServer::start().await;
    let member = server.client().tenant("tenant", "member").await.creds;
    let admin = server.creds.clone();
    let dir = server.stop().await;
    let path = dir.path();
    let old =
        MasterKey::from_base64(&std::fs::read_to_string(path.join("master.key")).unwrap()).unwrap();
    let before = stored_secrets(path).await;
    let keys = tempfile::tempdir().unwrap();
    let (new_file, new) = key_file(keys.path(), "new.key");
    let old_file = keys.path().join("old.key");
    std::fs::copy(path.join("master.key"), &old_file).unwrap();

    let done = tmirror_server::rotate_master_key(&config_in(path), &new_file)
        .await
        .unwrap();
    assert_eq!(
        (done.old_key.as_str(), done.new_key.as_str()),
        (old.id(), new.id())
    );
    let after = stored_secrets(path).await;
    assert_eq!(before.len(), after.len());
    for ((ak, was), (ak2, now)) in before.iter().zip(&after) {
        assert_eq!(ak, ak2);
        assert!(was.starts_with(&format!("enc:v1:{}:", old.id())), "{was}");
        assert!(now.starts_with(&format!("enc:v1:{}:", new.id())), "{now}");
    }
    // master.key now holds the new key, still private.
    let installed = std::fs::read_to_string(path.join("master.key")).unwrap();
    assert_eq!(MasterKey::from_base64(&installed).unwrap().id(), new.id());
    assert_eq!(mode(&path.join("master.key")), 0o600);
    // The old key alone no longer opens the database.
    let mut with_old = config_in(path);
    with_old.master_key_file = Some(old_file);
    assert!(refusal(with_old).await.contains("wrong master key"));
    // The new one alone does, and signatures verify.
    let again = TestServer::start_in(dir, |_| {}).await;
    assert!(verifies(&again, &admin).await);
    assert!(verifies(&again, &member).await);
}

/// The rolling procedure for servers sharing a database: a server started with the new key
/// and the old one accepted re-encrypts at start; after that the new key alone suffices.
#[tokio::test]
async fn a_server_started_with_a_new_key_and_the_old_one_accepted_re_encrypts() {
    let server = TestServer::start().await;
    let admin = server.creds.clone();
    let dir = server.stop().await;
    let path = dir.path().to_path_buf();
    let keys = tempfile::tempdir().unwrap();
    let (new_file, new) = key_file(keys.path(), "new.key");
    let old_file = path.join("master.key");
    let (nf, of) = (new_file.clone(), old_file.clone());
    let rotating = TestServer::start_in(dir, move |c| {
        c.master_key_file = Some(nf);
        c.accept_master_key_files = vec![of];
    })
    .await;
    assert!(verifies(&rotating, &admin).await);
    for (_, stored) in stored_secrets(&path).await {
        assert!(
            stored.starts_with(&format!("enc:v1:{}:", new.id())),
            "{stored}"
        );
    }
    let dir = rotating.stop().await;
    std::fs::remove_file(&old_file).unwrap();
    let after = TestServer::start_in(dir, move |c| c.master_key_file = Some(new_file)).await;
    assert!(verifies(&after, &admin).await);
}

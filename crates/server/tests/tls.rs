//! TLS: a self-signed server the typed client verifies with `--ca-file`, a refused unknown
//! certificate, a server on PEM files, and plain HTTP refused off loopback.

mod common;

use std::os::unix::fs::PermissionsExt;

use common::TestServer;
use tmirror_client::{Client, ClientError, Credentials, FilterCreate, ListOptions, Transport};
use tmirror_server::config::TlsMode;
use tmirror_server::ServeConfig;

fn credentials(server: &TestServer) -> (String, Credentials) {
    let file = Credentials::load(server.data_path().join("admin-credentials.json")).unwrap();
    (file.endpoint.unwrap(), file.credentials)
}

#[tokio::test]
async fn a_self_signed_server_is_verified_with_its_certificate() {
    let server = TestServer::start_with(|c| c.tls = TlsMode::SelfSigned).await;
    let cert = server.data_path().join("tls-cert.pem");
    let key = server.data_path().join("tls-key.pem");
    assert_eq!(
        std::fs::metadata(&key).unwrap().permissions().mode() & 0o777,
        0o600
    );
    let (endpoint, creds) = credentials(&server);
    assert_eq!(endpoint, format!("https://{}", server.addr));

    let client =
        Client::with_transport(&endpoint, creds.clone(), &Transport::with_ca_file(&cert)).unwrap();
    let filter = client
        .filter_create(&FilterCreate {
            name: "over-tls".into(),
            description: None,
        })
        .await
        .unwrap();
    let page = client
        .filter_list(&ListOptions::new().filter("id", &filter.id))
        .await
        .unwrap();
    assert_eq!(page.items.len(), 1);

    // Without the CA the certificate is not trusted: nothing is sent.
    let untrusting = Client::new(&endpoint, creds).unwrap();
    let refused = untrusting
        .filter_list(&ListOptions::new())
        .await
        .unwrap_err();
    assert!(
        matches!(refused, ClientError::Transport { .. }),
        "{refused:?}"
    );

    // Plain HTTP to the TLS port gets no answer.
    let plain = reqwest::get(format!("http://{}/healthz", server.addr)).await;
    assert!(plain.is_err() || !plain.unwrap().status().is_success());

    // A second server on the same pair, as PEM files.
    let files = TestServer::start_with(|c| {
        c.tls = TlsMode::Files {
            cert: cert.clone(),
            key: key.clone(),
        }
    })
    .await;
    let (endpoint, creds) = credentials(&files);
    let health = Client::with_transport(&endpoint, creds, &Transport::with_ca_file(&cert))
        .unwrap()
        .filter_list(&ListOptions::new())
        .await;
    assert!(health.is_ok(), "{health:?}");
}

#[tokio::test]
async fn turning_tls_on_rewrites_the_endpoint_of_the_credentials_file() {
    let server = TestServer::start().await;
    let (endpoint, _) = credentials(&server);
    assert!(endpoint.starts_with("http://"), "{endpoint}");
    let dir = server.stop().await;
    let again = TestServer::start_in(dir, |c| c.tls = TlsMode::SelfSigned).await;
    let (endpoint, _) = credentials(&again);
    assert!(endpoint.starts_with("https://"), "{endpoint}");
}

#[test]
fn plain_http_off_loopback_is_refused_unless_the_operator_says_so() {
    let mut config = ServeConfig {
        listen: "192.0.2.10:9696".parse().unwrap(),
        ..ServeConfig::default()
    };
    let refused = config.check_transport().unwrap_err().to_string();
    assert!(refused.contains("--tls-cert"), "{refused}");
    assert!(refused.contains("--tls-self-signed"), "{refused}");
    config.insecure_http = true;
    config.check_transport().unwrap();
    config.insecure_http = false;
    config.tls = TlsMode::SelfSigned;
    config.check_transport().unwrap();
    config.tls = TlsMode::Off;
    config.listen = "[::1]:9696".parse().unwrap();
    config.check_transport().unwrap();
}

#[tokio::test]
async fn a_certificate_that_does_not_match_its_key_is_refused_at_start() {
    let first = TestServer::start_with(|c| c.tls = TlsMode::SelfSigned).await;
    let second = TestServer::start_with(|c| c.tls = TlsMode::SelfSigned).await;
    let dir = tempfile::tempdir().unwrap();
    let config = ServeConfig {
        listen: "127.0.0.1:0".parse().unwrap(),
        data_dir: dir.path().to_path_buf(),
        tls: TlsMode::Files {
            cert: first.data_path().join("tls-cert.pem"),
            key: second.data_path().join("tls-key.pem"),
        },
        ..ServeConfig::default()
    };
    let err = match tmirror_server::Server::bind(&config).await {
        Ok(_) => panic!("a mismatched pair must not start"),
        Err(e) => format!("{e:#}"),
    };
    assert!(err.contains("does not match"), "{err}");
}

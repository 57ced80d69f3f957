//! The listener's TLS: a certificate chain and key from PEM files, or a self-signed pair the
//! server keeps in its data directory. rustls on the ring provider; TLS 1.2 and 1.3.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tracing::info;

use crate::config::TlsMode;

/// The certificate of `--tls-self-signed`, in the data directory.
pub const SELF_SIGNED_CERT: &str = "tls-cert.pem";
/// Its private key (mode 0600).
pub const SELF_SIGNED_KEY: &str = "tls-key.pem";

/// The acceptor for `mode`, or `None` for plain HTTP.
pub fn acceptor(
    mode: &TlsMode,
    data_dir: &Path,
    listen: SocketAddr,
) -> anyhow::Result<Option<tokio_rustls::TlsAcceptor>> {
    let (cert, key) = match mode {
        TlsMode::Off => return Ok(None),
        TlsMode::Files { cert, key } => (cert.clone(), key.clone()),
        TlsMode::SelfSigned => ensure_self_signed(data_dir, listen)?,
    };
    let chain = CertificateDer::pem_file_iter(&cert)
        .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
        .with_context(|| format!("cannot read the certificate chain {} (PEM)", cert.display()))?;
    if chain.is_empty() {
        anyhow::bail!("{} holds no PEM certificate", cert.display());
    }
    let private = PrivateKeyDer::from_pem_file(&key)
        .with_context(|| format!("cannot read the private key {} (PEM)", key.display()))?;
    // ring, as the clients' reqwest uses: no C toolchain beyond ring's own on a fresh
    // machine. rustls deprecates it for lacking post-quantum key exchange (aws-lc-rs has
    // X25519MLKEM768); docs/security.md lists that as open.
    #[allow(deprecated)]
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .context("TLS protocol versions")?
        .with_no_client_auth()
        .with_single_cert(chain, private)
        .with_context(|| {
            format!(
                "the key {} does not match the certificate {}",
                key.display(),
                cert.display()
            )
        })?;
    // The clients speak HTTP/1.1 (the SDKs, the agent, the CLI).
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    info!(cert = %cert.display(), "TLS on");
    Ok(Some(tokio_rustls::TlsAcceptor::from(Arc::new(config))))
}

/// Makes the self-signed pair unless it exists: valid for `localhost`, the loopback addresses,
/// the listen address (when it is not the wildcard) and the machine's host name.
fn ensure_self_signed(data_dir: &Path, listen: SocketAddr) -> anyhow::Result<(PathBuf, PathBuf)> {
    let cert = data_dir.join(SELF_SIGNED_CERT);
    let key = data_dir.join(SELF_SIGNED_KEY);
    if cert.exists() && key.exists() {
        return Ok((cert, key));
    }
    let mut names = vec![
        "localhost".to_owned(),
        "127.0.0.1".to_owned(),
        "::1".to_owned(),
    ];
    if !listen.ip().is_unspecified() && !listen.ip().is_loopback() {
        names.push(listen.ip().to_string());
    }
    if let Ok(host) = std::fs::read_to_string("/proc/sys/kernel/hostname") {
        let host = host.trim();
        if !host.is_empty() {
            names.push(host.to_owned());
        }
    }
    let made = rcgen::generate_simple_self_signed(names.clone())
        .context("cannot make a self-signed certificate")?;
    crate::bootstrap::write_private(&key, made.key_pair.serialize_pem().as_bytes())?;
    crate::bootstrap::write_private(&cert, made.cert.pem().as_bytes())?;
    info!(cert = %cert.display(), names = ?names, "made a self-signed certificate; clients trust it with --ca-file");
    Ok((cert, key))
}

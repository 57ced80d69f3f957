//! The accept loop: TLS, connection caps (overall and per client address) and time-outs, so
//! that idle, slow or numerous connections cannot starve the server.
//!
//! hyper's own time-outs need a timer, which `axum::serve` does not give it; this loop builds
//! each HTTP/1.1 connection itself with one. The header-read time-out runs from the moment a
//! connection waits for a request head — also between keep-alive requests — so it is both the
//! slowloris guard and the keep-alive time-out.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::ConnectInfo;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::TcpListener;
use tower::ServiceExt;
use tracing::{debug, info, warn};

use crate::config::ConnectionLimits;

/// Counts open connections, overall and per client address.
#[derive(Clone)]
struct Admission {
    limits: ConnectionLimits,
    open: Arc<Mutex<(usize, HashMap<IpAddr, usize>)>>,
}

/// One admitted connection; dropping it frees its place.
struct Admitted {
    admission: Admission,
    ip: IpAddr,
}

impl Admission {
    fn new(limits: ConnectionLimits) -> Self {
        Admission {
            limits,
            open: Arc::default(),
        }
    }

    /// A place for a connection from `ip`, unless the caps are reached.
    fn admit(&self, ip: IpAddr) -> Option<Admitted> {
        let mut open = self.open.lock().expect("admission poisoned");
        let (total, per_address) = &mut *open;
        let mine = per_address.get(&ip).copied().unwrap_or(0);
        if *total >= self.limits.max_connections || mine >= self.limits.max_per_address {
            return None;
        }
        *total += 1;
        per_address.insert(ip, mine + 1);
        Some(Admitted {
            admission: self.clone(),
            ip,
        })
    }
}

impl Drop for Admitted {
    fn drop(&mut self) {
        let mut open = self.admission.open.lock().expect("admission poisoned");
        let (total, per_address) = &mut *open;
        *total -= 1;
        if let Some(n) = per_address.get_mut(&self.ip) {
            *n -= 1;
            if *n == 0 {
                per_address.remove(&self.ip);
            }
        }
    }
}

/// Raises the soft open-files limit to the hard one: each connection is a descriptor, and
/// the distribution's default soft limit (often 1024) is below the connection cap.
pub fn raise_open_files_limit() {
    match rlimit::increase_nofile_limit(u64::MAX) {
        Ok(n) => debug!(limit = n, "open-files limit"),
        Err(e) => warn!(error = %e, "cannot raise the open-files limit"),
    }
}

/// Serves `router` on `listener` until `shutdown` resolves, then lets the requests in flight
/// finish (for at most `drain`).
pub async fn serve(
    listener: TcpListener,
    router: axum::Router,
    tls: Option<tokio_rustls::TlsAcceptor>,
    limits: ConnectionLimits,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
    drain: Duration,
) -> std::io::Result<()> {
    let admission = Admission::new(limits);
    let graceful = GracefulShutdown::new();
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    // Out of descriptors or similar: wait for connections to close rather
                    // than spin.
                    warn!(error = %e, "cannot accept a connection");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            _ = &mut shutdown => break,
        };
        let Some(place) = admission.admit(peer.ip()) else {
            debug!(peer = %peer, "connection cap reached; closing");
            drop(stream);
            continue;
        };
        let _ = stream.set_nodelay(true);
        let router = router.clone();
        let tls = tls.clone();
        let watcher = graceful.watcher();
        tokio::spawn(async move {
            let _place = place;
            match tls {
                None => connection(TokioIo::new(stream), peer, router, limits, watcher).await,
                Some(acceptor) => {
                    match tokio::time::timeout(
                        limits.tls_handshake_timeout,
                        acceptor.accept(stream),
                    )
                    .await
                    {
                        Ok(Ok(tls)) => {
                            connection(TokioIo::new(tls), peer, router, limits, watcher).await
                        }
                        Ok(Err(e)) => debug!(peer = %peer, error = %e, "TLS handshake failed"),
                        Err(_) => debug!(peer = %peer, "TLS handshake timed out"),
                    }
                }
            }
        });
    }
    drop(listener);
    info!(
        connections = graceful.count(),
        "no longer accepting; finishing the requests in flight"
    );
    if tokio::time::timeout(drain, graceful.shutdown())
        .await
        .is_err()
    {
        warn!("requests still in flight after the drain time; closing them");
    }
    Ok(())
}

/// One HTTP/1.1 connection, with the client's address in each request's extensions.
async fn connection<I>(
    io: TokioIo<I>,
    peer: SocketAddr,
    router: axum::Router,
    limits: ConnectionLimits,
    watcher: hyper_util::server::graceful::Watcher,
) where
    I: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let service = hyper::service::service_fn(move |mut request: hyper::Request<Incoming>| {
        request.extensions_mut().insert(ConnectInfo(peer));
        router.clone().oneshot(request.map(axum::body::Body::new))
    });
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout)
        .keep_alive(true);
    let conn = http.serve_connection(io, service);
    if let Err(e) = watcher.watch(conn).await {
        debug!(peer = %peer, error = %e, "connection ended");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn caps_overall_and_per_address_and_frees_places() {
        let admission = Admission::new(ConnectionLimits {
            max_connections: 3,
            max_per_address: 2,
            ..ConnectionLimits::default()
        });
        let a: IpAddr = "10.0.0.1".parse().unwrap();
        let b: IpAddr = "10.0.0.2".parse().unwrap();
        let a1 = admission.admit(a).unwrap();
        let _a2 = admission.admit(a).unwrap();
        assert!(admission.admit(a).is_none(), "per-address cap");
        let _b1 = admission.admit(b).unwrap();
        assert!(admission.admit(b).is_none(), "overall cap");
        drop(a1);
        assert!(
            admission.admit(b).is_some(),
            "a closed connection frees its place"
        );
    }
}

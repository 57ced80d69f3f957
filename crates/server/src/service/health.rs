//! The health checker of load-balancer members: one authority across all servers sharing a
//! database, so every agent picks members from the same verdicts.
//!
//! Each server runs [`run`]; every second it tries to take or renew the health lease (a row in
//! the store, [`LEASE_SECS`] long). The holder checks the members of every monitored load
//! balancer once per monitor interval, counts consecutive results per member in memory, and
//! records a change of `operating_status` when a threshold is crossed: `max_retries`
//! successes bring a member `ONLINE`, `max_retries_down` failures take it `OFFLINE`. A server
//! that loses the lease stops checking and forgets its counts; the next holder starts its
//! counts afresh from the recorded statuses, so a member changes status at most a threshold's
//! worth of checks late.
//!
//! How a member is checked is behind [`Prober`]; [`SocketProber`] connects for `TCP` and, for
//! `UDP_CONNECT`, sends a datagram and takes ICMP port-unreachable (a refused connected UDP
//! socket) for a failure, as Huawei's ELB does.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use tmirror_model::*;
use tracing::{info, warn};

use super::{Service, ServiceResult};

/// How long a lease lasts; renewed every second by its holder.
pub const LEASE_SECS: i64 = 10;

/// Checks one member.
#[async_trait]
pub trait Prober: Send + Sync {
    /// Whether `addr` passes a check of `kind` within `timeout`.
    async fn probe(&self, kind: HealthCheckType, addr: SocketAddr, timeout: Duration) -> bool;
}

/// Real checks over the network.
pub struct SocketProber;

#[async_trait]
impl Prober for SocketProber {
    async fn probe(&self, kind: HealthCheckType, addr: SocketAddr, timeout: Duration) -> bool {
        match kind {
            HealthCheckType::Tcp => matches!(
                tokio::time::timeout(timeout, tokio::net::TcpStream::connect(addr)).await,
                Ok(Ok(_))
            ),
            HealthCheckType::UdpConnect => udp_connect(addr, timeout).await,
        }
    }
}

/// A datagram to `addr`: refused (ICMP port-unreachable) is a failure; silence or an answer
/// within `timeout` a success.
async fn udp_connect(addr: SocketAddr, timeout: Duration) -> bool {
    let local: SocketAddr = if addr.is_ipv4() {
        "0.0.0.0:0".parse().expect("an address")
    } else {
        "[::]:0".parse().expect("an address")
    };
    let Ok(socket) = tokio::net::UdpSocket::bind(local).await else {
        return false;
    };
    if socket.connect(addr).await.is_err() || socket.send(b"tmirror-health").await.is_err() {
        return false;
    }
    let mut buf = [0u8; 64];
    match tokio::time::timeout(timeout, socket.recv(&mut buf)).await {
        Ok(Ok(_)) | Err(_) => true,
        Ok(Err(_)) => false,
    }
}

/// Consecutive results of one member.
#[derive(Default)]
struct Count {
    successes: u8,
    failures: u8,
}

/// The status after one more result, or `None` when it stays.
fn next(
    status: MemberHealth,
    count: &mut Count,
    passed: bool,
    m: &HealthMonitor,
) -> Option<MemberHealth> {
    if passed {
        count.successes = count.successes.saturating_add(1);
        count.failures = 0;
        (status != MemberHealth::Online && count.successes >= m.up_threshold.get())
            .then_some(MemberHealth::Online)
    } else {
        count.failures = count.failures.saturating_add(1);
        count.successes = 0;
        (status != MemberHealth::Offline && count.failures >= m.down_threshold.get())
            .then_some(MemberHealth::Offline)
    }
}

/// The checker's memory while it holds the lease.
#[derive(Default)]
struct Checker {
    counts: HashMap<MemberId, Count>,
    last_checked: HashMap<LoadBalancerId, Instant>,
}

impl Checker {
    /// Checks the load balancers whose interval has passed; records the changes.
    async fn round(&mut self, service: &Service, prober: &Arc<dyn Prober>) -> ServiceResult<()> {
        let lbs = service.monitored_load_balancers().await?;
        let now = Instant::now();
        for lb in lbs {
            let Some(monitor) = lb.health_monitor.clone().filter(|m| m.admin_state_up) else {
                continue;
            };
            let interval = Duration::from_secs(u64::from(monitor.interval.get()));
            if self
                .last_checked
                .get(&lb.id)
                .is_some_and(|t| now.duration_since(*t) < interval)
            {
                continue;
            }
            self.last_checked.insert(lb.id, now);
            let timeout = Duration::from_secs(u64::from(monitor.timeout.get()));
            let probes = lb.members.iter().map(|m| {
                let addr = SocketAddr::new(m.address, monitor.port.unwrap_or(m.port));
                let prober = prober.clone();
                async move { prober.probe(monitor.kind, addr, timeout).await }
            });
            let results = futures::future::join_all(probes).await;
            let mut changes = Vec::new();
            for (m, passed) in lb.members.iter().zip(results) {
                let count = self.counts.entry(m.id).or_default();
                if let Some(status) = next(m.operating_status, count, passed, &monitor) {
                    info!(load_balancer = %lb.id, member = %m.id, address = %m.address, status = status.as_str(), "member health changed");
                    changes.push((m.id, status));
                }
            }
            if !changes.is_empty() {
                service
                    .record_member_health(&lb.project_id, lb.id, &changes)
                    .await?;
                let after = service.load_balancer_show(&lb.project_id, lb.id).await?;
                match after.degraded() {
                    Some(LbDegraded::NoneHealthy) => {
                        warn!(load_balancer = %lb.id, "no member of the load balancer is healthy: agents fail open over all of them")
                    }
                    Some(LbDegraded::NoMembers) => {
                        warn!(load_balancer = %lb.id, "the load balancer has no member to send copies to")
                    }
                    None => {}
                }
            }
        }
        Ok(())
    }
}

/// Runs the health checks whenever this server (`holder`) holds the lease; never returns.
pub async fn run(service: Service, holder: String, prober: Arc<dyn Prober>) {
    let mut checker: Option<Checker> = None;
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    loop {
        tick.tick().await;
        // Nothing to check (the common case): no lease taken, no write every second.
        match service.monitored_load_balancers().await {
            Ok(lbs) if lbs.is_empty() => {
                checker = None;
                continue;
            }
            Ok(_) => {}
            Err(e) => {
                warn!(error = %e, "cannot read the load balancers to check");
                continue;
            }
        }
        let held = match service.take_health_lease(&holder).await {
            Ok(h) => h,
            Err(e) => {
                warn!(error = %e, "cannot take or renew the health-check lease");
                false
            }
        };
        match (held, checker.is_some()) {
            (true, false) => {
                info!(%holder, "this server now runs the load-balancer health checks");
                checker = Some(Checker::default());
            }
            (false, true) => {
                info!(%holder, "another server runs the load-balancer health checks now");
                checker = None;
            }
            _ => {}
        }
        if let Some(c) = &mut checker {
            if let Err(e) = c.round(&service, &prober).await {
                warn!(error = %e, "a round of health checks failed");
            }
        }
    }
}

impl Service {
    /// Takes or renews the health-check lease for `holder`; whether it holds it.
    pub async fn take_health_lease(&self, holder: &str) -> ServiceResult<bool> {
        let holder = holder.to_owned();
        self.transact(move |tx| {
            let holder = holder.clone();
            Box::pin(async move {
                let now = Timestamp::now().0;
                Ok(tx.take_health_lease(&holder, now, now + LEASE_SECS).await?)
            })
        })
        .await
    }

    /// Every project's monitored load balancers (the checker's work).
    pub async fn monitored_load_balancers(&self) -> ServiceResult<Vec<LoadBalancer>> {
        Ok(self.store.read().await?.monitored_load_balancers().await?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn monitor(up: i64, down: i64) -> HealthMonitor {
        HealthMonitor {
            up_threshold: HealthThreshold::new(up).unwrap(),
            down_threshold: HealthThreshold::new(down).unwrap(),
            ..HealthMonitor::tcp()
        }
    }

    #[test]
    fn thresholds_count_consecutive_results() {
        let m = monitor(2, 3);
        let mut c = Count::default();
        let mut s = MemberHealth::Initial;
        let mut step = |s: &mut MemberHealth, passed| {
            if let Some(n) = next(*s, &mut c, passed, &m) {
                *s = n;
            }
            *s
        };
        assert_eq!(step(&mut s, true), MemberHealth::Initial);
        assert_eq!(step(&mut s, true), MemberHealth::Online);
        assert_eq!(step(&mut s, false), MemberHealth::Online);
        assert_eq!(step(&mut s, false), MemberHealth::Online);
        assert_eq!(
            step(&mut s, true),
            MemberHealth::Online,
            "a success resets the failures"
        );
        for _ in 0..2 {
            assert_eq!(step(&mut s, false), MemberHealth::Online);
        }
        assert_eq!(step(&mut s, false), MemberHealth::Offline);
        assert_eq!(step(&mut s, true), MemberHealth::Offline);
        assert_eq!(step(&mut s, true), MemberHealth::Online);
    }

    #[tokio::test]
    async fn tcp_and_udp_connect_probes_on_loopback() {
        let p = SocketProber;
        let t = Duration::from_millis(500);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let open = listener.local_addr().unwrap();
        assert!(p.probe(HealthCheckType::Tcp, open, t).await);
        drop(listener);
        assert!(!p.probe(HealthCheckType::Tcp, open, t).await, "closed port");
        let udp = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let bound = udp.local_addr().unwrap();
        assert!(p.probe(HealthCheckType::UdpConnect, bound, t).await);
        drop(udp);
        assert!(
            !p.probe(HealthCheckType::UdpConnect, bound, t).await,
            "port unreachable"
        );
    }
}

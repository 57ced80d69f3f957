//! The agent's counters, shared by the pipelines (which add to them), the status reports and
//! the Prometheus endpoint (which read them). Atomics, relaxed: each is only ever summed.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use serde_json::{json, Value};
use tmirror_model::SessionId;

use crate::target::Balance;

/// One session's copies, over every source interface.
#[derive(Debug, Default)]
pub struct SessionCounters {
    /// Copies handed to the kernel for sending.
    pub packets: AtomicU64,
    /// Bytes of inner frames in those copies.
    pub bytes: AtomicU64,
    /// Copies of a load-balanced session dropped because it has no member to go to.
    pub no_member_drops: AtomicU64,
    /// A load-balanced session's copies sent, per member.
    members: Mutex<BTreeMap<SocketAddr, Arc<AtomicU64>>>,
    /// Whether, and how, the session is load-balanced, as last applied.
    balance: Mutex<Balance>,
}

impl SessionCounters {
    /// The counter of copies sent to the member at `address`, created at zero when new.
    pub fn member(&self, address: SocketAddr) -> Arc<AtomicU64> {
        self.members
            .lock()
            .expect("members lock")
            .entry(address)
            .or_default()
            .clone()
    }

    /// Copies sent per member, for the members still in the session.
    pub fn members(&self) -> Vec<(SocketAddr, u64)> {
        let map = self.members.lock().expect("members lock");
        map.iter().map(|(a, c)| (*a, c.load(Relaxed))).collect()
    }

    /// Records the session's load-balancing state and forgets the members no longer in it;
    /// the previous state.
    pub fn set_balance(&self, balance: Balance, members: &[SocketAddr]) -> Balance {
        self.members
            .lock()
            .expect("members lock")
            .retain(|a, _| members.contains(a));
        std::mem::replace(&mut *self.balance.lock().expect("balance lock"), balance)
    }

    pub fn balance(&self) -> Balance {
        *self.balance.lock().expect("balance lock")
    }
}

/// One source interface.
#[derive(Debug, Default)]
pub struct InterfaceCounters {
    /// Frames examined: read from the capture ring (AF_PACKET), or judged by the kernel
    /// program, which runs only on the hooks whose direction has accept rules (eBPF).
    pub captured: AtomicU64,
    /// Frames the kernel dropped because the ring was full.
    pub ring_drops: AtomicU64,
    /// Selected copies that could not be sent (socket buffer full, no route to the target, a
    /// next hop whose ARP/NDP failed).
    pub send_drops: AtomicU64,
    /// Frames no session selected (including non-IP and malformed frames).
    pub not_mirrored: AtomicU64,
    /// Copies sent.
    pub mirrored: AtomicU64,
    /// TCX hooks the kernel program is attached to on the interface (0, 1 or 2; 0 when
    /// AF_PACKET captures it).
    pub kernel_hooks: AtomicU64,
    state: Mutex<&'static str>,
}

impl InterfaceCounters {
    pub fn set_state(&self, state: &'static str) {
        *self.state.lock().expect("state lock") = state;
    }

    /// `capturing`, `waiting for interface`, `no sender`, `stopped`, or `starting`.
    pub fn state(&self) -> &'static str {
        let s = *self.state.lock().expect("state lock");
        if s.is_empty() {
            "starting"
        } else {
            s
        }
    }
}

/// Every counter of the agent.
#[derive(Debug, Default)]
pub struct Registry {
    sessions: Mutex<BTreeMap<SessionId, Arc<SessionCounters>>>,
    interfaces: Mutex<BTreeMap<String, Arc<InterfaceCounters>>>,
    /// Generation of the desired state in effect.
    pub generation: AtomicU64,
    /// Whether the last exchange with the control plane succeeded.
    pub connected: AtomicBool,
    /// The session counters at the last report, to report rates over the interval since.
    last_report: Mutex<Option<Reported>>,
    /// The capture back-end in use (`ebpf` or `af-packet`).
    backend: Mutex<&'static str>,
}

/// The session counters (copies, bytes) as one report gave them.
#[derive(Debug)]
struct Reported {
    at: Instant,
    sessions: BTreeMap<SessionId, (u64, u64)>,
}

impl Registry {
    /// Records the capture back-end in use (for `/metrics`).
    pub fn set_backend(&self, name: &'static str) {
        *self.backend.lock().expect("backend lock") = name;
    }

    /// The capture back-end in use; empty before the data plane started.
    pub fn backend(&self) -> &'static str {
        *self.backend.lock().expect("backend lock")
    }

    /// The counters of `id`, created at zero when new.
    pub fn session(&self, id: SessionId) -> Arc<SessionCounters> {
        self.sessions
            .lock()
            .expect("sessions lock")
            .entry(id)
            .or_default()
            .clone()
    }

    pub fn interface(&self, name: &str) -> Arc<InterfaceCounters> {
        self.interfaces
            .lock()
            .expect("interfaces lock")
            .entry(name.to_string())
            .or_default()
            .clone()
    }

    /// Forgets the sessions and interfaces not in the lists (deleted ones stop being exported).
    pub fn retain(&self, sessions: &[SessionId], interfaces: &[String]) {
        self.sessions
            .lock()
            .expect("sessions lock")
            .retain(|id, _| sessions.contains(id));
        self.interfaces
            .lock()
            .expect("interfaces lock")
            .retain(|name, _| interfaces.contains(name));
    }

    pub fn sessions(&self) -> Vec<(SessionId, Arc<SessionCounters>)> {
        let map = self.sessions.lock().expect("sessions lock");
        map.iter().map(|(k, v)| (*k, v.clone())).collect()
    }

    pub fn interfaces(&self) -> Vec<(String, Arc<InterfaceCounters>)> {
        let map = self.interfaces.lock().expect("interfaces lock");
        map.iter().map(|(k, v)| (k.clone(), v.clone())).collect()
    }

    /// The counters as the agent reports them to the control plane. Each session's also
    /// carries its copies and bytes per second since the previous call (zero on the first):
    /// the control plane shows delivery rates without keeping a history of its own.
    pub fn to_json(&self) -> Value {
        let now = Instant::now();
        let current: BTreeMap<SessionId, (u64, u64)> = self
            .sessions()
            .into_iter()
            .map(|(id, c)| (id, (c.packets.load(Relaxed), c.bytes.load(Relaxed))))
            .collect();
        let previous = self
            .last_report
            .lock()
            .expect("report lock")
            .replace(Reported {
                at: now,
                sessions: current.clone(),
            });
        let rate = |id: &SessionId, pick: fn(&(u64, u64)) -> u64, value: u64| -> f64 {
            let Some(p) = &previous else { return 0.0 };
            let secs = now.duration_since(p.at).as_secs_f64();
            match p.sessions.get(id) {
                Some(before) if secs > 0.0 => value.saturating_sub(pick(before)) as f64 / secs,
                _ => 0.0,
            }
        };
        let sessions: serde_json::Map<String, Value> = current
            .iter()
            .map(|(id, &(packets, bytes))| {
                (
                    id.to_string(),
                    json!({
                        "packets": packets,
                        "bytes": bytes,
                        "packets_per_second": rate(id, |c| c.0, packets),
                        "bytes_per_second": rate(id, |c| c.1, bytes),
                    }),
                )
            })
            .collect();
        let interfaces: serde_json::Map<String, Value> = self
            .interfaces()
            .into_iter()
            .map(|(name, c)| {
                (
                    name,
                    json!({
                        "state": c.state(),
                        "captured": c.captured.load(Relaxed),
                        "mirrored": c.mirrored.load(Relaxed),
                        "not_mirrored": c.not_mirrored.load(Relaxed),
                        "ring_drops": c.ring_drops.load(Relaxed),
                        "send_drops": c.send_drops.load(Relaxed),
                    }),
                )
            })
            .collect();
        json!({"sessions": sessions, "interfaces": interfaces})
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::str::FromStr;
    use std::time::Duration;

    #[test]
    fn reports_carry_rates_since_the_previous_report() {
        let registry = Registry::default();
        let id = SessionId::from_str("0f4a1d52-3b0e-4f47-9a43-2a43bde4c7a1").unwrap();
        let s = registry.session(id);
        s.packets.fetch_add(10, Relaxed);
        s.bytes.fetch_add(1000, Relaxed);
        let first = registry.to_json();
        let key = id.to_string();
        assert_eq!(first["sessions"][&key]["packets"], 10);
        assert_eq!(first["sessions"][&key]["packets_per_second"], 0.0);

        s.packets.fetch_add(100, Relaxed);
        s.bytes.fetch_add(6400, Relaxed);
        let pause = Duration::from_millis(50);
        std::thread::sleep(pause);
        let second = registry.to_json();
        let pps = second["sessions"][&key]["packets_per_second"]
            .as_f64()
            .unwrap();
        let bps = second["sessions"][&key]["bytes_per_second"]
            .as_f64()
            .unwrap();
        // At least `pause` passed, so the rates are positive and at most the increase over it.
        assert!(pps > 0.0 && pps <= 100.0 / pause.as_secs_f64(), "{pps}");
        assert!(bps > 0.0 && bps <= 6400.0 / pause.as_secs_f64(), "{bps}");
        assert!(
            (bps / pps - 64.0).abs() < 1e-6,
            "the same interval for both"
        );
        assert_eq!(second["sessions"][&key]["packets"], 110);

        // Nothing new: zero.
        let third = registry.to_json();
        assert_eq!(third["sessions"][&key]["packets_per_second"], 0.0);
    }
}

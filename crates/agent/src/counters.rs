//! The agent's counters, shared by the pipelines (which add to them), the status reports and
//! the Prometheus endpoint (which read them). Atomics, relaxed: each is only ever summed.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};

use serde_json::{json, Value};
use tmirror_model::SessionId;

/// One session's copies, over every source interface.
#[derive(Debug, Default)]
pub struct SessionCounters {
    /// Copies handed to the kernel for sending.
    pub packets: AtomicU64,
    /// Bytes of inner frames in those copies.
    pub bytes: AtomicU64,
}

/// One source interface.
#[derive(Debug, Default)]
pub struct InterfaceCounters {
    /// Frames read from the capture ring.
    pub captured: AtomicU64,
    /// Frames the kernel dropped because the ring was full.
    pub ring_drops: AtomicU64,
    /// Selected copies that could not be sent (socket buffer full, no route to the target).
    pub send_drops: AtomicU64,
    /// Frames no session selected (including non-IP and malformed frames).
    pub not_mirrored: AtomicU64,
    /// Copies sent.
    pub mirrored: AtomicU64,
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
    backend: Mutex<&'static str>,
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

    /// The counters as the agent reports them to the control plane.
    pub fn to_json(&self) -> Value {
        let sessions: serde_json::Map<String, Value> = self
            .sessions()
            .into_iter()
            .map(|(id, c)| {
                (
                    id.to_string(),
                    json!({"packets": c.packets.load(Relaxed), "bytes": c.bytes.load(Relaxed)}),
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

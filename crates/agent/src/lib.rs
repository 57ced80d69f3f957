//! `tmirror agent`: one per host. Follows the control plane's desired state for the host
//! ([`sync`]) and mirrors the host's source interfaces ([`dataplane`]): each interface's
//! frames are captured from an AF_PACKET ring, decided by the packet engine, encapsulated and
//! sent as VXLAN frames to the underlay device, or by a raw socket ([`pipeline`]). Counters go
//! to the status reports and to `/metrics` ([`metrics`]). `unsafe` code lives in [`sys`] only.

#![deny(unsafe_code)]

pub mod capture;
pub mod counters;
pub mod dataplane;
mod forward;
pub mod kernel;
pub mod kernel_pipeline;
pub mod metrics;
pub mod pipeline;
pub mod run;
pub mod state;
pub mod sync;
#[allow(unsafe_code)]
pub mod sys;
pub mod target;

pub use dataplane::{CaptureChoice, MirrorConfig, Mirrors};
pub use pipeline::{SendMode, Underlay};
pub use run::{run, AgentOptions};
pub use sync::{Dataplane, SyncConfig, Syncer};

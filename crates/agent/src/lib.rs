//! `tmirror agent`: one per host. Follows the control plane's desired state for the host and
//! hands it to the data plane.
//!
//! This crate holds the synchronisation half ([`sync`]): long-poll, apply, persist, report,
//! and keep mirroring from the saved state while no server answers. The capture and send
//! half (the [`Dataplane`] that `tmirror agent` runs) follows in its own modules.

#![forbid(unsafe_code)]

pub mod state;
pub mod sync;

pub use sync::{Dataplane, SyncConfig, Syncer};

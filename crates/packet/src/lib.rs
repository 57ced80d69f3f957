//! tmirror's packet engine: parse a captured Ethernet frame, decide which session (if any)
//! mirrors it, truncate the copy and VXLAN-encapsulate it; and, for the collector, decapsulate.
//!
//! Pure library: no sockets, no async, no allocation per packet. Decisions and their reasons
//! are in `docs/packet-engine.md`.
//!
//! ```
//! use tmirror_packet::*;
//! # use tmirror_model::*;
//! # fn demo(sessions: Vec<SessionSpec<u32>>, frame: &[u8], outer: &OuterTemplate) {
//! let plan = MirrorPlan::new(sessions, PlanConfig::default());
//! let mut counters = Counters::for_plan(&plan);
//! let mut buf = [0u8; 9000];
//! if let Verdict::Mirror(m) = plan.decide_counted(frame, Direction::Ingress, &mut counters) {
//!     let n = m.encapsulate_frame(outer, frame, &mut buf).unwrap();
//!     let _target: u32 = m.session.target;
//!     let _copy = &buf[..n];
//! }
//! # }
//! ```

#![forbid(unsafe_code)]

mod classify;
pub mod filter;
pub mod member;
pub mod parse;
pub mod plan;
pub mod vxlan;

pub use filter::{CompiledFilter, CompiledRule, RuleSpec};
pub use member::{choose, member_key, Choice, Member};
pub use parse::{parse, parse_captured, IpVersion, Packet, ParseError};
pub use plan::{
    Counters, Evaluation, Mirror, MirrorPlan, PlanConfig, SessionSpec, Verdict, MIN_UNDERLAY_MTU,
    MTU_OVERHEAD, SNAP_HEADROOM,
};
pub use vxlan::{
    decapsulate_frame, decapsulate_payload, encapsulate_payload, flow_hash, flow_label,
    source_port, write_vxlan_header, DecapError, Decapsulated, EncapError, OuterIpv4, OuterIpv6,
    OuterTemplate, OUTER_IPV4_OVERHEAD, OUTER_IPV6_OVERHEAD, VXLAN_HEADER_LEN, VXLAN_PORT,
};

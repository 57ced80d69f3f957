//! The one model behind both API faces of tmirror.
//!
//! Plain, validated data: typed ids, value types whose constructors enforce their ranges,
//! the resources (ports, filters, filter rules, sessions), the domain errors the service layer
//! reports, and the agent protocol types. No I/O, no face-specific spelling: each face maps
//! its own wire format onto these types.

#![forbid(unsafe_code)]

pub mod agent;
pub mod eips;
pub mod error;
pub mod ids;
pub mod load_balancer;
pub mod resources;
pub mod tenancy;
pub mod values;

pub use eips::{Bandwidth, Eip, EipPool};
pub use error::{DomainError, Field, Quota, ResourceKind};
pub use ids::{EipId, FilterId, LoadBalancerId, PortId, ProjectId, RuleId, SessionId};
pub use load_balancer::*;
pub use resources::*;
pub use tenancy::{Actor, Host, Network, Project, QuotaOverrides, Role};
pub use values::*;

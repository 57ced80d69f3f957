//! How the admin API shows the records: JSON objects, never a secret except the one time a
//! credential or host token is created.

use serde_json::{json, Value};
use time::format_description::well_known::Rfc3339;
use tmirror_model::{Host, Network, Port, Project};
use tmirror_store::{Credential, ProjectUsage};

use crate::service::agents::connected;
use crate::service::delivery::Delivery;
use crate::service::tenancy::HostView;

pub fn time_text(t: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp(t)
        .unwrap_or(time::OffsetDateTime::UNIX_EPOCH)
        .format(&Rfc3339)
        .unwrap_or_default()
}

pub fn project(p: &Project) -> Value {
    json!({
        "id": p.id.as_str(),
        "name": p.name,
        "created_at": time_text(p.created_at),
        "quotas": p.quotas,
    })
}

pub fn usage(u: &ProjectUsage) -> Value {
    json!({
        "ports": u.ports,
        "filters": u.filters,
        "sessions": u.sessions,
        "networks": u.networks,
        "credentials": u.credentials,
        "load_balancers": u.load_balancers,
        "eips": u.eips,
    })
}

/// A credential without its secret.
pub fn credential(c: &Credential) -> Value {
    json!({
        "access_key": c.access_key,
        "project_id": c.project_id.as_str(),
        "role": c.role,
        "enabled": c.enabled,
        "created_at": time_text(c.created_at),
        "last_used_at": c.last_used_at.map(time_text),
    })
}

pub fn host(v: &HostView) -> Value {
    let now = tmirror_model::Timestamp::now().0;
    json!({
        "host_id": v.host.host_id,
        "enabled": v.host.enabled,
        "created_at": time_text(v.host.created_at),
        "agent": v.agent.as_ref().map(|a| json!({
            "registered_at": time_text(a.registered_at),
            "last_seen": time_text(a.last_seen),
            "connected": connected(a.last_seen, now),
            "applied_generation": a.applied_generation,
            "lag": v.lag,
            "interfaces": a.interfaces,
            "counters": a.report,
        })),
    })
}

pub fn bare_host(h: &Host) -> Value {
    json!({
        "host_id": h.host_id,
        "enabled": h.enabled,
        "created_at": time_text(h.created_at),
    })
}

pub fn network(n: &Network) -> Value {
    json!({
        "id": n.id,
        "name": n.name,
        "project_id": n.project_id.as_ref().map(|p| p.as_str()),
        "shared": n.project_id.is_none(),
        "cidrs": n.cidrs,
        "created_at": time_text(n.created_at),
    })
}

pub fn binding(p: &Port) -> Value {
    json!({
        "id": p.id.to_string(),
        "project_id": p.project_id.as_str(),
        "host_id": p.host_id,
        "profile": p.binding_profile,
        "status": p.status,
    })
}

/// A session's delivery: per host, and summed.
pub fn delivery(d: &Delivery) -> Value {
    json!({
        "session_id": d.session.id.to_string(),
        "project_id": d.session.project_id.as_str(),
        "enabled": d.session.enabled,
        "state": d.state.as_str(),
        "revision": d.revision,
        "applied_everywhere": d.applied_everywhere(),
        "copies_per_second": d.copies_per_second(),
        "bytes_per_second": d.bytes_per_second(),
        "hosts": d.hosts.iter().map(|h| json!({
            "host_id": h.host_id,
            "connected": h.connected,
            "applied_generation": h.applied_generation,
            "applied": h.applied,
            "copies": h.copies,
            "bytes": h.bytes,
            "copies_per_second": h.copies_per_second,
            "bytes_per_second": h.bytes_per_second,
        })).collect::<Vec<_>>(),
    })
}
